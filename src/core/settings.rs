//! What the core can be told: the strategy, risk and paper-venue knobs, in the units a person
//! writes them (decimals, basis points, milliseconds).
//!
//! The app's configuration file maps itself onto this struct; the core never sees the file,
//! its parsing or the settings of other layers (URLs, credentials, the dashboard). The
//! defaults are the seed strategy's, the same as the config file's (a test in `app::config`
//! proves they agree). [`Params`](crate::core::strategy::Params) derives the integer values
//! the hot path uses from these, once.

use crate::core::money::{Decimal, NumError};
use crate::core::paper::FillModel;
use crate::core::paper::latency::LatencyQuantiles;
use crate::core::ratecounter::Tier;

/// What the drawdown stop does with an open position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDrawdown {
    /// Cancel everything, force-exit the bot's own position until flat, then stop.
    #[default]
    Flatten,
    /// Cancel everything and keep the position; equity is still marked and alerted.
    Hold,
}

/// The core's settings for one symbol (see `config/wildbot.toml` for each key's meaning).
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // each field is the config key of the same name
pub struct Settings {
    /// Live trading: order intents go to an exchange; otherwise the paper venue fills them.
    pub live_mode: bool,
    /// WebSocket symbol, e.g. `BTC/USD`.
    pub symbol: String,
    pub book_depth: u16,
    pub price_precision: u8,
    pub qty_precision: u8,
    pub tick_size: Decimal,
    pub qty_min: Decimal,
    pub cost_min: Decimal,
    pub ema_window: u32,
    pub momentum_threshold_bps: f64,
    pub momentum_filter_enabled: bool,
    pub vol_window_s: u32,
    pub min_volatility_bps: f64,
    pub entry_offset_bps: f64,
    pub exit_offset_bps: f64,
    pub maker_fee_bps: f64,
    pub taker_fee_bps: f64,
    pub skew_factor: f64,
    pub order_qty: Decimal,
    pub max_position: Decimal,
    pub max_spread_bps: f64,
    pub stale_order_ms: u64,
    pub fill_cooldown_ms: u64,
    pub stop_loss_bps: f64,
    pub max_hold_s: u64,
    pub max_drawdown_pct: f64,
    pub exit_slippage_bps: f64,
    pub starting_capital: Decimal,
    /// Live: base units of the account that are not the bot's (`None`: the balance at start).
    pub base_baseline: Option<Decimal>,
    /// Live: most quote currency the bot may commit (`None`: all of the available balance).
    pub quote_budget: Option<Decimal>,
    /// What the drawdown stop does with an open position.
    pub on_drawdown: OnDrawdown,
    /// A resting exit is replaced only when its target moved by at least this many ticks.
    pub requote_ticks: u32,
    /// Profit target: the exit is never closer to the average entry than 2 x maker fee + this.
    pub profit_bps: f64,
    /// Kraken's trading rate counter the core stays within (requotes wait for room).
    pub rate_tier: Tier,
    /// How the paper venue decides a fill.
    pub fill_model: FillModel,
    /// Paper orders reach the simulated venue this long after they are placed.
    pub order_latency_ms: u64,
    /// The feed shows the market this much late (simulated, added to the order latency).
    pub feed_latency_ms: u64,
    /// Paper order latencies drawn from these measured percentiles (plus the feed latency)
    /// instead of `order_latency_ms`.
    pub recorded_latency: Option<LatencyQuantiles>,
}

/// The seed strategy's decimal defaults (literals: parsing cannot fail).
fn dec(text: &str) -> Decimal {
    Decimal::parse_str(text).unwrap_or(Decimal {
        mantissa: 0,
        scale: 0,
        negative: false,
    })
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            live_mode: false,
            symbol: "BTC/USD".into(),
            book_depth: 10,
            price_precision: 1,
            qty_precision: 8,
            tick_size: dec("0.1"),
            qty_min: dec("0.0001"),
            cost_min: dec("0.5"),
            ema_window: 50,
            momentum_threshold_bps: 5.0,
            momentum_filter_enabled: true,
            vol_window_s: 60,
            min_volatility_bps: 20.0,
            entry_offset_bps: 20.0,
            exit_offset_bps: 36.0,
            maker_fee_bps: 16.0,
            taker_fee_bps: 26.0,
            skew_factor: 0.5,
            order_qty: dec("0.001"),
            max_position: dec("0.005"),
            max_spread_bps: 50.0,
            stale_order_ms: 5000,
            fill_cooldown_ms: 200,
            stop_loss_bps: 20.0,
            max_hold_s: 120,
            max_drawdown_pct: 50.0,
            exit_slippage_bps: 10.0,
            starting_capital: dec("10000"),
            base_baseline: None,
            quote_budget: None,
            on_drawdown: OnDrawdown::Flatten,
            requote_ticks: 5,
            profit_bps: 4.0,
            rate_tier: Tier::Starter,
            fill_model: FillModel::Cross,
            order_latency_ms: 0,
            recorded_latency: None,
            feed_latency_ms: 0,
        }
    }
}

/// A setting the core cannot use, naming its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// The value has more decimals than the instrument allows, or does not fit.
    #[error("{key}: {error} at {unit} precision {precision}")]
    Precision {
        /// The setting's key.
        key: &'static str,
        /// Why the decimal could not be expressed.
        error: NumError,
        /// `price` or `qty`.
        unit: &'static str,
        /// The instrument's decimals for that unit.
        precision: u8,
    },
    /// The value is outside what the core's integers hold.
    #[error("{key}: out of range")]
    OutOfRange {
        /// The setting's key.
        key: &'static str,
    },
}
