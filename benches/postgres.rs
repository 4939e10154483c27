//! PostgresBackend against the harness's throwaway cluster (or
//! `POSTGRES_URL`): per-operation latency of name lookups and of the
//! namespace → spec → unit chain, of the reads and writes a job server
//! makes on held handles (one task, no contention), `request_attempts` +
//! `finish` throughput with 1 and 8 concurrent workers at batch size 100,
//! `add_work_units` throughput in batches of 1,000 and 10,000, and
//! `request_attempts` with none or 100,000 units waiting for their
//! not-before time ahead of the ready ones, a unit's `status` in a spec
//! with none or 10,000 pending attempts past their deadline that are no
//! longer active, and a unit's `status` and `set_priority` over the
//! Unix-domain socket, loopback TCP in clear and loopback TCP with TLS.
//!
//! Run: `cargo bench --features testing --bench postgres`.

use std::time::{Duration as StdDuration, Instant};

use coordinate::postgres::testing::TestCluster;
use coordinate::postgres::PostgresBackend;
use coordinate::{
    data, AttemptRef, AttemptRequest, Backend, Duration, MockClock, NamespaceRef, NewWorkUnit,
    Time, WorkSpecRef, WorkUnitMeta,
};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};

#[path = "../tests/common/fixture.rs"]
mod fixture;
#[path = "support/lookups.rs"]
mod lookups;
#[path = "support/runtime.rs"]
mod runtime;
#[path = "../tests/common/tls_authority.rs"]
mod tls_authority;

use lookups::lookup_group;
use runtime::runtime;

/// Units in the looked-up spec, so lookups hit a real index.
const UNITS: usize = 10_000;
/// Attempts each worker requests (and finishes) per iteration.
const BATCH: i64 = 100;

fn cluster() -> &'static TestCluster {
    TestCluster::shared().unwrap_or_else(|e| panic!("{e}"))
}

/// A backend on a fresh database holding namespace "bench", spec "spec"
/// with [`UNITS`] units, and worker "w"; and the database's name.
async fn loaded() -> (PostgresBackend, String) {
    let db = cluster().fresh_database().await.expect("database");
    let backend = PostgresBackend::builder(cluster().url())
        .database(&db)
        .clock(MockClock::new())
        .build()
        .await
        .expect("backend");
    let ns = backend.namespace("bench").await.expect("namespace");
    spec_of_units(&ns, "spec", UNITS, |i| format!("u{i:05}")).await;
    ns.worker("w").await.expect("worker");
    (backend, db)
}

/// Spec `name` of `ns`, made with `units` units named by `unit_name`, the
/// i-th with data `{"i": i}`.
async fn spec_of_units(
    ns: &NamespaceRef,
    name: &str,
    units: usize,
    unit_name: impl Fn(usize) -> String,
) -> WorkSpecRef {
    let spec = ns
        .set_work_spec(data!({ "name": name }))
        .await
        .expect("spec");
    for i in 0..units {
        spec.add_work_unit(&unit_name(i), data!({"i": i}), WorkUnitMeta::default())
            .await
            .expect("unit");
    }
    spec
}

fn lookups(c: &mut Criterion) {
    let rt = runtime();
    let (backend, _) = rt.block_on(loaded());
    let names = ["bench", "spec", "u05000", "w"];
    lookup_group(c, &rt, "postgres_lookup_uncached", &backend, names);
    // The same lookups through `Cache`: after the first miss, served from
    // memory without a round trip.
    let cached = coordinate::cache::Cache::new(backend);
    lookup_group(c, &rt, "postgres_lookup_cached", &cached, names);
}

/// Time spent in `op` over `iters` calls, each after an untimed `setup`
/// that makes the attempt it acts on.
async fn timed_on_fresh_attempts<S, SF, O, OF>(iters: u64, mut setup: S, mut op: O) -> StdDuration
where
    S: FnMut() -> SF,
    SF: std::future::Future<Output = AttemptRef>,
    O: FnMut(AttemptRef) -> OF,
    OF: std::future::Future<Output = ()>,
{
    let mut total = StdDuration::ZERO;
    for _ in 0..iters {
        let attempt = setup().await;
        let start = Instant::now();
        op(attempt).await;
        total += start.elapsed();
    }
    total
}

fn operations(c: &mut Criterion) {
    let rt = runtime();
    let (backend, _) = rt.block_on(loaded());
    let (spec, unit, worker, ops, held) = rt.block_on(async {
        let ns = backend.namespace("bench").await.expect("namespace");
        let spec = ns.work_spec("spec").await.expect("spec");
        let unit = spec.work_unit("u05000").await.expect("unit");
        let worker = ns.worker("w").await.expect("worker");
        // A small spec whose units are taken and given back.
        let ops = spec_of_units(&ns, "ops", 100, |i| format!("o{i:03}")).await;
        let held = worker
            .make_attempt(&unit, Duration::minutes(15))
            .await
            .expect("attempt");
        (spec, unit, worker, ops, held)
    });
    let ops_unit = rt.block_on(async { ops.work_unit("o000").await.expect("unit") });
    let fresh = || {
        let worker = worker.clone();
        let unit = ops_unit.clone();
        async move {
            worker
                .make_attempt(&unit, Duration::minutes(15))
                .await
                .expect("attempt")
        }
    };

    let mut group = operation_group(c, "postgres_operation");
    group.bench_function("unit_status", |b| {
        b.to_async(&rt)
            .iter(|| async { unit.status().await.expect("status") })
    });
    group.bench_function("unit_active_attempt", |b| {
        b.to_async(&rt)
            .iter(|| async { unit.active_attempt().await.expect("active") })
    });
    group.bench_function("attempt_status", |b| {
        b.to_async(&rt)
            .iter(|| async { held.status().await.expect("status") })
    });
    // An attempt document: the five reads at once, as separate calls and
    // as one snapshot.
    group.bench_function("attempt_five_reads", |b| {
        b.to_async(&rt).iter(|| async {
            futures::try_join!(
                held.status(),
                held.data(),
                held.start_time(),
                held.end_time(),
                held.expiration_time()
            )
            .expect("reads")
        })
    });
    group.bench_function("attempt_snapshot", |b| {
        b.to_async(&rt)
            .iter(|| async { held.snapshot().await.expect("snapshot") })
    });
    group.bench_function("spec_meta_counted_100_units", |b| {
        b.to_async(&rt)
            .iter(|| async { ops.meta(true).await.expect("meta") })
    });
    group.bench_function("add_work_unit_existing", |b| {
        b.to_async(&rt).iter(|| async {
            spec.add_work_unit("u05001", data!({"re": true}), WorkUnitMeta::default())
                .await
                .expect("add")
        })
    });
    group.bench_function("renew", |b| {
        b.to_async(&rt).iter(|| async {
            held.renew(Duration::minutes(15), None)
                .await
                .expect("renew")
        })
    });
    group.bench_function("finish", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            timed_on_fresh_attempts(iters, fresh, |a| async move {
                a.finish(Some(data!({"ok": true}))).await.expect("finish")
            })
        })
    });
    group.bench_function("fail", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            timed_on_fresh_attempts(iters, fresh, |a| async move {
                a.fail(None).await.expect("fail")
            })
        })
    });
    group.bench_function("retry", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            timed_on_fresh_attempts(iters, fresh, |a| async move {
                a.retry(None, Duration::zero()).await.expect("retry")
            })
        })
    });
    group.bench_function("request_attempts_1", |b| {
        // The attempt is expired again, untimed, so the spec keeps its units.
        b.to_async(&rt).iter_custom(|iters| {
            let worker = worker.clone();
            async move {
                let request = AttemptRequest {
                    work_specs: vec!["ops".into()],
                    ..AttemptRequest::default()
                };
                let mut total = StdDuration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let got = worker
                        .request_attempts(&request.clone())
                        .await
                        .expect("request");
                    total += start.elapsed();
                    for a in got {
                        a.expire(None).await.expect("expire");
                    }
                }
                total
            }
        })
    });
    group.finish();
}

/// Measures `iters` rounds in which each of `workers` workers requests
/// [`BATCH`] attempts and finishes them, all workers at once; units are made
/// available again between rounds, outside the timing.
async fn request_finish_rounds(
    backend: &PostgresBackend,
    rearm: &tokio_postgres::Client,
    workers: usize,
    iters: u64,
) -> StdDuration {
    let ns = backend.namespace("bench").await.expect("namespace");
    let mut handles = Vec::new();
    for i in 0..workers {
        handles.push(ns.worker(&format!("tw{i}")).await.expect("worker"));
    }
    let mut total = StdDuration::ZERO;
    for _ in 0..iters {
        // Setup, untimed: every unit of the throughput spec available again
        // (without an active attempt, its state says so, for the counters
        // and the index of ready units).
        rearm
            .execute(
                "UPDATE work_unit SET active_attempt_id = NULL, state = 0
                 WHERE work_spec_id = (SELECT id FROM work_spec WHERE name = 'tp'::bytea)",
                &[],
            )
            .await
            .expect("rearm");
        let start = Instant::now();
        let tasks: Vec<_> = handles
            .iter()
            .cloned()
            .map(|worker| {
                tokio::spawn(async move {
                    let got = worker
                        .request_attempts(&AttemptRequest {
                            number_of_work_units: BATCH,
                            work_specs: vec!["tp".into()],
                            ..AttemptRequest::default()
                        })
                        .await
                        .expect("request");
                    assert_eq!(got.len() as i64, BATCH, "ran out of units");
                    for attempt in got {
                        attempt.finish(None).await.expect("finish");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("worker task");
        }
        total += start.elapsed();
    }
    total
}

fn throughput(c: &mut Criterion) {
    let rt = runtime();
    let (backend, rearm) = rt.block_on(async {
        let (backend, db) = loaded().await;
        let ns = backend.namespace("bench").await.expect("namespace");
        let units = usize::try_from(8 * BATCH).expect("unit count");
        spec_of_units(&ns, "tp", units, |i| format!("t{i:04}")).await;
        let (rearm, conn) =
            tokio_postgres::connect(&cluster().database_url(&db), tokio_postgres::NoTls)
                .await
                .expect("rearm connection");
        tokio::spawn(conn);
        (backend, rearm)
    });

    let mut group = slow_group(c, "postgres_request_finish");
    for workers in [1usize, 8] {
        group.throughput(Throughput::Elements(workers as u64 * BATCH as u64));
        group.bench_function(format!("batch100_workers{workers}"), |b| {
            b.to_async(&rt)
                .iter_custom(|iters| request_finish_rounds(&backend, &rearm, workers, iters))
        });
    }
    group.finish();
}

/// A bench group of thirty samples of 3 s in all after 1 s of warm-up,
/// for single operations.
fn operation_group<'c>(c: &'c mut Criterion, name: &str) -> BenchmarkGroup<'c, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(30)
        .warm_up_time(StdDuration::from_secs(1))
        .measurement_time(StdDuration::from_secs(3));
    group
}

/// A bench group of ten samples over 5 s after 1 s of warm-up, for
/// operations slow enough that fewer samples suffice.
fn slow_group<'c>(c: &'c mut Criterion, name: &str) -> BenchmarkGroup<'c, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .warm_up_time(StdDuration::from_secs(1))
        .measurement_time(StdDuration::from_secs(5));
    group
}

/// `add_work_units` of new units in one batch, at two batch sizes; the
/// throughput is units stored per second.
fn bulk_add(c: &mut Criterion) {
    let rt = runtime();
    let (backend, _) = rt.block_on(loaded());
    let spec = rt.block_on(async {
        let ns = backend.namespace("bench").await.expect("namespace");
        ns.set_work_spec(data!({"name": "bulk"}))
            .await
            .expect("spec")
    });
    let mut next = 0usize;
    let mut group = slow_group(c, "postgres_bulk_add");
    for batch in [1_000usize, 10_000] {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(format!("new_units_batch{batch}"), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let first = next;
                next += batch * usize::try_from(iters).expect("iterations");
                let spec = spec.clone();
                async move {
                    let mut elapsed = StdDuration::ZERO;
                    for i in 0..usize::try_from(iters).expect("iterations") {
                        let start = first + i * batch;
                        let units = (start..start + batch)
                            .map(|j| NewWorkUnit {
                                name: format!("b{j:09}"),
                                data: data!({"i": j}),
                                meta: WorkUnitMeta::default(),
                            })
                            .collect();
                        let began = Instant::now();
                        spec.add_work_units(units).await.expect("bulk add");
                        elapsed += began.elapsed();
                    }
                    elapsed
                }
            })
        });
    }
    group.finish();
}

/// `request_attempts` of one unit from a spec of 1,000 ready units behind
/// none or 100,000 units that come first in execution order (a higher
/// priority) but wait for a not-before time an hour ahead, as after a wave
/// of retries with a delay; each attempt is expired again, untimed.
fn waiting_units(c: &mut Criterion) {
    const READY: usize = 1_000;
    let rt = runtime();
    let (backend, _) = rt.block_on(loaded());
    let mut group = operation_group(c, "postgres_waiting_units");
    for waiting in [0usize, 100_000] {
        let name = format!("waiting{waiting}");
        let worker = rt.block_on(async {
            let ns = backend.namespace("bench").await.expect("namespace");
            let spec = ns
                .set_work_spec(data!({ "name": name.clone() }))
                .await
                .expect("spec");
            // The backend's mock clock stays at the epoch.
            let later = Time::UNIX_EPOCH + Duration::hours(1);
            let delayed = (0..waiting).map(|i| NewWorkUnit {
                name: format!("d{i:06}"),
                data: data!({"i": i}),
                meta: WorkUnitMeta {
                    priority: 1.0,
                    not_before: Some(later),
                },
            });
            let ready = (0..READY).map(|i| NewWorkUnit::new(format!("r{i:04}"), data!({"i": i})));
            let units: Vec<NewWorkUnit> = delayed.chain(ready).collect();
            for batch in units.chunks(10_000) {
                spec.add_work_units(batch.to_vec()).await.expect("units");
            }
            ns.worker("w").await.expect("worker")
        });
        let request = AttemptRequest {
            work_specs: vec![name.clone()],
            ..AttemptRequest::default()
        };
        group.bench_function(format!("request_attempts_1_behind_{waiting}"), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let worker = worker.clone();
                let request = request.clone();
                async move {
                    let mut total = StdDuration::ZERO;
                    for _ in 0..iters {
                        let start = Instant::now();
                        let got = worker.request_attempts(&request).await.expect("request");
                        total += start.elapsed();
                        assert_eq!(got.len(), 1, "a ready unit is handed out");
                        for a in got {
                            a.expire(None).await.expect("expire");
                        }
                    }
                    total
                }
            })
        });
    }
    group.finish();
}

/// `status` of a unit running a pending attempt, in a spec that holds
/// none or 10,000 pending attempts past their deadline whose units' active
/// attempt was cleared (no expiry check expires those).
fn detached_attempts(c: &mut Criterion) {
    let rt = runtime();
    let (backend, _) = rt.block_on(loaded());
    let mut group = operation_group(c, "postgres_detached_attempts");
    for detached in [0usize, 10_000] {
        let name = format!("detached{detached}");
        let unit = rt.block_on(async {
            let ns = backend.namespace("bench").await.expect("namespace");
            let spec = ns
                .set_work_spec(data!({ "name": name.clone() }))
                .await
                .expect("spec");
            let units = spec
                .add_work_units(
                    (0..=detached)
                        .map(|i| NewWorkUnit::new(format!("u{i:05}"), data!({"i": i})))
                        .collect(),
                )
                .await
                .expect("units");
            let worker = ns.worker("w").await.expect("worker");
            let (running, cleared) = units.split_last().expect("a unit");
            // The clock stands still: a negative lifetime is past at once.
            for unit in cleared {
                worker
                    .make_attempt(unit, Duration::minutes(-1))
                    .await
                    .expect("attempt");
                unit.clear_active_attempt().await.expect("clear");
            }
            worker
                .make_attempt(running, Duration::hours(1))
                .await
                .expect("attempt");
            running.clone()
        });
        group.bench_function(format!("unit_status_beside_{detached}"), |b| {
            b.to_async(&rt)
                .iter(|| async { unit.status().await.expect("status") })
        });
    }
    group.finish();
}

/// One unit's `status` and `set_priority` on one database, through a
/// backend over the Unix-domain socket, one over loopback TCP in clear and
/// one over loopback TCP with TLS (`verify-full`): what encryption adds to
/// a statement's round trip. A cluster of its own, as only it listens on
/// TCP with TLS on.
fn tls(c: &mut Criterion) {
    let rt = runtime();
    let (cluster, authority) = tls_authority::cluster_with_tls();
    let authority_file = cluster.dir().expect("our cluster").join("authority.pem");
    std::fs::write(&authority_file, authority).expect("the authority's file");
    let port = cluster.tcp_port().expect("a TCP port");
    let db = rt.block_on(cluster.fresh_database()).expect("database");
    let over = [
        ("unix_socket", cluster.database_url(&db)),
        (
            "tcp",
            format!("postgres://postgres@localhost:{port}/{db}?sslmode=disable"),
        ),
        (
            "tls",
            format!(
                "postgres://postgres@localhost:{port}/{db}?sslmode=verify-full&sslrootcert={}",
                authority_file.display()
            ),
        ),
    ];
    let mut group = operation_group(c, "postgres_tls");
    for (name, url) in over {
        let unit = rt.block_on(async {
            let backend = PostgresBackend::builder(&url)
                .clock(MockClock::new())
                .build()
                .await
                .expect("backend");
            let spec = fixture::spec_with_unit(&backend).await.expect("spec");
            spec.work_unit("u").await.expect("unit")
        });
        group.bench_function(format!("unit_status/{name}"), |b| {
            b.to_async(&rt)
                .iter(|| async { unit.status().await.expect("status") })
        });
        group.bench_function(format!("unit_set_priority/{name}"), |b| {
            b.to_async(&rt)
                .iter(|| async { unit.set_priority(1.0).await.expect("priority") })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    lookups,
    operations,
    throughput,
    bulk_add,
    waiting_units,
    detached_attempts,
    tls
);
criterion_main!(benches);
