//! Memory that must not grow with the input, asserted on the real `tapline` binary: a SYN
//! flood costs a bounded amount per flow, and decoding many small connections streams (its
//! heap does not grow with the capture). The child's anonymous memory (heap; the mapped
//! capture is file-backed and not counted) is sampled from `/proc/PID/status` while it runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use tapline_tests::{multiplied_capture, sample_captures, syn_flood};

fn tapline() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().and_then(Path::parent).unwrap().join("tapline");
    assert!(
        path.exists(),
        "build the workspace first ({})",
        path.display()
    );
    path
}

/// Peak anonymous resident memory (KiB) of `tapline ARGS` while it runs; it must succeed.
fn peak_anon_kib(args: &[&str], file: &Path) -> u64 {
    let mut child = Command::new(tapline())
        .args(args)
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status) {
            let anon = s
                .lines()
                .find_map(|l| l.strip_prefix("RssAnon:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
            peak = peak.max(anon.unwrap_or(0));
        }
        if let Some(exit) = child.try_wait().unwrap() {
            assert!(exit.success(), "tapline {args:?} failed");
            return peak;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_syn_flood_costs_a_bounded_amount_per_flow() {
    let dir = tempfile::tempdir().unwrap();
    let (small, large) = (dir.path().join("small.pcap"), dir.path().join("large.pcap"));
    std::fs::write(&small, syn_flood(10_000)).unwrap();
    std::fs::write(&large, syn_flood(400_000)).unwrap();
    let base = peak_anon_kib(&["decode"], &small);
    let flood = peak_anon_kib(&["decode"], &large);
    let per_flow = (flood.saturating_sub(base) * 1024) / 390_000;
    eprintln!("SYN flood: {base} KiB at 10k flows, {flood} KiB at 400k: {per_flow} B a flow");
    // A flow is 192 bytes, plus its table slot (56 bytes at up to 7/8 load) and its expiry
    // entry: 376 measured. Flows of 368 bytes cost over 550; the issue measured ~1 KB.
    assert!(per_flow < 512, "{per_flow} bytes of heap per silent flow");
}

#[test]
fn decoding_many_small_connections_streams() {
    let dir = tempfile::tempdir().unwrap();
    let (small, large) = (dir.path().join("small.pcap"), dir.path().join("large.pcap"));
    let catalog = sample_captures().join("catalog-api.pcap");
    std::fs::write(&small, multiplied_capture(&catalog, 4)).unwrap();
    std::fs::write(&large, multiplied_capture(&catalog, 80)).unwrap();
    let base = peak_anon_kib(&["decode"], &small);
    let many = peak_anon_kib(&["decode"], &large);
    eprintln!("decode: {base} KiB for 2k transactions, {many} KiB for 40k");
    // Holding every record (as decode did) costs ~2 KB each: 80 MB more for 40k.
    assert!(
        many < base + 24 * 1024,
        "heap grew from {base} to {many} KiB with the capture"
    );
}
