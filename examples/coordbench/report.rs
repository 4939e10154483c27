//! Turning a run's outcome and counters into the numbers coordbench prints.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::workload::Outcome;

/// The figures of one run (cached or uncached), as printed and as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    /// Requests answered per second of wall time.
    pub requests_per_sec: f64,
    /// Median request latency, microseconds.
    pub p50_us: u32,
    /// 99th-percentile request latency, microseconds.
    pub p99_us: u32,
    /// Calls that reached the backend, per request.
    pub backend_calls_per_request: f64,
    /// Calls that reached the backend only to resolve a name, per request.
    pub lookup_calls_per_request: f64,
    /// Cache hits / (hits + misses) over every handle kind; 0 uncached.
    pub hit_ratio: f64,
    /// Handles the cache re-resolved after `Gone`; 0 uncached.
    pub gone_recoveries: u64,
    /// Requests made.
    pub requests: u64,
    /// Requests answered with an error expected under concurrency.
    pub expected_errors: u64,
    /// Latency by kind of request.
    pub by_request: BTreeMap<&'static str, KindFigures>,
}

/// Latency of one kind of request.
#[derive(Debug, Clone, Serialize)]
pub struct KindFigures {
    /// Requests of this kind.
    pub requests: u64,
    /// Median latency, microseconds.
    pub p50_us: u32,
    /// 99th-percentile latency, microseconds.
    pub p99_us: u32,
}

/// Backend-side counts over one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub backend_calls: u64,
    pub lookup_calls: u64,
    pub hits: u64,
    pub misses: u64,
    pub gone_recoveries: u64,
}

impl Figures {
    pub fn new(mut outcome: Outcome, counts: Counts) -> Self {
        outcome.latencies_us.sort_unstable();
        let requests = outcome.latencies_us.len() as u64;
        let by_request = outcome
            .by_kind
            .into_iter()
            .map(|(kind, mut latencies)| {
                latencies.sort_unstable();
                let figures = KindFigures {
                    requests: latencies.len() as u64,
                    p50_us: percentile(&latencies, 0.50),
                    p99_us: percentile(&latencies, 0.99),
                };
                (kind, figures)
            })
            .collect();
        let per_request = |n: u64| n as f64 / requests.max(1) as f64;
        let lookups = counts.hits + counts.misses;
        Figures {
            requests_per_sec: requests as f64 / outcome.elapsed.as_secs_f64().max(1e-9),
            p50_us: percentile(&outcome.latencies_us, 0.50),
            p99_us: percentile(&outcome.latencies_us, 0.99),
            backend_calls_per_request: per_request(counts.backend_calls),
            lookup_calls_per_request: per_request(counts.lookup_calls),
            hit_ratio: if lookups == 0 {
                0.0
            } else {
                counts.hits as f64 / lookups as f64
            },
            gone_recoveries: counts.gone_recoveries,
            requests,
            expected_errors: outcome.expected_errors,
            by_request,
        }
    }
}

/// The value below which `q` of the sorted samples fall.
fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The side-by-side table.
pub fn table(cached: &Figures, uncached: &Figures) -> String {
    let ratio = |c: f64, u: f64| {
        if u == 0.0 {
            "-".to_string()
        } else {
            format!("{:.2}x", c / u)
        }
    };
    let rows = [
        (
            "requests/s",
            format!("{:.0}", cached.requests_per_sec),
            format!("{:.0}", uncached.requests_per_sec),
            ratio(cached.requests_per_sec, uncached.requests_per_sec),
        ),
        (
            "p50 latency (µs)",
            cached.p50_us.to_string(),
            uncached.p50_us.to_string(),
            ratio(f64::from(cached.p50_us), f64::from(uncached.p50_us)),
        ),
        (
            "p99 latency (µs)",
            cached.p99_us.to_string(),
            uncached.p99_us.to_string(),
            ratio(f64::from(cached.p99_us), f64::from(uncached.p99_us)),
        ),
        (
            "backend calls/request",
            format!("{:.3}", cached.backend_calls_per_request),
            format!("{:.3}", uncached.backend_calls_per_request),
            ratio(
                cached.backend_calls_per_request,
                uncached.backend_calls_per_request,
            ),
        ),
        (
            "lookup calls/request",
            format!("{:.3}", cached.lookup_calls_per_request),
            format!("{:.3}", uncached.lookup_calls_per_request),
            ratio(
                cached.lookup_calls_per_request,
                uncached.lookup_calls_per_request,
            ),
        ),
        (
            "cache hit ratio",
            format!("{:.4}", cached.hit_ratio),
            "-".to_string(),
            String::new(),
        ),
        (
            "Gone recoveries",
            cached.gone_recoveries.to_string(),
            "-".to_string(),
            String::new(),
        ),
        (
            "requests (errors)",
            format!("{} ({})", cached.requests, cached.expected_errors),
            format!("{} ({})", uncached.requests, uncached.expected_errors),
            String::new(),
        ),
    ];
    let mut out = format!(
        "{:<24}{:>16}{:>16}{:>10}\n",
        "", "cached", "uncached", "ratio"
    );
    for (label, c, u, r) in rows {
        out.push_str(&format!("{label:<24}{c:>16}{u:>16}{r:>10}\n"));
    }
    out
}

/// Median and p99 latency per kind of request, side by side.
pub fn breakdown(cached: &Figures, uncached: &Figures) -> String {
    let mut out = format!(
        "{:<18}{:>10}{:>12}{:>12}{:>12}{:>12}\n",
        "request", "share", "cached p50", "uncached", "cached p99", "uncached"
    );
    let total = uncached.requests.max(1) as f64;
    for (kind, u) in &uncached.by_request {
        let c = cached.by_request.get(kind);
        let share = format!("{:.0}%", 100.0 * u.requests as f64 / total);
        let cell = |v: Option<u32>| v.map_or("-".to_string(), |v| v.to_string());
        out.push_str(&format!(
            "{kind:<18}{share:>10}{:>12}{:>12}{:>12}{:>12}\n",
            cell(c.map(|c| c.p50_us)),
            u.p50_us,
            cell(c.map(|c| c.p99_us)),
            u.p99_us,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_sorted_samples() {
        let samples: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&samples, 0.5), 50);
        assert_eq!(percentile(&samples, 0.99), 99);
        assert_eq!(percentile(&[], 0.5), 0);
        assert_eq!(percentile(&[7], 0.99), 7);
    }
}
