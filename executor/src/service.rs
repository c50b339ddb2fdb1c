//! What the executor does for its controller: the handler of every request
//! ([`ExecutorService`]) and the resolver its entries use on a first call
//! ([`RemoteResolve`]: one request to the controller per entry, however many
//! executor threads race; the runtime makes the others wait).

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::{Arc, Condvar, Mutex};

use lazyrt_runtime::{EntryId, EntryInfo, EntrySpec, Resolve, ResolveError, Runtime};

use lazyrt_jit_debug::{DebugOutputs, DebugUnitId};

use crate::bootstrap;
use crate::debug_service::{self, DebugService};
use crate::live_entries::LiveEntries;
use crate::memory_service::{CodePatchView, CodeWriteView, MemoryService, SegmentView};
use crate::peer::{Peer, RequestHandler, expect_address};
use crate::protocol::{Reply, Request, Response};

/// Live entries a controller may hold unless told otherwise.
pub const DEFAULT_MAX_ENTRIES: usize = 64 << 20;

/// Resolves an executor entry by asking the controller.
pub struct RemoteResolve {
    peer: Peer,
    batch: u64,
}

impl Resolve for RemoteResolve {
    fn resolve(&self, entry: &EntryInfo<'_>) -> Result<NonNull<c_void>, ResolveError> {
        let request = Request::ResolveImplementation {
            batch: self.batch,
            tag: entry.tag,
            entry: entry.id.0,
        };
        let reply = self.peer.request(&request).map_err(|e| match e {
            crate::peer::PeerError::Disconnected(reason) => {
                ResolveError::new(format!("the controller is gone ({reason})"))
            }
            other => ResolveError::new(other.to_string()),
        })?;
        let address = match reply {
            // The controller says whether a later call may succeed (the
            // function may be defined again there).
            Reply::Unresolved { reason, retry } => {
                let error = ResolveError::new(reason);
                return Err(if retry { error.retry_later() } else { error });
            }
            reply => expect_address(&request, reply).map_err(ResolveError::from_error)?,
        };
        NonNull::new(address as *mut c_void)
            .ok_or_else(|| ResolveError::new("the controller answered a null address"))
    }
}

/// How the connection ended, for the executor's main thread.
#[derive(Default)]
struct Ending {
    reason: Option<String>,
    calls_running: usize,
}

/// Serves a controller: memory, entries, symbols and calls.
pub struct ExecutorService {
    runtime: Result<&'static Runtime, String>,
    /// Entries this controller created and has not freed: the only ones
    /// its requests may name.
    entries: Mutex<LiveEntries>,
    max_entries: usize,
    memory: MemoryService,
    debug: DebugService,
    ending: Mutex<Ending>,
    changed: Condvar,
}

impl ExecutorService {
    /// A service over this process's runtime.
    pub fn new() -> Arc<Self> {
        Self::with_entry_limit(DEFAULT_MAX_ENTRIES)
    }

    /// A service that lets its controller hold at most `max_entries` live
    /// entries.
    pub fn with_entry_limit(max_entries: usize) -> Arc<Self> {
        Arc::new(Self {
            runtime: Runtime::global().map_err(|e| e.to_string()),
            entries: Mutex::new(LiveEntries::default()),
            max_entries,
            memory: MemoryService::new(bootstrap::page_size()),
            debug: DebugService::new(),
            ending: Mutex::new(Ending::default()),
            changed: Condvar::new(),
        })
    }

    fn runtime(&self) -> Result<&'static Runtime, String> {
        self.runtime.clone()
    }

    /// Whether the connection has ended.
    pub fn has_ended(&self) -> bool {
        self.ending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reason
            .is_some()
    }

    /// Waits until the connection ends, then (bounded by `grace`) for calls
    /// still running; returns why it ended.
    pub fn wait_for_end(&self, grace: std::time::Duration) -> String {
        let mut ending = self.ending.lock().unwrap_or_else(|e| e.into_inner());
        while ending.reason.is_none() {
            ending = self.changed.wait(ending).unwrap_or_else(|e| e.into_inner());
        }
        let deadline = std::time::Instant::now() + grace;
        while ending.calls_running > 0 {
            let now = std::time::Instant::now();
            if now >= deadline {
                break;
            }
            ending = self
                .changed
                .wait_timeout(ending, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        ending.reason.clone().unwrap_or_default()
    }

    fn live_entry(&self, id: u32) -> Result<EntryId, String> {
        if !self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&id)
        {
            return Err(format!(
                "entry #{id} is not a live entry of this controller"
            ));
        }
        Ok(EntryId(id))
    }

    /// Frees every entry the controller left (for a process that serves
    /// controllers one after another, and the fuzz harness).
    pub fn free_all_entries(&self) -> Result<(), String> {
        let ids: Vec<EntryId> = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            entries.drain().into_iter().map(EntryId).collect()
        };
        self.runtime()?
            .free_entries(&ids)
            .map_err(|e| e.to_string())
    }

    fn call(&self, address: u64, arg_sets: Vec<Vec<u64>>) -> Response {
        let rt = self.runtime()?;
        let is_entry = NonNull::new(address as *mut c_void)
            .and_then(|a| rt.entry_at(a))
            .is_some_and(|id| self.live_entry(id.0).is_ok());
        if !is_entry && !self.memory.is_code(address) {
            return Err(format!(
                "call: {address:#x} is neither a live entry nor finalized code of this executor"
            ));
        }
        {
            let mut ending = self.ending.lock().unwrap_or_else(|e| e.into_inner());
            ending.calls_running += 1;
        }
        // SAFETY: the address is a live entry's stub or finalized code (just
        // checked); the controller vouches for the signature.
        let results = unsafe { call_on_threads(address, &arg_sets) };
        let mut ending = self.ending.lock().unwrap_or_else(|e| e.into_inner());
        ending.calls_running -= 1;
        self.changed.notify_all();
        results.map(Reply::Values)
    }
}

impl RequestHandler for ExecutorService {
    fn handle(&self, peer: &Peer, request: Request) -> Response {
        match request {
            Request::Ping => Ok(Reply::Unit),
            Request::Reserve { bytes } => self.memory.reserve(bytes).map(Reply::Address),
            Request::Finalize { segments } => {
                let views: Vec<SegmentView<'_>> = segments
                    .iter()
                    .map(|s| SegmentView {
                        address: s.address,
                        protection: s.protection,
                        bytes: &s.bytes,
                    })
                    .collect();
                self.memory.finalize(&views).map(|()| Reply::Unit)
            }
            Request::Release { address } => self
                .debug
                // Nothing registered may keep pointing into it.
                .release(address, || self.memory.release(address))
                .map(|()| Reply::Unit),
            Request::CreateEntries {
                batch,
                first_tag,
                names,
            } => {
                let rt = self.runtime()?;
                // Counted before creating (and given back on failure), so
                // racing requests cannot overshoot the limit.
                {
                    let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
                    if entries.len() + names.len() > self.max_entries {
                        return Err(format!(
                            "create entries: {} more would exceed this executor's limit of {} live entries ({} live)",
                            names.len(),
                            self.max_entries,
                            entries.len()
                        ));
                    }
                }
                let resolver = RemoteResolve {
                    peer: peer.clone(),
                    batch,
                };
                let entries = rt
                    .create_entries_from(
                        resolver,
                        names
                            .iter()
                            .enumerate()
                            .map(|(i, n)| EntrySpec::new(n, first_tag.wrapping_add(i as u64))),
                    )
                    .map_err(|e| e.to_string())?;
                self.entries
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(entries.iter().map(|e| e.id.0));
                Ok(Reply::Entries(
                    entries
                        .iter()
                        .map(|e| (e.id.0, e.address.as_ptr() as u64))
                        .collect(),
                ))
            }
            Request::Redirect { moves } => {
                let rt = self.runtime()?;
                let mut checked = Vec::with_capacity(moves.len());
                for (id, target) in moves {
                    let target = NonNull::new(target as *mut c_void)
                        .ok_or_else(|| format!("redirect: entry #{id} to a null address"))?;
                    checked.push((self.live_entry(id)?, target));
                }
                rt.redirect_many(&checked).map_err(|e| e.to_string())?;
                Ok(Reply::Unit)
            }
            Request::FreeEntries { entries } => {
                let rt = self.runtime()?;
                // Forgotten before the runtime frees them (it reuses freed
                // ids at once: a CreateEntries served meanwhile may get them
                // back), and remembered again if freeing fails.
                let ids: Vec<EntryId> = {
                    let mut live = self.entries.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(unknown) = entries.iter().find(|id| !live.contains(id)) {
                        return Err(format!(
                            "entry #{unknown} is not a live entry of this controller"
                        ));
                    }
                    for id in &entries {
                        live.remove(id);
                    }
                    entries.iter().map(|id| EntryId(*id)).collect()
                };
                if let Err(e) = rt.free_entries(&ids) {
                    let mut live = self.entries.lock().unwrap_or_else(|e| e.into_inner());
                    live.extend(entries);
                    return Err(e.to_string());
                }
                Ok(Reply::Unit)
            }
            Request::ResolveEntry { entry } => {
                let rt = self.runtime()?;
                let id = self.live_entry(entry)?;
                rt.resolve(id)
                    .map(|a| Reply::Address(a.as_ptr() as u64))
                    .map_err(|e| e.to_string())
            }
            Request::LookupSymbols { names } => Ok(Reply::Addresses(
                names
                    .iter()
                    .map(|n| bootstrap::process_symbol(n).unwrap_or(0))
                    .collect(),
            )),
            Request::Call { address, arg_sets } => self.call(address, arg_sets),
            Request::ResolveImplementation { .. } => Err(
                "resolve implementation: the executor resolves nothing for its controller".into(),
            ),
            Request::DescribeEntries { entries } => {
                let ids = entries
                    .iter()
                    .map(|id| self.live_entry(*id))
                    .collect::<Result<Vec<_>, _>>()?;
                let code = debug_service::describe_entries(&ids)?;
                Ok(Reply::Values(
                    code.iter()
                        .flat_map(|c| {
                            [
                                c.stub.value(),
                                c.stub_size.into(),
                                c.trampoline.value(),
                                c.trampoline_size.into(),
                            ]
                        })
                        .collect(),
                ))
            }
            Request::EnableDebugOutputs { outputs } => {
                let outputs = DebugOutputs::from_bits(outputs)
                    .ok_or_else(|| format!("unknown debug output bits {outputs:#x}"))?;
                self.debug.enable(outputs).map(|()| Reply::Unit)
            }
            Request::RegisterCode { unit } => self
                .debug
                .register(&self.memory, &unit)
                .map(|id| Reply::Address(id.0)),
            Request::DeregisterCode { id } => {
                self.debug.deregister(DebugUnitId(id)).map(|()| Reply::Unit)
            }
            Request::ReserveCode { bytes } => self.memory.reserve_code(bytes).map(Reply::Address),
            Request::WriteCode { writes } => {
                let views: Vec<CodeWriteView<'_>> = writes
                    .iter()
                    .map(|w| CodeWriteView {
                        address: w.address,
                        bytes: &w.bytes,
                    })
                    .collect();
                self.memory.write_code(&views).map(|()| Reply::Unit)
            }
            Request::PatchCode { patches } => {
                let views: Vec<CodePatchView> = patches
                    .iter()
                    .map(|p| CodePatchView {
                        address: p.address,
                        expected: p.expected,
                        new: p.new,
                    })
                    .collect();
                self.memory.patch_code(&views).map(|()| Reply::Unit)
            }
        }
    }

    fn answers_at_once(&self, request: &Request) -> bool {
        // Memory and creation requests touch no entry another request may
        // be resolving and take no lock JIT'd code may hold; redirect, free
        // and resolve may wait for a first call that waits for the
        // controller, and dlsym takes the dynamic loader's lock (which a
        // JIT'd thread inside dlopen may hold while it calls a lazy entry).
        matches!(
            request,
            Request::Ping
                | Request::Reserve { .. }
                | Request::Finalize { .. }
                | Request::Release { .. }
                | Request::CreateEntries { .. }
                | Request::EnableDebugOutputs { .. }
                | Request::RegisterCode { .. }
                | Request::DeregisterCode { .. }
                | Request::ReserveCode { .. }
                | Request::WriteCode { .. }
                | Request::PatchCode { .. }
        )
    }

    fn disconnected(&self, reason: &str) {
        let mut ending = self.ending.lock().unwrap_or_else(|e| e.into_inner());
        ending.reason.get_or_insert_with(|| reason.to_string());
        self.changed.notify_all();
    }
}

/// Calls `address` as `extern "C" fn(u64, u64, u64, u64, u64, u64) -> u64`
/// once per argument set (missing arguments are 0), each on its own thread,
/// all released together (a single set runs on the calling thread). The values returned, by set.
///
/// # Safety
/// `address` must be code (or a live stub) of this process with an
/// integer-argument, integer-result C signature taking at most six
/// arguments, safe to call with these arguments from any thread.
pub unsafe fn call_on_threads(address: u64, arg_sets: &[Vec<u64>]) -> Result<Vec<u64>, String> {
    type Function = extern "C" fn(u64, u64, u64, u64, u64, u64) -> u64;
    if arg_sets.is_empty()
        || arg_sets
            .iter()
            .any(|s| s.len() > crate::protocol::MAX_CALL_ARGS)
    {
        return Err(format!(
            "call: 1 to {} argument sets of at most {} arguments",
            crate::protocol::MAX_CALL_THREADS,
            crate::protocol::MAX_CALL_ARGS
        ));
    }
    // SAFETY: the caller guarantees `address` is a function of this type
    // (passing unused argument registers is harmless in both ABIs).
    let f: Function = unsafe { std::mem::transmute::<usize, Function>(address as usize) };
    let call = |args: &[u64]| {
        let a = |i: usize| args.get(i).copied().unwrap_or(0);
        f(a(0), a(1), a(2), a(3), a(4), a(5))
    };
    if let [args] = arg_sets {
        // One set: on this thread (no thread start-up in the measurement
        // of a single call).
        return std::panic::catch_unwind(|| call(args))
            .map(|v| vec![v])
            .map_err(|_| "call: the called function panicked".to_string());
    }
    // Opened once every thread is started (or failed to start): a thread
    // that cannot start leaves no other waiting forever.
    let gate = (Mutex::new(false), Condvar::new());
    std::thread::scope(|s| {
        let handles: Vec<_> = arg_sets
            .iter()
            .map(|args| {
                let (gate, call) = (&gate, &call);
                std::thread::Builder::new()
                    .name("lazyrt-call".into())
                    .spawn_scoped(s, move || {
                        let mut open = gate.0.lock().unwrap_or_else(|e| e.into_inner());
                        while !*open {
                            open = gate.1.wait(open).unwrap_or_else(|e| e.into_inner());
                        }
                        drop(open);
                        call(args)
                    })
            })
            .collect();
        *gate.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
        gate.1.notify_all();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h
                    .join()
                    .map_err(|_| "call: the called function panicked".to_string()),
                Err(e) => Err(format!("call: cannot start a thread: {e}")),
            })
            .collect::<Result<Vec<u64>, String>>()
    })
}
