//! Attack detection on the OWASP CRS regression tests (`crs_tests.jsonl`): every test is a
//! whole HTTP request; it is written as raw bytes, decoded by Tapline's HTTP decoder (so
//! framing tricks reach the detectors as they would from the wire) and scanned in every
//! location. Per CRS family: how many of the tests that expect a rule to fire Tapline flags —
//! as the matching family where one exists, and as any family.
//!
//! The CRS tests exercise a web application firewall's rules at every paranoia level, so some
//! "attacks" are single odd characters (rule 942431: "restricted SQL character anomaly") and
//! the tests that expect a rule *not* to fire are not a benign set: they are reported, not
//! scored.

use anyhow::Result;
use base64::Engine as _;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use tapline_decode::http::{Direction, HttpConfig, HttpConnection};
use tapline_detect::attack::{Family, RequestScanner};
use tapline_record::{Anomalies, Transaction};

/// The Tapline families that answer a CRS family; empty when Tapline has no such family
/// (only "flagged as any family" is then meaningful).
pub fn families_of(crs: &str) -> &'static [Family] {
    match crs {
        "sqli" => &[Family::Sqli],
        "xss" => &[Family::Xss],
        "lfi/path-traversal" => &[Family::PathTraversal],
        "rce/command-injection" => &[Family::Cmdi],
        "generic(node/ssrf/ssti/perl)" => &[
            Family::Ssrf,
            Family::Ssti,
            Family::Nosqli,
            Family::Cmdi,
            Family::Jndi,
        ],
        "rfi" => &[Family::Ssrf, Family::PathTraversal, Family::OpenRedirect],
        "java/deser" => &[Family::Jndi, Family::Cmdi],
        "protocol-attack(smuggling/splitting)" => &[Family::RequestSmuggling, Family::Crlf],
        _ => &[],
    }
}

/// Counts for one CRS family.
#[derive(Debug, Default, Clone, Copy)]
pub struct Rate {
    /// Tests expecting a rule to fire.
    pub attacks: usize,
    /// … flagged as a matching family.
    pub matched: usize,
    /// … flagged as any family.
    pub any: usize,
    /// Tests expecting a rule not to fire.
    pub others: usize,
    /// … that Tapline flags anyway.
    pub others_flagged: usize,
}

/// The report: per CRS family, plus misses for `--verbose`.
#[derive(Debug, Default)]
pub struct Report {
    /// CRS family → counts.
    pub rates: BTreeMap<String, Rate>,
    /// Misses: (family, rule, request line and body, what fired).
    pub misses: Vec<(String, String, String, String)>,
}

#[derive(Deserialize)]
struct Test {
    family: String,
    rule_id: String,
    method: Option<String>,
    uri: Option<String>,
    version: Option<String>,
    /// Values are strings or numbers.
    #[serde(default)]
    headers: BTreeMap<String, serde_json::Value>,
    data: Option<serde_json::Value>,
    encoded_request: Option<String>,
    #[serde(default)]
    expect_ids: Vec<u64>,
}

/// A JSON string as itself, anything else as JSON.
fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The test as the bytes a client would send.
fn raw_request(t: &Test) -> Vec<u8> {
    if let Some(raw) = t
        .encoded_request
        .as_deref()
        .and_then(|e| base64::engine::general_purpose::STANDARD.decode(e).ok())
    {
        return raw;
    }
    let mut out = format!(
        "{} {} {}\r\n",
        t.method.as_deref().unwrap_or("GET"),
        t.uri.as_deref().unwrap_or("/"),
        t.version.as_deref().unwrap_or("HTTP/1.1")
    )
    .into_bytes();
    let data = t.data.as_ref().map(text).unwrap_or_default();
    let mut has_length = false;
    for (k, v) in &t.headers {
        has_length |=
            k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding");
        out.extend_from_slice(format!("{k}: {}\r\n", text(v)).as_bytes());
    }
    if !data.is_empty() && !has_length {
        out.extend_from_slice(format!("Content-Length: {}\r\n", data.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data.as_bytes());
    out
}

fn decode(raw: &[u8]) -> Vec<Transaction> {
    let cfg = HttpConfig::default();
    let mut conn = HttpConnection::new(None, None, false);
    let mut out = Vec::new();
    conn.data(Direction::FromClient, 0, raw, &cfg, &mut out);
    conn.close(Anomalies::NONE, &cfg, &mut out);
    out
}

/// Decodes and scans every test.
pub fn evaluate(dir: &Path) -> Result<Report> {
    let path = dir.join("crs_tests.jsonl");
    let mut report = Report::default();
    for t in crate::read_jsonl::<Test>(&path)? {
        let raw = raw_request(&t);
        let mut fired: Vec<Family> = Vec::new();
        // A fresh scanner per test: its memory of clean values must not carry between tests.
        let mut scanner = RequestScanner::default();
        for tx in decode(&raw) {
            scanner.scan(&tx, &mut |f| {
                if !fired.contains(&f.hit.family) {
                    fired.push(f.hit.family);
                }
            });
        }
        let want = families_of(&t.family);
        let r = report.rates.entry(t.family.clone()).or_default();
        if t.expect_ids.is_empty() {
            r.others += 1;
            r.others_flagged += usize::from(!fired.is_empty());
            continue;
        }
        r.attacks += 1;
        r.any += usize::from(!fired.is_empty());
        let matched = fired.iter().any(|f| want.contains(f));
        r.matched += usize::from(matched);
        if !matched {
            // The request line and the body: where the payloads are.
            let text = String::from_utf8_lossy(&raw);
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
            let line = format!("{} ⏎ {}", head.lines().next().unwrap_or(""), body);
            let names: Vec<&str> = fired.iter().map(|f| f.name()).collect();
            report
                .misses
                .push((t.family, t.rule_id, line, names.join(",")));
        }
    }
    Ok(report)
}

/// The report as a Markdown table.
pub fn table(r: &Report) -> String {
    let mut out = String::from(
        "| CRS family | tests expecting a rule | flagged as the family | rate | flagged as any family | rate | tests expecting no rule, flagged |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for (family, rate) in &r.rates {
        if rate.attacks == 0 {
            continue;
        }
        let pct = |n: usize| 100.0 * n as f64 / rate.attacks as f64;
        let matched = if families_of(family).is_empty() {
            "— | —".to_owned()
        } else {
            format!("{} | {:.1}%", rate.matched, pct(rate.matched))
        };
        out.push_str(&format!(
            "| {family} | {} | {matched} | {} | {:.1}% | {}/{} |\n",
            rate.attacks,
            rate.any,
            pct(rate.any),
            rate.others_flagged,
            rate.others
        ));
    }
    out
}
