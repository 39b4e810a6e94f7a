//! The `wildbot` command line: the argument structs and their dispatch into [`wildbot::app`].
//! Every subcommand has `--help`; without one, the demo runs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wildbot::app::commands::{self, InputFormat};
use wildbot::app::demo::{DemoArgs, demo};
use wildbot::app::session::{SessionArgs, run_session};
use wildbot::backtest::verify::VerifyOptions;
use wildbot::exec::ws_entry::OrderTransport;

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
    /// Check this machine for running the bot on a dedicated core: pass / warn / fail, with
    /// the fix (core isolation, governor, clock source, time sync, limits, journal, keys,
    /// endpoints). Exit 1 if a check fails. Secrets are never printed.
    Doctor {
        /// Config file (default: config/wildbot.toml beside the working directory or the
        /// binary, or /etc/wildbot/wildbot.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Override a config key (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Print the findings as one JSON array.
        #[arg(long)]
        json: bool,
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
    /// Trade against the feed at `ws_url`: on paper, or live with `live_mode = true` and
    /// KRAKEN_API_KEY / KRAKEN_API_SECRET in the environment.
    ///
    /// Stops cleanly after --duration or on Ctrl-C / SIGTERM, cancels what rests (live: a
    /// confirmed CancelAll), and prints the session summary and the latency table.
    Run {
        /// Config file [default: config/wildbot.toml in the working directory, else beside
        /// the binary or up to three directories above it, else /etc/wildbot/wildbot.toml].
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        session: SessionArgs,
    },
    /// Replay a recorded feed through the same core on paper and report how the strategy did.
    ///
    /// Takes the recorder's format (`--record`, `kraken-sim record`) or one raw v2 JSON
    /// message per line. Same input and config: the same report, byte for byte.
    Replay {
        /// Config file [default: config/wildbot.toml in the working directory, else beside
        /// the binary or up to three directories above it, else /etc/wildbot/wildbot.toml].
        #[arg(long)]
        config: Option<PathBuf>,
        /// The recording (with `--format tardis`: Tardis.dev incremental_book_L2 CSV, plain or
        /// .gz).
        #[arg(long)]
        input: PathBuf,
        /// `wildbot`: our recordings and raw Kraken v2 lines (detected); `tardis`: Tardis.dev
        /// CSV for exchange kraken.
        #[arg(long, value_enum, default_value = "wildbot")]
        format: InputFormat,
        /// With `--format tardis`: the Tardis.dev trades CSV of the same day (plain or .gz).
        #[arg(long)]
        trades: Option<PathBuf>,
        /// Override a config key, e.g. `--set entry_offset_bps=25` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Print one JSON object instead of the table.
        #[arg(long)]
        json: bool,
        /// Also write the report as one self-contained HTML file with charts (price, quotes
        /// and fills; equity and drawdown; position; PnL per round trip; pause reasons).
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Replay one recording under every combination of a grid of settings, in parallel, and
    /// rank them by final PnL.
    Sweep {
        /// Config file, the base every combination changes [default: as for `run`].
        #[arg(long)]
        config: Option<PathBuf>,
        /// The recording (as for replay).
        #[arg(long)]
        input: PathBuf,
        /// As for replay.
        #[arg(long, value_enum, default_value = "wildbot")]
        format: InputFormat,
        /// As for replay.
        #[arg(long)]
        trades: Option<PathBuf>,
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
        /// Run only the I-th of N slices of the grid (I from 1; the same slices on every
        /// machine); `sweep-merge` ranks the shards' CSVs together.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        /// Also write the ranking as one self-contained HTML file (a heatmap of final PnL over
        /// the first two axes and every run's figures, best first).
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Rank the CSVs of a sharded sweep (`sweep --csv --shard I/N` on each machine) as one
    /// machine's sweep of the whole grid would.
    SweepMerge {
        /// The shards' CSV files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print CSV instead of the table.
        #[arg(long)]
        csv: bool,
        /// Also write the ranking as HTML (as `sweep --html`).
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
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
        /// BTC the simulated account holds at start (the user's: never sold by the bot).
        #[arg(long, default_value = "0")]
        base: String,
        /// USD the simulated account holds at start.
        #[arg(long, default_value = "10000")]
        quote: String,
        /// Order path: `rest` (the REST worker) or `ws` (the authenticated WebSocket, REST
        /// while it is down); default: the config's `order_transport`.
        #[arg(long, value_parser = ["rest", "ws"])]
        transport: Option<String>,
        #[command(flatten)]
        session: SessionArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        // `cargo run --release`: the demo, until Ctrl-C.
        return demo(None, &DemoArgs::default(), &SessionArgs::default());
    };
    match command {
        Command::Run { config, session } => {
            let cfg = match wildbot::app::config::resolve_config_path(config.as_deref())
                .and_then(|p| wildbot::app::config::load_config(Some(&p), &session.set))
            {
                Ok(c) => c,
                Err(e) => return commands::usage_error(&e.to_string()),
            };
            match wildbot::kraken::rest::Credentials::from_env() {
                Ok(creds) => run_session(&cfg, &session, creds),
                Err(e) => commands::usage_error(&e.to_string()),
            }
        }
        Command::Demo {
            config,
            seed,
            volatility,
            step_ms,
            tls,
            paper,
            base,
            quote,
            transport,
            session,
        } => demo(
            config.as_deref(),
            &DemoArgs {
                seed,
                volatility,
                step_ms,
                tls,
                paper,
                base,
                quote,
                transport: transport.map(|t| {
                    if t == "ws" {
                        OrderTransport::Ws
                    } else {
                        OrderTransport::Rest
                    }
                }),
            },
            &session,
        ),
        Command::Replay {
            config,
            input,
            format,
            trades,
            set,
            json,
            html,
        } => commands::replay(
            config.as_deref(),
            &commands::Source {
                input: &input,
                format,
                trades: trades.as_deref(),
            },
            &set,
            json,
            html.as_deref(),
        ),
        Command::Sweep {
            config,
            input,
            format,
            trades,
            grid,
            set,
            csv,
            jobs,
            shard,
            html,
        } => commands::sweep(
            config.as_deref(),
            &commands::Source {
                input: &input,
                format,
                trades: trades.as_deref(),
            },
            &commands::SweepGrid {
                grid: &grid,
                set: &set,
                shard: shard.as_deref(),
            },
            csv,
            jobs,
            html.as_deref(),
        ),
        Command::SweepMerge { files, csv, html } => {
            commands::sweep_merge(&files, csv, html.as_deref())
        }
        Command::CheckConfig { file } => commands::check_config(&file),
        Command::Doctor { config, set, json } => {
            wildbot::app::doctor::doctor(config.as_deref(), &set, json)
        }
        Command::VerifyFeed {
            depth,
            price_precision,
            qty_precision,
            files,
        } => commands::verify_feed(
            &VerifyOptions {
                depth,
                price_precision,
                qty_precision,
            },
            &files,
        ),
        Command::Bench { ticks, seed, json } => commands::bench(ticks, seed, json),
    }
}
