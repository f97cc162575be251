//! The side files (`flashlog.meta` and its copy, `flashlog.index`, leftovers):
//! damaged, missing, unreadable, replaced by directories, or crafted with a valid
//! checksum and numbers out of range. None of that may lock a user out of intact
//! segments, and none may panic an open.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flashlog_testkit::{crc32_ieee, Call, CallOn, HookFs, Hooks};
use flashlog_wal::fs::StdFs;
use flashlog_wal::{Error, Options, RecoveryMode, Wal, INDEX_FILE, META_FILE};

use crate::common::{append_all, open, read_all, sample_records, Record};

const SEGMENT: u64 = 128;
/// The second copy of the side file.
const META_COPY: &str = "flashlog.meta.bak";

const MODES: [RecoveryMode; 4] = [
    RecoveryMode::TolerateCorruptedTail,
    RecoveryMode::AbsoluteConsistency,
    RecoveryMode::PointInTime,
    RecoveryMode::SkipCorrupted,
];

fn options(mode: RecoveryMode) -> Options {
    Options::default()
        .max_segment_size(SEGMENT)
        .recovery_mode(mode)
}

/// A log of 30 entries in several segments after `truncate_front(15)`, closed;
/// returns the entries it holds.
fn truncated_log(dir: &Path) -> Vec<Record> {
    let records = sample_records(30);
    let wal = open(dir, options(RecoveryMode::default()));
    append_all(&wal, &records);
    wal.truncate_front(15).unwrap();
    let first = wal.first_seq();
    assert!(first > 1, "segments were removed");
    wal.close().unwrap();
    records[first as usize - 1..].to_vec()
}

/// Every way of damaging a file by one byte: flip, drop, add.
fn one_byte_damage(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for at in [0, 13, 21, bytes.len() / 2, bytes.len() - 1] {
        let mut flipped = bytes.to_vec();
        flipped[at] ^= 0x40;
        out.push((format!("flip at {at}"), flipped));
        let mut dropped = bytes.to_vec();
        dropped.remove(at);
        out.push((format!("drop at {at}"), dropped));
        let mut added = bytes.to_vec();
        added.insert(at, 0x55);
        out.push((format!("add at {at}"), added));
    }
    out
}

fn first_seq_of(records_first: &[Record], wal: &Wal) -> u64 {
    assert_eq!(read_all(wal), records_first);
    wal.first_seq()
}

/// Issue 12, item 4: one bad byte in `flashlog.meta` gave `CorruptMeta` in every
/// mode, read-only or not. The second copy now opens the log.
#[test]
fn regression_one_bad_byte_in_the_side_file_opens_from_its_copy_in_every_mode() {
    let template = tempfile::tempdir().unwrap();
    let kept = truncated_log(template.path());
    let first = {
        let wal = open(
            template.path(),
            options(RecoveryMode::default()).read_only(),
        );
        first_seq_of(&kept, &wal)
    };
    let meta = fs::read(template.path().join(META_FILE)).unwrap();
    for (what, damaged) in one_byte_damage(&meta) {
        for mode in MODES {
            for read_only in [true, false] {
                let dir = copy_dir(template.path());
                fs::write(dir.path().join(META_FILE), &damaged).unwrap();
                let mut opts = options(mode);
                if read_only {
                    opts = opts.read_only();
                }
                let wal = Wal::open(dir.path(), opts)
                    .unwrap_or_else(|err| panic!("{what}, {mode:?}, read-only {read_only}: {err}"));
                assert_eq!(wal.first_seq(), first, "{what}, {mode:?}");
                assert_eq!(read_all(&wal), kept, "{what}, {mode:?}");
                drop(wal);
                let now = fs::read(dir.path().join(META_FILE)).unwrap();
                if read_only {
                    assert_eq!(now, damaged, "a read-only open changed the side file");
                } else {
                    assert_eq!(now, meta, "{what}: a read-write open rewrites the bad copy");
                }
            }
        }
    }
}

/// Issue 12, item 4: deleting `flashlog.meta` gave "segment 1 is missing".
#[test]
fn regression_a_deleted_side_file_opens_from_its_copy() {
    let dir = tempfile::tempdir().unwrap();
    let kept = truncated_log(dir.path());
    let meta = fs::read(dir.path().join(META_FILE)).unwrap();
    fs::remove_file(dir.path().join(META_FILE)).unwrap();
    let wal = open(dir.path(), options(RecoveryMode::default()).read_only());
    assert_eq!(read_all(&wal), kept);
    drop(wal);
    let wal = open(dir.path(), options(RecoveryMode::default()));
    assert_eq!(read_all(&wal), kept);
    drop(wal);
    assert_eq!(fs::read(dir.path().join(META_FILE)).unwrap(), meta);
}

/// Issue 12, item 4: with no copy left, the error says how to rebuild it.
#[test]
fn regression_both_copies_damaged_is_an_error_that_names_the_repair() {
    let dir = tempfile::tempdir().unwrap();
    truncated_log(dir.path());
    for name in [META_FILE, META_COPY] {
        let path = dir.path().join(name);
        let mut bytes = fs::read(&path).unwrap();
        bytes[21] ^= 1;
        fs::write(&path, &bytes).unwrap();
    }
    for read_only in [true, false] {
        let mut opts = options(RecoveryMode::default());
        if read_only {
            opts = opts.read_only();
        }
        let err = Wal::open(dir.path(), opts).unwrap_err();
        assert!(matches!(err, Error::CorruptMeta { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("flashlog repair --first-seq"), "{text}");
    }
}

/// An [`Fs`] that fails every open of one file name with EACCES, as for a file the
/// opening user may not read (the tests run as root, where mode bits do not stop
/// reads).
#[derive(Debug)]
struct Unreadable(&'static str);

impl Hooks for Unreadable {
    fn before(&self, on: &CallOn<'_>) -> io::Result<()> {
        let opens = matches!(on.call, Call::Open | Call::Create);
        if opens && on.path.file_name().is_some_and(|name| name == self.0) {
            return Err(io::Error::from_raw_os_error(13));
        }
        Ok(())
    }
}

/// A log of several segments with a checkpoint, closed.
fn checkpointed_log(dir: &Path) -> Vec<Record> {
    let records = sample_records(30);
    let wal = open(dir, options(RecoveryMode::default()));
    append_all(&wal, &records);
    wal.close().unwrap();
    assert!(dir.join(INDEX_FILE).exists());
    records
}

/// Issue 12, item 5: `flashlog.index` is a hint, yet one the opening user could
/// not read failed both the read-write and the read-only open.
#[test]
fn regression_an_unreadable_checkpoint_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let records = checkpointed_log(dir.path());
    for read_only in [true, false] {
        let mut opts = options(RecoveryMode::default()).fs(Arc::new(HookFs::wrap(
            Arc::new(StdFs),
            Arc::new(Unreadable(INDEX_FILE)),
        )));
        if read_only {
            opts = opts.read_only();
        }
        let wal = Wal::open(dir.path(), opts)
            .unwrap_or_else(|err| panic!("read-only {read_only}: {err}"));
        assert_eq!(read_all(&wal), records);
    }
}

/// Issue 12, item 5: a `flashlog.index` replaced by a directory failed every open.
#[test]
fn regression_a_checkpoint_that_is_a_directory_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let records = checkpointed_log(dir.path());
    fs::remove_file(dir.path().join(INDEX_FILE)).unwrap();
    fs::create_dir(dir.path().join(INDEX_FILE)).unwrap();
    for mode in MODES {
        for read_only in [true, false] {
            let mut opts = options(mode);
            if read_only {
                opts = opts.read_only();
            }
            let wal = Wal::open(dir.path(), opts)
                .unwrap_or_else(|err| panic!("{mode:?}, read-only {read_only}: {err}"));
            assert_eq!(read_all(&wal), records);
        }
    }
}

/// Issue 12, item 5: a leftover temporary side file that is a directory got
/// "cannot remove"; the error now names it and says what it is.
#[test]
fn regression_a_leftover_tmp_that_is_a_directory_is_named() {
    for name in ["flashlog.meta.tmp", "flashlog.index.tmp"] {
        let dir = tempfile::tempdir().unwrap();
        checkpointed_log(dir.path());
        fs::create_dir(dir.path().join(name)).unwrap();
        let err = Wal::open(dir.path(), options(RecoveryMode::default())).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(name), "{text}");
        assert!(text.contains("directory"), "{text}");
        assert!(!text.starts_with("cannot remove"), "{text}");
    }
}

/// A version 2 side file with a valid checksum.
fn crafted_meta(words: [u64; 6]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"FLWLMETA");
    out.extend_from_slice(&2u32.to_le_bytes());
    for word in words {
        out.extend_from_slice(&word.to_le_bytes());
    }
    let crc = crc32_ieee(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// A directory holding one segment of one entry under `name`, and `meta` as the
/// side file (both copies).
fn crafted_dir(segment_name: &str, meta: &[u8]) -> tempfile::TempDir {
    let source = tempfile::tempdir().unwrap();
    let wal = open(source.path(), Options::default());
    wal.append(flashlog_wal::Op::Put, b"k", b"v").unwrap();
    wal.close().unwrap();
    let segment = fs::read(source.path().join("segment-0001.log")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(segment_name), segment).unwrap();
    for name in [META_FILE, META_COPY] {
        fs::write(dir.path().join(name), meta).unwrap();
    }
    dir
}

fn open_every_way(dir: &Path) -> Vec<flashlog_wal::Result<Wal>> {
    let mut out = Vec::new();
    for mode in MODES {
        for read_only in [true, false] {
            let mut opts = Options::default().recovery_mode(mode);
            if read_only {
                opts = opts.read_only();
            }
            out.push(Wal::open(dir, opts));
        }
    }
    out
}

/// Issue 12, item 6: a side file naming `first_segment = u64::MAX` (with that
/// segment's file there) panicked a read-only open in `SegmentId::next`.
#[test]
fn regression_a_side_file_naming_the_largest_segment_id_is_refused() {
    let max = u64::MAX;
    let dir = crafted_dir(
        &format!("segment-{max}.log"),
        &crafted_meta([max, 1, 0, max, 0, 0]),
    );
    for result in open_every_way(dir.path()) {
        let err = result.unwrap_err();
        assert!(matches!(err, Error::CorruptMeta { .. }), "{err}");
    }
}

/// Issue 12, item 6: `first_seq = u64::MAX` made `append` overflow in the index.
#[test]
fn regression_a_side_file_with_the_largest_sequence_number_is_refused() {
    let dir = crafted_dir("segment-0001.log", &crafted_meta([1, u64::MAX, 0, 1, 0, 0]));
    for result in open_every_way(dir.path()) {
        let err = result.unwrap_err();
        assert!(matches!(err, Error::CorruptMeta { .. }), "{err}");
    }
}

/// Issue 12, item 6: a segment file named with the largest id (and no side file)
/// is refused with an error that names it.
#[test]
fn regression_a_segment_named_with_the_largest_id_is_refused() {
    let dir = crafted_dir("segment-0001.log", &crafted_meta([1, 1, 0, 1, 0, 0]));
    for name in [META_FILE, META_COPY] {
        fs::remove_file(dir.path().join(name)).unwrap();
    }
    let name = format!("segment-{}.log", u64::MAX);
    fs::copy(dir.path().join("segment-0001.log"), dir.path().join(&name)).unwrap();
    fs::remove_file(dir.path().join("segment-0001.log")).unwrap();
    for result in open_every_way(dir.path()) {
        let err = result.unwrap_err();
        assert!(err.to_string().contains(&name), "{err}");
    }
}

/// A copy of a directory's files (not its subdirectories).
fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            let target: PathBuf = to.path().join(entry.file_name());
            fs::copy(entry.path(), target).unwrap();
        }
    }
    to
}

/// Issue 12, item 6: a checkpoint record (valid checksum) with an entry count no
/// segment can hold was trusted, and the next sequence number overflowed.
#[test]
fn regression_a_checkpoint_record_with_an_impossible_count_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let records = checkpointed_log(dir.path());
    let path = dir.path().join(INDEX_FILE);
    let mut index = fs::read(&path).unwrap();
    // The first record's entry count (header 16 bytes, then segment, first_seq).
    index[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
    let body = index.len() - 4;
    let crc = crc32_ieee(&index[..body]);
    index[body..].copy_from_slice(&crc.to_le_bytes());
    fs::write(&path, &index).unwrap();
    for read_only in [true, false] {
        let mut opts = options(RecoveryMode::default());
        if read_only {
            opts = opts.read_only();
        }
        let wal = Wal::open(dir.path(), opts)
            .unwrap_or_else(|err| panic!("read-only {read_only}: {err}"));
        assert_eq!(read_all(&wal), records);
    }
}

/// Numbers a crafted side file might hold: the edges of every range, and any.
fn number() -> impl proptest::strategy::Strategy<Value = u64> {
    use proptest::prelude::*;
    prop_oneof![
        // Mostly numbers a small log has, so that many opens get far.
        12 => 0u64..6,
        1 => Just(u64::MAX),
        1 => Just(u64::MAX - 1),
        1 => Just(1 << 63),
        1 => Just((1 << 63) - 1),
        1 => Just(u64::from(u32::MAX)),
        1 => any::<u64>(),
    ]
}

/// A checkpoint with a valid checksum holding `records` (segment, first_seq,
/// entries, len, last_offset, last_crc).
fn crafted_checkpoint(records: &[(u64, u64, u64, u64, u64, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"FLWLINDX");
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    for &(id, first_seq, entries, len, offset, crc) in records {
        for word in [id, first_seq, entries, len, offset] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&crc.to_le_bytes());
    }
    let crc = crc32_ieee(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// 48 cases, or `PROPTEST_CASES`.
fn proptest_cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(48)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(proptest_cases()))]

    /// Issue 12, item 6: whatever numbers side files with valid checksums hold,
    /// next to a few segment files, no open in any mode panics (nor an append or
    /// a read after it).
    #[test]
    fn crafted_side_files_never_panic_an_open(
        meta in proptest::array::uniform6(number()),
        copy_differs in proptest::bool::ANY,
        records in proptest::collection::vec(
            (number(), number(), number(), number(), number(), proptest::prelude::any::<u32>()),
            0..3,
        ),
        segments in proptest::collection::vec((number(), 0usize..4), 1..4),
        plausible in proptest::bool::weighted(0.7),
    ) {
        let mut meta = meta;
        let mut segments = segments;
        if plausible {
            // Numbers that pass the checks more often, so that opens get further:
            // a first sequence number, a newest segment not before the first,
            // segments counted from the first.
            // The edges stay: the largest first sequence number and segment id
            // an open accepts.
            let largest = (1u64 << 63) - 1;
            meta[0] = meta[0].min(largest);
            meta[1] = meta[1].clamp(1, largest);
            for word in [2, 4, 5] {
                meta[word] %= 8;
            }
            if meta[3] != 0 {
                meta[3] = meta[3].clamp(meta[0], largest);
            }
            for (id, _) in &mut segments {
                *id = meta[0].wrapping_add(*id % 4);
            }
        }
        let mut entries = Vec::new();
        for n in 0..3u8 {
            flashlog_wal::codec::encode(&mut entries, flashlog_wal::Op::Put, &[n], b"value");
        }
        let entry_len = entries.len() / 3;
        for mode in MODES {
            for read_only in [true, false] {
                let dir = tempfile::tempdir().unwrap();
                for &(id, count) in &segments {
                    let name = format!("segment-{id:04}.log");
                    fs::write(dir.path().join(name), &entries[..count * entry_len]).unwrap();
                }
                let mut meta = meta;
                if read_only {
                    // A read-only open that fails while a truncate_back is recorded
                    // as under way waits (10 s) for the writer to finish it.
                    meta[2] = 0;
                }
                fs::write(dir.path().join(META_FILE), crafted_meta(meta)).unwrap();
                let mut copy = meta;
                if copy_differs {
                    copy[1] = copy[1].wrapping_add(1);
                }
                fs::write(dir.path().join(META_COPY), crafted_meta(copy)).unwrap();
                fs::write(dir.path().join(INDEX_FILE), crafted_checkpoint(&records)).unwrap();
                let mut opts = Options::default().recovery_mode(mode);
                if read_only {
                    opts = opts.read_only();
                }
                if let Ok(wal) = Wal::open(dir.path(), opts) {
                    if let Ok(iter) = wal.iter_from(wal.first_seq()) {
                        for entry in iter.take(10) {
                            drop(entry);
                        }
                    }
                    if !read_only {
                        let _ = wal.append(flashlog_wal::Op::Put, b"k", b"v");
                        let _ = wal.truncate_front(wal.last_seq());
                        let _ = wal.close();
                    }
                }
            }
        }
    }
}
