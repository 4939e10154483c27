//! Coherent caches across job servers on PostgreSQL: two caches over two
//! separate `PostgresBackend`s (two pools, two listening connections) on one
//! harness database stand for two job servers.
#![cfg(feature = "testing")]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

use coordinate::cache::Cache;
use coordinate::feed::{ChangeEvent, DeletedUnits, PurgeScope};
use coordinate::postgres::testing::{DatabaseLease, TestCluster};
use coordinate::postgres::PostgresBackend;
use coordinate::rules::limits::MAX_NAME_BYTES;
use coordinate::{
    data, AttemptRequest, Backend, BackendExt, Duration, Error, NewWorkUnit, WorkUnitMeta,
    WorkUnitQuery,
};

type Server = Cache<PostgresBackend>;

/// The tests of this file take turns. Several assert delivery within
/// 100 ms, and on a 2-core machine they must not share it with the
/// 10,000-delete burst or a cluster restart running beside them.
static TAKE_TURNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long another server may take to see a change before a test fails:
/// a bound for liveness, far above the latency `benches/feed.rs` measures,
/// so that a loaded machine cannot fail the test.
const PROPAGATION_DEADLINE: StdDuration = StdDuration::from_secs(5);

/// Two backends (two pools, two listening connections) on one fresh
/// database, and its URL.
async fn two_backends() -> (PostgresBackend, PostgresBackend, String, DatabaseLease) {
    let cluster = TestCluster::shared_or_panic();
    let (one, lease) = cluster
        .lease_backend(coordinate::SystemClock)
        .await
        .expect("lease");
    let url = cluster.database_url(lease.database());
    let two = PostgresBackend::connect(&url)
        .await
        .expect("second backend");
    (one, two, url, lease)
}

/// Two job servers on one fresh database, both subscribed.
async fn two_servers() -> (Server, Server, String, DatabaseLease) {
    let (one, two, url, lease) = two_backends().await;
    let (one, two) = (Cache::new(one), Cache::new(two));
    for cache in [&one, &two] {
        assert!(
            wait_until(StdDuration::from_secs(5), || cache.stats().feed.subscribed).await,
            "not subscribed"
        );
    }
    (one, two, url, lease)
}

async fn wait_until(limit: StdDuration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        tokio::time::sleep(StdDuration::from_millis(2)).await;
    }
    check()
}

/// Asserts that a lookup of unit `unit` of spec `spec` through `server`
/// comes to fail as missing, and prints how long that took.
async fn assert_unit_gone(server: &Server, spec: &str, unit: &str) {
    let took = time_until_unit_gone(server, spec, unit)
        .await
        .unwrap_or_else(|| panic!("not seen within {PROPAGATION_DEADLINE:?}"));
    eprintln!("seen after {took:?}");
}

/// How long until `server`'s lookup of the unit fails with `NoSuch…`
/// (polled), or `None` after [`PROPAGATION_DEADLINE`].
async fn time_until_unit_gone(server: &Server, spec: &str, unit: &str) -> Option<StdDuration> {
    let start = Instant::now();
    while start.elapsed() < PROPAGATION_DEADLINE {
        match server.work_unit_at("ns", spec, unit).await {
            Err(Error::NoSuchWorkUnit { .. } | Error::NoSuchWorkSpec { .. }) => {
                return Some(start.elapsed())
            }
            // A lookup racing with the namespace's destruction may find its
            // cached namespace handle dead and answer `Gone`: poll on.
            Ok(_) | Err(Error::Gone { .. }) => tokio::task::yield_now().await,
            Err(e) => panic!("lookup failed: {e}"),
        }
    }
    None
}

async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("admin connection");
    tokio::spawn(connection);
    client
}

async fn add_units(server: &Server, spec: &str, names: &[&str]) -> coordinate::Result<()> {
    let spec = server
        .namespace("ns")
        .await?
        .set_work_spec(data!({ "name": spec }))
        .await?;
    for name in names {
        spec.add_work_unit(name, data!({}), WorkUnitMeta::default())
            .await?;
    }
    Ok(())
}

/// Looks unit "a" up through `server` (its job server's traffic, which
/// resubscribes it after a gap; answers bypass the cache meanwhile) until
/// it is subscribed again, at most five seconds; answers whether it is.
async fn resubscribed_by_lookups(server: &Server) -> bool {
    let start = Instant::now();
    while start.elapsed() < StdDuration::from_secs(5) {
        let _ = server.work_unit_at("ns", "spec", "a").await;
        if server.stats().feed.subscribed {
            return true;
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    false
}

/// Deletes unit "b" through `one` and asserts that `two`, which looked it
/// up, comes to answer it missing: events flow from one to two.
async fn assert_delete_of_b_seen(one: &Server, two: &Server) -> coordinate::Result<()> {
    two.work_unit_at("ns", "spec", "b").await?;
    one.work_spec_at("ns", "spec")
        .await?
        .delete_work_units(&named(&["b"]))
        .await?;
    assert_unit_gone(two, "spec", "b").await;
    Ok(())
}

fn named(names: &[&str]) -> WorkUnitQuery {
    WorkUnitQuery {
        names: names.iter().map(|n| n.to_string()).collect(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_in_one_server_reach_the_other() -> coordinate::Result<()> {
    let _turn = TAKE_TURNS.lock().await;
    let (one, two, _url, _lease) = two_servers().await;
    add_units(&one, "spec", &["a", "b", "c"]).await?;
    add_units(&one, "other", &["x"]).await?;
    for unit in ["a", "b", "c"] {
        two.work_unit_at("ns", "spec", unit).await?;
    }
    two.work_unit_at("ns", "other", "x").await?;

    // A unit.
    one.work_spec_at("ns", "spec")
        .await?
        .delete_work_units(&named(&["a"]))
        .await?;
    assert_unit_gone(&two, "spec", "a").await;
    // Only the named entry went: "b" is still a hit.
    let hits = two.stats().work_units.hits;
    two.work_unit_at("ns", "spec", "b").await?;
    assert_eq!(two.stats().work_units.hits, hits + 1);

    // A spec.
    one.namespace("ns").await?.destroy_work_spec("spec").await?;
    assert_unit_gone(&two, "spec", "b").await;
    assert!(matches!(
        two.work_spec_at("ns", "spec").await,
        Err(Error::NoSuchWorkSpec { .. })
    ));

    // A namespace.
    one.namespace("ns").await?.destroy().await?;
    assert_unit_gone(&two, "other", "x").await;
    assert!(two.stats().feed.events_applied >= 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_in_one_is_seen_by_the_others_cached_handles() -> coordinate::Result<()> {
    let _turn = TAKE_TURNS.lock().await;
    let (one, two, _url, _lease) = two_servers().await;
    add_units(&one, "spec", &["a"]).await?;
    let held_spec = two.work_spec_at("ns", "spec").await?;
    let held_unit = two.work_unit_at("ns", "spec", "a").await?;
    one.namespace("ns").await?.destroy_work_spec("spec").await?;
    add_units(&one, "spec", &["a"]).await?;
    one.work_unit_at("ns", "spec", "a")
        .await?
        .set_priority(9.0)
        .await?;
    assert_eq!(held_unit.priority().await?, 9.0);
    assert_eq!(held_spec.work_unit("a").await?.priority().await?, 9.0);
    assert_eq!(
        two.work_unit_at("ns", "spec", "a")
            .await?
            .priority()
            .await?,
        9.0
    );
    Ok(())
}

/// A cache that hears of no change (built outside a runtime, so never
/// subscribed) holds a worker whose namespace another server destroys and
/// makes again. PostgreSQL lists no workers under a destroyed namespace
/// rather than failing; the held worker must still follow its name to the
/// new namespace's worker, and answer `Gone` when there is none, creating
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_worker_follows_its_namespace_made_again_unheard() -> coordinate::Result<()> {
    let _turn = TAKE_TURNS.lock().await;
    let (plain, other, _url, _lease) = two_backends().await;
    let deaf = std::thread::spawn(move || Cache::new(other))
        .join()
        .expect("cache built");
    let held = deaf.namespace("ns").await?.worker("w").await?;
    let kept = deaf.namespace("ns").await?.worker("kept").await?;
    plain.namespace("ns").await?.destroy().await?;
    let again = plain.namespace("ns").await?;
    let now = coordinate::Clock::now(&coordinate::SystemClock);
    again
        .worker("w")
        .await?
        .update(data!({"made": "again"}), now, now, "")
        .await?;

    assert_eq!(held.data().await?, data!({"made": "again"}));
    assert!(matches!(kept.data().await, Err(Error::Gone { .. })));
    let names: Vec<String> = again.workers().await?.into_keys().collect();
    assert_eq!(names, ["w"], "recovery created no worker");
    Ok(())
}

/// Waits until `server` applied an event after the `before` it had.
async fn event_applied_after(server: &Server, before: u64) {
    assert!(
        wait_until(PROPAGATION_DEADLINE, || server.stats().feed.events_applied
            > before)
        .await,
        "no event applied"
    );
}

/// Server one deletes unit "u000" of a spec (in one statement with
/// `others` more, or with its whole spec) and makes it again with an
/// attempt; answers how many attempts server two's kept handle of
/// "u000" then lists.
async fn kept_unit_after_delete(others: usize, destroy: bool) -> coordinate::Result<usize> {
    let (one, two, _url, _lease) = two_servers().await;
    let ns = one.namespace("ns").await?;
    let spec = ns.set_work_spec(data!({"name": "spec"})).await?;
    let units = (0..=others)
        .map(|i| NewWorkUnit::new(format!("u{i:03}"), data!({})))
        .collect();
    spec.add_work_units(units).await?;
    let kept = two.work_unit_at("ns", "spec", "u000").await?;
    assert!(kept.attempts().await?.is_empty());
    let before = two.stats().feed.events_applied;
    let spec = if destroy {
        ns.destroy_work_spec("spec").await?;
        ns.set_work_spec(data!({"name": "spec"})).await?
    } else {
        spec.delete_work_units(&WorkUnitQuery::default()).await?;
        spec
    };
    event_applied_after(&two, before).await;
    let again = spec
        .add_work_unit("u000", data!({}), WorkUnitMeta::default())
        .await?;
    let worker = one.worker_at("ns", "w").await?;
    worker.make_attempt(&again, Duration::minutes(10)).await?;
    assert!(kept.active_attempt().await?.is_some());
    assert_eq!(kept.num_attempts().await?, 1);
    Ok(kept.attempts().await?.len())
}

/// A kept unit handle lists the attempts of the unit that now has its
/// name after another server deleted its unit without naming it (a delete
/// of more units than an event names) or destroyed its spec: the event
/// drops no entry of the unit, so the handle learns of the delete from the
/// `Gone` of its old unit's lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_unit_follows_its_name_after_unnamed_deletes() -> coordinate::Result<()> {
    let _turn = TAKE_TURNS.lock().await;
    assert_eq!(kept_unit_after_delete(0, false).await?, 1, "named delete");
    assert_eq!(
        kept_unit_after_delete(200, false).await?,
        1,
        "spec-wide delete"
    );
    assert_eq!(kept_unit_after_delete(0, true).await?, 1, "spec destroyed");
    Ok(())
}

/// Server one destroys namespace "ns"; answers once server two has applied
/// the event.
async fn destroy_namespace_seen_by(one: &Server, two: &Server) -> coordinate::Result<()> {
    let before = two.stats().feed.events_applied;
    one.namespace("ns").await?.destroy().await?;
    event_applied_after(two, before).await;
    Ok(())
}

/// A kept worker handle asking for work after another server destroyed
/// and remade its namespace, and a worker of its name in it, is handed the
/// remade namespace's units: its old worker's request answers `Gone`, not
/// an empty hand-out, so the handle follows its name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_worker_gets_the_work_of_its_namespace_remade() -> coordinate::Result<()> {
    let _turn = TAKE_TURNS.lock().await;
    let (one, two, _url, _lease) = two_servers().await;
    one.worker_at("ns", "w").await?;
    let kept = two.worker_at("ns", "w").await?;
    assert!(kept
        .request_attempts(&AttemptRequest::units(1))
        .await?
        .is_empty());
    destroy_namespace_seen_by(&one, &two).await?;
    let spec = one
        .namespace("ns")
        .await?
        .set_work_spec(data!({"name": "spec"}))
        .await?;
    spec.add_work_unit("u", data!({}), WorkUnitMeta::default())
        .await?;
    one.worker_at("ns", "w").await?;
    let handed: Vec<String> = kept
        .request_attempts(&AttemptRequest::units(1))
        .await?
        .iter()
        .map(|a| a.work_unit().name().to_string())
        .collect();
    assert_eq!(handed, ["u"], "work of the namespace made again");
    Ok(())
}

/// A kept worker handle follows its name after another server destroyed
/// and remade its namespace: it never lists the old worker's (empty)
/// family, which it learns is gone from the lists' `Gone`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_worker_follows_its_name_after_its_namespace_is_remade() -> coordinate::Result<()> {
    let _turn = TAKE_TURNS.lock().await;
    let (one, two, _url, _lease) = two_servers().await;
    one.worker_at("ns", "w").await?;
    let kept = two.worker_at("ns", "w").await?;
    assert!(kept.children().await?.is_empty());
    destroy_namespace_seen_by(&one, &two).await?;
    let w = one.worker_at("ns", "w").await?;
    one.worker_at("ns", "c").await?.set_parent(Some(&w)).await?;
    let children: Vec<String> = kept
        .children()
        .await?
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    assert_eq!(children, ["c"], "children of the namespace made again");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolled_back_delete_sends_nothing_and_admin_deletes_are_seen() -> coordinate::Result<()> {
    let _turn = TAKE_TURNS.lock().await;
    let (one, two, url, _lease) = two_servers().await;
    add_units(&one, "spec", &["a", "b"]).await?;
    two.work_unit_at("ns", "spec", "a").await?;
    let before = two.stats().feed;
    let mut sql = admin(&url).await;
    let tx = sql.transaction().await.expect("begin");
    tx.execute("DELETE FROM work_unit WHERE name = 'a'::bytea", &[])
        .await
        .expect("delete");
    tx.rollback().await.expect("rollback");
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert_eq!(two.stats().feed.events_applied, before.events_applied);
    let hits = two.stats().work_units.hits;
    two.work_unit_at("ns", "spec", "a").await?;
    assert_eq!(two.stats().work_units.hits, hits + 1, "entry kept");

    // The same delete, committed by hand, is announced like any other.
    sql.execute("DELETE FROM work_unit WHERE name = 'a'::bytea", &[])
        .await
        .expect("delete");
    assert_unit_gone(&two, "spec", "a").await;
    Ok(())
}

/// One statement deleting units of several specs: each spec's event lists
/// its names when they are at most 200, and is spec-wide past that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_delete_lists_up_to_200_names_per_spec() -> coordinate::Result<()> {
    let _turn = TAKE_TURNS.lock().await;
    let (one, _two, url, _lease) = two_backends().await;
    let ns = one.namespace("ns").await?;
    for (spec, units) in [("few", 3), ("edge", 200), ("many", 201)] {
        let spec = ns.set_work_spec(data!({ "name": spec })).await?;
        let units = (0..units)
            .map(|i| NewWorkUnit::new(format!("u{i:03}"), data!({})))
            .collect();
        spec.add_work_units(units).await?;
    }
    let feed = one.change_feed().expect("a feed");
    let mut sub = feed.subscribe().await?;
    let deleted = admin(&url)
        .await
        .execute("DELETE FROM work_unit", &[])
        .await
        .expect("delete");
    assert_eq!(deleted, 404);
    let mut events = Vec::new();
    while events.len() < 3 {
        let next = tokio::time::timeout(StdDuration::from_secs(5), sub.recv()).await;
        events.push(next.expect("an event").expect("no gap"));
    }
    let listed = |spec: &str, n: usize| ChangeEvent::WorkUnitsDeleted {
        namespace: "ns".into(),
        work_spec: spec.into(),
        units: DeletedUnits::Names((0..n).map(|i| format!("u{i:03}")).collect()),
    };
    for expected in [
        listed("few", 3),
        listed("edge", 200),
        ChangeEvent::WorkUnitsDeleted {
            namespace: "ns".into(),
            work_spec: "many".into(),
            units: DeletedUnits::All,
        },
    ] {
        let sorted = events.iter().map(|e| match e {
            ChangeEvent::WorkUnitsDeleted {
                namespace,
                work_spec,
                units: DeletedUnits::Names(names),
            } => {
                let mut names = names.clone();
                names.sort();
                ChangeEvent::WorkUnitsDeleted {
                    namespace: namespace.clone(),
                    work_spec: work_spec.clone(),
                    units: DeletedUnits::Names(names),
                }
            }
            other => other.clone(),
        });
        assert!(
            sorted.clone().any(|e| e == expected),
            "{expected:?} not in {events:?}"
        );
    }
    Ok(())
}

/// A destroyed namespace's worker that was the parent of a worker of
/// another namespace: that child's parent changed, and the feed says so,
/// as the memory backend's does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destroy_announces_the_children_elsewhere_it_orphans() -> coordinate::Result<()> {
    let _turn = TAKE_TURNS.lock().await;
    let (one, _two, _url, _lease) = two_backends().await;
    let parent = one.worker_at("a", "p").await?;
    let child = one.worker_at("b", "c").await?;
    child.set_parent(Some(&parent)).await?;
    let feed = one.change_feed().expect("a feed");
    let mut sub = feed.subscribe().await?;
    one.namespace("a").await?.destroy().await?;
    let expected = [
        ChangeEvent::NamespaceDestroyed {
            namespace: "a".into(),
        },
        ChangeEvent::WorkerChanged {
            namespace: "b".into(),
            worker: "c".into(),
        },
    ];
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + PROPAGATION_DEADLINE;
    while !expected.iter().all(|e| events.contains(e)) {
        match tokio::time::timeout_at(deadline, sub.recv()).await {
            Ok(Ok(event)) => events.push(event),
            other => panic!("{other:?} before {expected:?} were all in {events:?}"),
        }
    }
    Ok(())
}

/// A unit, spec, namespace or worker renamed by hand is announced as the
/// old name's delete: a cache that resolved the old name stops answering
/// with the renamed object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_renames_are_seen_as_deletes_of_the_old_names() -> coordinate::Result<()> {
    let _turn = TAKE_TURNS.lock().await;
    let (one, two, url, _lease) = two_servers().await;
    add_units(&one, "spec", &["a", "b"]).await?;
    let sql = admin(&url).await;
    let rename = |table: &'static str, from: &'static str, to: &'static str| {
        let sql = &sql;
        async move {
            let statement =
                format!("UPDATE {table} SET name = '{to}'::bytea WHERE name = '{from}'::bytea");
            let renamed = sql.execute(&statement, &[]).await;
            assert_eq!(renamed.map_err(|e| e.to_string()), Ok(1), "{statement}");
        }
    };

    let held = two.work_unit_at("ns", "spec", "a").await?;
    rename("work_unit", "a", "z").await;
    assert_unit_gone(&two, "spec", "a").await;
    let got = held.status().await;
    assert!(
        matches!(got, Err(Error::Gone { .. } | Error::NoSuchWorkUnit { .. })),
        "a kept handle of the old name answers for no object: {got:?}"
    );

    let held = two.work_spec_at("ns", "spec").await?;
    two.work_unit_at("ns", "spec", "b").await?;
    rename("work_spec", "spec", "other").await;
    assert_unit_gone(&two, "spec", "b").await;
    let got = held.meta(false).await;
    assert!(
        matches!(got, Err(Error::Gone { .. } | Error::NoSuchWorkSpec { .. })),
        "a kept handle of the old name answers for no object: {got:?}"
    );

    two.worker_at("ns", "w").await?;
    let before = two.stats().feed.events_applied;
    rename("worker", "w", "v").await;
    assert!(
        wait_until(PROPAGATION_DEADLINE, || two.stats().feed.events_applied
            > before)
        .await
    );
    let loads = two.stats().workers.backend_loads;
    two.worker_at("ns", "w").await?;
    assert_eq!(two.stats().workers.backend_loads, loads + 1, "entry kept");

    two.work_unit_at("ns", "other", "b").await?;
    rename("namespace", "ns", "elsewhere").await;
    assert_unit_gone(&two, "other", "b").await;
    Ok(())
}

/// A namespace of many specs destroyed: one event, not one per spec, so no
/// listener falls behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroying_a_namespace_of_many_specs_is_one_event() -> coordinate::Result<()> {
    let _turn = TAKE_TURNS.lock().await;
    let (one, two, _url, _lease) = two_servers().await;
    let ns = one.namespace("many").await?;
    for i in 0..300 {
        ns.set_work_spec(data!({ "name": format!("s{i:03}") }))
            .await?;
    }
    two.work_spec_at("many", "s000").await?;
    let before = two.stats().feed;
    ns.destroy().await?;
    let seen = wait_until(PROPAGATION_DEADLINE, || {
        two.stats().feed.events_applied > before.events_applied
    })
    .await;
    assert!(seen, "{:?}", two.stats().feed);
    // Stragglers, if the events were many, arrive meanwhile.
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    let after = two.stats().feed;
    assert_eq!(after.events_applied - before.events_applied, 1, "{after:?}");
    assert_eq!(after.gaps, before.gaps);
    assert!(matches!(
        two.work_spec_at("many", "s000").await,
        Err(Error::NoSuchWorkSpec { .. })
    ));
    Ok(())
}

/// Subscribing the first time drops nothing (nothing was cached before):
/// no flush, gap or reconnect to count, so an alert on them stays quiet at
/// start-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_subscription_counts_no_flush() {
    let _turn = TAKE_TURNS.lock().await;
    let (one, two, _url, _lease) = two_servers().await;
    for cache in [&one, &two] {
        let feed = cache.stats().feed;
        assert!(feed.subscribed);
        assert_eq!((feed.flushes, feed.gaps, feed.reconnects), (0, 0, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_listener_flushes_reconnects_and_events_flow_again() -> coordinate::Result<()> {
    let _turn = TAKE_TURNS.lock().await;
    let (one, two, url, _lease) = two_servers().await;
    add_units(&one, "spec", &["a", "b"]).await?;
    two.work_unit_at("ns", "spec", "a").await?;
    let pid = two.get_ref().feed_listener_pid().await.expect("listening");
    let before = two.stats().feed;
    admin(&url)
        .await
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .expect("terminate");
    let start = Instant::now();
    assert!(
        wait_until(PROPAGATION_DEADLINE, || {
            let f = two.stats().feed;
            f.gaps > before.gaps && f.reconnects > before.reconnects && f.subscribed
        })
        .await,
        "{:?}",
        two.stats().feed
    );
    let reconnected = start.elapsed();
    eprintln!("reconnected {reconnected:?} after pg_terminate_backend");
    assert!(two.stats().feed.flushes >= before.flushes + 2);
    assert_ne!(two.get_ref().feed_listener_pid().await, Some(pid));
    // Flushed: the next lookup loads again; then events flow again.
    let loads = two.stats().work_units.backend_loads;
    two.work_unit_at("ns", "spec", "b").await?;
    assert_eq!(two.stats().work_units.backend_loads, loads + 1);
    assert_delete_of_b_seen(&one, &two).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_10000_deletes_leaves_no_stale_entry() -> coordinate::Result<()> {
    let _turn = TAKE_TURNS.lock().await;
    let (one, two, url, _lease) = two_servers().await;
    const N: usize = 10_000;
    add_units(&one, "burst", &[]).await?;
    admin(&url)
        .await
        .execute(
            "INSERT INTO work_unit (work_spec_id, name, data, priority)
             SELECT s.id, convert_to('u' || g, 'UTF8'), '{}'::jsonb, 0
             FROM work_spec s, generate_series(0, $1::int - 1) g
             WHERE s.name = 'burst'::bytea",
            &[&(N as i32)],
        )
        .await
        .expect("insert units");
    let names: Vec<String> = (0..N).map(|i| format!("u{i}")).collect();
    let spec = two.work_spec_at("ns", "burst").await?;
    for name in &names {
        spec.work_unit(name).await?;
    }
    let before = two.stats().feed;
    // 10,000 separate deleting statements from the other server, 4 at a time.
    let spec_one = one.work_spec_at("ns", "burst").await?;
    let tasks: Vec<tokio::task::JoinHandle<coordinate::Result<()>>> = (0..4)
        .map(|t| {
            let spec = spec_one.clone();
            let names: Vec<String> = names.iter().skip(t).step_by(4).cloned().collect();
            tokio::spawn(async move {
                for name in names {
                    let q = WorkUnitQuery {
                        names: vec![name],
                        ..Default::default()
                    };
                    spec.delete_work_units(&q).await?;
                }
                Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("join")?;
    }
    let deleted_at = Instant::now();
    assert!(
        wait_until(StdDuration::from_secs(10), || {
            let f = two.stats().feed;
            f.events_applied >= before.events_applied + N as u64 || f.gaps > before.gaps
        })
        .await
    );
    let drained = deleted_at.elapsed();
    let mut stale = 0;
    for name in &names {
        match spec.work_unit(name).await {
            Err(Error::NoSuchWorkUnit { .. }) => {}
            _ => stale += 1,
        }
    }
    eprintln!(
        "burst: drained {drained:?} after the last delete; {stale} stale; {:?}",
        two.stats().feed
    );
    assert_eq!(stale, 0);

    // A large delete by query becomes one spec-wide event.
    add_units(&one, "big", &[]).await?;
    let big_names: Vec<String> = (0..500).map(|i| format!("b{i}")).collect();
    let big = one.work_spec_at("ns", "big").await?;
    for name in &big_names {
        big.add_work_unit(name, data!({}), WorkUnitMeta::default())
            .await?;
    }
    let spec2 = two.work_spec_at("ns", "big").await?;
    for name in &big_names {
        spec2.work_unit(name).await?;
    }
    let applied = two.stats().feed.events_applied;
    big.delete_work_units(&WorkUnitQuery::default()).await?;
    assert_unit_gone(&two, "big", "b499").await;
    for name in &big_names {
        assert!(matches!(
            spec2.work_unit(name).await,
            Err(Error::NoSuchWorkUnit { .. })
        ));
    }
    assert_eq!(two.stats().feed.events_applied, applied + 1, "one event");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_purge_reaches_the_other_server() -> coordinate::Result<()> {
    let _turn = TAKE_TURNS.lock().await;
    let (one, two, _url, _lease) = two_servers().await;
    add_units(&one, "spec", &["a"]).await?;
    two.work_unit_at("ns", "spec", "a").await?;
    let loads = two.stats().work_units.backend_loads;
    one.broadcast_purge(
        PurgeScope::WorkUnit {
            namespace: "ns".into(),
            work_spec: "spec".into(),
            work_unit: "a".into(),
        },
        "operator asked",
    )
    .await?;
    assert!(
        wait_until(PROPAGATION_DEADLINE, || two
            .stats()
            .work_units
            .invalidations
            > 0)
        .await
    );
    two.work_unit_at("ns", "spec", "a").await?;
    assert_eq!(two.stats().work_units.backend_loads, loads + 1);
    Ok(())
}

/// The second job server as its own OS process: this test binary run again
/// with `FEED_CHILD_URL` set runs only [`child_job_server`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_job_server_in_another_process() -> coordinate::Result<()> {
    let _turn = TAKE_TURNS.lock().await;
    let (one, _two, url, _lease) = two_servers().await;
    add_units(&one, "spec", &["a"]).await?;
    let mut child = Reaped(
        Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "child_job_server",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("FEED_CHILD_URL", &url)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn child"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    expect(&mut lines, "READY").await;
    let start = Instant::now();
    one.work_spec_at("ns", "spec")
        .await?
        .delete_work_units(&named(&["a"]))
        .await?;
    let child_ms: f64 = expect(&mut lines, "SAW_DELETE").await.parse().expect("ms");
    let seen = start.elapsed();
    eprintln!("other process reported the delete {seen:?} after the delete call ({child_ms:.1} ms after READY)");
    assert!(child.0.wait().expect("child").success());
    Ok(())
}

/// A child process that is killed and reaped if the test fails early.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The rest of the first line of the child's output holding `what`.
async fn expect(lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>, what: &str) -> String {
    tokio::time::timeout(StdDuration::from_secs(30), async {
        while let Some(line) = lines.recv().await {
            // libtest may print "test child_job_server ... " before it.
            if let Some(at) = line.find(what) {
                return line[at + what.len()..].trim().to_string();
            }
        }
        panic!("child ended before {what}");
    })
    .await
    .expect("child timed out")
}

/// The child mode of [`second_job_server_in_another_process`]; does nothing
/// in a normal run.
#[test]
fn child_job_server() {
    let Ok(url) = std::env::var("FEED_CHILD_URL") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let cache = Cache::new(PostgresBackend::connect(&url).await.expect("connect"));
        assert!(wait_until(StdDuration::from_secs(5), || cache.stats().feed.subscribed).await);
        cache.work_unit_at("ns", "spec", "a").await.expect("warm");
        println!("READY");
        // Cached from here on: a lookup answers NoSuch… only after the event.
        let start = Instant::now();
        loop {
            match cache.work_unit_at("ns", "spec", "a").await {
                // Poll, don't spin: a spinning child would take a core from
                // the server whose notification it is waiting for.
                Ok(_) => tokio::time::sleep(StdDuration::from_millis(1)).await,
                Err(Error::NoSuchWorkUnit { .. }) => break,
                Err(e) => panic!("{e}"),
            }
            assert!(
                start.elapsed() < StdDuration::from_secs(10),
                "never saw the delete"
            );
        }
        // Measured from READY, so it includes the parent's delete round trip.
        println!("SAW_DELETE {}", start.elapsed().as_secs_f64() * 1e3);
    });
}

/// A listening connection that stops answering without closing (its server
/// process stopped, as a connection dropped by the network looks): the
/// heartbeat takes it for lost, the cache flushes and listens again on a new
/// connection, and events flow again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_stops_answering_is_taken_for_lost() -> coordinate::Result<()> {
    let _turn = TAKE_TURNS.lock().await;
    let cluster = TestCluster::shared_or_panic();
    if cluster.dir().is_none() {
        eprintln!("skipped: the server is not this machine's to signal");
        return Ok(());
    }
    let (one, lease) = cluster.lease_backend(coordinate::SystemClock).await?;
    let url = cluster.database_url(lease.database());
    let two = PostgresBackend::builder(&url)
        .connect_timeout(StdDuration::from_secs(2))
        .feed_heartbeat(StdDuration::from_millis(100))
        .build()
        .await?;
    let (one, two) = (Cache::new(one), Cache::new(two));
    assert!(wait_until(StdDuration::from_secs(5), || two.stats().feed.subscribed).await);
    add_units(&one, "spec", &["a", "b"]).await?;
    let pid = two.get_ref().feed_listener_pid().await.expect("listening");
    let before = two.stats().feed;

    let signal = |name: &str| {
        let status = Command::new("kill")
            .args([format!("-{name}"), pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} {pid}");
    };
    signal("STOP");
    let lost = wait_until(StdDuration::from_secs(5), || {
        two.stats().feed.gaps > before.gaps
    })
    .await;
    signal("CONT");
    assert!(lost, "{:?}", two.stats().feed);

    // The job server's traffic resubscribes it, on a new connection.
    assert!(
        resubscribed_by_lookups(&two).await,
        "{:?}",
        two.stats().feed
    );
    assert_ne!(two.get_ref().feed_listener_pid().await, Some(pid));
    assert_delete_of_b_seen(&one, &two).await
}

/// A unix socket standing in for the server's: it passes connections
/// through to `server` until told to stall, then accepts new ones and never
/// answers them, as a frozen server or a stalled proxy in front of one
/// does.
struct StallingProxy {
    dir: std::path::PathBuf,
    stalled: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl StallingProxy {
    fn start(server: std::path::PathBuf) -> StallingProxy {
        let dir = std::env::temp_dir().join(format!("coordinate-stall-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("proxy directory");
        let listener = tokio::net::UnixListener::bind(dir.join(".s.PGSQL.5432")).expect("bind");
        let stalled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stalling = stalled.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut client, _)) = listener.accept().await {
                if stalling.load(std::sync::atomic::Ordering::SeqCst) {
                    held.push(client);
                    continue;
                }
                let server = server.clone();
                tokio::spawn(async move {
                    if let Ok(mut upstream) = tokio::net::UnixStream::connect(server).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
            }
        });
        StallingProxy { dir, stalled, task }
    }

    fn stall(&self) {
        self.stalled
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for StallingProxy {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A listening connection the server accepts but never answers fails
/// within the connect timeout, handshake included, instead of holding the
/// subscription (and the cache's way back to its feed) for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listening_connection_never_answered_fails_within_the_connect_timeout(
) -> coordinate::Result<()> {
    let _turn = TAKE_TURNS.lock().await;
    let cluster = TestCluster::shared_or_panic();
    let Some(server_dir) = cluster.dir() else {
        eprintln!("skipped: the server's socket is not this machine's to stand in for");
        return Ok(());
    };
    let (_one, lease) = cluster.lease_backend(coordinate::SystemClock).await?;
    let proxy = StallingProxy::start(server_dir.join(".s.PGSQL.5432"));
    let url = format!(
        "host={} port=5432 user=postgres dbname={}",
        proxy.dir.display(),
        lease.database()
    );
    let timeout = StdDuration::from_secs(2);
    let backend = PostgresBackend::builder(&url)
        .connect_timeout(timeout)
        .build()
        .await?;
    proxy.stall();
    let started = Instant::now();
    let feed = backend.change_feed().expect("a feed");
    let subscribed = tokio::time::timeout(timeout * 10, feed.subscribe()).await;
    let elapsed = started.elapsed();
    match subscribed {
        Ok(Err(Error::Backend(_))) => {}
        Ok(Err(e)) => panic!("after {elapsed:?}: not a backend error: {e:?}"),
        Ok(Ok(_)) => panic!("after {elapsed:?}: subscribed through a stalled server"),
        Err(_) => panic!("still connecting after {elapsed:?}"),
    }
    assert!(elapsed < timeout * 3, "failed only after {elapsed:?}");
    Ok(())
}

/// The heartbeat probes the listening connection as often as asked, and
/// never when asked for zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_probes_as_often_as_asked_and_zero_is_never() -> coordinate::Result<()> {
    let _turn = TAKE_TURNS.lock().await;
    let cluster = TestCluster::shared_or_panic();
    let (_one, lease) = cluster.lease_backend(coordinate::SystemClock).await?;
    let url = cluster.database_url(lease.database());
    let sql = admin(&url).await;
    for (every, probed) in [
        (StdDuration::from_millis(20), true),
        (StdDuration::ZERO, false),
    ] {
        let backend = PostgresBackend::builder(&url)
            .feed_heartbeat(every)
            .build()
            .await?;
        let _subscription = backend.change_feed().expect("a feed").subscribe().await?;
        let pid = backend.feed_listener_pid().await.expect("listening");
        let last_statement = || async {
            let row = sql
                .query_one("SELECT query FROM pg_stat_activity WHERE pid = $1", &[&pid])
                .await
                .expect("the listener's activity");
            row.get::<_, String>(0)
        };
        if probed {
            let start = Instant::now();
            while last_statement().await != "SELECT 1" {
                assert!(
                    start.elapsed() < PROPAGATION_DEADLINE,
                    "{every:?}: no probe"
                );
                tokio::time::sleep(StdDuration::from_millis(20)).await;
            }
        } else {
            // Fifteen times the probing period above, and still none.
            tokio::time::sleep(StdDuration::from_millis(300)).await;
            let last = last_statement().await;
            assert_ne!(last, "SELECT 1", "{every:?}: probed");
        }
    }
    Ok(())
}

/// A server restart (on a private cluster): the cache flushes, bypasses
/// itself while the server is down, and resubscribes within a second of the
/// server accepting connections again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_resubscribes_on_the_next_lookups() -> coordinate::Result<()> {
    let _turn = TAKE_TURNS.lock().await;
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let (one, lease) = cluster.lease_backend(coordinate::SystemClock).await?;
    let url = cluster.database_url(lease.database());
    let two = PostgresBackend::connect(&url).await?;
    let (one, two) = (Cache::new(one), Cache::new(two));
    assert!(wait_until(StdDuration::from_secs(5), || two.stats().feed.subscribed).await);
    add_units(&one, "spec", &["a", "b"]).await?;
    two.work_unit_at("ns", "spec", "a").await?;
    let held = two.work_spec_at("ns", "spec").await?;

    cluster.stop_server().map_err(Error::backend)?;
    assert!(
        wait_until(StdDuration::from_secs(5), || two.stats().feed.gaps >= 1).await,
        "{:?}",
        two.stats().feed
    );
    assert!(!two.stats().feed.subscribed);
    // Down for a while: the backoff grows past a second.
    tokio::time::sleep(StdDuration::from_secs(3)).await;
    cluster.start_server().map_err(Error::backend)?;
    let back = Instant::now();
    // The job server's traffic: lookups (bypassing the cache) until subscribed.
    let subscribed = resubscribed_by_lookups(&two).await;
    let took = back.elapsed();
    eprintln!("resubscribed {took:?} after the server accepted connections again");
    assert!(subscribed, "not resubscribed {took:?} after the restart");
    assert!(two.stats().feed.reconnects >= 1);

    // Events flow again.
    one.work_spec_at("ns", "spec")
        .await?
        .delete_work_units(&named(&["b"]))
        .await?;
    two.work_unit_at("ns", "spec", "a").await?;
    assert_unit_gone(&two, "spec", "b").await;

    // The spec handle held since before the restart revalidated: a delete
    // made now reaches lookups through it as well as fresh ones.
    held.work_unit("a").await?;
    one.work_spec_at("ns", "spec")
        .await?
        .delete_work_units(&named(&["a"]))
        .await?;
    let deleted = Instant::now();
    let mut answer = held.work_unit("a").await.map(|_| ());
    while answer.is_ok() && deleted.elapsed() < PROPAGATION_DEADLINE {
        tokio::time::sleep(StdDuration::from_millis(2)).await;
        answer = held.work_unit("a").await.map(|_| ());
    }
    assert!(
        matches!(answer, Err(Error::NoSuchWorkUnit { .. })),
        "{answer:?} after {:?}",
        deleted.elapsed()
    );
    drop(held);
    drop((one, two));
    drop(lease);
    Ok(())
}

/// Names at the length limit that do not fit one notification: the delete
/// still commits, and the event degrades to a spec-wide one rather than
/// failing or being lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_names_degrade_to_a_spec_wide_event() -> coordinate::Result<()> {
    let _turn = TAKE_TURNS.lock().await;
    let (one, two, _url, _lease) = two_servers().await;
    let long = |c: &str| c.repeat(MAX_NAME_BYTES);
    let (ns, spec_name, a, b) = (long("n"), long("s"), long("a"), long("b"));
    let spec = one
        .namespace(&ns)
        .await?
        .set_work_spec(data!({ "name": spec_name.clone() }))
        .await?;
    for unit in [&a, &b, &"c".to_string()] {
        spec.add_work_unit(unit, data!({}), WorkUnitMeta::default())
            .await?;
        two.work_unit_at(&ns, &spec_name, unit).await?;
    }
    let applied = two.stats().feed.events_applied;
    assert_eq!(spec.delete_work_units(&named(&[&a, &b])).await?, 2);
    assert!(
        wait_until(PROPAGATION_DEADLINE, || two.stats().feed.events_applied
            > applied)
        .await,
        "{:?}",
        two.stats().feed
    );
    for unit in [&a, &b] {
        assert!(matches!(
            two.work_unit_at(&ns, &spec_name, unit).await,
            Err(Error::NoSuchWorkUnit { .. })
        ));
    }
    two.work_unit_at(&ns, &spec_name, "c").await?;
    Ok(())
}
