//! Summary scenarios at the backend, namespace and work spec levels.

use super::{each_named, Run, TestBackend};
use crate::model::{DataMap, Duration, SummaryRecord, WorkUnitMeta, WorkUnitStatus};

use WorkUnitStatus::{Available, Delayed, Failed, Finished, Pending};

fn rec(ns: &str, spec: &str, status: WorkUnitStatus, count: u64) -> SummaryRecord {
    SummaryRecord {
        namespace: ns.into(),
        work_spec: spec.into(),
        status,
        count,
    }
}

/// **Summarize.** Empty at first; one record with one unit; five records
/// after the seven-state fixture — at all three levels.
pub async fn summarize(t: TestBackend) {
    let r = Run::new("summarize", t);
    let summaries = |ns: crate::api::NamespaceRef, spec: Option<crate::api::WorkSpecRef>| {
        let r = &r;
        async move {
            let mut all = vec![
                r.ok(r.backend().summarize().await, "backend summary"),
                r.ok(ns.summarize().await, "namespace summary"),
            ];
            if let Some(spec) = spec {
                all.push(r.ok(spec.summarize().await, "spec summary"));
            }
            for s in &mut all {
                s.sort();
            }
            all
        }
    };
    let ns = r.ns("summarize").await;
    for s in summaries(ns.clone(), None).await {
        check!(r, s.is_empty(), "summary before anything was added: {s:?}");
    }
    let spec = r.named_spec(&ns, "spec").await;
    for s in summaries(ns.clone(), Some(spec.clone())).await {
        check!(r, s.is_empty(), "summary with an empty spec: {s:?}");
    }
    r.unit(&spec, "one", DataMap::new()).await;
    for s in summaries(ns.clone(), Some(spec.clone())).await {
        check_eq!(
            r,
            s,
            vec![rec("summarize", "spec", Available, 1)],
            "one unit"
        );
    }
    // The fixture re-uses "spec" (set_work_spec keeps the spec and its unit).
    r.seven(&ns, "spec").await;
    let expected = vec![
        rec("summarize", "spec", Available, 4),
        rec("summarize", "spec", Pending, 1),
        rec("summarize", "spec", Finished, 1),
        rec("summarize", "spec", Failed, 1),
        rec("summarize", "spec", Delayed, 1),
    ];
    for s in summaries(ns.clone(), Some(spec.clone())).await {
        check_eq!(r, s, expected, "seven-state fixture");
    }
}

/// Summaries at every level concatenate their parts: several namespaces
/// and specs, empty ones contributing nothing, lazy expiry applied first.
pub async fn summarize_levels(t: TestBackend) {
    let r = Run::new("summarize_levels", t);
    let a = r.ns("a").await;
    let b = r.ns("b").await;
    r.ns("empty").await;
    let [a1, a2] = each_named(["a1", "a2"], |n| r.named_spec(&a, n)).await;
    r.named_spec(&a, "a3-empty").await;
    let b1 = r.named_spec(&b, "b1").await;
    r.units(&a1, &["x", "y"]).await;
    r.units(&a2, &["x"]).await;
    r.units(&b1, &["x"]).await;
    let worker = r.worker(&a, "worker").await;
    let unit = r.ok(a2.work_unit("x").await, "lookup");
    r.ok(
        worker.make_attempt(&unit, Duration::seconds(10)).await,
        "make_attempt",
    );
    let mut total = r.ok(r.backend().summarize().await, "backend");
    total.sort();
    check_eq!(
        r,
        total,
        vec![
            rec("a", "a1", Available, 2),
            rec("a", "a2", Pending, 1),
            rec("b", "b1", Available, 1),
        ],
        "backend summary"
    );
    let mut of_a = r.ok(a.summarize().await, "namespace a");
    of_a.sort();
    check_eq!(r, of_a, total[..2].to_vec(), "namespace a summary");
    r.ok_eq(a2.summarize().await, total[1..2].to_vec(), "spec a2");
    r.advance_secs(11);
    let mut total = r.ok(r.backend().summarize().await, "backend after expiry");
    total.sort();
    check_eq!(
        r,
        total[1],
        rec("a", "a2", Available, 1),
        "expired attempt summarised"
    );
}

/// **Counts as of expiry.** Each counting read — `count_work_unit_status`,
/// `meta(true)`, and summaries of the spec, the namespace and the backend —
/// when it is the first read after leases lapsed, counts the units as the
/// expiry leaves them: a lapsed unit Available, or Delayed if its
/// not-before time (set while it ran) is still ahead; beside them a unit
/// Pending within its lease, an idle one, a delayed one and a finished one.
pub async fn counts_as_of_expiry(t: TestBackend) {
    let r = Run::new("counts_as_of_expiry", t);
    let reads = ["count", "meta", "spec", "namespace", "backend"];
    // One namespace per read, so each read is the first to look at its
    // units; the backend's, which looks at all, comes last.
    let mut setups = Vec::new();
    for read in reads {
        let ns = r.ns(read).await;
        let spec = r.named_spec(&ns, "s").await;
        let worker = r.worker(&ns, "w").await;
        let hour = Duration::hours(1);
        let later = WorkUnitMeta {
            not_before: Some(r.now() + hour),
            ..WorkUnitMeta::default()
        };
        for (name, lease) in [("lapsed", 10), ("lapsed, later", 10), ("running", 3600)] {
            let unit = r.unit(&spec, name, DataMap::new()).await;
            r.ok(
                worker.make_attempt(&unit, Duration::seconds(lease)).await,
                format_args!("{read}: make_attempt({name})"),
            );
        }
        let unit = r.ok(spec.work_unit("lapsed, later").await, "lookup");
        r.ok(unit.set_meta(later).await, "not-before while running");
        r.unit(&spec, "idle", DataMap::new()).await;
        r.unit_meta(&spec, "waiting", DataMap::new(), later).await;
        let done = r.unit(&spec, "done", DataMap::new()).await;
        let attempt = r.ok(worker.make_attempt(&done, hour).await, "make_attempt(done)");
        r.ok(attempt.finish(None).await, "finish(done)");
        setups.push((read, ns, spec));
    }
    r.advance_secs(11);
    let expected = [(Available, 2), (Pending, 1), (Finished, 1), (Delayed, 2)];
    for (read, ns, spec) in setups {
        let records = |records: Vec<SummaryRecord>| {
            let mut mine: Vec<_> = records
                .into_iter()
                .filter(|x| x.namespace == read)
                .collect();
            mine.sort();
            mine.into_iter()
                .map(|x| (x.status, x.count))
                .collect::<Vec<_>>()
        };
        let counts: Vec<(WorkUnitStatus, u64)> = match read {
            "count" => r
                .ok(spec.count_work_unit_status().await, read)
                .into_iter()
                .collect(),
            "meta" => {
                let meta = r.ok(spec.meta(true).await, read);
                let counts = (meta.available_count, meta.pending_count);
                check_eq!(r, counts, (2, 1), "meta(true) counts as of expiry");
                continue;
            }
            "spec" => records(r.ok(spec.summarize().await, read)),
            "namespace" => records(r.ok(ns.summarize().await, read)),
            _ => records(r.ok(r.backend().summarize().await, read)),
        };
        let mut want = expected.to_vec();
        want.sort();
        check_eq!(r, counts, want, "{read}: counts as of expiry");
    }
}

/// A status no unit has any more leaves every summary: no record with a
/// count of zero once the pending unit finishes, and nothing of a spec
/// whose units were all deleted — at all three levels.
pub async fn summaries_drop_emptied_statuses(t: TestBackend) {
    let r = Run::new("summaries_drop_emptied_statuses", t);
    let ns = r.ns("n").await;
    let [spec, other] = each_named(["spec", "other"], |n| r.named_spec(&ns, n)).await;
    let worker = r.worker(&ns, "worker").await;
    let units = r.units(&spec, &["x", "y"]).await;
    r.units(&other, &["z"]).await;
    let kept = rec("n", "other", Available, 1);
    let levels_are = |want: Vec<SummaryRecord>, step: &'static str| {
        let (r, ns, spec) = (&r, &ns, &spec);
        async move {
            let mut all = r.ok(r.backend().summarize().await, "backend summary");
            all.sort();
            check_eq!(r, all, want, "{step}: backend summary");
            let mut of_ns = r.ok(ns.summarize().await, "namespace summary");
            of_ns.sort();
            check_eq!(r, of_ns, want, "{step}: namespace summary");
            let mut of_spec = r.ok(spec.summarize().await, "spec summary");
            of_spec.sort();
            let own: Vec<_> = want.into_iter().filter(|s| s.work_spec == "spec").collect();
            check_eq!(r, of_spec, own, "{step}: spec summary");
        }
    };
    let attempt = r.ok(
        worker.make_attempt(&units[0], Duration::zero()).await,
        "make_attempt(x)",
    );
    levels_are(
        vec![
            kept.clone(),
            rec("n", "spec", Available, 1),
            rec("n", "spec", Pending, 1),
        ],
        "x pending",
    )
    .await;
    r.ok(attempt.finish(None).await, "finish x");
    levels_are(
        vec![
            kept.clone(),
            rec("n", "spec", Available, 1),
            rec("n", "spec", Finished, 1),
        ],
        "x finished",
    )
    .await;
    r.delete_all(&spec).await;
    levels_are(vec![kept], "spec emptied").await;
}
