//! Cancelled lookups of a `Cache` over PostgreSQL keep no connection.
//!
//! Job servers drop a request's future when its client disconnects or a
//! timeout fires. Here lookups wait on a table lock another session holds,
//! are cancelled, and the lock is released: every connection they held
//! must be back in the pool, and new calls must succeed.
#![cfg(feature = "testing")]

use std::time::{Duration as StdDuration, Instant};

use coordinate::cache::Cache;
use coordinate::postgres::testing::TestCluster;
use coordinate::postgres::PostgresBackend;
use coordinate::{data, Backend, BackendExt, Error, WorkUnitMeta};

const POOL: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_lookups_waiting_on_a_lock_give_their_connections_back() -> coordinate::Result<()>
{
    // No silent skip: without a server this test fails.
    let cluster = TestCluster::shared().map_err(Error::backend)?;
    let db = cluster.fresh_database().await.map_err(Error::backend)?;
    let url = cluster.database_url(&db);
    let backend = PostgresBackend::builder(&url)
        .max_connections(POOL)
        .connect_timeout(StdDuration::from_secs(2))
        .build()
        .await?;
    let cache = Cache::new(backend);
    // Subscribed to the change feed, so lookups use the cache (until then
    // they bypass it, and the subscription's flush would hide leftovers).
    let started = Instant::now();
    while !cache.stats().feed.subscribed {
        assert!(
            started.elapsed() < StdDuration::from_secs(5),
            "not subscribed"
        );
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    // Units made on the inner backend: not cached, so lookups go to the table.
    let spec = cache
        .get_ref()
        .namespace("ns")
        .await?
        .set_work_spec(data!({"name": "spec"}))
        .await?;
    let names: Vec<String> = (0..2 * POOL).map(|i| format!("u{i}")).collect();
    for name in &names {
        spec.add_work_unit(name, data!({}), WorkUnitMeta::default())
            .await?;
    }
    // The namespace and spec are cached, so only unit lookups block.
    cache.work_spec_at("ns", "spec").await?;

    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .map_err(Error::backend)?;
    tokio::spawn(connection);
    admin
        .batch_execute("BEGIN; LOCK TABLE work_unit IN ACCESS EXCLUSIVE MODE")
        .await
        .map_err(Error::backend)?;

    // Twice as many lookups as connections (two of each name), all given up.
    let lookups = names.iter().chain(names.iter().take(POOL)).map(|name| {
        tokio::time::timeout(
            StdDuration::from_millis(300),
            cache.work_unit_at("ns", "spec", name),
        )
    });
    for outcome in futures::future::join_all(lookups).await {
        assert!(outcome.is_err(), "a lookup finished under the lock");
    }

    admin
        .batch_execute("COMMIT")
        .await
        .map_err(Error::backend)?;
    let released = Instant::now();
    let idle = loop {
        let status = cache.get_ref().pool_status();
        if status.idle == status.size && status.waiting == 0 {
            break true;
        }
        if released.elapsed() > StdDuration::from_secs(1) {
            eprintln!("{status:?}");
            break false;
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    };
    assert!(idle, "the pool was not idle within a second of the release");
    assert_eq!(cache.stats().work_units.loads_in_flight, 0);

    // New calls succeed, and every name is found.
    for name in &names {
        let unit = cache.work_unit_at("ns", "spec", name).await?;
        assert_eq!(unit.name(), name);
        unit.status().await?;
    }
    assert_eq!(cache.stats().work_units.loads_in_flight, 0);
    Ok(())
}
