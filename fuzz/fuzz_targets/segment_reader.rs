//! Arbitrary bytes as the one segment of a log: open read-only and read-write, iterate.
//! The check is `flashlog_chaos::fuzz::segment_reader`, which `cargo test -p flashlog-chaos`
//! also runs on every file of `fuzz/corpus/segment_reader/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flashlog_chaos::fuzz::segment_reader(data));
