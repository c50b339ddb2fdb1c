//! The demo's report: both runs side by side, as text and as the bench
//! line.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::{Options, Program, RemoteFigures, Run, SpeculationFigures};

/// Both runs and everything the report needs.
pub struct Report {
    /// The options.
    pub options: Options,
    /// The program.
    pub program: Arc<Program>,
    /// The lazy run.
    pub lazy: Run,
    /// The eager run.
    pub eager: Run,
    /// Trace events and tracks written, if any.
    pub trace: Option<(PathBuf, usize, usize)>,
    /// The out-of-process figures, when the lazy run was remote.
    pub remote: Option<RemoteFigures>,
    /// With `--speculate`: the lazy run (speculating) against the same run
    /// without speculation.
    pub speculation: Option<SpeculationFigures>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    if d >= Duration::from_millis(1) {
        ms(d)
    } else {
        format!("{:.0} µs", d.as_secs_f64() * 1e6)
    }
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Report {
    /// Whether every lazy result equals the eager one.
    pub fn correct(&self) -> bool {
        self.lazy.results == self.eager.results
            && self.lazy.repeats_agree
            && self.eager.repeats_agree
    }

    /// The bench line.
    pub fn json(&self) -> String {
        let lazy_ms = self.lazy.first_result.as_secs_f64() * 1e3;
        let mut line = format!(
            "{{\"{}\":{lazy_ms:.3},\"demo_first_result_eager_ms\":{:.3},\"demo_fraction_compiled\":{:.4}",
            if self.remote.is_some() {
                "oop_demo_first_result_ms"
            } else {
                "demo_first_result_lazy_ms"
            },
            self.eager.first_result.as_secs_f64() * 1e3,
            self.lazy.compiled as f64 / self.program.len() as f64
        );
        if let Some(r) = &self.remote {
            line.push_str(&format!(
                ",\"oop_round_trip_ns\":{},\"oop_requests\":{},\"oop_round_trips\":{},\"oop_bytes\":{}",
                r.round_trip.as_nanos(),
                r.stats.requests_sent + r.stats.requests_served,
                r.stats.requests_sent.saturating_sub(r.stats.requests_unawaited) + r.stats.requests_served,
                r.stats.bytes_sent + r.stats.bytes_received
            ));
        }
        line.push('}');
        line
    }

    /// The human-readable report.
    pub fn render(&self) -> String {
        let (p, l, e) = (&self.program, &self.lazy, &self.eager);
        let n = p.len();
        let mut sorted = l.first_calls.clone();
        sorted.sort();
        let mut out = String::new();
        let arch = std::env::consts::ARCH;
        let place = match &self.remote {
            Some(r) => format!(", lazy run in a lazyrt-executor process ({})", r.triple),
            None => String::new(),
        };
        out.push_str(&format!(
            "lazyrt demo: {} functions from seed {} ({} with >8 args), {} threads calling main, depth {}, {arch}{place}\n",
            thousands(n),
            p.seed,
            p.many_fns.len(),
            self.options.threads,
            p.depth
        ));
        out.push_str(&format!(
            "  functions     {} defined · {} compiled lazily ({:.1}%) · {} never compiled\n",
            thousands(n),
            thousands(l.compiled),
            100.0 * l.compiled as f64 / n as f64,
            thousands(n - l.compiled)
        ));
        out.push_str(&format!(
            "  first result  lazy {}  vs  eager {} (compiles all {} on {} threads first: {})  → {:.1}x sooner\n",
            ms(l.first_result),
            ms(e.first_result),
            thousands(e.compiled),
            self.options.threads,
            ms(e.compile_all),
            e.first_result.as_secs_f64() / l.first_result.as_secs_f64().max(1e-9)
        ));
        out.push_str(&format!(
            "  first calls   p50 {} · p99 {} · max {}  (lookup + Cranelift compile, {} first calls; {} waited on another thread's compile)\n",
            us(percentile(&sorted, 0.5)),
            us(percentile(&sorted, 0.99)),
            us(sorted.last().copied().unwrap_or_default()),
            thousands(sorted.len()),
            l.contended_waits
        ));
        if let Some(r) = &self.remote {
            out.push_str(&format!(
                "  executor      lazyrt-executor pid {} · {} round trips ({} resolve requests from it) and {} requests sent without waiting · {} KiB sent, {} KiB received · bare round trip {}\n",
                r.pid,
                thousands(
                    (r.stats.requests_sent.saturating_sub(r.stats.requests_unawaited)
                        + r.stats.requests_served)
                        as usize
                ),
                thousands(r.stats.requests_served as usize),
                thousands(r.stats.requests_unawaited as usize),
                r.stats.bytes_sent / 1024,
                r.stats.bytes_received / 1024,
                us(r.round_trip)
            ));
            out.push_str(&format!(
                "  steady state  main() on every executor thread: {} per request (one round trip each) vs eager in-process {} per call\n",
                us(l.main_steady),
                us(e.main_steady)
            ));
        } else {
            out.push_str(&format!(
                "  steady state  call via stub {:.2} ns vs direct {:.2} ns ({:+.2} ns/call); main(): lazy {} vs eager {} per call\n",
                l.stub_call_ns,
                l.direct_call_ns,
                l.stub_call_ns - l.direct_call_ns,
                us(l.main_steady),
                us(e.main_steady)
            ));
        }
        out.push_str(&format!(
            "  call sites    lazy: {} direct, {} via stub ({} re-pointed to the callee once compiled) · eager: {} direct, {} via stub ({} re-pointed)\n",
            thousands(l.stats.direct_call_sites),
            thousands(l.stats.stub_call_sites),
            thousands(l.stats.patched_call_sites),
            thousands(e.stats.direct_call_sites),
            thousands(e.stats.stub_call_sites),
            thousands(e.stats.patched_call_sites)
        ));
        out.push_str(&format!(
            "  code memory   lazy {} KiB code in {} KiB of pages · eager {} KiB in {} KiB · compile time lazy {} vs eager {} (CPU)\n",
            l.stats.memory.code_bytes / 1024,
            l.stats.memory.page_bytes / 1024,
            e.stats.memory.code_bytes / 1024,
            e.stats.memory.page_bytes / 1024,
            ms(l.stats.compile_time),
            ms(e.stats.compile_time)
        ));
        if let Some(figures) = &self.speculation {
            out.push_str(&figures.render());
        }
        let checked = l.results.len() * (1 + self.options.repeats);
        if self.correct() {
            out.push_str(&format!(
                "  correctness   OK: all {checked} results ({} threads x {} calls) equal the eagerly compiled program's\n",
                l.results.len(),
                1 + self.options.repeats
            ));
        } else {
            out.push_str(&format!(
                "  correctness   MISMATCH: lazy {:?} vs eager {:?} (repeats agree: lazy {}, eager {})\n",
                l.results, e.results, l.repeats_agree, e.repeats_agree
            ));
        }
        if let Some((path, events, tracks)) = &self.trace {
            out.push_str(&format!(
                "  trace         {} ({} events, {} tracks, {} run) — open in ui.perfetto.dev or chrome://tracing\n",
                path.display(),
                events,
                tracks,
                if self.options.eager { "eager" } else { "lazy" }
            ));
        }
        out
    }
}
