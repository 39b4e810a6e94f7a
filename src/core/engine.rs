//! [`Core`]: events in, intents out. The one type the feed thread, replay and benches drive.
//!
//! Per event: parse (frames) → book → signals → paper fills → strategy → risk → reconcile
//! orders → intents. In paper mode the core executes its own order intents against the
//! [`PaperVenue`] (the intents are still emitted, for logs and telemetry; the driver must not
//! send them to an exchange). In live mode order intents go out through the sink and the
//! exchange's answers come back as [`Event::Order`].
//!
//! All storage is allocated in [`Core::new`]; `handle` never allocates.

use crate::core::accounting::Accounting;
use crate::core::book::{Book, BookError, ChecksumFormat};
use crate::core::event::{
    Alert, AlertKind, AlertLevel, ClientId, Event, Intent, IntentSink, JournalEntry, JournalKind,
    OrderEvent, OrderRequest, Outcome, Purpose, RejectReason, ResyncReason, Stage,
};
use crate::core::event::{Control, Rule, Side};
use crate::core::money::{Cash, Qty};
use crate::core::orders::{MAX_ORDERS, Order, OrderManager, OrderState, OrderUpdate};
use crate::core::paper::latency::{ConstantLatency, OrderLatency, RecordedLatency};
use crate::core::paper::{MAX_PAPER_EVENTS, PaperVenue};
use crate::core::ratecounter::{ADD_COST, Tier, TradingCounter, amend_cost, cancel_cost};
use crate::core::settings::{OnDrawdown, Settings, SettingsError};
use crate::core::signals::Signals;
use crate::core::strategy::{self, Decision, Inputs, Params, SideAction};
use crate::core::time::{MS, Nanos, SEC as SEC_NS};
use crate::core::wire::parse::{
    InstrumentInfo, Message, PairStatus, ParseError, Parser, SystemState, Trade,
};

/// How often the driver gives the core an [`Event::Timer`] (the feed thread when the market is
/// quiet, replay between recorded frames): the cadence of time-driven rules.
pub const TIMER_NS: Nanos = 100 * MS;

/// Minimum time between two [`Intent::Snapshot`]s.
pub const SNAPSHOT_INTERVAL_NS: Nanos = 250 * MS;

/// The paper venue's order latency: constant, or drawn (seeded, so replays repeat) from a live
/// session's measured percentiles, plus the feed latency either way. Frames show the market
/// `feed_latency` late: an order reaching the exchange `order_latency` after it was sent meets
/// the market that frames show `order_latency + feed_latency` after it was sent.
fn paper_latency(settings: &Settings) -> OrderLatency {
    let feed = settings.feed_latency_ms as Nanos * MS;
    match settings.recorded_latency {
        Some(q) => OrderLatency::Recorded(RecordedLatency::new(q, feed, 1)),
        None => OrderLatency::Constant(ConstantLatency(
            settings.order_latency_ms as Nanos * MS + feed,
        )),
    }
}

/// Counters for the dashboard, metrics and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)] // one name per counter, as in the summary, /api/status and /metrics
pub struct Stats {
    pub frames: u64,
    pub book_messages: u64,
    pub snapshots: u64,
    pub updates: u64,
    pub checksums_ok: u64,
    pub checksum_mismatches: u64,
    pub crossed_books: u64,
    /// Book updates dropped while waiting for a fresh snapshot.
    pub updates_ignored: u64,
    pub resyncs: u64,
    pub trades: u64,
    pub heartbeats: u64,
    pub pongs: u64,
    pub acks: u64,
    pub method_errors: u64,
    pub status_messages: u64,
    pub instrument_messages: u64,
    /// Well-formed frames that were not for us.
    pub ignored: u64,
    /// Malformed frames, by [`ParseError::counter`].
    pub parse_errors: [u64; ParseError::COUNTERS],
    /// Strategy evaluations.
    pub ticks: u64,
    pub fills: u64,
    pub rejects: u64,
    pub disconnects: u64,
    pub stale_cancels: u64,
}

impl Stats {
    /// All malformed frames.
    #[must_use]
    pub fn parse_errors_total(&self) -> u64 {
        self.parse_errors.iter().sum()
    }
}

/// What the bot is doing, for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradingState {
    /// No valid book yet (start-up or resync).
    WaitingForBook,
    /// Quotes are out or allowed.
    Quoting,
    /// Quoting held back by this rule.
    Paused(Rule),
    /// Stopped by the drawdown rule (or a fatal instrument change); needs a restart.
    Stopped,
    /// The feed is down.
    Disconnected,
}

impl TradingState {
    /// Short name for JSON and metrics.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            TradingState::WaitingForBook => "waiting_for_book",
            TradingState::Quoting => "quoting",
            TradingState::Paused(_) => "paused",
            TradingState::Stopped => "stopped",
            TradingState::Disconnected => "disconnected",
        }
    }
}

/// The trading core for one symbol.
#[derive(Debug)]
pub struct Core {
    settings: Settings,
    params: Params,
    instrument: Option<InstrumentInfo>,
    parser: Parser,
    book: Book,
    signals: Signals,
    orders: OrderManager,
    acct: Accounting,
    paper: Option<PaperVenue>,
    stats: Stats,
    pause_counts: [u64; Rule::COUNT],
    awaiting_snapshot: bool,
    connected: bool,
    stopped: bool,
    exchange_online: bool,
    pair_online: bool,
    last_fill_at: Option<Nanos>,
    last_snapshot_at: Option<Nanos>,
    last_decision: Option<Decision>,
    last_trade: Option<Trade>,
    slots_alerted: bool,
    /// Per side (buy, sell): no new order before this time after a refusal, and the backoff
    /// the next refusal doubles.
    reject_until: [Nanos; 2],
    reject_backoff: [Nanos; 2],
    /// When equity was last journaled, and the (peak, max drawdown) it said.
    journaled_equity: (Nanos, (Cash, i64)),
    /// Kraken's trading rate counter as the core's own intents move it: requotes and new
    /// entries are decided within its room (cancels and exits never wait for it).
    rate: TradingCounter,
    /// A stop that fired: the exit stays forced until the position is flat.
    latched: Option<Rule>,
    /// The drawdown stop is force-exiting the position (`on_drawdown = "flatten"`).
    flattening: bool,
    /// The operator paused entries (`/pause`, `/flatten`) until `/resume`.
    operator_paused: bool,
    /// The operator's `/flatten` is force-exiting the position (latched until flat).
    operator_flatten: bool,
    /// A balance report disagreed with the position; the next fill poll decides.
    drift_suspect: bool,
    /// The disagreement outlived a fill poll: no new entries until it is resolved.
    drift: bool,
    /// The dust alert for the current dust position was sent.
    dust_alerted: bool,
    /// Live: since when the private stream's reconciliation holds new orders back.
    reconciling_since: Option<Nanos>,
    now: Nanos,
}

/// The restorable state a journal snapshot holds (see [`Core::snapshot`]).
#[derive(Debug, Clone)]
pub struct CoreSnapshot {
    /// The account: position, basis, cash, PnL, fees, trips, equity marks, baseline, history.
    pub acct: Accounting,
    /// The orders still live, with what they filled (already booked in `acct`).
    pub open: [Option<Order>; MAX_ORDERS],
    /// The next client id (ids continue after the journal's).
    pub next_id: ClientId,
}

/// Rate-counter room the core leaves for what never waits (cancels, exits, force exits).
const RATE_RESERVE_SHARE: f64 = 1.0 / 3.0;

/// Longest a reconciliation of the private stream holds quoting back.
const RECONCILE_HOLD_MAX: Nanos = 15 * SEC_NS;

/// First wait after the venue refuses an order (not post-only); doubles per refusal in a row.
const REJECT_BACKOFF_MIN: Nanos = SEC_NS;
/// Longest such wait.
const REJECT_BACKOFF_MAX: Nanos = 60 * SEC_NS;

/// A sink that drops everything (journal replay).
struct Discard;

impl IntentSink for Discard {
    fn push(&mut self, _: Intent) {}
}

impl Core {
    /// Builds the core and allocates everything it will ever use. Paper mode unless
    /// `settings.live_mode`. `first_order_id` seeds client ids (use something that grows across
    /// restarts, such as the start time in microseconds).
    ///
    /// # Errors
    /// A setting the derived integer parameters cannot hold, naming the key.
    pub fn new(settings: &Settings, first_order_id: ClientId) -> Result<Core, SettingsError> {
        let params = Params::new(settings, None)?;
        let pp = params.price_precision;
        let qp = params.qty_precision;
        Ok(Core {
            parser: Parser::new(&settings.symbol, pp, qp),
            book: Book::new(
                settings.book_depth,
                pp,
                qp,
                ChecksumFormat::precision(pp, qp),
            ),
            signals: Signals::new(params.ema_window, params.vol_window_ns, pp),
            orders: OrderManager::new(first_order_id),
            acct: Accounting::new(params.starting_capital),
            paper: (!settings.live_mode).then(|| {
                PaperVenue::new(params.maker_fee, params.taker_fee, params.fill_cooldown_ns)
                    .with_model(settings.fill_model, 0)
                    .with_latency(paper_latency(settings))
            }),
            stats: Stats::default(),
            pause_counts: [0; Rule::COUNT],
            awaiting_snapshot: true,
            connected: true,
            stopped: false,
            exchange_online: true,
            pair_online: true,
            last_fill_at: None,
            last_snapshot_at: None,
            last_decision: None,
            last_trade: None,
            slots_alerted: false,
            reject_until: [Nanos::MIN; 2],
            reject_backoff: [0; 2],
            journaled_equity: (Nanos::MIN / 2, (Cash(0), 0)),
            rate: TradingCounter::new(
                params.rate_tier,
                params.rate_tier.threshold() * RATE_RESERVE_SHARE,
            ),
            latched: None,
            flattening: false,
            operator_paused: false,
            operator_flatten: false,
            drift_suspect: false,
            drift: false,
            dust_alerted: false,
            reconciling_since: None,
            now: 0,
            settings: settings.clone(),
            params,
            instrument: None,
        })
    }

    /// Processes one event at time `now`, pushing intents into `out`, and says what a frame
    /// was (other events are [`Outcome::Quiet`]).
    pub fn handle<S: IntentSink>(&mut self, now: Nanos, event: Event<'_>, out: &mut S) -> Outcome {
        self.now = now;
        if let Some(p) = &mut self.paper {
            p.begin_tick();
        }
        match event {
            Event::Frame(bytes) => return self.on_frame(now, bytes, out),
            Event::Order(ev) => {
                self.apply_order_event(now, &ev, out);
                self.tick(now, out);
            }
            Event::Timer => self.tick(now, out),
            Event::Disconnected => self.on_disconnect(now, out),
            Event::Control(c) => {
                self.on_control(c, out);
                self.tick(now, out);
            }
        }
        Outcome::Quiet
    }

    /// The operator's command. The next tick acts on it through the strategy and the risk
    /// rules, as on any other input: a flatten is a force exit like a stop's.
    fn on_control<S: IntentSink>(&mut self, c: Control, out: &mut S) {
        let pos = self.acct.position;
        match c {
            Control::Pause => self.operator_paused = true,
            Control::Resume => {
                self.operator_paused = false;
                self.operator_flatten = false;
            }
            Control::Flatten => {
                self.operator_paused = true;
                self.operator_flatten = pos != 0 && !self.params.is_dust(pos);
            }
        }
        out.push(Intent::Alert(Alert {
            level: AlertLevel::Warning,
            kind: AlertKind::Operator {
                control: c,
                position: pos,
            },
        }));
    }

    fn on_frame<S: IntentSink>(&mut self, now: Nanos, bytes: &[u8], out: &mut S) -> Outcome {
        self.stats.frames += 1;
        let msg = match self.parser.parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.stats.parse_errors[e.counter()] += 1;
                return Outcome::Malformed;
            }
        };
        out.stage(Stage::Parsed);
        match msg {
            Message::Book(h) => {
                self.stats.book_messages += 1;
                if self.awaiting_snapshot && !h.snapshot {
                    self.stats.updates_ignored += 1;
                    return Outcome::Quiet;
                }
                match self.book.apply(&h, self.parser.bids(), self.parser.asks()) {
                    Ok(applied) => {
                        self.stats.checksums_ok += u64::from(applied.checksum_matched);
                        let outcome = if h.snapshot {
                            self.stats.snapshots += 1;
                            self.awaiting_snapshot = false;
                            self.connected = true;
                            Outcome::Snapshot
                        } else {
                            self.stats.updates += 1;
                            Outcome::Quiet
                        };
                        out.stage(Stage::BookApplied);
                        self.signals.on_book(now, &self.book);
                        if let Some(p) = &mut self.paper {
                            p.on_book(&self.book, now);
                        }
                        self.drain_paper(now, out);
                        self.tick(now, out);
                        out.stage(Stage::Decided);
                        return outcome;
                    }
                    Err(BookError::NotSynced) => self.stats.updates_ignored += 1,
                    Err(BookError::ChecksumMismatch { expected, computed }) => {
                        self.stats.checksum_mismatches += 1;
                        self.resync(
                            now,
                            ResyncReason::Checksum,
                            AlertKind::ChecksumMismatch { expected, computed },
                            out,
                        );
                    }
                    Err(BookError::Crossed { .. }) => {
                        self.stats.crossed_books += 1;
                        self.resync(now, ResyncReason::Crossed, AlertKind::BookCrossed, out);
                    }
                }
            }
            Message::Trades(snapshot) => {
                self.stats.trades += self.parser.trades().len() as u64;
                if let Some(t) = self.parser.trades().last() {
                    self.last_trade = Some(*t);
                }
                // A trade snapshot is history: it must not fill orders placed after it.
                if !snapshot && let Some(p) = &mut self.paper {
                    for t in self.parser.trades() {
                        p.on_trade(t, now);
                    }
                }
                self.drain_paper(now, out);
                self.tick(now, out);
                out.stage(Stage::Decided);
            }
            Message::Instrument(info) => {
                self.stats.instrument_messages += 1;
                if let Some(info) = info {
                    self.on_instrument(now, info, out);
                }
                return Outcome::Instrument;
            }
            Message::Status { system, .. } => {
                self.stats.status_messages += 1;
                self.exchange_online =
                    matches!(system, SystemState::Online | SystemState::PostOnly);
            }
            Message::Heartbeat => self.stats.heartbeats += 1,
            Message::Pong { .. } => {
                self.stats.pongs += 1;
                return Outcome::Pong;
            }
            Message::Subscribed(_) | Message::Unsubscribed(_) => self.stats.acks += 1,
            Message::MethodError { .. } => {
                self.stats.method_errors += 1;
                return Outcome::MethodError;
            }
            Message::Ignored => self.stats.ignored += 1,
        }
        Outcome::Quiet
    }

    fn on_instrument<S: IntentSink>(&mut self, now: Nanos, info: InstrumentInfo, out: &mut S) {
        self.pair_online = matches!(info.status, PairStatus::Online | PairStatus::PostOnly);
        let precision_changed = info.price_precision != self.params.price_precision
            || info.qty_precision != self.params.qty_precision;
        let params = match Params::new(&self.settings, Some(&info)) {
            Ok(p) => p,
            Err(_) => {
                // The configured size cannot be expressed on this instrument: do not trade.
                self.stop(now, AlertKind::InstrumentChanged, out);
                return;
            }
        };
        self.instrument = Some(info);
        if !precision_changed {
            self.params = params;
            return;
        }
        if self.acct.fill_count() > 0 || self.acct.position != 0 || self.orders.live_count() > 0 {
            // Amounts already booked are in the old units; refuse to guess a conversion.
            self.stop(now, AlertKind::InstrumentChanged, out);
            return;
        }
        let (pp, qp) = (params.price_precision, params.qty_precision);
        self.parser.set_precision(pp, qp);
        self.book.reset(pp, qp, ChecksumFormat::precision(pp, qp));
        self.signals
            .reset_precision(pp, params.ema_window, params.vol_window_ns);
        self.acct = Accounting::new(params.starting_capital);
        self.params = params;
        self.awaiting_snapshot = false; // let resync request a snapshot at the new precision
        self.resync(
            now,
            ResyncReason::Precision,
            AlertKind::InstrumentChanged,
            out,
        );
    }

    fn on_disconnect<S: IntentSink>(&mut self, now: Nanos, out: &mut S) {
        self.stats.disconnects += 1;
        self.book.invalidate();
        self.awaiting_snapshot = true;
        let was_connected = std::mem::replace(&mut self.connected, false);
        self.cancel_all_orders(now, out);
        if self.paper.is_none() {
            out.push(Intent::CancelAll);
        }
        if was_connected {
            out.push(Intent::Alert(Alert {
                level: AlertLevel::Critical,
                kind: AlertKind::Disconnected,
            }));
        }
        self.tick(now, out);
    }

    /// The book can no longer be trusted: stop quoting, cancel, ask for a fresh snapshot once.
    fn resync<S: IntentSink>(
        &mut self,
        now: Nanos,
        reason: ResyncReason,
        kind: AlertKind,
        out: &mut S,
    ) {
        self.book.invalidate();
        self.cancel_all_orders(now, out);
        if !self.awaiting_snapshot {
            self.awaiting_snapshot = true;
            self.stats.resyncs += 1;
            out.push(Intent::Resubscribe {
                depth: self.book.depth(),
                reason,
            });
            out.push(Intent::Alert(Alert {
                level: AlertLevel::Warning,
                kind,
            }));
        }
    }

    fn stop<S: IntentSink>(&mut self, now: Nanos, kind: AlertKind, out: &mut S) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.cancel_all_orders(now, out);
        out.push(Intent::CancelAll);
        out.push(Intent::Alert(Alert {
            level: AlertLevel::Critical,
            kind,
        }));
    }

    fn cancel_all_orders<S: IntentSink>(&mut self, now: Nanos, out: &mut S) {
        let mut ids = [0 as ClientId; MAX_ORDERS];
        let mut n = 0;
        for o in self.orders.live() {
            if o.state != OrderState::PendingCancel {
                ids[n] = o.req.cl_id;
                n += 1;
            }
        }
        for &id in &ids[..n] {
            self.cancel_order(id, out);
        }
        self.drain_paper(now, out);
    }

    fn cancel_order<S: IntentSink>(&mut self, cl_id: ClientId, out: &mut S) {
        let age = self.orders.get(cl_id).map(|o| self.now - o.placed_at);
        if self.orders.mark_cancel(cl_id) {
            self.rate.spend(self.now, age.map_or(0.0, cancel_cost));
            out.push(Intent::Cancel { cl_id });
            if let Some(p) = &mut self.paper {
                p.cancel(cl_id);
            }
        }
    }

    /// Applies what the paper venue produced (acks, rejects, fills).
    fn drain_paper<S: IntentSink>(&mut self, now: Nanos, out: &mut S) {
        if self.paper.as_ref().is_none_or(|p| p.events().is_empty()) {
            return; // the common case: nothing happened at the venue
        }
        let mut buf = [None; MAX_PAPER_EVENTS * 2];
        let n = match &mut self.paper {
            Some(p) => {
                let evs = p.events();
                for (slot, ev) in buf.iter_mut().zip(evs) {
                    *slot = Some(*ev);
                }
                let n = evs.len().min(buf.len());
                p.clear_events();
                n
            }
            None => return,
        };
        for ev in buf[..n].iter().flatten() {
            self.apply_order_event(now, ev, out);
        }
    }

    fn apply_order_event<S: IntentSink>(&mut self, now: Nanos, ev: &OrderEvent, out: &mut S) {
        match *ev {
            // A poll is no news for the journal; it only decides a pending drift check.
            OrderEvent::Polled => {
                self.check_drift(true, out);
                return;
            }
            OrderEvent::Reconciling => {
                self.reconciling_since = Some(now);
                return;
            }
            OrderEvent::Reconciled => {
                self.reconciling_since = None;
                return;
            }
            OrderEvent::RateLimit { max } => {
                let tier = Tier::from_max(max);
                self.rate
                    .set_tier(now, tier, tier.threshold() * RATE_RESERVE_SHARE);
                return;
            }
            OrderEvent::RateCount { centi } => {
                self.rate.observe(now, f64::from(centi) / 100.0);
                return;
            }
            OrderEvent::Balances { quote, base } => {
                out.push(Intent::Journal(JournalEntry {
                    t: now,
                    kind: JournalKind::Order(*ev),
                }));
                self.on_balances(now, quote, base, out);
                return;
            }
            _ => out.push(Intent::Journal(JournalEntry {
                t: now,
                kind: JournalKind::Order(*ev),
            })),
        }
        let side = match *ev {
            OrderEvent::Accepted { cl_id } | OrderEvent::Rejected { cl_id, .. } => {
                self.orders.get(cl_id).map(|o| o.side() as usize)
            }
            _ => None,
        };
        match *ev {
            OrderEvent::Accepted { .. } => {
                if let Some(s) = side {
                    self.reject_backoff[s] = 0;
                }
            }
            OrderEvent::Rejected { reason, .. } if reason != RejectReason::PostOnly => {
                if let Some(s) = side {
                    let b =
                        (self.reject_backoff[s] * 2).clamp(REJECT_BACKOFF_MIN, REJECT_BACKOFF_MAX);
                    self.reject_backoff[s] = b;
                    self.reject_until[s] = now + b;
                }
            }
            _ => {}
        }
        match self.orders.on_event(ev) {
            OrderUpdate::Fill(delta) => {
                let before = self.acct.position;
                self.acct.on_fill(&delta, now);
                self.after_fill(now, before, out);
                if let Some(m) = self.signals.micro {
                    self.acct.mark(m);
                }
                self.last_fill_at = Some(now);
                self.stats.fills += 1;
                let price = crate::core::money::Price(
                    (delta.cost.0 / i128::from(delta.qty.0.max(1))) as i64,
                );
                out.push(Intent::Alert(Alert {
                    level: AlertLevel::Info,
                    kind: AlertKind::Filled {
                        cl_id: delta.cl_id,
                        side: delta.side,
                        qty: delta.qty,
                        price,
                        fee: delta.fee,
                    },
                }));
            }
            OrderUpdate::Rejected(cl_id, reason) => {
                self.stats.rejects += 1;
                out.push(Intent::Alert(Alert {
                    level: AlertLevel::Warning,
                    kind: AlertKind::OrderRejected { cl_id, reason },
                }));
            }
            OrderUpdate::Unknown(_) | OrderUpdate::None => {}
        }
    }

    /// Live: the exchange's balances. This run's first report funds the bot: the baseline
    /// (the account's base that is not the bot's: configured, or the balance less the bot's
    /// own restored position) and the cash it may commit. Every report is then a check of
    /// baseline + position, never a source of either.
    fn on_balances<S: IntentSink>(&mut self, now: Nanos, quote: Cash, base: Qty, out: &mut S) {
        if self.paper.is_some() {
            return;
        }
        if self.acct.reported.is_none() {
            let own = i128::from(self.acct.position);
            let auto = Qty(u64::try_from((i128::from(base.0) - own).max(0)).unwrap_or(0));
            let baseline = self.params.baseline.unwrap_or(auto);
            let mut cash = self.params.quote_budget.map_or(quote, |b| b.min(quote));
            if self.acct.funded {
                // Restored from the journal: the bot's own cash, within today's limits.
                cash = cash.min(self.acct.cash);
            }
            self.acct.fund(baseline, cash);
            out.push(Intent::Journal(JournalEntry {
                t: now,
                kind: JournalKind::Funded { baseline, cash },
            }));
        }
        self.acct.report(quote, base);
        self.check_drift(false, out);
    }

    /// Whether a reconciliation still holds new orders back. Bounded: a REST API that cannot
    /// answer must not keep the risk rules (stops, exits) off for long.
    fn reconciling(&mut self, now: Nanos) -> bool {
        match self.reconciling_since {
            Some(t) if now - t < RECONCILE_HOLD_MAX => true,
            Some(_) => {
                self.reconciling_since = None;
                false
            }
            None => false,
        }
    }

    /// Compares the reported base balance with baseline + position: at a report
    /// (`after_poll = false`) a difference is only suspected (the balance may show a fill the
    /// fill poll has not booked yet); if it is still there after the next poll, it is a drift:
    /// alert, no new entries, and balances are asked for until they agree again.
    fn check_drift<S: IntentSink>(&mut self, after_poll: bool, out: &mut S) {
        let Some(diff) = self.acct.base_mismatch(after_poll) else {
            return;
        };
        if diff == 0 {
            self.drift_suspect = false;
            if std::mem::take(&mut self.drift) {
                out.push(Intent::Alert(Alert {
                    level: AlertLevel::Info,
                    kind: AlertKind::DriftResolved,
                }));
            }
            return;
        }
        if !after_poll {
            self.drift_suspect = true;
            return;
        }
        if !std::mem::take(&mut self.drift_suspect) && !self.drift {
            return; // a report older than fills booked since: nothing to compare
        }
        if !std::mem::replace(&mut self.drift, true) {
            let expected = i128::from(self.acct.baseline.0) + i128::from(self.acct.position);
            out.push(Intent::Alert(Alert {
                level: AlertLevel::Critical,
                kind: AlertKind::PositionDrift {
                    reported: self.acct.reported.map_or(Qty(0), |r| r.base),
                    expected: i64::try_from(expected).unwrap_or(i64::MAX),
                },
            }));
        }
        out.push(Intent::CheckBalances);
    }

    /// After a fill: dust alert (once per dust position), hold clock for a position grown out
    /// of dust, and the latched stop ends when the position is flat.
    fn after_fill<S: IntentSink>(&mut self, now: Nanos, before: i64, out: &mut S) {
        let pos = self.acct.position;
        if self.params.is_dust(pos) {
            if !std::mem::replace(&mut self.dust_alerted, true) {
                out.push(Intent::Alert(Alert {
                    level: AlertLevel::Warning,
                    kind: AlertKind::DustPosition { position: pos },
                }));
            }
        } else {
            self.dust_alerted = false;
            if pos != 0 && self.params.is_dust(before) {
                self.acct.restart_hold(now);
            }
        }
        if pos == 0 || self.params.is_dust(pos) || (pos > 0) != (before > 0) {
            self.latched = None;
            self.flattening &= pos != 0 && !self.params.is_dust(pos);
            self.operator_flatten &= pos != 0 && !self.params.is_dust(pos);
        }
    }

    /// One strategy evaluation: risk checks, decision, order reconciliation, snapshot.
    fn tick<S: IntentSink>(&mut self, now: Nanos, out: &mut S) {
        self.stats.ticks += 1;
        self.maybe_snapshot(now, out);
        let micro = match self.signals.micro {
            Some(m) if self.book.is_valid() => m,
            _ => {
                self.pause(if self.stopped {
                    Rule::Drawdown
                } else {
                    Rule::BookInvalid
                });
                self.last_decision = None;
                return;
            }
        };
        if self.paper.is_none() && self.acct.reported.is_none() {
            // Live: nothing is quoted, and no equity anchored, before the account is known.
            self.pause(Rule::Unfunded);
            self.last_decision = None;
            return;
        }
        if self.reconciling(now) {
            // The stream's snapshot and REST are settling what happened while it was away:
            // a decision now could rest on a position that is about to change.
            self.pause(Rule::Reconciling);
            self.last_decision = None;
            return;
        }
        let anchoring = !self.acct.anchored;
        self.acct.mark(micro);
        self.journal_equity(now, anchoring, out);
        if !self.stopped && self.acct.drawdown_reached(self.params.max_drawdown.0) {
            let kind = AlertKind::DrawdownStop {
                equity: self.acct.equity,
                peak: self.acct.peak_equity,
            };
            self.stop(now, kind, out);
            self.flattening = self.params.on_drawdown == OnDrawdown::Flatten;
        }
        if self.stopped {
            self.pause(Rule::Drawdown);
            let pos = self.acct.position;
            self.flattening &= pos != 0 && !self.params.is_dust(pos);
            // A stopped bot still exits when told to (`on_drawdown = "flatten"`, or the
            // operator's /flatten after a `hold` stop): that only takes risk off.
            if !self.flattening && !self.operator_flatten {
                self.last_decision = None;
                return;
            }
        }
        if !(self.exchange_online && self.pair_online) {
            self.pause(Rule::ExchangeStatus);
            self.cancel_all_orders(now, out);
            self.last_decision = None;
            return;
        }
        let pos = self.acct.position;
        if pos == 0 || self.params.is_dust(pos) {
            self.latched = None;
        }
        let d = strategy::decide(
            &self.params,
            &Inputs {
                now,
                book: &self.book,
                signals: &self.signals,
                acct: &self.acct,
                orders: &self.orders,
                latched: if self.flattening {
                    Some(Rule::Drawdown)
                } else if self.operator_flatten {
                    Some(Rule::Operator)
                } else {
                    self.latched
                },
                no_entries: if self.stopped {
                    Some(Rule::Drawdown)
                } else if self.drift {
                    Some(Rule::Drift)
                } else if self.operator_paused {
                    Some(Rule::Operator)
                } else {
                    None
                },
            },
        );
        if self.latched.is_none() && !self.flattening && !self.operator_flatten {
            self.latched = d.forced_by;
        }
        for r in Rule::ALL {
            if d.blocked_by(r) {
                self.pause_counts[r as usize] += 1;
            }
        }
        self.reconcile(now, &d, out);
        self.last_decision = Some(d);
    }

    /// Journals peak equity and max drawdown when they moved, at most once a second
    /// (`force`: now, whatever moved).
    fn journal_equity<S: IntentSink>(&mut self, now: Nanos, force: bool, out: &mut S) {
        let a = &self.acct;
        let current = (a.peak_equity, a.max_drawdown_ppm);
        if force || (current != self.journaled_equity.1 && now - self.journaled_equity.0 >= SEC_NS)
        {
            self.journaled_equity = (now, current);
            out.push(Intent::Journal(JournalEntry {
                t: now,
                kind: JournalKind::Equity {
                    start: a.start_equity,
                    peak: a.peak_equity,
                    max_drawdown_ppm: a.max_drawdown_ppm,
                },
            }));
        }
    }

    /// The records a new journal starts with: the account as it is now (paper: its cash;
    /// live: nothing yet, the first balances fund it and the first mark anchors equity).
    pub fn journal_start<S: IntentSink>(&mut self, now: Nanos, out: &mut S) {
        if self.paper.is_some() {
            out.push(Intent::Journal(JournalEntry {
                t: now,
                kind: JournalKind::Funded {
                    baseline: Qty(0),
                    cash: self.acct.cash,
                },
            }));
        }
        if self.acct.anchored {
            self.journal_equity(now, true, out);
        }
    }

    /// Rebuilds orders and account from a journal: its snapshot (what compaction kept of
    /// everything before it), then its records in order (see [`JournalEntry`]). Market state
    /// is not touched. Balance reports of earlier runs are checks and restore nothing; this
    /// run's first report funds the bot again (see `on_balances`). Returns the orders the
    /// journal still had open: in paper mode they died with the process; in live mode the
    /// exchange has the final word.
    pub fn restore(
        &mut self,
        snapshot: Option<&CoreSnapshot>,
        entries: &[JournalEntry],
    ) -> Vec<Order> {
        if let Some(s) = snapshot {
            self.restore_snapshot(s);
        }
        for e in entries {
            self.replay(e);
        }
        // Alerts of the replay went nowhere; what they decided is this run's to find again.
        self.acct.reported = None;
        self.drift = false;
        self.drift_suspect = false;
        self.dust_alerted = false;
        self.orders.live().copied().collect()
    }

    /// Applies one journal record, as [`Core::restore`] does (the journal thread keeps a
    /// mirror of the account this way, for its snapshots).
    pub fn replay(&mut self, e: &JournalEntry) {
        match e.kind {
            JournalKind::Placed(req) => self.orders.restore(req, e.t),
            JournalKind::Order(OrderEvent::Balances { .. }) => {}
            JournalKind::Order(ev) => self.apply_order_event(e.t, &ev, &mut Discard),
            JournalKind::Funded { baseline, cash } => self.acct.fund(baseline, cash),
            JournalKind::Equity {
                start,
                peak,
                max_drawdown_ppm,
            } => {
                self.acct.start_equity = start;
                self.acct.peak_equity = peak;
                self.acct.max_drawdown_ppm = max_drawdown_ppm;
                self.acct.anchored = true;
                self.journaled_equity = (e.t, (peak, max_drawdown_ppm));
            }
        }
    }

    /// What a journal snapshot keeps: the account, the live orders, the next client id.
    #[must_use]
    pub fn snapshot(&self) -> CoreSnapshot {
        let mut open = [None; MAX_ORDERS];
        for (slot, o) in open.iter_mut().zip(self.orders.live()) {
            *slot = Some(*o);
        }
        CoreSnapshot {
            acct: self.acct.clone(),
            open,
            next_id: self.orders.next_id(),
        }
    }

    fn restore_snapshot(&mut self, s: &CoreSnapshot) {
        self.acct = s.acct.clone();
        self.acct.reported = None;
        self.journaled_equity = (self.now, (s.acct.peak_equity, s.acct.max_drawdown_ppm));
        for o in s.open.iter().flatten() {
            self.orders.restore_order(*o);
        }
        self.orders.continue_from(s.next_id);
    }

    fn pause(&mut self, r: Rule) {
        self.pause_counts[r as usize] += 1;
    }

    fn maybe_snapshot<S: IntentSink>(&mut self, now: Nanos, out: &mut S) {
        if self
            .last_snapshot_at
            .is_none_or(|t| now - t >= SNAPSHOT_INTERVAL_NS)
        {
            self.last_snapshot_at = Some(now);
            out.push(Intent::Snapshot);
        }
    }

    /// Makes the live orders match the decision: cancel what does not fit, place what is
    /// missing (one order per side, only when nothing else is live on that side, and never
    /// within the fill cooldown). A requote (an order replaced only because its target moved
    /// or it grew stale) and a new entry are decided within the rate counter's room; cancels
    /// that take risk off, exits and force exits never wait for it.
    fn reconcile<S: IntentSink>(&mut self, now: Nanos, d: &Decision, out: &mut S) {
        let cooling = self
            .last_fill_at
            .is_some_and(|t| now - t < self.params.fill_cooldown_ns);
        for side in [Side::Buy, Side::Sell] {
            let action = d.side(side);
            // Ids, not copies of the orders: this runs on every tick.
            let mut live = [0 as ClientId; MAX_ORDERS];
            let mut n = 0;
            for o in self.orders.live().filter(|o| o.side() == side) {
                live[n] = o.req.cl_id;
                n += 1;
            }
            let mut kept = false;
            // Live mode: the one order this tick cancels on a side that is then quoted again
            // becomes a single replace (the worker sends it as one AmendOrder when it can).
            let mut replacing: Option<ClientId> = None;
            for &id in &live[..n] {
                let Some(o) = self.orders.get(id).copied() else {
                    continue;
                };
                if o.state == OrderState::PendingCancel {
                    continue;
                }
                let fits = self.fits(&o, action);
                let stale = o.req.purpose != Purpose::ForceExit
                    && now - o.placed_at >= self.params.stale_order_ns;
                if fits && !stale && !kept {
                    kept = true;
                    continue;
                }
                let requote = !kept
                    && matches!(action, SideAction::Quote(q) if q.purpose == o.req.purpose
                        && q.purpose != Purpose::ForceExit);
                if requote && !self.rate_room(now, &o) {
                    // The venue path cannot carry this requote now: the order stays.
                    kept = true;
                    self.pause(Rule::RateRoom);
                    continue;
                }
                if fits && stale {
                    self.stats.stale_cancels += 1;
                    self.pause(Rule::Stale);
                }
                if self.paper.is_none()
                    && replacing.is_none()
                    && matches!(action, SideAction::Quote(q) if q.purpose != Purpose::ForceExit)
                {
                    replacing = Some(o.req.cl_id);
                } else {
                    self.cancel_order(o.req.cl_id, out);
                }
            }
            let SideAction::Quote(q) = action else {
                continue;
            };
            let blocked = if kept
                || self
                    .orders
                    .live()
                    .any(|o| o.side() == side && Some(o.req.cl_id) != replacing)
            {
                None
            } else if cooling {
                Some(Rule::Cooldown)
            } else if now < self.reject_until[side as usize] {
                Some(Rule::Rejected)
            } else if q.purpose == Purpose::Entry
                && replacing.is_none()
                && !self.rate.allows(now, ADD_COST)
            {
                Some(Rule::RateRoom)
            } else {
                self.place(now, side, q, replacing, d, out);
                continue;
            };
            if let Some(old) = replacing {
                self.cancel_order(old, out);
            }
            if let Some(r) = blocked {
                self.pause(r);
            }
        }
        self.drain_paper(now, out);
    }

    /// Whether resting order `o` already is what `action` wants: an entry of the same size
    /// (it rests until stale), an exit within `requote_ticks` of the target with the size of
    /// the position, any force exit.
    fn fits(&self, o: &Order, action: SideAction) -> bool {
        match action {
            SideAction::Cancel => false,
            SideAction::Hold => o.req.purpose != Purpose::Entry,
            SideAction::Quote(q) => match q.purpose {
                Purpose::Entry => o.req.purpose == Purpose::Entry && o.req.qty == q.qty,
                Purpose::Exit => {
                    let tolerance = self.params.requote_distance.0.max(self.params.tick.0);
                    o.req.purpose == Purpose::Exit
                        && (o.price().0 - q.price.0).abs() < tolerance
                        && o.remaining() == q.qty
                }
                Purpose::ForceExit => o.req.purpose == Purpose::ForceExit,
            },
        }
    }

    /// Whether the rate counter has room to requote `o` (an amend in live when it is
    /// unfilled, else a cancel and an add), leaving the reserve for what never waits.
    fn rate_room(&mut self, now: Nanos, o: &Order) -> bool {
        let cost = self.requote_cost(now, o);
        self.rate.allows(now, cost)
    }

    fn requote_cost(&self, now: Nanos, o: &Order) -> f64 {
        let age = now - o.placed_at;
        if self.paper.is_none() && o.filled.0 == 0 {
            amend_cost(age)
        } else {
            cancel_cost(age) + ADD_COST
        }
    }

    /// Opens the order `q` on `side` (as the replacement of `replacing` in live mode).
    fn place<S: IntentSink>(
        &mut self,
        now: Nanos,
        side: Side,
        q: strategy::Quote,
        replacing: Option<ClientId>,
        d: &Decision,
        out: &mut S,
    ) {
        let req = OrderRequest {
            cl_id: 0,
            side,
            price: q.price,
            qty: q.qty,
            post_only: q.purpose != Purpose::ForceExit,
            ioc: q.purpose == Purpose::ForceExit,
            purpose: q.purpose,
        };
        let old = replacing.and_then(|id| self.orders.get(id).copied());
        let Some(req) = self.orders.open(req, now) else {
            if let Some(old) = replacing {
                self.cancel_order(old, out);
            }
            self.pause(Rule::SlotsFull);
            if !std::mem::replace(&mut self.slots_alerted, true) {
                out.push(Intent::Alert(Alert {
                    level: AlertLevel::Critical,
                    kind: AlertKind::OrderSlotsFull,
                }));
            }
            return;
        };
        out.push(Intent::Journal(JournalEntry {
            t: now,
            kind: JournalKind::Placed(req),
        }));
        match old {
            Some(o) if self.orders.mark_cancel(o.req.cl_id) => {
                let cost = self.requote_cost(now, &o);
                self.rate.spend(now, cost);
                out.push(Intent::Replace {
                    old: o.req.cl_id,
                    new: req,
                });
            }
            _ => {
                self.rate.spend(now, ADD_COST);
                out.push(Intent::Place(req));
            }
        }
        if let (Purpose::ForceExit, Some(rule)) = (q.purpose, d.forced_by) {
            out.push(Intent::Alert(Alert {
                level: AlertLevel::Warning,
                kind: AlertKind::ForceExit { rule },
            }));
        }
        if let Some(p) = &mut self.paper {
            p.place(&req, &self.book, now);
        }
    }

    // ---- read access for dashboards, reports and tests ----

    /// What the bot is doing.
    #[must_use]
    pub fn state(&self) -> TradingState {
        if self.stopped {
            return TradingState::Stopped;
        }
        if !self.connected {
            return TradingState::Disconnected;
        }
        if !self.book.is_valid() {
            return TradingState::WaitingForBook;
        }
        if !(self.exchange_online && self.pair_online) {
            return TradingState::Paused(Rule::ExchangeStatus);
        }
        if self.paper.is_none() && self.acct.reported.is_none() {
            return TradingState::Paused(Rule::Unfunded);
        }
        if self.reconciling_since.is_some() {
            return TradingState::Paused(Rule::Reconciling);
        }
        match self.last_decision {
            Some(d)
                if !matches!(d.buy, SideAction::Quote(_))
                    && !matches!(d.sell, SideAction::Quote(_)) =>
            {
                match Rule::ALL.into_iter().find(|r| d.blocked_by(*r)) {
                    Some(r) => TradingState::Paused(r),
                    None => TradingState::Quoting,
                }
            }
            _ => TradingState::Quoting,
        }
    }

    /// The rate-counter tier in force (configured, or as Kraken announced it).
    #[must_use]
    pub fn rate_tier(&self) -> Tier {
        self.rate.tier()
    }

    /// The core's model of Kraken's trading rate counter at `now`.
    #[must_use]
    pub fn rate_value(&self, now: Nanos) -> f64 {
        let mut r = self.rate.clone();
        r.value(now)
    }

    /// The book.
    #[must_use]
    pub fn book(&self) -> &Book {
        &self.book
    }

    /// The signals.
    #[must_use]
    pub fn signals(&self) -> &Signals {
        &self.signals
    }

    /// The account.
    #[must_use]
    pub fn account(&self) -> &Accounting {
        &self.acct
    }

    /// Our orders.
    #[must_use]
    pub fn orders(&self) -> &OrderManager {
        &self.orders
    }

    /// The derived parameters in force.
    #[must_use]
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Ticks on which each rule held something back, by [`Rule`] index.
    #[must_use]
    pub fn pause_counts(&self) -> &[u64; Rule::COUNT] {
        &self.pause_counts
    }

    /// The last decision.
    #[must_use]
    pub fn last_decision(&self) -> Option<&Decision> {
        self.last_decision.as_ref()
    }

    /// The last public trade.
    #[must_use]
    pub fn last_trade(&self) -> Option<&Trade> {
        self.last_trade.as_ref()
    }

    /// The instrument as last reported.
    #[must_use]
    pub fn instrument(&self) -> Option<&InstrumentInfo> {
        self.instrument.as_ref()
    }

    /// True in paper mode.
    #[must_use]
    pub fn is_paper(&self) -> bool {
        self.paper.is_some()
    }

    /// Time of the last event handled.
    #[must_use]
    pub fn now(&self) -> Nanos {
        self.now
    }
}

#[cfg(test)]
mod live_tests;
#[cfg(test)]
mod tests;
