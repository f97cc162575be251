//! The SIGKILL harness: this test binary re-runs itself as a child that appends from
//! several threads (one of them submits, and acknowledges an entry when its receipt
//! resolves) and reports every acknowledged entry on its standard output; the
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

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flashlog_testkit::child::{
    child_role, or_exit, parse_acks, work_until_killed, Ack, ChildTest, KillRun, Say,
};
use flashlog_testkit::payload::{id_of, key_for, value_for};
use flashlog_testkit::{ids_in, WriterPrefixes};
use flashlog_wal::{Batch, Op, Options, SyncPolicy, Wal};

const TEST_NAME: &str = "kill::sigkill_cycles";
/// Appending threads in the child; thread `t` appends ids `start + t + THREADS * k`.
const THREADS: u64 = 4;
/// The thread that appends batches of `BATCH` entries instead of single ones.
const BATCH_THREAD: u64 = THREADS - 1;
/// The thread that submits instead of appending: its acks come from its
/// receipts (a callback for most, `wait` for every 16th), with up to `WINDOW`
/// receipts outstanding.
const SUBMIT_THREAD: u64 = 0;
const WINDOW: usize = 256;
const BATCH: u64 = 3;
/// Ids of one cycle lie in `start..start + CYCLE_IDS`.
const CYCLE_IDS: u64 = 1 << 32;
const SEGMENT_SIZE: u64 = 64 << 10;
/// Start a fresh log once the verified one holds this many entries.
const MAX_LOG_ENTRIES: usize = 20_000;

fn options() -> Options {
    Options::default()
        .max_segment_size(SEGMENT_SIZE)
        .sync_policy(SyncPolicy::Always)
}

#[test]
fn sigkill_cycles() {
    if let Some(role) = child_role() {
        child(&role.dir, role.arg);
    }
    let run = KillRun::from_env("FLASHLOG_KILL_CYCLES", 10_000, 200, 0x5EED_F1A5);
    let seed = run.seed;
    let totals = run_cycles(run);
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
    let wal = Arc::new(or_exit(Wal::open(dir, options()), "opening the log", 3));
    let say = Arc::new(Say::stdout());
    for thread in 0..THREADS {
        let (wal, say) = (Arc::clone(&wal), Arc::clone(&say));
        if thread == SUBMIT_THREAD {
            std::thread::spawn(move || submit_forever(&wal, &say, start + thread));
        } else {
            std::thread::spawn(move || append_forever(&wal, &say, start + thread));
        }
    }
    work_until_killed();
}

/// Submits entries without waiting for them: each is acknowledged (`ack ID SEQ`)
/// only once its receipt resolves `Ok`, from the thread that synced it, or here
/// when the window is full and the oldest is waited for.
fn submit_forever(wal: &Wal, say: &Arc<Say>, first_id: u64) {
    let mut id = first_id;
    let mut window = VecDeque::new();
    loop {
        let receipt = or_exit(
            wal.submit(Op::Put, &key_for(id), &value_for(id)),
            "submit",
            4,
        );
        if id % 16 == first_id % 16 {
            window.push_back((id, receipt));
        } else {
            let say = Arc::clone(say);
            receipt.on_durable(move |result| {
                let seqs = or_exit(result, "a receipt", 4);
                say.line(format_args!("ack {id} {}", seqs.start()));
            });
        }
        if window.len() > WINDOW / 16 {
            let (id, receipt) = window.pop_front().expect("not empty");
            let seqs = or_exit(receipt.wait(), "a receipt", 4);
            say.line(format_args!("ack {id} {}", seqs.start()));
        }
        id += THREADS;
    }
}

fn append_forever(wal: &Wal, say: &Say, first_id: u64) {
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
        let seqs = or_exit(result, "append", 4);
        for (id, seq) in ids.iter().zip(seqs) {
            say.line(format_args!("ack {id} {seq}"));
        }
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

fn run_cycles(mut run: KillRun) -> Totals {
    let mut totals = Totals::default();
    let mut tmp = tempfile::tempdir().expect("temporary directory");
    let mut known = Known {
        first_seq: 1,
        ids: VecDeque::new(),
    };
    for cycle in 0..run.cycles {
        if known.ids.len() > MAX_LOG_ENTRIES || run.rng.below(8) == 0 {
            tmp = tempfile::tempdir().expect("temporary directory");
            known = Known {
                first_seq: 1,
                ids: VecDeque::new(),
            };
        }
        let start = (cycle + 1) * CYCLE_IDS;
        let lines = ChildTest::spawn(TEST_NAME, tmp.path(), start)
            .kill_after(Duration::from_millis(run.rng.range(5, 60)));
        let acks = parse_acks(&lines);
        let wal = Wal::open(tmp.path(), options()).unwrap_or_else(|err| {
            panic!("{}: reopen failed: {err}", run.context(cycle, tmp.path()))
        });
        let context = run.context(cycle, tmp.path());
        known = verify(&wal, &known, start, &acks, &context);
        totals.acks += acks.len() as u64;
        totals.verified += known.ids.len() as u64;
        if run.rng.below(5) == 0 && !known.ids.is_empty() {
            let last = known.first_seq + known.ids.len() as u64 - 1;
            let seq = run.rng.range(known.first_seq, last);
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
    totals.elapsed = run.began.elapsed();
    totals
}

/// Checks the reopened log against what was known before the cycle and what the
/// child acknowledged, and returns what is known now.
fn verify(wal: &Wal, known: &Known, start: u64, acks: &[Ack], context: &str) -> Known {
    let first = wal.first_seq();
    assert_eq!(first, known.first_seq, "{context}: first_seq moved");
    let ids = ids_in(wal, |entry| {
        (entry.op() == Op::Put)
            .then(|| id_of(entry.key(), entry.value()))
            .flatten()
    })
    .unwrap_or_else(|violation| panic!("{context}: {violation}"));
    let known_ids: Vec<u64> = known.ids.iter().copied().collect();
    let check = WriterPrefixes {
        first_seq: first,
        known: &known_ids,
        first_id: start,
        writers: THREADS,
        id_span: CYCLE_IDS,
        acks,
    };
    if let Err(violation) = check.check(&ids) {
        panic!("{context}: {violation}");
    }
    for &Ack { id, seq } in acks {
        let entry = wal.read(seq).expect("read an acknowledged entry");
        assert_eq!(
            (entry.key(), entry.value()),
            (&key_for(id)[..], &value_for(id)[..])
        );
    }
    Known {
        first_seq: first,
        ids: ids.into(),
    }
}
