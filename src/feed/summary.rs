//! The session summary: what a run did, printed at shutdown (and as one JSON object with
//! `--json`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::side::status::{Counters, LatencyRow, StageHists, WorkerReport};

/// The session summary (`--json` prints it as one object).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// `paper` or `live`.
    pub mode: &'static str,
    /// Wall time of the run in seconds.
    pub duration_s: f64,
    /// Feed and core counters (their fields appear at the top level of the JSON).
    #[serde(flatten)]
    pub counters: Counters,
    /// Book updates ignored while waiting for a snapshot.
    pub updates_ignored: u64,
    /// Subscription errors from Kraken.
    pub subscribe_errors: u64,
    /// Pings sent / pongs received.
    pub pings: u64,
    /// Pongs received.
    pub pongs: u64,
    /// Heartbeats received.
    pub heartbeats: u64,
    /// Position in base units.
    pub position: f64,
    /// Realised PnL (quote currency).
    pub realized_pnl: f64,
    /// Unrealised PnL at the last mark.
    pub unrealized_pnl: f64,
    /// Mark-to-market equity.
    pub equity: f64,
    /// The bot's own equity at its first mark (live: budget + own position): drawdown is
    /// measured from here and from the peak.
    pub start_equity: f64,
    /// Highest equity seen.
    pub peak_equity: f64,
    /// Largest drawdown from a peak, percent.
    pub max_drawdown_pct: f64,
    /// Fees paid.
    pub fees_paid: f64,
    /// Frames written by the recorder.
    pub frames_recorded: u64,
    /// Frame received → decoded.
    pub frame_to_parsed: LatencyRow,
    /// Socket readable (or the previous frame done) → frame in hand (TLS + WebSocket decode).
    pub wire_to_frame: LatencyRow,
    /// Book apply with checksum.
    pub book_apply: LatencyRow,
    /// Signals, paper fills, strategy and risk.
    pub strategy: LatencyRow,
    /// Frame received → order intent handed to the worker channel, on the feed thread.
    pub tick_to_intent: LatencyRow,
    /// An add or amend intent → Kraken's answer (live mode), over either transport.
    pub intent_to_ack: LatencyRow,
    /// REST round trip per endpoint (live mode).
    pub rest_round_trip: BTreeMap<String, LatencyRow>,
    /// Requotes sent as AmendOrder (live mode).
    pub amends: u64,
    /// Whether the final cancel-all was confirmed by the exchange (live mode).
    pub shutdown_cancel_confirmed: bool,
    /// Live mode was asked for but the API could not be reached: running paper instead.
    pub live_fallback: bool,
    /// Frame received → core done, every frame.
    pub frame_to_done: LatencyRow,
    /// Whether the feed thread was pinned to `core_id`.
    pub pinned: bool,
    /// Trading state at the end.
    pub state: &'static str,
    /// Journal records restored at start.
    pub journal_restored: u64,
    /// Journal lines written by this run.
    pub journal_written: u64,
    /// Journal records dropped (channel full; should stay 0).
    pub journal_dropped: u64,
    /// The bot's own quote at the end (live: its budget moved by its fills), exact to the
    /// instrument's cash precision as a float.
    pub cash: f64,
    /// Live: the account's base that is not the bot's (never traded).
    pub baseline: f64,
    /// Live: the exchange's last reported base balance.
    pub account_base: Option<f64>,
    /// Live: the exchange's last reported quote balance.
    pub account_quote: Option<f64>,
    /// The position is dust (below the instrument's minimum size).
    pub dust: bool,
    /// Orders sent per second of the run (`orders_placed` / `duration_s`).
    pub orders_per_s: f64,
    /// The private stream at the end: `off`, `down`, `up`, `refused`.
    pub private_link: &'static str,
    /// A fill's arrival (on the private socket, or in the poll's answer) → booked in the core.
    pub fill_to_core: LatencyRow,
    /// Intent received by the REST worker → Kraken's answer.
    pub intent_to_ack_rest: LatencyRow,
    /// Intent taken by WebSocket order entry on the feed thread → Kraken's reply.
    pub intent_to_ack_ws: LatencyRow,
    /// Where orders went while the private stream was up: `rest` or `ws`.
    pub order_transport: &'static str,
    /// Executions snapshots read (one per private connection).
    pub private_snapshots: u64,
    /// Gaps in the executions sequence (each reconciled with REST).
    pub private_sequence_gaps: u64,
    /// Private frames that were malformed (counted, skipped).
    pub private_malformed: u64,
}

impl Summary {
    /// A summary holding only the latency of every stage: the feed thread's histograms, the
    /// order worker's report (live mode) and WebSocket order entry's (transport name, intent
    /// → ack, amends); the caller fills in the rest.
    #[must_use]
    pub fn latency(
        total: &StageHists,
        report: Option<&WorkerReport>,
        ws: Option<(&'static str, &hdrhistogram::Histogram<u64>, u64)>,
    ) -> Summary {
        let mut both =
            report.map_or_else(crate::side::status::histogram, |r| r.intent_to_ack.clone());
        if let Some((_, h, _)) = ws {
            let _ = both.add(h);
        }
        Summary {
            frame_to_parsed: LatencyRow::of(&total.parse),
            wire_to_frame: LatencyRow::of(&total.wire_to_frame),
            book_apply: LatencyRow::of(&total.book),
            strategy: LatencyRow::of(&total.strategy),
            tick_to_intent: LatencyRow::of(&total.tick_to_intent),
            frame_to_done: LatencyRow::of(&total.frame_to_done),
            intent_to_ack: if report.is_some() {
                LatencyRow::of(&both)
            } else {
                LatencyRow::default()
            },
            intent_to_ack_ws: ws.map(|(_, h, _)| LatencyRow::of(h)).unwrap_or_default(),
            order_transport: ws.map_or("rest", |(t, _, _)| t),
            intent_to_ack_rest: report
                .map(|r| LatencyRow::of(&r.intent_to_ack))
                .unwrap_or_default(),
            rest_round_trip: report
                .map(|r| {
                    r.round_trip
                        .iter()
                        .map(|(k, h)| ((*k).to_string(), LatencyRow::of(h)))
                        .collect()
                })
                .unwrap_or_default(),
            amends: report.map_or(0, |r| r.amends) + ws.map_or(0, |(_, _, a)| a),
            shutdown_cancel_confirmed: report.is_some_and(|r| r.shutdown_cancel_confirmed),
            ..Summary::default()
        }
    }
}
