//! The `flashlog dump` path: read-only open under SkipCorrupted, every entry as a hex line.
//! The check is `flashlog_chaos::fuzz::dump`, which `cargo test -p flashlog-chaos`
//! also runs on every file of `fuzz/corpus/dump/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flashlog_chaos::fuzz::dump(data));
