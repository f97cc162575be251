//! Helpers shared by the tests: a model of the contents, and a failing file system.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use flashlog_kv::{AutoCompact, Db, DbOptions};
use flashlog_wal::fs::{Fs, FsFile, OpenMode, StdFs};
use flashlog_wal::Options;

pub type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Options with small segments and no automatic compaction.
pub fn small(segment: u64) -> DbOptions {
    DbOptions::default()
        .wal(Options::default().max_segment_size(segment))
        .auto_compact(AutoCompact::Never)
}

/// Every key and value of the store, through `scan` (and `get`, checked equal).
pub fn contents(db: &Db) -> Model {
    let all: Model = db
        .scan(..)
        .map(|kv| kv.unwrap())
        .collect::<BTreeMap<_, _>>();
    for (key, value) in &all {
        assert_eq!(db.get(key).unwrap().as_ref(), Some(value));
    }
    assert_eq!(db.len(), all.len());
    all
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// A file system that fails the Nth mutating operation (write, fsync, truncate,
/// create, rename, remove) with EIO and every one after it, as a crash at that
/// moment would: what came before reached the disk, nothing after does.
#[derive(Debug, Default)]
pub struct FaultyFs {
    pub mutations: AtomicU64,
    /// Fail the mutation with this number (1-based); 0 = never.
    pub fail_at: AtomicU64,
    pub failed: AtomicBool,
}

impl FaultyFs {
    fn check(&self) -> io::Result<()> {
        if self.failed.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(5));
        }
        let n = self.mutations.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_at.load(Ordering::SeqCst) {
            self.failed.store(true, Ordering::SeqCst);
            return Err(io::Error::from_raw_os_error(5));
        }
        Ok(())
    }

    /// Fails the `n`th mutation from now on.
    pub fn fail_after(&self, n: u64) {
        let now = self.mutations.load(Ordering::SeqCst);
        self.fail_at.store(now + n, Ordering::SeqCst);
    }
}

#[derive(Debug)]
struct FaultyFile {
    inner: Box<dyn FsFile>,
    fs: Arc<FaultyFs>,
}

impl FsFile for FaultyFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.fs.check()?;
        self.inner.write_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.fs.check()?;
        self.inner.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.fs.check()?;
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

#[derive(Debug, Clone)]
pub struct FaultyHandle(pub Arc<FaultyFs>);

impl Fs for FaultyHandle {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFs.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        StdFs.list_dir(path)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn FsFile>> {
        if matches!(mode, OpenMode::CreateNew | OpenMode::CreateTruncate) {
            self.0.check()?;
        }
        Ok(Box::new(FaultyFile {
            inner: StdFs.open(path, mode)?,
            fs: Arc::clone(&self.0),
        }))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.0.check()?;
        StdFs.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.check()?;
        StdFs.rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.0.check()?;
        StdFs.sync_dir(path)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn std::fmt::Debug + Send + Sync>> {
        StdFs.lock(path)
    }
}
