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
    /// The executor speaks another protocol version (it was built from
    /// another lazyrt than this controller).
    #[error(
        "handshake: the executor speaks protocol version {executor}, this controller speaks {controller}: run the lazyrt-executor built with this controller"
    )]
    Version {
        /// The executor's version.
        executor: u16,
        /// This controller's.
        controller: u16,
    },
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
    let (header, payload) = match read_frame(channel) {
        Ok(frame) => frame,
        Err(FrameError::Version { peer, ours }) => {
            let e = HandshakeError::Version {
                executor: peer,
                controller: ours,
            };
            // Said to the executor too (it reads this hangup's header as
            // a version mismatch of its own, and says so).
            let _ = write_frame(channel, FrameKind::Hangup, 0, e.to_string().as_bytes());
            return Err(e);
        }
        Err(e) => return Err(e.into()),
    };
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

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixStream;

    use super::*;

    #[test]
    fn an_executor_of_another_protocol_version_hears_why_and_so_does_the_controller() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        // An executor of version 1: its hello's header says so.
        let old = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let mut header = [0u8; crate::protocol::HEADER_BYTES];
            header[..4].copy_from_slice(&crate::protocol::MAGIC);
            header[4..6].copy_from_slice(&1u16.to_le_bytes());
            header[6] = FrameKind::Hello as u8;
            theirs.write_all(&header).unwrap();
            // What comes back: a frame whose header it cannot read either.
            let mut reply = Vec::new();
            let _ = theirs.read_to_end(&mut reply);
            reply
        });
        let mut channel = Channel::Unix(ours);
        let e = accept(&mut channel, |_| Ok(())).unwrap_err();
        assert!(
            matches!(
                e,
                HandshakeError::Version {
                    executor: 1,
                    controller: crate::protocol::PROTOCOL_VERSION
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("built with this controller"), "{e}");
        drop(channel);
        let reply = old.join().unwrap();
        let said = String::from_utf8_lossy(&reply);
        assert!(said.contains("protocol version 1"), "{said}");
    }
}
