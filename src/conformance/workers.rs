//! Worker scenarios, plus defaults, parent edge cases and list
//! clean-up on deletion.

use std::collections::BTreeSet;

use super::{at_secs, each_named, names, AttemptKey, Dead, Run, TestBackend};
use crate::api::WorkerRef;
use crate::data;
use crate::model::{AttemptRequest, DataMap, Duration, WorkUnitQuery, WorkUnitStatus};

/// The parent of `worker` must be the worker named `want`.
async fn parent_is(r: &Run, worker: &WorkerRef, want: &str, step: &str) {
    let parent = r.ok(worker.parent().await, step);
    check_eq!(
        r,
        parent.map(|p| p.name().to_string()),
        Some(want.to_string()),
        "{step}"
    );
}

/// The children of `worker` must be exactly the workers named `want`.
async fn children_are<const N: usize>(r: &Run, worker: &WorkerRef, want: [&str; N], step: &str) {
    let kids = r.ok(worker.children().await, step);
    let got: BTreeSet<String> = kids.iter().map(|w| w.name().to_string()).collect();
    check_eq!(r, got, names(want), "{step}");
}

/// The active and all-attempts lists of `worker` and the child attempts of
/// `parent` must each hold exactly the attempts of `expected`.
async fn lists_are(
    r: &Run,
    worker: &WorkerRef,
    parent: &WorkerRef,
    expected: Vec<AttemptKey>,
    step: &str,
) {
    let active = r.ok(worker.active_attempts().await, "active");
    check_eq!(r, r.keys(&active).await, expected, "active {step}");
    let all = r.ok(worker.all_attempts().await, "all");
    check_eq!(r, r.keys(&all).await, expected, "all {step}");
    let kids = r.ok(parent.child_attempts().await, "kids");
    check_eq!(r, r.keys(&kids).await, expected, "child attempts {step}");
}

/// **WorkerAncestry.** A parent lists its child; the child reports its parent.
pub async fn worker_ancestry(t: TestBackend) {
    let (r, ns) = Run::with_ns("worker_ancestry", t).await;
    let parent = r.worker(&ns, "parent").await;
    r.ok_empty(parent.parent().await, "new worker has a parent");
    r.ok_empty(parent.children().await, "new worker has children");
    let child = r.worker(&ns, "child").await;
    r.ok(child.set_parent(Some(&parent)).await, "set_parent");
    r.ok_empty(parent.parent().await, "parent got a parent");
    children_are(&r, &parent, ["child"], "parent's children").await;
    parent_is(&r, &child, "parent", "child's parent").await;
    r.ok_empty(child.children().await, "child has children");
    // A fresh handle sees the same.
    let again = r.ok(ns.worker("child").await, "lookup child");
    parent_is(&r, &again, "parent", "via lookup").await;
}

/// **WorkerAdoption.** Moving a child to another parent.
pub async fn worker_adoption(t: TestBackend) {
    let (r, ns) = Run::with_ns("worker_adoption", t).await;
    let [one, two, child] = each_named(["one", "two", "child"], |n| r.worker(&ns, n)).await;
    r.ok(child.set_parent(Some(&one)).await, "set_parent(one)");
    r.ok(child.set_parent(Some(&two)).await, "set_parent(two)");
    parent_is(&r, &child, "two", "new parent").await;
    r.ok_empty(one.children().await, "old parent keeps the child");
    children_are(&r, &two, ["child"], "new parent's children").await;
    r.ok_empty(one.parent().await, "one has a parent");
    r.ok_empty(two.parent().await, "two has a parent");
    r.ok_empty(child.children().await, "child has children");
}

/// **WorkerMetadata.** Defaults, `update` (caller's now), `deactivate`, and
/// reactivation by `update`.
pub async fn worker_metadata(t: TestBackend) {
    let (r, ns) = Run::with_ns("worker_metadata", t).await;
    r.advance_secs(42);
    let created = r.now();
    let w = r.worker(&ns, "w").await;
    check!(r, r.ok(w.active().await, "active"), "new worker inactive");
    r.ok_eq(w.mode().await, "", "mode");
    r.ok_eq(w.data().await, DataMap::new(), "data");
    r.ok_eq(w.last_update().await, created, "last_update");
    r.ok_eq(
        w.expiration().await,
        created + Duration::minutes(15),
        "expiration",
    );
    r.advance_secs(10);
    let when = at_secs(1000);
    let until = at_secs(2000);
    let d = data!({"host": "x", "n": [1, 2.5]});
    r.ok(w.update(d.clone(), when, until, "run").await, "update");
    r.ok_eq(w.data().await, d.clone(), "updated data");
    r.ok_eq(w.last_update().await, when, "caller's now");
    r.ok_eq(w.expiration().await, until, "expiration");
    r.ok_eq(w.mode().await, "run", "mode");
    check!(r, r.ok(w.active().await, "active"), "active after update");
    r.ok(w.deactivate().await, "deactivate");
    check!(
        r,
        !r.ok(w.active().await, "active"),
        "active after deactivate"
    );
    r.ok(w.update(d, when, until, "again").await, "update again");
    check!(r, r.ok(w.active().await, "active"), "update reactivates");
    // An expiration is information: passing it deactivates nothing.
    let fresh = r.worker(&ns, "fresh").await;
    r.advance(Duration::minutes(40));
    for (name, worker) in [("updated", &w), ("new", &fresh)] {
        let expiration = r.ok(worker.expiration().await, "expiration");
        check!(r, expiration < r.now(), "{name} worker's expiration passed");
        check!(
            r,
            r.ok(worker.active().await, "active"),
            "{name} worker inactive once its expiration passed"
        );
    }
    let listed = r.ok(ns.workers().await, "workers");
    check!(
        r,
        listed.contains_key("w") && listed.contains_key("fresh"),
        "expired workers listed: {:?}",
        listed.keys()
    );
}

/// **ParentKeepsState.** Setting, re-setting and clearing a parent (of
/// the worker's namespace or another) leaves the worker's active flag,
/// mode, data and times as they were.
pub async fn parent_changes_keep_worker_state(t: TestBackend) {
    let (r, ns) = Run::with_ns("parent_changes_keep_worker_state", t).await;
    let other = r.ns("parent_changes_keep_worker_state elsewhere").await;
    let [p, c] = each_named(["p", "c"], |n| r.worker(&ns, n)).await;
    let far = r.worker(&other, "far").await;
    let (when, until) = (at_secs(1000), at_secs(2000));
    let d = data!({"host": "x"});
    r.ok(c.update(d.clone(), when, until, "run").await, "update");
    for (parent, step) in [
        (Some(&p), "set_parent"),
        (Some(&p), "set_parent again"),
        (Some(&far), "cross-namespace parent"),
        (None, "set_parent(None)"),
    ] {
        r.ok(c.set_parent(parent).await, step);
        check!(r, r.ok(c.active().await, "active"), "active after {step}");
        r.ok_eq(c.mode().await, "run", step);
        r.ok_eq(c.data().await, d.clone(), step);
        r.ok_eq(c.last_update().await, when, step);
        r.ok_eq(c.expiration().await, until, step);
    }
}

/// **WorkerAttempts.** Active, all and child attempt lists of a child and
/// its parent.
pub async fn worker_attempts(t: TestBackend) {
    let (r, ns, spec, _) = Run::with_basic("worker_attempts", t, "spec").await;
    let [parent, child] = each_named(["parent", "child"], |n| r.worker(&ns, n)).await;
    r.ok(child.set_parent(Some(&parent)).await, "set_parent");
    r.units(&spec, &["a", "b"]).await;
    r.advance_secs(5);
    let first = r.request_unit(&child, "a", "first").await;
    r.ok(first.finish(None).await, "finish first");
    r.advance_secs(5);
    let second = r.request_unit(&child, "b", "second").await;
    let k1 = r.key(&first).await;
    let k2 = r.key(&second).await;
    check_eq!(
        r,
        k2,
        ("child".into(), "b".into(), "spec".into(), at_secs(10)),
        "key"
    );
    let list = |label: &'static str, res| r.ok(res, label);
    let active = list("child active", child.active_attempts().await);
    check_eq!(
        r,
        r.keys(&active).await,
        vec![k2.clone()],
        "child's active attempts"
    );
    let all = list("child all", child.all_attempts().await);
    check_eq!(
        r,
        r.keys(&all).await,
        vec![k1.clone(), k2.clone()],
        "child's all attempts"
    );
    let kids = list("child's children", child.child_attempts().await);
    check!(r, kids.is_empty(), "child has child attempts");
    check!(
        r,
        list("parent active", parent.active_attempts().await).is_empty(),
        "parent active"
    );
    check!(
        r,
        list("parent all", parent.all_attempts().await).is_empty(),
        "parent all"
    );
    let kids = list("parent child", parent.child_attempts().await);
    check_eq!(r, r.keys(&kids).await, vec![k2], "parent's child attempts");
}

/// **DeactivateChild.** Deactivating a worker with a parent succeeds; it
/// keeps its parent and can still request work.
pub async fn deactivate_child(t: TestBackend) {
    let (r, ns, spec, _) = Run::with_basic("deactivate_child", t, "spec").await;
    let [parent, child] = each_named(["parent", "child"], |n| r.worker(&ns, n)).await;
    r.ok(child.set_parent(Some(&parent)).await, "set_parent");
    r.ok(child.deactivate().await, "deactivate");
    check!(r, !r.ok(child.active().await, "active"), "still active");
    check!(
        r,
        r.ok(parent.active().await, "parent active"),
        "parent deactivated"
    );
    r.ok_eq(parent.children().await.map(|v| v.len()), 1, "still a child");
    r.unit(&spec, "u", DataMap::new()).await;
    r.request_unit(&child, "u", "inactive worker requests")
        .await;
}

/// Worker defaults and lookup: defaults from the clock at
/// creation; a second lookup changes nothing; `workers()` lists every
/// worker (parents, children, inactive) by name.
pub async fn worker_defaults(t: TestBackend) {
    let (r, ns) = Run::with_ns("worker_defaults", t).await;
    r.advance(Duration::milliseconds(1500));
    let created = r.now();
    let w = r.worker(&ns, "w").await;
    r.advance_secs(100);
    let again = r.worker(&ns, "w").await;
    check_eq!(r, again.name(), "w", "name");
    r.ok_eq(again.last_update().await, created, "lookup kept");
    r.ok_eq(
        again.expiration().await,
        created + Duration::minutes(15),
        "lookup kept expiration",
    );
    r.ok_empty(again.parent().await, "no parent");
    r.ok(
        w.update(data!({"a": 1}), r.now(), r.now(), "m").await,
        "update",
    );
    let third = r.worker(&ns, "w").await;
    r.ok_eq(third.data().await, data!({"a": 1}), "lookup keeps data");
    r.ok_eq(third.mode().await, "m", "lookup keeps mode");
    let odd = r.worker(&ns, "").await;
    r.ok(odd.deactivate().await, "deactivate");
    let c = r.worker(&ns, "\u{1}child").await;
    r.ok(c.set_parent(Some(&w)).await, "set_parent");
    let all = r.ok(ns.workers().await, "workers()");
    check_eq!(
        r,
        all.keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        names(["w", "", "\u{1}child"]),
        "workers()"
    );
    for (name, handle) in &all {
        check_eq!(r, handle.name(), name.as_str(), "listed handle name");
    }
    let other = r.ns("worker_defaults other").await;
    r.ok_empty(other.workers().await, "workers leak across namespaces");
}

/// Parent edge cases: setting the same parent twice is a no-op;
/// `None` clears; cycles and parents from another namespace are not
/// checked; a worker named `""` is set and cleared as a parent like any
/// other.
pub async fn worker_parent_edge_cases(t: TestBackend) {
    let (r, ns) = Run::with_ns("worker_parent_edge_cases", t).await;
    let [p, c] = each_named(["p", "c"], |n| r.worker(&ns, n)).await;
    r.ok(c.set_parent(Some(&p)).await, "set_parent");
    r.ok(c.set_parent(Some(&p)).await, "set_parent again");
    r.ok_eq(p.children().await.map(|v| v.len()), 1, "no duplicate child");
    r.ok(c.set_parent(None).await, "set_parent(None)");
    r.ok_empty(c.parent().await, "parent cleared");
    r.ok_empty(p.children().await, "child left");
    r.ok(c.set_parent(None).await, "clear again");
    // A two-worker cycle is allowed.
    r.ok(c.set_parent(Some(&p)).await, "c → p");
    r.ok(p.set_parent(Some(&c)).await, "p → c");
    let pp = r.ok(p.parent().await, "p.parent");
    check_eq!(
        r,
        pp.map(|w| w.name().to_string()),
        Some("c".into()),
        "cycle"
    );
    let other = r.ns("worker_parent_edge_cases elsewhere").await;
    let far = r.worker(&other, "far").await;
    check_eq!(r, c.namespace_name(), ns.name(), "c's namespace");
    check_eq!(r, far.namespace_name(), other.name(), "far's namespace");
    r.ok(c.set_parent(Some(&far)).await, "cross-namespace parent");
    children_are(&r, &far, ["c"], "cross-namespace child").await;
    let kids = r.ok(far.children().await, "far's children");
    let kid_namespaces: Vec<&str> = kids.iter().map(|k| k.namespace_name()).collect();
    check_eq!(r, kid_namespaces, vec![ns.name()], "the child's namespace");
    r.ok_empty(p.children().await, "old parent released");
    let up = r.ok(c.parent().await, "cross-namespace parent read back");
    check_eq!(
        r,
        up.as_ref().map(|w| (w.name(), w.namespace_name())),
        Some(("far", other.name())),
        "the parent is the other namespace's worker"
    );
    // The namesake in the child's own namespace is another worker.
    let near = r.worker(&ns, "far").await;
    check_eq!(
        r,
        near.namespace_name(),
        ns.name(),
        "the namesake's namespace"
    );
    r.ok_empty(near.children().await, "the namesake has no children");
    // A worker named "" is a parent like any other, and can be let go.
    let nameless = r.worker(&ns, "").await;
    r.ok(c.set_parent(Some(&nameless)).await, "the parent named \"\"");
    let up = r.ok(c.parent().await, "the parent named \"\" read back");
    check_eq!(
        r,
        up.as_ref().map(|w| (w.name(), w.namespace_name())),
        Some(("", ns.name())),
        "the parent is the worker named \"\""
    );
    children_are(&r, &nameless, ["c"], "the child of the worker named \"\"").await;
    r.ok(c.set_parent(None).await, "clear the parent named \"\"");
    r.ok_empty(c.parent().await, "the parent named \"\" cleared");
    r.ok_empty(nameless.children().await, "the worker named \"\" let go");
}

/// Deleted attempts leave every worker list, while
/// `clear_active_attempt` and supersession do not remove them.
pub async fn deleted_attempts_leave_worker_lists(t: TestBackend) {
    let (r, ns) = Run::with_ns("deleted_attempts_leave_worker_lists", t).await;
    let [s1, s2] = each_named(["s1", "s2"], |n| r.named_spec(&ns, n)).await;
    let [parent, w] = each_named(["parent", "w"], |n| r.worker(&ns, n)).await;
    r.ok(w.set_parent(Some(&parent)).await, "set_parent");
    r.units(&s1, &["a", "b"]).await;
    r.units(&s2, &["c"]).await;
    let got = r
        .request(
            &w,
            AttemptRequest {
                number_of_work_units: 5,
                work_specs: vec!["s1".into()],
                ..Default::default()
            },
            "s1",
        )
        .await;
    check_eq!(r, got.len(), 2, "two attempts from s1");
    let c = r.request_unit(&w, "c", "s2").await;
    let a_unit = r.ok(s1.work_unit("a").await, "lookup a");
    r.ok(a_unit.clear_active_attempt().await, "clear a");
    r.ok_eq(
        w.active_attempts().await.map(|v| v.len()),
        3,
        "clear keeps it listed",
    );
    r.ok_eq(
        parent.child_attempts().await.map(|v| v.len()),
        3,
        "child attempts",
    );

    r.ok(
        s1.delete_work_units(&WorkUnitQuery::names(["a"])).await,
        "delete a",
    );
    let expected = vec![r.key(&got[1]).await, r.key(&c).await];
    lists_are(&r, &w, &parent, expected, "after deleting a").await;

    r.ok(ns.destroy_work_spec("s1").await, "destroy s1");
    let only_c = vec![r.key(&c).await];
    lists_are(&r, &w, &parent, only_c, "after destroying s1").await;
    r.ok(c.finish(None).await, "finish c");
    r.ok_empty(w.active_attempts().await, "finished c listed");
    r.ok_eq(
        w.all_attempts().await.map(|v| v.len()),
        1,
        "all keeps finished c",
    );
}

/// `child_attempts` is the union of the direct children's *active*
/// lists: not grandchildren's, not the worker's own, not finished ones.
pub async fn child_attempts_scope(t: TestBackend) {
    let (r, ns, spec, _) = Run::with_basic("child_attempts_scope", t, "spec").await;
    let [top, mid, low, sibling] =
        each_named(["top", "mid", "low", "sibling"], |n| r.worker(&ns, n)).await;
    r.ok(mid.set_parent(Some(&top)).await, "mid → top");
    r.ok(sibling.set_parent(Some(&top)).await, "sibling → top");
    r.ok(low.set_parent(Some(&mid)).await, "low → mid");
    let units = r.units(&spec, &["a", "b", "c", "d", "e"]).await;
    let make = |w: &WorkerRef, i: usize| {
        let w = w.clone();
        let u = units[i].clone();
        let r = &r;
        async move { r.ok(w.make_attempt(&u, Duration::zero()).await, "make") }
    };
    let top_own = make(&top, 0).await;
    let mid_own = make(&mid, 1).await;
    let low_own = make(&low, 2).await;
    let sib_done = make(&sibling, 3).await;
    r.ok(sib_done.finish(None).await, "finish sibling's");
    let sib_own = make(&sibling, 4).await;
    let kids = r.ok(top.child_attempts().await, "top's child attempts");
    let mut expected = vec![r.key(&mid_own).await, r.key(&sib_own).await];
    expected.sort();
    check_eq!(
        r,
        r.keys(&kids).await,
        expected,
        "top: direct children's active attempts"
    );
    let kids = r.ok(mid.child_attempts().await, "mid's child attempts");
    check_eq!(r, r.keys(&kids).await, vec![r.key(&low_own).await], "mid");
    r.ok_empty(low.child_attempts().await, "low has none");
    let own = r.ok(top.active_attempts().await, "top's own");
    check_eq!(
        r,
        r.keys(&own).await,
        vec![r.key(&top_own).await],
        "top's own list"
    );
}

/// Worker lists are ordered: `active_attempts` in the order the
/// attempts were added, `all_attempts` in creation order.
pub async fn worker_list_order(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("worker_list_order", t, "spec").await;
    let units = r.units(&spec, &["c", "a", "d", "b"]).await;
    let mut made = Vec::new();
    for unit in &units {
        r.advance_secs(1);
        made.push(r.ok(worker.make_attempt(unit, Duration::zero()).await, "make"));
    }
    r.ok(made[2].finish(None).await, "finish d");
    let active = r.ok(worker.active_attempts().await, "active");
    let expected = vec![
        r.key(&made[0]).await,
        r.key(&made[1]).await,
        r.key(&made[3]).await,
    ];
    check_eq!(
        r,
        r.keys_ordered(&active).await,
        expected,
        "active list order"
    );
    let all = r.ok(worker.all_attempts().await, "all");
    let expected = r.keys_ordered(&made).await;
    check_eq!(
        r,
        r.keys_ordered(&all).await,
        expected,
        "all attempts in creation order"
    );
}

/// Destroying a namespace deletes its workers with every attempt they
/// made, on other namespaces' units too: such a unit loses the attempt from
/// its history and, if it was the active one, is Available again, whatever
/// the attempt's status. Attempts of the other namespace's own workers stay.
pub async fn namespace_destroy_takes_workers_attempts_elsewhere(t: TestBackend) {
    let (r, doomed) = Run::with_ns("namespace_destroy_takes_workers_attempts_elsewhere", t).await;
    let other = r
        .ns("namespace_destroy_takes_workers_attempts_elsewhere kept")
        .await;
    let spec = r.named_spec(&other, "s").await;
    let [pending, finished, kept] =
        each_named(["p", "f", "k"], |n| r.unit(&spec, n, DataMap::new())).await;
    let leaving = r.worker(&doomed, "leaving").await;
    let staying = r.worker(&other, "staying").await;
    let gone = r.ok(
        leaving.make_attempt(&pending, Duration::zero()).await,
        "make p",
    );
    let done = r.ok(
        leaving.make_attempt(&finished, Duration::zero()).await,
        "make f",
    );
    r.ok(done.finish(None).await, "finish f");
    let own = r.ok(
        staying.make_attempt(&kept, Duration::zero()).await,
        "make k",
    );
    r.ok(
        leaving.make_attempt(&kept, Duration::zero()).await,
        "supersede k",
    );
    r.counts_are(
        &spec,
        [(WorkUnitStatus::Pending, 2), (WorkUnitStatus::Finished, 1)],
        "before",
    )
    .await;

    r.ok(doomed.destroy().await, "destroy");
    r.gone(gone.status().await, Dead::strict(), "the pending attempt");
    r.gone(done.status().await, Dead::strict(), "the finished attempt");
    for (unit, name) in [(&pending, "p"), (&finished, "f")] {
        r.ok_eq(
            unit.status().await,
            WorkUnitStatus::Available,
            format_args!("{name} again"),
        );
        r.active_is(unit, None, format_args!("{name}'s active attempt"))
            .await;
        r.ok_eq(
            unit.num_attempts().await,
            0,
            format_args!("{name}'s history"),
        );
    }
    // "k" keeps its own worker's superseded attempt in its history only.
    r.ok_eq(
        kept.status().await,
        WorkUnitStatus::Available,
        "k without its active attempt",
    );
    let history = r.ok(kept.attempts().await, "k's history");
    check_eq!(
        r,
        r.keys(&history).await,
        vec![r.key(&own).await],
        "k keeps its worker's attempt"
    );
    let listed = r.ok(staying.active_attempts().await, "the staying worker's list");
    check_eq!(
        r,
        r.keys(&listed).await,
        vec![r.key(&own).await],
        "still listed"
    );
    r.counts_are(&spec, [(WorkUnitStatus::Available, 3)], "after")
        .await;
    let request = AttemptRequest::units(3);
    let handed = r.ok(staying.request_attempts(&request).await, "request");
    check_eq!(r, handed.len(), 3, "every unit runs again");
}

/// A worker's attempts may be on units of other namespaces: `make_attempt`
/// checks none, and a child may live in another, under its parent's name.
/// Each attempt's unit, spec and worker are then the other namespace's,
/// whatever the worker's own namespace holds under the same names, and
/// acting on the attempt changes that unit only.
pub async fn attempts_across_namespaces(t: TestBackend) {
    let (r, ns) = Run::with_ns("attempts_across_namespaces", t).await;
    let other = r.ns("attempts_across_namespaces elsewhere").await;
    let here = r.named_spec(&ns, "s").await;
    let there = r.named_spec(&other, "s").await;
    check_eq!(r, here.namespace_name(), ns.name(), "the spec's namespace");
    check_eq!(r, there.namespace_name(), other.name(), "the namesake's");
    r.unit(&here, "u", data!({ "at": "here" })).await;
    let far = r.unit(&there, "u", data!({ "at": "there" })).await;
    let far_child_unit = r.unit(&there, "v", data!({ "at": "there" })).await;
    let w = r.worker(&ns, "w").await;
    let child = r.worker(&other, "w").await;
    r.ok(
        child.set_parent(Some(&w)).await,
        "a child in the other namespace",
    );
    r.ok(w.make_attempt(&far, Duration::zero()).await, "make_attempt");
    let child_lifetime = Duration::zero();
    let made = child.make_attempt(&far_child_unit, child_lifetime).await;
    r.ok(made, "the child's make_attempt");

    let lists = [
        ("active_attempts", r.ok(w.active_attempts().await, "active")),
        ("all_attempts", r.ok(w.all_attempts().await, "all")),
        (
            "child_attempts",
            r.ok(w.child_attempts().await, "children's"),
        ),
    ];
    for (list, attempts) in &lists {
        check_eq!(r, attempts.len(), 1, "{list}: one attempt");
        let by = if *list == "child_attempts" {
            &other
        } else {
            &ns
        };
        for attempt in attempts {
            let worker = attempt.worker();
            let named = (worker.namespace_name(), worker.name());
            check_eq!(r, named, (by.name(), "w"), "{list}: its worker");
            let unit = attempt.work_unit();
            let spec = unit.work_spec();
            let at = (spec.namespace_name(), spec.name());
            check_eq!(r, at, (other.name(), "s"), "{list}: its spec");
            let data = unit.data().await;
            r.ok_eq(
                data,
                data!({ "at": "there" }),
                format_args!("{list}: its unit"),
            );
        }
    }
    let [(_, active), ..] = &lists;
    if let Some(attempt) = active.first() {
        r.ok(attempt.finish(None).await, "finish through the list");
    }
    let status = far.status().await;
    r.ok_eq(
        status,
        WorkUnitStatus::Finished,
        "the other namespace's unit",
    );
    // The worker's own namespace still answers its own spec and unit.
    let spec = r.ok(ns.work_spec("s").await, "work_spec(s) here");
    check_eq!(r, spec.namespace_name(), ns.name(), "the spec found here");
    let unit = r.ok(spec.work_unit("u").await, "work_unit(u) here");
    r.ok_eq(unit.data().await, data!({ "at": "here" }), "the unit here");
    r.ok_eq(unit.status().await, WorkUnitStatus::Available, "untouched");
}

/// A worker's child attempts follow its children: a child that moves to
/// another parent takes its active attempts there, and a child or parent
/// whose namespace is destroyed leaves the other's family.
pub async fn worker_family_follows_moves_and_destroys(t: TestBackend) {
    let (r, ns, spec, _) =
        Run::with_basic("worker_family_follows_moves_and_destroys", t, "s").await;
    let [first, second, child] =
        each_named(["first", "second", "child"], |n| r.worker(&ns, n)).await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    r.ok(child.set_parent(Some(&first)).await, "child → first");
    let attempt = r.ok(
        child.make_attempt(&unit, Duration::zero()).await,
        "make_attempt",
    );
    let held = vec![r.key(&attempt).await];
    let kids = r.ok(first.child_attempts().await, "first's child attempts");
    check_eq!(r, r.keys(&kids).await, held, "before the move");
    r.ok(child.set_parent(Some(&second)).await, "child → second");
    r.ok_empty(
        first.child_attempts().await,
        "the old parent's child attempts",
    );
    let kids = r.ok(second.child_attempts().await, "second's child attempts");
    check_eq!(r, r.keys(&kids).await, held, "after the move");

    // A child in a namespace of its own, which is then destroyed.
    let away = r.ns("worker_family_follows_moves_and_destroys away").await;
    let far_child = r.worker(&away, "far child").await;
    r.ok(
        far_child.set_parent(Some(&second)).await,
        "far child → second",
    );
    children_are(&r, &second, ["child", "far child"], "both children").await;
    r.ok(away.destroy().await, "destroy the far child's namespace");
    children_are(&r, &second, ["child"], "the far child left").await;
    let kids = r.ok(second.child_attempts().await, "after the far child left");
    check_eq!(r, r.keys(&kids).await, held, "the near child's attempt");

    // A parent in a namespace of its own, which is then destroyed.
    let above = r.ns("worker_family_follows_moves_and_destroys above").await;
    let far_parent = r.worker(&above, "far parent").await;
    r.ok(
        child.set_parent(Some(&far_parent)).await,
        "child → far parent",
    );
    r.ok(above.destroy().await, "destroy the far parent's namespace");
    r.ok_empty(
        child.parent().await,
        "the child's parent after its namespace went",
    );
    r.ok_empty(second.children().await, "second let the child go");
    r.ok_eq(
        child.active_attempts().await.map(|a| a.len()),
        1,
        "the child keeps its attempt",
    );
}
