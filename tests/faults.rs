//! Fault injection: the real binary trading live against the Kraken simulator over loopback
//! while the network, the exchange, Telegram or the dashboard misbehave. During each fault
//! the core must keep ticking (and timing frames, where frames flow); afterwards every test
//! checks what money depends on:
//! - no duplicate order (every `cl_ord_id` the exchange saw is unique),
//! - no lost fill (fees, position and cash equal the exchange's, to the last unit),
//! - no quote from an invalid book (`quotes_while_stale` is 0),
//! - nothing left resting after shutdown.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{Bot, bin, get, status_until};
use serde_json::Value;
use wildbot::sim::rest::{DEMO_KEY, DEMO_SECRET, RestSim};
use wildbot::sim::{SimConfig, Simulator};

struct Session {
    ws: Simulator,
    rest: RestSim,
    bot: Bot,
    config: std::path::PathBuf,
}

/// Starts a live session (extra TOML lines and environment on top) and waits until it trades.
fn start(name: &str, extra: &str, env: &[(&str, &str)]) -> Session {
    let ws = Simulator::start(SimConfig::default()).unwrap();
    let rest = RestSim::start("10000", "0", ws.market()).unwrap();
    let config =
        std::env::temp_dir().join(format!("wildbot-fault-{name}-{}.toml", std::process::id()));
    std::fs::write(
        &config,
        format!(
            "live_mode = true\nws_url = \"{}\"\nrest_url = \"{}\"\nws_auth_url = \"{}\"\nrest_min_interval_ms = 100\n\
             fill_poll_s = 1\nrest_timeout_ms = 700\nfeed_timeout_ms = 1000\n\
             ping_interval_ms = 300\ndashboard_bind = \"127.0.0.1:0\"\nlog_level = \"info\"\n\
             min_volatility_bps = 5\nvol_window_s = 10\n{extra}",
            ws.url(),
            rest.url(),
            rest.private().url()
        ),
    )
    .unwrap();
    let mut c = bin();
    c.args(["run", "--json", "--config"])
        .arg(&config)
        .env("KRAKEN_API_KEY", DEMO_KEY)
        .env("KRAKEN_API_SECRET", DEMO_SECRET)
        .envs(env.iter().copied());
    let bot = Bot::spawn(c);
    status_until(&bot.url, Duration::from_secs(90), |s| {
        s["counters"]["orders_placed"].as_u64().unwrap_or(0) > 0
    });
    Session {
        ws,
        rest,
        bot,
        config,
    }
}

fn n(v: &Value, path: &[&str]) -> u64 {
    path.iter()
        .fold(v, |v, k| &v[*k])
        .as_u64()
        .unwrap_or_else(|| panic!("{path:?} missing: {v}"))
}

/// Waits (at most 30 s) until the fault switch has been used up by the traffic.
fn consumed(a: &AtomicU32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while a.load(Ordering::SeqCst) > 0 {
        assert!(Instant::now() < deadline, "fault never triggered");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Session {
    fn status(&self) -> Value {
        get(&format!("{}/api/status", self.bot.url), None).json()
    }

    /// Over `secs`, the core ticks, and (when `frames`) processes and times frames.
    fn assert_alive(&self, secs: f64, frames: bool) -> (Value, Value) {
        let a = self.status();
        std::thread::sleep(Duration::from_secs_f64(secs));
        let b = self.status();
        assert!(
            n(&b, &["counters", "ticks"]) > n(&a, &["counters", "ticks"]),
            "ticks stopped: {b}"
        );
        if frames {
            assert!(
                n(&b, &["latency", "frame_to_done", "count"])
                    > n(&a, &["latency", "frame_to_done", "count"]),
                "frames stopped being processed: {b}"
            );
        }
        (a, b)
    }

    /// Stops the bot and checks the account against the exchange; returns the summary.
    fn finish(self) -> Value {
        // At least one fill after the fault, so "no lost fill" is checked on real fills.
        let fills = n(&self.status(), &["counters", "fills"]);
        status_until(&self.bot.url, Duration::from_secs(90), |v| {
            v["counters"]["fills"].as_u64().unwrap_or(0) > fills
        });
        self.bot.signal("INT");
        let (code, stdout, stderr) = self.bot.wait(Duration::from_secs(40));
        assert_eq!(code, Some(0), "{stderr}");
        let s: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
            .unwrap_or_else(|e| panic!("no summary ({e}): {stdout}\n{stderr}"));
        let x = self.rest.exchange();
        let mut ids: BTreeMap<String, u32> = BTreeMap::new();
        for o in x.orders.values() {
            *ids.entry(o.cl_ord_id.clone().unwrap_or_default())
                .or_default() += 1;
        }
        let dups: Vec<_> = ids.iter().filter(|(_, k)| **k > 1).collect();
        assert!(dups.is_empty(), "duplicate orders: {dups:?}");
        let open = x.orders.values().filter(|o| o.status == "open").count();
        assert_eq!(open, 0, "orders left resting");
        let fees = x.orders.values().map(|o| o.fee.0).sum::<i128>() as f64 / 1e9;
        let f = |k: &str| s[k].as_f64().unwrap_or_else(|| panic!("{k}: {s}"));
        assert!((f("fees_paid") - fees).abs() < 1e-7, "fees {s} vs {fees}");
        assert!(
            (f("position") - x.btc.0 as f64 / 1e8).abs() < 1e-10,
            "position {s} vs {:?}",
            x.btc
        );
        assert!(
            (f("cash") - x.usd.0 as f64 / 1e9).abs() < 1e-6,
            "cash {s} vs {:?}",
            x.usd
        );
        assert_eq!(s["quotes_while_stale"], 0, "{s}");
        eprintln!(
            "fills {} orders {} fees {fees} position {} cash {}",
            s["fills"], s["orders_placed"], s["position"], s["cash"]
        );
        assert!(!x.orders.is_empty(), "the session traded");
        drop(x);
        drop(self.ws);
        let _ = std::fs::remove_file(&self.config);
        s
    }
}

#[test]
fn ws_connection_drop() {
    let s = start("drop", "", &[]);
    s.ws.faults().drop_connections();
    std::thread::sleep(Duration::from_millis(500));
    s.assert_alive(2.0, true);
    let sum = s.finish();
    assert!(n(&sum, &["reconnects"]) >= 1, "{sum}");
    assert!(
        n(&sum, &["snapshots"]) >= 2,
        "a fresh book after the reconnect: {sum}"
    );
    assert_eq!(sum["checksum_mismatches"], 0);
}

#[test]
fn silent_feed() {
    let s = start("silent", "", &[]);
    s.ws.faults().silent.store(true, Ordering::SeqCst);
    // No frames: the timer still ticks the core, the watchdog gives up on the connection.
    s.assert_alive(2.5, false);
    let snapshots = n(&s.status(), &["counters", "snapshots"]);
    s.ws.faults().silent.store(false, Ordering::SeqCst);
    // Back when frames flow again on a connection with a fresh book (a connection made while
    // the server was silent never got its snapshot: the watchdog replaces it, with backoff).
    status_until(&s.bot.url, Duration::from_secs(60), |v| {
        v["feed_fresh"] == true && v["counters"]["snapshots"].as_u64() > Some(snapshots)
    });
    s.assert_alive(1.5, true);
    let sum = s.finish();
    assert!(n(&sum, &["watchdog_timeouts"]) >= 1, "{sum}");
}

#[test]
fn checksum_corruption() {
    let s = start("checksum", "", &[]);
    s.ws.faults().bad_checksums.store(3, Ordering::SeqCst);
    consumed(&s.ws.faults().bad_checksums);
    s.assert_alive(2.0, true);
    let sum = s.finish();
    assert!(n(&sum, &["checksum_mismatches"]) >= 1, "{sum}");
    assert!(n(&sum, &["resubscribes"]) >= 1, "{sum}");
}

#[test]
fn malformed_frames() {
    let s = start("malformed", "", &[]);
    s.ws.faults().malformed.store(25, Ordering::SeqCst);
    consumed(&s.ws.faults().malformed);
    s.assert_alive(1.5, true);
    let sum = s.finish();
    assert_eq!(n(&sum, &["parse_errors"]), 25, "{sum}");
    assert_eq!(
        sum["checksum_mismatches"], 0,
        "the book never noticed: {sum}"
    );
}

#[test]
fn burst_of_50000_updates() {
    let s = start("burst", "", &[]);
    let before = s.status();
    s.ws.faults().burst.store(50_000, Ordering::SeqCst);
    consumed(&s.ws.faults().burst);
    // However long a loaded machine takes to chew through it, every update arrives on the
    // same connection: a pong queued behind the burst is not a dead link.
    let want = n(&before, &["counters", "book_messages"]) + 50_000;
    let after = status_until(&s.bot.url, Duration::from_secs(120), |v| {
        v["counters"]["book_messages"].as_u64() >= Some(want)
    });
    assert_eq!(
        n(&after, &["counters", "watchdog_timeouts"]),
        n(&before, &["counters", "watchdog_timeouts"]),
        "{after}"
    );
    assert_eq!(
        n(&after, &["counters", "reconnects"]),
        n(&before, &["counters", "reconnects"]),
        "{after}"
    );
    s.assert_alive(2.0, true);
    let sum = s.finish();
    assert_eq!(
        sum["checksum_mismatches"], 0,
        "every update verified: {sum}"
    );
    assert_eq!(sum["checksums_ok"], sum["book_messages"], "{sum}");
}

#[test]
fn rest_server_errors() {
    let s = start("5xx", "", &[]);
    s.rest.faults().server_errors.store(4, Ordering::SeqCst);
    consumed(&s.rest.faults().server_errors);
    s.assert_alive(3.0, true);
    s.finish();
}

#[test]
fn rest_timeouts() {
    let s = start("timeouts", "", &[]);
    s.rest.faults().slow_ms.store(1500, Ordering::SeqCst);
    s.rest.faults().slow.store(3, Ordering::SeqCst);
    consumed(&s.rest.faults().slow);
    s.assert_alive(3.0, true);
    s.finish();
}

#[test]
fn rest_rate_limit_errors() {
    let s = start("ratelimit", "", &[]);
    s.rest.faults().rate_limited.store(3, Ordering::SeqCst);
    consumed(&s.rest.faults().rate_limited);
    s.assert_alive(3.0, true);
    s.finish();
}

#[test]
fn dropped_add_order_answers() {
    let s = start("dropadd", "", &[]);
    s.rest
        .faults()
        .dropped_add_orders
        .store(2, Ordering::SeqCst);
    consumed(&s.rest.faults().dropped_add_orders);
    s.assert_alive(3.0, true);
    // Each lost answer was looked up (OpenOrders) before anything was resent.
    assert!(
        s.rest
            .exchange()
            .calls
            .get("OpenOrders")
            .copied()
            .unwrap_or(0)
            >= 3
    );
    s.finish();
}

#[test]
fn dropped_cancel_order_answers() {
    // Requotes are amends; a tight momentum filter makes the strategy cancel quotes outright.
    let s = start("dropcancel", "momentum_threshold_bps = 0.3\n", &[]);
    s.rest.faults().dropped_cancels.store(2, Ordering::SeqCst);
    consumed(&s.rest.faults().dropped_cancels);
    s.assert_alive(3.0, true);
    s.finish();
}

#[test]
fn telegram_down() {
    let s = start(
        "tgdown",
        "telegram_api_url = \"http://127.0.0.1:9\"\n",
        &[
            ("TELEGRAM_BOT_TOKEN", "1:fault-test"),
            ("TELEGRAM_CHAT_ID", "1"),
        ],
    );
    s.assert_alive(3.0, true);
    s.finish();
}

/// A Bot API stand-in that takes `delay` to answer anything.
fn slow_telegram(delay: Duration) -> String {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}", server.server_addr().to_ip().unwrap());
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                let _ = req.respond(tiny_http::Response::from_string(
                    r#"{"ok":true,"result":{"message_id":1}}"#,
                ));
            });
        }
    });
    url
}

#[test]
fn telegram_slow() {
    let url = slow_telegram(Duration::from_secs(3));
    let s = start(
        "tgslow",
        &format!("telegram_api_url = \"{url}\"\n"),
        &[
            ("TELEGRAM_BOT_TOKEN", "1:fault-test"),
            ("TELEGRAM_CHAT_ID", "1"),
        ],
    );
    let (a, b) = s.assert_alive(3.0, true);
    // No back-pressure: the core keeps up with the market.
    assert!(b["feed_fresh"] == true, "{b}");
    assert!(n(&b, &["counters", "frames"]) > n(&a, &["counters", "frames"]) + 300);
    let t = Instant::now();
    s.finish();
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "shutdown waited on Telegram: {:?}",
        t.elapsed()
    );
}

#[test]
fn dashboard_hammered() {
    let s = start("hammer", "", &[]);
    let rate = |a: &Value, b: &Value| {
        n(b, &["counters", "frames"]).saturating_sub(n(a, &["counters", "frames"]))
    };
    let (a, b) = s.assert_alive(2.0, true);
    let calm = rate(&a, &b);
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU32::new(0));
    let hammers: Vec<_> = (0..8)
        .map(|i| {
            let (url, stop, served) = (s.bot.url.clone(), stop.clone(), served.clone());
            std::thread::spawn(move || {
                let path = ["/api/status", "/metrics", "/", "/health"][i % 4];
                while !stop.load(Ordering::Relaxed) {
                    let _ = get(&format!("{url}{path}"), None);
                    served.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let (a, b) = s.assert_alive(2.0, true);
    stop.store(true, Ordering::Relaxed);
    for h in hammers {
        h.join().unwrap();
    }
    let busy = rate(&a, &b);
    assert!(
        served.load(Ordering::Relaxed) > 100,
        "the dashboard was hammered"
    );
    // The sim sends at a steady pace; the core keeps up with it under the load.
    assert!(busy * 2 >= calm, "frames {busy} under load vs {calm} calm");
    assert!(b["feed_fresh"] == true, "{b}");
    s.finish();
}
