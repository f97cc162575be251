//! Helpers shared by the integration tests (the counting, failing file system is
//! the testkit's).

use std::fs;
use std::path::{Path, PathBuf};

use flashlog_wal::{Entry, Op, Options, Wal};
use tempfile::TempDir;

pub use flashlog_testkit::{faulty_disk_options, AfterFailure, Counting, FaultyDisk, FaultyDiskFs};

/// `(op, key, value)` of an entry, for comparing logs.
pub type Record = (Op, Vec<u8>, Vec<u8>);

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A fresh temporary copy of a Go-written fixture log (never opened in place).
pub fn fixture_copy(name: &str) -> TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(fixtures().join(name).join("wal")).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), tmp.path().join(entry.file_name())).unwrap();
    }
    tmp
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex {text:?}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Parses an `expected*.txt` of the fixtures: `OP KEYHEX VALUEHEX` per line.
pub fn expected(name: &str, file: &str) -> Vec<Record> {
    let text = fs::read_to_string(fixtures().join(name).join(file)).unwrap();
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let mut fields = line.split(' ');
            let op = match fields.next().unwrap() {
                "0" => Op::Put,
                "1" => Op::Delete,
                other => panic!("bad op {other}"),
            };
            let key = unhex(fields.next().unwrap_or(""));
            let value = unhex(fields.next().unwrap_or(""));
            (op, key, value)
        })
        .collect()
}

pub fn record(entry: &Entry) -> Record {
    (entry.op(), entry.key().to_vec(), entry.value().to_vec())
}

/// Every entry of the log, in order, checking that sequence numbers count up.
pub fn read_all(wal: &Wal) -> Vec<Record> {
    let mut seq = wal.first_seq();
    wal.iter_from(seq)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            assert_eq!(entry.seq(), seq);
            seq += 1;
            record(&entry)
        })
        .collect()
}

/// Segment files of a directory, sorted by name, with their bytes.
pub fn segment_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with("segment-"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

pub fn open(dir: &Path, options: Options) -> Wal {
    Wal::open(dir, options).unwrap()
}

/// `count` distinct records with varied sizes, some deletes and empty values.
pub fn sample_records(count: usize) -> Vec<Record> {
    (0..count)
        .map(|i| {
            let op = if i % 7 == 3 { Op::Delete } else { Op::Put };
            let key = format!("key-{i}").into_bytes();
            let value = if op == Op::Delete {
                Vec::new()
            } else {
                vec![(i % 251) as u8; i % 40]
            };
            (op, key, value)
        })
        .collect()
}

pub fn append_all(wal: &Wal, records: &[Record]) {
    for (op, key, value) in records {
        wal.append(*op, key, value).unwrap();
    }
}
