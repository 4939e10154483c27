//! Work spec handles: the spec's links are read once; its definition,
//! meta and units are read on every call.

use std::any::Any;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::{Method, Url};
use tokio::sync::OnceCell;

use crate::api::{WorkSpec, WorkUnitRef};
use crate::error::{Error, Result};
use crate::model::{DataMap, Summary, WorkSpecMeta, WorkUnitMeta, WorkUnitQuery, WorkUnitStatus};
use crate::rest::names::{bounded_name, encode_previous};
use crate::rest::wire::{
    CountsDocument, DeletedDocument, UncheckedWorkUnitDocument, WorkSpecBody, WorkSpecDocument,
    WorkSpecMetaDocument, WorkUnitBody, WorkUnitList, WorkUnitMetaDocument,
};
use crate::rules::limits::{checked_data, checked_new_unit, checked_priority, checked_spec_meta};

use super::layout::namespace_in;
use super::owner::Owner;
use super::template::Var;
use super::work_unit::RestWorkUnit;
use super::{impossible_name, summary_at, ProtocolError, Shared};

/// A work spec handle; clones share the links.
#[derive(Clone)]
pub(crate) struct RestWorkSpec(Arc<SpecInner>);

pub(crate) struct SpecInner {
    shared: Arc<Shared>,
    name: String,
    /// The namespace's name, read from `url`.
    namespace: String,
    url: Url,
    /// The spec document without its definition: only the links are used.
    links: OnceCell<WorkSpecDocument>,
}

debug_name_and_url!(RestWorkSpec);

/// The longest work unit query URL sent, in bytes: the request-line limit
/// of common HTTP servers and proxies. Longer queries are sent in parts.
const MAX_QUERY_URL: usize = 8 * 1024;

/// The query variables of a work unit query template.
fn query_vars<'a>(
    names: &'a [String],
    statuses: &'a [String],
    previous: &'a str,
    limit: Option<&'a str>,
) -> Vec<(&'static str, Var<'a>)> {
    let mut vars = vec![("name", Var::List(names)), ("status", Var::List(statuses))];
    if !previous.is_empty() {
        vars.push(("previous", Var::Text(previous)));
    }
    if let Some(limit) = limit {
        vars.push(("limit", Var::Text(limit)));
    }
    vars
}

impl RestWorkSpec {
    pub(crate) fn new(
        shared: &Arc<Shared>,
        name: String,
        url: Url,
        doc: Option<WorkSpecDocument>,
    ) -> Self {
        let links = OnceCell::new_with(doc.map(|mut d| {
            d.data = None;
            d
        }));
        RestWorkSpec(Arc::new(SpecInner {
            shared: Arc::clone(shared),
            name,
            namespace: namespace_in(&url, "work_spec"),
            url,
            links,
        }))
    }

    /// A handle for a fetched document (`requested` is the URL it came from).
    pub(crate) fn from_document(
        shared: &Arc<Shared>,
        requested: Url,
        doc: WorkSpecDocument,
    ) -> Result<Self> {
        let url = shared.document_url(&doc.url, requested)?;
        Ok(Self::new(shared, doc.name.clone(), url, Some(doc)))
    }

    pub(crate) fn name(&self) -> &str {
        &self.0.name
    }

    pub(crate) fn url(&self) -> &Url {
        &self.0.url
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.0.shared
    }

    fn owner(&self) -> Owner<'_> {
        Owner::Spec(&self.0.name)
    }

    /// The full spec document (read fresh), keeping its links.
    async fn document(&self) -> Result<WorkSpecDocument> {
        let doc = self.fetch().await?;
        if !self.0.links.initialized() {
            let mut links = doc.clone();
            links.data = None;
            // Losing the race to another caller is fine: same links.
            let _ = self.0.links.set(links);
        }
        Ok(doc)
    }

    pub(crate) async fn links(&self) -> Result<&WorkSpecDocument> {
        self.0
            .links
            .get_or_try_init(|| async {
                let mut doc = self.fetch().await?;
                doc.data = None;
                Ok(doc)
            })
            .await
    }

    async fn fetch(&self) -> Result<WorkSpecDocument> {
        self.shared().get(&self.0.url, self.owner()).await
    }

    /// The URLs of a work unit query template for `query`: one, or, when
    /// its names do not fit one URL of [`MAX_QUERY_URL`] bytes, one per
    /// part of the names, each selecting what `query` selects among them.
    async fn query_urls(
        &self,
        template: impl Fn(&WorkSpecDocument) -> &str,
        query: &WorkUnitQuery,
    ) -> Result<Vec<Url>> {
        let template = template(self.links().await?);
        let statuses: Vec<String> = query
            .statuses
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect();
        let mut seen = HashSet::with_capacity(query.names.len());
        let names: Vec<String> = query
            .names
            .iter()
            .map(|name| bounded_name(name))
            .filter(|name| seen.insert(*name))
            .map(str::to_owned)
            .collect();
        let previous = encode_previous(bounded_name(&query.previous_name));
        let limit = (query.limit > 0).then(|| query.limit.to_string());
        let mut urls = Vec::new();
        let mut parts = vec![names.as_slice()];
        while let Some(part) = parts.pop() {
            let vars = query_vars(part, &statuses, &previous, limit.as_deref());
            let url = self.shared().expand(template, &vars)?;
            if url.as_str().len() <= MAX_QUERY_URL || part.len() <= 1 {
                urls.push(url);
            } else {
                let (low, high) = part.split_at(part.len() / 2);
                parts.extend([high, low]);
            }
        }
        Ok(urls)
    }

    /// The URLs that act on what `query` selects through `template`. A
    /// query with a limit whose names need several URLs is first listed,
    /// so the limit counts across all of them, and then named outright.
    async fn action_urls(
        &self,
        template: impl Fn(&WorkSpecDocument) -> &str,
        query: &WorkUnitQuery,
    ) -> Result<Vec<Url>> {
        let urls = self.query_urls(&template, query).await?;
        if urls.len() == 1 || query.limit <= 0 {
            return Ok(urls);
        }
        let selected = self.work_units(query).await?;
        if selected.is_empty() {
            return Ok(Vec::new());
        }
        let named = WorkUnitQuery {
            names: selected.into_keys().collect(),
            limit: 0,
            ..query.clone()
        };
        self.query_urls(template, &named).await
    }

    /// The URL of the work unit with this name.
    pub(crate) async fn work_unit_url(&self, name: &str) -> Result<Url> {
        let links = self.links().await?;
        self.shared()
            .expand(&links.work_unit_url, &[("unit", Var::Name(name))])
    }

    /// `POST` a priority change (`change` or `adjust`) for the selected units.
    pub(crate) async fn post_priority(
        &self,
        template: impl Fn(&WorkSpecDocument) -> &str,
        query: &WorkUnitQuery,
        priority: f64,
    ) -> Result<()> {
        let body = WorkUnitBody {
            meta: Some(WorkUnitMetaDocument {
                priority,
                not_before: None,
            }),
            ..WorkUnitBody::default()
        };
        for url in self.action_urls(template, query).await? {
            self.shared()
                .call(Method::POST, &url, Some(&body), self.owner())
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl WorkSpec for RestWorkSpec {
    fn name(&self) -> &str {
        &self.0.name
    }

    fn namespace_name(&self) -> &str {
        &self.0.namespace
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn data(&self) -> Result<DataMap> {
        Ok(self.document().await?.data.unwrap_or_default())
    }

    async fn set_data(&self, definition: DataMap) -> Result<()> {
        let body = WorkSpecBody {
            data: Some(checked_data(definition)?),
        };
        self.shared()
            .call(Method::PUT, &self.0.url, Some(&body), self.owner())
            .await
    }

    async fn meta(&self, with_counts: bool) -> Result<WorkSpecMeta> {
        let links = self.links().await?;
        let counts = if with_counts { "true" } else { "false" };
        let url = self
            .shared()
            .expand(&links.meta, &[("counts", Var::Text(counts))])?;
        let doc: WorkSpecMetaDocument = self.shared().get(&url, self.owner()).await?;
        Ok(doc.into())
    }

    async fn set_meta(&self, meta: WorkSpecMeta) -> Result<()> {
        let meta = checked_spec_meta(meta)?;
        let links = self.links().await?;
        let url = self.shared().expand(&links.meta, &[])?;
        let body = WorkSpecMetaDocument::from(meta);
        self.shared()
            .call(Method::PUT, &url, Some(&body), self.owner())
            .await
    }

    async fn add_work_unit(
        &self,
        name: &str,
        data: DataMap,
        meta: WorkUnitMeta,
    ) -> Result<WorkUnitRef> {
        let (data, meta) = checked_new_unit(name, data, meta)?;
        let links = self.links().await?;
        let url = self.shared().resolve(&links.work_units_url)?;
        let body = WorkUnitBody {
            name: name.to_owned(),
            data: Some(data),
            meta: Some(meta.into()),
        };
        let (name, url) = self.shared().create(&url, &body, self.owner()).await?;
        Ok(Arc::new(RestWorkUnit::new(self.clone(), name, url, None)))
    }

    async fn work_unit(&self, name: &str) -> Result<WorkUnitRef> {
        if impossible_name(name) {
            return Err(Error::NoSuchWorkUnit { name: name.into() });
        }
        let url = self.work_unit_url(name).await?;
        let doc: UncheckedWorkUnitDocument = self
            .shared()
            .get(&Shared::unchecked(&url), self.owner())
            .await?;
        Ok(Arc::new(RestWorkUnit::from_document(
            self.clone(),
            url,
            doc,
        )?))
    }

    async fn work_units(&self, query: &WorkUnitQuery) -> Result<BTreeMap<String, WorkUnitRef>> {
        let urls = self.query_urls(|l| &l.work_unit_query_url, query).await?;
        let parts = urls.len();
        let mut units = BTreeMap::new();
        for url in urls {
            let list: WorkUnitList = self.shared().get(&url, self.owner()).await?;
            units.extend(self.shared().named(list.work_units, |name, url| {
                Arc::new(RestWorkUnit::new(self.clone(), name, url, None)) as WorkUnitRef
            })?);
        }
        match usize::try_from(query.limit) {
            // Each part kept its first `limit`; the query keeps the first
            // `limit` of them all.
            Ok(limit) if limit > 0 && parts > 1 => Ok(units.into_iter().take(limit).collect()),
            _ => Ok(units),
        }
    }

    async fn count_work_unit_status(&self) -> Result<BTreeMap<WorkUnitStatus, u64>> {
        let links = self.links().await?;
        let url = self.shared().resolve(&links.work_unit_counts_url)?;
        let counts: CountsDocument = self.shared().get(&url, self.owner()).await?;
        counts
            .into_iter()
            .map(|(status, n)| {
                let status = status.parse().map_err(|e: crate::StatusConversionError| {
                    Error::backend(ProtocolError::Body {
                        url: url.to_string(),
                        reason: e.to_string(),
                    })
                })?;
                Ok((status, n))
            })
            .collect()
    }

    async fn set_work_unit_priorities(&self, query: &WorkUnitQuery, priority: f64) -> Result<()> {
        let priority = checked_priority(priority)?;
        self.post_priority(|l| &l.work_unit_change_url, query, priority)
            .await
    }

    async fn adjust_work_unit_priorities(&self, query: &WorkUnitQuery, delta: f64) -> Result<()> {
        let delta = checked_priority(delta)?;
        self.post_priority(|l| &l.work_unit_adjust_url, query, delta)
            .await
    }

    async fn delete_work_units(&self, query: &WorkUnitQuery) -> Result<u64> {
        let mut deleted = 0;
        for url in self.action_urls(|l| &l.work_unit_query_url, query).await? {
            let part: DeletedDocument = self
                .shared()
                .exchange(Method::DELETE, &url, None::<&()>, self.owner())
                .await?;
            deleted += part.deleted;
        }
        Ok(deleted)
    }

    async fn summarize(&self) -> Result<Summary> {
        let links = self.links().await?;
        let url = self.shared().resolve(&links.summary_url)?;
        summary_at(self.shared(), &url, self.owner()).await
    }
}
