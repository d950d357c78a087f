//! `tapline-alerts`: findings leave the workbench for the tools security teams already run —
//! syslog (RFC 5424 over UDP or TCP, or the local journal's socket), webhooks (JSON POSTed
//! with an HMAC-SHA256 signature, retried with backoff) and ECS JSON-lines files a SIEM
//! shipper tails. Nothing here calls a cloud: destinations are the case's own
//! ([`tapline_store::alerts`]), and so is the record of what each was sent, so an ongoing
//! attack is one alert plus updates, across restarts.
//!
//! Delivery is at least once: an alert is marked sent after it arrived, so a crash between
//! the two sends it again with the same delivery id (`tapline-finding-ID-COUNT`, in the
//! webhook's `X-Tapline-Delivery` header and ECS `event.id`) for the receiver to drop.

mod deliver;
pub mod format;

pub use deliver::{SIGNATURE_HEADER, check_target};

use tapline_store::alerts::AlertEvent;
use tapline_store::{CaseStore, StoreError};

/// Why alerts could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The case could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A destination could not be opened.
    #[error("alert sink {sink} ({target}): {reason}")]
    Open {
        /// Its id.
        sink: i64,
        /// Its target.
        target: String,
        /// What went wrong.
        reason: String,
    },
}

/// What one round of sending did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// Alerts about new findings delivered.
    pub new: usize,
    /// Updates delivered.
    pub updated: usize,
    /// Destinations that failed this round, with why (their alerts wait for the next).
    pub failed: Vec<String>,
}

/// Sends every destination of the case what it has not been sent yet, marking each alert
/// sent once it arrived. A destination that fails keeps the rest of its alerts for the next
/// round; the others go on.
pub fn dispatch(case: &mut CaseStore) -> Result<Sent, StoreError> {
    let hostname = hostname();
    let mut sent = Sent::default();
    for sink in case.alert_sinks()? {
        let pending = case.pending_alerts(&sink)?;
        if pending.is_empty() {
            continue;
        }
        let mut dest = match deliver::Destination::open(&sink) {
            Ok(d) => d,
            Err(e) => {
                sent.failed.push(e.to_string());
                continue;
            }
        };
        for a in pending {
            if let Err(e) = dest.send(&a, &hostname) {
                let why = format!(
                    "alert sink {} ({} {}): {e}; {} will be sent again",
                    sink.id,
                    sink.kind.name(),
                    sink.target,
                    format::delivery_id(&a)
                );
                tracing::warn!("{why}");
                sent.failed.push(why);
                break;
            }
            case.mark_alert_sent(sink.id, a.finding.id, a.finding.count, a.event)?;
            match a.event {
                AlertEvent::New => sent.new += 1,
                AlertEvent::Updated => sent.updated += 1,
            }
        }
    }
    Ok(sent)
}

/// This machine's name, for the syslog header.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapline_store::alerts::SinkKind;
    use tapline_store::endpoints::Severity;
    use tapline_store::endpoints::{Actor, FindingKind, NewFinding};
    use tapline_store::sources::Derived;

    fn bola(case: &mut CaseStore) {
        let f = NewFinding {
            kind: FindingKind::Bola,
            severity: Severity::High,
            confidence: 1.0,
            endpoint: None,
            first_seen_ns: 1,
            last_seen_ns: 2,
            count: 12,
            evidence: vec![3],
            title: "BOLA".into(),
            detail: None,
            actor: Actor::default(),
        };
        let derived = Derived {
            findings: vec![f],
            ..Derived::default()
        };
        case.merge_live(&derived).unwrap();
    }

    /// The journal and local syslog daemons listen on a datagram socket (`/dev/log`).
    #[test]
    fn a_local_socket_gets_one_rfc5424_datagram() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("log");
        let daemon = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
        let mut case = CaseStore::open(&dir.path().join("c.duckdb")).unwrap();
        let target = format!("unix://{}", sock.display());
        case.add_alert_sink(SinkKind::Syslog, &target, Severity::High, None)
            .unwrap();
        bola(&mut case);
        assert_eq!(dispatch(&mut case).unwrap().new, 1);
        let mut buf = [0u8; 2048];
        let n = daemon.recv(&mut buf).unwrap();
        let m = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(m.starts_with("<83>1 "), "authpriv.err: {m}");
        assert!(m.contains("[tapline@32473 event=\"new\""), "{m}");
        assert_eq!(dispatch(&mut case).unwrap(), Sent::default(), "sent once");
    }

    #[test]
    fn an_ecs_file_gets_each_finding_once_and_a_dead_sink_keeps_its_alerts() {
        let dir = tempfile::tempdir().unwrap();
        let mut case = CaseStore::open(&dir.path().join("c.duckdb")).unwrap();
        let file = dir.path().join("alerts.jsonl");
        let target = file.to_str().unwrap();
        case.add_alert_sink(SinkKind::Ecs, target, Severity::Medium, None)
            .unwrap();
        // Nothing listens on this port: TCP syslog fails, and its alert waits.
        let dead = case
            .add_alert_sink(SinkKind::Syslog, "tcp://127.0.0.1:9", Severity::Info, None)
            .unwrap();
        bola(&mut case);
        let first = dispatch(&mut case).unwrap();
        assert_eq!((first.new, first.updated, first.failed.len()), (1, 0, 1));
        assert!(first.failed[0].contains("tcp://127.0.0.1:9"), "{first:?}");
        let again = dispatch(&mut case).unwrap();
        assert_eq!(
            (again.new, again.failed.len()),
            (0, 1),
            "only the dead sink retries"
        );
        let lines = std::fs::read_to_string(&file).unwrap();
        assert_eq!(lines.lines().count(), 1);
        let doc: serde_json::Value = serde_json::from_str(lines.trim()).unwrap();
        assert_eq!(doc["rule"]["name"], "bola");
        assert!(case.remove_alert_sink(dead).unwrap());
        assert_eq!(dispatch(&mut case).unwrap(), Sent::default());
    }
}
