//! A torn write of a value that holds bytes in the log's own entry format.

use flashlog_kv::{Db, DbOptions};
use flashlog_wal::{codec, Op, Options, RecoveryMode, SegmentId};

/// Issue 12: `alice = balance=100`, then a 10 KB value holding an encoded
/// `Delete alice`, cut by a crash 4 KiB into its entry. The default open failed
/// (`incomplete entry (4096 of 10059 bytes)`) and `SkipCorrupted` read the
/// `Delete` from inside the cut value, deleting an acknowledged key. A record cut
/// short is the end of the log (FORMAT.md): every mode that opens keeps alice.
#[test]
fn regression_a_torn_value_holding_a_delete_does_not_delete_alice() {
    let mut value = vec![b'x'; 100];
    codec::encode(&mut value, Op::Delete, b"alice", b"");
    value.resize(10_000, b'y');
    for zeros in [0, 1 << 20] {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        db.put(b"alice", b"balance=100").unwrap();
        let alice_end = db.stats().log_bytes;
        db.put(b"snapshot", &value).unwrap();
        db.close().unwrap();
        drop(db);
        let segment = dir.path().join(SegmentId(1).file_name());
        let mut bytes = std::fs::read(&segment).unwrap();
        bytes.truncate(alice_end as usize + 4096);
        bytes.resize(bytes.len() + zeros, 0);
        for mode in [
            RecoveryMode::TolerateCorruptedTail,
            RecoveryMode::AbsoluteConsistency,
            RecoveryMode::PointInTime,
            RecoveryMode::SkipCorrupted,
        ] {
            std::fs::write(&segment, &bytes).unwrap();
            let context = format!("{zeros} zeros, {mode:?}");
            let options = DbOptions::default().wal(Options::default().recovery_mode(mode));
            let db = match Db::open(dir.path(), options) {
                Err(err) if mode == RecoveryMode::AbsoluteConsistency => {
                    assert!(
                        err.to_string().contains("incomplete entry"),
                        "{context}: {err}"
                    );
                    continue;
                }
                result => result.unwrap_or_else(|err| panic!("{context}: {err}")),
            };
            assert_eq!(
                db.get(b"alice").unwrap(),
                Some(b"balance=100".to_vec()),
                "{context}"
            );
            assert_eq!(db.get(b"snapshot").unwrap(), None, "{context}");
            let report = db.recovery_report();
            assert_eq!(
                report.torn_tail.map(|torn| torn.position.offset),
                Some(alice_end),
                "{context}"
            );
            db.close().unwrap();
        }
    }
}
