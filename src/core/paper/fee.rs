//! Fee models: what a paper fill pays.

use crate::core::money::{Cash, Ppm};

/// Whether a fill added liquidity (a resting order) or took it (an IOC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liquidity {
    /// A resting order filled.
    Maker,
    /// An immediate-or-cancel order crossed.
    Taker,
}

/// The fee of a fill.
pub trait FeeModel {
    /// The fee on `cost` (the fill's notional), never understated.
    fn fee(&self, cost: Cash, liquidity: Liquidity) -> Cash;
}

/// Kraken's schedule: a rate for makers and one for takers, on the notional.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MakerTaker {
    /// Maker rate.
    pub maker: Ppm,
    /// Taker rate.
    pub taker: Ppm,
}

impl FeeModel for MakerTaker {
    fn fee(&self, cost: Cash, liquidity: Liquidity) -> Cash {
        cost.times_ppm_ceil(match liquidity {
            Liquidity::Maker => self.maker,
            Liquidity::Taker => self.taker,
        })
    }
}
