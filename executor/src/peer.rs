//! One side of a connection: requests to the other side, served requests
//! from it, and what happens when it goes away.
//!
//! A reader thread owns the receiving half. Responses wake the caller
//! waiting on their sequence number; requests go to a [`WorkerPool`] so a
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

use crate::protocol::{FrameError, FrameKind, Reply, Request, Response, read_frame, write_frame};
use crate::transport::Channel;
use crate::worker_pool::WorkerPool;

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
        let seq = {
            let mut calls = self.inner.calls.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(reason) = &calls.closed {
                return Err(PeerError::Disconnected(reason.clone()));
            }
            let seq = calls.next_seq;
            calls.next_seq += 1;
            calls.waiting.insert(seq, Waiter::Caller(tx));
            seq
        };
        self.inner.requests_sent.fetch_add(1, Ordering::Relaxed);
        self.send(FrameKind::Request, seq, &request.encode());
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

    /// Sends `request` without waiting for its reply. Only for requests the
    /// other side answers in order on its reader thread (see
    /// [`RequestHandler::answers_at_once`]): every frame sent after this one
    /// is then handled after it. If it fails, the connection ends with the
    /// reason (later requests fail with it).
    pub fn post(&self, request: &Request) -> Result<(), PeerError> {
        let seq = {
            let mut calls = self.inner.calls.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(reason) = &calls.closed {
                return Err(PeerError::Disconnected(reason.clone()));
            }
            let seq = calls.next_seq;
            calls.next_seq += 1;
            calls.waiting.insert(seq, Waiter::Posted(request.name()));
            seq
        };
        self.inner.requests_sent.fetch_add(1, Ordering::Relaxed);
        self.send(FrameKind::Request, seq, &request.encode());
        match self.closed() {
            Some(reason) => Err(PeerError::Disconnected(reason)),
            None => Ok(()),
        }
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
    /// connection.
    pub fn hang_up(&self, reason: &str) {
        if self.closed().is_none() {
            self.send(FrameKind::Hangup, 0, reason.as_bytes());
        }
        self.close(format!("this side hung up: {reason}"));
    }

    /// Writes one frame; a failed write ends the connection.
    fn send(&self, kind: FrameKind, seq: u64, payload: &[u8]) {
        let result = {
            let mut writer = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
            write_frame(&mut *writer, kind, seq, payload)
        };
        match result {
            Ok(()) => {
                self.inner.bytes_sent.fetch_add(
                    (crate::protocol::HEADER_BYTES + payload.len()) as u64,
                    Ordering::Relaxed,
                );
            }
            Err(e) => self.close(format!("sending failed: {e}")),
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
        for (_, waiter) in waiting {
            if let Waiter::Caller(tx) = waiter {
                let _ = tx.send(Err(PeerError::Disconnected(reason.clone())));
            }
        }
        self.inner.control.shutdown();
        self.inner.handler.disconnected(&reason);
    }

    /// Protocol violation: say so to the peer, then end the connection.
    fn violation(&self, reason: String) {
        if self.closed().is_none() {
            self.send(
                FrameKind::Hangup,
                0,
                format!("protocol error: {reason}").as_bytes(),
            );
        }
        self.close(format!("protocol error: {reason}"));
    }

    fn read_loop(self, mut reader: Channel) {
        loop {
            let (header, payload) = match read_frame(&mut reader) {
                Ok(frame) => frame,
                Err(FrameError::Closed) => {
                    return self.close("the peer closed the connection".to_string());
                }
                Err(FrameError::Io(e)) => {
                    return self.close(format!("reading failed: {e}"));
                }
                Err(e) => return self.violation(e.to_string()),
            };
            self.inner.bytes_received.fetch_add(
                (crate::protocol::HEADER_BYTES + payload.len()) as u64,
                Ordering::Relaxed,
            );
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
                                // What later frames rely on was not done:
                                // nothing after it can be trusted.
                                let reason =
                                    format!("the peer failed a posted {name} request: {reason}");
                                self.send(FrameKind::Hangup, 0, reason.as_bytes());
                                return self.close(reason);
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
                    match Request::decode(&payload) {
                        // A well-framed but malformed request is answered
                        // with the reason; the connection stays usable.
                        Err(e) => self.send(
                            FrameKind::Response,
                            seq,
                            &Reply::encode_response(&Err(format!("malformed request: {e}"))),
                        ),
                        Ok(request) if self.inner.handler.answers_at_once(&request) => {
                            let response = self.inner.handler.handle(&self, request);
                            self.send(FrameKind::Response, seq, &Reply::encode_response(&response));
                        }
                        Ok(request) => {
                            let peer = self.clone();
                            self.inner.pool.submit(move || {
                                let response = peer.inner.handler.handle(&peer, request);
                                peer.send(
                                    FrameKind::Response,
                                    seq,
                                    &Reply::encode_response(&response),
                                );
                            });
                        }
                    }
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
