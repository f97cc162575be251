//! What goes in comes out: sizes from empty to the largest entry the format allows.

use flashlog_wal::{Error, Op, Options, Wal};

use crate::common::{open, read_all};

#[test]
fn empty_binary_and_large_entries_round_trip_through_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let binary: Vec<u8> = (0..=255).collect();
    let mib = vec![0xa5u8; 1 << 20];
    let records = vec![
        (Op::Put, Vec::new(), Vec::new()),
        (Op::Delete, b"gone".to_vec(), Vec::new()),
        (
            Op::Put,
            binary.clone(),
            binary.iter().rev().copied().collect(),
        ),
        (Op::Put, b"big".to_vec(), mib),
    ];
    {
        let wal = open(dir.path(), Options::default());
        for (i, (op, key, value)) in records.iter().enumerate() {
            assert_eq!(wal.append(*op, key, value).unwrap(), i as u64 + 1);
        }
        assert_eq!(read_all(&wal), records);
        assert_eq!(wal.read(3).unwrap().key(), &binary[..]);
        assert_eq!(wal.read(4).unwrap().into_value(), records[3].2);
    }
    let wal = open(dir.path(), Options::default());
    assert_eq!(read_all(&wal), records);
    assert_eq!(wal.recovery_report().entries, 4);
}

#[test]
fn largest_allowed_entry_round_trips_and_one_byte_more_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    // The largest entry is 16 MiB + 4 bytes on disk: more than the default segment.
    let options = Options::default().max_segment_size((16 << 20) + 4);
    let value = vec![7u8; (16 << 20) - 13 - 3];
    {
        let wal = open(dir.path(), options.clone());
        assert_eq!(wal.append(Op::Put, b"key", &value).unwrap(), 1);
        let too_big = vec![7u8; value.len() + 1];
        assert!(matches!(
            wal.append(Op::Put, b"key", &too_big),
            Err(Error::EntryTooLarge { len, max }) if len == (16 << 20) + 5 && max == (16 << 20) + 4
        ));
    }
    let wal = open(dir.path(), options);
    let entry = wal.read(1).unwrap();
    assert_eq!(entry.value().len(), value.len());
    assert!(entry.value() == &value[..]);
    assert_eq!(wal.last_seq(), 1);
}

#[test]
fn entry_larger_than_the_segment_limit_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), Options::default().max_segment_size(64)).unwrap();
    let err = wal.append(Op::Put, b"k", &[0u8; 60]).unwrap_err();
    assert!(
        matches!(err, Error::EntryTooLarge { len: 78, max: 64 }),
        "{err}"
    );
    assert_eq!(wal.append(Op::Put, b"k", b"v").unwrap(), 1);
}

#[test]
fn worked_example_of_format_md_is_written_to_the_byte() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), Options::default());
    wal.append(Op::Put, b"a", b"b").unwrap();
    wal.close().unwrap();
    let bytes = std::fs::read(dir.path().join("segment-0001.log")).unwrap();
    let body = [0x0f, 0, 0, 0, 0, 1, 0, 0, 0, 0x61, 1, 0, 0, 0, 0x62];
    let mut expected = crc32fast::hash(&body).to_le_bytes().to_vec();
    expected.extend_from_slice(&body);
    assert_eq!(bytes, expected);
    // The CRC as Python's `zlib.crc32` computes it for these bytes, stored little-endian.
    assert_eq!(&bytes[..4], &0x31ed_5e7f_u32.to_le_bytes());
}

#[test]
fn invalid_options_are_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    for options in [
        Options::default().max_segment_size(16),
        Options::default().max_segment_size(1 << 33),
        Options::default().sync_policy(flashlog_wal::SyncPolicy::Interval(
            std::time::Duration::ZERO,
        )),
    ] {
        assert!(matches!(
            Wal::open(dir.path(), options),
            Err(Error::InvalidOptions(_))
        ));
    }
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), Options::default());
    assert!(matches!(
        Wal::open(dir.path(), Options::default()),
        Err(Error::Locked { .. })
    ));
    wal.close().unwrap();
    // Closing releases the directory, even while the handle still exists.
    let again = open(dir.path(), Options::default());
    drop(wal);
    drop(again);
    open(dir.path(), Options::default());
}

#[test]
fn a_file_where_the_directory_should_be_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = Wal::open(&file, Options::default()).unwrap_err();
    assert!(
        matches!(err, Error::Io { ref path, .. } if path == &file),
        "{err}"
    );
}

#[test]
fn creating_the_log_directory_fsyncs_every_parent_it_created() {
    let root = tempfile::tempdir().unwrap();
    let fs = std::sync::Arc::new(crate::common::FaultyDisk::default());
    let wal = Wal::open(
        root.path().join("a/b"),
        crate::common::faulty_disk_options(&fs),
    )
    .unwrap();
    // The parents of `a` and of `b`, the log directory once segment 1 exists, the
    // side file naming segment 1 as the newest (its fsync and its rename's) and the
    // same for its second copy, and the active segment before its entries become
    // visible.
    assert_eq!(fs.syncs.load(std::sync::atomic::Ordering::SeqCst), 8);
    drop(wal);
    let fs = std::sync::Arc::new(crate::common::FaultyDisk::default());
    let _wal = Wal::open(
        root.path().join("a/b"),
        crate::common::faulty_disk_options(&fs),
    )
    .unwrap();
    assert_eq!(
        fs.syncs.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "reopening syncs only the active segment"
    );
}
