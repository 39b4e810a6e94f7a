//! The simulator's authenticated WebSocket v2 (`ws-auth`): tokens, the `executions` and
//! `balances` channels, and the order methods, on loopback.
//!
//! - **Tokens.** REST `GetWebSocketsToken` issues one; it must be used within 15 minutes and
//!   then lasts as long as the connection that used it. Every private subscribe and every order
//!   request carries it; a wrong or stale one is refused with `ESession:Invalid session`, as
//!   Kraken answers.
//! - **Executions.** Every change the simulated exchange makes to an order ([`StreamLog`],
//!   written by [`super::rest::Exchange`]) is streamed as Kraken does it: `pending_new` + `new`,
//!   one `trade` per fill (with `exec_id`, `last_qty`, `cum_qty`, `fees`), `filled`,
//!   `canceled` / `expired` with a `reason`, `amended`. The subscribe ack carries
//!   `maxratecount`; the snapshot holds the open orders and the last 50 fills (`snap_trades`),
//!   the latter without cumulative totals, as Kraken's are. Messages carry a per-subscription
//!   `sequence`.
//! - **Balances.** A snapshot per asset (spot wallet), then one ledger entry per leg of each
//!   fill, with the new total.
//! - **Order methods.** `add_order`, `amend_order`, `cancel_order`, `cancel_all`,
//!   `cancel_all_orders_after`: the same exchange as REST, answered by `req_id`.
//! - [`PrivateFaults`]: drop every private connection, delay executions, duplicate a fill
//!   message, and send a snapshot without its fills (an order that filled while the client was
//!   away is then only found by asking REST).

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::{Message, WebSocket};

use crate::core::money::{Cash, Price, Qty};
use crate::core::time::format_rfc3339;
use crate::sim::error::SimError;
use crate::sim::rest::{Exchange, SimOrder};

/// How long an unused token stays valid.
pub const TOKEN_TTL: Duration = Duration::from_secs(900);
/// Fills a `snap_trades` snapshot holds.
const SNAP_TRADES: usize = 50;
/// Kraken's answer to a wrong or stale token (OBS: WS clients report `ESession:Invalid session`).
pub const INVALID_SESSION: &str = "ESession:Invalid session";

/// Price, quantity and cash decimals of the simulated BTC/USD.
const PP: u8 = 1;
const QP: u8 = 8;
const CP: u8 = PP + QP;

/// One executions entry, as streamed.
#[derive(Debug, Clone)]
struct Exec {
    at: Instant,
    json: String,
    trade: bool,
}

/// What the exchange did, in the private channels' words, for every private connection to
/// stream from its own cursor.
#[derive(Debug, Default)]
pub struct StreamLog {
    execs: Vec<Exec>,
    ledger: Vec<(Instant, String)>,
    /// The last fills, as `snap_trades` shows them.
    trades: VecDeque<String>,
    next_exec: u64,
    next_ledger: u64,
    /// Issued tokens: when, and whether a subscription used it.
    tokens: BTreeMap<String, (Instant, bool)>,
    next_token: u64,
    /// Tokens issued.
    pub tokens_issued: u64,
    /// Requests refused for their token.
    pub tokens_refused: u64,
}

fn now_text() -> String {
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    format_rfc3339(ns)
}

fn cl_field(o: &SimOrder) -> String {
    o.cl_ord_id
        .as_ref()
        .map(|c| format!(r#","cl_ord_id":"{c}""#))
        .unwrap_or_default()
}

fn side(o: &SimOrder) -> &'static str {
    if o.buy { "buy" } else { "sell" }
}

fn status(o: &SimOrder) -> &'static str {
    match o.status {
        "open" if o.vol_exec.0 > 0 => "partially_filled",
        "open" => "new",
        "closed" => "filled",
        "canceled" => "canceled",
        _ => "expired",
    }
}

fn avg(o: &SimOrder) -> String {
    if o.vol_exec.0 == 0 {
        return "0.0".into();
    }
    Price((o.cost.0 / i128::from(o.vol_exec.0)) as i64)
        .show(PP)
        .to_string()
}

impl StreamLog {
    /// A new token.
    pub fn issue_token(&mut self) -> String {
        self.next_token += 1;
        self.tokens_issued += 1;
        // Not a secret of anything: a simulation's session key.
        let t = format!(
            "SIMTOKEN{:016x}",
            self.next_token.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        );
        self.tokens.insert(t.clone(), (Instant::now(), false));
        t
    }

    /// Whether `token` may be used now (fresh, or already in use by a subscription); `used`
    /// marks it in use.
    pub fn check_token(&mut self, token: &str, used: bool) -> bool {
        let ok = match self.tokens.get_mut(token) {
            Some((at, in_use)) if *in_use || at.elapsed() < TOKEN_TTL => {
                *in_use |= used;
                true
            }
            _ => false,
        };
        if !ok {
            self.tokens_refused += 1;
        }
        ok
    }

    /// Makes every token stale (tests: a token that outlived its 15 minutes).
    pub fn expire_tokens(&mut self) {
        self.tokens.clear();
    }

    fn push(&mut self, json: String, trade: bool) {
        self.execs.push(Exec {
            at: Instant::now(),
            json,
            trade,
        });
    }

    /// An order arrived: `pending_new` with its terms, then `new`.
    pub fn order_new(&mut self, txid: &str, o: &SimOrder, post_only: bool) {
        let (cl, t) = (cl_field(o), now_text());
        self.push(
            format!(
                r#"{{"order_id":"{txid}"{cl},"symbol":"BTC/USD","order_qty":{},"cum_cost":0.0,"time_in_force":"{}","exec_type":"pending_new","side":"{}","order_type":"limit","limit_price":{},"post_only":{post_only},"order_status":"pending_new","fee_usd_equiv":0.0,"timestamp":"{t}"}}"#,
                o.vol.show(QP),
                if o.ioc { "IOC" } else { "GTC" },
                side(o),
                o.price.show(PP),
            ),
            false,
        );
        self.push(
            format!(
                r#"{{"timestamp":"{t}","order_status":"new","exec_type":"new"{cl},"order_id":"{txid}"}}"#
            ),
            false,
        );
    }

    /// One fill of `qty` at `price` paying `fee` (`o` as it is after the fill), then `filled`
    /// if it completed the order; and the two ledger legs.
    pub fn trade(&mut self, txid: &str, o: &SimOrder, fill: (Qty, Price, Cash), maker: bool) {
        let (qty, price, fee) = fill;
        self.next_exec += 1;
        let n = self.next_exec;
        let exec_id = format!("TSIM{n:02}-{n:05}-EXEC");
        let cost = Cash(i128::from(price.0) * i128::from(qty.0));
        let (cl, t) = (cl_field(o), now_text());
        let liq = if maker { "m" } else { "t" };
        let head = format!(
            r#"{{"order_id":"{txid}"{cl},"exec_id":"{exec_id}","exec_type":"trade","trade_id":{n},"symbol":"BTC/USD","side":"{}","last_qty":{},"last_price":{},"liquidity_ind":"{liq}","cost":{},"order_type":"limit","timestamp":"{t}","order_status":"{}""#,
            side(o),
            qty.show(QP),
            price.show(PP),
            cost.show(CP),
            status(o),
        );
        let fees = format!(
            r#""fee_usd_equiv":{},"fees":[{{"asset":"USD","qty":{}}}]}}"#,
            fee.show(CP),
            fee.show(CP)
        );
        self.push(
            format!(
                r#"{head},"cum_qty":{},"cum_cost":{},"avg_price":{},{fees}"#,
                o.vol_exec.show(QP),
                o.cost.show(CP),
                avg(o),
            ),
            true,
        );
        // The snapshot's copy carries no cumulative totals, as Kraken's does not.
        self.trades.push_back(format!("{head},{fees}"));
        while self.trades.len() > SNAP_TRADES {
            self.trades.pop_front();
        }
        if o.status == "closed" {
            self.push(
                format!(
                    r#"{{"order_id":"{txid}"{cl},"exec_type":"filled","order_status":"filled","cum_qty":{},"cum_cost":{},"avg_price":{},"timestamp":"{t}"}}"#,
                    o.vol_exec.show(QP),
                    o.cost.show(CP),
                    avg(o)
                ),
                false,
            );
        }
    }

    /// The ledger legs of one fill: `base` and `quote` are the new totals.
    pub fn ledger_fill(&mut self, buy: bool, legs: (Qty, Cash, Cash), totals: (Qty, Cash)) {
        let (qty, cost, fee) = legs;
        let (base, quote) = totals;
        self.next_ledger += 1;
        let r = self.next_ledger;
        let t = now_text();
        let (bs, qs) = if buy { ("", "-") } else { ("-", "") };
        let quote_amount = if buy { cost.0 + fee.0 } else { cost.0 - fee.0 };
        let entry = |asset: &str, amount: String, fee: String, balance: String, leg: u8| {
            format!(
                r#"{{"ledger_id":"LSIM{r:05}-{leg}","ref_id":"TSIM{r:05}","timestamp":"{t}","type":"trade","asset":"{asset}","asset_class":"currency","category":"trade","wallet_type":"spot","wallet_id":"main","amount":{amount},"fee":{fee},"balance":{balance}}}"#
            )
        };
        let at = Instant::now();
        self.ledger.push((
            at,
            entry(
                "BTC",
                format!("{bs}{}", qty.show(QP)),
                "0.0".into(),
                base.show(QP).to_string(),
                1,
            ),
        ));
        self.ledger.push((
            at,
            entry(
                "USD",
                format!("{qs}{}", Cash(quote_amount.abs()).show(CP)),
                fee.show(CP).to_string(),
                quote.show(CP).to_string(),
                2,
            ),
        ));
    }

    /// The order ended without (completing) a fill.
    pub fn ended(&mut self, txid: &str, o: &SimOrder, reason: &str) {
        let (cl, t) = (cl_field(o), now_text());
        let kind = if o.status == "canceled" {
            "canceled"
        } else {
            "expired"
        };
        self.push(
            format!(
                r#"{{"timestamp":"{t}","order_status":"{kind}","exec_type":"{kind}","cum_qty":{},"cum_cost":{},"fee_usd_equiv":{},"avg_price":{}{cl},"reason":"{reason}","order_id":"{txid}"}}"#,
                o.vol_exec.show(QP),
                o.cost.show(CP),
                o.fee.show(CP),
                avg(o),
            ),
            false,
        );
    }

    /// The order was amended (new price or quantity).
    pub fn amended(&mut self, txid: &str, o: &SimOrder) {
        let (cl, t) = (cl_field(o), now_text());
        self.push(
            format!(
                r#"{{"timestamp":"{t}","order_status":"{}","exec_type":"amended"{cl},"order_id":"{txid}","order_qty":{},"limit_price":{},"amended":true,"reason":"User requested"}}"#,
                status(o),
                o.vol.show(QP),
                o.price.show(PP),
            ),
            false,
        );
    }
}

/// Misbehaviour switches of the private WebSocket.
#[derive(Debug, Default)]
pub struct PrivateFaults {
    drop_generation: AtomicU64,
    /// Hold executions back this many ms before streaming them.
    pub delay_ms: AtomicU64,
    /// Send the next this many fill messages twice.
    pub duplicate_fills: AtomicU32,
    /// The next this many executions snapshots leave out their fills (`snap_trades`).
    pub snapshot_without_fills: AtomicU32,
    /// Refuse connections' WebSocket upgrades (the private endpoint is down).
    pub down: AtomicBool,
    /// Refuse every token (as Kraken refuses a stale or wrong one).
    pub refuse_tokens: AtomicBool,
    /// The next this many `add_order` requests are carried out, but the connection is cut
    /// before their answers go out (the answer lost with the link).
    pub lose_add_answers: AtomicU32,
}

impl PrivateFaults {
    /// Drops every open private connection (new ones are served).
    pub fn drop_connections(&self) {
        self.drop_generation.fetch_add(1, Ordering::SeqCst);
    }
}

/// What the private WebSocket has done.
#[derive(Debug, Default)]
pub struct PrivateStats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Executions subscriptions served (each with a snapshot).
    pub executions_subscriptions: AtomicU64,
    /// Fill messages streamed (duplicates included).
    pub fills_streamed: AtomicU64,
    /// Order requests by method (`add_order`, ...), in total.
    pub order_requests: AtomicU64,
    /// Requests refused for their token.
    pub token_refusals: AtomicU64,
}

/// The `maxratecount` the subscribe ack announces (Starter).
pub const MAX_RATE_COUNT: u32 = 60;

/// A running private WebSocket endpoint.
#[derive(Debug)]
pub struct PrivateSim {
    addr: SocketAddr,
    faults: Arc<PrivateFaults>,
    stats: Arc<PrivateStats>,
    shutdown: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PrivateSim {
    /// Binds a free loopback port and serves `exchange`.
    ///
    /// # Errors
    /// Bind failure.
    pub fn start(exchange: Arc<Mutex<Exchange>>) -> Result<PrivateSim, SimError> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(SimError::io("bind"))?;
        let addr = listener
            .local_addr()
            .map_err(SimError::io("local address"))?;
        let faults = Arc::new(PrivateFaults::default());
        let stats = Arc::new(PrivateStats::default());
        let shutdown = Arc::new(AtomicBool::new(false));
        let (f, s, sd) = (faults.clone(), stats.clone(), shutdown.clone());
        let thread = std::thread::Builder::new()
            .name("kraken-sim-auth".into())
            .spawn(move || accept_loop(&listener, &exchange, &f, &s, &sd))
            .map_err(SimError::io("thread"))?;
        Ok(PrivateSim {
            addr,
            faults,
            stats,
            shutdown,
            thread: Some(thread),
        })
    }

    /// The `ws://` URL (`ws_auth_url`).
    #[must_use]
    pub fn url(&self) -> String {
        format!("ws://{}/v2", self.addr)
    }

    /// Fault switches.
    #[must_use]
    pub fn faults(&self) -> &PrivateFaults {
        &self.faults
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> &PrivateStats {
        &self.stats
    }
}

impl Drop for PrivateSim {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock(m: &Mutex<Exchange>) -> std::sync::MutexGuard<'_, Exchange> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn accept_loop(
    listener: &TcpListener,
    exchange: &Arc<Mutex<Exchange>>,
    faults: &Arc<PrivateFaults>,
    stats: &Arc<PrivateStats>,
    shutdown: &Arc<AtomicBool>,
) {
    let mut workers = Vec::new();
    for conn in listener.incoming() {
        if shutdown.load(Ordering::SeqCst) {
            break;
        }
        let Ok(tcp) = conn else { continue };
        if faults.down.load(Ordering::SeqCst) {
            drop(tcp);
            continue;
        }
        stats.connections.fetch_add(1, Ordering::SeqCst);
        let (ex, f, s, sd) = (
            exchange.clone(),
            faults.clone(),
            stats.clone(),
            shutdown.clone(),
        );
        let h = std::thread::Builder::new()
            .name("kraken-sim-auth-conn".into())
            .spawn(move || {
                if let Err(e) = serve(tcp, &ex, &f, &s, &sd) {
                    log::debug!("kraken-sim private connection: {e}");
                }
            });
        if let Ok(h) = h {
            workers.push(h);
        }
        workers.retain(|h| !h.is_finished());
    }
    for w in workers {
        let _ = w.join();
    }
}

/// One private connection's subscriptions and cursors.
struct Conn {
    ws: WebSocket<TcpStream>,
    executions: Option<u64>,
    balances: Option<u64>,
    exec_cursor: usize,
    ledger_cursor: usize,
}

fn serve(
    tcp: TcpStream,
    ex: &Mutex<Exchange>,
    faults: &PrivateFaults,
    stats: &PrivateStats,
    shutdown: &AtomicBool,
) -> Result<(), SimError> {
    tcp.set_nodelay(true).map_err(SimError::io("nodelay"))?;
    let generation = faults.drop_generation.load(Ordering::SeqCst);
    let ws = tungstenite::accept(tcp.try_clone().map_err(SimError::io("clone"))?)
        .map_err(|e| SimError::Ws(e.to_string()))?;
    tcp.set_read_timeout(Some(Duration::from_millis(1)))
        .map_err(SimError::io("read timeout"))?;
    let mut c = Conn {
        ws,
        executions: None,
        balances: None,
        exec_cursor: 0,
        ledger_cursor: 0,
    };
    let mut next_heartbeat = Instant::now() + Duration::from_secs(1);
    loop {
        if shutdown.load(Ordering::SeqCst)
            || faults.drop_generation.load(Ordering::SeqCst) != generation
        {
            let _ = tcp.shutdown(std::net::Shutdown::Both);
            return Ok(());
        }
        match c.ws.read() {
            Ok(Message::Text(t)) => c.on_request(t.as_str(), ex, faults, stats)?,
            Ok(Message::Close(_)) => return Ok(()),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(SimError::Ws(e.to_string())),
        }
        c.stream(ex, faults, stats)?;
        if Instant::now() >= next_heartbeat {
            next_heartbeat = Instant::now() + Duration::from_secs(1);
            if c.executions.is_some() || c.balances.is_some() {
                c.send(r#"{"channel":"heartbeat"}"#)?;
            }
        }
    }
}

/// The REST-style parameters of a WS `add_order`, for [`Exchange`]'s order book.
fn add_params(p: &Value) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    m.insert("pair".into(), "XBTUSD".into());
    if p["symbol"].as_str() != Some("BTC/USD") {
        m.insert("pair".into(), text(&p["symbol"]));
    }
    for (from, to) in [
        ("order_type", "ordertype"),
        ("side", "type"),
        ("order_qty", "volume"),
        ("limit_price", "price"),
        ("cl_ord_id", "cl_ord_id"),
    ] {
        if !p[from].is_null() {
            m.insert(to.into(), text(&p[from]));
        }
    }
    if p["post_only"].as_bool() == Some(true) {
        m.insert("oflags".into(), "post".into());
    }
    if p["time_in_force"]
        .as_str()
        .is_some_and(|t| t.eq_ignore_ascii_case("ioc"))
    {
        m.insert("timeinforce".into(), "IOC".into());
    }
    m
}

impl Conn {
    fn send(&mut self, text: &str) -> Result<(), SimError> {
        self.ws
            .send(Message::text(text))
            .map_err(|e| SimError::Ws(e.to_string()))
    }

    fn reply(
        &mut self,
        method: &str,
        req_id: &str,
        r: Result<String, String>,
    ) -> Result<(), SimError> {
        let t = now_text();
        match r {
            Ok(result) => self.send(&format!(
                r#"{{"method":"{method}"{req_id},"result":{result},"success":true,"time_in":"{t}","time_out":"{t}"}}"#
            )),
            Err(e) => self.send(&format!(
                r#"{{"error":"{e}","method":"{method}"{req_id},"success":false,"time_in":"{t}","time_out":"{t}"}}"#
            )),
        }
    }

    fn on_request(
        &mut self,
        text: &str,
        ex: &Mutex<Exchange>,
        faults: &PrivateFaults,
        stats: &PrivateStats,
    ) -> Result<(), SimError> {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return self.reply("", "", Err("EGeneral:Invalid arguments".into()));
        };
        let method = v["method"].as_str().unwrap_or("").to_string();
        let req_id = v
            .get("req_id")
            .map(|r| format!(r#","req_id":{r}"#))
            .unwrap_or_default();
        if method == "ping" {
            let t = now_text();
            return self.send(&format!(
                r#"{{"method":"pong"{req_id},"time_in":"{t}","time_out":"{t}"}}"#
            ));
        }
        let p = &v["params"];
        let token = p["token"].as_str().unwrap_or("");
        let subscribing = method == "subscribe";
        let refused = faults.refuse_tokens.load(Ordering::SeqCst);
        if refused || !lock(ex).stream.check_token(token, subscribing) {
            stats.token_refusals.fetch_add(1, Ordering::Relaxed);
            return self.reply(&method, &req_id, Err(INVALID_SESSION.into()));
        }
        match method.as_str() {
            "subscribe" => self.subscribe(p, &req_id, ex, faults, stats),
            "add_order"
            | "amend_order"
            | "cancel_order"
            | "cancel_all"
            | "cancel_all_orders_after" => {
                stats.order_requests.fetch_add(1, Ordering::Relaxed);
                let replies = order_method(&mut lock(ex), &method, p);
                log::debug!("kraken-sim private: {method}{req_id} -> {replies:?}");
                if method == "add_order" && take_one(&faults.lose_add_answers) {
                    return Err(SimError::Ws("the add's answer lost with the link".into()));
                }
                for r in replies {
                    self.reply(&method, &req_id, r)?;
                }
                Ok(())
            }
            _ => self.reply(&method, &req_id, Err("EGeneral:Unknown method".into())),
        }
    }

    fn subscribe(
        &mut self,
        p: &Value,
        req_id: &str,
        ex: &Mutex<Exchange>,
        faults: &PrivateFaults,
        stats: &PrivateStats,
    ) -> Result<(), SimError> {
        match p["channel"].as_str() {
            Some("executions") => {
                let snap_trades = p["snap_trades"].as_bool().unwrap_or(false)
                    && !take_one(&faults.snapshot_without_fills);
                let (data, cursor) = {
                    let e = lock(ex);
                    let mut data: Vec<String> = e
                        .orders
                        .iter()
                        .filter(|(_, o)| o.status == "open")
                        .map(|(txid, o)| snapshot_order(txid, o))
                        .collect();
                    if snap_trades {
                        data.extend(e.stream.trades.iter().cloned());
                    }
                    (data, e.stream.execs.len())
                };
                self.reply(
                    "subscribe",
                    req_id,
                    Ok(format!(
                        r#"{{"channel":"executions","maxratecount":{MAX_RATE_COUNT},"snap_orders":true,"snap_trades":{snap_trades}}}"#
                    )),
                )?;
                stats
                    .executions_subscriptions
                    .fetch_add(1, Ordering::Relaxed);
                self.exec_cursor = cursor;
                self.executions = Some(1);
                self.send(&format!(
                    r#"{{"channel":"executions","type":"snapshot","data":[{}],"sequence":1}}"#,
                    data.join(",")
                ))
            }
            Some("balances") => {
                let (snap, cursor) = {
                    let e = lock(ex);
                    let one = |asset: &str, b: String| {
                        format!(
                            r#"{{"asset":"{asset}","asset_class":"currency","balance":{b},"wallets":[{{"type":"spot","id":"main","balance":{b}}}]}}"#
                        )
                    };
                    (
                        format!(
                            "{},{}",
                            one("BTC", e.btc.show(QP).to_string()),
                            one("USD", e.usd.show(CP).to_string())
                        ),
                        e.stream.ledger.len(),
                    )
                };
                self.reply(
                    "subscribe",
                    req_id,
                    Ok(r#"{"channel":"balances","snapshot":true}"#.into()),
                )?;
                self.ledger_cursor = cursor;
                self.balances = Some(1);
                self.send(&format!(
                    r#"{{"channel":"balances","type":"snapshot","data":[{snap}],"sequence":1}}"#
                ))
            }
            other => self.reply(
                "subscribe",
                req_id,
                Err(format!("Channel {} not supported", other.unwrap_or("?"))),
            ),
        }
    }

    /// Streams what the exchange did since this connection's cursors (executions held back by
    /// the delay fault wait).
    fn stream(
        &mut self,
        ex: &Mutex<Exchange>,
        faults: &PrivateFaults,
        stats: &PrivateStats,
    ) -> Result<(), SimError> {
        let delay = Duration::from_millis(faults.delay_ms.load(Ordering::Relaxed));
        let (execs, ledger) = {
            let e = lock(ex);
            let execs: Vec<Exec> = if self.executions.is_some() {
                e.stream.execs[self.exec_cursor.min(e.stream.execs.len())..]
                    .iter()
                    .take_while(|x| x.at.elapsed() >= delay)
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            let ledger: Vec<String> = if self.balances.is_some() {
                e.stream.ledger[self.ledger_cursor.min(e.stream.ledger.len())..]
                    .iter()
                    .map(|(_, j)| j.clone())
                    .collect()
            } else {
                Vec::new()
            };
            (execs, ledger)
        };
        self.exec_cursor += execs.len();
        self.ledger_cursor += ledger.len();
        for x in execs {
            let copies = if x.trade && take_one(&faults.duplicate_fills) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                if x.trade {
                    stats.fills_streamed.fetch_add(1, Ordering::Relaxed);
                }
                let seq = self.executions.map_or(1, |s| s + 1);
                self.executions = Some(seq);
                self.send(&format!(
                    r#"{{"channel":"executions","type":"update","data":[{}],"sequence":{seq}}}"#,
                    x.json
                ))?;
            }
        }
        for l in ledger {
            let seq = self.balances.map_or(1, |s| s + 1);
            self.balances = Some(seq);
            self.send(&format!(
                r#"{{"channel":"balances","type":"update","data":[{l}],"sequence":{seq}}}"#
            ))?;
        }
        Ok(())
    }
}

/// An open order as the executions snapshot lists it.
fn snapshot_order(txid: &str, o: &SimOrder) -> String {
    format!(
        r#"{{"order_id":"{txid}"{},"symbol":"BTC/USD","side":"{}","order_type":"limit","limit_price":{},"order_qty":{},"cum_qty":{},"cum_cost":{},"avg_price":{},"time_in_force":"{}","post_only":true,"order_status":"{}","exec_type":"new","timestamp":"{}"}}"#,
        cl_field(o),
        side(o),
        o.price.show(PP),
        o.vol.show(QP),
        o.vol_exec.show(QP),
        o.cost.show(CP),
        avg(o),
        if o.ioc { "IOC" } else { "GTC" },
        status(o),
        now_text()
    )
}

/// A `deadline` as Kraken checks it: RFC 3339, 0.5 s to 60 s ahead.
fn deadline_ok(p: &Value) -> bool {
    let Some(d) = p.get("deadline") else {
        return true;
    };
    let Some(at) = d
        .as_str()
        .and_then(|t| crate::core::time::parse_rfc3339(t.as_bytes()))
    else {
        return false;
    };
    let ahead = at as f64 / 1e9 - super::rest::unix_now();
    (0.5..=60.0).contains(&ahead)
}

/// One order method against the exchange: the `result` object of each reply (one per order
/// for `cancel_order`, as Kraken answers), or Kraken's error text.
fn order_method(e: &mut Exchange, method: &str, p: &Value) -> Vec<Result<String, String>> {
    let ids = |key: &str| -> Vec<String> {
        p[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    if matches!(method, "add_order" | "amend_order") && !deadline_ok(p) {
        return vec![Err("EGeneral:Invalid arguments:deadline".into())];
    }
    let one = |r: Result<String, String>| vec![r];
    match method {
        "add_order" => one(add_order(e, p)),
        "amend_order" => one(amend_order(e, p)),
        "cancel_order" => {
            let all: Vec<String> = ids("order_id")
                .into_iter()
                .chain(ids("cl_ord_id"))
                .collect();
            if all.is_empty() {
                return one(Err("EGeneral:Invalid arguments".into()));
            }
            all.into_iter()
                .map(|id| {
                    let mut params = BTreeMap::new();
                    params.insert("txid".to_string(), id.clone());
                    e.call_ws("cancel_order", "CancelOrder", &params)
                        .map(|_| format!(r#"{{"order_id":"{id}"}}"#))
                        .map_err(|x| x.0.to_string())
                })
                .collect()
        }
        "cancel_all" => one(e
            .call_ws("cancel_all", "CancelAll", &BTreeMap::new())
            .map_err(|x| x.0.to_string())),
        "cancel_all_orders_after" => {
            let mut params = BTreeMap::new();
            params.insert(
                "timeout".to_string(),
                p["timeout"].as_u64().unwrap_or(0).to_string(),
            );
            one(e
                .call_ws("cancel_all_orders_after", "CancelAllOrdersAfter", &params)
                .map_err(|x| x.0.to_string()))
        }
        _ => one(Err("EGeneral:Unknown method".into())),
    }
}

fn add_order(e: &mut Exchange, p: &Value) -> Result<String, String> {
    let params = add_params(p);
    let r = e
        .call_ws("add_order", "AddOrder", &params)
        .map_err(|x| x.0.to_string())?;
    let v: Value = serde_json::from_str(&r).unwrap_or(Value::Null);
    let txid = v["txid"][0].as_str().unwrap_or("").to_string();
    let cl = p["cl_ord_id"]
        .as_str()
        .map(|c| format!(r#","cl_ord_id":"{c}""#))
        .unwrap_or_default();
    Ok(format!(r#"{{"order_id":"{txid}"{cl}}}"#))
}

fn amend_order(e: &mut Exchange, p: &Value) -> Result<String, String> {
    let mut params = BTreeMap::new();
    for (from, to) in [
        ("order_id", "txid"),
        ("cl_ord_id", "cl_ord_id"),
        ("order_qty", "order_qty"),
        ("limit_price", "limit_price"),
        ("post_only", "post_only"),
    ] {
        match &p[from] {
            Value::Null => {}
            Value::String(s) => {
                params.insert(to.to_string(), s.clone());
            }
            v => {
                params.insert(to.to_string(), v.to_string());
            }
        }
    }
    let r = e
        .call_ws("amend_order", "AmendOrder", &params)
        .map_err(|x| x.0.to_string())?;
    let v: Value = serde_json::from_str(&r).unwrap_or(Value::Null);
    let cl = p["cl_ord_id"]
        .as_str()
        .map(|c| format!(r#","cl_ord_id":"{c}""#))
        .unwrap_or_default();
    Ok(format!(
        r#"{{"amend_id":"{}"{cl}}}"#,
        v["amend_id"].as_str().unwrap_or("")
    ))
}

fn take_one(n: &AtomicU32) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
        .is_ok()
}
