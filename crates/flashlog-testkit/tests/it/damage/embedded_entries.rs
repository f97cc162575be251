//! A value made of encoded entries, torn by a crash: never read as entries.

use flashlog_testkit::{CrashModel, Recovered, SimFs};
use flashlog_wal::{codec, Error, Op, RecoveryMode, SegmentId, SyncPolicy, Wal};

use super::{path, MODES};
use crate::common::{options, value, DIR};

/// A value made of encoded entries (a shipped segment, a snapshot): deletes of
/// the log's own keys and puts of keys it never had.
fn value_of_entries(len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut n = 0u64;
    while out.len() < len {
        if n.is_multiple_of(2) {
            codec::encode(
                &mut out,
                Op::Delete,
                format!("key{}", n % 4).as_bytes(),
                b"",
            );
        } else {
            codec::encode(
                &mut out,
                Op::Put,
                format!("phantom{n}").as_bytes(),
                &value(n, 30),
            );
        }
        n += 1;
    }
    out
}

/// Opens with the 64 KiB segments the value-with-entries log was written with.
fn open_large(sim: &SimFs, mode: RecoveryMode) -> flashlog_wal::Result<Wal> {
    Wal::open(
        DIR,
        options(sim, 64 << 10, SyncPolicy::Always).recovery_mode(mode),
    )
}

/// Issue 12 in the catalogue: the write of a value made of encoded entries, cut
/// by a crash at several points (inside the header, the key, the first embedded
/// entry, the middle, one byte short), with the file ending there or preallocated
/// zeros after it. In the newest segment it is a torn tail in every mode: the
/// entries before it, nothing from inside it, and `AbsoluteConsistency` refuses
/// it at its offset. In an older segment it is damage to that segment's end:
/// the default mode refuses it, `SkipCorrupted` skips it and keeps the next
/// segment's entries, `PointInTime` stops there; none yields an embedded entry.
#[test]
fn a_torn_value_made_of_entries_is_a_torn_tail_in_every_mode_at_every_cut() {
    let sim = SimFs::new();
    let wal = Wal::open(DIR, options(&sim, 64 << 10, SyncPolicy::Always)).unwrap();
    let before: Vec<(Op, Vec<u8>, Vec<u8>)> = (0..4u64)
        .map(|n| (Op::Put, format!("key{n}").into_bytes(), value(n, 20)))
        .collect();
    for (op, key, value) in &before {
        wal.append(*op, key, value).unwrap();
    }
    wal.append(Op::Put, b"snapshot", &value_of_entries(8 << 10))
        .unwrap();
    wal.close().unwrap();
    drop(wal);
    let sim = sim.crash(CrashModel::DropUnsynced);
    let name = SegmentId(1).file_name();
    let bytes = sim.read(path(&name)).unwrap();
    let start = before
        .iter()
        .map(|(_, k, v)| 17 + k.len() + v.len())
        .sum::<usize>();
    let len = bytes.len() - start;
    let mut later = Vec::new();
    codec::encode(&mut later, Op::Put, b"later", b"segment 2");
    let mut images = 0;
    for cut in [3, 8, 12, 20, 40, 100, len / 2, len - 1] {
        for zeros in [0, 4096] {
            let mut torn = bytes[..start + cut].to_vec();
            torn.resize(torn.len() + zeros, 0);
            let context = format!("cut at {cut} of {len}, {zeros} zeros");
            // The newest segment: a torn tail.
            let image = sim.snapshot();
            image.put_durable(path(&name), &torn);
            for mode in MODES {
                match open_large(&image.snapshot(), mode) {
                    Ok(wal) => {
                        assert_ne!(mode, RecoveryMode::AbsoluteConsistency, "{context}");
                        let recovered = Recovered::read(&wal).unwrap();
                        let records: Vec<_> = recovered
                            .entries
                            .iter()
                            .map(|r| (r.op, r.key.clone(), r.value.clone()))
                            .collect();
                        assert_eq!(records, before, "{context}, {mode:?}");
                        let tail = wal.recovery_report().torn_tail.expect("a torn tail");
                        assert_eq!(tail.position.offset, start as u64, "{context}, {mode:?}");
                    }
                    Err(Error::Corrupt { offset, .. })
                        if mode == RecoveryMode::AbsoluteConsistency =>
                    {
                        assert_eq!(offset, start as u64, "{context}");
                    }
                    Err(err) => panic!("{context}, {mode:?}: {err}"),
                }
                images += 1;
            }
            // An older segment: damage to its end, never a source of entries.
            let image = sim.snapshot();
            image.put_durable(path(&name), &torn);
            image.put_durable(path(&SegmentId(2).file_name()), &later);
            for mode in MODES {
                let expected: Vec<&[u8]> = match mode {
                    RecoveryMode::SkipCorrupted => {
                        vec![b"key0", b"key1", b"key2", b"key3", b"later"]
                    }
                    RecoveryMode::PointInTime => vec![b"key0", b"key1", b"key2", b"key3"],
                    _ => {
                        let err = open_large(&image.snapshot(), mode).unwrap_err();
                        assert!(
                            matches!(err, Error::Corrupt { segment: SegmentId(1), offset, .. } if offset == start as u64),
                            "{context}, {mode:?}, sealed: {err}"
                        );
                        images += 1;
                        continue;
                    }
                };
                let wal = open_large(&image.snapshot(), mode)
                    .unwrap_or_else(|err| panic!("{context}, {mode:?}, sealed: {err}"));
                let keys: Vec<Vec<u8>> = Recovered::read(&wal)
                    .unwrap()
                    .entries
                    .into_iter()
                    .map(|r| r.key)
                    .collect();
                assert_eq!(keys, expected, "{context}, {mode:?}, sealed");
                images += 1;
            }
        }
    }
    println!("torn values made of entries: {images} images, every mode, no phantom");
}
