//! Who sent a request: the client address and, when the request says so, the principal (JWT
//! subject, Basic user), the API key and the session — the identities findings group by.
//! Keys and sessions are kept shortened (first six characters and a hash tag) so a case never
//! stores a usable credential.

use super::profile::{API_KEY_HEADERS, is_session_cookie};
use base64::Engine as _;
use std::collections::BTreeMap;
use tapline_record::Transaction;
use tapline_store::endpoints::{Actor, Finding, Severity};

/// A credential shortened to something recognisable but unusable: `abc123…#1f2e`.
pub fn shorten(secret: &str) -> String {
    let head: String = secret.chars().take(6).collect();
    let tag = blake3::hash(secret.as_bytes()).to_hex();
    format!("{head}…#{}", &tag.as_str()[..4])
}

/// The JWT's subject (`sub`, or `username`, `email`…), without verifying the signature: the
/// token is evidence of who the client claims to be.
fn jwt_subject(token: &str) -> Option<String> {
    tapline_detect::jwt::Jwt::parse(token)?.subject()
}

/// The actor of a transaction's request.
pub fn actor_of(tx: &Transaction) -> Actor {
    actor_from_headers(tx.client.map(|c| c.ip()), tx.request_headers.iter())
}

/// The actor of a request given by its client address and headers: what a block rule
/// matches when a proxy asks for a decision, the same way findings name actors.
pub fn actor_from_headers<'a>(
    client: Option<std::net::IpAddr>,
    headers: impl Iterator<Item = (&'a str, &'a str)>,
) -> Actor {
    let mut a = Actor {
        ip: client.map(|c| c.to_string()),
        ..Actor::default()
    };
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("authorization") {
            let (scheme, cred) = value.trim().split_once(' ').unwrap_or(("", value));
            if scheme.eq_ignore_ascii_case("bearer") {
                match jwt_subject(cred.trim()) {
                    Some(sub) => a.user = Some(sub),
                    None => a.key = Some(shorten(cred.trim())),
                }
            } else if scheme.eq_ignore_ascii_case("basic") {
                let user = base64::engine::general_purpose::STANDARD
                    .decode(cred.trim())
                    .ok()
                    .and_then(|raw| String::from_utf8(raw).ok())
                    .and_then(|s| s.split_once(':').map(|(u, _)| u.to_owned()));
                a.user = user;
            }
        } else if API_KEY_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)) && a.key.is_none() {
            a.key = Some(shorten(value.trim()));
        } else if name.eq_ignore_ascii_case("cookie") && a.session.is_none() {
            a.session = value.split(';').find_map(|c| {
                let (k, v) = c.trim().split_once('=')?;
                (is_session_cookie(k) && !v.is_empty()).then(|| shorten(v))
            });
        }
    }
    a
}

/// Whether a credential is already in [`shorten`]'s form (as findings name keys and sessions).
pub fn is_shortened(s: &str) -> bool {
    s.split_once("…#")
        .is_some_and(|(head, tag)| head.chars().count() <= 6 && tag.len() == 4)
}

/// The actor as one line: `alice (127.0.0.66)`, `key abc123…#1f2e (10.0.0.5)`.
pub fn describe(a: &Actor) -> String {
    let who = a
        .user
        .as_ref()
        .map(|u| format!("user {u}"))
        .or_else(|| a.key.as_ref().map(|k| format!("key {k}")))
        .or_else(|| a.session.as_ref().map(|s| format!("session {s}")));
    match (who, &a.ip) {
        (Some(w), Some(ip)) => format!("{w} ({ip})"),
        (Some(w), None) => w,
        (None, Some(ip)) => ip.clone(),
        (None, None) => "unknown".into(),
    }
}

/// Everything one actor did, across findings: the unit an analyst blocks, tests or reports.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ActorAttacks {
    /// `user 11 (127.0.0.66)`, `127.0.0.77`.
    pub label: String,
    /// The principal the findings share (user, else key, else session), if any.
    pub principal: Option<String>,
    /// Client addresses seen in the findings.
    pub ips: Vec<String>,
    /// The highest severity among the findings.
    pub severity: Severity,
    /// Finding kinds with how many findings of each.
    pub kinds: BTreeMap<String, u64>,
    /// Finding ids, most severe first.
    pub findings: Vec<i64>,
    /// Requests behind the findings (sum of their counts).
    pub requests: u64,
    /// First evidence, ns.
    pub first_seen_ns: i64,
    /// Last evidence, ns.
    pub last_seen_ns: i64,
}

/// Groups findings that name an actor by who it is: the principal when the requests carried
/// one (one user from several addresses is one attacker), else the address. Most severe
/// actors first; findings without an actor (new endpoints, exposed data) are left out.
pub fn attacks_by_actor(findings: &[Finding]) -> Vec<ActorAttacks> {
    let mut groups: BTreeMap<(bool, String), Vec<&Finding>> = BTreeMap::new();
    for f in findings {
        let principal = f
            .actor_user
            .as_deref()
            .or(f.actor_key.as_deref())
            .or(f.actor_session.as_deref());
        let key = match (principal, f.actor_ip.as_deref()) {
            (Some(p), _) => (true, p.to_owned()),
            (None, Some(ip)) => (false, ip.to_owned()),
            (None, None) => continue,
        };
        groups.entry(key).or_default().push(f);
    }
    let mut out: Vec<ActorAttacks> = groups
        .into_iter()
        .map(|((is_principal, _), mut fs)| {
            fs.sort_by_key(|f| (std::cmp::Reverse(f.severity), f.id));
            let first = fs[0];
            let actor = Actor {
                ip: first.actor_ip.clone(),
                user: first.actor_user.clone(),
                key: first.actor_key.clone(),
                session: first.actor_session.clone(),
            };
            let mut ips: Vec<String> = fs.iter().filter_map(|f| f.actor_ip.clone()).collect();
            ips.sort();
            ips.dedup();
            let mut kinds = BTreeMap::new();
            for f in &fs {
                *kinds.entry(f.kind.to_string()).or_default() += 1;
            }
            let label = if ips.len() > 1 {
                format!(
                    "{} ({})",
                    describe(&Actor {
                        ip: None,
                        ..actor.clone()
                    }),
                    ips.join(", ")
                )
            } else {
                describe(&actor)
            };
            ActorAttacks {
                label,
                principal: is_principal.then(|| {
                    actor
                        .user
                        .clone()
                        .or(actor.key.clone())
                        .or(actor.session.clone())
                        .unwrap_or_default()
                }),
                ips,
                severity: first.severity,
                kinds,
                findings: fs.iter().map(|f| f.id).collect(),
                requests: fs.iter().map(|f| f.count).sum(),
                first_seen_ns: fs.iter().map(|f| f.first_seen_ns).min().unwrap_or(0),
                last_seen_ns: fs.iter().map(|f| f.last_seen_ns).max().unwrap_or(0),
            }
        })
        .collect();
    out.sort_by_key(|a| {
        (
            std::cmp::Reverse(a.severity),
            std::cmp::Reverse(a.requests),
            a.label.clone(),
        )
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapline_store::endpoints::FindingKind;

    fn finding(id: i64, kind: &str, severity: &str, ip: &str, user: Option<&str>) -> Finding {
        Finding {
            id,
            kind: FindingKind::from_name(kind).unwrap(),
            severity: Severity::from_name(severity).unwrap(),
            confidence: 0.9,
            endpoint_id: None,
            actor_ip: Some(ip.into()),
            actor_user: user.map(str::to_owned),
            actor_key: None,
            actor_session: None,
            first_seen_ns: id * 10,
            last_seen_ns: id * 10 + 5,
            count: 2,
            title: String::new(),
            evidence: vec![],
            detail: None,
        }
    }

    #[test]
    fn findings_group_by_principal_then_address() {
        let fs = vec![
            finding(1, "xss", "medium", "10.0.0.6", Some("11")),
            finding(2, "bola", "high", "10.0.0.7", Some("11")),
            finding(3, "brute_force", "high", "10.0.0.9", None),
            finding(4, "scraping", "medium", "10.0.0.9", None),
            finding(5, "xss", "medium", "10.0.0.5", None),
        ];
        let g = attacks_by_actor(&fs);
        assert_eq!(g.len(), 3);
        // Ties on severity break on requests: user 11 and 10.0.0.9 both have 4.
        let u = g
            .iter()
            .find(|a| a.principal.as_deref() == Some("11"))
            .unwrap();
        assert_eq!(u.findings, vec![2, 1]);
        assert_eq!(u.severity, Severity::High);
        assert_eq!(u.ips, vec!["10.0.0.6", "10.0.0.7"]);
        assert_eq!(u.label, "user 11 (10.0.0.6, 10.0.0.7)");
        assert_eq!((u.first_seen_ns, u.last_seen_ns), (10, 25));
        let ip = g.iter().find(|a| a.label == "10.0.0.9").unwrap();
        assert_eq!(ip.kinds.len(), 2);
        assert_eq!(ip.requests, 4);
        assert_eq!(g[2].label, "10.0.0.5");
    }

    #[test]
    fn identities_from_headers() {
        let mut tx = Transaction {
            client: Some("127.0.0.66:5000".parse().unwrap_or_else(|_| unreachable!())),
            ..Transaction::default()
        };
        // {"sub":"mallory"}
        tx.request_headers.push(
            "Authorization",
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2ln",
        );
        tx.request_headers
            .push("Cookie", "theme=dark; sessionid=0123456789abcdef");
        let a = actor_of(&tx);
        assert_eq!(a.ip.as_deref(), Some("127.0.0.66"));
        assert_eq!(a.user.as_deref(), Some("mallory"));
        let s = a.session.clone().unwrap_or_default();
        assert!(
            s.starts_with("012345…#") && !s.contains("0123456789abcdef"),
            "{s}"
        );
        assert_eq!(describe(&a), "user mallory (127.0.0.66)");
    }
}
