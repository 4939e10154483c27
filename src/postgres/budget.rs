//! How much one statement carries, and the split of what is more.
//!
//! PostgreSQL refuses a message over 1 GiB, and builds an array parameter
//! in memory from it (a `jsonb[]` several times longer than its JSON for
//! data of small numbers). A batch of units, or the names of a unit query,
//! over [`STATEMENT_BYTES`] is sent as several statements in one
//! transaction, split by [`chunks`].

use std::ops::Range;

/// The most bytes one statement carries: far inside PostgreSQL's limit,
/// while a batch of a hundred thousand small units, or a query naming a
/// million short names, still goes in one.
pub(crate) const STATEMENT_BYTES: usize = 16 << 20;

/// Consecutive ranges of items costing `costs` bytes, in order, each
/// carrying at most `budget` bytes unless a single item alone is larger.
pub(crate) fn chunks(costs: impl IntoIterator<Item = usize>, budget: usize) -> Vec<Range<usize>> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes, mut end) = (0, 0, 0);
    for (i, cost) in costs.into_iter().enumerate() {
        if i > start && bytes + cost > budget {
            chunks.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += cost;
        end = i + 1;
    }
    if start < end {
        chunks.push(start..end);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use std::ops::Range;

    use super::chunks;

    #[test]
    fn chunks_cover_every_item_in_order_within_the_budget() {
        let whole = vec![Range { start: 0, end: 3 }];
        assert_eq!(chunks([3, 3, 3], usize::MAX), whole);
        assert_eq!(chunks([3, 3, 3], 9), whole);
        assert_eq!(chunks([3, 3, 3], 8), [0..2, 2..3]);
        assert_eq!(chunks([5, 1, 9, 1], 6), [0..2, 2..3, 3..4]);
        // An item larger than the budget goes alone.
        assert_eq!(chunks([3, 3], 1), [0..1, 1..2]);
        assert!(chunks([], 1).is_empty());
    }
}
