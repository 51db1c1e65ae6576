//! Fuzz target: see `zmtp_fuzz::security` (in `src/security.rs`, with the input
//! encoding).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zmtp_fuzz::security(data));
