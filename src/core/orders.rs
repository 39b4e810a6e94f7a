//! Our orders, tracked by client id through
//! pending → open → partially filled → filled / cancelled / rejected.
//!
//! The number of live orders is bounded by [`MAX_ORDERS`]; the strategy never needs more than
//! a few, and the bound is what keeps the order channel to the REST worker from ever filling.
//! Fills are reported cumulatively, so the manager books only the increase: a repeated report
//! changes nothing, and a late fill for an order that has just closed is still found in a ring
//! of recently closed orders, so no fill is lost.

use crate::core::event::{ClientId, OrderEvent, OrderRequest, Purpose, RejectReason, Side};
use crate::core::money::{Cash, Price, Qty};
use crate::core::time::Nanos;

/// Most orders alive at once (placed and not yet terminal).
pub const MAX_ORDERS: usize = 8;
/// Recently closed orders remembered for late fill reports.
pub const CLOSED_MEMORY: usize = 32;

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderState {
    /// Sent, not yet acknowledged.
    PendingNew,
    /// Resting, nothing filled.
    Open,
    /// Resting, partly filled.
    PartiallyFilled,
    /// Cancel sent, not yet confirmed.
    PendingCancel,
    /// Completely filled.
    Filled,
    /// Cancelled (possibly after partial fills).
    Cancelled,
    /// Refused.
    Rejected,
}

impl OrderState {
    /// Snake-case name (dashboard, JSON).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            OrderState::PendingNew => "pendingnew",
            OrderState::Open => "open",
            OrderState::PartiallyFilled => "partiallyfilled",
            OrderState::PendingCancel => "pendingcancel",
            OrderState::Filled => "filled",
            OrderState::Cancelled => "cancelled",
            OrderState::Rejected => "rejected",
        }
    }

    /// Done for good.
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderState::Filled | OrderState::Cancelled | OrderState::Rejected
        )
    }

    /// On the book, or about to be: what a chart draws as our quote.
    #[must_use]
    pub fn is_resting(self) -> bool {
        matches!(
            self,
            OrderState::PendingNew | OrderState::Open | OrderState::PartiallyFilled
        )
    }
}

/// One order and what has happened to it.
#[derive(Debug, Clone, Copy)]
pub struct Order {
    /// What we asked for.
    pub req: OrderRequest,
    /// Where it is.
    pub state: OrderState,
    /// Executed so far.
    pub filled: Qty,
    /// Executed cost so far (quote).
    pub cum_cost: Cash,
    /// Fees so far (quote).
    pub cum_fee: Cash,
    /// When we placed it.
    pub placed_at: Nanos,
}

impl Order {
    /// Unfilled quantity.
    #[must_use]
    pub fn remaining(&self) -> Qty {
        self.req.qty.saturating_sub(self.filled)
    }

    /// Side.
    #[must_use]
    pub fn side(&self) -> Side {
        self.req.side
    }

    /// Limit price.
    #[must_use]
    pub fn price(&self) -> Price {
        self.req.price
    }
}

/// A fill increment to book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FillDelta {
    /// Which order.
    pub cl_id: ClientId,
    /// Its side.
    pub side: Side,
    /// Its purpose.
    pub purpose: Purpose,
    /// Quantity of this increment.
    pub qty: Qty,
    /// Cost of this increment (quote).
    pub cost: Cash,
    /// Fee of this increment (quote).
    pub fee: Cash,
}

/// What an order event changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderUpdate {
    /// Nothing to do (duplicate, unknown, or a pure state change).
    None,
    /// New executed quantity to book.
    Fill(FillDelta),
    /// The order was refused.
    Rejected(ClientId, RejectReason),
    /// A fill report for an id we never placed (counted; reconciled by the caller).
    Unknown(ClientId),
}

/// Counters the dashboard shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrderStats {
    /// Orders placed.
    pub placed: u64,
    /// Cancels requested.
    pub cancels: u64,
    /// Rejections (post-only crosses included).
    pub rejected: u64,
    /// Orders completely filled.
    pub filled: u64,
    /// Fill reports that repeated an earlier one.
    pub duplicate_fills: u64,
    /// Fill reports for unknown ids.
    pub unknown_fills: u64,
    /// Placements refused because every slot was in use.
    pub slots_full: u64,
}

/// The live orders and the recently closed ones.
#[derive(Debug, Clone)]
pub struct OrderManager {
    /// Live orders, oldest first, packed at the front: `live[..n]` are all `Some` (every
    /// tick scans them several times; a packed prefix stops at the last one).
    live: [Option<Order>; MAX_ORDERS],
    n: usize,
    closed: [Option<Order>; CLOSED_MEMORY],
    closed_next: usize,
    next_id: ClientId,
    /// Counters.
    pub stats: OrderStats,
}

impl OrderManager {
    /// Ids start at `first_id`; the caller picks it (e.g. from the start time) so ids are never
    /// reused across restarts.
    #[must_use]
    pub fn new(first_id: ClientId) -> OrderManager {
        OrderManager {
            live: [None; MAX_ORDERS],
            n: 0,
            closed: [None; CLOSED_MEMORY],
            closed_next: 0,
            next_id: first_id,
            stats: OrderStats::default(),
        }
    }

    /// Registers a new order; `None` when every slot is in use.
    pub fn open(&mut self, mut req: OrderRequest, now: Nanos) -> Option<OrderRequest> {
        if self.n == MAX_ORDERS {
            self.stats.slots_full += 1;
            return None;
        }
        req.cl_id = self.next_id;
        self.next_id += 1;
        self.push_live(req, now);
        Some(req)
    }

    /// Appends a new pending order after the live ones (a slot must be free).
    fn push_live(&mut self, req: OrderRequest, placed_at: Nanos) {
        self.live[self.n] = Some(Order {
            req,
            state: OrderState::PendingNew,
            filled: Qty(0),
            cum_cost: Cash(0),
            cum_fee: Cash(0),
            placed_at,
        });
        self.n += 1;
        self.stats.placed += 1;
    }

    /// Re-registers an order from the journal with its own id; later ids follow it. Ignored
    /// when every slot is in use (a journal cannot hold more live orders than that).
    pub fn restore(&mut self, req: OrderRequest, placed_at: Nanos) {
        self.next_id = self.next_id.max(req.cl_id + 1);
        if self.get(req.cl_id).is_some() {
            return;
        }
        if self.n < MAX_ORDERS {
            self.push_live(req, placed_at);
        }
    }

    /// Re-registers a live order from a journal snapshot exactly as it was (its fills are
    /// already in the snapshot's account: nothing is booked).
    pub fn restore_order(&mut self, o: Order) {
        self.next_id = self.next_id.max(o.req.cl_id + 1);
        if self.get(o.req.cl_id).is_none() && self.n < MAX_ORDERS {
            self.live[self.n] = Some(o);
            self.n += 1;
        }
    }

    /// The next client id this manager gives out.
    #[must_use]
    pub fn next_id(&self) -> ClientId {
        self.next_id
    }

    /// Client ids continue from `id` at least (a journal snapshot's).
    pub fn continue_from(&mut self, id: ClientId) {
        self.next_id = self.next_id.max(id);
    }

    /// Marks a cancel as sent; `false` if the order is unknown or a cancel is already out.
    pub fn mark_cancel(&mut self, cl_id: ClientId) -> bool {
        match self.live_mut(cl_id) {
            Some(o) if o.state != OrderState::PendingCancel => {
                o.state = OrderState::PendingCancel;
                self.stats.cancels += 1;
                true
            }
            _ => false,
        }
    }

    /// Live (non-terminal) orders.
    pub fn live(&self) -> impl Iterator<Item = &Order> + '_ {
        self.live[..self.n].iter().flatten()
    }

    /// Number of live orders.
    #[must_use]
    pub fn live_count(&self) -> usize {
        self.n
    }

    /// A live order by id.
    #[must_use]
    pub fn get(&self, cl_id: ClientId) -> Option<&Order> {
        self.live().find(|o| o.req.cl_id == cl_id)
    }

    /// A live or recently closed order by id (late fills still find closed ones).
    #[must_use]
    pub fn find_any(&self, cl_id: ClientId) -> Option<&Order> {
        self.get(cl_id)
            .or_else(|| self.closed.iter().flatten().find(|o| o.req.cl_id == cl_id))
    }

    fn live_mut(&mut self, cl_id: ClientId) -> Option<&mut Order> {
        self.live[..self.n]
            .iter_mut()
            .flatten()
            .find(|o| o.req.cl_id == cl_id)
    }

    fn close(&mut self, cl_id: ClientId, state: OrderState) {
        let Some(i) = self.live[..self.n]
            .iter()
            .position(|s| s.is_some_and(|o| o.req.cl_id == cl_id))
        else {
            return;
        };
        if let Some(mut o) = self.live[i] {
            o.state = state;
            self.closed[self.closed_next] = Some(o);
            self.closed_next = (self.closed_next + 1) % CLOSED_MEMORY;
        }
        // Keep the prefix packed and in age order.
        self.live.copy_within(i + 1..self.n, i);
        self.n -= 1;
        self.live[self.n] = None;
    }

    /// Applies an order event.
    pub fn on_event(&mut self, ev: &OrderEvent) -> OrderUpdate {
        match *ev {
            OrderEvent::Accepted { cl_id } => {
                if let Some(o) = self.live_mut(cl_id)
                    && o.state == OrderState::PendingNew
                {
                    o.state = OrderState::Open;
                }
                OrderUpdate::None
            }
            OrderEvent::Rejected { cl_id, reason } => {
                if self.get(cl_id).is_none() {
                    return OrderUpdate::None;
                }
                self.stats.rejected += 1;
                self.close(cl_id, OrderState::Rejected);
                OrderUpdate::Rejected(cl_id, reason)
            }
            OrderEvent::Cancelled { cl_id, reason: _ } => {
                if self.get(cl_id).is_some() {
                    self.close(cl_id, OrderState::Cancelled);
                }
                OrderUpdate::None
            }
            OrderEvent::Fill {
                cl_id,
                cum_qty,
                cum_cost,
                cum_fee,
            } => self.on_fill(cl_id, cum_qty, cum_cost, cum_fee),
            _ => OrderUpdate::None,
        }
    }

    fn on_fill(
        &mut self,
        cl_id: ClientId,
        cum_qty: Qty,
        cum_cost: Cash,
        cum_fee: Cash,
    ) -> OrderUpdate {
        let in_live = self.live().any(|o| o.req.cl_id == cl_id);
        let order = if in_live {
            self.live_mut(cl_id)
        } else {
            self.closed
                .iter_mut()
                .flatten()
                .find(|o| o.req.cl_id == cl_id)
        };
        let Some(o) = order else {
            self.stats.unknown_fills += 1;
            return OrderUpdate::Unknown(cl_id);
        };
        if cum_qty <= o.filled {
            self.stats.duplicate_fills += 1;
            return OrderUpdate::None;
        }
        let delta = FillDelta {
            cl_id,
            side: o.req.side,
            purpose: o.req.purpose,
            qty: Qty(cum_qty.0 - o.filled.0),
            cost: Cash(cum_cost.0 - o.cum_cost.0),
            fee: Cash(cum_fee.0 - o.cum_fee.0),
        };
        o.filled = cum_qty;
        o.cum_cost = cum_cost;
        o.cum_fee = cum_fee;
        if in_live {
            if o.filled >= o.req.qty {
                self.stats.filled += 1;
                self.close(cl_id, OrderState::Filled);
            } else if o.state == OrderState::Open || o.state == OrderState::PendingNew {
                o.state = OrderState::PartiallyFilled;
            }
        }
        OrderUpdate::Fill(delta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::event::CancelReason;

    fn req(side: Side, qty: u64) -> OrderRequest {
        OrderRequest {
            cl_id: 0,
            side,
            price: Price(100),
            qty: Qty(qty),
            post_only: true,
            ioc: false,
            purpose: Purpose::Entry,
        }
    }

    #[test]
    fn live_orders_stay_in_age_order_through_closes_and_slots_are_reused() {
        let mut m = OrderManager::new(1);
        let ids: Vec<ClientId> = (0..MAX_ORDERS)
            .map(|_| m.open(req(Side::Buy, 1), 0).unwrap().cl_id)
            .collect();
        assert!(m.open(req(Side::Buy, 1), 0).is_none(), "every slot in use");
        m.on_event(&OrderEvent::Cancelled {
            cl_id: ids[2],
            reason: CancelReason::Requested,
        });
        m.on_event(&OrderEvent::Rejected {
            cl_id: ids[0],
            reason: crate::core::event::RejectReason::PostOnly,
        });
        let newest = m.open(req(Side::Sell, 1), 0).unwrap().cl_id;
        let live: Vec<ClientId> = m.live().map(|o| o.req.cl_id).collect();
        let mut want: Vec<ClientId> = ids
            .iter()
            .copied()
            .filter(|&i| i != ids[0] && i != ids[2])
            .collect();
        want.push(newest);
        assert_eq!(live, want);
        assert_eq!(m.live_count(), MAX_ORDERS - 1);
        assert!(m.get(ids[2]).is_none() && m.get(newest).is_some());
    }

    #[test]
    fn lifecycle_pending_open_partial_filled() {
        let mut m = OrderManager::new(7);
        let r = m.open(req(Side::Buy, 10), 0).unwrap();
        assert_eq!(r.cl_id, 7);
        assert_eq!(m.get(7).unwrap().state, OrderState::PendingNew);
        m.on_event(&OrderEvent::Accepted { cl_id: 7 });
        assert_eq!(m.get(7).unwrap().state, OrderState::Open);
        let f = |q, c| OrderEvent::Fill {
            cl_id: 7,
            cum_qty: Qty(q),
            cum_cost: Cash(c),
            cum_fee: Cash(1),
        };
        assert!(
            matches!(m.on_event(&f(4, 400)), OrderUpdate::Fill(d) if d.qty == Qty(4) && d.cost == Cash(400))
        );
        assert_eq!(m.get(7).unwrap().state, OrderState::PartiallyFilled);
        // The same poll again books nothing.
        assert_eq!(m.on_event(&f(4, 400)), OrderUpdate::None);
        assert_eq!(m.stats.duplicate_fills, 1);
        assert!(
            matches!(m.on_event(&f(10, 1000)), OrderUpdate::Fill(d) if d.qty == Qty(6) && d.cost == Cash(600) && d.fee == Cash(0))
        );
        assert!(m.get(7).is_none(), "filled orders leave the live set");
        assert_eq!(m.stats.filled, 1);
    }

    #[test]
    fn late_fill_after_cancel_is_not_lost() {
        let mut m = OrderManager::new(1);
        m.open(req(Side::Sell, 10), 0).unwrap();
        assert!(m.mark_cancel(1));
        assert!(!m.mark_cancel(1), "one cancel per order");
        m.on_event(&OrderEvent::Cancelled {
            cl_id: 1,
            reason: CancelReason::Requested,
        });
        assert_eq!(m.live_count(), 0);
        let late = OrderEvent::Fill {
            cl_id: 1,
            cum_qty: Qty(3),
            cum_cost: Cash(300),
            cum_fee: Cash(0),
        };
        assert!(matches!(m.on_event(&late), OrderUpdate::Fill(d) if d.qty == Qty(3)));
        assert_eq!(m.on_event(&late), OrderUpdate::None);
        assert_eq!(
            m.on_event(&OrderEvent::Fill {
                cl_id: 99,
                cum_qty: Qty(1),
                cum_cost: Cash(1),
                cum_fee: Cash(0)
            }),
            OrderUpdate::Unknown(99)
        );
    }

    #[test]
    fn rejection_and_slot_bound() {
        let mut m = OrderManager::new(1);
        for _ in 0..MAX_ORDERS {
            assert!(m.open(req(Side::Buy, 1), 0).is_some());
        }
        assert!(m.open(req(Side::Buy, 1), 0).is_none());
        assert_eq!(m.stats.slots_full, 1);
        assert_eq!(
            m.on_event(&OrderEvent::Rejected {
                cl_id: 1,
                reason: RejectReason::PostOnly
            }),
            OrderUpdate::Rejected(1, RejectReason::PostOnly)
        );
        assert!(
            m.open(req(Side::Buy, 1), 0).is_some(),
            "a rejected order frees its slot"
        );
    }
}
