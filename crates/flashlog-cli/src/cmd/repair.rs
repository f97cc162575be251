//! `flashlog repair`: prints what [`flashlog_wal::repair`] cuts (a torn tail, or,
//! when told, into the middle of the log) after copying the affected segment
//! files to a backup folder, and rewrites a damaged copy of the side file from
//! the intact one; rebuilds a lost side file with `--first-seq N`
//! ([`flashlog_wal::rebuild_side_file`]). The library decides and changes; this
//! module waits for the lock and prints.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use flashlog_wal::{
    Damage, Options, Position, RepairMode, RepairOptions, RepairReport, SideFileAction,
    META_COPY_FILE, META_FILE,
};

use super::open::{check_log_dir, wait_for_lock, Need, SegmentNames};
use super::open_error;
use super::verify::describe_as;
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

impl From<Mode> for RepairMode {
    fn from(mode: Mode) -> RepairMode {
        match mode {
            Mode::TolerateCorruptedTail => RepairMode::TolerateCorruptedTail,
            Mode::PointInTime => RepairMode::PointInTime,
            Mode::SkipCorrupted => RepairMode::SkipCorrupted,
        }
    }
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

/// Repairs the log in `dir`, waiting up to `lock_timeout` for its lock.
pub fn run(dir: &Path, args: &Args, lock_timeout: Duration) -> anyhow::Result<ExitCode> {
    check_log_dir(dir, Need::Log)?;
    let mode = args.mode.map_or(RepairMode::default(), RepairMode::from);
    let repair = |dry_run: bool| {
        let options = RepairOptions::new(mode);
        let options = if dry_run { options.dry_run() } else { options };
        wait_for_lock(lock_timeout, || flashlog_wal::repair(dir, options.clone()))
    };
    // `--first-seq` only rebuilds a side file of which no intact copy is left:
    // an intact one must agree with it before anything changes, so a dry run
    // comes first.
    let check_first = args.first_seq.is_some() && !args.dry_run;
    let mut report = match repair(args.dry_run || check_first) {
        Ok(report) => report,
        Err(err) => return failed(dir, args, lock_timeout, err),
    };
    if let Some(first_seq) = args.first_seq {
        if first_seq != report.found.first_seq {
            bail!(
                "the log's side file is intact and says its first sequence number is {}: \
                 --first-seq only rebuilds a side file of which no intact copy is left",
                report.found.first_seq
            );
        }
    }
    if check_first {
        report = match repair(false) {
            Ok(report) => report,
            Err(err) => return failed(dir, args, lock_timeout, err),
        };
    }
    print(&report)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints what the repair did (or, in a dry run, would do).
fn print(report: &RepairReport) -> anyhow::Result<()> {
    let found = &report.found;
    let verb = if report.dry_run { "would" } else { "will" };
    for note in &found.side_files {
        if let SideFileAction::UsedOtherCopy { .. } = note.action {
            outln!(
                "{verb} rewrite {} ({}) from the other copy of the side file",
                note.path.display(),
                note.problem
            )?;
        }
    }
    if found.damage.is_empty() {
        if !report.needed() {
            outln!(
                "nothing to repair: {}, no damage",
                count(found.entries, "entry", "entries")
            )?;
        } else if report.dry_run {
            outln!("dry run: nothing changed")?;
        } else {
            outln!("repaired: the side file's copies agree again")?;
        }
        return Ok(());
    }
    for cut in &report.cuts {
        let damage = cut.damage;
        if report.mode == RepairMode::PointInTime {
            outln!(
                "{verb} cut segment {} at offset {} ({}), {} bytes in all",
                damage.position.segment,
                damage.position.offset,
                damage.kind,
                report.truncated_bytes
            )?;
        } else {
            outln!(
                "{verb} cut {} bytes at segment {} offset {} ({})",
                damage.len,
                damage.position.segment,
                damage.position.offset,
                damage.kind
            )?;
        }
    }
    if report.mode == RepairMode::PointInTime {
        for id in &report.removed_segments {
            outln!("{verb} remove {}", id.file_name())?;
        }
    }
    outln!(
        "{verb} keep {} of {} valid entries",
        report.repaired.entries,
        found.entries
    )?;
    if report.dry_run {
        outln!("dry run: nothing changed")?;
        return Ok(());
    }
    if let Some(backup) = &report.backup {
        outln!("copied the affected segments to {}", backup.display())?;
    }
    outln!(
        "repaired: {} in {}",
        count(report.repaired.entries, "entry", "entries"),
        count(report.repaired.segments, "segment", "segments")
    )?;
    Ok(())
}

/// What a failed repair prints: the mode it needs, for damage in the middle;
/// a rebuilt side file (then the repair again), for a lost one and
/// `--first-seq`; the error, with the open's hints, otherwise.
fn failed(
    dir: &Path,
    args: &Args,
    lock_timeout: Duration,
    err: anyhow::Error,
) -> anyhow::Result<ExitCode> {
    use flashlog_wal::Error as WalError;
    let wal = match err.downcast_ref::<WalError>() {
        // Busy (exit code 3) and the repair's own verdict stay as they are.
        None | Some(WalError::Locked { .. } | WalError::StillDamaged { .. }) => return Err(err),
        Some(wal) => wal,
    };
    if let WalError::NotATornTail {
        segment,
        offset,
        kind,
        len,
        ..
    } = *wal
    {
        let damage = Damage {
            position: Position { segment, offset },
            kind,
            len,
        };
        let described = describe_as("corruption", &damage, &SegmentNames::read(dir));
        if args.mode.is_none() {
            bail!(
                "the log is damaged in the middle ({described}); repair cuts into the middle of the log only when told how: \
                 --mode point-in-time keeps the entries before the damage, --mode skip-corrupted removes only the damaged bytes"
            );
        }
        bail!("the damage is not a torn tail ({described}): use --mode point-in-time or --mode skip-corrupted");
    }
    match args.first_seq {
        Some(first_seq) if side_file_lost(dir, wal) => rebuild(dir, args, first_seq, lock_timeout),
        _ => match err.downcast::<WalError>() {
            Ok(wal) => Err(open_error(dir, wal)),
            Err(err) => Err(err),
        },
    }
}

/// Whether the repair failed for want of the side file: no intact copy left, or
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
