//! `tapline import FILE... --db CASE`: decode and store, with a progress bar on stderr.

use crate::cli::ImportArgs;
use crate::commands::{Ctx, Status};
use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tapline_analysis::Detectors;
use tapline_ingest::import::{ImportOptions, ImportOutcome, import_file};
use tapline_record::time::now_nanos as now_ns;

/// Runs the command. Cancelling (Ctrl-C) stops at the next batch and rolls the current file
/// back; files imported before it stay.
pub fn run(args: &ImportArgs, ctx: &mut Ctx<'_>) -> Result<Status> {
    let mut store = ctx.cases.open(&args.db)?;
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
        let bar = if ctx.verbosity.quiet || !ctx.progress {
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
        let outcome = import_file(&mut store, file, &opts, ctx.cancel, &mut |p| {
            bar.set_length(p.bytes_total);
            bar.set_position(p.bytes_done);
            bar.set_message(format!(
                "{} packets, {} transactions",
                p.packets, p.transactions
            ));
        });
        bar.finish_and_clear();
        match outcome? {
            ImportOutcome::Imported(s) => writeln!(
                ctx.err,
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
            } => writeln!(
                ctx.err,
                "{}: already in this case (source {source_id}, imported as {name}, {transactions} transactions); skipped",
                file.display()
            ),
            ImportOutcome::Cancelled => {
                writeln!(
                    ctx.err,
                    "{}: cancelled; the case is unchanged by it",
                    file.display()
                )?;
                return Ok(Status::Cancelled);
            }
        }?;
    }
    // Automatic block rules see what the imports found.
    let auto = tapline_enforce::auto::apply(&mut store, now_ns())?;
    if !auto.added.is_empty() || !auto.extended.is_empty() {
        writeln!(
            ctx.err,
            "automatic block rules: {} added, {} extended (tapline block list)",
            auto.added.len(),
            auto.extended.len()
        )?;
    }
    // What the imports found goes to the case's alert destinations, if it has any (a hub
    // holding the case sends it at its next round instead).
    if !ctx.cases.is_held(&args.db) && !store.alert_sinks()?.is_empty() {
        let sent = tapline_alerts::dispatch(&mut store)?;
        writeln!(
            ctx.err,
            "alerts sent: {} new, {} update(s)",
            sent.new, sent.updated
        )?;
        for f in &sent.failed {
            writeln!(
                ctx.err,
                "alert not delivered (`tapline alerts send` retries): {f}"
            )?;
        }
    }
    Ok(Status::Done)
}
