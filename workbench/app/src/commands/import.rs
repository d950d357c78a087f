//! `tapline import FILE... --db CASE`: decode and store, with a progress bar on stderr.

use crate::cli::{ImportArgs, Verbosity};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tapline_analysis::Detectors;
use tapline_ingest::import::{ImportOptions, ImportOutcome, import_file};
use tapline_store::CaseStore;

/// Runs the command. Ctrl-C cancels cleanly (the current file is rolled back).
pub fn run(args: &ImportArgs, verbosity: Verbosity) -> Result<()> {
    let mut store = CaseStore::open(&args.db)
        .with_context(|| format!("cannot open case {}", args.db.display()))?;
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    // Ctrl-C asks the import to stop at the next batch and roll the current file back.
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));
    let opts = ImportOptions {
        max_body: args.max_body,
        threads: args
            .threads
            .unwrap_or_else(|| ImportOptions::default().threads),
        batch: args.batch,
        detectors: Detectors {
            sensitive: !args.no_sensitive,
            attacks: !args.no_attacks,
            behaviour: !args.no_behaviour,
        },
    };
    for file in &args.files {
        let bar = if verbosity.quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(10))
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} · {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(file.display().to_string());
        let outcome = import_file(&mut store, file, &opts, &cancel, &mut |p| {
            bar.set_length(p.bytes_total);
            bar.set_position(p.bytes_done);
            bar.set_message(format!(
                "{} packets, {} transactions",
                p.packets, p.transactions
            ));
        });
        bar.finish_and_clear();
        match outcome? {
            ImportOutcome::Imported(s) => eprintln!(
                "{}: imported {} transactions from {} packets{}",
                file.display(),
                s.transactions,
                s.packets,
                if s.resumed {
                    " (an interrupted earlier import was discarded and redone)"
                } else {
                    ""
                }
            ),
            ImportOutcome::AlreadyImported {
                source_id,
                name,
                transactions,
            } => eprintln!(
                "{}: already in this case (source {source_id}, imported as {name}, {transactions} transactions); skipped",
                file.display()
            ),
            ImportOutcome::Cancelled => {
                eprintln!("{}: cancelled; the case is unchanged", file.display());
                std::process::exit(130);
            }
        }
    }
    Ok(())
}
