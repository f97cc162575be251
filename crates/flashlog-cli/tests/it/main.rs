#![allow(clippy::unwrap_used, missing_docs)]
//! The `flashlog` binary, run as a user runs it.

mod commands;
mod common;
mod damage;
mod go_compat;
mod shell;
mod side_files;
