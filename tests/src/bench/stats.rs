//! Summaries of samples: percentiles, mean, medians.

/// The `p`-th percentile (0..=100, nearest rank) of ascending `sorted`;
/// NaN if empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Sorts `values` ascending (NaN last).
pub fn sort(values: &mut [f64]) {
    values.sort_unstable_by(f64::total_cmp);
}

/// Arithmetic mean; NaN if empty.
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// The median (the lower middle for even counts); sorts `values`.
pub fn median(values: &mut [f64]) -> f64 {
    sort(values);
    percentile(values, 50.0)
}

/// Runs `run` `n` times and returns the median of its results.
pub fn median_of_runs(n: usize, mut run: impl FnMut() -> f64) -> f64 {
    let mut results: Vec<f64> = (0..n).map(|_| run()).collect();
    median(&mut results)
}
