//! `flashlog stats`: the log's segments and the store's sizes, as tables.

use std::path::Path;
use std::process::ExitCode;

use flashlog_kv::{DbOptions, Stats};

use super::open::{open_db_read_only, SegmentNames};
use crate::text::{bytes, table};

/// Arguments of `flashlog stats`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON object: segments (a list of id, file, first_seq, entries,
    /// bytes), then the totals as in the table, damaged_regions, and cursors (a
    /// list of name, seq, lag; null with cursors_error if the cursor file is
    /// damaged)
    #[arg(long)]
    json: bool,
}

/// Prints a table per segment, then the totals of the log and the store.
pub fn run(dir: &Path, args: &Args) -> anyhow::Result<ExitCode> {
    // Read-only and skipping damage, so it works on any log, even one in use.
    let options = DbOptions::default().wal(flashlog_cli::inspect_options());
    let db = open_db_read_only(dir, options)?;
    let names = SegmentNames::read(dir);
    let cursors = flashlog_wal::read_cursors(dir);
    let last_seq = db.stats().last_seq;
    if args.json {
        let stats = db.stats();
        let segments: Vec<serde_json::Value> = db
            .segments()
            .iter()
            .map(|segment| {
                serde_json::json!({
                    "id": segment.id.0,
                    "file": names.name(segment.id),
                    "first_seq": segment.first_seq,
                    "entries": segment.entries,
                    "bytes": segment.bytes,
                })
            })
            .collect();
        let json = serde_json::json!({
            "segments": segments,
            "entries": stats.entries,
            "bytes": stats.log_bytes,
            "first_seq": stats.first_seq,
            "last_seq": stats.last_seq,
            "live_keys": stats.keys,
            "live_bytes": stats.live_bytes,
            "dead_bytes": stats.dead_bytes,
            "damaged_regions": db.recovery_report().damage.len(),
            "numbering_unverified_from": db.recovery_report().numbering_unverified_from,
            "cursors": cursors.as_ref().ok().map(|cursors| {
                cursors
                    .iter()
                    .map(|(name, &seq)| {
                        serde_json::json!({
                            "name": name,
                            "seq": seq,
                            "lag": last_seq.saturating_sub(seq),
                        })
                    })
                    .collect::<Vec<_>>()
            }),
            "cursors_error": cursors.as_ref().err().map(|err| format!("{err:#}")),
        });
        outln!("{json}")?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = vec![vec![
        "segment".to_owned(),
        "first seq".to_owned(),
        "entries".to_owned(),
        "bytes".to_owned(),
    ]];
    for segment in db.segments() {
        rows.push(vec![
            names.name(segment.id),
            segment.first_seq.to_string(),
            segment.entries.to_string(),
            segment.bytes.to_string(),
        ]);
    }
    out!("{}", table(&rows))?;
    outln!()?;
    out!("{}", store_table(&db.stats()))?;
    let damage = db.recovery_report().damage.len();
    if damage > 0 {
        outln!("damaged regions  {damage} (skipped; run flashlog verify)")?;
    }
    if let Some(seq) = db.recovery_report().numbering_unverified_from {
        outln!("unverified seqs  from {seq} (damage before them held entries nothing counted)")?;
    }
    match cursors {
        Ok(cursors) if cursors.is_empty() => {}
        Ok(cursors) => {
            outln!()?;
            out!("{}", cursor_table(&cursors, db.stats().first_seq, last_seq))?;
        }
        Err(err) => outln!("cursors          unavailable: {err:#}")?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Each cursor, its position and how far behind the last entry it is.
fn cursor_table(
    cursors: &std::collections::BTreeMap<String, u64>,
    first_seq: u64,
    last_seq: u64,
) -> String {
    let mut rows = vec![vec![
        "cursor".to_owned(),
        "seq".to_owned(),
        "lag".to_owned(),
    ]];
    for (name, &seq) in cursors {
        let mut lag = last_seq.saturating_sub(seq).to_string();
        if seq + 1 < first_seq {
            lag.push_str(" (entries it had not read were removed)");
        }
        rows.push(vec![name.clone(), seq.to_string(), lag]);
    }
    table(&rows)
}

/// The totals of a store as a two-column table. When the store ran compactions
/// since it was opened (in the shell, not in a read-only `flashlog stats`), two
/// more rows say how many and how the last one failed, if it did: an automatic
/// compaction's error is reported nowhere else.
pub fn store_table(stats: &Stats) -> String {
    let share = if stats.log_bytes == 0 {
        0.0
    } else {
        100.0 * stats.dead_bytes as f64 / stats.log_bytes as f64
    };
    let rows = [
        ("segments", stats.segments.to_string()),
        ("entries", stats.entries.to_string()),
        (
            "bytes",
            format!("{} ({})", stats.log_bytes, bytes(stats.log_bytes)),
        ),
        ("first seq", stats.first_seq.to_string()),
        ("last seq", stats.last_seq.to_string()),
        ("live keys", stats.keys.to_string()),
        (
            "live bytes",
            format!("{} ({})", stats.live_bytes, bytes(stats.live_bytes)),
        ),
        ("dead bytes", format!("{} ({share:.1}%)", stats.dead_bytes)),
    ];
    let mut rows = rows.to_vec();
    if stats.compactions > 0 {
        rows.push((
            "compactions",
            format!(
                "{} since open, {} failed",
                stats.compactions, stats.compaction_failures
            ),
        ));
    }
    if let Some(error) = &stats.last_compaction_error {
        rows.push(("last compaction", format!("failed: {error}")));
    }
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|(name, value)| vec![name.to_owned(), value])
        .collect();
    table(&rows)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use flashlog_kv::{AutoCompact, Db, DbOptions};
    use flashlog_testkit::{faulty_options, FaultyFs};

    use super::store_table;

    /// A store whose automatic compaction failed shows the failure and its error.
    #[test]
    fn a_failed_automatic_compaction_is_in_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::failing_at(0, true, false);
        let options = DbOptions::default()
            .wal(faulty_options(&fs).max_segment_size(1024))
            .auto_compact(AutoCompact::DeadShare(0.5));
        let db = Db::open(dir.path(), options).unwrap();
        assert!(!store_table(&db.stats()).contains("compaction"));
        for round in 0..20u32 {
            db.put(b"key", &round.to_le_bytes().repeat(10)).unwrap();
        }
        let table = store_table(&db.stats());
        assert!(
            table.contains("compactions  1 since open, 0 failed\n"),
            "{table}"
        );
        // A compaction's first fsync (sealing the active segment) fails; the put
        // that ran it succeeds. Armed only for a put that does not rotate: a
        // rotation's fsyncs would come before the put's own.
        while db.stats().compaction_failures == 0 {
            let active = db.segments().last().map_or(0, |segment| segment.bytes);
            if active + 60 <= 1024 {
                fs.fail_after(2);
            } else {
                fs.fail_at.store(0, Ordering::SeqCst);
            }
            db.put(b"key", &[0; 40]).unwrap();
        }
        let table = store_table(&db.stats());
        assert!(table.contains(" since open, 1 failed\n"), "{table}");
        assert!(
            table.contains("last compaction  failed: cannot ") && table.contains("os error 5"),
            "{table}"
        );
    }
}
