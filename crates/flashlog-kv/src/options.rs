//! How a store is opened: [`DbOptions`] and [`AutoCompact`].

use flashlog_wal::Options;

use crate::{Error, Result};

/// When a store compacts itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AutoCompact {
    /// Only when [`Db::compact`](crate::Db::compact) is called.
    Never,
    /// When dead bytes (overwritten puts, deletes and what they deleted) exceed this
    /// share of the log, between 0 and 1 (exclusive of 0). The check runs after a
    /// write once a segment's worth of bytes was appended since the last compaction
    /// (or since `open`); the write that crosses the line runs the compaction before
    /// it returns. That write's result is its own: a failed compaction's error is
    /// kept in [`Stats::last_compaction_error`](crate::Stats::last_compaction_error)
    /// and traced as a `tracing` warning.
    DeadShare(f64),
}

impl Default for AutoCompact {
    fn default() -> AutoCompact {
        AutoCompact::DeadShare(0.5)
    }
}

/// Options for [`Db::open`](crate::Db::open): the log's options plus the store's own.
///
/// ```
/// use flashlog_kv::{AutoCompact, DbOptions};
/// use flashlog_wal::{Options, SyncPolicy};
///
/// let options = DbOptions::default()
///     .wal(Options::default().sync_policy(SyncPolicy::Always).max_segment_size(8 << 20))
///     .auto_compact(AutoCompact::DeadShare(0.6));
/// assert_eq!(options.auto_compact, AutoCompact::DeadShare(0.6));
/// assert_eq!(options.wal.max_segment_size, 8 << 20);
/// ```
///
/// Each setting is a public field, read as it is, and set with the builder
/// method of the same name; [`Db::open`](crate::Db::open) checks them.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DbOptions {
    /// The log's options (see [`DbOptions::wal()`]).
    pub wal: Options,
    /// When the store compacts itself (see [`DbOptions::auto_compact()`]).
    pub auto_compact: AutoCompact,
}

impl DbOptions {
    /// The options of the log under the store (segment size, sync policy, recovery
    /// mode, file system). Default: `Options::default()`.
    #[must_use]
    pub fn wal(mut self, options: Options) -> DbOptions {
        self.wal = options;
        self
    }

    /// When the store compacts itself. Default [`AutoCompact::DeadShare`]`(0.5)`.
    #[must_use]
    pub fn auto_compact(mut self, policy: AutoCompact) -> DbOptions {
        self.auto_compact = policy;
        self
    }

    /// Opens the store read-only: nothing on disk changes, no lock is taken, and
    /// writes fail with `flashlog_wal::Error::ReadOnly`. Default: read-write.
    #[must_use]
    pub fn read_only(mut self) -> DbOptions {
        self.wal = self.wal.read_only();
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if let AutoCompact::DeadShare(share) = self.auto_compact {
            if !(share > 0.0 && share <= 1.0) {
                return Err(Error::InvalidOptions(
                    "the dead share of automatic compaction must be above 0 and at most 1",
                ));
            }
        }
        Ok(())
    }
}
