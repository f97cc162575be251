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

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::cursors::Cursors;
use crate::dir::LOCK_FILE;
use crate::error::{Error, Result};
use crate::fs::Dir;
use crate::options::{Options, SyncPolicy};
use crate::recovery;
use crate::report::{Access, RecoveryReport};
use crate::retainer::Retainer;
use crate::scrub::background::Scrubber;
use crate::segment_writer::{Preallocation, SegmentWriter};
use crate::state::{Shared, State};
use crate::sync::atomic::AtomicU64;
use crate::sync::thread::{self, JoinHandle};
use crate::sync::{Condvar, Mutex, RwLock};
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
        let read_only = options.read_only;
        let last = recovered.index.next_seq() - 1;
        let (cursors, note) = Cursors::open(&dir, read_only, last)?;
        recovered.report.side_files.extend(note);
        let (retention, note) = Retainer::open(&dir, &options, &recovered.index, &recovered.meta);
        recovered.report.side_files.extend(note);
        let view_truncations = recovered.meta.truncations;
        let first_seq = recovered.index.first_seq();
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
            retention,
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
        let scrubber = Scrubber::start(&shared)?;
        Ok(Wal {
            shared,
            flusher: Mutex::new(flusher),
            lock: Mutex::new(lock),
            cursors,
            scrubber,
        })
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
