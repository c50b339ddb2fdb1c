//! `DebugOutputs::from_env`. One test: it changes the environment.

use lazyrt_jit_debug::{DebugError, DebugOutputs};

fn with_env(perf: Option<&str>, gdb: Option<&str>) -> Result<DebugOutputs, DebugError> {
    for (name, value) in [("LAZYRT_PERF", perf), ("LAZYRT_GDB", gdb)] {
        // SAFETY: the only test of this binary; no other thread reads the
        // environment.
        unsafe {
            match value {
                Some(v) => std::env::set_var(name, v),
                None => std::env::remove_var(name),
            }
        }
    }
    DebugOutputs::from_env()
}

#[test]
fn environment_variables() {
    let none = DebugOutputs::default();
    assert_eq!(with_env(None, None).expect("unset"), none);
    assert_eq!(with_env(Some(""), Some("")).expect("empty"), none);
    assert_eq!(
        with_env(Some("map"), None).expect("map"),
        DebugOutputs {
            perf_map: true,
            ..none
        }
    );
    assert_eq!(
        with_env(Some("jitdump"), Some("0")).expect("jitdump"),
        DebugOutputs {
            jitdump: true,
            ..none
        }
    );
    assert_eq!(
        with_env(Some("map, jitdump"), Some("on")).expect("all"),
        DebugOutputs::ALL,
        "GDB turns unwind on too"
    );
    assert_eq!(
        with_env(None, Some("1")).expect("gdb"),
        DebugOutputs {
            gdb: true,
            unwind: true,
            ..none
        }
    );
    for (perf, gdb, variable) in [
        (Some("maps"), None, "LAZYRT_PERF"),
        (Some("map,perf"), None, "LAZYRT_PERF"),
        (None, Some("yes"), "LAZYRT_GDB"),
    ] {
        match with_env(perf, gdb) {
            Err(DebugError::Env { variable: v, .. }) => assert_eq!(v, variable),
            other => panic!("{perf:?} {gdb:?}: {other:?}"),
        }
    }
    let _ = with_env(None, None);

    // The wire form round-trips and rejects unknown bits.
    for bits in 0..16 {
        assert_eq!(
            DebugOutputs::from_bits(bits).expect("known bits").to_bits(),
            bits
        );
    }
    assert!(DebugOutputs::from_bits(16).is_none());
}
