#![doc = include_str!("../README.md")]

mod batch;
mod checkpoint;
pub mod codec;
mod entry;
mod error;
pub mod fs;
mod index;
mod meta;
mod options;
mod reader;
mod recovery;
mod repair;
mod state;
mod truncate;
mod waiters;
mod wal;
mod writer;

pub use batch::Batch;
pub use checkpoint::{INDEX_FILE, INDEX_TMP_FILE};
pub use entry::{Entry, Op, Position, SegmentId};
pub use error::{CorruptionKind, Error, Result};
pub use meta::{
    SideFileAction, SideFileNote, SideFileProblem, META_COPY_FILE, META_COPY_TMP_FILE, META_FILE,
    META_TMP_FILE,
};
pub use options::{
    Options, RecoveryMode, SyncPolicy, DEFAULT_MAX_SEGMENT_SIZE, DEFAULT_PREALLOCATE,
};
pub use reader::{EntryRef, Iter};
pub use recovery::{Damage, RecoveryReport};
pub use repair::{rebuild_side_file, remove_skipped_damage};
pub use wal::{SegmentInfo, Wal, LOCK_FILE};

/// The workspace README's examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct WorkspaceReadme;

#[cfg(test)]
mod static_checks {
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn wal_and_iter_are_send_and_sync() {
        assert_send_sync::<crate::Wal>();
        assert_send_sync::<crate::Iter>();
        assert_send_sync::<crate::Error>();
    }
}
