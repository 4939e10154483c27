//! Attempt handles: the attempt's URL (never built by the client), its
//! unit and worker, and its action endpoints. Reads that are no expiry
//! check (data, start time, the action endpoints) ask for the attempt
//! without its status.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::{Method, Url};
use tokio::sync::OnceCell;

use crate::api::{Attempt, WorkUnitRef, WorkerRef};
use crate::error::Result;
use crate::model::{AttemptSnapshot, AttemptStatus, DataMap, Duration, Time};
use crate::rest::names;
use crate::rest::wire::{
    AttemptActionBody, AttemptActionLinks, AttemptDocument, UncheckedAttemptDocument,
};
use crate::rules::limits::checked_optional_data;

use super::owner::Owner;
use super::transport::shown;
use super::work_unit::RestWorkUnit;
use super::worker::RestWorker;
use super::Shared;

/// The five action endpoints of an attempt, resolved.
pub(crate) struct Actions {
    renew: Url,
    expire: Url,
    finish: Url,
    fail: Url,
    retry: Url,
}

impl Actions {
    pub(crate) fn of(shared: &Shared, links: &AttemptActionLinks) -> Result<Self> {
        Ok(Actions {
            renew: shared.resolve(&links.renew_url)?,
            expire: shared.resolve(&links.expire_url)?,
            finish: shared.resolve(&links.finish_url)?,
            fail: shared.resolve(&links.fail_url)?,
            retry: shared.resolve(&links.retry_url)?,
        })
    }
}

pub(crate) struct RestAttempt {
    shared: Arc<Shared>,
    url: Url,
    unit: RestWorkUnit,
    worker: RestWorker,
    actions: OnceCell<Actions>,
}

impl fmt::Debug for RestAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestAttempt")
            .field("url", &shown(&self.url))
            .finish()
    }
}

impl RestAttempt {
    pub(crate) fn new(
        shared: &Arc<Shared>,
        url: Url,
        unit: RestWorkUnit,
        worker: RestWorker,
        actions: Option<Actions>,
    ) -> Self {
        RestAttempt {
            shared: Arc::clone(shared),
            url,
            unit,
            worker,
            actions: OnceCell::new_with(actions),
        }
    }

    fn owner(&self) -> Owner<'_> {
        Owner::Attempt {
            spec: self.unit.spec().name(),
            unit: self.unit.name(),
        }
    }

    /// The attempt document, read fresh.
    async fn document(&self) -> Result<AttemptDocument> {
        let doc: AttemptDocument = self.shared.get(&self.url, self.owner()).await?;
        if !self.actions.initialized() {
            let _ = self.actions.set(Actions::of(&self.shared, &doc.actions)?);
        }
        Ok(doc)
    }

    /// The attempt document without its status, read fresh: no expiry
    /// check.
    async fn unchecked(&self) -> Result<UncheckedAttemptDocument> {
        let doc: UncheckedAttemptDocument = self
            .shared
            .transport()
            .get(&Shared::unchecked(&self.url))
            .await
            .map_err(|f| f.error_for(self.owner()))?;
        if !self.actions.initialized() {
            let _ = self.actions.set(Actions::of(&self.shared, &doc.actions)?);
        }
        Ok(doc)
    }

    async fn actions(&self) -> Result<&Actions> {
        if let Some(actions) = self.actions.get() {
            return Ok(actions);
        }
        let doc = self.unchecked().await?;
        self.actions
            .get_or_try_init(|| async { Actions::of(&self.shared, &doc.actions) })
            .await
    }

    async fn act(
        &self,
        endpoint: impl Fn(&Actions) -> &Url,
        data: Option<DataMap>,
        extend_duration: Duration,
        delay: Duration,
    ) -> Result<()> {
        let data = checked_optional_data(data)?;
        let url = endpoint(self.actions().await?);
        let body = AttemptActionBody {
            data,
            extend_duration,
            delay,
        };
        self.shared
            .call(Method::POST, url, Some(&body), self.owner())
            .await
    }
}

#[async_trait]
impl Attempt for RestAttempt {
    fn work_unit(&self) -> WorkUnitRef {
        Arc::new(self.unit.clone())
    }

    fn worker(&self) -> WorkerRef {
        Arc::new(self.worker.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    /// The identifier the server's URL for the attempt carries
    /// (`…/{start}_{id}`, as `coordinated` names the attempts of a backend
    /// that identifies them), so that a server over this backend tells
    /// apart attempts started in one second too.
    fn id(&self) -> Option<u64> {
        let raw = self.url.path_segments()?.next_back()?;
        let segment = names::decode_raw_segment(raw).ok()?;
        names::split_attempt_segment(&segment).1
    }

    async fn status(&self) -> Result<AttemptStatus> {
        Ok(self.document().await?.status)
    }

    async fn data(&self) -> Result<DataMap> {
        Ok(self.unchecked().await?.data.unwrap_or_default())
    }

    async fn start_time(&self) -> Result<Time> {
        Ok(self.unchecked().await?.summary.start_time)
    }

    async fn end_time(&self) -> Result<Option<Time>> {
        Ok(self.document().await?.end_time)
    }

    async fn expiration_time(&self) -> Result<Time> {
        Ok(self.document().await?.expiration_time)
    }

    /// The attempt document carries all five: one `GET`.
    async fn snapshot(&self) -> Result<AttemptSnapshot> {
        let doc = self.document().await?;
        Ok(AttemptSnapshot::new(
            doc.status,
            doc.data.unwrap_or_default(),
            doc.summary.start_time,
            doc.end_time,
            doc.expiration_time,
        ))
    }

    async fn renew(&self, extend: Duration, data: Option<DataMap>) -> Result<()> {
        self.act(|a| &a.renew, data, extend, Duration::zero()).await
    }

    async fn expire(&self, data: Option<DataMap>) -> Result<()> {
        self.act(|a| &a.expire, data, Duration::zero(), Duration::zero())
            .await
    }

    async fn finish(&self, data: Option<DataMap>) -> Result<()> {
        self.act(|a| &a.finish, data, Duration::zero(), Duration::zero())
            .await
    }

    async fn fail(&self, data: Option<DataMap>) -> Result<()> {
        self.act(|a| &a.fail, data, Duration::zero(), Duration::zero())
            .await
    }

    async fn retry(&self, data: Option<DataMap>, delay: Duration) -> Result<()> {
        self.act(|a| &a.retry, data, Duration::zero(), delay).await
    }
}
