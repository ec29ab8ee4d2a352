//! The fake sensor (a seeded random walk of temperature and humidity), the reading payload, and
//! the command language of the command topic.

use core::fmt::{self, Write};
use core::time::Duration;

use heapless::Vec;

use crate::rng::Rng;

/// A simulated temperature/humidity sensor: a random walk from 20 °C / 45 %, deterministic for a
/// given seed.
#[derive(Debug, Clone)]
pub struct FakeSensor {
    /// Hundredths of a degree Celsius.
    centi_celsius: i32,
    /// Tenths of a percent relative humidity.
    deci_percent: i32,
}

impl FakeSensor {
    /// A sensor starting near 20 °C and 45 % (spread by `rng` so motes differ).
    pub fn new(rng: &mut Rng) -> Self {
        FakeSensor {
            centi_celsius: 2000 + rng.signed(300),
            deci_percent: 450 + rng.signed(100),
        }
    }

    /// The next reading: each value takes a small random step and stays within physical limits.
    pub fn sample(&mut self, rng: &mut Rng) -> Sample {
        self.centi_celsius = self
            .centi_celsius
            .saturating_add(rng.signed(25))
            .clamp(-4000, 8500);
        self.deci_percent = self
            .deci_percent
            .saturating_add(rng.signed(5))
            .clamp(0, 1000);
        Sample {
            centi_celsius: self.centi_celsius,
            deci_percent: self.deci_percent,
        }
    }
}

/// One measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Temperature in hundredths of a degree Celsius (2143 = 21.43 °C).
    pub centi_celsius: i32,
    /// Relative humidity in tenths of a percent (451 = 45.1 %).
    pub deci_percent: i32,
}

impl fmt::Display for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.centi_celsius;
        let sign = if t < 0 { "-" } else { "" };
        let (ta, h) = (t.unsigned_abs(), self.deci_percent.unsigned_abs());
        write!(
            f,
            "{sign}{}.{:02} °C, {}.{} %",
            ta / 100,
            ta % 100,
            h / 10,
            h % 10
        )
    }
}

/// What goes into a reading's payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadingText<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) seq: u32,
    pub(crate) sample: Sample,
    pub(crate) led: bool,
    pub(crate) interval: Duration,
    pub(crate) timestamp_ms: u64,
}

/// `fmt::Write` into a fixed buffer; fails (writes nothing more) when full.
struct Out<'b, const N: usize>(&'b mut Vec<u8, N>);

impl<const N: usize> Write for Out<'_, N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0
            .extend_from_slice(s.as_bytes())
            .map_err(|_| fmt::Error)
    }
}

impl ReadingText<'_> {
    /// Writes `id=mote-1 seq=3 t=21.43 h=45.1 led=off int=5 ts=12345`, then pads with `.` up
    /// to `pad_to` octets. `None` when it does not fit in `N` octets.
    pub(crate) fn render<const N: usize>(&self, pad_to: usize) -> Option<Vec<u8, N>> {
        let mut v = Vec::new();
        let t = self.sample.centi_celsius;
        let sign = if t < 0 { "-" } else { "" };
        let (ta, h) = (t.unsigned_abs(), self.sample.deci_percent.unsigned_abs());
        write!(
            Out(&mut v),
            "id={} seq={} t={sign}{}.{:02} h={}.{} led={} int={} ts={}",
            self.client_id,
            self.seq,
            ta / 100,
            ta % 100,
            h / 10,
            h % 10,
            if self.led { "on" } else { "off" },
            self.interval.as_secs(),
            self.timestamp_ms
        )
        .ok()?;
        while v.len() < pad_to {
            v.push(b'.').ok()?;
        }
        Some(v)
    }
}

/// The fields of a reading payload, parsed back (for subscribers and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedReading<'a> {
    /// The mote's ClientId.
    pub client_id: &'a str,
    /// Sequence number (0, 1, 2, … per mote).
    pub seq: u32,
    /// LED state when the reading was taken.
    pub led: bool,
    /// Reporting interval in seconds when the reading was taken.
    pub interval_secs: u64,
    /// The mote's clock when the reading was taken, in milliseconds.
    pub timestamp_ms: u64,
}

/// Parses a reading payload written by the demo sensor; `None` for anything else.
pub fn parse_reading(payload: &[u8]) -> Option<ParsedReading<'_>> {
    let text = core::str::from_utf8(payload).ok()?.trim_end_matches('.');
    let (mut id, mut seq, mut led, mut int, mut ts) = (None, None, None, None, None);
    for field in text.split(' ') {
        let (k, v) = field.split_once('=')?;
        match k {
            "id" => id = Some(v),
            "seq" => seq = v.parse().ok(),
            "led" => led = Some(v == "on"),
            "int" => int = v.parse().ok(),
            "ts" => ts = v.parse().ok(),
            _ => {}
        }
    }
    Some(ParsedReading {
        client_id: id?,
        seq: seq?,
        led: led?,
        interval_secs: int?,
        timestamp_ms: ts?,
    })
}

/// A command received on the command topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `interval=N`: report every N seconds (1..=86400).
    Interval(Duration),
    /// `led=on`, `led=off` (`led=toggle` is resolved to one of them).
    Led(bool),
}

/// Parses `interval=N` / `led=on|off|toggle` (surrounding whitespace allowed); `led` is the
/// current LED state, for `toggle`.
pub fn parse_command(payload: &[u8], led: bool) -> Option<Command> {
    let text = core::str::from_utf8(payload).ok()?.trim();
    let (key, value) = text.split_once('=')?;
    match (key.trim(), value.trim()) {
        ("interval", v) => {
            let secs: u64 = v.parse().ok()?;
            (1..=86_400)
                .contains(&secs)
                .then(|| Command::Interval(Duration::from_secs(secs)))
        }
        ("led", "on") => Some(Command::Led(true)),
        ("led", "off") => Some(Command::Led(false)),
        ("led", "toggle") => Some(Command::Led(!led)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn readings_render_parse_back_and_pad() {
        let r = ReadingText {
            client_id: "mote-1",
            seq: 3,
            sample: Sample {
                centi_celsius: -507,
                deci_percent: 451,
            },
            led: true,
            interval: Duration::from_secs(5),
            timestamp_ms: 12_345,
        };
        let v: Vec<u8, 128> = r.render(0).unwrap();
        assert_eq!(
            &v[..],
            b"id=mote-1 seq=3 t=-5.07 h=45.1 led=on int=5 ts=12345"
        );
        let padded: Vec<u8, 128> = r.render(100).unwrap();
        assert_eq!(padded.len(), 100);
        let p = parse_reading(&padded).unwrap();
        assert_eq!(
            (p.client_id, p.seq, p.led, p.interval_secs, p.timestamp_ms),
            ("mote-1", 3, true, 5, 12_345)
        );
        assert!(r.render::<16>(0).is_none(), "too long for the buffer");
        assert!(parse_reading(b"hello").is_none());
        assert!(parse_reading(b"\xFF").is_none());
    }

    #[test]
    fn commands_parse_strictly() {
        assert_eq!(
            parse_command(b"interval=30", false),
            Some(Command::Interval(Duration::from_secs(30)))
        );
        assert_eq!(
            parse_command(b" led = on \n", false),
            Some(Command::Led(true))
        );
        assert_eq!(
            parse_command(b"led=toggle", true),
            Some(Command::Led(false))
        );
        for bad in [
            &b"interval=0"[..],
            b"interval=86401",
            b"interval=x",
            b"led=blue",
            b"reboot",
            b"\xFF=1",
            b"",
        ] {
            assert_eq!(parse_command(bad, false), None, "{bad:?}");
        }
    }

    #[test]
    fn the_fake_sensor_walks_within_limits_and_is_deterministic() {
        let (mut r1, mut r2) = (Rng::new(9), Rng::new(9));
        let (mut a, mut b) = (FakeSensor::new(&mut r1), FakeSensor::new(&mut r2));
        for _ in 0..10_000 {
            let s = a.sample(&mut r1);
            assert_eq!(s, b.sample(&mut r2));
            assert!(
                (-4000..=8500).contains(&s.centi_celsius) && (0..=1000).contains(&s.deci_percent)
            );
        }
        let s = Sample {
            centi_celsius: 2143,
            deci_percent: 451,
        };
        assert_eq!(std::format!("{s}"), "21.43 °C, 45.1 %");
    }
}
