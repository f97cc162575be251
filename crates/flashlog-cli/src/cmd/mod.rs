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
use flashlog_wal::{Wal, META_COPY_FILE, META_FILE};

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
    Wal::open(dir, flashlog_cli::inspect_options()).map_err(|err| open_error(dir, err))
}

/// The error of a failed open of the log in `dir`, with a hint when the side file
/// is gone: a log truncated at the front opens only with it
/// (`flashlog repair --first-seq N` rebuilds it).
pub fn open_error(dir: &Path, err: flashlog_wal::Error) -> anyhow::Error {
    let hint = side_file_gone(dir, &err);
    let err = anyhow::Error::new(err).context(format!("cannot open the log in {}", dir.display()));
    if hint {
        anyhow::anyhow!(
            "{err:#}; if the log was truncated at the front and lost its side file \
             ({META_FILE}), `flashlog repair --first-seq N` rebuilds it (N: the sequence number \
             of the oldest segment's first entry)"
        )
    } else {
        err
    }
}

/// Whether `err` is a segment missing at the start of a log that has no side file.
fn side_file_gone(dir: &Path, err: &flashlog_wal::Error) -> bool {
    matches!(err, flashlog_wal::Error::MissingSegment { .. })
        && [META_FILE, META_COPY_FILE]
            .iter()
            .all(|name| !dir.join(name).exists())
}
