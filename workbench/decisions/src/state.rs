//! What the server answers from: a snapshot of the case's rules, allowlist and agents, rebuilt
//! by the case thread when they change (or a rule expires) and swapped in whole, so requests
//! never wait on the case.

use crate::lapi::{self, Live};
use ipnet::IpNet;
use std::collections::{BTreeMap, HashMap};
use tapline_enforce::{Index, effective};
use tapline_store::{CaseStore, StoreError};

/// How long an ended rule is still sent as deleted to a bouncer the hub has not served since
/// it started.
const GONE_FOR_NS: i64 = 7 * 24 * 3600 * 1_000_000_000;

/// An agent allowed in, by the hash of its key.
#[derive(Clone, Debug)]
pub struct AgentRef {
    /// Row id.
    pub id: i64,
    /// Its name, for logs.
    pub name: String,
}

/// Everything a request is answered from.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Per-request decisions.
    pub index: Index,
    /// Bouncers' decisions by value.
    pub live: BTreeMap<String, Live>,
    /// Recently ended decisions by value (none of them live).
    pub gone: BTreeMap<String, Live>,
    /// Live decisions by network, for `GET /v1/decisions?ip=`.
    pub by_net: HashMap<IpNet, String>,
    /// Prefix lengths in `by_net`.
    pub prefixes: Vec<u8>,
    /// Agents whose keys are live, by SHA-256 of the key (hex).
    pub agents: HashMap<String, AgentRef>,
    /// When the next rule expires: the snapshot is stale from then.
    pub next_expiry_ns: Option<i64>,
}

/// SHA-256 of an agent key, hex: what the case stores.
pub fn key_hash(key: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, key.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new agent key: 32 random bytes, hex, prefixed so it is recognisable in a config file.
pub fn new_key() -> Result<String, ring::error::Unspecified> {
    let mut raw = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw)?;
    Ok(format!(
        "tapline_{}",
        raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

impl Snapshot {
    /// Reads the case and builds the snapshot in force at `now_ns`.
    pub fn load(case: &CaseStore, now_ns: i64) -> Result<Snapshot, StoreError> {
        let rules = case.block_rules()?;
        let allow = case.allowlist()?;
        let eff = effective(&rules, &allow, now_ns);
        let live = lapi::live_decisions(&eff);
        // What ended lately, as if still in force, less what is live.
        let ended: Vec<_> = rules
            .iter()
            .filter(|r| !r.active_at(now_ns))
            .filter(|r| r.removed_ns.or(r.expires_ns).unwrap_or(0) > now_ns - GONE_FOR_NS)
            .map(|r| tapline_store::blocks::Rule {
                removed_ns: None,
                expires_ns: None,
                ..r.clone()
            })
            .collect();
        let gone = lapi::live_decisions(&effective(&ended, &allow, now_ns))
            .into_iter()
            .filter(|(v, _)| !live.contains_key(v))
            .collect();
        let by_net: HashMap<IpNet, String> = live
            .keys()
            .filter_map(|v| {
                tapline_enforce::effective::parse_net(v)
                    .ok()
                    .map(|n| (n, v.clone()))
            })
            .collect();
        let mut prefixes: Vec<u8> = by_net.keys().map(IpNet::prefix_len).collect();
        prefixes.sort_unstable_by(|a, b| b.cmp(a));
        prefixes.dedup();
        let agents = case
            .agents()?
            .into_iter()
            .filter(|a| a.revoked_ns.is_none())
            .map(|a| {
                (
                    a.key_hash,
                    AgentRef {
                        id: a.id,
                        name: a.name,
                    },
                )
            })
            .collect();
        Ok(Snapshot {
            index: Index::build(&eff, &allow),
            live,
            gone,
            by_net,
            prefixes,
            agents,
            next_expiry_ns: rules
                .iter()
                .filter(|r| r.active_at(now_ns))
                .filter_map(|r| r.expires_ns)
                .min(),
        })
    }

    /// The live decision values covering `ip`.
    pub fn covering(&self, ip: std::net::IpAddr) -> Vec<&Live> {
        self.prefixes
            .iter()
            .filter_map(|len| IpNet::new(ip, *len).ok())
            .filter_map(|n| self.by_net.get(&n.trunc()))
            .filter_map(|v| self.live.get(v))
            .collect()
    }
}
