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

/// One of N slices of a grid (`--shard I/N`, I counted from 1), so a batch system can spread
/// a large grid over machines and `sweep-merge` can rank the union.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which slice, 1..=`of`.
    pub index: usize,
    /// How many slices.
    pub of: usize,
}

impl Shard {
    /// Parses `I/N`.
    ///
    /// # Errors
    /// Not two numbers, or I outside 1..=N.
    pub fn parse(spec: &str) -> Result<Shard, BacktestError> {
        let bad = || BacktestError::Shard(spec.to_string());
        let (i, n) = spec.split_once('/').ok_or_else(bad)?;
        let (index, of) = (
            i.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if index == 0 || index > of {
            return Err(bad());
        }
        Ok(Shard { index, of })
    }

    /// This slice of `combos`: every N-th combination from the I-th, in the grid's order (the
    /// same on every machine), so slices are balanced whichever axis is slow.
    #[must_use]
    pub fn take(self, combos: Vec<Vec<(String, String)>>) -> Vec<Vec<(String, String)>> {
        combos
            .into_iter()
            .enumerate()
            .filter(|(k, _)| k % self.of == self.index - 1)
            .map(|(_, c)| c)
            .collect()
    }
}

/// Final PnL in cents: the ranking key. Differences below a cent are noise, and the CSV shows
/// cents, so a merge of shard CSVs ranks exactly as one machine does.
fn cents(pnl: f64) -> i64 {
    // Through the printed text, so a half cent rounds here exactly as in the CSV.
    let shown: f64 = format!("{pnl:.2}").parse().unwrap_or(pnl);
    (shown * 100.0).round() as i64
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
                    let r = replay(cfg, data, None, |_, _| {});
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
    rows.sort_by_cached_key(|r| {
        (
            std::cmp::Reverse(cents(r.report.final_pnl)),
            r.settings.clone(),
        )
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

/// The header and cells of the rows (grid values, then the figures).
#[must_use]
pub fn cells(axes: &[Axis], rows: &[SweepRow]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut head: Vec<String> = axes.iter().map(|a| a.key.clone()).collect();
    head.extend(COLUMNS.iter().map(|c| (*c).to_string()));
    let body = rows
        .iter()
        .map(|r| {
            let mut v: Vec<String> = r.settings.iter().map(|(_, v)| v.clone()).collect();
            v.extend(values(&r.report));
            v
        })
        .collect();
    (head, body)
}

/// The rows as an aligned table.
#[must_use]
pub fn table(axes: &[Axis], rows: &[SweepRow]) -> String {
    let (head, body) = cells(axes, rows);
    aligned(&head, &body)
}

/// The rows as CSV (header first).
#[must_use]
pub fn csv(axes: &[Axis], rows: &[SweepRow]) -> String {
    let (head, body) = cells(axes, rows);
    csv_text(&head, &body)
}

/// `head` and `body` as a right-aligned table.
#[must_use]
pub fn aligned(head: &[String], body: &[Vec<String>]) -> String {
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
    for row in std::iter::once(head).chain(body.iter().map(Vec::as_slice)) {
        let cells: Vec<String> = row
            .iter()
            .zip(&width)
            .map(|(c, w)| format!("{c:>w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  "));
    }
    out
}

/// `head` and `body` as CSV.
#[must_use]
pub fn csv_text(head: &[String], body: &[Vec<String>]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", head.join(","));
    for r in body {
        let _ = writeln!(out, "{}", r.join(","));
    }
    out
}

/// The grid columns of a sweep CSV header: everything before `final_pnl`.
fn grid_width(head: &[String]) -> Option<usize> {
    let at = head.iter().position(|h| h == COLUMNS[0])?;
    (head[at..] == COLUMNS.map(String::from)).then_some(at)
}

/// Ranks the union of shard CSVs (`sweep --csv --shard I/N` from each machine) as one
/// machine's sweep of the whole grid ranks it: final PnL (cents) best first, then the grid
/// values. Every file must have the same header. A combination found twice with the same
/// figures (a shard run again) counts once; with different figures it is an error.
///
/// # Errors
/// A file that is not a sweep CSV, headers that differ, or conflicting rows.
pub fn merge(files: &[(String, String)]) -> Result<(Vec<String>, Vec<Vec<String>>), BacktestError> {
    let mut head: Option<Vec<String>> = None;
    let mut rows: std::collections::BTreeMap<Vec<String>, (Vec<String>, String)> =
        std::collections::BTreeMap::new();
    for (file, text) in files {
        let err = |why: String| BacktestError::Merge {
            file: file.clone(),
            why,
        };
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let h: Vec<String> = lines
            .next()
            .ok_or_else(|| err("empty: not a sweep CSV".into()))?
            .split(',')
            .map(|c| c.trim().to_string())
            .collect();
        let grid = grid_width(&h).ok_or_else(|| {
            err(format!(
                "not a sweep CSV (its header should end {})",
                COLUMNS.join(",")
            ))
        })?;
        match &head {
            None => head = Some(h.clone()),
            Some(first) if *first != h => {
                return Err(err(format!(
                    "its columns ({}) differ from the first file's ({})",
                    h.join(","),
                    first.join(",")
                )));
            }
            Some(_) => {}
        }
        for (n, line) in lines.enumerate() {
            let cells: Vec<String> = line.split(',').map(|c| c.trim().to_string()).collect();
            if cells.len() != h.len() || cells[grid].parse::<f64>().is_err() {
                return Err(err(format!("line {}: not a sweep row: {line}", n + 2)));
            }
            let key = cells[..grid].to_vec();
            match rows.get(&key) {
                Some((seen, from)) if *seen != cells => {
                    return Err(err(format!(
                        "line {}: {} was also run in {from}, with other figures",
                        n + 2,
                        key.join(",")
                    )));
                }
                Some(_) => {}
                None => {
                    rows.insert(key, (cells, file.clone()));
                }
            }
        }
    }
    let head = head.unwrap_or_default();
    let grid = grid_width(&head).unwrap_or(0);
    let mut body: Vec<Vec<String>> = rows.into_values().map(|(c, _)| c).collect();
    body.sort_by_cached_key(|r| {
        let pnl = cents(r[grid].parse::<f64>().unwrap_or(f64::MIN));
        (std::cmp::Reverse(pnl), r[..grid].to_vec())
    });
    Ok((head, body))
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

    #[test]
    fn shards_split_the_grid_into_disjoint_slices_that_cover_it() {
        let axes = [
            Axis::parse("a=1,2,3").unwrap(),
            Axis::parse("b=x,y,z,w").unwrap(),
        ];
        let all = combinations(&axes);
        let mut union = Vec::new();
        for i in 1..=5 {
            let part = Shard { index: i, of: 5 }.take(all.clone());
            assert!(
                part.len() == 2 || part.len() == 3,
                "balanced: {}",
                part.len()
            );
            union.extend(part);
        }
        union.sort();
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(union, sorted, "every combination exactly once");
        assert_eq!(Shard::parse("2/3").unwrap(), Shard { index: 2, of: 3 });
        for bad in ["0/3", "4/3", "3", "a/b", "1/0"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    fn sweep_csv(rows: &[(&str, &str)]) -> String {
        let mut s = format!("k,{}\n", COLUMNS.join(","));
        for (k, pnl) in rows {
            s.push_str(&format!("{k},{pnl},0.00,0.00,1,1,1.000,0.000,100.0\n"));
        }
        s
    }

    #[test]
    fn a_merge_ranks_the_union_and_refuses_what_does_not_fit() {
        let a = (
            "a.csv".to_string(),
            sweep_csv(&[("1", "0.50"), ("3", "-1.00")]),
        );
        let b = (
            "b.csv".to_string(),
            sweep_csv(&[("2", "0.50"), ("4", "2.00")]),
        );
        let (head, body) = merge(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(head[0], "k");
        let order: Vec<&str> = body.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(
            order,
            ["4", "1", "2", "3"],
            "PnL first, ties by the grid values"
        );
        // The same shard twice counts once; a different result for a combination is an error.
        assert_eq!(merge(&[a.clone(), a.clone()]).unwrap().1.len(), 2);
        let clash = ("c.csv".to_string(), sweep_csv(&[("1", "0.70")]));
        let e = merge(&[a.clone(), clash]).unwrap_err().to_string();
        assert!(
            e.starts_with("c.csv: line 2: 1 was also run in a.csv"),
            "{e}"
        );
        let other = ("d.csv".to_string(), sweep_csv(&[]).replacen('k', "j", 1));
        assert!(
            merge(&[a.clone(), other])
                .unwrap_err()
                .to_string()
                .contains("differ")
        );
        let junk = ("e.csv".to_string(), "hello\n".to_string());
        assert!(
            merge(&[junk])
                .unwrap_err()
                .to_string()
                .contains("not a sweep CSV")
        );
        let short = ("f.csv".to_string(), format!("{}1,2\n", sweep_csv(&[])));
        assert!(merge(&[short]).unwrap_err().to_string().contains("line 2"));
    }

    #[test]
    fn ranking_is_by_the_cents_shown() {
        assert_eq!(cents(1.2349), 123);
        assert_eq!(cents(-0.001), 0);
        assert_eq!(cents(2.0), 200);
    }
}
