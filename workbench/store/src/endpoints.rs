//! The `endpoints` and `findings` tables as the CLI and GUI read them, and the upsert that
//! discovery uses to merge what a new import saw into what the case already knows.

use crate::{CaseStore, StoreError};
use duckdb::params;

/// One endpoint of the inventory.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Endpoint {
    /// Row id.
    pub id: i64,
    /// Host (authority) it was seen on.
    pub host: String,
    /// Method.
    pub method: String,
    /// Path template, `/users/{userId}`.
    pub template: String,
    /// First request time, ns.
    pub first_seen_ns: i64,
    /// Last request time, ns.
    pub last_seen_ns: i64,
    /// Transactions seen.
    pub count: u64,
    /// Statistics and schemas (JSON), as discovery wrote them.
    pub detail: Option<serde_json::Value>,
}

/// What one import saw of an endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointObservation {
    /// Host.
    pub host: String,
    /// Method.
    pub method: String,
    /// Template.
    pub template: String,
    /// Earliest request, ns.
    pub first_seen_ns: i64,
    /// Latest request, ns.
    pub last_seen_ns: i64,
    /// Transactions.
    pub count: u64,
    /// Status code → count.
    pub statuses: std::collections::BTreeMap<u16, u64>,
}

impl EndpointObservation {
    /// Adds another observation of the same endpoint.
    pub fn absorb(&mut self, o: EndpointObservation) {
        self.first_seen_ns = self.first_seen_ns.min(o.first_seen_ns);
        self.last_seen_ns = self.last_seen_ns.max(o.last_seen_ns);
        self.count += o.count;
        for (code, n) in o.statuses {
            *self.statuses.entry(code).or_default() += n;
        }
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Finding {
    /// Row id.
    pub id: i64,
    /// What was found (`sqli`, `bola`, `credential_stuffing`, …).
    pub kind: String,
    /// `info` … `critical`.
    pub severity: String,
    /// 0..1.
    pub confidence: f64,
    /// Endpoint, if one.
    pub endpoint_id: Option<i64>,
    /// Actor address.
    pub actor_ip: Option<String>,
    /// Actor principal.
    pub actor_user: Option<String>,
    /// First evidence, ns.
    pub first_seen_ns: i64,
    /// Last evidence, ns.
    pub last_seen_ns: i64,
    /// Occurrences.
    pub count: u64,
    /// One line for people.
    pub title: String,
}

/// The inventory merge inside the caller's DuckDB transaction (see
/// [`CaseStore::merge_endpoints`]); `existing` is the inventory before it.
pub fn merge_endpoints(
    tx: &duckdb::Transaction<'_>,
    existing: &[Endpoint],
    seen: &[EndpointObservation],
) -> Result<(), duckdb::Error> {
    let mut next: i64 =
        tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM endpoints", [], |r| {
            r.get(0)
        })?;
    for o in seen {
        let known = existing
            .iter()
            .find(|e| e.host == o.host && e.method == o.method && e.template == o.template);
        let mut statuses: std::collections::BTreeMap<String, u64> = known
            .and_then(|e| e.detail.as_ref())
            .and_then(|d| d.get("statuses"))
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .unwrap_or_default();
        for (code, n) in &o.statuses {
            *statuses.entry(code.to_string()).or_default() += n;
        }
        let detail = serde_json::json!({ "statuses": statuses }).to_string();
        match known {
            Some(e) => {
                tx.execute(
                    "UPDATE endpoints SET count = count + ?, first_seen_ns = least(first_seen_ns, ?), \
                     last_seen_ns = greatest(last_seen_ns, ?), detail = ? WHERE id = ?",
                    params![o.count, o.first_seen_ns, o.last_seen_ns, detail, e.id],
                )?;
            }
            None => {
                tx.execute(
                    "INSERT INTO endpoints (id, host, method, template, first_seen_ns, last_seen_ns, count, detail) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    params![next, o.host, o.method, o.template, o.first_seen_ns, o.last_seen_ns, o.count, detail],
                )?;
                next += 1;
            }
        }
    }
    Ok(())
}

impl CaseStore {
    /// Every endpoint, by host, template, method.
    pub fn endpoints(&self) -> Result<Vec<Endpoint>, StoreError> {
        self.select(
            "SELECT id, host, method, template, first_seen_ns, last_seen_ns, count, CAST(detail AS VARCHAR) \
                 FROM endpoints ORDER BY host, template, method",
            &[],
            |r| {
                let detail: Option<String> = r.get(7)?;
                Ok(Endpoint {
                    id: r.get(0)?,
                    host: r.get(1)?,
                    method: r.get(2)?,
                    template: r.get(3)?,
                    first_seen_ns: r.get(4)?,
                    last_seen_ns: r.get(5)?,
                    count: r.get(6)?,
                    detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
                })
            },
        )
    }

    /// Merges observations into the inventory: new endpoints are added, known ones have their
    /// counts, times and status statistics extended.
    pub fn merge_endpoints(&mut self, seen: &[EndpointObservation]) -> Result<(), StoreError> {
        let existing = self.endpoints()?;
        self.atomically(|tx| merge_endpoints(tx, &existing, seen))
    }

    /// Every finding, most severe and most recent first.
    pub fn findings(&self) -> Result<Vec<Finding>, StoreError> {
        self.select(
            "SELECT id, kind, severity, confidence, endpoint_id, actor_ip, actor_user, first_seen_ns, last_seen_ns, count, title \
                 FROM findings ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 WHEN 'low' THEN 3 ELSE 4 END, last_seen_ns DESC",
            &[],
            |r| {
                Ok(Finding {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    severity: r.get(2)?,
                    confidence: r.get(3)?,
                    endpoint_id: r.get(4)?,
                    actor_ip: r.get(5)?,
                    actor_user: r.get(6)?,
                    first_seen_ns: r.get(7)?,
                    last_seen_ns: r.get(8)?,
                    count: r.get(9)?,
                    title: r.get(10)?,
                })
            },
        )
    }
}
