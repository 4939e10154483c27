//! A spec's units by name: a hash table of slab slots.
//!
//! The table holds each unit's slot and 32 bits of its name's hash (eight
//! bytes); the name itself is the unit record's own, read from the slab
//! only when a lookup meets an entry whose stored hash matches. Growing
//! the table rehashes from the stored bits, without reading a record. A
//! lookup is one hash of the name and, usually, one name comparison,
//! however many units the spec has. Name order, for paging, is the
//! per-status name sets' (see `index.rs`).

use std::fmt;
use std::hash::BuildHasher;

use hashbrown::hash_table::{self, HashTable};

use super::super::slab::{slot_of, Slab};
use super::{UnitId, UnitState};

/// One unit filed by name: its slot and its name's [`tag`].
#[derive(Clone, Copy)]
struct Filed {
    slot: u32,
    tag: u32,
}

/// The table's hash of a name whose [`tag`] is `tag`. Both halves are the
/// tag, so the table's bucket (low bits) and its control byte (top bits)
/// come from it.
fn widen(tag: u32) -> u64 {
    (u64::from(tag) << 32) | u64::from(tag)
}

fn rehash(filed: &Filed) -> u64 {
    widen(filed.tag)
}

/// The units of one spec by name.
#[derive(Default)]
pub(super) struct NameIndex {
    table: HashTable<Filed>,
    hasher: foldhash::fast::RandomState,
}

impl fmt::Debug for NameIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NameIndex")
            .field("units", &self.table.len())
            .finish_non_exhaustive()
    }
}

/// The name of the unit in `slot`; empty for a free slot, which the index
/// never holds.
fn name_at(units: &Slab<UnitState>, slot: u32) -> &str {
    units.at_slot(slot).map_or("", |(_, unit)| &unit.name)
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
    entry: hash_table::VacantEntry<'a, Filed>,
    tag: u32,
}

impl Vacant<'_> {
    /// Files the unit `id` (whose name this place was found for).
    pub(super) fn insert(self, id: UnitId) {
        self.entry.insert(Filed {
            slot: slot_of(id.0),
            tag: self.tag,
        });
    }
}

impl NameIndex {
    /// 32 bits of the name's hash.
    fn tag(&self, name: &str) -> u32 {
        // The upper half: foldhash mixes it best.
        (self.hasher.hash_one(name) >> 32) as u32
    }

    pub(super) fn get(&self, units: &Slab<UnitState>, name: &str) -> Option<UnitId> {
        let tag = self.tag(name);
        let filed = self.table.find(widen(tag), |filed| {
            filed.tag == tag && name_at(units, filed.slot) == name
        })?;
        units.at_slot(filed.slot).map(|(id, _)| UnitId(id))
    }

    /// The unit named `name`, or the place to file one under it: one probe
    /// of the table for both.
    pub(super) fn entry(&mut self, units: &Slab<UnitState>, name: &str) -> NameEntry<'_> {
        let tag = self.tag(name);
        let found = self.table.entry(
            widen(tag),
            |filed| filed.tag == tag && name_at(units, filed.slot) == name,
            rehash,
        );
        match found {
            hash_table::Entry::Occupied(filed) => match units.at_slot(filed.get().slot) {
                Some((id, _)) => NameEntry::Filed(UnitId(id)),
                // The index holds only filled slots; a free one is no unit.
                None => NameEntry::Vacant(Vacant {
                    entry: filed.remove().1,
                    tag,
                }),
            },
            hash_table::Entry::Vacant(entry) => NameEntry::Vacant(Vacant { entry, tag }),
        }
    }

    /// Room for `additional` more units.
    pub(super) fn reserve(&mut self, additional: usize) {
        self.table.reserve(additional, rehash);
    }

    /// Unfiles the unit `id`, named `name`: found by its slot, so no
    /// name is read.
    pub(super) fn remove(&mut self, id: UnitId, name: &str) {
        let (tag, slot) = (self.tag(name), slot_of(id.0));
        if let Ok(entry) = self
            .table
            .find_entry(widen(tag), |filed| filed.slot == slot)
        {
            entry.remove();
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
