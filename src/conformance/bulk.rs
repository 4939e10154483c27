//! Bulk add scenarios: `add_work_units` answers and stores what
//! `add_work_unit` once per entry would, all at once or not at all.

use std::collections::BTreeMap;
use std::sync::Arc;

use AttemptStatus as A;
use WorkUnitStatus as U;

use super::{Identity, Run, TestBackend};
use crate::api::{WorkSpecRef, WorkUnitRef};
use crate::data;
use crate::error::Error;
use crate::model::{
    AttemptRequest, AttemptStatus, DataMap, Duration, NewWorkUnit, WorkUnitMeta, WorkUnitQuery,
    WorkUnitStatus,
};
use crate::rules::limits::{data_len, MAX_DATA_BYTES, MAX_NAME_BYTES};

use U::{Available, Delayed, Pending};

/// One bulk entry, built as callers build them.
fn entry(name: &str, data: DataMap, meta: WorkUnitMeta) -> NewWorkUnit {
    NewWorkUnit::new(name, data).with_meta(meta)
}

impl Run {
    /// `add_work_units(units)`, which must succeed.
    async fn bulk(&self, spec: &WorkSpecRef, units: Vec<NewWorkUnit>) -> Vec<WorkUnitRef> {
        let n = units.len();
        self.ok(
            spec.add_work_units(units).await,
            format_args!("add_work_units of {n} to {:?}", spec.name()),
        )
    }

    /// Every unit of `spec` with its data, in name order.
    async fn stored(&self, spec: &WorkSpecRef) -> BTreeMap<String, DataMap> {
        let mut out = BTreeMap::new();
        for (name, unit) in self.ok(spec.work_units(&WorkUnitQuery::all()).await, "work_units") {
            let data = self.ok(unit.data().await, format_args!("data of {name}"));
            out.insert(name, data);
        }
        out
    }
}

/// The two ways a batch of units can be added: one `add_work_unit` call per
/// entry, or one `add_work_units` call for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Adding {
    /// `add_work_unit` once per entry, in order.
    OneByOne,
    /// One `add_work_units` call.
    Bulk,
}

impl Run {
    /// Adds `entries` to `spec` the `adding` way; one handle per entry.
    async fn add_entries(
        &self,
        spec: &WorkSpecRef,
        entries: Vec<NewWorkUnit>,
        adding: Adding,
    ) -> Vec<WorkUnitRef> {
        match adding {
            Adding::Bulk => self.bulk(spec, entries).await,
            Adding::OneByOne => {
                let mut out = Vec::new();
                for e in entries {
                    out.push(self.unit_meta(spec, &e.name, e.data, e.meta).await);
                }
                out
            }
        }
    }
}

/// The upsert fixture both adding paths share: units in the Finished,
/// Failed, Pending and Delayed states are re-added (with a new name among
/// them) the `adding` way; data and whole meta are replaced, identity and
/// history kept; Finished/Failed units lose their active attempt (which
/// keeps its status), Pending units keep theirs; a Finished unit re-added
/// with a future `not_before` becomes Delayed.
pub(crate) async fn upsert(r: &Run, adding: Adding) {
    let (_ns, spec, worker) = r.basic(r.name, "spec").await;
    let names = ["finished", "failed", "pending", "delayed"];
    let units = r.units(&spec, &names).await;
    let make = |i: usize| {
        let unit = units[i].clone();
        let worker = worker.clone();
        async move { r.ok(worker.make_attempt(&unit, Duration::zero()).await, "make") }
    };
    let fin = make(0).await;
    r.ok(fin.finish(Some(data!({"result": 1}))).await, "finish");
    let fail = make(1).await;
    r.ok(fail.fail(None).await, "fail");
    let pend = make(2).await;
    let delayed_meta = WorkUnitMeta {
        priority: 1.0,
        not_before: Some(r.now() + Duration::seconds(30)),
    };
    r.unit_meta(&spec, "delayed", DataMap::new(), delayed_meta)
        .await;

    let new_meta = WorkUnitMeta::with_priority(3.0);
    let batch = names
        .iter()
        .chain(&["fresh"])
        .map(|name| entry(name, data!({"re": name}), new_meta))
        .collect();
    let added = r.add_entries(&spec, batch, adding).await;
    check_eq!(r, added.len(), 5, "one handle per entry");
    let expect = [
        ("finished", Available, None, 1),
        ("failed", Available, None, 1),
        ("pending", Pending, Some(r.key(&pend).await), 1),
        ("delayed", Available, None, 0),
    ];
    for (i, (name, status, active, history)) in expect.into_iter().enumerate() {
        for (which, unit) in [("old handle", &units[i]), ("new handle", &added[i])] {
            check_eq!(r, unit.name(), name, "{name}: {which} name");
            let step = format!("{name}: {which}");
            r.ok_eq(
                unit.status().await,
                status,
                format_args!("{step} status after re-add"),
            );
            let active_now = r.active_key(unit).await;
            check_eq!(r, active_now, active.clone(), "{step} active attempt");
            r.ok_eq(
                unit.meta().await,
                new_meta,
                format_args!("{step} meta replaced"),
            );
            r.ok_eq(
                unit.num_attempts().await,
                history,
                format_args!("{step} history kept"),
            );
        }
    }
    r.ok_eq(
        fin.status().await,
        A::Finished,
        "finished attempt keeps its status",
    );
    r.ok_eq(
        fail.status().await,
        A::Failed,
        "failed attempt keeps its status",
    );
    for (which, unit) in [("old handle", &units[0]), ("new handle", &added[0])] {
        let want = data!({"re": "finished"});
        r.ok_eq(
            unit.data().await,
            want,
            format_args!("finished unit's data replaced ({which})"),
        );
    }
    // A pending unit shows its attempt's snapshot until the attempt goes.
    let pending = [("old handle", &units[2]), ("new handle", &added[2])];
    for (which, unit) in pending {
        let step = format!("pending unit shows its attempt's data ({which})");
        r.ok_eq(unit.data().await, DataMap::new(), step);
    }
    r.ok(added[2].clear_active_attempt().await, "clear");
    for (which, unit) in pending {
        let step = format!("pending unit's own data replaced ({which})");
        r.ok_eq(unit.data().await, data!({"re": "pending"}), step);
    }
    r.ok_eq(
        added[4].status().await,
        Available,
        "new unit in the batch is created",
    );
    // Re-adding a Finished unit with a future not_before makes it Delayed.
    let again = r.ok(
        worker.make_attempt(&units[0], Duration::zero()).await,
        "make",
    );
    r.ok(again.finish(None).await, "finish again");
    let later = WorkUnitMeta {
        priority: 0.0,
        not_before: Some(r.now() + Duration::seconds(30)),
    };
    let batch = vec![entry("finished", DataMap::new(), later)];
    r.add_entries(&spec, batch, adding).await;
    r.ok_eq(units[0].status().await, Delayed, "re-added with a delay");
}

/// **BulkAddUpsert.** Re-adding units in Finished, Failed, Pending and
/// Delayed states in one batch does what `add_work_unit` does to each: data
/// and meta replaced, the unit (and so its old handles and history) kept, a
/// finished or failed unit made available again, a pending one left with its
/// attempt; a new name in the same batch is created.
pub async fn bulk_add_upsert(t: TestBackend) {
    upsert(&Run::new("bulk_add_upsert", t), Adding::Bulk).await;
}

/// **BulkAddDuplicates.** Handles come back in entry order, one per entry;
/// entries with the same name answer the same unit, which keeps the last
/// entry's data and meta. For a name-identity stack that keeps unit
/// handles, the handle of each name's last entry is the one a later lookup
/// answers.
pub async fn bulk_add_duplicates(t: TestBackend) {
    let (r, ns) = Run::with_ns("bulk_add_duplicates", t).await;
    let spec = r.named_spec(&ns, "spec").await;
    let batch = vec![
        entry("b", data!({"v": 1}), WorkUnitMeta::with_priority(1.0)),
        entry("a", data!({"v": 2}), WorkUnitMeta::default()),
        entry("b", data!({"v": 3}), WorkUnitMeta::with_priority(5.0)),
        entry("c", data!({"v": 4}), WorkUnitMeta::default()),
    ];
    let added = r.bulk(&spec, batch).await;
    let order: Vec<&str> = added.iter().map(|u| u.name()).collect();
    check_eq!(r, order, ["b", "a", "b", "c"], "handles in entry order");
    check_eq!(
        r,
        r.stored(&spec).await,
        [
            ("a".to_string(), data!({"v": 2})),
            ("b".to_string(), data!({"v": 3})),
            ("c".to_string(), data!({"v": 4})),
        ]
        .into(),
        "each name once, the last entry wins"
    );
    for (i, unit) in added.iter().enumerate() {
        let looked_up = r.ok(spec.work_unit(unit.name()).await, "work_unit");
        r.ok_eq(
            unit.data().await,
            r.ok(looked_up.data().await, "data"),
            format_args!("handle {i} reads its unit"),
        );
    }
    r.ok_eq(
        added[0].meta().await,
        WorkUnitMeta::with_priority(5.0),
        "the first entry's handle sees the last entry's meta",
    );
    if r.identity() == Identity::Name {
        // Where the stack keeps unit handles (two lookups answer one
        // object), a bulk add answers the kept handle.
        let kept = r.ok(spec.work_unit("a").await, "work_unit");
        let again = r.ok(spec.work_unit("a").await, "work_unit");
        if Arc::ptr_eq(&kept, &again) {
            let readded = r
                .bulk(
                    &spec,
                    vec![entry("a", data!({"v": 5}), WorkUnitMeta::default())],
                )
                .await;
            check!(
                r,
                Arc::ptr_eq(&readded[0], &kept),
                "the bulk add's handle is the cached one"
            );
        }
    }
}

/// **BulkAddAllOrNothing.** An entry that breaks a limit in the middle of a
/// batch fails the batch with `add_work_unit`'s error for that entry, and
/// nothing of the batch is stored: no new unit, no replaced data.
pub async fn bulk_add_all_or_nothing(t: TestBackend) {
    let (r, ns) = Run::with_ns("bulk_add_all_or_nothing", t).await;
    let spec = r.named_spec(&ns, "spec").await;
    r.unit(&spec, "keep", data!({"v": 1})).await;
    let long = "n".repeat(MAX_NAME_BYTES + 1);
    let bad_entries = [
        (
            entry(&long, DataMap::new(), WorkUnitMeta::default()),
            Error::NameTooLong {
                limit: MAX_NAME_BYTES,
            },
        ),
        (
            entry("bad", DataMap::new(), WorkUnitMeta::with_priority(f64::NAN)),
            Error::BadPriority,
        ),
    ];
    for (bad, expected) in bad_entries {
        let step = format!("batch with {expected:?} in the middle");
        let batch = vec![
            entry("new1", data!({"v": 2}), WorkUnitMeta::default()),
            entry("keep", data!({"v": 3}), WorkUnitMeta::default()),
            bad,
            entry("new2", data!({"v": 4}), WorkUnitMeta::default()),
        ];
        r.fails(spec.add_work_units(batch).await, expected, &step);
        check_eq!(
            r,
            r.stored(&spec).await,
            [("keep".to_string(), data!({"v": 1}))].into(),
            "{step}: nothing stored"
        );
    }
}

/// **BulkAddLarge.** A batch of 24 MiB, six units of data
/// `MAX_DATA_BYTES` long (more than a PostgreSQL backend sends in one
/// statement), is stored whole like any other: a handle per entry in
/// order, every unit available, a unit added before replaced, the data of
/// the first and last read back exactly.
pub async fn bulk_add_large(t: TestBackend) {
    let (r, ns) = Run::with_ns("bulk_add_large", t).await;
    let spec = r.named_spec(&ns, "spec").await;
    const UNITS: usize = 6;
    let name = |i: usize| format!("u{i}");
    let data = |i: usize| {
        let mut map = data!({ "i": i, "pad": "" });
        let pad = MAX_DATA_BYTES - data_len(&map);
        map.insert("pad".into(), "x".repeat(pad).into());
        map
    };
    r.unit(&spec, &name(UNITS - 1), data!({"old": true})).await;
    let batch = (0..UNITS)
        .map(|i| entry(&name(i), data(i), WorkUnitMeta::default()))
        .collect();
    let handles = r.bulk(&spec, batch).await;
    let names: Vec<&str> = handles.iter().map(|u| u.name()).collect();
    check_eq!(
        r,
        names,
        (0..UNITS).map(name).collect::<Vec<_>>(),
        "a handle per entry, in order"
    );
    check_eq!(
        r,
        r.ok(spec.count_work_unit_status().await, "counts"),
        [(Available, UNITS as u64)].into(),
        "every unit stored, available"
    );
    for i in [0, UNITS - 1] {
        let stored = r.ok(handles[i].data().await, format_args!("data of {}", name(i)));
        check!(
            r,
            data_len(&stored) == MAX_DATA_BYTES,
            "length of {}",
            name(i)
        );
        check!(r, stored == data(i), "data of {}", name(i));
    }
}

/// **BulkAddEmpty.** An empty batch answers no handles and changes nothing.
pub async fn bulk_add_empty(t: TestBackend) {
    let (r, ns) = Run::with_ns("bulk_add_empty", t).await;
    let spec = r.named_spec(&ns, "spec").await;
    check!(
        r,
        r.bulk(&spec, Vec::new()).await.is_empty(),
        "no handles for an empty batch"
    );
    check!(
        r,
        r.ok(spec.count_work_unit_status().await, "counts")
            .is_empty(),
        "no units"
    );
    r.unit(&spec, "u", DataMap::new()).await;
    check!(
        r,
        r.bulk(&spec, Vec::new()).await.is_empty(),
        "no handles for an empty batch"
    );
    check_eq!(
        r,
        r.stored(&spec).await,
        [("u".to_string(), DataMap::new())].into(),
        "the spec is unchanged"
    );
}

/// **BulkAddCounts.** Units added in bulk are counted, listed by status and
/// scheduled like units added one by one: delayed ones by their not-before
/// time, available ones by priority.
pub async fn bulk_add_counts(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("bulk_add_counts", t, "spec").await;
    let later = r.now() + Duration::seconds(60);
    let batch = (0..50)
        .map(|i| {
            let meta = WorkUnitMeta {
                priority: f64::from(i % 5),
                not_before: (i % 10 == 0).then_some(later),
            };
            entry(&format!("u{i:02}"), data!({"i": i}), meta)
        })
        .collect();
    r.bulk(&spec, batch).await;
    r.ok_eq(
        spec.count_work_unit_status().await,
        [(Available, 45), (Delayed, 5)].into(),
        "counts after bulk add",
    );
    let meta = r.ok(spec.meta(true).await, "meta(true)");
    check_eq!(
        r,
        (meta.available_count, meta.pending_count),
        (45, 0),
        "counted meta after bulk add"
    );
    let delayed = r.ok(
        spec.work_units(&WorkUnitQuery::statuses([Delayed])).await,
        "work_units(delayed)",
    );
    check_eq!(
        r,
        delayed.keys().map(String::as_str).collect::<Vec<_>>(),
        ["u00", "u10", "u20", "u30", "u40"],
        "delayed units listed by status"
    );
    let got = r.ok(
        worker.request_attempts(&AttemptRequest::units(9)).await,
        "request 9",
    );
    let mut handed: Vec<String> = got
        .iter()
        .map(|a| a.work_unit().name().to_string())
        .collect();
    handed.sort();
    check_eq!(
        r,
        handed,
        ["u04", "u09", "u14", "u19", "u24", "u29", "u34", "u39", "u44"],
        "the highest priority goes first"
    );
    r.ok_eq(
        spec.count_work_unit_status().await,
        [(Available, 36), (Pending, 9), (Delayed, 5)].into(),
        "counts after the request",
    );
    r.advance_secs(60);
    r.ok_eq(
        spec.count_work_unit_status().await,
        [(Available, 41), (Pending, 9)].into(),
        "delayed units become available",
    );
}
