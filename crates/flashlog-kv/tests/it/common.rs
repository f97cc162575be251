//! Helpers shared by the tests: a model of the contents, and copies of logs.

use std::collections::BTreeMap;
use std::path::Path;

use flashlog_kv::{AutoCompact, Db, DbOptions};
use flashlog_wal::Options;

pub type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Options with small segments and no automatic compaction.
pub fn small(segment: u64) -> DbOptions {
    DbOptions::default()
        .wal(Options::default().max_segment_size(segment))
        .auto_compact(AutoCompact::Never)
}

/// Every key and value of the store, through `scan` (and `get`, checked equal).
pub fn contents(db: &Db) -> Model {
    let all: Model = db
        .scan(..)
        .map(|kv| kv.unwrap())
        .collect::<BTreeMap<_, _>>();
    for (key, value) in &all {
        assert_eq!(db.get(key).unwrap().as_ref(), Some(value));
    }
    assert_eq!(db.len(), all.len());
    all
}

/// A fresh directory on the disk and, where `/dev/shm` exists, one on tmpfs: the
/// concurrent tests run on both (tmpfs makes I/O fast, so races hit other gaps).
pub fn disk_and_tmpfs() -> Vec<(&'static str, tempfile::TempDir)> {
    let mut dirs = vec![("disk", tempfile::tempdir().unwrap())];
    if Path::new("/dev/shm").is_dir() {
        dirs.push(("tmpfs", tempfile::tempdir_in("/dev/shm").unwrap()));
    }
    dirs
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}
