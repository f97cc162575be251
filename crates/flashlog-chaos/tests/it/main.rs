//! The chaos suite of flashlog: one integration-test binary, one module per kind
//! of test. See the crate's README for what each checks and how to run the long
//! versions.

#![allow(clippy::unwrap_used)]

mod fuzz_corpus;
mod kill;
mod kill_embedded;
mod kv_gate_model;
mod kv_kill;
mod model;
mod receipts_tokio;
mod regressions;
mod rotation;
mod sizes;
mod stress;
