//! Turning attempt links into handles.
//!
//! The API's attempt documents carry the URLs of their work unit and
//! worker, not their names, so building handles means following those
//! links (and the unit's link to its spec). A [`Resolver`] follows each
//! distinct link once per call, a few at a time, and reuses the handles the
//! caller already has when their URLs match. A document that also names
//! them ([`AttemptNames`], an extension `coordinated` serves) needs no
//! request at all.

use std::collections::HashMap;
use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};
use reqwest::Url;
use serde::de::DeserializeOwned;

use crate::api::AttemptRef;
use crate::error::{Error, Result};
use crate::rest::wire::{
    AttemptActionLinks, AttemptDocument, AttemptNames, AttemptSummary, UncheckedAttemptDocument,
    UncheckedWorkUnitDocument, WorkSpecDocument, WorkerDocument,
};

use super::attempt::{Actions, RestAttempt};
use super::layout;
use super::transport::{self, Failure};
use super::work_spec::RestWorkSpec;
use super::work_unit::RestWorkUnit;
use super::worker::RestWorker;
use super::ProtocolError;
use super::Shared;

/// How many links one call follows at once.
pub(crate) const CONCURRENT_FETCHES: usize = 8;

/// One attempt to build: its resolved links and, for a full document, its
/// action endpoints.
pub(crate) struct Item {
    url: Url,
    unit: Url,
    worker: Url,
    names: Option<Names>,
    actions: Option<Actions>,
}

/// What an attempt document's names extension gives: enough to make the
/// unit's and worker's handles without a request.
struct Names {
    spec_url: Url,
    spec: String,
    unit: String,
    worker: String,
}

impl Names {
    /// The names, if the document has all of them.
    fn of(shared: &Shared, names: &AttemptNames) -> Result<Option<Self>> {
        let Some((spec_url, spec, unit, worker)) = names.all() else {
            return Ok(None);
        };
        Ok(Some(Names {
            spec_url: shared.resolve(spec_url)?,
            spec: spec.to_owned(),
            unit: unit.to_owned(),
            worker: worker.to_owned(),
        }))
    }
}

impl Item {
    /// The item of the attempt `summary` names, without actions.
    fn resolve(shared: &Shared, summary: &AttemptSummary) -> Result<Self> {
        let item = Item {
            url: shared.resolve(&summary.url)?,
            unit: shared.resolve(&summary.work_unit_url)?,
            worker: shared.resolve(&summary.worker_url)?,
            names: Names::of(shared, &summary.names)?,
            actions: None,
        };
        item.check_names()?;
        Ok(item)
    }

    /// Refuses names that are not those of the links, where the links
    /// are laid out as the API's and so tell: a handle made from them
    /// would act on another object than its name says.
    fn check_names(&self) -> Result<()> {
        let Some(names) = &self.names else {
            return Ok(());
        };
        let linked = (
            layout::spec_and_unit_in(&self.unit),
            layout::worker_in(&self.worker),
        );
        let disagree = match linked {
            (Some((spec, unit)), _)
                if (spec.as_str(), unit.as_str()) != (&names.spec, &names.unit) =>
            {
                Some(format!(
                    "links to unit {unit:?} of spec {spec:?}, but names unit {:?} of spec {:?}",
                    names.unit, names.spec
                ))
            }
            (Some(_), _) if !layout::is_spec_of_unit(&names.spec_url, &self.unit) => Some(format!(
                "links to unit {:?} of another spec than its spec link",
                names.unit
            )),
            (_, Some(worker)) if worker != names.worker => Some(format!(
                "links to worker {worker:?}, but names worker {:?}",
                names.worker
            )),
            _ => None,
        };
        match disagree {
            None => Ok(()),
            Some(reason) => Err(Error::backend(ProtocolError::Body {
                url: transport::shown(&self.url),
                reason: format!("the attempt {reason}"),
            })),
        }
    }
}

/// An answer that names attempts: the short form in a list, or a full
/// document, which also names the action endpoints.
pub(crate) trait AttemptLinks {
    /// The attempt's item.
    fn item(&self, shared: &Shared) -> Result<Item>;
}

impl AttemptLinks for AttemptSummary {
    fn item(&self, shared: &Shared) -> Result<Item> {
        Item::resolve(shared, self)
    }
}

/// The item of a whole attempt document (checked or not): its summary's,
/// with its action endpoints.
fn with_actions(
    shared: &Shared,
    summary: &AttemptSummary,
    actions: &AttemptActionLinks,
) -> Result<Item> {
    let mut item = Item::resolve(shared, summary)?;
    item.actions = Some(Actions::of(shared, actions)?);
    Ok(item)
}

impl AttemptLinks for AttemptDocument {
    fn item(&self, shared: &Shared) -> Result<Item> {
        with_actions(shared, &self.summary, &self.actions)
    }
}

impl AttemptLinks for UncheckedAttemptDocument {
    fn item(&self, shared: &Shared) -> Result<Item> {
        with_actions(shared, &self.summary, &self.actions)
    }
}

/// Handles found so far in one call; `None` marks an object that no
/// longer exists (its attempts are left out).
pub(crate) struct Resolver<'a> {
    shared: &'a Arc<Shared>,
    units: HashMap<Url, Option<RestWorkUnit>>,
    specs: HashMap<Url, Option<RestWorkSpec>>,
    workers: HashMap<Url, RestWorker>,
    /// The spec every attempt to build is of, if known: read up front
    /// (alongside nothing else) when some attempt has to be followed.
    common_spec: Option<Url>,
}

/// `GET` the document of the object at `url` from `request(url)`; `None`
/// when the server says its object does not exist.
async fn fetch_existing<T: DeserializeOwned>(
    shared: &Shared,
    url: Url,
    request: fn(&Url) -> Url,
) -> Result<(Url, Option<T>)> {
    match shared.transport().get::<T>(&request(&url)).await {
        Ok(doc) => Ok((url, Some(doc))),
        Err(Failure {
            error: Error::NoSuchWorkSpec { .. } | Error::NoSuchWorkUnit { .. } | Error::Gone { .. },
            ..
        }) => Ok((url, None)),
        Err(failure) => Err(failure.error),
    }
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(shared: &'a Arc<Shared>) -> Self {
        Resolver {
            shared,
            units: HashMap::new(),
            specs: HashMap::new(),
            workers: HashMap::new(),
            common_spec: None,
        }
    }

    /// Reuse `unit` for attempts whose unit link is its URL.
    pub(crate) fn know_unit(&mut self, unit: &RestWorkUnit) {
        self.units.insert(unit.url().clone(), Some(unit.clone()));
        self.specs
            .insert(unit.spec().url().clone(), Some(unit.spec().clone()));
    }

    /// Reuse `worker` for attempts whose worker link is its URL.
    pub(crate) fn know_worker(&mut self, worker: &RestWorker) {
        self.workers.insert(worker.url().clone(), worker.clone());
    }

    /// Every attempt to build is of the work spec at `link` (a hand-out):
    /// if their units' documents have to be read, the spec is read first,
    /// once, instead of after them.
    pub(crate) fn common_spec(&mut self, link: &str) -> Result<()> {
        self.common_spec = Some(self.shared.resolve(link)?);
        Ok(())
    }

    /// Worker handles for worker links.
    pub(crate) async fn workers(&mut self, links: &[String]) -> Result<Vec<RestWorker>> {
        let urls = links
            .iter()
            .map(|l| self.shared.resolve(l))
            .collect::<Result<Vec<_>>>()?;
        self.fetch_workers(urls.clone()).await?;
        Ok(urls
            .iter()
            .filter_map(|u| self.workers.get(u).cloned())
            .collect())
    }

    /// Handles for the attempts of an attempt list or of full attempt
    /// documents, leaving out those whose unit or worker no longer exists.
    pub(crate) async fn attempts<T: AttemptLinks>(
        &mut self,
        attempts: &[T],
    ) -> Result<Vec<AttemptRef>> {
        Ok(self
            .each_attempt(attempts)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    /// A handle for each attempt, in order: `None` for one whose unit or
    /// worker no longer exists.
    pub(crate) async fn each_attempt<T: AttemptLinks>(
        &mut self,
        attempts: &[T],
    ) -> Result<Vec<Option<AttemptRef>>> {
        let items = attempts
            .iter()
            .map(|a| a.item(self.shared))
            .collect::<Result<Vec<_>>>()?;
        self.build(items).await
    }

    async fn build(&mut self, items: Vec<Item>) -> Result<Vec<Option<AttemptRef>>> {
        for item in &items {
            if let Some(names) = &item.names {
                self.name(item, names);
            }
        }
        let unnamed = || items.iter().filter(|i| i.names.is_none());
        if let Some(spec) = self
            .common_spec
            .take()
            .filter(|_| unnamed().next().is_some())
        {
            self.fetch_specs(vec![spec]).await?;
        }
        self.fetch_units(unnamed().map(|i| i.unit.clone()).collect())
            .await?;
        self.fetch_workers(unnamed().map(|i| i.worker.clone()).collect())
            .await?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let (Some(Some(unit)), Some(worker)) =
                (self.units.get(&item.unit), self.workers.get(&item.worker))
            else {
                out.push(None);
                continue;
            };
            let attempt = RestAttempt::new(
                self.shared,
                item.url,
                unit.clone(),
                worker.clone(),
                item.actions,
            );
            out.push(Some(Arc::new(attempt) as AttemptRef));
        }
        Ok(out)
    }

    /// Makes the handles of `item`'s unit (and spec) and worker from their
    /// names, unless handles for their URLs are known already.
    fn name(&mut self, item: &Item, names: &Names) {
        if !self.units.contains_key(&item.unit) {
            let spec = self
                .specs
                .entry(names.spec_url.clone())
                .or_insert_with(|| {
                    Some(RestWorkSpec::new(
                        self.shared,
                        names.spec.clone(),
                        names.spec_url.clone(),
                        None,
                    ))
                })
                .clone();
            let unit = spec
                .map(|spec| RestWorkUnit::new(spec, names.unit.clone(), item.unit.clone(), None));
            self.units.insert(item.unit.clone(), unit);
        }
        self.workers.entry(item.worker.clone()).or_insert_with(|| {
            RestWorker::new(self.shared, names.worker.clone(), item.worker.clone(), None)
        });
    }

    /// The distinct URLs of `urls` that `known` does not hold yet.
    fn missing<V>(known: &HashMap<Url, V>, mut urls: Vec<Url>) -> Vec<Url> {
        urls.sort();
        urls.dedup();
        urls.retain(|u| !known.contains_key(u));
        urls
    }

    async fn fetch_all<T: DeserializeOwned>(
        &self,
        urls: Vec<Url>,
        request: fn(&Url) -> Url,
    ) -> Result<Vec<(Url, Option<T>)>> {
        stream::iter(urls)
            .map(|url| fetch_existing::<T>(self.shared, url, request))
            .buffer_unordered(CONCURRENT_FETCHES)
            .try_collect()
            .await
    }

    async fn fetch_specs(&mut self, urls: Vec<Url>) -> Result<()> {
        let urls = Self::missing(&self.specs, urls);
        for (url, doc) in self.fetch_all::<WorkSpecDocument>(urls, Url::clone).await? {
            let spec = match doc {
                Some(doc) => Some(RestWorkSpec::from_document(self.shared, url.clone(), doc)?),
                None => None,
            };
            self.specs.insert(url, spec);
        }
        Ok(())
    }

    async fn fetch_units(&mut self, urls: Vec<Url>) -> Result<()> {
        let urls = Self::missing(&self.units, urls);
        // Handles need the unit's name and links, not its status: reading
        // them is no expiry check.
        let docs = self
            .fetch_all::<UncheckedWorkUnitDocument>(urls, Shared::unchecked)
            .await?;
        let mut spec_urls = Vec::new();
        for (_, doc) in &docs {
            if let Some(doc) = doc {
                spec_urls.push(self.shared.resolve(&doc.work_spec_url)?);
            }
        }
        self.fetch_specs(spec_urls).await?;
        for (url, doc) in docs {
            let unit = match doc {
                Some(doc) => {
                    let spec_url = self.shared.resolve(&doc.work_spec_url)?;
                    match self.specs.get(&spec_url) {
                        Some(Some(spec)) => {
                            Some(RestWorkUnit::from_document(spec.clone(), url.clone(), doc)?)
                        }
                        _ => None,
                    }
                }
                None => None,
            };
            self.units.insert(url, unit);
        }
        Ok(())
    }

    async fn fetch_workers(&mut self, urls: Vec<Url>) -> Result<()> {
        let urls = Self::missing(&self.workers, urls);
        for (url, doc) in self.fetch_all::<WorkerDocument>(urls, Url::clone).await? {
            if let Some(doc) = doc {
                let worker = RestWorker::from_document(self.shared, url.clone(), doc)?;
                self.workers.insert(url, worker);
            }
        }
        Ok(())
    }
}
