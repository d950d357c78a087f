//! `tapline export openapi|har|jsonl|parquet --db CASE [-o FILE]`.

use crate::cli::{ExportArgs, ExportKind};
use anyhow::{Context, Result, bail};
use std::io::{BufWriter, Write};
use tapline_store::CaseStore;
use tapline_store::query::TxFilter;

/// Runs the command.
pub fn run(args: &ExportArgs) -> Result<()> {
    let store = CaseStore::open(&args.db)
        .with_context(|| format!("cannot open case {}", args.db.display()))?;
    if args.kind == ExportKind::Parquet {
        let Some(out) = &args.output else {
            bail!("Parquet is binary: give an output file with -o FILE.parquet");
        };
        let n = store.export_parquet(out)?;
        eprintln!("{}: {n} transactions", out.display());
        return Ok(());
    }
    let sink: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::new(sink);
    match args.kind {
        ExportKind::Jsonl => {
            store.for_each_transaction(&TxFilter::default(), |id, tx| {
                let line =
                    serde_json::to_string(&crate::ecs::document(id, &tx)).unwrap_or_default();
                writeln!(out, "{line}").map_err(io_err)
            })?;
        }
        ExportKind::Har => {
            let mut txs = Vec::new();
            store.for_each_transaction(&TxFilter::default(), |_, tx| {
                txs.push(tx);
                Ok(())
            })?;
            crate::har::write(&txs, &mut out)?;
        }
        ExportKind::Openapi => {
            let doc = crate::openapi::document(&store)?;
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
        ExportKind::Parquet => {}
    }
    out.flush()?;
    Ok(())
}

fn io_err(e: std::io::Error) -> tapline_store::StoreError {
    tapline_store::StoreError::Io(e)
}
