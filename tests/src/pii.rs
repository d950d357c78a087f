//! Sensitive-data accuracy over the third-party corpus in `../shared/corpus/pii`: Presidio's
//! recognizer test cases (exact character spans), the published test-card list, and the
//! trufflehog and gitleaks secret cases. Precision and recall per class.
//!
//! How each source is scored:
//! - **Presidio**: a case is scored for the class its recognizer tests. Every expected span is
//!   a positive; a hit of that class matches when its character span is exactly the expected
//!   one. Unmatched hits of the class are false positives. Cases that give only a count are
//!   scored by count.
//! - **Test cards**: each Luhn-valid number must be reported as a card over its whole length;
//!   a Luhn-invalid number reported as a card is a false positive.
//! - **Secrets**: scored per case. A secret case is found when a hit of the mapped class
//!   covers (or is part of) one of the wanted strings (trufflehog) or when the class fires at
//!   all (gitleaks true positives); a no-secret case where the class fires is a false positive.
//!
//! Only detectors and recognizers whose credential *is* one of our classes are mapped.
//! [`EXCLUDED`] lists the cases whose label depends on something the class does not model,
//! with the reason; they are counted and printed, never silently dropped.

use anyhow::{Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tapline_detect::classify::{DataClass, Hit, classify};

/// The corpus folder: `$TAPLINE_CORPUS/pii`, else `shared/corpus/pii` beside the repository or
/// beside one of its parent folders (`../shared`, the workplace layout), if present.
pub fn corpus_dir() -> Option<PathBuf> {
    crate::corpus_dir("pii", "presidio_cases.jsonl")
}

/// Counts for one class.
#[derive(Clone, Copy, Debug, Default)]
pub struct Score {
    /// Positives found.
    pub tp: usize,
    /// Reports that were not positives.
    pub fp: usize,
    /// Positives missed.
    pub fn_: usize,
    /// Cases excluded from scoring (see [`EXCLUDED`]).
    pub excluded: usize,
}

impl Score {
    /// TP / (TP + FP); 1 when nothing was reported.
    pub fn precision(&self) -> f64 {
        if self.tp + self.fp == 0 {
            1.0
        } else {
            self.tp as f64 / (self.tp + self.fp) as f64
        }
    }

    /// TP / (TP + FN); 1 when there was nothing to find.
    pub fn recall(&self) -> f64 {
        if self.tp + self.fn_ == 0 {
            1.0
        } else {
            self.tp as f64 / (self.tp + self.fn_) as f64
        }
    }
}

/// The whole result: per class and source.
#[derive(Debug, Default)]
pub struct Report {
    /// (class, source) → counts.
    pub scores: BTreeMap<(DataClass, &'static str), Score>,
    /// Misses and false positives, for `--verbose`.
    pub errors: Vec<String>,
    /// trufflehog cases of detectors we do not map: (secret cases where any secret class
    /// fired, secret cases, no-secret cases where one fired, no-secret cases).
    pub unmapped_secret_coverage: (usize, usize, usize, usize),
}

impl Report {
    /// Totals per class over all sources.
    pub fn per_class(&self) -> BTreeMap<DataClass, Score> {
        let mut out: BTreeMap<DataClass, Score> = BTreeMap::new();
        for (&(class, _), s) in &self.scores {
            let t = out.entry(class).or_default();
            t.tp += s.tp;
            t.fp += s.fp;
            t.fn_ += s.fn_;
            t.excluded += s.excluded;
        }
        out
    }
}

/// Cases scored differently by the reference tool for a reason outside the class's meaning:
/// (source, detector or rule, case name or text prefix, reason).
pub const EXCLUDED: &[(&str, &str, &str, &str)] = &[
    (
        "trufflehog",
        "jwt",
        "HS256/valid",
        "trufflehog reports only JWTs it can verify against an issuer's published keys; an HS256 token is still a JWT",
    ),
    (
        "trufflehog",
        "jwt",
        "HS384/valid/no-expiration",
        "trufflehog reports only JWTs it can verify against an issuer's published keys; an HS384 token is still a JWT",
    ),
    (
        "trufflehog",
        "openaiadmin",
        "regular OpenAI key should not match",
        "sub-type: a user key is an OpenAI key, just not an admin key",
    ),
    (
        "trufflehog",
        "openaiadmin",
        "project key should not match",
        "sub-type: a project key is an OpenAI key, just not an admin key",
    ),
];

fn trufflehog_class(detector: &str) -> Option<DataClass> {
    Some(match detector {
        "aws__access_keys" | "aws__session_keys" => DataClass::AwsSecretAccessKey,
        "gcp" => DataClass::GcpServiceAccount,
        "github__v2" => DataClass::GithubToken,
        "gitlab__v1" | "gitlab__v3" => DataClass::GitlabToken,
        "slack" => DataClass::SlackToken,
        "stripe" => DataClass::StripeKey,
        "twilio" | "twilioapikey" => DataClass::TwilioKey,
        "sendgrid" => DataClass::SendgridKey,
        "openai" | "openaiadmin" => DataClass::OpenaiKey,
        "privatekey" => DataClass::PrivateKey,
        "jwt" => DataClass::Jwt,
        "generic" => DataClass::GenericSecret,
        "azure_storage" => DataClass::AzureStorageKey,
        _ => return None,
    })
}

fn gitleaks_class(rule: &str) -> Option<DataClass> {
    Some(match rule {
        "aws-access-token" => DataClass::AwsAccessKeyId,
        "gcp-api-key" => DataClass::GcpApiKey,
        "azure-ad-client-secret" => DataClass::AzureClientSecret,
        "generic-api-key" => DataClass::GenericSecret,
        "jwt" | "jwt-base64" => DataClass::Jwt,
        "private-key" => DataClass::PrivateKey,
        "slack-webhook-url" => DataClass::SlackWebhook,
        "stripe-access-token" => DataClass::StripeKey,
        r if r.starts_with("github-") => DataClass::GithubToken,
        r if r.starts_with("gitlab-") => DataClass::GitlabToken,
        r if r.starts_with("slack-") => DataClass::SlackToken,
        _ => return None,
    })
}

fn presidio_class(file: &str, entity: Option<&str>) -> Option<DataClass> {
    let by_file = match file {
        "test_phone_recognizer.py"
        | "test_tr_phone_number_recognizer.py"
        | "test_ph_mobile_number_recognizer.py" => Some(DataClass::PhoneNumber),
        "test_in_aadhaar_recognizer.py" => Some(DataClass::InAadhaar),
        "test_es_nie_recognizer.py" => Some(DataClass::EsNif),
        _ => None,
    };
    if by_file.is_some() {
        return by_file;
    }
    match entity? {
        "EMAIL_ADDRESS" => Some(DataClass::Email),
        "CREDIT_CARD" => Some(DataClass::CreditCard),
        "US_SSN" => Some(DataClass::UsSsn),
        "IBAN_CODE" => Some(DataClass::Iban),
        "IP_ADDRESS" => Some(DataClass::IpAddress),
        "MAC_ADDRESS" => Some(DataClass::MacAddress),
        "UK_NINO" => Some(DataClass::UkNino),
        "UK_NHS" => Some(DataClass::UkNhs),
        "CA_SIN" => Some(DataClass::CaSin),
        "ES_NIF" => Some(DataClass::EsNif),
        "PL_PESEL" => Some(DataClass::PlPesel),
        _ => None,
    }
}

/// Character span of a byte-span hit.
fn char_span(text: &str, h: &Hit) -> (usize, usize) {
    let start = text[..h.start].chars().count();
    (start, start + text[h.start..h.end].chars().count())
}

#[derive(Deserialize)]
struct PresidioCase {
    text: String,
    file: String,
    #[serde(default)]
    entity: Option<Vec<String>>,
    #[serde(default)]
    expected_len: Option<usize>,
    #[serde(default)]
    expected_positions: Option<Vec<Vec<usize>>>,
    #[serde(default)]
    expected_res: Option<Vec<Vec<usize>>>,
    #[serde(default)]
    expected_position: Option<Vec<usize>>,
}

#[derive(Deserialize)]
struct TrufflehogCase {
    name: String,
    input: String,
    want: Vec<String>,
    detector: String,
    label: String,
}

#[derive(Deserialize)]
struct GitleaksCase {
    rule_id: String,
    kind: String,
    text: String,
}

fn lines<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}:{}: not a case", path.display(), i + 1))
        })
        .collect()
}

/// Scores every source in `dir`.
pub fn evaluate(dir: &Path) -> Result<Report> {
    let mut r = Report::default();
    presidio(dir, &mut r)?;
    cards(dir, &mut r)?;
    trufflehog(dir, &mut r)?;
    gitleaks(dir, &mut r)?;
    Ok(r)
}

fn presidio(dir: &Path, r: &mut Report) -> Result<()> {
    for c in lines::<PresidioCase>(&dir.join("presidio_cases.jsonl"))? {
        let entity = c
            .entity
            .as_ref()
            .and_then(|e| e.first())
            .map(String::as_str);
        let Some(class) = presidio_class(&c.file, entity) else {
            continue;
        };
        let hits: Vec<(usize, usize)> = classify(&c.text, None)
            .iter()
            .filter(|h| h.class == class)
            .map(|h| char_span(&c.text, h))
            .collect();
        let expected: Option<Vec<(usize, usize)>> = c
            .expected_positions
            .as_ref()
            .or(c.expected_res.as_ref())
            .map(|v| {
                v.iter()
                    .filter(|p| p.len() == 2)
                    .map(|p| (p[0], p[1]))
                    .collect()
            })
            .or_else(|| {
                c.expected_position
                    .as_ref()
                    .filter(|p| p.len() == 2)
                    .map(|p| vec![(p[0], p[1])])
            });
        // A span that differs only by surrounding whitespace is the same value.
        let chars: Vec<char> = c.text.chars().collect();
        let expected = expected.map(|v| {
            v.into_iter()
                .map(|(mut a, mut b)| {
                    while a < b && chars.get(a).is_some_and(|c| c.is_whitespace()) {
                        a += 1;
                    }
                    while b > a && chars.get(b - 1).is_some_and(|c| c.is_whitespace()) {
                        b -= 1;
                    }
                    (a, b)
                })
                .collect::<Vec<_>>()
        });
        let want_len = c.expected_len.unwrap_or(0);
        let s = r.scores.entry((class, "presidio")).or_default();
        let (tp, fp, fn_) = match expected {
            Some(ref exp) if exp.len() == want_len && want_len > 0 => {
                let tp = exp.iter().filter(|e| hits.contains(e)).count();
                (
                    tp,
                    hits.iter().filter(|h| !exp.contains(h)).count(),
                    exp.len() - tp,
                )
            }
            _ => {
                let tp = hits.len().min(want_len);
                (tp, hits.len() - tp, want_len - tp)
            }
        };
        s.tp += tp;
        s.fp += fp;
        s.fn_ += fn_;
        if fp + fn_ > 0 {
            r.errors.push(format!(
                "presidio {class}: {:?} want {want_len} {:?}, got {hits:?}",
                c.text, expected
            ));
        }
    }
    Ok(())
}

fn cards(dir: &Path, r: &mut Report) -> Result<()> {
    let text = std::fs::read_to_string(dir.join("test_cards.tsv"))?;
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (Some(number), Some(luhn)) = (cols.first(), cols.get(3)) else {
            continue;
        };
        let valid = *luhn == "luhn_valid";
        let whole = classify(number, None)
            .iter()
            .any(|h| h.class == DataClass::CreditCard && h.start == 0 && h.end == number.len());
        let s = r
            .scores
            .entry((DataClass::CreditCard, "test_cards"))
            .or_default();
        match (valid, whole) {
            (true, true) => s.tp += 1,
            (true, false) => {
                s.fn_ += 1;
                r.errors.push(format!(
                    "test card {number} ({}) missed",
                    cols.get(2).unwrap_or(&"")
                ));
            }
            (false, true) => {
                s.fp += 1;
                r.errors
                    .push(format!("Luhn-invalid {number} reported as a card"));
            }
            (false, false) => {}
        }
    }
    Ok(())
}

fn excluded(source: &str, detector: &str, name: &str) -> bool {
    EXCLUDED
        .iter()
        .any(|(s, d, n, _)| *s == source && *d == detector && name.starts_with(n))
}

fn trufflehog(dir: &Path, r: &mut Report) -> Result<()> {
    for c in lines::<TrufflehogCase>(&dir.join("secret_cases_trufflehog.jsonl"))? {
        let hits = classify(&c.input, None);
        let positive = c.label == "secret";
        let Some(class) = trufflehog_class(&c.detector) else {
            let any = hits
                .iter()
                .any(|h| h.class.kind() == tapline_detect::classify::ClassKind::Secret);
            let cov = &mut r.unmapped_secret_coverage;
            if positive {
                cov.1 += 1;
                cov.0 += usize::from(any);
            } else {
                cov.3 += 1;
                cov.2 += usize::from(any);
            }
            continue;
        };
        let s = r.scores.entry((class, "trufflehog")).or_default();
        if excluded("trufflehog", &c.detector, &c.name) {
            s.excluded += 1;
            continue;
        }
        let of_class: Vec<&str> = hits
            .iter()
            .filter(|h| h.class == class)
            .map(|h| &c.input[h.start..h.end])
            .collect();
        if positive {
            let found = of_class.iter().any(|h| {
                c.want
                    .iter()
                    .any(|w| w.contains(h) || h.contains(w.as_str()))
            });
            if found {
                s.tp += 1;
            } else {
                s.fn_ += 1;
                r.errors.push(format!(
                    "trufflehog {} {:?}: missed (got {of_class:?})",
                    c.detector, c.name
                ));
            }
        } else if !of_class.is_empty() {
            s.fp += 1;
            r.errors.push(format!(
                "trufflehog {} {:?}: reported {of_class:?}",
                c.detector, c.name
            ));
        }
    }
    Ok(())
}

fn gitleaks(dir: &Path, r: &mut Report) -> Result<()> {
    for c in lines::<GitleaksCase>(&dir.join("secret_cases_gitleaks.jsonl"))? {
        let Some(class) = gitleaks_class(&c.rule_id) else {
            continue;
        };
        let hits: Vec<&str> = classify(&c.text, None)
            .iter()
            .filter(|h| h.class == class)
            .map(|h| &c.text[h.start..h.end])
            .collect();
        let s = r.scores.entry((class, "gitleaks")).or_default();
        match (c.kind == "true_positive", hits.is_empty()) {
            (true, false) => s.tp += 1,
            (true, true) => {
                s.fn_ += 1;
                r.errors.push(format!(
                    "gitleaks {} missed: {:?}",
                    c.rule_id,
                    trunc(&c.text)
                ));
            }
            (false, false) => {
                s.fp += 1;
                r.errors.push(format!(
                    "gitleaks {} reported {hits:?} in {:?}",
                    c.rule_id,
                    trunc(&c.text)
                ));
            }
            (false, true) => {}
        }
    }
    Ok(())
}

fn trunc(s: &str) -> String {
    s.chars().take(120).collect()
}

/// The report as a Markdown table (what `tests/CONFORMANCE.md` records).
pub fn table(r: &Report) -> String {
    let mut out = String::from(
        "| class | sources | TP | FP | FN | excluded | precision | recall |\n|---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut sources: BTreeMap<DataClass, Vec<&str>> = BTreeMap::new();
    for &(class, src) in r.scores.keys() {
        sources.entry(class).or_default().push(src);
    }
    for (class, s) in r.per_class() {
        out.push_str(&format!(
            "| {class} | {} | {} | {} | {} | {} | {:.3} | {:.3} |\n",
            sources
                .get(&class)
                .map(|v| v.join(", "))
                .unwrap_or_default(),
            s.tp,
            s.fp,
            s.fn_,
            s.excluded,
            s.precision(),
            s.recall()
        ));
    }
    let (a, b, c, d) = r.unmapped_secret_coverage;
    out.push_str(&format!(
        "\nOther trufflehog detectors (vendor formats we do not classify as their own class): \
         some secret class fired on {a} of {b} secret cases and on {c} of {d} no-secret cases.\n"
    ));
    out
}
