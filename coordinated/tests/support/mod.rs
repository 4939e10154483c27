//! Test support: the real `coordinated` binary on an ephemeral loopback
//! port (or its router inside the test process), a raw HTTP/1.1 client that
//! shows exactly what went over the wire, and databases on the crate's
//! throwaway PostgreSQL cluster.

#![allow(dead_code)] // each test binary uses its own part of this module

pub mod in_process;
pub mod plain;
pub mod postgres;
pub mod tls;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `coordinated` process, killed when dropped.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Server {
    /// Starts the binary with these extra flags and waits until it listens.
    pub fn start(args: &[&str]) -> Server {
        Self::start_with_env(args, &[])
    }

    /// [`start`](Self::start), with these environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_coordinated"))
            .args(["--http", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start coordinated");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let addr = line
            .trim()
            .rsplit("://")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Server { child, addr }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends the signal `name` (`HUP`, say), through the shell's `kill`
    /// built-in: a minimal system may lack the `kill` program.
    pub fn signal(&self, name: &str) {
        let status = Command::new("sh")
            .args(["-c", "kill -s \"$0\" \"$1\"", name, &self.pid().to_string()])
            .status()
            .expect("run sh");
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "coordinated did not exit in {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A request with no extra headers and no body.
    pub fn get(&self, path: &str) -> Reply {
        request(self.addr, "GET", path, &[], None)
    }

    /// A JSON request of `method` with `body`.
    pub fn send_json(&self, method: &str, path: &str, body: &str) -> Reply {
        request(
            self.addr,
            method,
            path,
            &[("Content-Type", "application/vnd.diffeo.coordinate.v1+json")],
            Some(body),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A response as received.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Header names (lower-cased) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    /// The error code of an error document.
    pub fn error_code(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

/// Sends one request on a fresh connection (`Connection: close`) and reads
/// the whole response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let raw = format_request(addr, method, path, headers, body, "close");
    exchange(addr, raw.as_bytes())
}

/// The bytes of one request, with `Connection: {connection}`.
fn format_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    connection: &str,
) -> String {
    let mut raw =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: {connection}\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("\r\n");
    raw.push_str(body.unwrap_or(""));
    raw
}

/// One keep-alive connection: requests one after another on the same
/// socket, as a polling client or a connection pool sends them.
pub struct Connection {
    addr: SocketAddr,
    stream: TcpStream,
    /// Bytes read beyond the last response.
    pending: Vec<u8>,
}

impl Connection {
    /// Connects to `addr`, with Nagle's algorithm off so that a request
    /// leaves at once.
    pub fn open(addr: SocketAddr) -> Connection {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        Connection {
            addr,
            stream,
            pending: Vec::new(),
        }
    }

    /// A request with no extra headers and no body.
    pub fn get(&mut self, path: &str) -> Reply {
        self.send("GET", path, &[], None)
    }

    /// A JSON request of `method` with `body`.
    pub fn send_json(&mut self, method: &str, path: &str, body: &str) -> Reply {
        self.send(
            method,
            path,
            &[("Content-Type", "application/vnd.diffeo.coordinate.v1+json")],
            Some(body),
        )
    }

    /// Sends one request and reads its response, which must carry a
    /// `Content-Length` (unless it has no body) and leave the connection
    /// open.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        let raw = format_request(self.addr, method, path, headers, body, "keep-alive");
        self.stream
            .write_all(raw.as_bytes())
            .expect("write request");
        self.read_response(method, path)
    }

    /// [`send`](Self::send), writing the body `pause` after the head, as
    /// a client that writes them separately may.
    pub fn send_body_after(
        &mut self,
        pause: Duration,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let raw = format_request(self.addr, method, path, headers, Some(body), "keep-alive");
        let (head, body) = raw.split_at(raw.len() - body.len());
        self.stream.write_all(head.as_bytes()).expect("write head");
        std::thread::sleep(pause);
        self.stream.write_all(body.as_bytes()).expect("write body");
        self.read_response(method, path)
    }

    /// Reads the response to `method` on `path`.
    fn read_response(&mut self, method: &str, path: &str) -> Reply {
        let head_end = self.read_until(find_head_end);
        let head = parse_reply(&self.pending[..head_end + 4]);
        assert!(
            head.header("transfer-encoding").is_none(),
            "chunked response to {method} {path}"
        );
        assert_ne!(head.header("connection"), Some("close"), "{method} {path}");
        let length: usize = match head.status {
            204 | 304 => 0,
            _ => head
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no Content-Length for {method} {path}")),
        };
        let end = head_end + 4 + length;
        self.read_until(|bytes| (bytes.len() >= end).then_some(end));
        let reply = parse_reply(&self.pending[..end]);
        self.pending.drain(..end);
        reply
    }

    /// Reads until `done` finds what it needs in the bytes read so far.
    fn read_until(&mut self, done: impl Fn(&[u8]) -> Option<usize>) -> usize {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(found) = done(&self.pending) {
                return found;
            }
            let n = self.stream.read(&mut chunk).expect("read response");
            assert!(n > 0, "server closed a keep-alive connection");
            self.pending.extend_from_slice(&chunk[..n]);
        }
    }
}

fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Writes raw bytes on a fresh connection and reads the response until the
/// server closes it.
pub fn exchange(addr: SocketAddr, raw: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.write_all(raw).expect("write request");
    read_reply(&mut stream)
}

/// Reads one response from a stream the server closes after it.
pub fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).expect("read response");
    parse_reply(&bytes)
}

fn parse_reply(bytes: &[u8]) -> Reply {
    let split = find_head_end(bytes)
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(bytes)));
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: bytes[split + 4..].to_vec(),
    }
}

/// The value of an unlabelled metric in a Prometheus text exposition.
pub fn metric(exposition: &str, name: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// A memory backend holding `units` (with empty data) of spec `s` in
/// namespace `n`.
pub async fn memory_with_units(units: &[&str]) -> coordinate::memory::MemoryBackend {
    let memory = coordinate::memory::MemoryBackend::new();
    add_units(&memory, units).await;
    memory
}

/// Adds `units` (with empty data) to spec `s` of namespace `n` of
/// `memory`, making the spec if needed.
pub async fn add_units(memory: &coordinate::memory::MemoryBackend, units: &[&str]) {
    use coordinate::{data, Backend, WorkUnitMeta};
    let spec = memory
        .namespace("n")
        .await
        .unwrap()
        .set_work_spec(data!({"name": "s"}))
        .await
        .unwrap();
    for name in units {
        spec.add_work_unit(name, data!({}), WorkUnitMeta::default())
            .await
            .unwrap();
    }
}

/// A connection to `addr` whose reads give up after ten seconds.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
}

/// Polls `probe` every few milliseconds until it answers `Some`, at most
/// `limit`.
pub fn eventually<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
