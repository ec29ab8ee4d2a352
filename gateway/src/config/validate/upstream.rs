//! `[upstream]` → `UpstreamSessionConfig` (core) + `UpstreamEndpoint` (shell).

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Ctx, Overrides, positive, whole_seconds_u16};
use crate::config::ConfigError;
use crate::config::file::{FileTls, FileUpstream};
use crate::config::values::{self, UpstreamUrl};
use crate::core::config::{Credentials, GatewayConfig, UpstreamMode, UpstreamSessionConfig};
use crate::io::config::{Scheme, TlsConfig, UpstreamEndpoint};

/// Default MQTT keep-alive of upstream links.
const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(60);

/// Rejects U+0000 (it cannot appear in an MQTT string).
fn no_nul(s: &str) -> Result<(), String> {
    if s.contains('\0') {
        Err(format!("{s:?} contains U+0000"))
    } else {
        Ok(())
    }
}

/// Rejects empty strings and U+0000.
fn non_empty(s: &str) -> Result<(), String> {
    if s.is_empty() {
        Err("must not be empty".to_owned())
    } else {
        no_nul(s)
    }
}

/// Validates `[upstream]`; `core` supplies the gateway id and ClientId limit.
pub(super) fn validate(
    cx: &Ctx<'_>,
    u: &FileUpstream,
    core: &GatewayConfig,
    ov: &Overrides,
) -> Result<(UpstreamSessionConfig, UpstreamEndpoint), ConfigError> {
    let d = UpstreamEndpoint::default();
    let file_url = match &u.url {
        None => None,
        Some(s) => {
            Some(values::upstream_url(s.get_ref()).map_err(|r| cx.at(s, "upstream.url", r))?)
        }
    };
    let url = ov.upstream.clone().or(file_url).unwrap_or(UpstreamUrl {
        scheme: d.scheme,
        host: d.host.clone(),
        port: d.port,
    });

    let tls = match &u.tls {
        None => TlsConfig::default(),
        Some(t) => tls(cx, t)?,
    };
    if url.scheme == Scheme::Mqtts && tls.ca_file.is_none() {
        let reason = "mqtts:// needs upstream.tls.ca_file (the gateway uses no system trust store)";
        return Err(match (&ov.upstream, &u.url) {
            (Some(_), _) => ConfigError::Flag {
                flag: "--upstream".into(),
                reason: reason.into(),
            },
            (None, url) => cx.err(url.as_ref().map(|s| s.span()), "upstream.url", reason),
        });
    }

    let backoff_initial = cx.dur(
        &u.backoff_initial,
        "upstream.backoff_initial",
        d.backoff_initial,
        positive,
    )?;
    let backoff_max = cx.dur(&u.backoff_max, "upstream.backoff_max", d.backoff_max, |m| {
        if m < backoff_initial {
            Err(format!(
                "is shorter than upstream.backoff_initial (\"{}\")",
                sn_config::duration::format(backoff_initial)
            ))
        } else {
            Ok(())
        }
    })?;
    if backoff_max < backoff_initial {
        // backoff_max was defaulted; the initial value is the one to fix.
        return Err(cx.err(
            u.backoff_initial.as_ref().map(|s| s.span()),
            "upstream.backoff_initial",
            "is longer than upstream.backoff_max (default \"60s\")",
        ));
    }
    let endpoint = UpstreamEndpoint {
        scheme: url.scheme,
        host: url.host,
        port: url.port,
        tls,
        connect_timeout: cx.dur(
            &u.connect_timeout,
            "upstream.connect_timeout",
            d.connect_timeout,
            positive,
        )?,
        backoff_initial,
        backoff_max,
        max_packet_size: cx.int(
            &u.max_packet_size,
            "upstream.max_packet_size",
            128..=268_435_455,
            d.max_packet_size,
        )?,
        inflight: cx.int(&u.inflight, "upstream.inflight", 1..=65535, d.inflight)?,
    };

    let credentials = match (&u.username, &u.password) {
        (None, None) => None,
        (None, Some(p)) => {
            return Err(cx.at(p, "upstream.password", "a password needs upstream.username"));
        }
        (Some(name), password) => {
            non_empty(name.get_ref()).map_err(|r| cx.at(name, "upstream.username", r))?;
            Some(Credentials {
                username: name.get_ref().clone(),
                password: password.as_ref().map(|p| p.get_ref().clone()),
            })
        }
    };
    let mut per_client_credentials = BTreeMap::new();
    for (i, c) in u.clients.iter().enumerate() {
        let key = format!("upstream.clients[{i}].client_id");
        let id = c.client_id.get_ref();
        non_empty(id).map_err(|r| cx.at(&c.client_id, &key, r))?;
        if id.len() > core.client_id_max_len {
            return Err(cx.at(
                &c.client_id,
                &key,
                format!(
                    "{id:?} is longer than gateway.client_id_max_len ({}) and could never connect",
                    core.client_id_max_len
                ),
            ));
        }
        non_empty(c.username.get_ref())
            .map_err(|r| cx.at(&c.username, &format!("upstream.clients[{i}].username"), r))?;
        let creds = Credentials {
            username: c.username.get_ref().clone(),
            password: c.password.clone(),
        };
        if per_client_credentials.insert(id.clone(), creds).is_some() {
            return Err(cx.at(&c.client_id, &key, format!("{id:?} has credentials twice")));
        }
    }

    let file_mode = cx
        .string(&u.mode, "upstream.mode", |m| {
            UpstreamMode::from_name(m).map(|_| ()).ok_or_else(|| {
                format!("{m:?} is not a mode: expected \"transparent\" or \"aggregating\"")
            })
        })?
        .and_then(|m| UpstreamMode::from_name(&m));
    let session = UpstreamSessionConfig {
        mode: ov.upstream_mode.or(file_mode).unwrap_or_default(),
        per_client_identity: Default::default(),
        client_id_prefix: cx
            .string(&u.client_id_prefix, "upstream.client_id_prefix", no_nul)?
            .unwrap_or_default(),
        topic_prefix: cx
            .string(
                &u.topic_prefix,
                "upstream.topic_prefix",
                values::topic_prefix,
            )?
            .unwrap_or_default(),
        keep_alive: cx.dur(
            &u.keep_alive,
            "upstream.keep_alive",
            DEFAULT_KEEP_ALIVE,
            |d| {
                if d.is_zero() {
                    Ok(())
                } else {
                    whole_seconds_u16(d)
                }
            },
        )?,
        credentials,
        per_client_credentials,
        gateway_client_id: cx
            .string(
                &u.gateway_client_id,
                "upstream.gateway_client_id",
                non_empty,
            )?
            .unwrap_or_else(|| format!("mqtt-sn-gateway-{}", core.gateway_id)),
    };
    Ok((session, endpoint))
}

/// `tls = { … }`: files must exist and be readable; certificate and key go together.
fn tls(cx: &Ctx<'_>, t: &FileTls) -> Result<TlsConfig, ConfigError> {
    let file = |v: &Option<toml::Spanned<String>>, key: &str| {
        v.as_ref().map(|s| cx.readable_file(s, key)).transpose()
    };
    match (&t.client_cert, &t.client_key) {
        (Some(c), None) => {
            return Err(cx.at(
                c,
                "upstream.tls.client_cert",
                "a client certificate needs upstream.tls.client_key",
            ));
        }
        (None, Some(k)) => {
            return Err(cx.at(
                k,
                "upstream.tls.client_key",
                "a client key needs upstream.tls.client_cert",
            ));
        }
        _ => {}
    }
    let certificates = |v: &Option<toml::Spanned<String>>, key: &str| {
        v.as_ref()
            .map(|s| {
                let path = cx.readable_file(s, key)?;
                pem_certificates(&path).map_err(|why| cx.at(s, key, why))?;
                Ok(path)
            })
            .transpose()
    };
    Ok(TlsConfig {
        ca_file: certificates(&t.ca_file, "upstream.tls.ca_file")?,
        client_cert: certificates(&t.client_cert, "upstream.tls.client_cert")?,
        client_key: file(&t.client_key, "upstream.tls.client_key")?,
        server_name: cx.string(&t.server_name, "upstream.tls.server_name", non_empty)?,
    })
}

/// A file that must hold PEM certificates (a CA file, a client certificate): one holding a
/// private key is refused, so a key is never handed out where certificates belong (and a
/// mix-up of the two settings is caught at once).
fn pem_certificates(path: &std::path::Path) -> Result<(), String> {
    let shown = path.display();
    let text = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let text = String::from_utf8_lossy(&text);
    if text.contains("PRIVATE KEY-----") {
        return Err(format!(
            "{shown} holds a private key, not certificates; give the CA's certificate (PEM)"
        ));
    }
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!("{shown} holds no PEM certificate"));
    }
    Ok(())
}
