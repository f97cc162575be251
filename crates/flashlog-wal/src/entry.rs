//! The values a log holds and the names of where they live: [`Op`], [`Entry`],
//! [`SegmentId`] and [`Position`].

use std::fmt;

/// The operation an entry records, stored as the `TYPE` byte of the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `TYPE` 0: a key was set to a value.
    Put,
    /// `TYPE` 1: a key was removed; the value is usually empty.
    Delete,
}

impl Op {
    /// The `TYPE` byte written to disk for this operation.
    pub const fn as_byte(self) -> u8 {
        match self {
            Op::Put => 0,
            Op::Delete => 1,
        }
    }

    /// The operation a `TYPE` byte stands for, or `None` for an unknown byte.
    pub const fn from_byte(byte: u8) -> Option<Op> {
        match byte {
            0 => Some(Op::Put),
            1 => Some(Op::Delete),
            _ => None,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Put => "put",
            Op::Delete => "delete",
        })
    }
}

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

/// One entry read back from the log: its sequence number, operation, key and value.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    seq: u64,
    op: Op,
    position: Position,
    /// The key followed by the value, in one allocation.
    data: Vec<u8>,
    key_len: usize,
}

impl Entry {
    pub(crate) fn new(seq: u64, op: Op, position: Position, key: &[u8], value: &[u8]) -> Entry {
        let mut data = Vec::with_capacity(key.len() + value.len());
        data.extend_from_slice(key);
        data.extend_from_slice(value);
        Entry {
            seq,
            op,
            position,
            data,
            key_len: key.len(),
        }
    }

    /// The entry's sequence number: 1 for the first entry ever appended, then +1.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Whether the entry is a put or a delete.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The entry's key.
    pub fn key(&self) -> &[u8] {
        &self.data[..self.key_len]
    }

    /// The entry's value (usually empty for a delete).
    pub fn value(&self) -> &[u8] {
        &self.data[self.key_len..]
    }

    /// The entry's value, without copying it.
    pub fn into_value(self) -> Vec<u8> {
        let mut data = self.data;
        data.drain(..self.key_len);
        data
    }

    /// Where the entry's bytes are on disk.
    pub fn position(&self) -> Position {
        self.position
    }

    /// The number of bytes the entry takes on disk (CRC included).
    pub fn encoded_len(&self) -> u64 {
        crate::codec::encoded_len(self.key_len, self.data.len() - self.key_len)
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("seq", &self.seq)
            .field("op", &self.op)
            .field("position", &format_args!("{}", self.position))
            .field("key_len", &self.key_len)
            .field("value_len", &(self.data.len() - self.key_len))
            .finish()
    }
}
