//! The smallest populated store: namespace `n`, its spec `s`, and unit `u`.

use coordinate::{data, Backend, WorkSpecRef, WorkUnitMeta};

/// Makes namespace `n` with spec `s` holding unit `u`; answers the spec.
pub async fn spec_with_unit(backend: &dyn Backend) -> coordinate::Result<WorkSpecRef> {
    let spec = backend
        .namespace("n")
        .await?
        .set_work_spec(data!({"name": "s"}))
        .await?;
    spec.add_work_unit("u", data!({}), WorkUnitMeta::default())
        .await?;
    Ok(spec)
}
