//! Where materialization work runs.
//!
//! The session hands work (materializing a unit, completing a query) to a
//! [`Dispatcher`]. Nothing ever needs a dedicated thread: a thread that blocks
//! waiting for a lookup ([`crate::Session::lookup_blocking`]) runs queued
//! tasks of the session's dispatcher while it waits, so a lookup made on a
//! pool worker does not occupy the worker the awaited work needs (ORC's
//! blocking-future design deadlocks exactly there). Everything works with a
//! one-thread pool.

#[cfg(not(lazyrt_loom))]
use std::collections::VecDeque;
#[cfg(not(lazyrt_loom))]
use std::sync::Arc;

#[cfg(not(lazyrt_loom))]
use crate::sync::{Condvar, Mutex};
#[cfg(not(lazyrt_loom))]
use std::thread::JoinHandle;

/// One unit of work.
pub type Task = Box<dyn FnOnce() + Send + 'static>;

/// Runs session work.
pub trait Dispatcher: Send + Sync {
    /// Runs `task` now or later, on some thread.
    fn dispatch(&self, task: Task);
    /// Runs `task` later, on a worker that has nothing else to do: only when
    /// no task given to [`Dispatcher::dispatch`] is queued, and never inside
    /// [`Dispatcher::wait_helping`]; demand dispatched while it runs must
    /// not wait for it when a thread is blocked on that demand (the pool
    /// lets the blocked lookup that dispatched it run it). This is where speculative compilation
    /// runs. Never run it on the calling thread. A dispatcher without idle
    /// workers (the default, and [`InPlaceDispatcher`]) gives the task
    /// back, and the caller drops it: speculation never runs on a thread
    /// that needs its own result.
    fn dispatch_idle(&self, task: Task) -> Result<(), Task> {
        Err(task)
    }
    /// Called by a thread about to block until `done()`: if the thread is one
    /// of this dispatcher's workers, run queued tasks until `done()` and
    /// return true. Other threads may be let in too (return true once
    /// `done()`), or turned away with false (the caller blocks by itself).
    fn wait_helping(&self, done: &dyn Fn() -> bool) -> bool {
        let _ = done;
        false
    }
    /// Wakes threads inside [`Dispatcher::wait_helping`] to re-check `done`.
    fn wake_helpers(&self) {}
    /// The session using this dispatcher has ended: finish queued work and
    /// stop its threads (join them, except the calling thread if it is one
    /// of them). Work dispatched afterwards must still run (for example on
    /// the dispatching thread). A dispatcher shared by several sessions is
    /// shut down when the first of them ends, as in ORC.
    fn shutdown(&self) {}
}

/// Runs every task on the thread that dispatches it, at once. A task that
/// panics is stopped there (what it held, e.g. a responsibility, is dropped
/// and fails its waiters) and the next task still runs, as on the pool.
#[derive(Debug, Default, Clone, Copy)]
pub struct InPlaceDispatcher;

impl Dispatcher for InPlaceDispatcher {
    fn dispatch(&self, task: Task) {
        run_task(task);
    }
}

#[cfg(not(lazyrt_loom))]
struct PoolShared {
    queue: Mutex<PoolQueue>,
    /// Workers (and workers helping a wait) sleep here.
    ready: Condvar,
    /// Other threads blocked in a lookup sleep here (see `wait_helping`).
    helpers: Condvar,
}

#[cfg(not(lazyrt_loom))]
struct PoolQueue {
    /// Demand tasks, each with the blocking lookup that dispatched it (0:
    /// none; see `wait_helping`).
    tasks: VecDeque<(Task, u64)>,
    /// [`Dispatcher::dispatch_idle`]'s tasks: taken only when `tasks` is
    /// empty, and never by a worker helping a wait.
    idle: VecDeque<Task>,
    /// Workers started.
    workers: usize,
    /// Workers running an idle task now.
    speculating: usize,
    shutting_down: bool,
}

#[cfg(not(lazyrt_loom))]
impl PoolQueue {
    /// Every worker is busy with idle work: demand would wait behind it.
    fn all_speculating(&self) -> bool {
        self.workers > 0 && self.speculating == self.workers
    }
}

/// A fixed pool of worker threads sharing one queue.
///
/// ```
/// use lazyrt::{Dispatcher, ThreadPoolDispatcher};
/// let pool = ThreadPoolDispatcher::new(2);
/// let (tx, rx) = std::sync::mpsc::channel();
/// pool.dispatch(Box::new(move || tx.send(6 * 7).unwrap()));
/// assert_eq!(rx.recv().unwrap(), 42);
/// ```
#[cfg(not(lazyrt_loom))]
pub struct ThreadPoolDispatcher {
    shared: Arc<PoolShared>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

#[cfg(not(lazyrt_loom))]
impl ThreadPoolDispatcher {
    /// Starts `threads` workers (at least one). Panics if a thread cannot
    /// be spawned; [`ThreadPoolDispatcher::try_new`] reports it instead.
    pub fn new(threads: usize) -> Self {
        Self::try_new(threads).expect("spawn lazyrt pool workers")
    }

    /// Starts `threads` workers (at least one), or says why a thread could
    /// not be spawned (the ones already started are stopped and joined).
    pub fn try_new(threads: usize) -> std::io::Result<Self> {
        let shared = Arc::new(PoolShared {
            queue: Mutex::new(PoolQueue {
                tasks: VecDeque::new(),
                idle: VecDeque::new(),
                workers: 0,
                speculating: 0,
                shutting_down: false,
            }),
            ready: Condvar::new(),
            helpers: Condvar::new(),
        });
        let pool = Self {
            shared,
            workers: Mutex::new(Vec::with_capacity(threads.max(1))),
        };
        for i in 0..threads.max(1) {
            let shared = pool.shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("lazyrt-pool-{i}"))
                .spawn(move || worker(&shared));
            match spawned {
                Ok(handle) => {
                    pool.shared
                        .queue
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .workers += 1;
                    pool.workers
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(handle);
                }
                Err(e) => {
                    pool.shutdown();
                    return Err(e);
                }
            }
        }
        Ok(pool)
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.workers.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(not(lazyrt_loom))]
thread_local! {
    /// The pool this thread works for, if any.
    static WORKER_OF: std::cell::Cell<*const PoolShared> = const { std::cell::Cell::new(std::ptr::null()) };
}

#[cfg(not(lazyrt_loom))]
fn worker(shared: &PoolShared) {
    WORKER_OF.with(|w| w.set(shared));
    loop {
        let (task, idle) = {
            let mut queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some((task, _)) = queue.tasks.pop_front() {
                    break (task, false);
                }
                if queue.shutting_down {
                    // Idle work is optional: dropped (each task's drop
                    // says so to whoever queued it), not run.
                    let idle = std::mem::take(&mut queue.idle);
                    drop(queue);
                    drop(idle);
                    return;
                }
                if let Some(task) = queue.idle.pop_front() {
                    queue.speculating += 1;
                    break (task, true);
                }
                queue = shared.ready.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
        };
        run_task(task);
        if idle {
            shared
                .queue
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .speculating -= 1;
        }
    }
}

/// The blocking lookup this thread is in: the one whose units it is
/// dispatching now, and the one it waits for (0: none).
#[derive(Clone, Copy, Default)]
#[cfg_attr(lazyrt_loom, allow(dead_code))] // read by the pool only
struct LookupTags {
    dispatching: u64,
    waiting: u64,
}

thread_local! {
    static LOOKUP: std::cell::Cell<LookupTags> = const {
        std::cell::Cell::new(LookupTags { dispatching: 0, waiting: 0 })
    };
}

/// A tag for a new blocking lookup, unique in the process.
pub(crate) fn new_lookup_tag() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Runs `f` (dispatching the units of blocking lookup `tag`): a pool tags
/// what it is given meanwhile with `tag`.
pub(crate) fn dispatching_for<R>(tag: u64, f: impl FnOnce() -> R) -> R {
    with_tags(|t| t.dispatching = tag, f)
}

/// Runs `f` (waiting for blocking lookup `tag`): a pool lets this thread
/// run that lookup's tasks meanwhile.
pub(crate) fn waiting_for<R>(tag: u64, f: impl FnOnce() -> R) -> R {
    with_tags(|t| t.waiting = tag, f)
}

/// Runs `f` with this thread's tags changed by `change`, restoring them
/// after (also when `f` panics).
fn with_tags<R>(change: impl FnOnce(&mut LookupTags), f: impl FnOnce() -> R) -> R {
    struct Restore(LookupTags);
    impl Drop for Restore {
        fn drop(&mut self) {
            LOOKUP.with(|l| l.set(self.0));
        }
    }
    let before = LOOKUP.with(|l| l.get());
    let mut changed = before;
    change(&mut changed);
    LOOKUP.with(|l| l.set(changed));
    let _restore = Restore(before);
    f()
}

/// Runs a task; a panicking task must not take its thread down with it.
pub(crate) fn run_task(task: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(task)).is_err() {
        eprintln!("lazyrt: a dispatched task panicked; its work is abandoned, the rest goes on");
    }
}

#[cfg(not(lazyrt_loom))]
impl Dispatcher for ThreadPoolDispatcher {
    fn dispatch(&self, task: Task) {
        let mut queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.shutting_down {
            drop(queue);
            // Late work after shutdown still runs rather than being lost.
            return run_task(task);
        }
        queue
            .tasks
            .push_back((task, LOOKUP.with(|l| l.get().dispatching)));
        let all_speculating = queue.all_speculating();
        drop(queue);
        self.shared.ready.notify_one();
        if all_speculating {
            // No worker takes it before its idle task ends: the lookup
            // that dispatched it may be blocked on it (wait_helping).
            self.shared.helpers.notify_all();
        }
    }

    fn dispatch_idle(&self, task: Task) -> Result<(), Task> {
        let mut queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.shutting_down {
            return Err(task);
        }
        queue.idle.push_back(task);
        drop(queue);
        // Every sleeper: one woken inside wait_helping would not take it.
        self.shared.ready.notify_all();
        Ok(())
    }

    /// A worker runs queued demand tasks while it waits. Another thread
    /// (a first call blocked on units its lookup dispatched) runs the tasks
    /// of the lookup it waits for, and only while every worker is busy with
    /// idle (speculative) work, so its demand never waits behind
    /// speculation; otherwise it sleeps until `done()`. It never runs other
    /// work, which could need what this thread is materializing further
    /// down its stack (another thread's, or an outer lookup's).
    fn wait_helping(&self, done: &dyn Fn() -> bool) -> bool {
        let shared: *const PoolShared = &*self.shared;
        let is_worker = WORKER_OF.with(|w| w.get()) == shared;
        let sleep_on = if is_worker {
            &self.shared.ready
        } else {
            &self.shared.helpers
        };
        loop {
            let mut queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            // Checked under the queue lock: wake_helpers takes it too, so a
            // completion cannot slip between this check and the wait.
            if done() {
                if is_worker && !queue.tasks.is_empty() {
                    // The wake-up that brought us here may have been for
                    // a task: pass it on.
                    self.shared.ready.notify_one();
                }
                return true;
            }
            let task = if is_worker {
                queue.tasks.pop_front().map(|(task, _)| task)
            } else if queue.all_speculating() {
                let waited = LOOKUP.with(|l| l.get().waiting);
                let ours = queue
                    .tasks
                    .iter()
                    .position(|(_, by)| waited != 0 && *by == waited);
                ours.and_then(|at| queue.tasks.remove(at))
                    .map(|(task, _)| task)
            } else {
                None
            };
            match task {
                Some(task) => {
                    drop(queue);
                    run_task(task);
                }
                None => drop(sleep_on.wait(queue).unwrap_or_else(|e| e.into_inner())),
            }
        }
    }

    fn wake_helpers(&self) {
        let _queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        self.shared.ready.notify_all();
        self.shared.helpers.notify_all();
    }

    /// Finishes queued work, then joins the workers (a worker shutting its
    /// own pool down is left to finish by itself).
    fn shutdown(&self) {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .shutting_down = true;
        self.shared.ready.notify_all();
        self.shared.helpers.notify_all();
        let current = std::thread::current().id();
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|e| e.into_inner()));
        for handle in workers {
            if handle.thread().id() != current {
                let _ = handle.join();
            }
        }
    }
}

#[cfg(not(lazyrt_loom))]
impl Drop for ThreadPoolDispatcher {
    /// Finishes queued work, then joins the workers.
    fn drop(&mut self) {
        self.shutdown();
    }
}
