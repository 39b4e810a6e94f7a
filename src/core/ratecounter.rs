//! Kraken's per-pair trading rate counter, modelled locally: the core decides requotes within
//! its room, and the worker holds back a request before Kraken answers
//! `EOrder:Rate limit exceeded`.
//!
//! Kraken's rules (kraken-facts.md §6): adding an order costs 1; cancelling or amending costs
//! more the younger the order is; the counter decays continuously at the tier's rate; going
//! over the tier's threshold is refused. Pure: the caller passes the time.

use crate::core::time::{Nanos, SEC};

/// Account verification tier (config `rate_tier`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Threshold 60, decay 1/s.
    Starter,
    /// Threshold 125, decay 2.34/s.
    Intermediate,
    /// Threshold 180, decay 3.75/s.
    Pro,
}

impl Tier {
    /// Lowercase name, as `rate_tier` is written.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Tier::Starter => "starter",
            Tier::Intermediate => "intermediate",
            Tier::Pro => "pro",
        }
    }

    /// The tier whose threshold Kraken announced (`maxratecount`): the largest not above it.
    #[must_use]
    pub fn from_max(max: u32) -> Tier {
        match max {
            m if m >= 180 => Tier::Pro,
            m if m >= 125 => Tier::Intermediate,
            _ => Tier::Starter,
        }
    }

    /// Counter value Kraken refuses above.
    #[must_use]
    pub fn threshold(self) -> f64 {
        match self {
            Tier::Starter => 60.0,
            Tier::Intermediate => 125.0,
            Tier::Pro => 180.0,
        }
    }

    /// Decay per second.
    #[must_use]
    pub fn decay_per_s(self) -> f64 {
        match self {
            Tier::Starter => 1.0,
            Tier::Intermediate => 2.34,
            Tier::Pro => 3.75,
        }
    }
}

/// Cost of adding an order.
pub const ADD_COST: f64 = 1.0;

/// Cost of cancelling an order that has rested `age`.
#[must_use]
pub fn cancel_cost(age: Nanos) -> f64 {
    match age / SEC {
        0..5 => 8.0,
        5..10 => 6.0,
        10..15 => 5.0,
        15..45 => 4.0,
        45..90 => 2.0,
        90..300 => 1.0,
        _ => 0.0,
    }
}

/// Cost of amending an order that has rested `age` (never below 1).
#[must_use]
pub fn amend_cost(age: Nanos) -> f64 {
    match age / SEC {
        0..5 => 4.0,
        5..10 => 3.0,
        10..15 => 2.0,
        _ => 1.0,
    }
}

/// The local model of one pair's counter.
#[derive(Debug, Clone)]
pub struct TradingCounter {
    tier: Tier,
    value: f64,
    at: Nanos,
    /// Room kept free for cancels, which must never be held back.
    reserve: f64,
}

impl TradingCounter {
    /// A counter at zero. `reserve` is kept free for cancels: new orders and amends are held
    /// back when they would eat into it.
    #[must_use]
    pub fn new(tier: Tier, reserve: f64) -> TradingCounter {
        TradingCounter {
            tier,
            value: 0.0,
            at: 0,
            reserve,
        }
    }

    /// The counter now.
    pub fn value(&mut self, now: Nanos) -> f64 {
        if now > self.at {
            let dt = (now - self.at) as f64 / SEC as f64;
            self.value = (self.value - dt * self.tier.decay_per_s()).max(0.0);
            self.at = now;
        }
        self.value
    }

    /// Whether an optional request (add, amend) of `cost` fits without touching the reserve.
    pub fn allows(&mut self, now: Nanos, cost: f64) -> bool {
        self.value(now) + cost <= self.tier.threshold() - self.reserve
    }

    /// Seconds until `cost` fits (0 when it already does).
    pub fn wait_ns(&mut self, now: Nanos, cost: f64) -> Nanos {
        let over = self.value(now) + cost - (self.tier.threshold() - self.reserve);
        if over <= 0.0 {
            0
        } else {
            (over / self.tier.decay_per_s() * SEC as f64).ceil() as Nanos
        }
    }

    /// The account's tier as the exchange announced it; the counter keeps its value.
    pub fn set_tier(&mut self, now: Nanos, tier: Tier, reserve: f64) {
        self.value(now);
        self.tier = tier;
        self.reserve = reserve;
    }

    /// The tier in use.
    #[must_use]
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// The exchange's own value of the counter replaces the local model's.
    pub fn observe(&mut self, now: Nanos, value: f64) {
        self.value(now);
        self.value = value.max(0.0);
    }

    /// Books a request that was sent.
    pub fn spend(&mut self, now: Nanos, cost: f64) {
        self.value(now);
        self.value += cost;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_follow_krakens_table() {
        assert_eq!(cancel_cost(0), 8.0);
        assert_eq!(cancel_cost(4 * SEC + SEC / 2), 8.0);
        assert_eq!(cancel_cost(5 * SEC), 6.0);
        assert_eq!(cancel_cost(44 * SEC), 4.0);
        assert_eq!(cancel_cost(45 * SEC), 2.0);
        assert_eq!(cancel_cost(299 * SEC), 1.0);
        assert_eq!(cancel_cost(300 * SEC), 0.0);
        assert_eq!(amend_cost(0), 4.0);
        assert_eq!(amend_cost(12 * SEC), 2.0);
        assert_eq!(amend_cost(3_600 * SEC), 1.0, "never below 1");
    }

    #[test]
    fn requotes_are_held_back_before_the_threshold_and_released_by_decay() {
        let mut c = TradingCounter::new(Tier::Starter, 10.0);
        let t0 = 1_000 * SEC;
        // Young cancels + adds: 9 per requote.
        let mut sent = 0;
        while c.allows(t0, 9.0) {
            c.spend(t0, 9.0);
            sent += 1;
        }
        assert_eq!(sent, 5, "45 of the 50 usable");
        assert!(!c.allows(t0, 9.0));
        // 4 more units decay in 4 s at 1/s.
        assert_eq!(c.wait_ns(t0, 9.0), 4 * SEC);
        assert!(c.allows(t0 + 4 * SEC, 9.0));
        // Pro decays faster.
        let mut p = TradingCounter::new(Tier::Pro, 0.0);
        p.spend(t0, 180.0);
        assert!((p.value(t0 + 2 * SEC) - 172.5).abs() < 1e-9);
        assert_eq!(p.value(t0 + 100 * SEC), 0.0, "never below zero");
    }
}
