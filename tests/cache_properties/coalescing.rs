//! (e) Coalescing: concurrent lookups of one name make one backend lookup.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use coordinate::cache::Cache;
use coordinate::instrumented::{Instrumented, Op};
use coordinate::memory::MemoryBackend;
use coordinate::{data, Backend, MockClock, WorkUnitMeta};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::handles::{build, kind, Kind};
use crate::{config, ok};

proptest! {
    #![proptest_config(config())]

    /// **(e) Coalescing.** N concurrent lookups of one name that is not
    /// cached — a namespace, spec, unit or worker, existing or (for specs
    /// and units) absent — make exactly one backend lookup; all callers get
    /// the same handle, or the same `NoSuch…` error.
    #[test]
    fn e_coalescing(kind in kind(), tasks in 2usize..48, exists in any::<bool>()) {
        // One thread that takes wake-ups from other threads (the end of the
        // load's latency, slept on the blocking pool) only when none of its
        // own tasks is ready: every task reaches the lookup before the load
        // can be seen to finish, however long the machine delays them.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .global_queue_interval(u32::MAX)
            .build()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        rt.block_on(async {
            let memory = MemoryBackend::with_clock(MockClock::new());
            ok(build(&memory, 1).await)?;
            let n = ok(memory.namespace("n").await)?;
            ok(n.set_work_spec(data!({"name": "sx"})).await)?;
            ok(ok(n.work_spec("s").await)?.add_work_unit("ux", data!({}), WorkUnitMeta::default()).await)?;
            // Namespaces and workers are get-or-create: a new name is created once.
            let (exists, name) = match kind {
                Kind::Namespace | Kind::Worker => (true, "new"),
                _ if exists => (true, "x"),
                _ => (false, "absent"),
            };
            let cache = Arc::new(Cache::new(Instrumented::with_lookup_latency(
                memory,
                StdDuration::from_millis(20),
            )));
            // Parents are cached first; only the last step misses.
            let ns = ok(cache.namespace("n").await)?;
            let spec = ok(ns.work_spec("s").await)?;
            cache.get_ref().reset();
            let barrier = Arc::new(tokio::sync::Barrier::new(tasks));
            let mut joins = Vec::new();
            for _ in 0..tasks {
                let (cache, ns, spec, barrier) = (cache.clone(), ns.clone(), spec.clone(), barrier.clone());
                joins.push(tokio::spawn(async move {
                    barrier.wait().await;
                    let ptr = |p: *const ()| p as usize;
                    match kind {
                        Kind::Namespace => cache.namespace(&format!("n{name}")).await.map(|h| ptr(Arc::as_ptr(&h).cast())),
                        Kind::Spec => ns.work_spec(&format!("s{name}")).await.map(|h| ptr(Arc::as_ptr(&h).cast())),
                        Kind::Unit => spec.work_unit(&format!("u{name}")).await.map(|h| ptr(Arc::as_ptr(&h).cast())),
                        Kind::Worker => ns.worker(&format!("w{name}")).await.map(|h| ptr(Arc::as_ptr(&h).cast())),
                    }
                }));
            }
            let mut results = Vec::new();
            for j in joins {
                results.push(j.await.map_err(|e| TestCaseError::fail(e.to_string()))?);
            }
            for r in &results {
                prop_assert_eq!(r, &results[0]);
            }
            prop_assert_eq!(results[0].is_ok(), exists);
            let op = match kind {
                Kind::Namespace => Op::Namespace,
                Kind::Spec => Op::WorkSpec,
                Kind::Unit => Op::WorkUnit,
                Kind::Worker => Op::Worker,
            };
            prop_assert_eq!(cache.get_ref().calls().get(op), 1, "{:?}", cache.get_ref().calls());
            prop_assert_eq!(cache.get_ref().calls().total(), 1);
            Ok(())
        })?;
    }
}
