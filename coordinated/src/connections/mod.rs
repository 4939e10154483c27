//! Accepting connections and serving requests on them: HTTP/1.1 by hyper,
//! over TLS if asked, at most so many connections open at once,
//! connections that send no request closed after a while (or sooner when a
//! client waits for room), and a graceful shutdown that lets requests in
//! flight finish.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::net::Shutdown;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use axum::response::Response;
use axum::Router;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::server::TlsStream;
use tower::ServiceExt;

mod roster;

pub use roster::{closed_for_room, IDLE_GRACE_AT_THE_BOUND};
use roster::{Room, Roster};

use crate::metrics;
use crate::tls::ServerTls;

/// How connections are served.
#[derive(Debug, Clone)]
pub struct ConnectionOptions {
    /// On shutdown, how long in-flight requests may still run; then, how
    /// long the work abandoned requests leave (see [`serve`]) may take.
    pub shutdown_deadline: Duration,
    /// How long a connection may go without a request in flight: from its
    /// opening, or its last response's last byte written, until the next
    /// request's head has arrived. Then it is closed, so that neither silent clients, nor
    /// clients trickling a head, nor idle keep-alive connections hold it
    /// for ever. A response being written counts as activity each time
    /// more of it goes out: a client that stops reading its answer is
    /// closed after the timeout too. Once a socket is full, the kernel
    /// lets more out only after a good part of what it holds (up to a few
    /// MiB) has been read, not a few bytes at a time; so a client reading a
    /// large answer slower than about a third of that per timeout is
    /// closed as well.
    pub idle_timeout: Duration,
    /// How many connections may be served at once (at least one; default
    /// [`DEFAULT_MAX_CONNECTIONS`]). With that many open, the next client
    /// is accepted but not served, and the ones after it wait in the
    /// listening socket's backlog, until a connection closes or one has
    /// been idle for [`IDLE_GRACE_AT_THE_BOUND`]: then the one idle
    /// longest is closed for it. So clients that hold connections without
    /// using them cannot shut others out, while requests in flight, and
    /// responses still being written however slowly they are read, are
    /// never cut off for a newcomer; and the
    /// server's file descriptors and the memory of the requests it reads
    /// stay bounded, however many clients arrive. Each connection holds one
    /// file descriptor, one more is held by the waiting client, so the
    /// process's open-file limit must be above this bound.
    pub max_connections: usize,
    /// TLS to accept connections with (`https`), or none (`http`). A
    /// client's handshake must end within the idle timeout, counted from
    /// its connection's opening.
    pub tls: Option<ServerTls>,
}

/// The default bound on open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            shutdown_deadline: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            tls: None,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes; then stops
/// accepting and waits up to the shutdown deadline for in-flight requests.
/// Requests still running after it are abandoned as when their clients go
/// away: the attempts made for them are expired, and changes of several
/// calls they started run on to their end. Up to the deadline again is
/// given to that work, and to the same work of requests abandoned before.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: ConnectionOptions,
) -> std::io::Result<()> {
    let http = hyper::server::conn::http1::Builder::new();
    let connections = GracefulShutdown::new();
    let mut running = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let slots = Arc::new(Semaphore::new(
        options.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let roster = Arc::new(Roster::new(IDLE_GRACE_AT_THE_BOUND));
    let (stopping, stop_seen) = watch::channel(false);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // What is written goes out at once, not after the
                    // client acknowledges the last segment: a TLS
                    // handshake's flight and a response's records are
                    // several writes. Not being able to set it only slows.
                    let _ = stream.set_nodelay(true);
                    stream
                }
                Err(e) => {
                    pause_after_accept_error(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => slot,
            // At the bound, this client waits accepted but unserved (the
            // next ones in the backlog) for a connection to close or to
            // sit idle long enough to be closed for it.
            Err(_) => tokio::select! {
                room = roster.room(&slots, &stream) => match room {
                    Room::Made(slot) => slot,
                    Room::Left => continue,
                    Room::Closed => break,
                },
                () = &mut shutdown => break,
            },
        };
        let slot = Open::new(slot);
        let activity = Arc::new(Activity::new());
        let requests = Arc::clone(&activity);
        let stream = Arc::new(stream);
        let member = roster.join(Arc::clone(&activity), Arc::downgrade(&stream));
        let peer = Peer {
            stream: Arc::downgrade(&stream),
            tls: options.tls.is_some(),
        };
        let service = ServiceExt::<Request<Incoming>>::map_request(
            app.clone(),
            move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(peer.clone());
                request
            },
        )
        .map_future(move |response| {
            let busy = requests.busy();
            async move {
                let response: Result<Response, Infallible> = response.await;
                drop(busy);
                response
            }
        });
        let stream = Watched {
            stream,
            activity: Arc::clone(&activity),
        };
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            // Counted even if hyper drops it before its first poll, which
            // the router's own tracking needs.
            let dispatched = metrics::Dispatched::new(&request);
            let service = service.clone();
            async move {
                dispatched.started();
                service.oneshot(request).await
            }
        });
        let http = http.clone();
        let watcher = connections.watcher();
        let tls = options.tls.clone();
        let mut lifetime = Lifetime {
            activity,
            member,
            idle_timeout: options.idle_timeout,
            stop_seen: stop_seen.clone(),
        };
        while running.try_join_next().is_some() {}
        running.spawn(async move {
            let _slot = slot;
            match tls {
                None => {
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    lifetime.serve(watcher.watch(connection)).await;
                }
                Some(tls) => {
                    let Some(stream) = lifetime.handshake(tls.acceptor().accept(stream)).await
                    else {
                        return;
                    };
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    lifetime.serve(watcher.watch(connection)).await;
                }
            }
        });
    }
    stopping.send_replace(true);
    drop(listener);
    let deadline = options.shutdown_deadline;
    tracing::info!("shutting down: draining in-flight requests for up to {deadline:?}");
    if tokio::time::timeout(deadline, connections.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain deadline passed with requests in flight: abandoning them");
        // Dropped while the runtime still runs, so that what they give
        // back on drop is given back.
        running.shutdown().await;
    }
    if tokio::time::timeout(deadline, coordinate::detached::settled())
        .await
        .is_err()
    {
        tracing::warn!("work left by abandoned requests did not end within the deadline");
    }
    Ok(())
}

/// What ends a connection besides its client: idleness, the shutdown, or
/// a waiting client it is closed for.
struct Lifetime {
    activity: Arc<Activity>,
    member: roster::Member,
    idle_timeout: Duration,
    stop_seen: watch::Receiver<bool>,
}

impl Lifetime {
    /// Runs the TLS handshake of `accept`: the secured stream, or none
    /// if it failed, or if the connection was closed first, as one
    /// without a request in flight is (its handshake counts as idle time,
    /// as a request head's arrival does).
    async fn handshake<S>(&mut self, accept: tokio_rustls::Accept<S>) -> Option<TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let idle_timeout = self.idle_timeout;
        tokio::select! {
            biased;
            secured = accept => match secured {
                Ok(stream) => return Some(stream),
                Err(e) => tracing::debug!("TLS handshake failed: {e}"),
            },
            () = self.activity.idle_for(idle_timeout) => {
                tracing::debug!("connection closed after {idle_timeout:?} without finishing its TLS handshake");
            }
            _ = self.stop_seen.wait_for(|&stopping| stopping) => {
                tracing::debug!("connection part way through its TLS handshake closed on shutdown");
            }
            () = self.member.chosen_to_make_room() => {
                tracing::debug!("connection in its TLS handshake closed for a client waiting at the bound");
            }
        }
        None
    }

    /// Serves `connection` until it ends or is closed; dropping it closes
    /// it.
    async fn serve(mut self, connection: impl Future<Output = hyper::Result<()>>) {
        let idle_timeout = self.idle_timeout;
        tokio::select! {
            // The connection first: a request whose head has arrived
            // is then in flight before the shutdown branch looks.
            biased;
            ended = connection => {
                if let Err(e) = ended {
                    tracing::debug!("connection ended: {e}");
                }
            }
            () = self.activity.idle_for(idle_timeout) => {
                tracing::debug!("connection closed after {idle_timeout:?} without a request");
            }
            () = self.activity.heading_at_shutdown(&mut self.stop_seen) => {
                tracing::debug!("connection part way through a request head closed on shutdown");
            }
            () = self.member.chosen_to_make_room() => {
                tracing::debug!("idle connection closed for a client waiting at the bound");
            }
        }
    }
}

/// After a failed `accept`: nothing if the failure was the connecting
/// client's; otherwise (out of file descriptors, say) a second's pause, so
/// that a failure that lasts does not spin.
async fn pause_after_accept_error(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!("accept failed: {e}");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Connections open in this process, over every server it runs.
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// How many connections are open now, over every server in the process:
/// the `http_connections_open` gauge, which `/metrics` sets from it on
/// each render (a gauge only counted up and down would be dropped as idle
/// by the recorder after a quiet spell, then start again from zero).
pub fn open_connections() -> usize {
    OPEN.load(Ordering::Acquire)
}

/// An open connection's slot, given back (and counted out of
/// [`open_connections`]) when it is dropped.
struct Open {
    _permit: OwnedSemaphorePermit,
}

impl Open {
    fn new(permit: OwnedSemaphorePermit) -> Self {
        OPEN.fetch_add(1, Ordering::AcqRel);
        Open { _permit: permit }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether a connection has a request in flight, and since when it has
/// had none. Kept with two atomic writes per request, where a timer per
/// request (hyper's header-read timeout) cost 7 % of the requests a
/// memory-backed server answered.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `opened` when the last request ended or the
    /// last bytes of a response were written.
    idle_since_ms: AtomicU64,
    /// Whether the socket had no room for the last write tried: a response
    /// is still on its way, at the pace its client reads it.
    write_blocked: AtomicBool,
    /// How many reads brought bytes.
    reads: AtomicU64,
    /// Whether bytes arrived since the last request ended (or the
    /// connection opened): with none in flight, a head is arriving. hyper
    /// reads a next head only once the last response is written.
    heard: AtomicBool,
}

impl Activity {
    fn new() -> Self {
        Activity {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            write_blocked: AtomicBool::new(false),
            reads: AtomicU64::new(0),
            heard: AtomicBool::new(false),
        }
    }

    /// Marks a request in flight until the guard is dropped.
    fn busy(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(Arc::clone(self))
    }

    /// Restarts the idle time: a request ended, or a response made
    /// progress.
    fn active_now(&self) {
        let now = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.idle_since_ms.store(now, Ordering::Release);
    }

    /// Some of a response went out. After a wait for room that is the
    /// client's reading: the idle time restarts. (A write that did not
    /// wait follows its request's end, which restarted it already.)
    fn wrote(&self) {
        if self.write_blocked.swap(false, Ordering::AcqRel) {
            self.active_now();
        }
    }

    /// A write found the socket full: the rest of the response waits for
    /// its client to read.
    fn write_waits(&self) {
        self.write_blocked.store(true, Ordering::Release);
    }

    /// How many reads have brought bytes.
    fn reads(&self) -> u64 {
        self.reads.load(Ordering::Acquire)
    }

    /// Whether a response is waiting for its client to read (see
    /// [`write_waits`](Self::write_waits)).
    fn writing(&self) -> bool {
        self.write_blocked.load(Ordering::Acquire)
    }

    /// How long the connection has had no request in flight, nor written
    /// any of a response.
    fn idle(&self) -> Duration {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Duration::ZERO;
        }
        let since = Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire));
        self.opened.elapsed().saturating_sub(since)
    }

    /// Completes once shutdown has begun (`stop_seen` turned true, or its
    /// sender went) while the connection is part way through a request's
    /// head: no request in flight, but bytes heard since the last one
    /// ended. hyper closes a connection waiting between requests when
    /// shutdown begins, and drains one with a request in flight or a
    /// response still being written, but waits out the deadline for a head
    /// that never ends.
    ///
    /// After shutdown has begun this looks again each time it is polled,
    /// registering no waker of its own: it is polled along with its
    /// connection, in the same task, which every read wakes. So a head
    /// that starts arriving only then is caught as well.
    async fn heading_at_shutdown(&self, stop_seen: &mut watch::Receiver<bool>) {
        let _ = stop_seen.wait_for(|&stopping| stopping).await;
        std::future::poll_fn(|_| {
            let heading =
                self.in_flight.load(Ordering::Acquire) == 0 && self.heard.load(Ordering::Acquire);
            if heading {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    /// Completes once the connection has been idle for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let idle = self.idle();
            if idle >= limit {
                return;
            }
            tokio::time::sleep(limit - idle).await;
        }
    }
}

/// A request in flight on a connection.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let activity = &self.0;
        activity.active_now();
        activity.heard.store(false, Ordering::Release);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection's socket, noting its writes: a response still on its way
/// to a client that reads it keeps the connection from being idle, though
/// its request has ended (hyper takes a body whole before it has written
/// it).
///
/// Shared with the connection's [`Peer`], which asks the socket itself
/// whether the client is gone; so it is read and written through its
/// readiness, as a split stream is.
struct Watched {
    stream: Arc<TcpStream>,
    activity: Arc<Activity>,
}

impl Watched {
    /// Writes by `write` once the socket is ready, counting what went out.
    fn written(
        &self,
        cx: &mut Context<'_>,
        write: impl Fn(&TcpStream) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            let Poll::Ready(ready) = self.stream.poll_write_ready(cx) else {
                self.activity.write_waits();
                return Poll::Pending;
            };
            ready?;
            match write(&self.stream) {
                Ok(bytes) => {
                    if bytes > 0 {
                        self.activity.wrote();
                    }
                    return Poll::Ready(Ok(bytes));
                }
                // The readiness was stale; it is cleared, so wait again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.stream.poll_read_ready(cx))?;
            match self.stream.try_read_buf(buf) {
                Ok(read) => {
                    if read > 0 {
                        self.activity.heard.store(true, Ordering::Release);
                        self.activity.reads.fetch_add(1, Ordering::AcqRel);
                    }
                    return Poll::Ready(Ok(()));
                }
                // The readiness was stale; it is cleared, so wait again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.written(cx, |stream| stream.try_write(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.written(cx, |stream| stream.try_write_vectored(bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Writes go straight to the socket.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(SockRef::from(&*self.stream).shutdown(Shutdown::Write))
    }
}

/// A request's view of its connection, given to every request as an
/// extension: whether its client has gone away. It does not keep the
/// connection open.
#[derive(Debug, Clone)]
pub struct Peer {
    stream: Weak<TcpStream>,
    /// Whether the connection is TLS.
    tls: bool,
}

impl Peer {
    /// Whether the client has closed or reset the connection, as the
    /// kernel knows it now. The runtime learns of a hang-up only when its
    /// I/O driver next runs, which a request busy on its thread can hold
    /// off; so this asks the socket. A client that sent more (a pipelined
    /// request) and then closed its sending side counts as still there,
    /// over plain HTTP. Over TLS it is gone: a TLS client closes with a
    /// `close_notify` alert, which stays unread ahead of the hang-up, and
    /// none half-closes while it waits for an answer.
    pub fn has_hung_up(&self) -> bool {
        self.stream.upgrade().map_or(true, |stream| {
            hung_up(&stream) || (self.tls && done_sending(&stream))
        })
    }
}

/// Whether the client of `stream` has closed its sending side (or the
/// connection failed), bytes not read yet or not; where the kernel cannot
/// say so (not Linux), never.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn done_sending(_: &TcpStream) -> bool {
    false
}

/// Whether the client of `stream` has closed its sending side (or the
/// connection failed), bytes not read yet or not.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn done_sending(stream: &TcpStream) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut sockets = [PollFd::new(stream, PollFlags::RDHUP)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(poll(&mut sockets, Some(&now)), Ok(ready) if ready > 0)
        && sockets[0]
            .revents()
            .intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR)
}

/// Whether the client of `stream` has sent bytes not read yet.
fn has_unread_bytes(stream: &TcpStream) -> bool {
    matches!(peek_one(stream), Ok(read) if read > 0)
}

/// Whether the client of `stream` has closed or reset it, as the kernel
/// knows it now; one that sent more than it has been read counts as still
/// there.
fn hung_up(stream: &TcpStream) -> bool {
    match peek_one(stream) {
        Ok(read) => read == 0,
        Err(e) => !matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        ),
    }
}

/// Peeks at the next byte the client of `stream` sent: 0 once it closed.
fn peek_one(stream: &TcpStream) -> io::Result<usize> {
    let mut next = [MaybeUninit::uninit()];
    SockRef::from(stream).peek(&mut next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_time_counts_from_the_last_request_and_not_during_one() {
        // Far more than a pause of a busy machine between two lines.
        let step = Duration::from_millis(200);
        let activity = Arc::new(Activity::new());
        tokio::time::sleep(step).await;
        assert!(activity.idle() >= step);
        let busy = activity.busy();
        tokio::time::sleep(step).await;
        assert_eq!(activity.idle(), Duration::ZERO);
        drop(busy);
        assert!(activity.idle() < step);
        let started = Instant::now();
        activity.idle_for(step).await;
        assert!(started.elapsed() >= step - Duration::from_millis(1));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_response_waiting_for_its_client_to_read_is_on_its_way() {
        use std::io::Read;
        use tokio::io::AsyncWriteExt;
        // Far more than a pause of a busy machine between two lines.
        let step = Duration::from_millis(200);
        let (client, server) = connected().await;
        let activity = Arc::new(Activity::new());
        let mut watched = Watched {
            stream: server,
            activity: Arc::clone(&activity),
        };
        let chunk = vec![0; 1 << 20];
        watched.write_all(&chunk[..1]).await.unwrap();
        assert!(!activity.writing());
        // The client reads nothing: the sockets fill, and a write waits.
        while tokio::time::timeout(step, watched.write(&chunk))
            .await
            .is_ok()
        {}
        assert!(activity.writing());
        tokio::time::sleep(step).await;
        assert!(activity.idle() >= step);

        let reader = std::thread::spawn(move || {
            let mut client = client;
            let mut buffer = vec![0; 1 << 20];
            while client.read(&mut buffer).unwrap() > 0 {}
        });
        watched.write_all(&chunk).await.unwrap();
        assert!(!activity.writing());
        assert!(activity.idle() < step);
        drop(watched);
        reader.join().unwrap();
    }

    #[test]
    fn a_head_begun_after_shutdown_began_is_seen_at_the_next_poll() {
        use futures::FutureExt;
        let activity = Activity::new();
        let (stopping, mut stop_seen) = watch::channel(false);
        stopping.send_replace(true);
        let mut heading = Box::pin(activity.heading_at_shutdown(&mut stop_seen));
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        assert!(heading.poll_unpin(&mut cx).is_pending());
        // The connection's read of the head's first bytes, then its task
        // polls the connection and this again.
        activity.heard.store(true, Ordering::Release);
        assert!(heading.poll_unpin(&mut cx).is_ready());
    }

    /// A client connected to a fresh listener, and the server's end.
    async fn connected() -> (std::net::TcpStream, Arc<TcpStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, Arc::new(server))
    }

    /// Whether `peer` is seen gone within a second (the kernel has a
    /// loopback hang-up at once; the margin is for a loaded machine).
    async fn seen_gone(peer: &Peer) -> bool {
        for _ in 0..100 {
            if peer.has_hung_up() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test]
    async fn a_peer_is_gone_once_its_client_closes_or_its_connection_ends() {
        use std::io::Write;
        let (client, server) = connected().await;
        let peer = Peer {
            stream: Arc::downgrade(&server),
            tls: false,
        };
        assert!(!peer.has_hung_up());
        drop(client);
        assert!(seen_gone(&peer).await);

        // Unread bytes are a client still talking, even after it closed;
        // over TLS, they are its `close_notify`.
        let (mut client, server) = connected().await;
        let peer = Peer {
            stream: Arc::downgrade(&server),
            tls: false,
        };
        let tls_peer = Peer {
            tls: true,
            ..peer.clone()
        };
        client.write_all(b"GET").unwrap();
        drop(client);
        if cfg!(any(target_os = "linux", target_os = "android")) {
            assert!(seen_gone(&tls_peer).await);
        }
        assert!(!seen_gone(&peer).await);

        drop(server);
        assert!(peer.has_hung_up());
    }
}
