//! The mode's policy for each segment as found: what it keeps, where it cuts,
//! which segments it drops, and what the report says it found. Pure.

use std::collections::HashMap;
use std::path::Path;

use crate::checkpoint::Sealed;
use crate::dir::Listing;
use crate::error::{CorruptionKind, Error, Result};
use crate::index::{Gap, Index, SegmentIndex};
use crate::options::RecoveryMode;
use crate::position::{Position, SegmentId};
use crate::recovery::scan::Found;
use crate::recovery::verdict::{check_scan, gaps_of, recorded_gaps, Verdict};
use crate::report::{Damage, RecoveryReport};
use crate::segment::{Resume, ScanDamage};

/// What the mode keeps of the segments found, and what it found.
#[derive(Debug, Clone)]
pub(crate) struct Decided {
    /// The kept entries.
    pub(crate) index: Index,
    /// Segments after a point-in-time cut, to be removed newest first.
    pub(crate) dropped: Vec<SegmentId>,
    /// A segment to cut to a length.
    pub(crate) cut: Option<(SegmentId, u64)>,
    /// The findings: damage, torn tail, skipped regions, bytes cut, preallocated
    /// bytes, numbering (the counts are filled in later).
    pub(crate) report: RecoveryReport,
}

/// Damage skipped under [`RecoveryMode::SkipCorrupted`] whose number of
/// entries is not known (yet): a later record may tell.
#[derive(Debug, Clone, Copy)]
struct Uncounted {
    /// Where its segment is in the index.
    segment: usize,
    /// Sequence numbers of its segment before it, counted from the first.
    at: u64,
    /// Where the damaged bytes start.
    offset: u64,
    /// The sequence number the first entry after it got.
    seq: u64,
}

/// Gives the entries that skipped damage held, `missing` of them (a record
/// after it says how many), their sequence numbers: a gap at the last
/// uncounted region, so that the entries after it have the recorded numbers.
/// With more than one region, how many each held is unknown: the numbering
/// between the first and the last stays unverified.
fn count_skipped(
    index: &mut Index,
    uncounted: &[Uncounted],
    missing: u64,
    report: &mut RecoveryReport,
) {
    let Some(last) = uncounted.last() else {
        return;
    };
    if missing > 0 {
        index.segments[last.segment].add_gap(Gap {
            at: last.at,
            len: missing,
            offset: last.offset,
        });
        for later in index.segments.iter_mut().skip(last.segment + 1) {
            later.first_seq += missing;
        }
    }
    if uncounted.len() > 1 {
        for region in &uncounted[..uncounted.len() - 1] {
            index.segments[region.segment].unverified = true;
        }
        unverified_from(report, uncounted[0].seq);
    }
}

/// Records that sequence numbers from `seq` on may not be those the entries
/// were appended with.
fn unverified_from(report: &mut RecoveryReport, seq: u64) {
    let from = report.numbering_unverified_from.get_or_insert(seq);
    *from = (*from).min(seq);
}

/// Decides, per the recovery mode, what to keep of each segment found (the live
/// ones, oldest first; the first holds `first_seq`), checking each sealed segment
/// against its checkpoint record (see [`Verdict`]): the index of what is kept,
/// the cut and the dropped segments that keeping it takes, and what was found.
/// Pure: `dir` and `names` only name files in errors.
pub(crate) fn decide(
    dir: &Path,
    names: &Listing,
    mode: RecoveryMode,
    first_seq: u64,
    found: &[Found],
    records: &HashMap<SegmentId, Sealed>,
) -> Result<Decided> {
    let mut report = RecoveryReport::starting_at(first_seq);
    let mut dropped = Vec::new();
    let mut cut = None;
    let last = found.len() - 1;
    let mut index = Index::default();
    let mut next_seq = first_seq;
    let mut stop_after: Option<usize> = None;
    let mut uncounted: Vec<Uncounted> = Vec::new();
    for (i, found) in found.iter().enumerate() {
        if stop_after.is_some() {
            dropped.push(found.id());
            report.truncated_bytes += found.len();
            continue;
        }
        let id = found.id();
        let path = || dir.join(names.name(id));
        // Zeros reaching the end of a sealed segment are damage (it was trimmed
        // before the next one started); in the newest, preallocated space.
        let mut damages = match found {
            Found::Scanned(scan) => {
                let mut damages = scan.damage.clone();
                if let (Some(zeros), false) = (scan.zero_tail, i == last) {
                    damages.push(ScanDamage {
                        offset: zeros,
                        kind: CorruptionKind::BadLength(0),
                        resume: Resume::Nowhere,
                        last_before: scan.last,
                    });
                }
                damages
            }
            Found::Trusted(_) => Vec::new(),
        };
        // The newest segment is never vouched for: the writer appends to it.
        let record = records.get(&id).cloned().filter(|_| i != last);
        let mut verdict = match (found, record) {
            (Found::Trusted(record), _) => Verdict::Matches(record.clone()),
            (Found::Scanned(scan), Some(record)) => check_scan(scan, &damages, record),
            (Found::Scanned(_), None) => Verdict::Unrecorded,
        };
        // The record's sequence numbers must continue the segments before it.
        let mut renumbered = false;
        if let Some(record) = verdict.record() {
            if record.first_seq == next_seq {
                // Skipped damage before held no recorded entry.
                uncounted.clear();
            } else if mode == RecoveryMode::SkipCorrupted
                && record.first_seq > next_seq
                && !uncounted.is_empty()
            {
                count_skipped(
                    &mut index,
                    &uncounted,
                    record.first_seq - next_seq,
                    &mut report,
                );
                next_seq = record.first_seq;
                uncounted.clear();
            } else {
                verdict = Verdict::Changed(record);
                renumbered = true;
            }
        }
        if let Verdict::Changed(record) = verdict {
            let found_entries = match found {
                Found::Scanned(scan) => scan.offsets.len() as u64,
                Found::Trusted(record) => record.entries,
            };
            let kind = CorruptionKind::SegmentChanged {
                recorded_first_seq: record.first_seq,
                recorded_entries: record.entries,
                recorded_len: record.len,
                found_first_seq: next_seq,
                found_entries,
                found_len: found.len(),
            };
            report.damage.push(Damage {
                position: Position {
                    segment: id,
                    offset: 0,
                },
                kind,
                len: found.len(),
            });
            match mode {
                RecoveryMode::AbsoluteConsistency | RecoveryMode::TolerateCorruptedTail => {
                    return Err(Error::Corrupt {
                        segment: id,
                        path: path(),
                        offset: 0,
                        kind,
                    });
                }
                RecoveryMode::PointInTime => {
                    // Cut before it: it stays, empty, as the newest segment.
                    if found.len() > 0 {
                        cut = Some((id, 0));
                        report.truncated_bytes += found.len();
                    }
                    index.segments.push_back(SegmentIndex::new(id, next_seq));
                    stop_after = Some(i);
                }
                RecoveryMode::SkipCorrupted => {
                    // Which of its entries are the recorded ones cannot be told:
                    // all of it is skipped, and its recorded entries are a gap.
                    report.skipped += 1;
                    if renumbered {
                        unverified_from(&mut report, next_seq);
                    }
                    let mut segment =
                        SegmentIndex::scanned(id, next_seq, Vec::new(), found.len(), None);
                    if record.entries > 0 {
                        segment.add_gap(Gap {
                            at: 0,
                            len: record.entries,
                            offset: 0,
                        });
                    }
                    segment.skipped_damage = true;
                    segment.record = Some(record);
                    next_seq = segment.next_seq();
                    index.segments.push_back(segment);
                }
            }
            continue;
        }
        let scan = match found {
            Found::Scanned(scan) => scan,
            Found::Trusted(record) => {
                let segment = SegmentIndex::trusted(record);
                next_seq = segment.next_seq();
                index.segments.push_back(segment);
                continue;
            }
        };
        let mut keep_until = scan.len;
        if let (Some(zeros), true) = (scan.zero_tail, i == last) {
            // Preallocated space: the entries end here; the writer reuses the zeros.
            keep_until = zeros;
            report.preallocated_bytes = scan.len - zeros;
        }
        if scan.len == 0 && i != last && verdict == Verdict::Unrecorded {
            // The writer starts a segment only to put an entry in it.
            damages.push(ScanDamage {
                offset: 0,
                kind: CorruptionKind::EmptySegment,
                resume: Resume::Nowhere,
                last_before: None,
            });
        }
        for damage in &damages {
            let found = Damage {
                position: Position {
                    segment: scan.id,
                    offset: damage.offset,
                },
                kind: damage.kind,
                len: damage.resume.end(scan.len) - damage.offset,
            };
            report.damage.push(found);
            let torn_tail = i == last && damage.resume == Resume::Nowhere;
            let corrupt = || Error::Corrupt {
                segment: scan.id,
                path: path(),
                offset: damage.offset,
                kind: damage.kind,
            };
            if damage.resume == Resume::Unsearched
                && matches!(
                    mode,
                    RecoveryMode::TolerateCorruptedTail | RecoveryMode::SkipCorrupted
                )
            {
                // Neither a torn tail (valid entries may follow) nor a region to
                // skip (where it ends is unknown).
                return Err(Error::UnboundedDamage {
                    segment: scan.id,
                    path: path(),
                    offset: damage.offset,
                    kind: damage.kind,
                });
            }
            match mode {
                RecoveryMode::AbsoluteConsistency => return Err(corrupt()),
                RecoveryMode::TolerateCorruptedTail if !torn_tail => return Err(corrupt()),
                RecoveryMode::TolerateCorruptedTail => {
                    keep_until = damage.offset;
                    report.torn_tail = Some(found);
                }
                RecoveryMode::SkipCorrupted if torn_tail => {
                    keep_until = damage.offset;
                    report.torn_tail = Some(found);
                }
                RecoveryMode::SkipCorrupted => {
                    report.skipped += 1;
                    if verdict == Verdict::Unrecorded {
                        let at = scan
                            .offsets
                            .iter()
                            .filter(|&&offset| u64::from(offset) < damage.offset)
                            .count() as u64;
                        uncounted.push(Uncounted {
                            segment: index.segments.len(),
                            at,
                            offset: damage.offset,
                            seq: next_seq + at,
                        });
                    }
                }
                RecoveryMode::PointInTime => {
                    keep_until = damage.offset;
                    if torn_tail {
                        report.torn_tail = Some(found);
                    }
                    stop_after = Some(i);
                    break;
                }
            }
        }
        let data_end = scan.len
            - if i == last {
                report.preallocated_bytes
            } else {
                0
            };
        if keep_until < data_end {
            cut = Some((scan.id, keep_until));
            report.truncated_bytes += scan.len - keep_until;
            report.preallocated_bytes = 0;
        }
        let gaps = match &verdict {
            Verdict::Damaged(record, split) if mode == RecoveryMode::SkipCorrupted => {
                gaps_of(scan, &damages, record.entries, split)
            }
            Verdict::Matches(record) => recorded_gaps(scan, record),
            _ => Vec::new(),
        };
        // Valid entries between damaged regions whose split is unknown are part
        // of the one gap.
        let dropped = |offset: u64| {
            gaps.iter()
                .any(|&(gap, end)| gap.offset < offset && offset < end && gap.len > 0)
        };
        let offsets: Vec<u32> = scan
            .offsets
            .iter()
            .copied()
            .filter(|&offset| u64::from(offset) < keep_until && !dropped(u64::from(offset)))
            .collect();
        // The last entry kept: the scan's last, or the last before the damage the
        // segment is cut at.
        let last_kept = if offsets.len() == scan.offsets.len() {
            scan.last
        } else {
            damages
                .iter()
                .find(|damage| damage.offset == keep_until)
                .and_then(|damage| damage.last_before)
        };
        let mut segment = SegmentIndex::scanned(scan.id, next_seq, offsets, keep_until, last_kept);
        for &(gap, _) in &gaps {
            if gap.len > 0 {
                segment.add_gap(gap);
            }
        }
        segment.skipped_damage = damages.iter().any(|damage| damage.offset < keep_until);
        segment.record = verdict.record();
        next_seq = segment.next_seq();
        index.segments.push_back(segment);
    }
    if let Some(first) = uncounted.first() {
        // No record after the damage says how many entries it held.
        for region in &uncounted {
            index.segments[region.segment].unverified = true;
        }
        unverified_from(&mut report, first.seq);
    }
    Ok(Decided {
        index,
        dropped,
        cut,
        report,
    })
}
