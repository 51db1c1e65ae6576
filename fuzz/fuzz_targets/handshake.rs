//! Fuzz target: see `zmtp_fuzz::handshake`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zmtp_fuzz::handshake(data));
