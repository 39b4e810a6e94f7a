//! The L2 order book for one symbol at a subscribed depth, with Kraken's v2 CRC32 check.
//!
//! Storage is two `Vec`s allocated once with room for the depth plus the largest message
//! ([`MAX_LEVELS_PER_MSG`]), so applying a message never allocates. Each side keeps its *best*
//! level at the end of the vector: most updates touch the top of the book, and inserting near
//! the end moves almost nothing.
//!
//! Kraken's rules, all applied here: a snapshot replaces the book; an update's levels are
//! applied in any order (qty 0 deletes); after the whole message each side is truncated to the
//! subscribed depth (Kraken does not send deletes for levels pushed out of scope); then the
//! checksum of the top 10 asks (ascending) and top 10 bids (descending) is compared with the one
//! Kraken sent. Levels are 24 bytes so inserts and truncation move little; each level owns a
//! slot holding its checksum token (digits without point and leading zeros), formatted once
//! while the level stays unchanged. Where the CPU has carry-less multiplication the slot also
//! keeps the token's own CRC and the checksum is assembled from those 20 CRCs ([`crc`]);
//! elsewhere the tokens are copied into one string and hashed.

use crate::core::money::{Price, Qty};
use crate::core::wire::checksum::{checksum_digits, checksum_value};
use crate::core::wire::crc;
use crate::core::wire::parse::{BookHeader, MAX_LEVELS_PER_MSG, RawLevel};

/// Depths Kraken offers for the v2 `book` channel.
pub const KRAKEN_DEPTHS: [u16; 5] = [10, 25, 100, 500, 1000];
/// Levels per side covered by the checksum, whatever the depth.
pub const CHECKSUM_LEVELS: usize = 10;
const TOKEN_CAP: usize = 40;

/// How a level's price and qty are written into the checksum string: with the instrument's
/// decimals (what Kraken does, and necessary when the wire lost trailing zeros, as Python
/// re-serialised fixtures do), or, where `None`, with the decimals as written on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChecksumFormat {
    /// Price decimals, or `None` for as written.
    pub price_decimals: Option<u8>,
    /// Quantity decimals, or `None` for as written.
    pub qty_decimals: Option<u8>,
}

impl ChecksumFormat {
    /// Digits exactly as they arrived.
    pub const AS_WRITTEN: ChecksumFormat = ChecksumFormat {
        price_decimals: None,
        qty_decimals: None,
    };

    /// The instrument's precisions.
    #[must_use]
    pub fn precision(price: u8, qty: u8) -> ChecksumFormat {
        ChecksumFormat {
            price_decimals: Some(price),
            qty_decimals: Some(qty),
        }
    }
}

/// One price level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    /// Price in units of the book's price precision.
    pub price: Price,
    /// Quantity in lots (never zero inside the book).
    pub qty: Qty,
    /// Decimals of the price and qty as written on the wire (for "as written" checksums).
    written: (u8, u8),
    /// This level's slot in the token slab.
    slot: u16,
}

/// A level's checksum token, formatted the first time the level is checksummed after it was
/// written.
#[derive(Debug, Clone, Copy)]
struct Token {
    fresh: bool,
    len: u8,
    /// `raw` CRC of the token (see [`crc`]), kept only where the checksum is built by pieces.
    raw: u32,
    bytes: [u8; TOKEN_CAP],
}

impl Token {
    const STALE: Token = Token {
        fresh: false,
        len: 0,
        raw: 0,
        bytes: [0; TOKEN_CAP],
    };
}

/// What made the book unusable. Every variant means "resubscribe for a fresh snapshot".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    /// Our CRC32 differs from Kraken's: our book no longer equals the exchange's.
    #[error("checksum mismatch: exchange {expected}, ours {computed}")]
    ChecksumMismatch {
        /// Kraken's value.
        expected: u32,
        /// Ours.
        computed: u32,
    },
    /// Best bid at or above best ask after a message.
    #[error("crossed book: bid {bid:?} >= ask {ask:?}")]
    Crossed {
        /// Best bid.
        bid: Price,
        /// Best ask.
        ask: Price,
    },
    /// An update arrived while the book is invalid (waiting for a snapshot); it was ignored.
    #[error("update ignored: book not synchronised")]
    NotSynced,
}

/// What applying one message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The message carried a checksum and ours matched.
    pub checksum_matched: bool,
}

/// An L2 book. Read-only accessors for strategies; `apply` for the feed.
#[derive(Debug)]
pub struct Book {
    depth: usize,
    price_precision: u8,
    qty_precision: u8,
    format: ChecksumFormat,
    /// Ascending; best (highest) last.
    bids: Vec<Level>,
    /// Descending; best (lowest) last.
    asks: Vec<Level>,
    valid: bool,
    crc_buf: Box<[u8]>,
    /// One token slot per level the two sides can hold; each level owns one.
    tokens: Box<[Token]>,
    /// Slots no level owns.
    free: Vec<u16>,
    /// Carry-less multiplication, where the CPU has it: the checksum is then built from each
    /// token's own CRC ([`crc`]) instead of copying the tokens into one string.
    #[cfg(target_arch = "x86_64")]
    pclmul: Option<crc::Pclmul>,
    /// Each side's part of the checksum string as (`raw` CRC, length), bids then asks, kept
    /// until that side changes: most messages touch one side only.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    side_crc: [Option<(u32, usize)>; 2],
}

impl Book {
    /// An empty, invalid book. Prices and sizes are stored at the given unit precisions;
    /// `format` decides how the checksum string is written.
    #[must_use]
    pub fn new(depth: u16, price_precision: u8, qty_precision: u8, format: ChecksumFormat) -> Book {
        let cap = usize::from(depth) + MAX_LEVELS_PER_MSG;
        // Kraken's deepest book is 1000 levels: 2 × (1000 + 1024) slots fit a u16.
        let slots = u16::try_from(2 * cap).unwrap_or(u16::MAX);
        Book {
            depth: usize::from(depth),
            price_precision,
            qty_precision,
            format,
            bids: Vec::with_capacity(cap),
            asks: Vec::with_capacity(cap),
            valid: false,
            // Tokens are copied TOKEN_CAP bytes at a time (a fixed-size copy, no memmove
            // call), so the buffer has one token of slack.
            crc_buf: vec![0u8; (2 * CHECKSUM_LEVELS + 1) * TOKEN_CAP].into_boxed_slice(),
            tokens: vec![Token::STALE; usize::from(slots)].into_boxed_slice(),
            free: (0..slots).rev().collect(),
            #[cfg(target_arch = "x86_64")]
            pclmul: crc::Pclmul::detect(),
            side_crc: [None; 2],
        }
    }

    /// The same book computing its checksums by copying tokens into one string (what CPUs
    /// without carry-less multiplication do), so tests can compare the two ways.
    #[cfg(test)]
    pub(crate) fn copying_checksums(mut self) -> Book {
        #[cfg(target_arch = "x86_64")]
        {
            self.pclmul = None;
        }
        self
    }

    /// Empties the book and changes its unit precisions and checksum format, keeping its
    /// storage (no allocation): used when the instrument channel reports a new precision.
    pub fn reset(&mut self, price_precision: u8, qty_precision: u8, format: ChecksumFormat) {
        self.clear();
        self.valid = false;
        self.price_precision = price_precision;
        self.qty_precision = qty_precision;
        self.format = format;
    }

    /// Removes every level, returning their token slots.
    fn clear(&mut self) {
        for l in self.bids.drain(..).chain(self.asks.drain(..)) {
            self.free.push(l.slot);
        }
        self.side_crc = [None; 2];
    }

    /// Subscribed depth.
    #[must_use]
    pub fn depth(&self) -> u16 {
        self.depth as u16
    }

    /// True after a snapshot whose checksum (if any) matched and until anything goes wrong.
    /// Never quote from a book that is not valid.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.valid
    }

    /// Marks the book unusable (disconnect, resubscribe). Levels are kept for display only.
    pub fn invalidate(&mut self) {
        self.valid = false;
    }

    /// Best bid, if any.
    #[must_use]
    pub fn best_bid(&self) -> Option<&Level> {
        self.bids.last()
    }

    /// Best ask, if any.
    #[must_use]
    pub fn best_ask(&self) -> Option<&Level> {
        self.asks.last()
    }

    /// Bids, best (highest) first.
    pub fn bids(&self) -> impl ExactSizeIterator<Item = &Level> + '_ {
        self.bids.iter().rev()
    }

    /// Asks, best (lowest) first.
    pub fn asks(&self) -> impl ExactSizeIterator<Item = &Level> + '_ {
        self.asks.iter().rev()
    }

    /// Visible quantity at `price` on the bid (`is_bid`) or ask side.
    #[must_use]
    pub fn qty_at(&self, is_bid: bool, price: Price) -> Qty {
        let side = if is_bid { &self.bids } else { &self.asks };
        find(side, is_bid, price).map_or(Qty(0), |i| side[i].qty)
    }

    /// Applies one parsed book message (levels from [`Parser`](crate::core::wire::parse::Parser)).
    ///
    /// # Errors
    /// [`BookError::NotSynced`] for an update while invalid (nothing applied);
    /// [`BookError::ChecksumMismatch`] or [`BookError::Crossed`] after applying, which also
    /// invalidate the book.
    pub fn apply(
        &mut self,
        header: &BookHeader,
        bids: &[RawLevel],
        asks: &[RawLevel],
    ) -> Result<Applied, BookError> {
        if header.snapshot {
            self.clear();
        } else if !self.valid {
            return Err(BookError::NotSynced);
        }
        for l in bids {
            self.upsert(true, l);
        }
        for l in asks {
            self.upsert(false, l);
        }
        for (i, side) in [&mut self.bids, &mut self.asks].into_iter().enumerate() {
            if truncate_worst(side, self.depth, &mut self.free) {
                self.side_crc[i] = None;
            }
        }
        self.valid = true;
        let mut matched = false;
        if let Some(expected) = header.checksum {
            let computed = self.checksum();
            if computed != expected {
                self.valid = false;
                return Err(BookError::ChecksumMismatch { expected, computed });
            }
            matched = true;
        }
        if let (Some(b), Some(a)) = (self.bids.last(), self.asks.last())
            && b.price >= a.price
        {
            self.valid = false;
            return Err(BookError::Crossed {
                bid: b.price,
                ask: a.price,
            });
        }
        Ok(Applied {
            checksum_matched: matched,
        })
    }

    fn upsert(&mut self, is_bid: bool, raw: &RawLevel) {
        self.side_crc[usize::from(!is_bid)] = None;
        let side = if is_bid {
            &mut self.bids
        } else {
            &mut self.asks
        };
        let found = search(side, is_bid, raw.price);
        if raw.qty.0 == 0 {
            if let Ok(i) = found {
                self.free.push(side.remove(i).slot);
            }
            return;
        }
        let slot = match found {
            Ok(i) => side[i].slot,
            // Capacity is depth + the most levels one message can carry, so this never grows
            // the vector; the guard keeps that a checked fact rather than an assumption.
            Err(_) if side.len() == side.capacity() => return,
            // Each side's capacity bounds its levels, and there is a slot for every one.
            Err(_) => match self.free.pop() {
                Some(s) => s,
                None => return,
            },
        };
        let level = Level {
            price: raw.price,
            qty: raw.qty,
            written: (raw.price_dec, raw.qty_dec),
            slot,
        };
        match found {
            Ok(i) => side[i] = level,
            Err(i) => side.insert(i, level),
        }
        self.tokens[usize::from(slot)].fresh = false;
    }

    /// Kraken's v2 CRC32 over the current top 10 asks (ascending) then top 10 bids (descending).
    #[must_use]
    pub fn checksum(&mut self) -> u32 {
        #[cfg(target_arch = "x86_64")]
        if let Some(hw) = self.pclmul {
            // SAFETY: a `Pclmul` exists only where the CPU has the instruction.
            #[allow(unsafe_code)] // a target_feature function is unsafe to call
            return unsafe { self.checksum_by_pieces(hw) };
        }
        self.checksum_copied()
    }

    /// The checksum from each token's cached CRC: at most 20 multiplications, no copying.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "pclmulqdq")]
    fn checksum_by_pieces(&mut self, hw: crc::Pclmul) -> u32 {
        let mut whole = crc::Pieces::default();
        // Last piece first: the bids part, then the asks part.
        for i in 0..2 {
            let part = match self.side_crc[i] {
                Some(part) => part,
                None => {
                    let side = if i == 0 { &self.bids } else { &self.asks };
                    let mut pieces = crc::Pieces::default();
                    // The string writes each side best first and the side keeps its best
                    // level last, so walking from the 10th best to the best is last first.
                    for l in &side[side.len().saturating_sub(CHECKSUM_LEVELS)..] {
                        let t = &mut self.tokens[usize::from(l.slot)];
                        if !t.fresh {
                            let (p, q) = checksum_values(
                                self.price_precision,
                                self.qty_precision,
                                self.format,
                                l,
                            );
                            let digits = [crc::DigitWords::of(p), crc::DigitWords::of(q)];
                            t.raw = crc::raw_of_digits(hw, &digits);
                            t.len = (digits[0].len() + digits[1].len()) as u8;
                            t.fresh = true;
                        }
                        pieces.push_front(hw, t.raw, usize::from(t.len));
                    }
                    let part = pieces.raw();
                    self.side_crc[i] = Some(part);
                    part
                }
            };
            whole.push_front(hw, part.0, part.1);
        }
        whole.crc32(hw)
    }

    /// The checksum over the tokens copied into one string.
    fn checksum_copied(&mut self) -> u32 {
        let mut n = 0;
        for l in self
            .asks
            .iter()
            .rev()
            .take(CHECKSUM_LEVELS)
            .chain(self.bids.iter().rev().take(CHECKSUM_LEVELS))
        {
            let t = &mut self.tokens[usize::from(l.slot)];
            if !t.fresh {
                Self::format_token(self.price_precision, self.qty_precision, self.format, l, t);
            }
            let buf: &mut [u8; TOKEN_CAP] = (&mut self.crc_buf[n..n + TOKEN_CAP])
                .try_into()
                .expect("TOKEN_CAP bytes");
            *buf = t.bytes;
            n += usize::from(t.len);
        }
        crc32fast::hash(&self.crc_buf[..n])
    }

    fn format_token(
        price_precision: u8,
        qty_precision: u8,
        format: ChecksumFormat,
        l: &Level,
        t: &mut Token,
    ) {
        let (p, q) = checksum_values(price_precision, qty_precision, format, l);
        let n = checksum_digits(p, &mut t.bytes);
        let m = checksum_digits(q, &mut t.bytes[n..]);
        t.len = (n + m) as u8;
        t.fresh = true;
    }
}

/// The whole numbers whose digits make a level's checksum token (price, then qty).
#[inline]
fn checksum_values(
    price_precision: u8,
    qty_precision: u8,
    format: ChecksumFormat,
    l: &Level,
) -> (u64, u64) {
    let pd = format.price_decimals.unwrap_or(l.written.0);
    let qd = format.qty_decimals.unwrap_or(l.written.1);
    (
        checksum_value(l.price.0 as u64, price_precision, pd),
        checksum_value(l.qty.0, qty_precision, qd),
    )
}

/// Test support: replaces the book with one-level-per-entry sides given as (price units,
/// lots), without a checksum. Panics on a crossed book (a test bug).
#[cfg(test)]
pub(crate) fn set_levels(book: &mut Book, bids: &[(i64, u64)], asks: &[(i64, u64)]) {
    let raw = |v: &[(i64, u64)]| -> Vec<RawLevel> {
        v.iter()
            .map(|&(p, q)| RawLevel {
                price: Price(p),
                qty: Qty(q),
                price_dec: 0,
                qty_dec: 0,
            })
            .collect()
    };
    let h = BookHeader {
        snapshot: true,
        checksum: None,
        exchange_ts: None,
    };
    book.apply(&h, &raw(bids), &raw(asks))
        .expect("test book must not cross");
}

/// Where `price` is (`Ok`) or would go (`Err`) on a side kept worst-first. Updates cluster at
/// the top of the book, so the best few levels are walked from the end before a binary search
/// of the rest: near the top that is a couple of predictable compares.
fn search(side: &[Level], is_bid: bool, price: Price) -> Result<usize, usize> {
    // `true` while the level at `i` is better than `price`, so `price` goes below it.
    let better = |l: &Level| {
        if is_bid {
            l.price > price
        } else {
            l.price < price
        }
    };
    let mut j = side.len();
    let floor = j.saturating_sub(4);
    while j > floor && better(&side[j - 1]) {
        j -= 1;
    }
    if j > floor || j == 0 {
        return match j.checked_sub(1) {
            Some(i) if side[i].price == price => Ok(i),
            _ => Err(j),
        };
    }
    let rest = &side[..j];
    if is_bid {
        rest.binary_search_by(|l| l.price.cmp(&price))
    } else {
        rest.binary_search_by(|l| price.cmp(&l.price))
    }
}

fn find(side: &[Level], is_bid: bool, price: Price) -> Option<usize> {
    search(side, is_bid, price).ok()
}

/// Drops the worst levels (at the front) beyond `depth`, returning their token slots; true if
/// it dropped any.
fn truncate_worst(side: &mut Vec<Level>, depth: usize, free: &mut Vec<u16>) -> bool {
    if side.len() <= depth {
        return false;
    }
    for l in side.drain(..side.len() - depth) {
        free.push(l.slot);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::wire::parse::{Message, Parser};
    use proptest::prelude::*;

    proptest! {
        /// The walk-from-the-top search finds what a plain binary search finds.
        #[test]
        fn search_equals_a_binary_search(mut prices in prop::collection::btree_set(1i64..60, 0..20)
                                             .prop_map(|s| s.into_iter().collect::<Vec<_>>()),
                                         price in 0i64..62, is_bid: bool) {
            if !is_bid {
                prices.reverse();
            }
            let side: Vec<Level> = prices
                .iter()
                .map(|&p| Level { price: Price(p), qty: Qty(1), written: (0, 0), slot: 0 })
                .collect();
            let want = if is_bid {
                side.binary_search_by(|l| l.price.cmp(&Price(price)))
            } else {
                side.binary_search_by(|l| Price(price).cmp(&l.price))
            };
            prop_assert_eq!(search(&side, is_bid, Price(price)), want);
        }
    }

    fn apply_frame(p: &mut Parser, b: &mut Book, frame: &str) -> Result<Applied, BookError> {
        let Message::Book(h) = p.parse(frame.as_bytes()).unwrap() else {
            panic!("not a book frame")
        };
        b.apply(&h, p.bids(), p.asks())
    }

    const DOCS_SNAPSHOT: &str =
        include_str!("../../tests/data/kraken_docs_v2_checksum_example.jsonl");

    #[test]
    fn kraken_documented_checksum_3310070434() {
        let mut p = Parser::new("BTC/USD", 1, 8);
        let mut b = Book::new(10, 1, 8, ChecksumFormat::precision(1, 8));
        assert_eq!(
            apply_frame(&mut p, &mut b, DOCS_SNAPSHOT.trim()),
            Ok(Applied {
                checksum_matched: true
            })
        );
        assert_eq!(b.checksum(), 3_310_070_434);
        assert!(b.is_valid());
        assert_eq!(b.best_bid().unwrap().price, Price(452_835));
        assert_eq!(b.best_ask().unwrap().price, Price(452_852));
    }

    #[test]
    fn gst_usd_vector_needs_precision_formatting() {
        // Vector B of kraken-facts.md: 0.010 must stay "10", 13600.00000000 must be "1360000000000".
        let bids = [
            ("0.016", "255965.95133811"),
            ("0.015", "264465.46682136"),
            ("0.014", "198234.50375152"),
            ("0.013", "263077.71115063"),
            ("0.012", "135283.23181445"),
            ("0.011", "232726.34707055"),
            ("0.010", "211909.56878553"),
            ("0.009", "16666.66666666"),
            ("0.008", "13600.00000000"),
            ("0.007", "1000.00000000"),
        ];
        let asks = [
            ("0.017", "94510.50669693"),
            ("0.018", "232489.98702916"),
            ("0.019", "244770.01655926"),
            ("0.020", "103394.23779803"),
            ("0.021", "120226.44704447"),
            ("0.022", "122811.44535027"),
            ("0.023", "185766.68965043"),
            ("0.024", "95339.83830809"),
            ("0.025", "32960.86333331"),
            ("0.026", "86326.77204454"),
        ];
        let side = |v: &[(&str, &str)]| {
            // Written the way a float round-trip would print them: trailing zeros gone.
            v.iter()
                .map(|(p, q)| {
                    format!(
                        r#"{{"price":{},"qty":{}}}"#,
                        p.parse::<f64>().unwrap(),
                        q.parse::<f64>().unwrap()
                    )
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        let frame = format!(
            r#"{{"channel":"book","type":"snapshot","data":[{{"symbol":"GST/USD","bids":[{}],"asks":[{}],"checksum":1931231958}}]}}"#,
            side(&bids),
            side(&asks)
        );
        let mut p = Parser::new("GST/USD", 3, 8);
        let mut b = Book::new(10, 3, 8, ChecksumFormat::precision(3, 8));
        assert_eq!(
            apply_frame(&mut p, &mut b, &frame),
            Ok(Applied {
                checksum_matched: true
            })
        );
        // The same text checked "as written" must fail: that is exactly the float bug.
        let mut p = Parser::new("GST/USD", 10, 10);
        let mut b = Book::new(10, 10, 10, ChecksumFormat::AS_WRITTEN);
        assert!(matches!(
            apply_frame(&mut p, &mut b, &frame),
            Err(BookError::ChecksumMismatch { .. })
        ));
    }

    fn lvl(p: i64, q: u64) -> RawLevel {
        RawLevel {
            price: Price(p),
            qty: Qty(q),
            price_dec: 0,
            qty_dec: 0,
        }
    }

    fn hdr(snapshot: bool) -> BookHeader {
        BookHeader {
            snapshot,
            checksum: None,
            exchange_ts: None,
        }
    }

    #[test]
    fn updates_insert_modify_delete_and_truncate() {
        let mut b = Book::new(10, 0, 0, ChecksumFormat::AS_WRITTEN);
        let bids: Vec<_> = (0..10).map(|i| lvl(100 - i, 1)).collect();
        let asks: Vec<_> = (0..10).map(|i| lvl(101 + i, 1)).collect();
        b.apply(&hdr(true), &bids, &asks).unwrap();
        // Modify 100 and 99, delete 98, delete a
        // level that does not exist: all in one message, deliberately out of order.
        b.apply(
            &hdr(false),
            &[lvl(98, 0), lvl(1_005, 0), lvl(99, 7), lvl(100, 3)],
            &[],
        )
        .unwrap();
        let got: Vec<_> = b.bids().map(|l| (l.price.0, l.qty.0)).collect();
        assert_eq!(
            got,
            vec![
                (100, 3),
                (99, 7),
                (97, 1),
                (96, 1),
                (95, 1),
                (94, 1),
                (93, 1),
                (92, 1),
                (91, 1)
            ]
        );
        // Insert two bids below the worst: only one fits back to depth 10.
        b.apply(&hdr(false), &[lvl(90, 1), lvl(89, 1)], &[])
            .unwrap();
        assert_eq!(b.bids().len(), 10);
        assert_eq!(b.bids().last().unwrap().price, Price(90));
        // Same-message delete + insert beyond the worst: the insert survives because
        // truncation happens after the whole message.
        b.apply(&hdr(false), &[lvl(88, 1), lvl(100, 0)], &[])
            .unwrap();
        assert_eq!(b.bids().len(), 10);
        assert_eq!(b.bids().last().unwrap().price, Price(88));
        assert_eq!(b.best_bid().unwrap().price, Price(99));
    }

    #[test]
    fn crossed_book_invalidates() {
        let mut b = Book::new(10, 0, 0, ChecksumFormat::AS_WRITTEN);
        b.apply(&hdr(true), &[lvl(100, 1)], &[lvl(101, 1)]).unwrap();
        assert_eq!(
            b.apply(&hdr(false), &[lvl(102, 1)], &[]),
            Err(BookError::Crossed {
                bid: Price(102),
                ask: Price(101)
            })
        );
        assert!(!b.is_valid());
        assert_eq!(
            b.apply(&hdr(false), &[lvl(99, 1)], &[]),
            Err(BookError::NotSynced)
        );
        b.apply(&hdr(true), &[lvl(100, 1)], &[lvl(101, 1)]).unwrap();
        assert!(b.is_valid(), "a snapshot restores the book");
    }

    #[test]
    fn checksum_mismatch_invalidates() {
        let mut p = Parser::new("BTC/USD", 1, 8);
        let mut b = Book::new(10, 1, 8, ChecksumFormat::precision(1, 8));
        let bad = DOCS_SNAPSHOT.trim().replace("3310070434", "3310070435");
        assert_eq!(
            apply_frame(&mut p, &mut b, &bad),
            Err(BookError::ChecksumMismatch {
                expected: 3_310_070_435,
                computed: 3_310_070_434
            })
        );
        assert!(!b.is_valid());
    }

    #[test]
    fn apply_does_not_grow_storage() {
        let mut b = Book::new(10, 0, 0, ChecksumFormat::AS_WRITTEN);
        let cap = (b.bids.capacity(), b.asks.capacity());
        let many: Vec<_> = (1..=MAX_LEVELS_PER_MSG as i64).map(|i| lvl(i, 1)).collect();
        b.apply(&hdr(true), &many, &[]).unwrap();
        b.apply(&hdr(false), &many, &[]).unwrap();
        assert_eq!((b.bids.capacity(), b.asks.capacity()), cap);
        assert_eq!(b.bids().len(), 10);
    }

    /// Every token slot is owned by exactly one level or free, through snapshots, inserts,
    /// deletes, truncation and resets: a leak would end in levels that cannot be stored.
    #[test]
    fn token_slots_are_never_lost() {
        let frames = crate::core::stubs::frames_at_depth(5_000, 5, 25);
        let mut p = Parser::new("BTC/USD", 1, 8);
        let mut b = Book::new(25, 1, 8, ChecksumFormat::precision(1, 8));
        let slots = b.tokens.len();
        for (i, (_, f)) in frames.iter().enumerate() {
            if i == 2_500 {
                b.reset(1, 8, ChecksumFormat::AS_WRITTEN);
            }
            if let Ok(Message::Book(h)) = p.parse(f.as_bytes()) {
                let _ = b.apply(&h, p.bids(), p.asks());
            }
            let mut owned: Vec<u16> = b.bids.iter().chain(&b.asks).map(|l| l.slot).collect();
            owned.extend(&b.free);
            owned.sort_unstable();
            owned.dedup();
            assert_eq!(owned.len(), slots, "frame {i}");
        }
    }

    /// The checksum from cached tokens equals one computed from scratch, through random
    /// inserts, modifications, deletions at any position, truncation and snapshots; built from
    /// the tokens' own CRCs or copied into one string, it is the same.
    #[test]
    fn cached_token_checksum_equals_a_fresh_computation() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut b = Book::new(10, 0, 0, ChecksumFormat::precision(0, 0));
        let snap: Vec<RawLevel> = (0..10).map(|i| lvl(1000 - i, 5)).collect();
        let asks: Vec<RawLevel> = (0..10).map(|i| lvl(1001 + i, 5)).collect();
        b.apply(&hdr(true), &snap, &asks).unwrap();
        let mut copying = Book::new(10, 0, 0, ChecksumFormat::precision(0, 0)).copying_checksums();
        copying.apply(&hdr(true), &snap, &asks).unwrap();
        for step in 0..20_000 {
            let mut bids = Vec::new();
            let mut asks = Vec::new();
            for _ in 0..rng.random_range(1..=3) {
                let bid = rng.random_bool(0.5);
                let off: i64 = rng.random_range(0..14);
                let q = if rng.random_bool(0.3) {
                    0
                } else {
                    rng.random_range(1..50)
                };
                if bid {
                    bids.push(lvl(1000 - off, q));
                } else {
                    asks.push(lvl(1001 + off, q));
                }
            }
            let snapshot = step % 997 == 0;
            let applied = b.apply(&hdr(snapshot), &bids, &asks);
            assert_eq!(copying.apply(&hdr(snapshot), &bids, &asks), applied);
            if applied.is_err() {
                continue;
            }
            let got = b.checksum();
            assert_eq!(got, copying.checksum(), "step {step}");
            let mut fresh =
                Book::new(10, 0, 0, ChecksumFormat::precision(0, 0)).copying_checksums();
            let raw = |l: &Level| lvl(l.price.0, l.qty.0);
            let fb: Vec<RawLevel> = b.bids().map(raw).collect();
            let fa: Vec<RawLevel> = b.asks().map(raw).collect();
            fresh.apply(&hdr(true), &fb, &fa).unwrap();
            assert_eq!(got, fresh.checksum(), "step {step}");
            // Asking twice changes nothing.
            assert_eq!(got, b.checksum());
        }
    }
}
