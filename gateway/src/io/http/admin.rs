//! The admin routes (`/api/*`), server side. [`guard`] stands in front of every one of them:
//! it answers loopback peers only, whatever address the endpoint listens on, and refuses what
//! a web page in a local browser could send (see [`admit`]). The client side is
//! [`crate::admin_client`].

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use axum::extract::{ConnectInfo, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::{AppState, json, text};
use crate::admin_client::{ADMIN_HEADER, ClientEntry, ClientList, Pairing};
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

/// Whether a request from `peer` with `headers` may use the admin routes; else the one-line
/// reason of the refusal.
///
/// Besides the loopback peer, the request must not come from a web page: a browser on the
/// gateway host is a loopback peer too, and a page of any site could make it send requests.
/// So the request must carry [`ADMIN_HEADER`]` = 1` (a page cannot add a custom header to a
/// request to another origin without a CORS preflight, which the endpoint never grants); its
/// `Sec-Fetch-Site`, when present, must be `same-origin` or `none`; its `Origin`, when
/// present, must be the endpoint itself; and its `Host` must be an IP address or `localhost`
/// (a page whose host name was re-pointed at 127.0.0.1, DNS rebinding, counts as same-origin
/// to the browser and sends its own name).
pub(crate) fn admit(peer: SocketAddr, headers: &HeaderMap) -> Result<(), String> {
    if !is_admin_peer(peer) {
        return Err(
            "the admin API answers loopback peers only; run the command on the gateway host".into(),
        );
    }
    let value = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
    };
    if let Some(site) = value("sec-fetch-site")
        && !(site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none"))
    {
        return Err(format!(
            "the admin API refuses requests from web pages of other sites (Sec-Fetch-Site: \
             {site:.40})"
        ));
    }
    let host = value(header::HOST.as_str());
    if let Some(host) = &host
        && !by_address(host)
    {
        return Err(format!(
            "the admin API is reached by IP address or localhost, not by the name in Host: \
             {host:.80}"
        ));
    }
    if let Some(origin) = value(header::ORIGIN.as_str()) {
        let own = host.as_ref().map(|h| format!("http://{h}"));
        if !own.is_some_and(|own| own.eq_ignore_ascii_case(&origin)) {
            return Err(format!(
                "the admin API refuses requests from web pages of other origins (Origin: \
                 {origin:.80})"
            ));
        }
    }
    if value(ADMIN_HEADER).as_deref() != Some("1") {
        return Err(format!(
            "the admin API needs the request header {ADMIN_HEADER}: 1 (the `pair` and \
             `clients` commands send it)"
        ));
    }
    Ok(())
}

/// Whether a `Host` header names an IP address or `localhost` (port optional).
fn by_address(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // "[v6]" or "[v6]:port"
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok()
}

/// In front of every `/api/*` route: `403` with the reason of [`admit`] for a request it
/// refuses.
pub(super) async fn guard(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    match admit(peer, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(reason) => {
            tracing::debug!(%peer, %reason, "admin request refused");
            text(StatusCode::FORBIDDEN, &format!("{reason}\n"))
        }
    }
}

/// The [`ClientList`] of a snapshot.
pub(crate) fn client_list(snapshot: &Snapshot) -> ClientList {
    let s = &snapshot.status;
    ClientList {
        upstream_up: s.upstream_up,
        pairing_secs: s
            .pairing
            .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0)),
        clients: snapshot
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

/// `GET /api/clients` (behind [`guard`]).
pub(super) async fn clients(State(st): State<AppState>) -> Response {
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

/// `POST /api/pairing?seconds=N` (behind [`guard`]).
pub(super) async fn pairing(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
) -> Response {
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

    fn request(headers: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn only_requests_that_no_web_page_can_send_are_admitted() {
        let lo: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let ok = |h: &[(&str, &str)]| admit(lo, &request(h));
        let admin = (ADMIN_HEADER, "1");
        let host = ("host", "127.0.0.1:8087");
        // The command-line client.
        assert_eq!(
            ok(&[host, admin, ("user-agent", "mqtt-sn-gateway")]),
            Ok(())
        );
        assert_eq!(ok(&[admin]), Ok(()));
        assert_eq!(ok(&[("host", "localhost:8087"), admin]), Ok(()));
        assert_eq!(ok(&[("host", "[::1]:8087"), admin]), Ok(()));
        // A same-origin page of the endpoint itself.
        assert_eq!(
            ok(&[
                host,
                admin,
                ("origin", "http://127.0.0.1:8087"),
                ("sec-fetch-site", "same-origin")
            ]),
            Ok(())
        );
        let refused = |h: &[(&str, &str)], why: &str| {
            let reason = ok(h).unwrap_err();
            assert!(reason.contains(why), "{why:?} not in {reason:?}");
            assert!(!reason.contains('\n'), "{reason:?}");
        };
        refused(&[host], "X-MQTT-SN-Admin: 1");
        refused(&[host, (ADMIN_HEADER, "yes")], "X-MQTT-SN-Admin: 1");
        refused(&[host, ("origin", "http://evil.example")], "Origin");
        refused(&[host, admin, ("origin", "http://evil.example")], "Origin");
        refused(&[host, admin, ("origin", "null")], "Origin");
        refused(
            &[host, admin, ("origin", "http://127.0.0.1:9999")],
            "Origin",
        );
        refused(&[admin, ("origin", "http://127.0.0.1:8087")], "Origin");
        refused(
            &[host, admin, ("sec-fetch-site", "cross-site")],
            "Sec-Fetch-Site",
        );
        refused(
            &[host, admin, ("sec-fetch-site", "same-site")],
            "Sec-Fetch-Site",
        );
        refused(
            &[
                ("host", "evil.example:8087"),
                admin,
                ("origin", "http://evil.example:8087"),
                ("sec-fetch-site", "same-origin"),
            ],
            "Host",
        );
        let lan: SocketAddr = "192.168.4.20:5000".parse().unwrap();
        assert!(
            admit(lan, &request(&[host, admin]))
                .unwrap_err()
                .contains("loopback")
        );
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
