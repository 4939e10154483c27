//! `RestBackend` against a server that does what the reference server does
//! where the REST API lets servers differ: `coordinated` without its
//! extensions, its answers or requests rewritten the reference server's way.

use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::Next;
use coordinate::memory::MemoryBackend;
use coordinate::rest::client::RestBackend;
use coordinate::rest::names;
use coordinate::{
    data, AttemptRequest, Backend, BackendExt, WorkUnitMeta, WorkUnitQuery, WorkUnitStatus,
};
use serde_json::{json, Value};

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

/// `app` spelling the names `.` and `..` verbatim in the links it answers,
/// as the reference server does.
fn raw_dot_names(app: axum::Router) -> axum::Router {
    app.layer(axum::middleware::map_response(|response| {
        support::plain::edit_json(response, |document| {
            support::plain::edit_links(document, &raw_dots)
        })
    }))
}

/// `link` with the encoded names `.` and `..` spelled verbatim.
fn raw_dots(link: &mut String) {
    let raw: Vec<&str> = link
        .split('/')
        .map(|segment| match segment {
            "-Lg" => ".",
            "-Li4" => "..",
            other => other,
        })
        .collect();
    *link = raw.join("/");
}

#[tokio::test]
async fn follows_links_naming_dot_objects_verbatim() {
    let served = support::memory_with_units(&[".."]).await;
    served
        .namespace(".")
        .await
        .unwrap()
        .set_work_spec(data!({"name": "s"}))
        .await
        .unwrap();
    let unit = served.work_unit_at("n", "s", "..").await.unwrap();
    let worker = served.worker_at("n", ".").await.unwrap();
    worker
        .make_attempt(&unit, Default::default())
        .await
        .unwrap();
    let (url, _stop) = serve(raw_dot_names(plain_router(&served))).await;
    let rest = RestBackend::connect(url).await.unwrap();

    let specs = rest.namespace(".").await.unwrap().work_spec_names().await;
    assert_eq!(specs.unwrap(), ["s"]);
    let active = rest
        .worker_at("n", ".")
        .await
        .unwrap()
        .active_attempts()
        .await;
    assert_eq!(active.unwrap().len(), 1);
    let meta = WorkUnitMeta {
        priority: 7.0,
        not_before: None,
    };
    let dots = rest.work_unit_at("n", "s", "..").await.unwrap();
    dots.set_meta(meta).await.unwrap();
    assert_eq!(unit.meta().await.unwrap().priority, 7.0);
    // Nothing was made under the names the dots would have left.
    let namespaces = served.namespaces().await.unwrap();
    assert_eq!(namespaces.into_keys().collect::<Vec<_>>(), [".", "n"]);
    let workers = served
        .namespace("n")
        .await
        .unwrap()
        .workers()
        .await
        .unwrap();
    assert_eq!(workers.into_keys().collect::<Vec<_>>(), ["."]);
}

/// The CBOR form of `{"t": tuple(1, 2), "b": bytes ff fe}`, as the
/// reference server answers a map holding a tuple: it keeps byte strings.
fn cbor_with_bytes_not_utf8() -> Value {
    use base64::Engine as _;
    let cbor = [
        0xa2, 0x61, b't', 0xd8, 0x80, 0x82, 0x01, 0x02, 0x61, b'b', 0x42, 0xff, 0xfe,
    ];
    json!(base64::engine::general_purpose::STANDARD.encode(cbor))
}

/// `coordinated` over `served`, answering unit `u1`'s data so.
fn u1_in_cbor(served: &MemoryBackend) -> axum::Router {
    support::plain::edit_answers_at(plain_router(served), "/work_unit/u1", |unit| {
        unit["data"] = cbor_with_bytes_not_utf8();
    })
}

/// A client of the server at `url`, once it has read `u1`'s byte string
/// as the JSON form spells bytes: standard base64 text.
async fn u1_read_as_base64_text(url: String) -> RestBackend {
    let rest = RestBackend::connect(url).await.unwrap();
    let unit = rest.work_unit_at("n", "s", "u1").await.unwrap();
    let data = unit.data().await.unwrap();
    assert_eq!(data, data!({"t": [1, 2], "b": "//4="}));
    rest
}

#[tokio::test]
async fn reads_cbor_byte_strings_that_are_not_utf8() {
    let served = support::memory_with_units(&["u1", "u2"]).await;
    let app =
        support::plain::edit_answers_at(u1_in_cbor(&served), "/request_attempts", |hand_out| {
            for attempt in hand_out["attempts"].as_array_mut().into_iter().flatten() {
                if attempt["work_unit_url"]
                    .as_str()
                    .is_some_and(|u| u.ends_with("/u1"))
                {
                    attempt["data"] = cbor_with_bytes_not_utf8();
                }
            }
        });
    let (url, _stop) = serve(app).await;
    let rest = u1_read_as_base64_text(url).await;
    let worker = rest.worker_at("n", "w").await.unwrap();
    let attempts = worker.request_attempts(&AttemptRequest::units(2)).await;
    assert_eq!(attempts.unwrap().len(), 2);
    let counts = served.work_spec_at("n", "s").await.unwrap();
    let counts = counts.count_work_unit_status().await.unwrap();
    assert_eq!(counts.get(&WorkUnitStatus::Pending), Some(&2));
}

/// A `coordinated` in front of such a server passes those bytes on as the
/// text it read.
#[tokio::test]
async fn a_proxy_passes_on_cbor_byte_strings_as_their_base64_text() {
    let served = support::memory_with_units(&["u1"]).await;
    let (upstream, _stop_upstream) = serve(u1_in_cbor(&served)).await;
    let proxied: Arc<dyn Backend> = Arc::new(RestBackend::connect(upstream).await.unwrap());
    let proxy = coordinated::router(proxied, &coordinated::ServerOptions::default());
    let (url, _stop) = serve(proxy).await;
    u1_read_as_base64_text(url).await;
}
