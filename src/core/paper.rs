//! The paper venue: simulated order handling and fills, inside the core.
//!
//! Fill model ("cross"): a resting buy fills when a trade prints at or below its price, or
//! when the best ask drops to or below it (sells mirrored). It fills completely, at our limit
//! price (never better), paying the maker fee. A post-only order that would cross on arrival
//! is rejected, as Kraken does. An immediate-or-cancel (force-exit) order that is marketable
//! fills at the touch and pays the taker fee; otherwise it expires.
//!
//! Simulated fills are rate-limited as the seed rules demand: at most one fill per tick and
//! none within `fill_cooldown_ms` of the previous one. A resting order that would have filled
//! during the cooldown simply fills later, if the market still reaches it.

use crate::core::book::Book;
use crate::core::event::{CancelReason, ClientId, OrderEvent, OrderRequest, RejectReason};
use crate::core::money::{Cash, Ppm, Price, Qty};
use crate::core::orders::MAX_ORDERS;
use crate::core::parse::{Side, Trade};
use crate::core::time::Nanos;

/// Events one paper call can produce at most (one per resting order plus the new one).
pub const MAX_PAPER_EVENTS: usize = 2 * MAX_ORDERS + 2;

#[derive(Debug, Clone, Copy)]
struct Resting {
    cl_id: ClientId,
    side: Side,
    price: Price,
    qty: Qty,
}

/// Simulated exchange for paper trading and replay.
#[derive(Debug, Clone)]
pub struct PaperVenue {
    resting: [Option<Resting>; MAX_ORDERS],
    maker_fee: Ppm,
    taker_fee: Ppm,
    cooldown_ns: Nanos,
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
            maker_fee,
            taker_fee,
            cooldown_ns,
            last_fill_at: None,
            filled_this_tick: false,
            events: Vec::with_capacity(MAX_PAPER_EVENTS * 2),
        }
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

    fn fill(&mut self, cl_id: ClientId, price: Price, qty: Qty, fee: Ppm, now: Nanos) {
        let cost = Cash::notional(price, qty);
        self.emit(OrderEvent::Fill {
            cl_id,
            cum_qty: qty,
            cum_cost: cost,
            cum_fee: cost.times_ppm_ceil(fee),
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
                    self.fill(req.cl_id, t, req.qty, self.taker_fee, now);
                }
                _ => self.emit(OrderEvent::Cancelled {
                    cl_id: req.cl_id,
                    reason: CancelReason::Expired,
                }),
            }
            return;
        }
        if req.post_only && crosses {
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
        *slot = Some(Resting {
            cl_id: req.cl_id,
            side: req.side,
            price: req.price,
            qty: req.qty,
        });
        self.emit(OrderEvent::Accepted { cl_id: req.cl_id });
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
        self.fill_first(now, |r| match r.side {
            Side::Buy => t.price <= r.price,
            Side::Sell => t.price >= r.price,
        });
    }

    /// A book change: resting orders the opposite touch has crossed fill.
    pub fn on_book(&mut self, book: &Book, now: Nanos) {
        let (bid, ask) = (
            book.best_bid().map(|l| l.price),
            book.best_ask().map(|l| l.price),
        );
        self.fill_first(now, |r| match r.side {
            Side::Buy => ask.is_some_and(|a| a <= r.price),
            Side::Sell => bid.is_some_and(|b| b >= r.price),
        });
    }

    /// Fills the oldest (lowest id) resting order that `reached` accepts, if a fill is allowed.
    fn fill_first(&mut self, now: Nanos, reached: impl Fn(&Resting) -> bool) {
        if !self.may_fill(now) {
            return;
        }
        let pick = self
            .resting
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.filter(|r| reached(r)).map(|r| (r.cl_id, i)))
            .min();
        if let Some((_, i)) = pick
            && let Some(r) = self.resting[i].take()
        {
            self.fill(r.cl_id, r.price, r.qty, self.maker_fee, now);
        }
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
}
