//! One side of a connection: requests to the other side, served requests
//! from it, and what happens when it goes away.
//!
//! One thread at a time reads a frame (the read lock owns the receiving
//! half): the connection's reading thread, which waits for input outside
//! the lock, or a caller waiting for its reply, which polls the socket
//! for a few microseconds before it sleeps. Its own reply then costs it
//! no wake-up and no hand-off (tens of microseconds each in a VM; a first
//! call in the executor is one such round trip). Responses wake the caller
//! waiting on their sequence number; quick requests are served by the
//! thread that read them, under the read lock, so they are served in the
//! order they were sent; any other request is served on a pool thread
//! (the one idle last, see `worker_pool`), so a request that blocks (a
//! call running JIT'd code, a compile) never stops the responses and
//! requests it causes. When the connection ends, for
//! whatever reason (a hangup, the peer's death, a malformed frame, a write
//! error), every waiting caller and every later one gets
//! [`PeerError::Disconnected`] with the reason, once, and the handler hears
//! of it: nothing waits for a peer that is gone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use crate::protocol::{
    FLAG_POSTED, FrameError, FrameKind, HEADER_BYTES, MAX_PAYLOAD, Reply, Request, Response,
    read_frame, write_frame, write_frame_with_flags,
};
use crate::transport::Channel;
use crate::worker_pool::WorkerPool;

mod reading;
mod sending;
#[cfg(test)]
mod tests;

use sending::{DeferredReplies, Writer};

/// What a waiting caller is handed: the reply, or why there is none.
type Delivered = Result<Response, PeerError>;

/// How long a write may make no progress before the connection is given
/// up.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a request polls for its reply before it sleeps (one caller
/// at a time, never a `Call`, never on a single CPU, and only for kinds of
/// request whose replies have been coming back quickly: see
/// [`ReplyTimes`]).
const SPIN_BEFORE_SLEEP: std::time::Duration = std::time::Duration::from_micros(30);

/// Recent reply times by request opcode (a moving average, in
/// microseconds). A caller polls only for a kind whose replies come back
/// within four polling windows (a reply is two wake-ups away, and one
/// can take 10-70 µs in a VM): a resolve that compiles takes a
/// millisecond, and polling through its start would take the core the
/// other side needs to read it, hand it over and compile.
struct ReplyTimes([std::sync::atomic::AtomicU32; 32]);

impl ReplyTimes {
    fn slot(&self, request: &Request) -> &std::sync::atomic::AtomicU32 {
        &self.0[request.opcode() as usize % self.0.len()]
    }

    fn worth_polling(&self, request: &Request) -> bool {
        u128::from(self.slot(request).load(Ordering::Relaxed)) <= 4 * SPIN_BEFORE_SLEEP.as_micros()
    }

    fn record(&self, request: &Request, took: std::time::Duration) {
        let sample = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
        let slot = self.slot(request);
        let average = slot.load(Ordering::Relaxed);
        // Races between callers lose a sample at worst.
        slot.store(
            ((u64::from(average) * 3 + u64::from(sample)) / 4) as u32,
            Ordering::Relaxed,
        );
    }
}

/// Serves the other side's requests.
pub trait RequestHandler: Send + Sync + 'static {
    /// Answers one request (on a pool thread; may block).
    fn handle(&self, peer: &Peer, request: Request) -> Response;

    /// Whether `request` is answered at once, never waiting for the other
    /// side (directly or through locks another request may hold while it
    /// waits): such requests are served on the reader thread, saving a
    /// thread hand-off per round trip. Default: none.
    fn answers_at_once(&self, request: &Request) -> bool {
        let _ = request;
        false
    }

    /// The answer to `request` if it can be given at once, without waiting
    /// (as [`RequestHandler::answers_at_once`] requires), on the thread that
    /// read it; `None` sends it to [`RequestHandler::handle`] on a thread
    /// that may block. For requests whose answer is sometimes at hand (a
    /// resolve of an implementation that is already compiled). Default:
    /// never.
    fn quick_answer(&self, request: &Request) -> Option<Response> {
        let _ = request;
        None
    }

    /// The connection ended (called once, from the thread that saw it end).
    fn disconnected(&self, reason: &str) {
        let _ = reason;
    }
}

/// Why a request got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// The connection is gone (the reason says how it ended).
    #[error("connection lost: {0}")]
    Disconnected(String),
    /// The other side answered with an error.
    #[error("{0}")]
    Remote(String),
    /// The request is larger than a frame may be (the connection stays
    /// up): split it.
    #[error("request of {bytes} bytes exceeds the frame cap of {MAX_PAYLOAD} bytes")]
    TooLarge {
        /// Its payload size.
        bytes: usize,
    },
    /// The other side answered with the wrong kind of reply.
    #[error("protocol error: {request} answered with {reply}")]
    UnexpectedReply {
        /// The request.
        request: &'static str,
        /// What came back.
        reply: String,
    },
}

/// Counters of a connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Requests this side sent, those sent without waiting included.
    pub requests_sent: u64,
    /// Of those, sent without waiting for the reply ([`Peer::post`],
    /// [`Peer::request_detached`]): no round trip.
    pub requests_unawaited: u64,
    /// Requests the other side sent here.
    pub requests_served: u64,
    /// Frame bytes written.
    pub bytes_sent: u64,
    /// Frame bytes read.
    pub bytes_received: u64,
}

/// What a [`Peer::request_detached`] caller hears when its request fails
/// (an error reply, or the connection ending first): called once, on a
/// pool thread (it may block), never for a request that succeeded.
pub type OnFailure = Box<dyn FnOnce(PeerError) + Send>;

/// Who gets a response.
enum Waiter {
    /// A caller blocked in [`Peer::request`].
    Caller(SyncSender<Delivered>),
    /// Nobody: a [`Peer::post`]ed request. An error ends the connection.
    Posted(&'static str),
    /// Nobody waits: a [`Peer::request_detached`] request, whose failure
    /// goes to its callback and leaves the connection up.
    Detached(OnFailure),
}

struct Calls {
    next_seq: u64,
    waiting: HashMap<u64, Waiter>,
    /// Set once the connection has ended: why.
    closed: Option<String>,
}

struct PeerInner {
    writer: Mutex<Writer>,
    /// Replies the reading thread could not send without blocking.
    deferred: Mutex<DeferredReplies>,
    /// The flusher took some of them.
    drained: std::sync::Condvar,
    /// The receiving half: whoever holds it reads one frame and dispatches
    /// it (see the module docs).
    reader: Mutex<Channel>,
    /// A caller is polling the socket for its reply (at most one: more
    /// would take the cores the other side needs to answer).
    spinning: AtomicBool,
    /// More than one CPU: polling can pay off.
    may_spin: bool,
    reply_times: ReplyTimes,
    /// Used only to shut the stream down.
    control: Channel,
    calls: Mutex<Calls>,
    handler: Arc<dyn RequestHandler>,
    pool: Arc<WorkerPool>,
    requests_sent: AtomicU64,
    requests_unawaited: AtomicU64,
    requests_served: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
}

/// A connection to the other side. Cheap to clone.
#[derive(Clone)]
pub struct Peer {
    inner: Arc<PeerInner>,
}

impl Peer {
    /// Starts serving `channel` (after the handshake) with `handler`; `name`
    /// names the threads.
    pub fn start(
        channel: Channel,
        handler: Arc<dyn RequestHandler>,
        name: &'static str,
    ) -> std::io::Result<Peer> {
        // A write that makes no progress for this long ends the connection
        // (a peer that stopped reading cannot stall this side forever).
        match &channel {
            Channel::Unix(s) => s.set_write_timeout(Some(WRITE_TIMEOUT))?,
            Channel::Tcp(s) => s.set_write_timeout(Some(WRITE_TIMEOUT))?,
        }
        let reader = channel.try_clone()?;
        let control = channel.try_clone()?;
        let may_spin = std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
        let peer = Peer {
            inner: Arc::new(PeerInner {
                writer: Mutex::new(Writer {
                    channel,
                    unsent: Vec::new(),
                }),
                deferred: Mutex::new(DeferredReplies::default()),
                drained: std::sync::Condvar::new(),
                reader: Mutex::new(reader),
                spinning: AtomicBool::new(false),
                may_spin,
                reply_times: ReplyTimes(std::array::from_fn(|_| {
                    std::sync::atomic::AtomicU32::new(0)
                })),
                control,
                calls: Mutex::new(Calls {
                    next_seq: 1,
                    waiting: HashMap::new(),
                    closed: None,
                }),
                handler,
                pool: WorkerPool::new(name),
                requests_sent: AtomicU64::new(0),
                requests_unawaited: AtomicU64::new(0),
                requests_served: AtomicU64::new(0),
                bytes_sent: AtomicU64::new(0),
                bytes_received: AtomicU64::new(0),
            }),
        };
        let reading = peer.clone();
        std::thread::Builder::new()
            .name(format!("{name}-reader"))
            .spawn(move || reading.read_loop())?;
        Ok(peer)
    }

    /// Sends `request` and waits for its reply.
    pub fn request(&self, request: &Request) -> Result<Reply, PeerError> {
        let (tx, rx) = sync_channel(1);
        let seq = self.register(Waiter::Caller(tx))?;
        self.inner.requests_sent.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.send(FrameKind::Request, 0, seq, &request.encode()) {
            self.unregister(seq);
            return Err(e);
        }
        // Poll briefly before sleeping: most replies (everything but a
        // compile or a call) come back within a few microseconds of the
        // peer waking, and a sleeping thread may take far longer than that
        // to wake again (tens of microseconds in VMs). A `Call` runs JIT'd
        // code for as long as it likes: its caller sleeps at once, leaving
        // the cores to the executor.
        let sent_at = std::time::Instant::now();
        let spin = self.inner.may_spin
            && !matches!(request, Request::Call { .. })
            && self.inner.reply_times.worth_polling(request)
            && !self.inner.spinning.swap(true, Ordering::Acquire);
        let polled = if spin {
            let _spinning = SpinningFlag(&self.inner.spinning);
            self.poll_for_reply(&rx)
        } else {
            None
        };
        let received = match polled {
            Some(received) => received,
            None => rx.recv().map_err(|_| ()),
        };
        self.inner.reply_times.record(request, sent_at.elapsed());
        match received {
            Ok(Ok(Ok(reply))) => Ok(reply),
            Ok(Ok(Err(message))) => Err(PeerError::Remote(message)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(PeerError::Disconnected(self.closed_reason())),
        }
    }

    /// Sends `request` without waiting for its reply, flagged
    /// [`FLAG_POSTED`]. Only for requests the other side answers in order on
    /// its reading thread (see [`RequestHandler::answers_at_once`]): every
    /// frame sent after this one is then handled after it, and if it fails
    /// the other side hangs up before reading further (so later requests
    /// fail with the reason).
    pub fn post(&self, request: &Request) -> Result<(), PeerError> {
        let seq = self.register(Waiter::Posted(request.name()))?;
        self.inner.requests_sent.fetch_add(1, Ordering::Relaxed);
        self.inner
            .requests_unawaited
            .fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.send(FrameKind::Request, FLAG_POSTED, seq, &request.encode()) {
            self.unregister(seq);
            return Err(e);
        }
        Ok(())
    }

    /// Sends `request` without waiting for its reply, like [`Peer::post`],
    /// but a failure does not end the connection: an error reply (or the
    /// connection ending before the reply) goes to `on_failure`, on a pool
    /// thread. For requests the other side answers in order on its reading
    /// thread (see [`RequestHandler::answers_at_once`]) whose failure the
    /// caller can live with, such as code patches that only make a call
    /// faster: frames sent after it are handled after it, and nobody waits
    /// a round trip for it. Either this returns an error (the connection is
    /// gone, the request is too large) or `on_failure` hears of any failure.
    pub fn request_detached(
        &self,
        request: &Request,
        on_failure: OnFailure,
    ) -> Result<(), PeerError> {
        let seq = self.register(Waiter::Detached(on_failure))?;
        self.inner.requests_sent.fetch_add(1, Ordering::Relaxed);
        self.inner
            .requests_unawaited
            .fetch_add(1, Ordering::Relaxed);
        match self.send(FrameKind::Request, 0, seq, &request.encode()) {
            Ok(()) => Ok(()),
            // Taken back, unless the connection ended meanwhile and its
            // close handed the failure to `on_failure` already.
            Err(e) => match self.unregister(seq) {
                Some(_) => Err(e),
                None => Ok(()),
            },
        }
    }

    /// Hands a detached request's failure to its callback on a pool thread
    /// (the reading thread must not run code that may block).
    fn fail_detached(&self, on_failure: OnFailure, error: PeerError) {
        self.inner.pool.submit_uncapped(move || on_failure(error));
    }

    fn register(&self, waiter: Waiter) -> Result<u64, PeerError> {
        let mut calls = self.inner.calls.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(reason) = &calls.closed {
            return Err(PeerError::Disconnected(reason.clone()));
        }
        let seq = calls.next_seq;
        calls.next_seq += 1;
        calls.waiting.insert(seq, waiter);
        Ok(seq)
    }

    fn unregister(&self, seq: u64) -> Option<Waiter> {
        self.inner
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .waiting
            .remove(&seq)
    }

    /// Whether the connection has ended, and why.
    pub fn closed(&self) -> Option<String> {
        self.inner
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closed
            .clone()
    }

    fn closed_reason(&self) -> String {
        self.closed()
            .unwrap_or_else(|| "the connection closed".to_string())
    }

    /// Counters.
    pub fn stats(&self) -> PeerStats {
        let i = &self.inner;
        PeerStats {
            requests_sent: i.requests_sent.load(Ordering::Relaxed),
            requests_unawaited: i.requests_unawaited.load(Ordering::Relaxed),
            requests_served: i.requests_served.load(Ordering::Relaxed),
            bytes_sent: i.bytes_sent.load(Ordering::Relaxed),
            bytes_received: i.bytes_received.load(Ordering::Relaxed),
        }
    }

    /// Tells the other side why this side is leaving, then ends the
    /// connection. Bounded: the hangup is skipped if another thread is
    /// writing, and writes time out (`WRITE_TIMEOUT`).
    pub fn hang_up(&self, reason: &str) {
        self.send_hangup(reason, true);
        self.close(format!("this side hung up: {reason}"));
    }

    /// Writes one frame. A payload over the cap is refused here (the
    /// connection stays up); a failed write ends the connection.
    fn send(&self, kind: FrameKind, flags: u8, seq: u64, payload: &[u8]) -> Result<(), PeerError> {
        if payload.len() > MAX_PAYLOAD as usize {
            return Err(PeerError::TooLarge {
                bytes: payload.len(),
            });
        }
        let result = {
            let mut writer = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
            writer.send_unsent().and_then(|()| {
                write_frame_with_flags(&mut writer.channel, kind, flags, seq, payload)
            })
        };
        self.sent(result, payload.len())
    }

    fn sent(&self, result: Result<(), FrameError>, payload: usize) -> Result<(), PeerError> {
        match result {
            Ok(()) => {
                self.inner
                    .bytes_sent
                    .fetch_add((HEADER_BYTES + payload) as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                // The other side may have hung up with a reason that is
                // still on its way to the reading thread (it wrote the
                // hangup, then closed, and this write hit the closed end
                // first): that reason says more than a broken pipe, so
                // give the reader a moment to deliver it.
                for _ in 0..40 {
                    if let Some(reason) = self.closed() {
                        return Err(PeerError::Disconnected(reason));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                let reason = format!("sending failed: {e}");
                self.close(reason.clone());
                Err(PeerError::Disconnected(reason))
            }
        }
    }

    /// Ends the connection once: fails every waiting request, shuts the
    /// stream and tells the handler.
    fn close(&self, reason: String) {
        let waiting = {
            let mut calls = self.inner.calls.lock().unwrap_or_else(|e| e.into_inner());
            if calls.closed.is_some() {
                return;
            }
            calls.closed = Some(reason.clone());
            std::mem::take(&mut calls.waiting)
        };
        // The handler hears first: whoever a failed request wakes can ask
        // it whether the connection is gone.
        self.inner.handler.disconnected(&reason);
        let mut detached = Vec::new();
        for (_, waiter) in waiting {
            match waiter {
                Waiter::Caller(tx) => {
                    let _ = tx.send(Err(PeerError::Disconnected(reason.clone())));
                }
                Waiter::Detached(on_failure) => detached.push(on_failure),
                Waiter::Posted(_) => {}
            }
        }
        // One job for them all (however many were in flight).
        if !detached.is_empty() {
            let reason = reason.clone();
            self.inner.pool.submit_uncapped(move || {
                for on_failure in detached {
                    on_failure(PeerError::Disconnected(reason.clone()));
                }
            });
        }
        // A reader waiting for room among the deferred replies stops
        // waiting (under their lock: it checks `closed` there).
        drop(
            self.inner
                .deferred
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        self.inner.drained.notify_all();
        self.inner.control.shutdown();
    }

    /// Protocol violation: say so to the peer, then end the connection.
    fn violation(&self, reason: String) {
        let reason = format!("protocol error: {reason}");
        self.send_hangup(&reason, false);
        self.close(reason);
    }

    /// Serves one request, a panic in the handler becoming an error reply.
    fn serve(&self, request: Request) -> Response {
        let name = request.name();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.inner.handler.handle(self, request)
        }))
        .unwrap_or_else(|payload| {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".to_string());
            Err(format!("serving {name} panicked: {message}"))
        })
    }
}

/// Lets another caller poll once this one stops, however it stops.
struct SpinningFlag<'a>(&'a AtomicBool);

impl Drop for SpinningFlag<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Ends the connection if the reading thread unwinds (nothing else would
/// read it again).
struct ReaderGuard<'a>(&'a Peer);

impl Drop for ReaderGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.close("the reading thread panicked".to_string());
        }
    }
}

/// Expects `reply` to be an address.
pub fn expect_address(request: &Request, reply: Reply) -> Result<u64, PeerError> {
    match reply {
        Reply::Address(a) => Ok(a),
        other => Err(unexpected(request, other)),
    }
}

/// The error for a reply of the wrong kind.
pub fn unexpected(request: &Request, reply: Reply) -> PeerError {
    PeerError::UnexpectedReply {
        request: request.name(),
        reply: format!("{reply:?}").chars().take(80).collect(),
    }
}
