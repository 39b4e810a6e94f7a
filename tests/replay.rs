//! Replay through the real binary: it reproduces the paper session it recorded, and the same
//! input gives the same report byte for byte.

mod common;

use common::bin;

fn json_of(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

fn replay(input: &std::path::Path, extra: &[&str]) -> std::process::Output {
    bin()
        .args(["replay", "--json", "--config"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/config/wildbot.toml"))
        .arg("--input")
        .arg(input)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn a_replay_reproduces_the_paper_session_it_recorded() {
    let rec = std::env::temp_dir().join(format!("wildbot-replay-{}.jsonl", std::process::id()));
    let live = json_of(
        &bin()
            .args([
                "demo",
                "--paper",
                "--duration",
                "12",
                "--json",
                "--log-level",
                "warn",
            ])
            .args(["--set", "dashboard_bind=", "--record"])
            .arg(&rec)
            .output()
            .unwrap(),
    );
    assert!(live["orders_placed"].as_u64().unwrap() > 0, "{live}");
    // The paper session used the cross model (run and demo's default): replay it with that.
    let same = ["--set", "fill_model=cross"];
    let r = json_of(&replay(&rec, &same));
    assert_eq!(r["fill_model"], "cross");
    assert_eq!(r["frames"], live["frames"]);
    assert_eq!(r["ticks"], live["ticks"], "timer ticks replayed too");
    assert_eq!(r["quotes"], live["orders_placed"]);
    assert_eq!(r["cancels"], live["orders_cancelled"]);
    assert_eq!(r["fills"], live["fills"]);
    let close = |a: &serde_json::Value, b: f64| (a.as_f64().unwrap() - b).abs() < 1e-9;
    assert!(
        close(&r["fees"], live["fees_paid"].as_f64().unwrap()),
        "{r} {live}"
    );
    assert!(close(
        &r["realized_pnl"],
        live["realized_pnl"].as_f64().unwrap()
    ));
    assert!(close(
        &r["final_pnl"],
        live["equity"].as_f64().unwrap() - 10_000.0
    ));
    // Byte-identical on a second run.
    let again = replay(&rec, &same);
    assert_eq!(again.stdout, replay(&rec, &same).stdout);
    // A change of settings changes the outcome, through the same code.
    let wider = json_of(&replay(&rec, &["--set", "min_volatility_bps=9999"]));
    assert_eq!(
        wider["quotes"], 0,
        "the volatility gate holds every entry back"
    );
    std::fs::remove_file(&rec).unwrap();
}

#[test]
fn raw_kraken_lines_replay_deterministically_with_timer_ticks() {
    let raw = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/pykrakensdk_book_v2.jsonl"
    ));
    let a = replay(
        raw,
        &["--set", "price_precision=1", "--set", "qty_precision=8"],
    );
    let r = json_of(&a);
    assert!(r["book_messages"].as_u64().unwrap() > 500, "{r}");
    assert_eq!(r["checksum_mismatches"], 0);
    // Frames 1 ms apart, a timer tick every 100 ms of file time.
    assert!(r["ticks"].as_u64().unwrap() > r["frames"].as_u64().unwrap());
    let b = replay(
        raw,
        &["--set", "price_precision=1", "--set", "qty_precision=8"],
    );
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn the_queue_model_fills_later_than_the_cross_model() {
    let sample = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/sim-btcusd-seed7-60s.jsonl"
    ));
    // Quotes at the touch, so they join visible queues (far quotes have nobody ahead).
    let near = [
        "--set",
        "entry_offset_bps=0",
        "--set",
        "maker_fee_bps=0",
        "--set",
        "profit_bps=0",
        "--set",
        "exit_offset_bps=0.1",
        "--set",
        "min_volatility_bps=0",
    ];
    let run = |model: &str| {
        let mut args = near.to_vec();
        args.extend(["--set", model]);
        json_of(&replay(sample, &args))
    };
    let cross = run("fill_model=cross");
    let queue = run("fill_model=queue");
    assert_eq!(cross["fill_model"], "cross");
    assert_eq!(queue["fill_model"], "queue");
    let first = |r: &serde_json::Value| r["first_fill_s"].as_f64().unwrap();
    assert!(first(&queue) > first(&cross), "{queue} {cross}");
    // Never more fills (both are also bounded by the rate counter's room for requotes).
    assert!(queue["fills"].as_u64().unwrap() <= cross["fills"].as_u64().unwrap());
    // Replay's default is the queue model.
    assert_eq!(json_of(&replay(sample, &near))["fill_model"], "queue");
}

#[test]
fn a_two_by_two_sweep_prints_four_rows_best_first() {
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/sim-btcusd-seed7-60s.jsonl"
    );
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/config/wildbot.toml");
    let run = |csv: bool| {
        let mut c = bin();
        c.args(["sweep", "--config", cfg, "--input", sample])
            .args([
                "--grid",
                "entry_offset_bps=5,20",
                "--grid",
                "exit_offset_bps=0.1,36",
            ])
            .args(["--set", "maker_fee_bps=0", "--set", "profit_bps=0"])
            .args(["--set", "min_volatility_bps=0"]);
        if csv {
            c.arg("--csv");
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let table = run(false);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "a header and 4 rows:\n{table}");
    assert!(lines[0].contains("entry_offset_bps") && lines[0].contains("final_pnl"));
    let csv = run(true);
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 4);
    let pnl: Vec<f64> = rows.iter().map(|r| r[2].parse().unwrap()).collect();
    assert!(
        pnl.windows(2).all(|w| w[0] >= w[1]),
        "sorted by final PnL: {csv}"
    );
    let mut combos: Vec<(&str, &str)> = rows.iter().map(|r| (r[0], r[1])).collect();
    combos.sort_unstable();
    assert_eq!(
        combos,
        [("20", "0.1"), ("20", "36"), ("5", "0.1"), ("5", "36")]
    );
    // An impossible value is refused before anything runs, naming the key.
    let bad = bin()
        .args(["sweep", "--config", cfg, "--input", sample])
        .args(["--grid", "book_depth=10,11"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("book_depth"));
}

#[test]
fn order_and_feed_latency_delay_the_first_fill() {
    let sample = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/sim-btcusd-seed7-60s.jsonl"
    ));
    let first = |extra: &[&str]| {
        let mut args = vec!["--set", "fill_model=cross", "--set", "min_volatility_bps=0"];
        args.extend(extra);
        json_of(&replay(sample, &args))["first_fill_s"]
            .as_f64()
            .unwrap()
    };
    let none = first(&[]);
    let order = first(&["--set", "order_latency_ms=300"]);
    let both = first(&[
        "--set",
        "order_latency_ms=300",
        "--set",
        "feed_latency_ms=700",
    ]);
    assert!(none < order && order <= both, "{none} {order} {both}");
}

#[test]
fn a_sweep_sharded_across_machines_merges_to_the_one_machine_result() {
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/sim-btcusd-seed7-60s.jsonl"
    );
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/config/wildbot.toml");
    let sweep = |extra: &[&str]| {
        let out = bin()
            .args(["sweep", "--config", cfg, "--input", sample, "--csv"])
            .args(["--grid", "entry_offset_bps=5,10,20"])
            .args(["--grid", "exit_offset_bps=0.1,36"])
            .args(["--set", "maker_fee_bps=0", "--set", "profit_bps=0"])
            .args(["--set", "min_volatility_bps=0", "--jobs", "2"])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let whole = sweep(&[]);
    assert_eq!(whole.lines().count(), 7);
    let dir = std::env::temp_dir().join(format!("wildbot-shards-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for n in [2usize, 4] {
        let mut files = Vec::new();
        let mut rows = 0;
        for i in 1..=n {
            let part = sweep(&["--shard", &format!("{i}/{n}")]);
            rows += part.lines().count() - 1;
            let f = dir.join(format!("shard-{i}-of-{n}.csv"));
            std::fs::write(&f, part).unwrap();
            files.push(f);
        }
        assert_eq!(rows, 6, "{n} shards cover the grid once");
        let merged = bin()
            .arg("sweep-merge")
            .args(&files)
            .arg("--csv")
            .output()
            .unwrap();
        assert!(merged.status.success());
        assert_eq!(
            String::from_utf8(merged.stdout).unwrap(),
            whole,
            "{n} shards merged = one machine"
        );
    }
    // The table form, and a shard that is not a slice.
    let table = bin()
        .arg("sweep-merge")
        .arg(dir.join("shard-1-of-2.csv"))
        .arg(dir.join("shard-2-of-2.csv"))
        .output()
        .unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(
        text.lines()
            .next()
            .unwrap()
            .trim_start()
            .starts_with("entry_offset_bps")
    );
    assert_eq!(text.lines().count(), 7);
    let bad = bin()
        .args(["sweep", "--config", cfg, "--input", sample])
        .args(["--grid", "entry_offset_bps=5,10", "--shard", "3/2"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--shard 3/2"));
    let not_csv = bin().arg("sweep-merge").arg(sample).output().unwrap();
    assert_eq!(not_csv.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&not_csv.stderr).contains("not a sweep CSV"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_replay_can_draw_order_latency_from_a_live_sessions_measured_intent_to_ack() {
    let sample = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/sim-btcusd-seed7-60s.jsonl"
    ));
    // A live summary's last line, as `wildbot run --json` prints it (the fields used).
    let summary = std::env::temp_dir().join(format!("wildbot-summary-{}.json", std::process::id()));
    std::fs::write(
        &summary,
        "orders 12 ...\n{\"intent_to_ack\":{\"count\":40,\"p50_ns\":150000000,\"p90_ns\":300000000,\
         \"p99_ns\":900000000,\"p999_ns\":1500000000,\"max_ns\":2000000000}}\n",
    )
    .unwrap();
    let from = format!("order_latency_from={}", summary.display());
    let relaxed = ["--set", "fill_model=cross", "--set", "min_volatility_bps=0"];
    let base = json_of(&replay(sample, &relaxed));
    let args = [&relaxed[..], &["--set", &from]].concat();
    let a = replay(sample, &args);
    let b = replay(sample, &args);
    assert_eq!(a.stdout, b.stdout, "seeded draws: the same report twice");
    let slow = json_of(&a);
    let (none, drawn) = (
        base["first_fill_s"].as_f64().unwrap(),
        slow["first_fill_s"].as_f64().unwrap(),
    );
    assert!(
        none < drawn,
        "orders reach the venue 150 ms to 2 s late: the first fill comes later ({none} < {drawn})"
    );
    // A file without samples is refused, naming the key.
    std::fs::write(&summary, "{\"intent_to_ack\":{\"count\":0}}\n").unwrap();
    let bad = replay(sample, &["--set", &from]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("order_latency_from") && err.contains("no samples"),
        "{err}"
    );
    std::fs::remove_file(&summary).unwrap();
}

const TARDIS_BOOK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/tardis/kraken_incremental_book_L2_2026-07-01_XBT-USD.csv.gz"
);
const TARDIS_TRADES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/tardis/kraken_trades_2026-07-01_XBT-USD.csv.gz"
);
/// Settings that trade on the sample's calm synthetic market.
const NEAR: [&str; 12] = [
    "--set",
    "min_volatility_bps=0",
    "--set",
    "entry_offset_bps=0.5",
    "--set",
    "exit_offset_bps=1",
    "--set",
    "profit_bps=0",
    "--set",
    "maker_fee_bps=0",
    "--set",
    "skew_factor=0",
];

fn gunzip(path: &str) -> String {
    use std::io::Read as _;
    let mut s = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut s)
        .unwrap();
    s
}

fn tardis(
    book: &std::path::Path,
    trades: Option<&std::path::Path>,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec!["--format", "tardis"];
    args.extend(extra);
    let mut c = bin();
    c.args(["replay", "--json", "--config"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/config/wildbot.toml"))
        .arg("--input")
        .arg(book)
        .args(&args);
    if let Some(t) = trades {
        c.arg("--trades").arg(t);
    }
    c.output().unwrap()
}

#[test]
fn a_tardis_day_replays_from_gz_or_plain_alike_and_says_it_was_not_checksum_verified() {
    let (book, trades) = (
        std::path::Path::new(TARDIS_BOOK),
        std::path::Path::new(TARDIS_TRADES),
    );
    let a = tardis(book, Some(trades), &NEAR);
    let b = tardis(book, Some(trades), &NEAR);
    assert_eq!(a.stdout, b.stdout, "deterministic");
    let r = json_of(&a);
    assert_eq!(r["checksum_verified"], false);
    assert_eq!(r["checksums_ok"], 0);
    assert!(r["fills"].as_u64().unwrap() > 0, "{r}");
    assert!(r["book_messages"].as_u64().unwrap() > 1000);
    let t = &r["tardis"];
    assert_eq!(
        t["before_snapshot"], 3,
        "rows before the first snapshot are skipped"
    );
    assert_eq!(t["malformed"], 3);
    let errors: Vec<&str> = t["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        errors[0].ends_with(".csv.gz:401: expected 8 columns"),
        "{errors:?}"
    );
    assert!(errors[1].ends_with(":901: timestamp is not an integer"));
    assert!(errors[2].ends_with(":1501: side is neither bid nor ask"));
    assert!(t["trade_rows"].as_u64().unwrap() > 900);

    // The same day, uncompressed and under the symbol's newer name: the same replay.
    let dir = std::env::temp_dir().join(format!("wildbot-tardis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plain = dir.join("book.csv");
    std::fs::write(&plain, gunzip(TARDIS_BOOK).replace("XBT/USD", "BTC/USD")).unwrap();
    let plain_trades = dir.join("trades.csv");
    std::fs::write(&plain_trades, gunzip(TARDIS_TRADES)).unwrap();
    let p = json_of(&tardis(&plain, Some(&plain_trades), &NEAR));
    for k in [
        "fills",
        "final_pnl",
        "book_messages",
        "quotes",
        "round_trips",
    ] {
        assert_eq!(p[k], r[k], "{k}");
    }
    // Without trades: the book alone (its frames, none of the trades').
    let bare = json_of(&tardis(book, None, &NEAR));
    assert_eq!(bare["tardis"]["trade_rows"], 0);
    assert_eq!(bare["book_messages"], r["book_messages"]);
    assert_eq!(
        bare["frames"].as_u64().unwrap() + t["trade_rows"].as_u64().unwrap(),
        r["frames"].as_u64().unwrap(),
        "one trade frame per trade row"
    );
    // The table says it too.
    let text = bin()
        .args(["replay", "--format", "tardis", "--input", TARDIS_BOOK])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("not checksum-verified"), "{text}");
    assert!(text.contains("M Tardis rows/s"), "{text}");

    // What is not Tardis data is refused, named; --trades belongs to Tardis input.
    let wrong = tardis(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")),
        None,
        &[],
    );
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("not a Tardis incremental_book_L2 CSV")
    );
    let mixed = replay(
        std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/sim-btcusd-seed7-60s.jsonl"
        )),
        &["--trades", TARDIS_TRADES],
    );
    assert_eq!(mixed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&mixed.stderr).contains("--format tardis"));

    // A sweep over the same day.
    let sweep = bin()
        .args([
            "sweep",
            "--format",
            "tardis",
            "--input",
            TARDIS_BOOK,
            "--trades",
            TARDIS_TRADES,
            "--csv",
        ])
        .args(["--grid", "entry_offset_bps=0.5,1"])
        .args(&NEAR[..2])
        .args(&NEAR[6..])
        .output()
        .unwrap();
    assert!(
        sweep.status.success(),
        "{}",
        String::from_utf8_lossy(&sweep.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&sweep.stdout).lines().count(), 3);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The JSON the report page embeds (its `<script id="data">`).
fn page_data(html: &str) -> serde_json::Value {
    let open = r#"<script id="data" type="application/json">"#;
    let start = html.find(open).expect("the data script") + open.len();
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).unwrap()
}

#[test]
fn replay_html_is_one_offline_file_byte_identical_for_the_same_input_and_true_to_the_report() {
    let sample = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/sim-btcusd-seed7-60s.jsonl"
    ));
    let dir = std::env::temp_dir().join(format!("wildbot-html-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("a.html"), dir.join("b.html"));
    let ra = json_of(&replay(sample, &["--html", a.to_str().unwrap()]));
    let rb = json_of(&replay(sample, &["--html", b.to_str().unwrap()]));
    assert_eq!(ra, rb);
    let (ha, hb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(ha, hb, "the same input gives the same bytes");
    let html = String::from_utf8(ha).unwrap();
    // Self-contained: no script, style or image fetched from anywhere.
    for external in ["src=\"http", "href=\"http", "src=\"//", "<link "] {
        assert!(!html.contains(external), "{external} in the page");
    }
    assert!(html.contains("uPlot"), "the charting library is inlined");

    let d = page_data(&html);
    assert_eq!(
        d["report"], ra,
        "the page carries the report it was written with"
    );
    let t = d["points"]["t"].as_array().unwrap();
    assert!(t.len() >= 200, "a point every 250 ms of 60 s: {}", t.len());
    for col in [
        "bid",
        "ask",
        "microprice",
        "our_bid",
        "our_ask",
        "equity",
        "drawdown_pct",
        "position",
    ] {
        assert_eq!(d["points"][col].as_array().unwrap().len(), t.len(), "{col}");
    }
    // The last point is the end of the replay: its equity is the report's final PnL on top of
    // the starting capital, its position the final position.
    let last = t.len() - 1;
    let start = d["points"]["equity"][0].as_f64().unwrap();
    let end = d["points"]["equity"][last].as_f64().unwrap();
    assert!(
        (end - start - ra["final_pnl"].as_f64().unwrap()).abs() < 0.01,
        "{start} {end} {ra}"
    );
    assert_eq!(
        d["points"]["position"][last].as_f64(),
        ra["final_position"].as_f64()
    );
    // Every fill and round trip is listed, and the trips' net adds up to realised minus their fees.
    assert_eq!(
        d["fills"].as_array().unwrap().len() as u64,
        ra["fills"].as_u64().unwrap()
    );
    let trips = d["trips"].as_array().unwrap();
    assert_eq!(trips.len() as u64, ra["round_trips"].as_u64().unwrap());
    let gross: f64 = trips.iter().map(|t| t["gross"].as_f64().unwrap()).sum();
    assert!((gross - ra["realized_pnl"].as_f64().unwrap()).abs() < 0.01);
    // Pauses over time: exactly the rules the report counts, each share between 0 and 1.
    let held = d["held"].as_object().unwrap();
    for (rule, n) in ra["paused_by"].as_object().unwrap() {
        assert_eq!(held.contains_key(rule), n.as_u64() > Some(0), "{rule}");
    }
    assert!(held.values().flat_map(|v| v.as_array().unwrap()).all(|s| {
        let s = s.as_f64().unwrap();
        (0.0..=1.0).contains(&s)
    }));
    // A file that cannot be written is an error, after the replay, not a silent success.
    let bad = replay(sample, &["--html", "/nonexistent-dir/r.html"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/nonexistent-dir/r.html"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_tardis_replay_writes_its_report_too_saying_the_book_was_not_checksum_verified() {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tardis");
    let html = std::env::temp_dir().join(format!("wildbot-tardis-{}.html", std::process::id()));
    let out = tardis(
        std::path::Path::new(&format!(
            "{data}/kraken_incremental_book_L2_2026-07-01_XBT-USD.csv.gz"
        )),
        Some(std::path::Path::new(&format!(
            "{data}/kraken_trades_2026-07-01_XBT-USD.csv.gz"
        ))),
        &["--html", html.to_str().unwrap()],
    );
    let r = json_of(&out);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("not checksum-verified"));
    assert!(
        page.contains("Tardis rows"),
        "the reader's counts are in the table"
    );
    assert!(
        page.contains(":901: timestamp is not an integer"),
        "malformed rows named by line"
    );
    assert_eq!(page_data(&page)["report"], r);
    let _ = std::fs::remove_file(&html);
}

#[test]
fn sweep_html_ranks_the_grid_best_first_with_a_heatmap_of_the_two_axes() {
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/sim-btcusd-seed7-60s.jsonl"
    );
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/config/wildbot.toml");
    let html = std::env::temp_dir().join(format!("wildbot-sweep-{}.html", std::process::id()));
    let out = bin()
        .args(["sweep", "--csv", "--config", cfg, "--input", sample])
        .args([
            "--grid",
            "entry_offset_bps=5,20",
            "--grid",
            "exit_offset_bps=0.1,36",
        ])
        .args([
            "--set",
            "maker_fee_bps=0",
            "--set",
            "profit_bps=0",
            "--set",
            "min_volatility_bps=0",
        ])
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    let page = std::fs::read_to_string(&html).unwrap();
    // The ranked table: the CSV's rows in the CSV's order, every figure.
    let runs = &page[page.find("id=\"runs\"").unwrap()..];
    let rows: Vec<&str> = runs.split("<tr>").skip(2).collect();
    assert_eq!(rows.len(), 4);
    for (row, line) in rows.iter().zip(csv.lines().skip(1)) {
        let cells: Vec<&str> = row
            .split("<td")
            .skip(2)
            .map(|c| &c[c.find('>').unwrap() + 1..c.find("</td>").unwrap()])
            .collect();
        assert_eq!(cells.join(","), line);
    }
    // The heatmap: 2 x 2 cells, each the final PnL of that pair.
    let heat = &page[page.find("id=\"heatmap\"").unwrap()..page.find("id=\"runs\"").unwrap()];
    assert_eq!(heat.matches("class=\"cell\"").count(), 4);
    let best = csv.lines().nth(1).unwrap().split(',').nth(2).unwrap();
    assert!(heat.contains(&format!(">{best}</td>")), "{best} in {heat}");

    // sweep-merge writes the same page for the shards of the same grid.
    let csv_file = html.with_extension("csv");
    std::fs::write(&csv_file, &csv).unwrap();
    let merged = html.with_extension("merged.html");
    let m = bin()
        .arg("sweep-merge")
        .arg(&csv_file)
        .arg("--html")
        .arg(&merged)
        .output()
        .unwrap();
    assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    let merged_page = std::fs::read_to_string(&merged).unwrap();
    assert!(
        merged_page.contains(heat),
        "the same heatmap from the merged CSV"
    );
    for f in [&html, &csv_file, &merged] {
        let _ = std::fs::remove_file(f);
    }
}
