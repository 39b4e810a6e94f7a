//! The core allocates nothing per event after start-up: asserted over 150 000 ticks of a
//! synthetic BTC/USD session (book updates, trades, paper fills, order churn), with malformed
//! frames, a checksum failure and resync, a disconnect and timer ticks mixed in.
//!
//! This file is its own test binary so that the counting allocator is global here only;
//! counts are per thread, so the harness cannot disturb them.

use wildbot::app::config::Config;
use wildbot::core::Core;
use wildbot::core::event::{Event, Intent, MAX_INTENTS_PER_EVENT};
use wildbot::core::paper::FillModel;
use wildbot::devtools::alloc::{CountingAlloc, thread_allocations};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

#[test]
fn no_allocation_per_event_over_150k_ticks() {
    let frames = wildbot::devtools::bench::frames(150_000, 11);
    let cfg = Config::from_toml_str("min_volatility_bps = 0\n", &[]).unwrap();
    let mut core = Core::new(&cfg.core_settings(FillModel::Cross), 1).unwrap();
    let mut out: Vec<Intent> = Vec::with_capacity(MAX_INTENTS_PER_EVENT);
    let bad_frames: [&[u8]; 4] = [b"{", b"\xff\xfe", b"[1,2", br#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":1.05,"qty":1}]}]}"#];
    let corrupt = br#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],"asks":[],"checksum":1}]}"#;

    // Warm up (first snapshot, first quotes) before counting.
    for (t, f) in &frames[..1_000] {
        core.handle(*t, Event::Frame(f.as_bytes()), &mut out);
        out.clear();
    }
    let before = thread_allocations();
    let mut ticks = 0u64;
    for (i, (t, f)) in frames[1_000..].iter().enumerate() {
        core.handle(*t, Event::Frame(f.as_bytes()), &mut out);
        assert!(out.len() <= MAX_INTENTS_PER_EVENT);
        out.clear();
        ticks += 1;
        if i % 1_000 == 0 {
            core.handle(*t, Event::Frame(bad_frames[(i / 1_000) % 4]), &mut out);
            core.handle(*t, Event::Timer, &mut out);
            out.clear();
        }
        if i == 50_000 {
            core.handle(*t, Event::Frame(corrupt), &mut out); // resync until the next snapshot
            out.clear();
        }
        if i == 90_000 {
            core.handle(*t, Event::Disconnected, &mut out);
            out.clear();
        }
    }
    let allocations = thread_allocations() - before;
    assert!(ticks >= 100_000);
    assert!(core.stats().fills > 0, "the session must exercise fills");
    assert!(core.stats().parse_errors_total() > 100);
    assert_eq!(allocations, 0, "{allocations} allocations in {ticks} ticks");
}

#[test]
fn the_counter_does_count() {
    // Guards the test above against a counter that always reads zero.
    let before = thread_allocations();
    let v: Vec<u8> = Vec::with_capacity(std::hint::black_box(64));
    drop(v);
    assert_eq!(thread_allocations() - before, 1);
}
