//! Helpers shared by the suite: workloads on a simulated log, and reopening crash
//! images under the contract.

use std::sync::Arc;

use flashlog_testkit::{check_recovered, LogModel, Recovered, SimFs};
use flashlog_wal::{Batch, Error, Op, Options, RecoveryMode, SyncPolicy, Wal};

/// The log's directory inside every simulated file system.
pub const DIR: &str = "/sim/log";

/// Whether the long, opt-in version runs (`FLASHLOG_LONG=1`).
pub fn long() -> bool {
    std::env::var("FLASHLOG_LONG").is_ok_and(|v| v == "1")
}

pub fn options(sim: &SimFs, segment: u64, policy: SyncPolicy) -> Options {
    Options::default()
        .max_segment_size(segment)
        .sync_policy(policy)
        .fs(Arc::new(sim.clone()))
}

/// A value of `len` bytes that differs for every `n`.
pub fn value(n: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (n as u8).wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

/// One step of a workload against a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// One small entry.
    Append,
    /// Three small entries in one batch.
    Batch,
    /// `Wal::sync`.
    Sync,
    /// An entry too large to share a segment with any other: forces a rotation.
    Rotate,
    /// `truncate_front(last)`: drops every sealed segment.
    TruncateFront,
    /// `truncate_back(last - 1)`: drops the last two entries.
    TruncateBack,
}

impl Step {
    pub const ALL: [Step; 6] = [
        Step::Append,
        Step::Batch,
        Step::Sync,
        Step::Rotate,
        Step::TruncateFront,
        Step::TruncateBack,
    ];
}

/// Drives a log and keeps the model of what it was asked and what it promised.
pub struct Driver {
    pub model: LogModel,
    pub policy: SyncPolicy,
    /// Issue counter: keys and values are unique per issued entry.
    pub issued: u64,
    /// Results of every call, for contract 4: `true` for `Ok`.
    pub results: Vec<(Step, Result<(), String>)>,
    /// The operating system's error kind of the last step's error, if any.
    pub last_io_kind: Option<std::io::ErrorKind>,
    /// Sequence numbers handed out that differ from the model's.
    pub wrong_seq: Vec<String>,
}

impl Driver {
    pub fn new(model: LogModel, policy: SyncPolicy) -> Driver {
        Driver {
            model,
            policy,
            issued: 0,
            results: Vec::new(),
            last_io_kind: None,
            wrong_seq: Vec::new(),
        }
    }

    fn next_entry(&mut self, big: bool) -> (Vec<u8>, Vec<u8>) {
        self.issued += 1;
        let key = format!("w{}", self.issued % 10).into_bytes();
        let value = value(self.issued, if big { 21 } else { 8 });
        (key, value)
    }

    fn append(&mut self, wal: &Wal, big: bool) -> flashlog_wal::Result<()> {
        let (key, value) = self.next_entry(big);
        let expected = self.model.issue(Op::Put, &key, &value);
        let seq = wal.append(Op::Put, &key, &value)?;
        if seq != expected {
            self.wrong_seq
                .push(format!("append got {seq}, expected {expected}"));
        }
        if self.policy == SyncPolicy::Always {
            self.model.ack_through(seq);
        }
        Ok(())
    }

    /// Runs one step; returns whether it succeeded.
    pub fn step(&mut self, wal: &Wal, step: Step) -> bool {
        let result = match step {
            Step::Append => self.append(wal, false),
            Step::Rotate => self.append(wal, true),
            Step::Batch => {
                let mut batch = Batch::new();
                let mut first = None;
                for _ in 0..3 {
                    let (key, value) = self.next_entry(false);
                    let seq = self.model.issue(Op::Put, &key, &value);
                    first.get_or_insert(seq);
                    batch.put(&key, &value);
                }
                let expected = first.unwrap_or(0)..=self.model.last_seq();
                wal.append_batch(&batch).map(|seqs| {
                    if seqs != expected {
                        self.wrong_seq
                            .push(format!("batch got {seqs:?}, expected {expected:?}"));
                    }
                    if self.policy == SyncPolicy::Always {
                        self.model.ack_through(*seqs.end());
                    }
                })
            }
            Step::Sync => wal.sync().map(|()| self.model.ack_all()),
            Step::TruncateFront => {
                let seq = self.model.last_seq().max(1);
                let result = wal.truncate_front(seq);
                self.model
                    .truncate_front(seq, result.as_ref().ok().copied());
                result.map(drop)
            }
            Step::TruncateBack => {
                let seq = self.model.last_seq().saturating_sub(1).max(wal.first_seq());
                let result = wal.truncate_back(seq);
                self.model.truncate_back(seq, result.is_ok());
                result
            }
        };
        let ok = result.is_ok();
        self.last_io_kind = result.as_ref().err().and_then(Error::io_kind);
        self.results.push((step, result.map_err(|e| e.to_string())));
        ok
    }

    /// After a step failed without poisoning the log: the write was refused for a
    /// full disk and its entries (everything after the written edge) taken back,
    /// their numbers free for the next ones. Returns a complaint if that is not
    /// what the error says.
    pub fn refused(&mut self, wal: &Wal) -> Option<String> {
        let (_, last) = self.results.last()?;
        let full = matches!(
            self.last_io_kind,
            Some(std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
        );
        let taken_back = wal.last_seq() + 1;
        self.model.truncate_back(taken_back, true);
        (!full).then(|| format!("failed without poisoning the log: {last:?}"))
    }

    /// Closes the log; a successful close makes everything durable.
    pub fn close(&mut self, wal: &Wal) -> bool {
        match wal.close() {
            Ok(()) => {
                self.model.ack_all();
                true
            }
            Err(_) => false,
        }
    }
}

/// What reopening a crash image found.
#[derive(Debug)]
pub enum Outcome {
    /// The contract holds.
    Ok,
    /// The default mode refused damage that lies only in unacknowledged bytes, and
    /// point-in-time recovery of the same image keeps the contract (contract 3).
    CorruptUnacked,
    /// The contract is broken.
    Failed(String),
}

/// Reopens `image` under the default recovery mode and checks it against `model`;
/// then reopens again and requires the same log (recovery is idempotent).
pub fn verify_image(image: &SimFs, model: &LogModel, segment: u64) -> Outcome {
    let snapshot = image.snapshot();
    let first = match reopen(image, segment, RecoveryMode::default()) {
        Ok(recovered) => recovered,
        Err(Error::Corrupt { .. }) => {
            return match reopen(&snapshot, segment, RecoveryMode::PointInTime) {
                Ok(recovered) => match check_recovered(&recovered, model) {
                    Ok(()) => Outcome::CorruptUnacked,
                    Err(violation) => Outcome::Failed(format!("point-in-time: {violation}")),
                },
                Err(err) => Outcome::Failed(format!("point-in-time open: {err}")),
            };
        }
        Err(err) => return Outcome::Failed(format!("open: {err}")),
    };
    if let Err(violation) = check_recovered(&first, model) {
        return Outcome::Failed(violation.to_string());
    }
    match reopen(image, segment, RecoveryMode::default()) {
        Ok(second) if second == first => Outcome::Ok,
        Ok(second) => Outcome::Failed(format!(
            "second open differs: {} then {} entries",
            first.entries.len(),
            second.entries.len()
        )),
        Err(err) => Outcome::Failed(format!("second open: {err}")),
    }
}

/// Opens the log on `sim` under `mode` and reads it whole; closes it.
pub fn reopen(sim: &SimFs, segment: u64, mode: RecoveryMode) -> flashlog_wal::Result<Recovered> {
    let wal = Wal::open(
        DIR,
        options(sim, segment, SyncPolicy::Always).recovery_mode(mode),
    )?;
    let recovered = Recovered::read(&wal)?;
    wal.close()?;
    Ok(recovered)
}
