//! Block rules end to end: authored by hand and from a finding, the allowlist winning, every
//! change audited, and the nftables export accepted by `nft -c` (installed by
//! `installers/setup.sh`). Live checks behind nginx and HAProxy are not here yet.

#![allow(clippy::unwrap_used)]

mod common;

use common::{import_into, sample_captures, tapline};
use std::path::Path;
use std::process::{Command, Output};

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn block(db: &Path, args: &[&str]) -> String {
    ok(tapline()
        .arg("block")
        .args(args)
        .arg("--db")
        .arg(db)
        .output()
        .unwrap())
}

fn export(db: &Path, format: &str, to: &Path) {
    ok(tapline()
        .args(["blocklist", "export", "--format", format, "-o"])
        .arg(to)
        .arg("--db")
        .arg(db)
        .output()
        .unwrap());
}

fn program(name: &str) -> String {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin"] {
        let p = format!("{dir}/{name}");
        if Path::new(&p).exists() {
            return p;
        }
    }
    panic!(
        "{name} is missing: run installers/setup.sh (it installs nginx-light, haproxy, nftables)"
    );
}

/// A case with rules: a network with an allowlisted address in it, an IPv6 network, an API
/// key, a user, a scoped header rule, a monitor rule, one removed, one from a finding.
fn case_with_rules(dir: &Path) -> std::path::PathBuf {
    let db = dir.join("case.duckdb");
    import_into(&db, &sample_captures().join("abuse-api.pcap"));
    block(
        &db,
        &[
            "allow",
            "--ip",
            "127.0.0.7",
            "--note",
            "the office proxy",
            "--who",
            "ana",
        ],
    );
    let out = block(
        &db,
        &[
            "add",
            "--ip",
            "127.0.0.0/29",
            "--for",
            "24h",
            "--reason",
            "scanner range",
            "--who",
            "ana",
        ],
    );
    assert!(
        out.contains("warning: 127.0.0.7/32 is allowlisted"),
        "{out}"
    );
    block(&db, &["add", "--ip", "2001:db8::/48", "--who", "ana"]);
    block(&db, &["add", "--key", "k-stolen-1", "--who", "ana"]);
    block(&db, &["add", "--user", "mallory", "--who", "ana"]);
    block(
        &db,
        &[
            "add",
            "--header",
            "X-Client: scanner",
            "--path",
            "/api/*",
            "--who",
            "ana",
        ],
    );
    block(
        &db,
        &["add", "--ip", "192.0.2.1", "--monitor", "--who", "ana"],
    );
    block(&db, &["add", "--ip", "198.51.100.9", "--who", "ben"]);
    block(
        &db,
        &["remove", "7", "--note", "wrong address", "--who", "ben"],
    );
    let findings = common::findings(&db);
    let stuffing = findings
        .iter()
        .find(|f| f["kind"] == "credential_stuffing")
        .unwrap();
    let out = block(
        &db,
        &[
            "from-finding",
            &stuffing["id"].to_string(),
            "--by",
            "ip",
            "--for",
            "1h",
        ],
    );
    assert!(out.contains("blocks ip 127.0.0.99/32"), "{out}");
    db
}

#[test]
fn rules_are_audited_listed_and_the_allowlist_wins() {
    let dir = tempfile::tempdir().unwrap();
    let db = case_with_rules(dir.path());
    let list = block(&db, &["list"]);
    assert!(
        !list.contains("198.51.100.9"),
        "removed rules are not in force: {list}"
    );
    assert!(
        list.contains("X-Client: scanner") && list.contains("/api/*"),
        "{list}"
    );
    let all = block(&db, &["list", "--all", "--format", "json"]);
    let rules: serde_json::Value = serde_json::from_str(&all).unwrap();
    assert_eq!(rules.as_array().unwrap().len(), 8);
    let audit = block(&db, &["audit"]);
    let events: Vec<&str> = audit
        .lines()
        .map(|l| l.split_whitespace().nth(3).unwrap_or(""))
        .collect();
    assert_eq!(
        events.iter().filter(|e| **e == "create").count(),
        8,
        "{audit}"
    );
    assert!(
        audit.contains("remove")
            && audit.contains("wrong address")
            && audit.contains("the office proxy"),
        "{audit}"
    );

    let json_path = dir.path().join("rules.json");
    export(&db, "json", &json_path);
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    let values: Vec<&str> = doc["block"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_str().unwrap())
        .collect();
    // 127.0.0.0/29 less the allowlisted .7: .0/30, .4/31, .6/32.
    for v in [
        "127.0.0.0/30",
        "127.0.0.4/31",
        "127.0.0.6/32",
        "2001:db8::/48",
        "k-stolen-1",
        "mallory",
        "127.0.0.99/32",
    ] {
        assert!(values.contains(&v), "{v} missing from {values:?}");
    }
    assert!(
        !values.iter().any(|v| v.starts_with("127.0.0.7")
            || v.starts_with("198.51.100.9")
            || v.starts_with("192.0.2.1")),
        "{values:?}"
    );
    assert_eq!(doc["monitor"][0]["value"], "192.0.2.1/32");
}

#[test]
fn nftables_checks_the_exported_table() {
    let dir = tempfile::tempdir().unwrap();
    let db = case_with_rules(dir.path());
    let file = dir.path().join("tapline.nft");
    export(&db, "nftables", &file);
    let out = Command::new(program("nft"))
        .arg("-c")
        .arg("-f")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&file).unwrap()
    );
}

#[test]
fn automatic_rules_block_actors_over_the_threshold_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("case.duckdb");
    import_into(&db, &sample_captures().join("abuse-api.pcap"));
    let out = block(
        &db,
        &[
            "auto",
            "add",
            "abusers",
            "--kind",
            "behaviour",
            "--min-severity",
            "medium",
            "--threshold",
            "1",
            "--window",
            "1h",
            "--by",
            "ip",
            "--for",
            "2h",
        ],
    );
    assert!(out.contains("automatic rule 1 (abusers) added"), "{out}");
    let auto_rules = |db: &Path| -> Vec<serde_json::Value> {
        let all: serde_json::Value =
            serde_json::from_str(&block(db, &["list", "--format", "json"])).unwrap();
        all.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["origin"] == "auto:1")
            .cloned()
            .collect()
    };
    let first = auto_rules(&db);
    assert!(!first.is_empty(), "{out}");
    let values: Vec<&str> = first.iter().map(|r| r["value"].as_str().unwrap()).collect();
    assert!(
        values.contains(&"127.0.0.99/32"),
        "the stuffing actor: {values:?}"
    );
    assert!(
        first
            .iter()
            .all(|r| !r["findings"].as_array().unwrap().is_empty())
    );
    // Another import runs the rule again: the same evidence blocks no one twice (the new
    // capture's own abusers may be blocked, once each).
    import_into(&db, &sample_captures().join("shop-api.pcap"));
    let after = auto_rules(&db);
    let mut values: Vec<&str> = after.iter().map(|r| r["value"].as_str().unwrap()).collect();
    let n = values.len();
    values.sort_unstable();
    values.dedup();
    assert_eq!(values.len(), n, "an actor blocked twice: {values:?}");
    assert!(after.len() >= first.len());
    let audit = block(&db, &["audit"]);
    assert!(audit.contains("auto-create"), "{audit}");
}

#[test]
fn monitor_rules_are_measured_on_recorded_traffic_and_drafts_previewed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("case.duckdb");
    import_into(&db, &sample_captures().join("abuse-api.pcap"));
    block(&db, &["add", "--ip", "127.0.0.99", "--monitor"]);
    let rules: serde_json::Value =
        serde_json::from_str(&block(&db, &["list", "--effect", "--format", "json"])).unwrap();
    let effect = &rules[0]["effect"];
    assert!(effect["would_block"].as_u64().unwrap() >= 20, "{effect}");
    assert_eq!(effect["actors"], 1, "{effect}");
    assert_eq!(
        effect["false_positive_candidates"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "the stuffing actor has findings: {effect}"
    );
    // A draft over the whole loopback network: every request, with the well-behaved clients
    // named as possible false positives, and nothing saved.
    let out = block(&db, &["add", "--ip", "127.0.0.0/24", "--dry-run"]);
    assert!(
        out.contains("would have blocked 342 recorded request(s)"),
        "{out}"
    );
    assert!(out.contains("possible false positive: 127.0.0.1"), "{out}");
    let all: serde_json::Value =
        serde_json::from_str(&block(&db, &["list", "--all", "--format", "json"])).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 1, "a dry run saves nothing");
}
