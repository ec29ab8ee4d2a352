//! CRC-16/IBM-3740 (also known as CRC-16/CCITT-FALSE), the checksum of our SLIP framing.
//!
//! | Parameter | Value |
//! |---|---|
//! | width | 16 |
//! | polynomial | `0x1021` |
//! | initial value | `0xFFFF` |
//! | reflect in / out | no / no |
//! | final XOR | `0x0000` |
//! | check (`"123456789"`) | `0x29B1` |
//!
//! Bitwise, table-free (no flash cost on motes); fast enough for any serial line. Because the
//! CRC is neither reflected nor XORed, running it over a message followed by its CRC in
//! big-endian order gives 0.
//!
//! ```
//! use sn_codec::framing::{Crc16, crc16};
//!
//! assert_eq!(crc16(b"123456789"), 0x29B1);
//! assert_eq!(Crc16::new().update(b"1234").update(b"56789").finish(), 0x29B1);
//! ```

/// The generator polynomial.
pub const POLY: u16 = 0x1021;
/// The initial register value.
pub const INIT: u16 = 0xFFFF;
/// The CRC of ASCII `"123456789"`.
pub const CHECK: u16 = 0x29B1;

/// An incremental CRC-16/IBM-3740 computation.
///
/// `Crc16::new().update(a).update(b).finish()` equals `crc16(a ‖ b)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crc16 {
    state: u16,
}

impl Crc16 {
    /// A computation over no octets yet.
    #[must_use]
    pub const fn new() -> Self {
        Self { state: INIT }
    }

    /// Adds one octet.
    #[must_use]
    pub const fn update_byte(self, octet: u8) -> Self {
        let mut crc = self.state ^ (octet as u16).wrapping_shl(8);
        let mut bit = 0u8;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                crc.wrapping_shl(1) ^ POLY
            } else {
                crc.wrapping_shl(1)
            };
            bit = bit.wrapping_add(1);
        }
        Self { state: crc }
    }

    /// Adds the octets of `data`.
    #[must_use]
    pub const fn update(mut self, data: &[u8]) -> Self {
        let mut rest = data;
        while let [octet, tail @ ..] = rest {
            self = self.update_byte(*octet);
            rest = tail;
        }
        self
    }

    /// The CRC of everything added so far.
    #[must_use]
    pub const fn finish(self) -> u16 {
        self.state
    }
}

impl Default for Crc16 {
    fn default() -> Self {
        Self::new()
    }
}

/// The CRC-16/IBM-3740 of `data`.
#[must_use]
pub const fn crc16(data: &[u8]) -> u16 {
    Crc16::new().update(data).finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn check_value_of_the_catalogue() {
        assert_eq!(crc16(b"123456789"), CHECK);
        const AT_COMPILE_TIME: u16 = crc16(b"123456789");
        assert_eq!(AT_COMPILE_TIME, 0x29B1);
    }

    #[test]
    fn empty_input_gives_the_initial_value() {
        assert_eq!(crc16(&[]), 0xFFFF);
        assert_eq!(Crc16::default().finish(), 0xFFFF);
    }

    #[test]
    fn crcs_of_the_slip_framing_examples() {
        assert_eq!(crc16(&[0x02, 0x17]), 0x19BB);
        assert_eq!(crc16(&[0x03, 0x05, 0x00]), 0x6A39);
    }

    #[test]
    fn message_followed_by_its_crc_gives_zero() {
        let crc = crc16(b"123456789").to_be_bytes();
        assert_eq!(Crc16::new().update(b"123456789").update(&crc).finish(), 0);
    }

    proptest! {
        #[test]
        fn incremental_equals_one_shot(data in proptest::collection::vec(any::<u8>(), 0..200),
                                       split in 0usize..200) {
            let split = split.min(data.len());
            let (a, b) = data.split_at(split);
            prop_assert_eq!(Crc16::new().update(a).update(b).finish(), crc16(&data));
        }
    }
}
