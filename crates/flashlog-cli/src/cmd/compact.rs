//! `flashlog compact`: one compaction, with a progress bar.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use flashlog_kv::{AutoCompact, DbOptions};

use super::open::open_existing_db;

use crate::text::bytes;

/// Runs a compaction and prints what it did.
pub fn run(dir: &Path, lock_timeout: Duration) -> anyhow::Result<ExitCode> {
    let options = DbOptions::default().auto_compact(AutoCompact::Never);
    let db = open_existing_db(dir, options, lock_timeout)?;
    let segments_before = db.segments().len();
    let bar = super::bench::progress_bar(0, "{bar:40} {bytes}/{total_bytes} {msg}");
    let start = Instant::now();
    let report = db
        .compact_with_progress(|progress| {
            bar.set_length(progress.bytes_total);
            bar.set_position(progress.bytes_read);
            bar.set_message(format!("{} copied", progress.entries_copied));
        })
        .context("compaction failed")?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let segments_after = db.segments().len();
    db.close().context("cannot close the store")?;
    outln!(
        "compacted {} -> {} ({} -> {} segments): read {}, copied {} entries ({}) in {seconds:.2} s ({:.0} MB/s)",
        bytes(report.bytes_before),
        bytes(report.bytes_after),
        segments_before,
        segments_after,
        bytes(report.bytes_read),
        report.entries_copied,
        bytes(report.bytes_copied),
        report.bytes_read as f64 / seconds.max(1e-9) / 1e6,
    )?;
    Ok(ExitCode::SUCCESS)
}
