//! Thread tokens and the wait-for graph that turns resolution cycles into
//! errors instead of hangs.
//!
//! A leading thread writes its token into the entry's state word (free: it is
//! part of the CAS that makes it leader). A thread that must wait records
//! "I wait for entry E, led by L" here, then follows L's own record, and so
//! on; reaching itself means a cycle (f's resolver calls g while g's resolver,
//! on another thread, calls f). Only contended first calls touch this.

use std::cell::Cell;
use std::collections::HashMap;

use crate::entry_state::MAX_THREAD_TOKEN;
use crate::sync::{Mutex, lock};

struct TokenPool {
    next: u32,
    free: Vec<u32>,
}

static TOKENS: Mutex<TokenPool> = Mutex::new(TokenPool {
    next: 1,
    free: Vec::new(),
});

struct ThreadToken(Cell<u32>);

impl Drop for ThreadToken {
    fn drop(&mut self) {
        let token = self.0.get();
        if token != 0 {
            lock(&TOKENS).free.push(token);
        }
    }
}

thread_local! {
    static TOKEN: ThreadToken = const { ThreadToken(Cell::new(0)) };
}

/// This thread's token, 1..=MAX_THREAD_TOKEN, unique among live threads
/// (recycled when a thread exits).
pub(crate) fn thread_token() -> u32 {
    TOKEN
        .try_with(|t| {
            if t.0.get() == 0 {
                let mut pool = lock(&TOKENS);
                let token = pool.free.pop().unwrap_or_else(|| {
                    let token = pool.next;
                    pool.next = if token == MAX_THREAD_TOKEN {
                        1
                    } else {
                        token + 1
                    };
                    token
                });
                t.0.set(token);
            }
            t.0.get()
        })
        // Thread-local storage is being torn down: use a token no live thread has.
        .unwrap_or(MAX_THREAD_TOKEN)
}

#[derive(Clone, Copy)]
struct Waiting {
    entry: u32,
    leader: u32,
}

static GRAPH: Mutex<Option<HashMap<u32, Waiting>>> = Mutex::new(None);

/// Registration of one waiting thread; removed on drop.
pub(crate) struct WaitRecord {
    me: u32,
}

impl Drop for WaitRecord {
    fn drop(&mut self) {
        if let Some(graph) = lock(&GRAPH).as_mut() {
            graph.remove(&self.me);
        }
    }
}

/// Records that thread `me` is about to wait for `entry`, led by `leader`.
/// `still_leads(entry, leader)` re-reads an entry's state word, so stale
/// records of threads that are about to wake do not count. Returns the cycle
/// as entry indices (starting with `entry`) if waiting would never end.
pub(crate) fn register_wait(
    me: u32,
    entry: u32,
    leader: u32,
    still_leads: impl Fn(u32, u32) -> bool,
) -> Result<WaitRecord, Vec<u32>> {
    let mut guard = lock(&GRAPH);
    let graph = guard.get_or_insert_with(HashMap::new);
    let mut path = vec![entry];
    let mut current = leader;
    while path.len() <= graph.len() + 1 {
        if current == me {
            return Err(path);
        }
        let Some(next) = graph.get(&current).copied() else {
            break;
        };
        if !still_leads(next.entry, next.leader) {
            break;
        }
        path.push(next.entry);
        current = next.leader;
    }
    graph.insert(me, Waiting { entry, leader });
    Ok(WaitRecord { me })
}
