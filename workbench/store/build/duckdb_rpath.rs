// Shared by the build scripts of every package whose binaries or tests link DuckDB
// (`include!`d, so it is a block). It adds an rpath to the prebuilt libduckdb.so folder that
// installers/setup.sh fetched, so `cargo run` and `cargo test` start without LD_LIBRARY_PATH.
// With `--features bundled` DuckDB is compiled in and the rpath is simply unused.
{
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    if let Ok(dir) = std::env::var("DUCKDB_LIB_DIR") {
        let path = std::path::Path::new(&dir);
        if path.join("libduckdb.so").exists() {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", path.display());
        }
    }
}
