//! A server whose cache has not yet heard of a delete made elsewhere (by
//! another job server) answers as if it had: the missing name's `400` or
//! `404`, never `500 ErrGone`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use coordinate::cache::Cache;
use coordinate::memory::MemoryBackend;
use coordinate::{Backend, NamespaceRef, Summary, WorkUnitQuery};
use serde_json::{json, Value};
use tokio::sync::oneshot;

mod support;

/// A memory backend without its change feed: a cache over it hears of no
/// delete, like one whose feed has not delivered the event yet.
#[derive(Debug)]
struct Unfed(MemoryBackend);

#[async_trait]
impl Backend for Unfed {
    async fn namespace(&self, name: &str) -> coordinate::Result<NamespaceRef> {
        self.0.namespace(name).await
    }

    async fn namespaces(&self) -> coordinate::Result<BTreeMap<String, NamespaceRef>> {
        self.0.namespaces().await
    }

    async fn summarize(&self) -> coordinate::Result<Summary> {
        self.0.summarize().await
    }
}

/// A server over `Cache<Unfed>` and the memory backend behind it, where
/// the "other job server" deletes. Serves until the sender is dropped.
struct StaleServer {
    elsewhere: MemoryBackend,
    url: String,
    client: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

impl StaleServer {
    /// A server whose cache holds spec `s` of namespace `ns` and its unit
    /// `u`, read through the server twice.
    async fn start() -> StaleServer {
        let elsewhere = MemoryBackend::new();
        let cached: Arc<dyn Backend> = Arc::new(Cache::new(Unfed(elsewhere.clone())));
        let app = coordinated::router(cached, &coordinated::ServerOptions::default());
        let (url, stop) = support::in_process::serve(app).await;
        let server = StaleServer {
            elsewhere,
            url,
            client: reqwest::Client::new(),
            _stop: stop,
        };
        server.cache_unit().await;
        server
    }

    /// Namespace `ns` behind the cache's back.
    async fn elsewhere_ns(&self) -> NamespaceRef {
        self.elsewhere.namespace("ns").await.unwrap()
    }

    /// Status and JSON body of a `GET`.
    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path).await
    }

    /// Status and JSON body (`null` for none) of a request without a body.
    async fn send(&self, method: reqwest::Method, path: &str) -> (u16, Value) {
        let response = self
            .client
            .request(method, format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, body)
    }

    async fn post(&self, path: &str, body: Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.url))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201);
    }

    /// Spec `s` of namespace `ns` with unit `u`, read through the server
    /// twice, so that its cache holds them.
    async fn cache_unit(&self) {
        self.post("/namespace/ns/work_spec", json!({"data": {"name": "s"}}))
            .await;
        self.post("/namespace/ns/work_spec/s/work_unit", json!({"name": "u"}))
            .await;
        for _ in 0..2 {
            assert_eq!(self.get(UNIT).await.0, 200);
            assert_eq!(self.get(SPEC).await.0, 200);
        }
    }

    /// Asserts that `path` answers `status` with error `code` naming `value`.
    async fn fails_with(&self, path: &str, status: u16, code: &str, value: &str) {
        let (got, body) = self.get(path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(code_and_value(&body), error(code, value), "{path}");
    }
}

const SPEC: &str = "/namespace/ns/work_spec/s";
const UNIT: &str = "/namespace/ns/work_spec/s/work_unit/u";

fn error(code: &str, value: &str) -> Value {
    json!({"error": code, "value": value})
}

/// The error code and value of an error document.
fn code_and_value(body: &Value) -> Value {
    json!({"error": body["error"], "value": body["value"]})
}

#[tokio::test]
async fn a_unit_deleted_elsewhere_is_no_such_work_unit() {
    let server = StaleServer::start().await;
    let spec = server.elsewhere_ns().await.work_spec("s").await.unwrap();
    let query = WorkUnitQuery {
        names: vec!["u".into()],
        ..Default::default()
    };
    assert_eq!(spec.delete_work_units(&query).await.unwrap(), 1);

    server.fails_with(UNIT, 400, "ErrNoSuchWorkUnit", "u").await;
    let (status, _) = server.get(&format!("{UNIT}/attempts")).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_spec_destroyed_elsewhere_is_no_such_work_spec() {
    let server = StaleServer::start().await;
    let ns = server.elsewhere_ns().await;
    ns.destroy_work_spec("s").await.unwrap();

    for path in [SPEC, UNIT] {
        server.fails_with(path, 404, "ErrNoSuchWorkSpec", "s").await;
    }
}

#[tokio::test]
async fn deleting_a_spec_destroyed_elsewhere_is_no_such_work_spec() {
    let server = StaleServer::start().await;
    let ns = server.elsewhere_ns().await;
    ns.destroy_work_spec("s").await.unwrap();

    let (status, body) = server.send(reqwest::Method::DELETE, SPEC).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(code_and_value(&body), error("ErrNoSuchWorkSpec", "s"));
}

#[tokio::test]
async fn a_namespace_destroyed_elsewhere_has_no_specs() {
    let server = StaleServer::start().await;
    let ns = server.elsewhere_ns().await;
    ns.destroy().await.unwrap();

    server.fails_with(SPEC, 404, "ErrNoSuchWorkSpec", "s").await;
}

#[tokio::test]
async fn a_unit_made_again_elsewhere_is_the_new_one() {
    let server = StaleServer::start().await;
    let ns = server.elsewhere_ns().await;
    ns.destroy_work_spec("s").await.unwrap();
    let spec = ns
        .set_work_spec(coordinate::data!({"name": "s"}))
        .await
        .unwrap();
    spec.add_work_unit("u", coordinate::data!({"again": true}), Default::default())
        .await
        .unwrap();

    let (status, body) = server.get(UNIT).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!({"again": true}));
}
