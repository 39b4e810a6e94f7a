//! The command line behaves as a careful user expects: output into a closed pipe ends quietly,
//! config paths resolve from anywhere and errors blame what was actually wrong, input that is
//! not a feed is refused, bench stays small and says how far it is, and logs are plain text.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wildbot"))
}

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn feed() -> PathBuf {
    repo("tests/data/depthcharge_kraken_btcusd_d10_20260816.head.ndjson")
}

/// Exit code, stdout, stderr.
fn run(cmd: &mut Command) -> (i32, String, String) {
    let o = cmd.output().expect("runs");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn scratch(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wildbot-hygiene-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let feed = feed();
    let cases: [&[&str]; 3] = [
        &["check-config", "config/wildbot.toml"],
        &["bench", "--ticks", "3000"],
        &["verify-feed", feed.to_str().unwrap()],
    ];
    for args in cases {
        let mut child = bin()
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before a byte is written, as `| head -0` does.
        drop(child.stdout.take());
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn the_default_config_is_found_from_another_directory() {
    // An install as the README's service section lays it out: the binary in bin/, the config
    // in config/ beside it; the user runs it from somewhere else.
    let root = std::env::temp_dir().join(format!("wildbot-install-{}", std::process::id()));
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("config")).unwrap();
    std::fs::create_dir_all(root.join("elsewhere")).unwrap();
    let exe = root.join("bin/wildbot");
    if std::fs::hard_link(env!("CARGO_BIN_EXE_wildbot"), &exe).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_wildbot"), &exe).unwrap();
    }
    std::fs::copy(
        repo("config/wildbot.toml"),
        root.join("config/wildbot.toml"),
    )
    .unwrap();
    let elsewhere = root.join("elsewhere");
    let (code, out, err) = run(Command::new(&exe)
        .current_dir(&elsewhere)
        .args(["replay", "--json", "--input"])
        .arg(feed()));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"book_messages\""), "{out}");

    // With no config anywhere, the error names every place it looked.
    std::fs::remove_file(root.join("config/wildbot.toml")).unwrap();
    let (code, _, err) = run(Command::new(&exe)
        .current_dir(&elsewhere)
        .args(["replay", "--input"])
        .arg(feed()));
    assert_eq!(code, 2);
    for tried in [
        elsewhere.join("config/wildbot.toml"),
        root.join("config/wildbot.toml"),
    ] {
        assert!(err.contains(&tried.display().to_string()), "{err}");
    }
    assert!(
        err.contains("/etc/wildbot/wildbot.toml") && err.contains("--config"),
        "{err}"
    );

    let (code, _, err) = run(Command::new(&exe)
        .current_dir(&elsewhere)
        .args(["replay", "--config", "no-such.toml", "--input"])
        .arg(feed()));
    assert_eq!(code, 2);
    let tried = elsewhere.join("no-such.toml");
    assert!(err.contains(&tried.display().to_string()), "{err}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_bad_override_is_blamed_on_its_flag_not_the_file() {
    let (code, _, err) = run(bin()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["replay", "--set", "book_depth=ten", "--input"])
        .arg(feed()));
    assert_eq!(code, 2);
    assert!(err.starts_with("error: --set book_depth=ten:"), "{err}");
    assert!(!err.contains("wildbot.toml"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    let (code, _, err) = run(bin()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["sweep", "--grid", "order_qtty=0.001,0.002", "--input"])
        .arg(feed()));
    assert_eq!(code, 2);
    assert!(
        err.contains("--grid order_qtty") && err.contains("did you mean `order_qty`?"),
        "{err}"
    );
    assert!(!err.contains("wildbot.toml"), "{err}");

    let (code, _, err) = run(bin()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["replay", "--set", "order_qty=0", "--input"])
        .arg(feed()));
    assert_eq!(code, 2);
    assert!(
        err.contains("--set order_qty=0") && err.contains("greater than zero"),
        "{err}"
    );
}

#[test]
fn a_typo_in_the_file_gets_a_short_did_you_mean() {
    let f = scratch("typo.toml", b"max_postion = 1\n");
    let (code, _, err) = run(bin().arg("check-config").arg(&f));
    assert_eq!(code, 2);
    assert!(err.contains("did you mean `max_position`?"), "{err}");
    assert!(err.contains(&f.display().to_string()), "{err}");
    assert!(err.len() < 200, "{} characters: {err}", err.len());
    let f = scratch("nothing-like.toml", b"zzzz = 1\n");
    let (_, _, err) = run(bin().arg("check-config").arg(&f));
    assert!(!err.contains("did you mean"), "{err}");
    assert!(err.contains("`zzzz`") && err.len() < 200, "{err}");
}

#[test]
fn input_that_is_not_a_feed_is_refused_with_exit_2() {
    let empty = scratch("empty.jsonl", b"");
    let binary = scratch(
        "binary.jsonl",
        &[0x7f, b'E', b'L', b'F', 0, 0, 0xff, 0xfe, 1, 2],
    );
    let readme = repo("README.md");
    for (file, why) in [
        (&empty, "empty"),
        (&binary, "binary"),
        (&readme, "no Kraken WS v2 message"),
    ] {
        for sub in ["replay", "verify-feed"] {
            let mut c = bin();
            c.current_dir(env!("CARGO_MANIFEST_DIR")).arg(sub);
            if sub == "replay" {
                c.arg("--input");
            }
            let (code, out, err) = run(c.arg(file));
            let text = out + &err;
            assert_eq!(code, 2, "{sub} {}: {text}", file.display());
            assert!(
                text.contains("not a Kraken feed") && text.contains(why),
                "{sub} {}: {text}",
                file.display()
            );
            assert!(text.contains("expected one Kraken WS v2 JSON message per line"));
        }
    }
}

#[test]
fn bench_memory_stays_bounded_and_long_runs_show_progress() {
    let peak = |ticks: &str| {
        let (code, out, err) = run(bin().args(["bench", "--json", "--ticks", ticks]));
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        (v["peak_rss_bytes"].as_u64().unwrap(), err)
    };
    let (small, _) = peak("20000");
    let (large, progress) = peak("600000");
    // Generated all at once, 600 000 frames were ~200 MB of text; in batches they are ~20 MB.
    assert!(small > 0, "peak RSS is reported");
    assert!(large < 120 << 20, "{} MiB", large >> 20);
    assert!(
        large < small + (60 << 20),
        "{} MiB vs {} MiB",
        large >> 20,
        small >> 20
    );
    let lines = progress
        .lines()
        .filter(|l| l.starts_with("bench: "))
        .count();
    assert!(
        lines >= 5 && progress.contains("bench: 100 % (600000 of 600000 ticks)"),
        "{progress}"
    );
}

#[test]
fn logs_into_a_file_are_plain_words() {
    let (code, _, err) = run(bin()
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .args([
            "demo",
            "--paper",
            "--duration",
            "3",
            "--set",
            "dashboard_bind=127.0.0.1:0",
        ]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("[INFO]"), "{err}");
    assert!(!err.contains('\u{1b}'), "no ANSI codes: {err:?}");
    for debug in ["Some(", " { ", "::", "ForceExit"] {
        assert!(!err.contains(debug), "Debug text `{debug}` in: {err}");
    }
}

#[test]
fn a_short_dashboard_token_is_refused_and_never_echoed() {
    let f = scratch("token.toml", b"dashboard_token = \"abc123\"\n");
    let (code, _, err) = run(bin().arg("check-config").arg(&f));
    assert_eq!(code, 2);
    assert!(
        err.contains("`dashboard_token`") && err.contains("16 characters"),
        "{err}"
    );
    assert!(!err.contains("abc123"), "{err}");
    let (code, _, err) = run(bin()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["replay", "--set", "dashboard_token=abc123", "--input"])
        .arg(feed()));
    assert_eq!(code, 2);
    assert!(err.contains("--set dashboard_token:"), "{err}");
    assert!(!err.contains("abc123"), "{err}");
    let f = scratch("token-ok.toml", b"dashboard_token = \"0123456789abcdef\"\n");
    assert_eq!(run(bin().arg("check-config").arg(&f)).0, 0);
}

#[test]
fn the_readme_quick_start_builds_both_binaries() {
    // `cargo run --release` builds only `wildbot`; the README later runs
    // `target/release/kraken-sim`, so its first command must build every binary.
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let first = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap();
    assert!(
        first.lines().next() == Some("cargo build --release && target/release/wildbot"),
        "{first}"
    );
    let manifest = std::fs::read_to_string(repo("Cargo.toml")).unwrap();
    assert!(manifest.contains("name = \"kraken-sim\""));
    assert!(
        !manifest.contains("required-features"),
        "every binary builds by default"
    );
}
