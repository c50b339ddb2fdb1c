//! [`RemoteExecutor`]: a `lazyrt-executor` process runs the JIT'd code.
//!
//! Every [`ExecutorProcess`] method is one request over the connection
//! (a batch of entries is one request however large). The executor asks
//! back with one `ResolveImplementation` per first-called entry; this side
//! serves it on a pool thread by calling the batch's [`EntryResolver`],
//! which may itself send requests (writing the compiled code) before it
//! answers. When the executor dies or the connection breaks, every pending
//! and later method fails with [`ExecutorError::Gone`] naming how (for a
//! spawned executor, its exit status or signal).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use lazyrt_executor::handshake;
use lazyrt_executor::peer::{Peer, PeerError, PeerStats, RequestHandler, unexpected};
use lazyrt_executor::protocol::{MAX_PAYLOAD, NameList, Reply, Request, Response, Segment};
use lazyrt_executor::transport::{Channel, ConnectionSpec};

use lazyrt_jit_debug::{CodeUnit, DebugOutputs, DebugUnitId};
use lazyrt_runtime::EntryCode;

use super::code_requests;
use super::{
    CodePatch, CodeWrite, EntryResolver, ExecutorError, ExecutorInfo, ExecutorProcess, LazyEntryId,
    MemorySegment,
};
use crate::error::Error;
use crate::symbol::ExecutorAddr;

/// Round trips and bytes of a connection (see [`RemoteExecutor::stats`]).
pub type RemoteStats = PeerStats;

/// Largest chunk of code or data (or names) one request carries.
const FINALIZE_CHUNK: usize = (MAX_PAYLOAD as usize) / 2;
/// Wire bytes of a segment besides its contents.
const SEGMENT_OVERHEAD: usize = 13;
/// Most entries one create, redirect or free request names (its reply, 12
/// bytes an entry, stays far under the cap).
const BATCH_CHUNK: usize = 1 << 20;

struct Batch {
    resolver: Arc<dyn EntryResolver>,
    live: usize,
}

#[derive(Default)]
struct Entries {
    /// Entry id -> (batch, tag, stub).
    by_id: EntriesById,
    /// Stub -> entry id.
    by_stub: HashMap<u64, u32>,
}

/// Entry id -> (batch, tag, stub): a vector indexed by id (the executor's
/// runtime hands out dense, reused ids), no hashing per entry.
#[derive(Default)]
struct EntriesById(Vec<Option<(u64, u64, u64)>>);

impl EntriesById {
    fn insert(&mut self, id: u32, value: (u64, u64, u64)) {
        let i = id as usize;
        if i >= self.0.len() {
            self.0.resize(i + 1, None);
        }
        self.0[i] = Some(value);
    }

    fn get(&self, id: &u32) -> Option<&(u64, u64, u64)> {
        self.0.get(*id as usize).and_then(Option::as_ref)
    }

    fn remove(&mut self, id: &u32) -> Option<(u64, u64, u64)> {
        self.0.get_mut(*id as usize).and_then(Option::take)
    }
}

/// The controller's tables, shared with the handler serving the executor.
#[derive(Default)]
struct Tables {
    next_batch: AtomicU64,
    batches: RwLock<HashMap<u64, Batch>>,
    entries: Mutex<Entries>,
    /// Entry -> the lazy entry its resolution waits for (a lazy reexport
    /// of a lazy reexport, resolved through `resolve_entry`): the executor's
    /// runtime cannot see such waits across the process boundary, so
    /// cycles are found here.
    chains: Mutex<HashMap<u32, u32>>,
}

thread_local! {
    /// The executor entry whose first call this thread is serving.
    static SERVING: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
}

impl Tables {
    fn entry_name(&self, id: u32) -> String {
        let at = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_id
            .get(&id)
            .map(|(batch, tag, _)| (*batch, *tag));
        at.and_then(|(batch, tag)| {
            let batches = self.batches.read().unwrap_or_else(|e| e.into_inner());
            batches
                .get(&batch)
                .and_then(|b| b.resolver.entry_name(tag).map(str::to_string))
        })
        .unwrap_or_else(|| format!("entry #{id}"))
    }
}

struct ControllerHandler {
    tables: Arc<Tables>,
}

impl RequestHandler for ControllerHandler {
    fn handle(&self, _peer: &Peer, request: Request) -> Response {
        match request {
            Request::ResolveImplementation { batch, tag, entry } => {
                let resolver = self
                    .tables
                    .batches
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&batch)
                    .map(|b| b.resolver.clone())
                    .ok_or_else(|| {
                        format!(
                            "batch {batch} is not live in the controller (its entries were freed)"
                        )
                    })?;
                let outer = SERVING.with(|s| s.replace(Some(entry)));
                let result = resolver.resolve(tag);
                SERVING.with(|s| s.set(outer));
                Ok(match result {
                    Ok(address) => Reply::Address(address.value()),
                    Err(e) => Reply::Unresolved {
                        reason: e.to_string(),
                        retry: e.may_succeed_later(),
                    },
                })
            }
            other => Err(format!(
                "the controller does not serve {} requests",
                other.name()
            )),
        }
    }

    /// A first call whose implementation is compiled already is answered
    /// on the reading thread (no hand-off to a thread that may block).
    fn quick_answer(&self, request: &Request) -> Option<Response> {
        let Request::ResolveImplementation { batch, tag, .. } = request else {
            return None;
        };
        let resolver = self
            .tables
            .batches
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(batch)
            .map(|b| b.resolver.clone())?;
        let address = resolver.resolve_if_ready(*tag);
        // The batch was freed meanwhile and this is its last owner: its
        // drop (a user's resolver may do anything) goes elsewhere, since
        // this thread must not block.
        if Arc::strong_count(&resolver) == 1 {
            let _ = std::thread::Builder::new()
                .name("lazyrt-release".into())
                .spawn(move || drop(resolver));
        }
        // Otherwise `resolve` answers it on a thread that may block.
        address.map(|a| Ok(Reply::Address(a.value())))
    }
}

/// An executor in another process, a `lazyrt-executor` (see
/// [`ExecutorProcess`]): every method is one request over the connection.
pub struct RemoteExecutor {
    info: ExecutorInfo,
    peer: Peer,
    tables: Arc<Tables>,
    child: Mutex<Option<Child>>,
    what: String,
}

impl RemoteExecutor {
    /// Spawns `program` (a `lazyrt-executor`) connected by a socket pair it
    /// inherits as fd 3; its stdio stays the JIT'd program's.
    pub fn spawn(program: impl AsRef<OsStr>) -> Result<Self, Error> {
        let program = program.as_ref();
        let what = program.to_string_lossy().into_owned();
        let start = |reason: String| {
            Error::Executor(ExecutorError::Start {
                what: what.clone(),
                reason,
            })
        };
        let (ours, theirs) = UnixStream::pair().map_err(|e| start(e.to_string()))?;
        let fd = theirs.as_raw_fd();
        let mut command = Command::new(program);
        command.args(["--connect", "fd:3"]);
        // SAFETY: between fork and exec only async-signal-safe calls: dup2
        // (the inherited end to fd 3, clearing close-on-exec as dup2 does).
        unsafe {
            command.pre_exec(move || {
                if fd == 3 {
                    let flags = libc::fcntl(3, libc::F_GETFD);
                    if flags < 0 || libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(fd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        };
        let child = command.spawn().map_err(|e| start(e.to_string()))?;
        drop(theirs);
        let executor = Self::handshake(Channel::Unix(ours), what.clone(), Some(child));
        executor.map_err(|e| match e {
            Error::Executor(ExecutorError::Start { reason, .. }) => start(reason),
            other => other,
        })
    }

    /// Connects to an executor listening at `spec` (`lazyrt-executor
    /// --listen SPEC`).
    pub fn connect(spec: &ConnectionSpec) -> Result<Self, Error> {
        let channel = spec.connect().map_err(|e| {
            Error::Executor(ExecutorError::Start {
                what: spec.to_string(),
                reason: e.to_string(),
            })
        })?;
        Self::handshake(channel, spec.to_string(), None)
    }

    /// Serves an executor already connected on `channel` (one that
    /// connected to this controller's listener).
    pub fn from_channel(channel: Channel, what: &str) -> Result<Self, Error> {
        Self::handshake(channel, what.to_string(), None)
    }

    fn handshake(mut channel: Channel, what: String, child: Option<Child>) -> Result<Self, Error> {
        let start = |reason: String| {
            Error::Executor(ExecutorError::Start {
                what: what.clone(),
                reason,
            })
        };
        let hello = handshake::accept(&mut channel, |_| Ok(())).map_err(|e| start(e.to_string()));
        let hello = match hello {
            Ok(hello) => hello,
            Err(e) => {
                if let Some(mut child) = child {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                return Err(e);
            }
        };
        let tables = Arc::new(Tables::default());
        let handler = Arc::new(ControllerHandler {
            tables: tables.clone(),
        });
        let peer =
            Peer::start(channel, handler, "lazyrt-controller").map_err(|e| start(e.to_string()))?;
        Ok(Self {
            info: ExecutorInfo {
                kind: "remote",
                triple: hello.triple,
                page_size: hello.page_size,
                pid: hello.pid,
                bootstrap: hello
                    .bootstrap
                    .into_iter()
                    .map(|(n, a)| (n, ExecutorAddr::new(a)))
                    .collect(),
                cpu_features: hello.cpu_features,
            },
            peer,
            tables,
            child: Mutex::new(child),
            what,
        })
    }

    /// Round trips and bytes so far.
    pub fn stats(&self) -> RemoteStats {
        self.peer.stats()
    }

    /// One bare round trip (a ping).
    pub fn ping(&self) -> Result<(), Error> {
        self.request(&Request::Ping).map(|_| ())
    }

    /// Ends the connection (the executor exits) and waits for a spawned
    /// executor, killing it after `timeout`. Its exit status, if spawned.
    pub fn shut_down(&self, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.peer.hang_up("the controller is done");
        let mut child = self
            .child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()?;
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => {
                    let _ = child.kill();
                    return child.wait().ok();
                }
            }
        }
    }

    /// Why the connection ended, with a spawned executor's exit status.
    fn gone(&self, reason: String) -> Error {
        let mut reason = reason;
        if let Some(child) = self
            .child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            // The exit may lag the closed socket by a moment.
            for _ in 0..20 {
                if let Ok(Some(status)) = child.try_wait() {
                    reason = format!("{reason}; {} {status}", self.what);
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Error::Executor(ExecutorError::Gone { reason })
    }

    fn request(&self, request: &Request) -> Result<Reply, Error> {
        self.peer.request(request).map_err(|e| match e {
            PeerError::Disconnected(reason) => self.gone(reason),
            other => Error::Executor(executor_error(request.name(), other)),
        })
    }

    fn protocol(request: &Request, reply: Reply) -> Error {
        Error::Executor(ExecutorError::Protocol(
            unexpected(request, reply).to_string(),
        ))
    }

    /// Sends a request the executor serves in order on its reader thread,
    /// without waiting (see `finalize`).
    fn post(&self, request: Request) -> Result<(), Error> {
        self.peer.post(&request).map_err(|e| match e {
            PeerError::Disconnected(reason) => self.gone(reason),
            other => Error::Executor(ExecutorError::Protocol(other.to_string())),
        })
    }

    fn expect_unit(&self, request: Request) -> Result<(), Error> {
        match self.request(&request)? {
            Reply::Unit => Ok(()),
            other => Err(Self::protocol(&request, other)),
        }
    }

    fn expect_address(&self, request: Request) -> Result<ExecutorAddr, Error> {
        match self.request(&request)? {
            Reply::Address(a) => Ok(ExecutorAddr::new(a)),
            other => Err(Self::protocol(&request, other)),
        }
    }
}

/// What a failed `operation` request means to callers (a lost connection
/// without the spawned executor's exit status: see `RemoteExecutor::gone`).
fn executor_error(operation: &'static str, e: PeerError) -> ExecutorError {
    match e {
        PeerError::Disconnected(reason) => ExecutorError::Gone { reason },
        PeerError::Remote(reason) => ExecutorError::Refused { operation, reason },
        other => ExecutorError::Protocol(other.to_string()),
    }
}

impl Drop for RemoteExecutor {
    fn drop(&mut self) {
        self.shut_down(Duration::from_secs(2));
    }
}

impl ExecutorProcess for RemoteExecutor {
    fn info(&self) -> &ExecutorInfo {
        &self.info
    }

    fn create_lazy_entries(
        &self,
        resolver: Arc<dyn EntryResolver>,
        count: usize,
    ) -> Result<Vec<(LazyEntryId, ExecutorAddr)>, Error> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let batch = self.tables.next_batch.fetch_add(1, Ordering::Relaxed);
        // Registered before the requests: a first call may come back before
        // the reply does.
        self.tables
            .batches
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                batch,
                Batch {
                    resolver: resolver.clone(),
                    live: count,
                },
            );
        // A large batch goes in several requests (each frame under the cap,
        // each reply too); all are created or none.
        let mut created: Vec<(u32, u64)> = Vec::with_capacity(count);
        while created.len() < count {
            let first_tag = created.len();
            let mut names = NameList::new();
            let mut bytes = 0usize;
            while first_tag + names.len() < count && names.len() < BATCH_CHUNK {
                let name = resolver
                    .entry_name((first_tag + names.len()) as u64)
                    .unwrap_or_default();
                if bytes + name.len() + 4 > FINALIZE_CHUNK && !names.is_empty() {
                    break;
                }
                bytes += name.len() + 4;
                names.push(name);
            }
            let asked = names.len();
            let request = Request::CreateEntries {
                batch,
                first_tag: first_tag as u64,
                names,
            };
            match self.request(&request) {
                Ok(Reply::Entries(entries)) if entries.len() == asked => created.extend(entries),
                other => {
                    let error = match other {
                        Err(e) => e,
                        Ok(reply) => Self::protocol(&request, reply),
                    };
                    for chunk in created.chunks(BATCH_CHUNK) {
                        let _ = self.expect_unit(Request::FreeEntries {
                            entries: chunk.iter().map(|(id, _)| *id).collect(),
                        });
                    }
                    self.tables
                        .batches
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&batch);
                    return Err(error);
                }
            }
        }
        let mut table = self
            .tables
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        table.by_stub.reserve(created.len());
        for (tag, (id, stub)) in created.iter().enumerate() {
            table.by_id.insert(*id, (batch, tag as u64, *stub));
            table.by_stub.insert(*stub, *id);
        }
        Ok(created
            .into_iter()
            .map(|(id, stub)| (lazyrt_runtime::EntryId(id), ExecutorAddr::new(stub)))
            .collect())
    }

    /// Atomic per entry; a batch over `BATCH_CHUNK` goes in several
    /// requests (each all-or-nothing in the executor).
    fn redirect_entries(&self, moves: &[(LazyEntryId, ExecutorAddr)]) -> Result<(), Error> {
        for chunk in moves.chunks(BATCH_CHUNK) {
            self.expect_unit(Request::Redirect {
                moves: chunk.iter().map(|(id, a)| (id.0, a.value())).collect(),
            })?;
        }
        Ok(())
    }

    fn free_entries(&self, entries: &[LazyEntryId]) -> Result<(), Error> {
        // Forgotten here before the executor frees them: it reuses freed
        // ids at once, and another thread's creation may be given them
        // before this request's reply arrives. A gone executor has freed
        // everything anyway.
        let mut emptied = Vec::new();
        {
            let mut table = self
                .tables
                .entries
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let mut batches = self
                .tables
                .batches
                .write()
                .unwrap_or_else(|e| e.into_inner());
            for id in entries {
                if let Some((batch, _, stub)) = table.by_id.remove(&id.0) {
                    table.by_stub.remove(&stub);
                    if let Some(b) = batches.get_mut(&batch) {
                        b.live -= 1;
                        if b.live == 0 {
                            emptied.extend(batches.remove(&batch));
                        }
                    }
                }
            }
        }
        // Resolvers are dropped outside the locks (they may hold anything).
        drop(emptied);
        for chunk in entries.chunks(BATCH_CHUNK) {
            self.expect_unit(Request::FreeEntries {
                entries: chunk.iter().map(|e| e.0).collect(),
            })?;
        }
        Ok(())
    }

    fn lazy_entry_at(&self, address: ExecutorAddr) -> Option<LazyEntryId> {
        let table = self
            .tables
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        table
            .by_stub
            .get(&address.value())
            .map(|id| lazyrt_runtime::EntryId(*id))
    }

    /// Inside the first call of another entry (a lazy reexport of a lazy
    /// reexport), records which entry waits for which and fails a cycle
    /// with the entries named, as the in-process runtime does, instead of
    /// threads of both processes waiting for each other forever.
    fn resolve_entry(&self, entry: LazyEntryId) -> Result<ExecutorAddr, Error> {
        let Some(from) = SERVING.with(|s| s.get()) else {
            return self.expect_address(Request::ResolveEntry { entry: entry.0 });
        };
        {
            let mut chains = self.tables.chains.lock().unwrap_or_else(|e| e.into_inner());
            let mut path = vec![from, entry.0];
            let mut at = entry.0;
            while at != from {
                match chains.get(&at) {
                    Some(next) if path.len() <= chains.len() + 2 => {
                        at = *next;
                        path.push(at);
                    }
                    _ => break,
                }
            }
            if at == from {
                drop(chains);
                let names: Vec<String> =
                    path.iter().map(|id| self.tables.entry_name(*id)).collect();
                return Err(Error::Runtime(
                    lazyrt_runtime::RuntimeError::ResolveFailed {
                        entry,
                        name: names[1].clone(),
                        reason: format!("resolution cycle: {}", names.join(" -> ")),
                        source: None,
                    },
                ));
            }
            chains.insert(from, entry.0);
        }
        let result = self.expect_address(Request::ResolveEntry { entry: entry.0 });
        self.tables
            .chains
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&from);
        result
    }

    fn reserve(&self, bytes: u64) -> Result<ExecutorAddr, Error> {
        self.expect_address(Request::Reserve { bytes })
    }

    /// Pipelined: the executor finalizes in arrival order on its reader
    /// thread, before it reads any later frame, so this returns once the
    /// request is sent. Everything sent afterwards (the answer that
    /// publishes the code's address, a call) is handled after the code is
    /// in place. A finalize the executor refuses (which only a controller
    /// bug causes) ends the connection with the reason, and every later
    /// request fails with it.
    fn finalize(&self, segments: &[MemorySegment<'_>]) -> Result<(), Error> {
        // Large segments are split into chunks (each protected before the
        // next is written: the segment is not published until this
        // returns), and requests stay under the frame cap.
        let mut pending: Vec<Segment> = Vec::new();
        let mut pending_bytes = 0usize;
        for s in segments {
            let mut offset = 0usize;
            while offset < s.bytes.len() {
                let address = s.address.value() + offset as u64;
                // Chunks end on page boundaries (a page is finalized once).
                let page = self.info.page_size;
                let end = (address + FINALIZE_CHUNK as u64) & !(page - 1);
                let take = ((end - address) as usize).min(s.bytes.len() - offset);
                if pending_bytes + take + SEGMENT_OVERHEAD > FINALIZE_CHUNK && !pending.is_empty() {
                    self.post(Request::Finalize {
                        segments: std::mem::take(&mut pending),
                    })?;
                    pending_bytes = 0;
                }
                pending.push(Segment {
                    address,
                    protection: s.protection,
                    bytes: s.bytes[offset..offset + take].to_vec(),
                });
                pending_bytes += take + SEGMENT_OVERHEAD;
                offset += take;
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        self.post(Request::Finalize { segments: pending })
    }

    fn release(&self, base: ExecutorAddr) -> Result<(), Error> {
        self.expect_unit(Request::Release {
            address: base.value(),
        })
    }

    fn reserve_code(&self, bytes: u64) -> Result<ExecutorAddr, Error> {
        self.expect_address(Request::ReserveCode { bytes })
    }

    fn write_code(&self, writes: &[CodeWrite<'_>]) -> Result<(), Error> {
        // Posted, like finalize: served in order before any later frame.
        code_requests::writes(writes, FINALIZE_CHUNK).try_for_each(|request| self.post(request))
    }

    fn patch_code(&self, patches: &[CodePatch]) -> Result<(), Error> {
        // A round trip: a mismatch is the caller's to handle, not a hangup.
        self.expect_unit(code_requests::patches(patches, FINALIZE_CHUNK)?)
    }

    fn patch_code_unawaited(
        &self,
        patches: &[CodePatch],
        on_failure: Box<dyn FnOnce(Error) + Send>,
    ) -> Result<(), Error> {
        // Served in order on the executor's reading thread, like a posted
        // write, but a refusal is an error reply, not a hangup.
        let request = code_requests::patches(patches, FINALIZE_CHUNK)?;
        let operation = request.name();
        let on_failure =
            Box::new(move |e: PeerError| on_failure(Error::Executor(executor_error(operation, e))));
        self.peer
            .request_detached(&request, on_failure)
            .map_err(|e| match e {
                PeerError::Disconnected(reason) => self.gone(reason),
                other => Error::Executor(executor_error(operation, other)),
            })
    }

    fn describe_lazy_entries(&self, entries: &[LazyEntryId]) -> Result<Vec<EntryCode>, Error> {
        let mut code = Vec::with_capacity(entries.len());
        for chunk in entries.chunks(BATCH_CHUNK) {
            let request = Request::DescribeEntries {
                entries: chunk.iter().map(|id| id.0).collect(),
            };
            match self.request(&request)? {
                Reply::Values(v) if v.len() == 4 * chunk.len() => {
                    code.extend(v.chunks_exact(4).map(|c| EntryCode {
                        stub: ExecutorAddr::new(c[0]),
                        stub_size: c[1] as u32,
                        trampoline: ExecutorAddr::new(c[2]),
                        trampoline_size: c[3] as u32,
                    }));
                }
                other => return Err(Self::protocol(&request, other)),
            }
        }
        Ok(code)
    }

    fn enable_debug_outputs(&self, outputs: DebugOutputs) -> Result<(), Error> {
        self.expect_unit(Request::EnableDebugOutputs {
            outputs: outputs.to_bits(),
        })
    }

    fn register_debug_unit(&self, unit: &CodeUnit) -> Result<DebugUnitId, Error> {
        let request = Request::RegisterCode { unit: unit.clone() };
        match self.request(&request)? {
            Reply::Address(id) => Ok(DebugUnitId(id)),
            other => Err(Self::protocol(&request, other)),
        }
    }

    fn deregister_debug_unit(&self, id: DebugUnitId) -> Result<(), Error> {
        self.expect_unit(Request::DeregisterCode { id: id.0 })
    }

    fn lookup_symbols(&self, names: &[&str]) -> Result<Vec<Option<ExecutorAddr>>, Error> {
        let request = Request::LookupSymbols {
            names: names.iter().map(|n| n.to_string()).collect(),
        };
        match self.request(&request)? {
            Reply::Addresses(a) if a.len() == names.len() => Ok(a
                .into_iter()
                .map(|a| (a != 0).then_some(ExecutorAddr::new(a)))
                .collect()),
            other => Err(Self::protocol(&request, other)),
        }
    }

    unsafe fn call(
        &self,
        function: ExecutorAddr,
        arg_sets: &[Vec<u64>],
    ) -> Result<Vec<u64>, Error> {
        let request = Request::Call {
            address: function.value(),
            arg_sets: arg_sets.to_vec(),
        };
        match self.request(&request)? {
            Reply::Values(v) if v.len() == arg_sets.len() => Ok(v),
            other => Err(Self::protocol(&request, other)),
        }
    }
}
