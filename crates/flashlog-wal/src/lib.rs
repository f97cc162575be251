#![doc = include_str!("../README.md")]

// Layers (docs/design.md, "Module map"): every `crate::` import points down this
// list, which `tests/it/layers.rs` checks.
// format
pub mod codec;
mod entry;
mod error;
pub mod fs;
mod op;
mod options;
mod position;
mod retention;
mod scrub_rate;
mod sync;
// files
mod checkpoint;
mod cursors;
mod dir;
mod meta;
mod sealed;
mod segment;
mod segment_writer;
// state
mod index;
mod metrics;
mod receipt;
mod report;
mod retainer;
mod state;
mod waiters;
// paths
mod reader;
mod recovery;
mod rollback;
mod scrub;
mod syncer;
mod truncate;
mod writer;
// API
mod batch;
mod repair;
mod wal;

pub use batch::Batch;
pub use cursors::{read_cursors, MAX_CURSORS, MAX_CURSOR_NAME_LEN};
pub use dir::{CURSORS_FILE, INDEX_FILE, LOCK_FILE, META_COPY_FILE, META_FILE, SEALED_FILE};
pub use entry::Entry;
pub use error::{CorruptionKind, Error, Result};
pub use meta::{SideFileAction, SideFileNote, SideFileProblem};
pub use metrics::{HistogramSnapshot, Metrics};
pub use op::Op;
pub use options::{
    Options, RecoveryMode, SyncPolicy, Visibility, DEFAULT_MAX_SEGMENT_SIZE, DEFAULT_PREALLOCATE,
    DEFAULT_SLOW_FSYNC,
};
pub use position::{Position, SegmentId};
pub use reader::{EntryRef, Iter};
pub use receipt::Receipt;
pub use repair::{
    rebuild_side_file, remove_skipped_damage, repair, Cut, RepairMode, RepairOptions, RepairReport,
};
pub use report::{Damage, RecoveryReport};
pub use retention::{
    CursorRule, HeldBack, RemovedSegment, Retention, RetentionReason, RetentionReport,
    RetentionTotals,
};
pub use scrub::ScrubReport;
pub use scrub_rate::ScrubRate;
pub use wal::{SegmentInfo, Wal};

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
