//! The small name pools the properties draw from (so names collide and
//! get deleted and recreated often), and queries over them.

use coordinate::{WorkUnitQuery, WorkUnitStatus};
use proptest::prelude::*;

pub(crate) const NAMESPACES: &[&str] = &["n0", "n1"];
pub(crate) const SPECS: &[&str] = &["s0", "s1"];
pub(crate) const UNITS: &[&str] = &["u0", "u1", "u2"];
pub(crate) const WORKERS: &[&str] = &["w0", "w1"];

/// A query, by shape.
#[derive(Debug, Clone)]
pub(crate) enum Query {
    All,
    Names(Vec<usize>),
    Status(WorkUnitStatus),
    Limit(i64),
}

impl Query {
    pub(crate) fn build(&self) -> WorkUnitQuery {
        match self {
            Query::All => WorkUnitQuery::all(),
            Query::Names(ns) => WorkUnitQuery::names(ns.iter().map(|i| UNITS[*i])),
            Query::Status(s) => WorkUnitQuery::statuses([*s]),
            Query::Limit(l) => WorkUnitQuery {
                limit: *l,
                ..WorkUnitQuery::all()
            },
        }
    }
}

pub(crate) fn query() -> impl Strategy<Value = Query> {
    prop_oneof![
        Just(Query::All),
        prop::collection::vec(0..UNITS.len(), 1..3).prop_map(Query::Names),
        prop_oneof![
            Just(WorkUnitStatus::Available),
            Just(WorkUnitStatus::Pending),
            Just(WorkUnitStatus::Finished),
        ]
        .prop_map(Query::Status),
        (1i64..3).prop_map(Query::Limit),
    ]
}
