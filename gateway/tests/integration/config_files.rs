//! The configuration fixtures in `config/` (`docs/architecture.md`, "Configuration"):
//!
//! - `config/gateway.toml` (the shipped file) loads and equals the compiled-in copy;
//! - every `config/valid/gateway-*.toml` loads;
//! - every `config/invalid/gateway-*.toml` fails. Its first line is `# expect: <substring>`; the
//!   message must contain that substring and the file's path, and must carry a `:line:col`
//!   position unless the file has a `# position: none` line. An optional `# at: LINE:COL` line
//!   pins the exact position.
//!
//! Adding a fixture needs no code change.

use std::path::{Path, PathBuf};

use gateway::config::{self, ConfigError};

/// The repository's `config/` folder.
fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config")
}

/// `config/<sub>/gateway-*.toml`, sorted.
fn fixtures(sub: &str) -> Vec<PathBuf> {
    let dir = config_dir().join(sub);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.starts_with("gateway-") && name.ends_with(".toml")
        })
        .collect();
    out.sort();
    out
}

/// The value of a `# <key>: value` header line, if any.
fn header<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let prefix = format!("# {key}:");
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| l.strip_prefix(&prefix))
        .map(str::trim)
}

/// Splits `"<path>:<line>:<col>: rest"` after `path`; `None` when no position follows.
fn position_after(message: &str, path: &str) -> Option<(usize, usize)> {
    let rest = message.strip_prefix(path)?.strip_prefix(':')?;
    let mut parts = rest.splitn(3, ':');
    let line = parts.next()?.parse().ok()?;
    let col = parts.next()?.parse().ok()?;
    Some((line, col))
}

#[test]
fn there_are_fixtures_of_both_kinds() {
    assert!(fixtures("valid").len() >= 3, "{:?}", fixtures("valid"));
    assert!(fixtures("invalid").len() >= 12, "{:?}", fixtures("invalid"));
}

#[test]
fn every_valid_fixture_loads() {
    let mut failures = Vec::new();
    for path in fixtures("valid") {
        if let Err(e) = config::load(&path) {
            failures.push(format!("{}: {e}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "valid fixtures failed:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_invalid_fixture_fails_with_its_expected_message_and_position() {
    let mut failures = Vec::new();
    for path in fixtures("invalid") {
        let text = std::fs::read_to_string(&path).unwrap();
        let shown = path.display().to_string();
        let Some(expect) = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect:"))
        else {
            failures.push(format!(
                "{shown}: first line must be `# expect: <substring>`"
            ));
            continue;
        };
        let expect = expect.trim();
        let err = match config::load(&path) {
            Ok(_) => {
                failures.push(format!(
                    "{shown}: loaded, expected an error containing {expect:?}"
                ));
                continue;
            }
            Err(e) => e,
        };
        let message = err.to_string();
        if !message.contains(expect) {
            failures.push(format!("{shown}: {message:?} does not contain {expect:?}"));
        }
        if !message.contains(&shown) {
            failures.push(format!("{shown}: {message:?} does not name the file"));
        }
        assert!(
            matches!(err, ConfigError::Parse { .. } | ConfigError::Invalid { .. }),
            "{shown}: unexpected kind {err:?}"
        );
        let wants_position = header(&text, "position") != Some("none");
        match (
            position_after(&message, &shown),
            err.position(),
            wants_position,
        ) {
            (Some(shown_pos), Some(p), true) => {
                assert_eq!(shown_pos, (p.line, p.column), "{shown}: {message}");
                if let Some(at) = header(&text, "at") {
                    let want = format!("{}:{}", p.line, p.column);
                    if at != want {
                        failures.push(format!("{shown}: position {want}, `# at:` says {at}"));
                    }
                }
                // The position points into the body, not at the header comment.
                let line = text.lines().nth(p.line - 1).unwrap_or_default();
                if line.starts_with('#') {
                    failures.push(format!("{shown}: position {p} points at a comment"));
                }
            }
            (None, None, false) => {}
            (pos, _, true) => {
                failures.push(format!("{shown}: {message:?} has no :line:col ({pos:?})"));
            }
            (_, _, false) => failures.push(format!("{shown}: `# position: none` but {message:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "invalid fixtures:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_shipped_config_loads_and_is_the_compiled_in_copy() {
    let path = config_dir().join("gateway.toml");
    let settings = config::load(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), config::SHIPPED);
    assert_eq!(settings.io.listeners.len(), 1);
    assert_eq!(
        settings.io.listeners[0].bind,
        "0.0.0.0:1883".parse().unwrap()
    );
    assert_eq!(settings.io.upstream.host, "127.0.0.1");
    assert_eq!(settings.io.upstream.port, 1883);
}

#[test]
fn the_shipped_config_spells_out_the_defaults() {
    let shipped = config::parse(config::SHIPPED, Path::new("gateway.toml")).unwrap();
    let empty = config::parse("", Path::new("empty.toml")).unwrap();
    assert_eq!(shipped, empty);
}

#[test]
fn the_full_fixture_sets_every_value() {
    let s = config::load(&config_dir().join("valid/gateway-full.toml")).unwrap();
    let empty = config::parse("", Path::new("empty.toml")).unwrap();
    let (c, d) = (&s.core, &empty.core);
    assert_ne!(c.gateway_id, d.gateway_id);
    assert_ne!(c.client_id_max_len, d.client_id_max_len);
    assert_ne!(c.max_clients, d.max_clients);
    assert_ne!(c.max_topics_per_client, d.max_topics_per_client);
    assert_ne!(c.max_packet_size, d.max_packet_size);
    assert_ne!(c.max_inflight_from_client, d.max_inflight_from_client);
    assert_ne!(c.downlink_queue, d.downlink_queue);
    assert_ne!(c.uplink_buffer, d.uplink_buffer);
    assert_ne!(c.allow_address_change, d.allow_address_change);
    assert_ne!(c.t_retry, d.t_retry);
    assert_ne!(c.n_retry, d.n_retry);
    assert_ne!(c.tolerance, d.tolerance);
    assert_ne!(c.max_keep_alive, d.max_keep_alive);
    assert_ne!(c.sleep, d.sleep);
    assert_ne!(c.discovery, d.discovery);
    assert_ne!(c.qos_minus1, d.qos_minus1);
    assert_ne!(c.forwarders, d.forwarders);
    assert_ne!(
        c.limits.new_sessions_per_address,
        d.limits.new_sessions_per_address
    );
    assert_ne!(
        c.limits.new_sessions_per_forwarder,
        d.limits.new_sessions_per_forwarder
    );
    assert_eq!(
        c.limits.unregistered_idle_timeout, None,
        "\"0s\" turns it off"
    );
    assert_ne!(c.predefined, d.predefined);
    assert_ne!(c.upstream.client_id_prefix, d.upstream.client_id_prefix);
    assert_ne!(c.upstream.topic_prefix, d.upstream.topic_prefix);
    assert_ne!(c.upstream.keep_alive, d.upstream.keep_alive);
    assert_ne!(c.upstream.credentials, d.upstream.credentials);
    assert_ne!(
        c.upstream.per_client_credentials,
        d.upstream.per_client_credentials
    );
    assert_ne!(c.upstream.gateway_client_id, d.upstream.gateway_client_id);
    let (u, e) = (&s.io.upstream, &empty.io.upstream);
    assert_ne!(u.scheme, e.scheme);
    assert_ne!(u.host, e.host);
    assert_ne!(u.port, e.port);
    assert_ne!(u.tls, e.tls);
    assert_ne!(u.connect_timeout, e.connect_timeout);
    assert_ne!(u.backoff_initial, e.backoff_initial);
    assert_ne!(u.backoff_max, e.backoff_max);
    assert_ne!(u.max_packet_size, e.max_packet_size);
    assert_ne!(u.inflight, e.inflight);
    assert_ne!(s.io.http, empty.io.http);
    assert_eq!(s.io.http, Some("0.0.0.0:9187".parse().unwrap()));
    assert_eq!(s.io.listeners.len(), 3);
    assert!(s.io.listeners[0].multicast.is_some() && s.io.listeners[1].multicast.is_some());
    // Relative TLS paths are taken from the file's directory.
    let ca = u.tls.ca_file.as_ref().unwrap();
    assert!(ca.ends_with("valid/tls/ca.pem"), "{}", ca.display());
    assert!(ca.is_file());
}

/// Client registry fixtures (`clients-*.toml`): the valid ones load, each invalid one fails with
/// its expected message, its own file name and a position.
#[test]
fn registry_fixtures_load_or_fail_with_file_line_and_column() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let mut seen = 0;
    for (sub, valid) in [("valid", true), ("invalid", false)] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.starts_with("clients-") || !name.ends_with(".toml") {
                continue;
            }
            seen += 1;
            let result = gateway::config::registry::load_registry(&path, 23);
            if valid {
                assert!(!result.unwrap().entries.is_empty(), "{name}");
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let expect = text
                .lines()
                .next()
                .unwrap()
                .strip_prefix("# expect: ")
                .unwrap();
            let err = result.expect_err(&name);
            let msg = err.to_string();
            assert!(msg.contains(expect), "{name}: {msg}");
            assert!(msg.contains(&name), "{name}: {msg} does not name the file");
            assert!(err.position().is_some(), "{name}: {msg} has no position");
        }
    }
    assert!(seen >= 6, "only {seen} registry fixtures found");
}
