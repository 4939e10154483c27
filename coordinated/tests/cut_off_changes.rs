//! Requests cut off by the request timeout (as by a client going away: the
//! server drops the request's future either way) change the backend as a
//! request answered would, or not at all: attempts made for a request
//! that never answered are given back at once, and a change of several
//! backend calls is applied whole.

use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use coordinate::instrumented::{Instrumented, Op};
use coordinate::memory::MemoryBackend;
use coordinate::{
    data, AttemptRequest, Backend, BackendExt, WorkSpecRef, WorkUnitMeta, WorkUnitStatus,
};
use serde_json::json;

mod support;

/// Far over the request timeout, so every request that waits for it is cut
/// off.
const LATENCY: Duration = Duration::from_millis(400);
const TIMEOUT: Duration = Duration::from_millis(100);

/// A server over `memory` whose operations `slow` picks take [`LATENCY`],
/// answering with `503` after [`TIMEOUT`]; its URL, and the server's
/// handle.
async fn serve_slow(
    memory: &MemoryBackend,
    slow: fn(Op) -> bool,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let backend = Instrumented::with_latency(memory.clone(), LATENCY, slow);
    let options = coordinated::ServerOptions {
        request_timeout: TIMEOUT,
        ..Default::default()
    };
    support::in_process::serve(coordinated::router(Arc::new(backend), &options)).await
}

/// Spec "s" of namespace "n" with units "a" and "b", and worker "w".
async fn setup(memory: &MemoryBackend) -> WorkSpecRef {
    let ns = memory.namespace("n").await.unwrap();
    let spec = ns.set_work_spec(data!({"name": "s"})).await.unwrap();
    for unit in ["a", "b"] {
        spec.add_work_unit(unit, data!({}), WorkUnitMeta::default())
            .await
            .unwrap();
    }
    ns.worker("w").await.unwrap();
    spec
}

async fn post(url: String, body: serde_json::Value) -> u16 {
    send(reqwest::Client::new().post(url), body).await
}

async fn put(url: String, body: serde_json::Value) -> u16 {
    send(reqwest::Client::new().put(url), body).await
}

async fn send(request: reqwest::RequestBuilder, body: serde_json::Value) -> u16 {
    let response = request
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

/// Whether `check` holds within two seconds.
async fn eventually<F: std::future::Future<Output = bool>>(mut check: impl FnMut() -> F) -> bool {
    for _ in 0..200 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

async fn status(spec: &WorkSpecRef, unit: &str) -> WorkUnitStatus {
    let unit = spec.work_unit(unit).await.unwrap();
    unit.status().await.unwrap()
}

/// Each of `units` had an attempt made, which is soon expired: the unit
/// is available again.
async fn assert_given_back(spec: &WorkSpecRef, units: &[&str]) {
    for &name in units {
        let available =
            eventually(|| async { status(spec, name).await == WorkUnitStatus::Available });
        assert!(available.await, "{name}");
        let unit = spec.work_unit(name).await.unwrap();
        let attempts = unit.attempts().await.unwrap();
        assert_eq!(attempts.len(), 1, "an attempt of {name} was made");
    }
}

#[tokio::test]
async fn a_hand_out_cut_off_before_its_answer_gives_its_attempts_back() {
    let memory = MemoryBackend::new();
    let spec = setup(&memory).await;
    let (url, _stop) = serve_slow(&memory, |op| op == Op::AttemptSnapshot).await;
    let asked = post(
        format!("{url}/namespace/n/worker/w/request_attempts"),
        json!({"number_of_work_units": 2}),
    )
    .await;
    assert_eq!(asked, 503);
    assert_given_back(&spec, &["a", "b"]).await;
}

#[tokio::test]
async fn an_attempt_made_for_a_request_cut_off_is_given_back() {
    let memory = MemoryBackend::new();
    let spec = setup(&memory).await;
    let (url, _stop) = serve_slow(&memory, |op| op == Op::AttemptSnapshot).await;
    let asked = post(
        format!("{url}/namespace/n/worker/w/make_attempt"),
        json!({"work_spec": "s", "work_unit": "a", "lifetime": 0}),
    )
    .await;
    assert_eq!(asked, 503);
    assert_given_back(&spec, &["a"]).await;
}

#[tokio::test]
async fn a_unit_update_cut_off_between_its_calls_is_applied_whole() {
    let memory = MemoryBackend::new();
    let spec = setup(&memory).await;
    let worker = memory.worker_at("n", "w").await.unwrap();
    worker
        .request_attempts(&AttemptRequest::units(1))
        .await
        .unwrap();
    let (url, _stop) = serve_slow(&memory, |op| op == Op::UnitSetMeta).await;
    let asked = put(
        format!("{url}/namespace/n/work_spec/s/work_unit/a"),
        json!({"active_attempt_url": "-", "meta": {"priority": 5.0}}),
    )
    .await;
    assert_eq!(asked, 503);
    let unit = spec.work_unit("a").await.unwrap();
    assert!(eventually(|| async { unit.priority().await.unwrap() == 5.0 }).await);
    assert!(unit.active_attempt().await.unwrap().is_none());
}

#[tokio::test]
async fn a_worker_update_cut_off_between_its_calls_is_applied_whole() {
    let memory = MemoryBackend::new();
    setup(&memory).await;
    let (url, _stop) = serve_slow(&memory, |op| op == Op::WorkerSetParent).await;
    let asked = put(
        format!("{url}/namespace/n/worker/w"),
        json!({
            "parent": "p",
            "active": true,
            "data": {"k": 1},
            "mode": "m",
            "expiration": "9999-01-01T00:00:00Z",
            "last_update": "2026-01-01T00:00:00Z",
        }),
    )
    .await;
    assert_eq!(asked, 503);
    let worker = memory.worker_at("n", "w").await.unwrap();
    assert!(eventually(|| async { worker.mode().await.unwrap() == "m" }).await);
    let parent = worker.parent().await.unwrap().map(|p| p.name().to_string());
    assert_eq!(parent.as_deref(), Some("p"));
    assert_eq!(worker.data().await.unwrap(), data!({"k": 1}));
}

/// A shutdown whose deadline passes with requests in flight abandons them
/// as their clients' going away would: the hand-out's attempts are given
/// back, and the worker's update runs to its end, before `serve` returns
/// and the runtime goes.
#[test]
fn requests_abandoned_at_shutdown_leave_nothing_held_or_half_applied() {
    let memory = MemoryBackend::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let spec = runtime.block_on(setup(&memory));
    // The hand-out is still answering at the deadline; the update's change
    // runs on past it, within the time then given to such work.
    let slow_hand_out = Instrumented::with_latency(memory.clone(), Duration::from_secs(5), |op| {
        op == Op::AttemptSnapshot
    });
    let backend = Arc::new(Instrumented::with_latency(
        slow_hand_out,
        Duration::from_secs(3),
        |op| op == Op::WorkerSetParent,
    ));
    let app = coordinated::router(backend.clone(), &Default::default());
    let options = coordinated::ConnectionOptions {
        shutdown_deadline: Duration::from_secs(2),
        ..Default::default()
    };
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let serving = tokio::spawn(coordinated::serve(listener, app, shutdown, options));
        tokio::spawn(post(
            format!("{url}/namespace/n/worker/w/request_attempts"),
            json!({"number_of_work_units": 2}),
        ));
        tokio::spawn(put(
            format!("{url}/namespace/n/worker/w"),
            json!({"parent": "p", "active": true, "mode": "m"}),
        ));
        // Both requests are in their slow calls when the shutdown starts.
        while [Op::AttemptSnapshot, Op::WorkerSetParent]
            .iter()
            .any(|&op| backend.calls().get(op) == 0)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = stop.send(());
        serving.await.unwrap().unwrap();
    });
    // Whatever the runtime still held goes with it.
    drop(runtime);
    let check = tokio::runtime::Runtime::new().unwrap();
    check.block_on(async {
        for unit in ["a", "b"] {
            assert_eq!(
                status(&spec, unit).await,
                WorkUnitStatus::Available,
                "{unit}"
            );
        }
        let worker = memory.worker_at("n", "w").await.unwrap();
        assert_eq!(worker.mode().await.unwrap(), "m");
        let parent = worker.parent().await.unwrap().map(|p| p.name().to_string());
        assert_eq!(parent.as_deref(), Some("p"));
    });
}

/// A clock whose `n`th read from now, once armed with `n`, says so on
/// `stalled` and holds its thread until told on `resume` (or ten seconds
/// pass): work that never waits, but takes long.
#[derive(Debug)]
struct Stalling {
    armed: Arc<AtomicUsize>,
    stalled: Mutex<mpsc::Sender<()>>,
    resume: Mutex<mpsc::Receiver<()>>,
}

impl coordinate::clock::Clock for Stalling {
    fn now(&self) -> coordinate::Time {
        let left = self
            .armed
            .fetch_update(SeqCst, SeqCst, |left| left.checked_sub(1))
            .unwrap_or(0);
        if left == 1 {
            let _ = self.stalled.lock().unwrap().send(());
            let _ = self
                .resume
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(10));
        }
        coordinate::clock::SystemClock.now()
    }
}

/// A client that hangs up after its whole request has arrived, while the
/// server works on it without waiting for anything (an in-memory hand-out
/// whose clock is slow to read): the attempts made for it are given back,
/// as when it hangs up while the backend is waited for.
#[test]
fn a_hand_out_whose_client_hung_up_during_it_gives_its_attempts_back() {
    hand_out_hung_up_during(Transport::Plain);
}

/// The same over TLS, the client closing as TLS clients do: a
/// `close_notify` alert, which the server does not read while it works,
/// then the hang-up (seen where the kernel tells a closed sending side).
#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn a_hand_out_whose_tls_client_closed_during_it_gives_its_attempts_back() {
    hand_out_hung_up_during(Transport::Tls);
}

#[derive(Clone, Copy)]
enum Transport {
    Plain,
    Tls,
}

fn hand_out_hung_up_during(transport: Transport) {
    use std::io::Write;
    let armed = Arc::new(AtomicUsize::new(0));
    let (stalled, hand_out_stalled) = mpsc::channel();
    let (resume, resumed) = mpsc::channel();
    let memory = MemoryBackend::with_clock(Stalling {
        armed: Arc::clone(&armed),
        stalled: Mutex::new(stalled),
        resume: Mutex::new(resumed),
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let spec = runtime.block_on(setup(&memory));
    let app = coordinated::router(Arc::new(memory.clone()), &Default::default());
    let certificates = support::tls::Certificates::new();
    let options = coordinated::ConnectionOptions {
        tls: matches!(transport, Transport::Tls).then(|| certificates.server_tls()),
        shutdown_deadline: Duration::from_secs(5),
        ..Default::default()
    };
    let (url, _stop) = runtime.block_on(support::in_process::serve_with(app, options));
    let addr = url.rsplit("://").next().unwrap().to_owned();
    let body = json!({"number_of_work_units": 2}).to_string();
    let socket = std::net::TcpStream::connect(&addr).unwrap();
    let mut stream: Box<dyn ClosingStream> = match transport {
        Transport::Plain => Box::new(socket),
        Transport::Tls => Box::new(tls_client(&certificates, socket)),
    };
    // Each memory call reads the clock once: the namespace and the worker
    // are looked up before the body is read, then the hand-out stalls.
    armed.store(3, SeqCst);
    write!(
        stream,
        "POST /namespace/n/worker/w/request_attempts HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    stream.flush().unwrap();
    hand_out_stalled
        .recv_timeout(Duration::from_secs(10))
        .expect("the hand-out reads the clock");
    stream.close();
    // The hang-up reaches the server's socket (a loopback's at once).
    std::thread::sleep(Duration::from_millis(50));
    resume.send(()).unwrap();
    runtime.block_on(assert_given_back(&spec, &["a", "b"]));
}

/// A client's connection, closed as its kind of client closes it.
trait ClosingStream: std::io::Write {
    fn close(self: Box<Self>);
}

impl ClosingStream for std::net::TcpStream {
    fn close(self: Box<Self>) {}
}

type TlsClient =
    tokio_rustls::rustls::StreamOwned<tokio_rustls::rustls::ClientConnection, std::net::TcpStream>;

impl ClosingStream for TlsClient {
    fn close(mut self: Box<Self>) {
        use std::io::{Read, Write};
        // What the server sent (its session tickets) is read first, as a
        // client waiting for its answer reads: a socket closed with bytes
        // unread is reset, not closed.
        self.sock
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut answer = [0; 1];
        let read = self.read(&mut answer);
        assert!(read.is_err(), "no answer while the hand-out stalls");
        self.conn.send_close_notify();
        self.flush().unwrap();
    }
}

/// A TLS client of `localhost` over `socket`, trusting `certificates`'
/// authority.
fn tls_client(certificates: &support::tls::Certificates, socket: std::net::TcpStream) -> TlsClient {
    use tokio_rustls::rustls::{ClientConnection, StreamOwned};
    let config = Arc::new(certificates.client_config());
    let connection = ClientConnection::new(config, "localhost".try_into().unwrap()).unwrap();
    StreamOwned::new(connection, socket)
}
