//! The in-memory index of a log: for every segment, the sequence number of its first
//! entry and the byte offset of each entry. It lets `read(seq)` find an entry with
//! one positioned read, and costs 4 bytes per entry.
//!
//! A sealed segment that recovery trusted from the checkpoint (see
//! [`checkpoint`](crate::checkpoint)) starts without offsets, only its number of
//! entries: they are found when it is first read ([`Index::locate`] and
//! [`Index::run`] say so with [`Unloaded`]), so that opening a log costs nothing
//! per sealed segment.
//!
//! A segment may also have **gaps**: sequence numbers that skipped damage held
//! ([`RecoveryMode::SkipCorrupted`](crate::RecoveryMode::SkipCorrupted)) where
//! the checkpoint says how many entries the damage held. They keep the numbers of
//! the entries after them; [`Index::locate`] finds nothing there and
//! [`Index::gap_end`] says where the next readable entry may be.
//!
//! Here: the whole [`Index`] and what it finds ([`Located`], [`Run`]). One
//! segment's part, [`SegmentIndex`], is in `segment_index`.

mod segment_index;

use std::collections::VecDeque;

use crate::checkpoint::Sealed;
use crate::position::{Position, SegmentId};

pub(crate) use segment_index::{Gap, SegmentIndex, Unloaded};

/// Where to read an entry: its position and an upper bound of its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Located {
    pub position: Position,
    /// Bytes from the entry's start to the next entry's start; at least the
    /// entry's own length (more only where skipped damage lies in between).
    pub span: u64,
}

/// All segments of a log, oldest first. Never empty once a log is open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Index {
    pub segments: VecDeque<SegmentIndex>,
}

impl Index {
    pub(crate) fn first_seq(&self) -> u64 {
        self.segments.front().map_or(1, |s| s.first_seq)
    }

    /// The sequence number the next appended entry gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.segments.back().map_or(1, SegmentIndex::next_seq)
    }

    pub(crate) fn active(&self) -> &SegmentIndex {
        self.segments.back().expect("an open log has a segment")
    }

    pub(crate) fn active_mut(&mut self) -> &mut SegmentIndex {
        self.segments.back_mut().expect("an open log has a segment")
    }

    /// Index in `segments` of the segment holding `seq`, if any.
    pub(crate) fn segment_of(&self, seq: u64) -> Option<usize> {
        if seq < self.first_seq() || seq >= self.next_seq() {
            return None;
        }
        // Segments are sorted by first_seq; empty segments share it with the next,
        // so take the last segment whose first_seq <= seq and that holds it.
        let at = self.segments.partition_point(|s| s.first_seq <= seq);
        (0..at).rev().find(|&i| seq < self.segments[i].next_seq())
    }

    /// Where entry `seq` is (`Ok(None)` if the log does not hold it), or the
    /// segment whose offsets must be read first.
    pub(crate) fn locate(&self, seq: u64) -> Result<Option<Located>, Unloaded> {
        let Some(s) = self.segment_of(seq) else {
            return Ok(None);
        };
        let segment = &self.segments[s];
        let Some(offsets) = segment.offsets() else {
            return Err(segment.unloaded().expect("offsets unknown"));
        };
        let rel = seq - segment.first_seq;
        if segment.gap_at(rel).is_some() {
            return Ok(None);
        }
        let i = segment.present_index(rel);
        let (start, end) = SegmentIndex::span(offsets, segment.end, i);
        Ok(Some(Located {
            position: Position {
                segment: segment.id,
                offset: start,
            },
            span: end - start,
        }))
    }

    /// If `seq` lies in a gap (its entry was skipped damage), the sequence
    /// number after the gap.
    pub(crate) fn gap_end(&self, seq: u64) -> Option<u64> {
        let segment = &self.segments[self.segment_of(seq)?];
        let gap = segment.gap_at(seq - segment.first_seq)?;
        Some(segment.first_seq + gap.at + gap.len)
    }

    /// Gives a trusted segment the offsets read from its file. Returns `false` (and
    /// changes nothing) if the segment is gone or already has them.
    pub(crate) fn install(&mut self, unloaded: &Unloaded, offsets: Vec<u32>) -> bool {
        let record = &unloaded.0;
        let segment = self.segments.iter_mut().find(|segment| {
            segment.id == record.id
                && segment.first_seq == record.first_seq
                && segment.offsets.is_none()
        });
        match segment {
            Some(segment) if offsets.len() as u64 == segment.entries => {
                segment.offsets = Some(offsets);
                true
            }
            _ => false,
        }
    }

    /// The sealed segments before `active` that a checkpoint may describe: not
    /// those whose last entry's CRC is unknown; for those with skipped damage,
    /// and from the first segment whose numbering is unverified on, only the
    /// record recovery checked them against (if any).
    pub(crate) fn sealed(&self, active: SegmentId) -> Vec<Sealed> {
        let mut out = Vec::new();
        let mut verified = true;
        for segment in self.segments.iter().filter(|s| s.id < active) {
            verified &= !segment.unverified;
            if !verified || segment.skipped_damage || !segment.gaps.is_empty() {
                // Only what a checkpoint said: numbers recovery could not check
                // must not be vouched for.
                out.extend(segment.record.clone());
            } else if segment.entries == 0 || segment.last.is_some() {
                out.push(Sealed {
                    id: segment.id,
                    first_seq: segment.first_seq,
                    entries: segment.entries,
                    len: segment.end,
                    last: segment.last,
                    gaps: Vec::new(),
                });
            }
        }
        out
    }

    /// The entries from `seq` (inclusive) to `until` (exclusive) that lie in `seq`'s
    /// segment, capped so their bytes stay under `max_bytes` (at least one entry):
    /// the segment, the byte range to read, and each entry's offset.
    /// Like [`Index::locate`], `Err` if the segment's offsets must be read first.
    pub(crate) fn run(
        &self,
        seq: u64,
        until: u64,
        max_bytes: u64,
    ) -> Result<Option<Run>, Unloaded> {
        let Some(s) = self.segment_of(seq) else {
            return Ok(None);
        };
        let segment = &self.segments[s];
        let Some(offsets) = segment.offsets() else {
            return Err(segment.unloaded().expect("offsets unknown"));
        };
        let rel = seq - segment.first_seq;
        if segment.gap_at(rel).is_some() {
            return Ok(None);
        }
        // The run stops at the next gap.
        let until_rel = segment
            .gaps
            .iter()
            .map(|g| g.at)
            .filter(|&at| at > rel)
            .min()
            .unwrap_or(u64::MAX)
            .min(until.min(segment.next_seq()) - segment.first_seq);
        let first = segment.present_index(rel);
        let last_exclusive = first + (until_rel - rel) as usize;
        let start = u64::from(offsets[first]);
        let mut count = 1;
        while first + count < last_exclusive {
            let (_, end) = SegmentIndex::span(offsets, segment.end, first + count);
            if end - start > max_bytes {
                break;
            }
            count += 1;
        }
        let (_, end) = SegmentIndex::span(offsets, segment.end, first + count - 1);
        Ok(Some(Run {
            segment: segment.id,
            start,
            end,
            first_seq: seq,
            offsets: offsets[first..first + count].to_vec(),
        }))
    }
}

/// A run of consecutive entries of one segment, to be read with one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Run {
    pub segment: SegmentId,
    pub start: u64,
    pub end: u64,
    pub first_seq: u64,
    pub offsets: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::LastEntry;

    fn index() -> Index {
        let a = SegmentIndex::scanned(SegmentId(3), 10, vec![0, 20, 45], 60, None);
        let empty = SegmentIndex::new(SegmentId(4), 13);
        let b = SegmentIndex::scanned(SegmentId(5), 13, vec![0, 30], 50, None);
        Index {
            segments: [a, empty, b].into_iter().collect(),
        }
    }

    #[test]
    fn locate_finds_every_entry_and_nothing_else() {
        let index = index();
        assert_eq!(index.first_seq(), 10);
        assert_eq!(index.next_seq(), 15);
        assert_eq!(index.locate(9), Ok(None));
        let found: Vec<_> = (10..15)
            .map(|seq| {
                let located = index.locate(seq).expect("offsets known");
                located.map(|l| (l.position.to_string(), l.span))
            })
            .collect();
        assert_eq!(
            found,
            vec![
                Some(("3:0".into(), 20)),
                Some(("3:20".into(), 25)),
                Some(("3:45".into(), 15)),
                Some(("5:0".into(), 30)),
                Some(("5:30".into(), 20)),
            ]
        );
        assert_eq!(index.locate(15), Ok(None));
    }

    #[test]
    fn runs_stay_in_one_segment_and_under_the_byte_cap() {
        let index = index();
        let run = |seq, until, max| index.run(seq, until, max).unwrap().unwrap();
        let whole = run(10, 15, 1000);
        assert_eq!(
            (whole.segment, whole.start, whole.end, whole.offsets.len()),
            (SegmentId(3), 0, 60, 3)
        );
        let capped = run(10, 15, 30);
        assert_eq!((capped.end, capped.offsets.len()), (20, 1));
        let bounded = run(13, 14, 1000);
        assert_eq!(
            (bounded.segment, bounded.end, bounded.offsets.len()),
            (SegmentId(5), 30, 1)
        );
    }

    #[test]
    fn a_trusted_segment_asks_for_its_offsets_until_they_are_installed() {
        let record = Sealed {
            id: SegmentId(2),
            first_seq: 4,
            entries: 2,
            len: 40,
            last: Some(LastEntry { offset: 25, crc: 7 }),
            gaps: Vec::new(),
        };
        let mut index = Index {
            segments: [
                SegmentIndex::trusted(&record),
                SegmentIndex::scanned(SegmentId(3), 6, vec![0], 10, None),
            ]
            .into_iter()
            .collect(),
        };
        assert_eq!(index.next_seq(), 7);
        assert_eq!(index.locate(5), Err(Unloaded(record.clone())));
        assert_eq!(index.run(4, 7, 100), Err(Unloaded(record.clone())));
        assert_eq!(
            index.locate(6).unwrap().unwrap().position.segment,
            SegmentId(3)
        );
        assert_eq!(index.sealed(SegmentId(3)), vec![record.clone()]);
        // The wrong number of offsets is refused.
        let unloaded = Unloaded(record);
        assert!(!index.install(&unloaded, vec![0]));
        assert!(index.install(&unloaded, vec![0, 25]));
        assert!(!index.install(&unloaded, vec![0, 25]));
        assert_eq!(index.locate(5).unwrap().unwrap().span, 15);
    }

    /// Entries at 0, 20 and 60 numbered 10, 12 and 13: 11 is a gap (skipped
    /// bytes at 20..40 held it... here at 40, before the entry at 60), and so are
    /// 14 and 15 at the end.
    #[test]
    fn gaps_keep_the_numbers_after_them() {
        let mut segment = SegmentIndex::scanned(SegmentId(1), 10, vec![0, 20, 60], 80, None);
        segment.add_gap(Gap {
            at: 1,
            len: 1,
            offset: 20,
        });
        segment.add_gap(Gap {
            at: 4,
            len: 2,
            offset: 80,
        });
        let index = Index {
            segments: [segment].into_iter().collect(),
        };
        assert_eq!((index.first_seq(), index.next_seq()), (10, 16));
        let at = |seq| index.locate(seq).unwrap().map(|l| l.position.offset);
        assert_eq!(
            [at(10), at(11), at(12), at(13), at(14)],
            [Some(0), None, Some(20), Some(60), None]
        );
        assert_eq!(index.gap_end(11), Some(12));
        assert_eq!(index.gap_end(14), Some(16));
        assert_eq!(index.gap_end(12), None);
        // Runs stop before a gap.
        let run = index.run(10, 16, 1000).unwrap().unwrap();
        assert_eq!((run.first_seq, run.offsets.len()), (10, 1));
        let run = index.run(12, 16, 1000).unwrap().unwrap();
        assert_eq!((run.first_seq, run.offsets.clone()), (12, vec![20, 60]));
        // A cut in the gap keeps the numbers before it, not its bytes.
        let mut cut = index.segments[0].clone();
        assert_eq!(cut.truncate(2), Some(20));
        assert_eq!((cut.next_seq(), cut.offsets().unwrap().len()), (12, 1));
        let mut cut = index.segments[0].clone();
        assert_eq!(cut.truncate(5), Some(80));
        assert_eq!((cut.next_seq(), cut.offsets().unwrap().len()), (15, 3));
    }
}
