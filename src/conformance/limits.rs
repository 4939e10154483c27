//! The limits of the crate's `# Limits` section, at and beyond each one:
//! name length, data nesting and length, continuous intervals, priorities
//! and times.
//! Within a limit everything is stored and read back exactly; beyond it
//! the typed error comes back and nothing is stored.

use std::fmt::Debug;

use serde_json::Value;

use super::{at_secs, names, Dead, Identity, Run, TestBackend};
use crate::api::{AttemptRef, BackendExt, NamespaceRef, WorkSpecRef, WorkUnitRef, WorkerRef};
use crate::data;
use crate::error::{Error, Result};
use crate::model::{
    AttemptRequest, DataMap, Duration, NewWorkUnit, Time, WorkUnitMeta, WorkUnitQuery,
    WorkUnitStatus,
};
use crate::rules::limits::{
    data_len, MAX_DATA_BYTES, MAX_DATA_DEPTH, MAX_INTERVAL, MAX_MODE_BYTES, MAX_NAME_BYTES,
    MAX_TIME, MIN_TIME,
};

/// A name of exactly `len` bytes that compresses badly (a database may
/// compress repetitive index entries), distinct per `seed`.
fn name_of(len: usize, seed: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len)
        .map(|_| char::from(ALPHABET[rng.usize(..ALPHABET.len())]))
        .collect()
}

/// A map `depth` levels deep: key `"d"` holds nested arrays around a
/// string. Built without recursion, so any depth can be made.
pub(crate) fn nested(depth: usize) -> DataMap {
    let mut value = Value::String("bottom".into());
    for _ in 1..depth {
        value = Value::Array(vec![value]);
    }
    let mut map = DataMap::new();
    map.insert("d".into(), value);
    map
}

fn too_long() -> Error {
    Error::NameTooLong {
        limit: MAX_NAME_BYTES,
    }
}

fn too_deep() -> Error {
    Error::DataTooDeep {
        limit: MAX_DATA_DEPTH,
    }
}

fn out_of_range(e: &Error) -> bool {
    matches!(e, Error::TimeOutOfRange(_))
}

/// The over-long names tried for every kind: one byte over (also as a
/// two-byte character straddling the limit) and a megabyte.
fn over_long() -> Vec<String> {
    vec![
        name_of(MAX_NAME_BYTES + 1, 1),
        format!("{}é", name_of(MAX_NAME_BYTES - 1, 2)),
        "n".repeat(1 << 20),
    ]
}

/// **NameLimits.** Namespace, work spec, work unit and worker names of
/// exactly `MAX_NAME_BYTES` bytes work like any other; one byte more
/// answers `NameTooLong` and creates nothing, and looking such a name up
/// finds nothing.
pub async fn name_limits(t: TestBackend) {
    let r = Run::new("name_limits", t);
    let ns_name = name_of(MAX_NAME_BYTES, 10);
    let ns = r.ns(&ns_name).await;
    check_eq!(r, ns.name(), ns_name, "namespace name at the limit");
    let spec_name = name_of(MAX_NAME_BYTES, 11);
    let spec = r.named_spec(&ns, &spec_name).await;
    let unit_name = name_of(MAX_NAME_BYTES, 12);
    r.unit(&spec, &unit_name, data!({"k": 1})).await;
    let worker_name = name_of(MAX_NAME_BYTES, 13);
    let worker = r.worker(&ns, &worker_name).await;
    let a = r.request_unit(&worker, &unit_name, "request").await;
    check_eq!(r, a.worker().name(), worker_name, "worker name");
    r.ok(a.finish(None).await, "finish");
    let again = r.ok(
        r.backend()
            .work_unit_at(&ns_name, &spec_name, &unit_name)
            .await,
        "lookup by long names",
    );
    r.ok_eq(again.status().await, WorkUnitStatus::Finished, "status");
    check!(
        r,
        r.ok(ns.workers().await, "workers")
            .contains_key(&worker_name),
        "worker listed"
    );

    for long in over_long() {
        let step = format!("{} bytes", long.len());
        r.fails(r.backend().namespace(&long).await, too_long(), &step);
        r.fails(
            ns.set_work_spec(data!({ "name": long.clone() })).await,
            too_long(),
            &step,
        );
        r.fails(
            spec.add_work_unit(&long, data!({}), WorkUnitMeta::default())
                .await,
            too_long(),
            &step,
        );
        r.fails(ns.worker(&long).await, too_long(), &step);
        r.fails(
            ns.work_spec(&long).await,
            Error::NoSuchWorkSpec { name: long.clone() },
            &step,
        );
        r.fails(
            spec.work_unit(&long).await,
            Error::NoSuchWorkUnit { name: long.clone() },
            &step,
        );
    }
    let namespaces = r.ok(r.backend().namespaces().await, "namespaces");
    check!(
        r,
        namespaces.keys().all(|n| n.len() <= MAX_NAME_BYTES),
        "no long namespace"
    );
    r.ok_eq(ns.work_spec_names().await.map(|v| v.len()), 1, "specs");
    check_eq!(
        r,
        r.unit_names(&spec, "units").await.len(),
        1,
        "units of the spec"
    );
    r.ok_eq(ns.workers().await.map(|v| v.len()), 1, "workers");
}

/// **ChainedNameLimits.** Chaining skips an output item whose name is over
/// the limit and adds the others, a name at the limit included.
pub async fn chained_name_limits(t: TestBackend) {
    let r = Run::new("chained_name_limits", t);
    let (_ns, first, second, worker) = r.chain_fixture("chained_name_limits").await;
    r.unit(&first, "u", DataMap::new()).await;
    let fits = name_of(MAX_NAME_BYTES, 20);
    let over = name_of(MAX_NAME_BYTES + 1, 21);
    let a = r.request_unit(&worker, "u", "request").await;
    r.ok(
        a.finish(Some(
            data!({"output": [fits.clone(), over.clone(), "short"]}),
        ))
        .await,
        "finish with long output names",
    );
    r.units_are(&second, [fits.as_str(), "short"], "chained units")
        .await;
}

/// Makes a fresh data map for each write path: given a name, a work spec
/// definition with that `"name"`.
type MakeData = fn(Option<&str>) -> DataMap;

/// `map`, with `name` as its `"name"` if given.
fn named(mut map: DataMap, name: Option<&str>) -> DataMap {
    if let Some(name) = name {
        map.insert("name".into(), Value::String(name.into()));
    }
    map
}

/// Each way an attempt ends, or is renewed, with data, by the name of the
/// unit [`store_everywhere`] makes for it.
const ENDS: [&str; 5] = ["renewed", "expired", "finished", "failed", "retried"];

/// The units [`store_everywhere`] adds with data.
const ADDED: [&str; 2] = ["added", "bulk"];

/// Every way a caller stores a data map, on fresh objects of `spec` (a
/// new spec `"added"`, the units of [`ADDED`] and a unit per name of
/// `ends`, a subset of [`ENDS`]): each path's name and answer.
async fn store_everywhere(
    r: &Run,
    (ns, spec, worker): Objects<'_>,
    make: MakeData,
    ends: &[&'static str],
) -> Vec<(&'static str, Result<(), Error>)> {
    let mut results = Vec::new();
    let set = ns.set_work_spec(make(Some("added"))).await.map(drop);
    results.push(("set_work_spec", set));
    results.push(("set_data", spec.set_data(make(Some(spec.name()))).await));
    let add = spec.add_work_unit("added", make(None), WorkUnitMeta::default());
    results.push(("add_work_unit", add.await.map(drop)));
    let bulk = spec.add_work_units(vec![NewWorkUnit::new("bulk", make(None))]);
    results.push(("add_work_units", bulk.await.map(drop)));
    let until = r.now() + Duration::hours(1);
    let update = worker.update(make(None), r.now(), until, "mode").await;
    results.push(("worker update", update));
    let attempt = |name: &'static str| async move {
        let unit = r.unit(spec, name, data!({"plain": true})).await;
        r.ok(
            worker.make_attempt(&unit, Duration::zero()).await,
            format_args!("make_attempt({name})"),
        )
    };
    for &end in ends {
        let a: AttemptRef = attempt(end).await;
        let data = Some(make(None));
        let result = match end {
            "renewed" => a.renew(Duration::hours(1), data).await,
            "expired" => a.expire(data).await,
            "finished" => a.finish(data).await,
            "failed" => a.fail(data).await,
            "retried" => a.retry(data, Duration::zero()).await,
            other => panic!("[{}] no attempt ends as {other:?}", r.name),
        };
        results.push((end, result));
    }
    results
}

/// The namespace, spec and worker a data scenario stores through.
type Objects<'a> = (&'a NamespaceRef, &'a WorkSpecRef, &'a WorkerRef);

/// `got` must equal `want`; a failure names their lengths, not the data,
/// which may be megabytes.
fn same_data(r: &Run, got: &DataMap, want: &DataMap, step: impl std::fmt::Display) {
    check!(
        r,
        got == want,
        "{step}: read back {} bytes as JSON where {} were stored",
        data_len(got),
        data_len(want)
    );
}

/// The length of `map` as compact JSON.
/// Stores `make`'s data on every path, each of which must answer
/// `expected`, then checks that nothing was stored: no new spec or unit,
/// and the spec's definition, the attempts' data and the worker's data
/// as they were. Deletes the units it made.
async fn refused_everywhere(
    r: &Run,
    objects: Objects<'_>,
    (make, ends): (MakeData, &[&'static str]),
    expected: Error,
    what: &str,
) {
    let (ns, spec, worker) = objects;
    let definition = r.ok(spec.data().await, "definition");
    for (path, result) in store_everywhere(r, objects, make, ends).await {
        r.fails(result, expected.clone(), format_args!("{what}: {path}"));
    }
    r.fails(
        ns.work_spec("added").await,
        Error::NoSuchWorkSpec {
            name: "added".into(),
        },
        format_args!("{what}: no spec added"),
    );
    r.ok_eq(
        spec.data().await,
        definition,
        format_args!("{what}: definition kept"),
    );
    check_eq!(
        r,
        r.unit_names(spec, "units").await,
        names(ends.iter().copied()),
        "{what}: no unit added"
    );
    let units = r.ok(spec.work_units(&WorkUnitQuery::all()).await, "units");
    for (name, unit) in units {
        let data = r.ok(unit.data().await, "data");
        check_eq!(
            r,
            data,
            data!({"plain": true}),
            "{what}: data of {name:?} kept"
        );
        for a in r.ok(unit.attempts().await, "attempts") {
            let data = r.ok(a.data().await, "attempt data");
            check_eq!(
                r,
                data,
                data!({"plain": true}),
                "{what}: attempt of {name:?}"
            );
        }
    }
    r.ok_empty(
        worker.data().await,
        format_args!("{what}: worker data kept"),
    );
    r.ok(
        spec.delete_work_units(&WorkUnitQuery::all()).await,
        "clean up",
    );
}

/// Stores `make`'s data on every path, each of which must accept it, then
/// reads every value back: each equals what was stored, and the units
/// added with it are handed out and finished.
async fn stored_everywhere(
    r: &Run,
    objects: Objects<'_>,
    (make, ends): (MakeData, &[&'static str]),
    what: &str,
) {
    let (ns, spec, worker) = objects;
    for (path, result) in store_everywhere(r, objects, make, ends).await {
        r.ok(result, format_args!("{what}: {path}"));
    }
    let added = r.ok(ns.work_spec("added").await, "spec added");
    let definition = r.ok(added.data().await, "definition");
    same_data(r, &definition, &make(Some("added")), "set_work_spec");
    let definition = r.ok(spec.data().await, "definition");
    same_data(r, &definition, &make(Some(spec.name())), "set_data");
    let data = r.ok(worker.data().await, "worker data");
    same_data(r, &data, &make(None), "worker data");
    let want = make(None);
    for &name in ADDED.iter().chain(ends) {
        let unit = r.ok(spec.work_unit(name).await, name);
        let attempts = r.ok(unit.attempts().await, "attempts");
        let data = match attempts.last() {
            Some(a) => r.ok(a.data().await, "attempt data"),
            None => r.ok(unit.data().await, "unit data"),
        };
        same_data(r, &data, &want, format_args!("{what}: data of {name:?}"));
    }
    // The units added with the data can be handed out and their data read
    // from the attempt.
    let got = r
        .request(worker, AttemptRequest::units(10), "request the units")
        .await;
    for a in got {
        r.ok(a.data().await, format_args!("{what}: attempt data"));
        r.ok(a.finish(None).await, format_args!("{what}: finish"));
    }
}

/// **DataDepthLimits.** Data maps nested exactly `MAX_DATA_DEPTH` levels
/// are stored through every write path and read back exactly; one level
/// more, or 100,000, answers `DataTooDeep` on every path without storing
/// anything (and without crashing).
pub async fn data_depth_limits(t: TestBackend) {
    let (r, ns) = Run::with_ns("data_depth_limits", t).await;
    let spec = r.named_spec(&ns, "spec").await;
    let worker = r.worker(&ns, "worker").await;
    let objects = (&ns, &spec, &worker);
    let over: [(MakeData, &str); 2] = [
        (
            |name| named(nested(MAX_DATA_DEPTH + 1), name),
            "one level over",
        ),
        (|name| named(nested(100_000), name), "100,000 levels"),
    ];
    for (make, what) in over {
        refused_everywhere(&r, objects, (make, &ENDS), too_deep(), what).await;
    }
    let deepest = |name: Option<&str>| named(nested(MAX_DATA_DEPTH), name);
    stored_everywhere(&r, objects, (deepest, &ENDS), "at the limit").await;
}

/// A data map `len` bytes long as the limit counts it, with `name` as its
/// `"name"` if given: under `"floats"`, floats JSON writes with an
/// exponent, counted written out (some 30,000 bytes longer); under
/// `"pad"`, a thousand pieces of text mixing characters JSON escapes (`"`,
/// `\`, a newline, U+0001) with others (non-ASCII, letters), then as many
/// `x` as make up the length. Counted unescaped, the text would be 10,000
/// bytes shorter.
fn data_of_len(len: usize, name: Option<&str>) -> DataMap {
    const PIECE: &str = "\"\\\n\u{1}é€ size ";
    // `\"`, `\\`, `\n` and `\u0001`, then 2 + 3 bytes of UTF-8 and 6 of ASCII.
    const PIECE_LEN: usize = 2 + 2 + 2 + 6 + 2 + 3 + 6;
    const PIECES: usize = 1000;
    let mut map = named(DataMap::new(), name);
    let floats = [1e300, -1e-300, 1.5e20, 5e-324].repeat(25);
    map.insert("floats".into(), Value::from(floats));
    map.insert("pad".into(), Value::String(String::new()));
    let room = len - data_len(&map) - PIECES * PIECE_LEN;
    let pad = PIECE.repeat(PIECES) + &"x".repeat(room);
    map.insert("pad".into(), Value::String(pad));
    map
}

/// **DataSizeLimits.** Data maps exactly `MAX_DATA_BYTES` long as compact
/// JSON, escapes counted as written and floats in plain notation, are
/// stored through every write path
/// and read back exactly; one byte more answers `DataTooLarge` on every
/// path without storing anything. Of an attempt's ends only `finish` is
/// tried: every end checks its data with the one function whose depth
/// check `DataDepthLimits` tries on each, and megabytes take time on
/// every stack.
pub async fn data_size_limits(t: TestBackend) {
    let (r, ns) = Run::with_ns("data_size_limits", t).await;
    let spec = r.named_spec(&ns, "spec").await;
    let worker = r.worker(&ns, "worker").await;
    let objects = (&ns, &spec, &worker);
    let longest: MakeData = |name| data_of_len(MAX_DATA_BYTES, name);
    check_eq!(
        r,
        data_len(&longest(Some("spec"))),
        MAX_DATA_BYTES,
        "the longest definition"
    );
    let too_large = Error::DataTooLarge {
        limit: MAX_DATA_BYTES,
    };
    let over: MakeData = |name| data_of_len(MAX_DATA_BYTES + 1, name);
    let ends: &[&str] = &["finished"];
    refused_everywhere(&r, objects, (over, ends), too_large, "one byte over").await;
    stored_everywhere(&r, objects, (longest, ends), "at the limit").await;
}

/// **ModeLimits.** A worker's mode of `MAX_MODE_BYTES` (counted in UTF-8
/// bytes, multi-byte characters included) is stored by `update` and read
/// back exactly; one byte more, or megabytes more, answers `ModeTooLong`
/// and changes nothing of the worker.
pub async fn mode_limits(t: TestBackend) {
    let (r, ns) = Run::with_ns("mode_limits", t).await;
    let worker = r.worker(&ns, "worker").await;
    let longest = "é".repeat(MAX_MODE_BYTES / 2);
    let at = r.now();
    r.ok(
        worker.update(data!({"v": 1}), at, at, &longest).await,
        "update with the longest mode",
    );
    r.ok_eq(worker.mode().await, longest.clone(), "the longest mode");
    let too_long = Error::ModeTooLong {
        limit: MAX_MODE_BYTES,
    };
    let over = format!("{longest}x");
    let later = at + Duration::seconds(1);
    r.fails(
        worker.update(data!({"v": 2}), later, later, &over).await,
        too_long.clone(),
        "a mode one byte over",
    );
    r.fails(
        worker
            .update(data!({"v": 2}), later, later, &"m".repeat(8 << 20))
            .await,
        too_long,
        "a mode of 8 MiB",
    );
    r.ok_eq(worker.mode().await, longest, "the mode kept");
    r.ok_eq(worker.data().await, data!({"v": 1}), "the data kept");
    r.ok_eq(worker.last_update().await, at, "the time kept");
}

/// **IntervalLimits.** Continuous intervals from 0 to `MAX_INTERVAL` are
/// accepted by `set_work_spec` and `set_meta` alike; negative or longer
/// ones answer `InvalidWorkSpecData` from both and change nothing.
pub async fn interval_limits(t: TestBackend) {
    let (r, ns) = Run::with_ns("interval_limits", t).await;
    let max_secs = MAX_INTERVAL.num_seconds();
    let spec = r
        .spec(
            &ns,
            data!({"name": "spec", "continuous": true, "interval": max_secs}),
        )
        .await;
    r.ok_eq(
        spec.meta(false).await.map(|v| v.interval),
        MAX_INTERVAL,
        "longest interval",
    );
    for bad in [
        Value::from(max_secs + 1),
        Value::from(-1),
        Value::from(9.2e12),
        Value::from(1e13),
        Value::from(i64::MIN),
    ] {
        r.invalid_data(
            ns.set_work_spec(data!({"name": "bad", "continuous": true, "interval": bad.clone()}))
                .await,
            format_args!("set_work_spec interval {bad}"),
        );
        let mut def = data!({"name": "spec", "continuous": true});
        def.insert("interval".into(), bad.clone());
        r.invalid_data(
            spec.set_data(def).await,
            format_args!("set_data interval {bad}"),
        );
    }
    let meta = r.ok(spec.meta(false).await, "meta");
    for bad in [
        MAX_INTERVAL + Duration::microseconds(1),
        Duration::seconds(-1),
        Duration::MAX,
        Duration::MIN,
    ] {
        let mut given = meta.clone();
        given.interval = bad;
        r.invalid_data(
            spec.set_meta(given).await,
            format_args!("set_meta interval {bad}"),
        );
    }
    r.ok_eq(spec.meta(false).await, meta.clone(), "meta unchanged");
    check!(
        r,
        r.ok(ns.work_spec_names().await, "names") == vec!["spec".to_string()],
        "no bad spec"
    );
    let mut given = meta.clone();
    given.interval = Duration::zero();
    r.ok(spec.set_meta(given).await, "zero interval");
    let mut given = meta.clone();
    given.interval = MAX_INTERVAL;
    r.ok(spec.set_meta(given).await, "longest interval by set_meta");
}

/// **LongIntervalNearTheEnd.** Near the end of the time range, a continuous
/// spec with the longest interval still generates its unit, its next time
/// saturates at `MAX_TIME` (and round-trips through `set_meta`), and
/// requests for the other specs of the namespace keep succeeding.
pub async fn long_interval_near_the_end(t: TestBackend) {
    let r = Run::new("long_interval_near_the_end", t);
    r.t.clock.set(MAX_TIME - Duration::days(2));
    let ns = r.ns("long_interval_near_the_end").await;
    let spec = r
        .spec(
            &ns,
            data!({"name": "forever", "continuous": true, "interval": MAX_INTERVAL.num_seconds()}),
        )
        .await;
    let healthy = r.named_spec(&ns, "healthy").await;
    let names: Vec<String> = (0..20).map(|i| format!("u{i:02}")).collect();
    for name in &names {
        r.unit(&healthy, name, DataMap::new()).await;
    }
    let worker = r.worker(&ns, "worker").await;
    let mut continuous = 0;
    for i in 0..21 {
        r.advance_secs(1);
        let got = r
            .request(
                &worker,
                AttemptRequest::default(),
                format_args!("request {i}"),
            )
            .await;
        for a in got {
            if a.work_unit().work_spec().name() == "forever" {
                continuous += 1;
            }
            r.ok(a.finish(None).await, "finish");
        }
    }
    check_eq!(r, continuous, 1, "one continuous unit");
    let meta = r.ok(spec.meta(false).await, "meta");
    check_eq!(
        r,
        meta.next_continuous,
        Some(MAX_TIME),
        "saturated next time"
    );
    r.ok(spec.set_meta(meta.clone()).await, "set_meta round trip");
    r.ok_eq(spec.meta(false).await, meta, "meta kept");
    let left = r.ok(
        healthy
            .work_units(&WorkUnitQuery::statuses([WorkUnitStatus::Available]))
            .await,
        "available",
    );
    check!(
        r,
        left.is_empty(),
        "every healthy unit handed out: {:?}",
        left.keys()
    );
}

fn bad_priorities() -> [f64; 4] {
    [f64::NAN, -f64::NAN, f64::INFINITY, f64::NEG_INFINITY]
}

/// **PriorityLimits.** NaN and infinite priorities answer `BadPriority`
/// wherever a caller gives one, and change nothing; `-0.0` is stored as
/// `0.0` and orders like it; an adjustment that overflows answers
/// `BadPriority` and changes no unit.
pub async fn priority_limits(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("priority_limits", t, "spec").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    let all = WorkUnitQuery::all();
    for bad in bad_priorities() {
        let step = format!("priority {bad}");
        r.fails(
            spec.add_work_unit("bad", DataMap::new(), WorkUnitMeta::with_priority(bad))
                .await,
            Error::BadPriority,
            &step,
        );
        r.fails(
            unit.set_meta(WorkUnitMeta::with_priority(bad)).await,
            Error::BadPriority,
            &step,
        );
        r.fails(unit.set_priority(bad).await, Error::BadPriority, &step);
        r.fails(
            spec.set_work_unit_priorities(&all, bad).await,
            Error::BadPriority,
            &step,
        );
        r.fails(
            spec.adjust_work_unit_priorities(&all, bad).await,
            Error::BadPriority,
            &step,
        );
    }
    check_eq!(
        r,
        r.unit_names(&spec, "units").await.len(),
        1,
        "no bad unit"
    );
    r.ok_eq(unit.priority().await, 0.0, "unchanged");

    let is_positive_zero = |p: f64| p.to_bits() == 0;
    let neg = r
        .unit_meta(
            &spec,
            "b-neg",
            DataMap::new(),
            WorkUnitMeta::with_priority(-0.0),
        )
        .await;
    check!(
        r,
        is_positive_zero(r.ok(neg.priority().await, "p")),
        "add: -0.0 stored as 0.0"
    );
    r.ok(unit.set_priority(-0.0).await, "set_priority(-0.0)");
    check!(
        r,
        is_positive_zero(r.ok(unit.priority().await, "p")),
        "set_priority"
    );
    r.ok(
        unit.set_meta(WorkUnitMeta::with_priority(-0.0)).await,
        "set_meta",
    );
    check!(
        r,
        is_positive_zero(r.ok(unit.meta().await, "m").priority),
        "set_meta"
    );
    r.ok(spec.set_work_unit_priorities(&all, -0.0).await, "set all");
    check!(
        r,
        is_positive_zero(r.ok(neg.priority().await, "p")),
        "set all"
    );
    r.ok(
        spec.adjust_work_unit_priorities(&all, -0.0).await,
        "adjust by -0",
    );
    check!(
        r,
        is_positive_zero(r.ok(neg.priority().await, "p")),
        "adjust by -0"
    );
    r.unit_priority(&spec, "c-pos", 0.0).await;
    r.unit_priority(&spec, "a-neg", -0.0).await;
    r.drain(
        &worker,
        &["a-neg", "b-neg", "c-pos", "u"],
        "equal zeros order by name",
    )
    .await;

    let high = r
        .unit_meta(
            &spec,
            "high",
            DataMap::new(),
            WorkUnitMeta::with_priority(f64::MAX),
        )
        .await;
    let low = r
        .unit_meta(
            &spec,
            "low",
            DataMap::new(),
            WorkUnitMeta::with_priority(1.0),
        )
        .await;
    r.fails(
        spec.adjust_work_unit_priorities(&all, f64::MAX).await,
        Error::BadPriority,
        "adjust overflowing f64::MAX",
    );
    r.ok_eq(high.priority().await, f64::MAX, "high unchanged");
    r.ok_eq(low.priority().await, 1.0, "low unchanged");
    r.ok(
        spec.adjust_work_unit_priorities(&all, -f64::MAX).await,
        "adjust down",
    );
    check!(
        r,
        is_positive_zero(r.ok(high.priority().await, "high")),
        "MAX - MAX is 0.0"
    );
}

/// **TimeLimits.** Every time a caller gives, or makes with a duration, is
/// accepted from `MIN_TIME` to `MAX_TIME` and answers `TimeOutOfRange`
/// outside, changing nothing; sub-microsecond parts are dropped, and a leap
/// second (23:59:60.5) is as far into the next second (00:00:00.5).
pub async fn time_limits(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("time_limits", t, "spec").await;
    let before = MIN_TIME - Duration::microseconds(1);
    let after = MAX_TIME + Duration::microseconds(1);
    for edge in [MIN_TIME, MAX_TIME] {
        let meta = WorkUnitMeta {
            priority: 1.0,
            not_before: Some(edge),
        };
        let unit = r.unit_meta(&spec, "edge", DataMap::new(), meta).await;
        r.ok_eq(unit.meta().await, meta, format_args!("not_before {edge}"));
        r.ok(unit.set_meta(meta).await, "set_meta at the edge");
        r.ok(
            worker.update(DataMap::new(), edge, edge, "edge").await,
            "update at the edge",
        );
        r.ok_eq(worker.last_update().await, edge, "last_update");
        r.ok_eq(worker.expiration().await, edge, "expiration");
    }
    let unit = r.ok(spec.work_unit("edge").await, "edge");
    let kept = r.ok(unit.meta().await, "meta");
    for bad in [before, after, Time::MIN_UTC, Time::MAX_UTC] {
        let step = format!("time {bad}");
        let meta = WorkUnitMeta {
            priority: 0.0,
            not_before: Some(bad),
        };
        r.fails_like(
            spec.add_work_unit("bad", DataMap::new(), meta).await,
            out_of_range,
            "TimeOutOfRange",
            &step,
        );
        r.fails_like(
            unit.set_meta(meta).await,
            out_of_range,
            "TimeOutOfRange",
            &step,
        );
        r.fails_like(
            worker.update(DataMap::new(), bad, MAX_TIME, "bad").await,
            out_of_range,
            "TimeOutOfRange",
            &step,
        );
        r.fails_like(
            worker.update(DataMap::new(), MIN_TIME, bad, "bad").await,
            out_of_range,
            "TimeOutOfRange",
            &step,
        );
        let mut meta = r.ok(spec.meta(false).await, "spec meta");
        meta.next_continuous = Some(bad);
        r.fails_like(
            spec.set_meta(meta).await,
            out_of_range,
            "TimeOutOfRange",
            &step,
        );
    }
    r.ok_eq(unit.meta().await, kept, "unit meta kept");
    r.ok_eq(worker.mode().await, "edge", "worker kept");
    r.ok_eq(
        spec.meta(false).await.map(|v| v.next_continuous),
        None,
        "spec kept",
    );
    r.fails(
        spec.work_unit("bad").await,
        Error::NoSuchWorkUnit { name: "bad".into() },
        "no bad unit",
    );

    // Durations that reach past the end: the whole operation is refused.
    let beyond = Duration::between(r.now(), MAX_TIME) + Duration::microseconds(1);
    let to_end = Duration::between(r.now(), MAX_TIME);
    let plain = r.unit(&spec, "plain", DataMap::new()).await;
    let request = AttemptRequest {
        lifetime: beyond,
        work_specs: vec!["spec".into()],
        ..Default::default()
    };
    r.fails_like(
        worker.request_attempts(&request).await,
        out_of_range,
        "TimeOutOfRange",
        "request lifetime past the end",
    );
    r.fails_like(
        worker.make_attempt(&plain, beyond).await,
        out_of_range,
        "TimeOutOfRange",
        "make_attempt past the end",
    );
    r.fails_like(
        worker
            .make_attempt(
                &plain,
                -Duration::between(MIN_TIME, r.now()) - Duration::microseconds(1),
            )
            .await,
        out_of_range,
        "TimeOutOfRange",
        "make_attempt before the start",
    );
    let a = r.ok(worker.make_attempt(&plain, to_end).await, "to the end");
    r.ok_eq(a.expiration_time().await, MAX_TIME, "lease to the end");
    r.fails_like(
        a.renew(beyond, None).await,
        out_of_range,
        "TimeOutOfRange",
        "renew past the end",
    );
    r.fails_like(
        a.retry(None, beyond).await,
        out_of_range,
        "TimeOutOfRange",
        "retry past the end",
    );
    r.ok(a.retry(None, to_end).await, "retry to the end");
    r.ok_eq(
        plain.meta().await.map(|v| v.not_before),
        Some(MAX_TIME),
        "delayed to the end",
    );

    // Sub-microsecond parts are dropped (toward the past), and a leap
    // second (chrono's 23:59:60.5) is as far into the next second.
    let at = Time::from_timestamp;
    let cases = [
        ("fine", at(0, 1_999), at(0, 1_000)),
        (
            "leap",
            at(1_483_228_799, 1_500_000_000),
            at(1_483_228_800, 500_000_000),
        ),
    ];
    for (name, given, stored) in cases {
        check!(
            r,
            given.is_some() && stored.is_some(),
            "{name}: representable"
        );
        let (Some(given), Some(stored)) = (given, stored) else {
            continue;
        };
        let meta = WorkUnitMeta {
            priority: 0.0,
            not_before: Some(given),
        };
        let unit = r.unit_meta(&spec, name, DataMap::new(), meta).await;
        r.ok_eq(
            unit.meta().await.map(|v| v.not_before),
            Some(stored),
            format_args!("{name} not_before"),
        );
        r.ok(
            worker.update(DataMap::new(), given, given, name).await,
            format_args!("{name} update"),
        );
        r.ok_eq(
            worker.last_update().await,
            stored,
            format_args!("{name} last_update"),
        );
        r.ok_eq(
            worker.expiration().await,
            stored,
            format_args!("{name} expiration"),
        );
    }
}

/// **GoneBeforeTimeRange.** A lease or delay that would reach past the
/// time range, given for an object that no longer exists, answers `Gone`
/// (or a `NoSuch…`): whether the object exists is decided before the
/// duration is judged against the clock. Creating a worker in a destroyed
/// namespace, when its default lifetime would end past the range, answers
/// `Gone` too. Under [`Identity::Name`] a
/// worker of a destroyed namespace may instead be the worker now so
/// named, which exists, so its lease is then out of range.
pub async fn gone_before_time_range(t: TestBackend) {
    let (r, ns, spec, worker) = Run::with_basic("gone_before_time_range", t, "spec").await;
    let beyond = Duration::between(r.now(), MAX_TIME) + Duration::microseconds(1);
    let before = -Duration::between(MIN_TIME, r.now()) - Duration::microseconds(1);
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    let a = r.request_unit(&worker, "u", "request").await;
    r.delete_all(&spec).await;
    let dead = Dead::unit("spec", "u");
    r.gone(a.renew(beyond, None).await, dead, "renew past the end");
    r.gone(a.retry(None, beyond).await, dead, "retry past the end");
    r.gone(a.retry(None, before).await, dead, "retry before the start");
    r.gone(
        worker.make_attempt(&unit, beyond).await,
        dead,
        "make_attempt past the end",
    );
    r.ok(ns.destroy().await, "destroy the namespace");
    let request = AttemptRequest {
        lifetime: beyond,
        ..Default::default()
    };
    r.gone_or_out_of_range(
        worker.request_attempts(&request).await,
        "request past the end",
    );
    // A new worker's default lifetime would end past the time range.
    r.t.clock.set(MAX_TIME - Duration::minutes(1));
    r.gone_or_out_of_range(ns.worker("new").await, "new worker near the end");
}

impl Run {
    /// `Gone` under [`Identity::Object`]; under [`Identity::Name`] the
    /// object now so named may exist, so `TimeOutOfRange` is accepted too.
    #[track_caller]
    fn gone_or_out_of_range<T: Debug>(&self, res: Result<T>, step: &str) {
        match self.identity() {
            Identity::Object => self.gone(res, Dead::strict(), step),
            Identity::Name => {
                self.fails_like(
                    res,
                    |e| matches!(e, Error::Gone { .. }) || out_of_range(e),
                    "Gone or TimeOutOfRange",
                    step,
                );
            }
        }
    }
}

/// **ChainedTimeLimits.** An output item whose delay reaches past
/// `MAX_TIME` is skipped; the others are chained.
pub async fn chained_time_limits(t: TestBackend) {
    let r = Run::new("chained_time_limits", t);
    let (_ns, first, second, worker) = r.chain_fixture("chained_time_limits").await;
    r.unit(&first, "u", DataMap::new()).await;
    let a = r.request_unit(&worker, "u", "request").await;
    let beyond = (MAX_TIME - r.now()).num_seconds() + 1;
    r.ok(
        a.finish(Some(data!({"output": [
            ["late", {}, {"delay": beyond}],
            ["ok", {}, {"delay": 60, "priority": -0.0}]
        ]})))
        .await,
        "finish",
    );
    r.units_are(&second, ["ok"], "late item skipped").await;
    let ok = r.ok(second.work_unit("ok").await, "ok");
    check!(
        r,
        r.ok(ok.priority().await, "priority").to_bits() == 0,
        "-0.0 chained as 0.0"
    );
}

/// **ClockSetBack.** A unit whose not-before time has passed is delayed
/// again when the clock is set back before it (to the start of the time
/// range, say): its status, the counts and requests all agree.
pub async fn clock_set_back(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("clock_set_back", t, "spec").await;
    let meta = WorkUnitMeta {
        priority: 0.0,
        not_before: Some(r.now() + Duration::seconds(10)),
    };
    let unit = r.unit_meta(&spec, "u", DataMap::new(), meta).await;
    r.advance_secs(20);
    status_and_count(&r, &spec, &unit, WorkUnitStatus::Available, "due").await;
    r.t.clock.set(MIN_TIME + Duration::hours(1));
    status_and_count(&r, &spec, &unit, WorkUnitStatus::Delayed, "set back").await;
    let meta = r.ok(spec.meta(true).await, "meta");
    check_eq!(r, meta.available_count, 0, "meta counts");
    r.request_none(&worker, "nothing while set back").await;
    r.t.clock.set(at_secs(20));
    r.request_unit(&worker, "u", "due again").await;
}

/// Checks that the spec's only unit reports `want`, and that the spec's
/// counts agree.
async fn status_and_count(
    r: &Run,
    spec: &WorkSpecRef,
    unit: &WorkUnitRef,
    want: WorkUnitStatus,
    step: &str,
) {
    r.ok_eq(unit.status().await, want, format_args!("{step}"));
    let counts = r.ok(spec.count_work_unit_status().await, "counts");
    check_eq!(r, counts.get(&want), Some(&1), "counted, {step}");
}
