//! `flashlog compact`: one compaction, with a progress bar; Ctrl-C stops it
//! cleanly.

use std::ops::ControlFlow;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use flashlog_kv::{AutoCompact, DbOptions};

use super::interrupt::Interrupt;
use super::open::{open_db, open_existing_db};
use crate::text::{bytes, count};

/// Runs a compaction and prints what it did.
///
/// Ctrl-C stops it after the batch of copies in flight (`Db::compact_until`):
/// nothing is removed, the store is whole, exit code 130. After a failure (a
/// full disk), the store is reopened once, which cuts a batch the failed write
/// left torn, so `flashlog verify` finds the log clean either way.
pub fn run(dir: &Path, lock_timeout: Duration) -> anyhow::Result<ExitCode> {
    let options = DbOptions::default().auto_compact(AutoCompact::Never);
    let db = open_existing_db(dir, options.clone(), lock_timeout)?;
    let interrupt = Interrupt::catch()?;
    let segments_before = db.segments().len() as u64;
    let bar = super::bench::progress_bar(0, "{bar:40} {bytes}/{total_bytes} {msg}");
    let start = Instant::now();
    let result = db.compact_until(|progress| {
        bar.set_length(progress.bytes_total);
        bar.set_position(progress.bytes_read);
        bar.set_message(format!("{} copied", progress.entries_copied));
        if interrupt.raised() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    bar.finish_and_clear();
    let report = match result {
        Ok(report) => report,
        Err(err) => {
            // The log refuses writes after a failed one; a reopen cuts what the
            // failed write left (a torn batch of copies) and nothing else.
            let _ = db.close();
            drop(db);
            let cleanup = open_db(dir, options, lock_timeout).and_then(|db| {
                db.close().context("cannot close the store")?;
                Ok(())
            });
            let note = match cleanup {
                Ok(()) => "nothing removed, the store is whole; reopened to cut what the failed write left".to_owned(),
                Err(cleanup) => format!(
                    "nothing removed; the store could not be reopened to cut what the failed write left ({cleanup:#}), its next open will"
                ),
            };
            return Err(anyhow::Error::new(err).context(format!("compaction failed ({note})")));
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    let segments_after = db.segments().len() as u64;
    db.close().context("cannot close the store")?;
    if report.stopped {
        outln!(
            "stopped by Ctrl-C: copied {} ({}) and removed nothing; the store is unchanged and whole, \
             and the log is {} larger (now {}) until the next compaction removes the originals",
            count(report.entries_copied, "entry", "entries"),
            bytes(report.bytes_copied),
            bytes(report.bytes_after.saturating_sub(report.bytes_before)),
            bytes(report.bytes_after),
        )?;
        return Ok(ExitCode::from(crate::EXIT_INTERRUPTED));
    }
    outln!(
        "compacted {} -> {} ({} -> {}): read {}, copied {} ({}) in {seconds:.2} s ({}/s)",
        bytes(report.bytes_before),
        bytes(report.bytes_after),
        segments_before,
        count(segments_after, "segment", "segments"),
        bytes(report.bytes_read),
        count(report.entries_copied, "entry", "entries"),
        bytes(report.bytes_copied),
        bytes((report.bytes_read as f64 / seconds.max(1e-9)) as u64),
    )?;
    Ok(ExitCode::SUCCESS)
}
