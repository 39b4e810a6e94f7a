//! Execution: the side thread that turns order intents into signed Kraken REST calls, order
//! entry over the authenticated WebSocket (run by the feed thread), and the client order ids
//! both order paths use.

pub mod clordid;
pub mod worker;
pub mod ws_entry;
