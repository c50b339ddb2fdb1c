//! The handshake: the executor's [`Hello`], the controller's acceptance or
//! refusal. Bounded in time: a peer that never answers is an error, not a
//! hang.

use std::io;
use std::time::Duration;

use crate::protocol::{FrameError, FrameKind, Hello, read_frame, write_frame};
use crate::transport::Channel;

/// How long either side waits for the other's handshake frame.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// Why the handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The frame could not be read or written.
    #[error("handshake: {0}")]
    Frame(#[from] FrameError),
    /// The peer refused (its hangup reason).
    #[error("handshake refused by the peer: {0}")]
    Refused(String),
    /// The peer sent something other than a hello.
    #[error("handshake: expected a hello frame, got {0:?}")]
    Unexpected(FrameKind),
    /// The executor's hello is malformed.
    #[error("handshake: malformed hello: {0}")]
    BadHello(#[from] crate::protocol::DecodeError),
}

fn set_timeout(channel: &Channel, timeout: Option<Duration>) -> io::Result<()> {
    match channel {
        Channel::Unix(s) => s.set_read_timeout(timeout),
        Channel::Tcp(s) => s.set_read_timeout(timeout),
    }
}

/// Executor side: sends `hello` and waits for the controller's acceptance.
pub fn greet(channel: &mut Channel, hello: &Hello) -> Result<(), HandshakeError> {
    write_frame(channel, FrameKind::Hello, 0, &hello.encode())?;
    set_timeout(channel, Some(HANDSHAKE_TIMEOUT)).map_err(FrameError::Io)?;
    let (header, payload) = read_frame(channel)?;
    set_timeout(channel, None).map_err(FrameError::Io)?;
    match header.kind {
        FrameKind::Hello => Ok(()),
        FrameKind::Hangup => Err(HandshakeError::Refused(
            String::from_utf8_lossy(&payload).into_owned(),
        )),
        other => Err(HandshakeError::Unexpected(other)),
    }
}

/// Controller side: reads the executor's hello and lets `check` accept it
/// (`Err(reason)` refuses, with the reason sent to the executor).
pub fn accept(
    channel: &mut Channel,
    check: impl FnOnce(&Hello) -> Result<(), String>,
) -> Result<Hello, HandshakeError> {
    set_timeout(channel, Some(HANDSHAKE_TIMEOUT)).map_err(FrameError::Io)?;
    let (header, payload) = read_frame(channel)?;
    set_timeout(channel, None).map_err(FrameError::Io)?;
    if header.kind != FrameKind::Hello {
        return Err(HandshakeError::Unexpected(header.kind));
    }
    let hello = match Hello::decode(&payload) {
        Ok(hello) => hello,
        Err(e) => {
            let _ = write_frame(
                channel,
                FrameKind::Hangup,
                0,
                format!("malformed hello: {e}").as_bytes(),
            );
            return Err(e.into());
        }
    };
    if let Err(reason) = check(&hello) {
        let _ = write_frame(channel, FrameKind::Hangup, 0, reason.as_bytes());
        return Err(HandshakeError::Refused(reason));
    }
    write_frame(channel, FrameKind::Hello, 0, &[])?;
    Ok(hello)
}
