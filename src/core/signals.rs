//! Derived market signals: microprice, EMA, momentum and rolling volatility.
//!
//! The microprice is exact ([`FinePrice`], integer): quotes are computed from it. EMA,
//! momentum and volatility are `f64`: they only gate decisions, never price an order.
//! Volatility uses a fixed ring of time buckets, so it costs O(1) per tick and fixed memory
//! however many ticks fall in the window.

use crate::core::book::Book;
use crate::core::money::{FINE, FinePrice};
use crate::core::time::Nanos;

/// Buckets per volatility window (a 60 s window has 0.5 s buckets).
pub const VOL_BUCKETS: usize = 120;

/// Microprice = (bid × ask_qty + ask × bid_qty) / (bid_qty + ask_qty), exact to 10^-6 of a
/// price unit. `None` when either side is empty.
#[must_use]
pub fn microprice(book: &Book) -> Option<FinePrice> {
    let (b, a) = (book.best_bid()?, book.best_ask()?);
    weighted_mid(b.price.0, b.qty.0, a.price.0, a.qty.0)
}

fn weighted_mid(bid: i64, bid_qty: u64, ask: i64, ask_qty: u64) -> Option<FinePrice> {
    let (bq, aq) = (i128::from(bid_qty), i128::from(ask_qty));
    let den = bq + aq;
    if den == 0 {
        return None;
    }
    let num = i128::from(bid) * aq + i128::from(ask) * bq;
    // 64-bit fast path (this runs on every tick; a 128-bit divide is a slow library call):
    // num·F / den = q·F + r·F / den with q, r the quotient and remainder of num / den.
    const F: i64 = FINE as i64;
    if let (Ok(n), Ok(d)) = (i64::try_from(num), i64::try_from(den))
        && n >= 0
        && let Some(rf) = (n % d).checked_mul(F)
        && let Some(qf) = (n / d).checked_mul(F)
    {
        return Some(FinePrice(i128::from(qf + rf / d)));
    }
    Some(FinePrice(num.checked_mul(FINE)? / den))
}

/// Exponential moving average with alpha = 2 / (N + 1), seeded by the first value.
#[derive(Debug, Clone, Copy)]
pub struct Ema {
    alpha: f64,
    value: Option<f64>,
}

impl Ema {
    /// An EMA over `window` ticks.
    #[must_use]
    pub fn new(window: u32) -> Ema {
        Ema {
            alpha: 2.0 / (f64::from(window) + 1.0),
            value: None,
        }
    }

    /// Adds one observation and returns the new average.
    pub fn update(&mut self, x: f64) -> f64 {
        let v = match self.value {
            None => x,
            Some(prev) => prev + self.alpha * (x - prev),
        };
        self.value = Some(v);
        v
    }

    /// The current average.
    #[must_use]
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    index: i64,
    min: f64,
    max: f64,
    sum: f64,
    count: u64,
}

impl Bucket {
    const EMPTY: Bucket = Bucket {
        index: i64::MIN,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        sum: 0.0,
        count: 0,
    };

    fn add(&mut self, x: f64) {
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        self.sum += x;
        self.count += 1;
    }

    fn merge(&mut self, o: &Bucket) {
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum += o.sum;
        self.count += o.count;
    }
}

/// (max − min) / mean of a series over a sliding time window, in bps.
///
/// The window is split into [`VOL_BUCKETS`] buckets. Closed buckets are aggregated once, when
/// a bucket closes; each tick merges that cached aggregate with the open bucket. The window
/// therefore covers between `window` and `window + window / VOL_BUCKETS` of history.
#[derive(Debug, Clone)]
pub struct Volatility {
    bucket_ns: Nanos,
    ring: [Bucket; VOL_BUCKETS],
    current: Bucket,
    closed: Bucket,
    /// Where the open bucket ends: until then a tick needs no 64-bit divide to find its bucket.
    current_end: Nanos,
}

impl Volatility {
    /// A window of `window_ns`.
    #[must_use]
    pub fn new(window_ns: Nanos) -> Volatility {
        Volatility {
            bucket_ns: (window_ns / VOL_BUCKETS as i64).max(1),
            ring: [Bucket::EMPTY; VOL_BUCKETS],
            current: Bucket::EMPTY,
            closed: Bucket::EMPTY,
            current_end: Nanos::MIN,
        }
    }

    /// Adds an observation at time `now` (time never runs backwards here: an older timestamp
    /// counts in the current bucket).
    pub fn update(&mut self, now: Nanos, x: f64) {
        if now < self.current_end {
            self.current.add(x);
            return;
        }
        let idx = now.div_euclid(self.bucket_ns);
        self.current_end = (idx + 1).saturating_mul(self.bucket_ns);
        if idx > self.current.index {
            if self.current.count > 0 {
                let slot = self.current.index.rem_euclid(VOL_BUCKETS as i64) as usize;
                self.ring[slot] = self.current;
            }
            self.current = Bucket {
                index: idx,
                ..Bucket::EMPTY
            };
            // Recompute the closed-bucket aggregate: O(VOL_BUCKETS) once per bucket, not per tick.
            let oldest = idx - VOL_BUCKETS as i64;
            let mut agg = Bucket::EMPTY;
            for b in &self.ring {
                if b.index > oldest && b.index < idx {
                    agg.merge(b);
                }
            }
            self.closed = agg;
        }
        self.current.add(x);
    }

    /// Current volatility in bps, or `None` before any observation.
    #[must_use]
    pub fn bps(&self) -> Option<f64> {
        let mut agg = self.closed;
        agg.merge(&self.current);
        if agg.count == 0 {
            return None;
        }
        let mean = agg.sum / agg.count as f64;
        if mean <= 0.0 {
            return None;
        }
        Some((agg.max - agg.min) / mean * 10_000.0)
    }
}

/// All signals, updated once per book tick.
#[derive(Debug, Clone)]
pub struct Signals {
    /// Exact fair price.
    pub micro: Option<FinePrice>,
    /// EMA of the microprice (quote currency).
    pub ema: Ema,
    /// (micro − EMA) / EMA in bps.
    pub momentum_bps: f64,
    /// Rolling volatility.
    pub vol: Volatility,
    price_precision: u8,
    /// The touch (bid, bid qty, ask, ask qty) `micro` and `micro_f64` were computed from: most
    /// updates change deeper levels only, and then the divides are not redone.
    touch: (i64, u64, i64, u64),
    micro_f64: f64,
}

impl Signals {
    /// Signals for the given EMA length and volatility window.
    #[must_use]
    pub fn new(ema_window: u32, vol_window_ns: Nanos, price_precision: u8) -> Signals {
        Signals {
            micro: None,
            ema: Ema::new(ema_window),
            momentum_bps: 0.0,
            vol: Volatility::new(vol_window_ns),
            price_precision,
            touch: (0, 0, 0, 0),
            micro_f64: 0.0,
        }
    }

    /// Updates every signal from the book at time `now`.
    pub fn on_book(&mut self, now: Nanos, book: &Book) {
        let (Some(b), Some(a)) = (book.best_bid(), book.best_ask()) else {
            return;
        };
        let touch = (b.price.0, b.qty.0, a.price.0, a.qty.0);
        let x = match self.micro {
            Some(_) if touch == self.touch => self.micro_f64,
            _ => {
                let Some(m) = weighted_mid(touch.0, touch.1, touch.2, touch.3) else {
                    return;
                };
                self.micro = Some(m);
                self.touch = touch;
                self.micro_f64 = m.to_f64(self.price_precision);
                self.micro_f64
            }
        };
        let ema = self.ema.update(x);
        self.momentum_bps = if ema > 0.0 {
            (x - ema) / ema * 10_000.0
        } else {
            0.0
        };
        self.vol.update(now, x);
    }

    /// The microprice in quote currency (display).
    #[must_use]
    pub fn micro_f64(&self) -> Option<f64> {
        self.micro.map(|m| m.to_f64(self.price_precision))
    }

    /// Volatility in bps (0 before data).
    #[must_use]
    pub fn vol_bps(&self) -> f64 {
        self.vol.bps().unwrap_or(0.0)
    }

    /// Changes the price precision (instrument update); the history is restarted because
    /// it was kept at the old scale.
    pub fn reset_precision(&mut self, price_precision: u8, ema_window: u32, vol_window_ns: Nanos) {
        *self = Signals::new(ema_window, vol_window_ns, price_precision);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::book::ChecksumFormat;
    use crate::core::time::SEC;

    /// The bucket arithmetic without the cached bucket end: the straightforward version.
    fn reference_update(v: &mut Volatility, now: Nanos, x: f64) {
        let idx = now.div_euclid(v.bucket_ns);
        if idx > v.current.index {
            if v.current.count > 0 {
                v.ring[v.current.index.rem_euclid(VOL_BUCKETS as i64) as usize] = v.current;
            }
            v.current = Bucket {
                index: idx,
                ..Bucket::EMPTY
            };
            let mut agg = Bucket::EMPTY;
            for b in &v.ring {
                if b.index > idx - VOL_BUCKETS as i64 && b.index < idx {
                    agg.merge(b);
                }
            }
            v.closed = agg;
        }
        v.current.add(x);
    }

    proptest::proptest! {
        #[test]
        fn volatility_equals_the_reference(steps in proptest::collection::vec(
            (-200_000_000i64..900_000_000, 59_000.0f64..61_000.0), 1..400)) {
            let (mut fast, mut slow) = (Volatility::new(60 * SEC), Volatility::new(60 * SEC));
            let mut now = 1_767_225_600 * SEC;
            for (dt, x) in steps {
                now += dt; // mostly forward, sometimes back, sometimes across many buckets
                fast.update(now, x);
                reference_update(&mut slow, now, x);
                proptest::prop_assert_eq!(fast.bps(), slow.bps());
            }
        }

        #[test]
        fn fast_microprice_equals_the_i128_expression(bid in 0i64..(1 << 40), bq in 0u64..(1 << 50),
                                                       ask in 0i64..(1 << 40), aq in 0u64..(1 << 50)) {
            let (b, a, bq_, aq_) = (i128::from(bid), i128::from(ask), i128::from(bq), i128::from(aq));
            let want = (bq + aq > 0).then(|| FinePrice((b * aq_ + a * bq_) * FINE / (bq_ + aq_)));
            proptest::prop_assert_eq!(weighted_mid(bid, bq, ask, aq), want);
        }
    }

    fn book(bid: (i64, u64), ask: (i64, u64)) -> Book {
        let mut b = Book::new(10, 1, 8, ChecksumFormat::AS_WRITTEN);
        crate::core::book::set_levels(&mut b, &[bid], &[ask]);
        b
    }

    #[test]
    fn microprice_leans_toward_the_thin_side() {
        // Equal sizes: the mid.
        assert_eq!(
            microprice(&book((1000, 5), (1002, 5))),
            Some(FinePrice(1001 * FINE))
        );
        // A heavy bid pushes the fair price toward the ask.
        let m = microprice(&book((1000, 9), (1002, 1))).unwrap();
        assert_eq!(m, FinePrice(1_001_800_000));
    }

    #[test]
    fn ema_alpha_is_two_over_n_plus_one() {
        let mut e = Ema::new(3); // alpha 0.5
        assert_eq!(e.update(10.0), 10.0);
        assert_eq!(e.update(20.0), 15.0);
        assert_eq!(e.update(20.0), 17.5);
    }

    #[test]
    fn volatility_is_range_over_mean_in_window() {
        let mut v = Volatility::new(60 * SEC);
        v.update(0, 100.0);
        v.update(SEC, 101.0);
        v.update(2 * SEC, 99.0);
        // range 2 over mean 100 = 200 bps
        assert!((v.bps().unwrap() - 200.0).abs() < 1e-9);
        // 70 s later the spike has left the window.
        v.update(72 * SEC, 100.0);
        v.update(73 * SEC, 100.0);
        assert_eq!(v.bps(), Some(0.0));
    }

    #[test]
    fn volatility_memory_is_fixed() {
        let mut v = Volatility::new(60 * SEC);
        for i in 0..1_000_000i64 {
            v.update(i * 1_000, 100.0 + (i % 7) as f64);
        }
        assert!(v.bps().unwrap() > 0.0);
        assert_eq!(
            std::mem::size_of_val(&v.ring),
            VOL_BUCKETS * std::mem::size_of::<Bucket>()
        );
    }
}
