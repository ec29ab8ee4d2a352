//! Why the broker cannot be reached, in words an operator can act on: every failed connection
//! attempt is sorted into a [`Failure`] (counted by kind for `/metrics`), and the last one of
//! the gateway's own link is kept with when it happened and when the next attempt is due, for
//! `/healthz`, the status page and the log.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use rumqttc::{ConnectReturnCode, ConnectionError, StateError};

/// What went wrong with an attempt to connect to the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Nothing accepts connections at the broker's address and port.
    Refused,
    /// No answer in time (connection, TLS handshake or CONNACK).
    Timeout,
    /// The host name does not resolve.
    Dns,
    /// The broker's certificate is not signed by the configured CA (or is otherwise invalid).
    UntrustedCertificate,
    /// The broker's certificate does not name the host the gateway connects to.
    WrongCertificateName,
    /// A plain `mqtt://` connection to a port that expects TLS: the broker hung up.
    ExpectsTls,
    /// An `mqtts://` connection to a port that does not speak TLS.
    NotTls,
    /// The broker refused the username or password.
    BadCredentials,
    /// The broker refused the client (not authorised).
    NotAuthorized,
    /// The broker refused the ClientId.
    ClientIdRejected,
    /// The broker says it is unavailable (for example at its connection limit).
    Unavailable,
    /// The connection was lost after it was up.
    Lost,
    /// Anything else.
    Other,
}

/// Every kind, in label order.
pub const FAILURES: [Failure; 13] = [
    Failure::Refused,
    Failure::Timeout,
    Failure::Dns,
    Failure::UntrustedCertificate,
    Failure::WrongCertificateName,
    Failure::ExpectsTls,
    Failure::NotTls,
    Failure::BadCredentials,
    Failure::NotAuthorized,
    Failure::ClientIdRejected,
    Failure::Unavailable,
    Failure::Lost,
    Failure::Other,
];

impl Failure {
    /// The `reason` label of `upstream_connect_failures_total`.
    pub fn label(self) -> &'static str {
        match self {
            Failure::Refused => "connection_refused",
            Failure::Timeout => "timeout",
            Failure::Dns => "dns",
            Failure::UntrustedCertificate => "untrusted_certificate",
            Failure::WrongCertificateName => "wrong_certificate_name",
            Failure::ExpectsTls => "port_expects_tls",
            Failure::NotTls => "port_not_tls",
            Failure::BadCredentials => "bad_credentials",
            Failure::NotAuthorized => "not_authorized",
            Failure::ClientIdRejected => "client_id_rejected",
            Failure::Unavailable => "broker_unavailable",
            Failure::Lost => "connection_lost",
            Failure::Other => "other",
        }
    }

    /// What happened, in a few words.
    pub fn words(self) -> &'static str {
        match self {
            Failure::Refused => "the connection was refused (nothing listens there)",
            Failure::Timeout => "no answer in time",
            Failure::Dns => "the host name does not resolve",
            Failure::UntrustedCertificate => {
                "the broker's certificate is not trusted (not signed by the CA file)"
            }
            Failure::WrongCertificateName => "the broker's certificate is for another host name",
            Failure::ExpectsTls => "the broker closed a plain connection (the port expects TLS?)",
            Failure::NotTls => "the port does not speak TLS",
            Failure::BadCredentials => "the broker refused the username or password",
            Failure::NotAuthorized => {
                "the broker refused the client: not authorised (mosquitto says so for a wrong \
                 username or password too)"
            }
            Failure::ClientIdRejected => "the broker refused the ClientId",
            Failure::Unavailable => "the broker says it is unavailable",
            Failure::Lost => "the connection was lost",
            Failure::Other => "the connection failed",
        }
    }

    /// What the operator may check.
    pub fn hint(self) -> &'static str {
        match self {
            Failure::Refused => "is the broker running? check the host and port of upstream.url",
            Failure::Timeout => {
                "check the host of upstream.url, firewalls, and upstream.connect_timeout"
            }
            Failure::Dns => "check the host name in upstream.url and the DNS set-up",
            Failure::UntrustedCertificate => {
                "check upstream.tls.ca_file: it must hold the CA that signed the broker's \
                 certificate"
            }
            Failure::WrongCertificateName => {
                "connect by the name in the broker's certificate, or set upstream.tls.server_name"
            }
            Failure::ExpectsTls => "use mqtts:// with upstream.tls.ca_file for a TLS port",
            Failure::NotTls => "use mqtt:// for a plain port, or the broker's TLS port",
            Failure::BadCredentials => {
                "check upstream.username/password (or the mote's in the client registry)"
            }
            Failure::NotAuthorized => {
                "check upstream.username/password (or the mote's in the client registry) and the \
                 broker's access rules"
            }
            Failure::ClientIdRejected => {
                "check upstream.gateway_client_id and upstream.client_id_prefix"
            }
            Failure::Unavailable => "check the broker's log (a connection limit?)",
            Failure::Lost => "the gateway reconnects by itself",
            Failure::Other => "see the detail",
        }
    }
}

/// Sorts a failed attempt; `tls`: the link uses `mqtts://`; `was_up`: the connection had
/// reached CONNACK before it failed.
pub fn classify(error: &ConnectionError, tls: bool, was_up: bool) -> Failure {
    match error {
        ConnectionError::ConnectionRefused(code) => match code {
            ConnectReturnCode::BadUserNamePassword => Failure::BadCredentials,
            ConnectReturnCode::NotAuthorized => Failure::NotAuthorized,
            ConnectReturnCode::BadClientId => Failure::ClientIdRejected,
            ConnectReturnCode::ServiceUnavailable => Failure::Unavailable,
            _ => Failure::Other,
        },
        _ if was_up => Failure::Lost,
        ConnectionError::NetworkTimeout | ConnectionError::FlushTimeout => Failure::Timeout,
        ConnectionError::Tls(e) => classify_text(&e.to_string(), tls),
        ConnectionError::Io(e) => match e.kind() {
            std::io::ErrorKind::ConnectionRefused => Failure::Refused,
            std::io::ErrorKind::TimedOut => Failure::Timeout,
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
                if !tls =>
            {
                Failure::ExpectsTls
            }
            _ => classify_text(&e.to_string(), tls),
        },
        // Before its CONNACK a plain connection that is reset or answered with something that
        // is not MQTT reached a TLS listener (mosquitto resets it).
        ConnectionError::MqttState(
            StateError::ConnectionAborted | StateError::Io(_) | StateError::Deserialization(_),
        ) if !tls => Failure::ExpectsTls,
        ConnectionError::NotConnAck(_) if !tls => Failure::ExpectsTls,
        other => classify_text(&other.to_string(), tls),
    }
}

/// Sorts an error by what its text says (TLS and resolver errors come as text).
fn classify_text(text: &str, tls: bool) -> Failure {
    let t = text.to_ascii_lowercase();
    if t.contains("failed to lookup address")
        || t.contains("name or service not known")
        || t.contains("no address associated")
        || t.contains("temporary failure in name resolution")
    {
        Failure::Dns
    } else if t.contains("notvalidforname") || t.contains("not valid for name") {
        Failure::WrongCertificateName
    } else if t.contains("unknownissuer")
        || t.contains("invalid peer certificate")
        || t.contains("badsignature")
        || t.contains("expired")
    {
        Failure::UntrustedCertificate
    } else if tls
        && (t.contains("corrupt message")
            || t.contains("invalidcontenttype")
            || t.contains("invalid content type")
            || t.contains("peer is incompatible"))
    {
        Failure::NotTls
    } else if t.contains("connection refused") {
        Failure::Refused
    } else if t.contains("timed out") {
        Failure::Timeout
    } else {
        Failure::Other
    }
}

/// The last failed attempt of the gateway's own link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastFailure {
    /// What went wrong.
    pub failure: Failure,
    /// The error as the connection library put it.
    pub detail: String,
    /// When.
    pub at: SystemTime,
    /// When the next attempt starts.
    pub retry_at: SystemTime,
}

/// Failed attempts of every link, by kind, and the gateway link's last one (shared by the
/// connector and its link tasks).
#[derive(Debug, Default)]
pub struct Diagnosis {
    counts: [AtomicU64; FAILURES.len()],
    last: Mutex<Option<LastFailure>>,
}

impl Diagnosis {
    /// Counts a failed attempt.
    pub fn count(&self, failure: Failure) {
        if let Some(i) = FAILURES.iter().position(|f| *f == failure)
            && let Some(c) = self.counts.get(i)
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The gateway's own link failed like this.
    pub fn set_last(&self, last: LastFailure) {
        if let Ok(mut l) = self.last.lock() {
            *l = Some(last);
        }
    }

    /// The gateway's own link is connected.
    pub fn clear_last(&self) {
        if let Ok(mut l) = self.last.lock() {
            *l = None;
        }
    }

    /// What `/metrics`, `/healthz` and the status page show, for the broker at `broker`.
    pub fn report(&self, broker: String) -> UpstreamReport {
        UpstreamReport {
            broker,
            failures: FAILURES
                .iter()
                .zip(&self.counts)
                .map(|(f, c)| (*f, c.load(Ordering::Relaxed)))
                .collect(),
            last: self.last.lock().ok().and_then(|l| l.clone()),
        }
    }
}

/// A snapshot of [`Diagnosis`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamReport {
    /// The broker's URL (`mqtt://host:port`; empty when not known).
    pub broker: String,
    /// Failed connection attempts of every link since start, by kind (every kind listed).
    pub failures: Vec<(Failure, u64)>,
    /// The gateway link's last failure, while it is not connected.
    pub last: Option<LastFailure>,
}

impl UpstreamReport {
    /// Why the gateway's own link is down, for `/healthz`, the status page and `clients`:
    /// the broker and the mode, what went wrong and when, the next attempt, a hint, and the
    /// library's own words. `now` is the time of the question.
    pub fn explain(&self, mode: crate::core::config::UpstreamMode, now: SystemTime) -> String {
        let who = format!("the upstream broker {} ({} mode)", self.broker, mode.name());
        let Some(l) = &self.last else {
            return format!("{who} is not connected yet");
        };
        let retry = l.retry_at.duration_since(now).map_or_else(
            |_| "now".to_owned(),
            |d| format!("in {} s", d.as_secs() + 1),
        );
        format!(
            "{who} is unreachable: {}, at {} UTC; next try {retry}; hint: {} ({})",
            l.failure.words(),
            clock(l.at),
            l.failure.hint(),
            l.detail
        )
    }
}

/// `HH:MM:SS` of a time of day in UTC.
fn clock(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let day = secs % 86_400;
    format!("{:02}:{:02}:{:02}", day / 3600, day % 3600 / 60, day % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(kind: std::io::ErrorKind, text: &str) -> ConnectionError {
        ConnectionError::Io(std::io::Error::new(kind, text))
    }

    #[test]
    fn errors_are_sorted_into_what_an_operator_can_act_on() {
        use std::io::ErrorKind as K;
        let cases = [
            (io(K::ConnectionRefused, "refused"), false, Failure::Refused),
            (ConnectionError::NetworkTimeout, false, Failure::Timeout),
            (
                io(
                    K::Other,
                    "failed to lookup address information: Name or service not known",
                ),
                false,
                Failure::Dns,
            ),
            (io(K::UnexpectedEof, "eof"), false, Failure::ExpectsTls),
            (
                ConnectionError::MqttState(StateError::Deserialization(
                    rumqttc::mqttbytes::Error::InsufficientBytes(1),
                )),
                false,
                Failure::ExpectsTls,
            ),
            (
                ConnectionError::MqttState(StateError::ConnectionAborted),
                false,
                Failure::ExpectsTls,
            ),
            (
                io(
                    K::InvalidData,
                    "received corrupt message of type InvalidContentType",
                ),
                true,
                Failure::NotTls,
            ),
            (
                io(K::InvalidData, "invalid peer certificate: UnknownIssuer"),
                true,
                Failure::UntrustedCertificate,
            ),
            (
                io(
                    K::InvalidData,
                    "invalid peer certificate: certificate not valid for name \"x\"",
                ),
                true,
                Failure::WrongCertificateName,
            ),
            (
                ConnectionError::ConnectionRefused(ConnectReturnCode::BadUserNamePassword),
                false,
                Failure::BadCredentials,
            ),
            (
                ConnectionError::ConnectionRefused(ConnectReturnCode::ServiceUnavailable),
                false,
                Failure::Unavailable,
            ),
        ];
        for (error, tls, want) in cases {
            assert_eq!(classify(&error, tls, false), want, "{error}");
        }
        assert_eq!(
            classify(&io(K::ConnectionReset, "reset"), false, true),
            Failure::Lost
        );
    }

    #[test]
    fn counts_and_the_last_failure_are_reported() {
        let d = Diagnosis::default();
        d.count(Failure::BadCredentials);
        d.count(Failure::BadCredentials);
        let at = SystemTime::UNIX_EPOCH;
        d.set_last(LastFailure {
            failure: Failure::BadCredentials,
            detail: "refused".into(),
            at,
            retry_at: at,
        });
        let r = d.report("mqtt://b:1".into());
        assert_eq!(r.failures.len(), FAILURES.len());
        assert!(r.failures.contains(&(Failure::BadCredentials, 2)));
        assert_eq!(r.last.map(|l| l.failure), Some(Failure::BadCredentials));
        d.clear_last();
        assert_eq!(d.report(String::new()).last, None);
    }

    #[test]
    fn the_explanation_names_the_broker_the_mode_the_reason_the_time_and_the_next_try() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(5_008); // 01:23:28
        let d = Diagnosis::default();
        let r = d.report("mqtts://b:8883".into());
        let mode = crate::core::config::UpstreamMode::Aggregating;
        assert_eq!(
            r.explain(mode, at),
            "the upstream broker mqtts://b:8883 (aggregating mode) is not connected yet"
        );
        d.set_last(LastFailure {
            failure: Failure::UntrustedCertificate,
            detail: "TLS: invalid peer certificate: UnknownIssuer".into(),
            at,
            retry_at: at + std::time::Duration::from_millis(3_500),
        });
        let text = d.report("mqtts://b:8883".into()).explain(mode, at);
        assert_eq!(
            text,
            "the upstream broker mqtts://b:8883 (aggregating mode) is unreachable: the broker's \
             certificate is not trusted (not signed by the CA file), at 01:23:28 UTC; next try in \
             4 s; hint: check upstream.tls.ca_file: it must hold the CA that signed the broker's \
             certificate (TLS: invalid peer certificate: UnknownIssuer)"
        );
    }
}
