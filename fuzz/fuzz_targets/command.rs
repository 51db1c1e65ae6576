//! Fuzz target: see `zmtp_fuzz::command`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zmtp_fuzz::command(data));
