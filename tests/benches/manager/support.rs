//! Shared setup: the `add_one` implementation, a session with N entries
//! ready to call, distributions of timed calls and medians over runs.

use crate::*;

pub(crate) type Fn1 = extern "C" fn(u64) -> u64;

/// Every implementation: `add_one(x) == x + 1`.
#[inline(never)]
pub(crate) extern "C" fn add_one(x: u64) -> u64 {
    x.wrapping_add(1)
}

pub(crate) fn add_one_address() -> ExecutorAddr {
    ExecutorAddr::from_ptr(add_one as Fn1 as *const ())
}

pub(crate) const CALLABLE: SymbolFlags = SymbolFlags::exported_callable();

/// A fresh session with one JITDylib and a manager. Dropping it clears the
/// JITDylib, which frees the stubs (the runtime reuses them).
pub(crate) struct Setup {
    pub(crate) session: Session,
    pub(crate) jd: JitDylib,
    pub(crate) manager: LazyReexportsManager,
}

impl Setup {
    pub(crate) fn new(session: Session) -> Self {
        let jd = session.create_jit_dylib("main").expect("create JITDylib");
        let manager = LazyReexportsManager::new(&session).expect("manager");
        Self {
            session,
            jd,
            manager,
        }
    }

    pub(crate) fn intern_all(&self, prefix: &str, n: usize) -> Vec<SymbolName> {
        let mut text = String::new();
        (0..n)
            .map(|i| {
                text.clear();
                let _ = write!(text, "{prefix}{i}");
                self.session.intern(&text)
            })
            .collect()
    }

    /// Defines `impls` at `add_one` with one `define_absolute`.
    pub(crate) fn define_absolute(&self, impls: &[SymbolName]) {
        let symbol = ExecutorSymbol {
            address: add_one_address(),
            flags: CALLABLE,
        };
        self.jd
            .define_absolute(impls.iter().map(|n| (n.clone(), symbol)))
            .expect("define implementations");
    }

    /// Defines each of `impls` as its own unit that resolves and emits
    /// `add_one` after `work` xorshift rounds.
    pub(crate) fn define_units(&self, impls: &[SymbolName], work: u64, emit: Emit) {
        for name in impls {
            let resolved = name.clone();
            self.jd
                .define(FnUnit::new(
                    "impl",
                    [(name.clone(), CALLABLE)],
                    move |mut r| {
                        if work > 0 {
                            black_box(spin(work));
                        }
                        match emit {
                            Emit::TwoSteps => {
                                r.notify_resolved([(resolved, add_one_address())])
                                    .expect("resolve implementation");
                                r.notify_emitted(&[]).expect("emit implementation");
                            }
                            Emit::OneStep => r
                                .notify_ready([(resolved, add_one_address())])
                                .expect("resolve and emit implementation"),
                        }
                    },
                ))
                .expect("define implementation unit");
        }
    }

    /// Defines `entries[i] -> impls[i]` in one lazy-reexports unit and looks
    /// all entries up: their stubs, in order.
    pub(crate) fn stubs(&self, entries: &[SymbolName], impls: &[SymbolName]) -> Vec<Fn1> {
        let aliases = entries
            .iter()
            .zip(impls)
            .map(|(e, i)| (e.clone(), (i.clone(), CALLABLE)));
        self.jd
            .define(lazy_reexports(&self.manager, aliases))
            .expect("define lazy reexports");
        let found = self
            .jd
            .lookup(entries, RequiredState::Ready)
            .expect("look up stubs");
        entries
            .iter()
            // SAFETY: every address is a stub of this process (freed only
            // when the Setup is dropped, after its calls) whose
            // implementation is `add_one`, an Fn1.
            .map(|e| unsafe { found[e].address.to_fn::<Fn1>() })
            .collect()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Err(e) = self.jd.clear() {
            eprintln!("manager bench: clearing the JITDylib: {e}");
        }
    }
}

/// p50 / p99 / mean of one run's samples.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dist {
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) mean: f64,
}

impl Dist {
    pub(crate) fn of(mut samples: Vec<f64>) -> Self {
        bench::sort(&mut samples);
        Dist {
            p50: bench::percentile(&samples, 50.0),
            p99: bench::percentile(&samples, 99.0),
            mean: bench::mean(&samples),
        }
    }
}

/// The median over runs of `f(run)`.
pub(crate) fn med<T>(runs: &[T], f: impl Fn(&T) -> f64) -> f64 {
    let mut values: Vec<f64> = runs.iter().map(f).collect();
    bench::median(&mut values)
}

/// Calls each of `fns` once with its index, timing each call.
pub(crate) fn time_calls(clock: &Clock, fns: &[Fn1]) -> Vec<f64> {
    let mut samples = Vec::with_capacity(fns.len());
    for (i, f) in fns.iter().enumerate() {
        let f = black_box(*f);
        let x = black_box(i as u64);
        let start = bench::ticks();
        let r = f(x);
        let end = bench::ticks();
        samples.push(clock.ns(end - start));
        assert_eq!(r, i as u64 + 1, "call of entry {i}");
    }
    samples
}
