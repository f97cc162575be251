//! Arbitrary bytes as up to four segments and a side file: open under every recovery mode, iterate, append, reopen.
//! The check is `flashlog_chaos::fuzz::recovery`, which `cargo test -p flashlog-chaos`
//! also runs on every file of `fuzz/corpus/recovery/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flashlog_chaos::fuzz::recovery(data));
