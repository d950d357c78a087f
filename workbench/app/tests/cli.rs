//! The `tapline` command line, run as a user would.

mod common;

use common::tapline;
use std::path::PathBuf;
use std::process::Command;

fn sample(name: &str) -> PathBuf {
    // At run time: one target directory may serve several checkouts.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../../sample-captures")
        .join(name)
}

#[test]
fn decode_prints_one_json_object_per_transaction() {
    let out = Command::new(env!("CARGO_BIN_EXE_tapline"))
        .args(["decode", "--format", "jsonl"])
        .arg(sample("shop-api.pcap"))
        .output()
        .expect("tapline runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 83);
    let login = &lines[0];
    for field in [
        "ts",
        "client",
        "server",
        "method",
        "host",
        "uri",
        "version",
        "status",
        "request_headers",
        "response_headers",
        "request_body_b64",
        "response_body_b64",
        "request_body_len",
        "response_body_len",
        "anomalies",
    ] {
        assert!(login.get(field).is_some(), "missing field {field}");
    }
    assert_eq!(login["method"], "POST");
    assert_eq!(login["server"], "127.0.0.1:18088");
    assert_eq!(login["request_headers"][0][0], "Host");
}

#[test]
fn decode_max_body_caps_printed_bodies() {
    let out = Command::new(env!("CARGO_BIN_EXE_tapline"))
        .args(["decode", "--max-body", "4"])
        .arg(sample("shop-api.pcap"))
        .output()
        .expect("tapline runs");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    // 4 bytes encode to 8 base64 characters; the full length is still reported.
    assert_eq!(first["response_body_b64"].as_str().unwrap().len(), 8);
    assert!(first["response_body_len"].as_u64().unwrap() > 4);
    assert_eq!(first["response_body_truncated"], true);
}

#[test]
fn decode_of_a_non_capture_says_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("notes.txt");
    std::fs::write(&bogus, "hello, this is not a pcap").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tapline"))
        .arg("decode")
        .arg(&bogus)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("notes.txt"), "{err}");
    assert!(err.contains("not a pcap or pcapng file"), "{err}");
}

#[test]
fn classify_prints_classes_with_character_spans() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tapline"))
        .arg("classify")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("tapline runs");
    let input = concat!(
        "\"Zoë's card: 4111 1111 1111 1111\"\n",
        "{\"text\": \"hunter2\", \"key\": \"password\"}\n",
        "no quotes, raw text with 078-05-1123\n",
        "\"nothing here\"\n",
        "{\"text\": \"1' OR '1'='1' --\", \"key\": \"q\"}\n",
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[4]["attacks"][0]["family"], "sqli");
    assert!(
        lines[4]["attacks"][0]["rule"]
            .as_str()
            .unwrap()
            .starts_with("sqli.")
    );
    // Characters, not bytes: `ë` is one.
    assert_eq!(lines[0]["data"][0]["class"], "credit_card");
    assert_eq!(
        (
            lines[0]["data"][0]["start"].as_u64(),
            lines[0]["data"][0]["end"].as_u64()
        ),
        (Some(12), Some(31))
    );
    assert_eq!(lines[1]["data"][0]["class"], "password");
    assert_eq!(lines[2]["data"][0]["class"], "us_ssn");
    assert_eq!(lines[3]["data"].as_array().unwrap().len(), 0);
    assert!(
        lines[..4]
            .iter()
            .all(|l| l["attacks"].as_array().unwrap().is_empty())
    );
}

/// No control character of the traffic reaches the terminal: raw ESC, BEL and the C1 CSI.
fn assert_terminal_safe(what: &str, out: &[u8]) {
    let raw =
        out.iter().any(|&b| b == 0x1b || b == 0x07) || out.windows(2).any(|w| w == [0xc2, 0x9b]);
    assert!(!raw, "{what} printed control characters raw");
}

#[test]
fn hostile_hosts_and_paths_reach_no_terminal_raw() {
    // The shop capture with its host and path prefix replaced by escape sequences of the same
    // length (so TCP sequence numbers still hold): clear screen, retitle, bell, C1 CSI.
    let mut bytes = std::fs::read(sample("shop-api.pcap")).unwrap();
    let swaps: [(&[u8], &[u8]); 2] = [
        (b"127.0.0.1:18088", b"\x1b]0;pwn\x07\xc2\x9b2Jxxx"),
        (b"/api/v1/", b"/\x1b[31m\x07/"),
    ];
    for (from, to) in swaps {
        assert_eq!(from.len(), to.len());
        let mut at = 0;
        while let Some(i) = bytes[at..].windows(from.len()).position(|w| w == from) {
            bytes[at + i..at + i + from.len()].copy_from_slice(to);
            at += i + from.len();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("hostile.pcap");
    std::fs::write(&pcap, &bytes).unwrap();
    let db = dir.path().join("case.duckdb");

    let decode = tapline()
        .args(["decode", "--format", "table"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(decode.status.success());
    assert!(decode.stdout.len() > 1000, "the capture still decodes");
    assert!(String::from_utf8_lossy(&decode.stdout).contains("\\u001b]0;pwn\\u0007\\u009b2J"));
    assert_terminal_safe("decode --format table", &decode.stdout);
    let jsonl = tapline().args(["decode"]).arg(&pcap).output().unwrap();
    assert_terminal_safe("decode (JSON lines)", &jsonl.stdout);
    for line in String::from_utf8(jsonl.stdout).unwrap().lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("still valid JSON");
    }

    common::import_into(&db, &pcap);
    for args in [
        &["endpoints", "--db"][..],
        &["findings", "--db"],
        &["findings", "--by-actor", "--db"],
    ] {
        let out = tapline().args(args).arg(&db).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert_terminal_safe(&format!("{args:?}"), &out.stdout);
    }
}

#[test]
fn a_reader_that_stops_early_is_not_a_failure() {
    use std::io::{BufRead, BufReader};
    for format in ["jsonl", "table"] {
        let mut child = tapline()
            .args(["decode", "--format", format])
            .arg(sample("catalog-api.pcap"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        // The pipe closes here, as `| head -1` would close it.
        let out = child.wait_with_output().unwrap();
        assert!(!first.is_empty());
        assert!(
            out.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_damaged_capture_decodes_to_the_damage_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.pcap");
    let bytes = std::fs::read(sample("shop-api.pcap")).unwrap();
    std::fs::write(&cut, &bytes[..50_000]).unwrap();
    let out = tapline().arg("decode").arg(&cut).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).lines().count() > 10);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("byte offset 49969"), "{err}");
}

#[test]
fn reading_commands_never_create_a_case_and_say_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo.duckdb");
    for args in [
        &["endpoints", "--db"][..],
        &["findings", "--db"],
        &["export", "jsonl", "--db"],
        &["sensors", "list", "--db"],
    ] {
        let out = tapline().args(args).arg(&typo).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("there is no case file"), "{args:?}: {err}");
        assert!(!typo.exists(), "{args:?} created an empty case");
    }
    let junk = dir.path().join("junk.duckdb");
    std::fs::write(&junk, vec![7u8; 100_000]).unwrap();
    let out = tapline()
        .args(["endpoints", "--db"])
        .arg(&junk)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("not a valid DuckDB database file").count(),
        1,
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line says why: {err}");
}

#[test]
fn classify_reports_a_line_that_is_not_utf8_and_goes_on() {
    use std::io::Write;
    let mut child = tapline()
        .arg("classify")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input: &[u8] = b"078-05-1123\nbad \xff\xfe 078-05-1123\r\n\"4111 1111 1111 1111\"\n";
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "one output line per input line");
    assert!(lines[0].get("error").is_none());
    assert!(lines[1]["error"].as_str().unwrap().contains("line 2"));
    assert_eq!(
        lines[1]["data"][0]["class"], "us_ssn",
        "the rest of the line is read"
    );
    assert_eq!(
        lines[2]["data"][0]["class"], "credit_card",
        "the lines after it too"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2 is not UTF-8"));
}

#[test]
fn a_fifo_is_refused_clearly_and_a_sizeless_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("capture.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    for args in [&["decode"][..], &["import", "--db", "case.duckdb"]] {
        let out = tapline()
            .args(args)
            .arg(&fifo)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is not a regular file"), "{args:?}: {err}");
    }
    // A file that reports size 0 but has bytes, as /proc files do: read, not taken as empty.
    let out = tapline()
        .arg("decode")
        .arg("/proc/self/status")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a pcap or pcapng file"), "{err}");
    assert!(!err.contains("(empty file)"), "{err}");
}

/// Before: the decode died of SIGBUS with no message when the file shrank under it.
#[test]
fn a_capture_that_shrinks_while_decoded_is_reported_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("growing.pcap");
    let one = std::fs::read(sample("catalog-api.pcap")).unwrap();
    let mut bytes = one.clone();
    while bytes.len() < 40 << 20 {
        bytes.extend_from_slice(&one[24..]);
    }
    std::fs::write(&big, &bytes).unwrap();
    let child = tapline()
        .arg("decode")
        .arg(&big)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // As `tcpdump -C` or a rotating job would: the file is cut while it is read.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(100_000)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("shrank while it was read"), "{err}");
    assert!(err.contains("it has 100000 bytes now"), "{err}");
}
