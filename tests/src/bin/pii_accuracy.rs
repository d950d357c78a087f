//! Prints precision and recall per data class over `../shared/corpus/pii` (see
//! `tapline_tests::pii` for how each source is scored). `--verbose` lists every miss and
//! false positive. Run: `cargo run --release -p tapline-tests --bin pii_accuracy`.

use anyhow::{Context, Result};
use tapline_tests::pii;

fn main() -> Result<()> {
    let verbose = std::env::args().any(|a| a == "--verbose" || a == "-v");
    let dir = pii::corpus_dir().context("no ../shared/corpus/pii beside the repository")?;
    let report = pii::evaluate(&dir)?;
    if verbose {
        for e in &report.errors {
            println!("{e}");
        }
        println!();
    }
    print!("{}", pii::table(&report));
    println!("\nExcluded cases:");
    for (src, det, name, why) in pii::EXCLUDED {
        println!("- {src} {det} {name:?}: {why}");
    }
    Ok(())
}
