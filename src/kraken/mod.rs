//! Kraken's private REST API: request signing and typed errors (the client and the order
//! worker build on these).

pub mod errors;
pub mod rest;
pub mod sign;
