//! `verify-feed`: replays recorded book messages through the parser and book and checks every
//! checksum Kraken sent.

use std::fmt::Write as _;

use crate::backtest::error::BacktestError;
use crate::backtest::feedfile::{Skipped, check_text, for_each_record};
use crate::core::book::{Book, BookError, ChecksumFormat, KRAKEN_DEPTHS};
use crate::core::wire::json::Cursor;
use crate::core::wire::parse::{Channel, Message, Parser};

/// Unit precision used when the digits are taken as written (wide enough for any pair).
const AS_WRITTEN_UNITS: u8 = 10;

/// Options of `verify-feed`.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions {
    /// Depth when the file has no subscribe ack (default 10).
    pub depth: Option<u16>,
    /// Format prices with this many decimals (else as written).
    pub price_precision: Option<u8>,
    /// Format quantities with this many decimals (else as written).
    pub qty_precision: Option<u8>,
}

/// Where the depth came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepthSource {
    /// The subscribe ack in the file.
    Ack,
    /// `--depth`.
    Flag,
    /// The default, 10.
    Default,
}

/// The result for one file.
#[derive(Debug, Clone, Default)]
pub struct FileReport {
    /// Book symbol found.
    pub symbol: Option<String>,
    /// Depth used.
    pub depth: u16,
    /// Where it came from.
    pub depth_source: Option<DepthSource>,
    /// Frames read.
    pub messages: u64,
    /// Book snapshots applied.
    pub snapshots: u64,
    /// Book updates applied.
    pub updates: u64,
    /// Checksums that matched.
    pub matched: u64,
    /// Line numbers (with exchange / our value) of mismatches.
    pub mismatches: Vec<(usize, u32, u32)>,
    /// Lines where the book crossed.
    pub crossed: Vec<usize>,
    /// Book updates skipped while waiting for a snapshot after a failure (or before the first).
    pub unsynced: u64,
    /// Malformed frames: line and error.
    pub malformed: Vec<(usize, String)>,
    /// What the reader skipped.
    pub skipped: Skipped,
}

impl FileReport {
    /// True when every checksum matched, at least one was checked, and nothing was malformed.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
            && self.crossed.is_empty()
            && self.malformed.is_empty()
            && self.matched > 0
    }

    /// Human-readable report.
    #[must_use]
    pub fn render(&self, name: &str, opts: &VerifyOptions) -> String {
        let mut s = String::new();
        let src = match self.depth_source {
            Some(DepthSource::Ack) => "from the subscribe ack",
            Some(DepthSource::Flag) => "from --depth",
            _ => "default",
        };
        let prec = match (opts.price_precision, opts.qty_precision) {
            (None, None) => "digits as written".to_string(),
            (p, q) => format!(
                "price {} / qty {}",
                p.map_or("as written".into(), |v| format!("{v} decimals")),
                q.map_or("as written".into(), |v| format!("{v} decimals"))
            ),
        };
        let _ = writeln!(
            s,
            "{name}: {} depth {} ({src}), {prec}",
            self.symbol.as_deref().unwrap_or("(no book symbol)"),
            self.depth
        );
        let _ = writeln!(
            s,
            "  messages {}, snapshots {}, updates {}, checksums matched {}, mismatched {}, crossed {}, unsynced updates {}, malformed {}",
            self.messages,
            self.snapshots,
            self.updates,
            self.matched,
            self.mismatches.len(),
            self.crossed.len(),
            self.unsynced,
            self.malformed.len()
        );
        for (line, exp, ours) in &self.mismatches {
            let _ = writeln!(
                s,
                "  MISMATCH line {line}: exchange checksum {exp}, ours {ours}"
            );
        }
        for line in &self.crossed {
            let _ = writeln!(s, "  CROSSED line {line}");
        }
        for (line, e) in &self.malformed {
            let _ = writeln!(s, "  MALFORMED line {line}: {e}");
        }
        if self.matched == 0 && self.mismatches.is_empty() {
            let _ = writeln!(
                s,
                "  NOTHING VERIFIED: no book message with a checksum could be applied"
            );
        }
        let _ = writeln!(s, "  {}", if self.passed() { "OK" } else { "FAILED" });
        s
    }
}

/// Finds the book depth in a subscribe ack, and the first book symbol.
fn scan(data: &[u8]) -> (Option<u16>, Option<String>) {
    let mut depth = None;
    let mut symbol = None;
    let mut probe = Parser::new("", 0, 0);
    let _ = for_each_record(data, |r| {
        if depth.is_none()
            && let Ok(Message::Subscribed(ack)) = probe.parse(r.frame)
            && ack.channel == Channel::Book
        {
            depth = ack.depth;
        }
        if symbol.is_none() {
            symbol = book_symbol(r.frame);
        }
    });
    (depth, symbol)
}

/// `data[0].symbol` of a `book` message.
fn book_symbol(frame: &[u8]) -> Option<String> {
    let mut c = Cursor::new(frame);
    c.begin_object().ok()?;
    let (mut is_book, mut sym) = (false, None);
    let mut first = true;
    while let Some(k) = c.next_key(&mut first).ok()? {
        match k {
            b"channel" => is_book = c.string().ok()? == b"book",
            b"data" => {
                c.begin_array().ok()?;
                let mut f = true;
                if c.next_element(&mut f).ok()? {
                    c.begin_object().ok()?;
                    let mut f2 = true;
                    while let Some(k2) = c.next_key(&mut f2).ok()? {
                        if k2 == b"symbol" {
                            sym = Some(String::from_utf8_lossy(c.string().ok()?).into_owned());
                        } else {
                            c.skip_value().ok()?;
                        }
                    }
                }
                return if is_book { sym } else { None };
            }
            _ => c.skip_value().ok()?,
        }
    }
    if is_book { sym } else { None }
}

/// Verifies one file's contents.
///
/// # Errors
/// The file is not in a readable feed format, or its depth is not one Kraken offers.
pub fn verify(data: &[u8], opts: &VerifyOptions) -> Result<FileReport, BacktestError> {
    check_text(data)?;
    let (ack_depth, symbol) = scan(data);
    let mut rep = FileReport {
        symbol: symbol.clone(),
        ..FileReport::default()
    };
    let (depth, source) = match (ack_depth, opts.depth) {
        (Some(d), _) => (d, DepthSource::Ack),
        (None, Some(d)) => (d, DepthSource::Flag),
        (None, None) => (10, DepthSource::Default),
    };
    if !KRAKEN_DEPTHS.contains(&depth) {
        return Err(BacktestError::Depth(depth));
    }
    rep.depth = depth;
    rep.depth_source = Some(source);
    let pp = opts.price_precision.unwrap_or(AS_WRITTEN_UNITS);
    let qp = opts.qty_precision.unwrap_or(AS_WRITTEN_UNITS);
    let format = ChecksumFormat {
        price_decimals: opts.price_precision,
        qty_decimals: opts.qty_precision,
    };
    let mut parser = Parser::new(symbol.as_deref().unwrap_or(""), pp, qp);
    let mut book = Book::new(depth, pp, qp, format);
    let mut recognised = 0u64;
    rep.skipped = for_each_record(data, |r| {
        rep.messages += 1;
        let h = match parser.parse(r.frame) {
            Ok(Message::Book(h)) => h,
            Ok(_) => {
                recognised += 1;
                return;
            }
            Err(e) => {
                rep.malformed.push((r.line, e.to_string()));
                return;
            }
        };
        match book.apply(&h, parser.bids(), parser.asks()) {
            Ok(a) => {
                if h.snapshot {
                    rep.snapshots += 1;
                } else {
                    rep.updates += 1;
                }
                rep.matched += u64::from(a.checksum_matched);
            }
            Err(BookError::ChecksumMismatch { expected, computed }) => {
                rep.mismatches.push((r.line, expected, computed));
            }
            Err(BookError::Crossed { .. }) => rep.crossed.push(r.line),
            Err(BookError::NotSynced) => rep.unsynced += 1,
        }
    })?;
    let book_messages = rep.snapshots
        + rep.updates
        + (rep.mismatches.len() + rep.crossed.len()) as u64
        + rep.unsynced;
    // Nothing read as a Kraken message: not a feed (heartbeats only is a feed, unverified).
    if book_messages == 0 && recognised == 0 {
        return Err(BacktestError::NotFeed("no Kraken WS v2 message in it"));
    }
    Ok(rep)
}
