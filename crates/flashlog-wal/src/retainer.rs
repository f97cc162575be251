//! [`Retainer`]: the retention state of an open log: whether an application is
//! due (a rotation sealed a segment), the sealing times of its sealed segments
//! (kept in memory, stored in `flashlog.sealed`, see `sealed.rs`), and the
//! totals and last outcome of its applications.
//!
//! The group commit only sets a flag ([`Retainer::sealed`]); the appender that
//! finds it set after its group applies retention (`wal/retention.rs`), so the
//! removal's I/O is never inside a group commit.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::Error;
use crate::fs::Dir;
use crate::index::Index;
use crate::meta::{Meta, SideFileNote};
use crate::options::Options;
use crate::retention::{Candidate, RetentionReport, RetentionTotals};
use crate::sealed::{self, SealRecord, SealTimes};
use crate::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::sync::{Mutex, MutexGuard};

/// Milliseconds since the Unix epoch (0 for a clock before it).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// The retention state of an open log; inert without a policy.
#[derive(Debug)]
pub(crate) struct Retainer {
    /// Set when a rotation sealed a segment: the next appender applies retention.
    due: AtomicBool,
    /// The lowest sequence number a `truncate_back` cut since the last
    /// application (`u64::MAX`: none): sealing times of segments from there on
    /// no longer hold.
    cut_floor: AtomicU64,
    /// Held for a whole application: they run one at a time.
    inner: Mutex<Inner>,
}

/// What an application works with.
#[derive(Debug, Default)]
pub(crate) struct Inner {
    /// The sealing times known to hold (stamped with the cuts counted when they
    /// were last checked).
    pub times: SealTimes,
    /// Whether `times` differ from the file.
    pub dirty: bool,
    /// When the log was opened: the sealing time of a segment with no record.
    pub opened_at: u64,
    pub totals: RetentionTotals,
    /// The outcome of the last automatic application.
    pub last: Option<Result<RetentionReport, Arc<Error>>>,
}

impl Retainer {
    /// The retention state of a log just opened with `options`: with a policy and
    /// read-write, the sealing times of its sealed segments from the file (those
    /// that still describe their segment, see `sealed.rs`; the others count as
    /// sealed now), and an application due at the first append. A damaged or
    /// unreadable file is a note for the report.
    pub(crate) fn open(
        dir: &Dir,
        options: &Options,
        index: &Index,
        meta: &Meta,
    ) -> (Retainer, Option<SideFileNote>) {
        let mut inner = Inner {
            opened_at: now_ms(),
            ..Inner::default()
        };
        let active = options.retention.is_some() && !options.read_only;
        let mut note = None;
        if active {
            sealed::remove_leftover(dir);
            let (file, problem) = sealed::load(dir);
            note = problem;
            inner.times.truncations = meta.truncations;
            let active_id = index.active().id;
            for segment in index.segments.iter().filter(|s| s.id < active_id) {
                let (first_seq, next_seq) = (segment.first_seq, segment.next_seq());
                let sealed_at = file
                    .records
                    .get(&segment.id)
                    .filter(|record| {
                        file.describes(record, first_seq, next_seq, meta.truncations, meta.last_cut)
                    })
                    .map_or(inner.opened_at, |record| record.sealed_at);
                inner.times.records.insert(
                    segment.id,
                    SealRecord {
                        first_seq,
                        next_seq,
                        sealed_at,
                    },
                );
            }
            inner.dirty = inner.times != file;
        }
        let retainer = Retainer {
            due: AtomicBool::new(active),
            cut_floor: AtomicU64::new(u64::MAX),
            inner: Mutex::new(inner),
        };
        (retainer, note)
    }

    /// A rotation sealed a segment (called by the group commit that did it, and
    /// by `rotate`): retention is due.
    pub(crate) fn sealed(&self) {
        self.due.store(true, Ordering::Release);
    }

    /// Whether an application is due, clearing it. One atomic load when not.
    pub(crate) fn take_due(&self) -> bool {
        self.due.load(Ordering::Acquire) && self.due.swap(false, Ordering::AcqRel)
    }

    /// A `truncate_back(seq)` is about to cut: sealing times of the segments
    /// from `seq` on stop holding. Lock-free: it runs under the log's locks.
    pub(crate) fn cut(&self, seq: u64) {
        self.cut_floor.fetch_min(seq, Ordering::AcqRel);
    }

    /// Takes the lowest cut since the last call (`u64::MAX`: none). Called under
    /// the state lock, as `cut` is: what it returns matches the index then.
    pub(crate) fn take_cut_floor(&self) -> u64 {
        self.cut_floor.swap(u64::MAX, Ordering::AcqRel)
    }

    /// The state of applications, held for a whole one.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl Inner {
    /// Brings the sealing times up to date with `segments` (oldest first, the
    /// active one last, as the index had them with `truncations` cuts counted
    /// and no cut from `cut_floor` on since the last call) and fills in each
    /// sealed segment's `sealed_at`: records of segments gone, cut or replaced
    /// go; a segment without one was sealed since the last call, at `now`.
    pub(crate) fn update(
        &mut self,
        segments: &mut [Candidate],
        truncations: u64,
        cut_floor: u64,
        now: u64,
    ) {
        let sealed_count = segments.len().saturating_sub(1);
        let mut records = std::collections::BTreeMap::new();
        for segment in &mut segments[..sealed_count] {
            let record = self
                .times
                .records
                .get(&segment.id)
                .filter(|record| {
                    record.first_seq == segment.first_seq
                        && record.next_seq == segment.next_seq
                        && record.next_seq <= cut_floor
                })
                .copied()
                .unwrap_or(SealRecord {
                    first_seq: segment.first_seq,
                    next_seq: segment.next_seq,
                    sealed_at: now,
                });
            segment.sealed_at = Some(record.sealed_at);
            records.insert(segment.id, record);
        }
        let times = SealTimes {
            truncations,
            records,
        };
        if times != self.times {
            self.times = times;
            self.dirty = true;
        }
    }
}
