//! Quoting and risk rules of the seed strategy, as one pure function: [`decide`].
//!
//! Given the book, the signals, the account and our live orders at time `now`, `decide`
//! says what should rest on each side. The engine then reconciles that with the live orders
//! (cancel what does not match, place what is missing). Every price is computed in integers
//! from the exact microprice or average entry and rounded to the tick on the passive side
//! (a buy down, a sell up); a post-only quote is never allowed to cross the touch.
//!
//! | rule | acts on |
//! |---|---|
//! | entry / exit offsets, inventory skew | quote prices; the exit never nearer the entry than 2 × maker fee + profit |
//! | no churn | long → sells only; short → buys only |
//! | momentum filter | up-move: no sell; down-move: no buy |
//! | volatility gate | entries only when volatility > `min_volatility_bps` |
//! | spread filter | no new quotes while the spread is wider than `max_spread_bps` |
//! | position limit | open orders + position never exceed `max_position` |
//! | affordability | buy needs cash for price × qty + fee; live: sell needs base |
//! | minimum size | qty ≥ qty_min and price × qty ≥ cost_min |
//! | stop-loss / time stop | force exit: a limit order through the touch by ≤ `exit_slippage_bps`; latched until flat |
//! | dust | a position below `qty_min` counts as flat for entries (no order can exit it) |
//! | live inventory | sells never reach into the baseline; buys never spend beyond the budget |
//! | stale order, fill cooldown, drawdown stop | enforced by the engine |

use crate::core::accounting::Accounting;
use crate::core::book::Book;
use crate::core::event::Purpose;
use crate::core::event::{Rule, Side};
use crate::core::money::{Cash, FinePrice, PPM_ONE, Ppm, Price, Qty};
use crate::core::money::{Decimal, Precision};
use crate::core::orders::{OrderManager, OrderState};
use crate::core::ratecounter::Tier;
use crate::core::settings::{OnDrawdown, Settings, SettingsError};
use crate::core::signals::Signals;
use crate::core::time::{MS, Nanos, SEC};
use crate::core::wire::parse::InstrumentInfo;

/// The strategy's parameters in the instrument's integer units (derived once from
/// [`Settings`] and the instrument; no floats reach a price or a size).
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Live trading (affordability uses real balances; no short selling).
    pub live: bool,
    /// Price decimals.
    pub price_precision: u8,
    /// Quantity decimals.
    pub qty_precision: u8,
    /// Tick size in price units.
    pub tick: Price,
    /// Minimum order size.
    pub qty_min: Qty,
    /// Minimum order cost.
    pub cost_min: Cash,
    /// Order size.
    pub order_qty: Qty,
    /// Position limit.
    pub max_position: Qty,
    /// Entry offset.
    pub entry_offset: Ppm,
    /// Exit offset from the average entry.
    pub exit_offset: Ppm,
    /// Maker fee (paper fills, affordability).
    pub maker_fee: Ppm,
    /// Taker fee (force exits).
    pub taker_fee: Ppm,
    /// Skew factor × 1000.
    pub skew_milli: i64,
    /// Momentum threshold, bps (a signal threshold, so `f64`).
    pub momentum_threshold_bps: f64,
    /// Momentum filter on/off.
    pub momentum_filter: bool,
    /// Volatility gate, bps.
    pub min_volatility_bps: f64,
    /// Spread filter.
    pub max_spread: Ppm,
    /// Stale order age.
    pub stale_order_ns: Nanos,
    /// Fill cooldown.
    pub fill_cooldown_ns: Nanos,
    /// Stop-loss distance.
    pub stop_loss: Ppm,
    /// Time stop.
    pub max_hold_ns: Nanos,
    /// Drawdown stop.
    pub max_drawdown: Ppm,
    /// Force-exit slippage bound.
    pub exit_slippage: Ppm,
    /// EMA length (ticks).
    pub ema_window: u32,
    /// Volatility window.
    pub vol_window_ns: Nanos,
    /// Paper starting capital.
    pub starting_capital: Cash,
    /// Live: the account's base units that are not the bot's (`None`: the balance at start).
    pub baseline: Option<Qty>,
    /// Live: the most quote the bot may commit (`None`: all of the available balance).
    pub quote_budget: Option<Cash>,
    /// What the drawdown stop does with an open position.
    pub on_drawdown: OnDrawdown,
    /// A resting exit whose target moved by less than this stays.
    pub requote_distance: Price,
    /// The exit is never closer to the average entry than this (2 x maker fee + profit).
    pub exit_floor: Ppm,
    /// The trading rate counter the core keeps within.
    pub rate_tier: Tier,
}

impl Params {
    /// Derives parameters from the settings, with the instrument's values where known.
    ///
    /// # Errors
    /// A value that cannot be expressed at the instrument's precision (e.g. `order_qty` with
    /// more decimals than the pair allows), naming the key.
    pub fn new(s: &Settings, instrument: Option<&InstrumentInfo>) -> Result<Params, SettingsError> {
        let pp = instrument.map_or(s.price_precision, |i| i.price_precision);
        let qp = instrument.map_or(s.qty_precision, |i| i.qty_precision);
        let qty = |key: &'static str, d: Decimal| {
            d.to_units(qp)
                .map(Qty)
                .map_err(|error| SettingsError::Precision {
                    key,
                    error,
                    unit: "qty",
                    precision: qp,
                })
        };
        let tick_dec = instrument
            .and_then(|i| i.price_increment)
            .unwrap_or(s.tick_size);
        let tick = tick_dec
            .to_units(pp)
            .map_err(|error| SettingsError::Precision {
                key: "tick_size",
                error,
                unit: "price",
                precision: pp,
            })?;
        let qty_min = qty(
            "qty_min",
            instrument.and_then(|i| i.qty_min).unwrap_or(s.qty_min),
        )?;
        // A duration in ns, saturating: a huge setting means "never", not a wrapped negative.
        let ns = |v: u64, unit: Nanos| i64::try_from(v).unwrap_or(i64::MAX).saturating_mul(unit);
        let cash_prec = pp + qp;
        let cost_min_d = instrument.and_then(|i| i.cost_min).unwrap_or(s.cost_min);
        let cost_min = Cash::from_decimal_round_up(cost_min_d, cash_prec);
        let capital = Cash::from_decimal_round_up(s.starting_capital, cash_prec);
        let tick = i64::try_from(tick.max(1))
            .map_err(|_| SettingsError::OutOfRange { key: "tick_size" })?;
        let baseline = s
            .base_baseline
            .map(|d| qty("base_baseline", d))
            .transpose()?;
        Ok(Params {
            live: s.live_mode,
            price_precision: pp,
            qty_precision: qp,
            tick: Price(tick),
            qty_min,
            cost_min,
            order_qty: qty("order_qty", s.order_qty)?,
            max_position: qty("max_position", s.max_position)?,
            entry_offset: Ppm::from_bps(s.entry_offset_bps),
            exit_offset: Ppm::from_bps(s.exit_offset_bps),
            maker_fee: Ppm::from_bps(s.maker_fee_bps),
            taker_fee: Ppm::from_bps(s.taker_fee_bps),
            skew_milli: (s.skew_factor * 1000.0).round() as i64,
            momentum_threshold_bps: s.momentum_threshold_bps,
            momentum_filter: s.momentum_filter_enabled,
            min_volatility_bps: s.min_volatility_bps,
            max_spread: Ppm::from_bps(s.max_spread_bps),
            stale_order_ns: ns(s.stale_order_ms, MS),
            fill_cooldown_ns: ns(s.fill_cooldown_ms, MS),
            stop_loss: Ppm::from_bps(s.stop_loss_bps),
            max_hold_ns: ns(s.max_hold_s, SEC),
            max_drawdown: Ppm((s.max_drawdown_pct * 10_000.0).round() as i64),
            exit_slippage: Ppm::from_bps(s.exit_slippage_bps),
            ema_window: s.ema_window,
            vol_window_ns: i64::from(s.vol_window_s) * SEC,
            starting_capital: capital,
            baseline,
            // Rounded down: the bot never commits more than the user allowed.
            quote_budget: s
                .quote_budget
                .map(|d| Cash::from_decimal_round_down(d, cash_prec)),
            on_drawdown: s.on_drawdown,
            requote_distance: Price(tick.saturating_mul(i64::from(s.requote_ticks))),
            exit_floor: Ppm::from_bps(2.0 * s.maker_fee_bps + s.profit_bps),
            rate_tier: s.rate_tier,
        })
    }

    /// The instrument's decimals in force.
    #[must_use]
    pub fn precision(&self) -> Precision {
        Precision {
            price: self.price_precision,
            qty: self.qty_precision,
        }
    }

    /// A position no order can exit (below the instrument's minimum size): treated as flat.
    #[must_use]
    pub fn is_dust(&self, position: i64) -> bool {
        position != 0 && position.unsigned_abs() < self.qty_min.0
    }

    /// Decimals of [`Cash`] amounts.
    #[must_use]
    pub fn cash_precision(&self) -> u8 {
        self.precision().cash()
    }

    /// Inventory skew as a rate: −skew × (position / max_position) × entry_offset.
    #[must_use]
    pub fn skew(&self, position: i64) -> Ppm {
        if self.max_position.0 == 0 {
            return Ppm(0);
        }
        let num =
            -i128::from(self.skew_milli) * i128::from(position) * i128::from(self.entry_offset.0);
        Ppm(crate::core::money::div_trunc(num, 1000 * i128::from(self.max_position.0)) as i64)
    }
}

/// What should rest on one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SideAction {
    /// Nothing: cancel whatever rests on this side.
    Cancel,
    /// Place nothing new, but a resting order of the same purpose may stay.
    Hold,
    /// This order should rest (or, for a force exit, be sent).
    Quote(Quote),
}

/// A desired order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    /// Limit price.
    pub price: Price,
    /// Size.
    pub qty: Qty,
    /// Entry, exit or forced exit.
    pub purpose: Purpose,
}

/// The strategy's answer for one tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Bid side.
    pub buy: SideAction,
    /// Ask side.
    pub sell: SideAction,
    /// The risk rule forcing an exit, if any.
    pub forced_by: Option<Rule>,
    /// Rules that held something back this tick (bit per [`Rule`]).
    pub blocked: u32,
}

impl Decision {
    fn block(&mut self, r: Rule) {
        self.blocked |= 1 << (r as u32);
    }

    /// Whether `r` held something back.
    #[must_use]
    pub fn blocked_by(&self, r: Rule) -> bool {
        self.blocked & (1 << (r as u32)) != 0
    }

    /// The action for `side`.
    #[must_use]
    pub fn side(&self, side: Side) -> SideAction {
        match side {
            Side::Buy => self.buy,
            Side::Sell => self.sell,
        }
    }
}

/// Everything [`decide`] looks at.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// Current time.
    pub now: Nanos,
    /// The (valid) book.
    pub book: &'a Book,
    /// Signals (microprice present).
    pub signals: &'a Signals,
    /// The account.
    pub acct: &'a Accounting,
    /// Our live orders.
    pub orders: &'a OrderManager,
    /// A stop that fired and holds until the position is flat (the engine latches it):
    /// the exit is forced whatever the price does.
    pub latched: Option<Rule>,
    /// A rule holding back every new entry (a position drift, a drawdown stop).
    pub no_entries: Option<Rule>,
}

/// The seed strategy for one tick. Pure: same inputs, same decision.
#[must_use]
pub fn decide(p: &Params, inp: &Inputs<'_>) -> Decision {
    let mut d = Decision {
        buy: SideAction::Cancel,
        sell: SideAction::Cancel,
        forced_by: None,
        blocked: 0,
    };
    let (Some(micro), Some(bid), Some(ask)) =
        (inp.signals.micro, inp.book.best_bid(), inp.book.best_ask())
    else {
        d.block(Rule::BookInvalid);
        return d;
    };
    let (bid, ask) = (bid.price, ask.price);
    let pos = inp.acct.position;
    let skew = p.skew(pos);
    // Spread in ppm of the microprice.
    // floor(x / m) <= max  ⟺  x < (max + 1)·m for m > 0: no 128-bit divide on every tick.
    let spread_ok = i128::from(ask.0 - bid.0) * crate::core::money::FINE * i128::from(PPM_ONE)
        < (i128::from(p.max_spread.0) + 1) * micro.0.max(1);
    let mom = inp.signals.momentum_bps;
    let up = p.momentum_filter && mom > p.momentum_threshold_bps;
    let down = p.momentum_filter && mom < -p.momentum_threshold_bps;

    if pos != 0 && !p.is_dust(pos) {
        exit_decision(p, inp, &mut d, micro, bid, ask, skew, spread_ok, up, down);
        return d;
    }
    if let Some(r) = inp.no_entries {
        d.block(r);
        return d;
    }

    // Flat (or dust, which no order can exit): two entry quotes, gated by volatility and spread.
    // Strictly above the threshold, as the seed rule says; a threshold of 0 turns the gate off
    // (a frozen market has volatility exactly 0, which "> 0" would still block).
    let vol_ok = p.min_volatility_bps <= 0.0 || inp.signals.vol_bps() > p.min_volatility_bps;
    if !vol_ok {
        d.block(Rule::Volatility);
    }
    if !spread_ok {
        d.block(Rule::Spread);
    }
    for side in [Side::Buy, Side::Sell] {
        if !vol_ok || !spread_ok {
            continue;
        }
        if side == Side::Buy && down {
            d.block(Rule::MomentumDown);
            continue;
        }
        if side == Side::Sell && up {
            d.block(Rule::MomentumUp);
            continue;
        }
        let price = match side {
            Side::Buy => micro
                .scale(Ppm(-p.entry_offset.0 + skew.0))
                .floor_to_tick(p.tick)
                .min(Price(ask.0 - p.tick.0)),
            Side::Sell => micro
                .scale(Ppm(p.entry_offset.0 + skew.0))
                .ceil_to_tick(p.tick)
                .max(Price(bid.0 + p.tick.0)),
        };
        if price.0 <= 0 {
            continue;
        }
        // Orders being cancelled can still fill: they count against the limit until gone.
        let exposure = pos.unsigned_abs() + cancelling(inp.orders, side).0 + p.order_qty.0;
        if exposure > p.max_position.0 {
            d.block(Rule::PositionLimit);
            continue;
        }
        if !min_size_ok(p, price, p.order_qty) {
            d.block(Rule::MinSize);
            continue;
        }
        if !affordable(p, inp, side, price, p.order_qty, p.maker_fee) {
            d.block(Rule::Affordability);
            continue;
        }
        let q = SideAction::Quote(Quote {
            price,
            qty: p.order_qty,
            purpose: Purpose::Entry,
        });
        match side {
            Side::Buy => d.buy = q,
            Side::Sell => d.sell = q,
        }
    }
    d
}

#[allow(clippy::too_many_arguments)]
fn exit_decision(
    p: &Params,
    inp: &Inputs<'_>,
    d: &mut Decision,
    micro: FinePrice,
    bid: Price,
    ask: Price,
    skew: Ppm,
    spread_ok: bool,
    up: bool,
    down: bool,
) {
    let long = inp.acct.position > 0;
    let qty = Qty(inp.acct.position.unsigned_abs());
    let Some(avg) = inp.acct.avg_entry() else {
        return;
    };
    let close_side = if long { Side::Sell } else { Side::Buy };

    // Risk first: stop-loss and time stop force a taker exit through the touch.
    let stop = if long {
        micro < avg.scale(Ppm(-p.stop_loss.0))
    } else {
        micro > avg.scale(p.stop_loss)
    };
    let held_too_long = inp
        .acct
        .trip
        .is_some_and(|t| inp.now - t.opened_at > p.max_hold_ns);
    let forced = if let Some(r) = inp.latched {
        Some(r)
    } else if stop {
        Some(Rule::StopLoss)
    } else if held_too_long {
        Some(Rule::TimeStop)
    } else {
        None
    };

    let action = if let Some(rule) = forced {
        d.forced_by = Some(rule);
        d.block(rule);
        let price = if long {
            bid.fine()
                .scale(Ppm(-p.exit_slippage.0))
                .ceil_to_tick(p.tick)
        } else {
            ask.fine().scale(p.exit_slippage).floor_to_tick(p.tick)
        };
        // Live, long: never more than the account really holds above the baseline.
        let qty = if p.live && long {
            Qty(qty.0.min(live_sellable(inp).max(0).unsigned_abs()))
        } else {
            qty
        };
        if qty < p.qty_min {
            d.block(if p.live && long {
                Rule::Affordability
            } else {
                Rule::MinSize
            });
            SideAction::Hold
        } else {
            SideAction::Quote(Quote {
                price,
                qty,
                purpose: Purpose::ForceExit,
            })
        }
    } else {
        // The skew moves the exit toward the touch, but never closer to the average entry than
        // both sides' fees plus the profit target: a skewed exit must still win.
        let price = if long {
            let away = (p.exit_offset.0 + skew.0).max(p.exit_floor.0);
            let raw = avg.scale(Ppm(away)).ceil_to_tick(p.tick);
            raw.max(Price(bid.0 + p.tick.0))
        } else {
            let away = (p.exit_offset.0 - skew.0).max(p.exit_floor.0);
            let raw = avg.scale(Ppm(-away)).floor_to_tick(p.tick);
            raw.min(Price(ask.0 - p.tick.0))
        };
        if !spread_ok {
            d.block(Rule::Spread);
            SideAction::Hold
        } else if long && up {
            d.block(Rule::MomentumUp);
            SideAction::Hold
        } else if !long && down {
            d.block(Rule::MomentumDown);
            SideAction::Hold
        } else if !min_size_ok(p, price, qty) {
            d.block(Rule::MinSize);
            SideAction::Hold
        } else if !affordable(p, inp, close_side, price, qty, p.maker_fee) {
            d.block(Rule::Affordability);
            SideAction::Hold
        } else {
            SideAction::Quote(Quote {
                price,
                qty,
                purpose: Purpose::Exit,
            })
        }
    };
    // No churn: only the closing side trades while a position is open.
    match close_side {
        Side::Sell => {
            d.sell = action;
            d.buy = SideAction::Cancel;
        }
        Side::Buy => {
            d.buy = action;
            d.sell = SideAction::Cancel;
        }
    }
}

fn min_size_ok(p: &Params, price: Price, qty: Qty) -> bool {
    qty >= p.qty_min && Cash::notional(price, qty) >= p.cost_min
}

/// Remaining quantity of our `side` orders whose cancel is in flight.
fn cancelling(orders: &OrderManager, side: Side) -> Qty {
    Qty(orders
        .live()
        .filter(|o| o.side() == side && o.state == OrderState::PendingCancel)
        .map(|o| o.remaining().0)
        .sum())
}

/// Live: the own base a new sell may take. A sell whose cancel is in flight can still fill:
/// its base stays committed until the cancel is confirmed, as a cancelling buy's cash does.
fn live_sellable(inp: &Inputs<'_>) -> i64 {
    let cancelling = i64::try_from(cancelling(inp.orders, Side::Sell).0).unwrap_or(i64::MAX);
    inp.acct.sellable().saturating_sub(cancelling)
}

fn affordable(
    p: &Params,
    inp: &Inputs<'_>,
    side: Side,
    price: Price,
    qty: Qty,
    fee_rate: Ppm,
) -> bool {
    match side {
        Side::Buy => {
            // Cash of buys being cancelled is still committed until the cancel is confirmed.
            let reserved: i128 = inp
                .orders
                .live()
                .filter(|o| o.side() == Side::Buy && o.state == OrderState::PendingCancel)
                .map(|o| {
                    let n = Cash::notional(o.price(), o.remaining());
                    n.0 + n.times_ppm_ceil(p.maker_fee).0
                })
                .sum();
            let cost = Cash::notional(price, qty);
            let fee = cost.times_ppm_ceil(fee_rate);
            inp.acct.spendable().0 - reserved >= cost.0 + fee.0
        }
        // Spot: a live sell needs the bot's own base, and never reaches into the baseline (the
        // user's holding). Paper may go short.
        Side::Sell => !p.live || live_sellable(inp) >= i64::try_from(qty.0).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests;
