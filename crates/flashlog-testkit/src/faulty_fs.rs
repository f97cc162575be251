//! A file system on the real disk that counts calls and can fail the Nth mutating
//! one: for tests that need real files but a chosen failure, or want to know how
//! many fsyncs or segment reads an operation made. ([`SimFs`](crate::SimFs) is the
//! simulated one, with crashes.)

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flashlog_wal::fs::{Fs, FsFile, OpenMode, StdFs};
use flashlog_wal::Options;

/// A file system that counts operations and can fail the Nth mutating one (a write,
/// fsync, truncate, create, rename or remove) with EIO, once or from then on. After a
/// failure, the files are as a crash at that moment would leave them when every
/// earlier operation had reached the disk.
#[derive(Debug, Default)]
pub struct FaultyFs {
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
    /// Only fsyncs count toward `fail_at`.
    pub only_syncs: bool,
    /// After the first failure, fail every later mutation too.
    pub sticky: bool,
    /// Extra time each fsync takes (none by default): on tmpfs an fsync returns at
    /// once, so a test that counts how many fsyncs group commit shares gives every
    /// fsync a real disk's latency.
    pub sync_delay: Duration,
    failed: AtomicBool,
}

impl FaultyFs {
    /// Fails mutation `n` (1-based; counting only fsyncs if `only_syncs`), and with
    /// `sticky` every mutation after it.
    pub fn failing_at(n: u64, only_syncs: bool, sticky: bool) -> Arc<FaultyFs> {
        Arc::new(FaultyFs {
            fail_at: AtomicU64::new(n),
            only_syncs,
            sticky,
            ..FaultyFs::default()
        })
    }

    /// Fails nothing; every fsync takes at least `delay` (see [`FaultyFs::sync_delay`]).
    pub fn with_sync_delay(delay: Duration) -> Arc<FaultyFs> {
        Arc::new(FaultyFs {
            sync_delay: delay,
            ..FaultyFs::default()
        })
    }

    /// Fails nothing until [`FaultyFs::fail_after`] says which mutation; then that
    /// one and every one after it, as a crash at that moment would.
    pub fn sticky() -> Arc<FaultyFs> {
        FaultyFs::failing_at(0, false, true)
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
        if self.sticky && self.failed.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(5));
        }
        if self.only_syncs && !is_sync {
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

#[derive(Debug)]
struct FaultyFile {
    inner: Box<dyn FsFile>,
    fs: Arc<FaultyFs>,
    is_segment: bool,
    path: PathBuf,
}

impl FsFile for FaultyFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let read = self.inner.read_at(buf, offset)?;
        if self.is_segment {
            self.fs
                .segment_bytes_read
                .fetch_add(read as u64, Ordering::Relaxed);
        }
        Ok(read)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.fs.check(false)?;
        self.inner.write_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.fs.check(true)?;
        self.inner.sync_data()
    }
    fn drop_cache(&self) -> io::Result<()> {
        self.fs
            .dropped_caches
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .push(self.path.clone());
        self.inner.drop_cache()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.fs.check(false)?;
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

/// The handle given to `Options::fs`: shares the counters with the test.
#[derive(Debug, Clone)]
pub struct FaultyFsHandle(pub Arc<FaultyFs>);

impl Fs for FaultyFsHandle {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFs.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        StdFs.list_dir(path)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn FsFile>> {
        if matches!(mode, OpenMode::CreateNew | OpenMode::CreateTruncate) {
            self.0.check(false)?;
        }
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
        Ok(Box::new(FaultyFile {
            inner: StdFs.open(path, mode)?,
            fs: Arc::clone(&self.0),
            is_segment: name.is_some_and(|name| name.starts_with("segment-")),
            path: path.to_path_buf(),
        }))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.0.check(false)?;
        StdFs.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.check(false)?;
        StdFs.rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.0.check(true)?;
        StdFs.sync_dir(path)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn std::fmt::Debug + Send + Sync>> {
        StdFs.lock(path)
    }
}

/// Options whose file system is `fs`.
pub fn faulty_options(fs: &Arc<FaultyFs>) -> Options {
    Options::default().fs(Arc::new(FaultyFsHandle(Arc::clone(fs))))
}
