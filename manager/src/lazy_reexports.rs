//! The LazyReexportsManager: lazy reexports whose address is a runtime stub
//! and whose implementation is looked up (and so compiled) on first call.
//!
//! Setup is two lines (as in LLVM PR #118923):
//!
//! ```
//! use lazyrt::{lazy_reexports, ExecutorAddr, FnUnit, LazyReexportsManager, RequiredState, Session, SymbolFlags};
//!
//! extern "C" fn square(x: u64) -> u64 { x * x }
//!
//! let session = Session::new();
//! let jd = session.create_jit_dylib("main")?;
//! // An implementation that is "compiled" when first needed.
//! let square_impl = session.intern("square$impl");
//! let name = square_impl.clone();
//! jd.define(FnUnit::new("compile square", [(square_impl.clone(), SymbolFlags::CALLABLE)],
//!     move |mut r| {
//!         r.notify_resolved([(name.clone(), ExecutorAddr::from_ptr(square as *const ()))]).unwrap();
//!         r.notify_emitted(&[]).unwrap();
//!     }))?;
//!
//! let manager = LazyReexportsManager::new(&session)?;
//! let entry = session.intern("square");
//! jd.define(lazy_reexports(&manager, [(entry.clone(), (square_impl, SymbolFlags::exported_callable()))]))?;
//!
//! // Looking the entry up gives its stub: nothing is compiled yet.
//! let stub = jd.lookup(&[entry.clone()], RequiredState::Ready)?[&entry].address;
//! // SAFETY: the entry's implementation has this signature.
//! let square_fn = unsafe { stub.to_fn::<extern "C" fn(u64) -> u64>() };
//! assert_eq!(square_fn(12), 144); // first call: looks up square$impl, patches, jumps
//! # Ok::<(), lazyrt::Error>(())
//! ```
//!
//! A failed first call (the implementation is missing, its materializer
//! fails or panics) reaches the runtime's failure handler with the entry's
//! name and the reason, and the error goes to the session's reporter. The
//! entry then stays failed: later calls reach the failure handler with the
//! same error without another lookup, until the entry is redirected.
//!
//! An implementation that is itself a lazy entry (a lazy reexport of a lazy
//! reexport) is resolved before the first call jumps to its stub, so a cycle
//! of them, or an entry that names itself, fails with
//! [`Error::LazyEntryUnresolved`] naming the cycle instead of looping.

use std::sync::{Arc, Weak};

use crate::sync::{AtomicBool, Ordering, RwLock};
use std::time::{Duration, Instant};

use lazyrt_jit_debug::{CodeKind, CodeSymbol, CodeUnit};
use lazyrt_runtime::Runtime;
use smallvec::SmallVec;

use crate::code_events::CodeRegistration;

use crate::dylib::JitDylib;
use crate::error::Error;
use crate::executor::{EntryResolver, ExecutorProcess, LazyEntryId, LazyEntryRuns};
use crate::lifetime::WeakSession;
use crate::responsibility::MaterializationResponsibility;
use crate::session::{LookupFlags, RequiredState, Session};
use crate::symbol::{ExecutorAddr, SymbolFlags, SymbolName};
use crate::unit::MaterializationUnit;

/// Hooks for tools (profilers, tracers, debuggers). Every callback names
/// the entry's JITDylib and the entry by its [`SymbolName`], and gives
/// addresses as [`ExecutorAddr`]s.
pub trait ReexportsListener: Send + Sync {
    /// Stubs were created for these entries of `dylib`.
    fn created(&self, dylib: &JitDylib, entries: &[(SymbolName, ExecutorAddr)]) {
        let _ = (dylib, entries);
    }
    /// `entry` of `dylib` was called for the first time; its
    /// `implementation` is looked up.
    fn first_called(&self, dylib: &JitDylib, entry: &SymbolName, implementation: &SymbolName) {
        let _ = (dylib, entry, implementation);
    }
    /// `entry` of `dylib` resolved to `address` after `elapsed` (lookup and
    /// compile).
    fn resolved(
        &self,
        dylib: &JitDylib,
        entry: &SymbolName,
        address: ExecutorAddr,
        elapsed: Duration,
    ) {
        let _ = (dylib, entry, address, elapsed);
    }
    /// `entry` of `dylib` now jumps to `address`.
    fn redirected(&self, dylib: &JitDylib, entry: &SymbolName, address: ExecutorAddr) {
        let _ = (dylib, entry, address);
    }
    /// These entries of `dylib` were removed (their stubs are freed and will
    /// be reused). `dylib` may itself be on its way out of the session.
    fn removed(&self, dylib: &JitDylib, entries: &[SymbolName]) {
        let _ = (dylib, entries);
    }
}

/// A shared listener (keep a handle to read what it recorded).
impl<T: ReexportsListener + ?Sized> ReexportsListener for Arc<T> {
    fn created(&self, dylib: &JitDylib, entries: &[(SymbolName, ExecutorAddr)]) {
        (**self).created(dylib, entries)
    }
    fn first_called(&self, dylib: &JitDylib, entry: &SymbolName, implementation: &SymbolName) {
        (**self).first_called(dylib, entry, implementation)
    }
    fn resolved(
        &self,
        dylib: &JitDylib,
        entry: &SymbolName,
        address: ExecutorAddr,
        elapsed: Duration,
    ) {
        (**self).resolved(dylib, entry, address, elapsed)
    }
    fn redirected(&self, dylib: &JitDylib, entry: &SymbolName, address: ExecutorAddr) {
        (**self).redirected(dylib, entry, address)
    }
    fn removed(&self, dylib: &JitDylib, entries: &[SymbolName]) {
        (**self).removed(dylib, entries)
    }
}

struct ManagerInner {
    /// Not an owner (see [`Session`]): pending units and the runtime's
    /// batches hold the manager, and must not keep the session alive.
    session: WeakSession,
    /// Where the stubs live (the session's executor).
    executor: Arc<dyn ExecutorProcess>,
    listener: RwLock<Option<Arc<dyn ReexportsListener>>>,
    /// Set once a listener is installed (never cleared).
    has_listener: AtomicBool,
}

impl ManagerInner {
    fn listener(&self) -> Option<Arc<dyn ReexportsListener>> {
        // Most sessions never install one: skip the lock then.
        if !self.has_listener.load(Ordering::Acquire) {
            return None;
        }
        self.listener
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Makes lazy reexports for one session. See the module docs. It does not
/// keep the session alive: once the session has ended, its methods return
/// [`Error::SessionEnded`] and first calls of its entries fail.
#[derive(Clone)]
pub struct LazyReexportsManager {
    inner: Arc<ManagerInner>,
}

impl LazyReexportsManager {
    /// A manager for `session`, whose stubs live in the session's executor
    /// ([`Session::executor`]: this process's runtime unless the session
    /// was built with a remote one; in-process, a
    /// [`RuntimeError::Unsupported`](lazyrt_runtime::RuntimeError::Unsupported)
    /// on targets without reentry assembly).
    pub fn new(session: &Session) -> Result<Self, Error> {
        let executor = session.executor().clone();
        if executor.info().kind == "in-process" {
            Runtime::global()?;
        }
        Ok(Self {
            inner: Arc::new(ManagerInner {
                session: session.downgrade(),
                executor,
                listener: RwLock::new(None),
                has_listener: AtomicBool::new(false),
            }),
        })
    }

    /// The session it makes stubs for, or [`Error::SessionEnded`].
    pub fn session(&self) -> Result<Session, Error> {
        self.inner.session.live()
    }

    /// Installs the listener.
    pub fn set_listener(&self, listener: impl ReexportsListener + 'static) {
        *self
            .inner
            .listener
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(listener));
        self.inner.has_listener.store(true, Ordering::Release);
    }

    /// Points the lazy reexport `entry` of `dylib` at `address` atomically,
    /// resolved or not (tiered compilation; an unresolved entry then skips
    /// resolution). Looking `entry` up creates its stub if needed.
    pub fn redirect(
        &self,
        dylib: &JitDylib,
        entry: &SymbolName,
        address: ExecutorAddr,
    ) -> Result<(), Error> {
        self.redirect_many(dylib, &[(entry.clone(), address)])
    }

    /// Redirects several entries of `dylib`; all are checked before any moves.
    pub fn redirect_many(
        &self,
        dylib: &JitDylib,
        targets: &[(SymbolName, ExecutorAddr)],
    ) -> Result<(), Error> {
        let names: Vec<SymbolName> = targets.iter().map(|(n, _)| n.clone()).collect();
        let stubs = dylib.session()?.lookup_blocking(
            &[(dylib.clone(), LookupFlags::MatchAllSymbols)],
            names,
            RequiredState::Resolved,
        )?;
        let mut moves = Vec::with_capacity(targets.len());
        for (name, address) in targets {
            let id = self.inner.executor.lazy_entry_at(stubs[name].address);
            let (Some(id), false) = (id, address.is_null()) else {
                return Err(Error::NotALazyReexport {
                    symbol: name.clone(),
                    dylib: dylib.name.clone(),
                });
            };
            moves.push((id, *address));
        }
        self.inner.executor.redirect_entries(&moves)?;
        if let Some(listener) = self.inner.listener() {
            for (name, address) in targets {
                listener.redirected(dylib, name, *address);
            }
        }
        Ok(())
    }
}

/// Lazy reexports of implementations in the JITDylib they are defined in:
/// `entry -> (implementation, flags)`.
pub fn lazy_reexports(
    manager: &LazyReexportsManager,
    aliases: impl IntoIterator<Item = (SymbolName, (SymbolName, SymbolFlags))>,
) -> LazyReexportsUnit {
    LazyReexportsUnit {
        manager: manager.inner.clone(),
        source: None,
        aliases: collect_aliases(aliases),
    }
}

/// Lazy reexports of implementations in `source`.
pub fn lazy_reexports_from(
    manager: &LazyReexportsManager,
    source: &JitDylib,
    aliases: impl IntoIterator<Item = (SymbolName, (SymbolName, SymbolFlags))>,
) -> LazyReexportsUnit {
    LazyReexportsUnit {
        manager: manager.inner.clone(),
        source: Some(source.clone()),
        aliases: collect_aliases(aliases),
    }
}

/// The alias list of a unit: inline for one alias; a larger list given as a
/// `Vec` is reused in place (the flattened triple has the pair's size), not
/// copied.
fn collect_aliases(
    aliases: impl IntoIterator<Item = (SymbolName, (SymbolName, SymbolFlags))>,
) -> SmallVec<[(SymbolName, SymbolName, SymbolFlags); 1]> {
    let aliases = aliases.into_iter().map(|(e, (i, f))| (e, i, f));
    if aliases.size_hint().1.is_some_and(|n| n <= 1) {
        return aliases.collect();
    }
    SmallVec::from_vec(aliases.collect())
}

const _: () = assert!(
    size_of::<(SymbolName, SymbolName, SymbolFlags)>()
        == size_of::<(SymbolName, (SymbolName, SymbolFlags))>()
);

/// The unit [`lazy_reexports`] makes. Materializing it creates the stubs
/// (one runtime batch); it never touches the implementations.
pub struct LazyReexportsUnit {
    manager: Arc<ManagerInner>,
    source: Option<JitDylib>,
    /// `(entry, implementation, flags)`; inline for one alias (JITs that
    /// define functions one at a time make one such unit per function).
    aliases: SmallVec<[(SymbolName, SymbolName, SymbolFlags); 1]>,
}

impl MaterializationUnit for LazyReexportsUnit {
    fn name(&self) -> &str {
        "lazy reexports"
    }

    fn symbols(&self) -> Vec<(SymbolName, SymbolFlags)> {
        // The definition keeps this list: a batch's is large and written
        // in full at once.
        let mut symbols = crate::prefault::prefaulted_vec(self.aliases.len());
        symbols.extend(self.aliases.iter().map(|(e, _, f)| (e.clone(), *f)));
        symbols
    }

    fn discard(&mut self, _dylib: &JitDylib, symbol: &SymbolName) {
        self.aliases.retain(|(e, _, _)| e != symbol);
    }

    fn materialize(self: Box<Self>, mut responsibility: MaterializationResponsibility) {
        let LazyReexportsUnit {
            manager,
            source,
            aliases,
        } = *self;
        let target = responsibility.target_dylib().clone();
        let source = source.unwrap_or_else(|| target.clone());
        let batch = Arc::new(ReexportBatch {
            manager: Arc::downgrade(&manager),
            source: [(source, LookupFlags::MatchAllSymbols)],
            target,
            names: batch_names(aliases),
        });
        let count = batch.names.len();
        // Runs, not a list: a batch of 100,000 is about 25 of them (a
        // batch on indexes a freed batch gave back, too: the runtime hands
        // them out in the order they were handed out before).
        let stubs = match manager
            .executor
            .create_lazy_entry_runs(batch.clone(), count)
        {
            Ok(stubs) => stubs,
            Err(e) => return responsibility.fail(e),
        };
        // Removing these symbols (or ending the session) frees the stubs;
        // the runtime reuses them. The clean-up holds what freeing needs,
        // not the manager: it works whatever was dropped first.
        let code = announce_stubs(&manager, &batch, &stubs);
        responsibility.on_removal(
            StubCleanup {
                executor: manager.executor.clone(),
                // A copy: inline for one run, a few hundred bytes for a
                // large batch.
                stubs: stubs.clone(),
                batch: batch.clone(),
                code,
            }
            .into_fn(),
        );
        let addresses = batch
            .names
            .iter()
            .zip(stubs.entries())
            .map(|((name, _), stub)| (name, stub.1));
        if let Some(listener) = manager.listener() {
            let created: Vec<(SymbolName, ExecutorAddr)> =
                addresses.clone().map(|(n, a)| (n.clone(), a)).collect();
            listener.created(&batch.target, &created);
        }
        // Stubs are ready the moment they exist: resolve and emit in one pass.
        if let Err(e) = responsibility.notify_ready_all(addresses) {
            responsibility.fail(e);
        }
    }
}

/// What freeing a unit's stubs needs, held by the removal clean-up.
struct StubCleanup {
    executor: Arc<dyn ExecutorProcess>,
    stubs: LazyEntryRuns,
    /// The batch: the entries' names and JITDylib for the listener, and
    /// (weakly) the manager whose listener hears of it.
    batch: Arc<ReexportBatch>,
    /// The stubs' and trampolines' announcement to code listeners
    /// (debuggers, profilers); withdrawn before the entries are reused.
    code: Option<CodeRegistration>,
}

impl StubCleanup {
    fn into_fn(self) -> impl FnOnce() + Send + 'static {
        move || self.free()
    }

    fn free(mut self) {
        drop(self.code.take());
        let ids: Vec<LazyEntryId> = self.stubs.ids().collect();
        let result = self.executor.free_entries(&ids);
        let Some(manager) = self.batch.manager.upgrade() else {
            return; // nobody to tell
        };
        if let Err(e) = result
            && let Some(session) = manager.session.upgrade()
        {
            session.report_error(&e);
        }
        if let Some(listener) = manager.listener() {
            let entries: Vec<SymbolName> = self.batch.entry_names().cloned().collect();
            listener.removed(&self.batch.target, &entries);
        }
    }
}

/// Announces a batch's stubs and reentry trampolines to the session's code
/// listeners, named `entry$stub` and `entry$reentry` (nothing when none
/// listens).
fn announce_stubs(
    manager: &ManagerInner,
    batch: &ReexportBatch,
    stubs: &LazyEntryRuns,
) -> Option<CodeRegistration> {
    if !crate::code_events::any_code_listener() {
        return None;
    }
    let session = manager.session.upgrade()?;
    if !session.has_code_listeners() {
        return None;
    }
    let ids: Vec<LazyEntryId> = stubs.ids().collect();
    let code = match manager.executor.describe_lazy_entries(&ids) {
        Ok(code) => code,
        Err(e) => {
            session.report_error(&e);
            return None;
        }
    };
    let mut symbols = Vec::with_capacity(code.len() * 2);
    for (name, code) in batch.entry_names().zip(&code) {
        symbols.push(CodeSymbol {
            name: format!("{name}$stub"),
            kind: CodeKind::Stub,
            address: code.stub,
            size: code.stub_size.into(),
        });
        symbols.push(CodeSymbol {
            name: format!("{name}$reentry"),
            kind: CodeKind::ReentryTrampoline,
            address: code.trampoline,
            size: code.trampoline_size.into(),
        });
    }
    Some(session.announce_code(CodeUnit {
        symbols,
        eh_frame: None,
        lines: Vec::new(),
    }))
}

/// When an implementation's address is itself a lazy entry's stub (a lazy
/// reexport of a lazy reexport, or of itself), resolves that entry before
/// this one jumps there. A cycle of such entries then fails with the cycle
/// named (the runtime sees the entry being resolved again, on this thread
/// or through other threads' waits) instead of calls bouncing between stubs
/// forever. Calls still go through the other entry's stub, so redirecting
/// it redirects this entry too.
fn resolve_chained(manager: &ManagerInner, address: ExecutorAddr) -> Result<(), Error> {
    let Some(next) = manager.executor.lazy_entry_at(address) else {
        return Ok(()); // plain code: the common case
    };
    manager.executor.resolve_entry(next).map(|_| ())
}

/// Drops `owner` here unless it is the last owner: then on a thread of its
/// own (for callers that must not block; see `resolve_if_ready`).
fn drop_last_elsewhere<T: Send + 'static>(owner: Arc<T>) {
    if let Some(last) = Arc::into_inner(owner) {
        let spawned = std::thread::Builder::new()
            .name("lazyrt-release".into())
            .spawn(move || drop(last));
        // Out of threads: dropped here after all (the Err holds nothing).
        drop(spawned);
    }
}

/// What the runtime asks on a first call: one per materialized unit. The
/// runtime keeps it until the entries are freed, so it holds nothing that
/// keeps the session alive (JITDylib handles are weak, the manager too).
struct ReexportBatch {
    manager: Weak<ManagerInner>,
    /// Where the implementations are looked up: the source JITDylib, all
    /// its symbols visible (kept as the search order the lookup takes).
    source: [(JitDylib, LookupFlags); 1],
    /// The JITDylib the entries are defined in (for the listener).
    target: JitDylib,
    /// `(entry, implementation)` by entry tag: the runtime asks here for
    /// the entries' names (it keeps no copy) and the first calls look up
    /// the implementations. Inline for a one-alias unit.
    names: SmallVec<[(SymbolName, SymbolName); 1]>,
}

impl ReexportBatch {
    fn entry(&self, tag: u64) -> Option<&SymbolName> {
        self.names.get(tag as usize).map(|(entry, _)| entry)
    }

    fn implementation(&self, tag: u64) -> Option<&SymbolName> {
        self.names
            .get(tag as usize)
            .map(|(_, implementation)| implementation)
    }

    fn entry_names(&self) -> impl Iterator<Item = &SymbolName> {
        self.names.iter().map(|(entry, _)| entry)
    }
}

/// The unit's aliases without their flags, as the batch keeps them. A
/// spilled list is converted in its own buffer (pairs are smaller than
/// triples) and the buffer shrunk in place: no fresh pages, which at
/// 100,000 aliases is 1.6 MB less to fault in than two new name lists.
fn batch_names(
    aliases: SmallVec<[(SymbolName, SymbolName, SymbolFlags); 1]>,
) -> SmallVec<[(SymbolName, SymbolName); 1]> {
    if !aliases.spilled() {
        return aliases.into_iter().map(|(e, i, _)| (e, i)).collect();
    }
    let mut pairs: Vec<(SymbolName, SymbolName)> = aliases
        .into_vec()
        .into_iter()
        .map(|(e, i, _)| (e, i))
        .collect();
    pairs.shrink_to_fit();
    SmallVec::from_vec(pairs)
}

impl EntryResolver for ReexportBatch {
    fn entry_name(&self, tag: u64) -> Option<&str> {
        self.entry(tag).map(SymbolName::as_str)
    }

    fn resolve_if_ready(&self, tag: u64) -> Option<ExecutorAddr> {
        let manager = self.manager.upgrade()?;
        let session = manager.session.upgrade();
        let found = session.as_ref().and_then(|session| {
            // A listener hears of every first call and may take its time:
            // those first calls take the general path.
            if manager.has_listener.load(Ordering::Acquire) {
                return None;
            }
            let implementation = self.implementation(tag)?;
            let found = crate::lookup::lookup_one_if_ready(
                session,
                &self.source,
                implementation,
                RequiredState::Ready,
            )?;
            // A null address is an error, a lazy entry a chain to resolve
            // first: both for `resolve`.
            let chained = manager.executor.lazy_entry_at(found.address).is_some();
            (!found.address.is_null() && !chained).then_some(found.address)
        });
        // Upgraded here, either may have become the last owner meanwhile
        // (the user dropped the session or the manager): ending the
        // session or dropping the executor waits for the executor, which
        // the thread asking (a connection's reader) must never do.
        drop_last_elsewhere(manager);
        if let Some(session) = session {
            drop_last_elsewhere(session.inner);
        }
        found
    }

    fn resolve(&self, tag: u64) -> Result<ExecutorAddr, Error> {
        let Some(manager) = self.manager.upgrade() else {
            return Err(Error::ManagerDropped);
        };
        let Some(session) = manager.session.upgrade() else {
            return Err(Error::SessionEnded);
        };
        let Some((entry, implementation)) = self.names.get(tag as usize) else {
            return Err(Error::Executor(crate::executor::ExecutorError::Protocol(
                format!("no entry with tag {tag} in a batch of {}", self.names.len()),
            )));
        };
        let listener = manager.listener();
        if let Some(listener) = &listener {
            listener.first_called(&self.target, entry, implementation);
        }
        // The clock is read only for a listener.
        let start = listener.as_ref().map(|_| Instant::now());
        let found =
            crate::lookup::lookup_one(&session, &self.source, implementation, RequiredState::Ready);
        let source_dylib = || self.source[0].0.name.clone();
        let error = match found {
            Ok(found) if found.address.is_null() => Error::NullAddress {
                symbol: implementation.clone(),
                dylib: source_dylib(),
            },
            Ok(found) => match resolve_chained(&manager, found.address) {
                Ok(()) => {
                    if let (Some(listener), Some(start)) = (&listener, start) {
                        listener.resolved(&self.target, entry, found.address, start.elapsed());
                    }
                    return Ok(found.address);
                }
                Err(Error::Runtime(source)) => Error::LazyEntryUnresolved {
                    symbol: implementation.clone(),
                    dylib: source_dylib(),
                    source,
                },
                Err(other) => other,
            },
            Err(e) => e,
        };
        // The call hands the error to its failure handler, whoever handles
        // it: once is enough. An error that may go away (a missing or
        // failed definition, which the next call asks about again) is not
        // reported here, or every call of a broken function would repeat
        // it; a lasting one (a JITDylib removed, a cycle) is, once, for the
        // controller's log (a remote executor's handler is elsewhere).
        if !error.may_succeed_later() {
            session.report_error(&error);
        }
        Err(error)
    }
}
