//! A full disk is not the end: taking back a group whose write found no space.
//!
//! When a group's write fails with ENOSPC or EDQUOT, and no fsync of the log ever
//! failed, nothing acknowledged is at stake: the group's entries (and those queued
//! behind it, whose places follow theirs) were never acknowledged. So instead of
//! poisoning the log, [`Shared::roll_back`] takes them back: it cuts the bytes the
//! write left, durably (a partial write can hold whole entries, which must not
//! reappear after a crash), forgets the entries in the index, and refuses each of
//! them with the error: the appenders that wait learn it through
//! [`Rollbacks::refused`](crate::state::Rollbacks::refused), the receipts are resolved with it. The log stays open;
//! the next append writes (and preallocates) again, and succeeds once there is
//! space.
//!
//! Taken back: a group that stayed in the segment the writer had open when it
//! started, or that left it for one new segment (which then stays, empty, as the
//! active one). Anything else (an fsync that failed, a group spanning more
//! segments, a rotation that failed half way, a cut that fails) poisons the log
//! as any other failure does.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::fs::OpenMode;
use crate::index::SegmentIndex;
use crate::meta::Meta;
use crate::position::SegmentId;
use crate::receipt::Completion;
use crate::state::{Shared, State};

/// Where a group commit started: what a rollback returns to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GroupStart {
    /// The segment the writer had open.
    pub segment: SegmentId,
    /// Where its entries ended.
    pub end: u64,
    /// The last entry written before the group (`written_seq`).
    pub before: u64,
    /// The side file as it was.
    pub meta: Meta,
}

impl Shared {
    /// Takes back every entry after `start.before` after their group's write
    /// failed with `err` for want of space (see the module docs), with the lock
    /// held. Returns the receipts to refuse once the lock is released, or the
    /// error that makes the log poisoned instead.
    pub(crate) fn roll_back(
        &self,
        state: &mut State,
        start: &GroupStart,
        err: &Error,
    ) -> Result<Vec<Arc<Completion>>> {
        let cannot = |why: &str| {
            Err(Error::io(
                "take back a group refused for want of space in",
                self.dir.path(),
                std::io::Error::other(why.to_string()),
            ))
        };
        let writer = state.writer.as_mut().expect("the leader put it back");
        if writer.sync_failed() {
            return cannot("an fsync failed before");
        }
        let keep = start.before + 1;
        if writer.id() == start.segment {
            if state.meta != start.meta {
                // A rotation failed after it changed the side file.
                return cannot("a new segment was started half way");
            }
            writer.cut_back(start.end)?;
            // A rotation that failed before it changed the side file may have
            // created the next segment's file: it must not stay behind.
            let next = start.segment.next().file_name();
            if self.dir.remove_if_exists(&next)? {
                self.dir.sync()?;
            }
            let at = position_of(&state.index.segments, start.segment);
            state.index.segments.truncate(at + 1);
        } else if writer.id() == start.segment.next() && start.end > 0 {
            // The group left `start.segment` (sealed now) for a new segment: cut
            // the old one back and keep the new one, empty, as the active one.
            let old = self
                .dir
                .open(&start.segment.file_name(), OpenMode::ReadWrite)?;
            old.set_len(start.end)?;
            old.sync_data()?;
            writer.cut_back(0)?;
            let at = position_of(&state.index.segments, start.segment);
            state.index.segments.truncate(at + 1);
            state
                .index
                .segments
                .push_back(SegmentIndex::new(writer.id(), keep));
        } else {
            return cannot("the group spanned more than one new segment");
        }
        let at = position_of(&state.index.segments, start.segment);
        let segment = &mut state.index.segments[at];
        let kept = (keep - segment.first_seq) as usize;
        segment.truncate(kept);
        if let Some(offset) = segment.last_offset() {
            // The checkpoint records a sealed segment's last entry with its CRC:
            // read it back, as a truncation does.
            let file = self.dir.open(&start.segment.file_name(), OpenMode::Read)?;
            let mut crc = [0; 4];
            file.read_exact_at(&mut crc, offset)?;
            segment.set_last_crc(u32::from_le_bytes(crc));
        }
        for chunk in state.queue.drain(..) {
            if state.spare.len() < 4 {
                let mut bytes = chunk.bytes;
                bytes.clear();
                state.spare.push(bytes);
            }
        }
        state.rollbacks.record(keep, err.poison_cause());
        let refused = state
            .receipts
            .iter()
            .position(|receipt| receipt.last() >= keep)
            .unwrap_or(state.receipts.len());
        Ok(state.receipts.drain(refused..).collect())
    }
}

fn position_of(segments: &VecDeque<SegmentIndex>, id: SegmentId) -> usize {
    segments
        .iter()
        .position(|segment| segment.id == id)
        .expect("the writer's segment is in the index")
}
