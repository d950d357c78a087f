//! The sensor's configuration file (TOML): its name and link to the workbench, the edge policy,
//! how records are batched, and the spool that holds batches until the workbench has them.
//! Capture settings are flags. The file holds the sensor's private key: keep it 0600.
//!
//! ```toml
//! name = "edge-1"                        # written by `tapline sensors add`
//!
//! [uplink]
//! hub = "workbench.lan:4433"              # the workbench hub (`--workbench` overrides)
//! window = 16                            # batches sent before an acknowledgement, at most
//! heartbeat_s = 5
//! linger_s = 30                          # at exit, keep delivering this long at most
//! [uplink.credentials]                   # written by `tapline sensors add`
//! cert_pem = "-----BEGIN CERTIFICATE-----…"   # the sensor's certificate
//! key_pem = "-----BEGIN PRIVATE KEY-----…"     # and key
//! hub_ca_pem = "-----BEGIN CERTIFICATE-----…" # the workbench CA it trusts …
//! hub_fingerprint = "9f86d0…"                  # … pinned by its SHA-256
//!
//! [headers]
//! deny = ["cookie", "set-cookie", "x-internal-*"]   # never leave the sensor; `allow` keeps only
//!
//! [bodies]
//! max_bytes = 65536                      # kept per body (full length still recorded)
//!
//! [batch]
//! records = 2000                         # a batch closes at this many records …
//! max_ms = 500                           # … or this long after its first record
//!
//! [spool]
//! dir = "/var/lib/tapline-sensor/spool"
//! max_mb = 1024                          # bounded; when full:
//! full = "drop_oldest"                   # drop_oldest | drop_newest (losses are counted)
//!
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
use tapline_detect::sensitive::Policy;

/// Everything `--config` can say.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorConfig {
    /// The sensor's enrolled name, stamped on its records (`--name` overrides).
    pub name: Option<String>,
    /// The link to the workbench hub.
    #[serde(default)]
    pub uplink: crate::uplink::UplinkConfig,
    /// Sensitive-data redaction applied before records leave the sensor.
    #[serde(default)]
    pub redact: Policy,
    /// Which headers leave the sensor (`allow`, `deny`: case-insensitive `*` globs).
    #[serde(default)]
    pub headers: tapline_detect::edge::HeaderPolicy,
    /// How much of each body leaves the sensor (`max_bytes`).
    #[serde(default)]
    pub bodies: tapline_detect::edge::BodyPolicy,
    /// How records are grouped into batches.
    #[serde(default)]
    pub batch: BatchConfig,
    /// Where batches wait for the workbench (`--spool` overrides `dir`).
    #[serde(default)]
    pub spool: SpoolConfig,
}

/// `[batch]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Records per batch at most.
    pub records: usize,
    /// Milliseconds a batch stays open after its first record at most.
    pub max_ms: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            records: 2000,
            max_ms: 500,
        }
    }
}

/// `[spool]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// The spool directory; none: no spool.
    pub dir: Option<std::path::PathBuf>,
    /// Size bound, MiB.
    pub max_mb: u64,
    /// What a full spool does.
    pub full: crate::spool::FullPolicy,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            dir: None,
            max_mb: 1024,
            full: crate::spool::FullPolicy::DropOldest,
        }
    }
}

impl SensorConfig {
    /// The header and body policy, as `tapline_detect::edge` applies it.
    pub fn edge(&self) -> tapline_detect::edge::EdgePolicy {
        tapline_detect::edge::EdgePolicy {
            headers: self.headers.clone(),
            bodies: self.bodies.clone(),
        }
    }

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

    #[test]
    fn batch_and_spool_settings_have_defaults_and_read_back() {
        let c: SensorConfig = toml::from_str("").expect("empty is valid");
        assert_eq!(
            (c.batch.records, c.batch.max_ms, c.spool.max_mb),
            (2000, 500, 1024)
        );
        let c: SensorConfig = toml::from_str(
            "[batch]\nrecords = 10\n[spool]\ndir = \"/tmp/s\"\nfull = \"drop_newest\"\n",
        )
        .expect("valid");
        assert_eq!(c.batch.records, 10);
        assert_eq!(c.spool.full, crate::spool::FullPolicy::DropNewest);
        assert!(toml::from_str::<SensorConfig>("[spool]\nfull = \"panic\"\n").is_err());
    }
}
