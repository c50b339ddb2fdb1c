//! One side of a connection: requests to the other side, served requests
//! from it, and what happens when it goes away.
//!
//! One thread at a time reads (it owns the receiving half). Responses wake
//! the caller waiting on their sequence number; quick requests are served
//! on the reading thread; any other request is served by the thread that
//! read it, after it hands reading over to a pool thread, so a
//! request that blocks (a call running JIT'd code, a compile) never stops
//! the responses and requests it causes. When the connection ends, for
//! whatever reason (a hangup, the peer's death, a malformed frame, a write
//! error), every waiting caller and every later one gets
//! [`PeerError::Disconnected`] with the reason, once, and the handler hears
//! of it: nothing waits for a peer that is gone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use crate::protocol::{
    FLAG_POSTED, FrameError, FrameKind, HEADER_BYTES, MAX_PAYLOAD, Reply, Request, Response,
    read_frame, write_frame, write_frame_with_flags,
};
use crate::transport::Channel;
use crate::worker_pool::WorkerPool;

/// How long a write may make no progress before the connection is given
/// up.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a request spins for its reply before it sleeps.
const SPIN_BEFORE_SLEEP: std::time::Duration = std::time::Duration::from_micros(30);

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
    /// Requests this side sent (each a round trip).
    pub requests_sent: u64,
    /// Requests the other side sent here.
    pub requests_served: u64,
    /// Frame bytes written.
    pub bytes_sent: u64,
    /// Frame bytes read.
    pub bytes_received: u64,
}

/// Who gets a response.
enum Waiter {
    /// A caller blocked in [`Peer::request`].
    Caller(SyncSender<Result<Response, PeerError>>),
    /// Nobody: a [`Peer::post`]ed request. An error ends the connection.
    Posted(&'static str),
}

struct Calls {
    next_seq: u64,
    waiting: HashMap<u64, Waiter>,
    /// Set once the connection has ended: why.
    closed: Option<String>,
}

struct PeerInner {
    writer: Mutex<Channel>,
    /// Used only to shut the stream down.
    control: Channel,
    calls: Mutex<Calls>,
    handler: Arc<dyn RequestHandler>,
    pool: Arc<WorkerPool>,
    requests_sent: AtomicU64,
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
        let peer = Peer {
            inner: Arc::new(PeerInner {
                writer: Mutex::new(channel),
                control,
                calls: Mutex::new(Calls {
                    next_seq: 1,
                    waiting: HashMap::new(),
                    closed: None,
                }),
                handler,
                pool: WorkerPool::new(name),
                requests_sent: AtomicU64::new(0),
                requests_served: AtomicU64::new(0),
                bytes_sent: AtomicU64::new(0),
                bytes_received: AtomicU64::new(0),
            }),
        };
        let reading = peer.clone();
        std::thread::Builder::new()
            .name(format!("{name}-reader"))
            .spawn(move || reading.read_loop(reader))?;
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
        // Spin briefly before sleeping: most replies (everything but a
        // compile or a call) come back within a few microseconds of the
        // peer waking, and a sleeping thread's core may take far longer
        // than that to wake again (tens of microseconds in VMs).
        let spin_until = std::time::Instant::now() + SPIN_BEFORE_SLEEP;
        let received = loop {
            match rx.try_recv() {
                Ok(r) => break Ok(r),
                Err(std::sync::mpsc::TryRecvError::Disconnected) => break Err(()),
                Err(std::sync::mpsc::TryRecvError::Empty) => {
                    if std::time::Instant::now() >= spin_until {
                        break rx.recv().map_err(|_| ());
                    }
                    std::hint::spin_loop();
                }
            }
        };
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
        if let Err(e) = self.send(FrameKind::Request, FLAG_POSTED, seq, &request.encode()) {
            self.unregister(seq);
            return Err(e);
        }
        Ok(())
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

    fn unregister(&self, seq: u64) {
        self.inner
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .waiting
            .remove(&seq);
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
            requests_served: i.requests_served.load(Ordering::Relaxed),
            bytes_sent: i.bytes_sent.load(Ordering::Relaxed),
            bytes_received: i.bytes_received.load(Ordering::Relaxed),
        }
    }

    /// Tells the other side why this side is leaving, then ends the
    /// connection. Bounded: the hangup is skipped if another thread is
    /// writing, and writes time out (`WRITE_TIMEOUT`).
    pub fn hang_up(&self, reason: &str) {
        self.hang_up_quietly(reason);
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
            write_frame_with_flags(&mut *writer, kind, flags, seq, payload)
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

    /// Sends a hangup only if no other thread is writing: the reading
    /// thread must never block on a write (the other side may be blocked
    /// writing to us, waiting for this thread to read).
    fn hang_up_quietly(&self, reason: &str) {
        if self.closed().is_some() {
            return;
        }
        if let Ok(mut writer) = self.inner.writer.try_lock() {
            let result = write_frame(&mut *writer, FrameKind::Hangup, 0, reason.as_bytes());
            drop(writer);
            let _ = self.sent(result, reason.len());
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
        for (_, waiter) in waiting {
            if let Waiter::Caller(tx) = waiter {
                let _ = tx.send(Err(PeerError::Disconnected(reason.clone())));
            }
        }
        self.inner.control.shutdown();
    }

    /// Protocol violation: say so to the peer, then end the connection.
    fn violation(&self, reason: String) {
        let reason = format!("protocol error: {reason}");
        self.hang_up_quietly(&reason);
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

    /// Replies from a pool thread (the reading thread must not block on a
    /// write; see `hang_up_quietly`).
    fn reply_later(&self, seq: u64, response: Response) {
        let peer = self.clone();
        self.inner.pool.submit_uncapped(move || {
            let _ = peer.send(
                FrameKind::Response,
                0,
                seq,
                &Reply::encode_response(&response),
            );
        });
    }

    fn read_loop(self, reader: Channel) {
        let guard = ReaderGuard(&self);
        let mut reader = Some(reader);
        loop {
            let frame = read_frame(reader.as_mut().expect("this thread reads"));
            let (header, payload) = match frame {
                Ok(frame) => frame,
                Err(FrameError::Closed) => {
                    return self.close("the peer closed the connection".to_string());
                }
                Err(FrameError::Io(e)) => {
                    return self.close(format!("reading failed: {e}"));
                }
                Err(e) => return self.violation(e.to_string()),
            };
            self.inner
                .bytes_received
                .fetch_add((HEADER_BYTES + payload.len()) as u64, Ordering::Relaxed);
            match header.kind {
                FrameKind::Response => {
                    let response = match Reply::decode_response(&payload) {
                        Ok(r) => r,
                        Err(e) => return self.violation(format!("malformed response: {e}")),
                    };
                    let waiter = self
                        .inner
                        .calls
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .waiting
                        .remove(&header.seq);
                    match waiter {
                        Some(Waiter::Caller(tx)) => {
                            let _ = tx.send(Ok(response));
                        }
                        Some(Waiter::Posted(name)) => {
                            if let Err(reason) = response {
                                // The peer hangs up after this itself.
                                return self.close(format!(
                                    "the peer failed a posted {name} request: {reason}"
                                ));
                            }
                        }
                        None => {
                            return self.violation(format!(
                                "response to request {} that is not outstanding",
                                header.seq
                            ));
                        }
                    }
                }
                FrameKind::Request => {
                    self.inner.requests_served.fetch_add(1, Ordering::Relaxed);
                    let seq = header.seq;
                    let posted = header.flags & FLAG_POSTED != 0;
                    let request = match Request::decode(&payload) {
                        Ok(request) => request,
                        Err(e) if posted => {
                            return self.violation(format!("malformed posted request: {e}"));
                        }
                        // A well-framed but malformed request is answered
                        // with the reason; the connection stays usable.
                        Err(e) => {
                            self.reply_later(seq, Err(format!("malformed request: {e}")));
                            continue;
                        }
                    };
                    if self.inner.handler.answers_at_once(&request) {
                        let response = self.serve(request);
                        if posted && let Err(reason) = &response {
                            // What the frames behind it rely on was not
                            // done: stop before reading them.
                            let reason = format!("posted request failed: {reason}");
                            let _ = self.send(
                                FrameKind::Response,
                                0,
                                seq,
                                &Reply::encode_response(&response),
                            );
                            self.hang_up_quietly(&reason);
                            return self.close(reason);
                        }
                        let _ = self.send(
                            FrameKind::Response,
                            0,
                            seq,
                            &Reply::encode_response(&response),
                        );
                        continue;
                    }
                    if posted {
                        return self.violation(format!(
                            "{} cannot be posted (it is not served in order)",
                            request.name()
                        ));
                    }
                    // Leader/follower: a pool thread takes over reading and
                    // this thread, already awake, serves the request (the
                    // hand-off's wake-up is off the request's path).
                    let next = self.clone();
                    let handed_over = self.inner.pool.try_submit(|| {
                        let reader = reader.take().expect("this thread reads");
                        Box::new(move || next.read_loop(reader))
                    });
                    if !handed_over {
                        self.reply_later(
                            seq,
                            Err(format!(
                                "{} refused: {} requests are in flight already",
                                request.name(),
                                crate::worker_pool::MAX_WORKERS
                            )),
                        );
                        continue;
                    }
                    std::mem::forget(guard);
                    let response = self.serve(request);
                    let _ = self.send(
                        FrameKind::Response,
                        0,
                        seq,
                        &Reply::encode_response(&response),
                    );
                    return;
                }
                FrameKind::Hangup => {
                    let reason = String::from_utf8_lossy(&payload).into_owned();
                    return self.close(format!("the peer hung up: {reason}"));
                }
                FrameKind::Hello => {
                    return self.violation("hello after the handshake".to_string());
                }
            }
        }
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
