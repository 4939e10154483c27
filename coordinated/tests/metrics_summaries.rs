//! The work unit summaries behind `/metrics`: names as label values, and a
//! backend whose summaries are slow. Its own test binary: the metrics
//! recorder is the process's, installed here for a short summary period.

use std::sync::Arc;
use std::time::{Duration, Instant};

use coordinate::instrumented::{Instrumented, Op};
use coordinate::memory::MemoryBackend;
use coordinate::{data, Backend, WorkUnitMeta};
use coordinated::metrics::{collect_summaries, install, SummaryPeriod};

mod support;

/// The summary period of every test here (the first to install the
/// recorder sets how long an unset series lasts, for all): long enough
/// that only a stall of the whole process for two periods could let a
/// series lapse.
const PERIOD: Duration = Duration::from_millis(200);

/// A summary taking several periods (more than a series may go unset)
/// leaves the last counts up meanwhile, rather than letting them lapse
/// between summaries.
#[tokio::test]
async fn a_summary_slower_than_the_period_keeps_the_last_counts_up() {
    let period = SummaryPeriod::new(PERIOD).expect("not zero");
    let metrics = install(period);
    let memory = support::memory_with_units(&["u"]).await;
    // Eight periods per summary; a series unset for three goes.
    let slow = Instrumented::with_latency(memory, PERIOD * 8, |op| op == Op::Summarize);
    let summaries = tokio::spawn(collect_summaries(Arc::new(slow), period));
    let series = r#"coordinate_work_units{namespace="n",work_spec="s",status="available"} 1"#;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !metrics.render().contains(series) {
        assert!(Instant::now() < deadline, "no summary in 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Over two more summaries.
    let watched = Instant::now();
    while watched.elapsed() < PERIOD * 17 {
        let text = metrics.render();
        assert!(
            text.contains(series),
            "lapsed after {:?}:\n{text}",
            watched.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    summaries.abort();
}

/// A summary slower than the period is followed by a whole period
/// without one, rather than by the next summary at once: a backend that
/// summarises slowly is not kept summarising without a pause.
#[tokio::test]
async fn a_slow_summary_is_followed_by_a_period_of_rest() {
    let period = SummaryPeriod::new(PERIOD).expect("not zero");
    install(period);
    let memory = support::memory_with_units(&["u"]).await;
    let slow = Arc::new(Instrumented::with_latency(memory, PERIOD * 2, |op| {
        op == Op::Summarize
    }));
    let summaries = tokio::spawn(collect_summaries(slow.clone(), period));
    let mut starts = Vec::new();
    let watched = Instant::now();
    while starts.len() < 4 {
        assert!(watched.elapsed() < Duration::from_secs(30), "{starts:?}");
        if slow.calls().get(Op::Summarize) > starts.len() as u64 {
            starts.push(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    summaries.abort();
    for pair in starts.windows(2) {
        let gap = pair[1] - pair[0];
        // Two periods summarising, one resting; a 5 ms poll may see a
        // start late, and the next one early, by that much.
        assert!(gap >= PERIOD * 3 - Duration::from_millis(20), "{gap:?}");
    }
}

/// Names with backslashes, quotes and line feeds each get series of their
/// own, escaped as the exposition format reads them back.
#[tokio::test]
async fn names_are_label_values_read_back_exactly() {
    let period = SummaryPeriod::new(PERIOD).expect("not zero");
    let metrics = install(period);
    let memory = MemoryBackend::new();
    let ns = memory.namespace("escapes").await.unwrap();
    let names = ["a\"b", "a\\\"b", "a\\b", "a\\\\b", "a\nb", "a\\\nb", "a\\"];
    for name in names {
        let spec = ns.set_work_spec(data!({ "name": name })).await.unwrap();
        spec.add_work_unit("u", data!({}), WorkUnitMeta::default())
            .await
            .unwrap();
    }
    let summaries = tokio::spawn(collect_summaries(Arc::new(memory), period));
    let escaped = |name: &str| {
        name.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = metrics.render();
        let missing: Vec<&str> = names
            .into_iter()
            .filter(|name| {
                let series = format!(
                    r#"coordinate_work_units{{namespace="escapes",work_spec="{}",status="available"}} 1"#,
                    escaped(name)
                );
                !text.contains(&series)
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "missing {missing:?} in\n{text}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    summaries.abort();
}
