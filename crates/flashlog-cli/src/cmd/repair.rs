//! `flashlog repair`: cuts a torn or corrupt tail (or, when told, cuts into the
//! middle of the log), after copying the affected segment files to a backup folder;
//! rewrites a damaged copy of the side file from the intact one, and rebuilds a
//! lost side file with `--first-seq N`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use flashlog_wal::{
    Damage, Options, RecoveryMode, SegmentId, SideFileAction, Wal, META_COPY_FILE, META_FILE,
};

use super::open::{check_log_dir, wait_for_lock, Need, SegmentNames};
use super::open_error;
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
    /// Rebuild the side file (flashlog.meta) when no intact copy of it is left:
    /// the oldest segment's first entry gets sequence number N. Needed only for a
    /// log truncated at the front (a damaged copy is rewritten from the other
    /// without it); refused when an intact copy says otherwise
    #[arg(long, value_name = "N")]
    first_seq: Option<u64>,
}

/// Repairs the log in `dir`.
pub fn run(dir: &Path, args: &Args, lock_timeout: Duration) -> anyhow::Result<ExitCode> {
    check_log_dir(dir, Need::Log)?;
    let wal = match Wal::open(dir, flashlog_cli::inspect_options()) {
        Ok(wal) => wal,
        Err(err) => match args.first_seq {
            Some(first_seq) if side_file_lost(dir, &err) => {
                return rebuild(dir, args, first_seq, lock_timeout)
            }
            _ => return Err(open_error(dir, err)),
        },
    };
    let report = wal.recovery_report().clone();
    drop(wal);
    if let Some(first_seq) = args.first_seq {
        if first_seq != report.first_seq {
            bail!(
                "the log's side file is intact and says its first sequence number is {}: \
                 --first-seq only rebuilds a side file of which no intact copy is left",
                report.first_seq
            );
        }
    }
    let verb = if args.dry_run { "would" } else { "will" };
    for note in &report.side_files {
        if let SideFileAction::UsedOtherCopy { .. } = note.action {
            outln!(
                "{verb} rewrite {} ({}) from the other copy of the side file",
                note.path.display(),
                note.problem
            )?;
        }
    }
    if report.damage.is_empty() {
        if report.side_files.is_empty() {
            outln!(
                "nothing to repair: {}, no damage",
                count(report.entries, "entry", "entries")
            )?;
        } else if args.dry_run {
            outln!("dry run: nothing changed")?;
        } else {
            // A read-write open rewrites the bad copy from the intact one.
            let wal = wait_for_lock(lock_timeout, || Wal::open(dir, Options::default()))
                .with_context(|| format!("cannot open the log in {}", dir.display()))?;
            wal.close().context("cannot close the log")?;
            outln!("repaired: the side file's copies agree again")?;
        }
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

/// Whether the open failed for want of the side file: no intact copy left, or
/// none at all where the log does not start at segment 1.
fn side_file_lost(dir: &Path, err: &flashlog_wal::Error) -> bool {
    match err {
        flashlog_wal::Error::CorruptMeta { .. } => true,
        flashlog_wal::Error::MissingSegment { .. } => [META_FILE, META_COPY_FILE]
            .iter()
            .all(|name| !dir.join(name).exists()),
        _ => false,
    }
}

/// Rebuilds the side file with `first_seq`, then repairs the rest as usual.
fn rebuild(
    dir: &Path,
    args: &Args,
    first_seq: u64,
    lock_timeout: Duration,
) -> anyhow::Result<ExitCode> {
    if args.dry_run {
        outln!(
            "would rebuild the side file: the oldest segment's first entry gets sequence number {first_seq}"
        )?;
        outln!("dry run: nothing changed")?;
        return Ok(ExitCode::SUCCESS);
    }
    wait_for_lock(lock_timeout, || {
        flashlog_wal::rebuild_side_file(dir, first_seq, Options::default())
    })
    .with_context(|| {
        format!(
            "cannot rebuild the side file of the log in {}",
            dir.display()
        )
    })?;
    outln!(
        "rebuilt the side file: the oldest segment's first entry has sequence number {first_seq}"
    )?;
    run(dir, args, lock_timeout)
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
