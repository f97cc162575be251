//! Replays the saved fuzz corpus (`fuzz/corpus/<target>/`) through the same checks
//! the fuzz targets run, in memory and, for the directory targets, on disk too.
//! Every input a fuzzer ever crashed on is saved there, so it stays a regression
//! test. `write_seed_corpus` (ignored; run by hand) regenerates the seed inputs.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flashlog_chaos::fuzz::{self, encode_meta, Layout, Store};
use flashlog_testkit::SimFs;
use flashlog_wal::codec::{self, PLACEHOLDER_CRC};
use flashlog_wal::{Op, Options, SegmentId, Wal};

const TARGETS: [&str; 4] = ["decode_entry", "segment_reader", "recovery", "dump"];

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut inputs: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "{} holds no input", dir.display());
    inputs
}

fn replay(target: &str, check: impl Fn(&[u8])) {
    for (path, bytes) in inputs(target) {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&bytes)));
        assert!(
            result.is_ok(),
            "{target}: {} fails its check",
            path.display()
        );
    }
}

#[test]
fn corpus_decode_entry() {
    replay("decode_entry", fuzz::decode_entry);
}

#[test]
fn corpus_segment_reader() {
    replay("segment_reader", |data| {
        fuzz::segment_reader_in(Store::Memory, data);
        fuzz::segment_reader_in(Store::Disk, data);
    });
}

#[test]
fn corpus_recovery() {
    replay("recovery", |data| {
        fuzz::recovery_in(Store::Memory, data);
        fuzz::recovery_in(Store::Disk, data);
    });
}

#[test]
fn corpus_dump() {
    replay("dump", |data| {
        fuzz::dump_in(Store::Memory, data);
        fuzz::dump_in(Store::Disk, data);
    });
}

fn entry(op: Op, key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    codec::encode(&mut out, op, key, value);
    out
}

fn fixture_segment(fixture: &str, id: u64) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../flashlog-wal/tests/fixtures")
        .join(fixture)
        .join("wal")
        .join(SegmentId(id).file_name());
    fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// A log written by flashlog itself in memory, with `segment_size`-byte segments.
fn written_log(entries: u64, segment_size: u64, truncate_front: Option<u64>) -> Layout {
    let fs = SimFs::new();
    let options = Options::default()
        .max_segment_size(segment_size)
        .fs(Arc::new(fs.clone()));
    let wal = Wal::open("/log", options).unwrap();
    for id in 0..entries {
        let op = if id % 7 == 3 { Op::Delete } else { Op::Put };
        let value = flashlog_testkit::payload::value_for(id * 13 % 80);
        wal.append(op, &id.to_le_bytes(), &value).unwrap();
    }
    if let Some(seq) = truncate_front {
        wal.truncate_front(seq).unwrap();
    }
    wal.close().unwrap();
    drop(wal);
    let mut layout = Layout::default();
    for (path, bytes) in fs.files() {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if let Some(id) = SegmentId::parse_file_name(&name) {
            layout.segments.push((id, bytes));
        } else if name == flashlog_wal::META_FILE {
            layout.meta = Some(bytes);
        }
    }
    layout.segments.sort();
    layout.segments.truncate(4);
    layout
}

fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let mut add = |target: &'static str, name: &str, bytes: Vec<u8>| {
        seeds.push((target, format!("seed-{name}"), bytes));
    };
    // decode_entry: single entries, valid and damaged.
    let ab = entry(Op::Put, b"a", b"b");
    add("decode_entry", "put-a-b", ab.clone());
    add("decode_entry", "delete-empty", entry(Op::Delete, b"", b""));
    add(
        "decode_entry",
        "value-300",
        entry(Op::Put, b"key", &[7; 300]),
    );
    let mut placeholder = ab.clone();
    placeholder[..4].copy_from_slice(&PLACEHOLDER_CRC.to_le_bytes());
    add("decode_entry", "placeholder-crc", placeholder);
    add("decode_entry", "cut", ab[..ab.len() - 1].to_vec());
    let mut flipped = ab.clone();
    flipped[10] ^= 0x40;
    add("decode_entry", "flipped", flipped);
    let mut two = ab.clone();
    two.extend_from_slice(&entry(Op::Put, b"c", b"d"));
    add("decode_entry", "two-entries", two);
    let mut garbage_then_entry = vec![0xAB; 5];
    garbage_then_entry.extend_from_slice(&ab);
    add("decode_entry", "garbage-then-entry", garbage_then_entry);
    add(
        "decode_entry",
        "go-first-entries",
        fixture_segment("go-basic", 1)[..256].to_vec(),
    );

    // segment_reader: whole segments.
    add(
        "segment_reader",
        "go-basic-1",
        fixture_segment("go-basic", 1),
    );
    add(
        "segment_reader",
        "go-torn-truncated-12",
        fixture_segment("go-torn-truncated", 12),
    );
    add(
        "segment_reader",
        "go-torn-placeholder-12",
        fixture_segment("go-torn-placeholder", 12),
    );
    add(
        "segment_reader",
        "go-corrupt-middle-5",
        fixture_segment("go-corrupt-middle", 5),
    );
    add("segment_reader", "empty", Vec::new());
    let written = written_log(40, 1 << 20, None).segments[0].1.clone();
    add("segment_reader", "written-40", written.clone());
    add(
        "segment_reader",
        "written-40-torn",
        written[..written.len() - 7].to_vec(),
    );

    // recovery and dump: whole directories.
    let go = |fixture: &str, ids: &[u64]| Layout {
        segments: ids
            .iter()
            .enumerate()
            .map(|(at, &id)| (SegmentId(at as u64 + 1), fixture_segment(fixture, id)))
            .collect(),
        meta: None,
    };
    let mut layouts = vec![
        ("go-basic-1-4", go("go-basic", &[1, 2, 3, 4])),
        (
            "go-torn-truncated-11-12",
            go("go-torn-truncated", &[11, 12]),
        ),
        (
            "go-torn-placeholder-11-12",
            go("go-torn-placeholder", &[11, 12]),
        ),
        ("go-corrupt-middle-5-6", go("go-corrupt-middle", &[5, 6])),
        ("empty", Layout::default()),
        ("written-3-segments", written_log(30, 512, None)),
        ("written-truncated-front", written_log(40, 512, Some(20))),
    ];
    let mut torn = written_log(30, 512, None);
    if let Some((_, last)) = torn.segments.last_mut() {
        last.truncate(last.len().saturating_sub(5));
    }
    layouts.push(("written-torn-tail", torn));
    let mut pending = written_log(30, 512, None);
    pending.meta = Some(encode_meta(1, 1, 12));
    layouts.push(("written-pending-truncate-back", pending));
    for (name, layout) in layouts {
        add("recovery", name, layout.to_input());
        add("dump", name, layout.to_input());
    }
    seeds
}

#[test]
#[ignore = "writes fuzz/corpus/*/seed-*: run by hand after changing the seeds"]
fn write_seed_corpus() {
    for target in TARGETS {
        fs::create_dir_all(corpus_dir(target)).unwrap();
    }
    for (target, name, bytes) in seeds() {
        fs::write(corpus_dir(target).join(name), bytes).unwrap();
    }
}
