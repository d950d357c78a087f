//! Prints detection rates per attack family and the benign false-positive rate over
//! `../shared/corpus/attacks` (see `tapline_tests::attacks`). `--verbose LABEL` lists that
//! label's misses (or, for `benign`, what fired). Run:
//! `cargo run --release -p tapline-tests --bin attack_accuracy`.

use anyhow::{Context, Result};
use tapline_tests::attacks;

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
    if let Some(label) = verbose {
        for (l, p, fired) in report.errors.iter().filter(|(l, _, _)| *l == label) {
            println!("{l}\t{fired}\t{}", p.chars().take(160).collect::<String>());
        }
        println!();
    }
    print!("{}", attacks::table(&report));
    Ok(())
}
