//! A linearizability checker for key-value histories: operations on keys, each with
//! the client that issued it, the moment it was invoked and the moment its response
//! arrived (or none), checked against a register per key.
//!
//! A history is linearizable if every operation can be given one moment between
//! its invocation and its response at which it takes effect, such that the
//! operations, taken in the order of those moments, are a correct sequential run
//! of the store: each read returns the value of the latest write before it (or
//! nothing, if there is none or it was a delete). Keys are independent registers,
//! and linearizability is compositional (Herlihy and Wing's *locality*): a history
//! is linearizable exactly when each key's sub-history is. So [`Checker::check`]
//! splits the history by key and searches each alone, with the algorithm of Wing and
//! Gong (try every operation that may take effect next, backtrack when one cannot)
//! and Lowe's memoization (never search twice from the same set of operations
//! already taken with the same register value), as Porcupine and Knossos do.
//!
//! What the history must say:
//!
//! - Times are any `u64` clock shared by every client (nanoseconds since the test
//!   began, as [`Recorder`] stamps them, or the ticks of a logical clock), taken
//!   just before sending a request and just after its response arrived. Equal
//!   times count as overlapping.
//! - A write (`Put` or `Delete`) that failed *indeterminately* has no response:
//!   it may have taken effect at any moment after its invocation, or never. That
//!   is any failure after the request may have reached a node: a timeout, a
//!   dropped connection, a node that died, and also an error status from a server
//!   that may already have proposed the write (a `503` after a leader change or a
//!   request timeout). Only a write that surely never took effect (the connection
//!   was refused, a `307` not followed, an error the server gives before
//!   proposing) may be left out; when in doubt, record it without a response.
//! - A read without a response constrains nothing: [`Checker::check`] ignores it.
//!
//! ```
//! use flashlog_testkit::linearizability::{Checker, History};
//!
//! let mut history = History::new();
//! history.put(1, "x", "a", 0, Some(10));
//! history.get(2, "x", "a", 5, Some(12)); // overlaps the put: may see it
//! history.put(1, "x", "b", 20, None); // timed out: may or may not have happened
//! history.get(2, "x", "a", 30, Some(40));
//! assert!(Checker::default().check(&history).is_ok());
//!
//! history.get_absent(3, "x", 50, Some(60)); // after the put of "a" returned
//! let err = Checker::default().check(&history).unwrap_err();
//! assert!(err.to_string().contains("key \"x\""));
//! ```

mod search;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Instant;

use search::KeySearch;

/// What an operation did to its key, and what a read observed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Set the key to this value.
    Put(Vec<u8>),
    /// Remove the key.
    Delete,
    /// Read the key: the value it returned, `None` for "absent" (a 404).
    Get(Option<Vec<u8>>),
}

impl Kind {
    /// Whether the operation changes the register (a put or a delete).
    pub fn is_write(&self) -> bool {
        !matches!(self, Kind::Get(_))
    }
}

/// One operation of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Who issued it (a client or thread number; only reported, never used to order).
    pub client: u64,
    /// The key it concerns.
    pub key: Vec<u8>,
    /// When it was invoked: the clock just before the request was sent.
    pub call: u64,
    /// When its response arrived, or `None` if none did (see the module docs).
    pub response: Option<u64>,
    /// What it did or observed.
    pub kind: Kind,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {} ", self.client)?;
        match &self.kind {
            Kind::Put(value) => write!(f, "put {}", Shown(value))?,
            Kind::Delete => write!(f, "delete")?,
            Kind::Get(Some(value)) => write!(f, "get -> {}", Shown(value))?,
            Kind::Get(None) => write!(f, "get -> absent")?,
        }
        match self.response {
            Some(response) => write!(f, " [{}, {}]", self.call, response),
            None => write!(f, " [{}, no response]", self.call),
        }
    }
}

/// Bytes as a quoted string when printable, else as hex (for messages).
pub(crate) struct Shown<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 40;
        let bytes = &self.0[..self.0.len().min(MAX)];
        let more = if self.0.len() > MAX { "…" } else { "" };
        if bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            let text: String = bytes.iter().map(|&b| char::from(b)).collect();
            write!(f, "{text:?}{more}")
        } else {
            write!(f, "0x")?;
            for byte in bytes {
                write!(f, "{byte:02x}")?;
            }
            write!(f, "{more} ({} B)", self.0.len())
        }
    }
}

/// A history: the operations of every client, in any order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    operations: Vec<Operation>,
}

impl History {
    /// An empty history.
    pub fn new() -> History {
        History::default()
    }

    /// Adds an operation.
    pub fn push(&mut self, operation: Operation) {
        self.operations.push(operation);
    }

    /// Adds a put of `value` to `key` (`response: None` for an indeterminate one).
    pub fn put(
        &mut self,
        client: u64,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        call: u64,
        response: Option<u64>,
    ) {
        self.push_kind(
            client,
            key,
            Kind::Put(value.as_ref().to_vec()),
            call,
            response,
        );
    }

    /// Adds a delete of `key` (`response: None` for an indeterminate one).
    pub fn delete(&mut self, client: u64, key: impl AsRef<[u8]>, call: u64, response: Option<u64>) {
        self.push_kind(client, key, Kind::Delete, call, response);
    }

    /// Adds a read of `key` that returned `value`.
    pub fn get(
        &mut self,
        client: u64,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        call: u64,
        response: Option<u64>,
    ) {
        let observed = Kind::Get(Some(value.as_ref().to_vec()));
        self.push_kind(client, key, observed, call, response);
    }

    /// Adds a read of `key` that found it absent.
    pub fn get_absent(
        &mut self,
        client: u64,
        key: impl AsRef<[u8]>,
        call: u64,
        response: Option<u64>,
    ) {
        self.push_kind(client, key, Kind::Get(None), call, response);
    }

    fn push_kind(
        &mut self,
        client: u64,
        key: impl AsRef<[u8]>,
        kind: Kind,
        call: u64,
        response: Option<u64>,
    ) {
        self.push(Operation {
            client,
            key: key.as_ref().to_vec(),
            call,
            response,
            kind,
        });
    }

    /// The operations, in the order they were added.
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.operations.len()
    }

    /// Whether it holds no operation.
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }
}

/// A [`History`] that many threads or tasks add to, stamping times from one
/// monotonic clock (nanoseconds since [`Recorder::new`]).
///
/// ```
/// use flashlog_testkit::linearizability::{Checker, Kind, Recorder};
///
/// let recorder = Recorder::new();
/// let call = recorder.now();
/// // ... send the request, get the response ...
/// recorder.record(7, b"k", Kind::Put(b"v".to_vec()), call, Some(recorder.now()));
/// assert!(Checker::default().check(&recorder.history()).is_ok());
/// ```
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    history: Mutex<History>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Recorder {
        Recorder {
            start: Instant::now(),
            history: Mutex::new(History::new()),
        }
    }

    /// The clock: nanoseconds since the recorder was made (monotonic).
    pub fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Adds an operation invoked at `call` (from [`Recorder::now`]) whose response
    /// arrived at `response` (`None`: no response, see the module docs).
    pub fn record(
        &self,
        client: u64,
        key: impl AsRef<[u8]>,
        kind: Kind,
        call: u64,
        response: Option<u64>,
    ) {
        let operation = Operation {
            client,
            key: key.as_ref().to_vec(),
            call,
            response,
            kind,
        };
        // A panic in another recording thread poisons the lock; the history it
        // holds is still whole (a push either happened or not).
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        history.push(operation);
    }

    /// A copy of what has been recorded so far.
    pub fn history(&self) -> History {
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Why a history was not found linearizable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No order of one key's operations explains what its reads returned.
    #[error("{0}")]
    NotLinearizable(Box<Counterexample>),
    /// An operation's response came before its invocation.
    #[error("operation {index} ({operation}) responds before it is invoked")]
    ResponseBeforeCall {
        /// Its position in the history.
        index: usize,
        /// The operation.
        operation: Box<Operation>,
    },
    /// The search of one key ran out of its budget
    /// ([`Checker::max_steps_per_key`], [`Checker::max_cache_bytes_per_key`])
    /// without deciding.
    #[error(
        "key {}: undecided after {steps} search steps and {cache_bytes} bytes of memo \
         ({operations} operations); raise the Checker's budget or record fewer \
         concurrent operations",
        Shown(key)
    )]
    Undecided {
        /// The key.
        key: Vec<u8>,
        /// Steps taken.
        steps: u64,
        /// Memory the memo took, in bytes.
        cache_bytes: usize,
        /// Operations of that key.
        operations: usize,
    },
}

/// An operation that could not go next, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stuck {
    /// Its position in the history.
    pub index: usize,
    /// The operation.
    pub operation: Operation,
    /// Why it could not take effect at that point.
    pub reason: StuckReason,
}

/// Why an operation could not take effect next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StuckReason {
    /// A read whose value is not the register's.
    ReadsOtherValue,
    /// It can take effect, but every order that follows fails later.
    DeadEndLater,
}

/// The explanation of a key whose operations cannot be ordered: the longest order
/// the search found, the register's value after it, and the operations none of
/// which could come next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counterexample {
    /// The key.
    pub key: Vec<u8>,
    /// Operations of that key searched (writes without a response that no read
    /// observed are left out: they can always take effect last).
    pub operations: usize,
    /// The longest order found, as positions in the history, in the order taken.
    pub linearized: Vec<usize>,
    /// The last operations of that order (at most 8), for the message.
    pub linearized_tail: Vec<Operation>,
    /// The register's value after that order (`None`: absent).
    pub state: Option<Vec<u8>>,
    /// The operations that may come next by real time, none of which can.
    /// The last one is the operation whose response forbids going on without it.
    pub stuck: Vec<Stuck>,
}

impl fmt::Display for Counterexample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "key {}: not linearizable: {} of its {} operations can be ordered, ",
            Shown(&self.key),
            self.linearized.len(),
            self.operations
        )?;
        if self.linearized_tail.is_empty() {
            write!(f, "none at all")?;
        } else {
            write!(f, "ending with")?;
            for op in &self.linearized_tail {
                write!(f, " <{op}>")?;
            }
        }
        match &self.state {
            Some(value) => write!(f, " (the key holds {})", Shown(value))?,
            None => write!(f, " (the key is absent)")?,
        }
        write!(f, "; then none of these can take effect next:")?;
        const SHOWN: usize = 12;
        let skipped = self.stuck.len().saturating_sub(SHOWN);
        if skipped > 0 {
            write!(f, " ({skipped} more before these)")?;
        }
        for stuck in &self.stuck[skipped..] {
            let why = match stuck.reason {
                StuckReason::ReadsOtherValue => "reads another value",
                StuckReason::DeadEndLater => "every order after it fails",
            };
            write!(f, " <#{} {}: {}>", stuck.index, stuck.operation, why)?;
        }
        Ok(())
    }
}

/// What a successful check covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Checked {
    /// Distinct keys.
    pub keys: usize,
    /// Operations checked (reads without a response excluded).
    pub operations: usize,
    /// Writes without a response among them.
    pub indeterminate: usize,
    /// Search steps, summed over keys.
    pub steps: u64,
}

/// Checks histories. Each key's search has a budget: [`Checker::default`] allows
/// 10 million steps (a typical history takes about two per operation) and 1 GiB of
/// memoized configurations, then reports [`Error::Undecided`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checker {
    budget: search::Budget,
}

impl Default for Checker {
    fn default() -> Self {
        Checker {
            budget: search::Budget {
                steps: 10_000_000,
                cache_bytes: 1 << 30,
            },
        }
    }
}

impl Checker {
    /// The most search steps spent on one key before [`Error::Undecided`]
    /// (default 10 million).
    #[must_use]
    pub fn max_steps_per_key(mut self, steps: u64) -> Checker {
        self.budget.steps = steps;
        self
    }

    /// The most memory one key's memo (the configurations already searched) may
    /// take before [`Error::Undecided`], in bytes (default 1 GiB).
    #[must_use]
    pub fn max_cache_bytes_per_key(mut self, bytes: usize) -> Checker {
        self.budget.cache_bytes = bytes;
        self
    }

    /// Checks that `history` is linearizable, key by key (keys in byte order; the
    /// first key that fails is reported).
    ///
    /// # Errors
    /// [`Error::NotLinearizable`] with a [`Counterexample`] naming the key and the
    /// operations that cannot be ordered; [`Error::ResponseBeforeCall`] for an
    /// operation whose times are reversed; [`Error::Undecided`] if a key's search
    /// ran out of its budget.
    pub fn check(&self, history: &History) -> Result<Checked, Error> {
        let mut by_key: BTreeMap<&[u8], Vec<usize>> = BTreeMap::new();
        let mut checked = Checked::default();
        for (index, op) in history.operations.iter().enumerate() {
            if let Some(response) = op.response {
                if response < op.call {
                    return Err(Error::ResponseBeforeCall {
                        index,
                        operation: Box::new(op.clone()),
                    });
                }
            }
            match (&op.kind, op.response) {
                (Kind::Get(_), None) => continue,
                (_, None) => checked.indeterminate += 1,
                _ => {}
            }
            checked.operations += 1;
            by_key.entry(&op.key).or_default().push(index);
        }
        checked.keys = by_key.len();
        for (key, indices) in by_key {
            let search = KeySearch::new(&history.operations, &indices);
            checked.steps += search.run(key, self.budget)?;
        }
        Ok(checked)
    }
}

#[cfg(test)]
mod tests;
