//! API discovery, first cut: requests grouped per host, method and path template, where path
//! segments that are identifiers (numbers, UUIDs, long hex strings, Mongo ObjectIds) become
//! parameters named after the resource before them (`/users/123` → `/users/{userId}`).

use super::Analyzer;
use std::collections::HashMap;
use tapline_core::Transaction;
use tapline_store::endpoints::EndpointObservation;
use tapline_store::sources::Derived;

/// Accumulates endpoint observations over one import.
#[derive(Default)]
pub struct Discovery {
    /// Keyed by `host \0 method \0 template`, so a lookup needs no allocation.
    seen: HashMap<String, EndpointObservation>,
    key: String,
    template: String,
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn is_identifier(seg: &str) -> bool {
    (!seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()))
        || is_uuid(seg)
        || (seg.len() >= 16 && seg.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `users` → `userId`, `orders` → `orderId`, `v1`/nothing → `id`.
fn param_name(prev: Option<&str>) -> String {
    match prev {
        Some(p)
            if p.len() > 1
                && p.bytes()
                    .all(|b| b.is_ascii_alphabetic() || b == b'_' || b == b'-') =>
        {
            let singular = p
                .strip_suffix("ies")
                .map(|s| format!("{s}y"))
                .or_else(|| p.strip_suffix('s').map(str::to_owned))
                .unwrap_or_else(|| p.to_owned());
            let mut camel = String::new();
            let mut upper = false;
            for c in singular.chars() {
                if c == '-' || c == '_' {
                    upper = true;
                } else if upper {
                    camel.extend(c.to_uppercase());
                    upper = false;
                } else {
                    camel.push(c.to_ascii_lowercase());
                }
            }
            format!("{camel}Id")
        }
        _ => "id".into(),
    }
}

/// The path template of a concrete path.
pub fn template(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    template_into(path, &mut out);
    out
}

fn template_into(path: &str, out: &mut String) {
    out.clear();
    let mut prev: Option<&str> = None;
    for seg in path.split('/').skip(1) {
        out.push('/');
        if is_identifier(seg) {
            out.push('{');
            out.push_str(&param_name(prev));
            out.push('}');
        } else {
            out.push_str(seg);
        }
        prev = Some(seg);
    }
    if out.is_empty() {
        out.push('/');
    }
}

impl Analyzer for Discovery {
    fn name(&self) -> &'static str {
        "discovery"
    }

    fn observe(&mut self, _id: i64, tx: &Transaction) {
        if tx.method.is_empty() {
            return; // a response without a request: no endpoint to attribute it to
        }
        let server;
        let host = match (&tx.host, tx.server) {
            (Some(h), _) => h.as_str(),
            (None, Some(s)) => {
                server = s.to_string();
                server.as_str()
            }
            (None, None) => "",
        };
        template_into(tx.path(), &mut self.template);
        self.key.clear();
        for part in [host, "\0", &tx.method, "\0", &self.template] {
            self.key.push_str(part);
        }
        let ts = tx.request_ts_nanos;
        if !self.seen.contains_key(self.key.as_str()) {
            self.seen.insert(
                self.key.clone(),
                EndpointObservation {
                    host: host.to_owned(),
                    method: tx.method.to_string(),
                    template: self.template.clone(),
                    first_seen_ns: ts,
                    last_seen_ns: ts,
                    count: 0,
                    statuses: Default::default(),
                },
            );
        }
        let Some(e) = self.seen.get_mut(self.key.as_str()) else {
            return;
        };
        e.count += 1;
        e.first_seen_ns = e.first_seen_ns.min(ts);
        e.last_seen_ns = e.last_seen_ns.max(ts);
        if let Some(s) = tx.status {
            *e.statuses.entry(s).or_default() += 1;
        }
    }

    fn finish(&mut self, out: &mut Derived) {
        let mut seen: Vec<EndpointObservation> = self.seen.drain().map(|(_, v)| v).collect();
        seen.sort_by(|a, b| {
            (&a.host, &a.template, &a.method).cmp(&(&b.host, &b.template, &b.method))
        });
        out.endpoints.extend(seen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_become_named_parameters() {
        assert_eq!(template("/api/v1/users/123"), "/api/v1/users/{userId}");
        assert_eq!(template("/users/me"), "/users/me");
        assert_eq!(
            template("/orders/0000002a-1b2c-4d5e-8f90-000000000126"),
            "/orders/{orderId}"
        );
        assert_eq!(
            template("/categories/7/items/9"),
            "/categories/{categoryId}/items/{itemId}"
        );
        assert_eq!(template("/"), "/");
        assert_eq!(
            template("/v2/blob/0123456789abcdef0123"),
            "/v2/blob/{blobId}"
        );
    }
}
