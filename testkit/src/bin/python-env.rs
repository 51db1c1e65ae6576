//! Prints the path of the test Python (pyzmq, majortomo, msgpack), creating its
//! virtual environment first if needed: `cargo run -q -p testkit --bin python-env`.
//! Scripts (benchmarks) use it so they run with exactly the peers the tests use.

fn main() {
    println!("{}", testkit::python().display());
}
