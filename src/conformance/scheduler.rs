//! Scheduler scenarios: which spec a request draws from (filters, fair
//! share, weights, exclusions, `max_running`) and the request parameters.

use super::{each_named, unit_names_of, Run, TestBackend};
use crate::api::{NamespaceRef, WorkSpecRef, WorkerRef};
use crate::data;
use crate::model::{AttemptRequest, DataMap, Duration, NewWorkUnit, WorkUnitMeta, WorkUnitStatus};
use crate::rules::limits::MAX_ATTEMPTS_PER_REQUEST;

use WorkUnitStatus::{Available, Pending};

/// **MaxRunning.** `max_running = 1` allows one pending unit at a time.
pub async fn max_running(t: TestBackend) {
    let (r, ns) = Run::with_ns("max_running", t).await;
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

/// A request takes only the headroom `max_running` leaves: the limit less
/// the units pending once lapsed leases have expired.
pub async fn max_running_headroom(t: TestBackend) {
    let (r, ns) = Run::with_ns("max_running_headroom", t).await;
    let spec = r.spec(&ns, data!({"name": "spec", "max_running": 3})).await;
    let worker = r.worker(&ns, "worker").await;
    let units = r.units(&spec, &["a", "b", "c", "d", "e", "f"]).await;
    r.ok(
        worker.make_attempt(&units[0], Duration::minutes(5)).await,
        "a stays pending",
    );
    r.ok(
        worker.make_attempt(&units[1], Duration::seconds(10)).await,
        "b's lease lapses",
    );
    r.advance_secs(11);
    let got = r
        .request(&worker, AttemptRequest::units(10), "request")
        .await;
    check_eq!(
        r,
        unit_names_of(&got),
        vec!["b", "c"],
        "two of three running places are free"
    );
    r.request_none(&worker, "at the limit").await;
}

/// A request hands out at most [`MAX_ATTEMPTS_PER_REQUEST`] attempts,
/// however many units it asks for and the spec holds.
pub async fn request_size_bound(t: TestBackend) {
    let (r, ns) = Run::with_ns("request_size_bound", t).await;
    let spec = r.named_spec(&ns, "spec").await;
    let worker = r.worker(&ns, "worker").await;
    let bound = usize::try_from(MAX_ATTEMPTS_PER_REQUEST).unwrap_or(usize::MAX);
    let last = 2 * bound;
    let units = (0..=last)
        .map(|i| NewWorkUnit::new(format!("u{i:05}"), DataMap::new()))
        .collect();
    r.ok(
        spec.add_work_units(units).await,
        "add one unit over twice the bound",
    );
    for (asked, step) in [
        (i64::MAX, "i64::MAX"),
        (MAX_ATTEMPTS_PER_REQUEST + 1, "bound + 1"),
    ] {
        let got = r.request(&worker, AttemptRequest::units(asked), step).await;
        check_eq!(r, got.len(), bound, "attempts handed out for {}", step);
    }
    let got = r
        .request(&worker, AttemptRequest::units(i64::MAX), "the rest")
        .await;
    check_eq!(
        r,
        unit_names_of(&got),
        vec![format!("u{last:05}")],
        "the rest"
    );
}

/// **RequestSpecificSpec.** The `work_specs` filter of a request.
pub async fn request_specific_spec(t: TestBackend) {
    let (r, ns) = Run::with_ns("request_specific_spec", t).await;
    let worker = r.worker(&ns, "worker").await;
    for (name, priority) in [("low", 0), ("mid", 5), ("high", 10)] {
        let spec = r
            .spec(&ns, data!({"name": name, "priority": priority}))
            .await;
        r.unit(&spec, &format!("{name}-unit"), DataMap::new()).await;
    }
    let cases: [(Vec<&str>, Option<&str>); 6] = [
        (vec![], Some("high-unit")),
        (vec!["low"], Some("low-unit")),
        (vec!["low", "mid"], Some("mid-unit")),
        (vec!["nonexistent"], None),
        (vec!["nonexistent", "low"], Some("low-unit")),
        (vec![], Some("high-unit")),
    ];
    for (specs, expected) in cases {
        r.advance_secs(5);
        let req = AttemptRequest {
            work_specs: specs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let want: Vec<&str> = expected.into_iter().collect();
        let step = format!("request restricted to {specs:?}");
        let got = r.request_units(&worker, req, &want, step).await;
        for a in got {
            r.ok(a.retry(None, Duration::zero()).await, "retry");
        }
    }
}

/// **ByRuntime.** The `runtimes` filter of a request.
pub async fn by_runtime(t: TestBackend) {
    let (r, ns) = Run::with_ns("by_runtime", t).await;
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
        let got = r.request_units(&worker, req, &[expected], step).await;
        r.ok(got[0].retry(None, Duration::zero()).await, "retry");
    }
    let req = AttemptRequest {
        runtimes: vec!["cobol".into()],
        ..Default::default()
    };
    r.request_nothing(&worker, req, "unknown runtime").await;
}

/// Request parameters: a count below one means one; a
/// non-positive lifetime means 15 minutes; an `available_gb` of zero
/// filters nothing (see the `available_memory_*` scenarios);
/// `max_getwork` caps the batch; the batch is priority-desc, name-asc and
/// has the request's lifetime.
pub async fn request_attempts_parameters(t: TestBackend) {
    let (r, ns) = Run::with_ns("request_attempts_parameters", t).await;
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

/// A batch lists its attempts in hand-out order: priority descending
/// (above, at and below the default), then name ascending; a delayed unit
/// is passed over whatever its priority.
pub async fn batch_in_hand_out_order(t: TestBackend) {
    let (r, ns) = Run::with_ns("batch_in_hand_out_order", t).await;
    let spec = r.named_spec(&ns, "spec").await;
    let worker = r.worker(&ns, "worker").await;
    for (name, priority) in [("a", 0.0), ("c", 5.0), ("b", 5.0), ("d", 1.0), ("e", -1.0)] {
        r.unit_priority(&spec, name, priority).await;
    }
    let later = WorkUnitMeta {
        priority: 9.0,
        not_before: Some(r.now() + Duration::hours(1)),
    };
    r.unit_meta(&spec, "0-later", DataMap::new(), later).await;
    r.request_units(
        &worker,
        AttemptRequest::units(10),
        &["b", "c", "d", "a", "e"],
        "one batch of every ready unit",
    )
    .await;
}

/// One request's attempts all come from one spec, and the
/// `work_specs` and `runtimes` filters combine.
pub async fn batch_from_one_spec(t: TestBackend) {
    let (r, ns) = Run::with_ns("batch_from_one_spec", t).await;
    let worker = r.worker(&ns, "worker").await;
    let [one, two] = each_named(["one", "two"], |n| r.named_spec(&ns, n)).await;
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
    r.request_nothing(&worker, req, "disjoint filters").await;
}

/// Fair share: among equal priorities a spec far above its share
/// of pending work (score ≤ 0) is never chosen while another qualifies.
pub async fn scheduler_fair_share(t: TestBackend) {
    let (r, ns) = Run::with_ns("scheduler_fair_share", t).await;
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

/// Two specs of the given names and weights, each with 200 units.
async fn weighted_specs(
    r: &Run,
    ns: &NamespaceRef,
    [(light, light_weight), (heavy, heavy_weight)]: [(&str, i64); 2],
) -> (WorkSpecRef, WorkSpecRef) {
    let light = r
        .spec(ns, data!({"name": light, "weight": light_weight}))
        .await;
    let heavy = r
        .spec(ns, data!({"name": heavy, "weight": heavy_weight}))
        .await;
    for i in 0..200 {
        r.unit(&light, &format!("u{i:03}"), DataMap::new()).await;
        r.unit(&heavy, &format!("u{i:03}"), DataMap::new()).await;
    }
    (light, heavy)
}

/// How many of `requests` one-unit requests by `worker`, each finished at
/// once, hand out a unit of spec `spec`.
async fn times_chosen(r: &Run, worker: &WorkerRef, spec: &str, requests: usize) -> usize {
    let mut chosen = 0;
    for i in 0..requests {
        let a = r.request_one(worker, format_args!("request {i}")).await;
        let Some(a) = a else {
            panic!("[{}] request {i} got nothing", r.name)
        };
        if a.work_unit().work_spec().name() == spec {
            chosen += 1;
        }
        r.ok(a.finish(None).await, "finish");
    }
    chosen
}

/// Weighted choice: with weights 1 and 3 and nothing pending, the
/// heavier spec gets about three quarters of 200 single requests (the
/// bounds are over six standard deviations wide).
pub async fn scheduler_weights(t: TestBackend) {
    let (r, ns) = Run::with_ns("scheduler_weights", t).await;
    let worker = r.worker(&ns, "worker").await;
    weighted_specs(&r, &ns, [("one", 1), ("three", 3)]).await;
    let heavy = times_chosen(&r, &worker, "three", 200).await;
    check!(
        r,
        (110..=190).contains(&heavy),
        "weight-3 spec chosen {heavy} of 200 times"
    );
}

/// Pending work shifts the weighted choice toward the spec below its
/// share: weights 1 and 3 with one unit of the weight-3 spec pending score
/// 1 × 2 − 0 = 2 and 3 × 2 − 4 × 1 = 2, an even split.
pub async fn scheduler_pending_shifts_the_split(t: TestBackend) {
    let (r, ns) = Run::with_ns("scheduler_pending_shifts_the_split", t).await;
    let worker = r.worker(&ns, "worker").await;
    let (_, heavy) = weighted_specs(&r, &ns, [("light", 1), ("heavy", 3)]).await;
    let held = r.unit(&heavy, "held", DataMap::new()).await;
    r.ok(
        worker.make_attempt(&held, Duration::zero()).await,
        "make pending",
    );
    let heavy_chosen = times_chosen(&r, &worker, "heavy", 200).await;
    // 100 expected; 150 without the pending unit's shift.
    check!(
        r,
        (70..=130).contains(&heavy_chosen),
        "weight-3 spec with one pending unit chosen {heavy_chosen} of 200 times"
    );
}

/// Specs that cannot do work are never chosen: weight zero or
/// negative (set via `set_meta`), paused, empty, or at `max_running`.
pub async fn scheduler_exclusions(t: TestBackend) {
    let (r, ns) = Run::with_ns("scheduler_exclusions", t).await;
    let worker = r.worker(&ns, "worker").await;
    let [zero, negative] = each_named(["zero", "negative"], |n| r.named_spec(&ns, n)).await;
    for (spec, weight) in [(&zero, 0), (&negative, -3)] {
        let mut meta = r.ok(spec.meta(false).await, "meta");
        meta.weight = weight;
        r.ok(spec.set_meta(meta).await, "set_meta(weight)");
        r.ok_eq(
            spec.meta(false).await.map(|v| v.weight),
            weight,
            "weight stored",
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

/// A higher-priority spec that cannot do work now (its only unit delayed,
/// its `max_running` reached, its lapsed unit held back by `not_before`)
/// leaves the request to a lower one; once it can, it is chosen first.
pub async fn unworkable_priority_yields(t: TestBackend) {
    let (r, ns) = Run::with_ns("unworkable_priority_yields", t).await;
    let worker = r.worker(&ns, "worker").await;
    let high = r.spec(&ns, data!({"name": "high", "priority": 10})).await;
    let low = r.spec(&ns, data!({"name": "low", "priority": 0})).await;
    r.units(&low, &["l1", "l2", "l3", "l4"]).await;
    let in_a_minute = WorkUnitMeta {
        not_before: Some(r.now() + Duration::seconds(60)),
        ..WorkUnitMeta::default()
    };
    r.unit_meta(&high, "h1", DataMap::new(), in_a_minute).await;
    r.request_unit(&worker, "l1", "high's only unit delayed")
        .await;
    r.advance_secs(60);
    let h1 = r.request_unit(&worker, "h1", "high's unit ready").await;

    // At max_running with a unit available.
    let mut meta = r.ok(high.meta(false).await, "meta");
    meta.max_running = 1;
    r.ok(high.set_meta(meta).await, "set_meta(max_running = 1)");
    let h2 = r.unit(&high, "h2", DataMap::new()).await;
    r.request_unit(&worker, "l2", "high at max_running").await;
    r.ok(h1.finish(None).await, "finish h1");

    // Its unit's lease lapses while its not_before lies ahead.
    let lease = r.ok(
        worker.make_attempt(&h2, Duration::seconds(10)).await,
        "make_attempt(h2)",
    );
    let an_hour_on = WorkUnitMeta {
        not_before: Some(r.now() + Duration::hours(1)),
        ..WorkUnitMeta::default()
    };
    r.ok(h2.set_meta(an_hour_on).await, "delay h2 while it runs");
    r.advance_secs(11);
    r.request_unit(&worker, "l3", "high's lapsed unit delayed")
        .await;
    r.ok_eq(h2.status().await, WorkUnitStatus::Delayed, "h2 once lapsed");
    r.ok_eq(
        lease.status().await,
        crate::model::AttemptStatus::Expired,
        "h2's lease",
    );
    r.advance(Duration::hours(1));
    r.request_unit(&worker, "h2", "h2 ready").await;
}

/// A request takes the smaller of `max_attempts_returned` and the headroom
/// `max_running` leaves, whether the limits come from the definition or
/// from `set_meta`.
pub async fn both_request_caps(t: TestBackend) {
    let (r, ns) = Run::with_ns("both_request_caps", t).await;
    let worker = r.worker(&ns, "worker").await;
    let spec = r
        .spec(
            &ns,
            data!({"name": "spec", "max_getwork": 5, "max_running": 2}),
        )
        .await;
    let names: Vec<String> = (0..12).map(|i| format!("u{i:02}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let units = r.units(&spec, &names).await;
    r.ok(
        worker.make_attempt(&units[0], Duration::minutes(5)).await,
        "one already pending",
    );
    let got = r
        .request(&worker, AttemptRequest::units(10), "running headroom 1")
        .await;
    check_eq!(r, got.len(), 1, "the smaller cap: max_running headroom");
    let mut meta = r.ok(spec.meta(false).await, "meta");
    meta.max_running = 10;
    meta.max_attempts_returned = 2;
    r.ok(spec.set_meta(meta).await, "set_meta(limits)");
    let got = r
        .request(&worker, AttemptRequest::units(10), "after set_meta")
        .await;
    check_eq!(r, got.len(), 2, "the smaller cap: max_attempts_returned");
    let got = r
        .request(&worker, AttemptRequest::units(10), "headroom 6 again")
        .await;
    check_eq!(r, got.len(), 2, "max_attempts_returned again");
}

/// Pending attempts that are no longer their unit's active one (cleared,
/// or superseded by `make_attempt`) count for nothing: not in the pending
/// count, not against `max_running`.
pub async fn detached_attempts_count_for_nothing(t: TestBackend) {
    let (r, ns) = Run::with_ns("detached_attempts_count_for_nothing", t).await;
    let spec = r.spec(&ns, data!({"name": "spec", "max_running": 2})).await;
    let worker = r.worker(&ns, "w1").await;
    let other = r.worker(&ns, "w2").await;
    let units = r.units(&spec, &["a", "b", "c", "d"]).await;
    let cleared = r.ok(
        worker.make_attempt(&units[0], Duration::zero()).await,
        "make a",
    );
    r.ok(units[0].clear_active_attempt().await, "clear a");
    let superseded = r.ok(
        worker.make_attempt(&units[1], Duration::zero()).await,
        "make b",
    );
    r.ok(
        other.make_attempt(&units[1], Duration::zero()).await,
        "make b again",
    );
    for (attempt, which) in [(&cleared, "cleared"), (&superseded, "superseded")] {
        r.ok_eq(
            attempt.status().await,
            crate::model::AttemptStatus::Pending,
            format_args!("the {which} attempt"),
        );
    }
    let meta = r.ok(spec.meta(true).await, "meta");
    check_eq!(
        r,
        (meta.available_count, meta.pending_count),
        (3, 1),
        "counted: only b's newest attempt runs"
    );
    r.counts_are(&spec, [(Available, 3), (Pending, 1)], "counts")
        .await;
    let got = r
        .request(&worker, AttemptRequest::units(10), "request")
        .await;
    check_eq!(
        r,
        unit_names_of(&got),
        vec!["a"],
        "one running place is free"
    );
    r.request_none(&worker, "at the limit").await;
}

/// A `max_running` lowered below the units already running hands out
/// nothing, without an error, until enough of them end.
pub async fn max_running_below_running(t: TestBackend) {
    let (r, ns) = Run::with_ns("max_running_below_running", t).await;
    let spec = r.named_spec(&ns, "spec").await;
    let worker = r.worker(&ns, "worker").await;
    r.units(&spec, &["a", "b", "c", "d", "e", "f"]).await;
    let running = r
        .request_units(
            &worker,
            AttemptRequest::units(3),
            &["a", "b", "c"],
            "take three",
        )
        .await;
    let mut meta = r.ok(spec.meta(false).await, "meta");
    meta.max_running = 1;
    r.ok(spec.set_meta(meta).await, "lower max_running to 1");
    r.request_nothing(
        &worker,
        AttemptRequest::units(10),
        "three running, one allowed",
    )
    .await;
    let meta = r.ok(spec.meta(true).await, "counted meta");
    check_eq!(r, meta.pending_count, 3, "still three pending");
    for (i, attempt) in running.iter().enumerate() {
        r.ok(attempt.finish(None).await, format_args!("finish {i}"));
        if i < 2 {
            r.request_nothing(
                &worker,
                AttemptRequest::units(10),
                format_args!("after {i}"),
            )
            .await;
        }
    }
    r.request_units(&worker, AttemptRequest::units(10), &["d"], "all ended")
        .await;
}

/// Negative limits mean no limit, as zero does: `max_running`,
/// `max_getwork` and `max_retries` below zero, in the definition or set
/// through the meta.
pub async fn negative_limits_are_unlimited(t: TestBackend) {
    let (r, ns) = Run::with_ns("negative_limits_are_unlimited", t).await;
    let worker = r.worker(&ns, "worker").await;
    for how in ["definition", "meta"] {
        let spec = match how {
            "definition" => {
                r.spec(
                    &ns,
                    data!({"name": "def", "max_running": -1, "max_getwork": -3, "max_retries": -1}),
                )
                .await
            }
            _ => {
                let spec = r.named_spec(&ns, "meta").await;
                let mut meta = r.ok(spec.meta(false).await, "meta");
                meta.max_running = -1;
                meta.max_attempts_returned = -3;
                meta.max_retries = -1;
                r.ok(spec.set_meta(meta).await, "set negative limits");
                spec
            }
        };
        let meta = r.ok(spec.meta(false).await, format_args!("{how}: meta"));
        check_eq!(
            r,
            (
                meta.max_running,
                meta.max_attempts_returned,
                meta.max_retries
            ),
            (-1, -3, -1),
            "{how}: limits as given"
        );
        let units = r.units(&spec, &["a", "b", "c", "d"]).await;
        for i in 0..2 {
            let tried = r.ok(
                worker.make_attempt(&units[0], Duration::zero()).await,
                format_args!("{how}: try a, {i}"),
            );
            r.ok(
                tried.expire(None).await,
                format_args!("{how}: expire a, {i}"),
            );
        }
        let request = AttemptRequest {
            work_specs: vec![spec.name().to_string()],
            ..AttemptRequest::units(10)
        };
        let got = r
            .request_units(
                &worker,
                request,
                &["a", "b", "c", "d"],
                format_args!("{how}: request"),
            )
            .await;
        r.ok_eq(
            got[0].status().await,
            crate::model::AttemptStatus::Pending,
            format_args!("{how}: a's third try is not over its retries"),
        );
        r.ok_eq(
            units[0].num_attempts().await,
            3,
            format_args!("{how}: a's tries"),
        );
    }
}

/// `make_attempt` checks no limit: it runs units past `max_running` and
/// tries a unit past `max_retries` without failing it.
pub async fn make_attempt_ignores_limits(t: TestBackend) {
    let (r, ns) = Run::with_ns("make_attempt_ignores_limits", t).await;
    let spec = r
        .spec(
            &ns,
            data!({"name": "spec", "max_running": 1, "max_retries": 1}),
        )
        .await;
    let worker = r.worker(&ns, "worker").await;
    let units = r.units(&spec, &["a", "b", "c"]).await;
    for unit in &units[..2] {
        r.ok(
            worker.make_attempt(unit, Duration::zero()).await,
            format_args!("make {}", unit.name()),
        );
    }
    let meta = r.ok(spec.meta(true).await, "counted meta");
    check_eq!(r, meta.pending_count, 2, "two running, one allowed");
    r.request_none(&worker, "over max_running").await;
    for i in 0..2 {
        let again = r.ok(
            worker.make_attempt(&units[0], Duration::zero()).await,
            format_args!("make a again, {i}"),
        );
        r.ok_eq(
            again.status().await,
            crate::model::AttemptStatus::Pending,
            format_args!("a's try {i} past max_retries runs"),
        );
    }
    r.ok_eq(units[0].status().await, Pending, "a runs");
    r.ok_eq(units[0].num_attempts().await, 3, "a's tries");
}

/// The scheduler's totals of weight and pending units cover only the
/// candidates of the highest priority: paused specs and specs of lower
/// priority, however much they run, do not shift the fair share.
pub async fn scheduler_totals_over_top_candidates(t: TestBackend) {
    let (r, ns) = Run::with_ns("scheduler_totals_over_top_candidates", t).await;
    let worker = r.worker(&ns, "worker").await;
    let a = r.spec(&ns, data!({"name": "a", "weight": 1})).await;
    let b = r.spec(&ns, data!({"name": "b", "weight": 1})).await;
    let c = r
        .spec(&ns, data!({"name": "c", "weight": 1, "disabled": true}))
        .await;
    let d = r
        .spec(&ns, data!({"name": "d", "weight": 1, "priority": -1}))
        .await;
    let names = |prefix: &str| (0..10).map(|i| format!("{prefix}{i}")).collect::<Vec<_>>();
    for (spec, prefix, running) in [(&a, "a", 0), (&b, "b", 1), (&c, "c", 10), (&d, "d", 5)] {
        let names = names(prefix);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let units = r.units(spec, &refs).await;
        for unit in &units[..running] {
            r.ok(
                worker.make_attempt(unit, Duration::hours(1)).await,
                format_args!("run {}", unit.name()),
            );
        }
    }
    // Between a (nothing running) and b (one running) alone: scores 2
    // and 0, so a every time.
    for i in 0..10 {
        let got = r.request_one(&worker, format_args!("request {i}")).await;
        let Some(attempt) = got else {
            panic!("[{}] request {i}: no attempt", r.name)
        };
        check_eq!(
            r,
            attempt.work_unit().work_spec().name(),
            "a",
            "request {i}: spec"
        );
        r.ok(attempt.finish(None).await, format_args!("finish {i}"));
    }
}

/// The weight total covers only the candidates too: a paused spec's
/// weight does not push a spec below its fair share out of reach.
pub async fn scheduler_weight_total_over_candidates(t: TestBackend) {
    let (r, ns) = Run::with_ns("scheduler_weight_total_over_candidates", t).await;
    let worker = r.worker(&ns, "worker").await;
    let a = r.spec(&ns, data!({"name": "a", "weight": 1})).await;
    let b = r.spec(&ns, data!({"name": "b", "weight": 3})).await;
    let c = r
        .spec(&ns, data!({"name": "c", "weight": 100, "disabled": true}))
        .await;
    r.units(&a, &["a0"]).await;
    let b_units = r.units(&b, &["b0", "b1"]).await;
    r.units(&c, &["c0"]).await;
    r.ok(
        worker.make_attempt(&b_units[0], Duration::hours(1)).await,
        "b runs one",
    );
    // W = 4, N = 1: a and b score 2 each. Counting c's weight (W = 104)
    // would leave b at -98, never chosen.
    let mut from_b = 0;
    for i in 0..40 {
        let Some(attempt) = r.request_one(&worker, format_args!("request {i}")).await else {
            panic!("[{}] request {i}: no attempt", r.name)
        };
        if attempt.work_unit().work_spec().name() == "b" {
            from_b += 1;
        }
        r.ok(
            attempt.retry(None, Duration::zero()).await,
            format_args!("put back {i}"),
        );
    }
    check!(
        r,
        (8..=32).contains(&from_b),
        "b chosen {from_b} times of 40, about half expected"
    );
}
