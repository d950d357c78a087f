//! Block rules, the allowlist and their audit log, as the case keeps them. What a rule means
//! (matching, exports, decisions) is `tapline-enforce`'s; this module stores and lists, and
//! writes every change to the audit log in the same transaction as the change.

use crate::{CaseStore, StoreError};
use duckdb::params;
pub(crate) use tapline_record::time::now_nanos as now_ns;

/// What a rule or allowlist entry matches on.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// A client address or network (CIDR).
    Ip,
    /// A principal (JWT subject, Basic user).
    User,
    /// A session cookie's value.
    Session,
    /// An API key.
    Key,
    /// A request header's value.
    Header,
}

impl MatchKind {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            MatchKind::Ip => "ip",
            MatchKind::User => "user",
            MatchKind::Session => "session",
            MatchKind::Key => "key",
            MatchKind::Header => "header",
        }
    }

    /// The kind a stored name stands for.
    pub fn from_name(s: &str) -> Option<MatchKind> {
        [
            MatchKind::Ip,
            MatchKind::User,
            MatchKind::Session,
            MatchKind::Key,
            MatchKind::Header,
        ]
        .into_iter()
        .find(|k| k.name() == s)
    }
}

/// What a rule does to what it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Refused.
    Block,
    /// Counted as if refused; let through.
    Monitor,
}

impl Action {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::Monitor => "monitor",
        }
    }
}

/// A rule to add.
#[derive(Clone, Debug, PartialEq)]
pub struct NewRule {
    /// What it matches on.
    pub kind: MatchKind,
    /// The value (a CIDR for `ip`, normalised by the caller).
    pub value: String,
    /// The header's name, for `header` rules.
    pub header: Option<String>,
    /// Path globs; empty: every path.
    pub paths: Vec<String>,
    /// Methods; empty: every method.
    pub methods: Vec<String>,
    /// Block or monitor.
    pub action: Action,
    /// When it ends (ns since the epoch); `None`: until removed.
    pub expires_ns: Option<i64>,
    /// `manual`, `finding`, `auto`.
    pub origin: String,
    /// Why, for people.
    pub reason: String,
    /// The findings behind it.
    pub findings: Vec<i64>,
    /// Who made it.
    pub created_by: String,
}

impl NewRule {
    /// The rule as it would be stored with `id` at `created_ns` (drafts replayed before saving,
    /// tests).
    pub fn stored_as(&self, id: i64, created_ns: i64) -> Rule {
        Rule {
            id,
            kind: self.kind,
            value: self.value.clone(),
            header: self.header.clone(),
            paths: self.paths.clone(),
            methods: self.methods.clone(),
            action: self.action,
            expires_ns: self.expires_ns,
            origin: self.origin.clone(),
            reason: self.reason.clone(),
            findings: self.findings.clone(),
            created_by: self.created_by.clone(),
            created_ns,
            removed_ns: None,
        }
    }
}

/// A stored rule.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Rule {
    /// Row id.
    pub id: i64,
    /// What it matches on.
    pub kind: MatchKind,
    /// The value.
    pub value: String,
    /// The header's name, for `header` rules.
    pub header: Option<String>,
    /// Path globs; empty: every path.
    pub paths: Vec<String>,
    /// Methods; empty: every method.
    pub methods: Vec<String>,
    /// Block or monitor.
    pub action: Action,
    /// When it ends, ns.
    pub expires_ns: Option<i64>,
    /// Where it came from.
    pub origin: String,
    /// Why.
    pub reason: String,
    /// The findings behind it.
    pub findings: Vec<i64>,
    /// Who made it.
    pub created_by: String,
    /// When, ns.
    pub created_ns: i64,
    /// When it was removed, ns.
    pub removed_ns: Option<i64>,
}

impl Rule {
    /// In force at `now_ns`: not removed, not expired.
    pub fn active_at(&self, now_ns: i64) -> bool {
        self.removed_ns.is_none() && self.expires_ns.is_none_or(|e| e > now_ns)
    }
}

/// An allowlist entry: never blocked, whatever a rule says.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Allow {
    /// Row id.
    pub id: i64,
    /// `ip`, `user` or `key`.
    pub kind: MatchKind,
    /// The value (a CIDR for `ip`).
    pub value: String,
    /// Why.
    pub note: String,
    /// Who.
    pub created_by: String,
    /// When, ns.
    pub created_ns: i64,
}

/// One line of the audit log.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AuditEntry {
    /// When, ns.
    pub at_ns: i64,
    /// Who.
    pub who: String,
    /// `create`, `remove`, `allow`, `disallow`.
    pub event: String,
    /// The rule, if about one.
    pub rule_id: Option<i64>,
    /// The allowlist entry, if about one.
    pub allow_id: Option<i64>,
    /// What was said.
    pub note: String,
}

fn audit(
    tx: &duckdb::Transaction<'_>,
    who: &str,
    event: &str,
    rule: Option<i64>,
    allow: Option<i64>,
    note: &str,
) -> Result<(), duckdb::Error> {
    let id: i64 = tx.query_row(
        "SELECT coalesce(max(id), 0) + 1 FROM block_audit",
        [],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO block_audit (id, at_ns, who, event, rule_id, allow_id, note) VALUES (?, ?, ?, ?, ?, ?, ?)",
        params![id, now_ns(), who, event, rule, allow, note],
    )?;
    Ok(())
}

fn json_list<T: serde::Serialize>(v: &[T]) -> Option<String> {
    (!v.is_empty()).then(|| serde_json::to_string(v).unwrap_or_default())
}

impl CaseStore {
    /// Stores a rule and its audit line; returns its id.
    pub fn add_block_rule(&mut self, r: &NewRule) -> Result<i64, StoreError> {
        Ok(self.add_block_rules(std::slice::from_ref(r))?[0])
    }

    /// Stores rules (automatic rules, imports) with their audit lines in one transaction.
    pub fn add_block_rules(&mut self, rules: &[NewRule]) -> Result<Vec<i64>, StoreError> {
        self.atomically(|tx| {
            let first: i64 = tx.query_row(
                "SELECT coalesce(max(id), 0) + 1 FROM block_rules",
                [],
                |r| r.get(0),
            )?;
            let audit_first: i64 = tx.query_row(
                "SELECT coalesce(max(id), 0) + 1 FROM block_audit",
                [],
                |r| r.get(0),
            )?;
            // Appenders: thousands of rules (automatic rules, imports) in well under a second.
            let now = now_ns();
            let mut ids = Vec::with_capacity(rules.len());
            {
                let mut app = tx.appender("block_rules")?;
                for (i, r) in rules.iter().enumerate() {
                    let id = first + i as i64;
                    app.append_row(params![
                        id,
                        r.kind.name(),
                        r.value,
                        r.header,
                        json_list(&r.paths),
                        json_list(&r.methods),
                        r.action.name(),
                        r.expires_ns,
                        r.origin,
                        r.reason,
                        json_list(&r.findings),
                        r.created_by,
                        now,
                        None::<i64>
                    ])?;
                    ids.push(id);
                }
                app.flush()?;
            }
            let mut app = tx.appender("block_audit")?;
            for (i, r) in rules.iter().enumerate() {
                app.append_row(params![
                    audit_first + i as i64,
                    now,
                    r.created_by,
                    "create",
                    first + i as i64,
                    None::<i64>,
                    r.reason
                ])?;
            }
            app.flush()?;
            Ok(ids)
        })
    }

    /// Marks a rule removed (it stays for the audit); false when there was no such active rule.
    pub fn remove_block_rule(
        &mut self,
        id: i64,
        who: &str,
        note: &str,
    ) -> Result<bool, StoreError> {
        self.atomically(|tx| {
            let n = tx.execute(
                "UPDATE block_rules SET removed_ns = ? WHERE id = ? AND removed_ns IS NULL",
                params![now_ns(), id],
            )?;
            if n > 0 {
                audit(tx, who, "remove", Some(id), None, note)?;
            }
            Ok(n > 0)
        })
    }

    /// Moves a rule's end (an automatic rule extending its block instead of adding another).
    pub fn extend_block_rule(
        &mut self,
        id: i64,
        expires_ns: i64,
        who: &str,
        note: &str,
    ) -> Result<bool, StoreError> {
        self.atomically(|tx| {
            let n = tx.execute(
                "UPDATE block_rules SET expires_ns = ? WHERE id = ? AND removed_ns IS NULL",
                params![expires_ns, id],
            )?;
            if n > 0 {
                audit(tx, who, "extend", Some(id), None, note)?;
            }
            Ok(n > 0)
        })
    }

    /// Stores an automatic rule (its spec as JSON); returns its id.
    pub fn add_auto_rule(&mut self, name: &str, spec: &str, who: &str) -> Result<i64, StoreError> {
        self.atomically(|tx| {
            let id: i64 = tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM block_auto", [], |r| r.get(0))?;
            tx.execute(
                "INSERT INTO block_auto (id, name, spec, created_by, created_ns) VALUES (?, ?, ?, ?, ?)",
                params![id, name, spec, who, now_ns()],
            )?;
            audit(tx, who, "auto-create", None, None, &format!("automatic rule {id} ({name}): {spec}"))?;
            Ok(id)
        })
    }

    /// Automatic rules in force: (id, name, spec JSON).
    pub fn auto_rules(&self) -> Result<Vec<(i64, String, String)>, StoreError> {
        self.select(
            "SELECT id, name, CAST(spec AS VARCHAR) FROM block_auto WHERE removed_ns IS NULL ORDER BY id",
            &[],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    }

    /// Removes an automatic rule (the blocks it made stay until they end).
    pub fn remove_auto_rule(&mut self, id: i64, who: &str) -> Result<bool, StoreError> {
        self.atomically(|tx| {
            let n = tx.execute(
                "UPDATE block_auto SET removed_ns = ? WHERE id = ? AND removed_ns IS NULL",
                params![now_ns(), id],
            )?;
            if n > 0 {
                audit(
                    tx,
                    who,
                    "auto-remove",
                    None,
                    None,
                    &format!("automatic rule {id}"),
                )?;
            }
            Ok(n > 0)
        })
    }

    /// Writes an `expire` line to the audit log for each rule that has run out (and was not
    /// removed) since the last such note; returns how many. Called wherever rules are looked
    /// at or enforced, so the log says when a block ended, not only when it was made.
    pub fn audit_expiries(&mut self, now_ns: i64) -> Result<usize, StoreError> {
        self.atomically(|tx| {
            let ended: Vec<(i64, i64)> = {
                let mut st = tx.prepare(
                    "SELECT id, expires_ns FROM block_rules r WHERE removed_ns IS NULL AND expires_ns <= ? \
                     AND NOT EXISTS (SELECT 1 FROM block_audit a WHERE a.rule_id = r.id AND a.event = 'expire') ORDER BY id",
                )?;
                st.query_map(params![now_ns], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?
            };
            for (id, at) in &ended {
                audit(tx, "tapline", "expire", Some(*id), None, &format!("ran out at {at} ns"))?;
            }
            Ok(ended.len())
        })
    }

    /// Every rule, removed ones too, by id.
    pub fn block_rules(&self) -> Result<Vec<Rule>, StoreError> {
        let rows = self.select(
            "SELECT id, match_kind, match_value, header_name, CAST(paths AS VARCHAR), CAST(methods AS VARCHAR), action, expires_ns, origin, reason, CAST(findings AS VARCHAR), created_by, created_ns, removed_ns \
             FROM block_rules ORDER BY id",
            &[],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, Option<i64>>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, String>(9)?,
                    r.get::<_, Option<String>>(10)?,
                    r.get::<_, String>(11)?,
                    r.get::<_, i64>(12)?,
                    r.get::<_, Option<i64>>(13)?,
                ))
            },
        )?;
        let list = |s: Option<String>| -> Vec<String> {
            s.and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default()
        };
        Ok(rows
            .into_iter()
            .filter_map(
                |(
                    id,
                    kind,
                    value,
                    header,
                    paths,
                    methods,
                    action,
                    expires_ns,
                    origin,
                    reason,
                    findings,
                    by,
                    at,
                    removed,
                )| {
                    Some(Rule {
                        id,
                        kind: MatchKind::from_name(&kind)?,
                        value,
                        header,
                        paths: list(paths),
                        methods: list(methods),
                        action: if action == "monitor" {
                            Action::Monitor
                        } else {
                            Action::Block
                        },
                        expires_ns,
                        origin,
                        reason,
                        findings: findings
                            .and_then(|s| serde_json::from_str(&s).ok())
                            .unwrap_or_default(),
                        created_by: by,
                        created_ns: at,
                        removed_ns: removed,
                    })
                },
            )
            .collect())
    }

    /// Adds an allowlist entry; returns its id.
    pub fn allow(
        &mut self,
        kind: MatchKind,
        value: &str,
        note: &str,
        who: &str,
    ) -> Result<i64, StoreError> {
        self.atomically(|tx| {
            let id: i64 = tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM block_allow", [], |r| r.get(0))?;
            tx.execute(
                "INSERT INTO block_allow (id, match_kind, match_value, note, created_by, created_ns) VALUES (?, ?, ?, ?, ?, ?)",
                params![id, kind.name(), value, note, who, now_ns()],
            )?;
            audit(tx, who, "allow", None, Some(id), &format!("{} {value}: {note}", kind.name()))?;
            Ok(id)
        })
    }

    /// The allowlist in force.
    pub fn allowlist(&self) -> Result<Vec<Allow>, StoreError> {
        let rows = self.select(
            "SELECT id, match_kind, match_value, note, created_by, created_ns FROM block_allow WHERE removed_ns IS NULL ORDER BY id",
            &[],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            },
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, kind, value, note, by, at)| {
                Some(Allow {
                    id,
                    kind: MatchKind::from_name(&kind)?,
                    value,
                    note,
                    created_by: by,
                    created_ns: at,
                })
            })
            .collect())
    }

    /// The audit log, oldest first.
    pub fn block_audit(&self) -> Result<Vec<AuditEntry>, StoreError> {
        self.select(
            "SELECT at_ns, who, event, rule_id, allow_id, note FROM block_audit ORDER BY id",
            &[],
            |r| {
                Ok(AuditEntry {
                    at_ns: r.get(0)?,
                    who: r.get(1)?,
                    event: r.get(2)?,
                    rule_id: r.get(3)?,
                    allow_id: r.get(4)?,
                    note: r.get(5)?,
                })
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(value: &str) -> NewRule {
        NewRule {
            kind: MatchKind::Ip,
            value: value.into(),
            header: None,
            paths: vec!["/api/*".into()],
            methods: Vec::new(),
            action: Action::Block,
            expires_ns: None,
            origin: "manual".into(),
            reason: "credential stuffing".into(),
            findings: vec![3],
            created_by: "ana".into(),
        }
    }

    #[test]
    fn rules_and_allowlist_round_trip_with_every_change_audited() {
        let dir = tempfile::tempdir().unwrap();
        let mut case = CaseStore::open(&dir.path().join("c.duckdb")).unwrap();
        let a = case.add_block_rule(&rule("203.0.113.7/32")).unwrap();
        let b = case
            .add_block_rule(&NewRule {
                expires_ns: Some(1),
                ..rule("2001:db8::/64")
            })
            .unwrap();
        case.allow(MatchKind::Ip, "203.0.113.0/24", "office", "ana")
            .unwrap();
        assert!(case.remove_block_rule(b, "ben", "mistake").unwrap());
        assert!(
            !case.remove_block_rule(b, "ben", "again").unwrap(),
            "removed once"
        );
        let rules = case.block_rules().unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].paths, vec!["/api/*"]);
        assert_eq!(rules[0].findings, vec![3]);
        assert!(rules[0].active_at(now_ns()));
        assert!(!rules[1].active_at(now_ns()));
        assert_eq!(case.allowlist().unwrap().len(), 1);
        let log: Vec<(String, String)> = case
            .block_audit()
            .unwrap()
            .into_iter()
            .map(|e| (e.event, e.who))
            .collect();
        assert_eq!(
            log,
            vec![
                ("create".into(), "ana".into()),
                ("create".into(), "ana".into()),
                ("allow".into(), "ana".into()),
                ("remove".into(), "ben".into())
            ]
        );
        assert_eq!(case.block_rules().unwrap()[0].id, a);
        // Expiry is audited once: rule b was removed first, so only a rule that ran out counts.
        let c = case
            .add_block_rule(&NewRule {
                expires_ns: Some(5),
                ..rule("192.0.2.1/32")
            })
            .unwrap();
        assert_eq!(case.audit_expiries(now_ns()).unwrap(), 1);
        assert_eq!(case.audit_expiries(now_ns()).unwrap(), 0);
        let last = case.block_audit().unwrap().pop().unwrap();
        assert_eq!((last.event.as_str(), last.rule_id), ("expire", Some(c)));
    }
}
