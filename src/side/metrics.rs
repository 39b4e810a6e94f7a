//! `/metrics`: the Prometheus text exposition format 0.0.4, written to Prometheus's naming
//! conventions so a stock Prometheus and Grafana use it as they are:
//!
//! - every name starts `wildbot_`; counters end `_total`; durations are `_seconds`;
//! - money is in the currency it is counted in, named by a `currency` label (the quote
//!   currency of the symbol), base quantities by an `asset` label; fees and traded volume are
//!   counters, balances and PnL gauges; ratios are plain fractions (`_ratio`), never bps;
//! - latencies are histograms (`_bucket{le}`, `_sum`, `_count`); a stage with no sample yet
//!   has no series rather than a misleading 0;
//! - state, pause reason and private link state are labelled 0/1 gauges (one series per
//!   possible value, so a dashboard can graph any of them); `wildbot_build_info` carries the
//!   version;
//! - order ids and other unbounded values never become labels.
//!
//! The names are documented in README.md and used by `docs/grafana-dashboard.json`.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use crate::core::engine::TradingState;
use crate::core::event::Rule;
use crate::core::money::{Cash, Price, Qty};
use crate::side::status::{StatusSnapshot, WorkerReport};

/// Bucket bounds of the latency histograms, seconds: 100 ns .. 10 s in 1-2.5-5 steps.
pub const LATENCY_BUCKETS_S: [f64; 25] = [
    1e-7, 2.5e-7, 5e-7, 1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3,
    5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Private link states, as `/api/status` spells them.
const LINK_STATES: [&str; 4] = ["off", "down", "up", "refused"];

/// Trading states, as `/api/status` spells them.
const STATES: [TradingState; 5] = [
    TradingState::WaitingForBook,
    TradingState::Quoting,
    TradingState::Paused(Rule::Volatility),
    TradingState::Stopped,
    TradingState::Disconnected,
];

/// What `/metrics` shows.
#[derive(Debug)]
pub struct MetricsInput<'a> {
    /// Seconds since the dashboard started.
    pub uptime_s: f64,
    /// Frames arrive within `feed_timeout_ms`.
    pub feed_fresh: bool,
    /// The symbol traded, `BASE/QUOTE`.
    pub symbol: &'a str,
    /// The feed thread's last snapshot.
    pub snap: Option<&'a StatusSnapshot>,
    /// Each latency stage's histogram (ns).
    pub latency: Vec<(String, &'a Histogram<u64>)>,
    /// The order worker's last report.
    pub worker: Option<&'a WorkerReport>,
}

/// A metric family being written: its header once, then its samples.
struct Writer {
    out: String,
}

impl Writer {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP wildbot_{name} {help}");
        let _ = writeln!(self.out, "# TYPE wildbot_{name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        let _ = write!(self.out, "wildbot_{name}");
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(val));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(v));
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, labels: &[(&str, &str)], v: f64) {
        self.family(name, kind, help);
        self.sample(name, labels, v);
    }

    /// One histogram series from an hdrhistogram of nanoseconds.
    fn histogram(&mut self, name: &str, stage: &str, h: &Histogram<u64>) {
        for le in LATENCY_BUCKETS_S {
            let bound_ns = (le * 1e9) as u64;
            let n = h.count_between(0, bound_ns);
            let le = number(le);
            self.sample(
                &format!("{name}_bucket"),
                &[("stage", stage), ("le", &le)],
                n as f64,
            );
        }
        let n = h.len() as f64;
        self.sample(
            &format!("{name}_bucket"),
            &[("stage", stage), ("le", "+Inf")],
            n,
        );
        // hdrhistogram keeps values at 2 significant digits, not their exact sum: the mean of
        // what it recorded is within 1 % of the true mean.
        self.sample(
            &format!("{name}_sum"),
            &[("stage", stage)],
            h.mean() * n / 1e9,
        );
        self.sample(&format!("{name}_count"), &[("stage", stage)], n);
    }
}

/// Label values are quoted; a backslash, quote or newline is escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value as Prometheus reads it (`+Inf`, `NaN`, or the shortest exact decimal).
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// The whole `/metrics` text.
#[must_use]
pub fn render(m: &MetricsInput<'_>) -> String {
    let mut w = Writer {
        out: String::with_capacity(16 * 1024),
    };
    w.one(
        "build_info",
        "gauge",
        "Always 1; the labels say which build and symbol this is.",
        &[("version", env!("CARGO_PKG_VERSION")), ("symbol", m.symbol)],
        1.0,
    );
    w.one(
        "uptime_seconds",
        "gauge",
        "Seconds since the dashboard started.",
        &[],
        m.uptime_s,
    );
    w.one(
        "feed_fresh",
        "gauge",
        "1 when frames arrive within feed_timeout_ms.",
        &[],
        flag(m.feed_fresh),
    );
    if let Some(s) = m.snap {
        let (base, quote) = m.symbol.split_once('/').unwrap_or((m.symbol, "quote"));
        state(&mut w, s);
        counters(&mut w, s);
        money(&mut w, s, base, quote);
    }
    if let Some(wr) = m.worker {
        worker(&mut w, wr);
    }
    w.family(
        "latency_seconds",
        "histogram",
        "Per-stage latency since start (stages as in the latency table; empty stages omitted).",
    );
    for (stage, h) in &m.latency {
        if !h.is_empty() {
            w.histogram("latency_seconds", stage, h);
        }
    }
    w.out
}

fn flag(b: bool) -> f64 {
    f64::from(u8::from(b))
}

fn state(w: &mut Writer, s: &StatusSnapshot) {
    w.one(
        "live_mode",
        "gauge",
        "1 in live mode, 0 in paper.",
        &[],
        flag(s.live),
    );
    w.one(
        "live_fallback",
        "gauge",
        "1 when live mode was asked for but the bot fell back to paper (network unreachable).",
        &[],
        flag(s.live_fallback),
    );
    w.one(
        "feed_connected",
        "gauge",
        "1 while the public WebSocket is connected.",
        &[],
        flag(s.connected),
    );
    w.one(
        "frame_age_seconds",
        "gauge",
        "Seconds since the last public frame, at the last snapshot.",
        &[],
        s.last_frame_age_ns as f64 / 1e9,
    );
    w.family(
        "state",
        "gauge",
        "1 for the trading state the bot is in, 0 for the others.",
    );
    for st in STATES {
        w.sample(
            "state",
            &[("state", st.name())],
            flag(st.name() == s.state.name()),
        );
    }
    w.family(
        "paused",
        "gauge",
        "1 for the rule quoting is paused on, 0 for the others.",
    );
    for r in Rule::ALL {
        w.sample(
            "paused",
            &[("reason", r.name())],
            flag(s.state == TradingState::Paused(r)),
        );
    }
    w.family(
        "pause_ticks_total",
        "counter",
        "Ticks on which each rule held something back.",
    );
    for r in Rule::ALL {
        w.sample(
            "pause_ticks_total",
            &[("reason", r.name())],
            s.pause_counts[r as usize] as f64,
        );
    }
    w.family(
        "private_link_state",
        "gauge",
        "1 for the private stream's state (off, down, up, refused), 0 for the others.",
    );
    for l in LINK_STATES {
        w.sample(
            "private_link_state",
            &[("state", l)],
            flag(l == s.private_link),
        );
    }
    w.one(
        "private_link_up",
        "gauge",
        "1 while the private stream delivers fills in real time.",
        &[],
        flag(s.private_link == "up"),
    );
}

fn counters(w: &mut Writer, s: &StatusSnapshot) {
    let c = &s.counters;
    for (name, help, v) in [
        ("ticks_total", "Strategy evaluations.", c.ticks),
        ("frames_total", "WebSocket text frames received.", c.frames),
        (
            "messages_total",
            "WebSocket text frames received (older name of wildbot_frames_total).",
            c.frames,
        ),
        ("book_messages_total", "Book messages.", c.book_messages),
        (
            "checksum_mismatches_total",
            "Book checksum mismatches.",
            c.checksum_mismatches,
        ),
        (
            "parse_errors_total",
            "Malformed frames skipped.",
            c.parse_errors,
        ),
        (
            "connects_total",
            "Public feed connections made.",
            c.connects,
        ),
        (
            "reconnects_total",
            "Feed connections lost and retried.",
            c.reconnects,
        ),
        (
            "watchdog_timeouts_total",
            "Feed connections dropped because nothing arrived within feed_timeout_ms.",
            c.watchdog_timeouts,
        ),
        (
            "resubscribes_total",
            "Book resubscriptions.",
            c.resubscribes,
        ),
        ("orders_placed_total", "Orders placed.", c.orders_placed),
        (
            "orders_cancelled_total",
            "Orders cancelled.",
            c.orders_cancelled,
        ),
        ("fills_total", "Fills booked.", c.fills),
        (
            "private_reconnects_total",
            "Private stream (authenticated WebSocket) connections lost.",
            c.private_reconnects,
        ),
        (
            "duplicate_execs_total",
            "Stream fills repeated by the exchange (booked once).",
            c.duplicate_execs,
        ),
        (
            "token_refusals_total",
            "WebSocket tokens Kraken refused.",
            c.token_refusals,
        ),
        (
            "execution_faults_total",
            "Order intents the worker could not take.",
            c.execution_faults,
        ),
        (
            "ws_order_requests_total",
            "Order requests sent on the authenticated WebSocket.",
            c.ws_order_requests,
        ),
        (
            "ws_handed_to_rest_total",
            "WebSocket order requests handed to REST when the connection was lost.",
            c.ws_handed_to_rest,
        ),
    ] {
        w.one(name, "counter", help, &[], v as f64);
    }
    w.family(
        "fills_by_source_total",
        "counter",
        "Fills booked, by the path that reported them first.",
    );
    w.sample(
        "fills_by_source_total",
        &[("source", "ws")],
        c.fills_ws as f64,
    );
    w.sample(
        "fills_by_source_total",
        &[("source", "poll")],
        c.fills_poll as f64,
    );
    w.family(
        "dropped_messages_total",
        "counter",
        "Telemetry dropped because a side channel was full.",
    );
    for (ch, v) in [
        ("notices", c.notices_dropped),
        ("status", c.status_dropped),
        ("recorder", c.recorder_dropped),
    ] {
        w.sample("dropped_messages_total", &[("channel", ch)], v as f64);
    }
    w.family(
        "round_trips_total",
        "counter",
        "Closed round trips, by result after both sides' fees.",
    );
    w.sample("round_trips_total", &[("result", "win")], s.wins as f64);
    w.sample("round_trips_total", &[("result", "loss")], s.losses as f64);
}

fn money(w: &mut Writer, s: &StatusSnapshot, base: &str, quote: &str) {
    let cp = s.precision.cash();
    let cash = |v: Cash| v.to_f64(cp);
    let cur = [("currency", quote)];
    let asset = [("asset", base)];
    for (name, help, v) in [
        (
            "realized_pnl",
            "Realised PnL before fees this run.",
            s.realised,
        ),
        (
            "unrealized_pnl",
            "Unrealised PnL of the open position at the microprice.",
            s.unrealised,
        ),
        ("equity", "Mark-to-market equity.", s.equity),
        ("peak_equity", "Highest equity seen.", s.peak_equity),
        ("start_equity", "Equity at start.", s.start_equity),
        (
            "cash",
            "The bot's own cash (its budget plus what its fills moved).",
            s.cash,
        ),
    ] {
        w.one(name, "gauge", help, &cur, cash(v));
    }
    w.one(
        "fees_total",
        "counter",
        "Fees paid this run.",
        &cur,
        cash(s.fees),
    );
    w.one(
        "traded_quote_total",
        "counter",
        "Quote notional traded this run, both sides, before fees.",
        &cur,
        cash(s.volume_quote),
    );
    w.one(
        "traded_base_total",
        "counter",
        "Base quantity traded this run, both sides.",
        &asset,
        s.volume_base.to_f64(s.precision.qty),
    );
    let pos = Qty(s.position.unsigned_abs()).to_f64(s.precision.qty);
    w.one(
        "position",
        "gauge",
        "The bot's own position (live: base balance minus baseline).",
        &asset,
        if s.position < 0 { -pos } else { pos },
    );
    w.one(
        "baseline",
        "gauge",
        "Base of the account that is not the bot's (never traded).",
        &asset,
        s.baseline.to_f64(s.precision.qty),
    );
    if let Some((b, q)) = s.account {
        w.one(
            "account_base",
            "gauge",
            "The exchange's last reported base balance.",
            &asset,
            b.to_f64(s.precision.qty),
        );
        w.one(
            "account_quote",
            "gauge",
            "The exchange's last reported quote balance.",
            &cur,
            cash(q),
        );
    }
    w.one(
        "drawdown_ratio",
        "gauge",
        "Equity's fall from its peak, as a fraction of the peak.",
        &[],
        s.drawdown_ppm as f64 / 1e6,
    );
    w.one(
        "max_drawdown_ratio",
        "gauge",
        "The largest drawdown this run, as a fraction of its peak.",
        &[],
        s.max_drawdown_ppm as f64 / 1e6,
    );
    market(w, s, &cur);
}

fn market(w: &mut Writer, s: &StatusSnapshot, cur: &[(&str, &str)]) {
    let price = |p: Price| p.to_f64(s.precision.price);
    for (name, help, v) in [
        ("best_bid", "Best bid.", s.best_bid.map(price)),
        ("best_ask", "Best ask.", s.best_ask.map(price)),
        ("microprice", "Size-weighted fair price.", s.microprice),
    ] {
        if let Some(v) = v {
            w.one(name, "gauge", help, cur, v);
        }
    }
    w.one(
        "volatility_ratio",
        "gauge",
        "Volatility of the microprice over vol_window_s, as a fraction.",
        &[],
        s.volatility_bps / 1e4,
    );
    w.one(
        "momentum_ratio",
        "gauge",
        "Microprice minus its EMA, as a fraction of the EMA.",
        &[],
        s.momentum_bps / 1e4,
    );
}

fn worker(w: &mut Writer, r: &WorkerReport) {
    for (name, help, v) in [
        (
            "orders_sent_total",
            "Orders that reached Kraken over REST: AddOrder calls answered, and amends.",
            r.orders_sent,
        ),
        ("amends_total", "Requotes done by AmendOrder.", r.amends),
        (
            "amend_fallbacks_total",
            "Amends Kraken refused (fell back to cancel and add).",
            r.amend_fallbacks,
        ),
        (
            "rate_holds_total",
            "Times a new order waited for the trading rate counter.",
            r.rate_holds,
        ),
        (
            "deadman_refreshes_total",
            "Dead man's switch refreshes.",
            r.deadman_refreshes,
        ),
    ] {
        w.one(name, "counter", help, &[], v as f64);
    }
    w.family(
        "worker_errors_total",
        "counter",
        "REST calls that failed, by error kind.",
    );
    for (kind, n) in &r.errors {
        w.sample("worker_errors_total", &[("kind", kind)], *n as f64);
    }
}
