//! Durations in the configuration file: a whole number followed by a unit, `"250ms"`, `"10s"`,
//! `"15m"`, `"2h"`.
//!
//! Parsing happens inside serde ([`deserialize`], used through [`Dur`]), so a bad string is a
//! deserialization error and toml attaches its position to it. [`parse`] reads the same syntax
//! from a command-line flag, and [`format()`] writes a duration back in it (for messages and the
//! `check-config` summary).

use std::fmt;
use std::time::Duration;

use serde::Deserializer;
use serde::de::{self, Visitor};

/// What every duration message shows the operator.
const EXPECTED: &str = "a duration string: a whole number followed by ms, s, m or h (e.g. \"250ms\", \"10s\", \"15m\", \"2h\")";

/// A duration read from the file; wrap it in `toml::Spanned` where its position matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> serde::Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize(d).map(Dur)
    }
}

/// `deserialize_with` function for a [`Duration`] written as a string with a unit.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_str(DurationVisitor)
}

/// Serde visitor accepting only strings.
struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse(v).map_err(E::custom)
    }
}

/// Parses `"<digits><unit>"` with unit `ms`, `s`, `m` or `h`.
///
/// # Errors
///
/// A message quoting `s` and the expected syntax (or saying the number is too large).
pub fn parse(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?}: expected {EXPECTED}");
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(bad());
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: number too large"))?;
    let too_large = || format!("invalid duration {s:?}: too large");
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => n
            .checked_mul(60)
            .map(Duration::from_secs)
            .ok_or_else(too_large),
        "h" => n
            .checked_mul(3600)
            .map(Duration::from_secs)
            .ok_or_else(too_large),
        _ => Err(bad()),
    }
}

/// Formats `d` so that [`parse`] reads it back: in milliseconds, moving up to seconds, minutes
/// and hours while the number is at least 100 and the larger unit is exact (`"250ms"`, `"60s"`,
/// `"15m"`, `"2h"`). Sub-millisecond parts are dropped.
pub fn format(d: Duration) -> String {
    let mut n = d.as_millis();
    if n == 0 {
        return "0s".to_owned();
    }
    let mut unit = "ms";
    for (factor, next) in [(1000, "s"), (60, "m"), (60, "h")] {
        if n < 100 || !n.is_multiple_of(factor) {
            break;
        }
        n /= factor;
        unit = next;
    }
    format!("{n}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_parses() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn strings_without_a_known_unit_or_number_are_rejected() {
        for bad in [
            "", "10", "s", "10 s", " 10s", "10sec", "1.5s", "-1s", "10S", "1d", "10s5",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse("99999999999999999999s").is_err());
        assert!(parse("18446744073709551615h").is_err());
    }

    #[test]
    fn format_round_trips() {
        for s in ["250ms", "10s", "15m", "2h", "0s", "90s", "1500ms"] {
            let d = parse(s).unwrap();
            assert_eq!(parse(&format(d)), Ok(d));
        }
        assert_eq!(format(Duration::from_secs(900)), "15m");
        assert_eq!(format(Duration::from_secs(90)), "90s");
        assert_eq!(format(Duration::from_secs(60)), "60s");
        assert_eq!(format(Duration::from_secs(7200)), "2h");
        assert_eq!(format(Duration::from_secs(3600)), "60m");
        assert_eq!(format(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format(Duration::ZERO), "0s");
    }

    #[test]
    fn serde_errors_carry_a_position() {
        #[derive(Debug, serde::Deserialize)]
        struct T {
            #[allow(dead_code)]
            d: Dur,
        }
        let e = toml::from_str::<T>("\n d = \"10 minutes\"\n").unwrap_err();
        assert!(e.message().contains("invalid duration"), "{}", e.message());
        assert_eq!(e.span().map(|s| s.start), Some(6));
        let e = toml::from_str::<T>("d = 10").unwrap_err();
        assert!(
            e.message().contains("expected a duration string"),
            "{}",
            e.message()
        );
    }
}
