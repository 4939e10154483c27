//! A `coordinated` that serves the API without this server's extensions,
//! as other servers do, so that `RestBackend` has to do what it does
//! against them: follow attempt documents' links instead of reading the
//! names in them, and send long work unit queries in parts instead of in
//! one `POST` to the select URL.

use axum::body::Body;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::Value;

/// The names extension's fields of an attempt document.
const NAMES: [&str; 4] = [
    "work_spec_url",
    "work_spec_name",
    "work_unit_name",
    "worker_name",
];

/// The select extension's field of a work spec document.
const SELECT: &str = "work_unit_select_url";

/// `app` with the names extension removed from every attempt document it
/// answers.
pub fn without_attempt_names(app: axum::Router) -> axum::Router {
    app.layer(axum::middleware::map_response(|r| {
        edit_json(r, remove_names)
    }))
}

/// `app` with the select URL removed from every work spec document it
/// answers.
pub fn without_select_url(app: axum::Router) -> axum::Router {
    app.layer(axum::middleware::map_response(|r| {
        edit_json(r, remove_select)
    }))
}

/// `app` without any of the extensions.
pub fn without_extensions(app: axum::Router) -> axum::Router {
    without_select_url(without_attempt_names(app))
}

/// `app` with `edit` applied to the JSON answer of every request whose
/// path ends with `suffix`.
pub fn edit_answers_at(
    app: axum::Router,
    suffix: &'static str,
    edit: impl Fn(&mut Value) + Clone + Send + Sync + 'static,
) -> axum::Router {
    edit_bytes_at(app, suffix, move |bytes| edited_json(bytes, &edit))
}

/// `app` with `edit` applied to the body bytes of every answer to a
/// request whose path ends with `suffix`.
pub fn edit_bytes_at(
    app: axum::Router,
    suffix: &'static str,
    edit: impl Fn(Vec<u8>) -> Vec<u8> + Clone + Send + Sync + 'static,
) -> axum::Router {
    app.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let edit = edit.clone();
            async move {
                let picked = request.uri().path().ends_with(suffix);
                let response = next.run(request).await;
                if !picked {
                    return response;
                }
                edit_bytes(response, edit).await
            }
        },
    ))
}

/// Applies `edit` to every link in `document`: each string starting with
/// `/`, an absolute path, as this server writes its links.
pub fn edit_links(document: &mut Value, edit: &dyn Fn(&mut String)) {
    match document {
        Value::String(link) if link.starts_with('/') => edit(link),
        Value::Array(items) => items.iter_mut().for_each(|item| edit_links(item, edit)),
        Value::Object(map) => map.values_mut().for_each(|value| edit_links(value, edit)),
        _ => {}
    }
}

/// `response` with `edit` applied to its JSON body; any other body is
/// left as it is.
pub async fn edit_json(response: Response, edit: impl FnOnce(&mut Value)) -> Response {
    let json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|t| t.to_str().is_ok_and(|t| t.contains("json")));
    if !json {
        return response;
    }
    edit_bytes(response, |bytes| edited_json(bytes, edit)).await
}

/// `response` with `edit` applied to its body bytes, its length declared
/// anew.
async fn edit_bytes(response: Response, edit: impl FnOnce(Vec<u8>) -> Vec<u8>) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("cannot read a response body: {e}"))
        .to_bytes();
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(edit(bytes.to_vec())))
}

/// `bytes` with `edit` applied if they are one JSON value, else as they are.
fn edited_json(bytes: Vec<u8>, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return bytes;
    };
    edit(&mut value);
    serde_json::to_vec(&value).unwrap_or_else(|e| panic!("cannot write JSON: {e}"))
}

/// Removes the names extension from every attempt document (an object with
/// a unit link, a worker link and a start time) inside `value`.
fn remove_names(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let attempt = ["work_unit_url", "worker_url", "start_time"]
                .iter()
                .all(|k| map.contains_key(*k));
            if attempt {
                for name in NAMES {
                    map.remove(name);
                }
            }
            map.values_mut().for_each(remove_names);
        }
        Value::Array(items) => items.iter_mut().for_each(remove_names),
        _ => {}
    }
}

/// Removes the select URL from a work spec document.
fn remove_select(value: &mut Value) {
    if let Value::Object(map) = value {
        map.remove(SELECT);
    }
}
