//! The library half of the `flashlog` tool: how it opens a log to inspect it and
//! how it prints entries and numbers. The binary (`src/main.rs`) is built on it,
//! and the `dump` fuzz target (`fuzz/`, through `flashlog-chaos`) checks these very
//! functions.
//!
//! ```
//! use flashlog_wal::{Op, Options, Wal};
//!
//! let dir = tempfile::tempdir()?;
//! let wal = Wal::open(dir.path(), Options::default())?;
//! wal.append(Op::Put, b"user:1", b"alice")?;
//! wal.close()?;
//! drop(wal);
//!
//! let wal = Wal::open(dir.path(), flashlog_cli::inspect_options())?;
//! let entry = wal.read(1)?;
//! assert_eq!(flashlog_cli::format::text_line(&entry), "#1 at 1:0 put user:1 = alice");
//! assert_eq!(
//!     flashlog_cli::format::hex_line(&entry),
//!     "1 1 0 put 757365723a31 616c696365"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod format;
pub mod text;

use flashlog_wal::{Options, RecoveryMode};

/// The options `dump`, `verify` and `stats` open a log with: read-only (nothing is
/// changed, no lock is taken) under [`RecoveryMode::SkipCorrupted`], so that every
/// valid entry is listed and every damaged region reported.
pub fn inspect_options() -> Options {
    Options::default()
        .read_only()
        .recovery_mode(RecoveryMode::SkipCorrupted)
}
