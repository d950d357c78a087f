//! The test file format, `tapline-test/1`, as it is written in YAML.
//!
//! These types are what a file says; [`crate::load`] checks them (every name referred to
//! exists, every pattern compiles, every assertion says one thing) and turns them into the
//! runner's [`crate::plan`] types, so a mistake is reported with its file and step before
//! any request is sent. The JSON Schema in `test-format.schema.json` describes the same
//! shapes; a test keeps the two in step.
#![allow(missing_docs)] // the fields are the format's keys, documented in FORMAT.md

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The format's version string, first key of every file.
pub const FORMAT: &str = "tapline-test/1";
/// The identities file's version string.
pub const IDENTITIES_FORMAT: &str = "tapline-identities/1";

/// One security test: a few requests and what the answers must (not) show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// Always [`FORMAT`].
    pub version: String,
    /// Stable identifier: results are compared across runs by it.
    pub id: String,
    pub meta: Meta,
    /// Variables for `{{name}}`; values may themselves refer to `{{env.NAME}}`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub env: IndexMap<String, String>,
    /// Identities the steps use (`as:`), defined in the identities file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<String>,
    /// Named payload lists, for steps with `for_each`. The built-in lists (`sqli`, `xss`, …)
    /// need no definition.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub payloads: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub options: Options,
    pub steps: Vec<Step>,
}

/// What the test is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub name: String,
    pub severity: Severity,
    /// OWASP API Top 10 2023 ids (`API1:2023`), CWE ids (`CWE-639`), free words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The traffic the test was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub built_from: Option<Provenance>,
}

/// Where a generated test came from in the case.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transactions: Vec<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<i64>,
}

/// How bad it is when the test fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Reads a severity written in any case (`HIGH`, `High`, `high`).
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "info" | "informational" | "none" => Severity::Info,
            "low" => Severity::Low,
            "medium" | "moderate" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per-test limits (the run's own limits apply as well; the tighter wins).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Stop at the first failed step (later steps usually depend on earlier ones).
    #[serde(default = "yes")]
    pub stop_on_failure: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Requests a second, at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
}

fn yes() -> bool {
    true
}

impl Default for Options {
    fn default() -> Self {
        Options {
            stop_on_failure: true,
            max_requests: None,
            timeout_ms: None,
            rate: None,
        }
    }
}

/// One request, what to take from its answer, and what the answer must show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `check` (default): a failed assertion is a finding. `setup`: the step prepares the test
    /// (a baseline, an object to read); a failed assertion makes the test inconclusive.
    #[serde(default, skip_serializing_if = "Role::is_check")]
    pub role: Role,
    /// The identity the request is sent as (`anonymous`: no credentials).
    #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// `{variable: list}`: the step runs once for each value of the payload list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<BTreeMap<String, String>>,
    /// The step runs this many times (a burst, for rate limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u32>,
    /// With several attempts (payloads, repeats): must every one pass (default), or one?
    #[serde(default, skip_serializing_if = "PassWhen::is_every")]
    pub pass_when: PassWhen,
    pub request: Request,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extract: Vec<Extract>,
    #[serde(default, rename = "assert", skip_serializing_if = "Vec::is_empty")]
    pub asserts: Vec<Assertion>,
}

/// What a step's failure means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    Check,
    Setup,
}

impl Role {
    fn is_check(&self) -> bool {
        *self == Role::Check
    }
}

/// How the attempts of a step with several combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassWhen {
    #[default]
    EveryAttempt,
    AnyAttempt,
}

impl PassWhen {
    fn is_every(&self) -> bool {
        *self == PassWhen::EveryAttempt
    }
}

/// An HTTP request; every string may hold `{{variables}}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub method: String,
    /// Absolute, or starting with `/` (then relative to the run's target).
    pub url: String,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub query: IndexMap<String, String>,
    /// `application/x-www-form-urlencoded` fields.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub form: IndexMap<String, String>,
    /// A raw body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// A JSON body (strings inside may hold `{{variables}}`), sent with its keys in the
    /// order written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<Json>,
}

/// A JSON value that keeps its object keys in order (a replayed request should look like the
/// captured one; the crate-wide `serde_json::Value` sorts them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Array(Vec<Json>),
    Object(IndexMap<String, Json>),
}

impl Json {
    /// The same value with every string (keys too) passed through `f`.
    pub fn try_map_strings<E>(&self, f: &dyn Fn(&str) -> Result<String, E>) -> Result<Json, E> {
        Ok(match self {
            Json::String(s) => Json::String(f(s)?),
            Json::Array(a) => Json::Array(
                a.iter()
                    .map(|x| x.try_map_strings(f))
                    .collect::<Result<_, _>>()?,
            ),
            Json::Object(o) => Json::Object(
                o.iter()
                    .map(|(k, v)| Ok((f(k)?, v.try_map_strings(f)?)))
                    .collect::<Result<_, E>>()?,
            ),
            other => other.clone(),
        })
    }
}

impl From<&serde_json::Value> for Json {
    fn from(v: &serde_json::Value) -> Json {
        match v {
            serde_json::Value::Null => Json::Null,
            serde_json::Value::Bool(b) => Json::Bool(*b),
            serde_json::Value::Number(n) => n
                .as_i64()
                .map_or_else(|| Json::Float(n.as_f64().unwrap_or(0.0)), Json::Int),
            serde_json::Value::String(s) => Json::String(s.clone()),
            serde_json::Value::Array(a) => Json::Array(a.iter().map(Json::from).collect()),
            serde_json::Value::Object(o) => {
                Json::Object(o.iter().map(|(k, v)| (k.clone(), Json::from(v))).collect())
            }
        }
    }
}

/// A value taken from a response into a variable: exactly one source.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Extract {
    pub name: String,
    /// `true`: the status code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<bool>,
    /// A response header's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// A JSON path into the body (`$.data[0].id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<String>,
    /// A regular expression over the body; `group` picks the capture (default 1, or 0 without).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<usize>,
    /// `true`: the whole body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<bool>,
}

/// One declarative check of a response (a map with one key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Assertion {
    /// `200`, `4xx`, `[200, 201]`, `{not: 2xx}`.
    Status(StatusMatch),
    Header(HeaderCheck),
    Body(BodyCheck),
    Json(JsonCheck),
    DurationMs(Bound),
    /// Similarity of the body to an earlier step's (baseline) response, 0 to 1.
    Similar(Similarity),
    /// No sign in the response that a payload of this family worked (database errors,
    /// command output, file content, an evaluated template).
    NoSignsOf(crate::payloads::Family),
}

/// Which statuses pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StatusMatch {
    Code(u16),
    /// `2xx`, `4xx`, … or a code written as a string.
    Class(String),
    OneOf(Vec<StatusMatch>),
    Not {
        not: Box<StatusMatch>,
    },
}

/// A response header's check: exactly one of the conditions.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderCheck {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_equals: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_matches: Option<String>,
}

/// The body's check: exactly one of the conditions.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_matches: Option<String>,
}

/// A JSON path's check: exactly one of the conditions.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonCheck {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_equals: Option<serde_json::Value>,
}

/// Limits on a number: either or both; with `than`, on how much longer the answer took than
/// the named earlier step's (a baseline: timing checks that hold on slow APIs too).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bound {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub than: Option<String>,
}

/// Similarity to the response of the step named `to`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Similarity {
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
}

/// The identities file: who the tests act as, and how each gets its credentials at run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitiesFile {
    /// Always [`IDENTITIES_FORMAT`].
    pub version: String,
    pub identities: IndexMap<String, Identity>,
}

/// One identity: headers sent with its requests, after an optional login.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Run once at the start of each run (never a captured token: those expire).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<Login>,
    /// Sent with every request made as this identity; may use the login's variables and
    /// `{{env.NAME}}` (secrets stay in the environment or the env file).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, String>,
}

/// A login request and what to keep from its answer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub request: Request,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extract: Vec<Extract>,
}
