//! Telegram commands (own thread): the operator steers the bot from a phone.
//!
//! The thread long-polls `getUpdates` and acts only on messages from `TELEGRAM_CHAT_ID`:
//! anything else is logged and never answered (a stranger who finds the bot learns nothing).
//! Messages sent before the bot started are skipped, so yesterday's `/flatten` does not run
//! today. `/pause`, `/resume` and `/flatten` reach the core as control events over a bounded
//! channel, so every risk rule still applies; `/stop` ends the session as SIGINT does.
//! `/flatten` and `/stop` wait for `/confirm` (within [`CONFIRM_S`]). Every command is logged
//! and answered in the chat through the notification thread's outbox (its pacing and 429
//! handling apply). A 429 on `getUpdates` waits its `retry_after`; other failures back off.
//!
//! [`Operator`] is the pure policy (text and time in, what to do out), tested without a
//! network; the thread only moves updates between HTTP, the policy and the channels.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use serde_json::{Value, json};

use crate::core::event::Control;
use crate::core::money::{Cash, Qty};
use crate::core::time::format_rfc3339;
use crate::side::control::{Command, ControlHandle};
use crate::side::explain::{PauseRules, pause_detail};
use crate::side::status::StatusSnapshot;
use crate::side::telegram::Outgoing;

/// A `/flatten` or `/stop` waits this long for `/confirm`.
pub const CONFIRM_S: f64 = 60.0;
/// How long one `getUpdates` call holds (Telegram's long poll).
pub const LONG_POLL_S: u64 = 25;

/// A command the operator can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// State, market, position.
    Status,
    /// Profit and loss.
    Pnl,
    /// Open orders.
    Orders,
    /// No new entries.
    Pause,
    /// Quote again.
    Resume,
    /// Exit the own position (asks for confirmation).
    Flatten,
    /// End the session (asks for confirmation).
    Stop,
    /// Confirms the pending `/flatten` or `/stop`.
    Confirm,
    /// Drops the pending confirmation.
    Cancel,
    /// The list of commands.
    Help,
}

impl Cmd {
    /// Parses `/name` (or `/name@botname`, as groups send it), case-insensitive.
    #[must_use]
    pub fn parse(text: &str) -> Option<Cmd> {
        let word = text.split_whitespace().next()?.strip_prefix('/')?;
        let name = word.split('@').next()?.to_ascii_lowercase();
        Some(match name.as_str() {
            "status" => Cmd::Status,
            "pnl" => Cmd::Pnl,
            "orders" => Cmd::Orders,
            "pause" => Cmd::Pause,
            "resume" => Cmd::Resume,
            "flatten" => Cmd::Flatten,
            "stop" => Cmd::Stop,
            "confirm" | "yes" => Cmd::Confirm,
            "cancel" | "no" => Cmd::Cancel,
            "help" | "start" => Cmd::Help,
            _ => return None,
        })
    }

    /// `/name`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Cmd::Status => "/status",
            Cmd::Pnl => "/pnl",
            Cmd::Orders => "/orders",
            Cmd::Pause => "/pause",
            Cmd::Resume => "/resume",
            Cmd::Flatten => "/flatten",
            Cmd::Stop => "/stop",
            Cmd::Confirm => "/confirm",
            Cmd::Cancel => "/cancel",
            Cmd::Help => "/help",
        }
    }
}

/// What to do with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Answer with this text.
    Reply(String),
    /// Answer with figures from a fresh snapshot (`/status`, `/pnl`, `/orders`).
    Report(Cmd),
    /// Ask for confirmation of `/flatten` or `/stop` (the text names the position).
    Ask(Cmd),
    /// Send the command to the trading thread, then answer with the text.
    Act(Command, &'static str),
}

const HELP: &str = "Commands: /status /pnl /orders /pause /resume /flatten /stop \
                    (/flatten and /stop ask for /confirm)";

/// The command policy: what a message from the operator's chat does, at time `now`
/// (seconds since the epoch).
#[derive(Debug, Default)]
pub struct Operator {
    pending: Option<(Cmd, f64)>,
}

impl Operator {
    /// The step for `text` from the operator at `now`.
    pub fn step(&mut self, text: &str, now: f64) -> Step {
        let Some(cmd) = Cmd::parse(text) else {
            return Step::Reply(format!("Unknown command. {HELP}"));
        };
        match cmd {
            Cmd::Status | Cmd::Pnl | Cmd::Orders => Step::Report(cmd),
            Cmd::Help => Step::Reply(HELP.into()),
            Cmd::Pause => Step::Act(
                Command::Core(Control::Pause),
                "Pausing: no new entries, resting entries cancelled; exits and stops still \
                 run. /resume to quote again.",
            ),
            Cmd::Resume => Step::Act(
                Command::Core(Control::Resume),
                "Resuming: quoting again as the rules allow (a drawdown stop holds until \
                 restart).",
            ),
            Cmd::Flatten | Cmd::Stop => {
                self.pending = Some((cmd, now + CONFIRM_S));
                Step::Ask(cmd)
            }
            Cmd::Cancel => match self.pending.take() {
                Some((c, _)) => Step::Reply(format!("{} cancelled: nothing done.", c.name())),
                None => Step::Reply("Nothing to cancel.".into()),
            },
            Cmd::Confirm => match self.pending.take() {
                Some((Cmd::Flatten, until)) if now <= until => Step::Act(
                    Command::Core(Control::Flatten),
                    "Flattening: the resting exit is cancelled, then the own position exits \
                     at market (IOC, retried until flat); the bot stays paused. /resume to \
                     quote again.",
                ),
                Some((Cmd::Stop, until)) if now <= until => Step::Act(
                    Command::Stop,
                    "Stopping: every order is cancelled and the bot shuts down.",
                ),
                Some((c, _)) => Step::Reply(format!(
                    "{} expired (confirm within {CONFIRM_S:.0} s): nothing done.",
                    c.name()
                )),
                None => Step::Reply("Nothing to confirm.".into()),
            },
        }
    }
}

/// How the commands thread runs.
#[derive(Clone)]
pub struct CommandsConfig {
    /// Bot API base URL.
    pub api_url: String,
    /// Bot token (never logged).
    pub token: String,
    /// The only chat obeyed.
    pub chat_id: String,
    /// Symbol traded (for the answers).
    pub symbol: String,
    /// Pause thresholds, for `/status`'s "why".
    pub rules: PauseRules,
    /// Long-poll hold, seconds.
    pub long_poll_s: u64,
}

impl std::fmt::Debug for CommandsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandsConfig")
            .field("api_url", &self.api_url)
            .field("token", &"<redacted>")
            .field("chat_id", &self.chat_id)
            .finish_non_exhaustive()
    }
}

/// The running thread. It is not joined at shutdown (a long poll may hold for
/// [`LONG_POLL_S`]); [`Commands::stop`] asks it to end after the current poll.
#[derive(Debug)]
pub struct Commands {
    stop: Arc<AtomicBool>,
    _handle: JoinHandle<()>,
}

impl Commands {
    /// Asks the thread to end.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Starts the commands thread.
///
/// # Errors
/// The thread could not be spawned.
pub fn start(
    cfg: CommandsConfig,
    control: ControlHandle,
    replies: Sender<Outgoing>,
) -> std::io::Result<Commands> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::Builder::new()
        .name("telegram-commands".into())
        .spawn(move || run(&cfg, &control, &replies, &flag))?;
    Ok(Commands {
        stop,
        _handle: handle,
    })
}

fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// What one `getUpdates` call gave.
enum Polled {
    Updates(Vec<Value>),
    RetryAfter(f64),
    Failed(String),
}

fn run(
    cfg: &CommandsConfig,
    control: &ControlHandle,
    replies: &Sender<Outgoing>,
    stop: &AtomicBool,
) {
    // The long poll holds up to `long_poll_s`: the client waits a little longer.
    let agent = crate::side::telegram::agent(Duration::from_secs(cfg.long_poll_s + 10));
    let url = format!(
        "{}/bot{}/getUpdates",
        cfg.api_url.trim_end_matches('/'),
        cfg.token
    );
    let started = now_s();
    let mut op = Operator::default();
    let mut offset: i64 = 0;
    let mut backoff = 2.0_f64;
    log::info!(
        "telegram: commands on (/help), obeying chat {} only",
        cfg.chat_id
    );
    while !stop.load(Ordering::SeqCst) {
        match poll(&agent, &url, offset, cfg.long_poll_s, &cfg.token) {
            Polled::Updates(updates) => {
                backoff = 2.0;
                for u in updates {
                    offset = offset.max(u["update_id"].as_i64().unwrap_or(0) + 1);
                    handle(cfg, &u, started, &mut op, control, replies);
                }
            }
            Polled::RetryAfter(s) => {
                log::warn!("telegram: getUpdates rate limited, retrying in {s} s");
                pause(s, stop);
            }
            Polled::Failed(e) => {
                log::warn!("telegram: getUpdates: {e}; retrying in {backoff:.0} s");
                pause(backoff, stop);
                backoff = (backoff * 2.0).min(60.0);
            }
        }
    }
}

/// Sleeps `s` seconds in short steps, ending early on `stop`.
fn pause(s: f64, stop: &AtomicBool) {
    let until = std::time::Instant::now() + Duration::from_secs_f64(s.clamp(0.0, 3600.0));
    while std::time::Instant::now() < until && !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn poll(agent: &ureq::Agent, url: &str, offset: i64, hold_s: u64, token: &str) -> Polled {
    let body = json!({ "offset": offset, "timeout": hold_s, "allowed_updates": ["message"] });
    let scrub = |s: String| s.replace(token, "<token>");
    let mut resp = match agent
        .post(url)
        .content_type("application/json")
        .send(body.to_string().as_str())
    {
        Ok(r) => r,
        Err(e) => return Polled::Failed(scrub(e.to_string())),
    };
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or_default();
    match status {
        200 => match v["result"].as_array() {
            Some(list) => Polled::Updates(list.clone()),
            None => Polled::Failed("an answer without a result list".into()),
        },
        429 => Polled::RetryAfter(v["parameters"]["retry_after"].as_f64().unwrap_or(5.0)),
        _ => Polled::Failed(scrub(format!(
            "HTTP {status}: {}",
            v["description"].as_str().unwrap_or("no description")
        ))),
    }
}

/// One update: obeyed only from the operator's chat, and only if sent since the start.
fn handle(
    cfg: &CommandsConfig,
    u: &Value,
    started: f64,
    op: &mut Operator,
    control: &ControlHandle,
    replies: &Sender<Outgoing>,
) {
    let m = &u["message"];
    let Some(text) = m["text"].as_str() else {
        return;
    };
    let chat = match &m["chat"]["id"] {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    };
    let word = text
        .split_whitespace()
        .next()
        .unwrap_or("")
        .chars()
        .take(32)
        .collect::<String>();
    if chat != cfg.chat_id {
        log::warn!("telegram: ignored {word:?} from chat {chat} (not TELEGRAM_CHAT_ID)");
        return;
    }
    let sent_at = m["date"].as_f64().unwrap_or(0.0);
    if sent_at + 2.0 < started {
        log::info!("telegram: skipped {word:?} sent before the bot started");
        return;
    }
    let step = op.step(text, now_s());
    log::info!("telegram: operator sent {word}");
    let answer = match step {
        Step::Reply(t) => t,
        Step::Report(c) => match control.report(Duration::from_secs(2)) {
            Ok(s) => report(c, &s, cfg),
            Err(e) => format!("No answer from the bot: {e}"),
        },
        Step::Ask(c) => ask(c, control, cfg),
        Step::Act(cmd, ack) => match control.send(cmd) {
            Ok(()) => {
                log::warn!("telegram: operator {word}: sent to the trading thread");
                ack.to_string()
            }
            Err(e) => format!("Not done: {e}."),
        },
    };
    let _ = replies.try_send(Outgoing::Reply(answer));
}

fn ask(c: Cmd, control: &ControlHandle, cfg: &CommandsConfig) -> String {
    let base = cfg.symbol.split('/').next().unwrap_or("");
    let position = control
        .report(Duration::from_secs(2))
        .map(|s| format!("{} {base}", qty(s.position, s.precision.qty)))
        .unwrap_or_else(|_| "unknown".into());
    match c {
        Cmd::Flatten => format!(
            "Flatten the own position ({position}) at market and pause? Send /confirm within \
             {CONFIRM_S:.0} s, or /cancel."
        ),
        _ => format!(
            "Stop the bot (cancel every order and shut down; own position {position})? Send \
             /confirm within {CONFIRM_S:.0} s, or /cancel."
        ),
    }
}

fn qty(lots: i64, precision: u8) -> String {
    let v = Qty(lots.unsigned_abs()).to_f64(precision);
    format!("{}{v:.8}", if lots < 0 { "-" } else { "" })
}

fn usd(c: Cash, s: &StatusSnapshot) -> String {
    format!("{:.2}", c.to_f64(s.precision.cash()))
}

/// The answer to `/status`, `/pnl` or `/orders` from snapshot `s`.
#[must_use]
pub fn report(c: Cmd, s: &StatusSnapshot, cfg: &CommandsConfig) -> String {
    let base = cfg.symbol.split('/').next().unwrap_or("");
    let pp = s.precision.price;
    match c {
        Cmd::Pnl => format!(
            "PnL: realised {} (before fees), unrealised {}, fees {}, equity {} (start {}, \
             peak {}); drawdown {:.2} % (max {:.2} %); {} round trips, {} won",
            usd(s.realised, s),
            usd(s.unrealised, s),
            usd(s.fees, s),
            usd(s.equity, s),
            usd(s.start_equity, s),
            usd(s.peak_equity, s),
            s.drawdown_ppm as f64 / 10_000.0,
            s.max_drawdown_ppm as f64 / 10_000.0,
            s.round_trips,
            s.wins
        ),
        Cmd::Orders => {
            let lines: Vec<String> = s
                .orders
                .iter()
                .flatten()
                .map(|o| {
                    format!(
                        "{} {} {} @ {} ({}, {:.1} s)",
                        o.req.side.as_str(),
                        o.req.purpose.name().replace('_', " "),
                        o.req.qty.show(s.precision.qty),
                        o.req.price.show(pp),
                        o.state.name(),
                        (s.at - o.placed_at) as f64 / 1e9
                    )
                })
                .collect();
            if lines.is_empty() {
                "No open orders.".into()
            } else {
                format!("Open orders:\n{}", lines.join("\n"))
            }
        }
        _ => {
            let why = pause_detail(s, &cfg.rules, base)
                .map(|d| format!("\nWhy: {d}"))
                .unwrap_or_default();
            let touch = match (s.best_bid, s.best_ask) {
                (Some(b), Some(a)) => format!("{} / {}", b.show(pp), a.show(pp)),
                _ => "no book".into(),
            };
            format!(
                "{} {} at {}{why}\nBid / ask {touch}\nOwn position {} {base}, equity {}, \
                 realised {}\nOpen orders {}, fills {}",
                cfg.symbol,
                s.state.name().replace('_', " "),
                format_rfc3339(s.at).get(11..19).unwrap_or(""),
                qty(s.position, s.precision.qty),
                usd(s.equity, s),
                usd(s.realised, s),
                s.orders.iter().flatten().count(),
                s.counters.fills
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: f64 = 1_796_000_000.0;

    #[test]
    fn commands_parse_with_a_bot_suffix_and_in_any_case() {
        assert_eq!(Cmd::parse("/status"), Some(Cmd::Status));
        assert_eq!(Cmd::parse("/PNL@wild_bot extra"), Some(Cmd::Pnl));
        assert_eq!(Cmd::parse("  /orders"), Some(Cmd::Orders));
        assert_eq!(Cmd::parse("status"), None, "a command starts with /");
        assert_eq!(Cmd::parse("/sell everything"), None);
        assert_eq!(Cmd::parse(""), None);
    }

    #[test]
    fn pause_and_resume_act_at_once() {
        let mut op = Operator::default();
        assert!(matches!(
            op.step("/pause", T),
            Step::Act(Command::Core(Control::Pause), _)
        ));
        assert!(matches!(
            op.step("/resume", T),
            Step::Act(Command::Core(Control::Resume), _)
        ));
        assert_eq!(op.step("/status", T), Step::Report(Cmd::Status));
    }

    #[test]
    fn flatten_and_stop_wait_for_a_timely_confirm() {
        let mut op = Operator::default();
        assert_eq!(op.step("/flatten", T), Step::Ask(Cmd::Flatten));
        assert!(matches!(
            op.step("/confirm", T + 59.0),
            Step::Act(Command::Core(Control::Flatten), _)
        ));
        // A second /confirm has nothing to confirm.
        assert!(matches!(op.step("/confirm", T + 60.0), Step::Reply(t) if t.contains("Nothing")));
        // Too late: nothing happens.
        assert_eq!(op.step("/stop", T), Step::Ask(Cmd::Stop));
        assert!(matches!(op.step("/confirm", T + 61.0), Step::Reply(t) if t.contains("expired")));
        // Cancelled: nothing happens.
        op.step("/stop", T);
        assert!(matches!(op.step("/cancel", T + 1.0), Step::Reply(t) if t.contains("cancelled")));
        assert!(matches!(op.step("/confirm", T + 2.0), Step::Reply(t) if t.contains("Nothing")));
        // The latest ask is the one confirmed.
        op.step("/flatten", T);
        op.step("/stop", T);
        assert!(matches!(
            op.step("/confirm", T + 1.0),
            Step::Act(Command::Stop, _)
        ));
    }

    #[test]
    fn anything_else_gets_the_list_of_commands() {
        let mut op = Operator::default();
        assert!(matches!(op.step("hello", T), Step::Reply(t) if t.contains("/flatten")));
    }

    #[test]
    fn reports_read_the_snapshot_in_words() {
        let cfg = CommandsConfig {
            api_url: String::new(),
            token: String::new(),
            chat_id: "1".into(),
            symbol: "BTC/USD".into(),
            rules: PauseRules::default(),
            long_poll_s: 1,
        };
        let mut s = StatusSnapshot::blank();
        s.precision = crate::core::money::Precision { price: 1, qty: 8 };
        s.position = 100_000;
        let status = report(Cmd::Status, &s, &cfg);
        assert!(status.contains("Own position 0.00100000 BTC"), "{status}");
        assert!(report(Cmd::Orders, &s, &cfg).contains("No open orders"));
        assert!(report(Cmd::Pnl, &s, &cfg).starts_with("PnL: realised 0.00"));
    }
}
