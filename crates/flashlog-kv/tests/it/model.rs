//! The store against an in-memory model, with reopens and compactions.

use proptest::prelude::*;

use flashlog_kv::Db;

use crate::common::{contents, small, Model};

#[derive(Debug, Clone)]
enum Step {
    Put(u8, Vec<u8>),
    Delete(u8),
    Reopen,
    Compact,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u8..24, proptest::collection::vec(any::<u8>(), 0..60)).prop_map(|(k, v)| Step::Put(k, v)),
        2 => (0u8..24).prop_map(Step::Delete),
        1 => Just(Step::Reopen),
        1 => Just(Step::Compact),
    ]
}

fn key(k: u8) -> Vec<u8> {
    format!("key-{k}").into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn reopen_gives_the_model(steps in proptest::collection::vec(step(), 1..120)) {
        let dir = tempfile::tempdir().unwrap();
        let options = small(400);
        let mut db = Db::open(dir.path(), options.clone()).unwrap();
        let mut model = Model::new();
        for step in steps {
            match step {
                Step::Put(k, v) => {
                    db.put(&key(k), &v).unwrap();
                    model.insert(key(k), v);
                }
                Step::Delete(k) => {
                    let existed = db.delete(&key(k)).unwrap();
                    prop_assert_eq!(existed, model.remove(&key(k)).is_some());
                }
                Step::Reopen => {
                    db.close().unwrap();
                    drop(db);
                    db = Db::open(dir.path(), options.clone()).unwrap();
                    prop_assert_eq!(&contents(&db), &model);
                }
                Step::Compact => {
                    db.compact().unwrap();
                }
            }
        }
        prop_assert_eq!(&contents(&db), &model);
        let live: u64 = model.iter().map(|(k, v)| 17 + (k.len() + v.len()) as u64).sum();
        prop_assert_eq!(db.stats().live_bytes, live);
        db.close().unwrap();
        drop(db);
        let db = Db::open(dir.path(), options).unwrap();
        prop_assert_eq!(&contents(&db), &model);
    }
}
