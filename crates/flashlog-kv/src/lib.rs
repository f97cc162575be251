#![doc = include_str!("../README.md")]

mod compact;
mod db;
mod dir;
mod error;
mod hooks;
mod index;
mod locks;
mod options;
mod scan;
mod stats;

pub use compact::{CompactionProgress, CompactionReport};
pub use db::Db;
pub use error::{Error, Result};
pub use options::{AutoCompact, DbOptions};
pub use scan::Scan;
pub use stats::{DbMetrics, Stats};

#[cfg(test)]
mod static_checks {
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn db_and_error_are_send_and_sync() {
        assert_send_sync::<crate::Db>();
        assert_send_sync::<crate::Error>();
    }
}
