//! Fuzz target: see `zmtp_fuzz::greeting`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zmtp_fuzz::greeting(data));
