//! [`Stats`]: sizes of a store and its log.

/// Sizes of a store and its log, and how its compactions went, from
/// [`Db::stats`](crate::Db::stats).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Keys in the store.
    pub keys: u64,
    /// Bytes on disk of the latest put of every key.
    pub live_bytes: u64,
    /// Bytes of the log that hold no live value: overwritten puts, deletes and
    /// damaged bytes that recovery skipped. Compaction reclaims them.
    pub dead_bytes: u64,
    /// Bytes of all segments.
    pub log_bytes: u64,
    /// Segments in the log.
    pub segments: u64,
    /// Entries in the log.
    pub entries: u64,
    /// Sequence number of the first entry (of the next one if the log is empty).
    pub first_seq: u64,
    /// Sequence number of the last entry (`first_seq - 1` if the log is empty).
    pub last_seq: u64,
    /// Compactions run since the store was opened, automatic and called.
    pub compactions: u64,
    /// How many of them failed.
    pub compaction_failures: u64,
    /// Time they took, all together.
    pub compaction_time: std::time::Duration,
    /// The error of the latest compaction, with its causes as one line, if it
    /// failed; `None` once one succeeds. An automatic compaction has no caller to
    /// return its error to: it is kept here (and traced as a `tracing` warning),
    /// while the write that ran it has succeeded.
    pub last_compaction_error: Option<String>,
}

/// A store's figures and its log's, from [`Db::metrics`](crate::Db::metrics).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DbMetrics {
    /// The store's own: keys, live and dead bytes, compactions.
    pub store: Stats,
    /// The log's: appends, group commits, fsyncs, latencies.
    pub log: flashlog_wal::Metrics,
}
