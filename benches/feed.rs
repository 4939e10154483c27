//! Cross-server invalidation latency: how long after one job server deletes
//! a work unit another job server's cached lookup answers `NoSuchWorkUnit`.
//!
//! Two `Cache<PostgresBackend>` on two separate backends (two pools, two
//! listening connections) over one database of the harness cluster (or
//! `POSTGRES_URL`). Per sample: server A adds a unit, server B looks it up
//! (now cached), A deletes it; B polls its lookup (cache hits, yielding
//! between polls) until it answers `NoSuchWorkUnit`. Two clocks per sample:
//! from the start of A's delete call, and from its return (the commit
//! acknowledged). Run once idle and once with two background tasks on A
//! adding and deleting other units as fast as they can (a steady stream of
//! events on B's feed). For reference, the same over `MemoryBackend`,
//! deleting on the inner backend.
//!
//! Run: `cargo bench --features testing --bench feed` (`FEED_BENCH_SAMPLES`
//! sets the samples, default 500).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use coordinate::cache::Cache;
use coordinate::memory::MemoryBackend;
use coordinate::postgres::testing::TestCluster;
use coordinate::postgres::PostgresBackend;
use coordinate::{data, Backend, BackendExt, Error, WorkSpecRef, WorkUnitMeta, WorkUnitQuery};

#[path = "support/percentile.rs"]
mod percentile;
#[path = "support/runtime.rs"]
mod runtime;

use percentile::percentile;
use runtime::runtime;

fn report(what: &str, mut samples: Vec<StdDuration>) {
    samples.sort();
    println!(
        "{what:<58} n={:<5} p50={:>9.3?} p99={:>9.3?} max={:>9.3?}",
        samples.len(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples[samples.len() - 1],
    );
}

/// Polls `lookup` until the unit is gone; panics after 5 s.
async fn until_gone<B: Backend + 'static>(server: &Cache<B>, unit: &str) {
    let start = Instant::now();
    loop {
        match server.work_unit_at("bench", "spec", unit).await {
            Err(Error::NoSuchWorkUnit { .. }) => return,
            Ok(_) => tokio::task::yield_now().await,
            Err(e) => panic!("lookup: {e}"),
        }
        assert!(
            start.elapsed() < StdDuration::from_secs(5),
            "never invalidated"
        );
    }
}

/// Spec "spec" of namespace "bench", created on `backend`.
async fn bench_spec(backend: &dyn Backend) -> WorkSpecRef {
    backend
        .namespace("bench")
        .await
        .expect("ns")
        .set_work_spec(data!({"name": "spec"}))
        .await
        .expect("spec")
}

async fn delete(spec: &WorkSpecRef, unit: &str) {
    spec.delete_work_units(&WorkUnitQuery {
        names: vec![unit.to_string()],
        ..Default::default()
    })
    .await
    .expect("delete");
}

async fn cross_server(samples: usize, background: usize) {
    let cluster = TestCluster::shared().unwrap_or_else(|e| panic!("{e}"));
    let (a, lease) = cluster
        .lease_backend(coordinate::SystemClock)
        .await
        .expect("backend");
    let b = PostgresBackend::connect(&cluster.database_url(lease.database()))
        .await
        .expect("second backend");
    let (a, b) = (Cache::new(a), Cache::new(b));
    while !(a.stats().feed.subscribed && b.stats().feed.subscribed) {
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    let spec = bench_spec(&a).await;
    // Background churn: tasks on server A adding and deleting other units
    // as fast as they can, so B's feed carries a steady stream of events.
    let stop = Arc::new(AtomicBool::new(false));
    let churn: Vec<_> = (0..background)
        .map(|t| {
            let spec = spec.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let unit = format!("churn-{t}-{n}");
                    spec.add_work_unit(&unit, data!({}), WorkUnitMeta::default())
                        .await
                        .expect("add");
                    delete(&spec, &unit).await;
                    n += 1;
                }
                n
            })
        })
        .collect();
    let began = Instant::now();
    let (mut from_call, mut from_commit) = (Vec::new(), Vec::new());
    for i in 0..samples + 20 {
        let unit = format!("u{i}");
        spec.add_work_unit(&unit, data!({}), WorkUnitMeta::default())
            .await
            .expect("add");
        b.work_unit_at("bench", "spec", &unit).await.expect("warm");
        let called = Instant::now();
        delete(&spec, &unit).await;
        let committed = Instant::now();
        until_gone(&b, &unit).await;
        if i >= 20 {
            // The first 20 warm connections and statement caches up.
            from_call.push(called.elapsed());
            from_commit.push(committed.elapsed());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut churned = 0;
    for task in churn {
        churned += task.await.expect("churn");
    }
    println!(
        "-- {background} background add+delete tasks on A ({:.0} extra deletes/s)",
        churned as f64 / began.elapsed().as_secs_f64()
    );
    report(
        "postgres: B sees A's delete, from A's delete call",
        from_call,
    );
    report(
        "postgres: B sees A's delete, from A's commit acknowledged",
        from_commit,
    );
    println!("server B feed: {:?}", b.stats().feed);
}

async fn in_process(samples: usize) {
    let backend = MemoryBackend::new();
    let cache = Cache::new(backend.clone());
    let spec = bench_spec(&backend).await;
    let mut from_call = Vec::new();
    for i in 0..samples {
        let unit = format!("u{i}");
        spec.add_work_unit(&unit, data!({}), WorkUnitMeta::default())
            .await
            .expect("add");
        cache
            .work_unit_at("bench", "spec", &unit)
            .await
            .expect("warm");
        let called = Instant::now();
        delete(&spec, &unit).await;
        until_gone(&cache, &unit).await;
        from_call.push(called.elapsed());
    }
    report(
        "memory: cache sees a delete on the inner backend",
        from_call,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not run us
    // for long: one sample is enough to check the harness works.
    let quick = !std::env::args().any(|a| a == "--bench");
    let samples = if quick {
        5
    } else {
        match std::env::var("FEED_BENCH_SAMPLES") {
            Err(_) => 500,
            Ok(text) => match text.trim().parse::<usize>() {
                Ok(samples @ 1..) => samples,
                _ => panic!("FEED_BENCH_SAMPLES={text:?}: a whole number of samples, at least 1"),
            },
        }
    };
    let runtime = runtime();
    runtime.block_on(async {
        cross_server(samples, 0).await;
        cross_server(samples, 2).await;
        in_process(samples).await;
    });
}
