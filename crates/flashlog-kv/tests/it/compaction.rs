//! Compaction: disk use tracks live data, and automatic compaction runs.

use flashlog_kv::{AutoCompact, Db, DbOptions};
use flashlog_wal::{Op, Options, RecoveryMode, Wal};

use crate::common::{assert_go_layout, contents, copy_dir, fixtures, small, Model};
use flashlog_testkit::{faulty_disk_options, AfterFailure, Counting, FaultyDisk, TraceCapture};

fn fill(db: &Db, rounds: u32, keys: u32, model: &mut Model) {
    for round in 0..rounds {
        for key in 0..keys {
            let value = vec![round as u8; 40];
            db.put(format!("key{key:03}").as_bytes(), &value).unwrap();
            model.insert(format!("key{key:03}").into_bytes(), value);
        }
        let gone = format!("key{:03}", round % keys);
        db.delete(gone.as_bytes()).unwrap();
        model.remove(gone.as_bytes());
    }
}

#[test]
fn compaction_keeps_contents_and_reclaims_dead_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small(1024)).unwrap();
    let mut model = Model::new();
    fill(&db, 30, 20, &mut model);
    let before = db.stats();
    assert!(before.segments > 20);
    let mut calls = 0;
    let report = db
        .compact_with_progress(|p| {
            calls += 1;
            assert!(p.bytes_read <= p.bytes_total);
        })
        .unwrap();
    assert!(calls >= 1);
    assert_eq!(report.bytes_before, before.log_bytes);
    assert!(report.segments_removed >= before.segments - 2, "{report:?}");
    let after = db.stats();
    assert_eq!(after.log_bytes, report.bytes_after);
    // What is left: the live values plus at most the old active segment and the
    // delete entries and overwrites in it.
    assert!(after.log_bytes <= after.live_bytes + 2 * 1024, "{after:?}");
    assert_eq!(after.keys, before.keys);
    assert_eq!(after.live_bytes, before.live_bytes);
    assert_eq!(contents(&db), model);
    // Writes go on after a compaction, and a second one is fine.
    fill(&db, 3, 20, &mut model);
    db.compact().unwrap();
    assert_eq!(contents(&db), model);
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), small(1024)).unwrap();
    assert_eq!(contents(&db), model);
    assert_eq!(db.stats().live_bytes, after.live_bytes);
}

#[test]
fn compaction_reclaims_dead_entries_of_the_active_segment_too() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), DbOptions::default()).unwrap();
    db.put(b"a", b"1").unwrap();
    db.put(b"a", b"2").unwrap();
    db.put(b"b", b"3").unwrap();
    assert!(db.delete(b"b").unwrap());
    let report = db.compact().unwrap();
    // The one segment is sealed, "a"'s latest put copied, the segment removed.
    assert_eq!((report.entries_copied, report.segments_removed), (1, 1));
    assert_eq!(report.bytes_after, 19);
    assert_eq!(db.get(b"a").unwrap(), Some(b"2".to_vec()));
    assert_eq!(db.get(b"b").unwrap(), None);
    let again = db.compact().unwrap();
    assert_eq!(again.bytes_after, 19, "a compacted store stays compact");
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), DbOptions::default()).unwrap();
    assert_eq!((db.len(), db.get(b"a").unwrap()), (1, Some(b"2".to_vec())));
}

#[test]
fn automatic_compaction_bounds_disk_use() {
    let dir = tempfile::tempdir().unwrap();
    let options = DbOptions::default()
        .wal(Options::default().max_segment_size(2048))
        .auto_compact(AutoCompact::DeadShare(0.5));
    let db = Db::open(dir.path(), options.clone()).unwrap();
    let mut model = Model::new();
    fill(&db, 200, 10, &mut model);
    let stats = db.stats();
    // 200 rounds of 10 puts of 49 bytes is ~100 KB written; live data is ~500 B.
    assert!(stats.log_bytes < 12 * 2048, "{stats:?}");
    assert_eq!(contents(&db), model);
    drop(db);
    let db = Db::open(dir.path(), options).unwrap();
    assert_eq!(contents(&db), model);
}

#[test]
fn invalid_dead_share_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let options = DbOptions::default().auto_compact(AutoCompact::DeadShare(0.0));
    assert!(matches!(
        Db::open(dir.path(), options),
        Err(flashlog_kv::Error::InvalidOptions(_))
    ));
}

/// Issue 12, item 7: an 8,000-byte value written under 64 KiB segments, the store
/// reopened with 4 KiB ones. Every compaction failed (`entry of 8020 bytes exceeds
/// the limit of 4096 bytes`), the automatic ones silently, and the log grew without
/// bound. The copy of an entry larger than the limit now gets a segment of its own.
#[test]
fn regression_value_above_a_reopened_smaller_segment_size_is_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let big = vec![0xb1; 8000];
    let mut model = Model::new();
    {
        let db = Db::open(dir.path(), small(64 << 10)).unwrap();
        db.put(b"big", &big).unwrap();
        model.insert(b"big".to_vec(), big.clone());
        fill(&db, 100, 20, &mut model);
        db.close().unwrap();
    }
    let options = DbOptions::default()
        .wal(Options::default().max_segment_size(4096))
        .auto_compact(AutoCompact::DeadShare(0.5));
    let db = Db::open(dir.path(), options.clone()).unwrap();
    // About 1 MB of overwrites: automatic compactions must keep up.
    let mut largest = 0;
    for round in 0..10 {
        fill(&db, 100, 20, &mut model);
        let stats = db.stats();
        largest = largest.max(stats.log_bytes);
        assert_eq!(
            stats.last_compaction_error, None,
            "round {round}: {stats:?}"
        );
    }
    let stats = db.stats();
    assert!(
        stats.compactions > 0 && stats.compaction_failures == 0,
        "{stats:?}"
    );
    assert!(
        largest < 100 << 10,
        "the log grew to {largest} bytes: {stats:?}"
    );

    let report = db.compact().unwrap();
    assert!(report.entries_copied >= 1, "{report:?}");
    let after = db.stats();
    assert_eq!(after.dead_bytes, 0, "{after:?}");
    assert_eq!(after.log_bytes, after.live_bytes);
    assert_eq!(db.get(b"big").unwrap(), Some(big.clone()));
    assert_eq!(contents(&db), model);
    // Writes go on after it, and rotate out of the big entry's segment.
    db.put(b"after", b"compaction").unwrap();
    model.insert(b"after".to_vec(), b"compaction".to_vec());
    db.close().unwrap();
    drop(db);

    let bytes = assert_go_layout(dir.path(), 4096);
    assert_eq!(
        bytes,
        after.live_bytes + 17 + 5 + 10,
        "disk use is the live data"
    );
    let db = Db::open(
        dir.path(),
        options.wal(
            Options::default()
                .max_segment_size(4096)
                .recovery_mode(RecoveryMode::AbsoluteConsistency),
        ),
    )
    .unwrap();
    assert_eq!(contents(&db), model);
    db.compact().unwrap();
    assert_eq!(contents(&db), model);
}

/// Issue 12, item 7, with the Go-written fixture (written with 4096-byte segments)
/// reopened with 100- and 1000-byte ones: compaction failed on its first entry
/// above the new limit.
#[test]
fn regression_go_log_reopened_with_smaller_segments_is_compacted() {
    for max in [100, 1000] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&fixtures().join("go-basic/wal"), dir.path());
        let mut expected = Model::new();
        {
            let wal = Wal::open(dir.path(), Options::default().read_only()).unwrap();
            for entry in wal.iter_from(1).unwrap() {
                let entry = entry.unwrap();
                match entry.op() {
                    Op::Put => expected.insert(entry.key().to_vec(), entry.value().to_vec()),
                    Op::Delete => expected.remove(entry.key()),
                };
            }
        }
        let db = Db::open(dir.path(), small(max)).unwrap();
        assert_eq!(contents(&db), expected, "{max}");
        let report = db.compact().unwrap_or_else(|err| panic!("{max}: {err}"));
        assert!(report.segments_removed >= 12, "{max}: {report:?}");
        assert_eq!(contents(&db), expected, "{max}");
        let stats = db.stats();
        assert_eq!(stats.log_bytes, stats.live_bytes, "{max}: {stats:?}");
        db.close().unwrap();
        drop(db);
        assert_eq!(assert_go_layout(dir.path(), max), stats.live_bytes, "{max}");
        let db = Db::open(dir.path(), small(max)).unwrap();
        assert_eq!(contents(&db), expected, "{max}");
    }
}

/// An automatic compaction has no caller to return its error to: the write that
/// ran it succeeds, and the error is kept for `stats` and traced as a warning.
#[test]
fn an_automatic_compaction_failure_is_kept_reported_and_traced() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::new();
    {
        let db = Db::open(dir.path(), small(4096)).unwrap();
        fill(&db, 50, 10, &mut model);
        db.close().unwrap();
    }
    // Counting fsyncs only: the first from now is the put's own, the second the
    // compaction's (sealing the active segment), which fails with EIO.
    let fs = FaultyDisk::failing(0, Counting::SyncsOnly, AfterFailure::Proceed);
    let options = DbOptions::default()
        .wal(faulty_disk_options(&fs).max_segment_size(4096))
        .auto_compact(AutoCompact::DeadShare(0.5));
    let db = Db::open(dir.path(), options).unwrap();
    let stats = db.stats();
    assert!(stats.dead_bytes * 2 > stats.log_bytes, "{stats:?}");
    assert_eq!(
        (
            stats.compactions,
            stats.compaction_failures,
            stats.last_compaction_error
        ),
        (0, 0, None)
    );
    fs.fail_after(2);
    let warnings = TraceCapture::at(tracing::Level::WARN);
    tracing::subscriber::with_default(warnings.clone(), || {
        db.put(b"key000", b"acknowledged").unwrap();
    });
    assert!(fs.failed(), "the compaction ran and hit the failure");
    model.insert(b"key000".to_vec(), b"acknowledged".to_vec());

    let stats = db.stats();
    assert_eq!((stats.compactions, stats.compaction_failures), (1, 1));
    let error = stats.last_compaction_error.expect("the error is kept");
    assert!(
        error.contains("segment-") && error.contains("os error 5"),
        "{error}"
    );
    // The log traces its poisoning (an error), the store its failed compaction.
    assert!(
        warnings.contains("stopped accepting writes"),
        "{warnings:?}"
    );
    let traced: Vec<String> = warnings
        .lines()
        .into_iter()
        .filter(|line| line.contains("compaction"))
        .collect();
    assert_eq!(traced.len(), 1, "{traced:?}");
    assert!(
        traced[0].contains("automatic compaction failed") && traced[0].contains("os error 5"),
        "{traced:?}"
    );
    // The contents are intact; the log refuses writes after the failed fsync.
    assert_eq!(contents(&db), model);
    assert!(db.put(b"key001", b"later").is_err());
    drop(db);
    let db = Db::open(dir.path(), small(4096)).unwrap();
    assert_eq!(contents(&db), model);
    assert_eq!(
        db.stats().compaction_failures,
        0,
        "kept until the store closes"
    );
}

/// Under `SyncPolicy::Manual` the store's puts may not be synced when it
/// compacts: the compaction must still copy every live value it indexed, not
/// only those the log's durable edge covers.
#[test]
fn regression_compaction_under_manual_sync_keeps_unsynced_puts() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Options::default()
        .max_segment_size(2048)
        .sync_policy(flashlog_wal::SyncPolicy::Manual);
    let db = Db::open(
        dir.path(),
        DbOptions::default()
            .wal(wal)
            .auto_compact(AutoCompact::Never),
    )
    .unwrap();
    let mut model = Model::new();
    fill(&db, 6, 20, &mut model);
    db.compact().unwrap();
    for (key, value) in &model {
        assert_eq!(db.get(key).unwrap().as_ref(), Some(value), "{key:?}");
    }
    db.close().unwrap();
    let db = Db::open(dir.path(), DbOptions::default()).unwrap();
    for (key, value) in &model {
        assert_eq!(
            db.get(key).unwrap().as_ref(),
            Some(value),
            "{key:?} after reopen"
        );
    }
}

/// `Db::metrics`: the store's figures beside its log's.
#[test]
fn metrics_show_the_store_beside_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small(2048).auto_compact(AutoCompact::Never)).unwrap();
    let mut model = Model::new();
    fill(&db, 3, 10, &mut model);
    let before = db.metrics();
    assert_eq!(before.store.keys, model.len() as u64);
    assert_eq!(before.store.compactions, 0);
    assert_eq!(before.store.compaction_time, std::time::Duration::ZERO);
    // 3 rounds of 10 puts and a delete.
    assert_eq!(before.log.entries_appended, 33);
    assert!(before.log.fsyncs >= 1 && before.log.append_latency.count == 33);
    assert!(before.store.dead_bytes > 0);
    db.compact().unwrap();
    let after = db.metrics();
    assert_eq!(after.store.compactions, 1);
    assert!(after.store.compaction_time > std::time::Duration::ZERO);
    assert!(after.store.dead_bytes < before.store.dead_bytes);
    // The compaction's copies went through the log too.
    assert!(after.log.entries_appended > before.log.entries_appended);
    assert!(after.log.truncations >= 1);
}
