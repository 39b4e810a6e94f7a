//! `wildbot bench`: the core's speed on a realistic synthetic BTC/USD stream.
//!
//! Frames are generated as raw JSON text in batches between measured stretches (so memory
//! stays bounded at any tick count), then each one goes through the whole core (parse → book →
//! signals → paper fills → strategy → risk → intents) and is timed on its own. Allocations are counted on this thread during the measured ticks only; they are
//! meaningful when the binary installs [`CountingAlloc`](crate::devtools::alloc::CountingAlloc).

use std::time::Instant;

use hdrhistogram::Histogram;

use crate::core::event::{Event, Intent, MAX_INTENTS_PER_EVENT};
use crate::core::{Core, Settings};
use crate::sim::synth::{SynthConfig, SynthMarket, generate};

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
    /// The process's peak resident memory, bytes (Linux `VmHWM`; 0 where unknown).
    pub peak_rss_bytes: u64,
}

/// Frames generated per batch: large enough that refilling is rare, small enough (~20 MB of
/// text) that `--ticks` of any size runs in the same memory.
const BATCH: usize = 65_536;

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
#[must_use]
pub fn run(ticks: u64, seed: u64) -> BenchReport {
    run_with_progress(ticks, seed, |_, _| {})
}

/// As [`run`], calling `progress(done, ticks)` between batches (outside the timed ticks).
///
/// # Panics
/// Never on valid input; the default config is known to be valid.
#[must_use]
pub fn run_with_progress(ticks: u64, seed: u64, mut progress: impl FnMut(u64, u64)) -> BenchReport {
    let warmup = (ticks / 10).clamp(1_000, 50_000);
    let mut market = SynthMarket::new(SynthConfig {
        seed,
        ..SynthConfig::default()
    });
    let mut core = Core::new(&Settings::default(), 1).expect("the default settings are valid");
    let mut out: Vec<Intent> = Vec::with_capacity(MAX_INTENTS_PER_EVENT);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).expect("valid bounds");
    let mut intents = 0u64;
    let mut batch: Vec<(i64, String)> = Vec::with_capacity(BATCH);

    let t = market.now();
    core.handle(
        t,
        Event::Frame(market.snapshot_frame().as_bytes()),
        &mut out,
    );
    out.clear();
    let mut left = warmup;
    while left > 0 {
        refill(&mut market, &mut batch, left);
        left -= batch.len() as u64;
        for (ts, f) in &batch {
            core.handle(*ts, Event::Frame(f.as_bytes()), &mut out);
            out.clear();
        }
    }
    let mut allocations = 0;
    let mut wall_s = 0.0;
    let mut done = 0u64;
    while done < ticks {
        refill(&mut market, &mut batch, ticks - done);
        let allocs_before = crate::devtools::alloc::thread_allocations();
        let wall = Instant::now();
        for (ts, f) in &batch {
            let t0 = Instant::now();
            core.handle(*ts, Event::Frame(f.as_bytes()), &mut out);
            let dt = t0.elapsed().as_nanos() as u64;
            hist.saturating_record(dt.max(1));
            intents += out.len() as u64;
            out.clear();
        }
        wall_s += wall.elapsed().as_secs_f64();
        allocations += crate::devtools::alloc::thread_allocations() - allocs_before;
        done += batch.len() as u64;
        progress(done, ticks);
    }
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
        peak_rss_bytes: peak_rss_bytes(),
    }
}

/// The next at most `BATCH` (and at most `left`) frames of the market, reusing the batch.
fn refill(market: &mut SynthMarket, batch: &mut Vec<(i64, String)>, left: u64) {
    batch.clear();
    let n = (left as usize).min(BATCH);
    batch.extend((0..n).map(|_| market.next_frame()));
}

/// `VmHWM` of this process, bytes; 0 where /proc is not there.
#[must_use]
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
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
             activity     {} checksums ok, {} orders placed, {} fills, {} intents\n\
             memory       {:.1} MiB peak resident\n",
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
            self.intents,
            self.peak_rss_bytes as f64 / (1024.0 * 1024.0)
        )
    }
}
