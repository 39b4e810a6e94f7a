//! A seeded synthetic BTC/USD market that speaks Kraken WS v2.
//!
//! A random walk with volatility regimes (calm / active / wild) moves a fair price; a deep
//! "true" book follows it, with random size changes, level inserts and deletes; public trades
//! consume the touch. Each step is published as Kraken publishes it: `book` updates of 1–2
//! changed levels of the subscribed depth each (levels pushed out of scope are not deleted,
//! levels that enter scope after a delete are sent), each with the CRC32 checksum of the
//! book after it, or a `trade` message followed by the updates it causes. Numbers are written with the instrument's decimals,
//! trailing zeros included, like the live feed.
//!
//! The same seed gives byte-identical frames. Used by `wildbot bench`, the tests, and the
//! Kraken simulator.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::core::book::{Book, ChecksumFormat};
use crate::core::money::{Price, Qty};
use crate::core::time::{Nanos, format_rfc3339};
use crate::core::wire::parse::{BookHeader, RawLevel};

/// Settings of the synthetic market.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    /// RNG seed.
    pub seed: u64,
    /// WS symbol.
    pub symbol: String,
    /// Published depth.
    pub depth: u16,
    /// Price decimals.
    pub price_precision: u8,
    /// Quantity decimals.
    pub qty_precision: u8,
    /// Starting fair price in price units (600000.0 → 60000.0 USD at precision 1).
    pub start_price: i64,
    /// Timestamp of the first frame.
    pub start_ns: Nanos,
    /// Mean time between frames.
    pub mean_step_ns: Nanos,
    /// Probability that a step is a trade rather than a book change.
    pub trade_probability: f64,
    /// Multiplier of the fair price's volatility (1 = the bench market).
    pub volatility: f64,
    /// Probability that a trade step is a sweep: a large market order that takes every level
    /// up to 10–40 bps from the touch, leaving a wick the makers refill (0 in the bench).
    pub sweep_probability: f64,
}

impl Default for SynthConfig {
    fn default() -> SynthConfig {
        SynthConfig {
            seed: 42,
            symbol: "BTC/USD".into(),
            depth: 10,
            price_precision: 1,
            qty_precision: 8,
            start_price: 600_000,
            // 2026-01-01T00:00:00Z
            start_ns: 1_767_225_600_000_000_000,
            mean_step_ns: 10_000_000,
            trade_probability: 0.15,
            volatility: 1.0,
            sweep_probability: 0.0,
        }
    }
}

/// One side of a published book view: (price units, lots), best first.
type SideView = Vec<(i64, u64)>;

/// Volatility regimes: per-step standard deviation of the fair price in bps.
const REGIMES: [f64; 3] = [0.05, 0.25, 0.6];

/// The synthetic market.
#[derive(Debug)]
pub struct SynthMarket {
    cfg: SynthConfig,
    rng: ChaCha8Rng,
    fair: f64,
    regime: usize,
    bids: BTreeMap<i64, u64>,
    asks: BTreeMap<i64, u64>,
    mirror: Book,
    now: Nanos,
    trade_id: u64,
    /// Frames of the current step not yet handed out (the rest of a split update).
    pending: VecDeque<String>,
    last_trade: Option<(u64, bool, i64, u64)>,
}

impl SynthMarket {
    /// A market at `cfg.start_price` with a full book.
    #[must_use]
    pub fn new(cfg: SynthConfig) -> SynthMarket {
        let mut m = SynthMarket {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            fair: cfg.start_price as f64,
            regime: 1,
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            mirror: Book::new(
                cfg.depth,
                cfg.price_precision,
                cfg.qty_precision,
                ChecksumFormat::precision(cfg.price_precision, cfg.qty_precision),
            ),
            now: cfg.start_ns,
            trade_id: 1,
            pending: VecDeque::new(),
            last_trade: None,
            cfg,
        };
        m.refill();
        // Keep the checksum mirror in step from the start, so updates published before any
        // client subscribed are consistent too.
        let _ = m.snapshot_frame();
        m
    }

    /// Best bid and ask of the true book, in price units.
    #[must_use]
    pub fn touch(&self) -> Option<(i64, i64)> {
        Some((*self.bids.keys().next_back()?, *self.asks.keys().next()?))
    }

    /// The trade of the last trade step: (trade id, taker buys, price units, lots).
    #[must_use]
    pub fn last_trade(&self) -> Option<(u64, bool, i64, u64)> {
        self.last_trade
    }

    /// Current time of the market.
    #[must_use]
    pub fn now(&self) -> Nanos {
        self.now
    }

    /// The subscribed-depth view of the true book as a snapshot frame; also resets the
    /// mirror used for checksums.
    pub fn snapshot_frame(&mut self) -> String {
        // An update still pending (the book side of a trade) is already in this snapshot, and
        // its checksum was computed before it: never send it after the snapshot.
        self.pending.clear();
        let bids: Vec<(i64, u64)> = self
            .bids
            .iter()
            .rev()
            .take(self.depth())
            .map(|(p, q)| (*p, *q))
            .collect();
        let asks: Vec<(i64, u64)> = self
            .asks
            .iter()
            .take(self.depth())
            .map(|(p, q)| (*p, *q))
            .collect();
        let raw = |v: &[(i64, u64)]| v.iter().map(|&(p, q)| self.raw(p, q)).collect::<Vec<_>>();
        let header = BookHeader {
            snapshot: true,
            checksum: None,
            exchange_ts: None,
        };
        let _ = self.mirror.apply(&header, &raw(&bids), &raw(&asks));
        let checksum = self.mirror.checksum();
        self.book_frame("snapshot", &bids, &asks, checksum)
    }

    /// The next frame (book update or trade) and its timestamp.
    pub fn next_frame(&mut self) -> (Nanos, String) {
        if let Some(f) = self.pending.pop_front() {
            return (self.now, f);
        }
        let jitter: f64 = self.rng.random_range(0.2..1.8);
        self.now += (self.cfg.mean_step_ns as f64 * jitter) as Nanos;
        if self.rng.random_bool(self.cfg.trade_probability) {
            let trade = self.trade_step();
            return (self.now, trade);
        }
        let before = self.view();
        self.walk();
        self.publish(&before);
        let first = self.pending.pop_front().unwrap_or_default();
        (self.now, first)
    }

    /// Whether the current step still has frames to hand out.
    #[must_use]
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    fn depth(&self) -> usize {
        usize::from(self.cfg.depth)
    }

    fn raw(&self, p: i64, q: u64) -> RawLevel {
        RawLevel {
            price: Price(p),
            qty: Qty(q),
            price_dec: self.cfg.price_precision,
            qty_dec: self.cfg.qty_precision,
        }
    }

    fn random_qty(&mut self) -> u64 {
        // 0.0001 .. ~2.5 BTC, skewed small.
        let lots_per_unit = 10u64.pow(u32::from(self.cfg.qty_precision));
        let x: f64 = self.rng.random_range(0.0f64..1.0);
        ((x * x * x * 2.5 + 0.0001) * lots_per_unit as f64) as u64
    }

    /// Moves the fair price and reshapes the book around it.
    fn walk(&mut self) {
        if self.rng.random_bool(0.002) {
            self.regime = self.rng.random_range(0..REGIMES.len());
        }
        // Sum of uniforms: cheap, bounded, roughly normal.
        let z: f64 = (0..4)
            .map(|_| self.rng.random_range(-1.0f64..1.0))
            .sum::<f64>()
            * 0.866;
        let drift = (self.cfg.start_price as f64 - self.fair) * 1e-5; // keep it in range
        self.fair *= 1.0 + z * REGIMES[self.regime] * self.cfg.volatility / 10_000.0;
        self.fair += drift;
        let spread: i64 = self.rng.random_range(1..=4);
        let best_bid = (self.fair - spread as f64 / 2.0).floor() as i64;
        let best_ask = best_bid + spread;
        // Levels the fair price moved through are gone.
        self.bids.retain(|p, _| *p <= best_bid);
        self.asks.retain(|p, _| *p >= best_ask);
        if !self.bids.contains_key(&best_bid) {
            let q = self.random_qty();
            self.bids.insert(best_bid, q);
        }
        if !self.asks.contains_key(&best_ask) {
            let q = self.random_qty();
            self.asks.insert(best_ask, q);
        }
        // A few random size changes, deletes and inserts within the visible depth.
        for _ in 0..self.rng.random_range(0..3) {
            let is_bid = self.rng.random_bool(0.5);
            let offset: i64 = self.rng.random_range(0..(self.cfg.depth as i64 * 2));
            let price = if is_bid {
                best_bid - offset
            } else {
                best_ask + offset
            };
            let del = self.rng.random_bool(0.3) && offset > 0;
            let q = self.random_qty();
            let side = if is_bid {
                &mut self.bids
            } else {
                &mut self.asks
            };
            if del {
                side.remove(&price);
            } else {
                side.insert(price, q);
            }
        }
        self.refill();
    }

    /// Keeps the true book deeper than what is published.
    fn refill(&mut self) {
        let want = self.depth() + 10;
        let fair = self.fair as i64;
        while self.bids.len() < want {
            let worst = self.bids.keys().next().copied().unwrap_or(fair);
            let gap = self.rng.random_range(1..=3);
            let q = self.random_qty();
            self.bids.insert(worst - gap, q);
        }
        while self.asks.len() < want {
            let worst = self.asks.keys().next_back().copied().unwrap_or(fair + 1);
            let gap = self.rng.random_range(1..=3);
            let q = self.random_qty();
            self.asks.insert(worst + gap, q);
        }
    }

    fn view(&self) -> (SideView, SideView) {
        (
            self.bids
                .iter()
                .rev()
                .take(self.depth())
                .map(|(p, q)| (*p, *q))
                .collect(),
            self.asks
                .iter()
                .take(self.depth())
                .map(|(p, q)| (*p, *q))
                .collect(),
        )
    }

    /// Queues the updates that turn the published view `before` into the current one.
    ///
    /// Kraken sends a book change as several small messages (1.3–2.1 levels each in the
    /// recorded feeds under tests/data), each with the checksum of the book after it, not as
    /// one diff of the whole step. So the step's changes go out in messages of 1–2 levels,
    /// deletions first, and a message that empties a slot also carries its replacement: every
    /// intermediate book is full, a subset of the true book, and never crossed.
    fn publish(&mut self, before: &(SideView, SideView)) {
        let after = self.view();
        let diff = |old: &[(i64, u64)], new: &[(i64, u64)], truth: &BTreeMap<i64, u64>| {
            let mut out = Vec::new();
            for &(p, _) in old {
                // Deleted for real: say so. Merely out of scope: the client truncates.
                if !new.iter().any(|&(np, _)| np == p) && !truth.contains_key(&p) {
                    out.push((p, 0));
                }
            }
            for &(p, q) in new {
                if !old.contains(&(p, q)) {
                    out.push((p, q));
                }
            }
            out
        };
        let bids = diff(&before.0, &after.0, &self.bids);
        let asks = diff(&before.1, &after.1, &self.asks);
        let mut changes: Vec<(bool, i64, u64)> = bids
            .iter()
            .map(|&(p, q)| (true, p, q))
            .chain(asks.iter().map(|&(p, q)| (false, p, q)))
            .collect();
        changes.sort_by_key(|c| c.2 != 0);
        if changes.is_empty() {
            self.queue_update(&[], &[]);
            return;
        }
        let mut rest: VecDeque<(bool, i64, u64)> = changes.into();
        while !rest.is_empty() {
            let n = self.rng.random_range(1..=2usize).min(rest.len());
            let mut chunk: Vec<(bool, i64, u64)> = rest.drain(..n).collect();
            // Like Kraken, a message that deletes a level also brings in the level that takes
            // its place, so the book stays at the full depth.
            // A level brought in early must not cross a deletion still to come: that
            // deletion comes along too (and may need its own replacement).
            let mut changed = true;
            while changed {
                changed = false;
                for bid in [true, false] {
                    while self.levels_after(bid, &chunk) < self.depth() {
                        let Some(i) = rest
                            .iter()
                            .position(|c| c.0 == bid && c.2 != 0 && !self.mirror_has(bid, c.1))
                        else {
                            break;
                        };
                        let Some(level) = rest.remove(i) else { break };
                        chunk.push(level);
                        let crosses = |c: &(bool, i64, u64)| {
                            c.0 != bid
                                && c.2 == 0
                                && if bid { c.1 <= level.1 } else { c.1 >= level.1 }
                        };
                        chunk.extend(rest.iter().filter(|c| crosses(c)));
                        rest.retain(|c| !crosses(c));
                        changed = true;
                    }
                }
            }
            let side = |bid: bool| -> Vec<(i64, u64)> {
                chunk
                    .iter()
                    .filter(|c| c.0 == bid)
                    .map(|c| (c.1, c.2))
                    .collect()
            };
            self.queue_update(&side(true), &side(false));
        }
    }

    fn mirror_has(&self, bid: bool, price: i64) -> bool {
        if bid {
            self.mirror.bids().any(|l| l.price.0 == price)
        } else {
            self.mirror.asks().any(|l| l.price.0 == price)
        }
    }

    /// Levels one side of the mirror would hold after `chunk` (before truncation).
    fn levels_after(&self, bid: bool, chunk: &[(bool, i64, u64)]) -> usize {
        let now = if bid {
            self.mirror.bids().len()
        } else {
            self.mirror.asks().len()
        };
        chunk.iter().filter(|c| c.0 == bid).fold(now, |n, c| {
            match (self.mirror_has(bid, c.1), c.2 == 0) {
                (true, true) => n - 1,
                (false, false) => n + 1,
                _ => n,
            }
        })
    }

    /// Applies one update to the checksum mirror and queues its frame.
    fn queue_update(&mut self, bids: &[(i64, u64)], asks: &[(i64, u64)]) {
        let header = BookHeader {
            snapshot: false,
            checksum: None,
            exchange_ts: None,
        };
        let rb: Vec<_> = bids.iter().map(|&(p, q)| self.raw(p, q)).collect();
        let ra: Vec<_> = asks.iter().map(|&(p, q)| self.raw(p, q)).collect();
        let _ = self.mirror.apply(&header, &rb, &ra);
        let checksum = self.mirror.checksum();
        let frame = self.book_frame("update", bids, asks, checksum);
        self.pending.push_back(frame);
    }

    /// A taker trade at the touch and the book update it causes.
    fn trade_step(&mut self) -> String {
        let before = self.view();
        let buy = self.rng.random_bool(0.5);
        let side = if buy { &mut self.asks } else { &mut self.bids };
        let (price, avail) = if buy {
            side.iter().next().map(|(p, q)| (*p, *q)).unwrap_or((0, 0))
        } else {
            side.iter()
                .next_back()
                .map(|(p, q)| (*p, *q))
                .unwrap_or((0, 0))
        };
        let sweep = self.cfg.sweep_probability > 0.0
            && self.rng.random_bool(self.cfg.sweep_probability.min(1.0));
        let (price, take) = if sweep {
            // Every level up to `limit` goes and the last fill prints at `limit` (the true
            // book here is only a few levels deep; a real one has liquidity that far out).
            let bps: f64 = self.rng.random_range(10.0..40.0);
            let reach = (price as f64 * bps / 10_000.0) as i64;
            let limit = if buy { price + reach } else { price - reach };
            let hit: Vec<(i64, u64)> = if buy {
                side.range(..=limit).map(|(p, q)| (*p, *q)).collect()
            } else {
                side.range(limit..).map(|(p, q)| (*p, *q)).collect()
            };
            for (p, _) in &hit {
                side.remove(p);
            }
            (limit, hit.iter().map(|l| l.1).sum::<u64>().max(1))
        } else {
            let take = (avail as f64 * self.rng.random_range(0.1f64..1.0)).max(1.0) as u64;
            let take = take.min(avail);
            if take >= avail {
                side.remove(&price);
            } else {
                side.insert(price, avail - take);
            }
            (price, take)
        };
        self.refill();
        let id = self.trade_id;
        self.trade_id += 1;
        self.last_trade = Some((id, buy, price, take));
        let mut s = String::with_capacity(220);
        let _ = write!(
            s,
            r#"{{"channel":"trade","type":"update","data":[{{"symbol":"{}","side":"{}","price":{},"qty":{},"ord_type":"market","trade_id":{},"timestamp":"{}"}}]}}"#,
            self.cfg.symbol,
            if buy { "buy" } else { "sell" },
            Price(price).show(self.cfg.price_precision),
            Qty(take).show(self.cfg.qty_precision),
            id,
            format_rfc3339(self.now)
        );
        self.publish(&before);
        s
    }

    fn book_frame(
        &self,
        typ: &str,
        bids: &[(i64, u64)],
        asks: &[(i64, u64)],
        checksum: u32,
    ) -> String {
        let mut s = String::with_capacity(128 + 48 * (bids.len() + asks.len()));
        let _ = write!(
            s,
            r#"{{"channel":"book","type":"{typ}","data":[{{"symbol":"{}","bids":["#,
            self.cfg.symbol
        );
        self.levels(&mut s, bids);
        s.push_str(r#"],"asks":["#);
        self.levels(&mut s, asks);
        let _ = write!(
            s,
            r#"],"checksum":{checksum},"timestamp":"{}"}}]}}"#,
            format_rfc3339(self.now)
        );
        s
    }

    fn levels(&self, s: &mut String, v: &[(i64, u64)]) {
        for (i, &(p, q)) in v.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(
                s,
                r#"{{"price":{},"qty":{}}}"#,
                Price(p).show(self.cfg.price_precision),
                Qty(q).show(self.cfg.qty_precision)
            );
        }
    }
}

/// `n` frames (after a snapshot) with their timestamps: the snapshot first.
#[must_use]
pub fn generate(cfg: SynthConfig, n: usize) -> Vec<(Nanos, String)> {
    let mut m = SynthMarket::new(cfg);
    let mut out = Vec::with_capacity(n + 1);
    let t = m.now();
    out.push((t, m.snapshot_frame()));
    for _ in 0..n {
        out.push(m.next_frame());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::wire::parse::{Message, Parser};

    #[test]
    fn same_seed_same_bytes() {
        let a = generate(SynthConfig::default(), 2_000);
        let b = generate(SynthConfig::default(), 2_000);
        assert_eq!(a, b);
        let c = generate(
            SynthConfig {
                seed: 7,
                ..SynthConfig::default()
            },
            2_000,
        );
        assert_ne!(a, c);
    }

    #[test]
    fn updates_are_as_small_as_kraken_sends_them() {
        // The recorded Kraken feeds in tests/data average 1.3-2.1 levels per update.
        let frames = generate(SynthConfig::default(), 20_000);
        let mut p = Parser::new("BTC/USD", 1, 8);
        let (mut updates, mut levels) = (0usize, 0usize);
        for (_, f) in &frames[1..] {
            if let Ok(Message::Book(h)) = p.parse(f.as_bytes()) {
                assert!(!h.snapshot);
                updates += 1;
                levels += p.bids().len() + p.asks().len();
            }
        }
        let mean = levels as f64 / updates as f64;
        assert!((1.2..=2.2).contains(&mean), "{mean} levels per update");
    }

    #[test]
    fn every_checksum_verifies_with_an_independent_book() {
        let frames = generate(
            SynthConfig {
                depth: 25,
                // Sweeps too: they must leave a consistent, uncrossed book.
                sweep_probability: 0.05,
                ..SynthConfig::default()
            },
            20_000,
        );
        let mut p = Parser::new("BTC/USD", 1, 8);
        let mut book = Book::new(25, 1, 8, ChecksumFormat::AS_WRITTEN);
        let (mut checked, mut trades) = (0, 0);
        for (_, f) in &frames {
            match p.parse(f.as_bytes()).unwrap() {
                Message::Book(h) => {
                    book.apply(&h, p.bids(), p.asks()).unwrap();
                    assert_eq!(book.bids().len(), 25);
                    assert_eq!(book.asks().len(), 25);
                    checked += 1;
                }
                Message::Trades(_) => trades += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(checked > 15_000 && trades > 500, "{checked} {trades}");
    }

    /// The simulator snapshots whenever a client subscribes: possibly between a trade and the
    /// book update it causes. What follows must still verify.
    #[test]
    fn a_snapshot_at_any_moment_is_followed_by_consistent_updates() {
        for seed in 70..80 {
            for skip in [0, 1, 2, 3, 7, 100] {
                let mut m = SynthMarket::new(SynthConfig {
                    seed,
                    sweep_probability: 0.01,
                    ..SynthConfig::default()
                });
                for _ in 0..skip {
                    m.next_frame();
                }
                let mut p = Parser::new("BTC/USD", 1, 8);
                let mut book = Book::new(10, 1, 8, ChecksumFormat::precision(1, 8));
                let snap = m.snapshot_frame();
                for f in std::iter::once(snap).chain((0..300).map(|_| m.next_frame().1)) {
                    if let Ok(Message::Book(h)) = p.parse(f.as_bytes()) {
                        book.apply(&h, p.bids(), p.asks())
                            .unwrap_or_else(|e| panic!("seed {seed} skip {skip}: {e:?} {f}"));
                    }
                }
            }
        }
    }
}
