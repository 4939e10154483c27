//! (a) Transparency: with nothing changed behind its back, the cache answers
//! exactly what the plain backend answers.

use coordinate::cache::Cache;
use coordinate::memory::MemoryBackend;
use coordinate::{
    data, AttemptRef, AttemptRequest, Backend, BackendExt, Duration, Error, MockClock, WorkUnitMeta,
};
use proptest::prelude::*;

use crate::names::{query, Query, NAMESPACES, SPECS, UNITS, WORKERS};
use crate::{block_on, config};

/// One operation, addressed by names (indexes into small pools, so names
/// collide and get deleted and recreated often).
#[derive(Debug, Clone)]
enum Step {
    SetSpec {
        ns: usize,
        spec: usize,
        priority: i8,
    },
    DestroySpec {
        ns: usize,
        spec: usize,
    },
    DestroyNamespace {
        ns: usize,
    },
    AddUnit {
        ns: usize,
        spec: usize,
        unit: usize,
        priority: i8,
    },
    DeleteUnits {
        ns: usize,
        spec: usize,
        query: Query,
    },
    UnitStatus {
        ns: usize,
        spec: usize,
        unit: usize,
    },
    UnitData {
        ns: usize,
        spec: usize,
        unit: usize,
    },
    SetUnitPriority {
        ns: usize,
        spec: usize,
        unit: usize,
        priority: i8,
    },
    ListUnits {
        ns: usize,
        spec: usize,
        query: Query,
    },
    CountStatus {
        ns: usize,
        spec: usize,
    },
    SpecNames {
        ns: usize,
    },
    Namespaces,
    WorkerActive {
        ns: usize,
        worker: usize,
    },
    SetParent {
        ns: usize,
        child: usize,
        parent: Option<usize>,
    },
    Children {
        ns: usize,
        worker: usize,
    },
    Request {
        ns: usize,
        worker: usize,
        n: i8,
    },
    MakeAttempt {
        ns: usize,
        worker: usize,
        spec: usize,
        unit: usize,
    },
    WorkerAttempts {
        ns: usize,
        worker: usize,
    },
    Finish {
        attempt: usize,
    },
    Retry {
        attempt: usize,
    },
    Expire {
        attempt: usize,
    },
    AttemptStatus {
        attempt: usize,
    },
    Advance {
        seconds: u16,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let ns = 0..NAMESPACES.len();
    let spec = 0..SPECS.len();
    let unit = 0..UNITS.len();
    let worker = 0..WORKERS.len();
    prop_oneof![
        3 => (ns.clone(), spec.clone(), any::<i8>())
            .prop_map(|(ns, spec, priority)| Step::SetSpec { ns, spec, priority }),
        1 => (ns.clone(), spec.clone()).prop_map(|(ns, spec)| Step::DestroySpec { ns, spec }),
        1 => ns.clone().prop_map(|ns| Step::DestroyNamespace { ns }),
        4 => (ns.clone(), spec.clone(), unit.clone(), any::<i8>())
            .prop_map(|(ns, spec, unit, priority)| Step::AddUnit { ns, spec, unit, priority }),
        2 => (ns.clone(), spec.clone(), query())
            .prop_map(|(ns, spec, query)| Step::DeleteUnits { ns, spec, query }),
        3 => (ns.clone(), spec.clone(), unit.clone())
            .prop_map(|(ns, spec, unit)| Step::UnitStatus { ns, spec, unit }),
        2 => (ns.clone(), spec.clone(), unit.clone())
            .prop_map(|(ns, spec, unit)| Step::UnitData { ns, spec, unit }),
        1 => (ns.clone(), spec.clone(), unit.clone(), any::<i8>())
            .prop_map(|(ns, spec, unit, priority)| Step::SetUnitPriority { ns, spec, unit, priority }),
        2 => (ns.clone(), spec.clone(), query())
            .prop_map(|(ns, spec, query)| Step::ListUnits { ns, spec, query }),
        1 => (ns.clone(), spec.clone()).prop_map(|(ns, spec)| Step::CountStatus { ns, spec }),
        1 => ns.clone().prop_map(|ns| Step::SpecNames { ns }),
        1 => Just(Step::Namespaces),
        1 => (ns.clone(), worker.clone()).prop_map(|(ns, worker)| Step::WorkerActive { ns, worker }),
        1 => (ns.clone(), worker.clone(), prop::option::of(worker.clone()))
            .prop_map(|(ns, child, parent)| Step::SetParent { ns, child, parent }),
        1 => (ns.clone(), worker.clone()).prop_map(|(ns, worker)| Step::Children { ns, worker }),
        3 => (ns.clone(), worker.clone(), 1i8..3)
            .prop_map(|(ns, worker, n)| Step::Request { ns, worker, n }),
        1 => (ns.clone(), worker.clone(), spec.clone(), unit.clone())
            .prop_map(|(ns, worker, spec, unit)| Step::MakeAttempt { ns, worker, spec, unit }),
        1 => (ns, worker).prop_map(|(ns, worker)| Step::WorkerAttempts { ns, worker }),
        2 => any::<usize>().prop_map(|attempt| Step::Finish { attempt }),
        1 => any::<usize>().prop_map(|attempt| Step::Retry { attempt }),
        1 => any::<usize>().prop_map(|attempt| Step::Expire { attempt }),
        1 => any::<usize>().prop_map(|attempt| Step::AttemptStatus { attempt }),
        1 => (0u16..2000).prop_map(|seconds| Step::Advance { seconds }),
    ]
}

/// One side of the differential test: a backend, its clock, its attempts.
struct Side<B> {
    backend: B,
    clock: MockClock,
    attempts: Vec<AttemptRef>,
}

fn names<T>(map: &std::collections::BTreeMap<String, T>) -> String {
    format!("{:?}", map.keys().collect::<Vec<_>>())
}

/// Applies `step` with fresh lookups by name and renders the outcome; the
/// same code runs on both sides.
async fn apply<B: Backend>(side: &mut Side<B>, step: &Step) -> Result<String, Error> {
    let b = &side.backend;
    let attempt = |i: usize, attempts: &[AttemptRef]| -> Option<AttemptRef> {
        (!attempts.is_empty()).then(|| attempts[i % attempts.len()].clone())
    };
    Ok(match step {
        Step::SetSpec { ns, spec, priority } => {
            let def = data!({"name": SPECS[*spec], "priority": *priority});
            let s = b
                .namespace(NAMESPACES[*ns])
                .await?
                .set_work_spec(def)
                .await?;
            s.name().to_string()
        }
        Step::DestroySpec { ns, spec } => {
            b.namespace(NAMESPACES[*ns])
                .await?
                .destroy_work_spec(SPECS[*spec])
                .await?;
            String::new()
        }
        Step::DestroyNamespace { ns } => {
            b.namespace(NAMESPACES[*ns]).await?.destroy().await?;
            String::new()
        }
        Step::AddUnit {
            ns,
            spec,
            unit,
            priority,
        } => {
            let s = b.work_spec_at(NAMESPACES[*ns], SPECS[*spec]).await?;
            let meta = WorkUnitMeta::with_priority(f64::from(*priority));
            let u = s
                .add_work_unit(UNITS[*unit], data!({"p": *priority}), meta)
                .await?;
            format!("{}/{}", u.work_spec().name(), u.name())
        }
        Step::DeleteUnits { ns, spec, query } => {
            let s = b.work_spec_at(NAMESPACES[*ns], SPECS[*spec]).await?;
            s.delete_work_units(&query.build()).await?.to_string()
        }
        Step::UnitStatus { ns, spec, unit } => {
            let u = b
                .work_unit_at(NAMESPACES[*ns], SPECS[*spec], UNITS[*unit])
                .await?;
            format!("{:?}", u.status().await?)
        }
        Step::UnitData { ns, spec, unit } => {
            let u = b
                .work_unit_at(NAMESPACES[*ns], SPECS[*spec], UNITS[*unit])
                .await?;
            format!("{:?}", u.data().await?)
        }
        Step::SetUnitPriority {
            ns,
            spec,
            unit,
            priority,
        } => {
            let u = b
                .work_unit_at(NAMESPACES[*ns], SPECS[*spec], UNITS[*unit])
                .await?;
            u.set_priority(f64::from(*priority)).await?;
            u.priority().await?.to_string()
        }
        Step::ListUnits { ns, spec, query } => {
            let s = b.work_spec_at(NAMESPACES[*ns], SPECS[*spec]).await?;
            let units = s.work_units(&query.build()).await?;
            let mut out = names(&units);
            for u in units.values() {
                out.push_str(&format!(" {:?}", u.status().await?));
            }
            out
        }
        Step::CountStatus { ns, spec } => {
            let s = b.work_spec_at(NAMESPACES[*ns], SPECS[*spec]).await?;
            format!("{:?}", s.count_work_unit_status().await?)
        }
        Step::SpecNames { ns } => {
            let mut all = b
                .namespace(NAMESPACES[*ns])
                .await?
                .work_spec_names()
                .await?;
            all.sort();
            format!("{all:?}")
        }
        Step::Namespaces => names(&b.namespaces().await?),
        Step::WorkerActive { ns, worker } => {
            let w = b.worker_at(NAMESPACES[*ns], WORKERS[*worker]).await?;
            w.active().await?.to_string()
        }
        Step::SetParent { ns, child, parent } => {
            let n = b.namespace(NAMESPACES[*ns]).await?;
            let c = n.worker(WORKERS[*child]).await?;
            match parent {
                Some(p) => {
                    let p = n.worker(WORKERS[*p]).await?;
                    c.set_parent(Some(&p)).await?;
                }
                None => c.set_parent(None).await?,
            }
            let p = c.parent().await?;
            format!("{:?}", p.map(|p| p.name().to_string()))
        }
        Step::Children { ns, worker } => {
            let w = b.worker_at(NAMESPACES[*ns], WORKERS[*worker]).await?;
            let mut all: Vec<String> = w
                .children()
                .await?
                .iter()
                .map(|c| c.name().to_string())
                .collect();
            all.sort();
            format!("{all:?}")
        }
        Step::Request { ns, worker, n } => {
            let w = b.worker_at(NAMESPACES[*ns], WORKERS[*worker]).await?;
            let got = w
                .request_attempts(&AttemptRequest::units(i64::from(*n)))
                .await?;
            let out = got
                .iter()
                .map(|a| {
                    format!(
                        "{}/{}",
                        a.work_unit().work_spec().name(),
                        a.work_unit().name()
                    )
                })
                .collect::<Vec<_>>()
                .join(",");
            side.attempts.extend(got);
            out
        }
        Step::MakeAttempt {
            ns,
            worker,
            spec,
            unit,
        } => {
            let w = b.worker_at(NAMESPACES[*ns], WORKERS[*worker]).await?;
            let u = b
                .work_unit_at(NAMESPACES[*ns], SPECS[*spec], UNITS[*unit])
                .await?;
            let a = w.make_attempt(&u, Duration::zero()).await?;
            let out = format!("{:?} {}", a.status().await?, a.worker().name());
            side.attempts.push(a);
            out
        }
        Step::WorkerAttempts { ns, worker } => {
            let w = b.worker_at(NAMESPACES[*ns], WORKERS[*worker]).await?;
            let active: Vec<String> = w
                .active_attempts()
                .await?
                .iter()
                .map(|a| a.work_unit().name().to_string())
                .collect();
            let all = w.all_attempts().await?.len();
            format!("{active:?} {all}")
        }
        Step::Finish { attempt: i } | Step::Retry { attempt: i } | Step::Expire { attempt: i } => {
            match attempt(*i, &side.attempts) {
                Some(a) => {
                    match step {
                        Step::Finish { .. } => a.finish(None).await?,
                        Step::Retry { .. } => a.retry(None, Duration::zero()).await?,
                        _ => a.expire(None).await?,
                    }
                    String::new()
                }
                None => "none".into(),
            }
        }
        Step::AttemptStatus { attempt: i } => match attempt(*i, &side.attempts) {
            Some(a) => format!(
                "{:?} {} {}",
                a.status().await?,
                a.work_unit().name(),
                a.worker().name()
            ),
            None => "none".into(),
        },
        Step::Advance { seconds } => {
            side.clock.advance(Duration::seconds(i64::from(*seconds)));
            String::new()
        }
    })
}

fn side_plain() -> Side<MemoryBackend> {
    let clock = MockClock::new();
    Side {
        backend: MemoryBackend::with_clock(clock.clone()),
        clock,
        attempts: Vec::new(),
    }
}

fn side_cached(capacity: u64) -> Side<Cache<MemoryBackend>> {
    let clock = MockClock::new();
    let cache = Cache::builder()
        .namespaces(capacity)
        .work_specs(capacity)
        .work_units(capacity)
        .workers(capacity)
        .build(MemoryBackend::with_clock(clock.clone()));
    Side {
        backend: cache,
        clock,
        attempts: Vec::new(),
    }
}

proptest! {
    #![proptest_config(config())]

    /// **(a) Transparency.** With no change behind the cache's back, any
    /// sequence of operations — lookups, upserts, deletes of every kind,
    /// requests, attempt state changes, clock moves — gives the same result,
    /// value or error, through `Cache<MemoryBackend>` as on a plain
    /// `MemoryBackend`, whatever the capacity (including capacities so small
    /// that entries are evicted all the time).
    #[test]
    fn a_transparency(
        steps in prop::collection::vec(step(), 1..40),
        capacity in prop_oneof![Just(1u64), Just(4), Just(10_000)],
    ) {
        block_on(async {
            let mut plain = side_plain();
            let mut cached = side_cached(capacity);
            for (i, step) in steps.iter().enumerate() {
                let want = apply(&mut plain, step).await;
                let got = apply(&mut cached, step).await;
                prop_assert_eq!(&got, &want, "step {} {:?}", i, step);
            }
            Ok(())
        })?;
    }
}
