//! (b) A cached handle follows its name to a re-created object.

use coordinate::Backend;
use proptest::prelude::*;

use crate::handles::{
    build, counted, delete, every_operation, gone, handle, kind, read_version, route, unit_delete,
    Route,
};
use crate::{block_on, config, ok};

proptest! {
    #![proptest_config(config())]

    /// **(b) Recreated name.** Take a cached handle and a plain handle to
    /// the same namespace, spec, unit or worker. Delete the object (through
    /// the cache or behind its back, for units by any kind of query or with
    /// their spec) and create a new one under the same name (again either
    /// way). Then the cached handle acts on the new object — its reads see
    /// the new object's data and none of its operations answers `Gone` —
    /// while the plain handle answers `Gone`.
    #[test]
    fn b_recreated_name_follows_the_new_object(
        kind in kind(),
        deleted in route(),
        recreated in route(),
        how in unit_delete(),
        lookups_before in 0usize..3,
    ) {
        block_on(async {
            let (cache, memory) = counted();
            ok(build(&cache, 1).await)?;
            let cached = ok(handle(&cache, kind).await)?;
            let plain = ok(handle(&memory, kind).await)?;
            for _ in 0..lookups_before {
                ok(handle(&cache, kind).await)?;
            }
            match deleted {
                Route::Cache => ok(delete(&cache, kind, how).await)?,
                Route::Behind => ok(delete(&memory, kind, how).await)?,
            }
            match recreated {
                Route::Cache => ok(build(&cache, 2).await)?,
                Route::Behind => ok(build(&memory, 2).await)?,
            }
            prop_assert_eq!(ok(read_version(&cached).await)?, 2);
            for (op, result) in every_operation(&cached).await {
                prop_assert!(result.is_ok(), "cached {} answered {:?}", op, result);
            }
            prop_assert_eq!(read_version(&plain).await.err(), Some(gone(kind)));
            // The cache did not create anything on its own: exactly one of each.
            let names = ok(ok(memory.namespace("n").await)?.work_spec_names().await)?;
            prop_assert_eq!(names, vec!["s".to_string()]);
            Ok(())
        })?;
    }
}
