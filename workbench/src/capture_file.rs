//! Reading capture files from disk into the decoder, with errors that name the file.

use anyhow::{Context, Result};
use std::path::Path;
use tapline_core::{DecodedCapture, EngineConfig};

/// Reads and decodes a whole pcap/pcapng file. A damaged tail is reported as a warning on
/// stderr after everything before it was decoded.
pub fn decode_file(path: &Path, cfg: EngineConfig) -> Result<DecodedCapture> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let decoded = tapline_core::decode_capture(&bytes, cfg)
        .with_context(|| format!("{} is not a capture Tapline can read", path.display()))?;
    if let Some(err) = &decoded.error {
        eprintln!(
            "warning: {}: {err}; packets before it were decoded",
            path.display()
        );
    }
    Ok(decoded)
}
