//! The entry decoder on arbitrary bytes, with the round trip when it succeeds.
//! The check is `flashlog_chaos::fuzz::decode_entry`, which `cargo test -p flashlog-chaos`
//! also runs on every file of `fuzz/corpus/decode_entry/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flashlog_chaos::fuzz::decode_entry(data));
