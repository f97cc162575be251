//! Reading entries back: [`Iter`], which reads runs of consecutive entries with
//! one positioned read each, and can follow the log as it grows.
//!
//! Here: the iterator, its state between calls and what it yields, and the
//! decoding of one entry that [`Wal::read`](crate::Wal::read) shares. How it
//! reads the next run from disk (and waits, following the log) is in `load`.

mod load;

use std::sync::Arc;
use std::time::Duration;

use crate::codec;
use crate::entry::Entry;
use crate::error::CorruptionKind;
use crate::error::{Error, Result};
use crate::fs::PathFile;
use crate::index::{Run, Unloaded};
use crate::options::Visibility;
use crate::position::Position;
use crate::state::{CutNotice, Shared};
use crate::sync::atomic::Ordering;

/// Decodes the entry at `offset` of a segment from bytes read there, checking it.
pub(crate) fn decode_at(
    file: &PathFile,
    position: Position,
    seq: u64,
    bytes: &[u8],
) -> Result<Entry> {
    entry_at(file, position, seq, codec::decode(bytes))
}

/// The entry `seq` at `position` as decoded, or the error naming where it is damaged.
fn entry_at(
    file: &PathFile,
    position: Position,
    seq: u64,
    decoded: std::result::Result<codec::Decoded<'_>, CorruptionKind>,
) -> Result<Entry> {
    match decoded {
        Ok(entry) => Ok(Entry::new(seq, entry.op, position, entry.key, entry.value)),
        Err(kind) => Err(corrupt(file, position, kind)),
    }
}

fn corrupt(file: &PathFile, position: Position, kind: CorruptionKind) -> Error {
    Error::Corrupt {
        segment: position.segment,
        path: file.path().to_path_buf(),
        offset: position.offset,
        kind,
    }
}

/// An iterator over entries in sequence-number order, from [`Wal::iter_from`].
///
/// It yields the entries visible when it reaches them (under
/// [`SyncPolicy::Always`](crate::SyncPolicy::Always), the durable ones), so it can
/// run while other threads append. At the end of the log it returns `None`; call it
/// again later to see entries appended since, or use [`Iter::follow`] to block
/// until they come.
///
/// While other threads truncate, each call yields the entry that held its
/// sequence number at some moment during the call, never another entry's
/// bytes:
/// - entries removed by `truncate_front` while the iterator is behind them make
///   it return [`Error::SeqOutOfRange`];
/// - entries it had read ahead but not yielded when `truncate_back` replaced
///   them are read again, from the new history;
/// - if `truncate_back` removed entries it had already yielded, its next call
///   returns [`Error::Truncated`] naming the first one removed, once, and the
///   iterator goes on from there with the log's new entries (or from wherever
///   [`Iter::seek`] puts it). A replication follower learns so that the history
///   it copied changed.
///
/// A following iterator whose log is poisoned returns [`Error::Poisoned`] instead
/// of waiting for entries that cannot come, and one of a read-only log (a view of
/// the log as it was opened) [`Error::ReadOnly`] at its end.
///
/// Sequence numbers that damage skipped under
/// [`RecoveryMode::SkipCorrupted`](crate::RecoveryMode::SkipCorrupted) held (gaps:
/// the checkpoint counted entries there) are passed over: the next entry
/// yielded has a higher [`Entry::seq`] than one more than the last, and the
/// [`RecoveryReport`](crate::RecoveryReport) names the damage. A follower that
/// needs every number (a Raft log) checks `seq` and treats a jump as the loss it
/// is.
///
/// [`Wal::iter_from`]: crate::Wal::iter_from
#[derive(Debug)]
pub struct Iter {
    shared: Arc<Shared>,
    next_seq: u64,
    run: Option<LoadedRun>,
    /// The scan of a trusted segment under way.
    trusted: Option<TrustedScan>,
    buf: Vec<u8>,
    follow: Option<Option<Duration>>,
    visibility: Visibility,
    failed: bool,
    /// Where `truncate_back` tells the iterator what it cut.
    notice: Arc<CutNotice>,
    /// The first entry yielded since the iterator started or was moved: the
    /// entries it yielded are `delivered_from..next_seq`.
    delivered_from: u64,
}

#[derive(Debug)]
struct LoadedRun {
    run: Run,
    file: Arc<PathFile>,
    /// Index in `run.offsets` of the next entry to yield.
    next: usize,
    /// Whether every entry's CRC was checked when the bytes were read.
    checked: bool,
}

impl LoadedRun {
    /// Decodes the entry at `offset`, from `buf` holding the run's bytes.
    fn decode<'a>(
        &self,
        buf: &'a [u8],
        offset: u32,
    ) -> std::result::Result<codec::Decoded<'a>, CorruptionKind> {
        let at = (u64::from(offset) - self.run.start) as usize;
        if self.checked {
            codec::decode_checked_before(&buf[at..])
        } else {
            codec::decode(&buf[at..])
        }
    }
}

impl Drop for Iter {
    fn drop(&mut self) {
        self.shared
            .open_readers
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Iter {
    pub(crate) fn new(shared: Arc<Shared>, from: u64, notice: Arc<CutNotice>) -> Iter {
        shared
            .open_readers
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Iter {
            shared,
            next_seq: from,
            run: None,
            trusted: None,
            buf: Vec::new(),
            follow: None,
            visibility: Visibility::Durable,
            failed: false,
            notice,
            delivered_from: from,
        }
    }

    /// Makes the iterator wait at the end of the log for new entries instead of
    /// returning `None`; it returns `None` once the log is closed and every entry
    /// was read.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use flashlog_wal::{Op, Options, Wal};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let wal = Arc::new(Wal::open(dir.path(), Options::default())?);
    /// let mut tail = wal.iter_from(1)?.follow();
    /// let writer = {
    ///     let wal = Arc::clone(&wal);
    ///     std::thread::spawn(move || wal.append(Op::Put, b"k", b"v"))
    /// };
    /// let entry = tail.next().expect("waits for the entry")?;
    /// assert_eq!((entry.seq(), entry.key()), (1, &b"k"[..]));
    /// writer.join().unwrap()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn follow(mut self) -> Iter {
        self.follow = Some(None);
        self
    }

    /// Like [`Iter::follow`], but gives up waiting after `timeout` and returns
    /// `None` (the iterator can be called again).
    #[must_use]
    pub fn follow_timeout(mut self, timeout: Duration) -> Iter {
        self.follow = Some(Some(timeout));
        self
    }

    /// Which entries the iterator yields: [`Visibility::Durable`] ones (the
    /// default), or every [`Visibility::Written`] one, before its fsync (see
    /// [`Visibility`] for what a crash can then take away). Its follow mode
    /// waits for the same edge.
    ///
    /// ```
    /// use flashlog_wal::{Op, Options, SyncPolicy, Visibility, Wal};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let wal = Wal::open(dir.path(), Options::default().sync_policy(SyncPolicy::Manual))?;
    /// wal.append(Op::Put, b"k", b"v")?; // written, not yet synced
    /// assert_eq!(wal.iter_from(1)?.count(), 0);
    /// assert_eq!(wal.iter_from(1)?.visibility(Visibility::Written).count(), 1);
    /// wal.sync()?;
    /// assert_eq!(wal.iter_from(1)?.count(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn visibility(mut self, visibility: Visibility) -> Iter {
        self.visibility = visibility;
        self
    }

    /// The sequence number of the entry the iterator yields next.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Moves the iterator to `seq`: the next entry it yields is `seq`'s (or, if
    /// the log no longer holds `seq`, the error saying so). Also how an iterator
    /// goes on elsewhere after [`Error::Truncated`].
    pub fn seek(&mut self, seq: u64) {
        self.next_seq = seq;
        self.delivered_from = seq;
        self.run = None;
        self.trusted = None;
        self.failed = false;
    }

    /// Whether a truncation since the last look may have removed what the
    /// iterator read ahead: a `truncate_back` at all, or a `truncate_front` past
    /// the next entry. Two atomic loads, no lock.
    fn read_ahead_doubtful(&self) -> bool {
        self.notice.has_news() || self.next_seq < self.shared.first_seq.load(Ordering::Acquire)
    }

    /// Looks for a truncation since the last look. What the iterator read ahead
    /// may be gone: it is dropped (the next load finds out what the log holds,
    /// [`Error::SeqOutOfRange`] after a `truncate_front`). If `truncate_back` cut
    /// entries it yielded, says so ([`Error::Truncated`]) and moves to the first
    /// cut entry.
    fn check_cuts(&mut self) -> Result<()> {
        if !self.read_ahead_doubtful() {
            return Ok(());
        }
        self.run = None;
        self.trusted = None;
        let Some(first_cut) = self.notice.take() else {
            return Ok(());
        };
        if first_cut < self.next_seq && self.delivered_from < self.next_seq {
            // Entries yielded before the cut stay yielded: a later cut of them
            // must be reported too.
            self.next_seq = first_cut;
            self.delivered_from = self.delivered_from.min(first_cut);
            return Err(Error::Truncated { first_cut });
        }
        Ok(())
    }
}

/// A sealed segment trusted from the checkpoint and not read since the log
/// opened, read by an iterator piece by piece: each piece's entries are checked
/// once, as they are yielded, and their offsets collected; at the end of the
/// segment they go to the index.
#[derive(Debug)]
struct TrustedScan {
    unloaded: Unloaded,
    file: Arc<PathFile>,
    /// Where the next piece starts (an entry boundary).
    pos: u64,
    offsets: Vec<u32>,
}

/// An entry borrowed from an iterator's read buffer, for
/// [`Iter::try_for_each_ref`]: no allocation per entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The entry's sequence number.
    pub seq: u64,
    /// Put or delete.
    pub op: crate::Op,
    /// Where the entry's bytes are on disk.
    pub position: Position,
    /// The entry's key.
    pub key: &'a [u8],
    /// The entry's value.
    pub value: &'a [u8],
}

impl Iter {
    /// Calls `visit` with every remaining entry, borrowed from the read buffer
    /// instead of copied into an [`Entry`]: the fast way to replay a log. Stops at
    /// the end of the log (or, for a following iterator, when the log closes), or
    /// at the first error, `visit`'s or the log's.
    ///
    /// ```
    /// use flashlog_wal::{Op, Options, Wal};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let wal = Wal::open(dir.path(), Options::default())?;
    /// wal.append(Op::Put, b"a", b"12")?;
    /// wal.append(Op::Put, b"b", b"345")?;
    /// let mut value_bytes = 0;
    /// wal.iter_from(1)?.try_for_each_ref(|entry| {
    ///     value_bytes += entry.value.len();
    ///     Ok::<(), flashlog_wal::Error>(())
    /// })?;
    /// assert_eq!(value_bytes, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// After an error the iterator can go on (with `next` or another
    /// `try_for_each_ref`) from the entry whose visit failed: it is visited again.
    ///
    /// # Errors
    /// The first error `visit` returns, or the log's ([`Error::Corrupt`],
    /// [`Error::Io`], ...) converted into `E`.
    pub fn try_for_each_ref<E: From<Error>>(
        &mut self,
        mut visit: impl FnMut(EntryRef<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.failed {
            return Ok(());
        }
        loop {
            if let Some(loaded) = self.run.take() {
                for &offset in &loaded.run.offsets[loaded.next..] {
                    // What was read ahead may have been cut since: look first.
                    if self.read_ahead_doubtful() {
                        // A cut of yielded entries is not fatal: the next call
                        // goes on from the cut.
                        self.check_cuts().map_err(E::from)?;
                        break;
                    }
                    let position = Position {
                        segment: loaded.run.segment,
                        offset: u64::from(offset),
                    };
                    let entry = match loaded.decode(&self.buf, offset) {
                        Ok(entry) => entry,
                        Err(kind) => {
                            self.failed = true;
                            return Err(corrupt(&loaded.file, position, kind).into());
                        }
                    };
                    visit(EntryRef {
                        seq: self.next_seq,
                        op: entry.op,
                        position,
                        key: entry.key,
                        value: entry.value,
                    })?;
                    self.next_seq += 1;
                }
            }
            match self.load() {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(err) => {
                    self.failed = !matches!(err, Error::Truncated { .. });
                    return Err(err.into());
                }
            }
        }
    }
}

impl Iterator for Iter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        if self.failed {
            return None;
        }
        loop {
            if let Err(err) = self.check_cuts() {
                // Not fatal: the next call goes on from the cut.
                return Some(Err(err));
            }
            if let Some(loaded) = &mut self.run {
                if let Some(&offset) = loaded.run.offsets.get(loaded.next) {
                    loaded.next += 1;
                    let position = Position {
                        segment: loaded.run.segment,
                        offset: u64::from(offset),
                    };
                    let decoded = loaded.decode(&self.buf, offset);
                    let result = entry_at(&loaded.file, position, self.next_seq, decoded);
                    if result.is_ok() {
                        self.next_seq += 1;
                    } else {
                        self.failed = true;
                    }
                    return Some(result);
                }
                self.run = None;
            }
            match self.load() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(err) => {
                    self.failed = !matches!(err, Error::Truncated { .. });
                    return Some(Err(err));
                }
            }
        }
    }
}
