//! Representations built from handles.
//!
//! Attempts do not know their namespace, so every builder takes the
//! namespace name from the request path.

use coordinate::rest::wire::{
    AttemptActionLinks, AttemptDocument, AttemptList, AttemptNames, AttemptSummary, NamedLink,
    NamespaceDocument, RootDocument, SummaryDocument, UncheckedAttemptDocument,
    UncheckedWorkUnitDocument, WorkSpecDocument, WorkUnitDocument, WorkUnitHead, WorkerDocument,
};
use coordinate::{
    Attempt, AttemptRef, DataMap, Error, Result, Summary, WorkSpec, WorkUnit, WorkUnitMeta,
    WorkUnitStatus, Worker,
};
use futures::future::{join_all, try_join_all};

use crate::links;

/// The root document.
pub fn root() -> RootDocument {
    RootDocument {
        url: String::new(),
        summary_url: "/summary".into(),
        namespaces_url: "/namespace".into(),
        namespace_url: "/namespace/{namespace}".into(),
    }
}

/// A short form: name and URL.
pub fn named(name: &str, url: String) -> NamedLink {
    NamedLink {
        name: name.to_owned(),
        url,
    }
}

/// The short forms of named objects, each linked by `link`.
pub fn named_all<'a>(
    names: impl IntoIterator<Item = &'a String>,
    link: impl Fn(&str) -> String,
) -> Vec<NamedLink> {
    names.into_iter().map(|n| named(n, link(n))).collect()
}

/// A namespace.
pub fn namespace(ns: &str) -> NamespaceDocument {
    let url = links::namespace(ns);
    NamespaceDocument {
        name: ns.to_owned(),
        summary_url: format!("{url}/summary"),
        work_specs_url: format!("{url}/work_spec"),
        work_spec_url: format!("{url}/work_spec/{{spec}}"),
        workers_url: format!("{url}/worker"),
        worker_url: format!("{url}/worker/{{worker}}"),
        url,
    }
}

/// A work spec.
pub async fn work_spec(ns: &str, spec: &dyn WorkSpec) -> Result<WorkSpecDocument> {
    let data = spec.data().await?;
    let url = links::work_spec(ns, spec.name());
    Ok(WorkSpecDocument {
        name: spec.name().to_owned(),
        data: Some(data),
        summary_url: format!("{url}/summary"),
        work_units_url: format!("{url}/work_unit"),
        work_unit_url: format!("{url}/work_unit/{{unit}}"),
        work_unit_query_url: links::query_template(&url, "work_unit"),
        work_unit_counts_url: format!("{url}/counts"),
        work_unit_change_url: links::query_template(&url, "change"),
        work_unit_adjust_url: links::query_template(&url, "adjust"),
        work_unit_select_url: format!("{url}/select"),
        meta: format!("{url}/meta{{?counts}}"),
        url,
    })
}

/// The fields both work unit documents start with.
fn head(unit: &dyn WorkUnit, url: String, data: DataMap, meta: WorkUnitMeta) -> WorkUnitHead {
    WorkUnitHead {
        name: unit.name().to_owned(),
        url,
        data: Some(data),
        meta: meta.into(),
    }
}

/// A work unit.
pub async fn work_unit(ns: &str, unit: &dyn WorkUnit) -> Result<WorkUnitDocument> {
    let spec_name = unit.work_spec().name().to_owned();
    let snapshot = unit.snapshot().await?;
    let status = snapshot.status;
    let url = links::work_unit(ns, &spec_name, unit.name());
    // Only a pending, finished or failed unit has an active attempt; asking
    // for it otherwise would cost a lazy-expiry pass and a lookup for nothing.
    let active = match status {
        WorkUnitStatus::Pending | WorkUnitStatus::Finished | WorkUnitStatus::Failed => {
            unit.active_attempt().await?
        }
        _ => None,
    };
    let active_attempt_url = match active {
        Some(attempt) => links::attempt(
            &url,
            attempt.worker().name(),
            attempt.start_time().await?,
            attempt.id(),
        ),
        None => String::new(),
    };
    Ok(WorkUnitDocument {
        work_spec_url: links::work_spec(ns, &spec_name),
        attempts_url: format!("{url}/attempts"),
        head: head(unit, url, snapshot.data, snapshot.meta),
        status,
        active_attempt_url,
    })
}

/// A work unit without its status and active attempt: no expiry check.
pub async fn unchecked_work_unit(
    ns: &str,
    unit: &dyn WorkUnit,
) -> Result<UncheckedWorkUnitDocument> {
    let spec_name = unit.work_spec().name().to_owned();
    let (data, meta) = unit.data_and_meta().await?;
    let url = links::work_unit(ns, &spec_name, unit.name());
    Ok(UncheckedWorkUnitDocument {
        work_spec_url: links::work_spec(ns, &spec_name),
        attempts_url: format!("{url}/attempts"),
        head: head(unit, url, data, meta),
    })
}

/// An attempt's short form, for the start time the caller has read: its
/// unit's link and its own in the unit's namespace, its worker's in the
/// worker's (a worker's attempts may be on units of other namespaces).
fn summary_at(attempt: &dyn Attempt, start_time: coordinate::Time) -> AttemptSummary {
    let unit = attempt.work_unit();
    let spec = unit.work_spec();
    let work_unit_url = links::work_unit(spec.namespace_name(), spec.name(), unit.name());
    let worker = attempt.worker();
    AttemptSummary {
        url: links::attempt(&work_unit_url, worker.name(), start_time, attempt.id()),
        work_unit_url,
        worker_url: links::worker(worker.namespace_name(), worker.name()),
        start_time,
        names: AttemptNames {
            work_spec_url: Some(links::work_spec(spec.namespace_name(), spec.name())),
            work_spec_name: Some(spec.name().to_owned()),
            work_unit_name: Some(unit.name().to_owned()),
            worker_name: Some(worker.name().to_owned()),
        },
    }
}

/// An attempt's short form.
pub async fn attempt_summary(attempt: &dyn Attempt) -> Result<AttemptSummary> {
    Ok(summary_at(attempt, attempt.start_time().await?))
}

/// Reads of a list's attempts run at most this many at once: each may be a
/// database round trip, and a long list must not take every pooled
/// connection from the requests beside it.
const CONCURRENT_READS: usize = 8;

/// A list of attempts' short forms, in the given order.
pub async fn attempt_list(attempts: &[AttemptRef]) -> Result<AttemptList> {
    let mut summaries = Vec::with_capacity(attempts.len());
    for chunk in attempts.chunks(CONCURRENT_READS) {
        summaries.extend(try_join_all(chunk.iter().map(|a| attempt_summary(&**a))).await?);
    }
    Ok(AttemptList {
        attempts: summaries,
    })
}

/// The action endpoints below an attempt's URL.
fn action_links(url: &str) -> AttemptActionLinks {
    AttemptActionLinks {
        renew_url: format!("{url}/renew"),
        expire_url: format!("{url}/expire"),
        finish_url: format!("{url}/finish"),
        fail_url: format!("{url}/fail"),
        retry_url: format!("{url}/retry"),
    }
}

/// An attempt.
pub async fn attempt(attempt: &dyn Attempt) -> Result<AttemptDocument> {
    let snapshot = attempt.snapshot().await?;
    let summary = summary_at(attempt, snapshot.start_time);
    Ok(AttemptDocument {
        actions: action_links(&summary.url),
        summary,
        status: snapshot.status,
        data: Some(snapshot.data),
        end_time: snapshot.end_time,
        expiration_time: snapshot.expiration_time,
    })
}

/// The attempts a request was just granted, in their order, but for any
/// whose unit was deleted since (its read answers `Gone`, or as a backend
/// may for an attempt of a deleted unit, `NoSuchWorkUnit` or
/// `NoSuchWorkSpec`): a grant already made is answered, so that its other
/// attempts are worked on rather than left pending until their leases run
/// out.
pub async fn granted_attempts(attempts: &[AttemptRef]) -> Result<Vec<AttemptDocument>> {
    let mut read = Vec::with_capacity(attempts.len());
    for chunk in attempts.chunks(CONCURRENT_READS) {
        read.extend(join_all(chunk.iter().map(|a| attempt(&**a))).await);
    }
    let mut documents = Vec::with_capacity(read.len());
    for document in read {
        match document {
            Ok(document) => documents.push(document),
            Err(
                Error::Gone { .. } | Error::NoSuchWorkUnit { .. } | Error::NoSuchWorkSpec { .. },
            ) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(documents)
}

/// An attempt without its status and times other than the start: no
/// expiry check.
pub async fn unchecked_attempt(attempt: &dyn Attempt) -> Result<UncheckedAttemptDocument> {
    let (start_time, data) = futures::try_join!(attempt.start_time(), attempt.data())?;
    let summary = summary_at(attempt, start_time);
    Ok(UncheckedAttemptDocument {
        actions: action_links(&summary.url),
        summary,
        data: Some(data),
    })
}

/// A worker.
pub async fn worker(ns: &str, worker: &dyn Worker) -> Result<WorkerDocument> {
    let (parent, children, active, mode, data, expiration, last_update) = futures::try_join!(
        worker.parent(),
        worker.children(),
        worker.active(),
        worker.mode(),
        worker.data(),
        worker.expiration(),
        worker.last_update()
    )?;
    let url = links::worker(ns, worker.name());
    // A parent or child may belong to another namespace: each link names
    // the worker's own.
    let link = |w: &dyn Worker| links::worker(w.namespace_name(), w.name());
    Ok(WorkerDocument {
        name: worker.name().to_owned(),
        parent_url: parent.as_deref().map(link),
        parent: parent.map(|p| p.name().to_owned()),
        child_urls: children.iter().map(|c| link(&**c)).collect(),
        active,
        mode,
        data: (!data.is_empty()).then_some(data),
        expiration,
        last_update,
        request_attempts_url: format!("{url}/request_attempts"),
        make_attempt_url: format!("{url}/make_attempt"),
        active_attempts_url: format!("{url}/active_attempts"),
        all_attempts_url: format!("{url}/all_attempts"),
        child_attempts_url: format!("{url}/child_attempts"),
        url,
    })
}

/// A summary.
pub fn summary(summary: Summary) -> SummaryDocument {
    SummaryDocument(summary.into_iter().map(Into::into).collect())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use coordinate::memory::MemoryBackend;
    use coordinate::{data, AttemptRequest, Backend, NewWorkUnit, WorkUnitQuery};

    use super::*;

    #[tokio::test]
    async fn a_grant_is_answered_without_the_attempts_whose_units_were_deleted_since() {
        let ns = MemoryBackend::new().namespace("n").await.unwrap();
        let spec = ns.set_work_spec(data!({"name": "s"})).await.unwrap();
        let units = ["a", "b", "c"].map(|n| NewWorkUnit::new(n, data!({})));
        spec.add_work_units(units.into()).await.unwrap();
        let worker = ns.worker("w").await.unwrap();
        let granted = worker
            .request_attempts(&AttemptRequest::units(3))
            .await
            .unwrap();
        assert_eq!(granted.len(), 3);

        spec.delete_work_units(&WorkUnitQuery::names(["b"]))
            .await
            .unwrap();

        let answered = granted_attempts(&granted).await.unwrap();
        let units: Vec<_> = answered
            .iter()
            .map(|a| {
                a.summary
                    .names
                    .work_unit_name
                    .as_deref()
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(units, ["a", "c"]);
    }

    /// An attempt whose reads count how many of them run at once.
    #[derive(Debug)]
    struct Counted {
        inner: AttemptRef,
        running: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
    }

    impl Counted {
        async fn read<T>(&self, read: impl std::future::Future<Output = T>) -> T {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            tokio::task::yield_now().await;
            let out = read.await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            out
        }
    }

    #[async_trait::async_trait]
    impl Attempt for Counted {
        fn work_unit(&self) -> coordinate::WorkUnitRef {
            self.inner.work_unit()
        }
        fn worker(&self) -> coordinate::WorkerRef {
            self.inner.worker()
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
        async fn status(&self) -> Result<coordinate::AttemptStatus> {
            self.read(self.inner.status()).await
        }
        async fn data(&self) -> Result<DataMap> {
            self.read(self.inner.data()).await
        }
        async fn start_time(&self) -> Result<coordinate::Time> {
            self.read(self.inner.start_time()).await
        }
        async fn end_time(&self) -> Result<Option<coordinate::Time>> {
            self.read(self.inner.end_time()).await
        }
        async fn expiration_time(&self) -> Result<coordinate::Time> {
            self.read(self.inner.expiration_time()).await
        }
        async fn snapshot(&self) -> Result<coordinate::AttemptSnapshot> {
            self.read(self.inner.snapshot()).await
        }
        async fn renew(&self, extend: coordinate::Duration, data: Option<DataMap>) -> Result<()> {
            self.inner.renew(extend, data).await
        }
        async fn expire(&self, data: Option<DataMap>) -> Result<()> {
            self.inner.expire(data).await
        }
        async fn finish(&self, data: Option<DataMap>) -> Result<()> {
            self.inner.finish(data).await
        }
        async fn fail(&self, data: Option<DataMap>) -> Result<()> {
            self.inner.fail(data).await
        }
        async fn retry(&self, data: Option<DataMap>, delay: coordinate::Duration) -> Result<()> {
            self.inner.retry(data, delay).await
        }
    }

    /// A long list of attempts is read a few at a time, in its order, so
    /// that it cannot take every pooled connection of a database backend.
    #[tokio::test]
    async fn a_long_attempt_list_is_read_a_few_attempts_at_a_time() {
        let ns = MemoryBackend::new().namespace("n").await.unwrap();
        let spec = ns.set_work_spec(data!({"name": "s"})).await.unwrap();
        let units = (0..50).map(|i| NewWorkUnit::new(format!("u{i:02}"), data!({})));
        spec.add_work_units(units.collect()).await.unwrap();
        let granted = ns
            .worker("w")
            .await
            .unwrap()
            .request_attempts(&AttemptRequest::units(50))
            .await
            .unwrap();
        // One count of the reads running, over the whole list.
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let counted: Vec<AttemptRef> = granted
            .iter()
            .map(|a| {
                Arc::new(Counted {
                    inner: a.clone(),
                    running: running.clone(),
                    most: most.clone(),
                }) as AttemptRef
            })
            .collect();

        let list = attempt_list(&counted).await.unwrap();
        let read_most = most.swap(0, Ordering::SeqCst);
        let documents = granted_attempts(&counted).await.unwrap();
        let granted_most = most.load(Ordering::SeqCst);

        let names = |names: Vec<Option<String>>| names.into_iter().flatten().collect::<Vec<_>>();
        let expected: Vec<String> = (0..50).map(|i| format!("u{i:02}")).collect();
        let listed = list.attempts.into_iter().map(|a| a.names.work_unit_name);
        assert_eq!(names(listed.collect()), expected);
        let answered = documents
            .into_iter()
            .map(|d| d.summary.names.work_unit_name);
        assert_eq!(names(answered.collect()), expected);
        for most in [read_most, granted_most] {
            assert!((2..=CONCURRENT_READS).contains(&most), "{most} at once");
        }
    }
}
