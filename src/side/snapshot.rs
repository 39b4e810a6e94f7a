//! The journal's snapshot line: the core's restorable state ([`CoreSnapshot`]) as JSON, so a
//! compacted journal starts from it instead of from every record since the first run.
//!
//! Amounts are integers in the instrument's units (cash as a decimal string of its integer,
//! since JSON numbers cannot hold an `i128`), tagged with the precisions they were written at:
//! exact, and refused at another precision rather than misread.

use serde::{Deserialize, Serialize};

use crate::core::accounting::{Accounting, FillRecord, Trip};
use crate::core::engine::CoreSnapshot;
use crate::core::event::{OrderRequest, Purpose, Side};
use crate::core::money::{Cash, Precision, Price, Qty};
use crate::core::orders::{MAX_ORDERS, Order, OrderState};

/// Why a snapshot line cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Not the snapshot's shape.
    #[error("snapshot: {0}")]
    Shape(String),
    /// Written at other decimals than the instrument's now.
    #[error("snapshot written at price/qty precision {0}/{1}, the instrument is at {2}/{3}")]
    Precision(u8, u8, u8, u8),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    price_precision: u8,
    qty_precision: u8,
    position: i64,
    basis: String,
    cash: String,
    realised: String,
    fees: String,
    round_trips: u64,
    wins: u64,
    losses: u64,
    trip: Option<(i64, String, String)>,
    start_equity: String,
    peak_equity: String,
    equity: String,
    max_drawdown_ppm: i64,
    anchored: bool,
    baseline: u64,
    funded: bool,
    fills: u64,
    next_id: u64,
    history: Vec<Fill>,
    open: Vec<Open>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fill {
    ts: i64,
    cl_id: u64,
    buy: bool,
    qty: u64,
    price: i64,
    fee: String,
    realised: String,
    purpose: u8,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Open {
    cl_id: u64,
    buy: bool,
    price: i64,
    qty: u64,
    post_only: bool,
    ioc: bool,
    purpose: u8,
    state: u8,
    filled: u64,
    cum_cost: String,
    cum_fee: String,
    placed_at: i64,
}

const PURPOSES: [Purpose; 3] = [Purpose::Entry, Purpose::Exit, Purpose::ForceExit];
const STATES: [OrderState; 7] = [
    OrderState::PendingNew,
    OrderState::Open,
    OrderState::PartiallyFilled,
    OrderState::PendingCancel,
    OrderState::Filled,
    OrderState::Cancelled,
    OrderState::Rejected,
];

fn index<T: PartialEq>(table: &[T], v: &T) -> u8 {
    table.iter().position(|x| x == v).unwrap_or(0) as u8
}

fn pick<T: Copy>(table: &[T], i: u8, what: &str) -> Result<T, SnapshotError> {
    table
        .get(usize::from(i))
        .copied()
        .ok_or_else(|| SnapshotError::Shape(format!("unknown {what} {i}")))
}

fn text(c: Cash) -> String {
    c.0.to_string()
}

fn cash(s: &str) -> Result<Cash, SnapshotError> {
    s.parse::<i128>()
        .map(Cash)
        .map_err(|e| SnapshotError::Shape(format!("cash {s:?}: {e}")))
}

/// The snapshot as a JSON value (the `state` of a `snapshot` journal line).
#[must_use]
pub fn to_json(s: &CoreSnapshot, p: Precision) -> serde_json::Value {
    let a = &s.acct;
    let state = State {
        price_precision: p.price,
        qty_precision: p.qty,
        position: a.position,
        basis: text(a.basis),
        cash: text(a.cash),
        realised: text(a.realised),
        fees: text(a.fees),
        round_trips: a.round_trips,
        wins: a.wins,
        losses: a.losses,
        trip: a.trip.map(|t| (t.opened_at, text(t.gross), text(t.fees))),
        start_equity: text(a.start_equity),
        peak_equity: text(a.peak_equity),
        equity: text(a.equity),
        max_drawdown_ppm: a.max_drawdown_ppm,
        anchored: a.anchored,
        baseline: a.baseline.0,
        funded: a.funded,
        fills: a.fill_count(),
        next_id: s.next_id,
        history: a
            .history()
            .map(|f| Fill {
                ts: f.ts,
                cl_id: f.cl_id,
                buy: f.side == Side::Buy,
                qty: f.qty.0,
                price: f.price.0,
                fee: text(f.fee),
                realised: text(f.realised),
                purpose: index(&PURPOSES, &f.purpose),
            })
            .collect(),
        open: s
            .open
            .iter()
            .flatten()
            .map(|o| Open {
                cl_id: o.req.cl_id,
                buy: o.req.side == Side::Buy,
                price: o.req.price.0,
                qty: o.req.qty.0,
                post_only: o.req.post_only,
                ioc: o.req.ioc,
                purpose: index(&PURPOSES, &o.req.purpose),
                state: index(&STATES, &o.state),
                filled: o.filled.0,
                cum_cost: text(o.cum_cost),
                cum_fee: text(o.cum_fee),
                placed_at: o.placed_at,
            })
            .collect(),
    };
    serde_json::to_value(state).unwrap_or_default()
}

fn side(buy: bool) -> Side {
    if buy { Side::Buy } else { Side::Sell }
}

/// Reads a snapshot back at the instrument's precision `p`.
///
/// # Errors
/// A value of another shape, or written at another precision.
pub fn from_json(v: &serde_json::Value, p: Precision) -> Result<CoreSnapshot, SnapshotError> {
    let s: State =
        serde_json::from_value(v.clone()).map_err(|e| SnapshotError::Shape(e.to_string()))?;
    if (s.price_precision, s.qty_precision) != (p.price, p.qty) {
        return Err(SnapshotError::Precision(
            s.price_precision,
            s.qty_precision,
            p.price,
            p.qty,
        ));
    }
    let mut a = Accounting::new(cash(&s.cash)?);
    a.position = s.position;
    a.basis = cash(&s.basis)?;
    a.realised = cash(&s.realised)?;
    a.fees = cash(&s.fees)?;
    a.round_trips = s.round_trips;
    a.wins = s.wins;
    a.losses = s.losses;
    a.trip = match &s.trip {
        Some((opened_at, gross, fees)) => Some(Trip {
            opened_at: *opened_at,
            gross: cash(gross)?,
            fees: cash(fees)?,
        }),
        None => None,
    };
    a.start_equity = cash(&s.start_equity)?;
    a.peak_equity = cash(&s.peak_equity)?;
    a.equity = cash(&s.equity)?;
    a.max_drawdown_ppm = s.max_drawdown_ppm;
    a.anchored = s.anchored;
    a.baseline = Qty(s.baseline);
    a.funded = s.funded;
    let mut history = Vec::with_capacity(s.history.len());
    for f in &s.history {
        history.push(FillRecord {
            ts: f.ts,
            cl_id: f.cl_id,
            side: side(f.buy),
            qty: Qty(f.qty),
            price: Price(f.price),
            fee: cash(&f.fee)?,
            realised: cash(&f.realised)?,
            purpose: pick(&PURPOSES, f.purpose, "purpose")?,
        });
    }
    a.restore_history(&history, s.fills);
    if s.open.len() > MAX_ORDERS {
        return Err(SnapshotError::Shape(format!(
            "{} open orders",
            s.open.len()
        )));
    }
    let mut open = [None; MAX_ORDERS];
    for (slot, o) in open.iter_mut().zip(&s.open) {
        *slot = Some(Order {
            req: OrderRequest {
                cl_id: o.cl_id,
                side: side(o.buy),
                price: Price(o.price),
                qty: Qty(o.qty),
                post_only: o.post_only,
                ioc: o.ioc,
                purpose: pick(&PURPOSES, o.purpose, "purpose")?,
            },
            state: pick(&STATES, o.state, "state")?,
            filled: Qty(o.filled),
            cum_cost: cash(&o.cum_cost)?,
            cum_fee: cash(&o.cum_fee)?,
            placed_at: o.placed_at,
        });
    }
    Ok(CoreSnapshot {
        acct: a,
        open,
        next_id: s.next_id,
    })
}
