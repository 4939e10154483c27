//! `Cache::into_inner`: the backend comes back by value only once no handle
//! the cache gave out is alive; until then the cache comes back, emptied
//! but working.

mod common {
    pub mod fixture;
}

use common::fixture::spec_with_unit;
use coordinate::instrumented::{Instrumented, Op};
use coordinate::{
    AttemptRequest, Backend, BackendExt, Cache, MemoryBackend, MockClock, WorkUnitStatus,
};

type Counted = Cache<Instrumented<MemoryBackend>>;

fn counted() -> Counted {
    Cache::builder()
        .work_units(64)
        .build(Instrumented::new(MemoryBackend::with_clock(
            MockClock::new(),
        )))
}

#[tokio::test]
async fn a_live_handle_keeps_the_backend_and_gives_back_a_working_cache() -> coordinate::Result<()>
{
    let cache = counted();
    assert!(cache.stats().feed.subscribed, "the memory feed is followed");
    let spec = spec_with_unit(&cache).await?;
    let worker = cache.worker_at("n", "w").await?;
    let attempt = worker
        .request_attempts(&AttemptRequest::default())
        .await?
        .pop()
        .expect("one attempt");
    drop(spec);

    // Attempt and worker handles share the backend: the cache comes back.
    let Err(cache) = cache.into_inner() else {
        panic!("the backend was handed out while handles were alive")
    };
    assert_eq!(cache.stats().work_units.entries, 0, "entries were dropped");
    assert!(cache.stats().feed.subscribed, "still following the feed");

    // It still caches: a reload, then a hit.
    cache.get_ref().reset();
    let u1 = cache.work_unit_at("n", "s", "u").await?;
    let u2 = cache.work_unit_at("n", "s", "u").await?;
    assert!(std::sync::Arc::ptr_eq(&u1, &u2));
    assert_eq!(cache.get_ref().calls().get(Op::WorkUnit), 1);
    assert_eq!(u1.status().await?, WorkUnitStatus::Pending);
    drop((u1, u2));

    // The returned cache's handles and the old ones both count.
    let Err(cache) = cache.into_inner() else {
        panic!("the backend was handed out while an attempt was alive")
    };
    attempt.finish(None).await?;
    drop((attempt, worker));

    let backend = match cache.into_inner() {
        Ok(backend) => backend,
        Err(cache) => panic!("no handle is alive, yet the cache kept its backend: {cache:?}"),
    };
    // The very backend the cache wrapped, with everything done through it.
    assert!(backend.calls().total() > 0);
    let unit = backend.work_unit_at("n", "s", "u").await?;
    assert_eq!(unit.status().await?, WorkUnitStatus::Finished);
    Ok(())
}

#[tokio::test]
async fn a_cache_without_handles_gives_its_backend_back_even_with_entries() -> coordinate::Result<()>
{
    let memory = MemoryBackend::with_clock(MockClock::new());
    let cache = Cache::new(memory.clone());
    for name in ["a", "b", "c"] {
        cache.namespace(name).await?.worker("w").await?;
    }
    cache.run_pending_tasks().await;
    assert!(cache.stats().namespaces.entries > 0, "entries hold handles");
    let back = cache.into_inner().expect("no handle outside the cache");
    assert_eq!(back.namespaces().await?.len(), 3);
    // A fresh cache over the returned backend works as the first did.
    let again = Cache::new(back);
    assert_eq!(again.worker_at("a", "w").await?.name(), "w");
    Ok(())
}
