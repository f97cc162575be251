//! Appending: the queue of encoded entries and the group commit that writes it.
//!
//! An appender encodes its entry, takes the lock, gives it the next sequence number
//! and a place in the active segment (rotating first if it would not fit), and adds
//! its bytes to the queue. Then it waits for its entry to be written (and, under
//! [`SyncPolicy::Always`], synced). The first waiter that finds no I/O under way
//! becomes the leader: it takes the whole queue, releases the lock, writes
//! everything with one write per segment and one fdatasync, then publishes the new
//! watermark and wakes the others. Entries that arrive meanwhile queue up for the
//! next leader, so one fsync covers every appender that came during the previous one.

use std::mem;
use std::sync::MutexGuard;

use crate::checkpoint::{self, Sealed};
use crate::codec;
use crate::error::{Error, Result};
use crate::fs::{Dir, OpenMode, PathFile};
use crate::index::SegmentIndex;
use crate::meta::{self, Meta};
use crate::state::{Shared, State};
use crate::waiters::Turn;
use crate::{Op, SegmentId, SyncPolicy};

/// Chunk buffers kept for reuse, and the largest kept: enough to avoid an
/// allocation per group commit without holding on to the memory of a burst.
const MAX_SPARE_BUFFERS: usize = 4;
const MAX_SPARE_CAPACITY: usize = 1 << 20;

/// Encoded entries bound for one segment, starting at a known offset.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub segment: SegmentId,
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// Groups at least this large extend the file by writing themselves: zero-filling
/// ahead pays only for small groups, where the metadata an fdatasync must commit
/// when the file grows costs more than writing the zeros.
const PREALLOCATE_BELOW: usize = 64 << 10;

/// A block of zeros to preallocate with.
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

/// How the active segment's file is extended ahead of its entries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Preallocation {
    /// Zero-filled bytes to keep ahead of the last entry (0: none).
    pub ahead: u64,
    /// The file never grows beyond this by preallocation.
    pub max_segment_size: u64,
}

/// The open active segment.
#[derive(Debug)]
pub(crate) struct SegmentWriter {
    id: SegmentId,
    file: PathFile,
    /// End of the last entry: where the next one goes.
    end: u64,
    /// Length of the file: `end` plus zero-filled preallocated bytes.
    allocated: u64,
    /// Whether bytes were written since the last fdatasync.
    unsynced: bool,
    preallocation: Preallocation,
}

impl SegmentWriter {
    /// Opens segment `id`, whose entries end at `end`; any bytes after `end` are
    /// preallocated zeros (recovery checked that).
    pub(crate) fn open(
        dir: &Dir,
        id: SegmentId,
        end: u64,
        preallocation: Preallocation,
    ) -> Result<SegmentWriter> {
        let file = dir.open(&id.file_name(), OpenMode::ReadWrite)?;
        let allocated = file.len()?.max(end);
        Ok(SegmentWriter {
            id,
            file,
            end,
            allocated,
            // What is already in the file may still be only in the page cache (a
            // process killed between its write and its fdatasync): the next sync
            // must not be skipped.
            unsynced: true,
            preallocation,
        })
    }

    pub(crate) fn sync(&mut self) -> Result<()> {
        if self.unsynced {
            self.file.sync_data()?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Cuts preallocated zeros off and syncs: the file then holds exactly its
    /// entries, byte for byte what the Go implementation would have written.
    pub(crate) fn finish(&mut self) -> Result<()> {
        if self.allocated > self.end {
            self.file.set_len(self.end)?;
            self.allocated = self.end;
            self.unsynced = true;
        }
        self.sync()
    }

    /// Makes sure the file is long enough for a write ending at `needed`, zero-filling
    /// ahead for small writes so that later fdatasyncs commit no size change.
    fn reserve(&mut self, needed: u64, write_len: usize) -> Result<()> {
        let Preallocation {
            ahead,
            max_segment_size,
        } = self.preallocation;
        if needed <= self.allocated || ahead == 0 || write_len >= PREALLOCATE_BELOW {
            return Ok(());
        }
        let target = needed
            .saturating_add(ahead)
            .min(max_segment_size.max(needed));
        let mut at = self.allocated.max(needed);
        while at < target {
            let len = (target - at).min(ZEROS.len() as u64) as usize;
            match self.file.write_all_at(&ZEROS[..len], at) {
                Ok(()) => at += len as u64,
                // Zeros ahead are an optimisation: on a full disk keep what fit
                // and carry on. Whether the disk is really full is the entry's
                // own write's to say; nothing acknowledged depends on these bytes
                // (a partial piece is zeros too, which recovery takes for
                // preallocated space).
                Err(err) if is_out_of_space(&err) => {
                    self.allocated = self.allocated.max(at);
                    return Ok(());
                }
                Err(err) => return Err(err),
            }
        }
        self.allocated = target;
        Ok(())
    }

    /// Leaves the current segment for a new, empty one: trims and syncs the old,
    /// creates the new and syncs the directory, so that the new file survives a
    /// crash before any entry in it is acknowledged.
    /// The side file then names the new segment as the newest.
    pub(crate) fn start_segment(
        &mut self,
        dir: &Dir,
        id: SegmentId,
        meta: &mut Meta,
    ) -> Result<()> {
        self.finish()?;
        let file = dir.open(&id.file_name(), OpenMode::CreateNew)?;
        dir.sync()?;
        meta.last_segment = Some(id);
        meta::store(dir, meta)?;
        *self = SegmentWriter {
            id,
            file,
            end: 0,
            allocated: 0,
            unsynced: false,
            preallocation: self.preallocation,
        };
        Ok(())
    }

    /// Writes queued chunks in order, starting new segments where they begin. The
    /// segment being left is trimmed and synced before any entry of the next one is
    /// written, and a new segment's directory entry is synced before it holds
    /// anything.
    fn write(&mut self, dir: &Dir, chunks: &[Chunk], meta: &mut Meta) -> Result<()> {
        for chunk in chunks {
            if chunk.segment != self.id {
                self.start_segment(dir, chunk.segment, meta)?;
            }
            let end = chunk.offset + chunk.bytes.len() as u64;
            self.reserve(end, chunk.bytes.len())?;
            self.file.write_all_at(&chunk.bytes, chunk.offset)?;
            self.end = end;
            self.allocated = self.allocated.max(end);
            self.unsynced = true;
        }
        Ok(())
    }
}

/// One entry ready to be queued: its parts and its checksum.
pub(crate) struct Pending<'a> {
    pub op: Op,
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub crc: u32,
    pub len: u64,
}

impl<'a> Pending<'a> {
    /// Checks an entry against the format's limit and `max_len` (the segment size,
    /// or the format's limit for a carried entry), and computes its checksum
    /// (outside the lock).
    pub(crate) fn new(op: Op, key: &'a [u8], value: &'a [u8], max_len: u64) -> Result<Self> {
        let len = codec::check_len(key.len(), value.len())?;
        if len > max_len {
            return Err(Error::EntryTooLarge { len, max: max_len });
        }
        Ok(Pending {
            op,
            key,
            value,
            crc: codec::checksum(op, key, value),
            len,
        })
    }
}

impl State {
    /// Gives an entry its sequence number and place, and queues its bytes.
    ///
    /// Rotation is FORMAT.md's: a new segment first if the entry does not fit in
    /// what is left of the active one. An entry larger than `max_segment_size`
    /// (only [`Wal::append_carried`](crate::Wal::append_carried) queues one) thus
    /// starts a segment, unless the active one is empty, and the next entry starts
    /// another: it lies alone in its segment, as the Go writer's rule would have
    /// put it had it accepted it. (An empty active segment is never left behind:
    /// for an entry within the limit, an empty segment always has room.)
    pub(crate) fn enqueue(&mut self, entry: &Pending<'_>, max_segment_size: u64) -> u64 {
        let active = self.index.active();
        if active.end > 0 && active.end + entry.len > max_segment_size {
            let next = SegmentIndex::new(active.id.next(), active.next_seq());
            self.index.active_mut().shrink_to_fit();
            self.index.segments.push_back(next);
        }
        let segment = self.index.active_mut();
        let seq = segment.next_seq();
        let offset = segment.end;
        // Offsets fit in u32: max_segment_size is below 4 GiB (Options::validate),
        // and an entry above it starts at offset 0.
        segment.push(offset as u32, entry.crc);
        segment.end += entry.len;
        let id = segment.id;
        let chunk = match self.queue.last_mut() {
            Some(chunk) if chunk.segment == id => chunk,
            _ => {
                let bytes = self.spare.pop().unwrap_or_default();
                self.queue.push(Chunk {
                    segment: id,
                    offset,
                    bytes,
                });
                self.queue.last_mut().expect("just pushed")
            }
        };
        codec::encode_with_checksum(
            &mut chunk.bytes,
            entry.crc,
            entry.op,
            entry.key,
            entry.value,
        );
        seq
    }
}

/// How far a caller needs its entries to have got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Goal {
    /// Handed to the operating system.
    Written,
    /// On disk.
    Synced,
}

impl Shared {
    /// Waits until every entry up to `seq` reached `goal`, leading group commits
    /// whenever no other thread is. Takes the lock, and returns without it: an
    /// appender woken by its group's leader learns from it that it is done and
    /// need not take the lock again.
    pub(crate) fn commit<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        seq: u64,
        goal: Goal,
    ) -> Result<()> {
        let always = self.options.sync_policy == SyncPolicy::Always;
        loop {
            // A truncate_back while this thread waited may have removed entries up
            // to `seq`: what is gone cannot be waited for.
            let seq = seq.min(state.index.next_seq() - 1);
            let reached = match goal {
                Goal::Written => state.written_seq >= seq,
                Goal::Synced => state.synced_seq >= seq,
            };
            if reached {
                return Ok(());
            }
            if let Some(cause) = &state.poisoned {
                return Err(Error::Poisoned {
                    cause: cause.clone(),
                });
            }
            if state.io_busy {
                // Wait with the group that will cover `seq`: the one in flight, or
                // the next one.
                let batch = if seq <= state.batch_through {
                    state.batch
                } else {
                    state.batch + 1
                };
                let slot = state.waiters.register(batch);
                drop(state);
                match (slot.park(), goal) {
                    (Turn::Synced, _) | (Turn::Written, Goal::Written) => return Ok(()),
                    _ => {}
                }
                state = self.lock();
                continue;
            }
            let Some(mut writer) = state.writer.take() else {
                return Err(Error::Closed);
            };
            state.io_busy = true;
            let chunks = mem::take(&mut state.queue);
            // A group that starts a segment seals the ones before it: once they are
            // written, the checkpoint can describe them.
            let sealed = chunks
                .last()
                .filter(|chunk| chunk.segment != writer.id)
                .map(|chunk| state.index.sealed(chunk.segment));
            let through = state.index.next_seq() - 1;
            state.batch += 1;
            state.batch_through = through;
            let sync = always || goal == Goal::Synced;

            // The side file changes only here (a rotation) while the lock is
            // released: truncations wait for the I/O to end before they touch it.
            let mut meta = state.meta;
            drop(state);
            let unwind = PanicGuard { shared: self };
            let result = writer.write(&self.dir, &chunks, &mut meta).and_then(|()| {
                if sync {
                    writer.sync()
                } else {
                    Ok(())
                }
            });
            if let (Ok(()), Some(sealed)) = (&result, sealed) {
                store_checkpoint(&self.dir, &sealed);
            }
            std::mem::forget(unwind);

            state = self.lock();
            state.io_busy = false;
            state.writer = Some(writer);
            state.meta = meta;
            for chunk in chunks {
                if state.spare.len() < MAX_SPARE_BUFFERS
                    && chunk.bytes.capacity() <= MAX_SPARE_CAPACITY
                {
                    let mut bytes = chunk.bytes;
                    bytes.clear();
                    state.spare.push(bytes);
                }
            }
            if let Err(err) = result {
                state.poisoned = Some(describe(&err));
                self.wake_everyone(&mut state);
                return Err(err);
            }
            state.written_seq = through;
            if sync {
                state.synced_seq = through;
            }
            let batch = state.batch;
            let group = state.waiters.take_group(batch);
            let next_leader = state.waiters.take_next_leader(batch);
            if state.progress_waiters > 0 {
                self.progress.notify_all();
            }
            if state.tail_waiters > 0 {
                self.appended.notify_all();
            }
            drop(state);
            // The next group first: its I/O can start while this one's appenders
            // wake. Each learns how its group went and returns without the lock.
            if let Some(next) = next_leader {
                next.wake(Turn::Recheck);
            }
            let turn = if sync { Turn::Synced } else { Turn::Written };
            for waiter in group {
                waiter.wake(turn);
            }
            return Ok(());
        }
    }
}

/// Armed while a leader does I/O without the lock. If the file system panics, the
/// leader never comes back to clear `io_busy`: without this guard every other
/// thread would wait forever. It poisons the log and wakes them instead.
struct PanicGuard<'a> {
    shared: &'a Shared,
}

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.io_busy = false;
        state
            .poisoned
            .get_or_insert_with(|| "the file system panicked during a write or fsync".into());
        self.shared.wake_everyone(&mut state);
    }
}

/// Rewrites the checkpoint. A failure is no reason to fail appends: the
/// checkpoint left in place (or none) still describes the segments truthfully,
/// and the next open scans what it does not.
/// A log of one segment has nothing to record (and gets no file).
pub(crate) fn store_checkpoint(dir: &Dir, sealed: &[Sealed]) {
    if !sealed.is_empty() {
        let _ = checkpoint::store(dir, sealed);
    }
}

/// An error and its sources as one line, for [`Error::Poisoned`].
pub(crate) fn describe(err: &Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whether `err` says the file system (or the user's quota) is full.
fn is_out_of_space(err: &Error) -> bool {
    matches!(err, Error::Io { source, .. }
        if matches!(source.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded))
}
