//! A spec's units by name: a flat hash table of slab slots.
//!
//! Each entry is eight bytes, the unit's slot and 32 bits of its name's
//! hash (its *tag*), in one array probed linearly from the tag's home
//! position. A lookup reads entries side by side, usually within one cache
//! line, and reads a unit's record only for an entry whose tag matches, to
//! compare the name, which the record holds inline up to 23 bytes. So in a
//! spec too large for the processor's caches a lookup waits for two memory
//! reads, the entries and the record, where a table keeping its control
//! bytes apart from its entries, with names apart from records, waits for
//! four.
//!
//! Growing rehashes from the stored tags, without reading a record;
//! removing shifts the entries after it back, so no tombstone is left to
//! lengthen later probes, and a table left at most an eighth full shrinks
//! (rehashed the same way), so a spec emptied of most of its units keeps
//! neither the memory of its largest size nor a walk over it. Name order, for paging, is the per-status name
//! sets' (see `index.rs`).

use std::fmt;
use std::hash::BuildHasher;
use std::num::NonZeroU32;

use super::super::slab::{slot_of, Slab};
use super::{UnitId, UnitState};

/// One unit filed by name: its name's [`tag`](NameIndex::tag) and its
/// slot. `Option<Filed>` is eight bytes, `None` an empty entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Filed {
    tag: NonZeroU32,
    slot: u32,
}

/// Entries in a power-of-two array, at most three quarters full, each at
/// or after its tag's home position (wrapping), with no empty entry
/// between the two.
#[derive(Default)]
struct Table {
    entries: Box<[Option<Filed>]>,
    len: usize,
}

/// The smallest table that grows at all.
const MIN_CAPACITY: usize = 16;

/// The capacity that holds `entries` within the load limit.
fn capacity_for(entries: usize) -> usize {
    entries
        .saturating_mul(4)
        .div_ceil(3)
        .max(MIN_CAPACITY)
        .checked_next_power_of_two()
        .unwrap_or(1 << (usize::BITS - 1))
}

impl Table {
    fn mask(&self) -> usize {
        self.entries.len().wrapping_sub(1)
    }

    fn home(&self, tag: NonZeroU32) -> usize {
        tag.get() as usize & self.mask()
    }

    /// The position of the first entry with `tag` that `matches` (what it
    /// answered, with it), else of the empty entry where one with `tag`
    /// would go (0 in a table of no entries, which has no room before
    /// [`reserve`](Self::reserve)).
    fn probe<T>(
        &self,
        tag: NonZeroU32,
        mut matches: impl FnMut(Filed) -> Option<T>,
    ) -> Result<(usize, T), usize> {
        if self.entries.is_empty() {
            return Err(0);
        }
        let mask = self.mask();
        let mut at = self.home(tag);
        loop {
            match self.entries[at] {
                None => return Err(at),
                Some(filed) if filed.tag == tag => {
                    if let Some(found) = matches(filed) {
                        return Ok((at, found));
                    }
                }
                Some(_) => {}
            }
            at = (at + 1) & mask;
        }
    }

    /// Room for `additional` more entries, within the load limit.
    fn reserve(&mut self, additional: usize) {
        let needed = self.len.saturating_add(additional);
        if needed.saturating_mul(4) <= self.entries.len().saturating_mul(3) {
            return;
        }
        self.rehash(capacity_for(needed));
    }

    /// After a removal: a table at most an eighth full shrinks to what its
    /// entries need, which leaves it three eighths to three quarters full,
    /// so that neither shrinking nor growing follows again soon.
    fn shrink_if_sparse(&mut self) {
        let capacity = self.entries.len();
        if capacity > MIN_CAPACITY && self.len.saturating_mul(8) <= capacity {
            self.rehash(capacity_for(self.len));
        }
    }

    /// Moves every entry into a new array of `capacity` entries.
    fn rehash(&mut self, capacity: usize) {
        let old = std::mem::replace(&mut self.entries, vec![None; capacity].into_boxed_slice());
        for filed in old.iter().flatten() {
            if let Err(at) = self.probe(filed.tag, |_| None::<()>) {
                self.entries[at] = Some(*filed);
            }
        }
    }

    fn insert_at(&mut self, at: usize, filed: Filed) {
        self.entries[at] = Some(filed);
        self.len += 1;
    }

    /// Empties the entry at `at`, then moves back each entry after it that
    /// may sit there (its home is not between the hole and itself), so that
    /// no probe meets an empty entry before its target.
    fn remove_at(&mut self, at: usize) {
        let mask = self.mask();
        let mut hole = at;
        let mut next = at;
        loop {
            next = (next + 1) & mask;
            let Some(filed) = self.entries[next] else {
                break;
            };
            let home = self.home(filed.tag);
            if next.wrapping_sub(home) & mask >= next.wrapping_sub(hole) & mask {
                self.entries[hole] = Some(filed);
                hole = next;
            }
        }
        self.entries[hole] = None;
        self.len -= 1;
        self.shrink_if_sparse();
    }

    fn iter(&self) -> impl Iterator<Item = Filed> + '_ {
        self.entries.iter().flatten().copied()
    }
}

/// The units of one spec by name.
#[derive(Default)]
pub(super) struct NameIndex {
    table: Table,
    hasher: foldhash::fast::RandomState,
}

impl fmt::Debug for NameIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NameIndex")
            .field("units", &self.table.len)
            .finish_non_exhaustive()
    }
}

/// The unit in `slot` if it is named `name`; a free slot, which the index
/// never holds, is no unit.
fn named(units: &Slab<UnitState>, slot: u32, name: &str) -> Option<UnitId> {
    units
        .at_slot(slot)
        .filter(|(_, unit)| &*unit.name == name)
        .map(|(id, _)| UnitId(id))
}

/// What [`NameIndex::entry`] found under a name.
pub(super) enum NameEntry<'a> {
    /// The unit of that name.
    Filed(UnitId),
    /// No unit has the name; this files one under it.
    Vacant(Vacant<'a>),
}

/// The place of a name no unit of the spec has.
pub(super) struct Vacant<'a> {
    table: &'a mut Table,
    at: usize,
    tag: NonZeroU32,
}

impl Vacant<'_> {
    /// Files the unit `id` (whose name this place was found for).
    pub(super) fn insert(self, id: UnitId) {
        self.table.insert_at(
            self.at,
            Filed {
                tag: self.tag,
                slot: slot_of(id.0),
            },
        );
    }
}

impl NameIndex {
    /// 32 bits of the name's hash, never zero.
    fn tag(&self, name: &str) -> NonZeroU32 {
        // The upper half: foldhash mixes it best.
        let bits = (self.hasher.hash_one(name) >> 32) as u32;
        NonZeroU32::new(bits).unwrap_or(NonZeroU32::MIN)
    }

    pub(super) fn get(&self, units: &Slab<UnitState>, name: &str) -> Option<UnitId> {
        self.table
            .probe(self.tag(name), |filed| named(units, filed.slot, name))
            .ok()
            .map(|(_, id)| id)
    }

    /// The unit named `name`, or the place to file one under it: one probe
    /// of the table for both.
    pub(super) fn entry(&mut self, units: &Slab<UnitState>, name: &str) -> NameEntry<'_> {
        let tag = self.tag(name);
        self.table.reserve(1);
        match self
            .table
            .probe(tag, |filed| named(units, filed.slot, name))
        {
            Ok((_, id)) => NameEntry::Filed(id),
            Err(at) => NameEntry::Vacant(Vacant {
                table: &mut self.table,
                at,
                tag,
            }),
        }
    }

    /// Room for `additional` more units.
    pub(super) fn reserve(&mut self, additional: usize) {
        self.table.reserve(additional);
    }

    /// Unfiles the unit `id`, named `name`: found by its slot, so no
    /// name is read.
    pub(super) fn remove(&mut self, id: UnitId, name: &str) {
        let slot = slot_of(id.0);
        let found = self
            .table
            .probe(self.tag(name), |filed| (filed.slot == slot).then_some(()));
        if let Ok((at, ())) = found {
            self.table.remove_at(at);
        }
    }

    /// Every unit filed, in no particular order.
    pub(super) fn ids<'a>(
        &'a self,
        units: &'a Slab<UnitState>,
    ) -> impl Iterator<Item = UnitId> + 'a {
        self.table
            .iter()
            .filter_map(|filed| units.at_slot(filed.slot).map(|(id, _)| UnitId(id)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn tag(bits: u32) -> NonZeroU32 {
        NonZeroU32::new(bits).unwrap()
    }

    fn find(table: &Table, filed: Filed) -> bool {
        table
            .probe(filed.tag, |f| (f.slot == filed.slot).then_some(()))
            .is_ok()
    }

    /// Random inserts and removals of entries whose tags share a few home
    /// positions, some at the table's end so that runs wrap around: after
    /// every step each entry is found exactly when a model holds it, every
    /// entry sits in the run that starts at its home, and the load stays
    /// within its limit.
    #[test]
    fn entries_stay_found_through_collisions_wraparound_and_removals() {
        let mut rng = fastrand::Rng::with_seed(0x7ab1e);
        let mut table = Table::default();
        let mut model = BTreeMap::<u32, Filed>::new();
        // Homes 1, 2, 15 and 31 at 16 and 32 entries; 47 and 63 wrap at 64.
        let tags = [1, 17, 33, 2, 18, 15, 31, 47, 63, 79, 95].map(tag);
        for step in 0..20_000 {
            let slot = rng.u32(0..40);
            let filed = Filed {
                tag: tags[slot as usize % tags.len()],
                slot,
            };
            if model.remove(&slot).is_some() {
                let found = table.probe(filed.tag, |f| (f.slot == slot).then_some(()));
                let Ok((at, ())) = found else {
                    panic!("step {step}: slot {slot} not found for removal")
                };
                table.remove_at(at);
            } else {
                table.reserve(1);
                let Err(at) = table.probe(filed.tag, |f| (f.slot == slot).then_some(())) else {
                    panic!("step {step}: slot {slot} found before its insert")
                };
                table.insert_at(at, filed);
                model.insert(slot, filed);
            }
            assert_eq!(table.len, model.len(), "step {step}");
            assert!(table.len * 4 <= table.entries.len() * 3, "step {step}");
            for slot in 0..40 {
                let filed = Filed {
                    tag: tags[slot as usize % tags.len()],
                    slot,
                };
                assert_eq!(
                    find(&table, filed),
                    model.contains_key(&slot),
                    "step {step}: slot {slot}"
                );
            }
            let mask = table.mask();
            for (at, filed) in table.entries.iter().enumerate() {
                let Some(filed) = filed else { continue };
                let run = (table.home(filed.tag)..)
                    .map(|i| i & mask)
                    .take_while(|&i| i != at);
                for i in run {
                    assert!(table.entries[i].is_some(), "step {step}: gap before {at}");
                }
            }
        }
    }

    #[test]
    fn a_table_emptied_of_most_entries_shrinks_and_keeps_the_rest() {
        let filed = |slot: u32| Filed {
            tag: tag(slot.wrapping_mul(0x9e37_79b9) | 1),
            slot,
        };
        let mut table = Table::default();
        for slot in 0..10_000u32 {
            table.reserve(1);
            let Err(at) = table.probe(filed(slot).tag, |_| None::<()>) else {
                unreachable!("no entry matches")
            };
            table.insert_at(at, filed(slot));
        }
        assert_eq!(table.entries.len(), 16_384);
        for slot in 8..10_000u32 {
            let found = table.probe(filed(slot).tag, |f| (f.slot == slot).then_some(()));
            let Ok((at, ())) = found else {
                panic!("slot {slot} not found")
            };
            table.remove_at(at);
            assert!(table.len * 4 <= table.entries.len() * 3, "slot {slot}");
        }
        assert_eq!(table.entries.len(), MIN_CAPACITY);
        for slot in 0..10_000u32 {
            assert_eq!(find(&table, filed(slot)), slot < 8, "slot {slot}");
        }
    }

    #[test]
    fn an_empty_index_finds_and_removes_nothing() {
        let units = Slab::default();
        let mut index = NameIndex::default();
        assert_eq!(index.get(&units, "u"), None);
        index.remove(UnitId(0), "u");
        assert_eq!(index.table.len, 0);
        assert!(index.table.entries.is_empty(), "nothing allocated");
    }

    #[test]
    fn growth_keeps_every_entry() {
        let mut table = Table::default();
        for slot in 0..10_000u32 {
            let filed = Filed {
                tag: tag(slot.wrapping_mul(0x9e37_79b9) | 1),
                slot,
            };
            table.reserve(1);
            let Err(at) = table.probe(filed.tag, |_| None::<()>) else {
                unreachable!("no entry matches")
            };
            table.insert_at(at, filed);
        }
        assert_eq!(table.len, 10_000);
        assert_eq!(table.entries.len(), 16_384);
        for slot in 0..10_000u32 {
            let filed = Filed {
                tag: tag(slot.wrapping_mul(0x9e37_79b9) | 1),
                slot,
            };
            assert!(find(&table, filed), "slot {slot}");
        }
    }
}
