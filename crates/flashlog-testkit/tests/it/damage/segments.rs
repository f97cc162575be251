//! Missing, stale, malformed and duplicate segments.

use flashlog_testkit::{Recovered, SimFs};
use flashlog_wal::{Error, RecoveryMode, SegmentId};

use super::{log, open, path, truncated_log};

/// Opens the log and requires `Error::MissingSegment` with its message; returns
/// the id it names.
fn missing_segment(sim: &SimFs) -> SegmentId {
    match open(sim, RecoveryMode::default()) {
        Err(Error::MissingSegment { id, .. }) => id,
        Err(err) => panic!("expected MissingSegment, got {err}"),
        Ok(_) => panic!("expected MissingSegment, the log opened"),
    }
}

#[test]
fn a_missing_first_segment_named_by_the_side_file_is_a_clear_error() {
    let (sim, names) = truncated_log();
    sim.remove_durable(path(&names[0]));
    let first = SegmentId::parse_file_name(&names[0]).unwrap();
    assert_eq!(missing_segment(&sim), first);
    // Every segment gone: still the side file's first segment is named.
    for name in &names {
        sim.remove_durable(path(name));
    }
    missing_segment(&sim);
}

/// The newest segment vanished (a lost directory entry, an operator's mistake):
/// the log used to open shorter and drop the entries it held without a word. The
/// side file now names the newest segment.
#[test]
fn regression_a_missing_newest_segment_is_reported() {
    let (sim, names) = truncated_log();
    sim.remove_durable(path(names.last().unwrap()));
    missing_segment(&sim);
}

#[test]
fn a_stale_segment_beyond_a_gap_after_the_last_one_is_a_clear_error() {
    let (sim, names) = truncated_log();
    let last = SegmentId::parse_file_name(names.last().unwrap()).unwrap();
    let stale = SegmentId(last.0 + 2);
    sim.put_durable(
        path(&stale.file_name()),
        &sim.read(path(&names[0])).unwrap(),
    );
    assert_eq!(missing_segment(&sim), last.next());
    let err = open(&sim, RecoveryMode::default()).unwrap_err();
    assert!(err.to_string().contains("is missing"), "{err}");
}

#[test]
fn malformed_segment_names_are_ignored() {
    let (sim, segments) = log(6);
    let junk = segments[0].1.clone();
    for name in [
        "segment-.log",
        "segment-0002.log.tmp",
        "Segment-0009.log",
        "segment-0009.LOG",
        "segment-+9.log",
        "segment- 9.log",
        "segment-0x9.log",
        "xsegment-0009.log",
        "segment-99999999999999999999999.log",
        "segment-0009.log~",
    ] {
        sim.put_durable(path(name), &junk);
    }
    let wal = open(&sim, RecoveryMode::default()).unwrap();
    assert_eq!(Recovered::read(&wal).unwrap().entries.len(), 6);
    assert_eq!(wal.segments().len(), segments.len());
}

/// FORMAT.md: readers match `^segment-(\d+)\.log$` and sort numerically, so
/// `segment-2.log` is segment 2. The core used to parse it as 2 but then open
/// `segment-0002.log`; a read-write open now renames it to that.
#[test]
fn regression_an_unpadded_segment_name_opens() {
    let (sim, segments) = log(6);
    assert!(segments.len() >= 2);
    let (name, bytes, _) = &segments[1];
    sim.remove_durable(path(name));
    let id = SegmentId::parse_file_name(name).unwrap();
    sim.put_durable(path(&format!("segment-{}.log", id.0)), bytes);
    let wal = open(&sim, RecoveryMode::default()).unwrap();
    assert!(Recovered::read(&wal).unwrap().entries.len() >= segments[0].2.len());
}

/// Two files naming the same segment id (`segment-0002.log` and `segment-002.log`)
/// must be a clear error naming the duplicate, not a "missing segment".
#[test]
fn regression_duplicate_segment_ids_are_named_as_such() {
    let (sim, segments) = log(6);
    let (name, bytes, _) = &segments[1];
    let id = SegmentId::parse_file_name(name).unwrap();
    sim.put_durable(path(&format!("segment-{:03}.log", id.0)), bytes);
    let err = open(&sim, RecoveryMode::default()).unwrap_err();
    assert!(
        matches!(err, Error::DuplicateSegment { id: dup, .. } if dup == id),
        "a duplicate is not a missing segment: {err}"
    );
}
