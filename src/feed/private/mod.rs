//! The authenticated WebSocket v2 on the feed thread: the bot's own orders and fills in real
//! time, in the same mio poll as the market, under its own token ([`PRIVATE`]).
//!
//! - **Token.** Each connection uses a fresh token from the REST worker
//!   (`GetWebSocketsToken`); the first one comes with the worker's start. A refused token is
//!   named and the connection started over with a new one; three refusals in a row, or a key
//!   that lost the WebSocket permission, turn the stream off (REST polling carries on).
//! - **Subscriptions.** `executions` (open orders and the last 50 fills in the snapshot, every
//!   status, the rate counter) and `balances`.
//! - **The same discipline as the market link** ([`Supervisor`]): watchdog, pings, a
//!   subscription that must be answered by a snapshot, reconnects with backoff and jitter.
//! - **Fills** go through the feed's [`FillLedger`] into the same `Event::Order` events the
//!   core books from REST; order acks, cancels and expiries as they happen.
//! - **Reconcile.** Every snapshot is authoritative: the core holds new orders, the worker
//!   queries every order it tracks (what ended while the stream was away, with its fills),
//!   and only then does quoting resume. While the stream is healthy REST polls are the
//!   backstop (`fill_poll_backstop_s`); while it is down they are the fill path again.

pub mod ledger;
mod orders;
pub mod parse;

use mio::Token;

use crate::core::event::{Event, OrderEvent};
use crate::core::money::{Cash, Fixed, Qty};
use crate::core::ratecounter::Tier;
use crate::core::time::{MS, Nanos};
use crate::exec::worker::Command;
use crate::exec::ws_entry::WsEntry;
use crate::feed::supervisor::{Link, Supervisor};
use crate::feed::ws::{Connection, Endpoint};
use crate::side::notify::{AlertText, Notice};
use crate::side::status::LinkTrouble;
use ledger::Booked;
use parse::{Ack, Frame};

/// The private connection's poll token.
pub const PRIVATE: Token = Token(2);
/// Token refusals in a row after which the stream is given up (polling carries on).
const MAX_REFUSALS: u32 = 3;

/// The private link's state, for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivateState {
    /// Not configured (paper, or `ws_auth_url = ""`).
    Off,
    /// Connecting, subscribing, or reconnecting after a loss.
    Down,
    /// Subscribed, snapshot read: fills arrive in real time.
    Up,
    /// Given up (the token or the permission was refused): REST polling only.
    Refused,
}

impl PrivateState {
    /// `off`, `down`, `up`, `refused`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            PrivateState::Off => "off",
            PrivateState::Down => "down",
            PrivateState::Up => "up",
            PrivateState::Refused => "refused",
        }
    }
}

/// What the private link counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrivateCounters {
    /// Connections opened.
    pub connects: u64,
    /// Connections lost.
    pub reconnects: u64,
    /// Executions snapshots read (one per connection).
    pub snapshots: u64,
    /// Tokens Kraken refused.
    pub token_refusals: u64,
    /// Frames that were not valid JSON of the expected shape (counted, skipped).
    pub malformed: u64,
    /// Gaps in the executions sequence (each asks REST to reconcile).
    pub sequence_gaps: u64,
}

/// The private connection and its state.
#[derive(Debug)]
pub struct PrivateLink {
    endpoint: Endpoint,
    tls: Option<native_tls::TlsConnector>,
    conn: Option<Connection>,
    sup: Supervisor,
    /// The token for the next (or current) connection.
    token: Option<String>,
    token_pending: bool,
    healthy: bool,
    refused_in_row: u32,
    gave_up: bool,
    exec_seq: Option<u64>,
    /// The connection was lost while its frames were being read (it is out of `conn` then).
    lost_while_reading: bool,
    /// Its frames are being read (it is out of `conn`): what is sent meanwhile waits here.
    reading: bool,
    outbox: Outbox,
    /// Base and quote spot balances as last streamed.
    balances: (Option<Qty>, Option<Cash>),
    /// The pair's asset codes (v2 and legacy names of each).
    base_names: [String; 2],
    quote_names: [String; 2],
    /// Order entry on this connection (`order_transport = "ws"`).
    pub entry: Option<WsEntry>,
    /// Counters.
    pub counters: PrivateCounters,
    /// Why the stream is (or was last) down, for the dashboard.
    pub trouble: LinkTrouble,
}

/// How the private link is set up.
#[derive(Debug)]
pub struct PrivateSetup {
    /// `ws_auth_url`, parsed.
    pub endpoint: Endpoint,
    /// TLS for `wss://`.
    pub tls: Option<native_tls::TlsConnector>,
    /// The first connection's token.
    pub token: Option<String>,
    /// The market symbol (`BTC/USD`): which balances are the pair's.
    pub symbol: String,
    /// Order entry on this connection (`order_transport = "ws"`).
    pub entry: Option<WsEntry>,
}

/// Both spellings Kraken uses for an asset (v2 `BTC`, REST `XBT`).
fn names(code: &str) -> [String; 2] {
    let alt = match code {
        "BTC" => "XBT",
        "XBT" => "BTC",
        "XDG" => "DOGE",
        "DOGE" => "XDG",
        c => c,
    };
    [code.to_string(), alt.to_string()]
}

impl PrivateLink {
    /// A link that connects at `now`.
    #[must_use]
    pub fn new(setup: PrivateSetup, now: Nanos, timeout_ms: u64, ping_ms: u64) -> PrivateLink {
        let (b, q) = setup.symbol.split_once('/').unwrap_or((&setup.symbol, ""));
        PrivateLink {
            endpoint: setup.endpoint,
            tls: setup.tls,
            conn: None,
            sup: Supervisor::new(now, timeout_ms, ping_ms, now as u64 ^ 0x5eed),
            token_pending: false,
            token: setup.token,
            healthy: false,
            refused_in_row: 0,
            gave_up: false,
            exec_seq: None,
            lost_while_reading: false,
            reading: false,
            outbox: Outbox::default(),
            balances: (None, None),
            base_names: names(b),
            quote_names: names(q),
            entry: setup.entry,
            counters: PrivateCounters::default(),
            trouble: LinkTrouble::default(),
        }
    }

    fn link(&self) -> Link {
        match &self.conn {
            None => Link::Down,
            Some(c) if c.is_open() => Link::Open,
            Some(_) => Link::Handshaking,
        }
    }

    /// The state now.
    #[must_use]
    pub fn state(&self) -> PrivateState {
        if self.gave_up {
            PrivateState::Refused
        } else if self.healthy {
            PrivateState::Up
        } else {
            PrivateState::Down
        }
    }

    /// The connection, taken (shutdown closes it).
    pub fn take_conn(&mut self) -> Option<Connection> {
        self.conn.take()
    }

    /// The next time the link (or its order entry) has something to do.
    pub fn next_deadline(&mut self, now: Nanos) -> Nanos {
        let entry = self.entry.as_mut().map_or(Nanos::MAX, |e| e.next_due(now));
        if self.gave_up || self.token_pending {
            return entry;
        }
        self.sup.next_deadline(self.link()).min(entry)
    }
}

/// Frames written while the connection is being read (a fill's requote, an order placed
/// after a cancel's answer): sent in order once the read is done. Its buffers are reused,
/// so it allocates nothing once warm.
#[derive(Debug, Default)]
struct Outbox {
    text: String,
    ends: Vec<usize>,
}

impl Outbox {
    fn push(&mut self, frame: &str) {
        self.text.push_str(frame);
        self.ends.push(self.text.len());
    }

    fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    /// Each frame, oldest first.
    fn frames(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(a, b)| &self.text[a..b])
    }
}

/// What the core has booked of order `id` (the fill ledger's view of the core).
pub(super) fn booked(core: &crate::core::Core, id: u64) -> Option<Booked> {
    core.orders()
        .find_any(id)
        .map(|o| (o.filled, o.cum_cost, o.cum_fee))
}

impl super::Feed<'_> {
    /// Hands one order event to the core now (and its intents onward).
    pub(super) fn deliver(&mut self, ev: OrderEvent) {
        let now = self.clock.now();
        self.core.handle(now, Event::Order(ev), &mut self.out);
        self.reconcile_balances(&ev);
        self.take_intents(now, false);
    }

    fn tell_worker(&mut self, c: Command) {
        if let Some(w) = &self.worker
            && w.command(c).is_err()
        {
            self.s.execution_faults += 1;
        }
    }

    /// The private link's timers: connect (with a token), watchdog, pings, retries.
    pub(super) fn private_timers(&mut self, now: Nanos) {
        let Some(p) = &mut self.private else { return };
        if p.gave_up || p.token_pending {
            return;
        }
        let due = p.sup.due(now, p.link());
        if due.connect {
            if p.token.is_some() {
                self.private_connect(now);
            } else {
                p.token_pending = true;
                self.tell_worker(Command::Token);
            }
            return;
        }
        if let Some(dead) = due.dead {
            self.private_lost(dead.reason());
            return;
        }
        if let Some(id) = due.ping {
            self.private_send(&format!(r#"{{"method":"ping","req_id":{id}}}"#));
        }
        if due.retry_subscribe.is_some() {
            self.private_subscribe();
        }
    }

    /// The worker's answer to a token request.
    pub(super) fn on_token(&mut self, t: Result<String, crate::kraken::errors::KrakenError>) {
        let Some(p) = &mut self.private else { return };
        p.token_pending = false;
        match t {
            Ok(token) => {
                p.token = Some(token);
                let now = self.clock.now();
                self.private_connect(now);
            }
            Err(e @ crate::kraken::errors::KrakenError::Auth(_)) => {
                self.private_give_up(&format!("GetWebSocketsToken refused: {e}"));
            }
            Err(e) => {
                let now = self.clock.now();
                let delay = p.sup.schedule_reconnect(now);
                p.trouble.failed(&format!("no token: {e}"), now);
                log::warn!(
                    "private stream: no token ({e}); retrying in {} ms",
                    delay / MS
                );
            }
        }
    }

    fn private_give_up(&mut self, why: &str) {
        self.entry_lost();
        let Some(p) = &mut self.private else { return };
        p.gave_up = true;
        p.trouble.failed(why, self.clock.now());
        match p.conn.take() {
            Some(c) => c.close(self.poll.registry()),
            None => p.lost_while_reading = true,
        }
        self.set_private_health(false);
        log::error!("private stream off: {why}; fills come from REST polls");
        self.notifier.send(Notice::Text(
            AlertText::new(
                format!("PRIVATE STREAM OFF: {why}; fills come from REST polls").as_bytes(),
            ),
            true,
        ));
    }

    fn private_connect(&mut self, now: Nanos) {
        let Some(p) = &mut self.private else { return };
        p.sup.connecting(now);
        match Connection::start(&p.endpoint, p.tls.clone(), self.poll.registry(), PRIVATE) {
            Ok(c) => {
                p.conn = Some(c);
                self.on_private_socket(true);
            }
            Err(e) => {
                p.token = None;
                let delay = p.sup.schedule_reconnect(now);
                p.trouble.failed(&format!("connect failed: {e}"), now);
                log::warn!(
                    "private stream: connect failed ({e}); retrying in {} ms",
                    delay / MS
                );
            }
        }
    }

    fn set_private_health(&mut self, healthy: bool) {
        let now = self.clock.now();
        let Some(p) = &mut self.private else { return };
        if p.healthy == healthy {
            return;
        }
        p.healthy = healthy;
        if healthy && let Some(e) = &mut p.entry {
            e.set_up(now);
        }
        self.tell_worker(Command::Stream { healthy });
    }

    /// The connection is gone: polls take over until the next snapshot, and REST takes the
    /// orders.
    fn private_lost(&mut self, reason: &str) {
        self.entry_lost();
        let Some(p) = &mut self.private else { return };
        match p.conn.take() {
            Some(c) => c.close(self.poll.registry()),
            None => p.lost_while_reading = true,
        }
        // A new connection gets a new token.
        p.token = None;
        p.exec_seq = None;
        let delay = p.sup.lost(self.clock.now());
        p.trouble.failed(reason, self.clock.now());
        p.counters.reconnects += 1;
        let was = p.healthy;
        self.set_private_health(false);
        if was {
            log::warn!(
                "private stream lost ({reason}): REST polls carry fills; reconnecting in {} ms",
                delay / MS
            );
            self.notifier.send(Notice::Text(
                AlertText::new(
                    format!(
                        "private stream lost ({reason}): fills from REST polls until it is back"
                    )
                    .as_bytes(),
                ),
                false,
            ));
        } else {
            log::info!("private stream: {reason}; retrying in {} ms", delay / MS);
        }
    }

    fn private_send(&mut self, text: &str) {
        let Some(p) = &mut self.private else { return };
        let Some(mut conn) = p.conn.take() else {
            if p.reading {
                p.outbox.push(text);
            }
            return;
        };
        match conn.send_text(text) {
            Ok(()) => p.conn = Some(conn),
            Err(e) => {
                p.conn = Some(conn);
                self.private_lost(&e.to_string());
            }
        }
    }

    fn private_subscribe(&mut self) {
        let Some(p) = &mut self.private else { return };
        let Some(token) = p.token.clone() else {
            self.private_lost("no token for the subscription");
            return;
        };
        p.sup.book_requested(self.clock.now());
        // The token goes in the frames only: never in a log line.
        self.private_send(&format!(
            r#"{{"method":"subscribe","params":{{"channel":"executions","token":"{token}","snap_orders":true,"snap_trades":true,"order_status":true,"ratecounter":true}},"req_id":11}}"#
        ));
        self.private_send(&format!(
            r#"{{"method":"subscribe","params":{{"channel":"balances","token":"{token}","snapshot":true}},"req_id":12}}"#
        ));
    }

    /// Readiness on the private socket.
    pub(super) fn on_private_socket(&mut self, writable: bool) {
        let Some(p) = &mut self.private else { return };
        let Some(mut conn) = p.conn.take() else {
            return;
        };
        let was_open = conn.is_open();
        let result = conn.drive().and_then(|open| {
            if open && writable {
                conn.flush()?;
            }
            Ok(open)
        });
        match result {
            Ok(open) => {
                if let Some(p) = &mut self.private {
                    p.conn = Some(conn);
                }
                if open && !was_open {
                    if let Some(p) = &mut self.private {
                        p.sup.opened(self.clock.now());
                        p.trouble.working();
                        p.counters.connects += 1;
                    }
                    self.private_subscribe();
                }
                if open {
                    self.private_read();
                }
            }
            Err(e) => {
                if let Some(p) = &mut self.private {
                    p.conn = Some(conn);
                }
                self.private_lost(&e.to_string());
            }
        }
    }

    fn private_read(&mut self) {
        let Some(p) = &mut self.private else { return };
        let Some(mut conn) = p.conn.take() else {
            return;
        };
        p.reading = true;
        let result = conn.read(|bytes| self.on_private_frame(bytes));
        let Some(p) = &mut self.private else { return };
        p.reading = false;
        if std::mem::take(&mut p.lost_while_reading) {
            // A frame ended the connection (a refused token, a give-up); what it queued was
            // handed over with the rest of the connection's requests.
            p.outbox.clear();
            conn.close(self.poll.registry());
            return;
        }
        match result {
            Ok(_) => {
                p.conn = Some(conn);
                p.sup.after_frames(self.clock.now());
                self.private_flush_outbox();
            }
            Err(e) => {
                p.conn = Some(conn);
                self.private_lost(&e.to_string());
            }
        }
    }

    /// Sends what was written while the connection was being read.
    fn private_flush_outbox(&mut self) {
        let Some(p) = &mut self.private else { return };
        if p.outbox.ends.is_empty() {
            return;
        }
        let outbox = std::mem::take(&mut p.outbox);
        for frame in outbox.frames() {
            self.private_send(frame);
        }
        if let Some(p) = &mut self.private {
            p.outbox = outbox;
            p.outbox.clear();
        }
    }

    /// One text frame from the private socket.
    fn on_private_frame(&mut self, bytes: &[u8]) {
        let rx = self.clock.now();
        // The worker's word on amends and adoptions first: a fill in this frame may already
        // belong to the order's new owner.
        self.drain_order_events();
        let outcome = match parse::frame(bytes) {
            Ok(Frame::Pong) => crate::core::event::Outcome::Pong,
            Ok(Frame::Ack(a)) => self.on_private_ack(&a),
            Ok(Frame::Executions {
                snapshot,
                data,
                sequence,
            }) => self.on_executions(rx, snapshot, data, sequence),
            Ok(Frame::Balances { data, .. }) => self.on_balances(data),
            Ok(Frame::Other) => crate::core::event::Outcome::Quiet,
            Err(e) => {
                if let Some(p) = &mut self.private {
                    p.counters.malformed += 1;
                }
                log::warn!("private stream: malformed frame skipped ({e})");
                crate::core::event::Outcome::Malformed
            }
        };
        if let Some(p) = &mut self.private {
            p.sup.on_frame(rx, outcome);
        }
    }

    fn on_private_ack(&mut self, a: &Ack<'_>) -> crate::core::event::Outcome {
        use crate::core::event::Outcome;
        if orders::is_order_method(a.method) {
            return self.on_order_reply(a);
        }
        if a.success {
            if a.channel == Some(b"executions".as_slice())
                && let Some(max) = a.maxratecount
            {
                let tier = Tier::from_max(u32::try_from(max).unwrap_or(u32::MAX));
                log::info!(
                    "Kraken's trading rate counter: maxratecount {max} ({} tier)",
                    tier.name()
                );
                self.deliver(OrderEvent::RateLimit {
                    max: u32::try_from(max).unwrap_or(u32::MAX),
                });
                self.tell_worker(Command::Tier(tier));
                let now = self.clock.now();
                if let Some(e) = self.private.as_mut().and_then(|p| p.entry.as_mut()) {
                    e.set_tier(now, tier);
                }
            }
            if let Some(p) = &mut self.private {
                p.refused_in_row = 0;
            }
            return Outcome::Quiet;
        }
        let err = String::from_utf8_lossy(a.error.unwrap_or(b"no error text")).into_owned();
        let token_refused = ["Invalid session", "token", "Token", "Permission", "EAPI:"]
            .iter()
            .any(|k| err.contains(k));
        if !token_refused || a.method != b"subscribe" {
            log::warn!(
                "private stream: {} refused: {err}",
                String::from_utf8_lossy(a.method)
            );
            return Outcome::MethodError;
        }
        let Some(p) = &mut self.private else {
            return Outcome::Quiet;
        };
        p.counters.token_refusals += 1;
        p.refused_in_row += 1;
        if p.refused_in_row >= MAX_REFUSALS {
            self.private_give_up(&format!("Kraken refused the WebSocket token: {err}"));
        } else {
            log::error!("private stream: Kraken refused the WebSocket token ({err}); a new one");
            self.private_lost("token refused");
        }
        Outcome::Quiet
    }

    fn on_executions(
        &mut self,
        rx: Nanos,
        snapshot: bool,
        data: &[u8],
        sequence: Option<u64>,
    ) -> crate::core::event::Outcome {
        use crate::core::event::Outcome;
        if let Some(p) = &mut self.private {
            let gap = match (p.exec_seq, sequence) {
                (Some(last), Some(s)) if !snapshot => s != last + 1,
                _ => false,
            };
            p.exec_seq = sequence.or(p.exec_seq);
            if gap {
                p.counters.sequence_gaps += 1;
                log::warn!("private stream: executions sequence gap: reconciling with REST");
                self.tell_worker(Command::Reconcile);
            }
        }
        let precision = self.precision;
        let mut ratecount = None;
        let r = parse::executions(data, precision, |e| {
            if e.ratecount.is_some() {
                ratecount = e.ratecount;
            }
            let core = &self.core;
            let ev = self.ledger.on_exec(e, &|id| booked(core, id), &|id| {
                core.orders().get(id).is_some()
            });
            if let Some(ev) = ev {
                let fill = matches!(ev, OrderEvent::Fill { .. });
                self.deliver(ev);
                if fill {
                    let ns = self.clock.now() - rx;
                    self.out.record(|h| &mut h.fill_to_core, ns);
                }
            }
        });
        if let Some(rc) = ratecount.and_then(|d| d.to_units_floor(2).ok()) {
            let now = self.clock.now();
            if let Some(e) = self.private.as_mut().and_then(|p| p.entry.as_mut()) {
                e.observe_rate(now, rc as f64 / 100.0);
            }
            self.deliver(OrderEvent::RateCount {
                centi: u32::try_from(rc).unwrap_or(u32::MAX),
            });
        }
        if let Err(e) = r {
            if let Some(p) = &mut self.private {
                p.counters.malformed += 1;
            }
            log::warn!("private stream: malformed executions skipped ({e})");
            return Outcome::Malformed;
        }
        if !snapshot {
            return Outcome::Quiet;
        }
        // The snapshot is authoritative: what it does not show, REST settles before quoting.
        if let Some(p) = &mut self.private {
            p.counters.snapshots += 1;
        }
        log::info!("private stream: executions snapshot read; reconciling open orders with REST");
        self.deliver(OrderEvent::Reconciling);
        self.tell_worker(Command::Reconcile);
        self.set_private_health(true);
        Outcome::Snapshot
    }

    fn on_balances(&mut self, data: &[u8]) -> crate::core::event::Outcome {
        use crate::core::event::Outcome;
        let p_cash = self.precision.cash();
        let qp = self.precision.qty;
        let Some(p) = &mut self.private else {
            return Outcome::Quiet;
        };
        let (bn, qn) = (&p.base_names, &p.quote_names);
        let mut got = p.balances;
        let r = parse::balances(data, |b| {
            let is = |names: &[String; 2]| names.iter().any(|n| n.as_bytes() == b.asset);
            if is(bn) {
                got.0 = b.balance.to_units_floor(qp).ok().map(Qty);
            } else if is(qn) {
                got.1 = Some(Cash::from_decimal_round_down(b.balance, p_cash));
            }
        });
        let changed = got != p.balances;
        p.balances = got;
        if r.is_err() {
            p.counters.malformed += 1;
            return Outcome::Malformed;
        }
        if let (true, (Some(base), Some(quote))) = (changed, got) {
            log::debug!(
                "private stream balances: base {}, quote {}",
                Fixed::new(i128::from(base.0), qp),
                quote.show(p_cash)
            );
            self.deliver(OrderEvent::Balances { quote, base });
        }
        Outcome::Quiet
    }
}
