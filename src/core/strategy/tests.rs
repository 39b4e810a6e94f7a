//! Every rule of the seed strategy, shown acting and shown not acting.
//!
//! Market: BTC/USD, price precision 1, qty precision 8; default config unless a test says
//! otherwise. Prices in the comments are in USD.

use super::*;
use crate::core::accounting::Accounting;
use crate::core::book::ChecksumFormat;
use crate::core::event::OrderRequest;
use crate::core::orders::{FillDelta, OrderManager};
use crate::core::signals::Signals;
use crate::core::time::SEC;

const USD: i128 = 1_000_000_000; // cash units per USD at precision 1 + 8

struct World {
    p: Params,
    book: Book,
    sig: Signals,
    acct: Accounting,
    orders: OrderManager,
    now: Nanos,
    latched: Option<Rule>,
}

fn usd(x: f64) -> i64 {
    (x * 10.0).round() as i64
}

impl World {
    /// Book 59999.9 / 60000.1 with equal sizes: microprice exactly 60000.0; volatility 30 bps.
    fn new() -> World {
        let p = Params::new(&Settings::default(), None).unwrap();
        let mut w = World {
            book: Book::new(10, 1, 8, ChecksumFormat::precision(1, 8)),
            sig: Signals::new(p.ema_window, p.vol_window_ns, 1),
            acct: Accounting::new(Cash(10_000 * USD)),
            orders: OrderManager::new(1),
            now: 1_000 * SEC,
            latched: None,
            p,
        };
        w.set_book(59_999.9, 60_000.1);
        w.set_vol(30.0);
        w
    }

    fn set_book(&mut self, bid: f64, ask: f64) {
        self.set_levels((bid, 100_000_000), (ask, 100_000_000));
    }

    /// One level a side: (USD, lots).
    fn set_levels(&mut self, bid: (f64, u64), ask: (f64, u64)) {
        crate::core::book::set_levels(
            &mut self.book,
            &[(usd(bid.0), bid.1)],
            &[(usd(ask.0), ask.1)],
        );
        self.sig.micro = crate::core::signals::microprice(&self.book);
    }

    /// Makes the volatility signal read `bps`.
    fn set_vol(&mut self, bps: f64) {
        let mut s = Signals::new(self.p.ema_window, self.p.vol_window_ns, 1);
        let r = (bps / 1e4) / (1.0 - bps / 2e4);
        s.vol.update(self.now - 2 * SEC, 1.0);
        s.vol.update(self.now - SEC, 1.0 + r);
        s.micro = self.sig.micro;
        s.momentum_bps = self.sig.momentum_bps;
        self.sig = s;
    }

    /// Opens a position of `lots` (signed) at `price` USD, `ago` before now.
    fn position(&mut self, lots: i64, price: f64, ago: Nanos) {
        let side = if lots > 0 { Side::Buy } else { Side::Sell };
        let qty = Qty(lots.unsigned_abs());
        let f = FillDelta {
            cl_id: 0,
            side,
            purpose: Purpose::Entry,
            qty,
            cost: Cash::notional(Price(usd(price)), qty),
            fee: Cash(0),
        };
        self.acct.on_fill(&f, self.now - ago);
    }

    fn decide(&self) -> Decision {
        decide(
            &self.p,
            &Inputs {
                now: self.now,
                book: &self.book,
                signals: &self.sig,
                acct: &self.acct,
                orders: &self.orders,
                latched: self.latched,
                no_entries: None,
            },
        )
    }
}

fn quote(a: SideAction) -> Quote {
    match a {
        SideAction::Quote(q) => q,
        other => panic!("expected a quote, got {other:?}"),
    }
}

#[test]
fn entry_offsets_around_the_microprice() {
    let w = World::new();
    let d = w.decide();
    // 60000 × (1 ∓ 20 bps) = 59880.0 / 60120.0
    assert_eq!(
        quote(d.buy),
        Quote {
            price: Price(usd(59_880.0)),
            qty: Qty(100_000),
            purpose: Purpose::Entry
        }
    );
    assert_eq!(quote(d.sell).price, Price(usd(60_120.0)));
    assert_eq!(d.blocked, 0);
}

#[test]
fn quotes_are_centred_on_microprice_not_mid() {
    let mut w = World::new();
    // Heavy bid (9 BTC) vs thin ask (1 BTC) at 59999.0 / 60001.0: mid 60000.0, micro 60000.8.
    w.set_levels((59_999.0, 900_000_000), (60_001.0, 100_000_000));
    let d = w.decide();
    // 60000.8 × 0.998 = 59880.7984 → 59880.7 (buy rounds down); × 1.002 = 60120.8016 → 60120.9
    assert_eq!(quote(d.buy).price, Price(usd(59_880.7)));
    assert_eq!(quote(d.sell).price, Price(usd(60_120.9)));
}

#[test]
fn prices_round_to_the_tick_on_the_passive_side() {
    let mut w = World::new();
    w.p.tick = Price(5); // 0.5 USD ticks
    w.set_book(60_000.3, 60_000.5); // micro 60000.4
    let d = w.decide();
    // 60000.4 × 0.998 = 59880.3992 → 59880.0 ; × 1.002 = 60120.4008 → 60120.5
    assert_eq!(quote(d.buy).price, Price(usd(59_880.0)));
    assert_eq!(quote(d.sell).price, Price(usd(60_120.5)));
}

#[test]
fn exit_covers_both_fees_and_profit_from_average_entry() {
    let mut w = World::new();
    w.p.skew_milli = 0;
    w.position(100_000, 60_000.0, SEC);
    let d = w.decide();
    // long: 60000 × 1.0036 = 60216.0
    assert_eq!(
        quote(d.sell),
        Quote {
            price: Price(usd(60_216.0)),
            qty: Qty(100_000),
            purpose: Purpose::Exit
        }
    );
    let mut w = World::new();
    w.p.skew_milli = 0;
    w.position(-100_000, 60_000.0, SEC);
    // short: 60000 × 0.9964 = 59784.0
    assert_eq!(quote(w.decide().buy).price, Price(usd(59_784.0)));
}

#[test]
fn no_churn_only_the_closing_side_while_holding() {
    let mut w = World::new();
    w.position(100_000, 60_000.0, SEC);
    let d = w.decide();
    assert_eq!(d.buy, SideAction::Cancel, "long: never add while leaving");
    assert!(matches!(d.sell, SideAction::Quote(_)));
    let mut w = World::new();
    w.position(-100_000, 60_000.0, SEC);
    let d = w.decide();
    assert_eq!(d.sell, SideAction::Cancel, "short: never add while leaving");
    assert!(matches!(d.buy, SideAction::Quote(_)));
    // Not acting: flat quotes both sides.
    let d = World::new().decide();
    assert!(matches!(
        (d.buy, d.sell),
        (SideAction::Quote(_), SideAction::Quote(_))
    ));
}

#[test]
fn inventory_skew_moves_quotes_against_the_position() {
    let mut w = World::new();
    w.p.exit_offset = Ppm::from_bps(40.0);
    w.position(100_000, 60_000.0, SEC);
    // skew = −0.5 × (0.001 / 0.005) × 20 bps = −2 bps → 60000 × (1 + 40 − 2 bps) = 60228.0
    assert_eq!(w.p.skew(100_000), Ppm(-200));
    assert_eq!(quote(w.decide().sell).price, Price(usd(60_228.0)));
    let mut w = World::new();
    w.p.exit_offset = Ppm::from_bps(40.0);
    w.position(-100_000, 60_000.0, SEC);
    // short: +2 bps → 60000 × (1 − 40 + 2 bps) = 59772.0
    assert_eq!(quote(w.decide().buy).price, Price(usd(59_772.0)));
    // Not acting: flat, or skew_factor 0.
    assert_eq!(w.p.skew(0), Ppm(0));
    let mut w = World::new();
    w.p.exit_offset = Ppm::from_bps(40.0);
    w.p.skew_milli = 0;
    w.position(100_000, 60_000.0, SEC);
    assert_eq!(quote(w.decide().sell).price, Price(usd(60_240.0)));
}

#[test]
fn skew_never_pulls_the_exit_below_both_fees_and_the_profit() {
    // One lot at a time (max_position = order_qty): every position is a full one, skew
    // −0.5 × 20 = −10 bps. Unfloored the exit would be 36 − 10 = 26 bps, below the 32 bps
    // of fees: every round trip a loss. Held at 2 × 16 + 4 = 36 bps.
    for (long, expect) in [(true, 60_216.0), (false, 59_784.0)] {
        let mut w = World::new();
        w.p.max_position = w.p.order_qty;
        let pos = if long { 100_000 } else { -100_000 };
        assert_eq!(w.p.skew(pos), Ppm(if long { -1_000 } else { 1_000 }));
        w.position(pos, 60_000.0, SEC);
        let d = w.decide();
        let q = quote(if long { d.sell } else { d.buy });
        assert_eq!(q.price, Price(usd(expect)), "long {long}");
        // The round trip at that exit, after both maker fees, wins.
        let entry = 60_000.0 * 0.001;
        let exit = expect * 0.001;
        let fees = (entry + exit) * 16e-4;
        let gross = if long { exit - entry } else { entry - exit };
        assert!(gross - fees > 0.0, "long {long}: {gross} - {fees}");
    }
    // Above the floor the skew still acts.
    let mut w = World::new();
    w.p.max_position = w.p.order_qty;
    w.p.exit_offset = Ppm::from_bps(50.0);
    w.position(100_000, 60_000.0, SEC);
    // 50 − 10 = 40 bps → 60240.0
    assert_eq!(quote(w.decide().sell).price, Price(usd(60_240.0)));
}

#[test]
fn momentum_filter() {
    let mut w = World::new();
    w.sig.momentum_bps = 6.0;
    let d = w.decide();
    assert_eq!(d.sell, SideAction::Cancel, "up-move: no sell");
    assert!(matches!(d.buy, SideAction::Quote(_)));
    assert!(d.blocked_by(Rule::MomentumUp));
    w.sig.momentum_bps = -6.0;
    let d = w.decide();
    assert_eq!(d.buy, SideAction::Cancel, "down-move: no buy");
    assert!(matches!(d.sell, SideAction::Quote(_)));
    assert!(d.blocked_by(Rule::MomentumDown));
    // Not acting: inside the threshold, or filter disabled.
    w.sig.momentum_bps = 4.9;
    assert_eq!(w.decide().blocked, 0);
    w.sig.momentum_bps = 6.0;
    w.p.momentum_filter = false;
    assert_eq!(w.decide().blocked, 0);
    // Holding long in an up-move: the exit sell is held back, and a resting exit may stay.
    let mut w = World::new();
    w.position(100_000, 60_000.0, SEC);
    w.sig.momentum_bps = 6.0;
    assert_eq!(w.decide().sell, SideAction::Hold);
}

#[test]
fn volatility_gate_only_enters_in_moving_markets() {
    let mut w = World::new();
    w.set_vol(19.0);
    let d = w.decide();
    assert_eq!((d.buy, d.sell), (SideAction::Cancel, SideAction::Cancel));
    assert!(d.blocked_by(Rule::Volatility));
    w.set_vol(21.0);
    assert_eq!(w.decide().blocked, 0);
    // Exits are not gated by volatility.
    let mut w = World::new();
    w.set_vol(1.0);
    w.position(100_000, 60_000.0, SEC);
    assert!(matches!(w.decide().sell, SideAction::Quote(_)));
}

#[test]
fn spread_filter() {
    let mut w = World::new();
    w.set_book(59_850.0, 60_150.0); // 300 USD ≈ 50.0 bps of 60000
    assert!(
        !w.decide().blocked_by(Rule::Spread),
        "exactly 50 bps is allowed"
    );
    w.set_book(59_840.0, 60_160.0); // ≈ 53 bps
    let d = w.decide();
    assert!(d.blocked_by(Rule::Spread));
    assert_eq!((d.buy, d.sell), (SideAction::Cancel, SideAction::Cancel));
}

#[test]
fn position_limit_counts_orders_still_being_cancelled() {
    let mut w = World::new();
    w.p.max_position = Qty(100_000);
    assert_eq!(w.decide().blocked, 0, "one order fits the limit");
    let r = OrderRequest {
        cl_id: 0,
        side: Side::Buy,
        price: Price(usd(59_000.0)),
        qty: Qty(100_000),
        post_only: true,
        ioc: false,
        purpose: Purpose::Entry,
    };
    let r = w.orders.open(r, w.now).unwrap();
    w.orders.mark_cancel(r.cl_id);
    let d = w.decide();
    assert!(d.blocked_by(Rule::PositionLimit));
    assert_eq!(d.buy, SideAction::Cancel);
    assert!(
        matches!(d.sell, SideAction::Quote(_)),
        "the other side is unaffected"
    );
}

#[test]
fn stop_loss_forces_a_taker_exit_through_the_touch() {
    let mut w = World::new();
    w.position(100_000, 60_000.0, SEC);
    w.set_book(59_869.9, 59_870.1); // micro 59870: −21.7 bps
    let d = w.decide();
    assert_eq!(d.forced_by, Some(Rule::StopLoss));
    // best bid 59869.9 × (1 − 10 bps) = 59810.03 → 59810.1 (rounded up: at most 10 bps through)
    assert_eq!(
        quote(d.sell),
        Quote {
            price: Price(usd(59_810.1)),
            qty: Qty(100_000),
            purpose: Purpose::ForceExit
        }
    );
    // Not acting: −16.7 bps.
    w.set_book(59_899.9, 59_900.1);
    let d = w.decide();
    assert_eq!(d.forced_by, None);
    assert_eq!(quote(d.sell).purpose, Purpose::Exit);
    // Short side mirrored.
    let mut w = World::new();
    w.position(-100_000, 60_000.0, SEC);
    w.set_book(60_129.9, 60_130.1); // +21.7 bps against a short
    let d = w.decide();
    assert_eq!(d.forced_by, Some(Rule::StopLoss));
    // best ask 60130.1 × 1.001 = 60190.2301 → 60190.2 (rounded down)
    assert_eq!(quote(d.buy).price, Price(usd(60_190.2)));
}

#[test]
fn time_stop_forces_exit_after_max_hold() {
    let mut w = World::new();
    w.position(100_000, 60_000.0, 121 * SEC);
    let d = w.decide();
    assert_eq!(d.forced_by, Some(Rule::TimeStop));
    assert_eq!(quote(d.sell).purpose, Purpose::ForceExit);
    let mut w = World::new();
    w.position(100_000, 60_000.0, 119 * SEC);
    assert_eq!(w.decide().forced_by, None);
}

#[test]
fn affordability_paper_and_live() {
    let mut w = World::new();
    w.acct.cash = Cash(59 * USD); // a 0.001 buy at 59880 costs 59.88 + fee
    let d = w.decide();
    assert!(d.blocked_by(Rule::Affordability));
    assert_eq!(d.buy, SideAction::Cancel);
    assert!(matches!(d.sell, SideAction::Quote(_)), "paper may go short");
    w.acct.cash = Cash(60 * USD);
    assert!(matches!(w.decide().buy, SideAction::Quote(_)));
    // Live: a sell needs BTC.
    w.p.live = true;
    let d = w.decide();
    assert_eq!(d.sell, SideAction::Cancel);
    assert!(d.blocked_by(Rule::Affordability));
}

#[test]
fn minimum_size_and_cost() {
    let mut w = World::new();
    w.p.qty_min = Qty(200_000); // 0.002 > order_qty 0.001
    let d = w.decide();
    assert!(d.blocked_by(Rule::MinSize));
    assert_eq!((d.buy, d.sell), (SideAction::Cancel, SideAction::Cancel));
    let mut w = World::new();
    w.p.cost_min = Cash(100 * USD); // 0.001 × 60000 = 60 USD < 100
    assert!(w.decide().blocked_by(Rule::MinSize));
    let mut w = World::new();
    w.p.cost_min = Cash(50 * USD);
    assert_eq!(w.decide().blocked, 0);
}

#[test]
fn post_only_quotes_never_cross_the_touch() {
    let mut w = World::new();
    // Long from far below: the target 60000 × 1.0034 sits under the market (bid 70000).
    w.position(100_000, 60_000.0, SEC);
    w.set_book(69_999.9, 70_000.1);
    let q = quote(w.decide().sell);
    assert_eq!(
        q.price,
        Price(usd(70_000.0)),
        "sell clamped to one tick above the best bid"
    );
}

#[test]
fn decide_is_deterministic() {
    let w = World::new();
    assert_eq!(w.decide(), w.decide());
}

/// A duration too large for nanoseconds means "never": it saturates instead of wrapping to a
/// negative (a wrapped `max_hold_s` would force-exit every position at once).
#[test]
fn huge_durations_saturate_instead_of_wrapping() {
    let s = Settings {
        max_hold_s: 10_000_000_000,
        stale_order_ms: u64::MAX,
        fill_cooldown_ms: 10_000_000_000_000,
        ..Settings::default()
    };
    let p = Params::new(&s, None).unwrap();
    assert_eq!(p.max_hold_ns, i64::MAX);
    assert_eq!(p.stale_order_ns, i64::MAX);
    assert_eq!(p.fill_cooldown_ns, i64::MAX);
    let d = Params::new(&Settings::default(), None).unwrap();
    assert_eq!(d.max_hold_ns, 120 * SEC);
}

#[test]
fn live_a_sell_being_cancelled_keeps_its_base_until_the_cancel_is_confirmed() {
    // The user holds 0.5 BTC (the baseline); the bot owns 0.001 and has its exit resting.
    let mut w = World::new();
    w.p.live = true;
    w.acct.fund(Qty(50_000_000), Cash(10_000 * USD));
    w.position(100_000, 59_990.0, SEC);
    w.acct.report(w.acct.cash, Qty(50_100_000));
    assert!(
        matches!(w.decide().sell, SideAction::Quote(_)),
        "exit allowed"
    );
    let exit = OrderRequest {
        cl_id: 0,
        side: Side::Sell,
        price: Price(usd(60_100.0)),
        qty: Qty(100_000),
        post_only: true,
        ioc: false,
        purpose: Purpose::Exit,
    };
    let exit = w.orders.open(exit, w.now).unwrap();
    w.orders.mark_cancel(exit.cl_id);
    // It may still fill: a second exit now could sell 0.001 of the user's 0.5.
    let d = w.decide();
    assert!(d.blocked_by(Rule::Affordability), "{d:?}");
    assert!(!matches!(d.sell, SideAction::Quote(_)));
    // Nor may a stop: its force exit waits for the cancel (the core places it on the
    // Cancelled event, as the stop-loss tests show).
    w.set_book(59_869.9, 59_870.1);
    let d = w.decide();
    assert_eq!(d.forced_by, Some(Rule::StopLoss));
    assert!(!matches!(d.sell, SideAction::Quote(_)), "{d:?}");
    // Paper has no user's holding to protect: unchanged.
    w.p.live = false;
    assert!(matches!(w.decide().sell, SideAction::Quote(_)));
}
