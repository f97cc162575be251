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

use crate::checkpoint;
use crate::codec;
use crate::dir::{cut_segment, remove_newest_first, remove_segment};
use crate::error::{Error, Result};
use crate::fs::{Dir, OpenMode};
use crate::index::Index;
use crate::meta::{self, Meta};
use crate::position::SegmentId;
use crate::report::Access;
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
    finish_back(dir, index, meta, seq, Access::ReadWrite)
}

/// Carries out a recorded `truncate_back(seq)` and clears the record. Idempotent:
/// whatever part of it already happened is skipped.
pub(crate) fn finish_back(
    dir: &Dir,
    index: &mut Index,
    meta: &mut Meta,
    seq: u64,
    access: Access,
) -> Result<Vec<SegmentId>> {
    let mut removed = Vec::new();
    if let Some(keep) = index.segment_of(seq) {
        removed = index.segments.iter().skip(keep + 1).map(|s| s.id).collect();
        if let Some(unloaded) = index.segments[keep].unloaded() {
            // Trusted from the checkpoint and not read yet: the cut needs offsets.
            let file = dir.open(&unloaded.0.id.file_name(), OpenMode::Read)?;
            let offsets = segment::read_trusted(&file, &unloaded.0, &mut Vec::new())?;
            index.install(&unloaded, offsets);
        }
        let segment = &index.segments[keep];
        let (_, cut) = segment
            .cut_at(seq - segment.first_seq)
            .expect("offsets just installed");
        let position = crate::Position {
            segment: segment.id,
            offset: cut,
        };
        if access == Access::ReadWrite {
            // Sealed segments are about to change: their records go first (those
            // of the segments before stay if they hold gaps, see checkpoint).
            let kept: Vec<_> = index
                .sealed(index.active().id)
                .into_iter()
                .filter(|record| record.id < position.segment)
                .collect();
            checkpoint::retain(dir, &kept)?;
            remove_newest_first(dir, &removed)?;
            cut_segment(dir, position.segment, position.offset)?;
        }
        index.segments.truncate(keep + 1);
        let segment = index.active_mut();
        let entries = (seq - segment.first_seq) as usize;
        segment.truncate(entries);
        if let (Access::ReadWrite, Some(offset)) = (access, segment.last_offset()) {
            // The checkpoint records each sealed segment's last entry, and this one
            // may be sealed before anything is appended to it.
            let mut crc = [0u8; codec::CRC_LEN];
            dir.open(&segment.id.file_name(), OpenMode::Read)?
                .read_exact_at(&mut crc, offset)?;
            segment.set_last_crc(u32::from_le_bytes(crc));
        }
    }
    meta.pending_truncate_back = None;
    if access == Access::ReadWrite {
        meta::store(dir, meta)?;
    }
    Ok(removed)
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
