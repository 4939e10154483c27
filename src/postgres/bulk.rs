//! A batch of new units and the statements that store it all at once.
//!
//! A batch of ordinary size is one statement, its units passed as arrays.
//! A batch larger than one statement carries (see the `budget` module) is
//! sent in parts into a temporary table, then stored from it by one
//! statement, all in one transaction: its units are then locked, and the spec's counters after
//! them, in the order every other writer takes them, so it deadlocks with
//! none but a destroy of the spec racing a batch that replaces units
//! (retried, as every deadlock's victim is).

use std::ops::Range;

use tokio_postgres::types::ToSql;

use super::budget;
use super::jsonb::{self, WrittenJsonb};
use super::nul;
use crate::error::{Error, Result};
use crate::model::{NewWorkUnit, Time};

/// `INSERT … SELECT` of new units from `$source` (aliased `n`, with the
/// columns `name`, `data`, `priority`, `not_before`) into spec `$1`, each
/// added or replaced as `coordinate_upsert_unit` does; answers their ids
/// and names.
macro_rules! upsert_units_from {
    ($source:literal) => {
        concat!(
            "INSERT INTO work_unit AS u (work_spec_id, name, data, priority,
                not_before, active_attempt_id, state)
            SELECT $1, n.name, n.data, n.priority, n.not_before, NULL, 0 FROM ",
            $source,
            " ON CONFLICT (work_spec_id, name) DO UPDATE SET data = EXCLUDED.data,
                priority = EXCLUDED.priority, not_before = EXCLUDED.not_before,
                active_attempt_id = CASE WHEN u.state IN (2, 3) THEN NULL
                    ELSE u.active_attempt_id END,
                state = CASE WHEN u.state IN (2, 3) THEN 0 ELSE u.state END
            RETURNING u.id, u.name"
        )
    };
}

/// Adds or replaces units `$2` (names, sorted, distinct) with data `$3`,
/// priorities `$4` and not-before times `$5` in spec `$1`.
pub(crate) const UPSERT_UNITS: &str = upsert_units_from!(
    "unnest($2::bytea[], $3::jsonb[], $4::float8[], $5::timestamptz[])
        AS n(name, data, priority, not_before)"
);

/// The table a large batch is gathered in, dropped when its transaction
/// ends.
pub(crate) const CREATE_STAGED: &str = "CREATE TEMPORARY TABLE coordinate_staged_unit
    (name bytea, data jsonb, priority float8, not_before timestamptz) ON COMMIT DROP";

/// Adds part of a large batch, as [`UPSERT_UNITS`] takes it less the spec,
/// to the staging table.
pub(crate) const STAGE_UNITS: &str = "INSERT INTO coordinate_staged_unit
    SELECT * FROM unnest($1::bytea[], $2::jsonb[], $3::float8[], $4::timestamptz[])";

/// Adds or replaces the staged units in spec `$1`, in name order.
pub(crate) const UPSERT_STAGED: &str =
    upsert_units_from!("coordinate_staged_unit n ORDER BY n.name");

/// What a unit costs in a statement besides its name and data: its
/// priority, its not-before time and four array element lengths.
const ROW_BYTES: usize = 32;

/// Units with their data written as `jsonb` text, once, so a batch's size
/// is known before any of it is sent.
pub(crate) struct WrittenUnits<'a> {
    units: &'a [NewWorkUnit],
    json: Vec<u8>,
    /// Where each unit's text ends in `json`.
    ends: Vec<usize>,
}

/// The parameters of one upsert statement over some units: names, data,
/// priorities and not-before times.
pub(crate) struct UpsertParams<'a> {
    names: Vec<&'a [u8]>,
    data: Vec<WrittenJsonb<'a>>,
    priorities: Vec<f64>,
    not_befores: Vec<Option<Time>>,
}

impl<'a> WrittenUnits<'a> {
    /// Writes the data of `units`.
    pub(crate) fn new(units: &'a [NewWorkUnit]) -> Result<Self> {
        let mut json = Vec::new();
        let mut ends = Vec::with_capacity(units.len());
        for unit in units {
            jsonb::write(&nul::escape(&unit.data), &mut json).map_err(Error::backend)?;
            ends.push(json.len());
        }
        Ok(WrittenUnits { units, json, ends })
    }

    /// Consecutive ranges of the units, in order, each carrying at most
    /// `budget` bytes unless a single unit alone is larger.
    pub(crate) fn chunks(&self, budget: usize) -> Vec<Range<usize>> {
        let costs = (0..self.units.len())
            .map(|i| self.units[i].name.len() + self.text(i).len() + ROW_BYTES);
        budget::chunks(costs, budget)
    }

    /// The statement parameters for the units in `range`.
    pub(crate) fn params(&self, range: Range<usize>) -> UpsertParams<'_> {
        let units = &self.units[range.clone()];
        UpsertParams {
            names: units.iter().map(|u| u.name.as_bytes()).collect(),
            data: range.map(|i| WrittenJsonb(self.text(i))).collect(),
            priorities: units.iter().map(|u| u.meta.priority).collect(),
            not_befores: units.iter().map(|u| u.meta.not_before).collect(),
        }
    }

    /// The `jsonb` text of unit `i`.
    fn text(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.json[start..self.ends[i]]
    }
}

impl UpsertParams<'_> {
    /// The parameters of [`UPSERT_UNITS`], into spec `spec`.
    pub(crate) fn with_spec<'p>(&'p self, spec: &'p i64) -> [&'p (dyn ToSql + Sync); 5] {
        [
            spec,
            &self.names,
            &self.data,
            &self.priorities,
            &self.not_befores,
        ]
    }

    /// The parameters of [`STAGE_UNITS`].
    pub(crate) fn alone(&self) -> [&(dyn ToSql + Sync); 4] {
        [&self.names, &self.data, &self.priorities, &self.not_befores]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data;
    use crate::model::WorkUnitMeta;

    fn unit(name: &str, text: &str) -> NewWorkUnit {
        NewWorkUnit {
            name: name.to_string(),
            data: data!({ "s": text }),
            meta: WorkUnitMeta::default(),
        }
    }

    #[test]
    fn each_unit_text_is_its_data_as_json() {
        let units = [unit("a", "x"), unit("b", "\0"), unit("c", "")];
        let written = WrittenUnits::new(&units).unwrap();
        let texts: Vec<&[u8]> = (0..3).map(|i| written.text(i)).collect();
        assert_eq!(
            texts,
            [
                &br#"{"s":"x"}"#[..],
                "{\"s\":\"\u{E000}0\"}".as_bytes(),
                br#"{"s":""}"#
            ]
        );
    }

    #[test]
    fn chunks_cover_every_unit_in_order_within_the_budget() {
        // Each unit costs its name (1), its text (8 + 10) and ROW_BYTES.
        let cost = 1 + 18 + ROW_BYTES;
        let units: Vec<_> = (0..10)
            .map(|i| unit(&i.to_string(), &"x".repeat(10)))
            .collect();
        let written = WrittenUnits::new(&units).unwrap();
        let whole = vec![Range { start: 0, end: 10 }];
        assert_eq!(written.chunks(usize::MAX), whole);
        assert_eq!(written.chunks(10 * cost), whole);
        assert_eq!(written.chunks(10 * cost - 1), [0..9, 9..10]);
        assert_eq!(written.chunks(3 * cost), [0..3, 3..6, 6..9, 9..10]);
        // A unit larger than the budget goes alone.
        assert_eq!(
            written.chunks(1),
            (0..10).map(|i| i..i + 1).collect::<Vec<_>>()
        );
        assert!(WrittenUnits::new(&[]).unwrap().chunks(1).is_empty());
    }
}
