//! Integration tests of flashlog-wal: one binary, one module per concern.

#![allow(clippy::unwrap_used)]

mod checkpoint;
mod common;
mod concurrency;
mod full_disk;
mod go_compat;
mod group_commit;
mod layers;
mod reading;
mod receipts;
mod recovery;
mod repair;
mod rotation;
mod round_trip;
mod sealed;
mod side_files;
mod torn;
mod truncate;
