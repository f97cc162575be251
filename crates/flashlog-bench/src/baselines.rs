//! What the disk can do without a log library, measured in the same run: a plain
//! write+fdatasync loop per thread (on growing files and on preallocated, already
//! written ones), the ideal group commit, the first version's group commit with a
//! syncer thread, and the disk's sequential write bandwidth.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::system::{BenchResult, Durability, Log};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
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
const POOL_FILL: u8 = 0xa5;

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
}

fn open_rw(path: &Path) -> std::io::Result<File> {
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

/// What a writer waiting in the ideal group commit is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// Its bytes are queued; keep waiting.
    Waiting,
    /// Its bytes are durable.
    Done,
    /// It leads the next group.
    Lead,
    /// The group's write or fdatasync failed.
    Failed,
}

/// A writer's own parking place: only the leader that owns its bytes wakes it.
struct Slot {
    turn: Mutex<Turn>,
    wake: Condvar,
}

impl Slot {
    fn set(&self, turn: Turn) {
        *lock(&self.turn) = turn;
        self.wake.notify_one();
    }
}

struct Queue {
    bytes: Vec<u8>,
    writers: Vec<Arc<Slot>>,
    leading: bool,
    offset: u64,
}

/// The ideal group commit, the bound for any group commit on this disk: writers queue
/// their bytes; one leader at a time takes everything queued, writes it with one
/// `pwrite` into a preallocated, already written file and calls `fdatasync` once,
/// then wakes only that group's writers (each on its own condvar) and hands
/// leadership to the first writer that queued meanwhile. No encoding, no CRC, no
/// index, no rotation.
pub struct IdealGroupCommit {
    queue: Mutex<Queue>,
    file: File,
    size: u64,
    slots: Mutex<Vec<Arc<Slot>>>,
}

impl IdealGroupCommit {
    /// Opens the pool's shared preallocated file.
    pub fn open(pool: &PreallocPool) -> BenchResult<IdealGroupCommit> {
        Ok(IdealGroupCommit {
            queue: Mutex::new(Queue {
                bytes: Vec::new(),
                writers: Vec::new(),
                leading: false,
                offset: 0,
            }),
            file: open_rw(&pool.shared)?,
            size: pool.shared_bytes,
            slots: Mutex::new(Vec::new()),
        })
    }

    fn slot(&self, thread: usize) -> Arc<Slot> {
        let mut slots = lock(&self.slots);
        while slots.len() <= thread {
            slots.push(Arc::new(Slot {
                turn: Mutex::new(Turn::Waiting),
                wake: Condvar::new(),
            }));
        }
        Arc::clone(&slots[thread])
    }

    fn commit(&self, thread: usize, payloads: &[&[u8]]) -> BenchResult<()> {
        let me = self.slot(thread);
        *lock(&me.turn) = Turn::Waiting;
        let mut queue = lock(&self.queue);
        for payload in payloads {
            queue.bytes.extend_from_slice(payload);
        }
        queue.writers.push(Arc::clone(&me));
        if queue.leading {
            drop(queue);
            let mut turn = lock(&me.turn);
            while *turn == Turn::Waiting {
                turn = me.wake.wait(turn).unwrap_or_else(PoisonError::into_inner);
            }
            match *turn {
                Turn::Done => return Ok(()),
                Turn::Failed => return Err("the group's write failed".into()),
                _ => {}
            }
            drop(turn);
            queue = lock(&self.queue);
        } else {
            queue.leading = true;
        }
        // Leading: take the whole queue, write and sync it outside the lock.
        let bytes = std::mem::take(&mut queue.bytes);
        let group = std::mem::take(&mut queue.writers);
        if queue.offset + bytes.len() as u64 > self.size {
            queue.offset = 0;
        }
        let offset = queue.offset;
        queue.offset += bytes.len() as u64;
        drop(queue);
        let result = self
            .file
            .write_all_at(&bytes, offset)
            .and_then(|()| self.file.sync_data());
        let next = {
            let mut queue = lock(&self.queue);
            let next = queue.writers.first().cloned();
            queue.leading = next.is_some();
            next
        };
        let outcome = if result.is_ok() {
            Turn::Done
        } else {
            Turn::Failed
        };
        for writer in &group {
            if !Arc::ptr_eq(writer, &me) {
                writer.set(outcome);
            }
        }
        if let Some(next) = next {
            next.set(Turn::Lead);
        }
        result?;
        Ok(())
    }
}

impl Log for IdealGroupCommit {
    fn append(&self, thread: usize, payload: &[u8]) -> BenchResult<()> {
        self.commit(thread, &[payload])
    }

    fn append_batch(&self, thread: usize, payloads: &[&[u8]]) -> BenchResult<()> {
        self.commit(thread, payloads)
    }

    fn sync(&self) -> BenchResult<()> {
        self.file.sync_data()?;
        Ok(())
    }
}

#[derive(Default)]
struct SyncerQueue {
    bytes: Vec<u8>,
    enqueued: u64,
    synced: u64,
    stop: bool,
    failed: bool,
}

/// The queue, the condvar the syncer waits on for work, and the one every writer
/// waits on for its bytes to be synced.
type SyncerShared = (Mutex<SyncerQueue>, Condvar, Condvar);

/// The first version's group commit (measured beside flashlog's in the README's
/// "Against the core's own baselines" figures): writers queue their bytes; one
/// dedicated syncer thread writes everything queued to the end of a new, growing file
/// with one write and one fdatasync, then wakes every waiting writer with
/// `notify_all`. Not a bound: on 2 cores waking every waiter per group costs more
/// than the fdatasync (see [`IdealGroupCommit`]).
pub struct SyncerGroupCommit {
    shared: Arc<SyncerShared>,
    syncer: Option<JoinHandle<std::io::Result<()>>>,
}

impl SyncerGroupCommit {
    /// Creates `syncer.bin` in `dir` and starts the syncer thread.
    pub fn open(dir: &Path) -> BenchResult<SyncerGroupCommit> {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(dir.join("syncer.bin"))?;
        let shared: Arc<SyncerShared> = Arc::default();
        let syncer = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || -> std::io::Result<()> {
                let (queue, work, done) = &*shared;
                let mut spare = Vec::new();
                loop {
                    let mut q = lock(queue);
                    while q.bytes.is_empty() && !q.stop {
                        q = work.wait(q).unwrap_or_else(PoisonError::into_inner);
                    }
                    if q.stop {
                        return Ok(());
                    }
                    std::mem::swap(&mut q.bytes, &mut spare);
                    let through = q.enqueued;
                    drop(q);
                    let result = file.write_all(&spare).and_then(|()| file.sync_data());
                    spare.clear();
                    let mut q = lock(queue);
                    if result.is_err() {
                        q.failed = true;
                    }
                    q.synced = through;
                    done.notify_all();
                    drop(q);
                    result?;
                }
            })
        };
        Ok(SyncerGroupCommit {
            shared,
            syncer: Some(syncer),
        })
    }

    fn commit(&self, payloads: &[&[u8]]) -> BenchResult<()> {
        let (queue, work, done) = &*self.shared;
        let mut q = lock(queue);
        for payload in payloads {
            q.bytes.extend_from_slice(payload);
        }
        q.enqueued += 1;
        let mine = q.enqueued;
        work.notify_one();
        while q.synced < mine && !q.failed {
            q = done.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
        if q.failed {
            return Err("the syncer thread's write failed".into());
        }
        Ok(())
    }
}

impl Log for SyncerGroupCommit {
    fn append(&self, _thread: usize, payload: &[u8]) -> BenchResult<()> {
        self.commit(&[payload])
    }

    fn append_batch(&self, _thread: usize, payloads: &[&[u8]]) -> BenchResult<()> {
        self.commit(payloads)
    }

    fn sync(&self) -> BenchResult<()> {
        Ok(())
    }
}

impl Drop for SyncerGroupCommit {
    fn drop(&mut self) {
        let (queue, work, _) = &*self.shared;
        lock(queue).stop = true;
        work.notify_all();
        if let Some(syncer) = self.syncer.take() {
            let _ = syncer.join();
        }
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
    fn ideal_group_commit_writes_every_entry_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pool = PreallocPool::create(dir.path(), 1, 4096, 1 << 20).expect("pool");
        let log = IdealGroupCommit::open(&pool).expect("open");
        let threads = 8;
        let per_thread = 50;
        std::thread::scope(|scope| {
            for t in 0..threads {
                let log = &log;
                scope.spawn(move || {
                    for _ in 0..per_thread {
                        log.append(t, &[t as u8 + 1; 16]).expect("append");
                    }
                });
            }
        });
        let bytes = std::fs::read(&pool.shared).expect("read");
        let written = &bytes[..threads * per_thread * 16];
        assert!(written.iter().all(|&b| b != POOL_FILL));
        assert!(bytes[written.len()..].iter().all(|&b| b == POOL_FILL));
        for t in 0..threads {
            let count = written.iter().filter(|&&b| b == t as u8 + 1).count();
            assert_eq!(count, per_thread * 16);
        }
    }

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

    #[test]
    fn syncer_group_commit_writes_every_entry_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = SyncerGroupCommit::open(dir.path()).expect("open");
        std::thread::scope(|scope| {
            for t in 0..4u8 {
                let log = &log;
                scope.spawn(move || {
                    for _ in 0..20 {
                        log.append(t.into(), &[t + 1; 8]).expect("append");
                    }
                });
            }
        });
        log.append_batch(0, &[&[9; 8], &[9; 8]]).expect("batch");
        drop(log);
        let bytes = std::fs::read(dir.path().join("syncer.bin")).expect("read");
        assert_eq!(bytes.len(), 4 * 20 * 8 + 16);
        for t in 1..=4u8 {
            assert_eq!(bytes.iter().filter(|&&b| b == t).count(), 20 * 8);
        }
    }
}
