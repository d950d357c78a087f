//! `tapline endpoints` and `tapline findings`.

use crate::cli::{FindingsArgs, ListArgs, ListFormat};
use crate::commands::{Cases, Status};
use anyhow::Result;
use std::io::Write;
use tapline_analysis::actor::{ActorAttacks, attacks_by_actor};
use tapline_record::time::rfc3339_nanos;

/// Prints the inventory.
pub fn endpoints(args: &ListArgs, cases: &Cases, out: &mut dyn Write) -> Result<()> {
    let eps = cases.open_existing(&args.db)?.endpoints()?;
    match args.format {
        ListFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&eps)?)?,
        ListFormat::Table => {
            let hw = eps.iter().map(|e| e.host.len()).max().unwrap_or(0).max(4);
            let pw = eps
                .iter()
                .map(|e| e.template.len())
                .max()
                .unwrap_or(0)
                .max(4);
            writeln!(
                out,
                "{:<7} {:<hw$} {:<pw$} {:>8}  last seen",
                "METHOD", "HOST", "PATH", "COUNT"
            )?;
            for e in &eps {
                writeln!(
                    out,
                    "{:<7} {:<hw$} {:<pw$} {:>8}  {}",
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

/// Prints the findings, or with `--by-actor` the attacks per actor.
pub fn findings(args: &FindingsArgs, cases: &Cases, out: &mut dyn Write) -> Result<()> {
    let fs = cases.open_existing(&args.list.db)?.findings()?;
    if args.by_actor {
        return by_actor(&attacks_by_actor(&fs), args.list.format, out);
    }
    match args.list.format {
        ListFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&fs)?)?,
        ListFormat::Table => {
            writeln!(
                out,
                "{:<9} {:<22} {:<28} {:>6}  title",
                "SEVERITY", "KIND", "ACTOR", "COUNT"
            )?;
            for f in &fs {
                writeln!(
                    out,
                    "{:<9} {:<22} {:<28} {:>6}  {}",
                    f.severity,
                    f.kind,
                    actor_cell(f),
                    f.count,
                    f.title
                )?;
            }
        }
    }
    Ok(())
}

fn by_actor(groups: &[ActorAttacks], format: ListFormat, out: &mut dyn Write) -> Result<()> {
    match format {
        ListFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(groups)?)?,
        ListFormat::Table => {
            let aw = groups
                .iter()
                .map(|g| g.label.len())
                .max()
                .unwrap_or(0)
                .max(5);
            writeln!(
                out,
                "{:<aw$} {:<9} {:>8} {:>8}  {:<30}  kinds",
                "ACTOR", "SEVERITY", "FINDINGS", "REQUESTS", "FIRST SEEN → LAST SEEN"
            )?;
            for g in groups {
                let kinds: Vec<String> = g
                    .kinds
                    .iter()
                    .map(|(k, n)| {
                        if *n > 1 {
                            format!("{k}×{n}")
                        } else {
                            k.clone()
                        }
                    })
                    .collect();
                let first = rfc3339_nanos(g.first_seen_ns);
                let last = rfc3339_nanos(g.last_seen_ns);
                writeln!(
                    out,
                    "{:<aw$} {:<9} {:>8} {:>8}  {} → {}  {}",
                    g.label,
                    g.severity,
                    g.findings.len(),
                    g.requests,
                    first.get(..19).unwrap_or(&first),
                    last.get(11..19).unwrap_or(&last),
                    kinds.join(", ")
                )?;
            }
        }
    }
    Ok(())
}

/// `user@ip`, `key…@ip`, `ip`, or `-`.
fn actor_cell(f: &tapline_store::endpoints::Finding) -> String {
    let who = f
        .actor_user
        .as_deref()
        .or(f.actor_key.as_deref())
        .or(f.actor_session.as_deref());
    match (who, f.actor_ip.as_deref()) {
        (Some(w), Some(ip)) => format!("{w}@{ip}"),
        (Some(w), None) => w.to_owned(),
        (None, Some(ip)) => ip.to_owned(),
        (None, None) => "-".to_owned(),
    }
}

/// Compares an OpenAPI document with the inventory ([`Status::Differs`] when they differ).
pub fn diff(args: &crate::cli::DiffArgs, cases: &Cases, out: &mut dyn Write) -> Result<Status> {
    let doc = tapline_export::spec_diff::load(&args.spec)?;
    let store = cases.open_existing(&args.db)?;
    let report = tapline_export::spec_diff::diff(&doc, &store.endpoints()?)?;
    match args.format {
        ListFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?,
        ListFormat::Table => {
            writeln!(
                out,
                "{} documented operations, {} observed endpoints",
                report.documented, report.observed
            )?;
            for s in &report.shadow {
                writeln!(out, "shadow  {s}  (seen, not documented)")?;
            }
            for z in &report.zombie {
                writeln!(out, "zombie  {z}  (documented, never seen)")?;
            }
            for d in &report.drift {
                writeln!(out, "drift   {}  {}: {}", d.endpoint, d.kind, d.detail)?;
            }
            if report.is_clean() {
                writeln!(out, "no differences")?;
            }
        }
    }
    Ok(if report.is_clean() {
        Status::Done
    } else {
        Status::Differs
    })
}
