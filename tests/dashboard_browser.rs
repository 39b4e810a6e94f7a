//! The dashboard page in a real browser: headless Chromium renders it, and what it shows
//! matches `/api/status`; the screenshot tool writes a PNG of it.
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
    let profile = tempdir("chromium-profile");
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
    let tool = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/dashboard-screenshot.sh");
    let out = Command::new(tool)
        .arg(format!("{}/", bot.url))
        .arg(&png)
        .env("CHROMIUM", &chrome)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(bytes.len() > 20_000, "a real page, {} bytes", bytes.len());
    std::fs::remove_file(&png).unwrap();

    bot.signal("INT");
    let (code, _, stderr) = bot.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{stderr}");
}
