//! The dashboard's memory of the session, for its charts (`/api/history`): price and our
//! quotes, equity and own position, the spread and how far our quotes sit from the touch, and
//! every fill.
//!
//! It lives in the dashboard thread and is built from the status snapshots the feed thread
//! already sends, so the core does no extra work. Memory is bounded at any session length:
//! when the ring of points is full, every other point is dropped and the spacing between
//! points doubles, so the whole session stays on the chart at a coarser grain.

use std::collections::VecDeque;

use serde_json::{Value, json};

use crate::core::event::Side;
use crate::core::money::Qty;
use crate::core::time::{MS, Nanos};
use crate::side::status::StatusSnapshot;

/// Points kept (1 h at the snapshot rate of 4 a second before the first thinning).
pub const POINTS: usize = 14_400;
/// Fills kept.
pub const FILLS: usize = 2_000;
/// The finest spacing between points: the snapshot interval.
const FINEST_NS: Nanos = 250 * MS;

/// One moment of the session. Prices in quote currency, position in base.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Feed clock, ns since the epoch.
    pub at: Nanos,
    /// Best bid.
    pub bid: Option<f64>,
    /// Best ask.
    pub ask: Option<f64>,
    /// Microprice.
    pub micro: Option<f64>,
    /// Our highest resting buy.
    pub our_bid: Option<f64>,
    /// Our lowest resting sell.
    pub our_ask: Option<f64>,
    /// Mark-to-market equity.
    pub equity: f64,
    /// Own position (signed).
    pub position: f64,
}

impl Point {
    fn mid(&self) -> Option<f64> {
        match (self.bid, self.ask) {
            (Some(b), Some(a)) if b > 0.0 && a > 0.0 => Some((a + b) / 2.0),
            _ => None,
        }
    }

    /// The book's spread in bps of the mid.
    #[must_use]
    pub fn spread_bps(&self) -> Option<f64> {
        Some((self.ask? - self.bid?) / self.mid()? * 10_000.0)
    }

    /// How far our buy sits below the best bid, bps of the mid (0: we are the touch).
    #[must_use]
    pub fn bid_gap_bps(&self) -> Option<f64> {
        Some((self.bid? - self.our_bid?) / self.mid()? * 10_000.0)
    }

    /// How far our sell sits above the best ask, bps of the mid.
    #[must_use]
    pub fn ask_gap_bps(&self) -> Option<f64> {
        Some((self.our_ask? - self.ask?) / self.mid()? * 10_000.0)
    }
}

/// One of our fills.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FillPoint {
    /// When it was booked (feed clock).
    pub at: Nanos,
    /// Our order id.
    pub cl_id: u64,
    /// Buy or sell.
    pub side: Side,
    /// Price.
    pub price: f64,
    /// Quantity, base.
    pub qty: f64,
    /// `entry`, `exit`, `force_exit`.
    pub purpose: &'static str,
}

/// The session so far.
#[derive(Debug)]
pub struct History {
    points: VecDeque<Point>,
    fills: VecDeque<FillPoint>,
    cap: usize,
    fill_cap: usize,
    spacing: Nanos,
}

impl Default for History {
    fn default() -> Self {
        History::with_capacity(POINTS, FILLS)
    }
}

impl History {
    /// A history keeping at most `points` points and `fills` fills.
    #[must_use]
    pub fn with_capacity(points: usize, fills: usize) -> History {
        History {
            points: VecDeque::with_capacity(points.max(2)),
            fills: VecDeque::with_capacity(fills.max(1)),
            cap: points.max(2),
            fill_cap: fills.max(1),
            spacing: FINEST_NS,
        }
    }

    /// The spacing between points now, ns.
    #[must_use]
    pub fn spacing(&self) -> Nanos {
        self.spacing
    }

    /// Points kept, oldest first.
    pub fn points(&self) -> impl Iterator<Item = &Point> {
        self.points.iter()
    }

    /// Fills kept, oldest first.
    pub fn fills(&self) -> impl Iterator<Item = &FillPoint> {
        self.fills.iter()
    }

    /// Takes what a snapshot adds: a point (if the spacing has passed) and its new fills.
    pub fn record(&mut self, s: &StatusSnapshot) {
        self.take_fills(s);
        if self
            .points
            .back()
            .is_some_and(|last| s.at - last.at < self.spacing)
        {
            return;
        }
        if self.points.len() == self.cap {
            self.thin();
        }
        self.points.push_back(point(s));
    }

    /// Drops every other point (the newest stays) and doubles the spacing.
    fn thin(&mut self) {
        let n = self.points.len();
        let mut i = 0;
        self.points.retain(|_| {
            i += 1;
            (n - i).is_multiple_of(2)
        });
        self.spacing = self.spacing.saturating_mul(2);
    }

    /// The snapshot lists the last fills, newest first: the ones not seen yet are those newer
    /// than the newest kept, or at the same instant and not kept yet.
    fn take_fills(&mut self, s: &StatusSnapshot) {
        let (pp, qp) = (s.precision.price, s.precision.qty);
        let newest = self.fills.back().map(|f| f.at);
        for f in s.trades.iter().flatten().rev() {
            let fp = FillPoint {
                at: f.ts,
                cl_id: f.cl_id,
                side: f.side,
                price: f.price.to_f64(pp),
                qty: f.qty.to_f64(qp),
                purpose: f.purpose.name(),
            };
            let new = match newest {
                None => true,
                Some(t) if f.ts > t => true,
                Some(t) if f.ts == t => !self
                    .fills
                    .iter()
                    .rev()
                    .take_while(|k| k.at == t)
                    .any(|k| *k == fp),
                Some(_) => false,
            };
            if !new {
                continue;
            }
            if self.fills.len() == self.fill_cap {
                self.fills.pop_front();
            }
            self.fills.push_back(fp);
        }
    }

    /// `/api/history`: points and fills after `since` (seconds since the epoch; all without
    /// it), the points as columns (`t` in seconds, the rest aligned with it).
    #[must_use]
    pub fn to_json(&self, since: Option<f64>) -> Value {
        let after = |at: Nanos| since.is_none_or(|s| secs(at) > s);
        let pts: Vec<&Point> = self.points.iter().filter(|p| after(p.at)).collect();
        let col = |f: &dyn Fn(&Point) -> Option<f64>| -> Vec<Option<f64>> {
            pts.iter().map(|p| f(p).map(round6)).collect()
        };
        let fills: Vec<Value> = self
            .fills
            .iter()
            .filter(|f| after(f.at))
            .map(|f| {
                json!({
                    "t": secs(f.at), "order_id": f.cl_id, "side": f.side.as_str(),
                    "price": f.price, "qty": f.qty, "purpose": f.purpose,
                })
            })
            .collect();
        json!({
            "spacing_s": self.spacing as f64 / 1e9,
            "points": {
                "t": pts.iter().map(|p| secs(p.at)).collect::<Vec<_>>(),
                "bid": col(&|p| p.bid),
                "ask": col(&|p| p.ask),
                "microprice": col(&|p| p.micro),
                "our_bid": col(&|p| p.our_bid),
                "our_ask": col(&|p| p.our_ask),
                "equity": col(&|p| Some(p.equity)),
                "position": col(&|p| Some(p.position)),
                "spread_bps": col(&Point::spread_bps),
                "bid_gap_bps": col(&Point::bid_gap_bps),
                "ask_gap_bps": col(&Point::ask_gap_bps),
            },
            "fills": fills,
        })
    }
}

/// Seconds since the epoch, to the millisecond.
fn secs(at: Nanos) -> f64 {
    (at / MS) as f64 / 1e3
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// A snapshot as a chart point.
fn point(s: &StatusSnapshot) -> Point {
    let (pp, qp) = (s.precision.price, s.precision.qty);
    let resting = |side: Side| {
        s.orders
            .iter()
            .flatten()
            .filter(move |o| o.req.side == side)
            .filter(|o| o.state.is_resting())
            .map(move |o| o.req.price.to_f64(pp))
    };
    let position = Qty(s.position.unsigned_abs()).to_f64(qp);
    Point {
        at: s.at,
        bid: s.best_bid.map(|p| p.to_f64(pp)),
        ask: s.best_ask.map(|p| p.to_f64(pp)),
        micro: s.microprice,
        our_bid: resting(Side::Buy).reduce(f64::max),
        our_ask: resting(Side::Sell).reduce(f64::min),
        equity: s.equity.to_f64(pp + qp),
        position: if s.position < 0 { -position } else { position },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::accounting::FillRecord;
    use crate::core::event::{OrderRequest, Purpose};
    use crate::core::money::{Cash, Precision, Price};
    use crate::core::orders::OrderState;
    use crate::side::status::OrderView;

    fn snap(at_ms: i64) -> StatusSnapshot {
        let mut s = StatusSnapshot::blank();
        s.at = at_ms * MS;
        s.precision = Precision { price: 1, qty: 8 };
        s.best_bid = Some(Price(1_000_000)); // 100 000.0
        s.best_ask = Some(Price(1_000_010)); // 100 001.0
        s.microprice = Some(100_000.4);
        s
    }

    fn fill(ts_ms: i64, cl_id: u64, side: Side) -> FillRecord {
        FillRecord {
            ts: ts_ms * MS,
            cl_id,
            side,
            qty: Qty(100_000),
            price: Price(1_000_000),
            fee: Cash(0),
            realised: Cash(0),
            purpose: Purpose::Entry,
        }
    }

    #[test]
    fn a_point_shows_our_quotes_against_the_touch() {
        let mut s = snap(1_000);
        let order = |cl_id, side, price| OrderView {
            req: OrderRequest {
                cl_id,
                side,
                price: Price(price),
                qty: Qty(100_000),
                post_only: true,
                ioc: false,
                purpose: Purpose::Entry,
            },
            state: OrderState::Open,
            filled: 0,
            placed_at: 0,
        };
        s.orders[0] = Some(order(1, Side::Buy, 999_990)); // 99 999.0: 1.0 below the bid
        s.orders[1] = Some(order(2, Side::Sell, 1_000_030)); // 100 003.0: 2.0 above the ask
        s.position = -150_000;
        let p = point(&s);
        assert_eq!(p.our_bid, Some(99_999.0));
        assert_eq!(p.our_ask, Some(100_003.0));
        assert_eq!(p.position, -0.0015);
        let mid = 100_000.5;
        assert!((p.spread_bps().unwrap() - 1.0 / mid * 1e4).abs() < 1e-9);
        assert!((p.bid_gap_bps().unwrap() - 1.0 / mid * 1e4).abs() < 1e-9);
        assert!((p.ask_gap_bps().unwrap() - 2.0 / mid * 1e4).abs() < 1e-9);
        assert_eq!(point(&snap(0)).bid_gap_bps(), None, "no quote, no gap");
    }

    #[test]
    fn points_are_spaced_and_memory_stays_bounded_over_any_session() {
        let mut h = History::with_capacity(8, 4);
        for ms in (0..100_000).step_by(250) {
            h.record(&snap(ms));
        }
        assert!(h.points.len() <= 8);
        let first = h.points().next().unwrap().at;
        let last = h.points().last().unwrap().at;
        assert!(
            99_750 * MS - last < h.spacing(),
            "the newest point is at most one spacing old"
        );
        assert!(
            first < 30_000 * MS,
            "the start of the session is still on the chart"
        );
        assert!(h.spacing() > FINEST_NS);
        // A snapshot sooner than the spacing adds no point.
        let n = h.points.len();
        h.record(&snap(99_800));
        assert_eq!(h.points.len(), n);
    }

    #[test]
    fn each_fill_is_kept_once_however_many_snapshots_repeat_it() {
        let mut h = History::default();
        let mut s = snap(1_000);
        s.trades[0] = Some(fill(900, 1, Side::Buy));
        h.record(&s);
        h.record(&s);
        // Two fills at the same instant, the older one repeated: newest first, as the core lists.
        s.trades = [None; crate::side::status::TRADES_SHOWN];
        s.trades[0] = Some(fill(950, 3, Side::Sell));
        s.trades[1] = Some(fill(950, 2, Side::Sell));
        s.trades[2] = Some(fill(900, 1, Side::Buy));
        h.record(&s);
        h.record(&s);
        let ids: Vec<u64> = h.fills().map(|f| f.cl_id).collect();
        assert_eq!(ids, [1, 2, 3]);
        let j = h.to_json(Some(0.92));
        let fills = j["fills"].as_array().unwrap();
        assert_eq!(fills.len(), 2, "only what is newer than `since`: {j}");
        assert_eq!(fills[0]["side"], "sell");
    }

    #[test]
    fn the_json_is_columns_aligned_on_time_and_since_returns_only_the_new() {
        let mut h = History::default();
        for ms in [1_000, 1_250, 1_500] {
            h.record(&snap(ms));
        }
        let j = h.to_json(None);
        let p = &j["points"];
        assert_eq!(p["t"], json!([1.0, 1.25, 1.5]));
        for col in [
            "bid",
            "ask",
            "microprice",
            "our_bid",
            "equity",
            "spread_bps",
        ] {
            assert_eq!(p[col].as_array().unwrap().len(), 3, "{col}");
        }
        assert_eq!(p["bid"][0], 100_000.0);
        assert!(p["our_bid"][0].is_null());
        assert_eq!(h.to_json(Some(1.25))["points"]["t"], json!([1.5]));
        assert_eq!(j["spacing_s"], 0.25);
    }
}
