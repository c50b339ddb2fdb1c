//! The CPU features an executor reports in its hello, so a controller
//! compiles for the CPU the code will run on (as an in-process JIT does for
//! its host) rather than for the triple's baseline.
//!
//! Names are Rust's target-feature names, as `std::is_x86_feature_detected!`
//! and `std::arch::is_aarch64_feature_detected!` spell them (`"avx2"`,
//! `"sse4.1"`, `"lse"`): a vocabulary neither side's code generator owns.
//! Reported: features code generators use (Cranelift maps most of them;
//! `sve` and `bti` are for other compilers and for the controller's
//! information); the controller ignores names it does not know.

/// Features of this CPU, detected now (at run time, not from the build's
/// target features).
pub fn detected() -> Vec<String> {
    detect().into_iter().map(str::to_string).collect()
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Vec<&'static str> {
    let mut found = Vec::new();
    macro_rules! x86 {
        ($($name:tt),* $(,)?) => {
            $(if std::is_x86_feature_detected!($name) {
                found.push($name);
            })*
        };
    }
    x86!(
        "sse3",
        "ssse3",
        "sse4.1",
        "sse4.2",
        "popcnt",
        "avx",
        "avx2",
        "fma",
        "bmi1",
        "bmi2",
        "lzcnt",
        "cmpxchg16b",
        "avx512f",
        "avx512vl",
        "avx512dq",
        "avx512bitalg",
        "avx512vbmi",
        "avx512vnni",
        "avxvnni",
    );
    found
}

#[cfg(target_arch = "aarch64")]
fn detect() -> Vec<&'static str> {
    let mut found = Vec::new();
    macro_rules! aarch64 {
        ($($name:tt),* $(,)?) => {
            $(if std::arch::is_aarch64_feature_detected!($name) {
                found.push($name);
            })*
        };
    }
    aarch64!("lse", "paca", "fp16", "dotprod", "i8mm", "sve", "bti");
    found
}

/// Other architectures: none known (the triple's baseline).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn detect() -> Vec<&'static str> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    #[test]
    fn what_this_cpu_has_is_reported_once_each() {
        let features = super::detected();
        let mut unique = features.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), features.len(), "{features:?}");
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            features.iter().any(|f| f == "avx2"),
            std::is_x86_feature_detected!("avx2"),
            "{features:?}"
        );
    }
}
