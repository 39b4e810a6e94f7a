//! The order worker against the simulator's private REST API: what live trading relies on.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wildbot::core::event::Side;
use wildbot::core::event::{CancelReason, Intent, OrderEvent, OrderRequest, Purpose, RejectReason};
use wildbot::core::money::{Cash, Price, Qty};
use wildbot::core::ratecounter::Tier;
use wildbot::exec::clordid::kraken_cl;
use wildbot::exec::worker::{self, Command, WorkerConfig, WorkerEvent, WorkerLink};
use wildbot::kraken::rest::Credentials;
use wildbot::sim::rest::{DEMO_KEY, DEMO_SECRET, MarketView, RestSim};

fn market() -> Arc<Mutex<MarketView>> {
    Arc::new(Mutex::new(MarketView {
        bid: 600_000,
        ask: 600_010,
        trades: Vec::new(),
    }))
}

fn cfg(sim: &RestSim) -> WorkerConfig {
    WorkerConfig {
        symbol: "BTC/USD".into(),
        rest_url: sim.url(),
        pair: "XBTUSD".into(),
        precision: wildbot::core::Precision { price: 1, qty: 8 },
        min_interval: Duration::from_millis(50),
        fill_poll: Duration::from_millis(150),
        balance_refresh: Duration::from_secs(300),
        deadman_refresh: Duration::from_secs(20),
        deadman_timeout_s: 60,
        timeout: Duration::from_millis(500),
        tier: Tier::Starter,
        fill_poll_backstop: Duration::from_secs(60),
        private_stream: false,
        ws_orders: false,
        reports: None,
        journal: None,
        adopt: Vec::new(),
    }
}

/// A mio waker the worker can poke (nobody listens in these tests).
fn waker() -> Arc<mio::Waker> {
    let poll = Box::leak(Box::new(mio::Poll::new().unwrap()));
    Arc::new(mio::Waker::new(poll.registry(), mio::Token(9)).unwrap())
}

fn start(c: WorkerConfig) -> WorkerLink {
    worker::start(c, Credentials::new(DEMO_KEY, DEMO_SECRET).unwrap(), waker()).unwrap()
}

fn buy(cl_id: u64, price: i64) -> OrderRequest {
    OrderRequest {
        cl_id,
        side: Side::Buy,
        price: Price(price),
        qty: Qty(200_000), // 0.002
        post_only: true,
        ioc: false,
        purpose: Purpose::Entry,
    }
}

/// The worker's news as the core hears it (no amend in flight: an order's totals are its own).
fn as_order(ev: WorkerEvent) -> Option<OrderEvent> {
    match ev {
        WorkerEvent::Order(ev) => Some(ev),
        WorkerEvent::Totals { cl_id, totals, .. } => Some(OrderEvent::Fill {
            cl_id,
            cum_qty: totals.0,
            cum_cost: totals.1,
            cum_fee: totals.2,
        }),
        _ => None,
    }
}

/// Waits for an event matching `f`, collecting everything seen.
fn wait_for(
    link: &WorkerLink,
    seen: &mut Vec<OrderEvent>,
    f: impl Fn(&OrderEvent) -> bool,
) -> OrderEvent {
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline {
        if let Ok(ev) = link.events.recv_timeout(Duration::from_millis(50)) {
            let Some(ev) = as_order(ev) else { continue };
            seen.push(ev);
            if f(&ev) {
                return ev;
            }
        }
    }
    panic!("no such event; saw {seen:?}");
}

#[test]
fn balances_then_placed_acknowledged_partly_and_fully_filled_then_cancelled() {
    let m = market();
    let sim = RestSim::start("10000", "0", m.clone()).unwrap();
    let link = start(cfg(&sim));
    let mut seen = Vec::new();
    // Balances come first, exactly.
    let b = wait_for(&link, &mut seen, |e| {
        matches!(e, OrderEvent::Balances { .. })
    });
    assert_eq!(
        b,
        OrderEvent::Balances {
            quote: Cash(10_000 * 1_000_000_000),
            base: Qty(0)
        }
    );
    link.send(Intent::Place(buy(1, 599_900))).unwrap();
    wait_for(&link, &mut seen, |e| {
        *e == OrderEvent::Accepted { cl_id: 1 }
    });
    // A trade through our price for a quarter of the size: a partial fill.
    m.lock().unwrap().trades.push((599_800, 50_000));
    let f = wait_for(&link, &mut seen, |e| matches!(e, OrderEvent::Fill { .. }));
    assert_eq!(
        f,
        OrderEvent::Fill {
            cl_id: 1,
            cum_qty: Qty(50_000),
            cum_cost: Cash(599_900 * 50_000),
            // 0.16 % of 29.995 USD = 0.047992 USD.
            cum_fee: Cash(47_992_000),
        }
    );
    // The ask falls through: the rest fills.
    {
        let mut v = m.lock().unwrap();
        (v.bid, v.ask) = (599_700, 599_800);
    }
    wait_for(
        &link,
        &mut seen,
        |e| matches!(e, OrderEvent::Fill { cum_qty, .. } if *cum_qty == Qty(200_000)),
    );
    // A second order, cancelled at our request.
    link.send(Intent::Place(buy(2, 599_000))).unwrap();
    wait_for(&link, &mut seen, |e| {
        *e == OrderEvent::Accepted { cl_id: 2 }
    });
    link.send(Intent::Cancel { cl_id: 2 }).unwrap();
    wait_for(&link, &mut seen, |e| {
        *e == OrderEvent::Cancelled {
            cl_id: 2,
            reason: CancelReason::Requested,
        }
    });
    let report = link.finish().unwrap();
    assert!(report.shutdown_cancel_confirmed);
    assert!(report.intent_to_ack.len() >= 2);
    assert!(sim.exchange().orders.values().all(|o| o.status != "open"));
}

#[test]
fn a_crossing_post_only_order_reaches_the_core_as_a_rejection() {
    let sim = RestSim::start("10000", "0", market()).unwrap();
    let link = start(cfg(&sim));
    let mut seen = Vec::new();
    link.send(Intent::Place(buy(5, 600_020))).unwrap();
    wait_for(&link, &mut seen, |e| {
        *e == OrderEvent::Rejected {
            cl_id: 5,
            reason: RejectReason::PostOnly,
        }
    });
    let _ = link.finish();
}

#[test]
fn a_requote_is_sent_as_one_amend_and_falls_back_when_refused() {
    let sim = RestSim::start("10000", "0", market()).unwrap();
    let link = start(cfg(&sim));
    let mut seen = Vec::new();
    link.send(Intent::Place(buy(1, 599_000))).unwrap();
    wait_for(&link, &mut seen, |e| {
        *e == OrderEvent::Accepted { cl_id: 1 }
    });
    // The core's requote: the old order out, the new one in.
    link.send(Intent::Replace {
        old: 1,
        new: buy(2, 599_100),
    })
    .unwrap();
    wait_for(&link, &mut seen, |e| {
        *e == OrderEvent::Accepted { cl_id: 2 }
    });
    assert!(seen.contains(&OrderEvent::Cancelled {
        cl_id: 1,
        reason: CancelReason::Requested
    }));
    {
        let ex = sim.exchange();
        let open: Vec<_> = ex.orders.values().filter(|o| o.status == "open").collect();
        assert_eq!(open.len(), 1, "the same Kraken order, amended");
        assert_eq!(open[0].price, Price(599_100));
        assert_eq!(ex.calls.get("AmendOrder"), Some(&1));
        assert_eq!(ex.calls.get("AddOrder"), Some(&1));
    }
    // An amend the exchange refuses (the order is gone): cancel + add instead.
    sim.exchange()
        .orders
        .values_mut()
        .for_each(|o| o.status = "canceled");
    link.send(Intent::Replace {
        old: 2,
        new: buy(3, 599_200),
    })
    .unwrap();
    wait_for(&link, &mut seen, |e| {
        *e == OrderEvent::Accepted { cl_id: 3 }
    });
    // The exchange had cancelled it behind our back: the core hears so.
    assert!(seen.contains(&OrderEvent::Cancelled {
        cl_id: 2,
        reason: CancelReason::Exchange
    }));
    let report = link.finish().unwrap();
    assert_eq!((report.amends, report.amend_fallbacks), (1, 1));
}

#[test]
fn a_requote_of_an_exit_that_just_filled_places_nothing_more() {
    // The account holds 0.5 BTC of the user's. The bot's exit sells its own 0.002.
    let sim = RestSim::start("10000", "0.5", market()).unwrap();
    let mut c = cfg(&sim);
    c.fill_poll = Duration::from_secs(60);
    let link = start(c);
    let mut seen = Vec::new();
    let exit = |cl_id, price| OrderRequest {
        side: Side::Sell,
        purpose: Purpose::Exit,
        ..buy(cl_id, price)
    };
    link.send(Intent::Place(exit(1, 600_500))).unwrap();
    wait_for(&link, &mut seen, |e| {
        *e == OrderEvent::Accepted { cl_id: 1 }
    });
    // It fills at the exchange just as the core decides to requote it.
    for o in sim.exchange().orders.values_mut() {
        o.status = "closed";
        o.vol_exec = o.vol;
        o.cost = Cash::notional(o.price, o.vol);
    }
    link.send(Intent::Replace {
        old: 1,
        new: exit(2, 600_400),
    })
    .unwrap();
    wait_for(&link, &mut seen, |e| {
        *e == OrderEvent::Cancelled {
            cl_id: 2,
            reason: CancelReason::Requested,
        }
    });
    assert!(
        seen.iter().any(
            |e| matches!(e, OrderEvent::Fill { cl_id: 1, cum_qty, .. } if *cum_qty == Qty(200_000))
        ),
        "the fill is booked: {seen:?}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let ex = sim.exchange();
    assert_eq!(
        ex.calls.get("AddOrder"),
        Some(&1),
        "the replacement never went: it would have sold 0.002 of the user's BTC"
    );
    assert_eq!(ex.orders.values().filter(|o| o.status == "open").count(), 0);
    drop(ex);
    let report = link.finish().unwrap();
    assert_eq!(report.amend_fallbacks, 1);
    assert!(!seen.contains(&OrderEvent::Accepted { cl_id: 2 }));
}

#[test]
fn a_lost_add_order_answer_never_creates_a_second_order() {
    let sim = RestSim::start("10000", "0", market()).unwrap();
    let link = start(cfg(&sim));
    let mut seen = Vec::new();
    sim.faults().dropped.store(1, Ordering::SeqCst);
    link.send(Intent::Place(buy(7, 599_000))).unwrap();
    wait_for(&link, &mut seen, |e| {
        *e == OrderEvent::Accepted { cl_id: 7 }
    });
    let ex = sim.exchange();
    assert_eq!(ex.orders.len(), 1, "{:?}", ex.orders);
    assert_eq!(ex.calls.get("AddOrder"), Some(&1), "looked, did not resend");
    drop(ex);
    let _ = link.finish();
}

/// A cancel that arrives while a lost AddOrder answer is still being looked for reaches the
/// order: it is found first, then cancelled; nothing is left resting or sent twice.
#[test]
fn a_cancel_during_a_lost_add_order_lookup_still_cancels_the_order() {
    let sim = RestSim::start("10000", "0", market()).unwrap();
    let link = start(cfg(&sim));
    let mut seen = Vec::new();
    sim.faults().dropped.store(1, Ordering::SeqCst);
    link.send(Intent::Place(buy(7, 599_000))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !sim.exchange().calls.contains_key("AddOrder") {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    // The worker is backing off after the lost answer; the lookup has not run yet.
    link.send(Intent::Cancel { cl_id: 7 }).unwrap();
    wait_for(&link, &mut seen, |e| {
        matches!(e, OrderEvent::Cancelled { cl_id: 7, .. })
    });
    let ex = sim.exchange();
    assert_eq!(ex.orders.len(), 1, "{:?}", ex.orders);
    assert!(
        ex.orders.values().all(|o| o.status == "canceled"),
        "{:?}",
        ex.orders
    );
    assert_eq!(ex.calls.get("AddOrder"), Some(&1), "never resent");
    assert_eq!(ex.calls.get("CancelOrder"), Some(&1), "{:?}", ex.calls);
    drop(ex);
    assert!(
        seen.contains(&OrderEvent::Accepted { cl_id: 7 }),
        "{seen:?}"
    );
    let _ = link.finish();
}

/// A WebSocket add whose answer was lost with the connection, and which never reached
/// Kraken: once its deadline has passed it is reported cancelled, and never placed.
#[test]
fn a_lost_websocket_add_that_never_arrived_is_cancelled_after_its_deadline_never_sent() {
    let sim = RestSim::start("10000", "0", market()).unwrap();
    let link = start(cfg(&sim));
    let mut seen = Vec::new();
    let handed = Instant::now();
    link.command(Command::Lost {
        req: buy(7, 599_000),
        wait_ns: 400_000_000,
    })
    .unwrap();
    wait_for(&link, &mut seen, |e| {
        matches!(e, OrderEvent::Cancelled { cl_id: 7, .. })
    });
    assert!(
        handed.elapsed() >= Duration::from_millis(400),
        "looked up before Kraken's engine could have given up on it"
    );
    assert!(
        !seen.contains(&OrderEvent::Accepted { cl_id: 7 }),
        "{seen:?}"
    );
    let ex = sim.exchange();
    assert!(ex.orders.is_empty(), "{:?}", ex.orders);
    assert_eq!(ex.calls.get("AddOrder"), None, "never sent over REST");
    drop(ex);
    let _ = link.finish();
}

/// A WebSocket add that reached Kraken but whose answer was lost is found by its
/// `cl_ord_id` once its deadline has passed, accepted and tracked, never placed again. A
/// cancel that comes before then reaches it when it is found, and nothing else waits for it.
#[test]
fn a_lost_websocket_add_that_arrived_is_found_and_a_cancel_waiting_for_it_reaches_it() {
    let sim = RestSim::start("10000", "0", market()).unwrap();
    let link = start(cfg(&sim));
    let mut seen = Vec::new();
    let params: std::collections::BTreeMap<String, String> = [
        ("pair", "XBTUSD".to_string()),
        ("ordertype", "limit".into()),
        ("type", "buy".into()),
        ("price", "59900.0".into()),
        ("volume", "0.00200000".into()),
        ("oflags", "post".into()),
        ("cl_ord_id", kraken_cl(7)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    sim.exchange()
        .call_ws("add_order", "AddOrder", &params)
        .unwrap();
    link.command(Command::Lost {
        req: buy(7, 599_000),
        wait_ns: 2_000_000_000,
    })
    .unwrap();
    link.send(Intent::Cancel { cl_id: 7 }).unwrap();
    link.send(Intent::Place(buy(8, 598_000))).unwrap();
    wait_for(&link, &mut seen, |e| {
        matches!(e, OrderEvent::Cancelled { cl_id: 7, .. })
    });
    let accepted = |id| {
        seen.iter()
            .position(|e| *e == OrderEvent::Accepted { cl_id: id })
    };
    let (Some(a8), Some(a7)) = (accepted(8), accepted(7)) else {
        panic!("{seen:?}");
    };
    assert!(
        a8 < a7,
        "the other order did not wait for the lookup: {seen:?}"
    );
    let ex = sim.exchange();
    let by_cl = |id| {
        ex.orders
            .values()
            .find(|o| o.cl_ord_id.as_deref() == Some(kraken_cl(id).as_str()))
            .map(|o| o.status)
    };
    assert_eq!(by_cl(7), Some("canceled"), "{:?}", ex.orders);
    assert_eq!(by_cl(8), Some("open"), "{:?}", ex.orders);
    assert_eq!(ex.calls.get("AddOrder"), Some(&1), "7 was never sent again");
    drop(ex);
    let _ = link.finish();
}

/// A cancel-all never waits for a lost WebSocket add's deadline: it goes at once, and the
/// add, landing on Kraken after it (still within its deadline), is cancelled when found.
#[test]
fn a_cancel_all_goes_at_once_and_a_lost_add_landing_after_it_is_cancelled_when_found() {
    let sim = RestSim::start("10000", "0", market()).unwrap();
    let link = start(cfg(&sim));
    let mut seen = Vec::new();
    let handed = Instant::now();
    link.command(Command::Lost {
        req: buy(7, 599_000),
        wait_ns: 3_000_000_000,
    })
    .unwrap();
    link.send(Intent::CancelAll).unwrap();
    while !sim.exchange().calls.contains_key("CancelAll") {
        assert!(
            handed.elapsed() < Duration::from_secs(3),
            "the cancel-all waited"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let params: std::collections::BTreeMap<String, String> = [
        ("pair", "XBTUSD".to_string()),
        ("ordertype", "limit".into()),
        ("type", "buy".into()),
        ("price", "59900.0".into()),
        ("volume", "0.00200000".into()),
        ("cl_ord_id", kraken_cl(7)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    sim.exchange()
        .call_ws("add_order", "AddOrder", &params)
        .unwrap();
    wait_for(&link, &mut seen, |e| {
        matches!(e, OrderEvent::Cancelled { cl_id: 7, .. })
    });
    assert!(
        seen.contains(&OrderEvent::Accepted { cl_id: 7 }),
        "{seen:?}"
    );
    let ex = sim.exchange();
    assert!(
        ex.orders.values().all(|o| o.status == "canceled"),
        "{:?}",
        ex.orders
    );
    drop(ex);
    let _ = link.finish();
}

/// A lost AddOrder answer for an order that already ended is found among the closed orders:
/// never sent again, and its end reaches the core (here: cancelled as post-only).
#[test]
fn a_lost_add_order_that_already_ended_is_found_among_closed_orders() {
    let sim = RestSim::start("10000", "0", market()).unwrap();
    let link = start(cfg(&sim));
    let mut seen = Vec::new();
    sim.faults().dropped.store(1, Ordering::SeqCst);
    // Crosses the touch (ask 600 010): accepted, then cancelled as post-only.
    link.send(Intent::Place(buy(8, 600_500))).unwrap();
    wait_for(&link, &mut seen, |e| {
        *e == OrderEvent::Rejected {
            cl_id: 8,
            reason: RejectReason::PostOnly,
        }
    });
    let ex = sim.exchange();
    let calls = |m: &str| ex.call_log.iter().filter(|(_, c)| c == m).count();
    assert_eq!(
        (calls("AddOrder"), calls("ClosedOrders")),
        (1, 1),
        "never resent"
    );
    drop(ex);
    assert!(
        seen.contains(&OrderEvent::Accepted { cl_id: 8 }),
        "{seen:?}"
    );
    let _ = link.finish();
}

#[test]
fn rate_limit_and_server_errors_back_off_two_seconds_then_double() {
    let sim = RestSim::start("10000", "0", market()).unwrap();
    let link = start(cfg(&sim));
    let mut seen = Vec::new();
    sim.faults().rate_limited.store(1, Ordering::SeqCst);
    let t0 = Instant::now();
    // Refused for the rate limit: certainly not placed, so the core hears a rejection.
    link.send(Intent::Place(buy(1, 599_000))).unwrap();
    wait_for(&link, &mut seen, |e| {
        *e == OrderEvent::Rejected {
            cl_id: 1,
            reason: RejectReason::RateLimit,
        }
    });
    // Next, a 502: maybe placed, so the worker looks (after 4 s) among open and closed orders;
    // in neither, it never arrived and is sent again.
    sim.faults().server_errors.store(1, Ordering::SeqCst);
    link.send(Intent::Place(buy(2, 599_000))).unwrap();
    wait_for(&link, &mut seen, |e| {
        *e == OrderEvent::Accepted { cl_id: 2 }
    });
    let ex = sim.exchange();
    let calls = |m: &str| ex.call_log.iter().filter(|(_, c)| c == m).count();
    assert_eq!((calls("AddOrder"), calls("ClosedOrders")), (3, 1));
    assert_eq!(ex.orders.len(), 1, "one order: {:?}", ex.orders);
    drop(ex);
    assert!(t0.elapsed() >= Duration::from_secs(6), "{:?}", t0.elapsed());
    let log: Vec<Instant> = sim
        .exchange()
        .call_log
        .iter()
        .filter(|(_, m)| m == "AddOrder" || m == "OpenOrders")
        .map(|(t, _)| *t)
        .collect();
    let gaps: Vec<Duration> = log.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().any(|g| *g >= Duration::from_millis(1_900)),
        "{gaps:?}"
    );
    assert!(
        gaps.iter().any(|g| *g >= Duration::from_millis(3_900)),
        "{gaps:?}"
    );
    let _ = link.finish();
}

#[test]
fn an_unreachable_api_fails_start_up() {
    let sim = RestSim::start("10000", "0", market()).unwrap();
    sim.faults().down.store(true, Ordering::SeqCst);
    let e = worker::start(
        cfg(&sim),
        Credentials::new(DEMO_KEY, DEMO_SECRET).unwrap(),
        waker(),
    )
    .unwrap_err();
    assert!(!e.to_string().contains(DEMO_SECRET));
}

/// At start-up, an order an earlier run placed without ever hearing back (no txid in its
/// journal) that has since filled is found among the closed orders and its fill booked.
#[test]
fn a_journal_order_without_an_answer_that_filled_is_booked_at_start() {
    use wildbot::exec::worker::Adopt;
    use wildbot::kraken::rest::{AddOrder, RestClient};
    let sim = RestSim::start("10000", "0", market()).unwrap();
    let req = buy(0x2a, 599_000);
    let mut client = RestClient::new(
        &sim.url(),
        "XBTUSD",
        Credentials::new(DEMO_KEY, DEMO_SECRET).unwrap(),
        Duration::from_secs(2),
    );
    let txid = client
        .add_order(&AddOrder {
            cl_ord_id: "wb2a".into(),
            side: "buy",
            volume: "0.00200000".into(),
            price: "59900.0".into(),
            post_only: true,
            ioc: false,
        })
        .unwrap();
    sim.exchange()
        .fill(&txid, Qty(200_000), Price(599_000), 1_600);
    let placed_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let link = worker::start(
        WorkerConfig {
            adopt: vec![Adopt {
                req,
                exec: Qty(0),
                ids: None,
                placed_ns,
            }],
            ..cfg(&sim)
        },
        Credentials::new(DEMO_KEY, DEMO_SECRET).unwrap(),
        waker(),
    )
    .unwrap();
    let mut seen = Vec::new();
    let fill = wait_for(&link, &mut seen, |e| matches!(e, OrderEvent::Fill { .. }));
    assert!(
        matches!(
            fill,
            OrderEvent::Fill {
                cl_id: 0x2a,
                cum_qty: Qty(200_000),
                ..
            }
        ),
        "{fill:?}"
    );
    let _ = link.finish();
}
