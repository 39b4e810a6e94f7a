//! Telegram commands, end to end: the real binary (`wildbot demo`, live against the simulator)
//! long-polls a Telegram Bot API stand-in on loopback and obeys `/status`, `/pnl`, `/orders`,
//! `/pause`, `/resume`, `/flatten` and `/stop` from `TELEGRAM_CHAT_ID` only, with confirmation
//! for the last two, through a 429 flood-control answer.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Bot, status_until};

const TOKEN: &str = "987654:commands-TEST-token";
const CHAT: i64 = 4242;
const STRANGER: i64 = 999;

#[derive(Default)]
struct State {
    /// Updates to hand out, by update_id.
    updates: Vec<serde_json::Value>,
    /// (chat_id, text) of every sendMessage.
    sent: Vec<(String, String)>,
    /// The next getUpdates answers 429 with this retry_after.
    too_many: Option<u64>,
    /// getUpdates calls answered 429.
    refused: u32,
}

struct FakeBotApi {
    url: String,
    state: Arc<Mutex<State>>,
    next_id: i64,
}

impl FakeBotApi {
    fn start() -> FakeBotApi {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let url = format!("http://{}", server.server_addr().to_ip().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        for _ in 0..4 {
            let (srv, st) = (server.clone(), state.clone());
            std::thread::spawn(move || serve(&srv, &st));
        }
        FakeBotApi {
            url,
            state,
            next_id: 100,
        }
    }

    /// A message from `chat`, sent now.
    fn say(&mut self, chat: i64, text: &str) {
        self.next_id += 1;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        self.state.lock().unwrap().updates.push(serde_json::json!({
            "update_id": self.next_id,
            "message": {
                "message_id": self.next_id,
                "date": now,
                "chat": {"id": chat, "type": "private"},
                "from": {"id": chat, "is_bot": false, "first_name": "op"},
                "text": text,
            }
        }));
    }

    fn sent_to(&self, chat: i64) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .sent
            .iter()
            .filter(|(c, _)| *c == chat.to_string())
            .map(|(_, t)| t.clone())
            .collect()
    }

    /// Says `text` and waits for an answer containing `needle`.
    fn ask(&mut self, text: &str, needle: &str) -> String {
        let before = self.sent_to(CHAT).len();
        self.say(CHAT, text);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(t) = self.sent_to(CHAT)[before..]
                .iter()
                .find(|t| t.contains(needle))
            {
                return t.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no answer with {needle:?} to {text}: {:#?}",
                &self.sent_to(CHAT)[before..]
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn serve(server: &tiny_http::Server, state: &Mutex<State>) {
    for mut req in server.incoming_requests() {
        let mut body = String::new();
        let _ = req.as_reader().read_to_string(&mut body);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let url = req.url().to_string();
        assert!(url.starts_with(&format!("/bot{TOKEN}/")), "{url}");
        let (code, text) = if url.ends_with("/getUpdates") {
            get_updates(state, &v)
        } else {
            let mut s = state.lock().unwrap();
            let chat = match &v["chat_id"] {
                serde_json::Value::String(c) => c.clone(),
                other => other.to_string(),
            };
            s.sent
                .push((chat, v["text"].as_str().unwrap_or_default().to_string()));
            (200, r#"{"ok":true,"result":{"message_id":1}}"#.to_string())
        };
        let _ = req.respond(tiny_http::Response::from_string(text).with_status_code(code));
    }
}

/// A short long poll: the updates from `offset` on, or an empty list after 300 ms.
fn get_updates(state: &Mutex<State>, v: &serde_json::Value) -> (u16, String) {
    let offset = v["offset"].as_i64().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_millis(300);
    loop {
        {
            let mut s = state.lock().unwrap();
            if let Some(after) = s.too_many.take() {
                s.refused += 1;
                return (
                    429,
                    format!(
                        r#"{{"ok":false,"error_code":429,"description":"Too Many Requests: retry after {after}","parameters":{{"retry_after":{after}}}}}"#
                    ),
                );
            }
            let list: Vec<_> = s
                .updates
                .iter()
                .filter(|u| u["update_id"].as_i64().unwrap() >= offset)
                .cloned()
                .collect();
            if !list.is_empty() || Instant::now() >= deadline {
                return (
                    200,
                    serde_json::json!({"ok": true, "result": list}).to_string(),
                );
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_command_from_the_operators_chat_is_obeyed_and_strangers_are_ignored() {
    let mut api = FakeBotApi::start();
    let mut c = common::bin();
    c.args([
        "demo",
        "--log-level",
        "info",
        "--set",
        "dashboard_bind=127.0.0.1:0",
    ])
    .args(["--set", &format!("telegram_api_url={}", api.url)])
    .env("TELEGRAM_BOT_TOKEN", TOKEN)
    .env("TELEGRAM_CHAT_ID", CHAT.to_string());
    let bot = Bot::spawn(c);
    status_until(&bot.url, Duration::from_secs(30), |s| {
        s["counters"]["orders_placed"].as_u64().unwrap_or(0) > 0
    });

    // A stranger's commands are never answered and change nothing.
    api.say(STRANGER, "/stop");
    api.say(STRANGER, "/confirm");
    api.say(STRANGER, "/status");

    // Flood control on getUpdates: the bot waits retry_after, then carries on.
    api.state.lock().unwrap().too_many = Some(1);
    let status = api.ask("/status", "Own position");
    assert!(status.starts_with("[LIVE] BTC/USD"), "{status}");
    assert_eq!(api.state.lock().unwrap().refused, 1);
    assert!(api.sent_to(STRANGER).is_empty(), "strangers get no answer");
    assert!(
        bot.stderr()
            .contains("ignored \"/stop\" from chat 999 (not TELEGRAM_CHAT_ID)"),
        "{}",
        bot.stderr()
    );
    assert!(
        bot.stderr()
            .contains("getUpdates rate limited, retrying in 1 s")
    );

    let pnl = api.ask("/pnl", "PnL:");
    assert!(pnl.contains("realised") && pnl.contains("equity"), "{pnl}");
    let orders = api.ask("/orders", "rders");
    assert!(
        orders.contains("Open orders:") || orders.contains("No open orders"),
        "{orders}"
    );
    api.ask("/help", "/flatten");

    // /pause: the core holds entries back (the operator rule), /resume lifts it.
    api.ask("/pause", "Pausing");
    let s = status_until(&bot.url, Duration::from_secs(10), |s| {
        s["pause_counts"]["operator"].as_u64().unwrap_or(0) > 0
            && s["open_orders"]
                .as_array()
                .unwrap()
                .iter()
                .all(|o| o["purpose"] != "entry")
    });
    assert!(s["pause_counts"]["operator"].as_u64().unwrap() > 0);
    api.ask("/resume", "Resuming");
    let held = status_until(&bot.url, Duration::from_secs(5), |_| true)["pause_counts"]["operator"]
        .as_u64()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let s = status_until(&bot.url, Duration::from_secs(5), |_| true);
    assert_eq!(
        s["pause_counts"]["operator"].as_u64().unwrap(),
        held,
        "no longer held back by the operator"
    );

    // /flatten asks first; /confirm exits the own position and stays paused.
    status_until(&bot.url, Duration::from_secs(60), |s| {
        s["position"].as_f64().unwrap_or(0.0) != 0.0
    });
    let ask = api.ask("/flatten", "/confirm");
    assert!(ask.contains("Flatten the own position (0.00"), "{ask}");
    api.ask("/confirm", "Flattening");
    let s = status_until(&bot.url, Duration::from_secs(20), |s| {
        s["position"].as_f64() == Some(0.0) && s["open_orders"].as_array().unwrap().is_empty()
    });
    assert_eq!(s["position"], 0.0);
    std::thread::sleep(Duration::from_secs(2));
    let s = status_until(&bot.url, Duration::from_secs(5), |_| true);
    assert_eq!(s["position"], 0.0, "paused after the flatten: no new entry");
    assert!(s["open_orders"].as_array().unwrap().is_empty(), "{s}");
    assert!(bot.stderr().contains("FLATTEN by the operator"));

    // /stop asks first, /cancel keeps it running; then /stop, /confirm ends the session.
    api.ask("/stop", "/confirm");
    api.ask("/cancel", "cancelled");
    api.ask("/stop", "/confirm");
    api.ask("/confirm", "Stopping");
    let (code, stdout, stderr) = bot.wait(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("operator: stop"), "{stderr}");
    assert!(
        stdout.contains("orders"),
        "the summary is printed: {stdout}"
    );
    assert!(api.sent_to(STRANGER).is_empty());
    for t in api.sent_to(CHAT) {
        assert!(t.starts_with("[LIVE]"), "every message says LIVE: {t}");
        assert!(!t.contains(TOKEN));
    }
    assert!(!stderr.contains(TOKEN), "the token is never logged");
}
