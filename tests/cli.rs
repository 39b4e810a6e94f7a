//! The `wildbot` binary as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wildbot"))
}

/// `verify-feed` with BTC/USD's precisions (for files that lost their trailing zeros).
fn verify_btc_precision() -> Command {
    let mut c = bin();
    c.args([
        "verify-feed",
        "--price-precision",
        "1",
        "--qty-precision",
        "8",
    ]);
    c
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn run(cmd: &mut Command) -> (i32, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("runs");
    let text = String::from_utf8_lossy(&stdout).into_owned() + &String::from_utf8_lossy(&stderr);
    (status.code().unwrap_or(-1), text)
}

fn tmp(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wildbot-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

#[test]
fn verify_feed_passes_every_v2_vector() {
    let files = [
        (
            "depthcharge_kraken_btcusd_d10_20260816.head.frames.jsonl",
            54,
            10,
        ),
        ("depthcharge_kraken_btcusd_d10_20260816.head.ndjson", 54, 10),
        (
            "depthcharge_kraken_minagbp_d25_20260816.frames.jsonl",
            30,
            25,
        ),
        ("depthcharge_kraken_minagbp_d25_20260816.ndjson", 30, 25),
        (
            "depthcharge_kraken_minagbp_d25_resync_20260818.frames.jsonl",
            19,
            25,
        ),
        (
            "depthcharge_kraken_minagbp_d25_resync_20260818.ndjson",
            19,
            25,
        ),
        ("kraken_docs_v2_checksum_example.jsonl", 1, 10),
    ];
    for (f, matched, depth) in files {
        let (code, out) = run(bin().arg("verify-feed").arg(data(f)));
        assert_eq!(code, 0, "{f}: {out}");
        assert!(
            out.contains(&format!("checksums matched {matched}, mismatched 0")),
            "{f}: {out}"
        );
        assert!(out.contains(&format!("depth {depth}")), "{f}: {out}");
    }
}

#[test]
fn verify_feed_python_sdk_fixture_needs_the_precision_flags() {
    for f in ["pykrakensdk_book_v2.jsonl", "pykrakensdk_orderbook-v2.json"] {
        let (code, out) = run(verify_btc_precision().arg(data(f)));
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("checksums matched 510, mismatched 0"), "{out}");
    }
    // Digits as written: Python dropped the trailing zeros, so this must fail.
    let (code, out) = run(bin()
        .arg("verify-feed")
        .arg(data("pykrakensdk_book_v2.jsonl")));
    assert_eq!(code, 1);
    assert!(out.contains("MISMATCH line 1"), "{out}");
}

#[test]
fn verify_feed_rejects_the_negative_vector_with_its_line_number() {
    let mut bytes = std::fs::read(data("pykrakensdk_book_v2.jsonl")).unwrap();
    bytes.extend(std::fs::read(data("pykrakensdk_negative_update.jsonl")).unwrap());
    let p = tmp("negative.jsonl", &bytes);
    let (code, out) = run(verify_btc_precision().arg(&p));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("MISMATCH line 511: exchange checksum 2438868880"),
        "{out}"
    );
}

#[test]
fn verify_feed_rejects_a_copy_with_one_corrupted_checksum() {
    let text = std::fs::read_to_string(data(
        "depthcharge_kraken_btcusd_d10_20260816.head.frames.jsonl",
    ))
    .unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    // Line 20 is a book update; change its checksum to a different valid u32.
    let l = &lines[19];
    let start = l.find("\"checksum\":").unwrap() + 11;
    let end = start + l[start..].find(|c: char| !c.is_ascii_digit()).unwrap();
    let v: u32 = l[start..end].parse().unwrap();
    lines[19] = format!("{}{}{}", &l[..start], v.wrapping_add(1), &l[end..]);
    let p = tmp("corrupt.jsonl", (lines.join("\n") + "\n").as_bytes());
    let (code, out) = run(bin().arg("verify-feed").arg(&p));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("MISMATCH line 20:"), "{out}");
    assert_eq!(
        out.matches("MISMATCH").count(),
        1,
        "later updates wait for a snapshot: {out}"
    );
    // A file with nothing to verify is not a pass either.
    let p = tmp("empty.jsonl", b"{\"channel\":\"heartbeat\"}\n");
    let (code, out) = run(bin().arg("verify-feed").arg(&p));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("NOTHING VERIFIED"), "{out}");
}

#[test]
fn check_config_accepts_the_shipped_file_and_names_bad_keys() {
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/wildbot.toml");
    let (code, out) = run(bin().arg("check-config").arg(&cfg));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("order_qty = \"0.001\"") && out.contains("book_depth = 10"),
        "{out}"
    );
    let bad = tmp("bad.toml", b"order_qty = 0\n");
    let (code, out) = run(bin().arg("check-config").arg(&bad));
    assert_ne!(code, 0);
    assert!(
        out.contains("`order_qty`") && out.contains("greater than zero"),
        "{out}"
    );
    let unknown = tmp("unknown.toml", b"max_postion = 1\n");
    let (code, out) = run(bin().arg("check-config").arg(&unknown));
    assert_ne!(code, 0);
    assert!(out.contains("max_postion"), "{out}");
}

#[test]
fn bench_json_reports_the_contract_fields_and_no_allocations() {
    let (code, out) = run(bin().args(["bench", "--ticks", "20000", "--json"]));
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    for k in [
        "ticks",
        "per_sec",
        "p50_ns",
        "p90_ns",
        "p99_ns",
        "p999_ns",
        "max_ns",
        "allocations",
    ] {
        assert!(v.get(k).is_some(), "missing {k}: {out}");
    }
    assert_eq!(v["ticks"], 20_000);
    assert_eq!(v["allocations"], 0);
    assert!(v["p50_ns"].as_u64().unwrap() <= v["p999_ns"].as_u64().unwrap());
}

#[test]
fn every_subcommand_has_help() {
    for sub in ["check-config", "verify-feed", "bench"] {
        let (code, out) = run(bin().args([sub, "--help"]));
        assert_eq!(code, 0);
        assert!(out.contains("Usage"), "{sub}: {out}");
    }
}
