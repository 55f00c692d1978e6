//! Durations (`250ms`, `60s`, `5m`, `1h30m`) and sizes (`4MiB`, `512KiB`, bytes) as config
//! strings. Pure text → value functions; the messages they return are completed with file, line and
//! key by the caller.

use std::time::Duration;

/// The duration units, longest spelling first so `ms` wins over `m`.
const DURATION_UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a duration written like the OpenTelemetry Collector's (Go's `time.ParseDuration`):
/// one or more `<number><unit>` parts, units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`, fractions
/// allowed (`1.5s`, `1h30m`). A bare number is refused (except `0`), because `60` could mean
/// seconds or milliseconds depending on who wrote it.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    let bad = || format!("expected a duration like \"60s\", got \"{text}\"");
    if s.is_empty() {
        return Err(bad());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.starts_with('-') {
        return Err(format!("a duration cannot be negative, got \"{text}\""));
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        rest = &rest[number_len..];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(bad());
        }
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        if unit.is_empty() {
            return Err(if total_nanos == 0 && rest.is_empty() {
                format!(
                    "expected a duration like \"60s\", got \"{text}\" (add a unit: \"{number}s\" or \"{number}ms\")"
                )
            } else {
                bad()
            });
        }
        let Some(&(_, scale)) = DURATION_UNITS.iter().find(|(u, _)| *u == unit) else {
            return Err(format!(
                "unknown duration unit \"{unit}\" in \"{text}\"; use ns, us, ms, s, m or h"
            ));
        };
        total_nanos = total_nanos
            .checked_add(scaled(number, scale).ok_or_else(bad)?)
            .ok_or_else(|| format!("duration \"{text}\" is too large"))?;
    }
    let nanos =
        u64::try_from(total_nanos).map_err(|_| format!("duration \"{text}\" is too large"))?;
    Ok(Duration::from_nanos(nanos))
}

/// `number` (digits with at most one `.`) times `scale`, rounded down to whole units of 1.
fn scaled(number: &str, scale: u128) -> Option<u128> {
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut value = whole.checked_mul(scale)?;
    // Fractions: digit by digit, dropping what falls below one nanosecond.
    let mut unit = scale;
    for digit in frac.chars() {
        unit /= 10;
        let d = u128::from(digit.to_digit(10)?);
        value = value.checked_add(d * unit)?;
    }
    Some(value)
}

/// The size units, binary and decimal.
const SIZE_UNITS: [(&str, u64); 7] = [
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
];

/// Parses a size: `4MiB`, `512KiB`, `1GiB`, `100B`, decimal `KB`/`MB`/`GB`, or digits alone as
/// bytes. Units are case-sensitive except that `kB`/`kiB` are accepted for kilo.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let bad = || {
        format!("expected a size like \"4MiB\", \"512KiB\" or a number of bytes, got \"{text}\"")
    };
    let digits_len = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if digits_len == 0 {
        return Err(bad());
    }
    let number: u64 = s[..digits_len].parse().map_err(|_| bad())?;
    let unit = s[digits_len..].trim_start();
    if unit.is_empty() {
        return Ok(number);
    }
    let unit = match unit {
        "kB" => "KB",
        "kiB" => "KiB",
        other => other,
    };
    let Some(&(_, scale)) = SIZE_UNITS.iter().find(|(u, _)| *u == unit) else {
        return Err(format!(
            "unknown size unit \"{unit}\" in \"{text}\"; use B, KiB, MiB, GiB (or KB, MB, GB for powers of 1000)"
        ));
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("size \"{text}\" is too large"))
}

/// Formats a duration the way the example file writes it (`60s`, `5m`, `250ms`), for messages.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    for (unit, scale) in [
        ("h", 3_600_000_000_000u128),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ] {
        if nanos.is_multiple_of(scale) {
            return format!("{}{unit}", nanos / scale);
        }
    }
    format!("{nanos}ns")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_duration_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("750us"), Ok(Duration::from_micros(750)));
        assert_eq!(parse_duration("750µs"), Ok(Duration::from_micros(750)));
        assert_eq!(parse_duration("10ns"), Ok(Duration::from_nanos(10)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn compound_and_fractional_durations() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(
            parse_duration("1m30s250ms"),
            Ok(Duration::from_millis(90_250))
        );
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2.25m"), Ok(Duration::from_secs(135)));
        assert_eq!(parse_duration(" 60s "), Ok(Duration::from_secs(60)));
    }

    #[test]
    fn bare_numbers_and_words_are_refused_with_a_hint() {
        assert_eq!(
            parse_duration("60").unwrap_err(),
            "expected a duration like \"60s\", got \"60\" (add a unit: \"60s\" or \"60ms\")"
        );
        assert_eq!(
            parse_duration("sixty").unwrap_err(),
            "expected a duration like \"60s\", got \"sixty\""
        );
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("1.2.3s").is_err());
        assert!(parse_duration("-5s").unwrap_err().contains("negative"));
        assert!(parse_duration("5 s").is_err());
        let e = parse_duration("5d").unwrap_err();
        assert!(e.contains("unknown duration unit \"d\""), "{e}");
        assert!(parse_duration("99999999999999999999h").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("4194304"), Ok(4_194_304));
        assert_eq!(parse_size("2MB"), Ok(2_000_000));
        assert_eq!(parse_size("3kB"), Ok(3_000));
        assert_eq!(parse_size("8 KiB"), Ok(8192));
        assert!(
            parse_size("4mib")
                .unwrap_err()
                .contains("unknown size unit")
        );
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("1.5MiB").is_err());
        assert!(
            parse_size("99999999999999GiB")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn durations_format_back() {
        for s in ["1m", "90s", "5m", "250ms", "4h", "0s", "1500us"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }
}
