//! Reading capture files from disk into the decoder, with errors that name the file.
//!
//! Files are memory-mapped: the decoder borrows packets straight from the page cache, so a
//! 50 GB capture costs address space, not heap, and no byte is copied before reassembly.

use anyhow::{Context, Result};
use std::fs::File;
use std::path::Path;
use tapline_decode::{DecodedCapture, EngineConfig};

/// A capture file's bytes: mapped read-only, or (for files that do not report their size, as
/// `/proc` files) read into memory up to [`UNSIZED_MAX`].
pub struct MappedFile {
    bytes: Backing,
}

enum Backing {
    Empty,
    Mapped(memmap2::Mmap),
    Read(Vec<u8>),
}

/// The most read from a file that reports no size.
pub const UNSIZED_MAX: u64 = 64 << 20;

impl MappedFile {
    /// Maps `path` read-only. An empty file maps to an empty slice; what is not a regular file
    /// (a FIFO, a device, a socket) is refused, because it cannot be read twice.
    pub fn open(path: &Path) -> Result<Self> {
        // Looked at before opening: opening a FIFO for reading waits for a writer.
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot open {}", path.display()))?;
        if !meta.is_file() {
            anyhow::bail!(
                "{} is not a regular file (a pipe, FIFO, device or socket): save the capture to a file first, e.g. `cat {} > capture.pcap`",
                path.display(),
                path.display()
            );
        }
        let mut file =
            File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        if meta.len() == 0 {
            return Self::read_unsized(&mut file, path);
        }
        #[allow(unsafe_code)]
        // SAFETY: the map is read-only and private to this process. If another process
        // truncates the file while we read it, accesses past the new end raise SIGBUS — the
        // same contract ripgrep accepts; captures are not edited in place while analysed.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .with_context(|| format!("cannot map {} into memory", path.display()))?;
        // Readers walk the file front to back: let the kernel read ahead and drop behind.
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(MappedFile {
            bytes: Backing::Mapped(map),
        })
    }

    /// A file that says it is empty may still have bytes (`/proc`, some network filesystems).
    fn read_unsized(file: &mut File, path: &Path) -> Result<Self> {
        use std::io::Read as _;
        let mut bytes = Vec::new();
        file.take(UNSIZED_MAX + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if bytes.len() as u64 > UNSIZED_MAX {
            anyhow::bail!(
                "{} reports no size and holds more than {} MB: copy it to a regular file first",
                path.display(),
                UNSIZED_MAX >> 20
            );
        }
        Ok(MappedFile {
            bytes: if bytes.is_empty() {
                Backing::Empty
            } else {
                Backing::Read(bytes)
            },
        })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.bytes {
            Backing::Empty => &[],
            Backing::Mapped(m) => m,
            Backing::Read(v) => v,
        }
    }
}

/// Decodes a pcap/pcapng file, handing transactions to `each` as they complete (memory stays
/// flat). A damaged tail ends the decode; it is returned in the result's `error`.
pub fn stream_file(
    path: &Path,
    cfg: EngineConfig,
    each: impl FnMut(&mut Vec<tapline_record::Transaction>) -> Result<()>,
) -> Result<tapline_decode::StreamedCapture> {
    let file = MappedFile::open(path)?;
    tapline_decode::capture::CaptureReader::new(file.bytes())
        .with_context(|| format!("{} is not a capture Tapline can read", path.display()))?;
    tapline_decode::stream_capture(file.bytes(), cfg, each)
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
