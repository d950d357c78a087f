//! Enforcement agents (bouncers, proxies asking for decisions) with their keys, and the log of
//! requests they refused. Keys are stored as hashes: the key is shown once, when made.

use crate::{CaseStore, StoreError};
use duckdb::params;

/// An agent allowed to fetch decisions.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Agent {
    /// Row id.
    pub id: i64,
    /// The name it was given.
    pub name: String,
    /// SHA-256 of its key, hex.
    pub key_hash: String,
    /// Who added it.
    pub created_by: String,
    /// When, ns.
    pub created_ns: i64,
    /// When its key was revoked, ns.
    pub revoked_ns: Option<i64>,
    /// When it last asked, ns.
    pub last_seen_ns: Option<i64>,
    /// From where it last asked.
    pub last_peer: Option<String>,
}

/// A request an agent refused (or a monitor rule counted).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Hit {
    /// When, ns.
    pub at_ns: i64,
    /// The rule.
    pub rule_id: i64,
    /// `block` or `monitor`.
    pub action: String,
    /// The agent that asked.
    pub agent: String,
    /// The client's address.
    pub client: Option<String>,
    /// The request's method.
    pub method: String,
    /// The request's path.
    pub path: String,
}

/// Requests per rule.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct HitCount {
    /// The rule.
    pub rule_id: i64,
    /// `block` or `monitor`.
    pub action: String,
    /// How many.
    pub count: u64,
    /// The latest, ns.
    pub last_ns: i64,
}

/// Why an agent could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The name is taken by an agent whose key is live.
    #[error(
        "an agent named `{0}` exists; revoke it first (tapline agents revoke {0}) or pick another name"
    )]
    Exists(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CaseStore {
    /// Adds an agent with the hash of its key.
    pub fn add_agent(&mut self, name: &str, key_hash: &str, who: &str) -> Result<i64, AgentError> {
        if self
            .agents()?
            .iter()
            .any(|a| a.name == name && a.revoked_ns.is_none())
        {
            return Err(AgentError::Exists(name.to_owned()));
        }
        Ok(self.atomically(|tx| {
            let id: i64 =
                tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM agents", [], |r| r.get(0))?;
            tx.execute(
                "INSERT INTO agents (id, name, key_hash, created_by, created_ns) VALUES (?, ?, ?, ?, ?)",
                params![id, name, key_hash, who, crate::blocks::now_ns()],
            )?;
            Ok(id)
        })?)
    }

    /// Every agent, revoked ones too.
    pub fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        self.select(
            "SELECT id, name, key_hash, created_by, created_ns, revoked_ns, last_seen_ns, last_peer FROM agents ORDER BY id",
            &[],
            |r| {
                Ok(Agent {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    key_hash: r.get(2)?,
                    created_by: r.get(3)?,
                    created_ns: r.get(4)?,
                    revoked_ns: r.get(5)?,
                    last_seen_ns: r.get(6)?,
                    last_peer: r.get(7)?,
                })
            },
        )
    }

    /// Revokes the live key of the agent `name`; false when there was none.
    pub fn revoke_agent(&mut self, name: &str) -> Result<bool, StoreError> {
        self.atomically(|tx| {
            Ok(tx.execute(
                "UPDATE agents SET revoked_ns = ? WHERE name = ? AND revoked_ns IS NULL",
                params![crate::blocks::now_ns(), name],
            )? > 0)
        })
    }

    /// Notes when and from where agents last asked.
    pub fn agents_seen(&mut self, seen: &[(i64, i64, String)]) -> Result<(), StoreError> {
        self.atomically(|tx| {
            for (id, at, peer) in seen {
                tx.execute(
                    "UPDATE agents SET last_seen_ns = ?, last_peer = ? WHERE id = ?",
                    params![at, peer, id],
                )?;
            }
            Ok(())
        })
    }

    /// Changes whenever a rule, the allowlist or an agent changes (every such change writes the
    /// audit log or the agents table): a server polls it to know when to reload.
    pub fn enforcement_stamp(&self) -> Result<String, StoreError> {
        let rows = self.select(
            "SELECT concat((SELECT coalesce(max(id), 0) FROM block_audit), ':', \
                    (SELECT count(*) FROM agents), ':', (SELECT coalesce(max(revoked_ns), 0) FROM agents))",
            &[],
            |r| r.get::<_, String>(0),
        )?;
        Ok(rows.into_iter().next().unwrap_or_default())
    }

    /// Appends to the log of refused (and monitored) requests.
    pub fn add_block_hits(&mut self, hits: &[Hit]) -> Result<(), StoreError> {
        self.atomically(|tx| {
            let mut app = tx.appender("block_hits")?;
            for h in hits {
                app.append_row(params![
                    h.at_ns, h.rule_id, h.action, h.agent, h.client, h.method, h.path
                ])?;
            }
            app.flush()?;
            Ok(())
        })
    }

    /// The newest `limit` hits, newest first.
    pub fn block_hits(&self, limit: usize) -> Result<Vec<Hit>, StoreError> {
        self.select(
            "SELECT at_ns, rule_id, action, agent, client, method, path FROM block_hits ORDER BY at_ns DESC LIMIT ?",
            &[&(limit as i64)],
            |r| {
                Ok(Hit {
                    at_ns: r.get(0)?,
                    rule_id: r.get(1)?,
                    action: r.get(2)?,
                    agent: r.get(3)?,
                    client: r.get(4)?,
                    method: r.get(5)?,
                    path: r.get(6)?,
                })
            },
        )
    }

    /// Requests per rule and action, from agents' logs.
    pub fn block_hit_counts(&self) -> Result<Vec<HitCount>, StoreError> {
        self.select(
            "SELECT rule_id, action, count(*), max(at_ns) FROM block_hits GROUP BY ALL ORDER BY rule_id, action",
            &[],
            |r| {
                Ok(HitCount {
                    rule_id: r.get(0)?,
                    action: r.get(1)?,
                    count: r.get::<_, i64>(2)? as u64,
                    last_ns: r.get(3)?,
                })
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_are_added_once_by_name_revoked_and_their_hits_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut case = CaseStore::open(&dir.path().join("c.duckdb")).unwrap();
        case.add_agent("edge-nginx", "ab", "ana").unwrap();
        assert!(matches!(
            case.add_agent("edge-nginx", "cd", "ana"),
            Err(AgentError::Exists(_))
        ));
        assert!(case.revoke_agent("edge-nginx").unwrap());
        assert!(!case.revoke_agent("edge-nginx").unwrap());
        let again = case.add_agent("edge-nginx", "cd", "ana").unwrap();
        case.agents_seen(&[(again, 5, "127.0.0.1:9".into())])
            .unwrap();
        let agents = case.agents().unwrap();
        assert_eq!(agents.len(), 2);
        assert!(agents[0].revoked_ns.is_some());
        assert_eq!(agents[1].last_seen_ns, Some(5));
        let hit = |at, rule, action: &str| Hit {
            at_ns: at,
            rule_id: rule,
            action: action.into(),
            agent: "edge-nginx".into(),
            client: Some("203.0.113.7".into()),
            method: "GET".into(),
            path: "/x".into(),
        };
        case.add_block_hits(&[hit(1, 1, "block"), hit(2, 1, "block"), hit(3, 2, "monitor")])
            .unwrap();
        let counts = case.block_hit_counts().unwrap();
        assert_eq!(counts.len(), 2);
        assert_eq!(
            (counts[0].rule_id, counts[0].count, counts[0].last_ns),
            (1, 2, 2)
        );
        assert_eq!(case.block_hits(1).unwrap()[0].at_ns, 3);
        let before = case.enforcement_stamp().unwrap();
        case.revoke_agent("edge-nginx").unwrap();
        assert_ne!(case.enforcement_stamp().unwrap(), before);
    }
}
