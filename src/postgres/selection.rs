//! The units a [`WorkUnitQuery`] selects, as SQL.
//!
//! Each query shape (every unit, named units, units by status) is its own
//! statement, so that a prepared statement's generic plan never has to serve
//! a shape it was not made for (a plan for "no names" walks the whole name
//! index when names are given). Every shape keeps the query's limit in SQL:
//! the status shape reads each status's units from the `(spec, state, name)`
//! index in name order, and the pending attempts past their deadline from
//! the pending-attempt index (each attempt's unit fetched by key: `OFFSET 0`
//! keeps that lookup a subquery the planner cannot turn into a join over
//! every unit), so it costs O(limit · log n).
//!
//! Parameters common to every shape: `$1` the spec, `$2` the least name
//! admitted (inclusive), `$3` the limit (NULL for none), `$4` now; then the
//! shape's own (see [`Selection::params`]).

use std::collections::HashSet;

use tokio_postgres::types::ToSql;

use super::budget::chunks;
use crate::model::{Time, WorkUnitQuery, WorkUnitStatus};
use crate::rules::limits::{bounded_name, fits_name};

/// SQL: every unit of the spec, by name.
macro_rules! sel_all {
    () => {
        "SELECT u.id, u.name FROM work_unit u WHERE u.work_spec_id = $1 AND u.name >= $2
         ORDER BY u.name LIMIT $3"
    };
}

/// SQL: the units named in `$5` whose status (as of an expiry check at
/// `$4`) has an ordinal in `$6`, by name.
macro_rules! sel_named {
    () => {
        "SELECT u.id, u.name FROM work_unit u LEFT JOIN attempt a ON a.id = u.active_attempt_id
         WHERE u.work_spec_id = $1 AND u.name = ANY ($5::bytea[]) AND u.name >= $2
           AND (CASE WHEN u.state = 1 AND a.expiration_time >= $4 THEN 2
                     WHEN u.state = 2 THEN 3 WHEN u.state = 3 THEN 4
                     WHEN u.not_before > $4 THEN 5 ELSE 1 END) = ANY ($6::int2[])
         ORDER BY u.name LIMIT $3"
    };
}

/// SQL: the units whose status (as of an expiry check at `$4`) is one the
/// flags admit: `$5` Available, `$6` Pending, `$7` Finished, `$8` Failed,
/// `$9` Delayed; by name. A branch whose flag is false is not run.
macro_rules! sel_status {
    () => {
        "SELECT b.id, b.name FROM (
            (SELECT u.id, u.name FROM work_unit u
             WHERE $5::bool AND u.work_spec_id = $1 AND u.state = 0 AND u.name >= $2
               AND (u.not_before IS NULL OR u.not_before <= $4)
             ORDER BY u.name LIMIT $3)
            UNION ALL
            (SELECT u.id, u.name FROM work_unit u
             WHERE $5::bool AND u.work_spec_id = $1 AND u.state = 4 AND u.name >= $2
               AND u.not_before <= $4
             ORDER BY u.name LIMIT $3)
            UNION ALL
            (SELECT u.id, u.name FROM work_unit u JOIN attempt a ON a.id = u.active_attempt_id
             WHERE $6::bool AND u.work_spec_id = $1 AND u.state = 1 AND u.name >= $2
               AND a.expiration_time >= $4
             ORDER BY u.name LIMIT $3)
            UNION ALL
            (SELECT u.id, u.name FROM work_unit u
             WHERE $7::bool AND u.work_spec_id = $1 AND u.state = 2 AND u.name >= $2
             ORDER BY u.name LIMIT $3)
            UNION ALL
            (SELECT u.id, u.name FROM work_unit u
             WHERE $8::bool AND u.work_spec_id = $1 AND u.state = 3 AND u.name >= $2
             ORDER BY u.name LIMIT $3)
            UNION ALL
            (SELECT u.id, u.name FROM work_unit u
             WHERE $9::bool AND u.work_spec_id = $1 AND u.state = 0 AND u.name >= $2
               AND u.not_before > $4
             ORDER BY u.name LIMIT $3)
            UNION ALL
            (SELECT u.id, u.name FROM work_unit u
             WHERE $9::bool AND u.work_spec_id = $1 AND u.state = 4 AND u.name >= $2
               AND u.not_before > $4
             ORDER BY u.name LIMIT $3)
            UNION ALL
            (SELECT u.id, u.name FROM attempt a
             CROSS JOIN LATERAL (SELECT v.id, v.name, v.not_before FROM work_unit v
                 WHERE v.id = a.work_unit_id AND v.active_attempt_id = a.id OFFSET 0) u
             WHERE ($5 OR $9) AND a.work_spec_id = $1 AND a.status = 0
               AND a.expiration_time < $4 AND u.name >= $2
               AND CASE WHEN u.not_before > $4 THEN $9 ELSE $5 END
             ORDER BY u.name LIMIT $3)
         ) b ORDER BY b.name LIMIT $3"
    };
}

/// SQL: the selection `$sel` read, as `id, name` rows joined to a one-row
/// flag saying whether an expiry check at `$4` would expire anything in
/// the spec, so that it is answered even when no unit is selected.
macro_rules! read_units {
    ($sel:ident) => {
        concat!(
            "SELECT r.id, r.name, f.stale FROM (SELECT ",
            super::expirable!("x.work_spec_id = $1", "$4"),
            ") f(stale) LEFT JOIN (",
            $sel!(),
            ") r ON true ORDER BY r.name"
        )
    };
}

/// SQL: the status ordinal (as [`WorkUnitStatus::ordinal`]) of unit `w` as
/// of an expiry check at `$4`. A pending unit whose attempt this statement
/// cannot see (made by a transaction that committed after it started) is
/// Pending.
macro_rules! locked_status {
    () => {
        "(CASE WHEN w.state = 1 AND NOT EXISTS (SELECT 1 FROM attempt a
                    WHERE a.id = w.active_attempt_id AND a.expiration_time < $4) THEN 2
               WHEN w.state = 2 THEN 3 WHEN w.state = 3 THEN 4
               WHEN w.not_before > $4 THEN 5 ELSE 1 END)"
    };
}

/// SQL: the selection `$sel` locked (in id order) and changed by `$change`
/// (which reads the locked ids from `picked`), in one statement; answers
/// how many were selected and whether an expiry check at `$4` would expire
/// anything in the spec. Ids are passed on as arrays, not joined, so the
/// plan fetches each unit by key whatever the planner guesses of a
/// selection's size. `$admits` is the shape's status filter on the locked
/// row `w`: a row that another transaction changed while this one waited
/// for its lock is judged again, as that change left it (PostgreSQL
/// re-evaluates a locking query's conditions on the new row version), so
/// a unit whose status no longer matches is left alone.
macro_rules! change_units {
    ($sel:ident, $admits:expr, $change:expr) => {
        concat!(
            "WITH picked AS (SELECT w.id FROM work_unit w WHERE w.id = ANY (ARRAY(SELECT s.id FROM (",
            $sel!(),
            ") s)) AND ",
            $admits,
            " ORDER BY w.id FOR UPDATE), changed AS (",
            $change,
            ") SELECT (SELECT count(*) FROM picked), ",
            super::expirable!("x.work_spec_id = $1", "$4")
        )
    };
}

/// A change applied to the units a query selects.
#[derive(Debug, Clone, Copy)]
pub(crate) enum UnitChange {
    SetPriority(f64),
    AdjustPriority(f64),
    Delete,
}

/// The statement shape a query needs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    /// No names, no status filter.
    All,
    /// Names, with the status ordinals admitted.
    Named(Vec<Vec<u8>>, Vec<i16>),
    /// No names, a status filter: Available, Pending, Finished, Failed,
    /// Delayed admitted.
    ByStatus([bool; 5]),
}

/// The order of the flags of [`Shape::ByStatus`].
const FLAGGED: [WorkUnitStatus; 5] = [
    WorkUnitStatus::Available,
    WorkUnitStatus::Pending,
    WorkUnitStatus::Finished,
    WorkUnitStatus::Failed,
    WorkUnitStatus::Delayed,
];

/// What a name costs in a `bytea[]` parameter: its bytes and their length.
fn name_cost(name: &[u8]) -> usize {
    name.len() + 4
}

/// A query in the form its statement takes.
#[derive(Debug, Clone)]
pub(crate) struct Selection {
    pub(crate) shape: Shape,
    /// The least name admitted: just after the previous name.
    lower: Vec<u8>,
    limit: Option<i64>,
}

impl Selection {
    pub(crate) fn new(query: &WorkUnitQuery) -> Self {
        let shape = if !query.names.is_empty() {
            let statuses = FLAGGED
                .iter()
                .filter(|s| query.admits_status(**s))
                .map(|s| i16::try_from(s.ordinal()).unwrap_or(i16::MAX))
                .collect();
            // Each name once, and none longer than a name can be: those
            // select nothing, and could pass the largest message the
            // server takes.
            let mut seen = HashSet::with_capacity(query.names.len());
            let names = query
                .names
                .iter()
                .filter(|n| fits_name(n) && seen.insert(n.as_str()))
                .map(|n| n.as_bytes().to_vec())
                .collect();
            Shape::Named(names, statuses)
        } else if query.filters_status() {
            Shape::ByStatus(FLAGGED.map(|s| query.admits_status(s)))
        } else {
            Shape::All
        };
        // The least byte string greater than a name is the name and a 0;
        // a previous name longer than any name orders as its cut form.
        let mut lower = bounded_name(&query.previous_name).as_bytes().to_vec();
        if !lower.is_empty() {
            lower.push(0);
        }
        Selection {
            shape,
            lower,
            limit: query.limit().map(|l| i64::try_from(l).unwrap_or(i64::MAX)),
        }
    }

    /// This selection in parts of at most `budget` bytes of names each
    /// (see [`name_cost`]), in name order, so that every unit a part
    /// selects sorts before the next part's; itself alone when it fits, as
    /// a selection without names always does. Run in turn, each with the
    /// limit left by the ones before ([`Selection::limit_after`]), the
    /// parts select what the whole would.
    pub(crate) fn parts(self, budget: usize) -> Vec<Selection> {
        match self.shape {
            Shape::Named(mut names, statuses)
                if names.iter().map(|n| name_cost(n)).sum::<usize>() > budget =>
            {
                names.sort_unstable();
                let ranges = chunks(names.iter().map(|n| name_cost(n)), budget);
                let mut names = names.into_iter();
                ranges
                    .into_iter()
                    .map(|range| Selection {
                        shape: Shape::Named(
                            names.by_ref().take(range.len()).collect(),
                            statuses.clone(),
                        ),
                        lower: self.lower.clone(),
                        limit: self.limit,
                    })
                    .collect()
            }
            shape => vec![Selection { shape, ..self }],
        }
    }

    /// The limit of a part run after parts that selected `taken` units:
    /// `None` for no limit, `Some(0)` when the limit is reached.
    pub(crate) fn limit_after(&self, taken: u64) -> Option<i64> {
        let taken = i64::try_from(taken).unwrap_or(i64::MAX);
        self.limit.map(|limit| limit.saturating_sub(taken).max(0))
    }

    /// The read statement of this shape.
    pub(crate) fn read_sql(&self) -> &'static str {
        match self.shape {
            Shape::All => read_units!(sel_all),
            Shape::Named(..) => read_units!(sel_named),
            Shape::ByStatus(_) => read_units!(sel_status),
        }
    }

    /// The change statement of this shape; its value, if any, is the
    /// parameter after [`Selection::params`].
    pub(crate) fn change_sql(&self, change: UnitChange) -> &'static str {
        macro_rules! by_change {
            ($sel:ident, $admits:expr, $value:literal) => {
                match change {
                    UnitChange::SetPriority(_) => change_units!(
                        $sel,
                        $admits,
                        concat!(
                            "UPDATE work_unit SET priority = ",
                            $value,
                            "::float8 WHERE id = ANY (ARRAY(SELECT id FROM picked))"
                        )
                    ),
                    UnitChange::AdjustPriority(_) => change_units!(
                        $sel,
                        $admits,
                        concat!(
                            "UPDATE work_unit SET priority = priority + ",
                            $value,
                            "::float8 WHERE id = ANY (ARRAY(SELECT id FROM picked))"
                        )
                    ),
                    UnitChange::Delete => change_units!(
                        $sel,
                        $admits,
                        "DELETE FROM work_unit WHERE id = ANY (ARRAY(SELECT id FROM picked))"
                    ),
                }
            };
        }
        match self.shape {
            Shape::All => by_change!(sel_all, "true", "$5"),
            Shape::Named(..) => by_change!(
                sel_named,
                concat!(locked_status!(), " = ANY ($6::int2[])"),
                "$7"
            ),
            Shape::ByStatus(_) => by_change!(
                sel_status,
                concat!(
                    "(ARRAY[$5::bool, $6::bool, $7::bool, $8::bool, $9::bool])[",
                    locked_status!(),
                    "]"
                ),
                "$10"
            ),
        }
    }

    /// The statement's parameters for spec `spec` at `now`, selecting at
    /// most `limit` units (`None`: all).
    pub(crate) fn params<'a>(
        &'a self,
        spec: &'a i64,
        now: &'a Time,
        limit: &'a Option<i64>,
    ) -> Vec<&'a (dyn ToSql + Sync)> {
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![spec, &self.lower, limit, now];
        match &self.shape {
            Shape::All => {}
            Shape::Named(names, statuses) => {
                params.push(names);
                params.push(statuses);
            }
            Shape::ByStatus(flags) => {
                params.extend(flags.iter().map(|f| f as &(dyn ToSql + Sync)));
            }
        }
        params
    }
}

impl UnitChange {
    /// The value parameter of the change, if it has one.
    pub(crate) fn value(&self) -> Option<&f64> {
        match self {
            UnitChange::SetPriority(v) | UnitChange::AdjustPriority(v) => Some(v),
            UnitChange::Delete => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::limits::MAX_NAME_BYTES;

    #[test]
    fn names_are_sent_once_each_and_only_if_they_could_name_a_unit() {
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        let longest = "y".repeat(MAX_NAME_BYTES);
        let query = WorkUnitQuery::names(["b", &long, "a", "b", &longest, "a"]);
        let Shape::Named(names, _) = Selection::new(&query).shape else {
            panic!("a query with names is of the named shape");
        };
        assert_eq!(names, [b"b".to_vec(), b"a".to_vec(), longest.into_bytes()]);
        // Named only by impossible names, a query selects nothing.
        let none = Selection::new(&WorkUnitQuery::names([long.as_str()]));
        assert_eq!(none.shape, Shape::Named(Vec::new(), vec![1, 2, 3, 4, 5]));
    }

    #[test]
    fn a_previous_name_longer_than_any_name_is_sent_cut() {
        let long = "x".repeat(10 * MAX_NAME_BYTES);
        let query = WorkUnitQuery {
            previous_name: long.clone(),
            ..Default::default()
        };
        let mut lower = long.as_bytes()[..=MAX_NAME_BYTES].to_vec();
        lower.push(0);
        assert_eq!(Selection::new(&query).lower, lower);
    }

    #[test]
    fn each_query_form_gets_its_own_shape() {
        assert_eq!(Selection::new(&WorkUnitQuery::all()).shape, Shape::All);
        let by_status = Selection::new(&WorkUnitQuery::statuses([WorkUnitStatus::Pending]));
        assert_eq!(
            by_status.shape,
            Shape::ByStatus([false, true, false, false, false])
        );
        let any = Selection::new(&WorkUnitQuery::statuses([WorkUnitStatus::AnyStatus]));
        assert_eq!(any.shape, Shape::All);
        let named = Selection::new(&WorkUnitQuery::names(["a"]));
        assert_eq!(
            named.shape,
            Shape::Named(vec![b"a".to_vec()], vec![1, 2, 3, 4, 5])
        );
    }

    #[test]
    fn the_lower_bound_admits_exactly_the_names_after_the_previous_one() {
        let mut q = WorkUnitQuery::all();
        assert_eq!(Selection::new(&q).lower, b"");
        q.previous_name = "b".into();
        let lower = Selection::new(&q).lower;
        assert!(b"b".as_slice() < lower.as_slice());
        assert!(lower.as_slice() <= b"b\0".as_slice());
        assert!(lower.as_slice() <= b"ba".as_slice());
    }

    #[test]
    fn statements_number_their_parameters_as_params_gives_them() {
        let now = Time::UNIX_EPOCH;
        let spec = 1;
        for query in [
            WorkUnitQuery::all(),
            WorkUnitQuery::names(["a"]),
            WorkUnitQuery::statuses([WorkUnitStatus::Failed]),
        ] {
            let s = Selection::new(&query);
            let n = s.params(&spec, &now, &s.limit_after(0)).len();
            for sql in [s.read_sql(), s.change_sql(UnitChange::Delete)] {
                assert!(sql.contains(&format!("${n}")));
                assert!(!sql.contains(&format!("${}", n + 1)));
            }
            let set = s.change_sql(UnitChange::SetPriority(1.0));
            assert!(set.contains(&format!("${}::float8", n + 1)));
        }
    }

    #[test]
    fn names_over_the_budget_go_in_parts_in_name_order() {
        let query = WorkUnitQuery {
            limit: 7,
            ..WorkUnitQuery::names(["d", "bb", "a", "ccc", "e", "a"])
        };
        let whole = Selection::new(&query);
        assert_eq!(whole.clone().parts(100).len(), 1, "fits: one part");
        // Each name costs its length and 4: parts of at most 10 bytes.
        let parts = whole.parts(10);
        let names: Vec<Vec<&[u8]>> = parts
            .iter()
            .map(|part| match &part.shape {
                Shape::Named(names, statuses) => {
                    assert_eq!(statuses, &[1, 2, 3, 4, 5]);
                    names.iter().map(Vec::as_slice).collect()
                }
                shape => panic!("{shape:?}"),
            })
            .collect();
        let expected: [&[&[u8]]; 4] = [&[b"a"], &[b"bb"], &[b"ccc"], &[b"d", b"e"]];
        assert_eq!(names, expected);
        assert!(parts.iter().all(|p| p.limit == Some(7)));
        // A name over the budget alone is a part of its own.
        assert_eq!(
            Selection::new(&WorkUnitQuery::names(["abcdefgh", "b"]))
                .parts(5)
                .len(),
            2
        );
        // Selections without names never split.
        assert_eq!(Selection::new(&WorkUnitQuery::all()).parts(0).len(), 1);
    }

    #[test]
    fn a_part_is_limited_by_what_the_parts_before_took() {
        let limited = Selection::new(&WorkUnitQuery {
            limit: 5,
            ..WorkUnitQuery::all()
        });
        assert_eq!(limited.limit_after(0), Some(5));
        assert_eq!(limited.limit_after(3), Some(2));
        assert_eq!(limited.limit_after(9), Some(0));
        assert_eq!(limited.limit_after(u64::MAX), Some(0));
        assert_eq!(Selection::new(&WorkUnitQuery::all()).limit_after(9), None);
    }
}
