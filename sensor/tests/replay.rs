//! The sensor replays a capture through libpcap and emits every transaction.

use std::path::PathBuf;
use std::process::Command;

/// The sample capture, found at run time: one target directory may serve several checkouts.
fn sample() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../sample-captures/shop-api.pcap")
}

#[test]
fn replaying_the_sample_capture_emits_every_transaction() {
    let sample = sample();
    let out = Command::new(env!("CARGO_BIN_EXE_tapline-sensor"))
        .arg("--read")
        .arg(&sample)
        .args(["--stdout", "--name", "lab-1"])
        .output()
        .expect("sensor runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 83);
    assert!(records.iter().all(|r| r["sensor_id"] == "lab-1"));
}

#[test]
fn a_bpf_filter_limits_what_is_decoded() {
    let sample = sample();
    let out = Command::new(env!("CARGO_BIN_EXE_tapline-sensor"))
        .arg("--read")
        .arg(&sample)
        .args(["--stdout", "--filter", "host 127.0.0.77"])
        .output()
        .expect("sensor runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = String::from_utf8(out.stdout).unwrap().lines().count();
    assert_eq!(n, 24, "only the brute-force client's logins");
}
