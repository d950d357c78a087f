//! SARIF 2.1.0: one rule per test, one result per failed test, with the failed attempt's HTTP
//! exchange in the result's `webRequest`/`webResponse` (the format's own objects for it).

use super::attempt_text;
use crate::exchange::Exchange;
use crate::run::{RunReport, TestResult, Verdict};
use crate::spec::Severity;
use serde_json::{Map, Value, json};

/// The run as a SARIF 2.1.0 log.
pub fn sarif(report: &RunReport) -> Value {
    let rules: Vec<Value> = report.tests.iter().map(rule).collect();
    let results: Vec<Value> = report
        .tests
        .iter()
        .enumerate()
        .filter(|(_, t)| t.verdict == Verdict::Fail)
        .map(|(i, t)| result(i, t))
        .collect();
    let notifications: Vec<Value> = report
        .tests
        .iter()
        .filter(|t| t.verdict == Verdict::Error)
        .map(|t| {
            json!({
                "level": "error",
                "message": {"text": format!("{}: {}", t.id, t.reason.as_deref().unwrap_or("error"))},
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "Tapline",
                "informationUri": env!("CARGO_PKG_REPOSITORY"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "invocations": [{
                "executionSuccessful": notifications.is_empty(),
                "toolExecutionNotifications": notifications,
                "properties": {"target": report.target, "requests": report.requests},
            }],
            "results": results,
        }],
    })
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's code scanning ranks security results by this (0–10).
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

fn rule(t: &TestResult) -> Value {
    let mut tags = t.tags.clone();
    tags.push("security".into());
    json!({
        "id": t.id,
        "shortDescription": {"text": t.name},
        "defaultConfiguration": {"level": level(t.severity)},
        "properties": {"tags": tags, "security-severity": security_severity(t.severity)},
    })
}

fn result(index: usize, t: &TestResult) -> Value {
    let evidence: Vec<String> = t
        .failed_attempts()
        .map(|(s, a)| attempt_text(s, a))
        .collect();
    let mut r = json!({
        "ruleId": t.id,
        "ruleIndex": index,
        "level": level(t.severity),
        "message": {"text": format!("{}: {}", t.name, t.reason.as_deref().unwrap_or("failed"))},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": uri(&t.file)},
            "region": {"startLine": 1},
        }}],
        "properties": {"evidence": evidence.join("\n----\n")},
    });
    if let Some(x) = t.failed_attempts().find_map(|(_, a)| a.exchange.as_ref())
        && let Some(obj) = r.as_object_mut()
    {
        let (req, resp) = web(x);
        obj.insert("webRequest".into(), req);
        if let Some(resp) = resp {
            obj.insert("webResponse".into(), resp);
        }
    }
    r
}

fn headers(h: &[(String, String)]) -> Value {
    let mut m = Map::new();
    for (n, v) in h {
        match m.get_mut(n) {
            Some(Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(v);
            }
            _ => {
                m.insert(n.clone(), Value::String(v.clone()));
            }
        }
    }
    Value::Object(m)
}

fn web(x: &Exchange) -> (Value, Option<Value>) {
    let mut req = json!({
        "protocol": "HTTP",
        "version": "1.1",
        "target": x.request.url,
        "method": x.request.method,
        "headers": headers(&x.request.headers),
    });
    if let (Some(b), Some(o)) = (&x.request.body, req.as_object_mut()) {
        o.insert("body".into(), json!({"text": b}));
    }
    let resp = x.response.as_ref().map(|r| {
        json!({
            "protocol": "HTTP",
            "version": "1.1",
            "statusCode": r.status,
            "headers": headers(&r.headers),
            "body": {"text": r.body},
        })
    });
    (req, resp)
}

/// A test file as a URI reference: relative to the working directory when it lies below it
/// (what code-scanning tools resolve against the checkout), else an absolute `file://` URI —
/// never with `..` segments, which mean different things where symbolic links differ.
fn uri(file: &str) -> String {
    let path = std::path::Path::new(file);
    let full = std::fs::canonicalize(path).unwrap_or_else(|_| lexically_normal(path));
    let cwd = std::env::current_dir()
        .ok()
        .and_then(|d| std::fs::canonicalize(d).ok());
    let (shown, absolute) = match cwd.as_deref().and_then(|d| full.strip_prefix(d).ok()) {
        Some(rel) if full.is_absolute() => (rel.to_path_buf(), false),
        _ => (full.clone(), full.is_absolute()),
    };
    let encoded: Vec<String> = shown
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => Some(
                url::form_urlencoded::byte_serialize(s.to_string_lossy().as_bytes())
                    .collect::<String>()
                    .replace('+', "%20"),
            ),
            _ => None,
        })
        .collect();
    let joined = encoded.join("/");
    if absolute {
        format!("file:///{joined}")
    } else {
        joined
    }
}

/// `a/./b/../c` as `a/c`, for paths that do not exist (any more) to canonicalise.
fn lexically_normal(path: &std::path::Path) -> std::path::PathBuf {
    let mut out = std::path::PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_have_no_dot_segments() {
        let cwd = std::env::current_dir().unwrap();
        let inside = cwd.join("src/../src/lib.rs");
        assert_eq!(uri(inside.to_str().unwrap()), "src/lib.rs");
        assert_eq!(
            uri("/nonexistent/a/../b c.yaml"),
            "file:///nonexistent/b%20c.yaml"
        );
        assert!(!uri("../x/../y.yaml").contains(".."));
    }
}
