//! Criterion benches of the trading core, and the same frames through a naive baseline.
//!
//! Every bench walks the same synthetic BTC/USD stream (raw JSON text frames, generated once):
//! - `Parser::parse`: frame → typed message;
//! - `Book::apply`: parse + book update + checksum;
//! - `Core::handle`: the whole core (parse → book → signals → paper fills → strategy → risk);
//! - `naive_baseline`: what a straightforward port would do — `serde_json::Value`, a `BTreeMap`
//!   keyed by an f64-derived price, `format!` for the checksum strings, f64 microprice.
//!
//! `core_vs_naive` runs the full core and the baseline on the same frames in one run; the
//! ratio of their times is the speed-up. The baseline does less than the core (no trades, no
//! signals beyond microprice, no strategy, risk or paper fills), so the group also times
//! `book_microprice`: exactly the baseline's work (parse, book, checksum, microprice) done the
//! core's way — the like-for-like ratio.
//!
//! Run: `cargo bench --bench core_criterion`.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wildbot::core::Core;
use wildbot::core::Settings;
use wildbot::core::book::{Book, ChecksumFormat};
use wildbot::core::event::{Event, Intent, MAX_INTENTS_PER_EVENT};
use wildbot::core::signals::microprice;
use wildbot::core::wire::parse::{Message, Parser};

const FRAMES: usize = 20_000;

fn frames() -> Vec<(i64, String)> {
    wildbot::devtools::bench::frames(FRAMES, 42)
}

/// Real recorded Kraken BTC/USD frames (tests/data, see its README): the python-kraken-sdk
/// fixture (510 book messages) and the DepthCharge capture (54), 1 ms apart.
fn recorded_frames() -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for file in [
        "pykrakensdk_book_v2.jsonl",
        "depthcharge_kraken_btcusd_d10_20260816.head.frames.jsonl",
    ] {
        let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
        let data = std::fs::read(&path).expect("tests/data is part of the repo");
        wildbot::backtest::feedfile::for_each_record(&data, |r| {
            let t = 1_767_225_600_000_000_000 + out.len() as i64 * 1_000_000;
            out.push((t, String::from_utf8_lossy(r.frame).into_owned()));
        })
        .expect("readable feed");
    }
    out
}

/// The naive book: f64 prices from `serde_json::Value`, keyed by `(price * 10).round()`.
struct NaiveBook {
    bids: BTreeMap<i64, (f64, f64)>,
    asks: BTreeMap<i64, (f64, f64)>,
    depth: usize,
}

impl NaiveBook {
    fn apply_side(map: &mut BTreeMap<i64, (f64, f64)>, levels: &serde_json::Value) {
        for l in levels.as_array().into_iter().flatten() {
            let price = l["price"].as_f64().unwrap_or(0.0);
            let qty = l["qty"].as_f64().unwrap_or(0.0);
            let key = (price * 10.0).round() as i64;
            if qty == 0.0 {
                map.remove(&key);
            } else {
                map.insert(key, (price, qty));
            }
        }
    }

    fn token(price: f64, qty: f64) -> String {
        let p = format!("{price:.1}").replace('.', "");
        let q = format!("{qty:.8}").replace('.', "");
        format!("{}{}", p.trim_start_matches('0'), q.trim_start_matches('0'))
    }

    /// Returns the microprice when the checksum matched.
    fn handle(&mut self, frame: &str) -> Option<f64> {
        let v: serde_json::Value = serde_json::from_str(frame).ok()?;
        if v["channel"].as_str()? != "book" {
            return None;
        }
        let d = &v["data"][0];
        if v["type"].as_str()? == "snapshot" {
            self.bids.clear();
            self.asks.clear();
        }
        Self::apply_side(&mut self.bids, &d["bids"]);
        Self::apply_side(&mut self.asks, &d["asks"]);
        while self.bids.len() > self.depth {
            let k = *self.bids.keys().next()?;
            self.bids.remove(&k);
        }
        while self.asks.len() > self.depth {
            let k = *self.asks.keys().next_back()?;
            self.asks.remove(&k);
        }
        let mut s = String::new();
        for (p, q) in self.asks.values().take(10) {
            s.push_str(&Self::token(*p, *q));
        }
        for (p, q) in self.bids.values().rev().take(10) {
            s.push_str(&Self::token(*p, *q));
        }
        if u64::from(crc32fast::hash(s.as_bytes())) != d["checksum"].as_u64()? {
            return None;
        }
        let (bp, bq) = *self.bids.values().next_back()?;
        let (ap, aq) = *self.asks.values().next()?;
        Some((bp * aq + ap * bq) / (bq + aq))
    }
}

fn bench(c: &mut Criterion) {
    let frames = frames();
    let n = frames.len() as u64;
    let cfg = Settings::default();

    let mut g = c.benchmark_group("stages");
    g.throughput(Throughput::Elements(n));
    g.bench_function("Parser::parse", |b| {
        let mut p = Parser::new("BTC/USD", 1, 8);
        b.iter(|| {
            for (_, f) in &frames {
                let _ = black_box(p.parse(black_box(f.as_bytes())));
            }
        });
    });
    g.bench_function("Book::apply", |b| {
        let mut p = Parser::new("BTC/USD", 1, 8);
        let mut book = Book::new(10, 1, 8, ChecksumFormat::precision(1, 8));
        b.iter(|| {
            for (_, f) in &frames {
                if let Ok(Message::Book(h)) = p.parse(f.as_bytes()) {
                    let _ = black_box(book.apply(&h, p.bids(), p.asks()));
                }
            }
        });
    });
    g.bench_function("Book::best_bid_ask", |b| {
        let mut p = Parser::new("BTC/USD", 1, 8);
        let mut book = Book::new(10, 1, 8, ChecksumFormat::precision(1, 8));
        if let Ok(Message::Book(h)) = p.parse(frames[0].1.as_bytes()) {
            book.apply(&h, p.bids(), p.asks())
                .expect("snapshot applies");
        }
        b.iter(|| {
            for _ in 0..frames.len() {
                black_box((black_box(&book).best_bid(), black_box(&book).best_ask()));
            }
        });
    });
    g.finish();

    core_vs_naive(c, "core_vs_naive", &frames, &cfg);
    core_vs_naive(c, "recorded_kraken", &recorded_frames(), &cfg);
}

/// The full core and the naive baseline over the same frames, in one group.
fn core_vs_naive(c: &mut Criterion, name: &str, frames: &[(i64, String)], cfg: &Settings) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("Core::handle", |b| {
        // One long-lived core, as in a real run (its buffers are warm); each pass over the
        // frames is shifted later in time so the clock never runs backwards.
        let mut core = Core::new(cfg, 1).expect("valid config");
        let mut out: Vec<Intent> = Vec::with_capacity(MAX_INTENTS_PER_EVENT);
        let span = frames.last().map_or(0, |l| l.0 - frames[0].0) + 1_000_000_000;
        let mut shift = 0;
        b.iter(|| {
            for (ts, f) in frames {
                core.handle(ts + shift, Event::Frame(f.as_bytes()), &mut out);
                out.clear();
            }
            shift += span;
        });
    });
    g.bench_function("naive_baseline", |b| {
        b.iter_batched_ref(
            || NaiveBook {
                bids: BTreeMap::new(),
                asks: BTreeMap::new(),
                depth: 10,
            },
            |book| {
                for (_, f) in frames {
                    black_box(book.handle(f));
                }
            },
            criterion::BatchSize::LargeInput,
        );
    });
    g.bench_function("book_microprice", |b| {
        let mut p = Parser::new("BTC/USD", 1, 8);
        let mut book = Book::new(10, 1, 8, ChecksumFormat::precision(1, 8));
        b.iter(|| {
            for (_, f) in frames {
                if let Ok(Message::Book(h)) = p.parse(f.as_bytes())
                    && book.apply(&h, p.bids(), p.asks()).is_ok()
                {
                    black_box(microprice(&book));
                }
            }
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
