//! Tardis.dev market data as replay input: `incremental_book_L2` CSV (plain or `.gz`), with an
//! optional `trades` CSV, for exchange `kraken`.
//!
//! Columns (Tardis's documented layout): `exchange,symbol,timestamp,local_timestamp,
//! is_snapshot,side,price,amount` for the book, `exchange,symbol,timestamp,local_timestamp,id,
//! side,price,amount` for trades; timestamps in microseconds since the epoch. `amount` is the
//! level's new absolute size (0 deletes it). Rows sharing a `local_timestamp` are one update; a
//! snapshot row after non-snapshot rows starts a new book; rows before the first snapshot are
//! skipped. Tardis names Kraken's BTC/USD `XBT/USD` before 2026-07-10: both spellings (and the
//! slash-less ones) map to the configured symbol.
//!
//! The reader keeps the whole L2 book and hands the core what Kraken's WebSocket would have
//! sent at the configured depth: a snapshot of the top levels, then, per update, the levels of
//! the top that changed (a level leaving the top is sent with quantity 0, one entering it with
//! its size), as Kraken WS v2 `book` frames with the file's `local_timestamp` as receive time.
//! Trades become v2 `trade` frames, merged in time order. Such data carries no checksum: the
//! replay report says the book was not checksum-verified. A malformed row is counted, named by
//! file and line (the first few), and skipped; nothing here panics on input.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::Path;

use crate::backtest::error::BacktestError;
use crate::core::money::Decimal;
use crate::core::time::{Nanos, format_rfc3339};

/// Malformed rows named in the report (the rest are only counted).
pub const NAMED_ERRORS: usize = 10;

/// What reading a Tardis file found beside the frames.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TardisStats {
    /// Book rows read (all of them, skipped ones included).
    pub book_rows: u64,
    /// Trade rows read.
    pub trade_rows: u64,
    /// Rows before the first snapshot (skipped, as the format says).
    pub before_snapshot: u64,
    /// Rows of another exchange or symbol (skipped).
    pub other_symbol: u64,
    /// Malformed rows (skipped).
    pub malformed: u64,
    /// The first few malformed rows, as `file:line: why`.
    pub errors: Vec<String>,
}

impl TardisStats {
    fn malformed(&mut self, file: &str, line: usize, why: &str) {
        self.malformed += 1;
        if self.errors.len() < NAMED_ERRORS {
            self.errors.push(format!("{file}:{line}: {why}"));
        }
    }
}

/// Opens `path` for reading, through gzip when it is gzip (by its magic bytes, whatever its
/// name).
///
/// # Errors
/// The file cannot be opened.
pub fn open(path: &Path) -> Result<Box<dyn BufRead>, BacktestError> {
    let io = |e: std::io::Error| BacktestError::Input {
        file: path.display().to_string(),
        why: e.to_string(),
    };
    let mut f = BufReader::with_capacity(1 << 20, std::fs::File::open(path).map_err(io)?);
    let gz = f.fill_buf().map_err(io)?.starts_with(&[0x1f, 0x8b]);
    Ok(if gz {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::bufread::MultiGzDecoder::new(f),
        ))
    } else {
        Box::new(f)
    })
}

/// Whether a Tardis symbol names the configured one (`BTC/USD` also as `XBT/USD`, `XBTUSD`,
/// `BTCUSD`).
#[must_use]
pub fn same_symbol(tardis: &str, configured: &str) -> bool {
    let norm = |s: &str| {
        s.to_ascii_uppercase()
            .replace(['/', '-', '_'], "")
            .replace("XBT", "BTC")
    };
    norm(tardis) == norm(configured)
}

/// One parsed book row.
struct BookRow {
    local_us: i64,
    snapshot: bool,
    bid: bool,
    price: u64,
    qty: u64,
}

/// One parsed trade row.
struct TradeRow {
    local_us: i64,
    ts_us: i64,
    id: u64,
    buy: bool,
    price: u64,
    qty: u64,
}

fn units(text: &str, precision: u8) -> Option<u64> {
    Decimal::parse(text.trim().as_bytes())
        .ok()
        .and_then(|d| (!d.negative).then_some(d))?
        .to_units_floor(precision)
        .ok()
}

/// A line reader that counts lines and skips the header.
struct Lines<R> {
    r: R,
    buf: String,
    line: usize,
}

impl<R: BufRead> Lines<R> {
    fn new(r: R) -> Lines<R> {
        Lines {
            r,
            buf: String::with_capacity(256),
            line: 0,
        }
    }

    /// The next line (its number, and the text without its end), or `None` at the end;
    /// `Err` for unreadable bytes.
    fn next(&mut self) -> Option<(usize, Result<&str, String>)> {
        self.buf.clear();
        self.line += 1;
        let n = self.line;
        match self.r.read_line(&mut self.buf) {
            Ok(0) => None,
            Ok(_) => Some((n, Ok(self.buf.trim_end_matches(['\n', '\r'])))),
            Err(e) => Some((n, Err(e.to_string()))),
        }
    }
}

/// The reader's settings.
#[derive(Debug, Clone)]
pub struct TardisSpec {
    /// The configured symbol (frames carry it).
    pub symbol: String,
    /// Levels a side the core keeps (`book_depth`).
    pub depth: usize,
    /// Price decimals.
    pub price_precision: u8,
    /// Quantity decimals.
    pub qty_precision: u8,
    /// The book file's name, for error messages.
    pub book_name: String,
    /// The trades file's name.
    pub trades_name: String,
}

/// Both sides of the full book, and the top the core was last shown.
#[derive(Default)]
struct FullBook {
    bids: BTreeMap<u64, u64>,
    asks: BTreeMap<u64, u64>,
    shown_bids: Vec<(u64, u64)>,
    shown_asks: Vec<(u64, u64)>,
}

impl FullBook {
    /// Whether a change at `price` can alter the top `depth` the core was last shown.
    fn touches_top(&self, bid: bool, price: u64, depth: usize) -> bool {
        let shown = if bid {
            &self.shown_bids
        } else {
            &self.shown_asks
        };
        match shown.last() {
            Some((worst, _)) if shown.len() >= depth => {
                if bid {
                    price >= *worst
                } else {
                    price <= *worst
                }
            }
            _ => true,
        }
    }

    fn set(&mut self, bid: bool, price: u64, qty: u64) {
        let side = if bid { &mut self.bids } else { &mut self.asks };
        if qty == 0 {
            side.remove(&price);
        } else {
            side.insert(price, qty);
        }
    }

    fn top(&self, bid: bool, depth: usize) -> Vec<(u64, u64)> {
        if bid {
            self.bids
                .iter()
                .rev()
                .take(depth)
                .map(|(p, q)| (*p, *q))
                .collect()
        } else {
            self.asks
                .iter()
                .take(depth)
                .map(|(p, q)| (*p, *q))
                .collect()
        }
    }
}

/// Writes `units` at `precision` decimals.
fn decimal(out: &mut String, units: u64, precision: u8) {
    let p = 10u64.pow(u32::from(precision));
    if precision == 0 {
        let _ = write!(out, "{units}");
    } else {
        let _ = write!(
            out,
            "{}.{:0w$}",
            units / p,
            units % p,
            w = usize::from(precision)
        );
    }
}

/// The frame builder: the full book and its Kraken-shaped view.
struct Emitter<'a> {
    spec: &'a TardisSpec,
    book: FullBook,
    frame: String,
}

impl Emitter<'_> {
    fn levels(&mut self, levels: &[(u64, u64)]) {
        for (i, (p, q)) in levels.iter().enumerate() {
            if i > 0 {
                self.frame.push(',');
            }
            self.frame.push_str(r#"{"price":"#);
            decimal(&mut self.frame, *p, self.spec.price_precision);
            self.frame.push_str(r#","qty":"#);
            decimal(&mut self.frame, *q, self.spec.qty_precision);
            self.frame.push('}');
        }
    }

    fn book_frame(&mut self, kind: &str, bids: &[(u64, u64)], asks: &[(u64, u64)]) {
        self.frame.clear();
        let _ = write!(
            self.frame,
            r#"{{"channel":"book","type":"{kind}","data":[{{"symbol":"{}","bids":["#,
            self.spec.symbol
        );
        self.levels(bids);
        self.frame.push_str(r#"],"asks":["#);
        self.levels(asks);
        self.frame.push_str("]}]}");
    }

    /// The top as a snapshot (after a snapshot group).
    fn snapshot(&mut self) {
        let (b, a) = (
            self.book.top(true, self.spec.depth),
            self.book.top(false, self.spec.depth),
        );
        self.book_frame("snapshot", &b, &a);
        self.book.shown_bids = b;
        self.book.shown_asks = a;
    }

    /// What changed in the top since it was last shown; `false` when nothing did.
    fn update(&mut self) -> bool {
        let (b, a) = (
            self.book.top(true, self.spec.depth),
            self.book.top(false, self.spec.depth),
        );
        let db = diff(&self.book.shown_bids, &b);
        let da = diff(&self.book.shown_asks, &a);
        if db.is_empty() && da.is_empty() {
            return false;
        }
        self.book_frame("update", &db, &da);
        self.book.shown_bids = b;
        self.book.shown_asks = a;
        true
    }

    fn trade_frame(&mut self, t: &TradeRow) {
        self.frame.clear();
        let _ = write!(
            self.frame,
            r#"{{"channel":"trade","type":"update","data":[{{"symbol":"{}","side":"{}","price":"#,
            self.spec.symbol,
            if t.buy { "buy" } else { "sell" }
        );
        decimal(&mut self.frame, t.price, self.spec.price_precision);
        self.frame.push_str(r#","qty":"#);
        decimal(&mut self.frame, t.qty, self.spec.qty_precision);
        let _ = write!(
            self.frame,
            r#","ord_type":"limit","trade_id":{},"timestamp":"{}"}}]}}"#,
            t.id,
            format_rfc3339(t.ts_us * 1_000)
        );
    }
}

/// Levels of `new` that differ from `old`, and `old` levels gone from `new` (quantity 0).
fn diff(old: &[(u64, u64)], new: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = new.iter().filter(|l| !old.contains(l)).copied().collect();
    for (p, _) in old {
        if !new.iter().any(|(q, _)| q == p) {
            out.push((*p, 0));
        }
    }
    out
}

/// Splits a CSV row (Tardis writes no quoted fields) into exactly `N` fields.
fn fields<const N: usize>(line: &str) -> Option<[&str; N]> {
    let mut out = [""; N];
    let mut start = 0;
    let mut commas = memchr::memchr_iter(b',', line.as_bytes());
    for f in out.iter_mut().take(N - 1) {
        let end = commas.next()?;
        *f = &line[start..end];
        start = end + 1;
    }
    if commas.next().is_some() {
        return None;
    }
    out[N - 1] = &line[start..];
    Some(out)
}

/// Remembers the last symbol spelling seen, so the comparison is one `==` a row.
#[derive(Debug, Default)]
struct SymbolCache {
    last: String,
    same: bool,
}

impl SymbolCache {
    fn matches(&mut self, symbol: &str, configured: &str) -> bool {
        if symbol != self.last {
            self.last.clear();
            self.last.push_str(symbol);
            self.same = same_symbol(symbol, configured);
        }
        self.same
    }
}

fn book_row(
    line: &str,
    spec: &TardisSpec,
    sym: &mut SymbolCache,
) -> Result<Option<BookRow>, &'static str> {
    let [exchange, symbol, ts, local, snap, side, price, amount] =
        fields::<8>(line).ok_or("expected 8 columns")?;
    if exchange != "kraken" || !sym.matches(symbol, &spec.symbol) {
        return Ok(None);
    }
    ts.parse::<i64>()
        .map_err(|_| "timestamp is not an integer")?;
    let bid = match side {
        "bid" => true,
        "ask" => false,
        _ => return Err("side is neither bid nor ask"),
    };
    Ok(Some(BookRow {
        local_us: local
            .parse()
            .map_err(|_| "local_timestamp is not an integer")?,
        snapshot: match snap {
            "true" => true,
            "false" => false,
            _ => return Err("is_snapshot is neither true nor false"),
        },
        bid,
        price: units(price, spec.price_precision).ok_or("price is not a decimal")?,
        qty: units(amount, spec.qty_precision).ok_or("amount is not a decimal")?,
    }))
}

fn trade_row(
    line: &str,
    spec: &TardisSpec,
    sym: &mut SymbolCache,
) -> Result<Option<TradeRow>, &'static str> {
    let [exchange, symbol, ts, local, id, side, price, amount] =
        fields::<8>(line).ok_or("expected 8 columns")?;
    if exchange != "kraken" || !sym.matches(symbol, &spec.symbol) {
        return Ok(None);
    }
    Ok(Some(TradeRow {
        local_us: local
            .parse()
            .map_err(|_| "local_timestamp is not an integer")?,
        ts_us: ts.parse().map_err(|_| "timestamp is not an integer")?,
        // Kraken's trade ids are integers; anything else counts from the row.
        id: id.parse().unwrap_or(0),
        buy: match side {
            "buy" => true,
            "sell" => false,
            "unknown" => true,
            _ => return Err("side is neither buy nor sell"),
        },
        price: units(price, spec.price_precision).ok_or("price is not a decimal")?,
        qty: units(amount, spec.qty_precision).ok_or("amount is not a decimal")?,
    }))
}

/// Reads the book (and trades) and calls `f(receive time, frame)` for each Kraken-shaped
/// frame, in time order.
///
/// # Errors
/// A file whose header is not Tardis's (named), or that cannot be read.
pub fn for_each_frame(
    spec: &TardisSpec,
    book: impl BufRead,
    trades: Option<Box<dyn BufRead>>,
    mut f: impl FnMut(Nanos, &[u8]),
) -> Result<TardisStats, BacktestError> {
    let mut stats = TardisStats::default();
    let mut em = Emitter {
        spec,
        book: FullBook::default(),
        frame: String::with_capacity(4096),
    };
    let mut rows = Lines::new(book);
    let mut book_symbol = SymbolCache::default();
    let mut trade_symbol = SymbolCache::default();
    header(&mut rows, &spec.book_name, "is_snapshot")?;
    let mut tr = match trades {
        Some(t) => {
            let mut l = Lines::new(t);
            header(&mut l, &spec.trades_name, "id")?;
            Some(l)
        }
        None => None,
    };
    let mut next_trade = tr
        .as_mut()
        .and_then(|l| next_trade_of(l, spec, &mut trade_symbol, &mut stats));
    // The group being read: its local timestamp, whether it is a snapshot.
    let mut group: Option<(i64, bool)> = None;
    // Whether a row of the group may change the top the core sees (most full-depth updates
    // are deeper: nothing to send, nothing to recompute).
    let mut touched = false;
    let mut seen_snapshot = false;
    let mut last_was_snapshot = false;
    while let Some((n, line)) = rows.next() {
        stats.book_rows += 1;
        let row = match line {
            Ok(l) if l.trim().is_empty() => continue,
            Ok(l) => book_row(l, spec, &mut book_symbol),
            Err(_) => Err("not UTF-8 text"),
        };
        let row = match row {
            Ok(Some(r)) => r,
            Ok(None) => {
                stats.other_symbol += 1;
                continue;
            }
            Err(why) => {
                stats.malformed(&spec.book_name, n, why);
                continue;
            }
        };
        if !row.snapshot && !seen_snapshot {
            stats.before_snapshot += 1;
            continue;
        }
        let starts = match group {
            None => true,
            Some((t, snap)) => t != row.local_us || snap != row.snapshot,
        };
        if starts {
            if let Some((t, snap)) = group
                && (snap || touched)
            {
                flush(&mut em, t, snap, &mut f);
            }
            touched = false;
            // Trades up to this update go first (time order; a trade at the same instant
            // before the book change it caused).
            while let Some(t) = next_trade.as_ref().filter(|t| t.local_us <= row.local_us) {
                em.trade_frame(t);
                f(t.local_us * 1_000, em.frame.as_bytes());
                next_trade = tr
                    .as_mut()
                    .and_then(|l| next_trade_of(l, spec, &mut trade_symbol, &mut stats));
            }
            if row.snapshot && !last_was_snapshot {
                // A snapshot after updates: a new book.
                em.book.bids.clear();
                em.book.asks.clear();
            }
            group = Some((row.local_us, row.snapshot));
        }
        seen_snapshot |= row.snapshot;
        last_was_snapshot = row.snapshot;
        touched |= em.book.touches_top(row.bid, row.price, spec.depth);
        em.book.set(row.bid, row.price, row.qty);
    }
    if let Some((t, snap)) = group
        && (snap || touched)
    {
        flush(&mut em, t, snap, &mut f);
    }
    while let Some(t) = next_trade {
        em.trade_frame(&t);
        f(t.local_us * 1_000, em.frame.as_bytes());
        next_trade = tr
            .as_mut()
            .and_then(|l| next_trade_of(l, spec, &mut trade_symbol, &mut stats));
    }
    Ok(stats)
}

/// The frames as a WildBot recording (`{"rx_ns":..,"frame":..}` lines), for a sweep, which
/// replays one input many times. It holds the whole converted day in memory.
///
/// # Errors
/// As [`for_each_frame`].
pub fn to_recording(
    spec: &TardisSpec,
    book: impl BufRead,
    trades: Option<Box<dyn BufRead>>,
) -> Result<(Vec<u8>, TardisStats), BacktestError> {
    let mut out = Vec::with_capacity(1 << 20);
    let stats = for_each_frame(spec, book, trades, |ts, frame| {
        out.extend_from_slice(b"{\"rx_ns\":");
        out.extend_from_slice(ts.to_string().as_bytes());
        out.extend_from_slice(b",\"frame\":");
        out.extend_from_slice(frame);
        out.extend_from_slice(b"}\n");
    })?;
    Ok((out, stats))
}

fn next_trade_of<R: BufRead>(
    l: &mut Lines<R>,
    spec: &TardisSpec,
    sym: &mut SymbolCache,
    stats: &mut TardisStats,
) -> Option<TradeRow> {
    loop {
        let (n, line) = l.next()?;
        stats.trade_rows += 1;
        match line.map_err(|_| "not UTF-8 text").and_then(|s| {
            if s.trim().is_empty() {
                Ok(None)
            } else {
                trade_row(s, spec, sym)
            }
        }) {
            Ok(Some(t)) => return Some(t),
            Ok(None) => stats.other_symbol += 1,
            Err(why) => stats.malformed(&spec.trades_name, n, why),
        }
    }
}

fn flush(em: &mut Emitter<'_>, local_us: i64, snapshot: bool, f: &mut impl FnMut(Nanos, &[u8])) {
    if snapshot {
        em.snapshot();
    } else if !em.update() {
        return;
    }
    f(local_us * 1_000, em.frame.as_bytes());
}

/// Checks the header names Tardis's columns (`key` is the column that tells the files apart).
fn header<R: BufRead>(l: &mut Lines<R>, file: &str, key: &str) -> Result<(), BacktestError> {
    let bad = |why: String| BacktestError::Input {
        file: file.to_string(),
        why,
    };
    let line = match l.next() {
        None => return Err(bad("empty: not a Tardis CSV".into())),
        Some((_, Err(e))) => return Err(bad(e)),
        Some((_, Ok(s))) => s.to_string(),
    };
    let cols: Vec<&str> = line.split(',').collect();
    let want = if key == "id" {
        [
            "exchange",
            "symbol",
            "timestamp",
            "local_timestamp",
            "id",
            "side",
            "price",
            "amount",
        ]
    } else {
        [
            "exchange",
            "symbol",
            "timestamp",
            "local_timestamp",
            "is_snapshot",
            "side",
            "price",
            "amount",
        ]
    };
    if cols != want {
        return Err(bad(format!(
            "not a Tardis {} CSV: the header should be {}",
            if key == "id" {
                "trades"
            } else {
                "incremental_book_L2"
            },
            want.join(",")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOK_HEAD: &str =
        "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n";
    const TRADES_HEAD: &str = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n";

    fn spec(depth: usize) -> TardisSpec {
        TardisSpec {
            symbol: "BTC/USD".into(),
            depth,
            price_precision: 1,
            qty_precision: 8,
            book_name: "book.csv".into(),
            trades_name: "trades.csv".into(),
        }
    }

    fn frames(
        depth: usize,
        book: &str,
        trades: Option<&str>,
    ) -> (Vec<(Nanos, String)>, TardisStats) {
        let mut out = Vec::new();
        let t: Option<Box<dyn BufRead>> = trades.map(|t| {
            Box::new(std::io::Cursor::new(t.to_string().into_bytes())) as Box<dyn BufRead>
        });
        let stats = for_each_frame(&spec(depth), book.as_bytes(), t, |ts, f| {
            out.push((ts, String::from_utf8(f.to_vec()).unwrap()));
        })
        .unwrap();
        (out, stats)
    }

    #[test]
    fn a_snapshot_then_updates_become_kraken_book_frames_at_the_configured_depth() {
        let book = format!(
            "{BOOK_HEAD}\
kraken,XBT/USD,1000,1500,false,bid,99.0,1\n\
kraken,XBT/USD,2000,2500,true,bid,100.0,1.5\n\
kraken,XBT/USD,2000,2500,true,bid,99.5,2\n\
kraken,XBT/USD,2000,2500,true,bid,99.0,3\n\
kraken,XBT/USD,2000,2500,true,ask,100.5,1\n\
kraken,XBT/USD,2000,2500,true,ask,101.0,2\n\
kraken,XBT/USD,3000,3500,false,bid,100.0,0\n\
kraken,XBT/USD,4000,4500,false,bid,98.0,7\n"
        );
        let (f, stats) = frames(2, &book, None);
        assert_eq!(
            stats.before_snapshot, 1,
            "rows before the first snapshot are skipped"
        );
        assert_eq!(
            f.len(),
            2,
            "the update below the top 2 sends nothing: {f:?}"
        );
        assert_eq!(f[0].0, 2_500_000, "local_timestamp µs → ns");
        assert_eq!(
            f[0].1,
            r#"{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":[{"price":100.0,"qty":1.50000000},{"price":99.5,"qty":2.00000000}],"asks":[{"price":100.5,"qty":1.00000000},{"price":101.0,"qty":2.00000000}]}]}"#
        );
        // The best bid goes: 99.0 slides into the top 2, as Kraken would send it.
        assert_eq!(
            f[1].1,
            r#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":99.0,"qty":3.00000000},{"price":100.0,"qty":0.00000000}],"asks":[]}]}"#
        );
    }

    #[test]
    fn a_mid_file_snapshot_starts_a_new_book_and_trades_merge_in_time_order() {
        let book = format!(
            "{BOOK_HEAD}\
kraken,BTC/USD,1,10,true,bid,100.0,1\n\
kraken,BTC/USD,1,10,true,ask,101.0,1\n\
kraken,BTC/USD,2,20,false,bid,100.5,1\n\
kraken,BTC/USD,3,30,true,bid,90.0,1\n\
kraken,BTC/USD,3,30,true,ask,91.0,1\n"
        );
        let trades = format!(
            "{TRADES_HEAD}\
kraken,BTC/USD,15,15,77,sell,100.0,0.5\n\
kraken,BTC/USD,40,40,78,buy,91.0,0.25\n"
        );
        let (f, _) = frames(10, &book, Some(&trades));
        let kinds: Vec<&str> = f
            .iter()
            .map(|(_, t)| {
                if t.contains("trade") {
                    "trade"
                } else if t.contains("snapshot") {
                    "snapshot"
                } else {
                    "update"
                }
            })
            .collect();
        assert_eq!(kinds, ["snapshot", "trade", "update", "snapshot", "trade"]);
        assert!(f.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(
            !f[3].1.contains("100.0"),
            "the new book forgets the old levels: {}",
            f[3].1
        );
        assert!(
            f[1].1
                .contains(r#""side":"sell","price":100.0,"qty":0.50000000"#)
        );
        assert!(f[1].1.contains(r#""trade_id":77"#));
    }

    #[test]
    fn malformed_rows_are_counted_and_named_by_line_never_a_panic() {
        let book = format!(
            "{BOOK_HEAD}\
kraken,BTC/USD,1,10,true,bid,100.0,1\n\
kraken,BTC/USD,1,10,true,ask,101.0\n\
kraken,BTC/USD,2,x,false,bid,100.5,1\n\
kraken,BTC/USD,2,20,maybe,bid,100.5,1\n\
kraken,BTC/USD,2,20,false,middle,100.5,1\n\
kraken,BTC/USD,2,20,false,bid,-1,1\n\
binance,BTCUSDT,2,20,false,bid,100.5,1\n\
kraken,ETH/USD,2,20,false,bid,100.5,1\n"
        );
        let (_, s) = frames(10, &book, None);
        assert_eq!(s.malformed, 5);
        assert_eq!(s.other_symbol, 2);
        assert_eq!(s.errors[0], "book.csv:3: expected 8 columns");
        assert_eq!(s.errors[1], "book.csv:4: local_timestamp is not an integer");
        assert!(s.errors[4].starts_with("book.csv:7: price"));
        let e = for_each_frame(&spec(10), "a,b\n".as_bytes(), None, |_, _| {}).unwrap_err();
        assert!(
            e.to_string()
                .contains("not a Tardis incremental_book_L2 CSV"),
            "{e}"
        );
    }

    #[test]
    fn symbols_map_across_tardis_spellings() {
        for s in ["XBT/USD", "BTC/USD", "XBTUSD", "btc-usd"] {
            assert!(same_symbol(s, "BTC/USD"), "{s}");
        }
        assert!(!same_symbol("ETH/USD", "BTC/USD"));
    }
}
