//! Helpers shared by the integration tests.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use flashlog_wal::fs::{Fs, FsFile, OpenMode, StdFs};
use flashlog_wal::{Entry, Op, Options, Wal};
use tempfile::TempDir;

/// `(op, key, value)` of an entry, for comparing logs.
pub type Record = (Op, Vec<u8>, Vec<u8>);

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A fresh temporary copy of a Go-written fixture log (never opened in place).
pub fn fixture_copy(name: &str) -> TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(fixtures().join(name).join("wal")).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), tmp.path().join(entry.file_name())).unwrap();
    }
    tmp
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex {text:?}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Parses an `expected*.txt` of the fixtures: `OP KEYHEX VALUEHEX` per line.
pub fn expected(name: &str, file: &str) -> Vec<Record> {
    let text = fs::read_to_string(fixtures().join(name).join(file)).unwrap();
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let mut fields = line.split(' ');
            let op = match fields.next().unwrap() {
                "0" => Op::Put,
                "1" => Op::Delete,
                other => panic!("bad op {other}"),
            };
            let key = unhex(fields.next().unwrap_or(""));
            let value = unhex(fields.next().unwrap_or(""));
            (op, key, value)
        })
        .collect()
}

pub fn record(entry: &Entry) -> Record {
    (entry.op(), entry.key().to_vec(), entry.value().to_vec())
}

/// Every entry of the log, in order, checking that sequence numbers count up.
pub fn read_all(wal: &Wal) -> Vec<Record> {
    let mut seq = wal.first_seq();
    wal.iter_from(seq)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            assert_eq!(entry.seq(), seq);
            seq += 1;
            record(&entry)
        })
        .collect()
}

/// Segment files of a directory, sorted by name, with their bytes.
pub fn segment_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with("segment-"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

pub fn open(dir: &Path, options: Options) -> Wal {
    Wal::open(dir, options).unwrap()
}

/// `count` distinct records with varied sizes, some deletes and empty values.
pub fn sample_records(count: usize) -> Vec<Record> {
    (0..count)
        .map(|i| {
            let op = if i % 7 == 3 { Op::Delete } else { Op::Put };
            let key = format!("key-{i}").into_bytes();
            let value = if op == Op::Delete {
                Vec::new()
            } else {
                vec![(i % 251) as u8; i % 40]
            };
            (op, key, value)
        })
        .collect()
}

pub fn append_all(wal: &Wal, records: &[Record]) {
    for (op, key, value) in records {
        wal.append(*op, key, value).unwrap();
    }
}

/// A file system that counts operations and can fail the Nth mutating one (a write,
/// fsync, truncate, create, rename or remove) with EIO, once or from then on. After a
/// failure, the files are as a crash at that moment would leave them when every
/// earlier operation had reached the disk.
#[derive(Debug, Default)]
pub struct FaultyFs {
    pub syncs: AtomicU64,
    /// Bytes read from segment files.
    pub segment_bytes_read: AtomicU64,
    /// Files whose cached pages were dropped, in order.
    pub dropped_caches: std::sync::Mutex<Vec<PathBuf>>,
    pub mutations: AtomicU64,
    /// Fail the mutation with this number (1-based); 0 = never.
    pub fail_at: AtomicU64,
    /// Only fsyncs count toward `fail_at`.
    pub only_syncs: bool,
    /// After the first failure, fail every later mutation too.
    pub sticky: bool,
    failed: std::sync::atomic::AtomicBool,
}

impl FaultyFs {
    pub fn failing_at(n: u64, only_syncs: bool, sticky: bool) -> Arc<FaultyFs> {
        Arc::new(FaultyFs {
            fail_at: AtomicU64::new(n),
            only_syncs,
            sticky,
            ..FaultyFs::default()
        })
    }

    fn check(&self, is_sync: bool) -> io::Result<()> {
        if is_sync {
            self.syncs.fetch_add(1, Ordering::SeqCst);
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
            .unwrap()
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

pub fn faulty_options(fs: &Arc<FaultyFs>) -> Options {
    Options::default().fs(Arc::new(FaultyFsHandle(Arc::clone(fs))))
}
