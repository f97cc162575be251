//! Repairing a log: [`repair()`], which plans with recovery's policy under the
//! directory lock, reports what it cuts, keeps a copy of the segment files it
//! changes and carries the plan out; beside it [`remove_skipped_damage`] (its
//! second half in [`RepairMode::SkipCorrupted`]) and [`rebuild_side_file`] (for
//! a log that lost every copy of its side file).

mod backup;
mod outcome;
mod side_file;
mod skipped;

use std::path::{Path, PathBuf};

use crate::checkpoint;
use crate::dir::LOCK_FILE;
use crate::error::{Error, Result};
use crate::fs::Dir;
use crate::meta::{self, SideFileAction};
use crate::options::{Options, RecoveryMode};
use crate::recovery;
use crate::report::Access;
pub use outcome::{Cut, RepairMode, RepairReport};
pub use side_file::rebuild_side_file;
pub use skipped::remove_skipped_damage;

/// How [`repair()`] repairs: the mode, whether to change anything, where to
/// keep the copy of what it changes, and the [`Options`] whose file system it
/// uses.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct RepairOptions {
    mode: RepairMode,
    dry_run: bool,
    backup_dir: Option<PathBuf>,
    options: Options,
}

impl RepairOptions {
    /// Options for a repair in `mode` that changes the log, keeps its copy in
    /// a new folder in the log directory, on the file system of
    /// [`Options::default`].
    pub fn new(mode: RepairMode) -> RepairOptions {
        RepairOptions {
            mode,
            ..RepairOptions::default()
        }
    }

    /// Changes nothing: the report says what a repair would cut. Default: off.
    pub fn dry_run(mut self) -> RepairOptions {
        self.dry_run = true;
        self
    }

    /// Where to copy the segment files the repair changes (created if missing).
    /// Default: a new folder `flashlog-repair-<unix time>` in the log directory.
    pub fn backup_dir(mut self, dir: impl Into<PathBuf>) -> RepairOptions {
        self.backup_dir = Some(dir.into());
        self
    }

    /// The options to reach the log with (its file system, chiefly). Default:
    /// [`Options::default`]. Their recovery mode is not used: the repair mode is.
    pub fn options(mut self, options: Options) -> RepairOptions {
        self.options = options;
        self
    }
}

/// Repairs the log in `dir` so that it opens in the default mode, cutting only
/// what `options`' [`RepairMode`] allows, after copying the segment files it
/// changes; with [`RepairOptions::dry_run`], only says what it would cut.
/// What `flashlog repair` runs.
///
/// Under the directory lock (as [`Wal::open`](crate::Wal::open) takes it) it
/// reads every segment once and plans twice with recovery's policy: in
/// [`RecoveryMode::SkipCorrupted`], read-only, to list every damaged region
/// ([`RepairReport::found`]), and in the repair's mode, to decide what to cut
/// ([`RepairReport::cuts`], [`RepairReport::removed_segments`]). Unless it is
/// a dry run, or there is nothing to repair, it then copies the affected
/// segment files ([`RepairReport::backup`]) and carries the plan out as a
/// read-write open in that mode would (cutting, removing segments, rewriting a
/// damaged copy of the side file); in [`RepairMode::SkipCorrupted`] it then
/// takes the skipped damage out of the segments as [`remove_skipped_damage`]
/// does. Last, it checks that the log opens in the default mode
/// ([`RepairReport::repaired`]).
///
/// Each change is crash-safe as in recovery: a crash part way leaves a log a
/// second `repair` (or an open in the same mode) finishes.
///
/// ```
/// use flashlog_wal::{Op, Options, RepairMode, RepairOptions, Wal};
///
/// let dir = tempfile::tempdir()?;
/// let wal = Wal::open(dir.path(), Options::default())?;
/// for key in [b"a", b"b", b"c"] {
///     wal.append(Op::Put, key, b"value")?; // 23 bytes each
/// }
/// wal.close()?;
/// drop(wal);
/// let segment = dir.path().join("segment-0001.log");
/// let mut bytes = std::fs::read(&segment)?;
/// bytes[23 + 20] ^= 1; // damage the middle entry
/// std::fs::write(&segment, &bytes)?;
///
/// // Not a torn tail: the default mode refuses, and changes nothing.
/// let refused = flashlog_wal::repair(dir.path(), RepairOptions::default());
/// assert!(matches!(refused, Err(flashlog_wal::Error::NotATornTail { offset: 23, .. })));
///
/// let dry = flashlog_wal::repair(dir.path(), RepairOptions::new(RepairMode::PointInTime).dry_run())?;
/// assert_eq!((dry.cuts[0].damage.position.offset, dry.cuts[0].entries_lost), (23, 1));
/// assert_eq!(dry.repaired.entries, 1);
/// assert_eq!(std::fs::read(&segment)?, bytes, "a dry run changes nothing");
///
/// let done = flashlog_wal::repair(dir.path(), RepairOptions::new(RepairMode::PointInTime))?;
/// let backup = done.backup.expect("segment 1 was copied first");
/// assert_eq!(std::fs::read(backup.join("segment-0001.log"))?, bytes);
/// assert_eq!(std::fs::read(&segment)?.len(), 23);
/// assert_eq!(Wal::open(dir.path(), Options::default())?.last_seq(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Locked`] if a `Wal` (or another repair) has the directory open
/// (the caller may retry: nothing was read); [`Error::NotATornTail`] for damage
/// [`RepairMode::TolerateCorruptedTail`] does not cut, naming the first such
/// region (nothing changed); [`Error::StillDamaged`] if the log does not open
/// in the default mode after the repair (naming the backup); what
/// [`Wal::open`](crate::Wal::open) in [`RecoveryMode::SkipCorrupted`] returns
/// for a log it cannot read ([`Error::MissingSegment`], [`Error::CorruptMeta`]
/// (see [`rebuild_side_file`]), [`Error::UnboundedDamage`], …);
/// [`Error::ReadOnly`] for read-only options; [`Error::Io`].
pub fn repair(dir: impl AsRef<Path>, options: RepairOptions) -> Result<RepairReport> {
    let RepairOptions {
        mode,
        dry_run,
        backup_dir,
        options,
    } = options;
    if options.read_only {
        return Err(Error::ReadOnly);
    }
    options.validate()?;
    let fs = options.fs.clone();
    let dir = Dir::new(fs.clone(), dir.as_ref().to_path_buf());
    let _lock = dir.lock(LOCK_FILE)?;
    // One read of every segment (no checkpoint trusted), for both plans.
    let every = RecoveryMode::SkipCorrupted;
    let survey = recovery::survey(&dir, every, Access::ReadWrite, meta::inspect(&dir)?)?;
    let found = recovery::plan(dir.path(), every, Access::ReadOnly, &survey)?.report;
    if mode == RepairMode::TolerateCorruptedTail {
        if let Some(first) = found
            .damage
            .iter()
            .find(|&damage| found.torn_tail.as_ref() != Some(damage))
        {
            return Err(Error::NotATornTail {
                segment: first.position.segment,
                path: dir.join(&survey.listing.name(first.position.segment)),
                offset: first.position.offset,
                kind: first.kind,
                len: first.len,
            });
        }
    }
    let planned = recovery::plan(dir.path(), mode.recovery_mode(), Access::ReadWrite, &survey)?;
    let skip = mode == RepairMode::SkipCorrupted;
    let mut report = RepairReport {
        mode,
        dry_run,
        cuts: outcome::cuts(mode, &found, &survey.found, &planned),
        removed_segments: planned.report.removed_segments.clone(),
        truncated_bytes: planned.report.truncated_bytes,
        rewritten_side_files: found
            .side_files
            .iter()
            .filter(|note| matches!(note.action, SideFileAction::UsedOtherCopy { .. }))
            .map(|note| note.path.clone())
            .collect(),
        affected: outcome::affected(mode, &found, &planned),
        backup: None,
        repaired: planned.report.clone(),
        found,
    };
    if dry_run || !report.needed() {
        return Ok(report);
    }
    if !report.affected.is_empty() {
        let names: Vec<String> = report
            .affected
            .iter()
            .map(|&id| survey.listing.name(id))
            .collect();
        report.backup = Some(backup::keep_copies(
            &fs,
            &dir,
            &names,
            backup_dir.as_deref(),
        )?);
    }
    let recovered = recovery::carry_out(&dir, Access::ReadWrite, planned)?;
    if skip {
        skipped::take_out(&dir, recovered)?;
    } else {
        // As a read-write open and its close would: the checkpoint of the sealed
        // segments, so that the next open need not scan them. Not having it is
        // a lost hint, not an error (the next open scans).
        let sealed = recovered.index.sealed(recovered.index.active().id);
        if !sealed.is_empty() {
            let _ = checkpoint::store(&dir, &sealed);
        }
    }
    // The log must now open in the default mode; what that open finds is the
    // report of the repaired log.
    let check = RecoveryMode::default();
    let repaired = meta::inspect(&dir)
        .and_then(|loaded| recovery::survey(&dir, check, Access::ReadOnly, loaded))
        .and_then(|survey| recovery::plan(dir.path(), check, Access::ReadOnly, &survey));
    match repaired {
        Ok(planned) => report.repaired = planned.report,
        Err(err) => {
            return Err(Error::StillDamaged {
                dir: dir.path().to_path_buf(),
                backup: report.backup,
                source: Box::new(err),
            })
        }
    }
    Ok(report)
}
