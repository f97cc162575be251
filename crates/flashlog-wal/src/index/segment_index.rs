//! One segment's part of the [`Index`](crate::index::Index): the sequence number
//! of its first entry, each entry's offset, its gaps, and what the checkpoint says
//! of it.

use crate::checkpoint::{LastEntry, RecordedGap, Sealed};
use crate::position::SegmentId;

/// One segment's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentIndex {
    pub id: SegmentId,
    /// Sequence number of the segment's first entry (of the next one, if empty).
    pub first_seq: u64,
    /// Where the next entry goes: the end of the last entry (or of skipped bytes).
    pub end: u64,
    /// Whether recovery skipped damage in it ([`RecoveryMode::SkipCorrupted`]):
    /// such a segment gets no record of its own in the checkpoint (only the one
    /// recovery checked it against, `record`), so every open finds the damage
    /// again.
    ///
    /// [`RecoveryMode::SkipCorrupted`]: crate::RecoveryMode::SkipCorrupted
    pub skipped_damage: bool,
    /// Whether it holds skipped damage whose number of entries is unknown: the
    /// numbering of every later entry is unverified, and the checkpoint records
    /// no segment from this one on (it would vouch for guessed numbers).
    pub unverified: bool,
    /// The checkpoint record recovery checked this segment against, when it
    /// skipped damage in it: written to later checkpoints unchanged, so that the
    /// next open finds the same damage and the same gaps.
    pub record: Option<Sealed>,
    /// Sequence numbers held by skipped damage, in order (see the module docs).
    pub(super) gaps: Vec<Gap>,
    /// Sequence numbers the segment spans: its entries and its gaps.
    pub(super) entries: u64,
    /// Byte offset of each entry, in order; `None` until a trusted segment is read.
    pub(super) offsets: Option<Vec<u32>>,
    /// The last entry's offset and stored CRC, for the checkpoint; `None` if the
    /// segment has no entries, or if nobody looked at the CRC (such a segment is
    /// left out of the checkpoint).
    pub(super) last: Option<LastEntry>,
}

impl SegmentIndex {
    pub(crate) fn new(id: SegmentId, first_seq: u64) -> SegmentIndex {
        SegmentIndex::scanned(id, first_seq, Vec::new(), 0, None)
    }

    /// A segment whose entries recovery read: they start at `offsets` and end at
    /// `end`, and the last one is `last` (if recovery knows its CRC).
    pub(crate) fn scanned(
        id: SegmentId,
        first_seq: u64,
        offsets: Vec<u32>,
        end: u64,
        last: Option<LastEntry>,
    ) -> SegmentIndex {
        debug_assert!(last.is_none_or(|last| offsets.last() == Some(&(last.offset as u32))));
        SegmentIndex {
            id,
            first_seq,
            end,
            skipped_damage: false,
            unverified: false,
            record: None,
            gaps: Vec::new(),
            entries: offsets.len() as u64,
            offsets: Some(offsets),
            last,
        }
    }

    /// Adds a gap of `gap.len` sequence numbers (a segment whose offsets are
    /// known); the sequence numbers of the entries after it grow by that much.
    pub(crate) fn add_gap(&mut self, gap: Gap) {
        debug_assert!(self.offsets.is_some() && gap.len > 0);
        for later in &mut self.gaps {
            if later.at >= gap.at {
                later.at += gap.len;
            }
        }
        let at = self.gaps.partition_point(|g| g.at < gap.at);
        self.gaps.insert(at, gap);
        // Gaps with no entry between them are one.
        let mut merged: Vec<Gap> = Vec::with_capacity(self.gaps.len());
        for g in self.gaps.drain(..) {
            match merged.last_mut() {
                Some(before) if before.at + before.len == g.at => before.len += g.len,
                _ => merged.push(g),
            }
        }
        self.gaps = merged;
        self.entries += gap.len;
    }

    /// The gaps, as a checkpoint records them.
    pub(crate) fn recorded_gaps(&self) -> Vec<RecordedGap> {
        self.gaps
            .iter()
            .map(|gap| RecordedGap {
                at: gap.at,
                len: gap.len,
            })
            .collect()
    }

    /// The gap holding the `rel`-th sequence number of the segment, if any.
    pub(super) fn gap_at(&self, rel: u64) -> Option<&Gap> {
        self.gaps.iter().find(|g| g.at <= rel && rel < g.at + g.len)
    }

    /// The index in the offsets of the `rel`-th sequence number of the segment
    /// (not in a gap).
    pub(super) fn present_index(&self, rel: u64) -> usize {
        let before: u64 = self
            .gaps
            .iter()
            .filter(|g| g.at + g.len <= rel)
            .map(|g| g.len)
            .sum();
        (rel - before) as usize
    }

    /// A sealed segment as the checkpoint describes it, not read yet.
    pub(crate) fn trusted(record: &Sealed) -> SegmentIndex {
        SegmentIndex {
            id: record.id,
            first_seq: record.first_seq,
            end: record.len,
            skipped_damage: false,
            unverified: false,
            record: Some(record.clone()),
            gaps: Vec::new(),
            entries: record.entries,
            offsets: None,
            last: record.last,
        }
    }

    pub(crate) fn len(&self) -> u64 {
        self.entries
    }

    /// The sequence number after the segment's last entry.
    pub(crate) fn next_seq(&self) -> u64 {
        self.first_seq + self.len()
    }

    /// The byte offset of each entry, if known.
    pub(crate) fn offsets(&self) -> Option<&[u32]> {
        self.offsets.as_deref()
    }

    /// What reading this segment's offsets needs, if they are not known yet.
    pub(crate) fn unloaded(&self) -> Option<Unloaded> {
        self.offsets.is_none().then_some(Unloaded(Sealed {
            id: self.id,
            first_seq: self.first_seq,
            entries: self.entries,
            len: self.end,
            last: self.last,
            gaps: Vec::new(),
        }))
    }

    /// Adds an entry at `offset` whose stored CRC is `crc` (the segment's offsets
    /// are known: it is active).
    pub(crate) fn push(&mut self, offset: u32, crc: u32) {
        self.offsets
            .as_mut()
            .expect("the active segment's offsets are known")
            .push(offset);
        self.entries += 1;
        self.last = Some(LastEntry {
            offset: u64::from(offset),
            crc,
        });
    }

    /// How many entries (offsets) the first `keep` sequence numbers hold, and
    /// where the bytes of the rest start, if the offsets are known.
    pub(crate) fn cut_at(&self, keep: u64) -> Option<(usize, u64)> {
        let offsets = self.offsets.as_ref()?;
        let in_gaps: u64 = self
            .gaps
            .iter()
            .map(|g| (g.at + g.len).min(keep).saturating_sub(g.at))
            .sum();
        let kept = (keep - in_gaps) as usize;
        let next_entry = offsets.get(kept).map(|&at| u64::from(at));
        let next_gap = self
            .gaps
            .iter()
            .filter(|g| g.at + g.len > keep)
            .map(|g| g.offset)
            .min();
        let cut = next_entry
            .into_iter()
            .chain(next_gap)
            .min()
            .unwrap_or(self.end);
        Some((kept, cut))
    }

    /// Keeps the first `entries` sequence numbers; returns where the next one
    /// started (or the skipped bytes before it), if the offsets are known. The
    /// new last entry's CRC is unknown until [`SegmentIndex::set_last_crc`]
    /// gives it. A gap the cut falls into keeps its numbers before the cut
    /// (its bytes go).
    pub(crate) fn truncate(&mut self, entries: usize) -> Option<u64> {
        let (kept, cut) = self.cut_at(entries as u64)?;
        let keep = entries as u64;
        let offsets = self.offsets.as_mut()?;
        if kept < offsets.len() {
            self.last = None;
        }
        offsets.truncate(kept);
        self.gaps.retain(|g| g.at < keep);
        for gap in &mut self.gaps {
            gap.len = gap.len.min(keep - gap.at);
        }
        // The record no longer describes the segment.
        self.record = None;
        self.entries = keep;
        self.end = cut;
        Some(cut)
    }

    /// The offset of the last entry, if the segment has entries and its offsets
    /// are known.
    pub(crate) fn last_offset(&self) -> Option<u64> {
        self.offsets()?.last().map(|&at| u64::from(at))
    }

    /// Records the stored CRC of the last entry (read from the file after
    /// [`SegmentIndex::truncate`]).
    pub(crate) fn set_last_crc(&mut self, crc: u32) {
        self.last = self.last_offset().map(|offset| LastEntry { offset, crc });
    }

    /// Frees the spare capacity of the offsets (the segment is being sealed).
    pub(crate) fn shrink_to_fit(&mut self) {
        if let Some(offsets) = &mut self.offsets {
            offsets.shrink_to_fit();
        }
    }

    /// Byte range of entry `i`: from its offset to the next entry's (or the end).
    pub(super) fn span(offsets: &[u32], end: u64, i: usize) -> (u64, u64) {
        let start = u64::from(offsets[i]);
        let end = offsets.get(i + 1).map_or(end, |&next| u64::from(next));
        (start, end)
    }
}

/// Sequence numbers of a segment that skipped damage held: the checkpoint
/// counted entries there, and none can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gap {
    /// The first of them, counted from the segment's first sequence number.
    pub at: u64,
    /// How many.
    pub len: u64,
    /// Where the skipped bytes start in the segment (where the next entry
    /// starts, if they are gone).
    pub offset: u64,
}

/// A sealed segment whose offsets must be read before its entries can be found:
/// what the checkpoint says of it, for [`Index::install`](crate::index::Index::install).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unloaded(pub Sealed);
