//! Cross-server propagation end to end: two `coordinated` processes (this
//! build's binary, cache on, default feed settings) over one database of
//! the crate's throwaway PostgreSQL cluster. How long after server A answers
//! a delete does server B answer as if the object were gone?
//!
//! Per sample, on keep-alive connections: A creates an object; B reads it
//! until it has it cached (two `200`s); A deletes it; then B is polled every
//! millisecond. Two clocks, both from A's delete response: until B answers
//! that the object is gone (`400`/`404`, the requirement), and until B's
//! `coordinate_cache_feed_events_total` moves (B's cache has applied the
//! change feed's event; read after each poll of the object, so it includes
//! one `/metrics` request). Answers of B that are neither the object nor
//! its absence are counted as wrong. Scenarios: a work unit deleted by
//! query, a work spec deleted, a namespace deleted (B reads a spec in it).
//!
//! Run: `cargo bench -p coordinated --bench feed_e2e` (`FEED_E2E_SAMPLES`
//! sets the samples per scenario, default 200, after 20 discarded warm-up
//! samples). Benchmark only, never run by CI; without `--bench` (`cargo test
//! --benches`) it takes 3 samples, to check that it works.

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "../../benches/support/percentile.rs"]
mod percentile;

use std::thread::sleep;
use std::time::{Duration, Instant};

use percentile::percentile;
use support::postgres::fresh_database;
use support::{metric, Connection, Server};

/// The requirement: B's answer changes within this.
const TARGET: Duration = Duration::from_millis(100);
/// The pause between two polls of B.
const POLL: Duration = Duration::from_millis(1);
/// A change that has not arrived after this never will: the bench fails.
const GIVE_UP: Duration = Duration::from_secs(10);
const WARM_UP: usize = 20;

/// What one scenario creates, reads and deletes for sample `i`.
struct Scenario {
    name: &'static str,
    /// Creates the object through A; the path B reads it at.
    create: fn(a: &mut Connection, i: usize) -> String,
    /// Deletes it through A.
    delete: fn(a: &mut Connection, i: usize),
    /// The status B answers once the object is gone.
    gone_status: u16,
}

/// POSTs `body` to `collection` through `a`, expecting `201 Created`.
fn post_created(a: &mut Connection, collection: &str, body: &str) {
    let created = a.send_json("POST", collection, body);
    assert_eq!(created.status, 201, "{}", created.text());
}

/// DELETEs `path` through `a`, expecting `204 No Content`.
fn delete_no_content(a: &mut Connection, path: &str) {
    let deleted = a.send("DELETE", path, &[], None);
    assert_eq!(deleted.status, 204, "{}", deleted.text());
}

const SCENARIOS: [Scenario; 3] = [
    Scenario {
        name: "work unit (DELETE …/work_unit?name=)",
        create: |a, i| {
            let units = "/namespace/bench/work_spec/s/work_unit";
            post_created(a, units, &format!(r#"{{"name": "u{i}"}}"#));
            format!("{units}/u{i}")
        },
        delete: |a, i| {
            let deleted = a.send(
                "DELETE",
                &format!("/namespace/bench/work_spec/s/work_unit?name=u{i}"),
                &[],
                None,
            );
            assert_eq!(deleted.text(), r#"{"Deleted":1}"#);
        },
        gone_status: 400, // ErrNoSuchWorkUnit
    },
    Scenario {
        name: "work spec (DELETE …/work_spec/{spec})",
        create: |a, i| {
            let specs = "/namespace/bench/work_spec";
            post_created(a, specs, &format!(r#"{{"data": {{"name": "s{i}"}}}}"#));
            format!("{specs}/s{i}")
        },
        delete: |a, i| delete_no_content(a, &format!("/namespace/bench/work_spec/s{i}")),
        gone_status: 404, // ErrNoSuchWorkSpec
    },
    Scenario {
        name: "namespace (DELETE /namespace/{ns})",
        create: |a, i| {
            let specs = format!("/namespace/n{i}/work_spec");
            post_created(a, &specs, r#"{"data": {"name": "s"}}"#);
            format!("{specs}/s")
        },
        delete: |a, i| delete_no_content(a, &format!("/namespace/n{i}")),
        // ErrNoSuchWorkSpec: the namespace B re-creates has no spec
        gone_status: 404,
    },
];

/// B's `coordinate_cache_feed_events_total`.
fn feed_events(b: &mut Connection) -> f64 {
    let metrics = b.get("/metrics").text();
    metric(&metrics, "coordinate_cache_feed_events_total").unwrap_or(0.0)
}

/// Waits until the server behind `conn` is subscribed to its feed.
fn wait_subscribed(conn: &mut Connection) {
    let since = Instant::now();
    while !conn
        .get("/metrics")
        .text()
        .contains("coordinate_cache_feed_subscribed 1")
    {
        assert!(since.elapsed() < GIVE_UP, "feed never subscribed");
        sleep(POLL);
    }
}

/// One sample: from A's delete response until B answered that the object
/// is gone, and until B's cache applied the feed's event.
struct Sample {
    answer: Duration,
    feed: Duration,
    /// B's answers that were neither the object nor its absence.
    wrong: Vec<String>,
}

fn sample(
    scenario: &Scenario,
    a: &mut Connection,
    b: &mut Connection,
    b_metrics: &mut Connection,
    i: usize,
) -> Sample {
    let path = (scenario.create)(a, i);
    for _ in 0..2 {
        let read = b.get(&path);
        assert_eq!(read.status, 200, "{}", read.text());
    }
    let events = feed_events(b_metrics);
    (scenario.delete)(a, i);
    let deleted = Instant::now();
    let (mut answer, mut feed, mut wrong) = (None, None, Vec::new());
    while answer.is_none() || feed.is_none() {
        if answer.is_none() {
            let read = b.get(&path);
            if read.status == scenario.gone_status {
                answer = Some(deleted.elapsed());
            } else if read.status != 200 {
                wrong.push(format!("{} {}", read.status, read.text()));
            }
        }
        if feed.is_none() && feed_events(b_metrics) > events {
            feed = Some(deleted.elapsed());
        }
        assert!(deleted.elapsed() < GIVE_UP, "B never saw the delete");
        sleep(POLL);
    }
    Sample {
        answer: answer.unwrap_or_default(),
        feed: feed.unwrap_or_default(),
        wrong,
    }
}

fn report(clock: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let over = samples.iter().filter(|s| **s > TARGET).count();
    println!(
        "  {clock:<22} n={:<4} p50={:>9.3?} p90={:>9.3?} p99={:>9.3?} max={:>9.3?} >{TARGET:?}: {over}",
        samples.len(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.90),
        percentile(&samples, 0.99),
        percentile(&samples, 1.0),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; under `cargo test --benches` a few
    // samples check that the bench works.
    let quick = !std::env::args().any(|a| a == "--bench");
    let (warm_up, samples) = if quick {
        (0, 3)
    } else {
        let samples = std::env::var("FEED_E2E_SAMPLES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(200);
        (WARM_UP, samples)
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (backend, _) = fresh_database(&runtime);
    let server_a = Server::start(&["--backend", &backend]);
    let server_b = Server::start(&["--backend", &backend]);
    let mut a = Connection::open(server_a.addr);
    let mut b = Connection::open(server_b.addr);
    let mut b_metrics = Connection::open(server_b.addr);
    wait_subscribed(&mut Connection::open(server_a.addr));
    wait_subscribed(&mut b_metrics);
    let created = a.send_json(
        "POST",
        "/namespace/bench/work_spec",
        r#"{"data": {"name": "s"}}"#,
    );
    assert_eq!(created.status, 201, "{}", created.text());

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "two coordinated processes over PostgreSQL; {} CPUs, load {}; poll every {POLL:?}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split(' ').take(3).collect::<Vec<_>>().join(" "),
    );
    for scenario in &SCENARIOS {
        let (mut answers, mut feeds, mut wrong) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..warm_up + samples {
            let sample = sample(scenario, &mut a, &mut b, &mut b_metrics, i);
            if i >= warm_up {
                answers.push(sample.answer);
                feeds.push(sample.feed);
                wrong.extend(sample.wrong);
            }
        }
        println!("{}", scenario.name);
        report("B answers it is gone", answers);
        report("B's feed event applied", feeds);
        println!(
            "  wrong answers from B in between: {}{}",
            wrong.len(),
            wrong
                .first()
                .map_or(String::new(), |w| format!(", first: {w}")),
        );
    }
}
