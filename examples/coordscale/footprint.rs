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
            Footprint::Resident => resident_bytes(),
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

/// Resident pages (`/proc/self/statm`, second field) times the page size.
fn resident_bytes() -> Result<u64, String> {
    let statm = std::fs::read_to_string("/proc/self/statm")
        .map_err(|e| format!("cannot read /proc/self/statm: {e}"))?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .ok_or_else(|| format!("unexpected /proc/self/statm: {statm:?}"))?;
    Ok(pages * page_size()?)
}

/// The page size the kernel gave this process (`AT_PAGESZ` in the
/// auxiliary vector: pairs of native-endian words, type then value).
fn page_size() -> Result<u64, String> {
    const AT_PAGESZ: u64 = 6;
    const WORD: usize = std::mem::size_of::<usize>();
    let auxv = std::fs::read("/proc/self/auxv")
        .map_err(|e| format!("cannot read /proc/self/auxv: {e}"))?;
    let words: Vec<u64> = auxv
        .chunks_exact(WORD)
        .map(|chunk| {
            let mut bytes = [0; WORD];
            bytes.copy_from_slice(chunk);
            usize::from_ne_bytes(bytes) as u64
        })
        .collect();
    words
        .chunks_exact(2)
        .find(|pair| pair[0] == AT_PAGESZ)
        .map(|pair| pair[1])
        .ok_or_else(|| "no page size in /proc/self/auxv".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_is_a_power_of_two() {
        let size = page_size().expect("page size");
        assert!(size >= 4096 && size.is_power_of_two(), "{size}");
    }

    #[test]
    fn resident_memory_grows_with_touched_allocations() {
        let before = resident_bytes().expect("resident");
        let block = vec![1u8; 64 << 20];
        let after = resident_bytes().expect("resident");
        assert!(after >= before + (60 << 20), "{before} → {after}");
        drop(block);
    }
}
