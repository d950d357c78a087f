//! Tests as the runner takes them: checked, with every choice a type.
//!
//! Strings that may hold `{{variables}}` (URLs, headers, expected values, patterns) stay
//! strings and are rendered per attempt; everything else (JSON paths, status sets, which
//! baseline a similarity refers to) is resolved when the file is loaded.
#![allow(missing_docs)] // the fields mirror `spec`'s keys, documented in FORMAT.md

use crate::jsonpath::JsonPath;
use crate::payloads::Family;
use crate::spec::{Meta, Options, PassWhen, Request, Role};
use indexmap::IndexMap;
use std::path::PathBuf;

/// Which format a test was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Tapline,
    Metlo,
}

/// One loaded test.
#[derive(Debug, Clone)]
pub struct Test {
    pub file: PathBuf,
    pub dialect: Dialect,
    pub id: String,
    pub meta: Meta,
    pub env: IndexMap<String, String>,
    pub identities: Vec<String>,
    pub options: Options,
    pub steps: Vec<Step>,
}

/// One loaded step.
#[derive(Debug, Clone)]
pub struct Step {
    /// Given, or "step N".
    pub name: String,
    pub role: Role,
    pub identity: Option<String>,
    pub attempts: Attempts,
    pub pass_when: PassWhen,
    pub request: Request,
    pub extract: Vec<Extraction>,
    pub checks: Vec<Check>,
}

/// How many times a step's request is sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempts {
    Once,
    Repeat(u32),
    /// Once per value, bound to `var`.
    Payloads {
        var: String,
        values: Vec<String>,
    },
}

impl Attempts {
    pub fn count(&self) -> usize {
        match self {
            Attempts::Once => 1,
            Attempts::Repeat(n) => *n as usize,
            Attempts::Payloads { values, .. } => values.len(),
        }
    }
}

/// A variable taken from a response.
#[derive(Debug, Clone)]
pub struct Extraction {
    pub name: String,
    pub source: Source,
}

/// Where in the response.
#[derive(Debug, Clone)]
pub enum Source {
    Status,
    Header(String),
    Json(JsonPath),
    Regex { pattern: String, group: usize },
    Body,
}

/// One check of a response.
#[derive(Debug, Clone)]
pub enum Check {
    Status(StatusSet),
    Header {
        name: String,
        cond: TextCond,
    },
    Body(TextCond),
    Json {
        path: JsonPath,
        cond: JsonCond,
    },
    /// Limits on the answer's time, less step `than`'s when given.
    DurationMs {
        below: Option<f64>,
        above: Option<f64>,
        than: Option<(usize, String)>,
    },
    /// Against the response of step `step` (earlier in the same test).
    Similar {
        step: usize,
        name: String,
        at_least: Option<f64>,
        below: Option<f64>,
    },
    NoSignsOf(Family),
}

/// A condition on a text (header value or body); strings are templates.
#[derive(Debug, Clone, PartialEq)]
pub enum TextCond {
    Present,
    Absent,
    Equals(String),
    NotEquals(String),
    Contains(String),
    NotContains(String),
    Matches(String),
    NotMatches(String),
}

/// A condition on what a JSON path selects.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonCond {
    Exists,
    Missing,
    /// Any selected value equals (strings inside are templates).
    Equals(serde_json::Value),
    /// No selected value equals.
    NotEquals(serde_json::Value),
}

/// Statuses that pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusSet {
    Code(u16),
    /// The hundreds digit: `4` for `4xx`.
    Class(u16),
    OneOf(Vec<StatusSet>),
    Not(Box<StatusSet>),
}

impl StatusSet {
    pub fn contains(&self, status: u16) -> bool {
        match self {
            StatusSet::Code(c) => *c == status,
            StatusSet::Class(c) => status / 100 == *c,
            StatusSet::OneOf(all) => all.iter().any(|s| s.contains(status)),
            StatusSet::Not(s) => !s.contains(status),
        }
    }
}

impl std::fmt::Display for StatusSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatusSet::Code(c) => write!(f, "{c}"),
            StatusSet::Class(c) => write!(f, "{c}xx"),
            StatusSet::OneOf(all) => {
                let parts: Vec<String> = all.iter().map(ToString::to_string).collect();
                write!(f, "one of {}", parts.join(", "))
            }
            StatusSet::Not(s) => write!(f, "not {s}"),
        }
    }
}
