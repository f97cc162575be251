//! Appenders parked until their group commit is over, each on a slot of its own.
//!
//! A finished group wakes exactly its own appenders, and tells them how it went
//! (written, or written and synced), so that they return without taking the log's
//! lock again: on a busy log that lock is what the next group's appenders need to
//! queue their entries. One appender of the next group is woken to lead it.
//!
//! Appenders wait for group `n` in list `n % 2`: while group `n` is in flight, an
//! appender's entries are in it or in the next one (`n + 1`), never later.

use std::sync::Arc;

use crate::sync::atomic::{AtomicU8, Ordering};
use crate::sync::thread::{self, Thread};
use crate::sync::thread_local;

/// What a woken appender learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    /// Still waiting (never returned by [`Waiter::park`]).
    Waiting = 0,
    /// The group was handed to the operating system, not synced.
    Written = 1,
    /// The group is on disk.
    Synced = 2,
    /// Something else happened (a failure, a close, or the lead is free): look at
    /// the log's state.
    Recheck = 3,
}

impl Turn {
    fn from_u8(value: u8) -> Turn {
        match value {
            0 => Turn::Waiting,
            1 => Turn::Written,
            2 => Turn::Synced,
            _ => Turn::Recheck,
        }
    }
}

/// One thread's parking slot.
#[derive(Debug)]
pub(crate) struct Waiter {
    thread: Thread,
    turn: AtomicU8,
}

thread_local! {
    /// Each thread waits for one group at a time: its slot is made once.
    static SLOT: Arc<Waiter> = Arc::new(Waiter {
        thread: thread::current(),
        turn: AtomicU8::new(Turn::Waiting as u8),
    });
}

impl Waiter {
    /// Blocks until a group commit (or a failure) wakes this slot.
    pub(crate) fn park(&self) -> Turn {
        loop {
            match Turn::from_u8(self.turn.load(Ordering::Acquire)) {
                Turn::Waiting => thread::park(),
                turn => return turn,
            }
        }
    }

    /// Sets the slot's turn and unparks its thread. Each registered slot is woken
    /// exactly once, by whoever took it out of its list.
    pub(crate) fn wake(&self, turn: Turn) {
        self.turn.store(turn as u8, Ordering::Release);
        self.thread.unpark();
    }
}

/// The parked appenders, by the parity of the group they wait for.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    groups: [Vec<Arc<Waiter>>; 2],
}

impl Waiters {
    /// Adds the calling thread to group `group`'s waiters (call with the log's lock
    /// held, then release it and [`Waiter::park`]).
    pub(crate) fn register(&mut self, group: u64) -> Arc<Waiter> {
        let slot = SLOT.with(Arc::clone);
        slot.turn.store(Turn::Waiting as u8, Ordering::Relaxed);
        self.groups[(group % 2) as usize].push(Arc::clone(&slot));
        slot
    }

    /// The waiters of group `group`, which just finished.
    pub(crate) fn take_group(&mut self, group: u64) -> Vec<Arc<Waiter>> {
        std::mem::take(&mut self.groups[(group % 2) as usize])
    }

    /// One waiter of the group after `group`, to lead it.
    pub(crate) fn take_next_leader(&mut self, group: u64) -> Option<Arc<Waiter>> {
        let next = &mut self.groups[((group + 1) % 2) as usize];
        (!next.is_empty()).then(|| next.swap_remove(0))
    }

    /// Every waiter, for a failure or a close.
    pub(crate) fn take_all(&mut self) -> Vec<Arc<Waiter>> {
        let [a, b] = &mut self.groups;
        let mut all = std::mem::take(a);
        all.append(b);
        all
    }
}
