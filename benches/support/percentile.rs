//! Percentiles of timed samples, as the bench reports print them.

use std::time::Duration as StdDuration;

/// The sample at fraction `p` of the way through `samples`, once sorted
/// (the nearest rank, so `0.5` is the median and `1.0` the maximum).
pub fn percentile(samples: &mut [StdDuration], p: f64) -> StdDuration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i.min(samples.len() - 1)]
}
