//! The per-request timeout: a request whose backend work outlasts it is
//! `503`, and the server goes on answering.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use coordinate::memory::MemoryBackend;
use coordinate::{Backend, NamespaceRef, Summary};

mod support;

/// A memory backend whose namespace lookups take a second.
#[derive(Debug)]
struct Slow(MemoryBackend);

#[async_trait]
impl Backend for Slow {
    async fn namespace(&self, name: &str) -> coordinate::Result<NamespaceRef> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.0.namespace(name).await
    }

    async fn namespaces(&self) -> coordinate::Result<BTreeMap<String, NamespaceRef>> {
        self.0.namespaces().await
    }

    async fn summarize(&self) -> coordinate::Result<Summary> {
        self.0.summarize().await
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
