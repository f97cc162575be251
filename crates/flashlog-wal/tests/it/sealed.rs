//! Issue 12: a sealed segment that changed behind the log's back is damage in
//! every mode (items 2), and sequence numbers stay where they were acknowledged
//! when damage the checkpoint counted is skipped (item 3).

use std::fs;
use std::path::Path;

use flashlog_wal::{
    CorruptionKind, Error, Op, Options, RecoveryMode, RecoveryReport, SegmentId, Wal, INDEX_FILE,
};

use crate::common::{expected, fixture_copy};

/// 41-byte entries: ten fill a 410-byte segment.
const SEGMENT: u64 = 410;

const MODES: [RecoveryMode; 4] = [
    RecoveryMode::TolerateCorruptedTail,
    RecoveryMode::AbsoluteConsistency,
    RecoveryMode::PointInTime,
    RecoveryMode::SkipCorrupted,
];

fn options(mode: RecoveryMode) -> Options {
    Options::default()
        .max_segment_size(SEGMENT)
        .recovery_mode(mode)
}

/// The entry appended as `seq`: key `k` + four digits, a 19-byte value.
fn key(seq: u64) -> Vec<u8> {
    format!("k{seq:04}").into_bytes()
}

fn value(seq: u64) -> Vec<u8> {
    vec![seq as u8; 19]
}

/// A log of `count` entries, ten per segment, closed (so checkpointed).
fn log(dir: &Path, count: u64) {
    let wal = Wal::open(dir, options(RecoveryMode::default())).unwrap();
    for seq in 1..=count {
        assert_eq!(wal.append(Op::Put, &key(seq), &value(seq)).unwrap(), seq);
    }
    wal.close().unwrap();
    assert!(dir.join(INDEX_FILE).exists());
}

fn segment(dir: &Path, id: u64) -> std::path::PathBuf {
    dir.join(SegmentId(id).file_name())
}

/// The damage of a segment that no longer matches its checkpoint record.
fn is_changed(kind: &CorruptionKind) -> bool {
    matches!(kind, CorruptionKind::SegmentChanged { .. })
}

fn is_empty_segment(kind: &CorruptionKind) -> bool {
    matches!(kind, CorruptionKind::EmptySegment)
}

/// Whether a read failed because skipped damage held `seq`.
fn is_skipped(read: &flashlog_wal::Result<flashlog_wal::Entry>, seq: u64) -> bool {
    matches!(read, Err(Error::Skipped { seq: at }) if *at == seq)
}

fn unverified_from(report: &RecoveryReport) -> Option<u64> {
    report.numbering_unverified_from
}

/// Whether the open failed naming segment `id` as changed.
fn refused_as_changed(opened: &flashlog_wal::Result<Wal>, id: u64) -> bool {
    matches!(opened, Err(Error::Corrupt { segment, offset: 0, kind, .. })
        if *segment == SegmentId(id) && is_changed(kind))
}

fn changed_segments(report: &RecoveryReport) -> Vec<SegmentId> {
    report
        .damage
        .iter()
        .filter(|damage| is_changed(&damage.kind))
        .map(|damage| damage.position.segment)
        .collect()
}

/// A named way to change a log's files.
type Change = (&'static str, fn(&Path));

/// The ways a sealed segment can change (issue 12 item 2), each applied to a
/// closed log of 50 entries in five segments: segment 2 holds 11..=20.
fn changes() -> Vec<Change> {
    vec![
        ("cut at an entry boundary", |dir| {
            let bytes = fs::read(segment(dir, 2)).unwrap();
            fs::write(segment(dir, 2), &bytes[..5 * 41]).unwrap();
        }),
        ("replaced by an older shorter copy", |dir| {
            // What the segment held while it was the newest, 7 entries in.
            let bytes = fs::read(segment(dir, 2)).unwrap();
            fs::write(segment(dir, 2), &bytes[..7 * 41]).unwrap();
        }),
        ("a valid entry appended", |dir| {
            let mut bytes = fs::read(segment(dir, 2)).unwrap();
            flashlog_wal::codec::encode(&mut bytes, Op::Put, b"extra", b"entry");
            fs::write(segment(dir, 2), &bytes).unwrap();
        }),
        ("overwritten by its neighbour", |dir| {
            fs::copy(segment(dir, 3), segment(dir, 2)).unwrap();
        }),
        ("swapped with its neighbour", |dir| {
            let two = fs::read(segment(dir, 2)).unwrap();
            fs::copy(segment(dir, 3), segment(dir, 2)).unwrap();
            fs::write(segment(dir, 3), two).unwrap();
        }),
        ("emptied to zero bytes", |dir| {
            fs::write(segment(dir, 2), b"").unwrap();
        }),
    ]
}

/// Each change of sealed segment 2 was accepted silently in every mode, every
/// later entry renumbered. Now: the default and the strict mode refuse to open
/// naming segment 2, `PointInTime` keeps segments before it, and
/// `SkipCorrupted` skips it keeping the numbers of everything after it.
#[test]
fn regression_a_changed_sealed_segment_is_damage_in_every_mode() {
    for (what, change) in changes() {
        for mode in MODES {
            let dir = tempfile::tempdir().unwrap();
            log(dir.path(), 50);
            change(dir.path());
            let opened = Wal::open(dir.path(), options(mode));
            match mode {
                RecoveryMode::TolerateCorruptedTail | RecoveryMode::AbsoluteConsistency => {
                    assert!(
                        refused_as_changed(&opened, 2),
                        "{what}, {mode:?}: {opened:?}"
                    );
                    assert!(
                        opened.unwrap_err().to_string().contains("segment-0002.log"),
                        "{what}, {mode:?}"
                    );
                }
                RecoveryMode::PointInTime => {
                    let wal = opened.unwrap();
                    let report = wal.recovery_report();
                    assert_eq!(changed_segments(report), [SegmentId(2)], "{what}");
                    assert_eq!(wal.last_seq(), 10, "{what}: keeps segment 1");
                    assert_eq!(wal.append(Op::Put, b"next", b"").unwrap(), 11, "{what}");
                }
                RecoveryMode::SkipCorrupted => {
                    let wal = opened.unwrap();
                    let report = wal.recovery_report().clone();
                    let swapped = what.starts_with("swapped");
                    let changed: &[SegmentId] = if swapped {
                        &[SegmentId(2), SegmentId(3)]
                    } else {
                        &[SegmentId(2)]
                    };
                    assert_eq!(changed_segments(&report), changed, "{what}");
                    assert_eq!(unverified_from(&report), None, "{what}");
                    // Entries keep their numbers; the changed segment's are gaps.
                    assert_eq!(wal.last_seq(), 50, "{what}");
                    assert_eq!(wal.read(10).unwrap().key(), key(10), "{what}");
                    assert!(is_skipped(&wal.read(11), 11), "{what}");
                    let after = if swapped { 31 } else { 21 };
                    assert_eq!(wal.read(after).unwrap().key(), key(after), "{what}");
                    let seqs: Vec<u64> = wal
                        .iter_from(1)
                        .unwrap()
                        .map(|entry| entry.unwrap().seq())
                        .collect();
                    let want: Vec<u64> = (1..=10).chain(after..=50).collect();
                    assert_eq!(seqs, want, "{what}");
                    assert_eq!(wal.append(Op::Put, b"next", b"").unwrap(), 51, "{what}");
                    wal.close().unwrap();
                    drop(wal);
                    // The next open finds the same: the checkpoint still names
                    // the record the segment does not match.
                    let wal = Wal::open(dir.path(), options(mode)).unwrap();
                    assert_eq!(changed_segments(wal.recovery_report()), changed, "{what}");
                    assert_eq!(wal.read(51).unwrap().key(), b"next", "{what}");
                    drop(wal);
                    assert!(
                        refused_as_changed(
                            &Wal::open(dir.path(), options(RecoveryMode::default())),
                            2
                        ),
                        "{what}: the default mode still refuses"
                    );
                }
            }
        }
    }
}

/// `: > segment-0005.log` of the Go-written `go-basic` (no checkpoint) dropped
/// 21 entries with no damage reported. A segment other than the newest with no
/// bytes is damage: the writer never leaves one.
#[test]
fn regression_an_empty_segment_before_the_newest_is_damage_without_a_checkpoint() {
    for mode in MODES {
        let dir = fixture_copy("go-basic");
        fs::write(dir.path().join("segment-0005.log"), b"").unwrap();
        let opened = Wal::open(
            dir.path(),
            Options::default()
                .max_segment_size(4096)
                .recovery_mode(mode),
        );
        match mode {
            RecoveryMode::TolerateCorruptedTail | RecoveryMode::AbsoluteConsistency => {
                assert!(
                    matches!(&opened, Err(Error::Corrupt { segment: SegmentId(5), offset: 0, kind, .. })
                        if is_empty_segment(kind)),
                    "{mode:?}: {opened:?}"
                );
            }
            RecoveryMode::PointInTime => {
                let wal = opened.unwrap();
                assert_eq!(wal.recovery_report().damage.len(), 1);
                // Segments 1 to 4 kept; 5, empty, is the newest.
                assert_eq!(wal.segments().last().unwrap().id, SegmentId(5));
                assert_eq!(wal.last_seq(), wal.segments()[4].first_seq - 1);
            }
            RecoveryMode::SkipCorrupted => {
                let wal = opened.unwrap();
                let report = wal.recovery_report();
                assert_eq!(report.damage.len(), 1);
                assert!(is_empty_segment(&report.damage[0].kind));
                // How many entries it held nothing says: the numbering after it
                // is unverified, and the report says from where.
                let first_after = wal.segments()[5].first_seq;
                assert_eq!(unverified_from(report), Some(first_after));
                let want = expected("go-basic", "expected.txt");
                assert_eq!(report.entries, want.len() as u64 - 21);
            }
        }
    }
}

/// The case: 30 entries in 410-byte segments, one bit flipped in entry
/// 6 of sealed `segment-0001.log`. The default open reports nothing (the
/// checkpoint vouches) and `append` returns 31; `SkipCorrupted` then renumbered
/// every entry after the damage, so `read(31)` was out of range. Now the
/// damaged entry's number is a gap, and every other entry keeps its number.
#[test]
fn regression_skipping_counted_damage_keeps_acknowledged_numbers() {
    let dir = tempfile::tempdir().unwrap();
    log(dir.path(), 30);
    let path = segment(dir.path(), 1);
    let mut bytes = fs::read(&path).unwrap();
    bytes[5 * 41 + 30] ^= 0x10; // inside entry 6's value
    fs::write(&path, &bytes).unwrap();

    let wal = Wal::open(dir.path(), options(RecoveryMode::default())).unwrap();
    assert!(wal.recovery_report().damage.is_empty());
    assert_eq!(wal.append(Op::Put, b"acknowledged", b"31").unwrap(), 31);
    wal.close().unwrap();
    drop(wal);

    for reopen in 0..2 {
        let wal = Wal::open(dir.path(), options(RecoveryMode::SkipCorrupted)).unwrap();
        let report = wal.recovery_report().clone();
        assert_eq!((report.damage.len(), report.skipped), (1, 1), "{reopen}");
        assert_eq!(unverified_from(&report), None, "{reopen}");
        assert_eq!(wal.read(31).unwrap().key(), b"acknowledged", "{reopen}");
        assert!(is_skipped(&wal.read(6), 6));
        assert_eq!(wal.read(7).unwrap().key(), key(7));
        assert_eq!(wal.read(5).unwrap().key(), key(5));
        let seqs: Vec<u64> = wal
            .iter_from(1)
            .unwrap()
            .map(|entry| entry.unwrap().seq())
            .collect();
        let want: Vec<u64> = (1..=5).chain(7..=31 + reopen).collect();
        assert_eq!(seqs, want, "{reopen}");
        // An iterator started in the gap begins after it.
        assert_eq!(wal.iter_from(6).unwrap().next().unwrap().unwrap().seq(), 7);
        assert_eq!((wal.first_seq(), wal.last_seq()), (1, 31 + reopen));
        assert_eq!(wal.append(Op::Put, b"more", b"").unwrap(), 32 + reopen);
        wal.close().unwrap();
    }
}

/// Where nothing says how many entries skipped damage held (a Go-written log
/// has no checkpoint), the report says from which sequence number on the
/// numbering is unverified.
#[test]
fn regression_skipping_uncounted_damage_says_the_numbering_is_unverified() {
    let dir = fixture_copy("go-corrupt-middle");
    let wal = Wal::open(
        dir.path(),
        Options::default()
            .max_segment_size(4096)
            .recovery_mode(RecoveryMode::SkipCorrupted),
    )
    .unwrap();
    let report = wal.recovery_report().clone();
    assert_eq!(report.damage.len(), 1);
    let damage = report.damage[0].position;
    let first_after = (wal.first_seq()..=wal.last_seq())
        .find(|&seq| wal.position(seq).unwrap() > damage)
        .unwrap();
    assert_eq!(unverified_from(&report), Some(first_after));
    // A clean log's report says nothing of the kind.
    let dir = fixture_copy("go-basic");
    let wal = Wal::open(
        dir.path(),
        Options::default()
            .max_segment_size(4096)
            .recovery_mode(RecoveryMode::SkipCorrupted),
    )
    .unwrap();
    assert_eq!(unverified_from(wal.recovery_report()), None);
}

/// After `remove_skipped_damage` (what `flashlog repair --mode skip-corrupted`
/// runs) rewrote the damaged segment, the acknowledged numbers stay.
#[test]
fn regression_removing_counted_damage_keeps_acknowledged_numbers() {
    let dir = tempfile::tempdir().unwrap();
    log(dir.path(), 30);
    let path = segment(dir.path(), 1);
    let mut bytes = fs::read(&path).unwrap();
    bytes[5 * 41 + 30] ^= 0x10;
    fs::write(&path, &bytes).unwrap();
    let wal = Wal::open(dir.path(), options(RecoveryMode::default())).unwrap();
    assert_eq!(wal.append(Op::Put, b"acknowledged", b"31").unwrap(), 31);
    wal.close().unwrap();
    drop(wal);

    let removed =
        flashlog_wal::remove_skipped_damage(dir.path(), options(RecoveryMode::default())).unwrap();
    assert_eq!(removed.len(), 1);
    for mode in MODES {
        let wal = Wal::open(dir.path(), options(mode)).unwrap();
        assert!(wal.recovery_report().damage.is_empty(), "{mode:?}");
        assert_eq!(wal.read(31).unwrap().key(), b"acknowledged", "{mode:?}");
        assert!(is_skipped(&wal.read(6), 6), "{mode:?}");
        assert_eq!(wal.read(7).unwrap().key(), key(7), "{mode:?}");
    }
}
