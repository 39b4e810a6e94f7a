//! Live trading with a real account's shape, through the real binary against the simulator:
//! an account that already holds BTC, one smaller than the paper capital, a fill the balance
//! shows before the poll does, latched stops, dust, and a refused key.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{Bot, bin, status_until};
use wildbot::core::money::{Price, Qty};
use wildbot::sim::rest::{DEMO_KEY, DEMO_SECRET, MAKER_PPM, RestSim};
use wildbot::sim::{SimConfig, Simulator};

const BTC: f64 = 1e8; // lots per BTC
const USD: f64 = 1e9; // cash units per USD

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("wildbot-live-{name}-{}", std::process::id()))
}

/// The demo's lively market (fills within seconds).
fn market() -> Simulator {
    Simulator::start(SimConfig {
        seed: 3,
        step: Duration::from_millis(2),
        ..SimConfig::default()
    })
    .unwrap()
}

/// A live config against the simulator, polling fast, with `extra` TOML lines.
fn config(name: &str, ws: &Simulator, rest: &RestSim, extra: &str) -> PathBuf {
    let path = temp(&format!("{name}.toml"));
    let rest_url = if extra.contains("rest_url") {
        String::new()
    } else {
        format!(
            "rest_url = \"{}\"\nws_auth_url = \"{}\"\n",
            rest.url(),
            rest.private().url()
        )
    };
    std::fs::write(
        &path,
        format!(
            "live_mode = true\nws_url = \"{}\"\n{rest_url}rest_min_interval_ms = 100\n\
             fill_poll_s = 1\ndashboard_bind = \"127.0.0.1:0\"\nlog_level = \"info\"\n\
             feed_timeout_ms = 60000\n{extra}\n",
            ws.url(),
        ),
    )
    .unwrap();
    path
}

fn live(cmd: &mut std::process::Command) -> &mut std::process::Command {
    cmd.env("KRAKEN_API_KEY", DEMO_KEY)
        .env("KRAKEN_API_SECRET", DEMO_SECRET)
}

/// `wildbot run --duration secs --json`: (summary, stderr).
fn run(config: &Path, secs: u32) -> (serde_json::Value, String) {
    let out = live(bin().args(["run", "--json", "--duration", &secs.to_string(), "--config"]))
        .arg(config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{err}");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let summary = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    (summary, err)
}

fn f(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing: {v}"))
}

#[test]
fn an_account_holding_half_a_bitcoin_never_sells_more_than_its_own_position() {
    let ws = market();
    let rest = RestSim::start("10000", "0.5", ws.market()).unwrap();
    let cfg = config("half-btc", &ws, &rest, "");
    // Watch the account's BTC all the while: it must never dip below the user's 0.5.
    let lowest = AtomicU64::new(u64::MAX);
    let done = AtomicBool::new(false);
    let (summary, log) = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                lowest.fetch_min(rest.exchange().btc.0, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        let r = run(&cfg, 40);
        done.store(true, Ordering::SeqCst);
        r
    });
    assert!(
        summary["fills"].as_u64().unwrap() > 0,
        "it traded: {summary}"
    );
    assert!(
        lowest.load(Ordering::SeqCst) >= 50_000_000,
        "the account's BTC went below the user's 0.5: {} lots",
        lowest.load(Ordering::SeqCst)
    );
    assert_eq!(f(&summary, "baseline"), 0.5, "{summary}");
    let x = rest.exchange();
    let biggest_sell = x
        .orders
        .values()
        .filter(|o| !o.buy)
        .map(|o| o.vol.0)
        .max()
        .unwrap_or(0);
    assert!(
        biggest_sell <= 500_000,
        "no sell larger than max_position: {biggest_sell} lots"
    );
    // What the bot calls its own is exactly what the account holds above the baseline.
    let own = (x.btc.0 as f64 - 50_000_000.0) / BTC;
    assert!((f(&summary, "position") - own).abs() < 1e-9, "{summary}");
    assert!(
        log.contains("balances of XBT (base) and USD (quote)"),
        "{log}"
    );
    std::fs::remove_file(&cfg).unwrap();
}

#[test]
fn a_3000_dollar_account_trades_and_measures_drawdown_from_its_own_equity() {
    let ws = market();
    let rest = RestSim::start("3000", "0", ws.market()).unwrap();
    // A 50 % drawdown stop: against the paper capital of 10 000 a 3 000 account would stop
    // at once.
    let cfg = config("3000", &ws, &rest, "max_drawdown_pct = 50.0");
    let (summary, _) = run(&cfg, 30);
    assert!(
        (f(&summary, "start_equity") - 3000.0).abs() < 1.0,
        "{summary}"
    );
    assert!(f(&summary, "peak_equity") < 3010.0, "{summary}");
    assert!(summary["orders_placed"].as_u64().unwrap() > 0, "{summary}");
    assert_ne!(summary["state"], "stopped", "{summary}");
    assert!(f(&summary, "max_drawdown_pct") < 5.0, "{summary}");
    // Its own cash is the account's (the whole quote balance is the budget here).
    let x = rest.exchange();
    assert!((f(&summary, "cash") - x.usd.0 as f64 / USD).abs() < 1e-6);
    std::fs::remove_file(&cfg).unwrap();
}

#[test]
fn a_fill_the_balance_shows_before_the_poll_is_booked_exactly_once() {
    let ws = market();
    let rest = RestSim::start("10000", "0", ws.market()).unwrap();
    // Every fill is hidden from the next QueryOrders while Balance (asked every second)
    // already shows it.
    rest.exchange().hold_fills = 1_000;
    let cfg = config("window", &ws, &rest, "balance_refresh_s = 1");
    let (summary, log) = run(&cfg, 40);
    assert!(summary["fills"].as_u64().unwrap() > 0, "{summary}");
    let x = rest.exchange();
    assert!(x.hold_fills < 1_000, "fills were held back");
    let (btc, usd) = (x.btc.0 as f64 / BTC, x.usd.0 as f64 / USD);
    let fees: f64 = x.orders.values().map(|o| o.fee.0 as f64).sum::<f64>() / USD;
    assert!(
        (f(&summary, "position") - btc).abs() < 1e-9,
        "{summary} vs {btc}"
    );
    assert!(
        (f(&summary, "cash") - usd).abs() < 1e-6,
        "{summary} vs {usd}"
    );
    assert!(
        (f(&summary, "fees_paid") - fees).abs() < 1e-6,
        "{summary} vs {fees}"
    );
    // A drift raised while a fill was hidden is resolved once the poll shows it.
    let raised = log.matches("POSITION DRIFT").count();
    let resolved = log.matches("position drift resolved").count();
    assert!(
        resolved + 1 >= raised,
        "{raised} raised, {resolved} resolved:\n{log}"
    );
    std::fs::remove_file(&cfg).unwrap();
}

#[test]
fn a_latched_stop_sends_one_force_exit_per_attempt_until_flat() {
    let ws = market();
    let rest = RestSim::start("10000", "0", ws.market()).unwrap();
    let journal = temp("latched.jsonl");
    let _ = std::fs::remove_file(&journal);
    // A 3 bps stop fires often in this market, with the price hovering around it.
    let extra = format!(
        "stop_loss_bps = 3.0\njournal_path = \"{}\"",
        journal.display()
    );
    let cfg = config("latched", &ws, &rest, &extra);
    let (summary, _) = run(&cfg, 40);
    let text = std::fs::read_to_string(&journal).unwrap();
    // Replay the journal: position, the open orders, and each order's purpose.
    let mut position = 0i64;
    let mut filled = std::collections::BTreeMap::<u64, i64>::new();
    // Open orders: (buy, purpose, qty in lots).
    let mut open = std::collections::BTreeMap::<u64, (bool, String, i64)>::new();
    let lots =
        |v: &serde_json::Value| (v.as_str().unwrap().parse::<f64>().unwrap() * BTC).round() as i64;
    let (mut force_exits, mut latched) = (0, false);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = v["cl_id"].as_u64().unwrap_or(0);
        match v["event"].as_str().unwrap() {
            "placed" => {
                let purpose = v["purpose"].as_str().unwrap().to_string();
                let buy = v["side"] == "buy";
                if purpose == "force_exit" {
                    force_exits += 1;
                    assert!(
                        open.values().all(|(b, _, _)| *b != buy),
                        "one force exit at a time, nothing else on its side: {open:?}"
                    );
                    latched = true;
                }
                if latched && position != 0 {
                    assert_ne!(purpose, "exit", "a passive exit while the stop is latched");
                }
                open.insert(id, (buy, purpose, lots(&v["qty"])));
            }
            "fill" => {
                let cum = lots(&v["cum_qty"]);
                let before = filled.insert(id, cum).unwrap_or(0);
                let buy = open.get(&id).is_some_and(|(b, _, _)| *b);
                position += if buy { cum - before } else { before - cum };
                if open.get(&id).is_some_and(|(_, _, q)| *q == cum) {
                    open.remove(&id); // filled: ended
                }
                if position == 0 {
                    latched = false;
                }
            }
            "cancelled" | "rejected" => {
                open.remove(&id);
            }
            _ => {}
        }
    }
    assert!(force_exits > 0, "no stop fired in 40 s: {summary}");
    std::fs::remove_file(&cfg).unwrap();
    std::fs::remove_file(&journal).unwrap();
}

#[test]
fn a_dust_position_does_not_block_entries() {
    let ws = market();
    let rest = RestSim::start("10000", "0", ws.market()).unwrap();
    // Quiet enough that entries rest: the dust is made by hand.
    let cfg = config(
        "dust",
        &ws,
        &rest,
        "entry_offset_bps = 60.0\nexit_offset_bps = 80.0",
    );
    let bot = Bot::spawn({
        let mut c = bin();
        live(c.args(["run", "--json", "--config"]).arg(&cfg));
        c
    });
    let resting_buy = || {
        let x = rest.exchange();
        x.orders
            .iter()
            .find(|(_, o)| o.status == "open" && o.buy)
            .map(|(t, o)| (t.clone(), o.price))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (txid, price): (String, Price) = loop {
        if let Some(b) = resting_buy() {
            break b;
        }
        assert!(std::time::Instant::now() < deadline, "no buy rests");
        std::thread::sleep(Duration::from_millis(20));
    };
    {
        // 0.00005 BTC of it fills (below qty_min 0.0001), then the exchange cancels the rest.
        let mut x = rest.exchange();
        x.fill(&txid, Qty(5_000), price, MAKER_PPM);
        x.cancel(&txid, "User requested");
    }
    let s = status_until(&bot.url, Duration::from_secs(30), |s| s["dust"] == true);
    assert!(
        (s["position"].as_f64().unwrap() - 0.00005).abs() < 1e-12,
        "{s}"
    );
    // Entries go on: a new buy rests.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if resting_buy().is_some_and(|(t, _)| t != txid) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "dust blocked the entries: {}",
            bot.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    bot.signal("INT");
    let (code, _, log) = bot.wait(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(log.matches("DUST:").count(), 1, "one dust alert: {log}");
    std::fs::remove_file(&cfg).unwrap();
}

#[test]
fn a_refused_key_exits_2_and_an_unreachable_api_falls_back_to_paper() {
    let ws = market();
    let rest = RestSim::start("10000", "0", ws.market()).unwrap();
    let cfg = config("refused", &ws, &rest, "");
    let out = bin()
        .args(["run", "--duration", "3", "--config"])
        .arg(&cfg)
        .env("KRAKEN_API_KEY", "not-the-demo-key")
        .env("KRAKEN_API_SECRET", DEMO_SECRET)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("EAPI:Invalid key"), "Kraken's text: {err}");
    assert!(!err.contains("falling back to PAPER"), "{err}");
    assert!(!err.contains(DEMO_SECRET), "no secret in the error");
    // A pair the exchange does not know is refused the same way.
    let bad_pair = config("bad-pair", &ws, &rest, "rest_pair = \"NOPEUSD\"");
    let out = live(bin().args(["run", "--duration", "3", "--config"]))
        .arg(&bad_pair)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("Unknown asset pair"), "{err}");
    // Nothing listening at rest_url: the network is unreachable, paper it is.
    let url = common::unreachable_url();
    let unreachable = config(
        "unreachable",
        &ws,
        &rest,
        &format!("rest_url = \"{url}\"\nrest_timeout_ms = 500"),
    );
    let out = live(bin().args(["run", "--duration", "2", "--json", "--config"]))
        .arg(&unreachable)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("falling back to PAPER"), "{err}");
    for p in [cfg, bad_pair, unreachable] {
        std::fs::remove_file(p).unwrap();
    }
}
