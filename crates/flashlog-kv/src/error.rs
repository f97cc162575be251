//! The one error type of the crate.

use std::io;
use std::path::PathBuf;

/// A specialised `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a [`Db`](crate::Db).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The log under the store failed: I/O, corruption, a lock held elsewhere, a
    /// read-only open, a closed or poisoned log.
    #[error(transparent)]
    Wal(#[from] flashlog_wal::Error),
    /// An I/O operation the store does itself (looking at the directory) failed.
    #[error("cannot {op} {}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A write was given an empty key. Logs written elsewhere may hold empty keys
    /// (the format allows them) and they are read back, but the store does not
    /// write new ones: an empty key is almost always a bug in the caller.
    #[error("the key is empty")]
    EmptyKey,
    /// The key and value do not fit in one entry of the format (16 MiB) or of a
    /// segment (`max_segment_size`).
    #[error("a {key_len}-byte key with a {value_len}-byte value needs a {len}-byte entry, above the limit of {max} bytes")]
    TooLarge {
        /// Bytes of the key.
        key_len: usize,
        /// Bytes of the value.
        value_len: usize,
        /// Bytes the entry would take on disk.
        len: u64,
        /// The largest entry allowed.
        max: u64,
    },
    /// The directory exists but holds no segment file and something that is not
    /// part of a flashlog log.
    #[error("{} is not a flashlog log: it holds {found:?} and no segment file", dir.display())]
    NotALog {
        /// The directory.
        dir: PathBuf,
        /// The first file found there that does not belong to a log (or "a file"
        /// when the path itself is a regular file).
        found: String,
    },
    /// The index pointed at an entry that is not the key's put: the segment files
    /// were changed behind the store's back.
    #[error("entry {seq} is not the latest put of the key the index expects (the log was changed by someone else)")]
    IndexMismatch {
        /// The sequence number the index held.
        seq: u64,
    },
    /// The options cannot be used.
    #[error("invalid options: {0}")]
    InvalidOptions(&'static str),
}

/// An error and its causes as one line (`a: b: c`), for what is kept and shown
/// later instead of returned: [`Stats::last_compaction_error`](crate::Stats::last_compaction_error).
pub(crate) fn describe(err: &Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
