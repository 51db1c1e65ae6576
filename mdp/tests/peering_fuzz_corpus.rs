//! Replays the `peering` fuzz corpus (and any crash artifacts) through the target's
//! body, and checks that the hand-made seeds reach the states they were written for.

#[path = "../../fuzz/src/peering.rs"]
mod fuzz_peering;

#[test]
fn peering_corpus() {
    testkit::corpus::replay("peering", fuzz_peering::peering);
}
