//! Read-only opens of a log that another handle keeps changing.

use std::path::Path;

use flashlog_wal::{Op, Options, Wal};

/// Read-only opens, for `run_for`, of a log in a new directory under `root` that
/// another handle keeps appending to, rotating and truncating at the front. Every
/// open must succeed and see a consistent log: contiguous segments, and every
/// entry from first to last readable and the one appended under its number (or
/// removed since by a `truncate_front`). Returns how many opens ran.
fn read_only_opens_of_a_live_log(root: &Path, run_for: std::time::Duration) -> u64 {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;
    use std::time::Instant;

    let dir = tempfile::tempdir_in(root).unwrap();
    let options = Options::default()
        .max_segment_size(1024)
        .sync_policy(flashlog_wal::SyncPolicy::Manual);
    let wal = Wal::open(dir.path(), options).unwrap();
    let key = |seq: u64| seq.to_le_bytes();
    for seq in 1..=40 {
        wal.append(Op::Put, &key(seq), b"value").unwrap();
    }
    wal.rotate().unwrap();
    // The writer's first sequence number, updated under the lock while
    // `truncate_front` removes segments: a reader that finds an entry gone checks
    // that it was removed.
    let first = Mutex::new(wal.first_seq());
    let stop = AtomicBool::new(false);
    let opens = std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                for _ in 0..7 {
                    let seq = wal.last_seq() + 1;
                    assert_eq!(wal.append(Op::Put, &key(seq), b"value").unwrap(), seq);
                }
                wal.rotate().unwrap();
                if round.is_multiple_of(3) {
                    let mut first = first.lock().unwrap();
                    *first = wal
                        .truncate_front(wal.last_seq().saturating_sub(60))
                        .unwrap();
                }
            }
        });
        let reader = scope.spawn(|| {
            let deadline = Instant::now() + run_for;
            let mut opens = 0u64;
            while Instant::now() < deadline {
                let reader = Wal::open(dir.path(), Options::default().read_only())
                    .unwrap_or_else(|err| panic!("read-only open {opens}: {err}"));
                opens += 1;
                let (first_seq, last_seq) = (reader.first_seq(), reader.last_seq());
                assert!(first_seq > 1 || last_seq >= 40, "{first_seq}..={last_seq}");
                let segments = reader.segments();
                for pair in segments.windows(2) {
                    assert_eq!(pair[0].id.next(), pair[1].id);
                    assert_eq!(pair[0].first_seq + pair[0].entries, pair[1].first_seq);
                }
                assert_eq!(segments[0].first_seq, first_seq);
                for seq in first_seq..=last_seq {
                    match reader.read(seq) {
                        Ok(entry) => assert_eq!(entry.key(), key(seq), "entry {seq}"),
                        Err(err) => assert!(
                            seq < *first.lock().unwrap(),
                            "entry {seq} of {first_seq}..={last_seq}: {err}"
                        ),
                    }
                }
            }
            opens
        });
        let opens = reader.join();
        stop.store(true, Ordering::Relaxed);
        opens.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    wal.close().unwrap();
    opens
}

/// Issue 11, item 3: a read-only open listed the directory before it read the side
/// file, so a rotation in between made it report a segment missing (and one
/// removed by `truncate_front` in between could not be opened).
#[test]
fn regression_read_only_opens_of_a_live_log_see_a_consistent_log() {
    // FLASHLOG_STRESS_MS lengthens the run (by hand; CI runs the short one).
    let millis = std::env::var("FLASHLOG_STRESS_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(1500);
    let run_for = std::time::Duration::from_millis(millis);
    // A real disk (the target directory) and tmpfs: the race was far more likely
    // on tmpfs.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let disk = read_only_opens_of_a_live_log(target, run_for);
    let shm = Path::new("/dev/shm");
    let tmpfs = if shm.is_dir() {
        read_only_opens_of_a_live_log(shm, run_for)
    } else {
        0
    };
    eprintln!("read-only opens of a live log: {disk} on disk, {tmpfs} on tmpfs");
    assert!(disk > 0);
}
