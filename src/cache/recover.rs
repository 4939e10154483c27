//! Following a name: a cached handle whose object is gone re-resolves its
//! name through its cached parent and retries, a bounded number of times.

use std::future::Future;
use std::sync::Arc;

use super::handle::Handle;
use super::link::Link;
use super::shared::Shared;
use crate::error::{Error, ObjectKind, Result};

/// Calls `method(args)` on the upstream object of a cached handle through
/// [`run`], for the operations that need no bookkeeping in the cache.
macro_rules! forward {
    ($handle:ident, $method:ident($($arg:expr),* $(,)?)) => {
        $crate::cache::recover::run(&$handle.shared, $handle, |link| async move {
            link.upstream.$method($($arg),*).await
        })
        .await
    };
}
pub(super) use forward;

/// How many times one call re-resolves its handle after `Gone`. Two, so a
/// handle whose replacement was itself replaced behind the cache's back
/// still converges; calls whose `Gone` may be about an argument
/// (`make_attempt`, `set_parent`) re-resolve the argument and the handle
/// in turn, each as many times.
pub(super) const MAX_RECOVERIES: u32 = 2;

/// The current link of `handle`, re-resolved first if its object is known
/// to be deleted or the link is outdated.
pub(super) async fn live_link<W: Handle>(
    shared: &Shared,
    handle: &W,
    budget: &mut u32,
    create: bool,
) -> Result<Arc<Link<W::Up>>> {
    let link = handle.link_cell().load_full();
    if link.is_dead() && *budget > 0 {
        *budget -= 1;
        return recover(shared, handle, &link, create).await;
    }
    if shared.outdated::<W>(&link) {
        tracing::debug!(
            kind = %W::KIND,
            "handle from before a cache flush; re-resolving its name"
        );
        return rebind(handle, create).await;
    }
    Ok(link)
}

/// Runs `op` on the upstream object; on `Gone`, re-resolves the handle's
/// name and retries, at most [`MAX_RECOVERIES`] times in all.
pub(super) async fn run<W, T, F, Fut>(shared: &Shared, handle: &W, op: F) -> Result<T>
where
    W: Handle,
    F: FnMut(Arc<Link<W::Up>>) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    run_with_budget(shared, handle, MAX_RECOVERIES, true, op).await
}

/// [`run`] with at most `budget` re-resolutions; `create` as in
/// [`Handle::resolve`].
pub(super) async fn run_with_budget<W, T, F, Fut>(
    shared: &Shared,
    handle: &W,
    mut budget: u32,
    create: bool,
    op: F,
) -> Result<T>
where
    W: Handle,
    F: FnMut(Arc<Link<W::Up>>) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let link = live_link(shared, handle, &mut budget, create).await?;
    recovering(shared, handle, link, budget, create, op).await
}

/// Runs `op`, whose argument is not one of the cache's handles and may be
/// refused whatever the state of this handle's object (`WrongBackend`), on
/// the current link, even one known to be dead; on `Gone`, re-resolves the
/// handle (never creating) and retries once.
pub(super) async fn run_asking_first<W, T, F, Fut>(shared: &Shared, handle: &W, op: F) -> Result<T>
where
    W: Handle,
    F: FnMut(Arc<Link<W::Up>>) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let link = handle.link_cell().load_full();
    recovering(shared, handle, link, 1, false, op).await
}

/// Runs `op` on `link`; on `Gone`, re-resolves the handle's name and
/// retries, at most `budget` times.
async fn recovering<W, T, F, Fut>(
    shared: &Shared,
    handle: &W,
    mut link: Arc<Link<W::Up>>,
    mut budget: u32,
    create: bool,
    mut op: F,
) -> Result<T>
where
    W: Handle,
    F: FnMut(Arc<Link<W::Up>>) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    loop {
        match op(Arc::clone(&link)).await {
            Err(Error::Gone { .. }) if budget > 0 => {
                budget -= 1;
                link = recover(shared, handle, &link, create).await?;
            }
            other => return other.map_err(|e| e.on(W::KIND)),
        }
    }
}

/// Swaps `handle` to the object that now has its name. `Gone` if there is
/// none (the stale entry has been dropped by then).
pub(super) async fn recover<W: Handle>(
    shared: &Shared,
    handle: &W,
    dead: &Arc<Link<W::Up>>,
    create: bool,
) -> Result<Arc<Link<W::Up>>> {
    let current = handle.link_cell().load_full();
    if !Arc::ptr_eq(&current, dead) && !current.is_dead() {
        // Another caller already recovered this handle.
        return Ok(current);
    }
    shared.counters::<W>().recoveries.inc();
    tracing::debug!(
        kind = %W::KIND,
        "cached handle lost its object; re-resolving its name"
    );
    dead.mark_dead();
    current.mark_dead();
    rebind(handle, create).await
}

/// Binds `handle` to the link of the handle now cached under its name.
/// `Gone` if there is none. Cancel-safe: cancelled, the handle keeps its
/// link, and its next call re-resolves again.
///
/// A namespace handle is bound anew only by its own calls, which re-run its
/// get-or-create lookup (`create`). A child's recovery (never creating)
/// uses the namespace now under the name for that call alone: the old
/// handle's `destroy` still acts on the namespace it was bound to, a no-op
/// once that is gone, and never on a newer one its children found.
pub(super) async fn rebind<W: Handle>(handle: &W, create: bool) -> Result<Arc<Link<W::Up>>> {
    let gone = Error::Gone { kind: W::KIND };
    let fresh = handle.resolve(create).await.map_err(|e| match e {
        Error::NoSuchWorkSpec { .. } | Error::NoSuchWorkUnit { .. } => gone.clone(),
        other => other.on(W::KIND),
    })?;
    let link = fresh.link_cell().load_full();
    if link.is_dead() {
        return Err(gone);
    }
    if create || W::KIND != ObjectKind::Namespace {
        handle.link_cell().store(Arc::clone(&link));
    }
    Ok(link)
}
