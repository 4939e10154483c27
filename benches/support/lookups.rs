//! The lookup benches run against a backend and against `Cache` over it.

use std::future::Future;
use std::time::Duration as StdDuration;

use coordinate::{Backend, BackendExt};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use tokio::runtime::Runtime;

/// A bench group `group` timing the name lookups a job server makes —
/// namespace, spec, unit, worker and the namespace → spec → unit chain — on
/// `backend`, which holds namespace `ns`, spec `spec`, unit `unit` and
/// worker `worker`. Every lookup runs once before timing, so a cache
/// measures its hits.
pub fn lookup_group(
    c: &mut Criterion,
    rt: &Runtime,
    group: &str,
    backend: &dyn Backend,
    [ns_name, spec_name, unit, worker]: [&str; 4],
) {
    let (ns, spec) = rt.block_on(async {
        let ns = backend.namespace(ns_name).await.expect("namespace");
        let spec = ns.work_spec(spec_name).await.expect("spec");
        spec.work_unit(unit).await.expect("unit");
        ns.worker(worker).await.expect("worker");
        backend
            .work_unit_at(ns_name, spec_name, unit)
            .await
            .expect("chain");
        (ns, spec)
    });
    let mut group = c.benchmark_group(group);
    group
        .sample_size(30)
        .warm_up_time(StdDuration::from_secs(1))
        .measurement_time(StdDuration::from_secs(3));
    bench_hit(&mut group, rt, "namespace", || backend.namespace(ns_name));
    bench_hit(&mut group, rt, "work_spec", || ns.work_spec(spec_name));
    bench_hit(&mut group, rt, "work_unit", || spec.work_unit(unit));
    bench_hit(&mut group, rt, "worker", || ns.worker(worker));
    bench_hit(&mut group, rt, "chain_namespace_spec_unit", || {
        backend.work_unit_at(ns_name, spec_name, unit)
    });
    group.finish();
}

/// A bench `name` in `group` timing `lookup`, which must succeed.
fn bench_hit<T, F, Fut>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    name: &str,
    lookup: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = coordinate::Result<T>>,
{
    group.bench_function(name, |b| {
        b.to_async(rt)
            .iter(|| async { lookup().await.expect("hit") })
    });
}
