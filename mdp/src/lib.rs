//! Majordomo Protocol (MDP 0.1 and 0.2) on top of the pure-Rust [`zmtp`] stack.
//!
//! This crate is a placeholder until the MDP issue lands: the workspace builds it so
//! that the layout is in place from the start.
