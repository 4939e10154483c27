//! Repeated calls of one operation: warm-up, then timed samples, within a
//! time budget, summarised by their median.

use std::time::{Duration, Instant};

/// How many calls an operation gets.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Untimed calls before the samples.
    pub warmup: usize,
    /// Timed calls.
    pub samples: usize,
    /// Wall time an operation may take, untimed work between calls
    /// included: warm-up ends after half of it, sampling after all of it
    /// (with at least [`MIN_SAMPLES`] samples), so one slow operation
    /// cannot hold up a whole run.
    pub budget: Duration,
}

/// Samples taken even when the budget is spent.
pub const MIN_SAMPLES: usize = 3;

/// Counts the calls of one operation and keeps the timed ones.
#[derive(Debug)]
pub struct Sampler {
    name: &'static str,
    plan: Plan,
    started: Instant,
    /// Warm-up calls made (fewer than planned if the budget cut them).
    warmed: usize,
    measuring: bool,
    times: Vec<Duration>,
}

impl Sampler {
    /// A sampler for `name` with this plan; its budget starts now.
    pub fn new(name: &'static str, plan: Plan) -> Self {
        Sampler {
            name,
            plan,
            started: Instant::now(),
            warmed: 0,
            measuring: plan.warmup == 0,
            times: Vec::with_capacity(plan.samples),
        }
    }

    /// Whether to make another call (and, past warm-up, time it).
    pub fn more(&mut self) -> bool {
        let spent = self.started.elapsed();
        if !self.measuring {
            if self.warmed < self.plan.warmup && spent < self.plan.budget / 2 {
                return true;
            }
            self.measuring = true;
        }
        self.times.len() < self.plan.samples
            && (spent < self.plan.budget || self.times.len() < MIN_SAMPLES)
    }

    /// Whether the call about to be made is timed.
    pub fn measuring(&self) -> bool {
        self.measuring
    }

    /// Records the duration of the call [`more`](Self::more) allowed.
    pub fn record(&mut self, took: Duration) {
        if self.measuring {
            self.times.push(took);
        } else {
            self.warmed += 1;
        }
    }

    /// The median in microseconds; says on stderr when the budget cut the
    /// warm-up or the samples short.
    pub fn finish(self) -> f64 {
        if self.warmed < self.plan.warmup || self.times.len() < self.plan.samples {
            eprintln!(
                "coordscale:   {}: budget of {:?} spent after {} warm-up and {} timed calls",
                self.name,
                self.plan.budget,
                self.warmed,
                self.times.len()
            );
        }
        median_us(self.times)
    }
}

/// The median of these durations in microseconds, to the nanosecond (the
/// mean of the middle two for an even count; 0 for none).
pub fn median_us(mut times: Vec<Duration>) -> f64 {
    if times.is_empty() {
        return 0.0;
    }
    times.sort_unstable();
    let mid = times.len() / 2;
    let median = if times.len() % 2 == 0 {
        (times[mid - 1] + times[mid]) / 2
    } else {
        times[mid]
    };
    median.as_nanos() as f64 / 1_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(warmup: usize, samples: usize, budget: Duration) -> Plan {
        Plan {
            warmup,
            samples,
            budget,
        }
    }

    #[test]
    fn warm_up_calls_are_not_timed() {
        let mut sampler = Sampler::new("op", plan(2, 3, Duration::from_secs(60)));
        let mut calls = 0;
        while sampler.more() {
            calls += 1;
            sampler.record(Duration::from_micros(calls * 10));
        }
        assert_eq!(calls, 5);
        // The warm-up's 10 and 20 µs are dropped: median of 30, 40, 50.
        assert_eq!(sampler.finish(), 40.0);
    }

    #[test]
    fn a_spent_budget_skips_warm_up_and_keeps_the_minimum_samples() {
        let mut sampler = Sampler::new("op", plan(100, 200, Duration::ZERO));
        let mut calls = 0;
        while sampler.more() {
            assert!(sampler.measuring());
            calls += 1;
            sampler.record(Duration::from_micros(1));
        }
        assert_eq!(calls, MIN_SAMPLES);
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        let us = |v: &[u64]| v.iter().map(|&n| Duration::from_micros(n)).collect();
        assert_eq!(median_us(us(&[5, 1, 3])), 3.0);
        assert_eq!(median_us(us(&[4, 1, 2, 3])), 2.5);
        assert_eq!(median_us(Vec::new()), 0.0);
        assert_eq!(median_us(vec![Duration::from_nanos(1_500)]), 1.5);
    }
}
