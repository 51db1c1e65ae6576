//! Fuzz target: see `zmtp_fuzz::mdp` (in `src/mdp.rs`, with the input encoding).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zmtp_fuzz::mdp(data));
