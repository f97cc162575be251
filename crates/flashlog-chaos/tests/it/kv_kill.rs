//! SIGKILL cycles of the store, on `kill`'s harness: the child opens a
//! `flashlog_kv::Db` and runs writers beside a compaction loop (and automatic
//! compaction); each writer owns its keys and, for each operation, prints its
//! intent (`op T N K put|del`) before the call and `ack T N` after its `Ok`. The
//! parent kills it at a random moment, reopens the store and checks that every key
//! holds its last acknowledged write, or the one its writer had in flight (printed
//! and not acknowledged), and that the store holds no other key and no value that
//! was never written: nothing lost, nothing phantom, whatever the compaction was
//! doing. Each cycle starts from the contents verified by the last.
//!
//! `FLASHLOG_KV_KILL_CYCLES=N` sets the number of cycles (default 60),
//! `FLASHLOG_LONG=1` makes it 2,000, `FLASHLOG_KILL_SEED=S` replays a run.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flashlog_kv::{AutoCompact, Db, DbOptions};
use flashlog_testkit::child::{child_role, or_exit, work_until_killed, ChildTest, KillRun, Say};
use flashlog_testkit::Rng;
use flashlog_wal::{Options, SyncPolicy};

const TEST_NAME: &str = "kv_kill::sigkill_cycles_of_the_store";
const WRITERS: u64 = 4;
/// Keys per writer: writer `t` writes `t{t}k{k}` for `k` below this.
const KEYS: u64 = 32;
const SEGMENT_SIZE: u64 = 8 << 10;

fn options() -> DbOptions {
    DbOptions::default()
        .wal(
            Options::default()
                .max_segment_size(SEGMENT_SIZE)
                .sync_policy(SyncPolicy::Always),
        )
        .auto_compact(AutoCompact::DeadShare(0.3))
}

fn key(thread: u64, k: u64) -> Vec<u8> {
    format!("t{thread}k{k:02}").into_bytes()
}

/// The value of write `n` of writer `thread` in cycle `cycle`: names all three,
/// then 0 to 299 bytes derived from them.
fn value(cycle: u64, thread: u64, n: u64) -> Vec<u8> {
    let mut value = format!("{cycle}|{thread}|{n}|").into_bytes();
    let mut rng = Rng::new(cycle << 40 ^ thread << 32 ^ n);
    let start = value.len();
    value.resize(start + rng.below(300) as usize, 0);
    rng.fill(&mut value[start..]);
    value
}

#[test]
fn sigkill_cycles_of_the_store() {
    if let Some(role) = child_role() {
        child(&role.dir, role.arg);
    }
    let mut run = KillRun::from_env("FLASHLOG_KV_KILL_CYCLES", 2_000, 60, 0x5EED_0CAF);
    let mut tmp = tempfile::tempdir().expect("temporary directory");
    let mut known = BTreeMap::new();
    let (mut acks, mut in_flight, mut checked, mut compactions) = (0u64, 0u64, 0u64, 0u64);
    for cycle in 0..run.cycles {
        if run.rng.below(10) == 0 {
            tmp = tempfile::tempdir().expect("temporary directory");
            known.clear();
        }
        let lines = ChildTest::spawn(TEST_NAME, tmp.path(), cycle)
            .kill_after(Duration::from_millis(run.rng.range(10, 80)));
        let context = run.context(cycle, tmp.path());
        let cycle_log = CycleLog::parse(&lines, cycle, &context);
        acks += cycle_log.acks;
        in_flight += cycle_log.in_flight.len() as u64;
        compactions += cycle_log.compactions;
        let db = Db::open(tmp.path(), options())
            .unwrap_or_else(|err| panic!("{context}: reopen failed: {err}"));
        known = verify(&db, &known, &cycle_log, &context);
        checked += known.len() as u64;
        db.close().expect("close");
    }
    println!(
        "kv kill harness (seed {}): {} cycles, {acks} acknowledged writes, \
         {in_flight} in flight at the kill, {compactions} compactions completed, \
         {checked} key values checked, lost 0, \
         phantoms 0, {:.1} s",
        run.seed,
        run.cycles,
        run.began.elapsed().as_secs_f64()
    );
}

/// The child: writers and a compaction loop until killed.
fn child(dir: &Path, cycle: u64) -> ! {
    let db = Arc::new(or_exit(Db::open(dir, options()), "opening the store", 3));
    let say = Arc::new(Say::stdout());
    for thread in 0..WRITERS {
        let (db, say) = (Arc::clone(&db), Arc::clone(&say));
        std::thread::spawn(move || write_forever(&db, &say, cycle, thread));
    }
    std::thread::spawn(move || {
        let mut rng = Rng::new(cycle);
        loop {
            or_exit(db.compact(), "compaction", 4);
            say.line(format_args!("compacted"));
            std::thread::sleep(Duration::from_millis(rng.below(10)));
        }
    });
    work_until_killed();
}

fn write_forever(db: &Db, say: &Say, cycle: u64, thread: u64) {
    let mut rng = Rng::new(cycle.wrapping_mul(0x9E37_79B9) ^ thread);
    for n in 0.. {
        let k = rng.below(KEYS);
        let put = rng.below(5) != 0;
        // The intent is out before the write starts: a write that reached the log
        // was announced.
        let what = if put { "put" } else { "del" };
        say.line(format_args!("op {thread} {n} {k} {what}"));
        let result = if put {
            db.put(&key(thread, k), &value(cycle, thread, n))
        } else {
            db.delete(&key(thread, k)).map(|_| ())
        };
        or_exit(result, "write", 4);
        say.line(format_args!("ack {thread} {n}"));
    }
}

/// One announced write.
#[derive(Debug, Clone, Copy)]
struct Announced {
    k: u64,
    put: bool,
}

/// What a child said: per writer its writes in order, how many were acknowledged.
#[derive(Debug)]
struct CycleLog {
    cycle: u64,
    /// Per writer: the acknowledged writes, in order.
    acked: Vec<Vec<Announced>>,
    /// The writes announced and not acknowledged (one per writer at most).
    in_flight: Vec<(u64, u64, Announced)>,
    acks: u64,
    /// Compactions that ended before the kill.
    compactions: u64,
}

impl CycleLog {
    fn parse(lines: &[String], cycle: u64, context: &str) -> CycleLog {
        let mut announced: Vec<Vec<Announced>> = vec![Vec::new(); WRITERS as usize];
        let mut acked = vec![0usize; WRITERS as usize];
        for line in lines {
            let fields: Vec<&str> = line.split(' ').collect();
            let number = |i: usize| fields[i].parse::<u64>().expect("a number");
            match fields[0] {
                "op" => {
                    let (thread, n) = (number(1) as usize, number(2) as usize);
                    assert_eq!(announced[thread].len(), n, "{context}: op lines in order");
                    announced[thread].push(Announced {
                        k: number(3),
                        put: fields[4] == "put",
                    });
                }
                "ack" => {
                    let (thread, n) = (number(1) as usize, number(2) as usize);
                    assert_eq!(acked[thread], n, "{context}: ack lines in order");
                    acked[thread] = n + 1;
                }
                _ => {}
            }
        }
        let mut in_flight = Vec::new();
        for (thread, writes) in announced.iter().enumerate() {
            let acked = acked[thread];
            assert!(writes.len() <= acked + 1, "{context}: one write in flight");
            if let Some(&write) = writes.get(acked) {
                in_flight.push((thread as u64, acked as u64, write));
            }
        }
        CycleLog {
            cycle,
            compactions: lines.iter().filter(|line| *line == "compacted").count() as u64,
            acks: acked.iter().sum::<usize>() as u64,
            acked: announced
                .into_iter()
                .zip(acked)
                .map(|(mut writes, acked)| {
                    writes.truncate(acked);
                    writes
                })
                .collect(),
            in_flight,
        }
    }
}

type Contents = BTreeMap<Vec<u8>, Vec<u8>>;

/// Checks the reopened store against the contents before the cycle plus the
/// child's writes; returns its contents.
fn verify(db: &Db, before: &Contents, log: &CycleLog, context: &str) -> Contents {
    // Each key has one writer, so the writer's order is the key's.
    let mut expected = before.clone();
    for (thread, writes) in log.acked.iter().enumerate() {
        for (n, write) in writes.iter().enumerate() {
            let key = key(thread as u64, write.k);
            if write.put {
                expected.insert(key, value(log.cycle, thread as u64, n as u64));
            } else {
                expected.remove(&key);
            }
        }
    }
    let mut alternatives: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
    for &(thread, n, write) in &log.in_flight {
        let value = write.put.then(|| value(log.cycle, thread, n));
        alternatives.insert(key(thread, write.k), value);
    }
    let found: Contents = db
        .scan(..)
        .map(|kv| kv.unwrap_or_else(|err| panic!("{context}: scan: {err}")))
        .collect();
    for key in expected
        .keys()
        .chain(found.keys())
        .chain(alternatives.keys())
    {
        let got = found.get(key);
        let want = expected.get(key);
        let in_flight = alternatives.get(key);
        let name = String::from_utf8_lossy(key);
        assert!(
            got == want || in_flight.is_some_and(|alt| got == alt.as_ref()),
            "{context}: key {name} holds {:?}; its last acknowledged write left {:?}, \
             the one in flight {:?}",
            got.map(|v| String::from_utf8_lossy(&v[..v.len().min(16)]).into_owned()),
            want.map(|v| String::from_utf8_lossy(&v[..v.len().min(16)]).into_owned()),
            in_flight.map(|alt| alt.as_ref().map(|v| v.len())),
        );
        assert_eq!(
            db.get(key)
                .unwrap_or_else(|err| panic!("{context}: get {name}: {err}")),
            got.cloned(),
            "{context}: get and scan disagree on {name}"
        );
    }
    assert_eq!(db.len(), found.len(), "{context}: len");
    found
}
