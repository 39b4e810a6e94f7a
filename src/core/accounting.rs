//! Position, cash, PnL, fees, round trips and drawdown, in exact integers.
//!
//! The cost basis of the open position is kept as a total ([`Cash`]), not as an average
//! price: reducing the position removes a proportional share of it and the remainder stays,
//! so rounding never accumulates and a position that returns to zero leaves no residue.
//! A fill that crosses zero (long → short) is split: the closing part ends the old round
//! trip, the rest opens a new one at the fill price, and the fee is split in proportion.

use crate::core::event::{Purpose, Side};
use crate::core::money::{Cash, FINE, FinePrice, Price, Qty};
use crate::core::orders::FillDelta;
use crate::core::time::Nanos;

/// Fills kept for the trade history (the dashboard shows the last 20).
pub const HISTORY_LEN: usize = 50;

/// One booked fill, for the trade history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FillRecord {
    /// When it was booked.
    pub ts: Nanos,
    /// Our order id.
    pub cl_id: u64,
    /// Side.
    pub side: Side,
    /// Quantity.
    pub qty: Qty,
    /// Average price of this fill (rounded to the price unit for display).
    pub price: Price,
    /// Fee paid.
    pub fee: Cash,
    /// Realised PnL of this fill (before fees), zero for position-increasing fills.
    pub realised: Cash,
    /// Entry, exit or forced exit.
    pub purpose: Purpose,
}

/// The open round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trip {
    /// When the position left zero.
    pub opened_at: Nanos,
    /// Realised PnL so far (before fees).
    pub gross: Cash,
    /// Fees so far (both sides).
    pub fees: Cash,
}

/// A round trip that has closed: from the position leaving zero to its return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosedTrip {
    /// When the position left zero.
    pub opened_at: Nanos,
    /// When it was back at zero.
    pub closed_at: Nanos,
    /// Realised PnL before fees.
    pub gross: Cash,
    /// Fees of both sides.
    pub fees: Cash,
}

/// The exchange's balances as last reported, with the bot's own cash and position when they
/// came (live only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reported {
    /// Quote balance of the account.
    pub quote: Cash,
    /// Base balance of the account.
    pub base: Qty,
    /// The bot's own cash when the report came.
    pub cash_then: Cash,
    /// The bot's own position when the report came.
    pub position_then: i64,
}

/// The account as the core sees it. In live mode it is the bot's own part of the exchange
/// account: the position is what its own fills made it (base balance − baseline), the cash is
/// its budget plus what its fills moved; the exchange's balances are a check, never a source.
#[derive(Debug, Clone)]
pub struct Accounting {
    /// Signed position in lots (long > 0): the bot's own, from its fills only.
    pub position: i64,
    /// Live: base units of the account that are not the bot's (never sold).
    pub baseline: Qty,
    /// Live: the exchange's last balances this run.
    pub reported: Option<Reported>,
    /// Live: this run's first balances set the baseline and the cash.
    pub funded: bool,
    /// Start and peak equity were set from a mark (or restored).
    pub anchored: bool,
    /// Signed cost basis of the open position (same sign as `position`).
    pub basis: Cash,
    /// Cash balance (quote).
    pub cash: Cash,
    /// Realised PnL before fees.
    pub realised: Cash,
    /// Fees paid.
    pub fees: Cash,
    /// The open round trip, if any.
    pub trip: Option<Trip>,
    /// The last round trip closed (a backtest report lists each one).
    pub last_trip: Option<ClosedTrip>,
    /// Closed round trips.
    pub round_trips: u64,
    /// Round trips with PnL after both sides' fees > 0.
    pub wins: u64,
    /// The others.
    pub losses: u64,
    /// Highest equity seen.
    pub peak_equity: Cash,
    /// Largest drawdown from a peak, in parts per million of that peak.
    pub max_drawdown_ppm: i64,
    /// Last mark-to-market equity.
    pub equity: Cash,
    /// Equity at start (for PnL since start).
    pub start_equity: Cash,
    /// Base traded this run, both sides, lots.
    pub volume_base: u64,
    /// Quote notional traded this run, both sides (before fees).
    pub volume_quote: Cash,
    history: [Option<FillRecord>; HISTORY_LEN],
    history_next: usize,
    fills: u64,
}

impl Accounting {
    /// A flat account holding `cash`.
    #[must_use]
    pub fn new(cash: Cash) -> Accounting {
        Accounting {
            position: 0,
            baseline: Qty(0),
            reported: None,
            funded: false,
            anchored: false,
            basis: Cash(0),
            cash,
            realised: Cash(0),
            fees: Cash(0),
            trip: None,
            last_trip: None,
            round_trips: 0,
            wins: 0,
            losses: 0,
            peak_equity: cash,
            max_drawdown_ppm: 0,
            equity: cash,
            start_equity: cash,
            volume_base: 0,
            volume_quote: Cash(0),
            history: [None; HISTORY_LEN],
            history_next: 0,
            fills: 0,
        }
    }

    /// Average entry price of the open position.
    #[must_use]
    pub fn avg_entry(&self) -> Option<FinePrice> {
        if self.position == 0 {
            return None;
        }
        Some(FinePrice::average(
            Cash(self.basis.0.abs()),
            Qty(self.position.unsigned_abs()),
        ))
    }

    /// Books one fill increment at time `now`.
    pub fn on_fill(&mut self, f: &FillDelta, now: Nanos) {
        let q = i64::try_from(f.qty.0).unwrap_or(i64::MAX);
        let signed = if f.side == Side::Buy { q } else { -q };
        match f.side {
            Side::Buy => self.cash.0 -= f.cost.0 + f.fee.0,
            Side::Sell => self.cash.0 += f.cost.0 - f.fee.0,
        }
        self.fees.0 += f.fee.0;
        self.volume_base = self.volume_base.saturating_add(f.qty.0);
        self.volume_quote.0 += f.cost.0;
        let mut realised_here = Cash(0);
        if self.position == 0 || (self.position > 0) == (signed > 0) {
            self.add(signed, f.cost, f.fee, now);
        } else {
            let pos_abs = i128::from(self.position.unsigned_abs());
            let close = i128::from(q).min(pos_abs);
            let all = i128::from(q);
            let close_cost = f.cost.0 * close / all;
            let close_fee = f.fee.0 * close / all;
            let basis_part = if close == pos_abs {
                self.basis.0
            } else {
                self.basis.0 * close / pos_abs
            };
            // Long: sold for close_cost what cost basis_part. Short: bought back.
            let pnl = if self.position > 0 {
                close_cost - basis_part
            } else {
                -basis_part - close_cost
            };
            realised_here = Cash(pnl);
            self.realised.0 += pnl;
            self.basis.0 -= basis_part;
            let close_i64 = close as i64;
            self.position += if signed > 0 { close_i64 } else { -close_i64 };
            if let Some(t) = &mut self.trip {
                t.gross.0 += pnl;
                t.fees.0 += close_fee;
            }
            if self.position == 0 {
                self.basis = Cash(0);
                self.close_trip(now);
                let rest = all - close;
                if rest > 0 {
                    let rest_signed = if signed > 0 {
                        rest as i64
                    } else {
                        -(rest as i64)
                    };
                    self.add(
                        rest_signed,
                        Cash(f.cost.0 - close_cost),
                        Cash(f.fee.0 - close_fee),
                        now,
                    );
                }
            }
        }
        let price = if f.qty.0 == 0 {
            Price(0)
        } else {
            Price((f.cost.0 / i128::from(f.qty.0)) as i64)
        };
        self.history[self.history_next] = Some(FillRecord {
            ts: now,
            cl_id: f.cl_id,
            side: f.side,
            qty: f.qty,
            price,
            fee: f.fee,
            realised: realised_here,
            purpose: f.purpose,
        });
        self.history_next = (self.history_next + 1) % HISTORY_LEN;
        self.fills += 1;
    }

    fn add(&mut self, signed_qty: i64, cost: Cash, fee: Cash, now: Nanos) {
        if self.position == 0 {
            self.trip = Some(Trip {
                opened_at: now,
                gross: Cash(0),
                fees: Cash(0),
            });
        }
        self.position += signed_qty;
        self.basis.0 += if signed_qty > 0 { cost.0 } else { -cost.0 };
        if let Some(t) = &mut self.trip {
            t.fees.0 += fee.0;
        }
    }

    fn close_trip(&mut self, now: Nanos) {
        if let Some(t) = self.trip.take() {
            self.last_trip = Some(ClosedTrip {
                opened_at: t.opened_at,
                closed_at: now,
                gross: t.gross,
                fees: t.fees,
            });
            self.round_trips += 1;
            if t.gross.0 - t.fees.0 > 0 {
                self.wins += 1;
            } else {
                self.losses += 1;
            }
        }
    }

    /// Marks the position to `mark` and updates equity, peak and max drawdown.
    pub fn mark(&mut self, mark: FinePrice) {
        let value = position_value(self.position, mark);
        self.equity = Cash(self.cash.0 + value);
        if !self.anchored {
            // The bot's own equity at its first mark: what drawdown is measured from.
            self.anchored = true;
            self.start_equity = self.equity;
            self.peak_equity = self.equity;
        }
        if self.equity > self.peak_equity {
            self.peak_equity = self.equity;
        }
        // Divide only when the record may move (a multiply decides): this runs every tick.
        let (peak, dd) = (self.peak_equity.0, self.peak_equity.0 - self.equity.0);
        if peak > 0 && dd * 1_000_000 >= i128::from(self.max_drawdown_ppm + 1) * peak {
            self.max_drawdown_ppm = (dd * 1_000_000 / peak) as i64;
        }
    }

    /// Current drawdown from peak in ppm.
    #[must_use]
    pub fn drawdown_ppm(&self) -> i64 {
        if self.peak_equity.0 <= 0 {
            return 0;
        }
        ((self.peak_equity.0 - self.equity.0) * 1_000_000 / self.peak_equity.0) as i64
    }

    /// Whether the drawdown from peak has reached `ppm` (`drawdown_ppm() >= ppm`, without the
    /// 128-bit divide).
    #[must_use]
    pub fn drawdown_reached(&self, ppm: i64) -> bool {
        let peak = self.peak_equity.0;
        if peak <= 0 {
            return ppm <= 0;
        }
        // floor(dd·10^6 / peak) >= ppm  ⟺  dd·10^6 >= ppm·peak (peak > 0).
        (peak - self.equity.0) * 1_000_000 >= i128::from(ppm) * peak
    }

    /// Unrealised PnL at `mark`.
    #[must_use]
    pub fn unrealised(&self, mark: FinePrice) -> Cash {
        Cash(position_value(self.position, mark) - self.basis.0)
    }

    /// Win rate in [0, 1] (0 before any round trip).
    #[must_use]
    pub fn win_rate(&self) -> f64 {
        if self.round_trips == 0 {
            0.0
        } else {
            self.wins as f64 / self.round_trips as f64
        }
    }

    /// Number of fills booked.
    #[must_use]
    pub fn fill_count(&self) -> u64 {
        self.fills
    }

    /// The last fills, newest first (at most [`HISTORY_LEN`]).
    pub fn history(&self) -> impl Iterator<Item = &FillRecord> + '_ {
        (1..=HISTORY_LEN).filter_map(move |k| {
            self.history[(self.history_next + HISTORY_LEN - k) % HISTORY_LEN].as_ref()
        })
    }

    /// Live: this run's first balances. The bot's cash becomes what it may commit (`cash`),
    /// and `baseline` the account's base that is not the bot's. Equity is anchored afresh at
    /// the next mark unless a journal restored it.
    pub fn fund(&mut self, baseline: Qty, cash: Cash) {
        self.baseline = baseline;
        self.cash = cash;
        self.funded = true;
    }

    /// Live: records the exchange's balances (a check: nothing the bot owns changes).
    pub fn report(&mut self, quote: Cash, base: Qty) {
        self.reported = Some(Reported {
            quote,
            base,
            cash_then: self.cash,
            position_then: self.position,
        });
    }

    /// Reported base − (baseline + position): at the report (`now = false`) or with the fills
    /// booked since (`now = true`). `None` before any report.
    #[must_use]
    pub fn base_mismatch(&self, now: bool) -> Option<i128> {
        let r = self.reported?;
        let pos = if now { self.position } else { r.position_then };
        Some(i128::from(r.base.0) - i128::from(self.baseline.0) - i128::from(pos))
    }

    /// Quote the bot may spend: its own cash, never more than the account has (the last
    /// report, moved by the bot's fills since).
    #[must_use]
    pub fn spendable(&self) -> Cash {
        match self.reported {
            Some(r) => Cash(self.cash.0.min(r.quote.0 + self.cash.0 - r.cash_then.0)),
            None => self.cash,
        }
    }

    /// Base the bot may sell: its own position, never reaching into the baseline (the last
    /// report, moved by the bot's fills since). May be negative (paper short).
    #[must_use]
    pub fn sellable(&self) -> i64 {
        match self.reported {
            Some(r) => {
                let above = i128::from(r.base.0) - i128::from(self.baseline.0)
                    + i128::from(self.position)
                    - i128::from(r.position_then);
                i64::try_from(above.min(i128::from(self.position))).unwrap_or(i64::MIN)
            }
            None => self.position,
        }
    }

    /// Puts back a trade history (newest first) and fill count from a journal snapshot.
    pub fn restore_history(&mut self, newest_first: &[FillRecord], fills: u64) {
        self.history = [None; HISTORY_LEN];
        self.history_next = 0;
        for r in newest_first.iter().take(HISTORY_LEN).rev() {
            self.history[self.history_next] = Some(*r);
            self.history_next = (self.history_next + 1) % HISTORY_LEN;
        }
        self.fills = fills;
    }

    /// Restarts the hold clock of the open round trip (a position grown out of dust: the time
    /// stop counts from when it became tradable).
    pub fn restart_hold(&mut self, now: Nanos) {
        if let Some(t) = &mut self.trip {
            t.opened_at = now;
        }
    }
}

/// `position × mark / FINE` truncated toward zero, as the `i128` expression gives it, but in
/// 64-bit arithmetic whenever it fits (a 128-bit divide is a slow library call and this runs
/// on every tick). The mark is split into whole units and a fraction below one unit.
fn position_value(position: i64, mark: FinePrice) -> i128 {
    const F: i64 = FINE as i64;
    if let Ok(m) = i64::try_from(mark.0)
        && m >= 0
        && let (Some(a), Some(b)) = (position.checked_mul(m / F), position.checked_mul(m % F))
    {
        // Both terms have the sign of the position, so truncating the fraction alone equals
        // truncating the sum.
        return i128::from(a) + i128::from(b / F);
    }
    i128::from(position) * mark.0 / FINE
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn position_value_equals_the_i128_expression(position in proptest::prelude::any::<i64>(),
                                                     mark in 0i128..(1i128 << 62)) {
            let m = FinePrice(mark);
            proptest::prop_assert_eq!(position_value(position, m),
                                      i128::from(position) * mark / FINE);
        }
    }

    // Price precision 1, qty precision 8 → cash units 1e-9 USD.
    fn fill(side: Side, qty_lots: u64, price_units: i64, fee: i128) -> FillDelta {
        FillDelta {
            cl_id: 1,
            side,
            purpose: Purpose::Entry,
            qty: Qty(qty_lots),
            cost: Cash::notional(Price(price_units), Qty(qty_lots)),
            fee: Cash(fee),
        }
    }

    #[test]
    fn average_cost_reweights_and_reduction_realises() {
        let mut a = Accounting::new(Cash(0));
        a.on_fill(&fill(Side::Buy, 100_000, 1_000_000, 0), 0); // 0.001 @ 100000.0
        a.on_fill(&fill(Side::Buy, 100_000, 1_010_000, 0), 1); // 0.001 @ 101000.0
        assert_eq!(a.avg_entry(), Some(Price(1_005_000).fine()));
        a.on_fill(&fill(Side::Sell, 100_000, 1_020_000, 0), 2); // sell half @ 102000.0
        assert_eq!(
            a.avg_entry(),
            Some(Price(1_005_000).fine()),
            "reducing keeps the average"
        );
        // (102000 - 100500) * 0.001 = 1.5 USD = 1.5e9 cash units
        assert_eq!(a.realised, Cash(1_500_000_000));
        assert_eq!(a.position, 100_000);
        assert_eq!(a.round_trips, 0);
    }

    #[test]
    fn fees_reduce_cash_and_decide_wins() {
        let mut a = Accounting::new(Cash(10_000_000_000_000)); // 10000 USD
        a.on_fill(&fill(Side::Buy, 100_000, 1_000_000, 160_000_000), 0); // fee 0.16
        a.on_fill(&fill(Side::Sell, 100_000, 1_000_020, 160_000_000), 1); // +0.002 gross
        assert_eq!(a.round_trips, 1);
        assert_eq!(
            (a.wins, a.losses),
            (0, 1),
            "gross profit smaller than fees is a loss"
        );
        assert_eq!(a.fees, Cash(320_000_000));
        assert_eq!(a.cash, Cash(10_000_000_000_000 + 2_000_000 - 320_000_000));
        a.on_fill(&fill(Side::Buy, 100_000, 1_000_000, 160_000_000), 2);
        a.on_fill(&fill(Side::Sell, 100_000, 1_010_000, 160_000_000), 3); // +1.0 gross
        assert_eq!((a.wins, a.losses), (1, 1));
        assert!((a.win_rate() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn crossing_fill_splits_trip_and_fee() {
        let mut a = Accounting::new(Cash(0));
        a.on_fill(&fill(Side::Buy, 100_000, 1_000_000, 100), 0);
        // Sell 0.003: 0.001 closes the long, 0.002 opens a short at the fill price.
        a.on_fill(&fill(Side::Sell, 300_000, 1_010_000, 300), 5);
        assert_eq!(a.position, -200_000);
        assert_eq!(a.round_trips, 1);
        assert_eq!(a.wins, 1);
        assert_eq!(a.avg_entry(), Some(Price(1_010_000).fine()));
        let t = a.trip.unwrap();
        assert_eq!(
            (t.opened_at, t.fees),
            (5, Cash(200)),
            "the new trip carries its share of the fee"
        );
        // Short covered lower: a win.
        a.on_fill(&fill(Side::Buy, 200_000, 1_000_000, 0), 6);
        assert_eq!(a.position, 0);
        assert_eq!(a.basis, Cash(0));
        assert_eq!(a.realised, Cash(1_000_000_000 + 2_000_000_000));
        assert_eq!(a.round_trips, 2);
    }

    #[test]
    fn equity_peak_and_drawdown() {
        let mut a = Accounting::new(Cash(1_000));
        a.on_fill(&fill(Side::Buy, 1, 500, 0), 0); // cash 500, position 1 lot
        a.mark(Price(700).fine());
        assert_eq!(a.equity, Cash(1_200));
        assert_eq!(a.peak_equity, Cash(1_200));
        a.mark(Price(100).fine());
        assert_eq!(a.equity, Cash(600));
        assert_eq!(a.drawdown_ppm(), 500_000);
        assert_eq!(a.max_drawdown_ppm, 500_000);
        assert_eq!(a.unrealised(Price(100).fine()), Cash(-400));
    }

    #[test]
    fn history_keeps_the_last_fifty_newest_first() {
        let mut a = Accounting::new(Cash(0));
        for i in 0..60 {
            let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
            a.on_fill(&fill(side, 1, 100, 0), i);
        }
        let ts: Vec<_> = a.history().map(|r| r.ts).collect();
        assert_eq!(ts.len(), HISTORY_LEN);
        assert_eq!(ts[0], 59);
        assert_eq!(*ts.last().unwrap(), 10);
    }
}
