//! The real `coordinated` binary against the Coordinate REST API's
//! documented wire format for single operations: raw requests, raw bodies,
//! and the answers the API gives for them.

mod support;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};
use support::{request, Reply, Server};

const V1: &str = "application/vnd.diffeo.coordinate.v1+json";
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Posts work spec "s", and one unit per name, to namespace `ns`.
fn spec_with_units(server: &Server, ns: &str, units: &[&str]) -> String {
    let spec = format!("/namespace/{ns}/work_spec/s");
    let made = server.send_json(
        "POST",
        &format!("/namespace/{ns}/work_spec"),
        r#"{"data": {"name": "s"}}"#,
    );
    assert_eq!(made.status, 201, "{}", made.text());
    for unit in units {
        let body = json!({"name": unit}).to_string();
        let made = server.send_json("POST", &format!("{spec}/work_unit"), &body);
        assert_eq!(made.status, 201, "{unit}: {}", made.text());
    }
    spec
}

/// The names of the units of `spec`, sorted.
fn unit_names(server: &Server, spec: &str) -> Vec<String> {
    listed_names(server, &format!("{spec}/work_unit"))
}

/// The names of the units a work unit query URL lists, sorted.
fn listed_names(server: &Server, query: &str) -> Vec<String> {
    let reply = server.get(query);
    assert_eq!(reply.status, 200, "{query}: {}", reply.text());
    let list = reply.json();
    let mut names: Vec<String> = list["work_units"]
        .as_array()
        .map(|units| {
            units
                .iter()
                .filter_map(|u| u["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A request without a body and without extra headers.
fn bare(server: &Server, method: &str, path: &str) -> Reply {
    request(server.addr, method, path, &[], None)
}

/// Asserts an error answer: its status, the v1 type and code `error`.
fn assert_refused(reply: &Reply, status: u16, what: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.text());
    assert_eq!(reply.header("content-type"), Some(V1), "{what}");
    assert_eq!(reply.error_code(), "error", "{what}");
}

/// A worker made active by an update with every field.
fn active_worker(server: &Server, path: &str) {
    let body = r#"{"active": true, "mode": "RUN", "data": {"pid": 4411},
                   "last_update": "2024-05-06T07:08:00Z",
                   "expiration": "2024-05-06T07:23:00Z"}"#;
    let reply = server.send_json("PUT", path, body);
    assert_eq!(reply.status, 204, "{}", reply.text());
    assert_eq!(server.get(path).json()["active"], true);
}

/// The pending attempt one `request_attempts` of `worker` gets.
fn one_attempt(server: &Server, worker: &str) -> Value {
    let got = server.send_json(
        "POST",
        &format!("{worker}/request_attempts"),
        r#"{"number_of_work_units": 1}"#,
    );
    assert_eq!(got.status, 200, "{}", got.text());
    got.json()["attempts"][0].clone()
}

// `POST /namespace` gets or creates, always 201 with Location and the full document.
#[test]
fn posting_a_namespace_is_201_with_its_document_every_time() {
    let server = Server::start(&[]);
    for _ in 0..2 {
        let reply = server.send_json("POST", "/namespace", r#"{"name": "new ns"}"#);
        assert_eq!(reply.status, 201, "{}", reply.text());
        assert_eq!(reply.header("content-type"), Some(V1));
        assert_eq!(reply.header("location"), Some("/namespace/-bmV3IG5z"));
        assert_eq!(
            reply.json(),
            json!({"name": "new ns", "url": "/namespace/-bmV3IG5z",
                   "summary_url": "/namespace/-bmV3IG5z/summary",
                   "work_specs_url": "/namespace/-bmV3IG5z/work_spec",
                   "work_spec_url": "/namespace/-bmV3IG5z/work_spec/{spec}",
                   "workers_url": "/namespace/-bmV3IG5z/worker",
                   "worker_url": "/namespace/-bmV3IG5z/worker/{worker}"})
        );
    }
    // An absent name is the empty name.
    let reply = server.send_json("POST", "/namespace", "{}");
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(reply.header("location"), Some("/namespace/-"));
    assert_eq!(reply.json()["name"], "");
}

// `DELETE` of a namespace always succeeds, even one never created.
#[test]
fn deleting_a_namespace_never_created_is_204() {
    let server = Server::start(&[]);
    let reply = bare(&server, "DELETE", "/namespace/never-made");
    assert_eq!(reply.status, 204, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some(V1));
    assert!(reply.body.is_empty());
}

// `request_attempts` that finds no work is 200 without `work_spec_url` and with no attempts.
#[test]
fn requesting_attempts_with_no_work_is_200_and_empty() {
    let server = Server::start(&[]);
    spec_with_units(&server, "idle", &[]);
    let reply = server.send_json(
        "POST",
        "/namespace/idle/worker/w/request_attempts",
        r#"{"available_gb": 0.0, "lifetime": 0, "number_of_work_units": 1,
            "work_specs": null, "runtimes": null}"#,
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let result = reply.json();
    assert!(result.get("work_spec_url").is_none(), "{result}");
    let attempts = &result["attempts"];
    assert!(attempts.is_null() || attempts == &json!([]), "{attempts}");
}

// A worker update whose `active` is false or absent deactivates an active worker.
#[test]
fn a_worker_put_without_active_true_deactivates() {
    let server = Server::start(&[]);
    let worker = "/namespace/w/worker/host";
    for body in [
        "{}",
        r#"{"active": false}"#,
        r#"{"active": false, "data": null, "mode": "", "expiration": "0001-01-01T00:00:00Z",
            "last_update": "0001-01-01T00:00:00Z"}"#,
    ] {
        active_worker(&server, worker);
        let reply = server.send_json("PUT", worker, body);
        assert_eq!(reply.status, 204, "{body}: {}", reply.text());
        assert_eq!(server.get(worker).json()["active"], false, "{body}");
    }
}

// A worker update's absent fields mean null data, unset times and an empty mode.
#[test]
fn a_worker_update_takes_absent_fields_as_empty() {
    let server = Server::start(&[]);
    let worker = "/namespace/w/worker/host";
    active_worker(&server, worker);
    let reply = server.send_json("PUT", worker, r#"{"active": true}"#);
    assert_eq!(reply.status, 204, "{}", reply.text());
    let doc = server.get(worker).json();
    assert_eq!(doc["active"], true, "{doc}");
    assert_eq!(doc["data"], Value::Null, "{doc}");
    assert_eq!(doc["mode"], "", "{doc}");
    assert_eq!(doc["last_update"], ZERO_TIME, "{doc}");
    assert_eq!(doc["expiration"], ZERO_TIME, "{doc}");
}

// In a worker update, `"parent": ""` clears the parent, with `204`.
#[test]
fn an_empty_parent_clears_the_parent() {
    let server = Server::start(&[]);
    let worker = "/namespace/w/worker/child";
    let reply = server.send_json("PUT", worker, r#"{"parent": "boss"}"#);
    assert_eq!(reply.status, 204, "{}", reply.text());
    let doc = server.get(worker).json();
    assert_eq!(doc["parent"], "boss", "{doc}");
    assert_eq!(doc["parent_url"], "/namespace/w/worker/boss", "{doc}");

    let reply = server.send_json("PUT", worker, r#"{"parent": ""}"#);
    assert_eq!(reply.status, 204, "{}", reply.text());
    let doc = server.get(worker).json();
    assert!(doc.get("parent").is_none(), "{doc}");
    assert!(doc.get("parent_url").is_none(), "{doc}");
    let boss = server.get("/namespace/w/worker/boss").json();
    assert!(boss.get("child_urls").is_none(), "{boss}");
}

// As lib.rs (Extensions) documents, a worker update with any `parent`, `""` too, keeps `active`.
#[test]
fn a_worker_put_with_a_parent_leaves_the_active_flag() {
    let server = Server::start(&[]);
    let worker = "/namespace/w/worker/child";
    for body in [
        r#"{"parent": "boss", "active": false}"#,
        r#"{"parent": "boss", "active": false}"#,
        r#"{"parent": "", "active": false, "data": null, "mode": "",
            "expiration": "0001-01-01T00:00:00Z", "last_update": "0001-01-01T00:00:00Z"}"#,
        r#"{"parent": ""}"#,
        r#"{"parent_url": "/namespace/elsewhere/worker/boss"}"#,
    ] {
        active_worker(&server, worker);
        let reply = server.send_json("PUT", worker, body);
        assert_eq!(reply.status, 204, "{body}: {}", reply.text());
        assert_eq!(server.get(worker).json()["active"], true, "{body}");
    }
    // An empty `parent_url` is a URL the client does not know: no parent.
    active_worker(&server, worker);
    let reply = server.send_json("PUT", worker, r#"{"parent_url": "", "active": false}"#);
    assert_eq!(reply.status, 204, "{}", reply.text());
    assert_eq!(server.get(worker).json()["active"], false);
}

// `expire` of an attempt already expired is a `204` no-op.
#[test]
fn expiring_an_expired_attempt_is_a_204_no_op() {
    let server = Server::start(&[]);
    let spec = spec_with_units(&server, "x", &["u"]);
    let attempt = one_attempt(&server, "/namespace/x/worker/w");
    let url = attempt["url"].as_str().expect("an attempt URL");
    let expire = attempt["expire_url"].as_str().expect("an expire URL");
    let first = server.send_json("POST", expire, r#"{"data": {"n": 1}}"#);
    assert_eq!(first.status, 204, "{}", first.text());
    let expired = server.get(url).json();
    assert_eq!(expired["status"], "expired", "{expired}");

    let again = server.send_json("POST", expire, r#"{"data": {"n": 2}}"#);
    assert_eq!(again.status, 204, "{}", again.text());
    assert_eq!(again.header("content-type"), Some(V1));
    let after = server.get(url).json();
    assert_eq!(after["status"], "expired", "{after}");
    assert_eq!(after["end_time"], expired["end_time"], "{after}");
    assert_eq!(after["data"], json!({"n": 1}), "{after}");
    let unit = server.get(&format!("{spec}/work_unit/u")).json();
    assert_eq!(unit["status"], "available", "{unit}");
}

// `change` and `adjust` without `meta`, or with `null`, do nothing and answer 204.
#[test]
fn change_and_adjust_without_meta_are_204_no_ops() {
    let server = Server::start(&[]);
    let spec = spec_with_units(&server, "p", &[]);
    let made = server.send_json(
        "POST",
        &format!("{spec}/work_unit"),
        r#"{"name": "u", "meta": {"priority": 2.5, "not_before": "0001-01-01T00:00:00Z"}}"#,
    );
    assert_eq!(made.status, 201);
    for route in ["change", "adjust"] {
        for body in [
            "{}",
            r#"{"meta": null}"#,
            r#"{"name": "u", "status": "any"}"#,
        ] {
            let path = format!("{spec}/{route}?name=u");
            let reply = server.send_json("POST", &path, body);
            assert_eq!(reply.status, 204, "{route} {body}: {}", reply.text());
            let unit = server.get(&format!("{spec}/work_unit/u")).json();
            assert_eq!(unit["meta"]["priority"], 2.5, "{route} {body}");
        }
    }
}

// A work spec `PUT` with `data` absent or `null` does nothing and answers 204.
#[test]
fn a_work_spec_put_without_data_is_a_204_no_op() {
    let server = Server::start(&[]);
    let made = server.send_json(
        "POST",
        "/namespace/d/work_spec",
        r#"{"data": {"name": "s", "priority": 5, "then": "t"}}"#,
    );
    assert_eq!(made.status, 201);
    let spec = "/namespace/d/work_spec/s";
    for body in ["{}", r#"{"data": null}"#, r#"{"name": "other", "url": ""}"#] {
        let reply = server.send_json("PUT", spec, body);
        assert_eq!(reply.status, 204, "{body}: {}", reply.text());
        assert_eq!(
            server.get(spec).json()["data"],
            json!({"name": "s", "priority": 5, "then": "t"}),
            "{body}"
        );
    }
}

// The body's Content-Type and kind are checked before the method, so 415
// and 400 beat 405.
#[test]
fn content_type_and_body_kind_are_checked_before_the_method() {
    let server = Server::start(&[]);
    spec_with_units(&server, "m", &["u"]);
    for (method, path) in [
        ("POST", "/"),
        ("PUT", "/namespace"),
        ("PUT", "/namespace/m/worker"),
        ("POST", "/namespace/m/work_spec/s/counts"),
        ("PUT", "/namespace/m/work_spec/s/work_unit/u/attempt"),
    ] {
        for content_type in [None, Some("text/plain"), Some("application/xml")] {
            let headers: Vec<(&str, &str)> =
                content_type.iter().map(|t| ("Content-Type", *t)).collect();
            let reply = request(server.addr, method, path, &headers, Some("{}"));
            let what = format!("{method} {path} {content_type:?}");
            assert_refused(&reply, 415, &what);
        }
        // With JSON declared, a body that is not a document is refused
        // before the method is; a document, the method is refused.
        for body in ["5", "\"x\"", "[]", "true", "null"] {
            let reply = server.send_json(method, path, body);
            assert_refused(&reply, 400, &format!("{method} {path} {body}"));
        }
        let reply = server.send_json(method, path, "{}");
        assert_refused(&reply, 405, &format!("{method} {path}"));
    }
}

// An empty Content-Type is read as absent, so 415, not 400.
#[test]
fn an_empty_content_type_is_415() {
    let server = Server::start(&[]);
    for value in ["", " "] {
        for (method, path) in [("POST", "/namespace"), ("PUT", "/namespace/m/worker")] {
            let headers = [("Content-Type", value)];
            let reply = request(server.addr, method, path, &headers, Some("{}"));
            assert_refused(&reply, 415, &format!("{method} {path} {value:?}"));
        }
    }
}

// Parameters of a JSON Content-Type are accepted and ignored, `q` and `charset` included.
#[test]
fn content_type_parameters_are_ignored() {
    let server = Server::start(&[]);
    for (i, content_type) in [
        "application/json; q=5",
        "application/json;q=x",
        "text/json; charset=latin1",
        "Application/Vnd.Diffeo.Coordinate.V1+JSON; charset=\"utf-8\"; v=2",
    ]
    .into_iter()
    .enumerate()
    {
        let body = format!(r#"{{"name": "n{i}"}}"#);
        let headers = [("Content-Type", content_type)];
        let reply = request(server.addr, "POST", "/namespace", &headers, Some(&body));
        assert_eq!(reply.status, 201, "{content_type}: {}", reply.text());
        assert_eq!(reply.json()["name"], format!("n{i}"), "{content_type}");
    }
    // A malformed one is still 400.
    let headers = [("Content-Type", "application/json; =x")];
    let reply = request(server.addr, "POST", "/namespace", &headers, Some("{}"));
    assert_refused(&reply, 400, "malformed parameter");
}

// `HEAD` answers the status and headers of `GET`, with an empty body.
#[test]
fn head_answers_the_headers_of_get() {
    let server = Server::start(&[]);
    spec_with_units(&server, "h", &["u"]);
    for path in [
        "/",
        "/namespace",
        "/namespace/h",
        "/namespace/h/work_spec/s",
        "/namespace/h/work_spec/s/work_unit/u",
        "/namespace/h/work_spec/s/counts",
        "/namespace/h/work_spec/s/meta?counts=true",
        "/namespace/h/worker/w",
        "/namespace/h/work_spec/s/work_unit/nope",
    ] {
        for accept in [None, Some("text/*")] {
            let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("Accept", *a)).collect();
            let get = request(server.addr, "GET", path, &headers, None);
            let head = request(server.addr, "HEAD", path, &headers, None);
            let what = format!("{path} {accept:?}");
            assert_eq!(head.status, get.status, "{what}");
            assert!(head.body.is_empty(), "{what}");
            assert!(get.header("content-type").is_some(), "{what}");
            assert_eq!(
                head.header("content-type"),
                get.header("content-type"),
                "{what}"
            );
            if let Some(length) = get.header("content-length") {
                assert_eq!(length, get.body.len().to_string(), "{what}");
                assert_eq!(head.header("content-length"), Some(length), "{what}");
            }
        }
    }
}

/// The wire value of a data map in the CBOR form: standard base64,
/// with padding, of the CBOR bytes.
fn cbor_form(cbor: &[u8]) -> String {
    STANDARD.encode(cbor)
}

// CBOR-form data (tuple, UUID, bytes) is accepted and reads back as JSON (array, UUID string, text).
#[test]
fn cbor_form_data_maps_are_accepted_end_to_end() {
    let server = Server::start(&[]);
    let spec = spec_with_units(&server, "c", &[]);
    // {"k": bytes 01 02 03 04}, built here: a1 61 6b 44 01 02 03 04.
    let bytes = cbor_form(&[0xa1, 0x61, 0x6b, 0x44, 1, 2, 3, 4]);
    for (name, wire, json_form) in [
        // Wire values of a tuple and a UUID.
        (
            "tuple",
            "oWRwYWly2ICCYWEB".to_owned(),
            json!({"pair": ["a", 1]}),
        ),
        (
            "uuid",
            "oWJpZNglUA9OSyqMHU5Vmgs8LR4Pmos=".to_owned(),
            json!({"id": "0f4e4b2a-8c1d-4e55-9a0b-3c2d1e0f9a8b"}),
        ),
        ("bytes", bytes, json!({"k": "\u{1}\u{2}\u{3}\u{4}"})),
    ] {
        let body = json!({"name": name, "data": wire}).to_string();
        let made = server.send_json("POST", &format!("{spec}/work_unit"), &body);
        assert_eq!(made.status, 201, "{name}: {}", made.text());
        let unit = server.get(&format!("{spec}/work_unit/{name}"));
        assert_eq!(unit.status, 200, "{name}: {}", unit.text());
        assert_eq!(unit.json()["data"], json_form, "{name}");
    }

    // The form travels in attempt bodies too.
    let attempt = one_attempt(&server, "/namespace/c/worker/w");
    let finish = attempt["finish_url"].as_str().expect("a finish URL");
    let body = json!({"data": "oWRwYWly2ICCYWEB"}).to_string();
    let reply = server.send_json("POST", finish, &body);
    assert_eq!(reply.status, 204, "{}", reply.text());
    let url = attempt["url"].as_str().expect("an attempt URL");
    assert_eq!(server.get(url).json()["data"], json!({"pair": ["a", 1]}));

    // Byte strings that are not UTF-8, CBOR that is no map and base64
    // that is not valid are 400.
    for (name, wire) in [
        ("not-utf8", cbor_form(&[0xa1, 0x61, 0x6b, 0x42, 0xff, 0xfe])),
        ("not-a-map", cbor_form(&[0x82, 0x01, 0x02])),
        ("not-base64", "!!!".to_owned()),
    ] {
        let body = json!({"name": name, "data": wire}).to_string();
        let reply = server.send_json("POST", &format!("{spec}/work_unit"), &body);
        assert_refused(&reply, 400, name);
    }
    assert_eq!(unit_names(&server, &spec), ["bytes", "tuple", "uuid"]);
}

// A `-` segment (a base64url name) with nonzero trailing bits decodes; padding, the `+` `/`
// alphabet and a length no encoding has fail it.
#[test]
fn encoded_names_may_carry_nonzero_trailing_bits() {
    let server = Server::start(&[]);
    for (segment, name) in [("-LR", "-"), ("-LWN", "-c"), ("-w6l", "é")] {
        let reply = server.get(&format!("/namespace/{segment}"));
        assert_eq!(reply.status, 200, "{segment}: {}", reply.text());
        assert_eq!(reply.json()["name"], name, "{segment}");
    }
    for segment in ["-LQ==", "-LR==", "-a+b", "-A"] {
        let reply = server.get(&format!("/namespace/{segment}"));
        assert_refused(&reply, 400, segment);
    }
}

// Parameters are form-decoded (`+` a space); as lib.rs (Status codes) documents, a non-UTF-8
// parameter is 400 `error`.
#[test]
fn query_parameters_that_are_not_utf8_are_400() {
    let server = Server::start(&[]);
    let spec = spec_with_units(&server, "q", &["\u{fffd}", "a b", "é"]);
    let worker = "/namespace/q/worker/w";
    let unit = format!("{spec}/work_unit/-77-9");
    assert_eq!(server.get(&unit).json()["name"], "\u{fffd}");
    for (method, path) in [
        ("DELETE", format!("{spec}/work_unit?name=%FF")),
        ("GET", format!("{spec}/work_unit?name=%FF")),
        (
            "GET",
            format!("{spec}/work_unit?status=available&previous=%C3"),
        ),
        ("GET", format!("{spec}/work_unit?limit=%FF1")),
        ("GET", format!("{spec}/work_unit?status=%FF")),
        ("GET", format!("{spec}/work_unit?x%FF=1")),
        ("GET", format!("{spec}/meta?counts=%FF")),
        ("GET", format!("{unit}?check=%FF")),
    ] {
        let reply = bare(&server, method, &path);
        assert_refused(&reply, 400, &format!("{method} {path}"));
    }
    for path in [
        format!("{spec}/change?name=%FF"),
        format!("{spec}/adjust?name=%FF"),
        format!("{worker}/make_attempt?check=%FF"),
    ] {
        let body = r#"{"meta": {"priority": 9.0}, "work_spec": "s", "work_unit": "é"}"#;
        let reply = server.send_json("POST", &path, body);
        assert_refused(&reply, 400, &path);
    }
    // Nothing was deleted, reprioritised or attempted.
    assert_eq!(unit_names(&server, &spec), ["a b", "é", "\u{fffd}"]);
    assert_eq!(server.get(&unit).json()["meta"]["priority"], 0.0);
    let attempts = server.get(&format!("{worker}/all_attempts")).json();
    assert_eq!(attempts["attempts"], json!([]), "{attempts}");

    // UTF-8 names, `+` for a space, and the U+FFFD name spelled in UTF-8.
    let query = format!("{spec}/work_unit?name=a+b&name=%C3%A9");
    assert_eq!(listed_names(&server, &query), ["a b", "é"]);
    let deleted = bare(
        &server,
        "DELETE",
        &format!("{spec}/work_unit?name=%EF%BF%BD"),
    );
    assert_eq!(deleted.json(), json!({"Deleted": 1}));
}
