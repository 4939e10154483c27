//! Random operation sequences against `MemoryBackend`.
//!
//! **Law:** whatever sequence of operations callers make — including bad
//! input, operations on deleted objects and arbitrary clock moves — the
//! backend never panics, and afterwards:
//!
//! 1. every unit's status agrees with its active attempt (Pending ⇔ a
//!    pending active attempt; Finished/Failed ⇔ a finished/failed one) and
//!    that attempt is one of the unit's own attempts;
//! 2. `count_work_unit_status`, `meta(true)` and `summarize` agree with the
//!    statuses of the units one by one;
//! 3. once an expiry check has run, a worker's active attempts are pending
//!    attempts of that worker, and every pending unit's active attempt is on
//!    its worker's active list.

use std::collections::BTreeMap;

use coordinate::memory::MemoryBackend;
use coordinate::{
    data, AttemptRef, AttemptRequest, AttemptStatus, Backend, DataMap, Duration, MockClock,
    NamespaceRef, WorkSpecRef, WorkUnitMeta, WorkUnitQuery, WorkUnitStatus, WorkerRef,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed};

const UNITS: &[&str] = &["a", "b", "c", "d", "e"];
const WORKERS: &[&str] = &["w1", "w2", "w3"];

/// One step of a random scenario; indexes pick from small name pools so
/// that operations collide often.
#[derive(Debug, Clone)]
enum Op {
    AddUnit {
        unit: usize,
        priority: i8,
        delay: i8,
    },
    DeleteUnits {
        unit: Option<usize>,
        status: Option<WorkUnitStatus>,
    },
    Request {
        worker: usize,
        n: i8,
    },
    MakeAttempt {
        worker: usize,
        unit: usize,
        lifetime: i16,
    },
    Renew {
        attempt: usize,
        extend: i16,
    },
    Expire {
        attempt: usize,
    },
    Finish {
        attempt: usize,
        chain: bool,
    },
    Fail {
        attempt: usize,
    },
    Retry {
        attempt: usize,
        delay: i16,
    },
    ClearActive {
        unit: usize,
    },
    SetPriority {
        unit: usize,
        priority: i8,
    },
    Advance {
        seconds: u16,
    },
    Limits {
        max_running: i8,
        max_retries: i8,
        max_getwork: i8,
    },
    Continuous {
        on: bool,
        interval: u8,
    },
    RecreateNextSpec,
    SetParent {
        child: usize,
        parent: Option<usize>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let unit = 0..UNITS.len();
    let worker = 0..WORKERS.len();
    let attempt = 0usize..12;
    let status = prop_oneof![
        Just(None),
        proptest::sample::select(WorkUnitStatus::ALL).prop_map(Some)
    ];
    prop_oneof![
        4 => (unit.clone(), any::<i8>(), -3i8..3).prop_map(|(unit, priority, delay)| Op::AddUnit { unit, priority, delay }),
        1 => (proptest::option::of(unit.clone()), status).prop_map(|(unit, status)| Op::DeleteUnits { unit, status }),
        4 => (worker.clone(), -1i8..4).prop_map(|(worker, n)| Op::Request { worker, n }),
        2 => (worker.clone(), unit.clone(), -60i16..2000).prop_map(|(worker, unit, lifetime)| Op::MakeAttempt { worker, unit, lifetime }),
        2 => (attempt.clone(), -60i16..2000).prop_map(|(attempt, extend)| Op::Renew { attempt, extend }),
        2 => attempt.clone().prop_map(|attempt| Op::Expire { attempt }),
        3 => (attempt.clone(), any::<bool>()).prop_map(|(attempt, chain)| Op::Finish { attempt, chain }),
        2 => attempt.clone().prop_map(|attempt| Op::Fail { attempt }),
        2 => (attempt, -10i16..600).prop_map(|(attempt, delay)| Op::Retry { attempt, delay }),
        1 => unit.clone().prop_map(|unit| Op::ClearActive { unit }),
        1 => (unit, any::<i8>()).prop_map(|(unit, priority)| Op::SetPriority { unit, priority }),
        3 => (0u16..1200).prop_map(|seconds| Op::Advance { seconds }),
        1 => (-1i8..3, -1i8..3, -1i8..3).prop_map(|(max_running, max_retries, max_getwork)| Op::Limits { max_running, max_retries, max_getwork }),
        1 => (any::<bool>(), 0u8..30).prop_map(|(on, interval)| Op::Continuous { on, interval }),
        1 => Just(Op::RecreateNextSpec),
        1 => (worker.clone(), proptest::option::of(worker)).prop_map(|(child, parent)| Op::SetParent { child, parent }),
    ]
}

struct World {
    clock: MockClock,
    ns: NamespaceRef,
    spec: WorkSpecRef,
    workers: Vec<WorkerRef>,
    attempts: Vec<AttemptRef>,
}

fn secs(n: impl Into<i64>) -> Duration {
    Duration::seconds(n.into())
}

async fn world() -> World {
    let clock = MockClock::new();
    let backend = MemoryBackend::with_clock(clock.clone());
    let ns = backend.namespace("p").await.unwrap();
    let spec = ns
        .set_work_spec(data!({"name": "s", "then": "next", "continuous": true}))
        .await
        .unwrap();
    ns.set_work_spec(data!({"name": "next"})).await.unwrap();
    let mut workers = Vec::new();
    for w in WORKERS {
        workers.push(ns.worker(w).await.unwrap());
    }
    World {
        clock,
        ns,
        spec,
        workers,
        attempts: Vec::new(),
    }
}

/// Runs one op; errors are legitimate answers (Gone, NotPending, …), only
/// panics and broken invariants fail the property.
async fn apply(w: &mut World, op: &Op) {
    let attempt = |i: usize| w.attempts.get(i % w.attempts.len().max(1)).cloned();
    match op {
        Op::AddUnit {
            unit,
            priority,
            delay,
        } => {
            let not_before = (*delay != 0).then(|| w.clock.now_plus(secs(*delay)));
            let meta = WorkUnitMeta {
                priority: f64::from(*priority),
                not_before,
            };
            let _ = w
                .spec
                .add_work_unit(UNITS[*unit], data!({"u": unit}), meta)
                .await;
        }
        Op::DeleteUnits { unit, status } => {
            let query = WorkUnitQuery {
                names: unit.map(|u| vec![UNITS[u].to_string()]).unwrap_or_default(),
                statuses: status.map(|s| vec![s]).unwrap_or_default(),
                ..WorkUnitQuery::default()
            };
            let _ = w.spec.delete_work_units(&query).await;
        }
        Op::Request { worker, n } => {
            if let Ok(got) = w.workers[*worker]
                .request_attempts(&AttemptRequest::units(i64::from(*n)))
                .await
            {
                w.attempts.extend(got);
            }
        }
        Op::MakeAttempt {
            worker,
            unit,
            lifetime,
        } => {
            if let Ok(unit) = w.spec.work_unit(UNITS[*unit]).await {
                if let Ok(a) = w.workers[*worker]
                    .make_attempt(&unit, secs(*lifetime))
                    .await
                {
                    w.attempts.push(a);
                }
            }
        }
        Op::Renew { attempt: i, extend } => {
            if let Some(a) = attempt(*i) {
                let _ = a.renew(secs(*extend), Some(data!({"renewed": true}))).await;
            }
        }
        Op::Expire { attempt: i } => {
            if let Some(a) = attempt(*i) {
                let _ = a.expire(None).await;
            }
        }
        Op::Finish { attempt: i, chain } => {
            if let Some(a) = attempt(*i) {
                let data = chain.then(|| data!({"output": ["x", ["y", {"k": 1}, {"delay": 5}]]}));
                let _ = a.finish(data).await;
            }
        }
        Op::Fail { attempt: i } => {
            if let Some(a) = attempt(*i) {
                let _ = a.fail(Some(DataMap::new())).await;
            }
        }
        Op::Retry { attempt: i, delay } => {
            if let Some(a) = attempt(*i) {
                let _ = a.retry(None, secs(*delay)).await;
            }
        }
        Op::ClearActive { unit } => {
            if let Ok(unit) = w.spec.work_unit(UNITS[*unit]).await {
                let _ = unit.clear_active_attempt().await;
            }
        }
        Op::SetPriority { unit, priority } => {
            if let Ok(unit) = w.spec.work_unit(UNITS[*unit]).await {
                let _ = unit.set_priority(f64::from(*priority)).await;
            }
        }
        Op::Advance { seconds } => w.clock.advance(secs(*seconds)),
        Op::Limits {
            max_running,
            max_retries,
            max_getwork,
        } => {
            let mut meta = w.spec.meta(false).await.unwrap();
            meta.max_running = i64::from(*max_running);
            meta.max_retries = i64::from(*max_retries);
            meta.max_attempts_returned = i64::from(*max_getwork);
            w.spec.set_meta(meta).await.unwrap();
        }
        Op::Continuous { on, interval } => {
            let mut meta = w.spec.meta(false).await.unwrap();
            meta.continuous = *on;
            meta.interval = secs(*interval);
            w.spec.set_meta(meta).await.unwrap();
        }
        Op::RecreateNextSpec => {
            let _ = w.ns.destroy_work_spec("next").await;
            w.ns.set_work_spec(data!({"name": "next"})).await.unwrap();
        }
        Op::SetParent { child, parent } => {
            let parent = parent.map(|p| w.workers[p].clone());
            w.workers[*child].set_parent(parent.as_ref()).await.unwrap();
        }
    }
}

trait NowPlus {
    fn now_plus(&self, by: Duration) -> coordinate::Time;
}

impl NowPlus for MockClock {
    fn now_plus(&self, by: Duration) -> coordinate::Time {
        coordinate::Clock::now(self) + by
    }
}

async fn check_invariants(w: &World) {
    // Worker lists do not run expiry checks; summarizing the
    // namespace does, over every spec, so lists and statuses agree.
    w.ns.summarize().await.unwrap();
    let units = w.spec.work_units(&WorkUnitQuery::all()).await.unwrap();
    let mut by_status: BTreeMap<WorkUnitStatus, u64> = BTreeMap::new();
    for (name, unit) in &units {
        let status = unit.status().await.unwrap();
        *by_status.entry(status).or_default() += 1;
        let active = unit.active_attempt().await.unwrap();
        let active_status = match &active {
            Some(a) => Some(a.status().await.unwrap()),
            None => None,
        };
        let expected = match active_status {
            Some(AttemptStatus::Pending) => Some(WorkUnitStatus::Pending),
            Some(AttemptStatus::Finished) => Some(WorkUnitStatus::Finished),
            Some(AttemptStatus::Failed) => Some(WorkUnitStatus::Failed),
            Some(other) => panic!("unit {name}: active attempt is {other}"),
            None => None,
        };
        match expected {
            Some(s) => assert_eq!(status, s, "unit {name}"),
            None => assert!(
                matches!(status, WorkUnitStatus::Available | WorkUnitStatus::Delayed),
                "unit {name} has no active attempt but is {status}"
            ),
        }
        if let Some(a) = active {
            let history = unit.attempts().await.unwrap();
            let start = a.start_time().await.unwrap();
            let mut found = false;
            for h in &history {
                found |= h.start_time().await.unwrap() == start
                    && h.worker().name() == a.worker().name();
            }
            assert!(found, "unit {name}: active attempt not in its history");
            if status == WorkUnitStatus::Pending {
                let on_list = a.worker().active_attempts().await.unwrap();
                assert!(
                    on_list
                        .iter()
                        .any(|x| x.work_unit().name() == name.as_str()),
                    "unit {name}: pending attempt missing from its worker's active list"
                );
            }
        }
    }
    assert_eq!(w.spec.count_work_unit_status().await.unwrap(), by_status);
    let meta = w.spec.meta(true).await.unwrap();
    let count = |s| by_status.get(&s).copied().unwrap_or(0) as i64;
    assert_eq!(meta.available_count, count(WorkUnitStatus::Available));
    assert_eq!(meta.pending_count, count(WorkUnitStatus::Pending));
    let summary: BTreeMap<WorkUnitStatus, u64> = w
        .spec
        .summarize()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.status, r.count))
        .collect();
    assert_eq!(summary, by_status);

    for worker in &w.workers {
        for a in worker.active_attempts().await.unwrap() {
            assert_eq!(a.worker().name(), worker.name());
            assert_eq!(a.status().await.unwrap(), AttemptStatus::Pending);
        }
    }
}

fn config() -> Config {
    Config {
        cases: 256,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0xC00D),
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_operations_keep_invariants(ops in proptest::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let mut w = world().await;
            for op in &ops {
                apply(&mut w, op).await;
                check_invariants(&w).await;
            }
        });
    }
}
