//! `tapline alerts`: where a case's findings are sent as they are found.

use crate::cli::{AlertKindArg, AlertsAddArgs, AlertsCommand, ListFormat, SeverityArg};
use crate::commands::Cases;
use anyhow::{Context, Result, bail};
use std::io::Write;
use tapline_store::alerts::SinkKind;
use tapline_store::endpoints::Severity;

/// Runs an `alerts` subcommand.
pub fn run(cmd: &AlertsCommand, cases: &Cases, out: &mut dyn Write) -> Result<()> {
    match cmd {
        AlertsCommand::Add(a) => add(a, cases, out),
        AlertsCommand::List(a) => {
            let sinks = cases.open_existing(&a.db)?.alert_sinks()?;
            if a.format == ListFormat::Json {
                writeln!(out, "{}", serde_json::to_string_pretty(&sinks)?)?;
                return Ok(());
            }
            writeln!(out, "{:>4}  {:<8} {:<9} TARGET", "ID", "KIND", "SEVERITY")?;
            for s in sinks {
                let signed = if s.secret.is_some() { " (signed)" } else { "" };
                let sev = format!("{}+", s.min_severity.name());
                let kind = s.kind.name();
                writeln!(out, "{:>4}  {kind:<8} {sev:<9} {}{signed}", s.id, s.target)?;
            }
            Ok(())
        }
        AlertsCommand::Remove(a) => {
            if cases.open_existing(&a.db)?.remove_alert_sink(a.id)? {
                writeln!(out, "removed alert destination {}", a.id)?;
                Ok(())
            } else {
                bail!(
                    "no alert destination {} in {} (see `tapline alerts list`)",
                    a.id,
                    a.db.display()
                )
            }
        }
        AlertsCommand::Send(a) => {
            let mut case = cases.open_existing(&a.db)?;
            let sent = tapline_alerts::dispatch(&mut case)?;
            writeln!(
                out,
                "sent {} new alert(s), {} update(s)",
                sent.new, sent.updated
            )?;
            if sent.failed.is_empty() {
                Ok(())
            } else {
                bail!("{}", sent.failed.join("\n"))
            }
        }
    }
}

fn add(a: &AlertsAddArgs, cases: &Cases, out: &mut dyn Write) -> Result<()> {
    let kind = match a.kind {
        AlertKindArg::Syslog => SinkKind::Syslog,
        AlertKindArg::Webhook => SinkKind::Webhook,
        AlertKindArg::Ecs => SinkKind::Ecs,
    };
    tapline_alerts::check_target(kind, &a.target)
        .map_err(|e| anyhow::anyhow!("{:?}: {e}", a.target))?;
    if a.secret.is_some() && kind != SinkKind::Webhook {
        bail!("only webhooks are signed: drop --secret-env/--secret-file");
    }
    let min = severity(a.min_severity);
    let id = cases
        .open(&a.db)?
        .add_alert_sink(kind, &a.target, min, a.secret.as_deref())?;
    writeln!(
        out,
        "alert destination {id}: {} {} gets findings of severity {} and above",
        kind.name(),
        a.target,
        min.name()
    )?;
    Ok(())
}

fn severity(s: SeverityArg) -> Severity {
    match s {
        SeverityArg::Info => Severity::Info,
        SeverityArg::Low => Severity::Low,
        SeverityArg::Medium => Severity::Medium,
        SeverityArg::High => Severity::High,
        SeverityArg::Critical => Severity::Critical,
    }
}

/// The webhook secret `--secret-env` or `--secret-file` names, read in this process.
pub fn read_secret(a: &AlertsAddArgs) -> Result<Option<String>> {
    let secret = match (&a.secret_env, &a.secret_file) {
        (Some(var), _) => Some(
            std::env::var(var)
                .with_context(|| format!("--secret-env {var}: the variable is not set"))?,
        ),
        (None, Some(file)) => Some(
            std::fs::read_to_string(file)
                .with_context(|| format!("--secret-file {}", file.display()))?
                .trim_end()
                .to_owned(),
        ),
        (None, None) => None,
    };
    if secret.as_deref().is_some_and(str::is_empty) {
        bail!("the webhook secret is empty");
    }
    Ok(secret)
}
