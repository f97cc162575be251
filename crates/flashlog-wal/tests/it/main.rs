//! Integration tests of flashlog-wal: one binary, one module per concern.

#![allow(clippy::unwrap_used)]

mod checkpoint;
mod common;
mod concurrency;
mod cursors;
mod full_disk;
mod go_compat;
mod group_commit;
mod layers;
mod metrics;
#[cfg(feature = "metrics")]
mod metrics_facade;
mod reading;
mod receipts;
mod recovery;
mod regressions;
mod repair;
mod retention;
mod retention_crash;
mod rotation;
mod round_trip;
mod scrub;
mod sealed;
mod side_files;
mod torn;
mod truncate;
