//! The core driven through its public entry point, `handle`, with real frames.

use super::*;
use crate::core::event::{CancelReason, RejectReason};
use crate::core::money::{Cash, Price, Qty};
use crate::core::stubs;
use crate::core::time::SEC;

pub(super) const USD: i128 = 1_000_000_000;

/// The stub settings (quoting allowed in a quiet test market) changed by `f`.
pub(super) fn cfg(f: impl FnOnce(&mut Settings)) -> Settings {
    let mut s = stubs::settings();
    f(&mut s);
    s
}

fn levels(v: &[(f64, f64)]) -> String {
    v.iter()
        .map(|(p, q)| format!(r#"{{"price":{p:.1},"qty":{q:.8}}}"#))
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) fn book(
    typ: &str,
    bids: &[(f64, f64)],
    asks: &[(f64, f64)],
    checksum: Option<u32>,
) -> String {
    let ck = checksum
        .map(|c| format!(r#","checksum":{c}"#))
        .unwrap_or_default();
    format!(
        r#"{{"channel":"book","type":"{typ}","data":[{{"symbol":"BTC/USD","bids":[{}],"asks":[{}]{ck}}}]}}"#,
        levels(bids),
        levels(asks)
    )
}

pub(super) fn snap(bid: f64, ask: f64) -> String {
    book("snapshot", &[(bid, 1.0)], &[(ask, 1.0)], None)
}

pub(super) struct Run {
    pub(super) core: Core,
    out: Vec<Intent>,
}

impl Run {
    pub(super) fn new(c: &Settings) -> Run {
        Run {
            core: Core::new(c, 1).unwrap(),
            out: Vec::with_capacity(64),
        }
    }
    /// A live core whose account reported `quote` USD and `base` lots (a fresh account: the
    /// bot's own inventory starts at zero whatever the base balance is).
    pub(super) fn funded(c: &Settings, quote_usd: i128, base: u64) -> Run {
        let mut r = Run::new(c);
        r.ev(
            0,
            Event::Order(OrderEvent::Balances {
                quote: Cash(quote_usd * USD),
                base: Qty(base),
            }),
        );
        r
    }
    pub(super) fn frame(&mut self, t: Nanos, f: &str) -> Vec<Intent> {
        self.core
            .handle(t, Event::Frame(f.as_bytes()), &mut self.out);
        std::mem::take(&mut self.out)
    }
    pub(super) fn ev(&mut self, t: Nanos, e: Event<'_>) -> Vec<Intent> {
        self.core.handle(t, e, &mut self.out);
        std::mem::take(&mut self.out)
    }
}

pub(super) fn places(v: &[Intent]) -> Vec<OrderRequest> {
    v.iter()
        .filter_map(|i| {
            if let Intent::Place(r) = i {
                Some(*r)
            } else {
                None
            }
        })
        .collect()
}

pub(super) fn cancels(v: &[Intent]) -> usize {
    v.iter()
        .filter(|i| matches!(i, Intent::Cancel { .. }))
        .count()
}

pub(super) fn trade(side: &str, price: f64) -> String {
    format!(
        r#"{{"channel":"trade","type":"update","data":[{{"symbol":"BTC/USD","side":"{side}","price":{price:.1},"qty":0.50000000,"ord_type":"market","trade_id":1,"timestamp":"2026-01-01T00:00:00.000000Z"}}]}}"#
    )
}

#[test]
fn snapshot_then_quotes_both_sides_in_paper() {
    let mut r = Run::new(&cfg(|_| {}));
    let out = r.frame(SEC, &snap(59_999.9, 60_000.1));
    let p = places(&out);
    assert_eq!(p.len(), 2);
    assert!(
        p.iter()
            .all(|o| o.post_only && !o.ioc && o.qty == Qty(100_000))
    );
    assert_eq!(r.core.orders().live_count(), 2);
    assert_eq!(r.core.state(), TradingState::Quoting);
    assert!(out.contains(&Intent::Snapshot));
}

#[test]
fn updates_before_the_first_snapshot_are_ignored() {
    let mut r = Run::new(&cfg(|_| {}));
    let out = r.frame(SEC, &book("update", &[(59_999.9, 1.0)], &[], None));
    assert!(places(&out).is_empty());
    assert_eq!(r.core.stats().updates_ignored, 1);
    assert_eq!(r.core.state(), TradingState::WaitingForBook);
}

#[test]
fn checksum_mismatch_resubscribes_cancels_and_waits_for_a_snapshot() {
    let mut r = Run::new(&cfg(|_| {}));
    r.frame(SEC, &snap(59_999.9, 60_000.1));
    assert_eq!(r.core.orders().live_count(), 2);
    let out = r.frame(
        2 * SEC,
        &book("update", &[(59_999.8, 1.0)], &[], Some(12345)),
    );
    assert!(out.contains(&Intent::Resubscribe {
        depth: 10,
        reason: ResyncReason::Checksum
    }));
    assert_eq!(cancels(&out), 2, "never leave quotes from an invalid book");
    assert!(!r.core.book().is_valid());
    assert_eq!(r.core.stats().checksum_mismatches, 1);
    // Further updates are ignored, and do not resubscribe again (no storm).
    let out = r.frame(3 * SEC, &book("update", &[(59_999.7, 1.0)], &[], Some(1)));
    assert!(
        out.iter()
            .all(|i| !matches!(i, Intent::Resubscribe { .. } | Intent::Place(_)))
    );
    assert_eq!(r.core.stats().updates_ignored, 1);
    // A fresh snapshot restores quoting.
    let out = r.frame(4 * SEC, &snap(59_999.9, 60_000.1));
    assert_eq!(places(&out).len(), 2);
}

#[test]
fn crossed_book_resubscribes() {
    let mut r = Run::new(&cfg(|_| {}));
    r.frame(SEC, &snap(59_999.9, 60_000.1));
    let out = r.frame(2 * SEC, &book("update", &[(60_000.2, 1.0)], &[], None));
    assert!(out.contains(&Intent::Resubscribe {
        depth: 10,
        reason: ResyncReason::Crossed
    }));
    assert_eq!(r.core.stats().crossed_books, 1);
}

#[test]
fn disconnect_cancels_everything_and_alerts() {
    let mut r = Run::funded(&cfg(|s| s.live_mode = true), 10_000, 0);
    r.frame(SEC, &snap(59_999.9, 60_000.1));
    // Live with no BTC: only the buy is out (a live sell needs the base currency).
    assert_eq!(r.core.orders().live_count(), 1);
    let out = r.ev(2 * SEC, Event::Disconnected);
    assert_eq!(cancels(&out), 1);
    assert!(out.contains(&Intent::CancelAll));
    assert!(out.contains(&Intent::Alert(Alert {
        level: AlertLevel::Critical,
        kind: AlertKind::Disconnected
    })));
    assert_eq!(r.core.state(), TradingState::Disconnected);
    // Timers while disconnected place nothing.
    assert!(places(&r.ev(3 * SEC, Event::Timer)).is_empty());
}

#[test]
fn stale_orders_are_cancelled_and_requoted() {
    let mut r = Run::new(&cfg(|_| {}));
    r.frame(SEC, &snap(59_999.9, 60_000.1));
    // Not stale yet at 4.9 s.
    let out = r.ev(SEC + 4_900 * MS, Event::Timer);
    assert_eq!(cancels(&out), 0);
    // Stale at 5 s: cancelled; the paper venue confirms at once, so the requote follows.
    let out = r.ev(SEC + 5_000 * MS, Event::Timer);
    assert_eq!(cancels(&out), 2);
    assert_eq!(r.core.stats().stale_cancels, 2);
    let out = r.ev(SEC + 5_001 * MS, Event::Timer);
    assert_eq!(places(&out).len(), 2);
}

#[test]
fn live_stale_orders_are_requoted_in_one_replace() {
    let mut r = Run::funded(&cfg(|s| s.live_mode = true), 10_000, 0);
    r.frame(SEC, &snap(59_999.9, 60_000.1));
    let first = places(&r.ev(SEC + MS, Event::Timer));
    let first = match first.as_slice() {
        [] => r.core.orders().live().next().map(|o| o.req).unwrap(),
        [p] => *p,
        more => panic!("{more:?}"),
    };
    r.ev(
        SEC + 2 * MS,
        Event::Order(OrderEvent::Accepted { cl_id: first.cl_id }),
    );
    // Stale at 5 s: one replace (cancel the old, place the new), not a cancel now and a place
    // after the exchange confirms.
    let out = r.ev(SEC + 5_000 * MS, Event::Timer);
    let replaces: Vec<_> = out
        .iter()
        .filter_map(|i| match i {
            Intent::Replace { old, new } => Some((*old, *new)),
            _ => None,
        })
        .collect();
    assert_eq!(replaces.len(), 1, "{out:?}");
    let (old, new) = replaces[0];
    assert_eq!(old, first.cl_id);
    assert_eq!((new.side, new.purpose), (first.side, first.purpose));
    assert_ne!(new.cl_id, old);
    assert_eq!(cancels(&out) + places(&out).len(), 0);
    // The exchange confirms both halves; nothing else goes out.
    r.ev(
        SEC + 5_001 * MS,
        Event::Order(OrderEvent::Cancelled {
            cl_id: old,
            reason: CancelReason::Requested,
        }),
    );
    let out = r.ev(
        SEC + 5_002 * MS,
        Event::Order(OrderEvent::Accepted { cl_id: new.cl_id }),
    );
    assert!(places(&out).is_empty() && cancels(&out) == 0, "{out:?}");
    assert_eq!(r.core.orders().live_count(), 1);
}

#[test]
fn paper_fill_books_position_and_places_the_exit_after_the_cooldown() {
    let mut r = Run::new(&cfg(|_| {}));
    r.frame(SEC, &snap(59_999.9, 60_000.1));
    // A sell trade at 59880.0 reaches our buy at 59880.0.
    let out = r.frame(SEC + 10 * MS, &trade("sell", 59_880.0));
    assert!(out.iter().any(|i| matches!(
        i,
        Intent::Alert(Alert {
            kind: AlertKind::Filled { .. },
            ..
        })
    )));
    let a = r.core.account();
    assert_eq!(a.position, 100_000);
    // Paid 59.88 + 16 bps maker fee (0.0958080 USD).
    assert_eq!(a.fees, Cash(95_808_000));
    assert_eq!(a.cash, Cash(10_000 * USD - 59_880_000_000 - 95_808_000));
    // No churn: the entry sell is cancelled, and within the 200 ms cooldown no exit goes out.
    assert_eq!(
        r.core
            .orders()
            .live()
            .filter(|o| o.side() == Side::Buy)
            .count(),
        0
    );
    assert!(places(&out).is_empty());
    let out = r.ev(SEC + 100 * MS, Event::Timer);
    assert!(places(&out).is_empty(), "cooldown");
    let out = r.ev(SEC + 211 * MS, Event::Timer);
    let p = places(&out);
    assert_eq!(p.len(), 1);
    assert_eq!((p[0].side, p[0].purpose), (Side::Sell, Purpose::Exit));
    // Exit 36 bps − skew 2 bps is below the floor 2 × 16 + 4 = 36 bps: held there.
    // 59880 × 1.0036 = 60095.568 → 60095.6
    assert_eq!(p[0].price, Price(600_956));
}

#[test]
fn one_fill_per_tick() {
    let mut r = Run::new(&cfg(|s| s.fill_cooldown_ms = 0));
    r.frame(SEC, &snap(59_999.9, 60_000.1));
    // One frame crosses both quotes (a wild snapshot): only one of them may fill.
    r.frame(
        2 * SEC,
        &book("update", &[(60_200.0, 1.0)], &[(60_300.0, 1.0)], None),
    );
    assert!(r.core.stats().fills <= 1);
}

#[test]
fn drawdown_stop_cancels_everything_and_stops() {
    let mut r = Run::new(&cfg(|s| {
        s.max_drawdown_pct = 0.01;
        s.stop_loss_bps = 500.0;
        s.fill_cooldown_ms = 0;
    }));
    r.frame(SEC, &snap(59_999.9, 60_000.1));
    r.frame(SEC + MS, &trade("sell", 59_880.0)); // long 0.001 at 59880
    // Price falls 0.5 %: the position loses ~0.3 USD of 10000 → 0.003 %; not yet.
    let out = r.frame(2 * SEC, &snap(59_599.9, 59_600.1));
    assert!(!out.iter().any(|i| matches!(
        i,
        Intent::Alert(Alert {
            kind: AlertKind::DrawdownStop { .. },
            ..
        })
    )));
    // Falls 20 %: ~12 USD lost > 0.01 % of peak.
    let out = r.frame(3 * SEC, &snap(47_999.9, 48_000.1));
    assert!(out.contains(&Intent::CancelAll));
    assert!(out.iter().any(|i| matches!(
        i,
        Intent::Alert(Alert {
            level: AlertLevel::Critical,
            kind: AlertKind::DrawdownStop { .. }
        })
    )));
    assert_eq!(r.core.state(), TradingState::Stopped);
    assert_eq!(r.core.orders().live_count(), 0);
    let out = r.frame(4 * SEC, &snap(59_999.9, 60_000.1));
    assert!(places(&out).is_empty(), "stopped stays stopped");
}

#[test]
fn live_fills_are_booked_once_even_when_reported_twice() {
    let mut r = Run::funded(&cfg(|s| s.live_mode = true), 10_000, 0);
    let out = r.frame(SEC, &snap(59_999.9, 60_000.1));
    let buy = places(&out)
        .into_iter()
        .find(|o| o.side == Side::Buy)
        .unwrap();
    r.ev(SEC, Event::Order(OrderEvent::Accepted { cl_id: buy.cl_id }));
    let cost = Cash::notional(buy.price, Qty(40_000));
    let partial = OrderEvent::Fill {
        cl_id: buy.cl_id,
        cum_qty: Qty(40_000),
        cum_cost: cost,
        cum_fee: Cash(7),
    };
    r.ev(2 * SEC, Event::Order(partial));
    r.ev(3 * SEC, Event::Order(partial));
    assert_eq!(r.core.account().position, 40_000);
    assert_eq!(r.core.account().fees, Cash(7));
    assert_eq!(r.core.orders().stats.duplicate_fills, 1);
}

#[test]
fn post_only_rejection_reaches_the_core_as_a_rejection() {
    let mut r = Run::funded(&cfg(|s| s.live_mode = true), 10_000, 0);
    let out = r.frame(SEC, &snap(59_999.9, 60_000.1));
    let id = places(&out)[0].cl_id;
    let out = r.ev(
        SEC + MS,
        Event::Order(OrderEvent::Rejected {
            cl_id: id,
            reason: RejectReason::PostOnly,
        }),
    );
    assert!(out.contains(&Intent::Alert(Alert {
        level: AlertLevel::Warning,
        kind: AlertKind::OrderRejected {
            cl_id: id,
            reason: RejectReason::PostOnly
        },
    })));
    assert_eq!(r.core.stats().rejects, 1);
    assert!(r.core.orders().get(id).is_none());
    // A cancel confirmation for another order does not count as a rejection.
    let other = r.core.orders().live().next().unwrap().req.cl_id;
    r.ev(
        SEC + 2 * MS,
        Event::Order(OrderEvent::Cancelled {
            cl_id: other,
            reason: CancelReason::Exchange,
        }),
    );
    assert_eq!(r.core.stats().rejects, 1);
}

#[test]
fn malformed_frames_are_counted_and_skipped() {
    let mut r = Run::new(&cfg(|_| {}));
    r.frame(SEC, &snap(59_999.9, 60_000.1));
    for bad in [
        "",
        "{",
        "not json",
        r#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":"x","qty":1}]}]}"#,
    ] {
        let out = r.frame(2 * SEC, bad);
        assert!(out.is_empty());
    }
    assert_eq!(r.core.stats().parse_errors_total(), 4);
    assert!(
        r.core.book().is_valid(),
        "a frame we could not read changes nothing"
    );
}

#[test]
fn exchange_status_other_than_online_pauses_quoting() {
    let mut r = Run::new(&cfg(|_| {}));
    r.frame(SEC, &snap(59_999.9, 60_000.1));
    let out = r.frame(
        2 * SEC,
        r#"{"channel":"status","type":"update","data":[{"system":"maintenance","connection_id":16389994220698793191}]}"#,
    );
    assert!(out.is_empty());
    let out = r.ev(3 * SEC, Event::Timer);
    assert_eq!(cancels(&out), 2);
    assert_eq!(r.core.state(), TradingState::Paused(Rule::ExchangeStatus));
}

#[test]
fn instrument_precision_change_rebuilds_and_resubscribes() {
    let mut r = Run::new(&cfg(|_| {}));
    let out = r.frame(
        SEC,
        r#"{"channel":"instrument","type":"snapshot","data":{"pairs":[{"symbol":"BTC/USD","status":"online","qty_precision":8,"qty_increment":0.00000001,"price_precision":2,"price_increment":0.05,"qty_min":0.0001,"cost_min":0.5}]}}"#,
    );
    assert!(out.contains(&Intent::Resubscribe {
        depth: 10,
        reason: ResyncReason::Precision
    }));
    assert_eq!(
        (r.core.params().price_precision, r.core.params().tick),
        (2, Price(5))
    );
    let out = r.frame(
        2 * SEC,
        &book("snapshot", &[(59_999.9, 1.0)], &[(60_000.1, 1.0)], None),
    );
    let p = places(&out);
    // 60000.00 × 0.998 = 59880.00 on a 0.05 tick.
    assert_eq!(
        p.iter().find(|o| o.side == Side::Buy).unwrap().price,
        Price(5_988_000)
    );
}

#[test]
fn same_events_same_intents() {
    let frames = stubs::frames(30_000, 3);
    let run = || {
        let mut r = Run::new(&cfg(|_| {}));
        let mut all = Vec::new();
        for (t, f) in &frames {
            all.extend(r.frame(*t, f));
        }
        (all, r.core.account().cash, r.core.stats().fills)
    };
    let (a, cash_a, fills) = run();
    let (b, cash_b, _) = run();
    assert_eq!(a, b);
    assert_eq!(cash_a, cash_b);
    assert!(fills > 0, "the synthetic market trades against us");
}

#[test]
fn paper_session_keeps_the_books_consistent() {
    // About 9 simulated minutes.
    let frames = stubs::frames(150_000, 3);
    let mut r = Run::new(&cfg(|_| {}));
    let max = r.core.params().max_position.0 as i64;
    for (t, f) in &frames {
        r.frame(*t, f);
        assert!(r.core.account().position.abs() <= max, "position limit");
    }
    let a = r.core.account();
    let s = r.core.stats();
    assert!(s.fills >= 4, "fills: {}", s.fills);
    assert_eq!(s.checksum_mismatches + s.parse_errors_total(), 0);
    // Cash = start − Σ buys + Σ sells − fees: the history's last fills agree with the totals.
    let fee_sum: i128 = a.history().map(|f| f.fee.0).sum();
    if a.fill_count() as usize <= crate::core::accounting::HISTORY_LEN {
        assert_eq!(Cash(fee_sum), a.fees);
    }
    assert_eq!(a.round_trips, a.wins + a.losses);
}

/// Frames a hostile or broken peer could send: each is counted and skipped (another symbol's
/// data is ignored), nothing panics, and the book is untouched: every valid update after them
/// still matches Kraken's checksum.
#[test]
fn hostile_frames_are_skipped_without_touching_the_book() {
    let frames = stubs::frames(600, 5);
    let mut r = Run::new(&cfg(|_| {}));
    for (t, f) in &frames[..300] {
        r.frame(*t, f);
    }
    assert!(r.core.book().is_valid());
    let book = |bids: &str| {
        format!(
            r#"{{"channel":"book","type":"update","data":[{{"symbol":"BTC/USD","bids":[{bids}],"asks":[],"checksum":1}}]}}"#
        )
    };
    let deep = format!(
        r#"{{"channel":"book","type":"update","data":{}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let huge = book(
        &(0..20_000)
            .map(|i| format!(r#"{{"price":{}.0,"qty":1.0}}"#, 50_000 + i))
            .collect::<Vec<_>>()
            .join(","),
    );
    assert!(huge.len() > 500_000);
    let valid = &frames[300].1;
    let errors: Vec<Vec<u8>> = vec![
        valid.as_bytes()[..valid.len() / 2].to_vec(), // truncated
        book(r#"{"price":"abc","qty":1.0}"#).into_bytes(), // not a number
        book(r#"{"price":1e400,"qty":1.0}"#).into_bytes(), // out of range
        book(r#"{"price":60000.0,"qty":123456789012345678901234567890}"#).into_bytes(),
        book(r#"{"price":60000.0,"qty":-1.0}"#).into_bytes(), // negative size
        book(r#"{"price":60000.05,"qty":1.0}"#).into_bytes(), // finer than the tick
        deep.into_bytes(),
        huge.into_bytes(),
        br#"{"channel":"book","channel":"trade","type":"update","data":[]}"#.to_vec(), // duplicate key
        b"\x00\x01\x02".to_vec(),
        Vec::new(),
    ];
    let ignored: Vec<Vec<u8>> = vec![
        // An unknown channel name, here not even UTF-8: not ours. (On the live feed tungstenite
        // refuses a text frame that is not UTF-8 before it reaches the core.)
        b"{\"channel\":\"book\xff\xfe\",\"type\":\"update\",\"data\":[]}".to_vec(),
        // Another symbol's book and trades: not ours, not an error.
        br#"{"channel":"book","type":"update","data":[{"symbol":"ETH/USD","bids":[{"price":1.0,"qty":1.0}],"asks":[],"checksum":1}]}"#.to_vec(),
        br#"{"channel":"trade","type":"update","data":[{"symbol":"ETH/USD","side":"buy","price":1.0,"qty":1.0,"ord_type":"market","trade_id":1,"timestamp":"2026-01-01T00:00:00.000000Z"}]}"#.to_vec(),
    ];
    let t = frames[299].0;
    for (i, f) in errors.iter().enumerate() {
        let before = r.core.stats().parse_errors_total();
        r.ev(t, Event::Frame(f));
        assert_eq!(
            r.core.stats().parse_errors_total(),
            before + 1,
            "hostile frame {i} is counted"
        );
    }
    for f in &ignored {
        let before = *r.core.stats();
        r.ev(t, Event::Frame(f));
        assert_eq!(
            r.core.stats().parse_errors_total(),
            before.parse_errors_total()
        );
        assert_eq!(r.core.stats().checksum_mismatches, 0);
    }
    for (t, f) in &frames[300..] {
        r.frame(*t, f);
    }
    let s = r.core.stats();
    assert_eq!(s.checksum_mismatches, 0, "the book was never corrupted");
    assert!(r.core.book().is_valid());
    assert!(s.checksums_ok > 500);
}

/// What a restart must bring back: everything the account and the order manager know.
fn account_state(c: &Core) -> String {
    let a = c.account();
    format!(
        "pos {} basis {:?} cash {:?} realised {:?} fees {:?} trips {} wins {} losses {} \
         fills {} peak {:?} maxdd {} start {:?} trip {:?} history {:?} live {:?}",
        a.position,
        a.basis,
        a.cash,
        a.realised,
        a.fees,
        a.round_trips,
        a.wins,
        a.losses,
        a.fill_count(),
        a.peak_equity,
        a.max_drawdown_ppm,
        a.start_equity,
        a.trip,
        a.history().collect::<Vec<_>>(),
        c.orders()
            .live()
            .map(|o| (o.req, o.filled))
            .collect::<Vec<_>>(),
    )
}

#[test]
fn journal_replay_restores_the_account_exactly() {
    let frames = stubs::frames(150_000, 3);
    let mut r = Run::new(&cfg(|_| {}));
    let mut journal = Vec::new();
    let keep = |v: Vec<Intent>, journal: &mut Vec<JournalEntry>| {
        journal.extend(v.into_iter().filter_map(|i| match i {
            Intent::Journal(e) => Some(e),
            _ => None,
        }));
    };
    r.core.journal_start(frames[0].0, &mut r.out);
    keep(std::mem::take(&mut r.out), &mut journal);
    let mut checked = 0;
    for (i, (t, f)) in frames.iter().enumerate() {
        let v = r.frame(*t, f);
        keep(v, &mut journal);
        // Restart here: a fresh core fed the journal so far equals the running one.
        if i % 50_000 == 49_999 {
            let mut fresh = Core::new(&cfg(|_| {}), 1).unwrap();
            let open = fresh.restore(None, &journal);
            // The peak moves between journal records (at most once a second); the rest is exact.
            let (a, b) = (account_state(&r.core), account_state(&fresh));
            let strip = |s: &str| {
                s.split(" peak ").next().unwrap().to_string() + s.split(" start ").nth(1).unwrap()
            };
            assert_eq!(strip(&a), strip(&b));
            assert!(fresh.account().peak_equity <= r.core.account().peak_equity);
            assert_eq!(open.len(), r.core.orders().live_count());
            let next = fresh.orders.open(open_req(), 0).map(|o| o.cl_id);
            let max_seen = journal
                .iter()
                .filter_map(|e| match e.kind {
                    JournalKind::Placed(q) => Some(q.cl_id),
                    _ => None,
                })
                .max();
            assert!(
                next > max_seen,
                "ids continue after the journal's: {next:?} {max_seen:?}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 3);
    assert!(r.core.stats().fills >= 4, "fills: {}", r.core.stats().fills);
    assert!(r.core.account().round_trips > 0);
}

fn open_req() -> OrderRequest {
    OrderRequest {
        cl_id: 0,
        side: Side::Buy,
        price: Price(1),
        qty: Qty(1),
        post_only: true,
        ioc: false,
        purpose: Purpose::Entry,
    }
}

/// A venue refusal (other than post-only) is not retried on every tick: that side waits 1 s,
/// then 2 s after a second refusal in a row; an acceptance resets the wait.
#[test]
fn refused_orders_back_off_instead_of_retrying_every_tick() {
    let mut r = Run::funded(&cfg(|s| s.live_mode = true), 10_000, 0);
    r.frame(SEC, &snap(59_999.9, 60_000.1));
    let buy = |v: &[Intent]| places(v).into_iter().find(|p| p.side == Side::Buy);
    let mut t = SEC + MS;
    let first = buy(&r.ev(t, Event::Timer))
        .or_else(|| {
            r.core
                .orders()
                .live()
                .find(|o| o.side() == Side::Buy)
                .map(|o| o.req)
        })
        .expect("a buy quote");
    let refuse = |r: &mut Run, t: Nanos, cl_id| {
        r.ev(
            t,
            Event::Order(OrderEvent::Rejected {
                cl_id,
                reason: RejectReason::InsufficientFunds,
            }),
        )
    };
    let out = refuse(&mut r, t, first.cl_id);
    assert!(buy(&out).is_none(), "not straight back: {out:?}");
    for k in 1..9 {
        let out = r.ev(t + k * 100 * MS, Event::Timer);
        assert!(buy(&out).is_none(), "within 1 s: {out:?}");
    }
    assert!(r.core.pause_counts()[Rule::Rejected as usize] > 0);
    t += 1_000 * MS;
    let second = buy(&r.ev(t, Event::Timer)).expect("after 1 s the buy is quoted again");
    refuse(&mut r, t, second.cl_id);
    assert!(
        buy(&r.ev(t + 1_500 * MS, Event::Timer)).is_none(),
        "the wait doubled"
    );
    let third = buy(&r.ev(t + 2_000 * MS, Event::Timer)).expect("after 2 s");
    r.ev(
        t + 2_001 * MS,
        Event::Order(OrderEvent::Accepted { cl_id: third.cl_id }),
    );
    // (Each order event also runs a tick: the requote comes with the event.)
    let mut again = r.ev(
        t + 2_002 * MS,
        Event::Order(OrderEvent::Cancelled {
            cl_id: third.cl_id,
            reason: CancelReason::Exchange,
        }),
    );
    again.extend(r.ev(t + 2_003 * MS, Event::Timer));
    let fourth = buy(&again).expect("quoted again");
    // The acceptance reset the backoff: the next refusal waits 1 s again, not 4 s.
    let t = t + 2_004 * MS;
    refuse(&mut r, t, fourth.cl_id);
    assert!(
        buy(&r.ev(t + 900 * MS, Event::Timer)).is_none(),
        "within 1 s"
    );
    let next = buy(&r.ev(t + 1_000 * MS, Event::Timer)).expect("an acceptance reset the wait");
    // A post-only refusal is the market moving: quoting again at once is right.
    let mut out = r.ev(
        t + 1_001 * MS,
        Event::Order(OrderEvent::Rejected {
            cl_id: next.cl_id,
            reason: RejectReason::PostOnly,
        }),
    );
    out.extend(r.ev(t + 1_002 * MS, Event::Timer));
    assert!(buy(&out).is_some(), "{out:?}");
}
