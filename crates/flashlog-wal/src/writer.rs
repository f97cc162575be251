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
use std::sync::Arc;

use crate::checkpoint::{self, Sealed};
use crate::codec;
use crate::error::{Error, Result};
use crate::fs::Dir;
use crate::index::SegmentIndex;
use crate::options::SyncPolicy;
use crate::segment_writer::{Chunk, Pending};
use crate::state::{Shared, State};
use crate::sync::MutexGuard;
use crate::waiters::Turn;

/// Chunk buffers kept for reuse, and the largest kept: enough to avoid an
/// allocation per group commit without holding on to the memory of a burst.
const MAX_SPARE_BUFFERS: usize = 4;
const MAX_SPARE_CAPACITY: usize = 1 << 20;

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
                .filter(|chunk| chunk.segment != writer.id())
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
                self.retention.sealed(); // applied after the group (wal/retention.rs)
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
                state.poisoned = Some(err.poison_cause());
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
        let dir = self.shared.dir.path();
        state.poisoned.get_or_insert_with(|| {
            Arc::new(Error::io(
                "write or fsync (the file system panicked) in",
                dir,
                std::io::Error::other("the file system panicked"),
            ))
        });
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
