//! Per-spec indexes that keep status, counting and scheduling independent of
//! the number of units in a spec.
//!
//! Every unit is in exactly one *class*, and each class has an index:
//!
//! | class | index |
//! |---|---|
//! | no active attempt, not-before reached | `ready`, by priority desc then name, or `ready_default` by name at the default priority (and in `ready_timed`, by not-before, if it has one) |
//! | no active attempt, not-before ahead | `delayed`, by not-before |
//! | active attempt Pending | `pending`, by expiration (for lazy expiry) |
//! | active attempt Finished / Failed | none |
//!
//! Besides, every unit's name is in the name-ordered set of its status, so
//! that counts are set sizes and a status-filtered page reads only the
//! names it returns. The one exception is a ready unit at the default
//! priority, the common case: among those, hand-out order is name order,
//! so `ready_default` serves as both their hand-out queue and their name
//! set, and filing or unfiling one touches one ordered set instead of two.
//!
//! Names in these ordered sets are [`NameKey`]s: a name with its first
//! eight bytes kept beside it as a number, compared first, so that a walk
//! down a set of a million names reads a name's bytes only when the
//! prefixes tie.
//!
//! Mutations of a unit go through [`SpecIndex::remove`] (with the unit's
//! state before) and [`SpecIndex::insert`] (with the state after), so the
//! indexes cannot drift from the units.

use std::borrow::Borrow;
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet};
use std::iter::Peekable;
use std::ops::Bound;

use crate::model::{AttemptStatus, Time, WorkUnitQuery, WorkUnitStatus};

use super::state::{AttemptId, UnitId, UnitName};

/// A priority with a total order, so it can be part of an index key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Priority(pub(crate) f64);

/// Equal as the order has it: `-0.0` is not `0.0`.
impl PartialEq for Priority {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Priority {}

impl PartialOrd for Priority {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Priority {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A unit name ordered as its bytes are, comparing a copy of its first
/// eight bytes (big-endian, zero-padded) before reading the name itself.
#[derive(Debug, Clone)]
pub(crate) struct NameKey {
    prefix: u64,
    name: UnitName,
}

impl NameKey {
    pub(crate) fn new(name: UnitName) -> Self {
        let mut bytes = [0; 8];
        let head = &name.as_bytes()[..name.len().min(8)];
        bytes[..head.len()].copy_from_slice(head);
        NameKey {
            prefix: u64::from_be_bytes(bytes),
            name,
        }
    }

    pub(crate) fn name(&self) -> &UnitName {
        &self.name
    }
}

impl PartialEq for NameKey {
    fn eq(&self, other: &Self) -> bool {
        self.prefix == other.prefix && self.name == other.name
    }
}

impl Eq for NameKey {}

impl PartialOrd for NameKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The byte order of the names: a smaller prefix means a smaller name, and
/// equal prefixes leave the order to the names.
impl Ord for NameKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.prefix
            .cmp(&other.prefix)
            .then_with(|| self.name.cmp(&other.name))
    }
}

/// Orders as the key does, so a set of keys can be ranged by a `&str`.
impl Borrow<str> for NameKey {
    fn borrow(&self) -> &str {
        &self.name
    }
}

/// Order of hand-out: descending priority, then ascending name.
pub(crate) type ReadyKey = (Reverse<Priority>, NameKey, UnitId);

/// One of the name-ordered sequences [`SpecIndex::names`] merges.
type NameHead<'a> = Peekable<Box<dyn Iterator<Item = &'a NameKey> + 'a>>;

/// The priority a unit has unless given another (`-0.0` is stored as it).
const DEFAULT_PRIORITY: Priority = Priority(0.0);

/// A unit with a not-before time, by that time.
type TimedKey = (Time, UnitId, UnitName, Priority);

/// What the index needs to know about a unit to file it.
#[derive(Debug, Clone)]
pub(crate) struct UnitClass {
    pub(crate) id: UnitId,
    pub(crate) name: UnitName,
    pub(crate) priority: f64,
    pub(crate) not_before: Option<Time>,
    /// The active attempt: its id, status and expiration.
    pub(crate) active: Option<(AttemptId, AttemptStatus, Time)>,
}

/// Status counts of a spec at a moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) available: u64,
    pub(crate) pending: u64,
    pub(crate) finished: u64,
    pub(crate) failed: u64,
    pub(crate) delayed: u64,
}

/// The indexes of one work spec.
#[derive(Debug, Default)]
pub(crate) struct SpecIndex {
    /// Ready units at any priority but the default.
    ready: BTreeSet<ReadyKey>,
    /// Ready units at the default priority, by name: both their hand-out
    /// order and their name set (they are not in `names`).
    ready_default: BTreeMap<NameKey, UnitId>,
    /// The ready units that have a not-before time, so that they can go
    /// back to `delayed` when the clock is set back.
    ready_timed: BTreeSet<TimedKey>,
    delayed: BTreeSet<TimedKey>,
    pending: BTreeSet<(Time, AttemptId)>,
    /// Unit names by status, in [`STATUSES`] order; the available ones
    /// but those in `ready_default`.
    names: [BTreeSet<NameKey>; 5],
}

/// The statuses a unit can have, in the order of [`SpecIndex`]'s name sets.
pub(crate) const STATUSES: [WorkUnitStatus; 5] = [
    WorkUnitStatus::Available,
    WorkUnitStatus::Pending,
    WorkUnitStatus::Finished,
    WorkUnitStatus::Failed,
    WorkUnitStatus::Delayed,
];

/// The position of `status` in [`STATUSES`] (`AnyStatus` has none).
fn slot(status: WorkUnitStatus) -> Option<usize> {
    STATUSES.iter().position(|s| *s == status)
}

/// The statuses a query admits, each decided once: testing a unit then
/// costs the same however long, or repetitive, the query's list is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StatusSet([bool; 5]);

impl StatusSet {
    pub(crate) fn of(query: &WorkUnitQuery) -> Self {
        StatusSet(STATUSES.map(|s| query.admits_status(s)))
    }

    pub(crate) fn contains(self, status: WorkUnitStatus) -> bool {
        slot(status).is_some_and(|i| self.0[i])
    }

    /// True if every status is admitted: the query filters none out.
    pub(crate) fn is_all(self) -> bool {
        self.0.iter().all(|admitted| *admitted)
    }
}

const AVAILABLE: usize = 0;
const PENDING: usize = 1;
const FINISHED: usize = 2;
const FAILED: usize = 3;
const DELAYED: usize = 4;

impl SpecIndex {
    /// Files a unit by its current state, as seen at `now`.
    pub(crate) fn insert(&mut self, unit: UnitClass, now: Time) {
        let status = match unit.active {
            Some((attempt, AttemptStatus::Pending, expiration)) => {
                self.pending.insert((expiration, attempt));
                PENDING
            }
            Some((_, AttemptStatus::Finished, _)) => FINISHED,
            Some((_, AttemptStatus::Failed, _)) => FAILED,
            _ => match unit.not_before {
                Some(nb) if now < nb => {
                    self.delayed
                        .insert((nb, unit.id, unit.name.clone(), Priority(unit.priority)));
                    DELAYED
                }
                _ => {
                    if let Some(key) = timed_key(&unit) {
                        self.ready_timed.insert(key);
                    }
                    self.file_ready(Priority(unit.priority), NameKey::new(unit.name), unit.id);
                    return;
                }
            },
        };
        self.names[status].insert(NameKey::new(unit.name));
    }

    /// Unfiles a unit, given the state it was filed with.
    pub(crate) fn remove(&mut self, unit: &UnitClass) {
        let status = match unit.active {
            Some((attempt, AttemptStatus::Pending, expiration)) => {
                self.pending.remove(&(expiration, attempt));
                PENDING
            }
            Some((_, AttemptStatus::Finished, _)) => FINISHED,
            Some((_, AttemptStatus::Failed, _)) => FAILED,
            _ => {
                // Filed under ready or delayed depending on the time it was filed.
                let name = NameKey::new(unit.name.clone());
                let in_ready = self.unfile_ready(Priority(unit.priority), &name, unit.id);
                if let Some(key) = timed_key(unit) {
                    if in_ready {
                        self.ready_timed.remove(&key);
                    } else {
                        self.delayed.remove(&key);
                    }
                }
                if !in_ready {
                    self.names[DELAYED].remove(&name);
                }
                return;
            }
        };
        self.names[status].remove(&NameKey::new(unit.name.clone()));
    }

    /// Files a unit as ready: in its hand-out order and its name set.
    fn file_ready(&mut self, priority: Priority, name: NameKey, id: UnitId) {
        if priority == DEFAULT_PRIORITY {
            self.ready_default.insert(name, id);
        } else {
            self.names[AVAILABLE].insert(name.clone());
            self.ready.insert((Reverse(priority), name, id));
        }
    }

    /// Unfiles a ready unit; false if it was not filed as ready.
    fn unfile_ready(&mut self, priority: Priority, name: &NameKey, id: UnitId) -> bool {
        if priority == DEFAULT_PRIORITY {
            self.ready_default.remove(name).is_some()
        } else {
            self.names[AVAILABLE].remove(name)
                && self.ready.remove(&(Reverse(priority), name.clone(), id))
        }
    }

    /// Files units by their not-before time as seen at `now`: delayed ones
    /// whose time has come become ready, and ready ones whose time is ahead
    /// again (the clock was set back) become delayed.
    pub(crate) fn refile(&mut self, now: Time) {
        while self.delayed.first().is_some_and(|first| first.0 <= now) {
            if let Some(key) = self.delayed.pop_first() {
                let name = NameKey::new(key.2.clone());
                self.names[DELAYED].remove(&name);
                self.file_ready(key.3, name, key.1);
                self.ready_timed.insert(key);
            }
        }
        while self.ready_timed.last().is_some_and(|last| last.0 > now) {
            if let Some(key) = self.ready_timed.pop_last() {
                let name = NameKey::new(key.2.clone());
                self.unfile_ready(key.3, &name, key.1);
                self.names[DELAYED].insert(name);
                self.delayed.insert(key);
            }
        }
    }

    /// Active pending attempts whose lease ran out before `now`.
    pub(crate) fn expired(&self, now: Time) -> Vec<AttemptId> {
        self.pending
            .iter()
            .take_while(|(expiration, _)| *expiration < now)
            .map(|(_, attempt)| *attempt)
            .collect()
    }

    /// Ready units in hand-out order: those above the default priority,
    /// those at it, those below.
    pub(crate) fn ready(&self) -> impl Iterator<Item = UnitId> + '_ {
        let default = (
            Reverse(DEFAULT_PRIORITY),
            NameKey::new(UnitName::default()),
            UnitId(0),
        );
        let above = self.ready.range(..default.clone());
        let below = self.ready.range(default..);
        above
            .map(|(_, _, id)| *id)
            .chain(self.ready_default.values().copied())
            .chain(below.map(|(_, _, id)| *id))
    }

    /// Names of the units with any of `statuses` after `start`, in byte
    /// order (the name sets of those statuses merged); call
    /// [`refile`](Self::refile) first.
    pub(crate) fn names<'a>(
        &'a self,
        statuses: impl IntoIterator<Item = WorkUnitStatus>,
        start: Bound<&'a str>,
    ) -> impl Iterator<Item = &'a UnitName> + 'a {
        let range = (start, Bound::Unbounded);
        fn head<'a>(names: impl Iterator<Item = &'a NameKey> + 'a) -> NameHead<'a> {
            let names: Box<dyn Iterator<Item = &'a NameKey> + 'a> = Box::new(names);
            names.peekable()
        }
        let mut heads = Vec::new();
        for slot in statuses.into_iter().filter_map(slot) {
            heads.push(head(self.names[slot].range::<str, _>(range)));
            if slot == AVAILABLE {
                let at_default = self.ready_default.range::<str, _>(range);
                heads.push(head(at_default.map(|(name, _)| name)));
            }
        }
        std::iter::from_fn(move || {
            let (first, _) = heads
                .iter_mut()
                .enumerate()
                .filter_map(|(i, head)| head.peek().map(|name| (i, *name)))
                .min_by(|a, b| a.1.cmp(b.1))?;
            heads[first].next().map(NameKey::name)
        })
    }

    /// Counts per status; call [`refile`](Self::refile) first.
    pub(crate) fn counts(&self) -> Counts {
        let count = |slot: usize| self.names[slot].len() as u64;
        Counts {
            available: count(AVAILABLE) + self.ready_default.len() as u64,
            pending: count(PENDING),
            finished: count(FINISHED),
            failed: count(FAILED),
            delayed: count(DELAYED),
        }
    }
}

fn timed_key(unit: &UnitClass) -> Option<TimedKey> {
    let not_before = unit.not_before?;
    Some((
        not_before,
        unit.id,
        unit.name.clone(),
        Priority(unit.priority),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Duration;

    fn unit(id: u64, name: &str, priority: f64) -> UnitClass {
        UnitClass {
            id: UnitId(id),
            name: name.into(),
            priority,
            not_before: None,
            active: None,
        }
    }

    fn t(s: i64) -> Time {
        Time::UNIX_EPOCH + Duration::seconds(s)
    }

    #[test]
    fn name_keys_order_as_the_names_bytes() {
        let names = [
            "",
            "\0",
            "a",
            "a\0",
            "a\0\0",
            "ab",
            "abcdefgh",
            "abcdefgh\0",
            "abcdefghi",
            "abcdefgz",
            "b",
            "\u{e9}",
            "\u{1F600}",
        ];
        for a in names {
            for b in names {
                let (ka, kb) = (NameKey::new(a.into()), NameKey::new(b.into()));
                assert_eq!(ka.cmp(&kb), a.cmp(b), "{a:?} against {b:?}");
                assert_eq!(ka == kb, a == b);
            }
        }
    }

    #[test]
    fn names_of_several_statuses_merge_in_order() {
        let mut index = SpecIndex::default();
        index.insert(unit(1, "c", 0.0), t(0));
        index.insert(unit(2, "a", 0.0), t(0));
        let mut pending = unit(3, "b", 0.0);
        pending.active = Some((AttemptId(9), AttemptStatus::Pending, t(5)));
        index.insert(pending, t(0));
        let mut delayed = unit(4, "d", 0.0);
        delayed.not_before = Some(t(10));
        index.insert(delayed, t(0));
        let names = |statuses: &[WorkUnitStatus], start| {
            index
                .names(statuses.iter().copied(), start)
                .map(|name| name.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&STATUSES, Bound::Unbounded), ["a", "b", "c", "d"]);
        assert_eq!(names(&STATUSES, Bound::Excluded("a")), ["b", "c", "d"]);
        assert_eq!(
            names(
                &[WorkUnitStatus::Delayed, WorkUnitStatus::Available],
                Bound::Unbounded
            ),
            ["a", "c", "d"]
        );
        assert!(names(&[WorkUnitStatus::Finished], Bound::Unbounded).is_empty());
    }

    #[test]
    fn ready_order_is_priority_then_name() {
        let mut index = SpecIndex::default();
        index.insert(unit(1, "b", 0.0), t(0));
        index.insert(unit(2, "a", 0.0), t(0));
        index.insert(unit(3, "z", 5.0), t(0));
        let order: Vec<_> = index.ready().collect();
        assert_eq!(order, [UnitId(3), UnitId(2), UnitId(1)]);
    }

    #[test]
    fn units_at_the_default_priority_are_handed_out_between_higher_and_lower() {
        let mut index = SpecIndex::default();
        index.insert(unit(1, "d", 0.0), t(0));
        index.insert(unit(2, "c", -1.0), t(0));
        index.insert(unit(3, "b", 0.0), t(0));
        index.insert(unit(4, "a", 1.0), t(0));
        index.insert(unit(5, "e", f64::MAX), t(0));
        index.insert(unit(6, "f", -f64::MAX), t(0));
        let order: Vec<_> = index.ready().collect();
        assert_eq!(order, [5, 4, 3, 1, 2, 6].map(UnitId));
        let names: Vec<_> = index
            .names([WorkUnitStatus::Available], Bound::Excluded("a"))
            .map(|name| name.to_string())
            .collect();
        assert_eq!(names, ["b", "c", "d", "e", "f"]);
        assert_eq!(index.counts().available, 6);
        index.remove(&unit(3, "b", 0.0));
        index.remove(&unit(2, "c", -1.0));
        assert_eq!(index.ready().collect::<Vec<_>>(), [5, 4, 1, 6].map(UnitId));
        assert_eq!(index.counts().available, 4);
    }

    #[test]
    fn priorities_are_equal_only_where_their_order_is() {
        assert_eq!(Priority(0.0), DEFAULT_PRIORITY);
        assert_ne!(Priority(-0.0), DEFAULT_PRIORITY);
        assert_eq!(Priority(f64::MAX), Priority(f64::MAX));
    }

    #[test]
    fn units_at_the_default_priority_move_between_delayed_and_ready() {
        let mut index = SpecIndex::default();
        let mut u = unit(1, "a", 0.0);
        u.not_before = Some(t(10));
        index.insert(u.clone(), t(0));
        index.insert(unit(2, "b", 0.0), t(0));
        assert_eq!(index.ready().collect::<Vec<_>>(), [UnitId(2)]);
        index.refile(t(10));
        assert_eq!(index.ready().collect::<Vec<_>>(), [UnitId(1), UnitId(2)]);
        index.refile(t(5));
        assert_eq!(index.ready().collect::<Vec<_>>(), [UnitId(2)]);
        assert_eq!((index.counts().available, index.counts().delayed), (1, 1));
        let delayed: Vec<_> = index
            .names([WorkUnitStatus::Delayed], Bound::Unbounded)
            .collect();
        assert_eq!(delayed, ["a"]);
        index.remove(&u);
        assert_eq!((index.counts().available, index.counts().delayed), (1, 0));
    }

    #[test]
    fn delayed_units_are_promoted_when_due() {
        let mut index = SpecIndex::default();
        let mut u = unit(1, "a", 0.0);
        u.not_before = Some(t(10));
        index.insert(u.clone(), t(0));
        assert_eq!(index.counts().delayed, 1);
        index.refile(t(9));
        assert_eq!(index.counts().available, 0);
        index.refile(t(10));
        assert_eq!(index.counts().available, 1);
        // Removal finds it wherever it was filed.
        index.remove(&u);
        assert_eq!(index.counts(), Counts::default());
    }

    #[test]
    fn ready_units_are_delayed_again_when_the_clock_goes_back() {
        let mut index = SpecIndex::default();
        let mut u = unit(1, "a", 0.0);
        u.not_before = Some(t(10));
        index.insert(u.clone(), t(20));
        index.insert(unit(2, "b", 0.0), t(20));
        assert_eq!(index.counts().available, 2);
        index.refile(t(5));
        assert_eq!((index.counts().available, index.counts().delayed), (1, 1));
        assert_eq!(index.ready().collect::<Vec<_>>(), [UnitId(2)]);
        index.refile(t(10));
        assert_eq!(index.counts().available, 2);
        index.remove(&u);
        index.refile(t(0));
        assert_eq!((index.counts().available, index.counts().delayed), (1, 0));
    }

    #[test]
    fn pending_attempts_expire_strictly_after_deadline() {
        let mut index = SpecIndex::default();
        let mut u = unit(1, "a", 0.0);
        u.active = Some((AttemptId(7), AttemptStatus::Pending, t(5)));
        index.insert(u.clone(), t(0));
        assert!(index.expired(t(5)).is_empty());
        assert_eq!(index.expired(t(6)), [AttemptId(7)]);
        index.remove(&u);
        assert_eq!(index.counts().pending, 0);
    }

    #[test]
    fn status_sets_read_long_and_repetitive_lists_once() {
        use WorkUnitStatus::*;
        let repeated = WorkUnitQuery::statuses(vec![Failed; 10_000]);
        let set = StatusSet::of(&repeated);
        assert!(set.contains(Failed) && !set.contains(Finished) && !set.is_all());
        assert!(StatusSet::of(&WorkUnitQuery::default()).is_all());
        let with_any = WorkUnitQuery::statuses([Failed, Failed, AnyStatus]);
        assert!(StatusSet::of(&with_any).is_all());
        let every = StatusSet::of(&WorkUnitQuery::statuses(STATUSES));
        assert!(every.is_all() && STATUSES.iter().all(|s| every.contains(*s)));
    }
}
