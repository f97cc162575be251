//! The store's operations, bad input, concurrency and Go-written logs.

use std::collections::BTreeMap;
use std::sync::Arc;

use flashlog_kv::{Db, DbOptions, Error};
use flashlog_wal::{Op, Options, Wal};

use crate::common::{contents, copy_dir, small, Model};

#[test]
fn put_get_delete_contains_len_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), DbOptions::default()).unwrap();
    assert!(db.is_empty());
    db.put(b"a", b"1").unwrap();
    db.put(b"b", b"").unwrap();
    db.put(b"a", b"2").unwrap();
    assert_eq!(db.get(b"a").unwrap(), Some(b"2".to_vec()));
    assert_eq!(db.get(b"b").unwrap(), Some(Vec::new()));
    assert!(db.contains(b"b"));
    assert!(db.delete(b"b").unwrap());
    assert!(!db.delete(b"b").unwrap(), "deleting an absent key says so");
    assert!(!db.contains(b"b"));
    assert_eq!(db.get(b"nope").unwrap(), None);
    assert_eq!(db.len(), 1);
    let stats = db.stats();
    assert_eq!(
        (stats.keys, stats.entries, stats.first_seq, stats.last_seq),
        (1, 4, 1, 4)
    );
    assert_eq!(stats.live_bytes, 19);
    assert_eq!(stats.log_bytes, 19 + 18 + 19 + 18);
    assert_eq!(stats.dead_bytes, stats.log_bytes - 19);
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), DbOptions::default()).unwrap();
    assert_eq!(contents(&db), Model::from([(b"a".to_vec(), b"2".to_vec())]));
    assert_eq!(db.stats(), stats);
}

#[test]
fn scan_ranges_and_prefixes_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small(300)).unwrap();
    for i in (0..600u32).rev() {
        db.put(format!("k{i:04}").as_bytes(), &i.to_le_bytes())
            .unwrap();
    }
    db.put(&[b'k', 0xff], b"high").unwrap();
    let keys =
        |scan: flashlog_kv::Scan<'_>| -> Vec<Vec<u8>> { scan.map(|kv| kv.unwrap().0).collect() };
    let all = keys(db.scan(..));
    assert_eq!(all.len(), 601);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "ordered");
    let some = keys(db.scan(&b"k0100"[..]..=&b"k0399"[..]));
    assert_eq!(some.len(), 300);
    assert_eq!(some[0], b"k0100");
    assert_eq!(some[299], b"k0399");
    assert_eq!(keys(db.scan_prefix(b"k05")).len(), 100);
    assert_eq!(keys(db.scan_prefix(b"k")).len(), 601);
    assert_eq!(keys(db.scan_prefix(&[b'k', 0xff])), [vec![b'k', 0xff]]);
    assert!(keys(db.scan(&b"z"[..]..&b"a"[..])).is_empty());
    let (key, value) = db.scan_prefix(b"k0007").next().unwrap().unwrap();
    assert_eq!(
        (key, value),
        (b"k0007".to_vec(), 7u32.to_le_bytes().to_vec())
    );
}

#[test]
fn bad_input_gets_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("db"), small(4096)).unwrap();
    assert!(matches!(db.put(b"", b"v"), Err(Error::EmptyKey)));
    assert!(matches!(db.delete(b""), Err(Error::EmptyKey)));
    let err = db.put(b"key", &[0; 5000]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                key_len: 3,
                value_len: 5000,
                len: 5020,
                max: 4096
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("5020-byte entry"), "{err}");
    assert_eq!(db.len(), 0);

    std::fs::write(dir.path().join("report.pdf"), b"%PDF").unwrap();
    let err = Db::open(dir.path(), DbOptions::default()).unwrap_err();
    assert!(
        matches!(err, Error::NotALog { ref found, .. } if found == "report.pdf"),
        "{err:?}"
    );
    assert!(
        !dir.path().join("segment-0001.log").exists(),
        "nothing was created"
    );
    let err = Db::open(dir.path().join("report.pdf"), DbOptions::default()).unwrap_err();
    assert!(matches!(err, Error::NotALog { .. }), "{err:?}");
}

#[test]
fn second_open_is_locked_and_read_only_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), DbOptions::default()).unwrap();
    db.put(b"k", b"v").unwrap();
    let err = Db::open(dir.path(), DbOptions::default()).unwrap_err();
    assert!(
        matches!(err, Error::Wal(flashlog_wal::Error::Locked { .. })),
        "{err:?}"
    );
    let ro = Db::open(dir.path(), DbOptions::default().read_only()).unwrap();
    assert_eq!(ro.get(b"k").unwrap(), Some(b"v".to_vec()));
    let err = ro.put(b"k", b"w").unwrap_err();
    assert!(
        matches!(err, Error::Wal(flashlog_wal::Error::ReadOnly)),
        "{err:?}"
    );
    assert_eq!(ro.get(b"k").unwrap(), Some(b"v".to_vec()));
}

#[test]
fn concurrent_writers_and_a_compaction_keep_every_last_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), small(2048)).unwrap());
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                for round in 0..60u32 {
                    for key in 0..5u8 {
                        db.put(&[t, key], &round.to_le_bytes()).unwrap();
                        // Every thread also races on one shared key.
                        db.put(b"shared", &[t]).unwrap();
                    }
                    if round % 7 == 0 {
                        db.delete(&[t, 0]).unwrap();
                    }
                }
            })
        })
        .collect();
    let compactor = {
        let db = Arc::clone(&db);
        std::thread::spawn(move || {
            for _ in 0..5 {
                db.compact().unwrap();
            }
        })
    };
    for thread in threads {
        thread.join().unwrap();
    }
    compactor.join().unwrap();
    let mut expected = Model::new();
    for t in 0..4u8 {
        for key in 0..5u8 {
            expected.insert(vec![t, key], 59u32.to_le_bytes().to_vec());
        }
    }
    let got = contents(&db);
    let shared = got.get(&b"shared"[..]).unwrap().clone();
    expected.insert(b"shared".to_vec(), shared);
    assert_eq!(got, expected);
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), small(2048)).unwrap();
    assert_eq!(
        contents(&db),
        expected,
        "the index ends at each key's last entry in log order"
    );
}

#[test]
fn go_written_log_opens_as_a_store() {
    let fixtures = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../flashlog-wal/tests/fixtures"
    );
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &std::path::Path::new(fixtures).join("go-basic/wal"),
        dir.path(),
    );
    let wal = Wal::open(dir.path(), Options::default().read_only()).unwrap();
    let mut expected = BTreeMap::new();
    for entry in wal.iter_from(1).unwrap() {
        let entry = entry.unwrap();
        match entry.op() {
            Op::Put => expected.insert(entry.key().to_vec(), entry.value().to_vec()),
            Op::Delete => expected.remove(entry.key()),
        };
    }
    drop(wal);
    assert!(expected.len() > 100);
    let db = Db::open(dir.path(), small(4096)).unwrap();
    assert_eq!(contents(&db), expected);
    db.compact().unwrap();
    assert_eq!(contents(&db), expected);
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), small(4096)).unwrap();
    assert_eq!(contents(&db), expected);
}
