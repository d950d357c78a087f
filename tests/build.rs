//! Adds the rpath to the prebuilt libduckdb.so for the end-to-end tests.
fn main() {
    include!("../workbench/store/build/duckdb_rpath.rs");
}
