//! Reading recorded feeds: the files `verify-feed` and replay take.
//!
//! Three shapes are accepted, detected automatically:
//!
//! 1. **Raw lines**: one Kraken WS v2 JSON message per line.
//! 2. **Recorder lines** (WildBot's recorder, and DepthCharge's captures, which use the same
//!    shape): an optional metadata header line, then one object per line,
//!    `{"rx_ns": <receive time, ns>, ["dir": "tx",] "frame": <the frame exactly as received>}`.
//!    `dir: "tx"` lines are what we sent and are skipped. A frame that was not valid JSON is
//!    stored as a JSON string instead of an object; it is unescaped here. WildBot's recorder
//!    also writes the core's other inputs, `{"rx_ns": …, "event": "timer" | "disconnected"}`:
//!    [`for_each_record`] skips them (counted), [`for_each_input`] hands them out.
//! 3. **python-kraken-sdk fixture**: one JSON document `{"init": <snapshot>, "updates": [...]}`.
//!
//! Frames are handed out as the exact bytes of the file (number text untouched), so checksums
//! can be verified "as written".

use crate::backtest::error::BacktestError;
use crate::core::wire::json::{Cursor, Kind};

/// Refuses what cannot be a feed before any work is done: an empty file, or binary data (a
/// NUL byte or invalid UTF-8 in its first 64 KiB).
///
/// # Errors
/// [`BacktestError::NotFeed`] saying which.
pub fn check_text(data: &[u8]) -> Result<(), BacktestError> {
    if data.iter().all(u8::is_ascii_whitespace) {
        return Err(BacktestError::NotFeed("the file is empty"));
    }
    let head = &data[..data.len().min(64 * 1024)];
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        // A multi-byte character cut at the 64 KiB boundary is still text.
        Err(e) if e.error_len().is_none() => "",
        Err(_) => return Err(BacktestError::NotFeed("binary data, not UTF-8 text")),
    };
    if text.contains('\0') {
        return Err(BacktestError::NotFeed("binary data, not text"));
    }
    Ok(())
}

/// One frame from a feed file.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// 1-based line number (message number for the fixture format).
    pub line: usize,
    /// Receive time, when the file has one.
    pub rx_ns: Option<i64>,
    /// The frame text.
    pub frame: &'a [u8],
}

/// What was skipped while reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Blank lines.
    pub blank: u64,
    /// Metadata header lines.
    pub header: u64,
    /// Frames we sent (`dir: "tx"`).
    pub sent: u64,
    /// Recorder lines that could not be read (torn last line, garbage).
    pub bad_lines: u64,
    /// Core events (timer ticks, disconnects) in a WildBot recording.
    pub events: u64,
}

/// A core input from a feed file.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// A received frame.
    Frame(Record<'a>),
    /// The periodic timer tick, at this time.
    Timer(i64),
    /// The connection ended, at this time.
    Disconnected(i64),
}

/// Keys that can start a Kraken message; a first line starting otherwise is a header.
const KRAKEN_KEYS: [&[u8]; 11] = [
    b"channel",
    b"method",
    b"type",
    b"data",
    b"error",
    b"success",
    b"result",
    b"req_id",
    b"time_in",
    b"time_out",
    b"symbol",
];

/// Calls `f` for every received frame in `data`.
///
/// # Errors
/// Only for the fixture format when the document is not valid JSON of that shape.
pub fn for_each_record(
    data: &[u8],
    mut f: impl FnMut(Record<'_>),
) -> Result<Skipped, BacktestError> {
    for_each_input(data, |i| {
        if let Input::Frame(r) = i {
            f(r);
        }
    })
}

/// Calls `f` for every core input in `data`: frames, and the timer and disconnect events of a
/// WildBot recording.
///
/// # Errors
/// As [`for_each_record`].
pub fn for_each_input(data: &[u8], mut f: impl FnMut(Input<'_>)) -> Result<Skipped, BacktestError> {
    if looks_like_fixture(data) {
        return read_fixture(data, |r| f(Input::Frame(r)));
    }
    let mut skipped = Skipped::default();
    let mut unescaped = String::new();
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', data).chain(std::iter::once(data.len()));
    for (i, end) in ends.enumerate() {
        let raw_line = &data[start..end];
        start = end + 1;
        let line = trim(raw_line);
        let no = i + 1;
        if line.is_empty() {
            skipped.blank += 1;
            continue;
        }
        match first_key(line) {
            Some(k) if k == b"rx_ns" || k == b"frame" || k == b"dir" => {
                match read_wrapped(line, &mut unescaped) {
                    Some(Wrapped::Received { rx_ns, frame }) => f(Input::Frame(Record {
                        line: no,
                        rx_ns,
                        frame,
                    })),
                    Some(Wrapped::Unescaped { rx_ns }) => f(Input::Frame(Record {
                        line: no,
                        rx_ns,
                        frame: unescaped.as_bytes(),
                    })),
                    Some(Wrapped::Sent) => skipped.sent += 1,
                    Some(Wrapped::Event { rx_ns, timer }) => {
                        skipped.events += 1;
                        f(if timer {
                            Input::Timer(rx_ns)
                        } else {
                            Input::Disconnected(rx_ns)
                        });
                    }
                    None => skipped.bad_lines += 1,
                }
            }
            Some(k) if no == 1 && !KRAKEN_KEYS.contains(&k) => skipped.header += 1,
            _ => f(Input::Frame(Record {
                line: no,
                rx_ns: None,
                frame: line,
            })),
        }
    }
    Ok(skipped)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s
        && first.is_ascii_whitespace()
    {
        s = rest;
    }
    while let [rest @ .., last] = s
        && last.is_ascii_whitespace()
    {
        s = rest;
    }
    s
}

fn first_key(line: &[u8]) -> Option<&[u8]> {
    let mut c = Cursor::new(line);
    c.begin_object().ok()?;
    let mut first = true;
    c.next_key(&mut first).ok().flatten()
}

enum Wrapped<'a> {
    Received { rx_ns: Option<i64>, frame: &'a [u8] },
    Unescaped { rx_ns: Option<i64> },
    Sent,
    Event { rx_ns: i64, timer: bool },
}

fn read_wrapped<'a>(line: &'a [u8], unescaped: &mut String) -> Option<Wrapped<'a>> {
    // WildBot's recorder writes exactly `{"rx_ns":N,"frame":{...}}`: take the frame without
    // scanning it (the core's parser reads it next anyway). Anything else: the general path.
    if let Some(rest) = line.strip_prefix(br#"{"rx_ns":"#)
        && let Some(digits) = rest.iter().position(|b| !b.is_ascii_digit())
        && let Some(frame) = rest[digits..].strip_prefix(br#","frame":{"#)
        && line.ends_with(b"}}")
    {
        let rx_ns = std::str::from_utf8(&rest[..digits])
            .ok()?
            .parse::<i64>()
            .ok();
        let start = line.len() - frame.len() - 1;
        return Some(Wrapped::Received {
            rx_ns,
            frame: &line[start..line.len() - 1],
        });
    }
    let mut c = Cursor::new(line);
    c.begin_object().ok()?;
    let mut first = true;
    let (mut rx_ns, mut frame, mut frame_is_string, mut sent) = (None, None, false, false);
    let mut event = None;
    while let Some(key) = c.next_key(&mut first).ok()? {
        match key {
            b"rx_ns" => {
                let n = c.number().ok()?;
                rx_ns = std::str::from_utf8(n).ok()?.parse::<i64>().ok();
            }
            b"dir" => sent = c.string().ok()? == b"tx",
            b"event" => {
                event = Some(match c.string().ok()? {
                    b"timer" => true,
                    b"disconnected" => false,
                    _ => return None,
                });
            }
            b"frame" => {
                frame_is_string = c.peek_kind().ok()? == Kind::String;
                frame = Some(c.value_span().ok()?);
            }
            _ => c.skip_value().ok()?,
        }
    }
    c.end().ok()?;
    if sent {
        return Some(Wrapped::Sent);
    }
    if let Some(timer) = event {
        return Some(Wrapped::Event {
            rx_ns: rx_ns?,
            timer,
        });
    }
    let frame = frame?;
    if frame_is_string {
        *unescaped = serde_json::from_slice::<String>(frame).ok()?;
        return Some(Wrapped::Unescaped { rx_ns });
    }
    Some(Wrapped::Received { rx_ns, frame })
}

fn looks_like_fixture(data: &[u8]) -> bool {
    let head = trim(&data[..data.len().min(256)]);
    if !head.starts_with(b"{") {
        return false;
    }
    // A multi-line JSON document whose first key is "init".
    let first_line = data.split(|&b| b == b'\n').next().unwrap_or(b"");
    let mut c = Cursor::new(trim(first_line));
    if c.skip_value().is_ok() {
        return false; // the first line is a complete message: a line-oriented file
    }
    let start = data.iter().position(|&b| b == b'"').unwrap_or(0);
    data[start..].starts_with(b"\"init\"")
}

fn read_fixture(data: &[u8], mut f: impl FnMut(Record<'_>)) -> Result<Skipped, BacktestError> {
    #[derive(serde::Deserialize)]
    struct Fixture<'a> {
        #[serde(borrow)]
        init: &'a serde_json::value::RawValue,
        #[serde(borrow)]
        updates: Vec<&'a serde_json::value::RawValue>,
    }
    let fx: Fixture<'_> =
        serde_json::from_slice(data).map_err(|e| BacktestError::Fixture(e.to_string()))?;
    // Pretty-printed messages: compact them so they are single frames (numbers keep their text).
    let mut buf = Vec::new();
    for (i, raw) in std::iter::once(fx.init).chain(fx.updates).enumerate() {
        buf.clear();
        compact(raw.get().as_bytes(), &mut buf);
        f(Record {
            line: i + 1,
            rx_ns: None,
            frame: &buf,
        });
    }
    Ok(Skipped::default())
}

/// Removes insignificant whitespace from JSON text without touching strings or numbers.
fn compact(src: &[u8], out: &mut Vec<u8>) {
    let mut in_str = false;
    let mut esc = false;
    for &b in src {
        if in_str {
            out.push(b);
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_str = false;
            }
        } else if b == b'"' {
            in_str = true;
            out.push(b);
        } else if !b.is_ascii_whitespace() {
            out.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(data: &str) -> (Vec<(usize, Option<i64>, String)>, Skipped) {
        let mut v = Vec::new();
        let s = for_each_record(data.as_bytes(), |r| {
            v.push((
                r.line,
                r.rx_ns,
                String::from_utf8_lossy(r.frame).into_owned(),
            ));
        })
        .unwrap();
        (v, s)
    }

    #[test]
    fn raw_lines() {
        let (v, s) = collect("{\"channel\":\"heartbeat\"}\n\n{\"method\":\"pong\"}\n");
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].0, 3);
        assert_eq!(s.blank, 2);
    }

    #[test]
    fn recorder_lines_with_header_sent_string_and_torn_line() {
        let data = concat!(
            "{\"captured_at\":\"x\",\"depth\":25}\n",
            "{\"rx_ns\": 5, \"dir\": \"tx\", \"frame\": {\"method\":\"subscribe\"}}\n",
            "{\"rx_ns\": 6, \"frame\": {\"channel\":\"book\",\"data\":[{\"price\":0.0280}]}}\n",
            "{\"rx_ns\": 7, \"frame\": \"{\\\"chan\"}\n",
            "{\"rx_ns\": 8, \"fra",
        );
        let (v, s) = collect(data);
        assert_eq!(
            v[0],
            (
                3,
                Some(6),
                "{\"channel\":\"book\",\"data\":[{\"price\":0.0280}]}".to_string()
            )
        );
        assert_eq!(v[1], (4, Some(7), "{\"chan".to_string()));
        assert_eq!((s.header, s.sent, s.bad_lines), (1, 1, 1));
    }

    #[test]
    fn fixture_document() {
        let data =
            "{\n  \"init\": {\"a\": 1.50},\n  \"updates\": [ {\"b\" : \"x y\"}, {\"c\": 2} ]\n}\n";
        let (v, _) = collect(data);
        let frames: Vec<_> = v.iter().map(|r| r.2.as_str()).collect();
        assert_eq!(frames, vec!["{\"a\":1.50}", "{\"b\":\"x y\"}", "{\"c\":2}"]);
    }
}
