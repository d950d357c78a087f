//! The rules in force: removed and expired ones left out, monitor rules kept apart, and the
//! allowlist subtracted — an allowlisted value is never exported, whatever a rule says.

use ipnet::IpNet;
use std::net::IpAddr;
use tapline_store::blocks::{Action, Allow, MatchKind, Rule};

/// A value as a rule names it, checked.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// A network; an address is a /32 or /128.
    Net(IpNet),
    /// A principal, session, key or header value, as given.
    Text(MatchKind, String),
}

/// Why a value cannot be a rule's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not an address or CIDR.
    #[error("`{0}` is not an IP address or CIDR (203.0.113.7, 198.51.100.0/24, 2001:db8::/48)")]
    NotIp(String),
    /// Empty.
    #[error("a {0} rule needs a value")]
    Empty(&'static str),
    /// Too wide to be meant.
    #[error("`{0}` would block a whole address family; narrow it (at least /8 or /16 for IPv6)")]
    TooWide(String),
}

/// Reads an IP rule's value: an address or a CIDR, host bits cleared.
pub fn parse_net(value: &str) -> Result<IpNet, ValueError> {
    let v = value.trim();
    let net = match v.parse::<IpNet>() {
        Ok(n) => n.trunc(),
        Err(_) => match v.parse::<IpAddr>() {
            Ok(a) => IpNet::from(a),
            Err(_) => return Err(ValueError::NotIp(value.to_owned())),
        },
    };
    let min = if net.addr().is_ipv4() { 8 } else { 16 };
    if net.prefix_len() < min {
        return Err(ValueError::TooWide(value.to_owned()));
    }
    Ok(net)
}

/// A rule as enforced.
#[derive(Clone, Debug, PartialEq)]
pub struct Active {
    /// The rule's id.
    pub id: i64,
    /// What it matches (for IP rules, one of the pieces left after the allowlist).
    pub target: Target,
    /// The header's name, for header rules.
    pub header: Option<String>,
    /// Path globs; empty: every path.
    pub paths: Vec<String>,
    /// Methods; empty: every method.
    pub methods: Vec<String>,
    /// Seconds left, `None` when permanent.
    pub remaining_s: Option<u64>,
    /// When it ends (ns since the epoch), `None` when permanent.
    pub expires_ns: Option<i64>,
    /// Why.
    pub reason: String,
}

/// What is in force at a moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Effective {
    /// Enforced.
    pub block: Vec<Active>,
    /// Counted, not enforced (never exported to agents).
    pub monitor: Vec<Active>,
    /// Rules (or parts) the allowlist took out: (rule id, what was spared).
    pub spared: Vec<(i64, String)>,
}

/// The rules in force at `now_ns`, the allowlist subtracted.
pub fn effective(rules: &[Rule], allow: &[Allow], now_ns: i64) -> Effective {
    let allowed_nets: Vec<IpNet> = allow
        .iter()
        .filter(|a| a.kind == MatchKind::Ip)
        .filter_map(|a| parse_net(&a.value).ok())
        .collect();
    let mut out = Effective::default();
    for r in rules.iter().filter(|r| r.active_at(now_ns)) {
        let remaining_s = r
            .expires_ns
            .map(|e| ((e - now_ns).max(0) / 1_000_000_000) as u64);
        let active = |target| Active {
            id: r.id,
            target,
            header: r.header.clone(),
            paths: r.paths.clone(),
            methods: r.methods.clone(),
            remaining_s,
            expires_ns: r.expires_ns,
            reason: r.reason.clone(),
        };
        let pieces: Vec<Target> = if r.kind == MatchKind::Ip {
            let Ok(net) = parse_net(&r.value) else {
                continue;
            };
            let (kept, spared) = subtract(net, &allowed_nets);
            out.spared
                .extend(spared.into_iter().map(|s| (r.id, s.to_string())));
            kept.into_iter().map(Target::Net).collect()
        } else {
            let allowed = allow.iter().any(|a| a.kind == r.kind && a.value == r.value);
            if allowed {
                out.spared.push((r.id, r.value.clone()));
                continue;
            }
            vec![Target::Text(r.kind, r.value.clone())]
        };
        let list = match r.action {
            Action::Block => &mut out.block,
            Action::Monitor => &mut out.monitor,
        };
        list.extend(pieces.into_iter().map(active));
    }
    out
}

/// `net` less every allowed network: the pieces left (as few CIDRs as halving gives) and the
/// allowed parts that were inside it.
pub fn subtract(net: IpNet, allowed: &[IpNet]) -> (Vec<IpNet>, Vec<IpNet>) {
    let mut kept = Vec::new();
    let mut spared = Vec::new();
    let mut todo = vec![net];
    while let Some(n) = todo.pop() {
        if let Some(a) = allowed.iter().find(|a| a.contains(&n)) {
            let _ = a;
            spared.push(n);
        } else if allowed.iter().any(|a| n.contains(a)) {
            // Split in halves until the allowed part stands alone.
            match n.subnets(n.prefix_len() + 1) {
                Ok(halves) => todo.extend(halves),
                Err(_) => spared.push(n),
            }
        } else {
            kept.push(n);
        }
    }
    kept.sort();
    spared.sort();
    (kept, spared)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn values_are_read_as_networks_and_wide_ones_refused() {
        assert_eq!(parse_net("203.0.113.7").unwrap(), net("203.0.113.7/32"));
        assert_eq!(
            parse_net("198.51.100.77/24").unwrap(),
            net("198.51.100.0/24")
        );
        assert_eq!(parse_net("2001:db8::1").unwrap(), net("2001:db8::1/128"));
        assert!(matches!(
            parse_net("0.0.0.0/0"),
            Err(ValueError::TooWide(_))
        ));
        assert!(matches!(parse_net("nope"), Err(ValueError::NotIp(_))));
    }

    #[test]
    fn an_allowed_address_is_cut_out_of_a_blocked_network() {
        let (kept, spared) = subtract(net("198.51.100.0/24"), &[net("198.51.100.7/32")]);
        assert_eq!(spared, vec![net("198.51.100.7/32")]);
        // The /24 less one address: 8 CIDRs, covering 255 addresses.
        assert_eq!(kept.len(), 8);
        let covered: u64 = kept.iter().map(|n| 1u64 << (32 - n.prefix_len())).sum();
        assert_eq!(covered, 255);
        assert!(kept.iter().all(|n| !n.contains(&net("198.51.100.7/32"))));
        // A network inside an allowed one is spared whole; unrelated ones are untouched.
        assert_eq!(
            subtract(net("10.1.2.0/24"), &[net("10.0.0.0/8")]).0,
            Vec::<IpNet>::new()
        );
        assert_eq!(
            subtract(net("192.0.2.0/24"), &[net("10.0.0.0/8")]).0,
            vec![net("192.0.2.0/24")]
        );
    }
}
