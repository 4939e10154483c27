//! Choosing a work spec for a worker and the small per-request rules
//! around it: how many units one request may take, a unit's status from
//! its active attempt and not-before time, continuous unit names.

use std::collections::{BTreeMap, BTreeSet};

use super::limits;
use crate::data;
use crate::model::{
    AttemptRequest, AttemptStatus, DataMap, Duration, Time, WorkSpecMeta, WorkUnitStatus,
    DEFAULT_LIFETIME,
};

/// The specs an [`AttemptRequest`] admits by name and runtime, its lists
/// made sets once: testing every spec of a namespace then costs the same
/// however long, or repetitive, a caller made those lists.
///
/// ```
/// use coordinate::{rules::SpecChoice, AttemptRequest};
/// let request = AttemptRequest {
///     work_specs: vec!["a".into(), "b".into(), "a".into()],
///     ..AttemptRequest::default()
/// };
/// let choice = SpecChoice::of(&request);
/// assert!(choice.admits("b", "python"));
/// assert!(!choice.admits("c", "python"));
/// assert!(SpecChoice::of(&AttemptRequest::default()).admits("c", ""));
/// ```
#[derive(Debug, Clone)]
pub struct SpecChoice<'a> {
    names: BTreeSet<&'a str>,
    runtimes: BTreeSet<&'a str>,
}

impl<'a> SpecChoice<'a> {
    /// The choice `request` makes: empty lists admit every spec.
    pub fn of(request: &'a AttemptRequest) -> Self {
        SpecChoice {
            names: request.work_specs.iter().map(String::as_str).collect(),
            runtimes: request.runtimes.iter().map(String::as_str).collect(),
        }
    }

    /// True if a spec called `name` with this `runtime` may be chosen.
    pub fn admits(&self, name: &str, runtime: &str) -> bool {
        (self.names.is_empty() || self.names.contains(name))
            && (self.runtimes.is_empty() || self.runtimes.contains(runtime))
    }
}

/// A spec can generate a continuous unit now: it is continuous, has no
/// available and no pending units, and its next continuous time has come.
pub fn can_start_continuous(meta: &WorkSpecMeta, now: Time) -> bool {
    meta.continuous
        && meta.available_count == 0
        && meta.pending_count == 0
        && meta.next_continuous.map_or(true, |next| now >= next)
}

/// A spec can do work now: not paused, positive weight, below its
/// `max_running`, and with an available unit or a continuous one to start.
pub fn can_do_work(meta: &WorkSpecMeta, now: Time) -> bool {
    !meta.paused
        && meta.weight > 0
        && !(meta.max_running > 0 && meta.pending_count >= meta.max_running)
        && (meta.available_count > 0 || can_start_continuous(meta, now))
}

/// A spec fits a worker with `available_gb` of memory: its `min_memory_gb`
/// is at most that. An `available_gb` of zero, below zero or NaN means the
/// worker did not say, and every spec fits.
///
/// ```
/// use coordinate::{rules::fits_memory, WorkSpecMeta};
/// let meta = WorkSpecMeta { min_memory_gb: 4.0, ..WorkSpecMeta::default() };
/// assert!(fits_memory(&meta, 4.0));
/// assert!(!fits_memory(&meta, 3.5));
/// assert!(fits_memory(&meta, 0.0));
/// ```
pub fn fits_memory(meta: &WorkSpecMeta, available_gb: f64) -> bool {
    if available_gb > 0.0 {
        meta.min_memory_gb <= available_gb
    } else {
        true
    }
}

/// Picks the work spec a worker should get work from, or `None` if no
/// spec has work to give.
///
/// `metas` are counted metas by spec name; only specs that
/// [fit](fits_memory) `available_gb` are considered. Uses a thread-local
/// random source; see [`schedule_with`] for a seeded one.
///
/// ```
/// use std::collections::BTreeMap;
/// use coordinate::{rules::schedule, Time, WorkSpecMeta};
/// let mut metas = BTreeMap::new();
/// assert_eq!(schedule(&metas, Time::UNIX_EPOCH, 0.0), None);
/// metas.insert("s".to_string(), WorkSpecMeta { available_count: 1, ..WorkSpecMeta::default() });
/// assert_eq!(schedule(&metas, Time::UNIX_EPOCH, 0.0).as_deref(), Some("s"));
/// ```
pub fn schedule(
    metas: &BTreeMap<String, WorkSpecMeta>,
    now: Time,
    available_gb: f64,
) -> Option<String> {
    schedule_with(metas, now, available_gb, &mut fastrand::Rng::new())
}

/// [`schedule`] with a caller-supplied random source.
pub fn schedule_with(
    metas: &BTreeMap<String, WorkSpecMeta>,
    now: Time,
    available_gb: f64,
    rng: &mut fastrand::Rng,
) -> Option<String> {
    let candidates: Vec<(&String, &WorkSpecMeta)> = metas
        .iter()
        .filter(|(_, m)| fits_memory(m, available_gb) && can_do_work(m, now))
        .collect();
    let top = candidates.iter().map(|(_, m)| m.priority).max()?;
    let best: Vec<(&String, &WorkSpecMeta)> = candidates
        .into_iter()
        .filter(|(_, m)| m.priority == top)
        .collect();
    let scored = (0..i64::BITS)
        .step_by(8)
        .find_map(|shift| scores(&best, shift))?;
    let total: i128 = scored.iter().map(|(_, s)| s).sum();
    let (first, _) = scored.first()?;
    // Scores fit u128 and their sum is positive; pick uniformly in [0, total).
    let mut pick = i128::try_from(rng.u128(0..total.unsigned_abs())).unwrap_or(0);
    for (name, score) in &scored {
        if pick < *score {
            return Some((*name).clone());
        }
        pick -= score;
    }
    Some((*first).clone())
}

/// The scores `weight × (total pending + 1) − total weight × pending` of
/// `best` that are positive, with weights and pending counts divided by
/// 2^`shift`; `None` if a score or their sum overflows. i128 holds the
/// product of two i64s, but not the sums of several: only absurd weights
/// and counts need a shift, which keeps their proportions. Which scores
/// are positive is decided on the exact figures, so a shift never drops a
/// spec (its score is then at least 1) nor keeps one it should not.
fn scores<'a>(best: &[(&'a String, &WorkSpecMeta)], shift: u32) -> Option<Vec<(&'a String, i128)>> {
    let weight = |m: &WorkSpecMeta| i128::from(m.weight >> shift);
    let pending = |m: &WorkSpecMeta| i128::from(m.pending_count >> shift);
    let total_weight = best
        .iter()
        .try_fold(0i128, |sum, (_, m)| sum.checked_add(weight(m)))?;
    let total_pending = best
        .iter()
        .try_fold(0i128, |sum, (_, m)| sum.checked_add(pending(m)))?;
    // Unshifted, a score is exact; shifted, the exact figures decide.
    let exact_totals = (shift > 0).then(|| {
        best.iter().fold((0i128, 0i128), |(w, p), (_, m)| {
            (
                w.saturating_add(i128::from(m.weight)),
                p.saturating_add(i128::from(m.pending_count)),
            )
        })
    });
    let positive = |m: &WorkSpecMeta, score: i128| match exact_totals {
        None => score > 0,
        Some((all_weight, all_pending)) => {
            Product::of(i128::from(m.weight), all_pending.saturating_add(1))
                > Product::of(all_weight, i128::from(m.pending_count))
        }
    };
    let mut scored = Vec::with_capacity(best.len());
    let mut total = 0i128;
    for (name, m) in best {
        let score = weight(m)
            .checked_mul(total_pending.checked_add(1)?)?
            .checked_sub(total_weight.checked_mul(pending(m))?)?;
        if positive(m, score) {
            let score = score.max(1);
            total = total.checked_add(score)?;
            scored.push((*name, score));
        }
    }
    Some(scored)
}

/// The exact product of two i128s, ordered as the numbers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Product {
    negative: bool,
    /// The magnitude's high and low 128 bits.
    magnitude: (u128, u128),
}

impl Product {
    fn of(a: i128, b: i128) -> Self {
        let (a_abs, b_abs) = (a.unsigned_abs(), b.unsigned_abs());
        let low = |x: u128| x & u128::from(u64::MAX);
        let (a1, a0, b1, b0) = (a_abs >> 64, low(a_abs), b_abs >> 64, low(b_abs));
        // Four partial products of 64-bit halves, each below 2^128.
        let (cross, cross_carry) = (a1 * b0).overflowing_add(a0 * b1);
        let (low_half, low_carry) = (a0 * b0).overflowing_add(cross << 64);
        let high_half =
            a1 * b1 + (cross >> 64) + (u128::from(cross_carry) << 64) + u128::from(low_carry);
        let magnitude = (high_half, low_half);
        Product {
            negative: (a < 0) != (b < 0) && magnitude != (0, 0),
            magnitude,
        }
    }
}

impl PartialOrd for Product {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Product {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self.negative, other.negative) {
            (false, false) => self.magnitude.cmp(&other.magnitude),
            (true, true) => other.magnitude.cmp(&self.magnitude),
            (false, true) => std::cmp::Ordering::Greater,
            (true, false) => std::cmp::Ordering::Less,
        }
    }
}

/// How many attempts a request for `requested` units may get from a spec
/// with counted meta `meta` (see [`limits::requested_attempts`]); may be
/// zero or negative when the spec is at its `max_running`.
pub fn attempt_count(requested: i64, meta: &WorkSpecMeta) -> i64 {
    let mut count = limits::requested_attempts(requested);
    if meta.max_attempts_returned > 0 {
        count = count.min(meta.max_attempts_returned);
    }
    if meta.max_running > 0 {
        count = count.min(meta.max_running.saturating_sub(meta.pending_count));
    }
    count
}

/// The status of a unit from its active attempt's status and its not-before
/// time.
pub fn unit_status(
    active: Option<AttemptStatus>,
    not_before: Option<Time>,
    now: Time,
) -> WorkUnitStatus {
    match active {
        Some(AttemptStatus::Pending) => WorkUnitStatus::Pending,
        Some(AttemptStatus::Finished) => WorkUnitStatus::Finished,
        Some(AttemptStatus::Failed) => WorkUnitStatus::Failed,
        _ if not_before.is_some_and(|nb| now < nb) => WorkUnitStatus::Delayed,
        _ => WorkUnitStatus::Available,
    }
}

/// The name of a generated continuous unit: whole Unix seconds, a dot, and
/// three digits of milliseconds. The seconds are rounded down, so before
/// the epoch the milliseconds still count forward from them: half a second
/// before the epoch is `-1.500`.
///
/// ```
/// use coordinate::{rules::continuous_unit_name, Duration, Time};
/// let t = Time::UNIX_EPOCH + Duration::seconds(1_400_000_000) + Duration::milliseconds(5);
/// assert_eq!(continuous_unit_name(t), "1400000000.005");
/// let before = Time::UNIX_EPOCH - Duration::milliseconds(500);
/// assert_eq!(continuous_unit_name(before), "-1.500");
/// ```
pub fn continuous_unit_name(now: Time) -> String {
    let millis = now.timestamp_millis();
    format!("{}.{:03}", millis.div_euclid(1000), millis.rem_euclid(1000))
}

/// The lease `make_attempt` gives: a zero lifetime means the default
/// (negative lifetimes are used as given).
pub fn make_attempt_lifetime(lifetime: Duration) -> Duration {
    if lifetime.is_zero() {
        DEFAULT_LIFETIME
    } else {
        lifetime
    }
}

/// The data of an attempt failed for exceeding `max_retries`.
pub fn too_many_retries_data() -> DataMap {
    data!({"traceback": "too many retries"})
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn spec(weight: i64, available: i64, pending: i64) -> WorkSpecMeta {
        WorkSpecMeta {
            weight,
            available_count: available,
            pending_count: pending,
            ..WorkSpecMeta::default()
        }
    }

    fn metas(specs: &[(&str, WorkSpecMeta)]) -> BTreeMap<String, WorkSpecMeta> {
        specs
            .iter()
            .map(|(n, m)| (n.to_string(), m.clone()))
            .collect()
    }

    fn t() -> Time {
        Time::UNIX_EPOCH + Duration::seconds(100)
    }

    /// How often each spec is picked in `runs` seeded draws.
    fn shares(metas: &BTreeMap<String, WorkSpecMeta>, runs: usize) -> BTreeMap<String, usize> {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut counts = BTreeMap::new();
        for _ in 0..runs {
            let name = schedule_with(metas, t(), 0.0, &mut rng).unwrap();
            *counts.entry(name).or_insert(0) += 1;
        }
        counts
    }

    /// Asserts that of 10,000 seeded draws between specs "a" and "b", "a"
    /// gets `expected` within three points.
    #[track_caller]
    fn assert_split(a: WorkSpecMeta, b: WorkSpecMeta, expected: f64) {
        const RUNS: usize = 10_000;
        let s = shares(&metas(&[("a", a), ("b", b)]), RUNS);
        let got = s["a"] as f64 / RUNS as f64;
        assert!((got - expected).abs() < 0.03, "{s:?}");
    }

    #[test]
    fn empty_input_is_no_work() {
        assert_eq!(schedule(&BTreeMap::new(), t(), 0.0), None);
    }

    #[test]
    fn unrunnable_specs_are_never_chosen() {
        let paused = WorkSpecMeta {
            paused: true,
            ..spec(20, 5, 0)
        };
        let full = WorkSpecMeta {
            max_running: 2,
            ..spec(20, 5, 2)
        };
        let m = metas(&[
            ("zero", spec(0, 5, 0)),
            ("paused", paused),
            ("empty", spec(20, 0, 0)),
            ("full", full),
        ]);
        assert_eq!(schedule(&m, t(), 0.0), None);
        let mut m = m;
        m.insert("ok".into(), spec(1, 1, 0));
        for _ in 0..50 {
            assert_eq!(schedule(&m, t(), 0.0).unwrap(), "ok");
        }
    }

    #[test]
    fn equal_weights_split_evenly() {
        assert_split(spec(20, 5, 0), spec(20, 5, 0), 0.5);
    }

    #[test]
    fn unequal_weights_split_by_score() {
        assert_split(spec(1, 5, 0), spec(3, 5, 0), 0.25);
    }

    #[test]
    fn pending_work_shifts_the_split() {
        // Weights 1 and 3, one pending in the heavy spec: scores 2 and 2.
        assert_split(spec(1, 5, 0), spec(3, 5, 1), 0.5);
    }

    #[test]
    fn spec_far_over_its_share_is_ignored() {
        let m = metas(&[("a", spec(1, 5, 0)), ("b", spec(1, 5, 10))]);
        let s = shares(&m, 1_000);
        assert_eq!(s.get("b"), None);
    }

    #[test]
    fn priority_is_absolute() {
        let high = WorkSpecMeta {
            priority: 1,
            ..spec(1, 1, 0)
        };
        let m = metas(&[("low", spec(1000, 100, 0)), ("high", high)]);
        let s = shares(&m, 1_000);
        assert_eq!(s.get("low"), None);
    }

    #[test]
    fn continuous_spec_competes_only_while_idle() {
        let idle = WorkSpecMeta {
            continuous: true,
            can_be_continuous: true,
            ..spec(20, 0, 0)
        };
        assert!(can_start_continuous(&idle, t()));
        assert!(can_do_work(&idle, t()));
        let busy = WorkSpecMeta {
            pending_count: 1,
            ..idle.clone()
        };
        assert!(!can_start_continuous(&busy, t()));
        assert!(!can_do_work(&busy, t()));
        let waiting = WorkSpecMeta {
            next_continuous: Some(t() + Duration::seconds(1)),
            ..idle.clone()
        };
        assert!(!can_do_work(&waiting, t()));
        let due = WorkSpecMeta {
            next_continuous: Some(t()),
            ..idle
        };
        assert!(can_do_work(&due, t()));
    }

    #[test]
    fn available_memory_filters_only_when_positive() {
        let big = WorkSpecMeta {
            min_memory_gb: 8.0,
            priority: 1,
            ..spec(20, 1, 0)
        };
        let small = WorkSpecMeta {
            min_memory_gb: 2.0,
            ..spec(20, 1, 0)
        };
        let m = metas(&[("big", big), ("small", small)]);
        // The higher-priority spec wins unless it needs more than offered.
        for gb in [0.0, -1.0, f64::NAN, 8.0, 100.0] {
            assert_eq!(schedule(&m, t(), gb).unwrap(), "big", "{gb} GB");
        }
        for gb in [2.0, 7.9] {
            assert_eq!(schedule(&m, t(), gb).unwrap(), "small", "{gb} GB");
        }
        assert_eq!(schedule(&m, t(), 1.0), None);
    }

    #[test]
    fn huge_weights_do_not_overflow() {
        let m = metas(&[
            ("a", spec(i64::MAX, 1, i64::MAX)),
            ("b", spec(i64::MAX, 1, 0)),
        ]);
        assert_eq!(schedule(&m, t(), 0.0).unwrap(), "b");
    }

    #[test]
    fn absurd_weights_and_counts_of_many_specs_still_pick_one() {
        // Sums of three such products overflow i128.
        let m = metas(&[
            ("a", spec(i64::MAX, 1, i64::MAX)),
            ("b", spec(i64::MAX, 1, i64::MAX)),
            ("c", spec(i64::MAX, 1, i64::MAX)),
        ]);
        let mut picked = BTreeSet::new();
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..200 {
            picked.insert(schedule_with(&m, t(), 0.0, &mut rng).unwrap());
        }
        // Equal shares stay equal: each is picked.
        assert_eq!(picked.len(), 3);
        // A spec with no pending work still wins over full ones.
        let m = metas(&[
            ("a", spec(i64::MAX, 1, i64::MAX)),
            ("b", spec(i64::MAX, 1, i64::MAX)),
            ("c", spec(i64::MAX, 1, 0)),
        ]);
        assert_eq!(schedule(&m, t(), 0.0).unwrap(), "c");
    }

    #[test]
    fn a_spec_scored_above_zero_stays_a_candidate_when_scores_are_scaled_down() {
        // Exactly, the three full specs score 0 and only "d" is positive;
        // scaled down, "d"'s weight of 1 would be 0.
        let m = metas(&[
            ("a", spec(i64::MAX, 1, i64::MAX)),
            ("b", spec(i64::MAX, 1, i64::MAX)),
            ("c", spec(i64::MAX, 1, i64::MAX)),
            ("d", spec(1, 1, 0)),
        ]);
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..50 {
            assert_eq!(schedule_with(&m, t(), 0.0, &mut rng).as_deref(), Some("d"));
        }
    }

    #[test]
    fn products_compare_exactly_past_i128() {
        let big = Product::of(i128::MAX, i128::MAX);
        assert!(big > Product::of(i128::MAX, i128::MAX - 1));
        assert!(Product::of(i128::MIN, 1) < Product::of(i128::MIN + 1, 1));
        assert!(Product::of(-1, i128::MAX) < Product::of(0, 5));
        assert_eq!(Product::of(0, -5), Product::of(0, 7));
        assert_eq!(Product::of(3 << 64, 5 << 64).magnitude, (15, 0));
        assert!(Product::of(i128::MIN, i128::MIN) > big);
    }

    #[test]
    fn attempt_count_applies_both_limits() {
        assert_eq!(attempt_count(0, &spec(20, 5, 0)), 1);
        let capped = WorkSpecMeta {
            max_attempts_returned: 3,
            ..spec(20, 5, 0)
        };
        assert_eq!(attempt_count(10, &capped), 3);
        let running = WorkSpecMeta {
            max_running: 4,
            ..spec(20, 5, 3)
        };
        assert_eq!(attempt_count(10, &running), 1);
    }

    #[test]
    fn unit_status_rules() {
        let later = Some(t() + Duration::seconds(1));
        // (active attempt's status, not-before, the unit's status)
        let table = [
            (Some(AttemptStatus::Pending), later, WorkUnitStatus::Pending),
            (
                Some(AttemptStatus::Finished),
                None,
                WorkUnitStatus::Finished,
            ),
            (Some(AttemptStatus::Failed), None, WorkUnitStatus::Failed),
            (Some(AttemptStatus::Expired), later, WorkUnitStatus::Delayed),
            (None, later, WorkUnitStatus::Delayed),
            (None, Some(t()), WorkUnitStatus::Available),
            (None, None, WorkUnitStatus::Available),
        ];
        for (attempt, not_before, expected) in table {
            assert_eq!(
                unit_status(attempt, not_before, t()),
                expected,
                "{attempt:?}, not before {not_before:?}"
            );
        }
    }

    #[test]
    fn continuous_names() {
        assert_eq!(
            continuous_unit_name(Time::UNIX_EPOCH + Duration::seconds(65)),
            "65.000"
        );
        assert_eq!(
            continuous_unit_name(Time::UNIX_EPOCH + Duration::microseconds(1_999_999)),
            "1.999"
        );
    }

    #[test]
    fn make_attempt_lifetime_defaults_only_zero() {
        assert_eq!(make_attempt_lifetime(Duration::zero()), DEFAULT_LIFETIME);
        assert_eq!(
            make_attempt_lifetime(Duration::seconds(-1)),
            Duration::seconds(-1)
        );
    }

    #[test]
    fn spec_choices_read_long_and_repetitive_lists_once() {
        let request = AttemptRequest {
            work_specs: vec!["s".into(); 10_000],
            runtimes: vec!["go".into(), "".into(), "go".into()],
            ..AttemptRequest::default()
        };
        let choice = SpecChoice::of(&request);
        assert!(choice.admits("s", "go") && choice.admits("s", ""));
        assert!(!choice.admits("t", "go") && !choice.admits("s", "python"));
        let any_runtime = AttemptRequest {
            work_specs: vec!["s".into()],
            ..AttemptRequest::default()
        };
        assert!(SpecChoice::of(&any_runtime).admits("s", "anything"));
    }
}
