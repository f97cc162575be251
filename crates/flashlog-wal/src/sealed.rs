//! The side file `flashlog.sealed`: when each sealed segment was sealed, for the
//! age limit of retention ([`Retention::max_age`](crate::Retention::max_age)).
//! Written only by a log opened with a retention policy.
//!
//! Layout, integers little-endian, records sorted by segment id:
//! ```text
//! | "FLWLSEAL" (8) | version u32 = 1 | count u32 | truncations u64 |
//! | count x ( segment u64 | first_seq u64 | next_seq u64 | sealed_at_ms u64 ) |
//! | CRC-32/IEEE of every byte before (4) |
//! ```
//! `sealed_at_ms` is milliseconds since the Unix epoch; `next_seq` is the first
//! sequence number after the segment; `truncations` is the side file's count
//! of cuts (`flashlog.meta`, see `meta.rs`) when the file was written.
//!
//! Every store replaces the whole file: `flashlog.sealed.tmp`, fdatasync, rename,
//! fsync of the directory. A crash leaves the old file or the new one; a
//! leftover `.tmp` is never read (a read-write open with retention removes it).
//!
//! **A record must describe the segment it names.** Segment ids are reused: a
//! `truncate_back` removes the newest segments and the next rotations create
//! them again, sealed later. So a record counts only if a sealed segment has its
//! id, its first sequence number and its `next_seq`, and no cut since the file
//! was written can have touched it: the side file counted the same number of
//! cuts, or one more whose `last_cut` lies after the segment (the rule a
//! read-only view uses for its reads, `Shared::confirm_view`). Otherwise the
//! time is unknown, and unknown counts as "sealed when the log was opened":
//! later than the truth, never earlier, so a crash or a damaged file can delay
//! a removal by age but never bring one forward.
//!
//! The file is a hint, not the log: Go ignores it (it is not a segment), the
//! segments never depend on it, and a missing, damaged or unreadable one only
//! resets ages (noted in the recovery report).

use std::collections::BTreeMap;

use crate::dir::{SEALED_FILE, SEALED_TMP_FILE};
use crate::error::Result;
use crate::fs::{Dir, OpenMode};
use crate::meta::{SideFileAction, SideFileNote, SideFileProblem};
use crate::position::{SegmentId, MAX_SEQ};

const MAGIC: &[u8; 8] = b"FLWLSEAL";
const VERSION: u32 = 1;
/// Magic, version, count, truncations.
const HEADER_LEN: usize = 24;
const RECORD_LEN: usize = 32;
const CRC_LEN: usize = 4;
/// The most records a file is read with: far more segments than a log has.
const MAX_RECORDS: usize = 1 << 24;

/// When one segment was sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SealRecord {
    pub first_seq: u64,
    /// The first sequence number after the segment.
    pub next_seq: u64,
    /// Milliseconds since the Unix epoch.
    pub sealed_at: u64,
}

/// The file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SealTimes {
    /// The side file's count of cuts when the file was written.
    pub truncations: u64,
    pub records: BTreeMap<SegmentId, SealRecord>,
}

impl SealTimes {
    /// Whether `record` of segment `id` still describes the sealed segment
    /// `(id, first_seq, next_seq)` of a log whose side file counts `truncations`
    /// cuts, the newest at `last_cut` (see the module docs).
    pub(crate) fn describes(
        &self,
        record: &SealRecord,
        first_seq: u64,
        next_seq: u64,
        truncations: u64,
        last_cut: u64,
    ) -> bool {
        record.first_seq == first_seq
            && record.next_seq == next_seq
            && (truncations == self.truncations
                || (Some(truncations) == self.truncations.checked_add(1) && last_cut >= next_seq))
    }
}

pub(crate) fn encode(times: &SealTimes) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + times.records.len() * RECORD_LEN + CRC_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(times.records.len() as u32).to_le_bytes());
    out.extend_from_slice(&times.truncations.to_le_bytes());
    for (id, record) in &times.records {
        for word in [id.0, record.first_seq, record.next_seq, record.sealed_at] {
            out.extend_from_slice(&word.to_le_bytes());
        }
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The file's contents, or why they are refused.
pub(crate) fn decode(bytes: &[u8]) -> std::result::Result<SealTimes, &'static str> {
    let body_len = bytes
        .len()
        .checked_sub(CRC_LEN)
        .filter(|&len| len >= HEADER_LEN)
        .ok_or("too short for a sealing-time file")?;
    let (body, crc) = bytes.split_at(body_len);
    let word = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().unwrap_or([0; 8]));
    let half = |at: usize| u32::from_le_bytes(body[at..at + 4].try_into().unwrap_or([0; 4]));
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().unwrap_or([0; 4])) {
        return Err("checksum mismatch");
    }
    if &body[..8] != MAGIC {
        return Err("not a flashlog sealing-time file");
    }
    if half(8) != VERSION {
        return Err("unsupported version");
    }
    let count = half(12) as usize;
    if count > MAX_RECORDS || body.len() != HEADER_LEN + count * RECORD_LEN {
        return Err("length does not match the record count");
    }
    let mut times = SealTimes {
        truncations: word(16),
        records: BTreeMap::new(),
    };
    for n in 0..count {
        let at = HEADER_LEN + n * RECORD_LEN;
        let id = SegmentId(word(at));
        let record = SealRecord {
            first_seq: word(at + 8),
            next_seq: word(at + 16),
            sealed_at: word(at + 24),
        };
        let possible = id <= SegmentId::MAX
            && (1..=MAX_SEQ).contains(&record.first_seq)
            && (record.first_seq..=MAX_SEQ.saturating_add(1)).contains(&record.next_seq);
        if !possible {
            return Err("numbers out of range");
        }
        if times.records.insert(id, record).is_some() {
            return Err("a segment recorded twice");
        }
    }
    Ok(times)
}

/// Reads the file: empty without one; a damaged or unreadable one is empty too,
/// with a note for the recovery report.
pub(crate) fn load(dir: &Dir) -> (SealTimes, Option<SideFileNote>) {
    let read = || -> Result<std::result::Result<SealTimes, &'static str>> {
        let Some(file) = dir.open_if_exists(SEALED_FILE, OpenMode::Read)? else {
            return Ok(Ok(SealTimes::default()));
        };
        let len = file.len()?;
        if len > (HEADER_LEN + MAX_RECORDS * RECORD_LEN + CRC_LEN) as u64 {
            return Ok(Err("longer than a sealing-time file can be"));
        }
        let mut bytes = vec![0u8; len as usize];
        file.read_exact_at(&mut bytes, 0)?;
        Ok(decode(&bytes))
    };
    let problem = match read() {
        Ok(Ok(times)) => return (times, None),
        Ok(Err(reason)) => SideFileProblem::Damaged(reason),
        Err(err) => SideFileProblem::Unreadable(err.with_causes()),
    };
    let note = SideFileNote {
        path: dir.join(SEALED_FILE),
        problem,
        action: SideFileAction::SealingTimesReset,
    };
    (SealTimes::default(), Some(note))
}

/// Replaces the file with `times`, durably.
///
/// # Errors
/// [`Error::Io`](crate::Error::Io).
pub(crate) fn store(dir: &Dir, times: &SealTimes) -> Result<()> {
    dir.replace_durably(SEALED_FILE, SEALED_TMP_FILE, &encode(times))
}

/// Removes a temporary file a crash left before its rename.
pub(crate) fn remove_leftover(dir: &Dir) {
    let _ = dir.remove_if_exists(SEALED_TMP_FILE);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times() -> SealTimes {
        let mut records = BTreeMap::new();
        records.insert(
            SegmentId(3),
            SealRecord {
                first_seq: 10,
                next_seq: 20,
                sealed_at: 1_700_000_000_000,
            },
        );
        records.insert(
            SegmentId(4),
            SealRecord {
                first_seq: 20,
                next_seq: 20,
                sealed_at: 1_700_000_000_500,
            },
        );
        SealTimes {
            truncations: 2,
            records,
        }
    }

    #[test]
    fn round_trip() {
        assert_eq!(decode(&encode(&times())), Ok(times()));
        assert_eq!(
            decode(&encode(&SealTimes::default())),
            Ok(SealTimes::default())
        );
    }

    #[test]
    fn every_damage_is_refused() {
        let bytes = encode(&times());
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[at] ^= 1 << bit;
                assert!(decode(&damaged).is_err(), "flip of bit {bit} at {at}");
            }
        }
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "cut at {len}");
        }
    }

    #[test]
    fn numbers_out_of_range_are_refused() {
        for bad in [
            (SegmentId(u64::MAX), 10, 20),
            (SegmentId(3), 0, 20),
            (SegmentId(3), 20, 10),
            (SegmentId(3), u64::MAX, u64::MAX),
        ] {
            let mut records = BTreeMap::new();
            records.insert(
                bad.0,
                SealRecord {
                    first_seq: bad.1,
                    next_seq: bad.2,
                    sealed_at: 0,
                },
            );
            let times = SealTimes {
                truncations: 0,
                records,
            };
            assert_eq!(
                decode(&encode(&times)),
                Err("numbers out of range"),
                "{bad:?}"
            );
        }
    }

    /// A record counts only for the segment it was written for, and only while
    /// no cut since can have touched that segment.
    #[test]
    fn a_record_describes_only_its_segment() {
        let times = times();
        let record = times.records[&SegmentId(3)];
        // Same cuts: it counts if the numbers match.
        assert!(times.describes(&record, 10, 20, 2, 7));
        assert!(!times.describes(&record, 10, 21, 2, 7));
        assert!(!times.describes(&record, 11, 20, 2, 7));
        // One cut since, after the segment: it counts.
        assert!(times.describes(&record, 10, 20, 3, 20));
        // One cut since, inside or before it: the segment may be another one.
        assert!(!times.describes(&record, 10, 20, 3, 19));
        // Two cuts since, or fewer than when written (a rebuilt side file).
        assert!(!times.describes(&record, 10, 20, 4, 100));
        assert!(!times.describes(&record, 10, 20, 1, 100));
    }
}
