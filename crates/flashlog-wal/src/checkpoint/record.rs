//! The checkpoint's records ([`Sealed`]) and its bytes: encoding them, and decoding
//! and range-checking them.
//!
//! Layout, integers little-endian:
//! ```text
//! | "FLWLINDX" (8) | version u32 = 3 | count u32 |
//! | count × (segment u64 | first_seq u64 | entries u64 | len u64 |
//! |          last_offset u64 | last_crc u32 | gap_count u32 |
//! |          gap_count × (at u64 | len u64)) |
//! | CRC-32/IEEE of everything before (4) |
//! ```
//! `entries` counts the gaps' sequence numbers too; a gap's `at` counts from the
//! segment's first sequence number. `last_offset` and `last_crc` are 0 for a
//! segment without entries. Version 2 (no gap count) is still read; version 1
//! (no last entry) is ignored: the next open scans, and the next rotation or
//! close writes version 3.

use crate::codec;
use crate::options::MAX_MAX_SEGMENT_SIZE;
use crate::position::SegmentId;
use crate::position::MAX_SEQ;

const MAGIC: &[u8; 8] = b"FLWLINDX";
const VERSION: u32 = 3;
/// Version 2: records without gaps, still read.
const VERSION_2: u32 = 2;
pub(super) const HEADER_LEN: usize = 16;
/// A version 2 record; version 3 adds a gap count and the gaps.
pub(super) const RECORD_LEN: usize = 44;
const GAP_LEN: usize = 16;
pub(super) const CRC_LEN: usize = 4;

/// What the checkpoint says about one sealed segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sealed {
    pub id: SegmentId,
    pub first_seq: u64,
    /// Sequence numbers the segment spans: its entries and its gaps.
    pub entries: u64,
    pub len: u64,
    /// The segment's last entry; `None` if it has none.
    pub last: Option<LastEntry>,
    /// Sequence numbers that entries removed as damage held
    /// ([`remove_skipped_damage`](crate::remove_skipped_damage)), in order:
    /// nothing in the segment says they were there. A record with gaps is never
    /// trusted without a scan.
    pub gaps: Vec<RecordedGap>,
}

/// Sequence numbers a segment keeps for entries that are no longer in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordedGap {
    /// The first of them, counted from the segment's first sequence number.
    pub at: u64,
    /// How many.
    pub len: u64,
}

impl Sealed {
    /// The sequence numbers its gaps hold.
    pub(crate) fn in_gaps(&self) -> u64 {
        self.gaps.iter().map(|gap| gap.len).sum()
    }
}

/// Where a segment's last entry starts and the CRC stored in its first 4 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LastEntry {
    pub offset: u64,
    pub crc: u32,
}

impl LastEntry {
    /// The entry starting at `offset` in `bytes`, if 4 bytes are there.
    pub(crate) fn at(bytes: &[u8], offset: usize) -> Option<LastEntry> {
        let crc = bytes.get(offset..offset + codec::CRC_LEN)?;
        Some(LastEntry {
            offset: offset as u64,
            crc: u32::from_le_bytes(crc.try_into().ok()?),
        })
    }
}

pub(super) fn encode(records: &[Sealed]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + records.len() * RECORD_LEN + CRC_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    for record in records {
        let last = record.last.unwrap_or(LastEntry { offset: 0, crc: 0 });
        for word in [
            record.id.0,
            record.first_seq,
            record.entries,
            record.len,
            last.offset,
        ] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&last.crc.to_le_bytes());
        out.extend_from_slice(&(record.gaps.len() as u32).to_le_bytes());
        for gap in &record.gaps {
            out.extend_from_slice(&gap.at.to_le_bytes());
            out.extend_from_slice(&gap.len.to_le_bytes());
        }
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The records of a checkpoint's bytes; `None` unless every byte checks out.
pub(super) fn decode(bytes: &[u8]) -> Option<Vec<Sealed>> {
    let body_len = bytes.len().checked_sub(CRC_LEN)?;
    let (body, crc) = bytes.split_at(body_len);
    if body.len() < HEADER_LEN || crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().ok()?)
    {
        return None;
    }
    let u32_at = |at: usize| u32::from_le_bytes(body[at..at + 4].try_into().expect("4 bytes"));
    let version = u32_at(8);
    if &body[..8] != MAGIC || (version != VERSION && version != VERSION_2) {
        return None;
    }
    let count = u32_at(12) as usize;
    let mut rest = &body[HEADER_LEN..];
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = rest.split_at_checked(n)?;
        rest = tail;
        Some(head)
    };
    let u64_of = |bytes: &[u8], at: usize| {
        u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
    };
    let mut records = Vec::new();
    for _ in 0..count {
        let record = take(RECORD_LEN)?;
        let entries = u64_of(record, 16);
        let mut gaps = Vec::new();
        if version == VERSION {
            let gap_count = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
            let bytes = take(gap_count.checked_mul(GAP_LEN)?)?;
            gaps = bytes
                .chunks_exact(GAP_LEN)
                .map(|gap| RecordedGap {
                    at: u64_of(gap, 0),
                    len: u64_of(gap, 8),
                })
                .collect();
        }
        records.push(Sealed {
            id: SegmentId(u64_of(record, 0)),
            first_seq: u64_of(record, 8),
            entries,
            len: u64_of(record, 24),
            last: (entries > gaps.iter().map(|g| g.len).sum::<u64>()).then(|| LastEntry {
                offset: u64_of(record, 32),
                crc: u32::from_le_bytes(record[40..44].try_into().expect("4 bytes")),
            }),
            gaps,
        });
    }
    (rest.is_empty() && records.iter().all(possible)).then_some(records)
}

/// Whether a record's numbers are ones a segment can have: a checksum that holds
/// over numbers out of range (a crafted file) must not reach the index, whose
/// arithmetic counts on from them.
fn possible(record: &Sealed) -> bool {
    record.id <= SegmentId::MAX
        && (1..=MAX_SEQ).contains(&record.first_seq)
        && record.len <= MAX_MAX_SEGMENT_SIZE
        && record.gaps.iter().all(|gap| {
            gap.at
                .checked_add(gap.len)
                .is_some_and(|end| end <= record.entries)
        })
        && record
            .gaps
            .iter()
            .try_fold(0u64, |sum, gap| sum.checked_add(gap.len))
            .is_some_and(|gapped| {
                // Entries in gaps have no bytes left (repair took them out).
                gapped <= record.entries
                    && record.entries - gapped <= record.len / codec::MIN_ENTRY_LEN
            })
        && record
            .last
            .is_none_or(|last| last.offset.saturating_add(codec::MIN_ENTRY_LEN) <= record.len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<Sealed> {
        vec![
            Sealed {
                id: SegmentId(3),
                first_seq: 100,
                entries: 7,
                len: 700,
                last: Some(LastEntry {
                    offset: 600,
                    crc: 0xDEAD_BEEF,
                }),
                gaps: Vec::new(),
            },
            Sealed {
                id: SegmentId(4),
                first_seq: 107,
                entries: 0,
                len: 0,
                last: None,
                gaps: Vec::new(),
            },
            Sealed {
                id: SegmentId(5),
                first_seq: 107,
                entries: 9,
                len: 300,
                last: Some(LastEntry {
                    offset: 250,
                    crc: 1,
                }),
                gaps: vec![RecordedGap { at: 0, len: 2 }, RecordedGap { at: 5, len: 1 }],
            },
            Sealed {
                id: SegmentId(6),
                first_seq: 116,
                entries: 4,
                len: 0,
                last: None,
                gaps: vec![RecordedGap { at: 0, len: 4 }],
            },
        ]
    }

    /// A version 2 checkpoint (records without gaps) is still read.
    #[test]
    fn version_2_is_read() {
        let records: Vec<Sealed> = records()
            .into_iter()
            .filter(|r| r.gaps.is_empty())
            .collect();
        let mut v2 = Vec::new();
        v2.extend_from_slice(MAGIC);
        v2.extend_from_slice(&VERSION_2.to_le_bytes());
        v2.extend_from_slice(&(records.len() as u32).to_le_bytes());
        for record in &records {
            let last = record.last.unwrap_or(LastEntry { offset: 0, crc: 0 });
            for word in [
                record.id.0,
                record.first_seq,
                record.entries,
                record.len,
                last.offset,
            ] {
                v2.extend_from_slice(&word.to_le_bytes());
            }
            v2.extend_from_slice(&last.crc.to_le_bytes());
        }
        let crc = crc32fast::hash(&v2);
        v2.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(decode(&v2), Some(records));
    }

    #[test]
    fn round_trip() {
        assert_eq!(decode(&encode(&records())), Some(records()));
        assert_eq!(decode(&encode(&[])), Some(Vec::new()));
    }

    /// A version 1 checkpoint (no last entries) is ignored: the open scans.
    #[test]
    fn an_older_version_is_ignored() {
        let mut v1 = Vec::new();
        v1.extend_from_slice(MAGIC);
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(&1u32.to_le_bytes());
        for word in [3u64, 100, 7, 700] {
            v1.extend_from_slice(&word.to_le_bytes());
        }
        let crc = crc32fast::hash(&v1);
        v1.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(decode(&v1), None);
    }

    /// A record whose numbers no segment can have makes the checkpoint void, even
    /// with a valid checksum (issue 12, item 6).
    #[test]
    fn records_out_of_range_are_refused() {
        let good = records().swap_remove(0);
        for bad in [
            Sealed {
                id: SegmentId(u64::MAX),
                ..good.clone()
            },
            Sealed {
                first_seq: 0,
                ..good.clone()
            },
            Sealed {
                first_seq: u64::MAX,
                ..good.clone()
            },
            Sealed {
                entries: u64::MAX,
                ..good.clone()
            },
            Sealed {
                entries: 700 / 17 + 1,
                ..good.clone()
            },
            Sealed {
                len: u64::MAX,
                ..good.clone()
            },
            Sealed {
                last: Some(LastEntry {
                    offset: 690,
                    crc: 1,
                }),
                ..good.clone()
            },
        ] {
            assert_eq!(decode(&encode(std::slice::from_ref(&bad))), None, "{bad:?}");
        }
        assert_eq!(
            decode(&encode(std::slice::from_ref(&good))),
            Some(vec![good])
        );
    }

    #[test]
    fn every_damage_is_refused() {
        let bytes = encode(&records());
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[at] ^= 1 << bit;
                assert_eq!(decode(&damaged), None, "flip of bit {bit} at {at}");
            }
        }
        for len in 0..bytes.len() {
            assert_eq!(decode(&bytes[..len]), None, "cut at {len}");
        }
    }
}
