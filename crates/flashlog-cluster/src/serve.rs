//! The node's accept loop: axum's router served by hyper's HTTP/1.1 connections,
//! each with a deadline on a request's headers (by default
//! [`HEADER_READ_TIMEOUT`]: a client that opens a connection and never finishes a
//! request, or leaves it idle that long between requests, is disconnected), shut
//! down gracefully on request.
//! (`axum::serve` gives hyper no timer, so hyper's header deadline never fires.)
//! Bodies have their own deadline: see `http::read_body`.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

/// The default time a connection may take to send a request's headers, counted
/// from when the server starts waiting for them (so also an idle keep-alive
/// connection's life). The nodes' HTTP clients drop idle connections sooner (see
/// [`crate::transport::POOL_IDLE_TIMEOUT`]).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `stop` completes, then stops accepting and
/// waits for the connections' requests under way to finish, with no deadline of
/// its own: the caller bounds the wait (`RunningNode::shutdown` gives it 5 s). A connection that
/// takes longer than `header_timeout` to send a request's headers is closed.
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    header_timeout: Duration,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
{
    let graceful = GracefulShutdown::new();
    // One configuration for every connection (`serve_connection` copies it).
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let mut stop = std::pin::pin!(stop);
    loop {
        let (io, _) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let connection =
            builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
