//! The SIGKILL harness: this test binary re-runs itself as a child that appends from
//! several threads and reports every acknowledged entry on its standard output; the
//! parent kills it (`Child::kill`, SIGKILL) at a random moment, reopens the log with
//! the default recovery and checks that
//! 1. every acknowledged entry is there, byte-identical, at the sequence number its
//!    `append` returned, and
//! 2. the log is a prefix of what was issued: per thread, exactly its first `m`
//!    entries in order (`m` ≥ what was acknowledged), nothing phantom, duplicated or
//!    reordered, sequence numbers contiguous, earlier cycles' entries unchanged.
//!
//! `FLASHLOG_KILL_CYCLES=N` sets the number of cycles (default 200),
//! `FLASHLOG_LONG=1` makes it 10,000, `FLASHLOG_KILL_SEED=S` replays a run.

use std::collections::{HashSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flashlog_chaos::payload::{id_of, key_for, value_for};
use flashlog_chaos::Rng;
use flashlog_wal::{Batch, Op, Options, SyncPolicy, Wal};

/// Set in a child: the directory it works on. (`kv_kill` reuses the harness.)
pub(crate) const CHILD_ENV: &str = "FLASHLOG_KILL_CHILD";
/// Set in a child: the first id it issues.
pub(crate) const START_ENV: &str = "FLASHLOG_KILL_START";
const TEST_NAME: &str = "kill::sigkill_cycles";
/// Appending threads in the child; thread `t` appends ids `start + t + THREADS * k`.
const THREADS: u64 = 4;
/// The thread that appends batches of `BATCH` entries instead of single ones.
const BATCH_THREAD: u64 = THREADS - 1;
const BATCH: u64 = 3;
/// Ids of one cycle lie in `start..start + CYCLE_IDS`.
const CYCLE_IDS: u64 = 1 << 32;
const SEGMENT_SIZE: u64 = 64 << 10;
/// A child that was not killed by then stops by itself (the parent is gone).
const CHILD_LIFETIME: Duration = Duration::from_secs(30);
/// Start a fresh log once the verified one holds this many entries.
const MAX_LOG_ENTRIES: usize = 20_000;

fn options() -> Options {
    Options::default()
        .max_segment_size(SEGMENT_SIZE)
        .sync_policy(SyncPolicy::Always)
}

pub(crate) fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn sigkill_cycles() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        let start = env_u64(START_ENV).expect("the parent passes a start id");
        child(Path::new(&dir), start);
    }
    let cycles = match (
        std::env::var_os("FLASHLOG_LONG"),
        env_u64("FLASHLOG_KILL_CYCLES"),
    ) {
        (_, Some(cycles)) => cycles,
        (Some(_), None) => 10_000,
        (None, None) => 200,
    };
    let seed = env_u64("FLASHLOG_KILL_SEED").unwrap_or(0x5EED_F1A5);
    let totals = run_cycles(cycles, seed);
    println!(
        "kill harness (seed {seed}): {} cycles, {} acks checked, {} entries verified, \
         {} truncate_front, lost 0, phantoms 0, {:.1} s",
        totals.cycles,
        totals.acks,
        totals.verified,
        totals.truncations,
        totals.elapsed.as_secs_f64()
    );
}

/// The child: appends from `THREADS` threads until killed, printing `ack ID SEQ`
/// for every `Ok`.
fn child(dir: &Path, start: u64) -> ! {
    let wal = match Wal::open(dir, options()) {
        Ok(wal) => Arc::new(wal),
        Err(err) => {
            eprintln!("child cannot open the log: {err}");
            std::process::exit(3);
        }
    };
    let out = Arc::new(Mutex::new(std::io::stdout()));
    for thread in 0..THREADS {
        let (wal, out) = (Arc::clone(&wal), Arc::clone(&out));
        std::thread::spawn(move || append_forever(&wal, &out, start + thread));
    }
    std::thread::sleep(CHILD_LIFETIME);
    std::process::exit(0);
}

fn append_forever(wal: &Wal, out: &Mutex<std::io::Stdout>, first_id: u64) {
    let mut id = first_id;
    loop {
        let ids: Vec<u64> = if first_id % THREADS == BATCH_THREAD % THREADS && id % 2 == 1 {
            (0..BATCH).map(|k| id + k * THREADS).collect()
        } else {
            vec![id]
        };
        let result = if ids.len() == 1 {
            wal.append(Op::Put, &key_for(id), &value_for(id))
                .map(|seq| seq..=seq)
        } else {
            let mut batch = Batch::new();
            for &id in &ids {
                batch.put(&key_for(id), &value_for(id));
            }
            wal.append_batch(&batch)
        };
        let seqs = match result {
            Ok(seqs) => seqs,
            Err(err) => {
                eprintln!("child append failed: {err}");
                std::process::exit(4);
            }
        };
        let mut out = out.lock().unwrap_or_else(|poison| poison.into_inner());
        for (id, seq) in ids.iter().zip(seqs) {
            // A failed write means the parent is gone: nothing to report to.
            let _ = writeln!(out, "ack {id} {seq}");
        }
        let _ = out.flush();
        drop(out);
        id += THREADS * ids.len() as u64;
    }
}

#[derive(Debug, Default)]
struct Totals {
    cycles: u64,
    acks: u64,
    verified: u64,
    truncations: u64,
    elapsed: Duration,
}

/// What the parent knows the log holds: the id at each sequence number from
/// `first_seq` on (every entry verified after the last kill).
#[derive(Debug)]
struct Known {
    first_seq: u64,
    ids: VecDeque<u64>,
}

fn run_cycles(cycles: u64, seed: u64) -> Totals {
    let began = Instant::now();
    let mut rng = Rng::new(seed);
    let mut totals = Totals::default();
    let mut tmp = tempfile::tempdir().expect("temporary directory");
    let mut known = Known {
        first_seq: 1,
        ids: VecDeque::new(),
    };
    for cycle in 0..cycles {
        if known.ids.len() > MAX_LOG_ENTRIES || rng.below(8) == 0 {
            tmp = tempfile::tempdir().expect("temporary directory");
            known = Known {
                first_seq: 1,
                ids: VecDeque::new(),
            };
        }
        let start = (cycle + 1) * CYCLE_IDS;
        let acks = parse_acks(&run_child(TEST_NAME, tmp.path(), start, rng.range(5, 60)));
        let wal = Wal::open(tmp.path(), options())
            .unwrap_or_else(|err| panic!("cycle {cycle} (seed {seed}): reopen failed: {err}"));
        let context = format!("cycle {cycle} (seed {seed}, dir {})", tmp.path().display());
        known = verify(&wal, &known, start, &acks, &context);
        totals.acks += acks.len() as u64;
        totals.verified += known.ids.len() as u64;
        if rng.below(5) == 0 && !known.ids.is_empty() {
            let last = known.first_seq + known.ids.len() as u64 - 1;
            let seq = rng.range(known.first_seq, last);
            let first = wal.truncate_front(seq).expect("truncate_front");
            assert!(
                first <= seq && first >= known.first_seq,
                "{context}: truncate_front({seq}) gave {first}"
            );
            known.ids.drain(..(first - known.first_seq) as usize);
            known.first_seq = first;
            totals.truncations += 1;
        }
        wal.close().expect("close");
        totals.cycles += 1;
    }
    totals.elapsed = began.elapsed();
    totals
}

/// The `(id, seq)` pairs of a child's `ack ID SEQ` lines.
fn parse_acks(lines: &[String]) -> Vec<(u64, u64)> {
    let mut acks = Vec::new();
    for line in lines {
        if let Some(rest) = line.strip_prefix("ack ") {
            let mut fields = rest.split(' ').map(|f| f.parse::<u64>());
            if let (Some(Ok(id)), Some(Ok(seq))) = (fields.next(), fields.next()) {
                acks.push((id, seq));
            }
        }
    }
    acks
}

/// Runs the test `test` of this binary as a child on `dir` (with `CHILD_ENV` and
/// `START_ENV` set), kills it with SIGKILL after `ms` milliseconds and returns the
/// complete lines it printed on its standard output (a line the kill cut short is
/// left out).
pub(crate) fn run_child(test: &str, dir: &Path, start: u64, ms: u64) -> Vec<String> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(CHILD_ENV, PathBuf::from(dir))
        .env(START_ENV, start.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    // The child has exec'd: it holds none of this process's files any more.
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let lines = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut reader = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                // Without its newline, the kill cut the line short.
                Ok(_) if !line.ends_with('\n') => break,
                Ok(_) => {
                    line.pop();
                    lines.push(line);
                }
            }
        }
        lines
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    std::thread::sleep(Duration::from_millis(ms));
    let _ = child.kill();
    let status = child.wait().expect("wait for the child");
    let lines = lines.join().expect("stdout reader");
    let errors = errors.join().expect("stderr reader");
    assert!(
        status.code().is_none(),
        "the child exited by itself ({status}) instead of being killed:\n{errors}"
    );
    lines
}

/// Checks the reopened log against what was known before the cycle and what the
/// child acknowledged, and returns what is known now.
fn verify(wal: &Wal, known: &Known, start: u64, acks: &[(u64, u64)], context: &str) -> Known {
    let first = wal.first_seq();
    assert_eq!(first, known.first_seq, "{context}: first_seq moved");
    let mut ids = VecDeque::new();
    let mut seen = HashSet::new();
    let mut next_of_thread: Vec<u64> = (0..THREADS).map(|t| start + t).collect();
    let iter = wal.iter_from(first).expect("iter_from(first_seq)");
    for (at, entry) in iter.enumerate() {
        let entry = entry.unwrap_or_else(|err| panic!("{context}: reading failed: {err}"));
        let seq = first + at as u64;
        assert_eq!(
            entry.seq(),
            seq,
            "{context}: sequence numbers not contiguous"
        );
        assert_eq!(entry.op(), Op::Put, "{context}: seq {seq}: phantom op");
        let id = id_of(entry.key(), entry.value()).unwrap_or_else(|| {
            panic!(
                "{context}: seq {seq}: phantom entry (key {:?})",
                entry.key()
            )
        });
        assert!(seen.insert(id), "{context}: seq {seq}: id {id} duplicated");
        if let Some(&old) = known.ids.get(at) {
            assert_eq!(id, old, "{context}: seq {seq} changed since the last cycle");
        } else {
            assert!(
                (start..start + CYCLE_IDS).contains(&id),
                "{context}: seq {seq}: id {id} was not issued in this cycle (phantom)"
            );
            let thread = ((id - start) % THREADS) as usize;
            assert_eq!(
                id, next_of_thread[thread],
                "{context}: seq {seq}: thread {thread}'s entries are not a prefix in order"
            );
            next_of_thread[thread] += THREADS;
        }
        ids.push_back(id);
    }
    assert!(
        ids.len() >= known.ids.len(),
        "{context}: {} entries verified before are lost",
        known.ids.len() - ids.len()
    );
    for &(id, seq) in acks {
        let at = seq.checked_sub(first).map(|at| at as usize);
        let found = at.and_then(|at| ids.get(at)).copied();
        assert_eq!(
            found,
            Some(id),
            "{context}: acknowledged id {id} at seq {seq} lost"
        );
        let entry = wal.read(seq).expect("read an acknowledged entry");
        assert_eq!(
            (entry.key(), entry.value()),
            (&key_for(id)[..], &value_for(id)[..])
        );
    }
    Known {
        first_seq: first,
        ids,
    }
}
