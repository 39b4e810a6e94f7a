//! WildBot: a low-latency market-making bot for Kraken.
//!
//! The key design choice: the trading logic ([`core`]) is a pure function of timestamped
//! events. It parses Kraken's WebSocket v2 frames, keeps a checksummed L2 book, computes
//! signals, applies the strategy and risk rules and books fills, and it hands back *intents*
//! (place, cancel, resubscribe, alert) instead of doing anything itself. Threads around it own
//! all I/O. Live trading, paper trading, replay and benchmarks therefore run the same code, and
//! every rule can be proven offline before it touches money.

// `serde_json::json!` of the dashboard's whole status document nests deeper than the default.
#![recursion_limit = "256"]

pub mod app;
pub mod backtest;
pub mod core;
pub mod devtools;
pub mod exec;
pub mod feed;
pub mod kraken;
pub mod side;
pub mod sim;
