//! `wildbot doctor`: is this machine ready to run the bot on a dedicated core? Each check
//! says pass, warn or fail, and how to fix what is not right. Secrets are checked for
//! presence and shape, never printed.
//!
//! The checks read `/sys` and `/proc` through [`Machine`], whose roots a test points at a
//! fake tree; the time-synchronisation and name-resolution probes are passed in, so every
//! verdict is unit-tested without touching the host.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

use crate::app::config::{Config, load_config, resolve_config_path};
use crate::app::output::{errln, out, outln};

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Ready.
    Pass,
    /// Works, but costs latency or safety.
    Warn,
    /// The bot should not run like this.
    Fail,
}

impl Level {
    fn tag(self) -> &'static str {
        match self {
            Level::Pass => "PASS",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Which check.
    pub check: &'static str,
    /// Verdict.
    pub level: Level,
    /// What was found.
    pub detail: String,
    /// How to fix it (not for a pass).
    pub fix: Option<String>,
}

fn pass(check: &'static str, detail: impl Into<String>) -> Finding {
    Finding {
        check,
        level: Level::Pass,
        detail: detail.into(),
        fix: None,
    }
}

fn warn(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding {
        check,
        level: Level::Warn,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding {
        check,
        level: Level::Fail,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

/// Where `/sys` and `/proc` are (a test's fake tree, or the real ones).
#[derive(Debug, Clone)]
pub struct Machine {
    /// `/sys`.
    pub sys: PathBuf,
    /// `/proc`.
    pub proc: PathBuf,
}

impl Machine {
    /// This machine.
    #[must_use]
    pub fn real() -> Machine {
        Machine {
            sys: PathBuf::from("/sys"),
            proc: PathBuf::from("/proc"),
        }
    }

    fn sys(&self, rel: &str) -> Option<String> {
        read(&self.sys.join(rel))
    }

    fn proc(&self, rel: &str) -> Option<String> {
        read(&self.proc.join(rel))
    }
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

/// A kernel CPU list (`0-3,8,10-11`) as core numbers; words that are not numbers (the
/// `isolcpus=` flags `nohz`, `domain`, `managed_irq`) are skipped.
#[must_use]
pub fn parse_cpu_list(s: &str) -> Vec<usize> {
    let mut cores = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>())
            && a <= b
            && b - a < 4096
        {
            cores.extend(a..=b);
        }
    }
    cores
}

/// `core_id`: it exists, this process may run on it, and the kernel keeps other work off it.
#[must_use]
pub fn check_core(m: &Machine, core: Option<usize>) -> Vec<Finding> {
    let online = m
        .sys("devices/system/cpu/online")
        .map(|s| parse_cpu_list(&s))
        .unwrap_or_default();
    let Some(core) = core else {
        let spare = online.last().copied().unwrap_or(1);
        return vec![warn(
            "core_id",
            "core_id is not set: the feed thread runs unpinned and shares cores with everything",
            format!(
                "set core_id = {spare} in the config and isolate that core (see the isolation fix)"
            ),
        )];
    };
    let mut found = Vec::new();
    if !online.contains(&core) {
        found.push(fail(
            "core_id",
            format!("core {core} is not online here (online: {online:?})"),
            "pick a core_id from /sys/devices/system/cpu/online",
        ));
        return found;
    }
    let allowed = m
        .proc("self/status")
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:").map(parse_cpu_list))
        })
        .unwrap_or_else(|| online.clone());
    if allowed.contains(&core) {
        found.push(pass(
            "core_id",
            format!("core {core} is online and allowed"),
        ));
    } else {
        found.push(fail(
            "core_id",
            format!("this process may not run on core {core} (allowed: {allowed:?})"),
            format!("include {core} in the unit's CPUAffinity= (or the cpuset the bot runs in)"),
        ));
    }
    found.push(check_isolation(m, core));
    found
}

fn check_isolation(m: &Machine, core: usize) -> Finding {
    let listed = |s: Option<String>| s.is_some_and(|s| parse_cpu_list(&s).contains(&core));
    let cmdline = m.proc("cmdline").unwrap_or_default();
    let isolcpus = cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("isolcpus="))
        .map(str::to_string);
    let how = if listed(m.sys("devices/system/cpu/isolated")) || listed(isolcpus) {
        Some("isolcpus")
    } else if listed(m.sys("devices/system/cpu/nohz_full")) {
        Some("nohz_full")
    } else if listed(m.sys("fs/cgroup/cpuset.cpus.isolated")) {
        Some("an isolated cpuset partition")
    } else {
        None
    };
    match how {
        Some(how) => pass("isolation", format!("core {core} is isolated ({how})")),
        None => warn(
            "isolation",
            format!("core {core} is shared with the scheduler's other work (jitter in the tail)"),
            format!(
                "add isolcpus={core} nohz_full={core} rcu_nocbs={core} to the kernel command \
                 line and reboot, or make an isolated cpuset partition for it"
            ),
        ),
    }
}

/// The frequency governor of `core` (or core 0).
#[must_use]
pub fn check_governor(m: &Machine, core: Option<usize>) -> Finding {
    let c = core.unwrap_or(0);
    match m.sys(&format!(
        "devices/system/cpu/cpu{c}/cpufreq/scaling_governor"
    )) {
        Some(g) if g == "performance" => pass("governor", format!("core {c}: performance")),
        Some(g) => warn(
            "governor",
            format!("core {c}: {g} (the clock ramps down between bursts)"),
            "cpupower frequency-set -g performance (or echo performance > \
             /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor)",
        ),
        None => warn(
            "governor",
            format!("core {c}: no cpufreq here (a virtual machine, or the driver is absent)"),
            "on bare metal, load the cpufreq driver and set the performance governor; in a VM \
             ask for dedicated, non-overcommitted vCPUs",
        ),
    }
}

/// The kernel's clock source (the stage timings and `Instant` read the TSC).
#[must_use]
pub fn check_clocksource(m: &Machine) -> Finding {
    let cur = m.sys("devices/system/clocksource/clocksource0/current_clocksource");
    let avail = m
        .sys("devices/system/clocksource/clocksource0/available_clocksource")
        .unwrap_or_default();
    match cur.as_deref() {
        Some("tsc") => pass("clocksource", "tsc"),
        Some(c) => warn(
            "clocksource",
            format!("{c} (available: {avail}): reading the time costs a system call or more"),
            if avail.split_whitespace().any(|a| a == "tsc") {
                "echo tsc > /sys/devices/system/clocksource/clocksource0/current_clocksource, or \
                 clocksource=tsc tsc=reliable on the kernel command line"
            } else {
                "this machine offers no TSC clock source: prefer one that does"
            },
        ),
        None => warn(
            "clocksource",
            "unknown (no /sys clocksource)",
            "check /sys/devices/system/clocksource",
        ),
    }
}

/// What the kernel says of its clock's synchronisation (adjtimex).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeSync {
    /// An NTP/PTP daemon keeps the clock synchronised.
    pub synced: bool,
    /// The kernel's estimated error, µs.
    pub est_error_us: i64,
}

/// The kernel's clock state, read with `adjtimex` (whoever disciplines it: chrony, ntpd,
/// systemd-timesyncd, ptp4l).
#[must_use]
pub fn probe_time_sync() -> Option<TimeSync> {
    // SAFETY: adjtimex with modes = 0 only reads the kernel's state into the struct we own.
    #[allow(unsafe_code)]
    unsafe {
        let mut t: libc::timex = std::mem::zeroed();
        let state = libc::adjtimex(&raw mut t);
        if state < 0 {
            return None;
        }
        Some(TimeSync {
            synced: state != libc::TIME_ERROR && t.status & libc::STA_UNSYNC == 0,
            est_error_us: t.esterror,
        })
    }
}

/// Time synchronisation: Kraken's `deadline`s, the journal and the latency of exchange
/// timestamps all need the wall clock right.
#[must_use]
pub fn check_time_sync(s: Option<TimeSync>) -> Finding {
    let fix = "run a time daemon: apt-get install chrony (or systemctl enable --now \
               systemd-timesyncd)";
    match s {
        Some(TimeSync {
            synced: true,
            est_error_us,
        }) if est_error_us <= 100_000 => pass(
            "time_sync",
            format!("synchronised (estimated error {est_error_us} µs)"),
        ),
        Some(TimeSync {
            synced: true,
            est_error_us,
        }) => warn(
            "time_sync",
            format!("synchronised but the estimated error is {est_error_us} µs"),
            "use closer NTP servers or PTP",
        ),
        Some(_) => fail("time_sync", "the kernel's clock is not synchronised", fix),
        None => warn("time_sync", "the clock state could not be read", fix),
    }
}

/// The open-file limit (sockets, journal, recorder, dashboard clients).
#[must_use]
pub fn check_nofile(m: &Machine) -> Finding {
    let soft = m.proc("self/limits").and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
    });
    let fix = "LimitNOFILE=65536 in the service unit (or ulimit -n 65536)";
    match soft.as_deref() {
        Some("unlimited") => pass("nofile", "unlimited"),
        Some(n) => match n.parse::<u64>() {
            Ok(n) if n >= 4096 => pass("nofile", format!("{n}")),
            Ok(n) if n >= 256 => warn("nofile", format!("{n}: enough today, tight"), fix),
            Ok(n) => fail("nofile", format!("{n}: too few for sockets and files"), fix),
            Err(_) => warn("nofile", format!("unreadable limit {n:?}"), fix),
        },
        None => warn("nofile", "no /proc/self/limits", fix),
    }
}

/// The journal's directory takes a file (the journal is rewritten by rename there).
#[must_use]
pub fn check_journal(cfg: &Config) -> Finding {
    let Some(path) = cfg.journal_path.as_deref().filter(|p| !p.is_empty()) else {
        return if cfg.live_mode {
            warn(
                "journal",
                "journal_path is not set: a restart will not know this run's fills",
                "set journal_path, e.g. /var/lib/wildbot/journal.jsonl",
            )
        } else {
            pass("journal", "not used (paper, no journal_path)")
        };
    };
    let dir = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let probe = dir.join(format!(".wildbot-doctor-{}", std::process::id()));
    match std::fs::write(&probe, b"") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            pass("journal", format!("{} is writable", dir.display()))
        }
        Err(e) => fail(
            "journal",
            format!("cannot write in {}: {e}", dir.display()),
            format!(
                "create {} and make it the bot user's (systemd: StateDirectory=wildbot)",
                dir.display()
            ),
        ),
    }
}

/// Credentials: present where they are needed, of the right shape; never shown.
#[must_use]
pub fn check_keys(cfg: &Config, env: &dyn Fn(&str) -> Option<String>) -> Vec<Finding> {
    let set = |k: &str| env(k).is_some_and(|v| !v.trim().is_empty());
    let mut found = Vec::new();
    let (key, secret) = (set("KRAKEN_API_KEY"), set("KRAKEN_API_SECRET"));
    found.push(match (cfg.live_mode, key, secret) {
        (_, true, true) => {
            let decodes = env("KRAKEN_API_SECRET").is_some_and(|s| {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD
                    .decode(s.trim())
                    .is_ok()
            });
            if decodes {
                pass(
                    "kraken_keys",
                    "KRAKEN_API_KEY and KRAKEN_API_SECRET are set (not shown)",
                )
            } else {
                fail(
                    "kraken_keys",
                    "KRAKEN_API_SECRET is set but is not base64 (not shown)",
                    "copy the private key exactly as Kraken showed it",
                )
            }
        }
        (true, _, _) => fail(
            "kraken_keys",
            "live_mode is true but KRAKEN_API_KEY / KRAKEN_API_SECRET are not both set",
            "put them in the service's EnvironmentFile (never in the config)",
        ),
        (false, false, false) => pass("kraken_keys", "not needed (paper)"),
        (false, _, _) => warn(
            "kraken_keys",
            "only one of KRAKEN_API_KEY / KRAKEN_API_SECRET is set",
            "set both (or neither for paper)",
        ),
    });
    let (token, chat) = (set("TELEGRAM_BOT_TOKEN"), set("TELEGRAM_CHAT_ID"));
    found.push(match (token, chat) {
        (true, true) => pass(
            "telegram",
            "TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID are set (not shown)",
        ),
        (false, false) => pass("telegram", "off (no TELEGRAM_BOT_TOKEN / TELEGRAM_CHAT_ID)"),
        _ => warn(
            "telegram",
            "only one of TELEGRAM_BOT_TOKEN / TELEGRAM_CHAT_ID is set: Telegram stays off",
            "set both in the EnvironmentFile",
        ),
    });
    found
}

/// `host` and port of a `ws://`, `wss://`, `http://` or `https://` URL.
#[must_use]
pub fn host_port(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?']).next()?;
    let default = match scheme {
        "wss" | "https" => 443,
        "ws" | "http" => 80,
        _ => return None,
    };
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            Some((h.trim_matches(['[', ']']).to_string(), p.parse().ok()?))
        }
        _ => Some((authority.to_string(), default)),
    }
}

/// Resolves `host:port` with a time limit (a resolver that hangs must not hang the doctor).
///
/// # Errors
/// The name does not resolve, or not within `limit`.
pub fn resolve(host: &str, port: u16, limit: Duration) -> Result<usize, String> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let target = format!("{host}:{port}");
    std::thread::spawn(move || {
        use std::net::ToSocketAddrs as _;
        let r = target
            .to_socket_addrs()
            .map(Iterator::count)
            .map_err(|e| e.to_string());
        let _ = tx.send(r);
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| Err(format!("no answer in {} s", limit.as_secs())))
}

/// The endpoints the config names resolve to addresses.
#[must_use]
pub fn check_endpoints(
    cfg: &Config,
    resolver: &dyn Fn(&str, u16) -> Result<usize, String>,
) -> Vec<Finding> {
    let mut urls = vec![("ws_url", cfg.ws_url.as_str())];
    if cfg.live_mode {
        urls.push(("rest_url", cfg.rest_url.as_str()));
        if !cfg.ws_auth_url.is_empty() {
            urls.push(("ws_auth_url", cfg.ws_auth_url.as_str()));
        }
    }
    urls.into_iter()
        .map(|(key, url)| match host_port(url) {
            None => fail(
                "endpoints",
                format!("{key} = {url:?} is not a ws(s):// or http(s):// URL"),
                format!("fix {key} in the config"),
            ),
            Some((host, port)) => match resolver(&host, port) {
                Ok(n) if n > 0 => pass(
                    "endpoints",
                    format!("{key}: {host} resolves ({n} addresses)"),
                ),
                Ok(_) => fail(
                    "endpoints",
                    format!("{key}: {host} has no address"),
                    "check the host name and /etc/resolv.conf",
                ),
                Err(e) => fail(
                    "endpoints",
                    format!("{key}: {host} does not resolve: {e}"),
                    "check DNS (/etc/resolv.conf) and the network; the bot cannot trade without it",
                ),
            },
        })
        .collect()
}

/// Every check, for `cfg` (or the config error) on machine `m`.
#[must_use]
pub fn examine(
    cfg: Result<(&Config, &Path), String>,
    m: &Machine,
    time: Option<TimeSync>,
    env: &dyn Fn(&str) -> Option<String>,
    resolver: &dyn Fn(&str, u16) -> Result<usize, String>,
) -> Vec<Finding> {
    let mut f = Vec::new();
    let cfg = match cfg {
        Ok((c, path)) => {
            f.push(pass("config", format!("{} is valid", path.display())));
            Some(c)
        }
        Err(e) => {
            f.push(fail(
                "config",
                e,
                "wildbot check-config FILE names the key to fix",
            ));
            None
        }
    };
    f.extend(check_core(m, cfg.and_then(|c| c.core_id)));
    f.push(check_governor(m, cfg.and_then(|c| c.core_id)));
    f.push(check_clocksource(m));
    f.push(check_time_sync(time));
    f.push(check_nofile(m));
    if let Some(c) = cfg {
        f.push(check_journal(c));
        f.extend(check_keys(c, env));
        f.extend(check_endpoints(c, resolver));
    }
    f
}

/// `wildbot doctor`: prints the findings (or `--json`); exit 1 if any check fails.
#[must_use]
pub fn doctor(config: Option<&Path>, set: &[String], json: bool) -> ExitCode {
    let loaded = resolve_config_path(config)
        .and_then(|p| load_config(Some(&p), set).map(|c| (c, p)))
        .map_err(|e| e.to_string());
    let env = |k: &str| std::env::var(k).ok();
    let resolver = |h: &str, p: u16| resolve(h, p, Duration::from_secs(3));
    let findings = examine(
        loaded
            .as_ref()
            .map(|(c, p)| (c, p.as_path()))
            .map_err(Clone::clone),
        &Machine::real(),
        probe_time_sync(),
        &env,
        &resolver,
    );
    if json {
        outln(&serde_json::to_string(&findings).unwrap_or_default());
    } else {
        out(&render(&findings));
    }
    if findings.iter().any(|f| f.level == Level::Fail) {
        errln("doctor: at least one check failed");
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The findings as text: one line each, the fix indented under it.
#[must_use]
pub fn render(findings: &[Finding]) -> String {
    let mut s = String::new();
    for f in findings {
        s.push_str(&format!(
            "{}  {:<12} {}\n",
            f.level.tag(),
            f.check,
            f.detail
        ));
        if let Some(fix) = &f.fix {
            s.push_str(&format!("      {:<12} fix: {fix}\n", ""));
        }
    }
    let count = |l| findings.iter().filter(|f| f.level == l).count();
    s.push_str(&format!(
        "{} pass, {} warn, {} fail\n",
        count(Level::Pass),
        count(Level::Warn),
        count(Level::Fail)
    ));
    s
}

#[cfg(test)]
mod tests;
