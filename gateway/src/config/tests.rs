//! Unit tests of the configuration pipeline (the fixture files are covered by
//! `gateway/tests/integration/config_files.rs`).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::core::config::{Credentials, OverflowPolicy};
use crate::io::config::Scheme;

/// Parses `text` as `t.toml`.
fn ok(text: &str) -> Settings {
    parse(text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"))
}

/// The error `text` produces, as displayed.
fn err(text: &str) -> String {
    match parse(text, Path::new("t.toml")) {
        Ok(s) => panic!("accepted:\n{text}\n{s:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn an_empty_file_gives_the_documented_defaults() {
    let s = ok("");
    let core = GatewayConfig {
        upstream: crate::core::config::UpstreamSessionConfig {
            keep_alive: Duration::from_secs(60),
            gateway_client_id: "mqtt-sn-gateway-1".into(),
            ..Default::default()
        },
        ..GatewayConfig::default()
    };
    assert_eq!(s.core, core);
    // The registry defaults to clients.toml beside the configuration file.
    let io = IoConfig {
        registry_file: Some(std::path::PathBuf::from("./clients.toml")),
        ..IoConfig::default()
    };
    assert_eq!(s.io, io);
}

#[test]
fn values_are_carried_into_the_typed_config() {
    let s = ok(r#"
        [gateway]
        id = 0
        client_id_max_len = 64
        [timers]
        t_retry = "250ms"
        n_retry = 20
        max_keep_alive = "15m"
        [sleep]
        overflow = "drop_oldest"
        [discovery]
        enabled = true
        advertise_interval = "2h"
        [upstream]
        url = "mqtt://broker:1884"
        username = "gw"
        keep_alive = "0s"
    "#);
    assert_eq!(s.core.gateway_id, 0);
    assert_eq!(s.core.client_id_max_len, 64);
    assert_eq!(s.core.t_retry, Duration::from_millis(250));
    assert_eq!(s.core.n_retry, 20);
    assert_eq!(s.core.max_keep_alive, Some(Duration::from_secs(900)));
    assert_eq!(s.core.sleep.overflow, OverflowPolicy::DropOldest);
    assert_eq!(
        s.core.discovery.map(|d| d.advertise_interval),
        Some(Duration::from_secs(7200))
    );
    assert_eq!(s.core.upstream.keep_alive, Duration::ZERO);
    assert_eq!(
        s.core.upstream.credentials,
        Some(Credentials {
            username: "gw".into(),
            password: None
        })
    );
    assert_eq!(s.core.upstream.gateway_client_id, "mqtt-sn-gateway-0");
    assert_eq!(
        (s.io.upstream.scheme, s.io.upstream.port),
        (Scheme::Mqtt, 1884)
    );
}

#[test]
fn discovery_settings_are_checked_even_when_disabled() {
    assert!(
        ok("[discovery]\nadvertise_interval = \"10m\"\n")
            .core
            .discovery
            .is_none()
    );
    let e = err("[discovery]\nmax_gwinfo_delay = \"200m\"\n");
    assert!(
        e.starts_with("t.toml:2:20: invalid value for discovery.max_gwinfo_delay"),
        "{e}"
    );
}

#[test]
fn predefined_ids_are_global_unless_clients_are_listed() {
    let s = ok(r#"
        [[predefined]]
        id = 1
        topic = "a"
        [[predefined]]
        id = 2
        topic = "b"
        clients = ["*"]
        [[predefined]]
        id = 1
        topic = "c"
        clients = ["m1", "m2"]
        [[predefined]]
        id = 3
        topic = "a"
        clients = ["m1"]
    "#);
    let p = &s.core.predefined;
    assert_eq!(p.global.len(), 2);
    assert_eq!(p.topic(None, 1), Some("a"));
    assert_eq!(p.topic(Some("m1"), 1), Some("c"));
    assert_eq!(p.topic(Some("m2"), 1), Some("c"));
    assert_eq!(p.topic(Some("m3"), 1), Some("a"));
    assert_eq!(p.topic(Some("m1"), 3), Some("a"));
    assert_eq!(p.topic(Some("m2"), 3), None);
}

#[test]
fn predefined_conflicts_are_rejected_with_the_second_position() {
    let e = err("[[predefined]]\nid = 1\ntopic = \"a\"\n[[predefined]]\nid = 2\ntopic = \"a\"\n");
    assert!(
        e.starts_with("t.toml:6:9: invalid value for predefined[1].topic"),
        "{e}"
    );
    assert!(e.contains("already predefined globally as id 1"), "{e}");
    let e = err("[[predefined]]\nid = 1\ntopic = \"a\"\nclients = []\n");
    assert!(
        e.contains("predefined[0].clients: the list is empty"),
        "{e}"
    );
    let e = err("[[predefined]]\nid = 1\ntopic = \"a\"\nclients = [\"m\", \"m\"]\n");
    assert!(e.contains("\"m\" is listed twice"), "{e}");
    let e =
        err("[[predefined]]\nid = 1\ntopic = \"a\"\nclients = [\"abcdefghijklmnopqrstuvwx\"]\n");
    assert!(
        e.contains("longer than gateway.client_id_max_len (23)"),
        "{e}"
    );
    let e = err("[[predefined]]\nid = -4\ntopic = \"a\"\n");
    assert!(e.contains("-4 is not a topic id"), "{e}");
}

#[test]
fn multicast_settings_follow_the_group_family() {
    let s = ok(r#"
        [[listeners.udp]]
        bind = "0.0.0.0:1883"
        multicast = { group = "225.1.1.1:1884", interface = "127.0.0.1" }
        [[listeners.udp]]
        bind = "[::]:1883"
        multicast = { group = "[ff02::1:1]:1884", interface_index = 3, ttl = 4 }
    "#);
    let m0 = s.io.listeners[0].multicast.clone().unwrap();
    assert_eq!(m0.group, "225.1.1.1:1884".parse::<SocketAddr>().unwrap());
    assert_eq!(m0.interface_v4, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(m0.ttl, 1);
    let m1 = s.io.listeners[1].multicast.clone().unwrap();
    assert_eq!((m1.interface_v6, m1.ttl), (3, 4));

    let v4 = |m: &str| format!("[[listeners.udp]]\nbind = \"0.0.0.0:1883\"\nmulticast = {m}\n");
    let e = err(&v4(r#"{ group = "225.1.1.1:1884", interface_index = 1 }"#));
    assert!(e.contains("IPv4 groups take interface"), "{e}");
    let e = err(&v4(r#"{ group = "[ff02::1]:1884" }"#));
    assert!(e.contains("not the same IP version"), "{e}");
    let e = err(&v4(r#"{ group = "225.1.1.1:1884", ttl = 0 }"#));
    assert!(e.contains("multicast.ttl: 0 is out of range"), "{e}");
    let e = err(&v4(r#"{ group = "225.1.1.1:1884", interface = "eth0" }"#));
    assert!(e.contains("\"eth0\" is not an IPv4 address"), "{e}");
    let e = err(&v4(r#"{ group = "225.1.1.1:0" }"#));
    assert!(e.contains("needs a port"), "{e}");
    let e = err(&v4(r#"{ interface = "127.0.0.1" }"#));
    assert!(e.contains("missing field `group`"), "{e}");
}

#[test]
fn upstream_rules() {
    let e = err("[upstream]\nbackoff_initial = \"2m\"\n");
    assert!(
        e.starts_with("t.toml:2:19: invalid value for upstream.backoff_initial"),
        "{e}"
    );
    let e = err("[upstream]\nconnect_timeout = \"0s\"\n");
    assert!(e.contains("must be greater than zero"), "{e}");
    let e = err("[upstream]\ninflight = 0\n");
    assert!(e.contains("upstream.inflight: 0 is out of range"), "{e}");
    let e = err("[upstream]\ntopic_prefix = \"site/+/\"\n");
    assert!(e.contains("upstream.topic_prefix"), "{e}");
    let e = err("[upstream]\nusername = \"\"\n");
    assert!(e.contains("upstream.username: must not be empty"), "{e}");
    let e = err("[upstream]\ngateway_client_id = \"\"\n");
    assert!(e.contains("upstream.gateway_client_id"), "{e}");
    let e = err("[upstream]\ntls = { ca_file = \"\" }\n");
    assert!(e.contains("upstream.tls.ca_file: the path is empty"), "{e}");
    let e = err("[[upstream.clients]]\nclient_id = \"\"\nusername = \"u\"\n");
    assert!(
        e.contains("upstream.clients[0].client_id: must not be empty"),
        "{e}"
    );
    let e = err("[[upstream.clients]]\nclient_id = \"m\"\n");
    assert!(e.contains("missing field `username`"), "{e}");
    let s = ok("[[upstream.clients]]\nclient_id = \"m\"\nusername = \"u\"\npassword = \"p\"\n");
    let c = &s.core.upstream.per_client_credentials["m"];
    assert_eq!(c.password.as_deref(), Some("p"));
    assert!(!format!("{c:?}").contains("\"p\""));
}

#[test]
fn integers_of_the_wrong_type_or_size_have_positions() {
    let e = err("[gateway]\nmax_clients = 1.5\n");
    assert!(
        e.starts_with("t.toml:2:15: invalid type: floating point"),
        "{e}"
    );
    assert!(e.contains("expected an integer"), "{e}");
    let e = err("[gateway]\nmax_clients = 0\n");
    assert!(e.contains("gateway.max_clients: 0 is out of range"), "{e}");
    let e = err("[gateway]\nallow_address_change = \"yes\"\n");
    assert!(e.starts_with("t.toml:2:24: invalid type: string"), "{e}");
}

#[test]
fn overrides_replace_file_values() {
    let ov = Overrides {
        listen: Some(vec!["127.0.0.1:1".parse().unwrap()]),
        upstream: Some(upstream_url("mqtt://other").unwrap()),
        gateway_id: Some(9),
        predefined: vec![(1, "flag/topic".into())],
        ..Overrides::default()
    };
    let text = r#"
        [gateway]
        id = 2
        [[listeners.udp]]
        bind = "0.0.0.0:1883"
        multicast = { group = "225.1.1.1:1884" }
        [upstream]
        url = "mqtt://broker"
        [[predefined]]
        id = 1
        topic = "file/topic"
        [[predefined]]
        id = 2
        topic = "file/two"
    "#;
    let s = parse_with(text, Path::new("t.toml"), &ov).unwrap();
    assert_eq!(s.core.gateway_id, 9);
    assert_eq!(s.core.upstream.gateway_client_id, "mqtt-sn-gateway-9");
    assert_eq!(s.io.listeners.len(), 1);
    assert_eq!(s.io.listeners[0].multicast, None);
    assert_eq!(s.io.upstream.host, "other");
    assert_eq!(s.core.predefined.topic(None, 1), Some("flag/topic"));
    assert_eq!(s.core.predefined.topic(None, 2), Some("file/two"));
    // The file is still validated on its own.
    let e = parse_with("[gateway]\nid = 999\n", Path::new("t.toml"), &ov).unwrap_err();
    assert!(e.to_string().contains("gateway.id"), "{e}");
}

#[test]
fn the_summary_shows_the_effective_values_without_passwords() {
    let s = ok(r#"
        [upstream]
        username = "gw"
        password = "hunter2"
        [[upstream.clients]]
        client_id = "m"
        username = "u"
        password = "hunter3"
        [[predefined]]
        id = 1
        topic = "a/b"
    "#);
    let text = s.to_string();
    assert!(!text.contains("hunter"), "{text}");
    for want in [
        "id 1",
        "udp 0.0.0.0:1883",
        if cfg!(feature = "embedded-broker") {
            "embedded://127.0.0.1:1883"
        } else {
            "mqtt://127.0.0.1:1883"
        },
        "keep-alive 60s",
        "1 = \"a/b\"",
    ] {
        assert!(text.contains(want), "summary lacks {want:?}:\n{text}");
    }
}

#[test]
fn the_http_endpoint_defaults_to_loopback_and_can_be_moved_or_turned_off() {
    assert_eq!(ok("").io.http, Some("127.0.0.1:8087".parse().unwrap()));
    assert_eq!(
        ok("[http]\nlisten = \"[::]:9000\"\n").io.http,
        Some("[::]:9000".parse().unwrap())
    );
    assert_eq!(ok("[http]\nlisten = \"off\"\n").io.http, None);
    let e = err("[http]\nlisten = \"8087\"\n");
    assert!(
        e.starts_with("t.toml:2:10: invalid value for http.listen"),
        "{e}"
    );
    let e = err("[http]\nport = 1\n");
    assert!(e.contains("unknown field"), "{e}");
    let flag = |v: Option<&str>| Overrides {
        http: v.map(|s| http_listen(s).unwrap()),
        ..Overrides::default()
    };
    let file = "[http]\nlisten = \"0.0.0.0:1\"\n";
    let s = parse_with(file, Path::new("t.toml"), &flag(Some("off"))).unwrap();
    assert_eq!(s.io.http, None);
    let s = parse_with(file, Path::new("t.toml"), &flag(Some("127.0.0.1:2"))).unwrap();
    assert_eq!(s.io.http, Some("127.0.0.1:2".parse().unwrap()));
    assert!(
        ok("[http]\nlisten = \"off\"\n")
            .to_string()
            .contains("http:       off")
    );
}

#[test]
fn upstream_mode_defaults_to_transparent_and_accepts_aggregating() {
    use crate::core::config::UpstreamMode;
    assert_eq!(ok("").core.upstream.mode, UpstreamMode::Transparent);
    let s = ok("[upstream]\nmode = \"aggregating\"\n");
    assert_eq!(s.core.upstream.mode, UpstreamMode::Aggregating);
    let e = err("[upstream]\nmode = \"Aggregating\"\n");
    assert!(
        e.starts_with("t.toml:2:8: invalid value for upstream.mode"),
        "{e}"
    );
}

#[test]
fn the_short_name_suback_id_and_custody_are_read_and_bad_values_named() {
    use crate::core::config::{CustodyMode, ShortSubackId};
    let s = ok("[gateway]\nshort_topic_suback_id = \"zero\"\n");
    assert_eq!(s.core.short_topic_suback_id, ShortSubackId::Zero);
    assert_eq!(
        ok("").core.short_topic_suback_id,
        ShortSubackId::Name,
        "the name's octets by default"
    );
    let e = err("[gateway]\nshort_topic_suback_id = \"maybe\"\n");
    assert!(
        e.starts_with("t.toml:2:25: invalid value for gateway.short_topic_suback_id"),
        "{e}"
    );
    let s = ok("[storage]\ncustody = \"gateway\"\ncustody_max_age = \"0s\"\n");
    assert_eq!(s.core.custody.mode, CustodyMode::Gateway);
    assert_eq!(s.core.custody.max_age, None);
    let e = err("[storage]\npath = \"off\"\ncustody = \"gateway\"\n");
    assert!(
        e.contains("storage.custody") && e.contains("needs the state database"),
        "{e}"
    );
    assert_eq!(
        ok("[upstream]\nmode = \"aggregating\"\n").core.custody.mode,
        CustodyMode::Gateway,
        "gateway custody by default in aggregating mode with a store"
    );
    assert_eq!(ok("").core.custody.mode, CustodyMode::Broker);
}

#[test]
fn the_summary_names_the_client_policy_the_registry_and_how_many_are_paired() {
    let text = ok("").to_string();
    assert!(
        text.contains(
            "clients:    policy open (any ClientId), registry ./clients.toml (not there yet"
        ),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("clients.toml"),
        "[[client]]\nclient_id = \"a\"\naddress = \"192.0.2.1\"\n\n[[client]]\nclient_id = \"b\"\n",
    )
    .unwrap();
    let config = dir.path().join("gateway.toml");
    let s = parse("[clients]\npolicy = \"registered-only\"\n", &config).unwrap();
    let text = s.to_string();
    let want = format!(
        "clients:    policy registered-only, registry {} (2 paired, 1 pinned)",
        dir.path().join("clients.toml").display()
    );
    assert!(text.contains(&want), "summary lacks {want:?}:\n{text}");
}
