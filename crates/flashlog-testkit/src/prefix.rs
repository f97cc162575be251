//! The contract for a log written by several threads at once and then killed:
//! [`WriterPrefixes`]. The single-writer form, where the order of issue is known,
//! is [`check_recovered`](crate::check_recovered) with a [`LogModel`](crate::LogModel);
//! here only each writer's own order is known, so the log must hold, after what
//! was verified before, of every writer exactly its first entries, in order,
//! interleaved in any way, and every acknowledged entry at its sequence number.
//!
//! Entries are named by ids ([`crate::payload`]): writer `t` of `writers` issues
//! `first_id + t`, then `+ writers` each time, all below `first_id + id_span`.

use std::collections::HashSet;

use flashlog_wal::{Entry, Wal};

use crate::child::Ack;

/// A way a killed log breaks the multi-writer contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrefixViolation {
    /// Reading the log failed.
    #[error("reading failed at seq {seq}: {error}")]
    Unreadable {
        /// Where.
        seq: u64,
        /// The error, as text.
        error: String,
    },
    /// Sequence numbers do not count up by one from the first.
    #[error("sequence numbers not contiguous: seq {found} where {expected} belongs")]
    Gap {
        /// The one expected.
        expected: u64,
        /// The one read.
        found: u64,
    },
    /// An entry no writer issued (its key or value is not one derived from an id).
    #[error("seq {seq}: phantom entry (key {key:?})")]
    Phantom {
        /// Where.
        seq: u64,
        /// Its key.
        key: Vec<u8>,
    },
    /// An id found twice.
    #[error("seq {seq}: id {id} duplicated")]
    Duplicate {
        /// Where the second one is.
        seq: u64,
        /// The id.
        id: u64,
    },
    /// An entry verified before is now another.
    #[error("seq {seq} changed since it was verified: id {found} instead of {known}")]
    Changed {
        /// Where.
        seq: u64,
        /// What was verified there.
        known: u64,
        /// What is there now.
        found: u64,
    },
    /// Entries verified before are gone.
    #[error("{lost} entries verified before are lost")]
    Shortened {
        /// How many.
        lost: usize,
    },
    /// An id outside this round's ids.
    #[error("seq {seq}: id {id} was not issued in this round (phantom)")]
    NotThisRound {
        /// Where.
        seq: u64,
        /// The id.
        id: u64,
    },
    /// A writer's entries skip or reorder.
    #[error("seq {seq}: writer {writer}'s entries are not a prefix in order (id {id}, expected {expected})")]
    OutOfOrder {
        /// Where.
        seq: u64,
        /// The writer.
        writer: u64,
        /// The id found.
        id: u64,
        /// The id its writer issued next.
        expected: u64,
    },
    /// An acknowledged entry is not at its sequence number.
    #[error("acknowledged id {id} at seq {seq} lost (found {found:?})")]
    Lost {
        /// The id.
        id: u64,
        /// Its sequence number.
        seq: u64,
        /// What is there instead.
        found: Option<u64>,
    },
}

/// What a log written by `writers` threads must hold after a kill (see the
/// module docs).
///
/// ```
/// use flashlog_testkit::child::Ack;
/// use flashlog_testkit::WriterPrefixes;
///
/// // Id 7 was verified before at seq 1; then two writers from id 100:
/// // writer 0 issues 100, 102, ..., writer 1 101, 103, ...; 101 was acknowledged at seq 2.
/// let check = WriterPrefixes {
///     first_seq: 1,
///     known: &[7],
///     first_id: 100,
///     writers: 2,
///     id_span: 1000,
///     acks: &[Ack { id: 101, seq: 2 }],
/// };
/// assert!(check.check(&[7, 101, 100, 103]).is_ok());
/// assert!(check.check(&[7, 101, 103]).is_ok());
/// assert!(check.check(&[7, 100]).is_err()); // the ack of 101 is lost
/// assert!(check.check(&[7, 103, 101]).is_err()); // writer 1 out of order
/// ```
#[derive(Debug, Clone, Copy)]
pub struct WriterPrefixes<'a> {
    /// The log's first sequence number.
    pub first_seq: u64,
    /// The ids verified before this round, from `first_seq` on: must stay.
    pub known: &'a [u64],
    /// Writer `t` issued `first_id + t` first.
    pub first_id: u64,
    /// How many writers.
    pub writers: u64,
    /// This round's ids lie in `first_id..first_id + id_span`.
    pub id_span: u64,
    /// The acknowledged entries of this round.
    pub acks: &'a [Ack],
}

impl WriterPrefixes<'_> {
    /// Checks the ids of the log, from `first_seq` on.
    ///
    /// # Errors
    /// The first way `ids` breaks the contract.
    pub fn check(&self, ids: &[u64]) -> Result<(), PrefixViolation> {
        let mut seen = HashSet::new();
        let mut next_of_writer: Vec<u64> = (0..self.writers).map(|t| self.first_id + t).collect();
        for (at, &id) in ids.iter().enumerate() {
            let seq = self.first_seq + at as u64;
            if !seen.insert(id) {
                return Err(PrefixViolation::Duplicate { seq, id });
            }
            if let Some(&known) = self.known.get(at) {
                if id != known {
                    return Err(PrefixViolation::Changed {
                        seq,
                        known,
                        found: id,
                    });
                }
                continue;
            }
            if !(self.first_id..self.first_id + self.id_span).contains(&id) {
                return Err(PrefixViolation::NotThisRound { seq, id });
            }
            let writer = (id - self.first_id) % self.writers;
            let expected = next_of_writer[writer as usize];
            if id != expected {
                return Err(PrefixViolation::OutOfOrder {
                    seq,
                    writer,
                    id,
                    expected,
                });
            }
            next_of_writer[writer as usize] += self.writers;
        }
        if ids.len() < self.known.len() {
            return Err(PrefixViolation::Shortened {
                lost: self.known.len() - ids.len(),
            });
        }
        for &Ack { id, seq } in self.acks {
            let at = seq.checked_sub(self.first_seq).map(|at| at as usize);
            let found = at.and_then(|at| ids.get(at)).copied();
            if found != Some(id) {
                return Err(PrefixViolation::Lost { id, seq, found });
            }
        }
        Ok(())
    }
}

/// The ids of every entry of `wal` from its first sequence number on, in order,
/// as `id_of` names them (`None`: a phantom), checking that sequence numbers
/// count up by one.
///
/// # Errors
/// A read that failed, a gap, or an entry `id_of` does not know.
pub fn ids_in(
    wal: &Wal,
    id_of: impl Fn(&Entry) -> Option<u64>,
) -> Result<Vec<u64>, PrefixViolation> {
    let first = wal.first_seq();
    let unreadable = |seq, error: flashlog_wal::Error| PrefixViolation::Unreadable {
        seq,
        error: error.to_string(),
    };
    let mut ids = Vec::new();
    for (at, entry) in wal
        .iter_from(first)
        .map_err(|e| unreadable(first, e))?
        .enumerate()
    {
        let expected = first + at as u64;
        let entry = entry.map_err(|e| unreadable(expected, e))?;
        if entry.seq() != expected {
            return Err(PrefixViolation::Gap {
                expected,
                found: entry.seq(),
            });
        }
        let id = id_of(&entry).ok_or_else(|| PrefixViolation::Phantom {
            seq: expected,
            key: entry.key().to_vec(),
        })?;
        ids.push(id);
    }
    Ok(ids)
}
