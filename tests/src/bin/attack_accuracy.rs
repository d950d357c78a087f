//! Prints detection rates per attack family and the benign false-positive rate over
//! `../shared/corpus/attacks` (see `tapline_tests::attacks`), then the rates on the OWASP CRS
//! regression tests (`tapline_tests::crs`). `--verbose LABEL` lists that label's misses (or,
//! for `benign`, what fired); `--verbose crs:FAMILY` a CRS family's. Run:
//! `cargo run --release -p tapline-tests --bin attack_accuracy`.

use anyhow::{Context, Result};
use tapline_tests::{attacks, crs};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut verbose: Option<String> = None;
    while let Some(a) = args.next() {
        if a == "--verbose" || a == "-v" {
            verbose = args.next();
        }
    }
    let dir = attacks::corpus_dir().context("no ../shared/corpus/attacks beside the repository")?;
    let report = attacks::evaluate(&dir)?;
    if let Some(label) = verbose.as_deref().filter(|v| !v.starts_with("crs:")) {
        for (l, p, fired) in report.errors.iter().filter(|(l, _, _)| *l == label) {
            println!("{l}\t{fired}\t{}", p.chars().take(160).collect::<String>());
        }
        println!();
    }
    print!("{}", attacks::table(&report));
    let crs = crs::evaluate(&dir)?;
    if let Some(family) = verbose.as_deref().and_then(|v| v.strip_prefix("crs:")) {
        for (f, rule, line, fired) in crs.misses.iter().filter(|m| m.0 == family) {
            println!(
                "{f}\t{rule}\t{fired}\t{}",
                line.chars().take(160).collect::<String>()
            );
        }
    }
    println!("\nOWASP CRS regression tests:\n");
    print!("{}", crs::table(&crs));
    Ok(())
}
