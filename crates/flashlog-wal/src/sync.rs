//! The synchronisation types of the core: the standard library's, or loom's when
//! the crate is built with `--cfg loom`.
//!
//! Every lock, condition variable, atomic, parked thread and thread-local slot
//! that the group commit, the waiters and the shared state use comes from here,
//! so that the loom model (`tests/loom.rs`, run by `.ci/run` with
//! `RUSTFLAGS="--cfg loom"`) explores the interleavings of the real code, not of
//! a copy. `Arc` stays the standard one (loom's has no `Weak`), and so do the
//! recovery scan's scoped threads, which share no lock with anything.

#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
#[cfg(not(loom))]
pub(crate) use std::{thread, thread_local};

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
#[cfg(loom)]
pub(crate) use loom::{thread, thread_local};
