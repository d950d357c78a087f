//! Helpers for Tapline's end-to-end tests: where the sample captures are and what they hold.

pub mod attacks;
pub mod crs;
pub mod pii;

use serde::Deserialize;
use std::path::PathBuf;

/// Every non-blank line of a JSON-lines file, parsed; errors name the file and line.
pub fn read_jsonl<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
) -> anyhow::Result<Vec<T>> {
    use anyhow::Context as _;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).with_context(|| format!("{}:{}", path.display(), i + 1))
        })
        .collect()
}

/// A folder of the third-party corpus: `$TAPLINE_CORPUS/<sub>`, else `shared/corpus/<sub>`
/// beside the repository or one of its parent folders (the workplace layout), if it holds
/// `marker`. `None` lets a test skip on a fresh clone; with `TAPLINE_REQUIRE_CORPUS=1` (CI)
/// a missing corpus is a failure instead, so an accuracy test can never pass by not running.
pub fn corpus_dir(sub: &str, marker: &str) -> Option<PathBuf> {
    let required = std::env::var_os("TAPLINE_REQUIRE_CORPUS").is_some_and(|v| v == "1");
    match corpus_or_skip(find_corpus(sub, marker), required, sub, marker) {
        Ok(found) => found,
        Err(why) => panic!("{why}"),
    }
}

/// What to do about a corpus folder: use it, skip (not required), or fail (required).
pub fn corpus_or_skip(
    found: Option<PathBuf>,
    required: bool,
    sub: &str,
    marker: &str,
) -> Result<Option<PathBuf>, String> {
    match found {
        Some(dir) => Ok(Some(dir)),
        None if required => Err(format!(
            "TAPLINE_REQUIRE_CORPUS=1 but the corpus folder {sub:?} (with {marker}) was not \
             found: set TAPLINE_CORPUS to the corpus, or place it at ../shared/corpus"
        )),
        None => Ok(None),
    }
}

fn find_corpus(sub: &str, marker: &str) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("TAPLINE_CORPUS") {
        let dir = PathBuf::from(dir).join(sub);
        return dir.join(marker).exists().then_some(dir);
    }
    let crate_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    crate_dir
        .ancestors()
        .skip(1)
        .map(|a| a.join("shared/corpus").join(sub))
        .find(|d| d.join(marker).exists())
}

/// The repository's `sample-captures/` folder.
pub fn sample_captures() -> PathBuf {
    // At run time: one target directory may serve several checkouts.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("..")
        .join("sample-captures")
}

/// CPU seconds this process has used so far (user + system), for benchmarks' CPU per record.
pub fn process_cpu_seconds() -> f64 {
    cpu_seconds_of_file("/proc/self/stat")
}

/// CPU time (user and system) process `pid` has used so far, in seconds.
pub fn cpu_seconds_of(pid: u32) -> f64 {
    cpu_seconds_of_file(&format!("/proc/{pid}/stat"))
}

/// CPU seconds this process's threads have used so far, summed by thread name (threads a
/// library starts take the name of the thread that started them).
pub fn threads_cpu_seconds() -> std::collections::BTreeMap<String, f64> {
    threads_cpu_seconds_in("/proc/self/task")
}

/// The same for process `pid`.
pub fn threads_cpu_seconds_of(pid: u32) -> std::collections::BTreeMap<String, f64> {
    threads_cpu_seconds_in(&format!("/proc/{pid}/task"))
}

fn threads_cpu_seconds_in(task_dir: &str) -> std::collections::BTreeMap<String, f64> {
    let mut by_name = std::collections::BTreeMap::new();
    for task in std::fs::read_dir(task_dir).into_iter().flatten().flatten() {
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let cpu = cpu_seconds_of_file(&task.path().join("stat").to_string_lossy());
        *by_name.entry(name.trim().to_string()).or_insert(0.0) += cpu;
    }
    by_name
}

/// CPU seconds in a `/proc/…/stat` file (a process's, or one thread's under `task/`).
pub fn cpu_seconds_of_file(stat_file: &str) -> f64 {
    let stat = std::fs::read_to_string(stat_file).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    // utime and stime, in clock ticks (100 a second on Linux).
    (ticks(11).unwrap_or(0.0) + ticks(12).unwrap_or(0.0)) / 100.0
}

/// Real records for benchmarks: the API sample captures' transactions, repeated to `n`.
pub fn sample_records(n: usize) -> anyhow::Result<Vec<tapline_record::Transaction>> {
    let files = ["shop-api.pcap", "abuse-api.pcap", "catalog-api.pcap"];
    records_of(&files.map(|f| sample_captures().join(f)), n)
}

/// The transactions of `captures`, in turn, repeated to `n` (for benchmarks).
pub fn records_of(
    captures: &[PathBuf],
    n: usize,
) -> anyhow::Result<Vec<tapline_record::Transaction>> {
    use anyhow::Context;
    let mut base = Vec::new();
    for path in captures {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let decoded =
            tapline_decode::decode_capture(&bytes, tapline_decode::EngineConfig::default())
                .with_context(|| format!("cannot decode {}", path.display()))?;
        base.extend(decoded.transactions);
        if base.len() >= n {
            break;
        }
    }
    if base.is_empty() {
        anyhow::bail!("the captures decoded to no transactions");
    }
    Ok(base.iter().cycle().take(n).cloned().collect())
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

/// Samples the process's anonymous resident memory (heap, not the mapped capture) every 20 ms.
pub struct PeakAnon {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<u64>,
}

impl PeakAnon {
    /// Starts sampling.
    pub fn start() -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_anon_kib());
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            peak.max(rss_anon_kib())
        });
        PeakAnon { stop, handle }
    }

    /// Stops and returns the peak in KiB.
    pub fn stop(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().unwrap_or(0)
    }
}

/// The process's anonymous resident memory now, KiB.
pub fn rss_anon_kib() -> u64 {
    proc_status_kib("RssAnon")
}

/// A `kB` figure from `/proc/self/status` (`RssAnon`, `VmHWM`, …); 0 when unavailable.
pub fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// `copies` copies of an Ethernet/IPv4 capture as one classic pcap file: copy `k` moves every
/// IPv4 address's middle two bytes to `k` (so no two copies share a connection) and its times
/// `k` × 4 s later. A large capture of real-shaped traffic from a small recording.
pub fn multiplied_capture(src: &std::path::Path, copies: u32) -> Vec<u8> {
    let bytes = std::fs::read(src).expect("the source capture is readable");
    let packets: Vec<tapline_decode::capture::Packet<'_>> =
        tapline_decode::capture::CaptureReader::new(&bytes)
            .expect("the source is a capture")
            .map(|p| p.expect("the source capture is sound"))
            .collect();
    // Classic pcap header: nanosecond magic, version 2.4, no zone, snap length, Ethernet.
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_3c4d_u32.to_le_bytes());
    out.extend_from_slice(&[2, 0, 4, 0]);
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&262_144u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for k in 0..copies {
        let shift = i64::from(k) * 4_000_000_000;
        for p in &packets {
            let mut data = p.data.to_vec();
            let ipv4 = data.len() >= 34 && data[12..14] == [0x08, 0x00];
            if ipv4 {
                for at in [14 + 12, 14 + 16] {
                    data[at + 1..at + 3].copy_from_slice(&((k + 256) as u16).to_be_bytes());
                }
            }
            let ts = p.ts_nanos + shift;
            out.extend_from_slice(&((ts / 1_000_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&((ts % 1_000_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&p.orig_len.max(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&data);
        }
    }
    out
}

/// A classic pcap of `n` TCP SYNs, each from its own client address and port to one server:
/// a SYN flood, every packet a new connection that never carries a byte.
pub fn syn_flood(n: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + n as usize * 70);
    out.extend_from_slice(&0xa1b2_c3d4_u32.to_le_bytes());
    out.extend_from_slice(&[2, 0, 4, 0]);
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for i in 0..n {
        let mut frame = Vec::with_capacity(54);
        frame.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let client = [10, (i >> 16) as u8, (i >> 8) as u8, i as u8];
        let mut ip = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0];
        ip.extend_from_slice(&client);
        ip.extend_from_slice(&[192, 168, 0, 1]);
        // Checksums stay zero, as with offloading: decoders do not check them.
        frame.extend_from_slice(&ip);
        let port = 1024 + (i % 60_000) as u16;
        frame.extend_from_slice(&port.to_be_bytes());
        frame.extend_from_slice(&80u16.to_be_bytes());
        frame.extend_from_slice(&i.to_be_bytes()); // sequence number
        frame.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
        let (sec, usec) = (1_700_000_000 + i / 10_000, (i % 10_000) * 100);
        for v in [sec, usec, frame.len() as u32, frame.len() as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&frame);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_corpus_fails_only_when_required() {
        assert_eq!(corpus_or_skip(None, false, "pii", "x.jsonl"), Ok(None));
        let err = corpus_or_skip(None, true, "pii", "x.jsonl").unwrap_err();
        assert!(
            err.contains("TAPLINE_REQUIRE_CORPUS") && err.contains("pii"),
            "{err}"
        );
        let dir = PathBuf::from("/somewhere/pii");
        assert_eq!(
            corpus_or_skip(Some(dir.clone()), true, "pii", "x.jsonl"),
            Ok(Some(dir))
        );
    }
}
