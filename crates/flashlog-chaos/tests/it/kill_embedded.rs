//! SIGKILL cycles of a writer whose values are made of encoded entries (issue 12):
//! a shipped segment, a snapshot, a batch in the log's own framing. On `kill`'s
//! harness, the child appends from two threads values of 16 KiB to 8 MiB, each
//! a run of whole encoded entries (puts of ids never issued, deletes of issued
//! keys), and prints `ack ID SEQ` after every `Ok`; the parent kills it with
//! SIGKILL at a random moment. A kill inside the write of a large value leaves it
//! cut short, often with preallocated zeros after it (small values come first in
//! many cycles). After every kill, every recovery mode, read-only, and then the
//! default read-write open must yield exactly the same prefix of what was issued,
//! holding every acknowledged entry, nothing phantom; `AbsoluteConsistency` may
//! only refuse a torn tail. Before the fix, the default open failed after every
//! kill that cut a write and `SkipCorrupted` yielded thousands of phantom entries.
//!
//! `FLASHLOG_EMBEDDED_KILL_CYCLES=N` sets the number of cycles (default 12),
//! `FLASHLOG_LONG=1` makes it 200, `FLASHLOG_KILL_SEED=S` replays a run.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use flashlog_testkit::child::{
    child_role, or_exit, parse_acks, work_until_killed, Ack, ChildTest, KillRun, Say,
};
use flashlog_testkit::payload::{key_for, value_for};
use flashlog_testkit::{ids_in, Call, Delay, DelayFs, Rng, WriterPrefixes};
use flashlog_wal::fs::StdFs;
use flashlog_wal::{codec, Error, Op, Options, RecoveryMode, RecoveryReport, SyncPolicy, Wal};

const TEST_NAME: &str = "kill_embedded::sigkill_cycles_of_values_made_of_entries";
const THREADS: u64 = 2;
/// Ids of one cycle lie in `start..start + CYCLE_IDS`.
const CYCLE_IDS: u64 = 1 << 32;
/// Ids the values' embedded puts name: never issued.
const PHANTOM_IDS: u64 = 1 << 63;
const SEGMENT_SIZE: u64 = 32 << 20;
/// Start a fresh log once the verified one holds this many bytes.
const MAX_LOG_BYTES: u64 = 16 << 20;

fn options() -> Options {
    Options::default()
        .max_segment_size(SEGMENT_SIZE)
        .sync_policy(SyncPolicy::Always)
}

/// The value of the entry with this id: whole encoded entries from its first byte
/// on, 16 KiB to 8 MiB of them (one of a few units, repeated: a child must spend
/// its time writing, not encoding).
fn value_of_entries(id: u64) -> Arc<Vec<u8>> {
    /// Values by unit and size.
    type Values = HashMap<(u64, usize), Arc<Vec<u8>>>;
    static VALUES: OnceLock<Mutex<Values>> = OnceLock::new();
    let size = [16 << 10, 48 << 10, 1 << 20, 8 << 20][Rng::new(id ^ 0xE3BE_DDED).below(4) as usize];
    let which = (id % UNITS, size);
    let values = VALUES.get_or_init(Mutex::default);
    if let Some(value) = values.lock().unwrap().get(&which) {
        return Arc::clone(value);
    }
    let unit = &units()[which.0 as usize];
    let mut value = Vec::with_capacity(size + unit.len());
    while value.len() < size {
        value.extend_from_slice(unit);
    }
    let value = Arc::new(value);
    values.lock().unwrap().insert(which, Arc::clone(&value));
    value
}

const UNITS: u64 = 5;

/// About 16 KiB of encoded entries each: every third a delete of a key cycles
/// issue, the others puts of ids nobody issues.
fn units() -> &'static [Vec<u8>] {
    static UNITS_OF_ENTRIES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    UNITS_OF_ENTRIES.get_or_init(|| {
        (0..UNITS)
            .map(|u| {
                let mut unit = Vec::new();
                let mut k = 0u64;
                while unit.len() < 16 << 10 {
                    if k % 3 == 2 {
                        codec::encode(&mut unit, Op::Delete, &key_for(CYCLE_IDS + k % 11), b"");
                    } else {
                        let phantom = PHANTOM_IDS | u << 20 | k;
                        codec::encode(&mut unit, Op::Put, &key_for(phantom), &value_for(phantom));
                    }
                    k += 1;
                }
                unit
            })
            .collect()
    })
}

/// Options of a cycle's child: on a slow disk, and every other cycle with
/// 16 MiB preallocated instead of 1 MiB, so that large writes after a small one
/// land inside zeros.
fn child_options(start: u64) -> Options {
    let options = options().fs(Arc::new(slow_disk(start)));
    if (start / CYCLE_IDS).is_multiple_of(2) {
        options.preallocate(16 << 20)
    } else {
        options
    }
}

/// The real file system, writing as a slow disk makes progress: at most 128 KiB
/// per `write_at` (the log writes the rest with further calls, as after any
/// short write) and a 0.3 ms pause in each. The kill still cuts the write for
/// real; the pauses only make it land inside a write often (in a debug build
/// the child otherwise spends most of its time on CRCs, and a kill inside a
/// write was rare).
fn slow_disk(seed: u64) -> DelayFs {
    DelayFs::new(Arc::new(StdFs), seed)
        .delay(Call::WriteAt, Delay::exactly(Duration::from_micros(300)))
        .max_write(128 << 10)
}

#[test]
fn sigkill_cycles_of_values_made_of_entries() {
    if let Some(role) = child_role() {
        child(&role.dir, role.arg);
    }
    let mut run = KillRun::from_env("FLASHLOG_EMBEDDED_KILL_CYCLES", 200, 12, 0x5EED_0E12);
    let mut tmp = fresh_dir();
    let mut known: Vec<u64> = Vec::new();
    let (mut acks, mut torn, mut into_zeros, mut verified) = (0u64, 0u64, 0u64, 0u64);
    for cycle in 0..run.cycles {
        let log_bytes: u64 = known.iter().map(|&id| value_len(id)).sum();
        if log_bytes > MAX_LOG_BYTES || run.rng.below(4) == 0 {
            tmp = fresh_dir();
            known.clear();
        }
        let start = (cycle + 1) * CYCLE_IDS;
        let lines = ChildTest::spawn(TEST_NAME, tmp.path(), start)
            .kill_after(Duration::from_millis(run.rng.range(20, 200)));
        let cycle_acks = parse_acks(&lines);
        acks += cycle_acks.len() as u64;
        let context = run.context(cycle, tmp.path());
        let check = Check {
            dir: tmp.path(),
            known: &known,
            start,
            acks: &cycle_acks,
            context: &context,
        };
        // Read-only first: every mode sees the files as the kill left them.
        let (ids, report) = check
            .open(RecoveryMode::default(), options().read_only())
            .unwrap_or_else(|err| panic!("{context}: default open failed: {err}"));
        if let Some(tail) = report.torn_tail {
            torn += 1;
            into_zeros += u64::from(tail.len > tail_written(&tail.kind));
        }
        for mode in [
            RecoveryMode::AbsoluteConsistency,
            RecoveryMode::PointInTime,
            RecoveryMode::SkipCorrupted,
        ] {
            match check.open(mode, options().read_only()) {
                Ok((other, other_report)) => {
                    assert_eq!(other, ids, "{context}: {mode:?} yields another log");
                    assert_eq!(other_report.skipped, 0, "{context}: {mode:?} skipped");
                }
                Err(Error::Corrupt { offset, .. }) if mode == RecoveryMode::AbsoluteConsistency => {
                    assert_eq!(
                        report.torn_tail.map(|tail| tail.position.offset),
                        Some(offset),
                        "{context}: refused other than the torn tail"
                    );
                }
                Err(err) => panic!("{context}: {mode:?} failed: {err}"),
            }
        }
        let (after, _) = check
            .open(RecoveryMode::default(), options())
            .unwrap_or_else(|err| panic!("{context}: read-write open: {err}"));
        assert_eq!(
            after, ids,
            "{context}: the read-write open yields another log"
        );
        verified += ids.len() as u64;
        known = ids;
    }
    println!(
        "embedded-entries kill harness (seed {}): {} cycles, {acks} acks checked, \
         {torn} kills left a cut write ({into_zeros} into preallocated zeros), \
         {verified} entries verified in all four modes, lost 0, phantoms 0, {:.1} s",
        run.seed,
        run.cycles,
        run.began.elapsed().as_secs_f64()
    );
}

/// A fresh directory on tmpfs where there is one: there `fdatasync` costs nothing,
/// so a kill lands inside a write (the only place it can cut one) far more often.
fn fresh_dir() -> tempfile::TempDir {
    if Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").expect("temporary directory")
    } else {
        tempfile::tempdir().expect("temporary directory")
    }
}

/// Bytes the cut entry of a torn tail had written (its report says `Incomplete`).
fn tail_written(kind: &flashlog_wal::CorruptionKind) -> u64 {
    match *kind {
        flashlog_wal::CorruptionKind::Incomplete { available, .. } => available,
        _ => u64::MAX,
    }
}

/// The bytes entry `id` takes in the log.
fn value_len(id: u64) -> u64 {
    codec::encoded_len(8, value_of_entries(id).len())
}

/// The child: appends from `THREADS` threads until killed, printing `ack ID SEQ`.
fn child(dir: &Path, start: u64) -> ! {
    let wal = Arc::new(or_exit(
        Wal::open(dir, child_options(start)),
        "opening the log",
        3,
    ));
    let say = Arc::new(Say::stdout());
    for thread in 0..THREADS {
        let (wal, say) = (Arc::clone(&wal), Arc::clone(&say));
        std::thread::spawn(move || {
            let mut id = start + thread;
            loop {
                let value = value_of_entries(id);
                let seq = or_exit(wal.append(Op::Put, &key_for(id), &value), "append", 4);
                say.line(format_args!("ack {id} {seq}"));
                id += THREADS;
            }
        });
    }
    work_until_killed();
}

/// What one cycle's log must be: `known` (verified after the last kill), then
/// per thread a prefix of what it issued from `start` on, holding every ack.
struct Check<'a> {
    dir: &'a Path,
    known: &'a [u64],
    start: u64,
    acks: &'a [Ack],
    context: &'a str,
}

impl Check<'_> {
    /// Opens the log under `mode` and returns its ids, after checking them, and
    /// its recovery report.
    fn open(
        &self,
        mode: RecoveryMode,
        options: Options,
    ) -> Result<(Vec<u64>, RecoveryReport), Error> {
        let context = format!("{}, {mode:?}", self.context);
        let wal = Wal::open(self.dir, options.recovery_mode(mode))?;
        let ids = self.ids(&wal, &context);
        let report = wal.recovery_report().clone();
        wal.close().expect("close");
        Ok((ids, report))
    }

    fn ids(&self, wal: &Wal, context: &str) -> Vec<u64> {
        assert_eq!(wal.first_seq(), 1, "{context}");
        let ids = ids_in(wal, |entry| {
            let id = u64::from_le_bytes(entry.key().try_into().ok()?);
            // An id with the phantom bit comes from inside a value.
            let issued = entry.op() == Op::Put
                && id & PHANTOM_IDS == 0
                && entry.value() == value_of_entries(id).as_slice();
            issued.then_some(id)
        })
        .unwrap_or_else(|violation| panic!("{context}: {violation}"));
        let check = WriterPrefixes {
            first_seq: 1,
            known: self.known,
            first_id: self.start,
            writers: THREADS,
            id_span: CYCLE_IDS,
            acks: self.acks,
        };
        if let Err(violation) = check.check(&ids) {
            panic!("{context}: {violation}");
        }
        ids
    }
}
