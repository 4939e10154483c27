//! A slab: records in one vector, found by an id that holds their slot.
//!
//! An id is a slot and that slot's generation, packed in a `u64`. Removing
//! a record bumps its slot's generation, so an id of a removed record never
//! finds the slot's next occupant: ids are never reused. A slot whose
//! generation is exhausted is retired instead of freed.
//!
//! Reaching a record is one bounds-checked index and one comparison, with
//! no hashing; records sit side by side, so a bulk add appends to the end.

/// One slot: the generation its next or current occupant has, and that
/// occupant.
#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// Records of type `T` under ids that are never reused.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    /// Slots free for reuse, most recently freed last.
    free: Vec<u32>,
    len: usize,
}

/// Every one of a slab's 2³² slots is taken or retired.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the memory backend has no slot left for another work unit (2^32 in use or retired)")]
pub(crate) struct SlabFull;

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

fn pack(slot: u32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(slot)
}

/// The slot of an id; the lower half of the `u64` is the slot.
pub(crate) fn slot_of(id: u64) -> u32 {
    id as u32
}

fn generation_of(id: u64) -> u32 {
    (id >> 32) as u32
}

impl<T> Slab<T> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Room for `additional` more records without moving the others.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.slots
            .reserve(additional.saturating_sub(self.free.len()));
    }

    /// The id the next [`insert`](Self::insert) will answer, if any slot is
    /// left.
    fn next_id(&self) -> Option<u64> {
        match self.free.last() {
            Some(&slot) => Some(pack(slot, self.slots[slot as usize].generation)),
            None => u32::try_from(self.slots.len())
                .ok()
                .map(|slot| pack(slot, 0)),
        }
    }

    /// Stores `value`; answers its id.
    pub(crate) fn insert(&mut self, value: T) -> Result<u64, SlabFull> {
        let id = self.next_id().ok_or(SlabFull)?;
        let slot = slot_of(id);
        if self.free.last() == Some(&slot) {
            self.free.pop();
            self.slots[slot as usize].value = Some(value);
        } else {
            self.slots.push(Slot {
                generation: 0,
                value: Some(value),
            });
        }
        self.len += 1;
        Ok(id)
    }

    pub(crate) fn get(&self, id: u64) -> Option<&T> {
        let slot = self.slots.get(slot_of(id) as usize)?;
        if slot.generation == generation_of(id) {
            slot.value.as_ref()
        } else {
            None
        }
    }

    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        let slot = self.slots.get_mut(slot_of(id) as usize)?;
        if slot.generation == generation_of(id) {
            slot.value.as_mut()
        } else {
            None
        }
    }

    /// The occupant of a slot and its id, whatever its generation.
    pub(crate) fn at_slot(&self, slot: u32) -> Option<(u64, &T)> {
        let entry = self.slots.get(slot as usize)?;
        let value = entry.value.as_ref()?;
        Some((pack(slot, entry.generation), value))
    }

    /// Takes a record out; its id finds nothing from now on.
    pub(crate) fn remove(&mut self, id: u64) -> Option<T> {
        let slot = slot_of(id);
        let entry = self.slots.get_mut(slot as usize)?;
        if entry.generation != generation_of(id) {
            return None;
        }
        let value = entry.value.take()?;
        self.len -= 1;
        // A slot whose generation cannot move on is never handed out again.
        if let Some(next) = entry.generation.checked_add(1) {
            entry.generation = next;
            self.free.push(slot);
        }
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_removed_records_find_nothing_even_after_the_slot_is_reused() {
        let mut slab = Slab::default();
        let a = slab.insert("a").unwrap();
        let b = slab.insert("b").unwrap();
        assert_eq!(slab.remove(a), Some("a"));
        assert_eq!(slab.get(a), None);
        assert_eq!(slab.remove(a), None);
        let c = slab.insert("c").unwrap();
        assert_eq!(slot_of(c), slot_of(a), "the freed slot is reused");
        assert_ne!(c, a);
        assert_eq!(slab.get(a), None);
        assert_eq!(slab.get(c), Some(&"c"));
        assert_eq!(slab.get(b), Some(&"b"));
        assert_eq!(slab.at_slot(slot_of(c)), Some((c, &"c")));
        assert_eq!(slab.len(), 2);
    }

    #[test]
    fn next_id_is_what_insert_answers() {
        let mut slab = Slab::default();
        let first = slab.next_id().unwrap();
        assert_eq!(slab.insert(1).unwrap(), first);
        slab.remove(first);
        let reused = slab.next_id().unwrap();
        assert_ne!(reused, first);
        assert_eq!(slab.insert(2).unwrap(), reused);
    }

    #[test]
    fn an_exhausted_slot_is_retired() {
        let mut slab = Slab::default();
        let id = slab.insert(1).unwrap();
        slab.slots[0].generation = u32::MAX;
        let last = pack(0, u32::MAX);
        assert_eq!(slab.get(id), None);
        assert_eq!(slab.remove(last), Some(1));
        assert_eq!(slab.get(last), None);
        let next = slab.insert(2).unwrap();
        assert_eq!(slot_of(next), 1, "slot 0 is never handed out again");
        assert_eq!(slab.len(), 1);
    }
}
