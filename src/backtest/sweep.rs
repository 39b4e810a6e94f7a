//! Parameter sweeps: every combination of a grid of settings replayed over one recording, in
//! parallel on all cores, ranked by final PnL.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::backtest::error::BacktestError;
use crate::backtest::replay::{ReplayReport, replay};
use crate::core::Settings;

/// One axis of the grid: a config key and the values to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Axis {
    /// Config key.
    pub key: String,
    /// Values, as `--set` takes them.
    pub values: Vec<String>,
}

impl Axis {
    /// Parses `key=a,b,c`.
    ///
    /// # Errors
    /// No `=`, or no value.
    pub fn parse(spec: &str) -> Result<Axis, BacktestError> {
        let (key, values) = spec
            .split_once('=')
            .ok_or_else(|| BacktestError::Grid(spec.to_string()))?;
        let values: Vec<String> = values
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from)
            .collect();
        if key.trim().is_empty() || values.is_empty() {
            return Err(BacktestError::Grid(spec.to_string()));
        }
        Ok(Axis {
            key: key.trim().to_string(),
            values,
        })
    }
}

/// Every combination of the axes' values, as `(key, value)` lists (the first axis varies
/// slowest).
#[must_use]
pub fn combinations(axes: &[Axis]) -> Vec<Vec<(String, String)>> {
    let mut out: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for axis in axes {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                axis.values.iter().map(move |v| {
                    let mut c = prefix.clone();
                    c.push((axis.key.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    out
}

/// One row of a sweep.
#[derive(Debug, Clone)]
pub struct SweepRow {
    /// The grid values of this run.
    pub settings: Vec<(String, String)>,
    /// Its replay.
    pub report: ReplayReport,
}

/// Replays `data` once per combination, `jobs` at a time, and returns the rows best final PnL
/// first. `settings` turns one combination's overrides into the core's settings (through a
/// validated config).
///
/// # Errors
/// The first invalid combination (its key named) or replay failure.
pub fn sweep(
    data: &[u8],
    combos: &[Vec<(String, String)>],
    jobs: usize,
    settings: impl Fn(&[(String, String)]) -> Result<Settings, BacktestError> + Sync,
) -> Result<Vec<SweepRow>, BacktestError> {
    // Validate everything before spending any time.
    let configs: Vec<Settings> = combos
        .iter()
        .map(|c| settings(c))
        .collect::<Result<_, _>>()?;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<ReplayReport, BacktestError>>>> =
        Mutex::new((0..combos.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, combos.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(cfg) = configs.get(i) else { break };
                    let r = replay(cfg, data, |_, _| {});
                    if let Ok(mut g) = results.lock() {
                        g[i] = Some(r);
                    }
                }
            });
        }
    });
    let results = results.into_inner().map_err(|_| BacktestError::Worker)?;
    let mut rows = Vec::with_capacity(combos.len());
    for (settings, r) in combos.iter().zip(results) {
        let report = r.ok_or(BacktestError::Worker)??;
        rows.push(SweepRow {
            settings: settings.clone(),
            report,
        });
    }
    rows.sort_by(|a, b| {
        b.report
            .final_pnl
            .total_cmp(&a.report.final_pnl)
            .then_with(|| a.settings.cmp(&b.settings))
    });
    Ok(rows)
}

const COLUMNS: [&str; 8] = [
    "final_pnl",
    "realized_pnl",
    "fees",
    "fills",
    "round_trips",
    "win_rate",
    "max_drawdown_pct",
    "quote_uptime_pct",
];

fn values(r: &ReplayReport) -> [String; 8] {
    [
        format!("{:.2}", r.final_pnl),
        format!("{:.2}", r.realized_pnl),
        format!("{:.2}", r.fees),
        r.fills.to_string(),
        r.round_trips.to_string(),
        format!("{:.3}", r.win_rate),
        format!("{:.3}", r.max_drawdown_pct),
        format!("{:.1}", r.quote_uptime_pct),
    ]
}

/// The rows as an aligned table.
#[must_use]
pub fn table(axes: &[Axis], rows: &[SweepRow]) -> String {
    let mut head: Vec<String> = axes.iter().map(|a| a.key.clone()).collect();
    head.extend(COLUMNS.iter().map(|c| (*c).to_string()));
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut v: Vec<String> = r.settings.iter().map(|(_, v)| v.clone()).collect();
            v.extend(values(&r.report));
            v
        })
        .collect();
    let width: Vec<usize> = (0..head.len())
        .map(|i| {
            body.iter()
                .map(|r| r[i].len())
                .chain([head[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in std::iter::once(&head).chain(&body) {
        let cells: Vec<String> = row
            .iter()
            .zip(&width)
            .map(|(c, w)| format!("{c:>w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  "));
    }
    out
}

/// The rows as CSV (header first).
#[must_use]
pub fn csv(axes: &[Axis], rows: &[SweepRow]) -> String {
    let mut out = String::new();
    let mut head: Vec<&str> = axes.iter().map(|a| a.key.as_str()).collect();
    head.extend(COLUMNS);
    let _ = writeln!(out, "{}", head.join(","));
    for r in rows {
        let mut v: Vec<String> = r.settings.iter().map(|(_, v)| v.clone()).collect();
        v.extend(values(&r.report));
        let _ = writeln!(out, "{}", v.join(","));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grid_expands_to_every_combination() {
        let axes = [
            Axis::parse("entry_offset_bps=20,25,30").unwrap(),
            Axis::parse("skew_factor=0,0.5").unwrap(),
        ];
        let c = combinations(&axes);
        assert_eq!(c.len(), 6);
        assert_eq!(
            c[1],
            [
                ("entry_offset_bps".to_string(), "20".to_string()),
                ("skew_factor".to_string(), "0.5".to_string())
            ]
        );
        assert!(Axis::parse("nokey").is_err());
        assert!(Axis::parse("k=").is_err());
    }
}
