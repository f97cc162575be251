//! [`Retention`]: how much of its past a log keeps ([`Options::retention`]), what
//! an application of it removed ([`RetentionReport`]), and the policy itself as a
//! pure function of the segments, their sealing times and the slowest cursor
//! ([`plan`]).
//!
//! [`Options::retention`]: crate::Options::retention

use std::time::Duration;

use crate::error::{Error, Result};
use crate::position::SegmentId;

/// What named cursors ([`Wal::set_cursor`](crate::Wal::set_cursor)) mean to
/// retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CursorRule {
    /// Never remove an entry a cursor has not passed: segments holding entries
    /// after the slowest cursor stay, whatever the limits say (the report says
    /// which cursor held them, [`RetentionReport::held_back`]). The default.
    #[default]
    Respect,
    /// Apply the limits whatever the cursors say; a consumer that falls behind
    /// finds its next entry gone ([`Error::SeqOutOfRange`]).
    Ignore,
}

/// A retention policy: the limits past which the oldest segments are removed
/// (through [`Wal::truncate_front`](crate::Wal::truncate_front), crash-safely),
/// for [`Options::retention`](crate::Options::retention).
///
/// Whole sealed segments go, oldest first; the active segment never does. A
/// segment goes while the log's segments hold more than
/// [`max_bytes`](Retention::max_bytes) (the bytes of their entries, the active
/// segment's included), or while it was sealed longer than
/// [`max_age`](Retention::max_age) ago. So right after an application the log
/// holds at most `max_bytes` plus the part of a segment that did not fit, and
/// between two applications (one follows every rotation) at most about
/// `max_bytes` plus one segment (`max_segment_size`).
///
/// A segment's age counts from when it was **sealed** (left for the next one),
/// recorded durably in the side file `flashlog.sealed`, not from file times,
/// which a copy of the directory changes. A segment whose sealing time is not
/// recorded (sealed by the Go writer, by a flashlog without retention, or
/// before a crash that lost the record) counts as sealed when the log was
/// opened, and that time is recorded: its age is never overstated.
///
/// ```
/// use std::time::Duration;
/// use flashlog_wal::{CursorRule, Op, Options, Retention, Wal};
///
/// let retention = Retention::default()
///     .max_bytes(4096)                       // keep about 4 KiB of entries
///     .max_age(Duration::from_secs(3600))    // and nothing sealed over an hour ago
///     .cursors(CursorRule::Respect);         // but nothing a cursor still needs
/// let dir = tempfile::tempdir()?;
/// let wal = Wal::open(dir.path(), Options::default().max_segment_size(1024).retention(retention))?;
/// wal.set_cursor("indexer", 0)?;
/// for n in 0..400u32 {
///     wal.append(Op::Put, b"key", &n.to_le_bytes())?; // 24 bytes each
/// }
/// assert_eq!(wal.first_seq(), 1); // the cursor holds everything
/// wal.set_cursor("indexer", 400)?;
/// let report = wal.apply_retention()?;
/// assert!(report.bytes_removed > 0 && wal.first_seq() > 1);
/// let kept: u64 = wal.segments().iter().map(|s| s.bytes).sum();
/// assert!(kept <= 4096);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// The most bytes of entries the log keeps (see [`Retention::max_bytes`]).
    pub max_bytes: Option<u64>,
    /// The longest a sealed segment is kept (see [`Retention::max_age`]).
    pub max_age: Option<Duration>,
    /// What cursors mean to it (see [`Retention::cursors`]).
    pub cursors: CursorRule,
}

impl Retention {
    /// Removes the oldest sealed segments while the log's segments hold more
    /// than `bytes` bytes of entries. At least 1. Default: no limit.
    #[must_use]
    pub fn max_bytes(mut self, bytes: u64) -> Retention {
        self.max_bytes = Some(bytes);
        self
    }

    /// Removes the oldest sealed segments while they were sealed more than
    /// `age` ago. Longer than zero. Default: no limit.
    #[must_use]
    pub fn max_age(mut self, age: Duration) -> Retention {
        self.max_age = Some(age);
        self
    }

    /// Whether cursors hold segments back. Default [`CursorRule::Respect`].
    #[must_use]
    pub fn cursors(mut self, rule: CursorRule) -> Retention {
        self.cursors = rule;
        self
    }

    /// Refuses a policy without a limit, or with a zero one.
    pub(crate) fn validate(&self) -> Result<()> {
        let reason = match (self.max_bytes, self.max_age) {
            (None, None) => "a retention policy needs max_bytes or max_age",
            (Some(0), _) => "retention max_bytes must be at least 1",
            (_, Some(age)) if age.is_zero() => "retention max_age must be longer than zero",
            _ => return Ok(()),
        };
        Err(Error::InvalidOptions(reason))
    }
}

/// Why retention removed a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionReason {
    /// The log held more than [`Retention::max_bytes`].
    Bytes,
    /// The segment was sealed more than [`Retention::max_age`] ago.
    Age,
}

/// A segment retention removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemovedSegment {
    /// Its id.
    pub id: SegmentId,
    /// Its first sequence number.
    pub first_seq: u64,
    /// How many sequence numbers it held.
    pub entries: u64,
    /// Bytes of its entries.
    pub bytes: u64,
    /// Why it went (the byte limit first, when both applied).
    pub reason: RetentionReason,
}

/// What a cursor kept retention from removing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeldBack {
    /// The slowest cursor's name (the first by name among equals).
    pub cursor: String,
    /// Its position: the last entry its consumer handled.
    pub seq: u64,
    /// Segments the limits would have removed and it kept.
    pub segments: u64,
    /// Bytes of their entries.
    pub bytes: u64,
}

/// What one application of retention removed ([`Wal::apply_retention`]).
///
/// [`Wal::apply_retention`]: crate::Wal::apply_retention
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RetentionReport {
    /// The segments removed, oldest first.
    pub removed: Vec<RemovedSegment>,
    /// Sequence numbers removed (the counter to export as
    /// `flashlog_retention_removed_entries_total`).
    pub entries_removed: u64,
    /// Bytes of entries removed (`flashlog_retention_removed_bytes_total`).
    pub bytes_removed: u64,
    /// The log's first sequence number afterwards.
    pub first_seq: u64,
    /// Segments a cursor kept under [`CursorRule::Respect`], if any.
    pub held_back: Option<HeldBack>,
    /// Why the sealing times of new segments could not be stored
    /// (`flashlog.sealed`), if they could not; retention went on with those it
    /// had in memory, and the next application tries again.
    pub sealing_times_error: Option<std::sync::Arc<Error>>,
}

impl RetentionReport {
    /// Segments removed for each reason: (bytes, age).
    pub fn by_reason(&self) -> (u64, u64) {
        let bytes = self
            .removed
            .iter()
            .filter(|removed| removed.reason == RetentionReason::Bytes)
            .count() as u64;
        (bytes, self.removed.len() as u64 - bytes)
    }
}

/// Running totals of a log's retention since it was opened
/// ([`Wal::retention_totals`]): the counters to export as metrics.
///
/// [`Wal::retention_totals`]: crate::Wal::retention_totals
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RetentionTotals {
    /// Applications that ran (automatic and explicit), failed ones included.
    pub runs: u64,
    /// Applications that failed.
    pub failures: u64,
    /// Segments removed.
    pub segments_removed: u64,
    /// Segments removed because of the byte limit.
    pub removed_for_bytes: u64,
    /// Segments removed because of the age limit.
    pub removed_for_age: u64,
    /// Sequence numbers removed.
    pub entries_removed: u64,
    /// Bytes of entries removed.
    pub bytes_removed: u64,
    /// Applications in which a cursor held segments back.
    pub held_back: u64,
}

impl RetentionTotals {
    /// Adds one application's outcome.
    pub(crate) fn add(&mut self, outcome: Result<&RetentionReport, ()>) {
        self.runs += 1;
        let Ok(report) = outcome else {
            self.failures += 1;
            return;
        };
        let (bytes, age) = report.by_reason();
        self.segments_removed += report.removed.len() as u64;
        self.removed_for_bytes += bytes;
        self.removed_for_age += age;
        self.entries_removed += report.entries_removed;
        self.bytes_removed += report.bytes_removed;
        self.held_back += u64::from(report.held_back.is_some());
    }
}

/// One segment as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub id: SegmentId,
    pub first_seq: u64,
    /// The first sequence number after it.
    pub next_seq: u64,
    /// Bytes of its entries.
    pub bytes: u64,
    /// When it was sealed, in milliseconds since the Unix epoch; `None` for the
    /// active segment.
    pub sealed_at: Option<u64>,
}

/// What the policy removes: a prefix of the segments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Plan {
    pub removed: Vec<RemovedSegment>,
    /// What the slowest cursor kept, if anything.
    pub held_back: Option<HeldBack>,
}

impl Plan {
    /// The sequence number `truncate_front` is given: the first one after the
    /// removed segments.
    pub(crate) fn truncate_at(&self) -> Option<u64> {
        self.removed
            .last()
            .map(|last| last.first_seq + last.entries)
    }
}

/// The policy, pure: which of `segments` (oldest first, the active one last)
/// `policy` removes at `now` (milliseconds since the Unix epoch), given the
/// slowest cursor (name, position), which counts only under
/// [`CursorRule::Respect`]. A prefix of the sealed segments goes: the byte limit
/// counts every segment's bytes, the active one's too; the age limit looks at the
/// oldest segment left. The active segment never goes.
pub(crate) fn plan(
    policy: &Retention,
    segments: &[Candidate],
    slowest: Option<(&str, u64)>,
    now: u64,
) -> Plan {
    let mut total: u64 = segments.iter().map(|segment| segment.bytes).sum();
    let max_age = policy
        .max_age
        .map(|age| u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
    let slowest = slowest.filter(|_| policy.cursors == CursorRule::Respect);
    let mut plan = Plan::default();
    let sealed = &segments[..segments.len().saturating_sub(1)];
    for segment in sealed {
        let reason = if policy.max_bytes.is_some_and(|max| total > max) {
            RetentionReason::Bytes
        } else if let (Some(max_age), Some(sealed_at)) = (max_age, segment.sealed_at) {
            if now.saturating_sub(sealed_at) > max_age {
                RetentionReason::Age
            } else {
                break;
            }
        } else {
            break;
        };
        if let Some((cursor, seq)) = slowest {
            // The cursor's consumer still needs the entries after `seq`.
            if segment.next_seq > seq + 1 {
                let held = plan.held_back.get_or_insert_with(|| HeldBack {
                    cursor: cursor.to_owned(),
                    seq,
                    segments: 0,
                    bytes: 0,
                });
                held.segments += 1;
                held.bytes += segment.bytes;
                // Every later segment holds later entries: held too, and counted
                // as the limits would have had them.
                total -= segment.bytes;
                continue;
            }
        }
        total -= segment.bytes;
        plan.removed.push(RemovedSegment {
            id: segment.id,
            first_seq: segment.first_seq,
            entries: segment.next_seq - segment.first_seq,
            bytes: segment.bytes,
            reason,
        });
    }
    plan
}

#[cfg(test)]
mod tests;
