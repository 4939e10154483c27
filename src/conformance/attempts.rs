//! Attempt scenarios, plus chaining edge cases, retry limits and
//! lazy expiry.

use super::{at_secs, names, Dead, Run, TestBackend};
use crate::api::{NamespaceRef, WorkSpecRef, WorkerRef};
use crate::data;
use crate::error::Error;
use crate::model::{
    AttemptRequest, AttemptStatus, DataMap, Duration, WorkUnitMeta, WorkUnitQuery, WorkUnitStatus,
};

/// **AttemptLifetime.** A unit and its attempt through request, finish with
/// list-valued data and `clear_active_attempt`.
pub async fn attempt_lifetime(t: TestBackend) {
    let r = Run::new("attempt_lifetime", t);
    let (_ns, spec, worker) = r.basic("attempt_lifetime", "spec").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    check_eq!(
        r,
        r.unit_status(&unit).await,
        WorkUnitStatus::Available,
        "initial status"
    );
    check_eq!(
        r,
        r.ok(unit.data().await, "data"),
        DataMap::new(),
        "initial data"
    );
    r.advance_secs(5);
    let a = r.request_unit(&worker, "u", "request").await;
    let key = r.key(&a).await;
    check_eq!(
        r,
        r.unit_status(&unit).await,
        WorkUnitStatus::Pending,
        "unit pending"
    );
    check_eq!(
        r,
        r.attempt_status(&a).await,
        AttemptStatus::Pending,
        "attempt pending"
    );
    check_eq!(
        r,
        r.active_key(&unit).await,
        Some(key.clone()),
        "unit's active attempt"
    );
    let active = r.ok(worker.active_attempts().await, "worker active");
    check_eq!(
        r,
        r.keys(&active).await,
        vec![key.clone()],
        "worker's active attempts"
    );
    check_eq!(
        r,
        r.ok(unit.data().await, "data"),
        DataMap::new(),
        "data while pending"
    );

    let result = data!({"outputs": ["not", "chained"], "n": 1});
    r.ok(a.finish(Some(result.clone())).await, "finish");
    check_eq!(
        r,
        r.unit_status(&unit).await,
        WorkUnitStatus::Finished,
        "unit finished"
    );
    check_eq!(
        r,
        r.attempt_status(&a).await,
        AttemptStatus::Finished,
        "attempt finished"
    );
    check_eq!(
        r,
        r.active_key(&unit).await,
        Some(key.clone()),
        "still active"
    );
    let active = r.ok(worker.active_attempts().await, "worker active");
    check!(
        r,
        active.is_empty(),
        "worker active list not empty after finish"
    );
    let history = r.ok(unit.attempts().await, "unit attempts");
    check_eq!(r, r.keys(&history).await, vec![key.clone()], "unit history");
    let all = r.ok(worker.all_attempts().await, "worker all");
    check_eq!(
        r,
        r.keys(&all).await,
        vec![key.clone()],
        "worker all attempts"
    );
    check_eq!(
        r,
        r.ok(unit.data().await, "data"),
        result,
        "unit data is the finish data"
    );

    r.ok(unit.clear_active_attempt().await, "clear_active_attempt");
    check_eq!(
        r,
        r.unit_status(&unit).await,
        WorkUnitStatus::Available,
        "available after clear"
    );
    check_eq!(
        r,
        r.ok(unit.data().await, "data"),
        DataMap::new(),
        "own data after clear"
    );
    check_eq!(
        r,
        r.active_key(&unit).await,
        None,
        "no active attempt after clear"
    );
    let history = r.ok(unit.attempts().await, "unit attempts");
    check_eq!(
        r,
        r.keys(&history).await,
        vec![key.clone()],
        "history after clear"
    );
    let all = r.ok(worker.all_attempts().await, "worker all");
    check_eq!(r, r.keys(&all).await, vec![key], "worker all after clear");
    check_eq!(
        r,
        r.attempt_status(&a).await,
        AttemptStatus::Finished,
        "attempt keeps status"
    );
}

/// **AttemptMetadata.** Start, data, end and expiration through renew and finish.
pub async fn attempt_metadata(t: TestBackend) {
    let r = Run::new("attempt_metadata", t);
    let (_ns, spec, worker) = r.basic("attempt_metadata", "spec").await;
    let unit_data = data!({"from": "unit", "list": [1, 2]});
    r.unit(&spec, "u", unit_data.clone()).await;
    r.advance_secs(10);
    let start = r.now();
    let a = r.request_unit(&worker, "u", "request").await;
    check_eq!(r, r.ok(a.start_time().await, "start"), start, "start time");
    check_eq!(
        r,
        r.ok(a.data().await, "data"),
        unit_data,
        "attempt data snapshot"
    );
    check_eq!(r, r.ok(a.end_time().await, "end"), None, "end time unset");
    let exp = r.ok(a.expiration_time().await, "expiration");
    check_eq!(r, exp, start + Duration::minutes(15), "default lifetime");

    r.advance_secs(60);
    let renewed = data!({"from": "renew"});
    r.ok(
        a.renew(Duration::minutes(3), Some(renewed.clone())).await,
        "renew",
    );
    check_eq!(
        r,
        r.ok(a.start_time().await, "start"),
        start,
        "start after renew"
    );
    check_eq!(r, r.ok(a.data().await, "data"), renewed, "data after renew");
    check_eq!(r, r.ok(a.end_time().await, "end"), None, "end after renew");
    let exp = r.ok(a.expiration_time().await, "expiration");
    check_eq!(
        r,
        exp,
        at_secs(70) + Duration::minutes(3),
        "expiration after renew"
    );

    r.advance_secs(60);
    let finished = data!({"from": "finish"});
    r.ok(a.finish(Some(finished.clone())).await, "finish");
    check_eq!(
        r,
        r.ok(a.start_time().await, "start"),
        start,
        "start after finish"
    );
    check_eq!(
        r,
        r.ok(a.data().await, "data"),
        finished,
        "data after finish"
    );
    let end = r.ok(a.end_time().await, "end");
    check_eq!(r, end, Some(at_secs(130)), "end time after finish");
    check!(r, end > Some(start), "end after start");
    let unit = a.work_unit();
    let own = r.ok(spec.work_unit("u").await, "lookup");
    check_eq!(r, r.ok(unit.data().await, "data"), finished, "visible data");
    r.ok(own.clear_active_attempt().await, "clear");
    check_eq!(
        r,
        r.ok(own.data().await, "data"),
        unit_data,
        "unit's own data untouched"
    );
}

/// A namespace with spec `a` chaining to a paused spec `b`, and a worker.
async fn chain_fixture(r: &Run, ns: &str) -> (NamespaceRef, WorkSpecRef, WorkSpecRef, WorkerRef) {
    let ns = r.ns(ns).await;
    let a = r.spec(&ns, data!({"name": "a", "then": "b"})).await;
    let b = r.spec(&ns, data!({"name": "b", "disabled": true})).await;
    let worker = r.worker(&ns, "worker").await;
    (ns, a, b, worker)
}

/// **WorkUnitChaining.** `output` as nothing, a map, a list, and from the
/// unit's own creation data.
pub async fn work_unit_chaining(t: TestBackend) {
    let r = Run::new("work_unit_chaining", t);
    let (_ns, a, b, worker) = chain_fixture(&r, "work_unit_chaining").await;
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
    check_eq!(
        r,
        r.ok(b1.data().await, "data"),
        data!({"k": "v"}),
        "b1 data"
    );
    let b2 = r.ok(b.work_unit("b2").await, "lookup b2");
    check_eq!(r, r.ok(b2.data().await, "data"), DataMap::new(), "b2 data");
    check_eq!(
        r,
        r.unit_status(&b2).await,
        WorkUnitStatus::Available,
        "b2 available"
    );
}

/// **ChainingMixed.** A plain name and an array item for the same name:
/// the later item wins (data and float priority).
pub async fn chaining_mixed(t: TestBackend) {
    let r = Run::new("chaining_mixed", t);
    let (_ns, a, b, worker) = chain_fixture(&r, "chaining_mixed").await;
    r.unit(&a, "a", DataMap::new()).await;
    let attempt = r.request_unit(&worker, "a", "request").await;
    let output =
        data!({"output": ["x", ["x", {"d": 1}, {"priority": 2.5}], ["y", null, null, 7.5]]});
    r.ok(attempt.finish(Some(output)).await, "finish");
    let x = r.ok(b.work_unit("x").await, "lookup x");
    check_eq!(r, r.ok(x.data().await, "data"), data!({"d": 1}), "x data");
    check_eq!(r, r.ok(x.priority().await, "priority"), 2.5, "x priority");
    let y = r.ok(b.work_unit("y").await, "lookup y");
    check_eq!(r, r.ok(y.data().await, "data"), DataMap::new(), "y data");
    check_eq!(r, r.ok(y.priority().await, "priority"), 7.5, "y priority");
}

/// **ChainingTwoStep.** Output placed by `renew` chains on a data-less
/// finish; control-character names and integer option priorities work.
pub async fn chaining_two_step(t: TestBackend) {
    let r = Run::new("chaining_two_step", t);
    let (_ns, a, b, worker) = chain_fixture(&r, "chaining_two_step").await;
    r.unit(&a, "a", DataMap::new()).await;
    let attempt = r.request_unit(&worker, "a", "request").await;
    let name = "\u{1}\u{2}";
    let renewed = data!({"output": [name, [name, {}, {"priority": 7}]]});
    r.ok(
        attempt.renew(Duration::minutes(5), Some(renewed)).await,
        "renew",
    );
    r.ok(attempt.finish(None).await, "finish");
    check_eq!(
        r,
        r.unit_names(&b, "units of b").await,
        names([name]),
        "units of b"
    );
    let unit = r.ok(b.work_unit(name).await, "lookup");
    check_eq!(r, r.ok(unit.data().await, "data"), DataMap::new(), "data");
    check_eq!(r, r.ok(unit.priority().await, "priority"), 7.0, "priority");
}

/// **ChainingExpiry.** A finishing attempt that is no longer active does
/// not chain (but `finish` succeeds).
pub async fn chaining_expiry(t: TestBackend) {
    let r = Run::new("chaining_expiry", t);
    let (_ns, a, b, worker) = chain_fixture(&r, "chaining_expiry").await;
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
    check_eq!(
        r,
        r.unit_status(&unit).await,
        WorkUnitStatus::Pending,
        "unit still pending"
    );
    check_eq!(
        r,
        r.active_key(&unit).await,
        Some(r.key(&second).await),
        "second still active"
    );
}

/// **ChainingDuplicate.** Chaining to an already finished unit makes it
/// available again.
pub async fn chaining_duplicate(t: TestBackend) {
    let r = Run::new("chaining_duplicate", t);
    let ns = r.ns("chaining_duplicate").await;
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
    let r = Run::new("chaining_missing_next_spec", t);
    let ns = r.ns("chaining_missing_next_spec").await;
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
    check_eq!(
        r,
        r.unit_status(&unit).await,
        WorkUnitStatus::Finished,
        "unit finished"
    );
    let listed = r.ok(ns.work_spec_names().await, "names");
    check_eq!(r, listed, vec!["a".to_string()], "no spec created");
    check!(
        r,
        r.unit_names(&other, "other ns").await.is_empty(),
        "chained across namespaces"
    );
    check_eq!(
        r,
        r.unit_names(&a, "a's units").await,
        names(["u"]),
        "nothing added to a"
    );
}

/// Chaining ignores `outputs` (plural), scalar `output`, a map with a
/// non-object value (whole map rejected), and skips bad array items.
pub async fn chaining_ignored_outputs(t: TestBackend) {
    let r = Run::new("chaining_ignored_outputs", t);
    let (_ns, a, b, worker) = chain_fixture(&r, "chaining_ignored_outputs").await;
    let cases = [
        data!({"outputs": ["x"]}),
        data!({"output": "x"}),
        data!({"output": 3}),
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
    check_eq!(
        r,
        r.unit_names(&b, "after mixed").await,
        names(["ok"]),
        "good item kept"
    );
}

/// Chaining onto a Pending unit replaces its data and meta but keeps its
/// attempt; onto a Failed unit makes it Available again.
pub async fn chaining_pending_target(t: TestBackend) {
    let r = Run::new("chaining_pending_target", t);
    let (_ns, a, b, worker) = chain_fixture(&r, "chaining_pending_target").await;
    let busy = r.unit(&b, "busy", DataMap::new()).await;
    let broken = r.unit(&b, "broken", DataMap::new()).await;
    let running = r.ok(worker.make_attempt(&busy, Duration::zero()).await, "make");
    let failed = r.ok(worker.make_attempt(&broken, Duration::zero()).await, "make");
    r.ok(failed.fail(None).await, "fail");
    r.unit(&a, "a", DataMap::new()).await;
    let attempt = r.request_unit(&worker, "a", "request").await;
    let output = data!({"output": {"busy": {"v": 1}, "broken": {"v": 2}}});
    r.ok(attempt.finish(Some(output)).await, "finish");
    check_eq!(
        r,
        r.unit_status(&busy).await,
        WorkUnitStatus::Pending,
        "busy stays pending"
    );
    check_eq!(
        r,
        r.active_key(&busy).await,
        Some(r.key(&running).await),
        "busy's attempt kept"
    );
    check_eq!(
        r,
        r.unit_status(&broken).await,
        WorkUnitStatus::Available,
        "broken re-armed"
    );
    check_eq!(
        r,
        r.ok(broken.data().await, "data"),
        data!({"v": 2}),
        "broken's new data"
    );
    check_eq!(
        r,
        r.attempt_status(&failed).await,
        AttemptStatus::Failed,
        "old attempt kept"
    );
    r.ok(busy.clear_active_attempt().await, "clear busy");
    check_eq!(
        r,
        r.ok(busy.data().await, "data"),
        data!({"v": 1}),
        "busy's new own data"
    );
}

/// **AttemptExpiration.** Past the default lifetime the attempt is Expired,
/// counts show it available, and it is handed out again.
pub async fn attempt_expiration(t: TestBackend) {
    let r = Run::new("attempt_expiration", t);
    let (_ns, spec, worker) = r.basic("attempt_expiration", "spec").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    let a = r.request_unit(&worker, "u", "request").await;
    check_eq!(
        r,
        r.attempt_status(&a).await,
        AttemptStatus::Pending,
        "fresh attempt"
    );
    r.request_none(&worker, "second request").await;
    r.advance(Duration::minutes(15) + Duration::seconds(1));
    check_eq!(
        r,
        r.attempt_status(&a).await,
        AttemptStatus::Expired,
        "after the lease"
    );
    let meta = r.ok(spec.meta(true).await, "meta(true)");
    check_eq!(
        r,
        (meta.available_count, meta.pending_count),
        (1, 0),
        "counts"
    );
    check_eq!(
        r,
        r.unit_status(&unit).await,
        WorkUnitStatus::Available,
        "unit available"
    );
    let again = r.request_unit(&worker, "u", "request again").await;
    check_eq!(
        r,
        r.attempt_status(&again).await,
        AttemptStatus::Pending,
        "new attempt"
    );
}

/// **RetryDelay.** A retried unit is Delayed until the delay has elapsed.
pub async fn retry_delay(t: TestBackend) {
    let r = Run::new("retry_delay", t);
    let (_ns, spec, worker) = r.basic("retry_delay", "spec").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    let a = r.request_unit(&worker, "u", "request").await;
    r.ok(a.retry(None, Duration::seconds(60)).await, "retry(60 s)");
    check_eq!(
        r,
        r.ok(unit.meta().await, "meta").not_before,
        Some(r.now() + Duration::seconds(60)),
        "not_before"
    );
    r.advance_secs(30);
    check_eq!(
        r,
        r.unit_status(&unit).await,
        WorkUnitStatus::Delayed,
        "before the delay"
    );
    r.request_none(&worker, "before the delay").await;
    r.advance_secs(30);
    check_eq!(
        r,
        r.unit_status(&unit).await,
        WorkUnitStatus::Available,
        "after the delay"
    );
    r.drain(&worker, &["u"], "drain").await;
}

/// **AttemptFractionalStart.** An attempt starting at a fractional second
/// works normally, and its times keep the fraction.
pub async fn attempt_fractional_start(t: TestBackend) {
    let r = Run::new("attempt_fractional_start", t);
    let (_ns, spec, worker) = r.basic("attempt_fractional_start", "spec").await;
    r.unit(&spec, "u", DataMap::new()).await;
    r.advance(Duration::milliseconds(1_234));
    let start = r.now();
    let a = r.request_unit(&worker, "u", "request").await;
    check_eq!(
        r,
        r.ok(a.start_time().await, "start"),
        start,
        "fractional start kept"
    );
    r.advance(Duration::milliseconds(1_001));
    r.ok(a.finish(None).await, "finish");
    check_eq!(
        r,
        r.ok(a.end_time().await, "end"),
        Some(r.now()),
        "fractional end kept"
    );
}

/// **AttemptGone.** `status()` on an attempt of a deleted unit fails with
/// `Gone` (or a `NoSuch…`).
pub async fn attempt_gone(t: TestBackend) {
    let r = Run::new("attempt_gone", t);
    let (_ns, spec, worker) = r.basic("attempt_gone", "spec").await;
    r.unit(&spec, "u", DataMap::new()).await;
    let a = r.request_unit(&worker, "u", "request").await;
    r.ok(
        spec.delete_work_units(&WorkUnitQuery::all()).await,
        "delete all",
    );
    r.gone(
        a.status().await,
        Dead::unit("spec", "u"),
        "status of attempt of deleted unit",
    );
}

/// Lets the single unit of `spec` be handed out `times` times, each
/// attempt left to expire (the clock passes the lease).
async fn expire_repeatedly(r: &Run, worker: &WorkerRef, unit: &str, times: usize) {
    for i in 0..times {
        r.request_unit(worker, unit, format_args!("hand-out {i}"))
            .await;
        r.advance(Duration::minutes(20));
    }
}

/// **MaxRetries.** After `R` expired attempts the next one fails the unit
/// with a `too many retries` traceback.
pub async fn max_retries(t: TestBackend) {
    let r = Run::new("max_retries", t);
    let ns = r.ns("max_retries").await;
    let spec = r.spec(&ns, data!({"name": "spec", "max_retries": 3})).await;
    let worker = r.worker(&ns, "worker").await;
    let unit = r.unit(&spec, "u", data!({"k": "v"})).await;
    expire_repeatedly(&r, &worker, "u", 3).await;
    r.request_none(&worker, "request over the limit").await;
    check_eq!(
        r,
        r.unit_status(&unit).await,
        WorkUnitStatus::Failed,
        "unit failed"
    );
    let expected = data!({"traceback": "too many retries"});
    check_eq!(r, r.ok(unit.data().await, "data"), expected, "traceback");
    check_eq!(
        r,
        r.ok(unit.num_attempts().await, "num_attempts"),
        4,
        "attempts"
    );
    let active = r.ok(unit.active_attempt().await, "active");
    let Some(active) = active else {
        panic!("[max_retries] failed unit has no active attempt")
    };
    check_eq!(
        r,
        r.attempt_status(&active).await,
        AttemptStatus::Failed,
        "last attempt"
    );
    check_eq!(
        r,
        r.ok(active.end_time().await, "end"),
        Some(r.now()),
        "end time"
    );
    let listed = r.ok(worker.active_attempts().await, "worker active");
    check!(
        r,
        listed.is_empty(),
        "failed attempt on worker's active list"
    );
}

/// **MaxRetriesMulti.** A partially failed batch is returned short,
/// without topping up.
pub async fn max_retries_multi(t: TestBackend) {
    let r = Run::new("max_retries_multi", t);
    let ns = r.ns("max_retries_multi").await;
    let spec = r
        .spec(
            &ns,
            data!({"name": "spec", "max_getwork": 2, "max_retries": 1}),
        )
        .await;
    let worker = r.worker(&ns, "worker").await;
    r.units(&spec, &["a", "b", "c", "d"]).await;
    let got = r
        .request(&worker, AttemptRequest::units(10), "first batch")
        .await;
    let got_names = super::unit_names_of(&got);
    check_eq!(r, got_names, vec!["a", "b"], "first batch");
    r.ok(got[0].finish(None).await, "finish a");
    r.advance(Duration::minutes(20));
    let got = r
        .request(&worker, AttemptRequest::units(10), "second batch")
        .await;
    let got_names = super::unit_names_of(&got);
    check_eq!(r, got_names, vec!["c"], "second batch, not topped up");
    let b = r.ok(spec.work_unit("b").await, "lookup b");
    check_eq!(
        r,
        r.unit_status(&b).await,
        WorkUnitStatus::Failed,
        "b failed"
    );
    let d = r.ok(spec.work_unit("d").await, "lookup d");
    check_eq!(
        r,
        r.unit_status(&d).await,
        WorkUnitStatus::Available,
        "d untouched"
    );
}

/// **MaxRetriesMultiBatch.** A batch of only over-limit units is failed and
/// the next batch is returned instead.
pub async fn max_retries_multi_batch(t: TestBackend) {
    let r = Run::new("max_retries_multi_batch", t);
    let ns = r.ns("max_retries_multi_batch").await;
    let spec = r
        .spec(
            &ns,
            data!({"name": "spec", "max_getwork": 2, "max_retries": 1}),
        )
        .await;
    let worker = r.worker(&ns, "worker").await;
    r.units(&spec, &["a", "b", "c", "d", "e"]).await;
    let got = r
        .request(&worker, AttemptRequest::units(10), "first batch")
        .await;
    check_eq!(r, got.len(), 2, "first batch size");
    r.advance(Duration::minutes(20));
    let got = r
        .request(&worker, AttemptRequest::units(10), "second batch")
        .await;
    let got_names = super::unit_names_of(&got);
    check_eq!(r, got_names, vec!["c", "d"], "next batch");
    let counts = r.ok(spec.count_work_unit_status().await, "counts");
    let expected = [
        (WorkUnitStatus::Failed, 2),
        (WorkUnitStatus::Pending, 2),
        (WorkUnitStatus::Available, 1),
    ]
    .into_iter()
    .collect();
    check_eq!(r, counts, expected, "status counts");
}

/// Without `max_retries` (0, unlimited) a unit is handed out again after
/// any number of expiries.
pub async fn max_retries_unlimited(t: TestBackend) {
    let r = Run::new("max_retries_unlimited", t);
    let (_ns, spec, worker) = r.basic("max_retries_unlimited", "spec").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    expire_repeatedly(&r, &worker, "u", 6).await;
    let a = r.request_unit(&worker, "u", "seventh").await;
    check_eq!(
        r,
        r.attempt_status(&a).await,
        AttemptStatus::Pending,
        "still handed out"
    );
    check_eq!(
        r,
        r.ok(unit.num_attempts().await, "num_attempts"),
        7,
        "attempts"
    );
}

/// `max_retries` set through `set_meta` applies to the next request, and
/// counts every attempt (including `make_attempt` ones).
pub async fn max_retries_set_meta(t: TestBackend) {
    let r = Run::new("max_retries_set_meta", t);
    let (_ns, spec, worker) = r.basic("max_retries_set_meta", "spec").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    let a = r.ok(worker.make_attempt(&unit, Duration::zero()).await, "make");
    r.ok(a.expire(None).await, "expire");
    let a = r.ok(worker.make_attempt(&unit, Duration::zero()).await, "make");
    r.ok(a.retry(None, Duration::zero()).await, "retry");
    let mut meta = r.ok(spec.meta(false).await, "meta");
    meta.max_retries = 2;
    r.ok(spec.set_meta(meta).await, "set_meta(max_retries = 2)");
    r.request_none(&worker, "third attempt exceeds the limit")
        .await;
    check_eq!(
        r,
        r.unit_status(&unit).await,
        WorkUnitStatus::Failed,
        "unit failed"
    );
    check_eq!(r, r.ok(unit.num_attempts().await, "num"), 3, "attempts");
}

/// Lazy expiry: without an expiry check, an attempt past its deadline can
/// still
/// be renewed and finished.
pub async fn lazy_expiry_finish_before_check(t: TestBackend) {
    let r = Run::new("lazy_expiry_finish_before_check", t);
    let (_ns, spec, worker) = r.basic("lazy_expiry_finish_before_check", "spec").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    let a = r.ok(
        worker.make_attempt(&unit, Duration::seconds(10)).await,
        "make",
    );
    r.advance_secs(20);
    // Reads that perform no expiry check.
    check_eq!(
        r,
        r.ok(a.data().await, "data"),
        DataMap::new(),
        "attempt data"
    );
    r.ok(a.start_time().await, "start_time");
    r.ok(unit.data().await, "unit data");
    r.ok(spec.meta(false).await, "meta(false)");
    r.ok(worker.active_attempts().await, "worker active list");
    r.ok(
        a.renew(Duration::seconds(5), None).await,
        "renew past the deadline",
    );
    r.advance_secs(20);
    r.ok(
        a.finish(Some(data!({"done": true}))).await,
        "finish past the deadline",
    );
    check_eq!(
        r,
        r.attempt_status(&a).await,
        AttemptStatus::Finished,
        "attempt finished"
    );
    check_eq!(
        r,
        r.unit_status(&unit).await,
        WorkUnitStatus::Finished,
        "unit finished"
    );
}

/// Lazy expiry: once an expiry check has run, `finish`/`fail`/`retry` fail
/// with
/// `NotPending` and `renew` with `LostLease`; the expired attempt keeps its
/// expiration time, ends at the check, and leaves the worker's list. Every
/// listed operation performs the check.
pub async fn lazy_expiry_after_check(t: TestBackend) {
    let r = Run::new("lazy_expiry_after_check", t);
    let (ns, spec, worker) = r.basic("lazy_expiry_after_check", "spec").await;
    // One unit per checking operation; each gets a 10 s lease.
    let checks = [
        "unit.status",
        "unit.active_attempt",
        "attempt.status",
        "attempt.end_time",
        "attempt.expiration_time",
        "spec.meta(true)",
        "spec.work_units",
        "spec.count_work_unit_status",
        "spec.summarize",
        "namespace.summarize",
        "backend.summarize",
        "worker.request_attempts",
    ];
    for check in checks {
        let unit = r.unit(&spec, check, DataMap::new()).await;
        let a = r.ok(
            worker.make_attempt(&unit, Duration::seconds(10)).await,
            "make",
        );
        let deadline = r.ok(a.expiration_time().await, "expiration");
        r.advance_secs(11);
        let check_time = r.now();
        match check {
            "unit.status" => drop(r.ok(unit.status().await, check)),
            "unit.active_attempt" => drop(r.ok(unit.active_attempt().await, check)),
            "attempt.status" => drop(r.ok(a.status().await, check)),
            "attempt.end_time" => drop(r.ok(a.end_time().await, check)),
            "attempt.expiration_time" => drop(r.ok(a.expiration_time().await, check)),
            "spec.meta(true)" => drop(r.ok(spec.meta(true).await, check)),
            "spec.work_units" => drop(r.ok(spec.work_units(&WorkUnitQuery::all()).await, check)),
            "spec.count_work_unit_status" => drop(r.ok(spec.count_work_unit_status().await, check)),
            "spec.summarize" => drop(r.ok(spec.summarize().await, check)),
            "namespace.summarize" => drop(r.ok(ns.summarize().await, check)),
            "backend.summarize" => drop(r.ok(r.backend().summarize().await, check)),
            _ => {
                // The spec is paused so the request itself takes nothing.
                let mut meta = r.ok(spec.meta(false).await, "meta");
                meta.paused = true;
                r.ok(spec.set_meta(meta.clone()).await, "pause");
                r.request_none(&worker, check).await;
                meta.paused = false;
                r.ok(spec.set_meta(meta).await, "unpause");
            }
        }
        r.advance_secs(1);
        r.fails(
            a.finish(None).await,
            Error::NotPending,
            format_args!("finish after {check}"),
        );
        r.fails(
            a.fail(None).await,
            Error::NotPending,
            format_args!("fail after {check}"),
        );
        r.fails(
            a.retry(None, Duration::zero()).await,
            Error::NotPending,
            format_args!("retry after {check}"),
        );
        r.fails(
            a.renew(Duration::minutes(1), None).await,
            Error::LostLease,
            format_args!("renew after {check}"),
        );
        check_eq!(
            r,
            r.attempt_status(&a).await,
            AttemptStatus::Expired,
            "status after {check}"
        );
        let exp = r.ok(a.expiration_time().await, "expiration");
        check_eq!(r, exp, deadline, "expiration kept after {check}");
        check_eq!(
            r,
            r.active_key(&unit).await,
            None,
            "active cleared after {check}"
        );
        check_eq!(
            r,
            r.unit_status(&unit).await,
            WorkUnitStatus::Available,
            "after {check}"
        );
        let end = r.ok(a.end_time().await, "end_time");
        // renew on an expired attempt re-completes it (end = now); the
        // check itself ended it at check_time.
        check!(
            r,
            end == Some(check_time) || end == Some(r.now()),
            "end time after {check}: {end:?}"
        );
        let active = r.ok(worker.active_attempts().await, "worker active");
        check!(
            r,
            active.is_empty(),
            "expired attempt on the worker's list after {check}"
        );
    }
}

/// The expiry boundary: an attempt is expired only when its
/// deadline is strictly earlier than now.
pub async fn expiry_boundary(t: TestBackend) {
    let r = Run::new("expiry_boundary", t);
    let (_ns, spec, worker) = r.basic("expiry_boundary", "spec").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    let a = r.ok(
        worker.make_attempt(&unit, Duration::seconds(30)).await,
        "make",
    );
    r.advance_secs(30);
    check_eq!(
        r,
        r.attempt_status(&a).await,
        AttemptStatus::Pending,
        "at the deadline"
    );
    check_eq!(
        r,
        r.unit_status(&unit).await,
        WorkUnitStatus::Pending,
        "unit at the deadline"
    );
    r.advance(Duration::milliseconds(1));
    check_eq!(
        r,
        r.attempt_status(&a).await,
        AttemptStatus::Expired,
        "1 ms past the deadline"
    );
    check_eq!(
        r,
        r.ok(a.end_time().await, "end"),
        Some(r.now()),
        "end time"
    );
    check_eq!(
        r,
        r.ok(a.expiration_time().await, "exp"),
        at_secs(30),
        "expiration kept"
    );
}

/// `make_attempt`: no state checks (it restarts a finished unit of a
/// paused spec), supersedes the previous active attempt, which keeps its
/// status and stays on its worker's active list; a zero lifetime is 15
/// minutes.
pub async fn make_attempt_semantics(t: TestBackend) {
    let r = Run::new("make_attempt_semantics", t);
    let ns = r.ns("make_attempt_semantics").await;
    let spec = r.spec(&ns, data!({"name": "spec", "disabled": true})).await;
    let one = r.worker(&ns, "one").await;
    let two = r.worker(&ns, "two").await;
    let meta = WorkUnitMeta {
        priority: 0.0,
        not_before: Some(r.now() + Duration::hours(1)),
    };
    let unit = r.unit_meta(&spec, "u", data!({"v": 1}), meta).await;
    let first = r.ok(
        one.make_attempt(&unit, Duration::zero()).await,
        "make (delayed)",
    );
    check_eq!(
        r,
        r.ok(first.expiration_time().await, "exp"),
        r.now() + Duration::minutes(15),
        "zero lifetime means 15 minutes"
    );
    r.ok(first.finish(None).await, "finish");
    r.advance_secs(1);
    let second = r.ok(
        two.make_attempt(&unit, Duration::seconds(60)).await,
        "restart",
    );
    check_eq!(
        r,
        r.unit_status(&unit).await,
        WorkUnitStatus::Pending,
        "restarted"
    );
    r.advance_secs(1);
    let third = r.ok(
        one.make_attempt(&unit, Duration::seconds(60)).await,
        "supersede",
    );
    check_eq!(
        r,
        r.active_key(&unit).await,
        Some(r.key(&third).await),
        "newest is active"
    );
    check_eq!(
        r,
        r.attempt_status(&second).await,
        AttemptStatus::Pending,
        "superseded status"
    );
    let two_active = r.ok(two.active_attempts().await, "two's active list");
    check_eq!(
        r,
        r.keys(&two_active).await,
        vec![r.key(&second).await],
        "superseded listed"
    );
    check_eq!(r, r.ok(unit.num_attempts().await, "num"), 3, "history");
    let history = r.ok(unit.attempts().await, "attempts");
    let expected = vec![
        r.key(&first).await,
        r.key(&second).await,
        r.key(&third).await,
    ];
    check_eq!(
        r,
        r.keys_ordered(&history).await,
        expected,
        "history in creation order"
    );
    // A superseded pending attempt is not subject to automatic expiry.
    r.advance_secs(120);
    check_eq!(
        r,
        r.attempt_status(&second).await,
        AttemptStatus::Pending,
        "not auto-expired"
    );
    check_eq!(
        r,
        r.attempt_status(&third).await,
        AttemptStatus::Expired,
        "active one expired"
    );
}

/// An empty map is a real replacement, `None` keeps the old data:
/// `renew`, `finish` and `fail` with `Some({})` empty the
/// attempt's data (and the unit's visible data), `None` keeps it.
pub async fn empty_map_replaces_data(t: TestBackend) {
    let r = Run::new("empty_map_replaces_data", t);
    let (_ns, spec, worker) = r.basic("empty_map_replaces_data", "spec").await;
    let full = data!({"k": "v"});
    let mut units = Vec::new();
    for name in ["renew", "finish", "fail", "expire"] {
        units.push(r.unit(&spec, name, full.clone()).await);
    }
    for unit in &units {
        let name = unit.name();
        let a = r.ok(worker.make_attempt(unit, Duration::zero()).await, "make");
        match name {
            "renew" => {
                r.ok(a.renew(Duration::minutes(1), None).await, "renew(None)");
                check_eq!(
                    r,
                    r.ok(a.data().await, "data"),
                    full,
                    "renew(None) keeps data"
                );
                r.ok(
                    a.renew(Duration::minutes(1), Some(DataMap::new())).await,
                    "renew({})",
                );
            }
            "finish" => r.ok(a.finish(Some(DataMap::new())).await, "finish({})"),
            "fail" => r.ok(a.fail(Some(DataMap::new())).await, "fail({})"),
            _ => r.ok(a.expire(Some(DataMap::new())).await, "expire({})"),
        }
        check_eq!(
            r,
            r.ok(a.data().await, "data"),
            DataMap::new(),
            "{name}: attempt data"
        );
        if name != "expire" {
            check_eq!(
                r,
                r.ok(unit.data().await, "data"),
                DataMap::new(),
                "{name}: visible"
            );
        }
        r.ok(unit.clear_active_attempt().await, "clear");
        check_eq!(
            r,
            r.ok(unit.data().await, "data"),
            full,
            "{name}: unit's own data"
        );
    }
}
