//! Fuzz target: see `zmtp_fuzz::broker` (in `src/broker.rs`, with the input encoding).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zmtp_fuzz::broker(data));
