//! `coordinated`'s router served inside the test process.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Serves `app` on an ephemeral loopback port until the returned sender is
/// dropped; answers its base URL (`http://127.0.0.1:{port}`, no slash).
pub async fn serve(app: axum::Router) -> (String, oneshot::Sender<()>) {
    let options = coordinated::ConnectionOptions {
        shutdown_deadline: Duration::from_secs(5),
        ..Default::default()
    };
    serve_with(app, options).await
}

/// [`serve`] with these options: the base URL is `https://…` if they
/// have TLS.
pub async fn serve_with(
    app: axum::Router,
    options: coordinated::ConnectionOptions,
) -> (String, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("cannot listen on 127.0.0.1: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("no local address: {e}"));
    let scheme = if options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(e) = coordinated::serve(listener, app, shutdown, options).await {
            panic!("server failed: {e}");
        }
    });
    (format!("{scheme}://{addr}"), stop)
}
