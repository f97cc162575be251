//! The key-value model: what a `flashlog_kv::Db` must hold, as a `BTreeMap`
//! ([`KvModel`]), and [`kv_contents`], which reads a store's contents the three
//! ways it answers (`scan`, `get`, `len`) and requires them to agree.
//!
//! ```
//! use flashlog_kv::Db;
//! use flashlog_testkit::kv_model::{kv_contents, KvModel};
//!
//! let dir = tempfile::tempdir()?;
//! let db = Db::open(dir.path(), Default::default())?;
//! let mut model = KvModel::new();
//! db.put(b"a", b"1")?;
//! model.insert(b"a".to_vec(), b"1".to_vec());
//! assert_eq!(kv_contents(&db), model);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;

use flashlog_kv::Db;

/// Every key of a store and its value.
pub type KvModel = BTreeMap<Vec<u8>, Vec<u8>>;

/// The contents of `db`, through `scan(..)`, after checking that `get` of every
/// key gives the same value and `len` the same count.
///
/// # Panics
/// If a call fails or the three disagree.
pub fn kv_contents(db: &Db) -> KvModel {
    let all: KvModel = db.scan(..).map(|pair| pair.expect("scan")).collect();
    for (key, value) in &all {
        assert_eq!(
            db.get(key).expect("get").as_ref(),
            Some(value),
            "get and scan disagree on {key:?}"
        );
    }
    assert_eq!(db.len(), all.len(), "len and scan disagree");
    all
}

/// The bytes the live entries of `model` take in the log: 17 bytes of framing
/// (the entry header and the store's own) plus each key and value.
pub fn live_bytes(model: &KvModel) -> u64 {
    model
        .iter()
        .map(|(key, value)| 17 + (key.len() + value.len()) as u64)
        .sum()
}
