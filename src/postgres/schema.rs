//! The database schema: versioned migrations embedded in the crate.
//!
//! [`migrate`] runs in one transaction under a transaction-scoped advisory
//! lock, so job servers starting at once against one database serialise:
//! the first applies what is missing, the others then find nothing to do.
//! The applied version is kept in the one-row table `coordinate_schema`. A
//! database at a newer version than [`SCHEMA_VERSION`] is refused with
//! [`PostgresError::SchemaTooNew`] rather than used with a schema this code
//! does not understand.

use super::conn::Conn;
use super::error::{decode, PostgresError};
use super::{execute, query_opt};
use crate::error::Result;

/// One schema step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// The version the database is at after this step.
    pub(crate) version: i32,
    /// The SQL of the step (several statements).
    pub(crate) sql: &'static str,
}

impl Migration {
    const fn new(version: i32, sql: &'static str) -> Self {
        Migration { version, sql }
    }
}

/// Every migration, in order. Never edit a released step: add a new one.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration::new(1, include_str!("migrations/0001_initial.sql")),
    Migration::new(2, include_str!("migrations/0002_change_feed.sql")),
    Migration::new(
        3,
        include_str!("migrations/0003_one_statement_operations.sql"),
    ),
    Migration::new(4, include_str!("migrations/0004_unit_counters.sql")),
    Migration::new(5, include_str!("migrations/0005_unit_spec_check.sql")),
    Migration::new(6, include_str!("migrations/0006_spec_counts_function.sql")),
    Migration::new(7, include_str!("migrations/0007_upsert_unit_plpgsql.sql")),
    Migration::new(
        8,
        include_str!("migrations/0008_spec_counts_three_reads.sql"),
    ),
    Migration::new(
        9,
        include_str!("migrations/0009_spec_counts_read_when_needed.sql"),
    ),
    Migration::new(
        10,
        include_str!("migrations/0010_finish_locks_next_spec.sql"),
    ),
    Migration::new(11, include_str!("migrations/0011_destroy_namespace.sql")),
    Migration::new(12, include_str!("migrations/0012_waiting_units.sql")),
    Migration::new(
        13,
        include_str!("migrations/0013_finish_locks_next_spec_to_chain.sql"),
    ),
    Migration::new(
        14,
        include_str!("migrations/0014_destroy_namespace_specs_first.sql"),
    ),
    Migration::new(
        15,
        include_str!("migrations/0015_bulk_changes_in_linear_time.sql"),
    ),
    Migration::new(
        16,
        include_str!("migrations/0016_hand_out_says_when_retries_failed_all.sql"),
    ),
    Migration::new(
        17,
        include_str!("migrations/0017_feed_renames_and_spec_bursts.sql"),
    ),
    Migration::new(
        18,
        include_str!("migrations/0018_feed_lists_only_small_unit_deletes.sql"),
    ),
    Migration::new(
        19,
        include_str!("migrations/0019_spec_counters_go_after_units.sql"),
    ),
    Migration::new(
        20,
        include_str!("migrations/0020_finish_chains_only_current_output.sql"),
    ),
    Migration::new(
        21,
        include_str!("migrations/0021_continuous_time_from_current_interval.sql"),
    ),
    Migration::new(
        22,
        include_str!("migrations/0022_detached_pending_attempts.sql"),
    ),
    Migration::new(
        23,
        include_str!("migrations/0023_one_lock_order_for_expiry.sql"),
    ),
    Migration::new(
        24,
        include_str!("migrations/0024_definition_changes_wait_for_hand_outs.sql"),
    ),
];

/// The schema version this code migrates to and works with: the last step's,
/// so adding a migration is the only change a new version needs.
pub const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// The advisory lock key that serialises migrations ("coordnat" in ASCII).
const MIGRATION_LOCK: i64 = 0x636f_6f72_646e_6174;

/// Brings the database to [`SCHEMA_VERSION`]; answers the version it found.
/// A database not in UTF-8 is refused before anything is written to it.
pub(crate) async fn migrate(client: &mut Conn<'_>) -> Result<i32> {
    let encoding = query_opt(client, "SHOW server_encoding", &[]).await?;
    let encoding: String = match encoding {
        Some(row) => row.try_get(0).map_err(decode)?,
        None => String::new(),
    };
    if encoding != "UTF8" {
        return Err(PostgresError::NotUtf8 { encoding }.into());
    }
    let tx = client.transaction().await?;
    execute(&tx, "SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS coordinate_schema (
             singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
             version   integer NOT NULL
         )",
    )
    .await?;
    let found: i32 = match query_opt(&tx, "SELECT version FROM coordinate_schema", &[]).await? {
        Some(row) => row.try_get(0).map_err(decode)?,
        None => 0,
    };
    if found > SCHEMA_VERSION {
        return Err(PostgresError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        }
        .into());
    }
    for step in MIGRATIONS.iter().filter(|m| m.version > found) {
        tx.batch_execute(step.sql).await?;
    }
    if found < SCHEMA_VERSION {
        execute(
            &tx,
            "INSERT INTO coordinate_schema (singleton, version) VALUES (true, $1)
             ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version",
            &[&SCHEMA_VERSION],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_consecutive_and_end_at_the_schema_version() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i32::try_from(i).unwrap() + 1);
            assert!(!m.sql.trim().is_empty());
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
    }

    #[test]
    fn schema_never_reads_the_database_clock() {
        for m in MIGRATIONS {
            let sql = m.sql.to_lowercase();
            for forbidden in [
                "now()",
                "current_timestamp",
                "clock_timestamp",
                "localtimestamp",
            ] {
                assert!(
                    !sql.contains(forbidden),
                    "migration {} uses {forbidden}",
                    m.version
                );
            }
        }
    }
}
