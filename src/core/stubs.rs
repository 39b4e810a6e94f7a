//! Test fixtures for the core's own tests: settings, a synthetic Kraken BTC/USD stream with
//! correct checksums, and the recorded Kraken frames in `tests/data/`.
//!
//! The core's tests use these instead of the simulator's market, the benchmark's stream or
//! the backtester's file reader, so the core depends on nothing outside `core/`, even in its
//! tests. The stream is deliberately wild (a fast random walk with wicks and frequent trades):
//! its job is to make the strategy quote, the paper venue fill and the book churn.

use crate::core::book::{Book, ChecksumFormat};
use crate::core::money::{Price, Qty};
use crate::core::settings::Settings;
use crate::core::time::{MS, Nanos, format_rfc3339};
use crate::core::wire::parse::{BookHeader, RawLevel};

/// The seed settings, with quoting allowed in a quiet market (no volatility gate).
pub fn settings() -> Settings {
    Settings {
        min_volatility_bps: 0.0,
        ..Settings::default()
    }
}

/// SplitMix64: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// Price units (0.1 USD) between two levels of a side.
const LEVEL_STEP: i64 = 10;
/// Half the spread, price units.
const HALF_SPREAD: i64 = 5;

/// A seeded market: mid in price units, `depth` levels a side on a 1 USD grid.
struct Market {
    rng: Rng,
    depth: usize,
    mid: i64,
    /// A wick's excursion still to revert, price units.
    wick: i64,
    /// Level quantities by distance from the touch (lots), per side.
    qty: [Vec<u64>; 2],
    /// The book as published, for the checksum.
    mirror: Book,
    /// Published levels (bids best first, asks best first).
    shown: [Vec<(i64, u64)>; 2],
    t: Nanos,
    trade_id: u64,
}

impl Market {
    fn new(seed: u64, depth: usize) -> Market {
        let mut rng = Rng(seed);
        let qty = [0, 1].map(|_| {
            (0..depth)
                .map(|_| 1_000_000 + rng.below(200_000_000))
                .collect()
        });
        Market {
            rng,
            depth,
            mid: 600_000,
            wick: 0,
            qty,
            mirror: Book::new(depth as u16, 1, 8, ChecksumFormat::AS_WRITTEN),
            shown: [Vec::new(), Vec::new()],
            t: 1_790_000_000_000_000_000,
            trade_id: 0,
        }
    }

    fn desired(&self) -> [Vec<(i64, u64)>; 2] {
        let bid = self.mid - HALF_SPREAD;
        let ask = self.mid + HALF_SPREAD;
        [
            (0..self.depth)
                .map(|i| (bid - i as i64 * LEVEL_STEP, self.qty[0][i]))
                .collect(),
            (0..self.depth)
                .map(|i| (ask + i as i64 * LEVEL_STEP, self.qty[1][i]))
                .collect(),
        ]
    }

    /// The levels of `side` that changed from `shown` to `want`: new or resized levels, and
    /// deletions (qty 0) of the ones that left.
    fn diff(shown: &[(i64, u64)], want: &[(i64, u64)]) -> Vec<(i64, u64)> {
        let mut out: Vec<(i64, u64)> = want
            .iter()
            .filter(|l| !shown.contains(l))
            .copied()
            .collect();
        out.extend(
            shown
                .iter()
                .filter(|(p, _)| !want.iter().any(|(q, _)| q == p))
                .map(|(p, _)| (*p, 0)),
        );
        out
    }

    fn raw(levels: &[(i64, u64)]) -> Vec<RawLevel> {
        levels
            .iter()
            .map(|&(p, q)| RawLevel {
                price: Price(p),
                qty: Qty(q),
                price_dec: 1,
                qty_dec: 8,
            })
            .collect()
    }

    fn book_frame(&mut self, snapshot: bool) -> String {
        let want = self.desired();
        let (bids, asks) = if snapshot {
            (want[0].clone(), want[1].clone())
        } else {
            (
                Market::diff(&self.shown[0], &want[0]),
                Market::diff(&self.shown[1], &want[1]),
            )
        };
        let header = BookHeader {
            snapshot,
            checksum: None,
            exchange_ts: None,
        };
        let _ = self
            .mirror
            .apply(&header, &Market::raw(&bids), &Market::raw(&asks));
        let checksum = self.mirror.checksum();
        self.shown = want;
        let levels = |v: &[(i64, u64)]| {
            v.iter()
                .map(|&(p, q)| {
                    format!(
                        r#"{{"price":{}.{},"qty":{}.{:08}}}"#,
                        p / 10,
                        p % 10,
                        q / 100_000_000,
                        q % 100_000_000
                    )
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            r#"{{"channel":"book","type":"{}","data":[{{"symbol":"BTC/USD","bids":[{}],"asks":[{}],"checksum":{checksum},"timestamp":"{}"}}]}}"#,
            if snapshot { "snapshot" } else { "update" },
            levels(&bids),
            levels(&asks),
            format_rfc3339(self.t)
        )
    }

    fn trade_frame(&mut self) -> String {
        let buy = self.rng.chance(500);
        let price = if buy {
            self.mid + HALF_SPREAD
        } else {
            self.mid - HALF_SPREAD
        };
        let qty = 100_000 + self.rng.below(5_000_000);
        self.trade_id += 1;
        format!(
            r#"{{"channel":"trade","type":"update","data":[{{"symbol":"BTC/USD","side":"{}","price":{}.{},"qty":0.{:08},"ord_type":"limit","trade_id":{},"timestamp":"{}"}}]}}"#,
            if buy { "buy" } else { "sell" },
            price / 10,
            price % 10,
            qty,
            self.trade_id,
            format_rfc3339(self.t)
        )
    }

    /// One step of the walk: a few dollars either way, now and then a wick of 10-40 bps that
    /// comes back over the next steps; quantities near the touch change.
    fn walk(&mut self) {
        let step = self.rng.below(61) as i64 - 30;
        self.mid += step;
        if self.wick == 0 && self.rng.chance(2) {
            let size = 600 + self.rng.below(1800) as i64;
            self.wick = if self.rng.chance(500) { size } else { -size };
            self.mid += self.wick;
        } else if self.wick != 0 {
            let back = self.wick.signum() * self.wick.abs().min(120);
            self.mid -= back;
            self.wick -= back;
        }
        for _ in 0..2 {
            let side = self.rng.below(2) as usize;
            let i = self.rng.below(self.depth.min(4) as u64) as usize;
            self.qty[side][i] = 1_000_000 + self.rng.below(200_000_000);
        }
    }

    fn next(&mut self) -> (Nanos, String) {
        self.t += 3 * MS + self.rng.below(1_000_000) as Nanos;
        if self.rng.chance(60) {
            return (self.t, self.trade_frame());
        }
        self.walk();
        (self.t, self.book_frame(false))
    }
}

/// `n` frames of a seeded synthetic BTC/USD market at book depth 10: a snapshot, then book
/// updates and trades about 3.5 ms apart, each with its receive time.
pub fn frames(n: usize, seed: u64) -> Vec<(Nanos, String)> {
    frames_at_depth(n, seed, 10)
}

/// [`frames`] at another book depth.
pub fn frames_at_depth(n: usize, seed: u64, depth: usize) -> Vec<(Nanos, String)> {
    let mut m = Market::new(seed, depth);
    let mut out = Vec::with_capacity(n);
    out.push((m.t, m.book_frame(true)));
    while out.len() < n {
        out.push(m.next());
    }
    out
}

/// Every frame of every recorded Kraken file in `tests/data/`: raw lines, the recorder's
/// `{"rx_ns":..,"frame":..}` lines, and the python-kraken-sdk fixture's `init` and `updates`.
pub fn recorded_frames() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        if !path.is_file() || path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text)
            && doc.get("updates").is_some()
        {
            let init = doc.get("init").into_iter();
            let updates = doc["updates"].as_array().into_iter().flatten();
            out.extend(init.chain(updates).map(|v| v.to_string().into_bytes()));
            continue;
        }
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Option<serde_json::Value> = serde_json::from_str(line).ok();
            match v.as_ref().and_then(|v| v.get("frame")) {
                Some(serde_json::Value::String(s)) => out.push(s.clone().into_bytes()),
                Some(f) => out.push(f.to_string().into_bytes()),
                None => out.push(line.as_bytes().to_vec()),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::wire::parse::{Message, Parser};

    /// The fixture stream is what the core tests say it is: every checksum verifies against
    /// an independent book, at depth 10 and 25, and it trades.
    #[test]
    fn synthetic_frames_carry_correct_checksums() {
        for depth in [10u16, 25] {
            let frames = frames_at_depth(3_000, 7, usize::from(depth));
            let mut p = Parser::new("BTC/USD", 1, 8);
            let mut b = Book::new(depth, 1, 8, ChecksumFormat::AS_WRITTEN);
            let (mut verified, mut trades) = (0, 0);
            for (_, f) in &frames {
                match p.parse(f.as_bytes()).unwrap() {
                    Message::Book(h) => {
                        let applied = b.apply(&h, p.bids(), p.asks()).unwrap();
                        assert!(applied.checksum_matched);
                        verified += 1;
                    }
                    Message::Trades(_) => trades += 1,
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert!(verified > 2_500 && trades > 100, "{verified} {trades}");
        }
    }

    #[test]
    fn recorded_frames_are_found() {
        assert!(recorded_frames().len() > 500);
    }
}
