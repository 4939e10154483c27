//! Percentiles of samples, as the bench reports and coordbench print them.

/// The nearest-rank percentile of `sorted` (ascending): the smallest sample
/// that at least fraction `q` of the samples are at or below, so `0.5` of
/// an even count is the lower of the middle two and `1.0` the maximum. The
/// default value (zero) for no samples.
pub fn percentile<T: Copy + Default>(sorted: &[T], q: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
