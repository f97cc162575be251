//! The expected-log model: what was issued, what was acknowledged, and the check
//! that a recovered log keeps the contract.
//!
//! Contract points 1 and 2: every acknowledged entry survives byte-identical with
//! its sequence number; the recovered log is a prefix of what was issued holding
//! every acknowledged entry, with nothing phantom, duplicated, reordered or missing.
//! Truncations interrupted by the crash may be found done or not done (never half).

use flashlog_wal::{Entry, Op, Wal};

/// One entry as recovered from a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its sequence number.
    pub seq: u64,
    /// Put or delete.
    pub op: Op,
    /// Its key.
    pub key: Vec<u8>,
    /// Its value.
    pub value: Vec<u8>,
}

impl Record {
    /// A put of `key` and `value` at `seq`.
    pub fn put(seq: u64, key: &[u8], value: &[u8]) -> Record {
        Record {
            seq,
            op: Op::Put,
            key: key.to_vec(),
            value: value.to_vec(),
        }
    }

    /// The record of a log entry.
    pub fn of(entry: &Entry) -> Record {
        Record {
            seq: entry.seq(),
            op: entry.op(),
            key: entry.key().to_vec(),
            value: entry.value().to_vec(),
        }
    }
}

/// What a reopened log holds: its first sequence number and its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// [`Wal::first_seq`].
    pub first_seq: u64,
    /// Every entry, in order.
    pub entries: Vec<Record>,
}

impl Recovered {
    /// Reads a whole log.
    ///
    /// # Errors
    /// The first error reading it.
    pub fn read(wal: &Wal) -> flashlog_wal::Result<Recovered> {
        let first_seq = wal.first_seq();
        let entries = wal
            .iter_from(first_seq)?
            .map(|entry| entry.map(|e| Record::of(&e)))
            .collect::<flashlog_wal::Result<Vec<_>>>()?;
        Ok(Recovered { first_seq, entries })
    }
}

/// An entry that was handed to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The record it must be found as.
    pub record: Record,
    /// Whether the log promised it durable (append `Ok` under `Always`, or a
    /// later `sync`/`close` returned `Ok`).
    pub acked: bool,
}

/// A way a recovered log breaks the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// An acknowledged entry is not there.
    #[error("acknowledged entry {seq} is missing (recovered {first}..={last})")]
    Missing {
        /// The entry.
        seq: u64,
        /// First recovered sequence number.
        first: u64,
        /// Last recovered sequence number.
        last: u64,
    },
    /// A recovered entry was never issued with that sequence number.
    #[error("entry {seq} was never issued (or was truncated away): {key:?}")]
    Phantom {
        /// Its sequence number.
        seq: u64,
        /// Its key.
        key: Vec<u8>,
    },
    /// A recovered entry differs from what was issued at its sequence number.
    #[error("entry {seq} differs from what was issued: {found:?} instead of {issued:?}")]
    Mismatch {
        /// Its sequence number.
        seq: u64,
        /// What was recovered.
        found: Box<Record>,
        /// What was issued.
        issued: Box<Record>,
    },
    /// Sequence numbers do not count up by one.
    #[error("sequence numbers jump from {before} to {after}")]
    Gap {
        /// The one before.
        before: u64,
        /// The one after.
        after: u64,
    },
    /// The first sequence number is not what a finished `truncate_front` returned.
    #[error("the log starts at {found}, but truncate_front returned {expected}")]
    WrongFirst {
        /// Recovered first sequence number.
        found: u64,
        /// Expected.
        expected: u64,
    },
}

/// The expected log: every issued entry of the current history, and the
/// truncations that may or may not have happened.
#[derive(Debug, Clone, Default)]
pub struct LogModel {
    /// Issued entries, by sequence number, contiguous.
    issued: Vec<Issued>,
    /// Entries before this sequence number may be gone (a `truncate_front`).
    floor: u64,
    /// The first sequence number a finished `truncate_front` returned.
    exact_first: Option<u64>,
    /// A `truncate_back(seq)` that failed or was cut by the crash.
    pending_back: Option<u64>,
}

impl LogModel {
    /// A model of an empty log starting at sequence number 1.
    pub fn new() -> LogModel {
        LogModel {
            floor: 1,
            ..LogModel::default()
        }
    }

    /// The sequence number the next issued entry gets.
    pub fn next_seq(&self) -> u64 {
        self.issued
            .last()
            .map_or(self.floor.max(1), |i| i.record.seq + 1)
    }

    /// The last issued sequence number (`next_seq() - 1`).
    pub fn last_seq(&self) -> u64 {
        self.next_seq() - 1
    }

    /// The issued entries.
    pub fn issued(&self) -> &[Issued] {
        &self.issued
    }

    /// Records an entry handed to the log; returns the sequence number it must get.
    pub fn issue(&mut self, op: Op, key: &[u8], value: &[u8]) -> u64 {
        let seq = self.next_seq();
        self.issued.push(Issued {
            record: Record {
                seq,
                op,
                key: key.to_vec(),
                value: value.to_vec(),
            },
            acked: false,
        });
        seq
    }

    /// Marks every issued entry up to `seq` acknowledged.
    pub fn ack_through(&mut self, seq: u64) {
        for issued in &mut self.issued {
            if issued.record.seq <= seq {
                issued.acked = true;
            }
        }
    }

    /// Marks every issued entry acknowledged (a `sync` or `close` returned `Ok`).
    pub fn ack_all(&mut self) {
        let last = self.last_seq();
        self.ack_through(last);
    }

    /// A `truncate_front(seq)` was called; `result` is what it returned, if `Ok`.
    pub fn truncate_front(&mut self, seq: u64, result: Option<u64>) {
        self.floor = self.floor.max(seq.min(self.next_seq()));
        self.exact_first = result;
    }

    /// A `truncate_back(seq)` was called, and returned `Ok` or not.
    pub fn truncate_back(&mut self, seq: u64, ok: bool) {
        if seq >= self.next_seq() {
            return;
        }
        if ok {
            self.issued.retain(|i| i.record.seq < seq);
            self.pending_back = None;
            if self.issued.is_empty() {
                self.floor = seq;
            }
        } else if self.pending_back.is_none() {
            // Only the first failed truncation can have happened: a failure
            // poisons the log, so later calls never reach the disk.
            self.pending_back = Some(seq);
        }
    }

    fn after_pending_back(&self) -> Option<LogModel> {
        let seq = self.pending_back?;
        let mut after = self.clone();
        after.truncate_back(seq, true);
        Some(after)
    }

    fn check_one(&self, recovered: &Recovered) -> Result<(), Violation> {
        let entries = &recovered.entries;
        for pair in entries.windows(2) {
            if pair[1].seq != pair[0].seq + 1 {
                return Err(Violation::Gap {
                    before: pair[0].seq,
                    after: pair[1].seq,
                });
            }
        }
        if let Some(expected) = self.exact_first {
            if recovered.first_seq != expected {
                return Err(Violation::WrongFirst {
                    found: recovered.first_seq,
                    expected,
                });
            }
        }
        for record in entries {
            match self.issued.iter().find(|i| i.record.seq == record.seq) {
                None => {
                    return Err(Violation::Phantom {
                        seq: record.seq,
                        key: record.key.clone(),
                    })
                }
                Some(issued) if issued.record != *record => {
                    return Err(Violation::Mismatch {
                        seq: record.seq,
                        found: Box::new(record.clone()),
                        issued: Box::new(issued.record.clone()),
                    })
                }
                Some(_) => {}
            }
        }
        let first = entries.first().map_or(recovered.first_seq, |r| r.seq);
        let last = entries.last().map_or(first.saturating_sub(1), |r| r.seq);
        for issued in self.issued.iter().filter(|i| i.acked) {
            let seq = issued.record.seq;
            if seq >= self.floor && !(first..=last).contains(&seq) {
                return Err(Violation::Missing { seq, first, last });
            }
        }
        Ok(())
    }
}

/// Checks a recovered log against the model (contract points 1 and 2). With a
/// `truncate_back` cut short, the log must match the state before it or after it.
///
/// # Errors
/// The first way the recovered log breaks the contract.
pub fn check_recovered(recovered: &Recovered, model: &LogModel) -> Result<(), Violation> {
    match model.check_one(recovered) {
        Ok(()) => Ok(()),
        Err(before) => match model.after_pending_back() {
            Some(after) => after.check_one(recovered).map_err(|_| before),
            None => Err(before),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64, key: &str) -> Record {
        Record::put(seq, key.as_bytes(), b"")
    }

    fn model(keys: &[&str], acked: u64) -> LogModel {
        let mut model = LogModel::new();
        for key in keys {
            model.issue(Op::Put, key.as_bytes(), b"");
        }
        model.ack_through(acked);
        model
    }

    fn log(first: u64, keys: &[(u64, &str)]) -> Recovered {
        Recovered {
            first_seq: first,
            entries: keys.iter().map(|&(s, k)| rec(s, k)).collect(),
        }
    }

    #[test]
    fn prefixes_holding_every_ack_pass_and_others_fail() {
        let model = model(&["a", "b", "c"], 2);
        assert!(check_recovered(&log(1, &[(1, "a"), (2, "b")]), &model).is_ok());
        assert!(check_recovered(&log(1, &[(1, "a"), (2, "b"), (3, "c")]), &model).is_ok());
        assert!(matches!(
            check_recovered(&log(1, &[(1, "a")]), &model),
            Err(Violation::Missing { seq: 2, .. })
        ));
        assert!(matches!(
            check_recovered(&log(1, &[(1, "a"), (2, "x")]), &model),
            Err(Violation::Mismatch { seq: 2, .. })
        ));
        let extra = log(1, &[(1, "a"), (2, "b"), (3, "c"), (4, "d")]);
        assert!(matches!(
            check_recovered(&extra, &model),
            Err(Violation::Phantom { seq: 4, .. })
        ));
    }

    #[test]
    fn an_interrupted_truncate_back_is_before_or_after_never_between() {
        let mut model = model(&["a", "b", "c"], 3);
        model.truncate_back(2, false);
        assert!(check_recovered(&log(1, &[(1, "a"), (2, "b"), (3, "c")]), &model).is_ok());
        assert!(check_recovered(&log(1, &[(1, "a")]), &model).is_ok());
        assert!(check_recovered(&log(1, &[(1, "a"), (2, "b")]), &model).is_err());
        model.truncate_back(2, true);
        assert!(check_recovered(&log(1, &[(1, "a"), (2, "b")]), &model).is_err());
    }
}
