//! Prometheus metrics: requests per route, connections open (counted where
//! they are accepted) and closed idle for a client waiting at the bound,
//! the cache's counters, the
//! PostgreSQL connection pool, and work unit counts from a periodic summary.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use coordinate::cache::{CacheStats, KindStats};
use coordinate::postgres::PoolStatus;
use coordinate::{Backend, Summary, WorkUnitStatus};
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;

use crate::api::RouteTemplate;

/// Reads the cache's counters (the cache behind `Arc<dyn Backend>` keeps
/// its type here), after its pending upkeep: its entry counts are moka's,
/// kept by that upkeep, which hits answered without moka never run.
pub type CacheStatsFn =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = CacheStats> + Send>> + Send + Sync>;

/// Reads the PostgreSQL backend's pool state (the backend behind
/// `Arc<dyn Backend>` keeps its type here).
pub type PoolStatusFn = Arc<dyn Fn() -> PoolStatus + Send + Sync>;

/// Request latency buckets, in seconds: 100 µs to 60 s, past the default
/// request timeout (30 s) and a proxy's upstream calls (5 s more), so that
/// slow requests and timeouts are told apart from each other.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// Summary duration buckets: twelve, from 1/32 s doubling up to 64 s.
fn summary_buckets() -> Vec<f64> {
    (0..12).map(|i| f64::from(1u32 << i) / 32.0).collect()
}

/// How many summary periods a `coordinate_work_units` series may go
/// unset before `/metrics` drops it: a vanished spec's series, or every
/// series while summaries fail.
const SUMMARY_PERIODS_KEPT: u32 = 3;

/// How much longer still: a live series is set at least every two periods,
/// give or take the scheduling of its setting task, which at a period of
/// milliseconds is not small beside it.
const SUMMARY_SLACK: Duration = Duration::from_millis(500);

/// Installs the process-wide Prometheus recorder for a server whose work
/// unit summaries run every `summaries`, so that series no summary sets
/// any more leave `/metrics`. Call it before [`router`](crate::router):
/// a recorder already installed keeps its settings.
pub fn install(summaries: SummaryPeriod) -> PrometheusHandle {
    let kept = summaries.get().saturating_mul(SUMMARY_PERIODS_KEPT);
    installed(Some(kept.saturating_add(SUMMARY_SLACK)))
}

/// The process-wide Prometheus recorder, installed on first use without
/// dropping idle series if [`install`] was not called first. Several
/// servers in one process (tests) share it.
pub fn recorder() -> PrometheusHandle {
    installed(None)
}

/// The recorder; the first call decides after how long unset gauges go.
/// Every other gauge is set at each render, so only summaries' can idle.
fn installed(gauges_idle: Option<Duration>) -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .idle_timeout(MetricKindMask::GAUGE, gauges_idle)
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".into()),
                    LATENCY_BUCKETS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("coordinate_summary_seconds".into()),
                        &summary_buckets(),
                    )
                });
            let recorder = match builder {
                Ok(builder) => builder.build_recorder(),
                Err(e) => {
                    tracing::warn!("metrics buckets rejected: {e}");
                    PrometheusBuilder::new()
                        .idle_timeout(MetricKindMask::GAUGE, gauges_idle)
                        .build_recorder()
                }
            };
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
            }
            let upkept = handle.clone();
            repeat_every(UPKEEP_PERIOD, move || upkept.run_upkeep());
            handle
        })
        .clone()
}

/// How often the recorder's samples are folded into its histograms. The
/// recorder keeps each latency sample until then (some 24 bytes a request),
/// so this bounds its memory whether or not anything scrapes `/metrics`.
const UPKEEP_PERIOD: Duration = Duration::from_secs(5);

/// Runs `work` every `period` on a thread of its own for the rest of the
/// process, as long as the process-wide recorder it keeps up.
fn repeat_every(period: Duration, work: impl Fn() + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(period);
            work();
        });
    if let Err(e) = spawned {
        tracing::warn!("no metrics upkeep thread ({e}): samples are folded only when scraped");
    }
}

/// What `/metrics` needs.
#[derive(Clone)]
pub struct MetricsState {
    /// The recorder to render.
    pub handle: PrometheusHandle,
    /// The cache's counters, when the cache is on.
    pub cache_stats: Option<CacheStatsFn>,
    /// The connection pool's state, when the backend is PostgreSQL.
    pub pool_status: Option<PoolStatusFn>,
}

impl std::fmt::Debug for MetricsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsState")
            .field("cache", &self.cache_stats.is_some())
            .field("pool", &self.pool_status.is_some())
            .finish()
    }
}

/// `GET /metrics`: the Prometheus text exposition format.
pub async fn render(
    State(state): State<MetricsState>,
    template: Option<Extension<RouteTemplate>>,
) -> Response {
    RouteTemplate::claim(template, "/metrics");
    gauge!("http_connections_open").set(crate::connections::open_connections() as f64);
    counter!("http_connections_closed_for_room_total")
        .absolute(crate::connections::closed_for_room());
    if let Some(stats) = &state.cache_stats {
        record_cache_stats(&stats().await);
    }
    if let Some(status) = &state.pool_status {
        record_pool_status(&status());
    }
    state.handle.run_upkeep();
    let mut response = state.handle.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

fn record_kind(kind: &'static str, s: &KindStats) {
    counter!("coordinate_cache_hits_total", "kind" => kind).absolute(s.hits);
    counter!("coordinate_cache_misses_total", "kind" => kind).absolute(s.misses);
    counter!("coordinate_cache_loads_total", "kind" => kind).absolute(s.backend_loads);
    counter!("coordinate_cache_recoveries_total", "kind" => kind).absolute(s.gone_recoveries);
    counter!("coordinate_cache_invalidations_total", "kind" => kind).absolute(s.invalidations);
    counter!("coordinate_cache_evictions_total", "kind" => kind).absolute(s.evictions);
    counter!("coordinate_cache_swept_total", "kind" => kind).absolute(s.swept);
    gauge!("coordinate_cache_entries", "kind" => kind).set(s.entries as f64);
}

/// Copies the cache's counters into the registry.
fn record_cache_stats(stats: &CacheStats) {
    record_kind("namespace", &stats.namespaces);
    record_kind("work_spec", &stats.work_specs);
    record_kind("work_unit", &stats.work_units);
    record_kind("worker", &stats.workers);
    let feed = &stats.feed;
    gauge!("coordinate_cache_feed_subscribed").set(if feed.subscribed { 1.0 } else { 0.0 });
    counter!("coordinate_cache_feed_events_total").absolute(feed.events_applied);
    counter!("coordinate_cache_feed_flushes_total").absolute(feed.flushes);
    counter!("coordinate_cache_feed_gaps_total").absolute(feed.gaps);
    counter!("coordinate_cache_feed_reconnects_total").absolute(feed.reconnects);
}

/// Copies the pool's state into the registry: connections open by state,
/// the bound, calls waiting for a connection (a pool too small for the
/// load, or connections held by something that never lets go), and what
/// requests abandoned mid-statement cost (statements cancelled, and the
/// connections they ran on closed).
fn record_pool_status(status: &PoolStatus) {
    let idle = status.idle.min(status.size);
    gauge!("coordinate_postgres_pool_connections", "state" => "idle").set(idle as f64);
    gauge!("coordinate_postgres_pool_connections", "state" => "busy")
        .set((status.size - idle) as f64);
    gauge!("coordinate_postgres_pool_max_connections").set(status.max_size as f64);
    gauge!("coordinate_postgres_pool_waiting").set(status.waiting as f64);
    counter!("coordinate_postgres_statements_cancelled_total").absolute(status.cancelled);
    counter!("coordinate_postgres_connections_closed_total").absolute(status.closed);
}

/// The method as a label, bounded to the methods HTTP defines.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// The status recorded for a request whose client closed the connection
/// first (nginx's code for it): dropped before it was answered, or
/// answered, to nobody, with [`crate::problem::Problem::client_gone`].
pub const CLIENT_CLOSED: &str = "499";

/// Middleware: counts every request by route template (never the raw
/// path), method and status, and records its latency by route and method
/// — also a request answered by the timeout or the panic handler, and one
/// whose client went away first, which is counted as [`CLIENT_CLOSED`].
pub async fn track(mut request: Request, next: Next) -> Response {
    let template = RouteTemplate::default();
    request.extensions_mut().insert(template.clone());
    let mut outcome = Outcome {
        method: method_label(request.method()),
        template,
        started: Instant::now(),
        status: None,
    };
    let response = next.run(request).await;
    outcome.status = Some(response.status().as_u16().to_string());
    response
}

/// One request being tracked: recorded when dropped, answered or not.
struct Outcome {
    method: &'static str,
    template: RouteTemplate,
    started: Instant,
    /// The answer's status, once there is one.
    status: Option<String>,
}

impl Drop for Outcome {
    fn drop(&mut self) {
        let status = self
            .status
            .take()
            .unwrap_or_else(|| CLIENT_CLOSED.to_owned());
        record(self.template.get(), self.method, status, self.started);
    }
}

/// A request the HTTP layer has read and handed on, not started yet:
/// hyper drops one unstarted when its client closes the connection right
/// after sending it, and [`track`] then never runs. Dropped before
/// [`started`](Self::started), it is counted as [`CLIENT_CLOSED`], under
/// the route its path names.
#[derive(Debug)]
pub struct Dispatched {
    /// Arrival, method and path (none for a request refused before
    /// routing), until the request starts.
    unstarted: Option<(Instant, &'static str, Option<axum::http::Uri>)>,
}

impl Dispatched {
    /// `request`, just handed on.
    pub fn new<B>(request: &axum::http::Request<B>) -> Self {
        let method = method_label(request.method());
        let routed = crate::server::hosts_refused(request).is_none();
        let uri = routed.then(|| request.uri().clone());
        Dispatched {
            unstarted: Some((Instant::now(), method, uri)),
        }
    }

    /// The request has started: [`track`] counts it from here on.
    pub fn started(mut self) {
        self.unstarted = None;
    }
}

impl Drop for Dispatched {
    fn drop(&mut self) {
        if let Some((arrived, method, uri)) = self.unstarted.take() {
            let route = uri.map_or(crate::api::UNMATCHED, |uri| {
                crate::server::route_template(uri.path())
            });
            record(route, method, CLIENT_CLOSED.to_owned(), arrived);
        }
    }
}

/// Counts a request and records its latency.
fn record(route: &'static str, method: &'static str, status: String, started: Instant) {
    counter!("http_requests_total", "route" => route, "method" => method, "status" => status)
        .increment(1);
    histogram!("http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
}

/// How often [`collect_summaries`] runs: a duration that is not zero,
/// which a timer cannot tick at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryPeriod(Duration);

impl SummaryPeriod {
    /// `period`, unless it is zero.
    pub fn new(period: Duration) -> Option<Self> {
        (!period.is_zero()).then_some(SummaryPeriod(period))
    }

    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

/// The statuses a unit can have: each spec in a summary shows all of them.
const UNIT_STATUSES: [WorkUnitStatus; 5] = [
    WorkUnitStatus::Available,
    WorkUnitStatus::Pending,
    WorkUnitStatus::Finished,
    WorkUnitStatus::Failed,
    WorkUnitStatus::Delayed,
];

/// Units per status (in [`UNIT_STATUSES`] order), per namespace and spec.
type SpecCounts = BTreeMap<(String, String), [u64; UNIT_STATUSES.len()]>;

/// One period after start, and then one period after each summary ends,
/// summarises the backend into `coordinate_work_units` gauges and times
/// it into `coordinate_summary_seconds` (a failed one is counted in
/// `coordinate_summary_failures_total` instead). Every spec the summary
/// lists has a series for each status, zero when no unit has it, so that
/// a drained queue reads 0 rather than nothing. While a summary takes
/// longer than a period, the last one's counts are set again each period,
/// so that they do not lapse meanwhile. The series of a spec that
/// disappears (destroyed, or left without units) are set to zero, and
/// leave `/metrics` some periods later if the recorder was [`install`]ed
/// for `period`, whether or not anything scrapes it: the recorder drops
/// idle series only as it renders, so this renders once a summary.
pub async fn collect_summaries(backend: Arc<dyn Backend>, period: SummaryPeriod) {
    let handle = recorder();
    let mut shown = SpecCounts::new();
    loop {
        tokio::time::sleep(period.get()).await;
        let started = Instant::now();
        let summary = {
            let mut summarizing = std::pin::pin!(backend.summarize());
            loop {
                tokio::select! {
                    summary = &mut summarizing => break summary,
                    () = tokio::time::sleep(period.get()) => show(&shown),
                }
            }
        };
        match summary {
            Ok(summary) => {
                histogram!("coordinate_summary_seconds").record(started.elapsed().as_secs_f64());
                shown = shown_again(shown, summary);
            }
            Err(e) => {
                counter!("coordinate_summary_failures_total").increment(1);
                tracing::warn!("summary for metrics failed: {e}");
            }
        }
        drop(handle.render());
    }
}

/// Shows the counts of `summary`, and zeroes the series of the specs
/// `shown` has and it does not; answers its counts.
fn shown_again(mut shown: SpecCounts, summary: Summary) -> SpecCounts {
    let mut counts = SpecCounts::new();
    for record in summary {
        let Some(at) = UNIT_STATUSES.iter().position(|s| *s == record.status) else {
            continue;
        };
        let spec = counts
            .entry((record.namespace, record.work_spec))
            .or_default();
        spec[at] = record.count;
    }
    shown.retain(|spec, _| !counts.contains_key(spec));
    shown
        .values_mut()
        .for_each(|gone| *gone = Default::default());
    show(&shown);
    show(&counts);
    counts
}

/// `name` as a label value the exporter writes back exactly. It escapes
/// quotes and line feeds, but reads a backslash before one as an escape
/// already made (`a\"b` would be written as `a"b` is, and `a\\b` as
/// `a\b`): doubling every backslash leaves it none of those.
fn label_value(name: &str) -> String {
    name.replace('\\', "\\\\")
}

/// Sets the `coordinate_work_units` gauges to `counts`.
fn show(counts: &SpecCounts) {
    for ((namespace, work_spec), per_status) in counts {
        for (status, count) in UNIT_STATUSES.iter().zip(per_status) {
            gauge!(
                "coordinate_work_units",
                "namespace" => label_value(namespace),
                "work_spec" => label_value(work_spec),
                "status" => status.as_str()
            )
            .set(*count as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upkeep_repeats_for_the_life_of_the_process() {
        let (ran, runs) = std::sync::mpsc::channel();
        repeat_every(Duration::from_millis(10), move || {
            let _ = ran.send(());
        });
        for _ in 0..3 {
            let run = runs.recv_timeout(Duration::from_secs(30));
            assert!(run.is_ok(), "upkeep stopped: {run:?}");
        }
    }

    #[tokio::test]
    async fn a_period_of_centuries_waits_without_overflowing() {
        let period = SummaryPeriod::new(Duration::MAX);
        let backend: Arc<dyn Backend> = Arc::new(coordinate::memory::MemoryBackend::new());
        let task = tokio::spawn(collect_summaries(backend, period.expect("not zero")));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!task.is_finished(), "{:?}", task.await);
        task.abort();
    }

    #[test]
    fn a_zero_period_is_refused() {
        assert_eq!(SummaryPeriod::new(Duration::ZERO), None);
    }

    #[test]
    fn summary_buckets_double_from_a_32nd_to_64_seconds() {
        let b = summary_buckets();
        assert_eq!(b.len(), 12);
        assert_eq!(b[0], 1.0 / 32.0);
        assert_eq!(b[11], 64.0);
    }
}
