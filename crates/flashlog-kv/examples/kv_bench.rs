//! The store's speed and memory, each against a baseline measured in the same run.
//!
//! `cargo run --release -p flashlog-kv --example kv_bench [-- KEYS]` (default 1 000 000
//! keys with 100-byte values; the files go to a temporary folder in the current one).
//!
//! - open: keys replayed per second, vs reading the same segment files plainly;
//! - memory: resident memory that `open` adds, per key beyond the key's own bytes,
//!   measured in a child process (so no memory freed earlier is reused);
//! - get: a random key's `get` (one positioned read) vs one raw `pread` of the same
//!   size at a random offset of the same files;
//! - compaction of a log that is 90% dead, in MB/s of log processed, vs a plain copy
//!   (read + write + fsync) of the same segment files.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use flashlog_kv::{AutoCompact, Db, DbOptions};
use flashlog_wal::{Options, SyncPolicy};

const VALUE_LEN: usize = 100;

fn options() -> DbOptions {
    DbOptions::default()
        .wal(Options::default().sync_policy(SyncPolicy::Manual))
        .auto_compact(AutoCompact::Never)
}

/// A well-mixed 16-byte key for `i` (hex of a splitmix64 hash).
fn key(i: u64) -> Vec<u8> {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    format!("{:016x}", z ^ (z >> 31)).into_bytes()
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("segment-"))
        })
        .collect();
    files.sort();
    files
}

fn fill(db: &Db, keys: u64, rounds: u64) {
    let mut value = vec![0u8; VALUE_LEN];
    for round in 0..rounds {
        value.fill(round as u8);
        for i in 0..keys {
            db.put(&key(i), &value).expect("put");
        }
    }
    db.sync().expect("sync");
}

/// `entries` puts of which one in ten is a key written once (live) and the rest
/// overwrite 1000 keys (dead but for the last): live data spread over every segment.
fn fill_dead(db: &Db, entries: u64) {
    let value = vec![7u8; VALUE_LEN];
    for j in 0..entries {
        let k = if j % 10 == 0 {
            key(j / 10)
        } else {
            key(u64::MAX - j % 1000)
        };
        db.put(&k, &value).expect("put");
    }
    db.sync().expect("sync");
}

/// The child process: opens the store, prints `seconds rss_growth keys key_bytes`.
fn child_open(dir: &Path) {
    let before = rss_bytes();
    let start = Instant::now();
    let db = Db::open(dir, options().read_only()).expect("open");
    let seconds = start.elapsed().as_secs_f64();
    let after = rss_bytes();
    let keys = db.len() as u64;
    println!(
        "{seconds} {} {keys} {}",
        after.saturating_sub(before),
        keys * 16
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "--child-open" {
        child_open(Path::new(&args[2]));
        return;
    }
    let keys: u64 = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let scratch = tempfile::Builder::new()
        .prefix("kv-bench-")
        .tempdir_in(".")
        .expect("temporary folder");

    // 1. A store of `keys` keys with 100-byte values.
    let dir = scratch.path().join("store");
    let start = Instant::now();
    {
        let db = Db::open(&dir, options()).expect("open");
        fill(&db, keys, 1);
        db.close().expect("close");
    }
    println!(
        "built {keys} keys x {VALUE_LEN} B in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    let files = segment_files(&dir);
    let log_bytes: u64 = files
        .iter()
        .map(|f| f.metadata().expect("stat").len())
        .sum();

    // Baseline for open: read the same files plainly.
    let start = Instant::now();
    let mut read = 0;
    for file in &files {
        read += std::fs::read(file).expect("read").len();
    }
    let plain_read = start.elapsed().as_secs_f64();
    assert_eq!(read as u64, log_bytes);

    // 2. Open (replay) in a child process, with its memory growth.
    let out = std::process::Command::new(std::env::current_exe().expect("exe"))
        .arg("--child-open")
        .arg(&dir)
        .output()
        .expect("child");
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = text
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let (open_s, rss, n, key_bytes) = (f[0], f[1], f[2], f[3]);
    println!(
        "open: {:.0} entries/s ({:.3} s for {n} keys, {:.0} MB/s of log); plain read of the same files: {:.0} MB/s; ratio {:.2}",
        n / open_s,
        open_s,
        log_bytes as f64 / open_s / 1e6,
        log_bytes as f64 / plain_read / 1e6,
        plain_read / open_s
    );
    println!(
        "memory: open adds {:.1} MB resident = {:.1} bytes per key beyond the key's {} bytes (includes the log's own 4-byte offset per entry)",
        rss / 1e6,
        (rss - key_bytes) / n,
        16
    );

    // 3. get of random keys vs a raw pread of the same size.
    let db = Db::open(&dir, options()).expect("open");
    let probes = 200_000u64;
    let mut x = 12345u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let probe_keys: Vec<Vec<u8>> = (0..probes).map(|_| key(next() % keys)).collect();
    let start = Instant::now();
    for probe in &probe_keys {
        let value = db.get(probe).expect("get").expect("present");
        assert_eq!(value.len(), VALUE_LEN);
    }
    let get_ns = start.elapsed().as_nanos() as f64 / probes as f64;
    let handles: Vec<std::fs::File> = files
        .iter()
        .map(|f| std::fs::File::open(f).expect("open"))
        .collect();
    let sizes: Vec<u64> = files
        .iter()
        .map(|f| f.metadata().expect("stat").len())
        .collect();
    let entry_len = 17 + 16 + VALUE_LEN;
    let mut buf = vec![0u8; entry_len];
    let start = Instant::now();
    for _ in 0..probes {
        let i = (next() % handles.len() as u64) as usize;
        let offset = next() % (sizes[i] - entry_len as u64);
        handles[i].read_exact_at(&mut buf, offset).expect("pread");
        std::hint::black_box(&buf);
    }
    let pread_ns = start.elapsed().as_nanos() as f64 / probes as f64;
    println!(
        "get: {get_ns:.0} ns per random key (one positioned read); raw pread of {entry_len} B: {pread_ns:.0} ns; ratio {:.2}",
        get_ns / pread_ns
    );
    drop(db);

    // 4. Compaction of a log that is 90% dead: keys/10 keys written 10 times.
    let dir = scratch.path().join("dead");
    let db = Db::open(&dir, options()).expect("open");
    fill_dead(&db, keys);
    let before = db.stats();
    let sealed: Vec<_> = segment_files(&dir);
    let sealed = &sealed[..sealed.len() - 1];
    let start = Instant::now();
    let report = db.compact().expect("compact");
    let compact_s = start.elapsed().as_secs_f64();
    let after = db.stats();
    assert_eq!(after.keys, before.keys);
    drop(db);
    // Baseline: copy the same amount of bytes (the sealed segments of a twin log).
    let twin = scratch.path().join("twin");
    {
        let db = Db::open(&twin, options()).expect("open");
        fill_dead(&db, keys);
    }
    let twin_files = segment_files(&twin);
    let copy_dir = scratch.path().join("copy");
    std::fs::create_dir(&copy_dir).expect("mkdir");
    let start = Instant::now();
    let mut copied = 0;
    for file in &twin_files[..sealed.len()] {
        let to = copy_dir.join(file.file_name().expect("name"));
        copied += std::fs::copy(file, &to).expect("copy");
        std::fs::File::open(&to)
            .and_then(|f| f.sync_all())
            .expect("fsync");
    }
    let copy_s = start.elapsed().as_secs_f64();
    let compact_mbs = report.bytes_read as f64 / compact_s / 1e6;
    let copy_mbs = copied as f64 / copy_s / 1e6;
    println!(
        "compaction: {:.1} MB log ({:.0}% dead) -> {:.1} MB in {compact_s:.3} s = {compact_mbs:.0} MB/s of log read ({} entries copied); plain copy+fsync of the same files: {copy_mbs:.0} MB/s; ratio {:.2}",
        before.log_bytes as f64 / 1e6,
        100.0 * before.dead_bytes as f64 / before.log_bytes as f64,
        after.log_bytes as f64 / 1e6,
        report.entries_copied,
        compact_mbs / copy_mbs
    );
}
