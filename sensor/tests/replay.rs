//! The sensor replays a capture through libpcap and emits every transaction.

use std::process::Command;

#[test]
fn replaying_the_sample_capture_emits_every_transaction() {
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../sample-captures/shop-api.pcap"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_tapline-sensor"))
        .args(["--read", sample, "--stdout", "--name", "lab-1"])
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
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../sample-captures/shop-api.pcap"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_tapline-sensor"))
        .args(["--read", sample, "--stdout", "--filter", "host 127.0.0.77"])
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
