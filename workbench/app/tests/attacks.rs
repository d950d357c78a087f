//! Attack findings end to end: the shop capture's injection attempts become one finding per
//! family, endpoint and actor, with the actor's address and principal, the evidence
//! transactions and the rules that fired.

// Test helpers: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use common::{findings, import_into, sample_captures};

#[test]
fn the_shop_captures_attacks_are_findings_grouped_by_actor() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("case.duckdb");
    import_into(&db, &sample_captures().join("shop-api.pcap"));
    let all = findings(&db);
    let attacks: Vec<&serde_json::Value> = all
        .iter()
        .filter(|f| ["sqli", "xss", "path_traversal"].contains(&f["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(attacks.len(), 3, "{all:#?}");
    for (kind, severity, rule_prefix) in [
        ("sqli", "high", "sqli."),
        ("xss", "medium", "xss."),
        ("path_traversal", "medium", "traversal."),
    ] {
        let f = attacks.iter().find(|f| f["kind"] == kind).unwrap();
        // Mallory (user 11) from 127.0.0.66 sent exactly two of each (sample-captures/README.md).
        assert_eq!(f["count"], 2, "{f:#}");
        assert_eq!(f["severity"], severity);
        assert_eq!(f["actor_ip"], "127.0.0.66");
        assert_eq!(f["actor_user"], "11");
        assert_eq!(f["evidence"].as_array().unwrap().len(), 2);
        assert!(
            f["detail"]["rules"]
                .as_object()
                .unwrap()
                .keys()
                .all(|r| r.starts_with(rule_prefix)),
            "{f:#}"
        );
        // The values as decoded from their locations, with the rule each fired.
        let examples = f["detail"]["examples"].as_array().unwrap();
        assert_eq!(examples.len(), 2, "{f:#}");
        assert!(
            examples
                .iter()
                .all(|e| e["rule"].as_str().unwrap().starts_with(rule_prefix))
        );
        if kind == "sqli" {
            assert!(
                examples
                    .iter()
                    .any(|e| e["location"] == "request.query.q" && e["value"] == "' OR '1'='1' --"),
                "{f:#}"
            );
        }
        assert!(
            f["endpoint_id"].as_i64().is_some(),
            "attributed to an endpoint: {f:#}"
        );
    }
    // Nothing else in the capture is a payload attack: no such finding from anyone else
    // (behaviour findings are workbench/tests/behaviour.rs's).
    let payload_kinds = [
        "sqli",
        "xss",
        "path_traversal",
        "cmdi",
        "ssrf",
        "xxe",
        "nosqli",
        "ssti",
    ];
    assert!(
        all.iter()
            .filter(|f| payload_kinds.contains(&f["kind"].as_str().unwrap()))
            .all(|f| f["actor_ip"] == "127.0.0.66"),
        "{all:#?}"
    );
}
