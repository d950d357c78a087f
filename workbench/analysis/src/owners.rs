//! Who owns an object, for BOLA on objects whose keys say nothing about their owner (book
//! titles, slugs, opaque ids). The owner is the principal that created the object — a
//! successful `POST` to its collection whose request or response body carries the object's
//! key (`POST /books/v1 {"book_title": "dune"}` owns `/books/v1/dune`) — or, when no creation
//! was seen, the first principal that reached it.
//!
//! The behaviour detector then asks, per endpoint and principal, how many of the objects it
//! reached belong to others, and how that compares with the endpoint's other principals: on an
//! endpoint where principals keep to their own objects, one that reaches others' is BOLA; on
//! one where everybody reads everybody's (a shared catalogue), nobody is.

use foldhash::{HashMap, HashMapExt};
use tapline_record::Transaction;

/// Creations kept; past this, objects fall back to their first reader as owner.
const MAX_CREATIONS: usize = 1 << 20;
/// Scalar values taken from one creating request or response body.
const MAX_VALUES: usize = 16;
/// Longest value taken as an object key.
const MAX_VALUE_LEN: usize = 200;
/// Body bytes read for values.
const MAX_BODY: usize = 16 * 1024;

/// One creation: on collection endpoint `endpoint`, `principal` created an object whose key
/// is `value` (interned ids of the behaviour tables).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Creation {
    pub endpoint: u32,
    pub value: u32,
    pub principal: u32,
    pub ts: i64,
}

/// The creations of one import shard, bounded.
#[derive(Default)]
pub(crate) struct Creations {
    pub items: Vec<Creation>,
    /// Creations not kept because the table was full.
    pub dropped: u64,
}

impl Creations {
    pub fn push(&mut self, c: Creation) {
        if self.items.len() < MAX_CREATIONS {
            self.items.push(c);
        } else {
            self.dropped += 1;
        }
    }
}

/// Whether a request may create an object in a collection: a successful `POST` (or a `PUT`
/// answered 201) to a path that does not end in a parameter.
pub(crate) fn creates(tx: &Transaction, template: &str) -> bool {
    let ok = matches!(tx.status, Some(200..=299));
    let method = tx.method.as_ref();
    let collection = !template.trim_end_matches('/').ends_with('}');
    ok && collection && (method == "POST" || (method == "PUT" && tx.status == Some(201)))
}

/// The scalar values at the top of a JSON object body: the keys an object created by this
/// request may be addressed by. Request body first, then response body.
pub(crate) fn key_values(tx: &Transaction) -> Vec<String> {
    let mut out = Vec::new();
    for body in [&tx.request_body.data, &tx.response_body.data] {
        scalars(&body[..body.len().min(MAX_BODY)], &mut out);
    }
    out
}

fn scalars(body: &[u8], out: &mut Vec<String>) {
    let trimmed = body.trim_ascii_start();
    if trimmed.first() != Some(&b'{') {
        return;
    }
    let Ok(map) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(trimmed)
    else {
        return;
    };
    for v in map.values() {
        if out.len() >= MAX_VALUES {
            return;
        }
        let s = match v {
            serde_json::Value::String(s) if !s.is_empty() && s.len() <= MAX_VALUE_LEN => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => continue,
        };
        if !out.contains(&s) {
            out.push(s);
        }
    }
}

/// How an owner was learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// It created the object.
    Created,
    /// It was the first to reach the object.
    FirstReached,
}

/// Owners of objects, keyed by object space (host and template, any method) and the
/// object's key id: the id of its decoded key among the behaviour tables' strings, so a path
/// segment `the%20hobbit` and a created title `the hobbit` are one object, and a lookup hashes
/// two integers rather than a string.
#[derive(Debug, Default)]
pub(crate) struct Owners {
    /// (object space, key id) → (when, principal, how learned).
    by_object: HashMap<(u32, u32), (i64, u32, Origin)>,
}

impl Owners {
    /// Learns owners from creations and first reaches (successful requests only), each given
    /// as (object space, key id, principal, time): creations win over reaches, and the
    /// earliest of each counts.
    pub fn learn(
        creations: impl Iterator<Item = (u32, u32, u32, i64)>,
        reaches: impl Iterator<Item = (u32, u32, u32, i64)>,
    ) -> Owners {
        let mut by_object: HashMap<(u32, u32), (i64, u32, Origin)> = HashMap::new();
        for (space, key, principal, ts) in creations {
            let e = by_object
                .entry((space, key))
                .or_insert((ts, principal, Origin::Created));
            if ts < e.0 {
                *e = (ts, principal, Origin::Created);
            }
        }
        for (space, key, principal, ts) in reaches {
            let e = by_object
                .entry((space, key))
                .or_insert((ts, principal, Origin::FirstReached));
            if e.2 == Origin::FirstReached && ts < e.0 {
                *e = (ts, principal, Origin::FirstReached);
            }
        }
        Owners { by_object }
    }

    /// The owner of the object with key id `key` in `space`, and how it was learned.
    pub fn owner(&self, space: u32, key: u32) -> Option<(u32, Origin)> {
        self.by_object.get(&(space, key)).map(|&(_, p, o)| (p, o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creations_win_over_earlier_reaches_and_the_first_of_each_counts() {
        let (dune, emma) = (100, 101);
        let creations = [(1, dune, 7, 50), (1, dune, 8, 60)];
        let reaches = [(1, dune, 9, 10), (1, emma, 9, 30), (1, emma, 8, 20)];
        let owners = Owners::learn(creations.into_iter(), reaches.into_iter());
        assert_eq!(owners.owner(1, dune), Some((7, Origin::Created)));
        assert_eq!(owners.owner(1, emma), Some((8, Origin::FirstReached)));
        assert_eq!(owners.owner(2, dune), None, "spaces apart");
    }

    #[test]
    fn key_values_are_the_top_level_scalars_of_json_bodies() {
        let mut tx = Transaction {
            method: "POST".into(),
            status: Some(201),
            ..Transaction::default()
        };
        tx.request_body.data =
            br#"{"book_title": "The Hobbit", "pages": 310, "tags": ["a"], "x": ""}"#.to_vec();
        tx.response_body.data = br#"{"id": 42}"#.to_vec();
        assert_eq!(key_values(&tx), ["The Hobbit", "310", "42"]);
        assert!(creates(&tx, "/books/v1"));
        assert!(!creates(&tx, "/books/v1/{bookTitle}"));
        tx.request_body.data = b"[1, 2]".to_vec();
        tx.response_body.data = b"not json".to_vec();
        assert!(key_values(&tx).is_empty());
    }
}
