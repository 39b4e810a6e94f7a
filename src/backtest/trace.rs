//! What a replay saw over time, for its HTML report: the touch, our resting quotes, equity and
//! its peak, own position, which rules held quoting back, every fill and every closed round
//! trip.
//!
//! The replay loop calls [`Trace::observe`] after each event. Most calls compare two counters
//! and a time and return; a point is taken once per spacing of file time. Memory is bounded at
//! any file length: when the points are full, neighbours are merged pairwise (the later state
//! kept, the pause counts summed) and the spacing doubles, so a month of data stays whole at a
//! coarser grain. Fills and round trips are kept up to a cap; what is past it is counted.
//!
//! Nothing here reads a clock: the same replay gives the same trace, and the same JSON.

use serde_json::{Value, json};

use crate::core::Core;
use crate::core::accounting::{Accounting, ClosedTrip, FillRecord, HISTORY_LEN};
use crate::core::event::{Rule, Side};
use crate::core::money::{Cash, Price, Qty};
use crate::core::time::{MS, Nanos};

/// Points kept before neighbours are merged.
pub const POINTS: usize = 16_384;
/// Fills kept (the ones after are counted, not listed).
pub const FILLS: usize = 20_000;
/// Round trips kept.
pub const TRIPS: usize = 20_000;
/// The finest spacing between points (the dashboard's snapshot interval).
const FINEST_NS: Nanos = 250 * MS;

/// One moment of the replay, in the core's fixed-point units.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    at: Nanos,
    bid: Option<Price>,
    ask: Option<Price>,
    micro: Option<f64>,
    our_bid: Option<Price>,
    our_ask: Option<Price>,
    equity: Cash,
    peak: Cash,
    position: i64,
    /// Strategy evaluations since the previous point.
    ticks: u64,
    /// Of those, how many each rule held quoting back.
    held: [u64; Rule::COUNT],
}

/// The replay's time series (see the module docs).
#[derive(Debug, Clone)]
pub struct Trace {
    samples: Vec<Sample>,
    cap: usize,
    spacing: Nanos,
    fills: Vec<FillRecord>,
    fills_seen: u64,
    fills_unlisted: u64,
    trips: Vec<ClosedTrip>,
    trips_seen: u64,
    trips_unlisted: u64,
    ticks_then: u64,
    held_then: [u64; Rule::COUNT],
    precision: (u8, u8),
}

impl Default for Trace {
    fn default() -> Self {
        Trace::with_capacity(POINTS)
    }
}

impl Trace {
    /// A trace keeping at most `points` points (even, at least 2).
    #[must_use]
    pub fn with_capacity(points: usize) -> Trace {
        let cap = points.max(2).next_multiple_of(2);
        Trace {
            samples: Vec::with_capacity(cap),
            cap,
            spacing: FINEST_NS,
            fills: Vec::new(),
            fills_seen: 0,
            fills_unlisted: 0,
            trips: Vec::new(),
            trips_seen: 0,
            trips_unlisted: 0,
            ticks_then: 0,
            held_then: [0; Rule::COUNT],
            precision: (0, 0),
        }
    }

    /// Points kept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// No point yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The spacing between points now, ns.
    #[must_use]
    pub fn spacing(&self) -> Nanos {
        self.spacing
    }

    /// Fills listed, oldest first.
    #[must_use]
    pub fn fills(&self) -> &[FillRecord] {
        &self.fills
    }

    /// Round trips listed, oldest first.
    #[must_use]
    pub fn trips(&self) -> &[ClosedTrip] {
        &self.trips
    }

    /// Fills counted but not listed (past the cap, or more in one event than the account's
    /// history holds).
    #[must_use]
    pub fn fills_unlisted(&self) -> u64 {
        self.fills_unlisted
    }

    /// Round trips counted but not listed.
    #[must_use]
    pub fn trips_unlisted(&self) -> u64 {
        self.trips_unlisted
    }

    /// After the core handled an event at `now`: new fills and round trips, and a point when
    /// the spacing has passed.
    pub fn observe(&mut self, core: &Core, now: Nanos) {
        let a = core.account();
        if a.fill_count() != self.fills_seen {
            self.take_fills(a);
        }
        if a.round_trips != self.trips_seen {
            self.take_trip(a);
        }
        if self
            .samples
            .last()
            .is_some_and(|last| now - last.at < self.spacing)
        {
            return;
        }
        self.push(core, now);
    }

    /// The state at the end of the replay, so the last point is the final one.
    pub fn finish(&mut self, core: &Core, now: Nanos) {
        if self.samples.last().is_none_or(|last| last.at < now) {
            self.push(core, now);
        }
    }

    fn push(&mut self, core: &Core, now: Nanos) {
        if self.samples.len() == self.cap {
            self.merge_pairs();
        }
        let s = self.sample(core, now);
        self.samples.push(s);
    }

    fn sample(&mut self, core: &Core, now: Nanos) -> Sample {
        let p = core.params();
        self.precision = (p.price_precision, p.qty_precision);
        let a = core.account();
        let (bid, ask) = (core.book().best_bid(), core.book().best_ask());
        let resting = |side: Side| {
            core.orders()
                .live()
                .filter(move |o| o.req.side == side)
                .filter(|o| o.state.is_resting())
                .map(|o| o.req.price)
        };
        let ticks = core.stats().ticks;
        let counts = core.pause_counts();
        let mut held = [0; Rule::COUNT];
        for (h, (now_n, then)) in held.iter_mut().zip(counts.iter().zip(&self.held_then)) {
            *h = now_n - then;
        }
        self.held_then = *counts;
        let s = Sample {
            at: now,
            bid: bid.map(|l| l.price),
            ask: ask.map(|l| l.price),
            micro: core.signals().micro_f64(),
            our_bid: resting(Side::Buy).max(),
            our_ask: resting(Side::Sell).min(),
            equity: a.equity,
            peak: a.peak_equity,
            position: a.position,
            ticks: ticks - self.ticks_then,
            held,
        };
        self.ticks_then = ticks;
        s
    }

    /// Neighbours become one point: the later one's state, both intervals' counts.
    fn merge_pairs(&mut self) {
        let merged: Vec<Sample> = self
            .samples
            .chunks(2)
            .map(|pair| {
                let mut s = pair[pair.len() - 1];
                if pair.len() == 2 {
                    s.ticks += pair[0].ticks;
                    for (h, e) in s.held.iter_mut().zip(&pair[0].held) {
                        *h += e;
                    }
                }
                s
            })
            .collect();
        self.samples.clear();
        self.samples.extend(merged);
        self.spacing = self.spacing.saturating_mul(2);
    }

    /// The fills booked since the last look, from the account's recent history (newest first).
    fn take_fills(&mut self, a: &Accounting) {
        let new = a.fill_count() - self.fills_seen;
        self.fills_seen = a.fill_count();
        let listed = new.min(HISTORY_LEN as u64) as usize;
        // More fills in one event than the history holds: the oldest of them are only counted.
        self.fills_unlisted += new - listed as u64;
        let mut fresh: Vec<FillRecord> = a.history().take(listed).copied().collect();
        fresh.reverse();
        for f in fresh {
            if self.fills.len() < FILLS {
                self.fills.push(f);
            } else {
                self.fills_unlisted += 1;
            }
        }
    }

    fn take_trip(&mut self, a: &Accounting) {
        let new = a.round_trips - self.trips_seen;
        self.trips_seen = a.round_trips;
        // Only the last one closed is known: others closed in the same event are counted.
        self.trips_unlisted += new - 1;
        match a.last_trip {
            Some(t) if self.trips.len() < TRIPS => self.trips.push(t),
            _ => self.trips_unlisted += 1,
        }
    }

    /// The trace as the report's data: points as columns aligned on `t` (seconds since the
    /// epoch), prices in quote currency, position in base, drawdown in percent of the peak,
    /// `held` the share of each rule's ticks (rules that never held quoting are left out).
    #[must_use]
    pub fn to_json(&self) -> Value {
        let (pp, qp) = self.precision;
        let cash = |c: Cash| round6(c.to_f64(pp + qp));
        let px = |p: Option<Price>| p.map(|p| p.to_f64(pp));
        let col = |f: &dyn Fn(&Sample) -> Option<f64>| -> Vec<Option<f64>> {
            self.samples.iter().map(|s| f(s).map(round6)).collect()
        };
        let mut held = serde_json::Map::new();
        for r in Rule::ALL {
            let i = r as usize;
            if self.samples.iter().all(|s| s.held[i] == 0) {
                continue;
            }
            let share: Vec<f64> = self
                .samples
                .iter()
                .map(|s| {
                    if s.ticks == 0 {
                        0.0
                    } else {
                        // A rule can also count outside a tick (a frame the book refused).
                        round6((s.held[i] as f64 / s.ticks as f64).min(1.0))
                    }
                })
                .collect();
            held.insert(r.name().to_string(), json!(share));
        }
        json!({
            "spacing_s": self.spacing as f64 / 1e9,
            "points": {
                "t": self.samples.iter().map(|s| secs(s.at)).collect::<Vec<_>>(),
                "bid": col(&|s| px(s.bid)),
                "ask": col(&|s| px(s.ask)),
                "microprice": col(&|s| s.micro),
                "our_bid": col(&|s| px(s.our_bid)),
                "our_ask": col(&|s| px(s.our_ask)),
                "equity": col(&|s| Some(cash(s.equity))),
                "drawdown_pct": col(&|s| Some(drawdown_pct(s.equity, s.peak))),
                "position": col(&|s| Some(signed_qty(s.position, qp))),
            },
            "held": held,
            "fills": self.fills.iter().map(|f| json!({
                "t": secs(f.ts),
                "order_id": f.cl_id,
                "side": f.side.as_str(),
                "price": round6(f.price.to_f64(pp)),
                "qty": f.qty.to_f64(qp),
                "fee": cash(f.fee),
                "purpose": f.purpose.name(),
            })).collect::<Vec<_>>(),
            "fills_unlisted": self.fills_unlisted,
            "trips": self.trips.iter().map(|t| json!({
                "opened": secs(t.opened_at),
                "closed": secs(t.closed_at),
                "gross": cash(t.gross),
                "fees": cash(t.fees),
                "net": cash(Cash(t.gross.0 - t.fees.0)),
            })).collect::<Vec<_>>(),
            "trips_unlisted": self.trips_unlisted,
        })
    }
}

/// How far equity is below its peak, percent of the peak.
fn drawdown_pct(equity: Cash, peak: Cash) -> f64 {
    if peak.0 <= 0 {
        return 0.0;
    }
    ((peak.0 - equity.0).max(0) as f64) * 100.0 / peak.0 as f64
}

fn signed_qty(lots: i64, qp: u8) -> f64 {
    let q = Qty(lots.unsigned_abs()).to_f64(qp);
    if lots < 0 { -q } else { q }
}

/// Seconds since the epoch, to the millisecond.
fn secs(at: Nanos) -> f64 {
    (at / MS) as f64 / 1e3
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests;
