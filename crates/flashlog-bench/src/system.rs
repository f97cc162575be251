//! What every system under test is to the harness: its name, the [`Log`] trait each
//! workload drives, and the entry framing every system is handed the same payload by.
//!
//! An "entry of S bytes" is S bytes on disk in flashlog's format: 17 bytes of framing
//! and an 8-byte key, so every library is handed the same `S - 17` bytes of payload;
//! the byte-level baselines write all S bytes (what flashlog physically writes).

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
    /// The first version's group commit: a dedicated syncer thread that wakes every
    /// waiter. Not a bound; runs only when named in `--systems` (and in `--smoke`).
    SyncerGroupCommit,
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
            System::SyncerGroupCommit => "group commit, syncer thread",
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
            System::SyncerGroupCommit => "syncer",
        }
    }

    /// Whether this is a baseline rather than a library.
    pub fn is_baseline(self) -> bool {
        !matches!(
            self,
            System::Flashlog | System::Okaywal | System::RaftEngine
        )
    }

    /// Every system, libraries first.
    pub const ALL: [System; 7] = [
        System::Flashlog,
        System::Okaywal,
        System::RaftEngine,
        System::PlainLoop,
        System::PlainPrealloc,
        System::IdealGroupCommit,
        System::SyncerGroupCommit,
    ];

    /// The systems run when `--systems` names none (every one but the syncer thread).
    pub const DEFAULT: [System; 6] = [
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
