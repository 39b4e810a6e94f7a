//! The real `wildbot` binary end to end against the in-process Kraken simulator.

use std::process::Command;

/// The binary; sessions get a dashboard on a free port (tests run side by side).
fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wildbot"));
    c.env_remove("TELEGRAM_BOT_TOKEN");
    c
}

/// Runs the command, requires success, and returns the JSON summary on its last stdout line.
fn summary(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    last_json_line(&out.stdout)
}

fn last_json_line(stdout: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stdout);
    let last = text.lines().last().expect("some output");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {text}"))
}

#[test]
fn demo_trades_for_twenty_seconds_and_summarises_as_json() {
    let s = summary(bin().args([
        "demo",
        "--duration",
        "20",
        "--json",
        "--log-level",
        "warn",
        "--set",
        "dashboard_bind=127.0.0.1:0",
    ]));
    for key in [
        "mode",
        "ticks",
        "book_messages",
        "checksum_mismatches",
        "reconnects",
        "orders_placed",
        "orders_cancelled",
        "fills",
        "position",
        "realized_pnl",
        "equity",
        "fees_paid",
    ] {
        assert!(s.get(key).is_some(), "missing {key}: {s}");
    }
    assert_eq!(
        s["mode"], "live",
        "the demo trades through the simulator's signed REST API"
    );
    assert!(s["intent_to_ack"]["count"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["shutdown_cancel_confirmed"], true);
    assert_eq!(s["execution_faults"], 0);
    assert!(s["ticks"].as_u64().unwrap() > 1000, "{s}");
    assert!(s["orders_placed"].as_u64().unwrap() > 0, "{s}");
    // Calm requoting: a few orders a second at most, and most of what the core decides
    // reaches the exchange (little is collapsed unsent in the worker's queue).
    let (sent, decided) = (
        s["orders_placed"].as_u64().unwrap(),
        s["orders_decided"].as_u64().unwrap(),
    );
    assert!(s["orders_per_s"].as_f64().unwrap() <= 3.0, "{s}");
    assert!(sent <= decided && sent * 5 >= decided * 4, "{s}");
    assert_eq!(
        sent + s["orders_collapsed"].as_u64().unwrap(),
        decided,
        "{s}"
    );
    assert!(s["fills"].as_u64().unwrap() > 0, "{s}");
    assert!(
        s["fees_paid"].as_f64().unwrap() > 0.0,
        "fills pay the maker fee: {s}"
    );
    assert_eq!(s["checksum_mismatches"], 0);
    assert_eq!(s["quotes_while_stale"], 0);
    assert!(s["tick_to_intent"]["count"].as_u64().unwrap() > 0);
}

#[test]
fn recorded_demo_feed_verifies_over_tls() {
    let path = std::env::temp_dir().join(format!("wildbot-rec-{}.jsonl", std::process::id()));
    let s = summary(
        bin()
            .args([
                "demo",
                "--set",
                "dashboard_bind=127.0.0.1:0",
                "--tls",
                "--duration",
                "3",
                "--json",
                "--log-level",
                "warn",
                "--record",
            ])
            .arg(&path),
    );
    let recorded = s["frames_recorded"].as_u64().unwrap();
    assert!(recorded > 300, "{s}");
    assert_eq!(recorded, s["frames"].as_u64().unwrap());
    assert_eq!(s["recorder_dropped"], 0);
    // The recording is a feed file: every checksum in it verifies.
    let v = bin().arg("verify-feed").arg(&path).output().unwrap();
    let text = String::from_utf8_lossy(&v.stdout);
    assert!(v.status.success(), "{text}");
    assert!(text.contains("0 failed"), "{text}");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn live_mode_without_credentials_is_refused_and_names_them() {
    let cfg = std::env::temp_dir().join(format!("wildbot-live-{}.toml", std::process::id()));
    std::fs::write(&cfg, "live_mode = true\n").unwrap();
    let out = bin()
        .args(["run", "--duration", "1", "--config"])
        .arg(&cfg)
        .env_remove("KRAKEN_API_KEY")
        .env_remove("KRAKEN_API_SECRET")
        .output()
        .unwrap();
    std::fs::remove_file(&cfg).unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("live_mode") && err.contains("KRAKEN_API_KEY"),
        "{err}"
    );
}
