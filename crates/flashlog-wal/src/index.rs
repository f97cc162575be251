//! The in-memory index of a log: for every segment, the sequence number of its first
//! entry and the byte offset of each entry. It lets `read(seq)` find an entry with
//! one positioned read, and costs 4 bytes per entry.

use std::collections::VecDeque;

use crate::{Position, SegmentId};

/// One segment's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentIndex {
    pub id: SegmentId,
    /// Sequence number of the segment's first entry (of the next one, if empty).
    pub first_seq: u64,
    /// Byte offset of each entry, in order.
    pub offsets: Vec<u32>,
    /// Where the next entry goes: the end of the last entry (or of skipped bytes).
    pub end: u64,
}

impl SegmentIndex {
    pub(crate) fn new(id: SegmentId, first_seq: u64) -> SegmentIndex {
        SegmentIndex {
            id,
            first_seq,
            offsets: Vec::new(),
            end: 0,
        }
    }

    pub(crate) fn len(&self) -> u64 {
        self.offsets.len() as u64
    }

    /// The sequence number after the segment's last entry.
    pub(crate) fn next_seq(&self) -> u64 {
        self.first_seq + self.len()
    }

    /// Byte range of entry `i`: from its offset to the next entry's (or the end).
    fn span(&self, i: usize) -> (u64, u64) {
        let start = u64::from(self.offsets[i]);
        let end = self
            .offsets
            .get(i + 1)
            .map_or(self.end, |&next| u64::from(next));
        (start, end)
    }
}

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

    pub(crate) fn locate(&self, seq: u64) -> Option<Located> {
        let segment = &self.segments[self.segment_of(seq)?];
        let i = (seq - segment.first_seq) as usize;
        let (start, end) = segment.span(i);
        Some(Located {
            position: Position {
                segment: segment.id,
                offset: start,
            },
            span: end - start,
        })
    }

    /// The entries from `seq` (inclusive) to `until` (exclusive) that lie in `seq`'s
    /// segment, capped so their bytes stay under `max_bytes` (at least one entry):
    /// the segment, the byte range to read, and each entry's offset.
    pub(crate) fn run(&self, seq: u64, until: u64, max_bytes: u64) -> Option<Run> {
        let s = self.segment_of(seq)?;
        let segment = &self.segments[s];
        let first = (seq - segment.first_seq) as usize;
        let last_exclusive = ((until.min(segment.next_seq())) - segment.first_seq) as usize;
        let start = u64::from(segment.offsets[first]);
        let mut count = 1;
        while first + count < last_exclusive {
            let (_, end) = segment.span(first + count);
            if end - start > max_bytes {
                break;
            }
            count += 1;
        }
        let (_, end) = segment.span(first + count - 1);
        Some(Run {
            segment: segment.id,
            start,
            end,
            first_seq: seq,
            offsets: segment.offsets[first..first + count].to_vec(),
        })
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

    fn index() -> Index {
        let mut a = SegmentIndex::new(SegmentId(3), 10);
        a.offsets = vec![0, 20, 45];
        a.end = 60;
        let empty = SegmentIndex {
            id: SegmentId(4),
            first_seq: 13,
            offsets: Vec::new(),
            end: 0,
        };
        let mut b = SegmentIndex::new(SegmentId(5), 13);
        b.offsets = vec![0, 30];
        b.end = 50;
        Index {
            segments: [a, empty, b].into_iter().collect(),
        }
    }

    #[test]
    fn locate_finds_every_entry_and_nothing_else() {
        let index = index();
        assert_eq!(index.first_seq(), 10);
        assert_eq!(index.next_seq(), 15);
        assert_eq!(index.locate(9), None);
        let found: Vec<_> = (10..15)
            .map(|seq| index.locate(seq).map(|l| (l.position.to_string(), l.span)))
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
        assert_eq!(index.locate(15), None);
    }

    #[test]
    fn runs_stay_in_one_segment_and_under_the_byte_cap() {
        let index = index();
        let run = index.run(10, 15, 1000).unwrap();
        assert_eq!(
            (run.segment, run.start, run.end, run.offsets.len()),
            (SegmentId(3), 0, 60, 3)
        );
        let capped = index.run(10, 15, 30).unwrap();
        assert_eq!((capped.end, capped.offsets.len()), (20, 1));
        let bounded = index.run(13, 14, 1000).unwrap();
        assert_eq!(
            (bounded.segment, bounded.end, bounded.offsets.len()),
            (SegmentId(5), 30, 1)
        );
    }
}
