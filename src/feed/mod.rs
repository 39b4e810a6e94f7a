//! The feed thread: one mio `Poll`, one Kraken WS v2 connection, the trading core.
//!
//! Data flows one way: socket → [`ws::Connection`] → [`Core::handle`] → intents → bounded
//! channels to side threads (notices, recorder, journal; orders in live mode). The thread
//! never waits on a worker: every hand-over is a `try_send`, telemetry that does not fit is
//! dropped and counted.
//!
//! The connection's timers (watchdog, pings, reconnect backoff, book resubscription, retries
//! of refused subscriptions) are decided by the [`supervisor::Supervisor`]; this loop does the
//! I/O it asks for and gives the core its timer tick. What the feed thread is wired to (the
//! core, the order worker, the journal) is built by the app before [`FeedThread::run`].

pub mod error;
pub mod private;
pub mod recorder;
mod summary;
pub mod supervisor;
pub mod ws;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::{Events, Poll, Token, Waker};

use crate::core::Core;
use crate::core::engine::TIMER_NS;
use crate::core::event::MAX_INTENTS_PER_EVENT;
use crate::core::event::{Event, Intent, IntentSink, OrderEvent, OrderRequest, Outcome, Stage};
use crate::core::money::{Cash, Fixed, Precision};
use crate::core::time::{MS, Nanos, SEC};
use crate::exec::worker::{WorkerEvent, WorkerLink};
use crate::exec::ws_entry::{OrderTransport, WsEntry};
use crate::side::control::{self, Command as ControlCommand, ControlLink};
use crate::side::journal::{JournalSender, Record};
use crate::side::notify::{AlertText, Notice, Notifier, ShortText};
use crate::side::status::{
    Counters, FeedView, LinkTrouble, StageHists, StatusLink, StatusSnapshot,
};
pub use error::FeedError;
use private::ledger::FillLedger;
use private::{PRIVATE, PrivateLink, PrivateSetup};
use recorder::Recorder;
pub use summary::Summary;
use supervisor::{Link, Supervisor};
use ws::{Connection, Endpoint};

/// The WebSocket connection's token.
const WS: Token = Token(0);
/// The order worker wakes the loop through this token when it has events.
const WAKER: Token = Token(1);
/// Account summary notice interval.
const PNL_EVERY_NS: Nanos = 10 * SEC;
/// Order events taken from the worker per loop turn (a bounded batch, no allocation).
const ORDER_EVENTS_PER_TURN: usize = 32;

/// What the feed thread can be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSettings {
    /// `ws://` or `wss://` URL of Kraken's WebSocket v2 API.
    pub ws_url: String,
    /// The authenticated WebSocket v2 (live mode); empty: none.
    pub ws_auth_url: String,
    /// Where orders go while the authenticated WebSocket is up.
    pub order_transport: crate::exec::ws_entry::OrderTransport,
    /// Dead man's switch refresh (0: off) and timeout, seconds (kept by WebSocket order
    /// entry while it is up).
    pub deadman_refresh_s: u64,
    /// See `deadman_refresh_s`.
    pub deadman_timeout_s: u64,
    /// The rate-counter tier until Kraken announces one.
    pub rate_tier: crate::core::ratecounter::Tier,
    /// Extra PEM root certificate trusted for `wss://`.
    pub ws_ca_file: Option<String>,
    /// WebSocket symbol.
    pub symbol: String,
    /// Book depth to subscribe.
    pub book_depth: u16,
    /// CPU core to pin the thread to.
    pub core_id: Option<usize>,
    /// Watchdog bound: no frame, pong or snapshot for this long → the connection is dead.
    pub feed_timeout_ms: u64,
    /// Application ping interval.
    pub ping_interval_ms: u64,
    /// Time parse, book and strategy of every frame.
    pub stage_timing: bool,
}

/// What the app wires the feed thread to before it runs.
#[derive(Debug)]
pub struct FeedParts<'a> {
    /// The trading core, restored from the journal where there is one.
    pub core: Core,
    /// People-facing notices (Telegram, logs).
    pub notifier: &'a Notifier,
    /// The order worker (live mode).
    pub worker: Option<WorkerLink>,
    /// The fill journal's writer.
    pub journal: Option<JournalSender>,
    /// The `--record` writer.
    pub recorder: Option<Recorder>,
    /// Status snapshots and latency for the dashboard.
    pub status: Option<&'a StatusLink>,
    /// The operator's commands (Telegram).
    pub control: Option<ControlLink>,
    /// Live mode was asked for but the API was unreachable: trading on paper.
    pub live_fallback: bool,
    /// A journal was restored: the first balances from the exchange are compared with it.
    pub restored: bool,
}

/// A monotonic clock reported as nanoseconds since the Unix epoch (epoch at start + elapsed).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
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

    /// Now, in ns since the Unix epoch.
    #[must_use]
    pub fn now(&self) -> Nanos {
        self.epoch + self.start.elapsed().as_nanos() as Nanos
    }
}

/// The private link's set-up, when `ws_auth_url` is set and usable (a bad URL or CA file is
/// logged and the stream stays off: REST polling still books every fill).
fn private_setup(s: &FeedSettings, token: Option<String>) -> Option<PrivateSetup> {
    if s.ws_auth_url.is_empty() {
        return None;
    }
    let endpoint = match Endpoint::parse(&s.ws_auth_url) {
        Ok(e) => e,
        Err(e) => {
            log::error!("ws_auth_url: {e}; the private stream is off");
            return None;
        }
    };
    let tls = if endpoint.tls {
        match ws::tls_connector(s.ws_ca_file.as_deref()) {
            Ok(t) => Some(t),
            Err(e) => {
                log::error!("ws_auth_url: {e}; the private stream is off");
                return None;
            }
        }
    } else {
        None
    };
    let entry = (s.order_transport == OrderTransport::Ws).then(|| {
        WsEntry::new(
            s.rate_tier,
            (s.deadman_refresh_s as Nanos * SEC, s.deadman_timeout_s),
        )
    });
    Some(PrivateSetup {
        endpoint,
        tls,
        token,
        symbol: s.symbol.clone(),
        entry,
    })
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

/// The feed thread before it runs: pinned, its poll and waker made, the endpoint checked.
/// Built first because the order worker needs the waker.
#[derive(Debug)]
pub struct FeedThread {
    settings: FeedSettings,
    endpoint: Endpoint,
    tls: Option<native_tls::TlsConnector>,
    poll: Poll,
    waker: Arc<Waker>,
    clock: Clock,
    pinned: bool,
}

impl FeedThread {
    /// Pins the calling thread (the feed thread) and prepares the loop.
    ///
    /// # Errors
    /// A bad URL, an unreadable CA file, TLS set-up, or poll creation.
    pub fn new(settings: FeedSettings) -> Result<FeedThread, FeedError> {
        let pinned = pin(settings.core_id);
        let endpoint = Endpoint::parse(&settings.ws_url)?;
        let tls = if endpoint.tls {
            Some(ws::tls_connector(settings.ws_ca_file.as_deref())?)
        } else {
            None
        };
        let poll = Poll::new().map_err(FeedError::Poll)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(FeedError::Poll)?);
        Ok(FeedThread {
            settings,
            endpoint,
            tls,
            poll,
            waker,
            clock: Clock::new(),
            pinned,
        })
    }

    /// The waker other threads nudge the loop with.
    #[must_use]
    pub fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    /// The feed thread's clock.
    #[must_use]
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Runs until `duration` ends or `stop` is set, then cancels what rests and summarises.
    #[must_use]
    pub fn run(
        self,
        parts: FeedParts<'_>,
        duration: Option<Duration>,
        stop: &AtomicBool,
    ) -> Summary {
        let now = self.clock.now();
        let deadline = duration.map_or(Nanos::MAX, |d| now.saturating_add(d.as_nanos() as Nanos));
        let pinned = self.pinned;
        let mut feed = Feed::new(self, parts, now);
        feed.run_loop(deadline, stop);
        feed.finish(pinned)
    }
}

/// The feed loop's state.
struct Feed<'a> {
    settings: FeedSettings,
    endpoint: Endpoint,
    tls: Option<native_tls::TlsConnector>,
    poll: Poll,
    clock: Clock,
    core: Core,
    out: Sink,
    notifier: &'a Notifier,
    recorder: Option<Recorder>,
    worker: Option<WorkerLink>,
    journal: Option<JournalSender>,
    status: Option<&'a StatusLink>,
    control: Option<ControlLink>,
    live_fallback: bool,
    /// A journal was restored and the exchange's balances have not been compared with it yet.
    restored: bool,
    /// The authenticated WebSocket (live mode with `ws_auth_url`).
    private: Option<PrivateLink>,
    /// Every fill, from the stream or a poll, booked once.
    ledger: FillLedger,
    /// The text of the WebSocket order request being sent (reused).
    request_text: String,
    precision: Precision,
    conn: Option<Connection>,
    link: Supervisor,
    /// Why the public feed is (or was last) down, for the dashboard.
    trouble: LinkTrouble,
    next_timer: Nanos,
    next_pnl: Nanos,
    frame_rx_ns: Nanos,
    /// When reading the socket for the next frame began: the readiness event being handled,
    /// or the end of the previous frame of the same read (`wire_to_frame` starts here).
    read_mark: Nanos,
    s: OrderCounters,
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

/// What the feed thread counts of the orders it routes.
#[derive(Debug, Default)]
struct OrderCounters {
    orders_placed: u64,
    orders_cancelled: u64,
    quotes_while_stale: u64,
    execution_faults: u64,
}

impl<'a> Feed<'a> {
    fn new(t: FeedThread, parts: FeedParts<'a>, now: Nanos) -> Feed<'a> {
        let precision = parts.core.params().precision();
        let link = Supervisor::new(
            now,
            t.settings.feed_timeout_ms,
            t.settings.ping_interval_ms,
            now as u64,
        );
        let private = parts
            .worker
            .as_ref()
            .and_then(|w| private_setup(&t.settings, w.first_token.clone()))
            .map(|setup| {
                PrivateLink::new(
                    setup,
                    now,
                    t.settings.feed_timeout_ms,
                    t.settings.ping_interval_ms,
                )
            });
        Feed {
            endpoint: t.endpoint,
            tls: t.tls,
            poll: t.poll,
            clock: t.clock,
            core: parts.core,
            out: Sink {
                intents: Vec::with_capacity(MAX_INTENTS_PER_EVENT),
                tsc: quanta::Clock::new(),
                frame: None,
                total: StageHists::default(),
                interval: parts.status.map(|_| Box::default()),
            },
            notifier: parts.notifier,
            recorder: parts.recorder,
            worker: parts.worker,
            journal: parts.journal,
            status: parts.status,
            control: parts.control,
            live_fallback: parts.live_fallback,
            restored: parts.restored,
            private,
            ledger: FillLedger::default(),
            request_text: String::with_capacity(512),
            precision,
            conn: None,
            link,
            trouble: LinkTrouble::default(),
            next_timer: now + TIMER_NS,
            next_pnl: now + PNL_EVERY_NS,
            frame_rx_ns: now,
            read_mark: now,
            s: OrderCounters::default(),
            settings: t.settings,
        }
    }

    fn private_state(&self) -> private::PrivateState {
        self.private
            .as_ref()
            .map_or(private::PrivateState::Off, PrivateLink::state)
    }

    fn link_state(&self) -> Link {
        match &self.conn {
            None => Link::Down,
            Some(c) if c.is_open() => Link::Open,
            Some(_) => Link::Handshaking,
        }
    }

    fn run_loop(&mut self, deadline: Nanos, stop: &AtomicBool) {
        let mut events = Events::with_capacity(64);
        loop {
            let now = self.clock.now();
            if now >= deadline || stop.load(Ordering::SeqCst) {
                return;
            }
            let next = deadline
                .min(self.next_timer)
                .min(self.link.next_deadline(self.link_state()))
                .min(
                    self.private
                        .as_mut()
                        .map_or(Nanos::MAX, |p| p.next_deadline(now)),
                );
            let wait = Duration::from_nanos((next - now).max(0) as u64);
            if let Err(e) = self.poll.poll(&mut events, Some(wait))
                && e.kind() != std::io::ErrorKind::Interrupted
            {
                log::error!("poll failed: {e}");
                return;
            }
            for ev in &events {
                match ev.token() {
                    WS => self.on_socket(ev.is_writable()),
                    PRIVATE => self.on_private_socket(ev.is_writable()),
                    // The worker's events are drained below on every turn.
                    WAKER => {}
                    _ => log::debug!("spurious poll token {:?}", ev.token()),
                }
            }
            self.drain_order_events();
            if self.drain_control() {
                return;
            }
            self.on_timers();
        }
    }

    /// The operator's commands, the few waiting. `true`: end the session (as on SIGINT).
    fn drain_control(&mut self) -> bool {
        for _ in 0..control::CAPACITY {
            let Some(Ok(c)) = self.control.as_ref().map(|c| c.commands.try_recv()) else {
                return false;
            };
            match c {
                ControlCommand::Core(ctl) => {
                    log::warn!("operator: {}", ctl.name());
                    let now = self.clock.now();
                    self.core.handle(now, Event::Control(ctl), &mut self.out);
                    self.take_intents(now, false);
                }
                ControlCommand::Stop => {
                    log::warn!("operator: stop; cancelling everything and shutting down");
                    return true;
                }
                ControlCommand::Report => {
                    let now = self.clock.now();
                    let snap = StatusSnapshot::capture(&self.core, now, &self.view(0));
                    if let Some(c) = &self.control {
                        let _ = c.reports.try_send(snap);
                    }
                }
            }
        }
        false
    }

    /// The first balances after a restore: say whether the exchange agrees with the journal
    /// (the base balance against baseline + the restored own position; the core decides what
    /// a difference means).
    fn reconcile_balances(&mut self, ev: &OrderEvent) {
        let OrderEvent::Balances { base, .. } = *ev else {
            return;
        };
        if !std::mem::take(&mut self.restored) {
            return;
        }
        let a = self.core.account();
        let p = self.precision;
        match a.base_mismatch(true) {
            Some(0) => log::info!(
                "reconcile: exchange balances match the restored account: base {} = baseline {} \
                 + own position {}",
                base.show(p.qty),
                a.baseline.show(p.qty),
                Fixed::new(i128::from(a.position), p.qty)
            ),
            _ => log::warn!(
                "reconcile: exchange balances differ from the restored account: base {} but \
                 baseline {} + own position {} (quoting pauses if it outlives a fill poll)",
                base.show(p.qty),
                a.baseline.show(p.qty),
                Fixed::new(i128::from(a.position), p.qty)
            ),
        }
    }

    /// Events from the worker (the WAKER token woke us, or they are simply there), a bounded
    /// batch per turn.
    fn drain_order_events(&mut self) {
        for _ in 0..ORDER_EVENTS_PER_TURN {
            let Some(Ok(ev)) = self.worker.as_ref().map(|w| w.events.try_recv()) else {
                return;
            };
            self.on_worker_event(ev);
        }
    }

    fn on_worker_event(&mut self, ev: WorkerEvent) {
        let core = &self.core;
        let view = |id| private::booked(core, id);
        match ev {
            WorkerEvent::Order(ev) => self.deliver(ev),
            WorkerEvent::Totals {
                origin,
                cl_id,
                totals,
            } => {
                let rx = self.clock.now();
                if let Some(ev) = self.ledger.on_totals(origin, cl_id, totals, &view) {
                    self.deliver(ev);
                    let ns = self.clock.now() - rx;
                    self.out.record(|h| &mut h.fill_to_core, ns);
                }
            }
            WorkerEvent::Bound { origin, cl_id } => self.ledger.bind(origin, cl_id, &view),
            WorkerEvent::Token(t) => self.on_token(t),
            WorkerEvent::Reconciled => {
                log::info!("private stream: reconciled with REST; quoting may resume");
                self.deliver(OrderEvent::Reconciled);
            }
        }
    }

    fn on_socket(&mut self, writable: bool) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        self.read_mark = self.clock.now();
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
                    self.lost(conn, &e.to_string());
                    return;
                }
                let result = conn.read(|bytes| self.on_frame(bytes));
                match result {
                    Ok(_) => self.conn = Some(conn),
                    Err(e) => self.lost(conn, &e.to_string()),
                }
            }
            Ok(false) => self.conn = Some(conn),
            Err(e) => self.lost(conn, &e.to_string()),
        }
        self.link.after_frames(self.clock.now());
    }

    fn on_open(&mut self) {
        let now = self.clock.now();
        self.link.opened(now);
        self.trouble.working();
        self.notifier.send(Notice::Connected {
            attempt: self.link.attempt(),
        });
        self.subscribe(true, true);
    }

    /// Subscribes to trades, and to the book and the instrument channel when asked (a retry
    /// after an error ack leaves out what already streams: a second book subscription would
    /// bring a needless snapshot).
    fn subscribe(&mut self, book: bool, instrument: bool) {
        let sym = self.settings.symbol.clone();
        let depth = self.settings.book_depth;
        if instrument {
            self.send(
                r#"{"method":"subscribe","params":{"channel":"instrument","snapshot":true},"req_id":1}"#,
            );
        }
        if book {
            self.link.book_requested(self.clock.now());
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
                Err(e) => self.lost(conn, &e.to_string()),
            }
        }
    }

    /// One text frame, straight from the socket.
    fn on_frame(&mut self, bytes: &[u8]) {
        let rx = self.clock.now();
        // TLS and WebSocket decoding of this frame (and the socket read, for a batch's first).
        self.out
            .record(|h| &mut h.wire_to_frame, rx - self.read_mark);
        self.frame_rx_ns = rx;
        if let Some(r) = &self.recorder {
            r.record(rx, bytes);
        }
        if self.settings.stage_timing {
            let raw = self.out.tsc.raw();
            self.out.frame = Some((raw, raw));
        }
        let outcome = self.core.handle(rx, Event::Frame(bytes), &mut self.out);
        self.out.frame = None;
        let done = self.clock.now();
        self.out.record(|h| &mut h.frame_to_done, done - rx);
        self.link.on_frame(rx, outcome);
        match outcome {
            Outcome::MethodError => {
                self.notifier
                    .send(Notice::ExchangeError(ShortText::new(bytes)));
            }
            Outcome::Instrument => {
                if let Some(i) = self.core.instrument() {
                    self.precision = Precision {
                        price: i.price_precision,
                        qty: i.qty_precision,
                    };
                }
            }
            _ => {}
        }
        self.take_intents(rx, true);
        self.read_mark = self.clock.now();
    }

    /// Counts and announces an order the core sends (placed, or the new half of a replace).
    fn new_order(&mut self, o: OrderRequest) {
        self.s.orders_placed += 1;
        if self.link.awaiting_snapshot() {
            self.s.quotes_while_stale += 1;
        }
        self.notifier.send(Notice::Placed(o, self.precision));
    }

    /// Routes the core's intents. `from_frame`: measure frame → intent latency.
    fn take_intents(&mut self, rx: Nanos, from_frame: bool) {
        let mut measured = false;
        for i in 0..self.out.intents.len() {
            let intent = self.out.intents[i];
            match intent {
                Intent::Place(o) => {
                    self.new_order(o);
                    self.route_order(intent);
                    measured = true;
                }
                Intent::Cancel { .. } => {
                    self.s.orders_cancelled += 1;
                    self.route_order(intent);
                    measured = true;
                }
                Intent::CancelAll => {
                    self.route_order(intent);
                    measured = true;
                }
                Intent::CheckBalances => self.send_to_worker(intent),
                Intent::Replace { new, .. } => {
                    self.s.orders_cancelled += 1;
                    self.new_order(new);
                    self.route_order(intent);
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
        self.out.intents.clear();
        // What WebSocket order entry must do now (after the loop: its events reach the core,
        // which may have new intents).
        self.entry_effects();
    }

    /// The feed thread's and the core's counters, for the dashboard and the summary.
    fn counters(&self, status_dropped: u64) -> Counters {
        let st = self.core.stats();
        let link = self.link.counters();
        let private = self
            .private
            .as_ref()
            .map(|p| p.counters)
            .unwrap_or_default();
        Counters {
            frames: st.frames,
            ticks: st.ticks,
            book_messages: st.book_messages,
            snapshots: st.snapshots,
            checksums_ok: st.checksums_ok,
            checksum_mismatches: st.checksum_mismatches,
            crossed_books: st.crossed_books,
            parse_errors: st.parse_errors_total(),
            trades: st.trades,
            connects: link.connects,
            reconnects: link.reconnects,
            watchdog_timeouts: link.watchdog_timeouts,
            resubscribes: link.resubscribes,
            orders_placed: self.s.orders_placed,
            orders_decided: self.s.orders_placed,
            orders_collapsed: 0,
            orders_cancelled: self.s.orders_cancelled,
            fills: st.fills,
            execution_faults: self.s.execution_faults,
            quotes_while_stale: self.s.quotes_while_stale,
            notices_dropped: self.notifier.dropped(),
            status_dropped,
            recorder_dropped: self.recorder.as_ref().map_or(0, Recorder::dropped),
            private_connects: private.connects,
            private_reconnects: private.reconnects,
            fills_ws: self.ledger.stats.fills_ws,
            fills_poll: self.ledger.stats.fills_poll,
            duplicate_execs: self.ledger.stats.duplicate_execs,
            foreign_fills: self.ledger.stats.foreign,
            token_refusals: private.token_refusals,
            ws_order_requests: self.entry_stats().requests,
            ws_handed_to_rest: self.entry_stats().handed_to_rest,
        }
    }

    /// WebSocket order entry's counters (zero without it).
    fn entry_stats(&self) -> crate::exec::ws_entry::EntryStats {
        self.private
            .as_ref()
            .and_then(|p| p.entry.as_ref())
            .map(|e| e.stats)
            .unwrap_or_default()
    }

    /// `ws` when orders go over the authenticated WebSocket while it is up, else `rest`.
    fn order_transport(&self) -> &'static str {
        let ws = self.private.as_ref().is_some_and(|p| p.entry.is_some());
        if ws {
            OrderTransport::Ws.name()
        } else {
            OrderTransport::Rest.name()
        }
    }

    /// The dashboard's snapshot (the core asks for one at most every 250 ms). Copies numbers
    /// into a fixed-size value: nothing here allocates.
    fn publish_status(&mut self, now: Nanos) {
        let Some(link) = self.status else { return };
        let view = self.view(link.dropped());
        link.publish(&StatusSnapshot::capture(&self.core, now, &view));
        if let Some(i) = &mut self.out.interval {
            link.hand_over(i);
        }
    }

    /// What the feed thread knows beside the core, for a snapshot.
    fn view(&self, status_dropped: u64) -> FeedView {
        FeedView {
            live_fallback: self.live_fallback,
            connected: self.link.connected(),
            last_frame_at: self.frame_rx_ns,
            precision: self.precision,
            counters: self.counters(status_dropped),
            private_link: self.private_state().name(),
            order_transport: self.order_transport(),
            feed_trouble: self.trouble,
            private_trouble: self.private.as_ref().map(|p| p.trouble).unwrap_or_default(),
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
        let (consecutive, delay) = self.link.resync(now);
        self.notifier.send(Notice::Resubscribing {
            consecutive,
            delay_ms: (delay / MS) as u64,
        });
    }

    fn resubscribe_book(&mut self) {
        let sym = self.settings.symbol.clone();
        let depth = self.settings.book_depth;
        self.link.resubscribing(self.clock.now());
        self.send(&format!(
            r#"{{"method":"unsubscribe","params":{{"channel":"book","symbol":["{sym}"],"depth":{depth}}},"req_id":4}}"#
        ));
        self.send(&format!(
            r#"{{"method":"subscribe","params":{{"channel":"book","symbol":["{sym}"],"depth":{depth},"snapshot":true}},"req_id":5}}"#
        ));
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
        let due = self.link.due(now, self.link_state());
        if due.connect {
            self.connect(now);
        }
        if let Some(dead) = due.dead {
            if let Some(conn) = self.conn.take() {
                self.lost(conn, dead.reason());
            }
            return;
        }
        if let Some(id) = due.ping {
            self.send(&format!(r#"{{"method":"ping","req_id":{id}}}"#));
        }
        if due.resubscribe_book {
            self.resubscribe_book();
        }
        if let Some((book, instrument)) = due.retry_subscribe {
            self.subscribe(book, instrument);
        }
        self.private_timers(now);
        self.entry_timers();
    }

    fn connect(&mut self, now: Nanos) {
        self.link.connecting(now);
        match Connection::start(&self.endpoint, self.tls.clone(), self.poll.registry(), WS) {
            Ok(c) => {
                self.conn = Some(c);
                // The connect may already be complete (loopback); edge-triggered readiness
                // will also report it, but driving now costs nothing.
                self.on_socket(true);
            }
            Err(e) => {
                let delay = self.link.schedule_reconnect(now);
                self.notify_lost(&e.to_string(), delay);
            }
        }
    }

    /// The connection is gone: tell the core (book invalid, orders cancelled), schedule the
    /// reconnect.
    fn lost(&mut self, conn: Connection, reason: &str) {
        conn.close(self.poll.registry());
        let now = self.clock.now();
        let delay = self.link.lost(now);
        self.record_event(now, "disconnected");
        self.core.handle(now, Event::Disconnected, &mut self.out);
        self.take_intents(now, false);
        self.notify_lost(reason, delay);
    }

    fn notify_lost(&mut self, reason: &str, delay: Nanos) {
        self.trouble.failed(reason, self.clock.now());
        self.notifier.send(Notice::ConnectionLost {
            reason: ShortText::new(reason.as_bytes()),
            retry_in_ms: (delay / MS) as u64,
        });
    }

    /// Hands the journal its records among the pending intents and drops the rest: at
    /// shutdown, when the others have nowhere to go.
    fn journal_intents(&mut self) {
        if let Some(j) = &self.journal {
            j.send_records(&self.out.intents);
        }
        self.out.intents.clear();
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
        for i in &self.out.intents {
            if matches!(i, Intent::Cancel { .. }) {
                self.s.orders_cancelled += 1;
            }
        }
        self.journal_intents();
        // Live: cancel everything on the exchange and wait (bounded) for the answer, then
        // book the last fills it reports. WebSocket order requests in flight are answered
        // first, or handed to the worker.
        self.settle_entry();
        if let Some(p) = &mut self.private
            && let Some(c) = p.take_conn()
        {
            c.close(self.poll.registry());
        }
        let report = self.worker.take().and_then(|w| {
            let events = w.events.clone();
            let r = w.finish();
            while let Ok(ev) = events.try_recv() {
                self.on_worker_event(ev);
                self.journal_intents();
            }
            r
        });
        let mut counters = self.counters(self.status.map_or(0, StatusLink::dropped));
        let ws = self.entry_stats();
        if let Some(r) = &report {
            // Live: what reached Kraken (over either path), and what was never sent.
            counters.orders_placed = r.orders_sent + ws.orders_sent;
            counters.orders_collapsed = r.orders_collapsed + ws.collapsed;
        }
        let frames_recorded = match self.recorder.take().map(Recorder::finish) {
            Some(Ok(n)) => n,
            Some(Err(e)) => {
                log::error!("{e}");
                0
            }
            None => 0,
        };
        let p = self.precision;
        let cash = |c: Cash| c.to_f64(p.cash());
        let a = self.core.account();
        let mark = self.core.signals().micro;
        let st = self.core.stats();
        let link = self.link.counters();
        Summary {
            mode: if self.core.is_paper() {
                "paper"
            } else {
                "live"
            },
            duration_s: (now - self.clock.epoch) as f64 / 1e9,
            counters,
            updates_ignored: st.updates_ignored,
            subscribe_errors: link.subscribe_errors,
            pings: link.pings,
            pongs: st.pongs,
            heartbeats: st.heartbeats,
            position: a.position as f64 / 10f64.powi(i32::from(p.qty)),
            realized_pnl: cash(a.realised),
            unrealized_pnl: mark.map_or(0.0, |m| cash(a.unrealised(m))),
            equity: cash(a.equity),
            start_equity: cash(a.start_equity),
            peak_equity: cash(a.peak_equity),
            max_drawdown_pct: a.max_drawdown_ppm as f64 / 10_000.0,
            fees_paid: cash(a.fees),
            frames_recorded,
            live_fallback: self.live_fallback,
            pinned,
            state: self.core.state().name(),
            cash: cash(a.cash),
            baseline: a.baseline.to_f64(p.qty),
            account_base: a.reported.map(|r| r.base.to_f64(p.qty)),
            account_quote: a.reported.map(|r| cash(r.quote)),
            dust: self.core.params().is_dust(a.position),
            orders_per_s: counters.orders_placed as f64
                / ((now - self.clock.epoch) as f64 / 1e9).max(1e-9),
            private_link: self.private_state().name(),
            fill_to_core: crate::side::status::LatencyRow::of(&self.out.total.fill_to_core),
            private_snapshots: self.private.as_ref().map_or(0, |p| p.counters.snapshots),
            private_sequence_gaps: self
                .private
                .as_ref()
                .map_or(0, |p| p.counters.sequence_gaps),
            private_malformed: self.private.as_ref().map_or(0, |p| p.counters.malformed),
            ..Summary::latency(
                &self.out.total,
                report.as_ref(),
                self.private
                    .as_ref()
                    .and_then(|p| p.entry.as_ref())
                    .map(|e| (self.order_transport(), &e.intent_to_ack, e.stats.amends)),
            )
        }
    }
}
