//! [`Receipt`]: what [`Wal::submit`](crate::Wal::submit) returns, resolved when its
//! entries are durable (or can no longer become so).
//!
//! Each receipt shares a [`Completion`] with the log, which keeps the outstanding
//! ones in submission order (their entries' order) and resolves them from the
//! thread that finishes the fsync covering them: a blocking appender leading the
//! group, or the log's syncer thread. Whoever resolves a completion does it
//! *without* the log's lock held, so a callback may call the log again.

use std::fmt;
use std::future::Future;
use std::mem;
use std::ops::RangeInclusive;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::error::{Error, Result};
use crate::sync::{Condvar, Mutex, MutexGuard};

/// A callback given to [`Receipt::on_durable`].
type Callback = Box<dyn FnOnce(Result<RangeInclusive<u64>>) + Send + 'static>;

/// Why a receipt's entries will never be durable.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// A write or fsync failed: the log is poisoned by this error.
    Poisoned(Arc<Error>),
    /// `truncate_back` removed entries of the receipt (from this one on) before
    /// they were synced.
    Truncated { first_cut: u64 },
    /// Their write was refused (a full disk) and rolled back; the log stays open.
    Refused(Arc<Error>),
    /// The log closed without making them durable (it never does while it can).
    Closed,
}

impl Failure {
    fn to_error(&self) -> Error {
        match self {
            Failure::Poisoned(cause) => Error::Poisoned {
                cause: Arc::clone(cause),
            },
            Failure::Truncated { first_cut } => Error::Truncated {
                first_cut: *first_cut,
            },
            Failure::Refused(err) => err.duplicate(),
            Failure::Closed => Error::Closed,
        }
    }
}

/// How a resolved receipt ended.
type Outcome = std::result::Result<(), Failure>;

/// Who is told when a completion resolves (at most one, since a receipt is
/// consumed by [`Receipt::wait`] and [`Receipt::on_durable`], and a future's
/// latest waker replaces the one before).
enum Listener {
    Nobody,
    /// [`Receipt::wait`], on the completion's condvar.
    Thread,
    Waker(Waker),
    Callback(Callback),
}

struct Slot {
    outcome: Option<Outcome>,
    listener: Listener,
}

/// The shared half of a receipt: the log resolves it, the receipt waits on it.
pub(crate) struct Completion {
    seqs: RangeInclusive<u64>,
    slot: Mutex<Slot>,
    resolved: Condvar,
}

impl fmt::Debug for Completion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion")
            .field("seqs", &self.seqs)
            .finish_non_exhaustive()
    }
}

impl Completion {
    pub(crate) fn new(seqs: RangeInclusive<u64>) -> Arc<Completion> {
        Arc::new(Completion {
            seqs,
            slot: Mutex::new(Slot {
                outcome: None,
                listener: Listener::Nobody,
            }),
            resolved: Condvar::new(),
        })
    }

    /// The last sequence number it covers (for an empty batch, one before the
    /// first: resolved as soon as it is registered).
    pub(crate) fn last(&self) -> u64 {
        *self.seqs.end()
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn result(&self, outcome: &Outcome) -> Result<RangeInclusive<u64>> {
        match outcome {
            Ok(()) => Ok(self.seqs.clone()),
            Err(failure) => Err(failure.to_error()),
        }
    }

    /// Resolves it: the first outcome given sticks. Call without the log's lock:
    /// a callback runs here, on this thread.
    pub(crate) fn resolve(&self, outcome: Outcome) {
        let mut slot = self.lock();
        if slot.outcome.is_some() {
            return;
        }
        let result = self.result(&outcome);
        slot.outcome = Some(outcome);
        let listener = mem::replace(&mut slot.listener, Listener::Nobody);
        drop(slot);
        match listener {
            Listener::Nobody => {}
            Listener::Thread => self.resolved.notify_all(),
            Listener::Waker(waker) => waker.wake(),
            Listener::Callback(callback) => {
                // A panic here would unwind through the group commit resolving
                // it: the receipts after it (taken from the log already) would
                // never resolve, and the syncer thread would die.
                let call = std::panic::AssertUnwindSafe(|| callback(result));
                if std::panic::catch_unwind(call).is_err() {
                    tracing::error!(seqs = ?self.seqs, "flashlog: an on_durable callback panicked");
                }
            }
        }
    }
}

/// Resolves each of `completions` with `outcome`, in order. Call without the
/// log's lock.
pub(crate) fn resolve_all(completions: Vec<Arc<Completion>>, outcome: &Outcome) {
    for completion in completions {
        completion.resolve(outcome.clone());
    }
}

/// The promise of [`Wal::submit`](crate::Wal::submit) and
/// [`Wal::submit_batch`](crate::Wal::submit_batch): its entries have their
/// sequence numbers, and it resolves once they are durable (as
/// [`Wal::append`](crate::Wal::append) means it under the log's
/// [`SyncPolicy`](crate::SyncPolicy)), or with the error that means they never
/// will be.
///
/// Three ways to learn it: [`Receipt::wait`] blocks, `.await` (a receipt is a
/// [`Future`], with no dependency on any runtime), and [`Receipt::on_durable`]
/// runs a callback. Dropping a receipt cancels nothing: its entries are made
/// durable all the same.
///
/// ```
/// use flashlog_wal::{Op, Options, Wal};
///
/// let dir = tempfile::tempdir()?;
/// let wal = Wal::open(dir.path(), Options::default())?;
/// let first = wal.submit(Op::Put, b"a", b"1")?; // returns at once
/// let second = wal.submit(Op::Put, b"b", b"2")?;
/// assert_eq!(first.seqs(), 1..=1);
/// // One fsync may cover both; waiting for the second proves the first durable too.
/// assert_eq!(second.wait()?, 2..=2);
/// assert!(wal.durable_seq() >= 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a dropped receipt still makes its entries durable, but nobody learns whether it did"]
pub struct Receipt {
    completion: Arc<Completion>,
}

impl fmt::Debug for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receipt")
            .field("seqs", &self.completion.seqs)
            .field("resolved", &self.completion.lock().outcome.is_some())
            .finish()
    }
}

impl Receipt {
    pub(crate) fn new(completion: Arc<Completion>) -> Receipt {
        Receipt { completion }
    }

    /// The sequence numbers of its entries, in submission order (empty for an
    /// empty batch).
    pub fn seqs(&self) -> RangeInclusive<u64> {
        self.completion.seqs.clone()
    }

    /// Whether it has resolved (durable, or failed): then [`Receipt::wait`]
    /// returns at once.
    pub fn is_resolved(&self) -> bool {
        self.completion.lock().outcome.is_some()
    }

    /// Blocks until the entries are durable, and returns their sequence numbers.
    ///
    /// # Errors
    /// [`Error::Poisoned`] if a write or fsync failed before they were durable
    /// (its cause is the failure); [`Error::Truncated`] if `truncate_back` removed
    /// them first; the error of a write refused for a full disk
    /// ([`Error::Io`], the log stays open); [`Error::Closed`] if the log closed
    /// without making them durable.
    pub fn wait(self) -> Result<RangeInclusive<u64>> {
        let completion = &self.completion;
        let mut slot = completion.lock();
        loop {
            if let Some(outcome) = &slot.outcome {
                return completion.result(outcome);
            }
            slot.listener = Listener::Thread;
            slot = completion
                .resolved
                .wait(slot)
                .unwrap_or_else(|poison| poison.into_inner());
        }
    }

    /// Calls `f` once with what [`Receipt::wait`] would return: from the thread
    /// that finishes the fsync covering the entries (a blocking appender or the
    /// log's syncer thread), or at once, on this thread, if that already
    /// happened. The log's lock is not held while `f` runs, but the group
    /// commit that resolved it waits for `f` before resolving the next
    /// receipts: keep `f` short (hand the result to a channel, say).
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use flashlog_wal::{Op, Options, Wal};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let wal = Wal::open(dir.path(), Options::default())?;
    /// let (tx, rx) = mpsc::channel();
    /// wal.submit(Op::Put, b"k", b"v")?.on_durable(move |result| {
    ///     let _ = tx.send(result);
    /// });
    /// assert_eq!(rx.recv().unwrap()?, 1..=1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_durable<F>(self, f: F)
    where
        F: FnOnce(Result<RangeInclusive<u64>>) + Send + 'static,
    {
        let completion = &self.completion;
        let mut slot = completion.lock();
        match &slot.outcome {
            Some(outcome) => {
                let result = completion.result(outcome);
                drop(slot);
                f(result);
            }
            None => slot.listener = Listener::Callback(Box::new(f)),
        }
    }
}

/// Resolves when the entries are durable, with what [`Receipt::wait`] returns.
/// It needs no runtime: the thread that finishes the fsync wakes the task.
///
/// ```
/// use flashlog_wal::{Op, Options, Wal};
///
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     use std::task::{Context, Poll, Wake, Waker};
/// #     struct Unpark(std::thread::Thread);
/// #     impl Wake for Unpark { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
/// #     let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
/// #     let mut f = std::pin::pin!(f);
/// #     loop {
/// #         if let Poll::Ready(out) = f.as_mut().poll(&mut Context::from_waker(&waker)) { return out; }
/// #         std::thread::park();
/// #     }
/// # }
/// let dir = tempfile::tempdir()?;
/// let wal = Wal::open(dir.path(), Options::default())?;
/// let receipt = wal.submit(Op::Put, b"k", b"v")?;
/// // In async code: `receipt.await?`
/// assert_eq!(block_on(receipt)?, 1..=1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl Future for Receipt {
    type Output = Result<RangeInclusive<u64>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let completion = &self.completion;
        let mut slot = completion.lock();
        if let Some(outcome) = &slot.outcome {
            return Poll::Ready(completion.result(outcome));
        }
        match &mut slot.listener {
            Listener::Waker(waker) if waker.will_wake(cx.waker()) => {}
            listener => *listener = Listener::Waker(cx.waker().clone()),
        }
        Poll::Pending
    }
}
