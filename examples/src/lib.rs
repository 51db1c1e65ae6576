//! Runnable examples live beside this crate's manifest: `cargo run -p zmtp-examples
//! --example hello`. This library is empty; Cargo needs one target besides examples.
