//! Secrets never leave the process: not in a log line, an error, the summary, the dashboard,
//! `/api/status` or `/metrics`; and a config file holding one is refused.

mod common;

use std::time::Duration;

use common::{Bot, bin, get};
use wildbot::sim::rest::RestSim;
use wildbot::sim::{SimConfig, Simulator};

const KEY: &str = "SENTINELKEYq7Zp2";
// Valid base64 (Kraken secrets are), decoding to "SENTINEL-SECRET-value-42".
const SECRET: &str = "U0VOVElORUwtU0VDUkVULXZhbHVlLTQy";
const TOKEN: &str = "987654:SENTINEL-tg-Xv3";

fn leaks(text: &str) -> Vec<&'static str> {
    [KEY, SECRET, TOKEN, "SENTINEL"]
        .into_iter()
        .filter(|s| text.contains(s))
        .collect()
}

fn write_config(path: &std::path::Path, ws: &str, rest: &str, auth: &str) {
    std::fs::write(
        path,
        format!(
            "live_mode = true\nws_url = \"{ws}\"\nrest_url = \"{rest}\"\nws_auth_url = \"{auth}\"\nlog_level = \"debug\"\n\
             dashboard_bind = \"127.0.0.1:0\"\ntelegram_api_url = \"http://127.0.0.1:9\"\n\
             rest_timeout_ms = 500\n"
        ),
    )
    .unwrap();
}

fn with_secrets(c: &mut std::process::Command) -> &mut std::process::Command {
    c.env("KRAKEN_API_KEY", KEY)
        .env("KRAKEN_API_SECRET", SECRET)
        .env("TELEGRAM_BOT_TOKEN", TOKEN)
        .env("TELEGRAM_CHAT_ID", "42")
}

fn assert_no_leaks(stdout: &str, stderr: &str) {
    assert!(leaks(stdout).is_empty(), "stdout leaks {:?}", leaks(stdout));
    assert!(leaks(stderr).is_empty(), "stderr leaks {:?}", leaks(stderr));
}

#[test]
fn sentinel_secrets_appear_in_no_output() {
    let ws = Simulator::start(SimConfig::default()).unwrap();
    let cfg = std::env::temp_dir().join(format!("wildbot-secrets-{}.toml", std::process::id()));
    // The exchange refuses the sentinel key: a fatal configuration error (exit 2) whose
    // message quotes Kraken, never the key.
    let rest = RestSim::start("10000", "0", ws.market()).unwrap();
    write_config(&cfg, &ws.url(), &rest.url(), &rest.private().url());
    let out = with_secrets(bin().args(["run", "--json", "--duration", "5", "--config"]))
        .arg(&cfg)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("EAPI:Invalid key"), "{stderr}");
    assert_no_leaks(&stdout, &stderr);
    // An unreachable API: the session runs on paper with every secret in its environment.
    let url = common::unreachable_url();
    write_config(&cfg, &ws.url(), &url, "");
    let mut c = bin();
    with_secrets(c.args(["run", "--json", "--config"]).arg(&cfg));
    let bot = Bot::spawn(c);
    std::fs::remove_file(&cfg).unwrap();
    let s = common::status_until(&bot.url, Duration::from_secs(20), |s| {
        s["counters"]["ticks"].as_u64().unwrap_or(0) > 0
    });
    assert_eq!(s["live_fallback"], true, "the API was unreachable: {s}");
    for path in ["/", "/api/status", "/metrics", "/health"] {
        let body = get(&format!("{}{path}", bot.url), None).body;
        assert!(leaks(&body).is_empty(), "{path} leaks {:?}", leaks(&body));
    }
    // Let the Telegram thread fail against the closed port at least once.
    std::thread::sleep(Duration::from_millis(1500));
    bot.signal("INT");
    let (code, stdout, stderr) = bot.wait(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("falling back to PAPER"), "{stderr}");
    assert!(
        stderr.contains("telegram"),
        "the Telegram failure is logged: {stderr}"
    );
    assert_no_leaks(&stdout, &stderr);
}

#[test]
fn a_config_file_with_a_secret_is_refused_without_echoing_it() {
    for (key, line) in [
        (
            "kraken_api_secret",
            format!("kraken_api_secret = \"{SECRET}\""),
        ),
        ("api_key", format!("api_key = \"{KEY}\"")),
        (
            "telegram_bot_token",
            format!("telegram_bot_token = \"{TOKEN}\""),
        ),
    ] {
        let path =
            std::env::temp_dir().join(format!("wildbot-sec-{key}-{}.toml", std::process::id()));
        std::fs::write(&path, format!("{line}\n")).unwrap();
        for args in [
            vec!["check-config"],
            vec!["run", "--duration", "1", "--config"],
        ] {
            let out = bin().args(&args).arg(&path).output().unwrap();
            assert_eq!(out.status.code(), Some(2), "{args:?} {key}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(key) && err.contains("environment"), "{err}");
            assert!(leaks(&err).is_empty(), "{err}");
        }
        std::fs::remove_file(&path).unwrap();
    }
    // The same through --set.
    let out = bin()
        .args(["demo", "--paper", "--duration", "1", "--set"])
        .arg(format!("kraken_api_key={KEY}"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(leaks(&String::from_utf8_lossy(&out.stderr)).is_empty());
}
