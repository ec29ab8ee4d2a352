//! Codec benchmarks (filled in with the codec tests).
fn main() {}
