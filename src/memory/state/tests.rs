//! The per-status counters and name sets against a recount of every unit,
//! and selections read before an expiry against those read after it,
//! after many random operations.

use std::collections::BTreeMap;

use super::*;
use crate::data;
use crate::model::{AttemptRequest, Duration, NewWorkUnit, WorkUnitQuery, WorkUnitStatus};

/// A small deterministic generator (xorshift), so a failure replays.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}

/// A state with namespace `ns` holding spec `s`.
fn one_spec() -> (State, NamespaceId, SpecId) {
    let mut st = State::default();
    let ns = st.namespace("ns");
    let (spec, _) = st.set_work_spec(ns, data!({"name": "s"})).unwrap();
    (st, ns, spec)
}

/// Every unit's status computed from the unit itself, and each status's
/// names as the index lists them.
fn recount(st: &mut State, spec: SpecId, now: Time) -> (Counts, Counts) {
    let counted = st.counts(spec, now).unwrap();
    let mut by_unit = BTreeMap::<WorkUnitStatus, u64>::new();
    let mut hand_out = Vec::new();
    let ids: Vec<UnitId> = st.spec(spec).unwrap().units.ids(&st.units).collect();
    for id in ids {
        let status = st.unit_status_at(id, now).unwrap();
        *by_unit.entry(status).or_default() += 1;
        if status == WorkUnitStatus::Available {
            let unit = st.unit(id).unwrap();
            hand_out.push((-unit.meta.priority, unit.name.clone(), id));
        }
    }
    hand_out.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let ready: Vec<UnitId> = st.spec(spec).unwrap().index.ready().collect();
    let expected: Vec<UnitId> = hand_out.into_iter().map(|(_, _, id)| id).collect();
    assert_eq!(
        ready, expected,
        "hand-out order against a sort of the ready units"
    );
    let mut listed = |status| {
        st.select(spec, &WorkUnitQuery::statuses([status]), now)
            .unwrap()
            .len() as u64
    };
    let from_names = Counts {
        available: listed(WorkUnitStatus::Available),
        pending: listed(WorkUnitStatus::Pending),
        finished: listed(WorkUnitStatus::Finished),
        failed: listed(WorkUnitStatus::Failed),
        delayed: listed(WorkUnitStatus::Delayed),
    };
    let n = |status| by_unit.get(&status).copied().unwrap_or(0);
    let recounted = Counts {
        available: n(WorkUnitStatus::Available),
        pending: n(WorkUnitStatus::Pending),
        finished: n(WorkUnitStatus::Finished),
        failed: n(WorkUnitStatus::Failed),
        delayed: n(WorkUnitStatus::Delayed),
    };
    assert_eq!(from_names, counted, "status pages against the counters");
    (counted, recounted)
}

#[test]
fn counters_equal_a_recount_after_random_operations() {
    let mut dice = Dice(0x9E37_79B9_7F4A_7C15);
    let (mut st, ns, spec) = one_spec();
    let mut now = Time::UNIX_EPOCH + Duration::days(365);
    let worker = st.worker_named(ns, "w", now).unwrap();
    let mut attempts: Vec<AttemptId> = Vec::new();
    let mut overdue_compared = 0;
    for step in 0..5_000 {
        let name = format!("u{}", dice.roll(60));
        let pick = |dice: &mut Dice, attempts: &[AttemptId]| {
            (!attempts.is_empty()).then(|| attempts[dice.roll(attempts.len() as u64) as usize])
        };
        // Refusals (NotPending, LostLease, Gone) are part of the exercise.
        let _ = match dice.roll(12) {
            0 | 1 => {
                let not_before =
                    (dice.roll(3) == 0).then(|| now + Duration::seconds(dice.roll(120) as i64));
                let meta = WorkUnitMeta {
                    // Below, at and above the default priority.
                    priority: dice.roll(4) as f64 - 1.0,
                    not_before,
                };
                st.add_work_unit(spec, &name, data!({"i": step}), meta, now)
                    .map(drop)
            }
            2 | 3 => {
                let request = AttemptRequest {
                    number_of_work_units: dice.roll(4) as i64 + 1,
                    lifetime: Duration::seconds(dice.roll(90) as i64 + 1),
                    ..AttemptRequest::default()
                };
                st.request_attempts(worker, &request, now)
                    .map(|got| attempts.extend(got))
            }
            4 => pick(&mut dice, &attempts).map_or(Ok(()), |a| st.finish(a, None, now)),
            5 => pick(&mut dice, &attempts).map_or(Ok(()), |a| st.fail(a, None, now)),
            6 => pick(&mut dice, &attempts).map_or(Ok(()), |a| {
                st.retry(a, None, Duration::seconds(dice.roll(60) as i64), now)
            }),
            7 => pick(&mut dice, &attempts).map_or(Ok(()), |a| st.expire(a, None, now)),
            8 => {
                now += Duration::seconds(dice.roll(40) as i64);
                Ok(())
            }
            9 => {
                // The clock may be set back, too.
                now -= Duration::seconds(dice.roll(20) as i64);
                Ok(())
            }
            10 => {
                let status = crate::memory::index::STATUSES[dice.roll(5) as usize];
                let query = WorkUnitQuery {
                    limit: dice.roll(3) as i64,
                    ..WorkUnitQuery::statuses([status])
                };
                if dice.roll(2) == 0 {
                    st.delete_work_units(spec, &query, now).map(drop)
                } else {
                    st.change_priorities(spec, &query, now, |p| Ok(p + 1.0))
                }
            }
            _ => st
                .work_unit(spec, &name)
                .and_then(|id| st.clear_active_attempt(id, now)),
        };
        if step % 7 == 3 {
            // What a query selects as its expiry will leave the spec, read
            // before that expiry runs, is what it selects after.
            let admitted = crate::memory::index::STATUSES
                .into_iter()
                .filter(|_| dice.roll(2) == 0);
            let query = WorkUnitQuery {
                statuses: admitted.collect(),
                names: match dice.roll(3) {
                    0 => (0..8).map(|_| format!("u{}", dice.roll(60))).collect(),
                    _ => Vec::new(),
                },
                previous_name: match dice.roll(3) {
                    0 => format!("u{}", dice.roll(60)),
                    _ => String::new(),
                },
                limit: dice.roll(12) as i64,
            };
            let overdue = st.overdue(spec, now).unwrap();
            overdue_compared += usize::from(!overdue.is_empty());
            st.spec_mut(spec).unwrap().index.refile(now);
            let before = st.selected(spec, &query, now, &overdue).unwrap();
            let after = st.select(spec, &query, now).unwrap();
            assert_eq!(before, after, "step {step}: {query:?}");
        }
        if step % 50 == 0 {
            let (counted, recounted) = recount(&mut st, spec, now);
            assert_eq!(counted, recounted, "after step {step}");
        }
    }
    let (counted, recounted) = recount(&mut st, spec, now);
    assert_eq!(counted, recounted, "at the end");
    assert!(
        counted.finished + counted.failed + counted.pending > 0,
        "{counted:?}"
    );
    assert!(
        overdue_compared > 20,
        "{overdue_compared} selections with overdue attempts"
    );
}

/// Names stay found while the name table grows over several batches, a
/// batch that names a unit twice stores it once, and deleted names are
/// unfiled while their neighbours stay.
#[test]
fn names_are_found_across_table_growth_and_deletes() {
    let now = Time::UNIX_EPOCH;
    let (mut st, _, spec) = one_spec();
    let name = |i: usize| format!("unit-{i}");
    let mut ids = BTreeMap::new();
    for batch in 0..4_usize {
        // Each batch names its units twice and repeats half of the last one.
        let range = (batch * 1_500).saturating_sub(750)..(batch + 1) * 1_500;
        let units = range
            .clone()
            .chain(range)
            .map(|i| NewWorkUnit::new(name(i), data!({ "batch": batch })))
            .collect();
        for (id, added) in st.add_work_units(spec, units, now).unwrap() {
            let known = *ids.entry(added.to_string()).or_insert(id);
            assert_eq!(known, id, "{added} keeps its unit");
        }
    }
    assert_eq!(ids.len(), 6_000);
    assert_eq!(st.units.len(), 6_000);
    for (unit, id) in &ids {
        assert_eq!(st.work_unit(spec, unit).unwrap(), *id);
        assert_eq!(&*st.unit_name(*id).unwrap(), unit.as_str());
    }
    let deleted: Vec<String> = (0..6_000).step_by(3).map(name).collect();
    let gone = st
        .delete_work_units(spec, &WorkUnitQuery::names(deleted.clone()), now)
        .unwrap();
    assert_eq!(gone.len(), deleted.len());
    for (unit, id) in &ids {
        match st.work_unit(spec, unit) {
            Ok(found) => assert_eq!(found, *id),
            Err(Error::NoSuchWorkUnit { .. }) => assert!(deleted.contains(unit)),
            Err(e) => panic!("{unit}: {e}"),
        }
    }
    let readded = st
        .add_work_units(spec, vec![NewWorkUnit::new(name(0), data!({}))], now)
        .unwrap();
    assert_ne!(readded[0].0, ids[&name(0)], "a re-added name is a new unit");
    assert_eq!(st.work_unit(spec, &name(0)).unwrap(), readded[0].0);
    let filed = st.spec(spec).unwrap().units.ids(&st.units).count();
    assert_eq!(filed, 6_000 - deleted.len() + 1, "each unit filed once");
}

/// Random adds and deletes over a small pool of names: after every step
/// each name is found exactly when a model says it was added and not
/// deleted since, and keeps its unit while it stays.
#[test]
fn names_stay_found_through_random_adds_and_deletes() {
    let now = Time::UNIX_EPOCH;
    let (mut st, _, spec) = one_spec();
    let mut dice = Dice(0x5eed);
    let mut model = BTreeMap::<String, UnitId>::new();
    for step in 0..4_000 {
        let name = format!("n{}", dice.roll(120));
        if dice.roll(3) == 0 {
            let gone = st
                .delete_work_units(spec, &WorkUnitQuery::names([name.clone()]), now)
                .unwrap();
            assert_eq!(gone.len(), usize::from(model.remove(&name).is_some()));
        } else {
            let added = st
                .add_work_units(spec, vec![NewWorkUnit::new(name.clone(), data!({}))], now)
                .unwrap();
            let known = *model.entry(name).or_insert(added[0].0);
            assert_eq!(
                known, added[0].0,
                "step {step}: an existing name keeps its unit"
            );
        }
        for i in 0..120 {
            let name = format!("n{i}");
            match (st.work_unit(spec, &name), model.get(&name)) {
                (Ok(found), Some(id)) => assert_eq!(found, *id, "step {step}: {name}"),
                (Err(Error::NoSuchWorkUnit { .. }), None) => {}
                (found, expected) => {
                    panic!("step {step}: {name}: {found:?}, expected {expected:?}")
                }
            }
        }
    }
    let filed = st.spec(spec).unwrap().units.ids(&st.units).count();
    assert_eq!(filed, model.len(), "each unit filed once");
}

/// Names on both sides of the length kept inline (23 bytes), some ending
/// in a multi-byte character that straddles it, and the empty name: each
/// is found, pages list them in byte order whichever way each is kept,
/// and a deleted name re-added is a new unit found under it.
#[test]
fn names_inline_and_shared_are_found_and_ordered_alike() {
    let now = Time::UNIX_EPOCH;
    let (mut st, _, spec) = one_spec();
    let mut names: Vec<String> = vec![String::new()];
    for len in 1..=40 {
        names.push("n".repeat(len));
        names.push(format!("{}é", "m".repeat(len)));
        names.push(format!("{}\u{0}", "z".repeat(len)));
    }
    let units = names
        .iter()
        .map(|n| NewWorkUnit::new(n.clone(), data!({})))
        .collect();
    let added: BTreeMap<String, UnitId> = st
        .add_work_units(spec, units, now)
        .unwrap()
        .into_iter()
        .map(|(id, name)| (name.to_string(), id))
        .collect();
    assert_eq!(added.len(), names.len());
    for (name, id) in &added {
        assert_eq!(st.work_unit(spec, name).unwrap(), *id, "{name:?}");
        assert_eq!(&*st.unit_name(*id).unwrap(), name.as_str());
    }
    let listed: Vec<String> = st
        .select(spec, &WorkUnitQuery::default(), now)
        .unwrap()
        .into_iter()
        .map(|(name, _)| name.to_string())
        .collect();
    let sorted: Vec<String> = added.keys().cloned().collect();
    assert_eq!(listed, sorted, "pages list names in byte order");

    let doomed: Vec<String> = names.iter().step_by(2).cloned().collect();
    let gone = st
        .delete_work_units(spec, &WorkUnitQuery::names(doomed.clone()), now)
        .unwrap();
    assert_eq!(gone.len(), doomed.len());
    for name in &doomed {
        assert!(
            matches!(st.work_unit(spec, name), Err(Error::NoSuchWorkUnit { .. })),
            "{name:?} deleted"
        );
    }
    let readded = st
        .add_work_units(
            spec,
            doomed
                .iter()
                .map(|n| NewWorkUnit::new(n.clone(), data!({})))
                .collect(),
            now,
        )
        .unwrap();
    for (id, name) in readded {
        assert_ne!(id, added[name.as_str()], "{name:?} is a new unit");
        assert_eq!(st.work_unit(spec, &name).unwrap(), id);
    }
    let filed = st.spec(spec).unwrap().units.ids(&st.units).count();
    assert_eq!(filed, names.len(), "each unit filed once");
}
