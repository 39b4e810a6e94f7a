//! The dashboard of the real binary: routes, headers, health, Prometheus metrics, access
//! control, and a clean shutdown on SIGINT.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Bot, bin, demo, get, status_until};
use wildbot::sim::{SimConfig, Simulator};

#[test]
fn dashboard_serves_status_health_metrics_and_page_then_sigint_shuts_down_cleanly() {
    let bot = demo(&[]);
    // Wait for real trading data: quotes out and latency samples.
    let s = status_until(&bot.url, Duration::from_secs(30), |s| {
        s["counters"]["orders_placed"].as_u64().unwrap_or(0) > 0
            && s["feed"] == "fresh"
            && s["latency"]["tick_to_intent"]["count"]
                .as_u64()
                .unwrap_or(0)
                > 0
    });

    // /api/status: everything the page shows.
    assert_eq!(
        s["live_mode"], true,
        "the demo trades live against the simulator"
    );
    assert_eq!(s["mode"], "LIVE");
    assert_eq!(s["symbol"], "BTC/USD");
    for key in [
        "microprice",
        "ema",
        "momentum_bps",
        "momentum",
        "volatility_bps",
        "skew_bps",
        "spread_bps",
        "best_bid",
        "best_ask",
        "balance",
        "position",
        "realized_pnl",
        "unrealized_pnl",
        "fees_paid",
        "equity",
        "peak_equity",
        "drawdown_pct",
        "max_drawdown_pct",
        "win_rate",
        "uptime_s",
    ] {
        assert!(s[key].is_number(), "{key} is a number: {s}");
    }
    assert_eq!(
        s["momentum"], s["momentum_bps"],
        "the original name, same figure"
    );
    for key in ["round_trips", "wins", "losses"] {
        assert!(s[key].is_u64(), "{key}: {s}");
    }
    assert!(s.get("avg_cost").is_some());
    assert!(s["trade_history"].is_array() && s["open_orders"].is_array());
    assert!(["quoting", "paused", "waiting_for_book"].contains(&s["state"].as_str().unwrap()));
    let micro = s["microprice"].as_f64().unwrap();
    let (bid, ask) = (
        s["best_bid"].as_f64().unwrap(),
        s["best_ask"].as_f64().unwrap(),
    );
    assert!(
        bid <= micro && micro <= ask,
        "microprice within the touch: {s}"
    );
    for stage in [
        "wire_to_frame",
        "frame_to_parsed",
        "book_apply",
        "strategy",
        "tick_to_intent",
        "frame_to_done",
    ] {
        let r = &s["latency"][stage];
        assert!(r["count"].as_u64().unwrap() > 0, "{stage}: {r}");
        assert!(r["p50_ns"].as_u64().unwrap() <= r["p99_ns"].as_u64().unwrap());
    }
    // The worker's figures arrive too (live mode).
    let s = status_until(&bot.url, Duration::from_secs(10), |s| {
        s["latency"]["intent_to_ack"]["count"].as_u64().unwrap_or(0) > 0
    });
    assert!(
        s["latency"]["rest_addorder"]["count"].as_u64().unwrap() > 0,
        "{s}"
    );

    let a = get(&format!("{}/api/status", bot.url), None);
    assert_eq!(a.status, 200);
    assert_eq!(a.content_type, "application/json");
    assert_eq!(a.cache_control, "no-cache");

    let h = get(&format!("{}/health", bot.url), None);
    assert_eq!(h.status, 200, "{}", h.body);
    assert_eq!(h.cache_control, "no-cache");
    let hj = h.json();
    assert_eq!(hj["status"], "ok");
    assert_eq!(hj["feed"], "fresh");
    assert!(hj["uptime_s"].as_f64().unwrap() > 0.0);

    let m = get(&format!("{}/metrics", bot.url), None);
    assert_eq!(m.status, 200);
    assert!(
        m.content_type.starts_with("text/plain"),
        "{}",
        m.content_type
    );
    assert_eq!(m.cache_control, "no-cache");
    for needle in [
        "# TYPE wildbot_ticks_total counter",
        "# TYPE wildbot_messages_total counter",
        "wildbot_checksum_mismatches_total 0",
        "wildbot_reconnects_total 0",
        "wildbot_dropped_messages_total{channel=\"notices\"}",
        "# TYPE wildbot_orders_placed_total counter",
        "# TYPE wildbot_fills_total counter",
        "# TYPE wildbot_realized_pnl gauge",
        "wildbot_realized_pnl{currency=\"USD\"}",
        "# TYPE wildbot_equity gauge",
        "# TYPE wildbot_fees_total counter",
        "wildbot_fees_total{currency=\"USD\"}",
        "wildbot_traded_base_total{asset=\"BTC\"}",
        "wildbot_position{asset=\"BTC\"}",
        "wildbot_state{state=\"quoting\"}",
        "wildbot_paused{reason=\"volatility\"}",
        "wildbot_build_info{version=\"",
        "# TYPE wildbot_latency_seconds histogram",
        "wildbot_latency_seconds_bucket{stage=\"frame_to_done\",le=\"0.000001\"}",
        "wildbot_latency_seconds_bucket{stage=\"frame_to_done\",le=\"+Inf\"}",
        "wildbot_latency_seconds_sum{stage=\"frame_to_done\"}",
        "wildbot_latency_seconds_count{stage=\"frame_to_done\"}",
    ] {
        assert!(m.body.contains(needle), "{needle} missing:\n{}", m.body);
    }
    let ticks: f64 = m
        .body
        .lines()
        .find_map(|l| l.strip_prefix("wildbot_ticks_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(ticks > 0.0);
    // Exactly one state is current; a stage with no sample has no series (not a fake 0).
    let current = m
        .body
        .lines()
        .filter(|l| l.starts_with("wildbot_state{") && l.ends_with(" 1"))
        .count();
    assert_eq!(current, 1, "{}", m.body);
    for l in m
        .body
        .lines()
        .filter(|l| l.starts_with("wildbot_latency_seconds_count"))
    {
        assert!(!l.ends_with(" 0"), "an empty stage is reported: {l}");
    }
    assert!(
        !m.body.contains("quantile="),
        "no summaries left:\n{}",
        m.body
    );

    let page = get(&format!("{}/", bot.url), None);
    assert_eq!(page.status, 200);
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    assert_eq!(page.cache_control, "no-cache");
    assert!(page.body.contains("<title>WildBot</title>"));
    assert!(page.body.contains("api/status"));
    // Self-contained: nothing fetched from another host.
    for external in ["src=\"http", "href=\"http", "@import", "cdn"] {
        assert!(!page.body.contains(external), "{external}");
    }

    assert_eq!(get(&format!("{}/nope", bot.url), None).status, 404);

    // SIGINT: stop quoting, cancel everything, print the summary and the latency table, exit 0.
    bot.signal("INT");
    let (code, stdout, stderr) = bot.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{stderr}");
    for row in [
        "p99.9",
        "socket -> frame",
        "frame -> parsed",
        "book apply",
        "signals+strategy+risk",
        "frame -> intent",
        "intent -> REST answer",
        "REST AddOrder",
    ] {
        assert!(stdout.contains(row), "{row} missing:\n{stdout}");
    }
    assert!(
        stderr.contains("the simulator has 0 open order(s) after shutdown"),
        "{stderr}"
    );
}

#[test]
fn health_is_503_while_the_feed_is_silent() {
    let sim = Simulator::start(SimConfig::default()).unwrap();
    let cfg = std::env::temp_dir().join(format!("wildbot-health-{}.toml", std::process::id()));
    std::fs::write(
        &cfg,
        format!(
            "ws_url = \"{}\"\nfeed_timeout_ms = 1000\nping_interval_ms = 400\n\
             dashboard_bind = \"127.0.0.1:0\"\nlog_level = \"info\"\n",
            sim.url()
        ),
    )
    .unwrap();
    let mut c = bin();
    c.args(["run", "--config"]).arg(&cfg);
    let bot = Bot::spawn(c);
    std::fs::remove_file(&cfg).unwrap();
    let url = format!("{}/health", bot.url);
    let wait_for = |code: u16| {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let h = get(&url, None);
            if h.status == code {
                return h.json();
            }
            assert!(std::time::Instant::now() < deadline, "{}", h.body);
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert_eq!(wait_for(200)["feed"], "fresh");
    sim.faults().silent.store(true, Ordering::SeqCst);
    let down = wait_for(503);
    assert_eq!(down["status"], "unhealthy");
    assert!(
        ["stale", "disconnected"].contains(&down["feed"].as_str().unwrap()),
        "{down}"
    );
    sim.faults().silent.store(false, Ordering::SeqCst);
    assert_eq!(
        wait_for(200)["status"],
        "ok",
        "healthy again after the reconnect"
    );
    bot.signal("TERM");
    let (code, _, stderr) = bot.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn fill_and_websocket_order_latencies_reach_the_api_and_metrics() {
    let bot = demo(&["--transport", "ws"]);
    let s = status_until(&bot.url, Duration::from_secs(60), |s| {
        s["latency"]["fill_to_core"]["count"].as_u64().unwrap_or(0) > 0
            && s["latency"]["intent_to_ack_ws"]["count"]
                .as_u64()
                .unwrap_or(0)
                > 0
    });
    for stage in ["fill_to_core", "intent_to_ack_ws"] {
        let r = &s["latency"][stage];
        assert!(r["p50_ns"].as_u64().unwrap() > 0, "{stage}: {r}");
        assert!(r["p50_ns"].as_u64() <= r["max_ns"].as_u64());
    }
    let m = get(&format!("{}/metrics", bot.url), None).body;
    for stage in ["wire_to_frame", "fill_to_core", "intent_to_ack_ws"] {
        let needle = format!("wildbot_latency_seconds_count{{stage=\"{stage}\"}}");
        assert!(m.contains(&needle), "{needle} missing:\n{m}");
    }
    bot.signal("INT");
    let (code, _, stderr) = bot.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn a_pause_names_the_threshold_it_waits_on_and_the_value_now() {
    let bot = demo(&["--set", "min_volatility_bps=9000"]);
    let s = status_until(&bot.url, Duration::from_secs(30), |s| {
        s["paused_by"] == "volatility"
    });
    let detail = s["pause_detail"].as_str().unwrap();
    let vol = s["volatility_bps"].as_f64().unwrap();
    assert!(
        detail.starts_with("volatility ") && detail.ends_with(" bps ≤ 9000 bps"),
        "{detail}"
    );
    let shown: f64 = detail["volatility ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((shown - vol).abs() < 0.051, "{detail} against {vol}");
    assert_eq!(s["simulator"], true);
    assert_eq!(s["venue"], "simulator");
    bot.signal("INT");
    let (code, _, stderr) = bot.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn a_feed_that_cannot_connect_says_why_and_how_many_tries_failed() {
    let port = common::unreachable_url()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let mut c = bin();
    c.args([
        "run",
        "--log-level",
        "info",
        "--set",
        "dashboard_bind=127.0.0.1:0",
    ])
    .args(["--set", &format!("ws_url=ws://127.0.0.1:{port}/v2")]);
    let bot = Bot::spawn(c);
    let s = status_until(&bot.url, Duration::from_secs(30), |s| {
        s["links"]["feed"]["failures_in_row"].as_u64().unwrap_or(0) >= 2
    });
    let feed = &s["links"]["feed"];
    assert_eq!(feed["connects"], 0, "{feed}");
    let why = feed["last_error"].as_str().unwrap();
    assert!(why.to_lowercase().contains("refused"), "{why}");
    assert!(feed["last_error_at"].is_string());
    assert_eq!(s["venue"], "kraken");
    assert_eq!(s["links"]["private"]["state"], "off");
    bot.signal("INT");
    let (code, _, stderr) = bot.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{stderr}");
}

/// This machine's address on its default route, if it has one that is not loopback.
fn lan_ip() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.254:9").ok()?; // no packet is sent: this only picks a route
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn clients_other_than_loopback_need_the_token() {
    // A public bind without a token is refused up front, naming the key.
    let out = bin()
        .args([
            "demo",
            "--paper",
            "--duration",
            "1",
            "--set",
            "dashboard_bind=0.0.0.0:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("dashboard_token"), "{err}");

    let mut c = bin();
    c.args([
        "demo",
        "--paper",
        "--log-level",
        "info",
        "--set",
        "dashboard_bind=0.0.0.0:0",
        "--set",
        "dashboard_token=t0ken-4-test-0123",
    ]);
    let bot = Bot::spawn(c);
    let port = bot.url.rsplit(':').next().unwrap().to_string();
    // Loopback needs nothing.
    assert_eq!(
        get(&format!("http://127.0.0.1:{port}/api/status"), None).status,
        200
    );
    match lan_ip() {
        Some(ip) => {
            let base = format!("http://{ip}:{port}");
            for path in ["/", "/api/status", "/health", "/metrics"] {
                let a = get(&format!("{base}{path}"), None);
                assert_eq!(a.status, 401, "{path} without a token");
                assert_eq!(a.cache_control, "no-cache");
                assert!(!a.body.contains("equity"), "nothing leaks: {}", a.body);
            }
            let wrong = get(
                &format!("{base}/api/status"),
                Some("Bearer t0ken-4-test-012X"),
            );
            assert_eq!(wrong.status, 401);
            let bearer = get(
                &format!("{base}/api/status"),
                Some("Bearer t0ken-4-test-0123"),
            );
            assert_eq!(bearer.status, 200);
            assert!(bearer.json()["equity"].is_number() || bearer.json()["state"] == "starting");
            let query = get(&format!("{base}/metrics?token=t0ken-4-test-0123"), None);
            assert_eq!(query.status, 200);
        }
        None => eprintln!(
            "SKIPPED (part): no non-loopback address on this machine; `authorized` is unit-tested"
        ),
    }
    bot.signal("INT");
    let (code, _, stderr) = bot.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        !stderr.contains("t0ken-4-test-0123"),
        "the token is never logged"
    );
}

/// A scrape of a live demo, once it has fills so every family (money, worker, histograms)
/// has samples: every metric the Grafana board in docs/ queries is there, and `promtool check
/// metrics` (Debian's `prometheus` package) passes it without a lint. `.ci/run` installs
/// promtool and sets WILDBOT_REQUIRE_PROMTOOL=1, so in CI a missing promtool fails.
#[test]
fn a_live_scrape_serves_every_grafana_metric_and_passes_promtool() {
    let bot = demo(&[]);
    status_until(&bot.url, Duration::from_secs(40), |s| {
        s["counters"]["fills"].as_u64().unwrap_or(0) > 0
            && s["latency"]["intent_to_ack"]["count"].as_u64().unwrap_or(0) > 0
    });
    let body = get(&format!("{}/metrics", bot.url), None).body;
    bot.signal("INT");
    let (code, _, stderr) = bot.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{stderr}");

    let board: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/grafana-dashboard.json"
        ))
        .unwrap(),
    )
    .expect("the board is JSON");
    let mut queried = 0;
    for panel in board["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for (at, _) in expr.match_indices("wildbot_") {
                let name: String = expr[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let family = name.strip_suffix("_bucket").unwrap_or(&name).to_string();
                assert!(
                    body.contains(&format!("# TYPE {family} ")),
                    "the board queries {name}, which /metrics does not serve:\n{body}"
                );
                queried += 1;
            }
        }
    }
    assert!(queried >= 20, "{queried}");
    for family in [
        "wildbot_fees_total{currency=\"USD\"}",
        "wildbot_traded_quote_total{currency=\"USD\"}",
        "wildbot_latency_seconds_count{stage=\"intent_to_ack\"}",
        "wildbot_orders_sent_total",
    ] {
        assert!(body.contains(family), "{family}:\n{body}");
    }

    use std::io::Write;
    use std::process::{Command, Stdio};
    if Command::new("promtool").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("WILDBOT_REQUIRE_PROMTOOL").is_none(),
            "promtool is required here (apt-get install prometheus)"
        );
        eprintln!("SKIPPED (part): promtool not installed (apt-get install prometheus)");
        return;
    }
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "promtool: {said}\n{body}");
    assert!(said.trim().is_empty(), "promtool lint: {said}\n{body}");
}
