//! Work unit scenarios, plus upsert, meta, query and request details.

use std::collections::BTreeMap;

use super::{at_secs, names, Dead, Run, TestBackend, SEVEN};
use crate::data;
use crate::error::Error;
use crate::model::{
    AttemptRequest, AttemptStatus, DataMap, Duration, SummaryRecord, WorkUnitMeta, WorkUnitQuery,
    WorkUnitStatus,
};

use WorkUnitStatus::{Available, Delayed, Failed, Finished, Pending};

/// **TrivialWorkUnitFlow.** One unit: listed, named, deleted by an empty
/// query, then absent.
pub async fn trivial_work_unit_flow(t: TestBackend) {
    let r = Run::new("trivial_work_unit_flow", t);
    let ns = r.ns("trivial_work_unit_flow").await;
    let spec = r.named_spec(&ns, "spec").await;
    r.unit(&spec, "unit", DataMap::new()).await;
    let all = r.ok(spec.work_units(&WorkUnitQuery::all()).await, "work_units");
    check_eq!(r, all.len(), 1, "one unit listed");
    let unit = &all["unit"];
    check_eq!(r, unit.name(), "unit", "unit name");
    check_eq!(r, unit.work_spec().name(), "spec", "unit's spec name");
    let deleted = r.ok(
        spec.delete_work_units(&WorkUnitQuery::all()).await,
        "delete all",
    );
    check_eq!(r, deleted, 1, "deleted count");
    r.fails(
        spec.work_unit("unit").await,
        Error::NoSuchWorkUnit {
            name: "unit".into(),
        },
        "lookup after delete",
    );
    let all = r.ok(
        spec.work_units(&WorkUnitQuery::all()).await,
        "work_units after delete",
    );
    check!(r, all.is_empty(), "units remain: {:?}", all.keys());
}

/// **WorkUnitQueries.** Limits, paging, status and name filters on the
/// seven-state fixture.
pub async fn work_unit_queries(t: TestBackend) {
    let r = Run::new("work_unit_queries", t);
    let ns = r.ns("work_unit_queries").await;
    let seven = r.seven(&ns, "spec").await;
    let spec = &seven.spec;
    let query = |q: WorkUnitQuery, step: String| {
        let spec = spec.clone();
        let r = &r;
        async move {
            r.ok(spec.work_units(&q).await, &step)
                .into_keys()
                .collect::<std::collections::BTreeSet<_>>()
        }
    };
    check_eq!(
        r,
        query(WorkUnitQuery::all(), "all".into()).await,
        names(SEVEN),
        "empty query"
    );
    let limit = |limit: i64, previous: &str| WorkUnitQuery {
        limit,
        previous_name: previous.into(),
        ..Default::default()
    };
    check_eq!(
        r,
        query(limit(4, ""), "limit 4".into()).await,
        names(SEVEN[..4].iter().copied()),
        "limit 4"
    );
    check_eq!(
        r,
        query(limit(4, SEVEN[3]), "limit 4 after 4th".into()).await,
        names(SEVEN[4..].iter().copied()),
        "second page"
    );
    check_eq!(
        r,
        query(limit(4, SEVEN[6]), "after last".into()).await,
        names([]),
        "page after the last name"
    );
    check_eq!(
        r,
        query(limit(0, "expired"), "previous_name only".into()).await,
        names(["failed", "finished", "pending", "retried"]),
        "previous_name without limit"
    );
    let by_status = [
        (vec![Available], names(["available", "expired", "retried"])),
        (vec![Pending], names(["pending"])),
        (vec![Finished], names(["finished"])),
        (vec![Failed], names(["failed"])),
        (vec![Delayed], names(["delayed"])),
        (vec![Finished, Failed], names(["finished", "failed"])),
        (vec![Pending, WorkUnitStatus::AnyStatus], names(SEVEN)),
    ];
    for (statuses, expected) in by_status {
        let step = format!("statuses {statuses:?}");
        let got = query(WorkUnitQuery::statuses(statuses), step.clone()).await;
        check_eq!(r, got, expected, "{step}");
    }
    check_eq!(
        r,
        query(
            WorkUnitQuery::names(["available", "nonexistent"]),
            "names".into()
        )
        .await,
        names(["available"]),
        "names filter with a missing name"
    );
    let both = WorkUnitQuery {
        names: vec!["available".into(), "pending".into(), "finished".into()],
        statuses: vec![Available, Finished],
        ..Default::default()
    };
    check_eq!(
        r,
        query(both, "names and statuses".into()).await,
        names(["available", "finished"]),
        "intersection of names and statuses"
    );
}

/// **DeleteWorkUnits.** Deleting by name, again (zero), by status, and all.
pub async fn delete_work_units(t: TestBackend) {
    let r = Run::new("delete_work_units", t);
    let ns = r.ns("delete_work_units").await;
    let seven = r.seven(&ns, "spec").await;
    let spec = &seven.spec;
    let by_name = WorkUnitQuery::names(["available"]);
    check_eq!(
        r,
        r.ok(spec.delete_work_units(&by_name).await, "delete one"),
        1,
        "count"
    );
    check_eq!(
        r,
        r.unit_names(spec, "after one").await,
        names(SEVEN[1..].iter().copied()),
        "units after deleting one"
    );
    check_eq!(
        r,
        r.ok(spec.delete_work_units(&by_name).await, "delete again"),
        0,
        "count again"
    );
    check_eq!(
        r,
        r.unit_names(spec, "after again").await.len(),
        6,
        "units after repeat"
    );
    let by_status = WorkUnitQuery::statuses([Failed, Finished]);
    check_eq!(
        r,
        r.ok(spec.delete_work_units(&by_status).await, "by status"),
        2,
        "count"
    );
    check_eq!(
        r,
        r.unit_names(spec, "after status delete").await,
        names(["delayed", "expired", "pending", "retried"]),
        "units after deleting by status"
    );
    check_eq!(
        r,
        r.ok(spec.delete_work_units(&WorkUnitQuery::all()).await, "all"),
        4,
        "count"
    );
    check!(
        r,
        r.unit_names(spec, "at end").await.is_empty(),
        "units left"
    );
}

/// **CountWorkUnitStatus.** Exact counts on the seven-state fixture, no
/// zero entries; an empty spec counts nothing.
pub async fn count_work_unit_status(t: TestBackend) {
    let r = Run::new("count_work_unit_status", t);
    let ns = r.ns("count_work_unit_status").await;
    let empty = r.named_spec(&ns, "empty").await;
    let counts = r.ok(empty.count_work_unit_status().await, "count empty spec");
    check!(r, counts.is_empty(), "empty spec counts {counts:?}");
    let seven = r.seven(&ns, "spec").await;
    let counts = r.ok(seven.spec.count_work_unit_status().await, "count");
    let expected: BTreeMap<WorkUnitStatus, u64> = [
        (Available, 3),
        (Pending, 1),
        (Finished, 1),
        (Failed, 1),
        (Delayed, 1),
    ]
    .into();
    check_eq!(r, counts, expected, "status counts");
    // Only the pending unit's attempt is still on the fixture worker's list.
    let pending = r.key(&seven.pending).await;
    let active = r.ok(
        seven.worker.active_attempts().await,
        "fixture worker's list",
    );
    check_eq!(
        r,
        r.keys(&active).await,
        vec![pending.clone()],
        "active list"
    );
    let all = r.ok(
        seven.worker.all_attempts().await,
        "fixture worker's attempts",
    );
    check_eq!(r, all.len(), 6, "one attempt per touched unit");
    check_eq!(
        r,
        r.active_key(&seven.units["pending"]).await,
        Some(pending),
        "pending unit"
    );
}

/// **WorkUnitOrder.** Equal-priority units added in reverse order drain
/// alphabetically.
pub async fn work_unit_order(t: TestBackend) {
    let r = Run::new("work_unit_order", t);
    let (_ns, spec, worker) = r.basic("work_unit_order", "spec").await;
    r.units(&spec, &["c", "b", "a"]).await;
    r.drain(&worker, &["a", "b", "c"], "drain").await;
}

/// **WorkUnitPriorityCtor.** Creation priorities are reported and decide
/// the order; ties break alphabetically.
pub async fn work_unit_priority_ctor(t: TestBackend) {
    let r = Run::new("work_unit_priority_ctor", t);
    let (_ns, spec, worker) = r.basic("work_unit_priority_ctor", "spec").await;
    for (name, p) in [("a", 0.0), ("b", 10.0), ("c", 10.0), ("d", -1.5)] {
        let u = r
            .unit_meta(&spec, name, DataMap::new(), WorkUnitMeta::with_priority(p))
            .await;
        check_eq!(
            r,
            r.ok(u.priority().await, "priority()"),
            p,
            "priority of {name}"
        );
    }
    r.drain(&worker, &["b", "c", "a", "d"], "drain").await;
}

/// **WorkUnitPrioritySet.** `set_priority`, `set_work_unit_priorities` and
/// (accumulating) `adjust_work_unit_priorities`, seen through fresh handles.
pub async fn work_unit_priority_set(t: TestBackend) {
    let r = Run::new("work_unit_priority_set", t);
    let (_ns, spec, worker) = r.basic("work_unit_priority_set", "spec").await;
    let units = r.units(&spec, &["a", "b", "c", "d"]).await;
    let priority = |name: &'static str| {
        let spec = spec.clone();
        let r = &r;
        async move {
            let fresh = r.ok(spec.work_unit(name).await, "lookup");
            r.ok(fresh.priority().await, format_args!("priority of {name}"))
        }
    };
    r.ok(units[0].set_priority(5.0).await, "set_priority(a)");
    check_eq!(r, priority("a").await, 5.0, "a after set_priority");
    check_eq!(
        r,
        r.ok(units[0].priority().await, "old handle"),
        5.0,
        "a via old handle"
    );
    r.ok(
        spec.set_work_unit_priorities(&WorkUnitQuery::names(["b", "c"]), 10.0)
            .await,
        "set_work_unit_priorities",
    );
    check_eq!(r, priority("b").await, 10.0, "b");
    check_eq!(r, priority("c").await, 10.0, "c");
    check_eq!(r, priority("d").await, 0.0, "d untouched");
    let c_only = WorkUnitQuery::names(["c"]);
    r.ok(
        spec.adjust_work_unit_priorities(&c_only, 2.5).await,
        "adjust c",
    );
    r.ok(
        spec.adjust_work_unit_priorities(&c_only, 2.5).await,
        "adjust c again",
    );
    check_eq!(r, priority("c").await, 15.0, "c accumulates");
    r.ok(
        spec.adjust_work_unit_priorities(&WorkUnitQuery::names(["d"]), -1.0)
            .await,
        "adjust d down",
    );
    check_eq!(r, priority("d").await, -1.0, "d");
    r.drain(&worker, &["c", "b", "a", "d"], "drain").await;
}

/// **WorkUnitData.** Two units each return exactly their own data.
pub async fn work_unit_data(t: TestBackend) {
    let r = Run::new("work_unit_data", t);
    let ns = r.ns("work_unit_data").await;
    let spec = r.named_spec(&ns, "spec").await;
    let a = data!({"name": "a", "value": 1});
    let b = data!({"name": "b", "value": 2});
    r.unit(&spec, "a", a.clone()).await;
    r.unit(&spec, "b", b.clone()).await;
    for (name, expected) in [("a", a), ("b", b)] {
        let unit = r.ok(spec.work_unit(name).await, format_args!("lookup {name}"));
        let got = r.ok(unit.data().await, format_args!("data of {name}"));
        check_eq!(r, got, expected, "data of {name}");
        check_eq!(
            r,
            got["value"].as_i64(),
            expected["value"].as_i64(),
            "value of {name}"
        );
    }
}

/// **AddWorkUnitBleedover.** Re-adding a unit in one spec never touches the
/// same-named unit of another spec.
pub async fn add_work_unit_bleedover(t: TestBackend) {
    let r = Run::new("add_work_unit_bleedover", t);
    let ns = r.ns("add_work_unit_bleedover").await;
    let one = r.named_spec(&ns, "one").await;
    let two = r.named_spec(&ns, "two").await;
    r.unit(&one, "u", data!({"spec": "one"})).await;
    let old = r.unit(&two, "u", data!({"spec": "two"})).await;
    let new = r.unit(&two, "u", data!({"spec": "two", "v": 2})).await;
    check_eq!(
        r,
        r.ok(old.data().await, "old"),
        data!({"spec": "two", "v": 2}),
        "old handle"
    );
    check_eq!(
        r,
        r.ok(new.data().await, "new"),
        data!({"spec": "two", "v": 2}),
        "new handle"
    );
    let first = r.ok(one.work_unit("u").await, "lookup in one");
    check_eq!(
        r,
        r.ok(first.data().await, "one's data"),
        data!({"spec": "one"}),
        "one intact"
    );
}

/// **RecreateWorkUnits.** Re-adding every unit of the seven-state fixture
/// succeeds; all become Available except the pending one.
pub async fn recreate_work_units(t: TestBackend) {
    let r = Run::new("recreate_work_units", t);
    let ns = r.ns("recreate_work_units").await;
    let seven = r.seven(&ns, "spec").await;
    for name in SEVEN {
        r.unit(&seven.spec, name, DataMap::new()).await;
    }
    for name in SEVEN {
        let unit = r.ok(seven.spec.work_unit(name).await, "lookup");
        let expected = if name == "pending" {
            Pending
        } else {
            Available
        };
        check_eq!(r, r.unit_status(&unit).await, expected, "status of {name}");
        let old = &seven.units[name];
        check_eq!(
            r,
            r.unit_status(old).await,
            expected,
            "status of {name} via old handle"
        );
    }
}

/// **Continuous.** In the empty-named namespace a continuous spec yields one
/// attempt per request; `continuous = false` stops it, `true` resumes.
pub async fn continuous(t: TestBackend) {
    let r = Run::new("continuous", t);
    let ns = r.ns("").await;
    let spec = r
        .spec(&ns, data!({"name": "spec", "continuous": true}))
        .await;
    let worker = r.worker(&ns, "worker").await;
    for round in 0..2 {
        r.advance_secs(5);
        let a = r
            .request_one(&worker, format_args!("request {round}"))
            .await;
        let Some(a) = a else {
            panic!("[continuous] request {round}: no continuous unit")
        };
        r.ok(a.finish(None).await, "finish");
    }
    let mut meta = r.ok(spec.meta(false).await, "meta");
    meta.continuous = false;
    r.ok(spec.set_meta(meta).await, "set_meta(continuous = false)");
    r.advance_secs(5);
    r.request_none(&worker, "request while not continuous")
        .await;
    let mut meta = r.ok(spec.meta(false).await, "meta");
    meta.continuous = true;
    r.ok(spec.set_meta(meta).await, "set_meta(continuous = true)");
    r.advance_secs(5);
    let a = r.request_one(&worker, "request after resuming").await;
    let Some(a) = a else {
        panic!("[continuous] no unit after resuming")
    };
    r.ok(a.finish(None).await, "finish");
    let units = r.unit_names(&spec, "units").await;
    check_eq!(
        r,
        units,
        names(["5.000", "10.000", "20.000"]),
        "generated unit names"
    );
}

/// **ContinuousInterval.** `next_continuous = t0 + I`; nothing before it;
/// one at it; after a long wait exactly one (no catch-up).
pub async fn continuous_interval(t: TestBackend) {
    let r = Run::new("continuous_interval", t);
    let ns = r.ns("continuous_interval").await;
    let spec = r
        .spec(
            &ns,
            data!({"name": "spec", "continuous": true, "interval": 60}),
        )
        .await;
    let worker = r.worker(&ns, "worker").await;
    r.advance_secs(100);
    let t0 = r.now();
    let got = r
        .request(&worker, AttemptRequest::units(5), "request at t0")
        .await;
    check_eq!(r, got.len(), 1, "attempts at t0");
    check_eq!(r, got[0].work_unit().name(), "100.000", "generated name");
    r.ok(got[0].finish(None).await, "finish");
    let meta = r.ok(spec.meta(false).await, "meta");
    check_eq!(
        r,
        meta.next_continuous,
        Some(t0 + Duration::seconds(60)),
        "next_continuous"
    );
    r.advance_secs(30);
    r.request_none(&worker, "at t0 + I/2").await;
    r.advance_secs(30);
    let a = r.request_unit(&worker, "160.000", "at t0 + I").await;
    r.ok(a.finish(None).await, "finish");
    r.advance_secs(150);
    let got = r
        .request(&worker, AttemptRequest::units(5), "after a long wait")
        .await;
    check_eq!(r, got.len(), 1, "one attempt after a long wait");
    r.ok(got[0].finish(None).await, "finish");
    r.request_none(&worker, "immediately after (no catch-up)")
        .await;
    let meta = r.ok(spec.meta(false).await, "meta");
    check_eq!(
        r,
        meta.next_continuous,
        Some(at_secs(370)),
        "next_continuous from now"
    );
}

/// Continuous unit names are `secs.mmm` of now; a generated name
/// that already exists reuses that unit.
pub async fn continuous_unit_name(t: TestBackend) {
    let r = Run::new("continuous_unit_name", t);
    let ns = r.ns("continuous_unit_name").await;
    let spec = r
        .spec(&ns, data!({"name": "spec", "continuous": true}))
        .await;
    let worker = r.worker(&ns, "worker").await;
    r.advance(Duration::seconds(1_400_000_000) + Duration::milliseconds(5));
    let a = r.request_unit(&worker, "1400000000.005", "request").await;
    r.ok(a.finish(None).await, "finish");
    let unit = a.work_unit();
    check_eq!(
        r,
        r.ok(unit.data().await, "data"),
        DataMap::new(),
        "generated unit data"
    );
    let meta = r.ok(unit.meta().await, "meta");
    check_eq!(r, meta, WorkUnitMeta::default(), "generated unit meta");
    // A unit with the next generated name already exists (finished): it is
    // reused and handed out again.
    let next = "1400000001.250";
    let existing = r.unit(&spec, next, data!({"k": 1})).await;
    let old = r.ok(
        worker.make_attempt(&existing, Duration::zero()).await,
        "make",
    );
    r.ok(old.finish(None).await, "finish pre-existing");
    let mut meta = r.ok(spec.meta(false).await, "spec meta");
    meta.next_continuous = None;
    r.ok(spec.set_meta(meta).await, "set_meta");
    r.advance(Duration::milliseconds(1245));
    let a = r.request_unit(&worker, next, "request at .250").await;
    check_eq!(
        r,
        r.ok(existing.num_attempts().await, "num_attempts"),
        2,
        "existing unit reused"
    );
    r.ok(a.finish(None).await, "finish");
}

/// One request never yields more than one continuous unit, whatever the
/// number asked for; none while a unit is available or pending.
pub async fn continuous_one_per_request(t: TestBackend) {
    let r = Run::new("continuous_one_per_request", t);
    let ns = r.ns("continuous_one_per_request").await;
    let spec = r
        .spec(&ns, data!({"name": "spec", "continuous": true}))
        .await;
    let worker = r.worker(&ns, "worker").await;
    r.advance_secs(1);
    let got = r.request(&worker, AttemptRequest::units(10), "first").await;
    check_eq!(r, got.len(), 1, "one continuous unit");
    r.advance_secs(1);
    let got2 = r
        .request(&worker, AttemptRequest::units(10), "while pending")
        .await;
    check!(r, got2.is_empty(), "generated while one is pending");
    r.ok(got[0].finish(None).await, "finish");
    r.unit(&spec, "real", DataMap::new()).await;
    r.advance_secs(1);
    let got = r
        .request(&worker, AttemptRequest::units(10), "with a real unit")
        .await;
    check_eq!(r, got.len(), 1, "only the real unit");
    check_eq!(r, got[0].work_unit().name(), "real", "real unit first");
}

/// **MaxRunning.** `max_running = 1` allows one pending unit at a time.
pub async fn max_running(t: TestBackend) {
    let r = Run::new("max_running", t);
    let ns = r.ns("max_running").await;
    let spec = r.spec(&ns, data!({"name": "spec", "max_running": 1})).await;
    let worker = r.worker(&ns, "worker").await;
    r.units(&spec, &["a", "b", "c", "d"]).await;
    let got = r.request(&worker, AttemptRequest::units(10), "first").await;
    check_eq!(r, got.len(), 1, "first request");
    r.request_none(&worker, "while one is pending").await;
    r.ok(got[0].finish(None).await, "finish");
    let got = r
        .request(&worker, AttemptRequest::units(10), "after finish")
        .await;
    check_eq!(r, got.len(), 1, "request for many after finish");
}

/// **RequestSpecificSpec.** The `work_specs` filter of a request.
pub async fn request_specific_spec(t: TestBackend) {
    let r = Run::new("request_specific_spec", t);
    let ns = r.ns("request_specific_spec").await;
    let worker = r.worker(&ns, "worker").await;
    for (name, priority) in [("low", 0), ("mid", 5), ("high", 10)] {
        let spec = r
            .spec(&ns, data!({"name": name, "priority": priority}))
            .await;
        r.unit(&spec, &format!("{name}-unit"), DataMap::new()).await;
    }
    let cases: [(Vec<&str>, Option<&str>); 5] = [
        (vec![], Some("high-unit")),
        (vec!["low"], Some("low-unit")),
        (vec!["low", "mid"], Some("mid-unit")),
        (vec!["nonexistent"], None),
        (vec![], Some("high-unit")),
    ];
    for (specs, expected) in cases {
        r.advance_secs(5);
        let req = AttemptRequest {
            work_specs: specs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let step = format!("request restricted to {specs:?}");
        let got = r.request(&worker, req, &step).await;
        let got_names = super::unit_names_of(&got);
        check_eq!(
            r,
            got_names,
            expected.into_iter().collect::<Vec<_>>(),
            "{step}"
        );
        for a in got {
            r.ok(a.retry(None, Duration::zero()).await, "retry");
        }
    }
}

/// **ByRuntime.** The `runtimes` filter of a request.
pub async fn by_runtime(t: TestBackend) {
    let r = Run::new("by_runtime", t);
    let ns = r.ns("by_runtime").await;
    let worker = r.worker(&ns, "worker").await;
    let py = r.spec(&ns, data!({"name": "py", "runtime": ""})).await;
    let go = r.spec(&ns, data!({"name": "go", "runtime": "go"})).await;
    let py_unit = r.unit(&py, "py-unit", DataMap::new()).await;
    let go_unit = r.unit(&go, "go-unit", DataMap::new()).await;
    let mut seen = Vec::new();
    for i in 0..2 {
        r.advance_secs(5);
        let Some(a) = r
            .request_one(&worker, format_args!("unrestricted {i}"))
            .await
        else {
            panic!("[by_runtime] unrestricted request {i} got nothing")
        };
        seen.push(a.work_unit().name().to_string());
    }
    seen.sort();
    check_eq!(
        r,
        seen,
        vec!["go-unit".to_string(), "py-unit".to_string()],
        "one of each"
    );
    r.request_none(&worker, "third unrestricted request").await;
    r.ok(py_unit.clear_active_attempt().await, "clear py");
    r.ok(go_unit.clear_active_attempt().await, "clear go");
    let cases: [(&[&str], &str); 3] = [
        (&[""], "py-unit"),
        (&["", "rust", "java"], "py-unit"),
        (&["go"], "go-unit"),
    ];
    for (runtimes, expected) in cases {
        r.advance_secs(5);
        let req = AttemptRequest {
            runtimes: runtimes.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let step = format!("runtimes {runtimes:?}");
        let got = r.request(&worker, req, &step).await;
        let got_names = super::unit_names_of(&got);
        check_eq!(r, got_names, vec![expected], "{step}");
        r.ok(got[0].retry(None, Duration::zero()).await, "retry");
    }
    let req = AttemptRequest {
        runtimes: vec!["cobol".into()],
        ..Default::default()
    };
    check!(
        r,
        r.request(&worker, req, "unknown runtime").await.is_empty(),
        "unknown runtime"
    );
}

/// **NotBeforeDelayedStatus.** Delayed until the not-before time; Available
/// from exactly that instant on.
pub async fn not_before_delayed_status(t: TestBackend) {
    let r = Run::new("not_before_delayed_status", t);
    let ns = r.ns("not_before_delayed_status").await;
    let spec = r.named_spec(&ns, "spec").await;
    r.advance_secs(100);
    let meta = WorkUnitMeta {
        priority: 0.0,
        not_before: Some(at_secs(110)),
    };
    let unit = r.unit_meta(&spec, "u", DataMap::new(), meta).await;
    check_eq!(r, r.unit_status(&unit).await, Delayed, "before not_before");
    check_eq!(r, r.ok(unit.meta().await, "meta"), meta, "meta reported");
    r.advance(Duration::seconds(10) - Duration::milliseconds(1));
    check_eq!(
        r,
        r.unit_status(&unit).await,
        Delayed,
        "1 ms before not_before"
    );
    r.advance(Duration::milliseconds(1));
    check_eq!(r, r.unit_status(&unit).await, Available, "at not_before");
    r.advance_secs(1);
    check_eq!(r, r.unit_status(&unit).await, Available, "after not_before");
}

/// **NotBeforeAttempt.** A delayed unit is not handed out until its time.
pub async fn not_before_attempt(t: TestBackend) {
    let r = Run::new("not_before_attempt", t);
    let (_ns, spec, worker) = r.basic("not_before_attempt", "spec").await;
    let meta = WorkUnitMeta {
        priority: 0.0,
        not_before: Some(r.now() + Duration::seconds(60)),
    };
    r.unit_meta(&spec, "u", DataMap::new(), meta).await;
    r.drain(&worker, &[], "drain while delayed").await;
    r.advance_secs(120);
    r.drain(&worker, &["u"], "drain after the delay").await;
}

/// **NotBeforePriority.** A delayed high-priority unit does not block an
/// available low-priority one.
pub async fn not_before_priority(t: TestBackend) {
    let r = Run::new("not_before_priority", t);
    let (_ns, spec, worker) = r.basic("not_before_priority", "spec").await;
    r.unit_meta(
        &spec,
        "low",
        DataMap::new(),
        WorkUnitMeta::with_priority(0.0),
    )
    .await;
    let meta = WorkUnitMeta {
        priority: 10.0,
        not_before: Some(r.now() + Duration::seconds(60)),
    };
    r.unit_meta(&spec, "high", DataMap::new(), meta).await;
    r.drain(&worker, &["low"], "drain now").await;
    r.advance_secs(60);
    r.drain(&worker, &["high"], "drain after the delay").await;
}

/// **DelayedOutput.** A chained item with a delay creates a Delayed unit
/// that runs once the delay has passed.
pub async fn delayed_output(t: TestBackend) {
    let r = Run::new("delayed_output", t);
    let ns = r.ns("delayed_output").await;
    let one = r.spec(&ns, data!({"name": "one", "then": "two"})).await;
    let two = r.named_spec(&ns, "two").await;
    let worker = r.worker(&ns, "worker").await;
    r.unit(&one, "u", DataMap::new()).await;
    r.advance_secs(10);
    let a = r.request_unit(&worker, "u", "request").await;
    let output = data!({"output": [["later", {"x": 1}, {"delay": 90.7}]]});
    r.ok(a.finish(Some(output)).await, "finish with delayed output");
    let later = r.ok(two.work_unit("later").await, "chained unit");
    let meta = r.ok(later.meta().await, "chained meta");
    check_eq!(
        r,
        meta.not_before,
        Some(at_secs(100)),
        "not_before = now + 90 s"
    );
    check_eq!(
        r,
        r.unit_status(&later).await,
        Delayed,
        "chained unit status"
    );
    check_eq!(
        r,
        r.ok(later.data().await, "data"),
        data!({"x": 1}),
        "chained data"
    );
    r.advance_secs(5);
    r.request_none(&worker, "shortly after").await;
    r.advance_secs(85);
    r.drain(&worker, &["later"], "drain after the delay").await;
}

/// **UnitDeletedGone.** `status()` on a deleted unit fails with `Gone`
/// (or `NoSuchWorkUnit` / `NoSuchWorkSpec`).
pub async fn unit_deleted_gone(t: TestBackend) {
    let r = Run::new("unit_deleted_gone", t);
    let ns = r.ns("unit_deleted_gone").await;
    let spec = r.named_spec(&ns, "spec").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    r.ok(
        spec.delete_work_units(&WorkUnitQuery::all()).await,
        "delete all",
    );
    r.gone(
        unit.status().await,
        Dead::unit("spec", "u"),
        "status of deleted unit",
    );
}

/// **UnitSpecDeletedGone.** `status()` on a unit of a destroyed spec fails
/// with `Gone` (or a `NoSuch…`).
pub async fn unit_spec_deleted_gone(t: TestBackend) {
    let r = Run::new("unit_spec_deleted_gone", t);
    let ns = r.ns("unit_spec_deleted_gone").await;
    let spec = r.named_spec(&ns, "spec").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    r.ok(ns.destroy_work_spec("spec").await, "destroy spec");
    r.gone(
        unit.status().await,
        Dead::unit("spec", "u"),
        "status of unit of dead spec",
    );
}

fn rec(ns: &str, spec: &str, status: WorkUnitStatus, count: u64) -> SummaryRecord {
    SummaryRecord {
        namespace: ns.into(),
        work_spec: spec.into(),
        status,
        count,
    }
}

/// **Summarize.** Empty at first; one record with one unit; five records
/// after the seven-state fixture — at all three levels.
pub async fn summarize(t: TestBackend) {
    let r = Run::new("summarize", t);
    let summaries = |ns: crate::api::NamespaceRef, spec: Option<crate::api::WorkSpecRef>| {
        let r = &r;
        async move {
            let mut all = vec![
                r.ok(r.backend().summarize().await, "backend summary"),
                r.ok(ns.summarize().await, "namespace summary"),
            ];
            if let Some(spec) = spec {
                all.push(r.ok(spec.summarize().await, "spec summary"));
            }
            for s in &mut all {
                s.sort();
            }
            all
        }
    };
    let ns = r.ns("summarize").await;
    for s in summaries(ns.clone(), None).await {
        check!(r, s.is_empty(), "summary before anything was added: {s:?}");
    }
    let spec = r.named_spec(&ns, "spec").await;
    for s in summaries(ns.clone(), Some(spec.clone())).await {
        check!(r, s.is_empty(), "summary with an empty spec: {s:?}");
    }
    r.unit(&spec, "one", DataMap::new()).await;
    for s in summaries(ns.clone(), Some(spec.clone())).await {
        check_eq!(
            r,
            s,
            vec![rec("summarize", "spec", Available, 1)],
            "one unit"
        );
    }
    // The fixture re-uses "spec" (set_work_spec keeps the spec and its unit).
    r.seven(&ns, "spec").await;
    let expected = vec![
        rec("summarize", "spec", Available, 4),
        rec("summarize", "spec", Pending, 1),
        rec("summarize", "spec", Finished, 1),
        rec("summarize", "spec", Failed, 1),
        rec("summarize", "spec", Delayed, 1),
    ];
    for s in summaries(ns.clone(), Some(spec.clone())).await {
        check_eq!(r, s, expected, "seven-state fixture");
    }
}

/// Summaries at every level concatenate their parts: several namespaces
/// and specs, empty ones contributing nothing, lazy expiry applied first.
pub async fn summarize_levels(t: TestBackend) {
    let r = Run::new("summarize_levels", t);
    let a = r.ns("a").await;
    let b = r.ns("b").await;
    r.ns("empty").await;
    let a1 = r.named_spec(&a, "a1").await;
    let a2 = r.named_spec(&a, "a2").await;
    r.named_spec(&a, "a3-empty").await;
    let b1 = r.named_spec(&b, "b1").await;
    r.units(&a1, &["x", "y"]).await;
    r.units(&a2, &["x"]).await;
    r.units(&b1, &["x"]).await;
    let worker = r.worker(&a, "worker").await;
    let unit = r.ok(a2.work_unit("x").await, "lookup");
    r.ok(
        worker.make_attempt(&unit, Duration::seconds(10)).await,
        "make_attempt",
    );
    let mut total = r.ok(r.backend().summarize().await, "backend");
    total.sort();
    check_eq!(
        r,
        total,
        vec![
            rec("a", "a1", Available, 2),
            rec("a", "a2", Pending, 1),
            rec("b", "b1", Available, 1),
        ],
        "backend summary"
    );
    let mut of_a = r.ok(a.summarize().await, "namespace a");
    of_a.sort();
    check_eq!(r, of_a, total[..2].to_vec(), "namespace a summary");
    check_eq!(
        r,
        r.ok(a2.summarize().await, "spec a2"),
        total[1..2].to_vec(),
        "spec a2"
    );
    r.advance_secs(11);
    let mut total = r.ok(r.backend().summarize().await, "backend after expiry");
    total.sort();
    check_eq!(
        r,
        total[1],
        rec("a", "a2", Available, 1),
        "expired attempt summarised"
    );
}

/// `add_work_unit` upsert: data and whole meta replaced, identity and
/// history kept; Finished/Failed units lose their active attempt (which
/// keeps its status), Pending units keep theirs.
pub async fn add_work_unit_upsert(t: TestBackend) {
    let r = Run::new("add_work_unit_upsert", t);
    let (_ns, spec, worker) = r.basic("add_work_unit_upsert", "spec").await;
    let units = r
        .units(&spec, &["finished", "failed", "pending", "delayed"])
        .await;
    let make = |i: usize| {
        let unit = units[i].clone();
        let worker = worker.clone();
        let r = &r;
        async move { r.ok(worker.make_attempt(&unit, Duration::zero()).await, "make") }
    };
    let fin = make(0).await;
    r.ok(fin.finish(Some(data!({"result": 1}))).await, "finish");
    let fail = make(1).await;
    r.ok(fail.fail(None).await, "fail");
    let pend = make(2).await;
    let delayed_meta = WorkUnitMeta {
        priority: 1.0,
        not_before: Some(r.now() + Duration::seconds(30)),
    };
    r.unit_meta(&spec, "delayed", DataMap::new(), delayed_meta)
        .await;

    let new_meta = WorkUnitMeta::with_priority(3.0);
    for name in ["finished", "failed", "pending", "delayed"] {
        r.unit_meta(&spec, name, data!({"re": name}), new_meta)
            .await;
    }
    let expect = [
        ("finished", Available, None),
        ("failed", Available, None),
        ("pending", Pending, Some(r.key(&pend).await)),
        ("delayed", Available, None),
    ];
    for (i, (name, status, active)) in expect.into_iter().enumerate() {
        let unit = &units[i];
        check_eq!(
            r,
            r.unit_status(unit).await,
            status,
            "{name}: status after re-add"
        );
        check_eq!(
            r,
            r.active_key(unit).await,
            active,
            "{name}: active attempt"
        );
        check_eq!(
            r,
            r.ok(unit.meta().await, "meta"),
            new_meta,
            "{name}: meta replaced"
        );
        let n = r.ok(unit.num_attempts().await, "num_attempts");
        check_eq!(
            r,
            n,
            if name == "delayed" { 0 } else { 1 },
            "{name}: history kept"
        );
    }
    check_eq!(
        r,
        r.attempt_status(&fin).await,
        AttemptStatus::Finished,
        "old attempt status"
    );
    check_eq!(
        r,
        r.attempt_status(&fail).await,
        AttemptStatus::Failed,
        "old attempt status"
    );
    check_eq!(
        r,
        r.ok(units[0].data().await, "data"),
        data!({"re": "finished"}),
        "own data"
    );
    // The pending unit shows its attempt's snapshot, not the new unit data.
    check_eq!(
        r,
        r.ok(units[2].data().await, "data"),
        DataMap::new(),
        "pending data"
    );
    r.ok(units[2].clear_active_attempt().await, "clear");
    check_eq!(
        r,
        r.ok(units[2].data().await, "data"),
        data!({"re": "pending"}),
        "own data"
    );
    // Re-adding a Finished unit with a future not_before makes it Delayed.
    let fin2 = r.ok(
        worker.make_attempt(&units[0], Duration::zero()).await,
        "make",
    );
    r.ok(fin2.finish(None).await, "finish again");
    let later = WorkUnitMeta {
        priority: 0.0,
        not_before: Some(r.now() + Duration::seconds(30)),
    };
    r.unit_meta(&spec, "finished", DataMap::new(), later).await;
    check_eq!(
        r,
        r.unit_status(&units[0]).await,
        Delayed,
        "re-added with a delay"
    );
}

/// Work unit meta operations: `set_meta` replaces both fields (unset
/// `not_before` clears a delay), `set_priority` changes only the priority.
pub async fn work_unit_meta_ops(t: TestBackend) {
    let r = Run::new("work_unit_meta_ops", t);
    let (_ns, spec, worker) = r.basic("work_unit_meta_ops", "spec").await;
    let unit = r.unit(&spec, "u", data!({"k": "v"})).await;
    check_eq!(
        r,
        r.ok(unit.meta().await, "meta"),
        WorkUnitMeta::default(),
        "default meta"
    );
    let delayed = WorkUnitMeta {
        priority: 2.5,
        not_before: Some(r.now() + Duration::hours(1)),
    };
    r.ok(unit.set_meta(delayed).await, "set_meta(delayed)");
    check_eq!(
        r,
        r.ok(unit.meta().await, "meta"),
        delayed,
        "meta after set_meta"
    );
    check_eq!(r, r.unit_status(&unit).await, Delayed, "status");
    r.ok(unit.set_priority(-4.0).await, "set_priority");
    let meta = r.ok(unit.meta().await, "meta");
    check_eq!(r, meta.priority, -4.0, "priority changed");
    check_eq!(
        r,
        meta.not_before,
        delayed.not_before,
        "not_before kept by set_priority"
    );
    r.request_none(&worker, "request while delayed").await;
    r.ok(
        unit.set_meta(WorkUnitMeta::with_priority(1.0)).await,
        "set_meta(no delay)",
    );
    check_eq!(
        r,
        r.unit_status(&unit).await,
        Available,
        "status after clearing the delay"
    );
    check_eq!(
        r,
        r.ok(unit.data().await, "data"),
        data!({"k": "v"}),
        "data untouched"
    );
    r.drain(&worker, &["u"], "drain").await;
}

/// The query limit applies to `delete_work_units`,
/// `set_work_unit_priorities` and `adjust_work_unit_priorities`.
pub async fn query_limits_apply_to_mutators(t: TestBackend) {
    let r = Run::new("query_limits_apply_to_mutators", t);
    let ns = r.ns("query_limits_apply_to_mutators").await;
    let spec = r.named_spec(&ns, "spec").await;
    r.units(&spec, &["e", "d", "c", "b", "a"]).await;
    let two = WorkUnitQuery {
        limit: 2,
        ..Default::default()
    };
    r.ok(
        spec.set_work_unit_priorities(&two, 5.0).await,
        "set with limit",
    );
    let after_b = WorkUnitQuery {
        limit: 2,
        previous_name: "b".into(),
        ..Default::default()
    };
    r.ok(
        spec.adjust_work_unit_priorities(&after_b, 1.0).await,
        "adjust with limit",
    );
    let mut priorities = BTreeMap::new();
    for (name, unit) in r.ok(spec.work_units(&WorkUnitQuery::all()).await, "units") {
        priorities.insert(name, r.ok(unit.priority().await, "priority"));
    }
    let expected: BTreeMap<String, f64> =
        [("a", 5.0), ("b", 5.0), ("c", 1.0), ("d", 1.0), ("e", 0.0)]
            .into_iter()
            .map(|(n, p)| (n.to_string(), p))
            .collect();
    check_eq!(r, priorities, expected, "priorities after limited updates");
    let n = r.ok(spec.delete_work_units(&after_b).await, "delete with limit");
    check_eq!(r, n, 2, "deleted with limit");
    check_eq!(
        r,
        r.unit_names(&spec, "left").await,
        names(["a", "b", "e"]),
        "units left"
    );
    let negative = WorkUnitQuery {
        limit: -1,
        ..Default::default()
    };
    check_eq!(
        r,
        r.ok(spec.work_units(&negative).await, "limit -1").len(),
        3,
        "no limit"
    );
}

/// Any string up to the length limit is a unit name: empty, control
/// characters, non-ASCII, the longest allowed;
/// byte order decides paging and execution order.
pub async fn odd_unit_names(t: TestBackend) {
    let r = Run::new("odd_unit_names", t);
    let (_ns, spec, worker) = r.basic("odd_unit_names", "spec").await;
    let long = "x".repeat(crate::rules::limits::MAX_NAME_BYTES);
    let odd = [
        "",
        "\u{0}",
        "\u{1}\u{2}",
        " ",
        "Z",
        "a",
        long.as_str(),
        "é",
        "\u{1F600}",
    ];
    for name in odd {
        let unit = r.unit(&spec, name, data!({"name": name})).await;
        check_eq!(r, unit.name(), name, "name of {name:?}");
    }
    for name in odd {
        let unit = r.ok(spec.work_unit(name).await, format_args!("lookup {name:?}"));
        check_eq!(
            r,
            r.ok(unit.data().await, "data"),
            data!({"name": name}),
            "data of {name:?}"
        );
    }
    let page = WorkUnitQuery {
        limit: 3,
        previous_name: "\u{0}".into(),
        ..Default::default()
    };
    let got: Vec<String> = r
        .ok(spec.work_units(&page).await, "page")
        .into_keys()
        .collect();
    check_eq!(r, got, vec!["\u{1}\u{2}", " ", "Z"], "byte-ordered page");
    r.drain(&worker, &odd, "drain in byte order").await;
}

/// Request parameters: a count below one means one; a
/// non-positive lifetime means 15 minutes; an `available_gb` of zero
/// filters nothing (see the `available_memory_*` scenarios);
/// `max_getwork` caps the batch; the batch is priority-desc, name-asc and
/// has the request's lifetime.
pub async fn request_attempts_parameters(t: TestBackend) {
    let r = Run::new("request_attempts_parameters", t);
    let ns = r.ns("request_attempts_parameters").await;
    let spec = r
        .spec(&ns, data!({"name": "spec", "max_getwork": 3, "min_gb": 64}))
        .await;
    let worker = r.worker(&ns, "worker").await;
    r.units(&spec, &["a", "b", "c", "d", "e", "f"]).await;
    let e = r.ok(spec.work_unit("e").await, "lookup e");
    r.ok(e.set_priority(1.0).await, "set_priority(e)");
    for n in [0, -5] {
        let req = AttemptRequest {
            number_of_work_units: n,
            lifetime: Duration::seconds(-10),
            available_gb: 0.0,
            ..Default::default()
        };
        let got = r.request(&worker, req, format_args!("count {n}")).await;
        check_eq!(r, got.len(), 1, "count {n} means one");
        let start = r.ok(got[0].start_time().await, "start");
        check_eq!(r, start, r.now(), "start time");
        let exp = r.ok(got[0].expiration_time().await, "expiration");
        check_eq!(r, exp, start + Duration::minutes(15), "default lifetime");
    }
    let req = AttemptRequest {
        number_of_work_units: 10,
        lifetime: Duration::seconds(90),
        ..Default::default()
    };
    let got = r.request(&worker, req, "batch").await;
    let got_names = super::unit_names_of(&got);
    // "e" (priority 1) and "a" went first; the rest by name, capped at 3.
    check_eq!(r, got_names, vec!["b", "c", "d"], "batch order and cap");
    for a in &got {
        let exp = r.ok(a.expiration_time().await, "expiration");
        check_eq!(r, exp, r.now() + Duration::seconds(90), "request lifetime");
        check_eq!(r, a.worker().name(), "worker", "attempt's worker");
    }
}

/// Numbers compare by value: integers and floats equal when their
/// values are; everything else structurally.
fn same_value(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
                (Some(i), Some(j), _, _) => i == j,
                (_, _, Some(i), Some(j)) => i == j,
                _ => x.as_f64() == y.as_f64(),
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

/// The data value model round-trips through spec definitions, unit,
/// attempt and worker data: integers (up to `u64::MAX`), floats, strings
/// with control characters and non-ASCII, null, booleans, empty and nested
/// arrays and objects, odd keys.
pub async fn data_round_trip(t: TestBackend) {
    let r = Run::new("data_round_trip", t);
    let (ns, _spec, worker) = r.basic("data_round_trip", "spec").await;
    let value = data!({
        "int": 1, "neg": -7, "big": i64::MAX, "small": i64::MIN, "ubig": u64::MAX,
        "float": 1.5, "exp": 1e300, "tiny": 5e-324, "whole_float": 2.0, "neg_zero": -0.0,
        "str": "s\u{1}\n\t\"\\é\u{1F600}", "empty_str": "", "null": null, "bool": false,
        "arr": [1, "a", null, [], {}, [[]]], "empty_arr": [],
        "obj": {"nested": {"deep": [[], {"e": []}]}, "empty": {}},
        "": "empty key", "\u{1}key": 1, "ключ": "значение",
    });
    let check = |what: &str, got: DataMap| {
        let got = serde_json::Value::Object(got);
        let want = serde_json::Value::Object(value.clone());
        check!(
            r,
            same_value(&got, &want),
            "{what}: round trip\n got: {got}\nwant: {want}"
        );
    };
    let mut def = value.clone();
    def.insert("name".into(), "def".into());
    let spec = r.ok(ns.set_work_spec(def.clone()).await, "set_work_spec");
    let mut stored = r.ok(spec.data().await, "spec data");
    check!(
        r,
        stored.remove("name").is_some(),
        "name kept in the definition"
    );
    check("spec definition", stored);
    let unit = r.unit(&spec, "u", value.clone()).await;
    check("unit data", r.ok(unit.data().await, "unit data"));
    let fresh = r.ok(spec.work_unit("u").await, "lookup");
    check("unit data via lookup", r.ok(fresh.data().await, "data"));
    let a = r.ok(worker.make_attempt(&unit, Duration::zero()).await, "make");
    check("attempt snapshot", r.ok(a.data().await, "attempt data"));
    r.ok(
        a.renew(Duration::minutes(1), Some(value.clone())).await,
        "renew",
    );
    check("renewed attempt data", r.ok(a.data().await, "attempt data"));
    r.ok(a.finish(Some(value.clone())).await, "finish");
    check(
        "finished attempt data",
        r.ok(a.data().await, "attempt data"),
    );
    r.ok(
        worker.update(value.clone(), r.now(), r.now(), "m").await,
        "worker update",
    );
    check("worker data", r.ok(worker.data().await, "worker data"));
}

/// Fair share: among equal priorities a spec far above its share
/// of pending work (score ≤ 0) is never chosen while another qualifies.
pub async fn scheduler_fair_share(t: TestBackend) {
    let r = Run::new("scheduler_fair_share", t);
    let ns = r.ns("scheduler_fair_share").await;
    let worker = r.worker(&ns, "worker").await;
    let light = r.spec(&ns, data!({"name": "light", "weight": 1})).await;
    let heavy = r.spec(&ns, data!({"name": "heavy", "weight": 1})).await;
    let busy = r
        .units(
            &heavy,
            &["h0", "h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9"],
        )
        .await;
    for unit in &busy[..5] {
        r.ok(
            worker.make_attempt(unit, Duration::zero()).await,
            "make pending",
        );
    }
    r.units(
        &light,
        &["l0", "l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8", "l9"],
    )
    .await;
    // heavy: 1 × (5 + 1) − 2 × 5 = −4 ≤ 0, so light is always chosen.
    for i in 0..10 {
        let a = r.request_one(&worker, format_args!("request {i}")).await;
        let Some(a) = a else {
            panic!("[scheduler_fair_share] request {i} got nothing")
        };
        check_eq!(r, a.work_unit().work_spec().name(), "light", "request {i}");
        r.ok(a.finish(None).await, "finish");
    }
    let counts = r.ok(heavy.count_work_unit_status().await, "heavy counts");
    check_eq!(
        r,
        counts,
        [(Available, 5), (Pending, 5)].into(),
        "heavy untouched"
    );
}

/// Weighted choice: with weights 1 and 3 and nothing pending, the
/// heavier spec gets about three quarters of 200 single requests (the
/// bounds are over six standard deviations wide).
pub async fn scheduler_weights(t: TestBackend) {
    let r = Run::new("scheduler_weights", t);
    let ns = r.ns("scheduler_weights").await;
    let worker = r.worker(&ns, "worker").await;
    let one = r.spec(&ns, data!({"name": "one", "weight": 1})).await;
    let three = r.spec(&ns, data!({"name": "three", "weight": 3})).await;
    for i in 0..200 {
        r.unit(&one, &format!("u{i:03}"), DataMap::new()).await;
        r.unit(&three, &format!("u{i:03}"), DataMap::new()).await;
    }
    let mut heavy = 0;
    for i in 0..200 {
        let a = r.request_one(&worker, format_args!("request {i}")).await;
        let Some(a) = a else {
            panic!("[scheduler_weights] request {i} got nothing")
        };
        if a.work_unit().work_spec().name() == "three" {
            heavy += 1;
        }
        r.ok(a.finish(None).await, "finish");
    }
    check!(
        r,
        (110..=190).contains(&heavy),
        "weight-3 spec chosen {heavy} of 200 times"
    );
}

/// Specs that cannot do work are never chosen: weight zero or
/// negative (set via `set_meta`), paused, empty, or at `max_running`.
pub async fn scheduler_exclusions(t: TestBackend) {
    let r = Run::new("scheduler_exclusions", t);
    let ns = r.ns("scheduler_exclusions").await;
    let worker = r.worker(&ns, "worker").await;
    let zero = r.named_spec(&ns, "zero").await;
    let negative = r.named_spec(&ns, "negative").await;
    for (spec, weight) in [(&zero, 0), (&negative, -3)] {
        let mut meta = r.ok(spec.meta(false).await, "meta");
        meta.weight = weight;
        r.ok(spec.set_meta(meta).await, "set_meta(weight)");
        check_eq!(
            r,
            r.ok(spec.meta(false).await, "meta").weight,
            weight,
            "weight stored"
        );
        r.unit(spec, "u", DataMap::new()).await;
    }
    let paused = r
        .spec(
            &ns,
            data!({"name": "paused", "disabled": true, "priority": 9}),
        )
        .await;
    r.unit(&paused, "u", DataMap::new()).await;
    r.named_spec(&ns, "empty").await;
    let full = r.spec(&ns, data!({"name": "full", "max_running": 1})).await;
    let units = r.units(&full, &["a", "b"]).await;
    r.ok(
        worker.make_attempt(&units[0], Duration::zero()).await,
        "make",
    );
    let got = r
        .request(&worker, AttemptRequest::units(10), "request")
        .await;
    check!(
        r,
        got.is_empty(),
        "excluded spec chosen: {:?}",
        super::unit_names_of(&got)
    );
    let mut meta = r.ok(zero.meta(false).await, "meta");
    meta.weight = 5;
    r.ok(zero.set_meta(meta).await, "set_meta(weight = 5)");
    let got = r
        .request(&worker, AttemptRequest::units(10), "after re-weighting")
        .await;
    check_eq!(r, got.len(), 1, "one attempt");
    check_eq!(
        r,
        got[0].work_unit().work_spec().name(),
        "zero",
        "re-weighted spec"
    );
}

/// Namespaces are isolated: requests only see the worker's own
/// namespace, and same-named specs and units in two namespaces are
/// independent.
pub async fn namespace_isolation(t: TestBackend) {
    let r = Run::new("namespace_isolation", t);
    let (a_ns, a_spec, a_worker) = r.basic("isolation a", "spec").await;
    let (_b_ns, b_spec, b_worker) = r.basic("isolation b", "spec").await;
    r.unit(&a_spec, "u", data!({"ns": "a"})).await;
    r.unit(&b_spec, "u", data!({"ns": "b"})).await;
    let a = r.request_unit(&a_worker, "u", "request in a").await;
    check_eq!(
        r,
        r.ok(a.data().await, "data"),
        data!({"ns": "a"}),
        "a's unit"
    );
    r.request_none(&a_worker, "second request in a").await;
    let b = r.request_unit(&b_worker, "u", "request in b").await;
    check_eq!(
        r,
        r.ok(b.data().await, "data"),
        data!({"ns": "b"}),
        "b's unit"
    );
    r.ok(a_ns.destroy_work_spec("spec").await, "destroy a's spec");
    let b_unit = r.ok(b_spec.work_unit("u").await, "b's unit");
    check_eq!(r, r.unit_status(&b_unit).await, Pending, "b untouched");
    let b_all = r.ok(b_worker.all_attempts().await, "b's attempts");
    check_eq!(r, b_all.len(), 1, "b's worker keeps its attempt");
}

/// One request's attempts all come from one spec, and the
/// `work_specs` and `runtimes` filters combine.
pub async fn batch_from_one_spec(t: TestBackend) {
    let r = Run::new("batch_from_one_spec", t);
    let ns = r.ns("batch_from_one_spec").await;
    let worker = r.worker(&ns, "worker").await;
    let one = r.named_spec(&ns, "one").await;
    let two = r.named_spec(&ns, "two").await;
    let go = r.spec(&ns, data!({"name": "go", "runtime": "go"})).await;
    for spec in [&one, &two, &go] {
        r.units(spec, &["a", "b", "c"]).await;
    }
    let req = AttemptRequest {
        number_of_work_units: 10,
        work_specs: vec!["one".into(), "two".into()],
        ..Default::default()
    };
    let got = r.request(&worker, req, "batch").await;
    check_eq!(
        r,
        super::unit_names_of(&got),
        vec!["a", "b", "c"],
        "batch size and order"
    );
    let specs: std::collections::BTreeSet<String> = got
        .iter()
        .map(|a| a.work_unit().work_spec().name().to_string())
        .collect();
    check_eq!(r, specs.len(), 1, "batch from a single spec: {specs:?}");
    let req = AttemptRequest {
        number_of_work_units: 10,
        work_specs: vec!["go".into(), "one".into(), "two".into()],
        runtimes: vec!["go".into()],
        ..Default::default()
    };
    let got = r.request(&worker, req, "filters combined").await;
    let specs: Vec<String> = got
        .iter()
        .map(|a| a.work_unit().work_spec().name().to_string())
        .collect();
    check_eq!(
        r,
        specs,
        vec!["go"; 3],
        "only the go spec passes both filters"
    );
    let req = AttemptRequest {
        work_specs: vec!["go".into()],
        runtimes: vec![String::new()],
        ..Default::default()
    };
    check!(
        r,
        r.request(&worker, req, "disjoint filters").await.is_empty(),
        "disjoint filters"
    );
}

/// `next_continuous` from `set_meta` gates generation: a future
/// value blocks it until reached; clearing it allows it at once.
pub async fn continuous_next_gate(t: TestBackend) {
    let r = Run::new("continuous_next_gate", t);
    let ns = r.ns("continuous_next_gate").await;
    let spec = r
        .spec(&ns, data!({"name": "spec", "continuous": true}))
        .await;
    let worker = r.worker(&ns, "worker").await;
    let mut meta = r.ok(spec.meta(false).await, "meta");
    meta.next_continuous = Some(at_secs(100));
    r.ok(spec.set_meta(meta.clone()).await, "set_meta(next = 100 s)");
    r.advance(Duration::seconds(100) - Duration::milliseconds(1));
    r.request_none(&worker, "1 ms before next_continuous").await;
    r.advance(Duration::milliseconds(1));
    let a = r
        .request_unit(&worker, "100.000", "at next_continuous")
        .await;
    r.ok(a.finish(None).await, "finish");
    meta.next_continuous = Some(at_secs(10_000));
    r.ok(spec.set_meta(meta.clone()).await, "set_meta(next far)");
    r.advance_secs(1);
    r.request_none(&worker, "before the far next_continuous")
        .await;
    meta.next_continuous = None;
    r.ok(spec.set_meta(meta).await, "set_meta(next unset)");
    r.request_unit(&worker, "101.000", "after clearing next_continuous")
        .await;
}

/// Paging through 250 units seven at a time, passing the last name of
/// each page as `previous_name`, visits every unit exactly once in byte
/// order.
pub async fn query_paging(t: TestBackend) {
    let r = Run::new("query_paging", t);
    let ns = r.ns("query_paging").await;
    let spec = r.named_spec(&ns, "spec").await;
    let mut expected: Vec<String> = (0..250u32)
        .map(|i| format!("{}-{i}", (i * 7919) % 250))
        .collect();
    for name in &expected {
        r.unit(&spec, name, DataMap::new()).await;
    }
    expected.sort();
    let mut seen: Vec<String> = Vec::new();
    let mut previous = String::new();
    for page in 0..100 {
        let q = WorkUnitQuery {
            limit: 7,
            previous_name: previous.clone(),
            ..Default::default()
        };
        let got = r.ok(spec.work_units(&q).await, format_args!("page {page}"));
        check!(r, got.len() <= 7, "page {page} has {} units", got.len());
        let Some(last) = got.keys().next_back().cloned() else {
            break;
        };
        seen.extend(got.into_keys());
        previous = last;
    }
    check_eq!(r, seen, expected, "pages cover every unit once, in order");
}

/// A clock that moves backwards (skew) never makes an operation panic or
/// fail: attempts started "in the future" stay pending, times are reported
/// as the clock said, and work continues.
pub async fn clock_skew(t: TestBackend) {
    let r = Run::new("clock_skew", t);
    let (ns, spec, worker) = r.basic("clock_skew", "spec").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    r.advance_secs(1000);
    let a = r.request_unit(&worker, "u", "request at 1000 s").await;
    r.advance_secs(-2000);
    check_eq!(
        r,
        r.attempt_status(&a).await,
        AttemptStatus::Pending,
        "after going back"
    );
    r.ok(
        a.renew(Duration::seconds(10), None).await,
        "renew in the past",
    );
    check_eq!(
        r,
        r.ok(a.expiration_time().await, "exp"),
        at_secs(-990),
        "deadline from now"
    );
    r.ok(a.finish(None).await, "finish before the start");
    check_eq!(
        r,
        r.ok(a.end_time().await, "end"),
        Some(at_secs(-1000)),
        "end as the clock said"
    );
    check_eq!(r, r.unit_status(&unit).await, Finished, "finished");
    let late = r.worker(&ns, "late").await;
    check_eq!(
        r,
        r.ok(late.last_update().await, "created"),
        at_secs(-1000),
        "worker time"
    );
    let meta = WorkUnitMeta {
        priority: 0.0,
        not_before: Some(at_secs(-999)),
    };
    r.unit_meta(&spec, "v", DataMap::new(), meta).await;
    check_eq!(
        r,
        r.unit_status(&r.ok(spec.work_unit("v").await, "v")).await,
        Delayed,
        "v"
    );
    r.advance_secs(2);
    r.drain(&late, &["v"], "drain after the skew").await;
}
