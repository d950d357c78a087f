//! The vocabulary of findings: what was found ([`FindingKind`]) and how bad it is
//! ([`Severity`]). Stored and shown as stable snake_case names (`sqli`, `bola`, `high`), so
//! case files written before these types existed read unchanged.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How bad a finding is, least to most severe (so `Ord` sorts by severity).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// Every severity, most severe first.
    pub const MOST_SEVERE_FIRST: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Reads a stored name.
    pub fn from_name(name: &str) -> Option<Severity> {
        Severity::MOST_SEVERE_FIRST
            .into_iter()
            .find(|s| s.name() == name)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// Attack families the payload detectors know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttackFamily {
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

impl AttackFamily {
    /// Every family.
    pub const ALL: &'static [AttackFamily] = &[
        AttackFamily::Sqli,
        AttackFamily::Xss,
        AttackFamily::PathTraversal,
        AttackFamily::Cmdi,
        AttackFamily::Ssrf,
        AttackFamily::Xxe,
        AttackFamily::Nosqli,
        AttackFamily::Ssti,
        AttackFamily::Ldapi,
        AttackFamily::Crlf,
        AttackFamily::Jndi,
        AttackFamily::OpenRedirect,
        AttackFamily::RequestSmuggling,
    ];

    /// Stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            AttackFamily::Sqli => "sqli",
            AttackFamily::Xss => "xss",
            AttackFamily::PathTraversal => "path_traversal",
            AttackFamily::Cmdi => "cmdi",
            AttackFamily::Ssrf => "ssrf",
            AttackFamily::Xxe => "xxe",
            AttackFamily::Nosqli => "nosqli",
            AttackFamily::Ssti => "ssti",
            AttackFamily::Ldapi => "ldapi",
            AttackFamily::Crlf => "crlf",
            AttackFamily::Jndi => "jndi",
            AttackFamily::OpenRedirect => "open_redirect",
            AttackFamily::RequestSmuggling => "request_smuggling",
        }
    }

    /// Reads a stable name.
    pub fn from_name(name: &str) -> Option<AttackFamily> {
        AttackFamily::ALL.iter().copied().find(|f| f.name() == name)
    }
}

impl fmt::Display for AttackFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// What a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum FindingKind {
    /// An endpoint first seen on a host the case already knew.
    NewEndpoint,
    /// A response field an endpoint never returned before.
    NewResponseField,
    /// A data class an endpoint never carried before.
    SensitiveDataExposed,
    /// Secrets in responses, or personal data served to clients that sent no credentials.
    ExcessiveDataExposure,
    /// A payload attack.
    Attack(AttackFamily),
    /// Broken object-level authorisation: one principal reading many others' objects.
    Bola,
    /// Requests without credentials succeeding where others need them.
    BrokenAuthentication,
    /// Many failed logins for few accounts.
    BruteForce,
    /// Failed logins across many accounts.
    CredentialStuffing,
    /// One actor reading far more than the rest.
    Scraping,
    /// Walking identifiers, mostly misses.
    Enumeration,
    /// A window of server errors against a quiet baseline.
    ErrorSpike,
}

impl FindingKind {
    /// The stored name (`new_endpoint`, `sqli`, `bola`…).
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::NewEndpoint => "new_endpoint",
            FindingKind::NewResponseField => "new_response_field",
            FindingKind::SensitiveDataExposed => "sensitive_data_exposed",
            FindingKind::ExcessiveDataExposure => "excessive_data_exposure",
            FindingKind::Attack(f) => f.name(),
            FindingKind::Bola => "bola",
            FindingKind::BrokenAuthentication => "broken_authentication",
            FindingKind::BruteForce => "brute_force",
            FindingKind::CredentialStuffing => "credential_stuffing",
            FindingKind::Scraping => "scraping",
            FindingKind::Enumeration => "enumeration",
            FindingKind::ErrorSpike => "error_spike",
        }
    }

    /// Reads a stored name.
    pub fn from_name(name: &str) -> Option<FindingKind> {
        const OTHERS: [FindingKind; 11] = [
            FindingKind::NewEndpoint,
            FindingKind::NewResponseField,
            FindingKind::SensitiveDataExposed,
            FindingKind::ExcessiveDataExposure,
            FindingKind::Bola,
            FindingKind::BrokenAuthentication,
            FindingKind::BruteForce,
            FindingKind::CredentialStuffing,
            FindingKind::Scraping,
            FindingKind::Enumeration,
            FindingKind::ErrorSpike,
        ];
        AttackFamily::from_name(name)
            .map(FindingKind::Attack)
            .or_else(|| OTHERS.into_iter().find(|k| k.name() == name))
    }

    /// The attack family, for payload findings.
    pub fn attack(self) -> Option<AttackFamily> {
        match self {
            FindingKind::Attack(f) => Some(f),
            _ => None,
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl From<FindingKind> for &'static str {
    fn from(k: FindingKind) -> &'static str {
        k.name()
    }
}

impl TryFrom<String> for FindingKind {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        FindingKind::from_name(&name).ok_or_else(|| format!("unknown finding kind {name:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_as_stored() {
        for f in AttackFamily::ALL {
            let k = FindingKind::Attack(*f);
            assert_eq!(FindingKind::from_name(k.name()), Some(k));
        }
        assert_eq!(FindingKind::from_name("bola"), Some(FindingKind::Bola));
        assert_eq!(FindingKind::from_name("nope"), None);
        for s in Severity::MOST_SEVERE_FIRST {
            assert_eq!(Severity::from_name(s.name()), Some(s));
        }
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Info);
        assert_eq!(
            serde_json::to_string(&FindingKind::Attack(AttackFamily::PathTraversal)).unwrap(),
            "\"path_traversal\""
        );
        assert_eq!(serde_json::to_string(&Severity::High).unwrap(), "\"high\"");
    }
}
