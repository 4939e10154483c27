//! Cancelled lookups leave nothing behind, as a property test.
//!
//! A job server drops a request's future whenever its client disconnects or
//! a timeout fires; these lookups are cancelled at random points while the
//! backend takes a millisecond per lookup, as a database round trip would.

use std::collections::BTreeSet;
use std::time::Duration as StdDuration;

use coordinate::cache::{Cache, CacheStats};
use coordinate::instrumented::{Instrumented, Op};
use coordinate::memory::MemoryBackend;
use coordinate::{data, Backend, BackendExt, Error, WorkUnitMeta, WorkUnitQuery};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError};

type Fallible = Result<(), TestCaseError>;

const UNITS: &[&str] = &["u0", "u1", "u2", "u3"];
const LATENCY: StdDuration = StdDuration::from_millis(1);

fn config() -> Config {
    Config {
        cases: 64,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0xCA9CE1),
        failure_persistence: None,
        ..Config::default()
    }
}

/// One lookup of a unit, given up after `cancel_after` if set.
#[derive(Debug, Clone)]
struct Lookup {
    unit: usize,
    cancel_after: Option<StdDuration>,
}

#[derive(Debug, Clone)]
enum Step {
    /// Lookups run concurrently, some of one name, some cancelled.
    Lookups(Vec<Lookup>),
    /// A unit created behind the cache's back (no event says so).
    CreateBehind(usize),
    /// A unit deleted through the cache.
    Delete(usize),
}

fn lookup() -> impl Strategy<Value = Lookup> {
    (
        0..UNITS.len(),
        prop_oneof![
            1 => Just(None),
            3 => (0u64..2_500).prop_map(|us| Some(StdDuration::from_micros(us))),
        ],
    )
        .prop_map(|(unit, cancel_after)| Lookup { unit, cancel_after })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => prop::collection::vec(lookup(), 1..8).prop_map(Step::Lookups),
        1 => (0..UNITS.len()).prop_map(Step::CreateBehind),
        1 => (0..UNITS.len()).prop_map(Step::Delete),
    ]
}

fn fail(what: impl std::fmt::Debug) -> TestCaseError {
    TestCaseError::fail(format!("{what:?}"))
}

fn in_flight(stats: &CacheStats) -> u64 {
    stats.namespaces.loads_in_flight
        + stats.work_specs.loads_in_flight
        + stats.work_units.loads_in_flight
        + stats.workers.loads_in_flight
}

/// Checks the answer of a lookup that was not cancelled.
fn check_answer(
    answer: coordinate::Result<coordinate::WorkUnitRef>,
    name: &str,
    exists: bool,
) -> Fallible {
    match answer {
        Ok(unit) if exists => prop_assert_eq!(unit.name(), name),
        Err(Error::NoSuchWorkUnit { name: missing }) if !exists => {
            prop_assert_eq!(missing, name)
        }
        other => return Err(fail((name, exists, other.map(|u| u.name().to_string())))),
    }
    Ok(())
}

/// The bookkeeping law after every step: no load in flight, and every load
/// the cache started was exactly one backend lookup of its kind.
fn check_nothing_left(cache: &Cache<Instrumented<MemoryBackend>>) -> Fallible {
    let stats = cache.stats();
    prop_assert_eq!(in_flight(&stats), 0, "{:?}", stats);
    let calls = cache.get_ref().calls();
    prop_assert_eq!(calls.get(Op::Namespace), stats.namespaces.backend_loads);
    prop_assert_eq!(calls.get(Op::WorkSpec), stats.work_specs.backend_loads);
    prop_assert_eq!(calls.get(Op::WorkUnit), stats.work_units.backend_loads);
    Ok(())
}

async fn run(steps: Vec<Step>) -> Fallible {
    let memory = MemoryBackend::new();
    let direct = memory
        .namespace("n")
        .await
        .map_err(fail)?
        .set_work_spec(data!({"name": "s"}))
        .await
        .map_err(fail)?;
    let cache = Cache::new(Instrumented::with_lookup_latency(memory, LATENCY));
    let mut existing = BTreeSet::new();
    for step in steps {
        match step {
            Step::Lookups(lookups) => {
                let answers = futures::future::join_all(lookups.iter().map(|l| {
                    let lookup = cache.work_unit_at("n", "s", UNITS[l.unit]);
                    async move {
                        match l.cancel_after {
                            Some(limit) => tokio::time::timeout(limit, lookup).await.ok(),
                            None => Some(lookup.await),
                        }
                    }
                }))
                .await;
                for (l, answer) in lookups.iter().zip(answers) {
                    if let Some(answer) = answer {
                        check_answer(answer, UNITS[l.unit], existing.contains(&l.unit))?;
                    }
                }
            }
            Step::CreateBehind(unit) => {
                if existing.insert(unit) {
                    direct
                        .add_work_unit(UNITS[unit], data!({}), WorkUnitMeta::default())
                        .await
                        .map_err(fail)?;
                }
            }
            Step::Delete(unit) => {
                existing.remove(&unit);
                let spec = cache.work_spec_at("n", "s").await.map_err(fail)?;
                spec.delete_work_units(&WorkUnitQuery::names([UNITS[unit]]))
                    .await
                    .map_err(fail)?;
            }
        }
        check_nothing_left(&cache)?;
    }
    // The next answers are right, each after at most one backend lookup.
    for (i, name) in UNITS.iter().enumerate() {
        let before = cache.get_ref().calls().get(Op::WorkUnit);
        check_answer(
            cache.work_unit_at("n", "s", name).await,
            name,
            existing.contains(&i),
        )?;
        prop_assert!(cache.get_ref().calls().get(Op::WorkUnit) <= before + 1);
    }
    check_nothing_left(&cache)
}

proptest! {
    #![proptest_config(config())]

    /// **Law: cancelling lookups leaves nothing behind.** Whatever the
    /// point at which lookups are cancelled (some of them sharing a load
    /// with lookups that finish), once no lookup runs no load is in flight;
    /// every load the cache started was exactly one backend lookup (none is
    /// kept to be resumed by a later lookup); every lookup that finished
    /// answered right; and afterwards every name answers right — including
    /// a unit created, behind the cache's back, after a cancelled lookup
    /// of its name — with at most one backend lookup each.
    #[test]
    fn cancelled_lookups_leave_nothing_behind(steps in prop::collection::vec(step(), 1..12)) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(fail)?
            .block_on(run(steps))?;
    }
}
