//! The subcommands other than `run` and `demo`: check a config, verify recorded feeds,
//! benchmark the core, replay a recording and sweep a grid of settings over it. Each returns
//! the process exit code: 0 on success, 1 when the work failed, 2 for a usage error.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use crate::app::config::{Config, load_config, parse_overrides};
use crate::backtest::error::BacktestError;
use crate::backtest::sweep::{Axis, combinations};
use crate::backtest::verify::{VerifyOptions, verify};
use crate::core::paper::FillModel;

/// Says what is wrong with the command line or its files; exit code 2.
#[must_use]
pub fn usage_error(e: &str) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

/// `check-config FILE`: validates and prints the effective settings as TOML.
#[must_use]
pub fn check_config(file: &Path) -> ExitCode {
    match Config::load(file, &[]) {
        Ok(cfg) => {
            println!("# {}: valid. Effective settings:", file.display());
            print!("{}", cfg.to_toml());
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(&e.to_string()),
    }
}

/// `verify-feed FILE...`: every checksum of every file; 1 when any file fails.
#[must_use]
pub fn verify_feed(opts: &VerifyOptions, files: &[std::path::PathBuf]) -> ExitCode {
    let mut failed = 0;
    for f in files {
        let name = f.display().to_string();
        let report = match std::fs::read(f) {
            Ok(data) => verify(&data, opts).map_err(|e| e.to_string()),
            Err(e) => Err(format!("cannot read: {e}")),
        };
        match report {
            Ok(r) => {
                print!("{}", r.render(&name, opts));
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

/// `bench`: the whole core on a synthetic stream, as a table or one JSON object.
#[must_use]
pub fn bench(ticks: u64, seed: u64, json: bool) -> ExitCode {
    let r = crate::devtools::bench::run(ticks, seed);
    if json {
        println!("{}", serde_json::to_string(&r).unwrap_or_default());
    } else {
        print!("{}", r.render());
    }
    ExitCode::SUCCESS
}

/// `replay`: one recording through the core on paper, with progress on a terminal.
#[must_use]
pub fn replay(config: &Path, input: &Path, set: &[String], json: bool) -> ExitCode {
    let cfg = match load_config(Some(config), set) {
        Ok(c) => c,
        Err(e) => return usage_error(&e.to_string()),
    };
    let data = match std::fs::read(input) {
        Ok(d) => d,
        Err(e) => return usage_error(&format!("cannot read {}: {e}", input.display())),
    };
    let tty = std::io::stderr().is_terminal();
    let mut shown = 0;
    let started = Instant::now();
    let settings = cfg.core_settings(FillModel::Queue);
    let result = crate::backtest::replay::replay(&settings, &data, |done, total| {
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

/// `sweep`: every combination of the grid replayed over one recording, ranked by final PnL.
#[must_use]
pub fn sweep(
    config: &Path,
    input: &Path,
    grid: &[String],
    set: &[String],
    csv: bool,
    jobs: Option<usize>,
) -> ExitCode {
    let axes = match grid
        .iter()
        .map(|g| Axis::parse(g))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(a) => a,
        Err(e) => return usage_error(&e.to_string()),
    };
    let fixed = match parse_overrides(set) {
        Ok(f) => f,
        Err(e) => return usage_error(&e.to_string()),
    };
    let data = match std::fs::read(input) {
        Ok(d) => d,
        Err(e) => return usage_error(&format!("cannot read {}: {e}", input.display())),
    };
    let combos = combinations(&axes);
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let started = Instant::now();
    let rows = crate::backtest::sweep::sweep(&data, &combos, jobs, |combo| {
        let mut o = fixed.clone();
        o.extend(combo.iter().cloned());
        Config::load(config, &o)
            .map(|c| c.core_settings(FillModel::Queue))
            .map_err(|e| BacktestError::Combination(e.to_string()))
    });
    match rows {
        Ok(rows) => {
            if csv {
                print!("{}", crate::backtest::sweep::csv(&axes, &rows));
            } else {
                print!("{}", crate::backtest::sweep::table(&axes, &rows));
            }
            eprintln!(
                "sweep: {} runs over {} in {:.2} s on {jobs} thread(s)",
                rows.len(),
                input.display(),
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(&e.to_string()),
    }
}
