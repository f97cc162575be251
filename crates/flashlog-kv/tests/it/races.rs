//! The user's reproductions of issue 11 as bounded stress tests: writers and a
//! compaction racing with no pause injected (the deterministic versions, which
//! pause a thread in the gap, are unit tests in `src/compact.rs`).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flashlog_kv::{AutoCompact, Db, DbOptions};
use flashlog_wal::Options;

use crate::common::disk_and_tmpfs;

const WRITERS: u32 = 8;

fn options(auto_compact: AutoCompact) -> DbOptions {
    DbOptions::default()
        .wal(Options::default().max_segment_size(4096))
        .auto_compact(auto_compact)
}

/// How long each race runs on each file system: a second in CI, a minute with
/// `FLASHLOG_LONG=1`.
fn race_time() -> Duration {
    if std::env::var_os("FLASHLOG_LONG").is_some() {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(1)
    }
}

/// Issue 11, item 1: 8 threads put unique keys while one thread compacts in a
/// loop; every acknowledged key must be readable, open and after reopen. (Before
/// the fix: some keys gave `IndexMismatch`, then `None` after reopen.)
#[test]
fn regression_unique_puts_survive_a_compaction_loop() {
    for (_, dir) in disk_and_tmpfs() {
        unique_puts_and_a_compaction_loop(dir.path());
    }
}

fn unique_puts_and_a_compaction_loop(dir: &Path) {
    let db = Arc::new(Db::open(dir, options(AutoCompact::Never)).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let compactor = {
        let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut compactions = 0u64;
            while !stop.load(Ordering::Relaxed) {
                db.compact().unwrap();
                compactions += 1;
            }
            compactions
        })
    };
    let deadline = Instant::now() + race_time();
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                let mut n = 0u32;
                while Instant::now() < deadline {
                    db.put(format!("{t}:{n}").as_bytes(), &n.to_le_bytes())
                        .unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let counts: Vec<u32> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    let compactions = compactor.join().unwrap();
    let check = |db: &Db, when: &str| {
        let mut lost = Vec::new();
        for (t, &count) in counts.iter().enumerate() {
            for n in 0..count {
                let key = format!("{t}:{n}");
                match db.get(key.as_bytes()) {
                    Ok(Some(value)) if value == n.to_le_bytes() => {}
                    other => lost.push(format!("{key}: {other:?}")),
                }
            }
        }
        let total: u32 = counts.iter().sum();
        assert!(
            lost.is_empty(),
            "{when}: {} of {total} acknowledged keys lost ({compactions} compactions): {:?}",
            lost.len(),
            &lost[..lost.len().min(10)]
        );
    };
    check(&db, "open");
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir, options(AutoCompact::Never)).unwrap();
    check(&db, "after reopen");
    assert_eq!(db.len(), counts.iter().sum::<u32>() as usize);
}

/// Issue 11, item 1 under automatic compaction: 8 threads overwrite their own 50
/// keys; each key must end at its last acknowledged value.
#[test]
fn regression_overwrites_keep_their_last_value_under_auto_compaction() {
    for (_, dir) in disk_and_tmpfs() {
        overwrites_under_auto_compaction(dir.path());
    }
}

fn overwrites_under_auto_compaction(dir: &Path) {
    let db = Arc::new(Db::open(dir, options(AutoCompact::DeadShare(0.5))).unwrap());
    let deadline = Instant::now() + race_time();
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                let mut last = vec![None; 50];
                let mut n = 0u32;
                while Instant::now() < deadline {
                    let key = (n % 50) as usize;
                    db.put(format!("{t}:{key}").as_bytes(), &n.to_le_bytes())
                        .unwrap();
                    last[key] = Some(n);
                    n += 1;
                }
                last
            })
        })
        .collect();
    let last: Vec<Vec<Option<u32>>> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let check = |db: &Db, when: &str| {
        for (t, keys) in last.iter().enumerate() {
            for (key, n) in keys.iter().enumerate() {
                let got = db.get(format!("{t}:{key}").as_bytes()).unwrap();
                assert_eq!(
                    got,
                    n.map(|n| n.to_le_bytes().to_vec()),
                    "{when}: key {t}:{key}"
                );
            }
        }
    };
    check(&db, "open");
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir, options(AutoCompact::DeadShare(0.5))).unwrap();
    check(&db, "after reopen");
}

/// Issue 11, item 6: `get` and `scan` racing a compaction loop never fail and
/// never give another key's value. Before the fix in flashlog-wal, `Wal::read` of
/// an entry whose segment `truncate_front` removed between finding the entry and
/// opening its file gave `Io { op: "open", NotFound }` instead of `SeqOutOfRange`,
/// which the store follows to the key's copy.
#[test]
fn regression_reads_racing_compaction_never_fail() {
    for (_, dir) in disk_and_tmpfs() {
        reads_racing_compaction(dir.path());
    }
}

fn reads_racing_compaction(dir: &Path) {
    let db = Arc::new(Db::open(dir, options(AutoCompact::Never)).unwrap());
    const KEYS: u32 = 200;
    let key = |k: u32| format!("key{k:03}").into_bytes();
    for k in 0..KEYS {
        db.put(&key(k), &key(k)).unwrap();
    }
    let deadline = Instant::now() + race_time();
    let mut threads = Vec::new();
    for t in 0..2u32 {
        let db = Arc::clone(&db);
        threads.push(std::thread::spawn(move || {
            let mut n = t;
            while Instant::now() < deadline {
                // The value starts with the key: a read can tell it is the key's.
                let value = [key(n % KEYS), n.to_le_bytes().to_vec()].concat();
                db.put(&key(n % KEYS), &value).unwrap();
                n += 2;
            }
        }));
    }
    {
        let db = Arc::clone(&db);
        threads.push(std::thread::spawn(move || {
            while Instant::now() < deadline {
                db.compact().unwrap();
            }
        }));
    }
    for t in 0..2u32 {
        let db = Arc::clone(&db);
        threads.push(std::thread::spawn(move || {
            let mut n = t * 7919;
            while Instant::now() < deadline {
                let k = n % KEYS;
                let value = db
                    .get(&key(k))
                    .unwrap_or_else(|err| panic!("get {k}: {err:?}"));
                assert!(
                    value.unwrap().starts_with(&key(k)),
                    "get {k}: another key's value"
                );
                n = n.wrapping_mul(31).wrapping_add(17);
            }
        }));
    }
    {
        let db = Arc::clone(&db);
        threads.push(std::thread::spawn(move || {
            while Instant::now() < deadline {
                let mut keys = 0;
                for pair in db.scan(..) {
                    let (k, value) = pair.unwrap_or_else(|err| panic!("scan: {err:?}"));
                    assert!(value.starts_with(&k), "scan: another key's value");
                    keys += 1;
                }
                assert_eq!(keys, KEYS);
            }
        }));
    }
    for thread in threads {
        thread.join().unwrap();
    }
}
