//! The names of where entries live: [`SegmentId`] and [`Position`], and the
//! largest sequence number a log accepts from disk.

use std::fmt;

/// The largest sequence number read from disk (a side file's first sequence
/// number, a checkpoint record's, a `truncate_back` recorded there) that a log
/// accepts, 2^63 - 1: counting on from it cannot overflow a `u64` in any log
/// that could exist.
pub(crate) const MAX_SEQ: u64 = u64::MAX >> 1;

/// The number of a segment file: `SegmentId(3)` is `segment-0003.log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentId(pub u64);

impl SegmentId {
    /// The largest id a segment of a log may have, 2^63 - 1. Ids read from disk
    /// (file names, the side file, the checkpoint) above it are refused at open,
    /// so that [`SegmentId::next`] never overflows in a log: passing it would take
    /// 2^63 rotations.
    ///
    /// ```
    /// use flashlog_wal::SegmentId;
    /// assert_eq!(SegmentId::MAX.next().0, 1 << 63);
    /// ```
    pub const MAX: SegmentId = SegmentId(u64::MAX >> 1);

    /// The segment that follows this one.
    ///
    /// # Panics
    /// In debug builds, if `self` is `SegmentId(u64::MAX)`, which no open log
    /// holds (see [`SegmentId::MAX`]).
    pub const fn next(self) -> SegmentId {
        SegmentId(self.0 + 1)
    }

    /// The file name of this segment, as the Go implementation writes it
    /// (`segment-%04d.log`).
    ///
    /// ```
    /// use flashlog_wal::SegmentId;
    /// assert_eq!(SegmentId(7).file_name(), "segment-0007.log");
    /// assert_eq!(SegmentId(12345).file_name(), "segment-12345.log");
    /// ```
    pub fn file_name(self) -> String {
        format!("segment-{:04}.log", self.0)
    }

    /// Parses a segment file name (`^segment-(\d+)\.log$`); any other name is `None`.
    ///
    /// ```
    /// use flashlog_wal::SegmentId;
    /// assert_eq!(SegmentId::parse_file_name("segment-0042.log"), Some(SegmentId(42)));
    /// assert_eq!(SegmentId::parse_file_name("segment-42.log.tmp"), None);
    /// ```
    pub fn parse_file_name(name: &str) -> Option<SegmentId> {
        let digits = name.strip_prefix("segment-")?.strip_suffix(".log")?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(SegmentId)
    }
}

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where an entry's bytes start: a segment and a byte offset inside it.
///
/// Displayed as `segment:offset`, e.g. `3:4096`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    /// The segment holding the entry.
    pub segment: SegmentId,
    /// The byte offset of the entry's CRC inside the segment file.
    pub offset: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.segment, self.offset)
    }
}
