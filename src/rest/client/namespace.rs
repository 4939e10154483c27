//! Namespace handles: the namespace document's links, read once.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::{Method, StatusCode, Url};
use tokio::sync::OnceCell;

use crate::api::{Namespace, WorkSpecRef, WorkerRef};
use crate::error::{Error, ObjectKind, Result};
use crate::model::{DataMap, Summary};
use crate::rest::wire::{
    NamespaceDocument, WorkSpecBody, WorkSpecDocument, WorkSpecList, WorkerDocument, WorkerList,
};
use crate::rules::checked_definition;
use crate::rules::limits::{check_name, fits_name};

use super::owner::Owner;
use super::template::Var;
use super::transport::{shown, ProtocolError};
use super::work_spec::RestWorkSpec;
use super::worker::RestWorker;
use super::{summary_at, Shared};

/// Whom a failed request on a namespace speaks for: a lookup by name.
const LOOKUP: Owner<'static> = Owner::Lookup(ObjectKind::Namespace);

pub(crate) struct RestNamespace {
    shared: Arc<Shared>,
    name: String,
    url: Url,
    /// The namespace document; only its links are used, and they never
    /// change for a given URL.
    links: OnceCell<NamespaceDocument>,
    /// Set once `destroy` succeeded through this handle: destroying again
    /// is a no-op, even after the name was taken by a new namespace.
    destroyed: AtomicBool,
}

impl fmt::Debug for RestNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestNamespace")
            .field("name", &self.name)
            .field("url", &shown(&self.url))
            .finish()
    }
}

impl RestNamespace {
    pub(crate) fn new(
        shared: &Arc<Shared>,
        name: String,
        url: Url,
        links: Option<NamespaceDocument>,
    ) -> Self {
        RestNamespace {
            shared: Arc::clone(shared),
            name,
            url,
            links: OnceCell::new_with(links),
            destroyed: AtomicBool::new(false),
        }
    }

    /// `GET` the namespace named `name` (which creates it) and keep its
    /// document.
    pub(crate) async fn fetch(shared: &Arc<Shared>, url: Url, name: &str) -> Result<Self> {
        let doc: NamespaceDocument = shared.get(&url, LOOKUP).await?;
        Shared::check_named(&url, name, &doc.name)?;
        let url = shared.document_url(&doc.url, url)?;
        Ok(Self::new(shared, doc.name.clone(), url, Some(doc)))
    }

    async fn links(&self) -> Result<&NamespaceDocument> {
        self.links
            .get_or_try_init(|| async { self.shared.get(&self.url, LOOKUP).await })
            .await
    }

    fn work_spec_url(&self, links: &NamespaceDocument, name: &str) -> Result<Url> {
        self.shared
            .expand(&links.work_spec_url, &[("spec", Var::Name(name))])
    }
}

#[async_trait]
impl Namespace for RestNamespace {
    fn name(&self) -> &str {
        &self.name
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn destroy(&self) -> Result<()> {
        if self.destroyed.load(Ordering::Acquire) {
            return Ok(());
        }
        self.shared
            .call(Method::DELETE, &self.url, None::<&()>, LOOKUP)
            .await?;
        self.destroyed.store(true, Ordering::Release);
        Ok(())
    }

    async fn set_work_spec(&self, definition: DataMap) -> Result<WorkSpecRef> {
        let body = WorkSpecBody {
            data: Some(checked_definition(definition)?),
        };
        let links = self.links().await?;
        let url = self.shared.resolve(&links.work_specs_url)?;
        let (created, url) = self.shared.create(&url, &body, LOOKUP).await?;
        let defined = body.data.as_ref().and_then(|d| d.get("name")?.as_str());
        if let Some(defined) = defined {
            Shared::check_named(&url, defined, &created)?;
        }
        Ok(Arc::new(RestWorkSpec::new(
            &self.shared,
            created,
            url,
            None,
        )))
    }

    async fn work_spec(&self, name: &str) -> Result<WorkSpecRef> {
        if !fits_name(name) {
            return Err(Error::NoSuchWorkSpec { name: name.into() });
        }
        let links = self.links().await?;
        let url = self.work_spec_url(links, name)?;
        let doc: WorkSpecDocument = match self.shared.get(&url, LOOKUP).await {
            // A router's own 404 (no error document) for the spec's URL:
            // the reference client reads it as no such spec.
            Err(Error::Backend(source))
                if matches!(
                    source.downcast_ref::<ProtocolError>(),
                    Some(ProtocolError::Status { status, .. }) if *status == StatusCode::NOT_FOUND
                ) =>
            {
                return Err(Error::NoSuchWorkSpec { name: name.into() })
            }
            answer => answer?,
        };
        Shared::check_named(&url, name, &doc.name)?;
        Ok(Arc::new(RestWorkSpec::from_document(
            &self.shared,
            url,
            doc,
        )?))
    }

    async fn destroy_work_spec(&self, name: &str) -> Result<()> {
        if !fits_name(name) {
            return Err(Error::NoSuchWorkSpec { name: name.into() });
        }
        let links = self.links().await?;
        let url = self.work_spec_url(links, name)?;
        self.shared
            .call(Method::DELETE, &url, None::<&()>, LOOKUP)
            .await
    }

    async fn work_spec_names(&self) -> Result<Vec<String>> {
        let links = self.links().await?;
        let url = self.shared.resolve(&links.work_specs_url)?;
        let list: WorkSpecList = self.shared.get(&url, LOOKUP).await?;
        Ok(list.work_specs.into_iter().map(|s| s.name).collect())
    }

    async fn worker(&self, name: &str) -> Result<WorkerRef> {
        check_name(name)?;
        let links = self.links().await?;
        let url = self
            .shared
            .expand(&links.worker_url, &[("worker", Var::Name(name))])?;
        let doc: WorkerDocument = self.shared.get(&url, LOOKUP).await?;
        Shared::check_named(&url, name, &doc.name)?;
        Ok(Arc::new(RestWorker::from_document(&self.shared, url, doc)?))
    }

    async fn workers(&self) -> Result<BTreeMap<String, WorkerRef>> {
        let links = self.links().await?;
        let url = self.shared.resolve(&links.workers_url)?;
        let list: WorkerList = self.shared.get(&url, LOOKUP).await?;
        self.shared.named(list.workers, |name, url| {
            Arc::new(RestWorker::new(&self.shared, name, url, None)) as WorkerRef
        })
    }

    async fn summarize(&self) -> Result<Summary> {
        let links = self.links().await?;
        let url = self.shared.resolve(&links.summary_url)?;
        summary_at(&self.shared, &url, LOOKUP).await
    }
}
