//! Values clients and servers exchange in JSON bodies, for discovery's cross-references: a path
//! word that also travels as a value (`name1` registered in `POST /users/v1/register`, listed
//! by `GET /users/v1`) is an identifier however few of its siblings were seen.
//!
//! Held in memory for one import only and never stored: the inventory keeps no example values.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Distinct values kept per import; past this, new values are not noted.
const MAX_VALUES: usize = 100_000;
/// Longest value noted: identifiers are short.
const MAX_LEN: usize = 64;
/// Values noted per body.
const PER_BODY: usize = 256;
/// Body bytes read.
const MAX_BODY: usize = 64 * 1024;
/// Nesting followed (`{"users": [{"username": …}]}` is depth 3).
const MAX_DEPTH: usize = 4;

/// The short string values seen in JSON bodies.
#[derive(Debug, Default)]
pub(crate) struct BodyValues {
    // foldhash: every short string value of a sampled body is hashed.
    set: foldhash::HashSet<Box<str>>,
}

impl BodyValues {
    /// Notes the string values of a JSON body (nothing when it is not JSON).
    pub fn note(&mut self, body: &[u8]) {
        let body = body.trim_ascii_start();
        if body.len() > MAX_BODY || !matches!(body.first(), Some(b'{' | b'[')) {
            return;
        }
        let mut found = Vec::new();
        let mut de = serde_json::Deserializer::from_slice(body);
        let seed = Collect {
            out: &mut found,
            depth: 0,
        };
        if seed.deserialize(&mut de).is_err() {
            return;
        }
        for v in found {
            if self.set.len() >= MAX_VALUES {
                return;
            }
            self.set.insert(v.into_boxed_str());
        }
    }

    /// Whether `value` travelled in a body.
    pub fn contains(&self, value: &str) -> bool {
        self.set.contains(value)
    }

    /// Adds another shard's values.
    pub fn absorb(&mut self, other: BodyValues) {
        for v in other.set {
            if self.set.len() >= MAX_VALUES {
                return;
            }
            self.set.insert(v);
        }
    }
}

/// Collects short strings from a JSON document without building it.
struct Collect<'a> {
    out: &'a mut Vec<String>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Collect<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Collect<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        if !v.is_empty() && v.len() <= MAX_LEN && self.out.len() < PER_BODY {
            self.out.push(v.to_owned());
        }
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.depth >= MAX_DEPTH {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        while seq
            .next_element_seed(Collect {
                out: &mut *self.out,
                depth: self.depth + 1,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.depth >= MAX_DEPTH {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(Collect {
                out: &mut *self.out,
                depth: self.depth + 1,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_strings_of_json_bodies_are_noted_to_a_depth() {
        let mut v = BodyValues::default();
        v.note(br#"{"username": "name1", "password": "x", "n": 3}"#);
        v.note(br#" {"users": [{"username": "name2", "email": "b@c.d"}]}"#);
        v.note(br#"{"a": {"b": {"c": {"d": {"e": "too deep"}}}}}"#);
        v.note(br#"{"broken": "half"#);
        v.note(b"name3");
        let long = "x".repeat(65);
        v.note(format!(r#"["{long}"]"#).as_bytes());
        for (w, want) in [
            ("name1", true),
            ("name2", true),
            ("b@c.d", true),
            ("too deep", false),
            ("half", false),
            ("name3", false),
            (long.as_str(), false),
        ] {
            assert_eq!(v.contains(w), want, "{w}");
        }
    }
}
