//! Backtesting on recorded data: the same [`Core`](crate::core::Core) that trades live, fed from
//! files instead of a socket.
//!
//! `feedfile` reads recorded feeds, `verify` checks their checksums, `replay` runs the core over
//! them with simulated fills, and `sweep` replays a grid of parameter sets.

pub mod error;
pub mod feedfile;
pub mod html;
pub mod replay;
pub mod sweep;
pub mod tardis;
pub mod trace;
pub mod verify;
