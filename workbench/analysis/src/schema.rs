//! JSON schema inference that merges: every body observed adds counts to one tree, so shards
//! and later imports combine by addition, and "required" means "present in every object seen".
//!
//! Bodies are folded in through a serde `DeserializeSeed` straight from the bytes: no
//! `serde_json::Value` tree is built, and a known key costs a map lookup, not an allocation.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fmt;

/// Nesting deeper than this is counted but not described.
const MAX_DEPTH: usize = 12;
/// Properties per object beyond which new names are not added (maps keyed by ids).
const MAX_PROPERTIES: usize = 256;
/// Array elements looked at per array.
const MAX_ITEMS: usize = 64;

/// Counts of what was seen at one place of a JSON document.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SchemaNode {
    /// Times a value was seen here.
    #[serde(default)]
    pub seen: u64,
    /// Of which `null`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub null: u64,
    /// Of which booleans.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub boolean: u64,
    /// Of which integers.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub integer: u64,
    /// Of which other numbers.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub number: u64,
    /// Of which strings.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub string: u64,
    /// String formats seen (`email`, `uuid`, `date-time`, …) and how often.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub formats: BTreeMap<String, u64>,
    /// Of which arrays.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub array: u64,
    /// What the arrays held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<SchemaNode>>,
    /// Of which objects.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub object: u64,
    /// Their properties; a property is required when its `seen` equals `object`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, SchemaNode>,
    /// Objects had more property names than are tracked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub open: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl SchemaNode {
    /// Folds one JSON document into the tree; `false`, and the tree unchanged, when the bytes
    /// are not JSON.
    pub fn observe_json(&mut self, bytes: &[u8]) -> bool {
        // A cheap validating pass first (no allocation): a document that fails half-way must
        // not leave half its counts behind.
        if serde_json::from_slice::<IgnoredAny>(bytes).is_err() {
            return false;
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        Fold {
            node: self,
            depth: 0,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .is_ok()
    }

    /// Adds another tree's counts.
    pub fn absorb(&mut self, o: &SchemaNode) {
        self.seen += o.seen;
        self.null += o.null;
        self.boolean += o.boolean;
        self.integer += o.integer;
        self.number += o.number;
        self.string += o.string;
        for (f, n) in &o.formats {
            *self.formats.entry(f.clone()).or_default() += n;
        }
        self.array += o.array;
        if let Some(i) = &o.items {
            self.items.get_or_insert_with(Default::default).absorb(i);
        }
        self.object += o.object;
        for (k, v) in &o.properties {
            if let Some(mine) = self.properties.get_mut(k) {
                mine.absorb(v);
            } else if self.properties.len() < MAX_PROPERTIES {
                self.properties.insert(k.clone(), v.clone());
            } else {
                self.open = true;
            }
        }
        self.open |= o.open;
    }

    /// Every property path in the tree (`users[].email`), for change tracking and drift.
    pub fn field_paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_paths("", &mut out);
        out
    }

    fn collect_paths(&self, prefix: &str, out: &mut Vec<String>) {
        for (k, v) in &self.properties {
            let p = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            out.push(p.clone());
            v.collect_paths(&p, out);
        }
        if let Some(items) = &self.items {
            items.collect_paths(&format!("{prefix}[]"), out);
        }
    }

    /// The tree as a JSON Schema (2020-12, as OpenAPI 3.1 uses): types, formats seen in every
    /// string, properties, required properties.
    pub fn to_json_schema(&self) -> Value {
        let mut types: Vec<&str> = Vec::new();
        let mut s = Map::new();
        if self.object > 0 {
            types.push("object");
            let mut props = Map::new();
            let mut required = Vec::new();
            for (k, v) in &self.properties {
                props.insert(k.clone(), v.to_json_schema());
                if v.seen >= self.object {
                    required.push(Value::String(k.clone()));
                }
            }
            if !props.is_empty() {
                s.insert("properties".into(), Value::Object(props));
            }
            if !required.is_empty() {
                s.insert("required".into(), Value::Array(required));
            }
        }
        if self.array > 0 {
            types.push("array");
            if let Some(items) = &self.items {
                s.insert("items".into(), items.to_json_schema());
            }
        }
        if self.string > 0 {
            types.push("string");
            if let Some((f, _)) = self.formats.iter().find(|(_, n)| **n == self.string) {
                s.insert("format".into(), Value::String(f.clone()));
            }
        }
        if self.integer > 0 && self.number == 0 {
            types.push("integer");
        } else if self.number > 0 {
            types.push("number");
        }
        if self.boolean > 0 {
            types.push("boolean");
        }
        if self.null > 0 {
            types.push("null");
        }
        match types.as_slice() {
            [] => {}
            [one] => {
                s.insert("type".into(), json!(one));
            }
            many => {
                s.insert("type".into(), json!(many));
            }
        }
        Value::Object(s)
    }
}

/// A `DeserializeSeed` that adds one value's counts to a node.
struct Fold<'a> {
    node: &'a mut SchemaNode,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Fold<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Fold<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.node.seen += 1;
        self.node.null += 1;
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.node.seen += 1;
        self.node.boolean += 1;
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.node.seen += 1;
        self.node.integer += 1;
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.node.seen += 1;
        self.node.integer += 1;
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.node.seen += 1;
        self.node.number += 1;
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.node.seen += 1;
        self.node.string += 1;
        if let Some(f) = super::values::string_format(v) {
            if let Some(n) = self.node.formats.get_mut(f) {
                *n += 1;
            } else {
                self.node.formats.insert(f.to_owned(), 1);
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.node.seen += 1;
        self.node.array += 1;
        let mut n = 0;
        if self.depth >= MAX_DEPTH {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        let items = self.node.items.get_or_insert_with(Default::default);
        while n < MAX_ITEMS {
            let seed = Fold {
                node: items,
                depth: self.depth + 1,
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
            n += 1;
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.node.seen += 1;
        self.node.object += 1;
        if self.depth >= MAX_DEPTH {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let props = &mut self.node.properties;
            if !props.contains_key(key.as_ref()) {
                if props.len() >= MAX_PROPERTIES {
                    self.node.open = true;
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                props.insert(key.clone().into_owned(), SchemaNode::default());
            }
            let Some(child) = props.get_mut(key.as_ref()) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            map.next_value_seed(Fold {
                node: child,
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
    fn required_optional_types_and_formats() {
        let mut n = SchemaNode::default();
        assert!(
            n.observe_json(br#"{"id": 1, "email": "a@b.co", "tags": ["x", "y"], "nick": null}"#)
        );
        assert!(n.observe_json(br#"{"id": 2, "email": "c@d.co", "tags": [], "score": 1.5}"#));
        assert!(!n.observe_json(b"{not json"));
        let s = n.to_json_schema();
        assert_eq!(s["type"], "object");
        assert_eq!(s["required"], json!(["email", "id", "tags"]));
        assert_eq!(s["properties"]["email"]["format"], "email");
        assert_eq!(s["properties"]["id"]["type"], "integer");
        assert_eq!(s["properties"]["score"]["type"], "number");
        assert_eq!(s["properties"]["nick"]["type"], "null");
        assert_eq!(s["properties"]["tags"]["items"]["type"], "string");
        let paths = n.field_paths();
        assert!(paths.contains(&"tags".to_string()) && paths.contains(&"email".to_string()));
    }

    #[test]
    fn merging_adds_counts() {
        let (mut a, mut b) = (SchemaNode::default(), SchemaNode::default());
        a.observe_json(br#"{"x": 1}"#);
        b.observe_json(br#"{"x": 2, "y": [{"z": "2024-01-01T00:00:00Z"}]}"#);
        a.absorb(&b);
        assert_eq!(a.object, 2);
        assert_eq!(a.properties["x"].seen, 2);
        assert_eq!(a.properties["y"].seen, 1);
        assert_eq!(a.field_paths(), vec!["x", "y", "y[].z"]);
        let s = a.to_json_schema();
        assert_eq!(s["required"], json!(["x"]));
        assert_eq!(
            s["properties"]["y"]["items"]["properties"]["z"]["format"],
            "date-time"
        );
    }

    #[test]
    fn deep_and_wide_documents_stay_bounded() {
        let deep = "[".repeat(100) + &"]".repeat(100);
        let mut n = SchemaNode::default();
        assert!(n.observe_json(deep.as_bytes()));
        let wide: String = (0..1000)
            .map(|i| format!("\"k{i}\":{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut w = SchemaNode::default();
        assert!(w.observe_json(format!("{{{wide}}}").as_bytes()));
        assert_eq!(w.properties.len(), MAX_PROPERTIES);
        assert!(w.open);
    }
}
