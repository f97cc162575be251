//! The crash, fault and bad-input suite of flashlog: one binary, one module per
//! concern. `FLASHLOG_LONG=1` runs the long version.

#![allow(clippy::unwrap_used)]

mod common;
mod concurrent;
mod damage;
mod dir_durability;
mod enospc;
mod enumerate;
mod fsync_failure;
mod kv;
mod power_cut;
mod repair;
mod sweep;
mod system;
