//! The feed thread: one mio `Poll`, one Kraken WS v2 connection, the trading core.
//!
//! Data flows one way: socket → [`ws::Connection`] → [`Core::handle`] → intents → bounded
//! channels to side threads (notices, recorder; orders in live mode). The thread never waits on
//! a worker: every hand-over is a `try_send`, telemetry that does not fit is dropped and counted.
//!
//! Everything time-driven lives here too, on the same loop: the watchdog (no frame for
//! `feed_timeout_ms` → the connection is dead), application pings, reconnects with exponential
//! backoff and jitter (1 s → 60 s, reset after a healthy minute), book resubscription with its
//! own backoff, and the core's timer tick.

pub mod recorder;
pub mod ws;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::{Events, Poll, Token, Waker};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::app::config::Config;
use crate::core::Core;
use crate::core::event::{Event, Intent, IntentSink, MAX_INTENTS_PER_EVENT, OrderEvent, Stage};
use crate::core::money::Qty;
use crate::core::time::{MS, Nanos, SEC};
use crate::exec::worker::{self, WorkerConfig, WorkerLink};
use crate::side::journal::{self, Journal, JournalSender, Record};
use crate::side::notify::AlertText;
use crate::side::notify::{Notice, Notifier, Precision, ShortText};
use crate::side::status::{
    Counters as StatusCounters, LatencyRow, OrderView, StageHists, StatusLink, StatusSnapshot,
    TRADES_SHOWN,
};
use recorder::Recorder;
use ws::{Connection, Endpoint};

const WS: Token = Token(0);
const WAKER: Token = Token(1);

/// How often the core gets a timer event when the market is quiet.
pub const TIMER_NS: Nanos = 100 * MS;
/// Reconnect backoff bounds.
const BACKOFF_MIN_NS: Nanos = SEC;
const BACKOFF_MAX_NS: Nanos = 60 * SEC;
/// A connection up this long resets the reconnect backoff.
const HEALTHY_NS: Nanos = 60 * SEC;
/// Account summary notice interval.
const PNL_EVERY_NS: Nanos = 10 * SEC;

/// How a run is bounded, what it records, and who watches it.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop cleanly after this long.
    pub duration: Option<Duration>,
    /// Record every received frame to this file.
    pub record: Option<String>,
    /// Set (from a signal handler or a test) to stop; wake the loop with [`StopHandle`].
    pub stop: Arc<AtomicBool>,
    /// Kraken API credentials for live mode (from the environment, or the demo pair).
    pub credentials: Option<crate::kraken::rest::Credentials>,
    /// Status snapshots and latency for the dashboard.
    pub status: Option<StatusLink>,
    /// The order worker's reports for the dashboard (live mode).
    pub worker_reports: Option<crossbeam_channel::Sender<worker::WorkerReport>>,
}

/// Stops a running feed from another thread.
#[derive(Debug, Clone)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl StopHandle {
    /// Asks the feed loop to finish and wakes it.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
}

/// The session summary (`--json` prints it as one object).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// `paper` or `live`.
    pub mode: &'static str,
    /// Wall time of the run in seconds.
    pub duration_s: f64,
    /// Feed and core counters (their fields appear at the top level of the JSON).
    #[serde(flatten)]
    pub counters: StatusCounters,
    /// Book updates ignored while waiting for a snapshot.
    pub updates_ignored: u64,
    /// Subscription errors from Kraken.
    pub subscribe_errors: u64,
    /// Pings sent / pongs received.
    pub pings: u64,
    /// Pongs received.
    pub pongs: u64,
    /// Heartbeats received.
    pub heartbeats: u64,
    /// Position in base units.
    pub position: f64,
    /// Realised PnL (quote currency).
    pub realized_pnl: f64,
    /// Unrealised PnL at the last mark.
    pub unrealized_pnl: f64,
    /// Mark-to-market equity.
    pub equity: f64,
    /// Fees paid.
    pub fees_paid: f64,
    /// Frames written by the recorder.
    pub frames_recorded: u64,
    /// Frame received → decoded.
    pub frame_to_parsed: LatencyRow,
    /// Book apply with checksum.
    pub book_apply: LatencyRow,
    /// Signals, paper fills, strategy and risk.
    pub strategy: LatencyRow,
    /// Frame received → order intent handed to the worker channel, on the feed thread.
    pub tick_to_intent: LatencyRow,
    /// Place intent received by the order worker → Kraken's answer (live mode).
    pub intent_to_ack: LatencyRow,
    /// REST round trip per endpoint (live mode).
    pub rest_round_trip: std::collections::BTreeMap<String, LatencyRow>,
    /// Requotes sent as AmendOrder (live mode).
    pub amends: u64,
    /// Whether the final cancel-all was confirmed by the exchange (live mode).
    pub shutdown_cancel_confirmed: bool,
    /// Live mode was asked for but the API could not be reached: running paper instead.
    pub live_fallback: bool,
    /// Frame received → core done, every frame.
    pub frame_to_done: LatencyRow,
    /// Whether the feed thread was pinned to `core_id`.
    pub pinned: bool,
    /// Trading state at the end.
    pub state: &'static str,
    /// Journal records restored at start.
    pub journal_restored: u64,
    /// Journal lines written by this run.
    pub journal_written: u64,
    /// Journal records dropped (channel full; should stay 0).
    pub journal_dropped: u64,
    /// Quote balance at the end (exact to the instrument's cash precision as a float).
    pub cash: f64,
}

/// A monotonic clock reported as nanoseconds since the Unix epoch (epoch at start + elapsed).
#[derive(Debug, Clone, Copy)]
struct Clock {
    start: Instant,
    epoch: Nanos,
}

impl Clock {
    fn new() -> Clock {
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as Nanos);
        Clock {
            start: Instant::now(),
            epoch,
        }
    }
    fn now(&self) -> Nanos {
        self.epoch + self.start.elapsed().as_nanos() as Nanos
    }
}

/// Pins the calling thread to `core_id` if it exists; warns otherwise.
fn pin(core_id: Option<usize>) -> bool {
    let Some(want) = core_id else {
        log::info!("core_id not set: the feed thread runs unpinned");
        return false;
    };
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    match ids.into_iter().find(|c| c.id == want) {
        Some(id) if core_affinity::set_for_current(id) => {
            log::info!("feed thread pinned to core {want}");
            true
        }
        _ => {
            log::warn!("core_id {want} is not available on this machine: running unpinned");
            false
        }
    }
}

/// The feed loop's state.
struct Feed<'a> {
    cfg: &'a Config,
    endpoint: Endpoint,
    tls: Option<native_tls::TlsConnector>,
    poll: Poll,
    clock: Clock,
    core: Core,
    out: Sink,
    notifier: &'a Notifier,
    recorder: Option<Recorder>,
    worker: Option<WorkerLink>,
    live_fallback: bool,
    /// The fill journal's writer, when `journal_path` is set.
    journal: Option<JournalSender>,
    /// When the book subscription awaiting its snapshot was sent.
    book_requested_at: Option<Nanos>,
    /// A journal was restored and the exchange's balances have not been compared with it yet.
    restored: bool,
    rng: ChaCha8Rng,
    precision: Precision,

    conn: Option<Connection>,
    /// When the current connection attempt started, or the last frame arrived.
    last_activity: Nanos,
    connected_at: Option<Nanos>,
    next_connect: Nanos,
    backoff: Nanos,
    next_ping: Nanos,
    ping_sent_at: Option<Nanos>,
    req_id: u64,
    next_timer: Nanos,
    next_pnl: Nanos,
    resub_at: Option<Nanos>,
    last_resub: Option<Nanos>,
    resub_consecutive: u32,
    subscribe_retry_at: Option<Nanos>,
    subscribe_backoff: Nanos,
    instrument_msgs_at_connect: u64,
    /// From a disconnect or resubscription until the core has a fresh snapshot.
    awaiting_snapshot: bool,
    frame_rx_ns: Nanos,

    status: Option<&'a StatusLink>,
    s: Counters,
}

/// The feed thread's intent sink: the core's intents, plus the time at which each stage of a
/// frame ended (the core reads no clock; it tells the sink where it is).
struct Sink {
    intents: Vec<Intent>,
    /// The stage marks read the CPU's time-stamp counter (about 9 ns here, against 24 ns for
    /// `Instant::now`): three marks a frame add up on the hot path.
    tsc: quanta::Clock,
    /// Receipt of the frame being handled and the end of its previous stage, in raw counter
    /// ticks; `None` while the core handles something other than a frame.
    frame: Option<(u64, u64)>,
    /// Since start (the shutdown table).
    total: StageHists,
    /// Since the last hand-over to the dashboard (none without one).
    interval: Option<Box<StageHists>>,
}

impl Sink {
    fn record(
        &mut self,
        pick: fn(&mut StageHists) -> &mut hdrhistogram::Histogram<u64>,
        ns: Nanos,
    ) {
        let v = ns.max(1) as u64;
        let _ = pick(&mut self.total).record(v);
        if let Some(i) = &mut self.interval {
            let _ = pick(i).record(v);
        }
    }
}

impl IntentSink for Sink {
    fn push(&mut self, intent: Intent) {
        self.intents.push(intent);
    }

    fn stage(&mut self, stage: Stage) {
        let Some((rx, last)) = self.frame else { return };
        let t = self.tsc.raw();
        let since = |a: u64| self.tsc.delta_as_nanos(a, t) as Nanos;
        match stage {
            Stage::Parsed => self.record(|h| &mut h.parse, since(rx)),
            Stage::BookApplied => self.record(|h| &mut h.book, since(last)),
            Stage::Decided => self.record(|h| &mut h.strategy, since(last)),
        }
        self.frame = Some((rx, t));
    }
}

impl std::ops::Deref for Sink {
    type Target = Vec<Intent>;
    fn deref(&self) -> &Vec<Intent> {
        &self.intents
    }
}

impl std::ops::DerefMut for Sink {
    fn deref_mut(&mut self) -> &mut Vec<Intent> {
        &mut self.intents
    }
}

/// The few core counters the feed thread reacts to, read around each frame (copying the
/// whole `Stats` twice per frame would be wasted work on the hot path).
#[derive(Debug, Clone, Copy)]
struct FrameCounters {
    pongs: u64,
    snapshots: u64,
    method_errors: u64,
    instrument_msgs: u64,
}

impl FrameCounters {
    fn of(s: &crate::core::engine::Stats) -> FrameCounters {
        FrameCounters {
            pongs: s.pongs,
            snapshots: s.snapshots,
            method_errors: s.method_errors,
            instrument_msgs: s.instrument_msgs,
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    connects: u64,
    reconnects: u64,
    watchdog: u64,
    resubscribes: u64,
    subscribe_errors: u64,
    pings: u64,
    orders_placed: u64,
    orders_cancelled: u64,
    quotes_while_stale: u64,
    execution_faults: u64,
}

/// Runs the feed on the calling thread until the duration ends or a stop is requested.
///
/// # Errors
/// Set-up failures (bad URL, TLS set-up, recorder file, poll creation). Network failures are
/// not errors: they are reconnected.
pub fn run(
    cfg: &Config,
    opts: &RunOptions,
    notifier: &Notifier,
    on_ready: impl FnOnce(StopHandle),
) -> Result<Summary, String> {
    let pinned = pin(cfg.core_id);
    let endpoint = Endpoint::parse(&cfg.ws_url)?;
    let tls = if endpoint.tls {
        Some(ws::tls_connector(cfg.ws_ca_file.as_deref())?)
    } else {
        None
    };
    let poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(|e| format!("waker: {e}"))?);
    on_ready(StopHandle {
        flag: opts.stop.clone(),
        waker: waker.clone(),
    });
    // The journal of earlier runs: what to restore, and (live) which orders to settle.
    let jprec = journal::Precision {
        price: cfg.price_precision,
        qty: cfg.qty_precision,
    };
    let journal_path = cfg
        .journal_path
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(std::path::PathBuf::from);
    if journal_path.is_none() && cfg.live_mode {
        log::warn!("journal_path is not set: a restart will not know this run's fills");
    }
    let loaded = match &journal_path {
        Some(path) => load_journal(path, jprec, cfg.live_mode)?,
        None => journal::Loaded::default(),
    };
    let journal = match &journal_path {
        Some(path) => Some(Journal::start(path, jprec, Some(loaded.good_len))?),
        None => None,
    };
    // Live mode: balances, leftovers and the dead man's switch first; if the API cannot be
    // reached, trade on paper and say so loudly.
    let mut core_cfg = cfg.clone();
    let mut live_fallback = false;
    let worker = if cfg.live_mode {
        let creds = opts
            .credentials
            .clone()
            .ok_or("live_mode needs KRAKEN_API_KEY and KRAKEN_API_SECRET in the environment")?;
        let wcfg = WorkerConfig {
            reports: opts.worker_reports.clone(),
            journal: journal.as_ref().map(Journal::sender),
            adopt: journal_open_orders(cfg, &loaded)?,
            ..WorkerConfig::from_config(cfg)
        };
        match worker::start(wcfg, creds, waker) {
            Ok(link) => {
                log::info!(
                    "LIVE trading activated on {} ({})",
                    cfg.rest_pair,
                    cfg.rest_url
                );
                notifier.send(Notice::Mode { live: true });
                notifier.send(Notice::Text(
                    AlertText::new(b"LIVE trading activated"),
                    true,
                ));
                Some(link)
            }
            Err(e) => {
                log::error!("live mode could not start ({e}): falling back to PAPER");
                notifier.send(Notice::Mode { live: false });
                notifier.send(Notice::Text(
                    AlertText::new(format!("LIVE activation failed ({e}): PAPER mode").as_bytes()),
                    true,
                ));
                core_cfg.live_mode = false;
                live_fallback = true;
                None
            }
        }
    } else {
        None
    };
    // Simulated fills must never enter a live account's journal.
    let journal = match journal {
        Some(j) if live_fallback => {
            log::error!(
                "journal {}: not written while trading on PAPER after the live fallback",
                j.path().display()
            );
            j.finish();
            None
        }
        j => j,
    };
    let recorder = match &opts.record {
        Some(path) => Some(Recorder::start(path)?),
        None => None,
    };
    let clock = Clock::new();
    let now = clock.now();
    let mut core = Core::new(&core_cfg, first_order_id(now))?;
    let still_open = core.restore(&loaded.entries);
    if !loaded.entries.is_empty() {
        let a = core.account();
        let p = (cfg.price_precision, cfg.qty_precision);
        log::info!(
            "journal: restored {} fills, {} round trips: position {}, cash {}, fees {}, realised {}",
            a.fill_count(),
            a.round_trips,
            crate::core::money::Fixed::new(i128::from(a.position), p.1),
            a.cash.show(p.0 + p.1),
            a.fees.show(p.0 + p.1),
            a.realised.show(p.0 + p.1),
        );
    }
    let mut feed = Feed {
        cfg,
        endpoint,
        tls,
        poll,
        clock,
        core,
        out: Sink {
            intents: Vec::with_capacity(MAX_INTENTS_PER_EVENT),
            tsc: quanta::Clock::new(),
            frame: None,
            total: StageHists::default(),
            interval: opts.status.as_ref().map(|_| Box::default()),
        },
        notifier,
        recorder,
        restored: !loaded.entries.is_empty() && worker.is_some(),
        worker,
        live_fallback,
        journal: journal.as_ref().map(Journal::sender),
        rng: ChaCha8Rng::seed_from_u64(now as u64),
        precision: Precision {
            price: cfg.price_precision,
            qty: cfg.qty_precision,
        },
        conn: None,
        last_activity: now,
        connected_at: None,
        next_connect: now,
        backoff: BACKOFF_MIN_NS,
        next_ping: Nanos::MAX,
        ping_sent_at: None,
        req_id: 0,
        next_timer: now + TIMER_NS,
        next_pnl: now + PNL_EVERY_NS,
        resub_at: None,
        last_resub: None,
        resub_consecutive: 0,
        subscribe_retry_at: None,
        subscribe_backoff: BACKOFF_MIN_NS,
        instrument_msgs_at_connect: 0,
        awaiting_snapshot: true,
        book_requested_at: None,
        frame_rx_ns: now,
        status: opts.status.as_ref(),
        s: Counters::default(),
    };
    let deadline = opts
        .duration
        .map_or(Nanos::MAX, |d| now.saturating_add(d.as_nanos() as Nanos));
    if let Some(j) = &feed.journal {
        j.send(Record::Session {
            t: now,
            live: feed.worker.is_some(),
        });
        if loaded.entries.is_empty() {
            feed.core.journal_start(now, &mut feed.out);
        }
    }
    if feed.worker.is_none() {
        // Paper: the simulated venue died with the last process, and its orders with it.
        for o in still_open {
            log::warn!(
                "journal: order {} was resting on the paper venue when the last run ended: \
                 cancelled",
                o.req.cl_id
            );
            let ev = OrderEvent::Cancelled {
                cl_id: o.req.cl_id,
                reason: crate::core::event::CancelReason::Exchange,
            };
            feed.core.handle(now, Event::Order(ev), &mut feed.out);
        }
    }
    feed.journal_intents();
    feed.run_loop(deadline, &opts.stop);
    let mut summary = feed.finish(pinned);
    if let Some(j) = journal {
        let stats = j.finish();
        summary.journal_written = stats.written.load(Ordering::Relaxed);
        summary.journal_dropped = stats.dropped.load(Ordering::Relaxed);
        summary.journal_restored = loaded.entries.len() as u64;
    }
    Ok(summary)
}

/// Reads the journal and says what it found; refuses one written in the other mode.
fn load_journal(
    path: &std::path::Path,
    p: journal::Precision,
    live: bool,
) -> Result<journal::Loaded, String> {
    let loaded = journal::load(path, p)?;
    for (line, why) in &loaded.skipped {
        log::warn!("journal {}: line {line} skipped: {why}", path.display());
    }
    if let Some(was_live) = loaded.live
        && was_live != live
    {
        let mode = |l: bool| if l { "LIVE" } else { "PAPER" };
        return Err(format!(
            "journal_path {} holds a {} account and this run is {}: use another journal_path",
            path.display(),
            mode(was_live),
            mode(live)
        ));
    }
    if loaded.lines > 0 {
        log::info!(
            "journal {}: {} records from {} earlier run(s)",
            path.display(),
            loaded.entries.len(),
            loaded.sessions
        );
    }
    Ok(loaded)
}

/// The orders a journal still had open, for the worker to settle with the exchange.
fn journal_open_orders(
    cfg: &Config,
    loaded: &journal::Loaded,
) -> Result<Vec<worker::Adopt>, String> {
    if loaded.entries.is_empty() {
        return Ok(Vec::new());
    }
    let mut probe = Core::new(cfg, 1)?;
    Ok(probe
        .restore(&loaded.entries)
        .into_iter()
        .map(|o| worker::Adopt {
            req: o.req,
            exec: o.filled,
            ids: loaded.txids.get(&o.req.cl_id).cloned(),
            placed_ns: o.placed_at,
        })
        .collect())
}

/// Client order ids start from the clock so a restart never reuses one (Kraken's `cl_ord_id`
/// must be unique among open orders).
fn first_order_id(now: Nanos) -> u64 {
    (now / 1_000) as u64
}

impl Feed<'_> {
    fn run_loop(&mut self, deadline: Nanos, stop: &AtomicBool) {
        let mut events = Events::with_capacity(64);
        loop {
            let now = self.clock.now();
            if now >= deadline || stop.load(Ordering::SeqCst) {
                return;
            }
            let next = [
                deadline,
                self.next_timer,
                self.next_ping,
                self.resub_at.unwrap_or(Nanos::MAX),
                self.subscribe_retry_at.unwrap_or(Nanos::MAX),
                if self.conn.is_none() {
                    self.next_connect
                } else {
                    self.last_activity + self.timeout_ns()
                },
            ]
            .into_iter()
            .min()
            .unwrap_or(deadline);
            let wait = Duration::from_nanos((next - now).max(0) as u64);
            if let Err(e) = self.poll.poll(&mut events, Some(wait))
                && e.kind() != std::io::ErrorKind::Interrupted
            {
                log::error!("poll failed: {e}");
                return;
            }
            for ev in &events {
                if ev.token() == WS {
                    self.on_socket(ev.is_writable());
                }
            }
            self.drain_order_events();
            self.on_timers();
        }
    }

    /// Hands the journal its records among the pending intents and drops the rest: at start-up
    /// and shutdown, when the others have nowhere to go.
    fn journal_intents(&mut self) {
        if let Some(j) = &self.journal {
            for i in self.out.iter() {
                if let Intent::Journal(e) = i {
                    j.send(Record::Core(*e));
                }
            }
        }
        self.out.clear();
    }

    /// The first balances after a restore: say whether the exchange agrees with the journal.
    fn reconcile_balances(&mut self, ev: &OrderEvent) {
        let OrderEvent::Balances { quote, base } = *ev else {
            return;
        };
        if !std::mem::take(&mut self.restored) {
            return;
        }
        let a = self.core.account();
        let p = self.precision;
        let pos = Qty(a.position.max(0).unsigned_abs());
        if a.cash == quote && pos == base && a.position >= 0 {
            log::info!("reconcile: exchange balances match the restored account");
        } else {
            log::warn!(
                "reconcile: exchange balances differ from the restored account (the exchange is right): \
                 cash {} -> {}, position {} -> {}",
                a.cash.show(p.price + p.qty),
                quote.show(p.price + p.qty),
                crate::core::money::Fixed::new(i128::from(a.position), p.qty),
                base.show(p.qty)
            );
        }
    }

    /// Order events from the worker (the WAKER token woke us, or they are simply there).
    fn drain_order_events(&mut self) {
        let Some(w) = &self.worker else { return };
        let mut batch = [None; 32];
        let mut n = 0;
        while n < batch.len() {
            match w.events.try_recv() {
                Ok(ev) => {
                    batch[n] = Some(ev);
                    n += 1;
                }
                Err(_) => break,
            }
        }
        for ev in batch.into_iter().take(n).flatten() {
            let now = self.clock.now();
            self.reconcile_balances(&ev);
            self.core.handle(now, Event::Order(ev), &mut self.out);
            self.take_intents(now, false);
        }
    }

    fn timeout_ns(&self) -> Nanos {
        self.cfg.feed_timeout_ms as Nanos * MS
    }

    fn on_socket(&mut self, writable: bool) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let was_open = conn.is_open();
        match conn.drive() {
            Ok(true) => {
                if !was_open {
                    self.conn = Some(conn);
                    self.on_open();
                    conn = match self.conn.take() {
                        Some(c) => c,
                        None => return,
                    };
                }
                if writable && let Err(e) = conn.flush() {
                    self.lost(conn, &e.to_string(), false);
                    return;
                }
                let result = conn.read(|bytes| self.on_frame(bytes));
                match result {
                    Ok(_) => self.conn = Some(conn),
                    Err(e) => self.lost(conn, &e.to_string(), false),
                }
            }
            Ok(false) => self.conn = Some(conn),
            Err(e) => self.lost(conn, &e.to_string(), false),
        }
        self.after_frames();
    }

    fn on_open(&mut self) {
        let now = self.clock.now();
        self.s.connects += 1;
        self.connected_at = Some(now);
        self.last_activity = now;
        self.next_ping = now + self.cfg.ping_interval_ms as Nanos * MS;
        self.ping_sent_at = None;
        self.notifier.send(Notice::Connected {
            attempt: self.s.connects + self.s.reconnects,
        });
        self.instrument_msgs_at_connect = self.core.stats().instrument_msgs;
        self.subscribe(true, true);
    }

    /// Subscribes to trades, and to the book and the instrument channel when asked (a retry
    /// after an error ack leaves out what already streams: a second book subscription would
    /// bring a needless snapshot).
    fn subscribe(&mut self, book: bool, instrument: bool) {
        let sym = self.cfg.symbol.clone();
        let depth = self.cfg.book_depth;
        if instrument {
            self.send(
                r#"{"method":"subscribe","params":{"channel":"instrument","snapshot":true},"req_id":1}"#,
            );
        }
        if book {
            self.book_requested_at = Some(self.clock.now());
            self.send(&format!(
                r#"{{"method":"subscribe","params":{{"channel":"book","symbol":["{sym}"],"depth":{depth},"snapshot":true}},"req_id":2}}"#
            ));
        }
        self.send(&format!(
            r#"{{"method":"subscribe","params":{{"channel":"trade","symbol":["{sym}"],"snapshot":false}},"req_id":3}}"#
        ));
    }

    fn send(&mut self, text: &str) {
        if let Some(mut conn) = self.conn.take() {
            match conn.send_text(text) {
                Ok(()) => self.conn = Some(conn),
                Err(e) => self.lost(conn, &e.to_string(), false),
            }
        }
    }

    /// One text frame, straight from the socket.
    fn on_frame(&mut self, bytes: &[u8]) {
        let rx = self.clock.now();
        self.frame_rx_ns = rx;
        self.last_activity = rx;
        if let Some(r) = &self.recorder {
            r.record(rx, bytes);
        }
        let before = FrameCounters::of(self.core.stats());
        if self.cfg.stage_timing {
            let raw = self.out.tsc.raw();
            self.out.frame = Some((raw, raw));
        }
        self.core.handle(rx, Event::Frame(bytes), &mut self.out);
        self.out.frame = None;
        let done = self.clock.now();
        self.out.record(|h| &mut h.frame_to_done, done - rx);
        let after = FrameCounters::of(self.core.stats());
        if after.pongs > before.pongs {
            self.ping_sent_at = None;
        }
        if after.snapshots > before.snapshots {
            self.awaiting_snapshot = false;
            self.book_requested_at = None;
            self.subscribe_retry_at = None;
            self.subscribe_backoff = BACKOFF_MIN_NS;
        }
        if after.method_errors > before.method_errors {
            self.s.subscribe_errors += 1;
            self.notifier
                .send(Notice::ExchangeError(ShortText::new(bytes)));
            if self.awaiting_snapshot && self.subscribe_retry_at.is_none() {
                // Retry the subscriptions with backoff until the book arrives.
                let delay = self.jitter(self.subscribe_backoff);
                self.subscribe_retry_at = Some(rx + delay);
                self.subscribe_backoff = (self.subscribe_backoff * 2).min(BACKOFF_MAX_NS);
            }
        }
        if after.instrument_msgs > before.instrument_msgs
            && let Some(i) = self.core.instrument()
        {
            self.precision = Precision {
                price: i.price_precision,
                qty: i.qty_precision,
            };
        }
        self.take_intents(rx, true);
    }

    /// Counts and announces an order the core sends (placed, or the new half of a replace).
    fn new_order(&mut self, o: crate::core::event::OrderRequest) {
        self.s.orders_placed += 1;
        if self.awaiting_snapshot {
            self.s.quotes_while_stale += 1;
        }
        self.notifier.send(Notice::Placed(o, self.precision));
    }

    /// Routes the core's intents. `from_frame`: measure frame → intent latency.
    fn take_intents(&mut self, rx: Nanos, from_frame: bool) {
        let mut measured = false;
        for i in 0..self.out.len() {
            match self.out[i] {
                Intent::Place(o) => {
                    self.new_order(o);
                    self.send_to_worker(self.out[i]);
                    measured = true;
                }
                Intent::Cancel { .. } => {
                    self.s.orders_cancelled += 1;
                    self.send_to_worker(self.out[i]);
                    measured = true;
                }
                Intent::CancelAll => {
                    self.send_to_worker(self.out[i]);
                    measured = true;
                }
                Intent::Replace { new, .. } => {
                    self.s.orders_cancelled += 1;
                    self.new_order(new);
                    self.send_to_worker(self.out[i]);
                    measured = true;
                }
                Intent::Resubscribe { .. } => self.schedule_resubscribe(rx),
                Intent::Alert(a) => self.notifier.send(Notice::Alert(a, self.precision)),
                Intent::Snapshot => self.publish_status(rx),
                Intent::Journal(e) => {
                    if let Some(j) = &self.journal {
                        j.send(Record::Core(e));
                    }
                }
            }
        }
        if measured && from_frame {
            let t = self.clock.now();
            self.out.record(|h| &mut h.tick_to_intent, t - rx);
        }
        self.out.clear();
    }

    /// The feed thread's and the core's counters, for the dashboard and the summary.
    fn counters(&self, status_dropped: u64) -> StatusCounters {
        let st = self.core.stats();
        StatusCounters {
            frames: st.frames,
            ticks: st.ticks,
            book_messages: st.book_msgs,
            snapshots: st.snapshots,
            checksums_ok: st.checksum_ok,
            checksum_mismatches: st.checksum_mismatch,
            crossed_books: st.crossed,
            parse_errors: st.parse_errors_total(),
            trades: st.trades,
            connects: self.s.connects,
            reconnects: self.s.reconnects,
            watchdog_timeouts: self.s.watchdog,
            resubscribes: self.s.resubscribes,
            orders_placed: self.s.orders_placed,
            orders_cancelled: self.s.orders_cancelled,
            fills: st.fills,
            execution_faults: self.s.execution_faults,
            quotes_while_stale: self.s.quotes_while_stale,
            notices_dropped: self.notifier.dropped(),
            status_dropped,
            recorder_dropped: self.recorder.as_ref().map_or(0, Recorder::dropped),
        }
    }

    /// The dashboard's snapshot (the core asks for one at most every 250 ms). Copies numbers
    /// into a fixed-size value: nothing here allocates.
    fn publish_status(&mut self, now: Nanos) {
        let Some(link) = self.status else { return };
        let core = &self.core;
        let (a, sig) = (core.account(), core.signals());
        let mut orders = [None; crate::core::orders::MAX_ORDERS];
        for (slot, o) in orders.iter_mut().zip(core.orders().live()) {
            *slot = Some(OrderView {
                req: o.req,
                state: o.state,
                filled: o.filled.0,
                placed_at: o.placed_at,
            });
        }
        let mut trades = [None; TRADES_SHOWN];
        for (slot, f) in trades.iter_mut().zip(a.history()) {
            *slot = Some(*f);
        }
        let book = core.book();
        let skew = core.params().skew(a.position);
        let snap = StatusSnapshot {
            at: now,
            live: !core.is_paper(),
            live_fallback: self.live_fallback,
            state: core.state(),
            connected: self.connected_at.is_some(),
            last_frame_age_ns: now - self.frame_rx_ns,
            price_precision: self.precision.price,
            qty_precision: self.precision.qty,
            microprice: sig.micro_f64(),
            ema: sig.ema.value(),
            momentum_bps: sig.momentum_bps,
            volatility_bps: sig.vol_bps(),
            skew_bps: skew.0 as f64 / 100.0,
            best_bid: book.best_bid().map(|l| l.price),
            best_ask: book.best_ask().map(|l| l.price),
            cash: a.cash,
            position: a.position,
            avg_entry: a.avg_entry(),
            realised: a.realised,
            unrealised: sig
                .micro
                .map_or(crate::core::money::Cash(0), |m| a.unrealised(m)),
            fees: a.fees,
            equity: a.equity,
            peak_equity: a.peak_equity,
            start_equity: a.start_equity,
            drawdown_ppm: a.drawdown_ppm(),
            max_drawdown_ppm: a.max_drawdown_ppm,
            round_trips: a.round_trips,
            wins: a.wins,
            losses: a.losses,
            orders,
            trades,
            counters: self.counters(link.dropped()),
            pause_counts: *core.pause_counts(),
        };
        link.publish(&snap);
        if let Some(i) = &mut self.out.interval {
            link.hand_over(i);
        }
    }

    /// Order intents go to the worker in live mode. The channel is far larger than the orders
    /// the core can have in flight, so a refusal is an execution fault: alert, count.
    fn send_to_worker(&mut self, i: Intent) {
        if let Some(w) = &self.worker
            && w.send(i).is_err()
        {
            self.s.execution_faults += 1;
            self.notifier.send(Notice::Text(
                AlertText::new(b"EXECUTION FAULT: the order worker is not taking orders"),
                true,
            ));
        }
    }

    fn schedule_resubscribe(&mut self, now: Nanos) {
        self.awaiting_snapshot = true;
        // Back-to-back failures (within a minute of the last resubscription) back off.
        self.resub_consecutive = match self.last_resub {
            Some(t) if now - t < 60 * SEC => self.resub_consecutive + 1,
            _ => 1,
        };
        let delay = if self.resub_consecutive <= 1 {
            0
        } else {
            (SEC << (self.resub_consecutive - 2).min(6)).min(BACKOFF_MAX_NS)
        };
        self.resub_at = Some(now + delay);
        self.last_resub = Some(now);
        self.notifier.send(Notice::Resubscribing {
            consecutive: self.resub_consecutive,
            delay_ms: (delay / MS) as u64,
        });
    }

    fn resubscribe_book(&mut self) {
        let sym = self.cfg.symbol.clone();
        let depth = self.cfg.book_depth;
        self.s.resubscribes += 1;
        self.book_requested_at = Some(self.clock.now());
        self.send(&format!(
            r#"{{"method":"unsubscribe","params":{{"channel":"book","symbol":["{sym}"],"depth":{depth}}},"req_id":4}}"#
        ));
        self.send(&format!(
            r#"{{"method":"subscribe","params":{{"channel":"book","symbol":["{sym}"],"depth":{depth},"snapshot":true}},"req_id":5}}"#
        ));
    }

    fn after_frames(&mut self) {
        if let Some(c) = &self.connected_at
            && self.clock.now() - c > HEALTHY_NS
        {
            self.backoff = BACKOFF_MIN_NS;
        }
    }

    /// A core input other than a frame, for the recording (replay feeds the core the same).
    fn record_event(&self, now: Nanos, event: &'static str) {
        if let Some(r) = &self.recorder {
            r.record_event(now, event);
        }
    }

    fn on_timers(&mut self) {
        let now = self.clock.now();
        if now >= self.next_timer {
            self.next_timer = now + TIMER_NS;
            self.record_event(now, "timer");
            self.core.handle(now, Event::Timer, &mut self.out);
            self.take_intents(now, false);
        }
        if now >= self.next_pnl {
            self.next_pnl = now + PNL_EVERY_NS;
            let a = self.core.account();
            self.notifier.send(Notice::Pnl {
                position: a.position,
                realised: a.realised,
                equity: a.equity,
                fees: a.fees,
                fills: a.fill_count(),
                precision: self.precision,
            });
        }
        match self.conn.take() {
            None => {
                if now >= self.next_connect {
                    self.connect(now);
                }
            }
            Some(conn) => {
                if now - self.last_activity > self.timeout_ns() {
                    self.s.watchdog += 1;
                    let what = if conn.is_open() {
                        "no frame"
                    } else {
                        "handshake not finished"
                    };
                    let msg = format!("{what} for {} ms (watchdog)", self.cfg.feed_timeout_ms);
                    self.lost(conn, &msg, true);
                    return;
                }
                if let Some(sent) = self.ping_sent_at
                    && now - sent > self.timeout_ns()
                {
                    self.s.watchdog += 1;
                    self.lost(conn, "no pong to our ping (watchdog)", true);
                    return;
                }
                // A subscription that was never answered (lost on the way, or ignored) leaves
                // a live connection without a book: start over. Error acks retry on their own
                // schedule instead, and a resync waits for its backoff.
                if self.awaiting_snapshot
                    && self.subscribe_retry_at.is_none()
                    && self.resub_at.is_none()
                    && self
                        .book_requested_at
                        .is_some_and(|t| now - t > self.timeout_ns())
                {
                    self.s.watchdog += 1;
                    self.lost(conn, "no book snapshot after subscribing (watchdog)", true);
                    return;
                }
                let open = conn.is_open();
                self.conn = Some(conn);
                if open && now >= self.next_ping {
                    self.req_id += 1;
                    self.s.pings += 1;
                    self.next_ping = now + self.cfg.ping_interval_ms as Nanos * MS;
                    if self.ping_sent_at.is_none() {
                        self.ping_sent_at = Some(now);
                    }
                    let id = 1000 + self.req_id;
                    self.send(&format!(r#"{{"method":"ping","req_id":{id}}}"#));
                }
                if open && self.resub_at.is_some_and(|t| now >= t) {
                    self.resub_at = None;
                    self.resubscribe_book();
                }
                if open && self.subscribe_retry_at.is_some_and(|t| now >= t) {
                    self.subscribe_retry_at = None;
                    let instrument =
                        self.core.stats().instrument_msgs == self.instrument_msgs_at_connect;
                    self.subscribe(self.awaiting_snapshot, instrument);
                }
            }
        }
    }

    fn connect(&mut self, now: Nanos) {
        self.last_activity = now;
        match Connection::start(&self.endpoint, self.tls.clone(), self.poll.registry(), WS) {
            Ok(c) => {
                self.conn = Some(c);
                // The connect may already be complete (loopback); edge-triggered readiness
                // will also report it, but driving now costs nothing.
                self.on_socket(true);
            }
            Err(e) => self.schedule_reconnect(now, &e.to_string()),
        }
    }

    /// The connection is gone: tell the core (book invalid, orders cancelled), schedule the
    /// reconnect.
    fn lost(&mut self, conn: Connection, reason: &str, _watchdog: bool) {
        conn.close(self.poll.registry());
        let now = self.clock.now();
        self.s.reconnects += 1;
        self.awaiting_snapshot = true;
        self.resub_at = None;
        self.subscribe_retry_at = None;
        self.ping_sent_at = None;
        self.book_requested_at = None;
        self.next_ping = Nanos::MAX;
        self.connected_at = None;
        self.record_event(now, "disconnected");
        self.core.handle(now, Event::Disconnected, &mut self.out);
        self.take_intents(now, false);
        self.schedule_reconnect(now, reason);
    }

    fn schedule_reconnect(&mut self, now: Nanos, reason: &str) {
        let delay = self.jitter(self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX_NS);
        self.next_connect = now + delay;
        self.notifier.send(Notice::ConnectionLost {
            reason: ShortText::new(reason.as_bytes()),
            retry_in_ms: (delay / MS) as u64,
        });
    }

    /// `base` ± 20 %, so a fleet of clients does not reconnect in lockstep.
    fn jitter(&mut self, base: Nanos) -> Nanos {
        let f: f64 = self.rng.random_range(0.8..1.2);
        (base as f64 * f) as Nanos
    }

    fn finish(mut self, pinned: bool) -> Summary {
        let now = self.clock.now();
        // Leave nothing resting: the core cancels its orders as on a disconnect.
        if let Some(conn) = self.conn.take() {
            conn.close(self.poll.registry());
        }
        self.record_event(now, "disconnected");
        self.core.handle(now, Event::Disconnected, &mut self.out);
        // Count the cancels; the "disconnected" alert of a planned stop is not news.
        for i in self.out.iter() {
            if matches!(i, Intent::Cancel { .. }) {
                self.s.orders_cancelled += 1;
            }
        }
        self.journal_intents();
        // Live: cancel everything on the exchange and wait (bounded) for the answer, then
        // book the last fills it reports.
        let report = self.worker.take().and_then(|w| {
            let events = w.events.clone();
            let r = w.finish();
            while let Ok(ev) = events.try_recv() {
                let t = self.clock.now();
                self.core.handle(t, Event::Order(ev), &mut self.out);
                self.journal_intents();
            }
            r
        });
        let counters = self.counters(self.status.map_or(0, StatusLink::dropped));
        let frames_recorded = match self.recorder.take().map(Recorder::finish) {
            Some(Ok(n)) => n,
            Some(Err(e)) => {
                log::error!("{e}");
                0
            }
            None => 0,
        };
        let st = *self.core.stats();
        let a = self.core.account();
        let p = self.precision;
        let cash = |c: crate::core::money::Cash| c.to_f64(p.price + p.qty);
        let mark = self.core.signals().micro;
        let unrealised = mark.map_or(0.0, |m| cash(a.unrealised(m)));
        Summary {
            mode: if self.core.is_paper() {
                "paper"
            } else {
                "live"
            },
            duration_s: (now - self.clock.epoch) as f64 / 1e9,
            counters,
            updates_ignored: st.updates_ignored,
            subscribe_errors: self.s.subscribe_errors,
            pings: self.s.pings,
            pongs: st.pongs,
            heartbeats: st.heartbeats,
            position: a.position as f64 / 10f64.powi(i32::from(p.qty)),
            realized_pnl: cash(a.realised),
            unrealized_pnl: unrealised,
            equity: cash(a.equity),
            fees_paid: cash(a.fees),
            frames_recorded,
            frame_to_parsed: LatencyRow::of(&self.out.total.parse),
            book_apply: LatencyRow::of(&self.out.total.book),
            strategy: LatencyRow::of(&self.out.total.strategy),
            tick_to_intent: LatencyRow::of(&self.out.total.tick_to_intent),
            intent_to_ack: report
                .as_ref()
                .map(|r| LatencyRow::of(&r.intent_to_ack))
                .unwrap_or_default(),
            rest_round_trip: report
                .as_ref()
                .map(|r| {
                    r.round_trip
                        .iter()
                        .map(|(k, h)| ((*k).to_string(), LatencyRow::of(h)))
                        .collect()
                })
                .unwrap_or_default(),
            amends: report.as_ref().map_or(0, |r| r.amends),
            shutdown_cancel_confirmed: report.as_ref().is_some_and(|r| r.shutdown_cancel_confirmed),
            live_fallback: self.live_fallback,
            frame_to_done: LatencyRow::of(&self.out.total.frame_to_done),
            pinned,
            state: self.core.state().name(),
            journal_restored: 0,
            journal_written: 0,
            journal_dropped: 0,
            cash: cash(a.cash),
        }
    }
}
