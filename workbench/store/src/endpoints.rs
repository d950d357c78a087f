//! The `endpoints` and `findings` tables as the CLI and GUI read them, and the write of what
//! analysis derived from an import (endpoint upserts, retirements, findings).

use crate::{CaseStore, StoreError};
use duckdb::params;
pub use tapline_record::finding::{AttackFamily, FindingKind, Severity};

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
    /// Statistics and schemas as discovery wrote them (JSON text; analysis reads it).
    pub detail: Option<String>,
}

/// An endpoint as discovery wants it written: a new row (`id: None`) or an update.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointRecord {
    /// The row to update, or `None` for a new endpoint.
    pub id: Option<i64>,
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
    /// The endpoint's profile, JSON.
    pub detail: String,
}

/// A finding to record.
#[derive(Clone, Debug, PartialEq)]
pub struct NewFinding {
    /// What was found.
    pub kind: FindingKind,
    /// How bad.
    pub severity: Severity,
    /// 0..1.
    pub confidence: f64,
    /// The endpoint, resolved to its id when written.
    pub endpoint: Option<EndpointKey>,
    /// First evidence, ns.
    pub first_seen_ns: i64,
    /// Last evidence, ns.
    pub last_seen_ns: i64,
    /// Occurrences.
    pub count: u64,
    /// Transaction ids.
    pub evidence: Vec<i64>,
    /// One line for people.
    pub title: String,
    /// More, JSON.
    pub detail: Option<String>,
    /// Who did it, when a finding is about someone's requests.
    pub actor: Actor,
}

/// An endpoint's identity: host, method and path template (`GET api.test/users/{userId}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct EndpointKey {
    /// `Host` (else the server address).
    pub host: String,
    /// Request method.
    pub method: String,
    /// Path template.
    pub template: String,
}

impl std::fmt::Display for EndpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}{}", self.method, self.host, self.template)
    }
}

/// The actor behind a finding: any of address, principal, API key, session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Actor {
    /// Client address.
    pub ip: Option<String>,
    /// Principal (JWT subject, Basic user).
    pub user: Option<String>,
    /// API key (shortened, never whole).
    pub key: Option<String>,
    /// Session (shortened, never whole).
    pub session: Option<String>,
}

/// One finding.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Finding {
    /// Row id.
    pub id: i64,
    /// What was found.
    pub kind: FindingKind,
    /// How bad.
    pub severity: Severity,
    /// 0..1.
    pub confidence: f64,
    /// Endpoint, if one.
    pub endpoint_id: Option<i64>,
    /// Actor address.
    pub actor_ip: Option<String>,
    /// Actor principal.
    pub actor_user: Option<String>,
    /// Actor API key (shortened).
    pub actor_key: Option<String>,
    /// Actor session (shortened).
    pub actor_session: Option<String>,
    /// First evidence, ns.
    pub first_seen_ns: i64,
    /// Last evidence, ns.
    pub last_seen_ns: i64,
    /// Occurrences.
    pub count: u64,
    /// One line for people.
    pub title: String,
    /// Evidence transaction ids.
    pub evidence: Vec<i64>,
    /// More, JSON.
    pub detail: Option<serde_json::Value>,
}

/// Writes what an import's analysis derived inside the caller's DuckDB transaction: endpoint
/// upserts, retired endpoints, then findings (whose endpoints resolve to ids after the
/// upserts): the import's own inserted, behaviour's judged ones merged as
/// [`merge_derived`] merges them.
pub fn write_derived(
    tx: &duckdb::Transaction<'_>,
    d: &crate::sources::Derived,
) -> Result<(), duckdb::Error> {
    write_endpoints(tx, d)?;
    insert_findings(tx, &d.findings)?;
    // Judged over the case's stream, which earlier imports joined: what they found is
    // judged again, and updates rather than repeats.
    merge_findings(tx, d.judged.iter().map(|f| (f, Merge::Judged)))?;
    update_findings(tx, &d.updates).map(|_| ())
}

/// Adds `updates` to the case's findings with the same keys; returns how many it updated.
fn update_findings(
    tx: &duckdb::Transaction<'_>,
    updates: &[NewFinding],
) -> Result<usize, duckdb::Error> {
    if updates.is_empty() {
        return Ok(0);
    }
    let ids = EndpointIds::read(tx)?;
    let mut existing = existing_findings(tx)?;
    let mut updated = 0;
    for f in updates {
        if let Some(row) = existing.get_mut(&finding_key(f, ids.of(f))) {
            merge_finding(tx, f, Merge::Add, row)?;
            updated += 1;
        }
    }
    Ok(updated)
}

/// Endpoint upserts and retired endpoints.
fn write_endpoints(
    tx: &duckdb::Transaction<'_>,
    d: &crate::sources::Derived,
) -> Result<(), duckdb::Error> {
    let mut next: i64 =
        tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM endpoints", [], |r| {
            r.get(0)
        })?;
    for id in &d.retired_endpoints {
        // Folded into another endpoint by a learned parameter: say so in the audit log.
        tx.execute(
            "INSERT INTO audit_log (actor, action, detail) \
             SELECT 'discovery', 'endpoint_merged', json_object('id', id, 'host', host, 'method', method, 'template', template) \
             FROM endpoints WHERE id = ?",
            [id],
        )?;
        tx.execute("DELETE FROM endpoints WHERE id = ?", [id])?;
    }
    for e in &d.endpoints {
        match e.id {
            Some(id) => {
                tx.execute(
                    "UPDATE endpoints SET host = ?, method = ?, template = ?, first_seen_ns = ?, last_seen_ns = ?, count = ?, detail = ? WHERE id = ?",
                    params![e.host, e.method, e.template, e.first_seen_ns, e.last_seen_ns, e.count, e.detail, id],
                )?;
            }
            None => {
                tx.execute(
                    "INSERT INTO endpoints (id, host, method, template, first_seen_ns, last_seen_ns, count, detail) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    params![next, e.host, e.method, e.template, e.first_seen_ns, e.last_seen_ns, e.count, e.detail],
                )?;
                next += 1;
            }
        }
    }
    Ok(())
}

/// Evidence ids a merged finding keeps at most (the first ones, then the latest ones).
const MERGED_EVIDENCE: usize = 200;

/// Writes endpoints like [`write_derived`], and findings merged into the case's: a finding
/// with the same kind, endpoint and actor as one in the case updates it instead of repeating
/// it. Live analysis sees each record once, so what it counted since the last flush
/// (`findings`: payload attacks, data exposure) is added to the case's count; behaviour is
/// judged again over the whole retained stream at every flush, so its findings (`judged`)
/// replace the count (never lowering it: events older than the stream's horizon are gone);
/// `updates` add to findings already in the case and are never inserted. First and last
/// seen widen, evidence is joined (capped), severity, title and detail are
/// replaced. Returns (findings new, findings updated).
pub fn merge_derived(
    tx: &duckdb::Transaction<'_>,
    d: &crate::sources::Derived,
) -> Result<(usize, usize), duckdb::Error> {
    write_endpoints(tx, d)?;
    let merges = d.findings.iter().map(|f| (f, Merge::Add));
    let (new, mut updated) = merge_findings(
        tx,
        merges.chain(d.judged.iter().map(|f| (f, Merge::Judged))),
    )?;
    updated += update_findings(tx, &d.updates)?;
    Ok((new, updated))
}

/// Merges each finding into the case's with the same key, or inserts it; returns (findings
/// new, findings updated).
fn merge_findings<'f>(
    tx: &duckdb::Transaction<'_>,
    findings: impl Iterator<Item = (&'f NewFinding, Merge)>,
) -> Result<(usize, usize), duckdb::Error> {
    // One read of the keys instead of a query per finding: a live write judges hundreds.
    let ids = EndpointIds::read(tx)?;
    let mut existing = existing_findings(tx)?;
    let mut fresh = Vec::new();
    let mut updated = 0;
    for (f, how) in findings {
        match existing.get_mut(&finding_key(f, ids.of(f))) {
            Some(row) => {
                merge_finding(tx, f, how, row)?;
                updated += 1;
            }
            None => fresh.push(f.clone()),
        }
    }
    insert_findings(tx, &fresh)?;
    Ok((fresh.len(), updated))
}

/// How a finding's count meets the case's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Merge {
    /// Counted over new records only: added.
    Add,
    /// Counted over everything retained: replaces, never lowers.
    Judged,
}

/// What makes two findings one: kind, endpoint id, actor.
type FindingKey = (
    String,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn finding_key(f: &NewFinding, endpoint: Option<i64>) -> FindingKey {
    let a = &f.actor;
    let name = f.kind.name().to_owned();
    (
        name,
        endpoint,
        a.ip.clone(),
        a.user.clone(),
        a.key.clone(),
        a.session.clone(),
    )
}

/// A finding in the case a new one may update: its id and count.
struct Existing {
    id: i64,
    count: u64,
}

/// The case's findings by key (the first of any with the same key).
fn existing_findings(
    tx: &duckdb::Transaction<'_>,
) -> Result<std::collections::HashMap<FindingKey, Existing>, duckdb::Error> {
    let mut stmt = tx.prepare(
        "SELECT id, count, kind, endpoint_id, actor_ip, actor_user, actor_key, actor_session \
         FROM findings ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = std::collections::HashMap::new();
    while let Some(r) = rows.next()? {
        let key = (
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
        );
        out.entry(key).or_insert(Existing {
            id: r.get(0)?,
            count: r.get(1)?,
        });
    }
    Ok(out)
}

/// Endpoint ids by key, read once.
struct EndpointIds(std::collections::HashMap<(String, String, String), i64>);

impl EndpointIds {
    fn read(tx: &duckdb::Transaction<'_>) -> Result<EndpointIds, duckdb::Error> {
        let mut stmt = tx.prepare("SELECT id, host, method, template FROM endpoints")?;
        let rows = stmt.query_map([], |r| Ok(((r.get(1)?, r.get(2)?, r.get(3)?), r.get(0)?)))?;
        Ok(EndpointIds(rows.collect::<Result<_, _>>()?))
    }

    /// The id of a finding's endpoint in the case, if it names one that exists.
    fn of(&self, f: &NewFinding) -> Option<i64> {
        let e = f.endpoint.as_ref()?;
        let key = (e.host.clone(), e.method.clone(), e.template.clone());
        self.0.get(&key).copied()
    }
}

/// Updates the case's finding `row` with `f` (same kind, endpoint and actor).
fn merge_finding(
    tx: &duckdb::Transaction<'_>,
    f: &NewFinding,
    how: Merge,
    row: &mut Existing,
) -> Result<(), duckdb::Error> {
    let mut evidence = id_list(&tx.query_row(
        "SELECT CAST(evidence AS VARCHAR) FROM findings WHERE id = ?",
        [row.id],
        |r| r.get::<_, String>(0),
    )?);
    row.count = match how {
        Merge::Add => row.count.saturating_add(f.count),
        Merge::Judged => row.count.max(f.count),
    };
    if how == Merge::Judged {
        // The judgement's evidence is the group's first ids: keep them first.
        let mut joined = f.evidence.clone();
        joined.extend(evidence.iter().filter(|e| !f.evidence.contains(e)));
        evidence = joined;
    } else {
        for e in &f.evidence {
            if !evidence.contains(e) {
                evidence.push(*e);
            }
        }
    }
    if evidence.len() > MERGED_EVIDENCE {
        evidence.drain(MERGED_EVIDENCE / 2..evidence.len() - MERGED_EVIDENCE / 2);
    }
    tx.execute(
        "UPDATE findings SET severity = ?, confidence = ?, first_seen_ns = least(first_seen_ns, ?), \
         last_seen_ns = greatest(last_seen_ns, ?), count = ?, evidence = CAST(? AS BIGINT[]), \
         title = ?, detail = ? WHERE id = ?",
        params![f.severity.name(), f.confidence, f.first_seen_ns, f.last_seen_ns, row.count, id_array(&evidence), f.title, f.detail, row.id],
    )?;
    Ok(())
}

/// `[1, 2, 3]` as DuckDB prints a BIGINT[]; unparsable items are skipped.
fn id_list(text: &str) -> Vec<i64> {
    text.trim_matches(['[', ']'])
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

fn id_array(ids: &[i64]) -> String {
    let items: Vec<String> = ids.iter().map(i64::to_string).collect();
    format!("[{}]", items.join(","))
}

fn insert_findings(
    tx: &duckdb::Transaction<'_>,
    findings: &[NewFinding],
) -> Result<(), duckdb::Error> {
    let first_finding: i64 =
        tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM findings", [], |r| {
            r.get(0)
        })?;
    let ids = EndpointIds::read(tx)?;
    for (id, f) in (first_finding..).zip(findings) {
        let endpoint = ids.of(f);
        let evidence = id_array(&f.evidence);
        tx.execute(
            "INSERT INTO findings (id, kind, severity, confidence, endpoint_id, actor_ip, actor_user, actor_key, actor_session, first_seen_ns, last_seen_ns, count, evidence, title, detail) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS BIGINT[]), ?, ?)",
            params![id, f.kind.name(), f.severity.name(), f.confidence, endpoint, f.actor.ip, f.actor.user, f.actor.key, f.actor.session, f.first_seen_ns, f.last_seen_ns, f.count, evidence, f.title, f.detail],
        )?;
    }
    Ok(())
}

/// A JSON column read as `T`: text the store wrote that does not parse is an error (which
/// names the column), never a silent default.
fn json_column<T: serde::de::DeserializeOwned>(
    r: &duckdb::Row<'_>,
    idx: usize,
) -> duckdb::Result<Option<T>> {
    let Some(text) = r.get::<_, Option<String>>(idx)? else {
        return Ok(None);
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        duckdb::Error::FromSqlConversionFailure(idx, duckdb::types::Type::Text, Box::new(e))
    })
}

/// A column holding a stable name (`sqli`, `high`): a name this build does not know is an
/// error naming the column, never a default.
fn name_column<T>(
    r: &duckdb::Row<'_>,
    idx: usize,
    parse: impl Fn(&str) -> Option<T>,
) -> duckdb::Result<T> {
    let name: String = r.get(idx)?;
    parse(&name).ok_or_else(|| {
        duckdb::Error::FromSqlConversionFailure(
            idx,
            duckdb::types::Type::Text,
            format!("unknown name {name:?}").into(),
        )
    })
}

impl CaseStore {
    /// Every endpoint, by host, template, method.
    pub fn endpoints(&self) -> Result<Vec<Endpoint>, StoreError> {
        self.select(
            "SELECT id, host, method, template, first_seen_ns, last_seen_ns, count, CAST(detail AS VARCHAR) \
                 FROM endpoints ORDER BY host, template, method",
            &[],
            |r| {
                Ok(Endpoint {
                    id: r.get(0)?,
                    host: r.get(1)?,
                    method: r.get(2)?,
                    template: r.get(3)?,
                    first_seen_ns: r.get(4)?,
                    last_seen_ns: r.get(5)?,
                    count: r.get(6)?,
                    detail: r.get(7)?,
                })
            },
        )
    }

    /// Every finding, most severe and most recent first.
    pub fn findings(&self) -> Result<Vec<Finding>, StoreError> {
        self.select(
            "SELECT id, kind, severity, confidence, endpoint_id, actor_ip, actor_user, actor_key, actor_session, first_seen_ns, last_seen_ns, count, title, CAST(evidence AS VARCHAR), CAST(detail AS VARCHAR) \
                 FROM findings ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 WHEN 'low' THEN 3 ELSE 4 END, last_seen_ns DESC",
            &[],
            |r| {
                Ok(Finding {
                    id: r.get(0)?,
                    kind: name_column(r, 1, FindingKind::from_name)?,
                    severity: name_column(r, 2, Severity::from_name)?,
                    confidence: r.get(3)?,
                    endpoint_id: r.get(4)?,
                    actor_ip: r.get(5)?,
                    actor_user: r.get(6)?,
                    actor_key: r.get(7)?,
                    actor_session: r.get(8)?,
                    first_seen_ns: r.get(9)?,
                    last_seen_ns: r.get(10)?,
                    count: r.get(11)?,
                    title: r.get(12)?,
                    evidence: json_column::<Vec<i64>>(r, 13)?.unwrap_or_default(),
                    detail: json_column(r, 14)?,
                })
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CaseStore;
    use crate::sources::Derived;

    fn exposure(count: u64, last_seen_ns: i64) -> NewFinding {
        NewFinding {
            kind: FindingKind::ExcessiveDataExposure,
            severity: Severity::High,
            confidence: 0.8,
            endpoint: None,
            first_seen_ns: 10,
            last_seen_ns,
            count,
            evidence: vec![3],
            title: "email in responses".into(),
            detail: None,
            actor: Default::default(),
        }
    }

    fn counts(case: &CaseStore) -> Vec<(u64, i64)> {
        let findings = case.findings().unwrap_or_else(|e| panic!("{e}"));
        findings.iter().map(|f| (f.count, f.last_seen_ns)).collect()
    }

    /// An exposure that goes on adds to the case's finding, live or imported; an update for a
    /// finding the case does not hold is dropped, not inserted.
    #[test]
    fn updates_add_to_the_case_finding_and_are_never_inserted() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut case =
            CaseStore::open(&dir.path().join("c.duckdb")).unwrap_or_else(|e| panic!("{e}"));
        let orphan = Derived {
            updates: vec![exposure(2, 50)],
            ..Derived::default()
        };
        case.merge_live(&orphan).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(counts(&case), []);
        let first = Derived {
            findings: vec![exposure(4, 20)],
            ..Derived::default()
        };
        case.merge_live(&first).unwrap_or_else(|e| panic!("{e}"));
        let (new, updated) = case.merge_live(&orphan).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((new, updated), (0, 1));
        assert_eq!(counts(&case), [(6, 50)]);
        // An import's results take the same path.
        case.atomically(|tx| write_derived(tx, &orphan))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(counts(&case), [(8, 50)]);
    }
}
