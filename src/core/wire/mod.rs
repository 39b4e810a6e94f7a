//! Kraken WebSocket v2 bytes: the JSON cursor, the frame parser and the book checksum's CRC.
//!
//! This is the only part of the core that knows Kraken's wire format; everything after it
//! works on typed messages and integer prices.

pub mod checksum;
pub mod crc;
pub mod json;
pub mod parse;
