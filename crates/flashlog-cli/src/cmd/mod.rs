//! One module per subcommand. Each `run` returns the exit code on success; errors
//! go back to `main`, which prints them on one line and exits with 2.

pub mod bench;
pub mod compact;
pub mod dump;
pub mod kv;
pub mod repair;
pub mod shell;
pub mod stats;
pub mod verify;

use std::path::Path;

use anyhow::Context;
use flashlog_kv::{Db, DbOptions};
use flashlog_wal::Wal;

/// Opens the store in `dir` read-write.
pub fn open_db(dir: &Path) -> anyhow::Result<Db> {
    Db::open(dir, DbOptions::default())
        .with_context(|| format!("cannot open the store in {}", dir.display()))
}

/// Opens the store in `dir` read-only (no lock: works while another process has it).
pub fn open_db_read_only(dir: &Path) -> anyhow::Result<Db> {
    Db::open(dir, DbOptions::default().read_only())
        .with_context(|| format!("cannot open the store in {}", dir.display()))
}

/// Opens the log in `dir` read-only, keeping every valid entry and reporting every
/// damaged region (nothing is changed).
pub fn open_wal_inspect(dir: &Path) -> anyhow::Result<Wal> {
    Wal::open(dir, flashlog_cli::inspect_options())
        .with_context(|| format!("cannot open the log in {}", dir.display()))
}
