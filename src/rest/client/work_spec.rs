//! Work spec handles: the spec's links are read once; its definition,
//! meta and units are read on every call.

use std::any::Any;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;

use crate::api::{WorkSpec, WorkUnitRef};
use crate::error::{Error, Result};
use crate::model::{DataMap, Summary, WorkSpecMeta, WorkUnitMeta, WorkUnitQuery, WorkUnitStatus};
use crate::rest::names::encode_previous;
use crate::rest::wire::sent_statuses;
use crate::rest::wire::{
    CountsDocument, DeletedDocument, PriorityOnly, SelectAction, UncheckedWorkUnitDocument,
    WorkSpecBody, WorkSpecDocument, WorkSpecMetaBody, WorkSpecMetaDocument, WorkUnitBody,
    WorkUnitList, WorkUnitMetaDocument, WorkUnitSelectBody,
};
use crate::rules::checked_definition;
use crate::rules::limits::{
    bounded_name, checked_new_unit, checked_priority, checked_spec_meta, fits_name,
};

use super::layout::namespace_in;
use super::owner::Owner;
use super::template::Var;
use super::transport::shown;
use super::work_unit::RestWorkUnit;
use super::{summary_at, ProtocolError, Shared};

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
/// of common HTTP servers and proxies. Longer queries are sent in a body,
/// or in parts.
const MAX_QUERY_URL: usize = 8 * 1024;

/// The longest work unit query sent in one body, in bytes of its URL form
/// (which its JSON form does not exceed but for control characters): an
/// eighth of `coordinated`'s default body bound. Longer queries are sent in parts.
const MAX_QUERY_BODY: usize = 4 << 20;

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
        let doc: WorkSpecDocument = self.shared().get(&self.0.url, self.owner()).await?;
        Shared::check_named(&self.0.url, &self.0.name, &doc.name)?;
        Ok(doc)
    }

    /// Where `query` goes for the query template `template`: one URL when
    /// it fits [`MAX_QUERY_URL`] bytes; otherwise the body of one `POST` to
    /// the spec's select URL when it fits [`MAX_QUERY_BODY`]; otherwise, or
    /// from a server without a select URL, one URL per part of the names,
    /// each selecting what `query` selects among them.
    async fn selection(
        &self,
        template: impl Fn(&WorkSpecDocument) -> &str,
        query: &WorkUnitQuery,
    ) -> Result<Selection> {
        let links = self.links().await?;
        let template = template(links);
        let distinct = sent_statuses(query);
        let statuses: Vec<String> = distinct.iter().map(|s| s.as_str().to_owned()).collect();
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
        let url = |part| {
            let vars = query_vars(part, &statuses, &previous, limit.as_deref());
            self.shared().expand(template, &vars)
        };
        let whole = url(&names)?;
        if whole.as_str().len() <= MAX_QUERY_URL || names.len() <= 1 {
            return Ok(Selection::Urls(vec![whole]));
        }
        if !links.work_unit_select_url.is_empty() && whole.as_str().len() <= MAX_QUERY_BODY {
            let url = self.shared().resolve(&links.work_unit_select_url)?;
            // The names and `previous` as the URLs would carry them.
            let sent = WorkUnitQuery {
                names,
                statuses: distinct,
                previous_name: bounded_name(&query.previous_name).to_owned(),
                limit: query.limit,
            };
            return Ok(Selection::Body(url, sent));
        }
        let mut urls = Vec::new();
        let (low, high) = names.split_at(names.len() / 2);
        let mut pending = vec![high, low];
        while let Some(part) = pending.pop() {
            let url = url(part)?;
            if url.as_str().len() <= MAX_QUERY_URL || part.len() <= 1 {
                urls.push(url);
            } else {
                let (low, high) = part.split_at(part.len() / 2);
                pending.extend([high, low]);
            }
        }
        Ok(Selection::Urls(urls))
    }

    /// Where a query that acts on what it selects goes. A query with a
    /// limit whose names need several URLs is first listed, so the limit
    /// counts across all of them, and then named outright.
    async fn action_selection(
        &self,
        template: impl Fn(&WorkSpecDocument) -> &str,
        query: &WorkUnitQuery,
    ) -> Result<Selection> {
        let selection = self.selection(&template, query).await?;
        match &selection {
            Selection::Urls(urls) if urls.len() > 1 && query.limit > 0 => {}
            _ => return Ok(selection),
        }
        let selected = self.work_units(query).await?;
        if selected.is_empty() {
            return Ok(Selection::Urls(Vec::new()));
        }
        let named = WorkUnitQuery {
            names: selected.into_keys().collect(),
            limit: 0,
            ..query.clone()
        };
        self.selection(template, &named).await
    }

    /// The answer of `action` on what `query` selects, from the select URL
    /// `url`.
    async fn select<T: DeserializeOwned>(
        &self,
        url: &Url,
        action: SelectAction,
        query: &WorkUnitQuery,
    ) -> Result<T> {
        let body = WorkUnitSelectBody::new(action, query);
        self.shared()
            .exchange(Method::POST, url, Some(&body), self.owner())
            .await
    }

    /// Handles on the units of a work unit list.
    fn units_in(&self, list: WorkUnitList) -> Result<BTreeMap<String, WorkUnitRef>> {
        self.shared().named(list.work_units, |name, url| {
            Arc::new(RestWorkUnit::new(self.clone(), name, url, None)) as WorkUnitRef
        })
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
        action: SelectAction,
        query: &WorkUnitQuery,
        priority: f64,
    ) -> Result<()> {
        match self.action_selection(template, query).await? {
            Selection::Body(url, sent) => {
                let body = WorkUnitSelectBody {
                    meta: Some(PriorityOnly { priority }),
                    ..WorkUnitSelectBody::new(action, &sent)
                };
                self.shared()
                    .call(Method::POST, &url, Some(&body), self.owner())
                    .await
            }
            Selection::Urls(urls) => {
                let meta = WorkUnitMetaDocument {
                    priority,
                    not_before: None,
                };
                let body = WorkUnitBody {
                    meta: Some(meta),
                    ..WorkUnitBody::default()
                };
                for url in urls {
                    self.shared()
                        .call(Method::POST, &url, Some(&body), self.owner())
                        .await?;
                }
                Ok(())
            }
        }
    }
}

/// Where a work unit query goes (see [`RestWorkSpec::selection`]).
enum Selection {
    /// In the query strings of these URLs.
    Urls(Vec<Url>),
    /// In the body of one `POST` to this URL, as this query.
    Body(Url, WorkUnitQuery),
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
            data: Some(checked_definition(definition)?),
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
        // Only what `set_meta` sets: the server ignores the rest of the
        // meta document, which may be far longer (a spec's `runtime`).
        let body = WorkSpecMetaBody::from(meta);
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
        let (created, url) = self.shared().create(&url, &body, self.owner()).await?;
        Shared::check_named(&url, name, &created)?;
        Ok(Arc::new(RestWorkUnit::new(
            self.clone(),
            created,
            url,
            None,
        )))
    }

    async fn work_unit(&self, name: &str) -> Result<WorkUnitRef> {
        if !fits_name(name) {
            return Err(Error::NoSuchWorkUnit { name: name.into() });
        }
        let url = self.work_unit_url(name).await?;
        let doc: UncheckedWorkUnitDocument = self
            .shared()
            .get(&Shared::unchecked(&url), self.owner())
            .await?;
        Shared::check_named(&url, name, &doc.head.name)?;
        Ok(Arc::new(RestWorkUnit::from_document(
            self.clone(),
            url,
            doc,
        )?))
    }

    async fn work_units(&self, query: &WorkUnitQuery) -> Result<BTreeMap<String, WorkUnitRef>> {
        let units = match self.selection(|l| &l.work_unit_query_url, query).await? {
            Selection::Body(url, sent) => {
                let list = self.select(&url, SelectAction::List, &sent).await?;
                self.units_in(list)?
            }
            Selection::Urls(urls) => {
                let mut units = BTreeMap::new();
                for url in urls {
                    let list: WorkUnitList = self.shared().get(&url, self.owner()).await?;
                    units.extend(self.units_in(list)?);
                }
                units
            }
        };
        // Each part kept its first `limit`, and the query keeps the first
        // `limit` of them all: never more than asked, even from a server
        // that answers more.
        Ok(match query.limit() {
            Some(limit) => units.into_iter().take(limit).collect(),
            None => units,
        })
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
                        url: shown(&url),
                        reason: e.to_string(),
                    })
                })?;
                Ok((status, n))
            })
            .collect()
    }

    async fn set_work_unit_priorities(&self, query: &WorkUnitQuery, priority: f64) -> Result<()> {
        let priority = checked_priority(priority)?;
        self.post_priority(
            |l| &l.work_unit_change_url,
            SelectAction::Change,
            query,
            priority,
        )
        .await
    }

    async fn adjust_work_unit_priorities(&self, query: &WorkUnitQuery, delta: f64) -> Result<()> {
        let delta = checked_priority(delta)?;
        self.post_priority(
            |l| &l.work_unit_adjust_url,
            SelectAction::Adjust,
            query,
            delta,
        )
        .await
    }

    async fn delete_work_units(&self, query: &WorkUnitQuery) -> Result<u64> {
        let urls = match self
            .action_selection(|l| &l.work_unit_query_url, query)
            .await?
        {
            Selection::Body(url, sent) => {
                let deleted: DeletedDocument =
                    self.select(&url, SelectAction::Delete, &sent).await?;
                return Ok(deleted.deleted);
            }
            Selection::Urls(urls) => urls,
        };
        let mut deleted: u64 = 0;
        for url in urls {
            let part: DeletedDocument = self
                .shared()
                .exchange(Method::DELETE, &url, None::<&()>, self.owner())
                .await?;
            deleted = deleted.saturating_add(part.deleted);
        }
        Ok(deleted)
    }

    async fn summarize(&self) -> Result<Summary> {
        let links = self.links().await?;
        let url = self.shared().resolve(&links.summary_url)?;
        summary_at(self.shared(), &url, self.owner()).await
    }
}
