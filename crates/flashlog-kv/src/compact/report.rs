//! What a compaction tells: its progress while it runs, its report when done,
//! and how the compactions since open went.

#[cfg(doc)]
use crate::Db;

/// How far a running compaction is, passed to the callback of
/// [`Db::compact_with_progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactionProgress {
    /// Bytes of the sealed segments read so far.
    pub bytes_read: u64,
    /// Bytes of the sealed segments to read.
    pub bytes_total: u64,
    /// Live entries copied so far.
    pub entries_copied: u64,
}

/// What a compaction did, from [`Db::compact`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CompactionReport {
    /// Bytes of the log before.
    pub bytes_before: u64,
    /// Bytes of the log after.
    pub bytes_after: u64,
    /// Bytes of sealed segments read.
    pub bytes_read: u64,
    /// Live entries copied to the head of the log.
    pub entries_copied: u64,
    /// Bytes of those copies.
    pub bytes_copied: u64,
    /// Segments removed.
    pub segments_removed: u64,
    /// Whether [`Db::compact_until`]'s callback stopped the compaction before it
    /// removed anything: the copies made so far are durable and the index points
    /// at them, their originals are still in the log (dead), so the log grew by
    /// `bytes_copied` until the next compaction removes them.
    pub stopped: bool,
}

/// What started a compaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// [`Db::compact`] or [`Db::compact_with_progress`]: the caller gets the error.
    Called,
    /// A write that found the log over the [`AutoCompact`](crate::AutoCompact) line.
    Automatic,
}

/// How the compactions since open went, for [`Db::stats`].
#[derive(Debug, Default)]
pub(crate) struct CompactionStatus {
    pub runs: u64,
    /// Time spent compacting, all runs together.
    pub time: std::time::Duration,
    pub failures: u64,
    /// The latest compaction's error, if it failed.
    pub last_error: Option<String>,
}
