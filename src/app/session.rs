//! A trading session: every thread started and wired, the feed thread run to the end, and the
//! summary and latency table rendered.
//!
//! [`trade`] is the set-up half of the feed thread (journal restore, the order worker, the
//! live → paper fallback, the core) followed by the feed loop; [`run_session`] adds what
//! surrounds it in the `run` and `demo` commands (logging, signals, Telegram, notices, the
//! dashboard) and prints the result.

use crate::app::output::{errln, out, outln};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::Sender;

use crate::app::config::Config;
use crate::core::event::{CancelReason, ClientId, Event, Intent, OrderEvent};
use crate::core::money::Fixed;
use crate::core::paper::FillModel;
use crate::core::time::Nanos;
use crate::core::{Core, SettingsError};
use crate::exec::worker::{self, Adopt, WorkerLink};
use crate::feed::recorder::Recorder;
use crate::feed::{FeedError, FeedParts, FeedThread, Summary};
use crate::kraken::rest::Credentials;
use crate::side::control::ControlLink;
use crate::side::journal::{self, Compaction, Journal, JournalSender, Record};
use crate::side::notify::{AlertText, Notice, Notifier};
use crate::side::status::{LatencyRow, StatusLink, WorkerReport};

/// How a session is bounded, what it records, and who watches it.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop cleanly after this long.
    pub duration: Option<Duration>,
    /// Record every received frame to this file.
    pub record: Option<String>,
    /// Set (from a signal handler or a test) to stop; the loop sees it within a timer tick.
    pub stop: Arc<AtomicBool>,
    /// Kraken API credentials for live mode (from the environment, or the demo pair).
    pub credentials: Option<Credentials>,
    /// Status snapshots and latency for the dashboard.
    pub status: Option<StatusLink>,
    /// The order worker's reports for the dashboard (live mode).
    pub worker_reports: Option<Sender<WorkerReport>>,
    /// The operator's commands (Telegram), taken by the feed thread.
    pub control: Option<ControlLink>,
}

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The feed thread could not start.
    #[error(transparent)]
    Feed(#[from] FeedError),
    /// A setting the core cannot use.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The journal cannot be read or written.
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    /// The journal holds the other mode's account.
    #[error(
        "journal_path {path} holds a {was} account and this run is {now}: use another journal_path"
    )]
    JournalMode {
        /// The journal file.
        path: String,
        /// `LIVE` or `PAPER`: what the journal holds.
        was: &'static str,
        /// What this run is.
        now: &'static str,
    },
    /// Live mode without credentials.
    #[error("live_mode needs KRAKEN_API_KEY and KRAKEN_API_SECRET in the environment")]
    NoCredentials,
    /// A thread could not be started or died.
    #[error("the {0} thread could not start or panicked")]
    Thread(&'static str),
    /// Kraken refused the key, its signature or a permission, or the pair is wrong: a
    /// configuration error (exit 2), never a reason to trade on paper instead.
    #[error(
        "live mode refused: {0} (check KRAKEN_API_KEY / KRAKEN_API_SECRET, the key's permissions, rest_pair and symbol)"
    )]
    LiveRefused(worker::StartError),
}

/// `LIVE` or `PAPER`, for people.
fn mode_name(live: bool) -> &'static str {
    if live { "LIVE" } else { "PAPER" }
}

/// Runs the feed thread's whole session on the calling thread (it becomes the feed thread:
/// pinned to `core_id`) until the duration ends or `opts.stop` is set.
///
/// # Errors
/// Set-up failures: the URL, TLS, the journal, the recorder file, credentials. Network
/// failures are not errors: they are reconnected, and an unreachable API at start falls back
/// to paper.
pub fn trade(
    cfg: &Config,
    opts: &mut RunOptions,
    notifier: &Notifier,
) -> Result<Summary, SessionError> {
    let thread = FeedThread::new(cfg.feed_settings())?;
    let precision = cfg.precision();
    let journal_path = cfg
        .journal_path
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    if journal_path.is_none() && cfg.live_mode {
        log::warn!("journal_path is not set: a restart will not know this run's fills");
    }
    // The journal of earlier runs: what to restore, and (live) which orders to settle.
    let loaded = match &journal_path {
        Some(path) => load_journal(path, precision, cfg.live_mode)?,
        None => journal::Loaded::default(),
    };
    let journal = match &journal_path {
        Some(path) => {
            // The journal thread's mirror of the account, for its snapshots.
            let mut mirror = Core::new(&cfg.core_settings(FillModel::Cross), 1)?;
            mirror.restore(loaded.snapshot.as_ref(), &loaded.entries);
            let every = cfg.journal_snapshot_every;
            let compaction = Compaction::new(mirror, &loaded, cfg.live_mode, every);
            Some(Journal::start(
                path,
                precision,
                Some(loaded.good_len),
                Some(compaction),
            )?)
        }
        None => None,
    };
    let mut settings = cfg.core_settings(FillModel::Cross);
    let (worker, live_fallback) = if cfg.live_mode {
        let adopt = journal_open_orders(&settings, &loaded)?;
        let creds = opts
            .credentials
            .clone()
            .ok_or(SessionError::NoCredentials)?;
        start_worker(cfg, opts, &thread, journal.as_ref(), adopt, creds, notifier)?
    } else {
        (None, false)
    };
    settings.live_mode = worker.is_some();
    // Simulated fills must never enter a live account's journal.
    let journal = match journal {
        Some(j) if live_fallback => {
            log::error!(
                "journal {}: not written while trading on PAPER after the live fallback",
                j.path().display()
            );
            j.finish();
            None
        }
        j => j,
    };
    let recorder = opts.record.as_deref().map(Recorder::start).transpose()?;
    let now = thread.clock().now();
    let mut core = Core::new(&settings, first_order_id(now))?;
    let sender = journal.as_ref().map(Journal::sender);
    restore(&mut core, &loaded, now, sender.as_ref(), worker.is_some());
    let parts = FeedParts {
        core,
        notifier,
        restored: !loaded.entries.is_empty() && worker.is_some(),
        worker,
        journal: sender,
        recorder,
        status: opts.status.as_ref(),
        control: opts.control.take(),
        live_fallback,
    };
    let mut summary = thread.run(parts, opts.duration, &opts.stop);
    if let Some(j) = journal {
        let stats = j.finish();
        summary.journal_written = stats.written.load(Ordering::Relaxed);
        summary.journal_dropped = stats.dropped.load(Ordering::Relaxed);
        summary.journal_restored = loaded.entries.len() as u64;
    }
    Ok(summary)
}

/// Live mode: balances, leftovers and the dead man's switch first (the worker does them as it
/// starts); if the API cannot be reached, trade on paper and say so loudly. Returns the worker
/// and whether live mode fell back to paper.
fn start_worker(
    cfg: &Config,
    opts: &RunOptions,
    thread: &FeedThread,
    journal: Option<&Journal>,
    adopt: Vec<Adopt>,
    creds: Credentials,
    notifier: &Notifier,
) -> Result<(Option<WorkerLink>, bool), SessionError> {
    let wcfg = worker::WorkerConfig {
        reports: opts.worker_reports.clone(),
        journal: journal.map(Journal::sender),
        adopt,
        ..cfg.worker_settings()
    };
    match worker::start(wcfg, creds, thread.waker()) {
        Ok(link) => {
            log::info!(
                "LIVE trading activated on {} ({})",
                cfg.rest_pair,
                cfg.rest_url
            );
            notifier.send(Notice::Mode { live: true });
            notifier.send(Notice::Text(
                AlertText::new(b"LIVE trading activated"),
                true,
            ));
            Ok((Some(link), false))
        }
        Err(e) if e.is_fatal() => {
            notifier.send(Notice::Text(
                AlertText::new(format!("LIVE activation refused: {e}").as_bytes()),
                true,
            ));
            Err(SessionError::LiveRefused(e))
        }
        Err(e) => {
            log::error!("live mode could not start ({e}): falling back to PAPER");
            notifier.send(Notice::Mode { live: false });
            notifier.send(Notice::Text(
                AlertText::new(format!("LIVE activation failed ({e}): PAPER mode").as_bytes()),
                true,
            ));
            Ok((None, true))
        }
    }
}

/// Replays the journal into the core and starts this run's part of it. Paper orders that
/// rested when the last run ended died with its simulated venue: they are cancelled.
fn restore(
    core: &mut Core,
    loaded: &journal::Loaded,
    now: Nanos,
    journal: Option<&JournalSender>,
    live: bool,
) {
    let mut out: Vec<Intent> = Vec::new();
    let still_open = core.restore(loaded.snapshot.as_ref(), &loaded.entries);
    if !loaded.entries.is_empty() {
        let a = core.account();
        let p = core.params().precision();
        log::info!(
            "journal: restored {} fills, {} round trips: position {}, cash {}, fees {}, realised {}",
            a.fill_count(),
            a.round_trips,
            Fixed::new(i128::from(a.position), p.qty),
            a.cash.show(p.cash()),
            a.fees.show(p.cash()),
            a.realised.show(p.cash()),
        );
    }
    if let Some(j) = journal {
        j.send(Record::Session { t: now, live });
        if loaded.entries.is_empty() {
            core.journal_start(now, &mut out);
        }
    }
    if !live {
        for o in still_open {
            log::warn!(
                "journal: order {} was resting on the paper venue when the last run ended: \
                 cancelled",
                o.req.cl_id
            );
            let ev = OrderEvent::Cancelled {
                cl_id: o.req.cl_id,
                reason: CancelReason::Exchange,
            };
            core.handle(now, Event::Order(ev), &mut out);
        }
    }
    // Before the loop only the journal's records have somewhere to go.
    if let Some(j) = journal {
        j.send_records(&out);
    }
}

/// Reads the journal and says what it found; refuses one written in the other mode.
fn load_journal(
    path: &Path,
    p: crate::core::Precision,
    live: bool,
) -> Result<journal::Loaded, SessionError> {
    let loaded = journal::load(path, p)?;
    for (line, why) in &loaded.skipped {
        log::warn!("journal {}: line {line} skipped: {why}", path.display());
    }
    if let Some(was_live) = loaded.live
        && was_live != live
    {
        return Err(SessionError::JournalMode {
            path: path.display().to_string(),
            was: mode_name(was_live),
            now: mode_name(live),
        });
    }
    if loaded.lines > 0 {
        log::info!(
            "journal {}: {} records from {} earlier run(s)",
            path.display(),
            loaded.entries.len(),
            loaded.sessions
        );
    }
    Ok(loaded)
}

/// The orders a journal still had open, for the worker to settle with the exchange.
fn journal_open_orders(
    settings: &crate::core::Settings,
    loaded: &journal::Loaded,
) -> Result<Vec<Adopt>, SessionError> {
    if loaded.entries.is_empty() {
        return Ok(Vec::new());
    }
    let mut probe = Core::new(settings, 1)?;
    Ok(probe
        .restore(loaded.snapshot.as_ref(), &loaded.entries)
        .into_iter()
        .map(|o| Adopt {
            req: o.req,
            exec: o.filled,
            ids: loaded.txids.get(&o.req.cl_id).cloned(),
            placed_ns: o.placed_at,
        })
        .collect())
}

/// Client order ids start from the clock so a restart never reuses one (Kraken's `cl_ord_id`
/// must be unique among open orders).
fn first_order_id(now: Nanos) -> ClientId {
    (now / 1_000) as u64
}

/// How a session is asked for on the command line (`run` and `demo`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SessionArgs {
    /// Stop cleanly after this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Print the session summary as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
    /// Record every received frame with its receive time to this file.
    #[arg(long)]
    pub record: Option<String>,
    /// Log level (off, error, warn, info, debug, trace); overrides `log_level` in the config.
    #[arg(long)]
    pub log_level: Option<String>,
    /// Override a config key, e.g. `--set dashboard_bind=127.0.0.1:0` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

fn init_logging(level: &str) {
    let level = level
        .parse::<log::LevelFilter>()
        .unwrap_or(log::LevelFilter::Info);
    let cfg = simplelog::ConfigBuilder::new()
        .set_time_format_rfc3339()
        .build();
    // Colour only for a person at a terminal: a log file or journald gets plain text
    // (termcolor's Auto looks at TERM, not at where the stream goes). NO_COLOR is honoured.
    let colour = if std::io::stderr().is_terminal() {
        simplelog::ColorChoice::Auto
    } else {
        simplelog::ColorChoice::Never
    };
    // Logs go to stderr: stdout carries the summary (and its JSON line).
    let _ = simplelog::TermLogger::init(level, cfg, simplelog::TerminalMode::Stderr, colour);
}

/// The `run` command (and the demo's session): logging, signals, Telegram, notices and the
/// dashboard around [`trade`] on its own feed thread; prints the summary and the latency
/// table. Exit code 0 after a clean stop, 2 for a usage error, 1 when something failed.
#[must_use]
pub fn run_session(cfg: &Config, args: &SessionArgs, credentials: Option<Credentials>) -> ExitCode {
    init_logging(args.log_level.as_deref().unwrap_or(&cfg.log_level));
    if cfg.live_mode && credentials.is_none() {
        errln(
            "error: config key `live_mode` is true but KRAKEN_API_KEY / KRAKEN_API_SECRET are not \
             set; set them, or live_mode = false to paper trade",
        );
        return ExitCode::from(2);
    }
    let mut opts = RunOptions {
        duration: args.duration.map(Duration::from_secs_f64),
        record: args.record.clone(),
        stop: Arc::default(),
        credentials,
        status: None,
        worker_reports: None,
        control: None,
    };
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // First signal: the feed loop (it wakes at least every 100 ms) sees the flag and shuts
        // down cleanly. A second one, with the flag already set, exits at once.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, opts.stop.clone());
        let _ = signal_hook::flag::register(sig, opts.stop.clone());
    }
    let telegram = match start_telegram(cfg) {
        Ok(t) => t,
        Err(e) => {
            errln(&format!("error: {e}"));
            return ExitCode::from(1);
        }
    };
    let commands = telegram
        .as_ref()
        .filter(|_| cfg.telegram_commands)
        .and_then(|t| start_commands(cfg, t, &mut opts));
    let (notifier, notify_thread) =
        match crate::side::notify::start(telegram.as_ref().map(|t| t.tx.clone())) {
            Ok(n) => n,
            Err(e) => {
                errln(&format!("error: {e}"));
                return ExitCode::from(1);
            }
        };
    let dashboard = match start_dashboard(cfg, &mut opts) {
        Ok(d) => d,
        Err(e) => {
            errln(&format!("error: {e}"));
            return ExitCode::from(1);
        }
    };
    log::info!(
        "WildBot {} {} on {} depth {} ({})",
        env!("CARGO_PKG_VERSION"),
        mode_name(cfg.live_mode),
        cfg.symbol,
        cfg.book_depth,
        cfg.ws_url
    );
    let cfg_for_thread = cfg.clone();
    let feed = std::thread::Builder::new()
        .name("feed".into())
        .spawn(move || trade(&cfg_for_thread, &mut opts, &notifier));
    let result = match feed.map(std::thread::JoinHandle::join) {
        Ok(Ok(r)) => r,
        Ok(Err(_)) | Err(_) => Err(SessionError::Thread("feed")),
    };
    let _ = notify_thread.join();
    if let Some(c) = &commands {
        c.stop();
    }
    if let Some(t) = telegram {
        if let Ok(s) = &result {
            let _ = t.tx.send(crate::side::telegram::Outgoing::Alert {
                text: final_alert(s),
                critical: true,
            });
        }
        // Bounded: it gives up on undelivered messages after a few seconds.
        let r = t.finish();
        log::info!(
            "telegram: {} sent, {} failed attempts, {} dropped",
            r.sent,
            r.failures,
            r.dropped
        );
    }
    if let Some(d) = dashboard {
        d.stop();
    }
    match result {
        Ok(summary) => {
            out(&render_summary(&summary));
            if args.json {
                outln(&serde_json::to_string(&summary).unwrap_or_default());
            }
            ExitCode::SUCCESS
        }
        Err(e @ SessionError::LiveRefused(_)) => {
            errln(&format!("error: {e}"));
            ExitCode::from(2)
        }
        Err(e) => {
            errln(&format!("error: {e}"));
            ExitCode::from(1)
        }
    }
}

/// The Telegram worker, when `TELEGRAM_BOT_TOKEN` and `TELEGRAM_CHAT_ID` are set.
fn start_telegram(
    cfg: &Config,
) -> Result<Option<crate::side::telegram::Telegram>, crate::side::telegram::TelegramError> {
    use crate::side::telegram::{TelegramConfig, start};
    match TelegramConfig::from_env(&cfg.telegram_api_url, cfg.live_mode) {
        Some(t) => start(t).map(Some),
        None => {
            log::info!(
                "Telegram notifications off (TELEGRAM_BOT_TOKEN / TELEGRAM_CHAT_ID not set)"
            );
            Ok(None)
        }
    }
}

/// The Telegram commands thread (with Telegram on and `telegram_commands`); wires the control
/// channel into `opts`.
fn start_commands(
    cfg: &Config,
    t: &crate::side::telegram::Telegram,
    opts: &mut RunOptions,
) -> Option<crate::side::telegram_commands::Commands> {
    use crate::side::telegram_commands::{CommandsConfig, LONG_POLL_S, start};
    let (handle, link) = crate::side::control::channel();
    let c = CommandsConfig {
        api_url: cfg.telegram_api_url.clone(),
        token: t.token().to_string(),
        chat_id: t.chat_id().to_string(),
        symbol: cfg.symbol.clone(),
        rules: cfg.dashboard_settings().rules,
        long_poll_s: LONG_POLL_S,
    };
    match start(c, handle, t.tx.clone()) {
        Ok(c) => {
            opts.control = Some(link);
            Some(c)
        }
        Err(e) => {
            log::error!("telegram commands thread: {e}; commands are off");
            None
        }
    }
}

/// The dashboard, unless `dashboard_bind` is empty; wires its channels into `opts`.
fn start_dashboard(
    cfg: &Config,
    opts: &mut RunOptions,
) -> Result<Option<crate::side::dashboard::Dashboard>, crate::side::dashboard::DashboardError> {
    if cfg.dashboard_bind.is_empty() {
        return Ok(None);
    }
    let (link, feed, _) = crate::side::status::channel();
    let (wtx, wrx) = crossbeam_channel::bounded(2);
    opts.status = Some(link);
    opts.worker_reports = Some(wtx);
    let d = crate::side::dashboard::start(cfg.dashboard_settings(), feed, Some(wrx))?;
    log::info!("dashboard at http://{}/", d.addr());
    Ok(Some(d))
}

/// The last Telegram message of a session.
fn final_alert(s: &Summary) -> String {
    format!(
        "Session ended after {:.0} s: {} orders, {} fills, position {:.8}, realised {:.2}, \
         fees {:.2}, equity {:.2}{}",
        s.duration_s,
        s.counters.orders_placed,
        s.counters.fills,
        s.position,
        s.realized_pnl,
        s.fees_paid,
        s.equity,
        if s.mode == "live" {
            if s.shutdown_cancel_confirmed {
                ", all orders cancelled"
            } else {
                ", CANCEL-ALL NOT CONFIRMED: check open orders"
            }
        } else {
            ""
        }
    )
}

/// The session summary as printed at shutdown, the latency table last.
#[must_use]
pub fn render_summary(s: &Summary) -> String {
    let mut out = format!(
        "session  {} {:.1} s, state {}\n\
         feed     {} frames, {} book messages ({} snapshots), {} checksums ok, {} mismatches, \
         {} parse errors, {} connects, {} reconnects, {} watchdog, {} resubscribes\n\
         orders   {} placed ({:.2}/s; {} decided, {} collapsed unsent, {} amends), {} cancelled, \
         {} fills\n\
         account  own position {:.8}{}, realised {:.2}, unrealised {:.2}, fees {:.2}, equity {:.2}\n",
        s.mode.to_uppercase(),
        s.duration_s,
        s.state,
        s.counters.frames,
        s.counters.book_messages,
        s.counters.snapshots,
        s.counters.checksums_ok,
        s.counters.checksum_mismatches,
        s.counters.parse_errors,
        s.counters.connects,
        s.counters.reconnects,
        s.counters.watchdog_timeouts,
        s.counters.resubscribes,
        s.counters.orders_placed,
        s.orders_per_s,
        s.counters.orders_decided,
        s.counters.orders_collapsed,
        s.amends,
        s.counters.orders_cancelled,
        s.counters.fills,
        s.position,
        if s.dust { " (dust)" } else { "" },
        s.realized_pnl,
        s.unrealized_pnl,
        s.fees_paid,
        s.equity,
    );
    if s.mode == "live" {
        out.push_str(&format!(
            "private  stream {}, {} connects, {} reconnects, {} token refusals; fills {} from the \
             stream, {} from polls, {} duplicates booked once, {} foreign ignored\n",
            s.private_link,
            s.counters.private_connects,
            s.counters.private_reconnects,
            s.counters.token_refusals,
            s.counters.fills_ws,
            s.counters.fills_poll,
            s.counters.duplicate_execs,
            s.counters.foreign_fills,
        ));
        out.push_str(&format!(
            "orders   transport {}: {} requests on the WebSocket, {} handed to REST when it \
             dropped\n",
            s.order_transport, s.counters.ws_order_requests, s.counters.ws_handed_to_rest,
        ));
    }
    if let (Some(base), Some(quote)) = (s.account_base, s.account_quote) {
        out.push_str(&format!(
            "exchange base {base:.8} (baseline {:.8}, not traded; own {:.8}), quote {quote:.2} \
             (own cash {:.2})\n",
            s.baseline, s.position, s.cash
        ));
    }
    out.push_str(&latency_table(s));
    out
}

/// Every stage's latency as one aligned table.
#[must_use]
pub fn latency_table(s: &Summary) -> String {
    let mut rows: Vec<(String, LatencyRow)> = vec![
        ("socket -> frame".into(), s.wire_to_frame),
        ("frame -> parsed".into(), s.frame_to_parsed),
        ("book apply".into(), s.book_apply),
        ("signals+strategy+risk".into(), s.strategy),
        ("frame -> intent".into(), s.tick_to_intent),
        ("frame -> core done".into(), s.frame_to_done),
    ];
    if s.mode == "live" {
        rows.push(("intent -> REST answer".into(), s.intent_to_ack_rest));
        if s.intent_to_ack_ws.count > 0 {
            rows.push(("intent -> WS answer".into(), s.intent_to_ack_ws));
        }
        rows.push(("fill -> booked in core".into(), s.fill_to_core));
        for (name, r) in s.rest_round_trip.iter().filter(|(_, r)| r.count > 0) {
            rows.push((format!("REST {name}"), *r));
        }
    }
    let w = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0).max(22);
    let mut out = format!(
        "{:<w$} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
        "latency",
        "count",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        w = w + 2
    );
    for (name, r) in rows {
        out.push_str(&format!(
            "  {name:<w$} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            r.count,
            fmt_ns(r.p50_ns),
            fmt_ns(r.p90_ns),
            fmt_ns(r.p99_ns),
            fmt_ns(r.p999_ns),
            fmt_ns(r.max_ns)
        ));
    }
    out
}

fn fmt_ns(ns: u64) -> String {
    if ns >= 1_000_000_000 {
        format!("{:.2} s", ns as f64 / 1e9)
    } else if ns >= 1_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else if ns >= 1_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{ns} ns")
    }
}
