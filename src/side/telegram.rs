//! Telegram notifications (own thread): `sendMessage` through ureq.
//!
//! The rules (seed strategy): a PnL update at most every 60 s, alerts at most every 5 s, a
//! fill alert with its fee, LIVE/PAPER in every message, one daily summary per UTC day.
//! Critical alerts (drawdown stop, disconnection, live activated or failed, the final summary)
//! are never lost to a rate limit: they wait in an unbounded queue and go out first when the
//! next message is allowed. Ordinary alerts that pile up are merged into one message, and
//! beyond [`ALERT_BACKLOG`] the oldest are dropped and counted. HTTP 429 is honoured with its
//! `retry_after`; other failures back off 2 s → 60 s.
//!
//! The policy ([`Outbox`]) is pure and takes the time as an argument, so its tests need no
//! clock; the thread only moves messages between the channel, the outbox and HTTP. Nothing
//! here can hold up the feed thread: it never waits on this thread (see `notify`).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, TryRecvError, bounded};

use crate::core::time::{SEC, format_rfc3339};

/// Ordinary alerts kept while waiting; older ones beyond this are dropped (and counted).
pub const ALERT_BACKLOG: usize = 200;
/// Telegram's limit on a message's text.
const MAX_TEXT: usize = 4096;
/// The channel from the notify thread.
pub const CAPACITY: usize = 1024;

/// Account figures for a PnL update and the daily summary.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Figures {
    /// Position in base currency.
    pub position: f64,
    /// Realised PnL (quote).
    pub realised: f64,
    /// Fees paid (quote).
    pub fees: f64,
    /// Equity (quote).
    pub equity: f64,
    /// Fills so far.
    pub fills: u64,
}

/// What the thread is asked to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    /// An alert; critical ones are never dropped.
    Alert {
        /// The text (without the mode prefix).
        text: String,
        /// Never dropped.
        critical: bool,
    },
    /// The latest account figures (a newer one replaces an unsent one).
    Pnl(Figures),
    /// Trading mode now in force (LIVE or PAPER prefix).
    Mode {
        /// Live trading.
        live: bool,
    },
    /// An answer to the operator's command: goes before alerts, within Telegram's limits.
    Reply(String),
}

/// Answers kept waiting; older ones beyond this are dropped (the operator can ask again).
pub const REPLY_BACKLOG: usize = 20;

/// Which slot a message used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Alerts (critical ones first).
    Alert,
    /// The periodic PnL update.
    Pnl,
    /// An answer to a command.
    Reply,
}

/// Timing of the outbox.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// Alerts at most this often (seed: 5 s).
    pub alert_every_s: f64,
    /// PnL updates at most this often (seed: 60 s).
    pub pnl_every_s: f64,
    /// Any two messages at least this far apart (Telegram allows about one per second per chat).
    pub min_gap_s: f64,
}

impl Default for Pacing {
    fn default() -> Pacing {
        Pacing {
            alert_every_s: 5.0,
            pnl_every_s: 60.0,
            min_gap_s: 1.0,
        }
    }
}

/// What a message in flight carried.
#[derive(Debug)]
struct InFlight {
    slot: Slot,
    critical: Vec<String>,
    alerts: Vec<String>,
    pnl: Option<Figures>,
}

/// The sending policy. Times are seconds since the Unix epoch.
#[derive(Debug)]
pub struct Outbox {
    pacing: Pacing,
    live: bool,
    critical: VecDeque<String>,
    alerts: VecDeque<String>,
    replies: VecDeque<String>,
    pnl: Option<Figures>,
    last_alert: Option<f64>,
    last_pnl: Option<f64>,
    last_any: Option<f64>,
    blocked_until: f64,
    backoff_s: f64,
    /// The message in flight, to requeue if it fails.
    in_flight: Option<InFlight>,
    day: i64,
    day_start: Figures,
    latest: Figures,
    /// Ordinary alerts dropped for the backlog bound.
    pub dropped: u64,
    /// Messages delivered.
    pub sent: u64,
    /// Failed attempts.
    pub failures: u64,
}

fn utc_day(now: f64) -> i64 {
    (now / 86_400.0).floor() as i64
}

impl Outbox {
    /// An empty outbox at time `now`, in paper (`live == false`) or live mode.
    #[must_use]
    pub fn new(pacing: Pacing, live: bool, now: f64) -> Outbox {
        Outbox {
            pacing,
            live,
            critical: VecDeque::new(),
            alerts: VecDeque::new(),
            replies: VecDeque::new(),
            pnl: None,
            last_alert: None,
            last_pnl: None,
            last_any: None,
            blocked_until: 0.0,
            backoff_s: 0.0,
            in_flight: None,
            day: utc_day(now),
            day_start: Figures::default(),
            latest: Figures::default(),
            dropped: 0,
            sent: 0,
            failures: 0,
        }
    }

    fn prefix(&self) -> &'static str {
        if self.live { "[LIVE] " } else { "[PAPER] " }
    }

    /// Takes one message from the bot.
    pub fn push(&mut self, m: Outgoing) {
        match m {
            Outgoing::Alert {
                text,
                critical: true,
            } => self.critical.push_back(text),
            Outgoing::Alert { text, .. } => {
                self.alerts.push_back(text);
                while self.alerts.len() > ALERT_BACKLOG {
                    self.alerts.pop_front();
                    self.dropped += 1;
                }
            }
            Outgoing::Pnl(f) => {
                if self.latest == Figures::default() && self.day_start == Figures::default() {
                    self.day_start = f;
                }
                self.latest = f;
                self.pnl = Some(f);
            }
            Outgoing::Mode { live } => self.live = live,
            Outgoing::Reply(text) => {
                self.replies.push_back(text);
                while self.replies.len() > REPLY_BACKLOG {
                    self.replies.pop_front();
                    self.dropped += 1;
                }
            }
        }
    }

    /// Whether anything waits to be sent (the daily summary aside).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.critical.is_empty()
            && self.alerts.is_empty()
            && self.replies.is_empty()
            && self.pnl.is_none()
    }

    /// Critical messages waiting.
    #[must_use]
    pub fn critical_waiting(&self) -> usize {
        self.critical.len()
    }

    /// The message to send now, if one is due and allowed; then report [`Outbox::sent`] or
    /// [`Outbox::failed`].
    pub fn next(&mut self, now: f64) -> Option<String> {
        if self.in_flight.is_some()
            || now < self.blocked_until
            || self
                .last_any
                .is_some_and(|t| now - t < self.pacing.min_gap_s)
        {
            return None;
        }
        let day = utc_day(now);
        if day > self.day {
            // A new UTC day: yesterday's summary, queued like a critical alert.
            let text = self.daily_summary(self.day);
            self.critical.push_back(text);
            self.day = day;
            self.day_start = self.latest;
        }
        if let Some(r) = self.replies.pop_front() {
            let text = format!("{}{}", self.prefix(), truncate(&r, MAX_TEXT - 40));
            self.in_flight = Some(InFlight {
                slot: Slot::Reply,
                critical: Vec::new(),
                alerts: vec![r],
                pnl: None,
            });
            return Some(text);
        }
        let alert_due = self
            .last_alert
            .is_none_or(|t| now - t >= self.pacing.alert_every_s);
        if alert_due && !(self.critical.is_empty() && self.alerts.is_empty()) {
            return Some(self.compose_alerts());
        }
        let pnl_due = self
            .last_pnl
            .is_none_or(|t| now - t >= self.pacing.pnl_every_s);
        if pnl_due && let Some(f) = self.pnl.take() {
            let text = format!(
                "{}PnL: position {:.8}, realised {:.2}, fees {:.2}, equity {:.2}, fills {}",
                self.prefix(),
                f.position,
                f.realised,
                f.fees,
                f.equity,
                f.fills
            );
            self.in_flight = Some(InFlight {
                slot: Slot::Pnl,
                critical: Vec::new(),
                alerts: Vec::new(),
                pnl: Some(f),
            });
            return Some(text);
        }
        None
    }

    fn daily_summary(&self, day: i64) -> String {
        let (a, b) = (self.day_start, self.latest);
        let date = format_rfc3339(day * 86_400 * SEC);
        format!(
            "Daily summary {}: {} fills, realised {:+.2}, fees {:.2}, equity {:.2} -> {:.2}, position {:.8}",
            &date[..10],
            b.fills.saturating_sub(a.fills),
            b.realised - a.realised,
            b.fees - a.fees,
            a.equity,
            b.equity,
            b.position
        )
    }

    /// One message with every critical alert first, then ordinary alerts, within Telegram's
    /// length limit (what does not fit waits for the next slot).
    fn compose_alerts(&mut self) -> String {
        let mut text = String::from(self.prefix().trim_end());
        let (mut crit, mut norm) = (Vec::new(), Vec::new());
        let fits = |text: &str, line: &str| text.len() + 1 + line.len() <= MAX_TEXT - 40;
        while let Some(line) = self.critical.front() {
            if !crit.is_empty() && !fits(&text, line) {
                break;
            }
            let line = self.critical.pop_front().unwrap_or_default();
            let _ = write!(text, "\n{}", truncate(&line, MAX_TEXT - 40));
            crit.push(line);
        }
        while let Some(line) = self.alerts.front() {
            if !fits(&text, line) {
                break;
            }
            let line = self.alerts.pop_front().unwrap_or_default();
            let _ = write!(text, "\n{line}");
            norm.push(line);
        }
        if !self.alerts.is_empty() {
            let _ = write!(text, "\n(+{} more)", self.alerts.len());
        }
        if crit.len() + norm.len() == 1 {
            // A single alert reads better on one line.
            text = text.replacen('\n', " ", 1);
        }
        self.in_flight = Some(InFlight {
            slot: Slot::Alert,
            critical: crit,
            alerts: norm,
            pnl: None,
        });
        text
    }

    /// The message from [`Outbox::next`] was delivered.
    pub fn sent(&mut self, now: f64) {
        if let Some(m) = self.in_flight.take() {
            match m.slot {
                Slot::Alert => self.last_alert = Some(now),
                Slot::Pnl => self.last_pnl = Some(now),
                Slot::Reply => {}
            }
            self.last_any = Some(now);
            self.sent += 1;
            self.backoff_s = 0.0;
        }
    }

    /// The message from [`Outbox::next`] failed: it goes back to the front of its queue.
    /// `retry_after_s`: Telegram's 429 wait; otherwise back off 2 s → 60 s.
    pub fn failed(&mut self, now: f64, retry_after_s: Option<f64>) {
        let Some(m) = self.in_flight.take() else {
            return;
        };
        for line in m.critical.into_iter().rev() {
            self.critical.push_front(line);
        }
        if m.slot == Slot::Reply {
            // The answer goes again first.
            for line in m.alerts.into_iter().rev() {
                self.replies.push_front(line);
            }
        } else {
            for line in m.alerts.into_iter().rev() {
                self.alerts.push_front(line);
            }
        }
        if let Some(f) = m.pnl
            && self.pnl.is_none()
        {
            self.pnl = Some(f);
        }
        self.failures += 1;
        let wait = match retry_after_s {
            Some(s) => s.max(0.0),
            None => {
                self.backoff_s = (self.backoff_s * 2.0).clamp(2.0, 60.0);
                self.backoff_s
            }
        };
        self.blocked_until = now + wait;
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// How to reach Telegram.
#[derive(Clone)]
pub struct TelegramConfig {
    /// API base, e.g. `https://api.telegram.org` (`telegram_api_url`).
    pub api_url: String,
    /// Bot token (TELEGRAM_BOT_TOKEN): a secret, never logged.
    pub token: String,
    /// Chat id (TELEGRAM_CHAT_ID).
    pub chat_id: String,
    /// Live mode at start (the prefix).
    pub live: bool,
    /// Rate rules.
    pub pacing: Pacing,
    /// One HTTP call gives up after this long.
    pub timeout: Duration,
    /// At shutdown, keep trying to deliver critical messages for at most this long.
    pub drain: Duration,
}

impl std::fmt::Debug for TelegramConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramConfig")
            .field("api_url", &self.api_url)
            .field("token", &"<redacted>")
            .field("chat_id", &self.chat_id)
            .field("live", &self.live)
            .finish_non_exhaustive()
    }
}

impl TelegramConfig {
    /// From TELEGRAM_BOT_TOKEN / TELEGRAM_CHAT_ID; `None` (notifications off) without them.
    #[must_use]
    pub fn from_env(api_url: &str, live: bool) -> Option<TelegramConfig> {
        let token = std::env::var("TELEGRAM_BOT_TOKEN").ok()?;
        let chat_id = std::env::var("TELEGRAM_CHAT_ID").ok()?;
        if token.trim().is_empty() || chat_id.trim().is_empty() {
            return None;
        }
        Some(TelegramConfig {
            api_url: api_url.to_string(),
            token: token.trim().to_string(),
            chat_id: chat_id.trim().to_string(),
            live,
            pacing: Pacing::default(),
            timeout: Duration::from_secs(10),
            drain: Duration::from_secs(8),
        })
    }
}

/// What the thread did, at its end.
#[derive(Debug, Clone, Copy, Default)]
pub struct TelegramReport {
    /// Messages delivered.
    pub sent: u64,
    /// Failed attempts.
    pub failures: u64,
    /// Ordinary alerts dropped for the backlog bound.
    pub dropped: u64,
    /// Critical messages still undelivered when the drain time ran out.
    pub critical_undelivered: u64,
}

/// A running Telegram thread; it ends (after draining) when every sender is dropped.
pub struct Telegram {
    /// Where to send.
    pub tx: Sender<Outgoing>,
    handle: JoinHandle<TelegramReport>,
    token: String,
    chat_id: String,
}

impl std::fmt::Debug for Telegram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telegram")
            .field("token", &"<redacted>")
            .field("chat_id", &self.chat_id)
            .finish_non_exhaustive()
    }
}

impl Telegram {
    /// The bot token (for the commands thread; never logged).
    #[must_use]
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The operator's chat.
    #[must_use]
    pub fn chat_id(&self) -> &str {
        &self.chat_id
    }

    /// Waits for the thread (which drains for at most its `drain` time).
    #[must_use]
    pub fn finish(self) -> TelegramReport {
        drop(self.tx);
        self.handle.join().unwrap_or_default()
    }
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Starts the thread.
///
/// # Errors
/// The thread cannot be spawned.
pub fn start(cfg: TelegramConfig) -> Result<Telegram, TelegramError> {
    let (tx, rx) = bounded(CAPACITY);
    let (token, chat_id) = (cfg.token.clone(), cfg.chat_id.clone());
    let handle = std::thread::Builder::new()
        .name("telegram".into())
        .spawn(move || run(&cfg, &rx))
        .map_err(TelegramError::Thread)?;
    Ok(Telegram {
        tx,
        handle,
        token,
        chat_id,
    })
}

/// Why the Telegram worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    /// The thread could not be spawned.
    #[error("telegram thread: {0}")]
    Thread(std::io::Error),
}

/// The result of one call.
enum Delivery {
    Ok,
    RetryAfter(f64),
    Failed(String),
}

/// An HTTP client for the Bot API: native TLS with the platform's roots, HTTP errors as
/// answers (their bodies say why), every call bounded by `timeout`.
#[must_use]
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .provider(ureq::tls::TlsProvider::NativeTls)
                .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                .build(),
        )
        .build()
        .into()
}

fn run(cfg: &TelegramConfig, rx: &Receiver<Outgoing>) -> TelegramReport {
    let agent = agent(cfg.timeout);
    let url = format!(
        "{}/bot{}/sendMessage",
        cfg.api_url.trim_end_matches('/'),
        cfg.token
    );
    let mut outbox = Outbox::new(cfg.pacing, cfg.live, now_s());
    let mut drain_until: Option<Instant> = None;
    let mut warned = false;
    loop {
        loop {
            match rx.try_recv() {
                Ok(m) => outbox.push(m),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    drain_until.get_or_insert_with(|| Instant::now() + cfg.drain);
                    break;
                }
            }
        }
        if let Some(d) = drain_until {
            // Shutting down: only critical messages (the final summary among them) matter.
            if outbox.critical_waiting() == 0 || Instant::now() >= d {
                break;
            }
        }
        let Some(text) = outbox.next(now_s()) else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        match send(&agent, &url, &cfg.chat_id, &text, &cfg.token) {
            Delivery::Ok => {
                outbox.sent(now_s());
                warned = false;
            }
            Delivery::RetryAfter(s) => {
                log::warn!("telegram: rate limited, retrying in {s} s");
                outbox.failed(now_s(), Some(s));
            }
            Delivery::Failed(e) => {
                if !warned {
                    log::warn!("telegram: {e}; will retry (critical alerts are kept)");
                    warned = true;
                }
                outbox.failed(now_s(), None);
            }
        }
    }
    let report = TelegramReport {
        sent: outbox.sent,
        failures: outbox.failures,
        dropped: outbox.dropped,
        critical_undelivered: outbox.critical_waiting() as u64,
    };
    if report.critical_undelivered > 0 {
        log::error!(
            "telegram: {} critical message(s) could not be delivered before exit",
            report.critical_undelivered
        );
    }
    report
}

fn send(agent: &ureq::Agent, url: &str, chat_id: &str, text: &str, token: &str) -> Delivery {
    let body = serde_json::json!({ "chat_id": chat_id, "text": text }).to_string();
    // Never let the token (it is in the URL) reach a log line.
    let scrub = |s: String| s.replace(token, "<token>");
    let mut resp = match agent.post(url).content_type("application/json").send(&body) {
        Ok(r) => r,
        Err(e) => return Delivery::Failed(scrub(format!("send failed: {e}"))),
    };
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    if status == 200 {
        return Delivery::Ok;
    }
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if status == 429 {
        let after = v["parameters"]["retry_after"].as_f64().unwrap_or(5.0);
        return Delivery::RetryAfter(after);
    }
    Delivery::Failed(scrub(format!(
        "HTTP {status}: {}",
        v["description"].as_str().unwrap_or("no description")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(t: &str, critical: bool) -> Outgoing {
        Outgoing::Alert {
            text: t.into(),
            critical,
        }
    }

    const T0: f64 = 1_767_225_600.0; // 2026-01-01T00:00:00Z

    #[test]
    fn alerts_at_most_every_five_seconds_merged_and_critical_first() {
        let mut o = Outbox::new(Pacing::default(), false, T0);
        o.push(alert("fill 1", false));
        let m = o.next(T0).unwrap();
        assert_eq!(m, "[PAPER] fill 1");
        o.sent(T0);
        o.push(alert("fill 2", false));
        o.push(alert("fill 3", false));
        o.push(alert("DRAWDOWN STOP", true));
        assert_eq!(o.next(T0 + 4.9), None, "within 5 s of the last alert");
        let m = o.next(T0 + 5.0).unwrap();
        assert_eq!(m, "[PAPER]\nDRAWDOWN STOP\nfill 2\nfill 3");
        o.sent(T0 + 5.0);
        assert!(o.is_empty());
    }

    #[test]
    fn pnl_at_most_every_minute_latest_wins() {
        let mut o = Outbox::new(Pacing::default(), true, T0);
        let f = |e: f64| Figures {
            equity: e,
            ..Figures::default()
        };
        o.push(Outgoing::Pnl(f(1.0)));
        assert!(o.next(T0).unwrap().starts_with("[LIVE] PnL"));
        o.sent(T0);
        o.push(Outgoing::Pnl(f(2.0)));
        o.push(Outgoing::Pnl(f(3.0)));
        assert_eq!(o.next(T0 + 59.0), None);
        let m = o.next(T0 + 60.0).unwrap();
        assert!(m.contains("equity 3.00"), "{m}");
        o.sent(T0 + 60.0);
        assert!(o.is_empty());
    }

    #[test]
    fn a_failed_message_is_kept_and_429_waits_retry_after() {
        let mut o = Outbox::new(Pacing::default(), false, T0);
        o.push(alert("disconnected", true));
        assert!(o.next(T0).is_some());
        o.failed(T0, Some(15.0));
        assert_eq!(o.next(T0 + 14.0), None);
        assert_eq!(o.critical_waiting(), 1);
        assert!(o.next(T0 + 15.0).unwrap().contains("disconnected"));
        o.failed(T0 + 15.0, None);
        // Backoff after a plain failure: 2 s, then 4 s.
        assert_eq!(o.next(T0 + 16.9), None);
        assert!(o.next(T0 + 17.0).is_some());
        o.failed(T0 + 17.0, None);
        assert_eq!(o.next(T0 + 20.9), None);
        assert!(o.next(T0 + 21.0).is_some());
        o.sent(T0 + 21.0);
        assert_eq!(o.critical_waiting(), 0);
        assert_eq!((o.sent, o.failures), (1, 3));
    }

    #[test]
    fn ordinary_backlog_is_bounded_critical_is_not() {
        let mut o = Outbox::new(Pacing::default(), false, T0);
        for i in 0..(ALERT_BACKLOG + 50) {
            o.push(alert(&format!("a{i}"), false));
            o.push(alert(&format!("c{i}"), true));
        }
        assert_eq!(o.dropped, 50);
        assert_eq!(o.critical_waiting(), ALERT_BACKLOG + 50);
        let mut t = T0;
        let mut seen = 0;
        while let Some(m) = o.next(t) {
            assert!(m.len() <= MAX_TEXT);
            seen += m.lines().filter(|l| l.starts_with('c')).count();
            o.sent(t);
            t += 5.0;
        }
        assert_eq!(seen, ALERT_BACKLOG + 50);
    }

    #[test]
    fn one_daily_summary_per_utc_day() {
        let mut o = Outbox::new(Pacing::default(), false, T0 + 3600.0);
        let f = |fills: u64, realised: f64| Figures {
            fills,
            realised,
            equity: 10_000.0 + realised,
            ..Figures::default()
        };
        o.push(Outgoing::Pnl(f(0, 0.0)));
        o.next(T0 + 3600.0);
        o.sent(T0 + 3600.0);
        o.push(Outgoing::Pnl(f(7, 3.5)));
        // Next day, 00:00:10 UTC.
        let m = o.next(T0 + 86_410.0).unwrap();
        assert!(
            m.contains("Daily summary 2026-01-01: 7 fills, realised +3.50"),
            "{m}"
        );
        o.sent(T0 + 86_410.0);
        let later = o.next(T0 + 86_480.0).unwrap_or_default();
        assert!(!later.contains("Daily summary"), "{later}");
    }
}
