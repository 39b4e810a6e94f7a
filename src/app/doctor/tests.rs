//! The doctor's verdicts on fake /sys and /proc trees: a tuned box, a stock one, a broken one.

use super::*;

/// A fake machine under a temporary directory; `files` are (path under the root, content).
struct Fake {
    root: PathBuf,
}

impl Fake {
    fn new(name: &str, files: &[(&str, &str)]) -> Fake {
        let root =
            std::env::temp_dir().join(format!("wildbot-doctor-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (path, text) in files {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        Fake { root }
    }

    fn machine(&self) -> Machine {
        Machine {
            sys: self.root.join("sys"),
            proc: self.root.join("proc"),
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

const LIMITS_OK: &str = "Limit                     Soft Limit           Hard Limit           Units     \n\
Max cpu time              unlimited            unlimited            seconds   \n\
Max open files            65536                65536                files     \n";

fn tuned() -> Fake {
    Fake::new(
        "tuned",
        &[
            ("sys/devices/system/cpu/online", "0-3\n"),
            ("sys/devices/system/cpu/isolated", "3\n"),
            ("sys/devices/system/cpu/nohz_full", "3\n"),
            (
                "sys/devices/system/cpu/cpu3/cpufreq/scaling_governor",
                "performance\n",
            ),
            (
                "sys/devices/system/clocksource/clocksource0/current_clocksource",
                "tsc\n",
            ),
            (
                "sys/devices/system/clocksource/clocksource0/available_clocksource",
                "tsc hpet acpi_pm\n",
            ),
            (
                "proc/self/status",
                "Name:\twildbot\nCpus_allowed_list:\t0-3\n",
            ),
            ("proc/self/limits", LIMITS_OK),
            (
                "proc/cmdline",
                "BOOT_IMAGE=/vmlinuz isolcpus=3 nohz_full=3 quiet\n",
            ),
        ],
    )
}

fn stock() -> Fake {
    Fake::new(
        "stock",
        &[
            ("sys/devices/system/cpu/online", "0-1\n"),
            ("sys/devices/system/cpu/isolated", "\n"),
            (
                "sys/devices/system/cpu/cpu1/cpufreq/scaling_governor",
                "powersave\n",
            ),
            (
                "sys/devices/system/clocksource/clocksource0/current_clocksource",
                "hpet\n",
            ),
            (
                "sys/devices/system/clocksource/clocksource0/available_clocksource",
                "tsc hpet\n",
            ),
            ("proc/self/status", "Cpus_allowed_list:\t0\n"),
            (
                "proc/self/limits",
                "Max open files            128                4096                files     \n",
            ),
            ("proc/cmdline", "quiet splash\n"),
        ],
    )
}

fn level(f: &[Finding], check: &str) -> Level {
    f.iter()
        .find(|x| x.check == check)
        .unwrap_or_else(|| panic!("no {check} in {f:?}"))
        .level
}

#[test]
fn cpu_lists_read_as_the_kernel_writes_them() {
    assert_eq!(parse_cpu_list("0-3,8,10-11"), [0, 1, 2, 3, 8, 10, 11]);
    assert_eq!(parse_cpu_list("nohz,domain,2-3"), [2, 3]);
    assert_eq!(parse_cpu_list(""), Vec::<usize>::new());
    assert_eq!(parse_cpu_list("5-2"), Vec::<usize>::new());
}

#[test]
fn a_tuned_machine_passes_every_machine_check() {
    let fake = tuned();
    let m = fake.machine();
    let core = check_core(&m, Some(3));
    assert!(core.iter().all(|f| f.level == Level::Pass), "{core:?}");
    assert_eq!(check_governor(&m, Some(3)).level, Level::Pass);
    assert_eq!(check_clocksource(&m).level, Level::Pass);
    assert_eq!(check_nofile(&m).level, Level::Pass);
    // Isolation by nohz_full alone, or by an isolated cpuset partition, also counts.
    let f = Fake::new(
        "nohz",
        &[
            ("sys/devices/system/cpu/online", "0-3"),
            ("sys/devices/system/cpu/nohz_full", "2-3"),
        ],
    );
    assert_eq!(check_isolation(&f.machine(), 2).level, Level::Pass);
    let f = Fake::new(
        "cpuset",
        &[
            ("sys/devices/system/cpu/online", "0-3"),
            ("sys/fs/cgroup/cpuset.cpus.isolated", "1"),
        ],
    );
    assert!(check_isolation(&f.machine(), 1).detail.contains("cpuset"));
}

#[test]
fn a_stock_machine_gets_warnings_with_their_fixes() {
    let fake = stock();
    let m = fake.machine();
    let core = check_core(&m, Some(1));
    assert_eq!(
        core[0].level,
        Level::Fail,
        "not in Cpus_allowed_list: {core:?}"
    );
    assert!(core[0].fix.as_ref().unwrap().contains("CPUAffinity"));
    assert_eq!(core[1].level, Level::Warn);
    assert!(
        core[1]
            .fix
            .as_ref()
            .unwrap()
            .contains("isolcpus=1 nohz_full=1")
    );
    let g = check_governor(&m, Some(1));
    assert_eq!(g.level, Level::Warn);
    assert!(g.detail.contains("powersave") && g.fix.unwrap().contains("performance"));
    let c = check_clocksource(&m);
    assert_eq!(c.level, Level::Warn);
    assert!(c.fix.unwrap().contains("clocksource=tsc"));
    let n = check_nofile(&m);
    assert_eq!(n.level, Level::Fail);
    assert!(n.fix.unwrap().contains("LimitNOFILE"));
    // No core_id: a warning naming a core to use.
    let w = check_core(&m, None);
    assert_eq!(w[0].level, Level::Warn);
    assert!(w[0].fix.as_ref().unwrap().contains("core_id = 1"));
    // A core that does not exist.
    assert_eq!(check_core(&m, Some(7))[0].level, Level::Fail);
    // No cpufreq at all (a VM).
    assert_eq!(check_governor(&m, Some(0)).level, Level::Warn);
}

#[test]
fn time_sync_follows_the_kernels_clock_state() {
    let ok = TimeSync {
        synced: true,
        est_error_us: 800,
    };
    assert_eq!(check_time_sync(Some(ok)).level, Level::Pass);
    let loose = TimeSync {
        synced: true,
        est_error_us: 400_000,
    };
    assert_eq!(check_time_sync(Some(loose)).level, Level::Warn);
    let off = TimeSync {
        synced: false,
        est_error_us: 16_000_000,
    };
    let f = check_time_sync(Some(off));
    assert_eq!(f.level, Level::Fail);
    assert!(f.fix.unwrap().contains("chrony"));
    assert_eq!(check_time_sync(None).level, Level::Warn);
}

#[test]
fn keys_are_checked_for_presence_and_shape_and_never_shown() {
    let live = Config {
        live_mode: true,
        ..Config::default()
    };
    let secret =
        "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==";
    let env = |k: &str| match k {
        "KRAKEN_API_KEY" => Some("my-key-value".to_string()),
        "KRAKEN_API_SECRET" => Some(secret.to_string()),
        "TELEGRAM_BOT_TOKEN" => Some("123:bot-token-value".to_string()),
        _ => None,
    };
    let f = check_keys(&live, &env);
    assert_eq!(level(&f, "kraken_keys"), Level::Pass);
    assert_eq!(
        level(&f, "telegram"),
        Level::Warn,
        "a token without a chat id"
    );
    let text = render(&f);
    for value in ["my-key-value", secret, "bot-token-value"] {
        assert!(!text.contains(value), "a secret shown: {text}");
    }
    let none = |_: &str| None;
    assert_eq!(level(&check_keys(&live, &none), "kraken_keys"), Level::Fail);
    assert_eq!(
        level(&check_keys(&Config::default(), &none), "kraken_keys"),
        Level::Pass
    );
    let bad = |k: &str| (k.starts_with("KRAKEN")).then(|| "not base64!".to_string());
    let f = check_keys(&live, &bad);
    assert_eq!(level(&f, "kraken_keys"), Level::Fail);
    assert!(!render(&f).contains("not base64!"));
}

#[test]
fn the_journal_directory_must_take_a_file() {
    let dir = Fake::new("journal", &[("state/keep", "")]);
    let mut c = Config {
        journal_path: Some(dir.root.join("state/journal.jsonl").display().to_string()),
        ..Config::default()
    };
    assert_eq!(check_journal(&c).level, Level::Pass);
    c.journal_path = Some(dir.root.join("missing/journal.jsonl").display().to_string());
    let f = check_journal(&c);
    assert_eq!(f.level, Level::Fail);
    assert!(f.fix.unwrap().contains("StateDirectory"));
    c.journal_path = None;
    c.live_mode = true;
    assert_eq!(check_journal(&c).level, Level::Warn);
}

#[test]
fn endpoints_must_resolve_and_only_the_ones_in_use_are_asked() {
    let asked = std::sync::Mutex::new(Vec::new());
    let resolver = |h: &str, p: u16| {
        asked.lock().unwrap().push(format!("{h}:{p}"));
        if h.ends_with("kraken.com") {
            Ok(2)
        } else {
            Err("Name or service not known".to_string())
        }
    };
    let paper = Config::default();
    let f = check_endpoints(&paper, &resolver);
    assert!(f.iter().all(|x| x.level == Level::Pass), "{f:?}");
    assert_eq!(*asked.lock().unwrap(), ["ws.kraken.com:443"]);
    let live = Config {
        live_mode: true,
        rest_url: "https://api.example.invalid:8443".into(),
        ..Config::default()
    };
    let f = check_endpoints(&live, &resolver);
    assert_eq!(f.len(), 3);
    let bad = f.iter().find(|x| x.level == Level::Fail).unwrap();
    assert!(
        bad.detail
            .contains("rest_url: api.example.invalid does not resolve")
    );
    assert!(
        asked
            .lock()
            .unwrap()
            .contains(&"api.example.invalid:8443".to_string())
    );
    assert_eq!(
        host_port("ws://127.0.0.1:9000/v2"),
        Some(("127.0.0.1".into(), 9000))
    );
    assert_eq!(host_port("wss://[::1]:443/v2"), Some(("::1".into(), 443)));
    assert_eq!(host_port("ftp://x"), None);
}

#[test]
fn a_config_error_is_a_failure_and_the_report_counts_everything() {
    let fake = tuned();
    let m = fake.machine();
    let none = |_: &str| None;
    let resolver = |_: &str, _: u16| Ok(1);
    let f = examine(
        Err("config key `sizee` is unknown".into()),
        &m,
        None,
        &none,
        &resolver,
    );
    assert_eq!(f[0].level, Level::Fail);
    let text = render(&f);
    assert!(text.starts_with("FAIL  config"), "{text}");
    assert!(text.contains("fix: wildbot check-config"));
    assert!(text.trim_end().ends_with("1 fail"), "{text}");
}
