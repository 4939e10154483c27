//! A hand-out request's filters as the client sends them.
//!
//! In process, `work_specs` and `runtimes` may be as long as a caller
//! likes; over HTTP they travel in one request body, which a server bounds.
//! So the client leaves out what no spec can pass (a spec name longer than
//! a name can be, a runtime longer than a definition can hold, repeats),
//! and narrows a filter still longer than [`FILTER_BYTES`] to the
//! namespace's specs, read first. The answer is the one the whole filter
//! gives, but for specs made between that read and the hand-out, which it
//! leaves out as a hand-out made just before them would.

use std::collections::HashSet;
use std::sync::Arc;

use crate::api::Namespace;
use crate::error::{Error, Result};
use crate::model::AttemptRequest;
use crate::rules::limits::{fits_name, MAX_DATA_BYTES};

use super::namespace::RestNamespace;
use super::template::Var;
use super::Shared;

/// The longest filter sent as it is, in bytes of its entries.
pub(crate) const FILTER_BYTES: usize = 1 << 20;

/// `request` as sent to the server, or `None` when no spec can pass its
/// filters (and so it hands out nothing).
pub(crate) async fn sendable(
    shared: &Arc<Shared>,
    namespace: &str,
    request: &AttemptRequest,
) -> Result<Option<AttemptRequest>> {
    let mut sent = request.clone();
    // A runtime is a string inside a definition, which is data.
    let passable = narrowed(&mut sent.work_specs, fits_name)
        && narrowed(&mut sent.runtimes, |runtime| runtime.len() < MAX_DATA_BYTES);
    if !passable {
        return Ok(None);
    }
    let long = |filter: &[String]| filter.iter().map(String::len).sum::<usize>() > FILTER_BYTES;
    let (long_names, long_runtimes) = (long(&sent.work_specs), long(&sent.runtimes));
    if !long_names && !long_runtimes {
        return Ok(Some(sent));
    }
    let url = shared.expand(
        &shared.root.namespace_url,
        &[("namespace", Var::Name(namespace))],
    )?;
    let ns = RestNamespace::fetch(shared, url, namespace).await?;
    let names: HashSet<String> = ns.work_spec_names().await?.into_iter().collect();
    let passable = if long_runtimes {
        let mut runtimes = HashSet::new();
        for name in &names {
            match ns.work_spec(name).await {
                Ok(spec) => match spec.meta(false).await {
                    Ok(meta) => {
                        runtimes.insert(meta.runtime);
                    }
                    Err(Error::Gone { .. } | Error::NoSuchWorkSpec { .. }) => {}
                    Err(e) => return Err(e),
                },
                Err(Error::Gone { .. } | Error::NoSuchWorkSpec { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        narrowed(&mut sent.runtimes, |runtime| runtimes.contains(runtime))
    } else {
        true
    };
    let passable = passable && narrowed(&mut sent.work_specs, |name| names.contains(name));
    Ok(passable.then_some(sent))
}

/// Keeps the entries of a non-empty `filter` that `can_pass` and the first
/// of repeats; false when that leaves it empty, so that nothing passes (an
/// empty filter passes everything, and is left as it is).
fn narrowed(filter: &mut Vec<String>, can_pass: impl Fn(&str) -> bool) -> bool {
    if filter.is_empty() {
        return true;
    }
    let mut seen = HashSet::new();
    filter.retain(|entry| can_pass(entry) && seen.insert(entry.clone()));
    !filter.is_empty()
}

#[cfg(test)]
mod tests {
    use super::narrowed;

    #[test]
    fn a_narrowed_filter_passes_what_the_whole_one_did() {
        let mut empty = Vec::new();
        assert!(narrowed(&mut empty, |_| false), "no filter passes all");
        assert!(empty.is_empty());
        let mut filter = ["a", "b", "a", "cc", "b"].map(String::from).to_vec();
        assert!(narrowed(&mut filter, |e| e.len() == 1));
        assert_eq!(filter, ["a", "b"]);
        let mut none = vec!["cc".to_owned()];
        assert!(!narrowed(&mut none, |e| e.len() == 1), "nothing can pass");
    }
}
