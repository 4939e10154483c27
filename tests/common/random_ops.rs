//! The random-operation model shared by the property tests: a small world
//! (one namespace, a continuous spec chaining to `next`, three workers), the
//! operations callers make on it, and how each one runs.

use coordinate::{
    data, AttemptRef, AttemptRequest, Backend, Clock, DataMap, Duration, Error, MockClock,
    NamespaceRef, WorkSpecRef, WorkUnitMeta, WorkUnitQuery, WorkUnitStatus, WorkerRef,
};
use proptest::prelude::*;

pub const UNITS: &[&str] = &["a", "b", "c", "d", "\u{1}e"];
pub const WORKERS: &[&str] = &["w1", "w2", "w3"];

/// One step of a random scenario; indexes pick from small name pools so
/// that operations collide often.
#[derive(Debug, Clone)]
pub enum Op {
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
    SetPriority {
        unit: usize,
        priority: i8,
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

/// The indexes an attempt is picked by: more than a scenario usually
/// holds, so some picks wrap around.
pub const ATTEMPTS: std::ops::Range<usize> = 0..12;

/// An operation; unit priorities are drawn from `priority` (a narrow range
/// makes ties, and so ordering by name, common).
pub fn op(priority: std::ops::RangeInclusive<i8>) -> impl Strategy<Value = Op> {
    let unit = 0..UNITS.len();
    let worker = 0..WORKERS.len();
    let attempt = ATTEMPTS;
    let status = || {
        prop_oneof![
            Just(None),
            proptest::sample::select(WorkUnitStatus::ALL).prop_map(Some)
        ]
    };
    prop_oneof![
        4 => (unit.clone(), priority.clone(), -3i8..3).prop_map(|(unit, priority, delay)| Op::AddUnit { unit, priority, delay }),
        1 => (proptest::option::of(unit.clone()), status(), -1i8..3).prop_map(|(unit, status, limit)| Op::DeleteUnits { unit, status, limit }),
        4 => (worker.clone(), -1i8..4).prop_map(|(worker, n)| Op::Request { worker, n }),
        2 => (worker.clone(), unit.clone(), -60i16..2000).prop_map(|(worker, unit, lifetime)| Op::MakeAttempt { worker, unit, lifetime }),
        2 => (attempt.clone(), -60i16..2000).prop_map(|(attempt, extend)| Op::Renew { attempt, extend }),
        2 => attempt.clone().prop_map(|attempt| Op::Expire { attempt }),
        3 => (attempt.clone(), any::<bool>()).prop_map(|(attempt, chain)| Op::Finish { attempt, chain }),
        2 => attempt.clone().prop_map(|attempt| Op::Fail { attempt }),
        2 => (attempt, -10i16..600).prop_map(|(attempt, delay)| Op::Retry { attempt, delay }),
        1 => unit.clone().prop_map(|unit| Op::ClearActive { unit }),
        1 => (unit, priority).prop_map(|(unit, priority)| Op::SetPriority { unit, priority }),
        1 => (status(), -3i8..3).prop_map(|(status, delta)| Op::AdjustPriority { status, delta }),
        3 => (0u16..1200).prop_map(|seconds| Op::Advance { seconds }),
        1 => (-1i8..3, -1i8..3, -1i8..3).prop_map(|(max_running, max_retries, max_getwork)| Op::Limits { max_running, max_retries, max_getwork }),
        1 => (any::<bool>(), 0u8..30).prop_map(|(on, interval)| Op::Continuous { on, interval }),
        1 => Just(Op::RecreateNextSpec),
        1 => (worker.clone(), proptest::option::of(worker)).prop_map(|(child, parent)| Op::SetParent { child, parent }),
    ]
}

/// One backend's view of a scenario.
pub struct World {
    pub clock: MockClock,
    pub ns: NamespaceRef,
    pub spec: WorkSpecRef,
    /// How `next`, the spec `s` chains to, is (re)created.
    pub next: DataMap,
    pub workers: Vec<WorkerRef>,
    pub attempts: Vec<AttemptRef>,
}

/// The definition of the spec every unit is added to.
pub fn spec_definition() -> DataMap {
    data!({"name": "s", "then": "next", "continuous": true})
}

/// Sets up the world in `backend`, whose clock is `clock`; `next` defines
/// the chaining target.
pub async fn world(backend: &dyn Backend, clock: MockClock, next: DataMap) -> World {
    let ns = backend.namespace("p").await.unwrap();
    let spec = ns.set_work_spec(spec_definition()).await.unwrap();
    ns.set_work_spec(next.clone()).await.unwrap();
    let mut workers = Vec::new();
    for w in WORKERS {
        workers.push(ns.worker(w).await.unwrap());
    }
    World {
        clock,
        ns,
        spec,
        next,
        workers,
        attempts: Vec::new(),
    }
}

impl World {
    /// The attempt index `i` picks, if any attempt was made yet.
    pub fn attempt(&self, i: usize) -> Option<AttemptRef> {
        self.attempts.get(i % self.attempts.len().max(1)).cloned()
    }
}

pub fn secs(n: impl Into<i64>) -> Duration {
    Duration::seconds(n.into())
}

/// An answer reduced to what any two backends must agree on: success, or
/// the error (`Gone` and the `NoSuch…` errors a durable backend may report
/// for a deleted object counting as one kind).
pub fn kind<T>(r: &Result<T, Error>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(Error::Gone { .. } | Error::NoSuchWorkSpec { .. } | Error::NoSuchWorkUnit { .. }) => {
            "gone".into()
        }
        Err(e) => format!("{e:?}"),
    }
}

/// Runs one op; answers a description of its outcome. Errors are
/// legitimate answers (Gone, NotPending, …); changes to the spec's meta,
/// recreating `next` and setting a parent always succeed.
pub async fn apply(w: &mut World, op: &Op) -> String {
    match op {
        Op::AddUnit {
            unit,
            priority,
            delay,
        } => {
            let not_before = (*delay != 0).then(|| w.clock.now() + secs(*delay));
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
        } => make_attempt(w, *worker, UNITS[*unit], secs(*lifetime)).await,
        Op::Renew { attempt, extend } => match w.attempt(*attempt) {
            Some(a) => kind(&a.renew(secs(*extend), Some(data!({"renewed": true}))).await),
            None => "none".into(),
        },
        Op::Expire { attempt } => match w.attempt(*attempt) {
            Some(a) => kind(&a.expire(None).await),
            None => "none".into(),
        },
        Op::Finish { attempt, chain } => match w.attempt(*attempt) {
            Some(a) => {
                let data = chain.then(|| data!({"output": ["x", ["y", {"k": 1}, {"delay": 5}]]}));
                kind(&a.finish(data).await)
            }
            None => "none".into(),
        },
        Op::Fail { attempt } => match w.attempt(*attempt) {
            Some(a) => kind(&a.fail(Some(DataMap::new())).await),
            None => "none".into(),
        },
        Op::Retry { attempt, delay } => match w.attempt(*attempt) {
            Some(a) => kind(&a.retry(None, secs(*delay)).await),
            None => "none".into(),
        },
        Op::ClearActive { unit } => match w.spec.work_unit(UNITS[*unit]).await {
            Ok(unit) => kind(&unit.clear_active_attempt().await),
            Err(e) => kind::<()>(&Err(e)),
        },
        Op::SetPriority { unit, priority } => match w.spec.work_unit(UNITS[*unit]).await {
            Ok(unit) => kind(&unit.set_priority(f64::from(*priority)).await),
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
            w.clock.advance(secs(*seconds));
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
            w.spec.set_meta(meta).await.unwrap();
            "ok".into()
        }
        Op::Continuous { on, interval } => {
            let mut meta = w.spec.meta(false).await.unwrap();
            meta.continuous = *on;
            meta.interval = secs(*interval);
            w.spec.set_meta(meta).await.unwrap();
            "ok".into()
        }
        Op::RecreateNextSpec => {
            let destroyed = kind(&w.ns.destroy_work_spec("next").await);
            w.ns.set_work_spec(w.next.clone()).await.unwrap();
            destroyed
        }
        Op::SetParent { child, parent } => {
            let parent = parent.map(|p| w.workers[p].clone());
            w.workers[*child]
                .set_parent(parent.as_deref())
                .await
                .unwrap();
            "ok".into()
        }
    }
}

/// Makes an attempt by `worker` on the unit named `unit` of spec `s`.
pub async fn make_attempt(w: &mut World, worker: usize, unit: &str, lifetime: Duration) -> String {
    match w.spec.work_unit(unit).await {
        Ok(unit) => match w.workers[worker].make_attempt(&*unit, lifetime).await {
            Ok(a) => {
                w.attempts.push(a);
                "ok".into()
            }
            Err(e) => kind::<()>(&Err(e)),
        },
        Err(e) => kind::<()>(&Err(e)),
    }
}
