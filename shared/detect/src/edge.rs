//! The sensor's edge policy besides redaction: which headers may leave the sensor and how much
//! of each body. Applied to a record before it is spooled or sent; what it removed is stated in
//! [`Transaction::redactions`] (class `header_policy` / `body_cap`), so an analyst knows the
//! record was trimmed at the edge, not by the client.

use serde::Deserialize;
use tapline_record::{Body, Headers, Redaction, Transaction};

/// `[headers]` and `[bodies]` of the sensor configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgePolicy {
    /// Header names (case-insensitive, `*` matches any run of characters).
    #[serde(default)]
    pub headers: HeaderPolicy,
    /// Body caps.
    #[serde(default)]
    pub bodies: BodyPolicy,
}

/// Which headers leave the sensor.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderPolicy {
    /// When not empty, only headers matching one of these are kept.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Headers matching one of these are removed (after `allow`).
    #[serde(default)]
    pub deny: Vec<String>,
}

/// How much of each body leaves the sensor.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyPolicy {
    /// Bytes kept per body (the full length and the truncated flag stay true to the traffic).
    pub max_bytes: Option<usize>,
}

/// `*`-glob match, ASCII case-insensitive.
fn glob(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    // Iterative wildcard matching with one backtrack point: linear in practice, never recursive.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && p[i] != b'*' && p[i].eq_ignore_ascii_case(&n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == b'*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == b'*')
}

impl EdgePolicy {
    /// True when the policy changes nothing.
    pub fn is_empty(&self) -> bool {
        self.headers.allow.is_empty()
            && self.headers.deny.is_empty()
            && self.bodies.max_bytes.is_none()
    }

    fn keeps(&self, name: &str) -> bool {
        (self.headers.allow.is_empty() || self.headers.allow.iter().any(|p| glob(p, name)))
            && !self.headers.deny.iter().any(|p| glob(p, name))
    }

    /// Applies the policy to `tx`; returns how many headers and bodies it trimmed.
    pub fn apply(&self, tx: &mut Transaction) -> usize {
        if self.is_empty() {
            return 0;
        }
        let mut changed = 0;
        for (side, headers) in [
            ("request", &mut tx.request_headers),
            ("response", &mut tx.response_headers),
        ] {
            if headers.iter().all(|(n, _)| self.keeps(n)) {
                continue;
            }
            let mut kept = Headers::default();
            for (name, value) in headers.iter() {
                if self.keeps(name) {
                    kept.push(name, value);
                } else {
                    changed += 1;
                    tx.redactions.push(Redaction {
                        location: format!("{side}.header.{}", name.to_ascii_lowercase()),
                        class: "header_policy".into(),
                        action: "drop".into(),
                    });
                }
            }
            *headers = kept;
        }
        if let Some(max) = self.bodies.max_bytes {
            for (side, body) in [
                ("request", &mut tx.request_body),
                ("response", &mut tx.response_body),
            ] {
                if cap(body, max) {
                    changed += 1;
                    tx.redactions.push(Redaction {
                        location: format!("{side}.body"),
                        class: "body_cap".into(),
                        action: format!("cut to {max} bytes"),
                    });
                }
            }
        }
        changed
    }
}

fn cap(body: &mut Body, max: usize) -> bool {
    if body.data.len() <= max {
        return false;
    }
    body.data.truncate(max);
    body.data.shrink_to_fit();
    body.truncated = true;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx() -> Transaction {
        let mut t = Transaction::default();
        t.request_headers.push("Host", "api.test");
        t.request_headers.push("Cookie", "s=1");
        t.request_headers.push("X-Internal-Trace", "abc");
        t.response_headers.push("Set-Cookie", "s=2");
        t.response_body.data = vec![b'x'; 100];
        t.response_body.len = 100;
        t
    }

    #[test]
    fn globs_match_case_insensitively() {
        assert!(glob("x-internal-*", "X-Internal-Trace"));
        assert!(glob("*cookie", "Set-Cookie"));
        assert!(glob("*", ""));
        assert!(!glob("cookie", "set-cookie"));
        assert!(glob("a*b*c", "aXbYbZc"));
        assert!(!glob("a*b*c", "aXbYbZ"));
    }

    #[test]
    fn denied_headers_and_long_bodies_are_trimmed_and_said() {
        let p: EdgePolicy = toml::from_str(
            "[headers]\ndeny = [\"*cookie\", \"x-internal-*\"]\n[bodies]\nmax_bytes = 10\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut t = tx();
        assert_eq!(p.apply(&mut t), 4);
        let names: Vec<&str> = t.request_headers.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["Host"]);
        assert_eq!(t.response_headers.len(), 0);
        assert_eq!(t.response_body.data.len(), 10);
        assert_eq!(t.response_body.len, 100, "the full length stays true");
        assert!(t.response_body.truncated);
        let locations: Vec<&str> = t.redactions.iter().map(|r| r.location.as_str()).collect();
        assert_eq!(
            locations,
            [
                "request.header.cookie",
                "request.header.x-internal-trace",
                "response.header.set-cookie",
                "response.body"
            ]
        );
    }

    #[test]
    fn an_allow_list_keeps_only_what_it_names() {
        let p = EdgePolicy {
            headers: HeaderPolicy {
                allow: vec!["host".into(), "content-*".into()],
                deny: vec![],
            },
            ..EdgePolicy::default()
        };
        let mut t = tx();
        p.apply(&mut t);
        assert_eq!(
            t.request_headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            ["Host"]
        );
        assert!(EdgePolicy::default().is_empty());
        let mut u = tx();
        assert_eq!(EdgePolicy::default().apply(&mut u), 0);
        assert_eq!(u, tx());
    }
}
