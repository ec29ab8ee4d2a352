//! `GET /`: a small status page for a person with a browser on the LAN. Plain HTML with an
//! inline style sheet and a meta refresh; no JavaScript, nothing to build.

use std::fmt::Write as _;

use crate::core::state_names;
use crate::io::Snapshot;

/// Seconds between automatic reloads of the page.
const REFRESH_SECS: u32 = 5;

/// Escapes `s` for HTML text and attribute values.
pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `"N s ago"`, `"N min ago"` or `"N h ago"`.
pub(crate) fn ago(secs: u64) -> String {
    match secs {
        0..120 => format!("{secs} s ago"),
        120..7200 => format!("{} min ago", secs / 60),
        _ => format!("{} h ago", secs / 3600),
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
h1{font-size:1.4em}table{border-collapse:collapse;min-width:40em}\
th,td{border:1px solid #ccc;padding:.3em .7em;text-align:left}\
th{background:#f0f0f0}td.n{text-align:right}\
.up{color:#070;font-weight:bold}.down{color:#b00;font-weight:bold}\
.state-active,.state-awake{color:#070}.state-asleep{color:#05a}\
.state-lost,.state-disconnected{color:#b00}.muted{color:#777}";

/// The state database and the custody queue, in one line.
fn storage(h: &mut String, s: &crate::io::Status) {
    let g = &s.gauges;
    let _ = match &s.storage {
        None => writeln!(
            h,
            "<p id=\"storage\">State database: off (sessions are not kept across restarts).</p>"
        ),
        Some(st) => writeln!(
            h,
            "<p id=\"storage\">State database: {} KiB, {} commits{}. Custody: {} messages \
             ({} octets) waiting for the broker{}.</p>",
            st.bytes / 1024,
            st.commits,
            if st.failing {
                ", <span class=\"down\">cannot be written</span> (disk full or read-only?)"
            } else {
                ""
            },
            g.custody_messages,
            g.custody_bytes,
            if g.custody_messages > 0 {
                format!(", the oldest for {} s", g.custody_oldest.as_secs())
            } else {
                String::new()
            },
        ),
    };
}

/// The page for `snapshot`; `gateway_id` goes into the title.
pub(crate) fn render(snapshot: &Snapshot, gateway_id: u8) -> String {
    let (s, clients) = (&snapshot.status, &snapshot.clients);
    let mut h = String::with_capacity(4096);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>MQTT-SN gateway {gateway_id}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>MQTT-SN gateway {gateway_id}</h1>\n"
    );
    let (class, text) = if s.upstream_up {
        ("up", "connected")
    } else {
        ("down", "unreachable")
    };
    let _ = writeln!(
        h,
        "<p>Upstream broker {}: <span id=\"upstream\" class=\"{class}\">{text}</span></p>",
        escape_html(&s.upstream.broker)
    );
    if !s.upstream_up {
        let why = s
            .upstream
            .explain(s.upstream_mode, std::time::SystemTime::now());
        let _ = writeln!(
            h,
            "<p id=\"upstream-why\" class=\"down\">{}</p>",
            escape_html(&why)
        );
    }
    if let Some(left) = s.pairing {
        let _ = writeln!(
            h,
            "<p id=\"pairing\">Pairing window open: unknown motes that connect in the next {} s \
             are added to the registry.</p>",
            left.as_secs() + u64::from(left.subsec_nanos() > 0)
        );
    }
    let count = |state: &str| s.gauges.clients.get(state).copied().unwrap_or(0);
    let _ = writeln!(
        h,
        "<p id=\"counts\">{} clients: {} active, {} asleep, {} awake, {} lost, {} disconnected. \
         Sleep buffers {} messages, downlink queues {}. Packets in {}, out {}.</p>",
        clients.len(),
        count(state_names::ACTIVE),
        count(state_names::ASLEEP),
        count(state_names::AWAKE),
        count(state_names::LOST),
        count(state_names::DISCONNECTED),
        s.gauges.sleep_buffered,
        s.gauges.downlink_queued,
        s.core.packets_in.values().sum::<u64>(),
        s.core.packets_out.values().sum::<u64>(),
    );
    storage(&mut h, s);
    if clients.is_empty() {
        h.push_str("<p class=\"muted\">No clients yet.</p>\n");
    } else {
        h.push_str(
            "<table id=\"clients\">\n<thead><tr><th>ClientId</th><th>State</th><th>Address</th>\
             <th>Last seen</th><th>Rx</th><th>Tx</th><th>Queued</th></tr></thead>\n<tbody>\n",
        );
        for c in clients {
            let secs = s.now.saturating_duration_since(c.last_seen).as_secs();
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"state-{state}\">{state}</td><td>{}</td><td>{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape_html(&c.client_id),
                escape_html(&c.peer.to_string()),
                ago(secs),
                c.rx,
                c.tx,
                c.queued,
                state = escape_html(c.state),
            );
        }
        h.push_str("</tbody>\n</table>\n");
    }
    let _ = writeln!(
        h,
        "<p class=\"muted\">Refreshes every {REFRESH_SECS} s. \
         <a href=\"/metrics\">Metrics</a> · <a href=\"/healthz\">Health</a></p>\n</body>\n</html>"
    );
    h
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use sn_codec::Instant;

    use super::*;
    use crate::core::ClientInfo;
    use crate::core::addr::{ListenerId, PeerAddr};

    #[test]
    fn html_special_characters_are_escaped() {
        assert_eq!(
            escape_html("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(escape_html("mote-1"), "mote-1");
    }

    #[test]
    fn ages_are_readable() {
        assert_eq!(ago(0), "0 s ago");
        assert_eq!(ago(119), "119 s ago");
        assert_eq!(ago(180), "3 min ago");
        assert_eq!(ago(7200), "2 h ago");
    }

    #[test]
    fn the_page_lists_clients_with_escaped_ids_and_the_upstream_state() {
        let mut s = Snapshot::default();
        s.status.now = Instant::from_millis(70_000);
        s.clients.push(ClientInfo {
            client_id: "<b>evil</b>".into(),
            peer: PeerAddr::Udp {
                listener: ListenerId(0),
                addr: "10.0.0.7:5000".parse().unwrap(),
            },
            state: "asleep",
            last_seen: Instant::from_millis(40_000),
            rx: 4,
            tx: 3,
            queued: 2,
        });
        s.status.gauges.clients.insert("asleep", 1);
        let page = render(&s, 7);
        assert!(page.contains("<title>MQTT-SN gateway 7</title>"));
        assert!(page.contains("http-equiv=\"refresh\" content=\"5\""));
        assert!(page.contains("class=\"down\">unreachable</span>"), "{page}");
        assert!(page.contains("<td>&lt;b&gt;evil&lt;/b&gt;</td>"), "{page}");
        assert!(!page.contains("<b>evil"), "{page}");
        assert!(page.contains("<td class=\"state-asleep\">asleep</td>"));
        assert!(
            page.contains("<td>10.0.0.7:5000</td><td>30 s ago</td>"),
            "{page}"
        );
        assert!(page.contains("1 clients: 0 active, 1 asleep"), "{page}");
        assert!(!page.contains("<script"), "no JavaScript");
        s.status.upstream_up = true;
        s.clients.clear();
        let page = render(&s, 7);
        assert!(page.contains("class=\"up\">connected</span>"));
        assert!(page.contains("No clients yet."));
        assert!(!page.contains("Pairing window open"));
        s.status.pairing = Some(std::time::Duration::from_millis(89_500));
        assert!(render(&s, 7).contains("connect in the next 90 s"));
    }
}
