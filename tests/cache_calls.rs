//! Exact backend call counts and `Gone` behaviour of `Cache`, measured with
//! the call-counting `Instrumented` backend underneath.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use futures::executor::block_on;

use coordinate::cache::Cache;
use coordinate::instrumented::{Instrumented, Op};
use coordinate::memory::MemoryBackend;
use coordinate::ObjectKind;
use coordinate::{
    data, AttemptRequest, Backend, BackendExt, Duration, Error, MockClock, NamespaceRef,
    WorkSpecRef, WorkUnitMeta, WorkUnitQuery, WorkUnitRef, WorkUnitStatus, WorkerRef,
};

mod common {
    pub mod gone;
}

use common::gone::gone;

type Counted = Cache<Instrumented<MemoryBackend>>;

/// A cache over a counted backend, plus a handle on the backend itself for
/// changes behind the cache's back.
fn setup() -> (Counted, MemoryBackend) {
    let memory = MemoryBackend::with_clock(MockClock::new());
    (Cache::new(Instrumented::new(memory.clone())), memory)
}

fn calls(cache: &Counted, op: Op) -> u64 {
    cache.get_ref().calls().get(op)
}

async fn seed(cache: &Counted) -> coordinate::Result<()> {
    let ns = cache.namespace("n").await?;
    let spec = ns.set_work_spec(data!({"name": "s"})).await?;
    spec.add_work_unit("u", data!({"k": 1}), WorkUnitMeta::default())
        .await?;
    ns.worker("w").await?;
    Ok(())
}

/// [`setup`] with the [`seed`] objects created through the cache.
async fn seeded() -> coordinate::Result<(Counted, MemoryBackend)> {
    let (cache, memory) = setup();
    seed(&cache).await?;
    Ok((cache, memory))
}

/// [`seeded`], with unit "u" looked up through the cache.
async fn seeded_unit() -> coordinate::Result<(Counted, MemoryBackend, WorkUnitRef)> {
    let (cache, memory) = seeded().await?;
    let unit = cache.work_unit_at("n", "s", "u").await?;
    Ok((cache, memory, unit))
}

/// Deletes every unit of "n"/"s" on the backend directly, then zeroes the
/// call counts.
async fn delete_units_behind_the_back(
    cache: &Counted,
    memory: &MemoryBackend,
) -> coordinate::Result<()> {
    memory
        .work_spec_at("n", "s")
        .await?
        .delete_work_units(&WorkUnitQuery::all())
        .await?;
    cache.get_ref().reset();
    Ok(())
}

/// [`seeded`], with namespace "n" and its spec "s" looked up through the
/// cache.
async fn seeded_spec() -> coordinate::Result<(Counted, MemoryBackend, NamespaceRef, WorkSpecRef)> {
    let (cache, memory) = seeded().await?;
    let ns = cache.namespace("n").await?;
    let spec = ns.work_spec("s").await?;
    Ok((cache, memory, ns, spec))
}

#[tokio::test]
async fn repeated_lookups_hit_and_return_the_same_handle() -> coordinate::Result<()> {
    let (cache, _) = seeded().await?;
    cache.get_ref().reset();
    let u1 = cache.work_unit_at("n", "s", "u").await?;
    let u2 = cache.work_unit_at("n", "s", "u").await?;
    let w1 = cache.worker_at("n", "w").await?;
    let w2 = cache.worker_at("n", "w").await?;
    assert!(Arc::ptr_eq(&u1, &u2));
    assert!(Arc::ptr_eq(&w1, &w2));
    // Everything was cached when it was created: no lookup reached the backend.
    assert_eq!(
        cache.get_ref().calls().lookups(),
        0,
        "{:?}",
        cache.get_ref().calls()
    );
    let stats = cache.stats();
    assert_eq!(stats.work_units.hits, 2);
    assert_eq!(stats.work_units.backend_loads, 0);
    // The wrapped handles act on the backend.
    assert_eq!(u1.status().await?, WorkUnitStatus::Available);
    assert_eq!(calls(&cache, Op::UnitStatus), 1);
    Ok(())
}

#[tokio::test]
async fn a_miss_loads_once_then_hits() -> coordinate::Result<()> {
    let (cache, memory) = setup();
    // Created behind the cache's back: unknown to it.
    let ns = memory.namespace("n").await?;
    let spec = ns.set_work_spec(data!({"name": "s"})).await?;
    spec.add_work_unit("u", data!({}), WorkUnitMeta::default())
        .await?;
    for _ in 0..3 {
        cache.work_unit_at("n", "s", "u").await?;
    }
    assert_eq!(calls(&cache, Op::Namespace), 1);
    assert_eq!(calls(&cache, Op::WorkSpec), 1);
    assert_eq!(calls(&cache, Op::WorkUnit), 1);
    let stats = cache.stats();
    assert_eq!((stats.work_units.misses, stats.work_units.hits), (1, 2));
    assert_eq!(stats.work_units.backend_loads, 1);
    Ok(())
}

#[tokio::test]
async fn errors_pass_through_unchanged() -> coordinate::Result<()> {
    let (cache, _) = setup();
    let ns = cache.namespace("n").await?;
    assert_eq!(
        ns.set_work_spec(data!({})).await.err(),
        Some(Error::NoWorkSpecName)
    );
    assert_eq!(
        ns.set_work_spec(data!({"name": 3})).await.err(),
        Some(Error::BadWorkSpecName)
    );
    assert_eq!(
        ns.work_spec("nope").await.err(),
        Some(Error::NoSuchWorkSpec {
            name: "nope".into()
        })
    );
    let spec = ns.set_work_spec(data!({"name": "s"})).await?;
    assert_eq!(
        spec.set_data(data!({"name": "t"})).await.err(),
        Some(Error::ChangedName)
    );
    assert_eq!(
        spec.work_unit("x").await.err(),
        Some(Error::NoSuchWorkUnit { name: "x".into() })
    );
    // Absent names are not cached: every lookup asks again.
    spec.work_unit("x").await.err();
    assert_eq!(calls(&cache, Op::WorkUnit), 2);
    Ok(())
}

#[tokio::test]
async fn delete_all_then_lookup_answers_no_such_work_unit() -> coordinate::Result<()> {
    let (cache, _) = seeded().await?;
    let spec = cache.work_spec_at("n", "s").await?;
    let unit = spec.work_unit("u").await?;
    assert_eq!(spec.delete_work_units(&WorkUnitQuery::all()).await?, 1);
    assert_eq!(
        spec.work_unit("u").await.err(),
        Some(Error::NoSuchWorkUnit { name: "u".into() })
    );
    assert_eq!(unit.status().await.err(), Some(gone(ObjectKind::WorkUnit)));
    assert_eq!(cache.stats().work_units.invalidations, 1);
    // Recreated: a fresh handle, and the old one follows the name.
    let again = spec
        .add_work_unit("u", data!({"v": 2}), WorkUnitMeta::default())
        .await?;
    assert!(!Arc::ptr_eq(&unit, &again));
    assert_eq!(unit.data().await?, data!({"v": 2}));
    Ok(())
}

#[tokio::test]
async fn delete_by_name_invalidates_only_those_names() -> coordinate::Result<()> {
    let (cache, _) = seeded().await?;
    let spec = cache.work_spec_at("n", "s").await?;
    let keep = spec
        .add_work_unit("keep", data!({}), WorkUnitMeta::default())
        .await?;
    cache.get_ref().reset();
    assert_eq!(
        spec.delete_work_units(&WorkUnitQuery::names(["u"])).await?,
        1
    );
    assert!(Arc::ptr_eq(&keep, &spec.work_unit("keep").await?));
    assert!(spec.work_unit("u").await.is_err());
    assert_eq!(calls(&cache, Op::WorkUnit), 1);
    Ok(())
}

#[tokio::test]
async fn destroy_work_spec_invalidates_the_spec_and_its_units() -> coordinate::Result<()> {
    let (_cache, _, ns, spec) = seeded_spec().await?;
    let unit = spec.work_unit("u").await?;
    ns.destroy_work_spec("s").await?;
    assert_eq!(
        ns.work_spec("s").await.err(),
        Some(Error::NoSuchWorkSpec { name: "s".into() })
    );
    assert_eq!(
        ns.destroy_work_spec("s").await.err(),
        Some(Error::NoSuchWorkSpec { name: "s".into() })
    );
    assert_eq!(
        spec.meta(false).await.err(),
        Some(gone(ObjectKind::WorkSpec))
    );
    assert_eq!(
        spec.add_work_unit("v", data!({}), WorkUnitMeta::default())
            .await
            .err(),
        Some(gone(ObjectKind::WorkSpec))
    );
    assert_eq!(unit.status().await.err(), Some(gone(ObjectKind::WorkUnit)));
    assert_eq!(
        spec.work_unit("u").await.err(),
        Some(gone(ObjectKind::WorkSpec))
    );
    Ok(())
}

#[tokio::test]
async fn recovery_after_a_delete_behind_the_back_costs_one_lookup() -> coordinate::Result<()> {
    let (cache, memory, unit) = seeded_unit().await?;
    let spec = memory.work_spec_at("n", "s").await?;
    spec.delete_work_units(&WorkUnitQuery::all()).await?;
    spec.add_work_unit("u", data!({"new": true}), WorkUnitMeta::default())
        .await?;
    cache.get_ref().reset();
    assert_eq!(unit.data().await?, data!({"new": true}));
    // One call answered Gone, one lookup re-resolved the name, one retry.
    assert_eq!(calls(&cache, Op::UnitData), 2);
    assert_eq!(calls(&cache, Op::WorkUnit), 1);
    assert_eq!(cache.get_ref().calls().total(), 3);
    assert_eq!(cache.stats().work_units.gone_recoveries, 1);
    // Later calls go straight to the new object.
    unit.data().await?;
    assert_eq!(calls(&cache, Op::UnitData), 3);
    Ok(())
}

#[tokio::test]
async fn a_snapshot_is_one_backend_call_and_follows_the_name() -> coordinate::Result<()> {
    let (cache, memory, unit) = seeded_unit().await?;
    cache.get_ref().reset();
    let snapshot = unit.snapshot().await?;
    assert_eq!(
        (snapshot.status, snapshot.data),
        (WorkUnitStatus::Available, data!({"k": 1}))
    );
    assert_eq!(calls(&cache, Op::UnitSnapshot), 1);
    assert_eq!(cache.get_ref().calls().total(), 1);
    // Re-created behind the cache's back: one Gone, one lookup, one retry.
    let spec = memory.work_spec_at("n", "s").await?;
    spec.delete_work_units(&WorkUnitQuery::all()).await?;
    spec.add_work_unit("u", data!({"new": true}), WorkUnitMeta::default())
        .await?;
    cache.get_ref().reset();
    assert_eq!(unit.snapshot().await?.data, data!({"new": true}));
    assert_eq!(calls(&cache, Op::UnitSnapshot), 2);
    assert_eq!(calls(&cache, Op::WorkUnit), 1);
    assert_eq!(cache.get_ref().calls().total(), 3);
    Ok(())
}

#[tokio::test]
async fn data_and_meta_is_one_backend_call_and_follows_the_name() -> coordinate::Result<()> {
    let (cache, memory, unit) = seeded_unit().await?;
    cache.get_ref().reset();
    let (data, _) = unit.data_and_meta().await?;
    assert_eq!(data, data!({"k": 1}));
    assert_eq!(calls(&cache, Op::UnitDataAndMeta), 1);
    assert_eq!(cache.get_ref().calls().total(), 1);
    // Re-created behind the cache's back: one Gone, one lookup, one retry.
    let spec = memory.work_spec_at("n", "s").await?;
    spec.delete_work_units(&WorkUnitQuery::all()).await?;
    spec.add_work_unit("u", data!({"new": true}), WorkUnitMeta::with_priority(3.0))
        .await?;
    cache.get_ref().reset();
    let (data, meta) = unit.data_and_meta().await?;
    assert_eq!((data, meta.priority), (data!({"new": true}), 3.0));
    assert_eq!(calls(&cache, Op::UnitDataAndMeta), 2);
    assert_eq!(calls(&cache, Op::WorkUnit), 1);
    assert_eq!(cache.get_ref().calls().total(), 3);
    Ok(())
}

#[tokio::test]
async fn a_deleted_name_answers_gone_without_looping() -> coordinate::Result<()> {
    let (cache, memory, unit) = seeded_unit().await?;
    delete_units_behind_the_back(&cache, &memory).await?;
    assert_eq!(unit.status().await.err(), Some(gone(ObjectKind::WorkUnit)));
    assert_eq!(calls(&cache, Op::UnitStatus), 1);
    assert_eq!(calls(&cache, Op::WorkUnit), 1);
    // The entry is gone: the next lookup asks the backend and gets NoSuch.
    let spec = cache.work_spec_at("n", "s").await?;
    assert_eq!(
        spec.work_unit("u").await.err(),
        Some(Error::NoSuchWorkUnit { name: "u".into() })
    );
    assert_eq!(calls(&cache, Op::WorkUnit), 2);
    Ok(())
}

#[tokio::test]
async fn concurrent_misses_of_one_name_share_one_backend_call() -> coordinate::Result<()> {
    let memory = MemoryBackend::with_clock(MockClock::new());
    let ns = memory.namespace("n").await?;
    let spec = ns.set_work_spec(data!({"name": "s"})).await?;
    spec.add_work_unit("u", data!({}), WorkUnitMeta::default())
        .await?;
    let cache = Arc::new(Cache::new(Instrumented::with_lookup_latency(
        memory,
        StdDuration::from_millis(20),
    )));
    let spec = cache.work_spec_at("n", "s").await?;
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let spec = spec.clone();
            tokio::spawn(async move { spec.work_unit("u").await })
        })
        .collect();
    let mut handles = Vec::new();
    for t in tasks {
        handles.push(t.await.map_err(Error::backend)??);
    }
    assert!(handles.iter().all(|h| Arc::ptr_eq(h, &handles[0])));
    assert_eq!(cache.get_ref().calls().get(Op::WorkUnit), 1);
    // And for an absent name: one call, every caller gets the error. The
    // error is not kept, so the callers ask together (polled at once).
    let asked = futures::future::join_all((0..8).map(|_| spec.work_unit("absent"))).await;
    for r in asked {
        assert_eq!(
            r.err(),
            Some(Error::NoSuchWorkUnit {
                name: "absent".into()
            })
        );
    }
    assert_eq!(cache.get_ref().calls().get(Op::WorkUnit), 2);
    Ok(())
}

/// A worker lost with its namespace stays lost when the namespace is made
/// again without it, and its recoveries leave the new namespace alone:
/// they neither re-resolve it nor make its other handles do so.
#[tokio::test]
async fn a_lost_worker_leaves_its_namespace_made_again_alone() -> coordinate::Result<()> {
    let (cache, _memory) = setup();
    let ns = cache.namespace("n").await?;
    let worker = ns.worker("w").await?;
    ns.destroy().await?;
    let spec = ns.set_work_spec(data!({"name": "s"})).await?;
    cache.get_ref().reset();
    for _ in 0..2 {
        assert_eq!(worker.data().await, Err(gone(ObjectKind::Worker)));
    }
    spec.meta(false).await?;
    assert_eq!(cache.namespace("n").await?.work_spec_names().await?, ["s"]);
    let calls = cache.get_ref().calls();
    assert_eq!((calls.lookups(), calls.get(Op::Namespaces)), (0, 0));
    Ok(())
}

/// A cache whose change-feed task is gone (its runtime shut down) serves
/// nothing from its entries, as during a feed gap; concurrent misses of one
/// name still share one backend call.
#[test]
fn misses_share_one_load_while_the_feed_is_down() -> coordinate::Result<()> {
    let memory = MemoryBackend::with_clock(MockClock::new());
    let counted = Instrumented::with_lookup_latency(memory.clone(), StdDuration::from_millis(20));
    // A current-thread runtime drops its tasks before its drop returns.
    let subscribed = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::backend)?;
    let cache = subscribed.block_on(async {
        let cache = Arc::new(Cache::new(counted));
        // The feed task starts following.
        tokio::task::yield_now().await;
        cache
    });
    assert!(cache.stats().feed.subscribed);
    drop(subscribed);
    assert!(!cache.stats().feed.subscribed);

    let runtime = tokio::runtime::Runtime::new().map_err(Error::backend)?;
    runtime.block_on(async {
        // Polled together, so every miss is made while the first load waits.
        let lookups = (0..8).map(|_| cache.namespace("n"));
        futures::future::try_join_all(lookups).await?;
        assert_eq!(cache.get_ref().calls().get(Op::Namespace), 1);
        // Nothing was cached: the next lookup goes to the backend again.
        cache.namespace("n").await?;
        assert_eq!(cache.get_ref().calls().get(Op::Namespace), 2);
        Ok(())
    })
}

/// A cache whose change-feed task was dropped before it ever ran (its
/// runtime shut down first) does not serve from its entries either: a
/// delete no event reaches it with is not answered from a stale entry.
#[test]
fn a_feed_task_dropped_before_it_ran_leaves_the_cache_bypassed() -> coordinate::Result<()> {
    let memory = MemoryBackend::with_clock(MockClock::new());
    let unstarted = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::backend)?;
    // Finished at its first poll: the runtime never runs the feed task.
    let cache = unstarted.block_on(async { Cache::new(memory.clone()) });
    drop(unstarted);
    assert!(!cache.stats().feed.subscribed);

    let runtime = tokio::runtime::Runtime::new().map_err(Error::backend)?;
    runtime.block_on(async {
        let ns = memory.namespace("n").await?;
        ns.set_work_spec(data!({"name": "s"})).await?;
        cache.namespace("n").await?.work_spec("s").await?;
        ns.destroy_work_spec("s").await?;
        assert_eq!(
            cache.namespace("n").await?.work_spec("s").await.err(),
            Some(Error::NoSuchWorkSpec { name: "s".into() })
        );
        Ok(())
    })
}

/// A `Gone` recovery looks its names up as a lookup does, and counts its
/// misses: a cache's backend loads never outnumber its misses.
#[test]
fn recoveries_count_the_misses_they_load_for() -> coordinate::Result<()> {
    let memory = MemoryBackend::with_clock(MockClock::new());
    // Built outside a runtime: no change feed tells it of the changes below.
    let cache = Cache::new(Instrumented::new(memory.clone()));
    let runtime = tokio::runtime::Runtime::new().map_err(Error::backend)?;
    runtime.block_on(async {
        let ns = cache.namespace("n").await?;
        let worker = ns.worker("w").await?;
        let spec = ns.set_work_spec(data!({"name": "s"})).await?;
        memory.namespace("n").await?.destroy().await?;
        let remade = memory.namespace("n").await?;
        remade.worker("w").await?;
        remade.set_work_spec(data!({"name": "s"})).await?;

        assert!(worker.active().await?);
        spec.meta(false).await?;
        let stats = cache.stats();
        assert_eq!(stats.workers.gone_recoveries, 1);
        assert_eq!(stats.work_specs.gone_recoveries, 1);
        for (kind, counts) in [
            ("namespaces", stats.namespaces),
            ("work specs", stats.work_specs),
            ("workers", stats.workers),
        ] {
            assert!(counts.backend_loads <= counts.misses, "{kind}: {counts:?}");
        }
        Ok(())
    })
}

/// Handles whose objects were made again behind the cache's back (it is
/// built outside a runtime, so no change feed tells it) all answer `Gone`
/// at once: their concurrent recoveries of one name share one backend call.
#[test]
fn concurrent_recoveries_of_one_name_share_one_backend_call() -> coordinate::Result<()> {
    let memory = MemoryBackend::with_clock(MockClock::new());
    let counted = Instrumented::with_lookup_latency(memory.clone(), StdDuration::from_millis(20));
    let cache = Arc::new(Cache::new(counted));
    let runtime = tokio::runtime::Runtime::new().map_err(Error::backend)?;
    runtime.block_on(async {
        let worker = cache.namespace("n").await?.worker("w").await?;
        memory.namespace("n").await?.destroy().await?;
        memory.namespace("n").await?.worker("w").await?;
        cache.get_ref().reset();

        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let worker = worker.clone();
                tokio::spawn(async move { worker.active().await })
            })
            .collect();
        for task in tasks {
            assert!(task.await.map_err(Error::backend)??);
        }
        let calls = cache.get_ref().calls();
        assert_eq!((calls.get(Op::Workers), calls.get(Op::Namespaces)), (2, 1));
        Ok(())
    })
}

#[tokio::test]
async fn a_spec_in_a_destroyed_namespace_does_not_recreate_it() -> coordinate::Result<()> {
    let (cache, memory, ns, spec) = seeded_spec().await?;
    let worker = ns.worker("w").await?;
    ns.destroy().await?;
    assert_eq!(
        spec.meta(false).await.err(),
        Some(gone(ObjectKind::WorkSpec))
    );
    assert_eq!(worker.active().await.err(), Some(gone(ObjectKind::Worker)));
    assert!(!memory.namespaces().await?.contains_key("n"));
    // The namespace handle itself stands for get-or-create.
    assert!(ns.work_spec_names().await?.is_empty());
    assert!(memory.namespaces().await?.contains_key("n"));
    ns.destroy().await?;
    // Same when destroyed behind the cache's back.
    seed(&cache).await?;
    let spec = cache.work_spec_at("n", "s").await?;
    memory.namespace("n").await?.destroy().await?;
    assert_eq!(
        spec.meta(false).await.err(),
        Some(gone(ObjectKind::WorkSpec))
    );
    assert!(!memory.namespaces().await?.contains_key("n"));
    Ok(())
}

#[tokio::test]
async fn an_old_namespace_handle_never_destroys_a_newer_namespace() -> coordinate::Result<()> {
    let (cache, _) = setup();
    let old = cache.namespace("n").await?;
    old.destroy().await?;
    let new = cache.namespace("n").await?;
    assert!(!Arc::ptr_eq(&old, &new));
    new.set_work_spec(data!({"name": "s"})).await?;
    old.destroy().await?;
    assert_eq!(new.work_spec_names().await?, vec!["s".to_string()]);
    // Under name identity the old handle now acts on the new namespace.
    assert_eq!(old.work_spec_names().await?, vec!["s".to_string()]);
    Ok(())
}

/// A namespace handle `old` on "n" with spec "s" and worker "w", destroyed,
/// and the namespace recreated under its name with the same children.
async fn destroyed_and_recreated(
    cache: &Counted,
) -> coordinate::Result<(NamespaceRef, WorkSpecRef, WorkerRef)> {
    let old = cache.namespace("n").await?;
    let spec = old.set_work_spec(data!({"name": "s"})).await?;
    let worker = old.worker("w").await?;
    old.destroy().await?;
    let new = cache.namespace("n").await?;
    new.set_work_spec(data!({"name": "s", "priority": 5}))
        .await?;
    new.worker("w").await?;
    Ok((old, spec, worker))
}

/// The recreated namespace of [`destroyed_and_recreated`] is whole.
async fn assert_recreated_whole(cache: &Counted) -> coordinate::Result<()> {
    let new = cache.namespace("n").await?;
    assert_eq!(new.work_spec_names().await?, vec!["s".to_string()]);
    assert!(new.workers().await?.contains_key("w"));
    Ok(())
}

/// A spec made under a namespace handle follows its name into the
/// namespace recreated under that name without rebinding that handle: the
/// old handle's `destroy` stays a no-op.
#[tokio::test]
async fn a_specs_recovery_leaves_its_old_namespace_handle_unable_to_destroy(
) -> coordinate::Result<()> {
    let (cache, _) = setup();
    let (old, spec, _) = destroyed_and_recreated(&cache).await?;
    assert_eq!(spec.meta(false).await?.priority, 5);
    old.destroy().await?;
    assert_recreated_whole(&cache).await
}

/// The same through a worker's recovery.
#[tokio::test]
async fn a_workers_recovery_leaves_its_old_namespace_handle_unable_to_destroy(
) -> coordinate::Result<()> {
    let (cache, _) = setup();
    let (old, _, worker) = destroyed_and_recreated(&cache).await?;
    assert!(worker.active().await?);
    old.destroy().await?;
    assert_recreated_whole(&cache).await
}

/// How long a namespace listing of [`slow_listings`] takes.
const SLOW_LISTING: StdDuration = StdDuration::from_millis(200);

/// A cache over `memory` whose namespace listings, how it finds a
/// namespace it does not hold, take [`SLOW_LISTING`].
fn slow_listings(memory: &MemoryBackend) -> Counted {
    Cache::new(Instrumented::with_latency(
        memory.clone(),
        SLOW_LISTING,
        |op| op == Op::Namespaces,
    ))
}

/// Unit "u" of spec "s" in namespace `ns`, made on `backend`.
async fn unit_in(backend: &impl Backend, ns: &str) -> coordinate::Result<WorkUnitRef> {
    backend
        .namespace(ns)
        .await?
        .set_work_spec(data!({"name": "s"}))
        .await?
        .add_work_unit("u", data!({}), WorkUnitMeta::default())
        .await
}

/// Destroys the namespaces `names` behind the cache's back once a listing
/// of `cache` (from [`slow_listings`], its counts reset before) waits.
async fn destroyed_while_listed(
    memory: &MemoryBackend,
    cache: &Counted,
    names: &[&str],
) -> coordinate::Result<()> {
    listing_started(cache).await;
    for name in names {
        memory.namespace(name).await?.destroy().await?;
    }
    Ok(())
}

/// Completes once `cache` (from [`slow_listings`]) has started a listing
/// since its counts were reset.
async fn listing_started(cache: &Counted) {
    while cache.get_ref().calls().get(Op::Namespaces) == 0 {
        tokio::task::yield_now().await;
    }
}

/// An attempt given up while the cache makes its handles (here, looking
/// up the namespace of its unit) is given back: its unit is not held for a
/// whole lease by an attempt nobody got.
#[tokio::test]
async fn an_attempt_given_up_while_the_cache_wraps_it_is_given_back() -> coordinate::Result<()> {
    let memory = MemoryBackend::with_clock(MockClock::new());
    let cache = slow_listings(&memory);
    let unit = unit_in(cache.get_ref(), "b").await?;
    let worker = cache.namespace("a").await?.worker("w").await?;
    cache.get_ref().reset();
    let mut attempt = Box::pin(worker.make_attempt(&unit, Duration::seconds(600)));
    tokio::select! {
        biased;
        made = &mut attempt => panic!("the attempt was answered: {made:?}"),
        () = listing_started(&cache) => {}
    }
    drop(attempt);
    let raw = memory.work_unit_at("b", "s", "u").await?;
    let mut status = raw.status().await?;
    for _ in 0..100 {
        if status == WorkUnitStatus::Available {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
        status = raw.status().await?;
    }
    assert_eq!(status, WorkUnitStatus::Available);
    assert_eq!(raw.num_attempts().await?, 1);
    Ok(())
}

/// A lookup whose load answers after an upsert cached the name returns
/// the handle the upsert cached, as every later lookup does.
#[tokio::test]
async fn a_lookup_outrun_by_an_upsert_returns_the_cached_handle() -> coordinate::Result<()> {
    let memory = MemoryBackend::with_clock(MockClock::new());
    memory
        .namespace("n")
        .await?
        .set_work_spec(data!({"name": "s"}))
        .await?;
    let slow_lookup = StdDuration::from_millis(100);
    let cache = Cache::new(Instrumented::with_latency(memory, slow_lookup, |op| {
        op == Op::WorkSpec
    }));
    let ns = cache.namespace("n").await?;
    cache.get_ref().reset();
    let lookup = ns.work_spec("s");
    let upsert = async {
        while cache.get_ref().calls().get(Op::WorkSpec) == 0 {
            tokio::task::yield_now().await;
        }
        ns.set_work_spec(data!({"name": "s"})).await
    };
    let (looked_up, upserted) = futures::join!(lookup, upsert);
    let (looked_up, upserted) = (looked_up?, upserted?);
    assert!(Arc::ptr_eq(&looked_up, &upserted));
    assert!(Arc::ptr_eq(&looked_up, &ns.work_spec("s").await?));
    Ok(())
}

/// A worker's attempt on a unit of another namespace, destroyed while the
/// cache looks that namespace up to make the attempt's handles, is left
/// out of the list, as the backend would list it now.
#[tokio::test]
async fn an_attempt_whose_units_namespace_goes_while_listed_is_left_out() -> coordinate::Result<()>
{
    let memory = MemoryBackend::with_clock(MockClock::new());
    let unit = unit_in(&memory, "b").await?;
    let worker = memory.namespace("a").await?.worker("w").await?;
    worker.make_attempt(&unit, Duration::seconds(600)).await?;
    let cache = slow_listings(&memory);
    let cached = cache.namespace("a").await?.worker("w").await?;
    cache.get_ref().reset();
    let destroy = destroyed_while_listed(&memory, &cache, &["b"]);
    let (listed, destroyed) = futures::join!(cached.all_attempts(), destroy);
    destroyed?;
    assert!(listed?.is_empty());
    assert!(worker.all_attempts().await?.is_empty());
    Ok(())
}

/// A worker's parent and child in other namespaces, destroyed while the
/// cache looks those namespaces up to make their handles, are gone from
/// its answers, as the backend would answer now, and the worker itself,
/// alive, does not re-resolve.
#[tokio::test]
async fn relatives_whose_namespaces_go_while_adopted_are_gone() -> coordinate::Result<()> {
    let memory = MemoryBackend::with_clock(MockClock::new());
    let worker = memory.namespace("a").await?.worker("w").await?;
    let parent = memory.namespace("b").await?.worker("p").await?;
    let child = memory.namespace("c").await?.worker("k").await?;
    worker.set_parent(Some(&parent)).await?;
    child.set_parent(Some(&worker)).await?;
    let cache = slow_listings(&memory);
    let cached = cache.namespace("a").await?.worker("w").await?;
    cache.get_ref().reset();
    let destroy = destroyed_while_listed(&memory, &cache, &["b", "c"]);
    let (parent, children, destroyed) = futures::join!(cached.parent(), cached.children(), destroy);
    destroyed?;
    assert!(parent?.is_none());
    assert!(children?.is_empty());
    assert_eq!(cache.stats().workers.gone_recoveries, 0);
    Ok(())
}

#[tokio::test]
async fn attempts_carry_cached_units_and_workers() -> coordinate::Result<()> {
    let (cache, _, unit) = seeded_unit().await?;
    let worker = cache.worker_at("n", "w").await?;
    let spec = cache.work_spec_at("n", "s").await?;
    let got = worker.request_attempts(&AttemptRequest::default()).await?;
    assert_eq!(got.len(), 1);
    assert!(Arc::ptr_eq(&got[0].work_unit(), &unit));
    assert!(Arc::ptr_eq(&got[0].worker(), &worker));
    assert!(Arc::ptr_eq(&got[0].work_unit().work_spec(), &spec));
    let active = unit
        .active_attempt()
        .await?
        .ok_or(gone(ObjectKind::WorkUnit))?;
    assert!(Arc::ptr_eq(&active.worker(), &worker));
    let listed = spec.work_units(&WorkUnitQuery::all()).await?;
    assert!(Arc::ptr_eq(&listed["u"], &unit));
    let workers = cache.namespace("n").await?.workers().await?;
    assert!(Arc::ptr_eq(&workers["w"], &worker));
    let namespaces = cache.namespaces().await?;
    assert!(Arc::ptr_eq(&namespaces["n"], &cache.namespace("n").await?));
    got[0].finish(None).await?;
    assert_eq!(unit.status().await?, WorkUnitStatus::Finished);
    Ok(())
}

#[tokio::test]
async fn handles_passed_back_in_are_unwrapped() -> coordinate::Result<()> {
    let (cache, memory) = seeded().await?;
    let ns = cache.namespace("n").await?;
    let unit = cache.work_unit_at("n", "s", "u").await?;
    let parent = ns.worker("p").await?;
    let child = ns.worker("c").await?;
    child.set_parent(Some(&parent)).await?;
    let got = child.parent().await?.ok_or(gone(ObjectKind::Worker))?;
    assert!(Arc::ptr_eq(&got, &parent));
    assert!(Arc::ptr_eq(&parent.children().await?[0], &child));
    let attempt = child.make_attempt(&unit, Duration::zero()).await?;
    assert!(Arc::ptr_eq(&attempt.work_unit(), &unit));
    assert_eq!(unit.status().await?, WorkUnitStatus::Pending);
    // A unit of another backend is the backend's business: WrongBackend.
    let other = MemoryBackend::new();
    let foreign = other
        .namespace("n")
        .await?
        .set_work_spec(data!({"name": "s"}))
        .await?
        .add_work_unit("x", data!({}), WorkUnitMeta::default())
        .await?;
    assert_eq!(
        child.make_attempt(&foreign, Duration::zero()).await.err(),
        Some(Error::WrongBackend)
    );
    drop(memory);
    Ok(())
}

#[tokio::test]
async fn make_attempt_with_a_deleted_unit_is_gone_after_one_retry() -> coordinate::Result<()> {
    let (cache, memory, unit) = seeded_unit().await?;
    let worker = cache.worker_at("n", "w").await?;
    delete_units_behind_the_back(&cache, &memory).await?;
    assert_eq!(
        worker.make_attempt(&unit, Duration::zero()).await.err(),
        Some(gone(ObjectKind::Worker))
    );
    assert!(calls(&cache, Op::MakeAttempt) <= 2);
    // Recreated behind the back: the cached unit follows its name.
    memory
        .work_spec_at("n", "s")
        .await?
        .add_work_unit("u", data!({}), WorkUnitMeta::default())
        .await?;
    let attempt = worker.make_attempt(&unit, Duration::zero()).await?;
    assert_eq!(attempt.status().await?, coordinate::AttemptStatus::Pending);
    assert_eq!(unit.status().await?, WorkUnitStatus::Pending);
    Ok(())
}

/// A held unit whose name was filed again, for the same object, before
/// that object was deleted and its name made again behind the cache's
/// back: `make_attempt` refreshes the unit as long as that finds another
/// object, and acts on the one that now has the name.
#[tokio::test]
async fn make_attempt_refreshes_a_held_unit_past_a_second_stale_entry() -> coordinate::Result<()> {
    let (cache, memory, held) = seeded_unit().await?;
    let spec = cache.work_spec_at("n", "s").await?;
    spec.add_work_unit("a", data!({}), WorkUnitMeta::default())
        .await?;
    // Deletes "a", and with it every cached unit of the spec.
    let first = WorkUnitQuery {
        limit: 1,
        ..WorkUnitQuery::all()
    };
    assert_eq!(spec.delete_work_units(&first).await?, 1);
    spec.work_unit("u").await?;
    let direct = memory.work_spec_at("n", "s").await?;
    direct
        .delete_work_units(&WorkUnitQuery::names(["u"]))
        .await?;
    direct
        .add_work_unit("u", data!({"v": 2}), WorkUnitMeta::default())
        .await?;
    let worker = cache.worker_at("n", "w").await?;
    let attempt = worker.make_attempt(&held, Duration::seconds(60)).await?;
    assert_eq!(attempt.work_unit().data().await?, data!({"v": 2}));
    assert_eq!(held.status().await?, WorkUnitStatus::Pending);
    Ok(())
}

/// A worker made again behind the cache's back, the unit alive: one
/// refresh of the unit (which cannot tell the same object from another),
/// then one of the worker; the unit is looked up once.
#[test]
fn make_attempt_refreshes_a_live_unit_once_before_the_worker() -> coordinate::Result<()> {
    let (cache, memory) = setup();
    block_on(async {
        unit_in(&cache, "m").await?;
        let unit = cache.work_unit_at("m", "s", "u").await?;
        let worker = cache.worker_at("n", "w").await?;
        memory.namespace("n").await?.destroy().await?;
        memory.namespace("n").await?.worker("w").await?;
        cache.get_ref().reset();
        worker.make_attempt(&unit, Duration::minutes(5)).await?;
        assert_eq!(calls(&cache, Op::MakeAttempt), 3);
        assert_eq!(calls(&cache, Op::WorkUnit), 1);
        Ok(())
    })
}

/// A held worker whose name was filed again, for the same object (its
/// entry expired), before that object was deleted and its name made again behind the cache's
/// back: `make_attempt` re-resolves the worker past the second stale
/// entry, as its other calls do, and acts on the worker that now has the
/// name.
#[test]
fn make_attempt_follows_a_held_worker_past_a_second_stale_entry() -> coordinate::Result<()> {
    let memory = MemoryBackend::with_clock(MockClock::new());
    let cache = coordinate::cache::CacheBuilder::new()
        .time_to_live(StdDuration::from_millis(50))
        .build(Instrumented::new(memory.clone()));
    block_on(async {
        unit_in(&cache, "m").await?;
        let unit = cache.work_unit_at("m", "s", "u").await?;
        let held = cache.worker_at("n", "w").await?;
        // The entry expires, and a lookup files the name again.
        std::thread::sleep(StdDuration::from_millis(60));
        cache.run_pending_tasks().await;
        cache.worker_at("n", "w").await?;
        memory.namespace("n").await?.destroy().await?;
        let again = memory.namespace("n").await?.worker("w").await?;
        held.make_attempt(&unit, Duration::minutes(5)).await?;
        assert_eq!(again.active_attempts().await?.len(), 1);
        Ok(())
    })
}

#[tokio::test]
async fn caches_stack_and_erase() -> coordinate::Result<()> {
    let memory = MemoryBackend::with_clock(MockClock::new());
    let erased: Arc<dyn Backend> = Arc::new(Cache::new(memory.clone()));
    let stacked = Cache::new(Cache::new(erased.clone()));
    let over_dyn: Cache<Arc<dyn Backend>> = Cache::new(erased.clone());
    let ns = stacked.namespace("n").await?;
    let spec = ns.set_work_spec(data!({"name": "s"})).await?;
    let unit = spec
        .add_work_unit("u", data!({}), WorkUnitMeta::default())
        .await?;
    let worker = ns.worker("w").await?;
    worker.make_attempt(&unit, Duration::zero()).await?;
    assert_eq!(
        over_dyn.work_unit_at("n", "s", "u").await?.status().await?,
        WorkUnitStatus::Pending
    );
    assert_eq!(
        erased.work_unit_at("n", "s", "u").await?.status().await?,
        WorkUnitStatus::Pending
    );
    ns.destroy().await?;
    assert_eq!(unit.status().await.err(), Some(gone(ObjectKind::WorkUnit)));
    Ok(())
}

#[tokio::test]
async fn dropping_the_cache_frees_its_entries() -> coordinate::Result<()> {
    let (cache, _, unit) = seeded_unit().await?;
    let weak = Arc::downgrade(&unit);
    let kept = cache.work_spec_at("n", "s").await?;
    drop(unit);
    drop(cache);
    assert!(weak.upgrade().is_none(), "the cache leaked its entries");
    // Handles kept past the cache keep working, uncached.
    assert_eq!(
        kept.work_unit("u").await?.status().await?,
        WorkUnitStatus::Available
    );
    Ok(())
}

#[tokio::test]
async fn debug_shows_counts_only() -> coordinate::Result<()> {
    let (cache, _) = seeded().await?;
    let text = format!("{cache:?}");
    assert!(text.contains("hits"), "{text}");
    assert!(!text.contains("\"u\""), "{text}");
    Ok(())
}

/// Entries moka evicts are never answered by a hit afterwards: once its
/// maintenance has run, only what it still holds is served.
#[tokio::test]
async fn evicted_entries_are_not_served() -> coordinate::Result<()> {
    const CAPACITY: u64 = 16;
    let memory = MemoryBackend::with_clock(MockClock::new());
    let spec = memory
        .namespace("n")
        .await?
        .set_work_spec(data!({"name": "s"}))
        .await?;
    let names: Vec<String> = (0..200).map(|i| format!("u{i}")).collect();
    for name in &names {
        spec.add_work_unit(name, data!({}), WorkUnitMeta::default())
            .await?;
    }
    let cache = Cache::builder()
        .work_units(CAPACITY)
        .build(Instrumented::new(memory));
    for name in &names {
        cache.work_unit_at("n", "s", name).await?;
    }
    cache.run_pending_tasks().await;
    assert!(cache.stats().work_units.entries <= CAPACITY);
    let before = calls(&cache, Op::WorkUnit);
    for name in &names {
        cache.work_unit_at("n", "s", name).await?;
    }
    // Each name once: a hit can only be an entry held before this pass.
    let hits = names.len() as u64 - (calls(&cache, Op::WorkUnit) - before);
    assert!(hits <= CAPACITY, "{hits} hits with room for {CAPACITY}");
    Ok(())
}

/// A hit never returns a handle whose invalidation has returned.
#[tokio::test]
async fn no_hit_after_invalidation_returned() -> coordinate::Result<()> {
    let (cache, _) = seeded().await?;
    let spec = cache.work_spec_at("n", "s").await?;
    for round in 0..50 {
        spec.add_work_unit("u", data!({ "round": round }), WorkUnitMeta::default())
            .await?;
        let unit = spec.work_unit("u").await?;
        assert_eq!(unit.data().await?, data!({ "round": round }));
        spec.delete_work_units(&WorkUnitQuery::names(["u"])).await?;
        assert!(matches!(
            spec.work_unit("u").await,
            Err(Error::NoSuchWorkUnit { .. })
        ));
    }
    Ok(())
}

/// A backend's own failure type, to find again behind `Error::Backend`.
#[derive(Debug, PartialEq)]
struct Refused {
    code: u32,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused ({})", self.code)
    }
}

impl std::error::Error for Refused {}

/// A backend whose namespace lookups wait for a permit, then fail with
/// [`Refused`].
#[derive(Debug)]
struct Refusing {
    gate: tokio::sync::Semaphore,
    lookups: std::sync::atomic::AtomicU64,
}

#[async_trait::async_trait]
impl Backend for Refusing {
    async fn namespace(&self, _name: &str) -> coordinate::Result<coordinate::NamespaceRef> {
        self.lookups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _permit = self.gate.acquire().await.map_err(Error::backend)?;
        Err(Error::backend(Refused { code: 7 }))
    }

    async fn namespaces(
        &self,
    ) -> coordinate::Result<std::collections::BTreeMap<String, coordinate::NamespaceRef>> {
        Err(Error::backend(Refused { code: 8 }))
    }

    async fn summarize(&self) -> coordinate::Result<coordinate::Summary> {
        Err(Error::backend(Refused { code: 9 }))
    }
}

#[tokio::test]
async fn coalesced_callers_all_get_the_original_failure() {
    let cache = Cache::new(Refusing {
        gate: tokio::sync::Semaphore::new(0),
        lookups: Default::default(),
    });
    // Both lookups are in flight (the second joins the first's load) before
    // the gate opens.
    let (a, b, ()) = tokio::join!(cache.namespace("n"), cache.namespace("n"), async {
        cache.get_ref().gate.add_permits(1)
    });
    assert_eq!(
        cache
            .get_ref()
            .lookups
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    for result in [a, b] {
        let err = result.err();
        let source = err
            .as_ref()
            .and_then(std::error::Error::source)
            .and_then(|s| s.downcast_ref::<Refused>());
        assert_eq!(source, Some(&Refused { code: 7 }), "{err:?}");
    }
}

/// `make_attempt` and `set_parent` take a handle argument, so their `Gone`
/// may be about it or about the worker: both are followed to the objects
/// that now have their names.
#[tokio::test]
async fn worker_calls_with_handle_arguments_follow_objects_made_again() -> coordinate::Result<()> {
    let (cache, memory) = setup();
    seed(&cache).await?;
    let ns = cache.namespace("n").await?;
    let (worker, boss) = (ns.worker("w").await?, ns.worker("boss").await?);
    let unit = cache.work_unit_at("n", "s", "u").await?;
    // Everything made again behind the cache's back.
    memory.namespace("n").await?.destroy().await?;
    let again = memory.namespace("n").await?;
    again
        .set_work_spec(data!({"name": "s"}))
        .await?
        .add_work_unit("u", data!({"k": 2}), WorkUnitMeta::default())
        .await?;
    again.worker("boss").await?;
    let worker_again = again.worker("w").await?;

    let attempt = worker.make_attempt(&unit, Duration::minutes(5)).await?;
    assert_eq!(attempt.work_unit().data().await?, data!({"k": 2}));
    let active = worker_again.active_attempts().await?;
    assert_eq!(active.len(), 1);

    worker.set_parent(Some(&boss)).await?;
    let parent = worker_again.parent().await?;
    assert_eq!(parent.map(|p| p.name().to_owned()), Some("boss".to_owned()));
    Ok(())
}

/// A worker given a unit handle that is not the cache's follows its own
/// name too: its namespace made again unheard (the cache is built outside
/// a runtime, so no change feed tells it), the call re-resolves the worker
/// and makes the attempt for the worker that now has the name.
#[test]
fn make_attempt_with_an_outside_unit_follows_the_worker_made_again() -> coordinate::Result<()> {
    let (cache, memory) = setup();
    block_on(async {
        seed(&cache).await?;
        let worker = cache.namespace("n").await?.worker("w").await?;
        memory.namespace("n").await?.destroy().await?;
        let again = memory.namespace("n").await?;
        let outside = again
            .set_work_spec(data!({"name": "s"}))
            .await?
            .add_work_unit("u", data!({}), WorkUnitMeta::default())
            .await?;
        let worker_again = again.worker("w").await?;

        worker.make_attempt(&outside, Duration::minutes(5)).await?;
        assert_eq!(worker_again.active_attempts().await?.len(), 1);
        Ok(())
    })
}

/// A handle from before a purge re-resolves its name and shares the link
/// of the entry that succeeds its own; its own entry, which moka removes
/// only later, takes no children of that successor with it.
#[tokio::test]
async fn a_purged_entry_removed_late_leaves_its_successors_children_cached(
) -> coordinate::Result<()> {
    let (cache, _) = setup();
    seed(&cache).await?;
    let old = cache.work_spec_at("n", "s").await?;
    cache.purge(&coordinate::feed::PurgeScope::Everything).await;
    old.work_unit("u").await?;
    cache.run_pending_tasks().await;
    cache.get_ref().reset();
    cache.work_spec_at("n", "s").await?.work_unit("u").await?;
    assert_eq!(cache.get_ref().calls().lookups(), 0);
    Ok(())
}

/// A destroy through any handle of a namespace drops whatever the cache
/// holds under the name: here the entry of another handle of the same
/// namespace (cached after a purge outdated the destroying handle), whose
/// specs would otherwise still be served. The cache is built outside a
/// runtime, so no change feed drops the entry instead.
#[test]
fn a_destroy_through_an_outdated_handle_drops_the_entry_of_its_name() {
    let (cache, _memory) = setup();
    block_on(async {
        let old = cache.namespace("n").await.unwrap();
        old.set_work_spec(data!({"name": "s"})).await.unwrap();
        cache.purge(&coordinate::feed::PurgeScope::Everything).await;
        let current = cache.namespace("n").await.unwrap();
        assert!(!Arc::ptr_eq(&old, &current));
        current.work_spec("s").await.unwrap();

        old.destroy().await.unwrap();
        let after = cache.work_spec_at("n", "s").await;
        assert!(
            matches!(after, Err(Error::NoSuchWorkSpec { .. })),
            "{after:?}"
        );
    });
}

/// A [`seeded`] cache built outside a runtime (so no change feed drops
/// entries instead), with namespace "n" purged from it while `old`, a
/// handle of it, was held; and `current`, the handle looked up after:
/// another entry of the same namespace, under which spec "s" and unit "u"
/// are cached.
fn purged_namespace_handle() -> (Counted, NamespaceRef, NamespaceRef) {
    let (cache, _memory) = setup();
    let (old, current) = block_on(async {
        seed(&cache).await.unwrap();
        let old = cache.namespace("n").await.unwrap();
        let purge = coordinate::feed::PurgeScope::Namespace {
            namespace: "n".into(),
        };
        cache.purge(&purge).await;
        let current = cache.namespace("n").await.unwrap();
        assert!(!Arc::ptr_eq(&old, &current));
        current
            .work_spec("s")
            .await
            .unwrap()
            .work_unit("u")
            .await
            .unwrap();
        (old, current)
    });
    (cache, old, current)
}

/// A delete through a handle whose entry was dropped while it was held
/// reaches the children of the entry now cached under its name.
#[test]
fn a_spec_destroyed_through_a_purged_handle_is_not_served_by_its_successor() {
    let (cache, old, current) = purged_namespace_handle();
    block_on(async {
        old.destroy_work_spec("s").await.unwrap();
        let held = current.work_spec("s").await;
        assert!(
            matches!(held, Err(Error::NoSuchWorkSpec { .. })),
            "{held:?}"
        );
        let looked_up = cache.work_spec_at("n", "s").await;
        assert!(
            matches!(looked_up, Err(Error::NoSuchWorkSpec { .. })),
            "{looked_up:?}"
        );
    });
}

#[test]
fn units_deleted_through_a_purged_spec_handle_are_not_served_by_its_successor() {
    for query in [WorkUnitQuery::names(["u"]), WorkUnitQuery::default()] {
        let (cache, old, current) = purged_namespace_handle();
        block_on(async {
            let old_spec = old.work_spec("s").await.unwrap();
            let purge = coordinate::feed::PurgeScope::WorkSpec {
                namespace: "n".into(),
                work_spec: "s".into(),
            };
            cache.purge(&purge).await;
            let spec = current.work_spec("s").await.unwrap();
            spec.work_unit("u").await.unwrap();
            assert_eq!(old_spec.delete_work_units(&query).await.unwrap(), 1);
            let held = spec.work_unit("u").await;
            assert!(
                matches!(held, Err(Error::NoSuchWorkUnit { .. })),
                "{query:?}: {held:?}"
            );
        });
    }
}

#[test]
fn a_namespace_destroyed_through_a_purged_handle_serves_no_spec_to_its_successor() {
    let (_cache, old, current) = purged_namespace_handle();
    block_on(async {
        old.destroy().await.unwrap();
        let held = current.work_spec("s").await;
        assert!(
            matches!(held, Err(Error::NoSuchWorkSpec { .. })),
            "{held:?}"
        );
    });
}

/// Handles a list answers are adopted from the cache's entries, but they
/// are no lookups: the hit count does not move.
#[tokio::test]
async fn listing_cached_units_counts_no_hits() -> coordinate::Result<()> {
    let (cache, _memory, _unit) = seeded_unit().await?;
    let spec = cache.work_spec_at("n", "s").await?;
    let before = cache.stats().work_units.hits;
    let listed = spec.work_units(&WorkUnitQuery::default()).await?;
    assert_eq!(listed.len(), 1);
    assert_eq!(cache.stats().work_units.hits, before);
    spec.work_unit("u").await?;
    assert_eq!(cache.stats().work_units.hits, before + 1);
    Ok(())
}

/// A backend whose `destroy_work_spec` destroys, then waits for a permit
/// before answering: the window in which another caller makes the name
/// again.
#[derive(Debug, Clone)]
struct SlowDestroy {
    memory: MemoryBackend,
    answer: Arc<tokio::sync::Semaphore>,
}

#[derive(Debug)]
struct SlowDestroyNamespace {
    inner: NamespaceRef,
    answer: Arc<tokio::sync::Semaphore>,
}

impl SlowDestroy {
    fn wrap(&self, inner: NamespaceRef) -> NamespaceRef {
        Arc::new(SlowDestroyNamespace {
            inner,
            answer: Arc::clone(&self.answer),
        })
    }
}

#[async_trait::async_trait]
impl Backend for SlowDestroy {
    async fn namespace(&self, name: &str) -> coordinate::Result<NamespaceRef> {
        Ok(self.wrap(self.memory.namespace(name).await?))
    }

    async fn namespaces(
        &self,
    ) -> coordinate::Result<std::collections::BTreeMap<String, NamespaceRef>> {
        let all = self.memory.namespaces().await?;
        Ok(all.into_iter().map(|(n, ns)| (n, self.wrap(ns))).collect())
    }

    async fn summarize(&self) -> coordinate::Result<coordinate::Summary> {
        self.memory.summarize().await
    }
}

#[async_trait::async_trait]
impl coordinate::Namespace for SlowDestroyNamespace {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    async fn destroy(&self) -> coordinate::Result<()> {
        self.inner.destroy().await
    }

    async fn set_work_spec(
        &self,
        definition: coordinate::DataMap,
    ) -> coordinate::Result<WorkSpecRef> {
        self.inner.set_work_spec(definition).await
    }

    async fn work_spec(&self, name: &str) -> coordinate::Result<WorkSpecRef> {
        self.inner.work_spec(name).await
    }

    async fn destroy_work_spec(&self, name: &str) -> coordinate::Result<()> {
        let result = self.inner.destroy_work_spec(name).await;
        let _permit = self.answer.acquire().await.map_err(Error::backend)?;
        result
    }

    async fn work_spec_names(&self) -> coordinate::Result<Vec<String>> {
        self.inner.work_spec_names().await
    }

    async fn worker(&self, name: &str) -> coordinate::Result<coordinate::WorkerRef> {
        self.inner.worker(name).await
    }

    async fn workers(
        &self,
    ) -> coordinate::Result<std::collections::BTreeMap<String, coordinate::WorkerRef>> {
        self.inner.workers().await
    }

    async fn summarize(&self) -> coordinate::Result<coordinate::Summary> {
        self.inner.summarize().await
    }
}

/// A destroy through the cache marks dead the spec it had cached before,
/// not one made under the name while the destroy's answer was on its way:
/// the newer spec's unit handles go on without re-resolving.
#[tokio::test]
async fn a_destroy_marks_dead_only_what_was_cached_before_it() -> coordinate::Result<()> {
    let memory = MemoryBackend::new();
    memory
        .namespace("n")
        .await?
        .set_work_spec(data!({"name": "s"}))
        .await?;
    let answer = Arc::new(tokio::sync::Semaphore::new(0));
    let cache = Cache::new(Instrumented::new(SlowDestroy {
        memory: memory.clone(),
        answer: Arc::clone(&answer),
    }));
    let ns = cache.namespace("n").await?;
    let destroy = tokio::spawn({
        let ns = Arc::clone(&ns);
        async move { ns.destroy_work_spec("s").await }
    });
    while !memory
        .namespace("n")
        .await?
        .work_spec_names()
        .await?
        .is_empty()
    {
        tokio::task::yield_now().await;
    }
    let remade = ns.set_work_spec(data!({"name": "s"})).await?;
    let unit = remade
        .add_work_unit("u", data!({}), WorkUnitMeta::default())
        .await?;
    answer.add_permits(1);
    destroy.await.map_err(Error::backend)??;

    let before = cache.get_ref().calls();
    assert_eq!(unit.status().await?, WorkUnitStatus::Available);
    assert_eq!(cache.get_ref().calls().lookups(), before.lookups());
    assert_eq!(remade.work_unit("u").await?.name(), "u");
    Ok(())
}

/// A `make_attempt` whose unit was made again unheard (the cache is built
/// outside a runtime, so no change feed tells it) takes the recovery
/// another call made while its own call was on its way: the unit is
/// looked up once, not again for the attempt.
#[test]
fn make_attempt_takes_a_recovery_made_while_it_waited() -> coordinate::Result<()> {
    let memory = MemoryBackend::with_clock(MockClock::new());
    let slow = Instrumented::with_latency(memory.clone(), StdDuration::from_millis(200), |op| {
        op == Op::MakeAttempt
    });
    let cache = Arc::new(Cache::new(slow));
    let runtime = tokio::runtime::Runtime::new().map_err(Error::backend)?;
    runtime.block_on(async {
        seed(&cache).await?;
        let unit = cache.work_unit_at("n", "s", "u").await?;
        let worker = cache.worker_at("n", "w").await?;
        let spec = memory.work_spec_at("n", "s").await?;
        spec.delete_work_units(&WorkUnitQuery::all()).await?;
        spec.add_work_unit("u", data!({}), WorkUnitMeta::default())
            .await?;
        cache.get_ref().reset();

        let attempt = tokio::spawn({
            let (worker, unit) = (worker.clone(), unit.clone());
            async move { worker.make_attempt(&unit, Duration::minutes(5)).await }
        });
        // While the attempt's call waits, another call finds the unit gone
        // and recovers it.
        tokio::time::sleep(StdDuration::from_millis(50)).await;
        assert_eq!(unit.status().await?, WorkUnitStatus::Available);
        attempt.await.map_err(Error::backend)??;
        assert_eq!(unit.status().await?, WorkUnitStatus::Pending);
        assert_eq!(cache.get_ref().calls().get(Op::WorkUnit), 1);
        assert_eq!(cache.stats().work_units.gone_recoveries, 1);
        Ok(())
    })
}

/// Handles a call answers are no lookups: a worker's parent in another
/// namespace is adopted there without counting a hit of that namespace.
#[tokio::test]
async fn adopting_an_answer_elsewhere_counts_no_hit() -> coordinate::Result<()> {
    let (cache, _memory) = setup();
    let worker = cache.namespace("a").await?.worker("w").await?;
    let parent = cache.namespace("b").await?.worker("p").await?;
    worker.set_parent(Some(&parent)).await?;
    let hits = cache.stats().namespaces.hits;
    let found = worker.parent().await?.map(|p| p.name().to_owned());
    assert_eq!(found.as_deref(), Some("p"));
    assert_eq!(cache.stats().namespaces.hits, hits);
    Ok(())
}
