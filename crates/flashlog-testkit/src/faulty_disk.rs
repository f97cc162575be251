//! Faults on the real disk ([`FaultyDisk`]): the real file system behind hooks that
//! count calls and can fail the Nth mutating one, for tests that need real files
//! but a chosen failure, or want to know how many fsyncs or segment reads an
//! operation made. Simulated faults, with crashes, are
//! [`SimFault`](crate::SimFault)s of a [`SimFs`](crate::SimFs).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flashlog_wal::fs::StdFs;
use flashlog_wal::Options;

use crate::hook_fs::{Call, CallOn, HookFs, Hooks};

/// Which calls count toward the one [`FaultyDisk`] fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Counting {
    /// Every mutation: a write, fsync, truncate, create, rename or remove.
    #[default]
    EveryMutation,
    /// Only file and directory fsyncs.
    SyncsOnly,
}

/// What [`FaultyDisk`] does with the mutations after the one it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AfterFailure {
    /// They go ahead: one failed call, as a transient error.
    #[default]
    Proceed,
    /// They fail too, with EIO: the disk is gone, as a crash at that moment
    /// would leave the files once every earlier call had reached them.
    FailEveryLater,
}

/// A file system that counts operations and can fail the Nth counted mutation (a
/// write, fsync, truncate, create, rename or remove) with EIO, once or from then
/// on ([`Counting`], [`AfterFailure`]).
#[derive(Debug, Default)]
pub struct FaultyDisk {
    /// File and directory fsyncs made.
    pub syncs: AtomicU64,
    /// Bytes read from segment files.
    pub segment_bytes_read: AtomicU64,
    /// Files whose cached pages were dropped, in order.
    pub dropped_caches: Mutex<Vec<PathBuf>>,
    /// Mutations counted toward `fail_at` so far.
    pub mutations: AtomicU64,
    /// Fail the mutation with this number (1-based); 0 = never.
    pub fail_at: AtomicU64,
    /// Which calls count toward `fail_at`.
    pub counting: Counting,
    /// What happens to the mutations after the failed one.
    pub after_failure: AfterFailure,
    /// Extra time each fsync takes (none by default): on tmpfs an fsync returns at
    /// once, so a test that counts how many fsyncs group commit shares gives every
    /// fsync a real disk's latency.
    pub sync_delay: Duration,
    failed: AtomicBool,
}

impl FaultyDisk {
    /// Fails counted call `n` (1-based; 0: none until [`FaultyDisk::fail_after`]
    /// says which), and after it does as `after_failure` says.
    ///
    /// ```
    /// use flashlog_testkit::faulty_disk::{AfterFailure, Counting, FaultyDisk};
    /// use flashlog_testkit::faulty_disk_options;
    /// use flashlog_wal::{Op, Wal};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let fs = FaultyDisk::failing(0, Counting::SyncsOnly, AfterFailure::Proceed);
    /// let wal = Wal::open(dir.path(), faulty_disk_options(&fs))?;
    /// fs.fail_after(1); // the next fsync fails
    /// assert!(wal.append(Op::Put, b"k", b"v").is_err());
    /// assert!(fs.failed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn failing(n: u64, counting: Counting, after_failure: AfterFailure) -> Arc<FaultyDisk> {
        Arc::new(FaultyDisk {
            fail_at: AtomicU64::new(n),
            counting,
            after_failure,
            ..FaultyDisk::default()
        })
    }

    /// Fails nothing; every fsync takes at least `delay` (see [`FaultyDisk::sync_delay`]).
    pub fn with_sync_delay(delay: Duration) -> Arc<FaultyDisk> {
        Arc::new(FaultyDisk {
            sync_delay: delay,
            ..FaultyDisk::default()
        })
    }

    /// Fails nothing until [`FaultyDisk::fail_after`] says which mutation; then that
    /// one and every one after it, as a crash at that moment would.
    pub fn sticky() -> Arc<FaultyDisk> {
        FaultyDisk::failing(0, Counting::EveryMutation, AfterFailure::FailEveryLater)
    }

    /// The former form of [`FaultyDisk::failing`], with `bool`s for
    /// [`Counting::SyncsOnly`] and [`AfterFailure::FailEveryLater`]. Kept only for
    /// the unit test in `crates/flashlog-cli/src/cmd/stats.rs`, which the change
    /// that brought the enums could not edit; remove it once that test calls
    /// `failing(0, Counting::SyncsOnly, AfterFailure::Proceed)`.
    #[doc(hidden)]
    pub fn failing_at(n: u64, only_syncs: bool, sticky: bool) -> Arc<FaultyDisk> {
        let counting = if only_syncs {
            Counting::SyncsOnly
        } else {
            Counting::EveryMutation
        };
        let after_failure = if sticky {
            AfterFailure::FailEveryLater
        } else {
            AfterFailure::Proceed
        };
        FaultyDisk::failing(n, counting, after_failure)
    }

    /// Makes the `n`th counted mutation from now the one that fails.
    pub fn fail_after(&self, n: u64) {
        let now = self.mutations.load(Ordering::SeqCst);
        self.fail_at.store(now + n, Ordering::SeqCst);
    }

    /// Whether a mutation has failed.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    fn check(&self, is_sync: bool) -> io::Result<()> {
        if is_sync {
            self.syncs.fetch_add(1, Ordering::SeqCst);
            if !self.sync_delay.is_zero() {
                std::thread::sleep(self.sync_delay);
            }
        }
        if self.after_failure == AfterFailure::FailEveryLater && self.failed.load(Ordering::SeqCst)
        {
            return Err(io::Error::from_raw_os_error(5));
        }
        if self.counting == Counting::SyncsOnly && !is_sync {
            return Ok(());
        }
        let n = self.mutations.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_at.load(Ordering::SeqCst) {
            self.failed.store(true, Ordering::SeqCst);
            return Err(io::Error::from_raw_os_error(5));
        }
        Ok(())
    }
}

impl Hooks for FaultyDisk {
    fn before(&self, on: &CallOn<'_>) -> io::Result<()> {
        match on.call {
            Call::WriteAt | Call::SetLen | Call::RemoveFile | Call::Rename | Call::Create => {
                self.check(false)
            }
            Call::SyncData | Call::SyncDir => self.check(true),
            Call::DropCache => {
                self.dropped_caches
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner())
                    .push(on.path.to_path_buf());
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn after_read(&self, path: &Path, bytes: usize) {
        let name = path.file_name().map(|name| name.to_string_lossy());
        if name.is_some_and(|name| name.starts_with("segment-")) {
            self.segment_bytes_read
                .fetch_add(bytes as u64, Ordering::Relaxed);
        }
    }
}

/// The handle given to `Options::fs`: the real disk behind a [`FaultyDisk`], whose
/// counters the test keeps.
pub type FaultyDiskFs = HookFs<FaultyDisk>;

impl HookFs<FaultyDisk> {
    /// The real disk behind `fs`.
    pub fn on_disk(fs: &Arc<FaultyDisk>) -> FaultyDiskFs {
        HookFs::wrap(Arc::new(StdFs), Arc::clone(fs))
    }
}

/// Options whose file system is the real disk behind `fs`.
pub fn faulty_disk_options(fs: &Arc<FaultyDisk>) -> Options {
    Options::default().fs(Arc::new(FaultyDiskFs::on_disk(fs)))
}
