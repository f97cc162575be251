//! What recovery found and changed ([`RecoveryReport`], [`Damage`]), and whether
//! it may change files ([`Access`]): the types recovery, the shared state and
//! truncation have in common.

use crate::error::CorruptionKind;
use crate::meta::SideFileNote;
use crate::position::{Position, SegmentId};

/// A damaged region of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    /// Where the damaged region starts.
    pub position: Position,
    /// What is wrong with the bytes there.
    pub kind: CorruptionKind,
    /// Bytes from the damage to the next valid entry, or to the end of the segment.
    pub len: u64,
}

/// What recovery found when the log was opened, and what it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Segments in the log after recovery.
    pub segments: u64,
    /// Entries in the log after recovery.
    pub entries: u64,
    /// Bytes of the log's segments after recovery.
    pub bytes: u64,
    /// Sequence number of the first entry (of the next one, if the log is empty).
    pub first_seq: u64,
    /// Sequence number of the last entry (`first_seq - 1` if the log is empty).
    pub last_seq: u64,
    /// Every damaged region found, in log order.
    pub damage: Vec<Damage>,
    /// The torn tail that was cut off, if any.
    pub torn_tail: Option<Damage>,
    /// Damaged regions skipped under [`RecoveryMode::SkipCorrupted`](crate::RecoveryMode::SkipCorrupted).
    pub skipped: u64,
    /// Bytes removed: torn tail, point-in-time cut and the segments it dropped.
    pub truncated_bytes: u64,
    /// Zero bytes after the last entry of the last segment: space preallocated
    /// before a crash, kept for the next appends (not damage).
    pub preallocated_bytes: u64,
    /// Segments deleted: after a point-in-time cut, or left over from an
    /// interrupted `truncate_front` or `truncate_back`.
    pub removed_segments: Vec<SegmentId>,
    /// A `truncate_back(seq)` that a crash had interrupted and recovery finished.
    pub finished_truncate_back: Option<u64>,
    /// Whether the directory held no log and a new one was started.
    pub created: bool,
    /// The first sequence number that may not be the one its entry was appended
    /// with, if any: [`RecoveryMode::SkipCorrupted`](crate::RecoveryMode::SkipCorrupted) skipped damage before it
    /// whose number of entries nothing recorded (no checkpoint record after it
    /// says, as in a log the Go implementation wrote), and counted it as none.
    /// `None` when every entry kept its number: skipped damage that the
    /// checkpoint counted leaves its sequence numbers as gaps
    /// ([`Error::Skipped`](crate::Error::Skipped)).
    pub numbering_unverified_from: Option<u64>,
    /// Side files recovery could not use, and what it did instead: a damaged or
    /// missing copy of `flashlog.meta` (the other copy was used), an unreadable
    /// checkpoint (ignored). Empty when every side file was fine.
    pub side_files: Vec<SideFileNote>,
}

impl RecoveryReport {
    /// A report of nothing found yet, in a log whose first entry is `first_seq`.
    pub(crate) fn starting_at(first_seq: u64) -> RecoveryReport {
        RecoveryReport {
            segments: 0,
            entries: 0,
            bytes: 0,
            first_seq,
            last_seq: first_seq - 1,
            damage: Vec::new(),
            torn_tail: None,
            skipped: 0,
            truncated_bytes: 0,
            preallocated_bytes: 0,
            removed_segments: Vec::new(),
            finished_truncate_back: None,
            created: false,
            numbering_unverified_from: None,
            side_files: Vec::new(),
        }
    }
}

/// Whether recovery may change files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Repair what the mode allows: cut torn tails, finish interrupted truncations.
    ReadWrite,
    /// Change nothing; report what a read-write recovery would do.
    ReadOnly,
}
