//! The fill journal across a crash: `kill -9` the real binary mid-session, tear the journal's
//! last line as a crash mid-write would, restart, and the restored account equals the
//! simulator's (live) or the one before the crash (paper).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Bot, bin, status_until};
use wildbot::core::money::Qty;
use wildbot::sim::rest::{DEMO_KEY, DEMO_SECRET, MAKER_PPM, RestSim};
use wildbot::sim::{SimConfig, Simulator};

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("wildbot-{name}-{}", std::process::id()))
}

/// `rest`: the REST URL and the authenticated WebSocket's (empty: none).
fn write_config(path: &Path, ws: &str, rest: Option<(&str, &str)>, journal: &Path) {
    let live = rest.map_or(String::new(), |(r, a)| {
        format!(
            "live_mode = true\nrest_url = \"{r}\"\nws_auth_url = \"{a}\"\n\
             rest_min_interval_ms = 100\nfill_poll_s = 1\n"
        )
    });
    std::fs::write(
        path,
        format!(
            "{live}ws_url = \"{ws}\"\ndashboard_bind = \"127.0.0.1:0\"\nlog_level = \"info\"\n\
             journal_path = \"{}\"\nfeed_timeout_ms = 60000\n",
            journal.display()
        ),
    )
    .unwrap();
}

fn start(config: &Path, live: bool) -> Bot {
    let mut c = bin();
    c.args(["run", "--json", "--config"]).arg(config);
    if live {
        c.env("KRAKEN_API_KEY", DEMO_KEY)
            .env("KRAKEN_API_SECRET", DEMO_SECRET);
    }
    Bot::spawn(c)
}

/// A crash in the middle of writing a line.
fn tear(journal: &Path) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(journal)
        .unwrap();
    f.write_all(br#"{"t":1,"event":"fill","cl_id":9,"cum_qty":"0.0"#)
        .unwrap();
}

fn kill9(bot: Bot) {
    bot.signal("KILL");
    let (code, _, _) = bot.wait(Duration::from_secs(10));
    assert_eq!(code, None, "killed by a signal");
}

fn f(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing: {v}"))
}

#[test]
fn live_kill_9_restart_restores_the_simulators_account() {
    let ws = Simulator::start(SimConfig::default()).unwrap();
    let rest = RestSim::start("10000", "0", ws.market()).unwrap();
    let (config, journal) = (temp("journal-live.toml"), temp("journal-live.jsonl"));
    let _ = std::fs::remove_file(&journal);
    write_config(
        &config,
        &ws.url(),
        Some((&rest.url(), &rest.private().url())),
        &journal,
    );

    let bot = start(&config, true);
    let before = status_until(&bot.url, Duration::from_secs(90), |s| {
        s["counters"]["fills"].as_u64().unwrap_or(0) >= 3
    });
    // Crash while an order rests on the exchange.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while common::open_orders(&rest) == 0 {
        assert!(std::time::Instant::now() < deadline, "no resting order");
        std::thread::sleep(Duration::from_millis(20));
    }
    kill9(bot);
    // No market data from now on, so the restarted bot cannot trade; the exchange fills half
    // of a resting order while the bot is dead.
    ws.faults().silent.store(true, Ordering::SeqCst);
    let resting = {
        let mut x = rest.exchange();
        let (txid, o) = x
            .orders
            .iter()
            .find(|(_, o)| o.status == "open")
            .map(|(t, o)| (t.clone(), o.clone()))
            .expect("an order rests");
        x.fill(&txid, Qty(o.vol.0 / 2), o.price, MAKER_PPM);
        txid
    };
    tear(&journal);

    let bot = start(&config, true);
    let s = status_until(&bot.url, Duration::from_secs(30), |s| {
        s["counters"]["ticks"].as_u64().unwrap_or(0) > 0
    });
    let log = bot.stderr();
    assert!(
        log.contains("torn last line"),
        "the torn line is named: {log}"
    );
    assert!(log.contains("journal: restored"), "{log}");
    assert!(
        log.contains(&format!("({resting}) is still open on the exchange")),
        "the resting order is looked up: {log}"
    );
    assert!(
        log.contains("reconcile: exchange balances"),
        "balances compared: {log}"
    );
    let (usd, btc, fees, open) = {
        let x = rest.exchange();
        (
            x.usd.0 as f64 / 1e9,
            x.btc.0 as f64 / 1e8,
            x.orders.values().map(|o| o.fee.0).sum::<i128>() as f64 / 1e9,
            x.orders.values().filter(|o| o.status == "open").count(),
        )
    };
    assert_eq!(open, 0, "orders left by the killed run are settled");
    assert!((f(&s, "position") - btc).abs() < 1e-9, "{s} vs {btc}");
    assert!((f(&s, "balance") - usd).abs() < 1e-6, "{s} vs {usd}");
    // Fees are the journal's plus what settling booked: equal to the exchange's only when
    // no fill was lost and none booked twice.
    assert!(
        (f(&s, "fees_paid") - fees).abs() < 1e-6,
        "{s} vs fees {fees}"
    );
    assert!(f(&s, "fees_paid") >= f(&before, "fees_paid") - 1e-9);
    assert!(s["round_trips"].as_u64() >= before["round_trips"].as_u64());
    let history = s["trade_history"].as_array().unwrap().len();
    assert!(history >= 3, "the trade history is restored: {s}");

    bot.signal("INT");
    let (code, stdout, stderr) = bot.wait(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert!(
        summary["journal_restored"].as_u64().unwrap() > 0,
        "{summary}"
    );
    assert_eq!(summary["journal_dropped"], 0);
    let x = rest.exchange();
    assert!((f(&summary, "position") - x.btc.0 as f64 / 1e8).abs() < 1e-9);
    assert!((f(&summary, "cash") - x.usd.0 as f64 / 1e9).abs() < 1e-6);
    drop(x);
    std::fs::remove_file(&config).unwrap();
    std::fs::remove_file(&journal).unwrap();
}

#[test]
fn paper_kill_9_restart_restores_the_account_it_had() {
    let ws = Simulator::start(SimConfig::default()).unwrap();
    let (config, journal) = (temp("journal-paper.toml"), temp("journal-paper.jsonl"));
    let _ = std::fs::remove_file(&journal);
    write_config(&config, &ws.url(), None, &journal);

    let bot = start(&config, false);
    status_until(&bot.url, Duration::from_secs(90), |s| {
        s["counters"]["fills"].as_u64().unwrap_or(0) >= 3
    });
    // Freeze the market, let the last status and equity record through (equity is journaled
    // at most once a second), then crash.
    ws.faults().silent.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(1500));
    let before = common::get(&format!("{}/api/status", bot.url), None).json();
    kill9(bot);
    tear(&journal);

    let bot = start(&config, false);
    let after = status_until(&bot.url, Duration::from_secs(30), |s| {
        s["counters"]["ticks"].as_u64().unwrap_or(0) > 0
    });
    for key in [
        "position",
        "balance",
        "avg_cost",
        "realized_pnl",
        "fees_paid",
        "round_trips",
        "wins",
        "losses",
        "peak_equity",
        "start_equity",
    ] {
        assert_eq!(after[key], before[key], "{key}: {after} vs {before}");
    }
    assert_eq!(
        after["trade_history"], before["trade_history"],
        "the trade history is restored"
    );
    assert!(
        after["open_orders"].as_array().unwrap().is_empty(),
        "orders on the dead paper venue are not resurrected"
    );
    assert!(bot.stderr().contains("torn last line"));
    bot.signal("INT");
    let (code, _, stderr) = bot.wait(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{stderr}");

    // The journal holds one account: a live run refuses a paper journal, naming the key.
    let mut c = bin();
    std::fs::write(
        &config,
        format!(
            "live_mode = true\njournal_path = \"{}\"\nws_url = \"{}\"\ndashboard_bind = \"\"\n",
            journal.display(),
            ws.url()
        ),
    )
    .unwrap();
    let out = c
        .args(["run", "--duration", "1", "--config"])
        .arg(&config)
        .env("KRAKEN_API_KEY", DEMO_KEY)
        .env("KRAKEN_API_SECRET", DEMO_SECRET)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("journal_path") && err.contains("PAPER"),
        "{err}"
    );
    std::fs::remove_file(&config).unwrap();
    std::fs::remove_file(&journal).unwrap();
}

#[test]
fn a_live_run_that_falls_back_to_paper_leaves_the_live_journal_alone() {
    let ws = Simulator::start(SimConfig::default()).unwrap();
    let rest = RestSim::start("10000", "0", ws.market()).unwrap();
    let (config, journal) = (
        temp("journal-fallback.toml"),
        temp("journal-fallback.jsonl"),
    );
    std::fs::write(&journal, "").unwrap();
    // Nothing listens at rest_url: the API is unreachable (a refused key is fatal instead).
    drop(rest);
    let url = common::unreachable_url();
    write_config(&config, &ws.url(), Some((&url, "")), &journal);
    let out = bin()
        .args(["run", "--duration", "3", "--json", "--config"])
        .arg(&config)
        .env("KRAKEN_API_KEY", DEMO_KEY)
        .env("KRAKEN_API_SECRET", DEMO_SECRET)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("falling back to PAPER"), "{err}");
    assert!(err.contains("not written while trading on PAPER"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&journal).unwrap(),
        "",
        "nothing journaled"
    );
    std::fs::remove_file(&config).unwrap();
    std::fs::remove_file(&journal).unwrap();
}
