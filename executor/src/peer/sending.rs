//! The sending half, and how a thread holding the read lock replies
//! without ever blocking on a write.
//!
//! If the threads reading both ends of a connection could block writing
//! replies, a burst in both directions (posted writes one way, first calls
//! the other) could fill both sockets' buffers: each reader would wait for
//! the other to read, and neither would. So the reader sends a reply only
//! as far as the socket takes it at once ([`Peer::reply_from_reader`]):
//! the rest of a frame it began stays in [`Writer::unsent`], which every
//! writer sends before its own frame, and a reply it could not begin goes
//! to [`DeferredReplies`], which one pool thread at a time sends, blocking
//! as long as it has to. Readers stop reading while more than
//! [`DEFERRED_CAP`] bytes wait there, so a peer that sends requests but
//! never reads the replies cannot make this side buffer without bound.

use super::*;

/// The sending half.
pub(super) struct Writer {
    pub(super) channel: Channel,
    /// The rest of a frame the reader sent only part of: goes before any
    /// other frame, so frames never interleave.
    pub(super) unsent: Vec<u8>,
}

impl Writer {
    /// Sends [`Writer::unsent`] (blocking), before a frame of this writer.
    pub(super) fn send_unsent(&mut self) -> Result<(), FrameError> {
        if !self.unsent.is_empty() {
            std::io::Write::write_all(&mut self.channel, &self.unsent)?;
            self.unsent.clear();
        }
        Ok(())
    }
}

/// Deferred reply bytes above which readers wait for the flusher.
pub(super) const DEFERRED_CAP: usize = 8 << 20;

/// Whole reply frames waiting for the flushing pool thread.
#[derive(Default)]
pub(super) struct DeferredReplies {
    frames: Vec<u8>,
    /// [`Writer::unsent`] was left for the flusher to send.
    tail_pending: bool,
    /// A pool thread is flushing (it looks again before it stops).
    flushing: bool,
}

impl Peer {
    /// Replies from a thread that holds the read lock: never blocks on the
    /// socket or on another writer (see the module docs).
    pub(super) fn reply_from_reader(&self, seq: u64, response: &Response) {
        let payload = reply_payload(response);
        let mut frame = Vec::with_capacity(HEADER_BYTES + payload.len());
        if let Err(e) = write_frame(&mut frame, FrameKind::Response, seq, &payload) {
            return self.close(format!("sending failed: {e}"));
        }
        let mut writer = match self.inner.writer.try_lock() {
            Ok(writer) => writer,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return self.defer(frame, false),
        };
        // A tail still waiting goes first: try it without blocking too.
        match send_some(&writer.channel, &writer.unsent) {
            Ok(n) => drop(writer.unsent.drain(..n)),
            Err(e) => {
                drop(writer);
                return self.close(format!("sending failed: {e}"));
            }
        }
        if !writer.unsent.is_empty() {
            drop(writer);
            return self.defer(frame, false);
        }
        let sent = match send_some(&writer.channel, &frame) {
            Ok(n) => n,
            Err(e) => {
                // Only this thread could read a hangup the peer sent
                // first: waiting for one (as `sent` does) would be in vain.
                drop(writer);
                return self.close(format!("sending failed: {e}"));
            }
        };
        if sent == 0 {
            drop(writer);
            return self.defer(frame, false);
        }
        // Begun, so committed: counted whole.
        self.inner
            .bytes_sent
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        if sent < frame.len() {
            writer.unsent.extend_from_slice(&frame[sent..]);
            drop(writer);
            self.defer(Vec::new(), true);
        }
    }

    /// Replies from a thread that may block (not holding the read lock).
    pub(super) fn send_reply(&self, seq: u64, response: &Response) {
        let _ = self.send(FrameKind::Response, 0, seq, &reply_payload(response));
    }

    /// Sends a hangup saying `reason` if no other thread is writing. Only
    /// as far as the socket takes it at once unless `may_block` (a thread
    /// holding the read lock must not block: the connection ends anyway).
    pub(super) fn send_hangup(&self, reason: &str, may_block: bool) {
        if self.closed().is_some() {
            return;
        }
        let Ok(mut writer) = self.inner.writer.try_lock() else {
            return;
        };
        if may_block {
            let result = writer.send_unsent().and_then(|()| {
                write_frame(&mut writer.channel, FrameKind::Hangup, 0, reason.as_bytes())
            });
            drop(writer);
            let _ = self.sent(result, reason.len());
            return;
        }
        let mut frame = Vec::new();
        if write_frame(&mut frame, FrameKind::Hangup, 0, reason.as_bytes()).is_err() {
            return;
        }
        let unsent = std::mem::take(&mut writer.unsent);
        if send_some(&writer.channel, &unsent).is_ok_and(|n| n == unsent.len()) {
            let _ = send_some(&writer.channel, &frame);
        }
    }

    /// Whether the deferred replies are over [`DEFERRED_CAP`] (a caller
    /// polling for its reply then reads nothing).
    pub(super) fn deferred_full(&self) -> bool {
        let deferred = self
            .inner
            .deferred
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        deferred.frames.len() > DEFERRED_CAP
    }

    /// Waits until the deferred replies are under [`DEFERRED_CAP`] (the
    /// reading thread, before it reads: the flusher never waits for it).
    pub(super) fn wait_for_deferred_room(&self) {
        let mut deferred = self
            .inner
            .deferred
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Not once the connection is gone: the reader then reads its end.
        while deferred.frames.len() > DEFERRED_CAP && self.closed().is_none() {
            deferred = self
                .inner
                .drained
                .wait(deferred)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Queues `frame` (and/or the writer's tail) for the flusher, starting
    /// one unless one is running.
    fn defer(&self, frame: Vec<u8>, tail: bool) {
        let start = {
            let mut deferred = self
                .inner
                .deferred
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            deferred.frames.extend_from_slice(&frame);
            deferred.tail_pending |= tail;
            !std::mem::replace(&mut deferred.flushing, true)
        };
        if start {
            let peer = self.clone();
            self.inner
                .pool
                .submit_uncapped(move || peer.flush_deferred());
        }
    }

    /// The flusher: sends deferred replies and the writer's tail
    /// (blocking) until none are left.
    fn flush_deferred(&self) {
        loop {
            let frames = {
                let mut deferred = self
                    .inner
                    .deferred
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if deferred.frames.is_empty() && !deferred.tail_pending {
                    deferred.flushing = false;
                    return;
                }
                deferred.tail_pending = false;
                std::mem::take(&mut deferred.frames)
            };
            // Taken: readers waiting for room may go on.
            self.inner.drained.notify_all();
            let result = {
                let mut writer = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
                writer.send_unsent().and_then(|()| {
                    std::io::Write::write_all(&mut writer.channel, &frames)
                        .map_err(FrameError::from)
                })
            };
            if let Err(e) = result {
                // The connection is gone: nothing more will be sent.
                let _ = self.sent(Err(e), 0);
                let mut deferred = self
                    .inner
                    .deferred
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                deferred.frames.clear();
                deferred.flushing = false;
                self.inner.drained.notify_all();
                return;
            }
            self.inner
                .bytes_sent
                .fetch_add(frames.len() as u64, Ordering::Relaxed);
        }
    }
}

/// `response` encoded, or an error saying it is too large for a frame: the
/// caller hears why instead of waiting for ever.
fn reply_payload(response: &Response) -> Vec<u8> {
    let payload = Reply::encode_response(response);
    if payload.len() <= MAX_PAYLOAD as usize {
        return payload;
    }
    Reply::encode_response(&Err(format!(
        "the reply of {} bytes exceeds the frame cap of {MAX_PAYLOAD} bytes",
        payload.len()
    )))
}

/// Sends what the socket takes of `bytes` at once.
fn send_some(channel: &Channel, bytes: &[u8]) -> std::io::Result<usize> {
    let mut sent = 0;
    while sent < bytes.len() {
        match channel.send_nonblocking(&bytes[sent..])? {
            0 => break,
            n => sent += n,
        }
    }
    Ok(sent)
}
