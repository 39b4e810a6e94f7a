//! The signed REST client against the simulator's private API over loopback HTTP.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wildbot::kraken::errors::KrakenError;
use wildbot::kraken::rest::{AddOrder, Credentials, RestClient};
use wildbot::sim::rest::{DEMO_KEY, DEMO_SECRET, MarketView, RestSim};

fn market(bid: i64, ask: i64) -> Arc<Mutex<MarketView>> {
    Arc::new(Mutex::new(MarketView {
        bid,
        ask,
        trades: Vec::new(),
    }))
}

fn client(sim: &RestSim) -> RestClient {
    RestClient::new(
        &sim.url(),
        "XBTUSD",
        Credentials::new(DEMO_KEY, DEMO_SECRET).unwrap(),
        Duration::from_millis(800),
    )
}

fn order(cl: &str, side: &'static str, price: &str, volume: &str) -> AddOrder {
    AddOrder {
        cl_ord_id: cl.into(),
        side,
        volume: volume.into(),
        price: price.into(),
        post_only: true,
        ioc: false,
    }
}

/// Lets the simulator's matcher run.
fn settle() {
    std::thread::sleep(Duration::from_millis(60));
}

#[test]
fn balances_orders_partial_and_full_fills_and_cancels() {
    let m = market(600_000, 600_010); // 60000.0 / 60001.0
    let sim = RestSim::start("10000", "0.5", m.clone()).unwrap();
    let mut c = client(&sim);

    let b = c.balance().unwrap();
    assert_eq!(b["ZUSD"], "10000.000000000");
    assert_eq!(b["XXBT"], "0.50000000");

    // A resting bid below the touch, then a trade through it for part of its size.
    let txid = c
        .add_order(&order("wb1", "buy", "59990.0", "0.00200000"))
        .unwrap();
    settle();
    m.lock().unwrap().trades.push((599_850, 50_000)); // 59985.0 for 0.0005
    settle();
    let q = c.query_orders(&[&txid]).unwrap();
    let o = &q[&txid];
    assert_eq!(
        (o.status.as_str(), o.vol_exec.as_str()),
        ("open", "0.00050000")
    );
    assert_eq!(o.price, "59990.0", "filled at our limit, never better");
    assert_eq!(o.cl_ord_id.as_deref(), Some("wb1"));
    // The ask falls through our bid: the rest fills.
    {
        let mut v = m.lock().unwrap();
        (v.bid, v.ask) = (599_700, 599_800);
    }
    settle();
    let o = &c.query_orders(&[&txid]).unwrap()[&txid];
    assert_eq!(
        (o.status.as_str(), o.vol_exec.as_str()),
        ("closed", "0.00200000")
    );
    // 0.002 x 59990 = 119.98 USD; maker fee 0.16 % = 0.191968.
    assert_eq!(o.cost, "119.980000000");
    assert_eq!(o.fee, "0.191968000");
    let b = c.balance().unwrap();
    assert_eq!(b["XXBT"], "0.50200000");
    assert_eq!(b["ZUSD"], "9879.828032000");

    // Cancel by our id.
    let t2 = c
        .add_order(&order("wb2", "sell", "61000.0", "0.00100000"))
        .unwrap();
    assert_eq!(c.cancel_order("wb2").unwrap(), 1);
    let o = &c.query_orders(&[&t2]).unwrap()[&t2];
    assert_eq!(
        (o.status.as_str(), o.reason.as_deref()),
        ("canceled", Some("User requested"))
    );
    assert_eq!(c.cancel_order("wb2"), Err(KrakenError::UnknownOrder));
    assert!(c.open_orders().unwrap().is_empty());
}

#[test]
fn a_crossing_post_only_order_is_accepted_then_cancelled_with_kraken_reason() {
    let sim = RestSim::start("10000", "0", market(600_000, 600_010)).unwrap();
    let mut c = client(&sim);
    let txid = c
        .add_order(&order("wb7", "buy", "60002.0", "0.00100000"))
        .unwrap();
    settle();
    let o = &c.query_orders(&[&txid]).unwrap()[&txid];
    assert_eq!(o.status, "canceled");
    assert_eq!(o.reason.as_deref(), Some("Post only order"));
    assert_eq!(o.vol_exec, "0.00000000");
}

#[test]
fn typed_errors_for_bad_requests_and_bad_credentials() {
    let sim = RestSim::start("100", "0", market(600_000, 600_010)).unwrap();
    let mut c = client(&sim);
    assert_eq!(
        c.add_order(&order("wb1", "buy", "59990.0", "0.10000000")),
        Err(KrakenError::InsufficientFunds)
    );
    assert_eq!(
        c.add_order(&order("wb1", "sell", "59990.0", "0.00100000")),
        Err(KrakenError::InsufficientFunds),
        "no sell without BTC"
    );
    assert!(matches!(
        c.add_order(&order("wb1", "buy", "59990.05", "0.00100000")),
        Err(KrakenError::InvalidArguments(_))
    ));
    let mut wrong = RestClient::new(
        &sim.url(),
        "XBTUSD",
        Credentials::new(DEMO_KEY, "c29tZSBvdGhlciBzZWNyZXQ=").unwrap(),
        Duration::from_secs(1),
    );
    let e = wrong.balance().unwrap_err();
    assert!(matches!(e, KrakenError::Auth(_)), "{e:?}");
    assert!(!e.to_string().contains(DEMO_SECRET));

    // A replayed nonce, sent by hand: accepted once, refused the second time.
    let nonce = "99999999999999999";
    let body = format!("nonce={nonce}");
    let secret = wildbot::kraken::sign::Secret::from_base64(DEMO_SECRET).unwrap();
    let sign = wildbot::kraken::sign::api_sign(&secret, "/0/private/Balance", nonce, &body);
    let post = || {
        ureq::post(format!("{}/0/private/Balance", sim.url()))
            .header("API-Key", DEMO_KEY)
            .header("API-Sign", &sign)
            .send(&body)
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    };
    assert!(post().contains(r#""error":[]"#));
    assert!(post().contains("EAPI:Invalid nonce"));
}

#[test]
fn outages_are_typed_and_a_retry_after_a_lost_answer_creates_no_duplicate() {
    let sim = RestSim::start("10000", "0", market(600_000, 600_010)).unwrap();
    let mut c = client(&sim);
    sim.faults().server_errors.store(1, Ordering::SeqCst);
    assert!(matches!(c.balance(), Err(KrakenError::Unavailable(_))));
    sim.faults().rate_limited.store(1, Ordering::SeqCst);
    assert!(matches!(c.balance(), Err(KrakenError::RateLimit(_))));
    sim.faults().slow_ms.store(1_500, Ordering::SeqCst);
    sim.faults().slow.store(1, Ordering::SeqCst);
    assert!(
        matches!(c.balance(), Err(KrakenError::Network(_))),
        "timeout"
    );

    // The order is placed but its answer is lost; the same cl_ord_id again is refused.
    sim.faults().dropped.store(1, Ordering::SeqCst);
    let lost = c.add_order(&order("wb42", "buy", "59000.0", "0.00100000"));
    assert!(matches!(lost, Err(KrakenError::Network(_))), "{lost:?}");
    let again = c.add_order(&order("wb42", "buy", "59000.0", "0.00100000"));
    assert!(again.is_err(), "{again:?}");
    let open = c.open_orders().unwrap();
    assert_eq!(
        open.values()
            .filter(|o| o.cl_ord_id.as_deref() == Some("wb42"))
            .count(),
        1
    );
}

#[test]
fn the_dead_mans_switch_cancels_everything_when_it_runs_out() {
    let sim = RestSim::start("10000", "0", market(600_000, 600_010)).unwrap();
    let mut c = client(&sim);
    c.add_order(&order("wb1", "buy", "59000.0", "0.00100000"))
        .unwrap();
    c.cancel_all_orders_after(1).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(c.open_orders().unwrap().len(), 1, "not yet");
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        c.open_orders().unwrap().is_empty(),
        "cancelled by the timer"
    );
    assert_eq!(sim.exchange().deadman_cancels, 1);
    // Refreshing keeps it from firing; 0 disarms.
    c.add_order(&order("wb2", "buy", "59000.0", "0.00100000"))
        .unwrap();
    c.cancel_all_orders_after(1).unwrap();
    c.cancel_all_orders_after(0).unwrap();
    std::thread::sleep(Duration::from_millis(1_200));
    assert_eq!(c.open_orders().unwrap().len(), 1);
}

#[test]
fn a_closed_order_beyond_the_first_page_is_found_and_pairs_are_looked_up() {
    let sim = RestSim::start("10000", "0", market(600_000, 600_010)).unwrap();
    let mut c = client(&sim);
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        - 30.0;
    // 120 orders end: the first is on the third page of 50.
    for k in 0..120 {
        c.add_order(&order(&format!("wb{k:x}"), "buy", "59000.0", "0.00010000"))
            .unwrap();
        c.cancel_order(&format!("wb{k:x}")).unwrap();
    }
    let first = |o: &wildbot::kraken::rest::OrderInfo| o.cl_ord_id.as_deref() == Some("wb0");
    let one_page = c.closed_orders(start).unwrap();
    assert_eq!(one_page.len(), 120, "every page since start");
    let found = c.find_closed(start, first).unwrap();
    assert!(found.values().any(first), "the oldest is found");
    assert_eq!(sim.exchange().calls["ClosedOrders"], 6, "3 pages each time");
    // AssetPairs: the pair's own asset codes; an unknown pair is Kraken's error.
    let p = c.asset_pair().unwrap();
    assert_eq!((p.base.as_str(), p.quote.as_str()), ("XXBT", "ZUSD"));
    let mut bad = RestClient::new(
        &sim.url(),
        "NOPEUSD",
        Credentials::new(DEMO_KEY, DEMO_SECRET).unwrap(),
        Duration::from_millis(800),
    );
    assert!(matches!(
        bad.asset_pair(),
        Err(KrakenError::InvalidArguments(e)) if e.contains("Unknown asset pair")
    ));
}
