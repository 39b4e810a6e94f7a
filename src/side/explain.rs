//! Why the bot is waiting, in words a trader reads at a glance: the rule, its threshold and
//! the value now ("volatility 15.2 bps ≤ 20 bps"), for the dashboard and Telegram's /status.

use crate::core::engine::TradingState;
use crate::core::event::Rule;
use crate::core::money::Qty;
use crate::side::status::StatusSnapshot;

/// The thresholds of the rules that pause quoting, from the config.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PauseRules {
    /// `min_volatility_bps`.
    pub min_volatility_bps: f64,
    /// `max_spread_bps`.
    pub max_spread_bps: f64,
    /// `momentum_threshold_bps`.
    pub momentum_threshold_bps: f64,
    /// `max_position`, base units.
    pub max_position: f64,
    /// `fill_cooldown_ms`.
    pub fill_cooldown_ms: u64,
    /// `max_drawdown_pct`.
    pub max_drawdown_pct: f64,
}

/// The book's spread in bps of the microprice.
#[must_use]
pub fn spread_bps(s: &StatusSnapshot) -> Option<f64> {
    let pp = s.precision.price;
    match (s.best_bid, s.best_ask, s.microprice) {
        (Some(b), Some(a), Some(m)) if m > 0.0 => {
            Some((a.to_f64(pp) - b.to_f64(pp)) / m * 10_000.0)
        }
        _ => None,
    }
}

/// What holds the bot back now, with the threshold and the current value; `None` while it
/// quotes.
#[must_use]
pub fn pause_detail(s: &StatusSnapshot, rules: &PauseRules, base: &str) -> Option<String> {
    match s.state {
        TradingState::Paused(r) => Some(rule_detail(r, s, rules, base)),
        TradingState::Stopped => Some(format!(
            "drawdown {:.2} % reached the {} % stop; trading stopped",
            s.max_drawdown_ppm as f64 / 10_000.0,
            rules.max_drawdown_pct
        )),
        TradingState::Disconnected => Some("the market feed is down".into()),
        TradingState::WaitingForBook => Some("waiting for a valid order book".into()),
        TradingState::Quoting => None,
    }
}

/// One rule in words, with numbers where the rule has them.
#[must_use]
pub fn rule_detail(r: Rule, s: &StatusSnapshot, rules: &PauseRules, base: &str) -> String {
    match r {
        Rule::Volatility => format!(
            "volatility {:.1} bps ≤ {} bps",
            s.volatility_bps, rules.min_volatility_bps
        ),
        Rule::Spread => match spread_bps(s) {
            Some(v) => format!("spread {v:.1} bps > {} bps", rules.max_spread_bps),
            None => format!("spread unknown (limit {} bps)", rules.max_spread_bps),
        },
        Rule::MomentumUp => format!(
            "momentum {:+.1} bps > {} bps: no sell",
            s.momentum_bps, rules.momentum_threshold_bps
        ),
        Rule::MomentumDown => format!(
            "momentum {:+.1} bps < -{} bps: no buy",
            s.momentum_bps, rules.momentum_threshold_bps
        ),
        Rule::PositionLimit => {
            let p = Qty(s.position.unsigned_abs()).to_f64(s.precision.qty);
            format!(
                "position {p:.8} {base} at the limit {} {base}",
                rules.max_position
            )
        }
        Rule::Cooldown => format!("within {} ms of the last fill", rules.fill_cooldown_ms),
        Rule::Drawdown => format!(
            "drawdown {:.2} % ≥ {} %",
            s.drawdown_ppm as f64 / 10_000.0,
            rules.max_drawdown_pct
        ),
        other => words(other).to_string(),
    }
}

/// The rules without a threshold, in words.
fn words(r: Rule) -> &'static str {
    match r {
        Rule::BookInvalid => "the order book is not valid",
        Rule::Affordability => "not enough cash or base for the order",
        Rule::MinSize => "below the instrument's minimum size or cost",
        Rule::StopLoss => "stop loss: exiting the position",
        Rule::TimeStop => "held too long: exiting the position",
        Rule::Stale => "requoting an order that went stale",
        Rule::SlotsFull => "no order slot free",
        Rule::ExchangeStatus => "the exchange or the pair is not online",
        Rule::Rejected => "the exchange refused an order; waiting before the next",
        Rule::Drift => "the exchange's balance disagrees with the bot's books; no new entries",
        Rule::Unfunded => "waiting for the account's balances",
        Rule::RateRoom => "Kraken's trading rate counter is full",
        Rule::Reconciling => "reconciling orders after the private stream reconnected",
        Rule::Operator => "paused by the operator (/resume to quote again)",
        _ => "held back by a rule",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::money::{Precision, Price};

    fn rules() -> PauseRules {
        PauseRules {
            min_volatility_bps: 20.0,
            max_spread_bps: 50.0,
            momentum_threshold_bps: 5.0,
            max_position: 0.002,
            fill_cooldown_ms: 200,
            max_drawdown_pct: 5.0,
        }
    }

    #[test]
    fn a_pause_names_its_threshold_and_the_value_now() {
        let mut s = StatusSnapshot::blank();
        s.volatility_bps = 15.23;
        s.state = TradingState::Paused(Rule::Volatility);
        assert_eq!(
            pause_detail(&s, &rules(), "BTC").unwrap(),
            "volatility 15.2 bps ≤ 20 bps"
        );
        s.precision = Precision { price: 1, qty: 8 };
        s.best_bid = Some(Price(990_000)); // 99 000.0
        s.best_ask = Some(Price(1_000_000)); // 100 000.0
        s.microprice = Some(99_500.0);
        s.state = TradingState::Paused(Rule::Spread);
        assert_eq!(
            pause_detail(&s, &rules(), "BTC").unwrap(),
            "spread 100.5 bps > 50 bps"
        );
        s.momentum_bps = -7.04;
        s.state = TradingState::Paused(Rule::MomentumDown);
        assert_eq!(
            pause_detail(&s, &rules(), "BTC").unwrap(),
            "momentum -7.0 bps < -5 bps: no buy"
        );
        s.position = 200_000;
        s.state = TradingState::Paused(Rule::PositionLimit);
        assert_eq!(
            pause_detail(&s, &rules(), "BTC").unwrap(),
            "position 0.00200000 BTC at the limit 0.002 BTC"
        );
        s.state = TradingState::Quoting;
        assert_eq!(pause_detail(&s, &rules(), "BTC"), None);
    }

    #[test]
    fn every_rule_reads_as_words() {
        let s = StatusSnapshot::blank();
        for r in Rule::ALL {
            let t = rule_detail(r, &s, &rules(), "BTC");
            assert!(!t.contains('_') && t.len() > 8, "{r:?}: {t}");
        }
    }
}
