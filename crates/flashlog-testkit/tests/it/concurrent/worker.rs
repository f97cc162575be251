//! The workers of a round: each picks calls at random, runs them on the shared
//! log and records what it asked and what it got.

use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flashlog_testkit::history::{Change, Clock, IterOutcome, IterTrace, Span, Violation};
use flashlog_testkit::{Record, Rng};
use flashlog_wal::{Batch, Error, Op, Options, Visibility, Wal};

use super::full;

/// What one worker did in one round.
#[derive(Default)]
pub(super) struct Log {
    pub(super) changes: Vec<Change>,
    pub(super) reads: Vec<(Span, u64, Result<Record, Option<String>>)>,
    pub(super) waits: Vec<(Span, u64, bool)>,
    pub(super) iters: Vec<IterTrace>,
    pub(super) refused_iters: Vec<(Span, u64)>,
    pub(super) snapshots: Vec<IterTrace>,
    pub(super) refused_backs: Vec<(Span, u64)>,
    /// Calls that returned `Error::Closed`: fine only once `close` had started.
    pub(super) closed: Vec<(Span, &'static str)>,
    /// Blocking calls and when they returned, for the promptness check.
    pub(super) blocking_ends: Vec<(Instant, &'static str)>,
    pub(super) violations: Vec<Violation>,
    pub(super) ops: BTreeMap<&'static str, u64>,
}

/// Everything shared by the workers of one round.
pub(super) struct Round {
    pub(super) wal: Arc<Wal>,
    pub(super) dir: PathBuf,
    pub(super) options: Options,
    pub(super) clock: Arc<Clock>,
    pub(super) stop: AtomicBool,
    pub(super) round: u64,
}

pub(super) struct Worker<'a> {
    pub(super) id: usize,
    pub(super) round: &'a Round,
    pub(super) rng: Rng,
    pub(super) appended: u64,
    pub(super) log: Log,
}

impl Worker<'_> {
    pub(super) fn run(mut self) -> Log {
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
