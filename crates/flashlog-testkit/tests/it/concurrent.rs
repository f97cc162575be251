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

use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::thread;
use std::time::{Duration, Instant};

use flashlog_testkit::history::{Change, Clock, History, IterOutcome, IterTrace, Span, Violation};
use flashlog_testkit::{run_with_timeout, Call, Delay, DelayFs, Record, Recovered, Rng};
use flashlog_wal::fs::{Fs, StdFs};
use flashlog_wal::{Batch, Error, Op, Options, SyncPolicy, Visibility, Wal};

use crate::common::long;

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

/// What one worker did in one round.
#[derive(Default)]
struct Log {
    changes: Vec<Change>,
    reads: Vec<(Span, u64, Result<Record, Option<String>>)>,
    waits: Vec<(Span, u64, bool)>,
    iters: Vec<IterTrace>,
    refused_iters: Vec<(Span, u64)>,
    snapshots: Vec<IterTrace>,
    refused_backs: Vec<(Span, u64)>,
    /// Calls that returned `Error::Closed`: fine only once `close` had started.
    closed: Vec<(Span, &'static str)>,
    /// Blocking calls and when they returned, for the promptness check.
    blocking_ends: Vec<(Instant, &'static str)>,
    violations: Vec<Violation>,
    ops: BTreeMap<&'static str, u64>,
}

/// Everything shared by the workers of one round.
struct Round {
    wal: Arc<Wal>,
    dir: PathBuf,
    options: Options,
    clock: Arc<Clock>,
    stop: AtomicBool,
    round: u64,
}

struct Worker<'a> {
    id: usize,
    round: &'a Round,
    rng: Rng,
    appended: u64,
    log: Log,
}

impl Worker<'_> {
    fn run(mut self) -> Log {
        while !self.round.stop.load(Ordering::SeqCst) {
            let pick = self.rng.below(100);
            let (name, outcome) = match pick {
                0..=29 => ("append", self.guard(|w| w.append())),
                30..=39 => ("append_batch", self.guard(|w| w.append_batch())),
                40..=61 => ("read", self.guard(|w| w.read())),
                62..=73 => ("iter", self.guard(|w| w.iterate())),
                74..=77 => ("wait_for", self.guard(|w| w.wait_for())),
                78..=83 => ("truncate_back", self.guard(|w| w.truncate_back())),
                84..=88 => ("truncate_front", self.guard(|w| w.truncate_front())),
                89..=92 => ("rotate", self.guard(|w| w.rotate())),
                93..=97 => ("sync", self.guard(|w| w.sync())),
                _ => ("open_read_only", self.guard(|w| w.open_read_only())),
            };
            *self.log.ops.entry(name).or_default() += 1;
            if let Err(message) = outcome {
                self.log.violations.push(Violation {
                    kind: "a call panicked",
                    seq: 0,
                    tick: self.round.clock.tick(),
                    detail: format!("{name}: {message}"),
                });
            }
        }
        self.log
    }

    /// Runs one call, catching a panic.
    fn guard(&mut self, call: impl FnOnce(&mut Self)) -> Result<(), String> {
        panic::catch_unwind(AssertUnwindSafe(|| call(self))).map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_else(|| "non-string panic".into())
        })
    }

    fn wal(&self) -> &Wal {
        &self.round.wal
    }

    fn time<T>(&self, call: impl FnOnce() -> T) -> (Span, T) {
        self.round.clock.time(call)
    }

    /// The log's current range, as two separate snapshots (they may disagree).
    fn range(&self) -> (u64, u64) {
        let first = self.wal().first_seq();
        (first, self.wal().last_seq().max(first.saturating_sub(1)))
    }

    /// A sequence number near the log's range, sometimes just outside it.
    fn some_seq(&mut self) -> u64 {
        let (first, last) = self.range();
        let low = first.saturating_sub(2).max(1);
        low + self.rng.below(last + 3 - low)
    }

    /// A unique entry: the key names round, thread and counter; the value's bytes
    /// and length follow from the key.
    fn next_entry(&mut self) -> (Op, Vec<u8>, Vec<u8>) {
        self.appended += 1;
        let key = format!("r{}t{}n{}", self.round.round, self.id, self.appended).into_bytes();
        let len = match self.rng.below(20) {
            0 => 900 + self.rng.below(300),
            _ => self.rng.below(160),
        } as usize;
        let seed = key
            .iter()
            .fold(17u8, |acc, b| acc.wrapping_mul(31).wrapping_add(*b));
        let value = (0..len).map(|i| seed.wrapping_add(i as u8)).collect();
        let op = if self.rng.below(10) == 0 {
            Op::Delete
        } else {
            Op::Put
        };
        (op, key, value)
    }

    /// Files an error: `Closed` is checked later against the close's span, anything
    /// else is a violation now.
    fn error(&mut self, span: Span, call: &'static str, error: &Error) {
        match error {
            Error::Closed => self.log.closed.push((span, call)),
            other => self.log.violations.push(Violation {
                kind: "a call failed on a healthy log",
                seq: 0,
                tick: span.end,
                detail: format!("{call} {span}: {}", full(other)),
            }),
        }
    }

    fn append(&mut self) {
        let (op, key, value) = self.next_entry();
        let (span, result) = self.time(|| self.wal().append(op, &key, &value));
        match result {
            Ok(seq) => self.log.changes.push(Change::Append {
                span,
                records: vec![Record {
                    seq,
                    op,
                    key,
                    value,
                }],
            }),
            Err(err) => self.error(span, "append", &err),
        }
    }

    fn append_batch(&mut self) {
        let entries: Vec<_> = (0..1 + self.rng.below(5))
            .map(|_| self.next_entry())
            .collect();
        let mut batch = Batch::new();
        for (op, key, value) in &entries {
            batch.push(*op, key, value);
        }
        let (span, result) = self.time(|| self.wal().append_batch(&batch));
        match result {
            Ok(seqs) if seqs.clone().count() == entries.len() => {
                let records = seqs
                    .zip(entries)
                    .map(|(seq, (op, key, value))| Record {
                        seq,
                        op,
                        key,
                        value,
                    })
                    .collect();
                self.log.changes.push(Change::Append { span, records });
            }
            Ok(seqs) => self.log.violations.push(Violation {
                kind: "append_batch returned a range of the wrong length",
                seq: *seqs.start(),
                tick: span.end,
                detail: format!("{seqs:?} for {} entries", entries.len()),
            }),
            Err(err) => self.error(span, "append_batch", &err),
        }
    }

    fn read(&mut self) {
        let seq = self.some_seq();
        let (span, result) = self.time(|| self.wal().read(seq));
        let result = match result {
            Ok(entry) => Ok(Record::of(&entry)),
            Err(Error::SeqOutOfRange { .. }) => Err(None),
            Err(Error::Closed) => return self.log.closed.push((span, "read")),
            Err(err) => Err(Some(full(&err))),
        };
        self.log.reads.push((span, seq, result));
    }

    fn iterate(&mut self) {
        let from = self.some_seq();
        let (created, iter) = self.time(|| self.wal().iter_from(from));
        // The model holds an entry from its append's return on: under `Manual`
        // that is the written edge, not the durable one.
        let mut iter = match iter {
            Ok(iter) => iter.visibility(Visibility::Written),
            Err(Error::SeqOutOfRange { .. }) => {
                return self.log.refused_iters.push((created, from))
            }
            Err(err) => return self.error(created, "iter_from", &err),
        };
        let mode = self.rng.below(20);
        let (mut iter, blocking) = match mode {
            0..=9 => (iter, false),
            10..=16 => (
                iter.follow_timeout(Duration::from_micros(self.rng.below(3000))),
                false,
            ),
            17..=18 => (iter.follow(), true),
            _ => {
                iter = iter.follow_timeout(Duration::MAX);
                (iter, true)
            }
        };
        let mut trace = IterTrace {
            created,
            from,
            steps: Vec::new(),
        };
        for _ in 0..1 + self.rng.below(60) {
            if self.rng.below(50) == 0 {
                let seq = self.some_seq();
                iter.seek(seq);
                trace
                    .steps
                    .push((Span { start: 0, end: 0 }, IterOutcome::Seek(seq)));
                continue;
            }
            let (span, next) = self.time(|| iter.next());
            if blocking {
                self.log
                    .blocking_ends
                    .push((Instant::now(), "a following iterator's next"));
            }
            let (outcome, go_on) = match next {
                Some(Ok(entry)) => (IterOutcome::Entry(Record::of(&entry)), true),
                Some(Err(Error::Truncated { first_cut })) => {
                    (IterOutcome::Truncated(first_cut), true)
                }
                Some(Err(Error::SeqOutOfRange { .. })) => (IterOutcome::OutOfRange, false),
                Some(Err(Error::Closed)) => {
                    self.log.closed.push((span, "iterator next"));
                    break;
                }
                Some(Err(err)) => (IterOutcome::Failed(full(&err)), false),
                // A plain iterator at the end of the log may be called again later.
                None => (
                    IterOutcome::End,
                    mode >= 10 && !self.round.stop.load(Ordering::SeqCst),
                ),
            };
            trace.steps.push((span, outcome));
            if !go_on {
                break;
            }
        }
        self.log.iters.push(trace);
    }

    fn wait_for(&mut self) {
        let seq = self.wal().last_seq() + self.rng.below(3);
        let timeout = match self.rng.below(10) {
            0..=3 => Duration::ZERO,
            4..=6 => Duration::from_millis(2),
            7..=8 => Duration::from_millis(50),
            _ => Duration::MAX,
        };
        let (span, result) = self.time(|| self.wal().wait_for(seq, timeout));
        self.log.blocking_ends.push((Instant::now(), "wait_for"));
        match result {
            Ok(visible) => self.log.waits.push((span, seq, visible)),
            Err(err) => self.error(span, "wait_for", &err),
        }
    }

    fn truncate_back(&mut self) {
        let (first, last) = self.range();
        let seq = last.saturating_sub(self.rng.below(8)).max(first);
        let (span, result) = self.time(|| self.wal().truncate_back(seq));
        match result {
            Ok(()) => self.log.changes.push(Change::TruncateBack { span, seq }),
            Err(Error::SeqOutOfRange { .. }) => self.log.refused_backs.push((span, seq)),
            Err(err) => self.error(span, "truncate_back", &err),
        }
    }

    fn truncate_front(&mut self) {
        let (first, last) = self.range();
        // Keep the log to a few hundred entries; now and then cut further.
        let keep = if self.rng.below(4) == 0 {
            self.rng.below(40)
        } else {
            120
        };
        let seq = last.saturating_sub(keep).max(first);
        let (span, result) = self.time(|| self.wal().truncate_front(seq));
        match result {
            Ok(first) => self.log.changes.push(Change::TruncateFront { span, first }),
            Err(err) => self.error(span, "truncate_front", &err),
        }
    }

    fn rotate(&mut self) {
        let (span, result) = self.time(|| self.wal().rotate());
        if let Err(err) = result {
            self.error(span, "rotate", &err);
        }
    }

    fn sync(&mut self) {
        let (span, result) = self.time(|| self.wal().sync());
        if let Err(err) = result {
            self.error(span, "sync", &err);
        }
    }

    /// Opens the live log read-only and reads up to 30 entries from its first.
    fn open_read_only(&mut self) {
        let options = self.round.options.clone().read_only();
        let (created, opened) = self.time(|| Wal::open(&self.round.dir, options));
        let reader = match opened {
            Ok(reader) => reader,
            Err(err) => {
                return self.log.violations.push(Violation {
                    kind: "opening the live log read-only failed",
                    seq: 0,
                    tick: created.end,
                    detail: format!("{created}: {}", full(&err)),
                })
            }
        };
        let from = reader.first_seq();
        let mut trace = IterTrace {
            created,
            from,
            steps: Vec::new(),
        };
        match reader.iter_from(from) {
            Ok(mut iter) => {
                for _ in 0..30 {
                    let (span, next) = self.time(|| iter.next());
                    let outcome = match next {
                        Some(Ok(entry)) => IterOutcome::Entry(Record::of(&entry)),
                        // The live log may remove or rewrite what the read-only
                        // view is about to read: the view must say which, and
                        // nothing else may fail.
                        Some(Err(err)) => {
                            let counted = match err {
                                Error::ViewOutdated { .. } => "read-only view outdated",
                                Error::SeqOutOfRange { .. } => "read-only view out of range",
                                other => {
                                    self.log.violations.push(Violation {
                                        kind: "a read-only view failed otherwise than outdated or out of range",
                                        seq: 0,
                                        tick: span.end,
                                        detail: format!("{span}: {}", full(&other)),
                                    });
                                    "read-only view failed"
                                }
                            };
                            *self.log.ops.entry(counted).or_default() += 1;
                            break;
                        }
                        None => IterOutcome::End,
                    };
                    let done = !matches!(outcome, IterOutcome::Entry(_));
                    trace.steps.push((span, outcome));
                    if done {
                        break;
                    }
                }
            }
            Err(err) => self.log.violations.push(Violation {
                kind: "a read-only view refused to iterate from its first entry",
                seq: from,
                tick: created.end,
                detail: format!("{created}: {}", full(&err)),
            }),
        }
        self.log.snapshots.push(trace);
    }
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

/// Totals of a variant, printed in the long run.
#[derive(Default)]
struct Figures {
    ops: BTreeMap<&'static str, u64>,
    checks: u64,
    rounds: u64,
}

/// The violations of a variant by kind: how many, the first one, when it was found.
#[derive(Default)]
struct Found {
    by_kind: BTreeMap<&'static str, (u64, Violation, String, Duration)>,
}

impl Found {
    /// Counts `violation`, keeping the earliest of its kind.
    fn add(&mut self, violation: Violation, history: Option<&History>, after: Duration) {
        let around = |v: &Violation| history.map(|h| h.around(v.seq, 3)).unwrap_or_default();
        match self.by_kind.get_mut(violation.kind) {
            Some((count, first, first_around, first_after)) => {
                *count += 1;
                if after < *first_after {
                    *first_around = around(&violation);
                    (*first, *first_after) = (violation, after);
                }
            }
            None => {
                let text = around(&violation);
                self.by_kind
                    .insert(violation.kind, (1, violation, text, after));
            }
        }
    }
}

/// When ticks of a round's clock were taken, as time since the variant started.
#[derive(Default)]
struct Timeline(Vec<(u64, Duration)>);

impl Timeline {
    /// About when `tick` was taken (the last sample before it).
    fn time(&self, tick: u64) -> Duration {
        let after = self.0.partition_point(|(sampled, _)| *sampled <= tick);
        match after.checked_sub(1).and_then(|i| self.0.get(i)) {
            Some(&(_, time)) if tick != u64::MAX => time,
            _ => self.0.last().map_or(Duration::ZERO, |&(_, time)| time),
        }
    }
}

static QUIET_WORKERS: Once = Once::new();

/// Keeps the panics of worker threads (recorded as violations) off the output.
fn quiet_worker_panics() {
    QUIET_WORKERS.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let worker = thread::current()
                .name()
                .is_some_and(|n| n.starts_with(WORKER));
            if !worker {
                previous(info);
            }
        }));
    });
}

fn base_dir(disk: Disk) -> Option<tempfile::TempDir> {
    match disk {
        Disk::Temp => Some(tempfile::tempdir().unwrap()),
        Disk::Shm if Path::new("/dev/shm").is_dir() => tempfile::tempdir_in("/dev/shm").ok(),
        Disk::Shm => None,
    }
}

fn seed(default: u64) -> u64 {
    std::env::var("FLASHLOG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Runs a variant for its time budget; panics with every kind of violation found.
fn run_variant(variant: Variant) {
    quiet_worker_panics();
    // Every Linux has /dev/shm: a machine without one fails the variant rather
    // than passing it unrun.
    let Some(base) = base_dir(variant.disk) else {
        panic!("{}: cannot run: no /dev/shm", variant.name);
    };
    let dir = base.path().join("log");
    let budget = if long() {
        let secs = std::env::var("FLASHLOG_CONCURRENT_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(180);
        Duration::from_secs(secs)
    } else {
        Duration::from_secs(3)
    };
    let round_length = if long() {
        Duration::from_secs(5)
    } else {
        Duration::from_millis(1200)
    };
    let inner: Arc<dyn Fs> = Arc::new(StdFs);
    let fs: Arc<dyn Fs> = if variant.delays {
        let delays = DelayFs::everywhere(inner, variant.seed, 0.03, Duration::from_micros(300))
            .delay(
                Call::ReadAt,
                Delay::up_to(Duration::from_millis(1)).with_probability(0.3),
            )
            .delay(
                Call::Open,
                Delay::up_to(Duration::from_millis(1)).with_probability(0.3),
            )
            .delay(
                Call::Create,
                Delay::up_to(Duration::from_millis(1)).with_probability(0.3),
            );
        Arc::new(delays)
    } else {
        inner
    };
    let options = Options::default()
        .max_segment_size(SEGMENT)
        .sync_policy(variant.policy)
        .fs(fs);
    let started = Instant::now();
    let mut figures = Figures::default();
    let mut found = Found::default();
    let mut previous: Option<History> = None;
    let mut rng = Rng::new(variant.seed);
    while started.elapsed() < budget {
        figures.rounds += 1;
        let wal = match Wal::open(&dir, options.clone()) {
            Ok(wal) => Arc::new(wal),
            Err(err) => {
                let violation = Violation {
                    kind: "reopening after a round failed",
                    seq: 0,
                    tick: u64::MAX,
                    detail: full(&err),
                };
                found.add(violation, None, started.elapsed());
                break;
            }
        };
        let initial = Recovered::read(&wal).unwrap();
        if let Some(history) = &previous {
            figures.checks += initial.entries.len() as u64 + 1;
            if let Err(violation) = history.check_final(initial.first_seq, &initial.entries) {
                found.add(violation, Some(history), started.elapsed());
            }
        }
        let round = Arc::new(Round {
            wal,
            dir: dir.clone(),
            options: options.clone(),
            clock: Arc::new(Clock::new()),
            stop: AtomicBool::new(false),
            round: figures.rounds,
        });
        let seeds: Vec<u64> = (0..THREADS).map(|_| rng.next_u64()).collect();
        let limit = round_length + Duration::from_secs(60);
        let ran = {
            let round = Arc::clone(&round);
            run_with_timeout(limit, move || {
                play_round(&round, &seeds, round_length, started)
            })
        };
        let (logs, close, timeline) = match ran {
            Ok(ran) => ran,
            Err(err) => {
                let violation = Violation {
                    kind: "a round hung or panicked",
                    seq: 0,
                    tick: u64::MAX,
                    detail: err.to_string(),
                };
                found.add(violation, None, started.elapsed());
                break;
            }
        };
        let history = check_round(&initial, logs, close, &mut figures, &mut found, &timeline);
        previous = Some(history);
        drop(round);
    }
    if let Some(history) = &previous {
        if let Ok(wal) = Wal::open(&dir, options.clone()) {
            let last = Recovered::read(&wal).unwrap();
            figures.checks += last.entries.len() as u64 + 1;
            if let Err(violation) = history.check_final(last.first_seq, &last.entries) {
                found.add(violation, Some(history), started.elapsed());
            }
            wal.close().unwrap();
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let total: u64 = figures
        .ops
        .iter()
        .filter(|(name, _)| !name.starts_with("read-only reads"))
        .map(|(_, count)| count)
        .sum();
    eprintln!(
        "{}: seed {}, {} rounds, {seconds:.1} s, {total} calls {:?}, {} checks",
        variant.name, variant.seed, figures.rounds, figures.ops, figures.checks
    );
    if found.by_kind.is_empty() {
        return;
    }
    let mut report = format!(
        "{}: seed {} (FLASHLOG_SEED to repeat the choices), violations by kind:\n",
        variant.name, variant.seed
    );
    for (kind, (count, first, around, after)) in &found.by_kind {
        report.push_str(&format!(
            "- {kind}: {count} times, first found {:.2} s into the run:\n  {first}\n{around}",
            after.as_secs_f64()
        ));
    }
    panic!("{report}");
}

/// Runs the workers for `length`, then closes the log while they still run.
fn play_round(
    round: &Arc<Round>,
    seeds: &[u64],
    length: Duration,
    started: Instant,
) -> (Vec<Log>, (Span, Instant), Timeline) {
    let workers: Vec<_> = seeds
        .iter()
        .enumerate()
        .map(|(id, &seed)| {
            let round = Arc::clone(round);
            thread::Builder::new()
                .name(format!("{WORKER}{id}"))
                .spawn(move || {
                    let worker = Worker {
                        id,
                        round: &round,
                        rng: Rng::new(seed),
                        appended: 0,
                        log: Log::default(),
                    };
                    worker.run()
                })
                .unwrap()
        })
        .collect();
    let mut timeline = Timeline::default();
    let playing = Instant::now();
    while playing.elapsed() < length {
        timeline.0.push((round.clock.tick(), started.elapsed()));
        thread::sleep(Duration::from_millis(5));
    }
    let (span, closed) = round.clock.time(|| round.wal.close());
    let closed_at = Instant::now();
    round.stop.store(true, Ordering::SeqCst);
    let mut logs: Vec<Log> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    if let Err(err) = closed {
        logs[0].violations.push(Violation {
            kind: "close failed",
            seq: 0,
            tick: span.end,
            detail: full(&err),
        });
    }
    (logs, (span, closed_at), timeline)
}

/// Builds a round's history and checks every result of it.
fn check_round(
    initial: &Recovered,
    logs: Vec<Log>,
    (close, closed_at): (Span, Instant),
    figures: &mut Figures,
    found: &mut Found,
    timeline: &Timeline,
) -> History {
    let changes: Vec<Change> = logs
        .iter()
        .flat_map(|log| log.changes.iter().cloned())
        .collect();
    let history = History::new(initial.first_seq, &initial.entries, &changes);
    let mut report = |result: Result<(), Violation>, figures: &mut Figures| {
        figures.checks += 1;
        if let Err(violation) = result {
            let after = timeline.time(violation.tick);
            found.add(violation, Some(&history), after);
        }
    };
    for log in logs {
        for (name, count) in log.ops {
            *figures.ops.entry(name).or_default() += count;
        }
        for violation in log.violations {
            report(Err(violation), figures);
        }
        for (span, seq, result) in &log.reads {
            report(history.check_read(*span, *seq, result), figures);
        }
        for (span, seq, visible) in &log.waits {
            report(history.check_wait(*span, *seq, *visible), figures);
        }
        for trace in &log.iters {
            figures.checks += trace.steps.len() as u64;
            report(history.check_iter(trace), figures);
        }
        for trace in &log.snapshots {
            figures.checks += trace.steps.len() as u64;
            report(history.check_snapshot(trace), figures);
        }
        for (span, from) in &log.refused_iters {
            report(history.check_iter_refused(*span, *from), figures);
        }
        for (span, seq) in &log.refused_backs {
            let refused = if history.may_be_cut_in_front(*seq, span.end) {
                Ok(())
            } else {
                Err(Violation {
                    kind: "truncate_back said SeqOutOfRange, nothing before it was removed",
                    seq: *seq,
                    tick: span.end,
                    detail: format!("{span}"),
                })
            };
            report(refused, figures);
        }
        for (span, call) in &log.closed {
            let in_time = span.end >= close.start;
            let kind = "a call said Closed before close began";
            let detail = || format!("{call} {span}, close {close}");
            report(unless(in_time, kind, span.end, detail), figures);
        }
        for (ended, call) in &log.blocking_ends {
            let late = ended.saturating_duration_since(closed_at);
            let kind = "a blocked call did not return promptly on close";
            let detail = || format!("{call} returned {late:?} after close");
            report(unless(late <= PROMPT, kind, close.end, detail), figures);
        }
    }
    history
}

/// `Ok` when `holds`, else a violation of `kind` at `tick` (of no one entry).
fn unless(
    holds: bool,
    kind: &'static str,
    tick: u64,
    detail: impl FnOnce() -> String,
) -> Result<(), Violation> {
    if holds {
        return Ok(());
    }
    Err(Violation {
        kind,
        seq: 0,
        tick,
        detail: detail(),
    })
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
