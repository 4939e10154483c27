//! A spec's units by name: a hash table of slab slots.
//!
//! The table holds only each unit's slot (four bytes); the name it is
//! found by is the unit record's own, read from the slab when a lookup
//! compares or the table grows. A lookup is one hash of the name and,
//! usually, one name comparison, however many units the spec has.
//! Name order, for paging, is the per-status name sets' (see `index.rs`).

use std::fmt;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::super::slab::{slot_of, Slab};
use super::{UnitId, UnitState};

/// The units of one spec by name.
#[derive(Default)]
pub(super) struct NameIndex {
    table: HashTable<u32>,
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

impl NameIndex {
    pub(super) fn get(&self, units: &Slab<UnitState>, name: &str) -> Option<UnitId> {
        let hash = self.hasher.hash_one(name);
        let slot = self
            .table
            .find(hash, |&slot| name_at(units, slot) == name)?;
        units.at_slot(*slot).map(|(id, _)| UnitId(id))
    }

    /// Files the unit `id`, already in `units`, under its name (which no
    /// other unit of the spec has).
    pub(super) fn insert(&mut self, units: &Slab<UnitState>, id: UnitId) {
        let hasher = &self.hasher;
        let hash = hasher.hash_one(name_at(units, slot_of(id.0)));
        self.table.insert_unique(hash, slot_of(id.0), |&slot| {
            hasher.hash_one(name_at(units, slot))
        });
    }

    /// Room for `additional` more units.
    pub(super) fn reserve(&mut self, units: &Slab<UnitState>, additional: usize) {
        let hasher = &self.hasher;
        self.table
            .reserve(additional, |&slot| hasher.hash_one(name_at(units, slot)));
    }

    /// Unfiles the unit named `name`, still in `units`.
    pub(super) fn remove(&mut self, units: &Slab<UnitState>, name: &str) {
        let hash = self.hasher.hash_one(name);
        if let Ok(entry) = self
            .table
            .find_entry(hash, |&slot| name_at(units, slot) == name)
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
            .filter_map(|&slot| units.at_slot(slot).map(|(id, _)| UnitId(id)))
    }
}
