//! The simulated job server: clients making stateless requests, each of
//! which resolves its objects by name before acting, as a real job server
//! behind an RPC or REST interface does.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use coordinate::{
    data, AttemptRequest, Backend, DataMap, Duration, Error, NamespaceRef, WorkUnitMeta,
    WorkUnitQuery,
};

/// The shape of one run.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Namespace the run works in.
    pub namespace: String,
    /// Concurrent clients.
    pub clients: usize,
    /// Work units loaded before the run.
    pub units: usize,
    /// Work specs the units are spread over.
    pub specs: usize,
    /// How long clients are measured (after any warm-up).
    pub duration: StdDuration,
    /// Units asked for per `request_attempts`.
    pub batch: i64,
    /// Which requests the clients make.
    pub mix: Mix,
}

/// The request mixes a run can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mix {
    /// A busy job server: work handed out and finished, polling, submission.
    Job,
    /// Lookup-heavy reads only: unit status, unit data, spec meta.
    Reads,
}

impl Shape {
    fn spec_name(i: usize) -> String {
        format!("spec-{i}")
    }

    fn unit_name(i: usize) -> String {
        format!("unit-{i:07}")
    }
}

/// What the clients did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Latency of every request, in microseconds.
    pub latencies_us: Vec<u32>,
    /// The same latencies by kind of request.
    pub by_kind: BTreeMap<&'static str, Vec<u32>>,
    /// Requests answered with an error that a job server expects under
    /// concurrency (a unit finished or deleted by someone else, …).
    pub expected_errors: u64,
    /// Wall time the clients ran.
    pub elapsed: StdDuration,
}

/// The largest share of requests a run may answer with expected errors:
/// a few in a million race in a healthy run, and figures of mostly failed
/// requests would not measure serving them.
pub const MAX_EXPECTED_ERROR_SHARE: f64 = 0.01;

impl Outcome {
    /// An error unless the expected errors are within
    /// [`MAX_EXPECTED_ERROR_SHARE`] of the requests.
    pub fn check_errors(&self) -> Result<(), String> {
        let requests = self.latencies_us.len() as f64;
        let errors = self.expected_errors as f64;
        if errors > requests * MAX_EXPECTED_ERROR_SHARE {
            return Err(format!(
                "{} of {} requests failed (lost races: a unit finished, expired or deleted \
                 meanwhile), over {}%: the figures would not measure requests served",
                self.expected_errors,
                self.latencies_us.len(),
                MAX_EXPECTED_ERROR_SHARE * 100.0
            ));
        }
        Ok(())
    }
}

/// Creates the namespace's specs and units, directly on `backend`.
pub async fn load(backend: &dyn Backend, shape: &Shape) -> coordinate::Result<()> {
    let ns = backend.namespace(&shape.namespace).await?;
    let mut specs = Vec::new();
    for i in 0..shape.specs {
        let weight = 10 * (i as i64 + 1);
        specs.push(
            ns.set_work_spec(data!({"name": Shape::spec_name(i), "weight": weight}))
                .await?,
        );
    }
    for i in 0..shape.units {
        let spec = &specs[i % specs.len()];
        spec.add_work_unit(
            &Shape::unit_name(i),
            data!({"n": i}),
            WorkUnitMeta::default(),
        )
        .await?;
    }
    Ok(())
}

/// Looks up every unit once through `backend`, `shape.clients` at a time:
/// through a `Cache`, the run then starts with the working set cached, as
/// a long-running worker's cache is.
pub async fn touch(backend: &dyn Backend, shape: &Shape) -> coordinate::Result<()> {
    use futures::stream::{self, StreamExt, TryStreamExt};

    let ns = backend.namespace(&shape.namespace).await?;
    let ns = &ns;
    stream::iter(0..shape.units)
        .map(|i| async move {
            let spec = ns.work_spec(&Shape::spec_name(i % shape.specs)).await?;
            spec.work_unit(&Shape::unit_name(i)).await.map(drop)
        })
        .buffer_unordered(shape.clients.max(1))
        .try_collect()
        .await
}

/// The request a client makes next, by the mix a busy job server sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Request {
    GetWork,
    Finish,
    Renew,
    Retry,
    Fail,
    Status,
    UnitData,
    SpecMeta,
    AddUnit,
    DeleteAndRecreate,
}

/// Weights of the mix, out of 100. Self-consistent at steady state: one
/// request for a batch of ten units is followed by about ten requests that
/// finish, renew, retry or fail one of them; status polling (dashboards,
/// clients waiting on results) and unit submission make up the rest.
const MIX: &[(Request, u32)] = &[
    (Request::GetWork, 4),
    (Request::Finish, 34),
    (Request::Renew, 10),
    (Request::Retry, 2),
    (Request::Fail, 2),
    (Request::Status, 30),
    (Request::SpecMeta, 4),
    (Request::AddUnit, 12),
    (Request::DeleteAndRecreate, 2),
];

/// The read mix: what dashboards and clients waiting on results ask; each
/// request resolves namespace, spec (and unit) by name, then reads once.
const READ_MIX: &[(Request, u32)] = &[
    (Request::Status, 40),
    (Request::UnitData, 30),
    (Request::SpecMeta, 30),
];

impl Request {
    fn label(self) -> &'static str {
        match self {
            Request::GetWork => "get work",
            Request::Finish => "finish",
            Request::Renew => "renew",
            Request::Retry => "retry",
            Request::Fail => "fail",
            Request::Status => "status",
            Request::UnitData => "unit data",
            Request::SpecMeta => "spec meta",
            Request::AddUnit => "add unit",
            Request::DeleteAndRecreate => "delete+recreate",
        }
    }
}

fn pick(rng: &mut fastrand::Rng, mix: Mix) -> Request {
    let mix = match mix {
        Mix::Job => MIX,
        Mix::Reads => READ_MIX,
    };
    let mut roll = rng.u32(0..mix.iter().map(|(_, w)| w).sum());
    for (request, weight) in mix {
        if roll < *weight {
            return *request;
        }
        roll -= weight;
    }
    Request::Status
}

/// The clients of one run, kept from its warm-up to its measurement: the
/// units they hold and their random sequences carry on, as on a server
/// that keeps running.
pub struct Clients {
    clients: Vec<Client>,
}

impl Clients {
    /// `shape.clients` clients working on `backend`.
    pub fn new(backend: Arc<dyn Backend>, shape: &Shape) -> Self {
        let clients = (0..shape.clients)
            .map(|id| Client::new(backend.clone(), shape, id))
            .collect();
        Clients { clients }
    }

    /// Runs the clients for `duration`; `progress` is bumped once per
    /// request. The outcome is of this run's requests only.
    pub async fn run(
        &mut self,
        duration: StdDuration,
        progress: Arc<AtomicU64>,
    ) -> coordinate::Result<Outcome> {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let mut running = Running {
            stop: stop.clone(),
            tasks: self
                .clients
                .drain(..)
                .map(|client| tokio::spawn(client.run(stop.clone(), progress.clone())))
                .collect(),
        };
        let mut joined = Vec::with_capacity(running.tasks.len());
        // A client ends before it is told to stop only on an error, which
        // ends the run at once rather than at the end of its duration.
        if let Some((ended, index)) = running.first_to_end_within(duration).await {
            stop.store(true, Ordering::Relaxed);
            running.tasks.swap_remove(index);
            joined.push(ended.map_err(|e| Error::backend(format!("client task failed: {e}")))??);
        }
        stop.store(true, Ordering::Relaxed);
        for task in std::mem::take(&mut running.tasks) {
            joined.push(
                task.await
                    .map_err(|e| Error::backend(format!("client task failed: {e}")))??,
            );
        }
        let mut outcome = Outcome {
            elapsed: started.elapsed(),
            ..Outcome::default()
        };
        for mut client in joined {
            for (request, micros) in client.latencies.drain(..) {
                outcome.latencies_us.push(micros);
                outcome
                    .by_kind
                    .entry(request.label())
                    .or_default()
                    .push(micros);
            }
            outcome.expected_errors += std::mem::take(&mut client.expected_errors);
            self.clients.push(client);
        }
        Ok(outcome)
    }
}

/// The client tasks of a run: stopped and aborted if the run is dropped
/// before it joined them (interrupted), so that none goes on working on
/// the namespace being cleaned up.
struct Running {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<coordinate::Result<Client>>>,
}

impl Running {
    /// The first task to end within `duration`, and its index, if one does.
    async fn first_to_end_within(
        &mut self,
        duration: StdDuration,
    ) -> Option<(
        Result<coordinate::Result<Client>, tokio::task::JoinError>,
        usize,
    )> {
        if self.tasks.is_empty() {
            tokio::time::sleep(duration).await;
            return None;
        }
        let first = futures::future::select_all(self.tasks.iter_mut());
        tokio::select! {
            () = tokio::time::sleep(duration) => None,
            (ended, index, _) = first => Some((ended, index)),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// One client: it remembers which units it holds, by name only.
struct Client {
    backend: Arc<dyn Backend>,
    shape: Shape,
    worker: String,
    held: Vec<(String, String)>,
    rng: fastrand::Rng,
    /// What the current run measured: latencies by request, and requests
    /// answered with an expected error.
    latencies: Vec<(Request, u32)>,
    expected_errors: u64,
}

impl Client {
    fn new(backend: Arc<dyn Backend>, shape: &Shape, id: usize) -> Self {
        Client {
            backend,
            shape: shape.clone(),
            worker: format!("client-{id}"),
            held: Vec::new(),
            rng: fastrand::Rng::with_seed(id as u64),
            latencies: Vec::new(),
            expected_errors: 0,
        }
    }

    /// Makes requests until `stop`, then hands itself back.
    async fn run(
        mut self,
        stop: Arc<AtomicBool>,
        progress: Arc<AtomicU64>,
    ) -> coordinate::Result<Self> {
        while !stop.load(Ordering::Relaxed) {
            let picked = pick(&mut self.rng, self.shape.mix);
            let started = Instant::now();
            let (request, result) = self.serve(picked).await;
            match result {
                Ok(()) => {}
                Err(e) if expected(&e) => self.expected_errors += 1,
                Err(e) => return Err(e),
            }
            let micros = started.elapsed().as_micros();
            self.latencies
                .push((request, u32::try_from(micros).unwrap_or(u32::MAX)));
            progress.fetch_add(1, Ordering::Relaxed);
            // A request to the memory backend never waits, so without this a
            // client would hold its worker thread and starve the timer.
            tokio::task::yield_now().await;
        }
        Ok(self)
    }

    fn random_unit(&mut self) -> (String, String) {
        let i = self.rng.usize(0..self.shape.units.max(1));
        (Shape::spec_name(i % self.shape.specs), Shape::unit_name(i))
    }

    /// One stateless request: resolve by name, then act. Answers the kind
    /// of request served, which is not the one picked when the client holds
    /// no unit to finish, renew, retry or fail: it asks for work instead.
    async fn serve(&mut self, picked: Request) -> (Request, coordinate::Result<()>) {
        let result = match picked {
            Request::GetWork => self.get_work().await,
            Request::Finish | Request::Renew | Request::Retry | Request::Fail => {
                match self.take_held(picked) {
                    Some((spec, unit)) => self.act_on_held(picked, &spec, &unit).await,
                    None => return (Request::GetWork, self.get_work().await),
                }
            }
            Request::Status | Request::UnitData => self.read_unit(picked).await,
            Request::SpecMeta => self.spec_meta().await,
            Request::AddUnit => self.add_unit().await,
            Request::DeleteAndRecreate => self.delete_and_recreate().await,
        };
        (picked, result)
    }

    async fn namespace(&self) -> coordinate::Result<NamespaceRef> {
        self.backend.namespace(&self.shape.namespace).await
    }

    async fn get_work(&mut self) -> coordinate::Result<()> {
        let worker = self.namespace().await?.worker(&self.worker).await?;
        let got = worker
            .request_attempts(&AttemptRequest::units(self.shape.batch))
            .await?;
        for attempt in got {
            let unit = attempt.work_unit();
            self.held
                .push((unit.work_spec().name().to_string(), unit.name().to_string()));
        }
        Ok(())
    }

    /// A random held unit for `request` to act on (still held after a
    /// renewal, given up otherwise); `None` when the client holds none.
    fn take_held(&mut self, request: Request) -> Option<(String, String)> {
        let i = (!self.held.is_empty()).then(|| self.rng.usize(0..self.held.len()))?;
        Some(match request {
            Request::Renew => self.held[i].clone(),
            _ => self.held.swap_remove(i),
        })
    }

    async fn act_on_held(
        &self,
        request: Request,
        spec: &str,
        unit: &str,
    ) -> coordinate::Result<()> {
        let ns = self.namespace().await?;
        let unit = ns.work_spec(spec).await?.work_unit(unit).await?;
        let Some(attempt) = unit.active_attempt().await? else {
            return Err(Error::NotPending);
        };
        match request {
            Request::Finish => attempt.finish(Some(result_data())).await,
            Request::Renew => attempt.renew(Duration::minutes(15), None).await,
            Request::Retry => attempt.retry(None, Duration::zero()).await,
            _ => attempt.fail(None).await,
        }
    }

    async fn read_unit(&mut self, request: Request) -> coordinate::Result<()> {
        let (spec, unit) = self.random_unit();
        let ns = self.namespace().await?;
        let unit = ns.work_spec(&spec).await?.work_unit(&unit).await?;
        if matches!(request, Request::Status) {
            unit.status().await.map(drop)
        } else {
            unit.data().await.map(drop)
        }
    }

    async fn spec_meta(&mut self) -> coordinate::Result<()> {
        let (spec, _) = self.random_unit();
        let ns = self.namespace().await?;
        ns.work_spec(&spec).await?.meta(true).await.map(drop)
    }

    async fn add_unit(&mut self) -> coordinate::Result<()> {
        let (spec, unit) = self.random_unit();
        let ns = self.namespace().await?;
        ns.work_spec(&spec)
            .await?
            .add_work_unit(&unit, data!({"re": true}), WorkUnitMeta::default())
            .await
            .map(drop)
    }

    async fn delete_and_recreate(&mut self) -> coordinate::Result<()> {
        let (spec, unit) = self.random_unit();
        let spec = self.namespace().await?.work_spec(&spec).await?;
        spec.delete_work_units(&WorkUnitQuery::names([unit.as_str()]))
            .await?;
        spec.add_work_unit(&unit, DataMap::new(), WorkUnitMeta::default())
            .await
            .map(drop)
    }
}

fn result_data() -> DataMap {
    data!({"ok": true})
}

/// Errors a job server answers in normal operation when clients race:
/// someone else finished, expired, deleted or re-added the unit.
fn expected(e: &Error) -> bool {
    matches!(
        e,
        Error::NotPending | Error::LostLease | Error::Gone { .. } | Error::NoSuchWorkUnit { .. }
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use coordinate::{MemoryBackend, WorkUnitStatus};

    use super::*;

    async fn loaded() -> (Arc<dyn Backend>, Shape) {
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let shape = Shape {
            namespace: "test".into(),
            clients: 2,
            units: 40,
            specs: 2,
            duration: StdDuration::from_millis(50),
            batch: 5,
            mix: Mix::Job,
        };
        load(backend.as_ref(), &shape).await.expect("loaded");
        (backend, shape)
    }

    #[test]
    fn a_run_of_mostly_failed_requests_is_an_error() {
        let outcome = |requests: usize, expected_errors: u64| Outcome {
            latencies_us: vec![1; requests],
            expected_errors,
            ..Outcome::default()
        };
        assert!(outcome(1000, 10).check_errors().is_ok());
        assert!(outcome(1000, 11).check_errors().is_err());
        assert!(outcome(0, 0).check_errors().is_ok());
        assert!(outcome(0, 1).check_errors().is_err());
    }

    /// A client's error ends the run at once, not at the end of its
    /// duration: here every spec is gone, so every request fails.
    #[tokio::test]
    async fn a_clients_error_ends_the_run_at_once() {
        let (backend, shape) = loaded().await;
        let ns = backend
            .namespace(&shape.namespace)
            .await
            .expect("namespace");
        for i in 0..shape.specs {
            ns.destroy_work_spec(&Shape::spec_name(i))
                .await
                .expect("destroyed");
        }
        let mut clients = Clients::new(backend, &shape);
        let hour = StdDuration::from_secs(3600);
        let run = clients.run(hour, Arc::default());
        let ended = tokio::time::timeout(StdDuration::from_secs(60), run).await;
        assert!(matches!(ended, Ok(Err(_))), "{ended:?}");
    }

    #[tokio::test]
    async fn a_request_on_a_held_unit_without_one_is_served_and_told_as_get_work() {
        let (backend, shape) = loaded().await;
        let mut client = Client::new(backend, &shape, 0);
        for picked in [
            Request::Finish,
            Request::Renew,
            Request::Retry,
            Request::Fail,
        ] {
            client.held.clear();
            let (served, result) = client.serve(picked).await;
            result.expect("served");
            assert_eq!(served, Request::GetWork, "{picked:?}");
            assert!(!client.held.is_empty(), "{picked:?}");
        }
        let held = client.held.len();
        let (served, result) = client.serve(Request::Finish).await;
        result.expect("finished");
        assert_eq!((served, client.held.len()), (Request::Finish, held - 1));
    }

    /// The units pending in the run's namespace, as (spec, unit) names.
    async fn pending(backend: &dyn Backend, shape: &Shape) -> BTreeSet<(String, String)> {
        let ns = backend
            .namespace(&shape.namespace)
            .await
            .expect("namespace");
        let mut pending = BTreeSet::new();
        for i in 0..shape.specs {
            let spec = ns.work_spec(&Shape::spec_name(i)).await.expect("spec");
            let query = WorkUnitQuery::statuses([WorkUnitStatus::Pending]);
            let units = spec.work_units(&query).await.expect("units");
            pending.extend(
                units
                    .into_keys()
                    .map(|unit| (spec.name().to_string(), unit)),
            );
        }
        pending
    }

    #[tokio::test]
    async fn clients_keep_the_units_they_hold_from_one_run_to_the_next() {
        let (backend, shape) = loaded().await;
        let mut clients = Clients::new(backend.clone(), &shape);
        let (_, result) = clients.clients[0].serve(Request::GetWork).await;
        result.expect("got work");
        assert!(!pending(backend.as_ref(), &shape).await.is_empty());
        // A warm-up and a measured run: no unit is left pending under a
        // worker no client knows it holds.
        for _ in 0..2 {
            let outcome = clients
                .run(shape.duration, Arc::default())
                .await
                .expect("ran");
            assert!(!outcome.latencies_us.is_empty());
            let held: BTreeSet<_> = clients
                .clients
                .iter()
                .flat_map(|c| c.held.clone())
                .collect();
            let pending = pending(backend.as_ref(), &shape).await;
            assert!(pending.is_subset(&held), "{pending:?} not all in {held:?}");
        }
    }
}
