//! Discovery end to end: the exported OpenAPI document validates (openapi-spec-validator, the
//! reference validator, installed by `installers/setup.sh`), exporting then diffing it against
//! the same case shows no drift, and the catalog API's own document shows exactly its shadow
//! and zombie endpoints.

// Test helpers: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use common::{findings, har_get, import_into, sample_captures, tapline};
use std::path::{Path, PathBuf};
use std::process::Command;

fn validator() -> PathBuf {
    let repo = sample_captures().join("..");
    let v = repo.join(".tools/openapi-venv/bin/openapi-spec-validator");
    assert!(
        v.exists(),
        "{} is missing: run installers/setup.sh (it installs the OpenAPI validator)",
        v.display()
    );
    v
}

fn import(db: &Path, capture: &str) {
    let out = tapline()
        .args(["import", "-q", "--db"])
        .arg(db)
        .arg(sample_captures().join(capture))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn export_openapi(db: &Path, to: &Path) {
    let out = tapline()
        .args(["export", "openapi", "--db"])
        .arg(db)
        .arg("-o")
        .arg(to)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn diff(spec: &Path, db: &Path) -> (bool, serde_json::Value) {
    let out = tapline()
        .arg("diff")
        .arg(spec)
        .args(["--format", "json", "--db"])
        .arg(db)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.success(), report)
}

#[test]
fn exported_openapi_validates_and_round_trips_without_drift() {
    for capture in ["catalog-api.pcap", "shop-api.pcap"] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("case.duckdb");
        let spec = dir.path().join("inventory.json");
        import(&db, capture);
        export_openapi(&db, &spec);
        let v = Command::new(validator()).arg(&spec).output().unwrap();
        assert!(
            v.status.success(),
            "{capture}: {}{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        );
        let (clean, report) = diff(&spec, &db);
        assert!(clean, "{capture}: {report:#}");
        assert_eq!(report["documented"], report["observed"]);
    }
}

#[test]
fn the_teams_spec_shows_shadow_and_zombie_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("case.duckdb");
    import(&db, "catalog-api.pcap");
    let (clean, report) = diff(&sample_captures().join("catalog-api.openapi.json"), &db);
    assert!(!clean);
    assert_eq!(
        report["shadow"],
        serde_json::json!(["GET /api/v1/internal/debug"])
    );
    assert_eq!(
        report["zombie"],
        serde_json::json!(["GET /api/v1/admin/audit", "DELETE /api/v1/users/{userId}"])
    );
    // The web client's theme cookie is the one thing the document does not describe.
    assert_eq!(
        report["drift"],
        serde_json::json!([{
            "endpoint": "POST /api/v1/articles/{articleSlug}/comments",
            "kind": "undocumented_parameter",
            "detail": "cookie theme"
        }])
    );
}

#[test]
fn drift_is_reported_against_an_older_spec() {
    // The team's document, edited the way specs fall behind: a field, a status and a query
    // parameter removed, and the auth changed.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("case.duckdb");
    import(&db, "catalog-api.pcap");
    let mut spec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sample_captures().join("catalog-api.openapi.json")).unwrap(),
    )
    .unwrap();
    let user = &mut spec["paths"]["/api/v1/users/{userId}"]["get"];
    user["responses"]["200"]["content"]["application/json"]["schema"]["properties"]
        .as_object_mut()
        .unwrap()
        .remove("email");
    user["security"] = serde_json::json!([{"apikey": []}]);
    let products = &mut spec["paths"]["/api/v1/products"]["get"];
    products["parameters"] =
        serde_json::json!([{"name": "page", "in": "query", "schema": {"type": "string"}}]);
    spec["paths"]["/api/v1/orders"]["post"]["responses"]
        .as_object_mut()
        .unwrap()
        .remove("201");
    let path = dir.path().join("old.json");
    std::fs::write(&path, spec.to_string()).unwrap();
    let (_, report) = diff(&path, &db);
    let drift: Vec<String> = report["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{} {} {}",
                d["endpoint"].as_str().unwrap(),
                d["kind"].as_str().unwrap(),
                d["detail"].as_str().unwrap()
            )
        })
        .collect();
    for want in [
        "GET /api/v1/users/{userId} undocumented_response_field email",
        "GET /api/v1/users/{userId} undocumented_auth bearer_jwt",
        "GET /api/v1/products undocumented_parameter query limit",
        "GET /api/v1/products undocumented_parameter query sort",
        "POST /api/v1/orders undocumented_status 201",
    ] {
        assert!(
            drift.contains(&want.to_string()),
            "missing {want}: {drift:#?}"
        );
    }
}

#[test]
fn a_second_import_raises_inventory_findings() {
    // The shop capture is the baseline of its host; a HAR of later traffic on the same host
    // brings one endpoint the inventory has not seen.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("case.duckdb");
    import(&db, "shop-api.pcap");
    let har = har_get("/api/v1/users/7/addresses", "[]");
    let har_path = dir.path().join("new.har");
    std::fs::write(&har_path, har).unwrap();
    import_into(&db, &har_path);
    let findings = serde_json::Value::Array(findings(&db));
    let titles: Vec<&str> = findings
        .as_array()
        .unwrap()
        .iter()
        // Inventory findings only (the capture's attacks are findings of their own).
        .filter(|f| f["actor_ip"].is_null())
        .map(|f| f["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        vec!["New endpoint GET 127.0.0.1:18088/api/v1/users/{userId}/addresses"],
        "{findings:#}"
    );
}

#[test]
fn yaml_specs_load_and_bad_ones_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("case.duckdb");
    import(&db, "catalog-api.pcap");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sample_captures().join("catalog-api.openapi.json")).unwrap(),
    )
    .unwrap();
    let yaml = dir.path().join("catalog.yaml");
    std::fs::write(&yaml, serde_yaml_ng::to_string(&json).unwrap()).unwrap();
    let (_, report) = diff(&yaml, &db);
    assert_eq!(report["documented"], 38);
    assert_eq!(report["shadow"].as_array().unwrap().len(), 1);

    let swagger = dir.path().join("swagger.json");
    std::fs::write(&swagger, r#"{"swagger": "2.0", "paths": {}}"#).unwrap();
    let out = tapline()
        .arg("diff")
        .arg(&swagger)
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("swagger.json") && err.contains("Swagger 2.0 is not supported"),
        "{err}"
    );
}
