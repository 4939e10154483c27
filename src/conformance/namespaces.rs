//! Namespace scenarios, plus namespace get-or-create and destroy.

use super::{names, Run, TestBackend};
use crate::data;
use crate::error::Error;
use crate::model::{
    AttemptRequest, DataMap,
    WorkUnitStatus::{Finished, Pending},
};

/// **NamespaceTrivial.** A namespace fetched by name reports exactly that name.
pub async fn namespace_trivial(t: TestBackend) {
    let (r, ns) = Run::with_ns("namespace_trivial", t).await;
    check_eq!(r, ns.name(), "namespace_trivial", "name()");
    r.ok(ns.destroy().await, "destroy");
}

/// **Namespaces.** After creating a namespace, the listing contains it under
/// its name, with a handle reporting that name.
pub async fn namespaces(t: TestBackend) {
    let (r, ns) = Run::with_ns("namespaces", t).await;
    let all = r.ok(r.backend().namespaces().await, "namespaces()");
    let Some(listed) = all.get("namespaces") else {
        panic!("[namespaces] listing lacks the namespace: {:?}", all.keys())
    };
    check_eq!(r, listed.name(), "namespaces", "listed handle name");
    r.ok(ns.destroy().await, "destroy");
    let all = r.ok(r.backend().namespaces().await, "namespaces() after destroy");
    check!(
        r,
        !all.contains_key("namespaces"),
        "destroyed namespace still listed"
    );
}

/// **Ping.** A ping of a fresh backend answers, and creates nothing: the
/// namespace listing stays empty.
pub async fn ping(t: TestBackend) {
    let r = Run::new("ping", t);
    r.ok(r.backend().ping().await, "ping");
    r.ok(r.backend().ping().await, "second ping");
    let all = r.ok(r.backend().namespaces().await, "namespaces()");
    check!(
        r,
        all.is_empty(),
        "a ping made namespaces: {:?}",
        all.keys()
    );
}

/// **SpecCreateDestroy.** Lookups of a missing spec fail with
/// `NoSuchWorkSpec`; after `set_work_spec` the handle, a fresh lookup, the
/// definition and the listing agree; after `destroy_work_spec` everything is
/// gone again and a second destroy fails with `NoSuchWorkSpec`.
pub async fn spec_create_destroy(t: TestBackend) {
    let (r, ns) = Run::with_ns("spec_create_destroy", t).await;
    let missing = Error::NoSuchWorkSpec {
        name: "spec".into(),
    };
    r.fails(
        ns.work_spec("spec").await,
        missing,
        "lookup before creation",
    );
    let listed = r.ok(ns.work_spec_names().await, "names before creation");
    check!(r, listed.is_empty(), "names before creation: {listed:?}");

    let def = data!({"name": "spec", "min_gb": 0.1});
    let spec = r.ok(ns.set_work_spec(def.clone()).await, "set_work_spec");
    check_eq!(r, spec.name(), "spec", "returned handle name");
    let again = r.ok(ns.work_spec("spec").await, "lookup after creation");
    check_eq!(r, again.name(), "spec", "looked-up handle name");
    r.ok_eq(spec.data().await, def.clone(), "stored definition");
    r.ok_eq(again.data().await, def, "stored definition via lookup");
    let listed = r.ok(ns.work_spec_names().await, "names after creation");
    check_eq!(r, listed, vec!["spec".to_string()], "names after creation");

    r.ok(ns.destroy_work_spec("spec").await, "destroy_work_spec");
    let missing = Error::NoSuchWorkSpec {
        name: "spec".into(),
    };
    r.fails(
        ns.work_spec("spec").await,
        Error::NoSuchWorkSpec {
            name: "spec".into(),
        },
        "lookup after destroy",
    );
    r.ok_empty(ns.work_spec_names().await, "names after destroy");
    r.fails(
        ns.destroy_work_spec("spec").await,
        missing,
        "second destroy",
    );
    r.ok(ns.destroy().await, "destroy namespace");
}

/// **SpecErrors.** `set_work_spec` with an empty map fails with exactly
/// `NoWorkSpecName`; with a numeric name with exactly `BadWorkSpecName`.
pub async fn spec_errors(t: TestBackend) {
    let (r, ns) = Run::with_ns("spec_errors", t).await;
    r.fails(
        ns.set_work_spec(data!({})).await,
        Error::NoWorkSpecName,
        "empty map",
    );
    r.fails(
        ns.set_work_spec(data!({"name": 4})).await,
        Error::BadWorkSpecName,
        "numeric name",
    );
    r.ok_empty(
        ns.work_spec_names().await,
        "failed definitions created specs",
    );
}

/// **TwoWorkSpecsBasic.** Two specs in one namespace have independent lifetimes.
pub async fn two_work_specs_basic(t: TestBackend) {
    let (r, ns) = Run::with_ns("two_work_specs_basic", t).await;
    let listed = |step: &'static str| {
        let ns = ns.clone();
        let r = &r;
        async move {
            let v = r.ok(ns.work_spec_names().await, step);
            v.into_iter().collect::<std::collections::BTreeSet<_>>()
        }
    };
    check_eq!(r, listed("names, none").await, names([]), "listing before");
    r.named_spec(&ns, "one").await;
    check_eq!(
        r,
        listed("names, one").await,
        names(["one"]),
        "listing with one"
    );
    r.named_spec(&ns, "two").await;
    check_eq!(
        r,
        listed("names, two").await,
        names(["one", "two"]),
        "listing with two"
    );
    r.ok(ns.work_spec("one").await, "lookup one");
    r.ok(ns.work_spec("two").await, "lookup two");

    r.ok(ns.destroy_work_spec("one").await, "destroy one");
    check_eq!(
        r,
        listed("names after destroying one").await,
        names(["two"]),
        "listing"
    );
    r.fails(
        ns.work_spec("one").await,
        Error::NoSuchWorkSpec { name: "one".into() },
        "lookup destroyed one",
    );
    let two = r.ok(ns.work_spec("two").await, "lookup two after destroying one");
    check_eq!(r, two.name(), "two", "name of two");

    r.ok(ns.destroy_work_spec("two").await, "destroy two");
    check_eq!(
        r,
        listed("names after destroying both").await,
        names([]),
        "listing"
    );
    for name in ["one", "two"] {
        r.fails(
            ns.work_spec(name).await,
            Error::NoSuchWorkSpec { name: name.into() },
            format_args!("lookup {name} after destroying both"),
        );
    }
}

/// Namespace get-or-create: two lookups of one name reach the same
/// namespace (a spec created through one is seen through the other), and
/// distinct names are isolated from each other.
pub async fn namespace_get_or_create(t: TestBackend) {
    let r = Run::new("namespace_get_or_create", t);
    let a = r.ns("shared").await;
    let b = r.ns("shared").await;
    let other = r.ns("other").await;
    r.named_spec(&a, "s").await;
    let via_b = r.ok(b.work_spec_names().await, "names via second handle");
    check_eq!(
        r,
        via_b,
        vec!["s".to_string()],
        "second handle sees the spec"
    );
    r.ok_empty(other.work_spec_names().await, "namespaces are not isolated");
    r.ok(b.worker("w").await, "worker via second handle");
    let workers = r.ok(a.workers().await, "workers via first handle");
    check!(
        r,
        workers.contains_key("w"),
        "first handle lacks worker: {:?}",
        workers.keys()
    );
    let listed = r.ok(r.backend().namespaces().await, "namespaces()");
    check_eq!(
        r,
        listed
            .keys()
            .filter(|k| *k == "shared" || *k == "other")
            .count(),
        2,
        "both namespaces listed once"
    );
}

/// Destroying twice: the second `destroy` on the same handle
/// succeeds and does nothing; a fresh `namespace(name)` afterwards is a new,
/// empty namespace.
///
/// Then, after the name has been re-created and populated, `destroy` on the
/// old handle:
/// * [`Identity::Object`](super::Identity::Object): succeeds and must not affect the new namespace
///   (its spec survives);
/// * [`Identity::Name`](super::Identity::Name): the old handle means "the namespace now called
///   so", so it destroys the new namespace (the spec is gone).
pub async fn namespace_destroy_twice(t: TestBackend) {
    let r = Run::new("namespace_destroy_twice", t);
    let ns = r.ns("twice").await;
    r.named_spec(&ns, "s").await;
    r.ok(ns.destroy().await, "first destroy");
    r.ok(ns.destroy().await, "second destroy of the same handle");
    let listed = r.ok(r.backend().namespaces().await, "namespaces() after destroy");
    check!(
        r,
        !listed.contains_key("twice"),
        "destroyed namespace listed"
    );

    let fresh = r.ns("twice").await;
    let specs = r.ok(
        fresh.work_spec_names().await,
        "names in re-created namespace",
    );
    check!(
        r,
        specs.is_empty(),
        "re-created namespace is not empty: {specs:?}"
    );
    r.named_spec(&fresh, "new").await;

    r.ok(
        ns.destroy().await,
        "destroy via old handle after re-creation",
    );
    let listed = r.ok(r.backend().namespaces().await, "namespaces() at the end");
    let survivor = r.ns("twice").await;
    let specs = r.ok(survivor.work_spec_names().await, "names at the end");
    check!(
        r,
        listed.contains_key("twice"),
        "old handle destroyed the new namespace"
    );
    check_eq!(r, specs, vec!["new".to_string()], "new namespace intact");
}

/// The empty string is a valid namespace name, distinct from others.
pub async fn namespace_empty_name(t: TestBackend) {
    let r = Run::new("namespace_empty_name", t);
    let ns = r.ns("").await;
    check_eq!(r, ns.name(), "", "name()");
    r.named_spec(&ns, "s").await;
    let listed = r.ok(r.backend().namespaces().await, "namespaces()");
    check!(
        r,
        listed.contains_key(""),
        "empty-named namespace not listed"
    );
    let again = r.ns("").await;
    let specs = r.ok(again.work_spec_names().await, "names via lookup");
    check_eq!(r, specs, vec!["s".to_string()], "same namespace via lookup");
    let control = r.ns("\u{0}\u{1}\n").await;
    let specs = r.ok(
        control.work_spec_names().await,
        "names of control-char namespace",
    );
    check!(r, specs.is_empty(), "control-char namespace not distinct");
}

/// `destroy` removes everything in the namespace: specs, units,
/// attempts and workers; the re-created namespace is empty, its workers are
/// new (defaults), and other namespaces are untouched.
pub async fn namespace_destroy_contents(t: TestBackend) {
    let r = Run::new("namespace_destroy_contents", t);
    let (ns, spec, worker) = r.basic("doomed", "spec").await;
    let (_keep, keep_spec, _) = r.basic("kept", "spec").await;
    r.unit(&keep_spec, "k", DataMap::new()).await;
    r.unit(&spec, "u", DataMap::new()).await;
    r.request_unit(&worker, "u", "request").await;
    r.ok(
        worker
            .update(data!({"old": true}), r.now(), r.now(), "old")
            .await,
        "update",
    );
    r.ok(ns.destroy().await, "destroy");
    let mut summary = r.ok(r.backend().summarize().await, "summary");
    summary.sort();
    let kept: Vec<&str> = summary.iter().map(|s| s.namespace.as_str()).collect();
    check_eq!(r, kept, vec!["kept"], "summary after destroy");
    r.advance_secs(7);
    let fresh = r.ns("doomed").await;
    r.ok_empty(fresh.work_spec_names().await, "specs survived");
    r.ok_empty(fresh.workers().await, "workers survived");
    let w = r.worker(&fresh, "worker").await;
    r.ok_eq(w.data().await, DataMap::new(), "new worker's data");
    r.ok_eq(w.mode().await, "", "new worker's mode");
    r.ok_eq(w.last_update().await, r.now(), "new worker created now");
    r.ok_empty(w.all_attempts().await, "attempts survived");
    r.units_are(&keep_spec, ["k"], "other namespace intact")
        .await;
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
    r.ok_eq(a.data().await, data!({"ns": "a"}), "a's unit");
    r.request_none(&a_worker, "second request in a").await;
    let b = r.request_unit(&b_worker, "u", "request in b").await;
    r.ok_eq(b.data().await, data!({"ns": "b"}), "b's unit");
    r.ok(a_ns.destroy_work_spec("spec").await, "destroy a's spec");
    let b_unit = r.ok(b_spec.work_unit("u").await, "b's unit");
    r.ok_eq(b_unit.status().await, Pending, "b untouched");
    let b_all = r.ok(b_worker.all_attempts().await, "b's attempts");
    check_eq!(r, b_all.len(), 1, "b's worker keeps its attempt");
}

/// Names that look like paths, escapes or other encodings, a control
/// character, and `é` composed (NFC) and decomposed (NFD).
const ODD_NAMES: [&str; 9] = [
    ".", "..", "-x", "a/b", "%2F", "?#", "\u{1}", "\u{E9}", "e\u{301}",
];

/// Odd names: namespaces, work specs and workers named
/// `.`, `..`, `-x`, `a/b`, `%2F`, `?#`, `\u{1}`, NFC `é` and NFD
/// `e\u{301}` are all distinct objects (no path handling, no decoding, no
/// Unicode normalisation), found by exact lookup and listed back exactly;
/// as specs they work as `then` targets and in a request's `work_specs`
/// filter.
pub async fn odd_object_names(t: TestBackend) {
    let (r, ns) = Run::with_ns("odd_object_names", t).await;
    let mut want: Vec<String> = ODD_NAMES.iter().map(|n| n.to_string()).collect();
    want.sort();

    for (i, name) in ODD_NAMES.into_iter().enumerate() {
        let mut def = data!({"name": name});
        if let Some(next) = ODD_NAMES.get(i + 1) {
            def.insert("then".into(), (*next).into());
        }
        let spec = r.spec(&ns, def).await;
        check_eq!(r, spec.name(), name, "handle of spec {name:?}");
        r.unit(&spec, "decoy", data!({"spec": name})).await;
    }
    let mut listed = r.ok(ns.work_spec_names().await, "work_spec_names");
    listed.sort();
    check_eq!(r, listed, want, "spec names listed back");
    for name in ODD_NAMES {
        let spec = r.ok(ns.work_spec(name).await, format_args!("spec {name:?}"));
        check_eq!(r, spec.name(), name, "looked-up spec {name:?}");
        let def = r.ok(spec.data().await, format_args!("definition of {name:?}"));
        check_eq!(r, def["name"], name, "name in the definition of {name:?}");
        let decoy = r.ok(spec.work_unit("decoy").await, format_args!("{name:?}"));
        r.ok_eq(
            decoy.data().await,
            data!({"spec": name}),
            format_args!("decoy of spec {name:?}"),
        );
    }

    let worker = r.worker(&ns, ODD_NAMES[0]).await;
    let first = r.ok(ns.work_spec(ODD_NAMES[0]).await, "first spec");
    r.unit(&first, "hop", DataMap::new()).await;
    for (i, name) in ODD_NAMES.into_iter().enumerate() {
        r.advance_secs(1);
        let request = AttemptRequest {
            number_of_work_units: 10,
            work_specs: vec![name.to_string()],
            ..AttemptRequest::default()
        };
        let step = format!("request from {name:?}");
        let got = r
            .request_units(&worker, request, &["decoy", "hop"], &step)
            .await;
        for attempt in &got {
            check_eq!(r, attempt.work_unit().work_spec().name(), name, "{step}");
        }
        r.ok(got[0].finish(None).await, format_args!("{step}: finish"));
        let output = data!({"output": ["hop"]});
        r.ok(
            got[1].finish(Some(output)).await,
            format_args!("{step}: chain"),
        );
        if let Some(next) = ODD_NAMES.get(i + 1) {
            let spec = r.ok(ns.work_spec(next).await, format_args!("{next:?}"));
            r.units_are(
                &spec,
                ["decoy", "hop"],
                format_args!("{next:?} after {step}"),
            )
            .await;
        }
    }
    for name in ODD_NAMES {
        let spec = r.ok(ns.work_spec(name).await, format_args!("spec {name:?}"));
        r.counts_are(&spec, [(Finished, 2)], format_args!("units of {name:?}"))
            .await;
    }

    for name in ODD_NAMES {
        let worker = r.worker(&ns, name).await;
        check_eq!(r, worker.name(), name, "handle of worker {name:?}");
        let now = r.now();
        r.ok(
            worker.update(data!({"worker": name}), now, now, name).await,
            format_args!("update worker {name:?}"),
        );
    }
    let workers = r.ok(ns.workers().await, "workers");
    check_eq!(
        r,
        workers.keys().cloned().collect::<Vec<_>>(),
        want,
        "worker names listed back"
    );
    for (name, worker) in &workers {
        check_eq!(r, worker.name(), name, "listed worker {name:?}");
        let fresh = r.worker(&ns, name).await;
        r.ok_eq(
            fresh.data().await,
            data!({"worker": name}),
            format_args!("data of worker {name:?}"),
        );
        r.ok_eq(
            fresh.mode().await,
            name.as_str(),
            format_args!("mode of {name:?}"),
        );
    }
    let (dot, dots) = (&workers["."], &workers[".."]);
    r.ok(dot.set_parent(Some(dots)).await, "set_parent(\"..\")");
    let parent = r.ok(dot.parent().await, "parent of \".\"");
    check_eq!(
        r,
        parent.as_ref().map(|p| p.name()),
        Some(".."),
        "parent of \".\""
    );
    let children = r.ok(dots.children().await, "children of \"..\"");
    let children: Vec<&str> = children.iter().map(|c| c.name()).collect();
    check_eq!(r, children, vec!["."], "children of \"..\"");

    for name in ODD_NAMES {
        let odd = r.ns(name).await;
        check_eq!(r, odd.name(), name, "handle of namespace {name:?}");
        r.spec(&odd, data!({"name": "probe", "namespace": name}))
            .await;
    }
    let listed = r.ok(r.backend().namespaces().await, "namespaces()");
    for name in ODD_NAMES {
        let Some(odd) = listed.get(name) else {
            panic!(
                "[{}] namespace {name:?} not listed: {:?}",
                r.name,
                listed.keys()
            )
        };
        check_eq!(r, odd.name(), name, "listed namespace {name:?}");
        let fresh = r.ns(name).await;
        r.ok_eq(
            fresh.work_spec_names().await,
            vec!["probe".to_string()],
            format_args!("specs of namespace {name:?}"),
        );
        let probe = r.ok(fresh.work_spec("probe").await, format_args!("{name:?}"));
        let def = r.ok(probe.data().await, format_args!("probe in {name:?}"));
        check_eq!(r, def["namespace"], name, "probe in namespace {name:?}");
    }
}
