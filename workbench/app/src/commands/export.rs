//! `tapline export openapi|har|jsonl|parquet --db CASE [-o FILE]`.

use crate::cli::{ExportArgs, ExportKind};
use crate::commands::{Ctx, Status};
use anyhow::{Context, Result, bail};
use std::io::{BufWriter, Write};

/// Runs the command: to `-o FILE`, else to `out`.
pub fn run(args: &ExportArgs, out: &mut dyn Write, ctx: &mut Ctx<'_>) -> Result<Status> {
    let store = ctx.cases.open_existing(&args.db)?;
    if args.kind == ExportKind::Parquet {
        let Some(path) = &args.output else {
            bail!("Parquet is binary: give an output file with -o FILE.parquet");
        };
        let n = tapline_export::transactions::write_parquet(&store, path)?;
        writeln!(ctx.err, "{}: {n} transactions", path.display())?;
        return Ok(Status::Done);
    }
    let sink: Box<dyn Write + '_> = match &args.output {
        Some(p) => Box::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        ),
        None => Box::new(out),
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
    Ok(Status::Done)
}
