//! Arbitrary bytes as up to four segments and a side file: open under the recovery mode
//! the input's length picks, iterate, append, reopen. The check is
//! `flashlog_chaos::fuzz::recovery_case`; `cargo test -p flashlog-chaos` runs every file
//! of `fuzz/corpus/recovery/` through `flashlog_chaos::fuzz::recovery`, under all four modes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flashlog_chaos::fuzz::recovery_case(data));
