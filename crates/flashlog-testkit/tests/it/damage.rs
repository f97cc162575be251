//! Bad bytes and bad directories that the core's own tests do not cover: zeros
//! from every offset of a three-segment log, every entry zeroed, missing and stale
//! segments with a side file, a leftover side file that is valid, malformed names,
//! and side-file damage (either copy of `flashlog.meta`, both, the checkpoint)
//! under every recovery mode, read-only and read-write.

use flashlog_testkit::{CrashModel, Recovered, SimFs};
use flashlog_wal::{codec, Error, Op, RecoveryMode, SegmentId, SyncPolicy, Wal};

use crate::common::{options, value, DIR};

mod changed_segment;
mod embedded_entries;
mod segments;
mod side_file;

const SEGMENT: u64 = 128;

fn path(name: &str) -> String {
    format!("{DIR}/{name}")
}

/// A segment's name, bytes and entry offsets.
type Segment = (String, Vec<u8>, Vec<usize>);

/// A log of `count` entries in several segments, closed; returns its file system
/// (what is durable: no checkpoint, which is written without an fsync) and, per
/// segment, its name, bytes and entry offsets.
fn log(count: u64) -> (SimFs, Vec<Segment>) {
    log_with(count, false)
}

/// [`log`], with the checkpoint kept if `checkpoint` (as a disk may keep it).
fn log_with(count: u64, checkpoint: bool) -> (SimFs, Vec<Segment>) {
    let sim = SimFs::new();
    let wal = Wal::open(DIR, options(&sim, SEGMENT, SyncPolicy::Always)).unwrap();
    for n in 0..count {
        wal.append(
            Op::Put,
            format!("key{n}").as_bytes(),
            &value(n, (n % 20) as usize),
        )
        .unwrap();
    }
    wal.close().unwrap();
    drop(wal);
    let index = path(flashlog_wal::INDEX_FILE);
    let kept = sim.read(&index).unwrap();
    let sim = sim.crash(CrashModel::DropUnsynced);
    if checkpoint {
        sim.put_durable(&index, &kept);
    }
    let names = segment_names(&sim);
    let segments = names
        .into_iter()
        .map(|name| {
            let bytes = sim.read(path(&name)).unwrap();
            let mut offsets = Vec::new();
            let mut at = 0;
            while at < bytes.len() {
                offsets.push(at);
                at += codec::decode(&bytes[at..]).unwrap().len;
            }
            (name, bytes, offsets)
        })
        .collect();
    (sim, segments)
}

fn open(sim: &SimFs, mode: RecoveryMode) -> flashlog_wal::Result<Wal> {
    Wal::open(
        DIR,
        options(sim, SEGMENT, SyncPolicy::Always).recovery_mode(mode),
    )
}

/// Entry boundaries: (segment index, start, end) of every entry in log order.
fn entries(segments: &[Segment]) -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    for (s, (_, bytes, offsets)) in segments.iter().enumerate() {
        for (i, &start) in offsets.iter().enumerate() {
            let end = offsets.get(i + 1).copied().unwrap_or(bytes.len());
            out.push((s, start, end));
        }
    }
    out
}

#[test]
fn zeros_from_every_offset_of_a_three_segment_log_recover_the_longest_valid_prefix() {
    let (sim, segments) = log(14);
    assert!(segments.len() >= 3, "three segments or more");
    let all = entries(&segments);
    let last = segments.len() - 1;
    let mut offsets = 0;
    for (s, (name, bytes, _)) in segments.iter().enumerate() {
        for at in 0..bytes.len() {
            let mut zeroed = bytes.clone();
            zeroed[at..].fill(0);
            let image = sim.snapshot();
            image.put_durable(path(name), &zeroed);
            // Entries whose bytes the zeros left as they were survive.
            let intact = |&(seg, start, end): &(usize, usize, usize)| {
                seg != s || zeroed[start..end] == bytes[start..end]
            };
            let prefix = all.iter().take_while(|e| intact(e)).count();
            let first_hit = all.iter().find(|e| !intact(e));
            match (open(&image, RecoveryMode::default()), first_hit) {
                (Ok(wal), hit) => {
                    assert!(
                        hit.is_none() || s == last,
                        "{name} zeroed from {at}: an older segment's damage was accepted"
                    );
                    let recovered = Recovered::read(&wal).unwrap();
                    assert_eq!(recovered.entries.len(), prefix, "{name} zeroed from {at}");
                    assert_eq!(
                        wal.append(Op::Put, b"after", b"").unwrap(),
                        prefix as u64 + 1
                    );
                }
                (
                    Err(Error::Corrupt {
                        segment, offset, ..
                    }),
                    Some(&(seg, start, _)),
                ) => {
                    assert!(
                        s != last,
                        "{name} zeroed from {at}: a torn tail was refused"
                    );
                    assert_eq!(seg, s);
                    assert_eq!(segment, SegmentId::parse_file_name(name).unwrap());
                    assert_eq!(offset, start as u64, "{name} zeroed from {at}");
                }
                (other, hit) => panic!("{name} zeroed from {at}: {other:?} (hit {hit:?})"),
            }
            offsets += 1;
        }
    }
    let total: usize = segments.iter().map(|s| s.1.len()).sum();
    assert_eq!(offsets, total, "100% of byte offsets");
    println!("zero-fill: {offsets} offsets of {} segments, all recovered the longest valid prefix or named the damage", segments.len());
}

#[test]
fn every_zeroed_entry_is_corruption_at_its_position_unless_it_is_the_tail() {
    let (sim, segments) = log(14);
    let all = entries(&segments);
    for (i, &(s, start, end)) in all.iter().enumerate() {
        let (name, bytes, _) = &segments[s];
        let mut zeroed = bytes.clone();
        zeroed[start..end].fill(0);
        let image = sim.snapshot();
        image.put_durable(path(name), &zeroed);
        let result = open(&image, RecoveryMode::default());
        if i == all.len() - 1 {
            let wal = result.unwrap();
            assert_eq!(Recovered::read(&wal).unwrap().entries.len(), i);
        } else {
            match result {
                Err(Error::Corrupt {
                    segment, offset, ..
                }) => {
                    assert_eq!(
                        segment,
                        SegmentId::parse_file_name(name).unwrap(),
                        "entry {i}"
                    );
                    assert_eq!(offset, start as u64, "entry {i}");
                }
                other => panic!("entry {i} zeroed: {other:?}"),
            }
            // Skipping it keeps every other entry.
            let wal = open(&image, RecoveryMode::SkipCorrupted).unwrap();
            assert_eq!(Recovered::read(&wal).unwrap().entries.len(), all.len() - 1);
        }
    }
}

/// The segment files in the log's directory, by name.
fn segment_names(sim: &SimFs) -> Vec<String> {
    let mut names: Vec<String> = sim
        .names(DIR)
        .into_iter()
        .filter(|n| SegmentId::parse_file_name(n).is_some())
        .collect();
    names.sort();
    names
}

/// A log whose first segments were removed by `truncate_front` (a side file names
/// its first segment).
fn truncated_log() -> (SimFs, Vec<String>) {
    let sim = SimFs::new();
    let wal = Wal::open(DIR, options(&sim, 64, SyncPolicy::Always)).unwrap();
    for n in 0..10 {
        wal.append(Op::Put, b"k", &value(n, 8)).unwrap();
    }
    assert_eq!(wal.truncate_front(5).unwrap(), 5);
    wal.close().unwrap();
    drop(wal);
    let names = segment_names(&sim);
    assert_eq!(names.len(), 3, "{names:?}");
    (sim.crash(CrashModel::DropUnsynced), names)
}

const MODES: [RecoveryMode; 4] = [
    RecoveryMode::TolerateCorruptedTail,
    RecoveryMode::AbsoluteConsistency,
    RecoveryMode::PointInTime,
    RecoveryMode::SkipCorrupted,
];
