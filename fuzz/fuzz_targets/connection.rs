//! Fuzz target: see `zmtp_fuzz::connection` (in `src/connection.rs`, with the input encoding).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zmtp_fuzz::connection(data));
