//! What goes into the core ([`Event`]) and what comes out ([`Intent`]).
//!
//! Every type here is `Copy` and heap-free, so pushing intents into a pre-sized buffer or a
//! bounded channel never allocates. Text (alert messages, order ids for Kraken) is produced by
//! the side threads from these values, never on the core thread.

use crate::core::money::{Cash, Price, Qty};
use crate::core::time::Nanos;

/// Our client order id. The REST worker renders it as Kraken's `cl_ord_id`.
pub type ClientId = u64;

/// An input to the core. The caller supplies the timestamp alongside.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// One raw WebSocket v2 text frame.
    Frame(&'a [u8]),
    /// News about one of our orders (from the REST worker, or the paper venue).
    Order(OrderEvent),
    /// A periodic tick with no market data (drives stale-order, time-stop and snapshot rules).
    Timer,
    /// The feed connection was lost: the book is invalid until a fresh snapshot.
    Disconnected,
    /// The operator steers the bot (Telegram commands): every risk rule still applies.
    Control(Control),
}

/// What the operator asks of the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// No new entries (resting entries are cancelled); exits and stops still run.
    Pause,
    /// Lift an operator pause (never a drawdown stop, which holds until restart).
    Resume,
    /// Exit the own position now with a force exit (latched until flat), then stay paused.
    Flatten,
}

impl Control {
    /// Lower-case name (logs, alerts).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Control::Pause => "pause",
            Control::Resume => "resume",
            Control::Flatten => "flatten",
        }
    }
}

/// Why the exchange (or the paper venue) refused an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// A post-only order would have crossed; Kraken accepts it, then cancels it with reason
    /// "Post only order". The core treats that cancel as this rejection.
    PostOnly,
    /// `EOrder:Insufficient funds`.
    InsufficientFunds,
    /// `EOrder:Rate limit exceeded` and friends.
    RateLimit,
    /// `EOrder:Order minimum not met`, `EOrder:Cost minimum not met`, tick size and argument errors.
    Invalid,
    /// The venue is in a mode that refuses new orders (maintenance, cancel-only).
    Unavailable,
    /// Anything else.
    Other,
}

impl RejectReason {
    /// What happened, in words (logs and alerts).
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            RejectReason::PostOnly => "post-only order would have crossed",
            RejectReason::InsufficientFunds => "insufficient funds",
            RejectReason::RateLimit => "rate limit exceeded",
            RejectReason::Invalid => "invalid order (size, cost or tick)",
            RejectReason::Unavailable => "the venue refuses new orders now",
            RejectReason::Other => "refused by the exchange",
        }
    }
}

/// Why an order stopped resting without a full fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// We asked for it.
    Requested,
    /// An immediate-or-cancel order's unfilled rest.
    Expired,
    /// The exchange cancelled it (dead man's switch, maintenance, self-trade prevention).
    Exchange,
}

/// News about one order. Fills are cumulative, so a repeated report (a REST poll that sees
/// the same state twice) is recognised and booked once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderEvent {
    /// The venue has the order.
    Accepted {
        /// Our id.
        cl_id: ClientId,
    },
    /// The venue refused the order (or accepted and immediately cancelled it as post-only).
    Rejected {
        /// Our id.
        cl_id: ClientId,
        /// Why.
        reason: RejectReason,
    },
    /// The order's executed totals so far.
    Fill {
        /// Our id.
        cl_id: ClientId,
        /// Total executed quantity (Kraken `vol_exec`).
        cum_qty: Qty,
        /// Total executed cost in quote currency (Kraken `cost`).
        cum_cost: Cash,
        /// Total fee paid in quote currency (Kraken `fee`).
        cum_fee: Cash,
    },
    /// The order is no longer resting.
    Cancelled {
        /// Our id.
        cl_id: ClientId,
        /// Why.
        reason: CancelReason,
    },
    /// Account balances (live mode): they replace the core's cash and position.
    Balances {
        /// Quote currency (USD).
        quote: Cash,
        /// Base currency (BTC).
        base: Qty,
    },
    /// The worker finished a fill poll (every fill it found came before this): a balance
    /// that disagreed with the position before the poll must agree now.
    Polled,
    /// Live: the private order stream (re)connected and the bot's orders are being
    /// reconciled with REST: no new orders until [`OrderEvent::Reconciled`].
    Reconciling,
    /// The reconciliation finished: every order's state and fills are known again.
    Reconciled,
    /// The account's trading rate-counter threshold, as Kraken announced it (`maxratecount`).
    RateLimit {
        /// The threshold (60 Starter, 125 Intermediate, 180 Pro).
        max: u32,
    },
    /// The trading rate counter's value as Kraken streamed it, in hundredths.
    RateCount {
        /// The counter × 100.
        centi: u32,
    },
}

impl OrderEvent {
    /// News about the link or the account rather than an order: never journaled.
    #[must_use]
    pub fn is_link_news(&self) -> bool {
        matches!(
            self,
            OrderEvent::Polled
                | OrderEvent::Reconciling
                | OrderEvent::Reconciled
                | OrderEvent::RateLimit { .. }
                | OrderEvent::RateCount { .. }
        )
    }
}

/// What an order is for; decides its price rule and fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Opening a position from flat.
    Entry,
    /// Leaving a position at the profit target.
    Exit,
    /// Leaving a position because a risk rule fired (stop-loss, time stop): a taker order.
    ForceExit,
}

impl Purpose {
    /// Snake-case name (logs, JSON, dashboard).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Purpose::Entry => "entry",
            Purpose::Exit => "exit",
            Purpose::ForceExit => "force_exit",
        }
    }
}

/// A new order for the venue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderRequest {
    /// Our id.
    pub cl_id: ClientId,
    /// Buy or sell.
    pub side: Side,
    /// Limit price.
    pub price: Price,
    /// Size.
    pub qty: Qty,
    /// Post-only (maker) order.
    pub post_only: bool,
    /// Immediate-or-cancel (force exits).
    pub ioc: bool,
    /// Why we place it.
    pub purpose: Purpose,
}

/// How urgent an alert is. Critical alerts are never dropped by rate limits downstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertLevel {
    /// For the log and the dashboard.
    Info,
    /// Something is off but trading continues.
    Warning,
    /// Trading stopped or money is at risk.
    Critical,
}

/// What happened, with the numbers a person needs; rendered to text by the notifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// Equity fell `drawdown_ppm` from its peak: everything cancelled, trading stopped.
    DrawdownStop {
        /// Equity at the stop.
        equity: Cash,
        /// Peak equity.
        peak: Cash,
    },
    /// The book checksum failed; resubscribing.
    ChecksumMismatch {
        /// Kraken's value.
        expected: u32,
        /// Ours.
        computed: u32,
    },
    /// The book crossed; resubscribing.
    BookCrossed,
    /// An order was refused.
    OrderRejected {
        /// Our id.
        cl_id: ClientId,
        /// Why.
        reason: RejectReason,
    },
    /// A fill was booked.
    Filled {
        /// Our id.
        cl_id: ClientId,
        /// Side.
        side: Side,
        /// Quantity of this fill.
        qty: Qty,
        /// Price (average of this fill).
        price: Price,
        /// Fee of this fill.
        fee: Cash,
    },
    /// A risk rule forced an exit.
    ForceExit {
        /// Which rule.
        rule: crate::core::event::Rule,
    },
    /// The feed was lost; quoting stopped.
    Disconnected,
    /// A position smaller than the exchange minimum cannot be exited with an order.
    DustPosition {
        /// The position in lots.
        position: i64,
    },
    /// The exchange's base balance disagrees with baseline + the bot's position across a fill
    /// poll: quoting is paused until they agree.
    PositionDrift {
        /// The base balance reported.
        reported: Qty,
        /// Baseline + position, in lots.
        expected: i64,
    },
    /// The base balance agrees with baseline + position again: quoting resumes.
    DriftResolved,
    /// The instrument's precision changed; the book was rebuilt.
    InstrumentChanged,
    /// More than the bounded number of orders would be in flight: an execution fault.
    OrderSlotsFull,
    /// The exchange status is not online.
    ExchangeStatus,
    /// The operator's command took effect.
    Operator {
        /// Which.
        control: Control,
        /// The own position then, lots (what a flatten exits).
        position: i64,
    },
}

/// An alert with its urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alert {
    /// Urgency.
    pub level: AlertLevel,
    /// What happened.
    pub kind: AlertKind,
}

/// Why the book needs a fresh snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncReason {
    /// Checksum mismatch.
    Checksum,
    /// Crossed book.
    Crossed,
    /// The instrument precision changed.
    Precision,
}

/// An output of the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Place an order.
    Place(OrderRequest),
    /// Cancel one order.
    Cancel {
        /// Our id.
        cl_id: ClientId,
    },
    /// Cancel every order we have on the pair.
    CancelAll,
    /// Cancel `old` and place `new` on the same side (a requote; live mode). The venue may do
    /// it in one step (Kraken's AmendOrder); either way `old` ends cancelled and `new` is
    /// accepted or rejected.
    Replace {
        /// The resting order to give up.
        old: ClientId,
        /// Its replacement.
        new: OrderRequest,
    },
    /// Unsubscribe and resubscribe the book at this depth for a fresh snapshot.
    Resubscribe {
        /// Depth.
        depth: u16,
        /// Why.
        reason: ResyncReason,
    },
    /// Tell a person.
    Alert(Alert),
    /// The core's state is worth publishing now (rate-limited by the core).
    Snapshot,
    /// Something to append to the fill journal (restored on the next start).
    Journal(JournalEntry),
    /// Live: fetch the exchange's balances soon (a position drift is being checked).
    CheckBalances,
}

/// One journal record: what changed the core's orders or account, and when. Replaying them
/// in order through a fresh core ([`crate::core::Core::restore`]) rebuilds position, average
/// cost, cash, fees, round trips, stats and trade history exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalEntry {
    /// Event time.
    pub t: Nanos,
    /// What.
    pub kind: JournalKind,
}

/// What a [`JournalEntry`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalKind {
    /// An order was sent (pending until the venue answers).
    Placed(OrderRequest),
    /// The venue (or the paper venue) reported this; fills are cumulative per order, so
    /// replaying one twice books nothing twice.
    Order(OrderEvent),
    /// Equity records: written when a journal starts, and when peak equity or max drawdown
    /// moved (at most once a second) — the drawdown stop must survive a restart.
    Equity {
        /// Equity when the journal started (PnL since start counts from it).
        start: Cash,
        /// Highest equity seen.
        peak: Cash,
        /// Largest drawdown, ppm of its peak.
        max_drawdown_ppm: i64,
    },
    /// Live: a run's first balances funded the bot (its cash, and the account's base that is
    /// not the bot's). Balance reports themselves are checks and restore nothing.
    Funded {
        /// The account's base units that are not the bot's.
        baseline: Qty,
        /// The bot's cash: what it may commit.
        cash: Cash,
    },
}

/// A point inside [`crate::core::Core::handle`] where a frame's processing moves on to the
/// next stage. The core reads no clock: a sink that wants per-stage latency notes the time
/// itself when told (the feed thread does; replay and the benches ignore it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The frame is decoded.
    Parsed,
    /// The book took the message (checksum verified).
    BookApplied,
    /// Signals, strategy and risk have decided (intents, if any, are out).
    Decided,
}

/// Where the core puts its intents. Implementations must not block.
pub trait IntentSink {
    /// Accepts one intent.
    fn push(&mut self, intent: Intent);

    /// The frame being handled reached `stage`. Default: nothing.
    #[inline]
    fn stage(&mut self, _stage: Stage) {}
}

/// Most intents one event can produce (every order slot cancelled, two places, alerts, and a
/// journal record for each paper venue event).
pub const MAX_INTENTS_PER_EVENT: usize = 192;

/// A `Vec` works as a sink; pre-size it with [`MAX_INTENTS_PER_EVENT`] and `clear()` it after
/// each event, and it never allocates.
impl IntentSink for Vec<Intent> {
    fn push(&mut self, intent: Intent) {
        Vec::push(self, intent);
    }
}

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Bid side / buy.
    Buy,
    /// Ask side / sell.
    Sell,
}

impl Side {
    /// The other side.
    #[must_use]
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    /// `"buy"` or `"sell"`, as Kraken spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

/// Every rule that can hold back a quote or force an exit; counted per tick for the
/// "why quoting paused" report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Rule {
    /// The book is invalid (no snapshot yet, checksum failed, disconnected).
    BookInvalid = 0,
    /// Trading stopped by the drawdown rule.
    Drawdown,
    /// Volatility at or below `min_volatility_bps`.
    Volatility,
    /// Spread wider than `max_spread_bps`.
    Spread,
    /// Up-move: no sell.
    MomentumUp,
    /// Down-move: no buy.
    MomentumDown,
    /// Would exceed `max_position`.
    PositionLimit,
    /// Not enough cash (or base, live) for the order.
    Affordability,
    /// Within `fill_cooldown_ms` of the last fill.
    Cooldown,
    /// Below the instrument's minimum size or cost.
    MinSize,
    /// Adverse move beyond `stop_loss_bps`: forced exit.
    StopLoss,
    /// Held longer than `max_hold_s`: forced exit.
    TimeStop,
    /// An order older than `stale_order_ms` was cancelled for a re-quote.
    Stale,
    /// No order slot free.
    SlotsFull,
    /// The exchange or pair is not online.
    ExchangeStatus,
    /// The venue refused an order on this side (other than post-only): new orders there
    /// wait 1 s, doubling per refusal in a row up to 60 s, instead of retrying every tick.
    Rejected,
    /// Live: the exchange's base balance disagrees with baseline + position across a fill
    /// poll: no new entries until they agree.
    Drift,
    /// Live: the account's balances have not arrived yet: nothing is quoted before them.
    Unfunded,
    /// Kraken's trading rate counter has no room: a requote (or a new entry) waits.
    RateRoom,
    /// Live: the private order stream reconnected; orders are reconciled before quoting.
    Reconciling,
    /// Paused by the operator (Telegram `/pause` or `/flatten`) until `/resume`.
    Operator,
}

impl Rule {
    /// Number of rules.
    pub const COUNT: usize = 21;
    /// All rules in counter order.
    pub const ALL: [Rule; Rule::COUNT] = [
        Rule::BookInvalid,
        Rule::Drawdown,
        Rule::Volatility,
        Rule::Spread,
        Rule::MomentumUp,
        Rule::MomentumDown,
        Rule::PositionLimit,
        Rule::Affordability,
        Rule::Cooldown,
        Rule::MinSize,
        Rule::StopLoss,
        Rule::TimeStop,
        Rule::Stale,
        Rule::SlotsFull,
        Rule::ExchangeStatus,
        Rule::Rejected,
        Rule::Drift,
        Rule::Unfunded,
        Rule::RateRoom,
        Rule::Reconciling,
        Rule::Operator,
    ];

    /// Snake-case name (JSON keys, metrics labels).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Rule::BookInvalid => "book_invalid",
            Rule::Drawdown => "drawdown",
            Rule::Volatility => "volatility",
            Rule::Spread => "spread",
            Rule::MomentumUp => "momentum_up",
            Rule::MomentumDown => "momentum_down",
            Rule::PositionLimit => "position_limit",
            Rule::Affordability => "affordability",
            Rule::Cooldown => "cooldown",
            Rule::MinSize => "min_size",
            Rule::StopLoss => "stop_loss",
            Rule::TimeStop => "time_stop",
            Rule::Stale => "stale_order",
            Rule::SlotsFull => "slots_full",
            Rule::ExchangeStatus => "exchange_status",
            Rule::Rejected => "rejected",
            Rule::Drift => "drift",
            Rule::Unfunded => "awaiting_balances",
            Rule::RateRoom => "rate_limit",
            Rule::Reconciling => "reconciling",
            Rule::Operator => "operator",
        }
    }
}

/// What a frame was, for the driver: the feed's connection supervisor reacts to pongs,
/// snapshots, error acks and instrument messages from this value, without reading the core's
/// counters around each frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Outcome {
    /// Nothing the driver reacts to (book updates, trades, heartbeats, acks; every event that
    /// is not a frame).
    #[default]
    Quiet,
    /// A book snapshot was applied: the book is valid again.
    Snapshot,
    /// A pong to one of our pings.
    Pong,
    /// Kraken refused a request (an error ack).
    MethodError,
    /// An instrument message (the pair's precisions may have changed).
    Instrument,
    /// The frame was malformed, counted and skipped.
    Malformed,
}
