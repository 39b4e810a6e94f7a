//! The feed thread against the Kraken simulator over loopback (ws:// and wss://), with the
//! simulator's fault switches: what a user relies on when the network misbehaves.

use std::sync::atomic::Ordering;
use std::time::Duration;

use wildbot::app::config::Config;
use wildbot::app::session::{RunOptions, trade};
use wildbot::feed::Summary;
use wildbot::sim::{Faults, SimConfig, SimTls, Simulator};

fn config(url: &str) -> Config {
    Config {
        ws_url: url.to_string(),
        feed_timeout_ms: 1000,
        ping_interval_ms: 300,
        ..Config::default()
    }
}

/// Runs the feed for `secs` against `sim`, calling `script` on a side thread with the faults.
fn run_against(
    sim: &Simulator,
    cfg: &Config,
    secs: f64,
    script: impl FnOnce(&Faults) + Send,
) -> Summary {
    let (notifier, notify) = wildbot::side::notify::start(None).unwrap();
    let mut opts = RunOptions {
        duration: Some(Duration::from_secs_f64(secs)),
        ..RunOptions::default()
    };
    let summary = std::thread::scope(|s| {
        s.spawn(|| script(sim.faults()));
        trade(cfg, &mut opts, &notifier).unwrap()
    });
    drop(notifier);
    notify.join().unwrap();
    summary
}

fn sleep(secs: f64) {
    std::thread::sleep(Duration::from_secs_f64(secs));
}

fn start(tls: Option<SimTls>) -> Simulator {
    Simulator::start(SimConfig {
        tls,
        ..SimConfig::default()
    })
    .unwrap()
}

#[test]
fn snapshot_then_updates_keep_the_book_identical_to_the_simulators() {
    let sim = start(None);
    let mut cfg = config(&sim.url());
    cfg.core_id = Some(0);
    let s = run_against(&sim, &cfg, 3.0, |_| {});
    assert!(s.pinned, "pinned to core 0");
    // Every book message carries the simulator's CRC32 of its own book: all matched.
    assert!(s.counters.book_messages > 300, "{s:?}");
    assert_eq!(s.counters.checksums_ok, s.counters.book_messages, "{s:?}");
    assert_eq!(
        (s.counters.checksum_mismatches, s.counters.parse_errors),
        (0, 0)
    );
    assert_eq!(
        (
            s.counters.snapshots,
            s.counters.connects,
            s.counters.reconnects
        ),
        (1, 1, 0)
    );
    assert!(s.pongs >= 5 && s.heartbeats >= 2, "{s:?}");
    assert!(s.counters.ticks > 0);
}

#[test]
fn wss_with_a_certificate_generated_now() {
    let tls = SimTls::generate().unwrap();
    let dir = std::env::temp_dir().join(format!("wildbot-ca-{}.pem", std::process::id()));
    std::fs::write(&dir, &tls.cert_pem).unwrap();
    let sim = start(Some(tls));
    assert!(sim.url().starts_with("wss://localhost:"));
    let mut cfg = config(&sim.url());
    cfg.ws_ca_file = Some(dir.display().to_string());
    let s = run_against(&sim, &cfg, 3.0, |_| {});
    std::fs::remove_file(&dir).unwrap();
    assert!(s.counters.book_messages > 300, "{s:?}");
    assert_eq!(s.counters.checksums_ok, s.counters.book_messages);
    assert_eq!(s.counters.checksum_mismatches, 0);

    // Without trusting the certificate, the connection is refused and retried, never used.
    let sim = start(Some(SimTls::generate().unwrap()));
    let s = run_against(&sim, &config(&sim.url()), 1.5, |_| {});
    assert_eq!(
        (s.counters.connects, s.counters.book_messages),
        (0, 0),
        "{s:?}"
    );
    assert!(s.counters.reconnects >= 1);
}

#[test]
fn dropped_connection_reconnects_resubscribes_and_never_quotes_from_the_stale_book() {
    let sim = start(None);
    let s = run_against(&sim, &config(&sim.url()), 5.0, |f| {
        sleep(1.5);
        f.drop_connections();
    });
    assert_eq!(s.counters.connects, 2, "{s:?}");
    assert!(s.counters.reconnects >= 1);
    assert_eq!(
        s.counters.snapshots, 2,
        "a fresh snapshot after the reconnect"
    );
    assert_eq!(sim.stats().book_subscriptions.load(Ordering::SeqCst), 2);
    assert_eq!(s.counters.quotes_while_stale, 0);
    assert_eq!(s.counters.checksum_mismatches, 0);
    assert_eq!(s.counters.checksums_ok, s.counters.book_messages);
}

#[test]
fn corrupted_checksum_leads_to_a_resync() {
    let sim = start(None);
    let s = run_against(&sim, &config(&sim.url()), 3.5, |f| {
        sleep(1.0);
        f.bad_checksums.store(1, Ordering::SeqCst);
    });
    assert_eq!(s.counters.checksum_mismatches, 1, "{s:?}");
    assert_eq!(s.counters.resubscribes, 1);
    assert_eq!(s.counters.snapshots, 2);
    assert_eq!(sim.stats().book_unsubscriptions.load(Ordering::SeqCst), 1);
    assert_eq!(s.counters.quotes_while_stale, 0);
    assert_eq!(s.counters.reconnects, 0, "a resync is not a reconnect");
}

#[test]
fn malformed_frames_are_counted_and_skipped_while_the_feed_goes_on() {
    let sim = start(None);
    let mut cfg = config(&sim.url());
    cfg.core_id = Some(4096); // not on this machine: a warning and an unpinned run
    let s = run_against(&sim, &cfg, 3.0, |f| {
        sleep(1.0);
        f.malformed.store(3, Ordering::SeqCst);
    });
    assert!(!s.pinned);
    assert_eq!(s.counters.parse_errors, 3, "{s:?}");
    assert_eq!(s.counters.checksum_mismatches, 0);
    assert_eq!(s.counters.checksums_ok, s.counters.book_messages);
    assert_eq!((s.counters.snapshots, s.counters.reconnects), (1, 0));
    assert!(s.counters.book_messages > 300);
}

#[test]
fn a_silent_server_trips_the_watchdog() {
    let sim = start(None);
    let s = run_against(&sim, &config(&sim.url()), 5.5, |f| {
        sleep(1.0);
        f.silent.store(true, Ordering::SeqCst);
        sleep(1.6);
        f.silent.store(false, Ordering::SeqCst);
    });
    assert!(s.counters.watchdog_timeouts >= 1, "{s:?}");
    assert!(s.counters.reconnects >= 1);
    assert!(
        s.counters.connects >= 2,
        "reconnected once the server spoke again"
    );
    assert!(s.counters.snapshots >= 2);
    assert_eq!(s.counters.quotes_while_stale, 0);
}

#[test]
fn frames_split_across_tcp_writes_parse() {
    let sim = start(None);
    sim.faults().split_frames.store(true, Ordering::SeqCst);
    let s = run_against(&sim, &config(&sim.url()), 3.0, |_| {});
    assert!(s.counters.book_messages > 10, "{s:?}");
    assert_eq!(s.counters.checksums_ok, s.counters.book_messages);
    assert_eq!(s.counters.parse_errors, 0);
}

#[test]
fn a_rejected_subscription_is_retried_with_backoff() {
    let sim = start(None);
    sim.faults()
        .reject_subscriptions
        .store(true, Ordering::SeqCst);
    // Rejected at once, retried after ~1 s (rejected), then after ~2 s (accepted).
    let s = run_against(&sim, &config(&sim.url()), 6.0, |f| {
        sleep(1.5);
        f.reject_subscriptions.store(false, Ordering::SeqCst);
    });
    assert!(s.subscribe_errors >= 3, "{s:?}");
    assert_eq!(
        s.counters.snapshots, 1,
        "subscribed once the server accepted: {s:?}"
    );
    assert!(s.counters.book_messages > 50, "{s:?}");
    assert_eq!(
        s.counters.connects, 1,
        "a refused subscription is not a reason to reconnect"
    );
}

#[test]
fn live_mode_falls_back_to_paper_when_the_api_is_down_at_start() {
    let sim = start(None);
    let rest = wildbot::sim::rest::RestSim::start("10000", "0", sim.market()).unwrap();
    rest.faults().down.store(true, Ordering::SeqCst);
    let mut cfg = config(&sim.url());
    cfg.live_mode = true;
    cfg.rest_url = rest.url();
    cfg.ws_auth_url = rest.private().url();
    cfg.rest_timeout_ms = 500;
    let (notifier, notify) = wildbot::side::notify::start(None).unwrap();
    let mut opts = RunOptions {
        duration: Some(Duration::from_secs(2)),
        credentials: Some(
            wildbot::kraken::rest::Credentials::new(
                wildbot::sim::rest::DEMO_KEY,
                wildbot::sim::rest::DEMO_SECRET,
            )
            .unwrap(),
        ),
        ..RunOptions::default()
    };
    let s = trade(&cfg, &mut opts, &notifier).unwrap();
    drop(notifier);
    notify.join().unwrap();
    assert_eq!(s.mode, "paper");
    assert!(s.live_fallback);
    assert!(s.counters.book_messages > 100, "the feed still runs: {s:?}");
}

#[test]
fn every_stage_is_timed_unless_stage_timing_is_off() {
    let sim = start(None);
    let cfg = config(&sim.url());
    let on = run_against(&sim, &cfg, 1.5, |_| {});
    assert!(on.frame_to_parsed.count > 0 && on.frame_to_parsed.count <= on.counters.frames);
    // Socket to frame: every frame, timing on or off (it costs one clock read).
    assert_eq!(on.wire_to_frame.count, on.counters.frames);
    assert!(on.wire_to_frame.p50_ns > 0 && on.wire_to_frame.p50_ns <= on.wire_to_frame.max_ns);
    assert!(on.book_apply.count > 0 && on.book_apply.count <= on.counters.book_messages);
    assert!(on.strategy.count > 0);
    let r = on.book_apply;
    assert!(r.p50_ns <= r.p90_ns && r.p90_ns <= r.p99_ns && r.p999_ns <= r.max_ns);
    let off = run_against(
        &sim,
        &Config {
            stage_timing: false,
            ..cfg
        },
        1.5,
        |_| {},
    );
    assert_eq!(
        off.frame_to_parsed.count + off.book_apply.count + off.strategy.count,
        0
    );
    assert_eq!(off.wire_to_frame.count, off.counters.frames);
    assert_eq!(
        off.frame_to_done.count, off.counters.frames,
        "every frame still timed end to end"
    );
}

#[test]
fn an_oversized_message_ends_the_connection_and_the_feed_recovers() {
    let sim = start(None);
    let s = run_against(&sim, &config(&sim.url()), 4.0, |f| {
        sleep(1.0);
        f.oversized.store(1, Ordering::SeqCst);
    });
    assert!(s.counters.reconnects >= 1, "{s:?}");
    assert!(s.counters.connects >= 2, "reconnected: {s:?}");
    assert!(s.counters.snapshots >= 2, "a fresh book after it: {s:?}");
    assert_eq!(s.counters.checksum_mismatches, 0);
    assert_eq!(s.counters.quotes_while_stale, 0);
}

#[test]
fn an_unanswered_book_subscription_is_retried_on_a_fresh_connection() {
    let sim = start(None);
    sim.faults()
        .ignore_book_subscriptions
        .store(1, Ordering::SeqCst);
    // Heartbeats and pongs keep the connection alive; only the book never comes.
    let s = run_against(&sim, &config(&sim.url()), 4.0, |_| {});
    assert_eq!(s.counters.watchdog_timeouts, 1, "{s:?}");
    assert_eq!((s.counters.connects, s.counters.snapshots), (2, 1), "{s:?}");
    assert!(s.counters.book_messages > 100, "{s:?}");
    assert_eq!(s.counters.quotes_while_stale, 0);
}
