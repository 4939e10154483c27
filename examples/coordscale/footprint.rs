//! How many bytes a store holds: this process's resident memory for the
//! in-memory backend, the tables and indexes for PostgreSQL.

/// What a store's size is read from.
#[derive(Debug)]
pub enum Footprint {
    /// The resident set of this process (`/proc/self/statm`).
    Resident,
    /// The tables, indexes and TOAST of the database's current schema.
    #[cfg(feature = "postgres")]
    Postgres(tokio_postgres::Client),
}

impl Footprint {
    /// The bytes held now.
    pub async fn bytes(&self) -> Result<u64, String> {
        match self {
            Footprint::Resident => crate::resident::resident_bytes(),
            #[cfg(feature = "postgres")]
            Footprint::Postgres(client) => {
                let row = client
                    .query_one(
                        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint \
                         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                         WHERE c.relkind = 'r' AND n.nspname = current_schema()",
                        &[],
                    )
                    .await
                    .map_err(|e| format!("cannot read the table sizes: {e}"))?;
                let bytes: i64 = row.get(0);
                Ok(bytes.unsigned_abs())
            }
        }
    }

    /// Brings the store to the state it is measured in after loading:
    /// PostgreSQL gets `VACUUM ANALYZE`, so that plans see the real table
    /// and sizes count no dead rows.
    pub async fn settle(&self) -> Result<(), String> {
        match self {
            Footprint::Resident => Ok(()),
            #[cfg(feature = "postgres")]
            Footprint::Postgres(client) => client
                .batch_execute("VACUUM ANALYZE")
                .await
                .map_err(|e| format!("VACUUM ANALYZE failed: {e}")),
        }
    }
}
