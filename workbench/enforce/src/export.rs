//! Block lists in each enforcement point's own idiom. Only enforced rules are exported
//! (never monitor rules, never allowlisted values); what a format cannot express (a user rule
//! for nginx, a path scope for nftables) is listed in a comment, not silently dropped.

mod rules;

use crate::effective::{Active, Effective, Target};
use ipnet::IpNet;
use std::fmt::Write as _;
use tapline_analysis::actor::is_shortened;
use tapline_store::blocks::MatchKind;

/// The export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Every enforced and monitored rule, for scripts and agents.
    Json,
    /// An nginx include for the `http` context: `geo` for addresses, `map` for API keys.
    Nginx,
    /// An nftables table with interval sets (per-element timeouts) and a drop chain.
    Nftables,
    /// A HAProxy ACL file of addresses and networks (`src -f FILE`).
    Haproxy,
    /// HAProxy runtime-API commands refilling the running ACL without a reload.
    HaproxyRuntime,
    /// ModSecurity v3 rules: deny for blocking rules, log-only for monitor rules.
    Modsecurity,
    /// Envoy's RBAC filter: DENY policies, monitor rules as `shadow_rules`.
    Envoy,
    /// AWS WAF IP sets (IPv4 and IPv6), `create-ip-set` input.
    AwsWaf,
    /// Cloudflare IP list items.
    Cloudflare,
}

impl Format {
    /// Every format, for help texts.
    pub const ALL: [Format; 9] = [
        Format::Json,
        Format::Nginx,
        Format::Nftables,
        Format::Haproxy,
        Format::HaproxyRuntime,
        Format::Modsecurity,
        Format::Envoy,
        Format::AwsWaf,
        Format::Cloudflare,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Nginx => "nginx",
            Format::Nftables => "nftables",
            Format::Haproxy => "haproxy",
            Format::HaproxyRuntime => "haproxy-runtime",
            Format::Modsecurity => "modsecurity",
            Format::Envoy => "envoy",
            Format::AwsWaf => "aws-waf",
            Format::Cloudflare => "cloudflare",
        }
    }

    /// Reads a format name.
    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == s.trim())
    }
}

/// The block list of `e` in `format`.
pub fn export(e: &Effective, format: Format) -> String {
    match format {
        Format::Json => json(e),
        Format::Nginx => nginx(e),
        Format::Nftables => nftables(e),
        Format::Haproxy => haproxy(e),
        Format::HaproxyRuntime => rules::haproxy_runtime(e, HAPROXY_ACL),
        Format::Modsecurity => rules::modsecurity(e),
        Format::Envoy => rules::envoy(e),
        Format::AwsWaf => rules::aws_waf(e),
        Format::Cloudflare => rules::cloudflare(e),
    }
}

/// Where the HAProxy ACL file is expected (the runtime commands name it).
pub const HAPROXY_ACL: &str = "/etc/haproxy/tapline-blocked.acl";

fn unscoped(a: &Active) -> bool {
    a.paths.is_empty() && a.methods.is_empty()
}

fn nets(e: &Effective) -> impl Iterator<Item = (&Active, IpNet)> {
    e.block
        .iter()
        .filter(|a| unscoped(a))
        .filter_map(|a| match &a.target {
            Target::Net(n) => Some((a, *n)),
            Target::Text(..) => None,
        })
}

/// Rules a format leaves to the decision endpoint, as comment lines.
fn not_expressed(e: &Effective, expressed: impl Fn(&Active) -> bool, out: &mut String) {
    for a in e.block.iter().filter(|a| !expressed(a)) {
        let what = match &a.target {
            Target::Net(n) => format!("ip {n}"),
            Target::Text(k, v) => format!("{} {}", k.name(), v.replace(['\n', '\r'], " ")),
        };
        let _ = writeln!(
            out,
            "# rule {} ({what}, scoped or not expressible here): enforced by the decision endpoint",
            a.id
        );
    }
}

fn header(out: &mut String, what: &str) {
    let _ = writeln!(
        out,
        "# Tapline block list ({what}). Generated: edit the rules in Tapline, not this file."
    );
}

fn json(e: &Effective) -> String {
    let item = |a: &Active| {
        let (kind, value) = match &a.target {
            Target::Net(n) => ("ip", n.to_string()),
            Target::Text(k, v) => (k.name(), v.clone()),
        };
        serde_json::json!({
            "rule": a.id, "kind": kind, "value": value, "header": a.header,
            "paths": a.paths, "methods": a.methods, "expires_in_s": a.remaining_s, "reason": a.reason,
        })
    };
    let doc = serde_json::json!({
        "format": "tapline-blocklist/1",
        "block": e.block.iter().map(item).collect::<Vec<_>>(),
        "monitor": e.monitor.iter().map(item).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

/// A string as an nginx quoted token.
fn nginx_quoted(s: &str) -> String {
    let escaped: String = s
        .chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' | '$' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

fn nginx(e: &Effective) -> String {
    let mut out = String::new();
    header(
        &mut out,
        "nginx: include in the http context; in a server or location: if ($tapline_blocked) { return 403; }",
    );
    out.push_str("geo $tapline_blocked_ip {\n    default 0;\n");
    for (_, n) in nets(e) {
        let _ = writeln!(out, "    {n} 1;");
    }
    out.push_str("}\n\nmap $http_x_api_key $tapline_blocked_key {\n    default 0;\n");
    for a in e.block.iter().filter(|a| unscoped(a)) {
        if let Target::Text(MatchKind::Key, v) = &a.target
            && !is_shortened(v)
        {
            let _ = writeln!(out, "    {} 1;", nginx_quoted(v));
        }
    }
    out.push_str("}\n\nmap \"$tapline_blocked_ip$tapline_blocked_key\" $tapline_blocked {\n    default 1;\n    \"00\" 0;\n}\n");
    not_expressed(
        e,
        |a| {
            unscoped(a)
                && match &a.target {
                    Target::Net(_) => true,
                    Target::Text(MatchKind::Key, v) => !is_shortened(v),
                    Target::Text(..) => false,
                }
        },
        &mut out,
    );
    out
}

fn nft_element(n: &IpNet, remaining_s: Option<u64>) -> String {
    let addr = if n.prefix_len() == n.max_prefix_len() {
        n.addr().to_string()
    } else {
        n.to_string()
    };
    match remaining_s {
        Some(s) => format!("{addr} timeout {}s", s.max(1)),
        None => addr,
    }
}

fn nftables(e: &Effective) -> String {
    let mut out = String::new();
    header(&mut out, "nftables: nft -f FILE");
    out.push_str("table inet tapline\ndelete table inet tapline\ntable inet tapline {\n");
    for (family, kind, v4) in [("v4", "ipv4_addr", true), ("v6", "ipv6_addr", false)] {
        let elems: Vec<String> = nets(e)
            .filter(|(_, n)| n.addr().is_ipv4() == v4)
            .map(|(a, n)| nft_element(&n, a.remaining_s))
            .collect();
        let _ = writeln!(
            out,
            "    set blocked_{family} {{\n        type {kind}\n        flags interval, timeout"
        );
        if !elems.is_empty() {
            let _ = writeln!(out, "        elements = {{ {} }}", elems.join(", "));
        }
        out.push_str("    }\n");
    }
    out.push_str(
        "    chain input {\n        type filter hook input priority filter; policy accept;\n",
    );
    out.push_str(
        "        ip saddr @blocked_v4 drop\n        ip6 saddr @blocked_v6 drop\n    }\n}\n",
    );
    not_expressed(
        e,
        |a| unscoped(a) && matches!(a.target, Target::Net(_)),
        &mut out,
    );
    out
}

fn haproxy(e: &Effective) -> String {
    let mut out = String::new();
    header(
        &mut out,
        "HAProxy ACL file: http-request deny deny_status 403 if { src -f FILE }",
    );
    for (_, n) in nets(e) {
        let _ = writeln!(out, "{n}");
    }
    not_expressed(
        e,
        |a| unscoped(a) && matches!(a.target, Target::Net(_)),
        &mut out,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn active(id: i64, target: Target, remaining_s: Option<u64>) -> Active {
        Active {
            id,
            target,
            header: None,
            paths: Vec::new(),
            methods: Vec::new(),
            remaining_s,
            expires_ns: None,
            reason: "r".into(),
        }
    }

    fn sample() -> Effective {
        Effective {
            block: vec![
                active(
                    1,
                    Target::Net("203.0.113.7/32".parse().unwrap()),
                    Some(3600),
                ),
                active(2, Target::Net("2001:db8::/48".parse().unwrap()), None),
                active(3, Target::Text(MatchKind::Key, "k-\"x".into()), None),
                active(4, Target::Text(MatchKind::User, "mallory".into()), None),
            ],
            monitor: vec![active(
                5,
                Target::Net("192.0.2.1/32".parse().unwrap()),
                None,
            )],
            spared: Vec::new(),
        }
    }

    #[test]
    fn each_format_carries_what_it_can_and_names_the_rest() {
        let e = sample();
        let nft = export(&e, Format::Nftables);
        assert!(
            nft.contains("elements = { 203.0.113.7 timeout 3600s }"),
            "{nft}"
        );
        assert!(nft.contains("elements = { 2001:db8::/48 }"), "{nft}");
        assert!(nft.contains("# rule 4 (user mallory"), "{nft}");
        assert!(
            !nft.contains("192.0.2.1"),
            "monitor rules are never exported: {nft}"
        );
        let ngx = export(&e, Format::Nginx);
        assert!(
            ngx.contains("203.0.113.7/32 1;") && ngx.contains("\"k-\\\"x\" 1;"),
            "{ngx}"
        );
        let ha = export(&e, Format::Haproxy);
        assert_eq!(
            ha.lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>(),
            vec!["203.0.113.7/32", "2001:db8::/48"]
        );
        let json: serde_json::Value = serde_json::from_str(&export(&e, Format::Json)).unwrap();
        assert_eq!(json["block"].as_array().unwrap().len(), 4);
        assert_eq!(json["monitor"][0]["value"], "192.0.2.1/32");
    }
}
