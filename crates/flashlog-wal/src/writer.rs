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
use crate::receipt::{self, Failure};
use crate::rollback::GroupStart;
use crate::segment_writer::{is_out_of_space, Chunk, Pending};
use crate::state::{Shared, State};
use crate::sync::atomic::Ordering;
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
        // Rollbacks after this point may take back entries up to `seq`.
        let queued_at = state.rollbacks.count;
        loop {
            // Refused for want of space (see rollback.rs): the numbers may have
            // gone to new entries since, so this comes first.
            if let Some(err) = state.rollbacks.refused(seq, queued_at) {
                return Err(err);
            }
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
                let group = if seq <= state.group_through {
                    state.group
                } else {
                    state.group + 1
                };
                let slot = state.waiters.register(group);
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
            state.group += 1;
            state.group_through = through;
            let sync = always || goal == Goal::Synced;
            let start = GroupStart {
                segment: writer.id(),
                end: writer.end(),
                before: state.written_seq,
                meta: state.meta,
            };

            // The side file changes only here (a rotation) while the lock is
            // released: truncations wait for the I/O to end before they touch it.
            let mut meta = state.meta;
            drop(state);
            let unwind = PanicGuard { shared: self };
            let written = writer.write(&self.dir, &chunks, &mut meta);
            let write_failed = written.is_err();
            let result = written.and_then(|()| {
                if sync {
                    // Written readers may read the group now, before its fsync.
                    self.publish_written(through);
                    self.timed_sync(&mut writer)
                } else {
                    Ok(())
                }
            });
            if let (Ok(()), Some(sealed)) = (&result, sealed) {
                store_checkpoint(&self.dir, &sealed);
                self.retention.sealed(); // applied after the group (wal/retention.rs)
            }
            std::mem::forget(unwind);
            let group_bytes: u64 = chunks.iter().map(|chunk| chunk.bytes.len() as u64).sum();
            let new_segments: Vec<_> = chunks
                .iter()
                .map(|chunk| chunk.segment)
                .filter(|&segment| segment != start.segment)
                .collect();

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
                if write_failed && is_out_of_space(&err) && state.poisoned.is_none() {
                    if let Ok(refused) = self.roll_back(&mut state, &start, &err) {
                        tracing::warn!(error = %err, "flashlog: a group was refused for want of space and taken back");
                        self.metrics.count(&self.metrics.refused_groups);
                        // Everyone waiting rechecks: those whose entries went
                        // learn it from `rollbacks`, the others go on.
                        for waiter in state.waiters.take_all() {
                            waiter.wake(Turn::Recheck);
                        }
                        self.progress.notify_all();
                        let failure = Failure::Refused(err.poison_cause());
                        drop(state);
                        receipt::resolve_all(refused, &Err(failure));
                        return Err(err);
                    }
                }
                state.poison(err.poison_cause(), &self.metrics);
                self.wake_everyone(state);
                return Err(err);
            }
            if through > start.before {
                self.metrics.group(through - start.before, group_bytes);
            }
            for segment in new_segments {
                tracing::debug!(segment = %segment.file_name(), "flashlog: new segment");
                self.metrics.count(&self.metrics.rotations);
            }
            state.written_seq = through;
            self.written_edge.store(through, Ordering::SeqCst);
            let durable = if sync {
                state.synced_seq = through;
                state.take_durable_receipts()
            } else {
                Vec::new()
            };
            let finished = state.group;
            let group = state.waiters.take_group(finished);
            let next_leader = state.waiters.take_next_leader(finished);
            if next_leader.is_none() && !state.queue.is_empty() {
                // Submitted entries queued behind this group, and no appender
                // to lead them: the syncer does.
                self.wake_syncer(&mut state);
            }
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
            receipt::resolve_all(durable, &Ok(()));
            return Ok(());
        }
    }
}

impl Shared {
    /// fdatasyncs the active segment if it has unsynced bytes, recording how
    /// long it took, and warning (`tracing`) when that is longer than
    /// [`Options::slow_fsync`](crate::Options::slow_fsync).
    fn timed_sync(&self, writer: &mut crate::segment_writer::SegmentWriter) -> Result<()> {
        if !writer.has_unsynced() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let result = writer.sync();
        let took = started.elapsed();
        self.metrics.fsync(took);
        if took >= self.options.slow_fsync {
            tracing::warn!(
                segment = %writer.id().file_name(),
                took_ms = took.as_millis() as u64,
                "flashlog: slow fdatasync"
            );
        }
        result
    }

    /// Publishes the written edge after a group's write, before its fsync, and
    /// wakes the `Visibility::Written` followers if any wait (see
    /// [`Shared::written_followers`]).
    fn publish_written(&self, through: u64) {
        self.written_edge.store(through, Ordering::SeqCst);
        if self.written_followers.load(Ordering::SeqCst) > 0 {
            let _state = self.lock();
            self.appended.notify_all();
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
        let cause = Error::io(
            "write or fsync (the file system panicked) in",
            self.shared.dir.path(),
            std::io::Error::other("the file system panicked"),
        );
        state.poison(Arc::new(cause), &self.shared.metrics);
        self.shared.wake_everyone(state);
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
