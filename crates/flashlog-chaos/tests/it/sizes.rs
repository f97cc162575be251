//! Entry sizes at the edges of the format: 0, 1, the largest (`TOTAL_LEN` = 16 MiB,
//! key + value = 16 MiB − 13 bytes) and one byte more (`EntryTooLarge`, nothing
//! appended, alone or in a batch).

use flashlog_wal::codec::{MAX_ENTRY_LEN, MAX_TOTAL_LEN, MIN_TOTAL_LEN};
use flashlog_wal::{Batch, Error, Op, Options, SegmentId, SyncPolicy, Visibility, Wal};

/// key + value of the largest entry.
const MAX_PAYLOAD: usize = (MAX_TOTAL_LEN - MIN_TOTAL_LEN) as usize;

fn options() -> Options {
    Options::default()
        .max_segment_size(MAX_ENTRY_LEN)
        .sync_policy(SyncPolicy::Manual)
}

/// An entry read back, with the segment holding it.
type Record = (u64, Op, Vec<u8>, Vec<u8>, SegmentId);

fn records(wal: &Wal) -> Vec<Record> {
    wal.iter_from(wal.first_seq())
        .unwrap()
        .visibility(Visibility::Written)
        .map(|e| {
            let e = e.unwrap();
            (
                e.seq(),
                e.op(),
                e.key().to_vec(),
                e.value().to_vec(),
                e.position().segment,
            )
        })
        .collect()
}

#[test]
fn sizes_zero_one_max_and_max_plus_one() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), options()).unwrap();
    assert_eq!(wal.append(Op::Put, b"", b"").unwrap(), 1);
    assert_eq!(wal.append(Op::Delete, b"k", b"").unwrap(), 2);
    assert_eq!(wal.append(Op::Put, b"", b"v").unwrap(), 3);
    let value = vec![0xA5u8; MAX_PAYLOAD - 1];
    assert_eq!(wal.append(Op::Put, b"K", &value).unwrap(), 4);
    let segments = wal.segments();
    assert_eq!(
        segments.len(),
        2,
        "the largest entry cannot share a segment: {segments:?}"
    );
    assert_eq!(
        segments[1].bytes, MAX_ENTRY_LEN,
        "it fills a segment exactly"
    );

    let too_large = vec![0u8; MAX_PAYLOAD];
    match wal.append(Op::Put, b"K", &too_large) {
        Err(Error::EntryTooLarge { len, .. }) => assert_eq!(len, MAX_ENTRY_LEN + 1),
        other => panic!("max + 1 must be EntryTooLarge, got {other:?}"),
    }
    let mut batch = Batch::new();
    batch.put(b"a", b"b").put(b"K", &too_large);
    assert!(matches!(
        wal.append_batch(&batch),
        Err(Error::EntryTooLarge { .. })
    ));
    assert_eq!(
        wal.last_seq(),
        4,
        "a rejected entry must leave the log as it was"
    );
    assert_eq!(wal.segments(), segments);
    let before = records(&wal);
    wal.close().unwrap();
    drop(wal);

    let wal = Wal::open(dir.path(), options()).unwrap();
    assert_eq!(records(&wal), before);
    assert_eq!(before[3].3, value);
    assert_eq!(wal.append(Op::Put, b"after", b"").unwrap(), 5);
    wal.close().unwrap();
}

#[test]
fn entry_larger_than_the_segment_size_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), Options::default().max_segment_size(64)).unwrap();
    // 17 + 47 = 64 bytes fits exactly; 65 does not.
    assert_eq!(wal.append(Op::Put, b"", &[1; 47]).unwrap(), 1);
    match wal.append(Op::Put, b"", &[1; 48]) {
        Err(Error::EntryTooLarge { len: 65, max: 64 }) => {}
        other => panic!("expected EntryTooLarge {{ len: 65, max: 64 }}, got {other:?}"),
    }
    assert_eq!(wal.last_seq(), 1);
    assert_eq!(wal.append(Op::Put, b"", &[2; 47]).unwrap(), 2);
    assert_eq!(wal.segments().len(), 2);
}
