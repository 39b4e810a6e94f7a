//! Execution: the side thread that turns order intents into signed Kraken REST calls.

pub mod worker;
