//! The trading core: pure, deterministic, allocation-free after start-up.
//!
//! Events go in with caller-supplied timestamps (a raw Kraken WS v2 frame, an order event, a
//! timer tick); intents come out into a caller-supplied sink. Nothing in here does I/O, reads a
//! clock, takes a lock or allocates per event, so the live feed thread, the replay tool, the
//! tests and the benchmarks all run exactly the same code.

pub mod accounting;
pub mod book;
pub mod engine;
pub mod event;
pub mod money;
pub mod orders;
pub mod paper;
pub mod ratecounter;
pub mod settings;
pub mod signals;
pub mod strategy;
#[cfg(test)]
pub mod stubs;
pub mod time;
pub mod wire;

pub use book::{Book, BookError, ChecksumFormat};
pub use engine::Core;
pub use event::{Event, Intent, IntentSink, OrderEvent, Outcome};
pub use event::{Rule, Side};
pub use money::{Cash, Decimal, FinePrice, Ppm, Precision, Price, Qty};
pub use settings::{Settings, SettingsError};
pub use wire::parse::{Message, ParseError, Parser};
