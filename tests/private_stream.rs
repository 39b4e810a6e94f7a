//! Real-time order state over the authenticated WebSocket, through the real binary against
//! the simulator: fills from the stream, booked once however often they are reported; a link
//! dropped mid-session reconnects and reconciles; with the stream down polling takes over; a
//! refused token or a missing permission is said clearly.
//!
//! Every test ends with the exchange's own books: the account's BTC and USD must equal the
//! bot's baseline + position and its cash to the last unit, so a fill booked twice, or lost,
//! or booked with the wrong cost or fee, fails it.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Bot, bin};
use wildbot::core::money::{Price, Qty};
use wildbot::sim::rest::{DEMO_KEY, DEMO_SECRET, MAKER_PPM, RestSim};
use wildbot::sim::{SimConfig, Simulator};

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("wildbot-private-{name}-{}", std::process::id()))
}

fn market() -> Simulator {
    Simulator::start(SimConfig {
        seed: 3,
        step: Duration::from_millis(2),
        ..SimConfig::default()
    })
    .unwrap()
}

fn config(name: &str, ws: &Simulator, rest: &RestSim) -> PathBuf {
    let path = temp(&format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "live_mode = true\nws_url = \"{}\"\nrest_url = \"{}\"\nws_auth_url = \"{}\"\n\
             rest_min_interval_ms = 100\nfill_poll_s = 1\nfeed_timeout_ms = 3000\n\
             ping_interval_ms = 500\ndashboard_bind = \"127.0.0.1:0\"\nlog_level = \"info\"\n",
            ws.url(),
            rest.url(),
            rest.private().url()
        ),
    )
    .unwrap();
    path
}

fn start(config: &Path, secs: u32) -> Bot {
    let mut c = bin();
    c.args(["run", "--json", "--duration", &secs.to_string(), "--config"])
        .arg(config)
        .env("KRAKEN_API_KEY", DEMO_KEY)
        .env("KRAKEN_API_SECRET", DEMO_SECRET);
    Bot::spawn(c)
}

/// Waits for the exit: (summary, stderr).
fn finish(bot: Bot) -> (serde_json::Value, String) {
    let (code, out, err) = bot.wait(Duration::from_secs(120));
    assert_eq!(code, Some(0), "{err}");
    let summary = serde_json::from_str(out.lines().last().unwrap_or("{}"))
        .unwrap_or_else(|e| panic!("no summary ({e}): {out}\n{err}"));
    (summary, err)
}

fn n(v: &serde_json::Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing: {v}"))
}

/// The exchange's balances are the bot's own books: every fill booked exactly once, with
/// its exact cost and fee.
fn books_match_the_exchange(summary: &serde_json::Value, rest: &RestSim) {
    let x = rest.exchange();
    let btc = x.btc.0 as f64 / 1e8;
    let usd = x.usd.0 as f64 / 1e9;
    let own = summary["position"].as_f64().unwrap() + summary["baseline"].as_f64().unwrap();
    assert!(
        (btc - own).abs() < 1e-9,
        "the exchange holds {btc} BTC, the bot booked {own}: {summary}"
    );
    let cash = summary["cash"].as_f64().unwrap();
    assert!(
        (usd - cash).abs() < 1e-6,
        "the exchange holds {usd} USD, the bot booked {cash}: {summary}"
    );
}

#[test]
fn fills_reach_the_core_from_the_stream_and_polls_are_only_a_backstop() {
    let ws = market();
    let rest = RestSim::start("10000", "0", ws.market()).unwrap();
    let (summary, _) = finish(start(&config("stream", &ws, &rest), 25));
    assert_eq!(summary["private_link"], "up", "{summary}");
    let (by_ws, by_poll) = (n(&summary, "fills_ws"), n(&summary, "fills_poll"));
    assert!(by_ws > 0, "no fill came from the stream: {summary}");
    assert!(by_ws > by_poll, "the stream is the fill path: {summary}");
    // fill_poll_s = 1 used to mean 25 QueryOrders in 25 s; now it is the reconcile, the
    // look after each cancel, and the final settlement.
    let queries = rest
        .exchange()
        .calls
        .get("QueryOrders")
        .copied()
        .unwrap_or(0);
    let cancels = rest
        .exchange()
        .calls
        .get("CancelOrder")
        .copied()
        .unwrap_or(0);
    assert!(
        queries <= cancels + 4,
        "{queries} QueryOrders for {cancels} cancels: polling did not step back"
    );
    assert!(summary["fill_to_core"]["count"].as_u64().unwrap() >= by_ws);
    books_match_the_exchange(&summary, &rest);
}

#[test]
fn a_duplicated_fill_message_is_booked_once() {
    let ws = market();
    let rest = RestSim::start("10000", "0", ws.market()).unwrap();
    // Every fill message arrives twice.
    rest.private()
        .faults()
        .duplicate_fills
        .store(1_000, Ordering::SeqCst);
    let (summary, _) = finish(start(&config("dup", &ws, &rest), 25));
    assert!(n(&summary, "fills_ws") > 0, "{summary}");
    assert!(n(&summary, "duplicate_execs") > 0, "{summary}");
    books_match_the_exchange(&summary, &rest);
}

/// The first open order the bot has on the simulated exchange.
fn wait_for_open_order(rest: &RestSim, limit: Duration) -> (String, Qty, Price) {
    let deadline = Instant::now() + limit;
    loop {
        if let Some((txid, o)) = rest
            .exchange()
            .orders
            .iter()
            .find(|(_, o)| o.status == "open" && o.vol_exec.0 == 0)
        {
            return (txid.clone(), o.vol, o.price);
        }
        assert!(Instant::now() < deadline, "the bot never rested an order");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_dropped_link_reconnects_reconciles_the_fill_it_missed_and_never_double_books() {
    let ws = market();
    let rest = RestSim::start("10000", "0", ws.market()).unwrap();
    let cfg = config("drop", &ws, &rest);
    // The dead man's switch refreshes rarely here: a call soon after the reconnect is the
    // re-arm the reconnect itself makes.
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("deadman_refresh_s = 28\ndeadman_timeout_s = 60\n");
    std::fs::write(&cfg, text).unwrap();
    let bot = start(&cfg, 30);
    let (txid, vol, price) = wait_for_open_order(&rest, Duration::from_secs(60));
    let p = rest.private().faults();
    // The link goes down and stays down a while; the snapshot after it will not show the
    // fill that happens meanwhile.
    p.snapshot_without_fills.store(1, Ordering::SeqCst);
    p.down.store(true, Ordering::SeqCst);
    p.drop_connections();
    std::thread::sleep(Duration::from_millis(300));
    rest.exchange()
        .fill(&txid, Qty(vol.0 / 2), price, MAKER_PPM);
    std::thread::sleep(Duration::from_millis(1500));
    p.down.store(false, Ordering::SeqCst);
    let back = Instant::now();
    let (summary, err) = finish(bot);
    let rearmed = rest.exchange().call_log.iter().any(|(at, m)| {
        m == "CancelAllOrdersAfter"
            && *at > back
            && at.duration_since(back) < Duration::from_secs(8)
    });
    assert!(rearmed, "the dead man's switch is re-armed on reconnect");
    assert!(n(&summary, "private_reconnects") >= 1, "{summary}");
    assert!(n(&summary, "private_connects") >= 2, "{summary}\n{err}");
    assert_eq!(summary["private_link"], "up", "it came back: {summary}");
    assert!(
        err.contains("private stream lost") && err.contains("reconciled with REST"),
        "{err}"
    );
    assert!(n(&summary, "private_snapshots") >= 2, "{summary}");
    books_match_the_exchange(&summary, &rest);
}

#[test]
fn with_the_stream_down_polling_books_every_fill() {
    let ws = market();
    let rest = RestSim::start("10000", "0", ws.market()).unwrap();
    rest.private().faults().down.store(true, Ordering::SeqCst);
    let (summary, _) = finish(start(&config("down", &ws, &rest), 25));
    assert_eq!(summary["private_link"], "down", "{summary}");
    assert_eq!(n(&summary, "fills_ws"), 0, "{summary}");
    assert!(
        n(&summary, "fills_poll") > 0,
        "polls carried the fills: {summary}"
    );
    books_match_the_exchange(&summary, &rest);
}

#[test]
fn a_refused_token_is_named_and_polling_carries_on() {
    let ws = market();
    let rest = RestSim::start("10000", "0", ws.market()).unwrap();
    rest.private()
        .faults()
        .refuse_tokens
        .store(true, Ordering::SeqCst);
    let (summary, err) = finish(start(&config("token", &ws, &rest), 15));
    assert_eq!(summary["private_link"], "refused", "{summary}");
    assert!(n(&summary, "token_refusals") >= 3, "{summary}");
    assert!(
        err.contains("Kraken refused the WebSocket token")
            && err.contains("ESession:Invalid session")
            && err.contains("fills come from REST polls"),
        "{err}"
    );
    assert!(
        !err.contains("SIMTOKEN"),
        "a token never appears in the log: {err}"
    );
    books_match_the_exchange(&summary, &rest);
}

#[test]
fn a_key_without_the_websocket_permission_is_a_named_configuration_error() {
    let ws = market();
    let rest = RestSim::start("10000", "0", ws.market()).unwrap();
    rest.faults()
        .no_websocket_permission
        .store(true, Ordering::SeqCst);
    let out = bin()
        .args(["run", "--duration", "5", "--config"])
        .arg(config("perm", &ws, &rest))
        .env("KRAKEN_API_KEY", DEMO_KEY)
        .env("KRAKEN_API_SECRET", DEMO_SECRET)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "fatal, not paper: {err}");
    assert!(
        err.contains("\"WebSocket interface\" permission") && err.contains("Permission denied"),
        "{err}"
    );
    assert_eq!(common::open_orders(&rest), 0, "nothing was traded");
}

/// `config(...)` with orders over the WebSocket.
fn ws_orders_config(name: &str, ws: &Simulator, rest: &RestSim) -> PathBuf {
    let cfg = config(name, ws, rest);
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("order_transport = \"ws\"\n");
    std::fs::write(&cfg, text).unwrap();
    cfg
}

fn calls(rest: &RestSim, method: &str) -> u64 {
    rest.exchange().calls.get(method).copied().unwrap_or(0)
}

/// No order reached the exchange twice: every `cl_ord_id` names one order, and the
/// exchange refused no duplicate.
fn no_order_placed_twice(rest: &RestSim) {
    let x = rest.exchange();
    assert_eq!(x.duplicates_refused, 0, "an order was sent twice");
    let mut ids: Vec<&String> = x
        .orders
        .values()
        .filter_map(|o| o.cl_ord_id.as_ref())
        .collect();
    let all = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), all, "a cl_ord_id names two orders");
}

#[test]
fn with_order_transport_ws_orders_go_out_on_the_websocket() {
    let ws = market();
    let rest = RestSim::start("10000", "0", ws.market()).unwrap();
    let (summary, err) = finish(start(&ws_orders_config("wsorders", &ws, &rest), 25));
    assert_eq!(summary["order_transport"], "ws", "{summary}");
    assert_eq!(summary["private_link"], "up", "{summary}");
    let adds = calls(&rest, "add_order");
    assert!(adds > 0, "no add_order on the WebSocket: {summary}");
    // The stream never dropped: REST placed, amended and cancelled nothing (its final
    // cancel-all and its polls are the only REST calls about orders).
    for m in ["AddOrder", "AmendOrder", "CancelOrder"] {
        assert_eq!(calls(&rest, m), 0, "{m} over REST while the stream was up");
    }
    assert!(n(&summary, "ws_order_requests") >= adds, "{summary}");
    // Every request was answered: none had to be handed over (an order placed from inside
    // a frame's handling, such as the force exit after its cancel's answer, goes out too).
    assert_eq!(n(&summary, "ws_handed_to_rest"), 0, "{summary}\n{err}");
    assert!(!err.contains("never reached Kraken"), "{err}");
    assert!(
        summary["intent_to_ack_ws"]["count"].as_u64().unwrap() >= adds.min(1),
        "{summary}"
    );
    assert_eq!(summary["intent_to_ack_rest"]["count"], 0, "{summary}");
    assert_eq!(n(&summary, "orders_placed"), adds, "{summary}");
    assert_eq!(
        common::open_orders(&rest),
        0,
        "shutdown cancelled everything"
    );
    no_order_placed_twice(&rest);
    books_match_the_exchange(&summary, &rest);
}

#[test]
fn with_ws_orders_a_dropped_link_hands_orders_to_rest_and_none_is_placed_twice() {
    let ws = market();
    let rest = RestSim::start("10000", "0", ws.market()).unwrap();
    let bot = start(&ws_orders_config("wsdrop", &ws, &rest), 30);
    let (txid, vol, price) = wait_for_open_order(&rest, Duration::from_secs(60));
    let p = rest.private().faults();
    p.down.store(true, Ordering::SeqCst);
    p.drop_connections();
    std::thread::sleep(Duration::from_millis(300));
    // A fill while the link is down: the polls book it, and the exit that follows goes
    // over REST.
    rest.exchange()
        .fill(&txid, Qty(vol.0 / 2), price, MAKER_PPM);
    std::thread::sleep(Duration::from_millis(4000));
    let rest_adds = calls(&rest, "AddOrder");
    p.down.store(false, Ordering::SeqCst);
    let (summary, err) = finish(bot);
    assert!(
        rest_adds > 0,
        "REST placed nothing while the link was down: {err}"
    );
    assert!(n(&summary, "private_reconnects") >= 1, "{summary}");
    assert_eq!(summary["private_link"], "up", "it came back: {summary}");
    assert!(calls(&rest, "add_order") > 0, "{summary}");
    assert_eq!(
        common::open_orders(&rest),
        0,
        "shutdown cancelled everything"
    );
    no_order_placed_twice(&rest);
    books_match_the_exchange(&summary, &rest);
}

#[test]
fn an_add_whose_answer_is_lost_is_looked_up_never_sent_again() {
    let ws = market();
    let rest = RestSim::start("10000", "0", ws.market()).unwrap();
    // The first add reaches the exchange; its answer dies with the connection.
    rest.private()
        .faults()
        .lose_add_answers
        .store(1, Ordering::SeqCst);
    let (summary, err) = finish(start(&ws_orders_config("wslost", &ws, &rest), 25));
    assert!(n(&summary, "ws_handed_to_rest") >= 1, "{summary}\n{err}");
    assert!(n(&summary, "private_reconnects") >= 1, "{summary}");
    // The worker found it by its cl_ord_id (and adopted it) rather than placing it again.
    assert!(
        calls(&rest, "QueryOrders") + calls(&rest, "OpenOrders") + calls(&rest, "ClosedOrders") > 0
    );
    assert!(
        !err.contains("never reached Kraken"),
        "it did reach it: {err}"
    );
    assert!(err.contains("its add's answer was lost"), "{err}");
    assert_eq!(
        common::open_orders(&rest),
        0,
        "shutdown cancelled everything"
    );
    no_order_placed_twice(&rest);
    books_match_the_exchange(&summary, &rest);
}
