//! The Telegram worker against a local Bot API stand-in: pacing, 429 `retry_after`, critical
//! alerts that survive errors, a down or slow server that never holds up the notifier, and the
//! real binary's LIVE/PAPER messages.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wildbot::core::event::Side;
use wildbot::core::event::{Alert, AlertKind, AlertLevel};
use wildbot::core::money::Precision;
use wildbot::core::money::{Cash, Price, Qty};
use wildbot::side::notify::{AlertText, Notice};
use wildbot::side::telegram::{self, Outgoing, Pacing, TelegramConfig};

const TOKEN: &str = "123456:TEST-token";

/// How the stand-in answers the next request.
#[derive(Debug, Clone, Copy)]
enum Reply {
    Ok,
    TooMany(u64),
    ServerError,
    Slow(u64),
}

#[derive(Default)]
struct Seen {
    /// (arrival, path, chat_id, text)
    requests: Vec<(Instant, String, String, String)>,
    plan: VecDeque<Reply>,
}

struct FakeTelegram {
    url: String,
    seen: Arc<Mutex<Seen>>,
    server: Arc<tiny_http::Server>,
}

impl FakeTelegram {
    fn start(plan: &[Reply]) -> FakeTelegram {
        Self::on("127.0.0.1:0", plan)
    }

    fn on(addr: &str, plan: &[Reply]) -> FakeTelegram {
        let server = Arc::new(tiny_http::Server::http(addr).unwrap());
        let url = format!("http://{}", server.server_addr().to_ip().unwrap());
        let seen = Arc::new(Mutex::new(Seen {
            plan: plan.iter().copied().collect(),
            ..Seen::default()
        }));
        let (srv, s) = (server.clone(), seen.clone());
        std::thread::spawn(move || {
            for mut req in srv.incoming_requests() {
                if req.url().ends_with("/getUpdates") {
                    // The binary's commands thread: no commands here (tests/telegram_commands.rs).
                    std::thread::sleep(Duration::from_millis(200));
                    let empty = tiny_http::Response::from_string(r#"{"ok":true,"result":[]}"#);
                    let _ = req.respond(empty);
                    continue;
                }
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let reply = {
                    let mut g = s.lock().unwrap();
                    g.requests.push((
                        Instant::now(),
                        req.url().to_string(),
                        v["chat_id"].as_str().unwrap_or_default().to_string(),
                        v["text"].as_str().unwrap_or_default().to_string(),
                    ));
                    g.plan.pop_front().unwrap_or(Reply::Ok)
                };
                let (code, text) = match reply {
                    Reply::Ok => (200, r#"{"ok":true,"result":{"message_id":1}}"#.to_string()),
                    Reply::TooMany(s) => (
                        429,
                        format!(
                            r#"{{"ok":false,"error_code":429,"description":"Too Many Requests: retry after {s}","parameters":{{"retry_after":{s}}}}}"#
                        ),
                    ),
                    Reply::ServerError => (
                        500,
                        r#"{"ok":false,"error_code":500,"description":"Internal Server Error"}"#
                            .to_string(),
                    ),
                    Reply::Slow(ms) => {
                        std::thread::sleep(Duration::from_millis(ms));
                        (200, r#"{"ok":true,"result":{"message_id":1}}"#.to_string())
                    }
                };
                let _ = req.respond(tiny_http::Response::from_string(text).with_status_code(code));
            }
        });
        FakeTelegram { url, seen, server }
    }

    fn texts(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .requests
            .iter()
            .map(|r| r.3.clone())
            .collect()
    }

    fn times(&self, pick: impl Fn(&str) -> bool) -> Vec<Instant> {
        self.seen
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| pick(&r.3))
            .map(|r| r.0)
            .collect()
    }

    fn wait_for(&self, limit: Duration, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(&self.texts()) {
            assert!(Instant::now() < deadline, "got only {:#?}", self.texts());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn cfg(url: &str, pacing: Pacing) -> TelegramConfig {
    TelegramConfig {
        api_url: url.to_string(),
        token: TOKEN.to_string(),
        chat_id: "42".into(),
        live: false,
        pacing,
        timeout: Duration::from_secs(2),
        drain: Duration::from_secs(3),
    }
}

fn fast() -> Pacing {
    Pacing {
        alert_every_s: 0.5,
        pnl_every_s: 1.5,
        min_gap_s: 0.05,
    }
}

fn critical(text: &str) -> Outgoing {
    Outgoing::Alert {
        text: text.into(),
        critical: true,
    }
}

fn min_gap(t: &[Instant]) -> Duration {
    t.windows(2)
        .map(|w| w[1] - w[0])
        .min()
        .unwrap_or(Duration::MAX)
}

#[test]
fn alerts_and_pnl_are_paced_merged_and_say_paper_or_live() {
    let tg = FakeTelegram::start(&[]);
    let worker = telegram::start(cfg(&tg.url, fast())).unwrap();
    let (notifier, notify) = wildbot::side::notify::start(Some(worker.tx.clone())).unwrap();
    let p = Precision { price: 1, qty: 8 };
    let fill = |i: u64| {
        Notice::Alert(
            Alert {
                level: AlertLevel::Info,
                kind: AlertKind::Filled {
                    cl_id: i,
                    side: Side::Buy,
                    qty: Qty(100_000),
                    price: Price(600_005),
                    fee: Cash(96_000_800),
                },
            },
            p,
        )
    };
    let pnl = |fills: u64| Notice::Pnl {
        position: 100_000,
        realised: Cash(0),
        equity: Cash(100_000_000_000_000),
        fees: Cash(0),
        fills,
        precision: p,
    };
    let start = Instant::now();
    for i in 0..12 {
        notifier.send(fill(i));
    }
    let mut n = 0;
    while start.elapsed() < Duration::from_millis(3_200) {
        notifier.send(pnl(n));
        n += 1;
        if n == 5 {
            for i in 12..15 {
                notifier.send(fill(i));
            }
        }
        if n == 20 {
            notifier.send(Notice::Mode { live: true });
            notifier.send(Notice::Text(
                AlertText::new(b"LIVE trading activated"),
                true,
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(notifier);
    notify.join().unwrap();
    let report = worker.finish();
    assert_eq!(report.critical_undelivered, 0);

    let seen = tg.seen.lock().unwrap();
    assert!(!seen.requests.is_empty());
    for (_, path, chat, text) in &seen.requests {
        assert_eq!(path, &format!("/bot{TOKEN}/sendMessage"));
        assert_eq!(chat, "42");
        assert!(
            text.starts_with("[PAPER]") || text.starts_with("[LIVE]"),
            "mode in every message: {text}"
        );
    }
    drop(seen);
    let texts = tg.texts();
    // Every fill went out exactly once, with its fee, merged into few messages.
    for i in 0..15 {
        let needle = format!("FILL order {i} buy 0.00100000 @ 60000.5 fee 0.096000800");
        let count = texts.iter().filter(|t| t.contains(&needle)).count();
        assert_eq!(count, 1, "{needle} in {texts:#?}");
    }
    let alerts = tg.times(|t| !t.contains("PnL:"));
    assert!(alerts.len() < 15, "merged: {texts:#?}");
    assert!(min_gap(&alerts) >= Duration::from_millis(450), "{texts:#?}");
    let pnls = tg.times(|t| t.contains("PnL:"));
    assert!(pnls.len() >= 2, "{texts:#?}");
    assert!(min_gap(&pnls) >= Duration::from_millis(1_450));
    // The latest figures, not a backlog of stale ones.
    assert!(pnls.len() <= 3);
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("[LIVE]") && t.contains("LIVE trading activated")),
        "{texts:#?}"
    );
}

#[test]
fn http_429_is_honoured_with_its_retry_after() {
    let tg = FakeTelegram::start(&[Reply::TooMany(1)]);
    let worker = telegram::start(cfg(&tg.url, fast())).unwrap();
    worker.tx.send(critical("DRAWDOWN STOP")).unwrap();
    tg.wait_for(Duration::from_secs(5), |t| t.len() == 2);
    let times = tg.times(|_| true);
    assert!(times[1] - times[0] >= Duration::from_millis(950));
    let texts = tg.texts();
    assert_eq!(texts[0], texts[1], "the same message, retried");
    assert_eq!(texts[1], "[PAPER] DRAWDOWN STOP");
    let r = worker.finish();
    assert_eq!((r.sent, r.failures, r.critical_undelivered), (1, 1, 0));
}

#[test]
fn critical_alerts_survive_errors_and_rate_limits_in_order() {
    let tg = FakeTelegram::start(&[Reply::ServerError, Reply::TooMany(1), Reply::ServerError]);
    let worker = telegram::start(cfg(&tg.url, fast())).unwrap();
    for i in 0..5 {
        worker.tx.send(critical(&format!("critical {i}"))).unwrap();
        for j in 0..10 {
            worker
                .tx
                .send(Outgoing::Alert {
                    text: format!("info {i}.{j}"),
                    critical: false,
                })
                .unwrap();
        }
    }
    // 500 → 2 s back-off, 429 → 1 s, 500 → 4 s: all within ~9 s.
    tg.wait_for(Duration::from_secs(15), |t| {
        t.len() >= 4 && t[3..].iter().any(|m| m.contains("critical 4"))
    });
    let delivered: Vec<String> = tg.texts().into_iter().skip(3).collect();
    let all = delivered.join("\n");
    let order: Vec<usize> = (0..5)
        .map(|i| all.find(&format!("critical {i}")).expect("delivered"))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "in order: {all}");
    for i in 0..5 {
        assert_eq!(
            all.matches(&format!("critical {i}")).count(),
            1,
            "once: {all}"
        );
    }
    let r = worker.finish();
    assert_eq!(r.failures, 3);
    assert_eq!(r.critical_undelivered, 0);
}

#[test]
fn a_down_then_recovering_server_gets_the_critical_alerts() {
    // A port with nobody on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let worker = telegram::start(cfg(&url, fast())).unwrap();
    let (notifier, notify) = wildbot::side::notify::start(Some(worker.tx.clone())).unwrap();
    // The feed thread's side of it: never waits, whatever Telegram does.
    let t = Instant::now();
    for i in 0..5_000u64 {
        notifier.send(Notice::Text(
            AlertText::new(format!("burst {i}").as_bytes()),
            false,
        ));
    }
    notifier.send(Notice::Text(AlertText::new(b"DISCONNECTED"), true));
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    std::thread::sleep(Duration::from_millis(700));
    let tg = FakeTelegram::on(&format!("127.0.0.1:{port}"), &[]);
    tg.wait_for(Duration::from_secs(10), |t| {
        t.iter().any(|m| m.contains("DISCONNECTED"))
    });
    drop(notifier);
    notify.join().unwrap();
    let r = worker.finish();
    assert!(r.failures >= 1);
    assert_eq!(r.critical_undelivered, 0);
    assert!(r.dropped > 0, "the ordinary backlog is bounded");
}

#[test]
fn a_slow_server_never_holds_up_the_notifier_and_exit_is_bounded() {
    let tg = FakeTelegram::start(&[Reply::Slow(1_500); 10]);
    let mut c = cfg(&tg.url, fast());
    c.timeout = Duration::from_secs(5);
    c.drain = Duration::from_secs(2);
    let worker = telegram::start(c).unwrap();
    let (notifier, notify) = wildbot::side::notify::start(Some(worker.tx.clone())).unwrap();
    let t = Instant::now();
    for i in 0..5_000u64 {
        notifier.send(Notice::Text(
            AlertText::new(format!("n{i}").as_bytes()),
            i % 1000 == 0,
        ));
    }
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    drop(notifier);
    notify.join().unwrap();
    let t = Instant::now();
    let r = worker.finish();
    // Drain (2 s) plus at most one call in flight (1.5 s).
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(r.sent >= 1);
}

#[test]
fn the_binary_reports_live_activation_and_its_final_summary() {
    let tg = FakeTelegram::start(&[]);
    let api = format!("telegram_api_url={}", tg.url);
    let bot = common::demo_with_env(
        &["--set", &api],
        &[("TELEGRAM_BOT_TOKEN", TOKEN), ("TELEGRAM_CHAT_ID", "42")],
    );
    tg.wait_for(Duration::from_secs(10), |t| {
        t.iter().any(|m| m.contains("LIVE trading activated"))
    });
    bot.signal("INT");
    let (code, stdout, stderr) = bot.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{stderr}");
    let texts = tg.texts();
    assert!(texts.iter().all(|t| t.starts_with("[LIVE]")), "{texts:#?}");
    let last = texts.last().unwrap();
    assert!(
        last.contains("Session ended") && last.contains("all orders cancelled"),
        "{texts:#?}"
    );
    assert!(!stderr.contains(TOKEN) && !stdout.contains(TOKEN));
    assert!(!stderr.contains("123456"), "no part of the token is logged");

    // Without a token: off, said once.
    let out = common::bin()
        .args(["demo", "--paper", "--duration", "1", "--log-level", "info"])
        .args(["--set", "dashboard_bind=127.0.0.1:0"])
        .env_remove("TELEGRAM_CHAT_ID")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("Telegram notifications off").count(),
        1,
        "{err}"
    );
}
