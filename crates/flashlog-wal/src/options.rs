//! How a log is opened: [`Options`], [`SyncPolicy`] and [`RecoveryMode`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::codec::MIN_ENTRY_LEN;
use crate::error::Error;
use crate::fs::{Fs, StdFs};
use crate::retention::Retention;
use crate::scrub_rate::ScrubRate;

/// Which entries a reader sees: those durable, or those written.
///
/// An entry is *written* once a group commit handed it to the operating system
/// ([`Wal::written_seq`](crate::Wal::written_seq)) and *durable* once an
/// fdatasync covered it ([`Wal::durable_seq`](crate::Wal::durable_seq)); under
/// [`SyncPolicy::Always`] the two are a moment apart (the group's fsync),
/// under the other policies until the next sync.
///
/// A [`Visibility::Written`] reader can see entries that a crash of the machine
/// (not of the process: the operating system has them) then takes away: a power
/// loss before their fsync. What it read was real and in order, but the log
/// reopened after such a crash ends before those entries, and the entries
/// appended after the reopen get their sequence numbers again. Use it where that
/// is handled, e.g. a replication leader that ships entries to followers while
/// its own fsync runs, and counts an entry committed only once a quorum,
/// itself included, has it durably.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Visibility {
    /// Only entries an fdatasync covered (the default).
    #[default]
    Durable,
    /// Entries handed to the operating system, maybe not yet durable.
    Written,
}

/// When appended entries are made durable (fdatasync'd).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// `append` returns only once the entry is on disk. Concurrent appenders share
    /// one write and one fdatasync (group commit). After a crash of the process or
    /// the machine, every entry whose `append` returned `Ok` is there.
    #[default]
    Always,
    /// `append` returns once the entry is written to the operating system; a
    /// background thread fdatasyncs every interval. A process crash loses nothing
    /// acknowledged; a power loss may lose up to one interval of entries (always a
    /// suffix: the log stays a prefix of what was appended).
    Interval(Duration),
    /// `append` returns once the entry is written to the operating system; only
    /// [`Wal::sync`](crate::Wal::sync) (and rotation and `close`) make entries
    /// durable. A power loss may lose everything since the last sync (a suffix).
    Manual,
}

/// What `open` does when it finds damaged entries.
///
/// These are the four modes RocksDB names. Whatever the mode, `open` never panics and
/// reports what it found in [`RecoveryReport`](crate::RecoveryReport).
///
/// **Changed sealed segments.** Every mode checks each sealed segment (any but
/// the newest) that the checkpoint `flashlog.index` records against its record:
/// length, entry count, first sequence number and last entry. A segment that no
/// longer matches (cut, replaced by another copy, grown, overwritten, swapped,
/// emptied) is damage at its offset 0, of kind
/// [`CorruptionKind::SegmentChanged`](crate::CorruptionKind::SegmentChanged),
/// and handled like damage in the middle of the log: an [`Error::Corrupt`]
/// naming it under the default and the strict mode, cut before under
/// `PointInTime`, skipped whole under `SkipCorrupted`. Without a record, a
/// segment before the newest with no bytes at all is damage too
/// ([`CorruptionKind::EmptySegment`](crate::CorruptionKind::EmptySegment)): the
/// writer never leaves one. (If the segments are right and the checkpoint is
/// not, e.g. a segment restored from a backup, remove `flashlog.index`: the
/// segments alone are then the truth.)
///
/// **Numbering after damage.** Where the checkpoint says how many entries the
/// damage held, `SkipCorrupted` keeps their sequence numbers as a gap: every
/// other entry keeps the number it was appended with, reading a number in the
/// gap is [`Error::Skipped`](crate::Error::Skipped), and iterators pass over it.
/// Where nothing says (a log the Go implementation wrote, damage in the newest
/// segment), the skipped damage counts as no entries and
/// [`RecoveryReport::numbering_unverified_from`](crate::RecoveryReport::numbering_unverified_from)
/// names the first sequence number that may have moved.
///
/// **A write cut short is the end of the log** (FORMAT.md), in every mode: an entry
/// in the newest segment whose `TOTAL_LEN` promises more bytes than were written
/// (the file ends first, or only zeros follow, as in preallocated space) is a
/// torn tail, whatever its bytes hold. And an entry owns its declared bytes: when
/// its `TOTAL_LEN`, `KEY_LEN` and `VAL_LEN` agree, nothing inside them is ever
/// read as an entry, even if its CRC fails, so a value that holds encoded entries
/// (a shipped segment, a snapshot, a Raft payload) never yields them, in
/// `SkipCorrupted` either. Damage in the middle is then skipped to where the
/// damaged entry says it ends. In a sealed segment an entry that runs past the end
/// is damage, not a torn tail. Only where the lengths disagree is the end of
/// the damage found by searching for the next valid entry.
///
/// What this trades away: damage that changes `TOTAL_LEN` **and** keeps the
/// lengths agreeing (`VAL_LEN` changed to match; a bit flip in `TOTAL_LEN` alone
/// makes them disagree and is caught as before, as `BadValueLength` or
/// `BadKeyLength`). Near the end of the newest segment, such an entry that now
/// points past the end reads as a write cut short: the report shows a
/// `torn_tail` at its offset of kind `Incomplete { needed, available }` (needed:
/// what the damaged length claims; available: the bytes written from there),
/// `truncated_bytes` counts the valid entries after it, which are cut with it,
/// and `AbsoluteConsistency` refuses it as it refuses any torn tail. In the middle
/// of a segment, the entries inside the claimed extent are skipped with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Damage at the end of the last segment with nothing valid after it is a torn
    /// tail: it is cut off and reported. Damage followed by valid entries, or in an
    /// older segment, is an [`Error::Corrupt`]. (A power loss can leave that too,
    /// when the disk kept a later sector of an unsynced group commit but not an
    /// earlier one; [`RecoveryMode::PointInTime`] then keeps every acknowledged
    /// entry. See docs/design.md.) A changed sealed segment is an
    /// [`Error::Corrupt`] naming it.
    ///
    /// This mode alone trusts the checkpoint `flashlog.index`: a sealed segment it
    /// records is not read at open when the file has the recorded length and its
    /// last entry is the recorded one (one small read: so a clean reopen reads the
    /// newest segment and one entry per sealed segment, however long the log), and
    /// damage in it is reported as [`Error::Corrupt`] when its entries are first
    /// read instead. A segment whose record no longer fits is scanned at open, and
    /// is a changed segment unless only damage inside it (bit rot) explains it.
    /// The other modes read every segment at open.
    #[default]
    TolerateCorruptedTail,
    /// Any damage, a torn tail and a changed sealed segment included, is an
    /// [`Error::Corrupt`]; nothing is changed.
    AbsoluteConsistency,
    /// Stop at the first damage and keep everything before it: the damaged segment is
    /// cut there and every later segment is deleted. A changed sealed segment is
    /// cut to nothing (it stays, empty, as the newest segment).
    PointInTime,
    /// Skip damaged entries anywhere and keep every valid one; a torn tail is cut.
    /// Skipped bytes stay on disk and are skipped again at every open
    /// ([`remove_skipped_damage`](crate::remove_skipped_damage) takes them out).
    /// Entries after skipped damage keep their sequence numbers where the
    /// checkpoint counted the entries it held (the numbers are a gap); elsewhere
    /// the damage counts as no entries and the report says the numbering is
    /// unverified from there. A changed sealed segment is skipped whole (which of
    /// its entries are the recorded ones cannot be told): its recorded entries
    /// are a gap.
    /// A damaged entry whose lengths agree is skipped whole: entries inside its
    /// value are not "valid ones" (see above).
    SkipCorrupted,
}

/// Options for [`Wal::open`](crate::Wal::open).
///
/// ```
/// use std::time::Duration;
/// use flashlog_wal::{Options, RecoveryMode, SyncPolicy};
///
/// let options = Options::default()
///     .max_segment_size(64 << 20)
///     .sync_policy(SyncPolicy::Interval(Duration::from_millis(5)))
///     .recovery_mode(RecoveryMode::PointInTime);
/// assert_eq!(options.max_segment_size, 64 << 20);
/// ```
///
/// Each setting is a public field, read as it is (`options.sync_policy`), and set
/// with the builder method of the same name; [`Wal::open`](crate::Wal::open)
/// checks them ([`Error::InvalidOptions`]).
#[derive(Clone)]
#[non_exhaustive]
pub struct Options {
    /// The rotation threshold in bytes (see [`Options::max_segment_size()`]).
    pub max_segment_size: u64,
    /// When appends become durable (see [`Options::sync_policy()`]).
    pub sync_policy: SyncPolicy,
    /// What `open` does with damaged entries (see [`Options::recovery_mode()`]).
    pub recovery_mode: RecoveryMode,
    /// The file system the log reaches its files through (see [`Options::fs()`]).
    pub fs: Arc<dyn Fs>,
    /// Whether the log is opened read-only (see [`Options::read_only()`]).
    pub read_only: bool,
    /// Zero-filled bytes kept ahead of the active segment's last entry (see
    /// [`Options::preallocate()`]).
    pub preallocate: u64,
    /// An fdatasync at least this long is warned about (see
    /// [`Options::slow_fsync()`]).
    pub slow_fsync: Duration,
    /// The background scrubber's interval and rate, if any (see
    /// [`Options::scrub_every()`]).
    pub scrub: Option<(Duration, ScrubRate)>,
    /// The retention policy, if any (see [`Options::retention()`]).
    pub retention: Option<Retention>,
}

/// The default segment size limit, as in the Go implementation: 16 MiB.
pub const DEFAULT_MAX_SEGMENT_SIZE: u64 = 16 << 20;

/// The default zero-filled space kept ahead of the active segment's entries: 1 MiB.
pub const DEFAULT_PREALLOCATE: u64 = 1 << 20;

/// The default threshold of the slow-fsync warning: 1 second.
pub const DEFAULT_SLOW_FSYNC: Duration = Duration::from_secs(1);

/// The largest segment size limit: offsets inside a segment are kept as `u32`.
pub const MAX_MAX_SEGMENT_SIZE: u64 = u32::MAX as u64;

impl Default for Options {
    fn default() -> Options {
        Options {
            max_segment_size: DEFAULT_MAX_SEGMENT_SIZE,
            sync_policy: SyncPolicy::default(),
            recovery_mode: RecoveryMode::default(),
            fs: Arc::new(StdFs),
            read_only: false,
            preallocate: DEFAULT_PREALLOCATE,
            slow_fsync: DEFAULT_SLOW_FSYNC,
            scrub: None,
            retention: None,
        }
    }
}

impl Options {
    /// Rotation threshold in bytes: before appending an entry of `n` bytes, if
    /// `segment size + n > max_segment_size`, a new segment is started. An entry larger
    /// than this is rejected, except by [`Wal::append_carried`](crate::Wal::append_carried),
    /// which copies entries the log already holds (written under a larger limit) and
    /// gives such an entry a segment of its own. Default 16 MiB; at least 17 (the
    /// smallest entry) and at most 4 GiB - 1.
    #[must_use]
    pub fn max_segment_size(mut self, bytes: u64) -> Options {
        self.max_segment_size = bytes;
        self
    }

    /// When appends become durable. Default [`SyncPolicy::Always`].
    #[must_use]
    pub fn sync_policy(mut self, policy: SyncPolicy) -> Options {
        self.sync_policy = policy;
        self
    }

    /// What `open` does with damaged entries. Default
    /// [`RecoveryMode::TolerateCorruptedTail`].
    #[must_use]
    pub fn recovery_mode(mut self, mode: RecoveryMode) -> Options {
        self.recovery_mode = mode;
        self
    }

    /// The file system the log reaches its files through. Default: the real one
    /// ([`StdFs`]). Tests plug in simulated, crashing or failing file systems here.
    #[must_use]
    pub fn fs(mut self, fs: Arc<dyn Fs>) -> Options {
        self.fs = fs;
        self
    }

    /// Zero-filled bytes kept ahead of the last entry of the active segment, so that
    /// the fdatasync of a small group commits no change of file size (on a typical
    /// disk that makes durable appends markedly faster). The zeros are trimmed when a
    /// segment is left and at close, so closed segments are byte-identical to the Go
    /// implementation's; after a crash, the zero tail is recognised as preallocated
    /// space (not damage) and reused. Groups of 64 KiB or more are written without
    /// zero-filling. 0 turns preallocation off; more than 4 GiB is refused by
    /// [`Wal::open`](crate::Wal::open) ([`Error::InvalidOptions`]). Default 1 MiB.
    #[must_use]
    pub fn preallocate(mut self, bytes: u64) -> Options {
        self.preallocate = bytes;
        self
    }

    /// A group commit's fdatasync that takes at least this long is reported as a
    /// `tracing` warning (target `flashlog_wal`, naming the segment and the
    /// time); every fsync's time is in [`Wal::metrics`](crate::Wal::metrics)
    /// either way. Default 1 s.
    #[must_use]
    pub fn slow_fsync(mut self, threshold: Duration) -> Options {
        self.slow_fsync = threshold;
        self
    }

    /// Opens the log read-only: `open` changes no file (a torn tail is left in place
    /// and only hidden), takes no lock, creates nothing, and every write returns
    /// [`Error::ReadOnly`]. For dumping or verifying a log, even one that another
    /// process is writing: the open sees a consistent state of it (it retries, a
    /// bounded number of times, a try that a rotation or truncation overlapped),
    /// and the handle keeps seeing that state; entries the writer removes later
    /// fail to read. Default: read-write.
    #[must_use]
    pub fn read_only(mut self) -> Options {
        self.read_only = true;
        self
    }

    /// Runs a background scrubber: every `interval` (the first one `interval`
    /// after the open), a [`Wal::scrub`](crate::Wal::scrub) at `rate` MB/s,
    /// whose report [`Wal::last_scrub`](crate::Wal::last_scrub) returns. The
    /// thread stops (within one chunk of its scrub) and is joined at close.
    /// A zero interval or a rate that is not positive is refused by
    /// [`Wal::open`](crate::Wal::open) ([`Error::InvalidOptions`]). Default: none.
    #[must_use]
    pub fn scrub_every(mut self, interval: Duration, rate: impl Into<ScrubRate>) -> Options {
        self.scrub = Some((interval, rate.into()));
        self
    }

    /// Removes the oldest segments past `retention`'s limits (bytes, age),
    /// through the crash-safe [`Wal::truncate_front`](crate::Wal::truncate_front):
    /// after every rotation (by an appender of the log once its group commit is
    /// over, never inside one; by [`Wal::rotate`](crate::Wal::rotate) itself), at
    /// the first append after the open, and when
    /// [`Wal::apply_retention`](crate::Wal::apply_retention) is called. See
    /// [`Retention`] for what it keeps. A log opened read-only never applies it.
    /// A policy without a limit, or with a zero one, is refused by
    /// [`Wal::open`](crate::Wal::open) ([`Error::InvalidOptions`]). Default: none,
    /// the log keeps everything.
    #[must_use]
    pub fn retention(mut self, retention: Retention) -> Options {
        self.retention = Some(retention);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.max_segment_size < MIN_ENTRY_LEN {
            return Err(Error::InvalidOptions(
                "max_segment_size must hold at least the smallest entry (17 bytes)",
            ));
        }
        if self.max_segment_size > MAX_MAX_SEGMENT_SIZE {
            return Err(Error::InvalidOptions(
                "max_segment_size must be below 4 GiB",
            ));
        }
        if self.preallocate > MAX_MAX_SEGMENT_SIZE {
            return Err(Error::InvalidOptions(
                "preallocate must be below 4 GiB (it is capped by max_segment_size anyway)",
            ));
        }
        if let Some((interval, rate)) = self.scrub {
            if interval.is_zero() {
                return Err(Error::InvalidOptions(
                    "the scrub interval must be longer than zero",
                ));
            }
            rate.validate()?;
        }
        if let Some(retention) = &self.retention {
            retention.validate()?;
        }
        if let SyncPolicy::Interval(interval) = self.sync_policy {
            if interval.is_zero() {
                return Err(Error::InvalidOptions(
                    "the sync interval must be longer than zero",
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("max_segment_size", &self.max_segment_size)
            .field("sync_policy", &self.sync_policy)
            .field("recovery_mode", &self.recovery_mode)
            .field("fs", &self.fs)
            .field("read_only", &self.read_only)
            .field("preallocate", &self.preallocate)
            .field("slow_fsync", &self.slow_fsync)
            .field("scrub", &self.scrub)
            .field("retention", &self.retention)
            .finish()
    }
}
