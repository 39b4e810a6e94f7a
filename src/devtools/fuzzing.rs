//! Invariant checks driven by arbitrary bytes: shared by the cargo-fuzz targets in `fuzz/`
//! (coverage-guided, nightly) and the property tests in `tests/properties.rs` (random, every
//! `cargo test`), so both hunt for the same failures. Each function panics when an invariant
//! breaks — that is how a fuzzer sees a bug — and returns normally otherwise.
//!
//! - [`frames`]: raw WebSocket text through the parser and the whole core: never a panic; the
//!   book stays sorted, within its depth and uncrossed whenever it is valid.
//! - [`book_ops`]: arbitrary snapshot/update sequences (any prices and quantities, crossing,
//!   duplicates, deletes of absent levels, wrong checksums) straight into [`Book::apply`]:
//!   never a panic, sides sorted and within depth, a valid book is uncrossed.
//! - [`consistent_book`]: an exchange-side model book changed by arbitrary operations and
//!   published the way Kraken publishes (changed levels in any order within a message, levels
//!   that enter the subscribed depth after a delete, the checksum of the published view): our
//!   book must match every checksum and equal the model's view after every message.
//! - [`config_text`]: arbitrary text as a TOML config: never a panic, and a config that loads
//!   satisfies the validation rules.

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Result, Unstructured};

use crate::core::book::{Book, ChecksumFormat, KRAKEN_DEPTHS};
use crate::core::event::{Event, Intent, MAX_INTENTS_PER_EVENT};
use crate::core::money::{Price, Qty};
use crate::core::wire::parse::{BookHeader, MAX_LEVELS_PER_MSG, RawLevel};
use crate::core::{Core, Settings};

/// Asserts the book's shape: bids strictly descending from the best, asks strictly ascending,
/// no zero quantity, at most `depth` levels a side, and uncrossed when valid.
///
/// # Panics
/// When any of that does not hold.
pub fn assert_book_shape(book: &Book) {
    let depth = usize::from(book.depth());
    let bids: Vec<_> = book.bids().map(|l| (l.price, l.qty)).collect();
    let asks: Vec<_> = book.asks().map(|l| (l.price, l.qty)).collect();
    assert!(
        bids.len() <= depth && asks.len() <= depth,
        "beyond depth {depth}"
    );
    assert!(
        bids.windows(2).all(|w| w[0].0 > w[1].0),
        "bids unsorted: {bids:?}"
    );
    assert!(
        asks.windows(2).all(|w| w[0].0 < w[1].0),
        "asks unsorted: {asks:?}"
    );
    assert!(
        bids.iter().chain(&asks).all(|l| l.1.0 > 0),
        "zero quantity kept"
    );
    if book.is_valid()
        && let (Some(b), Some(a)) = (bids.first(), asks.first())
    {
        assert!(b.0 < a.0, "valid but crossed: bid {b:?} ask {a:?}");
    }
    if let (Some(b), Some(a)) = (book.best_bid(), book.best_ask()) {
        assert_eq!((b.price, a.price), (bids[0].0, asks[0].0), "best levels");
    }
}

/// Raw frames (the input split at newlines) through a core on paper, as the feed thread
/// would hand them over.
///
/// # Panics
/// On a panic inside the core or a malformed book.
pub fn frames(data: &[u8]) {
    let mut core = Core::new(&Settings::default(), 1).expect("the default settings are valid");
    let mut out: Vec<Intent> = Vec::with_capacity(MAX_INTENTS_PER_EVENT);
    let mut parser = crate::core::wire::parse::Parser::new("BTC/USD", 1, 8);
    for (i, frame) in data.split(|&b| b == b'\n').enumerate() {
        // The parser alone, then the core (which also applies book messages).
        let _ = parser.parse(frame);
        core.handle(
            1_000_000_000 * (i as i64 + 1),
            Event::Frame(frame),
            &mut out,
        );
        out.clear();
        assert_book_shape(core.book());
    }
}

/// One operation of [`book_ops`].
#[derive(Debug, Arbitrary)]
enum RawOp {
    Snapshot(Vec<(u32, u32)>, Vec<(u32, u32)>),
    Update(Vec<(u32, u32)>, Vec<(u32, u32)>, Option<u32>),
}

fn raw_levels(v: &[(u32, u32)]) -> Vec<RawLevel> {
    v.iter()
        .take(MAX_LEVELS_PER_MSG)
        .map(|&(p, q)| RawLevel {
            price: Price(i64::from(p)),
            qty: Qty(u64::from(q)),
            price_dec: 1,
            qty_dec: 8,
        })
        .collect()
}

/// Arbitrary, possibly nonsensical snapshot/update sequences straight into the book.
///
/// # Errors
/// Only when the input runs out before the first choice (nothing to check).
///
/// # Panics
/// On a panic inside the book or a malformed book.
pub fn book_ops(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let depth = *u.choose(&KRAKEN_DEPTHS)?;
    let mut book = Book::new(depth, 1, 8, ChecksumFormat::precision(1, 8));
    while !u.is_empty() {
        let op = RawOp::arbitrary(&mut u)?;
        let (header, bids, asks) = match &op {
            RawOp::Snapshot(b, a) => (
                BookHeader {
                    snapshot: true,
                    checksum: None,
                    exchange_ts: None,
                },
                b,
                a,
            ),
            RawOp::Update(b, a, crc) => (
                BookHeader {
                    snapshot: false,
                    checksum: *crc,
                    exchange_ts: None,
                },
                b,
                a,
            ),
        };
        let r = book.apply(&header, &raw_levels(bids), &raw_levels(asks));
        assert_eq!(r.is_ok(), book.is_valid(), "{r:?} vs valid flag");
        assert_book_shape(&book);
    }
    Ok(())
}

/// A change to the model exchange's full book.
#[derive(Debug, Arbitrary)]
enum ModelOp {
    /// Set (or add) a bid level: price offset below the mid, quantity.
    Bid(u16, u32),
    /// Set (or add) an ask level: price offset above the mid, quantity.
    Ask(u16, u32),
    /// Remove the n-th bid (modulo the count).
    DeleteBid(u16),
    /// Remove the n-th ask.
    DeleteAsk(u16),
    /// Publish what changed since the last message.
    Publish,
}

/// The model exchange: a full book deeper than the subscription, and what it last published.
struct Model {
    depth: usize,
    bids: BTreeMap<i64, u64>,
    asks: BTreeMap<i64, u64>,
    shown: View,
}

const MID: i64 = 600_000;

/// Published bids (best first) and asks (best first): (price units, lots).
type View = (Vec<(i64, u64)>, Vec<(i64, u64)>);

impl Model {
    fn view(&self) -> View {
        let bids = self
            .bids
            .iter()
            .rev()
            .take(self.depth)
            .map(|(p, q)| (*p, *q));
        let asks = self.asks.iter().take(self.depth).map(|(p, q)| (*p, *q));
        (bids.collect(), asks.collect())
    }

    /// Kraken's changes for one side: new or changed levels in view, deletes of levels that
    /// left the view because they are gone (not those merely pushed below the depth).
    fn changes(
        old: &[(i64, u64)],
        new: &[(i64, u64)],
        full: &BTreeMap<i64, u64>,
    ) -> Vec<(i64, u64)> {
        let mut out: Vec<(i64, u64)> = new.iter().filter(|l| !old.contains(l)).copied().collect();
        for (p, _) in old {
            if !new.iter().any(|l| l.0 == *p) && !full.contains_key(p) {
                out.push((*p, 0));
            }
        }
        out
    }

    /// The reference checksum: written out the obvious way, independent of the book's code.
    fn checksum(view: &View) -> u32 {
        let token = |v: i64, dec: usize| {
            let s = format!("{v:0>width$}", width = dec + 1);
            let (int, frac) = s.split_at(s.len() - dec);
            format!("{int}{frac}").trim_start_matches('0').to_string()
        };
        let mut s = String::new();
        for (p, q) in view.1.iter().take(10).chain(view.0.iter().take(10)) {
            s.push_str(&token(*p, 1));
            s.push_str(&token(*q as i64, 8));
        }
        crc32fast::hash(s.as_bytes())
    }
}

/// An exchange-consistent message sequence: every checksum must match and our book must equal
/// the published view after every message.
///
/// # Errors
/// Only when the input runs out before the first choice.
///
/// # Panics
/// When the book disagrees with the model.
pub fn consistent_book(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    // The deep depths need many operations to fill; the shallow ones find truncation bugs.
    let depth = *u.choose(&KRAKEN_DEPTHS[..3])?;
    let mut m = Model {
        depth: usize::from(depth),
        bids: BTreeMap::new(),
        asks: BTreeMap::new(),
        shown: (Vec::new(), Vec::new()),
    };
    for i in 1..=u.int_in_range(1..=40)? {
        m.bids.insert(MID - i * 5, u.int_in_range(1..=1_000_000)?);
        m.asks.insert(MID + i * 5, u.int_in_range(1..=1_000_000)?);
    }
    let mut book = Book::new(depth, 1, 8, ChecksumFormat::precision(1, 8));
    let publish = |book: &mut Book, m: &mut Model, snapshot: bool, shuffle: u64| {
        let view = m.view();
        let (mut bids, mut asks) = if snapshot {
            (view.0.clone(), view.1.clone())
        } else {
            (
                Model::changes(&m.shown.0, &view.0, &m.bids),
                Model::changes(&m.shown.1, &view.1, &m.asks),
            )
        };
        // Any order within a message.
        let rot = |v: &mut Vec<(i64, u64)>| {
            if !v.is_empty() {
                let k = (shuffle as usize) % v.len();
                v.rotate_left(k);
                if shuffle & 1 == 1 {
                    v.reverse();
                }
            }
        };
        rot(&mut bids);
        rot(&mut asks);
        let lv = |v: &[(i64, u64)]| -> Vec<RawLevel> {
            v.iter()
                .map(|&(p, q)| RawLevel {
                    price: Price(p),
                    qty: Qty(q),
                    price_dec: 1,
                    qty_dec: 8,
                })
                .collect()
        };
        let crc = Model::checksum(&view);
        let h = BookHeader {
            snapshot,
            checksum: Some(crc),
            exchange_ts: None,
        };
        // A message carries at most what the parser accepts; a bigger change is published
        // the way Kraken would, as a snapshot.
        let r = if bids.len() > MAX_LEVELS_PER_MSG || asks.len() > MAX_LEVELS_PER_MSG {
            let h = BookHeader {
                snapshot: true,
                ..h
            };
            book.apply(&h, &lv(&view.0), &lv(&view.1))
        } else {
            book.apply(&h, &lv(&bids), &lv(&asks))
        };
        assert!(
            matches!(r, Ok(a) if a.checksum_matched),
            "{r:?} after publishing bids {bids:?} asks {asks:?}"
        );
        let ours: (Vec<_>, Vec<_>) = (
            book.bids().map(|l| (l.price.0, l.qty.0)).collect(),
            book.asks().map(|l| (l.price.0, l.qty.0)).collect(),
        );
        assert_eq!(ours, view, "book differs from the exchange's view");
        assert_book_shape(book);
        m.shown = view;
    };
    publish(&mut book, &mut m, true, 0);
    while !u.is_empty() {
        match ModelOp::arbitrary(&mut u)? {
            ModelOp::Bid(off, q) => {
                m.bids.insert(MID - 1 - i64::from(off), u64::from(q).max(1));
            }
            ModelOp::Ask(off, q) => {
                m.asks.insert(MID + 1 + i64::from(off), u64::from(q).max(1));
            }
            ModelOp::DeleteBid(n) => {
                if let Some(&p) = m.bids.keys().nth(usize::from(n) % m.bids.len().max(1)) {
                    m.bids.remove(&p);
                }
            }
            ModelOp::DeleteAsk(n) => {
                if let Some(&p) = m.asks.keys().nth(usize::from(n) % m.asks.len().max(1)) {
                    m.asks.remove(&p);
                }
            }
            ModelOp::Publish => {
                let shuffle = u.arbitrary::<u64>()?;
                publish(&mut book, &mut m, false, shuffle);
            }
        }
    }
    publish(&mut book, &mut m, false, 0);
    Ok(())
}
