//! The side file `flashlog.index`: what the sealed segments hold, so that opening a
//! log does not have to read them, and so that a sealed segment that changed is
//! found out.
//!
//! A sealed segment (any but the newest) never changes once the writer has moved
//! on: it was trimmed and synced before the next segment was created. The
//! checkpoint records, for each sealed segment, its first sequence number, the
//! sequence numbers it spans, its length, where its last entry starts and that
//! entry's stored CRC, and its gaps (sequence numbers whose entries
//! [`remove_skipped_damage`](crate::remove_skipped_damage) removed).
//!
//! **A record is a witness.** Recovery, in every mode, compares each sealed
//! segment with its record, and a segment that does not match (and whose
//! difference is not damage inside it that kept its length) is damage:
//! [`CorruptionKind::SegmentChanged`](crate::CorruptionKind::SegmentChanged). No
//! crash state of this library meets a mismatch: whatever changes a sealed
//! segment (`truncate_back`, recovery finishing one or cutting or removing
//! segments, `flashlog repair`) first removes the records of the segments it
//! changes, durably ([`retain`], [`remove`]), and a crash before a rewritten
//! checkpoint's rename leaves the previous one, still true of every segment it
//! names. Records of the newest segment and beyond are ignored.
//!
//! Recovery under the default [`RecoveryMode`](crate::RecoveryMode) also
//! **trusts** a record without gaps, not reading its segment, when the record
//! continues the sequence numbers of the segments before it and [`vouches`] finds
//! it still true of the file: exactly the recorded length, and at the recorded
//! offset a valid entry with the recorded CRC that ends exactly there (one small
//! read per segment). Otherwise that segment is scanned and compared. Entries of
//! a trusted segment are still checked (CRC and all) when they are read, and its
//! offsets are found when it is first read.
//!
//! The checkpoint is rewritten after every rotation and at close, without an
//! fsync unless a record has gaps (gaps are facts no segment holds); a damaged or
//! missing one (or one of version 1) means a full scan and no counts: skipped
//! damage then leaves the numbering after it unverified (see
//! [`RecoveryReport::numbering_unverified_from`](crate::RecoveryReport::numbering_unverified_from)).
//!
//! # What the open-time check guarantees, and what it assumes
//!
//! A trusted segment has the recorded length and ends with a valid entry that has
//! the recorded CRC at the recorded offset. It does not read the entries before
//! the last one, so it assumes they are as they were recorded. flashlog itself
//! never breaks that. Something else can: entries of other sizes *ending with an
//! entry byte-identical to the old last one at the same offset*. The record then
//! passes with the old, wrong entry count: the first read of that segment's
//! entries finds the count wrong
//! ([`Error::SegmentChanged`](crate::Error::SegmentChanged)), and any mode but
//! the default finds it at open. Catching that too at a default open would mean
//! reading every entry header of every sealed segment: the scan the checkpoint
//! exists to avoid.
//!
//! The bytes of a checkpoint, and the records they hold, are `record`'s.

mod record;

use std::collections::HashMap;

use crate::codec;
use crate::dir::{INDEX_FILE, INDEX_TMP_FILE};
use crate::error::{Error, Result};
use crate::fs::{Dir, OpenMode, PathFile};
use crate::meta::{SideFileAction, SideFileNote, SideFileProblem};
use crate::position::SegmentId;

use record::{decode, encode, CRC_LEN, HEADER_LEN, RECORD_LEN};
pub(crate) use record::{LastEntry, RecordedGap, Sealed};

/// The records of the directory's checkpoint, by segment; empty if there is none
/// or it does not check out (a full scan follows, which finds any real damage).
/// A checkpoint that cannot be read (a directory in its place, no permission, an
/// I/O error) is a hint lost, not a failure: it is ignored too, and the note
/// returned with the records says so for the recovery report.
pub(crate) fn load(dir: &Dir) -> (HashMap<SegmentId, Sealed>, Option<SideFileNote>) {
    let read = || -> Result<Vec<Sealed>> {
        let Some(file) = dir.open_if_exists(INDEX_FILE, OpenMode::Read)? else {
            return Ok(Vec::new());
        };
        let len = file.len()?;
        // Larger than any record count a u32 allows: not a checkpoint.
        if len > (HEADER_LEN + u32::MAX as usize * RECORD_LEN + CRC_LEN) as u64 {
            return Ok(Vec::new());
        }
        let mut bytes = vec![0u8; len as usize];
        file.read_exact_at(&mut bytes, 0)?;
        Ok(decode(&bytes).unwrap_or_default())
    };
    match read() {
        Ok(records) => (
            records
                .into_iter()
                .map(|record| (record.id, record))
                .collect(),
            None,
        ),
        Err(err) => (
            HashMap::new(),
            Some(SideFileNote {
                path: dir.join(INDEX_FILE),
                problem: SideFileProblem::Unreadable(err.with_causes()),
                action: SideFileAction::Ignored,
            }),
        ),
    }
}

/// Whether `record` is still true of the segment `file` of `len` bytes, checked
/// with at most one read of its last entry: the file has the recorded length, and
/// a valid entry (CRC checked) with the recorded stored CRC starts at the recorded
/// offset and ends exactly at the end of the file. See the module docs for what
/// that guarantees.
///
/// # Errors
/// [`Error::Io`](crate::Error::Io) if the read fails.
pub(crate) fn vouches(file: &PathFile, len: u64, record: &Sealed) -> Result<bool> {
    if len != record.len || !record.gaps.is_empty() {
        return Ok(false);
    }
    let Some(last) = record.last else {
        return Ok(record.entries == 0 && len == 0);
    };
    let Some(entry_len) = len.checked_sub(last.offset) else {
        return Ok(false);
    };
    if !(codec::MIN_ENTRY_LEN..=codec::MAX_ENTRY_LEN).contains(&entry_len) || record.entries == 0 {
        return Ok(false);
    }
    let mut bytes = vec![0u8; entry_len as usize];
    if file.read_up_to(&mut bytes, last.offset)? != bytes.len() {
        return Ok(false);
    }
    let fits = codec::decode(&bytes).is_ok_and(|entry| entry.len == bytes.len());
    Ok(fits && LastEntry::at(&bytes, 0) == Some(LastEntry { offset: 0, ..last }))
}

/// Replaces the checkpoint with `records`: written to the temporary name, then
/// renamed over the old one. Not synced: a checkpoint lost in a crash leaves the
/// previous one (still true of every segment it names) or none.
///
/// # Errors
/// [`Error::Io`].
pub(crate) fn store(dir: &Dir, records: &[Sealed]) -> Result<()> {
    if records.iter().any(|record| !record.gaps.is_empty()) {
        // Gaps are facts no segment holds: they must not be lost.
        return store_durably(dir, records);
    }
    let tmp = dir.open(INDEX_TMP_FILE, OpenMode::CreateTruncate)?;
    tmp.write_all_at(&encode(records), 0)?;
    drop(tmp);
    dir.rename(INDEX_TMP_FILE, INDEX_FILE)
}

/// Replaces the checkpoint with `records` durably (temporary file, fsync,
/// rename, fsync of the directory): for records with gaps, which hold the only
/// account of sequence numbers whose entries were removed.
///
/// # Errors
/// [`Error::Io`](crate::Error::Io).
pub(crate) fn store_durably(dir: &Dir, records: &[Sealed]) -> Result<()> {
    dir.replace_durably(INDEX_FILE, INDEX_TMP_FILE, &encode(records))
}

/// Before sealed segments from some segment on change: keeps, durably, only
/// `kept` (the records of the segments before it) when one of them has gaps,
/// and otherwise removes the checkpoint ([`remove`]).
///
/// # Errors
/// [`Error::Io`](crate::Error::Io).
pub(crate) fn retain(dir: &Dir, kept: &[Sealed]) -> Result<()> {
    if kept.iter().any(|record| !record.gaps.is_empty()) {
        store_durably(dir, kept)
    } else {
        remove(dir)
    }
}

/// Removes the checkpoint (and a leftover temporary one), durably, before sealed
/// segments change. Does nothing, not even a directory sync, if there is none.
///
/// # Errors
/// [`Error::Io`].
pub(crate) fn remove(dir: &Dir) -> Result<()> {
    let mut removed = false;
    for name in [INDEX_TMP_FILE, INDEX_FILE] {
        match dir.remove_if_exists(name) {
            Ok(gone) => removed |= gone,
            // A directory is not a checkpoint (recovery ignores it): nothing to
            // remove. It is not flashlog's to delete.
            Err(Error::Io { source, .. })
                if name == INDEX_FILE && source.kind() == std::io::ErrorKind::IsADirectory => {}
            Err(err) => return Err(err),
        }
    }
    if removed {
        dir.sync()?;
    }
    Ok(())
}
