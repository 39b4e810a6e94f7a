//! Shutdown of the real binary trading live against the simulator: the first SIGTERM cancels
//! everything and prints the summary; a second signal during a stuck shutdown exits at once.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Bot, bin, open_orders};
use wildbot::sim::rest::{DEMO_KEY, DEMO_SECRET, RestSim};
use wildbot::sim::{SimConfig, Simulator};

fn live_bot(ws: &Simulator, rest: &RestSim, name: &str) -> Bot {
    let cfg = std::env::temp_dir().join(format!("wildbot-{name}-{}.toml", std::process::id()));
    std::fs::write(
        &cfg,
        format!(
            "live_mode = true\nws_url = \"{}\"\nrest_url = \"{}\"\nws_auth_url = \"{}\"\nrest_min_interval_ms = 100\n\
             fill_poll_s = 1\nmin_volatility_bps = 0\nlog_level = \"info\"\n\
             dashboard_bind = \"127.0.0.1:0\"\n",
            ws.url(),
            rest.url(),
            rest.private().url()
        ),
    )
    .unwrap();
    let mut c = bin();
    c.args(["run", "--config"])
        .arg(&cfg)
        .env("KRAKEN_API_KEY", DEMO_KEY)
        .env("KRAKEN_API_SECRET", DEMO_SECRET);
    let bot = Bot::spawn(c);
    std::fs::remove_file(&cfg).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while open_orders(rest) == 0 {
        assert!(
            Instant::now() < deadline,
            "no order placed:\n{}",
            bot.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    bot
}

#[test]
fn sigterm_cancels_every_order_and_prints_the_table() {
    let ws = Simulator::start(SimConfig::default()).unwrap();
    let rest = RestSim::start("10000", "0", ws.market()).unwrap();
    let bot = live_bot(&ws, &rest, "sigterm");
    bot.signal("TERM");
    let (code, stdout, stderr) = bot.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(open_orders(&rest), 0, "nothing left resting");
    assert!(rest.exchange().calls.contains_key("CancelAll"));
    assert!(stdout.contains("session  LIVE"), "{stdout}");
    assert!(stdout.contains("intent -> REST answer"), "{stdout}");
}

#[test]
fn a_second_signal_exits_at_once() {
    let ws = Simulator::start(SimConfig::default()).unwrap();
    let rest = RestSim::start("10000", "0", ws.market()).unwrap();
    let bot = live_bot(&ws, &rest, "second-signal");
    // From now on the exchange answers only after the client gave up (5 s): the shutdown's
    // cancel-all hangs.
    rest.faults().slow_ms.store(6_000, Ordering::SeqCst);
    rest.faults().slow.store(1_000, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(300));
    bot.signal("INT");
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    bot.signal("INT");
    let (code, _, stderr) = bot.wait(Duration::from_secs(5));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(code, Some(130), "{stderr}");
}

#[test]
fn with_no_subcommand_it_runs_the_demo_until_ctrl_c() {
    // `cargo run --release`: simulator, live demo, dashboard on 127.0.0.1:8080.
    let mut c = bin();
    c.args(["--help"]);
    let help = c.output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("runs the demo"));
    let bot = Bot::spawn(bin());
    assert_eq!(bot.url, "http://127.0.0.1:8080");
    common::status_until(&bot.url, Duration::from_secs(20), |s| {
        s["live_mode"] == true
    });
    bot.signal("INT");
    let (code, stdout, stderr) = bot.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("session  LIVE") && stdout.contains("frame -> core done"));
    assert!(stderr.contains("the simulator has 0 open order(s) after shutdown"));
}
