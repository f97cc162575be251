//! [`Wal`]'s writing methods: appending entries and syncing them.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Instant;

use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::op::Op;
use crate::options::SyncPolicy;
use crate::receipt::{Completion, Receipt};
use crate::segment_writer::Pending;
use crate::sync::atomic::Ordering;
use crate::wal::Wal;
use crate::writer::Goal;

impl Wal {
    /// Appends one entry and returns its sequence number: 1 for the first entry ever
    /// appended to the log, then +1 each.
    ///
    /// Under [`SyncPolicy::Always`] it returns once the entry is on disk; it then
    /// survives any crash. Under the other policies it returns once the entry is
    /// written to the operating system: it survives a crash of the process, and a
    /// power loss only once synced.
    ///
    /// # Errors
    /// [`Error::EntryTooLarge`] if the entry exceeds 16 MiB or the segment size;
    /// [`Error::Closed`] after [`Wal::close`]; the I/O error of a failed write or
    /// fsync, and [`Error::Poisoned`] for every append after it.
    pub fn append(&self, op: Op, key: &[u8], value: &[u8]) -> Result<u64> {
        let started = Instant::now();
        let max = self.shared.options.max_segment_size;
        let entry = Pending::new(op, key, value, max)?;
        let mut state = self.shared.lock();
        state.refuse_writes()?;
        let seq = state.enqueue(&entry, max);
        self.shared.commit(state, seq, self.append_goal())?;
        self.shared.metrics.append(started.elapsed());
        self.retain_if_due();
        Ok(seq)
    }

    /// Appends every entry of `batch` with one write and one sync, and returns their
    /// sequence numbers (an empty range for an empty batch).
    ///
    /// Durability is as for [`Wal::append`], for the whole batch at once. The format
    /// has no batch frame: after a crash *during* the call, a prefix of the batch
    /// may survive. Once the call returned `Ok`, all of it survives.
    ///
    /// # Errors
    /// As [`Wal::append`]; if any entry is too large, nothing is appended.
    pub fn append_batch(&self, batch: &Batch) -> Result<RangeInclusive<u64>> {
        self.append_entries(batch, self.shared.options.max_segment_size)
    }

    /// Appends entries carried over from the log's older segments (a compaction's
    /// copies of live entries) as [`Wal::append_batch`] does, with one difference:
    /// an entry larger than `max_segment_size`, up to the format's limit of 16 MiB,
    /// is accepted too. The log may have been written with a larger
    /// `max_segment_size` than it is opened with now: what it already holds must
    /// still be copyable whatever the current limit.
    ///
    /// Such an entry gets a segment of its own: the segment before it is left (if
    /// it holds anything) and the next entry starts a new one. That is the layout
    /// the Go writer's rotation rule gives (see FORMAT.md), and the Go reader and
    /// flashlog's recovery read a segment holding an entry larger than the limit
    /// (a log opened with a smaller `max_segment_size` than it was written with
    /// has them anyway). Entries within the limit are placed exactly as by
    /// `append_batch`, byte for byte.
    ///
    /// New data goes through [`Wal::append`] and [`Wal::append_batch`], which keep
    /// refusing entries larger than `max_segment_size`, as the Go writer does.
    /// Durability and crash behaviour are those of `append_batch`.
    ///
    /// ```
    /// use flashlog_wal::{Batch, Error, Op, Options, Wal};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let wal = Wal::open(dir.path(), Options::default().max_segment_size(100))?;
    /// wal.append(Op::Put, b"small", b"1")?;
    /// let mut batch = Batch::new();
    /// batch.put(b"big", &[7; 200]);
    /// assert!(matches!(wal.append_batch(&batch), Err(Error::EntryTooLarge { len: 220, max: 100 })));
    /// assert_eq!(wal.append_carried(&batch)?, 2..=2);
    /// wal.append(Op::Put, b"next", b"2")?;
    /// let entries: Vec<u64> = wal.segments().iter().map(|s| s.entries).collect();
    /// assert_eq!(entries, [1, 1, 1]); // the big entry alone in the middle segment
    /// assert_eq!(wal.read(2)?.value(), &[7; 200]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Wal::append_batch`], with [`Error::EntryTooLarge`] only for an entry
    /// above 16 MiB.
    pub fn append_carried(&self, batch: &Batch) -> Result<RangeInclusive<u64>> {
        self.append_entries(batch, crate::codec::MAX_ENTRY_LEN)
    }

    /// Appends `batch`, whose entries may be up to `max_len` bytes each.
    fn append_entries(&self, batch: &Batch, max_len: u64) -> Result<RangeInclusive<u64>> {
        let started = Instant::now();
        let max = self.shared.options.max_segment_size;
        let entries = batch.pending(max_len)?;
        let mut state = self.shared.lock();
        state.refuse_writes()?;
        let first = state.index.next_seq();
        for entry in &entries {
            state.enqueue(entry, max);
        }
        let last = state.index.next_seq() - 1;
        if !entries.is_empty() {
            self.shared.commit(state, last, self.append_goal())?;
            self.retain_if_due();
        }
        self.shared.metrics.append(started.elapsed());
        Ok(first..=last)
    }

    /// Queues one entry for the group commit and returns at once, without
    /// waiting for any I/O: the entry has its sequence number
    /// ([`Receipt::seqs`]), is readable through the written edge once written,
    /// and the [`Receipt`] resolves when it is durable, as [`Wal::append`]
    /// means it under the log's [`SyncPolicy`] (under `Manual` and `Interval`:
    /// after the next sync). The log's syncer thread writes it if no blocking
    /// appender's group does; a failure of that write or its fsync resolves the
    /// receipt with the error.
    ///
    /// ```
    /// use flashlog_wal::{Op, Options, Wal};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let wal = Wal::open(dir.path(), Options::default())?;
    /// let receipts = (0..100u32)
    ///     .map(|i| wal.submit(Op::Put, &i.to_be_bytes(), b"value"))
    ///     .collect::<Result<Vec<_>, _>>()?;
    /// // A few fsyncs covered all hundred.
    /// for (i, receipt) in receipts.into_iter().enumerate() {
    ///     assert_eq!(receipt.wait()?, i as u64 + 1..=i as u64 + 1);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Wal::append`] for what is refused at once ([`Error::EntryTooLarge`],
    /// [`Error::Closed`], [`Error::Poisoned`], [`Error::ReadOnly`]); I/O errors
    /// come through the receipt.
    pub fn submit(&self, op: Op, key: &[u8], value: &[u8]) -> Result<Receipt> {
        let max = self.shared.options.max_segment_size;
        let entry = Pending::new(op, key, value, max)?;
        self.submit_entries(std::slice::from_ref(&entry))
    }

    /// Queues every entry of `batch`, in order, as [`Wal::submit`] does one: one
    /// receipt for all of them, resolved when the last is durable. An empty batch
    /// gives a receipt already resolved, with an empty range.
    ///
    /// # Errors
    /// As [`Wal::submit`]; if any entry is too large, nothing is queued.
    pub fn submit_batch(&self, batch: &Batch) -> Result<Receipt> {
        let entries = batch.pending(self.shared.options.max_segment_size)?;
        self.submit_entries(&entries)
    }

    fn submit_entries(&self, entries: &[Pending<'_>]) -> Result<Receipt> {
        self.start_syncer()?;
        let max = self.shared.options.max_segment_size;
        let mut state = self.shared.lock();
        state.refuse_writes()?;
        let first = state.index.next_seq();
        for entry in entries {
            state.enqueue(entry, max);
        }
        let completion = Completion::new(first..=state.index.next_seq() - 1);
        if entries.is_empty() {
            drop(state);
            completion.resolve(Ok(()));
        } else {
            state.receipts.push_back(Arc::clone(&completion));
            self.shared.hand_over(&mut state);
            drop(state);
            // The syncer's groups rotate for submitters: retention runs here,
            // in a submitting thread, never in the syncer (wal/retention.rs).
            self.retain_if_due();
        }
        Ok(Receipt::new(completion))
    }

    /// The last sequence number handed to the operating system: what
    /// [`Visibility::Written`](crate::Visibility::Written) readers see. It may
    /// run ahead of [`Wal::durable_seq`] while a group's fsync runs (and, under
    /// `Manual` and `Interval`, until the next sync). Lock-free.
    pub fn written_seq(&self) -> u64 {
        self.shared.written_edge.load(Ordering::SeqCst)
    }

    /// Why the log refuses writes since a write or fsync failed: the failure
    /// (what every later write's [`Error::Poisoned`] carries), or `None` while
    /// it accepts them. A write refused for a full disk does not poison the log.
    pub fn poisoned(&self) -> Option<Arc<Error>> {
        self.shared.lock().poisoned.clone()
    }

    /// The last sequence number an fdatasync covered: every entry up to it
    /// survives any crash.
    pub fn durable_seq(&self) -> u64 {
        self.shared.lock().synced_seq
    }

    fn append_goal(&self) -> Goal {
        match self.shared.options.sync_policy {
            SyncPolicy::Always => Goal::Synced,
            SyncPolicy::Interval(_) | SyncPolicy::Manual => Goal::Written,
        }
    }

    /// Makes every entry appended so far durable (one fdatasync, shared with any
    /// group commit under way). Needed only under [`SyncPolicy::Manual`] and
    /// [`SyncPolicy::Interval`].
    ///
    /// # Errors
    /// The I/O error of a failed write or fsync (the log is then poisoned);
    /// [`Error::Poisoned`] or [`Error::Closed`].
    pub fn sync(&self) -> Result<()> {
        let state = self.shared.lock();
        state.refuse_writes()?;
        let through = state.index.next_seq() - 1;
        self.shared.commit(state, through, Goal::Synced)?;
        Ok(())
    }
}
