//! The in-process change feed of `MemoryBackend`, and a `Cache` following it.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use coordinate::cache::Cache;
use coordinate::feed::{ChangeEvent, DeletedUnits, PurgeScope};
use coordinate::memory::MemoryBackend;
use coordinate::ObjectKind;
use coordinate::{
    data, Backend, BackendExt, Error, SystemClock, WorkSpecRef, WorkUnitMeta, WorkUnitQuery,
};

mod common {
    pub mod gone;
}

use common::gone::gone;

/// Waits until the (async) condition holds, at most a second.
macro_rules! eventually {
    ($check:expr) => {{
        let mut ok = false;
        for _ in 0..200 {
            if $check {
                ok = true;
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(5)).await;
        }
        ok
    }};
}

async fn setup(backend: &MemoryBackend) -> coordinate::Result<()> {
    let spec = backend
        .namespace("ns")
        .await?
        .set_work_spec(data!({"name": "spec"}))
        .await?;
    for u in ["a", "b", "c"] {
        spec.add_work_unit(u, data!({}), WorkUnitMeta::default())
            .await?;
    }
    Ok(())
}

#[tokio::test]
async fn memory_feed_publishes_deletes() -> coordinate::Result<()> {
    let backend = MemoryBackend::new();
    let feed = backend.change_feed().expect("memory backend has a feed");
    let mut sub = feed.subscribe().await?;
    setup(&backend).await?;
    let spec = backend.work_spec_at("ns", "spec").await?;
    spec.delete_work_units(&WorkUnitQuery::names(["a", "zz"]))
        .await?;
    assert_eq!(
        sub.recv().await,
        Ok(ChangeEvent::WorkUnitsDeleted {
            namespace: "ns".into(),
            work_spec: "spec".into(),
            units: DeletedUnits::Names(vec!["a".into()]),
        })
    );
    backend
        .namespace("ns")
        .await?
        .destroy_work_spec("spec")
        .await?;
    assert_eq!(
        sub.recv().await,
        Ok(ChangeEvent::WorkSpecDestroyed {
            namespace: "ns".into(),
            work_spec: "spec".into(),
        })
    );
    backend.namespace("ns").await?.destroy().await?;
    assert_eq!(
        sub.recv().await,
        Ok(ChangeEvent::NamespaceDestroyed {
            namespace: "ns".into()
        })
    );
    Ok(())
}

/// A destroyed namespace's worker that was the parent of a worker of
/// another namespace: that child's parent changed, and the feed says so.
#[tokio::test]
async fn a_destroy_announces_the_children_elsewhere_it_orphans() -> coordinate::Result<()> {
    let backend = MemoryBackend::new();
    let parent = backend.worker_at("a", "p").await?;
    let child = backend.worker_at("b", "c").await?;
    child.set_parent(Some(&parent)).await?;
    let feed = backend.change_feed().expect("memory backend has a feed");
    let mut sub = feed.subscribe().await?;
    backend.namespace("a").await?.destroy().await?;
    assert_eq!(
        sub.recv().await,
        Ok(ChangeEvent::NamespaceDestroyed {
            namespace: "a".into()
        })
    );
    let next = tokio::time::timeout(StdDuration::from_secs(1), sub.recv()).await;
    assert_eq!(
        next.ok(),
        Some(Ok(ChangeEvent::WorkerChanged {
            namespace: "b".into(),
            worker: "c".into(),
        }))
    );
    assert!(child.parent().await?.is_none());
    Ok(())
}

#[tokio::test]
async fn delete_on_inner_backend_reaches_the_cache() -> coordinate::Result<()> {
    let (backend, cache) = cached(MemoryBackend::new()).await?;
    assert!(cache.stats().feed.subscribed);
    // Warm the cache.
    cache.work_unit_at("ns", "spec", "a").await?;
    cache.work_unit_at("ns", "spec", "b").await?;
    let hits = cache.stats().work_units.hits;
    cache.work_unit_at("ns", "spec", "a").await?;
    assert_eq!(cache.stats().work_units.hits, hits + 1);

    // Delete behind the cache's back, on the inner backend.
    backend
        .work_spec_at("ns", "spec")
        .await?
        .delete_work_units(&WorkUnitQuery::names(["a"]))
        .await?;
    assert!(eventually!(matches!(
        cache.work_unit_at("ns", "spec", "a").await,
        Err(Error::NoSuchWorkUnit { .. })
    )));
    // "b" was not named: still served from the cache.
    let hits = cache.stats().work_units.hits;
    cache.work_unit_at("ns", "spec", "b").await?;
    assert_eq!(cache.stats().work_units.hits, hits + 1);

    backend
        .namespace("ns")
        .await?
        .destroy_work_spec("spec")
        .await?;
    assert!(eventually!(matches!(
        cache.work_unit_at("ns", "spec", "b").await,
        Err(Error::NoSuchWorkSpec { .. })
    )));
    assert!(cache.stats().feed.events_applied >= 2);
    Ok(())
}

#[tokio::test]
async fn namespace_destroy_and_recreate_seen_by_cached_handle() -> coordinate::Result<()> {
    let (backend, cache) = cached(MemoryBackend::new()).await?;
    let held = cache.work_spec_at("ns", "spec").await?;
    let unit = cache.work_unit_at("ns", "spec", "a").await?;
    backend.namespace("ns").await?.destroy().await?;
    assert!(eventually!(matches!(
        cache.work_spec_at("ns", "spec").await,
        Err(Error::NoSuchWorkSpec { .. })
    )));
    // Recreated behind the cache: the held handles follow the new objects.
    setup(&backend).await?;
    backend
        .work_unit_at("ns", "spec", "a")
        .await?
        .set_priority(7.0)
        .await?;
    assert_eq!(unit.priority().await?, 7.0);
    assert_eq!(held.work_unit("a").await?.priority().await?, 7.0);
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn lagged_subscriber_flushes_and_resubscribes() -> coordinate::Result<()> {
    let (backend, cache) = small_feed().await?;
    let ns = backend.namespace("ns").await?;
    cache.work_spec_at("ns", "spec").await?;
    for i in 0..10 {
        // Without yielding, the cache's task cannot keep up: it lags.
        let spec = ns.set_work_spec(data!({"name": format!("s{i}")})).await?;
        spec.add_work_unit("x", data!({}), WorkUnitMeta::default())
            .await?;
        ns.destroy_work_spec(&format!("s{i}")).await?;
    }
    assert_resubscribed_after_a_gap(&cache).await;
    assert!(cache.stats().feed.flushes >= 2);
    // Events flow again after the resubscription.
    cache.work_unit_at("ns", "spec", "a").await?;
    backend
        .work_spec_at("ns", "spec")
        .await?
        .delete_work_units(&WorkUnitQuery::default())
        .await?;
    assert!(eventually!(matches!(
        cache.work_unit_at("ns", "spec", "a").await,
        Err(Error::NoSuchWorkUnit { .. })
    )));
    Ok(())
}

/// `backend`, [`setup`], and a cache over it.
async fn cached(
    backend: MemoryBackend,
) -> coordinate::Result<(MemoryBackend, Cache<MemoryBackend>)> {
    setup(&backend).await?;
    let cache = Cache::new(backend.clone());
    Ok((backend, cache))
}

/// A backend whose feed holds two events, [`setup`], and a cache over it.
async fn small_feed() -> coordinate::Result<(MemoryBackend, Cache<MemoryBackend>)> {
    cached(MemoryBackend::with_feed_capacity(Arc::new(SystemClock), 2)).await
}

/// Waits until `cache` has had a gap and subscribed again.
async fn assert_resubscribed_after_a_gap(cache: &Cache<MemoryBackend>) {
    assert!(
        eventually!({
            let feed = cache.stats().feed;
            feed.gaps >= 1 && feed.reconnects >= 1 && feed.subscribed
        }),
        "{:?}",
        cache.stats().feed
    );
}

/// Changes the backend so fast, without yielding, that a cache over a feed
/// of capacity 2 falls behind: a gap.
async fn cause_a_gap(backend: &MemoryBackend) -> coordinate::Result<()> {
    let ns = backend.namespace("ns").await?;
    for i in 0..10 {
        let name = format!("gap{i}");
        ns.set_work_spec(data!({ "name": &name })).await?;
        ns.destroy_work_spec(&name).await?;
    }
    Ok(())
}

/// Handles held across a gap revalidate once the cache is subscribed
/// again, so deletes made after it reach lookups through them too.
#[tokio::test(flavor = "current_thread")]
async fn handles_held_across_a_gap_see_later_deletes() -> coordinate::Result<()> {
    let (backend, cache) = small_feed().await?;
    let held_ns = cache.namespace("ns").await?;
    let held_spec = cache.work_spec_at("ns", "spec").await?;
    held_spec.work_unit("a").await?;
    cause_a_gap(&backend).await?;
    assert_resubscribed_after_a_gap(&cache).await;
    // Looked up through the held handles after the gap…
    held_spec.work_unit("a").await?;
    held_spec.work_unit("b").await?;
    held_ns.work_spec("spec").await?;
    // …then deleted behind the cache's back: once the event is applied,
    // no lookup answers from the stale entry.
    let applied = cache.stats().feed.events_applied;
    backend
        .work_spec_at("ns", "spec")
        .await?
        .delete_work_units(&WorkUnitQuery::names(["a"]))
        .await?;
    assert!(eventually!(cache.stats().feed.events_applied > applied));
    assert!(matches!(
        held_spec.work_unit("a").await,
        Err(Error::NoSuchWorkUnit { .. })
    ));
    assert!(matches!(
        cache.work_unit_at("ns", "spec", "a").await,
        Err(Error::NoSuchWorkUnit { .. })
    ));
    // Served from the cache again through the held handle.
    let hits = cache.stats().work_units.hits;
    held_spec.work_unit("b").await?;
    assert_eq!(cache.stats().work_units.hits, hits + 1);
    destroy_spec_behind(&backend, &cache).await?;
    assert!(matches!(
        held_ns.work_spec("spec").await,
        Err(Error::NoSuchWorkSpec { .. })
    ));
    assert_eq!(
        held_spec.work_unit("b").await.err(),
        Some(gone(ObjectKind::WorkSpec))
    );
    Ok(())
}

/// Deletes `names` of "ns"/"spec" behind `cache`, and waits until the
/// cache has applied the event.
async fn delete_behind(
    backend: &MemoryBackend,
    cache: &Cache<MemoryBackend>,
    names: &[&str],
) -> coordinate::Result<()> {
    let applied = cache.stats().feed.events_applied;
    backend
        .work_spec_at("ns", "spec")
        .await?
        .delete_work_units(&WorkUnitQuery::names(names.iter().copied()))
        .await?;
    assert!(eventually!(cache.stats().feed.events_applied > applied));
    Ok(())
}

/// Destroys "ns"/"spec" behind `cache`, and waits until the cache has
/// applied the event.
async fn destroy_spec_behind(
    backend: &MemoryBackend,
    cache: &Cache<MemoryBackend>,
) -> coordinate::Result<()> {
    let applied = cache.stats().feed.events_applied;
    backend
        .namespace("ns")
        .await?
        .destroy_work_spec("spec")
        .await?;
    assert!(eventually!(cache.stats().feed.events_applied > applied));
    Ok(())
}

/// Asserts that `held` looks up unit "a" (caching it where it caches), and
/// answers it missing once it is deleted behind `cache`.
async fn assert_held_spec_sees_a_deleted(
    held: &WorkSpecRef,
    backend: &MemoryBackend,
    cache: &Cache<MemoryBackend>,
) -> coordinate::Result<()> {
    held.work_unit("a").await?;
    delete_behind(backend, cache, &["a"]).await?;
    assert!(matches!(
        held.work_unit("a").await,
        Err(Error::NoSuchWorkUnit { .. })
    ));
    Ok(())
}

/// A held spec handle whose entry was purged goes on caching units, and
/// deletes behind the cache still reach them.
#[tokio::test]
async fn a_held_spec_whose_entry_was_purged_sees_later_deletes() -> coordinate::Result<()> {
    let (backend, cache) = cached(MemoryBackend::new()).await?;
    let held = cache.work_spec_at("ns", "spec").await?;
    let scope = PurgeScope::WorkSpec {
        namespace: "ns".into(),
        work_spec: "spec".into(),
    };
    cache.purge(&scope).await;
    assert_held_spec_sees_a_deleted(&held, &backend, &cache).await
}

/// As above, for a spec whose entry expired while it was held.
#[tokio::test]
async fn a_held_spec_whose_entry_expired_sees_later_deletes() -> coordinate::Result<()> {
    let backend = MemoryBackend::new();
    setup(&backend).await?;
    let cache = Cache::builder()
        .time_to_idle(StdDuration::from_millis(100))
        .build(backend.clone());
    let held = cache.work_spec_at("ns", "spec").await?;
    let namespace = cache.namespace("ns").await?;
    assert!(eventually!({
        // Keeps the namespace's entry while the spec's expires.
        namespace.work_spec_names().await?;
        cache.namespace("ns").await?;
        cache.run_pending_tasks().await;
        cache.stats().work_specs.entries == 0
    }));
    assert_held_spec_sees_a_deleted(&held, &backend, &cache).await
}

/// A delete behind the cache reaches the units a held spec handle cached
/// once the entries of its namespace and spec have expired, before moka's
/// maintenance has removed them: the held handle answers that the unit is
/// gone, not the cached handle of the deleted one.
#[tokio::test]
async fn a_delete_reaches_units_under_expired_entries_not_yet_removed() -> coordinate::Result<()> {
    let backend = MemoryBackend::new();
    setup(&backend).await?;
    let idle = StdDuration::from_millis(400);
    let cache = Cache::builder().time_to_idle(idle).build(backend.clone());
    assert!(eventually!(cache.stats().feed.subscribed));
    let held = cache.work_spec_at("ns", "spec").await?;
    held.work_unit("a").await?;
    tokio::time::sleep(idle * 5 / 8).await;
    // A hit through the held spec keeps the unit's entry, not its
    // parents'; after this maintenance the next is 300 ms away, past the
    // parents' expiry.
    held.work_unit("a").await?;
    cache.run_pending_tasks().await;
    tokio::time::sleep(idle / 2).await;
    delete_behind(&backend, &cache, &["a"]).await?;
    assert!(matches!(
        held.work_unit("a").await,
        Err(Error::NoSuchWorkUnit { .. })
    ));
    Ok(())
}

/// Workers held across a gap revalidate with one listing of their
/// namespace's workers between them, not one each.
#[tokio::test(flavor = "current_thread")]
async fn workers_held_across_a_gap_revalidate_with_one_listing() -> coordinate::Result<()> {
    let (backend, cache) = small_feed().await?;
    let ns = cache.namespace("ns").await?;
    let mut held = Vec::new();
    for i in 0..8 {
        held.push(ns.worker(&format!("w{i}")).await?);
    }
    cause_a_gap(&backend).await?;
    assert_resubscribed_after_a_gap(&cache).await;
    let loads = cache.stats().workers.backend_loads;
    for worker in &held {
        worker.active_attempts().await?;
    }
    assert_eq!(cache.stats().workers.backend_loads, loads + 1);
    Ok(())
}

/// A held worker handle goes on working on its object when its
/// namespace's entry leaves the cache: it caches no children, so it has
/// nothing to re-resolve.
#[tokio::test]
async fn a_held_worker_under_a_purged_namespace_is_not_resolved_again() -> coordinate::Result<()> {
    let (_backend, cache) = cached(MemoryBackend::new()).await?;
    let worker = cache.worker_at("ns", "w").await?;
    cache
        .purge(&PurgeScope::Namespace {
            namespace: "ns".into(),
        })
        .await;
    let before = cache.stats();
    worker.active_attempts().await?;
    let after = cache.stats();
    assert_eq!(
        after.namespaces.backend_loads,
        before.namespaces.backend_loads
    );
    assert_eq!(after.workers.backend_loads, before.workers.backend_loads);
    Ok(())
}

/// A held namespace handle whose entry was purged, and a held spec handle
/// under it, see later destroys and deletes too.
#[tokio::test]
async fn handles_under_a_purged_namespace_see_later_changes() -> coordinate::Result<()> {
    let (backend, cache) = cached(MemoryBackend::new()).await?;
    let held_ns = cache.namespace("ns").await?;
    let held_spec = cache.work_spec_at("ns", "spec").await?;
    let scope = PurgeScope::Namespace {
        namespace: "ns".into(),
    };
    cache.purge(&scope).await;
    assert_held_spec_sees_a_deleted(&held_spec, &backend, &cache).await?;

    cache.purge(&scope).await;
    held_ns.work_spec("spec").await?;
    destroy_spec_behind(&backend, &cache).await?;
    assert!(matches!(
        held_ns.work_spec("spec").await,
        Err(Error::NoSuchWorkSpec { .. })
    ));
    Ok(())
}

/// The echo of a destroy made through the cache, applied once the name
/// was given to a new spec, is about the old one: the new spec is looked
/// up again, but never taken for deleted.
#[tokio::test(flavor = "current_thread")]
async fn a_late_event_does_not_take_the_object_now_named_for_deleted() -> coordinate::Result<()> {
    let (_backend, cache) = cached(MemoryBackend::new()).await?;
    let ns = cache.namespace("ns").await?;
    let applied = cache.stats().feed.events_applied;
    ns.destroy_work_spec("spec").await?;
    let spec = ns.set_work_spec(data!({"name": "spec"})).await?;
    spec.add_work_unit("u", data!({}), WorkUnitMeta::default())
        .await?;
    assert!(eventually!(cache.stats().feed.events_applied > applied));
    assert_eq!(spec.work_unit("u").await?.name(), "u");
    assert_eq!(cache.stats().work_specs.gone_recoveries, 0);
    Ok(())
}

#[tokio::test]
async fn purge_and_broadcast_purge() -> coordinate::Result<()> {
    let backend = MemoryBackend::new();
    setup(&backend).await?;
    let one = Cache::new(backend.clone());
    let two = Cache::new(backend.clone());
    for cache in [&one, &two] {
        cache.work_unit_at("ns", "spec", "a").await?;
    }
    let scope = PurgeScope::WorkUnit {
        namespace: "ns".into(),
        work_spec: "spec".into(),
        work_unit: "a".into(),
    };
    one.purge(&scope).await;
    let loads = one.stats().work_units.backend_loads;
    one.work_unit_at("ns", "spec", "a").await?;
    assert_eq!(one.stats().work_units.backend_loads, loads + 1);

    one.broadcast_purge(PurgeScope::Everything, "test").await?;
    assert!(eventually!(two.stats().feed.flushes >= 1));
    let loads = two.stats().namespaces.backend_loads;
    two.work_unit_at("ns", "spec", "a").await?;
    assert_eq!(two.stats().namespaces.backend_loads, loads + 1);
    Ok(())
}

#[test]
fn cache_built_outside_a_runtime_is_not_subscribed() {
    let cache = Cache::new(MemoryBackend::new());
    assert!(!cache.stats().feed.subscribed);
}

#[tokio::test]
async fn dropping_the_cache_ends_its_subscription() -> coordinate::Result<()> {
    let backend = MemoryBackend::new();
    let cache = Cache::new(backend.clone());
    assert!(format!("{backend:?}").contains("MemoryBackend"));
    drop(cache);
    let feed = backend.change_feed().expect("feed");
    assert!(
        eventually!(format!("{feed:?}").contains("subscribers: 0")),
        "{feed:?}"
    );
    Ok(())
}

/// Memory behind a feed that refuses every subscription (as a server
/// refusing more connections does) and counts them.
#[derive(Debug, Default)]
struct RefusingFeed {
    memory: MemoryBackend,
    tries: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl coordinate::feed::ChangeFeed for RefusingFeed {
    async fn subscribe(&self) -> coordinate::Result<coordinate::feed::Subscription> {
        self.tries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Err(Error::backend("too many connections"))
    }

    async fn broadcast_purge(&self, _: PurgeScope, _: &str) -> coordinate::Result<()> {
        Err(Error::backend("too many connections"))
    }
}

#[derive(Debug, Clone, Default)]
struct BehindRefusingFeed(Arc<RefusingFeed>);

#[async_trait::async_trait]
impl Backend for BehindRefusingFeed {
    async fn namespace(&self, name: &str) -> coordinate::Result<coordinate::NamespaceRef> {
        self.0.memory.namespace(name).await
    }

    async fn namespaces(
        &self,
    ) -> coordinate::Result<std::collections::BTreeMap<String, coordinate::NamespaceRef>> {
        self.0.memory.namespaces().await
    }

    async fn summarize(&self) -> coordinate::Result<coordinate::Summary> {
        self.0.memory.summarize().await
    }

    fn change_feed(&self) -> Option<Arc<dyn coordinate::feed::ChangeFeed>> {
        Some(self.0.clone())
    }
}

/// Lookups the backend answers while the feed cannot be subscribed to may
/// hasten one retry, not turn the backoff into a retry per lookup.
#[tokio::test(start_paused = true)]
async fn answered_lookups_do_not_hurry_a_failing_subscription() -> coordinate::Result<()> {
    let backend = BehindRefusingFeed::default();
    let cache = Cache::new(backend.clone());
    assert!(!cache.stats().feed.subscribed);
    let started = tokio::time::Instant::now();
    while started.elapsed() < StdDuration::from_secs(3) {
        cache.namespace("n").await?;
        tokio::time::sleep(StdDuration::from_millis(1)).await;
    }
    // Backoff alone: pauses from 25–50 ms doubling, seven tries in 3 s at
    // most; each lookup retrying would be over a hundred.
    let tries = backend.0.tries.load(std::sync::atomic::Ordering::Relaxed);
    assert!((2..=10).contains(&tries), "{tries} tries");
    Ok(())
}

/// A parent change announced by the feed (the memory backend announces
/// every `set_parent`) drops the worker's entry but leaves a kept handle
/// on its object: re-resolving a worker's name would list every worker of
/// its namespace, once per kept handle.
#[tokio::test]
async fn a_parent_change_leaves_kept_worker_handles_on_their_objects() -> coordinate::Result<()> {
    let backend = MemoryBackend::new();
    let cache = Cache::new(coordinate::instrumented::Instrumented::new(backend));
    assert!(eventually!(cache.stats().feed.subscribed));
    let ns = cache.namespace("ns").await?;
    let parent = ns.worker("parent").await?;
    let mut children = Vec::new();
    for i in 0..20 {
        children.push(ns.worker(&format!("child{i}")).await?);
    }
    cache.get_ref().reset();
    for child in &children {
        let applied = cache.stats().feed.events_applied;
        child.set_parent(Some(&parent)).await?;
        assert!(eventually!(cache.stats().feed.events_applied > applied));
        assert!(child.active().await?);
    }
    let listings = cache
        .get_ref()
        .calls()
        .get(coordinate::instrumented::Op::Workers);
    assert_eq!(listings, 0, "kept handles re-resolved their names");
    Ok(())
}
