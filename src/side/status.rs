//! What the feed thread tells the dashboard: a `Copy` snapshot of the bot at most every 250 ms,
//! and the per-stage latency histograms, handed over without locks or allocation.
//!
//! The feed thread records every latency sample twice: into its own cumulative histograms
//! (for the table printed at shutdown) and into an *interval* set. At each snapshot it swaps
//! the interval set for an empty spare that the dashboard sent back, and sends the full one
//! over. The dashboard adds it to its own cumulative copy, resets it, and returns it. Three
//! sets circulate; the channels are larger than that, so a send never fails and nothing on
//! the feed thread allocates or waits. If the dashboard falls behind, the feed thread simply
//! keeps filling the set it has.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender, bounded};
use hdrhistogram::Histogram;
use serde::Serialize;

use std::collections::BTreeMap;

use crate::core::Core;
use crate::core::accounting::FillRecord;
use crate::core::engine::TradingState;
use crate::core::event::{OrderRequest, Rule};
use crate::core::money::{Cash, FinePrice, Precision, Price, Qty};
use crate::core::orders::{MAX_ORDERS, OrderState};
use crate::core::time::{Nanos, SEC};
use crate::side::notify::ShortText;

/// Trades the dashboard shows.
pub const TRADES_SHOWN: usize = 20;

/// Latency percentiles in nanoseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct LatencyRow {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest.
    pub max_ns: u64,
}

impl LatencyRow {
    /// The percentiles of `h` (all zero when it is empty).
    #[must_use]
    pub fn of(h: &Histogram<u64>) -> LatencyRow {
        if h.is_empty() {
            return LatencyRow::default();
        }
        LatencyRow {
            count: h.len(),
            p50_ns: h.value_at_quantile(0.5),
            p90_ns: h.value_at_quantile(0.9),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
        }
    }
}

/// A latency histogram for 1 ns .. 10 min at 3 significant digits.
///
/// # Panics
/// Never: the bounds are constants.
#[must_use]
pub fn histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 600 * SEC as u64, 2).expect("constant bounds")
}

/// The feed thread's stages, in the order a frame goes through them.
#[derive(Debug, Clone)]
pub struct StageHists {
    /// Socket readable (or the previous frame done) → the next WebSocket frame in hand: TLS
    /// and WebSocket decoding.
    pub wire_to_frame: Histogram<u64>,
    /// Frame received → decoded.
    pub parse: Histogram<u64>,
    /// Book apply with checksum.
    pub book: Histogram<u64>,
    /// Signals + paper fills + strategy + risk.
    pub strategy: Histogram<u64>,
    /// Frame received → order intent handed to the worker channel.
    pub tick_to_intent: Histogram<u64>,
    /// Frame received → the core is done with it (every frame).
    pub frame_to_done: Histogram<u64>,
    /// A fill's arrival (private socket, or a poll's answer) → booked in the core.
    pub fill_to_core: Histogram<u64>,
    /// Order intent → Kraken's answer on the authenticated WebSocket (`order_transport = "ws"`).
    pub intent_to_ack_ws: Histogram<u64>,
}

impl Default for StageHists {
    fn default() -> StageHists {
        StageHists {
            wire_to_frame: histogram(),
            parse: histogram(),
            book: histogram(),
            strategy: histogram(),
            tick_to_intent: histogram(),
            frame_to_done: histogram(),
            fill_to_core: histogram(),
            intent_to_ack_ws: histogram(),
        }
    }
}

impl StageHists {
    /// Stage names, as in the table, `/api/status` and `/metrics`.
    pub const NAMES: [&'static str; 8] = [
        "wire_to_frame",
        "frame_to_parsed",
        "book_apply",
        "strategy",
        "tick_to_intent",
        "frame_to_done",
        "fill_to_core",
        "intent_to_ack_ws",
    ];

    /// Each stage's histogram, in [`StageHists::NAMES`] order.
    #[must_use]
    pub fn all(&self) -> [&Histogram<u64>; 8] {
        [
            &self.wire_to_frame,
            &self.parse,
            &self.book,
            &self.strategy,
            &self.tick_to_intent,
            &self.frame_to_done,
            &self.fill_to_core,
            &self.intent_to_ack_ws,
        ]
    }

    fn all_mut(&mut self) -> [&mut Histogram<u64>; 8] {
        [
            &mut self.wire_to_frame,
            &mut self.parse,
            &mut self.book,
            &mut self.strategy,
            &mut self.tick_to_intent,
            &mut self.frame_to_done,
            &mut self.fill_to_core,
            &mut self.intent_to_ack_ws,
        ]
    }

    /// Adds another set (same bounds: never fails).
    pub fn add(&mut self, other: &StageHists) {
        for (a, b) in self.all_mut().into_iter().zip(other.all()) {
            let _ = a.add(b);
        }
    }

    /// Empties every histogram.
    pub fn reset(&mut self) {
        for h in self.all_mut() {
            h.reset();
        }
    }

    /// Name and percentiles of each stage.
    #[must_use]
    pub fn rows(&self) -> [(&'static str, LatencyRow); 7] {
        let h = self.all();
        std::array::from_fn(|i| (Self::NAMES[i], LatencyRow::of(h[i])))
    }
}

/// One of our orders, as shown.
#[derive(Debug, Clone, Copy)]
pub struct OrderView {
    /// What was asked.
    pub req: OrderRequest,
    /// Where it is.
    pub state: OrderState,
    /// Filled so far, lots.
    pub filled: u64,
    /// When it was placed.
    pub placed_at: Nanos,
}

/// Counters of the feed thread and the core.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[allow(missing_docs)] // one name per counter, as in the core, the summary and /api/status
pub struct Counters {
    pub frames: u64,
    pub ticks: u64,
    pub book_messages: u64,
    pub snapshots: u64,
    pub checksums_ok: u64,
    pub checksum_mismatches: u64,
    pub crossed_books: u64,
    pub parse_errors: u64,
    pub trades: u64,
    pub connects: u64,
    pub reconnects: u64,
    pub watchdog_timeouts: u64,
    pub resubscribes: u64,
    /// Orders sent to the venue (live: that reached Kraken; paper: every order decided).
    pub orders_placed: u64,
    /// Orders the core decided (placed, or the new half of a requote).
    pub orders_decided: u64,
    /// Decided but never sent (cancelled or superseded while queued; live only).
    pub orders_collapsed: u64,
    pub orders_cancelled: u64,
    pub fills: u64,
    pub execution_faults: u64,
    pub quotes_while_stale: u64,
    pub notices_dropped: u64,
    pub status_dropped: u64,
    pub recorder_dropped: u64,
    /// Private stream (authenticated WebSocket) connections opened.
    pub private_connects: u64,
    /// Private stream connections lost.
    pub private_reconnects: u64,
    /// Fills booked as the private stream reported them.
    pub fills_ws: u64,
    /// Fills booked from REST polls (the stream was down, or behind).
    pub fills_poll: u64,
    /// Stream fills repeated (same `exec_id`): booked once.
    pub duplicate_execs: u64,
    /// Fill reports of orders that are not the bot's (another client on the account).
    pub foreign_fills: u64,
    /// WebSocket tokens Kraken refused.
    pub token_refusals: u64,
    /// Order requests sent on the authenticated WebSocket (`order_transport = "ws"`).
    pub ws_order_requests: u64,
    /// WebSocket order requests handed to REST when the connection was lost unanswered.
    pub ws_handed_to_rest: u64,
}

/// Everything the dashboard shows that the feed thread knows: plain numbers, fixed arrays.
#[derive(Debug, Clone, Copy)]
pub struct StatusSnapshot {
    /// Feed clock (ns since the epoch) when taken.
    pub at: Nanos,
    /// Live (true) or paper.
    pub live: bool,
    /// Live mode was asked for but fell back to paper.
    pub live_fallback: bool,
    /// What the bot is doing.
    pub state: TradingState,
    /// A connection is up.
    pub connected: bool,
    /// Time since the last frame.
    pub last_frame_age_ns: Nanos,
    /// The instrument's decimals.
    pub precision: Precision,
    /// Microprice (quote currency).
    pub microprice: Option<f64>,
    /// EMA of the microprice.
    pub ema: Option<f64>,
    /// Momentum in bps.
    pub momentum_bps: f64,
    /// Rolling volatility in bps.
    pub volatility_bps: f64,
    /// Inventory skew in bps.
    pub skew_bps: f64,
    /// Best bid and ask.
    pub best_bid: Option<Price>,
    /// Best ask.
    pub best_ask: Option<Price>,
    /// Quote balance.
    pub cash: Cash,
    /// Position in lots: the bot's own (live: base balance − baseline).
    pub position: i64,
    /// Live: the account's base that is not the bot's.
    pub baseline: Qty,
    /// Live: the exchange's last balances (base, quote).
    pub account: Option<(Qty, Cash)>,
    /// The position is below the instrument's minimum size (no order can exit it).
    pub dust: bool,
    /// Average entry price.
    pub avg_entry: Option<FinePrice>,
    /// Realised PnL (before fees).
    pub realised: Cash,
    /// Unrealised PnL at the microprice.
    pub unrealised: Cash,
    /// Fees paid.
    pub fees: Cash,
    /// Base traded this run (both sides).
    pub volume_base: Qty,
    /// Quote notional traded this run (both sides).
    pub volume_quote: Cash,
    /// Mark-to-market equity.
    pub equity: Cash,
    /// Peak equity.
    pub peak_equity: Cash,
    /// Equity at start.
    pub start_equity: Cash,
    /// Current drawdown from peak, ppm.
    pub drawdown_ppm: i64,
    /// Largest drawdown seen, ppm.
    pub max_drawdown_ppm: i64,
    /// Closed round trips.
    pub round_trips: u64,
    /// Winning round trips.
    pub wins: u64,
    /// Losing round trips.
    pub losses: u64,
    /// Our live orders.
    pub orders: [Option<OrderView>; MAX_ORDERS],
    /// Last fills, newest first.
    pub trades: [Option<FillRecord>; TRADES_SHOWN],
    /// Counters.
    pub counters: Counters,
    /// The private stream: `off`, `down`, `up`, `refused`.
    pub private_link: &'static str,
    /// Where orders go while the private stream is up: `rest` or `ws`.
    pub order_transport: &'static str,
    /// Ticks on which each rule held something back.
    pub pause_counts: [u64; Rule::COUNT],
    /// The public feed's trouble.
    pub feed_trouble: LinkTrouble,
    /// The private stream's trouble.
    pub private_trouble: LinkTrouble,
}

/// A link's recent trouble, for the dashboard: why it is (or was last) down and how many
/// tries in a row have failed. `Copy` and fixed-size, so keeping it never allocates.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkTrouble {
    /// Connection attempts that failed, or connections lost, since the link last worked.
    pub failures_in_row: u32,
    /// The last error and when it happened (feed clock).
    pub last_error: Option<(ShortText, Nanos)>,
}

impl LinkTrouble {
    /// An attempt failed, or the connection was lost, at `now`.
    pub fn failed(&mut self, why: &str, now: Nanos) {
        self.failures_in_row = self.failures_in_row.saturating_add(1);
        self.last_error = Some((ShortText::new(why.as_bytes()), now));
    }

    /// The link works again (the last error stays on show, as history).
    pub fn working(&mut self) {
        self.failures_in_row = 0;
    }
}

/// What the feed thread knows beside the core, for a [`StatusSnapshot`].
#[derive(Debug, Clone, Copy)]
pub struct FeedView {
    /// Live mode was asked for but fell back to paper.
    pub live_fallback: bool,
    /// A connection is up.
    pub connected: bool,
    /// When the last frame arrived (feed clock).
    pub last_frame_at: Nanos,
    /// The instrument's decimals in force.
    pub precision: Precision,
    /// The feed thread's and the core's counters.
    pub counters: Counters,
    /// The private stream: `off`, `down`, `up`, `refused`.
    pub private_link: &'static str,
    /// `rest` or `ws`.
    pub order_transport: &'static str,
    /// The public feed's trouble.
    pub feed_trouble: LinkTrouble,
    /// The private stream's trouble.
    pub private_trouble: LinkTrouble,
}

impl StatusSnapshot {
    /// Copies what the dashboard shows out of the core and the feed thread's view, at `now`.
    /// Fixed-size arrays only: nothing here allocates.
    #[must_use]
    pub fn capture(core: &Core, now: Nanos, feed: &FeedView) -> StatusSnapshot {
        let (a, sig) = (core.account(), core.signals());
        let mut orders = [None; MAX_ORDERS];
        for (slot, o) in orders.iter_mut().zip(core.orders().live()) {
            *slot = Some(OrderView {
                req: o.req,
                state: o.state,
                filled: o.filled.0,
                placed_at: o.placed_at,
            });
        }
        let mut trades = [None; TRADES_SHOWN];
        for (slot, f) in trades.iter_mut().zip(a.history()) {
            *slot = Some(*f);
        }
        let book = core.book();
        StatusSnapshot {
            at: now,
            live: !core.is_paper(),
            live_fallback: feed.live_fallback,
            state: core.state(),
            connected: feed.connected,
            private_link: feed.private_link,
            order_transport: feed.order_transport,
            last_frame_age_ns: now - feed.last_frame_at,
            precision: feed.precision,
            microprice: sig.micro_f64(),
            ema: sig.ema.value(),
            momentum_bps: sig.momentum_bps,
            volatility_bps: sig.vol_bps(),
            skew_bps: core.params().skew(a.position).0 as f64 / 100.0,
            best_bid: book.best_bid().map(|l| l.price),
            best_ask: book.best_ask().map(|l| l.price),
            cash: a.cash,
            position: a.position,
            baseline: a.baseline,
            account: a.reported.map(|r| (r.base, r.quote)),
            dust: core.params().is_dust(a.position),
            avg_entry: a.avg_entry(),
            realised: a.realised,
            unrealised: sig.micro.map_or(Cash(0), |m| a.unrealised(m)),
            fees: a.fees,
            volume_base: Qty(a.volume_base),
            volume_quote: a.volume_quote,
            equity: a.equity,
            peak_equity: a.peak_equity,
            start_equity: a.start_equity,
            drawdown_ppm: a.drawdown_ppm(),
            max_drawdown_ppm: a.max_drawdown_ppm,
            round_trips: a.round_trips,
            wins: a.wins,
            losses: a.losses,
            orders,
            trades,
            counters: feed.counters,
            pause_counts: *core.pause_counts(),
            feed_trouble: feed.feed_trouble,
            private_trouble: feed.private_trouble,
        }
    }
}

#[cfg(test)]
impl StatusSnapshot {
    /// A snapshot of a fresh core with no book, for tests of what reads snapshots.
    pub(crate) fn blank() -> StatusSnapshot {
        let settings = crate::core::settings::Settings::default();
        let core = Core::new(&settings, 1).expect("default settings are valid");
        let feed = FeedView {
            live_fallback: false,
            connected: true,
            last_frame_at: 0,
            precision: Precision::default(),
            counters: Counters::default(),
            private_link: "off",
            order_transport: "rest",
            feed_trouble: LinkTrouble::default(),
            private_trouble: LinkTrouble::default(),
        };
        StatusSnapshot::capture(&core, 0, &feed)
    }
}

/// What the worker measured.
#[derive(Debug, Clone)]
pub struct WorkerReport {
    /// Place intent received → Kraken's answer to AddOrder (or AmendOrder), ns.
    pub intent_to_ack: Histogram<u64>,
    /// REST round trip per endpoint, ns.
    pub round_trip: BTreeMap<&'static str, Histogram<u64>>,
    /// Calls that failed, by error kind.
    pub errors: BTreeMap<String, u64>,
    /// Requotes done by AmendOrder.
    pub amends: u64,
    /// Amends Kraken refused (fell back to cancel + add).
    pub amend_fallbacks: u64,
    /// Times a new order waited for the rate counter.
    pub rate_holds: u64,
    /// Orders that reached Kraken: AddOrder calls answered, and amends.
    pub orders_sent: u64,
    /// Orders the core asked for that were never sent: cancelled (or superseded) while still
    /// queued, or queued at shutdown.
    pub orders_collapsed: u64,
    /// Dead man's switch refreshes.
    pub deadman_refreshes: u64,
    /// Leftover orders cancelled at start-up.
    pub leftovers_cancelled: u32,
    /// Whether the final cancel-all was confirmed.
    pub shutdown_cancel_confirmed: bool,
}

/// The feed thread's end.
#[derive(Debug, Clone)]
pub struct StatusLink {
    snapshots: Sender<StatusSnapshot>,
    full: Sender<Box<StageHists>>,
    spares: Receiver<Box<StageHists>>,
    dropped: Arc<AtomicU64>,
}

impl StatusLink {
    /// Sends a snapshot without waiting (a full channel drops it and counts).
    pub fn publish(&self, s: &StatusSnapshot) {
        if self.snapshots.try_send(*s).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Hands `interval` over when a spare set is back; otherwise keeps filling it.
    pub fn hand_over(&self, interval: &mut Box<StageHists>) {
        if let Ok(spare) = self.spares.try_recv() {
            let full = std::mem::replace(interval, spare);
            // The channel holds more than the three sets that exist: this never fails.
            let _ = self.full.try_send(full);
        }
    }

    /// Snapshots dropped because the dashboard was behind.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The dashboard's end.
#[derive(Debug)]
pub struct StatusFeed {
    /// Snapshots, oldest first.
    pub snapshots: Receiver<StatusSnapshot>,
    full: Receiver<Box<StageHists>>,
    spares: Sender<Box<StageHists>>,
}

impl StatusFeed {
    /// Adds every interval set waiting into `total` and sends the emptied sets back.
    pub fn collect_latency(&self, total: &mut StageHists) {
        while let Ok(mut h) = self.full.try_recv() {
            total.add(&h);
            h.reset();
            let _ = self.spares.try_send(h);
        }
    }
}

/// Snapshots the channel holds before the feed thread starts dropping them.
const SNAPSHOT_CAPACITY: usize = 8;
/// Interval histogram sets in circulation.
const SETS: usize = 3;

/// A linked pair; the feed thread starts with one interval set from [`StatusLink`]'s spares.
#[must_use]
pub fn channel() -> (StatusLink, StatusFeed, Box<StageHists>) {
    let (snap_tx, snap_rx) = bounded(SNAPSHOT_CAPACITY);
    let (full_tx, full_rx) = bounded(SETS + 1);
    let (spare_tx, spare_rx) = bounded(SETS + 1);
    for _ in 1..SETS {
        let _ = spare_tx.try_send(Box::default());
    }
    (
        StatusLink {
            snapshots: snap_tx,
            full: full_tx,
            spares: spare_rx,
            dropped: Arc::new(AtomicU64::new(0)),
        },
        StatusFeed {
            snapshots: snap_rx,
            full: full_rx,
            spares: spare_tx,
        },
        Box::default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_sets_circulate_without_loss() {
        let (link, feed, mut interval) = channel();
        let mut total = StageHists::default();
        for round in 1..=10u64 {
            for v in 0..100 {
                let _ = interval.parse.record(round * 1000 + v);
            }
            link.hand_over(&mut interval);
            // The dashboard is only around every other round: nothing is lost meanwhile.
            if round % 2 == 0 {
                feed.collect_latency(&mut total);
            }
        }
        link.hand_over(&mut interval);
        feed.collect_latency(&mut total);
        let rest = interval.parse.len();
        assert_eq!(total.parse.len() + rest, 1000);
        assert!(total.parse.len() >= 900);
        let row = LatencyRow::of(&total.parse);
        assert!(row.p50_ns <= row.p90_ns && row.p90_ns <= row.p99_ns && row.p99_ns <= row.max_ns);
    }
}
