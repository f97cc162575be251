//! [`ScrubRate`]: how fast [`Wal::scrub`](crate::Wal::scrub) and the background
//! scrubber ([`Options::scrub_every`](crate::Options::scrub_every)) may read.

use std::fmt;

use crate::error::{Error, Result};

/// The most a scrub reads per second, in MB/s (10^6 bytes per second).
///
/// Converts from a number of MB/s, so `wal.scrub(50)` and `wal.scrub(0.5)` both
/// work; [`ScrubRate::UNLIMITED`] reads as fast as the disk goes. A rate that is
/// not a positive number (0, negative, NaN) is refused by the call that gets it
/// ([`Error::InvalidOptions`]).
///
/// ```
/// use flashlog_wal::ScrubRate;
///
/// assert_eq!(ScrubRate::from(50).bytes_per_second(), 50e6);
/// assert_eq!(ScrubRate::mb_per_second(0.5).bytes_per_second(), 500_000.0);
/// assert!(ScrubRate::UNLIMITED.bytes_per_second().is_infinite());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScrubRate(f64);

impl ScrubRate {
    /// No limit: read as fast as the disk goes.
    pub const UNLIMITED: ScrubRate = ScrubRate(f64::INFINITY);

    /// `mb` MB/s (10^6 bytes per second).
    pub fn mb_per_second(mb: f64) -> ScrubRate {
        ScrubRate(mb)
    }

    /// The rate in bytes per second.
    pub fn bytes_per_second(&self) -> f64 {
        self.0 * 1e6
    }

    /// Refuses a rate that is not a positive number.
    pub(crate) fn validate(self) -> Result<ScrubRate> {
        if self.0 > 0.0 {
            Ok(self)
        } else {
            Err(Error::InvalidOptions(
                "the scrub rate must be a positive number of MB/s",
            ))
        }
    }
}

impl fmt::Display for ScrubRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_infinite() {
            f.write_str("unlimited")
        } else {
            write!(f, "{} MB/s", self.0)
        }
    }
}

impl From<f64> for ScrubRate {
    fn from(mb: f64) -> ScrubRate {
        ScrubRate(mb)
    }
}

impl From<u32> for ScrubRate {
    fn from(mb: u32) -> ScrubRate {
        ScrubRate(f64::from(mb))
    }
}

/// An integer literal with no other type (`wal.scrub(50)`) is an `i32`.
impl From<i32> for ScrubRate {
    fn from(mb: i32) -> ScrubRate {
        ScrubRate(f64::from(mb))
    }
}

impl From<u64> for ScrubRate {
    fn from(mb: u64) -> ScrubRate {
        ScrubRate(mb as f64)
    }
}
