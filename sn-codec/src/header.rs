//! The Length field in its two forms (spec 5.2.1).
//!
//! ```text
//! short form:  | Length (1) | MsgType | ...          Length = 2..=255
//! long form:   | 0x01 | Length (2) | MsgType | ...   Length = 4..=65535
//! ```
//! Length counts the whole message, the Length field included.

use crate::error::{DecodeError, EncodeError};

/// The largest total length the Length field can express.
pub const MAX_MESSAGE_LEN: usize = u16::MAX as usize;

/// Where the MsgType octet sits and how long the message claims to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// Octets of the Length field: 1 or 3.
    pub(crate) len_octets: usize,
    /// The declared total length.
    pub(crate) total: usize,
}

/// Reads the Length field and checks it against the octets present: the declared total must
/// equal `bytes.len()` exactly.
pub(crate) fn decode(bytes: &[u8]) -> Result<Header, DecodeError> {
    let header = decode_prefix(bytes)?;
    if header.total < bytes.len() {
        return Err(DecodeError::TrailingBytes {
            declared: header.total,
            actual: bytes.len(),
        });
    }
    Ok(header)
}

/// Reads the Length field and checks that at least the declared total is present (the caller
/// decides what trailing octets mean).
pub(crate) fn decode_prefix(bytes: &[u8]) -> Result<Header, DecodeError> {
    let header = match bytes {
        [] => {
            return Err(DecodeError::Truncated {
                needed: 2,
                actual: 0,
            });
        }
        [0x01, hi, lo, ..] => {
            let total = usize::from(u16::from_be_bytes([*hi, *lo]));
            if total < 4 {
                return Err(DecodeError::InvalidLength { declared: total });
            }
            Header {
                len_octets: 3,
                total,
            }
        }
        [0x01, ..] => {
            return Err(DecodeError::Truncated {
                needed: 4,
                actual: bytes.len(),
            });
        }
        [0x00, ..] => return Err(DecodeError::InvalidLength { declared: 0 }),
        [len, ..] => Header {
            len_octets: 1,
            total: usize::from(*len),
        },
    };
    if header.total > bytes.len() {
        return Err(DecodeError::Truncated {
            needed: header.total,
            actual: bytes.len(),
        });
    }
    Ok(header)
}

/// Total message length for a variable part of `body_len` octets, choosing the short form
/// whenever the total fits in one octet.
pub(crate) fn total_len(body_len: usize) -> Result<usize, EncodeError> {
    let short = body_len.saturating_add(2);
    if short <= 255 {
        return Ok(short);
    }
    let long = body_len.saturating_add(4);
    if long > MAX_MESSAGE_LEN {
        return Err(EncodeError::MessageTooLong { len: long });
    }
    Ok(long)
}

/// Writes the Length field for a message of `total` octets (as returned by [`total_len`]).
pub(crate) fn write(w: &mut crate::cursor::Writer<'_>, total: usize) {
    match u8::try_from(total) {
        Ok(short) => w.u8(short),
        Err(_) => {
            w.u8(0x01);
            w.u16(u16::try_from(total).unwrap_or(u16::MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_form_is_chosen_up_to_a_total_of_255() {
        assert_eq!(total_len(253), Ok(255));
        assert_eq!(total_len(254), Ok(258));
        assert_eq!(total_len(255), Ok(259));
        assert_eq!(total_len(65531), Ok(65535));
        assert_eq!(
            total_len(65532),
            Err(EncodeError::MessageTooLong { len: 65536 })
        );
    }

    #[test]
    fn long_form_with_a_short_total_is_accepted() {
        assert_eq!(
            decode(&[0x01, 0x00, 0x05, 0x05, 0x00]),
            Ok(Header {
                len_octets: 3,
                total: 5
            })
        );
    }

    #[test]
    fn impossible_lengths_are_rejected() {
        assert_eq!(
            decode(&[0x00, 0x05]),
            Err(DecodeError::InvalidLength { declared: 0 })
        );
        assert_eq!(
            decode(&[0x01, 0x00, 0x03]),
            Err(DecodeError::InvalidLength { declared: 3 })
        );
        assert_eq!(
            decode(&[0x01, 0x00]),
            Err(DecodeError::Truncated {
                needed: 4,
                actual: 2
            })
        );
    }
}
