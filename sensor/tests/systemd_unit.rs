//! The systemd unit in installers/ is valid (checked by `systemd-analyze verify` where the
//! machine has it) and starts the sensor the way the sensor expects.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

fn unit() -> String {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../installers/tapline-sensor.service");
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn the_unit_holds_only_capture_capabilities_and_keeps_the_spool() {
    let u = unit();
    assert!(u.contains("AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN\n"));
    assert!(u.contains("CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN\n"));
    assert!(u.contains("NoNewPrivileges=yes\n"));
    assert!(
        u.contains("StateDirectory=tapline-sensor\n"),
        "the spool survives restarts"
    );
    assert!(u.contains("--config ${CREDENTIALS_DIRECTORY}/sensor.toml"));
}

#[test]
fn systemd_accepts_the_unit() {
    let Ok(out) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        eprintln!("skipped: no systemd-analyze on this machine");
        return;
    };
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tapline-sensor.service");
    let u = unit().replace(
        "/usr/bin/tapline-sensor",
        env!("CARGO_BIN_EXE_tapline-sensor"),
    );
    std::fs::write(&path, u).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !err.contains("tapline-sensor.service:"),
        "{err}"
    );
}
