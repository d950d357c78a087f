//! Redaction at the edge: a policy of rules (data classes × locations → mask, keyed hash or
//! drop) applied to a transaction before it leaves the sensor. What was redacted is recorded in
//! [`Transaction::redactions`]; the original values are gone.

use super::scan::{Found, Scanner, percent_decode_into};
use crate::classify::{DataClass, Hit, classify_into};
use serde::Deserialize;
use std::collections::BTreeSet;
use tapline_record::{Body, Headers, Redaction, Transaction};

/// What to do with a matching value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Replace every character of the span with `*` (length kept).
    Mask,
    /// Replace the span with `hash:` and 64 bits of a keyed BLAKE3 hash (as 16 letters a–p),
    /// so equal values stay joinable without being readable.
    Hash,
    /// Remove the whole field (header, cookie, parameter, JSON member's value becomes null).
    Drop,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Mask => "mask",
            Action::Hash => "hash",
            Action::Drop => "drop",
        }
    }
}

/// One rule: which classes, where, what to do. The first matching rule wins.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Class names (`credit_card`, `password`, ...) or `*` for every class.
    pub classes: Vec<String>,
    /// Location patterns: `request.header.authorization`, `*.body.*`, `request.*`; a `*`
    /// matches any run of characters. Empty = everywhere.
    #[serde(default)]
    pub locations: Vec<String>,
    /// What to do.
    pub action: Action,
}

/// A redaction policy as written in the sensor's TOML (`[redact]`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Key of the keyed hash, 64 hex digits; required when a rule hashes.
    #[serde(default)]
    pub hash_key: Option<String>,
    /// The rules, in order.
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
}

/// A policy that failed validation.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A class name that no classifier produces.
    #[error("redaction rule {rule}: unknown data class {name:?} (known: {known})")]
    UnknownClass {
        /// 1-based rule number.
        rule: usize,
        /// The name given.
        name: String,
        /// Every class name.
        known: String,
    },
    /// `hash` without a usable key.
    #[error("redaction rule {rule} hashes, but redact.hash_key is missing or not 64 hex digits")]
    HashKey {
        /// 1-based rule number.
        rule: usize,
    },
}

/// A validated policy, ready to apply.
#[derive(Clone, Debug)]
pub struct Redactor {
    rules: Vec<(Option<BTreeSet<DataClass>>, Vec<String>, Action)>,
    key: [u8; 32],
}

impl Redactor {
    /// Validates a policy.
    pub fn new(policy: &Policy) -> Result<Redactor, PolicyError> {
        let key = policy.hash_key.as_deref().and_then(parse_key);
        let mut rules = Vec::new();
        for (i, r) in policy.rules.iter().enumerate() {
            let classes = if r.classes.iter().any(|c| c == "*") {
                None
            } else {
                let mut set = BTreeSet::new();
                for name in &r.classes {
                    let c =
                        DataClass::from_name(name).ok_or_else(|| PolicyError::UnknownClass {
                            rule: i + 1,
                            name: name.clone(),
                            known: DataClass::ALL
                                .iter()
                                .map(|c| c.name())
                                .collect::<Vec<_>>()
                                .join(", "),
                        })?;
                    set.insert(c);
                }
                Some(set)
            };
            if r.action == Action::Hash && key.is_none() {
                return Err(PolicyError::HashKey { rule: i + 1 });
            }
            rules.push((classes, r.locations.clone(), r.action));
        }
        Ok(Redactor {
            rules,
            key: key.unwrap_or([0; 32]),
        })
    }

    /// Whether the policy has no rules (nothing to do per record).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    fn action(&self, class: DataClass, location: &str) -> Option<Action> {
        self.rules
            .iter()
            .find(|(classes, locs, _)| {
                classes.as_ref().is_none_or(|c| c.contains(&class))
                    && (locs.is_empty() || locs.iter().any(|p| glob(p, location)))
            })
            .map(|r| r.2)
    }

    /// Applies the policy to `tx` in place; returns how many values were redacted.
    pub fn apply(&self, tx: &mut Transaction, scanner: &mut Scanner) -> usize {
        if self.rules.is_empty() {
            return 0;
        }
        // First pass: which locations need work at all.
        let mut todo: Vec<(String, DataClass, Action)> = Vec::new();
        scanner.scan(tx, &mut |f: Found<'_>| {
            if let Some(a) = self.action(f.hit.class, f.location) {
                todo.push((f.location.to_owned(), f.hit.class, a));
            }
        });
        if todo.is_empty() {
            return 0;
        }
        let mut done = 0;
        let mut ctx = Ctx {
            red: self,
            done: &mut done,
            hits: Vec::new(),
        };
        if todo
            .iter()
            .any(|(l, _, _)| l.starts_with("request.header.") || l.starts_with("request.cookie."))
        {
            tx.request_headers = ctx.headers("request", &tx.request_headers);
        }
        if todo
            .iter()
            .any(|(l, _, _)| l.starts_with("response.header.") || l.starts_with("response.cookie."))
        {
            tx.response_headers = ctx.headers("response", &tx.response_headers);
        }
        if todo
            .iter()
            .any(|(l, _, _)| l.starts_with("request.path") || l.starts_with("request.query"))
        {
            tx.uri = ctx.uri(&tx.uri);
        }
        if todo
            .iter()
            .any(|(l, _, _)| l.starts_with("request.body") || l.starts_with("request.form"))
        {
            let ct = tx.request_content_type().map(str::to_owned);
            ctx.body("request", ct.as_deref(), &mut tx.request_body);
        }
        if todo
            .iter()
            .any(|(l, _, _)| l.starts_with("response.body") || l.starts_with("response.form"))
        {
            let ct = tx.response_content_type().map(str::to_owned);
            ctx.body("response", ct.as_deref(), &mut tx.response_body);
        }
        let mut seen = BTreeSet::new();
        for (location, class, action) in todo {
            if seen.insert((location.clone(), class)) {
                tx.redactions.push(Redaction {
                    location,
                    class: class.name().to_owned(),
                    action: action.name().to_owned(),
                });
            }
        }
        done
    }
}

struct Ctx<'r, 'd> {
    red: &'r Redactor,
    done: &'d mut usize,
    hits: Vec<Hit>,
}

impl Ctx<'_, '_> {
    /// The value after the policy: `None` = drop the field.
    fn value(&mut self, location: &str, key: Option<&str>, value: &str) -> Option<String> {
        classify_into(value, key, &mut self.hits);
        let mut out = value.to_owned();
        // Right to left so earlier spans keep their offsets.
        for h in self.hits.iter().rev() {
            let Some(action) = self.red.action(h.class, location) else {
                continue;
            };
            *self.done += 1;
            match action {
                Action::Drop => return None,
                Action::Mask => {
                    let stars = "*".repeat(out[h.start..h.end].chars().count());
                    out.replace_range(h.start..h.end, &stars);
                }
                Action::Hash => {
                    let digest =
                        blake3::keyed_hash(&self.red.key, &value.as_bytes()[h.start..h.end]);
                    // Sixteen nibbles spelled with the letters a–p: a hash never reads as a
                    // number (a card, a phone) to the next classifier.
                    let tag: String = digest.as_bytes()[..8]
                        .iter()
                        .flat_map(|b| [b >> 4, b & 15])
                        .map(|n| char::from(b'a' + n))
                        .collect();
                    out.replace_range(h.start..h.end, &format!("hash:{tag}"));
                }
            }
        }
        Some(out)
    }

    fn headers(&mut self, side: &str, headers: &Headers) -> Headers {
        let mut out = Headers::with_capacity(headers.len(), 256);
        for (name, value) in headers.iter() {
            let lower = name.to_ascii_lowercase();
            if lower == "cookie" || lower == "set-cookie" {
                let mut parts = Vec::new();
                for (i, pair) in value.split(';').enumerate() {
                    let (k, v) = pair.split_once('=').unwrap_or(("", pair));
                    // Set-Cookie attributes after the first pair are not values.
                    if lower == "set-cookie" && i > 0 {
                        parts.push(pair.trim().to_owned());
                        continue;
                    }
                    let loc = format!("{side}.cookie.{}", k.trim());
                    if let Some(v) = self.value(&loc, Some(k.trim()), v.trim()) {
                        parts.push(format!("{}={v}", k.trim()));
                    }
                }
                if !parts.is_empty() {
                    out.push(name, &parts.join("; "));
                }
                continue;
            }
            let loc = format!("{side}.header.{lower}");
            if let Some(v) = self.value(&loc, Some(&lower), value) {
                out.push(name, &v);
            }
        }
        out
    }

    fn uri(&mut self, uri: &str) -> String {
        let (path, query) = match uri.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (uri, None),
        };
        let mut decoded = String::new();
        let mut i = 0;
        let segs: Vec<String> = path
            .split('/')
            .map(|seg| {
                if seg.is_empty() {
                    return String::new();
                }
                let loc = format!("request.path[{i}]");
                i += 1;
                percent_decode_into(seg, false, &mut decoded);
                match self.value(&loc, None, &decoded) {
                    Some(v) if v == decoded => seg.to_owned(),
                    Some(v) => encode(&v),
                    None => "-".to_owned(),
                }
            })
            .collect();
        let mut out = segs.join("/");
        if let Some(q) = query {
            out.push('?');
            out.push_str(&self.pairs("request.query", q));
        }
        out
    }

    /// `a=1&b=2` (a query or a form body) after the policy: changed values re-encoded,
    /// dropped pairs removed, untouched pairs byte for byte as they were.
    fn pairs(&mut self, prefix: &str, text: &str) -> String {
        let mut key = String::new();
        let mut decoded = String::new();
        let pairs: Vec<String> = text
            .split('&')
            .filter_map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                percent_decode_into(k, true, &mut key);
                percent_decode_into(v, true, &mut decoded);
                let loc = format!("{prefix}.{key}");
                match self.value(&loc, Some(&key), &decoded) {
                    Some(nv) if nv == decoded => Some(pair.to_owned()),
                    Some(nv) => Some(format!("{k}={}", encode(&nv))),
                    None => None,
                }
            })
            .collect();
        pairs.join("&")
    }

    fn body(&mut self, side: &str, ct: Option<&str>, body: &mut Body) {
        let Ok(text) = std::str::from_utf8(&body.data) else {
            return;
        };
        let ct = ct.unwrap_or("").to_ascii_lowercase();
        let new = if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(text) {
            let mut loc = format!("{side}.body");
            self.json(&mut loc, None, &mut v);
            serde_json::to_string(&v).ok()
        } else if ct.contains("x-www-form-urlencoded") {
            Some(self.pairs(&format!("{side}.form"), text))
        } else {
            let loc = format!("{side}.body");
            Some(self.value(&loc, None, text).unwrap_or_default())
        };
        if let Some(new) = new {
            if !body.truncated {
                body.len = new.len() as u64;
            }
            body.data = new.into_bytes();
        }
    }

    fn json(&mut self, loc: &mut String, key: Option<&str>, v: &mut serde_json::Value) {
        use serde_json::Value;
        match v {
            Value::String(s) => match self.value(loc, key, s) {
                Some(n) => *s = n,
                None => *v = Value::Null,
            },
            Value::Number(n) if n.as_u64().is_some_and(|x| x >= 1_000_000) => {
                let text = n.to_string();
                match self.value(loc, key, &text) {
                    Some(t) if t == text => {}
                    Some(t) => *v = Value::String(t),
                    None => *v = Value::Null,
                }
            }
            Value::Array(items) => {
                let mark = loc.len();
                loc.push_str("[]");
                for item in items {
                    self.json(loc, key, item);
                }
                loc.truncate(mark);
            }
            Value::Object(map) => {
                let mark = loc.len();
                for (k, item) in map.iter_mut() {
                    loc.push('.');
                    loc.push_str(k);
                    self.json(loc, Some(k), item);
                    loc.truncate(mark);
                }
            }
            _ => {}
        }
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `*` (masks stay legible).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~*:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn parse_key(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, k) in key.iter_mut().enumerate() {
        *k = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

/// `*` matches any run of characters; everything else literally.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx() -> Transaction {
        let mut tx = Transaction {
            method: "POST".into(),
            uri: "/pay?card=4111111111111111&note=hi".into(),
            ..Transaction::default()
        };
        tx.request_headers
            .push("Authorization", "Basic dXNlcjpodW50ZXIy");
        tx.request_headers.push("Content-Type", "application/json");
        tx.request_body.data = br#"{"password":"hunter22","email":"jane@example.com"}"#.to_vec();
        tx.request_body.len = tx.request_body.data.len() as u64;
        tx.response_headers.push("Content-Type", "text/plain");
        tx.response_body.data = b"card 4111 1111 1111 1111 ok".to_vec();
        tx
    }

    fn policy(toml_rules: Vec<Rule>, key: Option<&str>) -> Redactor {
        Redactor::new(&Policy {
            hash_key: key.map(str::to_owned),
            rules: toml_rules,
        })
        .unwrap()
    }

    fn rule(classes: &[&str], locations: &[&str], action: Action) -> Rule {
        Rule {
            classes: classes.iter().map(|s| s.to_string()).collect(),
            locations: locations.iter().map(|s| s.to_string()).collect(),
            action,
        }
    }

    #[test]
    fn configured_values_never_survive() {
        let red = policy(
            vec![
                rule(&["credit_card"], &[], Action::Mask),
                rule(&["password", "basic_auth"], &["request.*"], Action::Drop),
                rule(&["email"], &[], Action::Hash),
            ],
            Some(&"ab".repeat(32)),
        );
        let mut t = tx();
        let n = red.apply(&mut t, &mut Scanner::default());
        assert!(n >= 5, "{n}");
        let all = serde_json::to_string(&t).unwrap();
        for secret in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "hunter22",
            "dXNlcjpodW50ZXIy",
            "jane@example.com",
        ] {
            assert!(!all.contains(secret), "{secret} survived: {all}");
        }
        assert!(t.uri.contains("card=****************"), "{}", t.uri);
        assert!(t.request_header("authorization").is_none());
        let body = String::from_utf8(t.request_body.data.clone()).unwrap();
        assert!(
            body.contains(r#""password":null"#) && body.contains("hash:"),
            "{body}"
        );
        assert_eq!(t.request_body.len, body.len() as u64);
        let classes: BTreeSet<&str> = t.redactions.iter().map(|r| r.class.as_str()).collect();
        assert!(
            classes.contains("credit_card")
                && classes.contains("password")
                && classes.contains("email")
        );
        // The same value hashes the same way: joinable across records.
        let mut t2 = tx();
        red.apply(&mut t2, &mut Scanner::default());
        assert_eq!(t.request_body.data, t2.request_body.data);
    }

    #[test]
    fn locations_limit_rules() {
        let red = policy(vec![rule(&["*"], &["response.*"], Action::Mask)], None);
        let mut t = tx();
        red.apply(&mut t, &mut Scanner::default());
        assert!(t.uri.contains("4111111111111111"), "request untouched");
        assert_eq!(t.response_body.data, b"card ******************* ok");
    }

    #[test]
    fn bad_policies_are_refused_with_reasons() {
        let e = Redactor::new(&Policy {
            hash_key: None,
            rules: vec![rule(&["credit_crad"], &[], Action::Mask)],
        })
        .unwrap_err();
        assert!(e.to_string().contains("credit_crad"));
        let e = Redactor::new(&Policy {
            hash_key: Some("zz".into()),
            rules: vec![rule(&["email"], &[], Action::Hash)],
        })
        .unwrap_err();
        assert!(e.to_string().contains("hash_key"));
    }

    #[test]
    fn globs() {
        assert!(glob("request.*", "request.header.x"));
        assert!(glob("*.body.*", "response.body.users[].email"));
        assert!(!glob("*.body.*", "response.body"));
        assert!(glob("response.body", "response.body"));
    }
}
