//! Reading capture files from disk into the decoder, with errors that name the file.
//!
//! Files are memory-mapped: the decoder borrows packets straight from the page cache, so a
//! 50 GB capture costs address space, not heap, and no byte is copied before reassembly. A
//! file that shrinks while mapped reads as zeros past its new end ([`sigbus`]) and its reader
//! fails with [`MappedFile::check_intact`]'s error instead of the process dying.

mod sigbus;

use anyhow::{Context, Result};
use std::fs::File;
use std::path::Path;
use tapline_decode::{DecodedCapture, EngineConfig};

/// A capture file's bytes: mapped read-only, or (for files that do not report their size, as
/// `/proc` files) read into memory up to [`UNSIZED_MAX`].
pub struct MappedFile {
    /// Declared first: dropped (unwatched) before the map is unmapped.
    watch: Option<sigbus::Watch>,
    bytes: Backing,
    path: std::path::PathBuf,
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
        // truncates the file while we read it, accesses past the new end raise SIGBUS, which
        // `sigbus` turns into zero pages and an error for the reader.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .with_context(|| format!("cannot map {} into memory", path.display()))?;
        // Readers walk the file front to back: let the kernel read ahead and drop behind.
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(MappedFile {
            watch: sigbus::Watch::start(map.as_ptr(), map.len()),
            bytes: Backing::Mapped(map),
            path: path.to_owned(),
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
            watch: None,
            bytes: if bytes.is_empty() {
                Backing::Empty
            } else {
                Backing::Read(bytes)
            },
            path: path.to_owned(),
        })
    }

    /// Fails when the file shrank while it was read: what was read past its new end was
    /// zeros, so whatever was made of the bytes is incomplete.
    pub fn check_intact(&self) -> Result<()> {
        let Some(at) = self.watch.as_ref().and_then(sigbus::Watch::fault) else {
            return Ok(());
        };
        let now = std::fs::metadata(&self.path).map_or_else(
            |e| format!("it cannot be looked at now: {e}"),
            |m| format!("it has {} bytes now", m.len()),
        );
        anyhow::bail!(
            "{} shrank while it was read (another program truncated or rewrote it): it ended before byte {at} of {} ({now}); read a copy that nothing writes to",
            self.path.display(),
            self.bytes().len()
        )
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

/// What streaming a file ended with: the engine's counters, and why the file ended early
/// (damage in it, or the file shrinking while it was read), if it did.
#[derive(Debug)]
pub struct StreamedFile {
    /// Engine counters.
    pub stats: tapline_decode::EngineStats,
    /// Why the file ended early; everything before was decoded and handed on.
    pub damage: Option<String>,
}

/// Decodes a pcap/pcapng file, handing transactions to `each` as they complete (memory stays
/// flat). A damaged tail ends the decode; it is returned in the result's `damage`.
pub fn stream_file(
    path: &Path,
    cfg: EngineConfig,
    each: impl FnMut(&mut Vec<tapline_record::Transaction>) -> Result<()>,
) -> Result<StreamedFile> {
    let file = MappedFile::open(path)?;
    tapline_decode::capture::CaptureReader::new(file.bytes())
        .with_context(|| format!("{} is not a capture Tapline can read", path.display()))?;
    let streamed = tapline_decode::stream_capture(file.bytes(), cfg, each)?;
    // A shrink explains a damaged tail (zeros past the new end) better than the damage does.
    let damage = match file.check_intact() {
        Err(e) => Some(format!("{e:#}")),
        Ok(()) => streamed.error.map(|e| format!("{}: {e}", path.display())),
    };
    Ok(StreamedFile {
        stats: streamed.stats,
        damage,
    })
}

/// Reads and decodes a whole pcap/pcapng file. A damaged tail is logged as a warning after
/// everything before it was decoded.
pub fn decode_file(path: &Path, cfg: EngineConfig) -> Result<DecodedCapture> {
    let file = MappedFile::open(path)?;
    let decoded = tapline_decode::decode_capture(file.bytes(), cfg)
        .with_context(|| format!("{} is not a capture Tapline can read", path.display()))?;
    file.check_intact()?;
    if let Some(err) = &decoded.error {
        tracing::warn!(file = %path.display(), "{err}; packets before it were decoded");
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_cut_while_mapped_reads_zeros_past_its_end_and_says_so() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.pcap");
        std::fs::write(&path, vec![7u8; 1 << 20]).unwrap_or_else(|e| panic!("{e}"));
        let file = MappedFile::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(file.check_intact().is_ok());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(10_000))
            .unwrap_or_else(|e| panic!("{e}"));
        // Every byte is read: past the new end they are zeros, and the process lives.
        let sum: u64 = file.bytes().iter().map(|&b| u64::from(b)).sum();
        assert!((7 * 10_000..7 * (1 << 20)).contains(&sum), "{sum}");
        let e = file
            .check_intact()
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(
            e.contains("shrank while it was read") && e.contains("10000 bytes now"),
            "{e}"
        );
        // Another mapping of the file, made after, is watched on its own.
        let again = MappedFile::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(again.check_intact().is_ok());
    }
}
