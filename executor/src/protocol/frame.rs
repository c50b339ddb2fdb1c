//! Frames: the fixed header, reading one frame with a hard size cap, and
//! writing one.

use std::io::{self, Read, Write};

/// The first four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"LZRX";
/// The protocol version this build speaks (in every frame header).
pub const PROTOCOL_VERSION: u16 = 2;
/// Bytes in a frame header.
pub const HEADER_BYTES: usize = 24;
/// The largest payload a frame may carry.
pub const MAX_PAYLOAD: u32 = 64 << 20;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// The executor's [`Hello`](super::Hello), or the controller's (empty)
    /// acceptance of it.
    Hello = 1,
    /// A [`Request`](super::Request).
    Request = 2,
    /// A [`Response`](super::Response) to the request with the same `seq`.
    Response = 3,
    /// The sender is closing; the payload is the reason (UTF-8).
    Hangup = 4,
}

impl FrameKind {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Hello,
            2 => Self::Request,
            3 => Self::Response,
            4 => Self::Hangup,
            _ => return None,
        })
    }
}

/// Header flag: a [`FrameKind::Request`] whose sender does not wait for
/// the reply (a pipelined `Finalize`): the receiver must serve it before it
/// reads the next frame and, if it fails, hang up before reading further,
/// because the frames after it rely on it.
pub const FLAG_POSTED: u8 = 1;

/// A decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// What follows.
    pub kind: FrameKind,
    /// [`FLAG_POSTED`] or 0.
    pub flags: u8,
    /// Pairs responses with requests.
    pub seq: u64,
    /// Payload bytes.
    pub len: u32,
}

/// Why a frame could not be read. Every one ends the connection.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The channel closed at a frame boundary.
    #[error("connection closed")]
    Closed,
    /// The channel closed inside a frame.
    #[error("connection closed inside a frame ({got} of {expected} bytes)")]
    Truncated {
        /// Bytes received.
        got: usize,
        /// Bytes the frame needs.
        expected: usize,
    },
    /// Not a frame of this protocol.
    #[error(
        "bad frame magic {found:02x?} (expected \"LZRX\"): the peer does not speak lazyrt's protocol, or something else wrote to the channel"
    )]
    BadMagic {
        /// The four bytes found.
        found: [u8; 4],
    },
    /// The peer speaks another version.
    #[error("peer speaks protocol version {peer}, this side speaks {ours}")]
    Version {
        /// The peer's version.
        peer: u16,
        /// Ours.
        ours: u16,
    },
    /// Unknown frame kind.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// Reserved bytes were not zero (or a flag other than a request's
    /// [`FLAG_POSTED`] was set).
    #[error("reserved header bytes or flags are not zero")]
    Reserved,
    /// The payload claims more than [`MAX_PAYLOAD`].
    #[error("frame of {len} payload bytes exceeds the {max}-byte cap")]
    TooLarge {
        /// Claimed length.
        len: u32,
        /// The cap.
        max: u32,
    },
    /// The channel failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl FrameHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut h = [0u8; HEADER_BYTES];
        h[0..4].copy_from_slice(&MAGIC);
        h[4..6].copy_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        h[6] = self.kind as u8;
        h[7] = self.flags;
        h[8..16].copy_from_slice(&self.seq.to_le_bytes());
        h[16..20].copy_from_slice(&self.len.to_le_bytes());
        h
    }

    /// Decodes and checks a header (magic, version, kind, reserved bytes,
    /// the size cap).
    pub fn decode(h: &[u8; HEADER_BYTES]) -> Result<Self, FrameError> {
        let found = [h[0], h[1], h[2], h[3]];
        if found != MAGIC {
            return Err(FrameError::BadMagic { found });
        }
        let version = u16::from_le_bytes([h[4], h[5]]);
        if version != PROTOCOL_VERSION {
            return Err(FrameError::Version {
                peer: version,
                ours: PROTOCOL_VERSION,
            });
        }
        let kind = FrameKind::from_u8(h[6]).ok_or(FrameError::UnknownKind(h[6]))?;
        let flags = h[7];
        let posted_request = flags == FLAG_POSTED && kind == FrameKind::Request;
        if (flags != 0 && !posted_request) || h[20..24] != [0; 4] {
            return Err(FrameError::Reserved);
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&h[8..16]);
        let len = u32::from_le_bytes([h[16], h[17], h[18], h[19]]);
        if len > MAX_PAYLOAD {
            return Err(FrameError::TooLarge {
                len,
                max: MAX_PAYLOAD,
            });
        }
        Ok(Self {
            kind,
            flags,
            seq: u64::from_le_bytes(seq),
            len,
        })
    }
}

/// Reads until `buf` is full; `Ok(n < buf.len())` only at end of stream.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads one frame. The payload is allocated only after the header passed
/// every check, and grows as bytes arrive (a peer that claims 64 MiB and
/// sends 10 bytes costs 10 bytes, not 64 MiB).
pub fn read_frame(r: &mut impl Read) -> Result<(FrameHeader, Vec<u8>), FrameError> {
    let mut h = [0u8; HEADER_BYTES];
    match read_full(r, &mut h)? {
        0 => return Err(FrameError::Closed),
        HEADER_BYTES => {}
        got => {
            return Err(FrameError::Truncated {
                got,
                expected: HEADER_BYTES,
            });
        }
    }
    let header = FrameHeader::decode(&h)?;
    let len = header.len as usize;
    let mut payload = Vec::with_capacity(len.min(64 << 10));
    let got = r.by_ref().take(len as u64).read_to_end(&mut payload)?;
    if got < len {
        return Err(FrameError::Truncated {
            got: HEADER_BYTES + got,
            expected: HEADER_BYTES + len,
        });
    }
    Ok((header, payload))
}

/// Writes one frame (header and payload in one buffer, one write).
pub fn write_frame(
    w: &mut impl Write,
    kind: FrameKind,
    seq: u64,
    payload: &[u8],
) -> Result<(), FrameError> {
    write_frame_with_flags(w, kind, 0, seq, payload)
}

/// [`write_frame`] with header flags ([`FLAG_POSTED`]).
pub fn write_frame_with_flags(
    w: &mut impl Write,
    kind: FrameKind,
    flags: u8,
    seq: u64,
    payload: &[u8],
) -> Result<(), FrameError> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|l| *l <= MAX_PAYLOAD)
        .ok_or(FrameError::TooLarge {
            len: u32::try_from(payload.len()).unwrap_or(u32::MAX),
            max: MAX_PAYLOAD,
        })?;
    let header = FrameHeader {
        kind,
        flags,
        seq,
        len,
    }
    .encode();
    let mut frame = Vec::with_capacity(HEADER_BYTES + payload.len());
    frame.extend_from_slice(&header);
    frame.extend_from_slice(payload);
    w.write_all(&frame)?;
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let mut buf = Vec::new();
        write_frame(&mut buf, FrameKind::Request, 7, b"abc").unwrap();
        let (h, p) = read_frame(&mut buf.as_slice()).unwrap();
        assert_eq!(
            (h.kind, h.seq, p.as_slice()),
            (FrameKind::Request, 7, &b"abc"[..])
        );

        let mut bad = buf.clone();
        bad[0] = b'X';
        assert!(matches!(
            read_frame(&mut bad.as_slice()),
            Err(FrameError::BadMagic { .. })
        ));
        let mut bad = buf.clone();
        bad[4] = 9;
        assert!(matches!(
            read_frame(&mut bad.as_slice()),
            Err(FrameError::Version { peer: 9, .. })
        ));
        let mut bad = buf.clone();
        bad[16..20].copy_from_slice(&(MAX_PAYLOAD + 1).to_le_bytes());
        assert!(matches!(
            read_frame(&mut bad.as_slice()),
            Err(FrameError::TooLarge { .. })
        ));
        // A claimed 64 MiB with 3 bytes behind it: truncated, not allocated.
        let mut bad = buf.clone();
        bad[16..20].copy_from_slice(&MAX_PAYLOAD.to_le_bytes());
        assert!(matches!(
            read_frame(&mut bad.as_slice()),
            Err(FrameError::Truncated { .. })
        ));
        assert!(matches!(
            read_frame(&mut &buf[..5]),
            Err(FrameError::Truncated { .. })
        ));
        assert!(matches!(read_frame(&mut &[][..]), Err(FrameError::Closed)));
    }
}
