//! Per-request decisions from an in-memory index of the rules in force: what the decision
//! endpoint answers a proxy, and what monitor mode counts on recorded traffic.
//!
//! A request is reduced to its actor the way findings name actors (`tapline-analysis`'s
//! [`actor_from_headers`]): address, principal, API key and session, keys and sessions in
//! their shortened form. Rule values typed in full are shortened when indexed, so a rule made
//! from a finding and one typed by an analyst match the same requests.
//!
//! Lookups cost a hash probe per prefix length in use (addresses), one per identifier and one
//! per header rule name: independent of how many rules there are.

use crate::effective::{Active, Effective, Target, parse_net};
use ipnet::IpNet;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use tapline_analysis::actor::{actor_from_headers, is_shortened, shorten};
use tapline_store::blocks::{Allow, MatchKind};

/// What the index says of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let through: no rule matched.
    Allow,
    /// Let through because the allowlist names one of the request's identifiers.
    Allowlisted,
    /// Refused by this rule.
    Block(i64),
    /// Let through, counted against this monitor rule.
    Monitor(i64),
}

/// A request as a proxy describes it.
#[derive(Clone, Debug, Default)]
pub struct Request<'a> {
    /// The client's address.
    pub client: Option<IpAddr>,
    /// The method, as sent.
    pub method: &'a str,
    /// The path, with or without the query (the query is ignored).
    pub path: &'a str,
    /// Request headers in order.
    pub headers: Vec<(&'a str, &'a str)>,
}

#[derive(Clone, Debug)]
struct Scoped {
    id: i64,
    block: bool,
    paths: Vec<String>,
    methods: Vec<String>,
}

impl Scoped {
    fn covers(&self, method: &str, path: &str) -> bool {
        (self.methods.is_empty() || self.methods.iter().any(|m| m.eq_ignore_ascii_case(method)))
            && (self.paths.is_empty() || self.paths.iter().any(|g| glob(g, path)))
    }
}

/// `*` any run of characters (slashes too), `?` one character; everything else literal.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The rules in force, indexed for lookups.
#[derive(Clone, Debug, Default)]
pub struct Index {
    rules: Vec<Scoped>,
    /// Per prefix length in use: network address → rules.
    nets: HashMap<u8, HashMap<IpAddr, Vec<usize>>>,
    v4_prefixes: Vec<u8>,
    v6_prefixes: Vec<u8>,
    /// (kind, value as findings write it) → rules, for user, session and key rules.
    ids: HashMap<(MatchKind, String), Vec<usize>>,
    /// lowercased header name → value → rules.
    headers: HashMap<String, HashMap<String, Vec<usize>>>,
    allow_nets: Vec<IpNet>,
    allow_ids: BTreeSet<(MatchKind, String)>,
}

/// A key or session value as findings write it.
fn as_actor_value(kind: MatchKind, value: &str) -> String {
    match kind {
        MatchKind::Key | MatchKind::Session if !is_shortened(value) => shorten(value.trim()),
        _ => value.to_owned(),
    }
}

impl Index {
    /// Indexes what is in force (blocked and monitored) and the allowlist.
    pub fn build(e: &Effective, allow: &[Allow]) -> Index {
        let mut ix = Index::default();
        for (a, block) in e
            .block
            .iter()
            .map(|a| (a, true))
            .chain(e.monitor.iter().map(|a| (a, false)))
        {
            ix.add(a, block);
        }
        let lens = |v4: bool| {
            let mut l: Vec<u8> = ix
                .nets
                .iter()
                .filter(|(_, m)| m.keys().any(|k| k.is_ipv4() == v4))
                .map(|(l, _)| *l)
                .collect();
            // Longest first: the most specific rule answers.
            l.sort_unstable_by(|a, b| b.cmp(a));
            l
        };
        ix.v4_prefixes = lens(true);
        ix.v6_prefixes = lens(false);
        for a in allow {
            match a.kind {
                MatchKind::Ip => ix.allow_nets.extend(parse_net(&a.value).ok()),
                k => {
                    ix.allow_ids.insert((k, as_actor_value(k, &a.value)));
                }
            }
        }
        ix
    }

    fn add(&mut self, a: &Active, block: bool) {
        let at = self.rules.len();
        self.rules.push(Scoped {
            id: a.id,
            block,
            paths: a.paths.clone(),
            methods: a.methods.clone(),
        });
        match &a.target {
            Target::Net(n) => self
                .nets
                .entry(n.prefix_len())
                .or_default()
                .entry(n.network())
                .or_default()
                .push(at),
            Target::Text(MatchKind::Header, v) => {
                let name = a.header.as_deref().unwrap_or_default().to_ascii_lowercase();
                self.headers
                    .entry(name)
                    .or_default()
                    .entry(v.clone())
                    .or_default()
                    .push(at);
            }
            Target::Text(k, v) => self
                .ids
                .entry((*k, as_actor_value(*k, v)))
                .or_default()
                .push(at),
        }
    }

    /// How many rules (pieces) are indexed.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether no rule is indexed.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The decision for one request.
    pub fn decide(&self, req: &Request<'_>) -> Verdict {
        let actor = actor_from_headers(req.client, req.headers.iter().copied());
        let ids = [
            (MatchKind::User, actor.user),
            (MatchKind::Key, actor.key),
            (MatchKind::Session, actor.session),
        ];
        let allowlisted = req
            .client
            .is_some_and(|c| self.allow_nets.iter().any(|n| n.contains(&c)))
            || ids.iter().any(|(k, v)| {
                v.as_ref()
                    .is_some_and(|v| self.allow_ids.contains(&(*k, v.clone())))
            });
        if allowlisted {
            return Verdict::Allowlisted;
        }
        let path = req.path.split(['?', '#']).next().unwrap_or_default();
        let mut monitor = None;
        let mut consider = |hits: &[usize]| -> Option<i64> {
            for &i in hits {
                let r = &self.rules[i];
                if r.covers(req.method, path) {
                    if r.block {
                        return Some(r.id);
                    }
                    monitor.get_or_insert(r.id);
                }
            }
            None
        };
        if let Some(ip) = req.client {
            let lens = if ip.is_ipv4() {
                &self.v4_prefixes
            } else {
                &self.v6_prefixes
            };
            for len in lens {
                let Ok(net) = IpNet::new(ip, *len) else {
                    continue;
                };
                if let Some(hits) = self.nets.get(len).and_then(|m| m.get(&net.network()))
                    && let Some(id) = consider(hits)
                {
                    return Verdict::Block(id);
                }
            }
        }
        for (k, v) in &ids {
            if let Some(v) = v
                && let Some(hits) = self.ids.get(&(*k, v.clone()))
                && let Some(id) = consider(hits)
            {
                return Verdict::Block(id);
            }
        }
        if !self.headers.is_empty() {
            for (name, value) in &req.headers {
                let Some(by_value) = self.headers.get(&name.to_ascii_lowercase()) else {
                    continue;
                };
                if let Some(hits) = by_value.get(value.trim())
                    && let Some(id) = consider(hits)
                {
                    return Verdict::Block(id);
                }
            }
        }
        monitor.map_or(Verdict::Allow, Verdict::Monitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effective::effective;
    use tapline_store::blocks::{Action, Rule};

    fn rule(id: i64, kind: MatchKind, value: &str, action: Action) -> Rule {
        Rule {
            action,
            ..super::tests_support::rule(id, kind, value)
        }
    }

    fn req<'a>(
        ip: &str,
        method: &'a str,
        path: &'a str,
        headers: &[(&'a str, &'a str)],
    ) -> Request<'a> {
        Request {
            client: ip.parse().ok(),
            method,
            path,
            headers: headers.to_vec(),
        }
    }

    #[test]
    fn globs_match_like_shell_patterns_across_slashes() {
        assert!(glob("/api/*", "/api/users/7"));
        assert!(glob("/api/users/?", "/api/users/7"));
        assert!(!glob("/api/users/?", "/api/users/77"));
        assert!(glob("*/export", "/v2/orders/export"));
        assert!(!glob("/admin*", "/api/admin"));
        assert!(glob("/a*b*c", "/axxbyyc"));
    }

    #[test]
    fn each_identifier_kind_is_matched_and_the_allowlist_wins() {
        let mut scoped = rule(4, MatchKind::Ip, "198.51.100.0/24", Action::Block);
        scoped.paths = vec!["/admin/*".into()];
        scoped.methods = vec!["DELETE".into()];
        let rules = vec![
            rule(1, MatchKind::Ip, "203.0.113.0/24", Action::Block),
            rule(2, MatchKind::Key, "k-secret-123456", Action::Block),
            rule(3, MatchKind::Header, "evil-bot", Action::Block),
            scoped,
            rule(5, MatchKind::User, "mallory", Action::Monitor),
            rule(6, MatchKind::Ip, "203.0.113.9", Action::Block),
        ];
        let allow = vec![Allow {
            id: 1,
            kind: MatchKind::User,
            value: "ops".into(),
            note: String::new(),
            created_by: "t".into(),
            created_ns: 0,
        }];
        let ix = Index::build(&effective(&rules, &allow, 1), &allow);
        assert_eq!(
            ix.decide(&req("203.0.113.7", "GET", "/", &[])),
            Verdict::Block(1)
        );
        // The most specific network answers.
        assert_eq!(
            ix.decide(&req("203.0.113.9", "GET", "/", &[])),
            Verdict::Block(6)
        );
        assert_eq!(
            ix.decide(&req("192.0.2.1", "GET", "/", &[])),
            Verdict::Allow
        );
        let key = [("X-Api-Key", "k-secret-123456")];
        assert_eq!(
            ix.decide(&req("192.0.2.1", "GET", "/x", &key)),
            Verdict::Block(2)
        );
        let bot = [("x-client", "evil-bot")];
        assert_eq!(
            ix.decide(&req("192.0.2.1", "GET", "/x", &bot)),
            Verdict::Block(3)
        );
        // Scope: method and path glob both needed; the query is not part of the path.
        assert_eq!(
            ix.decide(&req("198.51.100.4", "DELETE", "/admin/users/3?x=1", &[])),
            Verdict::Block(4)
        );
        assert_eq!(
            ix.decide(&req("198.51.100.4", "GET", "/admin/users/3", &[])),
            Verdict::Allow
        );
        // A Basic user: monitored, let through.
        let basic = [("Authorization", "Basic bWFsbG9yeTpwdw==")];
        assert_eq!(
            ix.decide(&req("192.0.2.1", "GET", "/", &basic)),
            Verdict::Monitor(5)
        );
        // An allowlisted user from a blocked network is let through.
        let ops = [("Authorization", "Basic b3BzOnB3")];
        assert_eq!(
            ix.decide(&req("203.0.113.7", "GET", "/", &ops)),
            Verdict::Allowlisted
        );
    }

    #[test]
    fn a_rule_made_from_a_finding_matches_the_full_key() {
        let short = shorten("k-secret-123456");
        let rules = vec![rule(1, MatchKind::Key, &short, Action::Block)];
        let ix = Index::build(&effective(&rules, &[], 1), &[]);
        let key = [("apikey", "k-secret-123456")];
        assert_eq!(
            ix.decide(&req("192.0.2.1", "GET", "/", &key)),
            Verdict::Block(1)
        );
        let other = [("apikey", "k-secret-999999")];
        assert_eq!(
            ix.decide(&req("192.0.2.1", "GET", "/", &other)),
            Verdict::Allow
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Globs never panic; a lone `*` matches everything and a glob without wildcards
        /// matches only itself.
        #[test]
        fn globs_are_total(pattern in "[a-z/*?.]{0,12}", text in "[a-z/.]{0,16}") {
            let _ = glob(&pattern, &text);
            prop_assert!(glob("*", &text));
            prop_assert!(glob(&text, &text));
        }

        /// Any request, however odd its headers, gets a verdict from an index of every kind.
        #[test]
        fn any_request_gets_a_verdict(
            headers in proptest::collection::vec(("[A-Za-z-]{1,16}", "[ -~]{0,80}"), 0..10),
            ip in any::<[u8; 4]>(),
        ) {
            let rules = vec![
                super::tests_support::rule(1, MatchKind::Ip, "10.0.0.0/8"),
                super::tests_support::rule(2, MatchKind::Key, "k"),
                super::tests_support::rule(3, MatchKind::Header, "v"),
            ];
            let ix = Index::build(&crate::effective::effective(&rules, &[], 1), &[]);
            let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            let req = Request { client: Some(IpAddr::from(ip)), method: "GET", path: "/", headers: h };
            let v = ix.decide(&req);
            if ip[0] == 10 {
                prop_assert_eq!(v, Verdict::Block(1));
            }
        }
    }
}

#[cfg(test)]
mod tests_support {
    use tapline_store::blocks::{Action, MatchKind, Rule};

    pub fn rule(id: i64, kind: MatchKind, value: &str) -> Rule {
        Rule {
            id,
            kind,
            value: value.into(),
            header: (kind == MatchKind::Header).then(|| "X-Client".into()),
            paths: Vec::new(),
            methods: Vec::new(),
            action: Action::Block,
            expires_ns: None,
            origin: "manual".into(),
            reason: String::new(),
            findings: Vec::new(),
            created_by: "t".into(),
            created_ns: 0,
            removed_ns: None,
        }
    }
}
