//! The threads that serve a peer's requests.
//!
//! Requests may block for as long as the other side makes them (a call runs
//! JIT'd code; a resolve request compiles), and while one blocks, the
//! requests it causes on the other side come back here (a first call inside
//! a `Call` asks the controller, which writes code into this executor). So
//! a request never waits for a busy thread: it goes to an idle thread (the
//! one idle last: see [`WorkerPool`]) or to a new one, and idle threads exit
//! after a while.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// Threads beyond which requests queue (a bound on what a peer can make
/// this process spawn).
pub(crate) const MAX_WORKERS: usize = 1024;
/// An idle thread exits after this long.
const IDLE_EXIT: Duration = Duration::from_secs(5);

/// Where an idle thread waits for the job handed to it.
#[derive(Default)]
struct IdleSlot {
    job: Mutex<Option<Job>>,
    handed: Condvar,
}

struct PoolState {
    /// Jobs no thread was found for (only when a thread failed to start).
    queue: VecDeque<Job>,
    /// Idle threads, the most recently idle last.
    idle: Vec<Arc<IdleSlot>>,
    workers: usize,
}

/// A growable pool; see the module docs. A job goes to the thread that
/// became idle last (LIFO): one that ran moments ago, still on a CPU whose
/// caches hold what the last job touched. With jobs that come one at a
/// time (first calls compiled in turn), one thread runs them all and the
/// scheduler keeps it on one CPU; handing them round the idle threads made
/// every compile start on cold caches (a fifth slower on a 2-CPU VM).
pub(crate) struct WorkerPool {
    name: &'static str,
    state: Mutex<PoolState>,
}

impl WorkerPool {
    pub(crate) fn new(name: &'static str) -> Arc<Self> {
        Arc::new(Self {
            name,
            state: Mutex::new(PoolState {
                queue: VecDeque::new(),
                idle: Vec::new(),
                workers: 0,
            }),
        })
    }

    /// Runs `job` on a pool thread, starting one unless an idle thread is
    /// free to take it. False (and `job` dropped unrun) when
    /// [`MAX_WORKERS`] threads are busy or no thread can start: the caller
    /// refuses the work instead of queueing it behind requests that may wait
    /// for it.
    pub(crate) fn try_submit(self: &Arc<Self>, job: Job) -> bool {
        self.submit_with_cap(job, MAX_WORKERS)
    }

    /// Runs `job` on a pool thread, starting one even beyond the cap (and,
    /// if none can start, on the next thread that finishes its job).
    pub(crate) fn submit_uncapped(self: &Arc<Self>, job: impl FnOnce() + Send + 'static) {
        self.submit_with_cap(Box::new(job), usize::MAX);
    }

    fn submit_with_cap(self: &Arc<Self>, job: Job, cap: usize) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = state.idle.pop() {
            drop(state);
            *slot.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(job);
            slot.handed.notify_one();
            return true;
        }
        if state.workers >= cap {
            return false;
        }
        state.workers += 1;
        drop(state);
        // Handed to the new thread itself (never queued behind others'
        // jobs), and taken back if it cannot start.
        let handoff = Arc::new(Mutex::new(Some(job)));
        let (pool, first) = (self.clone(), handoff.clone());
        let spawned = std::thread::Builder::new()
            .name(self.name.to_string())
            .spawn(move || {
                let job = first.lock().unwrap_or_else(|e| e.into_inner()).take();
                pool.work(job)
            });
        if spawned.is_ok() {
            return true;
        }
        let job = handoff.lock().unwrap_or_else(|e| e.into_inner()).take();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.workers -= 1;
        if cap != usize::MAX {
            return false;
        }
        // Out of threads: the next running worker that finishes takes it
        // (the process is in trouble anyway).
        state.queue.extend(job);
        true
    }

    fn work(&self, first: Option<Job>) {
        let slot = Arc::new(IdleSlot::default());
        let mut job = first;
        loop {
            if let Some(job) = job.take() {
                // A panicking job must not take the thread's count with it.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
            {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(queued) = state.queue.pop_front() {
                    job = Some(queued);
                    continue;
                }
                state.idle.push(slot.clone());
            }
            let mut handed = slot.job.lock().unwrap_or_else(|e| e.into_inner());
            let deadline = std::time::Instant::now() + IDLE_EXIT;
            while handed.is_none() {
                let now = std::time::Instant::now();
                if now >= deadline {
                    break;
                }
                handed = slot
                    .handed
                    .wait_timeout(handed, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            if let Some(next) = handed.take() {
                job = Some(next);
                continue;
            }
            drop(handed);
            // Timed out: leave, unless a submitter took this slot meanwhile
            // (then its job is on the way).
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(at) = state.idle.iter().position(|s| Arc::ptr_eq(s, &slot)) {
                state.idle.remove(at);
                state.workers -= 1;
                return;
            }
            drop(state);
            let mut handed = slot.job.lock().unwrap_or_else(|e| e.into_inner());
            while handed.is_none() {
                handed = slot.handed.wait(handed).unwrap_or_else(|e| e.into_inner());
            }
            job = handed.take();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_blocked_job_never_holds_up_the_next() {
        let pool = WorkerPool::new("test-pool");
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel();
        // The first job blocks until the second has run.
        assert!(pool.try_submit(Box::new(move || release_rx.recv().unwrap())));
        for _ in 0..50 {
            let done_tx = done_tx.clone();
            assert!(pool.try_submit(Box::new(move || done_tx.send(()).unwrap())));
        }
        for _ in 0..50 {
            done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        release_tx.send(()).unwrap();
    }
}
