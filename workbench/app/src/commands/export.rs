//! `tapline export openapi|har|jsonl|parquet --db CASE [-o FILE]`.

use crate::cli::{ExportArgs, ExportKind};
use anyhow::{Context, Result, bail};
use std::io::{BufWriter, Write};
use tapline_store::CaseStore;

/// Runs the command.
pub fn run(args: &ExportArgs) -> Result<()> {
    let store = CaseStore::open_existing(&args.db)
        .with_context(|| format!("cannot open case {}", args.db.display()))?;
    if args.kind == ExportKind::Parquet {
        let Some(out) = &args.output else {
            bail!("Parquet is binary: give an output file with -o FILE.parquet");
        };
        let n = tapline_export::transactions::write_parquet(&store, out)?;
        eprintln!("{}: {n} transactions", out.display());
        return Ok(());
    }
    let sink: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        ),
        None => Box::new(crate::terminal::Sanitized::new(std::io::stdout().lock())),
    };
    let mut out = BufWriter::new(sink);
    match args.kind {
        ExportKind::Jsonl => {
            tapline_export::transactions::write_ecs_jsonl(&store, &mut out)?;
        }
        ExportKind::Har => {
            tapline_export::transactions::write_har(&store, &mut out)?;
        }
        ExportKind::Openapi => tapline_export::transactions::write_openapi(&store, &mut out)?,
        ExportKind::Parquet => {}
    }
    out.flush()?;
    Ok(())
}
