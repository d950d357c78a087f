//! Automatic rules: when findings of a kind reach a threshold for one actor within a window,
//! block (or monitor) that actor's address, user, key or session for a while.
//!
//! Evaluated after each analysis write (live sensors, imports): de-duplicated — an actor with
//! an active block from the same automatic rule gets it extended, not a second one; skipped
//! for allowlisted values and the rule's exceptions; held back for a cooldown after a block
//! ended (so an analyst's removal is not undone by the next finding); capped in how many
//! blocks one automatic rule keeps active.

use crate::effective::parse_net;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tapline_store::blocks::{Action, Allow, MatchKind, NewRule, Rule};
use tapline_store::endpoints::{Finding, Severity};
use tapline_store::{CaseStore, StoreError};

/// What an automatic rule does, as stored (JSON) and written on the command line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AutoSpec {
    /// Finding kinds (`credential_stuffing`) or families (`attack`: payload attacks,
    /// `behaviour`: BOLA, brute force, stuffing, scraping, enumeration…); empty: any.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// The least severity that counts.
    pub min_severity: Severity,
    /// Incidents (findings) needed within the window.
    pub threshold: u32,
    /// The window, seconds.
    pub window_s: u64,
    /// Which identifier is blocked (and incidents grouped by).
    pub by: MatchKind,
    /// How long a block lasts, seconds.
    pub duration_s: u64,
    /// Path globs the block applies to; empty: every path.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Methods; empty: every method.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Values never blocked by this rule (beyond the allowlist).
    #[serde(default)]
    pub except: Vec<String>,
    /// Block, or only monitor.
    pub action: Action,
    /// After one of its blocks ends, the same actor is not blocked again for this long.
    #[serde(default)]
    pub cooldown_s: u64,
    /// Most blocks this rule keeps active at once.
    pub max_active: usize,
}

const BEHAVIOUR: [&str; 7] = [
    "bola",
    "broken_authentication",
    "brute_force",
    "credential_stuffing",
    "scraping",
    "enumeration",
    "error_spike",
];

impl AutoSpec {
    fn triggered_by(&self, f: &Finding) -> bool {
        let name = f.kind.name();
        f.severity >= self.min_severity
            && (self.kinds.is_empty()
                || self.kinds.iter().any(|k| {
                    k == name
                        || (k == "attack" && f.kind.attack().is_some())
                        || (k == "behaviour" && BEHAVIOUR.contains(&name))
                }))
    }

    fn actor(&self, f: &Finding) -> Option<String> {
        let v = match self.by {
            MatchKind::Ip => f
                .actor_ip
                .as_deref()
                .and_then(|ip| parse_net(ip).ok())?
                .to_string(),
            MatchKind::User => f.actor_user.clone()?,
            MatchKind::Key => f.actor_key.clone()?,
            MatchKind::Session => f.actor_session.clone()?,
            MatchKind::Header => return None,
        };
        Some(v)
    }
}

/// What evaluation decided.
#[derive(Clone, Debug, PartialEq)]
pub enum Proposal {
    /// A new block.
    Add(NewRule),
    /// An active block of the same automatic rule, moved to end later.
    Extend {
        /// The rule.
        rule: i64,
        /// Its new end, ns.
        expires_ns: i64,
        /// Why.
        note: String,
    },
}

/// The origin automatic rule `id`'s blocks carry.
pub fn origin(id: i64) -> String {
    format!("auto:{id}")
}

/// Whether some `window` of time holds `n` of the (sorted) times.
fn dense(times: &[i64], n: usize, window: i64) -> bool {
    n > 0 && times.len() >= n && times.windows(n).any(|w| w[n - 1] - w[0] <= window)
}

/// What automatic rule `id` proposes at `now_ns`, given the findings, the rules (all, ended
/// ones too: the cooldown reads them) and the allowlist.
///
/// Incidents count when `threshold` of an actor's findings fall within `window` of each other
/// (finding times: capture times, so an imported capture counts as it happened) and are newer
/// than the start of that actor's last block by this rule — so a block is extended only for
/// new incidents, and evidence that caused one block never causes another.
pub fn evaluate(
    id: i64,
    spec: &AutoSpec,
    findings: &[Finding],
    rules: &[Rule],
    allow: &[Allow],
    now_ns: i64,
) -> Vec<Proposal> {
    let s = 1_000_000_000i64;
    let mut incidents: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for f in findings.iter().filter(|f| spec.triggered_by(f)) {
        if let Some(actor) = spec.actor(f) {
            incidents
                .entry(actor)
                .or_default()
                .push((f.last_seen_ns, f.id));
        }
    }
    let mine: Vec<&Rule> = rules.iter().filter(|r| r.origin == origin(id)).collect();
    let mut active = mine.iter().filter(|r| r.active_at(now_ns)).count();
    let allowed = |v: &str| {
        allow.iter().any(|a| {
            a.kind == spec.by
                && (a.value == v
                    || (spec.by == MatchKind::Ip
                        && parse_net(&a.value)
                            .ok()
                            .zip(parse_net(v).ok())
                            .is_some_and(|(a, v)| a.contains(&v))))
        })
    };
    let duration = spec.duration_s as i64 * s;
    let until = now_ns + duration;
    // When a block started (or was last extended): its end less the duration.
    let started = |r: &Rule| {
        r.expires_ns
            .map_or(r.created_ns, |e| e - duration)
            .max(r.created_ns)
    };
    let mut out = Vec::new();
    for (actor, mut seen) in incidents {
        if allowed(&actor) || spec.except.contains(&actor) {
            continue;
        }
        let same: Vec<&&Rule> = mine.iter().filter(|r| r.value == actor).collect();
        let after = same.iter().map(|r| started(r)).max();
        seen.retain(|(at, _)| after.is_none_or(|a| *at > a));
        seen.sort_unstable();
        let times: Vec<i64> = seen.iter().map(|(t, _)| *t).collect();
        if !dense(&times, spec.threshold as usize, spec.window_s as i64 * s) {
            continue;
        }
        let ids: Vec<i64> = seen.iter().map(|(_, id)| *id).collect();
        if let Some(r) = same.iter().find(|r| r.active_at(now_ns)) {
            out.push(Proposal::Extend {
                rule: r.id,
                expires_ns: until,
                note: format!("{} new incident(s): findings {ids:?}", ids.len()),
            });
            continue;
        }
        let ended_lately = same.iter().any(|r| {
            r.removed_ns
                .or(r.expires_ns)
                .is_some_and(|end| end + spec.cooldown_s as i64 * s > now_ns)
        });
        if ended_lately || active >= spec.max_active {
            continue;
        }
        active += 1;
        out.push(Proposal::Add(NewRule {
            kind: spec.by,
            value: actor,
            header: None,
            paths: spec.paths.clone(),
            methods: spec.methods.clone(),
            action: spec.action,
            expires_ns: Some(until),
            origin: origin(id),
            reason: format!(
                "automatic rule {id}: {} incident(s) within {} s",
                ids.len(),
                spec.window_s
            ),
            findings: ids,
            created_by: "tapline".into(),
        }));
    }
    out
}

/// What [`apply`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Applied {
    /// Rules added.
    pub added: Vec<i64>,
    /// Rules extended.
    pub extended: Vec<i64>,
}

/// Why automatic rules could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum AutoError {
    /// The case failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored spec is unreadable (written by a newer Tapline?).
    #[error("automatic rule {id}: its stored spec is unreadable ({error}); remove and re-add it")]
    Spec {
        /// The automatic rule.
        id: i64,
        /// Why.
        error: String,
    },
}

/// Evaluates every automatic rule of the case at `now_ns` and writes what they propose.
pub fn apply(case: &mut CaseStore, now_ns: i64) -> Result<Applied, AutoError> {
    case.audit_expiries(now_ns)?;
    let autos = case.auto_rules()?;
    if autos.is_empty() {
        return Ok(Applied::default());
    }
    let findings = case.findings()?;
    let allow = case.allowlist()?;
    let mut done = Applied::default();
    for (id, _, spec) in autos {
        let spec: AutoSpec = serde_json::from_str(&spec).map_err(|e| AutoError::Spec {
            id,
            error: e.to_string(),
        })?;
        let rules = case.block_rules()?;
        let mut new = Vec::new();
        for p in evaluate(id, &spec, &findings, &rules, &allow, now_ns) {
            match p {
                Proposal::Add(r) => new.push(r),
                Proposal::Extend {
                    rule,
                    expires_ns,
                    note,
                } => {
                    if case.extend_block_rule(rule, expires_ns, "tapline", &note)? {
                        done.extended.push(rule);
                    }
                }
            }
        }
        if !new.is_empty() {
            done.added.extend(case.add_block_rules(&new)?);
        }
    }
    if !done.added.is_empty() || !done.extended.is_empty() {
        tracing::info!(
            added = done.added.len(),
            extended = done.extended.len(),
            "automatic block rules applied"
        );
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapline_store::endpoints::FindingKind;

    const S: i64 = 1_000_000_000;

    fn finding(id: i64, kind: &str, ip: &str, at_s: i64) -> Finding {
        Finding {
            id,
            kind: FindingKind::from_name(kind).unwrap(),
            severity: Severity::High,
            confidence: 0.9,
            endpoint_id: None,
            actor_ip: Some(ip.into()),
            actor_user: None,
            actor_key: None,
            actor_session: None,
            first_seen_ns: at_s * S,
            last_seen_ns: at_s * S,
            count: 1,
            title: String::new(),
            evidence: vec![],
            detail: None,
        }
    }

    fn spec() -> AutoSpec {
        AutoSpec {
            kinds: vec!["behaviour".into(), "sqli".into()],
            min_severity: Severity::Medium,
            threshold: 2,
            window_s: 600,
            by: MatchKind::Ip,
            duration_s: 3600,
            paths: Vec::new(),
            methods: Vec::new(),
            except: vec!["203.0.113.9/32".into()],
            action: Action::Block,
            cooldown_s: 1800,
            max_active: 2,
        }
    }

    fn stored(id: i64, p: &Proposal) -> Rule {
        let Proposal::Add(r) = p else { panic!("{p:?}") };
        r.stored_as(id, 0)
    }

    #[test]
    fn a_threshold_in_the_window_blocks_once_then_extends() {
        let now = 10_000 * S;
        let f = vec![
            finding(1, "credential_stuffing", "203.0.113.7", 9_900),
            finding(2, "sqli", "203.0.113.7", 9_950),
            finding(3, "sqli", "203.0.113.8", 9_950), // one incident only
            finding(4, "brute_force", "203.0.113.9", 9_950), // an exception
            finding(5, "brute_force", "203.0.113.9", 9_960),
            finding(6, "new_endpoint", "203.0.113.10", 9_960), // not a trigger
            finding(7, "new_endpoint", "203.0.113.10", 9_961),
            finding(8, "scraping", "198.51.100.1", 1_000), // not within one window
            finding(9, "scraping", "198.51.100.1", 5_000),
        ];
        let p = evaluate(1, &spec(), &f, &[], &[], now);
        assert_eq!(p.len(), 1, "{p:?}");
        let rule = stored(11, &p[0]);
        assert_eq!(rule.value, "203.0.113.7/32");
        assert_eq!(rule.findings, vec![1, 2]);
        assert_eq!(rule.origin, "auto:1");
        // Later, more incidents: the active block is extended, not doubled.
        let later = now + 600 * S;
        let mut f2 = f.clone();
        f2.push(finding(10, "sqli", "203.0.113.7", 10_550));
        f2.push(finding(11, "sqli", "203.0.113.7", 10_560));
        let mut rule = rule;
        rule.created_ns = now;
        assert!(
            evaluate(1, &spec(), &f, std::slice::from_ref(&rule), &[], later).is_empty(),
            "the evidence behind a block does not extend it"
        );
        let p = evaluate(1, &spec(), &f2, std::slice::from_ref(&rule), &[], later);
        assert!(
            matches!(p.as_slice(), [Proposal::Extend { rule: 11, .. }]),
            "{p:?}"
        );
    }

    #[test]
    fn the_allowlist_the_cooldown_and_the_cap_hold_blocks_back() {
        let now = 10_000 * S;
        let f: Vec<Finding> = (0..8)
            .map(|i| finding(i, "sqli", &format!("203.0.113.{}", i / 2), 9_990))
            .collect();
        // Four actors over the threshold; .0 allowlisted by network, cap 2.
        let allow = vec![Allow {
            id: 1,
            kind: MatchKind::Ip,
            value: "203.0.113.0/31".into(),
            note: String::new(),
            created_by: "t".into(),
            created_ns: 0,
        }];
        let p = evaluate(1, &spec(), &f, &[], &allow, now);
        let values: Vec<String> = p.iter().map(|p| stored(0, p).value).collect();
        assert_eq!(values, ["203.0.113.2/32", "203.0.113.3/32"]);
        // .2's block was removed by an analyst a minute ago: the cooldown keeps it off.
        let mut removed = stored(5, &p[0]);
        removed.created_ns = now - 3600 * S;
        removed.expires_ns = Some(now);
        removed.removed_ns = Some(now - 60 * S);
        let p = evaluate(1, &spec(), &f, &[removed], &allow, now);
        let values: Vec<String> = p.iter().map(|p| stored(0, p).value).collect();
        assert_eq!(values, ["203.0.113.3/32"]);
    }
}
