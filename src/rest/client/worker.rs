//! Worker handles: reads `GET` the worker; updates, deactivation and
//! parent changes `PUT` it; attempts come from its `POST` endpoints and
//! attempt lists.

use std::any::Any;
use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::{self, StreamExt};
use reqwest::{Method, Url};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;
use tokio::sync::OnceCell;

use crate::api::{AttemptRef, WorkSpec, WorkUnitRef, Worker, WorkerRef};
use crate::detached::handed_out;
use crate::error::{Error, ObjectKind, Result};
use crate::model::{AttemptRequest, DataMap, Duration, Time};
use crate::rest::wire::{
    AttemptActionBody, AttemptDocument, AttemptList, AttemptRequestBody, AttemptRequestResult,
    MakeAttemptBody, UncheckedAttemptDocument, WorkerDocument, WorkerUpdateBody,
};
use crate::rules::limits::{self, checked_worker_update, MAX_DATA_BYTES};

use super::filters;
use super::layout::namespace_in;
use super::owner::Owner;
use super::resolve::{Resolver, CONCURRENT_FETCHES};
use super::transport::{linked, Failure, Transport};
use super::work_unit::RestWorkUnit;
use super::Shared;

/// The most an attempt document holds besides its data: its links, each
/// carrying names of up to `MAX_NAME_BYTES`, escaped.
const ATTEMPT_DOCUMENT_BYTES: usize = 128 << 10;

/// Releases attempts made on the server but not handed to the caller, so
/// that their units are available again at once. Best effort: an attempt
/// whose release fails is left to expire at the end of its lease.
///
/// The release is `expire`, which does early what the server does itself
/// when the lease runs out: the attempt becomes Expired and its unit
/// available, with the unit's meta untouched. `retry` would record
/// the attempt as completed unsuccessfully and overwrite the unit's
/// `not_before` (even with no delay), and `fail` would fail the unit. No
/// action removes an attempt, so a released one still counts toward the
/// spec's `max_retries`, exactly as if its lease had run out. Expiring an
/// expired attempt is a no-op, so a release that races the server's own
/// expiry is harmless.
async fn release(shared: &Shared, expire: Vec<Url>) {
    stream::iter(expire)
        .for_each_concurrent(CONCURRENT_FETCHES, |url| async move {
            let body = AttemptActionBody::default();
            // Best effort: the caller answers its own outcome.
            let _ = shared
                .transport()
                .call(Method::POST, &url, Some(&body))
                .await;
        })
        .await;
}

/// Attempts the server has made and the caller has not been answered yet.
/// Dropped before [`answered`](Self::answered) — the call was cancelled, by
/// a timeout around it say — it releases them from a task of its own, so a
/// cancelled call leaves none pending either.
struct Unanswered {
    shared: Arc<Shared>,
    expire: Vec<Url>,
}

impl Unanswered {
    /// The attempts whose expire links are `expire_links` (those that
    /// resolve).
    fn new<'a>(shared: &Arc<Shared>, expire_links: impl IntoIterator<Item = &'a str>) -> Self {
        Unanswered {
            shared: Arc::clone(shared),
            expire: expire_links
                .into_iter()
                .filter_map(|link| shared.resolve(link).ok())
                .collect(),
        }
    }

    /// The attempts of an answer that did not decode whole (an attempt's
    /// data past this client's limits, say), as far as their expire links
    /// can still be read from it: every other field is skipped unread.
    fn undecoded(shared: &Arc<Shared>, answer: &[u8]) -> Self {
        let links = expire_links(answer);
        Unanswered::new(shared, links.iter().map(String::as_str))
    }

    fn answered(mut self) {
        self.expire.clear();
    }

    /// Releases the attempts now, before the call answers. Dropped
    /// half-way, it leaves the rest to its own drop (an attempt expired
    /// twice is expired once).
    async fn release(mut self) {
        release(&self.shared, self.expire.clone()).await;
        self.expire.clear();
    }
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if self.expire.is_empty() {
            return;
        }
        let (shared, expire) = (Arc::clone(&self.shared), std::mem::take(&mut self.expire));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { release(&shared, expire).await });
        }
    }
}

/// Reads the expire links of a hand-out (an object with a list of
/// attempts) or of one attempt into a list as they come, whatever else the
/// answer holds: an attempt that is not an object, or whose link is not a
/// string, is passed over, and the others' links are still read. An
/// answer that breaks off, or goes on past its document, keeps the links
/// read before the break.
fn expire_links(answer: &[u8]) -> Vec<String> {
    let mut links = Vec::new();
    let mut reader = serde_json::Deserializer::from_slice(answer);
    let answer = ExpireLinks {
        into: &mut links,
        at: Place::Answer,
    };
    // What follows the break is unreadable: the links before it are kept.
    let _ = DeserializeSeed::deserialize(answer, &mut reader);
    links
}

/// Where in an answer [`ExpireLinks`] reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The answer: the links of its `attempts`, and its own `expire_url`.
    Answer,
    /// A list of attempts: each item's link.
    Attempts,
    /// An attempt, or its link: a string is the link, an object's
    /// `expire_url` is read as an attempt.
    Attempt,
}

/// Reads the expire links of the value at `at` into `into`; a value of
/// any other shape than the place expects holds none.
struct ExpireLinks<'a> {
    into: &'a mut Vec<String>,
    at: Place,
}

impl ExpireLinks<'_> {
    fn at(&mut self, at: Place) -> ExpireLinks<'_> {
        ExpireLinks {
            into: self.into,
            at,
        }
    }
}

impl<'de> DeserializeSeed<'de> for ExpireLinks<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ExpireLinks<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a hand-out, an attempt or an expire link")
    }

    fn visit_str<E: serde::de::Error>(self, link: &str) -> std::result::Result<(), E> {
        if self.at == Place::Attempt {
            self.into.push(link.to_owned());
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut entries: A) -> std::result::Result<(), A::Error> {
        while let Some(key) = entries.next_key::<std::borrow::Cow<'de, str>>()? {
            match (self.at, &*key) {
                (Place::Answer, "attempts") => entries.next_value_seed(self.at(Place::Attempts))?,
                (Place::Answer | Place::Attempt, "expire_url") => {
                    entries.next_value_seed(self.at(Place::Attempt))?
                }
                _ => entries.next_value::<IgnoredAny>().map(drop)?,
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut items: A) -> std::result::Result<(), A::Error> {
        if self.at == Place::Attempts {
            while items.next_element_seed(self.at(Place::Attempt))?.is_some() {}
        } else {
            while items.next_element::<IgnoredAny>()?.is_some() {}
        }
        Ok(())
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<(), E> {
        Ok(())
    }
}

/// A worker handle; clones share the links.
#[derive(Clone)]
pub(crate) struct RestWorker(Arc<WorkerInner>);

pub(crate) struct WorkerInner {
    shared: Arc<Shared>,
    name: String,
    /// The namespace's name, read from `url`.
    namespace: String,
    url: Url,
    links: OnceCell<WorkerLinks>,
}

/// The worker's endpoints, resolved.
struct WorkerLinks {
    request_attempts: Url,
    make_attempt: Url,
    active_attempts: Url,
    all_attempts: Url,
    child_attempts: Url,
}

impl WorkerLinks {
    fn of(shared: &Shared, doc: &WorkerDocument) -> Result<Self> {
        Ok(WorkerLinks {
            request_attempts: shared.resolve(&doc.request_attempts_url)?,
            make_attempt: shared.resolve(&doc.make_attempt_url)?,
            active_attempts: shared.resolve(&doc.active_attempts_url)?,
            all_attempts: shared.resolve(&doc.all_attempts_url)?,
            child_attempts: shared.resolve(&doc.child_attempts_url)?,
        })
    }
}

debug_name_and_url!(RestWorker);

impl RestWorker {
    pub(crate) fn new(
        shared: &Arc<Shared>,
        name: String,
        url: Url,
        doc: Option<&WorkerDocument>,
    ) -> Self {
        let links = OnceCell::new_with(doc.and_then(|d| WorkerLinks::of(shared, d).ok()));
        RestWorker(Arc::new(WorkerInner {
            shared: Arc::clone(shared),
            name,
            namespace: namespace_in(&url, "worker"),
            url,
            links,
        }))
    }

    /// A handle for a fetched document (`requested` is the URL it came from).
    pub(crate) fn from_document(
        shared: &Arc<Shared>,
        requested: Url,
        doc: WorkerDocument,
    ) -> Result<Self> {
        let url = shared.document_url(&doc.url, requested)?;
        Ok(Self::new(shared, doc.name.clone(), url, Some(&doc)))
    }

    pub(crate) fn url(&self) -> &Url {
        &self.0.url
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.0.shared
    }

    /// The worker document, read fresh (which creates the worker if its
    /// name is free).
    async fn document(&self) -> Result<WorkerDocument> {
        let doc: WorkerDocument = self
            .shared()
            .get(&self.0.url, Owner::Lookup(ObjectKind::Worker))
            .await?;
        Shared::check_named(&self.0.url, &self.0.name, &doc.name)?;
        if !self.0.links.initialized() {
            let _ = self.0.links.set(WorkerLinks::of(self.shared(), &doc)?);
        }
        Ok(doc)
    }

    async fn links(&self) -> Result<&WorkerLinks> {
        if let Some(links) = self.0.links.get() {
            return Ok(links);
        }
        let doc = self.document().await?;
        self.0
            .links
            .get_or_try_init(|| async { WorkerLinks::of(self.shared(), &doc) })
            .await
    }

    async fn put(&self, body: &WorkerUpdateBody) -> Result<()> {
        self.shared()
            .call(
                Method::PUT,
                &self.0.url,
                Some(body),
                Owner::Lookup(ObjectKind::Worker),
            )
            .await
    }

    /// The attempts of one of the worker's attempt lists.
    async fn attempt_list(&self, url: &Url) -> Result<Vec<AttemptRef>> {
        let list: AttemptList = self
            .shared()
            .get(url, Owner::Lookup(ObjectKind::Worker))
            .await?;
        let mut resolver = Resolver::new(self.shared());
        resolver.know_worker(self);
        resolver.attempts(&list.attempts).await
    }

    /// `request_attempts`, run to its end.
    async fn hand_out(&self, request: &AttemptRequest) -> Result<Vec<AttemptRef>> {
        let Some(request) =
            filters::sendable(self.shared(), self.namespace_name(), request).await?
        else {
            return Ok(Vec::new());
        };
        let request = &request;
        let links = self.links().await?;
        // The server is asked for no more than are kept: an attempt handed
        // out and dropped would still count as a try of its unit.
        let asked = limits::requested_attempts(request.number_of_work_units);
        let body = AttemptRequestBody::from(AttemptRequest {
            number_of_work_units: asked,
            ..request.clone()
        });
        let wanted = usize::try_from(asked).unwrap_or(1);
        // The attempts are made before the answer is sent, so it is read
        // whole however long the data of the units asked for makes it.
        let longest = wanted.saturating_mul(MAX_DATA_BYTES + ATTEMPT_DOCUMENT_BYTES);
        let url = &links.request_attempts;
        let owner = Owner::Lookup(ObjectKind::Worker);
        let answer = self
            .shared()
            .transport()
            .fetch_allowing(Method::POST, url, Some(&body), longest)
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(failure) => return Err(self.released(failure).await.error_for(owner)),
        };
        let mut result: AttemptRequestResult = match Transport::decode(url, &answer) {
            Ok(result) => result,
            Err(failure) => {
                Unanswered::undecoded(self.shared(), &answer)
                    .release()
                    .await;
                return Err(failure.error_for(owner));
            }
        };
        // An attempt listed twice is one attempt, kept once: released as
        // an extra, it would be expired under the caller.
        let mut listed = HashSet::new();
        result.attempts.retain(|a| {
            let link = &a.actions.expire_url;
            let url = self
                .shared()
                .resolve(link)
                .map_or_else(|_| link.clone(), String::from);
            listed.insert(url)
        });
        // No more than were asked for, whatever the server sent: each may
        // cost a read to resolve, and the caller expects no more.
        let extra = result.attempts.split_off(wanted.min(result.attempts.len()));
        let expire_links = |attempts: &[AttemptDocument]| {
            let links: Vec<&str> = attempts
                .iter()
                .map(|a| a.actions.expire_url.as_str())
                .collect();
            Unanswered::new(self.shared(), links)
        };
        let unanswered = expire_links(&result.attempts);
        expire_links(&extra).release().await;
        if result.attempts.is_empty() {
            unanswered.answered();
            return Ok(Vec::new());
        }
        let mut resolver = Resolver::new(self.shared());
        resolver.know_worker(self);
        let handles = match &result.work_spec_url {
            Some(spec_url) => resolver.common_spec(spec_url),
            None => Ok(()),
        };
        let handles = match handles {
            Ok(()) => resolver.each_attempt(&result.attempts).await,
            Err(e) => Err(e),
        };
        let handles = match handles {
            Ok(handles) => handles,
            Err(e) => {
                unanswered.release().await;
                return Err(e);
            }
        };
        // An attempt whose unit or worker the server no longer finds is
        // not handed back, so it is given back: fewer than made is a
        // valid answer, one held by nobody is not.
        let lost: Vec<&AttemptDocument> = result
            .attempts
            .iter()
            .zip(&handles)
            .filter_map(|(doc, handle)| handle.is_none().then_some(doc))
            .collect();
        if !lost.is_empty() {
            let links = lost.iter().map(|a| a.actions.expire_url.as_str());
            Unanswered::new(self.shared(), links).release().await;
        }
        unanswered.answered();
        Ok(handles.into_iter().flatten().collect())
    }

    /// `make_attempt` on one of this backend's units, run to its end.
    async fn make_attempt_on(&self, unit: &RestWorkUnit, lifetime: Duration) -> Result<AttemptRef> {
        let links = self.links().await?;
        let body = if unit.spec().namespace_name() == self.namespace_name() {
            MakeAttemptBody {
                work_spec: unit.spec().name().to_owned(),
                work_unit: unit.name().to_owned(),
                lifetime,
                work_unit_url: None,
            }
        } else {
            // The API names a unit in the worker's own namespace only:
            // another namespace's goes by URL.
            MakeAttemptBody {
                work_spec: String::new(),
                work_unit: String::new(),
                lifetime,
                work_unit_url: Some(linked(unit.url())),
            }
        };
        // Making an attempt is no expiry check in process: the answer is
        // asked for without the fields whose computation is one.
        let url = Shared::unchecked(&links.make_attempt);
        // Made before the answer is sent, the attempt is read whole.
        let longest = MAX_DATA_BYTES + ATTEMPT_DOCUMENT_BYTES;
        let failed = |f: Failure| f.error_for(unit.owner()).on(ObjectKind::Worker);
        let answer = self
            .shared()
            .transport()
            .fetch_allowing(Method::POST, &url, Some(&body), longest)
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(failure) => return Err(failed(self.released(failure).await)),
        };
        // As for a hand-out, an attempt whose answer cannot be read, or
        // whose handle cannot be built, is released rather than left
        // holding its unit for a whole lease.
        let doc: UncheckedAttemptDocument = match Transport::decode(&url, &answer) {
            Ok(doc) => doc,
            Err(failure) => {
                Unanswered::undecoded(self.shared(), &answer)
                    .release()
                    .await;
                return Err(failed(failure));
            }
        };
        let unanswered = Unanswered::new(self.shared(), [doc.actions.expire_url.as_str()]);
        let mut resolver = Resolver::new(self.shared());
        resolver.know_worker(self);
        resolver.know_unit(unit);
        let made = resolver
            .attempts(std::slice::from_ref(&doc))
            .await
            .and_then(|mut made| {
                made.pop().ok_or(Error::Gone {
                    kind: ObjectKind::Worker,
                })
            })
            .and_then(|attempt| {
                // The attempt answered must be on the unit asked for.
                let on = attempt.work_unit();
                let (spec, asked) = (on.work_spec(), unit.spec());
                Shared::check_named(&url, asked.namespace_name(), spec.namespace_name())?;
                Shared::check_named(&url, asked.name(), spec.name())?;
                Shared::check_named(&url, unit.name(), on.name())?;
                Ok(attempt)
            });
        match made {
            Ok(_) => unanswered.answered(),
            Err(_) => unanswered.release().await,
        }
        made
    }

    /// `failure` of a request that made attempts, once the attempts a
    /// success answer refused unread still names are released.
    async fn released(&self, failure: Failure) -> Failure {
        if let Some(answer) = &failure.refused {
            Unanswered::undecoded(self.shared(), answer).release().await;
        }
        failure
    }

    /// Recognises a worker handle of this backend's server.
    fn own<'a>(&self, other: &'a WorkerRef) -> Result<&'a RestWorker> {
        match other.as_any().downcast_ref::<RestWorker>() {
            Some(w) if w.shared().same_store(self.shared()) => Ok(w),
            _ => Err(Error::WrongBackend),
        }
    }
}

#[async_trait]
impl Worker for RestWorker {
    fn name(&self) -> &str {
        &self.0.name
    }

    fn namespace_name(&self) -> &str {
        &self.0.namespace
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn parent(&self) -> Result<Option<WorkerRef>> {
        let doc = self.document().await?;
        match (doc.parent, doc.parent_url) {
            (Some(name), Some(url)) => {
                let url = self.shared().resolve(&url)?;
                Ok(Some(Arc::new(RestWorker::new(
                    self.shared(),
                    name,
                    url,
                    None,
                ))))
            }
            _ => Ok(None),
        }
    }

    async fn set_parent(&self, parent: Option<&WorkerRef>) -> Result<()> {
        let body = match parent {
            None => WorkerUpdateBody {
                parent: Some(String::new()),
                ..WorkerUpdateBody::default()
            },
            Some(p) => {
                let p = self.own(p)?;
                // `""` as a name clears the parent, so a worker named so
                // goes by URL too.
                if p.0.namespace == self.0.namespace && !p.0.name.is_empty() {
                    WorkerUpdateBody {
                        parent: Some(p.0.name.clone()),
                        ..WorkerUpdateBody::default()
                    }
                } else {
                    // The API names a parent in the worker's own namespace
                    // only: another namespace's goes by URL.
                    WorkerUpdateBody {
                        parent_url: Some(linked(&p.0.url)),
                        ..WorkerUpdateBody::default()
                    }
                }
            }
        };
        self.put(&body).await
    }

    async fn children(&self) -> Result<Vec<WorkerRef>> {
        let doc = self.document().await?;
        let mut resolver = Resolver::new(self.shared());
        let mut out = Vec::with_capacity(doc.child_urls.len());
        for child in resolver.workers(&doc.child_urls).await? {
            out.push(Arc::new(child) as WorkerRef);
        }
        Ok(out)
    }

    async fn active(&self) -> Result<bool> {
        Ok(self.document().await?.active)
    }

    async fn deactivate(&self) -> Result<()> {
        self.put(&WorkerUpdateBody::default()).await
    }

    async fn mode(&self) -> Result<String> {
        Ok(self.document().await?.mode)
    }

    async fn data(&self) -> Result<DataMap> {
        Ok(self.document().await?.data.unwrap_or_default())
    }

    async fn expiration(&self) -> Result<Time> {
        Ok(self.document().await?.expiration)
    }

    async fn last_update(&self) -> Result<Time> {
        Ok(self.document().await?.last_update)
    }

    async fn update(&self, data: DataMap, now: Time, expiration: Time, mode: &str) -> Result<()> {
        let (data, now, expiration) = checked_worker_update(data, now, expiration, mode)?;
        self.put(&WorkerUpdateBody {
            active: true,
            data: Some(data),
            mode: mode.to_owned(),
            expiration: Some(expiration),
            last_update: Some(now),
            ..WorkerUpdateBody::default()
        })
        .await
    }

    /// Once the server has made attempts, the call hands back handles for
    /// all of them or leaves none pending: attempts past the number asked
    /// for, and every attempt when the answer cannot be read (an attempt's
    /// data past this client's limits, as a server without them may send)
    /// or their handles cannot be built (a read of their unit or spec
    /// fails, a link is unusable), are released on the
    /// server before the call answers. A failure then answers its error
    /// rather than the attempts that did resolve: the released units are
    /// available again, so the worker's next request can take them, while
    /// a partial answer would look like less work than there is. The
    /// exchange runs in a task of its own: a call dropped before it answers
    /// (cancelled, by a timeout around it say) still reads the answer, and
    /// releases the attempts.
    async fn request_attempts(&self, request: &AttemptRequest) -> Result<Vec<AttemptRef>> {
        let (me, request) = (self.clone(), request.clone());
        handed_out(async move { me.hand_out(&request).await }).await
    }

    /// As `request_attempts`: the attempt is handed back or released.
    async fn make_attempt(&self, unit: &WorkUnitRef, lifetime: Duration) -> Result<AttemptRef> {
        let unit = match unit.as_any().downcast_ref::<RestWorkUnit>() {
            Some(u) if u.spec().shared().same_store(self.shared()) => u.clone(),
            _ => return Err(Error::WrongBackend),
        };
        let me = self.clone();
        handed_out(async move { me.make_attempt_on(&unit, lifetime).await }).await
    }

    async fn active_attempts(&self) -> Result<Vec<AttemptRef>> {
        let url = self.links().await?.active_attempts.clone();
        self.attempt_list(&url).await
    }

    async fn all_attempts(&self) -> Result<Vec<AttemptRef>> {
        let url = self.links().await?.all_attempts.clone();
        self.attempt_list(&url).await
    }

    async fn child_attempts(&self) -> Result<Vec<AttemptRef>> {
        let url = self.links().await?.child_attempts.clone();
        self.attempt_list(&url).await
    }
}

#[cfg(test)]
mod tests {
    fn links(answer: &str) -> Vec<String> {
        super::expire_links(answer.as_bytes())
    }

    #[test]
    fn expire_links_are_read_past_attempts_that_are_not_documents() {
        let answer = r#"{"attempts": [
            {"expire_url": "/a/expire", "data": {"expire_url": 1}},
            7, null, ["x"], {"expire_url": 5}, {"expire_url": {"no": 1}},
            {"url": "/b", "expire_url": "/b/expire"}],
            "work_spec_url": "/s"}"#;
        assert_eq!(links(answer), ["/a/expire", "/b/expire"]);
        let one = r#"{"url": "/a", "expire_url": "/a/expire", "data": {}}"#;
        assert_eq!(links(one), ["/a/expire"]);
        assert!(links(r#"{"attempts": 3}"#).is_empty());
        assert_eq!(links(r#"{"attempts": null, "expire_url": "/a"}"#), ["/a"]);
    }

    #[test]
    fn expire_links_read_before_a_break_are_kept() {
        let two = r#"{"attempts": [{"expire_url": "/a/expire"}, {"expire_url": "/b/expire"}"#;
        assert_eq!(links(two), ["/a/expire", "/b/expire"]);
        let cut_in_an_attempt = r#"{"attempts": [{"expire_url": "/a/expire", "data": {"k": tr"#;
        assert_eq!(links(cut_in_an_attempt), ["/a/expire"]);
        let trailing = r#"{"attempts": [{"expire_url": "/a/expire"}]}<!-- proxy -->"#;
        assert_eq!(links(trailing), ["/a/expire"]);
        let broken_later = r#"{"attempts": [{"expire_url": "/a/expire"}, {"data": [1,}]}"#;
        assert_eq!(links(broken_later), ["/a/expire"]);
    }
}
