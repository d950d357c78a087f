//! Discovery accuracy: the inventory Tapline builds from each recorded capture against the
//! operations its server really has (the catalog API's own OpenAPI document; the shop server's
//! route table). Precision and recall of endpoints (method + path template, parameter names
//! ignored) must both reach 0.95 per capture; the table is printed for the docs.

// Test helpers: a failure is the test failing.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use tapline_ingest::import::{ImportOptions, ImportOutcome, import_file};
use tapline_store::CaseStore;
use tapline_tests::sample_captures;

/// `GET /users/{userId}` → `GET /users/{}`.
fn shape(op: &str) -> String {
    let (method, path) = op.split_once(' ').unwrap_or(("", op));
    let segs: Vec<&str> = path
        .split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect();
    format!("{method} {}", segs.join("/"))
}

/// The endpoints discovery found in `capture`.
fn discovered(capture: &Path) -> BTreeSet<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut store = CaseStore::open(&dir.path().join("case.duckdb")).unwrap();
    let outcome = import_file(
        &mut store,
        capture,
        &ImportOptions::default(),
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();
    assert!(matches!(outcome, ImportOutcome::Imported(_)), "{outcome:?}");
    store
        .endpoints()
        .unwrap()
        .iter()
        .map(|e| shape(&format!("{} {}", e.method, e.template)))
        .collect()
}

struct Score {
    precision: f64,
    recall: f64,
    found: usize,
    truth: usize,
    false_positives: Vec<String>,
    missed: Vec<String>,
}

fn score(found: &BTreeSet<String>, truth: &BTreeSet<String>) -> Score {
    let hits = found.intersection(truth).count();
    Score {
        precision: hits as f64 / found.len().max(1) as f64,
        recall: hits as f64 / truth.len().max(1) as f64,
        found: found.len(),
        truth: truth.len(),
        false_positives: found.difference(truth).cloned().collect(),
        missed: truth.difference(found).cloned().collect(),
    }
}

fn report(name: &str, s: &Score) {
    println!(
        "| {name} | {} | {} | {:.3} | {:.3} |",
        s.truth, s.found, s.precision, s.recall
    );
    for f in &s.false_positives {
        println!("    false positive: {f}");
    }
    for m in &s.missed {
        println!("    missed: {m}");
    }
}

#[test]
fn catalog_api_inventory_matches_its_openapi() {
    let dir = sample_captures();
    // Ground truth: every operation the client exercised (it logs the operation of the
    // server's route table, including the one route the spec leaves out).
    let truth: BTreeSet<String> = std::fs::read_to_string(dir.join("catalog-api.expected.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            shape(v["operation"].as_str().unwrap())
        })
        .collect();
    // And the spec agrees with the server on every documented one.
    let spec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("catalog-api.openapi.json")).unwrap(),
    )
    .unwrap();
    let documented: BTreeSet<String> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| shape(&format!("{} {p}", m.to_uppercase())))
        })
        .collect();
    assert!(
        truth.difference(&documented).count() == 1,
        "one shadow route"
    );
    let s = score(&discovered(&dir.join("catalog-api.pcap")), &truth);
    report("catalog-api.pcap", &s);
    assert!(s.precision >= 0.95 && s.recall >= 0.95);
}

#[test]
fn shop_api_inventory_matches_its_routes() {
    // shop_server.py's route table.
    let routes = [
        "GET /health",
        "GET /api/v1/products",
        "GET /api/v1/search",
        "GET /api/v1/files",
        "GET /admin/stats",
        "GET /api/v1/users/me",
        "GET /api/v1/users/{id}",
        "GET /api/v1/users/{id}/orders",
        "GET /api/v1/orders/{id}",
        "POST /api/v1/login",
        "POST /api/v1/orders",
    ];
    let truth: BTreeSet<String> = routes.iter().map(|r| shape(r)).collect();
    let s = score(
        &discovered(&sample_captures().join("shop-api.pcap")),
        &truth,
    );
    report("shop-api.pcap", &s);
    assert!(s.precision >= 0.95 && s.recall >= 0.95);
}

/// The library API (Flask) keyed by user names and book titles, against Flask's own route
/// table; recorded three times with different identifiers: `library` was tuned on,
/// `library-holdout` and `library-small` (three users: few values per parameter) only measured.
#[test]
fn library_api_inventory_matches_flasks_route_table_on_every_recording() {
    let dir = sample_captures();
    let routes: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("library-api.routes.json")).unwrap(),
    )
    .unwrap();
    let truth: BTreeSet<String> = routes["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| shape(op.as_str().unwrap()))
        .collect();
    assert_eq!(truth.len(), 13);
    for half in [
        "library-api.pcap",
        "library-holdout-api.pcap",
        "library-small-api.pcap",
    ] {
        let s = score(&discovered(&dir.join(half)), &truth);
        report(half, &s);
        assert!(s.precision >= 0.95 && s.recall >= 0.95, "{half}");
    }
}
