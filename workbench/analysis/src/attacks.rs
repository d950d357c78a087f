//! Payload attacks in imported traffic: every request runs through the detectors of
//! `tapline_detect::attack`; detections are grouped by family, endpoint and actor, so one finding
//! says "this actor sent SQL injection to this endpoint N times, here is the evidence".

use super::actor::{actor_of, describe};
use super::discovery::EndpointRef;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tapline_detect::attack::{Family, RequestScanner};
use tapline_record::Transaction;
use tapline_store::endpoints::{Actor, EndpointKey, FindingKind, NewFinding, Severity};

/// Evidence transaction ids kept per group.
const MAX_EVIDENCE: usize = 50;
/// Locations and examples kept per group.
const MAX_DETAIL: usize = 10;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct GroupKey {
    family: Family,
    endpoint: Option<EndpointKey>,
    actor: Actor,
}

#[derive(Clone, Debug, Default)]
struct Group {
    first_ns: i64,
    last_ns: i64,
    count: u64,
    evidence: Vec<i64>,
    rules: BTreeMap<&'static str, u64>,
    locations: BTreeSet<String>,
    reasons: Vec<String>,
    /// What was sent: location, rule and the value as decoded from its location.
    examples: Vec<Example>,
}

/// One detected value, as evidence an analyst can read without opening the transaction.
#[derive(Clone, Debug, serde::Serialize)]
struct Example {
    location: String,
    rule: &'static str,
    value: String,
}

/// Characters of a value kept in an example.
const MAX_EXAMPLE_CHARS: usize = 300;

/// Accumulates detections; one per import shard, merged with [`Attacks::absorb`].
#[derive(Default)]
pub struct Attacks {
    scanner: RequestScanner,
    groups: HashMap<GroupKey, Group>,
}

fn severity(f: Family) -> Severity {
    match f {
        Family::Sqli | Family::Cmdi | Family::Xxe | Family::Jndi | Family::Ssti | Family::Ssrf => {
            Severity::High
        }
        Family::RequestSmuggling => Severity::High,
        Family::Xss | Family::PathTraversal | Family::Nosqli | Family::Ldapi => Severity::Medium,
        Family::Crlf | Family::OpenRedirect => Severity::Low,
    }
}

fn title(f: Family) -> &'static str {
    match f {
        Family::Sqli => "SQL injection",
        Family::Xss => "Cross-site scripting",
        Family::PathTraversal => "Path traversal",
        Family::Cmdi => "Command injection",
        Family::Ssrf => "Server-side request forgery",
        Family::Xxe => "XML external entity",
        Family::Nosqli => "NoSQL injection",
        Family::Ssti => "Template injection",
        Family::Ldapi => "LDAP injection",
        Family::Crlf => "Header injection (CRLF)",
        Family::Jndi => "JNDI lookup (Log4Shell)",
        Family::OpenRedirect => "Open redirect",
        Family::RequestSmuggling => "Request smuggling",
    }
}

impl Attacks {
    /// Sees one stored transaction; `endpoint` is what discovery resolved it to.
    pub fn observe(&mut self, id: i64, tx: &Transaction, endpoint: Option<EndpointRef<'_>>) {
        let mut found: Vec<(Family, &'static str, String, String, String)> = Vec::new();
        self.scanner.scan(tx, &mut |f| {
            if !found.iter().any(|(fam, rule, loc, _, _)| {
                *fam == f.hit.family && *rule == f.hit.rule && loc == f.location
            }) {
                let value = f.value.chars().take(MAX_EXAMPLE_CHARS).collect();
                found.push((
                    f.hit.family,
                    f.hit.rule,
                    f.location.to_owned(),
                    f.hit.why,
                    value,
                ));
            }
        });
        if found.is_empty() {
            return;
        }
        let actor = actor_of(tx);
        let endpoint = endpoint.map(EndpointRef::to_key);
        let ts = tx.request_ts_nanos;
        let mut counted: Vec<Family> = Vec::new();
        for (family, rule, location, why, value) in found {
            let g = self
                .groups
                .entry(GroupKey {
                    family,
                    endpoint: endpoint.clone(),
                    actor: actor.clone(),
                })
                .or_insert_with(|| Group {
                    first_ns: ts,
                    last_ns: ts,
                    ..Group::default()
                });
            if !counted.contains(&family) {
                counted.push(family);
                g.count += 1;
                g.first_ns = g.first_ns.min(ts);
                g.last_ns = g.last_ns.max(ts);
                if g.evidence.len() < MAX_EVIDENCE {
                    g.evidence.push(id);
                }
            }
            *g.rules.entry(rule).or_default() += 1;
            if g.examples.len() < MAX_DETAIL {
                g.examples.push(Example {
                    location: location.clone(),
                    rule,
                    value,
                });
            }
            if g.locations.len() < MAX_DETAIL {
                g.locations.insert(location);
            }
            if g.reasons.len() < MAX_DETAIL && !g.reasons.contains(&why) {
                g.reasons.push(why);
            }
        }
    }

    /// Folds in another shard's detections.
    pub fn absorb(&mut self, other: Attacks) {
        for (k, o) in other.groups {
            match self.groups.get_mut(&k) {
                None => {
                    self.groups.insert(k, o);
                }
                Some(g) => {
                    g.count += o.count;
                    g.first_ns = g.first_ns.min(o.first_ns);
                    g.last_ns = g.last_ns.max(o.last_ns);
                    g.evidence.extend(o.evidence);
                    g.evidence.sort_unstable();
                    g.evidence.truncate(MAX_EVIDENCE);
                    for (r, n) in o.rules {
                        *g.rules.entry(r).or_default() += n;
                    }
                    g.locations.extend(o.locations);
                    let room = MAX_DETAIL.saturating_sub(g.examples.len());
                    g.examples.extend(o.examples.into_iter().take(room));
                    for r in o.reasons {
                        if g.reasons.len() < MAX_DETAIL && !g.reasons.contains(&r) {
                            g.reasons.push(r);
                        }
                    }
                }
            }
        }
    }

    /// One finding per (family, endpoint, actor).
    pub fn finish(self) -> Vec<NewFinding> {
        let mut groups: Vec<(GroupKey, Group)> = self.groups.into_iter().collect();
        groups.sort_by(|a, b| a.0.cmp(&b.0));
        groups
            .into_iter()
            .map(|(k, mut g)| {
                g.evidence.sort_unstable();
                let on = k
                    .endpoint
                    .as_ref()
                    .map(|e| format!(" on {e}"))
                    .unwrap_or_default();
                let n = if g.count == 1 {
                    "1 request".to_owned()
                } else {
                    format!("{} requests", g.count)
                };
                NewFinding {
                    kind: FindingKind::Attack(k.family),
                    severity: severity(k.family),
                    confidence: 0.9,
                    endpoint: k.endpoint.clone(),
                    first_seen_ns: g.first_ns,
                    last_seen_ns: g.last_ns,
                    count: g.count,
                    evidence: g.evidence,
                    title: format!("{} from {}{on} ({n})", title(k.family), describe(&k.actor)),
                    detail: Some(
                        serde_json::json!({
                            "family": k.family.name(),
                            "rules": g.rules,
                            "locations": g.locations,
                            "why": g.reasons,
                            "examples": g.examples,
                        })
                        .to_string(),
                    ),
                    actor: k.actor,
                }
            })
            .collect()
    }
}
