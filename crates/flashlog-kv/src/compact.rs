//! Compaction by head copy: the latest put of every live key found in the sealed
//! segments is appended again, then those segments are removed.
//!
//! Crash safety: copies are appended *after* their originals and carry the same
//! values, so a log cut anywhere during the copy replays to the same contents; the
//! originals are removed only after the copies are durable, by
//! `Wal::truncate_front`, which is itself crash-safe. Deletes in the sealed segments
//! are dropped, not copied: every older put of their keys lies in those segments
//! too and goes with them.

use std::ops::ControlFlow;
use std::sync::MutexGuard;

use flashlog_wal::codec::encoded_len;
use flashlog_wal::Visibility;

use crate::locks::{lock, read, write};
use crate::{Db, Result};

mod copies;
mod report;

use copies::{Copies, Visit};
pub use report::{CompactionProgress, CompactionReport};
pub(crate) use report::{CompactionStatus, Trigger};

/// Copies are appended in batches of about this many bytes (one write and one
/// sync each; writers wait for the store's gate only during one batch).
const BATCH_BYTES: u64 = 4 << 20;

impl Db {
    /// Compacts the log: copies the latest put of every live key held in the sealed
    /// segments (all but the active one) to the head of the log, then removes those
    /// segments. Disk use then tracks live data (plus the active segment).
    ///
    /// Writers keep going meanwhile, pausing only while the compaction lists the
    /// live entries and while a batch of copies is appended. A crash at any moment
    /// loses nothing and duplicates nothing: the store reopens with the same
    /// contents. Only one compaction runs at a time; a second call waits for the
    /// first.
    ///
    /// Concurrent use (see [`Db`]'s *Concurrency*):
    /// - every put and delete that returned before, during or after the compaction
    ///   keeps its effect, including one whose entry was in the log but not yet in
    ///   the index when the compaction started;
    /// - `get` and `scan` racing it return the key's value (following the key to
    ///   its copy if the original's segment was removed under them), never an error
    ///   for a healthy store;
    /// - a copy is appended only if its key still holds that value at the moment
    ///   of the append, so a copy never brings back an overwritten or deleted
    ///   value.
    ///
    /// ```
    /// use flashlog_kv::{AutoCompact, Db, DbOptions};
    /// use flashlog_wal::Options;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let options = DbOptions::default()
    ///     .wal(Options::default().max_segment_size(4096))
    ///     .auto_compact(AutoCompact::Never);
    /// let db = Db::open(dir.path(), options.clone())?;
    /// for round in 0..20u32 {
    ///     for key in 0..10u32 {
    ///         db.put(format!("key{key}").as_bytes(), &round.to_le_bytes().repeat(8))?;
    ///     }
    /// }
    /// let before = db.stats();
    /// let report = db.compact()?;
    /// assert!(report.bytes_after < before.log_bytes);
    /// assert_eq!(db.len(), 10);
    /// assert_eq!(db.get(b"key3")?, Some(19u32.to_le_bytes().repeat(8)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// Entries are carried whatever the log's current `max_segment_size`: one
    /// written under a larger limit is copied into a segment of its own
    /// (`flashlog_wal::Wal::append_carried`).
    ///
    /// # Errors
    /// The log's error; the contents are unchanged then, and the log may be
    /// poisoned (see `flashlog_wal::Error::Poisoned`). The outcome is also counted
    /// in [`Db::stats`](crate::Db::stats).
    pub fn compact(&self) -> Result<CompactionReport> {
        self.compact_with_progress(|_| {})
    }

    /// [`Db::compact`], calling `progress` after every batch of copies.
    ///
    /// # Errors
    /// As [`Db::compact`].
    pub fn compact_with_progress(
        &self,
        mut progress: impl FnMut(&CompactionProgress),
    ) -> Result<CompactionReport> {
        self.compact_until(|state| {
            progress(state);
            ControlFlow::Continue(())
        })
    }

    /// [`Db::compact_with_progress`] that the callback can stop: when it returns
    /// `ControlFlow::Break(())` after a batch of copies, the compaction stops
    /// there, cleanly (this is how `flashlog compact` handles Ctrl-C). The copies
    /// appended so far are synced and the index points at them; nothing is
    /// removed, so the store holds the same contents and the log is valid, and
    /// the report says [`stopped`](CompactionReport::stopped). The space those
    /// copies take (their originals are now dead) comes back at the next
    /// compaction. A `Break` from the last call, made once every copy is
    /// appended, is too late to stop anything and is ignored. The callback runs
    /// while this compaction holds the store's one-compaction-at-a-time lock: it
    /// must not start another compaction (that would wait for itself).
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// use flashlog_kv::{AutoCompact, Db, DbOptions};
    /// use flashlog_wal::Options;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let options = DbOptions::default()
    ///     .wal(Options::default().max_segment_size(1 << 20))
    ///     .auto_compact(AutoCompact::Never);
    /// let db = Db::open(dir.path(), options)?;
    /// for round in 0..3u8 {
    ///     for key in 0..600u32 {
    ///         db.put(&key.to_le_bytes(), &[round; 8 << 10])?; // 4.7 MiB a round
    ///     }
    /// }
    /// let report = db.compact_until(|_| ControlFlow::Break(()))?;
    /// assert!(report.stopped && report.entries_copied > 0);
    /// assert_eq!(db.get(&7u32.to_le_bytes())?, Some(vec![2; 8 << 10]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Db::compact`].
    pub fn compact_until(
        &self,
        mut progress: impl FnMut(&CompactionProgress) -> ControlFlow<()>,
    ) -> Result<CompactionReport> {
        let running = lock(&self.compacting);
        self.run_compaction(&running, &mut progress, Trigger::Called)
    }

    /// Runs a compaction (the caller holds `compacting`) and records how it went
    /// for [`Db::stats`]. An automatic one's outcome is also traced: a failure as
    /// a warning, since no caller sees its error.
    pub(crate) fn run_compaction(
        &self,
        running: &MutexGuard<'_, ()>,
        progress: &mut dyn FnMut(&CompactionProgress) -> ControlFlow<()>,
        trigger: Trigger,
    ) -> Result<CompactionReport> {
        let started = std::time::Instant::now();
        let result = self.compact_locked(running, progress);
        let took = started.elapsed();
        let mut status = lock(&self.compaction_status);
        status.runs += 1;
        status.time += took;
        match &result {
            Ok(report) => {
                status.last_error = None;
                if trigger == Trigger::Automatic {
                    tracing::debug!(
                        dir = %self.dir().display(),
                        bytes_before = report.bytes_before,
                        bytes_after = report.bytes_after,
                        "automatic compaction done"
                    );
                }
            }
            Err(err) => {
                let error = crate::error::describe(err);
                status.failures += 1;
                if trigger == Trigger::Automatic {
                    tracing::warn!(
                        dir = %self.dir().display(),
                        %error,
                        "automatic compaction failed; the write that ran it succeeded"
                    );
                }
                status.last_error = Some(error);
            }
        }
        result
    }

    fn compact_locked(
        &self,
        _running: &MutexGuard<'_, ()>,
        progress: &mut dyn FnMut(&CompactionProgress) -> ControlFlow<()>,
    ) -> Result<CompactionReport> {
        self.appended.store(0, std::sync::atomic::Ordering::Relaxed);
        // For the report only.
        let bytes_before = self.wal.segments().iter().map(|s| s.bytes).sum();
        // Seal the active segment so that its dead entries can go too.
        self.wal.rotate()?;
        // The cut and the live entries before it are taken together under the gate,
        // held exclusively: no writer is then between its append and its index
        // update, so the index shows every entry before `cut` (an entry whose update
        // came after the list was taken would be neither copied nor kept), and every
        // entry appended once the gate is released gets a sequence number from `cut`
        // on. Without the gate, a put that landed before the cut and updated the
        // index after `live_before` was lost (issue 11, item 1).
        let (segments, live) = {
            let _gate = write(&self.gate);
            let segments = self.wal.segments();
            let cut = segments.last().map_or(0, |active| active.first_seq);
            (segments, read(&self.index).live_before(cut))
        };
        let mut report = CompactionReport {
            bytes_before,
            bytes_after: bytes_before,
            ..CompactionReport::default()
        };
        let Some((active, sealed)) = segments.split_last() else {
            return Ok(report);
        };
        if sealed.is_empty() {
            return Ok(report);
        }
        // Every entry before `cut` lies in a sealed segment.
        let cut = active.first_seq;
        let mut state = CompactionProgress {
            bytes_read: 0,
            bytes_total: sealed.iter().map(|s| s.bytes).sum(),
            entries_copied: 0,
        };
        // The live entries are found by walking the log and this sorted list side
        // by side: no index lookup per (mostly dead) entry. The list is used after
        // the gate was released: a key overwritten or deleted since is caught by the
        // re-check in `append_copies`, and no key can become live before `cut`
        // meanwhile (new entries come after it).
        let mut next_live = live.iter().copied().peekable();
        let mut copies = Copies::default();
        // Entries are visited borrowed from the reader's buffer: only live ones are
        // copied (into the next batch), dead ones cost a CRC check and nothing else.
        let visited = self
            .wal
            .iter_from(self.wal.first_seq())?
            // Every entry the index knows, synced or not: under `Manual` the
            // durable edge may lag what the store appended and indexed.
            .visibility(Visibility::Written)
            .try_for_each_ref(|entry| {
                let Some(&wanted) = next_live.peek() else {
                    return Err(Visit::Done);
                };
                state.bytes_read += encoded_len(entry.key.len(), entry.value.len());
                if entry.seq < wanted {
                    return Ok(());
                }
                next_live.next();
                copies.batch.put(entry.key, entry.value);
                copies.origins.push(entry.seq);
                copies.bytes += encoded_len(entry.key.len(), entry.value.len());
                if copies.bytes >= BATCH_BYTES {
                    self.append_copies(&mut copies, &mut report)?;
                    state.entries_copied = report.entries_copied;
                    if progress(&state).is_break() {
                        return Err(Visit::Stopped);
                    }
                }
                Ok(())
            });
        match visited {
            Ok(()) | Err(Visit::Done) => {}
            Err(Visit::Stopped) => {
                // The copies appended so far stay (the index points at them) and
                // so do their originals: the same contents, nothing removed.
                self.wal.sync()?;
                let _gate = write(&self.gate);
                report.bytes_after = self.wal.segments().iter().map(|s| s.bytes).sum();
                report.bytes_read = state.bytes_read;
                report.stopped = true;
                write(&self.index).set_log_bytes(report.bytes_after);
                return Ok(report);
            }
            Err(Visit::Failed(err)) => return Err(err),
        }
        self.append_copies(&mut copies, &mut report)?;
        state.entries_copied = report.entries_copied;
        state.bytes_read = state.bytes_total;
        // Every copy is appended: too late to stop, so a `Break` is ignored.
        let _ = progress(&state);
        report.bytes_read = state.bytes_total;
        // The copies must be durable before the originals go (a no-op under
        // `SyncPolicy::Always`, where each batch was synced).
        self.wal.sync()?;
        // Without the gate: every entry before `cut` is now dead or has a copy the
        // index points at (the live list was complete, see above, and each copy
        // was repointed before this), so removing them changes no key's value; a
        // reader still holding an old slot gets `SeqOutOfRange` and looks again.
        self.wal.truncate_front(cut)?;
        // The recount under the gate (exclusive): no writer is between its append
        // and its index update, so the segments' bytes are exactly the entries the
        // index has counted.
        let _gate = write(&self.gate);
        let after = self.wal.segments();
        report.bytes_after = after.iter().map(|s| s.bytes).sum();
        report.segments_removed = sealed.len() as u64;
        write(&self.index).set_log_bytes(report.bytes_after);
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::time::Duration;

    use flashlog_wal::Options;

    use crate::hooks::{self, Gap};
    use crate::{AutoCompact, Db, DbOptions};

    /// How long a paused thread stays in its gap: long enough that the other thread
    /// gets through what it does there, unless it waits for the paused one.
    const PAUSE: Duration = Duration::from_millis(300);

    fn open(dir: &std::path::Path) -> Arc<Db> {
        let options = DbOptions::default()
            .wal(Options::default().max_segment_size(4096))
            .auto_compact(AutoCompact::Never);
        Arc::new(Db::open(dir, options).unwrap())
    }

    /// Runs `op` on a new thread that pauses once, for [`PAUSE`], the first time it
    /// passes `gap`; returns once it is paused there, with the thread's handle.
    fn paused_in<T: Send + 'static>(
        gap: Gap,
        op: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let (entered, in_gap) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut first = true;
            hooks::set(move |at| {
                if at == gap && first {
                    first = false;
                    entered.send(()).unwrap();
                    std::thread::sleep(PAUSE);
                }
            });
            op()
        });
        in_gap.recv_timeout(Duration::from_secs(10)).unwrap();
        thread
    }

    /// Issue 11, item 1: a put whose entry lands before the compaction's cut and
    /// whose index update comes after the compaction listed the live entries was
    /// neither copied nor kept: `truncate_front` removed it.
    #[test]
    fn regression_put_between_append_and_index_update_survives_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        for key in 0..10u32 {
            db.put(format!("old{key}").as_bytes(), b"value").unwrap();
        }
        let writer = {
            let db = Arc::clone(&db);
            paused_in(Gap::AfterAppend, move || db.put(b"racer", b"acknowledged"))
        };
        db.compact().unwrap();
        writer.join().unwrap().unwrap();
        assert_eq!(
            db.get(b"racer").unwrap().as_deref(),
            Some(&b"acknowledged"[..])
        );
        db.compact().unwrap();
        assert_eq!(
            db.get(b"racer").unwrap().as_deref(),
            Some(&b"acknowledged"[..])
        );
        db.close().unwrap();
        drop(db);
        let db = open(dir.path());
        assert_eq!(
            db.get(b"racer").unwrap().as_deref(),
            Some(&b"acknowledged"[..])
        );
        assert_eq!(db.len(), 11);
    }

    /// The same gap for a delete: the key must stay deleted, the others intact.
    #[test]
    fn delete_between_append_and_index_update_stays_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        for key in 0..10u32 {
            db.put(format!("old{key}").as_bytes(), b"value").unwrap();
        }
        let deleter = {
            let db = Arc::clone(&db);
            paused_in(Gap::AfterAppend, move || db.delete(b"old3"))
        };
        db.compact().unwrap();
        assert!(deleter.join().unwrap().unwrap());
        assert_eq!(db.get(b"old3").unwrap(), None);
        assert_eq!(db.get(b"old4").unwrap().as_deref(), Some(&b"value"[..]));
        db.close().unwrap();
        drop(db);
        let db = open(dir.path());
        assert_eq!((db.get(b"old3").unwrap(), db.len()), (None, 9));
    }

    /// Issue 11, item 6 (the store's half): a read that looked the key up before a
    /// compaction copied it and removed the original follows it to the copy.
    #[test]
    fn get_and_scan_follow_a_key_compaction_moved_under_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        for key in 0..10u32 {
            db.put(
                format!("key{key}").as_bytes(),
                format!("value{key}").as_bytes(),
            )
            .unwrap();
        }
        let first = db.wal.first_seq();
        let reader = {
            let db = Arc::clone(&db);
            paused_in(Gap::BeforeRead, move || db.get(b"key3"))
        };
        let scanner = {
            let db = Arc::clone(&db);
            paused_in(Gap::BeforeRead, move || {
                db.scan(..).collect::<crate::Result<Vec<_>>>()
            })
        };
        db.compact().unwrap();
        assert!(db.wal.first_seq() > first, "the originals were removed");
        assert_eq!(
            reader.join().unwrap().unwrap().as_deref(),
            Some(&b"value3"[..])
        );
        let pairs = scanner.join().unwrap().unwrap();
        assert_eq!(pairs.len(), 10);
        for (key, value) in pairs {
            assert_eq!(key[3..], value[5..]);
        }
    }
}
