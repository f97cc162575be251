//! The policy as a pure function: segments with sizes, sealing times and a
//! slowest cursor in, the segments to remove out.

use std::time::Duration;

use super::*;

const NOW: u64 = 1_000_000;

/// Segments of `bytes` each, 10 entries each from sequence number 1, sealed
/// at the given times (milliseconds); the last one is the active segment.
fn segments(sizes_and_times: &[(u64, Option<u64>)]) -> Vec<Candidate> {
    sizes_and_times
        .iter()
        .enumerate()
        .map(|(n, &(bytes, sealed_at))| Candidate {
            id: SegmentId(n as u64 + 1),
            first_seq: 1 + 10 * n as u64,
            next_seq: 11 + 10 * n as u64,
            bytes,
            sealed_at,
        })
        .collect()
}

fn removed_ids(plan: &Plan) -> Vec<u64> {
    plan.removed.iter().map(|segment| segment.id.0).collect()
}

#[test]
fn the_byte_limit_removes_the_oldest_until_the_log_fits() {
    let policy = Retention::default().max_bytes(250);
    let log = segments(&[(100, Some(0)), (100, Some(0)), (100, Some(0)), (30, None)]);
    let plan = plan(&policy, &log, None, NOW);
    // 330 bytes: the first segment goes (230 left, within 250).
    assert_eq!(removed_ids(&plan), [1]);
    assert_eq!(plan.removed[0].reason, RetentionReason::Bytes);
    assert_eq!(plan.removed[0].entries, 10);
    assert_eq!(plan.truncate_at(), Some(11));
    assert_eq!(plan.held_back, None);
}

#[test]
fn the_active_segment_never_goes() {
    let policy = Retention::default().max_bytes(1);
    let log = segments(&[(100, Some(0)), (100, Some(0)), (500, None)]);
    let plan = plan(&policy, &log, None, NOW);
    assert_eq!(removed_ids(&plan), [1, 2]);
    // A log of one segment keeps it, however large.
    let one = segments(&[(500, None)]);
    assert_eq!(
        crate::retention::plan(&policy, &one, None, NOW),
        Plan::default()
    );
    assert_eq!(
        crate::retention::plan(&policy, &[], None, NOW),
        Plan::default()
    );
}

#[test]
fn within_the_limits_nothing_goes() {
    let policy = Retention::default()
        .max_bytes(1000)
        .max_age(Duration::from_secs(10));
    let log = segments(&[(100, Some(NOW - 5_000)), (100, Some(NOW - 1)), (30, None)]);
    assert_eq!(plan(&policy, &log, None, NOW), Plan::default());
}

#[test]
fn the_age_limit_removes_segments_sealed_longer_ago_than_it() {
    let policy = Retention::default().max_age(Duration::from_secs(10));
    let log = segments(&[
        (100, Some(NOW - 30_000)),
        (100, Some(NOW - 10_001)),
        (100, Some(NOW - 10_000)), // exactly the limit: stays
        (100, Some(NOW - 20_000)), // older, but after one that stays
        (30, None),
    ]);
    let plan = plan(&policy, &log, None, NOW);
    assert_eq!(removed_ids(&plan), [1, 2]);
    assert!(plan
        .removed
        .iter()
        .all(|segment| segment.reason == RetentionReason::Age));
    // A clock that went back counts as age 0.
    let future = segments(&[(100, Some(NOW + 50_000)), (10, None)]);
    assert_eq!(
        crate::retention::plan(&policy, &future, None, NOW),
        Plan::default()
    );
}

#[test]
fn bytes_first_then_age() {
    let policy = Retention::default()
        .max_bytes(250)
        .max_age(Duration::from_secs(10));
    let log = segments(&[
        (100, Some(NOW - 1)),
        (100, Some(NOW - 20_000)),
        (100, Some(NOW - 1)),
        (30, None),
    ]);
    let plan = plan(&policy, &log, None, NOW);
    assert_eq!(removed_ids(&plan), [1, 2]);
    assert_eq!(plan.removed[0].reason, RetentionReason::Bytes);
    assert_eq!(plan.removed[1].reason, RetentionReason::Age);
}

#[test]
fn the_slowest_cursor_holds_back_under_respect_only() {
    let policy = Retention::default().max_bytes(100);
    let log = segments(&[(100, Some(0)), (100, Some(0)), (100, Some(0)), (30, None)]);
    // The cursor handled entries 1..=15: segment 1 (1..=10) may go, 2 (11..=20) not.
    let plan_respect = plan(&policy, &log, Some(("indexer", 15)), NOW);
    assert_eq!(removed_ids(&plan_respect), [1]);
    assert_eq!(
        plan_respect.held_back,
        Some(HeldBack {
            cursor: "indexer".into(),
            seq: 15,
            segments: 2,
            bytes: 200,
        })
    );
    // Exactly at a segment's last entry: that segment may go.
    let at_end = plan(&policy, &log, Some(("indexer", 20)), NOW);
    assert_eq!(removed_ids(&at_end), [1, 2]);
    // A cursor at 0 (nothing handled) holds everything.
    let none = plan(&policy, &log, Some(("new", 0)), NOW);
    assert!(none.removed.is_empty());
    assert_eq!(none.held_back.map(|held| held.segments), Some(3));
    // Ignore: the limits alone.
    let ignore = policy.cursors(CursorRule::Ignore);
    let plan_ignore = plan(&ignore, &log, Some(("indexer", 0)), NOW);
    assert_eq!(removed_ids(&plan_ignore), [1, 2, 3]);
    assert_eq!(plan_ignore.held_back, None);
}

#[test]
fn a_cursor_holds_nothing_the_limits_keep() {
    let policy = Retention::default().max_bytes(1000);
    let log = segments(&[(100, Some(0)), (100, Some(0)), (30, None)]);
    assert_eq!(plan(&policy, &log, Some(("slow", 0)), NOW), Plan::default());
}

#[test]
fn a_segment_without_a_sealing_time_never_ages_out() {
    let policy = Retention::default().max_age(Duration::from_millis(1));
    let log = segments(&[(100, None), (100, Some(0)), (30, None)]);
    assert_eq!(plan(&policy, &log, None, NOW), Plan::default());
}

#[test]
fn policies_without_a_limit_or_with_a_zero_one_are_refused() {
    for bad in [
        Retention::default(),
        Retention::default().cursors(CursorRule::Ignore),
        Retention::default().max_bytes(0),
        Retention::default().max_age(Duration::ZERO),
        Retention::default().max_bytes(10).max_age(Duration::ZERO),
    ] {
        assert!(
            matches!(bad.validate(), Err(Error::InvalidOptions(_))),
            "{bad:?}"
        );
    }
    assert!(Retention::default().max_bytes(1).validate().is_ok());
    assert!(Retention::default()
        .max_age(Duration::from_nanos(1))
        .validate()
        .is_ok());
}

#[test]
fn totals_add_up_reports() {
    let mut totals = RetentionTotals::default();
    let report = RetentionReport {
        removed: vec![
            RemovedSegment {
                id: SegmentId(1),
                first_seq: 1,
                entries: 10,
                bytes: 100,
                reason: RetentionReason::Bytes,
            },
            RemovedSegment {
                id: SegmentId(2),
                first_seq: 11,
                entries: 5,
                bytes: 50,
                reason: RetentionReason::Age,
            },
        ],
        entries_removed: 15,
        bytes_removed: 150,
        first_seq: 16,
        held_back: None,
        sealing_times_error: None,
    };
    totals.add(Ok(&report));
    totals.add(Err(()));
    assert_eq!(
        totals,
        RetentionTotals {
            runs: 2,
            failures: 1,
            segments_removed: 2,
            removed_for_bytes: 1,
            removed_for_age: 1,
            entries_removed: 15,
            bytes_removed: 150,
            held_back: 0,
        }
    );
}
