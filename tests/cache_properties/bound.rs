//! (f) Bound: the cache never holds more entries than its capacity.

use coordinate::cache::Cache;
use coordinate::memory::MemoryBackend;
use coordinate::{data, Backend, MockClock, WorkUnitMeta, WorkUnitQuery};
use proptest::prelude::*;

use crate::{block_on, config, ok};

proptest! {
    #![proptest_config(config())]

    /// **(f) Bound.** However many names are looked up or created — far
    /// more than the capacity — the number of cached entries of each kind
    /// stays within its capacity (once moka's pending maintenance has run).
    #[test]
    fn f_bound(capacity in 1u64..48, factor in 3u64..20) {
        block_on(async {
            let cache = Cache::builder()
                .work_units(capacity)
                .workers(capacity)
                .work_specs(capacity)
                .build(MemoryBackend::with_clock(MockClock::new()));
            let ns = ok(cache.namespace("n").await)?;
            let spec = ok(ns.set_work_spec(data!({"name": "s"})).await)?;
            let count = capacity * factor;
            for i in 0..count {
                let name = format!("x{i}");
                ok(spec.add_work_unit(&name, data!({}), WorkUnitMeta::default()).await)?;
                ok(spec.work_unit(&name).await)?;
                ok(ns.worker(&name).await)?;
                if i % 4 == 0 {
                    ok(ns.set_work_spec(data!({"name": name})).await)?;
                }
            }
            cache.run_pending_tasks().await;
            let stats = cache.stats();
            prop_assert!(stats.work_units.entries <= capacity, "{:?}", stats.work_units);
            prop_assert!(stats.workers.entries <= capacity, "{:?}", stats.workers);
            prop_assert!(stats.work_specs.entries <= capacity, "{:?}", stats.work_specs);
            // The size bound, not luck, kept them there.
            prop_assert!(stats.work_units.evictions > 0, "{:?}", stats.work_units);
            prop_assert!(stats.workers.evictions > 0, "{:?}", stats.workers);
            // Evicted handles were not lost: every unit is still reachable.
            prop_assert_eq!(ok(spec.work_units(&WorkUnitQuery::all()).await)?.len() as u64, count);
            Ok(())
        })?;
    }
}
