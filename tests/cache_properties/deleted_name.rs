//! (c) A cached handle whose name has no object answers `Gone`.

use coordinate::instrumented::Op;
use coordinate::{Backend, BackendExt, Error};
use proptest::prelude::*;

use crate::handles::{
    build, counted, delete, every_operation, gone, handle, kind, route, unit_delete, Handle, Kind,
    Route, UnitDelete,
};
use crate::{block_on, config, ok};

proptest! {
    #![proptest_config(config())]

    /// **(c) Deleted name.** Delete a spec, unit or worker (through the
    /// cache or behind its back) and do not recreate it. Then every fallible
    /// operation of the cached handle answers `Gone`, lookups of the name
    /// answer `NoSuchWorkSpec` / `NoSuchWorkUnit`, and the entry is evicted:
    /// the next lookup reaches the backend. Recovery creates nothing: a
    /// cached spec, unit or worker whose namespace was destroyed does not
    /// bring the namespace back, and a worker is not recreated either.
    ///
    /// A namespace follows the spec's get-or-create rule instead: a cached
    /// namespace handle stands for `namespace(name)`, so after its namespace
    /// is destroyed its operations act on a new, empty namespace of that
    /// name — exactly what a fresh `namespace(name)` would give — and never
    /// answer `Gone` (its `destroy` stays the spec's no-op).
    #[test]
    fn c_deleted_name_answers_gone(
        kind in kind(),
        deleted in route(),
        how in unit_delete(),
    ) {
        block_on(async {
            let (cache, memory) = counted();
            ok(build(&cache, 1).await)?;
            let cached = ok(handle(&cache, kind).await)?;
            match deleted {
                Route::Cache => ok(delete(&cache, kind, how).await)?,
                Route::Behind => ok(delete(&memory, kind, how).await)?,
            }
            for (op, result) in every_operation(&cached).await {
                match (kind, op) {
                    (Kind::Namespace, "work_spec") => prop_assert_eq!(
                        result.err(),
                        Some(Error::NoSuchWorkSpec { name: "s".into() })
                    ),
                    (Kind::Namespace, _) => prop_assert!(result.is_ok(), "cached {} {:?}", op, result),
                    _ => prop_assert_eq!(result.err(), Some(gone(kind)), "cached {}", op),
                }
            }
            if let Handle::Namespace(ns) = &cached {
                prop_assert!(ok(ns.work_spec_names().await)?.is_empty());
                prop_assert!(ok(ns.workers().await)?.is_empty());
            }
            let listed = ok(memory.namespaces().await)?;
            prop_assert_eq!(listed.contains_key("n"), !matches!(kind, Kind::Worker));
            let namespace_gone = matches!(kind, Kind::Namespace | Kind::Worker)
                || matches!((kind, how), (Kind::Unit, UnitDelete::DestroySpec));
            // The entry is gone: lookups reach the backend and answer NoSuch….
            let before = cache.get_ref().calls();
            match kind {
                Kind::Spec => {
                    let ns = ok(cache.namespace("n").await)?;
                    prop_assert_eq!(
                        ns.work_spec("s").await.err(),
                        Some(Error::NoSuchWorkSpec { name: "s".into() })
                    );
                    prop_assert_eq!(cache.get_ref().calls().get(Op::WorkSpec), before.get(Op::WorkSpec) + 1);
                }
                Kind::Unit => {
                    if namespace_gone {
                        prop_assert_eq!(
                            cache.work_unit_at("n", "s", "u").await.err(),
                            Some(Error::NoSuchWorkSpec { name: "s".into() })
                        );
                    } else {
                        prop_assert_eq!(
                            cache.work_unit_at("n", "s", "u").await.err(),
                            Some(Error::NoSuchWorkUnit { name: "u".into() })
                        );
                        prop_assert_eq!(cache.get_ref().calls().get(Op::WorkUnit), before.get(Op::WorkUnit) + 1);
                    }
                }
                Kind::Namespace | Kind::Worker => {
                    // Get-or-create: a new, empty namespace. (For a namespace
                    // handle, its own operations above already recreated it.)
                    let ns = ok(cache.namespace("n").await)?;
                    if matches!(kind, Kind::Worker) {
                        prop_assert_eq!(cache.get_ref().calls().get(Op::Namespace), before.get(Op::Namespace) + 1);
                    }
                    prop_assert!(ok(ns.work_spec_names().await)?.is_empty());
                    prop_assert!(ok(ns.workers().await)?.is_empty());
                    if let Handle::Worker(w) = &cached {
                        // The namespace is back but the worker is not: still Gone,
                        // and the old handle did not create it.
                        prop_assert_eq!(w.active().await.err(), Some(gone(Kind::Worker)));
                        prop_assert!(ok(ns.workers().await)?.is_empty());
                    }
                }
            }
            Ok(())
        })?;
    }
}
