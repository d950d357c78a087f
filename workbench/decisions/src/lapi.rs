//! The CrowdSec Local-API surface stock bouncers poll: Tapline's enforced IP and network rules
//! as `ban` decisions, and each agent's cursor so a poll returns only what changed.
//!
//! Bouncer quirks this module answers for (spec: `pkg/models/localapi_swagger.yaml` in
//! crowdsecurity/crowdsec):
//! - one live decision per value: bouncers key their state by value, so two rules on one
//!   address are one decision (the longer-lived), and removing one of them deletes nothing;
//! - never monitor-mode or allowlisted values (they come from `tapline-enforce`'s effective
//!   rules, where both are already out);
//! - the nftables bouncer (Debian's 0.0.25, tested) adds a `Range` to a set without intervals,
//!   keeping only its first address: ranges of up to [`EXPAND_UP_TO`] addresses (a /16) are sent
//!   as their addresses, wider ones as ranges (which ipset and pf bouncers enforce whole).

use ipnet::IpNet;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tapline_enforce::effective::{Effective, Target};

/// Ranges with at most this many addresses are sent address by address…
pub const EXPAND_UP_TO: u32 = 65_536;
/// …as long as all expansions together stay within this many addresses.
pub const EXPAND_BUDGET: u64 = 262_144;
/// What a permanent rule's decision says it lasts: bouncers need a duration.
const PERMANENT_S: u64 = 365 * 24 * 3600;

/// A decision as the bouncers read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Stable while the (rule, value) pair lasts.
    pub id: i64,
    /// Always `tapline`.
    pub origin: &'static str,
    /// Always `ban`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `Ip` or `Range`.
    pub scope: &'static str,
    /// An address or CIDR.
    pub value: String,
    /// Time left, Go-style (`23h59m58s`).
    pub duration: String,
    /// `tapline/rule-ID: reason`.
    pub scenario: String,
}

/// A decision before its duration is written: what the cursor compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Live {
    /// The rule behind it.
    pub rule: i64,
    /// The value.
    pub value: String,
    /// `Ip` or `Range`.
    pub scope: &'static str,
    /// When it ends, ns; `None`: permanent.
    pub expires_ns: Option<i64>,
    /// The scenario text (shared by a network's addresses).
    pub scenario: Arc<str>,
}

/// A Go duration: `23h59m58s`, `45s`, `0s`.
pub fn go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// The live decisions of `e`, one per value, keyed by value.
///
/// Networks are expanded smallest first while the expansion stays within [`EXPAND_BUDGET`]
/// addresses in all: what does not fit goes as a range (a bouncer's set stays bounded, and
/// a hundred thousand /24s do not become millions of decisions).
pub fn live_decisions(e: &Effective) -> BTreeMap<String, Live> {
    let mut nets: Vec<(&tapline_enforce::effective::Active, IpNet)> = e
        .block
        .iter()
        // Bouncers enforce addresses everywhere: a path- or method-scoped rule is the
        // decision endpoint's, not theirs.
        .filter(|a| a.paths.is_empty() && a.methods.is_empty())
        .filter_map(|a| match &a.target {
            Target::Net(n) => Some((a, *n)),
            Target::Text(..) => None,
        })
        .collect();
    nets.sort_by_key(|(_, n)| std::cmp::Reverse(n.prefix_len()));
    let mut budget = EXPAND_BUDGET;
    let mut out: BTreeMap<String, Live> = BTreeMap::new();
    for (a, net) in nets {
        let scenario: Arc<str> = format!("tapline/rule-{}: {}", a.id, a.reason)
            .chars()
            .take(120)
            .collect::<String>()
            .into();
        for (value, scope) in values_of(&net, &mut budget) {
            let live = Live {
                rule: a.id,
                value: value.clone(),
                scope,
                expires_ns: a.expires_ns,
                scenario: Arc::clone(&scenario),
            };
            match out.get(&value) {
                // Keep the longer-lived: permanent beats any expiry.
                Some(old) if outlives(old.expires_ns, live.expires_ns) => {}
                _ => {
                    out.insert(value, live);
                }
            }
        }
    }
    out
}

fn outlives(a: Option<i64>, b: Option<i64>) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => a >= b,
    }
}

fn values_of(net: &IpNet, budget: &mut u64) -> Vec<(String, &'static str)> {
    let host_bits = u32::from(net.max_prefix_len() - net.prefix_len());
    if host_bits == 0 {
        return vec![(net.addr().to_string(), "Ip")];
    }
    let size = 1u64 << host_bits.min(63);
    if size <= u64::from(EXPAND_UP_TO) && size <= *budget {
        *budget -= size;
        return net.hosts_all().map(|a| (a.to_string(), "Ip")).collect();
    }
    vec![(net.to_string(), "Range")]
}

trait HostsAll {
    fn hosts_all(&self) -> Box<dyn Iterator<Item = std::net::IpAddr>>;
}

impl HostsAll for IpNet {
    /// Every address of the network, network and broadcast addresses included: a block of a
    /// /30 blocks four addresses.
    fn hosts_all(&self) -> Box<dyn Iterator<Item = std::net::IpAddr>> {
        match self {
            IpNet::V4(n) => {
                let (lo, hi) = (u32::from(n.network()), u32::from(n.broadcast()));
                Box::new((lo..=hi).map(|a| std::net::IpAddr::V4(a.into())))
            }
            IpNet::V6(n) => {
                let (lo, hi) = (u128::from(n.network()), u128::from(n.broadcast()));
                Box::new((lo..=hi).map(|a| std::net::IpAddr::V6(a.into())))
            }
        }
    }
}

/// Which decisions a bouncer asked for (`scopes`, `origins`, `scenarios_containing`,
/// `scenarios_not_containing`; comma-separated, case-insensitive).
#[derive(Clone, Debug, Default)]
pub struct Filter {
    scopes: Vec<String>,
    origins: Vec<String>,
    containing: Vec<String>,
    not_containing: Vec<String>,
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

impl Filter {
    /// Reads the query string's parameters.
    pub fn from_query(params: &[(String, String)]) -> Filter {
        let mut f = Filter {
            scopes: vec!["ip".into(), "range".into()],
            ..Filter::default()
        };
        for (k, v) in params {
            match k.as_str() {
                "scopes" => f.scopes = list(v),
                "origins" => f.origins = list(v),
                "scenarios_containing" => f.containing = list(v),
                "scenarios_not_containing" => f.not_containing = list(v),
                _ => {}
            }
        }
        f
    }

    /// Whether the bouncer wants `d`.
    pub fn wants(&self, d: &Live) -> bool {
        let scenario = d.scenario.to_ascii_lowercase();
        self.scopes.iter().any(|s| s.eq_ignore_ascii_case(d.scope))
            && (self.origins.is_empty() || self.origins.iter().any(|o| o == "tapline"))
            && (self.containing.is_empty() || self.containing.iter().any(|c| scenario.contains(c)))
            && !self.not_containing.iter().any(|c| scenario.contains(c))
    }
}

/// Decision ids: stable per (rule, value) for the life of the process.
#[derive(Debug, Default)]
pub struct Ids(HashMap<(i64, String), i64>);

impl Ids {
    /// The id of `d`, handing out the next one the first time.
    pub fn of(&mut self, d: &Live) -> i64 {
        let next = self.0.len() as i64 + 1;
        *self.0.entry((d.rule, d.value.clone())).or_insert(next)
    }
}

/// Writes a live decision for the wire, its duration counted from `now_ns`.
pub fn decision(d: &Live, id: i64, now_ns: i64) -> Decision {
    let secs = d.expires_ns.map_or(PERMANENT_S, |e| {
        ((e - now_ns).max(0) / 1_000_000_000) as u64
    });
    Decision {
        id,
        origin: "tapline",
        kind: "ban",
        scope: d.scope,
        value: d.value.clone(),
        duration: go_duration(secs),
        scenario: d.scenario.to_string(),
    }
}

/// What a bouncer was last sent, by value.
pub type Cursor = BTreeMap<String, Live>;

/// The delta for a bouncer whose cursor is `sent` (`None`: a startup pull, or a bouncer this
/// hub has not served since it started): (new, deleted), and `sent` brought up to date.
/// `gone` is what ended recently, sent as deleted on a first pull so a bouncer that kept
/// running while the hub restarted still drops it.
pub fn delta(
    current: &BTreeMap<String, Live>,
    filter: &Filter,
    sent: &mut Option<Cursor>,
    gone: &BTreeMap<String, Live>,
) -> (Vec<Live>, Vec<Live>) {
    let wanted: Cursor = current
        .iter()
        .filter(|(_, d)| filter.wants(d))
        .map(|(k, d)| (k.clone(), d.clone()))
        .collect();
    let (new, deleted) = match sent.as_ref() {
        None => (
            wanted.values().cloned().collect(),
            gone.iter()
                .filter(|(v, d)| !wanted.contains_key(*v) && filter.wants(d))
                .map(|(_, d)| d.clone())
                .collect(),
        ),
        Some(before) => (
            wanted
                .iter()
                .filter(|(v, d)| before.get(*v) != Some(d))
                .map(|(_, d)| d.clone())
                .collect(),
            before
                .iter()
                .filter(|(v, _)| !wanted.contains_key(*v))
                .map(|(_, d)| d.clone())
                .collect(),
        ),
    };
    *sent = Some(wanted);
    (new, deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapline_enforce::effective::Active;

    fn active(id: i64, net: &str, expires_ns: Option<i64>) -> Active {
        Active {
            id,
            target: Target::Net(net.parse().unwrap()),
            header: None,
            paths: Vec::new(),
            methods: Vec::new(),
            remaining_s: None,
            expires_ns,
            reason: "stuffing".into(),
        }
    }

    #[test]
    fn durations_are_written_the_way_go_parses_them() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(59), "59s");
        assert_eq!(go_duration(61), "1m1s");
        assert_eq!(go_duration(86_398), "23h59m58s");
    }

    #[test]
    fn one_decision_per_value_small_ranges_expanded_scoped_rules_left_out() {
        let mut scoped = active(4, "192.0.2.9/32", None);
        scoped.paths = vec!["/admin/*".into()];
        let e = Effective {
            block: vec![
                active(1, "203.0.113.7/32", Some(10)),
                active(2, "203.0.113.7/32", None),
                active(3, "198.51.100.0/30", Some(5)),
                active(5, "10.0.0.0/15", Some(5)),
                scoped,
            ],
            monitor: vec![active(9, "192.0.2.1/32", None)],
            spared: Vec::new(),
        };
        let live = live_decisions(&e);
        assert_eq!(live["203.0.113.7"].rule, 2, "the permanent rule outlives");
        assert_eq!(live["198.51.100.3"].scope, "Ip");
        assert_eq!(live["10.0.0.0/15"].scope, "Range");
        assert_eq!(live.len(), 1 + 4 + 1);
        let wide = Effective {
            block: vec![active(6, "10.1.0.0/16", None)],
            ..Effective::default()
        };
        assert_eq!(
            live_decisions(&wide).len(),
            65_536,
            "a /16 goes address by address"
        );
        assert!(!live.contains_key("192.0.2.9") && !live.contains_key("192.0.2.1"));
    }

    #[test]
    fn cursors_return_only_what_changed_and_deletions_once() {
        let e1 = Effective {
            block: vec![
                active(1, "203.0.113.7/32", None),
                active(2, "203.0.113.8/32", None),
            ],
            ..Effective::default()
        };
        let e2 = Effective {
            block: vec![
                active(2, "203.0.113.8/32", None),
                active(3, "10.0.0.0/15", None),
            ],
            ..Effective::default()
        };
        let all = Filter::from_query(&[]);
        let mut cursor = None;
        let (new, deleted) = delta(&live_decisions(&e1), &all, &mut cursor, &BTreeMap::new());
        assert_eq!((new.len(), deleted.len()), (2, 0));
        let (new, deleted) = delta(&live_decisions(&e1), &all, &mut cursor, &BTreeMap::new());
        assert_eq!((new.len(), deleted.len()), (0, 0), "nothing changed");
        let (new, deleted) = delta(&live_decisions(&e2), &all, &mut cursor, &BTreeMap::new());
        assert_eq!(
            new.iter().map(|d| d.value.as_str()).collect::<Vec<_>>(),
            ["10.0.0.0/15"]
        );
        assert_eq!(
            deleted.iter().map(|d| d.value.as_str()).collect::<Vec<_>>(),
            ["203.0.113.7"]
        );
        // A bouncer asking for addresses only never hears of the range.
        let ips = Filter::from_query(&[("scopes".into(), "ip".into())]);
        let mut c2 = None;
        let (new, _) = delta(&live_decisions(&e2), &ips, &mut c2, &BTreeMap::new());
        assert_eq!(new.len(), 1);
        let none = Filter::from_query(&[("scenarios_not_containing".into(), "STUFFING".into())]);
        let (new, _) = delta(&live_decisions(&e2), &none, &mut None, &BTreeMap::new());
        assert!(new.is_empty());
    }
}
