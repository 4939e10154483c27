//! The laws of `Cache`, as property tests.
//!
//! Each property states its law in its doc comment. Every property runs 256
//! cases from a fixed seed (so CI is deterministic) and shrinks a failure to
//! a short, readable sequence of named operations.
//!
//! Vocabulary: a *cached handle* is one obtained through the cache; the
//! *plain backend* is the same `MemoryBackend` used directly; a change
//! *behind the cache's back* is one made on the plain backend.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use coordinate::cache::Cache;
use coordinate::instrumented::{Instrumented, Op};
use coordinate::memory::MemoryBackend;
use coordinate::{
    data, AttemptRef, AttemptRequest, Backend, BackendExt, Duration, Error, MockClock,
    WorkUnitMeta, WorkUnitQuery, WorkUnitStatus,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError};

type Fallible = Result<(), TestCaseError>;

fn config() -> Config {
    Config {
        cases: 256,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0xCAC4E),
        failure_persistence: None,
        ..Config::default()
    }
}

fn block_on<F: std::future::Future<Output = Fallible>>(f: F) -> Fallible {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| TestCaseError::fail(e.to_string()))?
        .block_on(f)
}

/// Turns a setup failure into a test failure.
fn ok<T>(r: coordinate::Result<T>) -> Result<T, TestCaseError> {
    r.map_err(|e| TestCaseError::fail(format!("unexpected error: {e:?}")))
}

// ---------------------------------------------------------------------------
// (a) transparency

const NAMESPACES: &[&str] = &["n0", "n1"];
const SPECS: &[&str] = &["s0", "s1"];
const UNITS: &[&str] = &["u0", "u1", "u2"];
const WORKERS: &[&str] = &["w0", "w1"];

/// A query, by shape.
#[derive(Debug, Clone)]
enum Query {
    All,
    Names(Vec<usize>),
    Status(WorkUnitStatus),
    Limit(i64),
}

impl Query {
    fn build(&self) -> WorkUnitQuery {
        match self {
            Query::All => WorkUnitQuery::all(),
            Query::Names(ns) => WorkUnitQuery::names(ns.iter().map(|i| UNITS[*i])),
            Query::Status(s) => WorkUnitQuery::statuses([*s]),
            Query::Limit(l) => WorkUnitQuery {
                limit: *l,
                ..WorkUnitQuery::all()
            },
        }
    }
}

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

fn query() -> impl Strategy<Value = Query> {
    prop_oneof![
        Just(Query::All),
        prop::collection::vec(0..UNITS.len(), 1..3).prop_map(Query::Names),
        prop_oneof![
            Just(WorkUnitStatus::Available),
            Just(WorkUnitStatus::Pending),
            Just(WorkUnitStatus::Finished),
        ]
        .prop_map(Query::Status),
        (1i64..3).prop_map(Query::Limit),
    ]
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
        Step::Finish { attempt: i } => match attempt(*i, &side.attempts) {
            Some(a) => {
                a.finish(None).await?;
                String::new()
            }
            None => "none".into(),
        },
        Step::Retry { attempt: i } => match attempt(*i, &side.attempts) {
            Some(a) => {
                a.retry(None, Duration::zero()).await?;
                String::new()
            }
            None => "none".into(),
        },
        Step::Expire { attempt: i } => match attempt(*i, &side.attempts) {
            Some(a) => {
                a.expire(None).await?;
                String::new()
            }
            None => "none".into(),
        },
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

// ---------------------------------------------------------------------------
// (b), (c): recreated and deleted names

/// The kind of handle a name-identity property is about.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Namespace,
    Spec,
    Unit,
    Worker,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Namespace),
        Just(Kind::Spec),
        Just(Kind::Unit),
        Just(Kind::Worker)
    ]
}

/// Where a delete or a re-creation happens.
#[derive(Debug, Clone, Copy)]
enum Route {
    /// Through the cache.
    Cache,
    /// Directly on the inner backend, behind the cache's back.
    Behind,
}

fn route() -> impl Strategy<Value = Route> {
    prop_oneof![Just(Route::Cache), Just(Route::Behind)]
}

/// How a unit is deleted.
#[derive(Debug, Clone, Copy)]
enum UnitDelete {
    All,
    ByName,
    ByStatus,
    DestroySpec,
}

fn unit_delete() -> impl Strategy<Value = UnitDelete> {
    prop_oneof![
        Just(UnitDelete::All),
        Just(UnitDelete::ByName),
        Just(UnitDelete::ByStatus),
        Just(UnitDelete::DestroySpec)
    ]
}

type Counted = Cache<Instrumented<MemoryBackend>>;

/// A cache over a counted memory backend, and the memory backend itself.
fn counted() -> (Counted, MemoryBackend) {
    let memory = MemoryBackend::with_clock(MockClock::new());
    (Cache::new(Instrumented::new(memory.clone())), memory)
}

/// Creates namespace "n", spec "s", unit "u" and worker "w" through `b`,
/// each carrying `version` in its data.
async fn build<B: Backend + ?Sized>(b: &B, version: i64) -> coordinate::Result<()> {
    let ns = b.namespace("n").await?;
    let spec = ns
        .set_work_spec(data!({"name": "s", "version": version}))
        .await?;
    spec.add_work_unit("u", data!({"version": version}), WorkUnitMeta::default())
        .await?;
    let w = ns.worker("w").await?;
    w.update(
        data!({"version": version}),
        coordinate::Time::UNIX_EPOCH,
        coordinate::Time::UNIX_EPOCH,
        "",
    )
    .await
}

/// Deletes the object of `kind` named as in [`build`], through `b`.
async fn delete<B: Backend + ?Sized>(b: &B, kind: Kind, how: UnitDelete) -> coordinate::Result<()> {
    let ns = b.namespace("n").await?;
    match kind {
        // Workers are only ever deleted with their namespace.
        Kind::Namespace | Kind::Worker => ns.destroy().await,
        Kind::Spec => ns.destroy_work_spec("s").await,
        Kind::Unit => {
            let spec = ns.work_spec("s").await?;
            match how {
                UnitDelete::All => spec
                    .delete_work_units(&WorkUnitQuery::all())
                    .await
                    .map(drop),
                UnitDelete::ByName => spec
                    .delete_work_units(&WorkUnitQuery::names(["u"]))
                    .await
                    .map(drop),
                UnitDelete::ByStatus => spec
                    .delete_work_units(&WorkUnitQuery::statuses([WorkUnitStatus::Available]))
                    .await
                    .map(drop),
                UnitDelete::DestroySpec => ns.destroy_work_spec("s").await,
            }
        }
    }
}

/// The `version` the object of `kind` behind `b`'s handles reports, read
/// through one fallible call on `handle`.
async fn read_version(handle: &Handle) -> coordinate::Result<i64> {
    let data = match handle {
        Handle::Namespace(ns) => ns.work_spec("s").await?.data().await?,
        Handle::Spec(s) => s.data().await?,
        Handle::Unit(u) => u.data().await?,
        Handle::Worker(w) => w.data().await?,
    };
    Ok(data.get("version").and_then(|v| v.as_i64()).unwrap_or(-1))
}

/// Every fallible operation of a handle, with harmless arguments; used to
/// check that *all* of them answer alike.
async fn every_operation(handle: &Handle) -> Vec<(&'static str, Result<(), Error>)> {
    let mut out = Vec::new();
    match handle {
        Handle::Namespace(ns) => {
            out.push(("work_spec_names", ns.work_spec_names().await.map(drop)));
            out.push(("workers", ns.workers().await.map(drop)));
            out.push(("summarize", ns.summarize().await.map(drop)));
            out.push(("work_spec", ns.work_spec("s").await.map(drop)));
        }
        Handle::Spec(s) => {
            out.push(("data", s.data().await.map(drop)));
            out.push(("meta", s.meta(true).await.map(drop)));
            out.push(("work_unit", s.work_unit("u").await.map(drop)));
            out.push((
                "work_units",
                s.work_units(&WorkUnitQuery::all()).await.map(drop),
            ));
            out.push(("count", s.count_work_unit_status().await.map(drop)));
            out.push(("summarize", s.summarize().await.map(drop)));
            out.push((
                "set_priorities",
                s.set_work_unit_priorities(&WorkUnitQuery::all(), 1.0).await,
            ));
        }
        Handle::Unit(u) => {
            out.push(("data", u.data().await.map(drop)));
            out.push(("status", u.status().await.map(drop)));
            out.push(("meta", u.meta().await.map(drop)));
            out.push(("priority", u.priority().await.map(drop)));
            out.push(("set_priority", u.set_priority(2.0).await));
            out.push(("active_attempt", u.active_attempt().await.map(drop)));
            out.push(("attempts", u.attempts().await.map(drop)));
            out.push(("num_attempts", u.num_attempts().await.map(drop)));
        }
        Handle::Worker(w) => {
            out.push(("active", w.active().await.map(drop)));
            out.push(("mode", w.mode().await.map(drop)));
            out.push(("data", w.data().await.map(drop)));
            out.push(("parent", w.parent().await.map(drop)));
            out.push(("children", w.children().await.map(drop)));
            out.push(("active_attempts", w.active_attempts().await.map(drop)));
        }
    }
    out
}

/// A handle of any kind.
enum Handle {
    Namespace(coordinate::NamespaceRef),
    Spec(coordinate::WorkSpecRef),
    Unit(coordinate::WorkUnitRef),
    Worker(coordinate::WorkerRef),
}

async fn handle<B: Backend + ?Sized>(b: &B, kind: Kind) -> coordinate::Result<Handle> {
    Ok(match kind {
        Kind::Namespace => Handle::Namespace(b.namespace("n").await?),
        Kind::Spec => Handle::Spec(b.work_spec_at("n", "s").await?),
        Kind::Unit => Handle::Unit(b.work_unit_at("n", "s", "u").await?),
        Kind::Worker => Handle::Worker(b.worker_at("n", "w").await?),
    })
}

proptest! {
    #![proptest_config(config())]

    /// **(b) Recreated name.** Take a cached handle and a plain handle to
    /// the same namespace, spec, unit or worker. Delete the object (through
    /// the cache or behind its back, for units by any kind of query or with
    /// their spec) and create a new one under the same name (again either
    /// way). Then the cached handle acts on the new object — its reads see
    /// the new object's data and none of its operations answers `Gone` —
    /// while the plain handle answers `Gone`.
    #[test]
    fn b_recreated_name_follows_the_new_object(
        kind in kind(),
        deleted in route(),
        recreated in route(),
        how in unit_delete(),
        lookups_before in 0usize..3,
    ) {
        block_on(async {
            let (cache, memory) = counted();
            ok(build(&cache, 1).await)?;
            let cached = ok(handle(&cache, kind).await)?;
            let plain = ok(handle(&memory, kind).await)?;
            for _ in 0..lookups_before {
                ok(handle(&cache, kind).await)?;
            }
            match deleted {
                Route::Cache => ok(delete(&cache, kind, how).await)?,
                Route::Behind => ok(delete(&memory, kind, how).await)?,
            }
            match recreated {
                Route::Cache => ok(build(&cache, 2).await)?,
                Route::Behind => ok(build(&memory, 2).await)?,
            }
            prop_assert_eq!(ok(read_version(&cached).await)?, 2);
            for (op, result) in every_operation(&cached).await {
                prop_assert!(result.is_ok(), "cached {} answered {:?}", op, result);
            }
            prop_assert_eq!(read_version(&plain).await.err(), Some(Error::Gone));
            // The cache did not create anything on its own: exactly one of each.
            let names = ok(ok(memory.namespace("n").await)?.work_spec_names().await)?;
            prop_assert_eq!(names, vec!["s".to_string()]);
            Ok(())
        })?;
    }

    /// **(c) Deleted name.** Delete a spec, unit or worker (through the
    /// cache or behind its back) and do not recreate it. Then every fallible
    /// operation of the cached handle answers `Gone`, lookups of the name
    /// answer `NoSuchWorkSpec` / `NoSuchWorkUnit`, and the entry is evicted:
    /// the next lookup reaches the backend. Recovery creates nothing: a
    /// cached spec, unit or worker whose namespace was destroyed does not
    /// bring the namespace back, and a worker is not recreated either.
    ///
    /// A namespace follows the spec's get-or-create rule instead: a cached
    /// namespace handle stands for `namespace(name)`, so after its namespace
    /// is destroyed its operations act on a new, empty namespace of that
    /// name — exactly what a fresh `namespace(name)` would give — and never
    /// answer `Gone` (its `destroy` stays the spec's no-op).
    #[test]
    fn c_deleted_name_answers_gone(
        kind in kind(),
        deleted in route(),
        how in unit_delete(),
    ) {
        block_on(async {
            let (cache, memory) = counted();
            ok(build(&cache, 1).await)?;
            let cached = ok(handle(&cache, kind).await)?;
            match deleted {
                Route::Cache => ok(delete(&cache, kind, how).await)?,
                Route::Behind => ok(delete(&memory, kind, how).await)?,
            }
            for (op, result) in every_operation(&cached).await {
                match (kind, op) {
                    (Kind::Namespace, "work_spec") => prop_assert_eq!(
                        result.err(),
                        Some(Error::NoSuchWorkSpec { name: "s".into() })
                    ),
                    (Kind::Namespace, _) => prop_assert!(result.is_ok(), "cached {} {:?}", op, result),
                    _ => prop_assert_eq!(result.err(), Some(Error::Gone), "cached {}", op),
                }
            }
            if let Handle::Namespace(ns) = &cached {
                prop_assert!(ok(ns.work_spec_names().await)?.is_empty());
                prop_assert!(ok(ns.workers().await)?.is_empty());
            }
            let listed = ok(memory.namespaces().await)?;
            prop_assert_eq!(listed.contains_key("n"), !matches!(kind, Kind::Worker));
            let namespace_gone = matches!(kind, Kind::Namespace | Kind::Worker)
                || matches!((kind, how), (Kind::Unit, UnitDelete::DestroySpec));
            // The entry is gone: lookups reach the backend and answer NoSuch….
            let before = cache.get_ref().calls();
            match kind {
                Kind::Spec => {
                    let ns = ok(cache.namespace("n").await)?;
                    prop_assert_eq!(
                        ns.work_spec("s").await.err(),
                        Some(Error::NoSuchWorkSpec { name: "s".into() })
                    );
                    prop_assert_eq!(cache.get_ref().calls().get(Op::WorkSpec), before.get(Op::WorkSpec) + 1);
                }
                Kind::Unit => {
                    if namespace_gone {
                        prop_assert_eq!(
                            cache.work_unit_at("n", "s", "u").await.err(),
                            Some(Error::NoSuchWorkSpec { name: "s".into() })
                        );
                    } else {
                        prop_assert_eq!(
                            cache.work_unit_at("n", "s", "u").await.err(),
                            Some(Error::NoSuchWorkUnit { name: "u".into() })
                        );
                        prop_assert_eq!(cache.get_ref().calls().get(Op::WorkUnit), before.get(Op::WorkUnit) + 1);
                    }
                }
                Kind::Namespace | Kind::Worker => {
                    // Get-or-create: a new, empty namespace. (For a namespace
                    // handle, its own operations above already recreated it.)
                    let ns = ok(cache.namespace("n").await)?;
                    if matches!(kind, Kind::Worker) {
                        prop_assert_eq!(cache.get_ref().calls().get(Op::Namespace), before.get(Op::Namespace) + 1);
                    }
                    prop_assert!(ok(ns.work_spec_names().await)?.is_empty());
                    prop_assert!(ok(ns.workers().await)?.is_empty());
                    if let Handle::Worker(w) = &cached {
                        // The namespace is back but the worker is not: still Gone,
                        // and the old handle did not create it.
                        prop_assert_eq!(w.active().await.err(), Some(Error::Gone));
                        prop_assert!(ok(ns.workers().await)?.is_empty());
                    }
                }
            }
            Ok(())
        })?;
    }
}

// ---------------------------------------------------------------------------
// (d) identity

/// An identity step on one of a few units (and their spec and worker).
#[derive(Debug, Clone)]
enum IdStep {
    /// Looks the unit up and checks identity against the last lookup.
    Lookup(usize),
    /// Deletes the unit through the cache and adds it again.
    Recreate(usize),
    /// Re-adds (upserts) the unit: same object, same handle.
    Upsert(usize),
    /// Looks the spec up.
    LookupSpec,
    /// Destroys the spec through the cache and recreates it with all units.
    RecreateSpec,
    /// Looks a worker up.
    LookupWorker(usize),
}

fn id_step() -> impl Strategy<Value = IdStep> {
    prop_oneof![
        4 => (0..UNITS.len()).prop_map(IdStep::Lookup),
        2 => (0..UNITS.len()).prop_map(IdStep::Recreate),
        1 => (0..UNITS.len()).prop_map(IdStep::Upsert),
        2 => Just(IdStep::LookupSpec),
        1 => Just(IdStep::RecreateSpec),
        2 => (0..WORKERS.len()).prop_map(IdStep::LookupWorker),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// **(d) Identity.** While an entry stays cached, every lookup of its
    /// name returns the very same handle (`Arc::ptr_eq`), including handles
    /// returned by upserts; after it is invalidated by a delete through the
    /// cache, the next lookup returns a fresh handle.
    #[test]
    fn d_identity(steps in prop::collection::vec(id_step(), 1..40)) {
        block_on(async {
            let cache = Cache::new(MemoryBackend::with_clock(MockClock::new()));
            let ns = ok(cache.namespace("n").await)?;
            let spec = ok(ns.set_work_spec(data!({"name": "s"})).await)?;
            let mut units = Vec::new();
            for name in UNITS {
                units.push(ok(spec.add_work_unit(name, data!({}), WorkUnitMeta::default()).await)?);
            }
            let mut spec = spec;
            let mut workers = Vec::new();
            for name in WORKERS {
                workers.push(ok(ns.worker(name).await)?);
            }
            for step in &steps {
                match step {
                    IdStep::Lookup(i) => {
                        let u = ok(spec.work_unit(UNITS[*i]).await)?;
                        prop_assert!(Arc::ptr_eq(&u, &units[*i]), "{:?}", step);
                        let again = ok(cache.work_unit_at("n", "s", UNITS[*i]).await)?;
                        prop_assert!(Arc::ptr_eq(&again, &u));
                    }
                    IdStep::Upsert(i) => {
                        let u = ok(spec.add_work_unit(UNITS[*i], data!({}), WorkUnitMeta::default()).await)?;
                        prop_assert!(Arc::ptr_eq(&u, &units[*i]), "{:?}", step);
                    }
                    IdStep::Recreate(i) => {
                        ok(spec.delete_work_units(&WorkUnitQuery::names([UNITS[*i]])).await)?;
                        let u = ok(spec.add_work_unit(UNITS[*i], data!({}), WorkUnitMeta::default()).await)?;
                        prop_assert!(!Arc::ptr_eq(&u, &units[*i]), "{:?}", step);
                        units[*i] = u;
                    }
                    IdStep::LookupSpec => {
                        let s = ok(ns.work_spec("s").await)?;
                        prop_assert!(Arc::ptr_eq(&s, &spec), "{:?}", step);
                    }
                    IdStep::RecreateSpec => {
                        ok(ns.destroy_work_spec("s").await)?;
                        let s = ok(ns.set_work_spec(data!({"name": "s"})).await)?;
                        prop_assert!(!Arc::ptr_eq(&s, &spec), "{:?}", step);
                        spec = s;
                        for (i, name) in UNITS.iter().enumerate() {
                            let u = ok(spec.add_work_unit(name, data!({}), WorkUnitMeta::default()).await)?;
                            prop_assert!(!Arc::ptr_eq(&u, &units[i]));
                            units[i] = u;
                        }
                    }
                    IdStep::LookupWorker(i) => {
                        let w = ok(ns.worker(WORKERS[*i]).await)?;
                        prop_assert!(Arc::ptr_eq(&w, &workers[*i]), "{:?}", step);
                    }
                }
            }
            Ok(())
        })?;
    }
}

// ---------------------------------------------------------------------------
// (e) coalescing, (f) bound

proptest! {
    #![proptest_config(config())]

    /// **(e) Coalescing.** N concurrent lookups of one name that is not
    /// cached — a namespace, spec, unit or worker, existing or (for specs
    /// and units) absent — make exactly one backend lookup; all callers get
    /// the same handle, or the same `NoSuch…` error.
    #[test]
    fn e_coalescing(kind in kind(), tasks in 2usize..48, exists in any::<bool>()) {
        // One thread: every task reaches the lookup before the load's timer
        // can fire, whatever the machine's load (a second worker thread could
        // be descheduled past the latency and start a second, later load).
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        rt.block_on(async {
            let memory = MemoryBackend::with_clock(MockClock::new());
            ok(build(&memory, 1).await)?;
            let n = ok(memory.namespace("n").await)?;
            ok(n.set_work_spec(data!({"name": "sx"})).await)?;
            ok(ok(n.work_spec("s").await)?.add_work_unit("ux", data!({}), WorkUnitMeta::default()).await)?;
            // Namespaces and workers are get-or-create: a new name is created once.
            let (exists, name) = match kind {
                Kind::Namespace | Kind::Worker => (true, "new"),
                _ if exists => (true, "x"),
                _ => (false, "absent"),
            };
            let cache = Arc::new(Cache::new(Instrumented::with_lookup_latency(
                memory,
                StdDuration::from_millis(20),
            )));
            // Parents are cached first; only the last step misses.
            let ns = ok(cache.namespace("n").await)?;
            let spec = ok(ns.work_spec("s").await)?;
            cache.get_ref().reset();
            let barrier = Arc::new(tokio::sync::Barrier::new(tasks));
            let mut joins = Vec::new();
            for _ in 0..tasks {
                let (cache, ns, spec, barrier) = (cache.clone(), ns.clone(), spec.clone(), barrier.clone());
                joins.push(tokio::spawn(async move {
                    barrier.wait().await;
                    let ptr = |p: *const ()| p as usize;
                    match kind {
                        Kind::Namespace => cache.namespace(&format!("n{name}")).await.map(|h| ptr(Arc::as_ptr(&h).cast())),
                        Kind::Spec => ns.work_spec(&format!("s{name}")).await.map(|h| ptr(Arc::as_ptr(&h).cast())),
                        Kind::Unit => spec.work_unit(&format!("u{name}")).await.map(|h| ptr(Arc::as_ptr(&h).cast())),
                        Kind::Worker => ns.worker(&format!("w{name}")).await.map(|h| ptr(Arc::as_ptr(&h).cast())),
                    }
                }));
            }
            let mut results = Vec::new();
            for j in joins {
                results.push(j.await.map_err(|e| TestCaseError::fail(e.to_string()))?);
            }
            for r in &results {
                prop_assert_eq!(r, &results[0]);
            }
            prop_assert_eq!(results[0].is_ok(), exists);
            let op = match kind {
                Kind::Namespace => Op::Namespace,
                Kind::Spec => Op::WorkSpec,
                Kind::Unit => Op::WorkUnit,
                Kind::Worker => Op::Worker,
            };
            prop_assert_eq!(cache.get_ref().calls().get(op), 1, "{:?}", cache.get_ref().calls());
            prop_assert_eq!(cache.get_ref().calls().total(), 1);
            Ok(())
        })?;
    }

    /// **(f) Bound.** However many names are looked up or created — far
    /// more than the capacity — the number of cached entries of each kind
    /// stays within its capacity (once moka's pending maintenance has run).
    #[test]
    fn f_bound(capacity in 1u64..48, factor in 3u64..20) {
        block_on(async {
            let cache = Cache::builder()
                .work_units(capacity)
                .workers(capacity)
                .work_specs(capacity)
                .build(MemoryBackend::with_clock(MockClock::new()));
            let ns = ok(cache.namespace("n").await)?;
            let spec = ok(ns.set_work_spec(data!({"name": "s"})).await)?;
            let count = capacity * factor;
            for i in 0..count {
                let name = format!("x{i}");
                ok(spec.add_work_unit(&name, data!({}), WorkUnitMeta::default()).await)?;
                ok(spec.work_unit(&name).await)?;
                ok(ns.worker(&name).await)?;
                if i % 4 == 0 {
                    ok(ns.set_work_spec(data!({"name": name})).await)?;
                }
            }
            cache.run_pending_tasks().await;
            let stats = cache.stats();
            prop_assert!(stats.work_units.entries <= capacity, "{:?}", stats.work_units);
            prop_assert!(stats.workers.entries <= capacity, "{:?}", stats.workers);
            prop_assert!(stats.work_specs.entries <= capacity, "{:?}", stats.work_specs);
            // The size bound, not luck, kept them there.
            prop_assert!(stats.work_units.evictions > 0, "{:?}", stats.work_units);
            prop_assert!(stats.workers.evictions > 0, "{:?}", stats.workers);
            // Evicted handles were not lost: every unit is still reachable.
            prop_assert_eq!(ok(spec.work_units(&WorkUnitQuery::all()).await)?.len() as u64, count);
            Ok(())
        })?;
    }
}

// ---------------------------------------------------------------------------
// (b, c) under random interleavings: held handles follow their names

/// A name path a held handle can be about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    Namespace(usize),
    Spec(usize, usize),
    Unit(usize, usize, usize),
    Worker(usize, usize),
}

/// A change, made through the cache or behind its back.
#[derive(Debug, Clone)]
enum Change {
    SetSpec {
        ns: usize,
        spec: usize,
        version: i8,
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
        version: i8,
    },
    DeleteUnits {
        ns: usize,
        spec: usize,
        query: Query,
    },
    Worker {
        ns: usize,
        worker: usize,
        version: i8,
    },
}

#[derive(Debug, Clone)]
enum HeldStep {
    /// Applies a change, through the cache or behind its back.
    Change(Route, Change),
    /// Looks the target up through the cache and keeps the handle.
    Acquire(Target),
    /// Uses the kept handle and compares with a fresh resolution by name.
    Use(Target),
}

fn target() -> impl Strategy<Value = Target> {
    let ns = 0..NAMESPACES.len();
    let spec = 0..SPECS.len();
    let unit = 0..UNITS.len();
    let worker = 0..WORKERS.len();
    prop_oneof![
        ns.clone().prop_map(Target::Namespace),
        (ns.clone(), spec.clone()).prop_map(|(n, s)| Target::Spec(n, s)),
        (ns.clone(), spec, unit).prop_map(|(n, s, u)| Target::Unit(n, s, u)),
        (ns, worker).prop_map(|(n, w)| Target::Worker(n, w)),
    ]
}

fn change() -> impl Strategy<Value = Change> {
    let ns = 0..NAMESPACES.len();
    let spec = 0..SPECS.len();
    let unit = 0..UNITS.len();
    let worker = 0..WORKERS.len();
    prop_oneof![
        3 => (ns.clone(), spec.clone(), any::<i8>())
            .prop_map(|(ns, spec, version)| Change::SetSpec { ns, spec, version }),
        1 => (ns.clone(), spec.clone()).prop_map(|(ns, spec)| Change::DestroySpec { ns, spec }),
        1 => ns.clone().prop_map(|ns| Change::DestroyNamespace { ns }),
        3 => (ns.clone(), spec.clone(), unit, any::<i8>())
            .prop_map(|(ns, spec, unit, version)| Change::AddUnit { ns, spec, unit, version }),
        2 => (ns.clone(), spec, query())
            .prop_map(|(ns, spec, query)| Change::DeleteUnits { ns, spec, query }),
        2 => (ns, worker, any::<i8>())
            .prop_map(|(ns, worker, version)| Change::Worker { ns, worker, version }),
    ]
}

fn held_step() -> impl Strategy<Value = HeldStep> {
    prop_oneof![
        4 => (route(), change()).prop_map(|(r, c)| HeldStep::Change(r, c)),
        2 => target().prop_map(HeldStep::Acquire),
        4 => target().prop_map(HeldStep::Use),
    ]
}

/// Applies `change` through `b`; its errors (a missing spec…) do not matter.
async fn apply_change<B: Backend + ?Sized>(b: &B, change: &Change) -> coordinate::Result<()> {
    match change {
        Change::SetSpec { ns, spec, version } => {
            let def = data!({"name": SPECS[*spec], "version": *version});
            b.namespace(NAMESPACES[*ns])
                .await?
                .set_work_spec(def)
                .await?;
        }
        Change::DestroySpec { ns, spec } => {
            b.namespace(NAMESPACES[*ns])
                .await?
                .destroy_work_spec(SPECS[*spec])
                .await?;
        }
        Change::DestroyNamespace { ns } => b.namespace(NAMESPACES[*ns]).await?.destroy().await?,
        Change::AddUnit {
            ns,
            spec,
            unit,
            version,
        } => {
            b.work_spec_at(NAMESPACES[*ns], SPECS[*spec])
                .await?
                .add_work_unit(
                    UNITS[*unit],
                    data!({"version": *version}),
                    WorkUnitMeta::default(),
                )
                .await?;
        }
        Change::DeleteUnits { ns, spec, query } => {
            b.work_spec_at(NAMESPACES[*ns], SPECS[*spec])
                .await?
                .delete_work_units(&query.build())
                .await?;
        }
        Change::Worker {
            ns,
            worker,
            version,
        } => {
            b.worker_at(NAMESPACES[*ns], WORKERS[*worker])
                .await?
                .update(
                    data!({"version": *version}),
                    coordinate::Time::UNIX_EPOCH,
                    coordinate::Time::UNIX_EPOCH,
                    "",
                )
                .await?;
        }
    }
    Ok(())
}

async fn acquire<B: Backend + ?Sized>(b: &B, t: Target) -> coordinate::Result<Handle> {
    Ok(match t {
        Target::Namespace(n) => Handle::Namespace(b.namespace(NAMESPACES[n]).await?),
        Target::Spec(n, s) => Handle::Spec(b.work_spec_at(NAMESPACES[n], SPECS[s]).await?),
        Target::Unit(n, s, u) => {
            Handle::Unit(b.work_unit_at(NAMESPACES[n], SPECS[s], UNITS[u]).await?)
        }
        Target::Worker(n, w) => Handle::Worker(b.worker_at(NAMESPACES[n], WORKERS[w]).await?),
    })
}

/// What a handle's read answers: a namespace's spec names, or the
/// `version` in an object's data.
async fn observe(handle: &Handle) -> Result<String, Error> {
    Ok(match handle {
        Handle::Namespace(ns) => {
            let mut names = ns.work_spec_names().await?;
            names.sort();
            format!("{names:?}")
        }
        Handle::Spec(s) => format!("{:?}", s.data().await?.get("version")),
        Handle::Unit(u) => format!("{:?}", u.data().await?.get("version")),
        Handle::Worker(w) => format!("{:?}", w.data().await?.get("version")),
    })
}

/// The same read on the object that now has the target's name, resolved
/// directly on the backend without creating anything — except a namespace,
/// which is get-or-create.
async fn observe_by_name(memory: &MemoryBackend, t: Target) -> Result<String, Error> {
    let existing_ns = |n: usize| async move {
        memory
            .namespaces()
            .await?
            .remove(NAMESPACES[n])
            .ok_or(Error::Gone)
    };
    let gone = |e: Error| match e {
        Error::NoSuchWorkSpec { .. } | Error::NoSuchWorkUnit { .. } => Error::Gone,
        other => other,
    };
    match t {
        Target::Namespace(n) => {
            observe(&Handle::Namespace(memory.namespace(NAMESPACES[n]).await?)).await
        }
        Target::Spec(n, s) => {
            let spec = existing_ns(n)
                .await?
                .work_spec(SPECS[s])
                .await
                .map_err(gone)?;
            observe(&Handle::Spec(spec)).await
        }
        Target::Unit(n, s, u) => {
            let spec = existing_ns(n)
                .await?
                .work_spec(SPECS[s])
                .await
                .map_err(gone)?;
            let unit = spec.work_unit(UNITS[u]).await.map_err(gone)?;
            observe(&Handle::Unit(unit)).await
        }
        Target::Worker(n, w) => {
            let worker = existing_ns(n)
                .await?
                .workers()
                .await?
                .remove(WORKERS[w])
                .ok_or(Error::Gone)?;
            observe(&Handle::Worker(worker)).await
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// **(b, c) Held handles follow their names, under any interleaving.**
    /// Whatever changes are made — through the cache or behind its back,
    /// deletes of every kind and re-creations, in any order — and however a
    /// cached handle was obtained (even a stale lookup), every read through
    /// it answers exactly what a fresh resolution of its name answers at
    /// that moment: the new object's state after a re-creation, `Gone` when
    /// the name has no object. Namespaces resolve get-or-create. A read
    /// through a spec, unit or worker handle never creates a namespace.
    #[test]
    fn held_handles_follow_their_names(steps in prop::collection::vec(held_step(), 1..50)) {
        block_on(async {
            let memory = MemoryBackend::with_clock(MockClock::new());
            let cache = Cache::new(memory.clone());
            let mut held: std::collections::HashMap<Target, Handle> = Default::default();
            for (i, step) in steps.iter().enumerate() {
                match step {
                    HeldStep::Change(Route::Cache, c) => drop(apply_change(&cache, c).await),
                    HeldStep::Change(Route::Behind, c) => drop(apply_change(&memory, c).await),
                    HeldStep::Acquire(t) => {
                        if let Ok(h) = acquire(&cache, *t).await {
                            held.insert(*t, h);
                        }
                    }
                    HeldStep::Use(t) => {
                        let Some(h) = held.get(t) else { continue };
                        let before: Vec<String> = ok(memory.namespaces().await)?.into_keys().collect();
                        let got = observe(h).await;
                        let after: Vec<String> = ok(memory.namespaces().await)?.into_keys().collect();
                        if !matches!(t, Target::Namespace(_)) {
                            prop_assert_eq!(&before, &after, "step {} {:?} created a namespace", i, step);
                        }
                        let want = observe_by_name(&memory, *t).await;
                        prop_assert_eq!(got, want, "step {} {:?}", i, step);
                    }
                }
            }
            Ok(())
        })?;
    }
}
