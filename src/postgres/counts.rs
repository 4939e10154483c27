//! Unit counts per status from the per-spec counters.
//!
//! The counters (table `work_unit_count`, kept by triggers in every
//! changing transaction) hold how many units of a spec are in each stored
//! state, waiting ones (idle until their not-before time) apart from ready
//! ones. What depends on now is read from small index ranges: the waiting
//! units whose time has come (Available, not Delayed), the ready units
//! whose not-before time is ahead (none unless the clock went back), and
//! the pending active attempts past their deadline, whose units an expiry
//! check would make Available or Delayed; each range is read only when the
//! counters hold units it could find. So a count costs O(due + expired)
//! rows, not O(units).

use std::collections::BTreeMap;

use tokio_postgres::Row;

use super::{col, decode};
use crate::error::Result;
use crate::model::WorkUnitStatus;

/// SQL: the eight [`SpecCounts`] columns of spec `$spec` as of an expiry
/// check at `$now`, as columns `c.*` of a `FROM` item (the function
/// `coordinate_spec_counts`, which runs its query with a cached generic
/// plan; migrations 6, 8, 9 and 12); a macro
/// so statements can `concat!` it.
macro_rules! spec_counts {
    ($spec:literal, $now:literal) => {
        concat!("coordinate_spec_counts(", $spec, ", ", $now, ") c")
    };
}
pub(crate) use spec_counts;

/// One spec's counters and corrections as of an expiry check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SpecCounts {
    /// Units without a running or ended active attempt.
    idle: i64,
    /// Units whose active attempt is pending (some maybe past deadline).
    pending: i64,
    finished: i64,
    failed: i64,
    /// Idle units whose not-before time is ahead.
    delayed: i64,
    /// Pending units whose attempt is past its deadline.
    expired: i64,
    /// Those of them whose not-before time is ahead.
    expired_delayed: i64,
    /// Idle units waiting for a not-before time that has come, which an
    /// expiry check would make ready.
    due: i64,
}

impl SpecCounts {
    /// Reads the columns of [`spec_counts!`] starting at column `at`.
    pub(crate) fn from_row(row: &Row, at: usize) -> Result<Self> {
        // Eight consecutive `int8` columns, in the order of the fields.
        let mut counts = [0i64; 8];
        for (i, count) in counts.iter_mut().enumerate() {
            *count = col(row, at + i)?;
        }
        let [idle, pending, finished, failed, delayed, expired, expired_delayed, due] = counts;
        Ok(SpecCounts {
            idle,
            pending,
            finished,
            failed,
            delayed,
            expired,
            expired_delayed,
            due,
        })
    }

    /// True if an expiry check would change anything in the spec: expire an
    /// attempt or make a waiting unit ready.
    pub(crate) fn stale(&self) -> bool {
        self.expired > 0 || self.due > 0
    }

    /// Units that could run now.
    pub(crate) fn available(&self) -> i64 {
        self.idle - self.delayed + self.expired - self.expired_delayed
    }

    /// Units whose active attempt is pending and within its deadline.
    pub(crate) fn pending(&self) -> i64 {
        self.pending - self.expired
    }

    /// Units per status, only the non-zero ones.
    pub(crate) fn statuses(&self) -> Result<BTreeMap<WorkUnitStatus, u64>> {
        let all = [
            (WorkUnitStatus::Available, self.available()),
            (WorkUnitStatus::Pending, self.pending()),
            (WorkUnitStatus::Finished, self.finished),
            (WorkUnitStatus::Failed, self.failed),
            (WorkUnitStatus::Delayed, self.delayed + self.expired_delayed),
        ];
        let mut counts = BTreeMap::new();
        for (status, n) in all {
            let n = u64::try_from(n).map_err(|_| decode(format!("negative {status:?} count")))?;
            if n > 0 {
                counts.insert(status, n);
            }
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_attempts_move_their_units_to_available_or_delayed() {
        let c = SpecCounts {
            idle: 10,
            pending: 5,
            finished: 2,
            failed: 0,
            delayed: 3,
            expired: 2,
            expired_delayed: 1,
            due: 0,
        };
        assert_eq!(c.available(), 8);
        assert_eq!(c.pending(), 3);
        assert!(c.stale());
        let statuses = c.statuses().unwrap();
        assert_eq!(
            statuses.into_iter().collect::<Vec<_>>(),
            vec![
                (WorkUnitStatus::Available, 8),
                (WorkUnitStatus::Pending, 3),
                (WorkUnitStatus::Finished, 2),
                (WorkUnitStatus::Delayed, 4),
            ]
        );
    }

    #[test]
    fn a_waiting_unit_whose_time_has_come_makes_the_counts_stale() {
        let waiting = SpecCounts {
            idle: 1,
            ..SpecCounts::default()
        };
        assert!(!waiting.stale());
        let due = SpecCounts { due: 1, ..waiting };
        assert!(due.stale());
        assert_eq!(due.available(), 1);
    }

    #[test]
    fn a_negative_count_is_a_decode_error_not_a_panic() {
        let c = SpecCounts {
            pending: 0,
            expired: 1,
            ..SpecCounts::default()
        };
        assert!(c.statuses().is_err());
    }
}
