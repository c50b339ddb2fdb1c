//! Fuzzes the executor's side of the wire protocol end to end: the fuzz
//! input is what a (hostile or broken) controller writes, delivered in
//! chunks whose sizes the input also chooses (h2's MockIo idea: partial
//! frames, split headers), to a live `ExecutorService` behind a `Peer`.
//!
//! Checks: nothing crashes; the executor answers or hangs up and then
//! closes the connection once the input ends (no hang: bounded by a read
//! timeout); every frame it sends back is well formed.
//!
//! `cargo +nightly fuzz run executor_protocol`

#![no_main]

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use lazyrt_executor::peer::Peer;
use lazyrt_executor::protocol::{FrameKind, Reply, Request, read_frame};
use lazyrt_executor::service::ExecutorService;
use lazyrt_executor::transport::Channel;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunking, stream)) = data.split_first() else {
        return;
    };
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    // Few entries per input: they live in the process-wide runtime.
    let service = ExecutorService::with_entry_limit(64);
    let peer = Peer::start(Channel::Unix(theirs), service.clone(), "fuzz").expect("peer");
    ours.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut writer = ours.try_clone().unwrap();
    let input = stream.to_vec();
    let writing = std::thread::spawn(move || {
        let chunk = 1 + chunking as usize % 64;
        for piece in input.chunks(chunk) {
            if writer.write_all(piece).is_err() {
                break;
            }
        }
        let _ = writer.shutdown(std::net::Shutdown::Write);
    });
    let mut reader = ours;
    loop {
        match read_frame(&mut reader) {
            Ok((header, payload)) => match header.kind {
                FrameKind::Response => {
                    let _ = Reply::decode_response(&payload)
                        .expect("the executor sent a malformed response");
                }
                FrameKind::Request => {
                    Request::decode(&payload).expect("the executor sent a malformed request");
                }
                FrameKind::Hangup => {}
                FrameKind::Hello => panic!("hello after the handshake"),
            },
            Err(lazyrt_executor::protocol::FrameError::Closed) => break,
            Err(lazyrt_executor::protocol::FrameError::Io(e))
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!("the executor neither answered nor closed within 10 s")
            }
            Err(e) => panic!("the executor sent a bad frame: {e}"),
        }
    }
    writing.join().unwrap();
    drop(peer);
    let _ = service.free_all_entries();
    let _ = service.wait_for_end(Duration::from_secs(1));
});
