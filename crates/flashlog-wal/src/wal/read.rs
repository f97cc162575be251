//! [`Wal`]'s reading methods: single reads, iterators, waiting for entries, and
//! the range of sequence numbers readers see.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::index::Located;
#[cfg(doc)]
use crate::options::SyncPolicy;
use crate::options::Visibility;
use crate::position::Position;
use crate::reader::{decode_at, Iter};
#[cfg(doc)]
use crate::state::Shared;
use crate::wal::{out_of_range, Wal};

impl Wal {
    /// Reads the entry with sequence number `seq`, with one positioned read (an
    /// in-memory index finds it). The first read in a sealed segment that the
    /// checkpoint vouched for at open reads and checks that whole segment once.
    ///
    /// While other threads truncate and append, `read` returns the entry that
    /// held `seq` at some moment during the call, or [`Error::SeqOutOfRange`]:
    /// never the bytes of another entry, never a false [`Error::Corrupt`]. (A
    /// truncation waits for the reads under way; reads wait for a truncation
    /// under way.)
    ///
    /// ```
    /// use flashlog_wal::{Error, Op, Options, Wal};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let wal = Wal::open(dir.path(), Options::default())?;
    /// wal.append(Op::Put, b"a", b"1")?;
    /// wal.append(Op::Put, b"b", b"2")?;
    /// assert_eq!(wal.read(2)?.value(), b"2");
    /// wal.truncate_back(2)?;
    /// assert!(matches!(wal.read(2), Err(Error::SeqOutOfRange { seq: 2, first: 1, last: 1 })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::SeqOutOfRange`] if the log does not hold `seq` (or it is not yet
    /// visible); [`Error::Skipped`] if `seq` was held by damage that
    /// [`RecoveryMode::SkipCorrupted`](crate::RecoveryMode::SkipCorrupted) skipped
    /// (a gap); [`Error::Corrupt`] if its bytes on disk no longer check out;
    /// [`Error::SegmentChanged`] if its segment no longer matches the checkpoint;
    /// [`Error::Io`].
    pub fn read(&self, seq: u64) -> Result<Entry> {
        // Held until the bytes are read: the position found under the state lock
        // still holds entry `seq` when the (unlocked) read below happens.
        let _pin = self.shared.pin();
        let read = self.locate(seq).and_then(|located| {
            let file = self.shared.read_file(located.position.segment)?;
            let mut buf = vec![0u8; located.span as usize];
            file.read_exact_at(&mut buf, located.position.offset)?;
            decode_at(&file, located.position, seq, &buf)
        });
        self.shared.confirm_view(seq, seq, read)
    }

    /// Where the entry with sequence number `seq` is on disk.
    ///
    /// # Errors
    /// [`Error::SeqOutOfRange`] if the log does not hold `seq`, [`Error::Skipped`]
    /// if it lies in a gap. In a sealed
    /// segment not read since the log opened (see
    /// [`RecoveryMode::TolerateCorruptedTail`](crate::RecoveryMode::TolerateCorruptedTail)),
    /// finding the entry reads the segment: [`Error::Corrupt`] or
    /// [`Error::SegmentChanged`] if it no longer checks out, [`Error::Io`].
    pub fn position(&self, seq: u64) -> Result<Position> {
        let _pin = self.shared.pin();
        let located = self.locate(seq).map(|located| located.position);
        self.shared.confirm_view(seq, seq, located)
    }

    /// Where a visible entry is, reading its segment's offsets first if the log was
    /// opened from the checkpoint and the segment was not read since. The caller
    /// holds the pin ([`Shared::pin`]): the offsets read without the state lock
    /// are then those of the segment the index describes.
    fn locate(&self, seq: u64) -> Result<Located> {
        loop {
            let state = self.shared.lock();
            match state.index.locate(seq) {
                // Written entries are readable, before their fsync too.
                Ok(Some(located)) if seq < self.shared.visible_end(&state, Visibility::Written) => {
                    return Ok(located)
                }
                Ok(None) if state.index.gap_end(seq).is_some() => {
                    return Err(Error::Skipped { seq })
                }
                Ok(_) => return Err(out_of_range(&state, seq)),
                Err(unloaded) => {
                    drop(state);
                    self.shared.load_offsets(&unloaded, &mut Vec::new())?;
                }
            }
        }
    }

    /// An iterator over the entries from `seq` on, in order. It can run while other
    /// threads append, and [`Iter::follow`] makes it wait for new entries.
    ///
    /// # Errors
    /// [`Error::SeqOutOfRange`] if `seq` is before the first entry (removed by
    /// [`Wal::truncate_front`]). A `seq` after the last entry is fine: the iterator
    /// yields entries from there once they are appended.
    pub fn iter_from(&self, seq: u64) -> Result<Iter> {
        let mut state = self.shared.lock();
        if seq < state.index.first_seq() {
            return Err(out_of_range(&state, seq));
        }
        let notice = state.register_iterator();
        drop(state);
        Ok(Iter::new(Arc::clone(&self.shared), seq, notice))
    }

    /// Blocks until the entry `seq` is visible to readers or `timeout` passes;
    /// returns `Ok(true)` once it is visible, `Ok(false)` if the time ran out.
    /// `Duration::MAX` waits with no deadline. (An entry that became visible and
    /// was removed by `truncate_back` before the waiter looked is waited for
    /// again.)
    ///
    /// ```
    /// use std::time::Duration;
    /// use flashlog_wal::{Op, Options, Wal};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let wal = Wal::open(dir.path(), Options::default())?;
    /// assert!(!wal.wait_for(1, Duration::from_millis(1))?);
    /// wal.append(Op::Put, b"k", b"v")?;
    /// assert!(wal.wait_for(1, Duration::MAX)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Returns at once, instead of waiting for an entry that cannot come,
    /// [`Error::Closed`] once the log is closed, [`Error::Poisoned`] once a
    /// write or fsync failed, and [`Error::ReadOnly`] for a read-only log (a view
    /// of the log as it was opened, which no append reaches: open it again to
    /// see what its writer appended since).
    pub fn wait_for(&self, seq: u64, timeout: Duration) -> Result<bool> {
        let shared = &self.shared;
        // No deadline when it lies beyond what an `Instant` can hold.
        let deadline = Instant::now().checked_add(timeout);
        let mut state = shared.lock();
        while seq >= state.visible_end() {
            if let Some(cause) = &state.poisoned {
                return Err(Error::Poisoned {
                    cause: cause.clone(),
                });
            }
            if state.read_only {
                return Err(Error::ReadOnly);
            }
            if state.closed {
                return Err(Error::Closed);
            }
            state.tail_waiters += 1;
            state = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        state.tail_waiters -= 1;
                        return Ok(false);
                    }
                    shared
                        .appended
                        .wait_timeout(state, left)
                        .unwrap_or_else(|poison| poison.into_inner())
                        .0
                }
                None => shared.wait(&shared.appended, state),
            };
            state.tail_waiters -= 1;
        }
        Ok(true)
    }

    /// The sequence number of the first entry in the log (of the next one to be
    /// appended, if the log is empty).
    pub fn first_seq(&self) -> u64 {
        self.shared.lock().index.first_seq()
    }

    /// The sequence number of the last visible entry: under
    /// [`SyncPolicy::Always`], the last durable one. `first_seq() - 1` if the log is
    /// empty.
    pub fn last_seq(&self) -> u64 {
        self.shared.lock().visible_end() - 1
    }
}
