//! Entries no lookup can reach any more — a destroyed namespace's specs and
//! units, the units of a query delete — are swept out of `Cache`, so that
//! they stop taking the room of live entries, whether new entries are
//! inserted or query deletes follow.

use std::time::Duration as StdDuration;

use coordinate::cache::{Cache, CacheStats};
use coordinate::memory::MemoryBackend;
use coordinate::{
    data, Backend, BackendExt, MockClock, NewWorkUnit, WorkSpecRef, WorkUnitMeta, WorkUnitQuery,
    WorkUnitStatus,
};

type Cached = Cache<MemoryBackend>;

/// Units per spec: more than the sweep's minimum of inserts between sweeps.
const UNITS: usize = 2_000;

fn names(prefix: &str) -> Vec<String> {
    (0..UNITS).map(|i| format!("{prefix}{i:05}")).collect()
}

/// A spec of `UNITS` units named `prefix…` in namespace `ns`, added through
/// `cache` (which caches every unit it answers).
async fn spec_of_units(cache: &Cached, ns: &str, prefix: &str) -> WorkSpecRef {
    let namespace = cache.namespace(ns).await.unwrap();
    let spec = namespace.set_work_spec(data!({"name": "s"})).await.unwrap();
    let units = names(prefix)
        .into_iter()
        .map(|name| NewWorkUnit::new(name, data!({})))
        .collect();
    spec.add_work_units(units).await.unwrap();
    spec
}

/// Looks every unit of `spec` up once; answers how many missed the cache.
async fn misses_looking_up(cache: &Cached, spec: &WorkSpecRef, prefix: &str) -> u64 {
    let before = cache.stats().work_units.misses;
    for name in names(prefix) {
        spec.work_unit(&name).await.unwrap();
    }
    cache.stats().work_units.misses - before
}

async fn settled(cache: &Cached) -> CacheStats {
    cache.run_pending_tasks().await;
    cache.stats()
}

async fn destroy_old(backend: &dyn Backend) {
    let old = backend.namespace("old").await.unwrap();
    old.destroy().await.unwrap();
}

/// Namespace "old"'s spec and units were swept; "new"'s units are cached.
async fn assert_old_namespace_swept(cache: &Cached) {
    let stats = settled(cache).await;
    assert_eq!(stats.work_specs.swept, 1, "{stats:?}");
    assert_eq!(stats.work_units.swept, UNITS as u64, "{stats:?}");
    assert_eq!(stats.work_units.entries, UNITS as u64, "{stats:?}");
}

/// The scenario the sweep exists for: a namespace of hot units destroyed,
/// and a new one of as many units in a cache with room for one of them.
async fn destroyed_namespace_leaves_room(cache: Cached) {
    let old = spec_of_units(&cache, "old", "u").await;
    for _ in 0..5 {
        assert_eq!(misses_looking_up(&cache, &old, "u").await, 0);
    }
    destroy_old(&cache).await;

    let new = spec_of_units(&cache, "new", "v").await;
    misses_looking_up(&cache, &new, "v").await;
    misses_looking_up(&cache, &new, "v").await;
    assert_eq!(
        misses_looking_up(&cache, &new, "v").await,
        0,
        "every new unit is cached: the destroyed ones made room"
    );

    assert_old_namespace_swept(&cache).await;
}

#[tokio::test]
async fn a_destroyed_namespace_leaves_room_for_new_units() {
    let memory = MemoryBackend::with_clock(MockClock::new());
    let cache = Cache::builder()
        .work_units(UNITS as u64 + 100)
        .build(memory);
    destroyed_namespace_leaves_room(cache).await;
}

#[tokio::test]
async fn expiring_entries_are_swept_too() {
    // With expiry, the entries live in moka alone (no front to walk).
    let memory = MemoryBackend::with_clock(MockClock::new());
    let cache = Cache::builder()
        .work_units(UNITS as u64 + 100)
        .time_to_live(StdDuration::from_secs(3_600))
        .build(memory);
    destroyed_namespace_leaves_room(cache).await;
}

#[tokio::test]
async fn a_query_delete_sweeps_only_the_specs_units() {
    let cache = Cache::new(MemoryBackend::with_clock(MockClock::new()));
    let kept = spec_of_units(&cache, "kept", "k").await;
    let emptied = spec_of_units(&cache, "emptied", "e").await;
    let query = WorkUnitQuery {
        statuses: vec![WorkUnitStatus::Available],
        ..WorkUnitQuery::default()
    };
    assert_eq!(
        emptied.delete_work_units(&query).await.unwrap(),
        UNITS as u64
    );
    // Enough inserts elsewhere to make a sweep due.
    spec_of_units(&cache, "more", "m").await;

    let stats = settled(&cache).await;
    assert_eq!(stats.work_units.swept, UNITS as u64, "{stats:?}");
    assert_eq!(stats.work_specs.swept, 0, "{stats:?}");
    assert_eq!(stats.work_units.entries, 2 * UNITS as u64, "{stats:?}");
    assert_eq!(
        misses_looking_up(&cache, &kept, "k").await,
        0,
        "the other spec's units stay cached"
    );
}

#[tokio::test]
async fn a_namespace_destroyed_behind_the_cache_is_swept_after_its_event() {
    let memory = MemoryBackend::with_clock(MockClock::new());
    let cache = Cache::new(memory.clone());
    spec_of_units(&cache, "old", "u").await;
    let applied = cache.stats().feed.events_applied;
    destroy_old(&memory).await;
    tokio::time::timeout(StdDuration::from_secs(30), async {
        while cache.stats().feed.events_applied == applied {
            tokio::time::sleep(StdDuration::from_millis(5)).await;
        }
    })
    .await
    .expect("the destroy's event reaches the cache");
    spec_of_units(&cache, "new", "v").await;

    assert_old_namespace_swept(&cache).await;
}

#[tokio::test]
async fn unreachable_units_are_removed_a_few_per_insert() {
    let cache = Cache::new(MemoryBackend::with_clock(MockClock::new()));
    spec_of_units(&cache, "old", "u").await;
    destroy_old(&cache).await;
    let swept = || cache.stats().work_units.swept;
    // The first insert finds the old units, the second removes some.
    let new = cache.namespace("new").await.unwrap();
    let spec = new.set_work_spec(data!({"name": "s"})).await.unwrap();
    assert!(
        (1..UNITS as u64).contains(&swept()),
        "no insert pays for removing every unit: {}",
        swept()
    );
    let mut inserts = 0;
    while swept() < UNITS as u64 {
        inserts += 1;
        assert!(inserts <= 100, "the units are all removed: {}", swept());
        spec.add_work_unit(&format!("v{inserts}"), data!({}), WorkUnitMeta::default())
            .await
            .unwrap();
    }
}

/// Query deletes make sweeps due as inserts do, so that a cache that
/// mostly hits while units are deleted keeps a bounded record of what to
/// sweep: the deleted units go with the deletes that follow, nothing
/// inserted.
#[tokio::test]
async fn query_deletes_sweep_with_nothing_inserted() {
    let memory = MemoryBackend::with_clock(MockClock::new());
    let cache = Cache::new(memory.clone());
    let spec = spec_of_units(&cache, "n", "u").await;
    let swept = || cache.stats().work_units.swept;
    let loads = cache.stats().work_units.backend_loads;
    assert_eq!(
        spec.delete_work_units(&WorkUnitQuery::all()).await.unwrap(),
        UNITS as u64
    );
    // The delete found the units to sweep; the deletes that follow remove
    // them, a few each: units added behind the cache, deleted through it.
    let behind = memory.work_spec_at("n", "s").await.unwrap();
    let mut deletes = 0;
    while swept() < UNITS as u64 {
        deletes += 1;
        assert!(deletes <= 100, "the units are all removed: {}", swept());
        let name = format!("d{deletes}");
        behind
            .add_work_unit(&name, data!({}), WorkUnitMeta::default())
            .await
            .unwrap();
        let available = WorkUnitQuery {
            statuses: vec![WorkUnitStatus::Available],
            ..WorkUnitQuery::default()
        };
        assert_eq!(spec.delete_work_units(&available).await.unwrap(), 1);
    }
    assert_eq!(
        cache.stats().work_units.backend_loads,
        loads,
        "nothing loaded"
    );
}
