//! `RestBackend` beyond the conformance suite: names that need the URL
//! encoding (including `.` and `..`), typed errors, the requests calls
//! cost, and failures of the HTTP exchange itself.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use coordinate::instrumented::{Instrumented, Op};
use coordinate::memory::MemoryBackend;
use coordinate::rest::client::{BaseUrlError, ProtocolError, RestBackend};
use coordinate::rest::names;
use coordinate::rules::limits::{MAX_DATA_BYTES, MAX_NAME_BYTES};
use coordinate::ObjectKind;
use coordinate::{
    data, AttemptRequest, Backend, BackendExt, Error, NamespaceRef, WorkUnitMeta, WorkUnitQuery,
    WorkUnitStatus,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

mod support;
use support::in_process::serve;

/// Serves a fresh memory backend until the returned sender is dropped.
async fn server() -> (String, oneshot::Sender<()>) {
    serve(memory_router()).await
}

fn memory_router() -> axum::Router {
    router_over(&MemoryBackend::new())
}

/// A server's routes over `memory`, which the test can also reach directly.
fn router_over(memory: &MemoryBackend) -> axum::Router {
    let backend: Arc<dyn Backend> = Arc::new(memory.clone());
    coordinated::router(backend, &coordinated::ServerOptions::default())
}

#[tokio::test]
async fn odd_names_round_trip_through_every_kind_of_handle() {
    let (url, _stop) = server().await;
    let rest = RestBackend::connect(url).await.unwrap();
    for name in [
        ".", "..", "", "-", "-c", "a/b", "my spec", "é", "job:1", "x+y", "~t", "%41",
    ] {
        let ns = rest.namespace(name).await.unwrap();
        assert_eq!(ns.name(), name);
        // A work spec needs a non-empty name.
        let spec_name = if name.is_empty() { "." } else { name };
        let spec = ns
            .set_work_spec(data!({ "name": spec_name }))
            .await
            .unwrap();
        assert_eq!(spec.name(), spec_name);
        let unit = spec
            .add_work_unit(name, data!({ "n": name }), WorkUnitMeta::default())
            .await
            .unwrap();
        assert_eq!(unit.name(), name);
        let worker = ns.worker(name).await.unwrap();
        assert_eq!(worker.name(), name);
        let attempt = worker
            .make_attempt(&unit, Default::default())
            .await
            .unwrap();
        assert_eq!(attempt.work_unit().name(), name, "{name:?}");
        assert_eq!(attempt.worker().name(), name, "{name:?}");
        attempt.finish(None).await.unwrap();
        let again = ns
            .work_spec(spec_name)
            .await
            .unwrap()
            .work_unit(name)
            .await
            .unwrap();
        assert_eq!(
            again.status().await.unwrap(),
            WorkUnitStatus::Finished,
            "{name:?}"
        );
        assert_eq!(again.data().await.unwrap(), data!({ "n": name }));
        let listed = spec
            .work_units(&WorkUnitQuery::names([name]))
            .await
            .unwrap();
        assert!(listed.contains_key(name), "{name:?}");
        assert!(ns.workers().await.unwrap().contains_key(name), "{name:?}");
    }
    let names = rest.namespaces().await.unwrap();
    assert!(names.contains_key(".") && names.contains_key("..") && names.contains_key(""));
}

#[tokio::test]
async fn errors_come_back_typed_and_held_handles_answer_gone() {
    let (url, _stop) = server().await;
    let rest = RestBackend::connect(url).await.unwrap();
    let ns = rest.namespace("n").await.unwrap();
    assert_eq!(
        ns.work_spec("missing").await.unwrap_err(),
        Error::NoSuchWorkSpec {
            name: "missing".into()
        }
    );
    let spec = ns.set_work_spec(data!({"name": "s"})).await.unwrap();
    assert_eq!(
        ns.set_work_spec(data!({"priority": 1})).await.unwrap_err(),
        Error::NoWorkSpecName
    );
    assert_eq!(
        spec.work_unit("u").await.unwrap_err(),
        Error::NoSuchWorkUnit { name: "u".into() }
    );
    let unit = spec
        .add_work_unit("u", data!({}), WorkUnitMeta::default())
        .await
        .unwrap();
    let worker = ns.worker("w").await.unwrap();
    let attempt = worker
        .make_attempt(&unit, Default::default())
        .await
        .unwrap();
    attempt.finish(None).await.unwrap();
    assert_eq!(attempt.finish(None).await.unwrap_err(), Error::NotPending);
    ns.destroy_work_spec("s").await.unwrap();
    assert_eq!(
        spec.meta(false).await.unwrap_err(),
        Error::Gone {
            kind: ObjectKind::WorkSpec
        }
    );
    assert_eq!(
        unit.status().await.unwrap_err(),
        Error::Gone {
            kind: ObjectKind::WorkUnit
        }
    );
    assert_eq!(
        attempt.status().await.unwrap_err(),
        Error::Gone {
            kind: ObjectKind::Attempt
        }
    );
}

/// A cached worker whose namespace was destroyed is `Gone` for every call,
/// clearing its parent included, and brings neither back: the server would
/// make them again for a request on their URL.
#[tokio::test]
async fn a_cached_worker_of_a_destroyed_namespace_makes_nothing_again() {
    let (url, _stop) = server().await;
    let cached = coordinate::cache::Cache::new(RestBackend::connect(url).await.unwrap());
    let ns = cached.namespace("doomed").await.unwrap();
    let worker = ns.worker("w").await.unwrap();
    ns.destroy().await.unwrap();
    let gone = Error::Gone {
        kind: ObjectKind::Worker,
    };
    assert_eq!(worker.set_parent(None).await, Err(gone.clone()));
    assert_eq!(worker.deactivate().await, Err(gone));
    assert!(cached.namespaces().await.unwrap().is_empty());
}

/// Serves a fresh memory backend, counting the requests it answers.
async fn counting_server() -> (String, Arc<AtomicU64>, oneshot::Sender<()>) {
    counting(memory_router()).await
}

/// Serves `app`, counting the requests it answers.
async fn counting(app: axum::Router) -> (String, Arc<AtomicU64>, oneshot::Sender<()>) {
    let requests = Arc::new(AtomicU64::new(0));
    let counted = requests.clone();
    let app = app.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            counted.fetch_add(1, Ordering::Relaxed);
            next.run(request)
        },
    ));
    let (url, stop) = serve(app).await;
    (url, requests, stop)
}

/// A map nested `depth` levels, built without recursion.
fn nested(depth: usize) -> coordinate::DataMap {
    let mut value = serde_json::Value::Null;
    for _ in 1..depth {
        value = serde_json::Value::Array(vec![value]);
    }
    let mut map = coordinate::DataMap::new();
    map.insert("deep".into(), value);
    map
}

/// Namespace `ns` through `rest`, with spec `s`, its unit `u`, worker `w`
/// and an attempt of `w` on `u`.
async fn one_of_each(
    rest: &RestBackend,
    ns: &str,
) -> (
    NamespaceRef,
    coordinate::WorkSpecRef,
    coordinate::WorkUnitRef,
    coordinate::WorkerRef,
    coordinate::AttemptRef,
) {
    let ns = rest.namespace(ns).await.unwrap();
    let spec = ns.set_work_spec(data!({"name": "s"})).await.unwrap();
    let unit = spec
        .add_work_unit("u", data!({}), WorkUnitMeta::default())
        .await
        .unwrap();
    let worker = ns.worker("w").await.unwrap();
    let attempt = worker
        .make_attempt(&unit, Default::default())
        .await
        .unwrap();
    (ns, spec, unit, worker, attempt)
}

/// Every limit that does not depend on the server's clock is checked, in
/// the in-memory backend's order, before a request is made; data nested far
/// too deep for a recursive drop is refused without overflowing the stack,
/// whatever else is wrong with the call.
#[tokio::test]
async fn bad_arguments_are_refused_before_any_request() {
    let (url, requests, _stop) = counting_server().await;
    let rest = RestBackend::connect(url).await.unwrap();
    let (ns, spec, unit, worker, attempt) = one_of_each(&rest, "ns").await;
    let too_long = "n".repeat(coordinate::rules::limits::MAX_NAME_BYTES + 1);
    let deep = || nested(100_000);
    // One byte longer than the limit as JSON.
    let large = || {
        let x = "x".repeat(MAX_DATA_BYTES + 1 - r#"{"k":""}"#.len());
        data!({ "k": x })
    };
    let after_the_end = coordinate::rules::limits::MAX_TIME + chrono::Duration::microseconds(1);
    let bad_meta = WorkUnitMeta {
        priority: f64::NAN,
        not_before: Some(after_the_end),
    };
    let mut spec_meta = spec.meta(false).await.unwrap();
    let before = requests.load(Ordering::Relaxed);

    let too_deep: fn(&Error) -> bool = |e| matches!(e, Error::DataTooDeep { .. });
    let too_large: fn(&Error) -> bool = |e| {
        *e == Error::DataTooLarge {
            limit: MAX_DATA_BYTES,
        }
    };
    let cases: [(fn() -> coordinate::DataMap, _); 2] = [(deep, too_deep), (large, too_large)];
    for (bad, refused) in cases {
        for e in [
            spec.add_work_unit(&too_long, bad(), bad_meta)
                .await
                .unwrap_err(),
            ns.set_work_spec(bad()).await.unwrap_err(),
            spec.set_data(bad()).await.unwrap_err(),
            worker
                .update(bad(), after_the_end, after_the_end, "m")
                .await
                .unwrap_err(),
            attempt.finish(Some(bad())).await.unwrap_err(),
        ] {
            assert!(refused(&e), "{e:?}");
        }
    }
    let e = spec
        .add_work_unit(&too_long, data!({}), bad_meta)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NameTooLong { .. }), "{e:?}");
    for e in [
        spec.add_work_unit("v", data!({}), bad_meta)
            .await
            .unwrap_err(),
        unit.set_meta(bad_meta).await.unwrap_err(),
        unit.set_priority(f64::INFINITY).await.unwrap_err(),
        spec.set_work_unit_priorities(&WorkUnitQuery::all(), f64::NAN)
            .await
            .unwrap_err(),
        spec.adjust_work_unit_priorities(&WorkUnitQuery::all(), f64::NAN)
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(e, Error::BadPriority), "{e:?}");
    }
    spec_meta.next_continuous = Some(after_the_end);
    for e in [
        unit.set_meta(WorkUnitMeta {
            priority: 0.0,
            not_before: Some(after_the_end),
        })
        .await
        .unwrap_err(),
        worker
            .update(data!({}), after_the_end, after_the_end, "m")
            .await
            .unwrap_err(),
        spec.set_meta(spec_meta).await.unwrap_err(),
    ] {
        assert!(matches!(e, Error::TimeOutOfRange(_)), "{e:?}");
    }
    assert_eq!(requests.load(Ordering::Relaxed), before, "requests made");
}

/// Lists, re-prioritises and deletes with queries whose names do not fit
/// one URL, through `RestBackend` against `app` and directly on a
/// `MemoryBackend`, and checks that every answer and the final state
/// agree, limits and `previous` included. Answers the requests each call
/// took.
async fn long_queries_against(app: axum::Router, served: &MemoryBackend) -> Vec<u64> {
    let (url, requests, _stop) = counting(app).await;
    let rest = RestBackend::connect(url).await.unwrap();
    let reference = MemoryBackend::new();
    // 20-byte names: 3,000 of them make a query URL of about 80 KB, more
    // than an HTTP URI may hold.
    let names: Vec<String> = (0..3_000).map(|i| format!("unit-{i:015}")).collect();
    let units: Vec<coordinate::NewWorkUnit> = names
        .iter()
        .map(|n| coordinate::NewWorkUnit::new(n.as_str(), data!({})))
        .collect();
    for store in [served, &reference] {
        let ns = store.namespace("ns").await.unwrap();
        let spec = ns.set_work_spec(data!({"name": "s"})).await.unwrap();
        spec.add_work_units(units.clone()).await.unwrap();
    }
    async fn spec_of(store: &dyn Backend) -> coordinate::WorkSpecRef {
        let ns = store.namespace("ns").await.unwrap();
        ns.work_spec("s").await.unwrap()
    }
    let (over_rest, local) = (spec_of(&rest).await, spec_of(&reference).await);
    let mut all = names.clone();
    all.push("missing".into());
    let paged = WorkUnitQuery {
        previous_name: names[1_000].clone(),
        limit: 7,
        ..WorkUnitQuery::names(all.clone())
    };
    let available = WorkUnitQuery {
        statuses: vec![WorkUnitStatus::Available],
        limit: 1_500,
        ..WorkUnitQuery::names(all.clone())
    };
    let mut costs = Vec::new();
    let mut cost = |before: u64| costs.push(requests.load(Ordering::Relaxed) - before);
    for query in [
        WorkUnitQuery::names(all.clone()),
        paged.clone(),
        available.clone(),
    ] {
        let before = requests.load(Ordering::Relaxed);
        let got = over_rest.work_units(&query).await.unwrap();
        cost(before);
        let want = local.work_units(&query).await.unwrap();
        assert!(
            got.keys().eq(want.keys()),
            "{} against {}",
            got.len(),
            want.len()
        );
    }
    let before = requests.load(Ordering::Relaxed);
    over_rest
        .set_work_unit_priorities(&paged, 5.0)
        .await
        .unwrap();
    cost(before);
    let before = requests.load(Ordering::Relaxed);
    over_rest
        .adjust_work_unit_priorities(&available, 1.0)
        .await
        .unwrap();
    cost(before);
    local.set_work_unit_priorities(&paged, 5.0).await.unwrap();
    local
        .adjust_work_unit_priorities(&available, 1.0)
        .await
        .unwrap();
    let before = requests.load(Ordering::Relaxed);
    let deleted = over_rest.delete_work_units(&paged).await.unwrap();
    cost(before);
    assert_eq!(deleted, local.delete_work_units(&paged).await.unwrap());
    let served_spec = spec_of(served).await;
    let everything = WorkUnitQuery::all();
    let (got, want) = (
        served_spec.work_units(&everything).await.unwrap(),
        local.work_units(&everything).await.unwrap(),
    );
    assert!(got.keys().eq(want.keys()));
    for (name, unit) in &want {
        let priority = unit.meta().await.unwrap().priority;
        assert_eq!(got[name].meta().await.unwrap().priority, priority, "{name}");
    }
    costs
}

/// A query whose names do not fit one URL is one `POST` to the spec's
/// select URL: one request, so one atomic operation on the server.
#[tokio::test]
async fn queries_too_long_for_one_url_are_one_request() {
    let served = MemoryBackend::new();
    let app = router_over(&served);
    // Three lists, a change, an adjust and a delete.
    assert_eq!(long_queries_against(app, &served).await, [1; 6]);
}

/// From a server without a select URL, such a query is sent in parts, and
/// selects what the store itself does for the whole query.
#[tokio::test]
async fn queries_too_long_for_one_url_are_sent_in_parts_to_other_servers() {
    let served = MemoryBackend::new();
    let app = router_over(&served);
    let costs = long_queries_against(support::plain::without_select_url(app), &served).await;
    assert!(costs.iter().all(|&n| n > 1), "{costs:?}");
}

/// A query too big for one body, even to a server with a select URL, is
/// sent in parts.
#[tokio::test]
async fn a_query_too_big_for_one_body_is_sent_in_parts() {
    let served = with_units(&["a", "b", "c"]).await;
    let app = router_over(&served);
    let (url, requests, _stop) = counting(app).await;
    let spec = served.work_spec_at("n", "s").await.unwrap();
    let rest = RestBackend::connect(url).await.unwrap();
    let over_rest = rest.work_spec_at("n", "s").await.unwrap();
    // About 5 MB of names, none of them stored but "b".
    let mut names: Vec<String> = (0..200_000).map(|i| format!("absent-{i:013}")).collect();
    names.push("b".into());
    let before = requests.load(Ordering::Relaxed);
    let deleted = over_rest
        .delete_work_units(&WorkUnitQuery::names(names))
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    assert!(requests.load(Ordering::Relaxed) - before > 1, "one request");
    let left = spec.work_units(&WorkUnitQuery::all()).await.unwrap();
    assert!(left.keys().eq(["a", "c"]));
}

/// The requests one stateless read costs: resolve namespace, spec and
/// (except for the meta) unit by name, then read.
async fn requests_per_read(backend: &dyn Backend, requests: &AtomicU64) -> [u64; 3] {
    let mut costs = [0; 3];
    for (read, cost) in costs.iter_mut().enumerate() {
        let before = requests.load(Ordering::Relaxed);
        let spec = backend
            .namespace("n")
            .await
            .unwrap()
            .work_spec("s")
            .await
            .unwrap();
        match read {
            0 => drop(spec.work_unit("u").await.unwrap().status().await.unwrap()),
            1 => drop(spec.work_unit("u").await.unwrap().data().await.unwrap()),
            _ => drop(spec.meta(true).await.unwrap()),
        }
        *cost = requests.load(Ordering::Relaxed) - before;
    }
    costs
}

#[tokio::test]
async fn a_cached_read_is_one_request() {
    let (url, requests, _stop) = counting_server().await;
    let rest = RestBackend::connect(url).await.unwrap();
    let spec = rest
        .namespace("n")
        .await
        .unwrap()
        .set_work_spec(data!({"name": "s"}))
        .await
        .unwrap();
    spec.add_work_unit("u", data!({"k": 1}), WorkUnitMeta::default())
        .await
        .unwrap();
    // Uncached, every name costs a request; the unit status, unit data and
    // spec meta reads are the last request of each.
    assert_eq!(requests_per_read(&rest, &requests).await, [4, 4, 3]);
    let cached = coordinate::cache::Cache::new(rest);
    requests_per_read(&cached, &requests).await;
    assert_eq!(requests_per_read(&cached, &requests).await, [1, 1, 1]);
}

/// The requests a worker's attempt calls cost against `app`: a hand-out
/// of three units, the worker's active attempts, and a unit's active
/// attempt.
async fn requests_per_attempt_call(app: axum::Router) -> [u64; 3] {
    let (url, requests, _stop) = counting(app).await;
    let rest = RestBackend::connect(url).await.unwrap();
    let ns = rest.namespace("n").await.unwrap();
    let spec = ns.set_work_spec(data!({"name": "s"})).await.unwrap();
    for name in ["u1", "u2", "u3"] {
        spec.add_work_unit(name, data!({}), WorkUnitMeta::default())
            .await
            .unwrap();
    }
    let worker = ns.worker("w").await.unwrap();
    let unit = spec.work_unit("u1").await.unwrap();
    let mut costs = [0; 3];
    for (call, cost) in costs.iter_mut().enumerate() {
        let before = requests.load(Ordering::Relaxed);
        let attempts = match call {
            0 => worker
                .request_attempts(&coordinate::AttemptRequest::units(3))
                .await
                .unwrap(),
            1 => worker.active_attempts().await.unwrap(),
            _ => unit.active_attempt().await.unwrap().into_iter().collect(),
        };
        *cost = requests.load(Ordering::Relaxed) - before;
        let mut names: Vec<String> = attempts
            .iter()
            .map(|a| format!("{}/{}", a.work_unit().name(), a.worker().name()))
            .collect();
        names.sort();
        let want: &[&str] = match call {
            2 => &["u1/w"],
            _ => &["u1/w", "u2/w", "u3/w"],
        };
        assert_eq!(names, want, "call {call}");
    }
    costs
}

#[tokio::test]
async fn attempts_that_name_their_objects_cost_no_further_requests() {
    // The names in this server's attempt documents make the handles.
    assert_eq!(requests_per_attempt_call(memory_router()).await, [1, 1, 2]);
    // Without them, the client reads the spec and every unit a hand-out
    // returns, every unit (and their spec) of a list, and the worker of a
    // unit's active attempt.
    let unnamed = support::plain::without_attempt_names(memory_router());
    assert_eq!(requests_per_attempt_call(unnamed).await, [5, 5, 3]);
}

#[tokio::test]
async fn a_unit_deleted_between_its_reads_answers_for_the_unit_that_has_its_name() {
    let memory = MemoryBackend::new();
    let backend: Arc<dyn Backend> = Arc::new(memory.clone());
    // Armed, the server deletes and re-adds unit `u` just before it
    // answers the next read of an attempt: after the client has read the
    // unit's document, before it reads the active attempt linked there.
    let armed = Arc::new(AtomicBool::new(false));
    let trigger = armed.clone();
    let app = coordinated::router(backend, &coordinated::ServerOptions::default()).layer(
        axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let memory = memory.clone();
                let fire = request.method() == axum::http::Method::GET
                    && request.uri().path().contains("/attempt/")
                    && trigger.swap(false, Ordering::SeqCst);
                async move {
                    if fire {
                        let spec = memory.work_spec_at("n", "s").await.unwrap();
                        spec.delete_work_units(&WorkUnitQuery::names(["u"]))
                            .await
                            .unwrap();
                        spec.add_work_unit("u", data!({}), WorkUnitMeta::default())
                            .await
                            .unwrap();
                    }
                    next.run(request).await
                }
            },
        ),
    );
    let (url, _stop) = serve(app).await;
    let rest = RestBackend::connect(url).await.unwrap();
    let ns = rest.namespace("n").await.unwrap();
    let spec = ns.set_work_spec(data!({"name": "s"})).await.unwrap();
    spec.add_work_unit("u", data!({}), WorkUnitMeta::default())
        .await
        .unwrap();
    let worker = ns.worker("w").await.unwrap();
    let cached = coordinate::cache::Cache::new(rest.clone());
    for backend in [&rest as &dyn Backend, &cached] {
        let unit = backend.work_unit_at("n", "s", "u").await.unwrap();
        worker
            .make_attempt(
                &rest.work_unit_at("n", "s", "u").await.unwrap(),
                coordinate::Duration::hours(1),
            )
            .await
            .unwrap();
        armed.store(true, Ordering::SeqCst);
        // The unit that now has the name has no active attempt.
        assert!(unit.active_attempt().await.unwrap().is_none());
        assert!(!armed.load(Ordering::SeqCst), "the deletion ran");
    }
}

#[tokio::test]
async fn transport_failures_are_backend_errors_with_their_cause() {
    // A port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let err = RestBackend::connect(format!("http://{addr}/"))
        .await
        .unwrap_err();
    let Error::Backend(source) = &err else {
        panic!("expected a backend error, got {err:?}");
    };
    assert!(
        source.downcast_ref::<reqwest::Error>().is_some(),
        "{source:?}"
    );

    // A server that accepts and never answers: the request timeout fires.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let err = RestBackend::builder(format!("http://{addr}/"))
        .timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap_err();
    assert!(is_timeout(&err), "{err:?}");
    held.abort();

    // Not a Coordinate server: a web page is a protocol error.
    let web = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = web.local_addr().unwrap();
    let page = tokio::spawn(async move {
        if let Ok((mut socket, _)) = web.accept().await {
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            let response =
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nhi";
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    let err = RestBackend::connect(format!("http://{addr}/"))
        .await
        .unwrap_err();
    page.abort();
    let Error::Backend(source) = &err else {
        panic!("expected a backend error, got {err:?}");
    };
    assert!(
        source.downcast_ref::<ProtocolError>().is_some(),
        "{source:?}"
    );

    assert!(matches!(
        RestBackend::connect("ftp://127.0.0.1/").await,
        Err(Error::Backend(_))
    ));
}

/// A base URL's credentials reach the server (as basic authentication)
/// but no error message or `Debug` output: they show `***` instead.
/// Objects of another namespace go by URL in a request body; the base
/// URL's credentials stay in the authorization header.
#[tokio::test]
async fn urls_in_request_bodies_carry_no_credentials() {
    let leaks = Arc::new(AtomicU64::new(0));
    let counter = leaks.clone();
    let app = memory_router().layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let counter = counter.clone();
            async move {
                let (parts, body) = request.into_parts();
                let bytes = axum::body::to_bytes(body, usize::MAX)
                    .await
                    .unwrap_or_default();
                if bytes.windows(b"secret".len()).any(|w| w == b"secret") {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                let body = axum::body::Body::from(bytes);
                next.run(axum::extract::Request::from_parts(parts, body))
                    .await
            }
        },
    ));
    let (url, _stop) = serve(app).await;
    let rest = RestBackend::connect(url.replacen("http://", "http://user:secret@", 1))
        .await
        .unwrap();
    let here = rest.namespace("here").await.unwrap();
    let there = rest.namespace("there").await.unwrap();
    let spec = there.set_work_spec(data!({"name": "s"})).await.unwrap();
    let unit = spec
        .add_work_unit("u", data!({}), WorkUnitMeta::default())
        .await
        .unwrap();
    let worker = here.worker("w").await.unwrap();
    let parent = there.worker("p").await.unwrap();
    worker.set_parent(Some(&parent)).await.unwrap();
    let attempt = worker
        .make_attempt(&unit, Default::default())
        .await
        .unwrap();
    let parent = worker.parent().await.unwrap().expect("a parent");
    assert_eq!((parent.namespace_name(), parent.name()), ("there", "p"));
    assert_eq!(attempt.work_unit().name(), "u");
    assert_eq!(leaks.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn credentials_in_the_base_url_are_never_shown() {
    use axum::response::IntoResponse;
    let authorized = Arc::new(AtomicU64::new(0));
    let counter = authorized.clone();
    // Answers 503 to reads of namespace `broken`, counts requests that
    // carry the credentials.
    let app = memory_router().layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let basic = request
                .headers()
                .get(axum::http::header::AUTHORIZATION)
                .is_some_and(|v| v == "Basic dXNlcjpzZWNyZXQ=");
            if basic {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            let broken = request.uri().path().ends_with("/broken");
            async move {
                if broken {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
                next.run(request).await
            }
        },
    ));
    let (url, _stop) = serve(app).await;
    let with_credentials = url.replacen("http://", "http://user:secret@", 1);
    let builder = RestBackend::builder(with_credentials.clone());
    let rest = builder.clone().connect().await.unwrap();
    let (ns, spec, unit, worker, attempt) = one_of_each(&rest, "n").await;
    assert!(authorized.load(Ordering::SeqCst) > 0, "no basic auth sent");
    let failed = rest.namespace("broken").await.unwrap_err();

    // A port nobody listens on: the HTTP client's own error.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let unreachable = RestBackend::connect(format!("http://user:secret@{addr}/"))
        .await
        .unwrap_err();
    // Not a URL at all.
    let invalid = RestBackend::connect("http://user:secret@[::1")
        .await
        .unwrap_err();

    let shown = [
        format!("{builder:?}"),
        format!("{rest:?}"),
        rest.base_url().to_owned(),
        format!("{ns:?} {spec:?} {unit:?} {worker:?} {attempt:?}"),
        format!("{failed} {failed:?}"),
        format!("{unreachable} {unreachable:?}"),
        format!("{invalid} {invalid:?}"),
    ];
    for text in shown {
        assert!(!text.contains("secret"), "{text}");
    }
    assert!(
        rest.base_url().contains("***@127.0.0.1"),
        "{}",
        rest.base_url()
    );
    assert!(failed.to_string().contains("***@"), "{failed}");
}

/// A base URL of another scheme than `http` and `https` is refused when
/// the client is built, its credentials hidden, not at the first request.
#[tokio::test]
async fn a_base_url_of_another_scheme_is_refused_when_built() {
    let err = RestBackend::connect("ftp://user:secret@127.0.0.1:1/")
        .await
        .unwrap_err();
    let Error::Backend(source) = &err else {
        panic!("expected a backend error, got {err:?}");
    };
    let refused = source.downcast_ref::<BaseUrlError>();
    assert!(
        matches!(refused, Some(BaseUrlError::NotHttp { url }) if url == "ftp://***@127.0.0.1:1/"),
        "{err:?}"
    );
    assert!(err.to_string().contains("https://"), "{err}");
}

/// A router's own `404` without an error document (the reference server's
/// router answers so for a path it has no route for) is no such spec for a
/// spec lookup, as the reference client reads it, and a protocol error
/// anywhere else.
#[tokio::test]
async fn a_plain_not_found_for_a_spec_lookup_is_no_such_work_spec() {
    use axum::response::IntoResponse;
    let app = memory_router().layer(axum::middleware::from_fn(
        |request: axum::extract::Request, next: axum::middleware::Next| async move {
            if request.uri().path().ends_with("/routed-away") {
                return (axum::http::StatusCode::NOT_FOUND, "404 page not found\n").into_response();
            }
            next.run(request).await
        },
    ));
    let (url, _stop) = serve(app).await;
    let rest = RestBackend::builder(url).connect().await.expect("connect");
    let ns = rest.namespace("n").await.expect("namespace");
    assert_eq!(
        ns.work_spec("routed-away").await.err(),
        Some(Error::NoSuchWorkSpec {
            name: "routed-away".into()
        })
    );
    let spec = ns
        .set_work_spec(data!({"name": "s"}))
        .await
        .expect("set_work_spec");
    let err = spec
        .work_unit("routed-away")
        .await
        .expect_err("a plain 404");
    assert!(
        matches!(
            protocol_error(&err),
            Some(ProtocolError::Status { status, .. }) if status.as_u16() == 404
        ),
        "{err:?}"
    );
}

/// The error of connecting to `url` with a response limit of `limit`.
async fn connect_err(url: String, limit: usize) -> Error {
    RestBackend::builder(url)
        .max_response_bytes(limit)
        .connect()
        .await
        .unwrap_err()
}

/// The protocol error `err` carries, if it is one.
fn protocol_error(err: &Error) -> Option<&ProtocolError> {
    let Error::Backend(source) = err else {
        return None;
    };
    source.downcast_ref::<ProtocolError>()
}

fn is_too_large(err: &Error) -> bool {
    matches!(protocol_error(err), Some(ProtocolError::TooLarge { .. }))
}

#[tokio::test]
async fn a_response_over_the_limit_is_refused_unread() {
    // The real server: its root document fits 4 KiB, not 16 bytes.
    let (url, _stop) = server().await;
    assert!(RestBackend::builder(url.clone())
        .max_response_bytes(4096)
        .connect()
        .await
        .is_ok());
    let err = connect_err(url, 16).await;
    assert!(is_too_large(&err), "{err:?}");

    // A document under the limit that arrives in several chunks.
    let (url, _stop) = server().await;
    let root = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let chunked = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 1024];
        let _ = socket.read(&mut request).await;
        let mut response = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for part in root.chunks(root.len() / 3 + 1) {
            response.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            response.extend_from_slice(part);
            response.extend_from_slice(b"\r\n");
            socket.write_all(&response).await.unwrap();
            socket.flush().await.unwrap();
            response.clear();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        socket.write_all(b"0\r\n\r\n").await.unwrap();
        // Held open until the client is done.
        let _ = socket.read(&mut request).await;
    });
    let joined = RestBackend::builder(format!("http://{addr}/"))
        .max_response_bytes(4096)
        .connect()
        .await;
    assert!(joined.is_ok(), "{:?}", joined.err());
    drop(joined);
    chunked.abort();

    // A server announcing more than the limit, or streaming without end:
    // refused at the header, or as soon as the body passes the limit.
    for announce in [true, false] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let endless = tokio::spawn(async move {
            let Ok((mut socket, _)) = listener.accept().await else {
                return 0usize;
            };
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            let head = if announce {
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n"
            } else {
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            };
            let _ = socket.write_all(head.as_bytes()).await;
            let chunk = format!("400\r\n{}\r\n", " ".repeat(0x400));
            let mut sent = 0;
            // Until the client hangs up.
            while socket.write_all(chunk.as_bytes()).await.is_ok() {
                sent += chunk.len();
            }
            sent
        });
        let err = connect_err(format!("http://{addr}/"), 64 << 10).await;
        assert!(is_too_large(&err), "announce={announce}: {err:?}");
        let sent = tokio::time::timeout(Duration::from_secs(30), endless)
            .await
            .expect("the client hangs up")
            .unwrap();
        assert!(sent < 64 << 20, "announce={announce}: read {sent} bytes");
    }
}

/// A `Cache<RestBackend>` whose server answers lookups (`GET` of a work
/// spec or unit) 300 ms after it read the object, as if slow on their way
/// back; the server holds unit `u` of spec `s` in namespace `n`.
struct SlowLookups {
    cached: coordinate::cache::Cache<RestBackend>,
    /// Set when the server has read an object for a lookup.
    read: Arc<AtomicBool>,
    _stop: oneshot::Sender<()>,
}

impl SlowLookups {
    async fn start() -> SlowLookups {
        let read = Arc::new(AtomicBool::new(false));
        let flag = read.clone();
        let app = router_over(&with_unit().await).layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let read = flag.clone();
                async move {
                    let path = request.uri().path();
                    let lookup = request.method() == axum::http::Method::GET
                        && (path.contains("/work_unit/") || path.contains("/work_spec/"));
                    let response = next.run(request).await;
                    if lookup {
                        read.store(true, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    response
                }
            },
        ));
        let (url, stop) = serve(app).await;
        let cached = coordinate::cache::Cache::new(RestBackend::connect(url).await.unwrap());
        SlowLookups {
            cached,
            read,
            _stop: stop,
        }
    }

    /// Starts a lookup of spec `s` in `ns`, and returns once the server
    /// has read it.
    async fn spec_read_in_flight(
        &self,
        ns: &NamespaceRef,
    ) -> tokio::task::JoinHandle<coordinate::Result<coordinate::WorkSpecRef>> {
        let ns = ns.clone();
        self.read_in_flight(async move { ns.work_spec("s").await })
            .await
    }

    /// Starts `lookup`, and returns once the server has read its object.
    async fn read_in_flight<T: Send + 'static>(
        &self,
        lookup: impl std::future::Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        self.read.store(false, Ordering::SeqCst);
        let lookup = tokio::spawn(lookup);
        while !self.read.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        lookup
    }
}

/// A memory backend holding unit `u` of spec `s` in namespace `n`.
async fn with_unit() -> MemoryBackend {
    with_units(&["u"]).await
}

/// A memory backend holding `units` of spec `s` in namespace `n`.
async fn with_units(units: &[&str]) -> MemoryBackend {
    support::memory_with_units(units).await
}

/// A delete made through the cache while a lookup of the same name is on
/// its way back keeps that lookup's answer out of the cache: afterwards
/// the name is missing, as it is on the server.
#[tokio::test]
async fn a_lookup_overtaken_by_a_delete_through_the_cache_is_not_cached() {
    let slow = SlowLookups::start().await;
    let spec = slow.cached.work_spec_at("n", "s").await.unwrap();

    let lookup = slow
        .read_in_flight({
            let spec = spec.clone();
            async move { spec.work_unit("u").await }
        })
        .await;
    let deleted = spec.delete_work_units(&WorkUnitQuery::names(["u"])).await;
    assert_eq!(deleted.unwrap(), 1);
    // The lookup's own caller still gets its answer...
    assert_eq!(lookup.await.unwrap().unwrap().name(), "u");
    // ...which the cache did not keep.
    let after = spec.work_unit("u").await;
    assert!(
        matches!(after, Err(Error::NoSuchWorkUnit { .. })),
        "{after:?}"
    );
}

/// The same for a spec destroyed through the cache.
#[tokio::test]
async fn a_lookup_overtaken_by_a_destroy_through_the_cache_is_not_cached() {
    let slow = SlowLookups::start().await;
    let ns = slow.cached.namespace("n").await.unwrap();

    let lookup = slow.spec_read_in_flight(&ns).await;
    ns.destroy_work_spec("s").await.unwrap();
    assert_eq!(lookup.await.unwrap().unwrap().name(), "s");
    let after = ns.work_spec("s").await;
    assert!(
        matches!(after, Err(Error::NoSuchWorkSpec { .. })),
        "{after:?}"
    );
}

/// A list made through the cache caches the handles it answers, unless
/// their names were dropped while it was on its way back: a delete made
/// through the cache meanwhile leaves the name missing afterwards, as it is
/// on the server, whether the delete named the unit or selected it by
/// status.
#[tokio::test]
async fn a_list_overtaken_by_a_delete_through_the_cache_caches_nothing_deleted() {
    let by_name = WorkUnitQuery::names(["u"]);
    let by_status = WorkUnitQuery::statuses([WorkUnitStatus::Available]);
    for delete in [by_name, by_status] {
        let slow = SlowLookups::start().await;
        let spec = slow.cached.work_spec_at("n", "s").await.unwrap();

        let list = slow
            .read_in_flight({
                let spec = spec.clone();
                async move { spec.work_units(&WorkUnitQuery::all()).await }
            })
            .await;
        assert_eq!(spec.delete_work_units(&delete).await.unwrap(), 1);
        // The list's caller gets its answer, read before the delete...
        let listed = list.await.unwrap().unwrap();
        assert!(listed.contains_key("u"), "{delete:?}");
        // ...which the cache did not keep.
        let after = spec.work_unit("u").await;
        assert!(
            matches!(after, Err(Error::NoSuchWorkUnit { .. })),
            "{delete:?}: {after:?}"
        );
        // A list that no delete overtook is cached as before.
        spec.add_work_unit("v", data!({}), WorkUnitMeta::default())
            .await
            .unwrap();
        let listed = spec.work_units(&WorkUnitQuery::all()).await.unwrap();
        let looked_up = spec.work_unit("v").await.unwrap();
        assert!(Arc::ptr_eq(&listed["v"], &looked_up), "{delete:?}");
    }
}

/// Moves every resource of `app` under `/moved`: a request elsewhere is
/// redirected there, a read with `308`, any other method with `303`
/// (which a client that follows it re-sends as a `GET`).
fn moved(app: axum::Router) -> axum::Router {
    use axum::response::IntoResponse;
    app.layer(axum::middleware::from_fn(
        |mut request: axum::extract::Request, next: axum::middleware::Next| async move {
            let target = request
                .uri()
                .path_and_query()
                .map_or_else(String::new, |p| p.as_str().to_owned());
            if let Some(original) = target.strip_prefix("/moved") {
                *request.uri_mut() = original.parse().unwrap();
                return next.run(request).await;
            }
            let status = if request.method() == axum::http::Method::GET {
                axum::http::StatusCode::PERMANENT_REDIRECT
            } else {
                axum::http::StatusCode::SEE_OTHER
            };
            let location = format!("/moved{target}");
            (status, [(axum::http::header::LOCATION, location)]).into_response()
        },
    ))
}

/// A backend error saying a request took longer than the client's timeout.
fn is_timeout(err: &Error) -> bool {
    matches!(protocol_error(err), Some(ProtocolError::Timeout { .. }))
}

/// The timeout bounds a read and all its redirects together: a server
/// redirecting each read after most of the timeout fails it within about
/// the timeout, not ten redirects' worth of it.
#[tokio::test]
async fn the_timeout_covers_a_read_and_its_redirects() {
    let served = with_unit().await;
    let (url, _stop) = serve(router_over(&served)).await;
    let rest = RestBackend::builder(&url)
        .timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap();
    let slow = slowly_moved(router_over(&served), Duration::from_millis(300));
    let (slow_url, _slow_stop) = serve(slow).await;
    let rest_slowly = RestBackend::builder(&slow_url)
        .timeout(Duration::from_millis(500))
        .connect()
        .await;
    let started = std::time::Instant::now();
    assert!(
        rest_slowly.as_ref().is_err_and(is_timeout),
        "{rest_slowly:?}"
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
    // The same read without the redirects answers.
    assert!(rest.namespace("n").await.is_ok());
}

/// `app` redirecting every read after `delay`, to itself one hop deeper:
/// a read never ends before the client stops following.
fn slowly_moved(app: axum::Router, delay: Duration) -> axum::Router {
    use axum::response::IntoResponse;
    app.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, _next: axum::middleware::Next| async move {
            tokio::time::sleep(delay).await;
            let location = format!("{}/hop", request.uri().path().trim_end_matches('/'));
            let found = axum::http::StatusCode::FOUND;
            (found, [(axum::http::header::LOCATION, location)]).into_response()
        },
    ))
}

/// Reads follow redirects; a change answered with one fails, and is not
/// made, rather than succeed as the `GET` it would be followed with.
#[tokio::test]
async fn reads_follow_redirects_and_changes_do_not() {
    let served = with_unit().await;
    let ns = served.namespace("n").await.unwrap();
    let handed_out = ns
        .worker("w")
        .await
        .unwrap()
        .request_attempts(&coordinate::AttemptRequest::units(1))
        .await
        .unwrap();
    assert_eq!(handed_out.len(), 1);

    let (url, _stop) = serve(moved(router_over(&served))).await;
    let rest = RestBackend::connect(url).await.unwrap();
    let unit = rest.work_unit_at("n", "s", "u").await.unwrap();
    assert_eq!(unit.status().await.unwrap(), WorkUnitStatus::Pending);
    let attempt = unit.active_attempt().await.unwrap().unwrap();
    let finished = attempt.finish(None).await;
    assert!(
        matches!(&finished, Err(Error::Backend(e)) if e.to_string().contains("303")),
        "{finished:?}"
    );
    let on_server = served.work_unit_at("n", "s", "u").await.unwrap();
    assert_eq!(on_server.status().await.unwrap(), WorkUnitStatus::Pending);
}

/// A server over `memory` that links to attempts it does not serve.
fn attempts_not_served(memory: &MemoryBackend) -> axum::Router {
    use axum::response::IntoResponse;
    router_over(memory).layer(axum::middleware::from_fn(
        |request: axum::extract::Request, next: axum::middleware::Next| async move {
            if request.method() == axum::http::Method::GET
                && request.uri().path().contains("/attempt/")
            {
                return axum::http::StatusCode::NOT_FOUND.into_response();
            }
            next.run(request).await
        },
    ))
}

/// A unit whose active attempt cannot be read is not gone: the unit was
/// read each time, so the answer is the server's fault.
#[tokio::test]
async fn an_active_attempt_never_served_is_a_protocol_error_not_gone() {
    let served = with_unit().await;
    let ns = served.namespace("n").await.unwrap();
    ns.worker("w")
        .await
        .unwrap()
        .request_attempts(&coordinate::AttemptRequest::units(1))
        .await
        .unwrap();
    let (url, _stop) = serve(attempts_not_served(&served)).await;
    let rest = RestBackend::connect(url).await.unwrap();
    let unit = rest.work_unit_at("n", "s", "u").await.unwrap();
    let active = unit.active_attempt().await;
    assert!(active.as_ref().is_err_and(is_link_error), "{active:?}");
}

/// A 404 whose JSON body is not the API's error document (it has no error
/// code: a gateway's page, say) says nothing of the attempt: it is the
/// status it came with, not `Gone`.
#[tokio::test]
async fn a_404_without_an_error_code_is_not_gone() {
    use axum::response::IntoResponse;
    let served = with_unit().await;
    let app = router_over(&served).layer(axum::middleware::from_fn(
        |request: axum::extract::Request, next: axum::middleware::Next| async move {
            if request.uri().path().ends_with("/finish") {
                let page = axum::Json(json!({"message": "Not Found"}));
                return (axum::http::StatusCode::NOT_FOUND, page).into_response();
            }
            next.run(request).await
        },
    ));
    let (url, _stop) = serve(app).await;
    let rest = RestBackend::connect(url).await.unwrap();
    let worker = rest.worker_at("n", "w").await.unwrap();
    let attempt = worker
        .request_attempts(&AttemptRequest::units(1))
        .await
        .unwrap()
        .pop()
        .unwrap();
    let finished = attempt.finish(None).await;
    let status = finished.as_ref().err().and_then(protocol_error);
    assert!(
        matches!(status, Some(ProtocolError::Status { status, .. }) if status.as_u16() == 404),
        "{finished:?}"
    );
    // The attempt is live on the server all the same.
    assert_eq!(
        attempt.status().await.unwrap(),
        coordinate::AttemptStatus::Pending
    );
}

fn is_link_error(err: &Error) -> bool {
    matches!(protocol_error(err), Some(ProtocolError::Link { .. }))
}

/// A link the server leaves out of a document is a protocol error when the
/// client needs it, not the base URL, whose root document would read as an
/// empty list.
#[tokio::test]
async fn a_missing_link_is_a_protocol_error() {
    let served = with_unit().await;
    ns_worker_with_attempt(&served).await;
    // The server leaves the link out of its worker documents.
    let app = router_over(&served).layer(axum::middleware::map_response(
        |response: axum::response::Response| {
            support::plain::edit_json(response, |doc| {
                if let Some(doc) = doc.as_object_mut() {
                    doc.remove("active_attempts_url");
                }
            })
        },
    ));
    let (url, _stop) = serve(app).await;
    let rest = RestBackend::connect(url).await.unwrap();
    let worker = rest.worker_at("n", "w").await.unwrap();
    let active = worker.active_attempts().await;
    assert!(
        active.as_ref().is_err_and(is_link_error),
        "{:?}",
        active.map(|a| a.len())
    );
}

/// Gives worker `w` of namespace `n` an attempt at unit `u` of spec `s`.
async fn ns_worker_with_attempt(served: &MemoryBackend) {
    let attempts = served
        .worker_at("n", "w")
        .await
        .unwrap()
        .request_attempts(&AttemptRequest::units(1))
        .await
        .unwrap();
    assert_eq!(attempts.len(), 1);
}

/// A root document without a link the client follows from it is refused
/// at connect.
#[tokio::test]
async fn a_root_document_without_its_links_is_refused_at_connect() {
    let whole = json!({
        "url": "",
        "summary_url": "/summary",
        "namespaces_url": "/namespace",
        "namespace_url": "/namespace/{namespace}",
    });
    let mut cases = vec![("none", whole.clone())];
    for field in ["summary_url", "namespaces_url", "namespace_url"] {
        let mut root = whole.clone();
        root.as_object_mut().unwrap().remove(field);
        cases.push((field, root));
    }
    let mut plain = whole.clone();
    plain["namespace_url"] = "/namespace/x".into();
    cases.push(("{namespace}", plain));
    for (missing, root) in cases {
        let app = axum::Router::new().route(
            "/",
            axum::routing::get(move || async move { axum::Json(root) }),
        );
        let (url, _stop) = serve(app).await;
        let connected = RestBackend::connect(url).await;
        if missing == "none" {
            assert!(connected.is_ok(), "{:?}", connected.err());
        } else {
            let err = connected.unwrap_err();
            assert!(is_link_error(&err), "{missing}: {err:?}");
            assert!(err.to_string().contains(missing), "{missing}: {err}");
        }
    }
}

/// A server that hands out more attempts than asked for: the client keeps
/// as many as it asked for and releases the others.
#[tokio::test]
async fn a_hand_out_keeps_no_more_attempts_than_asked_for() {
    let served = with_units(&["u1", "u2", "u3"]).await;
    let (expired, recorded) = expires();
    // Every hand-out request asks the store for three units.
    let app = recorded(router_over(&served)).layer(axum::middleware::from_fn(
        |request: axum::extract::Request, next: axum::middleware::Next| async move {
            if !request.uri().path().ends_with("/request_attempts") {
                return next.run(request).await;
            }
            let (parts, body) = request.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            let mut json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            json["number_of_work_units"] = 3.into();
            let body = axum::body::Body::from(serde_json::to_vec(&json).unwrap());
            next.run(axum::extract::Request::from_parts(parts, body))
                .await
        },
    ));
    let (url, _stop) = serve(app).await;
    let rest = RestBackend::connect(url).await.unwrap();
    let worker = rest.worker_at("n", "w").await.unwrap();
    let attempts = worker
        .request_attempts(&coordinate::AttemptRequest::units(1))
        .await
        .unwrap();
    assert_eq!(attempts.len(), 1);
    // The server did hand out three; the two not kept are available again.
    assert_eq!(expired.load(Ordering::SeqCst), 2);
    let counts = unit_counts(&served).await;
    assert_eq!(counts.get(&WorkUnitStatus::Pending), Some(&1), "{counts:?}");
    assert_eq!(
        counts.get(&WorkUnitStatus::Available),
        Some(&2),
        "{counts:?}"
    );
}

/// The unit counts of spec `s` of namespace `n` of `served`.
async fn unit_counts(served: &MemoryBackend) -> std::collections::BTreeMap<WorkUnitStatus, u64> {
    let spec = served.work_spec_at("n", "s").await.unwrap();
    spec.count_work_unit_status().await.unwrap()
}

/// A counter of the attempt expiries a server answers, and a layer for
/// the server that counts them.
fn expires() -> (Arc<AtomicU64>, impl Fn(axum::Router) -> axum::Router) {
    let expired = Arc::new(AtomicU64::new(0));
    let counter = expired.clone();
    let layer = move |app: axum::Router| {
        let counter = counter.clone();
        app.layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let expire = request.method() == axum::http::Method::POST
                    && request.uri().path().ends_with("/expire");
                let counter = counter.clone();
                async move {
                    let response = next.run(request).await;
                    if expire && response.status().is_success() {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    response
                }
            },
        ))
    };
    (expired, layer)
}

/// A hand-out whose handles cannot be built, against a server without the
/// attempt names (so the client reads the attempts' spec and units), is an
/// error that leaves no attempt pending: the client expires every attempt
/// the server made before it answers, rather than leave the units held for
/// a whole lease.
#[tokio::test]
async fn a_hand_out_whose_handles_cannot_be_built_is_released() {
    use axum::response::IntoResponse;
    // The follow-up reads of the hand-out: its spec's, and its units'.
    let spec_read: fn(&str) -> bool = |path| path.ends_with("/work_spec/s");
    let unit_read: fn(&str) -> bool = |path| path.contains("/work_unit/");
    for (failing, fails) in [("spec", spec_read), ("unit", unit_read)] {
        let served = with_units(&["u1", "u2"]).await;
        let (expired, recorded) = expires();
        let app = support::plain::without_attempt_names(router_over(&served));
        let app = recorded(app.layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| async move {
                if request.method() == axum::http::Method::GET && fails(request.uri().path()) {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
                next.run(request).await
            },
        )));
        let (url, _stop) = serve(app).await;
        let rest = RestBackend::connect(url).await.unwrap();
        let worker = rest.worker_at("n", "w").await.unwrap();
        let got = worker.request_attempts(&AttemptRequest::units(2)).await;
        assert!(
            matches!(&got, Err(Error::Backend(e)) if e.to_string().contains("503")),
            "{failing}: {got:?}"
        );
        assert_eq!(expired.load(Ordering::SeqCst), 2, "{failing}");
        let counts = unit_counts(&served).await;
        assert_eq!(
            counts.get(&WorkUnitStatus::Available),
            Some(&2),
            "{failing}: {counts:?}"
        );
    }
}

/// A server whose query template cannot carry a query's names is refused
/// for that query, rather than sent a bare `DELETE` that deletes every unit.
#[tokio::test]
async fn a_query_its_template_cannot_carry_is_refused_not_widened() {
    let served = with_units(&["u1", "u2"]).await;
    let app = support::plain::edit_answers_at(router_over(&served), "/work_spec/s", |doc| {
        let plain = doc["work_unit_query_url"].as_str().unwrap();
        let plain = plain.split('{').next().unwrap().to_owned();
        doc["work_unit_query_url"] = plain.into();
    });
    let (url, _stop) = serve(app).await;
    let rest = RestBackend::connect(url).await.unwrap();
    let spec = rest.work_spec_at("n", "s").await.unwrap();
    let deleted = spec.delete_work_units(&WorkUnitQuery::names(["u1"])).await;
    assert!(
        matches!(&deleted, Err(e) if matches!(protocol_error(e), Some(ProtocolError::Link { .. }))),
        "{deleted:?}"
    );
    let left = served.work_spec_at("n", "s").await.unwrap();
    assert_eq!(
        left.work_units(&WorkUnitQuery::default())
            .await
            .unwrap()
            .len(),
        2
    );
    // A query with nothing for the template to carry still goes.
    assert_eq!(
        spec.delete_work_units(&WorkUnitQuery::default())
            .await
            .unwrap(),
        2
    );
}

/// Data nested deeper than a JSON reader follows, which a server without
/// this crate's limits may hand out.
fn too_deep() -> serde_json::Value {
    (0..200).fold(json!(1), |inner, _| json!([inner]))
}

/// A hand-out whose answer the client cannot read (an attempt's data too
/// deep for it, a malformed time, an answer that breaks off or goes on past
/// its document, as with a proxy's banner after it) is an error that leaves
/// none of its attempts pending: their expire links are read from what did
/// arrive.
#[tokio::test]
async fn a_hand_out_whose_answer_cannot_be_read_is_released() {
    type Edit = fn(Vec<u8>) -> Vec<u8>;
    let edits: [(&str, Edit); 4] = [
        ("too deep", |answer| {
            second_attempt(answer, |a| a["data"] = json!({ "a": too_deep() }))
        }),
        ("bad time", |answer| {
            second_attempt(answer, |a| a["start_time"] = json!("bad"))
        }),
        ("cut off", |mut answer| {
            answer.truncate(answer.len() - 2);
            answer
        }),
        ("trailing bytes", |mut answer| {
            answer.extend_from_slice(b"<!-- proxy -->");
            answer
        }),
    ];
    for (case, edit) in edits {
        let served = with_units(&["u1", "u2"]).await;
        let (expired, recorded) = expires();
        let app = support::plain::edit_bytes_at(router_over(&served), "/request_attempts", edit);
        let (url, _stop) = serve(recorded(app)).await;
        let rest = RestBackend::connect(url).await.unwrap();
        let worker = rest.worker_at("n", "w").await.unwrap();
        let got = worker.request_attempts(&AttemptRequest::units(2)).await;
        assert!(
            matches!(&got, Err(e) if matches!(protocol_error(e), Some(ProtocolError::Body { .. }))),
            "{case}: {got:?}"
        );
        assert_eq!(expired.load(Ordering::SeqCst), 2, "{case}");
        let spec = served.work_spec_at("n", "s").await.unwrap();
        let counts = spec.count_work_unit_status().await.unwrap();
        assert_eq!(
            counts.get(&WorkUnitStatus::Available),
            Some(&2),
            "{case}: {counts:?}"
        );
    }
}

/// A hand-out's JSON `answer` with `edit` applied to its second attempt.
fn second_attempt(answer: Vec<u8>, edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut json: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    edit(&mut json["attempts"][1]);
    serde_json::to_vec(&json).unwrap()
}

/// The same for an attempt made on request.
#[tokio::test]
async fn a_made_attempt_whose_answer_cannot_be_read_is_released() {
    let served = with_unit().await;
    let (expired, recorded) = expires();
    let app = recorded(support::plain::edit_answers_at(
        router_over(&served),
        "/make_attempt",
        |json| json["data"] = json!({ "a": too_deep() }),
    ));
    let (url, _stop) = serve(app).await;
    let rest = RestBackend::connect(url).await.unwrap();
    let worker = rest.worker_at("n", "w").await.unwrap();
    let spec = rest.work_spec_at("n", "s").await.unwrap();
    let unit = spec.work_unit("u").await.unwrap();
    let made = worker
        .make_attempt(&unit, coordinate::Duration::minutes(1))
        .await;
    assert!(
        matches!(&made, Err(e) if matches!(protocol_error(e), Some(ProtocolError::Body { .. }))),
        "{:?}",
        made.as_ref().err()
    );
    assert_eq!(expired.load(Ordering::SeqCst), 1);
    let spec = served.work_spec_at("n", "s").await.unwrap();
    let status = spec.work_unit("u").await.unwrap().status().await.unwrap();
    assert_eq!(status, WorkUnitStatus::Available);
}

/// An attempt made whose handle cannot be built is an error that leaves
/// it pending no longer: the client expires it before it answers, as for a
/// hand-out.
#[tokio::test]
async fn a_made_attempt_whose_handle_cannot_be_built_is_released() {
    use axum::response::IntoResponse;
    let served = with_unit().await;
    let (expired, recorded) = expires();
    // The server links the attempt's unit where no read succeeds.
    let app = support::plain::without_attempt_names(router_over(&served));
    let app = recorded(app.layer(axum::middleware::from_fn(
        |request: axum::extract::Request, next: axum::middleware::Next| async move {
            let path = request.uri().path().to_owned();
            if path.ends_with("/work_unit/elsewhere") {
                return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
            let response = next.run(request).await;
            if !path.ends_with("/make_attempt") {
                return response;
            }
            support::plain::edit_json(response, |json| {
                let unit = json["work_unit_url"].as_str().unwrap();
                json["work_unit_url"] = unit.replace("/u", "/elsewhere").into();
            })
            .await
        },
    )));
    let (url, _stop) = serve(app).await;
    let rest = RestBackend::connect(url).await.unwrap();
    let worker = rest.worker_at("n", "w").await.unwrap();
    let unit = rest
        .work_spec_at("n", "s")
        .await
        .unwrap()
        .work_unit("u")
        .await
        .unwrap();
    let made = worker
        .make_attempt(&unit, coordinate::Duration::minutes(1))
        .await;
    assert_one_attempt_released(made, &expired, &served, "n").await;
}

/// A delete whose answer is lost after the server made it is a failure
/// the cache takes as a delete that may have been made: the names it
/// cached are looked up again, and found missing, not served from the
/// cache. An answer without the count is a protocol error.
#[tokio::test]
async fn the_cache_forgets_what_a_failed_delete_may_have_deleted() {
    use axum::response::IntoResponse;
    let served = with_units(&["u", "v"]).await;
    let app = router_over(&served).layer(axum::middleware::from_fn(
        |request: axum::extract::Request, next: axum::middleware::Next| async move {
            if request.method() != axum::http::Method::DELETE {
                return next.run(request).await;
            }
            let uncounted = request.uri().path().ends_with("/work_unit");
            let made = next.run(request).await;
            if uncounted && made.status().is_success() {
                let json = [(axum::http::header::CONTENT_TYPE, "application/json")];
                return (json, "{}").into_response();
            }
            axum::http::StatusCode::BAD_GATEWAY.into_response()
        },
    ));
    let (url, _stop) = serve(app).await;
    let cached = coordinate::cache::Cache::new(RestBackend::connect(&url).await.unwrap());
    let ns = cached.namespace("n").await.unwrap();
    let spec = ns.work_spec("s").await.unwrap();
    spec.work_unit("u").await.unwrap();

    let deleted = spec.delete_work_units(&WorkUnitQuery::names(["u"])).await;
    assert!(
        deleted
            .as_ref()
            .is_err_and(|e| matches!(protocol_error(e), Some(ProtocolError::Body { .. }))),
        "{deleted:?}"
    );
    let u = spec.work_unit("u").await.map(|u| u.name().to_owned());
    assert!(matches!(u, Err(Error::NoSuchWorkUnit { .. })), "{u:?}");

    ns.work_spec("s").await.unwrap();
    let destroyed = ns.destroy_work_spec("s").await;
    assert!(matches!(destroyed, Err(Error::Backend(_))), "{destroyed:?}");
    let s = ns.work_spec("s").await.map(|s| s.name().to_owned());
    assert!(matches!(s, Err(Error::NoSuchWorkSpec { .. })), "{s:?}");
}

/// A hand-out's filters are as long as a caller likes, as in process,
/// though a server bounds request bodies: entries no spec can pass are
/// left out, and a filter still too long is narrowed to the namespace's
/// specs; a filter nothing can pass hands out nothing.
#[tokio::test]
async fn a_hand_out_filters_any_length_as_in_process() {
    let served = with_units(&["u"]).await;
    let ns = served.namespace("n").await.unwrap();
    let go = ns
        .set_work_spec(coordinate::data!({"name": "go", "runtime": "go"}))
        .await
        .unwrap();
    for unit in ["g1", "g2", "g3"] {
        go.add_work_unit(unit, Default::default(), Default::default())
            .await
            .unwrap();
    }
    let options = coordinated::ServerOptions {
        max_body_bytes: 3 << 19,
        ..Default::default()
    };
    let app = coordinated::router(Arc::new(served.clone()), &options);
    let (worker, _stop) = worker_w_of(app).await;
    let many =
        |n: usize, len: usize| -> Vec<String> { (0..n).map(|i| format!("{i:0len$}")).collect() };
    let request = |work_specs: Vec<String>, runtimes: Vec<String>| AttemptRequest {
        work_specs,
        runtimes,
        ..AttemptRequest::default()
    };
    let handed = |got: Vec<coordinate::AttemptRef>| -> Vec<String> {
        got.iter()
            .map(|a| a.work_unit().name().to_owned())
            .collect()
    };
    let names = [vec!["s".to_owned(), "x".repeat(4 << 20)], {
        let mut long = many(3_000, 1_000);
        long.push("s".to_owned());
        long
    }];
    for work_specs in names {
        let got = worker.request_attempts(&request(work_specs, vec![])).await;
        assert_eq!(handed(got.unwrap()), ["u"]);
        served
            .work_unit_at("n", "s", "u")
            .await
            .unwrap()
            .clear_active_attempt()
            .await
            .unwrap();
    }
    let runtimes = [vec!["go".to_owned(), "x".repeat(4 << 20)], {
        let mut long = many(3_000, 1_000);
        long.push("go".to_owned());
        long
    }];
    for (runtimes, unit) in runtimes.into_iter().zip(["g1", "g2"]) {
        let got = worker.request_attempts(&request(vec![], runtimes)).await;
        assert_eq!(handed(got.unwrap()), [unit]);
    }
    for nothing in [
        request(vec!["x".repeat(2_000)], vec![]),
        request(many(3_000, 1_000), vec![]),
        request(vec![], vec!["x".repeat(5 << 20)]),
        request(vec![], many(3_000, 1_000)),
    ] {
        let got = worker.request_attempts(&nothing).await;
        assert!(got.as_ref().is_ok_and(Vec::is_empty), "{got:?}");
    }
}

/// Worker "w" of namespace "n" through `RestBackend`, against `app`
/// served until the second value is dropped.
async fn worker_w_of(app: axum::Router) -> (coordinate::WorkerRef, oneshot::Sender<()>) {
    let (url, stop) = serve(app).await;
    let rest = RestBackend::connect(url).await.unwrap();
    (rest.worker_at("n", "w").await.unwrap(), stop)
}

/// A lookup answered with the document of another name (a gateway's page
/// that happens to be JSON, a server answering for the wrong object) is a
/// protocol error, through the cache too, which keeps nothing from it.
#[tokio::test]
async fn a_lookup_answered_for_another_name_is_refused() {
    let served = with_unit().await;
    let ns = served.namespace("n").await.unwrap();
    ns.worker("w").await.unwrap();
    let s2 = ns
        .set_work_spec(coordinate::data!({"name": "s2"}))
        .await
        .unwrap();
    s2.add_work_unit("u", Default::default(), Default::default())
        .await
        .unwrap();
    let app = router_over(&served).layer(axum::middleware::from_fn(
        |request: axum::extract::Request, next: axum::middleware::Next| async move {
            let path = request.uri().path().to_owned();
            let response = next.run(request).await;
            support::plain::edit_json(response, |json| {
                let renamed = [
                    "/namespace/renamed",
                    "/worker/w",
                    "/work_spec/s",
                    "/work_spec/s2/work_unit/u",
                ];
                if renamed.iter().any(|end| path.ends_with(end)) {
                    json["name"] = "other".into();
                }
            })
            .await
        },
    ));
    let (url, _stop) = serve(app).await;
    let rest: Arc<dyn Backend> = Arc::new(RestBackend::connect(&url).await.unwrap());
    let cached: Arc<dyn Backend> = Arc::new(coordinate::cache::Cache::new(
        RestBackend::connect(&url).await.unwrap(),
    ));
    let refused = |what: &str, got: Result<String, Error>| {
        let is_body = matches!(&got, Err(e)
            if matches!(protocol_error(e), Some(ProtocolError::Body { .. })));
        assert!(is_body, "{what}: {got:?}");
    };
    for backend in [rest, cached] {
        let renamed = backend.namespace("renamed").await;
        refused("namespace", renamed.map(|n| n.name().to_owned()));
        let ns = backend.namespace("n").await.unwrap();
        refused("worker", ns.worker("w").await.map(|w| w.name().to_owned()));
        refused("spec", ns.work_spec("s").await.map(|s| s.name().to_owned()));
        let s2 = ns.work_spec("s2").await.unwrap();
        refused("unit", s2.work_unit("u").await.map(|u| u.name().to_owned()));
    }
}

/// A hand-out whose attempt's unit the server no longer finds, when the
/// client follows the attempts' links, hands back the others and gives
/// that one back: it is left held by nobody.
#[tokio::test]
async fn a_handed_out_attempt_whose_unit_cannot_be_found_is_given_back() {
    use axum::response::IntoResponse;
    let served = with_units(&["u1", "u2"]).await;
    let app = support::plain::without_attempt_names(router_over(&served)).layer(
        axum::middleware::from_fn(
            |request: axum::extract::Request, next: axum::middleware::Next| async move {
                if request.method() == axum::http::Method::GET
                    && request.uri().path().ends_with("/work_unit/u2")
                {
                    let gone = r#"{"error": "ErrNoSuchWorkUnit", "message": "no", "value": "u2"}"#;
                    let json = [(axum::http::header::CONTENT_TYPE, "application/json")];
                    return (axum::http::StatusCode::NOT_FOUND, json, gone).into_response();
                }
                next.run(request).await
            },
        ),
    );
    let (worker, _stop) = worker_w_of(app).await;
    let got = worker
        .request_attempts(&coordinate::AttemptRequest::units(2))
        .await
        .unwrap();
    let names: Vec<_> = got
        .iter()
        .map(|a| a.work_unit().name().to_owned())
        .collect();
    assert_eq!(names, ["u1"]);
    let spec = served.work_spec_at("n", "s").await.unwrap();
    let u2 = spec.work_unit("u2").await.unwrap().status().await.unwrap();
    assert_eq!(u2, WorkUnitStatus::Available, "u2 given back");
    let u1 = spec.work_unit("u1").await.unwrap().status().await.unwrap();
    assert_eq!(u1, WorkUnitStatus::Pending, "u1 handed back");
}

/// A hand-out listing one attempt twice is one attempt: the client hands
/// it back once and does not expire it as an extra.
#[tokio::test]
async fn an_attempt_listed_twice_is_handed_back_once_and_kept() {
    let served = with_units(&["u"]).await;
    let app = support::plain::edit_answers_at(router_over(&served), "/request_attempts", |json| {
        if let Some(list) = json["attempts"].as_array_mut() {
            let again = list.clone();
            list.extend(again);
        }
    });
    let (worker, _stop) = worker_w_of(app).await;
    for asked in [1, 2] {
        let got = worker
            .request_attempts(&coordinate::AttemptRequest::units(asked))
            .await
            .unwrap();
        assert_eq!(got.len(), 1, "asked for {asked}");
        coordinate::detached::settled().await;
        assert_eq!(
            got[0].status().await.unwrap(),
            coordinate::AttemptStatus::Pending,
            "asked for {asked}"
        );
        got[0].expire(None).await.unwrap();
    }
}

/// Links spelled as absolute URLs of the server get the base URL's
/// credentials too: every request reaches a server that refuses requests
/// without them.
#[tokio::test]
async fn absolute_links_to_the_server_carry_the_credentials() {
    let served = with_units(&["u"]).await;
    let app = router_over(&served).layer(axum::middleware::from_fn(
        |request: axum::extract::Request, next: axum::middleware::Next| async move {
            use axum::response::IntoResponse;
            let authorization = request.headers().get(axum::http::header::AUTHORIZATION);
            // `user:secret`, base64.
            if authorization.and_then(|v| v.to_str().ok()) != Some("Basic dXNlcjpzZWNyZXQ=") {
                return axum::http::StatusCode::UNAUTHORIZED.into_response();
            }
            let host = request.headers()[axum::http::header::HOST]
                .to_str()
                .unwrap();
            let origin = format!("http://{host}");
            let response = next.run(request).await;
            support::plain::edit_json(response, |doc| absolute_links(doc, &origin)).await
        },
    ));
    let (url, _stop) = serve(app).await;
    let rest = RestBackend::connect(url.replacen("http://", "http://user:secret@", 1))
        .await
        .unwrap();
    let spec = rest.namespace("n").await.unwrap().work_spec("s").await;
    let unit = spec.unwrap().work_unit("u").await.unwrap();
    assert_eq!(unit.status().await.unwrap(), WorkUnitStatus::Available);
}

/// Every link in `doc` made an absolute URL of `origin`.
fn absolute_links(doc: &mut serde_json::Value, origin: &str) {
    support::plain::edit_links(doc, &|link| *link = format!("{origin}{link}"));
}

/// A hand-out whose call is dropped after the server made its attempts,
/// while the client still reads what it needs for their handles (a
/// timeout around the call, say), leaves no attempt pending either.
#[tokio::test]
async fn a_hand_out_cancelled_while_its_handles_are_made_is_released() {
    let served = with_units(&["u1", "u2"]).await;
    let (expired, recorded) = expires();
    let app = support::plain::without_attempt_names(router_over(&served));
    // The spec's read, which the handles need, takes longer than the call
    // may.
    let app = recorded(app.layer(axum::middleware::from_fn(
        |request: axum::extract::Request, next: axum::middleware::Next| async move {
            if request.method() == axum::http::Method::GET
                && request.uri().path().ends_with("/work_spec/s")
            {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            next.run(request).await
        },
    )));
    let (url, _stop) = serve(app).await;
    let rest = RestBackend::connect(url).await.unwrap();
    let worker = rest.worker_at("n", "w").await.unwrap();
    let two = AttemptRequest::units(2);
    let request = worker.request_attempts(&two);
    let cancelled = tokio::time::timeout(Duration::from_millis(300), request).await;
    assert!(cancelled.is_err(), "the call ended before its timeout");

    let spec = served.work_spec_at("n", "s").await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        while expired.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("both attempts are released");
    let counts = spec.count_work_unit_status().await.unwrap();
    assert_eq!(
        counts.get(&WorkUnitStatus::Available),
        Some(&2),
        "{counts:?}"
    );
}

/// A hand-out or `make_attempt` whose caller stops waiting before the
/// call's task has started asks the server for nothing: no attempt is made
/// for nobody, so no try of the unit is spent (with `max_retries`, three
/// such calls would otherwise fail it, never handed to anyone).
#[tokio::test]
async fn a_hand_out_given_up_before_it_started_asks_for_nothing() {
    use futures::FutureExt;
    let (url, _stop) = server().await;
    let rest = RestBackend::connect(url).await.unwrap();
    let ns = rest.namespace("n").await.unwrap();
    let spec = ns
        .set_work_spec(data!({"name": "s", "max_retries": 2}))
        .await
        .unwrap();
    let unit = spec
        .add_work_unit("u", data!({}), WorkUnitMeta::default())
        .await
        .unwrap();
    let worker = ns.worker("w").await.unwrap();
    for _ in 0..3 {
        let once = worker
            .request_attempts(&AttemptRequest::units(1))
            .now_or_never();
        assert!(once.is_none(), "answered without a request");
        let once = worker
            .make_attempt(&unit, Default::default())
            .now_or_never();
        assert!(once.is_none(), "answered without a request");
        coordinate::detached::settled().await;
    }
    assert!(unit.attempts().await.unwrap().is_empty());
    let handed = worker
        .request_attempts(&AttemptRequest::units(1))
        .await
        .unwrap();
    assert_eq!(handed.len(), 1);
}

/// `made` failed with the server's 503, after releasing the one attempt
/// the server made: unit `u` of spec `s` in namespace `ns` is available.
async fn assert_one_attempt_released(
    made: coordinate::Result<coordinate::AttemptRef>,
    expired: &AtomicU64,
    served: &MemoryBackend,
    ns: &str,
) {
    assert!(
        matches!(&made, Err(Error::Backend(e)) if e.to_string().contains("503")),
        "{:?}",
        made.as_ref().err()
    );
    assert_eq!(expired.load(Ordering::SeqCst), 1);
    let spec = served.work_spec_at(ns, "s").await.unwrap();
    let status = spec.work_unit("u").await.unwrap().status().await.unwrap();
    assert_eq!(status, WorkUnitStatus::Available);
}

/// `Cache` over the client releases an attempt it made but cannot hand
/// back: here the unit is of another namespace, whose handle the cache
/// makes from the namespace list, which the server fails to answer.
#[tokio::test]
async fn a_cached_worker_releases_an_attempt_whose_handle_cannot_be_made() {
    use axum::response::IntoResponse;
    let served = MemoryBackend::new();
    served
        .namespace("m")
        .await
        .unwrap()
        .set_work_spec(data!({"name": "s"}))
        .await
        .unwrap()
        .add_work_unit("u", data!({}), WorkUnitMeta::default())
        .await
        .unwrap();
    let (expired, recorded) = expires();
    let app = recorded(router_over(&served).layer(axum::middleware::from_fn(
        |request: axum::extract::Request, next: axum::middleware::Next| async move {
            if request.method() == axum::http::Method::GET && request.uri().path() == "/namespace" {
                return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
            next.run(request).await
        },
    )));
    let (url, _stop) = serve(app).await;
    let rest = RestBackend::connect(url).await.unwrap();
    let unit = rest
        .work_spec_at("m", "s")
        .await
        .unwrap()
        .work_unit("u")
        .await;
    let cached = coordinate::cache::Cache::new(rest);
    let worker = cached.worker_at("n", "w").await.unwrap();

    let made = worker
        .make_attempt(&unit.unwrap(), coordinate::Duration::minutes(1))
        .await;
    assert_one_attempt_released(made, &expired, &served, "m").await;
}

/// A lookup answered after the same name was cached from an upsert leaves
/// that entry in place: the handle the upsert gave is the one the cache
/// answers, so what is deleted through it is gone for every lookup.
#[tokio::test]
async fn a_lookup_answered_after_an_upsert_keeps_the_upserts_entry() {
    let slow = SlowLookups::start().await;
    let ns = slow.cached.namespace("n").await.unwrap();

    let lookup = slow.spec_read_in_flight(&ns).await;
    let upserted = ns.set_work_spec(data!({"name": "s"})).await.unwrap();
    lookup.await.unwrap().unwrap();

    // The unit, cached under the spec the cache answers...
    ns.work_spec("s")
        .await
        .unwrap()
        .work_unit("u")
        .await
        .unwrap();
    // ...is gone for it once deleted through the upsert's handle.
    let deleted = upserted
        .delete_work_units(&WorkUnitQuery::names(["u"]))
        .await;
    assert_eq!(deleted.unwrap(), 1);
    let after = ns.work_spec("s").await.unwrap().work_unit("u").await;
    assert!(
        matches!(after, Err(Error::NoSuchWorkUnit { .. })),
        "{after:?}"
    );
}

/// The server reads an attempt's document in one backend call: for a `GET`
/// of the attempt, and for each attempt a hand-out answers.
#[tokio::test]
async fn an_attempt_document_is_one_backend_read_on_the_server() {
    use coordinate::instrumented::{Instrumented, Op};
    let counted = Instrumented::new(MemoryBackend::new());
    let backend: Arc<dyn Backend> = Arc::new(counted.clone());
    let app = coordinated::router(backend, &coordinated::ServerOptions::default());
    let (url, _stop) = serve(app).await;
    let rest = RestBackend::connect(url).await.unwrap();
    let ns = rest.namespace("n").await.unwrap();
    let spec = ns.set_work_spec(data!({"name": "s"})).await.unwrap();
    for unit in ["a", "b", "c"] {
        spec.add_work_unit(unit, data!({}), WorkUnitMeta::default())
            .await
            .unwrap();
    }
    let worker = ns.worker("w").await.unwrap();
    counted.reset();
    let handed_out = worker
        .request_attempts(&coordinate::AttemptRequest::units(3))
        .await
        .unwrap();
    assert_eq!(handed_out.len(), 3);
    handed_out[0].status().await.unwrap();
    let calls = counted.calls();
    assert_eq!(calls.get(Op::AttemptSnapshot), 4);
    // (Finding the attempt a URL names reads its unit's attempts' start
    // times: that is path resolution, not the document.)
    for field in [
        Op::AttemptStatus,
        Op::AttemptData,
        Op::AttemptEndTime,
        Op::AttemptExpirationTime,
    ] {
        assert_eq!(calls.get(field), 0, "{field:?}");
    }
}

#[tokio::test]
async fn a_hand_out_is_read_whole_past_the_response_limit() {
    let (url, _stop) = server().await;
    let limit = 64 << 10;
    let rest = RestBackend::builder(url)
        .max_response_bytes(limit)
        .connect()
        .await
        .unwrap();
    let spec = rest
        .namespace("big")
        .await
        .unwrap()
        .set_work_spec(data!({"name": "s"}))
        .await
        .unwrap();
    let data = data!({"pad": "x".repeat(limit)});
    for name in ["a", "b", "c"] {
        spec.add_work_unit(name, data.clone(), WorkUnitMeta::default())
            .await
            .unwrap();
    }
    let worker = rest
        .namespace("big")
        .await
        .unwrap()
        .worker("w")
        .await
        .unwrap();
    // Three attempts of more than the limit each: made, so read whole.
    let got = worker
        .request_attempts(&AttemptRequest::units(3))
        .await
        .unwrap();
    assert_eq!(got.len(), 3);
    // Other answers keep the limit.
    let err = got[0].data().await.unwrap_err();
    assert!(is_too_large(&err), "{err:?}");
    // So does an attempt made by name.
    let unit = spec
        .add_work_unit("d", data.clone(), WorkUnitMeta::default())
        .await
        .unwrap();
    let made = worker
        .make_attempt(&unit, coordinate::Duration::minutes(1))
        .await;
    assert!(made.is_ok(), "{:?}", made.err());
    // Never past sixteen times the limit, however many units are asked for.
    for i in 0..16 {
        spec.add_work_unit(&format!("e{i}"), data.clone(), WorkUnitMeta::default())
            .await
            .unwrap();
    }
    let err = worker
        .request_attempts(&AttemptRequest::units(16))
        .await
        .unwrap_err();
    assert!(is_too_large(&err), "{err:?}");
}

#[tokio::test]
async fn an_attempt_document_besides_its_data_is_at_most_128_kib() {
    // Every name as long as allowed and as long as possible once escaped:
    // control characters, six bytes each in JSON and base64 in URLs.
    let longest = "\u{1}".repeat(MAX_NAME_BYTES);
    let (url, _stop) = server().await;
    let url = url.trim_end_matches('/');
    let spec = format!(
        "{url}/namespace/{}/work_spec",
        names::encode_segment(&longest)
    );
    let http = reqwest::Client::new();
    let made = http
        .post(&spec)
        .header("content-type", "application/json")
        .body(json!({"data": {"name": longest}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let spec = format!("{spec}/{}", names::encode_segment(&longest));
    let made = http
        .post(format!("{spec}/work_unit"))
        .header("content-type", "application/json")
        .body(json!({"name": longest, "data": {}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let worker = format!(
        "{url}/namespace/{}/worker/{}",
        names::encode_segment(&longest),
        names::encode_segment(&longest)
    );
    let answer = http
        .post(format!("{worker}/request_attempts"))
        .header("content-type", "application/json")
        .body(json!({"number_of_work_units": 1}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body = answer.bytes().await.unwrap();
    let attempts: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(attempts["attempts"].as_array().map(Vec::len), Some(1));
    assert!(body.len() < 128 << 10, "{} bytes", body.len());
}

/// A hand-out given up while the server is still making it reads the
/// answer anyway and gives the attempts back: the unit is not held for a
/// whole lease by an attempt nobody got.
#[tokio::test]
async fn a_hand_out_given_up_in_flight_gives_its_attempts_back() {
    let memory = support::memory_with_units(&["u"]).await;
    let unit = memory.work_unit_at("n", "s", "u").await.unwrap();
    let slow = Duration::from_millis(300);
    let backend = Instrumented::with_latency(memory.clone(), slow, |op| {
        matches!(op, Op::RequestAttempts | Op::MakeAttempt)
    });
    let app = coordinated::router(Arc::new(backend), &Default::default());
    let (url, _stop) = serve(app).await;
    let rest = RestBackend::connect(url).await.unwrap();
    let worker = rest.worker_at("n", "w").await.unwrap();
    let rest_unit = rest.work_unit_at("n", "s", "u").await.unwrap();
    for made in 1..=2 {
        let hand_out = async {
            if made == 1 {
                worker.request_attempts(&AttemptRequest::default()).await?;
            } else {
                worker
                    .make_attempt(&rest_unit, coordinate::Duration::seconds(600))
                    .await?;
            }
            Ok::<_, Error>(())
        };
        let given_up = tokio::time::timeout(slow / 3, hand_out).await;
        assert!(given_up.is_err(), "the hand-out was answered");
        // Made, then expired.
        let given_back = async {
            while unit.num_attempts().await.unwrap() < made
                || unit.status().await.unwrap() != WorkUnitStatus::Available
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), given_back)
            .await
            .unwrap_or_else(|_| panic!("attempt {made} was not given back"));
    }
}

/// A request asks the server for no more attempts than the client keeps:
/// one handed out and then dropped would still count as a try of its unit
/// (and be expired by a request of its own).
#[tokio::test]
async fn a_request_asks_for_no_more_attempts_than_it_keeps() {
    let asked = Arc::new(std::sync::Mutex::new(Vec::<serde_json::Value>::new()));
    let expired = Arc::new(AtomicU64::new(0));
    let (asked_in, expired_in) = (asked.clone(), expired.clone());
    let app = memory_router().layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let (asked, expired) = (asked_in.clone(), expired_in.clone());
            async move {
                let (parts, body) = request.into_parts();
                let bytes = axum::body::to_bytes(body, usize::MAX)
                    .await
                    .unwrap_or_default();
                let path = parts.uri.path();
                if path.ends_with("/request_attempts") {
                    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                    asked
                        .lock()
                        .unwrap()
                        .push(body["number_of_work_units"].clone());
                } else if path.ends_with("/expire") {
                    expired.fetch_add(1, Ordering::SeqCst);
                }
                let body = axum::body::Body::from(bytes);
                next.run(axum::extract::Request::from_parts(parts, body))
                    .await
            }
        },
    ));
    let (url, _stop) = serve(app).await;
    let rest = RestBackend::connect(url).await.unwrap();
    let ns = rest.namespace("n").await.unwrap();
    let spec = ns.set_work_spec(data!({"name": "s"})).await.unwrap();
    spec.add_work_units(
        (0..1_200)
            .map(|i| coordinate::NewWorkUnit::new(format!("u{i:04}"), data!({})))
            .collect(),
    )
    .await
    .unwrap();
    let worker = ns.worker("w").await.unwrap();
    for wanted in [5_000, i64::MAX, 0, -3] {
        let got = worker
            .request_attempts(&AttemptRequest::units(wanted))
            .await
            .unwrap();
        assert_eq!(got.len(), if wanted > 0 { 1_000 } else { 1 }, "{wanted}");
        for attempt in got {
            attempt
                .retry(None, coordinate::Duration::zero())
                .await
                .unwrap();
        }
    }
    assert_eq!(
        *asked.lock().unwrap(),
        vec![json!(1_000), json!(1_000), json!(1), json!(1)]
    );
    assert_eq!(expired.load(Ordering::SeqCst), 0);
}

/// `set_meta` sends only what it sets: a meta read back carries the
/// spec's `runtime`, which the server ignores on input and which may be
/// longer than the server takes in a request.
#[tokio::test]
async fn set_meta_sends_only_what_it_sets() {
    let memory = MemoryBackend::new();
    let options = coordinated::ServerOptions {
        max_body_bytes: 4096,
        ..Default::default()
    };
    let (url, _stop) = serve(coordinated::router(Arc::new(memory.clone()), &options)).await;
    let runtime = "r".repeat(8192);
    memory
        .namespace("n")
        .await
        .unwrap()
        .set_work_spec(data!({"name": "s", "runtime": runtime.clone()}))
        .await
        .unwrap();
    let rest = RestBackend::connect(url).await.unwrap();
    let spec = rest.work_spec_at("n", "s").await.unwrap();
    let mut meta = spec.meta(false).await.unwrap();
    assert_eq!(meta.runtime, runtime);
    meta.priority = 7;
    spec.set_meta(meta).await.unwrap();
    assert_eq!(spec.meta(false).await.unwrap().priority, 7);
}

/// A server over `RestBackend` (a proxy of another server) tells apart two
/// attempts of one unit by one worker started in the same second: the
/// client's attempts carry the identifiers in their URLs.
#[tokio::test]
async fn a_server_over_the_client_tells_apart_attempts_of_one_second() {
    let served = MemoryBackend::with_clock(coordinate::MockClock::new());
    support::add_units(&served, &["u"]).await;
    let (upstream, _upstream_stop) = serve(router_over(&served)).await;
    let client: Arc<dyn Backend> = Arc::new(RestBackend::connect(upstream).await.unwrap());
    let proxy = coordinated::router(client, &coordinated::ServerOptions::default());
    let (proxy_url, _proxy_stop) = serve(proxy).await;
    let worker = RestBackend::connect(proxy_url)
        .await
        .unwrap()
        .worker_at("n", "w")
        .await
        .unwrap();
    let one = AttemptRequest::units(1);
    let ask = || worker.request_attempts(&one);
    let first = ask().await.unwrap().pop().unwrap();
    first.expire(None).await.unwrap();
    let second = ask().await.unwrap().pop().unwrap();
    second.finish(None).await.unwrap();
    assert_eq!(
        first.status().await.unwrap(),
        coordinate::AttemptStatus::Expired
    );
    let unit = served.work_unit_at("n", "s", "u").await.unwrap();
    assert_eq!(unit.status().await.unwrap(), WorkUnitStatus::Finished);
}

/// A hand-out or a made attempt answered with a success that is not JSON
/// by its media type (a proxy rewriting headers, say) is an error that
/// leaves no attempt pending: the attempts the body names are released.
#[tokio::test]
async fn attempts_of_an_answer_refused_for_its_media_type_are_released() {
    let served = with_units(&["u1", "u2"]).await;
    let (expired, recorded) = expires();
    let app = recorded(router_over(&served).layer(axum::middleware::from_fn(
        |request: axum::extract::Request, next: axum::middleware::Next| async move {
            let path = request.uri().path().to_owned();
            let mut response = next.run(request).await;
            if path.ends_with("/request_attempts") || path.ends_with("/make_attempt") {
                response.headers_mut().remove("content-type");
            }
            response
        },
    )));
    let (url, _stop) = serve(app).await;
    let rest = RestBackend::connect(url).await.unwrap();
    let worker = rest.worker_at("n", "w").await.unwrap();
    let handed = worker.request_attempts(&AttemptRequest::units(2)).await;
    assert!(
        matches!(&handed, Err(Error::Backend(e)) if e.to_string().contains("media type")),
        "{handed:?}"
    );
    assert_eq!(expired.load(Ordering::SeqCst), 2);
    let unit = rest.work_unit_at("n", "s", "u1").await.unwrap();
    let made = worker.make_attempt(&unit, Default::default()).await;
    assert!(made.is_err(), "{made:?}");
    assert_eq!(expired.load(Ordering::SeqCst), 3);
    let counts = unit_counts(&served).await;
    assert_eq!(counts.get(&WorkUnitStatus::Pending), None, "{counts:?}");
}

/// Whether `err` says an answer was about another object than the one
/// asked for.
fn names_another(err: &Error) -> bool {
    matches!(protocol_error(err), Some(ProtocolError::Body { reason, .. }) if reason.contains("names"))
}

/// A server whose documents at `suffix` name `other` once `lying` is set.
fn naming_another(
    memory: &MemoryBackend,
    suffix: &'static str,
    other: &'static str,
    lying: &Arc<AtomicBool>,
) -> axum::Router {
    let lying = Arc::clone(lying);
    support::plain::edit_answers_at(router_over(memory), suffix, move |doc| {
        let named = doc.get("name").is_some();
        if named && lying.load(Ordering::Acquire) {
            doc["name"] = json!(other);
        }
    })
}

/// A read of an object, or an object made, whose answer names another
/// object is refused rather than read as the object asked for.
#[tokio::test]
async fn an_answer_about_another_object_is_refused() {
    let memory = with_units(&["u1", "u2"]).await;
    memory.worker_at("n", "w").await.unwrap();
    let lying = Arc::new(AtomicBool::new(false));
    for (suffix, other) in [
        ("/work_unit/u1", "u2"),
        ("/work_spec/s", "t"),
        ("/worker/w", "v"),
    ] {
        let (url, _stop) = serve(naming_another(&memory, suffix, other, &lying)).await;
        let rest = RestBackend::connect(url).await.unwrap();
        lying.store(false, Ordering::Release);
        let ns = rest.namespace("n").await.unwrap();
        let spec = ns.work_spec("s").await.unwrap();
        let unit = spec.work_unit("u1").await.unwrap();
        let worker = ns.worker("w").await.unwrap();
        lying.store(true, Ordering::Release);
        let err = match suffix {
            "/work_unit/u1" => unit.data().await.map(drop).unwrap_err(),
            "/work_spec/s" => spec.data().await.map(drop).unwrap_err(),
            _ => worker.data().await.map(drop).unwrap_err(),
        };
        assert!(names_another(&err), "{suffix}: {err:?}");
    }

    // What a creation answers must be what was sent.
    for (suffix, other) in [("/work_unit", "u2"), ("/work_spec", "t")] {
        let (url, _stop) = serve(naming_another(&memory, suffix, other, &lying)).await;
        let ns = RestBackend::connect(url)
            .await
            .unwrap()
            .namespace("n")
            .await;
        let ns = ns.unwrap();
        let err = match suffix {
            "/work_unit" => {
                let spec = ns.work_spec("s").await.unwrap();
                let meta = WorkUnitMeta::default();
                spec.add_work_unit("u3", data!({}), meta).await.map(drop)
            }
            _ => ns.set_work_spec(data!({"name": "s"})).await.map(drop),
        };
        let err = err.unwrap_err();
        assert!(names_another(&err), "{suffix}: {err:?}");
    }
}

/// A page is never longer than its limit, even from a server that answers
/// more.
#[tokio::test]
async fn a_page_longer_than_its_limit_is_cut_to_it() {
    let memory = with_units(&["u1", "u2", "u3"]).await;
    let app = support::plain::edit_answers_at(router_over(&memory), "/work_unit", |list| {
        // Each unit listed, and as many more after them.
        if let Some(units) = list["work_units"].as_array_mut() {
            let more: Vec<_> = units
                .iter()
                .map(|unit| json!({"name": format!("v{}", unit["name"].as_str().unwrap_or("")), "url": unit["url"]}))
                .collect();
            units.extend(more);
        }
    });
    let (url, _stop) = serve(app).await;
    let spec = RestBackend::connect(url)
        .await
        .unwrap()
        .work_spec_at("n", "s")
        .await;
    let query = WorkUnitQuery {
        limit: 2,
        ..WorkUnitQuery::all()
    };
    let page = spec.unwrap().work_units(&query).await.unwrap();
    assert_eq!(page.into_keys().collect::<Vec<_>>(), ["u1", "u2"]);
}

/// An attempt answered for another unit than the one asked is refused
/// rather than handed back as the attempt asked for.
#[tokio::test]
async fn an_attempt_made_on_another_unit_is_refused() {
    let memory = with_units(&["u1", "u2"]).await;
    let app = support::plain::edit_answers_at(router_over(&memory), "/make_attempt", |doc| {
        support::plain::edit_links(doc, &|link| *link = link.replace("/u1", "/u2"));
        doc["work_unit_name"] = json!("u2");
    });
    let (url, _stop) = serve(app).await;
    let rest = RestBackend::connect(url).await.unwrap();
    let unit = rest.work_unit_at("n", "s", "u1").await.unwrap();
    let worker = rest.worker_at("n", "w").await.unwrap();
    let lease = coordinate::Duration::minutes(5);
    let err = worker
        .make_attempt(&unit, lease)
        .await
        .map(drop)
        .unwrap_err();
    assert!(names_another(&err), "{err:?}");
}

/// An attempt whose links are to another unit than its names say is
/// refused: a handle made from it would carry one unit's name and act on
/// the other. (Its release follows its own `expire` link, as any; here
/// that is to the other unit, so the unit asked for waits out its lease.)
#[tokio::test]
async fn an_attempt_whose_links_and_names_disagree_is_refused() {
    let memory = with_units(&["u1", "u2"]).await;
    let spec = memory.work_spec_at("n", "s").await.unwrap();
    for suffix in ["/make_attempt", "/request_attempts"] {
        let app = support::plain::edit_answers_at(router_over(&memory), suffix, |doc| {
            support::plain::edit_links(doc, &|link| *link = link.replace("/u1", "/u2"));
        });
        let (url, _stop) = serve(app).await;
        let rest = RestBackend::connect(url).await.unwrap();
        let worker = rest.worker_at("n", "w").await.unwrap();
        let made = match suffix {
            "/make_attempt" => {
                let unit = rest.work_unit_at("n", "s", "u1").await.unwrap();
                let lease = coordinate::Duration::minutes(5);
                worker.make_attempt(&unit, lease).await.map(drop)
            }
            _ => worker
                .request_attempts(&AttemptRequest::units(1))
                .await
                .map(drop),
        };
        let err = made.unwrap_err();
        assert!(
            matches!(protocol_error(&err), Some(ProtocolError::Body { reason, .. }) if reason.contains("links to unit \"u2\"")),
            "{suffix}: {err:?}"
        );
        // Given back here, for the next round.
        let u1 = spec.work_unit("u1").await.unwrap();
        let held = u1.active_attempt().await.unwrap();
        held.expect("u1 leased").expire(None).await.unwrap();
    }
}

/// A change answered `2xx` is done, whatever the body with it: a server
/// that says `200 OK` in plain text has still finished the attempt, and one
/// whose body never ends has still renewed it, though the client's timeout
/// passes while that body is awaited.
#[tokio::test]
async fn a_change_answered_with_any_success_body_is_done() {
    let memory = with_units(&["u1", "u2"]).await;
    let app = router_over(&memory).layer(axum::middleware::from_fn(
        |request: axum::extract::Request, next: axum::middleware::Next| async move {
            let path = request.uri().path().to_owned();
            let response = next.run(request).await;
            if !response.status().is_success() {
                return response;
            }
            let plain = [(axum::http::header::CONTENT_TYPE, "text/plain")];
            let body = if path.ends_with("/finish") {
                axum::body::Body::from("OK")
            } else if path.ends_with("/renew") {
                let first = futures::stream::iter([Ok::<_, std::io::Error>(
                    axum::body::Bytes::from_static(b"O"),
                )]);
                let endless = futures::StreamExt::chain(first, futures::stream::pending());
                axum::body::Body::from_stream(endless)
            } else {
                return response;
            };
            axum::response::IntoResponse::into_response((plain, body))
        },
    ));
    let (url, _stop) = serve(app).await;
    let rest = RestBackend::builder(url)
        .timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap();
    let worker = rest.worker_at("n", "w").await.unwrap();
    let attempts = worker
        .request_attempts(&AttemptRequest::units(2))
        .await
        .unwrap();
    attempts[0].finish(None).await.unwrap();
    let unit = memory.work_unit_at("n", "s", "u1").await.unwrap();
    assert_eq!(unit.status().await.unwrap(), WorkUnitStatus::Finished);
    let renewed = coordinate::Duration::minutes(30);
    attempts[1].renew(renewed, None).await.unwrap();
    let held = memory.work_unit_at("n", "s", "u2").await.unwrap();
    let attempt = held.active_attempt().await.unwrap().expect("held");
    let left = attempt.expiration_time().await.unwrap() - attempt.start_time().await.unwrap();
    assert!(left.num_minutes() >= 30, "{left:?}");
}

/// A server's answer with a lone surrogate escape (valid JSON that no Rust
/// string holds, as a Python server may write) reads as U+FFFD, as on the
/// way in; so does one in an error document, whose code still counts.
#[tokio::test]
async fn lone_surrogate_escapes_in_answers_read_as_the_replacement_character() {
    let memory = with_units(&["u"]).await;
    let app = router_over(&memory).layer(axum::middleware::from_fn(
        |request: axum::extract::Request, next: axum::middleware::Next| async move {
            let response = next.run(request).await;
            let (parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            let text = String::from_utf8(bytes.to_vec())
                .unwrap()
                .replace(
                    r#"{"name":"u","url""#,
                    r#"{"name":"u","data":{"k":"\ud800"},"url""#,
                )
                .replace(r#""message":""#, r#""message":"\udc00 "#);
            axum::response::Response::from_parts(parts, axum::body::Body::from(text))
        },
    ));
    let (url, _stop) = serve(app).await;
    let rest = RestBackend::connect(url).await.unwrap();
    let unit = rest.work_unit_at("n", "s", "u").await.unwrap();
    assert_eq!(unit.data().await.unwrap(), data!({"k": "\u{fffd}"}));
    let attempt = rest
        .worker_at("n", "w")
        .await
        .unwrap()
        .make_attempt(&unit, Default::default())
        .await
        .unwrap();
    attempt.finish(None).await.unwrap();
    assert_eq!(attempt.finish(None).await, Err(Error::NotPending));
}

/// An attempt whose names extension links its unit's spec in another
/// namespace than the unit's own link is refused: the spec handle made from
/// it would act on that other spec of the same name.
#[tokio::test]
async fn an_attempt_whose_spec_link_is_not_its_units_spec_is_refused() {
    let memory = with_units(&["u"]).await;
    let other = memory.namespace("other").await.unwrap();
    other.set_work_spec(data!({"name": "s"})).await.unwrap();
    let app = support::plain::edit_answers_at(router_over(&memory), "/request_attempts", |doc| {
        for attempt in doc["attempts"].as_array_mut().into_iter().flatten() {
            attempt["work_spec_url"] = json!("/namespace/other/work_spec/s");
        }
    });
    let (url, _stop) = serve(app).await;
    let worker = RestBackend::connect(url)
        .await
        .unwrap()
        .worker_at("n", "w")
        .await
        .unwrap();
    let err = worker
        .request_attempts(&AttemptRequest::units(1))
        .await
        .map(drop)
        .unwrap_err();
    assert!(
        matches!(protocol_error(&err), Some(ProtocolError::Body { reason, .. }) if reason.contains("another spec")),
        "{err:?}"
    );
    // Released through its (true) expire link.
    let unit = memory.work_unit_at("n", "s", "u").await.unwrap();
    assert_eq!(unit.status().await.unwrap(), WorkUnitStatus::Available);
}
