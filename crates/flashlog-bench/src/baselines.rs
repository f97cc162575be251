//! What the disk can do without a log library, measured in the same run: a plain
//! write+fdatasync loop per thread (on growing files and on preallocated, already
//! written ones), the disk's sequential write bandwidth, and the preallocated files
//! these and the group commits (`group_commit.rs`) write into.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::system::{BenchResult, Durability, Log};

/// Locks `mutex`, ignoring poisoning (a panicking writer fails its own run).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Preallocated, already written (filled with `POOL_FILL` and fsynced) files, made once per
/// invocation and reused by every preallocated baseline: one per thread for the
/// plain loops, and one for the ideal group commit. Writes wrap around inside a
/// file, so no fdatasync ever commits a size change.
pub struct PreallocPool {
    dir: tempfile::TempDir,
    per_thread: Vec<PathBuf>,
    per_thread_bytes: u64,
    shared: PathBuf,
    shared_bytes: u64,
}

/// What the pool's files are filled with: not zeros, so that no layer below the
/// file system (a virtual disk detecting zero writes) can leave them unallocated.
pub const POOL_FILL: u8 = 0xa5;

fn write_filled(path: &Path, bytes: u64, fill: u8) -> std::io::Result<()> {
    let mut file = File::create(path)?;
    let zeros = vec![fill; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    file.sync_all()
}

impl PreallocPool {
    /// Writes `threads` files of `per_thread_bytes` and one of `shared_bytes` under `dir`.
    pub fn create(
        dir: &Path,
        threads: usize,
        per_thread_bytes: u64,
        shared_bytes: u64,
    ) -> std::io::Result<PreallocPool> {
        let dir = tempfile::Builder::new()
            .prefix("flashlog-bench-prealloc-")
            .tempdir_in(dir)?;
        let mut per_thread = Vec::new();
        for t in 0..threads {
            let path = dir.path().join(format!("thread-{t}.bin"));
            write_filled(&path, per_thread_bytes, POOL_FILL)?;
            per_thread.push(path);
        }
        let shared = dir.path().join("shared.bin");
        write_filled(&shared, shared_bytes, POOL_FILL)?;
        File::open(dir.path())?.sync_all()?;
        Ok(PreallocPool {
            dir,
            per_thread,
            per_thread_bytes,
            shared,
            shared_bytes,
        })
    }

    /// Where the pool lives.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The file shared by all threads (the ideal group commit's) and its size.
    pub fn shared(&self) -> (&Path, u64) {
        (&self.shared, self.shared_bytes)
    }
}

/// Opens an existing file for reading and writing.
pub fn open_rw(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().read(true).write(true).open(path)
}

/// Where a file-level baseline writes next: the end of a growing file, or a
/// wrapping offset inside a preallocated one.
struct Cursor {
    file: File,
    offset: u64,
    /// `Some(size)` for a preallocated file of `size` bytes.
    wrap: Option<u64>,
}

impl Cursor {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if let Some(size) = self.wrap {
            if self.offset + bytes.len() as u64 > size {
                self.offset = 0;
            }
        }
        self.file.write_all_at(bytes, self.offset)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }
}

/// The plain loop: each thread owns a file and, per append, writes the entry's bytes
/// and (durable) fdatasyncs: one fsync per entry, no sharing.
pub struct PlainLoop {
    cursors: Vec<Mutex<Cursor>>,
    durability: Durability,
}

impl PlainLoop {
    /// One new, growing file per thread under `dir`.
    pub fn appending(dir: &Path, threads: usize, durability: Durability) -> BenchResult<PlainLoop> {
        let mut cursors = Vec::new();
        for t in 0..threads {
            let file = OpenOptions::new()
                .create(true)
                .truncate(true)
                .read(true)
                .write(true)
                .open(dir.join(format!("plain-{t}.bin")))?;
            cursors.push(Mutex::new(Cursor {
                file,
                offset: 0,
                wrap: None,
            }));
        }
        Ok(PlainLoop {
            cursors,
            durability,
        })
    }

    /// The pool's preallocated files, one per thread.
    pub fn preallocated(
        pool: &PreallocPool,
        threads: usize,
        durability: Durability,
    ) -> BenchResult<PlainLoop> {
        if threads > pool.per_thread.len() {
            return Err(format!("the pool has files for {} threads", pool.per_thread.len()).into());
        }
        let mut cursors = Vec::new();
        for path in &pool.per_thread[..threads] {
            cursors.push(Mutex::new(Cursor {
                file: open_rw(path)?,
                offset: 0,
                wrap: Some(pool.per_thread_bytes),
            }));
        }
        Ok(PlainLoop {
            cursors,
            durability,
        })
    }
}

impl Log for PlainLoop {
    fn append(&self, thread: usize, payload: &[u8]) -> BenchResult<()> {
        let mut cursor = lock(&self.cursors[thread]);
        cursor.write(payload)?;
        if self.durability == Durability::Durable {
            cursor.file.sync_data()?;
        }
        Ok(())
    }

    fn append_batch(&self, thread: usize, payloads: &[&[u8]]) -> BenchResult<()> {
        let mut bytes = Vec::with_capacity(payloads.iter().map(|p| p.len()).sum());
        for payload in payloads {
            bytes.extend_from_slice(payload);
        }
        let mut cursor = lock(&self.cursors[thread]);
        cursor.write(&bytes)?;
        if self.durability == Durability::Durable {
            cursor.file.sync_data()?;
        }
        Ok(())
    }

    fn sync(&self) -> BenchResult<()> {
        for cursor in &self.cursors {
            lock(cursor).file.sync_data()?;
        }
        Ok(())
    }
}

/// The disk's sequential write bandwidth, measured two ways, bytes per second:
/// `bytes` written in 1 MiB writes to a new file followed by one fdatasync
/// (`streamed`), and 4 MiB writes each followed by fdatasync into the pool's
/// preallocated file (`durable_chunks`, the shape of large group commits).
#[derive(Debug, Clone, Copy, Default)]
pub struct Sequential {
    /// 1 MiB writes to a new file, one fdatasync at the end.
    pub streamed: f64,
    /// 4 MiB write + fdatasync, repeated, into a preallocated file.
    pub durable_chunks: f64,
}

impl Sequential {
    /// The better of the two: the bandwidth the disk is known to reach.
    pub fn best(&self) -> f64 {
        self.streamed.max(self.durable_chunks)
    }
}

/// Measures [`Sequential`] with `bytes` per method.
pub fn sequential_write(dir: &Path, pool: &PreallocPool, bytes: u64) -> BenchResult<Sequential> {
    let path = dir.join("sequential.bin");
    let mut file = File::create(&path)?;
    let chunk = vec![0xa5u8; 4 << 20];
    let start = Instant::now();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(1 << 20) as usize;
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    file.sync_data()?;
    let streamed = bytes as f64 / start.elapsed().as_secs_f64().max(1e-9);
    drop(file);
    std::fs::remove_file(&path)?;

    let file = open_rw(&pool.shared)?;
    let size = pool.shared_bytes.max(chunk.len() as u64);
    let start = Instant::now();
    let mut offset = 0u64;
    let mut done = 0u64;
    while done < bytes {
        if offset + chunk.len() as u64 > size {
            offset = 0;
        }
        file.write_all_at(&chunk, offset)?;
        file.sync_data()?;
        offset += chunk.len() as u64;
        done += chunk.len() as u64;
    }
    let durable_chunks = done as f64 / start.elapsed().as_secs_f64().max(1e-9);
    Ok(Sequential {
        streamed,
        durable_chunks,
    })
}

/// Reads every file under `dir` whose name ends in one of `extensions` (all files
/// when empty), returning bytes read and the time it took.
pub fn read_files(dir: &Path, extensions: &[&str]) -> BenchResult<(u64, Duration)> {
    let start = Instant::now();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.to_string_lossy();
            if !extensions.is_empty() && !extensions.iter().any(|e| name.ends_with(e)) {
                continue;
            }
            let mut file = File::open(&path)?;
            loop {
                let n = std::io::Read::read(&mut file, &mut buf)?;
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
        }
    }
    Ok((total, start.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preallocated_plain_loop_wraps_inside_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pool = PreallocPool::create(dir.path(), 2, 100, 100).expect("pool");
        let log = PlainLoop::preallocated(&pool, 2, Durability::Durable).expect("open");
        for _ in 0..10 {
            log.append(1, &[7; 30]).expect("append");
        }
        let len = std::fs::metadata(&pool.per_thread[1]).expect("stat").len();
        assert_eq!(len, 100);
    }
}
