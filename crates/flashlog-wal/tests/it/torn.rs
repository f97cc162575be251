//! A write cut short is the end of the log (FORMAT.md), whatever the cut value
//! holds: issue 12, where values made of encoded entries turned torn tails into
//! "corruption" and `SkipCorrupted` read entries out of them.

use std::fs;

use flashlog_wal::codec;
use flashlog_wal::{CorruptionKind, Error, Op, Options, RecoveryMode, SegmentId, Wal};
use proptest::prelude::*;

use crate::common::{open, read_all, Record};

/// Writes `files` (name, bytes) as the only segments of a fresh directory.
fn write_segments(files: &[(String, Vec<u8>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        fs::write(dir.path().join(name), bytes).unwrap();
    }
    dir
}

/// The value of issue 12: 10,000 bytes that hold an encoded `Delete alice` in
/// their first 4 KiB (a shipped segment, a snapshot, a Raft payload).
fn value_holding_a_delete_of_alice() -> Vec<u8> {
    let mut value = vec![b'x'; 100];
    codec::encode(&mut value, Op::Delete, b"alice", b"");
    value.resize(10_000, b'y');
    value
}

/// `alice = balance=100`, then a put of [`value_holding_a_delete_of_alice`] cut
/// `written` bytes into its entry, then `zeros` zero bytes (preallocated space the
/// cut write did not reach). Returns the segment's bytes, where the cut entry
/// starts and its length.
fn alice_then_a_cut_value(written: usize, zeros: usize) -> (Vec<u8>, u64, u64) {
    let mut bytes = Vec::new();
    codec::encode(&mut bytes, Op::Put, b"alice", b"balance=100");
    let start = bytes.len();
    codec::encode(
        &mut bytes,
        Op::Put,
        b"snapshot",
        &value_holding_a_delete_of_alice(),
    );
    let entry_len = (bytes.len() - start) as u64;
    bytes.truncate(start + written);
    bytes.resize(bytes.len() + zeros, 0);
    (bytes, start as u64, entry_len)
}

const MODES: [RecoveryMode; 4] = [
    RecoveryMode::TolerateCorruptedTail,
    RecoveryMode::AbsoluteConsistency,
    RecoveryMode::PointInTime,
    RecoveryMode::SkipCorrupted,
];

/// Issue 12: a torn write of a value holding an encoded entry was taken for
/// corruption (the default open failed with "incomplete entry (4096 of 10059
/// bytes)") and `SkipCorrupted` yielded the `Delete alice` from inside the cut
/// value. FORMAT.md: a record cut short is the end of the log. Cut at 4 KiB, with
/// the file ending there or preallocated zeros after the cut.
#[test]
fn regression_a_torn_value_holding_entries_is_a_torn_tail_in_every_mode() {
    let alice = vec![(Op::Put, b"alice".to_vec(), b"balance=100".to_vec())];
    for zeros in [0, 1 << 20] {
        let (bytes, start, entry_len) = alice_then_a_cut_value(4096, zeros);
        let files = [(SegmentId(1).file_name(), bytes)];
        for mode in MODES {
            for read_only in [true, false] {
                let dir = write_segments(&files);
                let mut options = Options::default().recovery_mode(mode);
                if read_only {
                    options = options.read_only();
                }
                let context = format!("{zeros} zeros, {mode:?}, read-only {read_only}");
                let wal = match (mode, Wal::open(dir.path(), options)) {
                    (
                        RecoveryMode::AbsoluteConsistency,
                        Err(Error::Corrupt { offset, kind, .. }),
                    ) => {
                        assert_eq!(offset, start, "{context}");
                        assert!(
                            matches!(kind, CorruptionKind::Incomplete { needed, available: 4096 } if needed == entry_len),
                            "{context}: {kind}"
                        );
                        continue;
                    }
                    (RecoveryMode::AbsoluteConsistency, other) => {
                        panic!("{context}: a torn tail is an error here, got {other:?}")
                    }
                    (_, result) => result.unwrap_or_else(|err| panic!("{context}: {err}")),
                };
                assert_eq!(read_all(&wal), alice, "{context}");
                let report = wal.recovery_report();
                let torn = report.torn_tail.expect("a torn tail");
                assert_eq!(torn.position.offset, start, "{context}");
                assert_eq!(torn.len, 4096 + zeros as u64, "{context}");
                assert_eq!((report.skipped, report.damage.len()), (0, 1), "{context}");
            }
        }
        // What `flashlog repair --mode skip-corrupted` runs keeps alice too.
        let dir = write_segments(&files);
        let removed = flashlog_wal::remove_skipped_damage(dir.path(), Options::default()).unwrap();
        assert_eq!(removed.len(), 1);
        let wal = open(dir.path(), Options::default());
        assert_eq!(
            read_all(&wal),
            alice,
            "{zeros} zeros, after remove_skipped_damage"
        );
    }
}

/// A value: random bytes, or whole encoded entries (with random bytes before,
/// between and after them), as a shipped segment or a snapshot holds.
fn value() -> impl Strategy<Value = Vec<u8>> {
    let entry = (
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..12),
        prop::collection::vec(any::<u8>(), 0..40),
    );
    let part = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..24),
        entry.prop_map(|(delete, key, value)| {
            let mut out = Vec::new();
            let op = if delete { Op::Delete } else { Op::Put };
            codec::encode(&mut out, op, &key, &value);
            out
        }),
    ];
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        prop::collection::vec(part, 0..12).prop_map(|parts| parts.concat()),
    ]
}

fn record() -> impl Strategy<Value = Record> {
    (
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..8),
        value(),
    )
        .prop_map(|(delete, key, value)| {
            let op = if delete { Op::Delete } else { Op::Put };
            (op, key, value)
        })
}

fn encoded(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    for (op, key, value) in records {
        codec::encode(&mut out, *op, key, value);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// For any log (its first `sealed` entries in an older segment) and any entry
    /// (a value made of encoded entries, often), that entry cut at any byte, with or
    /// without preallocated zeros after the cut, leaves a log that every mode opens
    /// to exactly the entries before it (`AbsoluteConsistency` refuses a torn tail,
    /// and nothing else), and that the default open never refuses.
    #[test]
    fn a_torn_tail_never_changes_the_entries_before_it(
        prefix in prop::collection::vec(record(), 0..5),
        sealed in 0usize..5,
        torn in record(),
        cut in any::<prop::sample::Index>(),
        zeros in prop_oneof![Just(0usize), 1usize..64, Just(4096usize)],
    ) {
        let sealed = sealed.min(prefix.len());
        let mut entry = Vec::new();
        codec::encode(&mut entry, torn.0, &torn.1, &torn.2);
        let cut = cut.index(entry.len());
        let mut newest = encoded(&prefix[sealed..]);
        let torn_at = newest.len() as u64;
        newest.extend_from_slice(&entry[..cut]);
        newest.resize(newest.len() + zeros, 0);
        // The zeros may complete the entry (a value ending in zeros, cut there).
        let complete = cut + zeros >= entry.len() && entry[cut..].iter().all(|&b| b == 0);
        let mut expected = prefix.clone();
        if complete {
            expected.push(torn.clone());
        }
        let torn_tail = cut > 0 && !complete;
        let mut files = Vec::new();
        if sealed > 0 {
            files.push((SegmentId(1).file_name(), encoded(&prefix[..sealed])));
        }
        files.push((SegmentId(files.len() as u64 + 1).file_name(), newest));
        let dir = write_segments(&files);
        for mode in MODES {
            let options = Options::default().recovery_mode(mode).read_only();
            match Wal::open(dir.path(), options) {
                Ok(wal) => {
                    prop_assert_eq!(&read_all(&wal), &expected, "{:?}", mode);
                    let report = wal.recovery_report();
                    prop_assert_eq!(report.torn_tail.map(|t| t.position.offset), torn_tail.then_some(torn_at), "{:?}", mode);
                    prop_assert_eq!(report.skipped, 0);
                    prop_assert!(mode != RecoveryMode::AbsoluteConsistency || !torn_tail);
                }
                Err(Error::Corrupt { offset, .. }) if mode == RecoveryMode::AbsoluteConsistency => {
                    prop_assert!(torn_tail);
                    prop_assert_eq!(offset, torn_at);
                }
                Err(err) => prop_assert!(false, "{:?}: {}", mode, err),
            }
        }
        let wal = open(dir.path(), Options::default());
        prop_assert_eq!(read_all(&wal), expected);
    }
}

/// What the rule trades away, near the end of the newest segment. A bit flip in
/// the `TOTAL_LEN` of an entry followed by a valid one is still corruption:
/// `VAL_LEN` no longer fills the length, so the extent is not trusted and the
/// search finds the entry after it. Only damage that keeps the lengths agreeing
/// (`TOTAL_LEN` and `VAL_LEN` changed together) moves the declared end: pointing
/// past the end of the segment, that reads as a write cut short, a torn tail of
/// kind `Incomplete`, and the valid entry after it is cut with it.
#[test]
fn a_damaged_total_len_near_the_end_of_the_newest_segment() {
    let records: Vec<Record> = (0..3u8)
        .map(|n| (Op::Put, vec![b'k', n], vec![n; 20]))
        .collect();
    let clean = encoded(&records);
    let second = 17 + 2 + 20; // the first entry's length
    let third = 2 * second;
    let total_len_of_second = u32::from_le_bytes(clean[second + 4..second + 8].try_into().unwrap());
    // One bit flip: TOTAL_LEN now points past the end.
    let mut flipped = clean.clone();
    flipped[second + 4 + 1] ^= 0x10;
    let dir = write_segments(&[(SegmentId(1).file_name(), flipped)]);
    match Wal::open(dir.path(), Options::default().read_only()) {
        Err(Error::Corrupt { offset, kind, .. }) => {
            assert_eq!(offset, second as u64);
            assert_eq!(
                kind,
                CorruptionKind::BadValueLength {
                    value_len: 20,
                    total_len: total_len_of_second + (0x10 << 8),
                }
            );
        }
        other => panic!("a flipped TOTAL_LEN before a valid entry: {other:?}"),
    }
    let wal = open(
        dir.path(),
        Options::default()
            .recovery_mode(RecoveryMode::SkipCorrupted)
            .read_only(),
    );
    assert_eq!(read_all(&wal), vec![records[0].clone(), records[2].clone()]);
    drop(wal);
    // TOTAL_LEN and VAL_LEN raised together by 4096: the lengths agree.
    let mut agreeing = clean.clone();
    let raise = |bytes: &mut [u8], at: usize| {
        let field = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) + 4096;
        bytes[at..at + 4].copy_from_slice(&field.to_le_bytes());
    };
    raise(&mut agreeing, second + 4);
    raise(&mut agreeing, second + 13 + 2);
    let dir = write_segments(&[(SegmentId(1).file_name(), agreeing.clone())]);
    let wal = open(dir.path(), Options::default());
    assert_eq!(read_all(&wal), records[..1].to_vec());
    let report = wal.recovery_report();
    let torn = report.torn_tail.unwrap();
    assert_eq!(torn.position.offset, second as u64);
    assert_eq!(
        torn.kind,
        CorruptionKind::Incomplete {
            needed: u64::from(total_len_of_second) + 4096 + 4,
            available: (agreeing.len() - second) as u64,
        }
    );
    assert_eq!(torn.len, (agreeing.len() - second) as u64);
    assert_eq!(report.truncated_bytes, (clean.len() - second) as u64);
    assert!(third < clean.len(), "a valid entry was cut with it");
}
