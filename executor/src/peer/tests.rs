//! Two peers over a socket pair: replies reach their callers whichever
//! thread reads them (the reading thread or a caller polling for its own),
//! quick requests keep their order, requests that block are served while
//! the connection goes on, a burst of posted requests one way while
//! requests flow the other never leaves both readers blocked writing, a
//! peer that leaves wakes a polling caller, and a detached request's
//! failure reaches its callback.

use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;

/// The address whose `Release` the [`Doubler`] refuses.
const REFUSED: u64 = u64::MAX;

/// Answers `ResolveImplementation { tag }` with `tag * 2` (at once for
/// even tags, from a thread that may block for odd ones, after a nested
/// ping back); `Release` is quick and recorded in arrival order (refused
/// for [`REFUSED`]).
#[derive(Default)]
struct Doubler {
    released: Mutex<Vec<u64>>,
    blocking_served: AtomicUsize,
}

impl RequestHandler for Doubler {
    fn handle(&self, peer: &Peer, request: Request) -> Response {
        match request {
            Request::Ping => Ok(Reply::Unit),
            Request::Release { address } if address == REFUSED => Err("refused on purpose".into()),
            Request::Release { address } => {
                self.released.lock().unwrap().push(address);
                Ok(Reply::Unit)
            }
            Request::ResolveImplementation { tag, .. } => {
                self.blocking_served.fetch_add(1, Ordering::Relaxed);
                if tag == u64::MAX {
                    peer.hang_up("leaving on purpose");
                    return Err("gone".into());
                }
                // A request back while this one is being served: the other
                // side must still read and answer it.
                peer.request(&Request::Ping).map_err(|e| e.to_string())?;
                Ok(Reply::Address(tag * 2))
            }
            other => Err(format!("unexpected {}", other.name())),
        }
    }

    fn answers_at_once(&self, request: &Request) -> bool {
        matches!(request, Request::Ping | Request::Release { .. })
    }

    fn quick_answer(&self, request: &Request) -> Option<Response> {
        match request {
            Request::ResolveImplementation { tag, .. } if tag % 2 == 0 => {
                Some(Ok(Reply::Address(tag * 2)))
            }
            _ => None,
        }
    }
}

fn pair() -> ((Peer, Arc<Doubler>), (Peer, Arc<Doubler>)) {
    let (a, b) = UnixStream::pair().unwrap();
    let start = |s: UnixStream, name: &'static str| {
        let handler = Arc::new(Doubler::default());
        let peer = Peer::start(Channel::Unix(s), handler.clone(), name).unwrap();
        (peer, handler)
    };
    (start(a, "peer-a"), start(b, "peer-b"))
}

fn resolve(peer: &Peer, tag: u64) -> Result<Reply, PeerError> {
    peer.request(&Request::ResolveImplementation {
        batch: 0,
        tag,
        entry: 0,
    })
}

#[test]
fn replies_reach_their_callers_under_traffic_both_ways() {
    let ((a, a_handler), (b, b_handler)) = pair();
    std::thread::scope(|s| {
        for (peer, base) in [(&a, 0u64), (&a, 1 << 20), (&b, 2 << 20), (&b, 3 << 20)] {
            s.spawn(move || {
                for i in 0..400u64 {
                    let tag = base + i;
                    match resolve(peer, tag) {
                        Ok(Reply::Address(got)) => assert_eq!(got, tag * 2, "tag {tag}"),
                        other => panic!("tag {tag}: {other:?}"),
                    }
                    if i % 7 == 0 {
                        assert!(matches!(peer.request(&Request::Ping), Ok(Reply::Unit)));
                    }
                }
            });
        }
        // Posted quick requests, in order, among the traffic.
        s.spawn(|| {
            for address in 0..20_000u64 {
                a.post(&Request::Release { address }).unwrap();
            }
            // Served in order: a ping behind them is answered after them.
            assert!(matches!(a.request(&Request::Ping), Ok(Reply::Unit)));
        });
    });
    let released = b_handler.released.lock().unwrap().clone();
    assert_eq!(released, (0..20_000).collect::<Vec<_>>());
    // Odd tags went to threads that may block; even ones were answered
    // where they were read.
    assert_eq!(a_handler.blocking_served.load(Ordering::Relaxed), 400);
    assert_eq!(b_handler.blocking_served.load(Ordering::Relaxed), 400);
    assert!(a.closed().is_none() && b.closed().is_none());
}

/// Collects what detached requests' failure callbacks hear.
fn failures() -> (Arc<Mutex<Vec<PeerError>>>, impl Fn() -> OnFailure) {
    let heard: Arc<Mutex<Vec<PeerError>>> = Arc::default();
    let sink = heard.clone();
    (heard, move || {
        let sink = sink.clone();
        Box::new(move |e| sink.lock().unwrap().push(e))
    })
}

/// Waits (boundedly) until `heard` holds `n` failures.
fn wait_for(heard: &Mutex<Vec<PeerError>>, n: usize) -> Vec<PeerError> {
    for _ in 0..1000 {
        if heard.lock().unwrap().len() >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    heard.lock().unwrap().clone()
}

#[test]
fn a_detached_request_is_served_in_order_and_its_failure_reaches_its_callback() {
    let ((a, _), (_b, b_handler)) = pair();
    let (heard, on_failure) = failures();
    for address in [1, 2, REFUSED, 3] {
        a.request_detached(&Request::Release { address }, on_failure())
            .unwrap();
    }
    // Served before anything sent afterwards, the refusal included ...
    assert!(matches!(a.request(&Request::Ping), Ok(Reply::Unit)));
    assert_eq!(*b_handler.released.lock().unwrap(), [1, 2, 3]);
    // ... which reaches its callback alone, the connection still up.
    match wait_for(&heard, 1).as_slice() {
        [PeerError::Remote(reason)] => assert!(reason.contains("on purpose"), "{reason}"),
        other => panic!("expected one refusal, got {other:?}"),
    }
    assert!(a.closed().is_none());
    assert!(matches!(a.request(&Request::Ping), Ok(Reply::Unit)));
    assert_eq!(heard.lock().unwrap().len(), 1);
}

#[test]
fn a_detached_request_outstanding_when_the_peer_leaves_hears_why() {
    let ((a, _), (_b, _)) = pair();
    let (heard, on_failure) = failures();
    // Served on a thread of the other side that hangs up instead.
    let leave = Request::ResolveImplementation {
        batch: 0,
        tag: u64::MAX,
        entry: 0,
    };
    a.request_detached(&leave, on_failure()).unwrap();
    match wait_for(&heard, 1).as_slice() {
        [PeerError::Disconnected(reason)] => {
            assert!(reason.contains("leaving on purpose"), "{reason}")
        }
        other => panic!("expected the hangup, got {other:?}"),
    }
    // Later ones are refused at once, their callback never called.
    assert!(matches!(
        a.request_detached(&Request::Ping, on_failure()),
        Err(PeerError::Disconnected(_))
    ));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(heard.lock().unwrap().len(), 1);
}

#[test]
fn a_peer_that_leaves_wakes_a_waiting_caller_with_its_reason() {
    let ((a, _), (b, _)) = pair();
    // `u64::MAX` is odd: served on a thread that hangs up.
    let result = std::thread::scope(|s| {
        let waiter = s.spawn(|| resolve(&a, u64::MAX));
        // A caller already polling for a reply that never comes.
        std::thread::sleep(Duration::from_millis(20));
        waiter.join().unwrap()
    });
    match result {
        Err(PeerError::Disconnected(reason)) => {
            assert!(reason.contains("leaving on purpose"), "{reason}")
        }
        other => panic!("expected the hangup, got {other:?}"),
    }
    // Later requests fail at once, on both sides.
    assert!(matches!(
        a.request(&Request::Ping),
        Err(PeerError::Disconnected(_))
    ));
    assert!(matches!(
        b.request(&Request::Ping),
        Err(PeerError::Disconnected(_))
    ));
}

#[test]
fn callers_poll_only_for_kinds_of_request_whose_replies_come_back_quickly() {
    let times = ReplyTimes(std::array::from_fn(|_| {
        std::sync::atomic::AtomicU32::new(0)
    }));
    let resolve = Request::ResolveImplementation {
        batch: 0,
        tag: 0,
        entry: 0,
    };
    // Unknown: worth a try.
    assert!(times.worth_polling(&resolve));
    // Resolves that compile (a millisecond each) stop the polling...
    for _ in 0..4 {
        times.record(&resolve, Duration::from_millis(1));
    }
    assert!(!times.worth_polling(&resolve));
    // ...for resolves only: pings still poll.
    assert!(times.worth_polling(&Request::Ping));
    // Quick again (compiled implementations): polling resumes.
    for _ in 0..16 {
        times.record(&resolve, Duration::from_micros(15));
    }
    assert!(times.worth_polling(&resolve));
}
