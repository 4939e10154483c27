//! `coordinated` as a proxy (`--backend http://…`: another server of the
//! API through `RestBackend`), what it says as it starts, and started with
//! the reference daemon's flag spellings.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use support::Server;

#[test]
fn a_proxy_serves_the_store_of_the_server_behind_it() {
    let upstream = Server::start(&[]);
    let proxy = Server::start(&["--backend", &format!("http://{}/", upstream.addr)]);
    let spec = "/namespace/p/work_spec/s";

    let made = proxy.send_json(
        "POST",
        "/namespace/p/work_spec",
        r#"{"data": {"name": "s"}}"#,
    );
    assert_eq!(made.status, 201, "{}", made.text());
    assert_eq!(made.json()["url"], spec, "the proxy's own links");
    assert_eq!(upstream.get(spec).status, 200);
    let unit = r#"{"name": "u", "data": {"n": 1}}"#;
    let added = upstream.send_json("POST", &format!("{spec}/work_unit"), unit);
    assert_eq!(added.status, 201, "{}", added.text());

    // A worker of the proxy works the unit the upstream server holds.
    let handed = proxy.send_json("POST", "/namespace/p/worker/w/request_attempts", "{}");
    assert_eq!(handed.status, 200, "{}", handed.text());
    let attempts = handed.json()["attempts"].clone();
    assert_eq!(attempts.as_array().map(Vec::len), Some(1), "{attempts}");
    assert_eq!(attempts[0]["data"], serde_json::json!({"n": 1}));
    let finish = attempts[0]["finish_url"].as_str().expect("finish_url");
    let finished = proxy.send_json("POST", finish, r#"{"data": {"done": true}}"#);
    assert_eq!(finished.status, 204, "{}", finished.text());
    let unit = upstream.get(&format!("{spec}/work_unit/u"));
    assert_eq!(unit.json()["status"], "finished", "{}", unit.text());

    // Errors come back as the server behind answers them.
    for path in [
        "/namespace/p/work_spec/nope",
        &format!("{spec}/work_unit/nope"),
    ] {
        let (direct, proxied) = (upstream.get(path), proxy.get(path));
        assert_eq!(proxied.status, direct.status, "{path}: {}", proxied.text());
        assert_eq!(proxied.json(), direct.json(), "{path}");
    }
    let again = proxy.send_json("POST", finish, "{}");
    assert_eq!(again.status, 500);
    assert_eq!(again.error_code(), "ErrNotPending", "{}", again.text());
}

/// A failure of the server behind keeps a gateway's status: its own for
/// an error of the request (a body over its limit is `413` through the
/// proxy too, not a server error a client would send again), `502` once
/// it cannot be reached.
#[test]
fn a_proxy_answers_a_failure_behind_it_with_a_gateways_status() {
    let mut upstream = Server::start(&["--max-body-bytes", "2000"]);
    let proxy = Server::start(&["--backend", &format!("http://{}/", upstream.addr)]);
    let made = proxy.send_json(
        "POST",
        "/namespace/p/work_spec",
        r#"{"data": {"name": "s"}}"#,
    );
    assert_eq!(made.status, 201, "{}", made.text());
    let big = format!(
        r#"{{"name": "u", "data": {{"text": "{}"}}}}"#,
        "x".repeat(5000)
    );
    let units = "/namespace/p/work_spec/s/work_unit";
    let direct = upstream.send_json("POST", units, &big);
    assert_eq!(direct.status, 413, "{}", direct.text());
    let proxied = proxy.send_json("POST", units, &big);
    assert_eq!(proxied.status, 413, "{}", proxied.text());

    upstream.terminate();
    upstream.wait_exit(std::time::Duration::from_secs(10));
    let unreachable = proxy.get("/namespace/p/work_spec/s");
    assert_eq!(unreachable.status, 502, "{}", unreachable.text());
    assert_eq!(unreachable.error_code(), "error", "{}", unreachable.text());
}

/// A server of the API that answers its root document, as `root`, and
/// never answers anything else; answers its address.
fn stalling_server(root: String) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut head = String::new();
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            while reader.read_line(&mut head).is_ok_and(|n| n > 2) {}
            if head.starts_with("GET / ") {
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{root}",
                    root.len()
                );
                let _ = stream.write_all(reply.as_bytes());
            } else {
                held.push(stream);
            }
        }
    });
    addr
}

#[test]
fn a_slow_server_behind_a_proxy_is_the_proxys_timeout() {
    let root = Server::start(&[]).get("/").text();
    let behind = stalling_server(root);
    let backend = format!("http://{behind}/");
    let proxy = Server::start(&["--backend", &backend, "--request-timeout", "500ms"]);
    for _ in 0..4 {
        let reply = proxy.get("/namespace/n");
        assert_eq!(reply.status, 503, "{}", reply.text());
    }
}

/// Runs the server with `args` until it exits (logging errors only): its
/// output, and its stderr as text.
fn run_to_exit(args: &[&str]) -> (std::process::Output, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_coordinated"))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("run coordinated");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stderr)
}

#[test]
fn a_proxy_refuses_to_start_without_a_server_behind_it() {
    let (output, stderr) =
        run_to_exit(&["--http", "127.0.0.1:0", "--backend", "http://127.0.0.1:1/"]);
    assert!(!output.status.success());
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
    // Refused for want of a server there, not as a backend it cannot read;
    // the line says why the connection failed, not only that it did.
    assert!(!stderr.contains("unknown backend"), "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
}

/// Credentials in `--backend` are never written out: not in the line the
/// server logs as it starts serving, nor in the error for a backend it
/// cannot read.
#[test]
fn a_backends_credentials_are_not_logged() {
    let upstream = Server::start(&[]);
    let backend = format!("http://alice:s3cret@{}/", upstream.addr);
    let mut child = Command::new(env!("CARGO_BIN_EXE_coordinated"))
        .args(["--http", "127.0.0.1:0", "--backend", &backend])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start coordinated");
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let serving = stderr
        .lines()
        .map(|line| line.expect("a log line"))
        .find(|line| line.contains("serving"));
    let _ = child.kill();
    let _ = child.wait();
    let serving = serving.expect("the serving line");
    assert!(!serving.contains("s3cret"), "{serving}");
    assert!(
        serving.contains(&format!("backend=http://{}/", upstream.addr)),
        "{serving}"
    );

    let (output, stderr) = run_to_exit(&[
        "--http",
        "127.0.0.1:0",
        "--backend",
        "postgre:password=s3cret",
    ]);
    assert!(!output.status.success());
    assert!(stderr.contains("unknown backend"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

/// A server whose stdout is a pipe nobody reads any more serves anyway:
/// the line saying where it listens is for whoever reads it.
#[test]
fn a_closed_stdout_does_not_stop_the_server() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    // The reader (`true`) is long gone by the time the server writes.
    let script = format!("(sleep 0.5; exec \"$0\" --http 127.0.0.1:{port}) | true",);
    let mut shell = Command::new("sh")
        .args(["-c", &script, env!("CARGO_BIN_EXE_coordinated")])
        .env("RUST_LOG", "off")
        .process_group(0)
        .spawn()
        .expect("start coordinated");
    let addr = ([127, 0, 0, 1], port).into();
    let healthy = support::eventually(std::time::Duration::from_secs(20), || {
        TcpStream::connect(addr)
            .ok()
            .map(|_| support::request(addr, "GET", "/healthz", &[], None).status)
    });
    let group = shell.id().to_string();
    let _ = Command::new("sh")
        .args(["-c", "kill -TERM \"-$0\"", &group])
        .status();
    let _ = shell.wait();
    assert_eq!(healthy, 200);
}

#[test]
fn the_reference_daemons_flag_spellings_start_the_server() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coordinated"))
        .args([
            "-http",
            "127.0.0.1:0",
            "-backend=memory",
            "-metric-period",
            "1m",
        ])
        .args(["-log-requests=false"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start coordinated");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout).read_line(&mut line).expect("a line");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.starts_with("coordinated listening on http://127.0.0.1:"),
        "{line:?}"
    );
}

#[test]
fn the_reference_daemons_flags_this_server_lacks_are_refused_by_name() {
    let (output, stderr) = run_to_exit(&["-http", "127.0.0.1:0", "-cborrpc", ":5932"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.contains("-cborrpc is a flag of the reference daemon"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "nothing served");
}
