//! Group commits without a log library: the ideal one (the bound for any group
//! commit on this disk) and the first version's, with a dedicated syncer thread.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::baselines::{lock, open_rw, PreallocPool};
use crate::system::{BenchResult, Log};

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
            file: open_rw(pool.shared().0)?,
            size: pool.shared().1,
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
        // Leading: take the whole queue, write and sync it outside the lock. The offset
        // read here stays ours after the lock is released: `leading` stays set until
        // this leader hands over, so no other writer reserves file space meanwhile.
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
                    // Only this thread writes the file, so the bytes taken here are
                    // written in queue order after the lock is released.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baselines::POOL_FILL;

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
        let bytes = std::fs::read(pool.shared().0).expect("read");
        let written = &bytes[..threads * per_thread * 16];
        assert!(written.iter().all(|&b| b != POOL_FILL));
        assert!(bytes[written.len()..].iter().all(|&b| b == POOL_FILL));
        for t in 0..threads {
            let count = written.iter().filter(|&&b| b == t as u8 + 1).count();
            assert_eq!(count, per_thread * 16);
        }
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
