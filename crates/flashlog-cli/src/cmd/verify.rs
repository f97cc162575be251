//! `flashlog verify`: checks every entry of every segment, changing nothing.

use std::path::Path;
use std::process::ExitCode;

use flashlog_wal::{Damage, RecoveryReport};

use super::open_wal_inspect;

/// Prints each damaged region and each side file recovery could not use, and a
/// summary; exit code 1 if anything is damaged.
pub fn run(dir: &Path) -> anyhow::Result<ExitCode> {
    let wal = open_wal_inspect(dir)?;
    let report = wal.recovery_report();
    for note in &report.side_files {
        println!("side file: {note}");
    }
    for damage in &report.damage {
        println!("{}", describe(report, damage));
    }
    let entries = report.entries;
    let segments = report.segments;
    if report.damage.is_empty() && report.side_files.is_empty() {
        println!("ok: {entries} entries in {segments} segments, no damage");
        Ok(ExitCode::SUCCESS)
    } else if report.damage.is_empty() {
        println!(
            "damaged: {} side file(s), which flashlog repair rewrites; {entries} valid entries in {segments} segments",
            report.side_files.len()
        );
        Ok(ExitCode::from(1))
    } else {
        println!(
            "damaged: {} region(s); {entries} valid entries in {segments} segments",
            report.damage.len()
        );
        Ok(ExitCode::from(1))
    }
}

/// Whether `damage` is the torn tail: in the last segment with nothing valid after.
pub fn is_torn_tail(report: &RecoveryReport, damage: &Damage) -> bool {
    report.torn_tail.as_ref() == Some(damage)
}

/// One line: where, what, how many bytes, and whether it is a torn tail.
pub fn describe(report: &RecoveryReport, damage: &Damage) -> String {
    let what = if is_torn_tail(report, damage) {
        "torn tail"
    } else {
        "corruption"
    };
    format!(
        "{what}: segment {} ({}) offset {}: {} ({} bytes)",
        damage.position.segment,
        damage.position.segment.file_name(),
        damage.position.offset,
        damage.kind,
        damage.len
    )
}
