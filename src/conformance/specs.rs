//! Work spec scenarios, plus meta resets and float truncation.

use super::{at_secs, Dead, Run, TestBackend};
use crate::api::WorkSpecRef;
use crate::data;
use crate::error::Error;
use crate::model::{AttemptRequest, DataMap, Duration, NewWorkUnit, WorkSpecMeta, WorkUnitMeta};

/// **ChangeSpecData.** `set_data` with the same name replaces the
/// definition; with an empty map it fails with `NoWorkSpecName`, with a
/// different name with `ChangedName`, and the definition is unchanged after
/// both failures.
pub async fn change_spec_data(t: TestBackend) {
    let (r, ns) = Run::with_ns("change_spec_data", t).await;
    let spec = r.named_spec(&ns, "spec").await;
    let def = data!({"name": "spec", "min_gb": 2, "foo": "bar"});
    r.ok(spec.set_data(def.clone()).await, "set_data with extra keys");
    let stored = r.ok(spec.data().await, "data() after set_data");
    check_eq!(
        r,
        stored.get("min_gb").and_then(|v| v.as_f64()),
        Some(2.0),
        "min_gb by value"
    );
    check_eq!(
        r,
        stored.get("foo"),
        Some(&serde_json::json!("bar")),
        "extra key"
    );
    check_eq!(r, stored, def, "whole definition");

    r.fails(
        spec.set_data(data!({})).await,
        Error::NoWorkSpecName,
        "set_data({})",
    );
    r.fails(
        spec.set_data(data!({"name": "other"})).await,
        Error::ChangedName,
        "set_data with another name",
    );
    r.ok_eq(spec.data().await, def, "definition kept");
    let listed = r.ok(ns.work_spec_names().await, "names");
    check_eq!(
        r,
        listed,
        vec!["spec".to_string()],
        "no spec created by a failed set_data"
    );
}

/// **DataEmptyList.** A nested empty list round-trips as an empty list
/// inside a map.
pub async fn data_empty_list(t: TestBackend) {
    let (r, ns) = Run::with_ns("data_empty_list", t).await;
    let def = data!({"name": "spec", "min_gb": 0.1, "config": {"empty": []}, "n": {"a": {}}});
    let spec = r.spec(&ns, def.clone()).await;
    let stored = r.ok(spec.data().await, "data()");
    let config = stored.get("config");
    check!(
        r,
        config.is_some_and(|c| c.is_object()),
        "config is not a map: {config:?}"
    );
    check_eq!(
        r,
        config.and_then(|c| c.get("empty")),
        Some(&serde_json::json!([])),
        "empty list kept"
    );
    check_eq!(r, stored, def, "whole definition");
}

/// **DefaultMeta.** A spec with only its name reports the default meta.
pub async fn default_meta(t: TestBackend) {
    let (r, ns) = Run::with_ns("default_meta", t).await;
    let spec = r.named_spec(&ns, "spec").await;
    let meta = r.ok(spec.meta(false).await, "meta(false)");
    let expected = WorkSpecMeta {
        min_memory_gb: 0.1,
        ..WorkSpecMeta::default()
    };
    check_eq!(r, meta, expected, "default meta");
    check_eq!(r, meta.weight, 20, "weight");
    check_eq!(r, meta.next_continuous, None, "next_continuous unset");
    let counted = r.ok(spec.meta(true).await, "meta(true)");
    check_eq!(r, counted, expected, "default meta with counts");
}

/// A definition using every recognised key, and the meta it implies.
fn full_definition() -> (DataMap, WorkSpecMeta) {
    let def = data!({
        "name": "spec",
        "min_gb": 1,
        "priority": 10,
        "weight": 100,
        "disabled": true,
        "continuous": true,
        "interval": 60,
        "max_running": 10,
        "max_getwork": 1,
        "max_retries": 5,
        "then": "spec2",
        "runtime": "go",
    });
    let meta = WorkSpecMeta {
        priority: 10,
        weight: 100,
        paused: true,
        continuous: true,
        can_be_continuous: true,
        min_memory_gb: 1.0,
        interval: Duration::seconds(60),
        next_continuous: None,
        max_running: 10,
        max_attempts_returned: 1,
        max_retries: 5,
        next_work_spec_name: "spec2".into(),
        available_count: 0,
        pending_count: 0,
        runtime: "go".into(),
    };
    (def, meta)
}

/// **PrefilledMeta.** Every recognised key lands in its meta field.
pub async fn prefilled_meta(t: TestBackend) {
    let (r, ns) = Run::with_ns("prefilled_meta", t).await;
    let (def, expected) = full_definition();
    let spec = r.spec(&ns, def).await;
    r.ok_eq(spec.meta(false).await, expected.clone(), "meta");
    r.ok_eq(spec.meta(true).await, expected, "counted meta");
}

/// **SetDataSetsMeta.** `set_data` with every recognised key turns the
/// default meta into exactly the implied one.
pub async fn set_data_sets_meta(t: TestBackend) {
    let (r, ns) = Run::with_ns("set_data_sets_meta", t).await;
    let spec = r.named_spec(&ns, "spec").await;
    let before = r.ok(spec.meta(false).await, "meta before");
    check_eq!(r, before.weight, 20, "default weight");
    let (def, expected) = full_definition();
    r.ok(spec.set_data(def).await, "set_data");
    r.ok_eq(spec.meta(false).await, expected, "meta after set_data");
}

/// **NiceWeight.** Weight derivation through successive `set_data` calls.
pub async fn nice_weight(t: TestBackend) {
    let (r, ns) = Run::with_ns("nice_weight", t).await;
    let spec = r.named_spec(&ns, "spec").await;
    let cases = [
        (data!({"name": "spec", "nice": 5}), 15),
        (data!({"name": "spec", "nice": 40}), 1),
        (data!({"name": "spec", "nice": -10}), 30),
        (data!({"name": "spec", "nice": -200}), 220),
        (data!({"name": "spec", "nice": 3, "weight": 7}), 7),
        (data!({"name": "spec", "weight": 0, "nice": 3}), 17),
        (data!({"name": "spec", "weight": -5}), 1),
        (data!({"name": "spec", "nice": 20}), 1),
        (data!({"name": "spec"}), 20),
    ];
    for (def, weight) in cases {
        let step = format!("set_data({def:?})");
        r.ok(spec.set_data(def).await, &step);
        let meta = r.ok(spec.meta(false).await, &step);
        check_eq!(r, meta.weight, weight, "{step}: weight");
    }
}

/// **SetMeta.** `set_meta` stores the settable fields and ignores
/// `can_be_continuous`, the next spec name, the runtime and the counts.
pub async fn set_meta(t: TestBackend) {
    let (r, ns) = Run::with_ns("set_meta", t).await;
    let spec = r
        .spec(
            &ns,
            data!({"name": "spec", "continuous": true, "then": "next", "runtime": "go"}),
        )
        .await;
    let before = r.ok(spec.meta(false).await, "meta before");
    check!(
        r,
        before.continuous && before.can_be_continuous,
        "defined continuous: {before:?}"
    );
    let next = Some(at_secs(1000));
    let given = WorkSpecMeta {
        priority: 10,
        weight: 100,
        paused: true,
        continuous: false,
        can_be_continuous: false,
        min_memory_gb: 3.5,
        interval: Duration::seconds(60),
        next_continuous: next,
        max_running: 10,
        max_attempts_returned: 1,
        max_retries: 3,
        next_work_spec_name: "elsewhere".into(),
        available_count: 12,
        pending_count: 34,
        runtime: "rust".into(),
    };
    r.ok(spec.set_meta(given.clone()).await, "set_meta");
    let after = r.ok(spec.meta(false).await, "meta after");
    let expected = WorkSpecMeta {
        can_be_continuous: true,
        next_work_spec_name: "next".into(),
        available_count: 0,
        pending_count: 0,
        runtime: "go".into(),
        ..given
    };
    check_eq!(r, after, expected, "meta after set_meta");
}

/// **MetaContinuous.** Making a non-continuous spec continuous via
/// `set_meta` succeeds silently and changes nothing.
pub async fn meta_continuous(t: TestBackend) {
    let (r, ns) = Run::with_ns("meta_continuous", t).await;
    let spec = r.named_spec(&ns, "spec").await;
    let mut meta = r.ok(spec.meta(false).await, "meta");
    meta.continuous = true;
    meta.can_be_continuous = true;
    r.ok(spec.set_meta(meta).await, "set_meta(continuous)");
    let after = r.ok(spec.meta(false).await, "meta after");
    check!(r, !after.continuous, "continuous became true");
    check!(r, !after.can_be_continuous, "can_be_continuous became true");
}

/// **MetaCounts.** Counted meta follows one unit through its life.
pub async fn meta_counts(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("meta_counts", t, "spec").await;
    let counts_are = |want: (i64, i64), step: String| {
        let spec = spec.clone();
        let r = &r;
        async move {
            let m = r.ok(spec.meta(true).await, &step);
            check_eq!(r, (m.available_count, m.pending_count), want, "{step}");
            // Uncounted meta reports zero counts, whatever the units.
            let plain = r.ok(spec.meta(false).await, &step);
            check_eq!(
                r,
                (plain.available_count, plain.pending_count),
                (0, 0),
                "{step}: uncounted"
            );
        }
    };
    counts_are((0, 0), "no units".into()).await;
    r.unit(&spec, "u", DataMap::new()).await;
    counts_are((1, 0), "after add".into()).await;
    // Each round requests the unit, then ends its attempt one way.
    let rounds = [
        ("first", "expire", (1, 0)),
        ("second", "retry", (1, 0)),
        ("third", "finish", (0, 0)),
    ];
    for (round, end, after) in rounds {
        r.advance_secs(5);
        let step = format!("{round} request");
        let a = r.request_unit(&worker, "u", &step).await;
        counts_are((0, 1), format!("after {step}")).await;
        match end {
            "expire" => r.ok(a.expire(None).await, end),
            "retry" => r.ok(a.retry(None, Duration::zero()).await, end),
            _ => r.ok(a.finish(None).await, end),
        }
        counts_are(after, format!("after {end}")).await;
    }
}

/// **SpecDeletedGone.** After `destroy_work_spec`, `meta(false)`,
/// `add_work_unit` and `add_work_units` (of one unit or none) on the old
/// handle fail with `Gone` (or `NoSuchWorkSpec`).
pub async fn spec_deleted_gone(t: TestBackend) {
    let (r, ns) = Run::with_ns("spec_deleted_gone", t).await;
    let spec = r.named_spec(&ns, "spec").await;
    r.ok(ns.destroy_work_spec("spec").await, "destroy_work_spec");
    r.gone(
        spec.meta(false).await,
        Dead::spec("spec"),
        "meta(false) on dead spec",
    );
    r.gone(
        spec.add_work_unit("u", DataMap::new(), WorkUnitMeta::default())
            .await,
        Dead::spec("spec"),
        "add_work_unit on dead spec",
    );
    adds_are_gone(&r, &spec, "on dead spec").await;
    r.ok_empty(
        ns.work_spec_names().await,
        "add_work_unit re-created the spec",
    );
}

/// **SpecInNamespaceGone.** After the namespace is destroyed, a spec handle
/// from it fails `meta(false)`, `add_work_unit` and `add_work_units` (of
/// one unit or none) with `Gone` (or `NoSuchWorkSpec`).
pub async fn spec_in_namespace_gone(t: TestBackend) {
    let (r, ns) = Run::with_ns("spec_in_namespace_gone", t).await;
    let spec = r.named_spec(&ns, "spec").await;
    r.ok(ns.destroy().await, "destroy namespace");
    r.gone(spec.meta(false).await, Dead::spec("spec"), "meta(false)");
    r.gone(
        spec.add_work_unit("u", DataMap::new(), WorkUnitMeta::default())
            .await,
        Dead::spec("spec"),
        "add_work_unit",
    );
    adds_are_gone(&r, &spec, "in dead namespace").await;
}

/// `add_work_units` of one unit, and of none, on the handle of a spec that
/// is gone fail with `Gone` (or `NoSuchWorkSpec`).
async fn adds_are_gone(r: &Run, spec: &WorkSpecRef, context: &str) {
    let one = vec![NewWorkUnit::new("u", DataMap::new())];
    r.gone(
        spec.add_work_units(one).await,
        Dead::spec("spec"),
        format_args!("add_work_units of one {context}"),
    );
    r.gone(
        spec.add_work_units(Vec::new()).await,
        Dead::spec("spec"),
        format_args!("add_work_units of none {context}"),
    );
}

/// **OneDayInterval.** A continuous spec with an interval of a day or more
/// produces exactly one attempt on the first request; the interval reads
/// back exactly.
pub async fn one_day_interval(t: TestBackend) {
    let (r, ns) = Run::with_ns("one_day_interval", t).await;
    let day = 86_400;
    let spec = r
        .spec(
            &ns,
            data!({"name": "spec", "continuous": true, "interval": day + 1}),
        )
        .await;
    let worker = r.worker(&ns, "worker").await;
    let meta = r.ok(spec.meta(false).await, "meta");
    check_eq!(
        r,
        meta.interval,
        Duration::seconds(day + 1),
        "interval read back"
    );
    r.advance_secs(5);
    let got = r
        .request(&worker, AttemptRequest::units(10), "first request")
        .await;
    check_eq!(r, got.len(), 1, "attempts on first request");
    let meta = r.ok(spec.meta(false).await, "meta after request");
    check_eq!(
        r,
        meta.next_continuous,
        Some(at_secs(5 + day + 1)),
        "next_continuous"
    );
    r.ok(got[0].finish(None).await, "finish");
    r.advance_secs(day);
    r.request_none(&worker, "request before the interval has passed")
        .await;
}

/// `set_data` replaces the *entire* meta: earlier `set_meta` changes
/// are discarded and `next_continuous` is reset, so a continuous spec
/// generates a unit right after its definition is reloaded.
pub async fn set_data_resets_meta(t: TestBackend) {
    let (r, ns) = Run::with_ns("set_data_resets_meta", t).await;
    let def = data!({"name": "spec", "min_gb": 0.1, "continuous": true, "interval": 3600});
    let spec = r.spec(&ns, def.clone()).await;
    let worker = r.worker(&ns, "worker").await;
    r.advance_secs(10);
    let a = r.request_one(&worker, "first continuous request").await;
    let Some(a) = a else {
        panic!("[set_data_resets_meta] no continuous unit")
    };
    r.ok(a.finish(None).await, "finish");
    let mut meta = r.ok(spec.meta(false).await, "meta");
    check_eq!(
        r,
        meta.next_continuous,
        Some(at_secs(3610)),
        "next_continuous after generation"
    );
    meta.priority = 7;
    meta.max_retries = 9;
    meta.weight = 3;
    r.ok(spec.set_meta(meta).await, "set_meta");
    r.advance_secs(10);
    r.request_none(&worker, "within the interval").await;

    r.ok(spec.set_data(def).await, "set_data (reload)");
    let meta = r.ok(spec.meta(false).await, "meta after reload");
    let expected = WorkSpecMeta {
        continuous: true,
        can_be_continuous: true,
        min_memory_gb: 0.1,
        interval: Duration::seconds(3600),
        ..WorkSpecMeta::default()
    };
    check_eq!(r, meta, expected, "meta re-derived from the definition");
    r.advance_secs(1);
    let again = r.request_one(&worker, "request after reload").await;
    check!(
        r,
        again.is_some(),
        "reloaded continuous spec generated nothing"
    );
}

/// Float values of integer keys are truncated toward zero; `interval` is
/// truncated to whole seconds before conversion.
pub async fn definition_float_truncation(t: TestBackend) {
    let (r, ns) = Run::with_ns("definition_float_truncation", t).await;
    let spec = r
        .spec(
            &ns,
            data!({
                "name": "spec", "priority": 2.9, "weight": -0.5, "nice": 2.7,
                "max_running": 3.99, "max_getwork": 1.5, "max_retries": -2.5,
                "interval": 1.9, "min_gb": 2, "disabled": null, "then": null,
            }),
        )
        .await;
    let meta = r.ok(spec.meta(false).await, "meta");
    check_eq!(r, meta.priority, 2, "priority 2.9");
    // weight -0.5 truncates to 0 (absent), so nice 2.7 → 2 gives 18.
    check_eq!(r, meta.weight, 18, "weight from nice");
    check_eq!(r, meta.max_running, 3, "max_running 3.99");
    check_eq!(r, meta.max_attempts_returned, 1, "max_getwork 1.5");
    check_eq!(r, meta.max_retries, -2, "max_retries -2.5");
    check_eq!(r, meta.interval, Duration::seconds(1), "interval 1.9");
    check_eq!(r, meta.min_memory_gb, 2.0, "integer min_gb");
    check!(r, !meta.paused, "null disabled is absent");
    check_eq!(r, meta.next_work_spec_name, "", "null then is absent");
}

/// `set_work_spec` on an existing name is `set_data` on that spec:
/// its identity, handles, units and their attempts are kept, the
/// definition and meta replaced.
pub async fn set_work_spec_upsert(t: TestBackend) {
    let (r, ns) = Run::with_ns("set_work_spec_upsert", t).await;
    let old = r.spec(&ns, data!({"name": "spec", "priority": 1})).await;
    let unit = r.unit(&old, "u", data!({"k": 1})).await;
    let worker = r.worker(&ns, "worker").await;
    let running = r.ok(
        worker.make_attempt(&unit, Duration::zero()).await,
        "make_attempt",
    );
    let def = data!({"name": "spec", "priority": 5, "min_gb": 0.1, "new": true});
    let new = r.spec(&ns, def.clone()).await;
    r.active_is(&unit, Some(&running), "the attempt still runs")
        .await;
    r.ok_eq(
        running.status().await,
        crate::model::AttemptStatus::Pending,
        "the attempt still pending",
    );
    r.ok_eq(old.data().await, def.clone(), "old handle sees it");
    r.ok_eq(
        old.meta(false).await.map(|v| v.priority),
        5,
        "meta re-derived",
    );
    check_eq!(
        r,
        r.ok(new.work_unit("u").await, "lookup").name(),
        "u",
        "units kept"
    );
    r.ok_eq(unit.data().await, data!({"k": 1}), "unit handle still live");
    r.ok_eq(ns.work_spec_names().await.map(|v| v.len()), 1, "one spec");
    r.invalid_data(
        ns.set_work_spec(data!({"name": "spec", "priority": "x"}))
            .await,
        "invalid re-definition",
    );
    r.ok_eq(old.data().await, def, "definition kept after the failure");
}

/// Counted meta never counts Delayed units as available; on the
/// seven-state fixture: three available, one pending.
pub async fn meta_counts_exclude_delayed(t: TestBackend) {
    let (r, ns) = Run::with_ns("meta_counts_exclude_delayed", t).await;
    let seven = r.seven(&ns, "spec").await;
    let meta = r.ok(seven.spec.meta(true).await, "meta(true)");
    check_eq!(
        r,
        (meta.available_count, meta.pending_count),
        (3, 1),
        "counts"
    );
    r.advance(Duration::days(1));
    let meta = r.ok(seven.spec.meta(true).await, "meta(true) a day later");
    // The delayed unit is due now; the pending attempt has expired.
    check_eq!(
        r,
        (meta.available_count, meta.pending_count),
        (5, 0),
        "counts a day later"
    );
}

/// A recognised definition key whose value is null counts as absent: a
/// definition of nulls derives the meta of one with only a name.
pub async fn null_keys_are_absent(t: TestBackend) {
    let (r, ns) = Run::with_ns("null_keys_are_absent", t).await;
    let nulls = r
        .spec(
            &ns,
            data!({
                "name": "nulls", "priority": null, "weight": null, "nice": null,
                "interval": null, "continuous": null, "disabled": null,
                "max_running": null, "max_getwork": null, "max_retries": null,
                "runtime": null, "min_gb": null, "then": null
            }),
        )
        .await;
    // The fixture adds a `min_gb` only where the key is missing.
    let plain = r.spec(&ns, data!({"name": "plain", "min_gb": 0})).await;
    let derived = r.ok(nulls.meta(false).await, "meta of nulls");
    let default = r.ok(plain.meta(false).await, "meta of a name only");
    check_eq!(r, derived, default, "nulls derive the defaults");
}
