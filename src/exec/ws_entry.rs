//! Order entry over Kraken's authenticated WebSocket v2 (`order_transport = "ws"`), on the
//! feed thread: the core's intents become `add_order` / `amend_order` / `cancel_order` /
//! `cancel_all` requests on the private connection, each with a unique `req_id`, our
//! `cl_ord_id` and a `deadline`; Kraken's replies become the same [`OrderEvent`]s the REST
//! worker reports.
//!
//! No I/O here: [`WsEntry`] takes intents, replies and times, and queues [`Effect`]s that the
//! feed carries out in order (send a request, tell the core, hand an intent to REST, tell the
//! worker, rebind a fill ledger entry). The rules are the REST worker's:
//!
//! - **One path per order.** While the stream is up, every new order goes out here; an order
//!   placed over REST (during an outage) stays with the worker until it ends. The worker is
//!   told of every order placed here ([`Command::Track`], [`Command::Rebind`]), so its polls,
//!   its reconcile and its final cancel-all cover them.
//! - **Never sent twice.** When the connection drops, a request without an answer is handed
//!   to the worker: a lost `add_order` is looked up by its `cl_ord_id` once its `deadline`
//!   has passed (Kraken's engine will not take it after that) and is never resent; lost
//!   cancels and amends are repeated over REST (both are idempotent).
//! - **The rate counter.** Adds and amends wait while the local model of Kraken's trading
//!   counter has no room; cancels never wait.
//! - **Requotes** are one `amend_order` of an unfilled resting order when the counter allows;
//!   otherwise, or when Kraken refuses the amend, a cancel, and the core decides again once
//!   the old order's end is known (never both orders live at once).

use std::collections::VecDeque;
use std::fmt::Write as _;

use crate::core::event::{CancelReason, ClientId, Intent, OrderEvent, OrderRequest, Side};
use crate::core::money::Precision;
use crate::core::ratecounter::{ADD_COST, Tier, TradingCounter, amend_cost, cancel_cost};
use crate::core::time::{MS, Nanos, SEC, write_rfc3339};
use crate::exec::clordid::CL_PREFIX;
use crate::exec::worker::{Command, reject_reason};
use crate::kraken::errors::KrakenError;

/// How far ahead an order's `deadline` is set (Kraken: 0.5 s to 60 s, default 5 s).
pub const DEADLINE_NS: Nanos = 5 * SEC;
/// An order request unanswered this long means the connection is broken, whatever the
/// socket says: it is dropped and the request handed to REST.
pub const REPLY_TIMEOUT_NS: Nanos = 10 * SEC;
/// Orders this path tracks at once; beyond it, new orders go over REST.
const SLOTS: usize = 32;
/// Adds held for the rate counter; beyond it, new orders go over REST.
const HELD: usize = 16;
/// A refused cancel is tried again after this long.
const CANCEL_RETRY_NS: Nanos = 250 * MS;
/// Rate-counter room kept for cancels (as the worker keeps).
const RESERVE: f64 = 10.0;

/// Which path orders take (config `order_transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderTransport {
    /// The REST worker (AddOrder, AmendOrder, CancelOrder).
    #[default]
    Rest,
    /// The authenticated WebSocket from the feed thread; REST while it is down.
    Ws,
}

impl OrderTransport {
    /// `rest` or `ws`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            OrderTransport::Rest => "rest",
            OrderTransport::Ws => "ws",
        }
    }
}

/// A request for the private connection (the feed writes it, token included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// `add_order`.
    Add {
        /// Our request id.
        req_id: u64,
        /// The order.
        order: OrderRequest,
        /// Kraken's engine takes it only before this (ns since the Unix epoch).
        deadline: Nanos,
    },
    /// `amend_order` of the order placed as `origin` to `order`'s price and quantity.
    Amend {
        /// Our request id.
        req_id: u64,
        /// The client id in the order's `cl_ord_id`.
        origin: ClientId,
        /// The new price and total quantity.
        order: OrderRequest,
        /// As for an add.
        deadline: Nanos,
    },
    /// `cancel_order` of the order placed as `origin`.
    Cancel {
        /// Our request id.
        req_id: u64,
        /// The client id in the order's `cl_ord_id`.
        origin: ClientId,
    },
    /// `cancel_all`.
    CancelAll {
        /// Our request id.
        req_id: u64,
    },
    /// `cancel_all_orders_after` (the dead man's switch).
    Deadman {
        /// Our request id.
        req_id: u64,
        /// Seconds.
        timeout_s: u64,
    },
}

/// What the feed must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send this request on the private connection.
    Send(Request),
    /// Hand this event to the core.
    Core(OrderEvent),
    /// The REST worker carries this intent out instead.
    Rest(Intent),
    /// Tell the worker.
    Worker(Command),
    /// The fill ledger: the Kraken order placed as `origin` now belongs to `cl_id`.
    Bind {
        /// The client id in the order's `cl_ord_id`.
        origin: ClientId,
        /// Its owner now.
        cl_id: ClientId,
    },
}

/// Where an intent went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Taken here.
    Ws,
    /// Not for this path: the REST worker's.
    Rest,
    /// Here, and the worker too (a cancel-all: its queue and its lookups).
    Both,
}

/// Kraken's reply to one of our order requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply<'a> {
    /// Our `req_id`, echoed.
    pub req_id: u64,
    /// Whether Kraken did it.
    pub success: bool,
    /// Kraken's error text.
    pub error: Option<&'a str>,
    /// `result.order_id`.
    pub order_id: Option<&'a str>,
}

/// What this path counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EntryStats {
    /// Order requests sent (add, amend, cancel, cancel-all, dead man's switch).
    pub requests: u64,
    /// Adds and amends Kraken answered (accepted or refused): orders that reached it.
    pub orders_sent: u64,
    /// Requotes done as one amend.
    pub amends: u64,
    /// Amends Kraken refused (then cancel + add).
    pub amend_fallbacks: u64,
    /// Adds held back for the rate counter.
    pub rate_holds: u64,
    /// Held orders cancelled before they were sent.
    pub collapsed: u64,
    /// Requests handed to REST when the connection was lost.
    pub handed_to_rest: u64,
    /// Dead man's switch refreshes Kraken confirmed.
    pub deadman_refreshes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Idle,
    Amend {
        req_id: u64,
        new: OrderRequest,
        since: Nanos,
    },
    Cancel {
        req_id: u64,
    },
    /// A cancel Kraken refused (not "unknown order"): sent again at `at`.
    CancelAgain {
        at: Nanos,
    },
}

/// An add without its answer yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Adding {
    req_id: u64,
    since: Nanos,
    sent: Nanos,
    deadline: Nanos,
}

/// One order of this path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    /// The order as its current owner placed it.
    order: OrderRequest,
    /// The client id in its `cl_ord_id` (its first owner: an amend keeps the id).
    origin: ClientId,
    adding: Option<Adding>,
    op: Op,
    /// Placed or last amended: Kraken prices cancels and amends by this age.
    aged_from: Nanos,
}

impl Slot {
    fn waits_for(&self, req_id: u64) -> bool {
        self.adding.is_some_and(|a| a.req_id == req_id)
            || matches!(self.op, Op::Amend { req_id: r, .. } | Op::Cancel { req_id: r } if r == req_id)
    }

    /// The oldest request of this order still without an answer.
    fn oldest_request(&self) -> Option<Nanos> {
        let op = match self.op {
            Op::Amend { since, .. } => Some(since),
            _ => None,
        };
        match (self.adding.map(|a| a.sent), op) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Order entry on the private WebSocket.
#[derive(Debug)]
pub struct WsEntry {
    up: bool,
    next_req_id: u64,
    slots: Vec<Slot>,
    held: VecDeque<(OrderRequest, Nanos)>,
    cancel_all: Option<(u64, Nanos)>,
    deadman: Option<(u64, Nanos)>,
    /// Dead man's switch: refresh interval (0: off) and timeout.
    deadman_every: Nanos,
    deadman_timeout_s: u64,
    next_deadman: Nanos,
    counter: TradingCounter,
    effects: VecDeque<Effect>,
    /// Intent → Kraken's answer, adds and amends.
    pub intent_to_ack: hdrhistogram::Histogram<u64>,
    /// The last sample of `intent_to_ack`, not yet taken.
    last_ack: Option<Nanos>,
    /// What it counted.
    pub stats: EntryStats,
}

impl WsEntry {
    /// A path that is down until the stream is; `deadman`: refresh interval (zero: off) and
    /// timeout in seconds.
    #[must_use]
    pub fn new(tier: Tier, deadman: (Nanos, u64)) -> WsEntry {
        WsEntry {
            up: false,
            // Apart from the subscription and ping ids of the same connection.
            next_req_id: 1_000,
            slots: Vec::with_capacity(SLOTS),
            held: VecDeque::with_capacity(HELD),
            cancel_all: None,
            deadman: None,
            deadman_every: deadman.0,
            deadman_timeout_s: deadman.1,
            next_deadman: 0,
            counter: TradingCounter::new(tier, RESERVE),
            effects: VecDeque::with_capacity(64),
            intent_to_ack: crate::side::status::histogram(),
            last_ack: None,
            stats: EntryStats::default(),
        }
    }

    /// Whether orders go out here now.
    #[must_use]
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// The stream is healthy (subscribed, snapshot read): orders may go out here; the dead
    /// man's switch is re-armed at once.
    pub fn set_up(&mut self, now: Nanos) {
        self.up = true;
        self.next_deadman = now;
    }

    /// The tier Kraken announced.
    pub fn set_tier(&mut self, now: Nanos, tier: Tier) {
        self.counter.set_tier(now, tier, RESERVE);
    }

    /// Kraken's own value of the rate counter.
    pub fn observe_rate(&mut self, now: Nanos, value: f64) {
        self.counter.observe(now, value);
    }

    /// Requests sent and not answered yet.
    #[must_use]
    pub fn unanswered(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.oldest_request().is_some() || matches!(s.op, Op::Cancel { .. }))
            .count()
            + usize::from(self.cancel_all.is_some())
    }

    /// The next effect to carry out.
    pub fn next_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    fn id(&mut self) -> u64 {
        self.next_req_id += 1;
        self.next_req_id
    }

    fn send(&mut self, r: Request) {
        self.stats.requests += 1;
        self.effects.push_back(Effect::Send(r));
    }

    fn slot(&self, cl_id: ClientId) -> Option<usize> {
        self.slots.iter().position(|s| {
            s.order.cl_id == cl_id || matches!(s.op, Op::Amend { new, .. } if new.cl_id == cl_id)
        })
    }

    /// Takes one of the core's order intents. `filled`: whether the core has booked a fill
    /// of an order (a partly filled order is not amended).
    pub fn route(&mut self, now: Nanos, i: Intent, filled: &impl Fn(ClientId) -> bool) -> Route {
        if !self.up {
            return Route::Rest;
        }
        match i {
            Intent::Place(o) => {
                if self.place(now, o) {
                    Route::Ws
                } else {
                    Route::Rest
                }
            }
            Intent::Cancel { cl_id } => self.cancel(now, cl_id),
            Intent::Replace { old, new } => self.replace(now, old, new, filled),
            Intent::CancelAll => {
                self.cancel_everything(now);
                Route::Both
            }
            _ => Route::Rest,
        }
    }

    /// `false`: no room here (the caller sends it over REST).
    fn place(&mut self, now: Nanos, o: OrderRequest) -> bool {
        if self.slots.len() >= SLOTS {
            return false;
        }
        if !self.held.is_empty() || self.counter.wait_ns(now, ADD_COST) > 0 {
            if self.held.len() >= HELD {
                return false;
            }
            self.stats.rate_holds += 1;
            self.held.push_back((o, now));
            return true;
        }
        self.send_add(now, o, now);
        true
    }

    fn send_add(&mut self, now: Nanos, o: OrderRequest, since: Nanos) {
        let req_id = self.id();
        let deadline = now + DEADLINE_NS;
        // Kraken counts a request even when it refuses it.
        self.counter.spend(now, ADD_COST);
        self.slots.push(Slot {
            order: o,
            origin: o.cl_id,
            adding: Some(Adding {
                req_id,
                since,
                sent: now,
                deadline,
            }),
            op: Op::Idle,
            aged_from: now,
        });
        self.send(Request::Add {
            req_id,
            order: o,
            deadline,
        });
    }

    /// Drops a held (never sent) order: it is simply cancelled.
    fn drop_held(&mut self, cl_id: ClientId) -> bool {
        let Some(pos) = self.held.iter().position(|(o, _)| o.cl_id == cl_id) else {
            return false;
        };
        self.held.remove(pos);
        self.stats.collapsed += 1;
        self.effects.push_back(Effect::Core(OrderEvent::Cancelled {
            cl_id,
            reason: CancelReason::Requested,
        }));
        true
    }

    fn cancel(&mut self, now: Nanos, cl_id: ClientId) -> Route {
        if self.drop_held(cl_id) {
            return Route::Ws;
        }
        let Some(i) = self.slot(cl_id) else {
            return Route::Rest;
        };
        match self.slots[i].op {
            Op::Cancel { .. } | Op::CancelAgain { .. } => return Route::Ws,
            // Cancelling the target of an amend in flight: the order now belongs to the new
            // id whichever way the amend goes (the cancel by `cl_ord_id` ends either version).
            Op::Amend { new, .. } => self.rebind(i, new),
            Op::Idle => {}
        }
        self.send_cancel(now, i);
        Route::Ws
    }

    fn send_cancel(&mut self, now: Nanos, i: usize) {
        let req_id = self.id();
        let s = &mut self.slots[i];
        s.op = Op::Cancel { req_id };
        let origin = s.origin;
        let cost = cancel_cost(now - s.aged_from);
        self.counter.spend(now, cost);
        self.send(Request::Cancel { req_id, origin });
    }

    /// Slot `i` now belongs to `new` (an amend took effect, or is taken as having).
    fn rebind(&mut self, i: usize, new: OrderRequest) {
        let s = &mut self.slots[i];
        let old = s.order.cl_id;
        s.order = new;
        s.op = Op::Idle;
        let origin = s.origin;
        // The ledger first: a fill from now on is the new owner's.
        self.effects.push_back(Effect::Bind {
            origin,
            cl_id: new.cl_id,
        });
        self.effects
            .push_back(Effect::Worker(Command::Rebind { old, req: new }));
        self.effects.push_back(Effect::Core(OrderEvent::Cancelled {
            cl_id: old,
            reason: CancelReason::Requested,
        }));
        self.effects
            .push_back(Effect::Core(OrderEvent::Accepted { cl_id: new.cl_id }));
    }

    fn replace(
        &mut self,
        now: Nanos,
        old: ClientId,
        new: OrderRequest,
        filled: &impl Fn(ClientId) -> bool,
    ) -> Route {
        if self.drop_held(old) {
            return self.place_or_rest(now, new);
        }
        let Some(i) = self.slot(old) else {
            return Route::Rest;
        };
        let s = self.slots[i];
        let cost = amend_cost(now - s.aged_from);
        let amendable = s.order.cl_id == old
            && s.adding.is_none()
            && s.op == Op::Idle
            && !s.order.ioc
            && !new.ioc
            && s.order.side == new.side
            && !filled(old);
        if amendable && self.counter.allows(now, cost) {
            let req_id = self.id();
            self.counter.spend(now, cost);
            self.slots[i].op = Op::Amend {
                req_id,
                new,
                since: now,
            };
            self.send(Request::Amend {
                req_id,
                origin: s.origin,
                order: new,
                deadline: now + DEADLINE_NS,
            });
            return Route::Ws;
        }
        self.cancel_then_decide(now, old, new);
        Route::Ws
    }

    /// A requote without an amend: the cancel goes, the new order does not. Sent together,
    /// an exit that fills just before its cancel plus its replacement would sell base the
    /// bot does not own (the user's holding, live). The core is told `new` never went, and
    /// decides again once the old order's end (and any last fill) has come on the stream.
    fn cancel_then_decide(&mut self, now: Nanos, old: ClientId, new: OrderRequest) {
        self.cancel(now, old);
        self.stats.collapsed += 1;
        self.effects.push_back(Effect::Core(OrderEvent::Cancelled {
            cl_id: new.cl_id,
            reason: CancelReason::Requested,
        }));
    }

    fn place_or_rest(&mut self, now: Nanos, o: OrderRequest) -> Route {
        if !self.place(now, o) {
            self.effects.push_back(Effect::Rest(Intent::Place(o)));
        }
        Route::Ws
    }

    fn cancel_everything(&mut self, now: Nanos) {
        while let Some((o, _)) = self.held.pop_front() {
            self.stats.collapsed += 1;
            self.effects.push_back(Effect::Core(OrderEvent::Cancelled {
                cl_id: o.cl_id,
                reason: CancelReason::Requested,
            }));
        }
        let req_id = self.id();
        self.cancel_all = Some((req_id, now));
        self.send(Request::CancelAll { req_id });
    }

    /// Kraken's reply to an order request.
    pub fn on_reply(&mut self, now: Nanos, r: &Reply<'_>) {
        if self.cancel_all.is_some_and(|(id, _)| id == r.req_id) {
            self.cancel_all = None;
            if !r.success {
                log::warn!("cancel_all refused: {}", r.error.unwrap_or("?"));
            }
            return;
        }
        if self.deadman.is_some_and(|(id, _)| id == r.req_id) {
            self.deadman = None;
            if r.success {
                self.stats.deadman_refreshes += 1;
            } else {
                log::warn!(
                    "cancel_all_orders_after refused: {}",
                    r.error.unwrap_or("?")
                );
            }
            return;
        }
        let Some(i) = self.slots.iter().position(|s| s.waits_for(r.req_id)) else {
            // An answer to a request already handed over or settled.
            return;
        };
        let s = self.slots[i];
        if s.adding.is_some_and(|a| a.req_id == r.req_id) {
            self.add_answered(now, i, r);
            return;
        }
        match s.op {
            Op::Amend { new, since, .. } => self.amend_answered(now, i, new, since, r),
            Op::Cancel { .. } => self.cancel_answered(now, i, r),
            _ => {}
        }
    }

    fn error_of(r: &Reply<'_>) -> KrakenError {
        KrakenError::from_kraken(r.error.unwrap_or("EGeneral:Internal error"))
    }

    fn add_answered(&mut self, now: Nanos, i: usize, r: &Reply<'_>) {
        self.stats.orders_sent += 1;
        let Some(a) = self.slots[i].adding.take() else {
            return;
        };
        let order = self.slots[i].order;
        if !r.success {
            let e = Self::error_of(r);
            log::info!("add_order {} refused: {e}", order.cl_id);
            self.slots.remove(i);
            self.effects.push_back(Effect::Core(OrderEvent::Rejected {
                cl_id: order.cl_id,
                reason: reject_reason(&e),
            }));
            return;
        }
        self.acked(now - a.since);
        self.slots[i].aged_from = now;
        self.effects.push_back(Effect::Worker(Command::Track {
            req: order,
            txid: r.order_id.unwrap_or("").to_string(),
        }));
        self.effects
            .push_back(Effect::Core(OrderEvent::Accepted { cl_id: order.cl_id }));
    }

    fn acked(&mut self, ns: Nanos) {
        let _ = self.intent_to_ack.record(ns.max(1) as u64);
        self.last_ack = Some(ns);
    }

    /// The intent → answer time of the last add or amend answered, once (the feed thread
    /// hands it to the dashboard's histograms).
    pub fn take_last_ack(&mut self) -> Option<Nanos> {
        self.last_ack.take()
    }

    fn amend_answered(
        &mut self,
        now: Nanos,
        i: usize,
        new: OrderRequest,
        since: Nanos,
        r: &Reply<'_>,
    ) {
        self.stats.orders_sent += 1;
        if r.success {
            self.stats.amends += 1;
            self.acked(now - since);
            // Kraken counts the order's age from its last amend.
            self.slots[i].aged_from = now;
            self.rebind(i, new);
            return;
        }
        log::info!(
            "amend_order of {} refused ({}): cancel and a new order instead",
            self.slots[i].order.cl_id,
            Self::error_of(r)
        );
        self.stats.amend_fallbacks += 1;
        self.slots[i].op = Op::Idle;
        let old = self.slots[i].order.cl_id;
        self.cancel_then_decide(now, old, new);
    }

    fn cancel_answered(&mut self, now: Nanos, i: usize, r: &Reply<'_>) {
        let e = (!r.success).then(|| Self::error_of(r));
        let adding = self.slots[i].adding.is_some();
        match e {
            // Cancelled before its add's answer: that answer still settles the slot.
            None if adding => self.slots[i].op = Op::Idle,
            // Gone: its end (and any last fill) comes on the executions channel.
            None => {
                self.slots.remove(i);
            }
            Some(KrakenError::UnknownOrder) if !adding => {
                self.slots.remove(i);
            }
            // Refused, or unknown because it overtook its add: again shortly.
            Some(e) => {
                log::warn!(
                    "cancel_order of {} refused ({e}): trying again",
                    self.slots[i].order.cl_id
                );
                self.slots[i].op = Op::CancelAgain {
                    at: now + CANCEL_RETRY_NS,
                };
            }
        }
    }

    /// Periodic work: held adds the counter now allows, refused cancels again, the dead man's
    /// switch. Returns `true` when a request has gone unanswered for too long (the caller
    /// drops the connection; [`WsEntry::lost`] hands everything to REST).
    pub fn on_timer(&mut self, now: Nanos) -> bool {
        if !self.up {
            return false;
        }
        while self.slots.len() < SLOTS
            && let Some(&(o, since)) = self.held.front()
            && self.counter.wait_ns(now, ADD_COST) == 0
        {
            self.held.pop_front();
            self.send_add(now, o, since);
        }
        for i in 0..self.slots.len() {
            if matches!(self.slots[i].op, Op::CancelAgain { at } if now >= at) {
                self.send_cancel(now, i);
            }
        }
        if self.deadman_every > 0 && now >= self.next_deadman && self.deadman.is_none() {
            self.next_deadman = now + self.deadman_every;
            let req_id = self.id();
            self.deadman = Some((req_id, now));
            self.send(Request::Deadman {
                req_id,
                timeout_s: self.deadman_timeout_s,
            });
        }
        let overdue = |t: Nanos| now - t > REPLY_TIMEOUT_NS;
        self.slots
            .iter()
            .filter_map(Slot::oldest_request)
            .any(overdue)
            || self.cancel_all.is_some_and(|(_, t)| overdue(t))
            || self.deadman.is_some_and(|(_, t)| overdue(t))
    }

    /// The next time [`WsEntry::on_timer`] has something to do.
    pub fn next_due(&mut self, now: Nanos) -> Nanos {
        if !self.up {
            return Nanos::MAX;
        }
        let mut due = if self.deadman_every > 0 {
            self.next_deadman
        } else {
            Nanos::MAX
        };
        if !self.held.is_empty() {
            due = due.min(now + self.counter.wait_ns(now, ADD_COST));
        }
        for s in &self.slots {
            if let Op::CancelAgain { at } = s.op {
                due = due.min(at);
            }
        }
        due
    }

    /// Forgets orders that ended (the core no longer has them) and have nothing in flight.
    pub fn prune(&mut self, live: &impl Fn(ClientId) -> bool) {
        self.slots
            .retain(|s| s.adding.is_some() || s.op != Op::Idle || live(s.order.cl_id));
    }

    /// The connection is gone: every request without an answer, and every held order, is
    /// handed to the REST worker, none sent twice.
    pub fn lost(&mut self, now: Nanos) {
        self.up = false;
        self.cancel_all = None;
        self.deadman = None;
        for s in std::mem::take(&mut self.slots) {
            let id = s.order.cl_id;
            if let Some(a) = s.adding {
                // It may or may not have reached Kraken: looked up once the deadline passed.
                self.stats.handed_to_rest += 1;
                self.effects.push_back(Effect::Worker(Command::Lost {
                    req: s.order,
                    wait_ns: (a.deadline - now).max(0),
                }));
            }
            match s.op {
                Op::Idle => {}
                Op::Cancel { .. } | Op::CancelAgain { .. } => {
                    self.stats.handed_to_rest += 1;
                    self.effects
                        .push_back(Effect::Rest(Intent::Cancel { cl_id: id }));
                }
                Op::Amend { new, .. } => {
                    // An amend to the same price and size is harmless if this one took.
                    self.stats.handed_to_rest += 1;
                    self.effects
                        .push_back(Effect::Rest(Intent::Replace { old: id, new }));
                }
            }
        }
        while let Some((o, _)) = self.held.pop_front() {
            self.effects.push_back(Effect::Rest(Intent::Place(o)));
        }
    }
}

/// Writes `r` as the JSON frame Kraken expects (prices and sizes as exact decimals at the
/// instrument's precision; the token in `params`, never logged).
pub fn write_request(r: &Request, p: Precision, symbol: &str, token: &str, out: &mut String) {
    out.clear();
    let _ = match *r {
        Request::Add {
            req_id,
            order: o,
            deadline,
        } => {
            let side = match o.side {
                Side::Buy => "buy",
                Side::Sell => "sell",
            };
            let _ = write!(
                out,
                r#"{{"method":"add_order","params":{{"order_type":"limit","side":"{side}","limit_price":{},"order_qty":{},"symbol":"{symbol}","cl_ord_id":"{CL_PREFIX}{:x}","deadline":""#,
                o.price.show(p.price),
                o.qty.show(p.qty),
                o.cl_id,
            );
            write_rfc3339(out, deadline);
            out.push('"');
            if o.post_only {
                out.push_str(r#","post_only":true"#);
            }
            if o.ioc {
                out.push_str(r#","time_in_force":"ioc""#);
            }
            write!(out, r#","token":"{token}"}},"req_id":{req_id}}}"#)
        }
        Request::Amend {
            req_id,
            origin,
            order: o,
            deadline,
        } => {
            let _ = write!(
                out,
                r#"{{"method":"amend_order","params":{{"cl_ord_id":"{CL_PREFIX}{origin:x}","limit_price":{},"order_qty":{},"post_only":{},"deadline":""#,
                o.price.show(p.price),
                o.qty.show(p.qty),
                o.post_only,
            );
            write_rfc3339(out, deadline);
            write!(out, r#"","token":"{token}"}},"req_id":{req_id}}}"#)
        }
        Request::Cancel { req_id, origin } => write!(
            out,
            r#"{{"method":"cancel_order","params":{{"cl_ord_id":["{CL_PREFIX}{origin:x}"],"token":"{token}"}},"req_id":{req_id}}}"#
        ),
        Request::CancelAll { req_id } => write!(
            out,
            r#"{{"method":"cancel_all","params":{{"token":"{token}"}},"req_id":{req_id}}}"#
        ),
        Request::Deadman { req_id, timeout_s } => write!(
            out,
            r#"{{"method":"cancel_all_orders_after","params":{{"timeout":{timeout_s},"token":"{token}"}},"req_id":{req_id}}}"#
        ),
    };
}

#[cfg(test)]
mod tests;
