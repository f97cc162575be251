//! [`Wal`], the public handle of an open log: the type, opening and closing it,
//! and what it tells of itself. Its other methods are in child modules, one
//! `impl Wal` block each: `append` (appending and syncing), `read` (reading,
//! iterating, waiting for entries) and `maintenance` (truncation at both ends,
//! rotation).

mod append;
mod maintenance;
mod ops;
mod read;
mod retention;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::cursors::Cursors;
use crate::dir::LOCK_FILE;
use crate::error::{Error, Result};
use crate::fs::Dir;
use crate::metrics::{Gauges, Metrics, Recorder};
use crate::options::{Options, SyncPolicy};
use crate::recovery;
use crate::report::{Access, RecoveryReport};
use crate::retainer::Retainer;
use crate::scrub::background::Scrubber;
use crate::segment_writer::{Preallocation, SegmentWriter};
use crate::state::{Shared, State};
use crate::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use crate::sync::thread::{self, JoinHandle};
use crate::sync::{Condvar, Mutex, RwLock};
use crate::syncer;
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
    /// The syncer thread (`syncer.rs`): started at open under
    /// [`SyncPolicy::Interval`], otherwise by the first `submit`.
    syncer: Mutex<Option<JoinHandle<()>>>,
    /// Whether the syncer was started (read without the mutex on each submit).
    syncer_started: std::sync::atomic::AtomicBool,
    /// The directory lock, held from a read-write open until close.
    lock: Mutex<Option<Box<dyn fmt::Debug + Send + Sync>>>,
    /// The named cursors (`wal/ops.rs`).
    cursors: Cursors,
    /// The background scrubber, if the options ask for one.
    scrubber: Scrubber,
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
        let (lock, mut recovered, writer) = if options.read_only {
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
        trace_recovery(&dir, &recovered.report, options.read_only);
        let read_only = options.read_only;
        let last = recovered.index.next_seq() - 1;
        let (cursors, note) = Cursors::open(&dir, read_only, last)?;
        recovered.report.side_files.extend(note);
        let (retention, note) = Retainer::open(&dir, &options, &recovered.index, &recovered.meta);
        recovered.report.side_files.extend(note);
        let view_truncations = recovered.meta.truncations;
        let first_seq = recovered.index.first_seq();
        let interval = matches!(options.sync_policy, SyncPolicy::Interval(_));
        let dir_path = &dir.path().to_path_buf();
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
                group: 0,
                group_through: last,
                waiters: Waiters::default(),
                receipts: VecDeque::new(),
                syncer_idle: false,
                rollbacks: Default::default(),
                progress_waiters: 0,
                written_seq: last,
                synced_seq: last,
                poisoned: None,
                closed: false,
                close_finished: false,
                closing_thread: None,
                read_only,
                tail_waiters: 0,
                cut_notices: Vec::new(),
                cut_notices_sweep_at: 16,
            }),
            progress: Condvar::new(),
            appended: Condvar::new(),
            syncer_wake: Condvar::new(),
            written_edge: AtomicU64::new(last),
            written_followers: AtomicUsize::new(0),
            misnamed: recovered.misnamed,
            read_files: Mutex::new(HashMap::new()),
            layout: RwLock::new(()),
            view_truncations: read_only.then_some(view_truncations),
            first_seq: AtomicU64::new(first_seq),
            retention,
            metrics: Recorder::new(dir_path),
            open_readers: std::sync::atomic::AtomicU64::new(0),
        });
        let scrubber = Scrubber::start(&shared)?;
        let wal = Wal {
            shared,
            syncer: Mutex::new(None),
            syncer_started: std::sync::atomic::AtomicBool::new(false),
            lock: Mutex::new(lock),
            cursors,
            scrubber,
        };
        if interval && !read_only {
            wal.start_syncer()?;
        }
        Ok(wal)
    }

    /// Starts the syncer thread unless it runs (or ran) already.
    pub(crate) fn start_syncer(&self) -> Result<()> {
        use std::sync::atomic::Ordering;
        if self.syncer_started.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut syncer = self
            .syncer
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if self.syncer_started.load(Ordering::Acquire) {
            return Ok(());
        }
        let shared = Arc::clone(&self.shared);
        let handle = thread::Builder::new()
            .name("flashlog-syncer".into())
            .spawn(move || syncer::run(&shared))
            .map_err(|err| Error::io("start the syncer thread of", self.shared.dir.path(), err))?;
        *syncer = Some(handle);
        self.syncer_started.store(true, Ordering::Release);
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
        self.scrubber.stop();
        let shared = &self.shared;
        let mut state = shared.lock();
        if state.closed {
            // Another close is (or was) under way: its outcome is this one's.
            // From that close's own thread (a callback it resolved), waiting
            // for it would wait forever: the outcome so far is the answer.
            let own = state.closing_thread == Some(thread::current().id());
            while !state.close_finished && !own {
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
        state.closing_thread = Some(thread::current().id());
        shared.syncer_wake.notify_all();
        let through = state.index.next_seq() - 1;
        // A failure is in `poisoned` now; a group refused for a full disk is
        // not, and what it took back was not made durable: close reports it.
        let refused = shared.commit(state, through, Goal::Synced).err();
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
        let mut durable = Vec::new();
        let outcome = match (finished, &state.poisoned) {
            (Err(err), _) => {
                state.poison(err.poison_cause(), &shared.metrics);
                Err(err)
            }
            (Ok(()), Some(cause)) => Err(Error::Poisoned {
                cause: cause.clone(),
            }),
            (Ok(()), None) => {
                // The final fsync covered everything written (a refused group
                // leaves written entries unsynced): their receipts are durable.
                state.synced_seq = state.written_seq;
                durable = state.take_durable_receipts();
                refused.map_or(Ok(()), Err)
            }
        };
        // Every receipt resolves here: durable, or with the failure.
        shared.wake_everyone(state);
        crate::receipt::resolve_all(durable, &Ok(()));
        let syncer = self
            .syncer
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take();
        // Not from the syncer itself (an `on_durable` callback that closes the
        // log, or drops its last handle): it returns once the callback does,
        // finding the log closed.
        if let Some(syncer) = syncer {
            if syncer.thread().id() != thread::current().id() {
                let _ = syncer.join();
            }
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

    /// What the log has done since it was opened and what it holds now:
    /// counters, latency and size histograms, and gauges (see [`Metrics`]).
    /// Reading them takes the log's lock only to copy five numbers; the
    /// counters are atomics the writers update without it.
    pub fn metrics(&self) -> Metrics {
        let state = self.shared.lock();
        let gauges = Gauges {
            segments: state.index.segments.len() as u64,
            bytes_on_disk: state.index.segments.iter().map(|s| s.end).sum(),
            written_seq: self.shared.written_edge.load(Ordering::SeqCst),
            durable_seq: state.synced_seq,
            open_readers: self.shared.open_readers.load(Ordering::Relaxed),
        };
        drop(state);
        let mut metrics = self.shared.metrics.snapshot(gauges);
        metrics.retention = self.retention_totals();
        metrics
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

/// What open found and changed, as `tracing` events: one summary, and a
/// warning for each damaged region and side file it could not use.
fn trace_recovery(dir: &Dir, report: &RecoveryReport, read_only: bool) {
    let _span = tracing::info_span!("flashlog_open", dir = %dir.path().display()).entered();
    tracing::info!(
        read_only,
        created = report.created,
        segments = report.segments,
        entries = report.entries,
        first_seq = report.first_seq,
        last_seq = report.last_seq,
        truncated_bytes = report.truncated_bytes,
        removed_segments = report.removed_segments.len(),
        finished_truncate_back = report.finished_truncate_back,
        "flashlog: opened"
    );
    if let Some(torn) = &report.torn_tail {
        tracing::info!(at = %torn.position, kind = %torn.kind, len = torn.len, "flashlog: cut a torn tail");
    }
    for damage in &report.damage {
        tracing::warn!(at = %damage.position, kind = %damage.kind, len = damage.len, "flashlog: damage found at open");
    }
    for note in &report.side_files {
        tracing::warn!(%note, "flashlog: side file");
    }
}
