//! One segment file: opening and reading it, scanning its bytes into entries and
//! damaged regions, and reading a segment the checkpoint vouches for.
//!
//! Damage is any place where a valid entry should start and does not. Scanning
//! only finds it; what it means (torn tail or corruption) and what is done about
//! it is recovery's decision (`recovery/policy.rs`).

use crate::checkpoint::{LastEntry, Sealed};
use crate::codec;
use crate::error::{CorruptionKind, Error, Result};
use crate::fs::{Dir, OpenMode, PathFile};
use crate::options::MAX_MAX_SEGMENT_SIZE;
use crate::position::SegmentId;

/// One segment as scanned: every valid entry and every damaged region.
#[derive(Debug)]
pub(crate) struct Scan {
    pub(crate) id: SegmentId,
    pub(crate) len: u64,
    pub(crate) offsets: Vec<u32>,
    pub(crate) damage: Vec<ScanDamage>,
    /// Where a run of zeros reaching the end of the file starts: preallocated space
    /// (in the last segment) rather than damage.
    pub(crate) zero_tail: Option<u64>,
    /// The last valid entry (for the checkpoint).
    pub(crate) last: Option<LastEntry>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct ScanDamage {
    pub(crate) offset: u64,
    pub(crate) kind: CorruptionKind,
    /// Where the scan goes on after the damage.
    pub(crate) resume: Resume,
    /// The last valid entry before the damage: the last one kept if the segment
    /// is cut here.
    pub(crate) last_before: Option<LastEntry>,
}

/// What follows damage in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resume {
    /// The next valid entry, at this offset.
    At(u64),
    /// No valid entry: the damage runs to the end of the segment.
    Nowhere,
    /// Not known: the search gave up (see [`codec::search_budget`]).
    Unsearched,
}

impl Resume {
    /// Where the damaged region ends, in a segment of `len` bytes.
    pub(crate) fn end(self, len: u64) -> u64 {
        match self {
            Resume::At(at) => at,
            Resume::Nowhere | Resume::Unsearched => len,
        }
    }
}

/// Which segment a scan reads: an entry that runs past the end means a different
/// thing in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The newest segment, the only one a crash can leave a write cut short in:
    /// an entry running past its written bytes is a torn tail.
    Newest,
    /// An older one, trimmed and synced before the next one started: an entry
    /// running past its end is damage.
    Sealed,
}

/// Scans one segment's bytes. Pure: any bytes give a result, nothing panics.
pub(crate) fn scan_segment(id: SegmentId, bytes: &[u8], role: Role) -> Scan {
    let mut scan = Scan {
        id,
        len: bytes.len() as u64,
        offsets: Vec::new(),
        damage: Vec::new(),
        zero_tail: None,
        last: None,
    };
    // One budget for every search of the segment, so that many damaged regions
    // cannot each spend a fresh one.
    let mut budget = codec::search_budget(bytes.len());
    // Where the segment's entries must end: found at the first damage.
    let mut end = None;
    let mut at = 0usize;
    while at < bytes.len() {
        match codec::decode(&bytes[at..]) {
            Ok(entry) => {
                scan.offsets.push(at as u32);
                scan.last = LastEntry::at(bytes, at);
                at += entry.len;
            }
            Err(_) if bytes[at..].iter().all(|&byte| byte == 0) => {
                scan.zero_tail = Some(at as u64);
                break;
            }
            Err(kind) => {
                let end = *end.get_or_insert_with(|| match role {
                    Role::Newest => written_len(bytes),
                    Role::Sealed => bytes.len(),
                });
                let (kind, resume) = resync(bytes, at, end, kind, &mut budget);
                scan.damage.push(ScanDamage {
                    offset: at as u64,
                    kind,
                    resume,
                    last_before: scan.last,
                });
                match resume {
                    Resume::At(next) => at = next as usize,
                    Resume::Nowhere | Resume::Unsearched => break,
                }
            }
        }
    }
    scan
}

/// The bytes of the newest segment that a write reached: all but the zeros it
/// ends with. Those are preallocated space, or space a write cut short did not
/// reach (the writer keeps zeros ahead of its entries); no entry lies in zeros.
fn written_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .rposition(|&byte| byte != 0)
        .map_or(0, |last| last + 1)
}

/// How a piece of a trusted segment scanned, for [`scan_piece`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Piece {
    /// The entries of the piece's first `n` bytes were valid; the next one (if
    /// any) runs past the piece.
    Scanned(usize),
    /// The piece's first entry needs this many bytes: read a larger piece.
    TooShort(u64),
    /// Damage at this offset of the piece.
    Damaged(usize, CorruptionKind),
}

/// Scans a piece of a sealed segment that starts on an entry boundary at
/// `base` of a segment of `len` bytes: every entry that lies wholly in the piece
/// is checked and its offset pushed to `offsets`. An entry cut by the piece's
/// end is left for the next piece, unless the segment ends there too (damage).
pub(crate) fn scan_piece(bytes: &[u8], base: u64, len: u64, offsets: &mut Vec<u32>) -> Piece {
    let mut at = 0usize;
    while at < bytes.len() {
        match codec::decode(&bytes[at..]) {
            Ok(entry) => {
                offsets.push((base + at as u64) as u32);
                at += entry.len;
            }
            Err(CorruptionKind::Incomplete { needed, .. }) if base + at as u64 + needed <= len => {
                return if at == 0 {
                    Piece::TooShort(needed)
                } else {
                    Piece::Scanned(at)
                };
            }
            Err(kind) => return Piece::Damaged(at, kind),
        }
    }
    Piece::Scanned(at)
}

/// Decides where the scan goes on after the entry at `at` failed to decode with
/// `kind`, in a segment whose entries all end by `end` (its written bytes, see
/// [`Role`]), and what to report there.
///
/// **An entry owns its declared bytes.** When its header agrees with itself
/// ([`codec::declared_len`]: `TOTAL_LEN`, `KEY_LEN` and `VAL_LEN` add up), the
/// entry ends where it says, whatever its CRC (a torn write, a bit flip in its
/// body, the Go writer's placeholder CRC), and nothing inside it is looked at:
/// a value may hold bytes in this very format (a shipped segment, a snapshot, a
/// Raft payload), and reading entries out of it would surface entries nobody
/// appended (issue 12). So:
/// - an entry that runs past `end` is a write cut short, FORMAT.md's end of the
///   log: [`Resume::Nowhere`], reported as [`CorruptionKind::Incomplete`] (in
///   the newest segment, a torn tail; in a sealed one, damage to its end);
/// - one that fits is skipped whole, and the next one is checked where it ends
///   (and skipped too if it is such an entry).
///
/// Only where the lengths disagree (damage in the header itself, or bytes that
/// are no entry at all) is the end unknown; then the search goes byte by byte
/// for the **earliest** valid entry, as it always did. Never at such a header's
/// own `TOTAL_LEN`: a damaged length can point past valid entries, and once an
/// append puts a valid entry where it points, a jump would hide entries an
/// earlier open had found and renumber everything after them (found by fuzzing,
/// under `SkipCorrupted`). A header that agrees cannot cause that: if it runs
/// past `end` of the newest segment it is cut with the torn tail before anything
/// is appended, and if it fits, appends do not change it.
///
/// What this trades away: damage that leaves a header agreeing with itself but
/// wrong (`TOTAL_LEN` and `VAL_LEN` changed together; a single bit flip in one
/// length field is caught by the others) hides the entries inside the extent it
/// declares. Near the end of the newest segment that is reported as a torn tail,
/// of kind `Incomplete`, and the entries after it are cut with it.
fn resync(
    bytes: &[u8],
    at: usize,
    end: usize,
    kind: CorruptionKind,
    budget: &mut u64,
) -> (CorruptionKind, Resume) {
    let mut from = at;
    loop {
        if from >= end {
            return (kind, Resume::Nowhere);
        }
        let declared = match codec::declared_len(&bytes[from..end]) {
            Ok(declared) => declared,
            Err(header) => {
                // `decode` says "incomplete" before it looks at the lengths; when
                // they disagree, that is what is wrong (a damaged TOTAL_LEN).
                let kind = match (kind, header) {
                    (_, CorruptionKind::Incomplete { .. }) => kind,
                    (CorruptionKind::Incomplete { .. }, _) if from == at => header,
                    _ => kind,
                };
                return (kind, search(bytes, from, budget));
            }
        };
        let next = from as u64 + declared;
        if next > end as u64 {
            // Zeros after the written bytes are not part of the entry: it has
            // `end - at` bytes, whatever `decode` saw.
            let kind = if from == at {
                CorruptionKind::Incomplete {
                    needed: declared,
                    available: (end - at) as u64,
                }
            } else {
                kind
            };
            return (kind, Resume::Nowhere);
        }
        let next = next as usize;
        match codec::check_entry(&bytes[next..], budget) {
            codec::Check::Valid => return (kind, Resume::At(next as u64)),
            codec::Check::OverBudget => return (kind, Resume::Unsearched),
            codec::Check::Invalid => from = next,
        }
    }
}

/// Where the earliest valid entry after the first byte of `bytes[from..]` starts.
fn search(bytes: &[u8], from: usize, budget: &mut u64) -> Resume {
    match codec::valid_entry_after(&bytes[from..], budget) {
        codec::Search::Found(offset) => Resume::At((from + offset) as u64),
        codec::Search::NotFound => Resume::Nowhere,
        codec::Search::Exhausted(_) => Resume::Unsearched,
    }
}

/// Opens a segment and checks that its length is one segments can have.
pub(crate) fn open_segment(dir: &Dir, name: &str) -> Result<(PathFile, u64)> {
    let file = dir.open(name, OpenMode::Read)?;
    let len = file.len()?;
    // Offsets inside a segment are u32; the Go writer's segments are far smaller.
    if len > MAX_MAX_SEGMENT_SIZE {
        return Err(Error::SegmentTooLarge {
            path: file.path().to_path_buf(),
            len,
            max: MAX_MAX_SEGMENT_SIZE,
        });
    }
    Ok((file, len))
}

/// Reads the first `len` bytes of a segment into `buf` (fewer if the file is shorter).
pub(crate) fn read_segment(file: &PathFile, len: u64, buf: &mut Vec<u8>) -> Result<()> {
    let len = len as usize;
    // Grow without re-zeroing bytes the buffer already has: the read overwrites them.
    if buf.len() < len {
        buf.resize(len, 0);
    }
    let read = file.read_up_to(&mut buf[..len], 0)?;
    buf.truncate(read);
    Ok(())
}

/// Reads a segment that recovery trusted from the checkpoint into `buf` and
/// returns its entries' offsets, after checking every entry: any damage is an
/// [`Error::Corrupt`], a file that no longer matches the record an
/// [`Error::SegmentChanged`].
pub(crate) fn read_trusted(
    file: &PathFile,
    record: &Sealed,
    buf: &mut Vec<u8>,
) -> Result<Vec<u32>> {
    let len = file.len()?;
    read_segment(file, len.min(MAX_MAX_SEGMENT_SIZE), buf)?;
    let scan = scan_segment(record.id, buf, Role::Sealed);
    let damage = scan
        .damage
        .first()
        .map(|damage| (damage.offset, damage.kind));
    let zeros = scan.zero_tail.map(|at| (at, CorruptionKind::BadLength(0)));
    if let Some((offset, kind)) = damage.or(zeros) {
        return Err(Error::Corrupt {
            segment: record.id,
            path: file.path().to_path_buf(),
            offset,
            kind,
        });
    }
    if len != record.len || scan.offsets.len() as u64 != record.entries {
        return Err(Error::SegmentChanged {
            segment: record.id,
            path: file.path().to_path_buf(),
            expected_entries: record.entries,
            expected_len: record.len,
            found_entries: scan.offsets.len() as u64,
            found_len: len,
        });
    }
    Ok(scan.offsets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Op;

    fn entries(n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            codec::encode(&mut out, Op::Put, format!("key{i}").as_bytes(), b"value");
        }
        out
    }

    #[test]
    fn clean_segment_has_no_damage() {
        let bytes = entries(5);
        let scan = scan_segment(SegmentId(1), &bytes, Role::Newest);
        assert_eq!(scan.offsets.len(), 5);
        assert!(scan.damage.is_empty());
    }

    #[test]
    fn damage_with_valid_entries_after_resumes_at_the_next_entry() {
        let mut bytes = entries(5);
        let entry_len = 26; // 17 + 4 ("key0") + 5 ("value")
        bytes[entry_len + 15] ^= 1; // inside entry 2's key
        let scan = scan_segment(SegmentId(1), &bytes, Role::Newest);
        assert_eq!(scan.offsets.len(), 4);
        assert_eq!(scan.damage.len(), 1);
        assert_eq!(scan.damage[0].offset, entry_len as u64);
        assert_eq!(scan.damage[0].resume, Resume::At(2 * entry_len as u64));
    }

    /// A damaged entry whose length points past a valid entry at another valid one
    /// must not hide the first: an append landing where it points would otherwise
    /// change what a reopen finds.
    #[test]
    fn regression_resync_resumes_at_the_earliest_valid_entry() {
        let mut a = Vec::new();
        codec::encode(&mut a, Op::Put, b"a", b"first");
        let mut b = Vec::new();
        codec::encode(&mut b, Op::Put, b"b", b"damaged");
        let mut c = Vec::new();
        codec::encode(&mut c, Op::Put, b"c", b"hidden by a jump");
        let mut d = Vec::new();
        codec::encode(&mut d, Op::Put, b"d", b"where the length points");
        // B's TOTAL_LEN now spans B and C: a jump by it lands on D.
        let total = (b.len() + c.len() - 4) as u32;
        b[4..8].copy_from_slice(&total.to_le_bytes());
        let bytes = [a.clone(), b.clone(), c.clone(), d].concat();
        let scan = scan_segment(SegmentId(1), &bytes, Role::Newest);
        let c_at = (a.len() + b.len()) as u32;
        assert_eq!(scan.offsets, vec![0, c_at, c_at + c.len() as u32]);
        assert_eq!(scan.damage[0].resume, Resume::At(u64::from(c_at)));
    }

    #[test]
    fn damaged_length_field_resynchronises_by_scanning() {
        let mut bytes = entries(5);
        bytes[26 + 5] = 0x7f; // entry 2's TOTAL_LEN: far too large
        let scan = scan_segment(SegmentId(1), &bytes, Role::Newest);
        assert_eq!(scan.offsets.len(), 4);
        assert_eq!(scan.damage[0].resume, Resume::At(52));
    }

    #[test]
    fn zeros_to_the_end_are_a_zero_tail_not_damage() {
        let mut bytes = entries(3);
        bytes.extend_from_slice(&[0u8; 100]);
        let scan = scan_segment(SegmentId(1), &bytes, Role::Newest);
        assert_eq!(scan.offsets.len(), 3);
        assert!(scan.damage.is_empty());
        assert_eq!(scan.zero_tail, Some(78));
        // Zeros followed by anything else are damage.
        bytes.push(1);
        let scan = scan_segment(SegmentId(1), &bytes, Role::Newest);
        assert_eq!((scan.zero_tail, scan.damage.len()), (None, 1));
        assert_eq!(scan.damage[0].kind, CorruptionKind::BadLength(0));
    }

    /// An entry whose value holds encoded entries, as a shipped segment would.
    fn entry_holding_entries(key: &[u8]) -> Vec<u8> {
        let mut value = vec![b'x'; 10];
        codec::encode(&mut value, Op::Delete, b"alice", b"");
        codec::encode(&mut value, Op::Put, b"mallory", b"phantom");
        value.extend_from_slice(&[b'y'; 40]);
        let mut out = Vec::new();
        codec::encode(&mut out, Op::Put, key, &value);
        out
    }

    /// Issue 12: a write cut short inside a value that holds entries, the file
    /// ending there or zeros after it, is a torn tail of kind `Incomplete`; in a
    /// sealed segment it is damage to the end. Nothing inside is searched.
    #[test]
    fn regression_an_entry_cut_short_owns_its_declared_bytes() {
        let mut bytes = entries(2);
        let start = bytes.len();
        let whole = entry_holding_entries(b"big");
        // Cut inside TOTAL_LEN, inside the key, inside the value, before the last byte.
        for cut in [start + 6, start + 16, start + 30, start + whole.len() - 1] {
            bytes.truncate(start);
            bytes.extend_from_slice(&whole);
            bytes.truncate(cut);
            for zeros in [0, 1, 4096] {
                let mut image = bytes.clone();
                image.resize(cut + zeros, 0);
                for role in [Role::Newest, Role::Sealed] {
                    let scan = scan_segment(SegmentId(1), &image, role);
                    let context = format!("cut at {cut}, {zeros} zeros, {role:?}");
                    assert_eq!(scan.offsets.len(), 2, "{context}");
                    assert_eq!(scan.damage.len(), 1, "{context}");
                    let damage = scan.damage[0];
                    assert_eq!(damage.offset, start as u64, "{context}");
                    assert_eq!(damage.resume, Resume::Nowhere, "{context}");
                    // (At `start + 6` the written bytes end with TOTAL_LEN's zero
                    // high byte: too few to hold a length.)
                    if cut != start + 6 && (role == Role::Newest || zeros == 0) {
                        assert_eq!(
                            damage.kind,
                            CorruptionKind::Incomplete {
                                needed: whole.len() as u64,
                                available: (cut - start) as u64
                            },
                            "{context}"
                        );
                    }
                }
            }
        }
    }

    /// A damaged entry whose lengths agree (here: a CRC that does not match its
    /// body) is skipped whole, chained over a second one: the entries inside their
    /// values never surface, the next real entry does.
    #[test]
    fn damaged_entries_whose_lengths_agree_are_skipped_whole() {
        let mut bytes = entries(1);
        let first = bytes.len();
        let mut damaged = entry_holding_entries(b"one");
        damaged[0] ^= 1;
        bytes.extend_from_slice(&damaged);
        let mut placeholder = entry_holding_entries(b"two");
        placeholder[..4].copy_from_slice(&codec::PLACEHOLDER_CRC.to_le_bytes());
        bytes.extend_from_slice(&placeholder);
        let after = bytes.len();
        codec::encode(&mut bytes, Op::Put, b"after", b"value");
        let scan = scan_segment(SegmentId(1), &bytes, Role::Newest);
        assert_eq!(scan.offsets, vec![0, after as u32]);
        assert_eq!(scan.damage.len(), 1);
        assert_eq!(scan.damage[0].offset, first as u64);
        assert_eq!(scan.damage[0].resume, Resume::At(after as u64));
        // Without the entry after them, they are the tail: nothing valid follows.
        let scan = scan_segment(SegmentId(1), &bytes[..after], Role::Newest);
        assert_eq!(scan.offsets, vec![0]);
        assert_eq!(scan.damage[0].resume, Resume::Nowhere);
    }
}
