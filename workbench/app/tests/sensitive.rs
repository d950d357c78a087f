//! Sensitive data end to end: importing the shop capture records, per endpoint, which data
//! classes flow where (with counts and evidence, never the values), and later traffic that
//! exposes a class an endpoint never carried raises a finding.

// Test helpers: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use common::{findings, har_get, import_into, sample_captures};
use tapline_store::CaseStore;

#[test]
fn endpoints_carry_their_data_classes_and_new_exposure_is_a_finding() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("case.duckdb");
    import_into(&db, &sample_captures().join("shop-api.pcap"));
    assert!(
        findings(&db)
            .iter()
            .all(|f| f["kind"] != "sensitive_data_exposed"),
        "the first import of a host is its baseline"
    );

    let endpoints = CaseStore::open(&db).unwrap().endpoints().unwrap();
    let user = endpoints
        .iter()
        .find(|e| e.method == "GET" && e.template.starts_with("/api/v1/users/{"))
        .unwrap();
    let detail: serde_json::Value = serde_json::from_str(user.detail.as_deref().unwrap()).unwrap();
    let classes = &detail["data_classes"];
    for (class, location) in [
        ("email", "response.body.email"),
        ("phone_number", "response.body.phone"),
        ("us_ssn", "response.body.ssn"),
        ("credit_card", "response.body.card"),
    ] {
        let seen = &classes[class][location];
        assert!(
            seen["count"].as_u64().unwrap() > 0,
            "{class} at {location}: {classes:#}"
        );
        assert!(seen["first_tx"].as_i64().is_some());
    }
    // Counts, times and evidence ids only: no value is stored in the inventory.
    let text = classes.to_string();
    assert!(
        !text.contains("@example.com") && !text.contains("378282246310005"),
        "{text}"
    );
    let login = endpoints
        .iter()
        .find(|e| e.template == "/api/v1/login")
        .unwrap();
    let login: serde_json::Value = serde_json::from_str(login.detail.as_deref().unwrap()).unwrap();
    assert!(
        login["data_classes"]["password"]["request.body.password"]["count"]
            .as_u64()
            .unwrap()
            > 0
    );

    // Later traffic: the same endpoint now also returns an IBAN.
    let later = dir.path().join("later.har");
    std::fs::write(
        &later,
        har_get(
            "/api/v1/users/3",
            r#"{"id":3,"email":"carol@example.com","iban":"DE89 3704 0044 0532 0130 00"}"#,
        ),
    )
    .unwrap();
    import_into(&db, &later);
    let exposed: Vec<serde_json::Value> = findings(&db)
        .into_iter()
        .filter(|f| f["kind"] == "sensitive_data_exposed")
        .collect();
    assert_eq!(exposed.len(), 1, "{exposed:#?}");
    let title = exposed[0]["title"].as_str().unwrap();
    assert!(title.starts_with("iban newly seen on GET"), "{title}");
    assert!(title.contains("response.body.iban"), "{title}");
    assert_eq!(exposed[0]["severity"], "medium");
}

#[test]
fn a_debug_endpoint_listing_passwords_to_anyone_is_a_critical_finding() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("case.duckdb");
    let users: Vec<serde_json::Value> = (0..5)
        .map(|i| serde_json::json!({"username": format!("name{i}"), "password": format!("Pa55word-{i}!x")}))
        .collect();
    let har = dir.path().join("debug.har");
    let body = serde_json::json!({ "users": users }).to_string();
    std::fs::write(&har, har_get("/users/v1/_debug", &body)).unwrap();
    import_into(&db, &har);
    let found = findings(&db);
    let exposure = found
        .iter()
        .find(|f| f["kind"] == "excessive_data_exposure")
        .unwrap_or_else(|| panic!("no exposure finding in {found:?}"));
    assert_eq!(exposure["severity"], "critical");
    assert!(
        exposure["title"]
            .as_str()
            .unwrap()
            .contains("password in responses of GET 127.0.0.1:18088/users/v1/_debug to clients that sent no credentials")
    );
}
