//! Bad bytes and bad directories that the core's own tests do not cover: zeros
//! from every offset of a three-segment log, every entry zeroed, missing and stale
//! segments with a side file, a leftover side file that is valid, malformed names,
//! and side-file damage (either copy of `flashlog.meta`, both, the checkpoint)
//! under every recovery mode, read-only and read-write.

use flashlog_testkit::{CrashModel, Recovered, SimFs};
use flashlog_wal::{
    codec, Error, Op, RecoveryMode, SegmentId, SideFileAction, SyncPolicy, Wal, INDEX_FILE,
    META_COPY_FILE, META_COPY_TMP_FILE, META_FILE, META_TMP_FILE,
};

use crate::common::{options, value, DIR};

const SEGMENT: u64 = 128;

fn path(name: &str) -> String {
    format!("{DIR}/{name}")
}

/// A segment's name, bytes and entry offsets.
type Segment = (String, Vec<u8>, Vec<usize>);

/// A log of `count` entries in several segments, closed; returns its file system
/// and, per segment, its name, bytes and entry offsets.
fn log(count: u64) -> (SimFs, Vec<Segment>) {
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
    let sim = sim.crash(CrashModel::DropUnsynced);
    let mut names: Vec<String> = sim
        .names(DIR)
        .into_iter()
        .filter(|n| SegmentId::parse_file_name(n).is_some())
        .collect();
    names.sort();
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
    let mut names: Vec<String> = sim
        .names(DIR)
        .into_iter()
        .filter(|n| SegmentId::parse_file_name(n).is_some())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    (sim.crash(CrashModel::DropUnsynced), names)
}

#[test]
fn a_missing_first_segment_named_by_the_side_file_is_a_clear_error() {
    let (sim, names) = truncated_log();
    sim.remove_durable(path(&names[0]));
    let err = open(&sim, RecoveryMode::default()).unwrap_err();
    assert!(
        matches!(err, Error::MissingSegment { id, .. } if id == SegmentId::parse_file_name(&names[0]).unwrap()),
        "{err}"
    );
    // Every segment gone: still the side file's first segment is named.
    for name in &names {
        sim.remove_durable(path(name));
    }
    let err = open(&sim, RecoveryMode::default()).unwrap_err();
    assert!(matches!(err, Error::MissingSegment { .. }), "{err}");
}

/// The newest segment vanished (a lost directory entry, an operator's mistake):
/// the log used to open shorter and drop the entries it held without a word. The
/// side file now names the newest segment.
#[test]
fn regression_a_missing_newest_segment_is_reported() {
    let (sim, names) = truncated_log();
    let newest = names.last().unwrap();
    sim.remove_durable(path(newest));
    let err = open(&sim, RecoveryMode::default()).unwrap_err();
    assert!(matches!(err, Error::MissingSegment { .. }), "{err}");
}

#[test]
fn a_stale_segment_beyond_a_gap_after_the_last_one_is_a_clear_error() {
    let (sim, names) = truncated_log();
    let last = SegmentId::parse_file_name(names.last().unwrap()).unwrap();
    let stale = SegmentId(last.0 + 2);
    sim.put_durable(
        path(&stale.file_name()),
        &sim.read(path(&names[0])).unwrap(),
    );
    let err = open(&sim, RecoveryMode::default()).unwrap_err();
    assert!(
        matches!(err, Error::MissingSegment { id, .. } if id == last.next()),
        "{err}"
    );
    assert!(err.to_string().contains("is missing"), "{err}");
}

#[test]
fn a_leftover_temporary_side_file_that_is_valid_is_ignored_and_removed() {
    // A crash after the new side file was written and synced but before its rename:
    // the old side file (or none) is the truth.
    let (truncated, _) = truncated_log();
    let newer = truncated.read(path(META_FILE)).unwrap();
    let (sim, segments) = log(6);
    sim.put_durable(path(META_TMP_FILE), &newer);
    let wal = open(&sim, RecoveryMode::default()).unwrap();
    assert_eq!(wal.first_seq(), 1);
    assert_eq!(Recovered::read(&wal).unwrap().entries.len(), 6);
    assert!(!sim.names(DIR).contains(&META_TMP_FILE.to_string()));
    assert!(segments.len() > 1);
}

#[test]
fn malformed_segment_names_are_ignored() {
    let (sim, segments) = log(6);
    let junk = segments[0].1.clone();
    for name in [
        "segment-.log",
        "segment-0002.log.tmp",
        "Segment-0009.log",
        "segment-0009.LOG",
        "segment-+9.log",
        "segment- 9.log",
        "segment-0x9.log",
        "xsegment-0009.log",
        "segment-99999999999999999999999.log",
        "segment-0009.log~",
    ] {
        sim.put_durable(path(name), &junk);
    }
    let wal = open(&sim, RecoveryMode::default()).unwrap();
    assert_eq!(Recovered::read(&wal).unwrap().entries.len(), 6);
    assert_eq!(wal.segments().len(), segments.len());
}

/// FORMAT.md: readers match `^segment-(\d+)\.log$` and sort numerically, so
/// `segment-2.log` is segment 2. The core used to parse it as 2 but then open
/// `segment-0002.log`; a read-write open now renames it to that.
#[test]
fn regression_an_unpadded_segment_name_opens() {
    let (sim, segments) = log(6);
    assert!(segments.len() >= 2);
    let (name, bytes, _) = &segments[1];
    sim.remove_durable(path(name));
    let id = SegmentId::parse_file_name(name).unwrap();
    sim.put_durable(path(&format!("segment-{}.log", id.0)), bytes);
    let wal = open(&sim, RecoveryMode::default()).unwrap();
    assert!(Recovered::read(&wal).unwrap().entries.len() >= segments[0].2.len());
}

/// Two files naming the same segment id (`segment-0002.log` and `segment-002.log`)
/// must be a clear error naming the duplicate, not a "missing segment".
#[test]
fn regression_duplicate_segment_ids_are_named_as_such() {
    let (sim, segments) = log(6);
    let (name, bytes, _) = &segments[1];
    let id = SegmentId::parse_file_name(name).unwrap();
    sim.put_durable(path(&format!("segment-{:03}.log", id.0)), bytes);
    let err = open(&sim, RecoveryMode::default()).unwrap_err();
    assert!(
        matches!(err, Error::DuplicateSegment { id: dup, .. } if dup == id),
        "a duplicate is not a missing segment: {err}"
    );
}

const MODES: [RecoveryMode; 4] = [
    RecoveryMode::TolerateCorruptedTail,
    RecoveryMode::AbsoluteConsistency,
    RecoveryMode::PointInTime,
    RecoveryMode::SkipCorrupted,
];

fn open_as(sim: &SimFs, mode: RecoveryMode, read_only: bool) -> flashlog_wal::Result<Wal> {
    let mut options = options(sim, 64, SyncPolicy::Always).recovery_mode(mode);
    if read_only {
        options = options.read_only();
    }
    Wal::open(DIR, options)
}

/// Ways to damage one copy of the side file, by name.
fn side_file_damage(bytes: &[u8]) -> Vec<(&'static str, Option<Vec<u8>>)> {
    let mut flipped = bytes.to_vec();
    flipped[20] ^= 1;
    let mut garbage = bytes.to_vec();
    garbage.fill(0xAB);
    vec![
        ("flipped", Some(flipped)),
        ("cut", Some(bytes[..bytes.len() - 1].to_vec())),
        ("grown", Some([bytes, &[0]].concat())),
        ("empty", Some(Vec::new())),
        ("garbage", Some(garbage)),
        ("missing", None),
    ]
}

/// Issue 12, item 4: one damaged or missing copy of the side file, in every
/// mode, read-only or not: the log opens from the other copy with every entry,
/// says so in its report, and a read-write open rewrites the bad copy.
#[test]
fn one_damaged_copy_of_the_side_file_opens_from_the_other_in_every_mode() {
    let (sim, _) = truncated_log();
    let (first, entries) = {
        let wal = open_as(&sim, RecoveryMode::default(), true).unwrap();
        (
            wal.first_seq(),
            Recovered::read(&wal).unwrap().entries.len(),
        )
    };
    assert!(first > 1);
    let good = sim.read(path(META_FILE)).unwrap();
    assert_eq!(sim.read(path(META_COPY_FILE)).unwrap(), good);
    let mut cases = 0;
    for name in [META_FILE, META_COPY_FILE] {
        for (what, damaged) in side_file_damage(&good) {
            for mode in MODES {
                for read_only in [true, false] {
                    let image = sim.snapshot();
                    match &damaged {
                        Some(bytes) => image.put_durable(path(name), bytes),
                        None => image.remove_durable(path(name)),
                    }
                    let case = format!("{name} {what}, {mode:?}, read-only {read_only}");
                    let wal = open_as(&image, mode, read_only)
                        .unwrap_or_else(|err| panic!("{case}: {err}"));
                    assert_eq!(wal.first_seq(), first, "{case}");
                    assert_eq!(
                        Recovered::read(&wal).unwrap().entries.len(),
                        entries,
                        "{case}"
                    );
                    let notes = &wal.recovery_report().side_files;
                    // A missing second copy is how logs from before it look: no note.
                    let noted = !(name == META_COPY_FILE && damaged.is_none());
                    assert_eq!(notes.len(), usize::from(noted), "{case}: {notes:?}");
                    if let Some(note) = notes.first() {
                        assert_eq!(note.path, std::path::Path::new(&path(name)), "{case}");
                        assert_eq!(
                            note.action,
                            SideFileAction::UsedOtherCopy {
                                rewritten: !read_only
                            },
                            "{case}"
                        );
                    }
                    drop(wal);
                    let now = image.read(path(name));
                    if read_only {
                        assert_eq!(now, damaged, "{case}: a read-only open changed it");
                    } else {
                        assert_eq!(now.as_deref(), Some(&good[..]), "{case}: not rewritten");
                    }
                    cases += 1;
                }
            }
        }
    }
    println!("side-file damage: {cases} cases, all opened from the other copy");
}

/// Issue 12, item 4: with no intact copy, every mode refuses with
/// `CorruptMeta`, whose message names the repair.
#[test]
fn both_copies_of_the_side_file_damaged_is_corrupt_meta_in_every_mode() {
    let (sim, _) = truncated_log();
    let good = sim.read(path(META_FILE)).unwrap();
    for (what, damaged) in side_file_damage(&good) {
        let image = sim.snapshot();
        for name in [META_FILE, META_COPY_FILE] {
            // Both missing is a log without a side file: covered elsewhere.
            let bytes = damaged.clone().unwrap_or_else(|| b"junk".to_vec());
            image.put_durable(path(name), &bytes);
        }
        for mode in MODES {
            for read_only in [true, false] {
                let err = open_as(&image, mode, read_only).unwrap_err();
                assert!(
                    matches!(err, Error::CorruptMeta { .. }),
                    "{what}, {mode:?}, read-only {read_only}: {err}"
                );
                assert!(err.to_string().contains("--first-seq"), "{err}");
            }
        }
    }
}

/// A crash between the two copies' stores leaves both intact and different: the
/// first copy (the newer) wins, and a read-write open brings the second up to it.
#[test]
fn copies_that_differ_go_by_the_first() {
    let (older, _) = truncated_log();
    let (sim, _) = log(6);
    // The second copy from a log whose front was truncated: a different, intact
    // side file (the segments it names are not there, so using it would fail).
    sim.put_durable(path(META_COPY_FILE), &older.read(path(META_FILE)).unwrap());
    for mode in MODES {
        let wal = open_as(&sim.snapshot(), mode, true).unwrap();
        assert_eq!(wal.first_seq(), 1, "{mode:?}");
        assert!(wal.recovery_report().side_files.is_empty());
    }
    drop(open_as(&sim, RecoveryMode::default(), false).unwrap());
    assert_eq!(
        sim.read(path(META_COPY_FILE)),
        sim.read(path(META_FILE)),
        "the copies agree again"
    );
}

/// Issue 12, item 5: a checkpoint that is garbage (a valid one is covered by
/// the checkpoint tests) is ignored in every mode.
#[test]
fn a_garbage_checkpoint_is_ignored_in_every_mode() {
    let (sim, segments) = log(14);
    let expected = {
        let wal = open(&sim.snapshot(), RecoveryMode::default()).unwrap();
        Recovered::read(&wal).unwrap().entries.len()
    };
    assert!(segments.len() > 2);
    for bytes in [Vec::new(), vec![0xAB; 100], b"FLWLINDX".to_vec()] {
        for mode in MODES {
            for read_only in [true, false] {
                let image = sim.snapshot();
                image.put_durable(path(INDEX_FILE), &bytes);
                let wal = open_as(&image, mode, read_only).unwrap();
                assert_eq!(Recovered::read(&wal).unwrap().entries.len(), expected);
            }
        }
    }
}

/// A crash while the second copy was being written leaves its temporary file:
/// ignored, and removed by a read-write open.
#[test]
fn a_leftover_temporary_copy_of_the_side_file_is_ignored_and_removed() {
    let (truncated, _) = truncated_log();
    let newer = truncated.read(path(META_FILE)).unwrap();
    let (sim, _) = log(6);
    sim.put_durable(path(META_COPY_TMP_FILE), &newer);
    let wal = open(&sim, RecoveryMode::default()).unwrap();
    assert_eq!(wal.first_seq(), 1);
    assert!(!sim.names(DIR).contains(&META_COPY_TMP_FILE.to_string()));
}
