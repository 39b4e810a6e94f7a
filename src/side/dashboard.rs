//! The HTTP dashboard (tiny_http, own thread): `/` (a self-contained page), `/api/status`
//! (JSON), `/health`, `/metrics` (Prometheus text).
//!
//! It only ever reads what the feed thread and the order worker *sent* it ([`StatusFeed`],
//! worker reports): it shares no lock with them, so a slow client or a flood of requests
//! cannot slow trading. Loopback clients are always served; any other client must present
//! `dashboard_token` (`Authorization: Bearer …` or `?token=…`), and binding a non-loopback
//! address without a token is refused at start.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use serde_json::{Value, json};

use crate::core::engine::TradingState;
use crate::core::event::Rule;
use crate::core::money::{Cash, Qty};
use crate::core::time::{MS, Nanos, format_rfc3339};
use hdrhistogram::Histogram;

use crate::side::explain::{PauseRules, pause_detail, spread_bps};
use crate::side::history::History;
use crate::side::metrics::MetricsInput;
use crate::side::status::{
    LatencyRow, LinkTrouble, StageHists, StatusFeed, StatusSnapshot, WorkerReport,
};

/// The page's template: its CSS and script inline (no CDN: the box may be offline).
const TEMPLATE: &str = include_str!("dashboard.html");

/// The page with the charting library (uPlot, vendored with its licence in `vendor/uplot/`)
/// inlined, so a remote viewer's `?token=` authorises everything with one request.
static PAGE: LazyLock<String> = LazyLock::new(|| {
    TEMPLATE
        .replace("/*PAGE_CSS*/", PAGE_CSS)
        .replace("/*UPLOT_CSS*/", UPLOT_CSS)
        .replace("/*UPLOT_JS*/", UPLOT_JS)
        .replace("/*CHARTS_JS*/", CHARTS_JS)
});

/// The look the dashboard and the backtest reports share.
pub const PAGE_CSS: &str = include_str!("page.css");
/// Chart helpers the dashboard and the backtest reports share (series styles, fill markers).
pub const CHARTS_JS: &str = include_str!("charts.js");
/// uPlot's stylesheet.
pub const UPLOT_CSS: &str = include_str!("vendor/uplot/uPlot.min.css");
/// uPlot's script (the IIFE build: defines the global `uPlot`).
pub const UPLOT_JS: &str = include_str!("vendor/uplot/uPlot.iife.min.js");

/// A snapshot older than this means the feed thread is not publishing: not healthy.
const SNAPSHOT_STALE: Duration = Duration::from_secs(2);

/// How the dashboard runs.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// Address to bind, e.g. `127.0.0.1:8080` (`:0` picks a free port).
    pub bind: String,
    /// Token non-loopback clients must send.
    pub token: Option<String>,
    /// Symbol traded.
    pub symbol: String,
    /// No frame for this long: the feed is stale.
    pub feed_timeout_ns: Nanos,
    /// The venue is the Kraken simulator (`wildbot demo`).
    pub simulator: bool,
    /// The pause rules' thresholds, to say how far the market is from them.
    pub rules: PauseRules,
}

/// A running dashboard.
#[derive(Debug)]
pub struct Dashboard {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Dashboard {
    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and joins the thread.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Whether `ip` is a loopback address (IPv4-mapped IPv6 included).
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Checks that a non-loopback bind has a token.
///
/// # Errors
/// The address does not parse, or it is not loopback and there is no token.
pub fn check_bind(bind: &str, token: Option<&str>) -> Result<(), DashboardError> {
    let addr: SocketAddr = bind
        .parse()
        .map_err(|_| DashboardError::NotAnAddress(bind.to_string()))?;
    if !is_loopback(addr.ip()) && token.is_none_or(str::is_empty) {
        return Err(DashboardError::NeedsToken(bind.to_string()));
    }
    Ok(())
}

/// Why the dashboard could not start.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// The bind address does not parse.
    #[error("`{0}` is not an IP:port address")]
    NotAnAddress(String),
    /// A non-loopback bind without `dashboard_token`.
    #[error(
        "binding {0} (not loopback) needs dashboard_token, or anyone who can reach it sees the \
         account"
    )]
    NeedsToken(String),
    /// The address is taken or refused.
    #[error("dashboard_bind {bind}: {why}")]
    Bind {
        /// The address.
        bind: String,
        /// The server's error.
        why: String,
    },
    /// The listener is not on an IP address.
    #[error("dashboard: not an IP listener")]
    NotIp,
    /// The thread could not be spawned.
    #[error("dashboard thread: {0}")]
    Thread(std::io::Error),
}

/// Equal-time comparison, so response timing does not leak how much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a request may be served: loopback clients always; others with the token, as a
/// bearer token or a `token` query parameter.
#[must_use]
pub fn authorized(
    remote: Option<SocketAddr>,
    authorization: Option<&str>,
    url: &str,
    token: Option<&str>,
) -> bool {
    if remote.is_some_and(|r| is_loopback(r.ip())) {
        return true;
    }
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return false;
    };
    if let Some(b) = authorization.and_then(|h| h.strip_prefix("Bearer "))
        && same(b.trim().as_bytes(), token.as_bytes())
    {
        return true;
    }
    url.split_once('?').is_some_and(|(_, q)| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .any(|(k, v)| k == "token" && same(v.as_bytes(), token.as_bytes()))
    })
}

/// Starts the dashboard thread.
///
/// # Errors
/// A bad or refused bind address, or the port is taken.
pub fn start(
    cfg: DashboardConfig,
    feed: StatusFeed,
    worker: Option<Receiver<WorkerReport>>,
) -> Result<Dashboard, DashboardError> {
    check_bind(&cfg.bind, cfg.token.as_deref())?;
    let server = tiny_http::Server::http(&cfg.bind).map_err(|e| DashboardError::Bind {
        bind: cfg.bind.clone(),
        why: e.to_string(),
    })?;
    let addr = server.server_addr().to_ip().ok_or(DashboardError::NotIp)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::Builder::new()
        .name("dashboard".into())
        .spawn(move || {
            let mut view = View {
                cfg,
                started: Instant::now(),
                snap: None,
                latency: StageHists::default(),
                worker: None,
                history: History::default(),
            };
            serve(&server, &feed, worker.as_ref(), &mut view, &flag);
        })
        .map_err(DashboardError::Thread)?;
    Ok(Dashboard {
        addr,
        stop,
        handle: Some(handle),
    })
}

/// What the dashboard knows.
struct View {
    cfg: DashboardConfig,
    started: Instant,
    /// The latest snapshot and when it arrived.
    snap: Option<(StatusSnapshot, Instant)>,
    latency: StageHists,
    worker: Option<WorkerReport>,
    /// The session so far, for the charts.
    history: History,
}

impl View {
    fn take_news(&mut self, feed: &StatusFeed, worker: Option<&Receiver<WorkerReport>>) {
        while let Ok(s) = feed.snapshots.try_recv() {
            self.history.record(&s);
            self.snap = Some((s, Instant::now()));
        }
        feed.collect_latency(&mut self.latency);
        if let Some(w) = worker {
            while let Ok(r) = w.try_recv() {
                self.worker = Some(r);
            }
        }
    }
}

fn serve(
    server: &tiny_http::Server,
    feed: &StatusFeed,
    worker: Option<&Receiver<WorkerReport>>,
    view: &mut View,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::SeqCst) {
        let req = server.recv_timeout(Duration::from_millis(50));
        view.take_news(feed, worker);
        match req {
            Ok(Some(req)) => respond(req, view),
            Ok(None) => {}
            Err(e) => {
                log::warn!("dashboard: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

fn respond(req: tiny_http::Request, view: &View) {
    let auth = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .map(|h| h.value.as_str().to_string());
    let url = req.url().to_string();
    let allowed = authorized(
        req.remote_addr().copied(),
        auth.as_deref(),
        &url,
        view.cfg.token.as_deref(),
    );
    let path = url.split('?').next().unwrap_or("");
    let (status, ctype, body) = if !allowed {
        (
            401,
            "application/json",
            r#"{"error":"unauthorized: send dashboard_token as a bearer token or ?token="}"#
                .to_string(),
        )
    } else if req.method() != &tiny_http::Method::Get && req.method() != &tiny_http::Method::Head {
        (
            405,
            "application/json",
            r#"{"error":"GET only"}"#.to_string(),
        )
    } else {
        match path {
            "/" | "/index.html" => (200, "text/html; charset=utf-8", PAGE.clone()),
            "/api/status" => (200, "application/json", status_json(view).to_string()),
            "/api/history" => (
                200,
                "application/json",
                view.history.to_json(since(&url)).to_string(),
            ),
            "/health" => {
                let (code, v) = health(view);
                (code, "application/json", v.to_string())
            }
            "/metrics" => (200, "text/plain; version=0.0.4", metrics(view)),
            _ => (
                404,
                "application/json",
                r#"{"error":"not found"}"#.to_string(),
            ),
        }
    };
    let mut resp = tiny_http::Response::from_string(body)
        .with_status_code(status)
        .with_header(header("Content-Type", ctype))
        .with_header(header("Cache-Control", "no-cache"));
    if status == 401 {
        resp = resp.with_header(header("WWW-Authenticate", "Bearer"));
    }
    let _ = req.respond(resp);
}

/// `since=SECONDS` from the query string.
fn since(url: &str) -> Option<f64> {
    let (_, q) = url.split_once('?')?;
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "since")
        .and_then(|(_, v)| v.parse().ok())
        .filter(|v: &f64| v.is_finite())
}

/// A link's state and trouble for `/api/status`.
fn link_json(state: &str, connects: u64, lost: u64, t: &LinkTrouble) -> Value {
    json!({
        "state": state,
        "connects": connects,
        "lost": lost,
        "failures_in_row": t.failures_in_row,
        "last_error": t.last_error.map(|(e, _)| e.as_str().into_owned()),
        "last_error_at": t.last_error.map(|(_, at)| format_rfc3339(at)),
    })
}

/// Milliseconds since the snapshot's last frame, counting the time since it arrived.
fn frame_age_ms(s: &StatusSnapshot, received: Instant) -> u64 {
    (s.last_frame_age_ns / MS).max(0) as u64 + received.elapsed().as_millis() as u64
}

fn state_text(s: TradingState) -> String {
    match s {
        TradingState::Paused(r) => format!("paused by {}", r.name()),
        TradingState::Stopped => "stopped by drawdown".into(),
        other => other.name().replace('_', " "),
    }
}

/// `(feed state, fresh)`.
fn feed_state(view: &View) -> (&'static str, bool) {
    match &view.snap {
        None => ("starting", false),
        Some((_, at)) if at.elapsed() > SNAPSHOT_STALE => ("stale", false),
        Some((s, _)) if !s.connected => ("disconnected", false),
        Some((s, at)) if frame_age_ms(s, *at) * MS as u64 > view.cfg.feed_timeout_ns as u64 => {
            ("stale", false)
        }
        Some(_) => ("fresh", true),
    }
}

fn health(view: &View) -> (u16, Value) {
    let (feed, fresh) = feed_state(view);
    let stopped = view
        .snap
        .as_ref()
        .is_some_and(|(s, _)| s.state == TradingState::Stopped);
    let ok = fresh && !stopped;
    let status = if stopped {
        "stopped"
    } else if ok {
        "ok"
    } else {
        "unhealthy"
    };
    let body = json!({
        "status": status,
        "uptime_s": view.started.elapsed().as_secs_f64(),
        "feed": feed,
        "last_frame_age_ms": view.snap.as_ref().map(|(s, at)| frame_age_ms(s, *at)),
        "state": view.snap.as_ref().map(|(s, _)| s.state.name()),
    });
    (if ok { 200 } else { 503 }, body)
}

fn latency_json(r: &LatencyRow) -> Value {
    json!({
        "count": r.count, "p50_ns": r.p50_ns, "p90_ns": r.p90_ns, "p99_ns": r.p99_ns,
        "p999_ns": r.p999_ns, "max_ns": r.max_ns,
    })
}

/// Every stage's latency: the feed thread's stages, then the worker's.
fn latency_hists(view: &View) -> Vec<(String, &Histogram<u64>)> {
    let mut rows: Vec<(String, &Histogram<u64>)> = StageHists::NAMES
        .iter()
        .map(|n| (*n).to_string())
        .zip(view.latency.all())
        .collect();
    if let Some(w) = &view.worker {
        rows.push(("intent_to_ack".into(), &w.intent_to_ack));
        for (name, h) in &w.round_trip {
            rows.push((format!("rest_{}", name.to_lowercase()), h));
        }
    }
    rows
}

fn latency_rows(view: &View) -> Vec<(String, LatencyRow)> {
    latency_hists(view)
        .into_iter()
        .map(|(n, h)| (n, LatencyRow::of(h)))
        .collect()
}

/// The whole `/api/status` document (documented in README.md).
fn status_json(view: &View) -> Value {
    let (feed, fresh) = feed_state(view);
    let mut latency = serde_json::Map::new();
    for (name, row) in latency_rows(view) {
        latency.insert(name, latency_json(&row));
    }
    let Some((s, received)) = &view.snap else {
        return json!({
            "symbol": view.cfg.symbol,
            "state": "starting",
            "feed": feed,
            "simulator": view.cfg.simulator,
            "venue": if view.cfg.simulator { "simulator" } else { "kraken" },
            "uptime_s": view.started.elapsed().as_secs_f64(),
            "latency": latency,
        });
    };
    let (pp, qp) = (s.precision.price, s.precision.qty);
    let cp = pp + qp;
    let cash = |c: Cash| c.to_f64(cp);
    let qty = |lots: i64| {
        let v = Qty(lots.unsigned_abs()).to_f64(qp);
        if lots < 0 { -v } else { v }
    };
    let trades: Vec<Value> = s
        .trades
        .iter()
        .flatten()
        .map(|f| {
            json!({
                "time": format_rfc3339(f.ts),
                "order_id": f.cl_id,
                "side": f.side.as_str(),
                "qty": f.qty.to_f64(qp),
                "price": f.price.to_f64(pp),
                "fee": cash(f.fee),
                "realized_pnl": cash(f.realised),
                "purpose": f.purpose.name().replace('_', ""),
            })
        })
        .collect();
    let orders: Vec<Value> = s
        .orders
        .iter()
        .flatten()
        .map(|o| {
            json!({
                "order_id": o.req.cl_id,
                "side": o.req.side.as_str(),
                "price": o.req.price.to_f64(pp),
                "qty": o.req.qty.to_f64(qp),
                "filled": Qty(o.filled).to_f64(qp),
                "state": o.state.name(),
                "purpose": o.req.purpose.name().replace('_', ""),
                "post_only": o.req.post_only,
                "age_s": (s.at - o.placed_at) as f64 / 1e9,
            })
        })
        .collect();
    let mut pauses = serde_json::Map::new();
    for r in Rule::ALL {
        pauses.insert(r.name().into(), json!(s.pause_counts[r as usize]));
    }
    let spread_bps = spread_bps(s);
    let base = view.cfg.symbol.split('/').next().unwrap_or("");
    let c = &s.counters;
    let closed = s.wins + s.losses;
    json!({
        "live_mode": s.live,
        "mode": if s.live { "LIVE" } else { "PAPER" },
        "live_fallback": s.live_fallback,
        "symbol": view.cfg.symbol,
        "state": s.state.name(),
        "state_text": state_text(s.state),
        "paused_by": match s.state { TradingState::Paused(r) => Some(r.name()), _ => None },
        "pause_detail": pause_detail(s, &view.cfg.rules, base),
        "simulator": view.cfg.simulator,
        "venue": if view.cfg.simulator { "simulator" } else { "kraken" },
        "links": {
            "feed": link_json(feed, c.connects, c.reconnects, &s.feed_trouble),
            "private": link_json(s.private_link, c.private_connects, c.private_reconnects,
                &s.private_trouble),
        },
        "feed": feed,
        "feed_fresh": fresh,
        "last_frame_age_ms": frame_age_ms(s, *received),
        "uptime_s": view.started.elapsed().as_secs_f64(),
        "updated": format_rfc3339(s.at),
        "microprice": s.microprice,
        "ema": s.ema,
        "momentum_bps": s.momentum_bps,
        // The original dashboard API's name for the same figure (bps), kept for its readers.
        "momentum": s.momentum_bps,
        "volatility_bps": s.volatility_bps,
        "skew_bps": s.skew_bps,
        "spread_bps": spread_bps,
        "best_bid": s.best_bid.map(|p| p.to_f64(pp)),
        "best_ask": s.best_ask.map(|p| p.to_f64(pp)),
        "balance": cash(s.cash),
        "position": qty(s.position),
        "own_position": qty(s.position),
        "baseline": s.baseline.to_f64(s.precision.qty),
        "account_base": s.account.map(|(b, _)| b.to_f64(s.precision.qty)),
        "account_quote": s.account.map(|(_, q)| cash(q)),
        "dust": s.dust,
        "avg_cost": s.avg_entry.map(|a| a.to_f64(pp)),
        "realized_pnl": cash(s.realised),
        "unrealized_pnl": cash(s.unrealised),
        "fees_paid": cash(s.fees),
        "equity": cash(s.equity),
        "start_equity": cash(s.start_equity),
        "peak_equity": cash(s.peak_equity),
        "drawdown_pct": s.drawdown_ppm as f64 / 10_000.0,
        "max_drawdown_pct": s.max_drawdown_ppm as f64 / 10_000.0,
        "round_trips": s.round_trips,
        "wins": s.wins,
        "losses": s.losses,
        "win_rate": if closed == 0 { 0.0 } else { s.wins as f64 / closed as f64 },
        "open_orders": orders,
        "trade_history": trades,
        "counters": s.counters,
        "private_link": s.private_link,
        "order_transport": s.order_transport,
        "pause_counts": pauses,
        "worker": view.worker.as_ref().map(|w| json!({
            "amends": w.amends,
            "amend_fallbacks": w.amend_fallbacks,
            "rate_holds": w.rate_holds,
            "deadman_refreshes": w.deadman_refreshes,
            "errors": w.errors,
        })),
        "latency": latency,
    })
}

/// `/metrics` (see [`crate::side::metrics`]).
fn metrics(view: &View) -> String {
    let (_, fresh) = feed_state(view);
    crate::side::metrics::render(&MetricsInput {
        uptime_s: view.started.elapsed().as_secs_f64(),
        feed_fresh: fresh,
        symbol: &view.cfg.symbol,
        snap: view.snap.as_ref().map(|(s, _)| s),
        latency: latency_hists(view),
        worker: view.worker.as_ref(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn loopback_is_served_others_need_the_token() {
        let t = Some("s3cret");
        assert!(authorized(addr("127.0.0.1:5000"), None, "/", t));
        assert!(authorized(addr("[::1]:5000"), None, "/", None));
        assert!(authorized(addr("[::ffff:127.0.0.1]:5000"), None, "/", None));
        assert!(!authorized(addr("10.0.0.7:5000"), None, "/", t));
        assert!(!authorized(addr("10.0.0.7:5000"), None, "/", None));
        assert!(!authorized(
            addr("10.0.0.7:5000"),
            Some("Bearer s3cret"),
            "/",
            None
        ));
        assert!(!authorized(
            addr("10.0.0.7:5000"),
            Some("Bearer wrong!"),
            "/",
            t
        ));
        assert!(!authorized(addr("10.0.0.7:5000"), None, "/?token=s3cre", t));
        assert!(authorized(
            addr("10.0.0.7:5000"),
            Some("Bearer s3cret"),
            "/",
            t
        ));
        assert!(authorized(
            addr("10.0.0.7:5000"),
            None,
            "/api/status?x=1&token=s3cret",
            t
        ));
        assert!(!authorized(None, None, "/", t));
    }

    #[test]
    fn a_public_bind_needs_a_token() {
        assert!(check_bind("127.0.0.1:8080", None).is_ok());
        assert!(check_bind("[::1]:8080", None).is_ok());
        let e = check_bind("0.0.0.0:8080", None).unwrap_err();
        assert!(e.to_string().contains("dashboard_token"), "{e}");
        assert!(check_bind("0.0.0.0:8080", Some("")).is_err());
        assert!(check_bind("0.0.0.0:8080", Some("t")).is_ok());
        assert!(check_bind("localhost:8080", None).is_err());
    }
}
