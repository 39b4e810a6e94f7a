//! Kraken's book checksum (CRC-32, IEEE, as zlib and `crc32fast` compute it) assembled from
//! the CRCs of its pieces, so the book never copies its 20 level tokens into one string.
//!
//! CRC arithmetic is polynomial arithmetic over GF(2) modulo the CRC polynomial P, and it is
//! linear. Call `raw(M)` the CRC of M with a zero initial register and no final inversion:
//! `raw(M) = M(x)·x³² mod P`. Then
//!
//! - `raw(A ‖ B) = raw(A)·x^(8|B|) ⊕ raw(B)`, so a string of pieces has
//!   `raw = ⊕ raw(piece)·x^(8·bytes after the piece)`;
//! - `crc32(M) = raw(M) ⊕ 0xFFFFFFFF·x^(8|M|) ⊕ 0xFFFFFFFF` (the initial register of ones
//!   travels through the whole message; the final inversion is the last term).
//!
//! The book computes a level's `raw` once, when the level changes, straight from the digits of
//! its price and qty ([`DigitWords`], [`raw_of_digits`]), and keeps it; the checksum is then
//! at most 20 independent multiplications by the tabulated `x^(8n) mod P` ([`Pieces`]) and
//! one reduction. The multiplications are carry-less (`PCLMULQDQ` on x86-64; the tests check
//! it against a shift-and-XOR loop) and their unreduced 64-bit products are XORed together
//! before the single reduction, which is linear too.
//!
//! Polynomials use the CRC's reflected bit order: in a `u32`, bit `i` is the coefficient of
//! `x^(31-i)`; in a `u64` product, bit `k` is the coefficient of `x^(63-k)`.

/// The reflected CRC-32 (IEEE 802.3) polynomial.
const POLY: u32 = 0xEDB8_8320;

/// Largest `n` for which [`shift`] knows `x^(8n) mod P`: a checksum string of 20 tokens of at
/// most 40 bytes each is 800 bytes.
pub const MAX_SHIFT: usize = 1024;

/// `x^(8n) mod P` for `n` in `0..=MAX_SHIFT`.
static POW: [u32; MAX_SHIFT + 1] = powers();

/// Slicing-by-4 tables: `TABLES[k][b]` is the register after byte `b` and `k` zero bytes.
static TABLES: [[u32; 256]; 4] = tables();

/// The register after eight zero bits, i.e. `v·x^8 mod P`.
const fn times_x8(mut v: u32) -> u32 {
    let mut k = 0;
    while k < 8 {
        v = if v & 1 != 0 { (v >> 1) ^ POLY } else { v >> 1 };
        k += 1;
    }
    v
}

const fn powers() -> [u32; MAX_SHIFT + 1] {
    let mut t = [0; MAX_SHIFT + 1];
    // x⁰ is the top coefficient in reflected order.
    let mut v = 0x8000_0000;
    let mut n = 0;
    while n <= MAX_SHIFT {
        t[n] = v;
        v = times_x8(v);
        n += 1;
    }
    t
}

const fn tables() -> [[u32; 256]; 4] {
    let mut t = [[0; 256]; 4];
    let mut b = 0;
    while b < 256 {
        t[0][b] = times_x8(b as u32);
        b += 1;
    }
    let mut k = 1;
    while k < 4 {
        let mut b = 0;
        while b < 256 {
            let prev = t[k - 1][b];
            t[k][b] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            b += 1;
        }
        k += 1;
    }
    t
}

/// `x^(8n) mod P`.
///
/// # Panics
/// When `n > MAX_SHIFT` (the book never asks for more).
#[inline]
#[must_use]
pub fn shift(n: usize) -> u32 {
    POW[n]
}

/// Reduces a sum of carry-less products (as [`Clmul`] returns them) modulo P.
#[inline]
#[must_use]
pub fn reduce(products: u64) -> u32 {
    // The product of two 31-degree reflected polynomials sits one bit low in a u64.
    let v = products << 1;
    // v = H·x³² + L: H·x³² mod P is the register after four zero bytes starting from H.
    let h = v as u32;
    TABLES[3][(h & 0xFF) as usize]
        ^ TABLES[2][((h >> 8) & 0xFF) as usize]
        ^ TABLES[1][((h >> 16) & 0xFF) as usize]
        ^ TABLES[0][(h >> 24) as usize]
        ^ (v >> 32) as u32
}

/// A carry-less 32×32-bit multiplier.
pub trait Clmul: Copy {
    /// The 63-bit carry-less product of `a` and `b`.
    fn mul(self, a: u32, b: u32) -> u64;
}

/// Kraken's CRC-32 of a string built from pieces pushed last piece first, each as its `raw`
/// CRC and length.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pieces {
    products: u64,
    after: usize,
}

impl Pieces {
    /// Adds the piece before everything pushed so far.
    ///
    /// # Panics
    /// When the pieces pushed before it exceed [`MAX_SHIFT`] bytes.
    #[inline(always)]
    pub fn push_front<M: Clmul>(&mut self, m: M, raw: u32, len: usize) {
        self.products ^= m.mul(raw, shift(self.after));
        self.after += len;
    }

    /// The `raw` CRC of the string so far and its length: a piece of a longer string.
    #[inline(always)]
    #[must_use]
    pub fn raw(self) -> (u32, usize) {
        (reduce(self.products), self.after)
    }

    /// The CRC-32 of the whole string.
    #[inline(always)]
    #[must_use]
    pub fn crc32<M: Clmul>(self, m: M) -> u32 {
        reduce(self.products ^ m.mul(u32::MAX, shift(self.after))) ^ u32::MAX
    }
}

/// The decimal digits of a number as the checksum writes them (no leading zeros; nothing at
/// all for zero), in up to three 8-byte words, most significant first. Each word is
/// right-aligned: its digits are its last bytes, zero bytes (not '0') before them, so the word
/// read as CRC input is the same polynomial as its digits alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigitWords {
    /// The words as little-endian integers (byte 0 first in the text).
    pub words: [u64; 3],
    /// How many digits each word holds.
    pub lens: [u8; 3],
}

impl DigitWords {
    /// `v` in digits, without a divide instruction or a loop.
    #[inline]
    #[must_use]
    pub fn of(v: u64) -> DigitWords {
        const E8: u64 = 100_000_000;
        if v < E8 {
            let (w, n) = leading(v);
            return DigitWords {
                words: [0, 0, w],
                lens: [0, 0, n],
            };
        }
        let (high, low) = (v / E8, v % E8);
        if high < E8 {
            let (w, n) = leading(high);
            return DigitWords {
                words: [0, w, ascii8(low)],
                lens: [0, n, 8],
            };
        }
        let (w, n) = leading(high / E8);
        DigitWords {
            words: [w, ascii8(high % E8), ascii8(low)],
            lens: [n, 8, 8],
        }
    }

    /// Digits in all.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lens.iter().map(|&n| usize::from(n)).sum()
    }

    /// True for zero (no digits).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The eight decimal digits of `v < 10^8` (with leading zeros) as a little-endian word of
/// digit values 0..=9, first digit in byte 0: halves, then pairs, then single digits, each
/// split done in all lanes at once with a multiply-shift divide.
#[inline]
fn digit_values8(v: u64) -> u64 {
    // 4-digit halves in 32-bit lanes, the first half in the low lane.
    let x = (v / 10_000) | ((v % 10_000) << 32);
    // Each half → two 2-digit numbers in 16-bit lanes: q = n / 100 exactly for n < 43 699.
    let q = ((x * 5243) >> 19) & 0x0000_007F_0000_007F;
    let y = q | ((x - q * 100) << 16);
    // Each pair → two digits in bytes: t = n / 10 exactly for n < 179.
    let t = ((y * 103) >> 10) & 0x000F_000F_000F_000F;
    t | ((y - t * 10) << 8)
}

/// `v < 10^8` as eight ASCII digits.
#[inline]
fn ascii8(v: u64) -> u64 {
    digit_values8(v) | 0x3030_3030_3030_3030
}

/// `v < 10^8` without leading zeros, right-aligned behind zero bytes, and its digit count.
#[inline]
fn leading(v: u64) -> (u64, u8) {
    let d = digit_values8(v);
    // Leading zero digits are zero bytes from byte 0 up (all eight when v is 0).
    let zeros = d.trailing_zeros() / 8;
    if zeros >= 8 {
        return (0, 0);
    }
    let keep = u64::MAX << (8 * zeros);
    ((d | 0x3030_3030_3030_3030) & keep, (8 - zeros) as u8)
}

/// `raw` of the concatenated digits of several numbers (see [`DigitWords`]), first number
/// first.
#[inline(always)]
#[must_use]
pub fn raw_of_digits<M: Clmul>(m: M, numbers: &[DigitWords]) -> u32 {
    let mut products = 0u64;
    // Bytes of the string after the current word.
    let mut after = 0;
    for d in numbers.iter().rev() {
        for i in (0..3).rev() {
            let w = d.words[i];
            // Bytes 0..4 of the word are followed by its bytes 4..8 and `after` more, bytes
            // 4..8 by `after`; each also carries the x³² of `raw`.
            products ^=
                m.mul(w as u32, shift(after + 8)) ^ m.mul((w >> 32) as u32, shift(after + 4));
            after += usize::from(d.lens[i]);
        }
    }
    reduce(products)
}

/// `PCLMULQDQ`, which every x86-64 CPU of the last decade has.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy)]
pub struct Pclmul(());

#[cfg(target_arch = "x86_64")]
impl Pclmul {
    /// The multiplier, when this CPU has the instruction.
    #[must_use]
    pub fn detect() -> Option<Pclmul> {
        std::arch::is_x86_feature_detected!("pclmulqdq").then_some(Pclmul(()))
    }
}

#[cfg(target_arch = "x86_64")]
impl Clmul for Pclmul {
    /// Inlined into callers compiled with `pclmulqdq` enabled (the book's checksum is), where
    /// it is one instruction.
    #[inline(always)]
    fn mul(self, a: u32, b: u32) -> u64 {
        use std::arch::x86_64::{_mm_clmulepi64_si128, _mm_cvtsi32_si128, _mm_cvtsi128_si64};
        // SAFETY: a `Pclmul` exists only where `detect` found the instruction.
        #[allow(unsafe_code)] // the intrinsics are unsafe to call
        unsafe {
            let p =
                _mm_clmulepi64_si128(_mm_cvtsi32_si128(a as i32), _mm_cvtsi32_si128(b as i32), 0);
            _mm_cvtsi128_si64(p) as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The reference multiplier: a shift-and-XOR loop.
    #[derive(Debug, Clone, Copy)]
    struct Portable;

    impl Clmul for Portable {
        #[inline]
        fn mul(self, a: u32, b: u32) -> u64 {
            let a = u64::from(a);
            let mut r = 0;
            for i in 0..32 {
                if (b >> i) & 1 != 0 {
                    r ^= a << i;
                }
            }
            r
        }
    }

    /// `raw` of the first `len` bytes of `bytes` (see the module docs), read four at a time,
    /// whatever follows them: the byte-wise reference for [`raw_of_digits`].
    ///
    /// # Panics
    /// When `len` exceeds `bytes.len()` rounded down to whole words, or [`MAX_SHIFT`].
    #[inline(always)]
    #[must_use]
    fn raw<M: Clmul>(m: M, bytes: &[u8], len: usize) -> u32 {
        let mut acc = 0u64;
        let mut j = 0;
        // Word j (bytes 4j..4j+4, the last one zero-padded after `len`) is followed by
        // len − 4j − 4 bytes and carries the x³² of `raw`: its factor is x^(8(len − 4j)).
        while j < len {
            let word = u32::from_le_bytes(bytes[j..j + 4].try_into().expect("four bytes"));
            let keep = len - j;
            let word = if keep < 4 {
                word & (u32::MAX >> (8 * (4 - keep)))
            } else {
                word
            };
            acc ^= m.mul(word, shift(len - j));
            j += 4;
        }
        reduce(acc)
    }

    fn of_pieces<M: Clmul>(m: M, raws: &[(u32, usize)]) -> u32 {
        let mut p = Pieces::default();
        for &(raw, len) in raws.iter().rev() {
            p.push_front(m, raw, len);
        }
        p.crc32(m)
    }

    /// The CRC-32 of the pieces concatenated, each piece hashed on its own from a padded
    /// buffer with junk after it.
    fn by_pieces<M: Clmul>(m: M, pieces: &[Vec<u8>], junk: u8) -> u32 {
        let raws: Vec<(u32, usize)> = pieces
            .iter()
            .map(|p| {
                let mut buf = vec![junk; p.len().next_multiple_of(4) + 4];
                buf[..p.len()].copy_from_slice(p);
                (raw(m, &buf, p.len()), p.len())
            })
            .collect();
        of_pieces(m, &raws)
    }

    #[test]
    fn powers_are_the_powers_of_x() {
        assert_eq!(shift(0), 0x8000_0000);
        for n in [1, 2, 7, 100, 799] {
            assert_eq!(reduce(Portable.mul(shift(n), shift(1))), shift(n + 1));
        }
        // The CRC-32 check value.
        let check = b"123456789";
        let raws = [(raw(Portable, b"123456789\0\0\0", check.len()), check.len())];
        assert_eq!(of_pieces(Portable, &raws), 0xCBF4_3926);
    }

    fn text_of(d: &DigitWords) -> Vec<u8> {
        let mut out = Vec::new();
        for (w, &n) in d.words.iter().zip(&d.lens) {
            let bytes = w.to_le_bytes();
            assert!(
                bytes[..8 - usize::from(n)].iter().all(|&b| b == 0),
                "zero bytes first"
            );
            out.extend_from_slice(&bytes[8 - usize::from(n)..]);
        }
        out
    }

    proptest! {
        #[test]
        fn pieces_give_crc32fast_s_answer(pieces in prop::collection::vec(
            prop::collection::vec(any::<u8>(), 0..40), 0..20), junk in any::<u8>()) {
            let want = crc32fast::hash(&pieces.concat());
            prop_assert_eq!(by_pieces(Portable, &pieces, junk), want);
            #[cfg(target_arch = "x86_64")]
            if let Some(hw) = Pclmul::detect() {
                prop_assert_eq!(by_pieces(hw, &pieces, junk), want);
            }
        }

        #[test]
        fn digit_words_are_the_decimal_digits_and_hash_as_them(
            a in prop_oneof![any::<u64>(), 0u64..1_000, 0u64..100_000_000,
                             Just(0), Just(100_000_000), Just(10_000_000_000_000_000)],
            b in prop_oneof![any::<u64>(), 0u64..1_000_000_000, Just(0)]) {
            let (da, db) = (DigitWords::of(a), DigitWords::of(b));
            let want_a = if a == 0 { String::new() } else { a.to_string() };
            prop_assert_eq!(String::from_utf8(text_of(&da)).unwrap(), want_a);
            prop_assert_eq!(da.len(), text_of(&da).len());
            let text = [text_of(&da), text_of(&db)].concat();
            let raw_bytes = |m| {
                let mut buf = text.clone();
                buf.resize(text.len().next_multiple_of(4), 0);
                raw(m, &buf, text.len())
            };
            prop_assert_eq!(raw_of_digits(Portable, &[da, db]), raw_bytes(Portable));
            #[cfg(target_arch = "x86_64")]
            if let Some(hw) = Pclmul::detect() {
                prop_assert_eq!(raw_of_digits(hw, &[da, db]), raw_bytes(Portable));
            }
        }

        #[test]
        fn hardware_and_portable_products_agree(a in any::<u32>(), b in any::<u32>()) {
            #[cfg(target_arch = "x86_64")]
            if let Some(hw) = Pclmul::detect() {
                prop_assert_eq!(hw.mul(a, b), Portable.mul(a, b));
            }
            prop_assert_eq!(Portable.mul(a, 1), u64::from(a));
        }
    }
}
