//! `lazyrt demo --speculate N`: the lazy run with speculation (one
//! dispatcher thread compiles the callees of what was compiled, to depth N)
//! against the same run without it.
//!
//! Which functions a run calls does not depend on speculation (the program
//! and its inputs are the same), so the run without speculation says which
//! functions are called: those it compiled.

use std::time::Duration;

use crate::Run;

/// What speculation bought, from two lazy runs that differ only in it.
#[derive(Debug, Clone)]
pub struct SpeculationFigures {
    /// Callees to this depth.
    pub depth: u32,
    /// Functions compiled by speculation.
    pub speculative: usize,
    /// Of those, functions the program calls.
    pub speculative_called: usize,
    /// Functions the program calls.
    pub called: usize,
    /// First `main()` wall time with speculation.
    pub first_main: Duration,
    /// First `main()` wall time without.
    pub first_main_without: Duration,
    /// Time to first result with speculation.
    pub first_result: Duration,
    /// Time to first result without.
    pub first_result_without: Duration,
    /// The session's speculation counters.
    pub stats: lazyrt::SpeculationStats,
}

impl SpeculationFigures {
    /// Compares `with` (speculating to `depth`) and `without`.
    pub fn compare(depth: u32, with: &Run, without: &Run) -> Self {
        let called = without.compiled_set.iter().filter(|c| **c).count();
        let speculative = with.speculative_set.iter().filter(|c| **c).count();
        let speculative_called = with
            .speculative_set
            .iter()
            .zip(&without.compiled_set)
            .filter(|(s, c)| **s && **c)
            .count();
        Self {
            depth,
            speculative,
            speculative_called,
            called,
            first_main: with.first_main,
            first_main_without: without.first_main,
            first_result: with.first_result,
            first_result_without: without.first_result,
            stats: with.speculation,
        }
    }

    /// Speculatively compiled and later called / speculatively compiled
    /// (1 when nothing was speculated: nothing was wasted).
    pub fn hit_rate(&self) -> f64 {
        if self.speculative == 0 {
            return 1.0;
        }
        self.speculative_called as f64 / self.speculative as f64
    }

    /// Called functions that speculation compiled: their first call found
    /// them compiled, or waited only for the rest of that compile.
    pub fn precompiled_fraction(&self) -> f64 {
        self.speculative_called as f64 / self.called.max(1) as f64
    }

    /// First `main()` wall time with speculation / without.
    pub fn first_main_ratio(&self) -> f64 {
        self.first_main.as_secs_f64() / self.first_main_without.as_secs_f64().max(1e-9)
    }

    /// The report's lines.
    pub fn render(&self) -> String {
        format!(
            "  speculation   depth {} on 1 dispatcher thread: {} compiled ahead, {} of them called (hit rate {:.0}%) · {} of {} called functions precompiled ({:.0}%) · {} guesses queued, {} skipped (already started)\n\
             \x20               first main() {} vs {} without ({:.2}x) · first result {} vs {} without\n",
            self.depth,
            self.speculative,
            self.speculative_called,
            100.0 * self.hit_rate(),
            self.speculative_called,
            self.called,
            100.0 * self.precompiled_fraction(),
            self.stats.queued,
            self.stats.skipped,
            crate::report::ms(self.first_main),
            crate::report::ms(self.first_main_without),
            self.first_main_ratio(),
            crate::report::ms(self.first_result),
            crate::report::ms(self.first_result_without),
        )
    }
}
