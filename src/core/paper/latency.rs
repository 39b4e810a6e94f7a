//! Order latency models: how long after it is placed a paper order reaches the venue (and is
//! checked for post-only, joins the queue, may fill).

use crate::core::time::Nanos;

/// The latency of each new order.
pub trait LatencyModel {
    /// The next order's latency, ns (never negative).
    fn next_latency(&mut self) -> Nanos;
}

/// The same latency for every order (`order_latency_ms + feed_latency_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConstantLatency(pub Nanos);

impl LatencyModel for ConstantLatency {
    fn next_latency(&mut self) -> Nanos {
        self.0.max(0)
    }
}

/// Percentiles of a measured latency, as a live session's summary reports `intent_to_ack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LatencyQuantiles {
    /// Median, ns.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest.
    pub max_ns: u64,
}

/// Latencies drawn from a measured distribution: the inverse of the CDF through the
/// percentiles (linear between them; the fastest half is taken at the median, since the
/// summary does not report below it: a conservative, later arrival), plus a fixed extra (the
/// feed latency). Draws come from a seeded generator, so a replay stays deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedLatency {
    q: LatencyQuantiles,
    extra: Nanos,
    state: u64,
}

impl RecordedLatency {
    /// A model of `q` plus `extra`, drawing from `seed`.
    #[must_use]
    pub fn new(q: LatencyQuantiles, extra: Nanos, seed: u64) -> RecordedLatency {
        RecordedLatency {
            q,
            extra: extra.max(0),
            state: seed ^ 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// splitmix64: small, fast, and the same on every machine.
    fn uniform(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The latency at cumulative probability `u` in [0, 1).
    #[must_use]
    pub fn at(&self, u: f64) -> Nanos {
        let q = &self.q;
        let points = [
            (0.5, q.p50_ns),
            (0.9, q.p90_ns.max(q.p50_ns)),
            (0.99, q.p99_ns.max(q.p90_ns)),
            (0.999, q.p999_ns.max(q.p99_ns)),
            (1.0, q.max_ns.max(q.p999_ns)),
        ];
        if u <= 0.5 {
            return q.p50_ns as Nanos;
        }
        let mut prev = points[0];
        for p in points {
            if u <= p.0 {
                let f = (u - prev.0) / (p.0 - prev.0).max(f64::EPSILON);
                return (prev.1 as f64 + f * (p.1 as f64 - prev.1 as f64)) as Nanos;
            }
            prev = p;
        }
        points[4].1 as Nanos
    }
}

impl LatencyModel for RecordedLatency {
    fn next_latency(&mut self) -> Nanos {
        let u = self.uniform();
        self.at(u) + self.extra
    }
}

/// The model a venue runs (an enum, so the core needs no `dyn` and no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderLatency {
    /// [`ConstantLatency`].
    Constant(ConstantLatency),
    /// [`RecordedLatency`].
    Recorded(RecordedLatency),
}

impl LatencyModel for OrderLatency {
    fn next_latency(&mut self) -> Nanos {
        match self {
            OrderLatency::Constant(m) => m.next_latency(),
            OrderLatency::Recorded(m) => m.next_latency(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: LatencyQuantiles = LatencyQuantiles {
        p50_ns: 200_000,
        p90_ns: 400_000,
        p99_ns: 2_000_000,
        p999_ns: 10_000_000,
        max_ns: 50_000_000,
    };

    #[test]
    fn the_inverse_cdf_passes_through_the_percentiles() {
        let m = RecordedLatency::new(Q, 0, 1);
        assert_eq!(m.at(0.1), 200_000, "the fastest half at the median");
        assert_eq!(m.at(0.5), 200_000);
        assert_eq!(m.at(0.7), 300_000);
        assert_eq!(m.at(0.9), 400_000);
        assert_eq!(m.at(0.999), 10_000_000);
        assert!((m.at(0.999_999) - 49_960_000).abs() <= 1);
    }

    #[test]
    fn draws_follow_the_recorded_distribution_and_repeat_for_a_seed() {
        let mut m = RecordedLatency::new(Q, 1_000, 7);
        let mut v: Vec<Nanos> = (0..100_000).map(|_| m.next_latency()).collect();
        let mut again = RecordedLatency::new(Q, 1_000, 7);
        assert_eq!(
            v[..100],
            (0..100).map(|_| again.next_latency()).collect::<Vec<_>>()
        );
        v.sort_unstable();
        let pct = |p: f64| v[(p * v.len() as f64) as usize];
        // Within 2 % of each percentile (plus the fixed extra).
        for (p, want) in [(0.9, 401_000.0), (0.99, 2_001_000.0)] {
            let got = pct(p) as f64;
            assert!((got - want).abs() / want < 0.02, "p{p}: {got} vs {want}");
        }
        assert!(*v.first().unwrap() >= 201_000 && *v.last().unwrap() <= 50_001_000);
        let mut c = OrderLatency::Constant(ConstantLatency(5));
        assert_eq!(c.next_latency(), 5);
    }
}
