//! The sensor's running counters: written by the capture, the workers and the sink, read by the
//! uplink for its heartbeats and by `main` for the final report. Relaxed atomics: each figure
//! is independent and only ever grows (drops are pcap's own running totals).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters since the sensor started.
#[derive(Debug, Default)]
pub struct Counters {
    /// Frames captured.
    pub packets: AtomicU64,
    /// Bytes captured (as stored, up to the snap length).
    pub bytes: AtomicU64,
    /// Packets the kernel dropped (pcap `ps_drop`), live only.
    pub kernel_drops: AtomicU64,
    /// Packets the interface or driver dropped (pcap `ps_ifdrop`), live only.
    pub interface_drops: AtomicU64,
    /// Transaction records produced.
    pub records: AtomicU64,
    /// Values the redaction policy removed.
    pub redacted: AtomicU64,
}

impl Counters {
    /// Counts one captured frame.
    pub fn count(&self, len: usize) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(len as u64, Ordering::Relaxed);
    }

    /// Reads one counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
