//! Replay: a recorded feed through exactly the core that trades live, on paper, with the
//! file's timestamps, and a report of how the strategy did.
//!
//! A WildBot recording holds every input the core got (frames, timer ticks, disconnects), so
//! replaying it reproduces a paper session fill for fill. Files without timer events (raw v2
//! lines, other recorders, `kraken-sim record`) get a timer tick every 100 ms of file time, as
//! the feed thread gives one. Frames without a receive time are taken 1 ms apart.
//!
//! Same input and config → the same report, byte for byte (`--json`): nothing here reads a
//! clock or depends on the machine.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::backtest::error::BacktestError;
use crate::backtest::feedfile::{Input, check_text, for_each_input};
use crate::backtest::tardis::{TardisSpec, TardisStats, for_each_frame};
use crate::backtest::trace::Trace;
use crate::core::engine::TIMER_NS;
use crate::core::event::{Event, Intent, MAX_INTENTS_PER_EVENT, Rule};
use crate::core::time::{MS, Nanos};
use crate::core::{Core, Settings};

/// Client order ids of a replay start here (any fixed value keeps it deterministic).
const FIRST_ORDER_ID: u64 = 1;

/// What a replay did.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReplayReport {
    /// Frames fed to the core.
    pub frames: u64,
    /// Strategy evaluations (frames and timer ticks).
    pub ticks: u64,
    /// Book messages.
    pub book_messages: u64,
    /// Checksum mismatches (each one resynchronises the book).
    pub checksum_mismatches: u64,
    /// Malformed frames skipped.
    pub parse_errors: u64,
    /// File time from the first to the last input, seconds.
    pub duration_s: f64,
    /// Orders placed (quotes, including the new half of a requote).
    pub quotes: u64,
    /// Orders cancelled.
    pub cancels: u64,
    /// Fills.
    pub fills: u64,
    /// Seconds of file time before the first fill.
    pub first_fill_s: Option<f64>,
    /// Fees paid (quote currency).
    pub fees: f64,
    /// Closed round trips.
    pub round_trips: u64,
    /// Winning round trips (PnL after both sides' fees > 0).
    pub wins: u64,
    /// Losing round trips.
    pub losses: u64,
    /// Wins / round trips.
    pub win_rate: f64,
    /// Realised PnL before fees.
    pub realized_pnl: f64,
    /// Equity at the end minus equity at the start (fees and open position included).
    pub final_pnl: f64,
    /// Largest fall of equity from its peak, percent.
    pub max_drawdown_pct: f64,
    /// Share of the file's time with a position, percent.
    pub time_in_market_pct: f64,
    /// Share of the file's time with at least one order resting, percent.
    pub quote_uptime_pct: f64,
    /// Position at the end (base currency).
    pub final_position: f64,
    /// Ticks on which each rule held quoting back, by rule.
    pub paused_by: BTreeMap<&'static str, u64>,
    /// Fill model in force.
    pub fill_model: &'static str,
    /// Book frames whose checksum matched (Kraken's CRC32 of the top 10).
    pub checksums_ok: u64,
    /// Whether the book was checked against Kraken's checksums (`false` for input that
    /// carries none, such as Tardis.dev data).
    pub checksum_verified: bool,
    /// What reading a Tardis.dev file found (`--format tardis`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tardis: Option<TardisStats>,
}

/// Replays `data` (a feed file's bytes) under `settings` (always on paper). `progress` is called
/// with (inputs done, lines in the file) every 4096 inputs. With a `trace`, what happened over
/// time is kept in it too (for the HTML report).
///
/// # Errors
/// An invalid config for the core, or an unreadable file.
pub fn replay(
    settings: &Settings,
    data: &[u8],
    trace: Option<&mut Trace>,
    mut progress: impl FnMut(usize, usize),
) -> Result<ReplayReport, BacktestError> {
    let settings = Settings {
        live_mode: false,
        ..settings.clone()
    };
    check_text(data)?;
    let mut core = Core::new(&settings, FIRST_ORDER_ID)?;
    let mut out: Vec<Intent> = Vec::with_capacity(MAX_INTENTS_PER_EVENT);
    let has_timers = memchr::memmem::find(data, br#""event":"timer""#).is_some();
    let lines = memchr::memchr_iter(b'\n', data).count() + 1;
    let mut r = Run::new(trace);
    let mut inputs = 0usize;
    for_each_input(data, |input| {
        inputs += 1;
        if inputs.is_multiple_of(4096) {
            progress(inputs, lines);
        }
        let (ts, event) = match input {
            Input::Frame(rec) => (
                rec.rx_ns.unwrap_or(r.last.map_or(0, |t| t + MS)),
                Event::Frame(rec.frame),
            ),
            Input::Timer(t) => (t, Event::Timer),
            Input::Disconnected(t) => (t, Event::Disconnected),
        };
        r.feed(&mut core, ts, event, !has_timers, &mut out);
    })?;
    progress(lines, lines);
    r.finish(&core);
    let report = r.report(&core, settings.fill_model.name());
    // Nothing read as a Kraken message: not a feed (a feed of heartbeats only is one).
    if report.book_messages == 0 && report.parse_errors >= report.frames {
        return Err(BacktestError::NotFeed("no Kraken WS v2 message in it"));
    }
    Ok(report)
}

/// Replays Tardis.dev `incremental_book_L2` data (and optionally its trades) under `settings`,
/// on paper, as [`replay`] replays a recording: the book at `book_depth` as Kraken's feed would
/// show it, a timer tick every 100 ms of file time. `progress` gets the book rows read so far;
/// `trace` as for [`replay`].
///
/// # Errors
/// An invalid config for the core, a file that is not Tardis's CSV, or nothing in it for the
/// configured symbol.
pub fn replay_tardis(
    settings: &Settings,
    book: (String, Box<dyn std::io::BufRead>),
    trades: Option<(String, Box<dyn std::io::BufRead>)>,
    trace: Option<&mut Trace>,
    mut progress: impl FnMut(u64),
) -> Result<ReplayReport, BacktestError> {
    let settings = Settings {
        live_mode: false,
        ..settings.clone()
    };
    let mut core = Core::new(&settings, FIRST_ORDER_ID)?;
    let mut out: Vec<Intent> = Vec::with_capacity(MAX_INTENTS_PER_EVENT);
    let spec = TardisSpec {
        symbol: settings.symbol.clone(),
        depth: usize::from(settings.book_depth),
        price_precision: settings.price_precision,
        qty_precision: settings.qty_precision,
        book_name: book.0,
        trades_name: trades.as_ref().map_or(String::new(), |t| t.0.clone()),
    };
    let mut r = Run::new(trace);
    let mut frames = 0u64;
    let stats = for_each_frame(&spec, book.1, trades.map(|t| t.1), |ts, frame| {
        frames += 1;
        if frames.is_multiple_of(65_536) {
            progress(frames);
        }
        r.feed(&mut core, ts, Event::Frame(frame), true, &mut out);
    })?;
    r.finish(&core);
    let mut report = r.report(&core, settings.fill_model.name());
    if report.book_messages == 0 {
        return Err(BacktestError::Input {
            file: spec.book_name,
            why: format!(
                "no {} book rows after a snapshot for exchange kraken ({} rows, {} of another \
                 symbol, {} before the first snapshot, {} malformed)",
                spec.symbol,
                stats.book_rows,
                stats.other_symbol,
                stats.before_snapshot,
                stats.malformed
            ),
        });
    }
    report.tardis = Some(stats);
    Ok(report)
}

/// Running totals between events.
#[derive(Default)]
struct Run<'t> {
    trace: Option<&'t mut Trace>,
    first: Option<Nanos>,
    last: Option<Nanos>,
    in_market_ns: i128,
    quoting_ns: i128,
    quotes: u64,
    cancels: u64,
    first_fill: Option<Nanos>,
    next_timer: Option<Nanos>,
}

impl<'t> Run<'t> {
    fn new(trace: Option<&'t mut Trace>) -> Run<'t> {
        Run {
            trace,
            ..Run::default()
        }
    }

    /// The last point of the trace: the state the replay ended in.
    fn finish(&mut self, core: &Core) {
        if let (Some(t), Some(last)) = (self.trace.as_deref_mut(), self.last) {
            t.finish(core, last);
        }
    }

    /// One input at `ts` (never before the last: time does not run backwards for the core),
    /// after the timer ticks due before it when the input has none of its own.
    fn feed(
        &mut self,
        core: &mut Core,
        ts: Nanos,
        event: Event<'_>,
        add_timers: bool,
        out: &mut Vec<Intent>,
    ) {
        let ts = self.last.map_or(ts, |l| ts.max(l));
        if add_timers {
            loop {
                let due = *self.next_timer.get_or_insert(ts + TIMER_NS);
                if due > ts {
                    break;
                }
                self.step(core, due, Event::Timer, out);
                self.next_timer = Some(due + TIMER_NS);
            }
        }
        self.step(core, ts, event, out);
    }

    fn step(&mut self, core: &mut Core, ts: Nanos, event: Event<'_>, out: &mut Vec<Intent>) {
        // The state since the previous event lasted until now.
        if let Some(prev) = self.last {
            let dt = i128::from(ts - prev);
            if core.account().position != 0 {
                self.in_market_ns += dt;
            }
            if core.orders().live_count() > 0 {
                self.quoting_ns += dt;
            }
        }
        self.first.get_or_insert(ts);
        self.last = Some(ts);
        core.handle(ts, event, out);
        if let Some(t) = self.trace.as_deref_mut() {
            t.observe(core, ts);
        }
        if self.first_fill.is_none() && core.stats().fills > 0 {
            self.first_fill = Some(ts);
        }
        for i in out.iter() {
            match i {
                Intent::Place(_) => self.quotes += 1,
                Intent::Replace { .. } => {
                    self.quotes += 1;
                    self.cancels += 1;
                }
                Intent::Cancel { .. } => self.cancels += 1,
                _ => {}
            }
        }
        out.clear();
    }

    fn report(&self, core: &Core, fill_model: &'static str) -> ReplayReport {
        let st = core.stats();
        let a = core.account();
        let p = core.params();
        let cash = |c: crate::core::money::Cash| c.to_f64(p.price_precision + p.qty_precision);
        let span = match (self.first, self.last) {
            (Some(f), Some(l)) if l > f => i128::from(l - f),
            _ => 0,
        };
        let pct = |part: i128| {
            if span == 0 {
                0.0
            } else {
                part as f64 * 100.0 / span as f64
            }
        };
        let closed = a.wins + a.losses;
        let mut paused_by = BTreeMap::new();
        for r in Rule::ALL {
            paused_by.insert(r.name(), core.pause_counts()[r as usize]);
        }
        let pos = crate::core::money::Qty(a.position.unsigned_abs()).to_f64(p.qty_precision);
        ReplayReport {
            frames: st.frames,
            ticks: st.ticks,
            book_messages: st.book_messages,
            checksum_mismatches: st.checksum_mismatches,
            parse_errors: st.parse_errors_total(),
            duration_s: span as f64 / 1e9,
            quotes: self.quotes,
            cancels: self.cancels,
            fills: st.fills,
            first_fill_s: self
                .first_fill
                .zip(self.first)
                .map(|(f, s)| (f - s) as f64 / 1e9),
            fees: cash(a.fees),
            round_trips: a.round_trips,
            wins: a.wins,
            losses: a.losses,
            win_rate: if closed == 0 {
                0.0
            } else {
                a.wins as f64 / closed as f64
            },
            realized_pnl: cash(a.realised),
            final_pnl: cash(crate::core::money::Cash(a.equity.0 - a.start_equity.0)),
            max_drawdown_pct: a.max_drawdown_ppm as f64 / 10_000.0,
            time_in_market_pct: pct(self.in_market_ns),
            quote_uptime_pct: pct(self.quoting_ns),
            final_position: if a.position < 0 { -pos } else { pos },
            paused_by,
            fill_model,
            checksums_ok: st.checksums_ok,
            checksum_verified: st.checksums_ok > 0,
            tardis: None,
        }
    }
}

/// The Tardis reader's counts, as a report line.
fn tardis_line(t: &TardisStats) -> String {
    let mut line = format!(
        "tardis   {} book rows, {} trade rows; skipped {} before the first snapshot, {} of \
         other symbols, {} malformed\n",
        t.book_rows, t.trade_rows, t.before_snapshot, t.other_symbol, t.malformed
    );
    for e in &t.errors {
        line.push_str(&format!("         {e}\n"));
    }
    line
}

impl ReplayReport {
    /// The report as aligned text.
    #[must_use]
    pub fn render(&self) -> String {
        let mut paused: Vec<String> = self
            .paused_by
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        if paused.is_empty() {
            paused.push("nothing".into());
        }
        format!(
            "replay   {:.1} s of feed, {} frames ({} book messages), {} ticks, {} checksum \
             mismatches, {} parse errors, fill model {}\n\
             quotes   {} placed, {} cancelled, uptime {:.1} %\n\
             fills    {} fills, fees {:.2}, {} round trips ({} won, {} lost, win rate {:.1} %)\n\
             pnl      realised {:.2}, final {:.2} (position {:.8}), max drawdown {:.2} %, \
             in market {:.1} % of the time\n\
             paused   {}\n\
             book     {}\n{}",
            self.duration_s,
            self.frames,
            self.book_messages,
            self.ticks,
            self.checksum_mismatches,
            self.parse_errors,
            self.fill_model,
            self.quotes,
            self.cancels,
            self.quote_uptime_pct,
            self.fills,
            self.fees,
            self.round_trips,
            self.wins,
            self.losses,
            self.win_rate * 100.0,
            self.realized_pnl,
            self.final_pnl,
            self.final_position,
            self.max_drawdown_pct,
            self.time_in_market_pct,
            paused.join(", "),
            if self.checksum_verified {
                format!(
                    "checksum-verified ({} checksums matched)",
                    self.checksums_ok
                )
            } else {
                "not checksum-verified: the input carries no Kraken checksums".to_string()
            },
            self.tardis.as_ref().map(tardis_line).unwrap_or_default()
        )
    }
}
