//! Namespace handles.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::work_spec::{DefinedColumns, PgWorkSpec};
use super::worker::PgWorker;
use super::{by_name, col, decode, json, query_opt, text, Scope, Shared, MAX_TRIES};
use crate::api::{Namespace, WorkSpecRef, WorkerRef};
use crate::clock::checked_add;
use crate::error::{Error, ObjectKind, Result};
use crate::model::{DataMap, Summary, DEFAULT_LIFETIME};
use crate::rules::{limits, parse_definition};

/// What a call on this handle answers when its row (or an ancestor's) is gone.
const GONE: Error = Error::Gone {
    kind: ObjectKind::Namespace,
};

/// A namespace row.
#[derive(Debug)]
pub(crate) struct PgNamespace {
    shared: Arc<Shared>,
    id: i64,
    name: String,
}

/// Creates a spec or replaces its definition and whole meta, once the
/// hand-outs in progress from it are done (migration 24): one statement, so
/// concurrent creators of one name all succeed and end with one spec.
/// `next_continuous` is reset to unset. Takes the namespace's id, the
/// spec's name and definition, then the [`DefinedColumns`]; answers the
/// spec's id.
const DEFINE_SPEC: &str = "SELECT coordinate_define_spec($1, $2, $3, $4, $5, $6, $7, $8, $9,
    $10, $11, $12, $13, $14, $15)";

impl PgNamespace {
    pub(crate) fn new(shared: Arc<Shared>, id: i64, name: String) -> Self {
        PgNamespace { shared, id, name }
    }

    fn spec(&self, id: i64, name: String) -> Arc<PgWorkSpec> {
        let namespace = (self.id, self.name.clone());
        Arc::new(PgWorkSpec::new(self.shared.clone(), namespace, id, name))
    }

    fn worker_handle(&self, id: i64, name: String) -> WorkerRef {
        let namespace = (self.id, self.name.clone());
        Arc::new(PgWorker::new(self.shared.clone(), namespace, id, name))
    }
}

#[async_trait]
impl Namespace for PgNamespace {
    fn name(&self) -> &str {
        &self.name
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn destroy(&self) -> Result<()> {
        // Cascades to specs, units, attempts and workers, after unlinking
        // units elsewhere from its workers' attempts; a second destroy finds
        // no row and touches no newer namespace of the same name.
        let shared = &self.shared;
        shared
            .execute_retrying("SELECT coordinate_destroy_namespace($1)", &[&self.id])
            .await?;
        Ok(())
    }

    async fn set_work_spec(&self, definition: DataMap) -> Result<WorkSpecRef> {
        let definition = limits::checked_data(definition)?;
        let parsed = parse_definition(&definition)?;
        let columns = DefinedColumns::new(&parsed.meta)?;
        let (name, definition) = (parsed.name.as_bytes(), json(&definition));
        let params = columns.params(&[&self.id, &name, &definition]);
        let row = self.shared.row_or(GONE, DEFINE_SPEC, &params).await?;
        let id = col(&row, 0)?;
        Ok(self.spec(id, parsed.name))
    }

    async fn work_spec(&self, name: &str) -> Result<WorkSpecRef> {
        // One round trip that also tells a destroyed namespace (no row:
        // `Gone`) from a missing spec (a row without a spec).
        const FIND: &str = "SELECT s.id FROM namespace n
            LEFT JOIN work_spec s ON s.namespace_id = n.id AND s.name = $2
            WHERE n.id = $1";
        match self.shared.child_id(GONE, FIND, self.id, name).await? {
            Some(id) => Ok(self.spec(id, name.to_string())),
            None => Err(Error::NoSuchWorkSpec {
                name: name.to_string(),
            }),
        }
    }

    async fn destroy_work_spec(&self, name: &str) -> Result<()> {
        let shared = &self.shared;
        let deleted = shared
            .execute_retrying(
                "DELETE FROM work_spec WHERE namespace_id = $1 AND name = $2",
                &[&self.id, &name.as_bytes()],
            )
            .await?;
        if deleted == 0 {
            return Err(Error::NoSuchWorkSpec {
                name: name.to_string(),
            });
        }
        Ok(())
    }

    async fn work_spec_names(&self) -> Result<Vec<String>> {
        const NAMES: &str = "SELECT name FROM work_spec WHERE namespace_id = $1";
        let rows = self.shared.rows(NAMES, &[&self.id]).await?;
        rows.iter().map(|r| text(r, 0)).collect()
    }

    async fn worker(&self, name: &str) -> Result<WorkerRef> {
        const FIND: &str = "SELECT id FROM worker WHERE namespace_id = $1 AND name = $2";
        const CREATE: &str = "INSERT INTO worker (namespace_id, name, parent_id, active, mode,
                data, expiration, last_update)
            VALUES ($1, $2, NULL, true, '', '{}', $3, $4)
            ON CONFLICT (namespace_id, name) DO NOTHING RETURNING id";
        const EXISTS: &str = "SELECT 1 FROM namespace WHERE id = $1";
        limits::check_name(name)?;
        let client = self.shared.client().await?;
        for _ in 0..MAX_TRIES {
            if let Some(row) = query_opt(&client, FIND, &[&self.id, &name.as_bytes()]).await? {
                return Ok(self.worker_handle(col(&row, 0)?, name.to_string()));
            }
            let now = self.shared.now();
            let expiration = match checked_add(now, DEFAULT_LIFETIME) {
                Ok(expiration) => expiration,
                // Near the end of time only a namespace that exists is
                // out of range; a destroyed one is Gone, whatever the time.
                Err(out_of_range) => {
                    query_opt(&client, EXISTS, &[&self.id]).await?.ok_or(GONE)?;
                    return Err(out_of_range);
                }
            };
            // A missing namespace shows as a foreign-key violation: Gone.
            if let Some(row) = query_opt(
                &client,
                CREATE,
                &[&self.id, &name.as_bytes(), &expiration, &now],
            )
            .await?
            {
                return Ok(self.worker_handle(col(&row, 0)?, name.to_string()));
            }
        }
        Err(decode(format!(
            "worker {name:?} keeps vanishing while being created"
        )))
    }

    async fn workers(&self) -> Result<BTreeMap<String, WorkerRef>> {
        const WORKERS: &str = "SELECT id, name FROM worker WHERE namespace_id = $1";
        let rows = self.shared.rows(WORKERS, &[&self.id]).await?;
        by_name(&rows, |id, name| self.worker_handle(id, name))
    }

    async fn summarize(&self) -> Result<Summary> {
        self.shared.summarize(Scope::Namespace(self.id)).await
    }
}
