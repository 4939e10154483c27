//! Dead handles (with the permitted variations of the module docs) and what
//! old handles do
//! after an object with the same name is re-created, under both
//! [`Identity`] rules.

use super::{Dead, Identity, Run, TestBackend};
use crate::api::AttemptRef;
use crate::data;
use crate::model::{DataMap, Duration, WorkSpecMeta, WorkUnitMeta, WorkUnitQuery};
use crate::rules::limits::{MAX_MODE_BYTES, MAX_NAME_BYTES};

/// Every namespace operation on a destroyed namespace handle.
///
/// * [`Identity::Object`]: `set_work_spec` and `worker` fail with `Gone`;
///   `work_spec` / `destroy_work_spec` with `Gone` or `NoSuchWorkSpec`;
///   `work_spec_names`, `workers`, `summarize` with `Gone` or an empty
///   result; `destroy` succeeds.
/// * [`Identity::Name`]: a namespace name always resolves (lookups create),
///   so each operation may instead act on the namespace now called so.
///
/// In both modes the destroyed contents never come back, and spec handles
/// from the destroyed namespace stay dead.
pub async fn dead_namespace_handle(t: TestBackend) {
    let r = Run::new("dead_namespace_handle", t);
    let ns = r.ns("dead").await;
    let spec = r.named_spec(&ns, "s").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    let worker = r.worker(&ns, "w").await;
    let attempt = r.ok(
        worker.make_attempt(&unit, Duration::zero()).await,
        "make_attempt",
    );
    r.ok(ns.destroy().await, "destroy");
    let listed = r.ok(r.backend().namespaces().await, "namespaces()");
    check!(
        r,
        !listed.contains_key("dead"),
        "destroyed namespace listed"
    );
    // Input over a limit, or a definition that cannot be read, is refused
    // before anything is looked at, and brings nothing back.
    r.fails(
        worker
            .update(
                DataMap::new(),
                r.now(),
                r.now(),
                &"m".repeat(MAX_MODE_BYTES + 1),
            )
            .await,
        crate::Error::ModeTooLong {
            limit: MAX_MODE_BYTES,
        },
        "update with a long mode",
    );
    r.fails(
        ns.worker(&"w".repeat(MAX_NAME_BYTES + 1)).await,
        crate::Error::NameTooLong {
            limit: MAX_NAME_BYTES,
        },
        "worker with a long name",
    );
    r.fails(
        ns.set_work_spec(data!({"name": 7})).await,
        crate::Error::BadWorkSpecName,
        "set_work_spec with a numeric name",
    );
    // A name no spec can have is found nowhere, and looked for nowhere.
    let long = "s".repeat(MAX_NAME_BYTES + 1);
    for (found, step) in [
        (ns.work_spec(&long).await.map(drop), "work_spec"),
        (ns.destroy_work_spec(&long).await, "destroy_work_spec"),
    ] {
        check!(
            r,
            matches!(
                found,
                Err(crate::Error::Gone { .. } | crate::Error::NoSuchWorkSpec { .. })
            ),
            "{step} with a long name: {found:?}"
        );
    }
    let listed = r.ok(r.backend().namespaces().await, "namespaces()");
    check!(
        r,
        !listed.contains_key("dead"),
        "a refused call re-created the namespace"
    );
    match r.identity() {
        Identity::Object => {
            r.gone(
                ns.set_work_spec(data!({"name": "s2"})).await,
                Dead::strict(),
                "set_work_spec",
            );
            r.gone(ns.work_spec("s").await, Dead::spec("s"), "work_spec");
            r.gone(
                ns.destroy_work_spec("s").await,
                Dead::spec("s"),
                "destroy_work_spec",
            );
            r.gone_or_empty(
                ns.work_spec_names().await,
                Dead::strict(),
                "work_spec_names",
            );
            r.gone(ns.worker("w2").await, Dead::strict(), "worker");
            r.gone_or_empty(ns.workers().await, Dead::strict(), "workers");
            r.gone_or_empty(ns.summarize().await, Dead::strict(), "summarize");
            let listed = r.ok(r.backend().namespaces().await, "namespaces()");
            check!(
                r,
                !listed.contains_key("dead"),
                "a dead-handle call re-created the namespace"
            );
        }
        Identity::Name => {
            // Either outcome is allowed; neither may panic or resurrect "s".
            let _ = ns.set_work_spec(data!({"name": "s2"})).await;
            let _ = ns.work_spec_names().await;
            let _ = ns.workers().await;
            let _ = ns.summarize().await;
        }
    }
    r.ok(ns.destroy().await, "destroy again");
    check_eq!(r, ns.name(), "dead", "dead namespace's name");
    r.gone(
        spec.meta(false).await,
        Dead::spec("s"),
        "spec handle of the dead namespace",
    );
    // Last: over REST, a call naming the namespace creates it again.
    attempt_is_dead(&r, &attempt, "the dead namespace's attempt").await;
    let fresh = r.ns("dead").await;
    r.fails(
        fresh.work_spec("s").await,
        crate::Error::NoSuchWorkSpec { name: "s".into() },
        "old spec in the fresh namespace",
    );
}

/// Every work spec operation on a destroyed spec's handle (the
/// same in both identity modes, as nothing is re-created): single-object
/// calls fail with `Gone` or `NoSuchWorkSpec` (a definition that cannot be
/// read with its own error first), list/count calls may answer
/// empty, priority updates may be no-ops; nothing re-creates the spec.
pub async fn dead_spec_handle(t: TestBackend) {
    let (r, ns, spec, worker) = Run::with_basic("dead_spec_handle", t, "s").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    let attempt = r.ok(
        worker.make_attempt(&unit, Duration::zero()).await,
        "make_attempt",
    );
    r.ok(ns.destroy_work_spec("s").await, "destroy_work_spec");
    attempt_is_dead(&r, &attempt, "the dead spec's attempt").await;
    r.gone(
        worker.make_attempt(&unit, Duration::zero()).await,
        Dead::unit("s", "u"),
        "make_attempt on the dead spec's unit",
    );
    let dead = Dead::spec("s");
    let all = WorkUnitQuery::all();
    r.gone(spec.data().await, dead, "data");
    r.gone(spec.set_data(data!({"name": "s"})).await, dead, "set_data");
    // Whether the name changes is a question about a spec that exists.
    r.gone(
        spec.set_data(data!({"name": "other"})).await,
        dead,
        "set_data with another name",
    );
    // Input over a limit, or a definition that cannot be read, is refused
    // with its own error before the spec is looked at.
    r.invalid_data(
        spec.set_data(data!({"name": "s", "interval": "x"})).await,
        "set_data with a bad interval",
    );
    r.fails(
        spec.set_data(data!({"priority": 1})).await,
        crate::Error::NoWorkSpecName,
        "set_data without a name",
    );
    let bad_meta = WorkSpecMeta {
        min_memory_gb: f64::NAN,
        ..WorkSpecMeta::default()
    };
    r.invalid_data(spec.set_meta(bad_meta).await, "set_meta with NaN memory");
    r.fails(
        spec.add_work_unit(
            &"x".repeat(MAX_NAME_BYTES + 1),
            DataMap::new(),
            WorkUnitMeta::default(),
        )
        .await,
        crate::Error::NameTooLong {
            limit: MAX_NAME_BYTES,
        },
        "add_work_unit with a long name",
    );
    r.fails(
        spec.set_work_unit_priorities(&all, f64::NAN).await,
        crate::Error::BadPriority,
        "set_priorities to NaN",
    );
    r.fails(
        spec.adjust_work_unit_priorities(&all, f64::INFINITY).await,
        crate::Error::BadPriority,
        "adjust_priorities by infinity",
    );
    r.gone(spec.meta(false).await, dead, "meta(false)");
    r.gone(spec.meta(true).await, dead, "meta(true)");
    r.gone(
        spec.set_meta(WorkSpecMeta::default()).await,
        dead,
        "set_meta",
    );
    r.gone(
        spec.add_work_unit("x", DataMap::new(), WorkUnitMeta::default())
            .await,
        dead,
        "add_work_unit",
    );
    r.gone(spec.work_unit("u").await, Dead::unit("s", "u"), "work_unit");
    r.gone_or_empty(spec.work_units(&all).await, dead, "work_units");
    r.gone_or_empty(
        spec.count_work_unit_status().await,
        dead,
        "count_work_unit_status",
    );
    r.gone_or_empty(
        spec.set_work_unit_priorities(&all, 1.0).await,
        dead,
        "set_priorities",
    );
    r.gone_or_empty(
        spec.adjust_work_unit_priorities(&all, 1.0).await,
        dead,
        "adjust_priorities",
    );
    r.gone_or_empty(
        spec.delete_work_units(&all).await,
        dead,
        "delete_work_units",
    );
    r.gone_or_empty(spec.summarize().await, dead, "summarize");
    r.gone(
        unit.status().await,
        Dead::unit("s", "u"),
        "unit of the dead spec",
    );
    check_eq!(r, spec.name(), "s", "dead spec's name");
    check_eq!(r, unit.name(), "u", "dead unit's name");
    check_eq!(r, unit.work_spec().name(), "s", "dead unit's spec name");
    let listed = r.ok(ns.work_spec_names().await, "names");
    check!(
        r,
        listed.is_empty(),
        "a dead-handle call re-created the spec: {listed:?}"
    );
    r.ok_empty(
        worker.all_attempts().await,
        "attempts of the dead spec still listed",
    );
}

/// Every work unit operation on a deleted unit's handle (same in
/// both identity modes): single-object calls fail with `Gone` or a
/// `NoSuch…`, `active_attempt` / `attempts` / `num_attempts` may answer
/// empty, `make_attempt` on it fails; nothing re-creates the unit and the
/// other unit is untouched.
pub async fn dead_unit_handle(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("dead_unit_handle", t, "s").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    r.unit(&spec, "v", data!({"v": 1})).await;
    r.ok(
        worker.make_attempt(&unit, Duration::zero()).await,
        "make_attempt",
    );
    let n = r.ok(
        spec.delete_work_units(&WorkUnitQuery::names(["u"])).await,
        "delete u",
    );
    check_eq!(r, n, 1, "deleted");
    let dead = Dead::unit("s", "u");
    r.gone(unit.data().await, dead, "data");
    r.gone(unit.status().await, dead, "status");
    r.gone(unit.meta().await, dead, "meta");
    r.gone(
        unit.set_meta(WorkUnitMeta::with_priority(1.0)).await,
        dead,
        "set_meta",
    );
    r.gone(unit.priority().await, dead, "priority");
    r.gone(unit.set_priority(2.0).await, dead, "set_priority");
    // Input over a limit is refused with its own error before the unit is
    // looked at.
    r.fails(
        unit.set_meta(WorkUnitMeta::with_priority(f64::NAN)).await,
        crate::Error::BadPriority,
        "set_meta with a NaN priority",
    );
    r.fails(
        unit.set_priority(f64::NEG_INFINITY).await,
        crate::Error::BadPriority,
        "set_priority to -infinity",
    );
    r.gone_or_empty(unit.active_attempt().await, dead, "active_attempt");
    r.gone(
        unit.clear_active_attempt().await,
        dead,
        "clear_active_attempt",
    );
    r.gone_or_empty(unit.attempts().await, dead, "attempts");
    r.gone_or_empty(unit.num_attempts().await, dead, "num_attempts");
    r.gone(
        worker.make_attempt(&unit, Duration::zero()).await,
        dead,
        "make_attempt",
    );
    r.units_are(&spec, ["v"], "units left").await;
    let v = r.ok(spec.work_unit("v").await, "lookup v");
    r.ok_eq(v.data().await, data!({"v": 1}), "v intact");
    r.ok_empty(worker.all_attempts().await, "deleted attempt listed");
}

/// Every attempt operation on an attempt whose unit was deleted:
/// `Gone` (or a `NoSuch…`), and the attempt leaves every worker list
/// (active, all, and the parent's child attempts). Attempts have no name,
/// so they stay dead after the unit is re-created in both identity modes,
/// and the re-created unit has no history.
pub async fn dead_attempt_handle(t: TestBackend) {
    let (r, ns, spec, worker) = Run::with_basic("dead_attempt_handle", t, "s").await;
    let parent = r.worker(&ns, "parent").await;
    r.ok(worker.set_parent(Some(&parent)).await, "set_parent");
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    let done = r.ok(worker.make_attempt(&unit, Duration::zero()).await, "make");
    r.ok(done.finish(None).await, "finish");
    let a = r.ok(worker.make_attempt(&unit, Duration::zero()).await, "make");
    let kids = r.ok(parent.child_attempts().await, "child attempts");
    check_eq!(r, kids.len(), 1, "child attempts before deletion");
    r.delete_all(&spec).await;
    let check_dead = |round: &'static str| {
        let r = &r;
        let a = a.clone();
        let done = done.clone();
        async move {
            for (name, x) in [("pending", &a), ("finished", &done)] {
                attempt_is_dead(r, x, &format!("{round}: {name} attempt")).await;
            }
        }
    };
    check_dead("after deletion").await;
    // Immutable accessors keep answering on dead handles.
    check_eq!(r, a.work_unit().name(), "u", "dead attempt's unit name");
    check_eq!(
        r,
        a.work_unit().work_spec().name(),
        "s",
        "dead attempt's spec name"
    );
    check_eq!(r, a.worker().name(), "worker", "dead attempt's worker name");
    r.ok_empty(worker.active_attempts().await, "active list");
    r.ok_empty(worker.all_attempts().await, "all list");
    r.ok_empty(parent.child_attempts().await, "child attempts");
    let fresh = r.unit(&spec, "u", DataMap::new()).await;
    check_dead("after re-creating the unit").await;
    r.ok_eq(fresh.num_attempts().await, 0, "re-created unit's history");
    r.active_is(&fresh, None, "re-created unit's active attempt")
        .await;
}

/// Every call on `attempt`, whose unit `u` of spec `s` is gone, fails with
/// `Gone` (or `NoSuch…` naming them).
async fn attempt_is_dead(r: &Run, attempt: &AttemptRef, which: &str) {
    let dead = Dead::unit("s", "u");
    let step = |op: &str| format!("{op} on {which}");
    r.gone(attempt.status().await, dead, step("status"));
    r.gone(attempt.data().await, dead, step("data"));
    r.gone(attempt.start_time().await, dead, step("start_time"));
    r.gone(attempt.end_time().await, dead, step("end_time"));
    r.gone(
        attempt.expiration_time().await,
        dead,
        step("expiration_time"),
    );
    r.gone(
        attempt.renew(Duration::minutes(1), None).await,
        dead,
        step("renew"),
    );
    r.gone(attempt.expire(None).await, dead, step("expire"));
    r.gone(attempt.finish(None).await, dead, step("finish"));
    r.gone(attempt.fail(None).await, dead, step("fail"));
    r.gone(
        attempt.retry(None, Duration::zero()).await,
        dead,
        step("retry"),
    );
}

/// A namespace handle after the name is destroyed and re-created.
///
/// * [`Identity::Object`]: the old handle stays dead (`Gone`, or the
///   permitted `NoSuch…` variations); nothing it is asked to do reaches the
///   new namespace.
/// * [`Identity::Name`]: the old handle acts on the new namespace: it lists
///   and finds the new spec, and a spec it creates is seen by a fresh
///   lookup.
///
/// Old spec handles stay dead in both modes (the new namespace has no such
/// spec).
pub async fn recreated_namespace_handle(t: TestBackend) {
    let r = Run::new("recreated_namespace_handle", t);
    let old = r.ns("re").await;
    let old_spec = r.named_spec(&old, "old").await;
    r.ok(old.destroy().await, "destroy");
    let fresh = r.ns("re").await;
    r.named_spec(&fresh, "new").await;
    match r.identity() {
        Identity::Object => {
            r.gone_or_empty(
                old.work_spec_names().await,
                Dead::strict(),
                "work_spec_names",
            );
            r.gone(
                old.work_spec("new").await,
                Dead::spec("new"),
                "work_spec(new)",
            );
            r.gone(
                old.set_work_spec(data!({"name": "x"})).await,
                Dead::strict(),
                "set_work_spec",
            );
            r.gone(old.worker("w").await, Dead::strict(), "worker");
            r.gone_or_empty(old.workers().await, Dead::strict(), "workers");
            r.gone_or_empty(old.summarize().await, Dead::strict(), "summarize");
            let names = r.ok(fresh.work_spec_names().await, "fresh names");
            check_eq!(r, names, vec!["new".to_string()], "new namespace untouched");
            r.ok_empty(
                fresh.workers().await,
                "old handle created a worker in the new namespace",
            );
        }
        Identity::Name => {
            let names = r.ok(old.work_spec_names().await, "old handle names");
            check_eq!(
                r,
                names,
                vec!["new".to_string()],
                "old handle sees the new namespace"
            );
            let spec = r.ok(old.work_spec("new").await, "old handle work_spec(new)");
            check_eq!(r, spec.name(), "new", "spec name");
            r.ok(
                old.set_work_spec(data!({"name": "x"})).await,
                "old handle set_work_spec",
            );
            let names: std::collections::BTreeSet<String> = r
                .ok(fresh.work_spec_names().await, "fresh names")
                .into_iter()
                .collect();
            check_eq!(
                r,
                names,
                super::names(["new", "x"]),
                "spec created via old handle"
            );
        }
    }
    r.gone(
        old_spec.meta(false).await,
        Dead::spec("old"),
        "old spec handle",
    );
}

/// A work spec handle after the spec is destroyed and re-created with a
/// different definition.
///
/// * [`Identity::Object`]: the old handle stays dead (`Gone` or
///   `NoSuchWorkSpec`): it neither reads the new definition nor adds units
///   to the new spec.
/// * [`Identity::Name`]: the old handle reads the new definition and adds
///   units to the new spec.
///
/// Old unit handles stay dead in both modes (the new spec has no units).
pub async fn recreated_spec_handle(t: TestBackend) {
    let (r, ns) = Run::with_ns("recreated_spec_handle", t).await;
    let old = r.spec(&ns, data!({"name": "s", "v": 1})).await;
    let old_unit = r.unit(&old, "u", DataMap::new()).await;
    r.ok(ns.destroy_work_spec("s").await, "destroy");
    let def = data!({"name": "s", "v": 2, "min_gb": 0.1, "priority": 4});
    let fresh = r.spec(&ns, def.clone()).await;
    match r.identity() {
        Identity::Object => {
            r.gone(old.data().await, Dead::spec("s"), "data");
            r.gone(old.meta(false).await, Dead::spec("s"), "meta");
            r.gone(
                old.add_work_unit("x", DataMap::new(), WorkUnitMeta::default())
                    .await,
                Dead::spec("s"),
                "add_work_unit",
            );
            r.gone(
                old.set_data(data!({"name": "s", "v": 3})).await,
                Dead::spec("s"),
                "set_data",
            );
            check!(
                r,
                r.unit_names(&fresh, "fresh").await.is_empty(),
                "old handle added a unit"
            );
            r.ok_eq(fresh.data().await, def, "new definition untouched");
        }
        Identity::Name => {
            r.ok_eq(old.data().await, def, "old handle reads the new spec");
            r.ok_eq(old.meta(false).await.map(|v| v.priority), 4, "new meta");
            r.ok(
                old.add_work_unit("x", DataMap::new(), WorkUnitMeta::default())
                    .await,
                "add",
            );
            r.units_are(&fresh, ["x"], "unit added").await;
            r.fails(
                old.work_unit("u").await,
                crate::Error::NoSuchWorkUnit { name: "u".into() },
                "old unit name in the new spec",
            );
        }
    }
    r.gone(
        old_unit.status().await,
        Dead::unit("s", "u"),
        "old unit handle",
    );
}

/// A work unit handle after the unit is deleted and re-added.
///
/// * [`Identity::Object`]: the old handle stays dead (`Gone` or a
///   `NoSuch…`), and `make_attempt` with it fails; the new unit has no
///   attempts.
/// * [`Identity::Name`]: the old handle reads the new unit (new data, no
///   history) and `make_attempt` with it works on the new unit.
///
/// The old unit's attempt stays dead in both modes.
pub async fn recreated_unit_handle(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("recreated_unit_handle", t, "s").await;
    let old = r.unit(&spec, "u", data!({"v": 1})).await;
    let a = r.ok(worker.make_attempt(&old, Duration::zero()).await, "make");
    r.ok(a.finish(None).await, "finish");
    r.ok(
        spec.delete_work_units(&WorkUnitQuery::names(["u"])).await,
        "delete",
    );
    let fresh = r.unit(&spec, "u", data!({"v": 2})).await;
    let dead = Dead::unit("s", "u");
    match r.identity() {
        Identity::Object => {
            r.gone(old.data().await, dead, "data");
            r.gone(old.status().await, dead, "status");
            r.gone(old.set_priority(9.0).await, dead, "set_priority");
            r.gone(
                worker.make_attempt(&old, Duration::zero()).await,
                dead,
                "make_attempt",
            );
            r.ok_eq(fresh.num_attempts().await, 0, "new unit untouched");
            r.ok_eq(fresh.priority().await, 0.0, "new priority");
        }
        Identity::Name => {
            r.ok_eq(old.data().await, data!({"v": 2}), "old reads new");
            r.ok_eq(old.num_attempts().await, 0, "no history");
            r.ok(old.set_priority(9.0).await, "set_priority");
            r.ok_eq(fresh.priority().await, 9.0, "priority via old");
            r.ok(
                worker.make_attempt(&old, Duration::zero()).await,
                "make_attempt",
            );
            r.ok_eq(fresh.num_attempts().await, 1, "attempt on the new unit");
        }
    }
    r.gone(a.status().await, dead, "old attempt");
    r.ok_eq(fresh.data().await, data!({"v": 2}), "new unit's data");
}

/// Handles a backend gives out other than by a lookup — a unit's spec, an
/// attempt's unit and worker, a worker's parent and children, the members
/// of a list — act on their objects as looked-up handles do, for calls that
/// can fail as well as for names.
pub async fn handles_given_out_act_on_their_objects(t: TestBackend) {
    let (r, ns, spec, parent) =
        Run::with_basic("handles_given_out_act_on_their_objects", t, "spec").await;
    let child = r.worker(&ns, "child").await;
    r.ok(child.set_parent(Some(&parent)).await, "set_parent");
    r.unit(&spec, "u", data!({"k": 1})).await;
    let got = r
        .request(&child, crate::model::AttemptRequest::default(), "request")
        .await;
    let Some(attempt) = got.first() else {
        panic!("[{}] request: no attempt", r.name)
    };
    let held = vec![r.key(attempt).await];

    let unit = attempt.work_unit();
    r.ok_eq(unit.data().await, data!({"k": 1}), "the attempt's unit");
    r.ok_eq(
        unit.work_spec().meta(true).await.map(|m| m.pending_count),
        1,
        "the unit's spec",
    );
    let theirs = r.ok(
        attempt.worker().active_attempts().await,
        "the attempt's worker",
    );
    check_eq!(
        r,
        r.keys(&theirs).await,
        held,
        "the attempt's worker's list"
    );
    let up = r.ok(child.parent().await, "parent");
    let Some(up) = up else {
        panic!("[{}] the child has no parent", r.name)
    };
    let kids = r.ok(up.child_attempts().await, "the parent given out");
    check_eq!(r, r.keys(&kids).await, held, "the parent's child attempts");
    let below = r.ok(parent.children().await, "children");
    check_eq!(r, below.len(), 1, "one child");
    let theirs = r.ok(below[0].active_attempts().await, "the child given out");
    check_eq!(r, r.keys(&theirs).await, held, "the child's list");

    let listed = r.ok(r.backend().namespaces().await, "namespaces");
    let Some(listed_ns) = listed.get(ns.name()) else {
        panic!("[{}] the namespace is not listed", r.name)
    };
    r.ok_eq(
        listed_ns.work_spec_names().await,
        vec!["spec".to_string()],
        "the namespace listed",
    );
    let workers = r.ok(ns.workers().await, "workers");
    let Some(listed_child) = workers.get("child") else {
        panic!("[{}] the child is not listed", r.name)
    };
    let theirs = r.ok(listed_child.active_attempts().await, "the worker listed");
    check_eq!(r, r.keys(&theirs).await, held, "the listed worker's list");
    let units = r.ok(spec.work_units(&WorkUnitQuery::all()).await, "work_units");
    let Some(listed_unit) = units.get("u") else {
        panic!("[{}] the unit is not listed", r.name)
    };
    r.ok_eq(
        listed_unit.status().await,
        crate::model::WorkUnitStatus::Pending,
        "the unit listed",
    );
    let all = r.ok(child.all_attempts().await, "all_attempts");
    check_eq!(r, all.len(), 1, "one attempt");
    r.ok(
        all[0].finish(None).await,
        "finish through the attempt listed",
    );
    r.ok_eq(
        attempt.status().await,
        crate::model::AttemptStatus::Finished,
        "the attempt handed out, finished",
    );
}
