//! What a repair does (or, in a dry run, would do): [`RepairReport`], worked
//! out from the two recovery plans over one read of the log.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::error::CorruptionKind;
use crate::index::Index;
use crate::position::{Position, SegmentId};
use crate::recovery::{Found, Planned};
use crate::report::{Damage, RecoveryReport};

/// How far [`repair`](crate::repair()) may cut: the three
/// [`RecoveryMode`](crate::RecoveryMode)s that change the log to open it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RepairMode {
    /// Cut only a torn tail: damage at the end of the newest segment with no
    /// valid entry after it (the default). Any other damage is refused with
    /// [`Error::NotATornTail`](crate::Error::NotATornTail), nothing changed.
    #[default]
    TolerateCorruptedTail,
    /// Keep every entry before the first damage; cut the segment there and
    /// remove the segments after it.
    PointInTime,
    /// Remove only the damaged bytes, keeping every valid entry and (where the
    /// checkpoint counted the damaged entries) every sequence number: what
    /// [`remove_skipped_damage`](crate::remove_skipped_damage) does.
    SkipCorrupted,
}

impl RepairMode {
    /// The recovery mode whose policy this repair carries out.
    ///
    /// ```
    /// use flashlog_wal::{RecoveryMode, RepairMode};
    ///
    /// assert_eq!(RepairMode::PointInTime.recovery_mode(), RecoveryMode::PointInTime);
    /// assert_eq!(RepairMode::default().recovery_mode(), RecoveryMode::default());
    /// ```
    #[must_use]
    pub fn recovery_mode(self) -> crate::RecoveryMode {
        match self {
            RepairMode::TolerateCorruptedTail => crate::RecoveryMode::TolerateCorruptedTail,
            RepairMode::PointInTime => crate::RecoveryMode::PointInTime,
            RepairMode::SkipCorrupted => crate::RecoveryMode::SkipCorrupted,
        }
    }
}

/// One cut a repair makes (or would make): the damaged region it starts at and
/// the valid entries that go with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cut {
    /// The damaged region: its segment, offset, length and kind.
    pub damage: Damage,
    /// Valid entries (as a read of every segment finds them) that the cut
    /// removes: none for a torn tail or skipped damage; under
    /// [`RepairMode::PointInTime`], every entry from the damage on.
    pub entries_lost: u64,
}

/// What [`repair`](crate::repair()) found, and what it changed (or, in a dry
/// run, would change).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepairReport {
    /// The mode it repaired in.
    pub mode: RepairMode,
    /// Whether it was a dry run: nothing was changed.
    pub dry_run: bool,
    /// What a read of every segment found, before anything changed, as
    /// `flashlog verify` lists it: every damaged region (the torn tail
    /// included), the side files that could not be used, and the entries.
    pub found: RecoveryReport,
    /// The cuts, in log order. Under [`RepairMode::PointInTime`], one: at the
    /// first damage (the bytes after it, and the later segments, go with it).
    pub cuts: Vec<Cut>,
    /// Segment files removed: after a point-in-time cut, and those recovery
    /// removes in every mode (left by an interrupted `truncate_front` or
    /// `truncate_back`).
    pub removed_segments: Vec<SegmentId>,
    /// Bytes removed in all, removed segments included.
    pub truncated_bytes: u64,
    /// Copies of the side file rewritten from the intact copy.
    pub rewritten_side_files: Vec<PathBuf>,
    /// The segments whose files change (cut, rewritten or removed), copied
    /// into [`backup`](Self::backup) before any change.
    pub affected: Vec<SegmentId>,
    /// The folder holding the copies of the affected segment files as they
    /// were; `None` for a dry run or when no segment changes.
    pub backup: Option<PathBuf>,
    /// The log after the repair, as an open in the default mode finds it (for
    /// a dry run, as it would be).
    pub repaired: RecoveryReport,
}

impl RepairReport {
    /// Whether the repair has (had) anything to do: damage to cut, or a side
    /// file copy to rewrite.
    #[must_use]
    pub fn needed(&self) -> bool {
        !self.found.damage.is_empty() || !self.found.side_files.is_empty()
    }
}

/// The cuts a repair in a mode makes, given what every segment held (`survey`,
/// all scanned), the findings of `found` and the mode's plan `planned`.
pub(super) fn cuts(
    mode: RepairMode,
    found: &RecoveryReport,
    survey: &[Found],
    planned: &Planned,
) -> Vec<Cut> {
    let damage: Vec<Damage> = match mode {
        RepairMode::PointInTime => found.damage.first().copied().into_iter().collect(),
        RepairMode::TolerateCorruptedTail | RepairMode::SkipCorrupted => found
            .damage
            .iter()
            .copied()
            .filter(|d| cut_by(mode, d))
            .collect(),
    };
    let kept = positions(&planned.index);
    let valid: Vec<Position> = survey
        .iter()
        .filter_map(|found| match found {
            Found::Scanned(scan) => Some(scan.offsets.iter().map(move |&offset| Position {
                segment: scan.id,
                offset: u64::from(offset),
            })),
            Found::Trusted(_) => None,
        })
        .flatten()
        .collect();
    damage
        .iter()
        .enumerate()
        .map(|(at, region)| {
            let next = damage.get(at + 1).map(|next| next.position);
            let entries_lost = valid
                .iter()
                .filter(|&&position| {
                    position >= region.position
                        && next.is_none_or(|next| position < next)
                        && !kept.contains(&position)
                })
                .count() as u64;
            Cut {
                damage: *region,
                entries_lost,
            }
        })
        .collect()
}

/// Where each entry the index keeps starts.
fn positions(index: &Index) -> BTreeSet<Position> {
    index
        .segments
        .iter()
        .flat_map(|segment| {
            segment
                .offsets()
                .unwrap_or_default()
                .iter()
                .map(move |&offset| Position {
                    segment: segment.id,
                    offset: u64::from(offset),
                })
        })
        .collect()
}

/// Whether a repair in `mode` (other than point-in-time) cuts `damage`: a
/// sealed segment that no longer matches its checkpoint record is left as it
/// is by [`RepairMode::SkipCorrupted`] (which of its entries are the log's
/// cannot be told; see [`remove_skipped_damage`](crate::remove_skipped_damage)).
fn cut_by(mode: RepairMode, damage: &Damage) -> bool {
    mode != RepairMode::SkipCorrupted
        || !matches!(damage.kind, CorruptionKind::SegmentChanged { .. })
}

/// The segments whose files the plan changes: cut, dropped, or (skipping
/// damage) rewritten, and those a finished `truncate_back` cuts or removes.
pub(super) fn affected(
    mode: RepairMode,
    found: &RecoveryReport,
    planned: &Planned,
) -> Vec<SegmentId> {
    let plan = &planned.plan;
    let mut affected: BTreeSet<SegmentId> = plan.dropped.iter().copied().collect();
    affected.extend(plan.cut.map(|(id, _)| id));
    if let Some((Some(back), _)) = &plan.truncate_back {
        affected.insert(back.position.segment);
        affected.extend(back.removed.iter().copied());
    }
    if mode == RepairMode::SkipCorrupted {
        let skipped = found.damage.iter().filter(|d| cut_by(mode, d));
        affected.extend(skipped.map(|damage| damage.position.segment));
    }
    affected.into_iter().collect()
}
