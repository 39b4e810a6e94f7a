//! The subcommands other than `run` and `demo`: check a config, verify recorded feeds,
//! benchmark the core, replay a recording and sweep a grid of settings over it. Each returns
//! the process exit code: 0 on success, 1 when the work failed, 2 for a usage error.

use crate::app::output::{err, errln, out, outln};
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use crate::app::config::{
    Config, ConfigError, Layer, load_config, parse_overrides, resolve_config_path,
};
use crate::backtest::error::BacktestError;
use crate::backtest::sweep::{Axis, Shard, combinations};
use crate::backtest::trace::Trace;
use crate::backtest::verify::{VerifyOptions, verify};
use crate::core::paper::FillModel;

/// Says what is wrong with the command line or its files; exit code 2.
#[must_use]
pub fn usage_error(e: &str) -> ExitCode {
    errln(&format!("error: {e}"));
    ExitCode::from(2)
}

/// `check-config FILE`: validates and prints the effective settings as TOML.
#[must_use]
pub fn check_config(file: &Path) -> ExitCode {
    match Config::load(file, &[]) {
        Ok(cfg) => {
            outln(&format!("# {}: valid. Effective settings:", file.display()));
            out(&cfg.to_toml());
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(&e.to_string()),
    }
}

/// `verify-feed FILE...`: every checksum of every file; 1 when any file fails.
#[must_use]
pub fn verify_feed(opts: &VerifyOptions, files: &[std::path::PathBuf]) -> ExitCode {
    let mut failed = 0;
    let mut not_feeds = 0;
    for f in files {
        let name = f.display().to_string();
        let report = match std::fs::read(f) {
            Ok(data) => verify(&data, opts).map_err(|e| {
                not_feeds += usize::from(matches!(e, BacktestError::NotFeed(_)));
                e.to_string()
            }),
            Err(e) => Err(format!("cannot read: {e}")),
        };
        match report {
            Ok(r) => {
                out(&r.render(&name, opts));
                if !r.passed() {
                    failed += 1;
                }
            }
            Err(e) => {
                outln(&format!("{name}: ERROR {e}"));
                failed += 1;
            }
        }
    }
    outln(&format!(
        "verify-feed: {} file(s), {} failed",
        files.len(),
        failed
    ));
    if not_feeds > 0 {
        // What was given is not what the command takes: a usage error, like a missing file.
        ExitCode::from(2)
    } else if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `bench`: the whole core on a synthetic stream, as a table or one JSON object.
#[must_use]
pub fn bench(ticks: u64, seed: u64, json: bool) -> ExitCode {
    let tty = std::io::stderr().is_terminal();
    let mut shown = 0;
    let r = crate::devtools::bench::run_with_progress(ticks, seed, |done, total| {
        // Long runs say how far they are: in place on a terminal, every 10 % otherwise.
        let pct = done * 100 / total.max(1);
        if tty && pct > shown {
            shown = pct;
            err(&format!("\rbench {pct:>3} % ({done} of {total} ticks)"));
        } else if !tty && total >= 500_000 && pct / 10 > shown / 10 {
            shown = pct;
            errln(&format!("bench: {pct} % ({done} of {total} ticks)"));
        }
    });
    if tty {
        errln("");
    }
    if json {
        outln(&serde_json::to_string(&r).unwrap_or_default());
    } else {
        out(&r.render());
    }
    ExitCode::SUCCESS
}

/// What a replay or sweep reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// WildBot recordings, raw Kraken v2 lines, python-kraken-sdk fixtures (detected).
    Wildbot,
    /// Tardis.dev `incremental_book_L2` CSV (plain or gz), with `--trades`.
    Tardis,
}

/// The input of a replay or sweep.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// `--input`.
    pub input: &'a Path,
    /// `--format`.
    pub format: InputFormat,
    /// `--trades` (Tardis only).
    pub trades: Option<&'a Path>,
}

impl InputFormat {
    /// As on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Wildbot => "wildbot",
            InputFormat::Tardis => "tardis",
        }
    }
}

impl Source<'_> {
    /// `--trades` belongs to Tardis input only.
    fn check(&self) -> Result<(), String> {
        if self.trades.is_some() && self.format != InputFormat::Tardis {
            return Err(
                "--trades is for --format tardis (our recordings hold their trades)".into(),
            );
        }
        Ok(())
    }

    /// Tardis's files, opened (gzip or not).
    #[allow(clippy::type_complexity)]
    fn tardis(
        &self,
    ) -> Result<
        (
            (String, Box<dyn std::io::BufRead>),
            Option<(String, Box<dyn std::io::BufRead>)>,
        ),
        BacktestError,
    > {
        use crate::backtest::tardis::open;
        let book = (self.input.display().to_string(), open(self.input)?);
        let trades = match self.trades {
            Some(t) => Some((t.display().to_string(), open(t)?)),
            None => None,
        };
        Ok((book, trades))
    }

    /// The bytes a sweep replays: the file, or Tardis data as a recording (the book at the
    /// base config's depth and precision).
    fn bytes(&self, cfg: &Config) -> Result<Vec<u8>, String> {
        if self.format == InputFormat::Wildbot {
            return std::fs::read(self.input)
                .map_err(|e| format!("cannot read {}: {e}", self.input.display()));
        }
        let ((book_name, book), trades) = self.tardis().map_err(|e| e.to_string())?;
        let s = cfg.core_settings(FillModel::Queue);
        let spec = crate::backtest::tardis::TardisSpec {
            symbol: s.symbol.clone(),
            depth: usize::from(s.book_depth),
            price_precision: s.price_precision,
            qty_precision: s.qty_precision,
            book_name,
            trades_name: trades.as_ref().map_or(String::new(), |t| t.0.clone()),
        };
        crate::backtest::tardis::to_recording(&spec, book, trades.map(|t| t.1))
            .map(|(bytes, stats)| {
                if stats.malformed > 0 {
                    errln(&format!(
                        "sweep: {} malformed Tardis rows skipped (first: {})",
                        stats.malformed,
                        stats.errors.first().map_or("", String::as_str)
                    ));
                }
                bytes
            })
            .map_err(|e| e.to_string())
    }
}

/// `replay`: one recording through the core on paper, with progress on a terminal; with
/// `html`, the report with its charts written there too.
#[must_use]
pub fn replay(
    config: Option<&Path>,
    src: &Source<'_>,
    set: &[String],
    json: bool,
    html: Option<&Path>,
) -> ExitCode {
    if let Err(e) = src.check() {
        return usage_error(&e);
    }
    let cfg = match resolve_config_path(config).and_then(|p| load_config(Some(&p), set)) {
        Ok(c) => c,
        Err(e) => return usage_error(&e.to_string()),
    };
    let tty = std::io::stderr().is_terminal();
    let mut shown = 0;
    let started = Instant::now();
    let settings = cfg.core_settings(FillModel::Queue);
    let mut trace = html.map(|_| Trace::default());
    let result = match src.format {
        InputFormat::Wildbot => {
            let data = match std::fs::read(src.input) {
                Ok(d) => d,
                Err(e) => {
                    return usage_error(&format!("cannot read {}: {e}", src.input.display()));
                }
            };
            crate::backtest::replay::replay(&settings, &data, trace.as_mut(), |done, total| {
                let pct = done * 100 / total.max(1);
                if tty && pct > shown {
                    shown = pct;
                    err(&format!("\rreplay {pct:>3} % ({done} of {total} lines)"));
                }
            })
        }
        InputFormat::Tardis => match src.tardis() {
            Ok((book, trades)) => crate::backtest::replay::replay_tardis(
                &settings,
                book,
                trades,
                trace.as_mut(),
                |frames| {
                    if tty {
                        err(&format!("\rreplay {frames} frames"));
                    }
                },
            ),
            Err(e) => Err(e),
        },
    };
    if tty {
        errln("");
    }
    match result {
        Ok(r) => {
            let replayed = started.elapsed().as_secs_f64();
            if let (Some(path), Some(trace)) = (html, &trace) {
                let page = crate::backtest::html::replay_page(
                    &crate::backtest::html::Source {
                        input: &src.input.display().to_string(),
                        format: src.format.name(),
                        symbol: &cfg.symbol,
                        settings: &cfg.to_toml(),
                    },
                    &r,
                    trace,
                );
                if let Err(e) = write_html(path, &page, started) {
                    return e;
                }
            }
            if json {
                outln(&serde_json::to_string(&r).unwrap_or_default());
            } else {
                out(&r.render());
                let secs = replayed;
                let rows = r.tardis.as_ref().map_or(String::new(), |t| {
                    format!(
                        ", {:.2} M Tardis rows/s",
                        (t.book_rows + t.trade_rows) as f64 / secs / 1e6
                    )
                });
                outln(&format!(
                    "speed    {:.2} M frames/s, {:.2} M book messages/s{rows} ({:.3} s wall)",
                    r.frames as f64 / secs / 1e6,
                    r.book_messages as f64 / secs / 1e6,
                    secs
                ));
            }
            ExitCode::SUCCESS
        }
        Err(e @ BacktestError::NotFeed(_)) => usage_error(&format!("{}: {e}", src.input.display())),
        Err(e @ BacktestError::Input { .. }) => usage_error(&e.to_string()),
        Err(e) => {
            errln(&format!("error: {e}"));
            ExitCode::from(1)
        }
    }
}

/// Writes a report page, saying where and how long the whole command took; exit 1 when it
/// cannot be written.
fn write_html(path: &Path, page: &str, started: Instant) -> Result<(), ExitCode> {
    match std::fs::write(path, page) {
        Ok(()) => {
            errln(&format!(
                "html: {} ({} bytes; {:.3} s in all)",
                path.display(),
                page.len(),
                started.elapsed().as_secs_f64()
            ));
            Ok(())
        }
        Err(e) => {
            errln(&format!("error: cannot write {}: {e}", path.display()));
            Err(ExitCode::from(1))
        }
    }
}

/// `sweep`: every combination of the grid replayed over one recording, ranked by final PnL.
#[must_use]
pub fn sweep(
    config: Option<&Path>,
    src: &Source<'_>,
    g: &SweepGrid<'_>,
    csv: bool,
    jobs: Option<usize>,
    html: Option<&Path>,
) -> ExitCode {
    let axes = match g
        .grid
        .iter()
        .map(|g| Axis::parse(g))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(a) => a,
        Err(e) => return usage_error(&e.to_string()),
    };
    let shard = match g.shard.map(Shard::parse).transpose() {
        Ok(s) => s,
        Err(e) => return usage_error(&e.to_string()),
    };
    let fixed = match parse_overrides(g.set) {
        Ok(f) => f,
        Err(e) => return usage_error(&e.to_string()),
    };
    let config = match resolve_config_path(config) {
        Ok(p) => p,
        Err(e) => return usage_error(&e.to_string()),
    };
    if let Err(e) = src.check() {
        return usage_error(&e);
    }
    let input = src.input;
    let base = match load_combination(&config, &fixed, &[]) {
        Ok(c) => c,
        Err(e) => return usage_error(&e.to_string()),
    };
    let data = match src.bytes(&base) {
        Ok(d) => d,
        Err(e) => return usage_error(&e),
    };
    let mut combos = combinations(&axes);
    if let Some(sh) = shard {
        let total = combos.len();
        combos = sh.take(combos);
        errln(&format!(
            "sweep: shard {}/{}: {} of {total} combinations",
            sh.index,
            sh.of,
            combos.len()
        ));
    }

    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let started = Instant::now();
    let rows = crate::backtest::sweep::sweep(&data, &combos, jobs, |combo| {
        load_combination(&config, &fixed, combo)
            .map(|c| c.core_settings(FillModel::Queue))
            .map_err(|e| BacktestError::Combination(e.to_string()))
    });
    match rows {
        Ok(rows) => {
            if csv {
                out(&crate::backtest::sweep::csv(&axes, &rows));
            } else {
                out(&crate::backtest::sweep::table(&axes, &rows));
            }
            if let Some(path) = html {
                let (head, body) = crate::backtest::sweep::cells(&axes, &rows);
                let page =
                    crate::backtest::html::sweep_page(&input.display().to_string(), &head, &body);
                if let Err(e) = write_html(path, &page, started) {
                    return e;
                }
            }
            errln(&format!(
                "sweep: {} runs over {} in {:.2} s on {jobs} thread(s)",
                rows.len(),
                input.display(),
                started.elapsed().as_secs_f64()
            ));
            ExitCode::SUCCESS
        }
        Err(e @ BacktestError::NotFeed(_)) => usage_error(&format!("{}: {e}", input.display())),
        Err(e) => usage_error(&e.to_string()),
    }
}

/// What a sweep varies: the `--grid` axes, the fixed `--set` overrides, and the `--shard`.
#[derive(Debug, Clone, Copy)]
pub struct SweepGrid<'a> {
    /// `KEY=V1,V2,...` axes.
    pub grid: &'a [String],
    /// `KEY=VALUE` overrides for every run.
    pub set: &'a [String],
    /// `I/N`: this machine's slice.
    pub shard: Option<&'a str>,
}

/// `sweep-merge`: the shards' CSVs ranked together (table, or `--csv`).
#[must_use]
pub fn sweep_merge(files: &[std::path::PathBuf], csv: bool, html: Option<&Path>) -> ExitCode {
    let started = Instant::now();
    let mut texts = Vec::with_capacity(files.len());
    for f in files {
        match std::fs::read_to_string(f) {
            Ok(t) => texts.push((f.display().to_string(), t)),
            Err(e) => return usage_error(&format!("cannot read {}: {e}", f.display())),
        }
    }
    match crate::backtest::sweep::merge(&texts) {
        Ok((head, body)) => {
            if csv {
                out(&crate::backtest::sweep::csv_text(&head, &body));
            } else {
                out(&crate::backtest::sweep::aligned(&head, &body));
            }
            if let Some(path) = html {
                let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
                let page = crate::backtest::html::sweep_page(&names.join(", "), &head, &body);
                if let Err(e) = write_html(path, &page, started) {
                    return e;
                }
            }
            errln(&format!(
                "sweep-merge: {} runs from {} file(s)",
                body.len(),
                files.len()
            ));
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(&e.to_string()),
    }
}

/// The config with the fixed `--set` overrides and one grid combination on top.
fn load_combination(
    config: &Path,
    fixed: &[(String, String)],
    combo: &[(String, String)],
) -> Result<Config, ConfigError> {
    Config::load_layers(
        config,
        &[
            Layer {
                flag: "--set",
                pairs: fixed,
            },
            Layer {
                flag: "--grid",
                pairs: combo,
            },
        ],
    )
}
