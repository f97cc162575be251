//! Bad bytes and bad directories that the core's own tests do not cover: zeros
//! from every offset of a three-segment log, every entry zeroed, missing and stale
//! segments with a side file, a leftover side file that is valid, malformed names,
//! and side-file damage (either copy of `flashlog.meta`, both, the checkpoint)
//! under every recovery mode, read-only and read-write.

use flashlog_testkit::{CrashModel, Recovered, SimFs};
use flashlog_wal::{
    codec, CorruptionKind, Error, Op, RecoveryMode, SegmentId, SideFileAction, SyncPolicy, Wal,
    INDEX_FILE, META_COPY_FILE, META_FILE,
};

use crate::common::{options, value, DIR};

const SEGMENT: u64 = 128;

/// The names the two copies of the side file are written under before their
/// renames, as docs/design.md lists them ("Files in a log directory"): what a crash
/// leaves, and an open must remove, whatever version wrote it. The library does not
/// export them.
const META_TMP_FILE: &str = "flashlog.meta.tmp";
const META_COPY_TMP_FILE: &str = "flashlog.meta.bak.tmp";

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

/// Opens the log and requires `Error::MissingSegment` with its message; returns
/// the id it names.
fn missing_segment(sim: &SimFs) -> SegmentId {
    match open(sim, RecoveryMode::default()) {
        Err(Error::MissingSegment { id, .. }) => id,
        Err(err) => panic!("expected MissingSegment, got {err}"),
        Ok(_) => panic!("expected MissingSegment, the log opened"),
    }
}

#[test]
fn a_missing_first_segment_named_by_the_side_file_is_a_clear_error() {
    let (sim, names) = truncated_log();
    sim.remove_durable(path(&names[0]));
    let first = SegmentId::parse_file_name(&names[0]).unwrap();
    assert_eq!(missing_segment(&sim), first);
    // Every segment gone: still the side file's first segment is named.
    for name in &names {
        sim.remove_durable(path(name));
    }
    missing_segment(&sim);
}

/// The newest segment vanished (a lost directory entry, an operator's mistake):
/// the log used to open shorter and drop the entries it held without a word. The
/// side file now names the newest segment.
#[test]
fn regression_a_missing_newest_segment_is_reported() {
    let (sim, names) = truncated_log();
    sim.remove_durable(path(names.last().unwrap()));
    missing_segment(&sim);
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
    assert_eq!(missing_segment(&sim), last.next());
    let err = open(&sim, RecoveryMode::default()).unwrap_err();
    assert!(err.to_string().contains("is missing"), "{err}");
}

/// A log of 6 entries with a valid newer side file (of a truncated log) left under
/// the temporary name `leftover`, opened: its first entry is still 1.
fn open_with_leftover(leftover: &str) -> (SimFs, Vec<Segment>, Wal) {
    let (truncated, _) = truncated_log();
    let newer = truncated.read(path(META_FILE)).unwrap();
    let (sim, segments) = log(6);
    sim.put_durable(path(leftover), &newer);
    let wal = open(&sim, RecoveryMode::default()).unwrap();
    assert_eq!(wal.first_seq(), 1);
    (sim, segments, wal)
}

#[test]
fn a_leftover_temporary_side_file_that_is_valid_is_ignored_and_removed() {
    // A crash after the new side file was written and synced but before its rename:
    // the old side file (or none) is the truth.
    let (sim, segments, wal) = open_with_leftover(META_TMP_FILE);
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

/// What a change does: its name, the new bytes of segment 2, and of segment 3.
type Change = (&'static str, Vec<u8>, Option<Vec<u8>>);

/// Issue 12 item 2, the catalogue of changed sealed segments: segment 2 of a
/// closed (checkpointed) log cut at an entry boundary, replaced by an older
/// shorter copy, with a valid entry appended, overwritten by its neighbour,
/// swapped with it, emptied. Each is damage naming the segment in every mode:
/// refused by the default and the strict mode, cut before under `PointInTime`,
/// skipped with its numbers kept under `SkipCorrupted`.
#[test]
fn a_changed_sealed_segment_is_damage_in_every_mode() {
    let (base, segments) = log_with(24, true);
    assert!(segments.len() >= 4, "{} segments", segments.len());
    let counts: Vec<u64> = segments.iter().map(|s| s.2.len() as u64).collect();
    let total: u64 = counts.iter().sum();
    let (two, three) = (&segments[1], &segments[2]);
    let mut appended = two.1.clone();
    codec::encode(&mut appended, Op::Put, b"extra", b"entry");
    let changes: Vec<Change> = vec![
        ("cut at an entry boundary", two.1[..two.2[1]].to_vec(), None),
        (
            "an older shorter copy",
            two.1[..*two.2.last().unwrap()].to_vec(),
            None,
        ),
        ("a valid entry appended", appended, None),
        ("overwritten by its neighbour", three.1.clone(), None),
        ("swapped", three.1.clone(), Some(two.1.clone())),
        ("emptied", Vec::new(), None),
    ];
    let modes = [
        RecoveryMode::TolerateCorruptedTail,
        RecoveryMode::AbsoluteConsistency,
        RecoveryMode::PointInTime,
        RecoveryMode::SkipCorrupted,
    ];
    let mut cases = 0;
    for (what, new_two, new_three) in &changes {
        for mode in modes {
            let image = base.snapshot();
            image.put_durable(path(&two.0), new_two);
            if let Some(bytes) = new_three {
                image.put_durable(path(&three.0), bytes);
            }
            let changed =
                |kind: &CorruptionKind| matches!(kind, CorruptionKind::SegmentChanged { .. });
            match (mode, open(&image, mode)) {
                (
                    RecoveryMode::TolerateCorruptedTail | RecoveryMode::AbsoluteConsistency,
                    Err(Error::Corrupt {
                        segment,
                        offset,
                        kind,
                        ..
                    }),
                ) => {
                    assert_eq!((segment, offset), (SegmentId(2), 0), "{what}, {mode:?}");
                    assert!(changed(&kind), "{what}, {mode:?}: {kind}");
                }
                (RecoveryMode::PointInTime, Ok(wal)) => {
                    let report = wal.recovery_report();
                    assert!(changed(&report.damage[0].kind), "{what}");
                    assert_eq!(report.damage[0].position.segment, SegmentId(2));
                    assert_eq!(wal.last_seq(), counts[0], "{what}");
                    assert_eq!(
                        Recovered::read(&wal).unwrap().entries.len() as u64,
                        counts[0]
                    );
                }
                (RecoveryMode::SkipCorrupted, Ok(wal)) => {
                    let report = wal.recovery_report();
                    let skipped = if new_three.is_some() { 2 } else { 1 };
                    assert_eq!(report.skipped, skipped, "{what}");
                    assert!(report.damage.iter().all(|d| changed(&d.kind)), "{what}");
                    assert_eq!(report.numbering_unverified_from, None, "{what}");
                    // Every other entry keeps its number.
                    assert_eq!(wal.last_seq(), total, "{what}");
                    let kept: u64 = counts[..1]
                        .iter()
                        .chain(&counts[1 + skipped as usize..])
                        .sum();
                    let recovered = Recovered::read(&wal).unwrap();
                    assert_eq!(recovered.entries.len() as u64, kept, "{what}");
                    let after = counts[..=skipped as usize].iter().sum::<u64>() + 1;
                    assert_eq!(
                        wal.read(after).unwrap().key(),
                        format!("key{}", after - 1).as_bytes(),
                        "{what}"
                    );
                    assert!(matches!(
                        wal.read(counts[0] + 1),
                        Err(Error::Skipped { .. })
                    ));
                }
                (mode, other) => panic!("{what}, {mode:?}: {other:?}"),
            }
            cases += 1;
        }
    }
    println!("changed sealed segments: {cases} cases (6 changes x 4 modes)");
}

/// A value made of encoded entries (a shipped segment, a snapshot): deletes of
/// the log's own keys and puts of keys it never had.
fn value_of_entries(len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut n = 0u64;
    while out.len() < len {
        if n.is_multiple_of(2) {
            codec::encode(
                &mut out,
                Op::Delete,
                format!("key{}", n % 4).as_bytes(),
                b"",
            );
        } else {
            codec::encode(
                &mut out,
                Op::Put,
                format!("phantom{n}").as_bytes(),
                &value(n, 30),
            );
        }
        n += 1;
    }
    out
}

const MODES: [RecoveryMode; 4] = [
    RecoveryMode::TolerateCorruptedTail,
    RecoveryMode::AbsoluteConsistency,
    RecoveryMode::PointInTime,
    RecoveryMode::SkipCorrupted,
];

/// Opens with the 64 KiB segments the value-with-entries log was written with.
fn open_large(sim: &SimFs, mode: RecoveryMode) -> flashlog_wal::Result<Wal> {
    Wal::open(
        DIR,
        options(sim, 64 << 10, SyncPolicy::Always).recovery_mode(mode),
    )
}

/// Issue 12 in the catalogue: the write of a value made of encoded entries, cut
/// by a crash at several points (inside the header, the key, the first embedded
/// entry, the middle, one byte short), with the file ending there or preallocated
/// zeros after it. In the newest segment it is a torn tail in every mode: the
/// entries before it, nothing from inside it, and `AbsoluteConsistency` refuses
/// it at its offset. In an older segment it is damage to that segment's end:
/// the default mode refuses it, `SkipCorrupted` skips it and keeps the next
/// segment's entries, `PointInTime` stops there; none yields an embedded entry.
#[test]
fn a_torn_value_made_of_entries_is_a_torn_tail_in_every_mode_at_every_cut() {
    let sim = SimFs::new();
    let wal = Wal::open(DIR, options(&sim, 64 << 10, SyncPolicy::Always)).unwrap();
    let before: Vec<(Op, Vec<u8>, Vec<u8>)> = (0..4u64)
        .map(|n| (Op::Put, format!("key{n}").into_bytes(), value(n, 20)))
        .collect();
    for (op, key, value) in &before {
        wal.append(*op, key, value).unwrap();
    }
    wal.append(Op::Put, b"snapshot", &value_of_entries(8 << 10))
        .unwrap();
    wal.close().unwrap();
    drop(wal);
    let sim = sim.crash(CrashModel::DropUnsynced);
    let name = SegmentId(1).file_name();
    let bytes = sim.read(path(&name)).unwrap();
    let start = before
        .iter()
        .map(|(_, k, v)| 17 + k.len() + v.len())
        .sum::<usize>();
    let len = bytes.len() - start;
    let mut later = Vec::new();
    codec::encode(&mut later, Op::Put, b"later", b"segment 2");
    let mut images = 0;
    for cut in [3, 8, 12, 20, 40, 100, len / 2, len - 1] {
        for zeros in [0, 4096] {
            let mut torn = bytes[..start + cut].to_vec();
            torn.resize(torn.len() + zeros, 0);
            let context = format!("cut at {cut} of {len}, {zeros} zeros");
            // The newest segment: a torn tail.
            let image = sim.snapshot();
            image.put_durable(path(&name), &torn);
            for mode in MODES {
                match open_large(&image.snapshot(), mode) {
                    Ok(wal) => {
                        assert_ne!(mode, RecoveryMode::AbsoluteConsistency, "{context}");
                        let recovered = Recovered::read(&wal).unwrap();
                        let records: Vec<_> = recovered
                            .entries
                            .iter()
                            .map(|r| (r.op, r.key.clone(), r.value.clone()))
                            .collect();
                        assert_eq!(records, before, "{context}, {mode:?}");
                        let tail = wal.recovery_report().torn_tail.expect("a torn tail");
                        assert_eq!(tail.position.offset, start as u64, "{context}, {mode:?}");
                    }
                    Err(Error::Corrupt { offset, .. })
                        if mode == RecoveryMode::AbsoluteConsistency =>
                    {
                        assert_eq!(offset, start as u64, "{context}");
                    }
                    Err(err) => panic!("{context}, {mode:?}: {err}"),
                }
                images += 1;
            }
            // An older segment: damage to its end, never a source of entries.
            let image = sim.snapshot();
            image.put_durable(path(&name), &torn);
            image.put_durable(path(&SegmentId(2).file_name()), &later);
            for mode in MODES {
                let expected: Vec<&[u8]> = match mode {
                    RecoveryMode::SkipCorrupted => {
                        vec![b"key0", b"key1", b"key2", b"key3", b"later"]
                    }
                    RecoveryMode::PointInTime => vec![b"key0", b"key1", b"key2", b"key3"],
                    _ => {
                        let err = open_large(&image.snapshot(), mode).unwrap_err();
                        assert!(
                            matches!(err, Error::Corrupt { segment: SegmentId(1), offset, .. } if offset == start as u64),
                            "{context}, {mode:?}, sealed: {err}"
                        );
                        images += 1;
                        continue;
                    }
                };
                let wal = open_large(&image.snapshot(), mode)
                    .unwrap_or_else(|err| panic!("{context}, {mode:?}, sealed: {err}"));
                let keys: Vec<Vec<u8>> = Recovered::read(&wal)
                    .unwrap()
                    .entries
                    .into_iter()
                    .map(|r| r.key)
                    .collect();
                assert_eq!(keys, expected, "{context}, {mode:?}, sealed");
                images += 1;
            }
        }
    }
    println!("torn values made of entries: {images} images, every mode, no phantom");
}

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
    let (sim, _, _wal) = open_with_leftover(META_COPY_TMP_FILE);
    assert!(!sim.names(DIR).contains(&META_COPY_TMP_FILE.to_string()));
}
