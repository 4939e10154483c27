//! `RestBackend` against a server that does what the reference server does
//! where the REST API lets servers differ: `coordinated` without its
//! extensions, its answers or requests rewritten the reference server's way.

use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::Next;
use coordinate::memory::MemoryBackend;
use coordinate::rest::client::RestBackend;
use coordinate::rest::names;
use coordinate::{Backend, BackendExt, WorkUnitQuery};

mod support;
use support::in_process::serve;

/// `coordinated` over `memory`, without its extensions.
fn plain_router(memory: &MemoryBackend) -> axum::Router {
    let backend: Arc<dyn Backend> = Arc::new(memory.clone());
    let router = coordinated::router(backend, &coordinated::ServerOptions::default());
    support::plain::without_extensions(router)
}

/// `app` comparing `previous` literally, as the reference server does:
/// `coordinated` decodes a `-…` value that decodes cleanly, so each such
/// value is handed on encoded once more, to decode to what was received.
fn literal_previous(app: axum::Router) -> axum::Router {
    app.layer(axum::middleware::from_fn(
        |mut request: Request, next: Next| async move {
            if let Some(query) = request.uri().query() {
                let query: Vec<String> = query
                    .split('&')
                    .map(|pair| match pair.strip_prefix("previous=") {
                        Some(value) => {
                            let received = names::percent_decode(value)
                                .unwrap_or_else(|e| panic!("bad previous {value}: {e}"));
                            format!("previous={}", names::expand_path_variable(&received))
                        }
                        None => pair.to_owned(),
                    })
                    .collect();
                let rewritten = format!("{}?{}", request.uri().path(), query.join("&"));
                *request.uri_mut() = rewritten
                    .parse()
                    .unwrap_or_else(|e| panic!("bad URI {rewritten}: {e}"));
            }
            next.run(request).await
        },
    ))
}

/// Units whose names start with `-` but do not decode, and one after them.
const DASHED: [&str; 4] = ["-a", "-c", "-d", "b"];

#[tokio::test]
async fn pages_past_dashed_names_on_a_server_comparing_previous_literally() {
    let served = support::memory_with_units(&DASHED).await;
    let (url, _stop) = serve(literal_previous(plain_router(&served))).await;
    let rest = RestBackend::connect(url).await.unwrap();
    let spec = rest.work_spec_at("n", "s").await.unwrap();
    let mut pages = Vec::new();
    let mut previous = String::new();
    while pages.len() < DASHED.len() + 1 {
        let query = WorkUnitQuery {
            previous_name: previous.clone(),
            limit: 1,
            ..WorkUnitQuery::default()
        };
        let page = spec.work_units(&query).await.unwrap();
        let Some(last) = page.into_keys().last() else {
            break;
        };
        previous.clone_from(&last);
        pages.push(last);
    }
    assert_eq!(pages, DASHED);
}

#[tokio::test]
async fn deletes_after_a_dashed_name_on_a_server_comparing_previous_literally() {
    let served = support::memory_with_units(&DASHED).await;
    let (url, _stop) = serve(literal_previous(plain_router(&served))).await;
    let rest = RestBackend::connect(url).await.unwrap();
    let query = WorkUnitQuery {
        previous_name: "-c".into(),
        ..WorkUnitQuery::default()
    };
    let spec = rest.work_spec_at("n", "s").await.unwrap();
    assert_eq!(spec.delete_work_units(&query).await.unwrap(), 2);
    let left = served.work_spec_at("n", "s").await.unwrap();
    let left = left.work_units(&WorkUnitQuery::all()).await.unwrap();
    assert_eq!(left.into_keys().collect::<Vec<_>>(), ["-a", "-c"]);
}
