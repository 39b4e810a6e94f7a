//! Deployment: the systemd unit in deploy/ is valid and runs the real binary's commands, and
//! `wildbot doctor` checks this machine (it runs in CI like every test) without ever printing a
//! secret.

mod common;

use std::path::Path;
use std::process::Command;

fn unit() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/wildbot.service"))
        .unwrap()
}

fn value<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in the unit"))
}

#[test]
fn the_service_unit_restarts_on_failure_pins_reads_secrets_from_a_file_and_logs_to_journald() {
    let u = unit();
    assert_eq!(value(&u, "Restart"), "on-failure");
    assert_eq!(
        value(&u, "RestartPreventExitStatus"),
        "2",
        "a refused key does not loop"
    );
    assert!(value(&u, "EnvironmentFile").starts_with("/etc/wildbot/"));
    assert_eq!(value(&u, "StandardError"), "journal");
    assert!(!value(&u, "CPUAffinity").is_empty());
    assert_eq!(value(&u, "KillSignal"), "SIGTERM", "the clean stop");
    for key in ["KRAKEN_API_SECRET=", "TELEGRAM_BOT_TOKEN="] {
        assert!(
            !u.lines()
                .any(|l| l.starts_with(key) || l.starts_with(&format!("Environment={key}"))),
            "no secret in the unit"
        );
    }
    // The commands it runs exist with those flags.
    let bin = env!("CARGO_BIN_EXE_wildbot");
    for exec in [value(&u, "ExecStartPre"), value(&u, "ExecStart")] {
        let args: Vec<&str> = exec.split_whitespace().skip(1).collect();
        let help = common::bin().arg(args[0]).arg("--help").output().unwrap();
        assert!(help.status.success(), "{exec}");
        let text = String::from_utf8_lossy(&help.stdout);
        for flag in args.iter().filter(|a| a.starts_with("--")) {
            assert!(text.contains(flag), "{exec}: {flag} not in {text}");
        }
    }
    // systemd's own check, where systemd is installed.
    if let Ok(out) = Command::new("systemd-analyze").arg("--version").output()
        && out.status.success()
    {
        let dir = std::env::temp_dir().join(format!("wildbot-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("wildbot.service");
        std::fs::write(&path, u.replace("/usr/local/bin/wildbot", bin)).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr).to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        // systemd names the unit's own problems "FILE:LINE: ..." (a host without a running
        // systemd may add lines about itself, which say nothing of the unit).
        let about_unit: Vec<&str> = said
            .lines()
            .filter(|l| l.contains("wildbot.service"))
            .filter(|l| {
                ["Unknown", "nvalid", "rror", "ignoring", "Missing"]
                    .iter()
                    .any(|b| l.contains(b))
            })
            .collect();
        assert!(about_unit.is_empty(), "systemd-analyze verify: {said}");
    } else {
        eprintln!("systemd-analyze not installed: the unit's syntax was not verified by systemd");
    }
}

#[test]
fn doctor_checks_this_machine_and_never_prints_a_secret() {
    let cfg = std::env::temp_dir().join(format!("wildbot-doctor-{}.toml", std::process::id()));
    let journal = std::env::temp_dir().join(format!("wildbot-doctor-{}.jsonl", std::process::id()));
    std::fs::write(
        &cfg,
        format!(
            "live_mode = true\nws_url = \"ws://127.0.0.1:9/v2\"\nrest_url = \"http://127.0.0.1:9\"\n\
             ws_auth_url = \"ws://localhost:9/v2\"\ncore_id = 0\njournal_path = \"{}\"\n",
            journal.display()
        ),
    )
    .unwrap();
    let secret =
        "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==";
    let run = |json: bool| {
        let mut c = common::bin();
        c.args(["doctor", "--config"]).arg(&cfg);
        if json {
            c.arg("--json");
        }
        c.env("KRAKEN_API_KEY", "doctor-key-value")
            .env("KRAKEN_API_SECRET", secret)
            .env("TELEGRAM_BOT_TOKEN", "777:doctor-bot-token")
            .env("TELEGRAM_CHAT_ID", "42")
            .output()
            .unwrap()
    };
    let out = run(false);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let all = format!("{text}{}", String::from_utf8_lossy(&out.stderr));
    for value in ["doctor-key-value", secret, "777:doctor-bot-token"] {
        assert!(!all.contains(value), "a secret shown:\n{all}");
    }
    for check in [
        "config",
        "core_id",
        "isolation",
        "governor",
        "clocksource",
        "time_sync",
        "nofile",
        "journal",
        "kraken_keys",
        "telegram",
        "endpoints",
    ] {
        assert!(
            text.lines()
                .any(|l| l.get(6..).is_some_and(|r| r.starts_with(check))),
            "no {check} line:\n{text}"
        );
    }
    assert!(text.contains("PASS  config"), "{text}");
    assert!(text.contains("PASS  kraken_keys"), "{text}");
    assert!(text.contains("PASS  journal"), "{text}");
    assert!(text.contains("ws_auth_url: localhost resolves"), "{text}");
    let fails = text.lines().filter(|l| l.starts_with("FAIL")).count();
    assert_eq!(
        out.status.code(),
        Some(if fails > 0 { 1 } else { 0 }),
        "exit 1 exactly when a check fails:\n{text}"
    );
    // --json: the same findings, machine-readable.
    let out = run(true);
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    let list = v.as_array().unwrap();
    assert!(
        list.iter()
            .all(|f| ["pass", "warn", "fail"].contains(&f["level"].as_str().unwrap()))
    );
    assert!(list.iter().any(|f| f["check"] == "time_sync"));
    // A bad config is named, and is a failure.
    std::fs::write(&cfg, "sizee = 1\n").unwrap();
    let out = common::bin()
        .args(["doctor", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("FAIL  config") && text.contains("sizee"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(1));
    std::fs::remove_file(&cfg).unwrap();
    let _ = std::fs::remove_file(&journal);
}
