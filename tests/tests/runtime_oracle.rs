//! The runtime oracle (`lazyrt_tests::runtime_oracle`, also the fuzz
//! target's) on stable: proptest generates operation sequences (random bytes
//! as the fuzzer's raw input, too, though without coverage guidance those
//! decode to few operations), plus one hand-written input that reaches
//! every operation.
//!
//! `LAZYRT_PROPTEST_CASES` sets how many random inputs each property runs
//! (default 64).
//! The oracle checks the process's live-entry count, so the tests of this
//! binary run one at a time.

#![cfg(not(lazyrt_loom))]

use std::sync::Mutex;

use lazyrt_tests::runtime_oracle::{self, Behavior, NameKind, NewEntry, Op, Pick};
use proptest::prelude::*;

static SERIAL: Mutex<()> = Mutex::new(());

fn cases() -> u32 {
    std::env::var("LAZYRT_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

fn name_kind() -> impl Strategy<Value = NameKind> {
    prop_oneof![
        6 => ".{0,12}".prop_map(NameKind::Text),
        1 => Just(NameKind::Empty),
        1 => Just(NameKind::AtLimit),
        1 => any::<u16>().prop_map(NameKind::TooLong),
        1 => any::<u8>().prop_map(NameKind::Odd),
    ]
}

fn behavior() -> impl Strategy<Value = Behavior> {
    prop_oneof![
        4 => any::<u8>().prop_map(Behavior::Returns),
        1 => Just(Behavior::Fails),
        1 => Just(Behavior::Panics),
        1 => any::<u8>().prop_map(Behavior::CallsItself),
    ]
}

fn batch() -> impl Strategy<Value = Vec<NewEntry>> {
    let entry = (name_kind(), behavior()).prop_map(|(name, behavior)| NewEntry { name, behavior });
    proptest::collection::vec(entry, 0..8)
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        6 => any::<u16>().prop_map(Pick::Known),
        1 => any::<u32>().prop_map(Pick::Raw),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => batch().prop_map(Op::Create),
        1 => batch().prop_map(Op::CreateNamedByResolver),
        4 => (any::<u16>(), any::<u64>()).prop_map(|(pick, arg)| Op::Call { pick, arg }),
        1 => (pick(), any::<u8>()).prop_map(|(pick, target)| Op::Redirect { pick, target }),
        1 => proptest::collection::vec((pick(), any::<u8>()), 0..6).prop_map(Op::RedirectMany),
        2 => proptest::collection::vec(pick(), 0..6).prop_map(Op::Free),
        2 => pick().prop_map(Op::Query),
        2 => pick().prop_map(Op::Resolve),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn operation_sequences_agree_with_the_model(ops in proptest::collection::vec(op(), 0..64)) {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        runtime_oracle::run(&ops);
    }

    #[test]
    fn random_inputs_agree_with_the_model(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        runtime_oracle::run_bytes(&bytes);
    }
}

fn entry(name: NameKind, behavior: Behavior) -> NewEntry {
    NewEntry { name, behavior }
}

#[test]
fn every_operation_agrees_with_the_model() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let batch = vec![
        entry(NameKind::Text("returns".into()), Behavior::Returns(1)),
        entry(NameKind::Empty, Behavior::Fails),
        entry(NameKind::AtLimit, Behavior::Panics),
        entry(NameKind::Odd(7), Behavior::CallsItself(2)),
    ];
    let ops = [
        Op::Create(batch.clone()),
        Op::CreateNamedByResolver(batch),
        Op::Create(vec![entry(NameKind::TooLong(3), Behavior::Returns(0))]),
        Op::Call { pick: 0, arg: 7 },
        Op::Call { pick: 1, arg: 7 },
        Op::Call { pick: 2, arg: 7 },
        Op::Call { pick: 3, arg: 7 },
        Op::Resolve(Pick::Known(4)),
        Op::Resolve(Pick::Known(5)),
        Op::Resolve(Pick::Known(7)),
        Op::Call { pick: 5, arg: 9 },
        Op::Query(Pick::Known(1)),
        Op::Query(Pick::Known(6)),
        Op::Redirect {
            pick: Pick::Known(6),
            target: 3,
        },
        Op::RedirectMany(vec![(Pick::Known(0), 2), (Pick::Known(0), 1)]),
        Op::RedirectMany(vec![(Pick::Known(0), 2), (Pick::Known(1), 1)]),
        Op::Free(vec![Pick::Known(2), Pick::Raw(u32::MAX)]),
        Op::Free(vec![Pick::Known(2)]),
        Op::Call { pick: 2, arg: 1 },
        Op::Query(Pick::Known(2)),
        Op::Resolve(Pick::Known(2)),
        Op::Query(Pick::Raw(u32::MAX - 1)),
        Op::Resolve(Pick::Raw(u32::MAX - 1)),
    ];
    runtime_oracle::run(&ops);
}
