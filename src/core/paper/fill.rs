//! Fill models: how much of a resting paper order the market reaches. Each model looks at
//! one order and one market event; the venue applies the seed's limits (one fill per tick,
//! the cooldown, the oldest order first).

use crate::core::book::Book;
use crate::core::event::Side;
use crate::core::money::{Price, Qty};
use crate::core::wire::parse::Trade;

use super::{FillModel, Resting};

/// The configured model dispatches to its implementation (no `dyn`).
impl FillRule for FillModel {
    fn on_trade(&self, r: &mut Resting, t: &Trade) -> Qty {
        match self {
            FillModel::Cross => CrossFill.on_trade(r, t),
            FillModel::Queue => QueueFill.on_trade(r, t),
        }
    }

    fn on_book(&self, r: &mut Resting, book: &Book, bid: Option<Price>, ask: Option<Price>) -> Qty {
        match self {
            FillModel::Cross => CrossFill.on_book(r, book, bid, ask),
            FillModel::Queue => QueueFill.on_book(r, book, bid, ask),
        }
    }
}

/// How a resting order meets the market.
pub trait FillRule {
    /// A public trade: the quantity of `r` it fills (a queue model also shortens the queue
    /// ahead of `r`).
    fn on_trade(&self, r: &mut Resting, t: &Trade) -> Qty;
    /// A book change with touch `bid` / `ask`: the quantity of `r` it fills (a queue model
    /// also shortens the queue ahead to what the level still shows).
    fn on_book(&self, r: &mut Resting, book: &Book, bid: Option<Price>, ask: Option<Price>) -> Qty;
}

/// Whether the opposite touch has reached `r`'s price.
fn crossed(r: &Resting, bid: Option<Price>, ask: Option<Price>) -> bool {
    match r.side {
        Side::Buy => ask.is_some_and(|a| a <= r.price),
        Side::Sell => bid.is_some_and(|b| b >= r.price),
    }
}

/// Filled completely when a trade prints at or through the price, or the opposite touch
/// crosses it. No queue.
#[derive(Debug, Clone, Copy, Default)]
pub struct CrossFill;

impl FillRule for CrossFill {
    fn on_trade(&self, r: &mut Resting, t: &Trade) -> Qty {
        let reached = match r.side {
            Side::Buy => t.price <= r.price,
            Side::Sell => t.price >= r.price,
        };
        if reached { r.remaining() } else { Qty(0) }
    }

    fn on_book(&self, r: &mut Resting, _: &Book, bid: Option<Price>, ask: Option<Price>) -> Qty {
        if crossed(r, bid, ask) {
            r.remaining()
        } else {
            Qty(0)
        }
    }
}

/// Joins the back of the visible queue at its price: trades at the price consume the queue
/// ahead first; a fall of the level's quantity shortens the queue (taking the minimum never
/// counts a trade and the book update reporting it twice); a trade through the price, or the
/// opposite touch crossing it, fills what remains.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueFill;

impl FillRule for QueueFill {
    fn on_trade(&self, r: &mut Resting, t: &Trade) -> Qty {
        let Some(ahead) = r.ahead else {
            return Qty(0);
        };
        let through = match r.side {
            Side::Buy => t.price < r.price,
            Side::Sell => t.price > r.price,
        };
        if through {
            r.remaining()
        } else if t.price == r.price {
            r.ahead = Some(ahead.saturating_sub(t.qty));
            t.qty.saturating_sub(ahead).min(r.remaining())
        } else {
            Qty(0)
        }
    }

    fn on_book(&self, r: &mut Resting, book: &Book, bid: Option<Price>, ask: Option<Price>) -> Qty {
        let Some(ahead) = r.ahead else {
            return Qty(0);
        };
        if crossed(r, bid, ask) {
            return r.remaining();
        }
        r.ahead = Some(ahead.min(book.qty_at(r.is_bid(), r.price)));
        Qty(0)
    }
}
