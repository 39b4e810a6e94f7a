//! WebSocket order entry on the feed thread: the core's order intents go to [`WsEntry`] while
//! the private stream is up (`order_transport = "ws"`), and its effects are carried out here,
//! in order: requests written on the private connection, events to the core, intents and
//! commands to the REST worker, owners to the fill ledger.

use crate::core::event::{Intent, Outcome};
use crate::exec::ws_entry::{Effect, Reply, Request, Route, WsEntry, write_request};

/// The order methods whose replies [`WsEntry`] reads.
pub(super) fn is_order_method(m: &[u8]) -> bool {
    matches!(
        m,
        b"add_order"
            | b"amend_order"
            | b"cancel_order"
            | b"cancel_all"
            | b"cancel_all_orders_after"
    )
}

fn utf8(b: Option<&[u8]>) -> Option<&str> {
    b.and_then(|b| std::str::from_utf8(b).ok())
}

impl super::super::Feed<'_> {
    fn entry(&mut self) -> Option<&mut WsEntry> {
        self.private.as_mut().and_then(|p| p.entry.as_mut())
    }

    /// One order intent of the core: over the WebSocket when it is up and can take it, else
    /// to the REST worker.
    pub(in crate::feed) fn route_order(&mut self, i: Intent) {
        let now = self.clock.now();
        let core = &self.core;
        let filled = |id| super::booked(core, id).is_some_and(|b| b.0.0 > 0);
        let route = self
            .private
            .as_mut()
            .and_then(|p| p.entry.as_mut())
            .map_or(Route::Rest, |e| e.route(now, i, &filled));
        if route != Route::Ws {
            self.send_to_worker(i);
        }
    }

    /// Carries out what order entry queued, oldest first (an effect may queue more: a
    /// rejection reaches the core, which requotes).
    pub(in crate::feed) fn entry_effects(&mut self) {
        while let Some(fx) = self.entry().and_then(WsEntry::next_effect) {
            match fx {
                Effect::Send(r) => self.send_request(&r),
                Effect::Core(ev) => self.deliver(ev),
                Effect::Rest(i) => self.send_to_worker(i),
                Effect::Worker(c) => self.tell_worker(c),
                Effect::Bind { origin, cl_id } => {
                    let core = &self.core;
                    self.ledger
                        .bind(origin, cl_id, &|id| super::booked(core, id));
                }
            }
        }
    }

    fn send_request(&mut self, r: &Request) {
        let Some(p) = &self.private else { return };
        let Some(token) = p.token.as_deref() else {
            // Only while reconnecting, when order entry is down; lost() hands it to REST.
            self.private_lost("no token for an order request");
            return;
        };
        log::debug!("private stream: order request {r:?}");
        let mut text = std::mem::take(&mut self.request_text);
        write_request(r, self.precision, &self.settings.symbol, token, &mut text);
        self.private_send(&text);
        self.request_text = text;
    }

    /// Kraken's reply to one of our order requests.
    pub(super) fn on_order_reply(&mut self, a: &super::parse::Ack<'_>) -> Outcome {
        let now = self.clock.now();
        log::debug!(
            "private stream: reply to req_id {:?}: success {} error {:?}",
            a.req_id,
            a.success,
            utf8(a.error)
        );
        if let Some(req_id) = a.req_id
            && let Some(e) = self.entry()
        {
            e.on_reply(
                now,
                &Reply {
                    req_id,
                    success: a.success,
                    error: utf8(a.error),
                    order_id: utf8(a.order_id),
                },
            );
            if let Some(ns) = e.take_last_ack() {
                self.out.record(|h| &mut h.intent_to_ack_ws, ns);
            }
        }
        self.entry_effects();
        if a.success {
            Outcome::Quiet
        } else {
            Outcome::MethodError
        }
    }

    /// Order entry's timers; a request unanswered for too long drops the connection (and
    /// hands every open request to REST).
    pub(in crate::feed) fn entry_timers(&mut self) {
        let now = self.clock.now();
        let core = &self.core;
        let Some(e) = self.private.as_mut().and_then(|p| p.entry.as_mut()) else {
            return;
        };
        e.prune(&|id| core.orders().get(id).is_some());
        if e.on_timer(now) {
            log::error!("private stream: an order request went unanswered; reconnecting");
            self.private_lost("an order request went unanswered");
        }
        self.entry_effects();
    }

    /// The connection is gone: order entry hands its open requests to REST.
    pub(super) fn entry_lost(&mut self) {
        let now = self.clock.now();
        if let Some(e) = self.entry() {
            e.lost(now);
        }
        self.entry_effects();
    }

    /// At shutdown: waits (at most a second) for the answers to order requests in flight, so
    /// that REST's final cancel-all starts from what Kraken said; the rest is handed over.
    pub(in crate::feed) fn settle_entry(&mut self) {
        let until = self.clock.now() + crate::core::time::SEC;
        let mut events = mio::Events::with_capacity(16);
        while self
            .entry()
            .is_some_and(|e| e.is_up() && e.unanswered() > 0)
            && self.clock.now() < until
        {
            let _ = self
                .poll
                .poll(&mut events, Some(std::time::Duration::from_millis(10)));
            let private = events.iter().any(|ev| ev.token() == super::PRIVATE);
            if private {
                self.on_private_socket(false);
            }
            self.drain_order_events();
        }
        self.entry_lost();
    }
}
