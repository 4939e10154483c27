//! Chaining scenarios: the units a finished attempt's `output` adds to the
//! spec named by `then`, and the outputs that are skipped.

use super::{names, Run, TestBackend};
use crate::data;
use crate::model::{AttemptStatus, DataMap, Duration, WorkUnitMeta, WorkUnitStatus};

use AttemptStatus as A;
use WorkUnitStatus as U;

/// **WorkUnitChaining.** `output` as nothing, a map, a list, and from the
/// unit's own creation data.
pub async fn work_unit_chaining(t: TestBackend) {
    let r = Run::new("work_unit_chaining", t);
    let (_ns, a, b, worker) = r.chain_fixture("work_unit_chaining").await;
    let steps: [(&str, DataMap, Option<DataMap>, Vec<&str>); 4] = [
        ("a1", DataMap::new(), None, vec![]),
        (
            "a2",
            DataMap::new(),
            Some(data!({"output": {"b1": {"k": "v"}}})),
            vec!["b1"],
        ),
        (
            "a3",
            DataMap::new(),
            Some(data!({"output": ["b2", "b3"]})),
            vec!["b1", "b2", "b3"],
        ),
        (
            "a4",
            data!({"output": ["b4"]}),
            None,
            vec!["b1", "b2", "b3", "b4"],
        ),
    ];
    for (unit, unit_data, finish_data, expected) in steps {
        r.unit(&a, unit, unit_data).await;
        r.advance_secs(5);
        let attempt = r
            .request_unit(&worker, unit, format_args!("request {unit}"))
            .await;
        r.ok(
            attempt.finish(finish_data).await,
            format_args!("finish {unit}"),
        );
        let got = r
            .unit_names(&b, format_args!("units of b after {unit}"))
            .await;
        check_eq!(r, got, names(expected), "units of b after {unit}");
    }
    let b1 = r.ok(b.work_unit("b1").await, "lookup b1");
    r.ok_eq(b1.data().await, data!({"k": "v"}), "b1 data");
    let b2 = r.ok(b.work_unit("b2").await, "lookup b2");
    r.ok_eq(b2.data().await, DataMap::new(), "b2 data");
    r.ok_eq(b2.status().await, U::Available, "b2 available");
}

/// **ChainingMixed.** A plain name and an array item for the same name:
/// the later item wins (data and float priority).
pub async fn chaining_mixed(t: TestBackend) {
    let r = Run::new("chaining_mixed", t);
    let (_ns, a, b, worker) = r.chain_fixture("chaining_mixed").await;
    r.unit(&a, "a", DataMap::new()).await;
    let attempt = r.request_unit(&worker, "a", "request").await;
    let output =
        data!({"output": ["x", ["x", {"d": 1}, {"priority": 2.5}], ["y", null, null, 7.5]]});
    r.ok(attempt.finish(Some(output)).await, "finish");
    let x = r.ok(b.work_unit("x").await, "lookup x");
    r.ok_eq(x.data().await, data!({"d": 1}), "x data");
    r.ok_eq(x.priority().await, 2.5, "x priority");
    let y = r.ok(b.work_unit("y").await, "lookup y");
    r.ok_eq(y.data().await, DataMap::new(), "y data");
    r.ok_eq(y.priority().await, 7.5, "y priority");
}

/// **ChainingTwoStep.** Output placed by `renew` chains on a data-less
/// finish; control-character names and integer option priorities work.
pub async fn chaining_two_step(t: TestBackend) {
    let r = Run::new("chaining_two_step", t);
    let (_ns, a, b, worker) = r.chain_fixture("chaining_two_step").await;
    r.unit(&a, "a", DataMap::new()).await;
    let attempt = r.request_unit(&worker, "a", "request").await;
    let name = "\u{1}\u{2}";
    let renewed = data!({"output": [name, [name, {}, {"priority": 7}]]});
    r.ok(
        attempt.renew(Duration::minutes(5), Some(renewed)).await,
        "renew",
    );
    r.ok(attempt.finish(None).await, "finish");
    r.units_are(&b, [name], "units of b").await;
    let unit = r.ok(b.work_unit(name).await, "lookup");
    r.ok_eq(unit.data().await, DataMap::new(), "data");
    r.ok_eq(unit.priority().await, 7.0, "priority");
}

/// **ChainingExpiry.** A finishing attempt that is no longer active does
/// not chain (but `finish` succeeds).
pub async fn chaining_expiry(t: TestBackend) {
    let r = Run::new("chaining_expiry", t);
    let (_ns, a, b, worker) = r.chain_fixture("chaining_expiry").await;
    let unit = r.unit(&a, "a", DataMap::new()).await;
    let first = r.request_unit(&worker, "a", "first request").await;
    r.ok(unit.clear_active_attempt().await, "clear");
    r.advance_secs(5);
    let second = r.request_unit(&worker, "a", "second request").await;
    r.ok(
        first.finish(Some(data!({"output": ["b"]}))).await,
        "finish first",
    );
    check!(
        r,
        r.unit_names(&b, "units of b").await.is_empty(),
        "inactive attempt chained"
    );
    r.ok_eq(unit.status().await, U::Pending, "unit still pending");
    r.active_is(&unit, Some(&second), "second still active")
        .await;
}

/// **ChainingDuplicate.** Chaining to an already finished unit makes it
/// available again.
pub async fn chaining_duplicate(t: TestBackend) {
    let (r, ns) = Run::with_ns("chaining_duplicate", t).await;
    let a = r
        .spec(&ns, data!({"name": "a", "then": "b", "priority": 0}))
        .await;
    r.spec(&ns, data!({"name": "b", "priority": 10})).await;
    let worker = r.worker(&ns, "worker").await;
    r.units(&a, &["a1", "a2"]).await;
    let output = data!({"output": ["b"]});
    r.advance_secs(5);
    let x = r.request_unit(&worker, "a1", "first").await;
    r.ok(x.finish(Some(output.clone())).await, "finish a1");
    r.advance_secs(5);
    let x = r.request_unit(&worker, "b", "second").await;
    r.ok(x.finish(None).await, "finish b");
    r.advance_secs(5);
    let x = r.request_unit(&worker, "a2", "third").await;
    r.ok(x.finish(Some(output)).await, "finish a2");
    r.advance_secs(5);
    let x = r.request_unit(&worker, "b", "fourth").await;
    r.ok(x.finish(None).await, "finish b again");
    r.request_none(&worker, "fifth").await;
}

/// Chaining edge cases: a `then` naming a missing spec, or a spec in
/// another namespace, creates nothing and `finish` still succeeds.
pub async fn chaining_missing_next_spec(t: TestBackend) {
    let (r, ns) = Run::with_ns("chaining_missing_next_spec", t).await;
    let elsewhere = r.ns("elsewhere").await;
    let other = r.named_spec(&elsewhere, "missing").await;
    let a = r.spec(&ns, data!({"name": "a", "then": "missing"})).await;
    let worker = r.worker(&ns, "worker").await;
    let unit = r.unit(&a, "u", DataMap::new()).await;
    let attempt = r.request_unit(&worker, "u", "request").await;
    r.ok(
        attempt.finish(Some(data!({"output": ["x"]}))).await,
        "finish",
    );
    r.ok_eq(unit.status().await, U::Finished, "unit finished");
    let listed = r.ok(ns.work_spec_names().await, "names");
    check_eq!(r, listed, vec!["a".to_string()], "no spec created");
    check!(
        r,
        r.unit_names(&other, "other ns").await.is_empty(),
        "chained across namespaces"
    );
    r.units_are(&a, ["u"], "nothing added to a").await;
}

/// Chaining ignores `outputs` (plural), scalar `output`, a map with a
/// non-object value (whole map rejected), and skips bad array items.
pub async fn chaining_ignored_outputs(t: TestBackend) {
    let r = Run::new("chaining_ignored_outputs", t);
    let (_ns, a, b, worker) = r.chain_fixture("chaining_ignored_outputs").await;
    let cases = [
        data!({"outputs": ["x"]}),
        data!({"output": "x"}),
        data!({"output": 3}),
        data!({"output": true}),
        data!({"output": null}),
        data!({"output": {"x": {}, "y": 5}}),
        data!({"output": {}}),
        data!({"output": [["one"], {"k": "v"}, ["bad", {}, {}, 7], [5, {}], ["d", 5]]}),
    ];
    for (i, finish) in cases.into_iter().enumerate() {
        let name = format!("a{i}");
        r.unit(&a, &name, DataMap::new()).await;
        r.advance_secs(5);
        let attempt = r
            .request_unit(&worker, &name, format_args!("request {name}"))
            .await;
        let step = format!("finish with {finish:?}");
        r.ok(attempt.finish(Some(finish)).await, &step);
        check!(
            r,
            r.unit_names(&b, &step).await.is_empty(),
            "{step}: created units"
        );
    }
    r.unit(&a, "last", DataMap::new()).await;
    let attempt = r.request_unit(&worker, "last", "request last").await;
    let mixed = data!({"output": [["eta"], "ok", ["zeta", {}, {}, 7]]});
    r.ok(attempt.finish(Some(mixed)).await, "finish with mixed items");
    r.units_are(&b, ["ok"], "good item kept").await;
}

/// Chaining onto a Pending unit replaces its data and meta but keeps its
/// attempt; onto a Failed unit makes it Available again.
pub async fn chaining_pending_target(t: TestBackend) {
    let r = Run::new("chaining_pending_target", t);
    let (_ns, a, b, worker) = r.chain_fixture("chaining_pending_target").await;
    let busy = r.unit(&b, "busy", DataMap::new()).await;
    let broken = r.unit(&b, "broken", DataMap::new()).await;
    let running = r.ok(worker.make_attempt(&busy, Duration::zero()).await, "make");
    let failed = r.ok(worker.make_attempt(&broken, Duration::zero()).await, "make");
    r.ok(failed.fail(None).await, "fail");
    r.unit(&a, "a", DataMap::new()).await;
    let attempt = r.request_unit(&worker, "a", "request").await;
    let output = data!({"output": {"busy": {"v": 1}, "broken": {"v": 2}}});
    r.ok(attempt.finish(Some(output)).await, "finish");
    r.ok_eq(busy.status().await, U::Pending, "busy stays pending");
    r.active_is(&busy, Some(&running), "busy's attempt kept")
        .await;
    r.ok_eq(broken.status().await, U::Available, "broken re-armed");
    r.ok_eq(broken.data().await, data!({"v": 2}), "broken's new data");
    r.ok_eq(failed.status().await, A::Failed, "old attempt kept");
    r.ok(busy.clear_active_attempt().await, "clear busy");
    r.ok_eq(busy.data().await, data!({"v": 1}), "busy's new own data");
}

/// Parsing output items: a null name is the empty name and
/// null data is empty data; a `delay` that truncates to zero or below
/// (0.9, 0, -30, -30.5) leaves `not_before` unset; other option keys are
/// ignored; a non-numeric `delay` or `priority` (null included), options
/// that are not an object, or data that is not an object make the item
/// invalid, and only it is skipped. In an object output a null value is
/// empty data.
pub async fn chaining_item_rules(t: TestBackend) {
    let r = Run::new("chaining_item_rules", t);
    let (_ns, a, b, worker) = r.chain_fixture("chaining_item_rules").await;
    r.advance_secs(100);
    r.unit(&a, "list", DataMap::new()).await;
    let attempt = r.request_unit(&worker, "list", "request list").await;
    let output = data!({"output": [
        [null, {"k": 1}],
        ["null-data", null],
        ["null-options", {"k": 2}, null],
        ["other-keys", {}, {"colour": "red"}],
        ["delay-0.9", {}, {"delay": 0.9}],
        ["delay-0", {}, {"delay": 0}],
        ["delay-minus-30", {}, {"delay": -30}],
        ["delay-minus-30.5", {}, {"delay": -30.5}],
        ["delay-text", {}, {"delay": "5"}],
        ["delay-null", {}, {"delay": null}],
        ["priority-text", {}, {"priority": "5"}],
        ["priority-bool", {}, {"priority": true}],
        ["options-list", {}, [{"priority": 1}]],
        ["options-text", {}, "fast"],
        ["options-number", {}, 3],
        ["data-list", []],
    ]});
    r.ok(attempt.finish(Some(output)).await, "finish list");
    let valid = [
        ("", data!({"k": 1})),
        ("null-data", DataMap::new()),
        ("null-options", data!({"k": 2})),
        ("other-keys", DataMap::new()),
        ("delay-0.9", DataMap::new()),
        ("delay-0", DataMap::new()),
        ("delay-minus-30", DataMap::new()),
        ("delay-minus-30.5", DataMap::new()),
    ];
    r.units_are(&b, valid.clone().map(|(name, _)| name), "valid items")
        .await;
    for (name, want) in valid {
        let unit = r.ok(b.work_unit(name).await, format_args!("lookup {name:?}"));
        r.ok_eq(unit.data().await, want, format_args!("data of {name:?}"));
        r.ok_eq(
            unit.meta().await,
            WorkUnitMeta::default(),
            format_args!("meta of {name:?}"),
        );
        r.ok_eq(unit.status().await, U::Available, format_args!("{name:?}"));
    }

    r.unit(&a, "map", DataMap::new()).await;
    let attempt = r.request_unit(&worker, "map", "request map").await;
    let output = data!({"output": {"map-null": null, "map-object": {"x": 1}}});
    r.ok(attempt.finish(Some(output)).await, "finish map");
    let null = r.ok(b.work_unit("map-null").await, "lookup map-null");
    r.ok_eq(
        null.data().await,
        DataMap::new(),
        "null value is empty data",
    );
    let object = r.ok(b.work_unit("map-object").await, "lookup map-object");
    r.ok_eq(object.data().await, data!({"x": 1}), "object value");

    // The fourth element overrides the options' priority unless null, and
    // elements past it are ignored.
    r.unit(&a, "fourth", DataMap::new()).await;
    let attempt = r.request_unit(&worker, "fourth", "request fourth").await;
    let output = data!({"output": [
        ["overridden", {}, {"priority": 1}, 7.5],
        ["null-fourth", {}, {"priority": 3}, null],
        ["past-fourth", {}, null, 2.5, "junk", 9],
    ]});
    r.ok(attempt.finish(Some(output)).await, "finish fourth");
    for (name, priority) in [
        ("overridden", 7.5),
        ("null-fourth", 3.0),
        ("past-fourth", 2.5),
    ] {
        let unit = r.ok(b.work_unit(name).await, format_args!("lookup {name}"));
        r.ok_eq(
            unit.priority().await,
            priority,
            format_args!("priority of {name}"),
        );
    }
}

/// `finish` is allowed from Failed and then chains, as the attempt
/// is still its unit's active attempt, from the data the finish leaves:
/// the failing data when the finish gives none. `fail` itself never
/// chains.
pub async fn chaining_after_fail(t: TestBackend) {
    let r = Run::new("chaining_after_fail", t);
    let (_ns, a, b, worker) = r.chain_fixture("chaining_after_fail").await;
    let first = r.unit(&a, "first", DataMap::new()).await;
    let attempt = r.request_unit(&worker, "first", "request first").await;
    let failing = data!({"output": ["from-fail"]});
    r.ok(
        attempt.fail(Some(failing.clone())).await,
        "fail with output",
    );
    r.units_are(&b, [], "after fail").await;
    r.ok(attempt.finish(None).await, "finish the failed attempt");
    r.units_are(&b, ["from-fail"], "after finishing with no data")
        .await;
    r.ok_eq(first.status().await, U::Finished, "first finished");
    r.ok_eq(first.data().await, failing, "first's visible data");

    let second = r.unit(&a, "second", DataMap::new()).await;
    r.advance_secs(5);
    let attempt = r.request_unit(&worker, "second", "request second").await;
    r.ok(attempt.fail(None).await, "fail without data");
    let finishing = data!({"output": ["from-finish"]});
    r.ok(
        attempt.finish(Some(finishing.clone())).await,
        "finish with output",
    );
    r.units_are(
        &b,
        ["from-fail", "from-finish"],
        "after finishing with data",
    )
    .await;
    r.ok_eq(second.data().await, finishing, "second's visible data");
}

/// An attempt superseded by `make_attempt` does not chain when it
/// finishes, whether it was Failed or still Pending; the
/// attempt that superseded them does.
pub async fn chaining_superseded(t: TestBackend) {
    let r = Run::new("chaining_superseded", t);
    let (ns, a, b, worker) = r.chain_fixture("chaining_superseded").await;
    let other = r.worker(&ns, "other").await;
    let unit = r.unit(&a, "u", DataMap::new()).await;
    let failed = r.request_unit(&worker, "u", "request").await;
    r.ok(failed.fail(None).await, "fail the first attempt");
    r.advance_secs(5);
    let pending = r.ok(
        other.make_attempt(&unit, Duration::zero()).await,
        "make_attempt supersedes the failed attempt",
    );
    r.ok(
        failed
            .finish(Some(data!({"output": ["from-failed"]})))
            .await,
        "finish the superseded failed attempt",
    );
    r.ok_eq(failed.status().await, A::Finished, "superseded failed one");
    r.units_are(&b, [], "after the superseded failed attempt")
        .await;
    r.advance_secs(5);
    let last = r.ok(
        worker.make_attempt(&unit, Duration::zero()).await,
        "make_attempt supersedes the pending attempt",
    );
    r.ok(
        pending
            .finish(Some(data!({"output": ["from-pending"]})))
            .await,
        "finish the superseded pending attempt",
    );
    r.units_are(&b, [], "after the superseded pending attempt")
        .await;
    r.ok_eq(unit.status().await, U::Pending, "unit still pending");
    r.active_is(&unit, Some(&last), "the last attempt still active")
        .await;
    r.ok(
        last.finish(Some(data!({"output": ["from-active"]}))).await,
        "finish the active attempt",
    );
    r.units_are(&b, ["from-active"], "after the active attempt")
        .await;
}

/// A failed attempt whose unit is added again (which clears the unit's
/// active attempt) does not chain when it is then finished: it is no
/// longer its unit's active attempt, and the re-added unit keeps its new
/// data, its delay and no active attempt.
pub async fn chaining_after_readd(t: TestBackend) {
    let r = Run::new("chaining_after_readd", t);
    let (_ns, a, b, worker) = r.chain_fixture("chaining_after_readd").await;
    r.unit(&a, "u", DataMap::new()).await;
    let failed = r.request_unit(&worker, "u", "request").await;
    r.ok(failed.fail(None).await, "fail");
    let delayed = WorkUnitMeta {
        priority: 0.0,
        not_before: Some(r.now() + Duration::seconds(100)),
    };
    let unit = r.unit_meta(&a, "u", data!({"k": 2}), delayed).await;
    r.active_is(&unit, None, "after the re-add").await;
    r.ok_eq(
        failed.status().await,
        A::Failed,
        "the attempt after the re-add",
    );
    r.ok(
        failed.finish(Some(data!({"output": ["x"]}))).await,
        "finish the failed attempt",
    );
    r.ok_eq(failed.status().await, A::Finished, "the finished attempt");
    r.units_are(&b, [], "after the finish").await;
    r.ok_eq(unit.status().await, U::Delayed, "the re-added unit");
    r.ok_eq(
        unit.data().await,
        data!({"k": 2}),
        "the re-added unit's data",
    );
    r.active_is(&unit, None, "after the finish").await;
}

/// Chaining onto an existing unit replaces its meta whole: the map form
/// and a bare list item give priority 0 and no `not_before`; a list item's
/// options give what they say, and nothing of the old meta is kept.
pub async fn chaining_replaces_meta(t: TestBackend) {
    let r = Run::new("chaining_replaces_meta", t);
    let (_ns, a, b, worker) = r.chain_fixture("chaining_replaces_meta").await;
    let old = WorkUnitMeta {
        priority: 5.0,
        not_before: Some(r.now() + Duration::hours(1)),
    };
    let outputs = [
        data!({"output": {"t": {"v": 1}}}),
        data!({"output": ["t"]}),
        data!({"output": [["t", {}, {"delay": 30}]]}),
        data!({"output": [["t", {}, {"priority": 2}]]}),
    ];
    for (round, output) in outputs.into_iter().enumerate() {
        let target = r.unit_meta(&b, "t", DataMap::new(), old).await;
        r.ok_eq(target.status().await, U::Delayed, "target delayed");
        let source = format!("s{round}");
        r.unit(&a, &source, DataMap::new()).await;
        let attempt = r.request_unit(&worker, &source, "request").await;
        r.ok(attempt.finish(Some(output)).await, "finish");
        let want = match round {
            2 => WorkUnitMeta {
                priority: 0.0,
                not_before: Some(r.now() + Duration::seconds(30)),
            },
            3 => WorkUnitMeta::with_priority(2.0),
            _ => WorkUnitMeta::default(),
        };
        r.ok_eq(
            target.meta().await,
            want,
            format_args!("round {round}: meta"),
        );
        let status = if round == 2 { U::Delayed } else { U::Available };
        r.ok_eq(
            target.status().await,
            status,
            format_args!("round {round}: status"),
        );
    }
}

/// Chaining reads the data given to `finish` when there is some, even
/// without an `output`: the unit's creation data or a renew's data then
/// chain nothing.
pub async fn chaining_from_the_data_given(t: TestBackend) {
    let r = Run::new("chaining_from_the_data_given", t);
    let (_ns, a, b, worker) = r.chain_fixture("chaining_from_the_data_given").await;
    r.unit(&a, "u1", data!({"output": ["from-unit"]})).await;
    let attempt = r.request_unit(&worker, "u1", "request u1").await;
    r.ok(
        attempt.finish(Some(data!({"result": 1}))).await,
        "finish u1 with data of no output",
    );
    r.units_are(&b, [], "nothing from u1's creation data").await;
    let u1 = r.ok(a.work_unit("u1").await, "lookup u1");
    r.ok_eq(
        u1.data().await,
        data!({"result": 1}),
        "u1 shows the data given",
    );
    for (unit, finish, expected) in [
        ("u2", DataMap::new(), vec![]),
        (
            "u3",
            data!({"output": ["from-finish"]}),
            vec!["from-finish"],
        ),
    ] {
        r.unit(&a, unit, DataMap::new()).await;
        let attempt = r
            .request_unit(&worker, unit, format_args!("request {unit}"))
            .await;
        r.ok(
            attempt
                .renew(
                    Duration::minutes(5),
                    Some(data!({"output": ["from-renew"]})),
                )
                .await,
            format_args!("renew {unit} with an output"),
        );
        r.ok(
            attempt.finish(Some(finish)).await,
            format_args!("finish {unit}"),
        );
        let got = r
            .unit_names(&b, format_args!("units of b after {unit}"))
            .await;
        check_eq!(r, got, names(expected), "units of b after {unit}");
    }
}

/// A spec whose `then` names itself chains into itself: a finished unit an
/// output names again runs again with the output's data.
pub async fn chaining_into_its_own_spec(t: TestBackend) {
    let (r, ns) = Run::with_ns("chaining_into_its_own_spec", t).await;
    let spec = r.spec(&ns, data!({"name": "loop", "then": "loop"})).await;
    let worker = r.worker(&ns, "worker").await;
    let u = r.unit(&spec, "u", data!({"n": 1})).await;
    let attempt = r.request_unit(&worker, "u", "request u").await;
    r.ok(
        attempt
            .finish(Some(data!({"output": {"u": {"n": 2}, "v": null}})))
            .await,
        "finish u naming itself and v",
    );
    r.ok_eq(u.status().await, U::Available, "u runs again");
    r.ok_eq(u.data().await, data!({"n": 2}), "with the output's data");
    r.active_is(&u, None, "no active attempt").await;
    r.ok_eq(
        attempt.status().await,
        A::Finished,
        "the finished attempt stays",
    );
    r.ok_eq(u.num_attempts().await, 1, "u's tries");
    r.units_are(&spec, ["u", "v"], "v added").await;
    r.drain(&worker, &["u", "v"], "drain").await;
}
