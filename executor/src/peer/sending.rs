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
//! as long as it has to.

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
        let payload = Reply::encode_response(response);
        let mut frame = Vec::with_capacity(HEADER_BYTES + payload.len());
        if let Err(e) = write_frame(&mut frame, FrameKind::Response, seq, &payload) {
            // Over the frame cap: as `send` refuses it.
            let _ = self.sent(Err(e), payload.len());
            return;
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
                let _ = self.sent(Err(e.into()), payload.len());
                return;
            }
        }
        if !writer.unsent.is_empty() {
            drop(writer);
            return self.defer(frame, false);
        }
        let sent = match send_some(&writer.channel, &frame) {
            Ok(n) => n,
            Err(e) => {
                drop(writer);
                let _ = self.sent(Err(e.into()), payload.len());
                return;
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
                return;
            }
            self.inner
                .bytes_sent
                .fetch_add(frames.len() as u64, Ordering::Relaxed);
        }
    }
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
