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
//! counted; the next store writes version 2.
//! It is replaced atomically: written to `flashlog.meta.tmp`, fsynced, renamed over
//! the old one, and the directory fsynced.

use crate::error::{Error, Result};
use crate::fs::{Dir, OpenMode};
use crate::SegmentId;

/// The side file's name.
pub const META_FILE: &str = "flashlog.meta";
/// The name the side file is written under before it is renamed into place.
pub const META_TMP_FILE: &str = "flashlog.meta.tmp";

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
        Ok(meta)
    }
}

/// Reads the side file, if there is one.
pub(crate) fn load(dir: &Dir) -> Result<Option<Meta>> {
    let Some(file) = dir.open_if_exists(META_FILE, OpenMode::Read)? else {
        return Ok(None);
    };
    let len = file.len()?;
    if len != LEN as u64 && len != LEN_V1 as u64 {
        return Err(Error::CorruptMeta {
            path: file.path().to_path_buf(),
            reason: "wrong length",
        });
    }
    let mut bytes = [0u8; LEN];
    let bytes = &mut bytes[..len as usize];
    file.read_exact_at(bytes, 0)?;
    Meta::decode(bytes)
        .map(Some)
        .map_err(|reason| Error::CorruptMeta {
            path: file.path().to_path_buf(),
            reason,
        })
}

/// Replaces the side file atomically and durably.
pub(crate) fn store(dir: &Dir, meta: &Meta) -> Result<()> {
    dir.replace_durably(META_FILE, META_TMP_FILE, &meta.encode())
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
