//! The threads that serve a peer's requests.
//!
//! Requests may block for as long as the other side makes them (a call runs
//! JIT'd code; a resolve request compiles), and while one blocks, the
//! requests it causes on the other side come back here (a first call inside
//! a `Call` asks the controller, which writes code into this executor). So
//! a queued request never waits for a busy thread: the pool starts a thread
//! whenever the queue would outgrow the idle ones, and idle threads exit
//! after a while.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

/// Threads beyond which requests queue (a bound on what a peer can make
/// this process spawn).
const MAX_WORKERS: usize = 1024;
/// An idle thread exits after this long.
const IDLE_EXIT: Duration = Duration::from_secs(5);

struct PoolState {
    queue: VecDeque<Job>,
    /// Threads waiting for a job (each will look at the queue when woken).
    idle: usize,
    workers: usize,
}

/// A growable pool; see the module docs.
pub(crate) struct WorkerPool {
    name: &'static str,
    state: Mutex<PoolState>,
    wake: Condvar,
}

impl WorkerPool {
    pub(crate) fn new(name: &'static str) -> Arc<Self> {
        Arc::new(Self {
            name,
            state: Mutex::new(PoolState {
                queue: VecDeque::new(),
                idle: 0,
                workers: 0,
            }),
            wake: Condvar::new(),
        })
    }

    /// Runs `job` on a pool thread, starting one unless an idle thread is
    /// free to take it.
    pub(crate) fn submit(self: &Arc<Self>, job: impl FnOnce() + Send + 'static) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.queue.push_back(Box::new(job));
        if state.queue.len() <= state.idle || state.workers >= MAX_WORKERS {
            self.wake.notify_one();
            return;
        }
        state.workers += 1;
        drop(state);
        let pool = self.clone();
        let spawned = std::thread::Builder::new()
            .name(self.name.to_string())
            .spawn(move || pool.work());
        if spawned.is_err() {
            // Out of threads: the job stays queued for a running worker.
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.workers -= 1;
            self.wake.notify_one();
        }
    }

    fn work(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                job();
                state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                continue;
            }
            state.idle += 1;
            let (next, timeout) = self
                .wake
                .wait_timeout(state, IDLE_EXIT)
                .unwrap_or_else(|e| e.into_inner());
            state = next;
            state.idle -= 1;
            if timeout.timed_out() && state.queue.is_empty() {
                state.workers -= 1;
                return;
            }
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
        pool.submit(move || release_rx.recv().unwrap());
        for _ in 0..50 {
            let done_tx = done_tx.clone();
            pool.submit(move || done_tx.send(()).unwrap());
        }
        for _ in 0..50 {
            done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        release_tx.send(()).unwrap();
    }
}
