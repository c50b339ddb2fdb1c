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

pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// Threads beyond which requests queue (a bound on what a peer can make
/// this process spawn).
pub(crate) const MAX_WORKERS: usize = 1024;
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

    /// Runs the job `make` returns on a pool thread, starting one unless an
    /// idle thread is free to take it; `make` runs only when a thread is
    /// there for it. False (and `make` not called) when [`MAX_WORKERS`]
    /// threads are busy: the caller refuses the work instead of queueing it
    /// behind requests that may wait for it.
    pub(crate) fn try_submit(self: &Arc<Self>, make: impl FnOnce() -> Job) -> bool {
        self.submit_with_cap(make, MAX_WORKERS)
    }

    /// Runs `job` on a pool thread, starting one even beyond the cap.
    pub(crate) fn submit_uncapped(self: &Arc<Self>, job: impl FnOnce() + Send + 'static) {
        self.submit_with_cap(|| Box::new(job), usize::MAX);
    }

    fn submit_with_cap(self: &Arc<Self>, make: impl FnOnce() -> Job, cap: usize) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.queue.len() < state.idle {
            state.queue.push_back(make());
            self.wake.notify_one();
            return true;
        }
        if state.workers >= cap {
            return false;
        }
        state.queue.push_back(make());
        state.workers += 1;
        drop(state);
        let pool = self.clone();
        let spawned = std::thread::Builder::new()
            .name(self.name.to_string())
            .spawn(move || pool.work());
        if spawned.is_err() {
            // Out of threads: a running worker takes the job when it is
            // free (the process is in trouble anyway).
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.workers -= 1;
            self.wake.notify_one();
        }
        true
    }

    fn work(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                // A panicking job must not take the thread's count with it.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
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
        assert!(pool.try_submit(|| Box::new(move || release_rx.recv().unwrap())));
        for _ in 0..50 {
            let done_tx = done_tx.clone();
            assert!(pool.try_submit(|| Box::new(move || done_tx.send(()).unwrap())));
        }
        for _ in 0..50 {
            done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        release_tx.send(()).unwrap();
    }
}
