//! The status page rendered by a real browser: headless Chromium loads `/` from a gateway with
//! a connected mote and a sleeping one; the DOM must show them, their states and the upstream
//! state, and a screenshot is taken.
//!
//! Needs Debian's `chromium` package (`/usr/bin/chromium`, or the binary named by `SN_CHROMIUM`). Without it the test prints a skip
//! notice and passes, unless `SN_REQUIRE_CHROMIUM=1`, which makes a missing browser a failure.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sn_codec::{Packet, ReturnCode};
use sn_tests::{Mosquitto, SnClient, TestGateway};

const WAIT: Duration = Duration::from_secs(5);

/// How long one Chromium run may take.
const BROWSER_LIMIT: Duration = Duration::from_secs(60);

/// The Chromium binary, if installed (`SN_CHROMIUM` names another one).
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SN_CHROMIUM") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Runs headless Chromium with `extra` arguments on `url`; returns its stdout.
async fn run_chromium(bin: &Path, profile: &Path, extra: &[String], url: &str) -> String {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(url)
    .stdin(std::process::Stdio::null())
    .kill_on_drop(true);
    let out = tokio::time::timeout(BROWSER_LIMIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("chromium did not finish within {BROWSER_LIMIT:?}"))
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn headless_chromium_shows_the_motes_and_the_upstream_state() {
    let Some(bin) = chromium() else {
        let required = std::env::var("SN_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "SN_REQUIRE_CHROMIUM=1 but chromium is not installed (apt-get install chromium)"
        );
        eprintln!(
            "SKIP headless_chromium_shows_the_motes_and_the_upstream_state: chromium is not \
             installed (apt-get install chromium; set SN_REQUIRE_CHROMIUM=1 to make this a failure)"
        );
        return;
    };
    let broker = Mosquitto::start().await.unwrap();
    let (core, mut io) = sn_tests::gateway::test_settings(&broker.url()).unwrap();
    io.http = Some("127.0.0.1:0".parse().unwrap());
    let gw = TestGateway::start_with(core, io).await.unwrap();
    gw.wait_upstream(true, WAIT).await.unwrap();

    let awake = SnClient::new(gw.addr).await.unwrap();
    assert_eq!(
        awake.connect("mote-<north>", true, 60).await.unwrap(),
        ReturnCode::Accepted
    );
    let sleeper = SnClient::new(gw.addr).await.unwrap();
    assert_eq!(
        sleeper.connect("mote-sleepy", true, 60).await.unwrap(),
        ReturnCode::Accepted
    );
    sleeper
        .send(&Packet::Disconnect {
            duration: Some(600),
        })
        .await
        .unwrap();
    sleeper
        .expect(&Packet::Disconnect { duration: None })
        .await
        .unwrap();

    let url = format!("http://{}/", gw.http_addr().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let dom = run_chromium(
        &bin,
        &tmp.path().join("profile-dom"),
        &["--dump-dom".to_owned()],
        &url,
    )
    .await;
    for want in [
        "<title>MQTT-SN gateway 1</title>",
        "<td>mote-&lt;north&gt;</td>",
        "<td class=\"state-active\">active</td>",
        "<td>mote-sleepy</td>",
        "<td class=\"state-asleep\">asleep</td>",
        "id=\"upstream\" class=\"up\">connected</span>",
        "2 clients: 1 active, 1 asleep",
        "s ago</td>",
    ] {
        assert!(dom.contains(want), "the DOM lacks {want:?}:\n{dom}");
    }

    let png = tmp.path().join("status.png");
    run_chromium(
        &bin,
        &tmp.path().join("profile-shot"),
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1200,800".to_owned(),
            "--hide-scrollbars".to_owned(),
        ],
        &url,
    )
    .await;
    let bytes = std::fs::read(&png).expect("the screenshot file");
    assert!(bytes.len() > 1000, "screenshot of {} bytes", bytes.len());
    assert_eq!(bytes.get(..8), Some(&b"\x89PNG\r\n\x1a\n"[..]), "a PNG");
    if let Ok(dir) = std::env::var("SN_SCREENSHOT_DIR") {
        let _ = std::fs::copy(&png, Path::new(&dir).join("status.png"));
    }
    gw.stop().await;
}
