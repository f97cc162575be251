//! Logs written by the Go implementation (tests/fixtures, copied from shared/):
//! each gives exactly the listed entries under each recovery mode, and the same
//! entries appended here give byte-identical segment files.

use flashlog_wal::{CorruptionKind, Error, Options, RecoveryMode, SegmentId, Wal};

use crate::common::{append_all, expected, fixture_copy, fixtures, open, read_all, segment_files};

const GO_SEGMENT_SIZE: u64 = 4096;

fn options(mode: RecoveryMode) -> Options {
    Options::default()
        .max_segment_size(GO_SEGMENT_SIZE)
        .recovery_mode(mode)
}

#[test]
fn clean_go_log_replays_all_300_entries() {
    let dir = fixture_copy("go-basic");
    let wal = open(dir.path(), options(RecoveryMode::AbsoluteConsistency));
    let want = expected("go-basic", "expected.txt");
    assert_eq!(want.len(), 300);
    assert_eq!(read_all(&wal), want);
    let report = wal.recovery_report();
    assert_eq!((report.segments, report.entries), (12, 300));
    assert!(report.damage.is_empty() && report.torn_tail.is_none());
    // A Go directory has no side file: sequence numbers start at 1.
    assert_eq!((wal.first_seq(), wal.last_seq()), (1, 300));
    assert_eq!(wal.read(300).unwrap().key(), &want[299].1[..]);
}

#[test]
fn re_appending_the_go_entries_gives_byte_identical_segments() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path(), options(RecoveryMode::default()));
        append_all(&wal, &expected("go-basic", "expected.txt"));
        wal.close().unwrap();
    }
    let ours = segment_files(dir.path());
    let go = segment_files(&fixtures().join("go-basic/wal"));
    assert_eq!(ours.len(), 12);
    for ((our_name, our_bytes), (go_name, go_bytes)) in ours.iter().zip(&go) {
        assert_eq!(our_name, go_name);
        assert!(
            our_bytes == go_bytes,
            "{our_name} differs from the Go-written file"
        );
    }
    assert_eq!(ours.len(), go.len());
}

#[test]
fn appending_to_a_go_log_continues_its_numbering() {
    let dir = fixture_copy("go-basic");
    {
        let wal = open(dir.path(), options(RecoveryMode::default()));
        assert_eq!(
            wal.append(flashlog_wal::Op::Put, b"after-go", b"x")
                .unwrap(),
            301
        );
    }
    let wal = open(dir.path(), options(RecoveryMode::AbsoluteConsistency));
    assert_eq!(wal.last_seq(), 301);
    assert_eq!(wal.read(301).unwrap().key(), b"after-go");
}

#[test]
fn torn_tails_are_cut_under_the_default_mode() {
    for name in ["go-torn-truncated", "go-torn-placeholder"] {
        let dir = fixture_copy(name);
        let want = expected(name, "expected.txt");
        assert_eq!(want.len(), 299, "{name}");
        let wal = open(dir.path(), options(RecoveryMode::TolerateCorruptedTail));
        assert_eq!(read_all(&wal), want, "{name}");
        let report = wal.recovery_report().clone();
        let torn = report.torn_tail.expect("a torn tail is reported");
        assert_eq!(torn.position.segment, SegmentId(12), "{name}");
        assert!(report.truncated_bytes > 0);
        if name == "go-torn-placeholder" {
            assert_eq!(torn.kind, CorruptionKind::Placeholder);
        } else {
            assert!(
                matches!(torn.kind, CorruptionKind::Incomplete { .. }),
                "{:?}",
                torn.kind
            );
        }
        drop(wal);
        // The cut is durable and clean: now even absolute consistency accepts it.
        let wal = open(dir.path(), options(RecoveryMode::AbsoluteConsistency));
        assert_eq!(read_all(&wal), want);
        assert_eq!(wal.recovery_report().torn_tail, None);
    }
}

#[test]
fn torn_tails_are_errors_under_absolute_consistency_and_change_nothing() {
    for name in ["go-torn-truncated", "go-torn-placeholder"] {
        let dir = fixture_copy(name);
        let before = segment_files(dir.path());
        let err = Wal::open(dir.path(), options(RecoveryMode::AbsoluteConsistency)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Corrupt {
                    segment: SegmentId(12),
                    ..
                }
            ),
            "{name}: {err}"
        );
        assert_eq!(segment_files(dir.path()), before, "{name}: files changed");
    }
}

#[test]
fn corruption_in_the_middle_is_an_error_naming_segment_5_offset_1075() {
    for mode in [
        RecoveryMode::TolerateCorruptedTail,
        RecoveryMode::AbsoluteConsistency,
    ] {
        let dir = fixture_copy("go-corrupt-middle");
        let before = segment_files(dir.path());
        let err = Wal::open(dir.path(), options(mode)).unwrap_err();
        match &err {
            Error::Corrupt {
                segment,
                offset,
                path,
                ..
            } => {
                assert_eq!((*segment, *offset), (SegmentId(5), 1075), "{mode:?}");
                assert!(path.ends_with("segment-0005.log"));
            }
            other => panic!("{mode:?}: expected corruption, got {other}"),
        }
        let text = err.to_string();
        assert!(
            text.contains("segment-0005.log") && text.contains("1075"),
            "{text}"
        );
        assert_eq!(segment_files(dir.path()), before, "{mode:?}: files changed");
    }
}

#[test]
fn point_in_time_keeps_the_101_entries_before_the_corruption() {
    let dir = fixture_copy("go-corrupt-middle");
    let want = expected("go-corrupt-middle", "expected-before.txt");
    assert_eq!(want.len(), 101);
    {
        let wal = open(dir.path(), options(RecoveryMode::PointInTime));
        assert_eq!(read_all(&wal), want);
        let report = wal.recovery_report();
        assert_eq!(report.damage[0].position.to_string(), "5:1075");
        assert_eq!(
            report.removed_segments,
            (6..=12).map(SegmentId).collect::<Vec<_>>()
        );
        assert_eq!(wal.append(flashlog_wal::Op::Put, b"k", b"v").unwrap(), 102);
    }
    let wal = open(dir.path(), options(RecoveryMode::AbsoluteConsistency));
    assert_eq!(wal.last_seq(), 102);
}

#[test]
fn skip_corrupted_keeps_the_299_valid_entries() {
    let dir = fixture_copy("go-corrupt-middle");
    let want = expected("go-corrupt-middle", "expected-skip.txt");
    assert_eq!(want.len(), 299);
    for _ in 0..2 {
        let wal = open(dir.path(), options(RecoveryMode::SkipCorrupted));
        assert_eq!(read_all(&wal), want);
        let report = wal.recovery_report();
        assert_eq!(report.skipped, 1);
        assert_eq!(report.damage.len(), 1);
        assert_eq!(report.damage[0].position.to_string(), "5:1075");
    }
}
