//! Attack-detection accuracy over `../shared/corpus/attacks/labelled_payloads.jsonl`: detection
//! rate per family on the labelled attack payloads (libinjection's test data, HttpParamsDataset,
//! PayloadsAllTheThings) and the share of benign values (real CSIC-2010 traffic values and
//! libinjection's false-positive list) that any detector flags.

use anyhow::Result;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tapline_detect::attack::{Family, detect};

/// The corpus folder: `$TAPLINE_CORPUS/attacks`, else `shared/corpus/attacks` beside the
/// repository or one of its parent folders.
pub fn corpus_dir() -> Option<PathBuf> {
    crate::corpus_dir("attacks", "labelled_payloads.jsonl")
}

/// The family a corpus label means, `None` for benign and labels we do not score.
pub fn family_of(cls: &str) -> Option<Family> {
    Some(match cls {
        "sqli" => Family::Sqli,
        "xss" => Family::Xss,
        "path_traversal" | "lfi" => Family::PathTraversal,
        "cmdi" => Family::Cmdi,
        "ssrf" => Family::Ssrf,
        "xxe" => Family::Xxe,
        "nosqli" => Family::Nosqli,
        "ssti" => Family::Ssti,
        "ldapi" => Family::Ldapi,
        "crlf" => Family::Crlf,
        "open_redirect" => Family::OpenRedirect,
        _ => return None,
    })
}

/// Counts per label.
#[derive(Debug, Default, Clone, Copy)]
pub struct Rate {
    /// Payloads with this label.
    pub total: usize,
    /// Detected as the labelled family.
    pub detected: usize,
    /// Flagged as any family.
    pub any: usize,
}

/// The result: per (label, source) and misses for `--verbose`.
#[derive(Debug, Default)]
pub struct Report {
    /// (label, source) → counts.
    pub rates: BTreeMap<(String, String), Rate>,
    /// Misses and false positives (label, payload, what fired).
    pub errors: Vec<(String, String, String)>,
}

impl Report {
    /// Totals per label.
    pub fn per_label(&self) -> BTreeMap<String, Rate> {
        let mut out: BTreeMap<String, Rate> = BTreeMap::new();
        for ((label, _), r) in &self.rates {
            let t = out.entry(label.clone()).or_default();
            t.total += r.total;
            t.detected += r.detected;
            t.any += r.any;
        }
        out
    }
}

#[derive(Deserialize)]
struct Payload {
    source: String,
    cls: String,
    payload: String,
}

/// Runs every payload through the detectors.
pub fn evaluate(dir: &Path) -> Result<Report> {
    let path = dir.join("labelled_payloads.jsonl");
    let mut report = Report::default();
    for p in crate::read_jsonl::<Payload>(&path)? {
        let hits = detect(&p.payload, None);
        let r = report
            .rates
            .entry((p.cls.clone(), p.source.clone()))
            .or_default();
        r.total += 1;
        r.any += usize::from(!hits.is_empty());
        let fired = hits
            .iter()
            .map(|h| h.family.name())
            .collect::<Vec<_>>()
            .join(",");
        match family_of(&p.cls) {
            Some(f) => {
                if hits.iter().any(|h| h.family == f) {
                    r.detected += 1;
                } else {
                    report.errors.push((p.cls, p.payload, fired));
                }
            }
            None if !hits.is_empty() => report.errors.push((p.cls, p.payload, fired)),
            None => {}
        }
    }
    Ok(report)
}

/// The report as a Markdown table.
pub fn table(r: &Report) -> String {
    let mut out = String::from(
        "| label | payloads | detected as the family | rate | flagged as any family |\n|---|---:|---:|---:|---:|\n",
    );
    for (label, rate) in r.per_label() {
        let pct = |n: usize| 100.0 * n as f64 / rate.total.max(1) as f64;
        if family_of(&label).is_some() {
            out.push_str(&format!(
                "| {label} | {} | {} | {:.1}% | {:.1}% |\n",
                rate.total,
                rate.detected,
                pct(rate.detected),
                pct(rate.any)
            ));
        } else {
            out.push_str(&format!(
                "| {label} | {} | — | — | **{:.2}%** ({} values) |\n",
                rate.total,
                pct(rate.any),
                rate.any
            ));
        }
    }
    out.push_str("\nBy source:\n\n| label | source | payloads | detected | rate | flagged as any |\n|---|---|---:|---:|---:|---:|\n");
    for ((label, source), rate) in &r.rates {
        let pct = |n: usize| 100.0 * n as f64 / rate.total.max(1) as f64;
        let detected = if family_of(label).is_some() {
            format!("{} | {:.1}%", rate.detected, pct(rate.detected))
        } else {
            "— | —".into()
        };
        out.push_str(&format!(
            "| {label} | {source} | {} | {detected} | {:.2}% |\n",
            rate.total,
            pct(rate.any)
        ));
    }
    out
}
