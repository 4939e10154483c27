//! Scenarios for `AttemptRequest::available_gb`: a worker saying how much
//! memory it has is only offered specs whose `min_memory_gb` fits in it.

use super::{unit_names_of, Run, TestBackend};
use crate::api::{WorkSpecRef, WorkerRef};
use crate::data;
use crate::model::{AttemptRequest, WorkSpecMeta};

/// A request for up to ten units with `gb` of memory.
fn with_memory(gb: f64) -> AttemptRequest {
    AttemptRequest {
        available_gb: gb,
        number_of_work_units: 10,
        ..AttemptRequest::default()
    }
}

/// The spec the request's attempts are from (`None` for no attempt),
/// expiring them so the units are available to the next request.
async fn spec_offered(r: &Run, worker: &WorkerRef, gb: f64) -> Option<String> {
    let got = r
        .request(
            worker,
            with_memory(gb),
            format_args!("request with {gb} GB"),
        )
        .await;
    let spec = got
        .first()
        .map(|a| a.work_unit().work_spec().name().to_string());
    for a in &got {
        r.ok(a.expire(None).await, format_args!("expire after {gb} GB"));
    }
    spec
}

/// A spec needing more memory than offered is skipped, however high its
/// priority; zero or a negative amount means the worker did not say, and
/// every spec is considered; a spec needing exactly the amount offered fits.
pub async fn available_memory_filters_specs(t: TestBackend) {
    let (r, ns) = Run::with_ns("available_memory_filters_specs", t).await;
    let big = r
        .spec(&ns, data!({"name": "big", "min_gb": 16, "priority": 5}))
        .await;
    let small = r.spec(&ns, data!({"name": "small", "min_gb": 1.5})).await;
    r.units(&big, &["b1", "b2"]).await;
    r.units(&small, &["s1", "s2"]).await;
    let worker = r.worker(&ns, "worker").await;

    for gb in [
        0.0,
        -4.0,
        16.0,
        64.0,
        f64::NAN,
        f64::NEG_INFINITY,
        f64::INFINITY,
    ] {
        let got = spec_offered(&r, &worker, gb).await;
        check_eq!(r, got.as_deref(), Some("big"), "{gb} GB: highest priority");
    }
    for gb in [1.5, 4.0, 15.9] {
        let got = spec_offered(&r, &worker, gb).await;
        check_eq!(r, got.as_deref(), Some("small"), "{gb} GB: big skipped");
    }
    let got = spec_offered(&r, &worker, 1.0).await;
    check_eq!(r, got, None, "1 GB fits no spec");

    // The memory filter and the spec filter both apply.
    let only_big = AttemptRequest {
        work_specs: vec!["big".into()],
        ..with_memory(4.0)
    };
    let got = r.request(&worker, only_big, "big only, 4 GB").await;
    check!(
        r,
        got.is_empty(),
        "big handed out to a 4 GB worker: {:?}",
        unit_names_of(&got)
    );
}

/// A spec's `min_memory_gb` changed with `set_meta` is what the next
/// request is filtered by.
pub async fn available_memory_follows_set_meta(t: TestBackend) {
    let (r, ns) = Run::with_ns("available_memory_follows_set_meta", t).await;
    let spec = r.spec(&ns, data!({"name": "spec", "min_gb": 2})).await;
    r.units(&spec, &["u"]).await;
    let worker = r.worker(&ns, "worker").await;
    set_min_memory(&r, &spec, 32.0).await;
    check_eq!(r, spec_offered(&r, &worker, 8.0).await, None, "needs 32 GB");
    set_min_memory(&r, &spec, 8.0).await;
    let got = spec_offered(&r, &worker, 8.0).await;
    check_eq!(r, got.as_deref(), Some("spec"), "needs 8 GB");
    // Only finite figures are stored.
    let meta = r.ok(spec.meta(false).await, "meta");
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let given = WorkSpecMeta {
            min_memory_gb: bad,
            ..meta.clone()
        };
        r.invalid_data(
            spec.set_meta(given).await,
            format_args!("set_meta({bad} GB)"),
        );
    }
    r.ok_eq(spec.meta(false).await, meta, "meta unchanged");
}

/// A definition without `min_gb` needs no memory: its `min_memory_gb` is
/// 0, and a worker with however little memory is offered it.
pub async fn available_memory_default_is_none(t: TestBackend) {
    let (r, ns) = Run::with_ns("available_memory_default_is_none", t).await;
    let bare = r.ok(
        ns.set_work_spec(data!({"name": "bare"})).await,
        "set_work_spec without min_gb",
    );
    r.ok_eq(
        bare.meta(false).await.map(|m| m.min_memory_gb),
        0.0,
        "min_memory_gb",
    );
    r.units(&bare, &["u"]).await;
    let worker = r.worker(&ns, "worker").await;
    let got = spec_offered(&r, &worker, 0.05).await;
    check_eq!(r, got.as_deref(), Some("bare"), "0.05 GB");
}

async fn set_min_memory(r: &Run, spec: &WorkSpecRef, gb: f64) {
    let mut meta = r.ok(spec.meta(false).await, "meta");
    meta.min_memory_gb = gb;
    r.ok(spec.set_meta(meta).await, format_args!("set_meta({gb} GB)"));
    let stored = r.ok(spec.meta(false).await, "meta").min_memory_gb;
    check_eq!(r, stored, gb, "min_memory_gb stored");
}

/// An idle continuous spec generates a unit only for a worker whose memory
/// fits it, and a worker it does not fit leaves its next time untouched.
pub async fn available_memory_gates_continuous(t: TestBackend) {
    let (r, ns) = Run::with_ns("available_memory_gates_continuous", t).await;
    let spec = r
        .spec(
            &ns,
            data!({"name": "spec", "continuous": true, "min_gb": 8}),
        )
        .await;
    let worker = r.worker(&ns, "worker").await;
    r.advance_secs(5);
    let before = r.ok(spec.meta(false).await, "meta").next_continuous;
    let got = r.request(&worker, with_memory(4.0), "4 GB").await;
    check!(
        r,
        got.is_empty(),
        "continuous unit for a 4 GB worker: {:?}",
        unit_names_of(&got)
    );
    let meta = r.ok(spec.meta(true).await, "meta after 4 GB");
    check_eq!(r, meta.available_count, 0, "no unit generated");
    check_eq!(r, meta.next_continuous, before, "next time untouched");
    let got = r.request(&worker, with_memory(8.0), "8 GB").await;
    check_eq!(r, got.len(), 1, "one continuous unit for an 8 GB worker");
}
