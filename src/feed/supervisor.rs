//! The connection supervisor: when to connect, when a connection is dead, when to ping, when to
//! resubscribe the book and when to retry refused subscriptions.
//!
//! It holds only time-driven state and decides from the times it is given; the feed loop does
//! the I/O it asks for. Keeping it apart makes each rule testable without a socket:
//! - **Watchdog**: no frame for `feed_timeout_ms` (or a handshake that never finishes), no
//!   answer to our ping, or no book snapshot within the timeout after subscribing → dead.
//!   A pong is queued behind whatever the server sent before it, so while frames keep arriving
//!   the link is alive however late the pong is: a missing pong counts only once the link has
//!   also been quiet for a ping interval.
//! - **Reconnect** with exponential backoff and ±20 % jitter, 1 s → 60 s, reset after a
//!   healthy minute.
//! - **Resync**: back-to-back book resubscriptions (within a minute) wait 1 s, 2 s … 60 s.
//! - **Subscription errors** are retried with their own backoff until the book arrives.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::core::Outcome;
use crate::core::time::{MS, Nanos, SEC};

/// Reconnect backoff bounds.
const BACKOFF_MIN_NS: Nanos = SEC;
const BACKOFF_MAX_NS: Nanos = 60 * SEC;
/// A connection up this long resets the reconnect backoff.
const HEALTHY_NS: Nanos = 60 * SEC;
/// Resubscriptions closer together than this are back to back.
const RESYNC_WINDOW_NS: Nanos = 60 * SEC;

/// Why the supervisor declared a connection dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dead {
    /// No frame for the timeout on an open connection.
    NoFrame,
    /// The WebSocket (or TLS) handshake did not finish within the timeout.
    Handshake,
    /// Our ping went unanswered and the link went quiet.
    NoPong,
    /// The book subscription was never answered with a snapshot.
    NoSnapshot,
}

impl Dead {
    /// The reason as logged and notified.
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            Dead::NoFrame => "no frame within feed_timeout_ms (watchdog)",
            Dead::Handshake => "handshake not finished within feed_timeout_ms (watchdog)",
            Dead::NoPong => "no pong to our ping and no frame since (watchdog)",
            Dead::NoSnapshot => "no book snapshot after subscribing (watchdog)",
        }
    }
}

/// The state of the connection, as the supervisor needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// No connection.
    Down,
    /// Connecting: TCP, TLS or the WebSocket handshake under way.
    Handshaking,
    /// The WebSocket is open.
    Open,
}

/// What the feed loop should do now, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Due {
    /// Start a connection.
    pub connect: bool,
    /// Close the connection and reconnect: it is dead.
    pub dead: Option<Dead>,
    /// Send an application ping with this `req_id`.
    pub ping: Option<u64>,
    /// Unsubscribe and resubscribe the book (a resync whose wait is over).
    pub resubscribe_book: bool,
    /// Send the subscriptions again after an error ack: `Some(with_book, with_instrument)`.
    pub retry_subscribe: Option<(bool, bool)>,
}

/// Counters the supervisor keeps for the summary, dashboard and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounters {
    /// Connections opened.
    pub connects: u64,
    /// Connections lost (each is followed by a reconnect).
    pub reconnects: u64,
    /// Connections the watchdog declared dead.
    pub watchdog_timeouts: u64,
    /// Book resubscriptions sent.
    pub resubscribes: u64,
    /// Error acks to our subscriptions.
    pub subscribe_errors: u64,
    /// Application pings sent.
    pub pings: u64,
}

/// The supervisor's timers and counters.
#[derive(Debug)]
pub struct Supervisor {
    timeout_ns: Nanos,
    ping_interval_ns: Nanos,
    rng: ChaCha8Rng,
    /// When the current connection attempt started, or the last frame arrived.
    last_activity: Nanos,
    connected_at: Option<Nanos>,
    next_connect: Nanos,
    backoff: Nanos,
    next_ping: Nanos,
    ping_sent_at: Option<Nanos>,
    req_id: u64,
    resub_at: Option<Nanos>,
    last_resub: Option<Nanos>,
    resub_consecutive: u32,
    subscribe_retry_at: Option<Nanos>,
    subscribe_backoff: Nanos,
    /// An instrument message arrived on this connection.
    instrument_seen: bool,
    /// From a disconnect or resubscription until the core has a fresh snapshot.
    awaiting_snapshot: bool,
    /// When the book subscription awaiting its snapshot was sent.
    book_requested_at: Option<Nanos>,
    counters: LinkCounters,
}

impl Supervisor {
    /// A supervisor that will connect at `now`. `seed` drives the jitter.
    #[must_use]
    pub fn new(now: Nanos, timeout_ms: u64, ping_interval_ms: u64, seed: u64) -> Supervisor {
        Supervisor {
            timeout_ns: timeout_ms as Nanos * MS,
            ping_interval_ns: ping_interval_ms as Nanos * MS,
            rng: ChaCha8Rng::seed_from_u64(seed),
            last_activity: now,
            connected_at: None,
            next_connect: now,
            backoff: BACKOFF_MIN_NS,
            next_ping: Nanos::MAX,
            ping_sent_at: None,
            req_id: 0,
            resub_at: None,
            last_resub: None,
            resub_consecutive: 0,
            subscribe_retry_at: None,
            subscribe_backoff: BACKOFF_MIN_NS,
            instrument_seen: false,
            awaiting_snapshot: true,
            book_requested_at: None,
            counters: LinkCounters::default(),
        }
    }

    /// The counters so far.
    #[must_use]
    pub fn counters(&self) -> LinkCounters {
        self.counters
    }

    /// Whether the book is awaiting a fresh snapshot (quotes now would be on a stale book).
    #[must_use]
    pub fn awaiting_snapshot(&self) -> bool {
        self.awaiting_snapshot
    }

    /// Whether a connection is open.
    #[must_use]
    pub fn connected(&self) -> bool {
        self.connected_at.is_some()
    }

    /// The next time [`due`](Supervisor::due) has something to do (with `link` as it is).
    #[must_use]
    pub fn next_deadline(&self, link: Link) -> Nanos {
        let watch = if link == Link::Down {
            self.next_connect
        } else {
            self.last_activity + self.timeout_ns
        };
        [
            self.next_ping,
            self.resub_at.unwrap_or(Nanos::MAX),
            self.subscribe_retry_at.unwrap_or(Nanos::MAX),
            self.ping_sent_at
                .map_or(Nanos::MAX, |t| t.saturating_add(self.timeout_ns)),
            watch,
        ]
        .into_iter()
        .min()
        .unwrap_or(watch)
    }

    /// A connection attempt starts now.
    pub fn connecting(&mut self, now: Nanos) {
        self.last_activity = now;
    }

    /// The WebSocket opened; the feed subscribes next (book and instrument included).
    pub fn opened(&mut self, now: Nanos) {
        self.counters.connects += 1;
        self.connected_at = Some(now);
        self.last_activity = now;
        self.next_ping = now + self.ping_interval_ns;
        self.ping_sent_at = None;
        self.instrument_seen = false;
    }

    /// Connection attempts so far, this one included.
    #[must_use]
    pub fn attempt(&self) -> u64 {
        self.counters.connects + self.counters.reconnects
    }

    /// The book subscription went out now.
    pub fn book_requested(&mut self, now: Nanos) {
        self.book_requested_at = Some(now);
    }

    /// A frame arrived now and the core said what it was. Returns the retry delay when it was
    /// an error ack that schedules a subscription retry.
    pub fn on_frame(&mut self, now: Nanos, outcome: Outcome) -> Option<Nanos> {
        self.last_activity = now;
        match outcome {
            Outcome::Pong => self.ping_sent_at = None,
            Outcome::Snapshot => {
                self.awaiting_snapshot = false;
                self.book_requested_at = None;
                self.subscribe_retry_at = None;
                self.subscribe_backoff = BACKOFF_MIN_NS;
            }
            Outcome::MethodError => {
                self.counters.subscribe_errors += 1;
                if self.awaiting_snapshot && self.subscribe_retry_at.is_none() {
                    // Retry the subscriptions with backoff until the book arrives.
                    let delay = self.jitter(self.subscribe_backoff);
                    self.subscribe_retry_at = Some(now + delay);
                    self.subscribe_backoff = (self.subscribe_backoff * 2).min(BACKOFF_MAX_NS);
                    return Some(delay);
                }
            }
            Outcome::Instrument => self.instrument_seen = true,
            Outcome::Quiet | Outcome::Malformed => {}
        }
        None
    }

    /// The core asked for a book resync at `now`: returns (resyncs in a row, wait before the
    /// resubscription).
    pub fn resync(&mut self, now: Nanos) -> (u32, Nanos) {
        self.awaiting_snapshot = true;
        self.resub_consecutive = match self.last_resub {
            Some(t) if now - t < RESYNC_WINDOW_NS => self.resub_consecutive + 1,
            _ => 1,
        };
        let delay = if self.resub_consecutive <= 1 {
            0
        } else {
            (SEC << (self.resub_consecutive - 2).min(6)).min(BACKOFF_MAX_NS)
        };
        self.resub_at = Some(now + delay);
        self.last_resub = Some(now);
        (self.resub_consecutive, delay)
    }

    /// The book resubscription is being sent now.
    pub fn resubscribing(&mut self, now: Nanos) {
        self.counters.resubscribes += 1;
        self.book_requested_at = Some(now);
    }

    /// The connection is gone (dead, failed, or closed by the peer): returns the wait before
    /// the next attempt.
    pub fn lost(&mut self, now: Nanos) -> Nanos {
        self.counters.reconnects += 1;
        self.awaiting_snapshot = true;
        self.resub_at = None;
        self.subscribe_retry_at = None;
        self.ping_sent_at = None;
        self.book_requested_at = None;
        self.next_ping = Nanos::MAX;
        self.connected_at = None;
        self.schedule_reconnect(now)
    }

    /// A connection attempt failed before it existed: returns the wait before the next one.
    pub fn schedule_reconnect(&mut self, now: Nanos) -> Nanos {
        let delay = self.jitter(self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX_NS);
        self.next_connect = now + delay;
        delay
    }

    /// After reading: a connection up for a healthy while resets the reconnect backoff.
    pub fn after_frames(&mut self, now: Nanos) {
        if self.connected_at.is_some_and(|c| now - c > HEALTHY_NS) {
            self.backoff = BACKOFF_MIN_NS;
        }
    }

    /// What is due at `now` with the connection in state `link`.
    pub fn due(&mut self, now: Nanos, link: Link) -> Due {
        let mut due = Due::default();
        if link == Link::Down {
            due.connect = now >= self.next_connect;
            return due;
        }
        if let Some(dead) = self.dead(now, link) {
            self.counters.watchdog_timeouts += 1;
            due.dead = Some(dead);
            return due;
        }
        if link != Link::Open {
            return due;
        }
        if now >= self.next_ping {
            self.req_id += 1;
            self.counters.pings += 1;
            self.next_ping = now + self.ping_interval_ns;
            // The oldest unanswered ping is the one the watchdog times.
            self.ping_sent_at.get_or_insert(now);
            due.ping = Some(1000 + self.req_id);
        }
        if self.resub_at.is_some_and(|t| now >= t) {
            self.resub_at = None;
            due.resubscribe_book = true;
        }
        if self.subscribe_retry_at.is_some_and(|t| now >= t) {
            self.subscribe_retry_at = None;
            due.retry_subscribe = Some((self.awaiting_snapshot, !self.instrument_seen));
        }
        due
    }

    fn dead(&self, now: Nanos, link: Link) -> Option<Dead> {
        let quiet = now - self.last_activity;
        if quiet > self.timeout_ns {
            return Some(if link == Link::Open {
                Dead::NoFrame
            } else {
                Dead::Handshake
            });
        }
        // A pong can be queued behind a burst: only a quiet link with an overdue pong is dead.
        if let Some(sent) = self.ping_sent_at
            && now - sent > self.timeout_ns
            && quiet > self.ping_interval_ns.min(self.timeout_ns)
        {
            return Some(Dead::NoPong);
        }
        // A subscription that was never answered (lost on the way, or ignored) leaves a live
        // connection without a book: start over. Error acks retry on their own schedule
        // instead, and a resync waits for its backoff.
        if self.awaiting_snapshot
            && self.subscribe_retry_at.is_none()
            && self.resub_at.is_none()
            && self
                .book_requested_at
                .is_some_and(|t| now - t > self.timeout_ns)
        {
            return Some(Dead::NoSnapshot);
        }
        None
    }

    /// `base` ± 20 %, so a fleet of clients does not reconnect in lockstep.
    fn jitter(&mut self, base: Nanos) -> Nanos {
        let f: f64 = self.rng.random_range(0.8..1.2);
        (base as f64 * f) as Nanos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT_MS: u64 = 1000;
    const PING_MS: u64 = 300;

    fn open_at(t: Nanos) -> Supervisor {
        let mut s = Supervisor::new(t, TIMEOUT_MS, PING_MS, 1);
        assert!(s.due(t, Link::Down).connect);
        s.connecting(t);
        s.opened(t);
        s.book_requested(t);
        s.on_frame(t + MS, Outcome::Snapshot);
        s
    }

    /// The first ping goes out after one interval; returns when.
    fn first_ping(s: &mut Supervisor, t: Nanos) -> Nanos {
        let at = t + PING_MS as Nanos * MS;
        assert!(s.due(at, Link::Open).ping.is_some());
        at
    }

    #[test]
    fn a_pong_queued_behind_a_burst_is_not_a_dead_link() {
        let mut s = open_at(0);
        let ping = first_ping(&mut s, 0);
        // Frames keep arriving for five timeouts while the pong waits behind them.
        let mut t = ping;
        while t < ping + 5 * SEC {
            t += 10 * MS;
            s.on_frame(t, Outcome::Quiet);
            let due = s.due(t, Link::Open);
            assert_eq!(due.dead, None, "declared dead at {} ms", (t - ping) / MS);
        }
        s.on_frame(t, Outcome::Pong);
        assert_eq!(s.counters().watchdog_timeouts, 0);
    }

    #[test]
    fn an_unanswered_ping_on_a_quiet_link_is_dead_before_the_frame_watchdog() {
        let mut s = open_at(0);
        let ping = first_ping(&mut s, 0);
        // Frames flow for a while after the ping, then the link goes quiet.
        let last = ping + 700 * MS;
        s.on_frame(last, Outcome::Quiet);
        let overdue = ping + TIMEOUT_MS as Nanos * MS + MS;
        assert_eq!(s.due(overdue, Link::Open).dead, Some(Dead::NoPong));
        assert!(
            overdue - last < TIMEOUT_MS as Nanos * MS,
            "before the frame watchdog"
        );
        assert_eq!(s.counters().watchdog_timeouts, 1);
    }

    #[test]
    fn no_frame_for_the_timeout_is_dead_and_a_handshake_has_the_same_bound() {
        let mut s = open_at(0);
        let t = MS + TIMEOUT_MS as Nanos * MS + 1;
        assert_eq!(s.due(t, Link::Open).dead, Some(Dead::NoFrame));
        let mut h = Supervisor::new(0, TIMEOUT_MS, PING_MS, 1);
        h.connecting(0);
        assert_eq!(
            h.due(TIMEOUT_MS as Nanos * MS, Link::Handshaking).dead,
            None
        );
        assert_eq!(
            h.due(TIMEOUT_MS as Nanos * MS + 1, Link::Handshaking).dead,
            Some(Dead::Handshake)
        );
    }

    #[test]
    fn an_unanswered_book_subscription_is_dead_even_while_frames_flow() {
        let mut s = Supervisor::new(0, TIMEOUT_MS, PING_MS, 1);
        s.connecting(0);
        s.opened(0);
        s.book_requested(0);
        let mut t = 0;
        let mut dead = None;
        while t < 3 * SEC && dead.is_none() {
            t += 50 * MS;
            s.on_frame(t, Outcome::Pong);
            dead = s.due(t, Link::Open).dead;
        }
        assert_eq!(dead, Some(Dead::NoSnapshot));
        assert!(t > TIMEOUT_MS as Nanos * MS && t < 2 * SEC, "at {t}");
    }

    #[test]
    fn reconnects_back_off_with_jitter_and_reset_after_a_healthy_minute() {
        let mut s = open_at(0);
        let mut waits = Vec::new();
        for _ in 0..8 {
            waits.push(s.lost(0));
        }
        for (i, w) in waits.iter().enumerate() {
            let base = (SEC << i.min(6)).min(BACKOFF_MAX_NS) as f64;
            assert!(
                (*w as f64) >= base * 0.8 && (*w as f64) <= base * 1.2,
                "{i}: {w}"
            );
        }
        s.opened(0);
        s.after_frames(HEALTHY_NS + 1);
        let w = s.lost(HEALTHY_NS + 1);
        assert!(w <= SEC * 12 / 10, "backoff reset: {w}");
    }

    #[test]
    fn back_to_back_resyncs_wait_longer_each_time() {
        let mut s = open_at(0);
        let waits: Vec<Nanos> = (0..9).map(|i| s.resync(i * SEC).1).collect();
        assert_eq!(
            waits,
            [0, 1, 2, 4, 8, 16, 32, 60, 60]
                .map(|x: i64| x * SEC)
                .to_vec()
        );
        assert_eq!(
            s.resync(10 * 60 * SEC),
            (1, 0),
            "a minute apart: not back to back"
        );
    }

    #[test]
    fn an_error_ack_retries_the_subscriptions_left_unanswered() {
        let mut s = Supervisor::new(0, TIMEOUT_MS, PING_MS, 1);
        s.connecting(0);
        s.opened(0);
        s.book_requested(0);
        s.on_frame(MS, Outcome::Instrument);
        let delay = s
            .on_frame(2 * MS, Outcome::MethodError)
            .expect("a retry is scheduled");
        assert!(
            s.due(2 * MS + delay - 1, Link::Open)
                .retry_subscribe
                .is_none()
        );
        let due = s.due(2 * MS + delay, Link::Open);
        // The book never came; the instrument channel did.
        assert_eq!(due.retry_subscribe, Some((true, false)));
        assert_eq!(s.counters().subscribe_errors, 1);
    }
}
