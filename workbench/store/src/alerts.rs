//! Where alerts go and what each destination was already sent: findings at or above a sink's
//! severity are sent once when new, then as updates while their count grows (at most one
//! update per [`UPDATE_EVERY_S`] per finding and sink), so one ongoing attack is one alert plus
//! updates. Delivery itself is `tapline-alerts`'.

use crate::endpoints::Finding;
use crate::endpoints::Severity;
use crate::{CaseStore, StoreError};
use duckdb::params;

/// Seconds between two updates of one finding to one sink.
pub const UPDATE_EVERY_S: i64 = 60;

/// What kind of destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkKind {
    /// RFC 5424 over UDP, TCP (octet-counted) or a local socket (the journal, `/dev/log`).
    Syslog,
    /// JSON POSTed to a URL, signed with HMAC-SHA256.
    Webhook,
    /// ECS JSON lines appended to a file a SIEM shipper tails.
    Ecs,
}

impl SinkKind {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            SinkKind::Syslog => "syslog",
            SinkKind::Webhook => "webhook",
            SinkKind::Ecs => "ecs",
        }
    }

    /// The kind a stored name stands for.
    pub fn from_name(name: &str) -> Option<SinkKind> {
        [SinkKind::Syslog, SinkKind::Webhook, SinkKind::Ecs]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

/// A destination for alerts, as configured for the case.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AlertSink {
    /// Row id.
    pub id: i64,
    /// What kind.
    pub kind: SinkKind,
    /// Where: `udp://HOST:PORT`, `tcp://HOST:PORT`, `unix:///dev/log`; a URL; a file path.
    pub target: String,
    /// Findings below this are not sent.
    pub min_severity: Severity,
    /// A webhook's HMAC key (never printed).
    #[serde(skip)]
    pub secret: Option<String>,
}

/// Why a finding is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    /// First sight.
    New,
    /// It went on: its count grew since it was last sent.
    Updated,
}

/// One alert to send.
#[derive(Clone, Debug)]
pub struct PendingAlert {
    /// New or an update.
    pub event: AlertEvent,
    /// The finding as it stands.
    pub finding: Finding,
    /// Its endpoint, `GET host/path/{id}`, when it has one.
    pub endpoint: Option<String>,
}

impl CaseStore {
    /// Adds a destination; returns its id.
    pub fn add_alert_sink(
        &mut self,
        kind: SinkKind,
        target: &str,
        min_severity: Severity,
        secret: Option<&str>,
    ) -> Result<i64, StoreError> {
        self.atomically(|tx| {
            let id: i64 =
                tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM alert_sinks", [], |r| {
                    r.get(0)
                })?;
            tx.execute(
                "INSERT INTO alert_sinks (id, kind, target, min_severity, secret) VALUES (?, ?, ?, ?, ?)",
                params![id, kind.name(), target, min_severity.name(), secret],
            )?;
            Ok(id)
        })
    }

    /// The case's destinations, by id.
    pub fn alert_sinks(&self) -> Result<Vec<AlertSink>, StoreError> {
        let rows = self.select(
            "SELECT id, kind, target, min_severity, secret FROM alert_sinks ORDER BY id",
            &[],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            },
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, kind, target, min, secret)| {
                Some(AlertSink {
                    id,
                    kind: SinkKind::from_name(&kind)?,
                    target,
                    min_severity: Severity::from_name(&min)?,
                    secret,
                })
            })
            .collect())
    }

    /// Removes a destination and what it was sent; false when there was none.
    pub fn remove_alert_sink(&mut self, id: i64) -> Result<bool, StoreError> {
        self.atomically(|tx| {
            tx.execute("DELETE FROM alerts_sent WHERE sink_id = ?", [id])?;
            Ok(tx.execute("DELETE FROM alert_sinks WHERE id = ?", [id])? > 0)
        })
    }

    /// What `sink` has not been sent yet: findings at or above its severity that are new to
    /// it, and those whose count grew since it was last sent (once [`UPDATE_EVERY_S`] has
    /// passed), oldest first.
    pub fn pending_alerts(&self, sink: &AlertSink) -> Result<Vec<PendingAlert>, StoreError> {
        let sent: std::collections::HashMap<i64, (u64, bool)> = self
            .select(
                &format!(
                    "SELECT finding_id, count, sent_at < current_timestamp - INTERVAL {UPDATE_EVERY_S} SECOND \
                     FROM alerts_sent WHERE sink_id = ?"
                ),
                &[&sink.id],
                |r| Ok((r.get::<_, i64>(0)?, (r.get::<_, u64>(1)?, r.get::<_, bool>(2)?))),
            )?
            .into_iter()
            .collect();
        // Labels only: the endpoints' profiles (their detail JSON) are not needed here.
        let endpoints: std::collections::HashMap<i64, String> = self
            .select(
                "SELECT id, method || ' ' || host || template FROM endpoints",
                &[],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
            )?
            .into_iter()
            .collect();
        let mut out: Vec<PendingAlert> = self
            .findings()?
            .into_iter()
            .filter(|f| f.severity >= sink.min_severity)
            .filter_map(|f| {
                let event = match sent.get(&f.id) {
                    None => AlertEvent::New,
                    Some(&(count, due)) if due && f.count > count => AlertEvent::Updated,
                    Some(_) => return None,
                };
                let endpoint = f.endpoint_id.and_then(|e| endpoints.get(&e).cloned());
                Some(PendingAlert {
                    event,
                    finding: f,
                    endpoint,
                })
            })
            .collect();
        out.sort_by_key(|a| a.finding.id);
        Ok(out)
    }

    /// Records that `sink` was sent `finding` at `count`.
    pub fn mark_alert_sent(
        &mut self,
        sink: i64,
        finding: i64,
        count: u64,
        event: AlertEvent,
    ) -> Result<(), StoreError> {
        let update = u32::from(event == AlertEvent::Updated);
        self.atomically(|tx| {
            tx.execute(
                "INSERT INTO alerts_sent (sink_id, finding_id, count, updates) VALUES (?, ?, ?, 0) \
                 ON CONFLICT (sink_id, finding_id) DO UPDATE SET count = excluded.count, \
                 updates = alerts_sent.updates + ?, sent_at = now()",
                params![sink, finding, count, update],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::{Actor, FindingKind, NewFinding};
    use crate::sources::Derived;

    fn finding(severity: Severity, count: u64) -> NewFinding {
        NewFinding {
            kind: FindingKind::CredentialStuffing,
            severity,
            confidence: 1.0,
            endpoint: None,
            first_seen_ns: 1,
            last_seen_ns: 2,
            count,
            evidence: vec![1],
            title: "stuffing".into(),
            detail: None,
            actor: Actor {
                ip: Some("10.0.0.9".into()),
                ..Actor::default()
            },
        }
    }

    #[test]
    fn a_finding_is_sent_once_then_only_as_it_grows() {
        let dir = tempfile::tempdir().unwrap();
        let mut case = CaseStore::open(&dir.path().join("c.duckdb")).unwrap();
        let id = case
            .add_alert_sink(
                SinkKind::Syslog,
                "udp://127.0.0.1:514",
                Severity::High,
                None,
            )
            .unwrap();
        let sink = case.alert_sinks().unwrap().remove(0);
        assert_eq!((sink.id, sink.kind), (id, SinkKind::Syslog));
        let derived = Derived {
            judged: vec![finding(Severity::Critical, 10), {
                let mut low = finding(Severity::Low, 3);
                low.kind = FindingKind::NewEndpoint;
                low
            }],
            ..Derived::default()
        };
        case.merge_live(&derived).unwrap();
        let pending = case.pending_alerts(&sink).unwrap();
        assert_eq!(pending.len(), 1, "the low finding is below the sink");
        assert_eq!(pending[0].event, AlertEvent::New);
        let f = &pending[0].finding;
        case.mark_alert_sent(sink.id, f.id, f.count, AlertEvent::New)
            .unwrap();
        assert!(case.pending_alerts(&sink).unwrap().is_empty());
        // The attack goes on: an update, but not before the update interval has passed.
        let more = Derived {
            judged: vec![finding(Severity::Critical, 25)],
            ..Derived::default()
        };
        case.merge_live(&more).unwrap();
        assert!(case.pending_alerts(&sink).unwrap().is_empty());
        case.atomically(|tx| {
            tx.execute(
                "UPDATE alerts_sent SET sent_at = sent_at - INTERVAL 2 MINUTE",
                [],
            )
        })
        .unwrap();
        let pending = case.pending_alerts(&sink).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            (pending[0].event, pending[0].finding.count),
            (AlertEvent::Updated, 25)
        );
        assert!(case.remove_alert_sink(id).unwrap());
        assert!(case.alert_sinks().unwrap().is_empty());
    }
}
