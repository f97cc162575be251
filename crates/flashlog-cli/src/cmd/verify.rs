//! `flashlog verify`: checks every entry of every segment, changing nothing.

use std::path::Path;
use std::process::ExitCode;

use flashlog_wal::{Damage, RecoveryReport};

use super::open::SegmentNames;
use super::open_wal_inspect;
use crate::text::count;

/// Arguments of `flashlog verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON object: ok, entries, segments, and damage (a list of what,
    /// segment, file, offset, len, kind)
    #[arg(long)]
    json: bool,
}

/// Prints each side file recovery could not use and each damaged region, and a
/// summary; exit code 1 if anything is damaged.
pub fn run(dir: &Path, args: &Args) -> anyhow::Result<ExitCode> {
    let wal = open_wal_inspect(dir)?;
    let names = SegmentNames::read(dir);
    let report = wal.recovery_report();
    let entries = count(report.entries, "entry", "entries");
    let segments = count(report.segments, "segment", "segments");
    let clean = report.damage.is_empty() && report.side_files.is_empty();
    if args.json {
        outln!("{}", json(report, &names))?;
    } else {
        for note in &report.side_files {
            outln!("side file: {note}")?;
        }
        for damage in &report.damage {
            outln!("{}", describe(report, damage, &names))?;
        }
        if clean {
            outln!("ok: {entries} in {segments}, no damage")?;
        } else if report.damage.is_empty() {
            outln!(
                "damaged: {} side file(s), which flashlog repair rewrites; {} in {segments}",
                report.side_files.len(),
                count(report.entries, "valid entry", "valid entries"),
            )?;
        } else {
            outln!(
                "damaged: {} region(s); {} in {segments}",
                report.damage.len(),
                count(report.entries, "valid entry", "valid entries"),
            )?;
        }
    }
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Whether `damage` is the torn tail: in the last segment with nothing valid after.
pub fn is_torn_tail(report: &RecoveryReport, damage: &Damage) -> bool {
    report.torn_tail.as_ref() == Some(damage)
}

fn what(report: &RecoveryReport, damage: &Damage) -> &'static str {
    if is_torn_tail(report, damage) {
        "torn tail"
    } else {
        "corruption"
    }
}

/// One line: where, what, how many bytes, and whether it is a torn tail.
pub fn describe(report: &RecoveryReport, damage: &Damage, names: &SegmentNames) -> String {
    describe_as(what(report, damage), damage, names)
}

/// [`describe`], with what the damage is (`torn tail`, `corruption`) given.
pub fn describe_as(what: &str, damage: &Damage, names: &SegmentNames) -> String {
    format!(
        "{}: segment {} ({}) offset {}: {} ({} bytes)",
        what,
        damage.position.segment,
        names.name(damage.position.segment),
        damage.position.offset,
        damage.kind,
        damage.len
    )
}

/// `verify --json`.
fn json(report: &RecoveryReport, names: &SegmentNames) -> serde_json::Value {
    let damage: Vec<serde_json::Value> = report
        .damage
        .iter()
        .map(|damage| {
            serde_json::json!({
                "what": what(report, damage),
                "segment": damage.position.segment.0,
                "file": names.name(damage.position.segment),
                "offset": damage.position.offset,
                "len": damage.len,
                "kind": damage.kind.to_string(),
            })
        })
        .collect();
    let side_files: Vec<String> = report.side_files.iter().map(ToString::to_string).collect();
    serde_json::json!({
        "ok": report.damage.is_empty() && report.side_files.is_empty(),
        "entries": report.entries,
        "segments": report.segments,
        "damage": damage,
        "side_files": side_files,
    })
}
