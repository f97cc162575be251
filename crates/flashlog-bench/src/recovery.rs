//! Reading a log back: replay (open + read and check every entry) of a large log,
//! open time against log size after a clean shutdown, and tailing read latency while
//! another thread appends.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flashlog_wal::{Batch, Op, Options, SyncPolicy, Wal};
use raft_engine::{Engine, LogBatch};

use crate::baselines::read_files;
use crate::libraries::{raft_config, raft_entry, RaftMessage};
use crate::stats::{median, RunResult};
use crate::system::{BenchResult, System, FRAMING, KEY_LEN};

/// Entries per write while a log is filled.
const FILL_BATCH: usize = 4096;

/// Replay of one system's log.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The system.
    pub system: System,
    /// Entries replayed.
    pub entries: u64,
    /// Bytes of those entries in flashlog's format (entries × entry size).
    pub bytes: u64,
    /// Bytes of the system's files.
    pub file_bytes: u64,
    /// Reading the system's files with plain 1 MiB reads, seconds.
    pub read_files_secs: f64,
    /// Opening the log (the library's own recovery), seconds; `None` for okaywal,
    /// whose recovery hands every entry to the manager (that is the replay).
    pub open_secs: Option<f64>,
    /// Open + reading and checking every entry, seconds.
    pub replay_secs: f64,
    /// flashlog only: a second pass over the open log with an owned `Entry` per entry
    /// (`for entry in wal.iter_from(first)`, every CRC checked), seconds; the first
    /// version's "iterate" figure.
    pub owned_iter_secs: Option<f64>,
}

fn payload(entry_bytes: usize, i: u64) -> Vec<u8> {
    let mut p = vec![0x3cu8; entry_bytes - FRAMING];
    p[..8].copy_from_slice(&i.to_le_bytes());
    p
}

/// Fills a flashlog log in `dir` with `entries` entries (buffered, one sync per batch).
pub fn fill_flashlog(dir: &Path, entry_bytes: usize, from: u64, entries: u64) -> BenchResult<()> {
    let wal = Wal::open(dir, Options::default().sync_policy(SyncPolicy::Manual))?;
    let mut batch = Batch::new();
    for i in from..from + entries {
        let p = payload(entry_bytes, i);
        batch.put(&p[..KEY_LEN], &p[KEY_LEN..]);
        if batch.len() == FILL_BATCH {
            wal.append_batch(&batch)?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        wal.append_batch(&batch)?;
    }
    wal.close()?;
    Ok(())
}

/// What replaying a flashlog log measured.
struct FlashlogReplay {
    seen: u64,
    open_secs: f64,
    replay_secs: f64,
    owned_iter_secs: f64,
}

fn replay_flashlog(dir: &Path) -> BenchResult<FlashlogReplay> {
    let start = Instant::now();
    let wal = Wal::open(dir, Options::default())?;
    let open_secs = start.elapsed().as_secs_f64();
    let mut seen = 0u64;
    let mut check = 0u64;
    // The library's replay path: entries borrowed from the read buffer, each decoded
    // and CRC-checked again by the iterator.
    wal.iter_from(wal.first_seq())?
        .try_for_each_ref(|entry| -> flashlog_wal::Result<()> {
            check = check.wrapping_add(entry.value.len() as u64 + u64::from(entry.key[0]));
            seen += 1;
            Ok(())
        })?;
    let replay_secs = start.elapsed().as_secs_f64();
    // The plain iterator: an owned `Entry` per entry.
    let start = Instant::now();
    let mut owned = 0u64;
    for entry in wal.iter_from(wal.first_seq())? {
        check = check.wrapping_add(entry?.value().len() as u64);
        owned += 1;
    }
    let owned_iter_secs = start.elapsed().as_secs_f64();
    std::hint::black_box(check);
    wal.close()?;
    if owned != seen {
        return Err(format!("the owned iterator read {owned} entries of {seen}").into());
    }
    Ok(FlashlogReplay {
        seen,
        open_secs,
        replay_secs,
        owned_iter_secs,
    })
}

/// okaywal manager that reads (and CRC-checks) every chunk during recovery, or skips.
#[derive(Debug)]
struct Replayer {
    read: bool,
    chunks: Arc<AtomicU64>,
}

impl okaywal::LogManager for Replayer {
    fn should_recover_segment(
        &mut self,
        _segment: &okaywal::RecoveredSegment,
    ) -> std::io::Result<okaywal::Recovery> {
        Ok(okaywal::Recovery::Recover)
    }

    fn recover(&mut self, entry: &mut okaywal::Entry<'_>) -> std::io::Result<()> {
        if self.read {
            if let Some(chunks) = entry.read_all_chunks()? {
                self.chunks
                    .fetch_add(chunks.len() as u64, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    fn checkpoint_to(
        &mut self,
        _last: okaywal::EntryId,
        _reader: &mut okaywal::SegmentReader,
        _wal: &okaywal::WriteAheadLog,
    ) -> std::io::Result<()> {
        Ok(())
    }
}

fn okaywal_config(dir: &Path) -> okaywal::Configuration {
    // Never checkpoint, so the whole log is still there to replay.
    okaywal::Configuration::default_for(dir).checkpoint_after_bytes(u64::MAX)
}

fn fill_okaywal(dir: &Path, entry_bytes: usize, entries: u64) -> BenchResult<()> {
    let log = okaywal_config(dir).open(Replayer {
        read: false,
        chunks: Arc::default(),
    })?;
    let mut i = 0;
    while i < entries {
        let mut entry = log.begin_entry()?;
        for _ in 0..FILL_BATCH.min((entries - i) as usize) {
            entry.write_chunk(&payload(entry_bytes, i))?;
            i += 1;
        }
        entry.commit()?;
    }
    log.shutdown()?;
    Ok(())
}

fn replay_okaywal(dir: &Path) -> BenchResult<(u64, f64)> {
    let chunks = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let log = okaywal_config(dir).open(Replayer {
        read: true,
        chunks: Arc::clone(&chunks),
    })?;
    let secs = start.elapsed().as_secs_f64();
    log.shutdown()?;
    Ok((chunks.load(Ordering::Relaxed), secs))
}

fn fill_raft_engine(dir: &Path, entry_bytes: usize, entries: u64) -> BenchResult<()> {
    let engine = Engine::open(raft_config(dir))?;
    let mut index = 1;
    while index <= entries {
        let n = FILL_BATCH.min((entries - index + 1) as usize) as u64;
        let batch_entries: Vec<_> = (index..index + n)
            .map(|i| raft_entry(i, payload(entry_bytes, i)))
            .collect();
        let mut batch = LogBatch::with_capacity(batch_entries.len());
        batch.add_entries::<RaftMessage>(1, &batch_entries)?;
        engine.write(&mut batch, false)?;
        index += n;
    }
    engine.sync()?;
    Ok(())
}

fn replay_raft_engine(dir: &Path) -> BenchResult<(u64, f64, f64)> {
    let start = Instant::now();
    let engine = Engine::open(raft_config(dir))?;
    let open = start.elapsed().as_secs_f64();
    let (first, last) = match (engine.first_index(1), engine.last_index(1)) {
        (Some(first), Some(last)) => (first, last),
        _ => return Ok((0, open, open)),
    };
    let mut seen = 0u64;
    let mut check = 0u64;
    let mut buf = Vec::with_capacity(FILL_BATCH * 16);
    let mut at = first;
    while at <= last {
        let end = (at + (FILL_BATCH * 16) as u64).min(last + 1);
        buf.clear();
        engine.fetch_entries_to::<RaftMessage>(1, at, end, None, &mut buf)?;
        for entry in &buf {
            check = check.wrapping_add(entry.data.len() as u64 + entry.data[0] as u64);
        }
        seen += buf.len() as u64;
        at = end;
    }
    std::hint::black_box(check);
    Ok((seen, open, start.elapsed().as_secs_f64()))
}

/// Writes a log of about `bytes` in each library and replays it from the page cache.
pub fn replay_all(
    root: &Path,
    entry_bytes: usize,
    bytes: u64,
    systems: &[System],
) -> BenchResult<Vec<Replay>> {
    let entries = bytes / entry_bytes as u64;
    let mut out = Vec::new();
    for &system in systems {
        let dir = tempfile::Builder::new()
            .prefix("flashlog-bench-replay-")
            .tempdir_in(root)?;
        let (seen, open_secs, replay_secs, owned_iter_secs) = match system {
            System::Flashlog => {
                fill_flashlog(dir.path(), entry_bytes, 0, entries)?;
                // Warm the cache the same way for every system: read the files once.
                read_files(dir.path(), &[])?;
                let r = replay_flashlog(dir.path())?;
                (
                    r.seen,
                    Some(r.open_secs),
                    r.replay_secs,
                    Some(r.owned_iter_secs),
                )
            }
            System::Okaywal => {
                fill_okaywal(dir.path(), entry_bytes, entries)?;
                read_files(dir.path(), &[])?;
                let (seen, replay) = replay_okaywal(dir.path())?;
                (seen, None, replay, None)
            }
            System::RaftEngine => {
                fill_raft_engine(dir.path(), entry_bytes, entries)?;
                read_files(dir.path(), &[])?;
                let (seen, open, replay) = replay_raft_engine(dir.path())?;
                (seen, Some(open), replay, None)
            }
            _ => continue,
        };
        if seen != entries {
            return Err(format!("{} replayed {seen} entries of {entries}", system.name()).into());
        }
        let (file_bytes, read) = read_files(dir.path(), &[])?;
        out.push(Replay {
            system,
            entries,
            bytes: entries * entry_bytes as u64,
            file_bytes,
            read_files_secs: read.as_secs_f64(),
            open_secs,
            replay_secs,
            owned_iter_secs,
        });
    }
    Ok(out)
}

/// Open time of a flashlog log after a clean shutdown, at one size.
#[derive(Debug, Clone)]
pub struct OpenTime {
    /// Bytes of the log.
    pub bytes: u64,
    /// Median seconds of `Wal::open` over the repetitions.
    pub open_secs: f64,
    /// Repetitions.
    pub runs: usize,
}

/// Entries the crash child appends before it aborts.
const CRASH_ENTRIES: u64 = 4096;

/// The crash child: appends [`CRASH_ENTRIES`] to the log in `dir` (synced), then
/// aborts without closing it, leaving the preallocated tail and no clean shutdown.
pub fn crash_child(dir: &Path) -> BenchResult<()> {
    let wal = Wal::open(dir, Options::default().sync_policy(SyncPolicy::Manual))?;
    let value = vec![0x5au8; 256 - FRAMING - KEY_LEN];
    for i in 0..CRASH_ENTRIES {
        wal.append(Op::Put, &i.to_le_bytes(), &value)?;
    }
    wal.sync()?;
    std::process::abort();
}

/// Open after a crash, beside open after a clean shutdown of the same log.
#[derive(Debug, Clone)]
pub struct CrashOpen {
    /// Bytes of the log.
    pub bytes: u64,
    /// Seconds of the first `Wal::open` after the crash (recovery).
    pub open_secs: f64,
}

/// Runs the crash child on the log in `dir`, then times the next `Wal::open`.
fn open_after_crash(dir: &Path) -> BenchResult<f64> {
    let status = std::process::Command::new(std::env::current_exe()?)
        .arg("--crash-child")
        .arg(dir)
        .stderr(std::process::Stdio::null())
        .status()?;
    if status.success() {
        return Err("the crash child did not crash".into());
    }
    let start = Instant::now();
    let wal = Wal::open(dir, Options::default())?;
    let secs = start.elapsed().as_secs_f64();
    wal.close()?;
    Ok(secs)
}

/// Grows one flashlog log through `sizes` (ascending) and times `Wal::open` after
/// each clean close, `reps` times per size, page cache warm; then, at the largest
/// size, once after a crash (a child appends 1 MiB and aborts).
pub fn open_times(
    root: &Path,
    entry_bytes: usize,
    sizes: &[u64],
    reps: usize,
) -> BenchResult<(Vec<OpenTime>, Option<CrashOpen>)> {
    let dir = tempfile::Builder::new()
        .prefix("flashlog-bench-open-")
        .tempdir_in(root)?;
    let mut written = 0u64;
    let mut out = Vec::new();
    for &size in sizes {
        let entries = size / entry_bytes as u64;
        if entries > written {
            fill_flashlog(dir.path(), entry_bytes, written, entries - written)?;
            written = entries;
        }
        let mut secs = Vec::new();
        for _ in 0..reps {
            let start = Instant::now();
            let wal = Wal::open(dir.path(), Options::default())?;
            secs.push(start.elapsed().as_secs_f64());
            wal.close()?;
        }
        out.push(OpenTime {
            bytes: written * entry_bytes as u64,
            open_secs: median(secs),
            runs: reps,
        });
    }
    let crash = if written > 0 {
        let open_secs = open_after_crash(dir.path())?;
        Some(CrashOpen {
            bytes: (written + CRASH_ENTRIES) * entry_bytes as u64,
            open_secs,
        })
    } else {
        None
    };
    Ok((out, crash))
}

/// Latencies of a tailing reader while one thread appends durably.
#[derive(Debug, Clone)]
pub struct Tail {
    /// The appender's latency per durable append.
    pub append: RunResult,
    /// From the start of an append call until a following reader holds the entry.
    pub visible: RunResult,
}

/// One thread appends `entry_bytes` entries under `SyncPolicy::Always` for
/// `run_time`; a reader follows with `iter_from(1).follow()`.
pub fn tail(root: &Path, entry_bytes: usize, run_time: Duration) -> BenchResult<Tail> {
    let dir = tempfile::Builder::new()
        .prefix("flashlog-bench-tail-")
        .tempdir_in(root)?;
    let wal = Arc::new(Wal::open(
        dir.path(),
        Options::default().sync_policy(SyncPolicy::Always),
    )?);
    let base = Instant::now();
    let reader = {
        let mut follow = wal.iter_from(1)?.follow();
        std::thread::spawn(move || -> BenchResult<Vec<u64>> {
            let mut latencies = Vec::new();
            for entry in &mut follow {
                let entry = entry?;
                if entry.key() == b"stop" {
                    break;
                }
                let mut stamp = [0u8; 8];
                stamp.copy_from_slice(&entry.value()[..8]);
                let now = base.elapsed().as_nanos() as u64;
                latencies.push(now.saturating_sub(u64::from_le_bytes(stamp)));
            }
            Ok(latencies)
        })
    };
    let mut value = vec![0u8; entry_bytes - FRAMING - KEY_LEN];
    let mut appends = Vec::new();
    let start = Instant::now();
    let mut i = 0u64;
    while start.elapsed() < run_time {
        let t0 = base.elapsed().as_nanos() as u64;
        value[..8].copy_from_slice(&t0.to_le_bytes());
        wal.append(Op::Put, &i.to_le_bytes(), &value)?;
        appends.push(base.elapsed().as_nanos() as u64 - t0);
        i += 1;
    }
    let elapsed = start.elapsed();
    wal.append(Op::Put, b"stop", &value)?;
    let visible = reader.join().map_err(|_| "the reader panicked")??;
    wal.close()?;
    Ok(Tail {
        append: RunResult::new(elapsed, vec![appends]),
        visible: RunResult::new(elapsed, vec![visible]),
    })
}
