//! Attack payload detectors: which attack families a request value carries, by which rule and
//! why. Pure functions over one value (and the name of its field), usable at the sensor.
//!
//! Every value is first normalised ([`normalize`]): nested percent-encoding, `%u`, HTML
//! references, JS escapes, overlong UTF-8 and look-alike characters are undone and the text is
//! lowercased, so one rule sees `../`, `%2e%2e%2f`, `%c0%ae%c0%ae%c0%af` and `．．／` alike.

pub mod normalize;
pub mod request;
mod rules;
mod sqli;
mod xss;

pub use normalize::normalize;
pub use request::{AttackFound, RequestScanner};

use serde::{Deserialize, Serialize};
use std::fmt;

/// Attack families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// SQL injection.
    Sqli,
    /// Cross-site scripting.
    Xss,
    /// Path traversal and local file inclusion.
    PathTraversal,
    /// OS command (and server-side code) injection.
    Cmdi,
    /// Server-side request forgery: URLs to loopback, private, link-local or metadata hosts.
    Ssrf,
    /// XML external entities.
    Xxe,
    /// NoSQL operator injection.
    Nosqli,
    /// Server-side template injection.
    Ssti,
    /// LDAP filter injection.
    Ldapi,
    /// CR/LF (header) injection.
    Crlf,
    /// JNDI lookups (Log4Shell).
    Jndi,
    /// Open redirect.
    OpenRedirect,
    /// Request smuggling (from decode anomalies).
    RequestSmuggling,
}

impl Family {
    /// Every family.
    pub const ALL: &'static [Family] = &[
        Family::Sqli,
        Family::Xss,
        Family::PathTraversal,
        Family::Cmdi,
        Family::Ssrf,
        Family::Xxe,
        Family::Nosqli,
        Family::Ssti,
        Family::Ldapi,
        Family::Crlf,
        Family::Jndi,
        Family::OpenRedirect,
        Family::RequestSmuggling,
    ];

    /// Stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Family::Sqli => "sqli",
            Family::Xss => "xss",
            Family::PathTraversal => "path_traversal",
            Family::Cmdi => "cmdi",
            Family::Ssrf => "ssrf",
            Family::Xxe => "xxe",
            Family::Nosqli => "nosqli",
            Family::Ssti => "ssti",
            Family::Ldapi => "ldapi",
            Family::Crlf => "crlf",
            Family::Jndi => "jndi",
            Family::OpenRedirect => "open_redirect",
            Family::RequestSmuggling => "request_smuggling",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One detection in one value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttackHit {
    /// The family.
    pub family: Family,
    /// The rule that fired (stable id, e.g. `traversal.dotdot`).
    pub rule: &'static str,
    /// Why, for people: what was seen in the decoded value.
    pub why: String,
}

/// Detects attacks in one value. `key` is the field's name (a redirect parameter makes an
/// absolute URL an open redirect). Returns at most one hit per family.
pub fn detect(value: &str, key: Option<&str>) -> Vec<AttackHit> {
    let mut out = Vec::new();
    if value.len() < 2 {
        return out;
    }
    let n = normalize(value);
    rules::run(&n, key, &mut out);
    // A value that is only an escaped `<` (`&#060`, `\x3c`, `%3C`): a filter probe.
    if out.is_empty() && n.trim() == "<" && value.trim() != "<" {
        out.push(AttackHit {
            family: Family::Xss,
            rule: "xss.encoding_probe",
            why: format!("the value is an encoded '<' ({})", value.trim()),
        });
    }
    out
}
