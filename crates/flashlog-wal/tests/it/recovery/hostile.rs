//! Recovery of segments built to make it search: would-be entries after damage
//! are searched within a budget, headers that agree are followed.

use flashlog_wal::{Error, Op, Options, RecoveryMode, SegmentId, Wal};

use super::write_segments;
use crate::common::{open, read_all};

/// One valid entry, then a header every 17 bytes that claims an entry of
/// `claimed` bytes: at each of those offsets the lengths check out and only the
/// CRC over `claimed` bytes can tell the entry is not there.
fn hostile_segment(len: usize, claimed: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    flashlog_wal::codec::encode(&mut bytes, Op::Put, b"k", b"v");
    let mut header = Vec::new();
    header.extend_from_slice(&0xdead_beef_u32.to_le_bytes());
    header.extend_from_slice(&claimed.to_le_bytes());
    header.push(1);
    header.extend_from_slice(&0u32.to_le_bytes());
    header.extend_from_slice(&(claimed - 13).to_le_bytes());
    while bytes.len() + header.len() <= len {
        bytes.extend_from_slice(&header);
    }
    bytes
}

/// Checking every would-be entry of such a segment costs CRCs over ~740,000 × 4 MiB
/// (days). Recovery searches with a budget instead, and says where it gave up
/// rather than guessing: the damage may be a torn tail or may hide valid entries.
///
/// The first would-be entry's `VAL_LEN` is damaged, so that its lengths disagree
/// and the search goes byte by byte. (Until issue 12 the segment was used as it
/// is; but there each header agrees with itself and declares an extent that ends
/// on the next one, and recovery no longer looks inside an entry's declared
/// bytes: it follows the five extents, the last running past the end, which is a
/// torn tail. See `hostile_headers_that_agree_are_followed_not_searched`.)
#[test]
fn regression_damage_followed_by_would_be_entries_is_searched_with_a_budget() {
    let mut segment = hostile_segment(16 << 20, 4 << 20);
    segment[19 + 13] ^= 1;
    let dir = write_segments(&[(SegmentId(1).file_name(), segment)]);
    let path = dir.path().to_path_buf();
    let outcomes =
        flashlog_testkit::run_with_timeout(std::time::Duration::from_secs(300), move || {
            let open = |mode| Wal::open(&path, Options::default().recovery_mode(mode).read_only());
            [
                RecoveryMode::TolerateCorruptedTail,
                RecoveryMode::SkipCorrupted,
                RecoveryMode::AbsoluteConsistency,
                RecoveryMode::PointInTime,
            ]
            .map(open)
        })
        .expect("recovery searches with a budget");
    let [tolerate, skip, absolute, point_in_time] = outcomes;
    for unbounded in [tolerate, skip] {
        match unbounded {
            Err(Error::UnboundedDamage {
                segment, offset, ..
            }) => assert_eq!((segment, offset), (SegmentId(1), 19)),
            other => panic!("expected UnboundedDamage, got {other:?}"),
        }
    }
    assert!(
        matches!(absolute, Err(Error::Corrupt { offset: 19, .. })),
        "{absolute:?}"
    );
    let wal = point_in_time.unwrap();
    assert_eq!(
        read_all(&wal),
        vec![(Op::Put, b"k".to_vec(), b"v".to_vec())]
    );
}

/// Would-be entries whose headers agree with themselves own their declared bytes:
/// recovery checks one CRC per declared extent instead of searching inside them,
/// and the last one, running past the end of the newest segment, is a torn tail.
/// In an older segment the same bytes are damage to its end.
#[test]
fn hostile_headers_that_agree_are_followed_not_searched() {
    let hostile = hostile_segment(16 << 20, 4 << 20);
    let valid = vec![(Op::Put, b"k".to_vec(), b"v".to_vec())];
    let dir = write_segments(&[(SegmentId(1).file_name(), hostile.clone())]);
    let path = dir.path().to_path_buf();
    let wal = flashlog_testkit::run_with_timeout(std::time::Duration::from_secs(60), move || {
        Wal::open(&path, Options::default().read_only()).unwrap()
    })
    .expect("a few CRCs");
    assert_eq!(read_all(&wal), valid);
    let torn = wal.recovery_report().torn_tail.unwrap();
    assert_eq!(torn.position.offset, 19);
    assert_eq!(torn.len, hostile.len() as u64 - 19);
    drop(wal);
    let mut second = Vec::new();
    flashlog_wal::codec::encode(&mut second, Op::Put, b"k2", b"v2");
    let dir = write_segments(&[
        (SegmentId(1).file_name(), hostile),
        (SegmentId(2).file_name(), second),
    ]);
    let err = Wal::open(dir.path(), Options::default().read_only()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Corrupt {
                segment: SegmentId(1),
                offset: 19,
                ..
            }
        ),
        "{err}"
    );
    let wal = open(
        dir.path(),
        Options::default()
            .recovery_mode(RecoveryMode::SkipCorrupted)
            .read_only(),
    );
    assert_eq!(wal.recovery_report().skipped, 1);
    assert_eq!(read_all(&wal).len(), 2);
}
