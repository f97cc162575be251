#![allow(clippy::unwrap_used, missing_docs)]
//! The `flashlog` binary, run as a user runs it.

mod binary;
mod cluster;
mod cluster_faults;
mod cluster_tls;
mod commands;
mod common;
mod damage;
mod go_compat;
mod json;
mod not_a_log;
mod readme;
mod scripts;
mod sealed;
mod shell;
mod side_files;
mod tail;
mod terminal;
