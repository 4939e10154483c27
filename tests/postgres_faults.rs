//! Faults: an unreachable server, a restart mid-run, a statement failing
//! inside a multi-step operation, and heavy concurrency on one name or one
//! queue.
#![cfg(feature = "testing")]

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration as StdDuration, Instant};

use coordinate::postgres::testing::TestCluster;
use coordinate::postgres::PostgresBackend;
use coordinate::{
    data, AttemptRequest, AttemptStatus, Backend, BackendExt, Error, MockClock, WorkUnitMeta,
    WorkUnitQuery, WorkUnitStatus, WorkerRef,
};

mod common {
    pub mod chaining;
    pub mod postgres;
    pub mod scheduling;
}

use common::chaining::chained_specs;
use common::postgres::Database;
use common::scheduling::{request, unit_names};

/// The text of an error and all its sources.
fn chain(e: &Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[tokio::test]
async fn unreachable_server_fails_fast_naming_the_cause() {
    // Nothing listens on this socket directory.
    let dir = std::env::temp_dir().join(format!("coordinate-no-server-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let started = Instant::now();
    let err = PostgresBackend::connect(&format!("host={} user=postgres dbname=x", dir.display()))
        .await
        .unwrap_err();
    assert!(started.elapsed() < StdDuration::from_secs(5));
    let text = chain(&err);
    assert!(text.contains("cannot connect"), "{text}");
    assert!(text.to_lowercase().contains("no such file"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();

    // A server that accepts but never answers: the connect timeout bounds it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let started = Instant::now();
    let err = PostgresBackend::builder(&format!("host=127.0.0.1 port={port} user=postgres"))
        .connect_timeout(StdDuration::from_millis(500))
        .build()
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed < StdDuration::from_secs(3), "took {elapsed:?}");
    let text = chain(&err);
    assert!(text.contains("cannot connect"), "{text}");
    assert!(text.to_lowercase().contains("timeout"), "{text}");
    silent.abort();
}

#[tokio::test]
async fn a_pool_larger_than_a_server_takes_is_refused_before_connecting() {
    use coordinate::postgres::{PostgresError, MAX_CONNECTIONS};
    // Nothing listens here, so only the size check can answer at once.
    let url = "host=127.0.0.1 port=9 user=postgres";
    for size in [MAX_CONNECTIONS + 1, usize::MAX] {
        let err = PostgresBackend::builder(url)
            .max_connections(size)
            .build()
            .await
            .unwrap_err();
        let Error::Backend(source) = &err else {
            panic!("{err:?}");
        };
        assert!(
            matches!(
                source.downcast_ref::<PostgresError>(),
                Some(PostgresError::Pool(_))
            ),
            "{err:?}"
        );
        assert!(chain(&err).contains("over the limit"), "{}", chain(&err));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_succeed_again_after_a_server_restart() {
    // A private cluster: restarting the shared one would disturb other tests.
    let cluster = tokio::task::spawn_blocking(TestCluster::start)
        .await
        .unwrap()
        .unwrap();
    let clock = MockClock::new();
    let backend = cluster.fresh_backend(clock.clone()).await.unwrap();
    let ns = backend.namespace("n").await.unwrap();
    let spec = ns.set_work_spec(data!({"name": "s"})).await.unwrap();
    for i in 0..4 {
        spec.add_work_unit(&format!("u{i}"), data!({}), WorkUnitMeta::default())
            .await
            .unwrap();
    }
    let worker = ns.worker("w").await.unwrap();
    // Fill the pool with several connections.
    let got = futures::future::join_all((0..4).map(|_| spec.meta(true))).await;
    assert!(got.iter().all(Result::is_ok));

    let c = &cluster;
    tokio::task::block_in_place(|| c.stop_server()).unwrap();
    let err = spec.meta(false).await.unwrap_err();
    assert!(matches!(err, Error::Backend(_)), "{err:?}");
    let err = backend.ping().await.unwrap_err();
    assert!(matches!(err, Error::Backend(_)), "{err:?}");
    tokio::task::block_in_place(|| c.start_server()).unwrap();
    backend.ping().await.unwrap();

    // Every later call works: dead connections are dropped, new ones made.
    for _ in 0..8 {
        assert_eq!(spec.meta(true).await.unwrap().available_count, 4);
    }
    let got = request(&worker, AttemptRequest::units(2)).await;
    assert_eq!(got.len(), 2);
    got[0].finish(None).await.unwrap();
    assert_eq!(
        spec.count_work_unit_status().await.unwrap()[&WorkUnitStatus::Finished],
        1
    );
}

#[tokio::test]
async fn a_failing_statement_leaves_no_partial_state() {
    let db = Database::fresh().await;
    let clock = MockClock::new();
    let backend = db.server(&clock, None).await;
    // Make the database refuse any unit named "poison".
    db.sql()
        .await
        .batch_execute(
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF NEW.name = convert_to('poison', 'UTF8') THEN
                 RAISE EXCEPTION 'poisoned unit';
               END IF;
               RETURN NEW;
             END $$;
             CREATE TRIGGER poison BEFORE INSERT ON work_unit
               FOR EACH ROW EXECUTE FUNCTION poison();",
        )
        .await
        .unwrap();

    let ns = backend.namespace("n").await.unwrap();
    let (a, b) = chained_specs(&ns, "a", "b").await;
    a.add_work_unit("u", data!({}), WorkUnitMeta::default())
        .await
        .unwrap();
    let worker = ns.worker("w").await.unwrap();
    let got = request(&worker, AttemptRequest::default()).await;

    // finish = complete the attempt, then add "fine", then add "poison".
    let err = got[0]
        .finish(Some(data!({"output": ["fine", "poison"]})))
        .await
        .unwrap_err();
    // The server's own message is in the error's text.
    assert!(err.to_string().contains("poisoned unit"), "{err}");
    // Nothing of it happened: still pending, still on the worker's list,
    // and the first chained unit was not created either.
    assert_eq!(got[0].status().await.unwrap(), AttemptStatus::Pending);
    assert_eq!(got[0].end_time().await.unwrap(), None);
    assert_eq!(got[0].data().await.unwrap(), data!({}));
    assert_eq!(
        got[0].work_unit().status().await.unwrap(),
        WorkUnitStatus::Pending
    );
    assert_eq!(worker.active_attempts().await.unwrap().len(), 1);
    assert!(b
        .work_units(&WorkUnitQuery::all())
        .await
        .unwrap()
        .is_empty());

    // The same finish without the poison goes through whole.
    got[0]
        .finish(Some(data!({"output": ["fine"]})))
        .await
        .unwrap();
    assert_eq!(b.work_units(&WorkUnitQuery::all()).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_set_work_spec_of_one_name_makes_one_spec() {
    let cluster = TestCluster::shared_or_panic();
    let backend = cluster.fresh_backend(MockClock::new()).await.unwrap();
    let ns = backend.namespace("n").await.unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let ns = ns.clone();
            tokio::spawn(async move { ns.set_work_spec(data!({"name": "s", "priority": i})).await })
        })
        .collect();
    let mut ids = HashSet::new();
    for t in tasks {
        let spec = t.await.unwrap().unwrap();
        // All handles reach one live spec.
        ids.insert(spec.data().await.is_ok());
    }
    assert_eq!(ids, HashSet::from([true]));
    assert_eq!(ns.work_spec_names().await.unwrap(), ["s"]);
    let priority = ns
        .work_spec("s")
        .await
        .unwrap()
        .meta(false)
        .await
        .unwrap()
        .priority;
    assert!((0..32).contains(&priority));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_workers_never_share_a_unit() {
    // Two backends on one database stand for two job-server processes.
    let db = Database::fresh().await;
    let clock = MockClock::new();
    let servers = [db.server(&clock, None).await, db.server(&clock, None).await];
    let ns = servers[0].namespace("n").await.unwrap();
    let spec = ns.set_work_spec(data!({"name": "s"})).await.unwrap();
    const UNITS: usize = 300;
    for i in 0..UNITS {
        spec.add_work_unit(&format!("u{i:03}"), data!({}), WorkUnitMeta::default())
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    for mine in on_eight_workers(&servers, "w", |worker| async move {
        let mut mine = Vec::new();
        loop {
            let got = request(&worker, AttemptRequest::units(7)).await;
            if got.is_empty() {
                break mine;
            }
            mine.extend(unit_names(&got));
            for a in got {
                a.finish(None).await.unwrap();
            }
        }
    })
    .await
    {
        seen.extend(mine);
    }
    let distinct: HashSet<&String> = seen.iter().collect();
    assert_eq!(distinct.len(), seen.len(), "a unit was handed out twice");
    assert_eq!(seen.len(), UNITS);

    // max_running holds across both servers.
    let limited = ns
        .set_work_spec(data!({"name": "limited", "max_running": 3, "priority": 1}))
        .await
        .unwrap();
    for i in 0..20 {
        limited
            .add_work_unit(&format!("l{i:02}"), data!({}), WorkUnitMeta::default())
            .await
            .unwrap();
    }
    let handed: usize = on_eight_workers(&servers, "x", |worker| async move {
        request(&worker, AttemptRequest::units(2)).await.len()
    })
    .await
    .into_iter()
    .sum();
    assert_eq!(handed, 3);
    assert_eq!(limited.meta(true).await.unwrap().pending_count, 3);
}

/// Runs `work` at once on eight workers of namespace "n", `{prefix}0` to
/// `{prefix}7`, each looked up on one of the two `servers` in turn;
/// answers what each run returned.
async fn on_eight_workers<T, F, Fut>(
    servers: &[PostgresBackend; 2],
    prefix: &str,
    work: F,
) -> Vec<T>
where
    F: Fn(WorkerRef) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = T> + Send,
    T: Send + 'static,
{
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (backend, work) = (servers[i % 2].clone(), work.clone());
            let name = format!("{prefix}{i}");
            tokio::spawn(async move {
                let worker = backend.worker_at("n", &name).await.unwrap();
                work(worker).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    answers
}
