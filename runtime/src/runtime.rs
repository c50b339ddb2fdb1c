//! The public runtime API: create entries in batches, hand out their
//! addresses, redirect, query and free them.

use std::collections::HashMap;
use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::allocator::Allocator;
use crate::arch::{self, CodeLayout, ReentryInfo};
use crate::batch::Batch;
use crate::block::{BLOCK_CAPACITY, BLOCK_SHIFT, Block};
use crate::direct_stubs::DirectStubs;
use crate::entry_state::{Free, Phase, Redirect};
use crate::error::RuntimeError;
use crate::executor_addr::ExecutorAddr;
use crate::failure::{FailureHandler, FailureHandlers, FailureReason};
use crate::index_table::IndexTable;
use crate::resolve::Unresolved;
use crate::sync::{AtomicU64, AtomicUsize, Mutex, OnceLock, Ordering, RwLock, lock};
use crate::{EntryId, LandingPads, StateSave};

/// Marks a retired entry's batch field.
const NO_BATCH: u32 = u32::MAX;

/// A failed resolution, kept for calls that arrive after it.
pub(crate) struct StoredFailure {
    pub(crate) name: Box<str>,
    pub(crate) reason: FailureReason,
}

/// The executor-side runtime: one per process, because the reentry assembly
/// finds entries by a global index.
///
/// ```
/// use std::{ffi::c_void, ptr::NonNull};
/// use lazyrt_runtime::{EntryInfo, EntrySpec, ResolveError, Runtime};
///
/// extern "C" fn forty_two() -> i32 { 42 }
///
/// let runtime = Runtime::global()?;
/// // Any `Resolve`: a closure, a struct, or an `Arc` of either.
/// let resolver = |_entry: &EntryInfo<'_>| -> Result<NonNull<c_void>, ResolveError> {
///     Ok(NonNull::new(forty_two as *mut c_void).unwrap())
/// };
/// let entries = runtime.create_entries(resolver, [EntrySpec::new("answer", 0)])?;
/// // SAFETY: the entry resolves to `forty_two`, which has this signature.
/// let answer: extern "C" fn() -> i32 = unsafe { std::mem::transmute(entries[0].address) };
/// assert_eq!(answer(), 42); // first call: resolves, patches the slot, jumps
/// assert_eq!(answer(), 42); // later calls: one direct jump (see `stats`)
/// assert!(runtime.is_resolved(entries[0].id)?);
/// runtime.free_entries(&[entries[0].id])?;
/// # Ok::<(), lazyrt_runtime::RuntimeError>(())
/// ```
pub struct Runtime {
    pub(crate) reentry: ReentryInfo,
    /// Where things sit in every block's code.
    pub(crate) layout: CodeLayout,
    /// Whether blocks get a code alias (direct stubs).
    pub(crate) direct_stubs: DirectStubs,
    pub(crate) blocks: IndexTable<Block, 512>,
    pub(crate) batches: IndexTable<Batch, 4096>,
    pub(crate) allocator: Mutex<Allocator>,
    pub(crate) failures: Mutex<HashMap<u32, Arc<StoredFailure>>>,
    pub(crate) handlers: FailureHandlers,
    /// Calls that had to sleep because another thread was resolving.
    pub(crate) contended_waits: AtomicU64,
    pub(crate) wait_observer: RwLock<Option<WaitObserver>>,
    /// Every stub lies in `[stubs_from, stubs_to)` (a bound, not a list:
    /// other mappings may sit in between). Lets [`Runtime::entry_at`]
    /// answer "not a stub" without the allocator lock, which a manager asks
    /// on every first call.
    pub(crate) stubs_from: AtomicUsize,
    pub(crate) stubs_to: AtomicUsize,
}

/// A call that slept while another thread resolved its entry.
#[derive(Debug, Clone, Copy)]
pub struct WaitEvent<'a> {
    /// The entry called.
    pub entry: EntryId,
    /// Its name.
    pub name: &'a str,
    /// How long the call slept (from its first wait to the end of resolution).
    pub waited: std::time::Duration,
}

/// Sees every [`WaitEvent`], on the thread that waited (tracers, profilers).
pub type WaitObserver = Arc<dyn Fn(&WaitEvent<'_>) + Send + Sync>;

const _: () =
    assert!((IndexTable::<Block, 512>::CAPACITY as u64) * BLOCK_CAPACITY as u64 >= u32::MAX as u64);

static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();

/// Where an entry's code lies ([`Runtime::entry_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryCode {
    /// The stub: the entry's address.
    pub stub: ExecutorAddr,
    /// Bytes of the stub.
    pub stub_size: u32,
    /// The reentry trampoline the stub's slot points at until resolution.
    pub trampoline: ExecutorAddr,
    /// Bytes of the trampoline.
    pub trampoline_size: u32,
}

/// Counters for memory accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeStats {
    /// Live (created, not freed) entries.
    pub live_entries: usize,
    /// Blocks mapped.
    pub blocks: usize,
    /// Entries the mapped blocks can hold.
    pub capacity: usize,
    /// Bytes mapped for blocks (code, trampolines, slots and records).
    pub mapped_bytes: usize,
    /// Calls so far that slept while another thread resolved their entry.
    pub contended_waits: u64,
    /// Blocks whose stubs become direct jumps once resolved (they have a
    /// code alias; see `LAZYRT_DIRECT_STUBS`). The others' stubs always
    /// jump through their slots.
    pub direct_stub_blocks: usize,
}

impl Runtime {
    /// The process's runtime, initialized on first use (CPU detection).
    /// Fails with [`RuntimeError::Unsupported`] on targets without reentry
    /// assembly.
    pub fn global() -> Result<&'static Runtime, RuntimeError> {
        RUNTIME
            .get_or_init(|| {
                let reentry = arch::init_reentry().ok()?;
                Some(Runtime {
                    reentry,
                    layout: CodeLayout {
                        landing_pads: crate::landing_pads::detected().pads,
                    },
                    direct_stubs: DirectStubs::decide(),
                    blocks: IndexTable::new(),
                    batches: IndexTable::new(),
                    allocator: Mutex::new(Allocator::new()),
                    failures: Mutex::new(HashMap::new()),
                    handlers: FailureHandlers::new(),
                    contended_waits: AtomicU64::new(0),
                    stubs_from: AtomicUsize::new(usize::MAX),
                    stubs_to: AtomicUsize::new(0),
                    wait_observer: RwLock::new(None),
                })
            })
            .as_ref()
            .ok_or_else(RuntimeError::unsupported)
    }

    pub(crate) fn get() -> Option<&'static Runtime> {
        RUNTIME.get().and_then(Option::as_ref)
    }

    /// The `pthread_atfork` child handler: gives every block code pages of
    /// the child's own (see [`crate::code_alias`]). Lock-free: another
    /// thread may have held a lock at the fork, and it does not exist here.
    pub(crate) fn privatize_blocks_after_fork() {
        crate::stub_refresh::forget_thread_after_fork();
        let Some(runtime) = Self::get() else { return };
        for number in 0.. {
            // SAFETY: blocks are never removed from the table; they are
            // inserted in order, so the first gap ends the walk (a block
            // being created at the fork never reached the table).
            let Some(block) = (unsafe { runtime.blocks.get(number) }) else {
                break;
            };
            // SAFETY: we are the child's only thread, inside its fork
            // handler; no patch can be in progress here.
            unsafe { block.privatize_after_fork() };
        }
    }

    /// How the reentry path preserves vector state on this CPU: on x86-64
    /// the variant (`xinuse`, `xsavec`, `xsave`, `fxsave`), chosen once at
    /// start-up, automatically or by `LAZYRT_X86_64_STATE_SAVE` (whose fate
    /// [`StateSave::override_note`](crate::StateSave::override_note) tells),
    /// with its component mask and sizes. Prints as a one-line summary.
    pub fn state_save(&self) -> &StateSave {
        &self.reentry.state_save
    }

    /// Whether resolved stubs become direct jumps in this process, and if
    /// not, why (`LAZYRT_DIRECT_STUBS=off`, no `memfd_create`, or a CPU or
    /// emulator that did not execute a jump stored through the code alias:
    /// see the start-up probe). Stubs whose target is out of direct reach
    /// jump through their slots either way.
    ///
    /// ```
    /// let runtime = lazyrt_runtime::Runtime::global()?;
    /// let (on, why) = runtime.direct_stubs();
    /// assert!(on || why.is_some());
    /// # Ok::<(), lazyrt_runtime::RuntimeError>(())
    /// ```
    pub fn direct_stubs(&self) -> (bool, Option<&str>) {
        (self.direct_stubs.wanted, self.direct_stubs.note.as_deref())
    }

    /// Turns every stub resolved since the last batch into a direct jump
    /// now, on the calling thread. A first call leaves its stub jumping
    /// through the slot and the runtime's `lazyrt-stub-patcher` thread
    /// patches it within a fraction of a millisecond; call this before a
    /// measurement, or where that thread cannot run. Safe at any time, from
    /// any thread, concurrently with calls, redirects and removals.
    pub fn apply_pending_stub_patches(&self) {
        crate::stub_refresh::walk_exclusively(|| {
            for number in 0.. {
                // SAFETY: blocks are never removed from the table.
                let Some(block) = (unsafe { self.blocks.get(number) }) else {
                    break;
                };
                block.refresh_pending_stubs();
            }
        });
    }

    /// Whether the stubs, trampolines and thunks this runtime emits start
    /// with landing pads (`endbr64` / `bti c`) and whether their pages are
    /// mapped BTI-guarded: on AArch64 detected from `HWCAP2_BTI`, on x86-64
    /// the `ibt` cargo feature; `LAZYRT_LANDING_PADS=on|off` overrides
    /// either (its fate in
    /// [`LandingPads::override_note`](crate::LandingPads::override_note)).
    /// Decided once per process. Prints as a one-line summary.
    pub fn landing_pads(&self) -> &'static LandingPads {
        crate::landing_pads::detected()
    }

    pub(crate) fn block_of(&self, index: u32) -> Option<(&Block, usize)> {
        // SAFETY: blocks are never removed from the table.
        let block = unsafe { self.blocks.get(index >> BLOCK_SHIFT) }?;
        Some((block, (index - block.first_index()) as usize))
    }

    /// The block of a live entry, or the error that says why not.
    fn live(&self, entry: EntryId) -> Result<(&Block, usize), RuntimeError> {
        let (block, local) = self
            .block_of(entry.0)
            .ok_or(RuntimeError::UnknownEntry { entry })?;
        if block.cell(local).phase() == Phase::Freed {
            return Err(self.not_live(entry));
        }
        Ok((block, local))
    }

    fn not_live(&self, entry: EntryId) -> RuntimeError {
        match lock(&self.allocator).tombstone(entry.0) {
            Some(name) => RuntimeError::EntryRemoved {
                entry,
                name: name.to_string(),
            },
            None => RuntimeError::UnknownEntry { entry },
        }
    }

    /// The callable address (the stub) of a live entry. Stable for the
    /// entry's lifetime, so function-pointer equality holds.
    pub fn address(&self, entry: EntryId) -> Result<NonNull<c_void>, RuntimeError> {
        let (block, local) = self.live(entry)?;
        Ok(NonNull::new(block.stub(local) as *mut c_void).expect("stub address"))
    }

    /// Where a live entry's code lies: its stub and its reentry trampoline
    /// (for debuggers and profilers, which name both after the entry).
    pub fn entry_code(&self, entry: EntryId) -> Result<EntryCode, RuntimeError> {
        let (block, local) = self.live(entry)?;
        let (stub_size, trampoline_size) = block.code_sizes();
        Ok(EntryCode {
            stub: ExecutorAddr::new(block.stub(local) as u64),
            stub_size: stub_size as u32,
            trampoline: ExecutorAddr::new(block.trampoline(local) as u64),
            trampoline_size: trampoline_size as u32,
        })
    }

    /// Whether `[start, start + len)` lies inside the code part of one of
    /// the runtime's blocks (stubs, trampolines, thunks: mapped, readable
    /// and executable for as long as the process lives).
    pub fn is_runtime_code(&self, start: u64, len: u64) -> bool {
        let (Ok(start), Some(end)) = (usize::try_from(start), start.checked_add(len)) else {
            return false;
        };
        let first = {
            let allocator = lock(&self.allocator);
            match allocator.code_bases.range(..=start).next_back() {
                Some((_, first)) => *first,
                None => return false,
            }
        };
        self.block_of(first).is_some_and(|(block, _)| {
            start >= block.code_base() && end <= (block.code_base() + block.code_len()) as u64
        })
    }

    /// The live entry whose callable address (stub) is `address`, if any.
    pub fn entry_at(&self, address: NonNull<c_void>) -> Option<EntryId> {
        let address = address.as_ptr() as usize;
        if address < self.stubs_from.load(Ordering::Acquire)
            || address >= self.stubs_to.load(Ordering::Acquire)
        {
            return None;
        }
        let first = {
            let allocator = lock(&self.allocator);
            *allocator.code_bases.range(..=address).next_back()?.1
        };
        let (block, _) = self.block_of(first)?;
        let local = block.local_of_stub(address)?;
        let id = EntryId(first + local as u32);
        (block.cell(local).phase() != Phase::Freed).then_some(id)
    }

    /// Resolves `entry` now, as its first call would, without calling it:
    /// its resolver runs once however many threads race (callers wait for
    /// the one that leads), and a resolution that needs the entry itself,
    /// on this thread or through other threads' waits, fails instead of
    /// hanging. Returns the address calls now jump to. A failure is stored
    /// as a failed first call would store it (later calls reach the failure
    /// handler with it), but no failure handler runs here: the error says
    /// what went wrong.
    ///
    /// ```
    /// # use std::{ffi::c_void, ptr::NonNull};
    /// # use lazyrt_runtime::{EntryInfo, EntrySpec, ResolveError, Runtime};
    /// extern "C" fn answer() -> u64 { 42 }
    /// let runtime = Runtime::global()?;
    /// let resolver = |_: &EntryInfo<'_>| -> Result<NonNull<c_void>, ResolveError> {
    ///     Ok(NonNull::new(answer as *mut c_void).unwrap())
    /// };
    /// let entries = runtime.create_entries(resolver, [EntrySpec::new("warm", 0)])?;
    /// // Warm the entry up ahead of its first call.
    /// let target = runtime.resolve(entries[0].id)?;
    /// assert_eq!(target.as_ptr() as usize, answer as usize);
    /// assert!(runtime.is_resolved(entries[0].id)?);
    /// # runtime.free_entries(&[entries[0].id])?;
    /// # Ok::<(), lazyrt_runtime::RuntimeError>(())
    /// ```
    pub fn resolve(&self, entry: EntryId) -> Result<NonNull<c_void>, RuntimeError> {
        let (block, local) = self.live(entry)?;
        let failed = |name: String, reason: &FailureReason| RuntimeError::ResolveFailed {
            entry,
            name,
            reason: reason.to_string(),
            source: match reason {
                FailureReason::Resolver(error) => Some(error.clone()),
                _ => None,
            },
        };
        match crate::resolve::settle(self, block, local, entry.0) {
            Ok(address) => {
                Ok(NonNull::new(address as *mut c_void).expect("published targets are not 0"))
            }
            Err(Unresolved::Failed(stored)) => Err(failed(stored.name.to_string(), &stored.reason)),
            Err(Unresolved::Removed(_)) => Err(self.not_live(entry)),
            Err(Unresolved::Cycle(cycle)) => {
                let reason = crate::resolve::cycle_reason(self, entry.0, &cycle);
                Err(failed(self.name(entry).unwrap_or_default(), &reason))
            }
        }
    }

    /// The entry's phase (also for freed entries).
    pub fn phase(&self, entry: EntryId) -> Result<Phase, RuntimeError> {
        let (block, local) = self
            .block_of(entry.0)
            .ok_or(RuntimeError::UnknownEntry { entry })?;
        Ok(block.cell(local).phase())
    }

    /// Whether calls of the entry now jump straight to an implementation.
    pub fn is_resolved(&self, entry: EntryId) -> Result<bool, RuntimeError> {
        let (block, local) = self.live(entry)?;
        Ok(block.cell(local).phase() == Phase::Resolved)
    }

    /// The address calls of a resolved entry jump to, `None` if unresolved.
    pub fn target(&self, entry: EntryId) -> Result<Option<NonNull<c_void>>, RuntimeError> {
        let (block, local) = self.live(entry)?;
        Ok(match block.cell(local).phase() {
            Phase::Resolved => {
                NonNull::new(block.slot(local).load(Ordering::Acquire) as *mut c_void)
            }
            _ => None,
        })
    }

    /// The entry's name (live or freed and not yet reused).
    pub fn name(&self, entry: EntryId) -> Result<String, RuntimeError> {
        let (block, local) = self
            .block_of(entry.0)
            .ok_or(RuntimeError::UnknownEntry { entry })?;
        let allocator = lock(&self.allocator);
        if let Some(name) = allocator.tombstone(entry.0) {
            return Ok(name.to_string());
        }
        let batch_id = block.record(local).batch.load(Ordering::Relaxed);
        // SAFETY: batches are only dropped by `retire`, under the allocator
        // lock we hold; a live entry keeps its batch.
        match (block.cell(local).phase(), unsafe {
            self.batches.get(batch_id)
        }) {
            (Phase::Freed, _) | (_, None) => Err(RuntimeError::UnknownEntry { entry }),
            (_, Some(batch)) => Ok(batch.name(block.record(local)).to_string()),
        }
    }

    /// Points `entry` at `target` with one atomic store, whatever its phase:
    /// an unresolved entry's next call skips resolution; a call resolving it
    /// right now ends up at `target` too.
    pub fn redirect(&self, entry: EntryId, target: NonNull<c_void>) -> Result<(), RuntimeError> {
        let (block, local) = self.live(entry)?;
        match block.cell(local).redirect(target.as_ptr() as usize) {
            Redirect::Done { was_failed } => {
                if was_failed {
                    lock(&self.failures).remove(&entry.0);
                }
                Ok(())
            }
            Redirect::DoneThenRemoved => {
                self.retire(&[entry.0]);
                Ok(())
            }
            Redirect::Freed => Err(self.not_live(entry)),
        }
    }

    /// Redirects many entries. Every id is checked first: if any is unknown,
    /// freed or listed twice, nothing changes.
    pub fn redirect_many(
        &self,
        targets: &[(EntryId, NonNull<c_void>)],
    ) -> Result<(), RuntimeError> {
        check_distinct(targets.iter().map(|(e, _)| *e))?;
        for (entry, _) in targets {
            self.live(*entry)?;
        }
        for (entry, target) in targets {
            self.redirect(*entry, *target)?;
        }
        Ok(())
    }

    /// Frees entries. Afterwards a call of a freed entry reaches the failure
    /// handler with "entry was removed" until its memory is reused by a later
    /// `create_entries`. An entry being resolved right now is freed when its
    /// resolver returns; the callers waiting for it fail the same way. Every id
    /// is checked first: if any is unknown, already freed or listed twice,
    /// nothing is freed.
    pub fn free_entries(&self, entries: &[EntryId]) -> Result<(), RuntimeError> {
        check_distinct(entries.iter().copied())?;
        for entry in entries {
            self.live(*entry)?;
        }
        let mut retire = Vec::with_capacity(entries.len());
        let mut dropped_failures = Vec::new();
        for entry in entries {
            let (block, local) = self.block_of(entry.0).expect("checked above");
            match block.cell(local).free() {
                Free::Retire { was_failed } => {
                    retire.push(entry.0);
                    if was_failed {
                        dropped_failures.push(entry.0);
                    }
                }
                // Whoever holds it retires it; a concurrent free got there first.
                Free::Deferred | Free::AlreadyFreed => {}
            }
        }
        if !dropped_failures.is_empty() {
            let mut failures = lock(&self.failures);
            for index in dropped_failures {
                failures.remove(&index);
            }
        }
        self.retire(&retire);
        Ok(())
    }

    /// Gives freed entries back to the allocator; drops batches whose last
    /// entry this was (outside the lock: a resolver's `Drop` may call us).
    /// Walks `indices` backwards: the allocator reuses the last index given
    /// back first, so a batch freed in ascending order is handed out again
    /// in ascending order, and its stubs come back as runs
    /// ([`Runtime::create_entry_runs_named_by_resolver`]).
    pub(crate) fn retire(&self, indices: &[u32]) {
        let mut dropped = Vec::new();
        {
            let mut allocator = lock(&self.allocator);
            for &index in indices.iter().rev() {
                let (block, local) = self.block_of(index).expect("retired entry has a block");
                // A plain load and store, not a swap: only retirement writes
                // this field and it runs under the allocator lock, and a
                // locked exchange per entry would serialise the cache misses
                // of a large free (it was 80% of retire's time).
                let record = block.record(local);
                let batch_id = record.batch.load(Ordering::Relaxed);
                record.batch.store(NO_BATCH, Ordering::Relaxed);
                // SAFETY: the batch outlives its entries' retirement, which
                // happens only here, under the allocator lock.
                let batch = unsafe { self.batches.get(batch_id) }.expect("live entry has a batch");
                let name: Box<str> = batch.name(block.record(local)).into();
                if batch.live.fetch_sub(1, Ordering::Relaxed) == 1 {
                    dropped.extend(self.batches.take(batch_id));
                    allocator.give_back_batch_id(batch_id);
                }
                allocator.give_back(index, name);
            }
        }
        drop(dropped);
    }

    /// Installs the process-wide failure handler (default: print and abort).
    /// A [`crate::FailureHandlerScope`] on the calling thread takes precedence.
    pub fn set_failure_handler(&self, handler: impl FailureHandler + 'static) {
        self.handlers.set_process(Arc::new(handler));
    }

    /// Installs (or with `None` removes) the process-wide observer of calls
    /// that had to wait for another thread's resolution. Only such contended
    /// first calls pay for it.
    pub fn set_wait_observer(&self, observer: Option<WaitObserver>) {
        *self
            .wait_observer
            .write()
            .unwrap_or_else(|e| e.into_inner()) = observer;
    }

    pub(crate) fn observe_wait(&self, index: u32, waited: std::time::Duration) {
        let observer = self
            .wait_observer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(observer) = observer {
            let name = self.name(EntryId(index)).unwrap_or_default();
            observer(&WaitEvent {
                entry: EntryId(index),
                name: &name,
                waited,
            });
        }
    }

    /// Memory counters.
    pub fn stats(&self) -> RuntimeStats {
        let allocator = lock(&self.allocator);
        RuntimeStats {
            live_entries: allocator.live_entries,
            blocks: allocator.blocks,
            capacity: allocator.blocks * BLOCK_CAPACITY,
            mapped_bytes: allocator.mapped_bytes,
            contended_waits: self.contended_waits.load(Ordering::Relaxed),
            direct_stub_blocks: allocator.direct_stub_blocks,
        }
    }

    /// Heap bytes of the batch that owns `entry` (names and offsets), for
    /// memory accounting.
    pub fn batch_name_bytes(&self, entry: EntryId) -> Result<usize, RuntimeError> {
        let (block, local) = self.live(entry)?;
        let _allocator = lock(&self.allocator);
        // SAFETY: the allocator lock keeps the batch of a live entry alive.
        let batch = unsafe {
            self.batches
                .get(block.record(local).batch.load(Ordering::Relaxed))
        };
        Ok(batch.map_or(0, Batch::name_bytes))
    }
}

fn check_distinct(entries: impl Iterator<Item = EntryId>) -> Result<(), RuntimeError> {
    let mut ids: Vec<u32> = entries.map(|e| e.0).collect();
    ids.sort_unstable();
    match ids.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(RuntimeError::DuplicateEntry {
            entry: EntryId(w[0]),
        }),
        None => Ok(()),
    }
}
