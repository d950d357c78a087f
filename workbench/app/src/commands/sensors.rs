//! `tapline serve` and `tapline sensors add|list|revoke`.

use crate::cli::{
    IdentityArg, ListArgs, ListFormat, SensorsAddArgs, SensorsCommand, ServeArgs, Verbosity,
};
use crate::commands::{Cases, Connect};
use crate::control::ControlServer;
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::PathBuf;
use tapline_hub::{Hub, HubEvent};
use tapline_link::HubIdentity;

/// The identity directory: the flag (or `$TAPLINE_IDENTITY`), else the user's data directory.
pub fn identity_dir(arg: &IdentityArg) -> Result<PathBuf> {
    if let Some(d) = &arg.identity {
        return Ok(d.clone());
    }
    Ok(data_dir()?.join("identity"))
}

/// Tapline's data directory: `$XDG_DATA_HOME/tapline`, else `~/.local/share/tapline`.
pub fn data_dir() -> Result<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .context("neither XDG_DATA_HOME nor HOME is set: cannot place Tapline's data directory")?;
    Ok(data.join("tapline"))
}

fn load_identity(arg: &IdentityArg) -> Result<HubIdentity> {
    let dir = identity_dir(arg)?;
    HubIdentity::load_or_create(&dir)
        .with_context(|| format!("cannot use the workbench identity in {}", dir.display()))
}

/// `tapline sensors …`.
pub fn run(cmd: &SensorsCommand, cases: &Cases, out: &mut dyn Write) -> Result<()> {
    match cmd {
        SensorsCommand::Add(a) => add(a, cases, out),
        SensorsCommand::List(a) => list(a, cases, out),
        SensorsCommand::Revoke(a) => {
            if cases.open_existing(&a.db)?.revoke_sensor(&a.name)? {
                writeln!(
                    out,
                    "revoked sensor {:?}: the hub refuses it from now on (a connected one at its next batch)",
                    a.name
                )?;
                Ok(())
            } else {
                bail!(
                    "no enrolled sensor named {:?} in {}",
                    a.name,
                    a.db.display()
                )
            }
        }
    }
}

fn add(a: &SensorsAddArgs, cases: &Cases, out: &mut dyn Write) -> Result<()> {
    let identity = load_identity(&a.identity)?;
    let mut store = cases.open(&a.db)?;
    let done = tapline_hub::enrol::enrol(&mut store, &identity, &a.name, &a.hub, &a.output)?;
    writeln!(out, "{done}")?;
    Ok(())
}

/// Heartbeats older than this many seconds mean the sensor is gone, whatever the last one
/// said (sensors beat every 5 s by default).
const GONE_AFTER_S: i64 = 60;

/// The sensor's link as of its last heartbeat, unless that is too old to still hold.
fn uplink_state(r: &tapline_store::sensors::SensorRow) -> String {
    if r.revoked_at.is_some() {
        return "revoked".to_owned();
    }
    let said = r.stats.as_ref().and_then(|s| s["uplink"].as_str());
    match (said, r.seconds_since_seen) {
        (None, _) => "never connected".to_owned(),
        (Some(_), Some(age)) if age > GONE_AFTER_S => format!("gone (silent for {age} s)"),
        (Some(state), _) => state.to_owned(),
    }
}

fn list(a: &ListArgs, cases: &Cases, out: &mut dyn Write) -> Result<()> {
    let rows = cases.open_existing(&a.db)?.sensors()?;
    if a.format == ListFormat::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    let nw = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(4);
    writeln!(
        out,
        "{:<nw$} {:<19} {:<8} {:>10} {:>8} {:>10} {:>7} {:>8} {:>10}  UPLINK",
        "NAME", "LAST SEEN", "VERSION", "PACKETS", "DROPS", "RECORDS", "SPOOL", "LOST", "STORED"
    )?;
    for r in &rows {
        let s = r.stats.as_ref();
        let n = |k: &str| s.and_then(|s| s[k].as_u64());
        let num = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
        let drops = match (n("kernel_drops"), n("interface_drops")) {
            (Some(k), Some(i)) => Some(k + i),
            _ => None,
        };
        let uplink = uplink_state(r);
        writeln!(
            out,
            "{:<nw$} {:<19} {:<8} {:>10} {:>8} {:>10} {:>7} {:>8} {:>10}  {}",
            r.name,
            r.last_seen_at.as_deref().unwrap_or("never"),
            r.version.as_deref().unwrap_or("-"),
            num(n("packets")),
            num(drops),
            num(n("records")),
            num(n("spool_batches")),
            num(n("lost_records")),
            r.transactions,
            uplink
        )?;
    }
    Ok(())
}

/// `tapline serve`: runs the hub until Ctrl-C.
pub fn serve(a: &ServeArgs, verbosity: Verbosity) -> Result<()> {
    let identity = load_identity(&a.identity)?;
    let store = Cases::direct().open(&a.db)?;
    let verbose = verbosity.verbose > 0;
    let hub = Hub::start(
        store,
        tapline_hub::Recovery::Reopen,
        &identity,
        a.listen,
        if a.store_only {
            tapline_hub::LiveAnalysis::Off
        } else {
            tapline_hub::LiveAnalysis::On {
                every: std::time::Duration::from_millis(a.analysis_every_ms),
            }
        },
        move |e| log(&e, verbose),
    )?;
    let cases = hub.cases();
    let agents = a
        .agents_listen
        .map(|listen| agents_server(a, &identity, listen, hub.cases()))
        .transpose()?;
    let connect: Connect = Box::new(move || cases.connect());
    let control = ControlServer::start(&a.db, Cases::holding(&a.db, connect)?, || {})?;
    eprintln!(
        "tapline: hub listening on {} (udp) for sensors of {}; workbench CA sha256 {}",
        hub.local_addr(),
        a.db.display(),
        identity.fingerprint()?
    );
    let (tx, rx) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .context("cannot install the signal handler")?;
    let _ = rx.recv();
    eprintln!("tapline: hub stopping");
    drop(agents);
    drop(control);
    hub.stop()
}

/// The decision server for enforcement agents, on its own connection to the case.
fn agents_server(
    a: &ServeArgs,
    identity: &HubIdentity,
    listen: std::net::SocketAddr,
    cases: tapline_hub::CaseConnections,
) -> Result<tapline_decisions::DecisionServer> {
    let mut names = a.agents_name.clone();
    if names.is_empty() {
        names = vec!["localhost".into(), "127.0.0.1".into()];
        if !listen.ip().is_unspecified() && !listen.ip().is_loopback() {
            names.push(listen.ip().to_string());
        }
    }
    let (cert_pem, key_pem) = identity
        .issue_server_cert(&names)
        .context("cannot issue the agents' HTTPS certificate")?;
    let server = tapline_decisions::DecisionServer::start(
        tapline_decisions::Config {
            listen,
            cert_pem,
            key_pem,
            reload_every: std::time::Duration::from_millis(a.agents_reload_ms),
        },
        Box::new(move || cases.connect().map_err(Into::into)),
    )?;
    eprintln!(
        "tapline: decisions for agents on https://{} (certificate for {}; agents trust {})",
        server.local_addr(),
        names.join(", "),
        identity_dir(&a.identity)?.join("ca.pem").display()
    );
    Ok(server)
}

fn log(e: &HubEvent, verbose: bool) {
    match e {
        HubEvent::Connected {
            sensor,
            peer,
            stored_through,
        } => eprintln!(
            "tapline: hub: sensor {sensor:?} connected from {peer} (resuming after batch {stored_through})"
        ),
        HubEvent::Batch {
            sensor,
            seq,
            records,
            new,
            ..
        } if verbose => eprintln!(
            "tapline: hub: {sensor:?} batch {seq}: {records} records{}",
            if *new { "" } else { " (already stored)" }
        ),
        HubEvent::Batch { .. } => {}
        HubEvent::Disconnected {
            sensor,
            peer,
            error,
        } => eprintln!(
            "tapline: hub: {} at {peer} disconnected{}",
            sensor.as_deref().unwrap_or("a sensor"),
            error.as_ref().map_or(String::new(), |e| format!(": {e}"))
        ),
        HubEvent::Refused { peer, reason } => {
            eprintln!("tapline: hub: refused {peer}: {reason}");
        }
        HubEvent::CaseFailed { reason } => eprintln!(
            "tapline: hub: the case failed: {reason}; nothing more is acknowledged (sensors keep their records) until it can be reopened — free space on its disk"
        ),
        HubEvent::CaseRecovered => eprintln!("tapline: hub: the case is back; storing again"),
        HubEvent::Analysed(a) if a.new_findings > 0 || verbose => eprintln!(
            "tapline: hub: live analysis flushed: {} new finding(s), {} updated ({} analysed so far, {} waiting)",
            a.new_findings, a.updated_findings, a.records, a.waiting
        ),
        HubEvent::Analysed(_) => {}
        HubEvent::Alerted {
            new,
            updated,
            failed,
        } => {
            if new + updated > 0 {
                eprintln!("tapline: hub: alerts sent: {new} new, {updated} update(s)");
            }
            for f in failed {
                eprintln!("tapline: hub: alert not delivered (retried): {f}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapline_store::sensors::SensorRow;

    fn row(uplink: Option<&str>, age: Option<i64>, revoked: bool) -> SensorRow {
        SensorRow {
            id: 1,
            name: "edge-1".into(),
            cert_fingerprint: String::new(),
            enrolled_at: String::new(),
            revoked_at: revoked.then(String::new),
            last_seen_at: None,
            version: None,
            stats: uplink.map(|u| serde_json::json!({ "uplink": u })),
            batches: 0,
            transactions: 0,
            seconds_since_seen: age,
        }
    }

    #[test]
    fn a_sensor_silent_for_long_is_gone_whatever_its_last_heartbeat_said() {
        assert_eq!(
            uplink_state(&row(Some("connected"), Some(3), false)),
            "connected"
        );
        assert_eq!(
            uplink_state(&row(Some("connected"), Some(600), false)),
            "gone (silent for 600 s)"
        );
        assert_eq!(uplink_state(&row(None, None, false)), "never connected");
        assert_eq!(
            uplink_state(&row(Some("connected"), Some(1), true)),
            "revoked"
        );
    }
}
