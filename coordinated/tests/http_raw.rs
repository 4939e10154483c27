//! The real `coordinated` binary, spoken to as a plain HTTP client would:
//! negotiation, names in URLs, status codes and error documents, attempt
//! addressing, metrics, health and shutdown.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use coordinate::rest::names;
use coordinate::rest::wire::ErrorDocument;
use coordinate::rules::limits::{MAX_DATA_BYTES, MAX_DATA_DEPTH, MAX_MODE_BYTES};
use coordinate::{Error, ObjectKind};
use serde_json::json;
use support::{eventually, exchange, read_reply, request, Server};

const V1: &str = "application/vnd.diffeo.coordinate.v1+json";

/// Posts work spec "s" to namespace `ns`.
fn add_spec_s(server: &Server, ns: &str) -> support::Reply {
    server.send_json(
        "POST",
        &format!("/namespace/{ns}/work_spec"),
        r#"{"data": {"name": "s"}}"#,
    )
}

fn get_accept(server: &Server, accept: &str) -> support::Reply {
    request(server.addr, "GET", "/", &[("Accept", accept)], None)
}

#[test]
fn negotiation_follows_the_accept_algorithm() {
    let server = Server::start(&[]);
    let root = server.get("/");
    assert_eq!(root.status, 200);
    assert_eq!(root.header("content-type"), Some(V1));
    assert_eq!(
        root.json(),
        json!({"url": "", "summary_url": "/summary", "namespaces_url": "/namespace",
               "namespace_url": "/namespace/{namespace}"})
    );
    for (accept, status, content_type) in [
        ("", 200, V1),
        ("application/json", 200, "application/json"),
        ("text/*", 200, "text/json"),
        ("application/*;q=0.5, text/json;q=0.4", 200, V1),
        ("text/html,application/xhtml+xml,*/*;q=0.8", 200, V1),
        ("TEXT/JSON; charset=utf-8", 200, "text/json"),
        ("text/html", 406, V1),
        ("application/json;q=0", 406, V1),
        ("application/json;q=2", 400, V1),
        ("garbage", 406, V1),
        (
            "text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2",
            200,
            V1,
        ),
        ("a b", 400, V1),
    ] {
        let reply = get_accept(&server, accept);
        assert_eq!(reply.status, status, "Accept: {accept}");
        assert_eq!(
            reply.header("content-type"),
            Some(content_type),
            "Accept: {accept}"
        );
        if status != 200 {
            assert_eq!(reply.error_code(), "error", "Accept: {accept}");
        }
    }
}

#[test]
fn the_router_answers_whatever_the_accept_header() {
    let server = Server::start(&[]);
    let get =
        |path: &str, accept: &str| request(server.addr, "GET", path, &[("Accept", accept)], None);
    for (accept, negotiated) in [
        ("text/html", 406),
        ("application/json;q=0", 406),
        ("a b", 400),
    ] {
        // Unknown paths and trailing slashes: the error document in the
        // v1 type, for want of an acceptable one.
        for path in ["/nope", "/namespace/"] {
            let missing = get(path, accept);
            assert_eq!(missing.status, 404, "{path} {accept}: {}", missing.text());
            assert_eq!(missing.header("content-type"), Some(V1), "{path} {accept}");
            assert_eq!(missing.error_code(), "error", "{path} {accept}");
        }
        let moved = get("//namespace", accept);
        assert_eq!(moved.status, 301, "{accept}");
        assert_eq!(moved.header("location"), Some("/namespace"), "{accept}");
        // A resource negotiates.
        assert_eq!(get("/namespace", accept).status, negotiated, "{accept}");
    }
    let missing = get("/nope", "application/json");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("content-type"), Some("application/json"));
}

#[test]
fn odd_names_travel_encoded_and_come_back() {
    let server = Server::start(&[]);
    let spec = server.send_json(
        "POST",
        "/namespace/-/work_spec",
        r#"{"data": {"name": "-"}}"#,
    );
    assert_eq!(spec.status, 201, "{}", spec.text());
    assert_eq!(spec.header("location"), Some("/namespace/-/work_spec/-LQ"));
    assert_eq!(
        spec.json(),
        json!({"name": "-", "url": "/namespace/-/work_spec/-LQ"})
    );

    let base = "/namespace/-/work_spec/-LQ/work_unit";
    for (name, segment) in [
        ("", "-"),
        ("-", "-LQ"),
        ("a/b", "-YS9i"),
        ("\u{0}", "-AA"),
        (".", "-Lg"),
        ("..", "-Li4"),
        ("é", "-w6k"),
        ("job:1", "job:1"),
        ("my spec", "-bXkgc3BlYw"),
        ("~tilde", "-fnRpbGRl"),
    ] {
        let body = json!({"name": name}).to_string();
        let created = server.send_json("POST", base, &body);
        assert_eq!(created.status, 201, "{name:?}: {}", created.text());
        let location = format!("{base}/{segment}");
        assert_eq!(
            created.header("location"),
            Some(location.as_str()),
            "{name:?}"
        );
        let unit = server.get(&location);
        assert_eq!(unit.status, 200, "{name:?}: {}", unit.text());
        assert_eq!(unit.json()["name"], name);
        assert_eq!(unit.json()["url"], location.as_str());
        assert_eq!(unit.json()["work_spec_url"], "/namespace/-/work_spec/-LQ");
    }

    // Percent-encoded spellings are decoded before the name rule.
    for (path, name) in [
        ("job%3A1", "job:1"),
        ("my%20spec", "my spec"),
        ("%C3%A9", "é"),
        ("-bXkgc3BlYw", "my spec"),
    ] {
        let unit = server.get(&format!("{base}/{path}"));
        assert_eq!(unit.status, 200, "{path}: {}", unit.text());
        assert_eq!(unit.json()["name"], name, "{path}");
    }

    // The namespace list shows the empty name under `-`.
    let list = server.get("/namespace").json();
    assert!(
        list["namespaces"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "", "url": "/namespace/-"})),
        "{list}"
    );

    // Bad encodings are client errors with the error document.
    for path in [
        format!("{base}/-__4"), // valid base64, not UTF-8
        format!("{base}/-!!"),
        format!("{base}/-LQ=="),
        "/namespace/%FF".to_owned(),
        "/namespace/-__4/work_spec".to_owned(),
    ] {
        let reply = server.get(&path);
        assert_eq!(reply.status, 400, "{path}: {}", reply.text());
        assert_eq!(reply.header("content-type"), Some(V1), "{path}");
        assert_eq!(reply.error_code(), "error", "{path}");
    }
    // A percent-encoded slash splits the segment: no such resource.
    assert_eq!(server.get(&format!("{base}/a%2Fb")).status, 404);
    // Dot segments are cleaned by a redirect, so `.` and `..` only work encoded.
    let dot = server.get(&format!("{base}/."));
    assert_eq!(dot.status, 301);
    assert_eq!(dot.header("location"), Some(base));
}

/// A lone surrogate escape, valid JSON that no Rust string holds, reads
/// as U+FFFD (as the reference server's decoder reads it), in a name as
/// in data; a surrogate pair is the character it encodes.
#[test]
fn lone_surrogate_escapes_read_as_the_replacement_character() {
    let server = Server::start(&[]);
    let made = server.send_json("POST", "/namespace", r#"{"name": "\ud800"}"#);
    assert_eq!(made.status, 201, "{}", made.text());
    assert_eq!(made.json()["name"], "\u{fffd}");
    let spec = add_spec_s(&server, "n");
    assert_eq!(spec.status, 201, "{}", spec.text());
    let unit = server.send_json(
        "POST",
        "/namespace/n/work_spec/s/work_unit",
        r#"{"name": "u", "data": {"\udc00": "a\ud83d\ude00\ud83d"}}"#,
    );
    assert_eq!(unit.status, 201, "{}", unit.text());
    let read = server.get("/namespace/n/work_spec/s/work_unit/u");
    assert_eq!(read.status, 200, "{}", read.text());
    assert_eq!(
        read.json()["data"],
        json!({"\u{fffd}": "a\u{1f600}\u{fffd}"})
    );
}

/// The names in the list document at `path`, under `key`.
fn listed_names(server: &Server, path: &str, key: &str) -> Vec<String> {
    let list = server.get(path).json();
    list[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} list: {list}"))
        .iter()
        .map(|item| item["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn the_route_shape_comes_first_then_each_name_in_order() {
    let server = Server::start(&[]);
    // No resource has this shape, whatever its names.
    for path in ["/namespace/-!!/bogus", "/namespace/-!!/worker/-!!/jump"] {
        let reply = server.get(path);
        assert_eq!(reply.status, 404, "{path}: {}", reply.text());
    }
    // The work spec is looked up before the unit's name is decoded.
    let missing = server.get("/namespace/new/work_spec/missing/work_unit/-!!");
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert_eq!(missing.error_code(), "ErrNoSuchWorkSpec");
    assert_eq!(missing.json()["value"], "missing");
    // A bad name fails when its turn comes, after the namespace before it
    // has been made.
    let bad = server.get("/namespace/fresh/work_spec/-!!");
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert_eq!(bad.error_code(), "error");
    let names = listed_names(&server, "/namespace", "namespaces");
    assert!(names.iter().any(|n| n == "fresh"), "{names:?}");
    assert!(!names.iter().any(|n| n == "-!!"), "{names:?}");
}

#[test]
fn status_codes_and_error_documents() {
    let server = Server::start(&[]);
    let spec = "/namespace/e/work_spec/s";
    assert_eq!(add_spec_s(&server, "e").status, 201);
    assert_eq!(
        server
            .send_json("POST", &format!("{spec}/work_unit"), r#"{"name": "u"}"#)
            .status,
        201
    );

    let check = |reply: support::Reply, status: u16, code: &str| {
        assert_eq!(reply.status, status, "{}", reply.text());
        assert_eq!(reply.header("content-type"), Some(V1));
        assert_eq!(reply.error_code(), code, "{}", reply.text());
        reply
    };

    let missing = check(
        server.get("/namespace/e/work_spec/nope"),
        404,
        "ErrNoSuchWorkSpec",
    );
    assert_eq!(missing.json()["value"], "nope");
    let missing = check(
        server.get(&format!("{spec}/work_unit/nope")),
        400,
        "ErrNoSuchWorkUnit",
    );
    assert_eq!(missing.json()["value"], "nope");
    check(
        server.get(&format!(
            "{spec}/work_unit/u/attempt/w/2024-05-06T07:08:09Z"
        )),
        404,
        "error",
    );
    check(
        server.get(&format!("{spec}/work_unit/u/attempt/w/-")),
        404,
        "error",
    );

    // Work spec creation: data and name problems are 400s with their codes.
    let post_spec = |body: &str| server.send_json("POST", "/namespace/e/work_spec", body);
    check(post_spec("{}"), 400, "error");
    check(
        post_spec(r#"{"data": {"priority": 1}}"#),
        400,
        "ErrNoWorkSpecName",
    );
    check(
        post_spec(r#"{"data": {"name": 7}}"#),
        400,
        "ErrBadWorkSpecName",
    );
    // ...but 500s on PUT.
    check(
        server.send_json("PUT", spec, r#"{"data": {"name": "t"}}"#),
        500,
        "ErrChangedName",
    );

    // Bodies: content type first, then JSON.
    let put_meta = format!("{spec}/meta");
    for (headers, status) in [
        (&[][..], 415),
        (&[("Content-Type", "text/plain")][..], 415),
        (&[("Content-Type", "json")][..], 415),
        (&[("Content-Type", "a b")][..], 400),
    ] {
        check(
            request(server.addr, "PUT", &put_meta, headers, Some("{}")),
            status,
            "error",
        );
    }
    check(server.send_json("PUT", &put_meta, "{"), 400, "error");
    check(server.send_json("PUT", &put_meta, ""), 400, "error");
    check(
        server.send_json("PUT", &put_meta, r#"{"priority": "high"}"#),
        400,
        "error",
    );
    check(
        server.send_json("PUT", &put_meta, r#"{"priority": 1.5}"#),
        400,
        "error",
    );
    // The body is read before the method is checked.
    check(
        server.send_json("POST", &format!("{spec}/counts"), "nope"),
        400,
        "error",
    );

    // Methods without a handler.
    check(
        request(
            server.addr,
            "DELETE",
            &format!("{spec}/work_unit/u"),
            &[],
            None,
        ),
        405,
        "error",
    );
    check(
        request(server.addr, "OPTIONS", "/", &[], None),
        405,
        "error",
    );
    check(
        server.send_json("PUT", "/namespace/e/worker", "{}"),
        405,
        "error",
    );
    check(
        request(
            server.addr,
            "GET",
            &format!("{spec}/work_unit/u/attempt"),
            &[],
            None,
        ),
        405,
        "error",
    );
    check(
        server.send_json("POST", &format!("{spec}/counts"), "{}"),
        405,
        "error",
    );

    // Query values: a malformed request.
    check(
        server.get(&format!("{spec}/work_unit?status=bogus")),
        400,
        "error",
    );
    check(
        server.get(&format!("{spec}/work_unit?limit=x")),
        400,
        "error",
    );

    // make_attempt naming a missing spec or unit.
    let make = "/namespace/e/worker/w/make_attempt";
    let r = check(
        server.send_json("POST", make, r#"{"work_spec": "s", "work_unit": "v"}"#),
        500,
        "ErrNoSuchWorkUnit",
    );
    assert_eq!(r.json()["value"], "v");
    check(
        server.send_json("POST", make, r#"{"work_spec": "x", "work_unit": "u"}"#),
        500,
        "ErrNoSuchWorkSpec",
    );

    // Unknown paths and trailing slashes.
    check(server.get("/nope"), 404, "error");
    check(server.get("/namespace/"), 404, "error");
    let moved = server.get("//namespace?x=1");
    assert_eq!(moved.status, 301);
    assert_eq!(moved.header("location"), Some("/namespace?x=1"));

    // Bodies beyond the bound.
    let small = Server::start(&["--max-body-bytes", "64"]);
    let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(100));
    check(small.send_json("POST", "/namespace", &big), 413, "error");

    // Successes: 204 carries the content type too; HEAD has no body.
    let no_content = server.send_json("PUT", &put_meta, r#"{"priority": 3}"#);
    assert_eq!(no_content.status, 204);
    assert_eq!(no_content.header("content-type"), Some(V1));
    assert!(no_content.body.is_empty());
    let head = request(server.addr, "HEAD", spec, &[], None);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        server.get(&format!("{spec}/meta?counts=yes")).json()["priority"],
        3
    );
    assert_eq!(
        server
            .get(&format!("{spec}/work_unit/u/num-attempts"))
            .json(),
        json!(0)
    );
    let deleted = request(
        server.addr,
        "DELETE",
        &format!("{spec}/work_unit?name=u"),
        &[],
        None,
    );
    assert_eq!(deleted.json(), json!({"Deleted": 1}));
}

#[test]
fn attempts_are_addressed_by_worker_and_start_second() {
    let server = Server::start(&[]);
    add_spec_s(&server, "a");
    server.send_json(
        "POST",
        "/namespace/a/work_spec/s/work_unit",
        r#"{"name": "u", "data": {"k": 1}}"#,
    );
    let got = server.send_json(
        "POST",
        "/namespace/a/worker/w%20one/request_attempts",
        r#"{"number_of_work_units": 1, "work_specs": null, "runtimes": null}"#,
    );
    assert_eq!(got.status, 200, "{}", got.text());
    let got = got.json();
    assert_eq!(got["work_spec_url"], "/namespace/a/work_spec/s");
    let attempt = &got["attempts"][0];
    let url = attempt["url"].as_str().unwrap().to_owned();
    let prefix = "/namespace/a/work_spec/s/work_unit/u/attempt/-dyBvbmU/";
    assert!(url.starts_with(prefix), "{url}");
    assert_eq!(attempt["worker_url"], "/namespace/a/worker/-dyBvbmU");
    assert_eq!(attempt["status"], "pending");
    assert_eq!(attempt["end_time"], "0001-01-01T00:00:00Z");

    let fetched = server.get(&url);
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.json()["url"], url.as_str());
    let unit = server.get("/namespace/a/work_spec/s/work_unit/u").json();
    assert_eq!(unit["active_attempt_url"], url.as_str());
    assert_eq!(unit["status"], "pending");

    // The extension `check=false`: the same documents without what the
    // expiry check computes.
    let unchecked = server
        .get("/namespace/a/work_spec/s/work_unit/u?check=false")
        .json();
    assert_eq!(unchecked["data"], json!({"k": 1}));
    assert_eq!(
        unchecked["attempts_url"],
        "/namespace/a/work_spec/s/work_unit/u/attempts"
    );
    for field in ["status", "active_attempt_url"] {
        assert!(unchecked.get(field).is_none(), "{unchecked}");
    }
    let unchecked = server.get(&format!("{url}?check=false")).json();
    assert_eq!(unchecked["start_time"], attempt["start_time"]);
    assert_eq!(unchecked["finish_url"], attempt["finish_url"]);
    for field in ["status", "end_time", "expiration_time"] {
        assert!(unchecked.get(field).is_none(), "{unchecked}");
    }

    // The start second and the backend's attempt identifier; the same
    // second spelled in another zone also resolves.
    let segment = &url[prefix.len()..];
    let (second, id) = coordinate::rest::names::split_attempt_segment(segment);
    let start = chrono::DateTime::parse_from_rfc3339(second).unwrap();
    let shifted = start
        .with_timezone(&chrono::FixedOffset::east_opt(5 * 3600 + 1800).unwrap())
        .to_rfc3339();
    let shifted = match id {
        Some(id) => format!("{shifted}_{id}"),
        None => shifted,
    };
    let encoded = coordinate::rest::names::encode_segment(&shifted).into_owned();
    assert_eq!(server.get(&format!("{prefix}{encoded}")).status, 200);
    let other_second = format!("{}_{}", "2001-01-01T00:00:00Z", id.unwrap_or(0));
    assert_eq!(server.get(&format!("{prefix}{other_second}")).status, 404);

    let renew = server.send_json(
        "POST",
        &format!("{url}/renew"),
        r#"{"data": {"progress": 0.5}, "extend_duration": 300000000000, "delay": 0}"#,
    );
    assert_eq!(renew.status, 204, "{}", renew.text());
    assert_eq!(server.get(&url).json()["data"], json!({"progress": 0.5}));
    let finish = server.send_json("POST", &format!("{url}/finish"), r#"{"data": {}}"#);
    assert_eq!(finish.status, 204);
    let finished = server.get(&url).json();
    assert_eq!(finished["status"], "finished");
    assert!(finished.get("data").is_none(), "{finished}");
    let again = server.send_json("POST", &format!("{url}/finish"), "{}");
    assert_eq!(
        (again.status, again.error_code().as_str()),
        (500, "ErrNotPending")
    );
    assert_eq!(
        server.get("/namespace/a/work_spec/s/counts").json(),
        json!({"finished": 1})
    );
    let listed = server
        .get("/namespace/a/worker/w%20one/all_attempts")
        .json();
    assert_eq!(listed["attempts"][0]["url"], url.as_str());
}

#[test]
fn metrics_count_routes_cache_and_work_units() {
    let server = Server::start(&["--metrics-period", "50ms"]);
    add_spec_s(&server, "m");
    for name in ["u1", "u2"] {
        let body = json!({"name": name}).to_string();
        server.send_json("POST", "/namespace/m/work_spec/s/work_unit", &body);
    }
    for _ in 0..3 {
        assert_eq!(
            server.get("/namespace/m/work_spec/s/work_unit/u1").status,
            200
        );
    }
    let text = eventually(Duration::from_secs(10), || {
        let text = server.get("/metrics").text();
        text.contains(r#"coordinate_work_units{namespace="m",work_spec="s",status="available"} 2"#)
            .then_some(text)
    });
    let reply = server.get("/metrics");
    assert_eq!(reply.status, 200);
    assert!(reply
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/plain"));
    for expected in [
        r#"http_requests_total{route="/namespace/{namespace}/work_spec/{spec}/work_unit/{unit}",method="GET",status="200"} 3"#,
        r#"http_requests_total{route="/namespace/{namespace}/work_spec/{spec}/work_unit",method="POST",status="201"} 2"#,
        r#"http_request_duration_seconds_bucket{route="/namespace/{namespace}/work_spec/{spec}/work_unit/{unit}",method="GET",le="#,
        r#"coordinate_cache_hits_total{kind="work_unit"}"#,
        r#"coordinate_cache_misses_total{kind="work_spec"}"#,
        "coordinate_cache_loads_total",
        "coordinate_cache_recoveries_total",
        "coordinate_cache_invalidations_total",
        "coordinate_cache_evictions_total",
        "coordinate_cache_swept_total",
        "coordinate_cache_feed_subscribed",
        "coordinate_cache_feed_reconnects_total",
        "coordinate_summary_seconds_bucket",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
    assert!(
        !text.contains("u1"),
        "raw paths leaked into labels:\n{text}"
    );
    assert!(
        !text.contains("coordinate_postgres_pool"),
        "a memory backend has no pool:\n{text}"
    );

    let uncached = Server::start(&["--cache", "off"]);
    uncached.get("/");
    let text = uncached.get("/metrics").text();
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(!text.contains("coordinate_cache_hits_total"), "{text}");
}

/// The cache's entry gauges count what it holds, also when every request
/// since the entries were made was a hit (answered without moka, whose
/// upkeep keeps the counts).
#[test]
fn cache_entries_count_what_the_cache_holds() {
    let server = Server::start(&[]);
    for namespace in ["a", "b", "c"] {
        add_spec_s(&server, namespace);
        let units = format!("/namespace/{namespace}/work_spec/s/work_unit");
        let made = server.send_json("POST", &units, &json!({"name": "u"}).to_string());
        assert_eq!(made.status, 201, "{}", made.text());
    }
    for _ in 0..3 {
        for namespace in ["a", "b", "c"] {
            let unit = format!("/namespace/{namespace}/work_spec/s/work_unit/u");
            assert_eq!(server.get(&unit).status, 200);
        }
    }
    let text = server.get("/metrics").text();
    for kind in ["namespace", "work_spec", "work_unit"] {
        let entries = format!(r#"coordinate_cache_entries{{kind="{kind}"}} 3"#);
        assert!(text.contains(&entries), "missing {entries} in\n{text}");
    }
}

/// A wrong method on an operational endpoint counts under its route, and a
/// request whose client hung up part way through its body counts as
/// closed by its client (`499`), not as the `400` nobody reads.
#[test]
fn metrics_count_refused_methods_and_cut_off_bodies_under_their_routes() {
    let server = Server::start(&[]);
    for (method, path) in [
        ("POST", "/metrics"),
        ("PUT", "/healthz"),
        ("DELETE", "/readyz"),
    ] {
        let raw = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_eq!(exchange(server.addr, raw.as_bytes()).status, 405);
    }
    let cut = partial_post(&server, 100, r#"{"name""#);
    std::thread::sleep(Duration::from_millis(200));
    cut.shutdown(std::net::Shutdown::Both).expect("hang up");
    let series = |route: &str, method: &str, status: &str| {
        format!(r#"http_requests_total{{route="{route}",method="{method}",status="{status}"}}"#)
    };
    let text = eventually(Duration::from_secs(10), || {
        let text = server.get("/metrics").text();
        let closed = series("/namespace", "POST", "499");
        support::metric(&text, &closed).map(|_| text)
    });
    for (method, path) in [
        ("POST", "/metrics"),
        ("PUT", "/healthz"),
        ("DELETE", "/readyz"),
    ] {
        let counted = series(path, method, "405");
        assert_eq!(
            support::metric(&text, &counted),
            Some(1.0),
            "{counted} in\n{text}"
        );
    }
    assert!(!text.contains(r#"route="unmatched""#), "{text}");
    assert!(
        !text.contains(&series("/namespace", "POST", "400")),
        "{text}"
    );
}

/// A request answered before its body is read (its spec unknown, its path
/// nobody's) whose client hangs up part way through that body counts as
/// closed by its client (`499`): the answer, held until the body is read,
/// never went out.
#[test]
fn answers_held_for_a_body_cut_off_count_as_closed_by_their_clients() {
    let server = Server::start(&[]);
    let paths = [
        (
            "/namespace/n/work_spec/nosuch/work_unit",
            "/namespace/{namespace}/work_spec/{spec}/work_unit",
        ),
        ("/nowhere", "unmatched"),
    ];
    for (path, _) in paths {
        let mut stream = TcpStream::connect(server.addr).expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {V1}\r\nContent-Length: 100\r\n\r\n{{\"na"
        );
        stream.write_all(head.as_bytes()).expect("write");
        std::thread::sleep(Duration::from_millis(200));
        stream.shutdown(std::net::Shutdown::Both).expect("hang up");
    }
    let series = |route: &str, status: &str| {
        format!(r#"http_requests_total{{route="{route}",method="POST",status="{status}"}}"#)
    };
    let text = eventually(Duration::from_secs(10), || {
        let text = server.get("/metrics").text();
        paths
            .iter()
            .all(|(_, route)| support::metric(&text, &series(route, "499")) == Some(1.0))
            .then_some(text)
    });
    for (_, route) in paths {
        assert!(!text.contains(&series(route, "404")), "{text}");
    }
}

/// A request whose client closes the connection right after sending it
/// (HTTP dispatches it, then reads the end of the stream and drops it,
/// perhaps before it has started) is counted all the same, under the route
/// it would have been answered under: answered if it was, else as closed
/// by its client. One without its `Host` header is refused before routing.
#[test]
fn requests_whose_clients_close_right_after_sending_them_are_counted() {
    use std::io::Write;
    let server = Server::start(&[]);
    let sent = 20;
    for (head, route) in [
        (
            "GET /namespace/t/work_spec/s HTTP/1.1\r\nHost: x\r\n\r\n",
            "/namespace/{namespace}/work_spec/{spec}",
        ),
        ("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "/healthz"),
        ("GET /readyz HTTP/1.1\r\n\r\n", "unmatched"),
    ] {
        for _ in 0..sent {
            let mut stream = std::net::TcpStream::connect(server.addr).expect("connect");
            stream.write_all(head.as_bytes()).expect("send");
            drop(stream);
        }
        let prefix = format!(r#"http_requests_total{{route="{route}",method="GET","#);
        let counted = |text: &str| -> f64 {
            let values = text.lines().filter_map(|line| line.strip_prefix(&prefix));
            let values = values.filter_map(|rest| rest.rsplit_once(' ')?.1.parse::<f64>().ok());
            values.sum()
        };
        let text = eventually(Duration::from_secs(10), || {
            let text = server.get("/metrics").text();
            (counted(&text) >= f64::from(sent)).then_some(text)
        });
        assert_eq!(counted(&text), f64::from(sent), "{route} in\n{text}");
    }
}

/// A server summarizing every `period`, with unit "u" of spec "s" in `ns`.
fn summarizing_with_unit(ns: &str, period: &str) -> Server {
    let server = Server::start(&["--metrics-period", period]);
    add_spec_s(&server, ns);
    let body = json!({"name": "u"}).to_string();
    let added = server.send_json(
        "POST",
        &format!("/namespace/{ns}/work_spec/s/work_unit"),
        &body,
    );
    assert_eq!(added.status, 201, "{}", added.text());
    server
}

/// Every status of a spec with units has a series: a queue drained of
/// available units reads 0, and goes on reading it.
#[test]
fn metrics_show_every_status_of_a_spec_zero_included() {
    let server = summarizing_with_unit("m", "50ms");
    let series = |status: &str, count: u32| {
        format!(r#"coordinate_work_units{{namespace="m",work_spec="s",status="{status}"}} {count}"#)
    };
    // A summary sets a spec's series one after another, so a scrape may
    // come between two of them.
    eventually(Duration::from_secs(10), || {
        let text = server.get("/metrics").text();
        let zero = ["pending", "finished", "failed", "delayed"];
        (text.contains(&series("available", 1))
            && zero.iter().all(|s| text.contains(&series(s, 0))))
        .then_some(())
    });
    let handed = server.send_json("POST", "/namespace/m/worker/w/request_attempts", "{}");
    assert_eq!(handed.status, 200, "{}", handed.text());
    eventually(Duration::from_secs(10), || {
        let text = server.get("/metrics").text();
        (text.contains(&series("pending", 1)) && text.contains(&series("available", 0)))
            .then_some(())
    });
    // Past the time an unset series lasts (three periods and half a
    // second), it is still there (a series dropped then would not come
    // back).
    std::thread::sleep(Duration::from_secs(1));
    eventually(Duration::from_secs(5), || {
        let text = server.get("/metrics").text();
        text.contains(&series("available", 0)).then_some(())
    });
}

/// At a period of a millisecond, as long as the scheduling of the task
/// that sets them, the series of a live spec stay in every scrape.
#[test]
fn metrics_keep_the_series_of_a_live_spec_at_a_period_of_a_millisecond() {
    let server = summarizing_with_unit("fast", "1ms");
    let series = format!("{} 1", available_series("fast"));
    eventually(Duration::from_secs(10), || {
        server
            .get("/metrics")
            .text()
            .contains(&series)
            .then_some(())
    });
    for scrape in 0..1000 {
        let text = server.get("/metrics").text();
        assert!(
            text.contains(&series),
            "scrape {scrape} without {series}:\n{text}"
        );
    }
}

/// The series of spec "s" of namespace `ns` with status available.
fn available_series(ns: &str) -> String {
    format!(r#"coordinate_work_units{{namespace="{ns}",work_spec="s",status="available"}}"#)
}

/// A server summarising every `period` whose spec "s" of namespace `ns`,
/// with one unit, was destroyed once `/metrics` showed its unit.
fn destroyed_once_shown(ns: &str, period: &str) -> Server {
    let server = summarizing_with_unit(ns, period);
    let series = available_series(ns);
    eventually(Duration::from_secs(10), || {
        server
            .get("/metrics")
            .text()
            .contains(&format!("{series} 1"))
            .then_some(())
    });
    let path = format!("/namespace/{ns}/work_spec/s");
    let destroyed = request(server.addr, "DELETE", &path, &[], None);
    assert_eq!(destroyed.status, 204);
    server
}

#[test]
fn metrics_drop_the_work_unit_series_of_a_destroyed_spec() {
    // The zero set for the destroyed spec lasts three periods and more: long
    // enough for a poll on a busy machine to see it.
    let server = destroyed_once_shown("gone", "250ms");
    let series = available_series("gone");
    eventually(Duration::from_secs(10), || {
        server
            .get("/metrics")
            .text()
            .contains(&format!("{series} 0"))
            .then_some(())
    });
    // Three periods after the last summary that had it, the series goes.
    eventually(Duration::from_secs(10), || {
        (!server.get("/metrics").text().contains(&series)).then_some(())
    });
}

/// A destroyed spec's series go whether or not anything scrapes
/// `/metrics` meanwhile: the first scrape long after the destroy finds
/// none (the recorder drops idle series only as it renders).
#[test]
fn metrics_drop_a_destroyed_specs_series_unscraped() {
    let server = destroyed_once_shown("quiet", "100ms");
    // Twenty periods, no scrape.
    std::thread::sleep(Duration::from_secs(2));
    let text = server.get("/metrics").text();
    assert!(!text.contains(&available_series("quiet")), "{text}");
}

/// A summary that fails is counted, not timed: with the server behind a
/// proxy stopped before the proxy's first summary,
/// `coordinate_summary_failures_total` grows and
/// `coordinate_summary_seconds` records nothing.
#[test]
fn metrics_count_failed_summaries() {
    let behind = Server::start(&[]);
    let url = format!("http://{}", behind.addr);
    let server = Server::start(&["--backend", &url, "--metrics-period", "1s"]);
    drop(behind);
    let text = eventually(Duration::from_secs(10), || {
        let text = server.get("/metrics").text();
        let failures = text
            .lines()
            .find_map(|line| line.strip_prefix("coordinate_summary_failures_total "))
            .and_then(|n| n.parse::<u64>().ok());
        failures.is_some_and(|n| n >= 2).then_some(text)
    });
    assert!(
        !text.contains("coordinate_summary_seconds_count"),
        "a failed summary was timed:\n{text}"
    );
}

/// Bodies being read share one memory budget (eight of the largest
/// accepted, beyond the first 64 KiB of each): once clients holding most of
/// large bodies have spent it, another large body is not read until one of
/// them goes, while small requests go on as before.
#[test]
fn large_bodies_wait_for_room_while_small_ones_pass() {
    const MAX: usize = 200_000;
    let server = Server::start(&["--max-body-bytes", &MAX.to_string()]);
    let head = |length: usize| {
        format!(
            "POST /namespace HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {length}\r\n\r\n"
        )
    };
    let body = |length: usize| {
        let mut body = br#"{"name":"big","pad":""#.to_vec();
        body.resize(length - 2, b'a');
        body.extend_from_slice(br#""}"#);
        body
    };
    // Each holds all of its body but the last byte: 134,463 bytes of room.
    let holders: Vec<TcpStream> = (0..12)
        .map(|_| {
            let mut held = TcpStream::connect(server.addr).expect("connect");
            held.write_all(head(MAX).as_bytes()).expect("head");
            held.write_all(&body(MAX)[..MAX - 1]).expect("body");
            held
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let mut waiting = TcpStream::connect(server.addr).expect("connect");
    waiting
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    waiting.write_all(head(MAX).as_bytes()).expect("head");
    waiting.write_all(&body(MAX)).expect("body");
    let mut answer = [0u8; 12];
    let early = waiting.read(&mut answer);
    assert!(early.is_err(), "read with no room: {early:?}");

    let small = server.send_json("POST", "/namespace", r#"{"name":"small"}"#);
    assert_eq!(small.status, 201, "{}", small.text());

    drop(holders);
    waiting
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let answered = waiting
        .read(&mut answer)
        .expect("an answer once there is room");
    assert!(
        answer[..answered].starts_with(b"HTTP/1.1 201"),
        "{}",
        String::from_utf8_lossy(&answer[..answered])
    );
}

#[test]
fn health_and_readiness() {
    let server = Server::start(&[]);
    let health = server.get("/healthz");
    assert_eq!(health.status, 200);
    assert_eq!(health.json(), json!({"status": "ok"}));
    let ready = server.get("/readyz");
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json(), json!({"status": "ready"}));
    for path in ["/healthz", "/readyz", "/metrics"] {
        let wrong = server.send_json("POST", path, "{}");
        assert_eq!(wrong.status, 405, "{path}");
        assert_eq!(wrong.error_code(), "error", "{path}");
        // As the API's own routes: no `Allow` header.
        assert_eq!(wrong.header("allow"), None, "{path}");
    }
}

/// Sends the head of a `POST /namespace` declaring `length` body bytes,
/// then only `sent`.
fn partial_post(server: &Server, length: u64, sent: &str) -> TcpStream {
    partial_post_with(server, length, "", sent)
}

/// [`partial_post`] with `headers` (each line ending in CRLF) added.
fn partial_post_with(server: &Server, length: u64, headers: &str, sent: &str) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let head = format!(
        "POST /namespace HTTP/1.1\r\nHost: {}\r\nContent-Type: {V1}\r\nContent-Length: {length}\r\nConnection: close\r\n{headers}\r\n{sent}",
        server.addr
    );
    stream.write_all(head.as_bytes()).expect("write");
    stream
}

/// Sends a request's head and the first part of its body, and returns
/// once the server holds it in flight until the rest arrives: its handler
/// reading the body is what sends the interim `100 Continue` asked for.
fn start_slow_post(server: &Server) -> TcpStream {
    let mut stream = partial_post_with(server, 12, "Expect: 100-continue\r\n", r#"{"name""#);
    let mut interim = [0; 25];
    stream.read_exact(&mut interim).expect("an interim answer");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream
}

/// SIGTERM is the server's from the moment it says where it listens: a
/// signal sent at once stops it cleanly rather than killing it.
#[test]
fn sigterm_right_after_start_is_a_clean_stop() {
    for _ in 0..20 {
        let mut server = Server::start(&[]);
        server.terminate();
        let status = server.wait_exit(Duration::from_secs(10));
        assert!(status.success(), "{status}");
    }
}

/// SIGHUP asks to read the TLS files again: a server without them has
/// nothing to read and serves on, where the signal's default would end it.
#[test]
fn sighup_without_tls_files_leaves_the_server_serving() {
    let mut server = Server::start(&[]);
    for _ in 0..3 {
        server.signal("HUP");
    }
    std::thread::sleep(Duration::from_millis(200));
    let reply = exchange(
        server.addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    server.terminate();
    assert!(server.wait_exit(Duration::from_secs(10)).success());
}

#[test]
fn sigterm_drains_the_request_in_flight() {
    let mut server = Server::start(&["--shutdown-deadline", "20s"]);
    let mut stream = start_slow_post(&server);
    server.terminate();
    // New connections are refused once the listener is closed...
    eventually(Duration::from_secs(5), || {
        TcpStream::connect(server.addr).is_err().then_some(())
    });
    // ...but the request in flight completes.
    stream.write_all(br#":"x"}"#).expect("write the rest");
    let reply = read_reply(&mut stream);
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(reply.json()["name"], "x");
    assert!(server.wait_exit(Duration::from_secs(10)).success());
}

#[test]
fn shutdown_deadline_abandons_a_stuck_request() {
    let mut server = Server::start(&["--shutdown-deadline", "200ms"]);
    let _stream = start_slow_post(&server);
    server.terminate();
    assert!(server.wait_exit(Duration::from_secs(10)).success());
}

/// A connection that has sent only part of a request's head has no
/// request in flight: shutdown closes it at once, without waiting out the
/// deadline.
#[test]
fn shutdown_closes_a_connection_part_way_through_a_head_at_once() {
    let mut server = Server::start(&["--shutdown-deadline", "60s"]);
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    stream.write_all(b"GET / HTTP/1.1\r\nHo").expect("write");
    std::thread::sleep(Duration::from_millis(200));
    server.terminate();
    assert!(server.wait_exit(Duration::from_secs(10)).success());
}

#[test]
fn a_second_signal_ends_the_drain_at_once() {
    let mut server = Server::start(&["--shutdown-deadline", "60s"]);
    let _stream = start_slow_post(&server);
    server.terminate();
    // Draining: the listener is closed, the request still held.
    eventually(Duration::from_secs(5), || {
        TcpStream::connect(server.addr).is_err().then_some(())
    });
    server.terminate();
    assert!(server.wait_exit(Duration::from_secs(10)).success());
}

#[test]
fn pipelined_garbage_gets_a_client_error_not_a_crash() {
    let server = Server::start(&[]);
    let reply = exchange(
        server.addr,
        b"BREW /pot HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(reply.status, 404);
    let reply = exchange(
        server.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nAccept: \xff\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(reply.status, 400);
    assert_eq!(server.get("/healthz").status, 200);
}

/// Requests the HTTP layer cannot read never reach the API: bare answers,
/// and the server goes on.
#[test]
fn requests_unreadable_as_http_get_bare_client_errors() {
    let server = Server::start(&[]);
    let long_target = format!("/namespace/{}", "n".repeat(70_000));
    let long_header = format!("X-Pad: {}", "p".repeat(1 << 20));
    for (request, status) in [
        (
            b"GET /namespace/\xff HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            400,
        ),
        (
            format!("GET {long_target} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(),
            414,
        ),
        (
            format!("GET / HTTP/1.1\r\nHost: x\r\n{long_header}\r\n\r\n").into_bytes(),
            431,
        ),
    ] {
        let reply = exchange(server.addr, &request);
        assert_eq!(reply.status, status, "{}", reply.text());
        assert!(reply.body.is_empty(), "{}", reply.text());
        assert_eq!(reply.header("content-type"), None);
    }
    assert_eq!(server.get("/healthz").status, 200);
}

#[test]
fn a_body_that_stops_arriving_is_408_after_the_request_timeout() {
    let server = Server::start(&["--request-timeout", "100ms"]);
    let mut stream = start_slow_post(&server);
    let reply = read_reply(&mut stream);
    assert_eq!(reply.status, 408, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some(V1));
    assert_eq!(reply.error_code(), "error");
    assert_eq!(server.get("/healthz").status, 200);

    // On a keep-alive connection, the answer says the connection closes:
    // the rest of the body is not read.
    let mut stream = support::connect(server.addr);
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let head = format!(
        "POST /namespace HTTP/1.1\r\nHost: x\r\nContent-Type: {V1}\r\n\
         Content-Length: 12\r\n\r\n{{\"name\""
    );
    stream.write_all(head.as_bytes()).expect("head");
    let reply = read_reply(&mut stream);
    assert_eq!(reply.status, 408, "{}", reply.text());
    assert_eq!(reply.header("connection"), Some("close"));
}

/// An HTTP/1.1 request without a `Host` header, or with two, is `400`
/// with the error document; HTTP/1.0 needs none.
#[test]
fn an_http_1_1_request_names_its_host_once() {
    let server = Server::start(&[]);
    for raw in [
        "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
    ] {
        let reply = exchange(server.addr, raw.as_bytes());
        assert_eq!(reply.status, 400, "{raw:?}: {}", reply.text());
        assert_eq!(reply.header("content-type"), Some(V1));
        assert_eq!(reply.error_code(), "error");
    }
    let reply = exchange(server.addr, b"GET /healthz HTTP/1.0\r\n\r\n");
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[test]
fn silent_trickling_and_idle_connections_are_closed_after_the_idle_timeout() {
    let server = Server::start(&["--idle-timeout", "300ms"]);
    let connect = || support::connect(server.addr);
    // A head that never ends; a connection that never sends a byte; a
    // keep-alive connection left idle after one request.
    let mut trickling = connect();
    trickling
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: ")
        .expect("write");
    let mut silent = connect();
    let mut idle = connect();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let started = Instant::now();
    let mut answered = Vec::new();
    for stream in [&mut trickling, &mut silent, &mut idle] {
        let mut bytes = Vec::new();
        stream
            .read_to_end(&mut bytes)
            .expect("the server closes the connection");
        answered.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(answered[2].starts_with("HTTP/1.1 200"), "{}", answered[2]);
    assert_eq!(server.get("/healthz").status, 200);
}

/// A request a client waiting at the bound sends, answered by a server
/// that then closes the connection.
const HEALTHZ_THEN_CLOSE: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

/// The connections the server has closed for clients waiting at the bound,
/// read over `connection`.
fn closed_for_room(connection: &mut support::Connection) -> f64 {
    let metrics = connection.get("/metrics").text();
    support::metric(&metrics, "http_connections_closed_for_room_total")
        .unwrap_or_else(|| panic!("no count in {metrics}"))
}

/// With the bound's worth of connections busy, the next client waits, not
/// refused, until one of them is done: a request in flight is never cut
/// off to make room, however long it runs.
#[test]
fn connections_beyond_the_bound_wait_for_a_busy_one_to_end() {
    let server = Server::start(&["--max-connections", "1", "--request-timeout", "4s"]);
    let mut busy = start_slow_post(&server);
    let mut waiting = support::connect(server.addr);
    waiting.write_all(HEALTHZ_THEN_CLOSE).expect("write");
    // Twice the idle grace at the bound, and more.
    waiting
        .set_read_timeout(Some(Duration::from_millis(2500)))
        .expect("timeout");
    let mut byte = [0; 1];
    let waited = waiting
        .read(&mut byte)
        .expect_err("answered beyond the bound");
    assert!(
        matches!(
            waited.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{waited}"
    );
    // The request in flight runs to its own end.
    assert_eq!(read_reply(&mut busy).status, 408);
    drop(busy);
    waiting
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    assert_eq!(read_reply(&mut waiting).status, 200);
    drop(waiting);
    let open = eventually(Duration::from_secs(10), || {
        let reply = server.get("/metrics");
        support::metric(&reply.text(), "http_connections_open").filter(|&n| n == 1.0)
    });
    assert_eq!(open, 1.0);
}

/// With the bound's worth of connections open and idle, the next client
/// has the room of the one idle longest once it has been idle a second,
/// not the idle timeout.
#[test]
fn a_client_waiting_at_the_bound_gets_the_room_of_the_connection_idle_longest() {
    let server = Server::start(&["--max-connections", "2"]);
    let mut silent = support::connect(server.addr);
    let mut kept = support::Connection::open(server.addr);
    assert_eq!(kept.get("/healthz").status, 200);

    let started = Instant::now();
    let mut waiting = support::connect(server.addr);
    waiting.write_all(HEALTHZ_THEN_CLOSE).expect("write");
    assert_eq!(read_reply(&mut waiting).status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let mut rest = Vec::new();
    assert_eq!(
        silent
            .read_to_end(&mut rest)
            .expect("closed, not timed out"),
        0
    );
    // The keep-alive connection, idle for less time, is still served.
    assert_eq!(closed_for_room(&mut kept), 1.0);
}

/// A client that connects at the bound and hangs up at once has no idle
/// connection closed for it: nobody waits any more.
#[test]
fn a_client_gone_while_waiting_at_the_bound_closes_nothing() {
    let server = Server::start(&["--max-connections", "1"]);
    let mut kept = support::Connection::open(server.addr);
    assert_eq!(kept.get("/healthz").status, 200);
    drop(support::connect(server.addr));
    // Longer than the idle grace at the bound.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(closed_for_room(&mut kept), 0.0);
}

/// The open connections' gauge reads right after a spell longer than the
/// recorder keeps a gauge nobody sets (three metrics periods) in which no
/// connection opened or closed.
#[test]
fn the_open_connections_gauge_reads_right_after_a_quiet_spell() {
    let server = Server::start(&["--metrics-period", "100ms"]);
    let mut held = support::Connection::open(server.addr);
    let open = |held: &mut support::Connection| {
        support::metric(&held.get("/metrics").text(), "http_connections_open")
    };
    assert_eq!(open(&mut held), Some(1.0));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(open(&mut held), Some(1.0));
}

/// Hands out `units` units of the longest data, 4 MiB each, in one
/// response read 64 KiB per `pace` by a client connected before `waiting`
/// (a `GET /healthz`) is sent; checks the body came whole, and answers how
/// long it took to read.
fn read_a_large_hand_out(server: &Server, units: usize, pace: Duration) -> Duration {
    add_spec_s(server, "a");
    let big = "x".repeat(MAX_DATA_BYTES - r#"{"big":""}"#.len());
    for i in 0..units {
        let unit = format!(r#"{{"name": "u{i}", "data": {{"big": "{big}"}}}}"#);
        let reply = server.send_json("POST", "/namespace/a/work_spec/s/work_unit", &unit);
        assert_eq!(reply.status, 201, "{}", reply.text());
    }

    let mut stream = TcpStream::connect(server.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let body = format!(r#"{{"number_of_work_units": {units}}}"#);
    let request = format!(
        "POST /namespace/a/worker/w/request_attempts HTTP/1.1\r\nHost: x\r\n\
         Content-Type: {V1}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("write");
    let mut waiting = support::connect(server.addr);
    waiting.write_all(HEALTHZ_THEN_CLOSE).expect("write");
    let started = Instant::now();
    let mut received = Vec::new();
    let mut chunk = vec![0; 64 << 10];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("after {} bytes: {e}", received.len()),
        }
        std::thread::sleep(pace);
    }
    let took = started.elapsed();
    let head_end = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    let head = String::from_utf8_lossy(&received[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no length in {head}"));
    assert!(length > units * MAX_DATA_BYTES, "{length}");
    assert_eq!(received.len() - head_end, length, "cut off after {took:?}");
    assert_eq!(read_reply(&mut waiting).status, 200);
    took
}

/// A response whose body takes longer to read than the idle timeout is
/// sent whole: its connection is busy until the body is out.
#[test]
fn a_body_read_slowly_is_sent_whole_past_the_idle_timeout() {
    let server = Server::start(&["--idle-timeout", "1s"]);
    // 20 MiB, more than the sockets between buffer, read over several idle
    // timeouts (at least 320 reads).
    let took = read_a_large_hand_out(&server, 5, Duration::from_millis(10));
    assert!(took > Duration::from_secs(3), "{took:?}");
}

/// A response read slowly is sent whole with a client waiting at the bound
/// on connections, though its socket lets nothing out for more than the
/// idle grace at the bound at a time.
#[test]
fn a_body_read_slowly_is_not_cut_off_for_a_client_waiting_at_the_bound() {
    let server = Server::start(&["--max-connections", "1"]);
    // 8 MiB at 800 KiB a second: once the sockets are full, the kernel
    // lets more out only after more than a second's reading.
    read_a_large_hand_out(&server, 2, Duration::from_millis(80));
}

#[test]
fn a_body_over_the_bound_is_413_and_one_declared_longer_than_sent_408() {
    let server = Server::start(&["--max-body-bytes", "1000", "--request-timeout", "300ms"]);
    // One byte over the bound, sent in full.
    let body = format!(r#"{{"name": "{}"}}"#, "x".repeat(1000 - 11));
    assert_eq!(body.len(), 1001);
    let reply = server.send_json("POST", "/namespace", &body);
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert_eq!(reply.error_code(), "error");
    // Its rest, read and dropped, leaves a keep-alive connection open;
    // a rest longer than that is left unread, and ends the connection.
    let mut connection = support::Connection::open(server.addr);
    let reply = connection.send_json("POST", "/namespace", &body);
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert_eq!(connection.get("/namespace").status, 200);
    // (Sent in part: the rest is not needed for the answer.)
    let raw = format!(
        "POST /namespace HTTP/1.1\r\nHost: x\r\nContent-Type: {V1}\r\n\
         Content-Length: {}\r\n\r\n{}",
        200 * 1024,
        "x".repeat(2 * 1024)
    );
    let mut stream = support::connect(server.addr);
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.write_all(raw.as_bytes()).expect("write");
    let reply = read_reply(&mut stream);
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert_eq!(reply.header("connection"), Some("close"));
    // Far more declared than the bound, and two bytes sent.
    let mut stream = partial_post(&server, 99_999_999_999, "{}");
    let reply = read_reply(&mut stream);
    assert_eq!(reply.status, 408, "{}", reply.text());
    assert_eq!(reply.error_code(), "error");
}

/// A client that waits for `100 Continue` before a body longer than the
/// bound is answered `413` at once, and sends none of it; within the
/// bound, it is told to go on.
#[test]
fn a_body_over_the_bound_waiting_for_continue_is_413_at_once() {
    let server = Server::start(&["--max-body-bytes", "1000"]);
    let head = |length: usize| {
        format!(
            "POST /namespace HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: application/json\r\nExpect: 100-continue\r\n\
             Content-Length: {length}\r\n\r\n"
        )
    };
    let mut over = support::connect(server.addr);
    over.write_all(head(1001).as_bytes()).expect("head");
    over.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let reply = read_reply(&mut over);
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert_eq!(reply.error_code(), "error");

    let body = r#"{"name": "within"}"#;
    let mut within = support::connect(server.addr);
    within.write_all(head(body.len()).as_bytes()).expect("head");
    within
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut line = [0u8; 25];
    within.read_exact(&mut line).expect("an interim answer");
    assert_eq!(&line, b"HTTP/1.1 100 Continue\r\n\r\n");
    within.write_all(body.as_bytes()).expect("body");
    assert_eq!(read_reply(&mut within).status, 201);
}

/// Several `Accept` lines are one list, as HTTP reads them; a body
/// declared with two types is refused, whichever comes first, and adds
/// nothing.
#[test]
fn headers_given_on_several_lines() {
    let server = Server::start(&[]);
    let mut connection = support::Connection::open(server.addr);
    let accept = [("Accept", "text/html"), ("Accept", "application/json")];
    let reply = connection.send("GET", "/namespace", &accept, None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    for types in [[V1, "text/plain"], ["text/plain", V1]] {
        let headers = types.map(|t| ("Content-Type", t));
        let body = Some(r#"{"name": "a"}"#);
        let reply = connection.send("POST", "/namespace", &headers, body);
        assert_eq!(reply.status, 400, "{types:?}: {}", reply.text());
        assert_eq!(reply.error_code(), "error");
    }
    assert!(listed_names(&server, "/namespace", "namespaces").is_empty());
}

/// A request answered before its body is read (an unknown spec or unit in
/// its path, a body of a type the server does not read, an `Accept`
/// nothing matches, a method that takes no body) leaves its connection
/// open for the next request, even when the body arrives after the
/// answer is decided.
#[test]
fn a_body_arriving_after_an_early_answer_keeps_the_connection() {
    let server = Server::start(&[]);
    assert_eq!(add_spec_s(&server, "a").status, 201);
    let mut connection = support::Connection::open(server.addr);
    let json = ("Content-Type", V1);
    let finish = "/namespace/a/work_spec/s/work_unit/x/attempt/w/2020-01-01T00:00:00Z/finish";
    for (method, path, headers, status) in [
        (
            "POST",
            "/namespace/a/work_spec/t/work_unit",
            vec![json],
            404,
        ),
        ("POST", finish, vec![json], 400),
        (
            "POST",
            "/namespace/a/work_spec",
            vec![("Content-Type", "text/plain")],
            415,
        ),
        (
            "POST",
            "/namespace/a/work_spec",
            vec![json, ("Accept", "text/html")],
            406,
        ),
        ("POST", "/nowhere", vec![json], 404),
        ("GET", "/namespace/a", vec![json], 200),
    ] {
        let pause = Duration::from_millis(100);
        let body = r#"{"name": "u"}"#;
        let reply = connection.send_body_after(pause, method, path, &headers, body);
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.text());
        let next = connection.get("/namespace/a/work_spec/s");
        assert_eq!(next.status, 200, "after {method} {path}");
    }
}

/// An early answer to a request whose body is longer than what is read
/// to keep a connection, waits to be asked for, or does not come, says
/// the connection closes, and is not held back for the body.
#[test]
fn an_early_answer_to_a_long_awaited_or_missing_body_says_the_connection_closes() {
    // A body withheld past the drain's wait, not past the request's timeout.
    let server = Server::start(&["--request-timeout", "10s"]);
    for (length, expect) in [(1 << 20, ""), (20, "Expect: 100-continue\r\n"), (20, "")] {
        let mut stream = support::connect(server.addr);
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let head = format!(
            "POST /namespace/a/work_spec/t/work_unit HTTP/1.1\r\nHost: x\r\n\
             Content-Type: {V1}\r\n{expect}Content-Length: {length}\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).expect("head");
        let reply = read_reply(&mut stream);
        assert_eq!(reply.status, 404, "{length}: {}", reply.text());
        assert_eq!(reply.header("connection"), Some("close"), "{length}");
    }
}

#[test]
fn data_too_deep_for_the_decoder_is_data_too_deep() {
    let server = Server::start(&[]);
    add_spec_s(&server, "d");
    // A unit "u" whose data nests a number `depth` arrays deep.
    let nested = |depth: usize| {
        format!(
            r#"{{"name": "u", "data": {{"k": {}1{}}}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    // The same in the base64 CBOR form.
    let nested_cbor = |depth: usize| {
        let mut cbor = vec![0xa1, 0x61, b'k'];
        cbor.resize(cbor.len() + depth, 0x81);
        cbor.push(0x01);
        json!({"name": "u", "data": STANDARD.encode(cbor)}).to_string()
    };
    // Too deep for a decoder, or only for the limit: the same answer, which
    // a client reads back as the typed error.
    for body in [
        nested(5000),
        nested(100),
        nested_cbor(5000),
        nested_cbor(100),
    ] {
        let reply = server.send_json("POST", "/namespace/d/work_spec/s/work_unit", &body);
        assert_eq!(reply.status, 400, "{}", reply.text());
        assert_eq!(reply.json()["kind"], "DataTooDeep", "{}", reply.text());
        let document: ErrorDocument = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(
            document.into_error(ObjectKind::WorkUnit),
            Error::DataTooDeep {
                limit: MAX_DATA_DEPTH
            }
        );
    }
    assert_eq!(
        server.get("/namespace/d/work_spec/s/work_unit/u").status,
        400
    );
}

/// Unknown fields are ignored however deep they nest or long they are:
/// skipped, never built, so only the fields an operation reads can be
/// refused.
#[test]
fn unknown_fields_are_skipped_whatever_their_depth_or_length() {
    let server = Server::start(&[]);
    add_spec_s(&server, "x");
    let meta = "/namespace/x/work_spec/s/meta";
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let long = format!("[{}0]", "0,".repeat(1_000_000));
    for (priority, extension) in [(3, deep), (4, long)] {
        let body = format!(r#"{{"priority": {priority}, "x-extension": {extension}}}"#);
        let reply = server.send_json("PUT", meta, &body);
        assert_eq!(reply.status, 204, "{}", reply.text());
        assert_eq!(server.get(meta).json()["priority"], priority);
    }
    for (body, kind) in [
        ("[]", "an array"),
        ("  \n\"s\"", "a string"),
        ("null", "null"),
    ] {
        let reply = server.send_json("PUT", meta, body);
        assert_eq!(reply.status, 400, "{body}: {}", reply.text());
        assert_eq!(
            reply.json()["message"],
            format!("the request body must be a JSON object, not {kind}")
        );
    }
}

/// Fields of a document that an operation does not read are skipped
/// unread too, whatever they hold: a spec meta `PUT` reads the fields
/// `set_meta` sets, and a bulk priority change only `meta.priority`.
#[test]
fn fields_an_operation_does_not_read_are_skipped_whatever_they_hold() {
    let server = Server::start(&[]);
    add_spec_s(&server, "f");
    let meta = "/namespace/f/work_spec/s/meta";
    let body = r#"{"priority": 5, "runtime": null, "can_be_continuous": "yes",
        "next_work_spec_name": 7, "available_count": "many", "pending_count": [1]}"#;
    let reply = server.send_json("PUT", meta, body);
    assert_eq!(reply.status, 204, "{}", reply.text());
    assert_eq!(server.get(meta).json()["priority"], 5);

    let added = server.send_json(
        "POST",
        "/namespace/f/work_spec/s/work_unit",
        r#"{"name": "u"}"#,
    );
    assert_eq!(added.status, 201, "{}", added.text());
    let unit = "/namespace/f/work_spec/s/work_unit/u";
    // Set to 3, then 3 added.
    for route in ["change", "adjust"] {
        let body = r#"{"name": 9, "data": "not base64!",
            "meta": {"priority": 3, "not_before": "the day after tomorrow"}}"#;
        let path = format!("/namespace/f/work_spec/s/{route}?name=u");
        let reply = server.send_json("POST", &path, body);
        assert_eq!(reply.status, 204, "{route}: {}", reply.text());
    }
    assert_eq!(server.get(unit).json()["meta"]["priority"], 6.0);
    // The select extension's `change` reads as much of its meta.
    let body = r#"{"action": "change", "name": ["u"],
        "meta": {"priority": 1, "not_before": "the day after tomorrow"}}"#;
    let reply = server.send_json("POST", "/namespace/f/work_spec/s/select", body);
    assert_eq!(reply.status, 204, "select: {}", reply.text());
    assert_eq!(server.get(unit).json()["meta"]["priority"], 1.0);
}

/// Inside a unit's `meta` too, unknown fields are skipped unbuilt, however
/// deep, long or out of range they are, while a field it reads given twice
/// is refused.
#[test]
fn unknown_fields_in_a_units_meta_are_skipped() {
    let server = Server::start(&[]);
    add_spec_s(&server, "m");
    let unit = "/namespace/m/work_spec/s/work_unit/u";
    let added = server.send_json(
        "POST",
        "/namespace/m/work_spec/s/work_unit",
        r#"{"name": "u"}"#,
    );
    assert_eq!(added.status, 201, "{}", added.text());
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let long = format!("[{}0]", "0,".repeat(1_000_000));
    let ignored = [deep, long, "1e400".to_owned(), r#""\ud800""#.to_owned()];
    for (priority, extension) in ignored.iter().enumerate() {
        let body =
            format!(r#"{{"data": {{}}, "meta": {{"priority": {priority}, "x": {extension}}}}}"#);
        let reply = server.send_json("PUT", unit, &body);
        assert_eq!(reply.status, 204, "{}", reply.text());
        assert_eq!(server.get(unit).json()["meta"]["priority"], priority as f64);
    }
    let twice = r#"{"data": {}, "meta": {"priority": 7, "priority": 8}}"#;
    let reply = server.send_json("PUT", unit, twice);
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(server.get(unit).json()["meta"]["priority"], 3.0);
}

/// What the body check itself refuses: text that is not UTF-8, and a
/// field the operation reads given twice. A field the API ignores is
/// ignored whatever it holds, a lone surrogate or a number past any float.
#[test]
fn bodies_are_utf8_with_read_fields_once() {
    let server = Server::start(&[]);
    add_spec_s(&server, "b");
    let meta = "/namespace/b/work_spec/s/meta";
    let send_bytes = |body: &[u8]| {
        let mut stream = TcpStream::connect(server.addr).expect("connect");
        let head = format!(
            "PUT {meta} HTTP/1.1\r\nHost: {}\r\nContent-Type: {V1}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            server.addr,
            body.len()
        );
        stream.write_all(head.as_bytes()).expect("write head");
        stream.write_all(body).expect("write body");
        read_reply(&mut stream)
    };
    let not_utf8 = send_bytes(b"{\"priority\": 1, \"x-extension\": \"\xff\"}");
    assert_eq!(not_utf8.status, 400, "{}", not_utf8.text());
    assert_eq!(not_utf8.error_code(), "error");
    let twice = server.send_json("PUT", meta, r#"{"priority": 1, "priority": 2}"#);
    assert_eq!(twice.status, 400, "{}", twice.text());
    for (priority, ignored) in [(5, r#""\ud800""#), (6, "1e400")] {
        let body = format!(r#"{{"priority": {priority}, "x-extension": {ignored}}}"#);
        let reply = server.send_json("PUT", meta, &body);
        assert_eq!(reply.status, 204, "{body}: {}", reply.text());
        assert_eq!(server.get(meta).json()["priority"], priority);
    }
}

#[test]
fn data_too_long_is_data_too_large() {
    let server = Server::start(&[]);
    add_spec_s(&server, "l");
    let units = "/namespace/l/work_spec/s/work_unit";
    // `{"k":"x…"}`, `len` bytes long as compact JSON.
    let data = |len: usize| json!({"k": "x".repeat(len - r#"{"k":""}"#.len())});
    let over = json!({"name": "u", "data": data(MAX_DATA_BYTES + 1)}).to_string();
    let spec_over = json!({"data": {"name": "s", "k": "x".repeat(MAX_DATA_BYTES)}}).to_string();
    for (method, path, body) in [
        ("POST", units, &over),
        ("PUT", "/namespace/l/work_spec/s", &spec_over),
    ] {
        let reply = server.send_json(method, path, body);
        assert_eq!(reply.status, 400, "{method} {path}: {}", reply.text());
        assert_eq!(reply.json()["kind"], "DataTooLarge", "{}", reply.text());
        assert_eq!(reply.json()["value"], MAX_DATA_BYTES.to_string());
        let document: ErrorDocument = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(
            document.into_error(ObjectKind::WorkUnit),
            Error::DataTooLarge {
                limit: MAX_DATA_BYTES
            }
        );
    }
    assert_eq!(server.get(&format!("{units}/u")).status, 400);
    assert_eq!(
        server.get("/namespace/l/work_spec/s").json()["data"],
        json!({"name": "s"})
    );
    // The length is the data's as compact JSON, however it was sent: here
    // with spaces, and half a million of the `x` escaped (`\u0078`, six
    // bytes each), so over 6 MiB on the wire.
    let escaped = 500_000;
    let plain = MAX_DATA_BYTES - r#"{"k":""}"#.len() - escaped;
    let at_limit = format!(
        r#"{{"name": "u", "data": {{ "k" : "{}{}" }}}}"#,
        r"\u0078".repeat(escaped),
        "x".repeat(plain)
    );
    assert!(at_limit.len() > 6 << 20);
    let reply = server.send_json("POST", units, &at_limit);
    assert_eq!(reply.status, 201, "{}", reply.text());
    let stored = server.get(&format!("{units}/u")).json();
    assert_eq!(stored["data"], data(MAX_DATA_BYTES));
}

#[test]
fn a_worker_mode_too_long_is_mode_too_long() {
    let server = Server::start(&[]);
    let worker = "/namespace/m/worker/w";
    let update = |mode: &str| json!({"active": true, "mode": mode, "data": {"v": 1}}).to_string();
    let longest = "é".repeat(MAX_MODE_BYTES / 2);
    let reply = server.send_json("PUT", worker, &update(&longest));
    assert_eq!(reply.status, 204, "{}", reply.text());
    let reply = server.send_json("PUT", worker, &update(&format!("{longest}x")));
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(reply.json()["kind"], "ModeTooLong", "{}", reply.text());
    assert_eq!(reply.json()["value"], MAX_MODE_BYTES.to_string());
    let document: ErrorDocument = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(
        document.into_error(ObjectKind::Worker),
        Error::ModeTooLong {
            limit: MAX_MODE_BYTES
        }
    );
    assert_eq!(server.get(worker).json()["mode"], longest.as_str());
}

#[test]
fn data_at_the_limit_fits_the_default_body_in_the_longest_forms_clients_write() {
    let server = Server::start(&[]);
    add_spec_s(&server, "f");
    let units = "/namespace/f/work_spec/s/work_unit";
    // Accented text with every character escaped, as JSON encoders that
    // write ASCII only do: six bytes on the wire for two stored.
    let chars = (MAX_DATA_BYTES - r#"{"k":""}"#.len()) / 2;
    let escaped = format!(
        r#"{{"name": "escaped", "data": {{"k": "{}"}}}}"#,
        r"\u00e9".repeat(chars)
    );
    assert!(escaped.len() > 12 << 20);
    let reply = server.send_json("POST", units, &escaped);
    assert_eq!(reply.status, 201, "{}", reply.text());
    let stored = server.get(&format!("{units}/escaped")).json();
    assert_eq!(stored["data"], json!({"k": "é".repeat(chars)}));
    // Small floats in the base64 CBOR form: nine bytes each in CBOR for
    // the four of `1.5,` in JSON, and a third more in base64.
    let floats = (MAX_DATA_BYTES - r#"{"k":[]}"#.len() + 1) / 4;
    let count = u32::try_from(floats).unwrap().to_be_bytes();
    let mut cbor = vec![0xa1, 0x61, b'k', 0x9a];
    cbor.extend_from_slice(&count);
    for _ in 0..floats {
        cbor.extend_from_slice(&[0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]);
    }
    let body = json!({"name": "cbor", "data": STANDARD.encode(&cbor)}).to_string();
    assert!(body.len() > 12 << 20);
    let reply = server.send_json("POST", units, &body);
    assert_eq!(reply.status, 201, "{}", reply.text());
    let stored = server.get(&format!("{units}/cbor")).json();
    let stored = stored["data"]["k"].as_array().map(Vec::len);
    assert_eq!(stored, Some(floats));
    // `<`, `>` and `&` escaped, as some JSON encoders write them for
    // HTML's sake: six bytes on the wire for one stored.
    let chars = MAX_DATA_BYTES - r#"{"k":""}"#.len();
    let escaped = format!(
        r#"{{"name": "html", "data": {{"k": "{}"}}}}"#,
        r"\u003c".repeat(chars)
    );
    assert!(escaped.len() > 6 * (MAX_DATA_BYTES - 10));
    let reply = server.send_json("POST", units, &escaped);
    assert_eq!(reply.status, 201, "{}", reply.text());
    let stored = server.get(&format!("{units}/html")).json();
    assert_eq!(stored["data"], json!({"k": "<".repeat(chars)}));
}

#[test]
fn input_over_a_limit_is_400_on_every_route() {
    let server = Server::start(&[]);
    add_spec_s(&server, "n");
    let long = "x".repeat(1025);
    let cases = [
        (
            "POST",
            "/namespace".to_owned(),
            format!(r#"{{"name": "{long}"}}"#),
        ),
        (
            "POST",
            "/namespace/n/work_spec".to_owned(),
            format!(r#"{{"data": {{"name": "{long}"}}}}"#),
        ),
        (
            "POST",
            "/namespace/n/work_spec/s/work_unit".to_owned(),
            format!(r#"{{"name": "{long}", "data": {{}}}}"#),
        ),
        (
            "PUT",
            format!("/namespace/n/worker/{long}"),
            "{}".to_owned(),
        ),
    ];
    for (method, path, body) in &cases {
        let reply = server.send_json(method, path, body);
        assert_eq!(reply.status, 400, "{method} {path}: {}", reply.text());
        assert_eq!(reply.error_code(), "error", "{method} {path}");
        assert_eq!(reply.json()["kind"], "NameTooLong", "{method} {path}");
        assert_eq!(reply.json()["value"], "1024", "{method} {path}");
    }
    // A definition the crate cannot read, on creation and on replacement.
    let bad = r#"{"data": {"name": "s", "priority": "high"}}"#;
    for (method, path) in [
        ("POST", "/namespace/n/work_spec"),
        ("PUT", "/namespace/n/work_spec/s"),
    ] {
        let reply = server.send_json(method, path, bad);
        assert_eq!(reply.status, 400, "{method} {path}: {}", reply.text());
        assert_eq!(
            reply.json()["kind"],
            "InvalidWorkSpecData",
            "{method} {path}"
        );
    }
    // Nothing was stored, and the server still answers.
    let specs = server.get("/namespace/n/work_spec").json();
    assert_eq!(specs["work_specs"].as_array().map(Vec::len), Some(1));
    assert_eq!(server.get("/healthz").status, 200);
}

#[test]
fn a_body_that_is_not_an_object_is_400_and_changes_nothing() {
    let server = Server::start(&[]);
    add_spec_s(&server, "b");
    let spec = "/namespace/b/work_spec/s";
    let meta_before = server.get(&format!("{spec}/meta")).json();
    assert_eq!(
        server
            .send_json("POST", &format!("{spec}/work_unit"), r#"{"name": "held"}"#)
            .status,
        201
    );
    let cases = [
        ("POST", "/namespace".to_owned(), r#"["foo"]"#),
        ("PUT", format!("{spec}/meta"), "[]"),
        ("PUT", format!("{spec}/meta"), "7"),
        (
            "POST",
            format!("{spec}/work_unit"),
            r#"["u", {"k": 1}, {"priority": 7.0, "not_before": null}]"#,
        ),
        // A nested document given as an array.
        (
            "POST",
            format!("{spec}/work_unit"),
            r#"{"name": "v", "meta": [7.0, null]}"#,
        ),
        (
            "PUT",
            format!("{spec}/work_unit/held"),
            r#"{"meta": [7.0, null]}"#,
        ),
        ("POST", format!("{spec}/change?name=held"), r#"[[7.0]]"#),
        ("POST", format!("{spec}/select"), r#"["delete", ["held"]]"#),
        ("PUT", "/namespace/b/worker/w".to_owned(), r#"[null, true]"#),
    ];
    for (method, path, body) in &cases {
        let reply = server.send_json(method, path, body);
        assert_eq!(
            reply.status,
            400,
            "{method} {path} {body}: {}",
            reply.text()
        );
        assert_eq!(reply.header("content-type"), Some(V1));
        assert_eq!(reply.error_code(), "error", "{method} {path} {body}");
    }
    let namespaces = server.get("/namespace").text();
    assert!(!namespaces.contains("foo"), "{namespaces}");
    assert_eq!(server.get(&format!("{spec}/meta")).json(), meta_before);
    for unit in ["u", "v"] {
        let reply = server.get(&format!("{spec}/work_unit/{unit}"));
        assert_eq!(reply.error_code(), "ErrNoSuchWorkUnit", "{}", reply.text());
    }
    let held = server.get(&format!("{spec}/work_unit/held")).json();
    assert_eq!(held["meta"]["priority"], 0.0, "{held}");
}

/// The names in a work unit list, sorted.
fn listed(reply: &support::Reply) -> Vec<String> {
    let mut names: Vec<String> = reply.json()["work_units"]
        .as_array()
        .unwrap_or_else(|| panic!("no work unit list: {}", reply.text()))
        .iter()
        .map(|unit| unit["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_select_url_does_what_the_query_urls_do() {
    let server = Server::start(&[]);
    add_spec_s(&server, "q");
    let spec = "/namespace/q/work_spec/s";
    for name in ["a", "b b", "c", "-YiBi"] {
        let body = json!({"name": name}).to_string();
        let reply = server.send_json("POST", &format!("{spec}/work_unit"), &body);
        assert_eq!(reply.status, 201);
    }
    let select = server.get(spec).json()["work_unit_select_url"].clone();
    assert_eq!(select, format!("{spec}/select"));
    let select = format!("{spec}/select");
    let post = |body: serde_json::Value| server.send_json("POST", &select, &body.to_string());

    // Lists: names and `previous` plain, statuses, a limit; no action lists.
    let previous = names::percent_encode(&names::encode_previous("-YiBi"));
    let cases = [
        (json!({}), String::new()),
        (
            json!({"action": "list", "name": ["a", "b b", "nobody"]}),
            "name=a&name=b%20b&name=nobody".to_owned(),
        ),
        (
            json!({"previous": "a", "limit": 2}),
            "previous=a&limit=2".to_owned(),
        ),
        (
            json!({"previous": "-YiBi", "limit": 1e0}),
            format!("previous={previous}&limit=1"),
        ),
        (
            json!({"status": ["available", "finished"], "limit": -5}),
            "status=available&status=finished".to_owned(),
        ),
    ];
    for (body, query) in cases {
        let by_body = post(body.clone());
        let by_url = server.get(&format!("{spec}/work_unit?{query}"));
        assert_eq!(
            (by_body.status, by_url.status),
            (200, 200),
            "{body}: {}",
            by_body.text()
        );
        assert_eq!(listed(&by_body), listed(&by_url), "{body} against ?{query}");
    }
    assert_eq!(
        listed(&post(json!({"previous": "-YiBi", "limit": 1}))),
        ["a"]
    );

    // Priority changes, then a delete.
    let reply = post(json!({"action": "change", "name": ["a", "c"], "meta": {"priority": 3.0}}));
    assert_eq!(reply.status, 204, "{}", reply.text());
    let reply = post(json!({"action": "adjust", "name": ["c"], "meta": {"priority": 1.5}}));
    assert_eq!(reply.status, 204, "{}", reply.text());
    let priority = |name: &str| {
        server.get(&format!("{spec}/work_unit/{name}")).json()["meta"]["priority"].clone()
    };
    assert_eq!(
        (priority("a"), priority("c"), priority("b%20b")),
        (json!(3.0), json!(4.5), json!(0.0))
    );
    let reply = post(json!({"action": "delete", "status": ["available"], "limit": 2}));
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), json!({"Deleted": 2}));
    assert_eq!(listed(&post(json!({}))), ["b b", "c"]);

    // What the query URLs refuse, the select URL refuses; and it is POST only.
    for body in [
        json!({"action": "drop"}),
        json!({"status": ["nope"]}),
        json!({"limit": "2"}),
        json!({"limit": 1.5}),
        json!({"name": "a"}),
    ] {
        let reply = post(body.clone());
        assert_eq!(reply.status, 400, "{body}: {}", reply.text());
        assert_eq!(reply.error_code(), "error", "{body}");
    }
    assert_eq!(server.get(&select).status, 405);
    assert_eq!(listed(&post(json!({}))), ["b b", "c"]);
}

#[test]
fn a_priority_adjusted_past_the_largest_float_is_400_and_changes_nothing() {
    let server = Server::start(&[]);
    add_spec_s(&server, "p");
    let spec = "/namespace/p/work_spec/s";
    let add = format!("{spec}/work_unit");
    for name in ["big", "small"] {
        let body = format!(r#"{{"name": "{name}", "meta": {{"priority": 1e308}}}}"#);
        assert_eq!(server.send_json("POST", &add, &body).status, 201);
    }
    let reply = server.send_json(
        "POST",
        &format!("{spec}/adjust?name=big&name=small"),
        r#"{"meta": {"priority": 1e308}}"#,
    );
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(reply.error_code(), "ErrBadPriority");
    for name in ["big", "small"] {
        let unit = server.get(&format!("{spec}/work_unit/{name}")).json();
        assert_eq!(unit["meta"]["priority"], 1e308, "{unit}");
    }
}

#[test]
fn a_parent_in_another_namespace_goes_by_url() {
    let server = Server::start(&[]);
    let put = |body: &str| server.send_json("PUT", "/namespace/a/worker/c", body);
    assert_eq!(
        put(r#"{"parent_url": "/namespace/b/worker/p"}"#).status,
        204
    );
    let child = server.get("/namespace/a/worker/c").json();
    assert_eq!(child["parent"], json!("p"));
    assert_eq!(child["parent_url"], json!("/namespace/b/worker/p"));
    let parent = server.get("/namespace/b/worker/p").json();
    assert_eq!(parent["child_urls"], json!(["/namespace/a/worker/c"]));
    // The namesake in the child's own namespace is not the parent.
    let namesake = server.get("/namespace/a/worker/p").json();
    assert_eq!(namesake.get("child_urls"), None);

    // An absolute URL names a worker as its path does.
    let absolute = r#"{"parent_url": "http://elsewhere:1/namespace/b/worker/q"}"#;
    assert_eq!(put(absolute).status, 204);
    let child = server.get("/namespace/a/worker/c").json();
    assert_eq!(child["parent_url"], json!("/namespace/b/worker/q"));

    // `parent` then names the own namespace's worker, not the other's.
    assert_eq!(put(r#"{"parent": "q"}"#).status, 204);
    let child = server.get("/namespace/a/worker/c").json();
    assert_eq!(child["parent_url"], json!("/namespace/a/worker/q"));

    for body in [
        r#"{"parent_url": "/namespace/b/work_spec/s"}"#,
        r#"{"parent_url": "/namespace/b/worker/p/active_attempts"}"#,
        r#"{"parent_url": "no url at all"}"#,
    ] {
        let reply = put(body);
        assert_eq!(reply.status, 400, "{body}: {}", reply.text());
        assert_eq!(reply.error_code(), "error", "{body}");
    }
    let child = server.get("/namespace/a/worker/c").json();
    assert_eq!(
        child["parent_url"],
        json!("/namespace/a/worker/q"),
        "unchanged"
    );
}

/// The extensions' URL fields never override the names the API reads: a
/// worker document put back whole keeps its parent in another namespace,
/// one with `parent` changed (or a `parent_url` that is no URL) is read as
/// the API says, and a `make_attempt` body with names and a URL makes the
/// attempt on the unit it names.
#[test]
fn names_the_api_reads_decide_over_the_extensions_urls() {
    let server = Server::start(&[]);
    let worker = "/namespace/a/worker/c";
    let put = |body: &str| {
        let reply = server.send_json("PUT", worker, body);
        assert_eq!(reply.status, 204, "{body}: {}", reply.text());
    };
    put(r#"{"parent_url": "/namespace/b/worker/p"}"#);
    let mut doc = server.get(worker).json();
    assert_eq!(doc["parent_url"], json!("/namespace/b/worker/p"));
    put(&doc.to_string());
    let unchanged = server.get(worker).json();
    assert_eq!(
        unchanged["parent_url"],
        json!("/namespace/b/worker/p"),
        "put back whole"
    );
    doc["parent"] = json!("q");
    put(&doc.to_string());
    let moved = server.get(worker).json();
    assert_eq!(
        moved["parent_url"],
        json!("/namespace/a/worker/q"),
        "parent changed"
    );
    put(r#"{"parent": "r", "parent_url": "no url at all"}"#);
    assert_eq!(server.get(worker).json()["parent"], json!("r"));

    for ns in ["a", "b"] {
        assert_eq!(add_spec_s(&server, ns).status, 201);
        let units = format!("/namespace/{ns}/work_spec/s/work_unit");
        assert_eq!(
            server.send_json("POST", &units, r#"{"name": "u"}"#).status,
            201
        );
    }
    let make = |body: &str| {
        let reply = server.send_json("POST", "/namespace/a/worker/w/make_attempt", body);
        assert_eq!(reply.status, 200, "{body}: {}", reply.text());
        reply.json()["work_unit_url"].clone()
    };
    let own = json!("/namespace/a/work_spec/s/work_unit/u");
    for url in [
        "/namespace/b/work_spec/s/work_unit/u",
        "/namespace/b/work_spec/s",
    ] {
        let body = format!(r#"{{"work_spec": "s", "work_unit": "u", "work_unit_url": "{url}"}}"#);
        assert_eq!(make(&body), own, "{body}");
    }
}

/// An update the server rejects changes nothing, though it asks for
/// several changes: its input is checked before the first is made. An
/// empty URL field is one the client does not know, and is ignored.
#[test]
fn a_rejected_update_changes_nothing_and_empty_urls_are_ignored() {
    let server = Server::start(&[]);
    add_spec_s(&server, "a");
    let units = "/namespace/a/work_spec/s/work_unit";
    assert_eq!(
        server.send_json("POST", units, r#"{"name": "u"}"#).status,
        201
    );
    let got = server.send_json(
        "POST",
        "/namespace/a/worker/w/request_attempts",
        r#"{"number_of_work_units": 1}"#,
    );
    assert_eq!(got.status, 200, "{}", got.text());
    let attempt = got.json()["attempts"][0]["url"].clone();

    let unit = format!("{units}/u");
    for meta in [
        r#"{"priority": "NaN"}"#,
        r#"{"not_before": "0000-01-01T00:00:00Z"}"#,
    ] {
        let body = format!(r#"{{"active_attempt_url": "-", "meta": {meta}}}"#);
        let reply = server.send_json("PUT", &unit, &body);
        assert_eq!(reply.status, 400, "{body}: {}", reply.text());
        let now = server.get(&unit).json();
        assert_eq!(now["active_attempt_url"], attempt, "{body}: {now}");
    }

    let worker = "/namespace/a/worker/w";
    for body in [
        r#"{"parent": "p", "active": true, "expiration": "0000-01-01T00:00:00Z"}"#,
        r#"{"parent_url": "/namespace/b/worker/p", "active": true,
            "last_update": "0000-01-01T00:00:00Z"}"#,
    ] {
        let reply = server.send_json("PUT", worker, body);
        assert_eq!(reply.status, 400, "{body}: {}", reply.text());
        let now = server.get(worker).json();
        assert_eq!(now.get("parent"), None, "{body}: {now}");
    }

    let reply = server.send_json(
        "PUT",
        worker,
        r#"{"parent": "p", "parent_url": "", "active": true}"#,
    );
    assert_eq!(reply.status, 204, "{}", reply.text());
    assert_eq!(
        server.get(worker).json()["parent_url"],
        json!("/namespace/a/worker/p")
    );
    let reply = server.send_json(
        "POST",
        "/namespace/a/worker/v/make_attempt",
        r#"{"work_spec": "s", "work_unit": "u", "lifetime": 0, "work_unit_url": ""}"#,
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["work_unit_url"], json!(unit));
}

#[test]
fn a_unit_in_another_namespace_goes_by_url() {
    let server = Server::start(&[]);
    for ns in ["a", "b"] {
        assert_eq!(add_spec_s(&server, ns).status, 201);
        let units = format!("/namespace/{ns}/work_spec/s/work_unit");
        let unit = format!(r#"{{"name": "u", "data": {{"at": "{ns}"}}}}"#);
        assert_eq!(server.send_json("POST", &units, &unit).status, 201);
    }
    let make = |body: &str| server.send_json("POST", "/namespace/a/worker/w/make_attempt", body);
    let far_unit = r#"{"work_spec": "", "work_unit": "", "lifetime": 0,
        "work_unit_url": "/namespace/b/work_spec/s/work_unit/u"}"#;
    let reply = make(far_unit);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let attempt = reply.json();
    let far = "/namespace/b/work_spec/s/work_unit/u";
    assert_eq!(attempt["work_unit_url"], json!(far));
    assert_eq!(attempt["worker_url"], json!("/namespace/a/worker/w"));
    let url = attempt["url"].as_str().unwrap_or_default();
    assert!(url.starts_with(&format!("{far}/attempt/w/")), "{url}");
    // The attempt is the other namespace's unit's, and its URL finds it.
    assert_eq!(server.get(url).status, 200);
    let unit = server.get(far).json();
    assert_eq!(unit["active_attempt_url"], json!(url));
    let namesake = server.get("/namespace/a/work_spec/s/work_unit/u").json();
    assert_eq!(namesake.get("active_attempt_url"), None);
    // The worker's lists link the attempt into the unit's namespace.
    let listed = server.get("/namespace/a/worker/w/active_attempts").json();
    assert_eq!(listed["attempts"][0]["url"], json!(url));

    for body in [
        r#"{"work_spec": "", "work_unit": "", "work_unit_url": "/namespace/b/work_spec/s"}"#,
        r#"{"work_spec": "", "work_unit": "", "work_unit_url": "no url at all"}"#,
    ] {
        let reply = make(body);
        assert_eq!(reply.status, 400, "{body}: {}", reply.text());
        assert_eq!(reply.error_code(), "error", "{body}");
    }
    let missing = r#"{"work_spec": "", "work_unit": "",
        "work_unit_url": "/namespace/b/work_spec/s/work_unit/v"}"#;
    let reply = make(missing);
    assert_eq!(reply.status, 500, "{}", reply.text());
    assert_eq!(reply.error_code(), "ErrNoSuchWorkUnit");

    // A namespace named only in the body is not made by a refused request.
    let nowhere = r#"{"work_spec": "", "work_unit": "",
        "work_unit_url": "/namespace/ghost/work_spec/s/work_unit/u"}"#;
    let reply = make(nowhere);
    assert_eq!(reply.status, 500, "{}", reply.text());
    assert_eq!(reply.error_code(), "ErrNoSuchWorkSpec");
    assert_eq!(reply.json()["value"], json!("s"));
    let namespaces = listed_names(&server, "/namespace", "namespaces");
    assert_eq!(namespaces.len(), 2, "{namespaces:?}");
}

/// The names of a namespace's workers.
fn worker_names(server: &Server, ns: &str) -> Vec<String> {
    listed_names(server, &format!("/namespace/{ns}/worker"), "workers")
}

#[test]
fn an_attempt_on_another_namespaces_unit_makes_no_worker_there() {
    let server = Server::start(&[]);
    assert_eq!(add_spec_s(&server, "b").status, 201);
    let far = "/namespace/b/work_spec/s/work_unit/u";
    let units = "/namespace/b/work_spec/s/work_unit";
    assert_eq!(
        server.send_json("POST", units, r#"{"name": "u"}"#).status,
        201
    );
    let make = |worker: &str, body: &str| {
        let path = format!("/namespace/{worker}/make_attempt");
        let reply = server.send_json("POST", &path, body);
        assert_eq!(reply.status, 200, "{worker}: {}", reply.text());
        let url = reply.json()["url"].as_str().unwrap_or_default().to_owned();
        assert!(url.starts_with(&format!("{far}/attempt/w/")), "{url}");
        url
    };
    let by_url = format!(r#"{{"work_spec": "", "work_unit": "", "work_unit_url": "{far}"}}"#);
    let away = make("a/worker/w", &by_url);

    // Read and finished through its URL, the attempt is a/w's...
    let attempt = server.get(&away);
    assert_eq!(attempt.status, 200, "{}", attempt.text());
    assert_eq!(attempt.json()["worker_url"], "/namespace/a/worker/w");
    let finish = server.send_json("POST", &format!("{away}/finish"), "{}");
    assert_eq!(finish.status, 204, "{}", finish.text());
    assert_eq!(server.get(&away).json()["status"], "finished");
    // ...and no worker of its name appeared in the unit's namespace.
    assert!(worker_names(&server, "b").is_empty());
    let nobody = format!("{far}/attempt/nobody/2001-01-01T00:00:00Z");
    assert_eq!(server.get(&nobody).status, 404);
    assert!(worker_names(&server, "b").is_empty());

    // A namesake of the unit's namespace: each URL finds its own attempt.
    let home = make("b/worker/w", r#"{"work_spec": "s", "work_unit": "u"}"#);
    assert_ne!(home, away);
    assert_eq!(worker_names(&server, "b"), ["w"]);
    for (url, worker) in [
        (&away, "/namespace/a/worker/w"),
        (&home, "/namespace/b/worker/w"),
    ] {
        let attempt = server.get(url);
        assert_eq!(attempt.status, 200, "{url}: {}", attempt.text());
        assert_eq!(attempt.json()["worker_url"], worker, "{url}");
    }
}

/// An invalid `RUST_LOG` directive is reported, and the valid ones kept,
/// rather than the whole variable silently replaced by the default.
#[test]
fn an_invalid_log_directive_is_reported() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_coordinated"))
        .args(["--http", "127.0.0.1:0"])
        .env("RUST_LOG", "warn,coordinated=loud")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start coordinated");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the listening line");
    assert!(line.contains("listening"), "{line}");
    child.kill().expect("kill");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    let _ = child.wait();
    assert!(stderr.contains("coordinated=loud"), "{stderr}");
    // `warn` kept: the info line announcing the backend is not logged.
    assert!(!stderr.contains("serving"), "{stderr}");
}
