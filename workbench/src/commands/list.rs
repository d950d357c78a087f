//! `tapline endpoints` and `tapline findings`.

use crate::cli::{ListArgs, ListFormat};
use crate::jsonl::rfc3339_nanos;
use anyhow::{Context, Result};
use std::io::Write;
use tapline_store::CaseStore;

fn open(args: &ListArgs) -> Result<CaseStore> {
    CaseStore::open(&args.db).with_context(|| format!("cannot open case {}", args.db.display()))
}

/// Prints the inventory.
pub fn endpoints(args: &ListArgs, out: &mut dyn Write) -> Result<()> {
    let eps = open(args)?.endpoints()?;
    match args.format {
        ListFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&eps)?)?,
        ListFormat::Table => {
            writeln!(
                out,
                "{:<7} {:<24} {:<44} {:>8}  last seen",
                "METHOD", "HOST", "PATH", "COUNT"
            )?;
            for e in &eps {
                writeln!(
                    out,
                    "{:<7} {:<24} {:<44} {:>8}  {}",
                    e.method,
                    e.host,
                    e.template,
                    e.count,
                    rfc3339_nanos(e.last_seen_ns)
                )?;
            }
        }
    }
    Ok(())
}

/// Prints the findings.
pub fn findings(args: &ListArgs, out: &mut dyn Write) -> Result<()> {
    let fs = open(args)?.findings()?;
    match args.format {
        ListFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&fs)?)?,
        ListFormat::Table => {
            writeln!(
                out,
                "{:<9} {:<22} {:<16} {:>6}  title",
                "SEVERITY", "KIND", "ACTOR", "COUNT"
            )?;
            for f in &fs {
                writeln!(
                    out,
                    "{:<9} {:<22} {:<16} {:>6}  {}",
                    f.severity,
                    f.kind,
                    f.actor_ip.as_deref().unwrap_or("-"),
                    f.count,
                    f.title
                )?;
            }
        }
    }
    Ok(())
}
