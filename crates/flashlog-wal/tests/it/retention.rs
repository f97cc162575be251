//! Retention (`Options::retention`, `Wal::apply_retention`): limits by bytes and
//! by age, applied after rotations and on demand, held back by cursors under
//! `CursorRule::Respect` and not under `Ignore`, sealing times that survive a
//! reopen and a copy of the directory (not file times), and beside appenders
//! and a consumer. Crash safety at every step: `retention_crash.rs`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flashlog_wal::{
    CursorRule, Error, Op, Options, Retention, RetentionReason, SideFileAction, SyncPolicy,
    Visibility, Wal, SEALED_FILE,
};

use crate::common::open;

/// Entries of 18 + `value` bytes (key `k`).
fn fill(wal: &Wal, count: u64, value: usize) {
    for n in 0..count {
        wal.append(Op::Put, b"k", &vec![n as u8; value]).unwrap();
    }
}

/// Bytes of the segment files in `dir`, as the disk holds them.
fn disk_use(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name().into_string().ok()?;
            (name.starts_with("segment-") && name.ends_with(".log"))
                .then(|| entry.metadata().map_or(0, |meta| meta.len()))
        })
        .sum()
}

/// Every entry from the log's first to its last reads back with the value it
/// was appended with (entry n holds the byte n % 256, see `fill`'s callers).
pub(crate) fn check_entries(wal: &Wal, context: &str) {
    for entry in wal.iter_from(wal.first_seq()).unwrap() {
        let entry = entry.unwrap_or_else(|err| panic!("{context}: {err}"));
        assert_eq!(entry.value(), [(entry.seq() - 1) as u8], "{context}");
    }
}

#[test]
fn a_policy_without_a_limit_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        Retention::default(),
        Retention::default().max_bytes(0),
        Retention::default().max_age(Duration::ZERO),
    ] {
        let err = Wal::open(dir.path(), Options::default().retention(bad)).unwrap_err();
        assert!(matches!(err, Error::InvalidOptions(_)), "{bad:?}: {err}");
    }
}

/// The main job: appending for a few seconds on the real disk with a byte limit,
/// the segment files never hold more than the limit plus one segment, at any
/// check (after every append), and everything from the first entry kept on reads.
#[test]
fn a_long_append_loop_stays_under_the_byte_limit_plus_one_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (max_bytes, segment) = (256 << 10, 64 << 10);
    let options = Options::default()
        .max_segment_size(segment)
        .retention(Retention::default().max_bytes(max_bytes));
    let wal = open(dir.path(), options);
    let seconds = std::env::var("FLASHLOG_RETENTION_SECS")
        .ok()
        .and_then(|secs| secs.parse().ok())
        .unwrap_or(3.0);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let (mut appends, mut peak, mut written) = (0u64, 0, 0);
    while Instant::now() < deadline {
        let value = vec![appends as u8; 100 + (appends as usize * 37) % 900];
        wal.append(Op::Put, b"key", &value).unwrap();
        appends += 1;
        written += 22 + value.len() as u64;
        let used = disk_use(dir.path());
        peak = peak.max(used);
        assert!(
            used <= max_bytes + segment,
            "after {appends} appends: {used} bytes on disk, limit {max_bytes} + {segment}"
        );
    }
    let totals = wal.retention_totals();
    eprintln!(
        "{appends} appends, {written} bytes written in {seconds} s; peak disk use {peak} \
         (limit + one segment: {}); {totals:?}",
        max_bytes + segment
    );
    assert!(
        written > 4 * max_bytes,
        "the loop wrote only {written} bytes"
    );
    assert_eq!(totals.failures, 0);
    assert!(totals.segments_removed > 0 && totals.removed_for_bytes == totals.segments_removed);
    assert!(matches!(wal.last_retention(), Some(Ok(_))));
    // What is left is whole and readable, from the new first entry on.
    let first = wal.first_seq();
    assert!(first > 1);
    assert_eq!(
        wal.iter_from(first).unwrap().count() as u64,
        wal.last_seq() - first + 1
    );
    assert_eq!(wal.retention_totals().entries_removed, first - 1);
}

#[test]
fn the_age_limit_removes_segments_sealed_longer_ago() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention::default()
        .max_age(Duration::from_secs(1))
        .cursors(CursorRule::Ignore);
    let wal = open(
        dir.path(),
        Options::default()
            .max_segment_size(100)
            .retention(retention),
    );
    fill(&wal, 20, 0); // 5 entries a segment: 3 sealed, 1 active
    let young = wal.apply_retention().unwrap();
    assert!(young.removed.is_empty(), "{young:?}");
    std::thread::sleep(Duration::from_millis(1100));
    let report = wal.apply_retention().unwrap();
    assert!(!report.removed.is_empty(), "{report:?}");
    assert!(report
        .removed
        .iter()
        .all(|s| s.reason == RetentionReason::Age));
    assert_eq!(report.first_seq, 16);
    assert_eq!(wal.first_seq(), 16);
    assert_eq!(wal.segments().len(), 1);
    // Every sealed segment went (a slow rotation may have let the automatic
    // application take the first one already).
    let totals = wal.retention_totals();
    assert_eq!((totals.segments_removed, totals.removed_for_age), (3, 3));
    assert_eq!(
        (totals.entries_removed, totals.bytes_removed),
        (15, 15 * 18)
    );
}

/// Sealing times are recorded in `flashlog.sealed`, not taken from file times:
/// a copy of the directory (fresh file times) keeps its ages, and so does a
/// reopen.
#[test]
fn sealing_times_survive_a_reopen_and_a_copy_of_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let max_age = Duration::from_secs(1);
    let retention = Retention::default().max_age(max_age);
    let options = Options::default()
        .max_segment_size(100)
        .retention(retention);
    {
        let wal = open(dir.path(), options.clone());
        fill(&wal, 12, 0); // sealed: 1, 2; active: 3
        wal.apply_retention().unwrap(); // stores the sealing times
    }
    assert!(dir.path().join(SEALED_FILE).exists());
    std::thread::sleep(max_age + Duration::from_millis(100));
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
    }
    // The copies are brand new files, yet their segments are old.
    let wal = open(copy.path(), options);
    let report = wal.apply_retention().unwrap();
    assert_eq!(report.removed.len(), 2, "{report:?}");
    assert_eq!(wal.first_seq(), 11);
}

/// A segment with no recorded sealing time (the file removed, or damaged)
/// counts as sealed at the open: its age is never overstated.
#[test]
fn an_unknown_sealing_time_counts_from_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let max_age = Duration::from_secs(1);
    let options = Options::default()
        .max_segment_size(100)
        .retention(Retention::default().max_age(max_age));
    {
        let wal = open(dir.path(), options.clone());
        fill(&wal, 12, 0);
    }
    std::thread::sleep(max_age + Duration::from_millis(100));
    std::fs::write(dir.path().join(SEALED_FILE), b"damaged").unwrap();
    let wal = open(dir.path(), options);
    let notes = &wal.recovery_report().side_files;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].action, SideFileAction::SealingTimesReset);
    assert!(wal.apply_retention().unwrap().removed.is_empty());
    std::thread::sleep(max_age + Duration::from_millis(100));
    assert_eq!(wal.apply_retention().unwrap().removed.len(), 2);
}

/// A `truncate_back` that removes sealed segments makes their ids new again:
/// the segments sealed later under those ids are young, even with the same
/// sequence numbers as the old ones.
#[test]
fn segments_sealed_again_after_truncate_back_are_young() {
    let dir = tempfile::tempdir().unwrap();
    let max_age = Duration::from_secs(1);
    let options = Options::default()
        .max_segment_size(100)
        .retention(Retention::default().max_age(max_age));
    let wal = open(dir.path(), options);
    fill(&wal, 20, 0); // sealed 1 (1..=5), 2 (6..=10), 3 (11..=15); active 4
    wal.apply_retention().unwrap();
    std::thread::sleep(max_age + Duration::from_millis(100));
    wal.truncate_back(8).unwrap(); // 2 is active again, 3 and 4 are gone
    fill(&wal, 13, 0); // the same sizes: 2 (6..=10), 3 (11..=15) sealed again
                       // The rotations applied retention: segment 1 is old and went; 2 and 3, with
                       // the ids and sequence numbers of segments sealed long ago, are young.
    assert_eq!(wal.first_seq(), 6);
    assert_eq!(wal.segments().len(), 3);
    let report = wal.apply_retention().unwrap();
    assert!(report.removed.is_empty(), "{report:?}");
}

#[test]
fn cursors_hold_retention_back_under_respect_and_not_under_ignore() {
    for rule in [CursorRule::Respect, CursorRule::Ignore] {
        let dir = tempfile::tempdir().unwrap();
        let options = Options::default()
            .max_segment_size(100)
            .retention(Retention::default().max_bytes(100).cursors(rule));
        let wal = open(dir.path(), options);
        wal.append(Op::Put, b"k", b"").unwrap();
        // Two consumers that handled entry 1; the first by name counts as slowest.
        wal.set_cursor("slow", 1).unwrap();
        wal.set_cursor("fast", 1).unwrap();
        fill(&wal, 29, 0); // 6 segments of 5 entries; automatic retention after each rotation
        let auto = wal.last_retention().unwrap().unwrap();
        match rule {
            CursorRule::Respect => {
                // Entry 1 handled: nothing can go (segment 1 holds 2..=5 too).
                assert_eq!(wal.first_seq(), 1);
                let held = auto.held_back.clone().unwrap();
                assert_eq!((held.cursor.as_str(), held.seq), ("fast", 1));
                assert!(held.segments >= 4, "{held:?}");
                // The consumers move on: the next application removes up to them.
                wal.set_cursor("fast", 12).unwrap();
                wal.set_cursor("slow", 20).unwrap();
                let report = wal.apply_retention().unwrap();
                assert_eq!(report.first_seq, 11, "{report:?}");
                assert_eq!(report.held_back.unwrap().cursor, "fast");
                assert!(wal.iter_from(13).unwrap().next().is_some());
            }
            CursorRule::Ignore => {
                assert!(auto.held_back.is_none());
                assert_eq!(wal.first_seq(), 26); // only the active segment left
                                                 // The slow consumer finds out that it missed entries.
                assert!(matches!(
                    wal.iter_from(2).err(),
                    Some(Error::SeqOutOfRange { .. })
                ));
            }
        }
    }
}

/// `rotate` applies retention as a rotation by an append does: what it sealed
/// can go at once (a compaction's `rotate` then needs no `truncate_front`).
#[test]
fn rotate_applies_retention() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default().retention(Retention::default().max_bytes(1));
    let wal = open(dir.path(), options);
    fill(&wal, 3, 0);
    assert_eq!(wal.first_seq(), 1);
    wal.rotate().unwrap();
    assert_eq!(wal.first_seq(), 4);
    let report = wal.last_retention().unwrap().unwrap();
    assert_eq!((report.entries_removed, report.bytes_removed), (3, 3 * 18));
    assert_eq!(report.removed[0].reason, RetentionReason::Bytes);
}

/// A log written only through receipts (the syncer thread leads its groups and
/// rotates) applies retention too: in the submitting threads.
#[test]
fn submitters_apply_retention() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default()
        .max_segment_size(100)
        .retention(Retention::default().max_bytes(200));
    let wal = open(dir.path(), options);
    let mut last = None;
    for n in 0..60u8 {
        last = Some(wal.submit(Op::Put, b"k", &[n]).unwrap());
    }
    last.unwrap().wait().unwrap();
    wal.submit(Op::Put, b"k", &[60]).unwrap().wait().unwrap();
    let totals = wal.retention_totals();
    assert!(totals.segments_removed > 0, "{totals:?}");
    assert_eq!(wal.metrics().retention, totals);
    let kept: u64 = wal.segments().iter().map(|s| s.bytes).sum();
    assert!(kept <= 200 + 100, "{kept}");
    check_entries(&wal, "submitted");
}

#[test]
fn a_read_only_view_does_not_apply_retention() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default()
        .max_segment_size(100)
        .retention(Retention::default().max_bytes(1));
    {
        let wal = open(dir.path(), Options::default().max_segment_size(100));
        fill(&wal, 20, 0);
    }
    let view = open(dir.path(), options.read_only());
    assert!(matches!(view.apply_retention(), Err(Error::ReadOnly)));
    assert_eq!(view.first_seq(), 1);
}

/// Appenders on four threads with automatic retention, a slower consumer that
/// follows the log under a cursor, and explicit applications, all at once: the
/// consumer never finds an entry gone ahead of its cursor (`Respect`), the
/// first entry is never past the cursor, and nothing deadlocks.
#[test]
fn appenders_a_consumer_and_applications_at_once_never_pass_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default()
        .max_segment_size(2048)
        .sync_policy(SyncPolicy::Manual)
        .retention(Retention::default().max_bytes(8 << 10));
    let wal = Arc::new(open(dir.path(), options));
    wal.set_cursor("consumer", 0).unwrap();
    let deadline = Instant::now() + Duration::from_millis(1500);
    std::thread::scope(|scope| {
        for t in 0..4u8 {
            let wal = &wal;
            scope.spawn(move || {
                while Instant::now() < deadline {
                    wal.append(Op::Put, &[t], &[t; 40]).unwrap();
                }
            });
        }
        let consumer = scope.spawn(|| {
            let mut handled = 0u64;
            while Instant::now() < deadline {
                // Entries after the cursor are never removed: this never fails.
                let batch: Vec<u64> = wal
                    .iter_from(handled + 1)
                    .unwrap_or_else(|err| panic!("after {handled}: {err}"))
                    .visibility(Visibility::Written) // under Manual: what was written
                    .take(20)
                    .map(|entry| entry.unwrap().seq())
                    .collect();
                if let Some(&last) = batch.last() {
                    assert_eq!(batch[0], handled + 1);
                    handled = last;
                    wal.set_cursor("consumer", handled).unwrap();
                }
                // Slower than the appenders: it falls behind, and holds retention.
                std::thread::sleep(Duration::from_millis(20));
            }
            handled
        });
        let mut applications = 0;
        while Instant::now() < deadline {
            wal.apply_retention().unwrap();
            applications += 1;
            let first = wal.first_seq();
            let cursor = wal.cursor("consumer").unwrap();
            assert!(first <= cursor + 1, "first {first}, cursor {cursor}");
            std::thread::sleep(Duration::from_millis(10));
        }
        let handled = consumer.join().unwrap();
        assert!(
            applications > 0 && handled > 0,
            "applications {applications}, handled {handled}"
        );
    });
    let totals = wal.retention_totals();
    assert_eq!(totals.failures, 0);
    assert!(
        totals.segments_removed > 0 && totals.held_back > 0,
        "{totals:?}"
    );
}
