//! The simulator's private REST API: Kraken's endpoints on loopback HTTP, checked and answered
//! the way Kraken does.
//!
//! - Authentication: the `API-Key` must be the demo key and `API-Sign` must be Kraken's
//!   signature of the request with the demo secret (else `EAPI:Invalid key`); the nonce must
//!   exceed the last one seen (else `EAPI:Invalid nonce`).
//! - It keeps balances (USD, BTC) and orders, and matches resting orders against the
//!   simulator's own market (the WS sessions publish their touch and trades into a shared
//!   [`MarketView`]): a post-only order that would cross is accepted and then cancelled with
//!   reason "Post only order"; a resting order fills when the opposite touch crosses it
//!   (fully) or a trade prints through it (partially, by the trade's size), at its limit price,
//!   paying the maker fee; an IOC order takes the touch and pays the taker fee.
//! - CancelAllOrdersAfter arms a timer that really cancels everything when it runs out.
//! - [`RestFaults`]: HTTP 5xx, slow answers (client timeouts), rate-limit errors, and dropped
//!   answers (the request is carried out, the connection closed without a response).
//!
//! - Public AssetPairs answers for the one pair it trades (XBTUSD, under Kraken's other names
//!   for it too); any other pair is `EQuery:Unknown asset pair`.
//! - [`Exchange::hold_fills`] holds fills back from QueryOrders for one call while Balance
//!   already shows them, as the window between a fill and the poll that reports it does.
//!
//! A second AddOrder with the `cl_ord_id` of an order that is still open is refused
//! (`EOrder:Duplicate order`), so a retried request cannot create a second order.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::core::money::{Cash, Decimal, Price, Qty};
use crate::kraken::rest::form_decode;
use crate::kraken::sign::{Secret, api_sign};
use crate::sim::error::{ApiError, SimError};
use crate::sim::private::{PrivateSim, StreamLog};

/// Price and quantity precisions of the simulated BTC/USD.
const PP: u8 = 1;
const QP: u8 = 8;
/// Cash is kept at price + qty decimals.
const CP: u8 = PP + QP;
/// Fees in parts per million of cost.
/// Maker fee, ppm.
pub const MAKER_PPM: i128 = 1_600;
const TAKER_PPM: i128 = 2_600;

/// The demo key pair the simulator accepts (public: it guards nothing but a simulation).
pub const DEMO_KEY: &str = "wildbot-demo-key";
/// Base64 of the demo secret.
pub const DEMO_SECRET: &str = "d2lsZGJvdC1kZW1vLXNlY3JldC1mb3ItdGhlLWtyYWtlbi1zaW11bGF0b3I=";

/// The market as the WS sessions last saw it.
#[derive(Debug, Default)]
pub struct MarketView {
    /// Best bid, price units.
    pub bid: i64,
    /// Best ask, price units.
    pub ask: i64,
    /// Trades not yet matched against resting orders: (price units, lots).
    pub trades: Vec<(i64, u64)>,
}

/// REST fault switches: each counts down one per request.
#[derive(Debug, Default)]
pub struct RestFaults {
    /// Answer with HTTP 502 and an HTML body.
    pub server_errors: AtomicU32,
    /// Carry the request out, then answer only after this many ms (beyond a client timeout).
    pub slow_ms: AtomicU64,
    /// How many requests are slow.
    pub slow: AtomicU32,
    /// Answer `EAPI:Rate limit exceeded` without doing anything.
    pub rate_limited: AtomicU32,
    /// Carry the request out and close the connection without an answer.
    pub dropped: AtomicU32,
    /// Refuse every request with HTTP 503 (the API is down).
    pub down: AtomicBool,
    /// Like `dropped`, for AddOrder requests only.
    pub dropped_add_orders: AtomicU32,
    /// Like `dropped`, for CancelOrder requests only.
    pub dropped_cancels: AtomicU32,
    /// The key lacks the "WebSocket interface" permission: GetWebSocketsToken is refused
    /// with `EGeneral:Permission denied`.
    pub no_websocket_permission: AtomicBool,
}

/// One simulated order.
#[derive(Debug, Clone)]
pub struct SimOrder {
    /// Client id.
    pub cl_ord_id: Option<String>,
    /// Buy?
    pub buy: bool,
    /// Limit price.
    pub price: Price,
    /// Ordered volume.
    pub vol: Qty,
    /// Executed volume.
    pub vol_exec: Qty,
    /// Executed cost.
    pub cost: Cash,
    /// Fees.
    pub fee: Cash,
    /// `open`, `closed`, `canceled`.
    pub status: &'static str,
    /// Close reason.
    pub reason: Option<&'static str>,
    /// Open time, Unix seconds.
    pub opentm: f64,
    /// What QueryOrders shows instead while a fill is held back, and for how many more calls.
    pub held: Option<(Box<SimOrder>, u32)>,
    /// Immediate-or-cancel (a force exit).
    pub ioc: bool,
}

/// Balances, orders and the dead man's switch.
#[derive(Debug)]
pub struct Exchange {
    /// USD at cash precision.
    pub usd: Cash,
    /// BTC lots.
    pub btc: Qty,
    /// Orders by txid.
    pub orders: BTreeMap<String, SimOrder>,
    last_nonce: u64,
    next_txid: u64,
    /// Orders placed or amended since the matcher last ran: (post-only, IOC).
    pending_flags: BTreeMap<String, (bool, bool)>,
    deadman: Option<Instant>,
    /// Orders cancelled by the dead man's switch.
    pub deadman_cancels: u64,
    /// Calls by method name.
    pub calls: BTreeMap<String, u64>,
    /// Every call: when it arrived and its method.
    pub call_log: Vec<(Instant, String)>,
    /// The next this many fills are held back from QueryOrders for one call each, while
    /// Balance already shows them (the window between a fill and the poll that reports it).
    pub hold_fills: u32,
    /// What the private WebSocket streams (executions, ledger, tokens).
    pub stream: StreamLog,
    /// Adds refused because an open order already had their `cl_ord_id` (an order sent
    /// twice).
    pub duplicates_refused: u64,
}

/// A running REST simulator.
pub struct RestSim {
    addr: std::net::SocketAddr,
    exchange: Arc<Mutex<Exchange>>,
    faults: Arc<RestFaults>,
    server: Arc<tiny_http::Server>,
    threads: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    private: Option<PrivateSim>,
}

fn lock(m: &Mutex<Exchange>) -> MutexGuard<'_, Exchange> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl std::fmt::Debug for RestSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestSim")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RestSim {
    /// Starts on a free loopback port with `usd` and `btc` (decimal text) of balance,
    /// matching against `market`.
    ///
    /// # Errors
    /// Bind failure or bad balances.
    pub fn start(
        usd: &str,
        btc: &str,
        market: Arc<Mutex<MarketView>>,
    ) -> Result<RestSim, SimError> {
        let server = Arc::new(
            tiny_http::Server::http("127.0.0.1:0").map_err(|e| SimError::Http(e.to_string()))?,
        );
        let addr = server.server_addr().to_ip().ok_or(SimError::NotIp)?;
        let bad = |s: &str| SimError::Balance(s.to_string());
        let dec = |s: &str| Decimal::parse(s.as_bytes()).map_err(|_| bad(s));
        let exchange = Arc::new(Mutex::new(Exchange {
            usd: Cash::from_decimal_round_up(dec(usd)?, CP),
            btc: Qty(dec(btc)?.to_units(QP).map_err(|_| bad(btc))?),
            orders: BTreeMap::new(),
            last_nonce: 0,
            next_txid: 1,
            pending_flags: BTreeMap::new(),
            deadman: None,
            deadman_cancels: 0,
            calls: BTreeMap::new(),
            call_log: Vec::new(),
            duplicates_refused: 0,
            hold_fills: 0,
            stream: StreamLog::default(),
        }));
        let faults = Arc::new(RestFaults::default());
        let stop = Arc::new(AtomicBool::new(false));
        let secret = Secret::from_base64(DEMO_SECRET)?;
        let mut threads = Vec::new();
        {
            let (srv, ex, f, st) = (
                server.clone(),
                exchange.clone(),
                faults.clone(),
                stop.clone(),
            );
            threads.push(
                std::thread::Builder::new()
                    .name("kraken-sim-rest".into())
                    .spawn(move || serve(&srv, &ex, &f, &secret, &st))
                    .map_err(SimError::io("thread"))?,
            );
        }
        {
            let (ex, st) = (exchange.clone(), stop.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("kraken-sim-match".into())
                    .spawn(move || {
                        while !st.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(5));
                            let (mut m, mut e) = (
                                market
                                    .lock()
                                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                                lock(&ex),
                            );
                            e.match_orders(&mut m);
                            e.check_deadman();
                        }
                    })
                    .map_err(SimError::io("thread"))?,
            );
        }
        let private = Some(PrivateSim::start(exchange.clone())?);
        Ok(RestSim {
            addr,
            exchange,
            faults,
            server,
            threads,
            stop,
            private,
        })
    }

    /// Base URL (`http://127.0.0.1:<port>`), for `rest_url`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The authenticated WebSocket beside it (`ws_auth_url`, its faults and counters).
    ///
    /// # Panics
    /// Never: it runs from start until drop.
    #[must_use]
    pub fn private(&self) -> &PrivateSim {
        self.private
            .as_ref()
            .expect("the private endpoint runs until drop")
    }

    /// Fault switches.
    #[must_use]
    pub fn faults(&self) -> &RestFaults {
        &self.faults
    }

    /// The exchange state (for tests).
    pub fn exchange(&self) -> MutexGuard<'_, Exchange> {
        lock(&self.exchange)
    }
}

impl Drop for RestSim {
    fn drop(&mut self) {
        drop(self.private.take());
        self.stop.store(true, Ordering::SeqCst);
        self.server.unblock();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn take_one(n: &AtomicU32) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
        .is_ok()
}

fn serve(
    server: &tiny_http::Server,
    ex: &Mutex<Exchange>,
    faults: &RestFaults,
    secret: &Secret,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::SeqCst) {
        let Ok(mut req) = server.recv() else { return };
        let mut body = String::new();
        let _ = req.as_reader().read_to_string(&mut body);
        let method = req.url().trim_start_matches("/0/private/").to_string();
        lock(ex).call_log.push((Instant::now(), method.clone()));
        if faults.down.load(Ordering::SeqCst) || take_one(&faults.server_errors) {
            let _ = req.respond(
                tiny_http::Response::from_string("<html>502 Bad Gateway</html>")
                    .with_status_code(502),
            );
            continue;
        }
        if take_one(&faults.rate_limited) {
            let _ = req.respond(json(r#"{"error":["EAPI:Rate limit exceeded"]}"#.into()));
            continue;
        }
        if let Some(query) = method.strip_prefix("/0/public/AssetPairs") {
            let _ = req.respond(json(asset_pairs(query)));
            continue;
        }
        let header = |name: &str| {
            req.headers()
                .iter()
                .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
                .map(|h| h.value.as_str().to_string())
        };
        let path = req.url().to_string();
        let ws_denied =
            method == "GetWebSocketsToken" && faults.no_websocket_permission.load(Ordering::SeqCst);
        let answer = authenticate(
            ex,
            secret,
            &path,
            &body,
            header("API-Key").as_deref(),
            header("API-Sign").as_deref(),
        )
        .and_then(|params| {
            if ws_denied {
                return Err("EGeneral:Permission denied".into());
            }
            lock(ex).call_method(path.trim_start_matches("/0/private/"), &params)
        });
        let text = match answer {
            Ok(result) => format!(r#"{{"error":[],"result":{result}}}"#),
            Err(err) => format!(r#"{{"error":["{err}"]}}"#),
        };
        let drop_this = match method.as_str() {
            "AddOrder" => take_one(&faults.dropped_add_orders),
            "CancelOrder" => take_one(&faults.dropped_cancels),
            _ => false,
        };
        if drop_this || take_one(&faults.dropped) {
            // Done, but the answer never arrives.
            drop(req.into_writer());
            continue;
        }
        if take_one(&faults.slow) {
            std::thread::sleep(Duration::from_millis(faults.slow_ms.load(Ordering::SeqCst)));
        }
        let _ = req.respond(json(text));
    }
}

/// Public AssetPairs for the one pair the simulator trades, under any of Kraken's names for it.
fn asset_pairs(query: &str) -> String {
    let pair = query
        .trim_start_matches('?')
        .split('&')
        .find_map(|kv| kv.strip_prefix("pair="))
        .unwrap_or("XBTUSD");
    let known = [
        "XBTUSD",
        "XXBTZUSD",
        "XBT/USD",
        "BTC/USD",
        "BTCUSD",
        "XBT%2FUSD",
        "BTC%2FUSD",
    ];
    if !known.contains(&pair) {
        return r#"{"error":["EQuery:Unknown asset pair"]}"#.into();
    }
    format!(
        r#"{{"error":[],"result":{{"XXBTZUSD":{{"altname":"XBTUSD","wsname":"XBT/USD","aclass_base":"currency","base":"XXBT","aclass_quote":"currency","quote":"ZUSD","lot":"unit","cost_decimals":5,"pair_decimals":{PP},"lot_decimals":{QP},"lot_multiplier":1,"fees":[[0,0.26]],"fees_maker":[[0,0.16]],"fee_volume_currency":"ZUSD","margin_call":80,"margin_stop":40,"ordermin":"0.0001","costmin":"0.5","tick_size":"0.1","status":"online"}}}}}}"#
    )
}

fn json(text: String) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let ct = tiny_http::Header::from_bytes("Content-Type", "application/json").expect("header");
    tiny_http::Response::from_string(text).with_header(ct)
}

fn authenticate(
    ex: &Mutex<Exchange>,
    secret: &Secret,
    path: &str,
    body: &str,
    key: Option<&str>,
    sign: Option<&str>,
) -> Result<BTreeMap<String, String>, ApiError> {
    let params: BTreeMap<String, String> = form_decode(body).into_iter().collect();
    let nonce = params.get("nonce").cloned().unwrap_or_default();
    let expected = api_sign(secret, path, &nonce, body);
    if key != Some(DEMO_KEY) || sign != Some(expected.as_str()) {
        return Err("EAPI:Invalid key".into());
    }
    let n: u64 = nonce.parse().map_err(|_| ApiError("EAPI:Invalid nonce"))?;
    let mut e = lock(ex);
    if n <= e.last_nonce {
        return Err("EAPI:Invalid nonce".into());
    }
    e.last_nonce = n;
    Ok(params)
}

pub(crate) fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Exchange {
    /// One private method, counted: the `result` JSON or Kraken's error (REST and the private
    /// WebSocket's order methods both come here).
    ///
    /// # Errors
    /// What Kraken would answer.
    pub fn call_method(
        &mut self,
        method: &str,
        p: &BTreeMap<String, String>,
    ) -> Result<String, ApiError> {
        *self.calls.entry(method.to_string()).or_default() += 1;
        self.call(method, p)
    }

    /// A WebSocket order method (`add_order`, ...), done as the REST method `rest` does it:
    /// counted and logged under the WebSocket name, so `calls["AddOrder"]` counts REST only.
    ///
    /// # Errors
    /// Kraken's error text, as for REST.
    pub fn call_ws(
        &mut self,
        ws: &str,
        rest: &str,
        p: &BTreeMap<String, String>,
    ) -> Result<String, ApiError> {
        *self.calls.entry(ws.to_string()).or_default() += 1;
        self.call_log.push((Instant::now(), ws.to_string()));
        self.call(rest, p)
    }

    fn call(&mut self, method: &str, p: &BTreeMap<String, String>) -> Result<String, ApiError> {
        match method {
            "GetWebSocketsToken" => Ok(format!(
                r#"{{"token":"{}","expires":900}}"#,
                self.stream.issue_token()
            )),
            "Balance" => Ok(format!(
                r#"{{"ZUSD":"{}","XXBT":"{}","KFEE":"0.00"}}"#,
                self.usd.show(CP),
                self.btc.show(QP)
            )),
            "AddOrder" => self.add_order(p),
            "AmendOrder" => self.amend_order(p),
            "CancelOrder" => {
                let id = p
                    .get("cl_ord_id")
                    .or_else(|| p.get("txid"))
                    .ok_or("EGeneral:Invalid arguments")?;
                let txid = self.find(id).ok_or("EOrder:Unknown order")?;
                self.cancel(&txid, "User requested");
                Ok(r#"{"count":1}"#.into())
            }
            "CancelAll" => Ok(format!(
                r#"{{"count":{}}}"#,
                self.cancel_all("User requested")
            )),
            "CancelAllOrdersAfter" => {
                let t: u64 = p
                    .get("timeout")
                    .and_then(|t| t.parse().ok())
                    .ok_or("EGeneral:Invalid arguments")?;
                self.deadman = (t > 0).then(|| Instant::now() + Duration::from_secs(t));
                let now = crate::core::time::format_rfc3339((unix_now() * 1e9) as i64);
                let trig =
                    crate::core::time::format_rfc3339(((unix_now() + t as f64) * 1e9) as i64);
                Ok(format!(
                    r#"{{"currentTime":"{now}","triggerTime":"{}"}}"#,
                    if t > 0 { trig } else { "0".into() }
                ))
            }
            "OpenOrders" => {
                let open: Vec<String> = self
                    .orders
                    .iter()
                    .filter(|(_, o)| o.status == "open")
                    .map(|(id, o)| format!(r#""{id}":{}"#, info(o)))
                    .collect();
                Ok(format!(r#"{{"open":{{{}}}}}"#, open.join(",")))
            }
            "ClosedOrders" => {
                let start: f64 = p.get("start").and_then(|v| v.parse().ok()).unwrap_or(0.0);
                // The 50 most recent, as Kraken answers.
                let mut recent: Vec<(&String, &SimOrder)> = self
                    .orders
                    .iter()
                    .filter(|(_, o)| o.status != "open" && o.opentm > start)
                    .collect();
                recent.sort_by(|a, b| b.1.opentm.total_cmp(&a.1.opentm));
                // 50 a page from `ofs`, newest first; `count` is every match, as Kraken's.
                let ofs: usize = p.get("ofs").and_then(|v| v.parse().ok()).unwrap_or(0);
                let closed: Vec<String> = recent
                    .iter()
                    .skip(ofs)
                    .take(50)
                    .map(|(id, o)| format!(r#""{id}":{}"#, info(o)))
                    .collect();
                Ok(format!(
                    r#"{{"closed":{{{}}},"count":{}}}"#,
                    closed.join(","),
                    recent.len()
                ))
            }
            "QueryOrders" => {
                let ids = p.get("txid").ok_or("EGeneral:Invalid arguments")?;
                let mut out = Vec::new();
                for id in ids.split(',') {
                    let o = self.orders.get_mut(id).ok_or("EOrder:Invalid order")?;
                    let shown = match &mut o.held {
                        Some((before, n)) => {
                            *n -= 1;
                            info(before)
                        }
                        None => info(o),
                    };
                    if o.held.as_ref().is_some_and(|(_, n)| *n == 0) {
                        o.held = None;
                    }
                    out.push(format!(r#""{id}":{shown}"#));
                }
                Ok(format!("{{{}}}", out.join(",")))
            }
            _ => Err("EGeneral:Unknown method".into()),
        }
    }

    fn find(&self, id: &str) -> Option<String> {
        if self.orders.contains_key(id) {
            return Some(id.to_string());
        }
        self.orders
            .iter()
            .find(|(_, o)| o.status == "open" && o.cl_ord_id.as_deref() == Some(id))
            .map(|(k, _)| k.clone())
    }

    fn add_order(&mut self, p: &BTreeMap<String, String>) -> Result<String, ApiError> {
        let arg = |k: &str| p.get(k).ok_or(ApiError("EGeneral:Invalid arguments"));
        if arg("ordertype")? != "limit" || arg("pair")? != "XBTUSD" {
            return Err("EGeneral:Invalid arguments".into());
        }
        let buy = match arg("type")?.as_str() {
            "buy" => true,
            "sell" => false,
            _ => return Err("EGeneral:Invalid arguments".into()),
        };
        let num = |k: &str, prec: u8| -> Result<u64, ApiError> {
            let d = Decimal::parse(arg(k)?.as_bytes()).map_err(|_| "EGeneral:Invalid arguments")?;
            d.to_units(prec)
                .map_err(|_| ApiError("EOrder:Tick size check failed"))
        };
        let price = Price(num("price", PP)? as i64);
        let vol = Qty(num("volume", QP)?);
        if vol.0 < 10_000 {
            return Err("EOrder:Order minimum not met".into());
        }
        let cl = p.get("cl_ord_id").cloned();
        if let Some(c) = &cl
            && self.find(c).is_some()
        {
            self.duplicates_refused += 1;
            return Err("EOrder:Duplicate order".into());
        }
        // Funds: what open orders already reserve counts as spent.
        let cost = Cash(i128::from(price.0) * i128::from(vol.0));
        if buy {
            let reserved: i128 = self
                .orders
                .values()
                .filter(|o| o.status == "open" && o.buy)
                .map(|o| i128::from(o.price.0) * i128::from(o.vol.0 - o.vol_exec.0))
                .sum();
            if cost.0 + cost.0 * TAKER_PPM / 1_000_000 + reserved > self.usd.0 {
                return Err("EOrder:Insufficient funds".into());
            }
        } else {
            let reserved: u64 = self
                .orders
                .values()
                .filter(|o| o.status == "open" && !o.buy)
                .map(|o| o.vol.0 - o.vol_exec.0)
                .sum();
            if vol.0 + reserved > self.btc.0 {
                return Err("EOrder:Insufficient funds".into());
            }
        }
        let txid = format!(
            "OSIM{:02}-{:05}-WILDBT",
            self.next_txid % 100,
            self.next_txid
        );
        self.next_txid += 1;
        self.orders.insert(
            txid.clone(),
            SimOrder {
                cl_ord_id: cl,
                buy,
                price,
                vol,
                vol_exec: Qty(0),
                cost: Cash(0),
                fee: Cash(0),
                status: "open",
                reason: None,
                opentm: unix_now(),
                held: None,
                ioc: p.get("timeinforce").is_some_and(|t| t == "IOC"),
            },
        );
        let post_only = p
            .get("oflags")
            .is_some_and(|f| f.split(',').any(|x| x == "post"));
        let ioc = p.get("timeinforce").is_some_and(|t| t == "IOC");
        // Stash the flags in the decision below: post-only crossing and IOC are settled at
        // once, against the touch the matcher last saw.
        self.pending_flags.insert(txid.clone(), (post_only, ioc));
        if let Some(o) = self.orders.get(&txid) {
            self.stream.order_new(&txid, o, post_only);
        }
        Ok(format!(
            r#"{{"descr":{{"order":"{} {} XBTUSD @ limit {}"}},"txid":["{txid}"]}}"#,
            if buy { "buy" } else { "sell" },
            vol.show(QP),
            price.show(PP)
        ))
    }

    fn amend_order(&mut self, p: &BTreeMap<String, String>) -> Result<String, ApiError> {
        let id = p
            .get("cl_ord_id")
            .or_else(|| p.get("txid"))
            .ok_or("EGeneral:Invalid arguments")?;
        let txid = self.find(id).ok_or("EOrder:Unknown order")?;
        let o = self.orders.get_mut(&txid).ok_or("EOrder:Unknown order")?;
        if let Some(q) = p.get("order_qty") {
            let d = Decimal::parse(q.as_bytes()).map_err(|_| "EGeneral:Invalid arguments")?;
            o.vol = Qty(d.to_units(QP).map_err(|_| "EGeneral:Invalid arguments")?);
        }
        if let Some(px) = p.get("limit_price") {
            let d = Decimal::parse(px.as_bytes()).map_err(|_| "EGeneral:Invalid arguments")?;
            o.price = Price(
                d.to_units(PP)
                    .map_err(|_| "EOrder:Tick size check failed")? as i64,
            );
        }
        if o.vol.0 <= o.vol_exec.0 {
            o.status = "closed";
        }
        self.stream.amended(&txid, o);
        let post_only = p.get("post_only").is_some_and(|v| v == "true");
        self.pending_flags.insert(txid.clone(), (post_only, false));
        Ok(format!(r#"{{"amend_id":"ASIM-{txid}"}}"#))
    }

    /// Ends an open order with `reason` (as Kraken cancels it).
    pub fn cancel(&mut self, txid: &str, reason: &'static str) {
        if let Some(o) = self.orders.get_mut(txid)
            && o.status == "open"
        {
            o.status = "canceled";
            o.reason = Some(reason);
            self.stream.ended(txid, o, reason);
        }
    }

    fn cancel_all(&mut self, reason: &'static str) -> usize {
        let ids: Vec<String> = self
            .orders
            .iter()
            .filter(|(_, o)| o.status == "open")
            .map(|(k, _)| k.clone())
            .collect();
        for id in &ids {
            self.cancel(id, reason);
        }
        ids.len()
    }

    fn check_deadman(&mut self) {
        if self.deadman.is_some_and(|t| Instant::now() >= t) {
            self.deadman = None;
            let n = self.cancel_all("Cancel all orders after timer expired");
            self.deadman_cancels += n as u64;
        }
    }

    /// Fills up to `qty` of order `txid` at `price`, paying `fee_ppm` of the cost (the
    /// matcher's step; tests call it to fill an order while the bot is away).
    pub fn fill(&mut self, txid: &str, qty: Qty, price: Price, fee_ppm: i128) {
        let Some(o) = self.orders.get_mut(txid) else {
            return;
        };
        let qty = Qty(qty.0.min(o.vol.0 - o.vol_exec.0));
        if qty.0 == 0 {
            return;
        }
        if self.hold_fills > 0 && o.held.is_none() {
            self.hold_fills -= 1;
            let before = SimOrder {
                held: None,
                ..o.clone()
            };
            o.held = Some((Box::new(before), 1));
        }
        let cost = i128::from(price.0) * i128::from(qty.0);
        let fee = (cost * fee_ppm + 999_999) / 1_000_000; // costs are positive: round up
        o.vol_exec.0 += qty.0;
        o.cost.0 += cost;
        o.fee.0 += fee;
        if o.vol_exec == o.vol {
            o.status = "closed";
        }
        if o.buy {
            self.usd.0 -= cost + fee;
            self.btc.0 += qty.0;
        } else {
            self.usd.0 += cost - fee;
            self.btc.0 -= qty.0;
        }
        let buy = o.buy;
        self.stream
            .trade(txid, o, (qty, price, Cash(fee)), fee_ppm == MAKER_PPM);
        self.stream
            .ledger_fill(buy, (qty, Cash(cost), Cash(fee)), (self.btc, self.usd));
    }

    fn match_orders(&mut self, m: &mut MarketView) {
        if m.bid == 0 || m.ask == 0 {
            return;
        }
        let flags: Vec<(String, (bool, bool))> = std::mem::take(&mut self.pending_flags)
            .into_iter()
            .collect();
        for (txid, (post_only, ioc)) in flags {
            let Some(o) = self.orders.get(&txid).cloned() else {
                continue;
            };
            if o.status != "open" {
                continue;
            }
            let crosses = if o.buy {
                o.price.0 >= m.ask
            } else {
                o.price.0 <= m.bid
            };
            if ioc {
                if crosses {
                    let px = Price(if o.buy { m.ask } else { m.bid });
                    self.fill(&txid, Qty(o.vol.0 - o.vol_exec.0), px, TAKER_PPM);
                }
                self.cancel(&txid, "Immediate or cancel");
            } else if post_only && crosses {
                self.cancel(&txid, "Post only order");
            }
        }
        let trades = std::mem::take(&mut m.trades);
        let open: Vec<(String, SimOrder)> = self
            .orders
            .iter()
            .filter(|(_, o)| o.status == "open")
            .map(|(k, o)| (k.clone(), o.clone()))
            .collect();
        for (txid, o) in open {
            // The opposite touch moved through our price: we were taken in full.
            let through = if o.buy {
                m.ask < o.price.0
            } else {
                m.bid > o.price.0
            };
            if through {
                self.fill(&txid, o.vol, o.price, MAKER_PPM);
                continue;
            }
            for &(px, q) in &trades {
                let hits = if o.buy {
                    px <= o.price.0
                } else {
                    px >= o.price.0
                };
                if hits {
                    self.fill(&txid, Qty(q), o.price, MAKER_PPM);
                }
            }
        }
    }
}

fn info(o: &SimOrder) -> String {
    let avg = if o.vol_exec.0 > 0 {
        Price((o.cost.0 / i128::from(o.vol_exec.0)) as i64)
            .show(PP)
            .to_string()
    } else {
        "0.0".into()
    };
    let cl = o
        .cl_ord_id
        .as_ref()
        .map(|c| format!(r#""cl_ord_id":"{c}","#))
        .unwrap_or_default();
    let reason = o
        .reason
        .map(|r| format!(r#""reason":"{r}","#))
        .unwrap_or_default();
    format!(
        r#"{{"refid":null,"userref":0,{cl}"status":"{}",{reason}"opentm":{},"starttm":0,"expiretm":0,"descr":{{"pair":"XBTUSD","type":"{}","ordertype":"limit","price":"{}","price2":"0","leverage":"none","order":"","close":""}},"vol":"{}","vol_exec":"{}","cost":"{}","fee":"{}","price":"{avg}","stopprice":"0.00000","limitprice":"0.00000","misc":"","oflags":"post"}}"#,
        o.status,
        o.opentm,
        if o.buy { "buy" } else { "sell" },
        o.price.show(PP),
        o.vol.show(QP),
        o.vol_exec.show(QP),
        o.cost.show(CP),
        o.fee.show(CP),
    )
}
