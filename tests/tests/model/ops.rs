//! The operations of a case (define, lookup, call, redirect, remove, ...)
//! and the proptest strategies that generate them.

use crate::*;

/// What an implementation's materializer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behaviour {
    /// Resolves to `KNOWN[k]` and emits.
    Ok(usize),
    /// Resolves to address 0 and emits.
    Null,
    /// `r.fail(...)`.
    Fail,
    /// Drops its responsibility.
    Drop,
    /// Panics (pool dispatchers only).
    Panic,
}

/// A symbol of a JITDylib: an entry or an implementation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Name {
    Entry(usize),
    Impl(usize),
}

impl Name {
    pub(crate) fn index(self) -> usize {
        match self {
            Name::Entry(i) => i,
            Name::Impl(i) => N + i,
        }
    }

    pub(crate) fn text(self) -> String {
        match self {
            Name::Entry(i) => format!("e{i}"),
            Name::Impl(i) => format!("e{i}$impl"),
        }
    }

    pub(crate) fn all() -> impl Iterator<Item = Name> {
        (0..N).map(Name::Entry).chain((0..N).map(Name::Impl))
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// Define `e{i}$impl` in slot `jd` under tracker `tracker`.
    DefineImpl {
        jd: usize,
        i: usize,
        behaviour: Behaviour,
        tracker: usize,
    },
    /// Define the lazy reexport `e{i} -> e{i}$impl` of slot `source`.
    DefineEntry {
        jd: usize,
        i: usize,
        source: usize,
        tracker: usize,
    },
    /// `jd.lookup(names)`.
    Lookup {
        jd: usize,
        names: Vec<Name>,
    },
    /// Look `e{i}` up and call its stub.
    Call {
        jd: usize,
        i: usize,
        arg: u64,
    },
    /// Call a stub freed by a removal (if any is not yet reusable).
    CallRemoved {
        pick: usize,
        arg: u64,
    },
    /// `manager.redirect(jd, e{i} or e{i}$impl, KNOWN[k])`.
    Redirect {
        jd: usize,
        i: usize,
        k: usize,
        impl_symbol: bool,
    },
    RemoveTracker {
        jd: usize,
        tracker: usize,
    },
    /// Replace explicit tracker `tracker` of the slot by a new one.
    NewTracker {
        jd: usize,
        tracker: usize,
    },
    Transfer {
        jd: usize,
        from: usize,
        to: usize,
    },
    Clear {
        jd: usize,
    },
    RemoveJitDylib {
        jd: usize,
    },
    /// Create a JITDylib for the slot (fails if its JITDylib is alive).
    CreateJitDylib {
        jd: usize,
    },
    /// Use the last removed handle of the slot: defines must fail.
    ProbeStale {
        jd: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dispatch {
    InPlace,
    Pool(usize),
}

pub(crate) fn behaviour(panics: bool) -> BoxedStrategy<Behaviour> {
    let base = prop_oneof![
        6 => (0..KNOWN.len()).prop_map(Behaviour::Ok),
        1 => Just(Behaviour::Null),
        2 => Just(Behaviour::Fail),
        2 => Just(Behaviour::Drop),
    ];
    if panics {
        prop_oneof![8 => base, 1 => Just(Behaviour::Panic)].boxed()
    } else {
        base.boxed()
    }
}

/// A JITDylib slot, mostly the first so that ops meet.
pub(crate) fn slot() -> impl Strategy<Value = usize> + Clone {
    prop_oneof![4 => Just(0), 1 => 0..SLOTS]
}

/// An entry index, mostly among the first few so that ops meet.
pub(crate) fn index() -> impl Strategy<Value = usize> + Clone {
    prop_oneof![5 => 0..2usize, 1 => 0..N]
}

pub(crate) fn name() -> impl Strategy<Value = Name> {
    (any::<bool>(), index())
        .prop_map(|(entry, i)| if entry { Name::Entry(i) } else { Name::Impl(i) })
}

pub(crate) fn op(panics: bool) -> impl Strategy<Value = Op> {
    let names = proptest::collection::vec(name(), 1..=3).prop_map(|mut names| {
        let mut seen = Vec::new();
        names.retain(|n| {
            let new = !seen.contains(n);
            seen.push(*n);
            new
        });
        names
    });
    prop_oneof![
        7 => (slot(), index(), behaviour(panics), 0..TRACKERS).prop_map(
            |(jd, i, behaviour, tracker)| Op::DefineImpl { jd, i, behaviour, tracker }
        ),
        8 => (slot(), index(), prop::bool::weighted(0.25), 0..TRACKERS).prop_map(
            |(jd, i, other, tracker)| Op::DefineEntry {
                jd,
                i,
                source: if other { (jd + 1) % SLOTS } else { jd },
                tracker,
            }
        ),
        3 => (slot(), names).prop_map(|(jd, names)| Op::Lookup { jd, names }),
        10 => (slot(), index(), 0..1000u64).prop_map(|(jd, i, arg)| Op::Call { jd, i, arg }),
        1 => (0..8usize, 0..1000u64).prop_map(|(pick, arg)| Op::CallRemoved { pick, arg }),
        2 => (slot(), index(), 0..KNOWN.len(), prop::bool::weighted(0.15)).prop_map(
            |(jd, i, k, impl_symbol)| Op::Redirect { jd, i, k, impl_symbol }
        ),
        2 => (slot(), 0..TRACKERS).prop_map(|(jd, tracker)| Op::RemoveTracker { jd, tracker }),
        2 => (slot(), 1..TRACKERS).prop_map(|(jd, tracker)| Op::NewTracker { jd, tracker }),
        2 => (slot(), 0..TRACKERS, 0..TRACKERS)
            .prop_map(|(jd, from, to)| Op::Transfer { jd, from, to }),
        1 => slot().prop_map(|jd| Op::Clear { jd }),
        1 => slot().prop_map(|jd| Op::RemoveJitDylib { jd }),
        2 => slot().prop_map(|jd| Op::CreateJitDylib { jd }),
        1 => slot().prop_map(|jd| Op::ProbeStale { jd }),
    ]
}

/// How a case runs: its dispatcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Setup {
    pub(crate) dispatch: Dispatch,
}

pub(crate) fn case() -> impl Strategy<Value = (Setup, Vec<Op>)> {
    let dispatch = prop_oneof![
        Just(Dispatch::InPlace),
        Just(Dispatch::Pool(1)),
        Just(Dispatch::Pool(2))
    ];
    dispatch.prop_flat_map(|dispatch| {
        let setup = Setup { dispatch };
        let panics = dispatch != Dispatch::InPlace;
        (Just(setup), proptest::collection::vec(op(panics), 1..64))
    })
}
