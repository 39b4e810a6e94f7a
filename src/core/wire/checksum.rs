//! The digits Kraken's book checksum writes for a price or a quantity: the value as it was
//! written on the wire, without its decimal point and leading zeros.

use crate::core::money::POW10;

/// The whole number whose digits the checksum writes for `value` (stored with `value_dec`
/// decimals) written with `dec` decimals: the same value, or fewer of its digits (those
/// dropped are zeros by construction: the value was parsed from text with `dec` decimals).
#[inline]
#[must_use]
pub fn checksum_value(value: u64, value_dec: u8, dec: u8) -> u64 {
    if value_dec <= dec {
        value
    } else {
        value / POW10[usize::from(value_dec - dec)]
    }
}

/// Writes a [`checksum_value`] into `out` as the book-checksum token: its digits without
/// leading zeros (zero → nothing). Returns the number of bytes written.
#[must_use]
pub fn checksum_digits(v: u64, out: &mut [u8]) -> usize {
    if v == 0 {
        return 0;
    }
    // Digits written in place, last first, two at a time (this runs for every level that
    // changed since the last checksum; a formatter plus a variable-length copy cost more).
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
                                2021222324252627282930313233343536373839\
                                4041424344454647484950515253545556575859\
                                6061626364656667686970717273747576777879\
                                8081828384858687888990919293949596979899";
    let len = v.ilog10() as usize + 1;
    let out = &mut out[..len];
    let (mut x, mut i) = (v, len);
    while x >= 100 {
        let r = (x % 100) as usize * 2;
        x /= 100;
        i -= 2;
        out[i..i + 2].copy_from_slice(&PAIRS[r..r + 2]);
    }
    if x >= 10 {
        let r = x as usize * 2;
        out[..2].copy_from_slice(&PAIRS[r..r + 2]);
    } else {
        out[0] = b'0' + x as u8;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn checksum_digits_are_the_decimal_digits(v in any::<u64>(), small in 0u64..1_000_000,
                                                  value_dec in 0u8..=12, drop in 0u8..=12) {
            for v in [v, small] {
                let dec = value_dec.saturating_sub(drop);
                let mut out = [0u8; 20];
                let n = checksum_digits(checksum_value(v, value_dec, dec), &mut out);
                let scaled = v / 10u64.pow(u32::from(value_dec - dec));
                let want = if scaled == 0 { String::new() } else { scaled.to_string() };
                prop_assert_eq!(std::str::from_utf8(&out[..n]).unwrap(), want);
            }
        }
    }

    #[test]
    fn checksum_digits_strip_point_and_leading_zeros() {
        let mut out = [0u8; 32];
        let n = checksum_digits(checksum_value(100_000, 8, 8), &mut out);
        assert_eq!(&out[..n], b"100000");
        // 0.010 at price precision 3 stays "10" (not "1").
        let n = checksum_digits(checksum_value(10, 3, 3), &mut out);
        assert_eq!(&out[..n], b"10");
        // Internal precision 10, written with 1 decimal: 4.0 → "40".
        let n = checksum_digits(checksum_value(40_000_000_000, 10, 1), &mut out);
        assert_eq!(&out[..n], b"40");
        assert_eq!(checksum_digits(checksum_value(0, 8, 8), &mut out), 0);
    }
}
