//! Random byte streams to a live `lazyrt-executor` process after a valid
//! handshake: random bytes, and well-framed frames of every kind with
//! random payloads. The executor must never crash (it exits with a status,
//! not a signal), never hang (it closes the connection once the stream
//! ends, within a timeout), and every frame it sends back must be well
//! formed. `LAZYRT_WIRE_CASES` sets the number of cases (default 24).

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use lazyrt_executor::handshake;
use lazyrt_executor::protocol::{FrameError, FrameKind, Reply, Request, read_frame};
use lazyrt_executor::transport::Channel;
use proptest::prelude::*;

/// One piece of the stream.
#[derive(Debug, Clone)]
enum Piece {
    /// Bytes as they come.
    Raw(Vec<u8>),
    /// A valid header of `kind` around a random payload (a request's first
    /// byte is a valid opcode half the time, to reach every decoder).
    Framed {
        kind: u8,
        seq: u64,
        payload: Vec<u8>,
    },
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(Piece::Raw),
        (
            1u8..=4,
            0u64..4,
            1u8..=18,
            proptest::collection::vec(any::<u8>(), 0..120)
        )
            .prop_map(|(kind, seq, opcode, mut payload)| {
                if kind == 2 && seq % 2 == 0 {
                    payload.insert(0, opcode);
                }
                Piece::Framed { kind, seq, payload }
            }),
    ]
}

fn encode(pieces: &[Piece]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in pieces {
        match p {
            Piece::Raw(bytes) => out.extend_from_slice(bytes),
            Piece::Framed { kind, seq, payload } => {
                out.extend_from_slice(b"LZRX");
                out.extend_from_slice(&lazyrt_executor::protocol::PROTOCOL_VERSION.to_le_bytes());
                out.push(*kind);
                out.push(0);
                out.extend_from_slice(&seq.to_le_bytes());
                out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
                out.extend_from_slice(&[0; 4]);
                out.extend_from_slice(payload);
            }
        }
    }
    out
}

fn cases() -> u32 {
    std::env::var("LAZYRT_WIRE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn random_streams_never_crash_or_hang_the_executor(pieces in proptest::collection::vec(piece(), 1..6)) {
        let path = common::socket_path("wire");
        let (mut child, spec) = common::start_listening(&format!("unix:{path}"), Stdio::null());
        let mut channel = spec.connect().unwrap();
        handshake::accept(&mut channel, |_| Ok(())).unwrap();
        let Channel::Unix(stream) = channel else { unreachable!() };
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut writer = stream.try_clone().unwrap();
        // The executor may close before reading everything: a failed write
        // is fine, a hang is not.
        let _ = writer.write_all(&encode(&pieces));
        let _ = writer.shutdown(std::net::Shutdown::Write);
        let mut reader = stream;
        loop {
            match read_frame(&mut reader) {
                Ok((header, payload)) => match header.kind {
                    FrameKind::Response => {
                        prop_assert!(Reply::decode_response(&payload).is_ok(), "malformed response");
                    }
                    FrameKind::Request => {
                        prop_assert!(Request::decode(&payload).is_ok(), "malformed request");
                    }
                    FrameKind::Hangup => {}
                    FrameKind::Hello => prop_assert!(false, "hello after the handshake"),
                },
                Err(FrameError::Closed) => break,
                Err(FrameError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => prop_assert!(false, "no clean close within 10 s: {e}"),
            }
        }
        let status = common::wait_with_timeout(&mut child, Duration::from_secs(10));
        prop_assert!(status.is_some(), "the executor did not exit after the stream ended");
        let status = status.unwrap();
        prop_assert!(status.code().is_some(), "the executor died of a signal: {status}");
    }
}

/// The fuzz target's seeds (a chunking byte, then frames) are whole frames
/// of the protocol version this build speaks: seeds of an older version
/// would stop at the header check and never reach the message decoders.
#[test]
fn the_fuzz_seeds_speak_this_protocol_version() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/executor_protocol");
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let mut rest = &bytes[1..];
        let mut frames = 0;
        while !rest.is_empty() {
            match read_frame(&mut rest) {
                Ok(_) => frames += 1,
                Err(e) => panic!("{}: frame {frames}: {e}", path.display()),
            }
        }
        assert!(frames > 0, "{}", path.display());
        seeds += 1;
    }
    assert!(seeds > 10, "{seeds} seeds in {}", dir.display());
}
