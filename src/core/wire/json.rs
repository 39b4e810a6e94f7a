//! A zero-allocation JSON cursor for the hot path.
//!
//! The Kraken parser walks a frame once with this cursor and pulls out only the fields it
//! needs, as borrowed byte slices (string contents, raw number text). Nothing is decoded into a
//! tree and nothing is copied, so a frame costs one pass over its bytes and no allocation.
//! Values the parser does not care about are skipped with full syntax validation and a nesting
//! limit ([`MAX_DEPTH`]), so a hostile frame (deeply nested arrays, truncated text, stray bytes)
//! is a typed error, never a panic or a stack overflow.

use crate::core::money::{Decimal, NumError};

/// Deepest nesting accepted anywhere in a frame. Kraken's deepest frame is 4 levels.
pub const MAX_DEPTH: u32 = 64;

/// What went wrong while reading JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// Input ended inside a value.
    #[error("truncated JSON at byte {0}")]
    Eof(usize),
    /// A byte that cannot start or continue the expected token.
    #[error("unexpected byte at {0}")]
    Unexpected(usize),
    /// Arrays/objects nested deeper than [`MAX_DEPTH`].
    #[error("nesting deeper than {MAX_DEPTH} at byte {0}")]
    TooDeep(usize),
    /// Bytes after the top-level value.
    #[error("trailing bytes at {0}")]
    Trailing(usize),
}

/// The kind of the next value, from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `{`
    Object,
    /// `[`
    Array,
    /// `"`
    String,
    /// `-` or a digit
    Number,
    /// `true` / `false`
    Bool,
    /// `null`
    Null,
}

/// The index of the first `"`, `\\` or control byte in `s`, eight bytes at a time.
#[inline]
fn string_end(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(chunk) = s.get(i..i + 8) {
        let v = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        // Per byte: zero after XOR with '"' or '\\', or below 0x20. Each test can also flag a
        // byte *after* a true hit (a borrow), never before one, so the lowest flag is exact.
        let quote = v ^ (ONES * u64::from(b'"'));
        let slash = v ^ (ONES * u64::from(b'\\'));
        let hits = (quote.wrapping_sub(ONES) & !quote)
            | (slash.wrapping_sub(ONES) & !slash)
            | (v.wrapping_sub(ONES * 0x20) & !v);
        let hits = hits & HIGH;
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    s[i..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|j| i + j)
}

/// A read position in a JSON text.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    #[must_use]
    pub fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor { buf, pos: 0 }
    }

    /// The current byte offset.
    #[must_use]
    pub fn pos(&self) -> usize {
        self.pos
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(&b) = self.buf.get(self.pos) {
            if b == b' ' || b == b'\n' || b == b'\r' || b == b'\t' {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    #[inline]
    fn peek_byte(&mut self) -> Result<u8, JsonError> {
        self.skip_ws();
        self.buf
            .get(self.pos)
            .copied()
            .ok_or(JsonError::Eof(self.pos))
    }

    /// The kind of the next value, without consuming it.
    ///
    /// # Errors
    /// End of input, or a byte that starts no JSON value.
    pub fn peek_kind(&mut self) -> Result<Kind, JsonError> {
        match self.peek_byte()? {
            b'{' => Ok(Kind::Object),
            b'[' => Ok(Kind::Array),
            b'"' => Ok(Kind::String),
            b'-' | b'0'..=b'9' => Ok(Kind::Number),
            b't' | b'f' => Ok(Kind::Bool),
            b'n' => Ok(Kind::Null),
            _ => Err(JsonError::Unexpected(self.pos)),
        }
    }

    #[inline]
    fn expect(&mut self, want: u8) -> Result<(), JsonError> {
        if self.peek_byte()? == want {
            self.pos += 1;
            Ok(())
        } else {
            Err(JsonError::Unexpected(self.pos))
        }
    }

    /// Consumes `{`.
    ///
    /// # Errors
    /// The next value is not an object.
    pub fn begin_object(&mut self) -> Result<(), JsonError> {
        self.expect(b'{')
    }

    /// Consumes `[`.
    ///
    /// # Errors
    /// The next value is not an array.
    pub fn begin_array(&mut self) -> Result<(), JsonError> {
        self.expect(b'[')
    }

    /// Advances to the next member of an object opened with [`Cursor::begin_object`] and
    /// returns its key (raw, escapes undecoded), or `None` after the closing `}`.
    /// `first` must start `true` for each object.
    ///
    /// # Errors
    /// Malformed separators or key.
    #[inline]
    pub fn next_key(&mut self, first: &mut bool) -> Result<Option<&'a [u8]>, JsonError> {
        let b = self.peek_byte()?;
        if b == b'}' {
            self.pos += 1;
            return Ok(None);
        }
        if !*first {
            if b != b',' {
                return Err(JsonError::Unexpected(self.pos));
            }
            self.pos += 1;
        }
        *first = false;
        let key = self.string()?;
        self.expect(b':')?;
        Ok(Some(key))
    }

    /// Advances to the next element of an array opened with [`Cursor::begin_array`]; `false`
    /// after the closing `]`. `first` must start `true` for each array.
    ///
    /// # Errors
    /// Malformed separators.
    #[inline]
    pub fn next_element(&mut self, first: &mut bool) -> Result<bool, JsonError> {
        let b = self.peek_byte()?;
        if b == b']' {
            self.pos += 1;
            return Ok(false);
        }
        if !*first {
            if b != b',' {
                return Err(JsonError::Unexpected(self.pos));
            }
            self.pos += 1;
        }
        *first = false;
        Ok(true)
    }

    /// Reads a string and returns its raw contents (between the quotes, escapes undecoded).
    ///
    /// # Errors
    /// Not a string, a bad escape, a raw control character, or no closing quote.
    #[inline]
    pub fn string(&mut self) -> Result<&'a [u8], JsonError> {
        self.expect(b'"')?;
        let start = self.pos;
        // Fast path: no escape and no control character before the closing quote (every key
        // and symbol Kraken sends).
        let rest = &self.buf[start..];
        if let Some(i) = string_end(rest)
            && rest[i] == b'"'
        {
            self.pos = start + i + 1;
            return Ok(&rest[..i]);
        }
        self.string_slow(start)
    }

    /// Strings with escapes (or errors): validated byte by byte.
    #[cold]
    fn string_slow(&mut self, start: usize) -> Result<&'a [u8], JsonError> {
        loop {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(JsonError::Eof(self.pos));
            };
            match b {
                b'"' => {
                    let s = &self.buf[start..self.pos];
                    self.pos += 1;
                    return Ok(s);
                }
                b'\\' => {
                    let Some(&e) = self.buf.get(self.pos + 1) else {
                        return Err(JsonError::Eof(self.pos));
                    };
                    match e {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.pos += 2,
                        b'u' => {
                            let hex = self
                                .buf
                                .get(self.pos + 2..self.pos + 6)
                                .ok_or(JsonError::Eof(self.pos))?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return Err(JsonError::Unexpected(self.pos));
                            }
                            self.pos += 6;
                        }
                        _ => return Err(JsonError::Unexpected(self.pos)),
                    }
                }
                0..=0x1f => return Err(JsonError::Unexpected(self.pos)),
                _ => self.pos += 1,
            }
        }
    }

    /// Consumes `lit` if the input continues with exactly those bytes (no whitespace
    /// skipping); used for fast paths over the exact shapes Kraken sends.
    #[inline]
    pub fn eat(&mut self, lit: &[u8]) -> bool {
        if self.buf[self.pos..].starts_with(lit) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    /// Moves back to an earlier position (to retry a fast path the slow way).
    #[inline]
    pub fn rewind(&mut self, pos: usize) {
        self.pos = pos;
    }

    /// Reads a number and returns its raw text (for exact decimal parsing).
    ///
    /// # Errors
    /// Not a number token.
    #[inline]
    pub fn number(&mut self) -> Result<&'a [u8], JsonError> {
        self.skip_ws();
        let start = self.pos;
        while let Some(&b) = self.buf.get(self.pos) {
            if b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E') {
                self.pos += 1;
            } else {
                break;
            }
        }
        if self.pos == start {
            return Err(self.unexpected_or_eof());
        }
        Ok(&self.buf[start..self.pos])
    }

    /// Reads a number exactly, in one pass. A string holding a number is accepted too
    /// (Kraken documents both for prices). JSON errors (end of input, not a number at all)
    /// come back as `Err(Err(JsonError))`; a malformed or out-of-range number as
    /// `Err(Ok(NumError))`.
    ///
    /// # Errors
    /// As described.
    #[inline]
    pub fn decimal(&mut self) -> Result<Decimal, Result<NumError, JsonError>> {
        let b = self.peek_byte().map_err(Err)?;
        if b == b'"' {
            let s = self.string().map_err(Err)?;
            return Decimal::parse(s).map_err(Ok);
        }
        if b != b'-' && !b.is_ascii_digit() {
            return Err(Err(JsonError::Unexpected(self.pos)));
        }
        let (d, n) = Decimal::parse_prefix(&self.buf[self.pos..]).map_err(Ok)?;
        self.pos += n;
        Ok(d)
    }

    /// A number in the common shape ([`Decimal::parse_plain`]), or `None` with the cursor
    /// unmoved. The caller must check what follows (a number glued to `e`, `.` or more digits
    /// is not one): the fast paths do, by eating the exact bytes Kraken writes next.
    #[inline(always)]
    pub fn plain_decimal(&mut self) -> Option<Decimal> {
        let (d, n) = Decimal::parse_plain(self.buf.get(self.pos..)?)?;
        self.pos += n;
        Some(d)
    }

    /// A whole number in the common shape ([`crate::core::money::parse_plain_u64`]), or `None`
    /// with the cursor unmoved; the caller checks what follows.
    #[inline(always)]
    pub fn plain_u64(&mut self) -> Option<u64> {
        let (v, n) = crate::core::money::parse_plain_u64(self.buf.get(self.pos..)?)?;
        self.pos += n;
        Some(v)
    }

    /// Reads `true` or `false`.
    ///
    /// # Errors
    /// Anything else.
    pub fn boolean(&mut self) -> Result<bool, JsonError> {
        match self.peek_byte()? {
            b't' => self.literal(b"true").map(|()| true),
            b'f' => self.literal(b"false").map(|()| false),
            _ => Err(JsonError::Unexpected(self.pos)),
        }
    }

    fn literal(&mut self, lit: &[u8]) -> Result<(), JsonError> {
        match self.buf.get(self.pos..self.pos + lit.len()) {
            Some(s) if s == lit => {
                self.pos += lit.len();
                Ok(())
            }
            Some(_) => Err(JsonError::Unexpected(self.pos)),
            None => Err(JsonError::Eof(self.pos)),
        }
    }

    fn unexpected_or_eof(&self) -> JsonError {
        if self.pos >= self.buf.len() {
            JsonError::Eof(self.pos)
        } else {
            JsonError::Unexpected(self.pos)
        }
    }

    /// Skips one complete value of any kind, validating its syntax. Nesting is tracked in a
    /// 64-bit stack (one bit per open container), so there is no recursion and no allocation.
    ///
    /// # Errors
    /// Malformed JSON or nesting deeper than [`MAX_DEPTH`].
    pub fn skip_value(&mut self) -> Result<(), JsonError> {
        // Bit i of `stack` is 1 when the container at depth i is an object.
        let mut stack: u64 = 0;
        let mut depth: u32 = 0;
        // After opening a container we expect either its close or a first item.
        let mut fresh = false;
        loop {
            // Position: expecting a value (or a close if `fresh`).
            let b = self.peek_byte()?;
            if fresh && (b == b']' || b == b'}') {
                let is_obj = stack >> (depth - 1) & 1 == 1;
                if (b == b'}') != is_obj {
                    return Err(JsonError::Unexpected(self.pos));
                }
                self.pos += 1;
                depth -= 1;
            } else {
                if depth > 0 && stack >> (depth - 1) & 1 == 1 {
                    // Inside an object: a key and a colon come first.
                    self.string()?;
                    self.expect(b':')?;
                }
                match self.peek_byte()? {
                    b'{' | b'[' => {
                        if depth >= MAX_DEPTH {
                            return Err(JsonError::TooDeep(self.pos));
                        }
                        let is_obj = self.buf[self.pos] == b'{';
                        self.pos += 1;
                        stack = (stack & !(1 << depth)) | (u64::from(is_obj) << depth);
                        depth += 1;
                        fresh = true;
                        continue;
                    }
                    b'"' => {
                        self.string()?;
                    }
                    b'-' | b'0'..=b'9' => {
                        let n = self.number()?;
                        if !valid_json_number(n) {
                            return Err(JsonError::Unexpected(self.pos));
                        }
                    }
                    b't' => self.literal(b"true")?,
                    b'f' => self.literal(b"false")?,
                    b'n' => self.literal(b"null")?,
                    _ => return Err(JsonError::Unexpected(self.pos)),
                }
            }
            // A value is complete: close containers or move to the next item.
            fresh = false;
            loop {
                if depth == 0 {
                    return Ok(());
                }
                let is_obj = stack >> (depth - 1) & 1 == 1;
                match self.peek_byte()? {
                    b',' => {
                        self.pos += 1;
                        break;
                    }
                    b'}' if is_obj => {
                        self.pos += 1;
                        depth -= 1;
                    }
                    b']' if !is_obj => {
                        self.pos += 1;
                        depth -= 1;
                    }
                    _ => return Err(JsonError::Unexpected(self.pos)),
                }
            }
        }
    }

    /// Skips one value and returns its exact text.
    ///
    /// # Errors
    /// As [`Cursor::skip_value`].
    pub fn value_span(&mut self) -> Result<&'a [u8], JsonError> {
        self.skip_ws();
        let start = self.pos;
        self.skip_value()?;
        Ok(&self.buf[start..self.pos])
    }

    /// Checks that only whitespace remains.
    ///
    /// # Errors
    /// [`JsonError::Trailing`] otherwise.
    pub fn end(&mut self) -> Result<(), JsonError> {
        self.skip_ws();
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(JsonError::Trailing(self.pos))
        }
    }
}

/// Strict JSON number grammar (skipped values may hold numbers of any size).
fn valid_json_number(n: &[u8]) -> bool {
    let mut i = usize::from(n.first() == Some(&b'-'));
    let int_start = i;
    while i < n.len() && n[i].is_ascii_digit() {
        i += 1;
    }
    if i == int_start {
        return false;
    }
    if i < n.len() && n[i] == b'.' {
        i += 1;
        let s = i;
        while i < n.len() && n[i].is_ascii_digit() {
            i += 1;
        }
        if i == s {
            return false;
        }
    }
    if i < n.len() && (n[i] == b'e' || n[i] == b'E') {
        i += 1;
        if i < n.len() && (n[i] == b'+' || n[i] == b'-') {
            i += 1;
        }
        let s = i;
        while i < n.len() && n[i].is_ascii_digit() {
            i += 1;
        }
        if i == s {
            return false;
        }
    }
    i == n.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn string_end_finds_the_first_quote_backslash_or_control_byte(
            s in prop::collection::vec(prop_oneof![
                4 => 0x20u8..0x7F, 1 => Just(b'"'), 1 => Just(b'\\'), 1 => 0u8..0x20,
                1 => 0x80u8..=0xFF], 0..40)) {
            let want = s.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            prop_assert_eq!(string_end(&s), want);
        }
    }

    fn skip_all(s: &str) -> Result<(), JsonError> {
        let mut c = Cursor::new(s.as_bytes());
        c.skip_value()?;
        c.end()
    }

    #[test]
    fn skips_valid_values() {
        for ok in [
            r#"{"a":[1,2,{"b":"x\"y"}],"c":null,"d":true,"e":-1.5e-3}"#,
            "[]",
            "{}",
            r#"  [ [ [ ] ] , { } ]  "#,
            r#""\u00e9""#,
            "123456789012345678901234567890",
        ] {
            assert_eq!(skip_all(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            "[1,]",
            "[1}",
            "{\"a\" 1}",
            "{\"a\":}",
            "[",
            "{\"a\":1",
            "tru",
            "\"abc",
            "1.e3",
            "[01x]",
            "{1:2}",
            "\"\\q\"",
            "[1 2]",
        ] {
            assert!(skip_all(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        let mut c = Cursor::new(deep.as_bytes());
        assert!(matches!(c.skip_value(), Err(JsonError::TooDeep(_))));
        let ok = "[".repeat(64) + &"]".repeat(64);
        assert_eq!(skip_all(&ok), Ok(()));
    }

    #[test]
    fn walks_objects_and_arrays() {
        let mut c = Cursor::new(br#"{"k": [ "a" , 7 ], "z": false}"#);
        c.begin_object().unwrap();
        let mut first = true;
        assert_eq!(c.next_key(&mut first).unwrap(), Some(&b"k"[..]));
        c.begin_array().unwrap();
        let mut f2 = true;
        assert!(c.next_element(&mut f2).unwrap());
        assert_eq!(c.string().unwrap(), b"a");
        assert!(c.next_element(&mut f2).unwrap());
        assert_eq!(c.number().unwrap(), b"7");
        assert!(!c.next_element(&mut f2).unwrap());
        assert_eq!(c.next_key(&mut first).unwrap(), Some(&b"z"[..]));
        assert!(!c.boolean().unwrap());
        assert_eq!(c.next_key(&mut first).unwrap(), None);
        c.end().unwrap();
    }
}
