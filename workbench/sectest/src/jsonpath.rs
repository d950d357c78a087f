//! The JSON paths tests use: `$`, `.name`, `['name']`, `[3]`, `[-1]`, `[*]`, `..name`.
//!
//! A small subset of RFC 9535 (no filters or slices): enough to point at a field, and never
//! a reason for a test author to learn a query language.

use serde_json::Value;

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    text: String,
    steps: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Field(String),
    Index(i64),
    Wildcard,
    /// `..name`: the field at any depth.
    Descendant(String),
}

/// Why a path could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("JSON path `{path}`: {why} at character {at}")]
#[allow(missing_docs)] // the variants and fields say what they are; messages explain
pub struct PathError {
    pub path: String,
    pub why: &'static str,
    pub at: usize,
}

impl JsonPath {
    /// Reads a path; the error says at which character it went wrong.
    pub fn parse(text: &str) -> Result<JsonPath, PathError> {
        let err = |why, at| PathError {
            path: text.to_owned(),
            why,
            at,
        };
        let s = text.trim();
        let rest = s
            .strip_prefix('$')
            .ok_or_else(|| err("a path starts with `$`", 0))?;
        let b = rest.as_bytes();
        let mut i = 0;
        let mut steps = Vec::new();
        while i < b.len() {
            match b[i] {
                b'.' if b.get(i + 1) == Some(&b'.') => {
                    let (name, next) = ident(rest, i + 2);
                    if name.is_empty() {
                        return Err(err("`..` needs a field name", i + 1));
                    }
                    steps.push(Segment::Descendant(name.to_owned()));
                    i = next;
                }
                b'.' => {
                    let (name, next) = ident(rest, i + 1);
                    match name {
                        "" => return Err(err("`.` needs a field name", i + 1)),
                        "*" => steps.push(Segment::Wildcard),
                        n => steps.push(Segment::Field(n.to_owned())),
                    }
                    i = next;
                }
                b'[' => {
                    let close = rest[i..]
                        .find(']')
                        .ok_or_else(|| err("`[` is never closed", i + 1))?;
                    let inner = rest[i + 1..i + close].trim();
                    steps.push(bracket(inner).ok_or_else(|| {
                        err("inside [] write a number, * or a quoted name", i + 2)
                    })?);
                    i += close + 1;
                }
                _ => return Err(err("expected `.` or `[`", i + 1)),
            }
        }
        Ok(JsonPath {
            text: s.to_owned(),
            steps,
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Every value the path selects in `root`.
    pub fn select<'v>(&self, root: &'v Value) -> Vec<&'v Value> {
        let mut current = vec![root];
        for step in &self.steps {
            let mut next = Vec::new();
            for v in current {
                match step {
                    Segment::Field(n) => next.extend(v.get(n)),
                    Segment::Index(i) => next.extend(index(v, *i)),
                    Segment::Wildcard => match v {
                        Value::Array(a) => next.extend(a.iter()),
                        Value::Object(o) => next.extend(o.values()),
                        _ => {}
                    },
                    Segment::Descendant(n) => descend(v, n, &mut next),
                }
            }
            current = next;
        }
        current
    }
}

fn ident(s: &str, from: usize) -> (&str, usize) {
    let end = s[from..].find(['.', '[']).map_or(s.len(), |e| from + e);
    (&s[from..end], end)
}

fn bracket(inner: &str) -> Option<Segment> {
    if inner == "*" {
        return Some(Segment::Wildcard);
    }
    if let Ok(i) = inner.parse::<i64>() {
        return Some(Segment::Index(i));
    }
    let quoted = inner
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))?;
    Some(Segment::Field(quoted.to_owned()))
}

fn index(v: &Value, i: i64) -> Option<&Value> {
    let a = v.as_array()?;
    let i = if i < 0 { a.len() as i64 + i } else { i };
    usize::try_from(i).ok().and_then(|i| a.get(i))
}

fn descend<'v>(v: &'v Value, name: &str, out: &mut Vec<&'v Value>) {
    match v {
        Value::Object(o) => {
            if let Some(x) = o.get(name) {
                out.push(x);
            }
            for x in o.values() {
                descend(x, name, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| descend(x, name, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_select_fields_indexes_and_descendants() {
        let doc = json!({"data": [{"id": 1, "owner": {"id": "a"}}, {"id": 2}], "x.y": true});
        let sel = |p: &str| {
            JsonPath::parse(p)
                .unwrap()
                .select(&doc)
                .into_iter()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(sel("$.data[0].id"), vec![json!(1)]);
        assert_eq!(sel("$.data[-1].id"), vec![json!(2)]);
        assert_eq!(sel("$.data[*].id"), vec![json!(1), json!(2)]);
        assert_eq!(sel("$['x.y']"), vec![json!(true)]);
        assert_eq!(sel("$..id").len(), 3);
        assert!(sel("$.nope").is_empty());
        assert_eq!(sel("$"), vec![doc.clone()]);
    }

    #[test]
    fn bad_paths_say_where() {
        let e = JsonPath::parse("data.id").unwrap_err();
        assert_eq!(e.at, 0);
        let e = JsonPath::parse("$.a[").unwrap_err();
        assert!(e.to_string().contains("never closed"), "{e}");
        assert!(JsonPath::parse("$.a[x]").is_err());
        assert!(JsonPath::parse("$.").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_path_text_parses_or_errs(s in "\\$[.\\[\\]a-z0-9*'\"-]{0,20}") {
            if let Ok(p) = JsonPath::parse(&s) {
                let _ = p.select(&json!({"a": [1, {"b": 2}]}));
            }
        }
    }
}
