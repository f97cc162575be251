//! The log's syncer thread: it leads the group commits that no blocking appender
//! leads (entries handed over by [`Wal::submit`](crate::Wal::submit)), and under
//! [`SyncPolicy::Interval`] makes what was written durable every interval.
//!
//! A thread that only submits never writes or syncs: it queues its entries and,
//! when no group is under way, wakes this thread (see [`Shared::hand_over`]). A
//! group's leader that finds entries queued behind it and no appender waiting to
//! lead them wakes it too. Blocking appenders, submitters and the syncer so share
//! the same groups, and each group one fdatasync.

use std::time::{Duration, Instant};

use crate::options::SyncPolicy;
use crate::state::{Shared, State};
use crate::sync::MutexGuard;
use crate::writer::Goal;

impl Shared {
    /// After queueing submitted entries (with the lock held): makes sure someone
    /// will write them. A group under way wakes the syncer when it ends if
    /// nobody else leads the next one; otherwise the syncer is woken now, if it
    /// sleeps.
    pub(crate) fn hand_over(&self, state: &mut State) {
        if !state.io_busy {
            self.wake_syncer(state);
        }
    }

    /// Wakes the syncer if it sleeps (with the lock held).
    pub(crate) fn wake_syncer(&self, state: &mut State) {
        if state.syncer_idle {
            state.syncer_idle = false;
            self.syncer_wake.notify_one();
        }
    }
}

/// The syncer thread's loop, until the log closes or is poisoned.
pub(crate) fn run(shared: &Shared) {
    let interval = match shared.options.sync_policy {
        SyncPolicy::Interval(interval) => Some(interval),
        SyncPolicy::Always | SyncPolicy::Manual => None,
    };
    // Under `Always` every group is synced; otherwise the syncer only writes what
    // was submitted (readers see it), and syncs every `interval`.
    let goal = match shared.options.sync_policy {
        SyncPolicy::Always => Goal::Synced,
        SyncPolicy::Interval(_) | SyncPolicy::Manual => Goal::Written,
    };
    let mut next_sync = interval.map(|interval| Instant::now() + interval);
    let mut state = shared.lock();
    loop {
        if state.closed || state.poisoned.is_some() {
            return;
        }
        if !state.queue.is_empty() && !state.io_busy {
            let through = state.index.next_seq() - 1;
            // A failure poisons the log, and the receipts learn it from there.
            let _ = shared.commit(state, through, goal);
            state = shared.lock();
            continue;
        }
        if let (Some(interval), Some(due)) = (interval, next_sync) {
            let now = Instant::now();
            if now >= due {
                next_sync = Some(now + interval);
                let through = state.index.next_seq() - 1;
                if state.synced_seq < through {
                    let _ = shared.commit(state, through, Goal::Synced);
                    state = shared.lock();
                }
                continue;
            }
            state = sleep(shared, state, Some(due - now));
        } else {
            state = sleep(shared, state, None);
        }
    }
}

/// Waits to be woken ([`Shared::wake_syncer`]), or for `timeout`.
fn sleep<'a>(
    shared: &'a Shared,
    mut state: MutexGuard<'a, State>,
    timeout: Option<Duration>,
) -> MutexGuard<'a, State> {
    state.syncer_idle = true;
    let mut state = match timeout {
        Some(timeout) => {
            shared
                .syncer_wake
                .wait_timeout(state, timeout)
                .unwrap_or_else(|poison| poison.into_inner())
                .0
        }
        None => shared.wait(&shared.syncer_wake, state),
    };
    state.syncer_idle = false;
    state
}
