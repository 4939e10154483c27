//! (b, c) under random interleavings: held handles follow their names.

use coordinate::cache::Cache;
use coordinate::memory::MemoryBackend;
use coordinate::{data, Backend, BackendExt, Error, MockClock, WorkUnitMeta};
use proptest::prelude::*;

use crate::handles::{gone, route, Handle, Kind, Route};
use crate::names::{query, Query, NAMESPACES, SPECS, UNITS, WORKERS};
use crate::{block_on, config, ok};

/// A name path a held handle can be about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    Namespace(usize),
    Spec(usize, usize),
    Unit(usize, usize, usize),
    Worker(usize, usize),
}

/// A change, made through the cache or behind its back.
#[derive(Debug, Clone)]
enum Change {
    SetSpec {
        ns: usize,
        spec: usize,
        version: i8,
    },
    DestroySpec {
        ns: usize,
        spec: usize,
    },
    DestroyNamespace {
        ns: usize,
    },
    AddUnit {
        ns: usize,
        spec: usize,
        unit: usize,
        version: i8,
    },
    DeleteUnits {
        ns: usize,
        spec: usize,
        query: Query,
    },
    Worker {
        ns: usize,
        worker: usize,
        version: i8,
    },
}

#[derive(Debug, Clone)]
enum HeldStep {
    /// Applies a change, through the cache or behind its back.
    Change(Route, Change),
    /// Looks the target up through the cache and keeps the handle.
    Acquire(Target),
    /// Uses the kept handle and compares with a fresh resolution by name.
    Use(Target),
}

fn target() -> impl Strategy<Value = Target> {
    let ns = 0..NAMESPACES.len();
    let spec = 0..SPECS.len();
    let unit = 0..UNITS.len();
    let worker = 0..WORKERS.len();
    prop_oneof![
        ns.clone().prop_map(Target::Namespace),
        (ns.clone(), spec.clone()).prop_map(|(n, s)| Target::Spec(n, s)),
        (ns.clone(), spec, unit).prop_map(|(n, s, u)| Target::Unit(n, s, u)),
        (ns, worker).prop_map(|(n, w)| Target::Worker(n, w)),
    ]
}

fn change() -> impl Strategy<Value = Change> {
    let ns = 0..NAMESPACES.len();
    let spec = 0..SPECS.len();
    let unit = 0..UNITS.len();
    let worker = 0..WORKERS.len();
    prop_oneof![
        3 => (ns.clone(), spec.clone(), any::<i8>())
            .prop_map(|(ns, spec, version)| Change::SetSpec { ns, spec, version }),
        1 => (ns.clone(), spec.clone()).prop_map(|(ns, spec)| Change::DestroySpec { ns, spec }),
        1 => ns.clone().prop_map(|ns| Change::DestroyNamespace { ns }),
        3 => (ns.clone(), spec.clone(), unit, any::<i8>())
            .prop_map(|(ns, spec, unit, version)| Change::AddUnit { ns, spec, unit, version }),
        2 => (ns.clone(), spec, query())
            .prop_map(|(ns, spec, query)| Change::DeleteUnits { ns, spec, query }),
        2 => (ns, worker, any::<i8>())
            .prop_map(|(ns, worker, version)| Change::Worker { ns, worker, version }),
    ]
}

fn held_step() -> impl Strategy<Value = HeldStep> {
    prop_oneof![
        4 => (route(), change()).prop_map(|(r, c)| HeldStep::Change(r, c)),
        2 => target().prop_map(HeldStep::Acquire),
        4 => target().prop_map(HeldStep::Use),
    ]
}

/// Applies `change` through `b`; its errors (a missing spec…) do not matter.
async fn apply_change<B: Backend + ?Sized>(b: &B, change: &Change) -> coordinate::Result<()> {
    match change {
        Change::SetSpec { ns, spec, version } => {
            let def = data!({"name": SPECS[*spec], "version": *version});
            b.namespace(NAMESPACES[*ns])
                .await?
                .set_work_spec(def)
                .await?;
        }
        Change::DestroySpec { ns, spec } => {
            b.namespace(NAMESPACES[*ns])
                .await?
                .destroy_work_spec(SPECS[*spec])
                .await?;
        }
        Change::DestroyNamespace { ns } => b.namespace(NAMESPACES[*ns]).await?.destroy().await?,
        Change::AddUnit {
            ns,
            spec,
            unit,
            version,
        } => {
            b.work_spec_at(NAMESPACES[*ns], SPECS[*spec])
                .await?
                .add_work_unit(
                    UNITS[*unit],
                    data!({"version": *version}),
                    WorkUnitMeta::default(),
                )
                .await?;
        }
        Change::DeleteUnits { ns, spec, query } => {
            b.work_spec_at(NAMESPACES[*ns], SPECS[*spec])
                .await?
                .delete_work_units(&query.build())
                .await?;
        }
        Change::Worker {
            ns,
            worker,
            version,
        } => {
            b.worker_at(NAMESPACES[*ns], WORKERS[*worker])
                .await?
                .update(
                    data!({"version": *version}),
                    coordinate::Time::UNIX_EPOCH,
                    coordinate::Time::UNIX_EPOCH,
                    "",
                )
                .await?;
        }
    }
    Ok(())
}

async fn acquire<B: Backend + ?Sized>(b: &B, t: Target) -> coordinate::Result<Handle> {
    Ok(match t {
        Target::Namespace(n) => Handle::Namespace(b.namespace(NAMESPACES[n]).await?),
        Target::Spec(n, s) => Handle::Spec(b.work_spec_at(NAMESPACES[n], SPECS[s]).await?),
        Target::Unit(n, s, u) => {
            Handle::Unit(b.work_unit_at(NAMESPACES[n], SPECS[s], UNITS[u]).await?)
        }
        Target::Worker(n, w) => Handle::Worker(b.worker_at(NAMESPACES[n], WORKERS[w]).await?),
    })
}

/// What a handle's read answers: a namespace's spec names, or the
/// `version` in an object's data.
async fn observe(handle: &Handle) -> Result<String, Error> {
    Ok(match handle {
        Handle::Namespace(ns) => {
            let mut names = ns.work_spec_names().await?;
            names.sort();
            format!("{names:?}")
        }
        Handle::Spec(s) => format!("{:?}", s.data().await?.get("version")),
        Handle::Unit(u) => format!("{:?}", u.data().await?.get("version")),
        Handle::Worker(w) => format!("{:?}", w.data().await?.get("version")),
    })
}

/// The same read on the object that now has the target's name, resolved
/// directly on the backend without creating anything — except a namespace,
/// which is get-or-create.
async fn observe_by_name(memory: &MemoryBackend, t: Target) -> Result<String, Error> {
    // Whatever is missing, a call on the target's handle answers its `Gone`.
    let target_gone = gone(match t {
        Target::Namespace(_) => Kind::Namespace,
        Target::Spec(..) => Kind::Spec,
        Target::Unit(..) => Kind::Unit,
        Target::Worker(..) => Kind::Worker,
    });
    let existing_ns = |n: usize| {
        let target_gone = target_gone.clone();
        async move {
            memory
                .namespaces()
                .await?
                .remove(NAMESPACES[n])
                .ok_or(target_gone)
        }
    };
    let gone = |e: Error| match e {
        Error::NoSuchWorkSpec { .. } | Error::NoSuchWorkUnit { .. } | Error::Gone { .. } => {
            target_gone.clone()
        }
        other => other,
    };
    match t {
        Target::Namespace(n) => {
            observe(&Handle::Namespace(memory.namespace(NAMESPACES[n]).await?)).await
        }
        Target::Spec(n, s) => {
            let spec = existing_ns(n)
                .await?
                .work_spec(SPECS[s])
                .await
                .map_err(gone)?;
            observe(&Handle::Spec(spec)).await
        }
        Target::Unit(n, s, u) => {
            let spec = existing_ns(n)
                .await?
                .work_spec(SPECS[s])
                .await
                .map_err(gone)?;
            let unit = spec.work_unit(UNITS[u]).await.map_err(gone)?;
            observe(&Handle::Unit(unit)).await
        }
        Target::Worker(n, w) => {
            let worker = existing_ns(n)
                .await?
                .workers()
                .await?
                .remove(WORKERS[w])
                .ok_or(target_gone)?;
            observe(&Handle::Worker(worker)).await
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// **(b, c) Held handles follow their names, under any interleaving.**
    /// Whatever changes are made — through the cache or behind its back,
    /// deletes of every kind and re-creations, in any order — and however a
    /// cached handle was obtained (even a stale lookup), every read through
    /// it answers exactly what a fresh resolution of its name answers at
    /// that moment: the new object's state after a re-creation, `Gone` when
    /// the name has no object. Namespaces resolve get-or-create. A read
    /// through a spec, unit or worker handle never creates a namespace.
    #[test]
    fn held_handles_follow_their_names(steps in prop::collection::vec(held_step(), 1..50)) {
        block_on(async {
            let memory = MemoryBackend::with_clock(MockClock::new());
            let cache = Cache::new(memory.clone());
            let mut held: std::collections::HashMap<Target, Handle> = Default::default();
            for (i, step) in steps.iter().enumerate() {
                match step {
                    HeldStep::Change(Route::Cache, c) => drop(apply_change(&cache, c).await),
                    HeldStep::Change(Route::Behind, c) => drop(apply_change(&memory, c).await),
                    HeldStep::Acquire(t) => {
                        if let Ok(h) = acquire(&cache, *t).await {
                            held.insert(*t, h);
                        }
                    }
                    HeldStep::Use(t) => {
                        let Some(h) = held.get(t) else { continue };
                        let before: Vec<String> = ok(memory.namespaces().await)?.into_keys().collect();
                        let got = observe(h).await;
                        let after: Vec<String> = ok(memory.namespaces().await)?.into_keys().collect();
                        if !matches!(t, Target::Namespace(_)) {
                            prop_assert_eq!(&before, &after, "step {} {:?} created a namespace", i, step);
                        }
                        let want = observe_by_name(&memory, *t).await;
                        prop_assert_eq!(got, want, "step {} {:?}", i, step);
                    }
                }
            }
            Ok(())
        })?;
    }
}
