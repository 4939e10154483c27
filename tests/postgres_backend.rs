//! Focused tests of the PostgreSQL backend's tricky parts: object identity,
//! chaining, retry limits, continuous units, lazy expiry, byte-ordered and
//! odd names, durations, foreign handles and schema versions.
#![cfg(feature = "testing")]

use coordinate::postgres::testing::TestCluster;
use coordinate::postgres::{PostgresBackend, PostgresError, SCHEMA_VERSION};
use coordinate::ObjectKind;
use coordinate::{
    data, AttemptRequest, AttemptStatus, Backend, Clock, Duration, Error, MockClock, NamespaceRef,
    WorkSpecRef, WorkUnitMeta, WorkUnitQuery, WorkUnitRef, WorkUnitStatus, WorkerRef,
};

mod common {
    pub mod chaining;
    pub mod gone;
    pub mod scheduling;
}

use common::chaining::chained_specs;
use common::gone::gone;
use common::scheduling::{request, unit_names};

/// A fresh backend on its own database; fails the test without a server.
async fn backend() -> (PostgresBackend, MockClock) {
    let cluster = TestCluster::shared_or_panic();
    let clock = MockClock::new();
    (cluster.fresh_backend(clock.clone()).await.unwrap(), clock)
}

fn is_gone(e: &Error) -> bool {
    matches!(
        e,
        Error::Gone { .. } | Error::NoSuchWorkSpec { .. } | Error::NoSuchWorkUnit { .. }
    )
}

/// Namespace "n" of `backend` and its spec "s".
async fn namespace_and_spec(backend: &dyn Backend) -> (NamespaceRef, WorkSpecRef) {
    let ns = backend.namespace("n").await.unwrap();
    let spec = ns.set_work_spec(data!({"name": "s"})).await.unwrap();
    (ns, spec)
}

#[tokio::test]
async fn old_handles_stay_gone_after_recreation() {
    let (b, _) = backend().await;
    let (ns, spec) = namespace_and_spec(&b).await;
    let unit = spec
        .add_work_unit("u", data!({"v": 1}), WorkUnitMeta::default())
        .await
        .unwrap();
    let worker = ns.worker("w").await.unwrap();
    let attempt = worker.make_attempt(&unit, Duration::zero()).await.unwrap();

    // Unit deleted and re-added: the old unit handle and its attempt are gone.
    spec.delete_work_units(&WorkUnitQuery::names(["u"]))
        .await
        .unwrap();
    let unit2 = spec
        .add_work_unit("u", data!({"v": 2}), WorkUnitMeta::default())
        .await
        .unwrap();
    assert_eq!(unit.data().await.unwrap_err(), gone(ObjectKind::WorkUnit));
    assert_eq!(
        unit.set_priority(3.0).await.unwrap_err(),
        gone(ObjectKind::WorkUnit)
    );
    assert_eq!(
        attempt.status().await.unwrap_err(),
        gone(ObjectKind::Attempt)
    );
    assert_eq!(
        attempt.finish(None).await.unwrap_err(),
        gone(ObjectKind::Attempt)
    );
    assert_eq!(unit2.data().await.unwrap(), data!({"v": 2}));
    assert!(worker.all_attempts().await.unwrap().is_empty());

    // Spec destroyed and recreated: old spec and unit handles are gone.
    ns.destroy_work_spec("s").await.unwrap();
    let spec2 = ns
        .set_work_spec(data!({"name": "s", "priority": 4}))
        .await
        .unwrap();
    assert!(is_gone(&spec.meta(false).await.unwrap_err()));
    assert!(is_gone(
        &spec
            .add_work_unit("x", data!({}), WorkUnitMeta::default())
            .await
            .unwrap_err()
    ));
    assert!(is_gone(&unit2.status().await.unwrap_err()));
    assert_eq!(spec2.meta(false).await.unwrap().priority, 4);

    // Namespace destroyed and recreated.
    ns.destroy().await.unwrap();
    let ns2 = b.namespace("n").await.unwrap();
    assert!(is_gone(
        &ns.set_work_spec(data!({"name": "s"})).await.unwrap_err()
    ));
    assert!(is_gone(&ns.worker("w").await.unwrap_err()));
    assert!(is_gone(&spec2.data().await.unwrap_err()));
    assert!(is_gone(&worker.active().await.unwrap_err()));
    ns.destroy().await.unwrap(); // a second destroy does nothing...
    assert!(ns2.work_spec_names().await.unwrap().is_empty()); // ...to the new one
    assert_eq!(b.namespaces().await.unwrap().len(), 1);
}

/// The lists of a deleted unit, and of a worker whose namespace was
/// destroyed (its requests for work too), answer `Gone` as every other
/// call on them: empty lists
/// would look like answers, and a cache keeping the handle would never
/// learn to follow its name (the lists of the objects that replaced them
/// are not empty here).
#[tokio::test]
async fn lists_of_deleted_units_and_workers_answer_gone() {
    let (b, _) = backend().await;
    let (ns, spec) = namespace_and_spec(&b).await;
    let unit = spec
        .add_work_unit("u", data!({}), WorkUnitMeta::default())
        .await
        .unwrap();
    let (worker, child) = (ns.worker("w").await.unwrap(), ns.worker("c").await.unwrap());
    spec.delete_work_units(&WorkUnitQuery::names(["u"]))
        .await
        .unwrap();
    let again = spec
        .add_work_unit("u", data!({}), WorkUnitMeta::default())
        .await
        .unwrap();
    worker
        .make_attempt(&again, Duration::minutes(5))
        .await
        .unwrap();
    let unit_gone = gone(ObjectKind::WorkUnit);
    assert_eq!(unit.attempts().await.unwrap_err(), unit_gone);
    assert_eq!(unit.active_attempt().await.unwrap_err(), unit_gone);
    assert_eq!(unit.num_attempts().await.unwrap_err(), unit_gone);
    assert_eq!(again.num_attempts().await.unwrap(), 1);

    ns.destroy().await.unwrap();
    let ns = b.namespace("n").await.unwrap();
    let spec = ns.set_work_spec(data!({"name": "s"})).await.unwrap();
    let unit = spec
        .add_work_unit("u", data!({}), WorkUnitMeta::default())
        .await
        .unwrap();
    let (w, c) = (ns.worker("w").await.unwrap(), ns.worker("c").await.unwrap());
    c.set_parent(Some(&w)).await.unwrap();
    w.set_parent(Some(&c)).await.unwrap();
    c.make_attempt(&unit, Duration::minutes(5)).await.unwrap();
    let worker_gone = gone(ObjectKind::Worker);
    for old in [&worker, &child] {
        assert_eq!(old.parent().await.unwrap_err(), worker_gone);
        assert_eq!(old.children().await.unwrap_err(), worker_gone);
        assert_eq!(old.active_attempts().await.unwrap_err(), worker_gone);
        assert_eq!(old.all_attempts().await.unwrap_err(), worker_gone);
        assert_eq!(old.child_attempts().await.unwrap_err(), worker_gone);
        assert_eq!(
            old.request_attempts(&AttemptRequest::units(1))
                .await
                .unwrap_err(),
            worker_gone
        );
    }
    assert_eq!(w.child_attempts().await.unwrap().len(), 1);
    assert_eq!(w.children().await.unwrap().len(), 1);
    assert!(w.parent().await.unwrap().is_some());
}

/// A clock one second later at every reading.
#[derive(Debug, Clone)]
struct Ticking(MockClock);

impl Clock for Ticking {
    fn now(&self) -> coordinate::Time {
        self.0.advance(Duration::seconds(1));
        self.0.now()
    }
}

/// A finish without data, whose chained units are parsed from the stored
/// data by a second call, delays them from the instant it ends the attempt.
#[tokio::test]
async fn a_finish_chains_delays_from_its_own_end_time() {
    let cluster = TestCluster::shared_or_panic();
    let b = cluster
        .fresh_backend(Ticking(MockClock::new()))
        .await
        .unwrap();
    let ns = b.namespace("n").await.unwrap();
    let (a, next) = chained_specs(&ns, "a", "b").await;
    let worker = ns.worker("w").await.unwrap();
    let output = data!({"output": [["x", {}, {"delay": 60}]]});
    a.add_work_unit("u", output, WorkUnitMeta::default())
        .await
        .unwrap();
    let got = request(&worker, AttemptRequest::units(1)).await;
    got[0].finish(None).await.unwrap();
    let ended = got[0].end_time().await.unwrap().expect("ended");
    let x = next.work_unit("x").await.unwrap();
    let not_before = x.meta().await.unwrap().not_before.expect("delayed");
    assert_eq!(not_before, ended + Duration::seconds(60));
}

#[tokio::test]
async fn chaining_follows_the_active_attempt_only() {
    let (b, clock) = backend().await;
    let ns = b.namespace("n").await.unwrap();
    let (a, next) = chained_specs(&ns, "a", "b").await;
    let worker = ns.worker("w").await.unwrap();
    for u in ["u1", "u2", "u3"] {
        a.add_work_unit(u, data!({}), WorkUnitMeta::default())
            .await
            .unwrap();
    }
    let got = request(&worker, AttemptRequest::units(3)).await;
    assert_eq!(got.len(), 3);

    // Map output, with data.
    got[0]
        .finish(Some(data!({"output": {"x": {"k": 1}}})))
        .await
        .unwrap();
    assert_eq!(
        next.work_unit("x").await.unwrap().data().await.unwrap(),
        data!({"k": 1})
    );

    // List output with a delay and a float priority.
    got[1]
        .finish(Some(
            data!({"output": ["y", ["z", {"d": true}, {"delay": 90, "priority": 2}, 7.5]]}),
        ))
        .await
        .unwrap();
    let z = next.work_unit("z").await.unwrap();
    assert_eq!(z.priority().await.unwrap(), 7.5);
    assert_eq!(z.status().await.unwrap(), WorkUnitStatus::Delayed);
    clock.advance(Duration::seconds(90));
    assert_eq!(z.status().await.unwrap(), WorkUnitStatus::Available);

    // A cleared (no longer active) attempt finishes without chaining.
    got[2].work_unit().clear_active_attempt().await.unwrap();
    got[2]
        .finish(Some(data!({"output": ["never"]})))
        .await
        .unwrap();
    let names = names_in(&next).await;
    assert_eq!(names, ["x", "y", "z"]);

    // A missing next spec: finish still succeeds, nothing is created.
    ns.destroy_work_spec("b").await.unwrap();
    a.add_work_unit("u4", data!({"output": ["q"]}), WorkUnitMeta::default())
        .await
        .unwrap();
    let got = request(&worker, AttemptRequest::default()).await;
    got[0].finish(None).await.unwrap();
    assert_eq!(got[0].status().await.unwrap(), AttemptStatus::Finished);
}

#[tokio::test]
async fn max_retries_fails_units_and_takes_the_next_batch() {
    let (b, clock) = backend().await;
    let ns = b.namespace("n").await.unwrap();
    let spec = ns
        .set_work_spec(data!({"name": "s", "max_retries": 1, "max_getwork": 2}))
        .await
        .unwrap();
    let worker = ns.worker("w").await.unwrap();
    for u in ["a", "b", "c", "d"] {
        spec.add_work_unit(u, data!({}), WorkUnitMeta::default())
            .await
            .unwrap();
    }
    let first = request(&worker, AttemptRequest::units(10)).await;
    let names = unit_names(&first);
    assert_eq!(names, ["a", "b"]);
    // Let the whole batch expire: the next request fails both and moves on.
    clock.advance(Duration::hours(1));
    let second = request(&worker, AttemptRequest::units(10)).await;
    let names = unit_names(&second);
    assert_eq!(names, ["c", "d"]);
    let a = spec.work_unit("a").await.unwrap();
    assert_eq!(a.status().await.unwrap(), WorkUnitStatus::Failed);
    assert_eq!(
        a.data().await.unwrap(),
        data!({"traceback": "too many retries"})
    );
    assert_eq!(a.num_attempts().await.unwrap(), 2);
    assert_eq!(first[0].status().await.unwrap(), AttemptStatus::Expired);
}

#[tokio::test]
async fn continuous_specs_generate_one_unit_per_interval() {
    let (b, clock) = backend().await;
    clock.advance(Duration::milliseconds(1_400_000_000_005));
    let ns = b.namespace("").await.unwrap();
    let spec = ns
        .set_work_spec(data!({"name": "c", "continuous": true, "interval": 86400}))
        .await
        .unwrap();
    let worker = ns.worker("w").await.unwrap();
    let got = request(&worker, AttemptRequest::units(5)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].work_unit().name(), "1400000000.005");
    let meta = spec.meta(false).await.unwrap();
    assert_eq!(meta.interval, Duration::days(1));
    assert_eq!(meta.next_continuous, Some(clock.now() + Duration::days(1)));
    got[0].finish(None).await.unwrap();
    clock.advance(Duration::hours(12));
    assert!(worker
        .request_attempts(&AttemptRequest::default())
        .await
        .unwrap()
        .is_empty());
    clock.advance(Duration::days(3));
    assert_eq!(
        worker
            .request_attempts(&AttemptRequest::default())
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn expiry_is_lazy_and_uses_the_injected_clock() {
    let (b, clock) = backend().await;
    // The mock clock is at 1970: a unit due "in a minute" is delayed even
    // though the database's own clock is decades later.
    let (ns, spec) = namespace_and_spec(&b).await;
    let later = spec
        .add_work_unit(
            "later",
            data!({}),
            WorkUnitMeta {
                priority: 0.0,
                not_before: Some(clock.now() + Duration::minutes(1)),
            },
        )
        .await
        .unwrap();
    assert_eq!(later.status().await.unwrap(), WorkUnitStatus::Delayed);
    let unit = spec
        .add_work_unit("u", data!({}), WorkUnitMeta::default())
        .await
        .unwrap();
    let worker = ns.worker("w").await.unwrap();
    let got = request(&worker, AttemptRequest::default()).await;
    assert_eq!(got[0].work_unit().name(), "u");

    // Past the deadline, but no expiry check yet: renew still works.
    clock.advance(Duration::minutes(16));
    got[0].renew(Duration::minutes(5), None).await.unwrap();
    assert_eq!(
        got[0].expiration_time().await.unwrap(),
        clock.now() + Duration::minutes(5)
    );
    // Past the new deadline: the status check expires it.
    clock.advance(Duration::minutes(6));
    assert_eq!(unit.status().await.unwrap(), WorkUnitStatus::Available);
    assert_eq!(got[0].status().await.unwrap(), AttemptStatus::Expired);
    assert_eq!(got[0].end_time().await.unwrap(), Some(clock.now()));
    assert!(worker.active_attempts().await.unwrap().is_empty());
    assert_eq!(got[0].finish(None).await.unwrap_err(), Error::NotPending);
    assert_eq!(
        got[0].renew(Duration::minutes(1), None).await.unwrap_err(),
        Error::LostLease
    );
}

#[tokio::test]
async fn names_sort_bytewise_and_may_hold_any_character() {
    let (b, _) = backend().await;
    let ns = b.namespace("\0ns\u{1}").await.unwrap();
    let spec = ns.set_work_spec(data!({"name": "s\u{7f}"})).await.unwrap();
    for name in ["é", "Z", "a", "", "\0", "\u{1F600}", "\u{E000}"] {
        spec.add_work_unit(name, data!({ name: name }), WorkUnitMeta::default())
            .await
            .unwrap();
    }
    let names = names_in(&spec).await;
    assert_eq!(names, ["", "\0", "Z", "a", "é", "\u{E000}", "\u{1F600}"]);
    let page = WorkUnitQuery {
        previous_name: "Z".into(),
        limit: 2,
        ..WorkUnitQuery::default()
    };
    let names: Vec<String> = spec.work_units(&page).await.unwrap().into_keys().collect();
    assert_eq!(names, ["a", "é"]);
    let unit = spec.work_unit("\0").await.unwrap();
    assert_eq!(unit.data().await.unwrap(), data!({"\0": "\0"}));
    assert!(b.namespaces().await.unwrap().contains_key("\0ns\u{1}"));
}

#[tokio::test]
async fn intervals_and_data_round_trip_exactly() {
    let (b, _) = backend().await;
    let ns = b.namespace("n").await.unwrap();
    for seconds in [1i64, 59, 3600, 86_399, 86_400, 86_401, 7 * 86_400 + 1] {
        let spec = ns
            .set_work_spec(data!({"name": "s", "continuous": true, "interval": seconds}))
            .await
            .unwrap();
        assert_eq!(
            spec.meta(false).await.unwrap().interval,
            Duration::seconds(seconds)
        );
    }
    let definition = data!({"name": "d", "nested": {"empty": [], "f": 0.5, "i": 3, "s": "x"}});
    let spec = ns.set_work_spec(definition.clone()).await.unwrap();
    assert_eq!(spec.data().await.unwrap(), definition);
}

/// Unit "u" of spec "s" and worker "m", in namespace "n" of `backend`.
async fn unit_and_worker(backend: &dyn Backend) -> (WorkUnitRef, WorkerRef) {
    let (ns, spec) = namespace_and_spec(backend).await;
    let unit = spec
        .add_work_unit("u", data!({}), WorkUnitMeta::default())
        .await
        .unwrap();
    (unit, ns.worker("m").await.unwrap())
}

#[tokio::test]
async fn handles_of_other_backends_are_refused() {
    let (b, _) = backend().await;
    let (other, _) = backend().await;
    let (ns, spec) = namespace_and_spec(&b).await;
    let worker = ns.worker("w").await.unwrap();

    let memory = coordinate::memory::MemoryBackend::new();
    // Another PostgresBackend instance is another backend, too.
    for (label, foreign) in [("memory", &memory as &dyn Backend), ("other", &other)] {
        let (unit, parent) = unit_and_worker(foreign).await;
        assert_eq!(
            worker
                .make_attempt(&unit, Duration::zero())
                .await
                .unwrap_err(),
            Error::WrongBackend,
            "make_attempt on a unit of the {label} backend"
        );
        assert_eq!(
            worker.set_parent(Some(&parent)).await.unwrap_err(),
            Error::WrongBackend,
            "set_parent to a worker of the {label} backend"
        );
    }
    // A clone is the same backend.
    let unit = spec
        .add_work_unit("u", data!({}), WorkUnitMeta::default())
        .await
        .unwrap();
    let clone = b.clone();
    let cworker = clone
        .namespace("n")
        .await
        .unwrap()
        .worker("w")
        .await
        .unwrap();
    cworker.make_attempt(&unit, Duration::zero()).await.unwrap();
}

#[tokio::test]
async fn a_database_not_in_utf8_is_refused_untouched() {
    let cluster = TestCluster::shared_or_panic();
    let (admin, conn) = tokio_postgres::connect(cluster.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let db = cluster.fresh_database().await.unwrap();
    for encoding in ["LATIN1", "SQL_ASCII"] {
        let name = format!("{db}_{}", encoding.to_lowercase());
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {name} ENCODING '{encoding}' LC_COLLATE 'C' LC_CTYPE 'C' \
                 TEMPLATE template0"
            ))
            .await
            .unwrap();
        let url = cluster.database_url(&name);
        let err = PostgresBackend::connect(&url).await.unwrap_err();
        let Error::Backend(source) = &err else {
            panic!("expected a backend error, got {err:?}")
        };
        match source.downcast_ref::<PostgresError>() {
            Some(PostgresError::NotUtf8 { encoding: found }) => assert_eq!(found, encoding),
            other => panic!("expected NotUtf8, got {other:?}"),
        }
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let tables: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(tables, 0, "{encoding}");
    }
}

#[tokio::test]
async fn schema_is_migrated_once_and_newer_schemas_are_refused() {
    let cluster = TestCluster::shared_or_panic();
    // A blank database (not from the template): several servers start at once.
    let db = cluster.fresh_database().await.unwrap();
    let blank = format!("{db}_blank");
    let (admin, conn) = tokio_postgres::connect(cluster.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    admin
        .batch_execute(&format!("CREATE DATABASE {blank}"))
        .await
        .unwrap();
    let url = cluster.database_url(&blank);
    let starts = (0..6).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { PostgresBackend::connect(&url).await })
    });
    for start in starts {
        let backend = start.await.unwrap().unwrap();
        assert!(backend.namespaces().await.unwrap().is_empty());
    }

    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let version: i32 = client
        .query_one("SELECT version FROM coordinate_schema", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, SCHEMA_VERSION);
    client
        .execute("UPDATE coordinate_schema SET version = version + 1", &[])
        .await
        .unwrap();
    let err = PostgresBackend::connect(&url).await.unwrap_err();
    let Error::Backend(source) = &err else {
        panic!("expected a backend error, got {err:?}")
    };
    match source.downcast_ref::<PostgresError>() {
        Some(PostgresError::SchemaTooNew { found, supported }) => {
            assert_eq!((*found, *supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    assert!(err.to_string().contains("newer"), "{err}");
}

/// The names of every unit of `spec`, in order.
async fn names_in(spec: &WorkSpecRef) -> Vec<String> {
    spec.work_units(&WorkUnitQuery::all())
        .await
        .unwrap()
        .into_keys()
        .collect()
}

#[tokio::test]
async fn queries_naming_more_than_a_message_holds_select_what_they_name() {
    let (b, _) = backend().await;
    let (_, spec) = namespace_and_spec(&b).await;
    for name in ["a", "b"] {
        spec.add_work_unit(name, data!({}), WorkUnitMeta::default())
            .await
            .unwrap();
    }
    // Over 1 GiB of names, more than PostgreSQL takes in one message: a
    // name longer than any name can be. A name repeated a million times
    // answers as once (that it is sent once, the selection's unit tests
    // check).
    let mut names = vec!["x".repeat(1100 << 20), "a".to_string()];
    names.extend(std::iter::repeat("b".to_string()).take(1 << 20));
    let query = WorkUnitQuery::names(names);
    let listed = spec.work_units(&query).await.unwrap();
    assert_eq!(listed.keys().collect::<Vec<_>>(), ["a", "b"]);
    spec.set_work_unit_priorities(&query, 2.0).await.unwrap();
    assert_eq!(
        spec.work_unit("b").await.unwrap().priority().await.unwrap(),
        2.0
    );
    assert_eq!(spec.delete_work_units(&query).await.unwrap(), 2);
    drop(query);
    // A previous name as long: the units after it.
    for name in ["a", "b"] {
        spec.add_work_unit(name, data!({}), WorkUnitMeta::default())
            .await
            .unwrap();
    }
    let query = WorkUnitQuery {
        previous_name: format!("a{}", "x".repeat(1100 << 20)),
        ..Default::default()
    };
    let listed = spec.work_units(&query).await.unwrap();
    assert_eq!(listed.keys().collect::<Vec<_>>(), ["b"]);
}

#[tokio::test]
async fn a_previous_version_database_detaches_its_pending_attempts_no_longer_active() {
    let cluster = TestCluster::shared_or_panic();
    let db = cluster.fresh_database().await.unwrap();
    let clock = MockClock::new();
    let open = || {
        PostgresBackend::builder(cluster.url())
            .database(&db)
            .clock(clock.clone())
            .build()
    };
    let backend = open().await.unwrap();
    let (ns, spec) = namespace_and_spec(&backend).await;
    let worker = ns.worker("w").await.unwrap();
    let mut units = Vec::new();
    for name in ["cleared", "superseded", "active"] {
        units.push(
            spec.add_work_unit(name, data!({}), WorkUnitMeta::default())
                .await
                .unwrap(),
        );
    }
    let minute = Duration::minutes(1);
    worker.make_attempt(&units[0], minute).await.unwrap();
    units[0].clear_active_attempt().await.unwrap();
    worker.make_attempt(&units[1], minute).await.unwrap();
    worker
        .make_attempt(&units[1], Duration::hours(1))
        .await
        .unwrap();
    worker.make_attempt(&units[2], minute).await.unwrap();
    drop(backend);

    // Back to version 21, which stored every pending attempt as 0.
    let (sql, conn) = tokio_postgres::connect(&cluster.database_url(&db), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let statuses = || async {
        let rows = sql
            .query(
                "SELECT u.name, a.status FROM attempt a JOIN work_unit u ON u.id = a.work_unit_id
                 ORDER BY a.id",
                &[],
            )
            .await
            .unwrap();
        rows.iter()
            .map(|r| {
                let name: Vec<u8> = r.get(0);
                (String::from_utf8(name).unwrap(), r.get::<_, i16>(1))
            })
            .collect::<Vec<_>>()
    };
    let detached = vec![
        ("cleared".to_string(), 5),
        ("superseded".to_string(), 5),
        ("superseded".to_string(), 0),
        ("active".to_string(), 0),
    ];
    assert_eq!(statuses().await, detached);
    sql.batch_execute(
        "UPDATE attempt SET status = 0 WHERE status = 5;
         DROP FUNCTION coordinate_clear_active(bigint);
         DROP FUNCTION coordinate_make_attempt(bigint, bigint, timestamptz, timestamptz);
         UPDATE coordinate_schema SET version = 21",
    )
    .await
    .unwrap();

    let backend = open().await.unwrap();
    assert_eq!(statuses().await, detached);
    // Detached attempts read as pending, never expire by themselves, and
    // change as pending attempts that are not active do.
    clock.advance(Duration::minutes(5));
    let (_, spec) = namespace_and_spec(&backend).await;
    let unit = spec.work_unit("active").await.unwrap();
    assert_eq!(unit.status().await.unwrap(), WorkUnitStatus::Available);
    let attempts = |name: &'static str| {
        let spec = spec.clone();
        async move {
            spec.work_unit(name)
                .await
                .unwrap()
                .attempts()
                .await
                .unwrap()
        }
    };
    let cleared = attempts("cleared").await.remove(0);
    let superseded = attempts("superseded").await.remove(0);
    assert_eq!(cleared.status().await.unwrap(), AttemptStatus::Pending);
    assert_eq!(superseded.status().await.unwrap(), AttemptStatus::Pending);
    cleared.finish(None).await.unwrap();
    assert_eq!(cleared.status().await.unwrap(), AttemptStatus::Finished);
    assert!(matches!(
        superseded.renew(minute, None).await,
        Err(Error::LostLease)
    ));
    assert_eq!(superseded.status().await.unwrap(), AttemptStatus::Expired);
}
