//! The dashboard page and the backtest report in a real browser: headless Chromium renders
//! them, and what they show matches `/api/status` or the replay's report; the screenshot tool
//! writes a PNG of each.
//!
//! Needs Debian's `chromium` (`.ci/run` installs it). Without a Chromium the test prints
//! "SKIPPED" and passes: set `CHROMIUM` to a browser binary to run it elsewhere.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{get, status_until};

fn chromium() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// The page after its script ran (Chromium's virtual time lets the fetch and render finish).
fn rendered_dom(chrome: &PathBuf, url: &str) -> String {
    // A profile of its own per browser: tests run in parallel, and Chromium refuses a profile
    // another instance holds.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile = tempdir(&format!("chromium-profile-{n}"));
    let out = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=3000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .output()
        .expect("run chromium");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `tools/dashboard-screenshot.sh URL PNG` with this Chromium; it must succeed.
fn screenshot(chrome: &PathBuf, url: &str, png: &std::path::Path) {
    let tool = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/dashboard-screenshot.sh");
    let out = Command::new(tool)
        .arg(url)
        .arg(png)
        .env("CHROMIUM", chrome)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tempdir(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("wildbot-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// The text inside the element with `id`.
fn text_of(dom: &str, id: &str) -> String {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {dom}"));
    let start = at + dom[at..].find('>').unwrap() + 1;
    let end = start + dom[start..].find('<').unwrap();
    dom[start..end].trim().to_string()
}

/// A number as the page prints it ("36,283", "9,999.45").
fn number(text: &str) -> f64 {
    text.replace(',', "")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {text}"))
}

fn rows(dom: &str, tbody: &str) -> usize {
    let at = dom.find(&format!("id=\"{tbody}\"")).unwrap();
    let end = at + dom[at..].find("</tbody>").unwrap();
    let body = &dom[at..end];
    if body.contains("class=\"empty\"") {
        0
    } else {
        body.matches("<tr>").count()
    }
}

#[test]
fn the_page_shows_what_the_api_reports_and_the_screenshot_tool_writes_a_png() {
    let Some(chrome) = chromium() else {
        eprintln!("SKIPPED: no Chromium (apt-get install chromium, or set CHROMIUM)");
        return;
    };
    let bot = common::demo(&[]);
    status_until(&bot.url, Duration::from_secs(40), |s| {
        s["counters"]["fills"].as_u64().unwrap_or(0) > 0 && s["feed"] == "fresh"
    });
    let before = get(&format!("{}/api/status", bot.url), None).json();
    let dom = rendered_dom(&chrome, &format!("{}/", bot.url));
    let after = get(&format!("{}/api/status", bot.url), None).json();

    assert_eq!(text_of(&dom, "badge"), before["mode"].as_str().unwrap());
    assert_eq!(text_of(&dom, "badge"), "LIVE");
    assert_eq!(text_of(&dom, "symbol"), "BTC/USD");
    let state = text_of(&dom, "state");
    assert!(
        [&before, &after]
            .iter()
            .any(|s| s["state_text"].as_str() == Some(state.as_str())),
        "state {state}"
    );
    assert_eq!(text_of(&dom, "feed"), "fresh");
    // Counters only grow: what the page shows lies between the two API reads around it.
    for key in ["ticks", "orders_placed", "fills"] {
        let shown = number(&text_of(&dom, key));
        let lo = before["counters"][key].as_f64().unwrap();
        let hi = after["counters"][key].as_f64().unwrap();
        assert!(lo <= shown && shown <= hi, "{key}: {lo} <= {shown} <= {hi}");
    }
    let shown_trips = number(&text_of(&dom, "round_trips"));
    assert!(
        before["round_trips"].as_f64().unwrap() <= shown_trips
            && shown_trips <= after["round_trips"].as_f64().unwrap()
    );
    let trades = rows(&dom, "trades");
    let (lo, hi) = (
        before["trade_history"].as_array().unwrap().len(),
        after["trade_history"].as_array().unwrap().len(),
    );
    assert!(
        trades >= 1 && lo <= trades && trades <= hi.min(20),
        "{trades} rows"
    );
    // Money as the API has it, to the cent. The balance moves only on fills: it is one of
    // the two reads. Peak equity only grows: it lies between them.
    let balance = number(&text_of(&dom, "balance"));
    let fills_between = after["counters"]["fills"].as_u64().unwrap()
        - before["counters"]["fills"].as_u64().unwrap();
    assert!(
        fills_between > 1
            || [&before, &after]
                .iter()
                .any(|s| (s["balance"].as_f64().unwrap() - balance).abs() < 0.006),
        "balance {balance}"
    );
    let peak = number(&text_of(&dom, "peak_equity"));
    assert!(
        before["peak_equity"].as_f64().unwrap() - 0.006 <= peak
            && peak <= after["peak_equity"].as_f64().unwrap() + 0.006,
        "peak {peak}"
    );
    let fees = number(&text_of(&dom, "fees_paid"));
    assert!(
        before["fees_paid"].as_f64().unwrap() - 0.006 <= fees
            && fees <= after["fees_paid"].as_f64().unwrap() + 0.006
    );
    assert!(dom.contains("frame → parsed") && dom.contains("intent → REST answer"));

    // The screenshot tool.
    let png = std::env::temp_dir().join(format!("wildbot-dash-{}.png", std::process::id()));
    screenshot(&chrome, &format!("{}/", bot.url), &png);
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(bytes.len() > 20_000, "a real page, {} bytes", bytes.len());
    std::fs::remove_file(&png).unwrap();

    bot.signal("INT");
    let (code, _, stderr) = bot.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{stderr}");
}

/// A decoded screenshot: RGB(A) pixels, row-major.
struct Shot {
    width: usize,
    height: usize,
    channels: usize,
    pixels: Vec<u8>,
}

impl Shot {
    fn read(path: &std::path::Path) -> Shot {
        let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
        let mut reader = png::Decoder::new(file).read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        let channels = match info.color_type {
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            other => panic!("unexpected PNG colour type {other:?}"),
        };
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        Shot {
            width: info.width as usize,
            height: info.height as usize,
            channels,
            pixels,
        }
    }

    /// Pixels within `tol` of `rgb` in rows `rows`: how many, and the columns they span.
    fn find(&self, rgb: [u8; 3], tol: i32, rows: std::ops::Range<usize>) -> (usize, usize) {
        let (mut n, mut lo, mut hi) = (0, usize::MAX, 0);
        for y in rows.start..rows.end.min(self.height) {
            for x in 0..self.width {
                let i = (y * self.width + x) * self.channels;
                let px = &self.pixels[i..i + 3];
                if px
                    .iter()
                    .zip(rgb)
                    .all(|(a, b)| (i32::from(*a) - i32::from(b)).abs() <= tol)
                {
                    n += 1;
                    lo = lo.min(x);
                    hi = hi.max(x);
                }
            }
        }
        (n, hi.saturating_sub(lo))
    }
}

/// The value of `attr` on the element with `id`.
fn attr_of(dom: &str, id: &str, attr: &str) -> String {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let tag = &dom[dom[..at].rfind('<').unwrap()..at + dom[at..].find('>').unwrap()];
    let key = format!("{attr}=\"");
    let start = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {attr} in {tag}"))
        + key.len();
    tag[start..start + tag[start..].find('"').unwrap()].to_string()
}

#[test]
fn the_charts_draw_the_sessions_prices_quotes_fills_and_equity_and_update_live() {
    let Some(chrome) = chromium() else {
        eprintln!("SKIPPED: no Chromium (apt-get install chromium, or set CHROMIUM)");
        return;
    };
    let bot = common::demo(&[]);
    let before = status_until(&bot.url, Duration::from_secs(60), |s| {
        s["counters"]["fills"].as_u64().unwrap_or(0) >= 2 && s["uptime_s"].as_f64().unwrap() > 15.0
    });
    let h = get(&format!("{}/api/history", bot.url), None).json();
    let after = get(&format!("{}/api/status", bot.url), None).json();

    // The history: columns aligned on time, real prices, our quotes and every fill.
    let p = &h["points"];
    let t = p["t"].as_array().unwrap();
    assert!(t.len() >= 40, "4 points a second for 15 s: {}", t.len());
    assert!(t.windows(2).all(|w| w[0].as_f64() < w[1].as_f64()));
    for col in [
        "bid",
        "ask",
        "microprice",
        "our_bid",
        "our_ask",
        "equity",
        "position",
    ] {
        assert_eq!(p[col].as_array().unwrap().len(), t.len(), "{col}");
    }
    let last = t.len() - 1;
    let (bid, ask) = (
        p["bid"][last].as_f64().unwrap(),
        p["ask"][last].as_f64().unwrap(),
    );
    assert!(bid > 1_000.0 && bid < ask, "a real book: {bid} {ask}");
    assert!(
        p["our_bid"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v.is_number()),
        "our resting buys are in the history"
    );
    let fills = h["fills"].as_array().unwrap().len() as u64;
    assert!(
        before["counters"]["fills"].as_u64().unwrap() <= fills
            && fills <= after["counters"]["fills"].as_u64().unwrap(),
        "every fill once: {fills}"
    );
    let since = t[last].as_f64().unwrap();
    let newer = get(&format!("{}/api/history?since={since}", bot.url), None).json();
    assert!(
        newer["points"]["t"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v.as_f64().unwrap() > since)
    );

    // The page: the SIMULATOR badge, points and fills drawn, and fresh data taken in place.
    let dom = rendered_dom(&chrome, &format!("{}/", bot.url));
    assert_eq!(text_of(&dom, "venue"), "SIMULATOR");
    assert_eq!(attr_of(&dom, "venue", "class"), "badge sim");
    assert!(number(&attr_of(&dom, "chart_price", "data-points")) >= 40.0);
    assert!(number(&attr_of(&dom, "chart_price", "data-fills")) >= 2.0);
    assert!(
        number(&attr_of(&dom, "chart_price", "data-updates")) >= 2.0,
        "the page refreshed its charts without a reload"
    );
    assert!(text_of(&dom, "link_feed").starts_with("fresh · 1 connect"));
    // The worker's errors as the API reports them after the render (they only grow): none
    // then means none shown. A demo can meet a refused amend of an order that just filled.
    let api_errors = get(&format!("{}/api/status", bot.url), None).json()["worker"]["errors"]
        .as_object()
        .map_or(0, serde_json::Map::len);
    let shown = text_of(&dom, "worker_errors");
    if api_errors == 0 {
        assert_eq!(shown, "none");
    } else {
        assert!(shown == "none" || shown.contains(": "), "{shown}");
    }

    // The screenshot: the microprice (magenta) and equity (cyan) lines are drawn across the
    // charts, and fills are marked, not only a legend.
    let png = std::env::temp_dir().join(format!("wildbot-charts-{}.png", std::process::id()));
    screenshot(&chrome, &format!("{}/", bot.url), &png);
    let shot = Shot::read(&png);
    std::fs::remove_file(&png).unwrap();
    let charts = 40..720;
    let (micro, micro_span) = shot.find([0xe0, 0x40, 0xfb], 40, charts.clone());
    assert!(
        micro > 400 && micro_span > 600,
        "microprice line: {micro} px over {micro_span} columns"
    );
    let (equity, equity_span) = shot.find([0x00, 0xe5, 0xff], 40, charts.clone());
    assert!(
        equity > 200 && equity_span > 250,
        "equity line: {equity} px over {equity_span} columns"
    );
    let (buys, _) = shot.find([0x3f, 0xb6, 0x8b], 12, charts);
    assert!(buys > 30, "buy fills and the bid line: {buys} px");

    bot.signal("INT");
    let (code, _, stderr) = bot.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn the_replay_report_draws_the_session_its_fills_round_trips_and_pauses_offline() {
    let Some(chrome) = chromium() else {
        eprintln!("SKIPPED: no Chromium (apt-get install chromium, or set CHROMIUM)");
        return;
    };
    let dir = tempdir("report");
    let html = dir.join("report.html");
    let out = common::bin()
        .args(["replay", "--json", "--config"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/config/wildbot.toml"))
        .arg("--input")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/sim-btcusd-seed7-60s.jsonl"
        ))
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert!(r["fills"].as_u64().unwrap() >= 2, "{r}");

    // file:// and no network: everything the page draws is inside it.
    let url = format!("file://{}", html.display());
    let dom = rendered_dom(&chrome, &url);
    assert!(
        dom.contains("data-ready=\"1\""),
        "the script ran to its end"
    );
    let n = |id: &str, attr: &str| -> u64 { attr_of(&dom, id, attr).parse().unwrap() };
    assert!(
        n("chart_price", "data-points") >= 200,
        "60 s at 4 points a second"
    );
    assert_eq!(n("chart_price", "data-fills"), r["fills"].as_u64().unwrap());
    assert_eq!(
        n("chart_trips", "data-trips"),
        r["round_trips"].as_u64().unwrap()
    );
    let pausing = r["paused_by"]
        .as_object()
        .unwrap()
        .values()
        .filter(|v| v.as_u64() > Some(0))
        .count() as u64;
    assert_eq!(n("chart_pauses", "data-rules"), pausing);
    assert!(
        dom.contains("checksum-verified"),
        "the report's table is there"
    );

    let png = dir.join("report.png");
    screenshot(&chrome, &url, &png);
    let shot = Shot::read(&png);
    // The price chart (top third): the magenta microprice line across the session.
    let (px, span) = shot.find([0xe0, 0x40, 0xfb], 40, 0..shot.height / 3);
    assert!(
        px > 400 && span > 600,
        "microprice drawn: {px} px over {span} columns"
    );
    // Below it: the cyan equity line and the green bar of the won round trip.
    let (px, span) = shot.find([0x00, 0xe5, 0xff], 40, shot.height / 4..shot.height * 3 / 4);
    assert!(
        px > 200 && span > 200,
        "equity drawn: {px} px over {span} columns"
    );
    let (px, _) = shot.find([0x3f, 0xb6, 0x8b], 10, shot.height / 4..shot.height * 3 / 4);
    assert!(px > 300, "the round trip's bar: {px} px");
    let _ = std::fs::remove_dir_all(&dir);
}
