//! Concurrency scenarios. They spawn tokio tasks, so they need
//! a multi-thread runtime to exercise real parallelism.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use super::{Run, TestBackend};
use crate::api::{NamespaceRef, WorkSpecRef};
use crate::data;
use crate::model::{AttemptRequest, DataMap, WorkUnitMeta, WorkUnitQuery, WorkUnitStatus};

/// A run of scenario `name` with a namespace named after it holding spec
/// `spec` with `count` [numbered units](numbered_units), whose names it
/// returns.
async fn numbered(
    name: &'static str,
    t: TestBackend,
    count: usize,
) -> (Run, NamespaceRef, WorkSpecRef, Vec<String>) {
    let (r, ns) = Run::with_ns(name, t).await;
    let spec = r.named_spec(&ns, "spec").await;
    let names = numbered_units(&r, &spec, count).await;
    (r, ns, spec, names)
}

/// Adds `count` units named `u000`, `u001`, ….
async fn numbered_units(r: &Run, spec: &WorkSpecRef, count: usize) -> Vec<String> {
    let names: Vec<String> = (0..count).map(|i| format!("u{i:03}")).collect();
    for name in &names {
        r.unit(spec, name, data!({"n": name})).await;
    }
    names
}

/// Every unit of `expected` was `what` (run, handed out) exactly once, as
/// `once` judges a unit's tally, and no other unit was.
fn each_once<V: Debug>(
    r: &Run,
    tally: &BTreeMap<String, V>,
    once: impl Fn(&V) -> bool,
    expected: &[String],
    what: &str,
) {
    let more: Vec<_> = tally.iter().filter(|(_, v)| !once(v)).collect();
    check!(r, more.is_empty(), "units {what} more than once: {more:?}");
    let units: Vec<&String> = tally.keys().collect();
    check_eq!(
        r,
        units,
        expected.iter().collect::<Vec<_>>(),
        "every unit {what}"
    );
}

/// **ConcurrentExecution.** Eight concurrent workers (randomly named, one
/// task each) request and finish single attempts until a request returns
/// nothing; each of 100 units runs exactly once and none is missed.
pub async fn concurrent_execution(t: TestBackend) {
    let (r, ns, spec, expected) = numbered("concurrent_execution", t, 100).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let worker = r
            .worker(&ns, &format!("worker-{i}-{:016x}", fastrand::u64(..)))
            .await;
        tasks.push(tokio::spawn(async move {
            let mut done: Vec<(String, String)> = Vec::new();
            loop {
                let got = worker.request_attempts(&AttemptRequest::default()).await?;
                let Some(attempt) = got.into_iter().next() else {
                    break;
                };
                attempt.finish(None).await?;
                done.push((
                    attempt.work_unit().name().to_string(),
                    worker.name().to_string(),
                ));
                tokio::task::yield_now().await;
            }
            crate::Result::Ok(done)
        }));
    }
    let mut runs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let done = match task.await {
            Ok(res) => r.ok(res, format_args!("worker task {i}")),
            Err(e) => panic!("[concurrent_execution] worker task {i} panicked: {e}"),
        };
        for (unit, worker) in done {
            runs.entry(unit).or_default().push(worker);
        }
    }
    each_once(&r, &runs, |w| w.len() == 1, &expected, "run");
    r.counts_are(&spec, [(WorkUnitStatus::Finished, 100)], "all finished")
        .await;
}

/// **AddSameUnit.** Eight tasks concurrently add the same 200 unit names;
/// every call succeeds and each name exists once.
pub async fn add_same_unit(t: TestBackend) {
    let (r, ns) = Run::with_ns("add_same_unit", t).await;
    let spec = r.named_spec(&ns, "spec").await;
    let names: Arc<Vec<String>> = Arc::new((0..200).map(|i| format!("u{i:03}")).collect());
    let mut tasks = Vec::new();
    for task in 0..8 {
        let spec = spec.clone();
        let names = Arc::clone(&names);
        tasks.push(tokio::spawn(async move {
            for name in names.iter() {
                let data: DataMap = data!({"task": task});
                spec.add_work_unit(name, data, WorkUnitMeta::default())
                    .await?;
            }
            crate::Result::Ok(())
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await {
            Ok(res) => r.ok(res, format_args!("adding task {i}")),
            Err(e) => panic!("[add_same_unit] adding task {i} panicked: {e}"),
        }
    }
    let units = r.ok(spec.work_units(&WorkUnitQuery::all()).await, "work_units");
    check_eq!(
        r,
        units.keys().cloned().collect::<Vec<_>>(),
        *names,
        "each name once"
    );
    r.counts_are(&spec, [(WorkUnitStatus::Available, 200)], "all available")
        .await;
}

/// Concurrent batch requests never hand the same unit to two
/// workers: eight tasks request batches of five until nothing is left,
/// without finishing anything; the batches are disjoint and cover all 200
/// units.
pub async fn concurrent_requests_disjoint(t: TestBackend) {
    let (r, ns, spec, expected) = numbered("concurrent_requests_disjoint", t, 200).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let worker = r.worker(&ns, &format!("worker-{i}")).await;
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = worker.request_attempts(&AttemptRequest::units(5)).await?;
                if got.is_empty() {
                    break;
                }
                mine.extend(got.iter().map(|a| a.work_unit().name().to_string()));
            }
            crate::Result::Ok(mine)
        }));
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let mine = match task.await {
            Ok(res) => r.ok(res, format_args!("requesting task {i}")),
            Err(e) => panic!("[concurrent_requests_disjoint] task {i} panicked: {e}"),
        };
        for name in mine {
            *seen.entry(name).or_default() += 1;
        }
    }
    each_once(&r, &seen, |n| *n == 1, &expected, "handed out");
    r.counts_are(&spec, [(WorkUnitStatus::Pending, 200)], "all pending")
        .await;
}

/// Concurrent get-or-create: eight tasks at once look up
/// the same namespace, define the same spec, look up the same worker and
/// define one spec each; every call succeeds and each name exists once.
pub async fn concurrent_get_or_create(t: TestBackend) {
    let r = Run::new("concurrent_get_or_create", t);
    let backend = Arc::clone(&r.t.backend);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let backend = Arc::clone(&backend);
        tasks.push(tokio::spawn(async move {
            let ns = backend.namespace("shared").await?;
            ns.set_work_spec(data!({"name": "same", "min_gb": 0.1}))
                .await?;
            ns.set_work_spec(data!({"name": format!("own-{i}")}))
                .await?;
            let w = ns.worker("same worker").await?;
            let spec = ns.work_spec("same").await?;
            spec.add_work_unit(&format!("u{i}"), DataMap::new(), WorkUnitMeta::default())
                .await?;
            crate::Result::Ok(w.name().to_string())
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await {
            Ok(res) => drop(r.ok(res, format_args!("task {i}"))),
            Err(e) => panic!("[concurrent_get_or_create] task {i} panicked: {e}"),
        }
    }
    let all = r.ok(r.backend().namespaces().await, "namespaces()");
    check_eq!(
        r,
        all.keys().filter(|k| *k == "shared").count(),
        1,
        "one namespace"
    );
    let ns = r.ns("shared").await;
    let mut names = r.ok(ns.work_spec_names().await, "names");
    names.sort();
    let mut expected: Vec<String> = (0..8).map(|i| format!("own-{i}")).collect();
    expected.push("same".into());
    check_eq!(r, names, expected, "one spec per name");
    let workers = r.ok(ns.workers().await, "workers");
    check_eq!(r, workers.len(), 1, "one worker");
    let spec = r.ok(ns.work_spec("same").await, "lookup");
    check_eq!(
        r,
        r.unit_names(&spec, "units").await.len(),
        8,
        "every task's unit"
    );
}

/// Concurrent chaining: eight workers finish units that all
/// chain to the same unit name at once; every `finish` succeeds and the
/// next spec holds that unit once.
pub async fn concurrent_chaining_same_output(t: TestBackend) {
    let r = Run::new("concurrent_chaining_same_output", t);
    let (ns, first, second, _) = r.chain_fixture("concurrent_chaining_same_output").await;
    numbered_units(&r, &first, 40).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let worker = r.worker(&ns, &format!("worker-{i}")).await;
        tasks.push(tokio::spawn(async move {
            let mut done = 0usize;
            loop {
                let got = worker.request_attempts(&AttemptRequest::default()).await?;
                let Some(attempt) = got.into_iter().next() else {
                    break;
                };
                let output = data!({"output": {"joined": {"by": worker.name()}}});
                attempt.finish(Some(output)).await?;
                done += 1;
            }
            crate::Result::Ok(done)
        }));
    }
    let mut total = 0;
    for (i, task) in tasks.into_iter().enumerate() {
        total += match task.await {
            Ok(res) => r.ok(res, format_args!("worker task {i}")),
            Err(e) => panic!("[concurrent_chaining_same_output] task {i} panicked: {e}"),
        };
    }
    check_eq!(r, total, 40, "units finished");
    let units = r.unit_names(&second, "second's units").await;
    check_eq!(r, units, super::names(["joined"]), "one chained unit");
    r.counts_are(&first, [(WorkUnitStatus::Finished, 40)], "all finished")
        .await;
}
