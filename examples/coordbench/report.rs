//! Turning a run's outcome and counters into the numbers coordbench prints.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::percentile::percentile;
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

/// The round whose requests/s is the median of `rounds` (the lower middle
/// one for an even count); `None` for no rounds.
pub fn median_round(mut rounds: Vec<Figures>) -> Option<Figures> {
    rounds.sort_by(|a, b| a.requests_per_sec.total_cmp(&b.requests_per_sec));
    let middle = rounds.len().checked_sub(1)? / 2;
    Some(rounds.swap_remove(middle))
}

/// The median of the rounds' cached/uncached requests/s ratios (rounds
/// paired in the order they ran); `None` unless both configurations ran.
pub fn median_ratio(cached: &[Figures], uncached: &[Figures]) -> Option<f64> {
    let mut ratios: Vec<f64> = cached
        .iter()
        .zip(uncached)
        .filter(|(_, u)| u.requests_per_sec > 0.0)
        .map(|(c, u)| c.requests_per_sec / u.requests_per_sec)
        .collect();
    ratios.sort_by(f64::total_cmp);
    let n = ratios.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(ratios[n / 2]),
        _ => Some((ratios[n / 2 - 1] + ratios[n / 2]) / 2.0),
    }
}

/// The side-by-side table of the median rounds (`-` for a configuration
/// not run); the requests/s ratio is `ratio`, the median over the rounds.
pub fn table(cached: Option<&Figures>, uncached: Option<&Figures>, ratio: Option<f64>) -> String {
    let cell = |f: Option<&Figures>, show: &dyn Fn(&Figures) -> String| {
        f.map_or_else(|| "-".to_string(), show)
    };
    let quotient = |value: &dyn Fn(&Figures) -> f64| match (cached, uncached) {
        (Some(c), Some(u)) if value(u) != 0.0 => format!("{:.2}x", value(c) / value(u)),
        _ => "-".to_string(),
    };
    let rows = [
        (
            "requests/s",
            cell(cached, &|f| format!("{:.0}", f.requests_per_sec)),
            cell(uncached, &|f| format!("{:.0}", f.requests_per_sec)),
            ratio.map_or_else(|| "-".to_string(), |r| format!("{r:.2}x")),
        ),
        (
            "p50 latency (µs)",
            cell(cached, &|f| f.p50_us.to_string()),
            cell(uncached, &|f| f.p50_us.to_string()),
            quotient(&|f| f64::from(f.p50_us)),
        ),
        (
            "p99 latency (µs)",
            cell(cached, &|f| f.p99_us.to_string()),
            cell(uncached, &|f| f.p99_us.to_string()),
            quotient(&|f| f64::from(f.p99_us)),
        ),
        (
            "backend calls/request",
            cell(cached, &|f| format!("{:.3}", f.backend_calls_per_request)),
            cell(uncached, &|f| format!("{:.3}", f.backend_calls_per_request)),
            quotient(&|f| f.backend_calls_per_request),
        ),
        (
            "lookup calls/request",
            cell(cached, &|f| format!("{:.3}", f.lookup_calls_per_request)),
            cell(uncached, &|f| format!("{:.3}", f.lookup_calls_per_request)),
            quotient(&|f| f.lookup_calls_per_request),
        ),
        (
            "cache hit ratio",
            cell(cached, &|f| format!("{:.4}", f.hit_ratio)),
            "-".to_string(),
            String::new(),
        ),
        (
            "Gone recoveries",
            cell(cached, &|f| f.gone_recoveries.to_string()),
            "-".to_string(),
            String::new(),
        ),
        (
            "requests (errors)",
            cell(cached, &|f| {
                format!("{} ({})", f.requests, f.expected_errors)
            }),
            cell(uncached, &|f| {
                format!("{} ({})", f.requests, f.expected_errors)
            }),
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

/// Median and p99 latency per kind of request, side by side (`-` for a
/// configuration not run, or a kind of request it did not make); the share
/// is of the uncached run's requests, or of the cached run's without one.
pub fn breakdown<'a>(cached: Option<&'a Figures>, uncached: Option<&'a Figures>) -> String {
    let mut out = format!(
        "{:<18}{:>10}{:>12}{:>12}{:>12}{:>12}\n",
        "request", "share", "cached p50", "uncached", "cached p99", "uncached"
    );
    let kinds: BTreeSet<&str> = [cached, uncached]
        .into_iter()
        .flatten()
        .flat_map(|f| f.by_request.keys().copied())
        .collect();
    let shared = uncached.or(cached);
    let total = shared.map_or(1, |f| f.requests.max(1)) as f64;
    for kind in kinds {
        let of = |f: Option<&'a Figures>| f.and_then(|f| f.by_request.get(kind));
        let (c, u) = (of(cached), of(uncached));
        let cell = |k: Option<&KindFigures>, value: fn(&KindFigures) -> u32| {
            k.map_or("-".to_string(), |k| value(k).to_string())
        };
        let share = of(shared).map_or("-".to_string(), |k| {
            format!("{:.0}%", 100.0 * k.requests as f64 / total)
        });
        out.push_str(&format!(
            "{kind:<18}{share:>10}{:>12}{:>12}{:>12}{:>12}\n",
            cell(c, |k| k.p50_us),
            cell(u, |k| k.p50_us),
            cell(c, |k| k.p99_us),
            cell(u, |k| k.p99_us),
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
        assert_eq!(percentile::<u32>(&[], 0.5), 0);
        assert_eq!(percentile(&[7], 0.99), 7);
    }

    fn at(requests_per_sec: f64) -> Figures {
        let outcome = Outcome {
            elapsed: std::time::Duration::from_secs(1),
            ..Outcome::default()
        };
        Figures {
            requests_per_sec,
            ..Figures::new(outcome, Counts::default())
        }
    }

    #[test]
    fn median_round_is_the_middle_by_requests_per_sec() {
        let rounds = vec![at(5.0), at(1.0), at(3.0)];
        assert_eq!(median_round(rounds).map(|f| f.requests_per_sec), Some(3.0));
        assert_eq!(
            median_round(vec![at(2.0), at(1.0)]).map(|f| f.requests_per_sec),
            Some(1.0)
        );
        assert!(median_round(Vec::new()).is_none());
    }

    #[test]
    fn median_ratio_pairs_rounds_in_order() {
        let cached = [at(30.0), at(10.0), at(40.0)];
        let uncached = [at(10.0), at(10.0), at(10.0)];
        assert_eq!(median_ratio(&cached, &uncached), Some(3.0));
        assert_eq!(median_ratio(&cached[..2], &uncached[..2]), Some(2.0));
        assert_eq!(median_ratio(&cached, &[]), None);
    }

    #[test]
    fn breakdown_shows_a_configuration_run_alone() {
        let outcome = Outcome {
            latencies_us: vec![10, 30],
            by_kind: BTreeMap::from([("finish", vec![10]), ("status", vec![30])]),
            elapsed: std::time::Duration::from_secs(1),
            ..Outcome::default()
        };
        let figures = Figures::new(outcome, Counts::default());
        let rows = |text: String| -> Vec<Vec<String>> {
            let rows = text.lines().skip(1);
            rows.map(|row| row.split_whitespace().map(String::from).collect())
                .collect()
        };
        assert_eq!(
            rows(breakdown(None, Some(&figures))),
            [
                ["finish", "50%", "-", "10", "-", "10"],
                ["status", "50%", "-", "30", "-", "30"]
            ]
        );
        assert_eq!(
            rows(breakdown(Some(&figures), None)),
            [
                ["finish", "50%", "10", "-", "10", "-"],
                ["status", "50%", "30", "-", "30", "-"]
            ]
        );
    }
}
