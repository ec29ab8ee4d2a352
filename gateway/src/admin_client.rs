//! The admin API of a running gateway, client side: what `mqtt-sn-gateway pair` and
//! `mqtt-sn-gateway clients` call. It talks HTTP/1.1 to the gateway's local endpoint
//! (`[http] listen`), whose `/api/*` routes answer loopback peers only, and only requests that
//! carry [`ADMIN_HEADER`] (which a web page cannot send to the endpoint).
//!
//! The JSON bodies are [`ClientList`] (`GET /api/clients`) and [`Pairing`]
//! (`POST /api/pairing?seconds=N`); the server side is `io::http`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Time allowed for one request (connect, send, whole answer).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The request header every `/api/*` request carries, with the value `1`; the endpoint
/// refuses admin requests without it.
pub const ADMIN_HEADER: &str = "X-MQTT-SN-Admin";

/// Largest answer accepted.
const MAX_RESPONSE: u64 = 4 * 1024 * 1024;

/// `GET /api/clients`: the upstream state and every client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientList {
    /// Whether the gateway's own upstream link is up.
    pub upstream_up: bool,
    /// Seconds the pairing window stays open (`None`: closed).
    pub pairing_secs: Option<u64>,
    /// Every client the gateway knows, ordered by ClientId.
    pub clients: Vec<ClientEntry>,
}

/// One client in a [`ClientList`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientEntry {
    /// MQTT-SN ClientId.
    pub client_id: String,
    /// `connecting`, `active`, `asleep`, `awake`, `disconnected` or `lost`.
    pub state: String,
    /// UDP address, or `forwarder/wnid` for a node behind a forwarder.
    pub address: String,
    /// Seconds since the client last sent something.
    pub last_seen_secs: u64,
    /// Messages received from the client.
    pub rx: u64,
    /// Messages sent to the client.
    pub tx: u64,
    /// Messages waiting for it.
    pub queued: u64,
}

/// `POST /api/pairing?seconds=N`: the window that was opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pairing {
    /// How long the window stays open, in whole seconds.
    pub seconds: u64,
    /// The registry file paired clients are appended to (`None`: not saved).
    pub registry: Option<String>,
}

/// Why an admin request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// Nothing answered at the address.
    ///
    /// **Fault:** the operator (gateway not running, `[http] listen` off or elsewhere).
    /// **Recovery:** start the gateway, or pass the address it listens on (`--http`).
    #[error(
        "cannot reach the gateway's HTTP endpoint at {addr}: {source} (is the gateway running, \
         with [http] listen = \"{addr}\" or --http {addr}?)"
    )]
    Connect {
        /// The address tried.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// No complete answer within [`REQUEST_TIMEOUT`].
    ///
    /// **Fault:** the gateway (stuck) or the network. **Recovery:** try again; check the log.
    #[error("the gateway's HTTP endpoint at {0} did not answer within {REQUEST_TIMEOUT:?}")]
    Timeout(SocketAddr),
    /// The endpoint answered with an error status.
    ///
    /// **Fault:** the caller (403: not on loopback, or the request looks like a web page's) or
    /// the gateway (503: stopping, or serving its maximum of HTTP connections).
    /// **Recovery:** as the message says.
    #[error("the gateway at {addr} answered {status}: {body}")]
    Status {
        /// The address asked.
        addr: SocketAddr,
        /// HTTP status code.
        status: u16,
        /// The body (trimmed).
        body: String,
    },
    /// The answer was not HTTP or not the expected JSON.
    ///
    /// **Fault:** something else listens there. **Recovery:** check the address.
    #[error("unexpected answer from {addr}: {reason}")]
    Protocol {
        /// The address asked.
        addr: SocketAddr,
        /// What was wrong.
        reason: String,
    },
}

/// The address to connect to for a listen address: an unspecified address (`0.0.0.0`, `[::]`)
/// becomes the loopback address of its family.
pub fn connect_addr(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(a) if a.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port())
        }
        IpAddr::V6(a) if a.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen.port())
        }
        _ => listen,
    }
}

/// Opens the pairing window of the gateway whose endpoint is at `addr` for `duration`
/// (whole seconds, at least 1).
///
/// # Errors
///
/// [`AdminError`] when the gateway cannot be reached or refuses.
pub async fn open_pairing(addr: SocketAddr, duration: Duration) -> Result<Pairing, AdminError> {
    let secs = duration.as_secs().max(1);
    let body = request(addr, "POST", &format!("/api/pairing?seconds={secs}")).await?;
    json(addr, &body)
}

/// The clients of the gateway whose endpoint is at `addr`.
///
/// # Errors
///
/// [`AdminError`] when the gateway cannot be reached or refuses.
pub async fn clients(addr: SocketAddr) -> Result<ClientList, AdminError> {
    let body = request(addr, "GET", "/api/clients").await?;
    json(addr, &body)
}

/// The table `mqtt-sn-gateway clients` prints: a header line and one line per client, columns
/// padded to their widest value, then the upstream state.
pub fn format_clients(list: &ClientList) -> String {
    let header = [
        "CLIENT ID",
        "STATE",
        "ADDRESS",
        "LAST SEEN",
        "RX",
        "TX",
        "QUEUED",
    ];
    let rows: Vec<[String; 7]> = list
        .clients
        .iter()
        .map(|c| {
            [
                c.client_id.escape_debug().to_string(),
                c.state.clone(),
                c.address.clone(),
                format!("{} s ago", c.last_seen_secs),
                c.rx.to_string(),
                c.tx.to_string(),
                c.queued.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            // Counts are right-aligned.
            if i >= 4 {
                l.push_str(&format!("{cell:>w$}"));
            } else {
                l.push_str(&format!("{cell:<w$}"));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header);
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(&cells);
    }
    out.push_str(&format!(
        "{} client(s); upstream broker {}",
        list.clients.len(),
        if list.upstream_up {
            "connected"
        } else {
            "unreachable"
        }
    ));
    if let Some(s) = list.pairing_secs {
        out.push_str(&format!("; pairing open for {s} s more"));
    }
    out.push('\n');
    out
}

fn json<T: for<'de> Deserialize<'de>>(addr: SocketAddr, body: &[u8]) -> Result<T, AdminError> {
    serde_json::from_slice(body).map_err(|e| AdminError::Protocol {
        addr,
        reason: format!("invalid JSON: {e}"),
    })
}

/// One HTTP/1.1 request with `Connection: close` and [`ADMIN_HEADER`]; returns the body of a
/// 2xx answer.
///
/// # Errors
///
/// [`AdminError`] for connection failures, timeouts, non-2xx answers and malformed answers.
pub async fn request(addr: SocketAddr, method: &str, path: &str) -> Result<Vec<u8>, AdminError> {
    tokio::time::timeout(REQUEST_TIMEOUT, exchange(addr, method, path))
        .await
        .map_err(|_| AdminError::Timeout(addr))?
}

async fn exchange(addr: SocketAddr, method: &str, path: &str) -> Result<Vec<u8>, AdminError> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|source| AdminError::Connect { addr, source })?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: mqtt-sn-gateway\r\n\
         Accept: application/json\r\n{ADMIN_HEADER}: 1\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    );
    let io = |e: std::io::Error| AdminError::Protocol {
        addr,
        reason: e.to_string(),
    };
    stream.write_all(req.as_bytes()).await.map_err(io)?;
    let mut raw = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut raw)
        .await
        .map_err(io)?;
    let (status, body) =
        parse_response(&raw).map_err(|reason| AdminError::Protocol { addr, reason })?;
    if !(200..300).contains(&status) {
        return Err(AdminError::Status {
            addr,
            status,
            body: String::from_utf8_lossy(&body).trim().to_owned(),
        });
    }
    Ok(body)
}

/// Splits a complete HTTP/1.1 answer into status code and body (de-chunked if needed).
pub(crate) fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of the HTTP header")?;
    let head = std::str::from_utf8(raw.get(..split).unwrap_or_default())
        .map_err(|_| "the HTTP header is not UTF-8")?;
    let body = raw.get(split + 4..).unwrap_or_default();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = match status_line.split(' ').collect::<Vec<_>>().as_slice() {
        [v, code, ..] if v.starts_with("HTTP/1.") => code
            .parse::<u16>()
            .map_err(|_| format!("bad status line {status_line:?}"))?,
        _ => return Err(format!("not an HTTP answer: {status_line:?}")),
    };
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok((status, body))
}

/// Decodes a chunked body.
fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size_text = std::str::from_utf8(b.get(..eol).unwrap_or_default()).unwrap_or("");
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        if size == 0 {
            return Ok(out);
        }
        let data = b.get(eol + 2..eol + 2 + size).ok_or("truncated chunk")?;
        out.extend_from_slice(data);
        b = b.get(eol + 2 + size + 2..).ok_or("truncated chunk")?;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn plain_and_chunked_answers_are_parsed() {
        let (s, b) = parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").unwrap();
        assert_eq!((s, b.as_slice()), (200, &b"ok"[..]));
        let raw = b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let (s, b) = parse_response(raw).unwrap();
        assert_eq!((s, b.as_slice()), (403, &b"abcde"[..]));
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
    }

    #[test]
    fn unspecified_listen_addresses_are_reached_on_loopback() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(connect_addr(a("0.0.0.0:8087")), a("127.0.0.1:8087"));
        assert_eq!(connect_addr(a("[::]:8087")), a("[::1]:8087"));
        assert_eq!(connect_addr(a("10.1.2.3:80")), a("10.1.2.3:80"));
    }

    #[test]
    fn the_clients_table_is_aligned() {
        let mut list = ClientList {
            upstream_up: true,
            pairing_secs: None,
            clients: vec![
                ClientEntry {
                    client_id: "mote-1".into(),
                    state: "active".into(),
                    address: "127.0.0.1:40000".into(),
                    last_seen_secs: 3,
                    rx: 12,
                    tx: 4,
                    queued: 0,
                },
                ClientEntry {
                    client_id: "a-much-longer-mote".into(),
                    state: "asleep".into(),
                    address: "10.0.0.9:1/0a0b".into(),
                    last_seen_secs: 250,
                    rx: 1,
                    tx: 100,
                    queued: 7,
                },
            ],
        };
        let t = format_clients(&list);
        let l: Vec<&str> = t.lines().collect();
        assert_eq!(
            l[0],
            "CLIENT ID           STATE   ADDRESS          LAST SEEN  RX   TX  QUEUED"
        );
        assert_eq!(
            l[1],
            "mote-1              active  127.0.0.1:40000  3 s ago    12    4       0"
        );
        assert_eq!(
            l[2],
            "a-much-longer-mote  asleep  10.0.0.9:1/0a0b  250 s ago   1  100       7"
        );
        assert_eq!(l[3], "2 client(s); upstream broker connected");
        list.pairing_secs = Some(42);
        list.upstream_up = false;
        assert!(
            format_clients(&list).ends_with(
                "2 client(s); upstream broker unreachable; pairing open for 42 s more\n"
            )
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error_naming_the_address() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let e = clients(addr).await.unwrap_err();
        assert!(matches!(e, AdminError::Connect { .. }), "{e:?}");
        assert!(e.to_string().contains(&addr.to_string()), "{e}");
    }
}
