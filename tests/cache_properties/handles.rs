//! The handles the name-identity properties are about, and how to build,
//! delete, acquire and read them.

use coordinate::cache::Cache;
use coordinate::instrumented::Instrumented;
use coordinate::memory::MemoryBackend;
use coordinate::{
    data, Backend, BackendExt, Error, MockClock, ObjectKind, WorkUnitMeta, WorkUnitQuery,
    WorkUnitStatus,
};
use proptest::prelude::*;

/// A fieldless enum, and the strategy that picks any of its variants (each
/// listed once, so none can be left out of the choice).
macro_rules! choice {
    (
        $(#[$doc:meta])*
        enum $name:ident, chosen by $strategy:ident {
            $($(#[$vdoc:meta])* $variant:ident),+ $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub(crate) enum $name {
            $($(#[$vdoc])* $variant),+
        }

        pub(crate) fn $strategy() -> impl Strategy<Value = $name> {
            prop_oneof![$(Just($name::$variant)),+]
        }
    };
}

choice! {
    /// The kind of handle a name-identity property is about.
    enum Kind, chosen by kind {
        Namespace,
        Spec,
        Unit,
        Worker,
    }
}

/// What a call on a handle of `kind` answers when its object is gone.
pub(crate) fn gone(kind: Kind) -> Error {
    let kind = match kind {
        Kind::Namespace => ObjectKind::Namespace,
        Kind::Spec => ObjectKind::WorkSpec,
        Kind::Unit => ObjectKind::WorkUnit,
        Kind::Worker => ObjectKind::Worker,
    };
    Error::Gone { kind }
}

choice! {
    /// Where a delete or a re-creation happens.
    enum Route, chosen by route {
        /// Through the cache.
        Cache,
        /// Directly on the inner backend, behind the cache's back.
        Behind,
    }
}

choice! {
    /// How a unit is deleted.
    enum UnitDelete, chosen by unit_delete {
        All,
        ByName,
        ByStatus,
        DestroySpec,
    }
}

pub(crate) type Counted = Cache<Instrumented<MemoryBackend>>;

/// A cache over a counted memory backend, and the memory backend itself.
pub(crate) fn counted() -> (Counted, MemoryBackend) {
    let memory = MemoryBackend::with_clock(MockClock::new());
    (Cache::new(Instrumented::new(memory.clone())), memory)
}

/// Creates namespace "n", spec "s", unit "u" and worker "w" through `b`,
/// each carrying `version` in its data.
pub(crate) async fn build<B: Backend + ?Sized>(b: &B, version: i64) -> coordinate::Result<()> {
    let ns = b.namespace("n").await?;
    let spec = ns
        .set_work_spec(data!({"name": "s", "version": version}))
        .await?;
    spec.add_work_unit("u", data!({"version": version}), WorkUnitMeta::default())
        .await?;
    let w = ns.worker("w").await?;
    w.update(
        data!({"version": version}),
        coordinate::Time::UNIX_EPOCH,
        coordinate::Time::UNIX_EPOCH,
        "",
    )
    .await
}

/// Deletes the object of `kind` named as in [`build`], through `b`.
pub(crate) async fn delete<B: Backend + ?Sized>(
    b: &B,
    kind: Kind,
    how: UnitDelete,
) -> coordinate::Result<()> {
    let ns = b.namespace("n").await?;
    match kind {
        // Workers are only ever deleted with their namespace.
        Kind::Namespace | Kind::Worker => ns.destroy().await,
        Kind::Spec => ns.destroy_work_spec("s").await,
        Kind::Unit => {
            let spec = ns.work_spec("s").await?;
            match how {
                UnitDelete::All => spec
                    .delete_work_units(&WorkUnitQuery::all())
                    .await
                    .map(drop),
                UnitDelete::ByName => spec
                    .delete_work_units(&WorkUnitQuery::names(["u"]))
                    .await
                    .map(drop),
                UnitDelete::ByStatus => spec
                    .delete_work_units(&WorkUnitQuery::statuses([WorkUnitStatus::Available]))
                    .await
                    .map(drop),
                UnitDelete::DestroySpec => ns.destroy_work_spec("s").await,
            }
        }
    }
}

/// The `version` the object of `kind` behind `b`'s handles reports, read
/// through one fallible call on `handle`.
pub(crate) async fn read_version(handle: &Handle) -> coordinate::Result<i64> {
    let data = match handle {
        Handle::Namespace(ns) => ns.work_spec("s").await?.data().await?,
        Handle::Spec(s) => s.data().await?,
        Handle::Unit(u) => u.data().await?,
        Handle::Worker(w) => w.data().await?,
    };
    Ok(data.get("version").and_then(|v| v.as_i64()).unwrap_or(-1))
}

/// Every fallible operation of a handle, with harmless arguments; used to
/// check that *all* of them answer alike.
pub(crate) async fn every_operation(handle: &Handle) -> Vec<(&'static str, Result<(), Error>)> {
    let mut out = Vec::new();
    match handle {
        Handle::Namespace(ns) => {
            out.push(("work_spec_names", ns.work_spec_names().await.map(drop)));
            out.push(("workers", ns.workers().await.map(drop)));
            out.push(("summarize", ns.summarize().await.map(drop)));
            out.push(("work_spec", ns.work_spec("s").await.map(drop)));
        }
        Handle::Spec(s) => {
            out.push(("data", s.data().await.map(drop)));
            out.push(("meta", s.meta(true).await.map(drop)));
            out.push(("work_unit", s.work_unit("u").await.map(drop)));
            out.push((
                "work_units",
                s.work_units(&WorkUnitQuery::all()).await.map(drop),
            ));
            out.push(("count", s.count_work_unit_status().await.map(drop)));
            out.push(("summarize", s.summarize().await.map(drop)));
            out.push((
                "set_priorities",
                s.set_work_unit_priorities(&WorkUnitQuery::all(), 1.0).await,
            ));
        }
        Handle::Unit(u) => {
            out.push(("data", u.data().await.map(drop)));
            out.push(("status", u.status().await.map(drop)));
            out.push(("meta", u.meta().await.map(drop)));
            out.push(("priority", u.priority().await.map(drop)));
            out.push(("set_priority", u.set_priority(2.0).await));
            out.push(("active_attempt", u.active_attempt().await.map(drop)));
            out.push(("attempts", u.attempts().await.map(drop)));
            out.push(("num_attempts", u.num_attempts().await.map(drop)));
        }
        Handle::Worker(w) => {
            out.push(("active", w.active().await.map(drop)));
            out.push(("mode", w.mode().await.map(drop)));
            out.push(("data", w.data().await.map(drop)));
            out.push(("parent", w.parent().await.map(drop)));
            out.push(("children", w.children().await.map(drop)));
            out.push(("active_attempts", w.active_attempts().await.map(drop)));
        }
    }
    out
}

/// A handle of any kind.
pub(crate) enum Handle {
    Namespace(coordinate::NamespaceRef),
    Spec(coordinate::WorkSpecRef),
    Unit(coordinate::WorkUnitRef),
    Worker(coordinate::WorkerRef),
}

pub(crate) async fn handle<B: Backend + ?Sized>(b: &B, kind: Kind) -> coordinate::Result<Handle> {
    Ok(match kind {
        Kind::Namespace => Handle::Namespace(b.namespace("n").await?),
        Kind::Spec => Handle::Spec(b.work_spec_at("n", "s").await?),
        Kind::Unit => Handle::Unit(b.work_unit_at("n", "s", "u").await?),
        Kind::Worker => Handle::Worker(b.worker_at("n", "w").await?),
    })
}
