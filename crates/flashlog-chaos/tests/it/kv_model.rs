//! `flashlog_kv::Db` against a `BTreeMap` model: random put / delete / get /
//! compact operations with reopens, drops without close and crashes in between
//! (a crash copies the store's files as they are at that moment, what a killed
//! process leaves, and reopens the copy). Every key's value is checked after each
//! operation.

use std::collections::BTreeMap;
use std::path::Path;

use flashlog_kv::{AutoCompact, Db, DbOptions};
use flashlog_wal::{Options, SyncPolicy};
use proptest::prelude::*;
use tempfile::TempDir;

#[derive(Debug, Clone)]
enum Action {
    Put(u8, u16),
    Delete(u8),
    Get(u8),
    Compact,
    Reopen,
    DropWithoutClose,
    Crash,
}

const KEYS: u8 = 12;

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        8 => (0..KEYS, 0u16..300).prop_map(|(k, v)| Action::Put(k, v)),
        3 => (0..KEYS).prop_map(Action::Delete),
        2 => (0..KEYS).prop_map(Action::Get),
        1 => Just(Action::Compact),
        1 => Just(Action::Reopen),
        1 => Just(Action::DropWithoutClose),
        1 => Just(Action::Crash),
    ]
}

fn open(dir: &Path) -> Db {
    let wal = Options::default()
        .max_segment_size(2048)
        .sync_policy(SyncPolicy::Manual);
    let options = DbOptions::default()
        .wal(wal)
        .auto_compact(AutoCompact::DeadShare(0.5));
    Db::open(dir, options).expect("open the store")
}

fn key(k: u8) -> Vec<u8> {
    format!("key-{k}").into_bytes()
}

fn check(db: &Db, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
    assert_eq!(db.len(), model.len(), "number of keys");
    for k in 0..KEYS {
        let key = key(k);
        assert_eq!(
            db.get(&key).expect("get").as_ref(),
            model.get(&key),
            "key {k}"
        );
    }
}

fn run(actions: &[Action]) {
    let mut tmp = tempfile::tempdir().unwrap();
    let mut db = Some(open(tmp.path()));
    let mut model = BTreeMap::new();
    for (step, action) in actions.iter().enumerate() {
        let store = db.as_ref().expect("open");
        match action {
            Action::Put(k, len) => {
                let value =
                    flashlog_chaos::payload::value_for(step as u64 * 1000 + u64::from(*len));
                store.put(&key(*k), &value).expect("put");
                model.insert(key(*k), value);
            }
            Action::Delete(k) => {
                let existed = store.delete(&key(*k)).expect("delete");
                assert_eq!(existed, model.remove(&key(*k)).is_some(), "delete's answer");
            }
            Action::Get(k) => {
                assert_eq!(
                    store.get(&key(*k)).expect("get").as_ref(),
                    model.get(&key(*k))
                );
            }
            Action::Compact => {
                store.compact().expect("compact");
            }
            Action::Reopen => {
                let store = db.take().expect("open");
                store.close().expect("close");
                drop(store);
                db = Some(open(tmp.path()));
            }
            Action::DropWithoutClose => {
                drop(db.take());
                db = Some(open(tmp.path()));
            }
            Action::Crash => {
                let copy = copy_files(tmp.path());
                drop(db.take());
                tmp = copy;
                db = Some(open(tmp.path()));
            }
        }
        check(db.as_ref().expect("open"), &model);
    }
}

/// Every file of `dir` but the lock, as a killed process leaves them.
fn copy_files(dir: &Path) -> TempDir {
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != flashlog_wal::LOCK_FILE {
            std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
        }
    }
    copy
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn store_matches_the_btreemap_model(actions in prop::collection::vec(action(), 1..60)) {
        run(&actions);
    }
}
