//! A compaction interrupted by a crash at each of its file operations loses
//! nothing and duplicates nothing.

use std::sync::Arc;

use flashlog_kv::{AutoCompact, Db, DbOptions};
use flashlog_testkit::{FaultyDisk, FaultyDiskFs};
use flashlog_wal::Options;

use crate::common::{contents, copy_dir, small, Model};

/// A store over several small segments with overwrites and deletes; its model.
fn build(dir: &std::path::Path) -> Model {
    let db = Db::open(dir, small(512)).unwrap();
    let mut model = Model::new();
    for i in 0..120u32 {
        let key = format!("k{}", i % 17).into_bytes();
        let value = vec![i as u8; (i % 23) as usize];
        db.put(&key, &value).unwrap();
        model.insert(key, value);
        if i % 5 == 0 {
            let gone = format!("k{}", (i * 7) % 17).into_bytes();
            db.delete(&gone).unwrap();
            model.remove(&gone);
        }
    }
    db.close().unwrap();
    model
}

#[test]
fn compaction_crashing_at_each_step_loses_nothing() {
    let original = tempfile::tempdir().unwrap();
    let model = build(original.path());
    let mut failures = 0;
    for step in 1.. {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(original.path(), dir.path());
        let fs = FaultyDisk::sticky();
        let options = DbOptions::default()
            .wal(
                Options::default()
                    .max_segment_size(512)
                    .fs(Arc::new(FaultyDiskFs::on_disk(&fs))),
            )
            .auto_compact(AutoCompact::Never);
        let db = Db::open(dir.path(), options).unwrap();
        fs.fail_after(step);
        let result = db.compact();
        let crashed = fs.failed();
        drop(db);
        if !crashed {
            result.unwrap();
            let db = Db::open(dir.path(), small(512)).unwrap();
            assert_eq!(contents(&db), model, "after a complete compaction");
            assert!(db.segments().len() <= 3);
            break;
        }
        failures += 1;
        assert!(
            result.is_err(),
            "step {step}: a failed operation is reported"
        );
        let db = Db::open(dir.path(), small(512)).unwrap();
        assert_eq!(contents(&db), model, "step {step}: reopen after the crash");
        let stats = db.stats();
        assert_eq!(stats.live_bytes, {
            let live: u64 = model
                .iter()
                .map(|(k, v)| 17 + (k.len() + v.len()) as u64)
                .sum();
            live
        });
        // The interrupted compaction can be finished.
        db.compact().unwrap();
        assert_eq!(
            contents(&db),
            model,
            "step {step}: compaction after the crash"
        );
        db.close().unwrap();
        drop(db);
        let db = Db::open(dir.path(), small(512)).unwrap();
        assert_eq!(
            contents(&db),
            model,
            "step {step}: reopen after compacting again"
        );
    }
    assert!(
        failures > 5,
        "the compaction had only {failures} file operations"
    );
}
