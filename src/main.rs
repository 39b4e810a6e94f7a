//! The `wildbot` command: subcommands for checking config, verifying recorded feeds and
//! measuring the core. Every subcommand has `--help`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wildbot::app::config::Config;
use wildbot::backtest::verify::{VerifyOptions, verify};

// Counts heap allocations per thread so `bench` can prove the hot path allocates nothing.
#[global_allocator]
static ALLOC: wildbot::devtools::alloc::CountingAlloc = wildbot::devtools::alloc::CountingAlloc;

#[derive(Parser)]
#[command(
    name = "wildbot",
    version,
    about = "Low-latency market-making bot for Kraken",
    long_about = "Low-latency market-making bot for Kraken.\n\nWithout a subcommand it runs the demo: \
                  the offline Kraken simulator on loopback and the bot trading live against it, \
                  with the dashboard at http://127.0.0.1:8080, until Ctrl-C."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a config file and print the effective settings.
    CheckConfig {
        /// The TOML file (e.g. config/wildbot.toml).
        file: PathBuf,
    },
    /// Replay recorded Kraken WS v2 book messages and check every checksum.
    ///
    /// Files hold one JSON message per line, or the recorder format
    /// ({"rx_ns":..,"frame":..} per line), or a python-kraken-sdk fixture document.
    /// Exits non-zero if any checksum mismatches, a book message is malformed, or nothing
    /// could be verified.
    VerifyFeed {
        /// Depth when the file has no subscribe ack (default 10).
        #[arg(long)]
        depth: Option<u16>,
        /// Write prices with this many decimals in the checksum (default: as written).
        #[arg(long)]
        price_precision: Option<u8>,
        /// Write quantities with this many decimals in the checksum (default: as written).
        #[arg(long)]
        qty_precision: Option<u8>,
        /// Feed files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Measure the core on a synthetic BTC/USD stream: throughput, per-tick latency, allocations.
    Bench {
        /// Ticks to measure.
        #[arg(long, default_value_t = 200_000)]
        ticks: u64,
        /// Seed of the synthetic market.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Print one JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Trade against the feed at `ws_url` (paper mode; live needs the REST worker).
    ///
    /// Stops cleanly after --duration or on Ctrl-C / SIGTERM, cancels what rests, and
    /// prints the session summary.
    Run {
        /// Config file.
        #[arg(long, default_value = "config/wildbot.toml")]
        config: PathBuf,
        #[command(flatten)]
        session: SessionArgs,
    },
    /// Replay a recorded feed through the same core on paper and report how the strategy did.
    ///
    /// Takes the recorder's format (`--record`, `kraken-sim record`) or one raw v2 JSON
    /// message per line. Same input and config: the same report, byte for byte.
    Replay {
        /// Config file.
        #[arg(long, default_value = "config/wildbot.toml")]
        config: PathBuf,
        /// The recording.
        #[arg(long)]
        input: PathBuf,
        /// Override a config key, e.g. `--set entry_offset_bps=25` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Print one JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Replay one recording under every combination of a grid of settings, in parallel, and
    /// rank them by final PnL.
    Sweep {
        /// Config file (the base every combination changes).
        #[arg(long, default_value = "config/wildbot.toml")]
        config: PathBuf,
        /// The recording.
        #[arg(long)]
        input: PathBuf,
        /// One axis, `KEY=V1,V2,...` (repeatable; every combination runs).
        #[arg(long, value_name = "KEY=V1,V2,...", required = true)]
        grid: Vec<String>,
        /// A fixed override for every run (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Print CSV instead of the table.
        #[arg(long)]
        csv: bool,
        /// Parallel runs (default: every core).
        #[arg(long)]
        jobs: Option<usize>,
    },
    /// Start the Kraken simulator on a free loopback port and run the bot against it.
    Demo {
        /// Config file (its ws_url is replaced by the simulator's).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Seed of the simulated market (3: a lively first 20 s, with fills on both sides).
        #[arg(long, default_value_t = 3)]
        seed: u64,
        /// Volatility multiplier of the simulated market.
        #[arg(long, default_value_t = 1.0)]
        volatility: f64,
        /// Milliseconds between market steps of the simulator.
        #[arg(long, default_value_t = 2)]
        step_ms: u64,
        /// Serve and connect over TLS (wss://) with a certificate generated now.
        #[arg(long)]
        tls: bool,
        /// Paper trade instead of trading live against the simulator's REST API.
        #[arg(long)]
        paper: bool,
        #[command(flatten)]
        session: SessionArgs,
    },
}

#[derive(clap::Args, Default)]
struct SessionArgs {
    /// Stop cleanly after this many seconds.
    #[arg(long)]
    duration: Option<f64>,
    /// Print the session summary as one JSON object on the last line of stdout.
    #[arg(long)]
    json: bool,
    /// Record every received frame with its receive time to this file.
    #[arg(long)]
    record: Option<String>,
    /// Log level (off, error, warn, info, debug, trace); overrides `log_level` in the config.
    #[arg(long)]
    log_level: Option<String>,
    /// Override a config key, e.g. `--set dashboard_bind=127.0.0.1:0` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

impl SessionArgs {
    /// The `--set` pairs.
    fn overrides(&self) -> Result<Vec<(String, String)>, String> {
        parse_overrides(&self.set)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        // `cargo run --release`: the demo, until Ctrl-C.
        return demo(
            None,
            &DemoArgs {
                seed: 3,
                volatility: 1.0,
                step_ms: 2,
                tls: false,
                paper: false,
            },
            &SessionArgs::default(),
        );
    };
    match command {
        Command::Run { config, session } => match session
            .overrides()
            .and_then(|o| Config::load(&config, &o).map_err(|e| e.to_string()))
        {
            Ok(cfg) => match wildbot::kraken::rest::Credentials::from_env() {
                Ok(creds) => run_session(&cfg, &session, creds),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            },
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Demo {
            config,
            seed,
            volatility,
            step_ms,
            tls,
            paper,
            session,
        } => demo(
            config.as_deref(),
            &DemoArgs {
                seed,
                volatility,
                step_ms,
                tls,
                paper,
            },
            &session,
        ),
        Command::Replay {
            config,
            input,
            set,
            json,
        } => replay(&config, &input, &set, json),
        Command::Sweep {
            config,
            input,
            grid,
            set,
            csv,
            jobs,
        } => sweep(&config, &input, &grid, &set, csv, jobs),
        Command::CheckConfig { file } => match Config::load(&file, &[]) {
            Ok(cfg) => {
                println!("# {}: valid. Effective settings:", file.display());
                print!("{}", cfg.to_toml());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::VerifyFeed {
            depth,
            price_precision,
            qty_precision,
            files,
        } => {
            let opts = VerifyOptions {
                depth,
                price_precision,
                qty_precision,
            };
            let mut failed = 0;
            for f in &files {
                let name = f.display().to_string();
                let report = std::fs::read(f)
                    .map_err(|e| format!("cannot read: {e}"))
                    .and_then(|data| verify(&data, &opts));
                match report {
                    Ok(r) => {
                        print!("{}", r.render(&name, &opts));
                        if !r.passed() {
                            failed += 1;
                        }
                    }
                    Err(e) => {
                        println!("{name}: ERROR {e}");
                        failed += 1;
                    }
                }
            }
            println!("verify-feed: {} file(s), {} failed", files.len(), failed);
            if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Command::Bench { ticks, seed, json } => {
            let r = wildbot::devtools::bench::run(ticks, seed);
            if json {
                println!("{}", serde_json::to_string(&r).unwrap_or_default());
            } else {
                print!("{}", r.render());
            }
            ExitCode::SUCCESS
        }
    }
}

/// Says what is wrong with the command line or its files; exit code 2.
fn usage_error(e: &str) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

/// `KEY=VALUE` pairs.
fn parse_overrides(set: &[String]) -> Result<Vec<(String, String)>, String> {
    set.iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| format!("--set {kv}: expected KEY=VALUE"))
        })
        .collect()
}

fn replay(
    config: &std::path::Path,
    input: &std::path::Path,
    set: &[String],
    json: bool,
) -> ExitCode {
    use std::io::{IsTerminal, Write};
    let cfg = match parse_overrides(set)
        .and_then(|o| Config::load(config, &o).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => return usage_error(&e),
    };
    let data = match std::fs::read(input) {
        Ok(d) => d,
        Err(e) => return usage_error(&format!("cannot read {}: {e}", input.display())),
    };
    let tty = std::io::stderr().is_terminal();
    let mut shown = 0;
    let started = std::time::Instant::now();
    let result = wildbot::backtest::replay::replay(&cfg, &data, |done, total| {
        let pct = done * 100 / total.max(1);
        if tty && pct > shown {
            shown = pct;
            eprint!("\rreplay {pct:>3} % ({done} of {total} lines)");
            let _ = std::io::stderr().flush();
        }
    });
    if tty {
        eprintln!();
    }
    match result {
        Ok(r) => {
            if json {
                println!("{}", serde_json::to_string(&r).unwrap_or_default());
            } else {
                print!("{}", r.render());
                let secs = started.elapsed().as_secs_f64();
                println!(
                    "speed    {:.2} M frames/s, {:.2} M book messages/s ({:.3} s wall)",
                    r.frames as f64 / secs / 1e6,
                    r.book_messages as f64 / secs / 1e6,
                    secs
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn sweep(
    config: &std::path::Path,
    input: &std::path::Path,
    grid: &[String],
    set: &[String],
    csv: bool,
    jobs: Option<usize>,
) -> ExitCode {
    use wildbot::backtest::sweep::{Axis, combinations};
    let parsed = grid
        .iter()
        .map(|g| Axis::parse(g))
        .collect::<Result<Vec<_>, _>>()
        .and_then(|axes| parse_overrides(set).map(|fixed| (axes, fixed)));
    let (axes, fixed) = match parsed {
        Ok(p) => p,
        Err(e) => return usage_error(&e),
    };
    let data = match std::fs::read(input) {
        Ok(d) => d,
        Err(e) => return usage_error(&format!("cannot read {}: {e}", input.display())),
    };
    let combos = combinations(&axes);
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let started = std::time::Instant::now();
    let rows = wildbot::backtest::sweep::sweep(&data, &combos, jobs, |combo| {
        let mut o = fixed.clone();
        o.extend(combo.iter().cloned());
        Config::load(config, &o).map_err(|e| e.to_string())
    });
    match rows {
        Ok(rows) => {
            if csv {
                print!("{}", wildbot::backtest::sweep::csv(&axes, &rows));
            } else {
                print!("{}", wildbot::backtest::sweep::table(&axes, &rows));
            }
            eprintln!(
                "sweep: {} runs over {} in {:.2} s on {jobs} thread(s)",
                rows.len(),
                input.display(),
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(level: &str) {
    let level = level
        .parse::<log::LevelFilter>()
        .unwrap_or(log::LevelFilter::Info);
    let cfg = simplelog::ConfigBuilder::new()
        .set_time_format_rfc3339()
        .build();
    // Logs go to stderr: stdout carries the summary (and its JSON line).
    let _ = simplelog::TermLogger::init(
        level,
        cfg,
        simplelog::TerminalMode::Stderr,
        simplelog::ColorChoice::Auto,
    );
}

fn run_session(
    cfg: &Config,
    args: &SessionArgs,
    credentials: Option<wildbot::kraken::rest::Credentials>,
) -> ExitCode {
    init_logging(args.log_level.as_deref().unwrap_or(&cfg.log_level));
    if cfg.live_mode && credentials.is_none() {
        eprintln!(
            "error: config key `live_mode` is true but KRAKEN_API_KEY / KRAKEN_API_SECRET are not \
             set; set them, or live_mode = false to paper trade"
        );
        return ExitCode::from(2);
    }
    let mut opts = wildbot::feed::RunOptions {
        duration: args.duration.map(std::time::Duration::from_secs_f64),
        record: args.record.clone(),
        stop: std::sync::Arc::default(),
        credentials,
        status: None,
        worker_reports: None,
    };
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // First signal: the feed loop (it wakes at least every 100 ms) sees the flag and shuts
        // down cleanly. A second one, with the flag already set, exits at once.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, opts.stop.clone());
        let _ = signal_hook::flag::register(sig, opts.stop.clone());
    }
    let telegram = match wildbot::side::telegram::TelegramConfig::from_env(
        &cfg.telegram_api_url,
        cfg.live_mode,
    ) {
        Some(t) => match wildbot::side::telegram::start(t) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        },
        None => {
            log::info!(
                "Telegram notifications off (TELEGRAM_BOT_TOKEN / TELEGRAM_CHAT_ID not set)"
            );
            None
        }
    };
    let (notifier, notify_thread) =
        match wildbot::side::notify::start(telegram.as_ref().map(|t| t.tx.clone())) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
    let dashboard = if cfg.dashboard_bind.is_empty() {
        None
    } else {
        let (link, feed, _) = wildbot::side::status::channel();
        let (wtx, wrx) = crossbeam_channel::bounded(2);
        opts.status = Some(link);
        opts.worker_reports = Some(wtx);
        match wildbot::side::dashboard::start(
            wildbot::side::dashboard::DashboardConfig {
                bind: cfg.dashboard_bind.clone(),
                token: cfg.dashboard_token.clone(),
                symbol: cfg.symbol.clone(),
                feed_timeout_ns: cfg.feed_timeout_ms as i64 * 1_000_000,
            },
            feed,
            Some(wrx),
        ) {
            Ok(d) => {
                log::info!("dashboard at http://{}/", d.addr());
                Some(d)
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        }
    };
    log::info!(
        "WildBot {} {} on {} depth {} ({})",
        env!("CARGO_PKG_VERSION"),
        if cfg.live_mode { "LIVE" } else { "PAPER" },
        cfg.symbol,
        cfg.book_depth,
        cfg.ws_url
    );
    let cfg_for_thread = cfg.clone();
    let feed = std::thread::Builder::new()
        .name("feed".into())
        .spawn(move || wildbot::feed::run(&cfg_for_thread, &opts, &notifier, |_| {}));
    let result = match feed.map(|h| h.join()) {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err("the feed thread panicked".to_string()),
        Err(e) => Err(format!("feed thread: {e}")),
    };
    let _ = notify_thread.join();
    if let Some(t) = telegram {
        if let Ok(s) = &result {
            let _ = t.tx.send(wildbot::side::telegram::Outgoing::Alert {
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
            print!("{}", render_summary(&summary));
            if args.json {
                println!("{}", serde_json::to_string(&summary).unwrap_or_default());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

struct DemoArgs {
    seed: u64,
    volatility: f64,
    step_ms: u64,
    tls: bool,
    paper: bool,
}

fn demo(config: Option<&std::path::Path>, d: &DemoArgs, args: &SessionArgs) -> ExitCode {
    let DemoArgs {
        seed,
        volatility,
        step_ms,
        tls,
        paper,
    } = *d;
    let loaded = args.overrides().and_then(|o| {
        match config {
            Some(c) => Config::load(c, &o),
            None => Config::from_toml_str("", &o),
        }
        .map_err(|e| e.to_string())
    });
    let mut cfg = match loaded {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    cfg.live_mode = false;
    let tls_id = if tls {
        match wildbot::sim::SimTls::generate() {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        None
    };
    let ca_file = tls_id.as_ref().map(|t| {
        let path = std::env::temp_dir().join(format!("wildbot-demo-ca-{}.pem", std::process::id()));
        let _ = std::fs::write(&path, &t.cert_pem);
        path
    });
    let sim = match wildbot::sim::Simulator::start(wildbot::sim::SimConfig {
        seed,
        volatility,
        step: std::time::Duration::from_millis(step_ms.max(1)),
        tls: tls_id,
        ..wildbot::sim::SimConfig::default()
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: kraken simulator: {e}");
            return ExitCode::from(1);
        }
    };
    cfg.ws_url = sim.url();
    cfg.ws_ca_file = ca_file.as_ref().map(|p| p.display().to_string());
    // Live against the simulator's private REST API, with its public demo key pair: the real
    // signed order path. A local exchange answers in microseconds, so the demo polls faster.
    let rest = if paper {
        None
    } else {
        match wildbot::sim::rest::RestSim::start("10000", "0", sim.market()) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("error: kraken simulator REST: {e}");
                return ExitCode::from(1);
            }
        }
    };
    let creds = rest.as_ref().map(|r| {
        cfg.live_mode = true;
        cfg.rest_url = r.url();
        cfg.rest_min_interval_ms = 200;
        cfg.fill_poll_s = 1;
        wildbot::kraken::rest::Credentials::new(
            wildbot::sim::rest::DEMO_KEY,
            wildbot::sim::rest::DEMO_SECRET,
        )
        .expect("the demo pair is valid")
    });
    eprintln!(
        "demo: Kraken simulator at {} (seed {seed}, volatility x{volatility}){}",
        sim.url(),
        rest.as_ref()
            .map(|r| format!(", private REST at {} (LIVE against the simulator)", r.url()))
            .unwrap_or_default()
    );
    let code = run_session(&cfg, args, creds);
    if let Some(r) = &rest {
        let open = r
            .exchange()
            .orders
            .values()
            .filter(|o| o.status == "open")
            .count();
        eprintln!("demo: the simulator has {open} open order(s) after shutdown");
    }
    drop(rest);
    sim.stop();
    if let Some(p) = ca_file {
        let _ = std::fs::remove_file(p);
    }
    code
}

/// The last Telegram message of a session.
fn final_alert(s: &wildbot::feed::Summary) -> String {
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

fn render_summary(s: &wildbot::feed::Summary) -> String {
    let mut out = format!(
        "session  {} {:.1} s, state {}\n\
         feed     {} frames, {} book messages ({} snapshots), {} checksums ok, {} mismatches, \
         {} parse errors, {} connects, {} reconnects, {} watchdog, {} resubscribes\n\
         orders   {} placed, {} cancelled, {} fills\n\
         account  position {:.8}, realised {:.2}, unrealised {:.2}, fees {:.2}, equity {:.2}\n",
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
        s.counters.orders_cancelled,
        s.counters.fills,
        s.position,
        s.realized_pnl,
        s.unrealized_pnl,
        s.fees_paid,
        s.equity,
    );
    out.push_str(&latency_table(s));
    out
}

/// Every stage's latency as one aligned table.
fn latency_table(s: &wildbot::feed::Summary) -> String {
    let mut rows: Vec<(String, wildbot::side::status::LatencyRow)> = vec![
        ("frame -> parsed".into(), s.frame_to_parsed),
        ("book apply".into(), s.book_apply),
        ("signals+strategy+risk".into(), s.strategy),
        ("frame -> intent".into(), s.tick_to_intent),
        ("frame -> core done".into(), s.frame_to_done),
    ];
    if s.mode == "live" {
        rows.push(("intent -> REST answer".into(), s.intent_to_ack));
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
