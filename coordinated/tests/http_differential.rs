//! The same requests, hostile ones included, get the same bytes back from
//! `coordinated` over memory and over PostgreSQL, each plain and behind
//! `Cache` (as deployed): status, content type and body. Generated
//! sequences mix odd and over-long names, data at and past the nesting
//! limit, numbers without an exact `f64`, NULs and lone surrogates, extreme
//! priorities and times, and bad query values, with the writes that make
//! them matter. The servers read one mock clock, so attempt times agree
//! too. What the API leaves open is left out: attempt identifiers in URLs,
//! and which spec a hand-out picks among several (each hand-out here names
//! one). Summaries, whose order the API leaves open too, come sorted from
//! both backends.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use coordinate::cache::Cache;
use coordinate::memory::MemoryBackend;
use coordinate::postgres::testing::{DatabaseLease, TestCluster};
use coordinate::rest::names::{encode_segment, percent_encode};
use coordinate::{Backend, Duration, MockClock};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed};
use support::{request, Reply};
use tokio::sync::oneshot;

/// Unit and spec names: plain, needing the path's base64 form (space,
/// leading `-`, non-ASCII, `/`, NUL, empty), and at and past the 1,024-byte
/// limit.
fn names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names: Vec<String> = [
            "a", "job:1", "b b", "-x", "été", "", "n\u{0}ul", "a/b", "🦀",
        ]
        .map(String::from)
        .into();
        names.push("x".repeat(1024));
        names.push("x".repeat(1025));
        names
    })
}

/// Work unit data bodies (JSON text).
fn data_bodies() -> &'static [String] {
    static BODIES: OnceLock<Vec<String>> = OnceLock::new();
    BODIES.get_or_init(|| {
        let nested =
            |depth: usize| format!("{{\"a\": {}{}}}", "[".repeat(depth), "]".repeat(depth));
        vec![
            r#"{"a": 1}"#.into(),
            r#"{"a": 1e308}"#.into(),
            r#"{"a": 1e400}"#.into(),
            r#"{"a": 18446744073709551616}"#.into(),
            r#"{"a": 123456789012345678901234567890}"#.into(),
            r#"{"a": -0.0}"#.into(),
            r#"{"a": 5e-324}"#.into(),
            r#"{"a": 0.1, "b": -9007199254740993}"#.into(),
            r#"{"a": "\u0000"}"#.into(),
            r#"{"k\u0000": 1}"#.into(),
            r#"{"a": "\ud800"}"#.into(),
            r#"{"output": ["next", {"x": 1}]}"#.into(),
            "{}".into(),
            "null".into(),
            "[1]".into(),
            nested(98),
            nested(99),
            nested(100),
        ]
    })
}

/// Work unit meta documents (JSON text).
const METAS: &[&str] = &[
    "null",
    r#"{"priority": 1e308}"#,
    r#"{"priority": 1e309}"#,
    r#"{"priority": -5, "not_before": "0001-01-01T00:00:00Z"}"#,
    r#"{"priority": 2, "not_before": "9999-12-31T23:59:59Z"}"#,
    r#"{"not_before": "10000-01-01T00:00:00Z"}"#,
    r#"{"not_before": "2020-01-01T00:00:00.123456789Z"}"#,
    r#"{"not_before": "2999-01-01T00:00:00+01:00"}"#,
    r#"{"priority": "high"}"#,
];

/// Work spec definitions' `name` values that are not names (JSON text).
const NOT_NAMES: &[&str] = &["5", "null"];

/// A work spec definition's field besides its name (JSON text).
const SPEC_FIELDS: &[&str] = &[
    r#""max_retries": 1"#,
    r#""max_retries": -1"#,
    r#""priority": 1e20"#,
    r#""weight": "heavy""#,
    r#""then": "b b""#,
    r#""interval": 3.5"#,
    r#""max_getwork": 3"#,
];

/// What can be done to an attempt: the REST API's attempt actions.
const ACTIONS: &[&str] = &["finish", "fail", "retry", "renew", "expire"];

/// Query strings of a unit list, a delete or a priority change.
const QUERIES: &[&str] = &[
    "",
    "?status=available",
    "?status=delayed&status=pending",
    "?status=bogus",
    "?limit=2",
    "?limit=-1",
    "?limit=99999999999999999999",
    "?previous=a&limit=1",
    "?previous=-!!",
];

/// One request, by indexes into the vocabularies above.
#[derive(Debug, Clone)]
enum Op {
    /// `name` indexes the names, then the values that are not names.
    SetSpec {
        name: usize,
        field: usize,
    },
    AddUnit {
        spec: usize,
        unit: usize,
        data: usize,
        meta: usize,
    },
    GetUnit {
        spec: usize,
        unit: usize,
    },
    Counts {
        spec: usize,
    },
    Meta {
        spec: usize,
        counts: bool,
    },
    List {
        spec: usize,
        query: usize,
    },
    Change {
        spec: usize,
        query: usize,
        meta: usize,
    },
    Delete {
        spec: usize,
        unit: usize,
    },
    DeleteBy {
        spec: usize,
        query: usize,
    },
    /// For one spec: with several, the scheduler's pick is random.
    RequestAttempts {
        spec: usize,
        units: i64,
        lifetime_s: i64,
    },
    /// The namespace's summary, or the whole server's.
    Summary {
        all: bool,
    },
    /// A list of attempts: the worker's active or all, or a unit's.
    Attempts {
        spec: usize,
        unit: usize,
        which: usize,
    },
    Advance {
        seconds: i64,
    },
    /// An action, with data, on one of the attempts handed out so far.
    Act {
        attempt: usize,
        action: usize,
        data: Option<usize>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    // Most requests go to three specs, so that units meet hand-outs.
    let spec = prop_oneof![3 => 0..3usize, 1 => 0..names().len()];
    let unit = 0..names().len();
    prop_oneof![
        1 => (0..names().len() + NOT_NAMES.len(), 0..SPEC_FIELDS.len())
            .prop_map(|(name, field)| Op::SetSpec { name, field }),
        4 => (spec.clone(), unit.clone(), 0..data_bodies().len(), 0..METAS.len())
            .prop_map(|(spec, unit, data, meta)| Op::AddUnit { spec, unit, data, meta }),
        1 => (spec.clone(), unit.clone()).prop_map(|(spec, unit)| Op::GetUnit { spec, unit }),
        1 => spec.clone().prop_map(|spec| Op::Counts { spec }),
        1 => (spec.clone(), any::<bool>()).prop_map(|(spec, counts)| Op::Meta { spec, counts }),
        1 => (spec.clone(), 0..QUERIES.len()).prop_map(|(spec, query)| Op::List { spec, query }),
        1 => (spec.clone(), 0..QUERIES.len(), 0..METAS.len())
            .prop_map(|(spec, query, meta)| Op::Change { spec, query, meta }),
        1 => (spec.clone(), unit).prop_map(|(spec, unit)| Op::Delete { spec, unit }),
        1 => (spec.clone(), 0..QUERIES.len()).prop_map(|(spec, query)| Op::DeleteBy { spec, query }),
        3 => (spec.clone(), -1i64..4, -5i64..120)
            .prop_map(|(spec, units, lifetime_s)| Op::RequestAttempts { spec, units, lifetime_s }),
        1 => any::<bool>().prop_map(|all| Op::Summary { all }),
        2 => (spec, 0..names().len(), 0..3usize)
            .prop_map(|(spec, unit, which)| Op::Attempts { spec, unit, which }),
        1 => (0i64..200).prop_map(|seconds| Op::Advance { seconds }),
        3 => (
            0..8usize,
            0..ACTIONS.len(),
            proptest::option::of(0..data_bodies().len())
        )
            .prop_map(|(attempt, action, data)| Op::Act { attempt, action, data }),
    ]
}

/// The request `op` makes in namespace `ns`: method, path and body.
fn http(op: &Op, ns: &str) -> (&'static str, String, Option<String>) {
    let names = names();
    let spec_path =
        |spec: usize| format!("/namespace/{ns}/work_spec/{}", encode_segment(&names[spec]));
    match op {
        Op::SetSpec { name, field } => (
            "POST",
            format!("/namespace/{ns}/work_spec"),
            Some(format!(
                r#"{{"data": {{"name": {}, {}}}}}"#,
                names
                    .get(*name)
                    .map(|name| serde_json::Value::from(name.as_str()).to_string())
                    .unwrap_or_else(|| NOT_NAMES[*name - names.len()].to_owned()),
                SPEC_FIELDS[*field]
            )),
        ),
        Op::AddUnit {
            spec,
            unit,
            data,
            meta,
        } => (
            "POST",
            format!("{}/work_unit", spec_path(*spec)),
            Some(format!(
                r#"{{"name": {}, "data": {}, "meta": {}}}"#,
                serde_json::Value::from(names[*unit].as_str()),
                data_bodies()[*data],
                METAS[*meta]
            )),
        ),
        Op::GetUnit { spec, unit } => (
            "GET",
            format!(
                "{}/work_unit/{}",
                spec_path(*spec),
                encode_segment(&names[*unit])
            ),
            None,
        ),
        Op::Counts { spec } => ("GET", format!("{}/counts", spec_path(*spec)), None),
        Op::Meta { spec, counts } => (
            "GET",
            format!("{}/meta?counts={counts}", spec_path(*spec)),
            None,
        ),
        Op::List { spec, query } => (
            "GET",
            format!("{}/work_unit{}", spec_path(*spec), QUERIES[*query]),
            None,
        ),
        Op::Change { spec, query, meta } => (
            "POST",
            format!("{}/change{}", spec_path(*spec), QUERIES[*query]),
            Some(format!(r#"{{"meta": {}}}"#, METAS[*meta])),
        ),
        Op::Delete { spec, unit } => (
            "DELETE",
            format!(
                "{}/work_unit?name={}",
                spec_path(*spec),
                percent_encode(&names[*unit])
            ),
            None,
        ),
        Op::DeleteBy { spec, query } => (
            "DELETE",
            format!("{}/work_unit{}", spec_path(*spec), QUERIES[*query]),
            None,
        ),
        Op::RequestAttempts {
            spec,
            units,
            lifetime_s,
        } => (
            "POST",
            format!("/namespace/{ns}/worker/w/request_attempts"),
            Some(format!(
                r#"{{"number_of_work_units": {units}, "lifetime": {}, "work_specs": [{}]}}"#,
                lifetime_s * 1_000_000_000,
                serde_json::Value::from(names[*spec].as_str())
            )),
        ),
        Op::Summary { all: false } => ("GET", format!("/namespace/{ns}/summary"), None),
        Op::Summary { all: true } => ("GET", "/summary".into(), None),
        Op::Attempts { spec, unit, which } => (
            "GET",
            match which {
                0 => format!("/namespace/{ns}/worker/w/active_attempts"),
                1 => format!("/namespace/{ns}/worker/w/all_attempts"),
                _ => format!(
                    "{}/work_unit/{}/attempts",
                    spec_path(*spec),
                    encode_segment(&names[*unit])
                ),
            },
            None,
        ),
        Op::Advance { .. } | Op::Act { .. } => unreachable!("not a request of its own: {op:?}"),
    }
}

/// The servers, for the whole test binary, on one clock: memory and
/// PostgreSQL (a database each), each plain and behind `Cache`; the first
/// is the reference the others are compared with.
struct Servers {
    clock: MockClock,
    stacks: Vec<(&'static str, SocketAddr)>,
    _stops: Vec<oneshot::Sender<()>>,
    _leases: Vec<DatabaseLease>,
    _runtime: tokio::runtime::Runtime,
}

fn servers() -> &'static Servers {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    SERVERS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let start = "2026-01-01T00:00:00Z".parse().expect("a time");
        let clock = MockClock::starting_at(start);
        let cluster = TestCluster::shared().unwrap_or_else(|e| panic!("no PostgreSQL: {e}"));
        let mut leases = Vec::new();
        let mut postgres = || {
            let (backend, lease) = runtime
                .block_on(cluster.lease_backend(clock.clone()))
                .unwrap_or_else(|e| panic!("cannot make a PostgreSQL backend: {e}"));
            leases.push(lease);
            backend
        };
        let backends: [(&'static str, Arc<dyn Backend>); 4] = [
            ("memory", Arc::new(MemoryBackend::with_clock(clock.clone()))),
            (
                "cached memory",
                Arc::new(Cache::new(MemoryBackend::with_clock(clock.clone()))),
            ),
            ("postgres", Arc::new(postgres())),
            ("cached postgres", Arc::new(Cache::new(postgres()))),
        ];
        let mut stacks = Vec::new();
        let mut stops = Vec::new();
        for (label, backend) in backends {
            let app = coordinated::router(backend, &coordinated::ServerOptions::default());
            let (url, stop) = runtime.block_on(support::in_process::serve(app));
            let addr = url.trim_start_matches("http://").parse().expect("address");
            stacks.push((label, addr));
            stops.push(stop);
        }
        Servers {
            clock,
            stacks,
            _stops: stops,
            _leases: leases,
            _runtime: runtime,
        }
    })
}

/// What must agree: status, content type and body, with the backend's own
/// attempt identifiers (the `_{id}` of attempt URLs) left out.
fn answer(reply: &Reply) -> (u16, Option<String>, String) {
    (
        reply.status,
        reply.header("content-type").map(str::to_owned),
        without_attempt_ids(&reply.text()),
    )
}

/// `text` with the digits after each `Z_` (an attempt URL's start second
/// and identifier) replaced by `#`.
fn without_attempt_ids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("Z_") {
        out.push_str(&rest[..at + 2]);
        rest = &rest[at + 2..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            out.push('#');
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// 96 cases from a fixed seed, or `DIFF_CASES` from `DIFF_SEED` (as the
/// backend-level differential test takes them).
fn config() -> Config {
    fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
        std::env::var(name).ok().and_then(|v| v.parse().ok())
    }
    Config {
        cases: env("DIFF_CASES").unwrap_or(96),
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(env("DIFF_SEED").unwrap_or(0x4854_5450)),
        failure_persistence: None,
        max_shrink_iters: 400,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_stack_answers_alike(ops in proptest::collection::vec(op(), 1..40)) {
        static CASE: AtomicUsize = AtomicUsize::new(0);
        let ns = format!("d{}", CASE.fetch_add(1, Ordering::Relaxed));
        let servers = servers();
        let json = [("Content-Type", "application/json")];
        // Every name starts as a spec (the one over the limit is refused),
        // so that most unit requests reach a spec.
        let setup = (0..names().len()).map(|name| Op::SetSpec { name, field: 0 });
        // The attempts handed out so far: each server's own URL of each.
        let mut handed: Vec<Vec<String>> = Vec::new();
        for op in setup.chain(ops.iter().cloned()) {
            let (replies, what) = match op {
                Op::Advance { seconds } => {
                    servers.clock.advance(Duration::seconds(seconds));
                    continue;
                }
                Op::Act { attempt, action, data } if !handed.is_empty() => {
                    let urls = &handed[attempt % handed.len()];
                    let body = format!(
                        r#"{{"data": {}, "extend_duration": 5000000000, "delay": 3000000000}}"#,
                        data.map_or("null", |d| data_bodies()[d].as_str())
                    );
                    let action = ACTIONS[action];
                    let replies: Vec<Reply> = servers
                        .stacks
                        .iter()
                        .zip(urls)
                        .map(|((_, addr), url)| {
                            request(*addr, "POST", &format!("{url}/{action}"), &json, Some(&body))
                        })
                        .collect();
                    (replies, format!("{action} of {} {body}", urls[0]))
                }
                Op::Act { .. } => continue,
                _ => {
                    let (method, path, body) = http(&op, &ns);
                    let replies: Vec<Reply> = servers
                        .stacks
                        .iter()
                        .map(|(_, addr)| request(*addr, method, &path, &json, body.as_deref()))
                        .collect();
                    (replies, format!("{method} {path} {body:?}"))
                }
            };
            for ((label, _), reply) in servers.stacks.iter().zip(&replies).skip(1) {
                prop_assert_eq!(
                    answer(&replies[0]),
                    answer(reply),
                    "memory against {}: {}",
                    label,
                    what
                );
            }
            if matches!(op, Op::RequestAttempts { .. }) && replies[0].status == 200 {
                let urls = |reply: &Reply| -> Vec<String> {
                    reply.json()["attempts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|attempt| attempt["url"].as_str().map(str::to_owned))
                        .collect()
                };
                let per_server: Vec<Vec<String>> = replies.iter().map(urls).collect();
                for i in 0..per_server[0].len() {
                    handed.push(per_server.iter().map(|urls| urls[i].clone()).collect());
                }
            }
        }
    }
}

#[test]
fn attempt_ids_are_left_out() {
    assert_eq!(
        without_attempt_ids(r#"{"url":"/u/attempt/w/1970-01-01T00:00:00Z_265/x","n":"Z_"}"#),
        r#"{"url":"/u/attempt/w/1970-01-01T00:00:00Z_#/x","n":"Z_"}"#
    );
}
