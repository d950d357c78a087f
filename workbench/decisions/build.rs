//! Adds the rpath to the prebuilt libduckdb.so for this crate's tests.
fn main() {
    include!("../store/build/duckdb_rpath.rs");
}
