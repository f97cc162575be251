#![allow(clippy::unwrap_used, missing_docs)]
//! Integration tests of flashlog-kv.

mod common;
mod compaction;
mod concurrent_model;
mod crash;
mod model;
mod races;
mod store;
mod torn;
