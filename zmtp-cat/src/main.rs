//! `zmtp-cat`: placeholder, filled in by the zmtp-cat work.

fn main() {}
