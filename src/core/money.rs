//! Fixed-point money: prices, quantities, cash and rates as integers.
//!
//! Kraken sends prices and quantities as decimal text (bare JSON numbers whose trailing zeros
//! matter for the book checksum). We never let those values pass through `f64`: they are parsed
//! exactly into a [`Decimal`] (mantissa + scale) and then into integer units of the instrument:
//!
//! | type | unit | example (BTC/USD, precision 1 / 8) |
//! |---|---|---|
//! | [`Price`] | 10^-price_precision quote | `81011.5` → `810115` |
//! | [`Qty`] | 10^-qty_precision base ("lots") | `0.00123440` → `123440` |
//! | [`Cash`] | 10^-(price_precision + qty_precision) quote | price × qty, exactly |
//! | [`Ppm`] | parts per million (1 bp = 100 ppm) | `entry_offset_bps = 20` → `2000` |
//! | [`FinePrice`] | price units × [`FINE`] | a microprice between two ticks |
//!
//! `Cash` is wide (`i128`) because price × qty needs the sum of both precisions; a notional of
//! 10^20 units still fits with room for fee arithmetic.

use std::fmt;

/// Sub-unit resolution of [`FinePrice`]: a millionth of a price unit.
pub const FINE: i128 = 1_000_000;
/// One whole (1.0) in [`Ppm`].
pub const PPM_ONE: i64 = 1_000_000;
/// Largest scale a [`Decimal`] may carry; more digits than this is not a price or a size.
pub const MAX_SCALE: u8 = 18;

/// A limit price in integer units of the instrument's price precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Price(pub i64);

/// A base-currency quantity in integer lots (10^-qty_precision).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Qty(pub u64);

/// An instrument's decimals: prices are [`Price`] in units of 10^-`price`, sizes [`Qty`] in
/// units of 10^-`qty`, and cash amounts [`Cash`] in units of 10^-[`cash`](Precision::cash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Precision {
    /// Price decimals.
    pub price: u8,
    /// Quantity decimals.
    pub qty: u8,
}

impl Precision {
    /// Decimals of [`Cash`]: a price times a quantity, exactly.
    #[must_use]
    pub const fn cash(self) -> u8 {
        self.price + self.qty
    }
}

/// Quote-currency amount in units of 10^-(price_precision + qty_precision): the exact product
/// of a [`Price`] and a [`Qty`]. Used for cash, notional, fees and PnL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cash(pub i128);

/// A rate in parts per million (bps × 100). Offsets, fees and thresholds on the decision path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ppm(pub i64);

/// A price with sub-unit resolution (price units × [`FINE`]), e.g. a microprice or an average
/// entry price. Rounded to a tradeable [`Price`] only at the edge, in the passive direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FinePrice(pub i128);

/// Why decimal text could not become an exact integer amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NumError {
    /// Not a JSON/TOML number (empty, stray characters, missing digits).
    #[error("not a decimal number")]
    Syntax,
    /// More significant digits or a larger value than the integer type holds.
    #[error("number out of range")]
    Overflow,
    /// More decimals than the instrument precision, and the extra digits are not zeros.
    #[error("more decimals than the precision allows")]
    TooPrecise,
    /// A negative value where only non-negative ones make sense.
    #[error("negative value")]
    Negative,
}

/// An exact decimal as written: `mantissa / 10^scale`, sign separate.
///
/// `scale` is the number of decimals as written (`0.10000000` has scale 8), which is what the
/// "as written" checksum mode needs. Exponents are folded into the scale (`1E-8` → 1, scale 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decimal {
    /// Digits without the point.
    pub mantissa: u64,
    /// Decimals after the point.
    pub scale: u8,
    /// True for a leading minus.
    pub negative: bool,
}

pub(crate) const POW10: [u64; 20] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
    10_000_000_000_000,
    100_000_000_000_000,
    1_000_000_000_000_000,
    10_000_000_000_000_000,
    100_000_000_000_000_000,
    1_000_000_000_000_000_000,
    10_000_000_000_000_000_000,
];

/// Decimal digits of [`FINE`].
const FINE_DIGITS: u32 = 6;
const _: () = assert!(FINE == 10i128.pow(FINE_DIGITS));

/// 10^n as `f64`: from a table while exact (up to 10^22), else `powi`.
#[inline]
#[must_use]
pub fn pow10_f64(n: u32) -> f64 {
    const EXACT: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    EXACT
        .get(n as usize)
        .copied()
        .unwrap_or_else(|| 10f64.powi(n as i32))
}

/// 10^n as u64, or `None` past 10^19.
#[must_use]
pub fn pow10(n: u32) -> Option<u64> {
    POW10.get(n as usize).copied()
}

impl Decimal {
    /// Parses JSON-number text (`-?digits[.digits][(e|E)[+-]digits]`) exactly.
    ///
    /// # Errors
    /// [`NumError::Syntax`] for anything that is not a number, [`NumError::Overflow`] when the
    /// digits do not fit a `u64` mantissa or the scale exceeds [`MAX_SCALE`].
    pub fn parse(text: &[u8]) -> Result<Decimal, NumError> {
        match Decimal::parse_prefix(text)? {
            (d, n) if n == text.len() => Ok(d),
            _ => Err(NumError::Syntax),
        }
    }

    /// Parses the number at the start of `text` in one pass and returns it with the number of
    /// bytes it took; the JSON cursor uses this so a number is read exactly once.
    ///
    /// # Errors
    /// As [`Decimal::parse`].
    #[inline]
    pub fn parse_prefix(text: &[u8]) -> Result<(Decimal, usize), NumError> {
        let mut i = 0;
        let negative = text.first() == Some(&b'-');
        if negative {
            i = 1;
        }
        let (mut mantissa, int_end) = accumulate_digits(text, i, 0)?;
        if int_end == i {
            return Err(NumError::Syntax);
        }
        i = int_end;
        let mut frac_digits: i32 = 0;
        if text.get(i) == Some(&b'.') {
            let (m, frac_end) = accumulate_digits(text, i + 1, mantissa)?;
            if frac_end == i + 1 {
                return Err(NumError::Syntax);
            }
            frac_digits = (frac_end - i - 1) as i32;
            mantissa = m;
            i = frac_end;
        }
        let mut exp: i32 = 0;
        if matches!(text.get(i), Some(b'e' | b'E')) {
            i += 1;
            let mut exp_neg = false;
            if let Some(&s @ (b'+' | b'-')) = text.get(i) {
                exp_neg = s == b'-';
                i += 1;
            }
            let start = i;
            while let Some(&b) = text.get(i) {
                if !b.is_ascii_digit() {
                    break;
                }
                if exp > 1000 {
                    return Err(NumError::Overflow);
                }
                exp = exp * 10 + i32::from(b - b'0');
                i += 1;
            }
            if i == start {
                return Err(NumError::Syntax);
            }
            if exp_neg {
                exp = -exp;
            }
        }
        // "1.2.3", "12-3": a number glued to more number characters is not a number.
        if matches!(
            text.get(i),
            Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
        ) {
            return Err(NumError::Syntax);
        }
        let mut scale = frac_digits - exp;
        if scale < 0 {
            // A positive exponent beyond the written decimals: multiply it out.
            let mul = pow10((-scale) as u32).ok_or(NumError::Overflow)?;
            mantissa = mantissa.checked_mul(mul).ok_or(NumError::Overflow)?;
            scale = 0;
        }
        if scale > i32::from(MAX_SCALE) {
            return Err(NumError::Overflow);
        }
        Ok((
            Decimal {
                mantissa,
                scale: scale as u8,
                negative,
            },
            i,
        ))
    }

    /// The common shape only — `digits[.digits]`, at most eight digits before the point and
    /// eight after, with at least eight bytes from each run's start — parsed branch-light: each
    /// run is found and converted eight bytes at a time. Returns the decimal and the bytes it
    /// took, or `None` for anything else (sign, exponent, longer runs, near the end of the
    /// text), which [`Decimal::parse_prefix`] then reads. Whatever follows the digits is left
    /// to the caller: where it is `Some`, `parse_prefix` gives the same answer unless the next
    /// byte glues more number onto it (`1.5e3`), which the caller must reject.
    #[inline(always)]
    #[must_use]
    pub fn parse_plain(text: &[u8]) -> Option<(Decimal, usize)> {
        let (int, n) = digit_run(text)?;
        if n == 0 {
            return None;
        }
        if text.get(n) != Some(&b'.') {
            return Some((
                Decimal {
                    mantissa: int,
                    scale: 0,
                    negative: false,
                },
                n,
            ));
        }
        let (frac, m) = digit_run(text.get(n + 1..)?)?;
        if m == 0 {
            return None;
        }
        Some((
            Decimal {
                mantissa: int * POW10[m] + frac,
                scale: m as u8,
                negative: false,
            },
            n + 1 + m,
        ))
    }

    /// Parses a decimal from a `str` (config values, CLI flags).
    ///
    /// # Errors
    /// As [`Decimal::parse`].
    pub fn parse_str(text: &str) -> Result<Decimal, NumError> {
        Decimal::parse(text.as_bytes())
    }

    /// The value in integer units of 10^-precision, exactly.
    ///
    /// # Errors
    /// [`NumError::Negative`] for a negative value, [`NumError::TooPrecise`] when the text has
    /// non-zero digits beyond `precision`, [`NumError::Overflow`] when it does not fit.
    pub fn to_units(self, precision: u8) -> Result<u64, NumError> {
        if self.negative && self.mantissa != 0 {
            return Err(NumError::Negative);
        }
        if self.scale <= precision {
            let mul = pow10(u32::from(precision - self.scale)).ok_or(NumError::Overflow)?;
            self.mantissa.checked_mul(mul).ok_or(NumError::Overflow)
        } else {
            let div = pow10(u32::from(self.scale - precision)).ok_or(NumError::TooPrecise)?;
            if !self.mantissa.is_multiple_of(div) {
                return Err(NumError::TooPrecise);
            }
            Ok(self.mantissa / div)
        }
    }

    /// Units at `precision`, digits beyond it dropped (a balance of 0.123456789 BTC is
    /// 0.12345678 usable at 8 decimals).
    ///
    /// # Errors
    /// Negative values and overflow.
    pub fn to_units_floor(self, precision: u8) -> Result<u64, NumError> {
        if self.scale <= precision {
            return self.to_units(precision);
        }
        let div = pow10(u32::from(self.scale - precision)).ok_or(NumError::TooPrecise)?;
        Decimal {
            mantissa: self.mantissa / div,
            scale: precision,
            negative: self.negative,
        }
        .to_units(precision)
    }

    /// The value as `f64`, for display and derived signals only.
    #[must_use]
    pub fn to_f64(self) -> f64 {
        let v = self.mantissa as f64 / pow10_f64(u32::from(self.scale));
        if self.negative { -v } else { v }
    }
}

/// Appends the decimal digits of `text` from `i` to `acc`; returns the new value and the index
/// after the last digit. Runs of eight digits (a quantity's fraction) are taken in one step.
#[inline]
fn accumulate_digits(text: &[u8], mut i: usize, mut acc: u64) -> Result<(u64, usize), NumError> {
    while let Some(chunk) = text.get(i..i + 8) {
        let v = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let Some(eight) = eight_digits(v) else { break };
        acc = acc
            .checked_mul(100_000_000)
            .and_then(|a| a.checked_add(eight))
            .ok_or(NumError::Overflow)?;
        i += 8;
    }
    while let Some(&b) = text.get(i) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        acc = acc
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d)))
            .ok_or(NumError::Overflow)?;
        i += 1;
    }
    Ok((acc, i))
}

/// The leading run of ASCII digits in `text` (at most eight) and its value, or `None` when
/// the run is longer than eight digits or `text` is too short to tell (fewer than eight bytes,
/// or eight digits and nothing after them).
#[inline(always)]
fn digit_run(text: &[u8]) -> Option<(u64, usize)> {
    let (v, n) = digit_prefix(text)?;
    if n == 8 && text.get(8)?.is_ascii_digit() {
        return None;
    }
    Some((v, n))
}

/// The value and count of the first (up to) eight ASCII digits of `text`, which must have
/// eight bytes; a count of eight says nothing about what follows.
#[inline(always)]
fn digit_prefix(text: &[u8]) -> Option<(u64, usize)> {
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let v = u64::from_le_bytes(text.get(..8)?.try_into().ok()?);
    // Per byte, bit 7 of `x + 0x50` is set from '0' up and bit 7 of `x + 0x46` from ':' up;
    // neither sum carries into the next byte because `x` has bit 7 cleared. Bytes with bit 7
    // set are not ASCII, so not digits.
    let x = v & !HIGH;
    let digit = x.wrapping_add(0x5050_5050_5050_5050) & !x.wrapping_add(0x4646_4646_4646_4646) & !v;
    let stop = !digit & HIGH;
    if stop == 0 {
        return Some((eight_digits_unchecked(v), 8));
    }
    let n = (stop.trailing_zeros() / 8) as usize;
    if n == 0 {
        return Some((0, 0));
    }
    // Right-align the n digits behind '0' bytes: byte 0 is the first (most significant)
    // digit in little-endian order, so shift the digits up and fill below.
    let shift = 8 * (8 - n as u32);
    let aligned = (v << shift) | (ZEROS >> (64 - shift));
    Some((eight_digits_unchecked(aligned), n))
}

/// A whole number of one to sixteen digits at the start of `text`, read eight bytes at a
/// time, with the bytes it took; `None` for anything else (and near the end of the text),
/// which the general parser then reads. As with [`Decimal::parse_plain`], the caller checks
/// what follows.
#[inline(always)]
#[must_use]
pub fn parse_plain_u64(text: &[u8]) -> Option<(u64, usize)> {
    let (high, n) = digit_prefix(text)?;
    if n == 0 {
        return None;
    }
    if n < 8 {
        return Some((high, n));
    }
    let (low, m) = digit_run(text.get(8..)?)?;
    Some((high * POW10[m] + low, 8 + m))
}

/// The value of eight ASCII digits read little-endian into `v`; the bytes must be digits.
#[inline(always)]
fn eight_digits_unchecked(v: u64) -> u64 {
    let low = v.wrapping_sub(0x3030_3030_3030_3030);
    let pairs = low.wrapping_mul(10).wrapping_add(low >> 8);
    ((pairs & 0x0000_00FF_0000_00FF).wrapping_mul(100 + (1_000_000 << 32))
        + ((pairs >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(1 + (10_000 << 32)))
        >> 32
}

/// The value of eight ASCII digits read little-endian into `v`, or `None` if any byte is not
/// a digit (the classic SWAR conversion: pairs, then quads, then the eight).
#[inline]
fn eight_digits(v: u64) -> Option<u64> {
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    let low = v.wrapping_sub(ZEROS);
    // Every byte in '0'..='9': subtracting '0' leaves 0..9, and adding 6 does not carry past 15.
    let over = low.wrapping_add(0x0606_0606_0606_0606);
    if (v & 0xF0F0_F0F0_F0F0_F0F0) != ZEROS || (over & 0xF0F0_F0F0_F0F0_F0F0) != 0 {
        return None;
    }
    Some(eight_digits_unchecked(v))
}

/// `n / d` rounded toward zero, exactly as `i128` division, but on the CPU's 64-bit divide
/// when both fit: a 128-bit divide is a library call several times slower, and the core
/// divides on every tick.
///
/// # Panics
/// When `d` is zero, as `/` does.
#[inline]
#[must_use]
pub fn div_trunc(n: i128, d: i128) -> i128 {
    if let (Ok(n64), Ok(d64)) = (i64::try_from(n), i64::try_from(d))
        && d64 != 0
        && let Some(q) = n64.checked_div(d64)
    {
        return i128::from(q);
    }
    n / d
}

/// Writes `value / 10^precision` exactly, e.g. `(810115, 1)` → `81011.5`, `(5, 8)` → `0.00000005`.
///
/// # Errors
/// Only what the underlying formatter returns.
pub fn write_fixed(f: &mut dyn fmt::Write, value: i128, precision: u8) -> fmt::Result {
    let neg = value < 0;
    let abs = value.unsigned_abs();
    if neg {
        f.write_char('-')?;
    }
    if precision == 0 {
        return write!(f, "{abs}");
    }
    let div = 10u128.pow(u32::from(precision));
    write!(
        f,
        "{}.{:0width$}",
        abs / div,
        abs % div,
        width = precision as usize
    )
}

/// `Display` adapter for an integer amount with a precision.
#[derive(Debug, Clone, Copy)]
pub struct Fixed {
    value: i128,
    precision: u8,
}

impl Fixed {
    /// Wraps `value` units of 10^-precision for printing.
    #[must_use]
    pub fn new(value: i128, precision: u8) -> Fixed {
        Fixed { value, precision }
    }
}

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_fixed(f, self.value, self.precision)
    }
}

impl Price {
    /// Exact price from decimal text at `precision`.
    ///
    /// # Errors
    /// As [`Decimal::to_units`]; zero is allowed here (callers that need a positive price check).
    pub fn parse_checked(text: &[u8], precision: u8) -> Result<Price, NumError> {
        let units = Decimal::parse(text)?.to_units(precision)?;
        i64::try_from(units)
            .map(Price)
            .map_err(|_| NumError::Overflow)
    }

    /// For printing with the instrument's precision.
    #[must_use]
    pub fn show(self, precision: u8) -> Fixed {
        Fixed::new(i128::from(self.0), precision)
    }

    /// This price with sub-unit resolution.
    #[must_use]
    pub fn fine(self) -> FinePrice {
        FinePrice(i128::from(self.0) * FINE)
    }

    /// The value as `f64` (signals and display only).
    #[must_use]
    pub fn to_f64(self, precision: u8) -> f64 {
        self.0 as f64 / pow10_f64(u32::from(precision))
    }
}

impl Qty {
    /// Exact quantity from decimal text at `precision`.
    ///
    /// # Errors
    /// As [`Decimal::to_units`].
    pub fn parse_checked(text: &[u8], precision: u8) -> Result<Qty, NumError> {
        Decimal::parse(text)?.to_units(precision).map(Qty)
    }

    /// For printing with the instrument's precision.
    #[must_use]
    pub fn show(self, precision: u8) -> Fixed {
        Fixed::new(i128::from(self.0), precision)
    }

    /// The value as `f64` (signals and display only).
    #[must_use]
    pub fn to_f64(self, precision: u8) -> f64 {
        self.0 as f64 / pow10_f64(u32::from(precision))
    }

    /// `self - other`, never below zero.
    #[must_use]
    pub fn saturating_sub(self, other: Qty) -> Qty {
        Qty(self.0.saturating_sub(other.0))
    }
}

impl Cash {
    /// The exact notional of `qty` at `price`.
    #[must_use]
    pub fn notional(price: Price, qty: Qty) -> Cash {
        Cash(i128::from(price.0) * i128::from(qty.0))
    }

    /// `self × rate`, rounded up in magnitude (a fee estimate never undercharges).
    #[must_use]
    pub fn times_ppm_ceil(self, rate: Ppm) -> Cash {
        let num = self.0 * i128::from(rate.0);
        let den = i128::from(PPM_ONE);
        Cash(div_ceil_signed(num, den))
    }

    /// For printing with `precision` (= price + qty precision).
    #[must_use]
    pub fn show(self, precision: u8) -> Fixed {
        Fixed::new(self.0, precision)
    }

    /// The value as `f64` (display only).
    #[must_use]
    pub fn to_f64(self, precision: u8) -> f64 {
        self.0 as f64 / pow10_f64(u32::from(precision))
    }

    /// Exact cash amount from decimal text (balances, fees and costs from REST).
    /// Digits beyond `precision` are rounded up in magnitude, so costs are never understated.
    ///
    /// # Errors
    /// As [`Decimal::parse`].
    pub fn parse_round_up(text: &[u8], precision: u8) -> Result<Cash, NumError> {
        Ok(Cash::from_decimal_round_up(
            Decimal::parse(text)?,
            precision,
        ))
    }

    /// A decimal as cash at `precision`, digits beyond it rounded up in magnitude.
    #[must_use]
    pub fn from_decimal_round_up(d: Decimal, precision: u8) -> Cash {
        Cash::from_decimal_with(d, precision, div_ceil_signed)
    }

    /// A decimal as cash at `precision`, digits beyond it dropped (toward zero): for amounts
    /// we receive (balances, proceeds), never overstated.
    #[must_use]
    pub fn from_decimal_round_down(d: Decimal, precision: u8) -> Cash {
        Cash::from_decimal_with(d, precision, |m, div| m / div)
    }

    /// The magnitude rescaled to `precision`, `shrink(magnitude, divisor)` deciding the
    /// rounding when digits are dropped; the sign applied after.
    fn from_decimal_with(d: Decimal, precision: u8, shrink: impl Fn(i128, i128) -> i128) -> Cash {
        let m = i128::from(d.mantissa);
        let v = if d.scale <= precision {
            m * 10i128.pow(u32::from(precision - d.scale))
        } else {
            shrink(m, 10i128.pow(u32::from(d.scale - precision)))
        };
        Cash(if d.negative { -v } else { v })
    }
}

impl Ppm {
    /// From basis points given as a float in config (`20` → 2000 ppm), rounded to the nearest ppm.
    #[must_use]
    pub fn from_bps(bps: f64) -> Ppm {
        Ppm((bps * 100.0).round() as i64)
    }

    /// Back to basis points, for display.
    #[must_use]
    pub fn bps(self) -> f64 {
        self.0 as f64 / 100.0
    }
}

impl FinePrice {
    /// `cash / qty` as a fine price: an average entry price.
    #[must_use]
    pub fn average(cost: Cash, qty: Qty) -> FinePrice {
        if qty.0 == 0 {
            return FinePrice(0);
        }
        FinePrice(cost.0 * FINE / i128::from(qty.0))
    }

    /// `self × (1 + rate)`, exact to the fine resolution (rounded toward zero).
    #[must_use]
    pub fn scale(self, rate: Ppm) -> FinePrice {
        FinePrice(div_trunc(
            self.0 * i128::from(PPM_ONE + rate.0),
            i128::from(PPM_ONE),
        ))
    }

    /// The largest tick-aligned price at or below this one (how a buy rounds: passive).
    #[must_use]
    pub fn floor_to_tick(self, tick: Price) -> Price {
        let tick = tick.0.max(1);
        // q ticks of t = tick·FINE fine units are q·tick price units. 64-bit when it fits.
        if let (Ok(v), Some(t)) = (i64::try_from(self.0), tick.checked_mul(FINE as i64)) {
            return Price(v.div_euclid(t) * tick);
        }
        let t = i128::from(tick) * FINE;
        Price((self.0.div_euclid(t) * i128::from(tick)) as i64)
    }

    /// The smallest tick-aligned price at or above this one (how a sell rounds: passive).
    #[must_use]
    pub fn ceil_to_tick(self, tick: Price) -> Price {
        let tick = tick.0.max(1);
        if let (Ok(v), Some(t)) = (i64::try_from(self.0), tick.checked_mul(FINE as i64)) {
            let q = v.div_euclid(t) + i64::from(v.rem_euclid(t) != 0);
            return Price(q * tick);
        }
        let t = i128::from(tick) * FINE;
        let q = self.0.div_euclid(t) + i128::from(self.0.rem_euclid(t) != 0);
        Price((q * i128::from(tick)) as i64)
    }

    /// As `f64` in quote currency (signals and display only).
    #[must_use]
    pub fn to_f64(self, precision: u8) -> f64 {
        // i64 → f64 is one instruction, i128 → f64 a library call; same value when it fits.
        // (`map_or_else`: `map_or`'s default would be computed, through the library call, always.)
        let v = i64::try_from(self.0).map_or_else(|_| self.0 as f64, |v| v as f64);
        // One division by the exact power of ten (this runs whenever the touch moves).
        v / pow10_f64(FINE_DIGITS + u32::from(precision))
    }
}

/// Ceiling division that rounds away from zero for positive results and toward zero for
/// negative ones (a fee on a negative amount is still an upper bound in magnitude).
fn div_ceil_signed(num: i128, den: i128) -> i128 {
    let q = div_trunc(num, den);
    if num != q * den && ((num > 0) == (den > 0)) {
        q + 1
    } else {
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn decimal_text_round_trips_exactly(mantissa in any::<u64>(), scale in 0u8..=12,
                                            tail in r"[,} \]]{0,12}") {
            let mut text = String::new();
            write_fixed(&mut text, i128::from(mantissa), scale).unwrap();
            let written = text.len();
            text.push_str(&tail);
            let (d, n) = Decimal::parse_prefix(text.as_bytes()).unwrap();
            prop_assert_eq!(n, written);
            prop_assert_eq!((d.mantissa, d.scale, d.negative), (mantissa, scale, false));
        }

        #[test]
        fn ceiling_division_equals_the_i128_formula(num in any::<i128>(), small in any::<i64>(),
                                                    den in prop_oneof![1i128..2_000_000, -5i128..=-1]) {
            for n in [num / 2, i128::from(small)] {
                let q = n / den;
                let want = if n % den != 0 && ((n > 0) == (den > 0)) { q + 1 } else { q };
                prop_assert_eq!(div_ceil_signed(n, den), want);
            }
        }

        #[test]
        fn tick_rounding_and_scaling_equal_the_i128_formulas(v in -(1i128 << 70)..(1i128 << 70),
                                                             tick in 1i64..1_000,
                                                             rate in -500_000i64..500_000) {
            let p = FinePrice(v);
            let t = i128::from(tick) * FINE;
            prop_assert_eq!(i128::from(p.floor_to_tick(Price(tick)).0), v.div_euclid(t) * t / FINE);
            let q = v.div_euclid(t) + i128::from(v.rem_euclid(t) != 0);
            prop_assert_eq!(i128::from(p.ceil_to_tick(Price(tick)).0), q * t / FINE);
            if v.abs() < (1i128 << 60) {
                let want = v * i128::from(PPM_ONE + rate) / i128::from(PPM_ONE);
                prop_assert_eq!(p.scale(Ppm(rate)).0, want);
            }
        }

        #[test]
        fn plain_decimals_agree_with_the_full_parser(
            text in r"[0-9]{0,10}(\.[0-9]{0,10})?[0-9.eE+\-,}a ]{0,10}") {
            let t = text.as_bytes();
            if let Some((d, n)) = Decimal::parse_plain(t) {
                let glued = matches!(t.get(n), Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'));
                if !glued {
                    prop_assert_eq!(Decimal::parse_prefix(t), Ok((d, n)));
                }
                prop_assert!(t[..n].iter().all(|b| b.is_ascii_digit() || *b == b'.'));
            }
        }

        #[test]
        fn plain_whole_numbers_agree_with_the_full_parser(v in prop_oneof![
            any::<u32>().prop_map(u64::from), 0u64..10_000_000_000_000_000, Just(0)],
            tail in r"[,}. e0-9a]{8}") {
            let text = format!("{v}{tail}");
            let t = text.as_bytes();
            if let Some((got, n)) = parse_plain_u64(t) {
                let glued = matches!(t.get(n), Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'));
                prop_assert!(!t[n].is_ascii_digit());
                if !glued {
                    prop_assert_eq!(Decimal::parse_prefix(t), Ok((Decimal { mantissa: got, scale: 0, negative: false }, n)));
                }
            }
            // Kraken's shape (a checksum followed by a comma) always takes this path.
            let text = format!("{v},\"timestamp\"");
            prop_assert_eq!(parse_plain_u64(text.as_bytes()), Some((v, v.to_string().len())));
        }

        #[test]
        fn kraken_shaped_numbers_take_the_plain_path(int in 0u64..100_000_000, frac in "[0-9]{0,8}",
                                                    tail in prop_oneof![Just(","), Just("}")]) {
            let number = if frac.is_empty() { int.to_string() } else { format!("{int}.{frac}") };
            let text = format!("{number}{tail}\"qty\":0}}]");
            let want = Decimal::parse_prefix(text.as_bytes()).unwrap();
            prop_assert_eq!(Decimal::parse_plain(text.as_bytes()), Some(want));
        }

        #[test]
        fn eight_digits_at_once_reads_every_digit_string(digits in "[0-9]{8}") {
            let bytes: [u8; 8] = digits.as_bytes().try_into().unwrap();
            prop_assert_eq!(eight_digits(u64::from_le_bytes(bytes)), digits.parse::<u64>().ok());
        }

        #[test]
        fn eight_digits_at_once_equals_one_by_one(bytes in proptest::array::uniform8(any::<u8>())) {
            let want = bytes.iter().try_fold(0u64, |a, b| {
                b.is_ascii_digit().then(|| a * 10 + u64::from(b - b'0'))
            });
            prop_assert_eq!(eight_digits(u64::from_le_bytes(bytes)), want);
        }

        #[test]
        fn fast_division_equals_i128_division(n in any::<i128>(), small_n in any::<i64>(),
                                              d in any::<i128>(), small_d in any::<i64>()) {
            for n in [n, i128::from(small_n)] {
                for d in [d, i128::from(small_d)] {
                    if d != 0 && !(n == i128::MIN && d == -1) {
                        prop_assert_eq!(div_trunc(n, d), n / d);
                    }
                }
            }
        }
    }

    #[test]
    fn mantissa_overflow_is_an_error_not_a_wrap() {
        assert_eq!(
            Decimal::parse(b"18446744073709551616"),
            Err(NumError::Overflow)
        );
        assert_eq!(
            Decimal::parse(b"18446744073709551615").map(|d| d.mantissa),
            Ok(u64::MAX)
        );
        assert_eq!(
            Decimal::parse(b"1844674407370955161.6"),
            Err(NumError::Overflow)
        );
    }

    #[test]
    fn decimal_keeps_written_scale() {
        let d = Decimal::parse(b"0.00123440").unwrap();
        assert_eq!((d.mantissa, d.scale), (123_440, 8));
        assert_eq!(d.to_units(8), Ok(123_440));
        assert_eq!(Decimal::parse(b"1E-8").unwrap().to_units(8), Ok(1));
        assert_eq!(Decimal::parse(b"2.5e2").unwrap().to_units(0), Ok(250));
        assert_eq!(Decimal::parse(b"81011.5").unwrap().to_units(1), Ok(810_115));
        assert_eq!(Decimal::parse(b"4.0").unwrap().to_units(8), Ok(400_000_000));
    }

    #[test]
    fn decimal_rejects_bad_text_and_inexact_values() {
        for bad in [
            &b""[..],
            b"-",
            b"1.",
            b".5",
            b"1e",
            b"1x",
            b"--1",
            b"0x10",
            b"1.2.3",
        ] {
            assert_eq!(Decimal::parse(bad), Err(NumError::Syntax), "{bad:?}");
        }
        assert_eq!(
            Decimal::parse(b"123456789012345678901234"),
            Err(NumError::Overflow)
        );
        assert_eq!(
            Decimal::parse(b"0.123").unwrap().to_units(2),
            Err(NumError::TooPrecise)
        );
        assert_eq!(Decimal::parse(b"0.120").unwrap().to_units(2), Ok(12));
        assert_eq!(
            Decimal::parse(b"-1.5").unwrap().to_units(1),
            Err(NumError::Negative)
        );
    }

    #[test]
    fn fixed_formats_back_exactly() {
        assert_eq!(Price(810_115).show(1).to_string(), "81011.5");
        assert_eq!(Qty(5).show(8).to_string(), "0.00000005");
        assert_eq!(Cash(-1_500).show(3).to_string(), "-1.500");
        assert_eq!(Qty(7).show(0).to_string(), "7");
    }

    #[test]
    fn tick_rounding_is_passive() {
        let tick = Price(5); // e.g. 0.05 at precision 2
        let p = FinePrice(1_234 * FINE + 1);
        assert_eq!(p.floor_to_tick(tick), Price(1_230));
        assert_eq!(p.ceil_to_tick(tick), Price(1_235));
        let exact = FinePrice(1_235 * FINE);
        assert_eq!(exact.floor_to_tick(tick), Price(1_235));
        assert_eq!(exact.ceil_to_tick(tick), Price(1_235));
    }

    #[test]
    fn fees_round_up() {
        // 16 bps of 1 unit of cash is 0.0016 → 1 unit.
        assert_eq!(Cash(1).times_ppm_ceil(Ppm(1_600)), Cash(1));
        assert_eq!(Cash(10_000).times_ppm_ceil(Ppm(1_600)), Cash(16));
        assert_eq!(Cash::parse_round_up(b"0.123456", 5), Ok(Cash(12_346)));
        assert_eq!(Cash::parse_round_up(b"12.5", 5), Ok(Cash(1_250_000)));
    }
}
