//! Logging macros for the library: `tracing` records with the `std` feature, nothing at all
//! without it.
//!
//! Without `std` the arguments are still type-checked (inside `if false { format_args!(..) }`),
//! so a variable used only in a log line does not trigger an "unused" warning, and the compiled
//! code contains no formatting machinery. Only the plain `"format {}", args` form is used, so the
//! same call compiles both ways. Records are emitted inside whatever span the shell opened (the
//! simulator opens one per mote, carrying its client id).

/// A debug record: packets in and out, timer expiries.
macro_rules! debug {
    ($($arg:tt)*) => {{
        #[cfg(feature = "std")]
        {
            ::tracing::debug!($($arg)*);
        }
        #[cfg(not(feature = "std"))]
        {
            if false {
                let _ = ::core::format_args!($($arg)*);
            }
        }
    }};
}

/// An info record: state changes (gateway found, connected, asleep, lost).
macro_rules! info {
    ($($arg:tt)*) => {{
        #[cfg(feature = "std")]
        {
            ::tracing::info!($($arg)*);
        }
        #[cfg(not(feature = "std"))]
        {
            if false {
                let _ = ::core::format_args!($($arg)*);
            }
        }
    }};
}

/// A warning: a rejected request, a lost gateway, a dropped datagram.
macro_rules! warning {
    ($($arg:tt)*) => {{
        #[cfg(feature = "std")]
        {
            ::tracing::warn!($($arg)*);
        }
        #[cfg(not(feature = "std"))]
        {
            if false {
                let _ = ::core::format_args!($($arg)*);
            }
        }
    }};
}

pub(crate) use {debug, info, warning};
