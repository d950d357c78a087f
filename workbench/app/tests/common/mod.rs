//! Helpers shared by the workbench's end-to-end tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's `sample-captures/` folder.
pub fn sample_captures() -> PathBuf {
    // At run time: one target directory may serve several checkouts.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../../sample-captures")
}

/// The `tapline` binary under test.
pub fn tapline() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tapline"))
}

/// `tapline import -q --db DB FILE`, which must succeed.
pub fn import_into(db: &Path, file: &Path) {
    let out = tapline()
        .args(["import", "-q", "--db"])
        .arg(db)
        .arg(file)
        .output()
        .expect("tapline runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `tapline findings --format json`.
pub fn findings(db: &Path) -> Vec<serde_json::Value> {
    let out = tapline()
        .args(["findings", "--format", "json", "--db"])
        .arg(db)
        .output()
        .expect("tapline runs");
    match serde_json::from_slice::<serde_json::Value>(&out.stdout) {
        Ok(serde_json::Value::Array(a)) => a,
        other => panic!(
            "findings output {other:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// A HAR with one `GET` on the shop capture's host answering `200` with a JSON `body`.
pub fn har_get(uri: &str, body: &str) -> String {
    serde_json::json!({"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": [{
        "startedDateTime": "2026-11-23T10:00:00.000Z",
        "time": 1.0,
        "request": {"method": "GET", "url": format!("http://127.0.0.1:18088{uri}"), "httpVersion": "HTTP/1.1",
                    "headers": [{"name": "Host", "value": "127.0.0.1:18088"}], "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
        "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1",
                     "headers": [{"name": "Content-Type", "value": "application/json"}], "cookies": [],
                     "content": {"size": body.len(), "mimeType": "application/json", "text": body}, "redirectURL": "", "headersSize": -1, "bodySize": body.len()},
        "cache": {}, "timings": {"send": 0, "wait": 1, "receive": 0}
    }]}})
    .to_string()
}

/// A classic pcap (Ethernet, IPv4, TCP) of `conns` keep-alive connections with `per_conn`
/// request/response exchanges each: handshake, one segment per message, FIN both ways.
/// Generated, so tests can have captures of any size without committing them.
pub fn synth_pcap(conns: usize, per_conn: usize) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let mut t_us: u64 = 1_700_000_000_000_000;
    for c in 0..conns {
        let client = [10, 1, (c >> 8) as u8, c as u8];
        let server = [10, 0, 0, 1];
        let cport = 40000 + (c % 20000) as u16;
        let (mut cseq, mut sseq) = (1000u32, 5000u32);
        let mut pkt =
            |out: &mut Vec<u8>, from_client: bool, flags: u8, seq: u32, ack: u32, data: &[u8]| {
                let (src, dst, sp, dp) = if from_client {
                    (client, server, cport, 80)
                } else {
                    (server, client, 80, cport)
                };
                let mut f = Vec::with_capacity(54 + data.len());
                f.extend_from_slice(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00]);
                let total = (20 + 20 + data.len()) as u16;
                f.extend_from_slice(&[0x45, 0]);
                f.extend_from_slice(&total.to_be_bytes());
                f.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
                f.extend_from_slice(&src);
                f.extend_from_slice(&dst);
                f.extend_from_slice(&sp.to_be_bytes());
                f.extend_from_slice(&dp.to_be_bytes());
                f.extend_from_slice(&seq.to_be_bytes());
                f.extend_from_slice(&ack.to_be_bytes());
                f.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
                f.extend_from_slice(data);
                t_us += 37;
                out.extend_from_slice(&((t_us / 1_000_000) as u32).to_le_bytes());
                out.extend_from_slice(&((t_us % 1_000_000) as u32).to_le_bytes());
                out.extend_from_slice(&(f.len() as u32).to_le_bytes());
                out.extend_from_slice(&(f.len() as u32).to_le_bytes());
                out.extend_from_slice(&f);
            };
        const SYN: u8 = 0x02;
        const ACK: u8 = 0x10;
        const PSH: u8 = 0x08;
        const FIN: u8 = 0x01;
        pkt(&mut out, true, SYN, cseq, 0, &[]);
        pkt(&mut out, false, SYN | ACK, sseq, cseq + 1, &[]);
        cseq += 1;
        sseq += 1;
        pkt(&mut out, true, ACK, cseq, sseq, &[]);
        for r in 0..per_conn {
            let req = format!(
                "GET /api/v1/users/{} HTTP/1.1\r\nHost: synth.test\r\nAccept: application/json\r\n\r\n",
                c * per_conn + r
            );
            let body = format!("{{\"id\":{},\"name\":\"user {}\"}}", c * per_conn + r, r);
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            pkt(&mut out, true, PSH | ACK, cseq, sseq, req.as_bytes());
            cseq += req.len() as u32;
            pkt(&mut out, false, PSH | ACK, sseq, cseq, resp.as_bytes());
            sseq += resp.len() as u32;
        }
        pkt(&mut out, true, FIN | ACK, cseq, sseq, &[]);
        pkt(&mut out, false, FIN | ACK, sseq, cseq + 1, &[]);
        pkt(&mut out, true, ACK, cseq + 1, sseq + 1, &[]);
    }
    out
}
