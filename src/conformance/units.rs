//! Work unit scenarios: creation, queries, deletion, priorities, upsert
//! and meta, odd names, and the data value model.

use std::collections::BTreeMap;

use WorkUnitStatus as U;

use super::{each_named, names, Dead, Run, TestBackend, SEVEN};
use crate::data;
use crate::error::Error;
use crate::model::{DataMap, Duration, WorkUnitMeta, WorkUnitQuery, WorkUnitStatus};

use U::{Available, Delayed, Failed, Finished, Pending};

/// **TrivialWorkUnitFlow.** One unit: listed, named, deleted by an empty
/// query, then absent.
pub async fn trivial_work_unit_flow(t: TestBackend) {
    let (r, ns) = Run::with_ns("trivial_work_unit_flow", t).await;
    let spec = r.named_spec(&ns, "spec").await;
    r.unit(&spec, "unit", DataMap::new()).await;
    let all = r.ok(spec.work_units(&WorkUnitQuery::all()).await, "work_units");
    check_eq!(r, all.len(), 1, "one unit listed");
    let unit = &all["unit"];
    check_eq!(r, unit.name(), "unit", "unit name");
    check_eq!(r, unit.work_spec().name(), "spec", "unit's spec name");
    let deleted = r.delete_all(&spec).await;
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

/// **WorkUnitQueries.** Limits, paging, status and name filters (statuses
/// repeated thousands of times included) on the seven-state fixture.
pub async fn work_unit_queries(t: TestBackend) {
    let (r, ns) = Run::with_ns("work_unit_queries", t).await;
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
        (vec![Pending, U::AnyStatus], names(SEVEN)),
        // A status repeated is a status given once, however long the list.
        (vec![Finished; 10_000], names(["finished"])),
        (
            [Failed, Pending].repeat(5_000),
            names(["failed", "pending"]),
        ),
    ];
    for (statuses, expected) in by_status {
        let shown = &statuses[..statuses.len().min(2)];
        let step = format!("{} statuses from {shown:?}", statuses.len());
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
    let (r, ns) = Run::with_ns("delete_work_units", t).await;
    let seven = r.seven(&ns, "spec").await;
    let spec = &seven.spec;
    let by_name = WorkUnitQuery::names(["available"]);
    r.ok_eq(spec.delete_work_units(&by_name).await, 1, "count");
    check_eq!(
        r,
        r.unit_names(spec, "after one").await,
        names(SEVEN[1..].iter().copied()),
        "units after deleting one"
    );
    r.ok_eq(spec.delete_work_units(&by_name).await, 0, "count again");
    check_eq!(
        r,
        r.unit_names(spec, "after again").await.len(),
        6,
        "units after repeat"
    );
    let by_status = WorkUnitQuery::statuses([Failed, Finished]);
    r.ok_eq(spec.delete_work_units(&by_status).await, 2, "count");
    r.units_are(
        spec,
        ["delayed", "expired", "pending", "retried"],
        "units after deleting by status",
    )
    .await;
    r.ok_eq(
        spec.delete_work_units(&WorkUnitQuery::all()).await,
        4,
        "count",
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
    let (r, ns) = Run::with_ns("count_work_unit_status", t).await;
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
    let (r, _ns, spec, worker) = Run::with_basic("work_unit_order", t, "spec").await;
    r.units(&spec, &["c", "b", "a"]).await;
    r.drain(&worker, &["a", "b", "c"], "drain").await;
}

/// **WorkUnitPriorityCtor.** Creation priorities are reported and decide
/// the order; ties break alphabetically.
pub async fn work_unit_priority_ctor(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("work_unit_priority_ctor", t, "spec").await;
    for (name, p) in [("a", 0.0), ("b", 10.0), ("c", 10.0), ("d", -1.5)] {
        let u = r.unit_priority(&spec, name, p).await;
        r.ok_eq(u.priority().await, p, format_args!("priority of {name}"));
    }
    r.drain(&worker, &["b", "c", "a", "d"], "drain").await;
}

/// **WorkUnitPrioritySet.** `set_priority`, `set_work_unit_priorities` and
/// (accumulating) `adjust_work_unit_priorities`, seen through fresh handles.
pub async fn work_unit_priority_set(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("work_unit_priority_set", t, "spec").await;
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
    r.ok_eq(units[0].priority().await, 5.0, "a via old handle");
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
    let (r, ns) = Run::with_ns("work_unit_data", t).await;
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
    let (r, ns) = Run::with_ns("add_work_unit_bleedover", t).await;
    let [one, two] = each_named(["one", "two"], |n| r.named_spec(&ns, n)).await;
    r.unit(&one, "u", data!({"spec": "one"})).await;
    let old = r.unit(&two, "u", data!({"spec": "two"})).await;
    let new = r.unit(&two, "u", data!({"spec": "two", "v": 2})).await;
    r.ok_eq(
        old.data().await,
        data!({"spec": "two", "v": 2}),
        "old handle",
    );
    r.ok_eq(
        new.data().await,
        data!({"spec": "two", "v": 2}),
        "new handle",
    );
    let first = r.ok(one.work_unit("u").await, "lookup in one");
    r.ok_eq(first.data().await, data!({"spec": "one"}), "one intact");
}

/// **RecreateWorkUnits.** Re-adding every unit of the seven-state fixture
/// succeeds; all become Available except the pending one.
pub async fn recreate_work_units(t: TestBackend) {
    let (r, ns) = Run::with_ns("recreate_work_units", t).await;
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
        r.ok_eq(
            unit.status().await,
            expected,
            format_args!("status of {name}"),
        );
        let old = &seven.units[name];
        r.ok_eq(
            old.status().await,
            expected,
            format_args!("status of {name} via old handle"),
        );
    }
}

/// **UnitDeletedGone.** `status()` on a deleted unit fails with `Gone`
/// (or `NoSuchWorkUnit` / `NoSuchWorkSpec`).
pub async fn unit_deleted_gone(t: TestBackend) {
    let (r, ns) = Run::with_ns("unit_deleted_gone", t).await;
    let spec = r.named_spec(&ns, "spec").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    r.delete_all(&spec).await;
    r.gone(
        unit.status().await,
        Dead::unit("spec", "u"),
        "status of deleted unit",
    );
}

/// **UnitSpecDeletedGone.** `status()` on a unit of a destroyed spec fails
/// with `Gone` (or a `NoSuch…`).
pub async fn unit_spec_deleted_gone(t: TestBackend) {
    let (r, ns) = Run::with_ns("unit_spec_deleted_gone", t).await;
    let spec = r.named_spec(&ns, "spec").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    r.ok(ns.destroy_work_spec("spec").await, "destroy spec");
    r.gone(
        unit.status().await,
        Dead::unit("spec", "u"),
        "status of unit of dead spec",
    );
}

/// `add_work_unit` upsert: data and whole meta replaced, identity and
/// history kept; Finished/Failed units lose their active attempt (which
/// keeps its status), Pending units keep theirs.
pub async fn add_work_unit_upsert(t: TestBackend) {
    let r = Run::new("add_work_unit_upsert", t);
    super::bulk::upsert(&r, super::bulk::Adding::OneByOne).await;
}

/// Work unit meta operations: `set_meta` replaces both fields (unset
/// `not_before` clears a delay), `set_priority` changes only the priority.
pub async fn work_unit_meta_ops(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("work_unit_meta_ops", t, "spec").await;
    let unit = r.unit(&spec, "u", data!({"k": "v"})).await;
    r.ok_eq(unit.meta().await, WorkUnitMeta::default(), "default meta");
    let delayed = WorkUnitMeta {
        priority: 2.5,
        not_before: Some(r.now() + Duration::hours(1)),
    };
    r.ok(unit.set_meta(delayed).await, "set_meta(delayed)");
    r.ok_eq(unit.meta().await, delayed, "meta after set_meta");
    r.ok_eq(unit.status().await, Delayed, "status");
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
    r.ok_eq(
        unit.status().await,
        Available,
        "status after clearing the delay",
    );
    r.ok_eq(unit.data().await, data!({"k": "v"}), "data untouched");
    r.drain(&worker, &["u"], "drain").await;
}

/// The query limit applies to `delete_work_units`,
/// `set_work_unit_priorities` and `adjust_work_unit_priorities`.
pub async fn query_limits_apply_to_mutators(t: TestBackend) {
    let (r, ns) = Run::with_ns("query_limits_apply_to_mutators", t).await;
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
    r.units_are(&spec, ["a", "b", "e"], "units left").await;
    let negative = WorkUnitQuery {
        limit: -1,
        ..Default::default()
    };
    r.ok_eq(
        spec.work_units(&negative).await.map(|v| v.len()),
        3,
        "no limit",
    );
}

/// Any string up to the length limit is a unit name: empty, control
/// characters, non-ASCII, the longest allowed;
/// byte order decides paging and execution order.
pub async fn odd_unit_names(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("odd_unit_names", t, "spec").await;
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
        r.ok_eq(
            unit.data().await,
            data!({"name": name}),
            format_args!("data of {name:?}"),
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

/// The data value model round-trips through spec definitions, unit,
/// attempt and worker data: integers (up to `u64::MAX`), floats of every
/// magnitude (each keeping its kind: `2.0` and `1e19` stay floats), strings
/// with control characters (NUL included) and non-ASCII, null, booleans, empty and nested
/// arrays and objects, odd keys.
pub async fn data_round_trip(t: TestBackend) {
    let (r, ns, _spec, worker) = Run::with_basic("data_round_trip", t, "spec").await;
    let value = data!({
        "int": 1, "neg": -7, "big": i64::MAX, "small": i64::MIN, "ubig": u64::MAX,
        "float": 1.5, "exp": 1e300, "tiny": 5e-324, "whole_float": 2.0, "neg_zero": -0.0,
        "float_1e16": 1e16, "float_1e19": 1e19, "neg_float_1e18": -1e18,
        "float_digits": 12_345_678_901_234_567_890.0, "float_max": f64::MAX,
        "str": "s\u{1}\n\t\"\\é\u{1F600}", "empty_str": "", "null": null, "bool": false,
        "arr": [1, "a", null, [], {}, [[]]], "empty_arr": [],
        "obj": {"nested": {"deep": [[], {"e": []}]}, "empty": {}},
        "": "empty key", "\u{1}key": 1, "ключ": "значение",
        "nul": "a\u{0}b", "\u{0}key": ["\u{0}", ["\u{0}\u{0}"]],
        "escape_like": "\u{E000}0\u{E000}\u{E000}1", "\u{E000}0": "\u{0}\u{E000}",
    });
    let check = |what: &str, got: DataMap| {
        let got = serde_json::Value::Object(got);
        let want = serde_json::Value::Object(value.clone());
        // `Value`'s equality compares numbers by kind and value.
        check!(
            r,
            got == want,
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

/// Paging through 250 units seven at a time, passing the last name of
/// each page as `previous_name`, visits every unit exactly once in byte
/// order.
pub async fn query_paging(t: TestBackend) {
    let (r, ns) = Run::with_ns("query_paging", t).await;
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

/// Query edges: `names = [""]` is a constraint selecting only the
/// unit named `""`, for reads and mutators alike; a limit of `i64::MAX`
/// keeps every match and `i64::MIN` is no limit; a non-ASCII
/// `previous_name`, stored or not, pages in UTF-8 byte order (code point
/// order: not UTF-16 order, not a collation).
pub async fn query_edges(t: TestBackend) {
    let (r, ns) = Run::with_ns("query_edges", t).await;
    let spec = r.named_spec(&ns, "spec").await;
    // In byte order.
    let all = ["", "a", "z", "é", "ÿ", "ā", "\u{FF61}", "\u{1F600}"];
    r.units(&spec, &all).await;
    let selected = |query: WorkUnitQuery, step: String| {
        let spec = spec.clone();
        let r = &r;
        async move {
            let got = r.ok(spec.work_units(&query).await, &step);
            got.into_keys().collect::<Vec<_>>()
        }
    };
    let empty_name = WorkUnitQuery::names([""]);
    check_eq!(
        r,
        selected(empty_name.clone(), "names [\"\"]".into()).await,
        vec![""],
        "names [\"\"]"
    );
    check_eq!(
        r,
        selected(WorkUnitQuery::names(["", "missing"]), "names".into()).await,
        vec![""],
        "names [\"\", \"missing\"]"
    );
    r.ok(
        spec.set_work_unit_priorities(&empty_name, 3.0).await,
        "set priority of names [\"\"]",
    );
    for name in all {
        let unit = r.ok(spec.work_unit(name).await, format_args!("{name:?}"));
        let want = if name.is_empty() { 3.0 } else { 0.0 };
        r.ok_eq(
            unit.priority().await,
            want,
            format_args!("priority of {name:?}"),
        );
    }
    for limit in [i64::MAX, i64::MIN] {
        let query = WorkUnitQuery {
            limit,
            ..WorkUnitQuery::default()
        };
        check_eq!(
            r,
            selected(query, format!("limit {limit}")).await,
            all.to_vec(),
            "limit {limit}"
        );
    }
    let page = |previous: &str, limit: i64| WorkUnitQuery {
        previous_name: previous.into(),
        limit,
        ..WorkUnitQuery::default()
    };
    let pages: [(&str, i64, &[&str]); 5] = [
        ("é", 2, &["ÿ", "ā"]),
        ("ā", 2, &["\u{FF61}", "\u{1F600}"]),
        ("\u{1F600}", 2, &[]),
        ("é", i64::MAX, &["ÿ", "ā", "\u{FF61}", "\u{1F600}"]),
        ("e\u{301}", 3, &["z", "é", "ÿ"]),
    ];
    for (previous, limit, want) in pages {
        let step = format!("after {previous:?}, limit {limit}");
        check_eq!(
            r,
            selected(page(previous, limit), step.clone()).await,
            want.to_vec(),
            "{step}"
        );
    }
    let deleted = r.ok(
        spec.delete_work_units(&page("ā", i64::MAX)).await,
        "delete after \"ā\"",
    );
    check_eq!(r, deleted, 2, "deleted after \"ā\"");
    let deleted = r.ok(spec.delete_work_units(&empty_name).await, "delete \"\"");
    check_eq!(r, deleted, 1, "deleted by names [\"\"]");
    r.units_are(&spec, ["a", "z", "é", "ÿ", "ā"], "units left")
        .await;
}

/// `limit` keeps the first matches in name order after every other filter:
/// statuses, names and `previous_name`, for reads and mutators alike.
pub async fn limit_after_filters(t: TestBackend) {
    let (r, ns) = Run::with_ns("limit_after_filters", t).await;
    let seven = r.seven(&ns, "spec").await;
    let spec = &seven.spec;
    let available_two = WorkUnitQuery {
        limit: 2,
        ..WorkUnitQuery::statuses([Available])
    };
    let listed = |query: WorkUnitQuery, step: &'static str| {
        let r = &r;
        async move {
            let got = r.ok(spec.work_units(&query).await, step);
            got.into_keys().collect::<Vec<_>>()
        }
    };
    check_eq!(
        r,
        listed(available_two.clone(), "available, limit 2").await,
        vec!["available", "expired"],
        "statuses then limit"
    );
    let after = WorkUnitQuery {
        limit: 1,
        previous_name: "available".into(),
        ..WorkUnitQuery::statuses([Available])
    };
    check_eq!(
        r,
        listed(after, "available after \"available\", limit 1").await,
        vec!["expired"],
        "statuses, previous_name, then limit"
    );
    let named = WorkUnitQuery {
        limit: 2,
        ..WorkUnitQuery::names(["retried", "failed", "available"])
    };
    check_eq!(
        r,
        listed(named, "three names, limit 2").await,
        vec!["available", "failed"],
        "names then limit"
    );
    r.ok(
        spec.set_work_unit_priorities(&available_two, 4.0).await,
        "set priorities of available, limit 2",
    );
    for (name, want) in [("available", 4.0), ("expired", 4.0), ("retried", 0.0)] {
        r.ok_eq(
            seven.units[name].priority().await,
            want,
            format_args!("priority of {name}"),
        );
    }
    r.ok_eq(
        spec.delete_work_units(&available_two).await,
        2,
        "delete available, limit 2",
    );
    r.units_are(
        spec,
        ["delayed", "failed", "finished", "pending", "retried"],
        "after the limited delete",
    )
    .await;
}

/// An active attempt decides a unit's status whatever its `not_before`;
/// once the attempt is cleared or expires, `not_before` does.
pub async fn active_attempt_outranks_not_before(t: TestBackend) {
    let (r, ns) = Run::with_ns("active_attempt_outranks_not_before", t).await;
    let seven = r.seven(&ns, "spec").await;
    let spec = &seven.spec;
    let an_hour_on = WorkUnitMeta {
        not_before: Some(r.now() + Duration::hours(1)),
        ..WorkUnitMeta::default()
    };
    for name in ["finished", "failed", "pending"] {
        r.ok(
            seven.units[name].set_meta(an_hour_on).await,
            format_args!("delay {name}"),
        );
    }
    r.counts_are(
        spec,
        [
            (Available, 3),
            (Pending, 1),
            (Finished, 1),
            (Failed, 1),
            (Delayed, 1),
        ],
        "statuses kept under a future not_before",
    )
    .await;
    r.ok_eq(seven.units["finished"].status().await, Finished, "finished");
    r.ok(
        seven.units["finished"].clear_active_attempt().await,
        "clear finished",
    );
    r.ok_eq(
        seven.units["finished"].status().await,
        Delayed,
        "cleared, before its not_before",
    );
    r.ok(seven.pending.expire(None).await, "expire the pending one");
    r.ok_eq(
        seven.units["pending"].status().await,
        Delayed,
        "expired, before its not_before",
    );
    r.counts_are(
        spec,
        [(Available, 3), (Failed, 1), (Delayed, 3)],
        "after clear and expire",
    )
    .await;
    let got = r
        .request(
            &seven.worker,
            crate::model::AttemptRequest::units(10),
            "request",
        )
        .await;
    let mut got = super::unit_names_of(&got);
    got.sort();
    check_eq!(
        r,
        got,
        vec!["available", "expired", "retried"],
        "delayed units are not handed out"
    );
}
