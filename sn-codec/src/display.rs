//! Helpers for the one-line `Display` of packets.

use core::fmt;

/// Writes octets as a quoted, escaped string when they are UTF-8, else as `0x` and hex.
pub(crate) fn write_text(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    match core::str::from_utf8(bytes) {
        Ok(s) => write!(f, "{s:?}"),
        Err(_) => {
            f.write_str("0x")?;
            for b in bytes {
                write!(f, "{b:02x}")?;
            }
            Ok(())
        }
    }
}

/// Writes `1` or `0`.
pub(crate) fn bit(b: bool) -> u8 {
    u8::from(b)
}
