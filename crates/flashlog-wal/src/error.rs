//! The one error type of the crate, and the kinds of damage recovery can find.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::position::SegmentId;

/// A specialised `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in flashlog. Each variant names the file, segment or
/// offset it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on a file or directory failed.
    #[error("cannot {op} {}", path.display())]
    Io {
        /// What was being done, e.g. "fsync" or "create segment".
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// An entry on disk is damaged and the recovery mode does not accept the damage.
    #[error("corrupt entry in {} at offset {offset}: {kind}", path.display())]
    Corrupt {
        /// The segment holding the damaged entry.
        segment: SegmentId,
        /// The segment's file.
        path: PathBuf,
        /// Byte offset of the damaged entry inside the segment.
        offset: u64,
        /// What is wrong with it.
        kind: CorruptionKind,
    },
    /// Damage whose end recovery could not find: the bytes after it look like
    /// the starts of large entries at so many offsets that checking them all for
    /// the next valid entry would take hours. Bytes written to defeat the search
    /// do this; crashes and failing disks do not. Under
    /// [`RecoveryMode::PointInTime`](crate::RecoveryMode::PointInTime) the log
    /// opens with the entries before the damage.
    #[error(
        "cannot find where the damage at offset {offset} of {} ends ({kind}): too many would-be entries follow it to check them all; RecoveryMode::PointInTime keeps the entries before it",
        path.display()
    )]
    UnboundedDamage {
        /// The segment holding the damage.
        segment: SegmentId,
        /// The segment's file.
        path: PathBuf,
        /// Byte offset of the damage inside the segment.
        offset: u64,
        /// What is wrong with the entry there.
        kind: CorruptionKind,
    },
    /// [`repair`](crate::repair()) under
    /// [`RepairMode::TolerateCorruptedTail`](crate::RepairMode::TolerateCorruptedTail)
    /// found damage that is not a torn tail (valid entries follow it, or it is
    /// in a sealed segment): cutting it means cutting into the middle of the
    /// log, which only `RepairMode::PointInTime` (keep the entries before it)
    /// and `RepairMode::SkipCorrupted` (remove only the damaged bytes) do.
    /// Nothing was changed.
    #[error(
        "the damage at offset {offset} of {} ({kind}, {len} bytes) is not a torn tail: repair cuts into the middle of the log only in point-in-time or skip-corrupted mode",
        path.display()
    )]
    NotATornTail {
        /// The segment holding the damage.
        segment: SegmentId,
        /// The segment's file.
        path: PathBuf,
        /// Byte offset of the damage inside the segment.
        offset: u64,
        /// What is wrong with the bytes there.
        kind: CorruptionKind,
        /// Bytes from the damage to the next valid entry, or to the end of the
        /// segment.
        len: u64,
    },
    /// [`repair`](crate::repair()) changed the log, and it still does not open
    /// under the default [`RecoveryMode`](crate::RecoveryMode) (`source` says
    /// why): e.g. a sealed segment that no longer matches its checkpoint record,
    /// which `RepairMode::SkipCorrupted` leaves as it is.
    #[error(
        "the log in {} still does not open after repair{}",
        dir.display(),
        backup.as_ref().map(|b| format!(" (the segments it changed were copied to {} first)", b.display())).unwrap_or_default()
    )]
    StillDamaged {
        /// The log directory.
        dir: PathBuf,
        /// Where the segments repair changed were copied before it changed them.
        backup: Option<PathBuf>,
        /// Why the log does not open.
        #[source]
        source: Box<Error>,
    },
    /// No intact copy of the side file (`flashlog.meta` and its copy
    /// `flashlog.meta.bak`) is left: one is damaged (its checksum fails, or it holds
    /// numbers no log can have), the other damaged or missing. The segments may
    /// well be intact: `flashlog repair --first-seq N`
    /// ([`rebuild_side_file`](crate::rebuild_side_file)) writes a new side file.
    #[error(
        "corrupt side file {}: {reason}, and no intact copy of it is left; if the segments are intact, `flashlog repair --first-seq N` rebuilds it (N: the sequence number of the oldest segment's first entry)",
        path.display()
    )]
    CorruptMeta {
        /// The damaged side file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A segment file's name holds an id above [`SegmentId::MAX`], which no log
    /// reaches.
    #[error("{} names a segment id above the largest a log may have ({})", path.display(), SegmentId::MAX)]
    SegmentIdOutOfRange {
        /// The segment file.
        path: PathBuf,
    },
    /// Where flashlog left a temporary file that recovery removes (a
    /// `flashlog.*.tmp`), there is a directory: move it out of the log directory.
    #[error("{} is a directory where flashlog keeps a temporary file; move it out of the log directory", path.display())]
    UnexpectedDirectory {
        /// The directory.
        path: PathBuf,
    },
    /// A segment that must exist for the log to be whole is missing.
    #[error("segment {id} is missing from {} (segment ids must be contiguous)", dir.display())]
    MissingSegment {
        /// The log directory.
        dir: PathBuf,
        /// The missing segment.
        id: SegmentId,
    },
    /// A sealed segment no longer holds what the checkpoint (`flashlog.index`) said
    /// when the log was opened, found when its entries are first read (the
    /// default mode checks only its length and last entry at open): something
    /// other than this library changed it. Reopening in any mode but the default
    /// reports it as [`CorruptionKind::SegmentChanged`] damage at open.
    #[error(
        "segment {segment} ({}) changed since the log was opened: {expected_entries} entries \
         in {expected_len} bytes were recorded, the file has {found_entries} in {found_len}",
        path.display()
    )]
    SegmentChanged {
        /// The segment.
        segment: SegmentId,
        /// Its file.
        path: PathBuf,
        /// Entries the checkpoint recorded.
        expected_entries: u64,
        /// Length the checkpoint recorded.
        expected_len: u64,
        /// Entries the file holds.
        found_entries: u64,
        /// Length of the file.
        found_len: u64,
    },
    /// Two segment files have the same id (e.g. `segment-0002.log` and
    /// `segment-002.log`).
    #[error("{first} and {second} in {} are both segment {id}", dir.display())]
    DuplicateSegment {
        /// The log directory.
        dir: PathBuf,
        /// The id both files claim.
        id: SegmentId,
        /// One file name.
        first: String,
        /// The other file name.
        second: String,
    },
    /// A segment file is too large for this library to index (4 GiB or more).
    #[error("{} is {len} bytes, more than the {max} bytes a segment may have", path.display())]
    SegmentTooLarge {
        /// The segment's file.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// The largest length allowed.
        max: u64,
    },
    /// An entry is larger than the format or the segment size allows.
    #[error("entry of {len} bytes exceeds the limit of {max} bytes")]
    EntryTooLarge {
        /// The entry's size on disk, CRC included.
        len: u64,
        /// The largest size allowed.
        max: u64,
    },
    /// A sequence number outside the log was asked for.
    #[error("sequence number {seq} is outside the log (first {first}, last {last})")]
    SeqOutOfRange {
        /// The sequence number asked for.
        seq: u64,
        /// The first sequence number in the log.
        first: u64,
        /// The last sequence number in the log (`first - 1` when the log is empty).
        last: u64,
    },
    /// The sequence number belonged to damaged entries that
    /// [`RecoveryMode::SkipCorrupted`](crate::RecoveryMode::SkipCorrupted)
    /// skipped: the log knows (from the checkpoint) that an entry held it, and
    /// keeps the number so that later entries keep theirs, but cannot read it.
    /// Iterators pass over such numbers; the recovery report lists the damage.
    #[error("sequence number {seq} was held by a damaged entry that recovery skipped")]
    Skipped {
        /// The sequence number asked for.
        seq: u64,
    },
    /// Entries an iterator had already yielded were removed by
    /// [`Wal::truncate_back`](crate::Wal::truncate_back): the history it read is no
    /// longer the log's. Returned once; the iterator then goes on from `first_cut`,
    /// which holds the log's new entries (call [`Iter::seek`](crate::Iter::seek) to
    /// start elsewhere).
    #[error("entries from {first_cut} on, already read, were removed by truncate_back")]
    Truncated {
        /// The first sequence number the truncation removed.
        first_cut: u64,
    },
    /// A read-only view ([`Options::read_only`](crate::Options::read_only)) of a
    /// log that another process writes: the writer truncated the log back since
    /// the view was opened, and the entries asked for may have been replaced.
    /// Open the log again to see it as it is now.
    #[error("the log in {} was truncated back by its writer since this read-only view opened it; open it again", dir.display())]
    ViewOutdated {
        /// The log directory.
        dir: PathBuf,
    },
    /// A cursor name the cursor methods ([`Wal::set_cursor`](crate::Wal::set_cursor)
    /// and the others) do not accept: a name is 1 to
    /// [`MAX_CURSOR_NAME_LEN`](crate::MAX_CURSOR_NAME_LEN) bytes of printable
    /// ASCII (`!` to `~`: letters, digits, punctuation; no space, no control or
    /// non-ASCII character).
    #[error("invalid cursor name {name:?}: {reason}")]
    InvalidCursorName {
        /// The name (its first 64 characters, with `...` when it was longer).
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// [`Wal::set_cursor`](crate::Wal::set_cursor) of a new name in a log that
    /// already has [`MAX_CURSORS`](crate::MAX_CURSORS) cursors.
    #[error("the log already has {max} cursors, the most it keeps; remove one first")]
    TooManyCursors {
        /// The most cursors a log keeps.
        max: usize,
    },
    /// The cursor side file (`flashlog.cursors`) is damaged: its checksum fails,
    /// or it holds what no cursor file can. The log itself is unaffected (it
    /// opens and reads as ever), but the positions the file kept cannot be
    /// trusted: restore the file, or remove it with
    /// [`Wal::clear_cursors`](crate::Wal::clear_cursors).
    #[error(
        "corrupt cursor file {} at offset {offset}: {reason}; the log is unaffected: restore the file, or remove every cursor (Wal::clear_cursors)",
        path.display()
    )]
    CorruptCursors {
        /// The cursor file.
        path: PathBuf,
        /// Where in it decoding failed.
        offset: u64,
        /// What is wrong there.
        reason: &'static str,
    },
    /// The options cannot be used.
    #[error("invalid options: {0}")]
    InvalidOptions(&'static str),
    /// Another `Wal` (in this or another process) has the directory open.
    #[error("{} is locked by another open log", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// An earlier write or fsync failed; the log accepts no more writes until it is
    /// reopened, because what reached the disk after the failure is unknown.
    /// The earlier failure is its source, with its kind: [`Error::io_kind`] tells a
    /// full disk (`StorageFull`) from a failing one.
    #[error("the log stopped accepting writes after an earlier failure")]
    Poisoned {
        /// The write or fsync that failed.
        #[source]
        cause: Arc<Error>,
    },
    /// The log was opened read-only.
    #[error("the log is open read-only")]
    ReadOnly,
    /// The log was closed.
    #[error("the log is closed")]
    Closed,
}

impl Error {
    /// The kind of the operating system's error behind this one: of an
    /// [`Error::Io`], or of the failure that poisoned the log for an
    /// [`Error::Poisoned`]. `None` for errors that are not I/O.
    ///
    /// ```
    /// use std::io;
    /// use flashlog_wal::Error;
    ///
    /// let err = Error::Io {
    ///     op: "fsync",
    ///     path: "/log/segment-0001.log".into(),
    ///     source: io::Error::from(io::ErrorKind::StorageFull),
    /// };
    /// assert_eq!(err.io_kind(), Some(io::ErrorKind::StorageFull));
    /// ```
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            Error::Io { source, .. } => Some(source.kind()),
            Error::Poisoned { cause } => cause.io_kind(),
            _ => None,
        }
    }

    /// What the log keeps as the cause of its poisoning, while `self` goes to the
    /// caller whose write failed: an equal I/O error (same operation, path, OS
    /// error code or kind, and message). Writes and fsyncs fail only with
    /// [`Error::Io`]; anything else is kept as its text, kind `Other`.
    pub(crate) fn poison_cause(&self) -> Arc<Error> {
        match self {
            Error::Poisoned { cause } => Arc::clone(cause),
            other => Arc::new(other.duplicate()),
        }
    }

    /// An equal error (see [`Error::poison_cause`]), for a second recipient.
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Io { op, path, source } => Error::Io {
                op,
                path: path.clone(),
                source: match source.raw_os_error() {
                    Some(code) => io::Error::from_raw_os_error(code),
                    None => io::Error::new(source.kind(), source.to_string()),
                },
            },
            Error::Poisoned { cause } => Error::Poisoned {
                cause: Arc::clone(cause),
            },
            other => Error::Io {
                op: "write",
                path: PathBuf::new(),
                source: io::Error::other(other.with_causes()),
            },
        }
    }

    /// The error and its causes on one line, joined by ": ".
    pub(crate) fn with_causes(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// What is wrong with a damaged entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptionKind {
    /// Fewer bytes remain than the header or `TOTAL_LEN` promise: a write cut short.
    Incomplete {
        /// Bytes the entry needs.
        needed: u64,
        /// Bytes left in the segment.
        available: u64,
    },
    /// The CRC is still the placeholder `0xFFFFFFFF` and does not match the body: a
    /// write the Go writer never finished.
    Placeholder,
    /// `TOTAL_LEN` is below 13 or above 16 MiB.
    BadLength(u32),
    /// `KEY_LEN` does not fit inside `TOTAL_LEN`.
    BadKeyLength {
        /// The stored key length.
        key_len: u32,
        /// The stored total length.
        total_len: u32,
    },
    /// `VAL_LEN` does not fill `TOTAL_LEN` exactly.
    BadValueLength {
        /// The stored value length.
        value_len: u32,
        /// The stored total length.
        total_len: u32,
    },
    /// The stored CRC does not match the body.
    ChecksumMismatch {
        /// The CRC stored in the entry.
        stored: u32,
        /// The CRC of the bytes on disk.
        computed: u32,
    },
    /// The `TYPE` byte is neither 0 (put) nor 1 (delete).
    UnknownOp(u8),
    /// A sealed segment no longer holds what the checkpoint (`flashlog.index`)
    /// recorded of it: cut, replaced, grown, emptied or renumbered since. Which
    /// of its entries are the recorded ones cannot be told, so the whole segment
    /// is the damaged region (reported at offset 0).
    SegmentChanged {
        /// The sequence number of its first entry, as recorded.
        recorded_first_seq: u64,
        /// Its entries, as recorded.
        recorded_entries: u64,
        /// Its length, as recorded.
        recorded_len: u64,
        /// The sequence number its first entry gets from the segments before it.
        found_first_seq: u64,
        /// The valid entries the file holds.
        found_entries: u64,
        /// The file's length.
        found_len: u64,
    },
    /// A segment other than the newest has no bytes at all. The writer never
    /// leaves one (it starts a segment only to put an entry in it), so its
    /// entries were lost, and how many is not known without a checkpoint.
    EmptySegment,
}

impl fmt::Display for CorruptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CorruptionKind::Incomplete { needed, available } => {
                write!(f, "incomplete entry ({available} of {needed} bytes)")
            }
            CorruptionKind::Placeholder => f.write_str("unfinished write (placeholder crc)"),
            CorruptionKind::BadLength(len) => write!(f, "total length {len} out of range"),
            CorruptionKind::BadKeyLength { key_len, total_len } => {
                write!(
                    f,
                    "key length {key_len} does not fit total length {total_len}"
                )
            }
            CorruptionKind::BadValueLength {
                value_len,
                total_len,
            } => write!(
                f,
                "value length {value_len} does not match total length {total_len}"
            ),
            CorruptionKind::ChecksumMismatch { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            CorruptionKind::UnknownOp(byte) => write!(f, "unknown entry type {byte}"),
            CorruptionKind::SegmentChanged {
                recorded_first_seq,
                recorded_entries,
                recorded_len,
                found_first_seq,
                found_entries,
                found_len,
            } => write!(
                f,
                "sealed segment changed: the checkpoint recorded {recorded_entries} entries \
                 from sequence number {recorded_first_seq} in {recorded_len} bytes, the file \
                 has {found_entries} valid entries from {found_first_seq} in {found_len} bytes"
            ),
            CorruptionKind::EmptySegment => f.write_str("empty segment before the newest"),
        }
    }
}
