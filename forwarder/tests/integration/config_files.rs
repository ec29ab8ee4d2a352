//! The forwarder's configuration fixtures in `config/` (`docs/architecture.md`,
//! "Configuration"):
//!
//! - `config/forwarder.toml` (the shipped file) loads and equals the compiled-in copy;
//! - every `config/valid/forwarder-*.toml` loads;
//! - every `config/invalid/forwarder-*.toml` fails; its first line is `# expect: <substring>`
//!   and the message must contain that substring and name the file. Validation errors of a key
//!   in the file carry a `:line:col` position (the no-ports error has none: there is no value
//!   to point at).
//!
//! Adding a fixture needs no code change.

use std::path::{Path, PathBuf};

use forwarder::config::{self, ConfigError};

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config")
}

fn fixtures(sub: &str) -> Vec<PathBuf> {
    let dir = config_dir().join(sub);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.starts_with("forwarder-") && name.ends_with(".toml")
        })
        .collect();
    out.sort();
    out
}

#[test]
fn there_are_fixtures_of_both_kinds() {
    assert!(fixtures("valid").len() >= 3);
    assert!(fixtures("invalid").len() >= 15);
}

#[test]
fn the_shipped_file_loads_and_is_the_compiled_in_copy() {
    let path = config_dir().join("forwarder.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text, config::SHIPPED);
    let s = config::load(&path).unwrap();
    assert_eq!(s.io.ports.len(), 1);
    assert_eq!(
        s.core.gateway, None,
        "the shipped file discovers the gateway"
    );
}

#[test]
fn every_valid_fixture_loads() {
    let failures: Vec<String> = fixtures("valid")
        .iter()
        .filter_map(|p| {
            config::load(p)
                .err()
                .map(|e| format!("{}: {e}", p.display()))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_invalid_fixture_fails_with_its_expected_message() {
    let mut failures = Vec::new();
    for path in fixtures("invalid") {
        let text = std::fs::read_to_string(&path).unwrap();
        let Some(expect) = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect:"))
        else {
            failures.push(format!(
                "{}: first line must be `# expect: …`",
                path.display()
            ));
            continue;
        };
        match config::load(&path) {
            Ok(_) => failures.push(format!("{}: loaded, expected an error", path.display())),
            Err(e) => {
                let msg = e.to_string();
                if !msg.contains(expect.trim()) || !msg.contains(&path.display().to_string()) {
                    failures.push(format!("{}: {msg:?} lacks {expect:?}", path.display()));
                }
                let positioned =
                    matches!(e, ConfigError::Parse { .. } | ConfigError::Invalid { .. });
                if positioned && e.position().is_none() && !msg.contains("at least one [[ports]]") {
                    failures.push(format!("{}: no position in {msg:?}", path.display()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_full_fixture_sets_every_value() {
    let s = config::load(&config_dir().join("valid/forwarder-full.toml")).unwrap();
    assert_eq!(s.core.gateway, Some("192.168.4.1:1883".parse().unwrap()));
    assert!(!s.core.relay_advertise);
    assert_eq!(
        (s.core.relay_radius, s.core.max_nodes, s.core.max_queue),
        (3, 10, 64)
    );
    assert_eq!(s.io.stats_interval, None);
    assert_eq!(s.io.ports.len(), 5);
    assert_eq!(s.core.ports.len(), 5);
    assert_eq!(s.core.discovery.missed_advertise_limit, 5);
    let summary = s.to_string();
    for needle in [
        "xbee-api1",
        "slip-addressed",
        "wnid 0a0b",
        "239.255.1.1:10001",
        "9600 baud",
    ] {
        assert!(summary.contains(needle), "{needle} in {summary}");
    }
}
