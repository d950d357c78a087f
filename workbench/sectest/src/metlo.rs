//! Metlo's test YAML (`id`, `meta`, `env: [{name, value}]`, `test: [{request, extract, assert,
//! payload}]`), read into Tapline's format so its users' tests run unchanged.
//!
//! Metlo evaluates assertion keys and `JS` assertions as JavaScript. Tapline runs no embedded
//! script: the keys it can read declaratively (`resp.status`, `resp.body`, `resp.body.a.b`,
//! `resp.headers.name`, `resp.duration`) are translated; anything else is refused with the
//! step's number, before a request is sent.

use crate::load::{LoadError, check_file};
use crate::plan::{Dialect, Test};
use crate::spec::{
    self, Assertion, BodyCheck, Bound, Extract, HeaderCheck, JsonCheck, StatusMatch,
};
use indexmap::IndexMap;
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
struct MetloTest {
    id: String,
    meta: MetloMeta,
    #[serde(default)]
    env: Vec<NameValue>,
    test: Vec<MetloStep>,
}

#[derive(Deserialize)]
struct MetloMeta {
    name: String,
    severity: String,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Deserialize)]
struct NameValue {
    name: String,
    value: String,
}

#[derive(Deserialize)]
struct MetloStep {
    request: MetloRequest,
    #[serde(default)]
    extract: Vec<MetloExtract>,
    #[serde(default)]
    assert: Vec<MetloAssert>,
    #[serde(default)]
    payload: Vec<MetloPayload>,
}

#[derive(Deserialize)]
struct MetloRequest {
    method: String,
    url: String,
    #[serde(default)]
    headers: Vec<NameValue>,
    #[serde(default)]
    query: Vec<NameValue>,
    #[serde(default)]
    form: Vec<NameValue>,
    #[serde(default)]
    data: Option<String>,
}

#[derive(Deserialize)]
struct MetloExtract {
    name: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    value: String,
}

#[derive(Deserialize)]
struct MetloAssert {
    #[serde(default)]
    key: Option<String>,
    value: serde_json::Value,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct MetloPayload {
    key: String,
    value: String,
}

/// Reads a Metlo test.
pub fn parse(file: &Path, text: &str) -> Result<Test, LoadError> {
    let m: MetloTest = serde_saphyr::from_str(text).map_err(|e| {
        let loc = e.location();
        LoadError {
            file: file.to_owned(),
            line: loc.map(|l| l.line()),
            column: loc.map(|l| l.column()),
            message: format!(
                "(Metlo test) {}",
                e.to_string().lines().next().unwrap_or("invalid YAML")
            ),
        }
    })?;
    let err = |m: String| LoadError {
        file: file.to_owned(),
        line: None,
        column: None,
        message: m,
    };
    let severity = spec::Severity::parse(&m.meta.severity).ok_or_else(|| {
        err(format!(
            "(Metlo test) severity `{}` is not LOW, MEDIUM, HIGH or CRITICAL",
            m.meta.severity
        ))
    })?;
    let mut steps = Vec::with_capacity(m.test.len());
    for (i, s) in m.test.into_iter().enumerate() {
        steps.push(step(s).map_err(|e| err(format!("(Metlo test) step #{}: {e}", i + 1)))?);
    }
    let f = spec::TestFile {
        version: spec::FORMAT.into(),
        id: m.id,
        meta: spec::Meta {
            name: m.meta.name,
            severity,
            tags: m.meta.tags,
            description: None,
            built_from: None,
        },
        // BASE_URL is where Metlo's tests point; here that is the run's --target.
        env: m
            .env
            .into_iter()
            .filter(|nv| nv.name != "BASE_URL")
            .map(|nv| (nv.name, nv.value))
            .collect(),
        identities: Vec::new(),
        payloads: Default::default(),
        options: spec::Options::default(),
        steps,
    };
    check_file(file, f, Dialect::Metlo)
}

fn pairs(list: Vec<NameValue>) -> IndexMap<String, String> {
    list.into_iter().map(|nv| (nv.name, nv.value)).collect()
}

fn step(s: MetloStep) -> Result<spec::Step, String> {
    let for_each = match s.payload.as_slice() {
        [] => None,
        [p] => Some(
            [(p.key.clone(), p.value.to_ascii_lowercase())]
                .into_iter()
                .collect(),
        ),
        _ => {
            return Err(
                "more than one payload list in a step is not supported; split the step".into(),
            );
        }
    };
    let url = s.request.url.replace("{{BASE_URL}}", "{{target}}");
    Ok(spec::Step {
        name: None,
        role: spec::Role::Check,
        identity: None,
        for_each,
        repeat: None,
        pass_when: spec::PassWhen::EveryAttempt,
        request: spec::Request {
            method: s.request.method,
            url,
            headers: pairs(s.request.headers),
            query: pairs(s.request.query),
            form: pairs(s.request.form),
            body: s.request.data,
            json: None,
        },
        extract: s
            .extract
            .into_iter()
            .map(extract)
            .collect::<Result<_, _>>()?,
        asserts: s
            .assert
            .into_iter()
            .map(assertion)
            .collect::<Result<_, _>>()?,
    })
}

/// What a Metlo key (`resp.body.token`) points at.
enum Key {
    Status,
    Body,
    BodyPath(String),
    Header(String),
    Duration,
}

fn key(k: &str) -> Result<Key, String> {
    let k = k.trim();
    Ok(match k {
        "resp.status" | "resp.statusCode" => Key::Status,
        "resp.body" | "resp.data" => Key::Body,
        "resp.duration" => Key::Duration,
        _ => {
            let plain = |s: &str| {
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.[]-'\"".contains(&b))
            };
            let path = k
                .strip_prefix("resp.body.")
                .or_else(|| k.strip_prefix("resp.data."))
                .filter(|p| plain(p));
            if let Some(p) = path {
                Key::BodyPath(format!("$.{p}"))
            } else if let Some(h) = k.strip_prefix("resp.headers.").filter(|h| plain(h)) {
                Key::Header(h.trim_matches(['[', ']', '"', '\'']).to_owned())
            } else {
                return Err(format!(
                    "`{k}` is JavaScript Tapline does not run; use resp.status, resp.body, resp.body.FIELD, resp.headers.NAME or resp.duration"
                ));
            }
        }
    })
}

fn extract(e: MetloExtract) -> Result<Extract, String> {
    let kind = e.kind.as_deref().unwrap_or("VALUE").to_ascii_uppercase();
    let mut out = Extract {
        name: e.name.clone(),
        ..Default::default()
    };
    match kind.as_str() {
        "VALUE" => match key(&e.value)? {
            Key::Status => out.status = Some(true),
            Key::Body => out.body = Some(true),
            Key::BodyPath(p) => out.json = Some(p),
            Key::Header(h) => out.header = Some(h),
            Key::Duration => {
                return Err(format!(
                    "extract `{}`: a duration is not a value to extract",
                    e.name
                ));
            }
        },
        "REGEXP" => out.regex = Some(e.value),
        other => {
            return Err(format!(
                "extract `{}`: type {other} is not supported (VALUE and REGEXP are)",
                e.name
            ));
        }
    }
    Ok(out)
}

fn assertion(a: MetloAssert) -> Result<Assertion, String> {
    let kind = a.kind.as_deref().unwrap_or("EQ").to_ascii_uppercase();
    if kind == "JS" {
        return Err(format!(
            "a JS assertion (`{}`) is unsupported: Tapline runs no embedded script; write it as a key and value (EQ or REGEXP)",
            a.value.as_str().unwrap_or("…")
        ));
    }
    let Some(k) = a.key.as_deref() else {
        return Err(format!("an {kind} assertion needs a `key`"));
    };
    let text = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    let regexp = match kind.as_str() {
        "EQ" => false,
        "REGEXP" => true,
        other => return Err(format!("assertion type {other} is not EQ, REGEXP or JS")),
    };
    Ok(match (key(k)?, regexp) {
        (Key::Status, false) => Assertion::Status(status(&a.value)?),
        (Key::Status, true) => Assertion::Status(StatusMatch::Class(text(&a.value))),
        (Key::Body, false) => Assertion::Body(BodyCheck {
            matches: Some(format!("^{}$", regex::escape(&text(&a.value)))),
            ..Default::default()
        }),
        (Key::Body, true) => Assertion::Body(BodyCheck {
            matches: Some(text(&a.value)),
            ..Default::default()
        }),
        (Key::BodyPath(path), false) => Assertion::Json(JsonCheck {
            path,
            equals: Some(a.value),
            ..Default::default()
        }),
        (Key::BodyPath(_), true) | (Key::Duration, true) => {
            return Err(format!("REGEXP on `{k}` is not supported; use EQ"));
        }
        (Key::Header(name), false) => Assertion::Header(HeaderCheck {
            name,
            equals: Some(text(&a.value)),
            ..Default::default()
        }),
        (Key::Header(name), true) => Assertion::Header(HeaderCheck {
            name,
            matches: Some(text(&a.value)),
            ..Default::default()
        }),
        (Key::Duration, false) => Assertion::DurationMs(Bound {
            below: a.value.as_f64(),
            above: None,
            than: None,
        }),
    })
}

/// Metlo's EQ with a list means "any of".
fn status(v: &serde_json::Value) -> Result<StatusMatch, String> {
    match v {
        serde_json::Value::Array(all) => Ok(StatusMatch::OneOf(
            all.iter().map(status).collect::<Result<_, _>>()?,
        )),
        serde_json::Value::Number(n) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .map(StatusMatch::Code)
            .ok_or_else(|| format!("status {n} is not a status code")),
        serde_json::Value::String(s) => Ok(StatusMatch::Class(s.clone())),
        other => Err(format!("status {other} is not a status code")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Attempts, Check, StatusSet};

    const METLO: &str = r#"
id: 5c3a3f2e-bola-user
meta:
  name: GET /api/user/{userId} BOLA
  severity: HIGH
  tags: [BOLA]
env:
  - name: BASE_URL
    value: http://localhost:8080
  - name: USER_ID
    value: "7"
test:
  - request:
      method: POST
      url: "{{BASE_URL}}/login"
      form:
        - name: user
          value: a
    extract:
      - name: TOKEN
        type: VALUE
        value: resp.body.token
    assert:
      - key: resp.status
        value: [200, 201]
  - request:
      method: GET
      url: "{{BASE_URL}}/api/user/{{USER_ID}}"
      headers:
        - name: Authorization
          value: "Bearer {{TOKEN}}"
    payload:
      - key: P
        value: SQLI
    assert:
      - key: resp.status
        value: 403
      - type: REGEXP
        key: resp.headers.content-type
        value: json
"#;

    #[test]
    fn metlo_tests_are_read_into_the_same_plan() {
        let t = crate::load::parse_any(Path::new("m.yaml"), METLO)
            .unwrap()
            .unwrap();
        assert_eq!(t.dialect, Dialect::Metlo);
        assert_eq!(t.meta.severity, spec::Severity::High);
        assert!(!t.env.contains_key("BASE_URL"));
        assert_eq!(t.steps[1].request.url, "{{target}}/api/user/{{USER_ID}}");
        assert!(
            matches!(&t.steps[0].checks[0], Check::Status(StatusSet::OneOf(v)) if v.len() == 2)
        );
        assert!(matches!(&t.steps[1].attempts, Attempts::Payloads { var, .. } if var == "P"));
    }

    #[test]
    fn javascript_is_refused_naming_the_step() {
        let js = METLO.replace(
            "      - key: resp.status\n        value: 403",
            "      - type: JS\n        value: resp.status < 300",
        );
        let e = crate::load::parse_any(Path::new("m.yaml"), &js)
            .unwrap_err()
            .to_string();
        assert!(e.contains("step #2") && e.contains("unsupported"), "{e}");
        let odd = METLO.replace(
            "key: resp.status\n        value: 403",
            "key: resp.body.length > 3\n        value: 403",
        );
        let e = crate::load::parse_any(Path::new("m.yaml"), &odd)
            .unwrap_err()
            .to_string();
        assert!(e.contains("step #2"), "{e}");
    }
}
