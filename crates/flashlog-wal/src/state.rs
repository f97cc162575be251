//! The state one open log shares between its handle, appenders, readers and the
//! syncer thread.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};

use crate::receipt::{self, Completion, Failure};
use crate::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use crate::sync::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::{Error, Result};
use crate::fs::{Dir, OpenMode, PathFile};
use crate::index::{Index, Unloaded};
use crate::meta::Meta;
use crate::metrics::Recorder;
use crate::options::{Options, Visibility};
use crate::position::SegmentId;
use crate::report::RecoveryReport;
use crate::retainer::Retainer;
use crate::segment_writer::{Chunk, SegmentWriter};
use crate::waiters::{Turn, Waiters};

/// Everything behind an `Arc` that the threads of one open log share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub dir: Dir,
    pub options: Options,
    pub report: RecoveryReport,
    pub state: Mutex<State>,
    /// Signalled after every group commit, for the rare waiters that are not
    /// appenders (close, truncation), and when the log closes or fails.
    pub progress: Condvar,
    /// Signalled when entries become visible to readers, or the log closes.
    pub appended: Condvar,
    /// Wakes the syncer thread (see `syncer.rs`): work for it, or the log closes.
    pub syncer_wake: Condvar,
    /// The written edge: the last sequence number handed to the operating
    /// system. A group's leader publishes it right after its write, before its
    /// fsync, so that `Visibility::Written` readers see entries before they are
    /// durable. Only lowered under the lock, by `truncate_back`.
    pub written_edge: AtomicU64,
    /// `Visibility::Written` followers blocked on `appended`: a leader that
    /// publishes the written edge takes the lock to wake them only if there are
    /// any. A follower counts itself (with the lock held) before it looks at the
    /// edge, and the leader stores the edge before it looks at the count, so one
    /// of them sees the other (both `SeqCst`).
    pub written_followers: AtomicUsize,
    /// File names of segments not canonically named (read-only opens only).
    pub misnamed: HashMap<SegmentId, String>,
    /// Read-only handles of segments, shared by readers.
    pub read_files: Mutex<HashMap<SegmentId, Arc<PathFile>>>,
    /// The pin that keeps located entries where they are. A reader holds it
    /// shared from locating entries (under `state`) until their bytes are read
    /// (after `state` is released); `truncate_back` and `truncate_front` hold it
    /// exclusively while they change the index and the files. So the position a
    /// reader found under the lock still holds the same entry when it reads
    /// there. Taken before `state`, never while holding it.
    pub layout: RwLock<()>,
    /// For a read-only view: the side file's count of `truncate_back`s when the
    /// view was opened (see [`Shared::confirm_view`]).
    pub view_truncations: Option<u64>,
    /// What the log counts about itself (`Wal::metrics`).
    pub metrics: Recorder,
    /// Iterators alive.
    pub open_readers: std::sync::atomic::AtomicU64,
    /// The first sequence number, published after every `truncate_front` so that
    /// an iterator can check, without the lock, that an entry it read ahead is
    /// still in the log before it yields it.
    pub first_seq: AtomicU64,
    /// Retention: whether it is due, the sealing times (`retainer.rs`).
    pub retention: Retainer,
}

/// The mutable part of an open log, under one mutex.
#[derive(Debug)]
pub(crate) struct State {
    /// Every entry appended, including those still queued.
    pub index: Index,
    pub meta: Meta,
    /// Encoded entries not yet handed to the operating system, in order.
    pub queue: Vec<Chunk>,
    /// Emptied chunk buffers kept for reuse.
    pub spare: Vec<Vec<u8>>,
    /// The active segment's writer; `None` while a group commit is writing with it,
    /// and after close.
    pub writer: Option<SegmentWriter>,
    /// Whether a thread is doing I/O with the writer right now.
    pub io_busy: bool,
    /// Number of the group commit in flight (or of the last one).
    pub group: u64,
    /// Last sequence number the group commit in flight covers.
    pub group_through: u64,
    /// Appenders parked until their group commit is over.
    pub waiters: Waiters,
    /// The receipts of submitted entries not yet durable, in sequence order.
    pub receipts: VecDeque<Arc<Completion>>,
    /// Whether the syncer thread sleeps, waiting to be woken.
    pub syncer_idle: bool,
    /// The groups taken back for want of space (see `rollback.rs`).
    pub rollbacks: Rollbacks,
    /// Threads blocked on `Shared::progress`.
    pub progress_waiters: usize,
    /// Last sequence number handed to the operating system: what readers see.
    pub written_seq: u64,
    /// Last sequence number known to be on disk.
    pub synced_seq: u64,
    /// Why the log stopped accepting writes, once a write or fsync failed.
    pub poisoned: Option<Arc<Error>>,
    pub closed: bool,
    /// Whether `close` has released everything (a second `close` waits for it).
    pub close_finished: bool,
    /// The thread running the first `close`: a `close` on that same thread (from
    /// a callback that close resolves) must not wait for it to finish.
    pub closing_thread: Option<crate::sync::thread::ThreadId>,
    pub read_only: bool,
    /// Readers blocked waiting for new entries.
    pub tail_waiters: usize,
    /// The iterators alive, each told of every `truncate_back` (see [`CutNotice`]).
    pub cut_notices: Vec<Weak<CutNotice>>,
    /// The length of `cut_notices` at which dropped iterators are swept out.
    pub cut_notices_sweep_at: usize,
}

/// The rollbacks so far, for the appenders that wait: which of them took back
/// an entry of theirs.
#[derive(Debug, Default)]
pub(crate) struct Rollbacks {
    /// How many rollbacks happened: an appender notes it when it queues.
    pub count: u64,
    /// For each run of rollbacks that refused from the same sequence number:
    /// the count of the run's first one, and that first refused number.
    /// Rollbacks are rare (a full disk) and repeats of one share an entry.
    runs: VecDeque<(u64, u64)>,
    /// The last rollback's error.
    error: Option<Arc<Error>>,
}

impl Rollbacks {
    pub(crate) fn record(&mut self, from: u64, error: Arc<Error>) {
        self.count += 1;
        if self.runs.back().is_none_or(|&(_, last)| last != from) {
            self.runs.push_back((self.count, from));
        }
        self.error = Some(error);
    }

    /// The error for an appender whose entries end at `seq` and that queued when
    /// `count` was `since`, if a rollback since took them back: the first
    /// rollback after it queued did, if `seq` was not written by then (nothing
    /// written is ever taken back).
    pub(crate) fn refused(&self, seq: u64, since: u64) -> Option<Error> {
        if self.count == since {
            return None;
        }
        let first = since + 1;
        let run = self.runs.partition_point(|&(count, _)| count <= first);
        let (_, from) = self.runs[run.checked_sub(1)?];
        (seq >= from).then(|| self.error.as_ref().map_or(Error::Closed, |e| e.duplicate()))
    }
}

/// Where an iterator learns that `truncate_back` removed entries: the lowest
/// sequence number cut since the iterator last looked, `u64::MAX` for none.
#[derive(Debug)]
pub(crate) struct CutNotice(AtomicU64);

impl CutNotice {
    /// Whether a cut was recorded since the last [`CutNotice::take`].
    pub(crate) fn has_news(&self) -> bool {
        self.0.load(Ordering::Acquire) != u64::MAX
    }

    /// Takes the lowest cut recorded since the last call, if any.
    pub(crate) fn take(&self) -> Option<u64> {
        // Cheap when nothing happened: one load, no write.
        if !self.has_news() {
            return None;
        }
        Some(self.0.swap(u64::MAX, Ordering::AcqRel)).filter(|&cut| cut != u64::MAX)
    }
}

impl State {
    /// Poisons the log with `cause` unless it already is (the first failure is
    /// the one every later write reports), counting and tracing it once.
    pub(crate) fn poison(&mut self, cause: Arc<Error>, metrics: &Recorder) {
        if self.poisoned.is_none() {
            tracing::error!(error = %cause, "flashlog: the log stopped accepting writes");
            metrics.count(&metrics.poisonings);
            self.poisoned = Some(cause);
        }
    }

    /// The error every write gets once the log is closed or poisoned.
    pub(crate) fn refuse_writes(&self) -> Result<()> {
        if let Some(cause) = &self.poisoned {
            return Err(Error::Poisoned {
                cause: cause.clone(),
            });
        }
        if self.closed {
            return Err(Error::Closed);
        }
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        Ok(())
    }

    /// Sequence number one past the last entry readers may see.
    pub(crate) fn visible_end(&self) -> u64 {
        self.written_seq + 1
    }

    /// Takes the receipts whose entries are durable now (through `synced_seq`),
    /// to resolve once the lock is released.
    pub(crate) fn take_durable_receipts(&mut self) -> Vec<Arc<Completion>> {
        let durable = self
            .receipts
            .iter()
            .take_while(|receipt| receipt.last() <= self.synced_seq)
            .count();
        self.receipts.drain(..durable).collect()
    }

    /// Takes the receipts with entries from `first_cut` on, which `truncate_back`
    /// removes before they were synced, to resolve once the lock is released.
    pub(crate) fn take_cut_receipts(&mut self, first_cut: u64) -> Vec<Arc<Completion>> {
        let kept = self
            .receipts
            .iter()
            .take_while(|receipt| receipt.last() < first_cut)
            .count();
        self.receipts.drain(kept..).collect()
    }

    /// A new iterator's notice of truncations, registered so that
    /// [`State::notify_cut`] reaches it.
    pub(crate) fn register_iterator(&mut self) -> Arc<CutNotice> {
        let notice = Arc::new(CutNotice(AtomicU64::new(u64::MAX)));
        // Dropped iterators leave dead entries; sweep them once the list has
        // doubled since the last sweep, so it stays proportional to the live
        // iterators and a sweep's cost is shared by as many registrations.
        if self.cut_notices.len() >= self.cut_notices_sweep_at {
            self.cut_notices.retain(|notice| notice.strong_count() > 0);
            self.cut_notices_sweep_at = (2 * self.cut_notices.len()).max(16);
        }
        self.cut_notices.push(Arc::downgrade(&notice));
        notice
    }

    /// Tells every live iterator that the entries from `first_cut` on were
    /// removed. Called under the lock, before the truncation changes any file.
    pub(crate) fn notify_cut(&mut self, first_cut: u64) {
        self.cut_notices.retain(|notice| match notice.upgrade() {
            Some(notice) => {
                notice.0.fetch_min(first_cut, Ordering::AcqRel);
                true
            }
            None => false,
        });
    }
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves no half-done invariant that
        // matters more than the data on disk, which recovery checks anyway.
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    pub(crate) fn wait<'a>(
        &self,
        condvar: &Condvar,
        guard: MutexGuard<'a, State>,
    ) -> MutexGuard<'a, State> {
        condvar
            .wait(guard)
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Waits until the group commit in flight (or some state change) is over.
    pub(crate) fn wait_progress<'a>(
        &self,
        mut state: MutexGuard<'a, State>,
    ) -> MutexGuard<'a, State> {
        state.progress_waiters += 1;
        let mut state = self.wait(&self.progress, state);
        state.progress_waiters -= 1;
        state
    }

    /// Confirms what a read-only view read from files another process may be
    /// writing: entries `first..=last` read at positions found at open are still
    /// those entries if the writer did not truncate back at or before `last`
    /// since (the side file counts its truncations before it changes anything,
    /// and is read here after the entries were). A failed read is explained the
    /// same way: an outdated view, or entries that `truncate_front` removed.
    /// Costs one small read of the side file; nothing for a read-write log,
    /// whose truncations exclude its reads ([`Shared::layout`]).
    pub(crate) fn confirm_view<T>(&self, first: u64, last: u64, read: Result<T>) -> Result<T> {
        let Some(at_open) = self.view_truncations else {
            return read;
        };
        let now = crate::meta::load(&self.dir)?.unwrap_or_default();
        let untouched =
            now.truncations == at_open || (now.truncations == at_open + 1 && now.last_cut > last);
        if !untouched {
            return Err(Error::ViewOutdated {
                dir: self.dir.path().to_path_buf(),
            });
        }
        match read {
            Err(Error::Io { .. }) if first < now.first_seq => Err(Error::SeqOutOfRange {
                seq: first,
                first: now.first_seq,
                last: self.lock().visible_end() - 1,
            }),
            // A segment the writer cut further along than what was asked for
            // (one the view trusted from the checkpoint, say, whose offsets it
            // reads whole) no longer looks as at open: the view is outdated,
            // the log is not damaged.
            Err(Error::Corrupt { .. } | Error::SegmentChanged { .. } | Error::Io { .. })
                if now.truncations != at_open =>
            {
                Err(Error::ViewOutdated {
                    dir: self.dir.path().to_path_buf(),
                })
            }
            read => read,
        }
    }

    /// One past the last entry a reader at `visibility` sees (call with the lock
    /// held): through the last fsync, or through the written edge.
    pub(crate) fn visible_end(&self, state: &State, visibility: Visibility) -> u64 {
        match visibility {
            Visibility::Durable => state.synced_seq + 1,
            Visibility::Written => self.written_edge.load(Ordering::SeqCst) + 1,
        }
    }

    /// Pins the positions of entries while they are located and read: see
    /// [`Shared::layout`]. Take it before the state lock.
    pub(crate) fn pin(&self) -> RwLockReadGuard<'_, ()> {
        self.layout
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Excludes readers while the index and the files change under a
    /// truncation: see [`Shared::layout`]. Take it before the state lock.
    pub(crate) fn change_layout(&self) -> RwLockWriteGuard<'_, ()> {
        self.layout
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Wakes every waiting thread, after a failure or when the log closes, and
    /// releases the lock: then resolves every outstanding receipt with the
    /// failure (or, closed without one, with `Closed`: a close makes everything
    /// durable first, so none is left unless it failed).
    pub(crate) fn wake_everyone(&self, mut state: MutexGuard<'_, State>) {
        for waiter in state.waiters.take_all() {
            waiter.wake(Turn::Recheck);
        }
        self.progress.notify_all();
        self.appended.notify_all();
        self.syncer_wake.notify_all();
        let receipts: Vec<_> = state.receipts.drain(..).collect();
        let failure = match &state.poisoned {
            Some(cause) => Failure::Poisoned(Arc::clone(cause)),
            None => Failure::Closed,
        };
        drop(state);
        receipt::resolve_all(receipts, &Err(failure));
    }

    /// A read-only handle of a segment, opened once and shared.
    /// Reads the offsets of a segment trusted from the checkpoint into the index
    /// (without the lock: other threads go on meanwhile), leaving the segment's
    /// checked bytes in `buf`. Returns the offsets.
    pub(crate) fn load_offsets(&self, unloaded: &Unloaded, buf: &mut Vec<u8>) -> Result<Vec<u32>> {
        let file = self.read_file(unloaded.0.id)?;
        let offsets = crate::segment::read_trusted(&file, &unloaded.0, buf)?;
        self.lock().index.install(unloaded, offsets.clone());
        Ok(offsets)
    }

    pub(crate) fn read_file(&self, id: SegmentId) -> Result<Arc<PathFile>> {
        let mut files = self
            .read_files
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(file) = files.get(&id) {
            return Ok(Arc::clone(file));
        }
        let name = self
            .misnamed
            .get(&id)
            .cloned()
            .unwrap_or_else(|| id.file_name());
        let file = Arc::new(self.dir.open(&name, OpenMode::Read)?);
        files.insert(id, Arc::clone(&file));
        Ok(file)
    }

    /// Forgets the read handles of removed segments (readers holding one keep it).
    pub(crate) fn forget_files(&self, removed: &[SegmentId]) {
        let mut files = self
            .read_files
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        for id in removed {
            files.remove(id);
        }
    }
}
