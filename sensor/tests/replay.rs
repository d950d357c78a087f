//! The sensor replays a capture through libpcap and emits every transaction; its edge policy
//! redacts configured values before they leave.

// Test helpers: a failure is the test failing.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

/// The sample capture, found at run time: one target directory may serve several checkouts.
fn sample() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../sample-captures/shop-api.pcap")
}

/// Replays the sample capture with `args`; the run must succeed.
fn run_sensor(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_tapline-sensor"))
        .arg("--read")
        .arg(sample())
        .args(args)
        .output()
        .expect("sensor runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn replaying_the_sample_capture_emits_every_transaction() {
    let out = run_sensor(&["--stdout".as_ref(), "--name".as_ref(), "lab-1".as_ref()]);
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
    let out = run_sensor(&[
        "--stdout".as_ref(),
        "--filter".as_ref(),
        "host 127.0.0.77".as_ref(),
    ]);
    let n = String::from_utf8(out.stdout).unwrap().lines().count();
    assert_eq!(n, 24, "only the brute-force client's logins");
}

/// Every value text of a record, bodies decoded: what would leave the sensor.
fn texts(tx: &tapline_record::Transaction) -> String {
    let mut all = tx.uri.clone();
    for (n, v) in tx.request_headers.iter().chain(tx.response_headers.iter()) {
        all.push_str(&format!("\n{n}: {v}"));
    }
    all.push_str(&String::from_utf8_lossy(&tx.request_body.data));
    all.push_str(&String::from_utf8_lossy(&tx.response_body.data));
    all
}

fn replay(config: Option<&std::path::Path>) -> Vec<tapline_record::Transaction> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tapline-sensor"));
    cmd.arg("--read").arg(sample()).arg("--stdout");
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let out = cmd.output().expect("sensor runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn redacted_values_never_leave_the_sensor() {
    use tapline_detect::classify::DataClass;
    let policy_classes = [
        DataClass::CreditCard,
        DataClass::UsSsn,
        DataClass::Email,
        DataClass::Password,
    ];
    // What the sample carries, found in an unredacted replay.
    let plain = replay(None);
    let mut values = std::collections::BTreeSet::new();
    let mut scanner = tapline_detect::sensitive::Scanner::default();
    for tx in &plain {
        scanner.scan(tx, &mut |f| {
            if policy_classes.contains(&f.hit.class) {
                values.insert((f.hit.class, f.value[f.hit.start..f.hit.end].to_owned()));
            }
        });
    }
    for c in policy_classes {
        assert!(values.iter().any(|(k, _)| *k == c), "the sample has no {c}");
    }

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sensor.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[redact]
hash_key = "{}"
[[redact.rule]]
classes = ["credit_card", "us_ssn"]
action = "mask"
[[redact.rule]]
classes = ["email"]
action = "hash"
[[redact.rule]]
classes = ["password"]
action = "drop"
"#,
            "5a".repeat(32)
        ),
    )
    .unwrap();
    let redacted = replay(Some(&config));
    assert_eq!(redacted.len(), plain.len(), "redaction loses no record");
    for tx in &redacted {
        let all = texts(tx);
        // Short values (a password `admin`) can legitimately appear as other fields.
        for (class, v) in values.iter().filter(|(_, v)| v.len() >= 8) {
            assert!(
                !all.contains(v.as_str()),
                "{class} {v:?} left the sensor in {}",
                tx.uri
            );
        }
        scanner.scan(tx, &mut |f| {
            assert!(
                !policy_classes.contains(&f.hit.class),
                "{} still classifiable at {} in {}",
                f.hit.class,
                f.location,
                tx.uri
            );
        });
    }
    let said: std::collections::BTreeSet<&str> = redacted
        .iter()
        .flat_map(|t| t.redactions.iter().map(|r| r.class.as_str()))
        .collect();
    assert_eq!(
        said,
        ["credit_card", "email", "password", "us_ssn"]
            .into_iter()
            .collect()
    );

    // A policy naming a class that does not exist is refused with its name.
    std::fs::write(
        &config,
        "[[redact.rule]]\nclasses = [\"credit_crad\"]\naction = \"mask\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tapline-sensor"))
        .arg("--read")
        .arg(sample())
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("credit_crad"));
}

#[test]
fn records_are_spooled_in_batches_that_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sensor.toml");
    std::fs::write(&config, "[batch]\nrecords = 10\n").unwrap();
    let spool = dir.path().join("spool");
    let run = |again: bool| {
        let mut args = vec![
            "--config".as_ref(),
            config.as_os_str(),
            "--spool".as_ref(),
            spool.as_os_str(),
        ];
        if again {
            args.push("--replay-again".as_ref());
        }
        let out = run_sensor(&args);
        String::from_utf8(out.stderr).unwrap()
    };
    // 83 transactions in batches of at most 10: nine batches, nothing lost.
    let first = run(false);
    assert!(
        first.contains("spool: 83 records in 9 batches waiting"),
        "{first}"
    );
    assert!(first.contains(", 0 records lost"), "{first}");
    // Nobody acknowledged them: a deliberate second replay adds to what waits.
    let second = run(true);
    assert!(
        second.contains("spool: 166 records in 18 batches waiting"),
        "{second}"
    );
    let segments = std::fs::read_dir(&spool)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "spool"))
        })
        .count();
    assert_eq!(segments, 1, "small batches share one segment");
}

#[test]
fn header_lists_and_body_caps_apply_before_records_leave() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sensor.toml");
    std::fs::write(
        &config,
        "[headers]\ndeny = [\"authorization\", \"*-agent\"]\n[bodies]\nmax_bytes = 64\n",
    )
    .unwrap();
    let out = run_sensor(&["--stdout".as_ref(), "--config".as_ref(), config.as_os_str()]);
    let records: Vec<tapline_record::Transaction> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 83);
    for r in &records {
        assert!(
            r.request_headers
                .iter()
                .all(|(n, _)| !n.eq_ignore_ascii_case("authorization")
                    && !n.eq_ignore_ascii_case("user-agent")),
            "{r:?}"
        );
        assert!(r.request_body.data.len() <= 64 && r.response_body.data.len() <= 64);
    }
    // The shop's product pages are longer than 64 bytes: cut, said, full length kept.
    let cut = records
        .iter()
        .find(|r| r.response_body.len > 64)
        .expect("a long body");
    assert!(cut.response_body.truncated);
    assert!(
        cut.redactions
            .iter()
            .any(|x| x.class == "body_cap" && x.location == "response.body")
    );
    assert!(records.iter().any(|r| {
        r.redactions
            .iter()
            .any(|x| x.location == "request.header.authorization")
    }));
}

#[test]
fn workers_sharded_by_flow_hash_find_the_same_records() {
    let records = |workers: &str| {
        let out = run_sensor(&["--stdout".as_ref(), "--workers".as_ref(), workers.as_ref()]);
        let mut lines: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    };
    let one = records("1");
    assert_eq!(one.len(), 83);
    assert_eq!(
        records("3"),
        one,
        "both directions of each flow met on one worker"
    );
}

#[test]
fn an_absurd_worker_count_is_refused_with_the_range() {
    let out = Command::new(env!("CARGO_BIN_EXE_tapline-sensor"))
        .args(["--workers", "100000", "--read"])
        .arg(sample())
        .output()
        .expect("the sensor runs");
    assert_eq!(out.status.code(), Some(2), "a usage error, not an abort");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1..=64"), "{err}");
}

#[test]
fn a_file_replayed_into_a_spool_again_is_refused_unless_asked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spool = dir.path().join("spool");
    let replay = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tapline-sensor"))
            .arg("--read")
            .arg(sample())
            .arg("--spool")
            .arg(&spool)
            .args(extra)
            .output()
            .expect("sensor runs")
    };
    assert!(replay(&[]).status.success());
    let again = replay(&[]);
    assert!(!again.status.success(), "a second replay of the same file");
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("already replayed into this spool"), "{err}");
    // Another filter is another replay; --replay-again sends the same one again.
    assert!(replay(&["--filter", "tcp port 18088"]).status.success());
    assert!(replay(&["--replay-again"]).status.success());
}
