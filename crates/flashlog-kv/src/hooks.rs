//! Test-only pauses at the gaps between a lock and the I/O done on what it saw, so
//! that a unit test can overlap exactly that gap with another thread. Outside
//! `cfg(test)`, [`at`] is an empty inline function.

#[cfg(test)]
use std::cell::RefCell;

/// A gap a test can pause in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gap {
    /// In `put` and `delete`: the entry is in the log, the index does not show it yet.
    AfterAppend,
    /// In `read_value`: the index was read, the log not yet.
    BeforeRead,
}

#[cfg(test)]
type Pause = Box<dyn FnMut(Gap)>;

#[cfg(test)]
thread_local! {
    static PAUSE: RefCell<Option<Pause>> = const { RefCell::new(None) };
}

/// Calls the current thread's pause, if a test set one.
#[cfg(test)]
pub(crate) fn at(gap: Gap) {
    PAUSE.with(|pause| {
        if let Some(pause) = pause.borrow_mut().as_mut() {
            pause(gap);
        }
    });
}

/// Does nothing outside tests.
#[cfg(not(test))]
#[inline(always)]
pub(crate) fn at(_gap: Gap) {}

/// Makes `pause` run at every gap this thread passes, until the thread ends.
#[cfg(test)]
pub(crate) fn set(pause: impl FnMut(Gap) + 'static) {
    PAUSE.with(|slot| *slot.borrow_mut() = Some(Box::new(pause)));
}
