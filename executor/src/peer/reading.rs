//! Who reads the connection: the reading thread ([`Peer::read_loop`]) and
//! a caller polling for its reply ([`Peer::poll_for_reply`]) take turns
//! under the read lock, one frame at a time ([`Peer::read_one`]); see the
//! parent module's docs.

use super::*;

impl Peer {
    /// Polls for the reply on `rx` for up to [`SPIN_BEFORE_SLEEP`], reading
    /// the socket itself whenever no other thread is reading it (the reply
    /// then reaches this thread without waking the reading thread first).
    /// `None`: nothing yet, sleep.
    pub(super) fn poll_for_reply(
        &self,
        rx: &std::sync::mpsc::Receiver<Delivered>,
    ) -> Option<Result<Delivered, ()>> {
        let until = std::time::Instant::now() + SPIN_BEFORE_SLEEP;
        loop {
            match rx.try_recv() {
                Ok(r) => return Some(Ok(r)),
                Err(std::sync::mpsc::TryRecvError::Disconnected) => return Some(Err(())),
                Err(std::sync::mpsc::TryRecvError::Empty) => {}
            }
            // Checked after every frame too: a stream of other frames does
            // not keep this caller reading.
            if std::time::Instant::now() >= until {
                return None;
            }
            // Over the cap of deferred replies, leave reading to the
            // reading thread (which waits for the flusher).
            let reader = if self.deferred_full() {
                None
            } else {
                match self.inner.reader.try_lock() {
                    Ok(reader) => Some(reader),
                    Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                    Err(std::sync::TryLockError::WouldBlock) => None,
                }
            };
            if let Some(mut reader) = reader {
                // Only a frame whose header is here: never wait in a read
                // for a peer that sent part of one.
                match self.read_one(&mut reader, HEADER_BYTES) {
                    FrameRead::Nothing => {}
                    // Read and dispatched: perhaps this caller's reply.
                    FrameRead::Dispatched | FrameRead::Ended => continue,
                    FrameRead::Blocking { seq, request } => {
                        drop(reader);
                        self.serve_on_pool(seq, request);
                        continue;
                    }
                }
            }
            std::hint::spin_loop();
        }
    }

    /// Serves a request that may block on a pool thread, or refuses it
    /// when too many are in flight.
    fn serve_on_pool(&self, seq: u64, request: Request) {
        let peer = self.clone();
        let name = request.name();
        let job = Box::new(move || {
            let response = peer.serve(request);
            peer.send_reply(seq, &response);
        });
        if !self.inner.pool.try_submit(job) {
            // Sent without a thread of its own (which the cap is about).
            self.reply_from_reader(
                seq,
                &Err(format!(
                    "{name} refused: {} requests are in flight already (or no thread could start)",
                    crate::worker_pool::MAX_WORKERS
                )),
            );
        }
    }

    /// The connection's reading thread: waits for input, then reads and
    /// dispatches a frame under the read lock, until the connection ends.
    /// A request that may block goes to a pool thread (the one idle last,
    /// whose caches are warm: a compile is a fifth slower on a thread that
    /// was not just compiling), so this thread stays put, on its CPU.
    pub(super) fn read_loop(self) {
        let _guard = ReaderGuard(&self);
        loop {
            if let Err(e) = self.inner.control.wait_readable() {
                return self.close(format!("reading failed: {e}"));
            }
            self.wait_for_deferred_room();
            let mut reader = self.inner.reader.lock().unwrap_or_else(|e| e.into_inner());
            // Any input: this thread may wait in the read for the rest.
            match self.read_one(&mut reader, 1) {
                // Or a waiting caller read it first.
                FrameRead::Nothing | FrameRead::Dispatched => {}
                FrameRead::Ended => return,
                FrameRead::Blocking { seq, request } => {
                    drop(reader);
                    self.serve_on_pool(seq, request);
                }
            }
        }
    }

    /// Reads one frame if at least `waiting` bytes of it are here, and
    /// dispatches it: a response to its caller, a quick request served
    /// here (under the read lock, so quick requests are served in the order
    /// they were sent). A request that may block is handed back to be
    /// served elsewhere.
    fn read_one(&self, reader: &mut Channel, waiting: usize) -> FrameRead {
        if !reader.has_input(waiting) {
            return FrameRead::Nothing;
        }
        let (header, payload) = match read_frame(reader) {
            Ok(frame) => frame,
            Err(FrameError::Closed) => {
                self.close("the peer closed the connection".to_string());
                return FrameRead::Ended;
            }
            Err(FrameError::Io(e)) => {
                self.close(format!("reading failed: {e}"));
                return FrameRead::Ended;
            }
            Err(e) => {
                self.violation(e.to_string());
                return FrameRead::Ended;
            }
        };
        self.inner
            .bytes_received
            .fetch_add((HEADER_BYTES + payload.len()) as u64, Ordering::Relaxed);
        match header.kind {
            FrameKind::Response => {
                let response = match Reply::decode_response(&payload) {
                    Ok(r) => r,
                    Err(e) => {
                        self.violation(format!("malformed response: {e}"));
                        return FrameRead::Ended;
                    }
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
                            self.close(format!(
                                "the peer failed a posted {name} request: {reason}"
                            ));
                            return FrameRead::Ended;
                        }
                    }
                    Some(Waiter::Detached(on_failure)) => {
                        if let Err(reason) = response {
                            self.fail_detached(on_failure, PeerError::Remote(reason));
                        }
                    }
                    None => {
                        self.violation(format!(
                            "response to request {} that is not outstanding",
                            header.seq
                        ));
                        return FrameRead::Ended;
                    }
                }
                FrameRead::Dispatched
            }
            FrameKind::Request => {
                self.inner.requests_served.fetch_add(1, Ordering::Relaxed);
                let seq = header.seq;
                let posted = header.flags & FLAG_POSTED != 0;
                let request = match Request::decode(&payload) {
                    Ok(request) => request,
                    Err(e) if posted => {
                        self.violation(format!("malformed posted request: {e}"));
                        return FrameRead::Ended;
                    }
                    // A well-framed but malformed request is answered
                    // with the reason; the connection stays usable.
                    Err(e) => {
                        self.reply_from_reader(seq, &Err(format!("malformed request: {e}")));
                        return FrameRead::Dispatched;
                    }
                };
                let response = if self.inner.handler.answers_at_once(&request) {
                    self.serve(request)
                } else if posted {
                    self.violation(format!(
                        "{} cannot be posted (it is not served in order)",
                        request.name()
                    ));
                    return FrameRead::Ended;
                } else {
                    match self.quick_answer(&request) {
                        Some(response) => response,
                        None => return FrameRead::Blocking { seq, request },
                    }
                };
                self.reply_from_reader(seq, &response);
                if posted && let Err(reason) = &response {
                    // What the frames behind it rely on was not done: stop
                    // before reading them.
                    let reason = format!("posted request failed: {reason}");
                    self.send_hangup(&reason, false);
                    self.close(reason);
                    return FrameRead::Ended;
                }
                FrameRead::Dispatched
            }
            FrameKind::Hangup => {
                let reason = String::from_utf8_lossy(&payload).into_owned();
                self.close(format!("the peer hung up: {reason}"));
                FrameRead::Ended
            }
            FrameKind::Hello => {
                self.violation("hello after the handshake".to_string());
                FrameRead::Ended
            }
        }
    }

    /// [`RequestHandler::quick_answer`]; a panic sends the request the
    /// general way ([`RequestHandler::handle`]).
    fn quick_answer(&self, request: &Request) -> Option<Response> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.inner.handler.quick_answer(request)
        }))
        .unwrap_or(None)
    }
}

/// What [`Peer::read_one`] did.
pub(super) enum FrameRead {
    /// No input was waiting.
    Nothing,
    /// A frame was read and dealt with.
    Dispatched,
    /// The connection ended.
    Ended,
    /// A request that may block: serve it off the read lock.
    Blocking {
        /// Its sequence number.
        seq: u64,
        /// The request.
        request: Request,
    },
}
