//! The side file `flashlog.meta`: what the segments alone cannot say.
//!
//! Segments are the source of truth (FORMAT.md), but once `truncate_front` has
//! removed old segments, nothing in the remaining ones says which sequence number
//! the oldest starts at. The side file records that, and the intent of an unfinished
//! `truncate_back`, so that recovery can finish it. A directory without the side file
//! (as the Go implementation writes) starts at segment 1 with sequence number 1.
//!
//! It also records the newest segment, so that a missing newest segment is an
//! error rather than a silently shorter log: it is rewritten when a segment is
//! created (after the new file's directory entry is durable) and before newest
//! segments are removed.
//!
//! It counts the `truncate_back`s ever started and keeps the newest one's cut, so
//! that a reader in another process (a read-only open, a read-only view's reads)
//! can tell that the entries it found may have been replaced, even when the file
//! looks as before (cut and appended again to the same newest segment).
//!
//! Layout, 64 bytes, integers little-endian:
//! ```text
//! | "FLWLMETA" (8) | version u32 = 2 | first_segment u64 | first_seq u64 |
//! | pending_truncate_back u64 (0 = none) | last_segment u64 (0 = unknown) |
//! | truncations u64 | last_cut u64 (0 = none) |
//! | CRC-32/IEEE of the 60 bytes before (4) |
//! ```
//! Version 1 (48 bytes: no `truncations`, `last_cut`) is still read, as none
//! counted; the next store writes version 2. A file whose checksum holds but
//! whose numbers no log can have (a first sequence number of 0 or above 2^63 - 1,
//! a segment id above [`SegmentId::MAX`], a newest segment before the first) is
//! damaged like one whose checksum fails.
//!
//! # Two copies
//!
//! The segments cannot say where the sequence numbers start once `truncate_front`
//! has removed the first ones, so losing the side file would lose that. It is
//! therefore kept twice, as `flashlog.meta` and `flashlog.meta.bak`, byte for
//! byte the same. [`store`] writes the first and then the second, each durably
//! (overwritten in place and fdatasynced when it is already a whole 64-byte file,
//! which needs no new space on a full disk; otherwise written to its own `.tmp`,
//! fdatasynced, renamed, the directory fsynced), and its callers change no segment
//! before it returns. So a crash leaves at most one copy torn (a mix of old and
//! new bytes, which its checksum refuses: the copies are written one after the
//! other, the first synced before the second is touched), each intact copy either
//! the old contents or the new one, the second only ever newer if the first is
//! too, and *both* contents still describe the segments on disk, which nothing has
//! changed yet.
//!
//! [`inspect`] goes by `flashlog.meta` when it is intact, and by the copy when it
//! is not (missing, damaged, unreadable), which then is either the latest
//! contents or those from before a store that a crash interrupted: both true of
//! the segments. A read-write open then stores what it went by again, so the two
//! copies agree before anything changes a segment; a read-only open changes
//! nothing and the recovery report says which copy it used. With no intact copy
//! the open fails with [`Error::CorruptMeta`], whose message names
//! `flashlog repair --first-seq N`: [`crate::rebuild_side_file`] writes a new
//! side file from the segments on disk and the first sequence number the user
//! gives. A log written before the copy existed has only `flashlog.meta`: a
//! missing copy is not damage, and the next read-write open writes it.

use std::fmt;
use std::path::PathBuf;

use crate::dir::{META_COPY_FILE, META_COPY_TMP_FILE, META_FILE, META_TMP_FILE};
use crate::error::{Error, Result};
use crate::fs::{Dir, OpenMode};
use crate::position::SegmentId;
use crate::position::MAX_SEQ;

const MAGIC: &[u8; 8] = b"FLWLMETA";
const VERSION: u32 = 2;
const LEN: usize = 64;
const CRC_AT: usize = LEN - 4;
/// The length of a version 1 side file.
const LEN_V1: usize = 48;

/// The contents of the side file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    /// The oldest segment that belongs to the log; older ones are left over from a
    /// `truncate_front` that crashed before removing them.
    pub first_segment: SegmentId,
    /// The sequence number of the first entry of `first_segment`.
    pub first_seq: u64,
    /// A `truncate_back(seq)` that was decided but may not have finished.
    pub pending_truncate_back: Option<u64>,
    /// The newest segment the log has (had, for a pending `truncate_back`'s
    /// intent: the newest it keeps); `None` when unknown (a Go-written log).
    pub last_segment: Option<SegmentId>,
    /// How many `truncate_back`s were ever started on the log.
    pub truncations: u64,
    /// The sequence number the newest `truncate_back` cut at (0 if none).
    pub last_cut: u64,
}

impl Default for Meta {
    fn default() -> Meta {
        Meta {
            first_segment: SegmentId(1),
            first_seq: 1,
            pending_truncate_back: None,
            last_segment: None,
            truncations: 0,
            last_cut: 0,
        }
    }
}

impl Meta {
    fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[..8].copy_from_slice(MAGIC);
        out[8..12].copy_from_slice(&VERSION.to_le_bytes());
        out[12..20].copy_from_slice(&self.first_segment.0.to_le_bytes());
        out[20..28].copy_from_slice(&self.first_seq.to_le_bytes());
        out[28..36].copy_from_slice(&self.pending_truncate_back.unwrap_or(0).to_le_bytes());
        out[36..44].copy_from_slice(&self.last_segment.map_or(0, |id| id.0).to_le_bytes());
        out[44..52].copy_from_slice(&self.truncations.to_le_bytes());
        out[52..60].copy_from_slice(&self.last_cut.to_le_bytes());
        let crc = crc32fast::hash(&out[..CRC_AT]);
        out[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> std::result::Result<Meta, &'static str> {
        let (version, crc_at) = match bytes.len() {
            LEN => (VERSION, CRC_AT),
            LEN_V1 => (1, LEN_V1 - 4),
            _ => return Err("wrong length"),
        };
        let u64_at = |at: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(word)
        };
        let mut crc = [0u8; 4];
        crc.copy_from_slice(&bytes[crc_at..]);
        if crc32fast::hash(&bytes[..crc_at]) != u32::from_le_bytes(crc) {
            return Err("checksum mismatch");
        }
        if &bytes[..8] != MAGIC {
            return Err("not a flashlog side file");
        }
        let mut stored_version = [0u8; 4];
        stored_version.copy_from_slice(&bytes[8..12]);
        if u32::from_le_bytes(stored_version) != version {
            return Err("unsupported version");
        }
        let counted = version >= 2;
        let meta = Meta {
            first_segment: SegmentId(u64_at(12)),
            first_seq: u64_at(20),
            pending_truncate_back: Some(u64_at(28)).filter(|&seq| seq != 0),
            last_segment: Some(u64_at(36)).filter(|&id| id != 0).map(SegmentId),
            truncations: if counted { u64_at(44) } else { 0 },
            last_cut: if counted { u64_at(52) } else { 0 },
        };
        if meta.first_seq == 0 {
            return Err("sequence numbers start at 1");
        }
        // Numbers no log can have, though the checksum holds (a crafted file):
        // refused here so that nothing counting on from them overflows.
        if meta.first_seq > MAX_SEQ {
            return Err("first sequence number out of range");
        }
        if meta.first_segment > SegmentId::MAX {
            return Err("first segment id out of range");
        }
        if meta
            .last_segment
            .is_some_and(|last| last > SegmentId::MAX || last < meta.first_segment)
        {
            return Err("newest segment id out of range");
        }
        if meta.pending_truncate_back.is_some_and(|seq| seq > MAX_SEQ) || meta.last_cut > MAX_SEQ {
            return Err("truncate_back sequence number out of range");
        }
        if meta.truncations > MAX_SEQ {
            return Err("truncate_back count out of range");
        }
        Ok(meta)
    }
}

/// What one copy of the side file holds.
#[derive(Debug)]
enum Copy {
    Missing,
    Intact(Meta),
    Damaged(&'static str),
    Unreadable(Error),
}

/// Reads one copy of the side file.
fn read_copy(dir: &Dir, name: &str) -> Copy {
    let read = || -> Result<Copy> {
        let Some(file) = dir.open_if_exists(name, OpenMode::Read)? else {
            return Ok(Copy::Missing);
        };
        let len = file.len()?;
        if len != LEN as u64 && len != LEN_V1 as u64 {
            return Ok(Copy::Damaged("wrong length"));
        }
        let mut bytes = [0u8; LEN];
        let bytes = &mut bytes[..len as usize];
        file.read_exact_at(bytes, 0)?;
        Ok(match Meta::decode(bytes) {
            Ok(meta) => Copy::Intact(meta),
            Err(reason) => Copy::Damaged(reason),
        })
    };
    read().unwrap_or_else(Copy::Unreadable)
}

/// What is wrong with a side file that recovery could not use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SideFileProblem {
    /// The file is not there.
    Missing,
    /// Its bytes do not check out: the reason.
    Damaged(&'static str),
    /// It could not be read (a directory in its place, no permission, an I/O
    /// error): the error, with its causes.
    Unreadable(String),
}

impl fmt::Display for SideFileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SideFileProblem::Missing => f.write_str("missing"),
            SideFileProblem::Damaged(reason) => write!(f, "damaged ({reason})"),
            SideFileProblem::Unreadable(error) => write!(f, "unreadable ({error})"),
        }
    }
}

/// What recovery did about a side file it could not use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SideFileAction {
    /// One copy of `flashlog.meta` was used in place of the other, which a
    /// read-write open rewrote from it (`rewritten`) and a read-only one left
    /// as it was.
    UsedOtherCopy {
        /// Whether the bad copy was rewritten.
        rewritten: bool,
    },
    /// The checkpoint `flashlog.index` was ignored: every segment was scanned.
    Ignored,
    /// The cursor file `flashlog.cursors` could not be used: the log opened as
    /// ever, and the cursor calls fail until the file is restored or removed
    /// ([`Wal::clear_cursors`](crate::Wal::clear_cursors)).
    CursorsUnavailable,
    /// The sealing-time file `flashlog.sealed` could not be used: every sealed
    /// segment counts as sealed when the log was opened (retention by age
    /// waits longer, never less).
    SealingTimesReset,
}

/// A side file recovery could not use, and what it did instead: an entry of
/// [`RecoveryReport::side_files`](crate::RecoveryReport::side_files).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SideFileNote {
    /// The side file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: SideFileProblem,
    /// What recovery did instead.
    pub action: SideFileAction,
}

impl fmt::Display for SideFileNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is {}: ", self.path.display(), self.problem)?;
        match self.action {
            SideFileAction::UsedOtherCopy { rewritten: true } => {
                f.write_str("used the other copy of the side file, and rewrote this one")
            }
            SideFileAction::UsedOtherCopy { rewritten: false } => f.write_str(
                "used the other copy of the side file (a read-write open rewrites this one)",
            ),
            SideFileAction::Ignored => f.write_str("ignored it and scanned every segment"),
            SideFileAction::CursorsUnavailable => f.write_str(
                "the log is unaffected; the cursor calls fail until the file is restored or removed (Wal::clear_cursors)",
            ),
            SideFileAction::SealingTimesReset => f.write_str(
                "the log is unaffected; retention counts every sealed segment as sealed at this open",
            ),
        }
    }
}

/// The side file as recovery goes by it, from both copies.
#[derive(Debug, Clone, Default)]
pub(crate) struct Loaded {
    /// What the log's side file says; `None` if it has none.
    pub meta: Option<Meta>,
    /// A copy that could not be used (the other was), noted for the report with
    /// `rewritten: false`.
    pub bad_copy: Option<SideFileNote>,
    /// Whether the copies differ from `meta` (one bad, missing or older): a
    /// read-write open stores `meta` again before it changes anything.
    pub rewrite: bool,
}

/// The error for a side file of which no intact copy is left.
fn lost(dir: &Dir, name: &str, reason: &'static str) -> Error {
    Error::CorruptMeta {
        path: dir.join(name),
        reason,
    }
}

/// Reads both copies of the side file and decides which to go by (see the module
/// docs).
///
/// # Errors
/// [`Error::CorruptMeta`] if neither copy is intact and one is damaged;
/// [`Error::Io`] if neither is intact and one could not be read.
pub(crate) fn inspect(dir: &Dir) -> Result<Loaded> {
    let first = read_copy(dir, META_FILE);
    if let Copy::Intact(meta) = first {
        // The first copy is never older than the second: go by it.
        let second = read_copy(dir, META_COPY_FILE);
        let rewrite = !matches!(second, Copy::Intact(copy) if copy == meta);
        let bad_copy = match second {
            Copy::Damaged(reason) => Some(SideFileProblem::Damaged(reason)),
            Copy::Unreadable(err) => Some(SideFileProblem::Unreadable(err.with_causes())),
            Copy::Missing | Copy::Intact(_) => None,
        };
        return Ok(Loaded {
            meta: Some(meta),
            bad_copy: bad_copy.map(|problem| note(dir, META_COPY_FILE, problem)),
            rewrite,
        });
    }
    let second = read_copy(dir, META_COPY_FILE);
    match (first, second) {
        (Copy::Missing | Copy::Intact(_), Copy::Missing) => Ok(Loaded::default()),
        (first, Copy::Intact(meta)) => {
            let problem = match first {
                Copy::Damaged(reason) => SideFileProblem::Damaged(reason),
                Copy::Unreadable(err) => SideFileProblem::Unreadable(err.with_causes()),
                Copy::Missing | Copy::Intact(_) => SideFileProblem::Missing,
            };
            Ok(Loaded {
                meta: Some(meta),
                bad_copy: Some(note(dir, META_FILE, problem)),
                rewrite: true,
            })
        }
        // An I/O error first: it may pass, and then a copy may be intact.
        (Copy::Unreadable(err), _) | (_, Copy::Unreadable(err)) => Err(err),
        (Copy::Damaged(reason), _) => Err(lost(dir, META_FILE, reason)),
        (_, Copy::Damaged(reason)) => Err(lost(dir, META_COPY_FILE, reason)),
    }
}

fn note(dir: &Dir, name: &str, problem: SideFileProblem) -> SideFileNote {
    SideFileNote {
        path: dir.join(name),
        problem,
        action: SideFileAction::UsedOtherCopy { rewritten: false },
    }
}

/// Reads the side file, if there is one: `flashlog.meta`, or its copy when that
/// is not intact (one read when it is, as for each read of a read-only view).
///
/// # Errors
/// As [`inspect`].
pub(crate) fn load(dir: &Dir) -> Result<Option<Meta>> {
    match read_copy(dir, META_FILE) {
        Copy::Intact(meta) => Ok(Some(meta)),
        _ => inspect(dir).map(|loaded| loaded.meta),
    }
}

/// Replaces both copies of the side file atomically and durably, the first
/// before the second (see the module docs for why that order is crash-safe).
pub(crate) fn store(dir: &Dir, meta: &Meta) -> Result<()> {
    let bytes = meta.encode();
    store_copy(dir, META_FILE, META_TMP_FILE, &bytes)?;
    store_copy(dir, META_COPY_FILE, META_COPY_TMP_FILE, &bytes)
}

/// Stores one copy durably: overwritten in place (and fdatasynced) when it is a
/// whole current-version file already, so that a store needs no new space (a
/// rotation on a full disk still records its new segment, see rollback.rs);
/// otherwise (missing, version 1, the wrong length) replaced through `tmp_name`.
/// A crash during an overwrite in place can leave the copy torn, which its
/// checksum shows (see the module docs).
fn store_copy(dir: &Dir, name: &str, tmp_name: &str, bytes: &[u8]) -> Result<()> {
    if let Some(file) = dir.open_if_exists(name, OpenMode::ReadWrite)? {
        if file.len()? == LEN as u64 {
            file.write_all_at(bytes, 0)?;
            return file.sync_data();
        }
    }
    dir.replace_durably(name, tmp_name, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let meta = Meta {
            first_segment: SegmentId(7),
            first_seq: 1234,
            pending_truncate_back: Some(99),
            last_segment: Some(SegmentId(9)),
            truncations: 3,
            last_cut: 99,
        };
        let bytes = meta.encode();
        assert_eq!(Meta::decode(&bytes), Ok(meta));
        for at in 0..LEN {
            let mut damaged = bytes;
            damaged[at] ^= 0x10;
            assert!(Meta::decode(&damaged).is_err(), "flip at {at} not detected");
        }
        assert!(Meta::decode(&bytes[..LEN - 1]).is_err());
    }

    /// A checksum that holds over numbers no log can have is damage too: nothing
    /// may count on from them (issue 12, item 6).
    #[test]
    fn numbers_out_of_range_are_refused() {
        let good = Meta {
            first_segment: SegmentId(3),
            first_seq: 10,
            pending_truncate_back: None,
            last_segment: Some(SegmentId(5)),
            truncations: 1,
            last_cut: 12,
        };
        assert_eq!(Meta::decode(&good.encode()), Ok(good));
        let edge = Meta {
            first_segment: SegmentId::MAX,
            first_seq: MAX_SEQ,
            last_segment: Some(SegmentId::MAX),
            ..good
        };
        assert_eq!(Meta::decode(&edge.encode()), Ok(edge));
        for bad in [
            Meta {
                first_seq: MAX_SEQ + 1,
                ..good
            },
            Meta {
                first_seq: u64::MAX,
                ..good
            },
            Meta {
                first_segment: SegmentId(u64::MAX),
                last_segment: None,
                ..good
            },
            Meta {
                last_segment: Some(SegmentId(u64::MAX)),
                ..good
            },
            Meta {
                last_segment: Some(SegmentId(2)),
                ..good
            },
            Meta {
                pending_truncate_back: Some(u64::MAX),
                ..good
            },
            Meta {
                last_cut: u64::MAX,
                ..good
            },
            Meta {
                truncations: u64::MAX,
                ..good
            },
        ] {
            assert!(Meta::decode(&bad.encode()).is_err(), "{bad:?}");
        }
    }

    /// A side file written before the counter reads as one with none counted.
    #[test]
    fn version_1_is_read() {
        let mut v1 = [0u8; LEN_V1];
        v1[..8].copy_from_slice(MAGIC);
        v1[8..12].copy_from_slice(&1u32.to_le_bytes());
        v1[12..20].copy_from_slice(&7u64.to_le_bytes());
        v1[20..28].copy_from_slice(&1234u64.to_le_bytes());
        v1[36..44].copy_from_slice(&9u64.to_le_bytes());
        let crc = crc32fast::hash(&v1[..LEN_V1 - 4]);
        v1[LEN_V1 - 4..].copy_from_slice(&crc.to_le_bytes());
        let meta = Meta::decode(&v1).unwrap();
        assert_eq!(
            meta,
            Meta {
                first_segment: SegmentId(7),
                first_seq: 1234,
                pending_truncate_back: None,
                last_segment: Some(SegmentId(9)),
                truncations: 0,
                last_cut: 0,
            }
        );
    }
}
