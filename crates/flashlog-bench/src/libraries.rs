//! The libraries under test (flashlog, okaywal, raft-engine) behind the [`Log`]
//! trait, each configured as docs/benchmarks.md describes.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use flashlog_wal::{Batch, Op, Options, SyncPolicy, Wal};
use raft::eraftpb::Entry as RaftEntry;
use raft_engine::{Config as RaftConfig, Engine, LogBatch, MessageExt, ReadableSize};

use crate::system::{BenchResult, Durability, Log, KEY_LEN};

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
