//! [`Wal`], the public handle of an open log.

use std::collections::HashMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::batch::Batch;
use crate::dir::LOCK_FILE;
use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::fs::Dir;
use crate::index::{Located, SegmentIndex};
use crate::op::Op;
use crate::options::{Options, SyncPolicy};
use crate::position::Position;
use crate::reader::{decode_at, Iter};
use crate::recovery;
use crate::report::{Access, RecoveryReport};
use crate::segment_writer::{Pending, Preallocation, SegmentWriter};
use crate::state::{Shared, State};
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::thread::{self, JoinHandle};
use crate::sync::{Condvar, Mutex, MutexGuard, RwLock};
use crate::truncate;
use crate::waiters::Waiters;
use crate::writer::{store_checkpoint, Goal};

/// An open write-ahead log.
///
/// `Wal` is `Send + Sync` and every method takes `&self`: share one between threads
/// with an `Arc`. Concurrent appenders share fsyncs (group commit).
///
/// ```
/// use flashlog_wal::{Op, Options, Wal};
///
/// let dir = tempfile::tempdir()?;
/// let wal = Wal::open(dir.path(), Options::default())?;
/// assert_eq!(wal.append(Op::Put, b"key", b"value")?, 1);
/// assert_eq!(wal.append(Op::Delete, b"key", b"")?, 2);
/// wal.close()?;
///
/// let wal = Wal::open(dir.path(), Options::default())?;
/// let ops: Vec<Op> = wal.iter_from(1)?.map(|e| e.map(|e| e.op())).collect::<Result<_, _>>()?;
/// assert_eq!(ops, [Op::Put, Op::Delete]);
/// assert_eq!(wal.append(Op::Put, b"next", b"")?, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Wal {
    shared: Arc<Shared>,
    flusher: Mutex<Option<JoinHandle<()>>>,
    /// The directory lock, held from a read-write open until close.
    lock: Mutex<Option<Box<dyn fmt::Debug + Send + Sync>>>,
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.shared.dir.path())
            .field("first_seq", &self.first_seq())
            .field("last_seq", &self.last_seq())
            .finish_non_exhaustive()
    }
}

impl Wal {
    /// Opens the log in `dir`, creating the directory and a first segment if there
    /// is no log yet, and recovering it per the options' [`RecoveryMode`]
    /// otherwise. What recovery found is in [`Wal::recovery_report`].
    ///
    /// A read-only open ([`Options::read_only`]) may open a log that another
    /// process is writing: it sees a consistent state of the log, retrying (a
    /// bounded number of times) a recovery that a rotation or truncation
    /// overlapped, and never reports a segment missing that the writer had just
    /// added or removed.
    ///
    /// # Errors
    /// [`Error::InvalidOptions`] for unusable options; [`Error::Locked`] if another
    /// `Wal` has the directory open; [`Error::Corrupt`] for damage the recovery mode
    /// does not accept; [`Error::MissingSegment`] for a gap in the segment ids;
    /// [`Error::CorruptMeta`] when no intact copy of the side file is left (one
    /// intact copy is enough: see [`RecoveryReport::side_files`]);
    /// [`Error::SegmentIdOutOfRange`] for a segment file named with an id no log
    /// reaches; [`Error::UnexpectedDirectory`] for a directory where a read-write
    /// open removes a leftover temporary file; [`Error::Io`] when the directory
    /// cannot be created or read.
    ///
    /// [`RecoveryMode`]: crate::RecoveryMode
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Wal> {
        options.validate()?;
        let dir = Dir::new(Arc::clone(&options.fs), dir.as_ref().to_path_buf());
        let (lock, recovered, writer) = if options.read_only {
            dir.list()?;
            let recovered = recovery::recover(&dir, options.recovery_mode, Access::ReadOnly)?;
            (None, recovered, None)
        } else {
            dir.create()?;
            let lock = dir.lock(LOCK_FILE)?;
            let recovered = recovery::recover(&dir, options.recovery_mode, Access::ReadWrite)?;
            let active = recovered.index.active();
            let mut writer =
                SegmentWriter::open(&dir, active.id, active.end, Preallocation::of(&options))?;
            // Recovered entries become visible (and count as durable) now: after a
            // killed process they may be only in the page cache, so sync them first.
            writer.sync()?;
            (Some(lock), recovered, Some(writer))
        };
        let read_only = options.read_only;
        let view_truncations = recovered.meta.truncations;
        let first_seq = recovered.index.first_seq();
        let last = recovered.index.next_seq() - 1;
        let interval = match options.sync_policy {
            SyncPolicy::Interval(interval) => Some(interval),
            SyncPolicy::Always | SyncPolicy::Manual => None,
        };
        let shared = Arc::new(Shared {
            dir,
            options,
            report: recovered.report,
            state: Mutex::new(State {
                index: recovered.index,
                meta: recovered.meta,
                queue: Vec::new(),
                spare: Vec::new(),
                writer,
                io_busy: false,
                batch: 0,
                batch_through: last,
                waiters: Waiters::default(),
                progress_waiters: 0,
                written_seq: last,
                synced_seq: last,
                poisoned: None,
                closed: false,
                close_finished: false,
                read_only,
                tail_waiters: 0,
                cut_notices: Vec::new(),
                cut_notices_sweep_at: 16,
            }),
            progress: Condvar::new(),
            appended: Condvar::new(),
            flusher_stop: Condvar::new(),
            misnamed: recovered.misnamed,
            read_files: Mutex::new(HashMap::new()),
            layout: RwLock::new(()),
            view_truncations: read_only.then_some(view_truncations),
            first_seq: AtomicU64::new(first_seq),
        });
        let flusher = interval.map(|interval| {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("flashlog-flusher".into())
                .spawn(move || flush_every(&shared, interval))
        });
        let flusher = match flusher.transpose() {
            Ok(flusher) => flusher,
            Err(err) => {
                return Err(Error::io(
                    "start flusher thread for",
                    shared.dir.path(),
                    err,
                ))
            }
        };
        Ok(Wal {
            shared,
            flusher: Mutex::new(flusher),
            lock: Mutex::new(lock),
        })
    }

    /// Appends one entry and returns its sequence number: 1 for the first entry ever
    /// appended to the log, then +1 each.
    ///
    /// Under [`SyncPolicy::Always`] it returns once the entry is on disk; it then
    /// survives any crash. Under the other policies it returns once the entry is
    /// written to the operating system: it survives a crash of the process, and a
    /// power loss only once synced.
    ///
    /// # Errors
    /// [`Error::EntryTooLarge`] if the entry exceeds 16 MiB or the segment size;
    /// [`Error::Closed`] after [`Wal::close`]; the I/O error of a failed write or
    /// fsync, and [`Error::Poisoned`] for every append after it.
    pub fn append(&self, op: Op, key: &[u8], value: &[u8]) -> Result<u64> {
        let max = self.shared.options.max_segment_size;
        let entry = Pending::new(op, key, value, max)?;
        let mut state = self.shared.lock();
        state.refuse_writes()?;
        let seq = state.enqueue(&entry, max);
        self.shared.commit(state, seq, self.append_goal())?;
        Ok(seq)
    }

    /// Appends every entry of `batch` with one write and one sync, and returns their
    /// sequence numbers (an empty range for an empty batch).
    ///
    /// Durability is as for [`Wal::append`], for the whole batch at once. The format
    /// has no batch frame: after a crash *during* the call, a prefix of the batch
    /// may survive. Once the call returned `Ok`, all of it survives.
    ///
    /// # Errors
    /// As [`Wal::append`]; if any entry is too large, nothing is appended.
    pub fn append_batch(&self, batch: &Batch) -> Result<RangeInclusive<u64>> {
        self.append_entries(batch, self.shared.options.max_segment_size)
    }

    /// Appends entries carried over from the log's older segments (a compaction's
    /// copies of live entries) as [`Wal::append_batch`] does, with one difference:
    /// an entry larger than `max_segment_size`, up to the format's limit of 16 MiB,
    /// is accepted too. The log may have been written with a larger
    /// `max_segment_size` than it is opened with now: what it already holds must
    /// still be copyable whatever the current limit.
    ///
    /// Such an entry gets a segment of its own: the segment before it is left (if
    /// it holds anything) and the next entry starts a new one. That is the layout
    /// the Go writer's rotation rule gives (see FORMAT.md), and the Go reader and
    /// flashlog's recovery read a segment holding an entry larger than the limit
    /// (a log opened with a smaller `max_segment_size` than it was written with
    /// has them anyway). Entries within the limit are placed exactly as by
    /// `append_batch`, byte for byte.
    ///
    /// New data goes through [`Wal::append`] and [`Wal::append_batch`], which keep
    /// refusing entries larger than `max_segment_size`, as the Go writer does.
    /// Durability and crash behaviour are those of `append_batch`.
    ///
    /// ```
    /// use flashlog_wal::{Batch, Error, Op, Options, Wal};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let wal = Wal::open(dir.path(), Options::default().max_segment_size(100))?;
    /// wal.append(Op::Put, b"small", b"1")?;
    /// let mut batch = Batch::new();
    /// batch.put(b"big", &[7; 200]);
    /// assert!(matches!(wal.append_batch(&batch), Err(Error::EntryTooLarge { len: 220, max: 100 })));
    /// assert_eq!(wal.append_carried(&batch)?, 2..=2);
    /// wal.append(Op::Put, b"next", b"2")?;
    /// let entries: Vec<u64> = wal.segments().iter().map(|s| s.entries).collect();
    /// assert_eq!(entries, [1, 1, 1]); // the big entry alone in the middle segment
    /// assert_eq!(wal.read(2)?.value(), &[7; 200]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Wal::append_batch`], with [`Error::EntryTooLarge`] only for an entry
    /// above 16 MiB.
    pub fn append_carried(&self, batch: &Batch) -> Result<RangeInclusive<u64>> {
        self.append_entries(batch, crate::codec::MAX_ENTRY_LEN)
    }

    /// Appends `batch`, whose entries may be up to `max_len` bytes each.
    fn append_entries(&self, batch: &Batch, max_len: u64) -> Result<RangeInclusive<u64>> {
        let max = self.shared.options.max_segment_size;
        let entries = batch.pending(max_len)?;
        let mut state = self.shared.lock();
        state.refuse_writes()?;
        let first = state.index.next_seq();
        for entry in &entries {
            state.enqueue(entry, max);
        }
        let last = state.index.next_seq() - 1;
        if !entries.is_empty() {
            self.shared.commit(state, last, self.append_goal())?;
        }
        Ok(first..=last)
    }

    fn append_goal(&self) -> Goal {
        match self.shared.options.sync_policy {
            SyncPolicy::Always => Goal::Synced,
            SyncPolicy::Interval(_) | SyncPolicy::Manual => Goal::Written,
        }
    }

    /// Makes every entry appended so far durable (one fdatasync, shared with any
    /// group commit under way). Needed only under [`SyncPolicy::Manual`] and
    /// [`SyncPolicy::Interval`].
    ///
    /// # Errors
    /// The I/O error of a failed write or fsync (the log is then poisoned);
    /// [`Error::Poisoned`] or [`Error::Closed`].
    pub fn sync(&self) -> Result<()> {
        let state = self.shared.lock();
        state.refuse_writes()?;
        let through = state.index.next_seq() - 1;
        self.shared.commit(state, through, Goal::Synced)?;
        Ok(())
    }

    /// Closes the log: refuses new appends, makes everything appended durable, and
    /// releases the files and the directory lock. Appenders blocked at that moment return (their entries
    /// are synced). Closing twice is fine; dropping the `Wal` closes it too, but
    /// ignores errors.
    ///
    /// # Errors
    /// The error of the final write or fsync, or [`Error::Poisoned`] if an earlier
    /// one failed: then not everything appended is known to be durable.
    pub fn close(&self) -> Result<()> {
        let shared = &self.shared;
        let mut state = shared.lock();
        if state.closed {
            // Another close is (or was) under way: its outcome is this one's.
            while !state.close_finished {
                state = shared.wait_progress(state);
            }
            return match &state.poisoned {
                Some(cause) => Err(Error::Poisoned {
                    cause: cause.clone(),
                }),
                None => Ok(()),
            };
        }
        state.closed = true;
        shared.flusher_stop.notify_all();
        let through = state.index.next_seq() - 1;
        // Its error, if any, is in `poisoned` now.
        let _ = shared.commit(state, through, Goal::Synced);
        let mut state = shared.lock();
        while state.io_busy {
            state = shared.wait_progress(state);
        }
        let finished = match (state.writer.take(), &state.poisoned) {
            (Some(mut writer), None) => writer.finish().map(|()| {
                let sealed = state.index.sealed(state.index.active().id);
                store_checkpoint(&shared.dir, &sealed);
            }),
            _ => Ok(()),
        };
        let outcome = match (finished, &state.poisoned) {
            (Err(err), _) => {
                state.poisoned = Some(err.poison_cause());
                Err(err)
            }
            (Ok(()), Some(cause)) => Err(Error::Poisoned {
                cause: cause.clone(),
            }),
            (Ok(()), None) => Ok(()),
        };
        shared.wake_everyone(&mut state);
        drop(state);
        let flusher = self
            .flusher
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take();
        if let Some(flusher) = flusher {
            let _ = flusher.join();
        }
        // The files are released: another `Wal` may open the directory now.
        drop(
            self.lock
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .take(),
        );
        shared.lock().close_finished = true;
        shared.progress.notify_all();
        outcome
    }

    /// Reads the entry with sequence number `seq`, with one positioned read (an
    /// in-memory index finds it). The first read in a sealed segment that the
    /// checkpoint vouched for at open reads and checks that whole segment once.
    ///
    /// While other threads truncate and append, `read` returns the entry that
    /// held `seq` at some moment during the call, or [`Error::SeqOutOfRange`]:
    /// never the bytes of another entry, never a false [`Error::Corrupt`]. (A
    /// truncation waits for the reads under way; reads wait for a truncation
    /// under way.)
    ///
    /// ```
    /// use flashlog_wal::{Error, Op, Options, Wal};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let wal = Wal::open(dir.path(), Options::default())?;
    /// wal.append(Op::Put, b"a", b"1")?;
    /// wal.append(Op::Put, b"b", b"2")?;
    /// assert_eq!(wal.read(2)?.value(), b"2");
    /// wal.truncate_back(2)?;
    /// assert!(matches!(wal.read(2), Err(Error::SeqOutOfRange { seq: 2, first: 1, last: 1 })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::SeqOutOfRange`] if the log does not hold `seq` (or it is not yet
    /// visible); [`Error::Skipped`] if `seq` was held by damage that
    /// [`RecoveryMode::SkipCorrupted`](crate::RecoveryMode::SkipCorrupted) skipped
    /// (a gap); [`Error::Corrupt`] if its bytes on disk no longer check out;
    /// [`Error::SegmentChanged`] if its segment no longer matches the checkpoint;
    /// [`Error::Io`].
    pub fn read(&self, seq: u64) -> Result<Entry> {
        // Held until the bytes are read: the position found under the state lock
        // still holds entry `seq` when the (unlocked) read below happens.
        let _pin = self.shared.pin();
        let read = self.locate(seq).and_then(|located| {
            let file = self.shared.read_file(located.position.segment)?;
            let mut buf = vec![0u8; located.span as usize];
            file.read_exact_at(&mut buf, located.position.offset)?;
            decode_at(&file, located.position, seq, &buf)
        });
        self.shared.confirm_view(seq, seq, read)
    }

    /// Where the entry with sequence number `seq` is on disk.
    ///
    /// # Errors
    /// [`Error::SeqOutOfRange`] if the log does not hold `seq`, [`Error::Skipped`]
    /// if it lies in a gap. In a sealed
    /// segment not read since the log opened (see
    /// [`RecoveryMode::TolerateCorruptedTail`](crate::RecoveryMode::TolerateCorruptedTail)),
    /// finding the entry reads the segment: [`Error::Corrupt`] or
    /// [`Error::SegmentChanged`] if it no longer checks out, [`Error::Io`].
    pub fn position(&self, seq: u64) -> Result<Position> {
        let _pin = self.shared.pin();
        let located = self.locate(seq).map(|located| located.position);
        self.shared.confirm_view(seq, seq, located)
    }

    /// Where a visible entry is, reading its segment's offsets first if the log was
    /// opened from the checkpoint and the segment was not read since. The caller
    /// holds the pin ([`Shared::pin`]): the offsets read without the state lock
    /// are then those of the segment the index describes.
    fn locate(&self, seq: u64) -> Result<Located> {
        loop {
            let state = self.shared.lock();
            match state.index.locate(seq) {
                Ok(Some(located)) if seq < state.visible_end() => return Ok(located),
                Ok(None) if state.index.gap_end(seq).is_some() => {
                    return Err(Error::Skipped { seq })
                }
                Ok(_) => return Err(out_of_range(&state, seq)),
                Err(unloaded) => {
                    drop(state);
                    self.shared.load_offsets(&unloaded, &mut Vec::new())?;
                }
            }
        }
    }

    /// An iterator over the entries from `seq` on, in order. It can run while other
    /// threads append, and [`Iter::follow`] makes it wait for new entries.
    ///
    /// # Errors
    /// [`Error::SeqOutOfRange`] if `seq` is before the first entry (removed by
    /// [`Wal::truncate_front`]). A `seq` after the last entry is fine: the iterator
    /// yields entries from there once they are appended.
    pub fn iter_from(&self, seq: u64) -> Result<Iter> {
        let mut state = self.shared.lock();
        if seq < state.index.first_seq() {
            return Err(out_of_range(&state, seq));
        }
        let notice = state.register_iterator();
        drop(state);
        Ok(Iter::new(Arc::clone(&self.shared), seq, notice))
    }

    /// Blocks until the entry `seq` is visible to readers or `timeout` passes;
    /// returns `Ok(true)` once it is visible, `Ok(false)` if the time ran out.
    /// `Duration::MAX` waits with no deadline. (An entry that became visible and
    /// was removed by `truncate_back` before the waiter looked is waited for
    /// again.)
    ///
    /// ```
    /// use std::time::Duration;
    /// use flashlog_wal::{Op, Options, Wal};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let wal = Wal::open(dir.path(), Options::default())?;
    /// assert!(!wal.wait_for(1, Duration::from_millis(1))?);
    /// wal.append(Op::Put, b"k", b"v")?;
    /// assert!(wal.wait_for(1, Duration::MAX)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Returns at once, instead of waiting for an entry that cannot come,
    /// [`Error::Closed`] once the log is closed, [`Error::Poisoned`] once a
    /// write or fsync failed, and [`Error::ReadOnly`] for a read-only log (a view
    /// of the log as it was opened, which no append reaches: open it again to
    /// see what its writer appended since).
    pub fn wait_for(&self, seq: u64, timeout: Duration) -> Result<bool> {
        let shared = &self.shared;
        // No deadline when it lies beyond what an `Instant` can hold.
        let deadline = Instant::now().checked_add(timeout);
        let mut state = shared.lock();
        while seq >= state.visible_end() {
            if let Some(cause) = &state.poisoned {
                return Err(Error::Poisoned {
                    cause: cause.clone(),
                });
            }
            if state.read_only {
                return Err(Error::ReadOnly);
            }
            if state.closed {
                return Err(Error::Closed);
            }
            state.tail_waiters += 1;
            state = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        state.tail_waiters -= 1;
                        return Ok(false);
                    }
                    shared
                        .appended
                        .wait_timeout(state, left)
                        .unwrap_or_else(|poison| poison.into_inner())
                        .0
                }
                None => shared.wait(&shared.appended, state),
            };
            state.tail_waiters -= 1;
        }
        Ok(true)
    }

    /// The sequence number of the first entry in the log (of the next one to be
    /// appended, if the log is empty).
    pub fn first_seq(&self) -> u64 {
        self.shared.lock().index.first_seq()
    }

    /// The sequence number of the last visible entry: under
    /// [`SyncPolicy::Always`], the last durable one. `first_seq() - 1` if the log is
    /// empty.
    pub fn last_seq(&self) -> u64 {
        self.shared.lock().visible_end() - 1
    }

    /// Removes the oldest segments whose entries all come before `seq` (a
    /// checkpoint: entries before `seq` are no longer needed). Entries from `seq` on
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
        let mut state = self.quiesce()?;
        let State { index, meta, .. } = &mut *state;
        let result = truncate::front(&self.shared.dir, index, meta, seq);
        let first = state.index.first_seq();
        self.shared.first_seq.store(first, Ordering::Release);
        self.finish_truncation(state, result)?;
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
        let mut state = self.quiesce()?;
        if seq < state.index.first_seq() {
            return Err(out_of_range(&state, seq));
        }
        if seq >= state.index.next_seq() {
            // Nothing to remove: keep the writer, and with it what it has not synced.
            return Ok(());
        }
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
        let result = result.map(|(removed, writer)| {
            let last = state.index.next_seq() - 1;
            state.writer = Some(writer);
            state.written_seq = state.written_seq.min(last);
            state.synced_seq = state.synced_seq.min(last);
            removed
        });
        self.finish_truncation(state, result)
    }

    /// Seals the active segment and starts a new one, so that every entry appended
    /// so far lies in a sealed segment (what `truncate_front` can remove, e.g. after
    /// a compaction copied the live data). Does nothing if the active segment is
    /// empty. Returns the id of the active segment afterwards.
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
        state.poisoned = Some(err.poison_cause());
        self.shared.wake_everyone(&mut state);
        err
    }

    /// The log's segments, oldest first, with the entries appended to them so far.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        let state = self.shared.lock();
        state
            .index
            .segments
            .iter()
            .map(|segment| SegmentInfo {
                id: segment.id,
                first_seq: segment.first_seq,
                entries: segment.len(),
                bytes: segment.end,
            })
            .collect()
    }

    /// What recovery found and changed when the log was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.shared.report
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        self.shared.dir.path()
    }

    /// The options the log was opened with.
    pub fn options(&self) -> &Options {
        &self.shared.options
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// One segment of an open log, from [`Wal::segments`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentInfo {
    /// The segment's id.
    pub id: crate::SegmentId,
    /// Sequence number of its first entry (of the next one, if it is empty).
    pub first_seq: u64,
    /// How many entries it holds.
    pub entries: u64,
    /// Bytes of those entries.
    pub bytes: u64,
}

fn out_of_range(state: &State, seq: u64) -> Error {
    Error::SeqOutOfRange {
        seq,
        first: state.index.first_seq(),
        last: state.visible_end() - 1,
    }
}

/// The background flusher of [`SyncPolicy::Interval`]: syncs whatever was written
/// since the last sync, every `interval`, until the log closes or is poisoned.
fn flush_every(shared: &Shared, interval: Duration) {
    let mut state = shared.lock();
    loop {
        if state.closed || state.poisoned.is_some() {
            return;
        }
        state = shared
            .flusher_stop
            .wait_timeout(state, interval)
            .unwrap_or_else(|poison| poison.into_inner())
            .0;
        if state.closed || state.poisoned.is_some() {
            return;
        }
        let through = state.index.next_seq() - 1;
        if state.synced_seq < through {
            if shared.commit(state, through, Goal::Synced).is_err() {
                return;
            }
            state = shared.lock();
        }
    }
}
