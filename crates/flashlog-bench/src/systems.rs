//! Every system under test behind one trait, so each workload runs the same code
//! against flashlog, its peers and the baselines.
//!
//! An "entry of S bytes" is S bytes on disk in flashlog's format: 17 bytes of framing
//! and an 8-byte key, so every system is handed the same `S - 17` bytes of payload;
//! the byte-level baselines write all S bytes (what flashlog physically writes).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use flashlog_wal::{Batch, Op, Options, SyncPolicy, Wal};
use raft::eraftpb::Entry as RaftEntry;
use raft_engine::{Config as RaftConfig, Engine, LogBatch, MessageExt, ReadableSize};

use crate::baselines::{IdealGroupCommit, PlainLoop, PreallocPool};

/// Errors of any system, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Result of a benchmark step.
pub type BenchResult<T> = Result<T, BoxError>;

/// flashlog's framing per entry (header 13 + key length 4 bytes), as in FORMAT.md.
pub const FRAMING: usize = 17;
/// Key bytes of every flashlog entry.
pub const KEY_LEN: usize = 8;

/// What must hold when an append returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// The entry is on disk (fdatasync done) before the append returns.
    Durable,
    /// The entry is only handed to the library; one sync at the end of the run.
    Buffered,
}

/// The systems the harness knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// This project.
    Flashlog,
    /// khonsulabs/okaywal.
    Okaywal,
    /// tikv/raft-engine.
    RaftEngine,
    /// One write + fdatasync per entry, per thread, each thread on its own growing file.
    PlainLoop,
    /// The same on preallocated, already written files.
    PlainPrealloc,
    /// The ideal group commit on a preallocated file.
    IdealGroupCommit,
}

impl System {
    /// Name in tables, plots and JSON.
    pub fn name(self) -> &'static str {
        match self {
            System::Flashlog => "flashlog",
            System::Okaywal => "okaywal",
            System::RaftEngine => "raft-engine",
            System::PlainLoop => "plain loop",
            System::PlainPrealloc => "plain loop, prealloc",
            System::IdealGroupCommit => "ideal group commit",
        }
    }

    /// Short name for `--systems`.
    pub fn id(self) -> &'static str {
        match self {
            System::Flashlog => "flashlog",
            System::Okaywal => "okaywal",
            System::RaftEngine => "raft-engine",
            System::PlainLoop => "plain",
            System::PlainPrealloc => "prealloc",
            System::IdealGroupCommit => "ideal",
        }
    }

    /// Whether this is a baseline rather than a library.
    pub fn is_baseline(self) -> bool {
        matches!(
            self,
            System::PlainLoop | System::PlainPrealloc | System::IdealGroupCommit
        )
    }

    /// Every system, libraries first.
    pub const ALL: [System; 6] = [
        System::Flashlog,
        System::Okaywal,
        System::RaftEngine,
        System::PlainLoop,
        System::PlainPrealloc,
        System::IdealGroupCommit,
    ];
}

/// One open log of any system, shared by the appending threads.
pub trait Log: Send + Sync {
    /// Appends one entry from thread `thread`; durable iff the log was opened `Durable`.
    fn append(&self, thread: usize, payload: &[u8]) -> BenchResult<()>;
    /// Appends entries as one batch (one durable write where the system has one).
    fn append_batch(&self, thread: usize, payloads: &[&[u8]]) -> BenchResult<()>;
    /// Makes everything appended so far durable.
    fn sync(&self) -> BenchResult<()>;
}

/// Opens `system` in `dir` for `threads` appending threads.
pub fn open(
    system: System,
    dir: &Path,
    threads: usize,
    durability: Durability,
    pool: &PreallocPool,
) -> BenchResult<Box<dyn Log>> {
    Ok(match system {
        System::Flashlog => Box::new(FlashlogLog::open(dir, durability)?),
        System::Okaywal => Box::new(OkaywalLog::open(dir)?),
        System::RaftEngine => Box::new(RaftEngineLog::open(dir, threads, durability)?),
        System::PlainLoop => Box::new(PlainLoop::appending(dir, threads, durability)?),
        System::PlainPrealloc => Box::new(PlainLoop::preallocated(pool, threads, durability)?),
        System::IdealGroupCommit => Box::new(IdealGroupCommit::open(pool)?),
    })
}

/// flashlog: `SyncPolicy::Always` for durable appends, `Manual` + one `sync` otherwise.
pub struct FlashlogLog {
    wal: Wal,
}

impl FlashlogLog {
    /// Opens a flashlog log with default segment size and preallocation.
    pub fn open(dir: &Path, durability: Durability) -> BenchResult<FlashlogLog> {
        let policy = match durability {
            Durability::Durable => SyncPolicy::Always,
            Durability::Buffered => SyncPolicy::Manual,
        };
        Ok(FlashlogLog {
            wal: Wal::open(dir, Options::default().sync_policy(policy))?,
        })
    }
}

fn split_key(payload: &[u8]) -> (&[u8], &[u8]) {
    payload.split_at(KEY_LEN.min(payload.len()))
}

impl Log for FlashlogLog {
    fn append(&self, _thread: usize, payload: &[u8]) -> BenchResult<()> {
        let (key, value) = split_key(payload);
        self.wal.append(Op::Put, key, value)?;
        Ok(())
    }

    fn append_batch(&self, _thread: usize, payloads: &[&[u8]]) -> BenchResult<()> {
        let mut batch = Batch::new();
        for payload in payloads {
            let (key, value) = split_key(payload);
            batch.put(key, value);
        }
        self.wal.append_batch(&batch)?;
        Ok(())
    }

    fn sync(&self) -> BenchResult<()> {
        self.wal.sync()?;
        Ok(())
    }
}

impl Drop for FlashlogLog {
    fn drop(&mut self) {
        let _ = self.wal.close();
    }
}

/// okaywal: one entry of one chunk per append; `commit` is durable and group-committed.
/// It has no unsynced mode. Default configuration (1 MiB preallocated segments,
/// checkpoint after 768 KiB) with a `LogVoid` manager that checkpoints instantly.
pub struct OkaywalLog {
    log: okaywal::WriteAheadLog,
}

impl OkaywalLog {
    /// Opens okaywal's default configuration in `dir`.
    pub fn open(dir: &Path) -> BenchResult<OkaywalLog> {
        Ok(OkaywalLog {
            log: okaywal::WriteAheadLog::recover(dir, okaywal::LogVoid)?,
        })
    }
}

impl Log for OkaywalLog {
    fn append(&self, _thread: usize, payload: &[u8]) -> BenchResult<()> {
        let mut entry = self.log.begin_entry()?;
        entry.write_chunk(payload)?;
        entry.commit()?;
        Ok(())
    }

    fn append_batch(&self, _thread: usize, payloads: &[&[u8]]) -> BenchResult<()> {
        let mut entry = self.log.begin_entry()?;
        for payload in payloads {
            entry.write_chunk(payload)?;
        }
        entry.commit()?;
        Ok(())
    }

    fn sync(&self) -> BenchResult<()> {
        Ok(())
    }
}

/// raft-engine's entry type: raft's protobuf `Entry`, indexed by its `index`.
#[derive(Clone)]
pub struct RaftMessage;

impl MessageExt for RaftMessage {
    type Entry = RaftEntry;

    fn index(entry: &RaftEntry) -> u64 {
        entry.index
    }
}

/// raft-engine: each thread appends to its own raft group (region) with contiguous
/// indexes; `write(batch, sync = true)` is durable and group-committed by the engine.
/// Compression is off (payloads are incompressible in spirit); otherwise defaults.
pub struct RaftEngineLog {
    engine: Engine,
    next_index: Vec<AtomicU64>,
    durability: Durability,
}

/// A raft entry of term 1 at `index` holding `data`.
pub fn raft_entry(index: u64, data: Vec<u8>) -> RaftEntry {
    RaftEntry {
        index,
        term: 1,
        data: data.into(),
        ..RaftEntry::default()
    }
}

/// raft-engine's configuration used in every row.
pub fn raft_config(dir: &Path) -> RaftConfig {
    RaftConfig {
        dir: dir.display().to_string(),
        batch_compression_threshold: ReadableSize(0),
        ..RaftConfig::default()
    }
}

impl RaftEngineLog {
    /// Opens an engine in `dir` for `threads` raft groups.
    pub fn open(dir: &Path, threads: usize, durability: Durability) -> BenchResult<RaftEngineLog> {
        Ok(RaftEngineLog {
            engine: Engine::open(raft_config(dir))?,
            next_index: (0..threads).map(|_| AtomicU64::new(1)).collect(),
            durability,
        })
    }

    fn entries(&self, thread: usize, payloads: &[&[u8]]) -> Vec<RaftEntry> {
        let first = self.next_index[thread].fetch_add(payloads.len() as u64, Ordering::Relaxed);
        payloads
            .iter()
            .zip(first..)
            .map(|(payload, index)| raft_entry(index, payload.to_vec()))
            .collect()
    }
}

impl Log for RaftEngineLog {
    fn append(&self, thread: usize, payload: &[u8]) -> BenchResult<()> {
        self.append_batch(thread, &[payload])
    }

    fn append_batch(&self, thread: usize, payloads: &[&[u8]]) -> BenchResult<()> {
        let entries = self.entries(thread, payloads);
        let mut batch = LogBatch::with_capacity(entries.len());
        batch.add_entries::<RaftMessage>(thread as u64 + 1, &entries)?;
        self.engine
            .write(&mut batch, self.durability == Durability::Durable)?;
        Ok(())
    }

    fn sync(&self) -> BenchResult<()> {
        self.engine.sync()?;
        Ok(())
    }
}
