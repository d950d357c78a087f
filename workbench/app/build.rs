//! Adds the rpath to the prebuilt libduckdb.so for the `tapline` binary and tests.
fn main() {
    include!("../store/build/duckdb_rpath.rs");
}
