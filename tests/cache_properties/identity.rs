//! (d) Identity: a cached name returns the very same handle.

use std::sync::Arc;

use coordinate::cache::Cache;
use coordinate::memory::MemoryBackend;
use coordinate::{data, Backend, BackendExt, MockClock, WorkUnitMeta, WorkUnitQuery};
use proptest::prelude::*;

use crate::names::{UNITS, WORKERS};
use crate::{block_on, config, ok};

/// An identity step on one of a few units (and their spec and worker).
#[derive(Debug, Clone)]
enum IdStep {
    /// Looks the unit up and checks identity against the last lookup.
    Lookup(usize),
    /// Deletes the unit through the cache and adds it again.
    Recreate(usize),
    /// Re-adds (upserts) the unit: same object, same handle.
    Upsert(usize),
    /// Looks the spec up.
    LookupSpec,
    /// Destroys the spec through the cache and recreates it with all units.
    RecreateSpec,
    /// Looks a worker up.
    LookupWorker(usize),
}

fn id_step() -> impl Strategy<Value = IdStep> {
    prop_oneof![
        4 => (0..UNITS.len()).prop_map(IdStep::Lookup),
        2 => (0..UNITS.len()).prop_map(IdStep::Recreate),
        1 => (0..UNITS.len()).prop_map(IdStep::Upsert),
        2 => Just(IdStep::LookupSpec),
        1 => Just(IdStep::RecreateSpec),
        2 => (0..WORKERS.len()).prop_map(IdStep::LookupWorker),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// **(d) Identity.** While an entry stays cached, every lookup of its
    /// name returns the very same handle (`Arc::ptr_eq`), including handles
    /// returned by upserts; after it is invalidated by a delete through the
    /// cache, the next lookup returns a fresh handle.
    #[test]
    fn d_identity(steps in prop::collection::vec(id_step(), 1..40)) {
        block_on(async {
            let cache = Cache::new(MemoryBackend::with_clock(MockClock::new()));
            let ns = ok(cache.namespace("n").await)?;
            let spec = ok(ns.set_work_spec(data!({"name": "s"})).await)?;
            let mut units = Vec::new();
            for name in UNITS {
                units.push(ok(spec.add_work_unit(name, data!({}), WorkUnitMeta::default()).await)?);
            }
            let mut spec = spec;
            let mut workers = Vec::new();
            for name in WORKERS {
                workers.push(ok(ns.worker(name).await)?);
            }
            for step in &steps {
                match step {
                    IdStep::Lookup(i) => {
                        let u = ok(spec.work_unit(UNITS[*i]).await)?;
                        prop_assert!(Arc::ptr_eq(&u, &units[*i]), "{:?}", step);
                        let again = ok(cache.work_unit_at("n", "s", UNITS[*i]).await)?;
                        prop_assert!(Arc::ptr_eq(&again, &u));
                    }
                    IdStep::Upsert(i) => {
                        let u = ok(spec.add_work_unit(UNITS[*i], data!({}), WorkUnitMeta::default()).await)?;
                        prop_assert!(Arc::ptr_eq(&u, &units[*i]), "{:?}", step);
                    }
                    IdStep::Recreate(i) => {
                        ok(spec.delete_work_units(&WorkUnitQuery::names([UNITS[*i]])).await)?;
                        let u = ok(spec.add_work_unit(UNITS[*i], data!({}), WorkUnitMeta::default()).await)?;
                        prop_assert!(!Arc::ptr_eq(&u, &units[*i]), "{:?}", step);
                        units[*i] = u;
                    }
                    IdStep::LookupSpec => {
                        let s = ok(ns.work_spec("s").await)?;
                        prop_assert!(Arc::ptr_eq(&s, &spec), "{:?}", step);
                    }
                    IdStep::RecreateSpec => {
                        ok(ns.destroy_work_spec("s").await)?;
                        let s = ok(ns.set_work_spec(data!({"name": "s"})).await)?;
                        prop_assert!(!Arc::ptr_eq(&s, &spec), "{:?}", step);
                        spec = s;
                        for (i, name) in UNITS.iter().enumerate() {
                            let u = ok(spec.add_work_unit(name, data!({}), WorkUnitMeta::default()).await)?;
                            prop_assert!(!Arc::ptr_eq(&u, &units[i]));
                            units[i] = u;
                        }
                    }
                    IdStep::LookupWorker(i) => {
                        let w = ok(ns.worker(WORKERS[*i]).await)?;
                        prop_assert!(Arc::ptr_eq(&w, &workers[*i]), "{:?}", step);
                    }
                }
            }
            Ok(())
        })?;
    }
}
