//! The admin routes (`/api/*`), server side: answered to loopback peers only, whatever address
//! the endpoint listens on. The client side is [`crate::admin`].

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{AppState, json, text};
use crate::admin::{ClientEntry, ClientList, Pairing};
use crate::io::Snapshot;

/// Longest pairing window the API opens (a day).
const MAX_PAIRING: u64 = 24 * 3600;

/// Pairing window when the request names none.
const DEFAULT_PAIRING: u64 = 120;

/// Whether `peer` may use the admin routes: loopback only (IPv4-mapped `::ffff:127.0.0.1`
/// included).
pub(crate) fn is_admin_peer(peer: SocketAddr) -> bool {
    peer.ip().to_canonical().is_loopback()
}

/// 403 for peers that are not on loopback.
fn refuse(peer: SocketAddr) -> Option<Response> {
    (!is_admin_peer(peer)).then(|| {
        text(
            StatusCode::FORBIDDEN,
            "the admin API answers loopback peers only; run the command on the gateway host\n",
        )
    })
}

/// The [`ClientList`] of a snapshot.
pub(crate) fn client_list(s: &Snapshot) -> ClientList {
    ClientList {
        upstream_up: s.upstream_up,
        pairing_secs: s
            .pairing
            .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0)),
        clients: s
            .clients
            .iter()
            .map(|c| ClientEntry {
                client_id: c.client_id.clone(),
                state: c.state.to_owned(),
                address: c.peer.to_string(),
                last_seen_secs: s.now.saturating_duration_since(c.last_seen).as_secs(),
                rx: c.rx,
                tx: c.tx,
                queued: c.queued as u64,
            })
            .collect(),
    }
}

/// `GET /api/clients`.
pub(super) async fn clients(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    if let Some(r) = refuse(peer) {
        return r;
    }
    match st.handle.snapshot().await {
        Some(s) => json(&client_list(&s)),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "the gateway is stopping\n"),
    }
}

/// The `seconds` parameter of the query string (default [`DEFAULT_PAIRING`]).
fn seconds_param(query: Option<&str>) -> Result<u64, String> {
    let value = query
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("seconds="));
    let Some(v) = value else {
        return Ok(DEFAULT_PAIRING);
    };
    match v.parse::<u64>() {
        Ok(n) if (1..=MAX_PAIRING).contains(&n) => Ok(n),
        _ => Err(format!(
            "seconds={v:?}: expected a whole number of seconds, 1..={MAX_PAIRING}\n"
        )),
    }
}

/// 409 Conflict, with the reason on one line, when the registry file pairing appends to cannot
/// be written (read-only or full file system, permissions): a mote paired then would not be
/// saved. The request is fine and the gateway is healthy; the state of the file is what
/// conflicts, and the operator has to change it. `None` when it can be written or no file is
/// configured. The check writes and flushes a test file, so it runs on a blocking thread.
async fn unwritable_registry(registry: Option<&Path>, peer: SocketAddr) -> Option<Response> {
    let path = registry?;
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let checked =
        tokio::task::spawn_blocking(move || crate::config::registry::check_writable(&path)).await;
    let reason = match checked {
        Ok(Ok(())) => return None,
        Ok(Err(e)) => e.to_string(),
        Err(e) => format!("the check of the registry file did not finish: {e}"),
    };
    tracing::warn!(%peer, reason, "pairing refused: the registry file cannot be written");
    Some(text(
        StatusCode::CONFLICT,
        &format!("pairing refused: {}\n", reason.replace('\n', " ")),
    ))
}

/// `POST /api/pairing?seconds=N`.
pub(super) async fn pairing(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(r) = refuse(peer) {
        return r;
    }
    let secs = match seconds_param(query.as_deref()) {
        Ok(n) => n,
        Err(reason) => return text(StatusCode::BAD_REQUEST, &reason),
    };
    if let Some(r) = unwritable_registry(st.registry.as_deref(), peer).await {
        return r;
    }
    match st.handle.open_pairing(Duration::from_secs(secs)).await {
        Some(left) => {
            // Round up: a window of 119.999 s is announced as 120 s.
            let seconds = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            tracing::info!(%peer, seconds, "pairing window opened through the admin API");
            json(&Pairing {
                seconds,
                registry: st.registry.as_ref().map(|p| {
                    std::path::absolute(p)
                        .unwrap_or_else(|_| p.clone())
                        .display()
                        .to_string()
                }),
            })
        }
        None => text(StatusCode::SERVICE_UNAVAILABLE, "the gateway is stopping\n"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn only_loopback_peers_may_administer() {
        let ok = |s: &str| is_admin_peer(s.parse().unwrap());
        assert!(ok("127.0.0.1:5000"));
        assert!(ok("127.8.9.10:5000"));
        assert!(ok("[::1]:5000"));
        assert!(ok("[::ffff:127.0.0.1]:5000"));
        assert!(!ok("192.168.4.20:5000"));
        assert!(!ok("10.0.0.1:5000"));
        assert!(!ok("[fe80::1]:5000"));
        assert!(!ok("[::ffff:192.168.1.1]:5000"));
        assert!(!ok("0.0.0.0:5000"));
    }

    #[test]
    fn the_seconds_parameter_is_checked() {
        assert_eq!(seconds_param(None), Ok(DEFAULT_PAIRING));
        assert_eq!(seconds_param(Some("seconds=90")), Ok(90));
        assert_eq!(seconds_param(Some("x=1&seconds=5")), Ok(5));
        assert!(seconds_param(Some("seconds=0")).is_err());
        assert!(seconds_param(Some("seconds=-1")).is_err());
        assert!(seconds_param(Some("seconds=2m")).is_err());
        assert!(seconds_param(Some("seconds=86401")).is_err());
    }
}
