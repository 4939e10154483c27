//! Calls given up mid-statement leave nothing behind on PostgreSQL.
//!
//! Job servers drop a request's future when its client disconnects or a
//! timeout fires. A statement still running then is cancelled on the
//! server, so it neither keeps waiting for (or holding) locks nor commits
//! later, and its connection is closed once idle (a late cancel must not
//! reach the next caller). Statements that end soon after their caller
//! gave up keep their connections.
#![cfg(feature = "testing")]

use std::time::{Duration as StdDuration, Instant};

use coordinate::cache::Cache;
use coordinate::postgres::PostgresBackend;
use coordinate::rules::limits::MAX_DATA_BYTES;
use coordinate::{
    data, AttemptRequest, AttemptStatus, Backend, BackendExt, Duration, Error, MockClock,
    NewWorkUnit, WorkUnitMeta, WorkUnitStatus,
};

mod common {
    pub mod postgres;
}

use common::postgres::{fresh_activity, lock_waiters, Database};

const POOL: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_lookups_waiting_on_a_lock_give_their_connections_back() -> coordinate::Result<()>
{
    let (db, backend) = pooled_backend().await;
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

    let admin = db.sql().await;
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
    let idle = within(StdDuration::from_secs(5), || async {
        Ok(pool_idle(cache.get_ref()))
    })
    .await?;
    assert!(
        idle,
        "the pool was not idle within 5 s of the release: {:?}",
        cache.get_ref().pool_status()
    );
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

/// A fresh database (no silent skip: without a server this fails) and a
/// backend on it with a pool of [`POOL`].
async fn pooled_backend() -> (Database, PostgresBackend) {
    let db = Database::fresh().await;
    let backend = db.server(&MockClock::new(), Some(POOL)).await;
    (db, backend)
}

/// [`pooled_backend`] with a unit `u` of spec `spec` in namespace `ns`.
async fn backend_with_a_unit(
) -> coordinate::Result<(Database, PostgresBackend, coordinate::WorkUnitRef)> {
    let (db, backend) = pooled_backend().await;
    let spec = backend
        .namespace("ns")
        .await?
        .set_work_spec(data!({"name": "spec"}))
        .await?;
    let unit = spec
        .add_work_unit("u", data!({}), WorkUnitMeta::default())
        .await?;
    Ok((db, backend, unit))
}

/// The database's sessions (other than `admin`'s) started after `since`,
/// by the server's clock.
async fn sessions_started_after(
    admin: &tokio_postgres::Client,
    since: &str,
) -> coordinate::Result<i64> {
    fresh_activity(admin).await;
    let row = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
             AND pid <> pg_backend_pid() AND backend_start > $1::text::timestamptz",
            &[&since],
        )
        .await
        .map_err(Error::backend)?;
    row.try_get(0).map_err(Error::backend)
}

/// The server's clock now, as text.
async fn server_now(admin: &tokio_postgres::Client) -> coordinate::Result<String> {
    let row = admin
        .query_one("SELECT clock_timestamp()::text", &[])
        .await
        .map_err(Error::backend)?;
    row.try_get(0).map_err(Error::backend)
}

/// Waits up to `limit` for `check` to hold.
async fn within<F, Fut>(limit: StdDuration, mut check: F) -> coordinate::Result<bool>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = coordinate::Result<bool>>,
{
    let started = Instant::now();
    loop {
        if check().await? {
            return Ok(true);
        }
        if started.elapsed() > limit {
            return Ok(false);
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
}

/// Whether every connection of the pool is idle and nobody waits for one.
fn pool_idle(backend: &PostgresBackend) -> bool {
    let status = backend.pool_status();
    status.idle == status.size && status.waiting == 0
}

/// The pool's state once no session waits for a lock and every connection
/// is idle; fails if that takes over five seconds.
async fn unlocked(
    backend: &PostgresBackend,
    admin: &tokio_postgres::Client,
) -> coordinate::Result<coordinate::postgres::PoolStatus> {
    let settled = within(StdDuration::from_secs(5), || async {
        Ok(lock_waiters(admin).await == 0 && pool_idle(backend))
    })
    .await?;
    assert!(
        settled,
        "still waiting on the lock: {:?}",
        backend.pool_status()
    );
    Ok(backend.pool_status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_given_up_under_a_lock_is_cancelled_on_the_server() -> coordinate::Result<()> {
    let (db, backend, unit) = backend_with_a_unit().await?;
    let admin = db.sql().await;
    let before = server_now(&admin).await?;
    admin
        .batch_execute("BEGIN; LOCK TABLE work_unit IN ACCESS EXCLUSIVE MODE")
        .await
        .map_err(Error::backend)?;

    let given_up =
        tokio::time::timeout(StdDuration::from_millis(200), unit.set_priority(5.0)).await;
    assert!(given_up.is_err(), "the change finished under the lock");

    // While the lock is still held, the statement stops waiting for it and
    // its connection is closed, not replaced until needed.
    let size = backend.pool_status().size;
    let status = unlocked(&backend, &admin).await?;
    assert_eq!(
        (status.size, status.cancelled, status.closed),
        (size - 1, 1, 1)
    );
    assert_eq!(sessions_started_after(&admin, &before).await?, 0);
    assert_sessions_are_the_pools(&backend, &admin).await?;

    // Released, the lock lets nothing through: the change never happened.
    admin
        .batch_execute("COMMIT")
        .await
        .map_err(Error::backend)?;
    assert_eq!(unit.priority().await?, 0.0);
    unit.set_priority(2.0).await?;
    assert_eq!(unit.priority().await?, 2.0);
    Ok(())
}

/// A hand-out given up while its statement waits for a lock still ends
/// once the lock is released, and gives its attempt back: the unit is
/// available again, not held for a whole lease by an attempt nobody got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_out_given_up_under_a_lock_gives_its_attempt_back() -> coordinate::Result<()> {
    let (db, backend, unit) = backend_with_a_unit().await?;
    let worker = backend.namespace("ns").await?.worker("w").await?;
    let admin = db.sql().await;
    for (made, by_name) in [(1, false), (2, true)] {
        // Reads pass; the attempt's insert waits.
        admin
            .batch_execute("BEGIN; LOCK TABLE attempt IN SHARE MODE")
            .await
            .map_err(Error::backend)?;
        let hand_out = async {
            if by_name {
                worker.make_attempt(&unit, Duration::seconds(600)).await?;
            } else {
                worker.request_attempts(&AttemptRequest::default()).await?;
            }
            Ok::<_, Error>(())
        };
        let given_up = tokio::time::timeout(StdDuration::from_millis(200), hand_out).await;
        assert!(given_up.is_err(), "the hand-out finished under the lock");
        // Released well within the time a dropped statement gets before
        // it is cancelled.
        admin
            .batch_execute("COMMIT")
            .await
            .map_err(Error::backend)?;
        // The hand-out happened, and its attempt was expired.
        let given_back = within(StdDuration::from_secs(5), || async {
            let attempts = unit.attempts().await?;
            let expired = match attempts.get(made - 1) {
                Some(attempt) => attempt.status().await? == AttemptStatus::Expired,
                None => false,
            };
            Ok(attempts.len() == made && expired)
        })
        .await?;
        assert!(given_back, "{:?}", unit.attempts().await?);
        assert_eq!(unit.status().await?, WorkUnitStatus::Available);
    }
    Ok(())
}

/// A hand-out given up before its task started sends nothing: no attempt
/// is made for nobody, and no try of its unit is spent.
#[tokio::test]
async fn a_hand_out_given_up_before_it_started_makes_no_attempt() -> coordinate::Result<()> {
    use futures::FutureExt;
    let (_db, backend, unit) = backend_with_a_unit().await?;
    let worker = backend.namespace("ns").await?.worker("w").await?;
    for _ in 0..3 {
        let once = worker
            .request_attempts(&AttemptRequest::default())
            .now_or_never();
        assert!(once.is_none(), "answered without a statement");
        let once = worker
            .make_attempt(&unit, Duration::seconds(600))
            .now_or_never();
        assert!(once.is_none(), "answered without a statement");
        coordinate::detached::settled().await;
    }
    assert!(unit.attempts().await?.is_empty());
    assert_eq!(unit.status().await?, WorkUnitStatus::Available);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_given_up_under_a_lock_is_cancelled_and_its_connection_closed(
) -> coordinate::Result<()> {
    let (db, backend, unit) = backend_with_a_unit().await?;
    let spec = unit.work_spec();
    let mut changed = spec.meta(false).await?;
    changed.priority = 7;
    let size = backend.pool_status().size;
    let admin = db.sql().await;
    admin
        .batch_execute("BEGIN; LOCK TABLE work_spec IN ACCESS EXCLUSIVE MODE")
        .await
        .map_err(Error::backend)?;

    // A spec's meta is read under a row lock and written in one transaction.
    let given_up = tokio::time::timeout(
        StdDuration::from_millis(200),
        spec.set_meta(changed.clone()),
    )
    .await;
    assert!(given_up.is_err(), "the change finished under the lock");

    // The connection that was inside the transaction is closed, not reused.
    let status = unlocked(&backend, &admin).await?;
    assert_eq!(
        (status.size, status.cancelled, status.closed),
        (size - 1, 1, 1)
    );
    assert_sessions_are_the_pools(&backend, &admin).await?;

    admin
        .batch_execute("COMMIT")
        .await
        .map_err(Error::backend)?;
    assert_eq!(spec.meta(false).await?.priority, 0);
    spec.set_meta(changed).await?;
    assert_eq!(spec.meta(false).await?.priority, 7);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_given_up_mid_statement_leave_every_connection_usable() -> coordinate::Result<()> {
    let (db, backend, unit) = backend_with_a_unit().await?;
    let spec = unit.work_spec();
    let admin = db.sql().await;

    // Calls given up at every point of their statements, most of which end
    // well within the time a dropped statement gets before it is cancelled,
    // beside one call per round that waits for its answers.
    let (mut given_up, mut answered) = (0, 0);
    for round in 0..50u64 {
        let calls = (0..POOL as u64).map(|i| {
            let (unit, spec) = (unit.clone(), spec.clone());
            let limit = match i {
                0 => StdDuration::from_secs(5),
                _ => StdDuration::from_micros((round * 37 + i * 101) % 2_000),
            };
            tokio::time::timeout(limit, async move {
                unit.status().await?;
                spec.count_work_unit_status().await?;
                unit.set_priority(1.0).await
            })
        });
        for outcome in futures::future::join_all(calls).await {
            match outcome {
                // No call meets a cancel meant for another.
                Ok(answer) => {
                    answer?;
                    answered += 1;
                }
                Err(_) => given_up += 1,
            }
        }
    }
    assert!(
        given_up > 0 && answered > 0,
        "{given_up} given up, {answered} answered"
    );

    assert!(
        within(StdDuration::from_secs(5), || async {
            Ok(pool_idle(&backend))
        })
        .await?,
        "{:?}",
        backend.pool_status()
    );
    // Exactly the connections a cancel was sent for are closed (on an idle
    // machine, none), and no session outlives its connection.
    let status = backend.pool_status();
    assert_eq!(status.closed, status.cancelled, "{status:?}");
    assert_sessions_are_the_pools(&backend, &admin).await?;
    assert!(unit.status().await.is_ok());
    Ok(())
}

#[test]
fn a_give_up_cut_short_by_its_runtime_closes_the_connection() -> coordinate::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::backend)?;
    // One connection, opened on this runtime, which runs its I/O.
    let (db, backend, unit) = runtime.block_on(async {
        let db = Database::fresh().await;
        let backend = db.server(&MockClock::new(), Some(1)).await;
        let unit = backend
            .namespace("ns")
            .await?
            .set_work_spec(data!({"name": "spec"}))
            .await?
            .add_work_unit("u", data!({}), WorkUnitMeta::default())
            .await?;
        Ok::<_, Error>((db, backend, unit))
    })?;
    let admin = runtime.block_on(db.sql());
    runtime
        .block_on(admin.batch_execute("BEGIN; LOCK TABLE work_unit IN ACCESS EXCLUSIVE MODE"))
        .map_err(Error::backend)?;

    // A change given up under the lock on a runtime of its own, which then
    // stops before its give-up has waited out the statement.
    let other = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::backend)?;
    let given_up = other.block_on(async {
        tokio::time::timeout(StdDuration::from_millis(100), unit.set_priority(5.0)).await
    });
    assert!(given_up.is_err(), "the change finished under the lock");
    drop(other);

    // The busy connection is closed, not back in the pool, so a call that
    // needs no locked table is answered while the lock is held.
    assert_eq!(backend.pool_status().closed, 1);
    runtime.block_on(async {
        let answered =
            tokio::time::timeout(StdDuration::from_secs(2), backend.namespace("ns")).await;
        assert!(matches!(answered, Ok(Ok(_))), "{answered:?}");
        admin
            .batch_execute("COMMIT")
            .await
            .map_err(Error::backend)?;
        assert_sessions_are_the_pools(&backend, &admin).await
    })
}

/// Fails unless, within a second, the database's sessions (other than
/// `admin`'s) are the pool's connections: none outlives its connection.
async fn assert_sessions_are_the_pools(
    backend: &PostgresBackend,
    admin: &tokio_postgres::Client,
) -> coordinate::Result<()> {
    let started = Instant::now();
    loop {
        let sessions = sessions_started_after(admin, "-infinity").await?;
        if sessions == backend.pool_status().size as i64 {
            return Ok(());
        }
        assert!(
            started.elapsed() < StdDuration::from_secs(1),
            "{sessions} sessions for {:?}",
            backend.pool_status()
        );
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_several_statements_is_one_transaction_even_when_given_up(
) -> coordinate::Result<()> {
    let (db, backend, unit) = backend_with_a_unit().await?;
    let spec = unit.work_spec();
    // Six units of 4 MiB, more than one statement carries: sent in two
    // parts, the second with the existing `u`.
    let batch = || {
        let pad = "x".repeat(MAX_DATA_BYTES - 20);
        ["a", "b", "c", "d", "e", "u"]
            .map(|name| NewWorkUnit::new(name, data!({ "pad": pad.clone() })))
            .to_vec()
    };
    let size = backend.pool_status().size;
    let admin = db.sql().await;
    admin
        .batch_execute(
            "BEGIN; SELECT 1 FROM work_unit WHERE name = convert_to('u', 'UTF8') FOR UPDATE",
        )
        .await
        .map_err(Error::backend)?;

    let adding = tokio::spawn({
        let spec = spec.clone();
        let batch = batch();
        async move { spec.add_work_units(batch).await }
    });
    let waiting = within(StdDuration::from_secs(20), || async {
        Ok(lock_waiters(&admin).await > 0)
    })
    .await?;
    assert!(waiting, "the second statement never waited for the lock");
    // The first part's units are not visible while the rest waits, and the
    // batch holds none of the spec's counters: it takes them after the
    // units, as every other writer does, so it deadlocks with none.
    let row = admin
        .query_one("SELECT count(*) FROM work_unit", &[])
        .await
        .map_err(Error::backend)?;
    assert_eq!(row.try_get::<_, i64>(0).map_err(Error::backend)?, 1);
    let counters = admin
        .query("SELECT 1 FROM work_unit_count FOR UPDATE NOWAIT", &[])
        .await
        .map_err(Error::backend)?;
    assert!(!counters.is_empty());

    adding.abort();
    assert!(adding.await.is_err_and(|e| e.is_cancelled()));
    // The connection is closed once its cancelled statement has ended.
    let closed = within(StdDuration::from_secs(5), || async {
        Ok(backend.pool_status().closed == 1)
    })
    .await?;
    assert!(closed, "not closed: {:?}", backend.pool_status());
    let status = unlocked(&backend, &admin).await?;
    assert_eq!(
        (status.size, status.cancelled, status.closed),
        (size - 1, 1, 1)
    );
    admin
        .batch_execute("COMMIT")
        .await
        .map_err(Error::backend)?;
    assert_eq!(
        spec.count_work_unit_status().await?.values().sum::<u64>(),
        1
    );
    assert_eq!(unit.data().await?, data!({}));

    let added = spec.add_work_units(batch()).await?;
    assert_eq!(added.len(), 6);
    assert_eq!(
        spec.count_work_unit_status().await?.values().sum::<u64>(),
        6
    );
    assert_eq!(unit.data().await?, batch()[5].data);
    assert_sessions_are_the_pools(&backend, &admin).await?;
    // Twice on one connection: the second stages in a table of its own.
    let single = db.server(&MockClock::new(), Some(1)).await;
    let spec = single.namespace("ns").await?.work_spec("spec").await?;
    for _ in 0..2 {
        assert_eq!(spec.add_work_units(batch()).await?.len(), 6);
    }
    Ok(())
}
