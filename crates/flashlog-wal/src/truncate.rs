//! Removing entries at either end of the log, crash-safely.
//!
//! `truncate_front` first records the new first segment in the side file, then
//! removes older segments oldest first; a crash in between leaves stale segments that
//! recovery removes. `truncate_back` first records its intent in the side file, then
//! removes later segments newest first and cuts the segment holding `seq`; recovery
//! finishes an interrupted one. Either way a crash reopens to the state before or
//! after, nothing else.
//!
//! `truncate_back` (and recovery finishing one) removes the checkpoint durably
//! before it removes or cuts any segment: a record must never outlive the segment
//! it describes (see [`checkpoint`]).

use crate::checkpoint::{self, Sealed};
use crate::codec;
use crate::dir::{cut_segment, remove_newest_first, remove_segment};
use crate::error::{Error, Result};
use crate::fs::{Dir, OpenMode};
use crate::index::Index;
use crate::meta::{self, Meta};
use crate::position::{Position, SegmentId};
use crate::segment;

fn out_of_range(index: &Index, seq: u64) -> Error {
    Error::SeqOutOfRange {
        seq,
        first: index.first_seq(),
        last: index.next_seq() - 1,
    }
}

/// Removes `seq` and every later entry. Returns the segments removed.
pub(crate) fn back(
    dir: &Dir,
    index: &mut Index,
    meta: &mut Meta,
    seq: u64,
) -> Result<Vec<SegmentId>> {
    if seq >= index.next_seq() {
        return Ok(Vec::new());
    }
    if seq < index.first_seq() {
        return Err(out_of_range(index, seq));
    }
    meta.pending_truncate_back = Some(seq);
    // Counted before any entry changes: readers in other processes compare it.
    meta.truncations += 1;
    meta.last_cut = seq;
    // The intent names the newest segment that stays, before newer ones go.
    meta.last_segment = index.segment_of(seq).map(|keep| index.segments[keep].id);
    meta::store(dir, meta)?;
    finish_back(dir, index, meta, seq)
}

/// Carries out a recorded `truncate_back(seq)` and clears the record. Idempotent:
/// whatever part of it already happened is skipped.
fn finish_back(dir: &Dir, index: &mut Index, meta: &mut Meta, seq: u64) -> Result<Vec<SegmentId>> {
    let mut removed = Vec::new();
    if let Some(keep) = index.segment_of(seq) {
        if let Some(unloaded) = index.segments[keep].unloaded() {
            // Trusted from the checkpoint and not read yet: the cut needs offsets.
            let file = dir.open(&unloaded.0.id.file_name(), OpenMode::Read)?;
            let offsets = segment::read_trusted(&file, &unloaded.0, &mut Vec::new())?;
            index.install(&unloaded, offsets);
        }
    }
    if let Some(cut) = plan_back(index, seq) {
        cut_back_files(dir, &cut)?;
        apply_back(index, &cut);
        read_last_crc(dir, index)?;
        removed = cut.removed;
    }
    meta.pending_truncate_back = None;
    meta::store(dir, meta)?;
    Ok(removed)
}

/// What finishing a `truncate_back(seq)` changes, found from the index alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BackCut {
    /// Where the segment holding `seq` is in the index.
    keep: usize,
    /// How many of its entries (sequence numbers) stay.
    entries: usize,
    /// The newer segments that go, oldest first.
    pub(crate) removed: Vec<SegmentId>,
    /// The segment cut, and the length it is cut to.
    pub(crate) position: Position,
    /// The checkpoint records that stay: those of the sealed segments before
    /// the cut (a record must not outlive its segment, see [`checkpoint`]).
    pub(crate) records: Vec<Sealed>,
}

/// What finishing `truncate_back(seq)` takes, or `None` if `seq` is not in the
/// log. Pure. The segment holding `seq` must have its offsets (a trusted one not
/// read yet has none: `None` then too).
pub(crate) fn plan_back(index: &Index, seq: u64) -> Option<BackCut> {
    let keep = index.segment_of(seq)?;
    let segment = &index.segments[keep];
    let (_, cut) = segment.cut_at(seq - segment.first_seq)?;
    let position = Position {
        segment: segment.id,
        offset: cut,
    };
    let records = index
        .sealed(index.active().id)
        .into_iter()
        .filter(|record| record.id < position.segment)
        .collect();
    Some(BackCut {
        keep,
        entries: (seq - segment.first_seq) as usize,
        removed: index.segments.iter().skip(keep + 1).map(|s| s.id).collect(),
        position,
        records,
    })
}

/// Changes the index as `cut` changes the files. Pure.
pub(crate) fn apply_back(index: &mut Index, cut: &BackCut) {
    index.segments.truncate(cut.keep + 1);
    index.active_mut().truncate(cut.entries);
}

/// Changes the files as `cut` says: the records of the segments that change go
/// first (durably), then the newer segments, newest first, then the cut.
pub(crate) fn cut_back_files(dir: &Dir, cut: &BackCut) -> Result<()> {
    checkpoint::retain(dir, &cut.records)?;
    remove_newest_first(dir, &cut.removed)?;
    cut_segment(dir, cut.position.segment, cut.position.offset)
}

/// Reads the CRC of the newest segment's last entry after a cut: the checkpoint
/// records each sealed segment's last entry, and this one may be sealed before
/// anything is appended to it.
pub(crate) fn read_last_crc(dir: &Dir, index: &mut Index) -> Result<()> {
    let segment = index.active_mut();
    if let Some(offset) = segment.last_offset() {
        let mut crc = [0u8; codec::CRC_LEN];
        dir.open(&segment.id.file_name(), OpenMode::Read)?
            .read_exact_at(&mut crc, offset)?;
        segment.set_last_crc(u32::from_le_bytes(crc));
    }
    Ok(())
}

/// Removes the oldest segments whose entries all come before `seq`; the active
/// segment always stays. Returns the segments removed.
pub(crate) fn front(
    dir: &Dir,
    index: &mut Index,
    meta: &mut Meta,
    seq: u64,
) -> Result<Vec<SegmentId>> {
    let mut count = 0;
    while count + 1 < index.segments.len() && index.segments[count].next_seq() <= seq {
        count += 1;
    }
    if count == 0 {
        return Ok(Vec::new());
    }
    let new_first = &index.segments[count];
    meta.first_segment = new_first.id;
    meta.first_seq = new_first.first_seq;
    meta.last_segment = Some(index.active().id);
    meta::store(dir, meta)?;
    let removed: Vec<SegmentId> = index.segments.drain(..count).map(|s| s.id).collect();
    for &id in &removed {
        remove_segment(dir, id)?;
    }
    dir.sync()?;
    Ok(removed)
}
