//! The per-request timeout: a request whose backend work outlasts it is
//! `503`, and the server goes on answering. Requests answered by the
//! timeout, and requests whose client went away first, are counted under
//! their route. Readiness: a ping of the backend, within its own timeout.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use coordinate::memory::MemoryBackend;
use coordinate::{Backend, NamespaceRef, Summary};

mod support;

/// A memory backend whose namespace lookups take half a minute (longer
/// than any request here waits), and whose ping never answers.
#[derive(Debug)]
struct Slow(MemoryBackend);

#[async_trait]
impl Backend for Slow {
    async fn namespace(&self, name: &str) -> coordinate::Result<NamespaceRef> {
        tokio::time::sleep(Duration::from_secs(30)).await;
        self.0.namespace(name).await
    }

    async fn namespaces(&self) -> coordinate::Result<BTreeMap<String, NamespaceRef>> {
        self.0.namespaces().await
    }

    async fn summarize(&self) -> coordinate::Result<Summary> {
        self.0.summarize().await
    }

    async fn ping(&self) -> coordinate::Result<()> {
        std::future::pending().await
    }
}

fn content_type(response: &reqwest::Response) -> &str {
    let value = response.headers().get("content-type");
    value.and_then(|v| v.to_str().ok()).unwrap_or_default()
}

#[tokio::test]
async fn backend_work_over_the_timeout_is_503() {
    let options = coordinated::ServerOptions {
        request_timeout: Duration::from_millis(100),
        ..Default::default()
    };
    let app = coordinated::router(Arc::new(Slow(MemoryBackend::new())), &options);
    let (url, _stop) = support::in_process::serve(app).await;
    let client = reqwest::Client::new();

    let response = client
        .get(format!("{url}/namespace/ns"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(
        content_type(&response),
        "application/vnd.diffeo.coordinate.v1+json"
    );
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["error"], "error", "{body}");

    // As the type the request negotiated.
    let response = client
        .get(format!("{url}/namespace/ns"))
        .header("Accept", "text/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(content_type(&response), "text/json");

    // A request that waits for no namespace is answered as before.
    let response = client.get(format!("{url}/namespace")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

/// The count of `http_requests_total` for the route of `GET
/// /namespace/…/work_spec` (which no other test here asks for) with
/// `status`, as `/metrics` of the server at `url` shows it.
async fn spec_list_gets(client: &reqwest::Client, url: &str, status: &str) -> u64 {
    let text = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!(
        "http_requests_total{{route=\"/namespace/{{namespace}}/work_spec\",method=\"GET\",status=\"{status}\"}} "
    );
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |count| count.parse().unwrap())
}

#[tokio::test]
async fn requests_answered_by_the_timeout_or_left_by_their_client_count_under_their_route() {
    let options = coordinated::ServerOptions {
        // Far longer than the impatient client below waits, so that its
        // request is left by it before the timeout answers it.
        request_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let app = coordinated::router(Arc::new(Slow(MemoryBackend::new())), &options);
    let (url, _stop) = support::in_process::serve(app).await;
    let client = reqwest::Client::new();

    let timed_out = spec_list_gets(&client, &url, "503").await;
    let response = client
        .get(format!("{url}/namespace/ns/work_spec"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(spec_list_gets(&client, &url, "503").await, timed_out + 1);

    let left = spec_list_gets(&client, &url, coordinated::metrics::CLIENT_CLOSED).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let gave_up = impatient
        .get(format!("{url}/namespace/ns/work_spec"))
        .send()
        .await;
    assert!(gave_up.is_err_and(|e| e.is_timeout()));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while spec_list_gets(&client, &url, coordinated::metrics::CLIENT_CLOSED).await <= left {
        assert!(
            std::time::Instant::now() < deadline,
            "a request its client left is not counted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn readiness_is_a_ping_answered_within_its_timeout() {
    use coordinate::instrumented::{Instrumented, Op};
    let options = coordinated::ServerOptions {
        readiness_timeout: Duration::from_millis(100),
        ..Default::default()
    };
    let client = reqwest::Client::new();

    // However many namespaces there are, readiness lists none of them.
    let counted = Arc::new(Instrumented::new(MemoryBackend::new()));
    for i in 0..3 {
        counted.namespace(&format!("n{i}")).await.unwrap();
    }
    counted.reset();
    let app = coordinated::router(counted.clone(), &options);
    let (url, _stop) = support::in_process::serve(app).await;
    let response = client.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let calls = counted.calls();
    assert_eq!(calls.get(Op::Ping), 1);
    assert_eq!(calls.total(), 1, "{calls:?}");

    // A backend that does not answer in time is not ready.
    let app = coordinated::router(Arc::new(Slow(MemoryBackend::new())), &options);
    let (url, _stop) = support::in_process::serve(app).await;
    let response = client.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["message"], "backend did not answer in time", "{body}");
}
