//! A Kraken-compatible WebSocket v2 server on loopback, for tests and demos.
//!
//! Each client connection gets its own seeded [`SynthMarket`] (the generator `wildbot bench`
//! uses) and is served by its own thread with plain blocking I/O: this is a test tool, not the
//! hot path. It speaks Kraken's shapes: status on connect; subscribe/unsubscribe acks (or an
//! error ack); the instrument snapshot; book snapshot + updates with correct CRC32 checksums;
//! trades; heartbeats; pongs to application pings.
//!
//! [`Faults`] switches misbehaviour on for tests: drop every connection, go silent, corrupt the
//! next checksums, send malformed frames, reject subscriptions, split frames across TCP writes.
//! TLS (`wss://`) uses a certificate generated at start-up ([`SimTls::generate`]).

pub mod error;
pub mod private;
pub mod rest;
pub mod synth;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::{Message, WebSocket};

use crate::core::time::format_rfc3339;
use crate::sim::synth::{SynthConfig, SynthMarket};
pub use error::SimError;

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Address to bind (port 0: any free port).
    pub bind: SocketAddr,
    /// Market seed; connection `n` uses `seed + n`.
    pub seed: u64,
    /// Wall time between market steps.
    pub step: Duration,
    /// Heartbeat interval while subscribed.
    pub heartbeat: Duration,
    /// Volatility multiplier of the synthetic market (1 = the bench market).
    pub volatility: f64,
    /// Share of trades that sweep the book 10–40 bps deep (wicks).
    pub sweep_probability: f64,
    /// Serve `wss://` with this identity.
    pub tls: Option<SimTls>,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: 42,
            step: Duration::from_millis(5),
            heartbeat: Duration::from_secs(1),
            volatility: 1.0,
            sweep_probability: 0.01,
            tls: None,
        }
    }
}

/// A TLS identity for the simulator and the PEM certificate clients must trust.
#[derive(Clone)]
pub struct SimTls {
    /// PEM certificate (self-signed, for `localhost` and 127.0.0.1).
    pub cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for SimTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimTls { .. }")
    }
}

impl SimTls {
    /// Generates a fresh self-signed certificate for `localhost` / `127.0.0.1`.
    ///
    /// # Errors
    /// Key generation failure.
    pub fn generate() -> Result<SimTls, SimError> {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .map_err(|e| SimError::Tls(format!("certificate: {e}")))?;
        Ok(SimTls {
            cert_pem: ck.cert.pem(),
            key_pem: ck.signing_key.serialize_pem(),
        })
    }

    fn acceptor(&self) -> Result<native_tls::TlsAcceptor, SimError> {
        let id =
            native_tls::Identity::from_pkcs8(self.cert_pem.as_bytes(), self.key_pem.as_bytes())
                .map_err(|e| SimError::Tls(format!("identity: {e}")))?;
        native_tls::TlsAcceptor::new(id).map_err(|e| SimError::Tls(format!("acceptor: {e}")))
    }
}

/// Misbehaviour switches, shared with every connection.
#[derive(Debug, Default)]
pub struct Faults {
    /// Incremented to drop every open connection once.
    drop_generation: AtomicU64,
    /// Send nothing at all (no data, heartbeats or pongs).
    pub silent: AtomicBool,
    /// Corrupt the checksum of this many next book updates.
    pub bad_checksums: AtomicU32,
    /// Send this many malformed frames next.
    pub malformed: AtomicU32,
    /// Answer subscriptions with an error ack.
    pub reject_subscriptions: AtomicBool,
    /// Write frames a few bytes per TCP write.
    pub split_frames: AtomicBool,
    /// Send this many oversized (2 MiB) text frames next.
    pub oversized: AtomicU32,
    /// Ignore this many next book subscriptions (no ack, no data), as if lost on the way.
    pub ignore_book_subscriptions: AtomicU32,
    /// Send this many market steps at once, as fast as the socket takes them (a burst).
    pub burst: AtomicU32,
}

impl Faults {
    /// Drops every open connection (new ones are served normally).
    pub fn drop_connections(&self) {
        self.drop_generation.fetch_add(1, Ordering::SeqCst);
    }
}

/// What the simulator has done.
#[derive(Debug, Default)]
pub struct SimStats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Book subscriptions served (each sends a snapshot).
    pub book_subscriptions: AtomicU64,
    /// Book unsubscriptions.
    pub book_unsubscriptions: AtomicU64,
    /// Book frames sent.
    pub book_frames: AtomicU64,
    /// Pongs sent.
    pub pongs: AtomicU64,
    /// Malformed frames sent.
    pub malformed_sent: AtomicU64,
    /// Corrupted checksums sent.
    pub bad_checksums_sent: AtomicU64,
}

/// A running simulator.
#[derive(Debug)]
pub struct Simulator {
    addr: SocketAddr,
    tls: bool,
    faults: Arc<Faults>,
    stats: Arc<SimStats>,
    shutdown: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    market: Arc<std::sync::Mutex<rest::MarketView>>,
}

impl Simulator {
    /// Binds and starts accepting.
    ///
    /// # Errors
    /// Bind failure or TLS set-up failure.
    pub fn start(cfg: SimConfig) -> Result<Simulator, SimError> {
        let listener = TcpListener::bind(cfg.bind).map_err(SimError::io("bind"))?;
        let addr = listener
            .local_addr()
            .map_err(SimError::io("local address"))?;
        let acceptor = match &cfg.tls {
            Some(t) => Some(Arc::new(t.acceptor()?)),
            None => None,
        };
        let faults = Arc::new(Faults::default());
        let stats = Arc::new(SimStats::default());
        let shutdown = Arc::new(AtomicBool::new(false));
        let market = Arc::new(std::sync::Mutex::new(rest::MarketView::default()));
        let (f, s, sd, m) = (
            faults.clone(),
            stats.clone(),
            shutdown.clone(),
            market.clone(),
        );
        let tls = acceptor.is_some();
        let thread = std::thread::Builder::new()
            .name("kraken-sim".into())
            .spawn(move || accept_loop(&listener, &cfg, acceptor, &f, &s, &sd, &m))
            .map_err(SimError::io("thread"))?;
        Ok(Simulator {
            addr,
            tls,
            faults,
            stats,
            shutdown,
            thread: Some(thread),
            market,
        })
    }

    /// The market the sessions publish (touch and trades), for the REST simulator to match
    /// orders against.
    #[must_use]
    pub fn market(&self) -> Arc<std::sync::Mutex<rest::MarketView>> {
        self.market.clone()
    }

    /// The `ws://` or `wss://` URL clients connect to.
    #[must_use]
    pub fn url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        if self.tls {
            format!("{scheme}://localhost:{}/v2", self.addr.port())
        } else {
            format!("{scheme}://{}/v2", self.addr)
        }
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Fault switches.
    #[must_use]
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// Stops accepting and ends every connection.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        // Unblock accept().
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.shutdown_now();
        }
    }
}

fn accept_loop(
    listener: &TcpListener,
    cfg: &SimConfig,
    acceptor: Option<Arc<native_tls::TlsAcceptor>>,
    faults: &Arc<Faults>,
    stats: &Arc<SimStats>,
    shutdown: &Arc<AtomicBool>,
    market: &Arc<std::sync::Mutex<rest::MarketView>>,
) {
    let mut workers = Vec::new();
    for (n, conn) in listener.incoming().enumerate() {
        if shutdown.load(Ordering::SeqCst) {
            break;
        }
        let Ok(tcp) = conn else { continue };
        stats.connections.fetch_add(1, Ordering::SeqCst);
        let (cfg, acc) = (cfg.clone(), acceptor.clone());
        let shared = Shared {
            faults: faults.clone(),
            stats: stats.clone(),
            shutdown: shutdown.clone(),
            market: market.clone(),
        };
        let seed = cfg.seed + n as u64;
        let h = std::thread::Builder::new()
            .name(format!("kraken-sim-{n}"))
            .spawn(move || {
                if let Err(e) = serve(tcp, &cfg, seed, acc.as_deref(), &shared) {
                    log::debug!("kraken-sim connection {n}: {e}");
                }
            });
        if let Ok(h) = h {
            workers.push(h);
        }
    }
    for w in workers {
        let _ = w.join();
    }
}

/// The server side stream: plain or TLS, optionally writing a few bytes at a time.
struct SimStream {
    inner: Inner,
    faults: Arc<Faults>,
}

enum Inner {
    Plain(TcpStream),
    Tls(Box<native_tls::TlsStream<TcpStream>>),
}

impl Read for SimStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Plain(s) => s.read(buf),
            Inner::Tls(s) => s.read(buf),
        }
    }
}

impl Write for SimStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let split = self.faults.split_frames.load(Ordering::Relaxed);
        let buf = if split { &buf[..buf.len().min(7)] } else { buf };
        let n = match &mut self.inner {
            Inner::Plain(s) => s.write(buf)?,
            Inner::Tls(s) => s.write(buf)?,
        };
        if split {
            // Separate TCP segments: the client sees the frame arrive in pieces.
            self.flush()?;
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Plain(s) => s.flush(),
            Inner::Tls(s) => s.flush(),
        }
    }
}

struct Session {
    ws: WebSocket<SimStream>,
    market: SynthMarket,
    book: bool,
    trades: bool,
    depth: u16,
    symbol: String,
    last_published_trade: u64,
}

fn now_text() -> String {
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    format_rfc3339(ns)
}

/// What every connection shares with the simulator.
struct Shared {
    faults: Arc<Faults>,
    stats: Arc<SimStats>,
    shutdown: Arc<AtomicBool>,
    market: Arc<std::sync::Mutex<rest::MarketView>>,
}

fn serve(
    tcp: TcpStream,
    cfg: &SimConfig,
    seed: u64,
    acceptor: Option<&native_tls::TlsAcceptor>,
    shared: &Shared,
) -> Result<(), SimError> {
    let (faults, stats, shutdown, market) = (
        &shared.faults,
        &*shared.stats,
        &*shared.shutdown,
        &*shared.market,
    );
    if shutdown.load(Ordering::SeqCst) {
        return Ok(());
    }
    tcp.set_nodelay(true).map_err(SimError::io("nodelay"))?;
    let generation = faults.drop_generation.load(Ordering::SeqCst);
    let inner = match acceptor {
        Some(a) => Inner::Tls(Box::new(
            a.accept(tcp.try_clone().map_err(SimError::io("clone"))?)
                .map_err(|e| SimError::Tls(e.to_string()))?,
        )),
        None => Inner::Plain(tcp.try_clone().map_err(SimError::io("clone"))?),
    };
    let stream = SimStream {
        inner,
        faults: faults.clone(),
    };
    let ws = tungstenite::accept(stream).map_err(|e| SimError::Ws(e.to_string()))?;
    // Short read timeouts let one thread both listen and stream the market.
    tcp.set_read_timeout(Some(Duration::from_millis(1)))
        .map_err(SimError::io("read timeout"))?;
    let mut s = Session {
        ws,
        market: SynthMarket::new(SynthConfig {
            seed,
            volatility: cfg.volatility,
            sweep_probability: cfg.sweep_probability,
            ..SynthConfig::default()
        }),
        book: false,
        trades: false,
        depth: 10,
        symbol: "BTC/USD".into(),
        last_published_trade: 0,
    };
    let silent = || faults.silent.load(Ordering::Relaxed);
    if !silent() {
        let id = 769_405_522_530_892_351_u64.wrapping_add(seed);
        s.send(&format!(
            r#"{{"channel":"status","type":"update","data":[{{"version":"2.0.10","system":"online","api_version":"v2","connection_id":{id}}}]}}"#
        ))?;
    }
    let mut next_step = Instant::now() + cfg.step;
    let mut next_heartbeat = Instant::now() + cfg.heartbeat;
    loop {
        if shutdown.load(Ordering::SeqCst)
            || faults.drop_generation.load(Ordering::SeqCst) != generation
        {
            // Abrupt: no close frame, like a network failure.
            let _ = tcp.shutdown(std::net::Shutdown::Both);
            return Ok(());
        }
        match s.ws.read() {
            Ok(Message::Text(t)) => {
                if !silent() {
                    s.on_request(t.as_str(), faults, stats)?;
                }
            }
            Ok(Message::Close(_)) => return Ok(()),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(SimError::Ws(e.to_string())),
        }
        let burst = faults.burst.swap(0, Ordering::SeqCst);
        for _ in 0..burst {
            s.step(faults, stats, silent())?;
        }
        if burst > 0 {
            s.publish(market);
        }
        let now = Instant::now();
        // Catch up on steps missed while reading (read timeouts are coarse), a few at most.
        let mut steps = 0;
        while now >= next_step && steps < 20 {
            next_step += cfg.step;
            steps += 1;
            s.step(faults, stats, silent())?;
            s.publish(market);
        }
        if now >= next_step {
            next_step = now + cfg.step;
        }
        if now >= next_heartbeat {
            next_heartbeat = now + cfg.heartbeat;
            if s.book && !silent() {
                s.send(r#"{"channel":"heartbeat"}"#)?;
            }
        }
    }
}

impl Session {
    /// Shares the market's touch and its latest trade with the REST simulator.
    fn publish(&mut self, market: &std::sync::Mutex<rest::MarketView>) {
        let mut m = market
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((bid, ask)) = self.market.touch() {
            (m.bid, m.ask) = (bid, ask);
        }
        if let Some((id, _, px, q)) = self.market.last_trade()
            && self.last_published_trade != id
            && m.trades.len() < 10_000
        {
            self.last_published_trade = id;
            log::trace!("kraken-sim trade {px} {q}");
            m.trades.push((px, q));
        }
    }

    fn send(&mut self, text: &str) -> Result<(), SimError> {
        self.ws
            .send(Message::text(text))
            .map_err(|e| SimError::Ws(e.to_string()))
    }

    fn on_request(
        &mut self,
        text: &str,
        faults: &Faults,
        stats: &SimStats,
    ) -> Result<(), SimError> {
        let time_in = now_text();
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return self.send(&format!(
                r#"{{"error":"Malformed request","success":false,"time_in":"{time_in}","time_out":"{}"}}"#,
                now_text()
            ));
        };
        let method = v["method"].as_str().unwrap_or("");
        let req_id = v
            .get("req_id")
            .map(|r| format!(r#","req_id":{r}"#))
            .unwrap_or_default();
        let channel = v["params"]["channel"].as_str().unwrap_or("");
        match method {
            "ping" => {
                stats.pongs.fetch_add(1, Ordering::Relaxed);
                let t = now_text();
                self.send(&format!(
                    r#"{{"method":"pong"{req_id},"time_in":"{time_in}","time_out":"{t}"}}"#
                ))
            }
            "subscribe" if faults.reject_subscriptions.load(Ordering::Relaxed) => {
                let t = now_text();
                self.send(&format!(
                    r#"{{"error":"Subscription rejected by the simulator","method":"subscribe"{req_id},"success":false,"time_in":"{time_in}","time_out":"{t}"}}"#
                ))
            }
            "subscribe" if channel == "book" && take_one(&faults.ignore_book_subscriptions) => {
                Ok(()) // lost on the way: no ack, no snapshot
            }
            "subscribe" => match channel {
                "instrument" => {
                    let t = now_text();
                    self.send(&format!(
                        r#"{{"method":"subscribe"{req_id},"result":{{"channel":"instrument","snapshot":true}},"success":true,"time_in":"{time_in}","time_out":"{t}"}}"#
                    ))?;
                    self.send(r#"{"channel":"instrument","type":"snapshot","data":{"assets":[{"id":"BTC","status":"enabled","precision":10,"precision_display":5,"borrowable":true,"collateral_value":1.0,"margin_rate":0.01},{"id":"USD","status":"enabled","precision":4,"precision_display":2,"borrowable":true,"collateral_value":1.0,"margin_rate":0.01}],"pairs":[{"symbol":"BTC/USD","base":"BTC","quote":"USD","status":"online","qty_precision":8,"qty_increment":0.00000001,"price_precision":1,"cost_precision":5,"marginable":true,"has_index":true,"cost_min":0.5,"tick_size":0.1,"price_increment":0.1,"qty_min":0.0001}]}}"#)
                }
                "book" => {
                    if let Some(sym) = v["params"]["symbol"][0].as_str() {
                        self.symbol = sym.to_string();
                    }
                    self.depth = v["params"]["depth"].as_u64().unwrap_or(10) as u16;
                    let t = now_text();
                    self.send(&format!(
                        r#"{{"method":"subscribe"{req_id},"result":{{"channel":"book","depth":{},"snapshot":true,"symbol":"{}"}},"success":true,"time_in":"{time_in}","time_out":"{t}"}}"#,
                        self.depth, self.symbol
                    ))?;
                    self.book = true;
                    stats.book_subscriptions.fetch_add(1, Ordering::Relaxed);
                    let snap = self.market.snapshot_frame();
                    self.send(&snap)
                }
                "trade" => {
                    self.trades = true;
                    let t = now_text();
                    self.send(&format!(
                        r#"{{"method":"subscribe"{req_id},"result":{{"channel":"trade","snapshot":false,"symbol":"{}"}},"success":true,"time_in":"{time_in}","time_out":"{t}"}}"#,
                        self.symbol
                    ))
                }
                other => self.send(&format!(
                    r#"{{"error":"Channel {other} not supported","method":"subscribe"{req_id},"success":false,"time_in":"{time_in}","time_out":"{}"}}"#,
                    now_text()
                )),
            },
            "unsubscribe" => {
                if channel == "book" {
                    self.book = false;
                    stats.book_unsubscriptions.fetch_add(1, Ordering::Relaxed);
                } else if channel == "trade" {
                    self.trades = false;
                }
                let t = now_text();
                self.send(&format!(
                    r#"{{"method":"unsubscribe"{req_id},"result":{{"channel":"{channel}","depth":{},"symbol":"{}"}},"success":true,"time_in":"{time_in}","time_out":"{t}"}}"#,
                    self.depth, self.symbol
                ))
            }
            _ => self.send(&format!(
                r#"{{"error":"Method not found","success":false{req_id},"time_in":"{time_in}","time_out":"{}"}}"#,
                now_text()
            )),
        }
    }

    /// One market step: the market always moves; subscribers see every message of it.
    fn step(&mut self, faults: &Faults, stats: &SimStats, silent: bool) -> Result<(), SimError> {
        self.send_next(faults, stats, silent)?;
        while self.market.has_pending() {
            self.send_next(faults, stats, silent)?;
        }
        Ok(())
    }

    fn send_next(
        &mut self,
        faults: &Faults,
        stats: &SimStats,
        silent: bool,
    ) -> Result<(), SimError> {
        let (_, frame) = self.market.next_frame();
        if silent {
            return Ok(());
        }
        let is_trade = frame.starts_with(r#"{"channel":"trade""#);
        if is_trade {
            return if self.trades {
                self.send(&frame)
            } else {
                Ok(())
            };
        }
        if !self.book {
            return Ok(());
        }
        if take_one(&faults.malformed) {
            stats.malformed_sent.fetch_add(1, Ordering::Relaxed);
            // Cut mid-way: not JSON. The real update is still sent after it, so the book
            // stays in step with ours.
            self.send(&frame[..frame.len() / 2])?;
        }
        if take_one(&faults.oversized) {
            // Valid JSON, far beyond any real message: the client must refuse it, not buffer it.
            let pad = "x".repeat(2 << 20);
            self.send(&format!(r#"{{"channel":"heartbeat","pad":"{pad}"}}"#))?;
        }
        stats.book_frames.fetch_add(1, Ordering::Relaxed);
        if take_one(&faults.bad_checksums) {
            stats.bad_checksums_sent.fetch_add(1, Ordering::Relaxed);
            return self.send(&corrupt_checksum(&frame));
        }
        self.send(&frame)
    }
}

fn take_one(n: &AtomicU32) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
        .is_ok()
}

/// The same frame with a different checksum value.
fn corrupt_checksum(frame: &str) -> String {
    let key = r#""checksum":"#;
    let Some(at) = frame.find(key) else {
        return frame.to_string();
    };
    let start = at + key.len();
    let end = frame[start..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(frame.len(), |e| start + e);
    let value: u64 = frame[start..end].parse().unwrap_or(0);
    format!(
        "{}{}{}",
        &frame[..start],
        (value + 1) % (1 << 32),
        &frame[end..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_checksum_changes_only_the_value() {
        let f = r#"{"channel":"book","data":[{"checksum":4294967295,"timestamp":"x"}]}"#;
        assert_eq!(
            corrupt_checksum(f),
            r#"{"channel":"book","data":[{"checksum":0,"timestamp":"x"}]}"#
        );
    }
}
