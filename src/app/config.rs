//! WildBot's configuration: one flat TOML table whose keys are the rule names of the seed
//! strategy (see `config/wildbot.toml` for every key with its default and meaning).
//!
//! Loading is strict: an unknown key, a value of the wrong type, or a value that would make
//! the bot do something stupid (a zero order size, offsets that cannot pay the fees, a depth
//! Kraken does not offer) is an error that names the key and says why. Money values
//! (`order_qty`, `max_position`, `starting_capital`, ...) are exact decimals; they may be
//! written as TOML numbers or strings and are never rounded through binary floating point.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::core::book::KRAKEN_DEPTHS;
use crate::core::money::{Decimal, NumError, Precision, write_fixed};
use crate::core::paper::FillModel;
use crate::core::paper::latency::LatencyQuantiles;
use crate::core::ratecounter::Tier;
use crate::core::settings::{OnDrawdown, Settings};
use crate::core::time::MS;
use crate::exec::worker::WorkerConfig;
use crate::exec::ws_entry::OrderTransport;
use crate::feed::FeedSettings;
use crate::side::dashboard::{DashboardConfig, DashboardError, check_bind};
use crate::side::explain::PauseRules;

/// A decimal config value kept as its exact text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecimalValue {
    text: String,
    value: Decimal,
}

impl DecimalValue {
    /// Parses decimal text.
    ///
    /// # Errors
    /// The text is not a number.
    pub fn parse(text: &str) -> Result<DecimalValue, NumError> {
        let value = Decimal::parse_str(text.trim())?;
        Ok(DecimalValue {
            text: text.trim().to_string(),
            value,
        })
    }

    /// The decimal written in its plain form (`0.001`, `10000`).
    #[must_use]
    pub fn from_decimal(value: Decimal) -> DecimalValue {
        let signed = i128::from(value.mantissa) * if value.negative { -1 } else { 1 };
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = write_fixed(&mut text, signed, value.scale);
        DecimalValue { text, value }
    }

    /// The exact decimal.
    #[must_use]
    pub fn decimal(&self) -> Decimal {
        self.value
    }

    /// The text as written (or as the shortest exact form of a TOML float).
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    fn is_zero(&self) -> bool {
        self.value.mantissa == 0
    }
}

impl fmt::Display for DecimalValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for DecimalValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = DecimalValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal number (e.g. 0.001 or \"0.001\")")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<DecimalValue, E> {
                DecimalValue::parse(s)
                    .map_err(|e| E::custom(format!("`{s}` is not a decimal number ({e})")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<DecimalValue, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<DecimalValue, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<DecimalValue, E> {
                if !v.is_finite() {
                    return Err(E::custom("not a finite number"));
                }
                // Rust prints the shortest text that reads back as the same f64, never with an
                // exponent: for any decimal a person types (0.001, 10000.5) that is the text itself.
                self.visit_str(&format!("{v}"))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for DecimalValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// A decimal amount or a word meaning "decide at start" (`"auto"` for `base_baseline`,
/// `"all"` for `quote_budget`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmountOr<const AUTO: bool> {
    /// `None`: the word.
    pub amount: Option<DecimalValue>,
}

impl<const AUTO: bool> AmountOr<AUTO> {
    const WORD: &'static str = if AUTO { "auto" } else { "all" };

    /// The exact amount, `None` for the word.
    #[must_use]
    pub fn decimal(&self) -> Option<Decimal> {
        self.amount.as_ref().map(DecimalValue::decimal)
    }
}

impl<const AUTO: bool> Default for AmountOr<AUTO> {
    fn default() -> Self {
        AmountOr { amount: None }
    }
}

impl<'de, const AUTO: bool> Deserialize<'de> for AmountOr<AUTO> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = toml::Value::deserialize(d)?;
        if v.as_str() == Some(Self::WORD) {
            return Ok(AmountOr { amount: None });
        }
        DecimalValue::deserialize(v)
            .map(|a| AmountOr { amount: Some(a) })
            .map_err(|e| serde::de::Error::custom(format!("expected \"{}\" or {e}", Self::WORD)))
    }
}

impl<const AUTO: bool> Serialize for AmountOr<AUTO> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.amount {
            Some(a) => a.serialize(s),
            None => s.serialize_str(Self::WORD),
        }
    }
}

/// Keys that would hold credentials (the dashboard token, which guards only the dashboard, is
/// a setting).
fn looks_like_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k != "dashboard_token"
        && [
            "secret",
            "api_key",
            "apikey",
            "password",
            "token",
            "private_key",
        ]
        .iter()
        .any(|s| k.contains(s))
}

/// Every setting, with the seed strategy's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[allow(missing_docs)] // each key is documented in config/wildbot.toml and README.md
pub struct Config {
    // Market and instrument.
    pub live_mode: bool,
    #[serde(alias = "ws_symbol")]
    pub symbol: String,
    pub rest_pair: String,
    pub ws_url: String,
    pub rest_url: String,
    pub book_depth: u16,
    pub price_precision: u8,
    pub qty_precision: u8,
    pub tick_size: DecimalValue,
    pub qty_min: DecimalValue,
    pub cost_min: DecimalValue,
    // Fair price and signals.
    pub ema_window: u32,
    pub momentum_threshold_bps: f64,
    pub momentum_filter_enabled: bool,
    pub vol_window_s: u32,
    pub min_volatility_bps: f64,
    // Quoting.
    pub entry_offset_bps: f64,
    pub exit_offset_bps: f64,
    pub maker_fee_bps: f64,
    pub profit_bps: f64,
    pub skew_factor: f64,
    pub order_qty: DecimalValue,
    // Risk.
    pub max_position: DecimalValue,
    pub max_spread_bps: f64,
    pub stale_order_ms: u64,
    pub fill_cooldown_ms: u64,
    pub stop_loss_bps: f64,
    pub max_hold_s: u64,
    pub max_drawdown_pct: f64,
    pub exit_slippage_bps: f64,
    pub taker_fee_bps: f64,
    // Accounting.
    pub starting_capital: DecimalValue,
    /// Live: base units of the account that are not the bot's: `"auto"` (the balance at
    /// start) or an exact amount. The bot never sells into them.
    pub base_baseline: AmountOr<true>,
    /// Live: most quote currency the bot may commit: `"all"` (the available balance) or an
    /// exact amount.
    pub quote_budget: AmountOr<false>,
    /// Drawdown stop: `flatten` (cancel, force-exit the own position, stop) or `hold`.
    pub on_drawdown: OnDrawdown,
    /// A resting exit is replaced only when its target moved by at least this many ticks.
    pub requote_ticks: u32,
    /// Paper fill model: `cross` or `queue`; absent → cross for `run`/`demo`, queue for replay.
    pub fill_model: Option<FillModel>,
    /// Paper orders reach the (simulated) venue this long after they are placed.
    pub order_latency_ms: u64,
    /// Extra market-data delay to simulate: the feed shows the market this much later.
    pub feed_latency_ms: u64,
    /// Paper order latency drawn from a live session's measured `intent_to_ack` (the path of
    /// its `--json` summary); `""`: `order_latency_ms` for every order.
    pub order_latency_from: String,
    // Live operation.
    pub rest_min_interval_ms: u64,
    /// Kraken's authenticated WebSocket v2 (orders and fills in real time); empty: REST
    /// polling only.
    pub ws_auth_url: String,
    /// Where orders go: `rest` (the REST worker) or `ws` (the authenticated WebSocket from
    /// the feed thread, REST while it is down).
    pub order_transport: OrderTransport,
    pub fill_poll_s: u64,
    /// QueryOrders interval while the private stream is healthy (a cross-check).
    pub fill_poll_backstop_s: u64,
    pub balance_refresh_s: u64,
    pub rate_tier: Tier,
    /// Dead man's switch: CancelAllOrdersAfter every this many seconds (0: off).
    pub deadman_refresh_s: u64,
    pub deadman_timeout_s: u64,
    pub rest_timeout_ms: u64,
    // Feed thread.
    /// CPU core to pin the feed thread to; absent → unpinned.
    pub core_id: Option<usize>,
    pub feed_timeout_ms: u64,
    pub ping_interval_ms: u64,
    /// Extra PEM root certificate trusted for `wss://` (a private endpoint, the simulator).
    pub ws_ca_file: Option<String>,
    pub log_level: String,
    /// Time parse, book and strategy of every frame (three counter reads, ~0.1 µs a frame).
    pub stage_timing: bool,
    // Operator surface.
    /// Dashboard address (empty: no dashboard).
    pub dashboard_bind: String,
    /// Token non-loopback dashboard clients must send (required for a non-loopback bind).
    pub dashboard_token: Option<String>,
    /// Telegram Bot API base URL (tests point it at a local server).
    pub telegram_api_url: String,
    /// Obey commands (/status, /pause, /flatten, ...) from `TELEGRAM_CHAT_ID`.
    pub telegram_commands: bool,
    /// Fill journal (JSON lines): every order and fill, restored on the next start. `None`
    /// or empty: no journal.
    pub journal_path: Option<String>,
    /// Records between journal snapshots (the file is rewritten as one snapshot then).
    pub journal_snapshot_every: u64,
    /// Set by `wildbot demo`, never by a file: the venue is the Kraken simulator (the
    /// dashboard says so beside the LIVE badge).
    #[serde(skip)]
    pub simulator: bool,
}

impl Default for Config {
    /// The seed strategy's defaults: the core's own ([`Settings::default`]) for every key the
    /// core reads, and the operator defaults for the rest.
    fn default() -> Config {
        let s = Settings::default();
        Config {
            live_mode: s.live_mode,
            symbol: s.symbol.clone(),
            rest_pair: "XBTUSD".into(),
            ws_url: "wss://ws.kraken.com/v2".into(),
            rest_url: "https://api.kraken.com".into(),
            book_depth: s.book_depth,
            price_precision: s.price_precision,
            qty_precision: s.qty_precision,
            tick_size: DecimalValue::from_decimal(s.tick_size),
            qty_min: DecimalValue::from_decimal(s.qty_min),
            cost_min: DecimalValue::from_decimal(s.cost_min),
            ema_window: s.ema_window,
            momentum_threshold_bps: s.momentum_threshold_bps,
            momentum_filter_enabled: s.momentum_filter_enabled,
            vol_window_s: s.vol_window_s,
            min_volatility_bps: s.min_volatility_bps,
            entry_offset_bps: s.entry_offset_bps,
            exit_offset_bps: s.exit_offset_bps,
            maker_fee_bps: s.maker_fee_bps,
            profit_bps: s.profit_bps,
            skew_factor: s.skew_factor,
            order_qty: DecimalValue::from_decimal(s.order_qty),
            max_position: DecimalValue::from_decimal(s.max_position),
            max_spread_bps: s.max_spread_bps,
            stale_order_ms: s.stale_order_ms,
            fill_cooldown_ms: s.fill_cooldown_ms,
            stop_loss_bps: s.stop_loss_bps,
            max_hold_s: s.max_hold_s,
            max_drawdown_pct: s.max_drawdown_pct,
            exit_slippage_bps: s.exit_slippage_bps,
            taker_fee_bps: s.taker_fee_bps,
            starting_capital: DecimalValue::from_decimal(s.starting_capital),
            base_baseline: AmountOr::default(),
            quote_budget: AmountOr::default(),
            on_drawdown: s.on_drawdown,
            requote_ticks: s.requote_ticks,
            // Absent: cross for a session, queue for a replay.
            fill_model: None,
            order_latency_ms: s.order_latency_ms,
            feed_latency_ms: s.feed_latency_ms,
            order_latency_from: String::new(),
            rest_min_interval_ms: 1000,
            ws_auth_url: "wss://ws-auth.kraken.com/v2".into(),
            order_transport: OrderTransport::Rest,
            fill_poll_s: 5,
            fill_poll_backstop_s: 60,
            balance_refresh_s: 300,
            rate_tier: s.rate_tier,
            deadman_refresh_s: 20,
            deadman_timeout_s: 60,
            rest_timeout_ms: 5000,
            core_id: None,
            feed_timeout_ms: 5000,
            ping_interval_ms: 2000,
            ws_ca_file: None,
            log_level: "info".into(),
            stage_timing: true,
            dashboard_bind: "127.0.0.1:8080".into(),
            dashboard_token: None,
            telegram_api_url: "https://api.telegram.org".into(),
            telegram_commands: true,
            journal_path: None,
            journal_snapshot_every: 50_000,
            simulator: false,
        }
    }
}

/// A configuration problem, naming the key where there is one.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not valid TOML, an unknown key, or a value of the wrong type (the message names it).
    #[error("{0}")]
    Syntax(String),
    /// A secret written into a config file (they come from the environment only).
    #[error(
        "config key `{0}` looks like a secret: secrets are never read from config files; set \
         KRAKEN_API_KEY, KRAKEN_API_SECRET, TELEGRAM_BOT_TOKEN in the environment and remove it"
    )]
    Secret(String),
    /// A `--set` argument that is not `KEY=VALUE`.
    #[error("--set {0}: expected KEY=VALUE")]
    Override(String),
    /// A value that parses but is not allowed.
    #[error("config key `{key}`: {reason}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// Why.
        reason: String,
    },
    /// A key no setting has (with the closest known key when one is close).
    #[error("{}unknown config key `{key}`{}", place(.file), suggestion(.closest))]
    Unknown {
        /// The file it is in, when it is in one.
        file: Option<String>,
        /// The key as written.
        key: String,
        /// The known key it most resembles.
        closest: Option<&'static str>,
    },
    /// A problem with a command-line override: the flag and argument are named, not the file.
    #[error("{flag} {arg}: {source}")]
    Flag {
        /// `--set` or `--grid`.
        flag: &'static str,
        /// `KEY=VALUE` (or only `KEY` when the value might be a secret).
        arg: String,
        /// What is wrong with it.
        source: Box<ConfigError>,
    },
    /// No config file was given and none was found where one is looked for.
    #[error(
        "no config file: looked for {}; pass --config FILE (config/wildbot.toml in the \
         repository lists every key)",
        .tried.join(", ")
    )]
    NotFound {
        /// Every path tried, absolute.
        tried: Vec<String>,
    },
}

fn place(file: &Option<String>) -> String {
    file.as_ref().map(|f| format!("{f}: ")).unwrap_or_default()
}

fn suggestion(closest: &Option<&'static str>) -> String {
    match closest {
        Some(k) => format!(" (did you mean `{k}`?)"),
        None => " (config/wildbot.toml lists every key with its meaning)".into(),
    }
}

/// Every key the config file takes, aliases included.
#[must_use]
pub fn known_keys() -> Vec<&'static str> {
    let mut keys = serde_aux::serde_introspection::serde_introspect::<Config>().to_vec();
    for alias in ["ws_symbol"] {
        if !keys.contains(&alias) {
            keys.push(alias);
        }
    }
    keys
}

/// The known key `key` most resembles, when it resembles one closely (a typo).
#[must_use]
pub fn closest_key(key: &str) -> Option<&'static str> {
    known_keys()
        .into_iter()
        .map(|k| (strsim::jaro_winkler(key, k), k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

fn check_known(key: &str, file: Option<&str>) -> Result<(), ConfigError> {
    if known_keys().contains(&key) {
        return Ok(());
    }
    Err(ConfigError::Unknown {
        file: file.map(str::to_string),
        key: key.to_string(),
        closest: closest_key(key),
    })
}

/// Overrides from one command-line flag (`--set`, `--grid`), applied in order after the file.
#[derive(Debug, Clone, Copy)]
pub struct Layer<'a> {
    /// The flag, named in errors.
    pub flag: &'static str,
    /// `(key, value)` pairs as given.
    pub pairs: &'a [(String, String)],
}

/// Where the default config file is looked for when `--config` is not given: the working
/// directory, then beside the binary and up to three directories above it (a checkout's
/// `target/release/wildbot`, an install under `/opt/wildbot/bin`), then `/etc/wildbot`.
#[must_use]
pub fn default_config_candidates(cwd: &Path, exe: Option<&Path>) -> Vec<std::path::PathBuf> {
    let mut out = vec![cwd.join("config/wildbot.toml")];
    if let Some(dir) = exe.and_then(Path::parent) {
        for d in dir.ancestors().take(4) {
            let p = d.join("config/wildbot.toml");
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out.push(std::path::PathBuf::from("/etc/wildbot/wildbot.toml"));
    out
}

/// The config file to use: `given` as it is, or the first default candidate that exists.
///
/// # Errors
/// [`ConfigError::NotFound`] naming every path tried.
pub fn resolve_config_path(given: Option<&Path>) -> Result<std::path::PathBuf, ConfigError> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    let exe = std::env::current_exe().ok();
    let candidates = default_config_candidates(&cwd, exe.as_deref());
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| ConfigError::NotFound {
            tried: candidates.iter().map(|p| p.display().to_string()).collect(),
        })
}

/// `KEY=VALUE` pairs from `--set` arguments.
///
/// # Errors
/// An argument without `=`.
pub fn parse_overrides(set: &[String]) -> Result<Vec<(String, String)>, ConfigError> {
    set.iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| ConfigError::Override(kv.clone()))
        })
        .collect()
}

/// The config file (the defaults when there is none) with `--set` overrides on top.
///
/// # Errors
/// An unreadable or invalid file, a bad override, or a value that is not allowed.
pub fn load_config(path: Option<&Path>, set: &[String]) -> Result<Config, ConfigError> {
    let overrides = parse_overrides(set)?;
    let layers = [Layer {
        flag: "--set",
        pairs: &overrides,
    }];
    match path {
        Some(p) => Config::load_layers(p, &layers),
        None => Config::from_layers("", None, &layers),
    }
}

/// A path as a user can find it: absolute when the working directory is known.
fn shown_path(path: &Path) -> String {
    if path.is_absolute() {
        return path.display().to_string();
    }
    match std::env::current_dir() {
        Ok(cwd) => format!("{} ({})", path.display(), cwd.join(path).display()),
        Err(_) => path.display().to_string(),
    }
}

/// An override's value as TOML; a bare word is a string.
fn override_value(value: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()))
}

fn table_to_config(table: toml::Table) -> Result<Config, ConfigError> {
    table
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Syntax(one_line(&e.to_string())))
}

/// toml's messages span lines (`... expected u16\nin `book_depth``); an error is one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn layer_error(flag: &'static str, key: &str, value: &str, e: ConfigError) -> ConfigError {
    // The value is shown unless it is the dashboard token or the key smells of a secret.
    let arg = if looks_like_secret(key) || key == "dashboard_token" {
        key.to_string()
    } else {
        format!("{key}={value}")
    };
    ConfigError::Flag {
        flag,
        arg,
        source: Box::new(e),
    }
}

/// The last override of `key` among the layers, which is the one that took effect.
fn last_override<'a>(
    layers: &'a [Layer<'a>],
    key: &str,
) -> Option<(&'static str, &'a str, &'a str)> {
    layers
        .iter()
        .flat_map(|l| {
            l.pairs
                .iter()
                .map(move |(k, v)| (l.flag, k.as_str(), v.as_str()))
        })
        .rfind(|(_, k, _)| *k == key || (key == "symbol" && *k == "ws_symbol"))
}

/// The shortest `dashboard_token` accepted.
pub const MIN_TOKEN_CHARS: usize = 16;

/// One day, the longest any duration setting may be.
const DAY_S: u64 = 86_400;
/// One day in milliseconds.
const DAY_MS: u64 = DAY_S * 1000;

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

impl Config {
    /// `order_latency_from`: the `intent_to_ack` percentiles of a live session's `--json`
    /// summary (its last JSON line), or `None` when the key is empty.
    ///
    /// # Errors
    /// The file cannot be read, or holds no `intent_to_ack` with samples.
    pub fn recorded_latency(&self) -> Result<Option<LatencyQuantiles>, ConfigError> {
        let path = self.order_latency_from.trim();
        if path.is_empty() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid("order_latency_from", format!("{path}: {e}")))?;
        let row = text
            .lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
            .find_map(|v| v.get("intent_to_ack").cloned())
            .ok_or_else(|| {
                invalid(
                    "order_latency_from",
                    format!("{path}: no intent_to_ack (expected a `wildbot run --json` summary)"),
                )
            })?;
        let ns = |k: &str| row[k].as_u64().unwrap_or(0);
        if ns("count") == 0 {
            return Err(invalid(
                "order_latency_from",
                format!("{path}: intent_to_ack has no samples (a paper session measures none)"),
            ));
        }
        Ok(Some(LatencyQuantiles {
            p50_ns: ns("p50_ns"),
            p90_ns: ns("p90_ns"),
            p99_ns: ns("p99_ns"),
            p999_ns: ns("p999_ns"),
            max_ns: ns("max_ns"),
        }))
    }

    /// The instrument's decimals as configured (the instrument channel may change them).
    #[must_use]
    pub fn precision(&self) -> Precision {
        Precision {
            price: self.price_precision,
            qty: self.qty_precision,
        }
    }

    /// The feed thread's settings.
    #[must_use]
    pub fn feed_settings(&self) -> FeedSettings {
        FeedSettings {
            ws_url: self.ws_url.clone(),
            ws_auth_url: self.ws_auth_url.clone(),
            order_transport: self.order_transport,
            deadman_refresh_s: self.deadman_refresh_s,
            deadman_timeout_s: self.deadman_timeout_s,
            rate_tier: self.rate_tier,
            ws_ca_file: self.ws_ca_file.clone(),
            symbol: self.symbol.clone(),
            book_depth: self.book_depth,
            core_id: self.core_id,
            feed_timeout_ms: self.feed_timeout_ms,
            ping_interval_ms: self.ping_interval_ms,
            stage_timing: self.stage_timing,
        }
    }

    /// The order worker's settings (its channels and journal are wired by the session).
    #[must_use]
    pub fn worker_settings(&self) -> WorkerConfig {
        WorkerConfig {
            rest_url: self.rest_url.clone(),
            pair: self.rest_pair.clone(),
            symbol: self.symbol.clone(),
            precision: self.precision(),
            min_interval: Duration::from_millis(self.rest_min_interval_ms),
            fill_poll: Duration::from_secs(self.fill_poll_s),
            fill_poll_backstop: Duration::from_secs(self.fill_poll_backstop_s),
            private_stream: !self.ws_auth_url.is_empty(),
            ws_orders: self.order_transport == OrderTransport::Ws && !self.ws_auth_url.is_empty(),
            balance_refresh: Duration::from_secs(self.balance_refresh_s),
            deadman_refresh: Duration::from_secs(self.deadman_refresh_s),
            deadman_timeout_s: self.deadman_timeout_s,
            timeout: Duration::from_millis(self.rest_timeout_ms),
            tier: self.rate_tier,
            reports: None,
            journal: None,
            adopt: Vec::new(),
        }
    }

    /// The dashboard's settings.
    #[must_use]
    pub fn dashboard_settings(&self) -> DashboardConfig {
        DashboardConfig {
            bind: self.dashboard_bind.clone(),
            token: self.dashboard_token.clone(),
            symbol: self.symbol.clone(),
            feed_timeout_ns: self.feed_timeout_ms as i64 * MS,
            simulator: self.simulator,
            rules: PauseRules {
                min_volatility_bps: self.min_volatility_bps,
                max_spread_bps: self.max_spread_bps,
                momentum_threshold_bps: self.momentum_threshold_bps,
                max_position: self.max_position.decimal().to_f64(),
                fill_cooldown_ms: self.fill_cooldown_ms,
                max_drawdown_pct: self.max_drawdown_pct,
            },
        }
    }

    /// The core's settings from this config. `default_fill` is the paper fill model when
    /// `fill_model` is not set (`cross` for a session, `queue` for a replay).
    #[must_use]
    pub fn core_settings(&self, default_fill: FillModel) -> Settings {
        Settings {
            live_mode: self.live_mode,
            symbol: self.symbol.clone(),
            book_depth: self.book_depth,
            price_precision: self.price_precision,
            qty_precision: self.qty_precision,
            tick_size: self.tick_size.decimal(),
            qty_min: self.qty_min.decimal(),
            cost_min: self.cost_min.decimal(),
            ema_window: self.ema_window,
            momentum_threshold_bps: self.momentum_threshold_bps,
            momentum_filter_enabled: self.momentum_filter_enabled,
            vol_window_s: self.vol_window_s,
            min_volatility_bps: self.min_volatility_bps,
            entry_offset_bps: self.entry_offset_bps,
            exit_offset_bps: self.exit_offset_bps,
            maker_fee_bps: self.maker_fee_bps,
            taker_fee_bps: self.taker_fee_bps,
            skew_factor: self.skew_factor,
            order_qty: self.order_qty.decimal(),
            max_position: self.max_position.decimal(),
            max_spread_bps: self.max_spread_bps,
            stale_order_ms: self.stale_order_ms,
            fill_cooldown_ms: self.fill_cooldown_ms,
            stop_loss_bps: self.stop_loss_bps,
            max_hold_s: self.max_hold_s,
            max_drawdown_pct: self.max_drawdown_pct,
            exit_slippage_bps: self.exit_slippage_bps,
            starting_capital: self.starting_capital.decimal(),
            base_baseline: self.base_baseline.decimal(),
            quote_budget: self.quote_budget.decimal(),
            on_drawdown: self.on_drawdown,
            requote_ticks: self.requote_ticks,
            profit_bps: self.profit_bps,
            rate_tier: self.rate_tier,
            fill_model: self.fill_model.unwrap_or(default_fill),
            order_latency_ms: self.order_latency_ms,
            feed_latency_ms: self.feed_latency_ms,
            recorded_latency: self.recorded_latency().ok().flatten(),
        }
    }

    /// Reads and validates a TOML file, applying `key=value` overrides on top (values are
    /// TOML; a bare word is taken as a string), blamed on `--set` when they are wrong.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file or flag, the key and the reason.
    pub fn load(path: &Path, overrides: &[(String, String)]) -> Result<Config, ConfigError> {
        Config::load_layers(
            path,
            &[Layer {
                flag: "--set",
                pairs: overrides,
            }],
        )
    }

    /// Reads and validates a TOML file with layers of overrides on top.
    ///
    /// # Errors
    /// As [`Config::load`]; a file that cannot be read is named with its absolute path.
    pub fn load_layers(path: &Path, layers: &[Layer<'_>]) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: shown_path(path),
            source,
        })?;
        Config::from_layers(&text, Some(&path.display().to_string()), layers)
    }

    /// Parses and validates TOML text with `--set` overrides.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn from_toml_str(
        text: &str,
        overrides: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        Config::from_layers(
            text,
            None,
            &[Layer {
                flag: "--set",
                pairs: overrides,
            }],
        )
    }

    /// Parses and validates TOML text (from `file`, named in errors) with layers of
    /// overrides; a wrong override is blamed on its flag, never on the file.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn from_layers(
        text: &str,
        file: Option<&str>,
        layers: &[Layer<'_>],
    ) -> Result<Config, ConfigError> {
        let in_file = |e: ConfigError| match (e, file) {
            (ConfigError::Syntax(m), Some(f)) => ConfigError::Syntax(format!("{f}: {m}")),
            (other, _) => other,
        };
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| in_file(ConfigError::Syntax(e.to_string())))?;
        // Before anything else reads the table: an unknown-key error would quote the value.
        if let Some(key) = table.keys().find(|k| looks_like_secret(k)) {
            return Err(ConfigError::Secret(key.clone()));
        }
        for key in table.keys() {
            check_known(key, file)?;
        }
        table_to_config(table.clone()).map_err(in_file)?;
        for layer in layers {
            for (key, value) in layer.pairs {
                let blame = |e: ConfigError| layer_error(layer.flag, key, value, e);
                if looks_like_secret(key) {
                    return Err(blame(ConfigError::Secret(key.clone())));
                }
                check_known(key, None).map_err(blame)?;
                table.insert(key.clone(), override_value(value));
                table_to_config(table.clone()).map_err(blame)?;
            }
        }
        let cfg = table_to_config(table)?;
        cfg.validate().map_err(|e| match &e {
            ConfigError::Invalid { key, .. } => match last_override(layers, key) {
                Some((flag, k, v)) => layer_error(flag, k, v, e),
                None => e,
            },
            _ => e,
        })?;
        Ok(cfg)
    }

    /// The effective settings as TOML (the dashboard token shown as `<redacted>`).
    #[must_use]
    pub fn to_toml(&self) -> String {
        let mut shown = self.clone();
        if shown.dashboard_token.is_some() {
            shown.dashboard_token = Some("<redacted>".into());
        }
        toml::to_string(&shown).unwrap_or_default()
    }

    /// Checks every rule a value must follow.
    ///
    /// # Errors
    /// The first [`ConfigError::Invalid`] found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.recorded_latency()?;
        if !(self.ws_url.starts_with("ws://") || self.ws_url.starts_with("wss://")) {
            return Err(invalid("ws_url", "must start with ws:// or wss://"));
        }
        if self.deadman_refresh_s > 0 && self.deadman_timeout_s <= self.deadman_refresh_s {
            return Err(invalid(
                "deadman_timeout_s",
                "must be longer than deadman_refresh_s, or Kraken cancels between two refreshes",
            ));
        }
        // Durations are multiplied into nanoseconds on the hot path: bound them, so no value
        // can wrap (a wrapped max_hold_s force-exits every position at once).
        for (key, v, per_day) in [
            ("stale_order_ms", self.stale_order_ms, DAY_MS),
            ("fill_cooldown_ms", self.fill_cooldown_ms, DAY_MS),
            ("max_hold_s", self.max_hold_s, DAY_S),
            ("vol_window_s", u64::from(self.vol_window_s), DAY_S),
            ("rest_min_interval_ms", self.rest_min_interval_ms, DAY_MS),
            ("rest_timeout_ms", self.rest_timeout_ms, DAY_MS),
            ("fill_poll_s", self.fill_poll_s, DAY_S),
            ("fill_poll_backstop_s", self.fill_poll_backstop_s, DAY_S),
            ("balance_refresh_s", self.balance_refresh_s, DAY_S),
            ("deadman_refresh_s", self.deadman_refresh_s, DAY_S),
            ("deadman_timeout_s", self.deadman_timeout_s, DAY_S),
            ("feed_timeout_ms", self.feed_timeout_ms, DAY_MS),
            ("ping_interval_ms", self.ping_interval_ms, DAY_MS),
        ] {
            if v > per_day {
                return Err(invalid(key, format!("must be at most {per_day} (one day)")));
            }
        }
        for (key, v) in [
            ("order_latency_ms", self.order_latency_ms),
            ("feed_latency_ms", self.feed_latency_ms),
        ] {
            if v > 60_000 {
                return Err(invalid(key, "must be at most 60000 (one minute)"));
            }
        }
        if self.rest_timeout_ms < 100 {
            return Err(invalid("rest_timeout_ms", "must be at least 100"));
        }
        if self.feed_timeout_ms < 500 {
            return Err(invalid(
                "feed_timeout_ms",
                "must be at least 500 (Kraken heartbeats once a second)",
            ));
        }
        if self.ping_interval_ms == 0 || self.ping_interval_ms >= self.feed_timeout_ms {
            return Err(invalid(
                "ping_interval_ms",
                "must be above 0 and below feed_timeout_ms, so a pong can arrive in time",
            ));
        }
        if let Some(t) = self.dashboard_token.as_deref().filter(|t| !t.is_empty()) {
            if t.chars().count() < MIN_TOKEN_CHARS {
                return Err(invalid(
                    "dashboard_token",
                    format!(
                        "must be at least {MIN_TOKEN_CHARS} characters: a short token is guessed \
                         (`openssl rand -hex 16` makes a good one)"
                    ),
                ));
            }
        }
        if !self.dashboard_bind.is_empty() {
            check_bind(&self.dashboard_bind, self.dashboard_token.as_deref()).map_err(|e| {
                let key = if matches!(e, DashboardError::NeedsToken(_)) {
                    "dashboard_token"
                } else {
                    "dashboard_bind"
                };
                invalid(key, e.to_string())
            })?;
        }
        if !(self.telegram_api_url.starts_with("https://")
            || self.telegram_api_url.starts_with("http://"))
        {
            return Err(invalid(
                "telegram_api_url",
                "must start with https:// (or http:// for a local test server)",
            ));
        }
        if log::LevelFilter::from_str(&self.log_level).is_err() {
            return Err(invalid(
                "log_level",
                "must be one of off, error, warn, info, debug, trace",
            ));
        }
        if !KRAKEN_DEPTHS.contains(&self.book_depth) {
            return Err(invalid(
                "book_depth",
                format!(
                    "{} is not a depth Kraken offers (one of 10, 25, 100, 500, 1000)",
                    self.book_depth
                ),
            ));
        }
        if self.price_precision > 12 {
            return Err(invalid("price_precision", "must be at most 12"));
        }
        if self.qty_precision > 12 {
            return Err(invalid("qty_precision", "must be at most 12"));
        }
        if self.symbol.is_empty() || !self.symbol.contains('/') {
            return Err(invalid(
                "symbol",
                format!("`{}` is not a WS v2 symbol like \"BTC/USD\"", self.symbol),
            ));
        }
        if self.rest_pair.trim().is_empty() {
            return Err(invalid("rest_pair", "must not be empty"));
        }
        if !(self.ws_url.starts_with("ws://") || self.ws_url.starts_with("wss://")) {
            return Err(invalid("ws_url", "must start with ws:// or wss://"));
        }
        if !(self.rest_url.starts_with("http://") || self.rest_url.starts_with("https://")) {
            return Err(invalid("rest_url", "must start with http:// or https://"));
        }
        if !(self.ws_auth_url.is_empty()
            || self.ws_auth_url.starts_with("ws://")
            || self.ws_auth_url.starts_with("wss://"))
        {
            return Err(invalid(
                "ws_auth_url",
                "must start with ws:// or wss:// (or be empty: REST polling only)",
            ));
        }
        if self.order_transport == OrderTransport::Ws && self.ws_auth_url.is_empty() {
            return Err(invalid(
                "order_transport",
                "\"ws\" needs the authenticated WebSocket: set ws_auth_url, or use \"rest\"",
            ));
        }
        let qty = |key: &'static str, v: &DecimalValue| -> Result<u64, ConfigError> {
            v.decimal().to_units(self.qty_precision).map_err(|e| {
                invalid(
                    key,
                    format!(
                        "{v} is not a quantity at qty_precision {} ({e})",
                        self.qty_precision
                    ),
                )
            })
        };
        let order_qty = qty("order_qty", &self.order_qty)?;
        if order_qty == 0 {
            return Err(invalid("order_qty", "must be greater than zero"));
        }
        let max_position = qty("max_position", &self.max_position)?;
        if max_position < order_qty {
            return Err(invalid(
                "max_position",
                format!(
                    "{} is smaller than order_qty {}",
                    self.max_position, self.order_qty
                ),
            ));
        }
        let qty_min = qty("qty_min", &self.qty_min)?;
        if order_qty < qty_min {
            return Err(invalid(
                "order_qty",
                format!(
                    "{} is below the instrument minimum qty_min {}",
                    self.order_qty, self.qty_min
                ),
            ));
        }
        let tick = self
            .tick_size
            .decimal()
            .to_units(self.price_precision)
            .map_err(|e| {
                invalid(
                    "tick_size",
                    format!(
                        "{} is not a price at price_precision {} ({e})",
                        self.tick_size, self.price_precision
                    ),
                )
            })?;
        if tick == 0 {
            return Err(invalid("tick_size", "must be greater than zero"));
        }
        if self.cost_min.decimal().negative {
            return Err(invalid("cost_min", "must not be negative"));
        }
        if self.starting_capital.decimal().negative || self.starting_capital.is_zero() {
            return Err(invalid("starting_capital", "must be greater than zero"));
        }
        if let Some(b) = &self.base_baseline.amount {
            if b.decimal().negative {
                return Err(invalid("base_baseline", "must not be negative"));
            }
            qty("base_baseline", b)?;
        }
        if let Some(b) = &self.quote_budget.amount
            && (b.decimal().negative || b.is_zero())
        {
            return Err(invalid(
                "quote_budget",
                "must be greater than zero (or \"all\")",
            ));
        }
        if self.journal_snapshot_every < 100 {
            return Err(invalid(
                "journal_snapshot_every",
                "must be at least 100 (each snapshot rewrites the journal)",
            ));
        }
        if self.requote_ticks > 1_000_000 {
            return Err(invalid("requote_ticks", "must be at most 1000000"));
        }
        self.validate_rates()?;
        for (key, v) in [
            ("stale_order_ms", self.stale_order_ms),
            ("max_hold_s", self.max_hold_s),
            ("rest_min_interval_ms", self.rest_min_interval_ms),
            ("fill_poll_s", self.fill_poll_s),
            ("fill_poll_backstop_s", self.fill_poll_backstop_s),
            ("balance_refresh_s", self.balance_refresh_s),
            ("ema_window", u64::from(self.ema_window)),
            ("vol_window_s", u64::from(self.vol_window_s)),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be greater than zero"));
            }
        }
        Ok(())
    }

    fn validate_rates(&self) -> Result<(), ConfigError> {
        for (key, v) in [
            ("momentum_threshold_bps", self.momentum_threshold_bps),
            ("min_volatility_bps", self.min_volatility_bps),
            ("entry_offset_bps", self.entry_offset_bps),
            ("exit_offset_bps", self.exit_offset_bps),
            ("maker_fee_bps", self.maker_fee_bps),
            ("profit_bps", self.profit_bps),
            ("skew_factor", self.skew_factor),
            ("max_spread_bps", self.max_spread_bps),
            ("stop_loss_bps", self.stop_loss_bps),
            ("max_drawdown_pct", self.max_drawdown_pct),
            ("exit_slippage_bps", self.exit_slippage_bps),
            ("taker_fee_bps", self.taker_fee_bps),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(invalid(key, format!("{v} must be a finite number >= 0")));
            }
            if v > 10_000.0 {
                return Err(invalid(key, format!("{v} is more than 100%")));
            }
        }
        let entry_floor = self.maker_fee_bps + self.profit_bps;
        if self.entry_offset_bps < entry_floor {
            return Err(invalid(
                "entry_offset_bps",
                format!(
                    "{} cannot cover the maker fee plus profit ({} + {} = {entry_floor} bps)",
                    self.entry_offset_bps, self.maker_fee_bps, self.profit_bps
                ),
            ));
        }
        let exit_floor = 2.0 * self.maker_fee_bps + self.profit_bps;
        if self.exit_offset_bps < exit_floor {
            return Err(invalid(
                "exit_offset_bps",
                format!(
                    "{} cannot cover both sides' maker fees plus profit (2 x {} + {} = {exit_floor} bps)",
                    self.exit_offset_bps, self.maker_fee_bps, self.profit_bps
                ),
            ));
        }
        if self.profit_bps <= 0.0 && self.skew_factor > 0.0 && self.maker_fee_bps > 0.0 {
            // The skew pulls a full position's exit down to the floor 2 x maker fee + profit:
            // with no profit that exit only pays the fees, and loses to any rounding (with no
            // fees, as in a research replay, it merely breaks even).
            return Err(invalid(
                "profit_bps",
                format!(
                    "0 with skew_factor {}: at full position (max_position {}) the skewed exit \
                     ({} - {} x {} bps) is held at 2 x maker_fee_bps {} + profit_bps 0, which \
                     cannot win a round trip; set profit_bps above 0 or skew_factor = 0",
                    self.skew_factor,
                    self.max_position,
                    self.exit_offset_bps,
                    self.skew_factor,
                    self.entry_offset_bps,
                    self.maker_fee_bps
                ),
            ));
        }
        if self.skew_factor > 1.0 {
            return Err(invalid(
                "skew_factor",
                "must be at most 1 (a larger skew could push a buy above the fair price)",
            ));
        }
        for (key, v) in [
            ("momentum_threshold_bps", self.momentum_threshold_bps),
            ("max_spread_bps", self.max_spread_bps),
            ("stop_loss_bps", self.stop_loss_bps),
            ("max_drawdown_pct", self.max_drawdown_pct),
        ] {
            if v == 0.0 {
                return Err(invalid(key, "must be greater than zero"));
            }
        }
        if self.max_drawdown_pct > 100.0 {
            return Err(invalid("max_drawdown_pct", "must be at most 100"));
        }
        Ok(())
    }
}

/// The config loader's invariant for arbitrary input (the `config` fuzz target and a property
/// test share it): text as a config file, and as `--set` overrides, never panics, and what
/// loads is valid.
///
/// # Panics
/// On a panic while loading, or a loaded config that breaks a validation rule.
pub fn check_arbitrary_text(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (file, set) = text.split_once('\u{0}').unwrap_or((&text, ""));
    let overrides: Vec<(String, String)> = set
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if let Ok(cfg) = Config::from_toml_str(file, &overrides) {
        assert!(
            KRAKEN_DEPTHS.contains(&cfg.book_depth),
            "depth {}",
            cfg.book_depth
        );
        assert!(cfg.validate().is_ok(), "loaded but invalid");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_of(toml: &str) -> String {
        Config::from_toml_str(toml, &[]).unwrap_err().to_string()
    }

    /// The core's own defaults and the config file's are the seed strategy's, the same.
    #[test]
    fn the_core_defaults_are_the_config_defaults() {
        assert_eq!(
            Config::default().core_settings(FillModel::Cross),
            Settings::default()
        );
        // Each key reaches the core's field of the same name; an absent fill model takes the
        // caller's default, a set one wins.
        let cfg = Config::from_toml_str(
            "ema_window = 7\nmax_hold_s = 9\nstale_order_ms = 1234\norder_qty = \"0.002\"\n",
            &[],
        )
        .unwrap();
        let s = cfg.core_settings(FillModel::Queue);
        assert_eq!((s.ema_window, s.max_hold_s, s.stale_order_ms), (7, 9, 1234));
        assert_eq!(s.order_qty, Decimal::parse_str("0.002").unwrap());
        assert_eq!(s.fill_model, FillModel::Queue);
        let crossed = Config::from_toml_str("fill_model = \"cross\"\n", &[]).unwrap();
        assert_eq!(
            crossed.core_settings(FillModel::Queue).fill_model,
            FillModel::Cross
        );
    }

    #[test]
    fn shipped_file_equals_defaults() {
        let text = include_str!("../../config/wildbot.toml");
        assert_eq!(Config::from_toml_str(text, &[]).unwrap(), Config::default());
        Config::default().validate().unwrap();
    }

    #[test]
    fn empty_file_means_defaults_and_effective_settings_round_trip() {
        let c = Config::from_toml_str("", &[]).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(Config::from_toml_str(&c.to_toml(), &[]).unwrap(), c);
    }

    #[test]
    fn feed_keys_are_checked_and_named() {
        for (toml, key) in [
            ("ws_url = \"https://ws.kraken.com/v2\"\n", "ws_url"),
            ("feed_timeout_ms = 100\n", "feed_timeout_ms"),
            ("ping_interval_ms = 6000\n", "ping_interval_ms"),
            ("ping_interval_ms = 0\n", "ping_interval_ms"),
            ("log_level = \"loud\"\n", "log_level"),
        ] {
            let e = err_of(toml);
            assert!(e.contains(key), "{toml}: {e}");
        }
        let c = Config::from_toml_str("core_id = 1\nws_ca_file = \"ca.pem\"\n", &[]).unwrap();
        assert_eq!(
            (c.core_id, c.ws_ca_file.as_deref()),
            (Some(1), Some("ca.pem"))
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = err_of("order_qtty = 0.001\n");
        assert!(e.contains("order_qtty"), "{e}");
    }

    #[test]
    fn a_typo_gets_the_closest_key_and_nonsense_gets_none() {
        assert_eq!(closest_key("order_qtty"), Some("order_qty"));
        assert_eq!(closest_key("max_postion"), Some("max_position"));
        assert_eq!(closest_key("stoploss_bps"), Some("stop_loss_bps"));
        assert_eq!(closest_key("zzzz"), None);
        let keys = known_keys();
        assert!(keys.contains(&"ws_symbol") && keys.contains(&"dashboard_token"));
        // Every key the shipped file writes is known.
        let shipped: toml::Table =
            toml::from_str(include_str!("../../config/wildbot.toml")).unwrap();
        for k in shipped.keys() {
            assert!(keys.contains(&k.as_str()), "{k}");
        }
    }

    #[test]
    fn overrides_are_blamed_on_their_flag_and_the_token_value_is_never_shown() {
        let set = [("book_depth".to_string(), "ten".to_string())];
        let grid = [("order_qty".to_string(), "0".to_string())];
        let e = Config::from_layers(
            "",
            Some("cfg.toml"),
            &[Layer {
                flag: "--set",
                pairs: &set,
            }],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("--set book_depth=ten: ") && !e.contains("cfg.toml"),
            "{e}"
        );
        let e = Config::from_layers(
            "",
            None,
            &[Layer {
                flag: "--grid",
                pairs: &grid,
            }],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("--grid order_qty=0: config key `order_qty`"),
            "{e}"
        );
        // A value from the file that an override makes invalid blames the override that took
        // effect, the last one.
        let twice = [
            ("order_qty".to_string(), "0.002".to_string()),
            ("order_qty".to_string(), "0".to_string()),
        ];
        let e = Config::from_layers(
            "",
            None,
            &[Layer {
                flag: "--set",
                pairs: &twice,
            }],
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("--set order_qty=0:"), "{e}");
        let token = [("dashboard_token".to_string(), "short-secret".to_string())];
        let e = Config::from_layers(
            "",
            None,
            &[Layer {
                flag: "--set",
                pairs: &token,
            }],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("16 characters") && !e.contains("short-secret"),
            "{e}"
        );
        let e = err_of("dashboard_token = \"0123456789abcde\"\n");
        assert!(e.contains("`dashboard_token`"), "{e}");
        assert!(Config::from_toml_str("dashboard_token = \"0123456789abcdef\"\n", &[]).is_ok());
    }

    #[test]
    fn the_default_config_is_looked_for_here_then_beside_the_binary_then_in_etc() {
        let c = default_config_candidates(
            Path::new("/home/u/elsewhere"),
            Some(Path::new("/src/wildbot/target/release/wildbot")),
        );
        let shown: Vec<String> = c.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            shown,
            [
                "/home/u/elsewhere/config/wildbot.toml",
                "/src/wildbot/target/release/config/wildbot.toml",
                "/src/wildbot/target/config/wildbot.toml",
                "/src/wildbot/config/wildbot.toml",
                "/src/config/wildbot.toml",
                "/etc/wildbot/wildbot.toml",
            ]
        );
        let e = ConfigError::NotFound { tried: shown }.to_string();
        assert!(
            e.contains("/src/wildbot/config/wildbot.toml") && e.contains("--config"),
            "{e}"
        );
    }

    #[test]
    fn wrong_types_are_named() {
        let e = err_of("book_depth = \"ten\"\n");
        assert!(e.contains("book_depth"), "{e}");
        let e = err_of("order_qty = \"lots\"\n");
        assert!(e.contains("order_qty"), "{e}");
    }

    #[test]
    fn invalid_values_name_key_and_reason() {
        for (toml, key, why) in [
            ("max_hold_s = 10000000000\n", "max_hold_s", "one day"),
            (
                "stale_order_ms = 10000000000000\n",
                "stale_order_ms",
                "one day",
            ),
            (
                "fill_cooldown_ms = 86400001\n",
                "fill_cooldown_ms",
                "one day",
            ),
            ("order_qty = 0\n", "order_qty", "greater than zero"),
            ("order_qty = -0.001\n", "order_qty", "negative"),
            ("order_qty = 0.000000001\n", "order_qty", "qty_precision"),
            (
                "max_position = 0.0005\n",
                "max_position",
                "smaller than order_qty",
            ),
            ("book_depth = 20\n", "book_depth", "Kraken offers"),
            (
                "entry_offset_bps = 10\n",
                "entry_offset_bps",
                "cannot cover",
            ),
            ("exit_offset_bps = 30\n", "exit_offset_bps", "both sides"),
            ("skew_factor = 2.0\n", "skew_factor", "at most 1"),
            (
                "max_drawdown_pct = 0\n",
                "max_drawdown_pct",
                "greater than zero",
            ),
            ("ws_url = \"http://x\"\n", "ws_url", "ws://"),
            ("tick_size = 0.05\n", "tick_size", "price_precision"),
            (
                "stale_order_ms = 0\n",
                "stale_order_ms",
                "greater than zero",
            ),
            ("order_qty = 0.00001\n", "order_qty", "qty_min"),
            ("maker_fee_bps = nan\n", "maker_fee_bps", "finite"),
        ] {
            let e = err_of(toml);
            assert!(
                e.contains(&format!("`{key}`")) && e.contains(why),
                "{toml} -> {e}"
            );
        }
    }

    #[test]
    fn decimals_are_exact_and_overrides_apply() {
        let c =
            Config::from_toml_str("order_qty = \"0.00123440\"\nmax_position = 0.1\n", &[]).unwrap();
        assert_eq!(c.order_qty.decimal().to_units(8), Ok(123_440));
        let c = Config::from_toml_str(
            "",
            &[
                ("order_qty".into(), "0.002".into()),
                ("symbol".into(), "ETH/USD".into()),
            ],
        )
        .unwrap();
        assert_eq!(c.order_qty.decimal().to_units(8), Ok(200_000));
        assert_eq!(c.symbol, "ETH/USD");
        assert!(
            Config::from_toml_str("ws_symbol = \"ETH/USD\"\n", &[])
                .unwrap()
                .symbol
                == "ETH/USD"
        );
    }
}
