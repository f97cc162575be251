//! Compaction by head copy: the latest put of every live key found in the sealed
//! segments is appended again, then those segments are removed.
//!
//! Crash safety: copies are appended *after* their originals and carry the same
//! values, so a log cut anywhere during the copy replays to the same contents; the
//! originals are removed only after the copies are durable, by
//! `Wal::truncate_front`, which is itself crash-safe. Deletes in the sealed segments
//! are dropped, not copied: every older put of their keys lies in those segments
//! too and goes with them.

use std::sync::MutexGuard;

use flashlog_wal::{Batch, Entry};

use crate::index::Slot;
use crate::locks::{lock, read, write};
use crate::{Db, Result};

/// Copies are appended in batches of about this many bytes (one write and one
/// sync each; writers wait for the store's gate only during one batch).
const BATCH_BYTES: u64 = 4 << 20;

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
}

impl Db {
    /// Compacts the log: copies the latest put of every live key held in the sealed
    /// segments (all but the active one) to the head of the log, then removes those
    /// segments. Disk use then tracks live data (plus the active segment).
    ///
    /// Writers keep going meanwhile, pausing only while a batch of copies is
    /// appended. A crash at any moment loses nothing and duplicates nothing: the
    /// store reopens with the same contents. Only one compaction runs at a time; a
    /// second call waits for the first.
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
    /// # Errors
    /// The log's error; the contents are unchanged then, and the log may be
    /// poisoned (see `flashlog_wal::Error::Poisoned`).
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
        let running = lock(&self.compacting);
        self.compact_locked(&running, &mut progress)
    }

    pub(crate) fn compact_locked(
        &self,
        _running: &MutexGuard<'_, ()>,
        progress: &mut dyn FnMut(&CompactionProgress),
    ) -> Result<CompactionReport> {
        self.appended.store(0, std::sync::atomic::Ordering::Relaxed);
        let bytes_before = self.wal.segments().iter().map(|s| s.bytes).sum();
        // Seal the active segment so that its dead entries can go too.
        self.wal.rotate()?;
        let segments = self.wal.segments();
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
        // by side: no index lookup per (mostly dead) entry. A key overwritten after
        // the list was taken is caught by the re-check in `append_copies`.
        let live = read(&self.index).live_before(cut);
        let mut next_live = live.iter().copied().peekable();
        let mut pending: Vec<Entry> = Vec::new();
        let mut pending_bytes = 0;
        for entry in self.wal.iter_from(self.wal.first_seq())? {
            let Some(&wanted) = next_live.peek() else {
                break;
            };
            let entry = entry?;
            state.bytes_read += entry.encoded_len();
            if entry.seq() < wanted {
                continue;
            }
            next_live.next();
            pending_bytes += entry.encoded_len();
            pending.push(entry);
            if pending_bytes >= BATCH_BYTES {
                self.append_copies(&mut pending, &mut report)?;
                pending_bytes = 0;
                state.entries_copied = report.entries_copied;
                progress(&state);
            }
        }
        self.append_copies(&mut pending, &mut report)?;
        state.entries_copied = report.entries_copied;
        state.bytes_read = state.bytes_total;
        progress(&state);
        report.bytes_read = state.bytes_total;
        // The copies must be durable before the originals go (a no-op under
        // `SyncPolicy::Always`, where each batch was synced).
        self.wal.sync()?;
        self.wal.truncate_front(cut)?;
        let _gate = write(&self.gate);
        let after = self.wal.segments();
        report.bytes_after = after.iter().map(|s| s.bytes).sum();
        report.segments_removed = sealed.len() as u64;
        write(&self.index).set_log_bytes(report.bytes_after);
        Ok(report)
    }

    fn is_latest(&self, entry: &Entry) -> bool {
        read(&self.index)
            .get(entry.key())
            .is_some_and(|slot| slot.seq() == entry.seq())
    }

    /// Appends copies of the entries that are still their key's latest put, and
    /// points the index at them. Writers are held off meanwhile so none of them
    /// can overwrite a key between the check and the copy.
    fn append_copies(&self, pending: &mut Vec<Entry>, report: &mut CompactionReport) -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let _gate = write(&self.gate);
        pending.retain(|entry| self.is_latest(entry));
        let mut batch = Batch::new();
        for entry in pending.iter() {
            batch.put(entry.key(), entry.value());
        }
        let seqs = self.wal.append_batch(&batch)?;
        let mut index = write(&self.index);
        for (entry, seq) in pending.iter().zip(seqs) {
            index.repoint(
                entry.key(),
                entry.seq(),
                Slot::new(seq, entry.value().len()),
            );
            report.entries_copied += 1;
            report.bytes_copied += entry.encoded_len();
        }
        pending.clear();
        Ok(())
    }
}
