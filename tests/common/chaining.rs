//! Two work specs, one chaining to the other, for the backends' test
//! crates.

use coordinate::{data, NamespaceRef, WorkSpecRef};

/// Spec `from` of `ns`, whose finished units chain to spec `to`, and `to`
/// itself, disabled so that the scheduler only hands out units of `from`.
pub async fn chained_specs(ns: &NamespaceRef, from: &str, to: &str) -> (WorkSpecRef, WorkSpecRef) {
    let first = ns
        .set_work_spec(data!({"name": from, "then": to}))
        .await
        .unwrap_or_else(|e| panic!("spec {from}: {e}"));
    let next = ns
        .set_work_spec(data!({"name": to, "disabled": true}))
        .await
        .unwrap_or_else(|e| panic!("spec {to}: {e}"));
    (first, next)
}
