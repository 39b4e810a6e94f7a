//! Every fill booked exactly once, whichever way it arrives.
//!
//! Fills reach the feed thread twice: in real time on the private stream (`executions`,
//! one `trade` per fill, keyed by `exec_id`) and later from the REST worker's QueryOrders
//! polls (an order's executed totals). The core books cumulative reports per client id, but
//! one Kraken order can belong to two client ids in turn (an amend moves it from the old
//! quote's id to the new one), so the two sources could each book the same fill under a
//! different id. The ledger closes that gap: per Kraken order (known by its `cl_ord_id`,
//! which an amend keeps) it keeps what has been booked in total, and hands the core only
//! the increase beyond it, under the id that owns the order now.
//!
//! - A stream fill counts only for `exec_type = "trade"`, once per `exec_id`. Its order's
//!   total is Kraken's `cum_qty` where the message has one, else the sum of the distinct
//!   fills seen: never more than the truth, so nothing is booked twice (what is missed is
//!   found by the next poll).
//! - A poll's totals book only what exceeds the booked total: a poll lagging the stream
//!   (REST can be a minute behind) changes nothing and rolls nothing back.
//! - Orders without one of our ids are another client's: counted, never booked.
//!
//! Fixed-size tables, no allocation: it runs on the feed thread.

use crate::core::event::{CancelReason, ClientId, OrderEvent, RejectReason};
use crate::core::money::{Cash, Qty};
use crate::exec::clordid::origin_of;
use crate::feed::private::parse::Exec;

/// Kraken orders remembered (far more than the core's live and recently closed orders).
const TRACKS: usize = 64;
/// Execution ids remembered for de-duplication.
const SEEN: usize = 1024;

/// What the core has booked of one of its orders: (filled, cost, fee).
pub type Booked = (Qty, Cash, Cash);

/// Where a fill came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The private stream.
    Stream,
    /// A REST poll.
    Poll,
}

#[derive(Debug, Clone, Copy, Default)]
struct Track {
    /// The client id in the order's `cl_ord_id` (0: free slot).
    origin: ClientId,
    /// The client id that owns the order now.
    current: ClientId,
    /// Booked in total, under any id.
    booked: Booked,
    /// Sum of the distinct stream fills seen.
    stream_sum: Qty,
    stamp: u64,
}

/// What the ledger counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LedgerStats {
    /// Fills booked from the stream.
    pub fills_ws: u64,
    /// Fills booked from polls.
    pub fills_poll: u64,
    /// Stream fills whose `exec_id` was already seen.
    pub duplicate_execs: u64,
    /// Reports with nothing new (the other source booked it first).
    pub already_booked: u64,
    /// Reports for orders that are not the bot's (another client on the account).
    pub foreign: u64,
    /// Reports for ids the core does not know.
    pub unknown: u64,
}

/// The fill ledger.
#[derive(Debug)]
pub struct FillLedger {
    tracks: [Track; TRACKS],
    seen: [u64; SEEN],
    seen_next: usize,
    stamp: u64,
    /// Counters.
    pub stats: LedgerStats,
}

impl Default for FillLedger {
    fn default() -> FillLedger {
        FillLedger {
            tracks: [Track::default(); TRACKS],
            seen: [0; SEEN],
            seen_next: 0,
            stamp: 0,
            stats: LedgerStats::default(),
        }
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h | 1 // never 0, the empty slot
}

/// `part` of `whole`'s `amount` (a fill booked only in part).
fn prorate(amount: Cash, part: Qty, whole: Qty) -> Cash {
    if whole.0 == 0 || part >= whole {
        return amount;
    }
    Cash(amount.0 * i128::from(part.0) / i128::from(whole.0))
}

impl FillLedger {
    fn find(&self, origin: ClientId) -> Option<usize> {
        self.tracks.iter().position(|t| t.origin == origin)
    }

    /// The track of `origin`, made for `current` when new (booked: what the core has of it).
    /// `None` when the core does not know `current`.
    fn track(
        &mut self,
        origin: ClientId,
        current: ClientId,
        view: &impl Fn(ClientId) -> Option<Booked>,
    ) -> Option<usize> {
        self.stamp += 1;
        if let Some(i) = self.find(origin) {
            self.tracks[i].stamp = self.stamp;
            return Some(i);
        }
        let booked = view(current)?;
        let i = (0..TRACKS)
            .min_by_key(|&i| (self.tracks[i].origin != 0, self.tracks[i].stamp))
            .unwrap_or(0);
        self.tracks[i] = Track {
            origin,
            current,
            booked,
            stream_sum: Qty(0),
            stamp: self.stamp,
        };
        Some(i)
    }

    /// The Kraken order `origin` now belongs to client id `cl_id` (an amend moved it, or a
    /// journal order from an earlier run was adopted).
    pub fn bind(
        &mut self,
        origin: ClientId,
        cl_id: ClientId,
        view: &impl Fn(ClientId) -> Option<Booked>,
    ) {
        if let Some(i) = self.track(origin, cl_id, view) {
            self.tracks[i].current = cl_id;
        }
    }

    /// Hands the core the increase of track `i` to `total` (cost and fee deltas given).
    fn book(
        &mut self,
        i: usize,
        delta: (Qty, Cash, Cash),
        view: &impl Fn(ClientId) -> Option<Booked>,
        source: Source,
    ) -> Option<OrderEvent> {
        let t = &mut self.tracks[i];
        let Some((f, c, fee)) = view(t.current) else {
            self.stats.unknown += 1;
            return None;
        };
        let (dq, dc, df) = delta;
        t.booked = (
            Qty(t.booked.0.0 + dq.0),
            Cash(t.booked.1.0 + dc.0),
            Cash(t.booked.2.0 + df.0),
        );
        match source {
            Source::Stream => self.stats.fills_ws += 1,
            Source::Poll => self.stats.fills_poll += 1,
        }
        Some(OrderEvent::Fill {
            cl_id: t.current,
            cum_qty: Qty(f.0 + dq.0),
            cum_cost: Cash(c.0 + dc.0),
            cum_fee: Cash(fee.0 + df.0),
        })
    }

    /// Whether `exec_id` was seen before; remembers it.
    fn seen_before(&mut self, exec_id: &[u8]) -> bool {
        let h = fnv(exec_id);
        if self.seen.contains(&h) {
            return true;
        }
        self.seen[self.seen_next] = h;
        self.seen_next = (self.seen_next + 1) % SEEN;
        false
    }

    /// One execution report from the stream: what the core is to hear of it. `live`: whether
    /// the core still has the order resting.
    pub fn on_exec(
        &mut self,
        e: &Exec<'_>,
        view: &impl Fn(ClientId) -> Option<Booked>,
        live: &impl Fn(ClientId) -> bool,
    ) -> Option<OrderEvent> {
        let Some(origin) = e.cl_ord_id.and_then(origin_of) else {
            self.stats.foreign += 1;
            return None;
        };
        let current = self.find(origin).map_or(origin, |i| self.tracks[i].current);
        match e.exec_type {
            // A fill without Kraken's totals is a snapshot's history: it can only be new for an
            // order the core still thinks rests (one that ended unseen). Any other may have
            // been booked under another id in an earlier run; REST settles the live ones.
            b"trade" if e.cum_qty.is_none() && !live(current) => {
                self.stats.already_booked += 1;
                None
            }
            b"trade" => self.on_trade(origin, current, e, view),
            b"pending_new" | b"new" => Some(OrderEvent::Accepted { cl_id: current }),
            b"canceled" | b"expired" => Some(ended(current, e)),
            _ => None,
        }
    }

    fn on_trade(
        &mut self,
        origin: ClientId,
        current: ClientId,
        e: &Exec<'_>,
        view: &impl Fn(ClientId) -> Option<Booked>,
    ) -> Option<OrderEvent> {
        let (Some(exec_id), Some(last)) = (e.exec_id, e.last_qty) else {
            return None;
        };
        if self.seen_before(exec_id) {
            self.stats.duplicate_execs += 1;
            return None;
        }
        let Some(i) = self.track(origin, current, view) else {
            self.stats.unknown += 1;
            return None;
        };
        let t = &mut self.tracks[i];
        t.stream_sum = Qty(t.stream_sum.0 + last.0);
        // Never above the truth: Kraken's total, or the distinct fills seen.
        let total = e.cum_qty.unwrap_or(Qty(0)).max(t.stream_sum);
        if total <= t.booked.0 {
            self.stats.already_booked += 1;
            return None;
        }
        let dq = Qty(total.0 - t.booked.0.0);
        let this_cost = e.cost.unwrap_or(Cash(0));
        let dc = match e.cum_cost {
            Some(cc) if e.cum_qty == Some(total) && cc.0 >= t.booked.1.0 => {
                Cash(cc.0 - t.booked.1.0)
            }
            _ => prorate(this_cost, dq, last),
        };
        let df = prorate(e.fee.unwrap_or(Cash(0)), dq, last);
        self.book(i, (dq, dc, df), view, Source::Stream)
    }

    /// A poll's executed totals of the Kraken order `origin`, owned by `cl_id` as the worker
    /// knows it: the core hears only what exceeds what is booked.
    pub fn on_totals(
        &mut self,
        origin: ClientId,
        cl_id: ClientId,
        totals: Booked,
        view: &impl Fn(ClientId) -> Option<Booked>,
    ) -> Option<OrderEvent> {
        let Some(i) = self.track(origin, cl_id, view) else {
            self.stats.unknown += 1;
            // The core counts it as a fill for an id it never placed.
            return Some(OrderEvent::Fill {
                cl_id,
                cum_qty: totals.0,
                cum_cost: totals.1,
                cum_fee: totals.2,
            });
        };
        let b = self.tracks[i].booked;
        if totals.0 <= b.0 {
            self.stats.already_booked += 1;
            return None;
        }
        let delta = (
            Qty(totals.0.0 - b.0.0),
            Cash((totals.1.0 - b.1.0).max(0)),
            Cash((totals.2.0 - b.2.0).max(0)),
        );
        self.book(i, delta, view, Source::Poll)
    }
}

/// An order's end as the core hears it: a post-only order cancelled on arrival is a
/// rejection (it never rested).
fn ended(cl_id: ClientId, e: &Exec<'_>) -> OrderEvent {
    let filled = e.cum_qty.is_some_and(|q| q.0 > 0);
    match e.reason {
        Some(b"Post only order") if !filled => OrderEvent::Rejected {
            cl_id,
            reason: RejectReason::PostOnly,
        },
        Some(b"User requested") => OrderEvent::Cancelled {
            cl_id,
            reason: CancelReason::Requested,
        },
        _ if e.exec_type == b"expired" => OrderEvent::Cancelled {
            cl_id,
            reason: CancelReason::Expired,
        },
        Some(r) if r.starts_with(b"Immediate") => OrderEvent::Cancelled {
            cl_id,
            reason: CancelReason::Expired,
        },
        _ => OrderEvent::Cancelled {
            cl_id,
            reason: CancelReason::Exchange,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// A core stand-in: what it has booked per id, applying the ledger's fills as the core's
    /// order manager does (cumulative; only an increase books).
    struct Core(RefCell<HashMap<ClientId, Booked>>, RefCell<Qty>);

    impl Core {
        fn new(ids: &[ClientId]) -> Core {
            Core(
                RefCell::new(
                    ids.iter()
                        .map(|&i| (i, (Qty(0), Cash(0), Cash(0))))
                        .collect(),
                ),
                RefCell::new(Qty(0)),
            )
        }
        fn view(&self) -> impl Fn(ClientId) -> Option<Booked> + '_ {
            |id| self.0.borrow().get(&id).copied()
        }
        fn apply(&self, ev: Option<OrderEvent>) {
            if let Some(OrderEvent::Fill {
                cl_id,
                cum_qty,
                cum_cost,
                cum_fee,
            }) = ev
            {
                let mut m = self.0.borrow_mut();
                let o = m.get_mut(&cl_id).expect("known id");
                assert!(cum_qty > o.0, "the ledger only hands over increases");
                let pos = self.1.borrow().0 + cum_qty.0 - o.0.0;
                *self.1.borrow_mut() = Qty(pos);
                *o = (cum_qty, cum_cost, cum_fee);
            }
        }
        fn position(&self) -> u64 {
            self.1.borrow().0
        }
    }

    fn trade<'a>(cl: &'a [u8], exec_id: &'a [u8], last: u64, cum: Option<u64>) -> Exec<'a> {
        Exec {
            order_id: b"OX",
            cl_ord_id: Some(cl),
            exec_id: Some(exec_id),
            exec_type: b"trade",
            order_status: b"partially_filled",
            last_qty: Some(Qty(last)),
            cost: Some(Cash(i128::from(last) * 100)),
            fee: Some(Cash(i128::from(last))),
            cum_qty: cum.map(Qty),
            cum_cost: cum.map(|c| Cash(i128::from(c) * 100)),
            ..Exec::default()
        }
    }

    #[test]
    fn a_duplicated_or_replayed_fill_is_booked_once() {
        let core = Core::new(&[0x10]);
        let mut l = FillLedger::default();
        let e = trade(b"wb10", b"T1", 5, Some(5));
        core.apply(l.on_exec(&e, &core.view(), &|_| true));
        core.apply(l.on_exec(&e, &core.view(), &|_| true));
        // The reconnect snapshot repeats it without totals.
        core.apply(l.on_exec(&trade(b"wb10", b"T1", 5, None), &core.view(), &|_| true));
        assert_eq!(core.position(), 5);
        assert_eq!(l.stats.duplicate_execs, 2);
        assert_eq!(l.stats.fills_ws, 1);
        // Fee and cost came with it, exactly.
        assert_eq!(core.0.borrow()[&0x10], (Qty(5), Cash(500), Cash(5)));
    }

    #[test]
    fn stream_and_poll_never_book_the_same_fill_twice_in_either_order() {
        let core = Core::new(&[0x20]);
        let mut l = FillLedger::default();
        // Stream first, then a poll that shows the same (and a lagging one that shows less).
        core.apply(l.on_exec(&trade(b"wb20", b"A", 3, Some(3)), &core.view(), &|_| true));
        core.apply(l.on_totals(0x20, 0x20, (Qty(0), Cash(0), Cash(0)), &core.view()));
        core.apply(l.on_totals(0x20, 0x20, (Qty(3), Cash(300), Cash(3)), &core.view()));
        assert_eq!(core.position(), 3);
        // Poll first (a fill the stream has not delivered yet), then the stream.
        core.apply(l.on_totals(0x20, 0x20, (Qty(7), Cash(700), Cash(7)), &core.view()));
        core.apply(l.on_exec(&trade(b"wb20", b"B", 4, Some(7)), &core.view(), &|_| true));
        assert_eq!(core.position(), 7);
        assert_eq!(core.0.borrow()[&0x20], (Qty(7), Cash(700), Cash(7)));
        assert_eq!((l.stats.fills_ws, l.stats.fills_poll), (1, 1));
    }

    #[test]
    fn an_amended_order_is_one_order_under_two_ids() {
        // 0x30 is amended into 0x31: Kraken keeps the order and its cl_ord_id "wb30".
        let core = Core::new(&[0x30, 0x31]);
        let mut l = FillLedger::default();
        // A fill streams in before the worker's word of the amend: booked under 0x30.
        core.apply(l.on_exec(&trade(b"wb30", b"X1", 2, Some(2)), &core.view(), &|_| true));
        l.bind(0x30, 0x31, &core.view());
        // The poll reports the order's totals under its new owner: nothing new.
        core.apply(l.on_totals(0x30, 0x31, (Qty(2), Cash(200), Cash(2)), &core.view()));
        assert_eq!(core.position(), 2, "booked once, though under the old id");
        // The next fill goes to the new owner.
        core.apply(l.on_exec(&trade(b"wb30", b"X2", 1, Some(3)), &core.view(), &|_| true));
        assert_eq!(core.0.borrow()[&0x31].0, Qty(1));
        assert_eq!(core.position(), 3);
    }

    #[test]
    fn a_snapshot_fill_without_totals_never_overstates() {
        let core = Core::new(&[0x40]);
        let mut l = FillLedger::default();
        // A poll booked 6 (two fills whose exec ids the stream never showed us) ...
        core.apply(l.on_totals(0x40, 0x40, (Qty(6), Cash(600), Cash(6)), &core.view()));
        // ... then the reconnect snapshot lists one of them, without totals.
        core.apply(l.on_exec(&trade(b"wb40", b"S2", 3, None), &core.view(), &|_| true));
        assert_eq!(core.position(), 6, "3 seen is not above the 6 booked");
        assert_eq!(l.stats.already_booked, 1);
    }

    #[test]
    fn a_snapshot_never_books_history_of_orders_that_are_over() {
        // After a restart: 0x60 was amended into 0x61 in the last run, which booked its fill
        // under 0x61. The snapshot's last-50 fills name the order by its cl_ord_id "wb60".
        let core = Core::new(&[0x60, 0x61, 0x62]);
        core.0
            .borrow_mut()
            .insert(0x61, (Qty(4), Cash(400), Cash(4)));
        let mut l = FillLedger::default();
        let ended = |_| false;
        core.apply(l.on_exec(&trade(b"wb60", b"H1", 4, None), &core.view(), &ended));
        assert_eq!(
            core.0.borrow()[&0x60].0,
            Qty(0),
            "not booked again under 0x60"
        );
        // A real-time fill carries Kraken's totals and is booked even after the cancel
        // (a fill racing it).
        core.apply(l.on_exec(&trade(b"wb62", b"H2", 1, Some(1)), &core.view(), &ended));
        assert_eq!(core.0.borrow()[&0x62].0, Qty(1));
    }

    #[test]
    fn other_clients_orders_and_ends() {
        let core = Core::new(&[0x50]);
        let mut l = FillLedger::default();
        assert_eq!(
            l.on_exec(&trade(b"arb-1", b"F1", 9, Some(9)), &core.view(), &|_| true),
            None
        );
        let mut e = trade(b"", b"F2", 9, Some(9));
        e.cl_ord_id = None;
        assert_eq!(l.on_exec(&e, &core.view(), &|_| true), None);
        assert_eq!(l.stats.foreign, 2);
        assert_eq!(core.position(), 0);
        let cancel = |reason: &'static [u8], cum: u64| Exec {
            cl_ord_id: Some(b"wb50"),
            exec_type: b"canceled",
            reason: Some(reason),
            cum_qty: Some(Qty(cum)),
            ..Exec::default()
        };
        assert_eq!(
            l.on_exec(&cancel(b"Post only order", 0), &core.view(), &|_| true),
            Some(OrderEvent::Rejected {
                cl_id: 0x50,
                reason: RejectReason::PostOnly
            })
        );
        assert_eq!(
            l.on_exec(&cancel(b"User requested", 1), &core.view(), &|_| true),
            Some(OrderEvent::Cancelled {
                cl_id: 0x50,
                reason: CancelReason::Requested
            })
        );
    }
}
