//! Fuzz target: see `zmtp_fuzz::peering` (in `src/peering.rs`, with the input encoding).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zmtp_fuzz::peering(data));
