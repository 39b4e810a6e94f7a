//! `wildbot bench`: the core's speed on a realistic synthetic BTC/USD stream.
//!
//! All frames are generated up front as raw JSON text, then each one goes through the whole
//! core (parse → book → signals → paper fills → strategy → risk → intents) and is timed on its
//! own. Allocations are counted on this thread during the measured ticks only; they are
//! meaningful when the binary installs [`CountingAlloc`](crate::devtools::alloc::CountingAlloc).

use std::time::Instant;

use hdrhistogram::Histogram;

use crate::core::event::{Event, Intent, MAX_INTENTS_PER_EVENT};
use crate::core::{Core, Settings};
use crate::sim::synth::{SynthConfig, generate};

/// What `bench` measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    /// Ticks measured.
    pub ticks: u64,
    /// Throughput over the measured ticks (sum of per-tick times).
    pub per_sec: f64,
    /// Latency percentiles per tick, ns.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Slowest tick.
    pub max_ns: u64,
    /// Mean.
    pub mean_ns: f64,
    /// Heap allocations during the measured ticks.
    pub allocations: u64,
    /// Warm-up ticks before measuring.
    pub warmup_ticks: u64,
    /// Wall time of the measured loop, seconds (includes the timer reads).
    pub wall_s: f64,
    /// Book messages whose checksum matched.
    pub checksums_ok: u64,
    /// Orders the strategy placed.
    pub orders_placed: u64,
    /// Paper fills.
    pub fills: u64,
    /// Intents produced.
    pub intents: u64,
}

/// The synthetic frames a bench run uses (also used by the criterion bench and tests).
#[must_use]
pub fn frames(n: usize, seed: u64) -> Vec<(i64, String)> {
    generate(
        SynthConfig {
            seed,
            ..SynthConfig::default()
        },
        n,
    )
}

/// Runs `ticks` measured ticks after a warm-up and reports.
///
/// # Panics
/// Never on valid input; the default config is known to be valid.
#[must_use]
pub fn run(ticks: u64, seed: u64) -> BenchReport {
    let warmup = (ticks / 10).clamp(1_000, 50_000);
    let frames = frames((warmup + ticks) as usize, seed);
    let mut core = Core::new(&Settings::default(), 1).expect("the default settings are valid");
    let mut out: Vec<Intent> = Vec::with_capacity(MAX_INTENTS_PER_EVENT);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).expect("valid bounds");
    let mut intents = 0u64;

    let (warm, measured) = frames.split_at(warmup as usize + 1);
    for (ts, f) in warm {
        core.handle(*ts, Event::Frame(f.as_bytes()), &mut out);
        out.clear();
    }
    let allocs_before = crate::devtools::alloc::thread_allocations();
    let wall = Instant::now();
    for (ts, f) in measured {
        let t0 = Instant::now();
        core.handle(*ts, Event::Frame(f.as_bytes()), &mut out);
        let dt = t0.elapsed().as_nanos() as u64;
        hist.saturating_record(dt.max(1));
        intents += out.len() as u64;
        out.clear();
    }
    let wall_s = wall.elapsed().as_secs_f64();
    let allocations = crate::devtools::alloc::thread_allocations() - allocs_before;
    let n = hist.len();
    let mean = hist.mean();
    BenchReport {
        ticks: n,
        per_sec: if mean > 0.0 { 1e9 / mean } else { 0.0 },
        p50_ns: hist.value_at_quantile(0.50),
        p90_ns: hist.value_at_quantile(0.90),
        p99_ns: hist.value_at_quantile(0.99),
        p999_ns: hist.value_at_quantile(0.999),
        max_ns: hist.max(),
        mean_ns: mean,
        allocations,
        warmup_ticks: warmup,
        wall_s,
        checksums_ok: core.stats().checksums_ok,
        orders_placed: core.orders().stats.placed,
        fills: core.stats().fills,
        intents,
    }
}

impl BenchReport {
    /// The human-readable table.
    #[must_use]
    pub fn render(&self) -> String {
        format!(
            "wildbot bench: {} ticks (after {} warm-up), synthetic BTC/USD depth 10, paper mode\n\
             throughput   {:>12.0} ticks/s (1 / mean tick time; wall {:.3} s incl. timer reads)\n\
             per tick     p50 {} ns | p90 {} ns | p99 {} ns | p99.9 {} ns | max {} ns | mean {:.0} ns\n\
             allocations  {} during measured ticks\n\
             activity     {} checksums ok, {} orders placed, {} fills, {} intents\n",
            self.ticks,
            self.warmup_ticks,
            self.per_sec,
            self.wall_s,
            self.p50_ns,
            self.p90_ns,
            self.p99_ns,
            self.p999_ns,
            self.max_ns,
            self.mean_ns,
            self.allocations,
            self.checksums_ok,
            self.orders_placed,
            self.fills,
            self.intents
        )
    }
}
