//! A worker process: asks a Coordinate REST server for work, does it, and
//! reports the results, through `Cache<RestBackend>`.
//!
//! ```text
//! cargo run --release --bin coordinated -- --http 127.0.0.1:5980 &
//! # once it prints `coordinated listening on http://127.0.0.1:5980`:
//! cargo run --release --features rest --example worker -- --seed 100 --exit-when-idle
//! kill %1
//! ```
//!
//! The cache resolves the namespace, work spec, work unit and worker names
//! once; after that every operation on them is one HTTP request. The work
//! here is a stand-in (counting the words in a unit's text fields); a real
//! worker puts its job where `work` is.
//!
//! Units are leased for five minutes a batch; one still waiting when half
//! of that is gone is renewed before it is worked. On Ctrl-C or an error,
//! the units not worked yet are given back at once, and the worker is
//! deactivated either way.

use std::process::ExitCode;
use std::time::{Duration as StdDuration, Instant};

use clap::Parser;
use coordinate::cache::Cache;
use coordinate::rest::client::RestBackend;
use coordinate::{
    data, AttemptRef, AttemptRequest, Backend, DataMap, Duration, Error, WorkUnitMeta, WorkerRef,
};
use tokio::sync::watch;

/// A Coordinate worker over the REST API.
#[derive(Debug, Parser)]
#[command(name = "worker")]
struct Args {
    /// Base URL of the job server.
    #[arg(long, default_value = "http://127.0.0.1:5980/")]
    server: String,
    /// Namespace to work in.
    #[arg(long, default_value = "example")]
    namespace: String,
    /// Worker name (default: worker-<pid>).
    #[arg(long)]
    name: Option<String>,
    /// Work units asked for per request.
    #[arg(long, default_value_t = 10)]
    batch: i64,
    /// Seconds to wait before asking again when there is no work.
    #[arg(long, default_value = "1", value_parser = seconds)]
    poll: StdDuration,
    /// First create the work spec `words` with this many units.
    #[arg(long, default_value_t = 0)]
    seed: usize,
    /// Stop when a request finds no work instead of polling.
    #[arg(long)]
    exit_when_idle: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(done) => {
            println!("worker: {done} work units done");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("worker: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The lease asked for per unit, and for the worker's heartbeat.
const LEASE: StdDuration = StdDuration::from_secs(5 * 60);

async fn run(args: &Args) -> coordinate::Result<u64> {
    let rest = RestBackend::builder(&args.server)
        .timeout(StdDuration::from_secs(30))
        .connect()
        .await?;
    let backend = Cache::new(rest);
    let ns = backend.namespace(&args.namespace).await?;
    if args.seed > 0 {
        seed(&backend, &args.namespace, args.seed).await?;
    }
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("worker-{}", std::process::id()));
    let worker = ns.worker(&name).await?;
    let worked = work_until_stopped(&worker, args, ctrl_c()).await;
    // However the work ended, the server stops counting on this worker.
    let deactivated = worker.deactivate().await;
    if let (Err(_), Err(e)) = (&worked, &deactivated) {
        eprintln!("worker: not deactivated either: {e}");
    }
    let done = worked?;
    deactivated?;
    Ok(done)
}

/// Asks for batches and works them until there is no work (with
/// `--exit-when-idle`), Ctrl-C or an error; answers the units done.
async fn work_until_stopped(
    worker: &WorkerRef,
    args: &Args,
    mut stop: watch::Receiver<bool>,
) -> coordinate::Result<u64> {
    let poll = args.poll.max(StdDuration::from_millis(10));
    let request = AttemptRequest {
        lifetime: LEASE.into(),
        ..AttemptRequest::units(args.batch)
    };
    let mut done = 0;
    // Ctrl-C is checked between requests, never raced against one: a
    // request for work dropped half-way may have been granted already,
    // leaving its units leased to a worker that has gone.
    while !stopped(&stop) {
        heartbeat(worker).await?;
        let asked = Instant::now();
        let attempts = worker.request_attempts(&request).await?;
        if attempts.is_empty() {
            if args.exit_when_idle {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                Ok(()) = stop.changed() => {}
            }
            continue;
        }
        done += work_batch(&attempts, asked + LEASE / 2, &stop).await?;
    }
    Ok(done)
}

/// Works a batch's attempts in turn, renewing from `renew_from` on (when
/// half their lease is gone); answers how many units it finished or failed. The attempts not done because of an
/// error or Ctrl-C are given back (`expire`, as if their lease ran out)
/// so that other workers get them now rather than minutes later.
async fn work_batch(
    attempts: &[AttemptRef],
    renew_from: Instant,
    stop: &watch::Receiver<bool>,
) -> coordinate::Result<u64> {
    let mut done = 0;
    for (i, attempt) in attempts.iter().enumerate() {
        if stopped(stop) {
            release(&attempts[i..]).await;
            break;
        }
        let worked = match keep_leased(attempt, renew_from).await {
            Ok(true) => complete(attempt).await,
            lost_or_failed => lost_or_failed,
        };
        match worked {
            Ok(finished) => done += u64::from(finished),
            Err(e) => {
                release(&attempts[i..]).await;
                return Err(e);
            }
        }
    }
    Ok(done)
}

/// Renews an attempt once `renew_from` has come (less than half of its
/// lease is left), so that it cannot run out while the attempt is worked
/// on; false if the lease was lost meanwhile.
async fn keep_leased(attempt: &AttemptRef, renew_from: Instant) -> coordinate::Result<bool> {
    if Instant::now() < renew_from {
        return Ok(true);
    }
    reported(attempt.renew(LEASE.into(), None).await)
}

/// Gives the attempts' units back. Best effort: a unit finished or taken
/// over meanwhile refuses, and one that cannot be reached is given back
/// when its lease runs out.
async fn release(attempts: &[AttemptRef]) {
    for attempt in attempts {
        match attempt.expire(None).await {
            Ok(()) | Err(Error::NotPending | Error::LostLease | Error::Gone { .. }) => {}
            Err(e) => eprintln!(
                "worker: unit {} not given back ({e}); it is when its lease runs out",
                attempt.work_unit().name()
            ),
        }
    }
}

/// Ctrl-C, as a flag checked between steps.
fn ctrl_c() -> watch::Receiver<bool> {
    let (pressed, stop) = watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            pressed.send_replace(true);
        }
    });
    stop
}

fn stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow()
}

/// Tells the server the worker is alive for the next few minutes.
async fn heartbeat(worker: &WorkerRef) -> coordinate::Result<()> {
    let now = chrono::Utc::now();
    let info = data!({"pid": std::process::id()});
    worker
        .update(info, now, now + Duration::from(LEASE), "run")
        .await
}

/// Does one attempt's work and reports it; false if the lease was lost
/// meanwhile (someone else has the unit now, which is not an error).
///
/// Only the job's own failure fails the unit: a unit that cannot be read
/// (the backend out of reach) is an error of the worker's, and the unit is
/// given back for a later try.
async fn complete(attempt: &AttemptRef) -> coordinate::Result<bool> {
    let unit = attempt.work_unit();
    let input = match unit.data().await {
        Ok(input) => input,
        Err(e) => return reported(Err(e)),
    };
    reported(match work(unit.name(), &input) {
        Ok(result) => attempt.finish(Some(result)).await,
        Err(reason) => attempt.fail(Some(data!({ "error": reason }))).await,
    })
}

/// A call on an attempt: true if it went through, false if the lease was
/// lost meanwhile (someone else has the unit now, which is not an error,
/// but its work here is lost: said on stderr).
fn reported(call: coordinate::Result<()>) -> coordinate::Result<bool> {
    match call {
        Ok(()) => Ok(true),
        Err(e @ (Error::NotPending | Error::LostLease | Error::Gone { .. })) => {
            eprintln!("worker: an attempt's lease was lost ({e}); its work is dropped");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// A flag's number of seconds, as a duration (zero or more, finite).
fn seconds(text: &str) -> Result<StdDuration, String> {
    let secs: f64 = text.parse().map_err(|e| format!("{text:?}: {e}"))?;
    StdDuration::try_from_secs_f64(secs).map_err(|e| format!("{text:?}: {e}"))
}

/// The job: count the words in the unit's text fields.
fn work(unit: &str, input: &DataMap) -> Result<DataMap, String> {
    let words: usize = input
        .values()
        .filter_map(|v| v.as_str())
        .map(|text| text.split_whitespace().count())
        .sum();
    Ok(data!({"unit": unit, "words": words}))
}

/// Creates the work spec `words` and `count` units for it.
async fn seed(backend: &dyn Backend, namespace: &str, count: usize) -> coordinate::Result<()> {
    let ns = backend.namespace(namespace).await?;
    let spec = ns.set_work_spec(data!({"name": "words"})).await?;
    for i in 0..count {
        let text = "the quick brown fox jumps over the lazy dog ".repeat(i % 7 + 1);
        spec.add_work_unit(
            &format!("text-{i:05}"),
            data!({ "text": text }),
            WorkUnitMeta::default(),
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use coordinate::instrumented::{Instrumented, Op};
    use coordinate::{MemoryBackend, WorkUnitStatus};

    use super::*;

    /// A worker of a fresh store holding `units` units of spec `words`.
    async fn holding(units: usize) -> (Instrumented<MemoryBackend>, Vec<AttemptRef>) {
        let backend = Instrumented::new(MemoryBackend::new());
        seed(&backend, "test", units).await.expect("seeded");
        let ns = backend.namespace("test").await.expect("namespace");
        let worker = ns.worker("w").await.expect("worker");
        let request = AttemptRequest::units(units as i64);
        let attempts = worker.request_attempts(&request).await.expect("work");
        assert_eq!(attempts.len(), units);
        backend.reset();
        (backend, attempts)
    }

    #[tokio::test]
    async fn a_stopped_worker_gives_back_the_units_it_has_not_worked() {
        let (_, attempts) = holding(3).await;
        let (_pressed, stop) = watch::channel(true);
        let done = work_batch(&attempts, Instant::now() + LEASE, &stop).await;
        assert_eq!(done.expect("worked"), 0);
        for attempt in &attempts {
            let status = attempt.work_unit().status().await.expect("status");
            assert_eq!(status, WorkUnitStatus::Available);
        }
    }

    #[tokio::test]
    async fn attempts_are_renewed_once_half_their_lease_is_gone() {
        let (_pressed, stop) = watch::channel(false);
        let (backend, attempts) = holding(2).await;
        let done = work_batch(&attempts, Instant::now() + LEASE, &stop).await;
        assert_eq!(done.expect("worked"), 2);
        assert_eq!(backend.calls().get(Op::Renew), 0);

        let (backend, attempts) = holding(2).await;
        let done = work_batch(&attempts, Instant::now(), &stop).await;
        assert_eq!(done.expect("worked"), 2);
        assert_eq!(backend.calls().get(Op::Renew), 2);
    }
}
