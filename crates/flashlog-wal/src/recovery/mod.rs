//! Recovery on open: scan every segment, classify damage under the chosen
//! [`RecoveryMode`], repair what the mode allows, and report what was found.
//!
//! Damage is any place where a valid entry should start and does not. It is a
//! **torn tail** when it lies in the last segment and no valid entry follows it:
//! the mark of a write cut short by a crash. Anything else (damage followed by valid
//! entries, or in an older segment) is **corruption**: acknowledged entries may have
//! been lost there.
//!
//! The work is split by job: `scan.rs` reads the segments (`segment.rs` scans
//! one), `verdict.rs` compares each sealed one with its checkpoint record,
//! `plan.rs` applies the recovery mode and decides what to change, `execute.rs`
//! changes it; this file lists the directory, runs the steps in order, and
//! retries a read-only open that a writer disturbed.

mod execute;
mod plan;
mod scan;
mod verdict;

use std::collections::HashMap;

use crate::checkpoint;
use crate::dir::{list_segments, rename_misnamed};
use crate::error::{Error, Result};
use crate::fs::{Dir, OpenMode};
use crate::index::{Index, SegmentIndex};
use crate::meta::{self, Meta, SideFileAction};
use crate::options::RecoveryMode;
use crate::position::SegmentId;
use crate::report::{Access, RecoveryReport};
use crate::truncate;
use execute::{execute, remove_leftovers, sync_unrecorded};
use plan::{decide, split_listed, Plan};
use scan::find_segments;

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
/// directory is listed: see [`recover_live`]).
fn recover_from(
    dir: &Dir,
    mode: RecoveryMode,
    access: Access,
    loaded: meta::Loaded,
) -> Result<Recovered> {
    let stored_meta = loaded.meta;
    let mut listing = list_segments(dir)?;
    if access == Access::ReadWrite {
        rename_misnamed(dir, &mut listing)?;
    }
    let ids = listing.ids.clone();
    let has_tmp = listing.has_tmp;
    let mut meta = stored_meta.unwrap_or_default();
    if stored_meta.is_none() {
        // Without a side file no truncate_front ever ran, so no segment is stale: a
        // log whose files start at segment-0000.log starts there.
        if let Some(&lowest) = ids.first() {
            meta.first_segment = meta.first_segment.min(lowest);
        }
    }
    let mut plan = Plan {
        rewrite_meta: loaded.rewrite,
        remove_tmp: has_tmp,
        remove_copy_tmp: listing.has_copy_tmp,
        remove_index_tmp: listing.has_index_tmp,
        remove_repair_tmps: listing.repair_tmps.clone(),
        ..Plan::default()
    };
    let (stale, live) = split_listed(dir.path(), &ids, &meta)?;
    plan.stale = stale;

    let mut report = RecoveryReport::starting_at(meta.first_seq);
    if let Some(mut note) = loaded.bad_copy {
        note.action = SideFileAction::UsedOtherCopy {
            rewritten: access == Access::ReadWrite,
        };
        report.side_files.push(note);
    }

    if live.is_empty() {
        if stored_meta.is_some() || !ids.is_empty() {
            return Err(Error::MissingSegment {
                dir: dir.path().to_path_buf(),
                id: meta.first_segment,
            });
        }
        report.created = true;
        let mut index = Index::default();
        index.segments.push_back(SegmentIndex::new(SegmentId(1), 1));
        if access == Access::ReadWrite {
            remove_leftovers(dir, &plan)?;
            drop(dir.open(&SegmentId(1).file_name(), OpenMode::CreateNew)?);
            dir.sync()?;
            // From now on, losing segment 1 is an error, not a new empty log.
            meta.last_segment = Some(SegmentId(1));
            meta::store(dir, &meta)?;
        }
        report.segments = 1;
        return Ok(Recovered {
            index,
            meta,
            report,
            misnamed: HashMap::new(),
        });
    }
    // The checkpoint stands in for scanning sealed segments only under the default
    // mode (the others promise to look at every byte) and when no truncate_back is
    // to be finished (it must see the segment it cuts). Every mode checks each
    // sealed segment against its record: a mismatch is damage. (Whatever changes a
    // sealed segment removes the checkpoint durably first, so a record that is
    // there is true of the segment it names, or something else changed it.)
    let trust = mode == RecoveryMode::TolerateCorruptedTail && meta.pending_truncate_back.is_none();
    // Every mode loads it (each checks sealed segments against their records);
    // an unreadable one is a lost hint, noted in the report.
    let (records, note) = checkpoint::load(dir);
    report.side_files.extend(note);
    // What a failed fsync did not write may still sit in the page cache as clean
    // pages: a read-write open reads the newest segment from the disk. Only the
    // newest can hold such pages; the sealed ones were synced before the writer
    // moved on.
    let drop_newest_cache = access == Access::ReadWrite;
    let found = find_segments(
        dir,
        &listing,
        &live,
        trust.then_some(&records),
        drop_newest_cache,
    )?;
    let index = decide(
        dir.path(),
        mode,
        meta.first_seq,
        found,
        &records,
        &mut plan,
        &mut report,
    )?;
    if access == Access::ReadWrite {
        sync_unrecorded(dir, &index, &records)?;
    }
    let mut recovered = Recovered {
        index,
        meta,
        report,
        misnamed: listing.misnamed,
    };
    if access == Access::ReadWrite {
        execute(dir, &plan, &mut recovered.meta, &recovered.index)?;
    }
    recovered.report.removed_segments = plan
        .stale
        .iter()
        .chain(plan.dropped.iter())
        .copied()
        .collect();

    if let Some(seq) = recovered.meta.pending_truncate_back {
        let finished =
            truncate::finish_back(dir, &mut recovered.index, &mut recovered.meta, seq, access)?;
        recovered.report.removed_segments.extend(finished);
        recovered.report.finished_truncate_back = Some(seq);
    }
    // Record the newest segment where the side file does not (a Go-written log,
    // or one the Go implementation appended segments to).
    let active = recovered.index.active().id;
    if access == Access::ReadWrite && recovered.meta.last_segment != Some(active) {
        recovered.meta.last_segment = Some(active);
        meta::store(dir, &recovered.meta)?;
    }
    summarise(&recovered.index, &mut recovered.report);
    Ok(recovered)
}

fn summarise(index: &Index, report: &mut RecoveryReport) {
    report.segments = index.segments.len() as u64;
    report.entries = index.segments.iter().map(SegmentIndex::len).sum();
    report.bytes = index.segments.iter().map(|s| s.end).sum();
    report.first_seq = index.first_seq();
    report.last_seq = index.next_seq() - 1;
}
