//! Execution: the side thread that turns order intents into signed Kraken REST calls, and
//! the client order ids both order paths use.

pub mod clordid;
pub mod worker;
