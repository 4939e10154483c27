//! §17 "Concurrency" scenarios (§15). They spawn tokio tasks, so they need
//! a multi-thread runtime to exercise real parallelism.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Run, TestBackend};
use crate::api::WorkSpecRef;
use crate::data;
use crate::model::{AttemptRequest, DataMap, WorkUnitMeta, WorkUnitQuery, WorkUnitStatus};

/// Adds `count` units named `u000`, `u001`, ….
async fn numbered_units(r: &Run, spec: &WorkSpecRef, count: usize) -> Vec<String> {
    let names: Vec<String> = (0..count).map(|i| format!("u{i:03}")).collect();
    for name in &names {
        r.unit(spec, name, data!({"n": name})).await;
    }
    names
}

/// **ConcurrentExecution.** Eight concurrent workers (randomly named, one
/// task each) request and finish single attempts until a request returns
/// nothing; each of 100 units runs exactly once and none is missed.
pub async fn concurrent_execution(t: TestBackend) {
    let r = Run::new("concurrent_execution", t);
    let ns = r.ns("concurrent_execution").await;
    let spec = r.named_spec(&ns, "spec").await;
    let expected = numbered_units(&r, &spec, 100).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let worker = r
            .worker(&ns, &format!("worker-{i}-{:016x}", fastrand::u64(..)))
            .await;
        tasks.push(tokio::spawn(async move {
            let mut done: Vec<(String, String)> = Vec::new();
            loop {
                let got = worker.request_attempts(AttemptRequest::default()).await?;
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
    let twice: Vec<_> = runs.iter().filter(|(_, w)| w.len() != 1).collect();
    check!(r, twice.is_empty(), "units run more than once: {twice:?}");
    check_eq!(
        r,
        runs.keys().cloned().collect::<Vec<_>>(),
        expected,
        "every unit ran"
    );
    let counts = r.ok(spec.count_work_unit_status().await, "counts");
    check_eq!(
        r,
        counts,
        [(WorkUnitStatus::Finished, 100)].into(),
        "all finished"
    );
}

/// **AddSameUnit.** Eight tasks concurrently add the same 200 unit names;
/// every call succeeds and each name exists once.
pub async fn add_same_unit(t: TestBackend) {
    let r = Run::new("add_same_unit", t);
    let ns = r.ns("add_same_unit").await;
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
    let counts = r.ok(spec.count_work_unit_status().await, "counts");
    check_eq!(
        r,
        counts,
        [(WorkUnitStatus::Available, 200)].into(),
        "all available"
    );
}

/// Concurrent batch requests (§10.3, §15) never hand the same unit to two
/// workers: eight tasks request batches of five until nothing is left,
/// without finishing anything; the batches are disjoint and cover all 200
/// units.
pub async fn concurrent_requests_disjoint(t: TestBackend) {
    let r = Run::new("concurrent_requests_disjoint", t);
    let ns = r.ns("concurrent_requests_disjoint").await;
    let spec = r.named_spec(&ns, "spec").await;
    let expected = numbered_units(&r, &spec, 200).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let worker = r.worker(&ns, &format!("worker-{i}")).await;
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = worker.request_attempts(AttemptRequest::units(5)).await?;
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
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n != 1).collect();
    check!(r, twice.is_empty(), "units handed out twice: {twice:?}");
    check_eq!(
        r,
        seen.keys().cloned().collect::<Vec<_>>(),
        expected,
        "every unit handed out"
    );
    let counts = r.ok(spec.count_work_unit_status().await, "counts");
    check_eq!(
        r,
        counts,
        [(WorkUnitStatus::Pending, 200)].into(),
        "all pending"
    );
}
