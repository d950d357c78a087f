//! Behaviour findings end to end on recorded scenario captures (real clients scripted by
//! `sample-captures/recorder/`): each abuse is found once, pinned on the right actor, with
//! exactly the scenario's transactions as evidence — and ordinary customers are never flagged.

// Test helpers: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use common::{findings, import_into, sample_captures, tapline};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

const BEHAVIOUR: &[&str] = &[
    "bola",
    "brute_force",
    "credential_stuffing",
    "broken_authentication",
    "scraping",
    "enumeration",
    "error_spike",
];

/// The ids of the transactions a scenario step sent: the capture's ground truth lists every
/// exchange in order with its tag, and the case numbers transactions in request order.
fn tagged(db: &Path, expected: &str, tag: &str) -> BTreeSet<i64> {
    let store = tapline_store::CaseStore::open(db).unwrap();
    let mut all: Vec<(i64, i64, String, String, String, u16)> = Vec::new();
    store
        .for_each_transaction(&tapline_store::query::TxFilter::default(), |id, tx| {
            let ip = tx.client.map(|c| c.ip().to_string()).unwrap_or_default();
            let status = tx.status.unwrap_or(0);
            all.push((
                tx.request_ts_nanos,
                id,
                ip,
                tx.method.to_string(),
                tx.uri,
                status,
            ));
            Ok(())
        })
        .unwrap();
    all.sort();
    let rows: Vec<(i64, String, String, String, u16)> = all
        .into_iter()
        .map(|(_, id, ip, method, uri, status)| (id, ip, method, uri, status))
        .collect();
    let text = std::fs::read_to_string(sample_captures().join(expected)).unwrap();
    let want: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &Value| e["tag"] == tag)
        .collect();
    assert!(!want.is_empty(), "no exchanges tagged {tag}");
    let mut used = BTreeSet::new();
    for w in &want {
        let hit = rows.iter().find(|(id, ip, m, uri, status)| {
            !used.contains(id)
                && w["client"] == ip.as_str()
                && w["method"] == m.as_str()
                && w["uri"] == uri.as_str()
                && w["status"] == *status
        });
        used.insert(hit.unwrap_or_else(|| panic!("{w} not in the case")).0);
    }
    used
}

fn behaviour(all: &[Value]) -> Vec<&Value> {
    all.iter()
        .filter(|f| BEHAVIOUR.contains(&f["kind"].as_str().unwrap()))
        .collect()
}

fn one<'a>(fs: &[&'a Value], kind: &str) -> &'a Value {
    let of: Vec<&&Value> = fs.iter().filter(|f| f["kind"] == kind).collect();
    assert_eq!(of.len(), 1, "one {kind} finding: {fs:#?}");
    of[0]
}

fn evidence(f: &Value) -> BTreeSet<i64> {
    f["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect()
}

#[test]
fn the_shop_captures_bola_walk_and_brute_force() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("case.duckdb");
    import_into(&db, &sample_captures().join("shop-api.pcap"));
    let all = findings(&db);
    let fs = behaviour(&all);
    assert_eq!(fs.len(), 2, "{fs:#?}");

    // Mallory (user 11, 127.0.0.66) read 19 other users' records.
    let bola = one(&fs, "bola");
    assert_eq!(bola["actor_user"], "11");
    assert_eq!(bola["actor_ip"], "127.0.0.66");
    assert_eq!(bola["severity"], "high");
    assert_eq!(bola["count"], 19);
    assert_eq!(
        evidence(bola),
        tagged(&db, "shop-api.expected.jsonl", "bola")
    );
    assert_eq!(bola["detail"]["objects"], 19);
    // Users 1, 2, 3 and 5 logged in during the capture: their records are theirs.
    assert_eq!(
        bola["detail"]["foreign_objects"],
        serde_json::json!(["1", "2", "3", "5"])
    );

    // 24 failed logins for alice from 127.0.0.77, none successful.
    let brute = one(&fs, "brute_force");
    assert_eq!(brute["actor_ip"], "127.0.0.77");
    assert!(brute["actor_user"].is_null());
    assert_eq!(brute["severity"], "high");
    assert_eq!(brute["count"], 24);
    assert_eq!(brute["detail"]["accounts"], serde_json::json!(["alice"]));
    assert_eq!(
        evidence(brute),
        tagged(&db, "shop-api.expected.jsonl", "brute_force")
    );
}

#[test]
fn the_abuse_capture_finds_each_abuse_on_its_actor() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("case.duckdb");
    import_into(&db, &sample_captures().join("abuse-api.pcap"));
    let all = findings(&db);
    let fs = behaviour(&all);
    assert_eq!(fs.len(), 5, "{fs:#?}");
    let exp = "abuse-api.expected.jsonl";

    // 30 leaked accounts tried once each; 28 refused, then logged in as dave and frank.
    let stuffing = one(&fs, "credential_stuffing");
    assert_eq!(stuffing["actor_ip"], "127.0.0.99");
    assert_eq!(stuffing["severity"], "critical");
    assert_eq!(stuffing["count"], 28);
    assert_eq!(stuffing["detail"]["accounts_tried"], 28);
    assert_eq!(
        stuffing["detail"]["logged_in_after"],
        serde_json::json!(["dave", "frank"])
    );
    let refused: BTreeSet<i64> = tagged(&db, exp, "credential_stuffing");
    assert!(evidence(stuffing).is_subset(&refused));
    assert_eq!(evidence(stuffing).len(), 28);

    let scraping = one(&fs, "scraping");
    assert_eq!(scraping["actor_ip"], "127.0.0.88");
    assert_eq!(scraping["count"], 150);
    assert!(evidence(scraping).is_subset(&tagged(&db, exp, "scraping")));

    // A logged-in user (grace, 7) guessing 80 order ids: enumeration, not scraping.
    let enumeration = one(&fs, "enumeration");
    assert_eq!(enumeration["actor_ip"], "127.0.0.89");
    assert_eq!(enumeration["actor_user"], "7");
    assert_eq!(enumeration["count"], 80);
    assert!(evidence(enumeration).is_subset(&tagged(&db, exp, "enumeration")));

    // In without a token through the support header: the three answers, not the refusal.
    let broken = one(&fs, "broken_authentication");
    assert_eq!(broken["actor_ip"], "127.0.0.55");
    assert_eq!(broken["count"], 3);
    assert_eq!(evidence(broken), tagged(&db, exp, "broken_auth"));

    let spike = one(&fs, "error_spike");
    assert_eq!(spike["actor_ip"], "127.0.0.44");
    assert_eq!(spike["actor_user"], "8");
    assert_eq!(spike["count"], 20);
    assert_eq!(evidence(spike), tagged(&db, exp, "error_spike"));

    // Ordinary customers (127.0.0.1) appear in no finding.
    assert!(all.iter().all(|f| f["actor_ip"] != "127.0.0.1"), "{all:#?}");
}

/// The library API keys books by title: BOLA is judged against who created each book, and the
/// unauthenticated debug listing of every password is a finding. All three recordings
/// (different users and titles; `library-holdout` and `library-small`, three users and four
/// books, were never tuned on).
#[test]
fn the_library_captures_bola_on_titles_and_passwords_served_to_anyone() {
    for (name, port) in [
        ("library", 18091),
        ("library-holdout", 18092),
        ("library-small", 18093),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("case.duckdb");
        import_into(&db, &sample_captures().join(format!("{name}-api.pcap")));
        let all = findings(&db);
        let fs = behaviour(&all);
        assert_eq!(fs.len(), 1, "{name}: {fs:#?}");
        let bola = one(&fs, "bola");
        assert_eq!(bola["actor_user"], "mallory");
        assert_eq!(bola["actor_ip"], "127.0.0.66");
        let exp = format!("{name}-api.expected.jsonl");
        // The evidence: mallory's reads of others' books (her password change is elsewhere).
        let reads = std::fs::read_to_string(sample_captures().join(&exp))
            .unwrap()
            .lines()
            .filter(|l| l.contains(r#""tag": "bola""#) && l.contains(r#""GET""#))
            .count();
        assert!(reads >= 4, "{name}");
        assert!(
            evidence(bola).is_subset(&tagged(&db, &exp, "bola")),
            "{name}"
        );
        assert_eq!(evidence(bola).len(), reads, "{name}");
        let owned = bola["detail"]["objects_of_other_owners"]
            .as_array()
            .unwrap();
        assert_eq!(
            owned.len(),
            reads,
            "{name}: every book mallory read is another's"
        );
        assert!(owned.iter().all(|o| o["owner_because"] == "created it"));

        let exposure: Vec<&Value> = all
            .iter()
            .filter(|f| f["kind"] == "excessive_data_exposure" && f["severity"] == "critical")
            .collect();
        assert_eq!(exposure.len(), 1, "{name}: {all:#?}");
        let title = exposure[0]["title"].as_str().unwrap();
        assert_eq!(
            title,
            format!(
                "password in responses of GET 127.0.0.1:{port}/users/v1/_debug to clients that sent no credentials"
            )
        );
        // Readers of their own books and public profiles appear in no behaviour finding.
        assert!(fs.iter().all(|f| f["actor_ip"] != "127.0.0.1"));
    }
}

#[test]
fn the_catalog_capture_has_no_behaviour_findings() {
    // Two clients walking a catalogue of many objects: reading many products is not BOLA.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("case.duckdb");
    import_into(&db, &sample_captures().join("catalog-api.pcap"));
    let all = findings(&db);
    assert!(behaviour(&all).is_empty(), "{all:#?}");
}

#[test]
fn findings_by_actor_group_an_attackers_findings() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("case.duckdb");
    import_into(&db, &sample_captures().join("shop-api.pcap"));
    let out = tapline()
        .args(["findings", "--by-actor", "--format", "json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success());
    let groups: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(groups.len(), 2, "{groups:#?}");
    // Mallory first: four findings (BOLA, SQLi, XSS, traversal), 25 requests.
    assert_eq!(groups[0]["label"], "user 11 (127.0.0.66)");
    assert_eq!(groups[0]["severity"], "high");
    assert_eq!(groups[0]["findings"].as_array().unwrap().len(), 4);
    assert_eq!(groups[0]["requests"], 25);
    let kinds: Vec<&String> = groups[0]["kinds"].as_object().unwrap().keys().collect();
    assert_eq!(kinds, ["bola", "path_traversal", "sqli", "xss"]);
    assert_eq!(groups[1]["label"], "127.0.0.77");
    assert_eq!(groups[1]["kinds"], serde_json::json!({"brute_force": 1}));
}
