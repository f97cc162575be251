//! Recovery on open: scan every segment, classify damage under the chosen
//! [`RecoveryMode`], repair what the mode allows, and report what was found.
//!
//! Damage is any place where a valid entry should start and does not. It is a
//! **torn tail** when it lies in the last segment and no valid entry follows it:
//! the mark of a write cut short by a crash. Anything else (damage followed by valid
//! entries, or in an older segment) is **corruption**: acknowledged entries may have
//! been lost there.
//!
//! The work is split by job, in three steps: [`survey`] reads (`scan.rs` reads
//! the segments, `segment.rs` scans one), [`plan()`] decides, as a pure function
//! of what was read (`plan.rs`; `plan/decide.rs` applies the recovery mode to
//! each segment, `verdict.rs` compares each sealed one with its checkpoint
//! record), and `execute.rs` carries the plan out: it is the only part that
//! changes files. This file runs the steps in order, and repeats a read-only
//! try that a writer disturbed (a new read of a log that changed, not a second
//! policy). [`repair`](crate::repair()) runs the same steps with a copy of the
//! affected files kept in between.

mod execute;
mod plan;
mod scan;
mod verdict;

use std::collections::HashMap;

use crate::checkpoint;
use crate::dir::list_segments;
use crate::error::Result;
use crate::fs::Dir;
use crate::index::Index;
use crate::meta::{self, Meta};
use crate::options::RecoveryMode;
use crate::position::SegmentId;
use crate::report::{Access, RecoveryReport};
use execute::execute;
pub(crate) use plan::{plan, Planned};
use scan::find_segments;
pub(crate) use scan::{Found, Survey};

/// The result of recovery: the log's index, its side file, and the report.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub index: Index,
    pub meta: Meta,
    pub report: RecoveryReport,
    /// Segments whose files are not canonically named (read-only opens only:
    /// read-write ones rename them).
    pub misnamed: HashMap<SegmentId, String>,
}

/// Recovers the log in `dir` under `mode`.
///
/// A read-write open holds the directory lock, so no flashlog writer changes the
/// files meanwhile. A read-only open takes no lock: see [`recover_live`].
pub(crate) fn recover(dir: &Dir, mode: RecoveryMode, access: Access) -> Result<Recovered> {
    match access {
        Access::ReadWrite => recover_from(dir, mode, access, meta::inspect(dir)?),
        Access::ReadOnly => recover_live(dir, mode),
    }
}

/// How long a read-only open keeps trying before it reports what the last try
/// found: a writer would have to change the log's segments without a pause of a
/// few milliseconds for this long.
const LIVE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Recovers, read-only, a log that another process may be writing: every try
/// reads the side file before it lists the directory and again at its end, and a
/// try during which the side file changed in a way that can make what it read
/// inconsistent is repeated (for at most [`LIVE_PATIENCE`]).
///
/// Why reading the side file first and last is enough: the writer records a
/// change of the segment set in the side file before the files can disagree with
/// the old side file. A rotation creates the new segment (and syncs the
/// directory) before the side file names it, so a listing made after the side
/// file was read holds every segment it names. `truncate_front` names the new
/// first segment before it removes older ones, and `truncate_back` records its
/// intent before it removes or cuts any: a segment missing from the listing, one
/// that vanished before it was opened, or one cut while it was read all come with
/// a side file that changed during the try. A try that saw no change and failed
/// failed for real (a log nobody writes is reported at once), and one that
/// succeeded while only rotations or `truncate_front` happened saw the log as it
/// was when it began (the files it opened stay readable once removed).
///
/// Every `truncate_back` counts itself in the side file (`truncations`) before it
/// changes anything, so even one that cuts only the newest segment and finishes
/// within one try, leaving the other fields as they were, makes the try repeat.
fn recover_live(dir: &Dir, mode: RecoveryMode) -> Result<Recovered> {
    let started = std::time::Instant::now();
    let mut attempt: u32 = 1;
    loop {
        let loaded = meta::inspect(dir)?;
        let before = loaded.meta;
        let outcome = recover_from(dir, mode, Access::ReadOnly, loaded);
        let after = meta::load(dir)?;
        let consistent = match &outcome {
            Ok(_) => before == after || only_grew(before, after),
            // A failure while a truncate_back is under way (its intent recorded,
            // its segments going) may be the writer's doing: try again. (A log
            // whose writer crashed then, read-only, recovers without failing.)
            Err(_) => before == after && before.is_none_or(|m| m.pending_truncate_back.is_none()),
        };
        if consistent || started.elapsed() >= LIVE_PATIENCE {
            return outcome;
        }
        attempt += 1;
        // The writer is in the middle of a change: give it a moment to finish.
        std::thread::sleep(std::time::Duration::from_millis(u64::from(attempt.min(10))));
    }
}

/// Whether the side file went from `before` to `after` by rotations and
/// `truncate_front`s only: changes that leave a try's view of the log as it was
/// when the try began.
fn only_grew(before: Option<Meta>, after: Option<Meta>) -> bool {
    let (Some(before), Some(after)) = (before, after) else {
        // A side file that appeared: the first one a new log stores.
        return before.is_none();
    };
    before.pending_truncate_back.is_none()
        && after.pending_truncate_back.is_none()
        && after.truncations == before.truncations
        && after.first_segment >= before.first_segment
        && after.first_seq >= before.first_seq
        && after.last_segment >= before.last_segment
}

/// Recovers the log in `dir` from the side file `loaded` (read before the
/// directory is listed: see [`recover_live`]): reads it ([`survey`]), decides
/// ([`plan::plan`], pure), and, read-write, carries the plan out ([`execute`]).
fn recover_from(
    dir: &Dir,
    mode: RecoveryMode,
    access: Access,
    loaded: meta::Loaded,
) -> Result<Recovered> {
    let survey = survey(dir, mode, access, loaded)?;
    let planned = plan::plan(dir.path(), mode, access, &survey)?;
    carry_out(dir, access, planned)
}

/// Reads what recovery under `mode` needs of the log in `dir`, changing
/// nothing: the directory's listing, the checkpoint, and the live segments
/// (those the checkpoint vouches for, when [`plan::trusts`] allows, after one
/// small read each; the others scanned). A read-write open reads the newest
/// segment from the disk, not the page cache: what a failed fsync did not write
/// may still sit there as clean pages (only the newest can hold such pages; the
/// sealed ones were synced before the writer moved on).
///
/// # Errors
/// [`Error::MissingSegment`](crate::Error::MissingSegment) for a gap in the
/// segment ids (nothing is read then); [`Error::Io`](crate::Error::Io).
pub(crate) fn survey(
    dir: &Dir,
    mode: RecoveryMode,
    access: Access,
    loaded: meta::Loaded,
) -> Result<Survey> {
    let listing = list_segments(dir)?;
    let layout = plan::layout(dir.path(), &listing.ids, loaded.meta)?;
    let mut survey = Survey {
        loaded,
        listing,
        records: HashMap::new(),
        checkpoint_note: None,
        found: Vec::new(),
    };
    if layout.live.is_empty() {
        return Ok(survey);
    }
    // Every mode loads the checkpoint (each checks sealed segments against their
    // records: a mismatch is damage); an unreadable one is a lost hint, noted
    // in the report. (Whatever changes a sealed segment removes the checkpoint
    // durably first, so a record that is there is true of the segment it names,
    // or something else changed it.)
    let (records, note) = checkpoint::load(dir);
    let trust = plan::trusts(mode, &layout.meta);
    survey.found = find_segments(
        dir,
        &survey.listing,
        &layout.live,
        trust.then_some(&records),
        access == Access::ReadWrite,
    )?;
    survey.records = records;
    survey.checkpoint_note = note;
    Ok(survey)
}

/// Carries out a plan (read-write only) and hands over what recovery found.
pub(crate) fn carry_out(dir: &Dir, access: Access, planned: Planned) -> Result<Recovered> {
    let Planned {
        mut index,
        meta,
        report,
        plan,
        misnamed,
    } = planned;
    if access == Access::ReadWrite {
        execute(dir, &plan, &mut index)?;
    }
    Ok(Recovered {
        index,
        meta,
        report,
        misnamed,
    })
}
