//! The `wildbot` command: subcommands for checking config, verifying recorded feeds and
//! measuring the core. Every subcommand has `--help`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wildbot::config::Config;
use wildbot::verify::{VerifyOptions, verify};

// Counts heap allocations per thread so `bench` can prove the hot path allocates nothing.
#[global_allocator]
static ALLOC: wildbot::alloc::CountingAlloc = wildbot::alloc::CountingAlloc;

#[derive(Parser)]
#[command(
    name = "wildbot",
    version,
    about = "Low-latency market-making bot for Kraken"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
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
            let r = wildbot::bench::run(ticks, seed);
            if json {
                println!("{}", serde_json::to_string(&r).unwrap_or_default());
            } else {
                print!("{}", r.render());
            }
            ExitCode::SUCCESS
        }
    }
}
