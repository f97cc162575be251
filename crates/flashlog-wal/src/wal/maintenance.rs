//! [`Wal`]'s methods that change which segments the log has: truncation at
//! both ends, and rotation.

use crate::error::{Error, Result};
use crate::index::SegmentIndex;
use crate::receipt::{self, Failure};
use crate::segment_writer::{Preallocation, SegmentWriter};
use crate::state::State;
use crate::sync::atomic::Ordering;
use crate::sync::MutexGuard;
use crate::truncate;
use crate::wal::{out_of_range, Wal};
use crate::writer::{store_checkpoint, Goal};

impl Wal {
    /// Removes the oldest segments whose entries all come before `seq`, for a
    /// caller that no longer needs the entries before `seq` (a snapshot or a
    /// compaction holds what they said). Entries from `seq` on
    /// always stay, and so may some before it that share a segment with them; the
    /// active segment is never removed. Returns the new [`Wal::first_seq`].
    ///
    /// Crash-safe: a crash during the call reopens to the log before or after it.
    ///
    /// # Errors
    /// [`Error::Io`] (the log is then poisoned), [`Error::Poisoned`], [`Error::Closed`].
    pub fn truncate_front(&self, seq: u64) -> Result<u64> {
        // Readers of the segments about to go finish first; later ones find them gone.
        let _layout = self.shared.change_layout();
        self.truncate_front_pinned(seq)
    }

    /// [`Wal::truncate_front`] for a caller that holds the layout pin
    /// exclusively (retention, which reads the cursors under it).
    pub(super) fn truncate_front_pinned(&self, seq: u64) -> Result<u64> {
        let mut state = self.quiesce()?;
        let before = state.index.first_seq();
        let State { index, meta, .. } = &mut *state;
        let result = truncate::front(&self.shared.dir, index, meta, seq);
        let first = state.index.first_seq();
        self.shared.first_seq.store(first, Ordering::Release);
        let removed = result.as_ref().map_or(0, Vec::len);
        self.finish_truncation(state, result)?;
        if removed > 0 {
            let metrics = &self.shared.metrics;
            metrics.count(&metrics.truncations);
            tracing::info!(
                seq,
                removed_segments = removed,
                first_seq = first,
                entries_removed = first - before,
                "flashlog: truncate_front"
            );
        }
        Ok(first)
    }

    /// Removes the entry `seq` and every later one; the next append gets `seq`.
    /// What a Raft follower does when a leader overwrites its tail. A `seq` after the
    /// last entry changes nothing.
    ///
    /// Crash-safe: the intent is recorded in the side file first, so a crash during
    /// the call reopens to the log before or after it.
    ///
    /// It waits for reads under way ([`Wal::read`], an iterator's read ahead) to
    /// finish. An iterator that already yielded entries from `seq` on returns
    /// [`Error::Truncated`] at its next call, once; one that had only read them
    /// ahead reads the new entries instead.
    ///
    /// # Errors
    /// [`Error::SeqOutOfRange`] if `seq` is before the first entry; [`Error::Io`]
    /// (the log is then poisoned), [`Error::Poisoned`], [`Error::Closed`].
    pub fn truncate_back(&self, seq: u64) -> Result<()> {
        // Reads under way finish before the files change; later ones see the new index.
        let _layout = self.shared.change_layout();
        // Before any file changes: no cursor stays past the new end (wal/ops.rs).
        self.lower_cursors_for_cut(seq)?;
        let mut state = self.quiesce()?;
        if seq < state.index.first_seq() {
            return Err(out_of_range(&state, seq));
        }
        if seq >= state.index.next_seq() {
            // Nothing to remove: keep the writer, and with it what it has not synced.
            return Ok(());
        }
        // Sealing times of the segments it cuts stop holding (wal/retention.rs).
        self.shared.retention.cut(seq);
        // Iterators that yielded entries from `seq` on learn it at their next
        // call; followers blocked at the end of the log wake to learn it now.
        state.notify_cut(seq);
        self.shared.appended.notify_all();
        let State { index, meta, .. } = &mut *state;
        let result = truncate::back(&self.shared.dir, index, meta, seq).and_then(|removed| {
            let active = index.active();
            let preallocation = Preallocation::of(&self.shared.options);
            let writer =
                SegmentWriter::open(&self.shared.dir, active.id, active.end, preallocation)?;
            Ok((removed, writer))
        });
        let mut cut = Vec::new();
        let result = result.map(|(removed, writer)| {
            let last = state.index.next_seq() - 1;
            state.writer = Some(writer);
            state.written_seq = state.written_seq.min(last);
            state.synced_seq = state.synced_seq.min(last);
            self.shared
                .written_edge
                .store(state.written_seq, Ordering::SeqCst);
            // Receipts of removed entries never resolve as durable: the numbers
            // go to new entries, whose syncs must not resolve them.
            cut = state.take_cut_receipts(seq);
            removed
        });
        self.finish_truncation(state, result)?;
        let metrics = &self.shared.metrics;
        metrics.count(&metrics.truncations);
        tracing::info!(
            first_cut = seq,
            refused_receipts = cut.len(),
            "flashlog: truncate_back"
        );
        receipt::resolve_all(cut, &Err(Failure::Truncated { first_cut: seq }));
        Ok(())
    }

    /// Seals the active segment and starts a new one, so that every entry appended
    /// so far lies in a sealed segment (what `truncate_front` can remove, e.g. after
    /// a compaction copied the live data). Does nothing if the active segment is
    /// empty. Returns the id of the active segment afterwards. With
    /// [`Options::retention`](crate::Options::retention), retention is then
    /// applied as after any rotation (its outcome in [`Wal::last_retention`]).
    ///
    /// # Errors
    /// [`Error::Io`] (the log is then poisoned), [`Error::Poisoned`],
    /// [`Error::Closed`], [`Error::ReadOnly`].
    pub fn rotate(&self) -> Result<crate::SegmentId> {
        let mut state = self.quiesce()?;
        let active = state.index.active();
        if active.len() == 0 {
            return Ok(active.id);
        }
        let next = SegmentIndex::new(active.id.next(), active.next_seq());
        let id = next.id;
        let mut writer = state.writer.take().ok_or(Error::Closed)?;
        let result = writer.start_segment(&self.shared.dir, id, &mut state.meta);
        state.writer = Some(writer);
        match result {
            Ok(()) => {
                state.index.segments.push_back(next);
                store_checkpoint(&self.shared.dir, &state.index.sealed(id));
                let metrics = &self.shared.metrics;
                metrics.count(&metrics.rotations);
                tracing::debug!(segment = %id.file_name(), "flashlog: new segment (rotate)");
                // Retention after a rotation, as an appender's (wal/retention.rs).
                self.shared.retention.sealed();
                drop(state);
                self.retain_if_due();
                Ok(id)
            }
            Err(err) => Err(self.poison(state, err)),
        }
    }

    /// Waits until no I/O is under way and every queued entry is written, and
    /// returns the lock: the files then match the index.
    fn quiesce(&self) -> Result<MutexGuard<'_, State>> {
        let shared = &self.shared;
        let mut state = shared.lock();
        loop {
            state.refuse_writes()?;
            if state.io_busy {
                state = shared.wait_progress(state);
            } else if !state.queue.is_empty() {
                let through = state.index.next_seq() - 1;
                shared.commit(state, through, Goal::Written)?;
                state = shared.lock();
            } else {
                return Ok(state);
            }
        }
    }

    fn finish_truncation(
        &self,
        state: MutexGuard<'_, State>,
        result: Result<Vec<crate::SegmentId>>,
    ) -> Result<()> {
        match result {
            Ok(removed) => {
                // Before anyone can append into a new segment with a removed one's id.
                self.shared.forget_files(&removed);
                drop(state);
                Ok(())
            }
            Err(err) => Err(self.poison(state, err)),
        }
    }

    /// Stops the log accepting writes after `err`, wakes every waiter, and returns
    /// the error.
    fn poison(&self, mut state: MutexGuard<'_, State>, err: Error) -> Error {
        state.poison(err.poison_cause(), &self.shared.metrics);
        self.shared.wake_everyone(state);
        err
    }
}
