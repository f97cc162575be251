//! Compaction: disk use tracks live data, and automatic compaction runs.

use flashlog_kv::{AutoCompact, Db, DbOptions};
use flashlog_wal::Options;

use crate::common::{contents, small, Model};

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
