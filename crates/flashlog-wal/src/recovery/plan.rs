//! Recovery's policy, as pure functions: which segments to read
//! ([`layout`], [`trusts`]), and, from what reading them found (a [`Survey`]),
//! what the recovery mode keeps and every change to the files that keeping it
//! takes ([`plan`] returns a [`Planned`]: the index, the side file, the report
//! and the [`Plan`]). Nothing here reads or changes a file: `scan.rs` reads,
//! `execute.rs` carries the plan out.

mod decide;

use std::collections::HashMap;
use std::path::Path;

use crate::checkpoint::Sealed;
use crate::dir::{check_contiguous, Listing, INDEX_TMP_FILE, META_COPY_TMP_FILE, META_TMP_FILE};
use crate::error::{Error, Result};
use crate::index::{Index, SegmentIndex};
use crate::meta::{Meta, SideFileAction};
use crate::options::RecoveryMode;
use crate::position::SegmentId;
use crate::recovery::scan::Survey;
use crate::report::{Access, RecoveryReport};
use crate::truncate::{self, BackCut};
pub(crate) use decide::{decide, Decided};

/// Every change recovery makes to the files, decided before any is made, in
/// the order `execute.rs` makes them (each step idempotent, every crash point
/// recoverable). Empty for a read-only open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Misnamed segment files (`segment-7.log`) and the canonical names they get.
    pub(crate) renames: Vec<(String, SegmentId)>,
    /// Sealed segments that no checkpoint record describes, to fsync: their
    /// entries count as durable from now on, and a later checkpoint names them.
    pub(crate) sync: Vec<SegmentId>,
    /// The checkpoint records that stay, stored durably before any segment is
    /// cut or dropped (a record must not outlive its segment).
    pub(crate) retain_records: Option<Vec<Sealed>>,
    /// Temporary files a crash left (never the truth), to remove.
    pub(crate) leftovers: Vec<String>,
    /// No log yet: create segment 1 (and store the side file last).
    pub(crate) create: bool,
    /// The side file, stored again before any segment changes: its copies
    /// differ (one bad, missing or older).
    pub(crate) rewrite_meta: Option<Meta>,
    /// Segments older than the side file's first segment (an interrupted
    /// `truncate_front`), removed oldest first.
    pub(crate) stale: Vec<SegmentId>,
    /// The side file stored before segments are cut or dropped: it counts the
    /// cut and no longer names dropped segments.
    pub(crate) meta_before_cut: Option<Meta>,
    /// Segments after a point-in-time cut, removed newest first.
    pub(crate) dropped: Vec<SegmentId>,
    /// A segment to cut to a length.
    pub(crate) cut: Option<(SegmentId, u64)>,
    /// An interrupted `truncate_back` to finish: its cut (none if its sequence
    /// number is no longer in the log), then the side file without its intent.
    pub(crate) truncate_back: Option<(Option<BackCut>, Meta)>,
    /// The side file stored last: naming the newest segment where it did not.
    pub(crate) meta_last: Option<Meta>,
}

/// The policy's answer: what the log is after recovery, and the plan that
/// makes the files so.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub(crate) index: Index,
    /// The side file as it is once the plan is carried out (as read, with a
    /// finished `truncate_back` cleared, for a read-only open).
    pub(crate) meta: Meta,
    pub(crate) report: RecoveryReport,
    pub(crate) plan: Plan,
    /// Segments whose files are not canonically named, after the plan (empty
    /// for a read-write open, which renames them).
    pub(crate) misnamed: HashMap<SegmentId, String>,
}

/// The listed segments sorted into stale and live, and the side file recovery
/// goes by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The side file read, or (a log without one) the default one, starting at
    /// the lowest segment present.
    pub(crate) meta: Meta,
    pub(crate) stale: Vec<SegmentId>,
    pub(crate) live: Vec<SegmentId>,
}

/// Sorts the listed segment ids (sorted) by the side file `stored` (`None`: the
/// log has none, so no `truncate_front` ever ran and no segment is stale: a log
/// whose files start at segment-0000.log starts there). See [`split_listed`].
pub(crate) fn layout(dir: &Path, ids: &[SegmentId], stored: Option<Meta>) -> Result<Layout> {
    let mut meta = stored.unwrap_or_default();
    if stored.is_none() {
        if let Some(&lowest) = ids.first() {
            meta.first_segment = meta.first_segment.min(lowest);
        }
    }
    let (stale, live) = split_listed(dir, ids, &meta)?;
    Ok(Layout { meta, stale, live })
}

/// Splits the listed segment ids (sorted) into the stale ones, before the side
/// file's first segment (left by an interrupted `truncate_front`, removed oldest
/// first), and the live ones, which must run without a gap from the first
/// segment to at least the newest one the side file names
/// ([`Error::MissingSegment`] otherwise). Pure: `dir` only names the log in errors.
pub(crate) fn split_listed(
    dir: &Path,
    ids: &[SegmentId],
    meta: &Meta,
) -> Result<(Vec<SegmentId>, Vec<SegmentId>)> {
    let (stale, live): (Vec<SegmentId>, Vec<SegmentId>) =
        ids.iter().partition(|&&id| id < meta.first_segment);
    check_contiguous(dir, meta.first_segment, &live)?;
    if let Some(last) = meta.last_segment {
        if live.last().is_some_and(|&newest| newest < last) {
            return Err(Error::MissingSegment {
                dir: dir.to_path_buf(),
                id: last,
            });
        }
    }
    Ok((stale, live))
}

/// Whether recovery may trust the checkpoint's records instead of scanning the
/// sealed segments they describe: only under the default mode (the others
/// promise to look at every byte) and when no `truncate_back` is to be finished
/// (it must see the segment it cuts).
pub(crate) fn trusts(mode: RecoveryMode, meta: &Meta) -> bool {
    mode == RecoveryMode::TolerateCorruptedTail && meta.pending_truncate_back.is_none()
}

/// Decides, per the recovery mode, what the log is after recovery and what
/// changes to the files that takes (none if `access` is read-only), from what
/// the directory held. Pure: `dir` only names files in errors.
///
/// # Errors
/// [`Error::MissingSegment`] for segments missing; what [`decide`] returns for
/// damage the mode does not accept.
pub(crate) fn plan(
    dir: &Path,
    mode: RecoveryMode,
    access: Access,
    survey: &Survey,
) -> Result<Planned> {
    let writes = access == Access::ReadWrite;
    let listing = &survey.listing;
    let Layout {
        mut meta,
        stale,
        live,
    } = layout(dir, &listing.ids, survey.loaded.meta)?;
    let mut plan = Plan {
        leftovers: leftovers(listing),
        ..Plan::default()
    };
    if writes {
        plan.renames = renames(listing);
    }
    let mut side_files = Vec::new();
    if let Some(mut note) = survey.loaded.bad_copy.clone() {
        note.action = SideFileAction::UsedOtherCopy { rewritten: writes };
        side_files.push(note);
    }
    let misnamed = if writes {
        HashMap::new()
    } else {
        listing.misnamed.clone()
    };

    if live.is_empty() {
        if survey.loaded.meta.is_some() || !listing.ids.is_empty() {
            return Err(Error::MissingSegment {
                dir: dir.to_path_buf(),
                id: meta.first_segment,
            });
        }
        let mut report = RecoveryReport::starting_at(meta.first_seq);
        report.side_files = side_files;
        report.created = true;
        report.segments = 1;
        let mut index = Index::default();
        index.segments.push_back(SegmentIndex::new(SegmentId(1), 1));
        if writes {
            plan.create = true;
            // From now on, losing segment 1 is an error, not a new empty log.
            meta.last_segment = Some(SegmentId(1));
            plan.meta_last = Some(meta);
        } else {
            plan = Plan::default();
        }
        return Ok(Planned {
            index,
            meta,
            report,
            plan,
            misnamed,
        });
    }
    side_files.extend(survey.checkpoint_note.clone());
    let records = &survey.records;
    let Decided {
        mut index,
        dropped,
        cut,
        mut report,
    } = decide(dir, listing, mode, meta.first_seq, &survey.found, records)?;
    report.side_files = side_files;
    report.removed_segments = stale.iter().chain(dropped.iter()).copied().collect();
    if !writes {
        plan = Plan::default();
    } else {
        plan.sync = unrecorded(&index, records);
        if survey.loaded.meta.is_some() && survey.loaded.rewrite {
            plan.rewrite_meta = Some(meta);
        }
        let newest_kept = index.active().id;
        let changed = cut
            .map(|(id, _)| id)
            .into_iter()
            .chain(dropped.iter().copied())
            .min();
        if let Some(changed) = changed {
            // Segments are about to change: their records must not outlive them
            // (those of the segments before stay if they hold gaps, see checkpoint).
            let kept = index.sealed(newest_kept);
            plan.retain_records = Some(kept.into_iter().filter(|r| r.id < changed).collect());
            // Positions from the cut on will hold other entries: counted, before any
            // segment changes, for read-only views in other processes (see
            // `Shared::confirm_view`). And before the newest segments go, the side
            // file must stop naming them.
            meta.truncations += 1;
            meta.last_cut = index.next_seq();
            if !dropped.is_empty() {
                meta.last_segment = Some(newest_kept);
            }
            plan.meta_before_cut = Some(meta);
        }
        plan.stale = stale;
        plan.dropped = dropped;
        plan.cut = cut;
    }

    if let Some(seq) = meta.pending_truncate_back {
        // Recovery scans every segment when one is pending (see `trusts`), so
        // the segment holding `seq` has its offsets.
        let back = truncate::plan_back(&index, seq);
        if let Some(back) = &back {
            truncate::apply_back(&mut index, back);
            report.removed_segments.extend(back.removed.iter().copied());
        }
        meta.pending_truncate_back = None;
        if writes {
            plan.truncate_back = Some((back, meta));
        }
        report.finished_truncate_back = Some(seq);
    }
    // Record the newest segment where the side file does not (a Go-written log,
    // or one the Go implementation appended segments to).
    let active = index.active().id;
    if writes && meta.last_segment != Some(active) {
        meta.last_segment = Some(active);
        plan.meta_last = Some(meta);
    }
    summarise(&index, &mut report);
    Ok(Planned {
        index,
        meta,
        report,
        plan,
        misnamed,
    })
}

/// The temporary files a crash left in the listing, in the order they go.
fn leftovers(listing: &Listing) -> Vec<String> {
    let mut names = Vec::new();
    if listing.has_index_tmp {
        names.push(INDEX_TMP_FILE.to_owned());
    }
    names.extend(listing.repair_tmps.iter().cloned());
    if listing.has_tmp {
        names.push(META_TMP_FILE.to_owned());
    }
    if listing.has_copy_tmp {
        names.push(META_COPY_TMP_FILE.to_owned());
    }
    names
}

/// The misnamed segment files and their canonical names, by id.
fn renames(listing: &Listing) -> Vec<(String, SegmentId)> {
    let mut renames: Vec<(String, SegmentId)> = listing
        .misnamed
        .iter()
        .map(|(&id, name)| (name.clone(), id))
        .collect();
    renames.sort_by_key(|&(_, id)| id);
    renames
}

/// The sealed segments kept that no checkpoint record describes as they are
/// (those of a Go writer, or of a writer that crashed before its next
/// checkpoint). Segments this library sealed were synced then, and syncing a
/// clean file again costs little.
fn unrecorded(index: &Index, records: &HashMap<SegmentId, Sealed>) -> Vec<SegmentId> {
    let active = index.active().id;
    let sealed: HashMap<SegmentId, Sealed> = index
        .sealed(active)
        .into_iter()
        .map(|record| (record.id, record))
        .collect();
    index
        .segments
        .iter()
        .map(|segment| segment.id)
        .filter(|&id| {
            let recorded = records
                .get(&id)
                .is_some_and(|record| sealed.get(&id) == Some(record));
            id != active && !recorded
        })
        .collect()
}

/// Fills in the report's counts from the index of what is kept.
fn summarise(index: &Index, report: &mut RecoveryReport) {
    report.segments = index.segments.len() as u64;
    report.entries = index.segments.iter().map(SegmentIndex::len).sum();
    report.bytes = index.segments.iter().map(|s| s.end).sum();
    report.first_seq = index.first_seq();
    report.last_seq = index.next_seq() - 1;
}

#[cfg(test)]
mod tests;
