//! `flashlog repair`: cuts a torn or corrupt tail (or, when told, cuts into the
//! middle of the log), after copying the affected segment files to a backup folder.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use flashlog_wal::{Damage, Options, RecoveryMode, SegmentId, Wal};

use super::open::{wait_for_lock, SegmentNames};
use super::open_wal_inspect;
use super::verify::{describe, is_torn_tail};
use crate::text::count;

/// How far repair may cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Cut only a torn tail: damage at the end of the last segment (the default)
    TolerateCorruptedTail,
    /// Keep everything before the first damage; drop the rest of the log
    PointInTime,
    /// Remove only the damaged bytes, keeping every valid entry
    SkipCorrupted,
}

/// Arguments of `flashlog repair`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only say what would be cut; change nothing
    #[arg(long)]
    dry_run: bool,
    /// How far repair may cut; needed when the damage is not a torn tail
    #[arg(long, value_enum)]
    mode: Option<Mode>,
}

/// Repairs the log in `dir`.
pub fn run(dir: &Path, args: &Args, lock_timeout: Duration) -> anyhow::Result<ExitCode> {
    let wal = open_wal_inspect(dir)?;
    let report = wal.recovery_report().clone();
    drop(wal);
    if report.damage.is_empty() {
        outln!(
            "nothing to repair: {}, no damage",
            count(report.entries, "entry", "entries")
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let middle: Vec<&Damage> = report
        .damage
        .iter()
        .filter(|d| !is_torn_tail(&report, d))
        .collect();
    let mode = match (args.mode, middle.first()) {
        (Some(mode), _) => mode,
        (None, None) => Mode::TolerateCorruptedTail,
        (None, Some(first)) => bail!(
            "the log is damaged in the middle ({}); repair cuts into the middle of the log only when told how: \
             --mode point-in-time keeps the entries before the damage, --mode skip-corrupted removes only the damaged bytes",
            describe(&report, first, &SegmentNames::read(dir))
        ),
    };
    if mode == Mode::TolerateCorruptedTail && !middle.is_empty() {
        bail!(
            "the damage is not a torn tail ({}): use --mode point-in-time or --mode skip-corrupted",
            describe(&report, middle[0], &SegmentNames::read(dir))
        );
    }
    let plan = Plan::new(dir, mode, &report.damage)?;
    let verb = if args.dry_run { "would" } else { "will" };
    for line in &plan.lines {
        outln!("{verb} {line}")?;
    }
    outln!(
        "{verb} keep {} of {} valid entries",
        plan.entries_kept,
        report.entries
    )?;
    if args.dry_run {
        outln!("dry run: nothing changed")?;
        return Ok(ExitCode::SUCCESS);
    }
    let backup = backup(dir, &plan.affected)?;
    outln!("copied the affected segments to {}", backup.display())?;
    match mode {
        Mode::TolerateCorruptedTail | Mode::PointInTime => {
            let recovery = if mode == Mode::PointInTime {
                RecoveryMode::PointInTime
            } else {
                RecoveryMode::TolerateCorruptedTail
            };
            let wal = wait_for_lock(lock_timeout, || {
                Wal::open(dir, Options::default().recovery_mode(recovery))
            })
            .with_context(|| format!("cannot open the log in {} to repair it", dir.display()))?;
            wal.close().context("cannot close the log")?;
        }
        Mode::SkipCorrupted => {
            wait_for_lock(lock_timeout, || {
                flashlog_wal::remove_skipped_damage(dir, Options::default())
            })
            .with_context(|| {
                format!(
                    "cannot remove the damaged bytes of the log in {}",
                    dir.display()
                )
            })?;
        }
    }
    let wal = Wal::open(dir, Options::default().read_only()).with_context(|| {
        format!(
            "the log in {} still does not open after repair",
            dir.display()
        )
    })?;
    let repaired = wal.recovery_report();
    outln!(
        "repaired: {} in {}",
        count(repaired.entries, "entry", "entries"),
        count(repaired.segments, "segment", "segments")
    )?;
    Ok(ExitCode::SUCCESS)
}

/// What a repair in one mode does, as a read-only open in that mode reports it.
struct Plan {
    lines: Vec<String>,
    affected: Vec<SegmentId>,
    entries_kept: u64,
}

impl Plan {
    fn new(dir: &Path, mode: Mode, damage: &[Damage]) -> anyhow::Result<Plan> {
        let cut = |d: &Damage| {
            format!(
                "cut {} bytes at segment {} offset {} ({})",
                d.len, d.position.segment, d.position.offset, d.kind
            )
        };
        let (recovery, lines, affected): (RecoveryMode, Vec<String>, Vec<SegmentId>) = match mode {
            Mode::TolerateCorruptedTail | Mode::SkipCorrupted => {
                let recovery = if mode == Mode::SkipCorrupted {
                    RecoveryMode::SkipCorrupted
                } else {
                    RecoveryMode::TolerateCorruptedTail
                };
                let mut affected: Vec<SegmentId> =
                    damage.iter().map(|d| d.position.segment).collect();
                affected.dedup();
                (recovery, damage.iter().map(cut).collect(), affected)
            }
            Mode::PointInTime => {
                let first = damage[0];
                let wal = Wal::open(
                    dir,
                    Options::default()
                        .read_only()
                        .recovery_mode(RecoveryMode::PointInTime),
                )?;
                let last = wal
                    .recovery_report()
                    .removed_segments
                    .iter()
                    .copied()
                    .max()
                    .unwrap_or(first.position.segment);
                let affected: Vec<SegmentId> =
                    (first.position.segment.0..=last.0).map(SegmentId).collect();
                let mut lines = vec![format!(
                    "cut segment {} at offset {} ({}), {} bytes in all",
                    first.position.segment,
                    first.position.offset,
                    first.kind,
                    wal.recovery_report().truncated_bytes
                )];
                for id in &wal.recovery_report().removed_segments {
                    lines.push(format!("remove {}", id.file_name()));
                }
                (RecoveryMode::PointInTime, lines, affected)
            }
        };
        let kept = Wal::open(dir, Options::default().read_only().recovery_mode(recovery))?
            .recovery_report()
            .entries;
        Ok(Plan {
            lines,
            affected,
            entries_kept: kept,
        })
    }
}

/// Copies the segments to a new `flashlog-repair-<unix time>` folder in `dir`.
fn backup(dir: &Path, segments: &[SegmentId]) -> anyhow::Result<PathBuf> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut folder = dir.join(format!("flashlog-repair-{now}"));
    let mut n = 1;
    while folder.exists() {
        folder = dir.join(format!("flashlog-repair-{now}-{n}"));
        n += 1;
    }
    fs::create_dir(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
    for id in segments {
        let from = dir.join(id.file_name());
        let to = folder.join(id.file_name());
        fs::copy(&from, &to)
            .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        fs::File::open(&to)
            .and_then(|file| file.sync_all())
            .with_context(|| format!("cannot fsync {}", to.display()))?;
    }
    Ok(folder)
}
