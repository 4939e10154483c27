//! A dropped `Cache`: the handles it gave out keep working, uncached (no
//! lookup is answered from what the cache held), and what it held keeps
//! neither them nor the backend alive.

mod common {
    pub mod fixture;
}

use std::sync::{Arc, Weak};

use common::fixture::spec_with_unit;
use coordinate::instrumented::{Instrumented, Op};
use coordinate::{data, Backend, Cache, MemoryBackend, MockClock, WorkUnitMeta, WorkUnitRef};

#[tokio::test]
async fn handles_of_a_dropped_cache_look_names_up_in_the_backend() -> coordinate::Result<()> {
    let backend = Instrumented::new(MemoryBackend::with_clock(MockClock::new()));
    let cache = Cache::new(backend.clone());
    let spec = spec_with_unit(&cache).await?;
    let first = spec.work_unit("u").await?;
    let lookups = backend.calls().get(Op::WorkUnit);
    assert!(Arc::ptr_eq(&first, &spec.work_unit("u").await?), "a hit");
    assert_eq!(backend.calls().get(Op::WorkUnit), lookups);

    drop(cache);
    for n in 1..=3 {
        let unit = spec.work_unit("u").await?;
        assert_eq!(unit.name(), "u");
        assert_eq!(backend.calls().get(Op::WorkUnit), lookups + n, "lookup {n}");
    }
    Ok(())
}

#[tokio::test]
async fn what_a_dropped_cache_held_keeps_no_handle_alive() -> coordinate::Result<()> {
    let cache = Cache::new(MemoryBackend::with_clock(MockClock::new()));
    let spec = cache
        .namespace("n")
        .await?
        .set_work_spec(data!({"name": "s"}))
        .await?;
    let mut units: Vec<Weak<dyn coordinate::WorkUnit>> = Vec::new();
    for name in ["a", "b", "c"] {
        let unit: WorkUnitRef = spec
            .add_work_unit(name, data!({}), WorkUnitMeta::default())
            .await?;
        let looked_up = spec.work_unit(name).await?;
        assert!(Arc::ptr_eq(&unit, &looked_up), "{name} is cached");
        units.push(Arc::downgrade(&unit));
    }
    drop(cache);
    // The unit handles lived only in the cache's entries.
    assert!(units.iter().all(|unit| unit.upgrade().is_none()));
    Ok(())
}
