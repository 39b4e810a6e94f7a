//! The paper venue: simulated order handling and fills, inside the core.
//!
//! Fill model ("cross"): a resting buy fills when a trade prints at or below its price, or
//! when the best ask drops to or below it (sells mirrored). It fills completely, at our limit
//! price (never better), paying the maker fee. A post-only order that would cross on arrival
//! is rejected, as Kraken does. An immediate-or-cancel (force-exit) order that is marketable
//! fills at the touch and pays the taker fee; otherwise it expires.
//!
//! Fill model ("queue", the default for replay): a resting order joins the back of the queue
//! at its price: the level's visible quantity is ahead of it. Trades at its price consume the
//! queue ahead first and fill the order only with what is left over (partially if need be);
//! a fall of the level's visible quantity shortens the queue ahead to at most that quantity
//! (cancellations ahead of us; taking the minimum never counts a trade twice, as the trade
//! and the book update that follows it both report the same shrinkage). A trade through its
//! price, or the opposite touch crossing it, fills what remains.
//!
//! With an order latency, an order reaches the venue only that long after it was placed: it
//! is checked for post-only there, joins the queue there, and cannot fill before.
//!
//! Simulated fills are rate-limited as the seed rules demand: at most one fill per tick and
//! none within `fill_cooldown_ms` of the previous one. A resting order that would have filled
//! during the cooldown simply fills later, if the market still reaches it.

//! The venue's models are small traits, one file each (the shape of hftbacktest's
//! `backtest/models/`): [`fill::FillRule`] (cross, queue), [`latency::LatencyModel`]
//! (constant, or drawn from a live session's measured `intent_to_ack`), [`fee::FeeModel`]
//! (maker/taker). The venue picks them through enums, so nothing is boxed or dynamic.

pub mod fee;
pub mod fill;
pub mod latency;

use crate::core::book::Book;
use crate::core::event::{CancelReason, ClientId, OrderEvent, OrderRequest, RejectReason, Side};
use crate::core::money::{Cash, Ppm, Price, Qty};
use crate::core::orders::MAX_ORDERS;
use crate::core::time::Nanos;
use crate::core::wire::parse::Trade;
use fee::{FeeModel, Liquidity, MakerTaker};
use fill::FillRule;
use latency::{ConstantLatency, LatencyModel, OrderLatency};

/// Events one paper call can produce at most (one per resting order plus the new one).
pub const MAX_PAPER_EVENTS: usize = 2 * MAX_ORDERS + 2;

/// How resting paper orders fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FillModel {
    /// Filled completely when the market trades at or through the price or crosses it.
    Cross,
    /// Filled only once the visible queue ahead at the price has traded away.
    Queue,
}

impl FillModel {
    /// As in the config.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            FillModel::Cross => "cross",
            FillModel::Queue => "queue",
        }
    }
}

/// A paper order resting at the venue, as the fill models see it.
#[derive(Debug, Clone, Copy)]
pub struct Resting {
    /// Our id.
    pub cl_id: ClientId,
    /// Side.
    pub side: Side,
    /// Limit price.
    pub price: Price,
    /// Ordered quantity.
    pub qty: Qty,
    /// Filled so far.
    pub filled: Qty,
    /// When it reaches the venue (placement + order latency).
    pub live_at: Nanos,
    /// Visible quantity ahead of it at its price; `None` until it has reached the venue.
    pub ahead: Option<Qty>,
    /// Post-only.
    pub post_only: bool,
}

impl Resting {
    /// What is left to fill.
    #[must_use]
    pub fn remaining(&self) -> Qty {
        self.qty.saturating_sub(self.filled)
    }

    /// A buy.
    #[must_use]
    pub fn is_bid(&self) -> bool {
        self.side == Side::Buy
    }
}

/// Simulated exchange for paper trading and replay.
#[derive(Debug, Clone)]
pub struct PaperVenue {
    resting: [Option<Resting>; MAX_ORDERS],
    fees: MakerTaker,
    cooldown_ns: Nanos,
    model: FillModel,
    latency: OrderLatency,
    last_fill_at: Option<Nanos>,
    filled_this_tick: bool,
    /// Events produced since the last [`PaperVenue::take_events`].
    events: Vec<OrderEvent>,
}

impl PaperVenue {
    /// A venue with the given fees and fill cooldown.
    #[must_use]
    pub fn new(maker_fee: Ppm, taker_fee: Ppm, cooldown_ns: Nanos) -> PaperVenue {
        PaperVenue {
            resting: [None; MAX_ORDERS],
            fees: MakerTaker {
                maker: maker_fee,
                taker: taker_fee,
            },
            cooldown_ns,
            model: FillModel::Cross,
            latency: OrderLatency::Constant(ConstantLatency(0)),
            last_fill_at: None,
            filled_this_tick: false,
            events: Vec::with_capacity(MAX_PAPER_EVENTS * 2),
        }
    }

    /// The same venue with another fill model and an order latency.
    #[must_use]
    pub fn with_model(mut self, model: FillModel, order_latency_ns: Nanos) -> PaperVenue {
        self.model = model;
        self.latency = OrderLatency::Constant(ConstantLatency(order_latency_ns.max(0)));
        self
    }

    /// The same venue with another latency model.
    #[must_use]
    pub fn with_latency(mut self, latency: OrderLatency) -> PaperVenue {
        self.latency = latency;
        self
    }

    /// Starts a new tick (one core event): the one-fill-per-tick budget is renewed.
    pub fn begin_tick(&mut self) {
        self.filled_this_tick = false;
    }

    /// The events produced so far; the caller applies them and then calls `clear_events`.
    #[must_use]
    pub fn events(&self) -> &[OrderEvent] {
        &self.events
    }

    /// Forgets the produced events.
    pub fn clear_events(&mut self) {
        self.events.clear();
    }

    fn emit(&mut self, ev: OrderEvent) {
        // Bounded by construction (MAX_ORDERS resting, a few events each); never grow.
        if self.events.len() < self.events.capacity() {
            self.events.push(ev);
        }
    }

    fn may_fill(&self, now: Nanos) -> bool {
        !self.filled_this_tick
            && self
                .last_fill_at
                .is_none_or(|t| now - t >= self.cooldown_ns)
    }

    /// Reports `cum_qty` executed so far at `price` (cumulative, as Kraken does).
    fn fill(&mut self, cl_id: ClientId, price: Price, cum_qty: Qty, lq: Liquidity, now: Nanos) {
        let cost = Cash::notional(price, cum_qty);
        self.emit(OrderEvent::Fill {
            cl_id,
            cum_qty,
            cum_cost: cost,
            cum_fee: self.fees.fee(cost, lq),
        });
        self.filled_this_tick = true;
        self.last_fill_at = Some(now);
    }

    /// Accepts, rejects or immediately executes a new order against `book`.
    pub fn place(&mut self, req: &OrderRequest, book: &Book, now: Nanos) {
        let (bid, ask) = (
            book.best_bid().map(|l| l.price),
            book.best_ask().map(|l| l.price),
        );
        let crosses = match req.side {
            Side::Buy => ask.is_some_and(|a| req.price >= a),
            Side::Sell => bid.is_some_and(|b| req.price <= b),
        };
        if req.ioc {
            let touch = if req.side == Side::Buy { ask } else { bid };
            self.emit(OrderEvent::Accepted { cl_id: req.cl_id });
            match touch {
                Some(t) if crosses && self.may_fill(now) => {
                    self.fill(req.cl_id, t, req.qty, Liquidity::Taker, now);
                }
                _ => self.emit(OrderEvent::Cancelled {
                    cl_id: req.cl_id,
                    reason: CancelReason::Expired,
                }),
            }
            return;
        }
        let latency = self.latency.next_latency();
        if latency == 0 && req.post_only && crosses {
            self.emit(OrderEvent::Rejected {
                cl_id: req.cl_id,
                reason: RejectReason::PostOnly,
            });
            return;
        }
        let Some(slot) = self.resting.iter_mut().find(|s| s.is_none()) else {
            self.emit(OrderEvent::Rejected {
                cl_id: req.cl_id,
                reason: RejectReason::Other,
            });
            return;
        };
        let mut r = Resting {
            cl_id: req.cl_id,
            side: req.side,
            price: req.price,
            qty: req.qty,
            filled: Qty(0),
            live_at: now + latency,
            ahead: None,
            post_only: req.post_only,
        };
        if latency == 0 {
            r.ahead = Some(book.qty_at(r.is_bid(), r.price));
        }
        *slot = Some(r);
        self.emit(OrderEvent::Accepted { cl_id: req.cl_id });
    }

    /// Orders whose latency has passed reach the venue: a post-only one that would cross
    /// now is cancelled (as Kraken does), the others join the queue at their price.
    fn arrive(&mut self, book: &Book, now: Nanos) {
        let (bid, ask) = (
            book.best_bid().map(|l| l.price),
            book.best_ask().map(|l| l.price),
        );
        for i in 0..MAX_ORDERS {
            let Some(r) = self.resting[i] else { continue };
            if r.ahead.is_some() || now < r.live_at {
                continue;
            }
            let crosses = match r.side {
                Side::Buy => ask.is_some_and(|a| r.price >= a),
                Side::Sell => bid.is_some_and(|b| r.price <= b),
            };
            if r.post_only && crosses {
                self.resting[i] = None;
                self.emit(OrderEvent::Rejected {
                    cl_id: r.cl_id,
                    reason: RejectReason::PostOnly,
                });
                continue;
            }
            if let Some(slot) = &mut self.resting[i] {
                slot.ahead = Some(book.qty_at(r.is_bid(), r.price));
            }
        }
    }

    /// Cancels a resting order (no event if it is not resting: it already filled).
    pub fn cancel(&mut self, cl_id: ClientId) {
        for slot in &mut self.resting {
            if slot.is_some_and(|r| r.cl_id == cl_id) {
                *slot = None;
                self.emit(OrderEvent::Cancelled {
                    cl_id,
                    reason: CancelReason::Requested,
                });
                return;
            }
        }
    }

    /// Cancels everything resting.
    pub fn cancel_all(&mut self) {
        for i in 0..MAX_ORDERS {
            if let Some(r) = self.resting[i] {
                self.cancel(r.cl_id);
            }
        }
    }

    /// A public trade: resting orders it reaches fill.
    pub fn on_trade(&mut self, t: &Trade, now: Nanos) {
        let mut reach = [Qty(0); MAX_ORDERS];
        for (i, slot) in self.resting.iter_mut().enumerate() {
            // An order not at the venue yet is out of the market's reach.
            if let Some(r) = slot.as_mut().filter(|r| r.ahead.is_some()) {
                reach[i] = self.model.on_trade(r, t);
            }
        }
        self.fill_first(now, &reach);
    }

    /// A book change: orders reach the venue, queues shorten, and resting orders the opposite
    /// touch has crossed fill.
    pub fn on_book(&mut self, book: &Book, now: Nanos) {
        if self.resting.iter().flatten().any(|r| r.ahead.is_none()) {
            self.arrive(book, now);
        }
        let (bid, ask) = (
            book.best_bid().map(|l| l.price),
            book.best_ask().map(|l| l.price),
        );
        let mut reach = [Qty(0); MAX_ORDERS];
        for (i, slot) in self.resting.iter_mut().enumerate() {
            if let Some(r) = slot.as_mut().filter(|r| r.ahead.is_some()) {
                reach[i] = self.model.on_book(r, book, bid, ask);
            }
        }
        self.fill_first(now, &reach);
    }

    /// Fills the oldest (lowest id) resting order with something in `reach`, by that much,
    /// if a fill is allowed now.
    fn fill_first(&mut self, now: Nanos, reach: &[Qty; MAX_ORDERS]) {
        if !self.may_fill(now) {
            return;
        }
        let pick = (0..MAX_ORDERS)
            .filter(|&i| reach[i].0 > 0)
            .filter_map(|i| self.resting[i].map(|r| (r.cl_id, i)))
            .min();
        let Some((_, i)) = pick else { return };
        let Some(r) = &mut self.resting[i] else {
            return;
        };
        r.filled = Qty(r.filled.0 + reach[i].0.min(r.remaining().0));
        let (cl_id, price, filled, done) = (r.cl_id, r.price, r.filled, r.remaining().0 == 0);
        if done {
            self.resting[i] = None;
        }
        self.fill(cl_id, price, filled, Liquidity::Maker, now);
    }

    /// Number of resting orders.
    #[must_use]
    pub fn resting_count(&self) -> usize {
        self.resting.iter().flatten().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::book::ChecksumFormat;
    use crate::core::event::Purpose;
    use crate::core::time::MS;

    fn book(bid: i64, ask: i64) -> Book {
        let mut b = Book::new(10, 0, 0, ChecksumFormat::AS_WRITTEN);
        crate::core::book::set_levels(&mut b, &[(bid, 1)], &[(ask, 1)]);
        b
    }

    fn order(id: u64, side: Side, price: i64) -> OrderRequest {
        OrderRequest {
            cl_id: id,
            side,
            price: Price(price),
            qty: Qty(10),
            post_only: true,
            ioc: false,
            purpose: Purpose::Entry,
        }
    }

    fn trade(price: i64) -> Trade {
        Trade {
            side: Side::Sell,
            price: Price(price),
            qty: Qty(1),
            trade_id: 1,
            exchange_ts: None,
        }
    }

    #[test]
    fn buy_fills_on_trade_at_or_below_at_our_price_with_maker_fee() {
        let mut v = PaperVenue::new(Ppm(1_600), Ppm(2_600), 200 * MS);
        v.place(&order(1, Side::Buy, 95), &book(99, 101), 0);
        assert_eq!(v.events(), &[OrderEvent::Accepted { cl_id: 1 }]);
        v.clear_events();
        v.on_trade(&trade(96), 1);
        assert!(
            v.events().is_empty(),
            "a trade above our bid does not fill it"
        );
        v.on_trade(&trade(90), 2);
        // Filled at 95 (ours), not at 90: never better than the limit.
        let cost = Cash::notional(Price(95), Qty(10));
        assert_eq!(
            v.events(),
            &[OrderEvent::Fill {
                cl_id: 1,
                cum_qty: Qty(10),
                cum_cost: cost,
                cum_fee: cost.times_ppm_ceil(Ppm(1_600))
            }]
        );
    }

    #[test]
    fn sell_fills_when_bid_crosses_it() {
        let mut v = PaperVenue::new(Ppm(0), Ppm(0), 0);
        v.place(&order(1, Side::Sell, 105), &book(99, 101), 0);
        v.clear_events();
        v.on_book(&book(104, 106), 1);
        assert!(v.events().is_empty());
        v.on_book(&book(105, 107), 2);
        assert!(matches!(v.events(), [OrderEvent::Fill { cl_id: 1, .. }]));
    }

    #[test]
    fn post_only_that_would_cross_is_rejected() {
        let mut v = PaperVenue::new(Ppm(0), Ppm(0), 0);
        v.place(&order(1, Side::Buy, 101), &book(99, 101), 0);
        assert_eq!(
            v.events(),
            &[OrderEvent::Rejected {
                cl_id: 1,
                reason: RejectReason::PostOnly
            }]
        );
        assert_eq!(v.resting_count(), 0);
    }

    #[test]
    fn one_fill_per_tick_and_cooldown() {
        let mut v = PaperVenue::new(Ppm(0), Ppm(0), 200 * MS);
        v.place(&order(1, Side::Buy, 95), &book(90, 101), 0);
        v.place(&order(2, Side::Buy, 95), &book(90, 101), 0);
        v.clear_events();
        v.begin_tick();
        v.on_trade(&trade(94), MS);
        v.on_trade(&trade(94), MS);
        assert_eq!(v.events().len(), 1, "one fill per tick");
        v.clear_events();
        v.begin_tick();
        v.on_trade(&trade(94), 100 * MS);
        assert!(v.events().is_empty(), "cooldown holds the second fill");
        v.begin_tick();
        v.on_trade(&trade(94), 201 * MS);
        assert!(matches!(v.events(), [OrderEvent::Fill { cl_id: 2, .. }]));
    }

    #[test]
    fn ioc_fills_at_touch_with_taker_fee_or_expires() {
        let mut v = PaperVenue::new(Ppm(1_600), Ppm(2_600), 0);
        let mut o = order(1, Side::Sell, 98);
        o.ioc = true;
        o.post_only = false;
        v.place(&o, &book(99, 101), 0);
        let cost = Cash::notional(Price(99), Qty(10));
        assert_eq!(
            v.events()[1],
            OrderEvent::Fill {
                cl_id: 1,
                cum_qty: Qty(10),
                cum_cost: cost,
                cum_fee: cost.times_ppm_ceil(Ppm(2_600))
            }
        );
        v.clear_events();
        v.begin_tick();
        let mut o2 = order(2, Side::Sell, 100);
        o2.ioc = true;
        v.place(&o2, &book(99, 101), 1);
        assert_eq!(
            v.events()[1],
            OrderEvent::Cancelled {
                cl_id: 2,
                reason: CancelReason::Expired
            }
        );
    }
    fn levels(bids: &[(i64, u64)], asks: &[(i64, u64)]) -> Book {
        let mut b = Book::new(10, 0, 0, ChecksumFormat::AS_WRITTEN);
        crate::core::book::set_levels(&mut b, bids, asks);
        b
    }

    fn sell_trade(price: i64, qty: u64) -> Trade {
        Trade {
            qty: Qty(qty),
            ..trade(price)
        }
    }

    fn cum(v: &PaperVenue) -> Vec<u64> {
        v.events()
            .iter()
            .filter_map(|e| match e {
                OrderEvent::Fill { cum_qty, .. } => Some(cum_qty.0),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn queue_model_fills_only_after_the_visible_queue_ahead_traded() {
        // 30 lots bid at 95 ahead of our 10.
        let b = levels(&[(95, 30)], &[(101, 5)]);
        let mut cross = PaperVenue::new(Ppm(0), Ppm(0), 0);
        let mut queue = PaperVenue::new(Ppm(0), Ppm(0), 0).with_model(FillModel::Queue, 0);
        for v in [&mut cross, &mut queue] {
            v.place(&order(1, Side::Buy, 95), &b, 0);
            v.clear_events();
            v.begin_tick();
            v.on_trade(&sell_trade(95, 20), 1);
        }
        assert_eq!(cum(&cross), [10], "cross: a trade at our price fills us");
        assert_eq!(
            cum(&queue),
            Vec::<u64>::new(),
            "queue: 10 of 30 ahead still there"
        );
        queue.begin_tick();
        queue.on_trade(&sell_trade(95, 14), 2);
        assert_eq!(cum(&queue), [4], "the 10 ahead go first, 4 reach us");
        queue.clear_events();
        queue.begin_tick();
        queue.on_trade(&sell_trade(95, 100), 3);
        assert_eq!(cum(&queue), [10], "cumulative, never more than the order");
        assert_eq!(queue.resting_count(), 0);
    }

    #[test]
    fn queue_shrinks_when_the_level_falls_and_a_trade_through_fills_everything() {
        let mut v = PaperVenue::new(Ppm(0), Ppm(0), 0).with_model(FillModel::Queue, 0);
        v.place(
            &order(1, Side::Buy, 95),
            &levels(&[(95, 30)], &[(101, 5)]),
            0,
        );
        v.clear_events();
        // Cancellations ahead: the level shows 8 (ours is not visible in a paper book).
        v.begin_tick();
        v.on_book(&levels(&[(95, 8)], &[(101, 5)]), 1);
        v.begin_tick();
        v.on_trade(&sell_trade(95, 9), 2);
        assert_eq!(cum(&v), [1]);
        v.clear_events();
        // A trade below our price went through the whole level, us included.
        v.begin_tick();
        v.on_trade(&sell_trade(94, 1), 3);
        assert_eq!(cum(&v), [10]);
    }

    #[test]
    fn with_order_latency_nothing_fills_before_the_order_arrives() {
        let b = levels(&[(95, 30)], &[(101, 5)]);
        let mut v = PaperVenue::new(Ppm(0), Ppm(0), 0).with_model(FillModel::Cross, 50 * MS);
        v.place(&order(1, Side::Buy, 95), &b, 0);
        v.clear_events();
        v.begin_tick();
        v.on_trade(&sell_trade(90, 1), 10 * MS);
        assert!(v.events().is_empty(), "still on its way");
        v.begin_tick();
        v.on_book(&b, 50 * MS);
        v.begin_tick();
        v.on_trade(&sell_trade(90, 1), 60 * MS);
        assert_eq!(cum(&v), [10]);
        // A post-only order is checked when it arrives: the ask came down to it meanwhile.
        v.clear_events();
        v.place(&order(2, Side::Buy, 99), &b, 100 * MS);
        v.clear_events();
        v.on_book(&levels(&[(95, 30)], &[(99, 5)]), 150 * MS);
        assert_eq!(
            v.events(),
            &[OrderEvent::Rejected {
                cl_id: 2,
                reason: RejectReason::PostOnly
            }]
        );
    }
}
