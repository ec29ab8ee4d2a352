//! The accept loop of the HTTP endpoint: HTTP/1.1 (hyper) with the axum router as the
//! service, and the bounds that keep a slow or hostile client from starving the endpoint or
//! the process's file descriptors.
//!
//! - At most [`Limits::max_connections`] connections are served at once; a connection beyond
//!   that is accepted, answered `503` if the answer fits the socket buffer at once, and closed.
//! - A connection must deliver a complete request head within [`Limits::header_read`] of being
//!   accepted and of its previous answer; otherwise it is closed. This bounds half-open
//!   connections (slowloris) and idle keep-alive connections alike.
//! - A connection lives at most [`Limits::lifetime`]; then it is asked to close after the
//!   request in progress and cut [`Limits::close_grace`] later (a client that never reads its
//!   answer, or trickles a request body, cannot hold a slot for longer).
//!
//! Handlers see the peer address as `ConnectInfo<SocketAddr>`, as with axum's
//! `into_make_service_with_connect_info::<SocketAddr>`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::io::fd_limit;
use crate::io::throttle::Throttle;

/// The bounds of the endpoint's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Connections served at once; more are closed on arrival.
    pub(crate) max_connections: usize,
    /// Time for a complete request head, from the accept and from each answer.
    pub(crate) header_read: Duration,
    /// Longest life of a connection before it is asked to close.
    pub(crate) lifetime: Duration,
    /// Time a connection asked to close (lifetime over, or shutdown) gets before it is cut.
    pub(crate) close_grace: Duration,
    /// Largest buffered request head (hyper answers `431` beyond it).
    pub(crate) max_buffer: usize,
}

/// Warnings about refused connections: at most one a minute.
static BUSY_WARNING: Throttle = Throttle::new(Duration::from_secs(60));

/// Warnings about failing accepts: at most one a minute.
static ACCEPT_WARNING: Throttle = Throttle::new(Duration::from_secs(60));

/// Pause after an accept error that is not about one connection (out of file descriptors),
/// so the loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(200);

/// Serves `app` on `listener` within `limits` until `shutdown` fires; then stops accepting and
/// closes every connection after its request in progress (cut after `limits.close_grace`).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let app = TowerToHyperService::new(app);
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                if !is_per_connection(&e) {
                    if fd_limit::is_exhausted(&e) {
                        fd_limit::warn_exhausted("accepting an HTTP connection", &e);
                    } else if let Some(held_back) = ACCEPT_WARNING.ready() {
                        tracing::warn!(
                            error = %e,
                            similar_failures_since_last_warning = held_back,
                            "HTTP endpoint: accepting a connection failed; retrying"
                        );
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    }
                }
                continue;
            }
        };
        match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                tokio::spawn(connection(
                    stream,
                    peer,
                    app.clone(),
                    limits,
                    shutdown.clone(),
                    slot,
                ));
            }
            Err(_) => refuse_busy(stream, peer, limits.max_connections),
        }
    }
    tracing::debug!("HTTP endpoint stopped accepting");
}

/// Accept errors that concern one connection only (it was gone before it was accepted).
fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted, WouldBlock};
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    )
}

/// Closes a connection beyond the cap, with a `503` if it can be written without waiting.
fn refuse_busy(stream: TcpStream, peer: SocketAddr, max: usize) {
    let body = format!(
        "the gateway's HTTP endpoint is serving its maximum of {max} connections; try again \
         in a few seconds\n"
    );
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nretry-after: 5\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    // Best effort: a fresh socket's send buffer takes it whole; nothing waits on this client.
    let _ = stream.try_write(answer.as_bytes());
    drop(stream);
    if let Some(suppressed) = BUSY_WARNING.ready() {
        tracing::warn!(
            %peer,
            max_connections = max,
            refused_since_last_warning = suppressed,
            "HTTP endpoint: connection limit reached; closing new connections until some end \
             (slow or idle clients are cut after the header timeout)"
        );
    }
}

/// Serves one connection within `limits`; `_slot` is released when it ends.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: TowerToHyperService<Router>,
    limits: Limits,
    shutdown: CancellationToken,
    _slot: OwnedSemaphorePermit,
) {
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        app.call(req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .max_buf_size(limits.max_buffer);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let why = tokio::select! {
        result = conn.as_mut() => {
            log_end(peer, result);
            return;
        }
        () = tokio::time::sleep(limits.lifetime) => "its lifetime is over",
        () = shutdown.cancelled() => "the gateway is stopping",
    };
    tracing::debug!(%peer, why, "HTTP connection asked to close");
    conn.as_mut().graceful_shutdown();
    match tokio::time::timeout(limits.close_grace, conn).await {
        Ok(result) => log_end(peer, result),
        Err(_) => tracing::debug!(%peer, why, "HTTP connection cut after the close grace"),
    }
}

fn log_end(peer: SocketAddr, result: Result<(), hyper::Error>) {
    match result {
        Ok(()) => tracing::trace!(%peer, "HTTP connection closed"),
        // Timeouts, resets and malformed requests: the client's doing, not worth more.
        Err(e) => tracing::debug!(%peer, error = %e, "HTTP connection ended"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const SHORT: Limits = Limits {
        max_connections: 3,
        header_read: Duration::from_millis(400),
        lifetime: Duration::from_secs(30),
        close_grace: Duration::from_millis(500),
        max_buffer: 16 * 1024,
    };

    /// A server on a free loopback port with a route that tells the peer address.
    async fn server(limits: Limits) -> (SocketAddr, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        );
        let shutdown = CancellationToken::new();
        tokio::spawn(serve(listener, app, limits, shutdown.clone()));
        (addr, shutdown)
    }

    /// Reads one answer to `GET /peer` on `s` (its body is short and comes in one piece).
    async fn ask(s: &mut TcpStream) -> String {
        s.write_all(b"GET /peer HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 2048];
        let mut got = Vec::new();
        loop {
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                .await
                .expect("an answer")
                .unwrap();
            assert!(n > 0, "closed before the answer");
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).into_owned();
            if text.ends_with(&s.local_addr().unwrap().to_string()) {
                return text;
            }
        }
    }

    /// Whether the server closes `s` within `limit` (EOF or reset), reading what comes.
    async fn closes_within(s: &mut TcpStream, limit: Duration) -> bool {
        let mut buf = [0u8; 1024];
        tokio::time::timeout(limit, async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .is_ok()
    }

    #[tokio::test]
    async fn handlers_see_the_peer_address() {
        let (addr, _stop) = server(SHORT).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        let answer = ask(&mut s).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        // Keep-alive: a second request on the same connection.
        assert!(ask(&mut s).await.starts_with("HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn the_cap_holds_and_slots_come_back_after_the_header_timeout() {
        let limits = Limits {
            header_read: Duration::from_secs(2),
            ..SHORT
        };
        let (addr, _stop) = server(limits).await;
        // Each of these holds a slot: answered once (so surely accepted), then silent.
        let mut held = Vec::new();
        for _ in 0..limits.max_connections {
            let mut s = TcpStream::connect(addr).await.unwrap();
            assert!(ask(&mut s).await.starts_with("HTTP/1.1 200"));
            held.push(s);
        }
        let mut beyond = TcpStream::connect(addr).await.unwrap();
        let mut answer = String::new();
        tokio::time::timeout(limits.header_read / 2, beyond.read_to_string(&mut answer))
            .await
            .expect("a connection beyond the cap is closed at once")
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("maximum of 3 connections"), "{answer}");
        for s in &mut held {
            assert!(closes_within(s, limits.header_read * 3).await);
        }
        let mut s = TcpStream::connect(addr).await.unwrap();
        assert!(ask(&mut s).await.starts_with("HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
        let (addr, _stop) = server(SHORT).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        assert!(ask(&mut s).await.starts_with("HTTP/1.1 200"));
        assert!(closes_within(&mut s, SHORT.header_read * 5).await);
    }

    #[tokio::test]
    async fn a_busy_connection_is_closed_at_the_end_of_its_lifetime() {
        let limits = Limits {
            header_read: Duration::from_secs(5),
            lifetime: Duration::from_millis(600),
            ..SHORT
        };
        let (addr, _stop) = server(limits).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        let started = tokio::time::Instant::now();
        let mut answered = 0;
        // A request every 100 ms keeps the connection from ever being idle.
        let closed = loop {
            if s.write_all(b"GET /peer HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .await
                .is_err()
            {
                break true;
            }
            let mut buf = [0u8; 1024];
            match tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => break true,
                Ok(Ok(_)) => answered += 1,
                Err(_) => break false,
            }
            if started.elapsed() > Duration::from_secs(5) {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(closed, "the connection outlived its lifetime");
        assert!(answered >= 2, "answered {answered} requests first");
    }

    #[tokio::test]
    async fn shutdown_closes_connections_and_stops_accepting() {
        let (addr, stop) = server(SHORT).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        assert!(ask(&mut s).await.starts_with("HTTP/1.1 200"));
        stop.cancel();
        assert!(closes_within(&mut s, Duration::from_secs(2)).await);
        // The listener is gone once the loop has ended.
        let refused = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                if TcpStream::connect(addr).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(refused.is_ok(), "still accepting after shutdown");
    }
}
