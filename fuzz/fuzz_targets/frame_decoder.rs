//! Fuzz target: see `zmtp_fuzz::frame_decoder`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zmtp_fuzz::frame_decoder(data));
