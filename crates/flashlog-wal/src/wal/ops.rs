//! [`Wal`]'s operator methods: named cursors (a consumer's durable position) and
//! scrubbing (checking the sealed segments for bit rot).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::cursors::{check_name, MAX_CURSORS};
use crate::error::{Error, Result};
use crate::scrub::{scrub, ScrubReport};
use crate::scrub_rate::ScrubRate;
use crate::wal::{out_of_range, Wal};

impl Wal {
    /// The position of the cursor `name`: the sequence number of the last entry
    /// its consumer handled, as the last [`Wal::set_cursor`] stored it; `None` if
    /// there is no such cursor. A consumer resumes with `iter_from(cursor + 1)`.
    ///
    /// A read-write log answers from memory; a read-only view reads the cursor
    /// file, so it sees what the log's writer stored last.
    ///
    /// A cursor stays where it was when [`Wal::truncate_front`] removes entries
    /// behind it: its consumer then finds its next entry gone
    /// ([`Error::SeqOutOfRange`] from `iter_from(cursor + 1)`), which tells it that
    /// it missed entries. [`Wal::truncate_back`]`(seq)` lowers every cursor at or
    /// past `seq` to `seq - 1` (durably, before it changes any segment): the
    /// entries appended next get those numbers, and their consumers must read
    /// them. Likewise a read-write open lowers cursors past the log's last entry
    /// (entries a crash took back under `SyncPolicy::Manual` or `Interval`).
    ///
    /// ```
    /// use flashlog_wal::{Op, Options, Wal};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let wal = Wal::open(dir.path(), Options::default())?;
    /// for n in 0..5u8 {
    ///     wal.append(Op::Put, b"k", &[n])?;
    /// }
    /// assert_eq!(wal.cursor("indexer"), None);
    /// for entry in wal.iter_from(1)?.take(3) {
    ///     let entry = entry?; // ... handle it ...
    ///     wal.set_cursor("indexer", entry.seq())?; // durable when it returns
    /// }
    /// wal.close()?;
    ///
    /// // After a restart, resume after the last entry handled.
    /// let wal = Wal::open(dir.path(), Options::default())?;
    /// let resume = wal.cursor("indexer").map_or(1, |seq| seq + 1);
    /// assert_eq!(wal.iter_from(resume)?.next().transpose()?.map(|e| e.value().to_vec()), Some(vec![3]));
    ///
    /// // A truncate_back below a cursor lowers it.
    /// wal.truncate_back(2)?;
    /// assert_eq!(wal.cursor("indexer"), Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// A name that is not a valid cursor name (1 to 128 bytes of printable
    /// ASCII, `!` to `~`) has no cursor: `None`. So has every name while the
    /// cursor file is damaged, or, for a view, cannot be read: [`Wal::cursors`]
    /// returns that error ([`Error::CorruptCursors`], [`Error::Io`]), and the
    /// recovery report names the file.
    pub fn cursor(&self, name: &str) -> Option<u64> {
        check_name(name).ok()?;
        self.cursors.all().ok()?.get(name).copied()
    }

    /// Every cursor and its position, by name (see [`Wal::cursor`]).
    ///
    /// # Errors
    /// [`Error::CorruptCursors`], [`Error::Io`].
    pub fn cursors(&self) -> Result<BTreeMap<String, u64>> {
        self.cursors.all()
    }

    /// Sets the cursor `name` to `seq`, the last entry its consumer handled (0:
    /// none), creating it if needed. Durable when it returns: the whole cursor
    /// file is replaced atomically (written to `flashlog.cursors.tmp`,
    /// fdatasynced, renamed over `flashlog.cursors`, the directory fsynced), so a
    /// crash leaves the file as before or after the call, never torn. Calls from
    /// many threads are serialized: none is lost.
    ///
    /// # Errors
    /// [`Error::InvalidCursorName`]; [`Error::SeqOutOfRange`] for a `seq` past
    /// the last entry; [`Error::TooManyCursors`] for a new cursor beyond
    /// [`MAX_CURSORS`](crate::MAX_CURSORS); [`Error::ReadOnly`], [`Error::Closed`],
    /// [`Error::Poisoned`]; [`Error::CorruptCursors`] when the cursor file is
    /// damaged (nothing is overwritten: [`Wal::clear_cursors`] removes it);
    /// [`Error::Io`] (the file and the cursors are then as before the call).
    pub fn set_cursor(&self, name: &str, seq: u64) -> Result<()> {
        check_name(name)?;
        // Held across the store: no truncation runs between the check of `seq`
        // against the log's end and the cursor's store, so a `truncate_back`
        // cannot leave this cursor past the end it makes.
        let _pin = self.shared.pin();
        self.cursors.update(|map| {
            {
                let state = self.shared.lock();
                state.refuse_writes()?;
                if seq >= state.visible_end() {
                    return Err(out_of_range(&state, seq));
                }
            }
            if !map.contains_key(name) && map.len() >= MAX_CURSORS {
                return Err(Error::TooManyCursors { max: MAX_CURSORS });
            }
            Ok(map.insert(name.to_owned(), seq) != Some(seq))
        })
    }

    /// Removes the cursor `name`, durably (as [`Wal::set_cursor`] stores);
    /// returns where it was, `None` if there was none.
    ///
    /// # Errors
    /// As [`Wal::set_cursor`], but for `seq`.
    pub fn remove_cursor(&self, name: &str) -> Result<Option<u64>> {
        check_name(name)?;
        let mut removed = None;
        self.cursors.update(|map| {
            self.shared.lock().refuse_writes()?;
            removed = map.remove(name);
            Ok(removed.is_some())
        })?;
        Ok(removed)
    }

    /// Removes every cursor: deletes the cursor file, durably. Also the way out
    /// when the file is damaged ([`Error::CorruptCursors`]).
    ///
    /// # Errors
    /// [`Error::ReadOnly`], [`Error::Closed`], [`Error::Poisoned`], [`Error::Io`].
    pub fn clear_cursors(&self) -> Result<()> {
        self.shared.lock().refuse_writes()?;
        self.cursors.clear()
    }

    /// Lowers the cursors at or past `seq` to `seq - 1` before a
    /// `truncate_back(seq)` changes anything (the caller holds the layout lock
    /// exclusively, so no `set_cursor` runs meanwhile). Nothing if that
    /// truncation would remove nothing or fail.
    pub(super) fn lower_cursors_for_cut(&self, seq: u64) -> Result<()> {
        {
            let state = self.shared.lock();
            if state.refuse_writes().is_err()
                || seq < state.index.first_seq()
                || seq >= state.index.next_seq()
            {
                return Ok(());
            }
        }
        self.cursors.lower_from(seq)
    }

    /// Re-reads every sealed segment (not the active one, which is being written)
    /// at no more than `rate` MB/s, checking every entry's CRC, and reports each
    /// damaged region with its segment, offset and kind. It never writes, and can
    /// run while other threads append, read and truncate: a segment that a
    /// truncation removes or cuts while it is being scrubbed is skipped
    /// ([`ScrubReport::skipped`]), not reported as damage. Reads go in chunks
    /// of at most 1 MiB (about a tenth of a second's worth at low rates), and the
    /// calling thread sleeps between them to keep to the rate.
    ///
    /// Damage found means the bytes on disk changed after they were written (bit
    /// rot, a failing disk, a stray write): reads of the entries there fail with
    /// [`Error::Corrupt`], and the next open under the default mode may refuse
    /// the log. A read-only view may be scrubbed too.
    ///
    /// ```
    /// use flashlog_wal::{Op, Options, Wal};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let wal = Wal::open(dir.path(), Options::default().max_segment_size(1024))?;
    /// for n in 0..100u32 {
    ///     wal.append(Op::Put, b"key", &n.to_le_bytes())?;
    /// }
    /// let report = wal.scrub(50)?; // at most 50 MB/s
    /// assert!(report.is_clean());
    /// assert_eq!(report.segments as usize, wal.segments().len() - 1); // not the active one
    /// assert!(report.segments >= 2 && report.entries > 80);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidOptions`] for a rate that is not a positive number;
    /// [`Error::Closed`]; [`Error::ViewOutdated`] for a read-only view whose
    /// writer truncated back over what it read. A segment that cannot be read is
    /// no error: it is listed in [`ScrubReport::unreadable`].
    pub fn scrub(&self, rate: impl Into<ScrubRate>) -> Result<ScrubReport> {
        let rate = rate.into().validate()?;
        scrub(&self.shared, rate, &|pause: Duration| {
            if !pause.is_zero() {
                std::thread::sleep(pause);
            }
            false
        })
    }

    /// The outcome of the background scrubber's last run
    /// ([`Options::scrub_every`](crate::Options::scrub_every)); `None` before the
    /// first one ends, or without a background scrubber.
    pub fn last_scrub(&self) -> Option<Result<ScrubReport, Arc<Error>>> {
        self.scrubber.last()
    }
}
