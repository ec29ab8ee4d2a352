//! The local HTTP endpoint (`[http] listen`): Prometheus metrics, health, a status page and
//! the admin API used by `mqtt-sn-gateway pair` and `mqtt-sn-gateway clients`.
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /metrics` | Prometheus text format 0.0.4 ([`metrics`]) |
//! | `GET /healthz` | `200 ok` while the broker is reachable, else `503` with the reason |
//! | `GET /` | HTML status page ([`status`]) |
//! | `GET /api/clients` | JSON [`crate::admin_client::ClientList`] (admin request, see below) |
//! | `POST /api/pairing?seconds=N` | opens the pairing window; JSON [`crate::admin_client::Pairing`] (admin request) |
//!
//! An admin request (`/api/*`) must come from a loopback peer and carry the header
//! `X-MQTT-SN-Admin: 1` ([`crate::admin_client::ADMIN_HEADER`]); one with `Sec-Fetch-Site` other than
//! `same-origin` or `none`, an `Origin` other than the endpoint itself, or a `Host` that is a
//! name other than `localhost` is refused too: `403` with a one-line reason. Together these
//! keep web pages in a local browser out (cross-site forms, DNS rebinding).
//!
//! Every answer is built from one [`crate::io::Status`] (`/metrics`, `/healthz`: no client
//! list, so polling them stays cheap however many clients there are) or one
//! [`crate::io::Snapshot`] (the status page and `/api/clients`) asked from the drive loop.
//!
//! Connections are bounded ([`server`]): at most [`MAX_CONNECTIONS`] at once (more are
//! answered `503` and closed), a complete request head within [`HEADER_READ_TIMEOUT`] of the
//! accept or of the previous answer, and at most [`CONNECTION_LIFETIME`] per connection.

pub(crate) mod admin;
pub(crate) mod metrics;
pub(crate) mod server;
pub(crate) mod status;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

use super::GatewayHandle;

/// HTTP connections served at once. A connection beyond it is answered `503` (when the
/// answer can be written without waiting) and closed at once, so the endpoint holds at most
/// this many connections' descriptors, plus its listener and the one it is refusing.
pub const MAX_CONNECTIONS: usize = 64;

/// Time a connection has to send a complete request head, counted from its accept and again
/// from each answer: a slower client (a half-open connection) or an idle keep-alive
/// connection is closed when it runs out.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest life of one connection, however busy: then it is closed after the request in
/// progress (and cut [`CLOSE_GRACE`] later if that request does not finish).
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// Time a connection asked to close (its lifetime is over, or the gateway is stopping) gets
/// to finish its request in progress.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Largest request head buffered; hyper answers `431` beyond it. The endpoint's requests are
/// a few hundred bytes.
const MAX_REQUEST_BUFFER: usize = 64 * 1024;

/// The production bounds.
const LIMITS: server::Limits = server::Limits {
    max_connections: MAX_CONNECTIONS,
    header_read: HEADER_READ_TIMEOUT,
    lifetime: CONNECTION_LIFETIME,
    close_grace: CLOSE_GRACE,
    max_buffer: MAX_REQUEST_BUFFER,
};

/// The HTTP endpoint could not listen.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for HTTP on {addr}: {source}")]
pub struct HttpBindError {
    /// The configured address.
    pub addr: SocketAddr,
    /// What the OS said.
    #[source]
    pub source: std::io::Error,
}

/// What every handler gets.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    /// The running gateway.
    pub(crate) handle: GatewayHandle,
    /// The registry file paired clients are appended to.
    pub(crate) registry: Option<PathBuf>,
    /// GwId, for the page title.
    pub(crate) gateway_id: u8,
}

/// A plain-text answer.
pub(crate) fn text(status: StatusCode, body: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.to_owned(),
    )
        .into_response()
}

/// A JSON answer.
pub(crate) fn json<T: serde::Serialize>(value: &T) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e}\n")),
    }
}

fn stopping() -> Response {
    text(StatusCode::SERVICE_UNAVAILABLE, "the gateway is stopping\n")
}

async fn metrics_route(State(st): State<AppState>) -> Response {
    match st.handle.status().await {
        Some(s) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
            metrics::render(&s),
        )
            .into_response(),
        None => stopping(),
    }
}

async fn healthz(State(st): State<AppState>) -> Response {
    let Some(s) = st.handle.status().await else {
        return stopping();
    };
    let mut notes = String::new();
    if s.storage.as_ref().is_some_and(|st| st.failing) {
        notes.push_str(
            "\nwarning: the state database cannot be written (disk full or read-only?): \
             sessions and custody changed since will not survive a restart",
        );
    }
    let g = &s.gauges;
    if g.custody_messages > 0 {
        notes.push_str(&format!(
            "\ncustody: {} messages ({} octets) waiting for the broker, the oldest for {} s",
            g.custody_messages,
            g.custody_bytes,
            g.custody_oldest.as_secs()
        ));
    }
    if s.upstream_up {
        text(StatusCode::OK, &format!("ok{notes}\n"))
    } else {
        let why = s
            .upstream
            .explain(s.upstream_mode, std::time::SystemTime::now());
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("unready: {why}{notes}\n"),
        )
    }
}

async fn status_page(State(st): State<AppState>) -> Response {
    match st.handle.snapshot().await {
        Some(s) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            status::render(&s, st.gateway_id),
        )
            .into_response(),
        None => stopping(),
    }
}

async fn not_found() -> Response {
    text(
        StatusCode::NOT_FOUND,
        "not found; try /, /metrics, /healthz or /api/clients\n",
    )
}

/// The routes; [`admin::guard`] stands in front of every `/api/*` route.
fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/clients", get(admin::clients))
        .route("/api/pairing", post(admin::pairing))
        .route_layer(axum::middleware::from_fn(admin::guard));
    Router::new()
        .route("/", get(status_page))
        .route("/metrics", get(metrics_route))
        .route("/healthz", get(healthz))
        .merge(api)
        .fallback(not_found)
        .with_state(state)
}

/// Binds `addr` and serves the endpoint until `shutdown` fires (connections are then closed
/// after their request in progress); returns the bound address (so port 0 works).
pub(crate) async fn start(
    addr: SocketAddr,
    state: AppState,
    shutdown: CancellationToken,
) -> Result<SocketAddr, HttpBindError> {
    let bind_err = |source| HttpBindError { addr, source };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(bind_err)?;
    let local = listener.local_addr().map_err(bind_err)?;
    tokio::spawn(server::serve(listener, router(state), LIMITS, shutdown));
    tracing::info!(addr = %local, "HTTP endpoint: /metrics, /healthz, status page, admin API");
    Ok(local)
}
