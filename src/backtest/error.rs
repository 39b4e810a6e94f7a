//! The backtest layer's errors.

use crate::core::SettingsError;

/// Why a recording could not be read, verified, replayed or swept.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// A python-kraken-sdk fixture document that is not valid JSON of that shape.
    #[error("not a python-kraken-sdk fixture: {0}")]
    Fixture(String),
    /// A book depth Kraken does not offer.
    #[error("depth {0} is not one Kraken offers (10, 25, 100, 500, 1000)")]
    Depth(u16),
    /// The core refused the settings.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A `--grid` argument that is not `KEY=V1,V2,...`.
    #[error("--grid {0}: expected KEY=V1,V2,...")]
    Grid(String),
    /// A sweep combination that does not make a valid config (the message names the key).
    #[error("{0}")]
    Combination(String),
    /// The input is not a recorded feed at all (empty, binary, or no book message in it).
    #[error(
        "not a Kraken feed ({0}): expected one Kraken WS v2 JSON message per line, the \
         recorder's {{\"rx_ns\":..,\"frame\":..}} lines (wildbot run --record, kraken-sim \
         record), or a python-kraken-sdk fixture"
    )]
    NotFeed(&'static str),
    /// A `--shard` argument that is not `I/N` with 1 ≤ I ≤ N.
    #[error("--shard {0}: expected I/N with 1 <= I <= N (the I-th of N slices, counted from 1)")]
    Shard(String),
    /// A sweep CSV that cannot be merged with the others.
    #[error("{file}: {why}")]
    Merge {
        /// The file.
        file: String,
        /// What is wrong with it.
        why: String,
    },
    /// An input file that cannot be read as what it was said to be.
    #[error("{file}: {why}")]
    Input {
        /// The file.
        file: String,
        /// What is wrong.
        why: String,
    },
    /// A sweep worker thread panicked.
    #[error("a sweep worker panicked")]
    Worker,
}
