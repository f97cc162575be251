//! Entries to bytes and back, exactly as `FORMAT.md` specifies. Pure: no I/O.
//!
//! ```text
//! | CRC (4) | TOTAL_LEN (4) | TYPE (1) | KEY_LEN (4) | KEY | VAL_LEN (4) | VALUE |
//! ```
//! Integers are little-endian `u32`. `TOTAL_LEN` counts itself and everything after
//! it; the CRC (CRC-32/IEEE) covers the same bytes.

use crate::error::CorruptionKind;
use crate::op::Op;

/// Bytes of the CRC field.
pub const CRC_LEN: usize = 4;
/// Bytes before the key: CRC, TOTAL_LEN, TYPE and KEY_LEN.
const PREFIX_LEN: usize = 4 + 4 + 1 + 4;
/// The smallest `TOTAL_LEN`: an entry with an empty key and an empty value.
pub const MIN_TOTAL_LEN: u32 = 4 + 1 + 4 + 4;
/// The largest `TOTAL_LEN` the Go writer accepts (16 MiB).
pub const MAX_TOTAL_LEN: u32 = 16 << 20;
/// The smallest entry on disk, in bytes (17).
pub const MIN_ENTRY_LEN: u64 = CRC_LEN as u64 + MIN_TOTAL_LEN as u64;
/// The largest entry on disk, in bytes (16 MiB + 4).
pub const MAX_ENTRY_LEN: u64 = CRC_LEN as u64 + MAX_TOTAL_LEN as u64;
/// The CRC the Go writer stores before it patches in the real one.
pub const PLACEHOLDER_CRC: u32 = 0xFFFF_FFFF;

/// The number of bytes an entry with these key and value lengths takes on disk.
pub const fn encoded_len(key_len: usize, value_len: usize) -> u64 {
    MIN_ENTRY_LEN + key_len as u64 + value_len as u64
}

/// The CRC-32/IEEE of an entry's body, computed from its parts without copying them.
pub fn checksum(op: Op, key: &[u8], value: &[u8]) -> u32 {
    let total_len = total_len(key.len(), value.len());
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&total_len.to_le_bytes());
    hasher.update(&[op.as_byte()]);
    hasher.update(&(key.len() as u32).to_le_bytes());
    hasher.update(key);
    hasher.update(&(value.len() as u32).to_le_bytes());
    hasher.update(value);
    hasher.finalize()
}

/// `TOTAL_LEN` for the given lengths. Callers have checked the limits first.
fn total_len(key_len: usize, value_len: usize) -> u32 {
    (encoded_len(key_len, value_len) - CRC_LEN as u64) as u32
}

/// Appends one encoded entry, with its checksum already computed, to `out`.
pub fn encode_with_checksum(out: &mut Vec<u8>, crc: u32, op: Op, key: &[u8], value: &[u8]) {
    out.reserve(encoded_len(key.len(), value.len()) as usize);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&total_len(key.len(), value.len()).to_le_bytes());
    out.push(op.as_byte());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
}

/// Appends one encoded entry to `out`.
///
/// The caller must have checked the size with [`check_len`].
pub fn encode(out: &mut Vec<u8>, op: Op, key: &[u8], value: &[u8]) {
    encode_with_checksum(out, checksum(op, key, value), op, key, value);
}

/// Checks that an entry fits the format's 16 MiB limit; returns its encoded length.
pub fn check_len(key_len: usize, value_len: usize) -> Result<u64, crate::Error> {
    let len = encoded_len(key_len, value_len);
    if len > MAX_ENTRY_LEN {
        return Err(crate::Error::EntryTooLarge {
            len,
            max: MAX_ENTRY_LEN,
        });
    }
    Ok(len)
}

/// An entry decoded in place from a byte buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// The entry's operation.
    pub op: Op,
    /// The entry's key, borrowed from the buffer.
    pub key: &'a [u8],
    /// The entry's value, borrowed from the buffer.
    pub value: &'a [u8],
    /// Bytes the entry takes, CRC included: the next entry starts this far on.
    pub len: usize,
}

fn read_u32(buf: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(word)
}

/// Decodes the entry at the start of `buf`, checking every field and the CRC.
///
/// `buf` may hold more bytes after the entry. Any input gives `Ok` or a
/// [`CorruptionKind`]; nothing panics and nothing is allocated.
///
/// A stored CRC of [`PLACEHOLDER_CRC`] is accepted when the body really has that
/// checksum; otherwise it is reported as [`CorruptionKind::Placeholder`], the mark
/// of a write the Go writer never finished.
pub fn decode(buf: &[u8]) -> Result<Decoded<'_>, CorruptionKind> {
    decode_inner(buf, true)
}

/// [`decode`] without the CRC check, for bytes whose every entry was just checked
/// (a segment read whole and scanned).
pub(crate) fn decode_checked_before(buf: &[u8]) -> Result<Decoded<'_>, CorruptionKind> {
    decode_inner(buf, false)
}

fn decode_inner(buf: &[u8], check_crc: bool) -> Result<Decoded<'_>, CorruptionKind> {
    let available = buf.len() as u64;
    if buf.len() < CRC_LEN + 4 {
        return Err(CorruptionKind::Incomplete {
            needed: (CRC_LEN + 4) as u64,
            available,
        });
    }
    let stored = read_u32(buf, 0);
    let total = read_u32(buf, CRC_LEN);
    if !(MIN_TOTAL_LEN..=MAX_TOTAL_LEN).contains(&total) {
        return Err(CorruptionKind::BadLength(total));
    }
    let len = CRC_LEN + total as usize;
    if buf.len() < len {
        return Err(CorruptionKind::Incomplete {
            needed: len as u64,
            available,
        });
    }
    let entry = &buf[..len];
    let key_len = read_u32(entry, 9) as usize;
    // TOTAL_LEN = 13 + KEY_LEN + VAL_LEN, so KEY_LEN can be at most TOTAL_LEN - 13.
    let max_key_len = total as usize - MIN_TOTAL_LEN as usize;
    if key_len > max_key_len {
        return Err(CorruptionKind::BadKeyLength {
            key_len: key_len as u32,
            total_len: total,
        });
    }
    let value_len_at = PREFIX_LEN + key_len;
    let value_len = read_u32(entry, value_len_at) as usize;
    if value_len != max_key_len - key_len {
        return Err(CorruptionKind::BadValueLength {
            value_len: value_len as u32,
            total_len: total,
        });
    }
    if check_crc {
        let computed = crc32fast::hash(&entry[CRC_LEN..]);
        if stored != computed {
            return Err(if stored == PLACEHOLDER_CRC {
                CorruptionKind::Placeholder
            } else {
                CorruptionKind::ChecksumMismatch { stored, computed }
            });
        }
    }
    let op = Op::from_byte(entry[8]).ok_or(CorruptionKind::UnknownOp(entry[8]))?;
    Ok(Decoded {
        op,
        key: &entry[PREFIX_LEN..value_len_at],
        value: &entry[value_len_at + 4..],
        len,
    })
}

/// What [`valid_entry_after`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Search {
    /// The earliest valid entry after the first byte starts at this offset.
    Found(usize),
    /// No valid entry starts after the first byte.
    NotFound,
    /// The CRC budget ran out with no valid entry before this offset.
    Exhausted(usize),
}

/// The CRC budget of a search through `len` bytes: any damage a crash or a failing
/// disk leaves is searched in a small part of it. Only bytes made to look like the
/// starts of large entries at every few offsets exhaust it, and without a budget
/// those would take hours (every would-be entry's CRC covers up to 16 MiB).
pub fn search_budget(len: usize) -> u64 {
    (64 << 20) + 16 * len as u64
}

/// Where the earliest valid entry after the first byte of `buf` starts, if one
/// does, CRC-checking at most `budget` bytes (what is spent is taken off it).
///
/// Recovery uses this to tell a torn tail (nothing valid follows the damage) from
/// corruption in the middle (acknowledged entries follow it). The cheap length
/// checks of [`decode`] reject almost every offset before any CRC is computed.
pub fn valid_entry_after(buf: &[u8], budget: &mut u64) -> Search {
    for at in 1..buf.len() {
        match check_entry(&buf[at..], budget) {
            Check::Valid => return Search::Found(at),
            Check::Invalid => {}
            Check::OverBudget => return Search::Exhausted(at),
        }
    }
    Search::NotFound
}

/// What [`check_entry`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// A valid entry starts there.
    Valid,
    /// No valid entry starts there.
    Invalid,
    /// Its lengths check out, but its CRC would cost more than the budget left.
    OverBudget,
}

/// Whether a valid entry starts at the start of `buf`, CRC-checking it only if
/// its lengths check out and its length fits in `budget` (and taking it off).
pub(crate) fn check_entry(buf: &[u8], budget: &mut u64) -> Check {
    let Ok(entry) = decode_checked_before(buf) else {
        return Check::Invalid;
    };
    let cost = entry.len as u64;
    if cost > *budget {
        return Check::OverBudget;
    }
    *budget -= cost;
    if decode(buf).is_ok() {
        Check::Valid
    } else {
        Check::Invalid
    }
}

/// The bytes (CRC included) that the entry at the start of `buf` declares it
/// takes, if its header agrees with itself as far as `buf` holds it: `TOTAL_LEN`
/// within the limits, `KEY_LEN` inside it, and `VAL_LEN`, if `buf` reaches it,
/// filling it exactly. Otherwise what is wrong: `buf` ends before `TOTAL_LEN`
/// ([`CorruptionKind::Incomplete`]), or which length does not fit. The CRC is not
/// looked at, and `buf` may end before the entry does.
///
/// The three lengths are redundant (`TOTAL_LEN` = 13 + `KEY_LEN` + `VAL_LEN`), so
/// damage to `TOTAL_LEN` alone makes them disagree. A header that agrees declares
/// where its entry ends; recovery never looks for a later entry inside those
/// bytes, since a value may hold bytes in this very format.
///
/// ```
/// use flashlog_wal::{codec, CorruptionKind, Op};
///
/// let mut entry = Vec::new();
/// codec::encode(&mut entry, Op::Put, b"key", b"value");
/// entry[24] ^= 1; // the value's last byte: the CRC no longer matches
/// assert_eq!(codec::declared_len(&entry), Ok(25));
/// assert_eq!(codec::declared_len(&entry[..10]), Ok(25), "a write cut short");
/// entry[4] ^= 1; // TOTAL_LEN: VAL_LEN no longer fills it
/// assert!(matches!(
///     codec::declared_len(&entry),
///     Err(CorruptionKind::BadValueLength { .. })
/// ));
/// ```
pub fn declared_len(buf: &[u8]) -> Result<u64, CorruptionKind> {
    if buf.len() < CRC_LEN + 4 {
        return Err(CorruptionKind::Incomplete {
            needed: (CRC_LEN + 4) as u64,
            available: buf.len() as u64,
        });
    }
    let total = read_u32(buf, CRC_LEN);
    if !(MIN_TOTAL_LEN..=MAX_TOTAL_LEN).contains(&total) {
        return Err(CorruptionKind::BadLength(total));
    }
    let max_key_len = total - MIN_TOTAL_LEN;
    if buf.len() >= PREFIX_LEN {
        let key_len = read_u32(buf, 9);
        if key_len > max_key_len {
            return Err(CorruptionKind::BadKeyLength {
                key_len,
                total_len: total,
            });
        }
        let value_len_at = PREFIX_LEN + key_len as usize;
        if buf.len() >= value_len_at + 4 {
            let value_len = read_u32(buf, value_len_at);
            if value_len != max_key_len - key_len {
                return Err(CorruptionKind::BadValueLength {
                    value_len,
                    total_len: total,
                });
            }
        }
    }
    Ok(CRC_LEN as u64 + u64::from(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_finds_the_earliest_entry_within_its_budget() {
        let mut bytes = vec![0xab; 5];
        encode(&mut bytes, Op::Put, b"key", b"value");
        encode(&mut bytes, Op::Delete, b"key", b"");
        let first_len = 4 + 13 + 3 + 5;
        let mut budget = search_budget(bytes.len());
        assert_eq!(valid_entry_after(&bytes, &mut budget), Search::Found(5));
        assert_eq!(budget, search_budget(bytes.len()) - first_len);
        let mut budget = 10;
        assert_eq!(valid_entry_after(&bytes, &mut budget), Search::Exhausted(5));
        assert_eq!(budget, 10, "nothing is spent on what is not checked");
        let mut budget = search_budget(4);
        assert_eq!(
            valid_entry_after(&bytes[..4], &mut budget),
            Search::NotFound
        );
    }

    #[test]
    fn worked_example_of_format_md() {
        let mut out = Vec::new();
        encode(&mut out, Op::Put, b"a", b"b");
        assert_eq!(out.len(), 19);
        assert_eq!(
            &out[4..],
            &[0x0f, 0, 0, 0, 0, 1, 0, 0, 0, 0x61, 1, 0, 0, 0, 0x62]
        );
        // zlib.crc32(bytes.fromhex("0f00000000010000006101000000 62".replace(" ", "")))
        let crc = crc32fast::hash(&out[4..]);
        assert_eq!(&out[..4], &crc.to_le_bytes());
        let decoded = decode(&out).unwrap();
        assert_eq!(
            (decoded.op, decoded.key, decoded.value),
            (Op::Put, &b"a"[..], &b"b"[..])
        );
    }

    #[test]
    fn smallest_entry_is_17_bytes() {
        let mut out = Vec::new();
        encode(&mut out, Op::Delete, b"", b"");
        assert_eq!(out.len() as u64, MIN_ENTRY_LEN);
        let decoded = decode(&out).unwrap();
        assert_eq!(decoded.op, Op::Delete);
        assert!(decoded.key.is_empty() && decoded.value.is_empty());
    }

    #[test]
    fn placeholder_crc_over_a_complete_body_is_torn() {
        let mut out = Vec::new();
        encode(&mut out, Op::Put, b"key", b"value");
        out[..4].copy_from_slice(&PLACEHOLDER_CRC.to_le_bytes());
        assert_eq!(decode(&out), Err(CorruptionKind::Placeholder));
    }

    #[test]
    fn genuine_entry_whose_crc_is_all_ones_is_read() {
        // Search for a value whose body happens to hash to 0xFFFFFFFF. CRC-32 is
        // linear, so patching the last four value bytes can force any checksum;
        // a brute-force search over a 4-byte suffix with a fixed prefix is simpler.
        let value = forge_value_with_crc(PLACEHOLDER_CRC);
        let mut out = Vec::new();
        encode(&mut out, Op::Put, b"k", &value);
        assert_eq!(&out[..4], &PLACEHOLDER_CRC.to_le_bytes());
        let decoded = decode(&out).unwrap();
        assert_eq!(decoded.value, &value[..]);
    }

    /// Finds a 4-byte value such that the entry `Put "k" value` has checksum `target`,
    /// by solving the linear CRC equations bit by bit.
    pub(crate) fn forge_value_with_crc(target: u32) -> Vec<u8> {
        // crc(v) = crc(0) ^ L(v) for a linear map L over GF(2); find v with
        // L(v) = target ^ crc(0) by Gaussian elimination on the 32 basis vectors.
        let crc_of = |v: u32| checksum(Op::Put, b"k", &v.to_le_bytes());
        let base = crc_of(0);
        let mut rows: Vec<(u32, u32)> = (0..32)
            .map(|bit| (crc_of(1 << bit) ^ base, 1u32 << bit))
            .collect();
        let mut want = target ^ base;
        let mut solution = 0u32;
        for bit in (0..32).rev() {
            let Some(pivot) = rows.iter().position(|&(image, _)| image >> bit & 1 == 1) else {
                continue;
            };
            let (image, input) = rows.swap_remove(pivot);
            for row in rows.iter_mut() {
                if row.0 >> bit & 1 == 1 {
                    row.0 ^= image;
                    row.1 ^= input;
                }
            }
            if want >> bit & 1 == 1 {
                want ^= image;
                solution ^= input;
            }
        }
        assert_eq!(want, 0, "CRC-32 is surjective on 32-bit inputs");
        solution.to_le_bytes().to_vec()
    }

    #[test]
    fn lengths_that_do_not_add_up_are_corruption() {
        let mut out = Vec::new();
        encode(&mut out, Op::Put, b"key", b"value");
        let mut bad_key = out.clone();
        bad_key[9] = 200;
        assert!(matches!(
            decode(&bad_key),
            Err(CorruptionKind::BadKeyLength { .. })
        ));
        let mut bad_value = out.clone();
        bad_value[16] = 9;
        assert!(matches!(
            decode(&bad_value),
            Err(CorruptionKind::BadValueLength { .. })
        ));
        let mut bad_total = out.clone();
        bad_total[4] = 3;
        assert_eq!(decode(&bad_total), Err(CorruptionKind::BadLength(3)));
        let mut cut = out.clone();
        cut.pop();
        assert!(matches!(
            decode(&cut),
            Err(CorruptionKind::Incomplete { .. })
        ));
    }

    #[test]
    fn unknown_op_byte_with_a_matching_crc_is_corruption() {
        let mut out = Vec::new();
        encode(&mut out, Op::Put, b"k", b"v");
        out[8] = 7;
        let crc = crc32fast::hash(&out[4..]);
        out[..4].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode(&out), Err(CorruptionKind::UnknownOp(7)));
    }

    #[test]
    fn oversized_entries_are_rejected() {
        let max_payload = (MAX_TOTAL_LEN - MIN_TOTAL_LEN) as usize;
        assert_eq!(check_len(0, max_payload).unwrap(), MAX_ENTRY_LEN);
        assert!(matches!(
            check_len(1, max_payload),
            Err(crate::Error::EntryTooLarge { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn round_trip(op in proptest::bool::ANY, key in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
                      value in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let op = if op { Op::Put } else { Op::Delete };
            let mut out = Vec::new();
            encode(&mut out, op, &key, &value);
            let decoded = decode(&out).unwrap();
            proptest::prop_assert_eq!(decoded.op, op);
            proptest::prop_assert_eq!(decoded.key, &key[..]);
            proptest::prop_assert_eq!(decoded.value, &value[..]);
            proptest::prop_assert_eq!(decoded.len, out.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = decode(&bytes);
            let _ = valid_entry_after(&bytes, &mut search_budget(bytes.len()));
        }
    }
}
