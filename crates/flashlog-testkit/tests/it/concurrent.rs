//! Issue 11: calls on one log running at the same time, checked against the
//! history of what every thread did ([`flashlog_testkit::history`]).
//!
//! Six threads append, append batches, read, iterate (plain, following, with
//! timeouts, seeking), wait for entries, truncate at both ends, rotate, sync and
//! open the log read-only, on 4 KiB segments so that rotation and truncation cross
//! segments. Every call is stamped with a global logical clock; every result is
//! checked against the versions each sequence number had and when. A round ends
//! with `close` while the threads still run; the log is then reopened and must hold
//! exactly the history's final state, and the next round goes on from it.
//!
//! Variants: a temporary directory on the disk (under `SyncPolicy::Manual`, so the
//! disk's fsyncs do not throttle the race) and on tmpfs (`/dev/shm`, under
//! `SyncPolicy::Always`, group commit included), each with and without a
//! [`DelayFs`] that sleeps before random calls. `FLASHLOG_LONG=1` runs each for
//! minutes (`FLASHLOG_CONCURRENT_SECS` sets how many seconds) and prints figures.
//! `FLASHLOG_SEED` fixes the seed (thread interleavings still vary).

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use flashlog_testkit::{Call, Delay, DelayFs};
use flashlog_wal::fs::StdFs;
use flashlog_wal::{Error, Op, Options, SyncPolicy, Wal};

mod checks;
mod round;
mod worker;

use round::run_variant;

const THREADS: usize = 6;
const SEGMENT: u64 = 4096;
/// Worker threads are named with this prefix: their panics are recorded, not printed.
const WORKER: &str = "concurrent-worker-";
/// A blocked call must return this soon after `close` returned.
const PROMPT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy)]
enum Disk {
    /// A temporary directory under the system's temporary directory.
    Temp,
    /// tmpfs.
    Shm,
}

#[derive(Debug, Clone, Copy)]
struct Variant {
    name: &'static str,
    disk: Disk,
    delays: bool,
    policy: SyncPolicy,
    seed: u64,
}

/// An error with its sources, e.g. `cannot read …: file ends early`.
fn full(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn seed(default: u64) -> u64 {
    std::env::var("FLASHLOG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[test]
fn concurrent_calls_on_disk() {
    run_variant(Variant {
        name: "concurrent_calls_on_disk",
        disk: Disk::Temp,
        delays: false,
        policy: SyncPolicy::Manual,
        seed: seed(0x11_0001),
    });
}

#[test]
fn concurrent_calls_on_disk_with_delays() {
    run_variant(Variant {
        name: "concurrent_calls_on_disk_with_delays",
        disk: Disk::Temp,
        delays: true,
        policy: SyncPolicy::Manual,
        seed: seed(0x11_0002),
    });
}

#[test]
fn concurrent_calls_on_tmpfs() {
    run_variant(Variant {
        name: "concurrent_calls_on_tmpfs",
        disk: Disk::Shm,
        delays: false,
        policy: SyncPolicy::Always,
        seed: seed(0x11_0003),
    });
}

#[test]
fn concurrent_calls_on_tmpfs_with_delays() {
    run_variant(Variant {
        name: "concurrent_calls_on_tmpfs_with_delays",
        disk: Disk::Shm,
        delays: true,
        policy: SyncPolicy::Always,
        seed: seed(0x11_0004),
    });
}

/// Issue 11's report made deterministic: `read(8)` finds entry 8's position under
/// the lock, then its `read_at` is delayed (in the reader thread only) while
/// another thread cuts the log back to 4 entries and appends 16 smaller ones, so
/// that new entry 12 starts where old entry 8 did. The read must return old 8, new
/// 8 or `SeqOutOfRange`; never entry 12's bytes as entry 8.
#[test]
fn regression_read_racing_truncate_back_and_reappends() {
    let dir = tempfile::tempdir().unwrap();
    let fs = DelayFs::new(Arc::new(StdFs), 11)
        .delay(Call::ReadAt, Delay::exactly(Duration::from_secs(1)))
        .only_threads(["reader"]);
    let options = Options::default()
        .sync_policy(SyncPolicy::Manual)
        .fs(Arc::new(fs.clone()));
    let wal = Arc::new(Wal::open(dir.path(), options).unwrap());
    // Old entries take 70 bytes, new ones 30: 7 × 70 = 4 × 70 + 7 × 30.
    for n in 1..=10u64 {
        let seq = wal
            .append(Op::Put, format!("o{n:02}").as_bytes(), &[n as u8; 50])
            .unwrap();
        assert_eq!(seq, n);
    }
    let old_8 = wal.position(8).unwrap();
    let reader = {
        let wal = Arc::clone(&wal);
        thread::Builder::new()
            .name("reader".into())
            .spawn(move || wal.read(8))
            .unwrap()
    };
    let waiting = Instant::now();
    while fs.delayed(Call::ReadAt) == 0 {
        assert!(
            waiting.elapsed() < Duration::from_secs(10),
            "the reader never read"
        );
        thread::sleep(Duration::from_millis(1));
    }
    let rewriting = Instant::now();
    wal.truncate_back(5).unwrap();
    for n in 5..=20u64 {
        let seq = wal
            .append(Op::Put, format!("n{n:02}").as_bytes(), &[n as u8; 10])
            .unwrap();
        assert_eq!(seq, n);
    }
    assert_eq!(
        wal.position(12).unwrap(),
        old_8,
        "the layout this test relies on"
    );
    // The rewrite starts while the read is held up; a log that pins what is being
    // read makes the truncation wait for it (about the reader's delay).
    let _waited = rewriting.elapsed();
    match reader.join().unwrap() {
        Ok(entry) => {
            let key = String::from_utf8_lossy(entry.key()).into_owned();
            assert_eq!(entry.seq(), 8);
            assert!(
                key == "o08" || key == "n08",
                "read(8) returned the entry with key {key:?}"
            );
        }
        Err(Error::SeqOutOfRange { .. }) => {}
        Err(err) => panic!("read(8) failed: {err}"),
    }
    wal.close().unwrap();
}
