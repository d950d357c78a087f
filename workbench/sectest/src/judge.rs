//! Judging an answer: each check says what was expected and, when it fails, what was seen.

use crate::exchange::Answer;
use crate::payloads::Family;
use crate::plan::{Check, JsonCond, Source, TextCond};
use crate::template::{Scope, TemplateError, render, render_with};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashSet;

/// A check that did not hold.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    /// What was expected, in words.
    pub expected: String,
    /// What the answer showed.
    pub got: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "expected {}, got {}", self.expected, self.got)
    }
}

/// An earlier step's first answer, for similarity and timing checks.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// Its body (capped like every body).
    pub body: Vec<u8>,
    /// How long it took.
    pub duration_ms: f64,
}

/// What a check is judged against besides the answer.
#[derive(Default)]
pub struct Context<'a> {
    /// `baselines[i]` is step i's first answer, if any.
    pub baselines: &'a [Option<Baseline>],
    /// The payload this attempt sent: a sign that is only the payload echoed back is not one.
    pub payload: Option<&'a str>,
}

/// The checks of a step against one answer.
pub fn judge(
    checks: &[Check],
    answer: &Answer,
    scope: &dyn Scope,
    cx: &Context<'_>,
) -> Result<Vec<Failure>, TemplateError> {
    let mut out = Vec::new();
    for c in checks {
        if let Some(f) = one(c, answer, scope, cx)? {
            out.push(f);
        }
    }
    Ok(out)
}

fn one(
    c: &Check,
    a: &Answer,
    scope: &dyn Scope,
    cx: &Context<'_>,
) -> Result<Option<Failure>, TemplateError> {
    let fail = |expected: String, got: String| Ok(Some(Failure { expected, got }));
    match c {
        Check::Status(set) if !set.contains(a.status) => {
            fail(format!("status {set}"), format!("status {}", a.status))
        }
        Check::Status(_) => Ok(None),
        Check::Header { name, cond } => {
            let value = a.header(name);
            text_cond(&format!("header {name}"), cond, value, scope)
        }
        Check::Body(cond) => text_cond("body", cond, Some(&a.text()), scope),
        Check::Json { path, cond } => {
            let doc: Option<Value> = serde_json::from_slice(&a.body).ok();
            let selected = doc.as_ref().map(|d| path.select(d)).unwrap_or_default();
            json_cond(path.as_str(), cond, &selected, doc.is_some(), scope)
        }
        Check::DurationMs { below, above, than } => {
            let mut ms = a.duration.as_secs_f64() * 1000.0;
            let mut over = String::new();
            if let Some((step, name)) = than {
                let Some(Some(base)) = cx.baselines.get(*step) else {
                    return fail(
                        format!("a time from step `{name}` to compare with"),
                        "none".into(),
                    );
                };
                ms -= base.duration_ms;
                over = format!(" more than step `{name}`'s");
            }
            match (below, above) {
                (Some(b), _) if ms >= *b => fail(
                    format!("an answer within {b} ms{over}"),
                    format!("{ms:.0} ms{over}"),
                ),
                (_, Some(x)) if ms <= *x => fail(
                    format!("an answer over {x} ms{over}"),
                    format!("{ms:.0} ms{over}"),
                ),
                _ => Ok(None),
            }
        }
        Check::Similar {
            step,
            name,
            at_least,
            below,
        } => {
            let Some(Some(base)) = cx.baselines.get(*step) else {
                return fail(
                    format!("a response from step `{name}` to compare with"),
                    "none".into(),
                );
            };
            let s = similarity(&base.body, &a.body);
            match (at_least, below) {
                (Some(min), _) if s < *min => fail(
                    format!("a body at least {min} similar to step `{name}`'s"),
                    format!("{s:.2}"),
                ),
                (_, Some(max)) if s >= *max => fail(
                    format!("a body less than {max} similar to step `{name}`'s"),
                    format!("{s:.2}"),
                ),
                _ => Ok(None),
            }
        }
        Check::NoSignsOf(Family::Xss) if !renderable(a) => Ok(None),
        Check::NoSignsOf(family) => {
            let mut text = a.text().into_owned();
            // Reflected markup is the XSS sign itself; for the others an echo proves nothing.
            if let Some(p) = cx
                .payload
                .filter(|p| *family != Family::Xss && !p.is_empty())
            {
                let quoted = serde_json::to_string(p).unwrap_or_default();
                text = text.replace(p, "").replace(quoted.trim_matches('"'), "");
            }
            let hit = family.signs().iter().find_map(|p| {
                regex::Regex::new(p)
                    .ok()
                    .and_then(|re| re.find(&text).map(|m| m.as_str().to_owned()))
            });
            match hit {
                Some(m) => fail(
                    format!("no sign of {}", family.name()),
                    format!("`{}` in the body", clip(&m, 120)),
                ),
                None => Ok(None),
            }
        }
    }
}

fn text_cond(
    what: &str,
    cond: &TextCond,
    value: Option<&str>,
    scope: &dyn Scope,
) -> Result<Option<Failure>, TemplateError> {
    let shown = || value.map_or_else(|| "nothing".to_owned(), |v| format!("`{}`", clip(v, 200)));
    let regex_of = |p: &str| -> Result<Option<regex::Regex>, TemplateError> {
        let p = render_with(p, scope, &|s| Cow::Owned(regex::escape(s)))?;
        Ok(regex::Regex::new(&p).ok())
    };
    let (ok, expected) = match cond {
        TextCond::Present => (value.is_some(), format!("{what} present")),
        TextCond::Absent => (value.is_none(), format!("{what} absent")),
        TextCond::Equals(t) => {
            let t = render(t, scope)?;
            (
                value == Some(t.as_str()),
                format!("{what} = `{}`", clip(&t, 200)),
            )
        }
        TextCond::NotEquals(t) => {
            let t = render(t, scope)?;
            (
                value != Some(t.as_str()),
                format!("{what} ≠ `{}`", clip(&t, 200)),
            )
        }
        TextCond::Contains(t) => {
            let t = render(t, scope)?;
            (
                value.is_some_and(|v| v.contains(&t)),
                format!("{what} containing `{}`", clip(&t, 200)),
            )
        }
        TextCond::NotContains(t) => {
            let t = render(t, scope)?;
            (
                !value.is_some_and(|v| v.contains(&t)),
                format!("{what} without `{}`", clip(&t, 200)),
            )
        }
        TextCond::Matches(p) => {
            let re = regex_of(p)?;
            (
                value.zip(re).is_some_and(|(v, re)| re.is_match(v)),
                format!("{what} matching /{p}/"),
            )
        }
        TextCond::NotMatches(p) => {
            let re = regex_of(p)?;
            (
                !value.zip(re).is_some_and(|(v, re)| re.is_match(v)),
                format!("{what} not matching /{p}/"),
            )
        }
    };
    Ok((!ok).then(|| Failure {
        expected,
        got: shown(),
    }))
}

fn json_cond(
    path: &str,
    cond: &JsonCond,
    selected: &[&Value],
    is_json: bool,
    scope: &dyn Scope,
) -> Result<Option<Failure>, TemplateError> {
    let got = || {
        if !is_json {
            "a body that is not JSON".to_owned()
        } else if selected.is_empty() {
            format!("nothing at {path}")
        } else {
            let vals: Vec<String> = selected
                .iter()
                .take(5)
                .map(|v| clip(&v.to_string(), 80))
                .collect();
            format!("{path} = {}", vals.join(", "))
        }
    };
    let (ok, expected) = match cond {
        JsonCond::Exists => (!selected.is_empty(), format!("{path} present")),
        JsonCond::Missing => (selected.is_empty(), format!("{path} absent")),
        JsonCond::Equals(v) => {
            let v = render_value(v, scope)?;
            (
                selected.iter().any(|s| loosely_equal(s, &v)),
                format!("{path} = {v}"),
            )
        }
        JsonCond::NotEquals(v) => {
            let v = render_value(v, scope)?;
            (
                !selected.iter().any(|s| loosely_equal(s, &v)),
                format!("{path} ≠ {v}"),
            )
        }
    };
    Ok((!ok).then(|| Failure {
        expected,
        got: got(),
    }))
}

/// `42` in a test equals `"42"` in a response and the reverse: YAML authors rarely mean the
/// type difference, and identifiers travel both ways.
fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(s), Value::Number(n)) | (Value::Number(n), Value::String(s)) => {
            *s == n.to_string()
        }
        _ => a == b,
    }
}

/// Renders the strings inside a JSON value.
pub fn render_value(v: &Value, scope: &dyn Scope) -> Result<Value, TemplateError> {
    Ok(match v {
        Value::String(s) => Value::String(render(s, scope)?),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| render_value(x, scope))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Ok((render(k, scope)?, render_value(x, scope)?)))
                .collect::<Result<_, TemplateError>>()?,
        ),
        other => other.clone(),
    })
}

/// Whether a browser could render the answer as a document: markup types, or any type
/// without `X-Content-Type-Options: nosniff` (which browsers may sniff). Reflected markup in
/// a JSON answer marked `nosniff` runs nowhere.
fn renderable(a: &Answer) -> bool {
    let ct = a.header("content-type").unwrap_or("").to_ascii_lowercase();
    let markup = ct.is_empty() || ["html", "xml", "svg"].iter().any(|m| ct.contains(m));
    let nosniff = a
        .header("x-content-type-options")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("nosniff"));
    markup || !nosniff
}

/// Takes a value from an answer.
pub fn extract(source: &Source, a: &Answer) -> Option<String> {
    match source {
        Source::Status => Some(a.status.to_string()),
        Source::Header(h) => a.header(h).map(str::to_owned),
        Source::Body => Some(a.text().into_owned()),
        Source::Json(p) => {
            let doc: Value = serde_json::from_slice(&a.body).ok()?;
            let v = p.select(&doc).into_iter().next()?.clone();
            Some(match v {
                Value::String(s) => s,
                other => other.to_string(),
            })
        }
        Source::Regex { pattern, group } => {
            let re = regex::Regex::new(pattern).ok()?;
            let text = a.text();
            re.captures(&text)?
                .get(*group)
                .map(|m| m.as_str().to_owned())
        }
    }
}

/// How alike two bodies are, 0 to 1: for JSON the shared leaves (path and value), otherwise
/// the shared words. Deterministic, so reruns give the same verdicts.
pub fn similarity(a: &[u8], b: &[u8]) -> f64 {
    let (sa, sb) = match (
        serde_json::from_slice::<Value>(a),
        serde_json::from_slice::<Value>(b),
    ) {
        (Ok(x), Ok(y)) => (leaves(&x), leaves(&y)),
        _ => (words(a), words(b)),
    };
    if sa.is_empty() && sb.is_empty() {
        return 1.0;
    }
    let shared = sa.intersection(&sb).count() as f64;
    shared / sa.union(&sb).count() as f64
}

fn leaves(v: &Value) -> HashSet<String> {
    fn walk(v: &Value, path: &mut String, out: &mut HashSet<String>) {
        match v {
            Value::Object(o) => o.iter().for_each(|(k, x)| {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                walk(x, path, out);
                path.truncate(len);
            }),
            // Positions in arrays do not matter (lists are often reordered).
            Value::Array(a) => a.iter().for_each(|x| {
                let len = path.len();
                path.push_str("[]");
                walk(x, path, out);
                path.truncate(len);
            }),
            leaf => {
                out.insert(format!("{path}={leaf}"));
            }
        }
    }
    let mut out = HashSet::new();
    walk(v, &mut String::new(), &mut out);
    out
}

fn words(b: &[u8]) -> HashSet<String> {
    String::from_utf8_lossy(b)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonpath::JsonPath;
    use crate::plan::StatusSet;
    use std::collections::HashMap;
    use std::time::Duration;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
            duration: Duration::from_millis(30),
        }
    }

    fn vars() -> HashMap<String, String> {
        [
            ("id".to_string(), "42".to_string()),
            ("p".to_string(), "<b>".to_string()),
        ]
        .into()
    }

    #[test]
    fn each_kind_of_check_passes_and_fails() {
        let a = answer(200, r#"{"id": 42, "owner": "alice", "echo": "<b>"}"#);
        let ok = |c: Check| {
            judge(&[c], &a, &vars(), &Context::default())
                .unwrap()
                .is_empty()
        };
        assert!(ok(Check::Status(StatusSet::Class(2))));
        assert!(!ok(Check::Status(StatusSet::Not(Box::new(
            StatusSet::Class(2)
        )))));
        assert!(ok(Check::Header {
            name: "content-type".into(),
            cond: TextCond::Matches("json".into())
        }));
        assert!(!ok(Check::Header {
            name: "X-Frame-Options".into(),
            cond: TextCond::Present
        }));
        assert!(!ok(Check::Body(TextCond::NotContains("{{p}}".into()))));
        let path = JsonPath::parse("$.id").unwrap();
        assert!(ok(Check::Json {
            path: path.clone(),
            cond: JsonCond::Equals(Value::String("{{id}}".into()))
        }));
        assert!(!ok(Check::Json {
            path,
            cond: JsonCond::Missing
        }));
        assert!(ok(Check::DurationMs {
            below: Some(1000.0),
            above: None,
            than: None
        }));
        assert!(!ok(Check::DurationMs {
            below: None,
            above: Some(1000.0),
            than: None
        }));
        // 30 ms against a 25 ms baseline: 5 ms more.
        let base = [Some(Baseline {
            body: Vec::new(),
            duration_ms: 25.0,
        })];
        let cx = Context {
            baselines: &base,
            payload: None,
        };
        let slower = |below| Check::DurationMs {
            below: Some(below),
            above: None,
            than: Some((0, "b".into())),
        };
        assert!(judge(&[slower(10.0)], &a, &vars(), &cx).unwrap().is_empty());
        assert_eq!(judge(&[slower(4.0)], &a, &vars(), &cx).unwrap().len(), 1);
        assert!(ok(Check::NoSignsOf(crate::payloads::Family::Sqli)));
        let echo = answer(201, r#"{"sku": "{\"$where\": \"sleep(100)\"}"}"#);
        let nosql = [Check::NoSignsOf(Family::Nosql)];
        let payload = Context {
            payload: Some(r#"{"$where": "sleep(100)"}"#),
            ..Context::default()
        };
        assert!(
            judge(&nosql, &echo, &vars(), &payload).unwrap().is_empty(),
            "an echo is not a sign"
        );
        assert_eq!(
            judge(&nosql, &echo, &vars(), &Context::default())
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn reflected_markup_counts_only_where_a_browser_renders_it() {
        let mut a = answer(200, r#"{"q": "<script>alert(7331)</script>"}"#);
        let xss = [Check::NoSignsOf(Family::Xss)];
        assert_eq!(
            judge(&xss, &a, &vars(), &Context::default()).unwrap().len(),
            1,
            "JSON without nosniff may be sniffed"
        );
        a.headers
            .push(("X-Content-Type-Options".into(), "nosniff".into()));
        assert!(
            judge(&xss, &a, &vars(), &Context::default())
                .unwrap()
                .is_empty()
        );
        a.headers[0].1 = "text/html".into();
        assert_eq!(
            judge(&xss, &a, &vars(), &Context::default()).unwrap().len(),
            1
        );
        let escaped = answer(200, "&quot;&gt;&lt;img src=x onerror=alert(7331)&gt;");
        assert!(
            judge(&xss, &escaped, &vars(), &Context::default())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn failures_say_what_was_expected_and_seen() {
        let a = answer(200, "{}");
        let f = judge(
            &[Check::Status(StatusSet::Class(4))],
            &a,
            &vars(),
            &Context::default(),
        )
        .unwrap();
        assert_eq!(f[0].to_string(), "expected status 4xx, got status 200");
    }

    #[test]
    fn similarity_compares_json_leaves_and_words() {
        let a = br#"{"id": 1, "items": [{"a": 1}, {"a": 2}]}"#;
        let b = br#"{"items": [{"a": 2}, {"a": 1}], "id": 1}"#;
        assert_eq!(similarity(a, b), 1.0);
        assert!(similarity(a, br#"{"error": "forbidden"}"#) < 0.1);
        assert!(similarity(b"hello world", b"hello there") > 0.3);
    }

    #[test]
    fn values_are_extracted_from_each_source() {
        let a = answer(201, r#"{"token": "abc", "n": 3}"#);
        assert_eq!(extract(&Source::Status, &a).as_deref(), Some("201"));
        assert_eq!(
            extract(&Source::Json(JsonPath::parse("$.token").unwrap()), &a).as_deref(),
            Some("abc")
        );
        assert_eq!(
            extract(&Source::Json(JsonPath::parse("$.n").unwrap()), &a).as_deref(),
            Some("3")
        );
        assert_eq!(
            extract(&Source::Header("content-type".into()), &a).as_deref(),
            Some("application/json")
        );
        assert_eq!(
            extract(
                &Source::Regex {
                    pattern: r#""token": "(\w+)""#.into(),
                    group: 1
                },
                &a
            )
            .as_deref(),
            Some("abc")
        );
        assert_eq!(
            extract(&Source::Json(JsonPath::parse("$.nope").unwrap()), &a),
            None
        );
    }
}
