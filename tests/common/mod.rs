//! Helpers for tests that run the real `wildbot` binary and talk to its dashboard.
#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The binary, with no Telegram token from the environment.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wildbot"));
    c.env_remove("TELEGRAM_BOT_TOKEN");
    c
}

/// `wildbot demo` with the dashboard on a free port, info logging, and `extra` arguments.
pub fn demo(extra: &[&str]) -> Bot {
    demo_with_env(extra, &[])
}

/// [`demo`] with environment variables for the child.
pub fn demo_with_env(extra: &[&str], env: &[(&str, &str)]) -> Bot {
    let mut c = bin();
    c.args([
        "demo",
        "--log-level",
        "info",
        "--set",
        "dashboard_bind=127.0.0.1:0",
    ]);
    c.args(extra);
    c.envs(env.iter().copied());
    Bot::spawn(c)
}

/// A loopback URL nothing listens on (the port was free a moment ago): an unreachable API.
pub fn unreachable_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    format!("http://127.0.0.1:{port}")
}

/// Orders the simulated exchange has open.
pub fn open_orders(rest: &wildbot::sim::rest::RestSim) -> usize {
    rest.exchange()
        .orders
        .values()
        .filter(|o| o.status == "open")
        .count()
}

/// A running bot whose stderr is collected and whose dashboard URL is known.
pub struct Bot {
    pub child: Child,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    stderr: Arc<Mutex<String>>,
    stdout: Option<JoinHandle<String>>,
}

impl Bot {
    /// Spawns `cmd` and waits (up to 20 s) for its "dashboard at http://…" log line.
    pub fn spawn(mut cmd: Command) -> Bot {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wildbot");
        let mut out = child.stdout.take().expect("stdout");
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let err = child.stderr.take().expect("stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = loop {
            let text = stderr.lock().unwrap().clone();
            if let Some(i) = text.find("dashboard at http://") {
                let rest = &text[i + "dashboard at ".len()..];
                let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
                break rest[..end].trim_end_matches('/').to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no dashboard line in stderr:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Bot {
            child,
            url,
            stderr,
            stdout: Some(stdout),
        }
    }

    /// Sends a signal (`INT`, `TERM`, ...) to the process.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// Waits at most `limit` for the exit; returns (exit code, stdout, stderr). Kills the
    /// process and fails the test on a timeout.
    pub fn wait(mut self, limit: Duration) -> (Option<i32>, String, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "wildbot did not exit within {limit:?}:\n{}",
                    self.stderr.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = self.stdout.take().expect("once").join().unwrap_or_default();
        // Let the reader thread take the last lines.
        std::thread::sleep(Duration::from_millis(100));
        let stderr = self.stderr.lock().unwrap().clone();
        (status.code(), stdout, stderr)
    }

    /// The stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// An HTTP answer.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub cache_control: String,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// GET `url` with an optional `Authorization` header; any status is an answer.
pub fn get(url: &str, authorization: Option<&str>) -> Answer {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut req = agent.get(url);
    if let Some(a) = authorization {
        req = req.header("Authorization", a);
    }
    let mut r = req.call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (content_type, cache_control) = (header("content-type"), header("cache-control"));
    Answer {
        status: r.status().as_u16(),
        content_type,
        cache_control,
        body: r.body_mut().read_to_string().unwrap_or_default(),
    }
}

/// Polls `/api/status` until `ok` holds for it (at most `limit`); returns it.
pub fn status_until(
    url: &str,
    limit: Duration,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let s = get(&format!("{url}/api/status"), None).json();
        if ok(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "status never got there: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
