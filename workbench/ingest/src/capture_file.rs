//! Reading capture files from disk into the decoder, with errors that name the file.
//!
//! Files are memory-mapped: the decoder borrows packets straight from the page cache, so a
//! 50 GB capture costs address space, not heap, and no byte is copied before reassembly.

use anyhow::{Context, Result};
use std::fs::File;
use std::path::Path;
use tapline_decode::{DecodedCapture, EngineConfig};

/// A capture file's bytes, mapped read-only.
pub struct MappedFile {
    map: Option<memmap2::Mmap>,
}

impl MappedFile {
    /// Maps `path` read-only. An empty file maps to an empty slice.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let len = file
            .metadata()
            .with_context(|| format!("cannot stat {}", path.display()))?
            .len();
        if len == 0 {
            return Ok(MappedFile { map: None });
        }
        #[allow(unsafe_code)]
        // SAFETY: the map is read-only and private to this process. If another process
        // truncates the file while we read it, accesses past the new end raise SIGBUS — the
        // same contract ripgrep accepts; captures are not edited in place while analysed.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .with_context(|| format!("cannot map {} into memory", path.display()))?;
        // Readers walk the file front to back: let the kernel read ahead and drop behind.
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(MappedFile { map: Some(map) })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

/// Reads and decodes a whole pcap/pcapng file. A damaged tail is logged as a warning after
/// everything before it was decoded.
pub fn decode_file(path: &Path, cfg: EngineConfig) -> Result<DecodedCapture> {
    let file = MappedFile::open(path)?;
    let decoded = tapline_decode::decode_capture(file.bytes(), cfg)
        .with_context(|| format!("{} is not a capture Tapline can read", path.display()))?;
    if let Some(err) = &decoded.error {
        tracing::warn!(file = %path.display(), "{err}; packets before it were decoded");
    }
    Ok(decoded)
}
