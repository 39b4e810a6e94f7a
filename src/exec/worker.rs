//! The order worker: one blocking thread between the core's order intents and Kraken's
//! private REST API.
//!
//! Intents arrive on a bounded channel; results go back as [`OrderEvent`]s on another, and a
//! mio `Waker` nudges the feed thread so it picks them up at once. The worker paces itself:
//! at most one call per `rest_min_interval_ms`, exponential backoff 2 s → 60 s after an
//! error (a rate-limit error always backs off), cancels before anything else, new orders only
//! while the local model of Kraken's trading rate counter has room. Around that it polls
//! QueryOrders for fills, refreshes balances, and keeps the dead man's switch armed.
//!
//! A requote (the core's `Intent::Replace`: A out, B in, same side) is sent as one AmendOrder of
//! A when A rests unfilled and the rate counter has room (cheaper than cancel + add for young
//! orders, and Kraken keeps the order); if Kraken refuses the amend, it falls back to
//! cancel + add.
//!
//! An AddOrder whose answer is lost (timeout, dropped connection) is never blindly resent:
//! the worker first looks for its `cl_ord_id` among the open orders.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError, bounded};

use crate::core::event::{
    CancelReason, ClientId, Intent, OrderEvent, OrderRequest, RejectReason, Side,
};
use crate::core::money::{Cash, Decimal, Precision, Qty};
use crate::core::ratecounter::{ADD_COST, Tier, TradingCounter, amend_cost, cancel_cost};
use crate::core::time::Nanos;
use crate::exec::clordid::{kraken_cl, origin_of};
use crate::kraken::errors::KrakenError;
use crate::kraken::rest::{
    AddOrder, AssetPair, Credentials, OrderInfo, RestClient, normalise_asset,
};
use crate::side::journal::{JournalSender, Record};
use crate::side::status::{WorkerReport, histogram};

/// Capacity of the intent channel. The core has at most a handful of orders in flight, so a
/// full channel means the worker is stuck: an execution fault, never a silent drop.
pub const INTENT_CAPACITY: usize = 256;
const EVENT_CAPACITY: usize = 1024;
const BACKOFF_MIN: Duration = Duration::from_secs(2);
/// Longest the worker sleeps between looks at its intent channel.
const POLL_EVERY: Duration = Duration::from_micros(500);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The private endpoints the worker calls (one round-trip histogram each).
const ENDPOINTS: [&str; 9] = [
    "AddOrder",
    "AmendOrder",
    "Balance",
    "CancelAll",
    "CancelAllOrdersAfter",
    "CancelOrder",
    "OpenOrders",
    "ClosedOrders",
    "QueryOrders",
];
/// How often a copy of the report goes to the dashboard.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// What the feed thread asks of the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// An order intent of the core.
    Core(Intent),
    /// A fresh token for the authenticated WebSocket (answered with [`WorkerEvent::Token`]).
    Token,
    /// The private stream is healthy (fills arrive in real time: polls become the backstop)
    /// or not (polls are the fill path again).
    Stream {
        /// Open, subscribed and its snapshot read.
        healthy: bool,
    },
    /// The private stream (re)connected: query every tracked order now, then say
    /// [`WorkerEvent::Reconciled`].
    Reconcile,
    /// The account's rate-counter tier, as Kraken announced it (`maxratecount`).
    Tier(Tier),
    /// An order placed over the WebSocket, accepted as Kraken order `txid`: tracked like
    /// the worker's own (polls, reconcile, the final cancel-all).
    Track {
        /// The order.
        req: OrderRequest,
        /// Kraken's id.
        txid: String,
    },
    /// A WebSocket amend took effect: the order tracked as `old` is now `req`.
    Rebind {
        /// Its owner before.
        old: ClientId,
        /// Its owner and terms now.
        req: OrderRequest,
    },
    /// A WebSocket add whose answer was lost with the connection: looked up by its
    /// `cl_ord_id` once its deadline has passed (`wait_ns` from now), never sent again.
    Lost {
        /// The order.
        req: OrderRequest,
        /// Until Kraken's engine can no longer take it.
        wait_ns: Nanos,
    },
}

/// What the worker tells the feed thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerEvent {
    /// News for the core.
    Order(OrderEvent),
    /// A poll's executed totals of a Kraken order (its `cl_ord_id`'s client id `origin`),
    /// owned by `cl_id`: the feed's fill ledger books what exceeds what is booked.
    Totals {
        /// The client id in the order's `cl_ord_id`.
        origin: ClientId,
        /// The client id that owns it now.
        cl_id: ClientId,
        /// Executed quantity, cost and fee over the order's life.
        totals: (Qty, Cash, Cash),
    },
    /// The Kraken order placed as `origin` now belongs to `cl_id` (an amend, an adoption).
    Bound {
        /// The client id in the order's `cl_ord_id`.
        origin: ClientId,
        /// Its owner now.
        cl_id: ClientId,
    },
    /// A WebSocket token, or why there is none.
    Token(Result<String, KrakenError>),
    /// The reconciliation asked for is done: every tracked order was queried.
    Reconciled,
}

/// The feed thread's end of the worker.
#[derive(Debug)]
pub struct WorkerLink {
    intents: Sender<Command>,
    /// Events for the feed thread.
    pub events: Receiver<WorkerEvent>,
    /// The WebSocket token fetched at start (when the private stream is on).
    pub first_token: Option<String>,
    thread: Option<JoinHandle<WorkerReport>>,
}

impl WorkerLink {
    /// Hands an order intent over without waiting. `Err` only when the channel is full or the
    /// worker is gone: an execution fault the caller must act on.
    ///
    /// # Errors
    /// The intent back.
    pub fn send(&self, i: Intent) -> Result<(), Intent> {
        self.intents.try_send(Command::Core(i)).map_err(|_| i)
    }

    /// Hands a command over without waiting.
    ///
    /// # Errors
    /// The channel is full or the worker is gone.
    #[allow(clippy::result_large_err)]
    pub fn command(&self, c: Command) -> Result<(), Command> {
        self.intents.try_send(c).map_err(|e| match e {
            TrySendError::Full(c) | TrySendError::Disconnected(c) => c,
        })
    }

    /// Asks the worker to cancel everything and stop; waits for it (bounded by its REST
    /// timeout) and returns what it measured.
    #[must_use]
    pub fn finish(mut self) -> Option<WorkerReport> {
        let _ = self
            .intents
            .send_timeout(Command::Core(Intent::CancelAll), Duration::from_secs(1));
        let thread = self.thread.take();
        drop(self.intents);
        thread.and_then(|t| t.join().ok())
    }
}

/// Settings of the worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Kraken REST base URL.
    pub rest_url: String,
    /// REST pair name.
    pub pair: String,
    /// The WebSocket symbol traded (checked against the pair's assets at start).
    pub symbol: String,
    /// The instrument's decimals.
    pub precision: Precision,
    /// Minimum time between calls.
    pub min_interval: Duration,
    /// Fill poll interval (the fill path while the private stream is down).
    pub fill_poll: Duration,
    /// Fill poll interval while the private stream is healthy (a cross-check).
    pub fill_poll_backstop: Duration,
    /// The private stream is configured: fetch its token at start (a key without the
    /// WebSocket permission is refused).
    pub private_stream: bool,
    /// Orders go over the WebSocket while the stream is healthy (`order_transport = "ws"`):
    /// the feed thread keeps the dead man's switch armed then, the worker while it is down.
    pub ws_orders: bool,
    /// Balance refresh interval.
    pub balance_refresh: Duration,
    /// Dead man's switch refresh (zero: off) and timeout.
    pub deadman_refresh: Duration,
    /// Dead man's switch timeout, seconds.
    pub deadman_timeout_s: u64,
    /// Call timeout.
    pub timeout: Duration,
    /// Local trading rate counter.
    pub tier: Tier,
    /// A copy of the report goes here every second (the dashboard), never waited for.
    pub reports: Option<Sender<WorkerReport>>,
    /// The fill journal: each order's exchange id is appended when Kraken gives it.
    pub journal: Option<JournalSender>,
    /// Orders the journal of an earlier run still had open: looked up and settled at start.
    pub adopt: Vec<Adopt>,
}

/// Why live trading could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// Kraken refused us: a wrong key, a bad signature, a missing permission, an unknown
    /// pair. A configuration error: trading on paper instead would hide it.
    #[error("Kraken refused the account: {0}")]
    Refused(KrakenError),
    /// `rest_pair` is not the market `symbol` names.
    #[error("rest_pair {pair} trades {base}/{quote} but symbol is {symbol}")]
    PairMismatch {
        /// The REST pair.
        pair: String,
        /// Its base asset.
        base: String,
        /// Its quote asset.
        quote: String,
        /// The configured WS symbol.
        symbol: String,
    },
    /// The key may trade but not use the authenticated WebSocket (`ws_auth_url` is set).
    #[error(
        "the API key lacks the \"WebSocket interface\" permission (GetWebSocketsToken: {0}); turn it on for the key, or set ws_auth_url = \"\" to poll REST only"
    )]
    NoWebSocketPermission(KrakenError),
    /// The API cannot be reached (or fails): the caller falls back to paper.
    #[error("{0}")]
    Unreachable(KrakenError),
}

impl From<KrakenError> for StartError {
    fn from(e: KrakenError) -> StartError {
        match e {
            KrakenError::Auth(_) | KrakenError::InvalidArguments(_) => StartError::Refused(e),
            e => StartError::Unreachable(e),
        }
    }
}

impl StartError {
    /// A configuration error (exit 2), not a network one (paper fallback).
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        !matches!(self, StartError::Unreachable(_))
    }
}

/// The assets a pair's balances are kept under, normalised (`XBT`, `USD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairAssets {
    /// Base asset.
    pub base: String,
    /// Quote asset.
    pub quote: String,
}

impl PairAssets {
    /// From REST AssetPairs, checked against the WS `symbol` (`BTC/USD` and `XBT/USD` agree).
    ///
    /// # Errors
    /// The symbol names other assets.
    pub fn checked(pair: &str, p: &AssetPair, symbol: &str) -> Result<PairAssets, StartError> {
        let assets = PairAssets {
            base: normalise_asset(&p.base),
            quote: normalise_asset(&p.quote),
        };
        let (sb, sq) = symbol.split_once('/').unwrap_or((symbol, ""));
        if normalise_asset(sb) != assets.base || normalise_asset(sq) != assets.quote {
            return Err(StartError::PairMismatch {
                pair: pair.to_string(),
                base: assets.base,
                quote: assets.quote,
                symbol: symbol.to_string(),
            });
        }
        Ok(assets)
    }

    /// The balance of `asset` among Kraken's Balance keys: the spot holding only (a key with a
    /// suffix, such as `XBT.F` for earn, is another holding).
    fn find<'a>(b: &'a BTreeMap<String, String>, asset: &str) -> Option<&'a String> {
        b.iter()
            .find(|(k, _)| !k.contains('.') && normalise_asset(k) == asset)
            .map(|(_, v)| v)
    }
}

/// What the core is told when an order request failed with this Kraken error.
#[must_use]
pub fn reject_reason(e: &KrakenError) -> RejectReason {
    match e {
        KrakenError::PostOnly => RejectReason::PostOnly,
        KrakenError::InsufficientFunds => RejectReason::InsufficientFunds,
        KrakenError::RateLimit(_) => RejectReason::RateLimit,
        KrakenError::InvalidArguments(_) => RejectReason::Invalid,
        KrakenError::Unavailable(_) => RejectReason::Unavailable,
        _ => RejectReason::Other,
    }
}

/// An order the journal still had open when the last run ended.
#[derive(Debug, Clone)]
pub struct Adopt {
    /// The order as placed.
    pub req: OrderRequest,
    /// What the journal booked of it.
    pub exec: Qty,
    /// Kraken's id and `cl_ord_id`, when the journal has them.
    pub ids: Option<(String, String)>,
    /// When it was placed, ns since the Unix epoch.
    pub placed_ns: Nanos,
}

/// Balances as the core wants them: the pair's own base and quote, whatever they are called.
fn balances_event(b: &BTreeMap<String, String>, assets: &PairAssets, p: Precision) -> OrderEvent {
    let get =
        |asset: &str| PairAssets::find(b, asset).and_then(|v| Decimal::parse(v.as_bytes()).ok());
    let quote = get(&assets.quote).map_or(Cash(0), |d| Cash::from_decimal_round_down(d, p.cash()));
    let base = get(&assets.base)
        .and_then(|d| d.to_units_floor(p.qty).ok())
        .map_or(Qty(0), Qty);
    OrderEvent::Balances { quote, base }
}

/// Start-up: balances, leftovers, dead man's switch. On success the worker thread runs and
/// the returned link carries intents and events; the first event is the balances.
///
/// # Errors
/// [`StartError::Refused`] / [`StartError::PairMismatch`]: a configuration error the caller
/// must not paper over; [`StartError::Unreachable`]: the caller falls back to paper and alerts.
pub fn start(
    cfg: WorkerConfig,
    creds: Credentials,
    waker: Arc<mio::Waker>,
) -> Result<WorkerLink, StartError> {
    let mut cfg = cfg;
    let adopt = std::mem::take(&mut cfg.adopt);
    let mut client = RestClient::new(&cfg.rest_url, &cfg.pair, creds, cfg.timeout);
    let assets = PairAssets::checked(&cfg.pair, &client.asset_pair()?, &cfg.symbol)?;
    log::info!(
        "{}: balances of {} (base) and {} (quote)",
        cfg.pair,
        assets.base,
        assets.quote
    );
    let (intent_tx, intent_rx) = bounded(INTENT_CAPACITY);
    let (event_tx, event_rx) = bounded(EVENT_CAPACITY);
    let mut w = Worker::new(cfg, client, assets, event_tx, waker);
    w.report.leftovers_cancelled = w.settle_leftovers(&adopt)?;
    if !w.cfg.deadman_refresh.is_zero() {
        w.client.cancel_all_orders_after(w.cfg.deadman_timeout_s)?;
    }
    // After the leftovers are settled: these balances include whatever they filled.
    let bal = w.client.balance()?;
    w.emit(balances_event(&bal, &w.assets, w.cfg.precision));
    let first_token = if w.cfg.private_stream {
        match w.client.websockets_token() {
            Ok(t) => Some(t),
            Err(e @ KrakenError::Auth(_)) => return Err(StartError::NoWebSocketPermission(e)),
            Err(e) => return Err(e.into()),
        }
    } else {
        None
    };
    let thread = std::thread::Builder::new()
        .name("order-worker".into())
        .spawn(move || {
            w.run(&intent_rx);
            w.report
        })
        .map_err(|e| StartError::Unreachable(KrakenError::Other(format!("worker thread: {e}"))))?;
    Ok(WorkerLink {
        intents: intent_tx,
        events: event_rx,
        first_token,
        thread: Some(thread),
    })
}

/// One order the worker knows about.
#[derive(Debug, Clone)]
struct Tracked {
    req: OrderRequest,
    /// Kraken's cl_ord_id for the order (an amended order keeps the original one).
    kraken_cl: String,
    txid: Option<String>,
    placed_at: Instant,
    last_exec: Qty,
}

/// Where an order whose AddOrder answer was lost turned out to be.
enum Lookup {
    /// Open or ended at Kraken: now tracked.
    Found,
    /// In neither list: it never arrived.
    Absent,
    /// A lookup call failed.
    Failed,
}

/// An order whose AddOrder answer was lost.
#[derive(Debug, Clone, Copy)]
struct Lost {
    req: OrderRequest,
    since: Instant,
    /// Not looked up before this: until then Kraken may still take it (a WebSocket add's
    /// deadline).
    not_before: Instant,
    /// Sent again if it never arrived (REST); a WebSocket add's quote is stale by then and
    /// is reported cancelled instead.
    resend: bool,
    /// A cancel (or cancel-all) came before it could be looked up: cancelled when found open.
    cancel: bool,
}

enum Job {
    Place(OrderRequest, Instant),
    Cancel(ClientId),
    /// A requote: `old` out, the new order in; one AmendOrder when possible.
    Replace(ClientId, OrderRequest, Instant),
    CancelAll,
    /// An AddOrder whose answer was lost: look before resending.
    Recover(Lost),
}

struct Worker {
    cfg: WorkerConfig,
    client: RestClient,
    assets: PairAssets,
    events: Sender<WorkerEvent>,
    waker: Arc<mio::Waker>,
    queue: VecDeque<Job>,
    /// The private stream is healthy: fill polls are the backstop.
    stream_healthy: bool,
    /// A reconciliation was asked for and is not done yet.
    reconcile_due: bool,
    orders: BTreeMap<ClientId, Tracked>,
    /// The last order QueryOrders showed ended, with its executed quantity then.
    ended: Option<(ClientId, Qty)>,
    counter: TradingCounter,
    epoch: Instant,
    next_call: Instant,
    backoff: Duration,
    next_poll: Instant,
    next_balance: Instant,
    next_deadman: Instant,
    report: WorkerReport,
    next_report: Instant,
    stopping: bool,
}

impl Worker {
    fn new(
        cfg: WorkerConfig,
        client: RestClient,
        assets: PairAssets,
        events: Sender<WorkerEvent>,
        waker: Arc<mio::Waker>,
    ) -> Worker {
        let now = Instant::now();
        Worker {
            counter: TradingCounter::new(cfg.tier, 10.0),
            next_poll: now + cfg.fill_poll,
            next_balance: now + cfg.balance_refresh,
            next_deadman: now + cfg.deadman_refresh,
            cfg,
            client,
            assets,
            events,
            waker,
            queue: VecDeque::new(),
            stream_healthy: false,
            reconcile_due: false,
            orders: BTreeMap::new(),
            ended: None,
            epoch: now,
            next_call: now,
            backoff: BACKOFF_MIN,
            report: WorkerReport {
                intent_to_ack: histogram(),
                // Every endpoint's histogram exists from the start: nothing allocates later.
                round_trip: ENDPOINTS.iter().map(|e| (*e, histogram())).collect(),
                errors: BTreeMap::new(),
                amends: 0,
                amend_fallbacks: 0,
                rate_holds: 0,
                orders_sent: 0,
                orders_collapsed: 0,
                deadman_refreshes: 0,
                leftovers_cancelled: 0,
                shutdown_cancel_confirmed: false,
            },
            next_report: now,
            stopping: false,
        }
    }

    fn ns(&self, t: Instant) -> Nanos {
        t.duration_since(self.epoch).as_nanos() as Nanos
    }

    fn emit(&self, ev: OrderEvent) {
        self.tell(WorkerEvent::Order(ev));
    }

    fn tell(&self, ev: WorkerEvent) {
        // Bounded and drained by the feed thread; blocking briefly here never blocks it.
        let _ = self.events.send_timeout(ev, Duration::from_secs(1));
        let _ = self.waker.wake();
    }

    /// The fill poll interval now: the backstop while the stream delivers fills.
    fn poll_every(&self) -> Duration {
        if self.stream_healthy {
            self.cfg.fill_poll_backstop
        } else {
            self.cfg.fill_poll
        }
    }

    fn run(&mut self, intents: &Receiver<Command>) {
        loop {
            // Poll, never block in `recv`: a send from the feed thread then never has to wake
            // this thread (a futex syscall on the hot path). The poll interval is small next
            // to any REST round trip.
            loop {
                match intents.try_recv() {
                    Ok(i) => self.take(i),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.stopping = true;
                        break;
                    }
                }
            }
            if self.stopping {
                self.shutdown();
                return;
            }
            let now = Instant::now();
            if now >= self.next_report
                && let Some(tx) = &self.cfg.reports
            {
                self.next_report = now + REPORT_EVERY;
                let _ = tx.try_send(self.report.clone());
            }
            let due = self.next_due(now);
            if now >= due {
                self.step();
            } else {
                let wait = due.saturating_duration_since(now);
                std::thread::sleep(wait.clamp(Duration::from_micros(50), POLL_EVERY));
            }
        }
    }

    fn next_due(&self, now: Instant) -> Instant {
        let periodic = self.next_poll.min(self.next_balance).min(self.next_deadman);
        // The earliest queued job that may run (a lost WebSocket add: after its deadline).
        let job = self
            .queue
            .iter()
            .map(|j| match j {
                Job::Recover(l) => l.not_before.max(now),
                _ => now,
            })
            .min();
        let work = if self.reconcile_due { Some(now) } else { job };
        self.next_call
            .max(work.map_or(periodic, |t| t.min(periodic)))
    }

    fn take(&mut self, c: Command) {
        let now = Instant::now();
        let i = match c {
            Command::Core(i) => i,
            Command::Token => {
                let t = self.timed("GetWebSocketsToken", RestClient::websockets_token);
                self.tell(WorkerEvent::Token(t));
                return;
            }
            Command::Stream { healthy } => {
                self.stream_healthy = healthy;
                let every = self.poll_every();
                self.next_poll = if healthy {
                    now + every
                } else {
                    self.next_poll.min(now + every)
                };
                return;
            }
            Command::Reconcile => {
                self.reconcile_due = true;
                // The dead man's switch is re-armed with every (re)connect, right after the
                // reconcile (Kraken's recommended procedure).
                self.next_deadman = now;
                return;
            }
            Command::Tier(tier) => {
                if tier != self.counter.tier() {
                    log::info!("rate counter: {} tier, as Kraken announced", tier.name());
                }
                let now_ns = self.ns(now);
                self.counter.set_tier(now_ns, tier, 10.0);
                return;
            }
            Command::Track { req, txid } => {
                self.track(req, kraken_cl(req.cl_id), txid);
                return;
            }
            Command::Rebind { old, req } => {
                if let Some(t) = self.orders.remove(&old) {
                    let placed_at = Instant::now();
                    self.orders.insert(
                        req.cl_id,
                        Tracked {
                            req,
                            placed_at,
                            ..t
                        },
                    );
                    self.journal_txid(req.cl_id);
                }
                return;
            }
            Command::Lost { req, wait_ns } => {
                self.queue.push_front(Job::Recover(Lost {
                    req,
                    since: now,
                    not_before: now + Duration::from_nanos(wait_ns.max(0) as u64),
                    resend: false,
                    cancel: false,
                }));
                return;
            }
        };
        match i {
            // Cancels go first: they reduce risk. An order not sent yet never needs to be.
            Intent::Cancel { cl_id } if !self.drop_unsent(cl_id) => {
                self.push_risk_reducing(Job::Cancel(cl_id));
            }
            Intent::CancelAll => {
                // Lost AddOrder answers are still looked up (by the cancel-all itself).
                self.count_unsent();
                self.queue
                    .retain(|j| matches!(j, Job::Cancel(_) | Job::Recover(..)));
                self.queue.push_front(Job::CancelAll);
            }
            Intent::Place(req) => self.queue.push_back(Job::Place(req, now)),
            // A drift check: balances after the next fill poll, not in 300 s.
            Intent::CheckBalances => {
                self.next_balance = self.next_balance.min(self.next_poll);
            }
            Intent::Replace { old, new } => {
                if self.drop_unsent(old) {
                    self.queue.push_back(Job::Place(new, now));
                } else {
                    // Cancel priority: it takes risk off before it adds any.
                    self.push_risk_reducing(Job::Replace(old, new, now));
                }
            }
            _ => {}
        }
    }

    /// An order still waiting in the queue is simply never sent: drops it and tells the core
    /// it is cancelled. `false` when it is not queued.
    fn drop_unsent(&mut self, cl_id: ClientId) -> bool {
        let Some(pos) = self
            .queue
            .iter()
            .position(|j| matches!(j, Job::Place(r, _) if r.cl_id == cl_id))
        else {
            return false;
        };
        self.queue.remove(pos);
        self.report.orders_collapsed += 1;
        self.emit(OrderEvent::Cancelled {
            cl_id,
            reason: CancelReason::Requested,
        });
        true
    }

    /// Counts the queued orders about to be dropped unsent.
    fn count_unsent(&mut self) {
        let n = self
            .queue
            .iter()
            .filter(|j| matches!(j, Job::Place(..) | Job::Replace(..)))
            .count();
        self.report.orders_collapsed += n as u64;
    }

    /// Queues `job` behind the other cancels and ahead of everything else.
    fn push_risk_reducing(&mut self, job: Job) {
        let at = self
            .queue
            .iter()
            .position(|j| !matches!(j, Job::Cancel(_) | Job::Replace(..) | Job::CancelAll))
            .unwrap_or(self.queue.len());
        self.queue.insert(at, job);
    }

    fn timed<T>(
        &mut self,
        name: &'static str,
        f: impl FnOnce(&mut RestClient) -> Result<T, KrakenError>,
    ) -> Result<T, KrakenError> {
        let t = Instant::now();
        let r = f(&mut self.client);
        let _ = self
            .report
            .round_trip
            .entry(name)
            .or_insert_with(histogram)
            .record(t.elapsed().as_nanos().max(1) as u64);
        let now = Instant::now();
        self.next_call = now + self.cfg.min_interval;
        match &r {
            Ok(_) => self.backoff = BACKOFF_MIN,
            Err(e) => {
                let kind = format!("{name}: {e}");
                *self.report.errors.entry(kind).or_default() += 1;
                if e.needs_backoff() {
                    log::warn!(
                        "{name} failed: {e}; backing off {} ms",
                        self.backoff.as_millis()
                    );
                    self.next_call = now + self.backoff.max(self.cfg.min_interval);
                    self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                } else {
                    log::info!("{name} refused: {e}");
                }
            }
        }
        r
    }

    /// One REST call: the most important due thing.
    fn step(&mut self) {
        let now = Instant::now();
        // A lost WebSocket add waits for its deadline without holding anything else up.
        let ready = self
            .queue
            .iter()
            .position(|j| !matches!(j, Job::Recover(l) if l.not_before > now));
        if let Some(job) = ready.and_then(|i| self.queue.remove(i)) {
            match job {
                Job::Cancel(cl_id) => self.cancel(cl_id),
                Job::Replace(old, req, since) => {
                    if self.can_amend(old) {
                        self.amend(old, req, since);
                    } else {
                        self.replace_by_cancel(old, req, since);
                    }
                }
                Job::CancelAll => self.cancel_all(),
                Job::Recover(lost) => self.recover(lost),
                Job::Place(req, since) => {
                    let wait = self.counter.wait_ns(self.ns(now), ADD_COST);
                    if wait > 0 {
                        self.report.rate_holds += 1;
                        self.queue.push_front(Job::Place(req, since));
                        self.next_call = now + Duration::from_nanos(wait as u64);
                    } else {
                        self.place(req, since);
                    }
                }
            }
            return;
        }
        if self.reconcile_due {
            // Every tracked order's state and fills, then the core may quote again.
            let ids: Vec<ClientId> = self.orders.keys().copied().collect();
            if self.refresh(&ids) {
                self.reconcile_due = false;
                self.next_poll = now + self.poll_every();
                self.emit(OrderEvent::Polled);
                self.tell(WorkerEvent::Reconciled);
            }
        } else if !self.cfg.deadman_refresh.is_zero()
            && now >= self.next_deadman
            && !(self.cfg.ws_orders && self.stream_healthy)
        {
            self.next_deadman = now + self.cfg.deadman_refresh;
            let t = self.cfg.deadman_timeout_s;
            if self
                .timed("CancelAllOrdersAfter", |c| c.cancel_all_orders_after(t))
                .is_ok()
            {
                self.report.deadman_refreshes += 1;
            }
        } else if now >= self.next_poll {
            self.next_poll = now + self.poll_every();
            self.poll();
        } else if now >= self.next_balance {
            self.next_balance = now + self.cfg.balance_refresh;
            if let Ok(b) = self.timed("Balance", RestClient::balance) {
                self.emit(balances_event(&b, &self.assets, self.cfg.precision));
            }
        }
    }

    fn add_order(&self, req: &OrderRequest, kraken_cl: String) -> AddOrder {
        AddOrder {
            cl_ord_id: kraken_cl,
            side: match req.side {
                Side::Buy => "buy",
                Side::Sell => "sell",
            },
            volume: req.qty.show(self.cfg.precision.qty).to_string(),
            price: req.price.show(self.cfg.precision.price).to_string(),
            post_only: req.post_only,
            ioc: req.ioc,
        }
    }

    fn place(&mut self, req: OrderRequest, since: Instant) {
        let cl = kraken_cl(req.cl_id);
        let add = self.add_order(&req, cl.clone());
        let now_ns = self.ns(Instant::now());
        let r = self.timed("AddOrder", |c| c.add_order(&add));
        // Kraken answered (accepted or refused): it reached the exchange.
        if !matches!(
            r,
            Err(KrakenError::Network(_) | KrakenError::Unavailable(_))
        ) {
            self.report.orders_sent += 1;
        }
        match r {
            Ok(txid) => {
                self.counter.spend(now_ns, ADD_COST);
                let _ = self
                    .report
                    .intent_to_ack
                    .record(since.elapsed().as_nanos().max(1) as u64);
                self.track(req, cl, txid);
                self.emit(OrderEvent::Accepted { cl_id: req.cl_id });
            }
            // No answer, or a gateway error: the order may or may not be there. Look first.
            Err(KrakenError::Network(_) | KrakenError::Unavailable(_)) => {
                self.queue.push_front(Job::Recover(Lost {
                    req,
                    since,
                    not_before: Instant::now(),
                    resend: true,
                    cancel: false,
                }));
            }
            Err(e) => self.emit(OrderEvent::Rejected {
                cl_id: req.cl_id,
                reason: reject_reason(&e),
            }),
        }
    }

    /// Start-up: orders on our pair left by an earlier run. Those the journal knows are
    /// looked up, their fills since the journal's last record booked, and cancelled; those it
    /// does not know (orphans) are cancelled. Every difference is logged. Returns how many
    /// orders rested on the exchange.
    fn settle_leftovers(&mut self, adopt: &[Adopt]) -> Result<u32, KrakenError> {
        let open = self.client.open_orders()?;
        let mine: Vec<(&String, _)> = open
            .iter()
            .filter(|(_, o)| o.descr.pair == self.cfg.pair)
            .collect();
        for a in adopt {
            let cl = kraken_cl(a.req.cl_id);
            let mut found = a.ids.clone().or_else(|| {
                mine.iter()
                    .find(|(_, o)| o.cl_ord_id.as_deref() == Some(cl.as_str()))
                    .map(|(txid, _)| ((*txid).clone(), cl.clone()))
            });
            if found.is_none() {
                // Its AddOrder answer never came: it may have ended since (filled, cancelled).
                let start = a.placed_ns as f64 / 1e9 - 30.0;
                let ours = |o: &OrderInfo| o.cl_ord_id.as_deref() == Some(cl.as_str());
                found = self
                    .client
                    .find_closed(start, ours)?
                    .into_iter()
                    .find(|(_, o)| o.cl_ord_id.as_deref() == Some(cl.as_str()))
                    .map(|(txid, _)| (txid, cl));
            }
            match found {
                Some((txid, cl)) => {
                    let still_open = mine.iter().any(|(t, _)| **t == txid);
                    log::info!(
                        "reconcile: journal order {} ({txid}) is {} on the exchange: \
                         booking its fills, then cancelling",
                        a.req.cl_id,
                        if still_open {
                            "still open"
                        } else {
                            "no longer open"
                        }
                    );
                    self.tell(WorkerEvent::Bound {
                        origin: origin_of(cl.as_bytes()).unwrap_or(a.req.cl_id),
                        cl_id: a.req.cl_id,
                    });
                    self.orders.insert(
                        a.req.cl_id,
                        Tracked {
                            req: a.req,
                            kraken_cl: cl,
                            txid: Some(txid),
                            placed_at: Instant::now(),
                            last_exec: a.exec,
                        },
                    );
                }
                None => {
                    log::warn!(
                        "reconcile: journal order {} never got Kraken's answer and is neither \
                         open nor closed on the exchange: it never arrived",
                        a.req.cl_id
                    );
                    self.emit(OrderEvent::Cancelled {
                        cl_id: a.req.cl_id,
                        reason: CancelReason::Exchange,
                    });
                }
            }
        }
        let known: Vec<&str> = self
            .orders
            .values()
            .filter_map(|t| t.txid.as_deref())
            .collect();
        for (txid, o) in &mine {
            if !known.contains(&txid.as_str()) {
                log::warn!(
                    "reconcile: order {txid} ({}) on {} is not in the journal: cancelling it",
                    o.cl_ord_id.as_deref().unwrap_or("no cl_ord_id"),
                    self.cfg.pair
                );
            }
        }
        if mine.is_empty() && self.orders.is_empty() {
            return Ok(0);
        }
        if !mine.is_empty() {
            log::warn!(
                "{} open order(s) left by an earlier run: cancelling all",
                mine.len()
            );
            self.client.cancel_all()?;
        }
        // Final fills and ends of the adopted orders, as after any cancel-all.
        self.settle_after_cancel_all();
        Ok(u32::try_from(mine.len()).unwrap_or(u32::MAX))
    }

    /// Appends an order's exchange id to the journal.
    fn journal_txid(&self, cl_id: ClientId) {
        if let (Some(j), Some(t)) = (&self.cfg.journal, self.orders.get(&cl_id))
            && let Some(txid) = &t.txid
        {
            j.send(Record::Txid {
                t: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as Nanos),
                cl_id,
                txid: txid.clone(),
                kraken_cl: t.kraken_cl.clone(),
            });
        }
    }

    fn track(&mut self, req: OrderRequest, kraken_cl: String, txid: String) {
        self.orders.insert(
            req.cl_id,
            Tracked {
                req,
                kraken_cl,
                txid: Some(txid),
                placed_at: Instant::now(),
                last_exec: Qty(0),
            },
        );
        self.journal_txid(req.cl_id);
    }

    /// After a lost AddOrder answer: is the order there (open, or already ended)? Then it was
    /// accepted; only when it is in neither list did it never arrive: a REST order is sent
    /// again, a WebSocket one (stale by its deadline) is reported cancelled.
    fn recover(&mut self, lost: Lost) {
        let now = Instant::now();
        if now < lost.not_before {
            // Not yet (step runs only due ones): back in the queue.
            self.queue.push_back(Job::Recover(lost));
            return;
        }
        let Ok(open) = self.timed("OpenOrders", RestClient::open_orders) else {
            self.queue.push_front(Job::Recover(lost));
            return;
        };
        match self.lookup_lost(lost.req, lost.since, &open) {
            Lookup::Found => {
                let _ = self
                    .report
                    .intent_to_ack
                    .record(lost.since.elapsed().as_nanos().max(1) as u64);
                self.cancel_if_asked(&lost);
            }
            Lookup::Absent if lost.resend => {
                self.queue.push_front(Job::Place(lost.req, lost.since));
            }
            Lookup::Absent => self.never_arrived(lost.req.cl_id),
            Lookup::Failed => self.queue.push_front(Job::Recover(lost)),
        }
    }

    /// A lost add that a cancel was waiting for, found open: the cancel goes now.
    fn cancel_if_asked(&mut self, lost: &Lost) {
        if lost.cancel && self.orders.contains_key(&lost.req.cl_id) {
            self.queue.push_front(Job::Cancel(lost.req.cl_id));
        }
    }

    /// A cancel of `cl_id` (every order: `None`) meets lost WebSocket adds that cannot be
    /// looked up yet (Kraken may still take them until their deadline): each is cancelled
    /// when found open. `true` when `cl_id` is one of them.
    fn cancel_when_found(&mut self, only: Option<ClientId>) -> bool {
        let now = Instant::now();
        let mut met = false;
        for j in &mut self.queue {
            if let Job::Recover(l) = j
                && l.not_before > now
                && only.is_none_or(|id| l.req.cl_id == id)
            {
                l.cancel = true;
                met = true;
            }
        }
        met
    }

    fn never_arrived(&self, cl_id: ClientId) {
        log::info!("order {cl_id}: its add never reached Kraken (looked up by cl_ord_id)");
        self.emit(OrderEvent::Cancelled {
            cl_id,
            reason: CancelReason::Requested,
        });
    }

    /// Finds an order whose AddOrder answer was lost by its `cl_ord_id`: among `open`, else
    /// among the orders closed since it was sent (it may have filled at once, or been
    /// cancelled as post-only). Found: it is tracked and accepted, and an ended one's fills
    /// and end are reported at once.
    fn lookup_lost(
        &mut self,
        req: OrderRequest,
        since: Instant,
        open: &BTreeMap<String, OrderInfo>,
    ) -> Lookup {
        let cl = kraken_cl(req.cl_id);
        let is_ours = |o: &OrderInfo| o.cl_ord_id.as_deref() == Some(cl.as_str());
        if let Some((txid, _)) = open.iter().find(|(_, o)| is_ours(o)) {
            log::info!(
                "order {} ({txid}): its add's answer was lost; found open by its cl_ord_id",
                req.cl_id
            );
            self.track(req, cl, txid.clone());
            self.report.orders_sent += 1;
            self.emit(OrderEvent::Accepted { cl_id: req.cl_id });
            return Lookup::Found;
        }
        // Opened after the request left (less a margin for clock skew).
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
            - since.elapsed().as_secs_f64()
            - 30.0;
        let Ok(closed) = self.timed("ClosedOrders", |c| c.find_closed(start, is_ours)) else {
            return Lookup::Failed;
        };
        let Some((txid, info)) = closed.iter().find(|(_, o)| is_ours(o)) else {
            return Lookup::Absent;
        };
        log::info!(
            "order {} ({txid}): its add's answer was lost and it has already ended ({})",
            req.cl_id,
            info.status
        );
        self.track(req, cl, txid.clone());
        self.report.orders_sent += 1;
        self.emit(OrderEvent::Accepted { cl_id: req.cl_id });
        if let Some(t) = self.orders.get(&req.cl_id).cloned() {
            self.apply_info(req.cl_id, &t, info);
        }
        Lookup::Found
    }

    /// Before anything cancels an order whose AddOrder answer is still being looked for (or
    /// every such order: `None`), looks now, so that the cancel reaches it and its fills are
    /// booked; one that never arrived is reported cancelled and never sent. `false` when a
    /// lookup failed (the caller retries).
    fn resolve_recoveries(&mut self, only: Option<ClientId>) -> bool {
        let now = Instant::now();
        let pending: Vec<Lost> = self
            .queue
            .iter()
            .filter_map(|j| match j {
                // Before its deadline a lost WebSocket add is not looked up (see
                // `cancel_when_found`).
                Job::Recover(l)
                    if only.is_none_or(|id| l.req.cl_id == id) && l.not_before <= now =>
                {
                    Some(*l)
                }
                _ => None,
            })
            .collect();
        if pending.is_empty() {
            return true;
        }
        let Ok(open) = self.timed("OpenOrders", RestClient::open_orders) else {
            return false;
        };
        let mut ok = true;
        for lost in pending {
            let cl_id = lost.req.cl_id;
            match self.lookup_lost(lost.req, lost.since, &open) {
                Lookup::Found => self.cancel_if_asked(&lost),
                Lookup::Absent => self.never_arrived(cl_id),
                Lookup::Failed => {
                    ok = false;
                    continue; // stays queued
                }
            }
            self.queue
                .retain(|j| !matches!(j, Job::Recover(l) if l.req.cl_id == cl_id));
        }
        ok
    }

    /// Whether `old` can be amended in place: it rests at Kraken unfilled, is not IOC, and
    /// the rate counter has room for the amend (else cancel + add, and the add waits).
    fn can_amend(&mut self, old: ClientId) -> bool {
        let Some(o) = self.orders.get(&old) else {
            return false;
        };
        if o.last_exec.0 != 0 || o.txid.is_none() || o.req.ioc {
            return false;
        }
        let age = o.placed_at.elapsed().as_nanos() as Nanos;
        let now_ns = self.ns(Instant::now());
        self.counter.allows(now_ns, amend_cost(age))
    }

    fn amend(&mut self, old: ClientId, req: OrderRequest, since: Instant) {
        let Some(t) = self.orders.get(&old).cloned() else {
            self.queue.push_front(Job::Place(req, since));
            return;
        };
        let now_ns = self.ns(Instant::now());
        let age = t.placed_at.elapsed().as_nanos() as Nanos;
        let cost = amend_cost(age);
        let qty = req.qty.show(self.cfg.precision.qty).to_string();
        let price = req.price.show(self.cfg.precision.price).to_string();
        let cl = t.kraken_cl.clone();
        match self.timed("AmendOrder", |c| c.amend_order(&cl, &qty, &price)) {
            Ok(()) => {
                self.counter.spend(now_ns, cost);
                self.report.amends += 1;
                self.report.orders_sent += 1;
                let _ = self
                    .report
                    .intent_to_ack
                    .record(since.elapsed().as_nanos().max(1) as u64);
                self.orders.remove(&old);
                self.orders.insert(
                    req.cl_id,
                    Tracked {
                        req,
                        last_exec: t.last_exec,
                        // Kraken counts an order's age from its last amend (§7 of
                        // kraken-private-ws.md): the next cancel or amend costs accordingly.
                        placed_at: Instant::now(),
                        ..t
                    },
                );
                self.journal_txid(req.cl_id);
                // The feed's ledger first: a fill of the order from now on is the new owner's.
                self.tell(WorkerEvent::Bound {
                    origin: origin_of(cl.as_bytes()).unwrap_or(old),
                    cl_id: req.cl_id,
                });
                self.emit(OrderEvent::Cancelled {
                    cl_id: old,
                    reason: CancelReason::Requested,
                });
                self.emit(OrderEvent::Accepted { cl_id: req.cl_id });
            }
            Err(_) => {
                // Refused: most often because the order just filled. Cancel it; the new one
                // goes only if the old ended unfilled (below).
                self.report.amend_fallbacks += 1;
                self.replace_by_cancel(old, req, since);
            }
        }
    }

    /// A requote without an amend: cancel `old` (never held back), then place `req` only if
    /// `old` is seen to have ended with nothing more filled. Otherwise both could fill: an
    /// exit that filled just before its cancel plus its replacement would sell base the bot
    /// does not own (the user's holding, live). The core is told `req` never went, and
    /// decides again from the fills and cancels it now knows.
    fn replace_by_cancel(&mut self, old: ClientId, req: OrderRequest, since: Instant) {
        // Not tracked: it ended already (the core's requote crossed the news), or its add's
        // answer was lost and it may rest unseen. Either way the new order waits.
        let before = self.orders.get(&old).map(|t| t.last_exec);
        self.ended = None;
        self.cancel(old);
        let clean =
            before.is_some_and(|b| !self.orders.contains_key(&old) && self.ended == Some((old, b)));
        if clean {
            self.queue.push_front(Job::Place(req, since));
        } else {
            log::info!(
                "order {}: not placed, {old} filled or its end is not confirmed yet; the core \
                 decides again",
                req.cl_id
            );
            self.report.orders_collapsed += 1;
            self.emit(OrderEvent::Cancelled {
                cl_id: req.cl_id,
                reason: CancelReason::Requested,
            });
        }
    }

    fn cancel(&mut self, cl_id: ClientId) {
        if self.cancel_when_found(Some(cl_id)) {
            return;
        }
        if !self.orders.contains_key(&cl_id) && !self.resolve_recoveries(Some(cl_id)) {
            self.queue.push_front(Job::Cancel(cl_id));
            return;
        }
        let Some(t) = self.orders.get(&cl_id).cloned() else {
            // Never placed (rejected, or lost): nothing rests.
            self.emit(OrderEvent::Cancelled {
                cl_id,
                reason: CancelReason::Requested,
            });
            return;
        };
        let now_ns = self.ns(Instant::now());
        let cost = cancel_cost(t.placed_at.elapsed().as_nanos() as Nanos);
        let cl = t.kraken_cl.clone();
        match self.timed("CancelOrder", |c| c.cancel_order(&cl)) {
            Ok(_) | Err(KrakenError::UnknownOrder) => {
                self.counter.spend(now_ns, cost);
                // What filled before the cancel, then its end, as QueryOrders reports them.
                // An order QueryOrders does not show ended yet stays tracked: the fill poll
                // books whatever it still reports (a fill racing the cancel is never lost).
                self.refresh(&[cl_id]);
            }
            Err(_) => self.queue.push_front(Job::Cancel(cl_id)),
        }
    }

    /// After a CancelAll: every tracked order's last fills and end (QueryOrders). Orders not
    /// shown ended yet are settled by the next polls; at shutdown they are asked for a few
    /// more times, then given up as cancelled (and named).
    fn settle_after_cancel_all(&mut self) {
        let tries = if self.stopping { 5 } else { 1 };
        for k in 0..tries {
            if k > 0 {
                std::thread::sleep(self.cfg.min_interval.max(Duration::from_millis(100)));
            }
            let ids: Vec<ClientId> = self.orders.keys().copied().collect();
            if ids.is_empty() {
                return;
            }
            self.refresh(&ids);
        }
        if !self.stopping {
            return;
        }
        let left: Vec<ClientId> = self.orders.keys().copied().collect();
        for id in left {
            log::warn!("order {id}: Kraken did not report its end after the final cancel-all");
            self.orders.remove(&id);
            self.emit(OrderEvent::Cancelled {
                cl_id: id,
                reason: CancelReason::Requested,
            });
        }
    }

    fn cancel_all(&mut self) {
        // Risk off at once: a lost WebSocket add still within its deadline is cancelled when
        // found. Other orders whose AddOrder answer was lost are found first, so their fills
        // are booked.
        self.cancel_when_found(None);
        if !self.resolve_recoveries(None) && !self.stopping {
            self.queue.push_front(Job::CancelAll);
            return;
        }
        match self.timed("CancelAll", RestClient::cancel_all) {
            Ok(_) => {
                self.settle_after_cancel_all();
                if self.stopping {
                    self.report.shutdown_cancel_confirmed = true;
                }
            }
            Err(_) if !self.stopping => self.queue.push_front(Job::CancelAll),
            Err(e) => log::error!("final cancel-all failed: {e}"),
        }
    }

    /// The fill poll; the core hears when it is done (its fills came before), which settles a
    /// balance report that disagreed with the position.
    fn poll(&mut self) {
        let ids: Vec<ClientId> = self.orders.keys().copied().collect();
        if ids.is_empty() || self.refresh(&ids) {
            self.emit(OrderEvent::Polled);
        }
    }

    /// QueryOrders for `ids`: fills as cumulative totals, and the end of orders that closed.
    /// `false` when the call failed.
    fn refresh(&mut self, ids: &[ClientId]) -> bool {
        let txids: Vec<String> = ids
            .iter()
            .filter_map(|id| self.orders.get(id).and_then(|o| o.txid.clone()))
            .collect();
        if txids.is_empty() {
            return true;
        }
        let refs: Vec<&str> = txids.iter().map(String::as_str).collect();
        let Ok(infos) = self.timed("QueryOrders", |c| c.query_orders(&refs)) else {
            return false;
        };
        for id in ids {
            let Some(t) = self.orders.get(id).cloned() else {
                continue;
            };
            let Some(info) = t.txid.as_ref().and_then(|x| infos.get(x)) else {
                continue;
            };
            self.apply_info(*id, &t, info);
        }
        true
    }

    fn apply_info(&mut self, cl_id: ClientId, t: &Tracked, info: &OrderInfo) {
        let qp = self.cfg.precision.qty;
        let cd = self.cfg.precision.cash();
        let dec = |s: &str| Decimal::parse(s.as_bytes()).ok();
        let exec = dec(&info.vol_exec)
            .and_then(|d| d.to_units_floor(qp).ok())
            .map_or(Qty(0), Qty);
        let cost = dec(&info.cost).map_or(Cash(0), |d| Cash::from_decimal_round_down(d, cd));
        let fee = dec(&info.fee).map_or(Cash(0), |d| Cash::from_decimal_round_up(d, cd));
        // The order's totals over its life (an amended one's included): the feed's fill
        // ledger books only what is new, whoever owned the order when it filled.
        if exec.0 > 0 && exec != t.last_exec {
            self.tell(WorkerEvent::Totals {
                origin: origin_of(t.kraken_cl.as_bytes()).unwrap_or(cl_id),
                cl_id,
                totals: (exec, cost, fee),
            });
        }
        if let Some(o) = self.orders.get_mut(&cl_id) {
            o.last_exec = exec;
        }
        if matches!(info.status.as_str(), "closed" | "canceled" | "expired") {
            self.ended = Some((cl_id, exec));
        }
        match info.status.as_str() {
            "closed" => {
                self.orders.remove(&cl_id);
            }
            "canceled" | "expired" => {
                self.orders.remove(&cl_id);
                let post_only = info.reason.as_deref() == Some("Post only order");
                if post_only && exec.0 == 0 {
                    // Accepted, then cancelled because it would have crossed: a rejection.
                    self.emit(OrderEvent::Rejected {
                        cl_id,
                        reason: RejectReason::PostOnly,
                    });
                } else {
                    let reason = match info.reason.as_deref() {
                        Some("User requested") => CancelReason::Requested,
                        _ if t.req.ioc => CancelReason::Expired,
                        _ => CancelReason::Exchange,
                    };
                    self.emit(OrderEvent::Cancelled { cl_id, reason });
                }
            }
            _ => {}
        }
    }

    fn shutdown(&mut self) {
        // Cancels first, then everything else is moot: the last word is a cancel-all (which
        // first looks up orders whose AddOrder answer was lost, so their fills are booked).
        self.count_unsent();
        self.queue.retain(|j| matches!(j, Job::Recover(..)));
        // A lost WebSocket add is looked up once Kraken can no longer take it (its deadline,
        // at most a few seconds): the cancel-all then reaches it, or it never arrived.
        let latest = self
            .queue
            .iter()
            .filter_map(|j| match j {
                Job::Recover(l) => Some(l.not_before),
                _ => None,
            })
            .max();
        if let Some(t) = latest {
            std::thread::sleep(t.saturating_duration_since(Instant::now()));
        }
        let deadline = Instant::now() + self.cfg.timeout * 2;
        while Instant::now() < deadline && !self.report.shutdown_cancel_confirmed {
            std::thread::sleep(self.next_call.saturating_duration_since(Instant::now()));
            self.cancel_all();
            if !self.report.shutdown_cancel_confirmed {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        if !self.cfg.deadman_refresh.is_zero() && self.report.shutdown_cancel_confirmed {
            let _ = self.client.cancel_all_orders_after(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::event::Purpose;
    use crate::core::money::Price;
    use crate::sim::rest::{DEMO_KEY, DEMO_SECRET, MarketView, RestSim};
    use std::sync::Mutex;

    fn worker(sim: &RestSim) -> Worker {
        let cfg = WorkerConfig {
            rest_url: sim.url(),
            pair: "XBTUSD".into(),
            symbol: "BTC/USD".into(),
            precision: Precision { price: 1, qty: 8 },
            min_interval: Duration::ZERO,
            fill_poll: Duration::from_secs(60),
            fill_poll_backstop: Duration::from_secs(60),
            private_stream: false,
            ws_orders: false,
            balance_refresh: Duration::from_secs(300),
            deadman_refresh: Duration::ZERO,
            deadman_timeout_s: 60,
            timeout: Duration::from_secs(2),
            tier: Tier::Starter,
            reports: None,
            journal: None,
            adopt: Vec::new(),
        };
        let creds = Credentials::new(DEMO_KEY, DEMO_SECRET).unwrap();
        let client = RestClient::new(&cfg.rest_url, &cfg.pair, creds, cfg.timeout);
        let assets = PairAssets {
            base: "XBT".into(),
            quote: "USD".into(),
        };
        let poll = Box::leak(Box::new(mio::Poll::new().unwrap()));
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(1)).unwrap());
        let (tx, _rx) = bounded(64);
        Worker::new(cfg, client, assets, tx, waker)
    }

    fn buy(cl_id: ClientId, price: i64) -> OrderRequest {
        OrderRequest {
            cl_id,
            side: Side::Buy,
            price: Price(price),
            qty: Qty(100_000),
            post_only: true,
            ioc: false,
            purpose: Purpose::Entry,
        }
    }

    #[test]
    fn an_amend_restarts_the_orders_age_as_krakens_counter_does() {
        let market = Arc::new(Mutex::new(MarketView {
            bid: 600_000,
            ask: 600_010,
            trades: Vec::new(),
        }));
        let sim = RestSim::start("10000", "0", market).unwrap();
        let mut w = worker(&sim);
        w.place(buy(1, 590_000), Instant::now());
        // It has rested 20 s: an amend now costs 1, and so would the next one if the age
        // still counted from placement.
        w.orders.get_mut(&1).unwrap().placed_at = Instant::now() - Duration::from_secs(20);
        assert_eq!(amend_cost(20 * crate::core::time::SEC), 1.0);
        w.amend(1, buy(2, 590_010), Instant::now());
        let t = w.orders.get(&2).expect("tracked under the new id");
        assert!(
            t.placed_at.elapsed() < Duration::from_secs(2),
            "the age restarts at the amend"
        );
        // The next amend is priced as for a young order (4), not a 20 s old one (1).
        let age = t.placed_at.elapsed().as_nanos() as Nanos;
        assert_eq!(amend_cost(age), 4.0);
        assert_eq!(w.report.amends, 1);
    }

    #[test]
    fn balances_are_read_under_the_pairs_own_asset_codes() {
        let mut b = BTreeMap::new();
        for (k, v) in [
            ("XXBT", "0.50000000"),
            ("XBT.F", "9.0"),
            ("ZUSD", "3000.0000"),
            ("XETH", "2.0"),
        ] {
            b.insert(k.to_string(), v.to_string());
        }
        let p = Precision { price: 1, qty: 8 };
        let btc = PairAssets {
            base: "XBT".into(),
            quote: "USD".into(),
        };
        assert_eq!(
            balances_event(&b, &btc, p),
            OrderEvent::Balances {
                quote: Cash(3_000_000_000_000),
                base: Qty(50_000_000),
            },
            "XBT.F (earn) is not the spot balance"
        );
        let eth = PairAssets {
            base: "ETH".into(),
            quote: "USD".into(),
        };
        assert_eq!(
            balances_event(&b, &eth, p),
            OrderEvent::Balances {
                quote: Cash(3_000_000_000_000),
                base: Qty(200_000_000),
            }
        );
        // The WS symbol and the REST pair must name the same assets.
        let pair = AssetPair {
            altname: "XBTUSD".into(),
            wsname: "XBT/USD".into(),
            base: "XXBT".into(),
            quote: "ZUSD".into(),
        };
        assert_eq!(PairAssets::checked("XBTUSD", &pair, "BTC/USD"), Ok(btc));
        assert!(matches!(
            PairAssets::checked("XBTUSD", &pair, "ETH/USD"),
            Err(StartError::PairMismatch { .. })
        ));
    }
}
