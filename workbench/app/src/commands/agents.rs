//! `tapline agents …`: the enforcement agents allowed to fetch decisions, and their keys.

use crate::cli::{AgentsCommand, ListFormat};
use crate::commands::Cases;
use anyhow::{Context, Result, bail};
use std::io::Write;

/// Runs an `agents` subcommand.
pub fn run(cmd: &AgentsCommand, cases: &Cases, out: &mut dyn Write) -> Result<()> {
    match cmd {
        AgentsCommand::Add(a) => {
            let name = a.name.trim();
            if name.is_empty() || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
                bail!(
                    "agent name {:?}: use letters, digits, dashes (edge-nginx, fw-1)",
                    a.name
                );
            }
            let key = tapline_decisions::new_key()
                .map_err(|_| anyhow::anyhow!("the system's random source failed; try again"))?;
            let who = std::env::var("USER").unwrap_or_else(|_| "analyst".into());
            cases
                .open(&a.db)?
                .add_agent(name, &tapline_decisions::key_hash(&key), &who)?;
            writeln!(
                out,
                "agent {name} added; its key (shown once, keep it secret):\n{key}"
            )?;
            writeln!(
                out,
                "CrowdSec bouncers: api_url: https://HUB:PORT/ and api_key: <the key>, ca_cert_path: the workbench ca.pem.\n\
                 Proxies (auth_request, ext_authz, ForwardAuth): https://HUB:PORT/v1/authz with header X-Tapline-Key: <the key>."
            )?;
            Ok(())
        }
        AgentsCommand::List(a) => {
            let agents = cases.open_existing(&a.db)?.agents()?;
            if a.format == ListFormat::Json {
                writeln!(out, "{}", serde_json::to_string_pretty(&agents)?)?;
                return Ok(());
            }
            writeln!(
                out,
                "{:<20} {:<8} {:<20} LAST ASKED FROM",
                "NAME", "STATE", "LAST ASKED"
            )?;
            for ag in agents {
                let state = if ag.revoked_ns.is_some() {
                    "revoked"
                } else {
                    "live"
                };
                let seen = ag
                    .last_seen_ns
                    .map_or_else(|| "never".into(), crate::ui::format::time);
                writeln!(
                    out,
                    "{:<20} {state:<8} {seen:<20} {}",
                    ag.name,
                    ag.last_peer.as_deref().unwrap_or("")
                )?;
            }
            Ok(())
        }
        AgentsCommand::Revoke(a) => {
            let revoked = cases
                .open_existing(&a.db)?
                .revoke_agent(&a.name)
                .with_context(|| format!("cannot revoke agent {}", a.name))?;
            if !revoked {
                bail!(
                    "no agent {:?} with a live key in {} (see `tapline agents list`)",
                    a.name,
                    a.db.display()
                );
            }
            writeln!(out, "agent {} revoked: its next request is refused", a.name)?;
            Ok(())
        }
    }
}
