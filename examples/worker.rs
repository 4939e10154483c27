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
//! Each batch's units are leased for five minutes (`--lease`). Jobs run on
//! a blocking thread, so a slow one stalls nothing; before and while each
//! runs, every half lease the worker tells the server it is alive and
//! renews the batch's units not done yet, the one being worked included; a
//! unit whose lease was lost meanwhile is skipped, its work dropped. On
//! Ctrl-C or an error, the units not worked yet are given back at once (on
//! Ctrl-C, the job running is reported when it ends; pressed again, the
//! worker exits at once), and the worker is deactivated either way. A
//! server that does not answer (down, or restarting) or fails itself (a
//! `5xx`: its database out of reach, say) is not an error that stops the
//! worker: its heartbeat, request for work, read of a unit or report of a
//! job's outcome is tried again, a poll interval later (at most a minute),
//! then twice that, up to a minute apart; a unit whose lease ran out
//! meanwhile is dropped, as any lost lease. A request for work whose answer
//! was lost may have been granted, so its next try first takes the units
//! the worker already holds (its active attempts). An error the server
//! answers for the request itself (a result over its body limit, say) stops
//! the worker.
//!
//! For an `https` server whose certificate a private authority signed,
//! `--ca FILE` trusts that authority's PEM certificate; for one that admits
//! only clients with a certificate (mutual TLS), `--identity FILE` shows
//! the worker's: its PEM certificate and private key, in one file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration as StdDuration, Instant};

use clap::Parser;
use coordinate::cache::Cache;
use coordinate::rest::client::{is_server_failure, RestBackend, RestBackendBuilder};
use coordinate::rules::limits::MAX_TIME;
use coordinate::{
    data, AttemptRef, AttemptRequest, AttemptStatus, Backend, DataMap, Duration, Error,
    WorkUnitMeta, WorkerRef,
};
use tokio::sync::watch;

use coordinate::error::error_chain;

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
    /// Seconds each unit is leased for, and the worker's heartbeat lasts;
    /// renewed every half of it while there is work.
    #[arg(long, default_value = "300", value_parser = lease)]
    lease: StdDuration,
    /// PEM file of authorities to trust, beside the system's, to sign an
    /// `https` server's certificate.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// PEM file holding this worker's certificate and its private key,
    /// shown to an `https` server that asks for one (mutual TLS).
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let client = match client(&args) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("worker: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("worker: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(&args, client));
    // A job still running (the worker stopped on an error) is not waited
    // for: its unit is given back when its lease runs out.
    runtime.shutdown_background();
    match outcome {
        Ok(done) => {
            println!("worker: {done} work units done");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("worker: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The client of `--server`, trusting `--ca` and showing `--identity`.
fn client(args: &Args) -> Result<RestBackendBuilder, String> {
    let mut client = RestBackend::builder(&args.server).timeout(StdDuration::from_secs(30));
    if let Some(ca) = &args.ca {
        client = client.root_certificates(read(ca)?);
    }
    if let Some(identity) = &args.identity {
        client = client.identity(read(identity)?);
    }
    Ok(client)
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

async fn run(args: &Args, client: RestBackendBuilder) -> coordinate::Result<u64> {
    let rest = client.connect().await?;
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
        lifetime: args.lease.into(),
        ..AttemptRequest::units(args.batch)
    };
    let mut done = 0;
    // Ctrl-C is checked between requests, never raced against one: a
    // request for work dropped half-way may have been granted already,
    // leaving its units leased to a worker that has gone.
    while !stopped(&stop) {
        retrying("heartbeat", poll, &mut stop, || {
            heartbeat(worker, args.lease)
        })
        .await?;
        let asked = Instant::now();
        let attempts = asked_for_work(worker, poll, &mut stop, || {
            worker.request_attempts(&request)
        })
        .await?;
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
        let batch = Batch::new(worker, &attempts, asked, args.lease).retry_after(poll);
        done += batch.work(work, &stop).await?;
    }
    Ok(done)
}

/// The attempts of a request for work, `ask`, tried again while the server
/// fails. A try whose answer was lost (a timeout, a connection cut) may
/// have been granted all the same, and its units leased to this worker;
/// they are on the worker's active list. So each try after a failed one
/// first reads that list, and answers what it holds, if anything, instead
/// of asking for more and leaving those units to wait out their lease.
async fn asked_for_work<F, Fut>(
    worker: &WorkerRef,
    poll: StdDuration,
    stop: &mut watch::Receiver<bool>,
    mut ask: F,
) -> coordinate::Result<Vec<AttemptRef>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = coordinate::Result<Vec<AttemptRef>>>,
{
    let tried = std::cell::Cell::new(false);
    retrying("request for work", poll, stop, || {
        let again = tried.replace(true);
        let asked = ask();
        async move {
            if again {
                let held = worker.active_attempts().await?;
                if !held.is_empty() {
                    return Ok(held);
                }
            }
            asked.await
        }
    })
    .await
}

/// A job: a unit's name and data in, its result or why it failed out.
type Job = fn(&str, &DataMap) -> Result<DataMap, String>;

/// The attempts of one request for work, worked in turn, and their leases.
struct Batch<'a> {
    worker: &'a WorkerRef,
    attempts: &'a [AttemptRef],
    /// The attempts whose lease was lost (someone else has the unit now).
    lost: Vec<bool>,
    lease: StdDuration,
    /// When half of the shortest lease left is gone.
    renew_at: Instant,
    /// The first wait before a call the server did not answer is tried
    /// again (see [`retrying`]).
    retry_wait: StdDuration,
}

impl<'a> Batch<'a> {
    /// The batch of `attempts`, asked for at `asked` with `lease`.
    fn new(
        worker: &'a WorkerRef,
        attempts: &'a [AttemptRef],
        asked: Instant,
        lease: StdDuration,
    ) -> Self {
        Batch {
            worker,
            attempts,
            lost: vec![false; attempts.len()],
            lease,
            renew_at: asked + lease / 2,
            retry_wait: StdDuration::from_secs(1),
        }
    }

    /// The batch, waiting `wait` before first trying again a call the server
    /// did not answer.
    fn retry_after(self, wait: StdDuration) -> Self {
        Batch {
            retry_wait: wait,
            ..self
        }
    }

    /// Works the attempts in turn with `job`; answers how many units it
    /// finished or failed. The attempts not done because of an error or
    /// Ctrl-C are given back (`expire`, as if their lease ran out) so that
    /// other workers get them now rather than minutes later.
    async fn work(mut self, job: Job, stop: &watch::Receiver<bool>) -> coordinate::Result<u64> {
        let mut done = 0;
        for i in 0..self.attempts.len() {
            if stopped(stop) {
                self.give_back(i).await;
                break;
            }
            match self.complete(i, job, stop.clone()).await {
                Ok(finished) => done += u64::from(finished),
                Err(e) => {
                    self.give_back(i).await;
                    return Err(e);
                }
            }
        }
        Ok(done)
    }

    /// Gives back the units of the attempts from `i` on that still hold
    /// their lease (see [`release`]), and renews them no more.
    async fn give_back(&mut self, i: usize) {
        for (attempt, lost) in self.attempts[i..].iter().zip(&mut self.lost[i..]) {
            if !std::mem::replace(lost, true) {
                release(attempt).await;
            }
        }
    }

    /// Runs attempt `i`'s job, renewing the leases when due before and
    /// while it runs, and reports its outcome; false if the lease was lost
    /// meanwhile.
    ///
    /// Only the job's own failure fails the unit. Reading the unit and
    /// reporting the outcome are tried again while the server does not
    /// answer (see [`retrying`]); stopped meanwhile, that is an error of the
    /// worker's, and the unit is given back for a later try.
    async fn complete(
        &mut self,
        i: usize,
        job: Job,
        mut stop: watch::Receiver<bool>,
    ) -> coordinate::Result<bool> {
        self.renew_if_due(i).await;
        if self.lost[i] {
            return Ok(false);
        }
        let attempt = &self.attempts[i];
        let unit = attempt.work_unit();
        let wait = self.retry_wait;
        let input = match retrying("reading a unit", wait, &mut stop, || unit.data()).await {
            Ok(input) => input,
            Err(e) => return reported(Err(e)),
        };
        let name = unit.name().to_string();
        let mut running = tokio::task::spawn_blocking(move || job(&name, &input));
        let mut watching = true;
        let outcome = loop {
            tokio::select! {
                outcome = &mut running => break outcome,
                () = tokio::time::sleep_until(self.renew_at.into()) => self.renew_if_due(i).await,
                // On Ctrl-C the units not started are given back at once;
                // this one is reported when its job ends.
                pressed = stop.changed(), if watching => {
                    watching = false;
                    if pressed.is_ok() {
                        self.give_back(i + 1).await;
                    }
                }
            }
        };
        if self.lost[i] {
            return Ok(false);
        }
        let attempt = &self.attempts[i];
        // A job that panicked failed.
        let outcome = outcome.unwrap_or_else(|panicked| Err(panicked.to_string()));
        let report = retrying("reporting a job", wait, &mut stop, || match &outcome {
            Ok(result) => attempt.finish(Some(result.clone())),
            Err(reason) => attempt.fail(Some(data!({ "error": reason }))),
        })
        .await;
        // A report tried again after the server applied it but its answer
        // was lost finds the attempt no longer pending: ended as reported,
        // it was.
        if report == Err(Error::NotPending) {
            let reported_status = match outcome {
                Ok(_) => AttemptStatus::Finished,
                Err(_) => AttemptStatus::Failed,
            };
            let status = retrying("reading a status", wait, &mut stop, || attempt.status());
            if status.await == Ok(reported_status) {
                return Ok(true);
            }
        }
        reported(report)
    }

    /// Once half of the lease is gone, tells the server the worker is alive
    /// and renews the attempts from `i` on that still hold theirs. A call
    /// that fails (the server out of reach, say) is said on stderr and
    /// tried again after an eighth of the lease, while the leases last.
    async fn renew_if_due(&mut self, i: usize) {
        if Instant::now() < self.renew_at {
            return;
        }
        let mut failed = heartbeat(self.worker, self.lease).await.err();
        for (attempt, lost) in self.attempts[i..].iter().zip(&mut self.lost[i..]) {
            if !*lost {
                match reported(attempt.renew(self.lease.into(), None).await) {
                    Ok(held) => *lost = !held,
                    Err(e) => failed = Some(e),
                }
            }
        }
        let wait = match failed {
            Some(e) => {
                eprintln!("worker: leases not renewed ({e}); trying again");
                self.lease / 8
            }
            None => self.lease / 2,
        };
        self.renew_at = Instant::now() + wait;
    }
}

/// Gives an attempt's unit back. Best effort: a unit finished or taken
/// over meanwhile refuses, and one that cannot be reached is given back
/// when its lease runs out.
async fn release(attempt: &AttemptRef) {
    match attempt.expire(None).await {
        Ok(()) | Err(Error::NotPending | Error::LostLease | Error::Gone { .. }) => {}
        Err(e) => eprintln!(
            "worker: unit {} not given back ({e}); it is when its lease runs out",
            attempt.work_unit().name()
        ),
    }
}

/// Ctrl-C, as a flag checked between steps; pressed again, it exits at
/// once, leaving the units held to be given back when their leases run out.
fn ctrl_c() -> watch::Receiver<bool> {
    let (pressed, stop) = watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            pressed.send_replace(true);
            eprintln!("worker: stopping once the job running ends (Ctrl-C again: at once)");
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
    stop
}

fn stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow()
}

/// The longest wait between tries of [`retrying`].
const MAX_RETRY_WAIT: StdDuration = StdDuration::from_secs(60);

/// `call`'s answer once it is anything but the server's failure (the
/// server unreachable, restarting, too slow, or failing itself: a server
/// error, see [`is_server_failure`]): each such failure is reported on stderr
/// and `call` tried again after `wait` (at most a minute), doubled each
/// time up to a minute. Stopped meanwhile, the last failure. An error the
/// server answered for the request (its body too large, say) is answered
/// at once: sent again, it would be refused again.
async fn retrying<T, F, Fut>(
    what: &str,
    wait: StdDuration,
    stop: &mut watch::Receiver<bool>,
    mut call: F,
) -> coordinate::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = coordinate::Result<T>>,
{
    let mut wait = wait.min(MAX_RETRY_WAIT);
    loop {
        let failed = match call().await {
            Err(e) if is_server_failure(&e) => e,
            answer => return answer,
        };
        if stopped(stop) {
            return Err(failed);
        }
        eprintln!(
            "worker: {what} failed ({}); trying again in {wait:?}",
            error_chain(&failed)
        );
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            Ok(()) = stop.changed() => return Err(failed),
        }
        wait = (wait * 2).min(MAX_RETRY_WAIT);
    }
}

/// Tells the server the worker is alive for the next `lease`.
async fn heartbeat(worker: &WorkerRef, lease: StdDuration) -> coordinate::Result<()> {
    let now = chrono::Utc::now();
    let info = data!({"pid": std::process::id()});
    worker
        .update(info, now, now + Duration::from(lease), "run")
        .await
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

/// A lease of a flag's number of seconds, at least one, and short enough
/// that a lease (or heartbeat) taken now ends by [`MAX_TIME`], the last
/// time a backend keeps.
fn lease(text: &str) -> Result<StdDuration, String> {
    let lease = seconds(text)?;
    if lease < StdDuration::from_secs(1) {
        return Err(format!("{text:?}: a lease is at least one second"));
    }
    let ends = chrono::Utc::now().checked_add_signed(Duration::from(lease).into());
    if ends.map_or(true, |ends| ends > MAX_TIME) {
        return Err(format!(
            "{text:?}: a lease taken now must end by {MAX_TIME}"
        ));
    }
    Ok(lease)
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
    use std::any::Any;
    use std::ffi::OsStr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use async_trait::async_trait;
    use coordinate::instrumented::{Instrumented, Op};
    use coordinate::rest::client::{IdentityError, ProtocolError, RootCertificatesError};
    use coordinate::rest::RemoteError;
    use coordinate::{
        Attempt, MemoryBackend, Time, WorkSpecRef, WorkUnit, WorkUnitRef, WorkUnitStatus,
    };

    use super::*;

    /// A lease as the worker asks for by default.
    const LEASE: StdDuration = StdDuration::from_secs(300);

    /// A worker of a fresh store holding `units` units of spec `words`,
    /// leased for `lease`.
    async fn holding(
        units: usize,
        lease: StdDuration,
    ) -> (Instrumented<MemoryBackend>, WorkerRef, Vec<AttemptRef>) {
        let backend = Instrumented::new(MemoryBackend::new());
        seed(&backend, "test", units).await.expect("seeded");
        let ns = backend.namespace("test").await.expect("namespace");
        let worker = ns.worker("w").await.expect("worker");
        let request = AttemptRequest {
            lifetime: lease.into(),
            ..AttemptRequest::units(units as i64)
        };
        let attempts = worker.request_attempts(&request).await.expect("work");
        assert_eq!(attempts.len(), units);
        backend.reset();
        (backend, worker, attempts)
    }

    async fn statuses(attempts: &[AttemptRef]) -> Vec<WorkUnitStatus> {
        let mut statuses = Vec::new();
        for attempt in attempts {
            statuses.push(attempt.work_unit().status().await.expect("status"));
        }
        statuses
    }

    #[tokio::test]
    async fn a_stopped_worker_gives_back_the_units_it_has_not_worked() {
        let (_, worker, attempts) = holding(3, LEASE).await;
        let (_pressed, stop) = watch::channel(true);
        let batch = Batch::new(&worker, &attempts, Instant::now(), LEASE);
        assert_eq!(batch.work(work, &stop).await.expect("worked"), 0);
        let available = vec![WorkUnitStatus::Available; 3];
        assert_eq!(statuses(&attempts).await, available);
    }

    #[tokio::test]
    async fn attempts_are_renewed_together_once_half_their_lease_is_gone() {
        let (_pressed, stop) = watch::channel(false);
        let (backend, worker, attempts) = holding(2, LEASE).await;
        let batch = Batch::new(&worker, &attempts, Instant::now(), LEASE);
        assert_eq!(batch.work(work, &stop).await.expect("worked"), 2);
        assert_eq!(backend.calls().get(Op::Renew), 0);

        let (backend, worker, attempts) = holding(2, LEASE).await;
        let half_gone = Instant::now() - LEASE / 2;
        let batch = Batch::new(&worker, &attempts, half_gone, LEASE);
        assert_eq!(batch.work(work, &stop).await.expect("worked"), 2);
        assert_eq!(backend.calls().get(Op::Renew), 2);
        assert_eq!(backend.calls().get(Op::WorkerUpdate), 1);
        let finished = vec![WorkUnitStatus::Finished; 2];
        assert_eq!(statuses(&attempts).await, finished);
    }

    /// Jobs run by [`counted`].
    static JOBS: AtomicUsize = AtomicUsize::new(0);

    fn counted(unit: &str, input: &DataMap) -> Result<DataMap, String> {
        JOBS.fetch_add(1, Ordering::SeqCst);
        work(unit, input)
    }

    #[tokio::test]
    async fn a_unit_whose_lease_was_lost_is_not_worked() {
        let (_pressed, stop) = watch::channel(false);
        let (_, worker, attempts) = holding(2, LEASE).await;
        attempts[1].expire(None).await.expect("taken away");
        let half_gone = Instant::now() - LEASE / 2;
        let batch = Batch::new(&worker, &attempts, half_gone, LEASE);
        assert_eq!(batch.work(counted, &stop).await.expect("worked"), 1);
        assert_eq!(JOBS.load(Ordering::SeqCst), 1);
        let after = vec![WorkUnitStatus::Finished, WorkUnitStatus::Available];
        assert_eq!(statuses(&attempts).await, after);
    }

    /// A job that outlasts a two-second lease.
    fn slow(unit: &str, input: &DataMap) -> Result<DataMap, String> {
        std::thread::sleep(StdDuration::from_millis(3_000));
        work(unit, input)
    }

    #[tokio::test]
    async fn a_job_longer_than_the_lease_keeps_its_unit() {
        let lease = StdDuration::from_secs(2);
        let (_pressed, stop) = watch::channel(false);
        let (backend, worker, attempts) = holding(1, lease).await;
        let batch = Batch::new(&worker, &attempts, Instant::now(), lease);
        assert_eq!(batch.work(slow, &stop).await.expect("worked"), 1);
        assert!(backend.calls().get(Op::Renew) >= 2);
        assert_eq!(statuses(&attempts).await, [WorkUnitStatus::Finished]);
    }

    /// A job of a second and a half.
    fn a_while(unit: &str, input: &DataMap) -> Result<DataMap, String> {
        std::thread::sleep(StdDuration::from_millis(1_500));
        work(unit, input)
    }

    /// What a call to a server restarting meets.
    fn restarting() -> Error {
        Error::backend(RemoteError {
            code: "error".into(),
            message: "restarting".into(),
            status: Some(503),
        })
    }

    /// A call that fails with each of `failures` in turn, then answers how
    /// many tries came before it.
    fn failing_first(
        failures: Vec<Error>,
    ) -> impl FnMut() -> std::future::Ready<coordinate::Result<usize>> {
        let mut tries = 0;
        move || {
            let n = tries;
            tries += 1;
            std::future::ready(failures.get(n).cloned().map_or(Ok(n), Err))
        }
    }

    /// A request for work granted but answered with a failure, as one
    /// whose answer was lost: the try after it answers the attempts granted,
    /// and nothing more is leased. A failure before anything was granted is
    /// asked again.
    #[tokio::test]
    async fn a_request_for_work_whose_answer_was_lost_answers_what_it_was_granted() {
        let (_pressed, mut stop) = watch::channel(false);
        let backend = MemoryBackend::new();
        seed(&backend, "test", 5).await.expect("seeded");
        let ns = backend.namespace("test").await.expect("namespace");
        let worker = ns.worker("w").await.expect("worker");
        let request = AttemptRequest::units(2);
        let lost = |granted: usize| {
            let mut tries = 0;
            let (worker, request) = (worker.clone(), request.clone());
            move || {
                tries += 1;
                let (worker, request, tries) = (worker.clone(), request.clone(), tries);
                async move {
                    match tries {
                        1 if granted > 0 => {
                            let attempts = worker.request_attempts(&request).await?;
                            assert_eq!(attempts.len(), granted);
                            Err(restarting())
                        }
                        1 => Err(restarting()),
                        _ => worker.request_attempts(&request).await,
                    }
                }
            }
        };
        let wait = StdDuration::from_millis(1);
        let spec = ns.work_spec("words").await.expect("spec");
        let held = asked_for_work(&worker, wait, &mut stop, lost(2))
            .await
            .expect("work");
        assert_eq!(held.len(), 2);
        assert_eq!(pending(&spec).await, 2);
        for attempt in held {
            attempt.finish(None).await.expect("finished");
        }
        let asked_again = asked_for_work(&worker, wait, &mut stop, lost(0))
            .await
            .expect("work");
        assert_eq!(asked_again.len(), 2);
        assert_eq!(pending(&spec).await, 2);
    }

    /// How many units of `spec` are pending.
    async fn pending(spec: &WorkSpecRef) -> u64 {
        let counts = spec.count_work_unit_status().await.expect("counts");
        counts.get(&WorkUnitStatus::Pending).copied().unwrap_or(0)
    }

    /// The server failing for a while: the call is tried again until it
    /// goes through; other errors end it at once, the server's refusals of
    /// the request included, and so does a stop.
    #[tokio::test]
    async fn the_servers_failures_are_tried_again_until_stopped() {
        let (pressed, mut stop) = watch::channel(false);
        let wait = StdDuration::from_millis(1);
        let flaky = failing_first(vec![
            restarting(),
            Error::backend(ProtocolError::Timeout {
                url: "http://server/".into(),
                timeout: StdDuration::from_secs(30),
            }),
            Error::backend(ProtocolError::Status {
                status: reqwest::StatusCode::BAD_GATEWAY,
                url: "http://server/".into(),
                body: "<html>".into(),
            }),
        ]);
        assert_eq!(retrying("flaky", wait, &mut stop, flaky).await, Ok(3));
        let refused = || async { Err::<(), _>(Error::NotPending) };
        assert_eq!(
            retrying("refused", wait, &mut stop, refused).await,
            Err(Error::NotPending)
        );
        let too_large = Error::backend(RemoteError {
            code: "error".into(),
            message: "request body exceeds 2000 bytes".into(),
            status: Some(413),
        });
        let local = Error::backend("not the server's");
        for refusal in [too_large, local] {
            let refused = || {
                let refusal = refusal.clone();
                async move { Err::<(), _>(refusal) }
            };
            let answered = tokio::time::timeout(
                StdDuration::from_secs(10),
                retrying("refused", wait, &mut stop, refused),
            )
            .await;
            assert!(
                matches!(answered, Ok(Err(Error::Backend(_)))),
                "{answered:?}"
            );
        }
        pressed.send_replace(true);
        let down = || async { Err::<(), _>(restarting()) };
        let stopped = tokio::time::timeout(
            StdDuration::from_secs(10),
            retrying("down", wait, &mut stop, down),
        )
        .await;
        assert!(matches!(stopped, Ok(Err(Error::Backend(_)))), "{stopped:?}");
    }

    /// An attempt whose server does not answer for a while: the first
    /// `reads` reads of its unit's data and the first `reports` reports of
    /// its outcome fail as a restarting server's would, and the answers to
    /// the `lost` reports or reads of its status after them are lost, once
    /// applied; every other call goes through.
    #[derive(Debug)]
    struct Unreachable {
        attempt: AttemptRef,
        reads: Arc<AtomicUsize>,
        reports: AtomicUsize,
        lost: AtomicUsize,
    }

    impl Unreachable {
        fn wrap(attempt: &AttemptRef, reads: usize, reports: usize, lost: usize) -> AttemptRef {
            Arc::new(Unreachable {
                attempt: attempt.clone(),
                reads: Arc::new(AtomicUsize::new(reads)),
                reports: AtomicUsize::new(reports),
                lost: AtomicUsize::new(lost),
            })
        }
    }

    /// The unit of an [`Unreachable`] attempt.
    #[derive(Debug)]
    struct UnreachableUnit {
        unit: WorkUnitRef,
        reads: Arc<AtomicUsize>,
    }

    /// A backend error while `outage` lasts (counting it down).
    fn reached(outage: &AtomicUsize) -> coordinate::Result<()> {
        match outage.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)) {
            Ok(_) => Err(restarting()),
            Err(_) => Ok(()),
        }
    }

    #[async_trait]
    impl Attempt for Unreachable {
        fn work_unit(&self) -> WorkUnitRef {
            Arc::new(UnreachableUnit {
                unit: self.attempt.work_unit(),
                reads: self.reads.clone(),
            })
        }
        fn worker(&self) -> WorkerRef {
            self.attempt.worker()
        }
        fn as_any(&self) -> &dyn Any {
            self
        }
        async fn status(&self) -> coordinate::Result<AttemptStatus> {
            let status = self.attempt.status().await?;
            reached(&self.lost)?;
            Ok(status)
        }
        async fn data(&self) -> coordinate::Result<DataMap> {
            self.attempt.data().await
        }
        async fn start_time(&self) -> coordinate::Result<Time> {
            self.attempt.start_time().await
        }
        async fn end_time(&self) -> coordinate::Result<Option<Time>> {
            self.attempt.end_time().await
        }
        async fn expiration_time(&self) -> coordinate::Result<Time> {
            self.attempt.expiration_time().await
        }
        async fn renew(&self, extend: Duration, data: Option<DataMap>) -> coordinate::Result<()> {
            self.attempt.renew(extend, data).await
        }
        async fn expire(&self, data: Option<DataMap>) -> coordinate::Result<()> {
            self.attempt.expire(data).await
        }
        async fn finish(&self, data: Option<DataMap>) -> coordinate::Result<()> {
            reached(&self.reports)?;
            self.attempt.finish(data).await?;
            reached(&self.lost)
        }
        async fn fail(&self, data: Option<DataMap>) -> coordinate::Result<()> {
            reached(&self.reports)?;
            self.attempt.fail(data).await?;
            reached(&self.lost)
        }
        async fn retry(&self, data: Option<DataMap>, delay: Duration) -> coordinate::Result<()> {
            self.attempt.retry(data, delay).await
        }
    }

    #[async_trait]
    impl WorkUnit for UnreachableUnit {
        fn name(&self) -> &str {
            self.unit.name()
        }
        fn work_spec(&self) -> WorkSpecRef {
            self.unit.work_spec()
        }
        fn as_any(&self) -> &dyn Any {
            self
        }
        async fn data(&self) -> coordinate::Result<DataMap> {
            reached(&self.reads)?;
            self.unit.data().await
        }
        async fn status(&self) -> coordinate::Result<WorkUnitStatus> {
            self.unit.status().await
        }
        async fn meta(&self) -> coordinate::Result<WorkUnitMeta> {
            self.unit.meta().await
        }
        async fn set_meta(&self, meta: WorkUnitMeta) -> coordinate::Result<()> {
            self.unit.set_meta(meta).await
        }
        async fn priority(&self) -> coordinate::Result<f64> {
            self.unit.priority().await
        }
        async fn set_priority(&self, priority: f64) -> coordinate::Result<()> {
            self.unit.set_priority(priority).await
        }
        async fn active_attempt(&self) -> coordinate::Result<Option<AttemptRef>> {
            self.unit.active_attempt().await
        }
        async fn clear_active_attempt(&self) -> coordinate::Result<()> {
            self.unit.clear_active_attempt().await
        }
        async fn attempts(&self) -> coordinate::Result<Vec<AttemptRef>> {
            self.unit.attempts().await
        }
        async fn num_attempts(&self) -> coordinate::Result<u64> {
            self.unit.num_attempts().await
        }
    }

    /// Works a batch of two units whose attempts are [`Unreachable`] with
    /// these counts, trying again a millisecond later; answers the units
    /// done and their statuses after.
    async fn worked_through_outage(
        reads: usize,
        reports: usize,
        lost: usize,
    ) -> (u64, Vec<WorkUnitStatus>) {
        let (_pressed, stop) = watch::channel(false);
        let (_, worker, attempts) = holding(2, LEASE).await;
        let unreachable: Vec<AttemptRef> = attempts
            .iter()
            .map(|attempt| Unreachable::wrap(attempt, reads, reports, lost))
            .collect();
        let batch = Batch::new(&worker, &unreachable, Instant::now(), LEASE)
            .retry_after(StdDuration::from_millis(1));
        let done = batch.work(work, &stop).await.expect("worked");
        (done, statuses(&attempts).await)
    }

    /// A server restarting while a batch is worked: reading a unit and
    /// reporting its outcome are tried again until it answers, and the
    /// units are done rather than the worker stopping.
    #[tokio::test]
    async fn a_server_restart_during_a_batch_is_waited_out() {
        let finished = vec![WorkUnitStatus::Finished; 2];
        assert_eq!(worked_through_outage(2, 3, 0).await, (2, finished));
    }

    /// A report the server applied but whose answer was lost, tried again,
    /// finds the attempt ended as reported: the unit is done, not lost;
    /// and so it is when the answer of the status read that tells is lost
    /// too.
    #[tokio::test]
    async fn a_report_whose_answer_was_lost_counts_once_applied() {
        let finished = vec![WorkUnitStatus::Finished; 2];
        assert_eq!(worked_through_outage(0, 0, 1).await, (2, finished.clone()));
        assert_eq!(worked_through_outage(0, 0, 2).await, (2, finished));
    }

    /// However long the poll interval, a call is tried again within a
    /// minute.
    #[tokio::test(start_paused = true)]
    async fn the_first_try_again_is_at_most_a_minute_later() {
        let (_pressed, mut stop) = watch::channel(false);
        let once_down = failing_first(vec![restarting()]);
        let started = tokio::time::Instant::now();
        let day = StdDuration::from_secs(86_400);
        assert_eq!(
            retrying("once down", day, &mut stop, once_down).await,
            Ok(1)
        );
        assert_eq!(started.elapsed(), MAX_RETRY_WAIT);
    }

    #[tokio::test]
    async fn ctrl_c_during_a_job_gives_back_the_units_not_started_at_once() {
        let (_, worker, attempts) = holding(3, LEASE).await;
        let (pressed, stop) = watch::channel(false);
        let later = attempts[1..].to_vec();
        let watcher = tokio::spawn(async move {
            tokio::time::sleep(StdDuration::from_millis(200)).await;
            pressed.send_replace(true);
            tokio::time::sleep(StdDuration::from_millis(300)).await;
            // The job runs for another second.
            (statuses(&later).await, pressed)
        });
        let batch = Batch::new(&worker, &attempts, Instant::now(), LEASE);
        assert_eq!(batch.work(a_while, &stop).await.expect("worked"), 1);
        let (during, _pressed) = watcher.await.expect("watched");
        assert_eq!(during, [WorkUnitStatus::Available; 2]);
        let after = [
            WorkUnitStatus::Finished,
            WorkUnitStatus::Available,
            WorkUnitStatus::Available,
        ];
        assert_eq!(statuses(&attempts).await, after);
    }

    #[tokio::test]
    async fn a_failed_heartbeat_is_not_fatal_and_lost_units_are_dropped() {
        let (backend, worker, attempts) = holding(2, LEASE).await;
        backend
            .namespace("test")
            .await
            .expect("namespace")
            .destroy()
            .await
            .expect("gone");
        let (_pressed, stop) = watch::channel(false);
        let half_gone = Instant::now() - LEASE / 2;
        let batch = Batch::new(&worker, &attempts, half_gone, LEASE);
        assert_eq!(batch.work(work, &stop).await.expect("not fatal"), 0);
    }

    #[test]
    fn a_lease_is_at_least_a_second_and_ends_in_range() {
        assert_eq!(lease("1.5"), Ok(StdDuration::from_millis(1_500)));
        assert!(lease("0.5").is_err());
        assert!(lease("-1").is_err());
        // Ten thousand years from now is past 9999-12-31.
        assert!(lease("3.2e11").is_err());
        assert!(lease("1e13").is_err());
        assert!(lease("1e10").is_ok());
    }

    /// A TLS file that cannot be read stops the worker before it starts,
    /// naming the file; one that is read reaches the client, which refuses
    /// it if it is not what its flag asks for.
    #[tokio::test]
    async fn the_tls_files_reach_the_client() {
        let missing = std::env::temp_dir().join("coordinate-worker-test-missing.pem");
        for flag in ["--ca", "--identity"] {
            let args = Args::parse_from([OsStr::new("worker"), flag.as_ref(), missing.as_ref()]);
            let error = client(&args).expect_err("unreadable");
            assert!(error.contains(&missing.display().to_string()), "{error}");
        }

        let garbage =
            std::env::temp_dir().join(format!("coordinate-worker-test-{}.pem", std::process::id()));
        std::fs::write(&garbage, "not PEM").expect("written");
        let refused = |flag: &str| {
            let args = Args::parse_from([
                OsStr::new("worker"),
                "--server".as_ref(),
                "https://127.0.0.1:1/".as_ref(),
                flag.as_ref(),
                garbage.as_ref(),
            ]);
            async move { client(&args).expect("read").connect().await.err() }
        };
        let by_ca = refused("--ca").await;
        let by_identity = refused("--identity").await;
        std::fs::remove_file(&garbage).expect("removed");
        assert!(
            matches!(&by_ca, Some(Error::Backend(e)) if e.is::<RootCertificatesError>()),
            "{by_ca:?}"
        );
        assert!(
            matches!(&by_identity, Some(Error::Backend(e)) if e.is::<IdentityError>()),
            "{by_identity:?}"
        );
    }
}
