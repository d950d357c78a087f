//! Helpers for Tapline's end-to-end tests: where the sample captures are and what they hold.

use serde::Deserialize;
use std::path::PathBuf;

/// The repository's `sample-captures/` folder.
pub fn sample_captures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("sample-captures")
}

/// One request the sample-capture client sent, and what the server answered.
#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
pub struct ExpectedExchange {
    /// Request method.
    pub method: String,
    /// Request target as sent.
    pub uri: String,
    /// Status the server answered.
    pub status: u16,
    /// What the exchange demonstrates (`normal`, `pii`, `sqli`, `xss`, `traversal`, `bola`,
    /// `brute_force`, ...).
    pub tag: String,
    /// The client's IP address.
    pub client: String,
}

/// The expectations file written by the recording client for `capture` (e.g. `shop-api`).
pub fn expected(capture: &str) -> Vec<ExpectedExchange> {
    let path = sample_captures().join(format!("{capture}.expected.jsonl"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}
