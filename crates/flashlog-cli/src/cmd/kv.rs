//! `put`, `get`, `delete` and `scan`: one store operation from the command line.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::{open_db, open_db_read_only};
use crate::text::show;

/// `flashlog put KEY VALUE`: prints nothing.
pub fn put(dir: &Path, key: &str, value: &str) -> anyhow::Result<ExitCode> {
    let db = open_db(dir)?;
    db.put(key.as_bytes(), value.as_bytes())
        .with_context(|| format!("cannot put {key:?}"))?;
    warn_failed_compaction(&db);
    db.close().context("cannot close the store")?;
    Ok(ExitCode::SUCCESS)
}

/// Says on stderr that the automatic compaction a write ran failed: the write
/// succeeded (the exit code says so), but the log keeps its dead bytes.
fn warn_failed_compaction(db: &flashlog_kv::Db) {
    if let Some(error) = db.stats().last_compaction_error {
        eprintln!("warning: the automatic compaction after this write failed: {error}");
    }
}

/// `flashlog get KEY`: prints the value as it is (bytes and a newline); exit code 1
/// and nothing printed if the key is absent.
pub fn get(dir: &Path, key: &str) -> anyhow::Result<ExitCode> {
    let db = open_db_read_only(dir)?;
    match db
        .get(key.as_bytes())
        .with_context(|| format!("cannot get {key:?}"))?
    {
        Some(value) => {
            let mut out = std::io::stdout().lock();
            out.write_all(&value)
                .and_then(|()| out.write_all(b"\n"))
                .context("cannot write to standard output")?;
            Ok(ExitCode::SUCCESS)
        }
        None => Ok(ExitCode::from(1)),
    }
}

/// `flashlog delete KEY`: prints nothing (deleting an absent key is no error).
pub fn delete(dir: &Path, key: &str) -> anyhow::Result<ExitCode> {
    let db = open_db(dir)?;
    db.delete(key.as_bytes())
        .with_context(|| format!("cannot delete {key:?}"))?;
    warn_failed_compaction(&db);
    db.close().context("cannot close the store")?;
    Ok(ExitCode::SUCCESS)
}

/// `flashlog scan [PREFIX]`: `KEY VALUE` per line, in key order.
pub fn scan(dir: &Path, prefix: &str) -> anyhow::Result<ExitCode> {
    let db = open_db_read_only(dir)?;
    let mut out = std::io::stdout().lock();
    for pair in db.scan_prefix(prefix.as_bytes()) {
        let (key, value) = pair.context("cannot read a value")?;
        writeln!(out, "{} {}", show(&key), show(&value))
            .context("cannot write to standard output")?;
    }
    Ok(ExitCode::SUCCESS)
}
