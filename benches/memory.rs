//! MemoryBackend: per-operation cost as a spec grows from 1,000 to 100,000
//! units. The indexes should keep every curve flat.

use std::time::Duration as StdDuration;

use coordinate::memory::MemoryBackend;
use coordinate::{
    data, AttemptRequest, Backend, MockClock, WorkSpecRef, WorkUnitMeta, WorkUnitRef, WorkerRef,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tokio::runtime::Runtime;

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

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
    for i in 0..n {
        let meta = WorkUnitMeta::with_priority((i % 7) as f64);
        spec.add_work_unit(&format!("u{i:07}"), data!({"i": i}), meta)
            .await
            .unwrap();
    }
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

fn bench(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let mut group = c.benchmark_group("memory");
    group
        .warm_up_time(StdDuration::from_millis(500))
        .measurement_time(StdDuration::from_secs(2));
    for n in SIZES {
        let loaded = rt.block_on(load(n));
        group.bench_with_input(BenchmarkId::new("status", n), &loaded, |b, l| {
            b.to_async(&rt)
                .iter(|| async { l.unit.status().await.unwrap() })
        });
        group.bench_with_input(
            BenchmarkId::new("count_work_unit_status", n),
            &loaded,
            |b, l| {
                b.to_async(&rt)
                    .iter(|| async { l.spec.count_work_unit_status().await.unwrap() })
            },
        );
        // Take one unit and give it back, so the spec stays the same size.
        group.bench_with_input(
            BenchmarkId::new("request_attempts+expire", n),
            &loaded,
            |b, l| {
                b.to_async(&rt).iter(|| async {
                    let got = l
                        .worker
                        .request_attempts(&AttemptRequest::default())
                        .await
                        .unwrap();
                    got[0].expire(None).await.unwrap();
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
