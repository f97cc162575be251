//! `flashlog stats`: the log's segments and the store's sizes, as tables.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use flashlog_kv::{Db, DbOptions, Stats};

use crate::text::{bytes, table};

/// Prints a table per segment, then the totals of the log and the store.
pub fn run(dir: &Path) -> anyhow::Result<ExitCode> {
    // Read-only and skipping damage, so it works on any log, even one in use.
    let options = DbOptions::default()
        .read_only()
        .wal(flashlog_cli::inspect_options());
    let db = Db::open(dir, options)
        .with_context(|| format!("cannot open the store in {}", dir.display()))?;
    let mut rows = vec![vec![
        "segment".to_owned(),
        "first seq".to_owned(),
        "entries".to_owned(),
        "bytes".to_owned(),
    ]];
    for segment in db.segments() {
        rows.push(vec![
            segment.id.file_name(),
            segment.first_seq.to_string(),
            segment.entries.to_string(),
            segment.bytes.to_string(),
        ]);
    }
    print!("{}", table(&rows));
    println!();
    print!("{}", store_table(&db.stats()));
    let damage = db.recovery_report().damage.len();
    if damage > 0 {
        println!("damaged regions  {damage} (skipped; run flashlog verify)");
    }
    if let Some(seq) = db.recovery_report().numbering_unverified_from {
        println!("unverified seqs  from {seq} (damage before them held entries nothing counted)");
    }
    Ok(ExitCode::SUCCESS)
}

/// The totals of a store as a two-column table.
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
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|(name, value)| vec![name.to_owned(), value])
        .collect();
    table(&rows)
}
