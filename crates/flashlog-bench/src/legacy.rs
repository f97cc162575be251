//! The first version's baselines, kept for the `core` mode: a plain write+fdatasync
//! loop, and a group commit with a dedicated syncer thread that wakes every waiter.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::stats::RunResult;

/// One thread: write `entry_len` bytes, fdatasync, repeat, on a file that grows
/// (each fdatasync also commits the new file size) or on a preallocated, already
/// written file (each fdatasync commits data only).
pub fn plain_loop(
    dir: &Path,
    entry_len: usize,
    run_time: Duration,
    preallocated: bool,
) -> std::io::Result<RunResult> {
    let path = dir.join(if preallocated {
        "plain-prealloc.bin"
    } else {
        "plain.bin"
    });
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    let buf = vec![0x5au8; entry_len];
    if preallocated {
        // Enough for the run at several times the expected rate, written once.
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            file.write_all(&zeros)?;
        }
        file.sync_all()?;
    }
    let mut latencies = Vec::new();
    let start = Instant::now();
    let mut offset = 0u64;
    while start.elapsed() < run_time {
        let t0 = Instant::now();
        if preallocated {
            file.write_all_at(&buf, offset % (256 << 20))?;
        } else {
            file.write_all(&buf)?;
        }
        file.sync_data()?;
        latencies.push(t0.elapsed().as_nanos() as u64);
        offset += entry_len as u64;
    }
    let elapsed = start.elapsed();
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(RunResult::new(elapsed, vec![latencies]))
}

#[derive(Default)]
struct Queue {
    bytes: Vec<u8>,
    enqueued: u64,
    synced: u64,
    stop: bool,
    failed: bool,
}

/// A group commit with a dedicated syncer: `threads` writers queue their bytes; one dedicated
/// thread writes everything queued with one write and one fdatasync, then wakes
/// every writer (notify_all). Not the ideal bound: see `baselines::IdealGroupCommit`.
pub fn syncer_thread_group_commit(
    dir: &Path,
    threads: usize,
    entry_len: usize,
    run_time: Duration,
) -> std::io::Result<RunResult> {
    let path = dir.join("ideal.bin");
    let mut file: File = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    let shared = Arc::new((Mutex::new(Queue::default()), Condvar::new(), Condvar::new()));
    let syncer = {
        let shared = Arc::clone(&shared);
        thread::spawn(move || -> std::io::Result<()> {
            let (queue, work, done) = &*shared;
            let mut spare = Vec::new();
            loop {
                let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
                while q.bytes.is_empty() && !q.stop {
                    q = work.wait(q).unwrap_or_else(|p| p.into_inner());
                }
                if q.stop {
                    return Ok(());
                }
                std::mem::swap(&mut q.bytes, &mut spare);
                let through = q.enqueued;
                drop(q);
                let result = file.write_all(&spare).and_then(|()| file.sync_data());
                spare.clear();
                let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
                if result.is_err() {
                    q.failed = true;
                }
                q.synced = through;
                done.notify_all();
                result?;
            }
        })
    };
    let start = Instant::now();
    let writers: Vec<_> = (0..threads)
        .map(|_| {
            let shared = Arc::clone(&shared);
            thread::spawn(move || {
                let (queue, work, done) = &*shared;
                let entry = vec![0x5au8; entry_len];
                let mut latencies = Vec::new();
                while start.elapsed() < run_time {
                    let t0 = Instant::now();
                    let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
                    q.bytes.extend_from_slice(&entry);
                    q.enqueued += 1;
                    let mine = q.enqueued;
                    work.notify_one();
                    while q.synced < mine && !q.failed {
                        q = done.wait(q).unwrap_or_else(|p| p.into_inner());
                    }
                    drop(q);
                    latencies.push(t0.elapsed().as_nanos() as u64);
                }
                latencies
            })
        })
        .collect();
    let per_thread: Vec<Vec<u64>> = writers
        .into_iter()
        .map(|w| w.join().unwrap_or_default())
        .collect();
    let elapsed = start.elapsed();
    {
        let (queue, work, _) = &*shared;
        queue.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
        work.notify_all();
    }
    syncer
        .join()
        .map_err(|_| std::io::Error::other("syncer panicked"))??;
    std::fs::remove_file(&path)?;
    Ok(RunResult::new(elapsed, per_thread))
}
