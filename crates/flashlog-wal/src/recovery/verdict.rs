//! How a scanned sealed segment compares with the checkpoint's record of it
//! ([`Verdict`]), and the gaps in its numbering that the record accounts for.

use crate::checkpoint::{LastEntry, Sealed};
use crate::index::Gap;
use crate::segment::{Resume, Scan, ScanDamage};

/// How a sealed segment compares with the checkpoint's record of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No record: the newest segment (which no record vouches for), or one the
    /// checkpoint does not name.
    Unrecorded,
    /// As recorded: trusted after the one-read check, or scanned and equal.
    Matches(Sealed),
    /// The recorded length and last entry, with damaged regions that held the
    /// recorded entries the scan did not find (bit rot, a failing disk).
    Damaged(Sealed, Split),
    /// Not what the record says: the segment was cut, replaced, grown, emptied,
    /// or the segments before it no longer number its entries as recorded.
    Changed(Sealed),
}

impl Verdict {
    pub(crate) fn record(&self) -> Option<Sealed> {
        match self {
            Verdict::Unrecorded => None,
            Verdict::Matches(record) | Verdict::Damaged(record, _) | Verdict::Changed(record) => {
                Some(record.clone())
            }
        }
    }
}

/// How the recorded entries a segment's damage held are shared among its
/// damaged regions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Split {
    /// Entries each region held, in order.
    PerRegion(Vec<u64>),
    /// Not known: the regions, and the valid entries between the first and the
    /// last, are taken for one gap (the entries between are not kept).
    Merged,
}

/// Compares a scanned sealed segment (its damaged regions `damages`, zeros
/// included) with its checkpoint record.
pub(crate) fn check_scan(scan: &Scan, damages: &[ScanDamage], record: Sealed) -> Verdict {
    if !record.gaps.is_empty() {
        return check_gapped(scan, damages, record);
    }
    let found = scan.offsets.len() as u64;
    if scan.len != record.len {
        return Verdict::Changed(record);
    }
    let Some(last_damage) = damages.last() else {
        return if found == record.entries && scan.last == record.last {
            Verdict::Matches(record)
        } else {
            Verdict::Changed(record)
        };
    };
    let regions = damages.len() as u64;
    // Damage in bytes that kept their length starts where a recorded entry
    // did, so each region held one entry at least.
    if found + regions > record.entries {
        return Verdict::Changed(record);
    }
    let tail_damaged = !matches!(last_damage.resume, Resume::At(_));
    let last_fits = scan.last == record.last
        || (tail_damaged
            && record
                .last
                .is_some_and(|last| last.offset >= last_damage.offset));
    if !last_fits {
        return Verdict::Changed(record);
    }
    let missing = record.entries - found;
    let split = if regions == 1 {
        Split::PerRegion(vec![missing])
    } else if missing == regions {
        Split::PerRegion(vec![1; damages.len()])
    } else {
        Split::Merged
    };
    Verdict::Damaged(record, split)
}

/// Compares a scanned sealed segment with a record that has gaps: what
/// [`remove_skipped_damage`](crate::remove_skipped_damage) recorded before it
/// took the damaged bytes out. Until it has (a crash in between), the damage is
/// still there: one damaged region where each gap is.
fn check_gapped(scan: &Scan, damages: &[ScanDamage], record: Sealed) -> Verdict {
    let found = scan.offsets.len() as u64;
    if found + record.in_gaps() != record.entries {
        return Verdict::Changed(record);
    }
    if damages.is_empty() {
        return if scan.len == record.len && scan.last == record.last {
            Verdict::Matches(record)
        } else {
            Verdict::Changed(record)
        };
    }
    // The damaged bytes still in place move the last entry, not its CRC.
    let crc = |last: Option<LastEntry>| last.map(|last| last.crc);
    if damages.len() != record.gaps.len() || crc(scan.last) != crc(record.last) {
        return Verdict::Changed(record);
    }
    let mut earlier = 0;
    for (damage, gap) in damages.iter().zip(&record.gaps) {
        let before = scan
            .offsets
            .iter()
            .filter(|&&at| u64::from(at) < damage.offset)
            .count() as u64;
        if before + earlier != gap.at {
            return Verdict::Changed(record);
        }
        earlier += gap.len;
    }
    let held = record.gaps.iter().map(|gap| gap.len).collect();
    Verdict::Damaged(record, Split::PerRegion(held))
}

/// The gaps of a record, in a segment whose damaged bytes are gone: each
/// where the next entry starts.
pub(crate) fn recorded_gaps(scan: &Scan, record: &Sealed) -> Vec<(Gap, u64)> {
    let mut earlier = 0;
    record
        .gaps
        .iter()
        .map(|gap| {
            let next = scan
                .offsets
                .get((gap.at - earlier) as usize)
                .map_or(scan.len, |&at| u64::from(at));
            earlier += gap.len;
            let gap = Gap {
                at: gap.at,
                len: gap.len,
                offset: next,
            };
            (gap, next)
        })
        .collect()
}

/// The gaps a damaged segment's regions leave in its numbering, each with the
/// end of the bytes it covers (the valid entries up to there are part of it).
pub(crate) fn gaps_of(
    scan: &Scan,
    damages: &[ScanDamage],
    recorded: u64,
    split: &Split,
) -> Vec<(Gap, u64)> {
    let before = |offset: u64| {
        scan.offsets
            .iter()
            .filter(|&&at| u64::from(at) < offset)
            .count() as u64
    };
    match split {
        Split::PerRegion(held) => {
            let mut earlier = 0;
            damages
                .iter()
                .zip(held)
                .map(|(damage, &len)| {
                    let gap = Gap {
                        at: before(damage.offset) + earlier,
                        len,
                        offset: damage.offset,
                    };
                    earlier += len;
                    (gap, damage.offset)
                })
                .collect()
        }
        Split::Merged => {
            let (Some(first), Some(last)) = (damages.first(), damages.last()) else {
                return Vec::new();
            };
            let at = before(first.offset);
            let after = scan.offsets.len() as u64 - before(last.offset);
            let gap = Gap {
                at,
                len: recorded - at - after,
                offset: first.offset,
            };
            vec![(gap, last.offset)]
        }
    }
}
