//! [`Wal`]'s retention methods: applying the log's [`Retention`] policy
//! ([`Options::retention`](crate::Options::retention)) explicitly or after a
//! rotation, and what it removed so far.
//!
//! An application, one at a time (the retainer's lock):
//! 1. under the state lock, the segments (ids, sequence numbers, bytes) and the
//!    lowest `truncate_back` since the last application;
//! 2. the sealing times brought up to date (new sealed segments: now; records of
//!    segments gone or cut: dropped) and, if they changed, stored durably in
//!    `flashlog.sealed` before anything is removed;
//! 3. under the layout pin, held exclusively: the cursors (no `set_cursor` or
//!    truncation runs meanwhile, so the slowest cursor cannot move back under
//!    the removal), the policy ([`retention::plan`], pure), and the removal,
//!    through `truncate_front`'s own steps (side file first, then the segments:
//!    a crash reopens to the log before or after it).
//!
//! Between 1 and 3 appenders may add entries and segments: only at the end, and
//! the plan never removes the segment that was active in step 1, so what it
//! removes is still the oldest segments, unchanged.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::retainer::now_ms;
use crate::retention::{self, Candidate, RetentionReport, RetentionTotals};
use crate::sealed;
use crate::wal::Wal;

#[cfg(doc)]
use crate::retention::Retention;

impl Wal {
    /// Applies the log's retention policy now: removes the oldest sealed
    /// segments past its limits (never the active one, never past the slowest
    /// cursor under [`CursorRule::Respect`](crate::CursorRule::Respect)), and
    /// reports what went and why. The log also applies it by itself after every
    /// rotation ([`Options::retention`](crate::Options::retention)). Without a
    /// policy it removes nothing.
    ///
    /// Crash-safe as [`Wal::truncate_front`], which does the removal: a crash
    /// during the call reopens to the log before or after it. Sealing times of
    /// new segments are stored (`flashlog.sealed`) before anything is removed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use flashlog_wal::{CursorRule, Op, Options, Retention, RetentionReason, Wal};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let retention = Retention::default()
    ///     .max_age(Duration::from_millis(50))
    ///     .cursors(CursorRule::Ignore);
    /// let wal = Wal::open(dir.path(), Options::default().max_segment_size(100).retention(retention))?;
    /// for n in 0..20u8 {
    ///     wal.append(Op::Put, b"k", &[n])?; // 19 bytes: 5 to a segment
    /// }
    /// std::thread::sleep(Duration::from_millis(60));
    /// let report = wal.apply_retention()?;
    /// assert!(report.removed.iter().all(|segment| segment.reason == RetentionReason::Age));
    /// assert_eq!((report.first_seq, wal.first_seq()), (16, 16));
    /// // Every sealed segment went, not the active one (on a slow disk, some of
    /// // them already after a rotation: the totals count both).
    /// assert_eq!(wal.segments().len(), 1);
    /// assert_eq!(wal.retention_totals().segments_removed, 3);
    /// assert_eq!(wal.retention_totals().entries_removed, 15);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ReadOnly`]; [`Error::Closed`], [`Error::Poisoned`];
    /// [`Error::CorruptCursors`] under `CursorRule::Respect` when the cursor
    /// file is damaged (nothing is removed); [`Error::Io`] from the removal (the
    /// log is then poisoned, as by `truncate_front`). A sealing-time file that
    /// cannot be stored is no error: see
    /// [`RetentionReport::sealing_times_error`].
    pub fn apply_retention(&self) -> Result<RetentionReport> {
        if self.shared.options.read_only {
            return Err(Error::ReadOnly);
        }
        let outcome = self.run_retention();
        trace(&outcome, false);
        let mut inner = self.shared.retention.lock();
        inner.totals.add(outcome.as_ref().map_err(|_| ()));
        self.report_totals(&inner.totals);
        outcome
    }

    /// Running totals of retention since the log was opened: the counters to
    /// export as metrics (`flashlog_retention_*_total`).
    pub fn retention_totals(&self) -> RetentionTotals {
        self.shared.retention.lock().totals
    }

    /// The outcome of the last automatic application of retention (after a
    /// rotation); `None` before the first one, or without a policy. An
    /// automatic application has no caller to return its error to: it is kept
    /// here (and counted in [`RetentionTotals::failures`]).
    pub fn last_retention(&self) -> Option<Result<RetentionReport, Arc<Error>>> {
        self.shared.retention.lock().last.clone()
    }

    /// Applies retention if a rotation made it due: called by appenders after
    /// their group commit, outside every lock.
    pub(super) fn retain_if_due(&self) {
        if self.shared.options.retention.is_none() || !self.shared.retention.take_due() {
            return;
        }
        let outcome = self.run_retention();
        trace(&outcome, true);
        let outcome = outcome.map_err(Arc::new);
        let mut inner = self.shared.retention.lock();
        inner.totals.add(outcome.as_ref().map_err(|_| ()));
        self.report_totals(&inner.totals);
        inner.last = Some(outcome);
    }

    /// Hands the running totals to the `metrics` facade (a no-op without the
    /// feature).
    fn report_totals(&self, totals: &RetentionTotals) {
        self.shared.metrics.retention(
            totals.runs,
            totals.segments_removed,
            totals.bytes_removed,
            totals.held_back,
        );
    }

    fn run_retention(&self) -> Result<RetentionReport> {
        let Some(policy) = self.shared.options.retention else {
            return Ok(RetentionReport {
                first_seq: self.first_seq(),
                ..RetentionReport::default()
            });
        };
        let shared = &self.shared;
        let mut inner = shared.retention.lock();
        let (mut segments, truncations, cut_floor) = {
            let state = shared.lock();
            state.refuse_writes()?;
            let segments: Vec<Candidate> = state
                .index
                .segments
                .iter()
                .map(|segment| Candidate {
                    id: segment.id,
                    first_seq: segment.first_seq,
                    next_seq: segment.next_seq(),
                    bytes: segment.end,
                    sealed_at: None,
                })
                .collect();
            // Under the state lock, as `truncate_back` records its cuts.
            let floor = shared.retention.take_cut_floor();
            (segments, state.meta.truncations, floor)
        };
        let now = now_ms();
        inner.update(&mut segments, truncations, cut_floor, now);
        let mut report = RetentionReport::default();
        if inner.dirty {
            match sealed::store(&shared.dir, &inner.times) {
                Ok(()) => inner.dirty = false,
                Err(err) => report.sealing_times_error = Some(Arc::new(err)),
            }
        }

        // Reads and truncations wait; set_cursor too, so the slowest cursor
        // holds until the removal is over.
        let _layout = shared.change_layout();
        let cursors = match policy.cursors {
            retention::CursorRule::Respect => self.cursors.all()?,
            retention::CursorRule::Ignore => Default::default(),
        };
        let slowest = cursors
            .iter()
            .min_by_key(|(_, seq)| **seq)
            .map(|(name, seq)| (name.as_str(), *seq));
        let plan = retention::plan(&policy, &segments, slowest, now);
        report.held_back = plan.held_back.clone();
        report.first_seq = match plan.truncate_at() {
            Some(seq) => self.truncate_front_pinned(seq)?,
            None => self.first_seq(),
        };
        // What went: `truncate_front` may also take an empty segment right
        // after the planned ones.
        report.removed = plan.removed;
        report.entries_removed = report.removed.iter().map(|s| s.entries).sum();
        report.bytes_removed = report.removed.iter().map(|s| s.bytes).sum();
        drop(inner);
        Ok(report)
    }
}

/// The `tracing` events of one application: what it removed (info), what a
/// cursor held back (debug), and a failure (warn: an automatic one has no
/// caller to return it to).
fn trace(outcome: &Result<RetentionReport>, automatic: bool) {
    match outcome {
        Ok(report) => {
            if !report.removed.is_empty() {
                let (for_bytes, for_age) = report.by_reason();
                tracing::info!(
                    removed_segments = report.removed.len(),
                    for_bytes,
                    for_age,
                    entries_removed = report.entries_removed,
                    bytes_removed = report.bytes_removed,
                    first_seq = report.first_seq,
                    automatic,
                    "flashlog: retention"
                );
            }
            if let Some(held) = &report.held_back {
                tracing::debug!(
                    cursor = %held.cursor,
                    seq = held.seq,
                    segments = held.segments,
                    bytes = held.bytes,
                    "flashlog: retention held back by a cursor"
                );
            }
            if let Some(err) = &report.sealing_times_error {
                tracing::warn!(error = %err, "flashlog: sealing times not stored");
            }
        }
        Err(err) => tracing::warn!(error = %err, automatic, "flashlog: retention failed"),
    }
}
