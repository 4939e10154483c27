//! Random operation sequences run against `PostgresBackend` and the
//! reference `MemoryBackend` side by side.
//!
//! **Law:** from the same start, with clocks moved in step, the two backends
//! answer every operation alike (same success, same error kind — counting
//! `Gone` and the `NoSuch…` lookups of §12.2 as one kind — same units handed
//! out in the same order) and, after every operation, show the same state:
//! unit statuses, data, metas and attempt histories, attempt states, worker
//! lists, counts and summaries.
//!
//! Only one spec is schedulable (the chaining target is paused), so the
//! scheduler's random choice never makes the two differ.
#![cfg(feature = "postgres")]

use coordinate::memory::MemoryBackend;
use coordinate::postgres::testing::TestCluster;
use coordinate::{
    data, sort_summary, AttemptRef, AttemptRequest, Backend, Clock, DataMap, Duration, Error,
    MockClock, NamespaceRef, WorkSpecRef, WorkUnitMeta, WorkUnitQuery, WorkUnitStatus, WorkerRef,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed};

const UNITS: &[&str] = &["a", "b", "c", "d", "\u{1}e"];
const WORKERS: &[&str] = &["w1", "w2", "w3"];

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
        limit: i8,
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
    AdjustPriority {
        status: Option<WorkUnitStatus>,
        delta: i8,
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
    let status = || {
        prop_oneof![
            Just(None),
            proptest::sample::select(WorkUnitStatus::ALL).prop_map(Some)
        ]
    };
    prop_oneof![
        4 => (unit.clone(), -3i8..3, -3i8..3).prop_map(|(unit, priority, delay)| Op::AddUnit { unit, priority, delay }),
        1 => (proptest::option::of(unit.clone()), status(), -1i8..3).prop_map(|(unit, status, limit)| Op::DeleteUnits { unit, status, limit }),
        4 => (worker.clone(), -1i8..4).prop_map(|(worker, n)| Op::Request { worker, n }),
        2 => (worker.clone(), unit.clone(), -60i16..2000).prop_map(|(worker, unit, lifetime)| Op::MakeAttempt { worker, unit, lifetime }),
        2 => (attempt.clone(), -60i16..2000).prop_map(|(attempt, extend)| Op::Renew { attempt, extend }),
        2 => attempt.clone().prop_map(|attempt| Op::Expire { attempt }),
        3 => (attempt.clone(), any::<bool>()).prop_map(|(attempt, chain)| Op::Finish { attempt, chain }),
        2 => attempt.clone().prop_map(|attempt| Op::Fail { attempt }),
        2 => (attempt, -10i16..600).prop_map(|(attempt, delay)| Op::Retry { attempt, delay }),
        1 => unit.clone().prop_map(|unit| Op::ClearActive { unit }),
        1 => (status(), -3i8..3).prop_map(|(status, delta)| Op::AdjustPriority { status, delta }),
        3 => (0u16..1200).prop_map(|seconds| Op::Advance { seconds }),
        1 => (-1i8..3, -1i8..3, -1i8..3).prop_map(|(max_running, max_retries, max_getwork)| Op::Limits { max_running, max_retries, max_getwork }),
        1 => (any::<bool>(), 0u8..30).prop_map(|(on, interval)| Op::Continuous { on, interval }),
        1 => Just(Op::RecreateNextSpec),
        1 => (worker.clone(), proptest::option::of(worker)).prop_map(|(child, parent)| Op::SetParent { child, parent }),
    ]
}

/// One backend's view of the scenario.
struct World {
    ns: NamespaceRef,
    spec: WorkSpecRef,
    workers: Vec<WorkerRef>,
    attempts: Vec<AttemptRef>,
}

fn secs(n: impl Into<i64>) -> Duration {
    Duration::seconds(n.into())
}

async fn world(backend: &dyn Backend) -> World {
    let ns = backend.namespace("p").await.unwrap();
    let spec = ns
        .set_work_spec(data!({"name": "s", "then": "next", "continuous": true}))
        .await
        .unwrap();
    ns.set_work_spec(data!({"name": "next", "disabled": true}))
        .await
        .unwrap();
    let mut workers = Vec::new();
    for w in WORKERS {
        workers.push(ns.worker(w).await.unwrap());
    }
    World {
        ns,
        spec,
        workers,
        attempts: Vec::new(),
    }
}

/// An answer reduced to what both backends must agree on.
fn kind<T>(r: &Result<T, Error>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(Error::Gone | Error::NoSuchWorkSpec { .. } | Error::NoSuchWorkUnit { .. }) => {
            "gone".into()
        }
        Err(e) => format!("{e:?}"),
    }
}

/// Runs one op; answers a description of its outcome.
async fn apply(w: &mut World, clock: &MockClock, op: &Op) -> String {
    let attempt = |i: usize| w.attempts.get(i % w.attempts.len().max(1)).cloned();
    match op {
        Op::AddUnit {
            unit,
            priority,
            delay,
        } => {
            let not_before = (*delay != 0).then(|| clock.now() + secs(*delay));
            let meta = WorkUnitMeta {
                priority: f64::from(*priority),
                not_before,
            };
            kind(
                &w.spec
                    .add_work_unit(UNITS[*unit], data!({"u": unit}), meta)
                    .await,
            )
        }
        Op::DeleteUnits {
            unit,
            status,
            limit,
        } => {
            let query = WorkUnitQuery {
                names: unit.map(|u| vec![UNITS[u].to_string()]).unwrap_or_default(),
                statuses: status.map(|s| vec![s]).unwrap_or_default(),
                limit: i64::from(*limit),
                ..WorkUnitQuery::default()
            };
            format!("{:?}", w.spec.delete_work_units(&query).await.ok())
        }
        Op::Request { worker, n } => {
            match w.workers[*worker]
                .request_attempts(AttemptRequest::units(i64::from(*n)))
                .await
            {
                Ok(got) => {
                    let names: Vec<String> = got
                        .iter()
                        .map(|a| a.work_unit().name().to_string())
                        .collect();
                    w.attempts.extend(got);
                    format!("{names:?}")
                }
                Err(e) => format!("{e:?}"),
            }
        }
        Op::MakeAttempt {
            worker,
            unit,
            lifetime,
        } => match w.spec.work_unit(UNITS[*unit]).await {
            Ok(unit) => match w.workers[*worker]
                .make_attempt(&*unit, secs(*lifetime))
                .await
            {
                Ok(a) => {
                    w.attempts.push(a);
                    "ok".into()
                }
                Err(e) => kind::<()>(&Err(e)),
            },
            Err(e) => kind::<()>(&Err(e)),
        },
        Op::Renew { attempt: i, extend } => match attempt(*i) {
            Some(a) => kind(&a.renew(secs(*extend), Some(data!({"renewed": true}))).await),
            None => "none".into(),
        },
        Op::Expire { attempt: i } => match attempt(*i) {
            Some(a) => kind(&a.expire(None).await),
            None => "none".into(),
        },
        Op::Finish { attempt: i, chain } => match attempt(*i) {
            Some(a) => {
                let data = chain.then(|| data!({"output": ["x", ["y", {"k": 1}, {"delay": 5}]]}));
                kind(&a.finish(data).await)
            }
            None => "none".into(),
        },
        Op::Fail { attempt: i } => match attempt(*i) {
            Some(a) => kind(&a.fail(Some(DataMap::new())).await),
            None => "none".into(),
        },
        Op::Retry { attempt: i, delay } => match attempt(*i) {
            Some(a) => kind(&a.retry(None, secs(*delay)).await),
            None => "none".into(),
        },
        Op::ClearActive { unit } => match w.spec.work_unit(UNITS[*unit]).await {
            Ok(unit) => kind(&unit.clear_active_attempt().await),
            Err(e) => kind::<()>(&Err(e)),
        },
        Op::AdjustPriority { status, delta } => {
            let query = WorkUnitQuery::statuses(status.iter().copied());
            kind(
                &w.spec
                    .adjust_work_unit_priorities(&query, f64::from(*delta))
                    .await,
            )
        }
        Op::Advance { seconds } => {
            clock.advance(secs(*seconds));
            "ok".into()
        }
        Op::Limits {
            max_running,
            max_retries,
            max_getwork,
        } => {
            let mut meta = w.spec.meta(false).await.unwrap();
            meta.max_running = i64::from(*max_running);
            meta.max_retries = i64::from(*max_retries);
            meta.max_attempts_returned = i64::from(*max_getwork);
            kind(&w.spec.set_meta(meta).await)
        }
        Op::Continuous { on, interval } => {
            let mut meta = w.spec.meta(false).await.unwrap();
            meta.continuous = *on;
            meta.interval = secs(*interval);
            kind(&w.spec.set_meta(meta).await)
        }
        Op::RecreateNextSpec => {
            let a = kind(&w.ns.destroy_work_spec("next").await);
            let b = kind(
                &w.ns
                    .set_work_spec(data!({"name": "next", "disabled": true}))
                    .await,
            );
            format!("{a} {b}")
        }
        Op::SetParent { child, parent } => {
            let parent = parent.map(|p| w.workers[p].clone());
            kind(&w.workers[*child].set_parent(parent.as_deref()).await)
        }
    }
}

/// Everything observable, as text lines (one per fact, so a mismatch
/// points at the fact).
async fn snapshot(w: &World) -> Vec<String> {
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
        sort_summary(&mut summary);
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
            "worker {} active {:?} all {:?} children {children:?} child_attempts {child_attempts:?} parent {:?}",
            worker.name(),
            names(worker.active_attempts().await.unwrap()),
            names(worker.all_attempts().await.unwrap()),
            worker.parent().await.unwrap().map(|p| p.name().to_string()),
        ));
    }
    let mut summary = w.ns.summarize().await.unwrap();
    sort_summary(&mut summary);
    out.push(format!("namespace summary {summary:?}"));
    out
}

fn config() -> Config {
    let cases = std::env::var("DIFF_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(40);
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

proptest! {
    #![proptest_config(config())]

    #[test]
    fn postgres_matches_the_reference_backend(ops in proptest::collection::vec(op(), 1..40)) {
        let cluster = TestCluster::shared_or_panic();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            // Start away from the epoch, at a fractional second.
            let start = coordinate::Time::UNIX_EPOCH + Duration::milliseconds(1_700_000_000_123);
            let mem_clock = MockClock::starting_at(start);
            let pg_clock = MockClock::starting_at(start);
            let memory = MemoryBackend::with_clock(mem_clock.clone());
            let (postgres, _lease) = cluster.lease_backend(pg_clock.clone()).await.unwrap();
            let mut mem = world(&memory).await;
            let mut pg = world(&postgres).await;
            for (step, op) in ops.iter().enumerate() {
                let want = apply(&mut mem, &mem_clock, op).await;
                let got = apply(&mut pg, &pg_clock, op).await;
                assert_eq!(got, want, "step {step}: {op:?}");
                let want = snapshot(&mem).await;
                let got = snapshot(&pg).await;
                for (g, w) in got.iter().zip(&want) {
                    assert_eq!(g, w, "after step {step}: {op:?}");
                }
                assert_eq!(got.len(), want.len(), "after step {step}: {op:?}");
                if std::env::var_os("DIFF_SHOW").is_some() { eprintln!("{op:?}\n  {}", got.join("\n  ")); }
            }
        });
    }
}
