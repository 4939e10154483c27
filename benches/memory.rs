//! MemoryBackend: per-operation cost as a spec grows from 1,000 to
//! 1,000,000 units (the indexes should keep every curve flat), bulk add
//! throughput, resident bytes per stored unit and per unit handle a `Cache`
//! holds.

use std::time::Duration as StdDuration;

use coordinate::cache::Cache;
use coordinate::memory::MemoryBackend;
use coordinate::{
    data, AttemptRef, AttemptRequest, Backend, BackendExt, DataMap, Duration, MockClock,
    NamespaceRef, NewWorkUnit, WorkSpecRef, WorkUnitMeta, WorkUnitQuery, WorkUnitRef,
    WorkUnitStatus, WorkerRef,
};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use tokio::runtime::Runtime;

#[path = "../examples/support/resident.rs"]
mod resident;

const SIZES: [usize; 4] = [1_000, 10_000, 100_000, 1_000_000];

/// Units per bulk add in the throughput bench.
const BATCH: usize = 10_000;

struct Loaded {
    spec: WorkSpecRef,
    unit: WorkUnitRef,
    worker: WorkerRef,
}

/// A spec with `n` available units, a few of them pending and finished so
/// every index is populated.
async fn load(n: usize) -> Loaded {
    let backend = MemoryBackend::with_clock(MockClock::new());
    let ns = backend.namespace("bench").await.unwrap();
    let spec = ns.set_work_spec(data!({"name": "s"})).await.unwrap();
    spec.add_work_units(new_units(n)).await.unwrap();
    let worker = ns.worker("w").await.unwrap();
    let busy = worker
        .request_attempts(&AttemptRequest::units(20))
        .await
        .unwrap();
    for attempt in &busy[..10] {
        attempt.finish(None).await.unwrap();
    }
    let unit = spec.work_unit(&format!("u{:07}", n / 2)).await.unwrap();
    Loaded { spec, unit, worker }
}

/// `n` units named `u0000000`… with one-key data and seven priorities.
fn new_units(n: usize) -> Vec<NewWorkUnit> {
    units_in(0..n)
}

fn units_in(range: std::ops::Range<usize>) -> Vec<NewWorkUnit> {
    range
        .map(|i| NewWorkUnit {
            name: format!("u{i:07}"),
            data: data!({"i": i}),
            meta: WorkUnitMeta::with_priority((i % 7) as f64),
        })
        .collect()
}

/// This process's resident set size, where the platform tells it.
fn resident_bytes() -> Option<u64> {
    resident::resident_bytes().ok()
}

/// Prints the resident bytes one stored unit costs, loading `n` units
/// with one-key data into an otherwise empty backend, in batches of
/// [`BATCH`] (so that little of the growth is freed batches); then what
/// one unit handle held by a [`Cache`] over it costs, looking up every
/// unit once through a cache with room for all.
fn report_resident_bytes(rt: &Runtime, n: usize) {
    let before = resident_bytes();
    let backend = rt.block_on(async {
        let backend = MemoryBackend::with_clock(MockClock::new());
        let ns = backend.namespace("bytes").await.unwrap();
        let spec = ns.set_work_spec(data!({"name": "s"})).await.unwrap();
        for start in (0..n).step_by(BATCH) {
            let units = units_in(start..n.min(start + BATCH));
            spec.add_work_units(units).await.unwrap();
        }
        backend
    });
    let loaded = resident_bytes();
    if let (Some(before), Some(after)) = (before, loaded) {
        let per_unit = after.saturating_sub(before) as f64 / n as f64;
        println!("report: resident bytes per unit with one-key data at {n}: {per_unit:.0}");
    }
    let cache = Cache::builder().work_units(n as u64).build(backend);
    rt.block_on(async {
        let spec = cache.work_spec_at("bytes", "s").await.unwrap();
        for i in 0..n {
            spec.work_unit(&format!("u{i:07}")).await.unwrap();
        }
        cache.run_pending_tasks().await;
    });
    if let (Some(before), Some(after)) = (loaded, resident_bytes()) {
        let per_handle = after.saturating_sub(before) as f64 / n as f64;
        println!(
            "report: resident bytes per cached unit handle over memory at {n}: {per_handle:.0}"
        );
    }
    drop(cache);
}

fn bench(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    // First, while the heap holds nothing freed that a load could reuse.
    report_resident_bytes(&rt, 1_000_000);
    let mut group = c.benchmark_group("memory");
    group
        .warm_up_time(StdDuration::from_millis(500))
        .measurement_time(StdDuration::from_secs(2));
    let pending_100 = WorkUnitQuery {
        limit: 100,
        ..WorkUnitQuery::statuses([WorkUnitStatus::Pending])
    };
    for n in SIZES {
        let loaded = rt.block_on(load(n));
        // Times `$call` on the loaded objects `$l`, at size `n`.
        macro_rules! call {
            ($name:literal, $l:ident => $call:expr) => {
                group.bench_with_input(BenchmarkId::new($name, n), &loaded, |b, $l| {
                    b.to_async(&rt).iter(|| async { $call })
                });
            };
        }
        call!("status", l => l.unit.status().await.unwrap());
        call!("count_work_unit_status", l => l.spec.count_work_unit_status().await.unwrap());
        call!("work_units_pending_100", l => l.spec.work_units(&pending_100).await.unwrap());
        call!("meta_counted", l => l.spec.meta(true).await.unwrap());
        // Take one unit and give it back, so the spec stays the same size.
        call!("request_attempts+expire", l => {
            let request = AttemptRequest::default();
            let got = l.worker.request_attempts(&request).await.unwrap();
            got[0].expire(None).await.unwrap();
        });
    }
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(BenchmarkId::new("add_work_units", BATCH), |b| {
        b.iter_batched(
            || {
                let spec = rt.block_on(async {
                    let backend = MemoryBackend::with_clock(MockClock::new());
                    let ns = backend.namespace("bulk").await.unwrap();
                    ns.set_work_spec(data!({"name": "s"})).await.unwrap()
                });
                (spec, new_units(BATCH))
            },
            |(spec, units)| rt.block_on(spec.add_work_units(units)).unwrap(),
            BatchSize::PerIteration,
        )
    });
    group.throughput(Throughput::Elements(CHAINED as u64));
    group.bench_function(BenchmarkId::new("finish_chaining", CHAINED), |b| {
        b.iter_batched(
            || rt.block_on(chaining_attempt()),
            |(attempt, data)| rt.block_on(attempt.finish(Some(data))).unwrap(),
            BatchSize::PerIteration,
        )
    });
    for n in FOREIGN_ATTEMPTS {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("destroy_foreign_attempts", n), |b| {
            b.iter_batched(
                || rt.block_on(foreign_attempts(n)),
                // Both dropped untimed, once answered.
                |(namespace, backend)| {
                    rt.block_on(namespace.destroy()).unwrap();
                    (namespace, backend)
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

/// Attempts of one worker on one unit of another namespace, in the destroy
/// bench, which shows how the cost grows with them.
const FOREIGN_ATTEMPTS: [usize; 2] = [5_000, 10_000];

/// A namespace whose worker made `n` attempts on one unit of another
/// namespace (whose backend is also answered, to outlive the destroy).
async fn foreign_attempts(n: usize) -> (NamespaceRef, MemoryBackend) {
    let backend = MemoryBackend::with_clock(MockClock::new());
    let unit = backend
        .namespace("other")
        .await
        .unwrap()
        .set_work_spec(data!({"name": "s"}))
        .await
        .unwrap()
        .add_work_unit("u", DataMap::new(), WorkUnitMeta::default())
        .await
        .unwrap();
    let namespace = backend.namespace("doomed").await.unwrap();
    let worker = namespace.worker("w").await.unwrap();
    for _ in 0..n {
        worker
            .make_attempt(&unit, Duration::seconds(60))
            .await
            .unwrap();
    }
    (namespace, backend)
}

/// Units one finish chains in the chaining bench.
const CHAINED: usize = 10_000;

/// A pending attempt of a spec that chains into another, and finishing
/// data whose `output` names [`CHAINED`] units, each with data.
async fn chaining_attempt() -> (AttemptRef, DataMap) {
    let backend = MemoryBackend::with_clock(MockClock::new());
    let ns = backend.namespace("chain").await.unwrap();
    let first = ns
        .set_work_spec(data!({"name": "first", "then": "second"}))
        .await
        .unwrap();
    ns.set_work_spec(data!({"name": "second"})).await.unwrap();
    first
        .add_work_unit("u", DataMap::new(), WorkUnitMeta::default())
        .await
        .unwrap();
    let worker = ns.worker("w").await.unwrap();
    let mut attempts = worker
        .request_attempts(&AttemptRequest::default())
        .await
        .unwrap();
    let output: Vec<_> = (0..CHAINED)
        .map(|i| serde_json::json!([format!("out{i:07}"), {"i": i}]))
        .collect();
    (attempts.remove(0), data!({ "output": output }))
}

criterion_group!(benches, bench);
criterion_main!(benches);
