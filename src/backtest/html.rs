//! Backtest results as self-contained HTML files: `replay --html` (charts of the session and
//! the report's table) and `sweep --html` (the grid ranked, with a heatmap of final PnL).
//!
//! Everything a page needs is inside it (styles, uPlot, the data), so it opens offline and can
//! be mailed or archived. The same input gives the same bytes: nothing here reads a clock or
//! the machine, and maps are ordered.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::json;

use crate::backtest::replay::ReplayReport;
use crate::backtest::trace::Trace;
use crate::side::dashboard::{CHARTS_JS, PAGE_CSS, UPLOT_CSS, UPLOT_JS};

const REPLAY_TEMPLATE: &str = include_str!("report.html");

/// What the page says about where the report came from.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The input file, as given.
    pub input: &'a str,
    /// `wildbot` or `tardis`.
    pub format: &'a str,
    /// The configured pair.
    pub symbol: &'a str,
    /// The effective settings, as `check-config` prints them.
    pub settings: &'a str,
}

/// The replay report page.
#[must_use]
pub fn replay_page(src: &Source<'_>, r: &ReplayReport, trace: &Trace) -> String {
    // The page's script reads the trace's columns at the top level, the report beside them.
    let mut data = trace.to_json();
    if let Some(o) = data.as_object_mut() {
        o.insert("report".into(), json!(r));
    }
    let title = format!("WildBot replay: {}", src.input);
    fill(
        REPLAY_TEMPLATE,
        &[
            ("/*TITLE*/", &esc(&title)),
            ("/*PAGE_CSS*/", PAGE_CSS),
            ("/*UPLOT_CSS*/", UPLOT_CSS),
            ("<!--BODY-->", &replay_body(src, r, trace)),
            ("/*UPLOT_JS*/", UPLOT_JS),
            ("/*CHARTS_JS*/", CHARTS_JS),
            ("/*DATA*/", &script_json(&data)),
        ],
    )
}

fn replay_body(src: &Source<'_>, r: &ReplayReport, trace: &Trace) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        "<header>\n  <h1>WildBot</h1>\n  <span class=\"badge paper\">REPLAY ON PAPER</span>\n  \
         <span>{}</span>\n  <span class=\"spacer\"></span>\n  <span class=\"muted\">{} ({}) · \
         {:.1} s of feed · fill model {}</span>\n</header>\n",
        esc(src.symbol),
        esc(src.input),
        esc(src.format),
        r.duration_s,
        esc(r.fill_model)
    );
    b.push_str(&cards(r));
    b.push_str(CHART_SECTIONS);
    let _ = writeln!(
        b,
        "<p class=\"note\" style=\"padding: 0 22px\">One point every {} s of feed time (the last \
         one at the end of the file); {} fills and {} round trips listed{}.</p>",
        trace.spacing() as f64 / 1e9,
        trace.fills().len(),
        trace.trips().len(),
        unlisted(trace)
    );
    b.push_str("<main>\n");
    b.push_str(&report_table(r));
    b.push_str(&paused_table(r));
    let _ = write!(
        b,
        "  <section class=\"wide\">\n    <h2>Settings and text report</h2>\n    <details><summary>\
         effective settings</summary><pre>{}</pre></details>\n    <details><summary>the report as \
         <code>wildbot replay</code> prints it</summary><pre>{}</pre></details>\n  </section>\n",
        esc(src.settings),
        esc(&r.render())
    );
    b.push_str("</main>\n");
    b
}

const CHART_SECTIONS: &str = r##"<div class="charts">
  <section>
    <h2>Price, our quotes and fills</h2>
    <div id="chart_price" class="chart" data-points="0" data-fills="0"></div>
    <div class="key"><span><i style="border-color:#3fb68b"></i>best bid</span><span><i style="border-color:#ff5b5b"></i>best ask</span>
      <span><i style="border-color:#e040fb"></i>microprice</span><span><i class="dash" style="border-color:#8fd3ff"></i>our buy</span>
      <span><i class="dash" style="border-color:#ffb38a"></i>our sell</span>
      <span><b style="border-bottom-color:#3fb68b"></b>buy fill</span><span><b style="border-top-color:#ff5b5b"></b>sell fill</span></div>
  </section>
  <section>
    <h2>Equity and drawdown</h2>
    <div id="chart_equity" class="chart" data-points="0"></div>
    <div class="key"><span><i style="border-color:#00e5ff"></i>equity (left)</span><span><i style="border-color:#ff5b5b"></i>drawdown from the peak, % (right)</span></div>
  </section>
  <section>
    <h2>Own position (base)</h2>
    <div id="chart_position" class="chart" data-points="0"></div>
  </section>
  <section>
    <h2>PnL per round trip, after fees</h2>
    <div id="chart_trips" class="chart" data-trips="0"></div>
    <div class="key"><span><i style="border-color:#3fb68b"></i>won</span><span><i style="border-color:#ff5b5b"></i>lost</span></div>
  </section>
  <section>
    <h2>Why it was not quoting</h2>
    <div id="chart_pauses" class="chart" data-rules="0"></div>
    <div class="key"><span>a bar where the rule held quoting back during that interval</span></div>
  </section>
</div>
"##;

fn unlisted(trace: &Trace) -> String {
    let (f, t) = (trace.fills_unlisted(), trace.trips_unlisted());
    if f + t == 0 {
        String::new()
    } else {
        format!(" ({f} fills and {t} round trips past the lists' caps are in the totals only)")
    }
}

fn cards(r: &ReplayReport) -> String {
    let sign = |v: f64| if v < 0.0 { "neg" } else { "pos" };
    let cards = [
        (
            "final PnL",
            format!("{:.2}", r.final_pnl),
            Some(sign(r.final_pnl)),
        ),
        (
            "realised before fees",
            format!("{:.2}", r.realized_pnl),
            Some(sign(r.realized_pnl)),
        ),
        ("fees", format!("{:.2}", r.fees), None),
        (
            "round trips (won / lost)",
            format!("{} ({} / {})", r.round_trips, r.wins, r.losses),
            None,
        ),
        ("win rate", format!("{:.1} %", r.win_rate * 100.0), None),
        ("max drawdown", format!("{:.2} %", r.max_drawdown_pct), None),
        ("fills", r.fills.to_string(), None),
        ("quote uptime", format!("{:.1} %", r.quote_uptime_pct), None),
    ];
    let mut s = String::from("<div class=\"cards\">\n");
    for (label, value, class) in cards {
        let _ = writeln!(
            s,
            "  <div class=\"card\"><b{}>{}</b><span>{}</span></div>",
            class.map_or(String::new(), |c| format!(" class=\"{c}\"")),
            esc(&value),
            esc(label)
        );
    }
    s.push_str("</div>\n");
    s
}

/// Every figure of the report, labelled.
fn report_table(r: &ReplayReport) -> String {
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3} s"));
    let rows: Vec<(&str, String)> = vec![
        ("Feed time", format!("{:.3} s", r.duration_s)),
        ("Frames", r.frames.to_string()),
        ("Book messages", r.book_messages.to_string()),
        ("Strategy evaluations (ticks)", r.ticks.to_string()),
        (
            "Book",
            if r.checksum_verified {
                format!("checksum-verified ({} matched)", r.checksums_ok)
            } else {
                "not checksum-verified: the input carries no Kraken checksums".into()
            },
        ),
        ("Checksum mismatches", r.checksum_mismatches.to_string()),
        ("Malformed frames skipped", r.parse_errors.to_string()),
        ("Orders placed", r.quotes.to_string()),
        ("Orders cancelled", r.cancels.to_string()),
        ("Fills", r.fills.to_string()),
        ("First fill after", opt(r.first_fill_s)),
        ("Fees", format!("{:.2}", r.fees)),
        ("Round trips", r.round_trips.to_string()),
        ("Won / lost", format!("{} / {}", r.wins, r.losses)),
        ("Win rate", format!("{:.1} %", r.win_rate * 100.0)),
        ("Realised PnL before fees", format!("{:.2}", r.realized_pnl)),
        ("Final PnL (equity change)", format!("{:.2}", r.final_pnl)),
        ("Final position", format!("{:.8}", r.final_position)),
        ("Max drawdown", format!("{:.3} %", r.max_drawdown_pct)),
        (
            "Time in the market",
            format!("{:.1} %", r.time_in_market_pct),
        ),
        ("Quote uptime", format!("{:.1} %", r.quote_uptime_pct)),
        ("Fill model", r.fill_model.to_string()),
    ];
    let mut s = String::from("  <section>\n    <h2>Report</h2>\n    <table class=\"figures\">\n");
    for (k, v) in rows {
        let _ = writeln!(s, "      <tr><td>{}</td><td>{}</td></tr>", esc(k), esc(&v));
    }
    if let Some(t) = &r.tardis {
        let _ = writeln!(
            s,
            "      <tr><td>Tardis rows</td><td>{} book, {} trades; skipped {} before the first \
             snapshot, {} of other symbols, {} malformed</td></tr>",
            t.book_rows, t.trade_rows, t.before_snapshot, t.other_symbol, t.malformed
        );
        for e in &t.errors {
            let _ = writeln!(s, "      <tr><td></td><td>{}</td></tr>", esc(e));
        }
    }
    s.push_str("    </table>\n  </section>\n");
    s
}

/// Ticks each rule held quoting back, most first.
fn paused_table(r: &ReplayReport) -> String {
    let mut held: Vec<(&&str, &u64)> = r.paused_by.iter().filter(|(_, n)| **n > 0).collect();
    held.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut s = String::from(
        "  <section>\n    <h2>Ticks held back, by rule</h2>\n    <table>\n      \
         <thead><tr><th>Rule</th><th>Ticks</th><th>Share of ticks</th></tr></thead>\n",
    );
    if held.is_empty() {
        s.push_str(
            "      <tr><td colspan=\"3\" class=\"empty\">no rule held quoting back</td></tr>\n",
        );
    }
    for (rule, n) in held {
        let share = if r.ticks == 0 {
            0.0
        } else {
            (*n as f64 * 100.0 / r.ticks as f64).min(100.0)
        };
        let _ = writeln!(
            s,
            "      <tr><td>{}</td><td>{n}</td><td>{share:.1} %</td></tr>",
            esc(rule)
        );
    }
    s.push_str("    </table>\n  </section>\n");
    s
}

/// The sweep page: the grid ranked best first with each row's figures, and a heatmap of
/// final PnL over the first two axes.
#[must_use]
pub fn sweep_page(input: &str, head: &[String], body: &[Vec<String>]) -> String {
    let grid = head.iter().position(|h| h == "final_pnl").unwrap_or(0);
    let pnl: Vec<f64> = body
        .iter()
        .map(|r| r.get(grid).and_then(|v| v.parse().ok()).unwrap_or(0.0))
        .collect();
    let scale = pnl.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut b = String::new();
    let _ = write!(
        b,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n\
         <style>\n{PAGE_CSS}\ntd.cell {{ text-align: center; }}\n</style>\n</head>\n<body>\n\
         <header>\n  <h1>WildBot</h1>\n  <span class=\"badge paper\">SWEEP ON PAPER</span>\n  \
         <span class=\"spacer\"></span>\n  <span class=\"muted\">{} · {} runs, best final PnL \
         first</span>\n</header>\n<main>\n",
        esc(&format!("WildBot sweep: {input}")),
        esc(input),
        body.len()
    );
    if grid >= 2 {
        b.push_str(&heatmap(head, body, &pnl, scale));
    }
    b.push_str("  <section class=\"wide\">\n    <h2>Runs, ranked</h2>\n    <table id=\"runs\">\n      <thead><tr><th>#</th>");
    for h in head {
        let _ = write!(b, "<th>{}</th>", esc(h));
    }
    b.push_str("</tr></thead>\n");
    for (i, (row, v)) in body.iter().zip(&pnl).enumerate() {
        let _ = write!(b, "      <tr><td>{}</td>", i + 1);
        for (c, cell) in row.iter().enumerate() {
            if c == grid {
                let _ = write!(
                    b,
                    "<td style=\"background:{}\">{}</td>",
                    heat(*v, scale),
                    esc(cell)
                );
            } else {
                let _ = write!(b, "<td>{}</td>", esc(cell));
            }
        }
        b.push_str("</tr>\n");
    }
    b.push_str("    </table>\n  </section>\n</main>\n</body>\n</html>\n");
    b
}

/// Final PnL over the first two grid axes (the best over any others), one cell each.
fn heatmap(head: &[String], body: &[Vec<String>], pnl: &[f64], scale: f64) -> String {
    let mut cells: BTreeMap<(&str, &str), f64> = BTreeMap::new();
    let (mut xs, mut ys): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    for (row, v) in body.iter().zip(pnl) {
        let (y, x) = (row[0].as_str(), row[1].as_str());
        if !ys.contains(&y) {
            ys.push(y);
        }
        if !xs.contains(&x) {
            xs.push(x);
        }
        let c = cells.entry((y, x)).or_insert(f64::NEG_INFINITY);
        *c = c.max(*v);
    }
    // Axis values in numeric order where they are numbers.
    let order = |v: &mut Vec<&str>| {
        v.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => x.total_cmp(&y),
            _ => a.cmp(b),
        });
    };
    order(&mut xs);
    order(&mut ys);
    let mut s = format!(
        "  <section class=\"wide\">\n    <h2>Final PnL: {} down, {} across{}</h2>\n    <table id=\"heatmap\">\n      <tr><th>{} \\ {}</th>",
        esc(&head[0]),
        esc(&head[1]),
        if head.iter().position(|h| h == "final_pnl") > Some(2) {
            " (the best over the other axes)"
        } else {
            ""
        },
        esc(&head[0]),
        esc(&head[1])
    );
    for x in &xs {
        let _ = write!(s, "<th>{}</th>", esc(x));
    }
    s.push_str("</tr>\n");
    for y in &ys {
        let _ = write!(s, "      <tr><th>{}</th>", esc(y));
        for x in &xs {
            match cells.get(&(*y, *x)) {
                Some(v) => {
                    let _ = write!(
                        s,
                        "<td class=\"cell\" style=\"background:{}\">{v:.2}</td>",
                        heat(*v, scale)
                    );
                }
                None => s.push_str("<td class=\"cell empty\">-</td>"),
            }
        }
        s.push_str("</tr>\n");
    }
    s.push_str("    </table>\n  </section>\n");
    s
}

/// Green for a gain, red for a loss, stronger the further from zero (of the largest seen).
fn heat(v: f64, scale: f64) -> String {
    let a = if scale > 0.0 {
        (v.abs() / scale).min(1.0)
    } else {
        0.0
    };
    let (r, g, b) = if v < 0.0 {
        (255, 91, 91)
    } else {
        (63, 182, 139)
    };
    format!("rgba({r},{g},{b},{:.2})", 0.08 + 0.6 * a)
}

/// Each marker replaced once, in the order they appear in the template; what is put in is
/// never searched again (a file name may contain anything).
fn fill(template: &str, parts: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + parts.iter().map(|p| p.1.len()).sum::<usize>());
    let mut rest = template;
    for (marker, value) in parts {
        match rest.find(marker) {
            Some(at) => {
                out.push_str(&rest[..at]);
                out.push_str(value);
                rest = &rest[at + marker.len()..];
            }
            None => debug_assert!(false, "{marker} missing from the template"),
        }
    }
    out.push_str(rest);
    out
}

/// JSON safe inside a `<script>` element: `</` cannot end it early.
fn script_json(v: &serde_json::Value) -> String {
    serde_json::to_string(v)
        .unwrap_or_else(|_| "{}".into())
        .replace("</", "<\\/")
}

/// Text as HTML.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
