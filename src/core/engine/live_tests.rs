//! Live-account rules: the bot trades only its own inventory and budget, measures drawdown
//! from its own equity, books each fill once whatever the balances say, latches its stops and
//! requotes calmly. Driven through `handle` with the order events the worker would send.

use super::tests::{Run, USD, cancels, cfg, places, snap};
use super::*;
use crate::core::event::CancelReason;
use crate::core::money::{Cash, Decimal, Price, Qty};
use crate::core::ratecounter::Tier;
use crate::core::time::SEC;

const BTC: u64 = 100_000_000; // lots per BTC at qty precision 8
const LOT: u64 = 100_000; // 0.001 BTC, the default order_qty

fn live(f: impl FnOnce(&mut Settings)) -> Settings {
    cfg(|s| {
        s.live_mode = true;
        f(s);
    })
}

/// Every order the core asked for (placed, or the new half of a replace).
fn sent(v: &[Intent]) -> Vec<OrderRequest> {
    v.iter()
        .filter_map(|i| match i {
            Intent::Place(r) | Intent::Replace { new: r, .. } => Some(*r),
            _ => None,
        })
        .collect()
}

fn alerts(v: &[Intent]) -> Vec<AlertKind> {
    v.iter()
        .filter_map(|i| match i {
            Intent::Alert(a) => Some(a.kind),
            _ => None,
        })
        .collect()
}

impl Run {
    fn order(&mut self, t: Nanos, e: OrderEvent) -> Vec<Intent> {
        self.ev(t, Event::Order(e))
    }

    /// The venue accepts `o` and fills `qty` of it at its limit price (maker fee 16 bps).
    fn fill(&mut self, t: Nanos, o: &OrderRequest, qty: u64) -> Vec<Intent> {
        let mut out = self.order(t, OrderEvent::Accepted { cl_id: o.cl_id });
        let cost = Cash::notional(o.price, Qty(qty));
        out.extend(self.order(
            t,
            OrderEvent::Fill {
                cl_id: o.cl_id,
                cum_qty: Qty(qty),
                cum_cost: cost,
                cum_fee: cost.times_ppm_ceil(crate::core::money::Ppm(1_600)),
            },
        ));
        out
    }

    fn balances(&mut self, t: Nanos, quote_usd: i128, base: u64) -> Vec<Intent> {
        self.order(
            t,
            OrderEvent::Balances {
                quote: Cash(quote_usd * USD),
                base: Qty(base),
            },
        )
    }

    /// Flat → long one lot at 59880.0 (the buy entry filled); the intents of the fill.
    fn go_long(&mut self, t: Nanos) -> Vec<Intent> {
        let out = self.frame(t, &snap(59_999.9, 60_000.1));
        let buy = places(&out)
            .into_iter()
            .find(|o| o.side == Side::Buy)
            .expect("a buy entry");
        let out = self.fill(t + MS, &buy, LOT);
        assert_eq!(self.core.account().position, LOT as i64);
        out
    }
}

#[test]
fn an_account_holding_btc_trades_only_the_bots_own_inventory() {
    // 0.5 BTC of the user's: the baseline. The bot's position starts at zero.
    let mut r = Run::funded(&live(|s| s.fill_cooldown_ms = 0), 10_000, BTC / 2);
    let a = r.core.account();
    assert_eq!((a.position, a.baseline), (0, Qty(BTC / 2)));
    let mut all = Vec::new();
    let out = r.frame(SEC, &snap(59_999.9, 60_000.1));
    all.extend(sent(&out));
    assert_eq!(
        sent(&out).len(),
        1,
        "only the buy: the bot owns no BTC to sell"
    );
    assert_eq!(sent(&out)[0].side, Side::Buy);
    let buy = sent(&out)[0];
    all.extend(sent(&r.fill(SEC + MS, &buy, LOT)));
    // The exit sells the bot's 0.001, never the 0.5.
    let exit = *all.last().unwrap();
    assert_eq!(
        (exit.side, exit.purpose, exit.qty),
        (Side::Sell, Purpose::Exit, Qty(LOT))
    );
    // A 50 bps dip: the stop fires on the bot's own average entry, for the bot's own lot.
    r.order(2 * SEC, OrderEvent::Accepted { cl_id: exit.cl_id });
    all.extend(sent(&r.frame(3 * SEC, &snap(59_579.9, 59_580.1))));
    all.extend(sent(&r.order(
        3 * SEC + MS,
        OrderEvent::Cancelled {
            cl_id: exit.cl_id,
            reason: CancelReason::Requested,
        },
    )));
    let force = *all.last().unwrap();
    assert_eq!((force.purpose, force.qty), (Purpose::ForceExit, Qty(LOT)));
    let sold: u64 = all
        .iter()
        .filter(|o| o.side == Side::Sell)
        .map(|o| o.qty.0)
        .max()
        .unwrap();
    assert_eq!(sold, LOT, "no sell ever larger than the bot's own position");
}

#[test]
fn sells_never_reach_into_the_baseline_even_when_the_balance_says_less() {
    // The bot bought 0.001, but the account shows only the baseline (its BTC went elsewhere):
    // it may sell nothing, not even on a stop.
    let mut r = Run::funded(&live(|s| s.fill_cooldown_ms = 0), 10_000, BTC / 2);
    r.go_long(SEC);
    r.balances(2 * SEC, 9_940, BTC / 2);
    r.order(2 * SEC, OrderEvent::Polled);
    assert_eq!(r.core.account().sellable(), 0);
    let out = r.frame(3 * SEC, &snap(59_579.9, 59_580.1));
    assert!(sent(&out).is_empty(), "{out:?}");
    assert!(
        r.core
            .last_decision()
            .unwrap()
            .blocked_by(Rule::Affordability)
    );
}

#[test]
fn a_small_account_trades_its_own_budget_and_measures_drawdown_from_its_own_equity() {
    // $3 000, not the paper capital of $10 000: quotes go out (with the old peak of 10 000 a
    // 50 % drawdown stop would have fired at once), and equity starts at 3 000.
    let mut r = Run::funded(&live(|s| s.max_drawdown_pct = 50.0), 3_000, 0);
    let out = r.frame(SEC, &snap(59_999.9, 60_000.1));
    assert_eq!(sent(&out).len(), 1);
    let a = r.core.account();
    assert_eq!(
        (a.cash, a.start_equity, a.peak_equity),
        (Cash(3_000 * USD), Cash(3_000 * USD), Cash(3_000 * USD))
    );
    // A 1 % drawdown stop on $3 000 is $30: a long lot losing $20 does not stop, $40 does.
    let s = live(|s| {
        s.max_drawdown_pct = 1.0;
        s.stop_loss_bps = 9_000.0;
        s.on_drawdown = OnDrawdown::Hold;
    });
    let mut r = Run::funded(&s, 3_000, 0);
    r.go_long(SEC);
    r.frame(2 * SEC, &snap(39_879.9, 39_880.1));
    assert_ne!(r.core.state(), TradingState::Stopped, "lost $20 of $3 000");
    let out = r.frame(3 * SEC, &snap(19_879.9, 19_880.1));
    assert!(
        alerts(&out)
            .iter()
            .any(|k| matches!(k, AlertKind::DrawdownStop { .. }))
    );
    assert_eq!(r.core.state(), TradingState::Stopped);
}

#[test]
fn a_quote_budget_caps_what_the_bot_commits() {
    let s = live(|s| s.quote_budget = Some(Decimal::parse_str("50").unwrap()));
    let mut r = Run::funded(&s, 3_000, 0);
    assert_eq!(r.core.account().cash, Cash(50 * USD));
    // A 0.001 BTC buy costs ~$60: over the $50 budget, though the account has $3 000.
    let out = r.frame(SEC, &snap(59_999.9, 60_000.1));
    assert!(sent(&out).is_empty());
    assert!(
        r.core
            .last_decision()
            .unwrap()
            .blocked_by(Rule::Affordability)
    );
    // The budget never exceeds the account: $3 000 budget, $40 account.
    let s = live(|s| s.quote_budget = Some(Decimal::parse_str("3000").unwrap()));
    let r = Run::funded(&s, 40, 0);
    assert_eq!(r.core.account().cash, Cash(40 * USD));
}

#[test]
fn nothing_is_quoted_before_the_accounts_balances_arrive() {
    let mut r = Run::new(&live(|_| {}));
    let out = r.frame(SEC, &snap(59_999.9, 60_000.1));
    assert!(sent(&out).is_empty());
    assert!(
        !r.core.account().anchored,
        "no equity anchored on the paper capital"
    );
    assert_eq!(r.core.state(), TradingState::Paused(Rule::Unfunded));
    let out = r.balances(2 * SEC, 3_000, 0);
    assert_eq!(sent(&out).len(), 1);
    assert_eq!(r.core.account().start_equity, Cash(3_000 * USD));
}

#[test]
fn a_fill_the_balance_shows_first_is_booked_exactly_once() {
    let mut r = Run::funded(&live(|_| {}), 10_000, 0);
    let out = r.frame(SEC, &snap(59_999.9, 60_000.1));
    let buy = places(&out)[0];
    r.order(SEC, OrderEvent::Accepted { cl_id: buy.cl_id });
    // The balance refresh lands between the fill and the poll that reports it.
    let out = r.balances(2 * SEC, 9_940, LOT);
    assert_eq!(
        r.core.account().position,
        0,
        "a balance never moves the position"
    );
    assert!(alerts(&out).is_empty());
    // The poll books it; the position now agrees with the balance: no drift.
    let cost = Cash::notional(buy.price, Qty(LOT));
    r.order(
        3 * SEC,
        OrderEvent::Fill {
            cl_id: buy.cl_id,
            cum_qty: Qty(LOT),
            cum_cost: cost,
            cum_fee: Cash(0),
        },
    );
    let out = r.order(3 * SEC, OrderEvent::Polled);
    assert!(alerts(&out).is_empty(), "{out:?}");
    assert_eq!(r.core.account().position, LOT as i64);
    // A later refresh that agrees changes nothing; the poll repeating the fill books nothing.
    r.balances(4 * SEC, 9_940, LOT);
    r.order(
        5 * SEC,
        OrderEvent::Fill {
            cl_id: buy.cl_id,
            cum_qty: Qty(LOT),
            cum_cost: cost,
            cum_fee: Cash(0),
        },
    );
    assert_eq!(r.core.account().position, LOT as i64);
    assert_eq!(r.core.account().fill_count(), 1);
}

#[test]
fn a_difference_that_outlives_a_poll_is_a_drift_that_pauses_entries_until_it_agrees() {
    let mut r = Run::funded(&live(|_| {}), 10_000, 0);
    r.frame(SEC, &snap(59_999.9, 60_000.1));
    // 0.002 BTC appear that no fill explains.
    r.balances(2 * SEC, 10_000, 2 * LOT);
    let out = r.order(3 * SEC, OrderEvent::Polled);
    assert!(alerts(&out).contains(&AlertKind::PositionDrift {
        reported: Qty(2 * LOT),
        expected: 0
    }));
    assert!(out.contains(&Intent::CheckBalances));
    // The resting buy entry is cancelled and no new entry goes out.
    let cancelled: Vec<_> = out
        .iter()
        .filter_map(|i| match i {
            Intent::Cancel { cl_id } => Some(*cl_id),
            _ => None,
        })
        .collect();
    assert_eq!(cancelled.len(), 1);
    let reason = CancelReason::Requested;
    let cl_id = cancelled[0];
    let out = r.order(3 * SEC + MS, OrderEvent::Cancelled { cl_id, reason });
    assert!(sent(&out).is_empty());
    assert_eq!(r.core.state(), TradingState::Paused(Rule::Drift));
    assert_eq!(
        r.core.account().position,
        0,
        "the position is still the bot's own"
    );
    // Once per drift: the next poll asks for balances again but does not alert again.
    let out = r.order(4 * SEC, OrderEvent::Polled);
    assert!(alerts(&out).is_empty());
    assert!(out.contains(&Intent::CheckBalances));
    // The balance agrees again (the user moved them back): entries resume.
    let out = r.balances(5 * SEC, 10_000, 0);
    assert!(alerts(&out).contains(&AlertKind::DriftResolved));
    assert_eq!(sent(&out).len(), 1);
}

#[test]
fn a_latched_stop_sends_one_force_exit_per_attempt_until_flat() {
    let s = live(|s| {
        s.fill_cooldown_ms = 0;
        s.momentum_filter_enabled = false;
    });
    let mut r = Run::funded(&s, 10_000, 0);
    let exit = sent(&r.go_long(SEC))[0];
    r.order(SEC + 3 * MS, OrderEvent::Accepted { cl_id: exit.cl_id });
    // Below avg × (1 − 20 bps) = 59760.2: the stop fires, the passive exit is cancelled first.
    let out = r.frame(2 * SEC, &snap(59_699.9, 59_700.1));
    assert_eq!(cancels(&out), 1);
    let mut forced = sent(&r.order(
        2 * SEC + MS,
        OrderEvent::Cancelled {
            cl_id: exit.cl_id,
            reason: CancelReason::Requested,
        },
    ));
    let mut t = 2 * SEC + 2 * MS;
    // The microprice hovers around the stop: the stop stays latched, so every attempt is a
    // force exit (IOC), one at a time, and never a passive exit in between.
    for k in 0..10 {
        assert_eq!(forced.len(), 1, "attempt {k}");
        let f = forced[0];
        assert_eq!(
            (f.purpose, f.ioc, f.qty),
            (Purpose::ForceExit, true, Qty(LOT))
        );
        let (bid, ask) = if k % 2 == 0 {
            (59_799.9, 59_800.1) // back above the stop
        } else {
            (59_699.9, 59_700.1)
        };
        let out = r.frame(t, &snap(bid, ask));
        assert!(sent(&out).is_empty(), "one force exit in flight at a time");
        t += MS;
        forced = sent(&r.order(
            t,
            OrderEvent::Cancelled {
                cl_id: f.cl_id,
                reason: CancelReason::Expired,
            },
        ));
        t += MS;
    }
    // The last attempt fills: flat, the latch ends and the bot quotes entries again.
    let out = r.fill(t, &forced[0], LOT);
    assert_eq!(r.core.account().position, 0);
    assert!(sent(&out).iter().all(|o| o.purpose == Purpose::Entry));
    assert!(!sent(&out).is_empty());
}

#[test]
fn an_exit_is_replaced_only_when_its_target_moved_requote_ticks() {
    let s = live(|s| {
        s.fill_cooldown_ms = 0;
        s.momentum_filter_enabled = false;
    });
    let mut r = Run::funded(&s, 10_000, 0);
    // The market is above the exit target (59880 × 1.0036 = 60095.6): the exit rests one tick
    // above the bid and would follow it tick by tick.
    let first = sent(&r.go_long(SEC))[0];
    r.order(SEC + 2 * MS, OrderEvent::Accepted { cl_id: first.cl_id });
    let out = r.frame(2 * SEC, &snap(60_200.0, 60_200.2));
    let exit = sent(&out)[0];
    assert_eq!(exit.price, Price(602_001));
    let reason = CancelReason::Requested;
    r.order(
        2 * SEC + MS,
        OrderEvent::Cancelled {
            cl_id: first.cl_id,
            reason,
        },
    );
    r.order(2 * SEC + MS, OrderEvent::Accepted { cl_id: exit.cl_id });
    let mut t = 3 * SEC;
    for ticks in 1..=4 {
        let bid = 60_200.0 + f64::from(ticks) * 0.1;
        let out = r.frame(t, &snap(bid, bid + 0.2));
        assert!(sent(&out).is_empty() && cancels(&out) == 0, "{ticks} ticks");
        t += 10 * MS;
    }
    let out = r.frame(t, &snap(60_200.5, 60_200.7));
    let replace = out
        .iter()
        .find_map(|i| match i {
            Intent::Replace { old, new } => Some((*old, *new)),
            _ => None,
        })
        .expect("five ticks: one replace");
    assert_eq!((replace.0, replace.1.price), (exit.cl_id, Price(602_006)));
}

#[test]
fn requotes_are_decided_within_the_rate_counters_room() {
    // Orders go stale every 500 ms; unchecked that is a requote per side per 500 ms (240 in a
    // minute, each costing 9 on Kraken's Starter counter of 60 decaying 1/s).
    let s = cfg(|s| {
        s.stale_order_ms = 500;
        s.rate_tier = Tier::Starter;
    });
    let mut r = Run::new(&s);
    let mut t = SEC;
    let mut out = r.frame(t, &snap(59_999.9, 60_000.1));
    // Kraken's counter as the venue would see these intents (paper: cancel + add).
    let mut venue = crate::core::ratecounter::TradingCounter::new(Tier::Starter, 0.0);
    let mut placed_at = std::collections::BTreeMap::new();
    let mut highest: f64 = 0.0;
    while t < 61 * SEC {
        for i in &out {
            match i {
                Intent::Place(o) => {
                    placed_at.insert(o.cl_id, t);
                    venue.spend(t, crate::core::ratecounter::ADD_COST);
                }
                Intent::Cancel { cl_id } => {
                    let age = t - placed_at[cl_id];
                    venue.spend(t, crate::core::ratecounter::cancel_cost(age));
                }
                _ => {}
            }
        }
        highest = highest.max(venue.value(t));
        t += 100 * MS;
        out = r.ev(t, Event::Timer);
    }
    let stale = r.core.stats().stale_cancels;
    assert!(highest <= 60.0, "Kraken would refuse: counter {highest}");
    assert!(
        highest <= 41.0,
        "requotes keep a third of the counter free: {highest}"
    );
    assert!(r.core.pause_counts()[Rule::RateRoom as usize] > 0);
    assert!(
        (6..=20).contains(&stale),
        "{stale} requotes in a minute, not 240"
    );
}

#[test]
fn dust_counts_as_flat_alerts_once_and_restarts_the_hold_clock() {
    let s = live(|s| {
        s.fill_cooldown_ms = 0;
        s.stale_order_ms = 600_000;
    });
    let mut r = Run::funded(&s, 10_000, 0);
    let out = r.frame(SEC, &snap(59_999.9, 60_000.1));
    let buy = places(&out)[0];
    // 0.00005 BTC fills (below qty_min 0.0001), the rest is cancelled.
    let out = r.fill(SEC + MS, &buy, 5_000);
    assert!(alerts(&out).contains(&AlertKind::DustPosition { position: 5_000 }));
    let out = r.order(
        SEC + 2 * MS,
        OrderEvent::Cancelled {
            cl_id: buy.cl_id,
            reason: CancelReason::Requested,
        },
    );
    // Dust blocks nothing: a new entry goes out (and no second alert).
    let entry = sent(&out);
    assert_eq!(entry.len(), 1, "{out:?}");
    assert_eq!(
        (entry[0].side, entry[0].purpose),
        (Side::Buy, Purpose::Entry)
    );
    assert!(alerts(&out).is_empty());
    // 200 s later the entry fills: the hold clock starts now, not at the dust fill.
    let t = 200 * SEC;
    let out = r.fill(t, &entry[0], LOT);
    let exit = sent(&out)[0];
    assert_eq!(
        (exit.purpose, exit.qty),
        (Purpose::Exit, Qty(LOT + 5_000)),
        "the whole position, dust included"
    );
    assert_eq!(r.core.state(), TradingState::Quoting);
}

#[test]
fn the_drawdown_stop_flattens_the_position_by_default_and_keeps_marking_equity() {
    let s = live(|s| {
        s.max_drawdown_pct = 0.1;
        s.stop_loss_bps = 9_000.0;
        s.fill_cooldown_ms = 0;
    });
    let mut r = Run::funded(&s, 10_000, 0);
    r.go_long(SEC);
    let out = r.frame(2 * SEC, &snap(39_999.9, 40_000.1));
    assert!(out.contains(&Intent::CancelAll));
    // The resting exit is cancelled first; then the force exit goes out.
    let mut out = Vec::new();
    for cl_id in r
        .core
        .orders()
        .live()
        .map(|o| o.req.cl_id)
        .collect::<Vec<_>>()
    {
        let reason = CancelReason::Requested;
        out.extend(r.order(2 * SEC + MS, OrderEvent::Cancelled { cl_id, reason }));
    }
    let f = sent(&out)[0];
    assert_eq!((f.purpose, f.qty), (Purpose::ForceExit, Qty(LOT)));
    assert!(alerts(&out).contains(&AlertKind::ForceExit {
        rule: Rule::Drawdown
    }));
    // Equity is still marked after the stop.
    let before = r.core.account().equity;
    r.frame(3 * SEC, &snap(38_999.9, 39_000.1));
    assert!(r.core.account().equity < before);
    // Flat: stopped for good, nothing more is sent.
    r.fill(4 * SEC, &f, LOT);
    let out = r.frame(5 * SEC, &snap(59_999.9, 60_000.1));
    assert!(sent(&out).is_empty());
    assert_eq!(r.core.state(), TradingState::Stopped);
}

#[test]
fn on_drawdown_hold_keeps_the_position_and_still_marks_it() {
    let s = live(|s| {
        s.max_drawdown_pct = 0.1;
        s.stop_loss_bps = 9_000.0;
        s.on_drawdown = OnDrawdown::Hold;
    });
    let mut r = Run::funded(&s, 10_000, 0);
    r.go_long(SEC);
    let out = r.frame(2 * SEC, &snap(39_999.9, 40_000.1));
    assert!(out.contains(&Intent::CancelAll));
    let mut t = 2 * SEC;
    for _ in 0..20 {
        t += 100 * MS;
        assert!(sent(&r.ev(t, Event::Timer)).is_empty());
    }
    assert_eq!(r.core.account().position, LOT as i64);
    let before = r.core.account().equity;
    r.frame(t + SEC, &snap(38_999.9, 39_000.1));
    assert!(r.core.account().equity < before, "marked after the stop");
    // The operator may still take the risk off: /flatten exits the own lot, and nothing else.
    t += 2 * SEC;
    let live: Vec<ClientId> = r.core.orders().live().map(|o| o.req.cl_id).collect();
    for cl_id in live {
        let reason = CancelReason::Requested;
        r.order(t, OrderEvent::Cancelled { cl_id, reason });
    }
    let forced = sent(&r.ev(t + MS, Event::Control(Control::Flatten)));
    assert_eq!(forced.len(), 1, "{forced:?}");
    assert_eq!(
        (
            forced[0].side,
            forced[0].purpose,
            forced[0].ioc,
            forced[0].qty
        ),
        (Side::Sell, Purpose::ForceExit, true, Qty(LOT))
    );
    r.fill(t + 2 * MS, &forced[0], LOT);
    assert_eq!(r.core.account().position, 0);
    for _ in 0..10 {
        t += 100 * MS;
        assert!(
            sent(&r.ev(t + SEC, Event::Timer)).is_empty(),
            "still stopped"
        );
    }
}

#[test]
fn a_restart_finds_the_baseline_as_the_balance_less_the_restored_own_position() {
    let s = live(|_| {});
    // The last run funded $10 000, bought 0.001 and was stopped.
    let buy = OrderRequest {
        cl_id: 7,
        side: Side::Buy,
        price: Price(598_800),
        qty: Qty(LOT),
        post_only: true,
        ioc: false,
        purpose: Purpose::Entry,
    };
    let cost = Cash::notional(buy.price, Qty(LOT));
    let journal = [
        JournalEntry {
            t: 1,
            kind: JournalKind::Funded {
                baseline: Qty(BTC / 2),
                cash: Cash(10_000 * USD),
            },
        },
        JournalEntry {
            t: 2,
            kind: JournalKind::Placed(buy),
        },
        JournalEntry {
            t: 3,
            kind: JournalKind::Order(OrderEvent::Fill {
                cl_id: 7,
                cum_qty: Qty(LOT),
                cum_cost: cost,
                cum_fee: Cash(0),
            }),
        },
        // A balance report of that run: a check, it restores nothing.
        JournalEntry {
            t: 4,
            kind: JournalKind::Order(OrderEvent::Balances {
                quote: Cash(1),
                base: Qty(1),
            }),
        },
    ];
    let mut r = Run::new(&s);
    r.core.restore(None, &journal);
    assert_eq!(r.core.account().position, LOT as i64);
    // Today the account holds 0.7 BTC + the bot's 0.001 (the user bought more meanwhile).
    r.balances(10 * SEC, 20_000, 7 * BTC / 10 + LOT);
    let a = r.core.account();
    assert_eq!(a.baseline, Qty(7 * BTC / 10));
    assert_eq!(a.position, LOT as i64);
    assert_eq!(
        a.cash,
        Cash(10_000 * USD - cost.0),
        "its own cash, not the account's"
    );
    assert_eq!(a.base_mismatch(false), Some(0));
}

#[test]
fn paper_mode_ignores_balance_events() {
    // No account behind paper trading: a stray balance event changes nothing.
    let mut r = Run::new(&cfg(|_| {}));
    r.balances(0, 1, 5 * BTC);
    let out = r.frame(SEC, &snap(59_999.9, 60_000.1));
    assert_eq!(sent(&out).len(), 2);
    assert_eq!(r.core.account().cash, Cash(10_000 * USD));
    assert_eq!(r.core.account().baseline, Qty(0));
}

#[test]
fn a_reconciling_private_stream_holds_new_orders_until_rest_has_settled() {
    let mut r = Run::funded(&live(|_| {}), 10_000, 0);
    r.order(SEC, OrderEvent::Reconciling);
    let out = r.frame(2 * SEC, &snap(59_999.9, 60_000.1));
    assert!(
        places(&out).is_empty(),
        "nothing new while reconciling: {out:?}"
    );
    assert_eq!(r.core.state(), TradingState::Paused(Rule::Reconciling));
    // Link news is never journaled.
    let out = r.order(3 * SEC, OrderEvent::Reconciled);
    assert!(
        !out.iter().any(|i| matches!(
            i,
            Intent::Journal(JournalEntry {
                kind: JournalKind::Order(OrderEvent::Reconciled),
                ..
            })
        )),
        "{out:?}"
    );
    assert!(!places(&out).is_empty(), "quoting resumes: {out:?}");
    // A REST API that never answers cannot hold the risk rules off for more than 15 s.
    let mut r = Run::funded(&live(|_| {}), 10_000, 0);
    r.order(SEC, OrderEvent::Reconciling);
    assert!(places(&r.frame(15 * SEC, &snap(59_999.9, 60_000.1))).is_empty());
    assert!(!places(&r.frame(17 * SEC, &snap(59_999.9, 60_000.1))).is_empty());
}

#[test]
fn kraken_announcing_a_higher_tier_gives_the_rate_counter_its_room() {
    let mut r = Run::funded(&live(|_| {}), 10_000, 0);
    r.order(SEC, OrderEvent::RateLimit { max: 180 });
    assert_eq!(r.core.rate_tier(), Tier::Pro);
    // Kraken's own counter value replaces the local model's.
    r.order(SEC, OrderEvent::RateCount { centi: 12_000 });
    assert!((r.core.rate_value(SEC) - 120.0).abs() < 1e-9);
}

#[test]
fn the_operators_pause_flatten_and_resume_go_through_the_risk_rules() {
    // 0.5 BTC of the user's: a flatten exits the bot's own lot and never touches the rest.
    let s = live(|s| {
        s.fill_cooldown_ms = 0;
        s.momentum_filter_enabled = false;
    });
    let mut r = Run::funded(&s, 10_000, BTC / 2);
    let out = r.frame(SEC, &snap(59_999.9, 60_000.1));
    let entry = sent(&out)[0];
    r.order(SEC + MS, OrderEvent::Accepted { cl_id: entry.cl_id });
    // /pause: the resting entry is cancelled, nothing new is quoted.
    let out = r.ev(2 * SEC, Event::Control(Control::Pause));
    assert_eq!(cancels(&out), 1);
    assert!(sent(&out).is_empty());
    assert!(alerts(&out).contains(&AlertKind::Operator {
        control: Control::Pause,
        position: 0
    }));
    r.order(
        2 * SEC + MS,
        OrderEvent::Cancelled {
            cl_id: entry.cl_id,
            reason: CancelReason::Requested,
        },
    );
    let out = r.frame(3 * SEC, &snap(59_999.9, 60_000.1));
    assert!(sent(&out).is_empty(), "paused: {out:?}");
    assert_eq!(r.core.state(), TradingState::Paused(Rule::Operator));
    // /resume: quoting again; the entry fills and the exit rests.
    let out = r.ev(4 * SEC, Event::Control(Control::Resume));
    let buy = sent(&out)[0];
    assert_eq!((buy.side, buy.purpose), (Side::Buy, Purpose::Entry));
    let exit = sent(&r.fill(5 * SEC, &buy, LOT))
        .into_iter()
        .find(|o| o.purpose == Purpose::Exit)
        .expect("an exit");
    r.order(5 * SEC + 3 * MS, OrderEvent::Accepted { cl_id: exit.cl_id });
    // /flatten: the passive exit is cancelled first, then one force exit of the own lot.
    let out = r.ev(6 * SEC, Event::Control(Control::Flatten));
    assert_eq!(cancels(&out), 1);
    assert!(sent(&out).is_empty(), "never two sells at once");
    let forced = sent(&r.order(
        6 * SEC + MS,
        OrderEvent::Cancelled {
            cl_id: exit.cl_id,
            reason: CancelReason::Requested,
        },
    ));
    assert_eq!(forced.len(), 1);
    assert_eq!(
        (
            forced[0].side,
            forced[0].purpose,
            forced[0].ioc,
            forced[0].qty
        ),
        (Side::Sell, Purpose::ForceExit, true, Qty(LOT))
    );
    // Flat: the latch ends, and the bot stays paused until /resume.
    r.fill(6 * SEC + 2 * MS, &forced[0], LOT);
    assert_eq!(r.core.account().position, 0);
    let out = r.frame(7 * SEC, &snap(59_999.9, 60_000.1));
    assert!(sent(&out).is_empty());
    assert_eq!(r.core.account().baseline, Qty(BTC / 2));
    let out = r.ev(8 * SEC, Event::Control(Control::Resume));
    assert_eq!(sent(&out).len(), 1, "quoting again: {out:?}");
    assert_eq!(sent(&out)[0].side, Side::Buy);
}
