//! Random operation sequences, with extreme values, run against the
//! reference `MemoryBackend` and another stack side by side.
//!
//! **Law:** from the same start, with clocks moved in step, the two stacks
//! answer every operation alike (same success, same error kind — counting
//! `Gone` and the `NoSuch…` errors a durable backend may report for a
//! deleted object as one kind — same units handed out in the same order)
//! and, after every operation, show the same state: unit statuses, data,
//! metas and attempt histories, attempt states, worker lists, counts and
//! summaries.
//!
//! Only one spec is schedulable (the chaining target is paused), so the
//! scheduler's random choice never makes the two differ. The operations
//! look a unit up by name each time they use it, so stacks whose handles
//! follow the name-identity rule (`Cache`, the REST client) compare too.
//!
//! Besides ordinary values, the operations draw extreme ones at and beyond
//! each of the crate's limits (`coordinate::rules::limits`): names around
//! `MAX_NAME_BYTES`, data around `MAX_DATA_DEPTH` (up to 100,000 levels),
//! intervals around `MAX_INTERVAL`, NaN, infinite and signed-zero
//! priorities, and times and durations at, inside and beyond
//! `MIN_TIME ..= MAX_TIME`, with the clock itself near either end.
//!
//! Each test binary that uses it declares `random_ops` beside it.

use coordinate::memory::MemoryBackend;
use coordinate::rules::limits::{MAX_DATA_DEPTH, MAX_INTERVAL, MAX_NAME_BYTES, MAX_TIME, MIN_TIME};
use coordinate::{
    data, AttemptRef, AttemptRequest, Backend, Clock, DataMap, Duration, MockClock, Time,
    WorkUnitMeta, WorkUnitQuery, WorkUnitStatus,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed};
use serde_json::Value;

use super::random_ops::{self, kind, make_attempt, spec_definition, world, World, ATTEMPTS};
use super::random_ops::{UNITS, WORKERS};

/// One step of a case.
#[derive(Debug, Clone)]
pub enum Op {
    /// An ordinary operation of the shared model.
    Model(random_ops::Op),
    /// Finishes an attempt with output that chains extreme names and delays.
    FinishExtreme { attempt: usize },
    /// Adds a unit with an extreme name, data depth, priority and not-before.
    ExtremeUnit {
        name: usize,
        depth: usize,
        priority: usize,
        time: usize,
    },
    /// Sets a unit's meta, or one or all priorities, to extreme values.
    ExtremeUnitMeta {
        unit: usize,
        priority: usize,
        time: usize,
        how: PriorityWay,
    },
    /// Uses an extreme duration as a lease, extension, delay or lifetime.
    ExtremeDuration {
        attempt: usize,
        worker: usize,
        duration: usize,
        how: DurationWay,
    },
    /// Sets an extreme interval by `set_meta` or by the definition.
    ExtremeInterval {
        interval: usize,
        by_definition: bool,
    },
    /// Sets an extreme `next_continuous`.
    ExtremeNextContinuous { time: usize },
    /// Creates and looks up namespaces, specs and workers with extreme names.
    ExtremeNames { name: usize },
    /// Updates a worker with extreme data and times.
    ExtremeWorkerUpdate {
        worker: usize,
        depth: usize,
        now: usize,
        expiration: usize,
    },
    /// Gives an attempt extreme data.
    ExtremeAttemptData {
        attempt: usize,
        depth: usize,
        finish: bool,
    },
    /// Moves the clock near either end of the time range.
    Jump { to: usize },
    /// Lists, deletes or re-prioritises the units an extreme query selects.
    ExtremeQuery {
        names: usize,
        statuses: usize,
        previous: usize,
        limit: usize,
        how: QueryWay,
    },
}

/// What [`Op::ExtremeQuery`] does with its selection.
#[derive(Debug, Clone, Copy)]
pub enum QueryWay {
    List,
    Delete,
    SetPriority,
    Adjust,
}

/// How [`Op::ExtremeUnitMeta`] sets the priority.
#[derive(Debug, Clone, Copy)]
pub enum PriorityWay {
    Meta,
    One,
    All,
    Adjust,
}

/// Where [`Op::ExtremeDuration`] uses its duration.
#[derive(Debug, Clone, Copy)]
pub enum DurationWay {
    MakeAttempt,
    Renew,
    Retry,
    Request,
}

/// Name lengths around the limit (the fourth straddles it with a two-byte
/// character; the last is far over).
const NAME_LENGTHS: &[usize] = &[
    1,
    MAX_NAME_BYTES - 1,
    MAX_NAME_BYTES,
    MAX_NAME_BYTES + 1,
    0,
    1 << 16,
];

fn extreme_name(i: usize, tag: char) -> String {
    match NAME_LENGTHS[i % NAME_LENGTHS.len()] {
        0 => format!("{}é", tag.to_string().repeat(MAX_NAME_BYTES - 1)),
        len => tag.to_string().repeat(len),
    }
}

/// Data depths around the limit, up to one that would overflow a stack.
const DEPTHS: &[usize] = &[
    1,
    2,
    MAX_DATA_DEPTH - 1,
    MAX_DATA_DEPTH,
    MAX_DATA_DEPTH + 1,
    1_000,
    100_000,
];

/// A map `DEPTHS[i]` levels deep, built without recursion, that also
/// holds numbers at the ends of JSON's integer and float ranges.
fn deep(i: usize) -> DataMap {
    let mut value = Value::from(i);
    for _ in 1..DEPTHS[i % DEPTHS.len()] {
        value = Value::Array(vec![value]);
    }
    let numbers = vec![
        Value::from(u64::MAX),
        Value::from(i64::MIN),
        Value::from((1u64 << 53) + 1),
        Value::from(f64::MAX),
        Value::from(-f64::MAX),
        Value::from(f64::MIN_POSITIVE),
        Value::from(5e-324),
        Value::from(0.1),
        Value::from(1e21),
        Value::from(-0.0),
        Value::from(1.0),
    ];
    let mut map = DataMap::new();
    map.insert("deep".into(), value);
    map.insert("numbers".into(), Value::Array(numbers));
    map
}

const PRIORITIES: &[f64] = &[
    f64::NAN,
    -f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -0.0,
    0.0,
    f64::MAX,
    -f64::MAX,
    f64::MIN_POSITIVE,
    1.5,
];

fn priority_at(i: usize) -> f64 {
    PRIORITIES[i % PRIORITIES.len()]
}

/// Instants at, inside and beyond the time range, and finer than a microsecond.
fn time_at(i: usize, now: Time) -> Time {
    let micro = Duration::microseconds(1);
    [
        MIN_TIME,
        MIN_TIME - micro,
        MAX_TIME,
        MAX_TIME + micro,
        Time::MIN_UTC,
        Time::MAX_UTC,
        now + Duration::nanoseconds(1_999),
        now - Duration::nanoseconds(1),
    ][i % 8]
}

/// Durations reaching exactly to, and just past, either end from `now`.
fn duration_at(i: usize, now: Time) -> Duration {
    let micro = Duration::microseconds(1);
    [
        Duration::MAX,
        Duration::MIN,
        Duration::between(now, MAX_TIME),
        Duration::between(now, MAX_TIME) + micro,
        Duration::between(now, MIN_TIME),
        Duration::between(now, MIN_TIME) - micro,
        Duration::nanoseconds(1_999),
        Duration::zero(),
    ][i % 8]
}

fn interval_at(i: usize) -> Duration {
    let micro = Duration::microseconds(1);
    [
        Duration::zero(),
        MAX_INTERVAL,
        MAX_INTERVAL + micro,
        -Duration::seconds(1),
        Duration::MAX,
        Duration::MIN,
        Duration::nanoseconds(1_999),
        Duration::days(1),
    ][i % 8]
}

/// `interval` values of a definition, in seconds.
fn definition_interval_at(i: usize) -> Value {
    let max = MAX_INTERVAL.num_seconds();
    [
        Value::from(max),
        Value::from(max + 1),
        Value::from(-1),
        Value::from(9.2e12),
        Value::from(1e13),
        Value::from(1.9),
        Value::from(0),
        Value::from(i64::MAX),
    ][i % 8]
        .clone()
}

/// Name lists of a query: none, the model's names (one repeated), names
/// at, over and far over the limit, and more names than one URL holds.
fn query_names(i: usize) -> Vec<String> {
    let over = |i| extreme_name(i, 'u');
    match i % 7 {
        0 => vec![],
        1 => vec!["a".into()],
        2 => vec!["b".into(), "b".into(), "d".into(), "-c".into()],
        3 => vec!["c".into(), over(1), over(2)],
        4 => vec![UNITS[4].into(), over(3), over(4)],
        5 => vec!["a".into(), over(5)],
        _ => (0..600)
            .map(|n| format!("many names {n:04}"))
            .chain(UNITS.iter().map(|name| name.to_string()))
            .collect(),
    }
}

/// Status lists of a query.
const QUERY_STATUSES: &[&[WorkUnitStatus]] = &[
    &[],
    &[WorkUnitStatus::AnyStatus],
    &[WorkUnitStatus::Available],
    &[WorkUnitStatus::Pending, WorkUnitStatus::Finished],
    &[
        WorkUnitStatus::Failed,
        WorkUnitStatus::Delayed,
        WorkUnitStatus::Available,
    ],
    &[WorkUnitStatus::AnyStatus, WorkUnitStatus::Pending],
];

/// `previous_name` values: empty, between the model's names, with a NUL,
/// below them all, the last code point, two that a server might read as
/// name-encoded (`-YiBi` decodes to `b b`), and at, over and far over the
/// name limit.
fn query_previous(i: usize) -> String {
    match i % 12 {
        0 => String::new(),
        1 => "b".into(),
        2 => "b\0".into(),
        3 => "\u{1}".into(),
        4 => "\u{10FFFF}".into(),
        5 => "-YiBi".into(),
        6 => "-".into(),
        i => extreme_name(i - 6, 'u'),
    }
}

const QUERY_LIMITS: &[i64] = &[0, 1, 2, -1, 1_000, i64::MIN, i64::MAX];

/// Where [`Op::Jump`] moves the clock, forward or back.
fn jump_target(i: usize) -> Time {
    [
        MAX_TIME - Duration::hours(1),
        MIN_TIME + Duration::hours(1),
        start_at(1),
    ][i % 3]
}

/// Where a case starts: away from the epoch at a fractional second, or
/// near the start of the time range.
fn start_at(i: usize) -> Time {
    let fraction = Duration::milliseconds(123);
    if i == 0 {
        MIN_TIME + Duration::hours(1) + fraction
    } else {
        Time::UNIX_EPOCH + Duration::seconds(1_700_000_000) + fraction
    }
}

fn op() -> impl Strategy<Value = Op> {
    let unit = 0..UNITS.len();
    let worker = 0..WORKERS.len();
    let attempt = ATTEMPTS;
    prop_oneof![
        31 => random_ops::op(-3..=3).prop_map(Op::Model),
        1 => attempt.clone().prop_map(|attempt| Op::FinishExtreme { attempt }),
        1 => (0..NAME_LENGTHS.len(), 0..DEPTHS.len(), 0..PRIORITIES.len(), 0usize..9).prop_map(|(name, depth, priority, time)| Op::ExtremeUnit { name, depth, priority, time }),
        2 => (unit.clone(), 0..PRIORITIES.len(), 0usize..8, prop_oneof![Just(PriorityWay::Meta), Just(PriorityWay::One), Just(PriorityWay::All), Just(PriorityWay::Adjust)]).prop_map(|(unit, priority, time, how)| Op::ExtremeUnitMeta { unit, priority, time, how }),
        2 => (attempt.clone(), worker.clone(), 0usize..8, prop_oneof![Just(DurationWay::MakeAttempt), Just(DurationWay::Renew), Just(DurationWay::Retry), Just(DurationWay::Request)]).prop_map(|(attempt, worker, duration, how)| Op::ExtremeDuration { attempt, worker, duration, how }),
        1 => (0usize..8, any::<bool>()).prop_map(|(interval, by_definition)| Op::ExtremeInterval { interval, by_definition }),
        1 => (0usize..8).prop_map(|time| Op::ExtremeNextContinuous { time }),
        1 => (0..NAME_LENGTHS.len()).prop_map(|name| Op::ExtremeNames { name }),
        1 => (worker, 0..DEPTHS.len(), 0usize..8, 0usize..8).prop_map(|(worker, depth, now, expiration)| Op::ExtremeWorkerUpdate { worker, depth, now, expiration }),
        1 => (attempt, 0..DEPTHS.len(), any::<bool>()).prop_map(|(attempt, depth, finish)| Op::ExtremeAttemptData { attempt, depth, finish }),
        1 => (0usize..3).prop_map(|to| Op::Jump { to }),
        2 => (prop_oneof![2 => Just(0), 1 => 1usize..6, 1 => Just(6)], prop_oneof![Just(0), 0..QUERY_STATUSES.len()], prop_oneof![2 => Just(0), 1 => 1usize..12], 0..QUERY_LIMITS.len(), prop_oneof![3 => Just(QueryWay::List), 1 => Just(QueryWay::Delete), 1 => Just(QueryWay::SetPriority), 1 => Just(QueryWay::Adjust)]).prop_map(|(names, statuses, previous, limit, how)| Op::ExtremeQuery { names, statuses, previous, limit, how }),
    ]
}

/// Runs one op; answers a description of its outcome.
async fn apply(w: &mut World, backend: &dyn Backend, op: &Op) -> String {
    let clock = w.clock.clone();
    match op {
        Op::Model(op) => random_ops::apply(w, op).await,
        Op::FinishExtreme { attempt } => match w.attempt(*attempt) {
            Some(a) => {
                let data = data!({"output": [
                    extreme_name(2, 'o'),
                    extreme_name(3, 'o'),
                    ["far", {}, {"delay": (MAX_TIME - clock.now()).num_seconds() + 1}],
                    ["end", {}, {"delay": (MAX_TIME - clock.now()).num_seconds(), "priority": -0.0}],
                    ["zero", {}, null, -0.0]
                ]});
                kind(&a.finish(Some(data)).await)
            }
            None => "none".into(),
        },
        Op::ExtremeUnit {
            name,
            depth,
            priority,
            time,
        } => {
            let meta = WorkUnitMeta {
                priority: priority_at(*priority),
                not_before: (*time < 8).then(|| time_at(*time, clock.now())),
            };
            kind(
                &w.spec
                    .add_work_unit(&extreme_name(*name, 'u'), deep(*depth), meta)
                    .await,
            )
        }
        Op::ExtremeUnitMeta {
            unit,
            priority,
            time,
            how,
        } => {
            let p = priority_at(*priority);
            let all = WorkUnitQuery::all();
            match how {
                PriorityWay::All => kind(&w.spec.set_work_unit_priorities(&all, p).await),
                PriorityWay::Adjust => kind(&w.spec.adjust_work_unit_priorities(&all, p).await),
                PriorityWay::Meta | PriorityWay::One => {
                    match w.spec.work_unit(UNITS[*unit]).await {
                        Ok(u) if matches!(how, PriorityWay::One) => kind(&u.set_priority(p).await),
                        Ok(u) => {
                            let meta = WorkUnitMeta {
                                priority: p,
                                not_before: Some(time_at(*time, clock.now())),
                            };
                            kind(&u.set_meta(meta).await)
                        }
                        Err(e) => kind::<()>(&Err(e)),
                    }
                }
            }
        }
        Op::ExtremeDuration {
            attempt: i,
            worker,
            duration,
            how,
        } => {
            let d = duration_at(*duration, clock.now());
            match how {
                DurationWay::Request => {
                    let request = AttemptRequest {
                        lifetime: d,
                        ..AttemptRequest::default()
                    };
                    match w.workers[*worker].request_attempts(&request).await {
                        Ok(got) => {
                            let n = got.len();
                            w.attempts.extend(got);
                            format!("got {n}")
                        }
                        Err(e) => kind::<()>(&Err(e)),
                    }
                }
                DurationWay::MakeAttempt => {
                    make_attempt(w, *worker, UNITS[*i % UNITS.len()], d).await
                }
                DurationWay::Renew => match w.attempt(*i) {
                    Some(a) => kind(&a.renew(d, None).await),
                    None => "none".into(),
                },
                DurationWay::Retry => match w.attempt(*i) {
                    Some(a) => kind(&a.retry(None, d).await),
                    None => "none".into(),
                },
            }
        }
        Op::ExtremeInterval {
            interval,
            by_definition,
        } => {
            if *by_definition {
                let mut definition = spec_definition();
                definition.insert("interval".into(), definition_interval_at(*interval));
                kind(&w.spec.set_data(definition).await)
            } else {
                let mut meta = w.spec.meta(false).await.unwrap();
                meta.interval = interval_at(*interval);
                kind(&w.spec.set_meta(meta).await)
            }
        }
        Op::ExtremeNextContinuous { time } => {
            let mut meta = w.spec.meta(false).await.unwrap();
            meta.next_continuous = Some(time_at(*time, clock.now()));
            kind(&w.spec.set_meta(meta).await)
        }
        Op::ExtremeNames { name } => {
            let ns = extreme_name(*name, 'n');
            let spec = extreme_name(*name, 's');
            let worker = extreme_name(*name, 'w');
            let unit = extreme_name(*name, 'u');
            format!(
                "ns {} spec {} lookup {} worker {} unit {}",
                kind(&backend.namespace(&ns).await),
                kind(
                    &w.ns
                        .set_work_spec(data!({ "name": spec.clone(), "disabled": true }))
                        .await
                ),
                kind(&w.ns.work_spec(&spec).await),
                kind(&w.ns.worker(&worker).await),
                kind(&w.spec.work_unit(&unit).await),
            )
        }
        Op::ExtremeWorkerUpdate {
            worker,
            depth,
            now,
            expiration,
        } => {
            let at = |i: usize| time_at(i, clock.now());
            kind(
                &w.workers[*worker]
                    .update(deep(*depth), at(*now), at(*expiration), "extreme")
                    .await,
            )
        }
        Op::ExtremeAttemptData {
            attempt: i,
            depth,
            finish,
        } => match w.attempt(*i) {
            Some(a) if *finish => kind(&a.finish(Some(deep(*depth))).await),
            Some(a) => kind(&a.renew(Duration::minutes(1), Some(deep(*depth))).await),
            None => "none".into(),
        },
        Op::ExtremeQuery {
            names,
            statuses,
            previous,
            limit,
            how,
        } => {
            let query = WorkUnitQuery {
                names: query_names(*names),
                statuses: QUERY_STATUSES[*statuses].to_vec(),
                previous_name: query_previous(*previous),
                limit: QUERY_LIMITS[*limit],
            };
            match how {
                QueryWay::List => match w.spec.work_units(&query).await {
                    Ok(units) => {
                        format!("{:?}", units.keys().map(|n| short(n)).collect::<Vec<_>>())
                    }
                    Err(e) => kind::<()>(&Err(e)),
                },
                QueryWay::Delete => match w.spec.delete_work_units(&query).await {
                    Ok(n) => format!("deleted {n}"),
                    Err(e) => kind::<()>(&Err(e)),
                },
                QueryWay::SetPriority => kind(&w.spec.set_work_unit_priorities(&query, 2.5).await),
                QueryWay::Adjust => kind(&w.spec.adjust_work_unit_priorities(&query, -1.0).await),
            }
        }
        Op::Jump { to } => {
            clock.set(jump_target(*to));
            "ok".into()
        }
    }
}

/// A name as a short text: a long one by its length and first character.
fn short(name: &str) -> String {
    match name.chars().next() {
        Some(c) if name.len() > 32 => format!("{c}×{}B", name.len()),
        _ => format!("{name:?}"),
    }
}

/// Everything observable, as text lines (one per fact, so a mismatch
/// points at the fact).
async fn snapshot(w: &World, backend: &dyn Backend) -> Vec<String> {
    let mut out = Vec::new();
    for spec_name in ["s", "next"] {
        let spec = match w.ns.work_spec(spec_name).await {
            Ok(s) => s,
            Err(e) => {
                out.push(format!("spec {spec_name}: {}", kind::<()>(&Err(e))));
                continue;
            }
        };
        let meta = spec.meta(true).await.unwrap();
        out.push(format!("spec {spec_name} meta {meta:?}"));
        out.push(format!(
            "spec {spec_name} counts {:?}",
            spec.count_work_unit_status().await.unwrap()
        ));
        let mut summary = spec.summarize().await.unwrap();
        summary.sort();
        out.push(format!("spec {spec_name} summary {summary:?}"));
        for (name, unit) in spec.work_units(&WorkUnitQuery::all()).await.unwrap() {
            let status = unit.status().await.unwrap();
            let data = unit.data().await.unwrap();
            let meta = unit.meta().await.unwrap();
            let n = unit.num_attempts().await.unwrap();
            let active = match unit.active_attempt().await.unwrap() {
                Some(a) => format!("{}@{}", a.worker().name(), a.start_time().await.unwrap()),
                None => "-".into(),
            };
            out.push(format!(
                "unit {spec_name}/{name:?} {status} {data:?} {meta:?} n={n} active={active}"
            ));
        }
    }
    for (i, a) in w.attempts.iter().enumerate() {
        let line = match a.status().await {
            Ok(status) => format!(
                "attempt {i} {}/{:?} by {} {status} {:?} end={:?} exp={:?}",
                a.work_unit().work_spec().name(),
                a.work_unit().name(),
                a.worker().name(),
                a.data().await.unwrap(),
                a.end_time().await.unwrap(),
                a.expiration_time().await.unwrap(),
            ),
            Err(e) => format!("attempt {i} {}", kind::<()>(&Err(e))),
        };
        out.push(line);
    }
    for worker in &w.workers {
        let names = |list: Vec<AttemptRef>| {
            list.iter()
                .map(|a| {
                    format!(
                        "{}/{:?}",
                        a.work_unit().work_spec().name(),
                        a.work_unit().name()
                    )
                })
                .collect::<Vec<_>>()
        };
        let mut children: Vec<String> = worker
            .children()
            .await
            .unwrap()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        children.sort();
        let mut child_attempts = names(worker.child_attempts().await.unwrap());
        child_attempts.sort();
        out.push(format!(
            "worker {} data {:?} last {:?} exp {:?} mode {:?}",
            worker.name(),
            worker.data().await.unwrap(),
            worker.last_update().await.unwrap(),
            worker.expiration().await.unwrap(),
            worker.mode().await.unwrap(),
        ));
        out.push(format!(
            "worker {} active {:?} all {:?} children {children:?} child_attempts {child_attempts:?} parent {:?}",
            worker.name(),
            names(worker.active_attempts().await.unwrap()),
            names(worker.all_attempts().await.unwrap()),
            worker.parent().await.unwrap().map(|p| p.name().to_string()),
        ));
    }
    let mut summary = w.ns.summarize().await.unwrap();
    summary.sort();
    out.push(format!("namespace summary {summary:?}"));
    let mut specs = w.ns.work_spec_names().await.unwrap();
    specs.sort();
    out.push(format!("spec names {specs:?}"));
    let mut workers: Vec<String> = w.ns.workers().await.unwrap().into_keys().collect();
    workers.sort();
    out.push(format!("worker names {workers:?}"));
    let namespaces: Vec<String> = backend.namespaces().await.unwrap().into_keys().collect();
    out.push(format!("namespaces {namespaces:?}"));
    out
}

/// The proptest configuration: `cases` cases (or `DIFF_CASES`) from a fixed
/// seed (or `DIFF_SEED`).
pub fn config(cases: u32) -> Config {
    let cases = std::env::var("DIFF_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(
            std::env::var("DIFF_SEED")
                .ok()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0xD1FF),
        ),
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    }
}

/// Runs one case's future on a runtime of its own.
pub fn block_on<F: std::future::Future>(case: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(case)
}

/// A case: where its clocks start and what it does.
pub fn case() -> impl Strategy<Value = (Time, Vec<Op>)> {
    (0usize..4, proptest::collection::vec(op(), 1..40)).prop_map(|(i, ops)| (start_at(i), ops))
}

/// Runs `ops` on a fresh reference `MemoryBackend` and on `other`, whose
/// clock `clock` stands at the case's start, and asserts that every answer
/// and every state in between are the same.
pub async fn compare(ops: &[Op], other: &dyn Backend, clock: MockClock) {
    let reference_clock = MockClock::starting_at(clock.now());
    let reference = MemoryBackend::with_clock(reference_clock.clone());
    let next = data!({"name": "next", "disabled": true});
    let mut want_world = world(&reference, reference_clock, next.clone()).await;
    let mut got_world = world(other, clock, next).await;
    for (step, op) in ops.iter().enumerate() {
        let want = apply(&mut want_world, &reference, op).await;
        let got = apply(&mut got_world, other, op).await;
        assert_eq!(got, want, "step {step}: {op:?}");
        let want = snapshot(&want_world, &reference).await;
        let got = snapshot(&got_world, other).await;
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "after step {step}: {op:?}");
        }
        assert_eq!(got.len(), want.len(), "after step {step}: {op:?}");
        if std::env::var_os("DIFF_SHOW").is_some() {
            eprintln!("{op:?}\n  {}", got.join("\n  "));
        }
    }
}
