//! The dead man's switch: kill the real `wildbot` binary while it has an order resting on the
//! simulated exchange; the exchange cancels it when the timer runs out.

mod common;

use std::time::{Duration, Instant};

use wildbot::sim::rest::{DEMO_KEY, DEMO_SECRET, RestSim};
use wildbot::sim::{SimConfig, Simulator};

use common::open_orders;

#[test]
fn a_killed_bot_leaves_no_order_behind() {
    let ws = Simulator::start(SimConfig::default()).unwrap();
    let rest = RestSim::start("10000", "0", ws.market()).unwrap();
    let cfg = std::env::temp_dir().join(format!("wildbot-deadman-{}.toml", std::process::id()));
    std::fs::write(
        &cfg,
        format!(
            "live_mode = true\nws_url = \"{}\"\nrest_url = \"{}\"\nws_auth_url = \"{}\"\ndeadman_refresh_s = 1\n\
             deadman_timeout_s = 3\nrest_min_interval_ms = 100\nfill_poll_s = 1\n\
             min_volatility_bps = 0\nlog_level = \"warn\"\n\
             dashboard_bind = \"127.0.0.1:0\"\n",
            ws.url(),
            rest.url(),
            rest.private().url()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wildbot"))
        .args(["run", "--config"])
        .arg(&cfg)
        .env("KRAKEN_API_KEY", DEMO_KEY)
        .env("KRAKEN_API_SECRET", DEMO_SECRET)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while open_orders(&rest) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(open_orders(&rest) > 0, "the bot placed an order");
    assert!(rest.exchange().calls.contains_key("CancelAllOrdersAfter"));
    child.kill().unwrap(); // SIGKILL: no chance to cancel anything
    child.wait().unwrap();
    std::fs::remove_file(&cfg).unwrap();
    let killed = Instant::now();
    assert!(open_orders(&rest) > 0, "still resting right after the kill");
    while open_orders(&rest) > 0 && killed.elapsed() < Duration::from_secs(6) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(open_orders(&rest), 0, "cancelled by the exchange's timer");
    assert!(rest.exchange().deadman_cancels >= 1);
    // Within the configured timeout (3 s) of the last refresh, not by luck much later.
    assert!(
        killed.elapsed() <= Duration::from_millis(3_500),
        "{:?}",
        killed.elapsed()
    );
}
