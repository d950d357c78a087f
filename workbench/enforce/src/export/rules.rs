//! Exports for enforcement points with a rule language of their own: ModSecurity rules, Envoy
//! RBAC (monitor rules as `shadow_rules`), AWS WAF IP sets, Cloudflare list items, and the
//! HAProxy runtime-API commands that swap a running HAProxy's ACL without a reload.

use super::{not_expressed, unscoped};
use crate::effective::{Active, Effective, Target};
use ipnet::IpNet;
use std::fmt::Write as _;
use tapline_analysis::actor::is_shortened;
use tapline_store::blocks::MatchKind;

/// Where ModSecurity rule ids start: Tapline rule N is `BASE + N` (a range no CRS rule uses).
const MODSEC_BASE: i64 = 4_700_000;
/// Headers that carry API keys, as the exports match them.
const KEY_HEADERS: [&str; 3] = ["x-api-key", "api-key", "apikey"];

/// A value usable inside a double-quoted ModSecurity or nginx argument as is.
fn plain(v: &str) -> bool {
    !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '\\' | ',' | '$'))
}

/// A path glob as an anchored regular expression (`*` any run, `?` one character).
pub(crate) fn glob_regex(glob: &str) -> String {
    let mut re = String::from("^");
    for c in glob.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c if c.is_ascii_alphanumeric() || c == '/' || c == '-' || c == '_' => re.push(c),
            c => {
                re.push('\\');
                re.push(c);
            }
        }
    }
    re.push('$');
    re
}

/// What a rule matches, in ModSecurity terms; `None`: not expressible there.
fn modsec_match(a: &Active) -> Option<String> {
    match &a.target {
        Target::Net(n) => Some(format!("REMOTE_ADDR \"@ipMatch {n}\"")),
        Target::Text(MatchKind::Key, v) if plain(v) && !is_shortened(v) => {
            let vars: Vec<String> = KEY_HEADERS
                .iter()
                .map(|h| format!("REQUEST_HEADERS:{h}"))
                .collect();
            Some(format!("{} \"@streq {v}\"", vars.join("|")))
        }
        Target::Text(MatchKind::Header, v) if plain(v) => {
            let name = a.header.as_deref().filter(|h| plain(h))?;
            Some(format!("REQUEST_HEADERS:{name} \"@streq {v}\""))
        }
        Target::Text(..) => None,
    }
}

/// ModSecurity v3 rules (phase 1): a blocking rule denies with 403, a monitor rule only logs
/// (`pass,log`), scopes are chained conditions.
pub(crate) fn modsecurity(e: &Effective) -> String {
    let mut out = String::new();
    super::header(
        &mut out,
        "ModSecurity: modsecurity_rules_file FILE (with SecRuleEngine On)",
    );
    let rules = e
        .block
        .iter()
        .map(|a| (a, true))
        .chain(e.monitor.iter().map(|a| (a, false)));
    let mut done = std::collections::BTreeSet::new();
    for (a, block) in rules {
        let Some(first) = modsec_match(a) else {
            continue;
        };
        // One ModSecurity id per Tapline rule: pieces of one network share a rule.
        let id = MODSEC_BASE + a.id;
        let mut conds = vec![first];
        if !a.methods.is_empty() {
            conds.push(format!(
                "REQUEST_METHOD \"@within {}\"",
                a.methods.join(" ")
            ));
        }
        if !a.paths.is_empty() {
            let re: Vec<String> = a.paths.iter().map(|p| glob_regex(p)).collect();
            conds.push(format!("REQUEST_FILENAME \"@rx {}\"", re.join("|")));
        }
        let id = if done.insert(id) {
            id
        } else {
            // A second piece of the same rule: its own id, past the rules' range.
            MODSEC_BASE + 50_000 + done.len() as i64
        };
        let action = if block { "deny,status:403" } else { "pass" };
        let msg = format!(
            "Tapline rule {}{}",
            a.id,
            if block { "" } else { " (monitor)" }
        );
        let (last, chain) = conds.split_last().unwrap_or((&conds[0], &[]));
        if chain.is_empty() {
            let _ = writeln!(
                out,
                "SecRule {last} \"id:{id},phase:1,{action},log,msg:'{msg}',tag:'tapline'\""
            );
            continue;
        }
        let _ = writeln!(
            out,
            "SecRule {} \"id:{id},phase:1,{action},log,msg:'{msg}',tag:'tapline',chain\"",
            chain[0]
        );
        for c in &chain[1..] {
            let _ = writeln!(out, "    SecRule {c} \"chain\"");
        }
        let _ = writeln!(out, "    SecRule {last} \"t:none\"");
    }
    not_expressed(e, |a| modsec_match(a).is_some(), &mut out);
    out
}

fn envoy_principal(a: &Active) -> Option<serde_json::Value> {
    Some(match &a.target {
        Target::Net(n) => serde_json::json!({ "remote_ip": {
            "address_prefix": n.network().to_string(), "prefix_len": n.prefix_len() } }),
        Target::Text(MatchKind::Key, v) if !is_shortened(v) => {
            serde_json::json!({ "or_ids": { "ids":
            KEY_HEADERS.iter().map(|h| serde_json::json!({ "header": { "name": h,
                "string_match": { "exact": v } } })).collect::<Vec<_>>() } })
        }
        Target::Text(MatchKind::Header, v) => serde_json::json!({ "header": {
            "name": a.header.as_deref()?.to_ascii_lowercase(), "string_match": { "exact": v } } }),
        Target::Text(..) => return None,
    })
}

fn envoy_permission(a: &Active) -> serde_json::Value {
    let mut and = Vec::new();
    if !a.methods.is_empty() {
        and.push(
            serde_json::json!({ "or_rules": { "rules": a.methods.iter().map(|m|
            serde_json::json!({ "header": { "name": ":method", "string_match": { "exact": m } } })
        ).collect::<Vec<_>>() } }),
        );
    }
    if !a.paths.is_empty() {
        and.push(serde_json::json!({ "or_rules": { "rules": a.paths.iter().map(|p|
            serde_json::json!({ "url_path": { "path": { "safe_regex": { "regex": glob_regex(p) } } } })
        ).collect::<Vec<_>>() } }));
    }
    if and.is_empty() {
        serde_json::json!({ "any": true })
    } else {
        serde_json::json!({ "and_rules": { "rules": and } })
    }
}

fn envoy_policies(list: &[Active]) -> serde_json::Map<String, serde_json::Value> {
    let mut policies: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
    for a in list {
        let Some(p) = envoy_principal(a) else {
            continue;
        };
        let entry = policies
            .entry(format!("tapline-rule-{}", a.id))
            .or_insert_with(
                || serde_json::json!({ "permissions": [envoy_permission(a)], "principals": [] }),
            );
        if let Some(ps) = entry["principals"].as_array_mut() {
            ps.push(p);
        }
    }
    policies
}

/// Envoy's RBAC HTTP filter (`envoy.filters.http.rbac`, its `typed_config`, as JSON — which is
/// also YAML): DENY policies for blocking rules, the same for monitor rules under
/// `shadow_rules` (evaluated and counted, never enforced).
pub(crate) fn envoy(e: &Effective) -> String {
    let doc = serde_json::json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
        "rules": { "action": "DENY", "policies": envoy_policies(&e.block) },
        "shadow_rules": { "action": "DENY", "policies": envoy_policies(&e.monitor) },
        "shadow_rules_stat_prefix": "tapline_",
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

fn nets(e: &Effective, v4: bool) -> Vec<(&Active, IpNet)> {
    e.block
        .iter()
        .filter(|a| unscoped(a))
        .filter_map(|a| match &a.target {
            Target::Net(n) if n.addr().is_ipv4() == v4 => Some((a, *n)),
            _ => None,
        })
        .collect()
}

/// AWS WAF (v2) IP sets, one per address family, each the input of
/// `aws wafv2 create-ip-set --cli-input-json` (or, with Id and LockToken added,
/// `update-ip-set`).
pub(crate) fn aws_waf(e: &Effective) -> String {
    let set = |v4: bool| {
        let (name, version) = if v4 {
            ("tapline-blocked-v4", "IPV4")
        } else {
            ("tapline-blocked-v6", "IPV6")
        };
        serde_json::json!({
            "Name": name, "Scope": "REGIONAL", "IPAddressVersion": version,
            "Description": "Tapline block rules in force (generated)",
            "Addresses": nets(e, v4).iter().map(|(_, n)| n.to_string()).collect::<Vec<_>>(),
        })
    };
    serde_json::to_string_pretty(&serde_json::json!([set(true), set(false)])).unwrap_or_default()
        + "\n"
}

/// Cloudflare IP list items (the body of `POST …/rules/lists/{list_id}/items`). Cloudflare
/// takes IPv6 networks of /12 to /64 and single addresses: narrower IPv6 networks would have
/// to be widened, so they are left out and named in `not_expressed`.
pub(crate) fn cloudflare(e: &Effective) -> String {
    let fits = |n: &IpNet| n.addr().is_ipv4() || n.prefix_len() <= 64 || n.prefix_len() == 128;
    let mut items = Vec::new();
    let mut left = Vec::new();
    for (a, n) in nets(e, true).into_iter().chain(nets(e, false)) {
        if !fits(&n) {
            left.push(format!("rule {}: {n} (IPv6 narrower than /64)", a.id));
            continue;
        }
        let ip = if n.prefix_len() == n.max_prefix_len() {
            n.addr().to_string()
        } else {
            n.to_string()
        };
        let comment: String = format!("tapline rule {}: {}", a.id, a.reason)
            .chars()
            .take(500)
            .collect();
        items.push(serde_json::json!({ "ip": ip, "comment": comment }));
    }
    let expressed = |a: &Active| unscoped(a) && matches!(&a.target, Target::Net(n) if fits(n));
    let skipped: Vec<String> = e
        .block
        .iter()
        .filter(|a| !expressed(a))
        .map(|a| format!("rule {}", a.id))
        .chain(left)
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "items": items,
        "not_expressed": skipped,
    }))
    .unwrap_or_default()
        + "\n"
}

/// Commands for HAProxy's runtime API (`socat stdio UNIX:/run/haproxy/admin.sock < FILE`, one
/// command a line) that refill a running HAProxy's ACL without a reload: `clear acl`, then
/// `add acl` per network. The ACL file on disk (`--format haproxy`) is what a restart reads.
pub(crate) fn haproxy_runtime(e: &Effective, acl_path: &str) -> String {
    let mut out = String::new();
    super::header(
        &mut out,
        &format!("HAProxy runtime API commands for the ACL {acl_path}"),
    );
    let _ = writeln!(out, "clear acl {acl_path}");
    for (_, n) in nets(e, true).into_iter().chain(nets(e, false)) {
        let _ = writeln!(out, "add acl {acl_path} {n}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active(id: i64, target: Target) -> Active {
        super::super::tests::active(id, target, None)
    }

    fn sample() -> Effective {
        let mut scoped = active(3, Target::Text(MatchKind::Header, "scanner".into()));
        scoped.header = Some("X-Client".into());
        scoped.paths = vec!["/api/*".into()];
        scoped.methods = vec!["POST".into()];
        Effective {
            block: vec![
                active(1, Target::Net("203.0.113.0/24".parse().unwrap())),
                active(2, Target::Text(MatchKind::Key, "k-stolen-1".into())),
                scoped,
                active(4, Target::Text(MatchKind::User, "mallory".into())),
                active(5, Target::Net("2001:db8::1/128".parse().unwrap())),
                active(6, Target::Net("2001:db8::/96".parse().unwrap())),
            ],
            monitor: vec![active(7, Target::Net("192.0.2.1/32".parse().unwrap()))],
            spared: Vec::new(),
        }
    }

    #[test]
    fn globs_become_anchored_regexes() {
        assert_eq!(glob_regex("/api/*.json"), "^/api/.*\\.json$");
        assert_eq!(glob_regex("/v?/x"), "^/v./x$");
    }

    #[test]
    fn modsecurity_denies_blocks_logs_monitors_and_chains_scopes() {
        let m = modsecurity(&sample());
        assert!(m.contains("SecRule REMOTE_ADDR \"@ipMatch 203.0.113.0/24\" \"id:4700001,phase:1,deny,status:403"), "{m}");
        assert!(m.contains("REQUEST_HEADERS:x-api-key|REQUEST_HEADERS:api-key|REQUEST_HEADERS:apikey \"@streq k-stolen-1\""), "{m}");
        assert!(
            m.contains(
                "id:4700003,phase:1,deny,status:403,log,msg:'Tapline rule 3',tag:'tapline',chain"
            ),
            "{m}"
        );
        assert!(
            m.contains("    SecRule REQUEST_FILENAME \"@rx ^/api/.*$\""),
            "{m}"
        );
        assert!(
            m.contains("id:4700007,phase:1,pass,log,msg:'Tapline rule 7 (monitor)'"),
            "{m}"
        );
        assert!(m.contains("# rule 4 (user mallory"), "{m}");
    }

    #[test]
    fn envoy_keeps_monitor_rules_in_shadow_rules() {
        let doc: serde_json::Value = serde_json::from_str(&envoy(&sample())).unwrap();
        let p = &doc["rules"]["policies"];
        assert_eq!(
            p["tapline-rule-1"]["principals"][0]["remote_ip"]["prefix_len"],
            24
        );
        assert_eq!(
            p["tapline-rule-3"]["permissions"][0]["and_rules"]["rules"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert!(
            p.get("tapline-rule-4").is_none(),
            "users are the decision endpoint's"
        );
        assert!(
            doc["shadow_rules"]["policies"]
                .get("tapline-rule-7")
                .is_some()
        );
        assert!(p.get("tapline-rule-7").is_none());
    }

    #[test]
    fn cloud_lists_take_what_they_can_express() {
        let aws: serde_json::Value = serde_json::from_str(&aws_waf(&sample())).unwrap();
        assert_eq!(aws[0]["Addresses"], serde_json::json!(["203.0.113.0/24"]));
        assert_eq!(
            aws[1]["Addresses"],
            serde_json::json!(["2001:db8::1/128", "2001:db8::/96"])
        );
        let cf: serde_json::Value = serde_json::from_str(&cloudflare(&sample())).unwrap();
        let ips: Vec<&str> = cf["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["ip"].as_str().unwrap())
            .collect();
        assert_eq!(ips, ["203.0.113.0/24", "2001:db8::1"]);
        assert!(cf["not_expressed"].to_string().contains("2001:db8::/96"));
        let rt = haproxy_runtime(&sample(), "/etc/haproxy/t.acl");
        assert!(
            rt.contains("clear acl /etc/haproxy/t.acl\nadd acl /etc/haproxy/t.acl 203.0.113.0/24"),
            "{rt}"
        );
    }
}
