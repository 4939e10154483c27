//! Work unit handles: every read is one `GET` of the unit (`snapshot` too:
//! the document has status, data and meta); reads that are no expiry
//! check (data, meta) ask for the unit without its status.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::{Method, StatusCode, Url};
use tokio::sync::OnceCell;

use crate::api::{AttemptRef, WorkSpecRef, WorkUnit};
use crate::error::{Error, Result};
use crate::model::{DataMap, WorkUnitMeta, WorkUnitQuery, WorkUnitSnapshot, WorkUnitStatus};
use crate::rest::wire::{
    AttemptDocument, AttemptList, SelectAction, UncheckedWorkUnitDocument, WorkUnitDocument,
    WorkUnitUpdateBody,
};
use crate::rules::limits::{checked_priority, checked_unit_meta};

use super::owner::Owner;
use super::resolve::Resolver;
use super::transport::ProtocolError;
use super::work_spec::RestWorkSpec;
use super::Shared;

/// How many times [`WorkUnit::active_attempt`] reads the unit when its
/// active attempt vanishes between the unit's read and the attempt's.
const ACTIVE_ATTEMPT_READS: usize = 3;

/// A work unit handle; clones share the attempts link.
#[derive(Clone)]
pub(crate) struct RestWorkUnit(Arc<UnitInner>);

pub(crate) struct UnitInner {
    spec: RestWorkSpec,
    name: String,
    url: Url,
    attempts_url: OnceCell<Url>,
}

debug_name_and_url!(RestWorkUnit);

impl RestWorkUnit {
    pub(crate) fn new(
        spec: RestWorkSpec,
        name: String,
        url: Url,
        attempts_url: Option<Url>,
    ) -> Self {
        RestWorkUnit(Arc::new(UnitInner {
            spec,
            name,
            url,
            attempts_url: OnceCell::new_with(attempts_url),
        }))
    }

    /// A handle for a fetched document (`requested` is the URL it came from).
    pub(crate) fn from_document(
        spec: RestWorkSpec,
        requested: Url,
        doc: UncheckedWorkUnitDocument,
    ) -> Result<Self> {
        let shared = spec.shared();
        let url = shared.document_url(&doc.head.url, requested)?;
        let attempts = shared.resolve(&doc.attempts_url)?;
        Ok(Self::new(spec, doc.head.name, url, Some(attempts)))
    }

    pub(crate) fn name(&self) -> &str {
        &self.0.name
    }

    pub(crate) fn url(&self) -> &Url {
        &self.0.url
    }

    pub(crate) fn spec(&self) -> &RestWorkSpec {
        &self.0.spec
    }

    pub(crate) fn owner(&self) -> Owner<'_> {
        Owner::Unit {
            spec: self.0.spec.name(),
            unit: &self.0.name,
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        self.0.spec.shared()
    }

    /// The unit document, read fresh.
    async fn document(&self) -> Result<WorkUnitDocument> {
        let doc: WorkUnitDocument = self.shared().get(&self.0.url, self.owner()).await?;
        Shared::check_named(&self.0.url, &self.0.name, &doc.head.name)?;
        if !self.0.attempts_url.initialized() {
            let url = self.shared().resolve(&doc.attempts_url)?;
            let _ = self.0.attempts_url.set(url);
        }
        Ok(doc)
    }

    /// The unit document without its status, read fresh: no expiry check.
    async fn unchecked(&self) -> Result<UncheckedWorkUnitDocument> {
        let doc: UncheckedWorkUnitDocument = self
            .shared()
            .transport()
            .get(&Shared::unchecked(&self.0.url))
            .await
            .map_err(|f| f.error_for(self.owner()))?;
        Shared::check_named(&self.0.url, &self.0.name, &doc.head.name)?;
        if !self.0.attempts_url.initialized() {
            let url = self.shared().resolve(&doc.attempts_url)?;
            let _ = self.0.attempts_url.set(url);
        }
        Ok(doc)
    }

    async fn attempts_url(&self) -> Result<Url> {
        if let Some(url) = self.0.attempts_url.get() {
            return Ok(url.clone());
        }
        let doc = self.unchecked().await?;
        self.shared().resolve(&doc.attempts_url)
    }

    async fn update(&self, body: &WorkUnitUpdateBody) -> Result<()> {
        self.shared()
            .call(Method::PUT, &self.0.url, Some(body), self.owner())
            .await
    }

    async fn attempt_list(&self) -> Result<AttemptList> {
        let url = self.attempts_url().await?;
        self.shared().get(&url, self.owner()).await
    }
}

#[async_trait]
impl WorkUnit for RestWorkUnit {
    fn name(&self) -> &str {
        &self.0.name
    }

    fn work_spec(&self) -> WorkSpecRef {
        Arc::new(self.0.spec.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    /// The document without status: reading data runs no expiry check, so
    /// an attempt past its deadline stays renewable (lazy expiry).
    async fn data(&self) -> Result<DataMap> {
        Ok(self.unchecked().await?.head.data.unwrap_or_default())
    }

    async fn status(&self) -> Result<WorkUnitStatus> {
        Ok(self.document().await?.status)
    }

    /// The document without status carries both: one `GET`.
    async fn data_and_meta(&self) -> Result<(DataMap, WorkUnitMeta)> {
        let head = self.unchecked().await?.head;
        Ok((head.data.unwrap_or_default(), head.meta.into()))
    }

    async fn meta(&self) -> Result<WorkUnitMeta> {
        Ok(self.unchecked().await?.head.meta.into())
    }

    /// The unit document carries all three: one `GET`.
    async fn snapshot(&self) -> Result<WorkUnitSnapshot> {
        let doc = self.document().await?;
        Ok(WorkUnitSnapshot::new(
            doc.status,
            doc.head.data.unwrap_or_default(),
            doc.head.meta.into(),
        ))
    }

    async fn set_meta(&self, meta: WorkUnitMeta) -> Result<()> {
        let meta = checked_unit_meta(meta)?;
        self.update(&WorkUnitUpdateBody {
            active_attempt_url: None,
            meta: Some(meta.into()),
        })
        .await
    }

    async fn priority(&self) -> Result<f64> {
        Ok(self.unchecked().await?.head.meta.priority)
    }

    /// The API changes one unit's priority through a query naming it, which
    /// answers success whether or not the unit exists; reading the unit
    /// first makes a deleted unit answer `Gone`.
    async fn set_priority(&self, priority: f64) -> Result<()> {
        let priority = checked_priority(priority)?;
        self.unchecked().await?;
        let query = WorkUnitQuery::names([self.0.name.as_str()]);
        self.0
            .spec
            .post_priority(
                |l| &l.work_unit_change_url,
                SelectAction::Change,
                &query,
                priority,
            )
            .await
    }

    /// Two reads: the unit's document, then the attempt it links to. The
    /// unit can be deleted (and its name reused) between them; the attempt
    /// then answers `404`, and the unit is read again, so the answer is
    /// about the unit that has the name.
    async fn active_attempt(&self) -> Result<Option<AttemptRef>> {
        let mut missing = String::new();
        for _ in 0..ACTIVE_ATTEMPT_READS {
            let doc = self.document().await?;
            if doc.active_attempt_url.is_empty() {
                return Ok(None);
            }
            let url = self.shared().resolve(&doc.active_attempt_url)?;
            let attempt: AttemptDocument = match self.shared().transport().get(&url).await {
                Ok(attempt) => attempt,
                Err(failure) if failure.status == Some(StatusCode::NOT_FOUND) => {
                    missing = doc.active_attempt_url;
                    continue;
                }
                Err(failure) => return Err(failure.error_for(self.owner())),
            };
            let mut resolver = Resolver::new(self.shared());
            resolver.know_unit(self);
            let mut got = resolver.attempts(&[attempt]).await?;
            return Ok(got.pop());
        }
        // The unit was there at every read, its attempt never: a server
        // that links to what it does not serve.
        Err(Error::backend(ProtocolError::Link {
            link: missing,
            reason: format!(
                "the unit's active attempt answered 404 on {ACTIVE_ATTEMPT_READS} reads"
            ),
        }))
    }

    async fn clear_active_attempt(&self) -> Result<()> {
        self.update(&WorkUnitUpdateBody {
            active_attempt_url: Some(WorkUnitUpdateBody::CLEAR_ACTIVE_ATTEMPT.to_owned()),
            meta: None,
        })
        .await
    }

    async fn attempts(&self) -> Result<Vec<AttemptRef>> {
        let list = self.attempt_list().await?;
        let mut resolver = Resolver::new(self.shared());
        resolver.know_unit(self);
        resolver.attempts(&list.attempts).await
    }

    async fn num_attempts(&self) -> Result<u64> {
        Ok(self.attempt_list().await?.attempts.len() as u64)
    }
}
