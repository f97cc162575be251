//! Scrubbing (`Wal::scrub`, `Options::scrub_every`): bit rot in a sealed segment
//! of an open log is reported with its exact segment and offset, a clean log
//! scrubs clean, the rate holds, nothing is written, and truncations running
//! beside a scrub are never reported as damage.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flashlog_wal::fs::{Fs, FsFile, OpenMode, StdFs};
use flashlog_wal::{
    CorruptionKind, Damage, Error, Op, Options, Position, ScrubRate, SegmentId, Wal,
};

use crate::common::{open, segment_files};

fn filled(dir: &Path, entries: u32, segment: u64) -> Wal {
    let wal = open(dir, Options::default().max_segment_size(segment));
    for n in 0..entries {
        wal.append(Op::Put, format!("key-{n}").as_bytes(), &[n as u8; 40])
            .unwrap();
    }
    wal
}

/// XORs one byte of a segment file, behind the open log's back.
fn flip(dir: &Path, position: Position, delta: u64) {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join(position.segment.file_name()))
        .unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, position.offset + delta)
        .unwrap();
    byte[0] ^= 0x08;
    file.write_all_at(&byte, position.offset + delta).unwrap();
}

#[test]
fn a_flipped_byte_in_a_sealed_segment_is_reported_where_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let wal = filled(dir.path(), 200, 1024);
    let first = wal.position(37).unwrap();
    let second = wal.position(120).unwrap();
    assert_ne!(first.segment, second.segment);
    // In the value of entry 37, in the key of entry 120.
    flip(dir.path(), first, 30);
    flip(dir.path(), second, 15);
    let before = segment_files(dir.path());
    let capture = flashlog_testkit::TraceCapture::at(tracing::Level::WARN);
    let report = tracing::subscriber::with_default(capture.clone(), || {
        wal.scrub(ScrubRate::UNLIMITED).unwrap()
    });
    // Counted and traced too: a warning per damaged entry, naming where.
    let metrics = wal.metrics();
    assert_eq!((metrics.scrubs, metrics.scrub_damage), (1, 2));
    let warned: Vec<String> = capture
        .lines()
        .into_iter()
        .filter(|line| line.contains("scrub found damage"))
        .collect();
    assert_eq!(warned.len(), 2, "{warned:?}");
    assert!(warned[0].contains(&first.to_string()), "{warned:?}");
    let entry_len = 17 + "key-37".len() as u64 + 40;
    assert_eq!(report.damage.len(), 2, "{report:?}");
    let Damage {
        position,
        kind,
        len,
    } = report.damage[0];
    assert_eq!((position, len), (first, entry_len));
    assert!(
        matches!(kind, CorruptionKind::ChecksumMismatch { .. }),
        "{kind}"
    );
    assert_eq!(report.damage[1].position, second);
    assert!(!report.is_clean());
    let sealed = wal.segments().len() as u64 - 1;
    assert_eq!(report.segments, sealed);
    // Every other entry of the sealed segments was checked.
    let sealed_entries: u64 = wal.segments()[..sealed as usize]
        .iter()
        .map(|s| s.entries)
        .sum();
    assert_eq!(report.entries, sealed_entries - 2);
    // It wrote nothing.
    assert_eq!(segment_files(dir.path()), before);
    // Reading there fails as the scrub said.
    assert!(matches!(wal.read(37), Err(Error::Corrupt { offset, .. }) if offset == first.offset));
}

#[test]
fn damage_to_a_length_field_is_reported_with_the_offset_recovery_gives() {
    let dir = tempfile::tempdir().unwrap();
    let wal = filled(dir.path(), 60, 1024);
    let at = wal.position(5).unwrap();
    flip(dir.path(), at, 5); // TOTAL_LEN: the lengths disagree, the scan searches.
    let report = wal.scrub(100).unwrap();
    assert_eq!(report.damage.len(), 1, "{report:?}");
    assert_eq!(report.damage[0].position, at);
    assert_eq!(
        report.damage[0].len,
        wal.position(6).unwrap().offset - at.offset
    );
    let sealed = wal.segments().len() - 1;
    let sealed_entries: u64 = wal.segments()[..sealed].iter().map(|s| s.entries).sum();
    assert_eq!(report.entries, sealed_entries - 1);
}

#[test]
fn a_clean_log_scrubs_clean_and_the_active_segment_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let wal = filled(dir.path(), 100, 1024);
    let segments = wal.segments();
    let report = wal.scrub(1000.0).unwrap();
    assert!(report.is_clean(), "{report:?}");
    let sealed = &segments[..segments.len() - 1];
    assert_eq!(report.segments, sealed.len() as u64);
    assert_eq!(report.bytes, sealed.iter().map(|s| s.bytes).sum::<u64>());
    assert_eq!(
        report.entries,
        sealed.iter().map(|s| s.entries).sum::<u64>()
    );
    assert!(report.skipped.is_empty());
    // A fresh log has no sealed segment.
    let empty = tempfile::tempdir().unwrap();
    let report = open(empty.path(), Options::default()).scrub(1).unwrap();
    assert_eq!((report.segments, report.bytes), (0, 0));
}

/// The rate holds (a generous bound: never faster than asked, and not absurdly
/// slower). What it measured is printed.
#[test]
fn the_scrub_keeps_to_its_rate() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), Options::default().max_segment_size(256 << 10));
    let value = vec![7u8; 4000];
    let batch: Vec<(Op, &[u8], &[u8])> =
        (0..64).map(|_| (Op::Put, &b"k"[..], &value[..])).collect();
    while wal.segments().len() < 9 {
        let mut b = flashlog_wal::Batch::new();
        for (_, key, value) in &batch {
            b.put(key, value);
        }
        wal.append_batch(&b).unwrap();
    }
    let rate = 8.0; // MB/s: about 2 MB in 0.25 s
    let start = Instant::now();
    let report = wal.scrub(rate).unwrap();
    let seconds = start.elapsed().as_secs_f64();
    let achieved = report.bytes as f64 / seconds / 1e6;
    eprintln!(
        "scrub at {rate} MB/s: {} bytes in {seconds:.3} s = {achieved:.2} MB/s",
        report.bytes
    );
    assert!(report.bytes >= 2_000_000 && report.is_clean(), "{report:?}");
    assert!(achieved <= rate * 1.02, "{achieved} MB/s");
    assert!(achieved >= rate * 0.2, "{achieved} MB/s");
    assert!(matches!(wal.scrub(0), Err(Error::InvalidOptions(_))));
    assert!(matches!(wal.scrub(-1.0), Err(Error::InvalidOptions(_))));
    assert!(matches!(wal.scrub(f64::NAN), Err(Error::InvalidOptions(_))));
}

/// Scrubs running while other threads append, truncate at the front and the
/// back: segments removed or cut meanwhile are skipped, never damage.
#[test]
fn scrubs_beside_appends_and_truncations_report_no_false_damage() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(filled(dir.path(), 50, 512));
    let stop = Arc::new(AtomicBool::new(false));
    let appender = {
        let (wal, stop) = (Arc::clone(&wal), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                wal.append(Op::Put, b"more", &n.to_le_bytes().repeat(8))
                    .unwrap();
                n += 1;
            }
        })
    };
    let truncator = {
        let (wal, stop) = (Arc::clone(&wal), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut rounds = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let last = wal.last_seq();
                if rounds.is_multiple_of(3) {
                    wal.truncate_back(last.saturating_sub(20).max(wal.first_seq()))
                        .unwrap();
                } else {
                    wal.truncate_front(last.saturating_sub(60)).unwrap();
                }
                rounds += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            rounds
        })
    };
    let (mut scrubs, mut skipped, mut segments) = (0, 0, 0);
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline {
        let report = wal.scrub(ScrubRate::UNLIMITED).unwrap();
        assert!(report.is_clean(), "{report:?}");
        scrubs += 1;
        skipped += report.skipped.len();
        segments += report.segments;
    }
    stop.store(true, Ordering::Relaxed);
    appender.join().unwrap();
    let rounds = truncator.join().unwrap();
    eprintln!(
        "{scrubs} scrubs, {segments} segments checked, {skipped} skipped, {rounds} truncations"
    );
    assert!(scrubs > 10 && segments > 0 && rounds > 10);
}

#[test]
fn a_background_scrubber_reports_damage_and_stops_at_close() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default()
        .max_segment_size(1024)
        .scrub_every(Duration::from_millis(20), ScrubRate::UNLIMITED);
    let wal = open(dir.path(), options);
    assert!(wal.last_scrub().is_none());
    for n in 0..60u32 {
        wal.append(Op::Put, b"key", &n.to_le_bytes()).unwrap();
    }
    let at = wal.position(10).unwrap();
    flip(dir.path(), at, 16);
    let deadline = Instant::now() + Duration::from_secs(20);
    let report = loop {
        if let Some(Ok(report)) = wal.last_scrub() {
            if !report.damage.is_empty() {
                break report;
            }
        }
        assert!(Instant::now() < deadline, "no scrub found the damage");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(report.damage[0].position, at);
    let start = Instant::now();
    wal.close().unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    // Refused options.
    let zero = Options::default().scrub_every(Duration::ZERO, 1);
    assert!(matches!(
        Wal::open(dir.path(), zero),
        Err(Error::InvalidOptions(_))
    ));
    let no_rate = Options::default().scrub_every(Duration::from_secs(1), 0);
    assert!(matches!(
        Wal::open(dir.path(), no_rate),
        Err(Error::InvalidOptions(_))
    ));
}

#[test]
fn a_read_only_view_scrubs_too() {
    let dir = tempfile::tempdir().unwrap();
    let wal = filled(dir.path(), 80, 1024);
    let at = wal.position(3).unwrap();
    flip(dir.path(), at, 20);
    let view = open(
        dir.path(),
        Options::default()
            .read_only()
            .recovery_mode(flashlog_wal::RecoveryMode::TolerateCorruptedTail),
    );
    let report = view.scrub(ScrubRate::UNLIMITED).unwrap();
    assert_eq!(report.damage.len(), 1);
    assert_eq!(
        report.damage[0].position,
        Position {
            segment: SegmentId(1),
            offset: at.offset
        }
    );
}

/// The real file system, except that the next write to a segment, once armed,
/// stops until released.
#[derive(Debug, Default)]
struct PausingWrites {
    armed: std::sync::Mutex<(bool, bool)>, // (armed, paused)
    released: AtomicBool,
    changed: std::sync::Condvar,
}

impl PausingWrites {
    fn pause_here(&self, path: &Path) {
        if !path.to_string_lossy().contains("segment-") {
            return;
        }
        let mut state = self.armed.lock().unwrap();
        if !state.0 {
            return;
        }
        *state = (false, true);
        self.changed.notify_all();
        while !self.released.load(Ordering::SeqCst) {
            state = self.changed.wait(state).unwrap();
        }
    }
}

#[derive(Debug)]
struct PausingFile {
    fs: Arc<PausingWrites>,
    path: std::path::PathBuf,
    inner: Box<dyn FsFile>,
}

impl FsFile for PausingFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> std::io::Result<usize> {
        self.fs.pause_here(&self.path);
        self.inner.write_at(buf, offset)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.inner.sync_data()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
}

#[derive(Debug)]
struct PausingFs(Arc<PausingWrites>);

impl Fs for PausingFs {
    fn create_dir_all(&self, path: &Path) -> std::io::Result<()> {
        StdFs.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> std::io::Result<Vec<String>> {
        StdFs.list_dir(path)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> std::io::Result<Box<dyn FsFile>> {
        Ok(Box::new(PausingFile {
            fs: Arc::clone(&self.0),
            path: path.to_path_buf(),
            inner: StdFs.open(path, mode)?,
        }))
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        StdFs.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        StdFs.rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
        StdFs.sync_dir(path)
    }
    fn lock(&self, path: &Path) -> std::io::Result<Box<dyn std::fmt::Debug + Send + Sync>> {
        StdFs.lock(path)
    }
}

/// Found by review: a group commit places an entry in a new segment (the index
/// has it) while the last entries of the segment it leaves are not written
/// yet. That segment is not sealed on disk: a scrub must not read it, or it
/// reports the unwritten bytes (preallocated zeros) as damage.
#[test]
fn regression_a_segment_whose_last_entries_are_not_written_yet_is_not_scrubbed() {
    let dir = tempfile::tempdir().unwrap();
    let writes = Arc::new(PausingWrites::default());
    let options = Options::default()
        .fs(Arc::new(PausingFs(Arc::clone(&writes))))
        .max_segment_size(200);
    let wal = Arc::new(open(dir.path(), options));
    for _ in 0..4 {
        wal.append(Op::Put, b"k", &[1; 20]).unwrap(); // 38 bytes each
    }
    writes.armed.lock().unwrap().0 = true;
    let leader = {
        let wal = Arc::clone(&wal);
        std::thread::spawn(move || wal.append(Op::Put, b"k", &[2; 20]).unwrap())
    };
    {
        let mut state = writes.armed.lock().unwrap();
        while !state.1 {
            state = writes.changed.wait(state).unwrap();
        }
    }
    // Does not fit segment 1: placed in segment 2, queued behind the leader.
    let next = {
        let wal = Arc::clone(&wal);
        std::thread::spawn(move || wal.append(Op::Put, b"k", &[3; 20]).unwrap())
    };
    while wal.segments().len() < 2 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let report = wal.scrub(ScrubRate::UNLIMITED).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.segments, 0);
    writes.released.store(true, Ordering::SeqCst);
    {
        let _state = writes.armed.lock().unwrap();
        writes.changed.notify_all();
    }
    assert_eq!((leader.join().unwrap(), next.join().unwrap()), (5, 6));
    let report = wal.scrub(ScrubRate::UNLIMITED).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!((report.segments, report.entries), (1, 5));
}

/// Found by review: after `remove_skipped_damage` a segment holds fewer entries
/// than sequence numbers (the removed ones are a gap); a scrub compares the file
/// with the entries on disk, not with the numbers, and finds it clean.
#[test]
fn regression_a_segment_with_a_gap_scrubs_clean() {
    let dir = tempfile::tempdir().unwrap();
    let damaged = {
        let wal = filled(dir.path(), 60, 1024);
        let at = wal.position(4).unwrap();
        wal.close().unwrap();
        at
    };
    flip(dir.path(), damaged, 30);
    let skip = Options::default().recovery_mode(flashlog_wal::RecoveryMode::SkipCorrupted);
    let removed = flashlog_wal::remove_skipped_damage(dir.path(), skip).unwrap();
    assert_eq!(removed.len(), 1);
    let wal = open(dir.path(), Options::default());
    assert!(matches!(wal.read(4), Err(Error::Skipped { seq: 4 })));
    let report = wal.scrub(ScrubRate::UNLIMITED).unwrap();
    assert!(report.is_clean(), "{report:?}");
    let sealed = wal.segments().len() - 1;
    let numbers: u64 = wal.segments()[..sealed].iter().map(|s| s.entries).sum();
    assert_eq!(report.entries, numbers - 1);
}
