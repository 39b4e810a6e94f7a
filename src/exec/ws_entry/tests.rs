//! The WebSocket order path's rules, one at a time: what goes out, what the core and the
//! worker hear, and what happens to every request when the connection drops.

use super::*;
use crate::core::event::{Purpose, RejectReason};
use crate::core::money::{Price, Qty};
use crate::core::time::parse_rfc3339;
use crate::exec::clordid::kraken_cl;

const T0: Nanos = 1_800_000_000 * SEC;
const P: Precision = Precision { price: 1, qty: 8 };

fn order(cl_id: ClientId, side: Side, price: i64) -> OrderRequest {
    OrderRequest {
        cl_id,
        side,
        price: Price(price),
        qty: Qty(100_000),
        post_only: true,
        ioc: false,
        purpose: Purpose::Entry,
    }
}

fn force_exit(cl_id: ClientId) -> OrderRequest {
    OrderRequest {
        post_only: false,
        ioc: true,
        purpose: Purpose::ForceExit,
        ..order(cl_id, Side::Sell, 599_000)
    }
}

/// Up, dead man's switch off.
fn up() -> WsEntry {
    let mut e = WsEntry::new(Tier::Starter, (0, 60));
    e.set_up(T0);
    e
}

fn drain(e: &mut WsEntry) -> Vec<Effect> {
    std::iter::from_fn(|| e.next_effect()).collect()
}

fn sent(fx: &[Effect]) -> Vec<Request> {
    fx.iter()
        .filter_map(|f| match f {
            Effect::Send(r) => Some(*r),
            _ => None,
        })
        .collect()
}

fn req_id(r: &Request) -> u64 {
    match *r {
        Request::Add { req_id, .. }
        | Request::Amend { req_id, .. }
        | Request::Cancel { req_id, .. }
        | Request::CancelAll { req_id }
        | Request::Deadman { req_id, .. } => req_id,
    }
}

fn ok(req_id: u64) -> Reply<'static> {
    Reply {
        req_id,
        success: true,
        error: None,
        order_id: Some("OABCDE-FGHIJ-KLMNOP"),
    }
}

fn refused(req_id: u64, error: &'static str) -> Reply<'static> {
    Reply {
        req_id,
        success: false,
        error: Some(error),
        order_id: None,
    }
}

const UNFILLED: fn(ClientId) -> bool = |_| false;

/// Places `o` and has Kraken accept it; returns the add's request id.
fn placed(e: &mut WsEntry, now: Nanos, o: OrderRequest) -> u64 {
    assert_eq!(e.route(now, Intent::Place(o), &UNFILLED), Route::Ws);
    let id = req_id(&sent(&drain(e))[0]);
    e.on_reply(now + MS, &ok(id));
    drain(e);
    id
}

#[test]
fn while_down_every_intent_is_the_workers() {
    let mut e = WsEntry::new(Tier::Starter, (0, 60));
    let o = order(1, Side::Buy, 599_000);
    assert_eq!(e.route(T0, Intent::Place(o), &UNFILLED), Route::Rest);
    assert_eq!(e.route(T0, Intent::CancelAll, &UNFILLED), Route::Rest);
    assert!(drain(&mut e).is_empty());
}

#[test]
fn an_accepted_add_is_tracked_by_the_worker_and_acked_to_the_core() {
    let mut e = up();
    let o = order(7, Side::Buy, 599_000);
    assert_eq!(e.route(T0, Intent::Place(o), &UNFILLED), Route::Ws);
    let fx = drain(&mut e);
    let [
        Request::Add {
            req_id,
            order,
            deadline,
        },
    ] = sent(&fx)[..]
    else {
        panic!("one add expected: {fx:?}");
    };
    assert_eq!(order, o);
    assert_eq!(deadline, T0 + DEADLINE_NS);
    assert_eq!(e.unanswered(), 1);

    e.on_reply(T0 + 200_000, &ok(req_id));
    assert_eq!(
        drain(&mut e),
        vec![
            Effect::Worker(Command::Track {
                req: o,
                txid: "OABCDE-FGHIJ-KLMNOP".into()
            }),
            Effect::Core(OrderEvent::Accepted { cl_id: 7 }),
        ]
    );
    assert_eq!(e.unanswered(), 0);
    assert_eq!(e.intent_to_ack.len(), 1);
    assert_eq!(e.stats.orders_sent, 1);
}

#[test]
fn a_refused_add_is_a_typed_rejection_and_frees_its_slot() {
    let mut e = up();
    let o = order(7, Side::Buy, 599_000);
    e.route(T0, Intent::Place(o), &UNFILLED);
    let id = req_id(&sent(&drain(&mut e))[0]);
    e.on_reply(T0 + MS, &refused(id, "EOrder:Insufficient funds"));
    assert_eq!(
        drain(&mut e),
        vec![Effect::Core(OrderEvent::Rejected {
            cl_id: 7,
            reason: RejectReason::InsufficientFunds
        })]
    );
    // Nothing of it is left here: a late cancel is the worker's (it knows nothing either).
    assert_eq!(
        e.route(T0 + 2 * MS, Intent::Cancel { cl_id: 7 }, &UNFILLED),
        Route::Rest
    );
}

#[test]
fn a_requote_of_a_resting_order_is_one_amend_that_keeps_the_cl_ord_id() {
    let mut e = up();
    let old = order(7, Side::Buy, 599_000);
    placed(&mut e, T0, old);
    let new = order(8, Side::Buy, 599_100);
    let now = T0 + 6 * SEC;
    assert_eq!(
        e.route(now, Intent::Replace { old: 7, new }, &UNFILLED),
        Route::Ws
    );
    let fx = drain(&mut e);
    let [
        Request::Amend {
            req_id,
            origin: 7,
            order,
            ..
        },
    ] = sent(&fx)[..]
    else {
        panic!("one amend of the order placed as 7 expected: {fx:?}");
    };
    assert_eq!(order, new);

    e.on_reply(now + MS, &ok(req_id));
    assert_eq!(
        drain(&mut e),
        vec![
            Effect::Bind {
                origin: 7,
                cl_id: 8
            },
            Effect::Worker(Command::Rebind { old: 7, req: new }),
            Effect::Core(OrderEvent::Cancelled {
                cl_id: 7,
                reason: CancelReason::Requested
            }),
            Effect::Core(OrderEvent::Accepted { cl_id: 8 }),
        ]
    );
    assert_eq!(e.stats.amends, 1);
    // The amended order is still Kraken's order `wb7`: a cancel names that id.
    e.route(now + SEC, Intent::Cancel { cl_id: 8 }, &UNFILLED);
    assert!(matches!(
        sent(&drain(&mut e))[..],
        [Request::Cancel { origin: 7, .. }]
    ));
}

/// The cancel goes and the new order does not: the core hears it never went, and decides
/// again once the old order's end (and any last fill) is known. Never both live at once.
fn only_the_cancel_went(fx: &[Effect], new: ClientId) -> bool {
    let requests = sent(fx);
    matches!(requests[..], [Request::Cancel { origin: 7, .. }])
        && fx.contains(&Effect::Core(OrderEvent::Cancelled {
            cl_id: new,
            reason: CancelReason::Requested,
        }))
}

#[test]
fn a_refused_amend_cancels_and_places_nothing_until_the_old_order_is_over() {
    let mut e = up();
    placed(&mut e, T0, order(7, Side::Sell, 601_000));
    let new = order(8, Side::Sell, 601_100);
    e.route(T0 + SEC, Intent::Replace { old: 7, new }, &UNFILLED);
    let id = req_id(&sent(&drain(&mut e))[0]);
    // Kraken refuses the amend of an order that has just filled.
    e.on_reply(T0 + SEC + MS, &refused(id, "EOrder:Unknown order"));
    let fx = drain(&mut e);
    assert!(only_the_cancel_went(&fx, 8), "{fx:?}");
    assert_eq!(e.stats.amend_fallbacks, 1);
    assert_eq!(e.stats.amends, 0);
    assert_eq!(e.stats.collapsed, 1);
}

#[test]
fn orders_that_cannot_be_amended_are_cancelled_and_the_core_decides_again() {
    // Not yet acked, filled in part, or turning into a force exit: the cancel alone.
    let cases: [(bool, bool, OrderRequest); 3] = [
        (false, false, order(8, Side::Buy, 599_100)),
        (true, true, order(8, Side::Buy, 599_100)),
        (true, false, force_exit(8)),
    ];
    for (acked, filled, new) in cases {
        let mut e = up();
        let old = order(7, Side::Buy, 599_000);
        if acked {
            placed(&mut e, T0, old);
        } else {
            e.route(T0, Intent::Place(old), &UNFILLED);
            drain(&mut e);
        }
        let filled_fn = move |id: ClientId| filled && id == 7;
        e.route(T0 + SEC, Intent::Replace { old: 7, new }, &filled_fn);
        let fx = drain(&mut e);
        assert!(
            only_the_cancel_went(&fx, 8),
            "acked {acked} filled {filled}: {fx:?}"
        );
    }
}

#[test]
fn a_cancel_before_the_adds_answer_still_settles_on_that_answer() {
    let mut e = up();
    e.route(T0, Intent::Place(order(7, Side::Buy, 599_000)), &UNFILLED);
    let add = req_id(&sent(&drain(&mut e))[0]);
    e.route(T0 + MS, Intent::Cancel { cl_id: 7 }, &UNFILLED);
    let cancel = req_id(&sent(&drain(&mut e))[0]);
    // Kraken says "unknown order" to a cancel that overtook its add: it is tried again.
    e.on_reply(T0 + 2 * MS, &refused(cancel, "EOrder:Unknown order"));
    e.on_reply(T0 + 3 * MS, &ok(add));
    let fx = drain(&mut e);
    assert!(fx.contains(&Effect::Core(OrderEvent::Accepted { cl_id: 7 })));
    assert!(!e.on_timer(T0 + 300 * MS));
    assert!(matches!(
        sent(&drain(&mut e))[..],
        [Request::Cancel { origin: 7, .. }]
    ));
}

#[test]
fn adds_wait_for_the_rate_counter_and_a_cancel_of_a_waiting_one_sends_nothing() {
    let mut e = up();
    // Kraken says the counter is near the limit (Starter: 60, 10 kept for cancels).
    e.observe_rate(T0, 49.5);
    let o = order(7, Side::Buy, 599_000);
    assert_eq!(e.route(T0, Intent::Place(o), &UNFILLED), Route::Ws);
    assert!(drain(&mut e).is_empty());
    assert_eq!(e.stats.rate_holds, 1);
    let due = e.next_due(T0);
    assert!(due > T0 && due <= T0 + SEC, "due {due}");
    e.on_timer(due);
    assert!(matches!(sent(&drain(&mut e))[..], [Request::Add { order, .. }] if order == o));

    e.observe_rate(due, 49.5);
    let o2 = order(9, Side::Sell, 601_000);
    e.route(due, Intent::Place(o2), &UNFILLED);
    e.route(due + MS, Intent::Cancel { cl_id: 9 }, &UNFILLED);
    assert_eq!(
        drain(&mut e),
        vec![Effect::Core(OrderEvent::Cancelled {
            cl_id: 9,
            reason: CancelReason::Requested
        })]
    );
    assert_eq!(e.stats.collapsed, 1);
}

#[test]
fn cancels_never_wait_for_the_rate_counter() {
    let mut e = up();
    placed(&mut e, T0, order(7, Side::Buy, 599_000));
    e.observe_rate(T0 + MS, 59.0);
    e.route(T0 + 2 * MS, Intent::Cancel { cl_id: 7 }, &UNFILLED);
    assert!(matches!(
        sent(&drain(&mut e))[..],
        [Request::Cancel { origin: 7, .. }]
    ));
}

#[test]
fn a_lost_connection_hands_every_open_request_to_rest_and_never_resends_an_add() {
    let mut e = up();
    // An add without its answer.
    e.route(T0, Intent::Place(order(1, Side::Buy, 599_000)), &UNFILLED);
    drain(&mut e);
    // An acked order being cancelled, another being amended.
    placed(&mut e, T0, order(2, Side::Buy, 598_000));
    placed(&mut e, T0, order(3, Side::Sell, 602_000));
    e.route(T0 + SEC, Intent::Cancel { cl_id: 2 }, &UNFILLED);
    let new3 = order(4, Side::Sell, 602_100);
    e.route(T0 + SEC, Intent::Replace { old: 3, new: new3 }, &UNFILLED);
    // One waiting for the counter.
    e.observe_rate(T0 + SEC, 50.0);
    let held = order(5, Side::Buy, 597_000);
    e.route(T0 + SEC, Intent::Place(held), &UNFILLED);
    drain(&mut e);

    let now = T0 + 2 * SEC;
    e.lost(now);
    let fx = drain(&mut e);
    assert!(
        sent(&fx).is_empty(),
        "nothing goes out on a dead link: {fx:?}"
    );
    assert_eq!(
        fx,
        vec![
            Effect::Worker(Command::Lost {
                req: order(1, Side::Buy, 599_000),
                wait_ns: T0 + DEADLINE_NS - now
            }),
            Effect::Rest(Intent::Cancel { cl_id: 2 }),
            Effect::Rest(Intent::Replace { old: 3, new: new3 }),
            Effect::Rest(Intent::Place(held)),
        ]
    );
    assert_eq!(e.stats.handed_to_rest, 3);
    assert!(!e.is_up());
    // Late answers change nothing; new intents are the worker's until the stream is back.
    e.on_reply(now + MS, &ok(1002));
    assert!(drain(&mut e).is_empty());
    assert_eq!(
        e.route(now, Intent::Place(order(6, Side::Buy, 599_000)), &UNFILLED),
        Route::Rest
    );
}

#[test]
fn an_unanswered_request_means_the_connection_is_broken() {
    let mut e = up();
    e.route(T0, Intent::Place(order(1, Side::Buy, 599_000)), &UNFILLED);
    drain(&mut e);
    assert!(!e.on_timer(T0 + 9 * SEC));
    assert!(e.on_timer(T0 + REPLY_TIMEOUT_NS + MS));
}

#[test]
fn the_dead_mans_switch_is_refreshed_while_up_and_rearmed_on_reconnect() {
    let mut e = WsEntry::new(Tier::Starter, (20 * SEC, 60));
    assert!(!e.on_timer(T0));
    e.set_up(T0);
    e.on_timer(T0);
    let fx = sent(&drain(&mut e));
    let [
        Request::Deadman {
            req_id,
            timeout_s: 60,
        },
    ] = fx[..]
    else {
        panic!("{fx:?}");
    };
    e.on_reply(T0 + MS, &ok(req_id));
    assert_eq!(e.stats.deadman_refreshes, 1);
    e.on_timer(T0 + 10 * SEC);
    assert!(drain(&mut e).is_empty());
    assert_eq!(e.next_due(T0 + 10 * SEC), T0 + 20 * SEC);
    e.lost(T0 + 11 * SEC);
    e.set_up(T0 + 12 * SEC);
    e.on_timer(T0 + 12 * SEC);
    assert!(matches!(
        sent(&drain(&mut e))[..],
        [Request::Deadman { .. }]
    ));
}

#[test]
fn cancel_all_collapses_waiting_adds_and_is_the_workers_too() {
    let mut e = up();
    e.observe_rate(T0, 50.0);
    e.route(T0, Intent::Place(order(1, Side::Buy, 599_000)), &UNFILLED);
    assert_eq!(e.route(T0, Intent::CancelAll, &UNFILLED), Route::Both);
    let fx = drain(&mut e);
    assert_eq!(
        fx[0],
        Effect::Core(OrderEvent::Cancelled {
            cl_id: 1,
            reason: CancelReason::Requested
        })
    );
    assert!(matches!(sent(&fx)[..], [Request::CancelAll { .. }]));
}

#[test]
fn finished_orders_are_forgotten_but_not_while_a_request_is_open() {
    let mut e = up();
    placed(&mut e, T0, order(1, Side::Buy, 599_000));
    e.route(T0, Intent::Place(order(2, Side::Buy, 598_000)), &UNFILLED);
    drain(&mut e);
    e.prune(&|_| false);
    assert_eq!(
        e.route(T0, Intent::Cancel { cl_id: 1 }, &UNFILLED),
        Route::Rest
    );
    assert_eq!(
        e.route(T0, Intent::Cancel { cl_id: 2 }, &UNFILLED),
        Route::Ws
    );
}

fn json(r: &Request) -> serde_json::Value {
    let mut out = String::new();
    write_request(r, P, "BTC/USD", "TOKEN-XYZ", &mut out);
    serde_json::from_str(&out).expect("valid JSON")
}

#[test]
fn requests_are_written_as_kraken_documents_them() {
    let o = order(0x1234_5678_9abc_def0, Side::Buy, 599_366);
    let deadline = T0 + DEADLINE_NS;
    let v = json(&Request::Add {
        req_id: 1002,
        order: o,
        deadline,
    });
    assert_eq!(v["method"], "add_order");
    assert_eq!(v["req_id"], 1002);
    let p = &v["params"];
    assert_eq!(p["order_type"], "limit");
    assert_eq!(p["side"], "buy");
    assert_eq!(p["symbol"], "BTC/USD");
    assert_eq!(p["limit_price"].to_string(), "59936.6");
    assert_eq!(p["order_qty"].to_string(), "0.001");
    assert_eq!(p["post_only"], true);
    assert!(p["time_in_force"].is_null());
    assert_eq!(p["token"], "TOKEN-XYZ");
    let cl = p["cl_ord_id"].as_str().unwrap();
    assert_eq!(cl, kraken_cl(o.cl_id));
    assert!(cl.len() <= 18, "{cl}");
    let d = p["deadline"].as_str().unwrap();
    assert_eq!(parse_rfc3339(d.as_bytes()), Some(deadline), "{d}");

    let v = json(&Request::Add {
        req_id: 1003,
        order: force_exit(9),
        deadline,
    });
    assert_eq!(v["params"]["time_in_force"], "ioc");
    assert_eq!(v["params"]["side"], "sell");
    assert!(v["params"]["post_only"].is_null());

    let v = json(&Request::Amend {
        req_id: 1004,
        origin: 9,
        order: order(10, Side::Buy, 599_400),
        deadline,
    });
    assert_eq!(v["method"], "amend_order");
    assert_eq!(v["params"]["cl_ord_id"], kraken_cl(9));
    assert_eq!(v["params"]["limit_price"].to_string(), "59940.0");
    assert_eq!(v["params"]["post_only"], true);
    assert!(v["params"]["deadline"].is_string());

    let v = json(&Request::Cancel {
        req_id: 1005,
        origin: 9,
    });
    assert_eq!(v["method"], "cancel_order");
    assert_eq!(v["params"]["cl_ord_id"][0], kraken_cl(9));
    let v = json(&Request::CancelAll { req_id: 1006 });
    assert_eq!(v["method"], "cancel_all");
    let v = json(&Request::Deadman {
        req_id: 1007,
        timeout_s: 60,
    });
    assert_eq!(v["method"], "cancel_all_orders_after");
    assert_eq!(v["params"]["timeout"], 60);
}
