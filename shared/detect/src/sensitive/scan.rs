//! Classifies every value of a transaction (see [`crate::fields`]) and reports each hit with
//! where it was.
//!
//! Locations are dotted paths: `request.header.authorization`, `request.cookie.session`,
//! `request.query.q`, `request.path[2]`, `request.form.password`,
//! `response.body.users[].email`, `response.body` (a text body).

use super::verdicts::Verdicts;
use crate::classify::{Hint, Hit};
use crate::fields::{Field, Walk, Walker};
use std::fmt;
use tapline_record::Transaction;

pub use crate::fields::percent_decode_into;

/// What a visitor is told about each hit.
#[derive(Debug)]
pub struct Found<'a> {
    /// Where the value was.
    pub location: &'a str,
    /// The field name (header, parameter, cookie or JSON key), if any.
    pub key: Option<&'a str>,
    /// The decoded value the hit is in.
    pub value: &'a str,
    /// The hit; its span indexes `value`.
    pub hit: Hit,
}

/// Reusable buffers for scanning many transactions on one thread.
#[derive(Default)]
pub struct Scanner {
    walker: Walker,
    hits: Vec<Hit>,
    /// Hints of field names seen so far (names repeat across millions of records).
    hints: foldhash::HashMap<String, Hint>,
    /// Verdicts of values seen recently (values repeat too).
    verdicts: Verdicts,
}

/// Field names whose hints are remembered, at most.
const MAX_HINTS: usize = 4096;

impl fmt::Debug for Scanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Scanner")
    }
}

impl Scanner {
    /// Calls `found` for every classified span in `tx`.
    pub fn scan(&mut self, tx: &Transaction, found: &mut dyn FnMut(Found<'_>)) {
        let Scanner {
            walker,
            hits,
            hints,
            verdicts,
        } = self;
        walker.walk(tx, Walk::DATA, &mut |f: Field<'_>| {
            let hint = match f.key {
                None => Hint::default(),
                Some(key) => match hints.get(key) {
                    Some(&h) => h,
                    None => {
                        let h = Hint::from_key(key);
                        if hints.len() < MAX_HINTS {
                            hints.insert(key.to_owned(), h);
                        }
                        h
                    }
                },
            };
            verdicts.classify(f.value, hint, hits);
            for &hit in hits.iter() {
                found(Found {
                    location: f.location,
                    key: f.key,
                    value: f.value,
                    hit,
                });
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::DataClass;

    fn found(tx: &Transaction) -> Vec<(String, DataClass, String)> {
        let mut out = Vec::new();
        Scanner::default().scan(tx, &mut |f| {
            out.push((
                f.location.to_owned(),
                f.hit.class,
                f.value[f.hit.start..f.hit.end].to_owned(),
            ));
        });
        out
    }

    #[test]
    fn locations_name_where_each_value_was() {
        let mut tx = Transaction {
            method: "POST".into(),
            uri: "/users/jane%40example.com?card=4111%201111%201111%201111&q=x".into(),
            ..Transaction::default()
        };
        tx.request_headers
            .push("Authorization", "Basic dXNlcjpodW50ZXIy");
        tx.request_headers.push(
            "Cookie",
            "theme=dark; sessionid=8f3a9c2e71b44d0f9a6e5c3b2a1d0e9f",
        );
        tx.request_headers.push("Content-Type", "application/json");
        tx.request_body.data =
            br#"{"user":{"password":"hunter22","phones":["+44 20 7946 0958"]}}"#.to_vec();
        tx.response_headers.push("Content-Type", "application/json");
        tx.response_body.data =
            br#"[{"email":"a@b.io","ssn":"078-05-1123","n":4111111111111111}]"#.to_vec();
        let f = found(&tx);
        let has = |loc: &str, class: DataClass| f.iter().any(|(l, c, _)| l == loc && *c == class);
        assert!(
            has("request.header.authorization", DataClass::BasicAuth),
            "{f:?}"
        );
        assert!(
            has("request.cookie.sessionid", DataClass::SessionCookie),
            "{f:?}"
        );
        assert!(has("request.path[1]", DataClass::Email), "{f:?}");
        assert!(has("request.query.card", DataClass::CreditCard), "{f:?}");
        assert!(
            has("request.body.user.password", DataClass::Password),
            "{f:?}"
        );
        assert!(
            has("request.body.user.phones[]", DataClass::PhoneNumber),
            "{f:?}"
        );
        assert!(has("response.body[].email", DataClass::Email), "{f:?}");
        assert!(has("response.body[].ssn", DataClass::UsSsn), "{f:?}");
        assert!(has("response.body[].n", DataClass::CreditCard), "{f:?}");
        assert!(!f.iter().any(|(l, _, _)| l.contains("theme")), "{f:?}");
    }

    #[test]
    fn bad_bodies_are_scanned_as_text_or_skipped() {
        let mut tx = Transaction::default();
        tx.response_headers.push("Content-Type", "application/json");
        tx.response_body.data = br#"{"email":"a@b.io", "cut": "4111 1111"#.to_vec();
        assert!(found(&tx).iter().any(|(_, c, _)| *c == DataClass::Email));
        tx.response_body.data = vec![0xff, 0xfe, 0x00, 0x41];
        assert!(found(&tx).is_empty());
        let deep = "[".repeat(10_000);
        tx.response_body.data = deep.into_bytes();
        let _ = found(&tx);
    }

    #[test]
    fn percent_decoding() {
        let mut out = String::new();
        percent_decode_into("a%20b+c%zz%4", true, &mut out);
        assert_eq!(out, "a b c%zz%4");
        percent_decode_into("%E2%82%AC", false, &mut out);
        assert_eq!(out, "€");
    }
}
