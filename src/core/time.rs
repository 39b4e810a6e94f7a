//! Timestamps: nanoseconds since the Unix epoch as `i64`, and RFC 3339 text.
//!
//! The core never reads a clock; every event carries a caller-supplied `Nanos`. Kraken's
//! exchange timestamps (`"2026-08-16T23:37:05.723653Z"`) are parsed without allocation.

/// Nanoseconds since the Unix epoch (or since any fixed origin for monotonic clocks).
pub type Nanos = i64;

/// One millisecond in [`Nanos`].
pub const MS: Nanos = 1_000_000;
/// One second in [`Nanos`].
pub const SEC: Nanos = 1_000_000_000;

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date for days since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn digits(s: &[u8], from: usize, n: usize) -> Option<i64> {
    let part = s.get(from..from + n)?;
    let mut v = 0i64;
    for &b in part {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(b - b'0');
    }
    Some(v)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` into nanoseconds since the epoch.
/// Returns `None` for anything else (the caller counts it; a bad exchange timestamp is not fatal).
#[must_use]
pub fn parse_rfc3339(s: &[u8]) -> Option<Nanos> {
    parse_time(s, parse_date(s)?)
}

/// The last date parsed by [`parse_rfc3339_cached`]: a feed's timestamps share their date for a
/// whole day, so its digits and calendar arithmetic are done once.
#[derive(Debug, Default, Clone, Copy)]
pub struct DateCache {
    date: [u8; 10],
    day_secs: Option<i64>,
    /// `YYYY-MM-DDTHH:MM:SS` of the last valid stamp and its seconds since the epoch (before
    /// any UTC offset): a busy feed sends many messages a second.
    second: [u8; 19],
    second_secs: Option<i64>,
}

/// [`parse_rfc3339`], reusing the date of the previous call when it is the same.
#[must_use]
pub fn parse_rfc3339_cached(s: &[u8], cache: &mut DateCache) -> Option<Nanos> {
    // Fixed-size arrays compare inline; slices would call memcmp.
    let second: &[u8; 19] = s.get(..19)?.try_into().ok()?;
    if let Some(secs) = cache.second_secs
        && *second == cache.second
    {
        return parse_fraction_and_offset(s, secs);
    }
    let date: &[u8; 10] = second[..10].try_into().ok()?;
    let day_secs = match cache.day_secs {
        Some(d) if *date == cache.date => d,
        _ => {
            let d = parse_date(s)?;
            cache.date = *date;
            cache.day_secs = Some(d);
            d
        }
    };
    let secs = day_secs + parse_clock(s)?;
    cache.second = *second;
    cache.second_secs = Some(secs);
    parse_fraction_and_offset(s, secs)
}

/// `YYYY-MM-DD` (and the shape of the rest) → seconds from the epoch to that day's midnight.
fn parse_date(s: &[u8]) -> Option<i64> {
    if s.len() < 20 || s[4] != b'-' || s[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (digits(s, 0, 4)?, digits(s, 5, 2)?, digits(s, 8, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400)
}

/// `THH:MM:SS[.fraction](Z|±HH:MM)` after a date at `day_secs`.
fn parse_time(s: &[u8], day_secs: i64) -> Option<Nanos> {
    parse_fraction_and_offset(s, day_secs + parse_clock(s)?)
}

/// `THH:MM:SS` (bytes 10..19) as seconds into the day; the stamp must also be long enough for
/// what must follow.
fn parse_clock(s: &[u8]) -> Option<i64> {
    if s.len() < 20 || !matches!(s[10], b'T' | b't' | b' ') || s[13] != b':' || s[16] != b':' {
        return None;
    }
    let (h, mi, se) = (digits(s, 11, 2)?, digits(s, 14, 2)?, digits(s, 17, 2)?);
    if h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(h * 3600 + mi * 60 + se)
}

/// `[.fraction](Z|±HH:MM)` from byte 19, after a stamp whose first 19 bytes are `secs`.
fn parse_fraction_and_offset(s: &[u8], secs: i64) -> Option<Nanos> {
    let mut i = 19;
    let mut frac_ns = 0i64;
    if s.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < s.len() && s[i].is_ascii_digit() {
            if i - start < 9 {
                frac_ns = frac_ns * 10 + i64::from(s[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..9 {
            frac_ns *= 10;
        }
    }
    let offset_s = match s.get(i)? {
        b'Z' | b'z' if i + 1 == s.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == s.len() && s[i + 3] == b':' => {
            let off = digits(s, i + 1, 2)? * 3600 + digits(s, i + 4, 2)? * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    (secs - offset_s).checked_mul(SEC)?.checked_add(frac_ns)
}

/// Formats nanoseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (microseconds, as
/// Kraken writes them). Allocates; for tools and the simulator, not the hot path.
#[must_use]
pub fn format_rfc3339(ns: Nanos) -> String {
    let mut s = String::with_capacity(27);
    write_rfc3339(&mut s, ns);
    s
}

/// Appends `ns` as [`format_rfc3339`] writes it, without allocating (beyond `out`'s growth).
pub fn write_rfc3339(out: &mut impl std::fmt::Write, ns: Nanos) {
    let secs = ns.div_euclid(SEC);
    let micros = ns.rem_euclid(SEC) / 1_000;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The cache never changes an answer, whatever came before.
        #[test]
        fn cached_parse_equals_the_plain_one(
            stamps in proptest::collection::vec(
                r"(19[0-9]{2}|20[0-9]{2}|0000|9999)-(0[0-9]|1[0-3])-([0-3][0-9])[T t]([0-2][0-9]):([0-6][0-9]):([0-6][0-9])(\.[0-9]{0,12})?(Z|z|[+-][0-9]{2}:[0-9]{2}|)",
                1..20),
            garbage in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..30), 0..5)) {
            let mut cache = DateCache::default();
            // The same seconds again with other endings (another fraction, offset or garbage).
            let reended = stamps.iter().zip(&garbage).map(|(s, g)| {
                let mut v = s.as_bytes()[..s.len().min(19)].to_vec();
                v.extend_from_slice(g);
                v
            }).collect::<Vec<_>>();
            let refracted = stamps.iter().map(|s| {
                let mut v = s.as_bytes()[..s.len().min(19)].to_vec();
                v.extend_from_slice(b".5Z");
                v
            });
            for s in stamps.iter().map(|s| s.as_bytes().to_vec()).chain(garbage.clone())
                .chain(stamps.iter().map(|s| s.as_bytes().to_vec())).chain(reended).chain(refracted) {
                proptest::prop_assert_eq!(parse_rfc3339_cached(&s, &mut cache), parse_rfc3339(&s));
            }
        }
    }

    #[test]
    fn parses_kraken_timestamps() {
        let ns = parse_rfc3339(b"2026-08-16T23:37:05.723653Z").unwrap();
        assert_eq!(format_rfc3339(ns), "2026-08-16T23:37:05.723653Z");
        assert_eq!(parse_rfc3339(b"1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339(b"1970-01-01T01:00:00+01:00"),
            Some(0),
            "offsets are applied"
        );
        assert_eq!(
            parse_rfc3339(b"2023-09-21T15:49:29Z"),
            Some(1_695_311_369 * SEC)
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            &b""[..],
            b"2026-13-01T00:00:00Z",
            b"2026-08-16 23:37:05",
            b"2026-08-16T23:37:05.Z",
            b"2026-08-16T23:37:05Zjunk",
            b"yyyy-08-16T23:37:05Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }
}
