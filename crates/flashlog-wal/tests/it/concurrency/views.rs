//! Read-only views of a log whose writer cuts and appends: never another
//! entry's bytes, never false damage.

use std::time::Duration;

use flashlog_wal::{Error, Op, Options, Wal};

use super::key;

/// A read-only view of a log its writer truncates back and appends to: the
/// view's positions may now hold other entries. Reads of what the cut replaced
/// say the view is outdated instead of returning the new bytes as the old
/// entries (the concurrent model test found a view returning a wrong entry);
/// entries before the cut still read as they were.
#[test]
fn regression_a_read_only_view_never_returns_entries_its_writer_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Wal::open(dir.path(), Options::default()).unwrap();
    for i in 1..=10 {
        writer.append(Op::Put, &key("old", i), b"value").unwrap();
    }
    let view = Wal::open(dir.path(), Options::default().read_only()).unwrap();
    assert_eq!(view.read(8).unwrap().key(), key("old", 8));
    writer.truncate_back(5).unwrap();
    for i in 5..=20 {
        writer.append(Op::Put, &key("new", i), b"").unwrap();
    }
    assert!(
        matches!(view.read(8), Err(Error::ViewOutdated { .. })),
        "{:?}",
        view.read(8)
    );
    assert_eq!(view.read(3).unwrap().key(), key("old", 3));
    let mut iter = view.iter_from(1).unwrap();
    let mut keys = Vec::new();
    let end = loop {
        match iter.next() {
            Some(Ok(entry)) => keys.push(entry.key().to_vec()),
            other => break other,
        }
    };
    assert!(keys.iter().all(|k| k.starts_with(b"old")), "{keys:?}");
    assert!(
        matches!(end, Some(Err(Error::ViewOutdated { .. }))),
        "{end:?}"
    );
    // A second truncation makes every read of the view doubtful.
    writer.truncate_back(15).unwrap();
    assert!(matches!(view.read(3), Err(Error::ViewOutdated { .. })));
    // A view opened now sees the log as it is.
    let fresh = Wal::open(dir.path(), Options::default().read_only()).unwrap();
    assert_eq!(fresh.read(8).unwrap().key(), key("new", 8));
}

/// Review found it: a view reading an untouched entry of a sealed segment it
/// trusted from the checkpoint, after the writer cut that segment further
/// along, read the whole changed segment and reported false damage.
#[test]
fn regression_a_view_never_reports_damage_its_writer_made_by_truncating() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default().max_segment_size(2048);
    let writer = Wal::open(dir.path(), options.clone()).unwrap();
    for i in 1..=100 {
        writer.append(Op::Put, &key("old", i), &[1; 40]).unwrap();
    }
    writer.close().unwrap();
    drop(writer);
    let writer = Wal::open(dir.path(), options.clone()).unwrap();
    let view = Wal::open(dir.path(), options.read_only()).unwrap();
    let first = writer.segments()[0];
    assert!(first.entries > 20);
    writer.truncate_back(first.first_seq + 20).unwrap();
    for i in 1..=3 {
        writer.append(Op::Put, &key("new", i), b"").unwrap();
    }
    match view.read(first.first_seq) {
        Ok(entry) => assert_eq!(entry.key(), key("old", first.first_seq)),
        Err(Error::ViewOutdated { .. }) => {}
        Err(other) => panic!("a healthy log read as {other}"),
    }
    // A view does not follow its writer: waiting for what it cannot see says so.
    assert!(matches!(
        view.wait_for(view.last_seq() + 1, Duration::from_secs(3600)),
        Err(Error::ReadOnly)
    ));
    let mut follower = view.iter_from(view.last_seq() + 1).unwrap().follow();
    assert!(matches!(follower.next(), Some(Err(Error::ReadOnly))));
}

/// Review found it: a cut made by a read-write open (here `PointInTime` at
/// damage) was not counted for views, so a view opened before it read the
/// entries appended after the cut as its own.
#[test]
fn regression_a_view_notices_cuts_made_by_a_recovering_open() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Wal::open(dir.path(), Options::default()).unwrap();
    for i in 1..=20 {
        writer.append(Op::Put, &key("old", i), &[0xaa; 30]).unwrap();
    }
    let damaged = writer.position(10).unwrap();
    writer.close().unwrap();
    drop(writer);
    let path = dir.path().join(damaged.segment.file_name());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[damaged.offset as usize + 20] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let skipping = Options::default().recovery_mode(flashlog_wal::RecoveryMode::SkipCorrupted);
    let view = Wal::open(dir.path(), skipping.read_only()).unwrap();
    let before = view.iter_from(10).unwrap().next().unwrap().unwrap();
    let writer = Wal::open(
        dir.path(),
        Options::default().recovery_mode(flashlog_wal::RecoveryMode::PointInTime),
    )
    .unwrap();
    assert_eq!(writer.last_seq(), 9);
    for i in 10..=11 {
        writer.append(Op::Put, &key("new", i), &[0xbb; 30]).unwrap();
    }
    match view.read(before.seq()) {
        Err(Error::ViewOutdated { .. }) => {}
        Ok(entry) => assert_eq!(
            entry.key(),
            before.key(),
            "the view read the writer's new entry"
        ),
        Err(other) => panic!("{other}"),
    }
}
