//! The sensor's configuration file (TOML). Today it holds the edge policy; the uplink and
//! capture settings join it with the sensor issue.
//!
//! ```toml
//! [redact]
//! hash_key = "…64 hex digits…"          # needed by `hash` rules
//!
//! [[redact.rule]]
//! classes = ["credit_card", "us_ssn"]
//! action = "mask"                        # mask | hash | drop
//!
//! [[redact.rule]]
//! classes = ["password", "basic_auth"]
//! locations = ["request.*"]              # `*` matches any run of characters
//! action = "drop"
//! ```

use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::Path;
use tapline_core::sensitive::Policy;

/// Everything `--config` can say.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorConfig {
    /// Sensitive-data redaction applied before records leave the sensor.
    #[serde(default)]
    pub redact: Policy,
}

impl SensorConfig {
    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<SensorConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the sensor configuration {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("{} is not a valid sensor configuration", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_policy_and_names_mistakes() {
        let c: SensorConfig = toml::from_str(
            r#"
            [redact]
            hash_key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
            [[redact.rule]]
            classes = ["credit_card"]
            action = "mask"
            [[redact.rule]]
            classes = ["email"]
            locations = ["response.*"]
            action = "hash"
            "#,
        )
        .expect("valid");
        assert_eq!(c.redact.rules.len(), 2);
        let err = toml::from_str::<SensorConfig>(
            "[redact]\n[[redact.rule]]\nclasses=[\"email\"]\naction=\"blur\"\n",
        )
        .expect_err("unknown action")
        .to_string();
        assert!(err.contains("blur"), "{err}");
    }
}
