//! The house holds its plan: the dependency tables in ARCHITECTURE.md are checked against
//! `cargo metadata` (in the spirit of rust-analyzer's tidy tests). A Tapline crate may depend
//! only on the Tapline crates its row allows, a heavy dependency may be named only by the crates
//! that own it, every workspace crate has a row, and every program in the workspace (binaries,
//! examples) is named in the code map.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// The rows of the markdown table that follows `marker` in `doc`: cells of each body row.
fn table_after(doc: &str, marker: &str) -> Vec<Vec<String>> {
    let start = doc
        .find(marker)
        .unwrap_or_else(|| panic!("ARCHITECTURE.md lost its marker {marker:?}"));
    doc[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().replace('`', ""))
                .collect()
        })
        .collect()
}

fn names(cell: &str) -> BTreeSet<String> {
    cell.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "—")
        .map(String::from)
        .collect()
}

/// What ARCHITECTURE.md allows.
struct Plan {
    /// crate → the Tapline crates it may depend on (any kind of dependency).
    allowed: BTreeMap<String, BTreeSet<String>>,
    /// heavy dependency → the crates that may name it.
    owners: BTreeMap<String, BTreeSet<String>>,
}

fn plan(doc: &str) -> Plan {
    let allowed = table_after(doc, "<!-- tidy: crates -->")
        .into_iter()
        .map(|row| (row[0].clone(), names(&row[2])))
        .collect();
    let mut owners = BTreeMap::new();
    for row in table_after(doc, "<!-- tidy: owners -->") {
        for dep in names(&row[0]) {
            owners.insert(dep, names(&row[1]));
        }
    }
    Plan { allowed, owners }
}

/// One workspace package as `cargo metadata` describes it.
struct Package {
    name: String,
    /// (dependency name, kind: normal, dev or build).
    deps: Vec<(String, String)>,
    /// Programs: (target kind, name) of bins, examples and benches.
    programs: Vec<(String, String)>,
}

fn packages(metadata: &Value) -> Vec<Package> {
    let members: BTreeSet<&str> = metadata["workspace_members"]
        .as_array()
        .expect("workspace_members")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|p| p["id"].as_str().is_some_and(|id| members.contains(id)))
        .map(|p| Package {
            name: p["name"].as_str().unwrap_or_default().to_string(),
            deps: p["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    let kind = d["kind"].as_str().unwrap_or("normal").to_string();
                    (d["name"].as_str().unwrap_or_default().to_string(), kind)
                })
                .collect(),
            programs: p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|t| {
                    let name = t["name"].as_str().unwrap_or_default().to_string();
                    t["kind"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .filter(|k| matches!(*k, "bin" | "example" | "bench"))
                        .map(move |k| (k.to_string(), name.clone()))
                        .collect::<Vec<_>>()
                })
                .collect(),
        })
        .collect()
}

/// Every way the workspace departs from the plan, one line each.
fn violations(plan: &Plan, packages: &[Package], doc: &str) -> Vec<String> {
    let ours: BTreeSet<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    let mut out = Vec::new();
    for p in packages {
        let Some(allowed) = plan.allowed.get(&p.name) else {
            out.push(format!(
                "{}: no row in ARCHITECTURE.md's crate table",
                p.name
            ));
            continue;
        };
        for (dep, kind) in &p.deps {
            if ours.contains(dep.as_str()) && !allowed.contains(dep) {
                out.push(format!(
                    "{} → {dep} ({kind}): not allowed by its row in ARCHITECTURE.md",
                    p.name
                ));
            }
            if let Some(owners) = plan.owners.get(dep)
                && !owners.contains(&p.name)
            {
                out.push(format!(
                    "{} names {dep} ({kind}): only {} may",
                    p.name,
                    owners.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        for (kind, program) in &p.programs {
            if !doc.contains(&format!("`{program}`")) {
                out.push(format!(
                    "{} has {kind} `{program}`, not named in ARCHITECTURE.md's code map",
                    p.name
                ));
            }
        }
    }
    for name in plan.allowed.keys() {
        if !ours.contains(name.as_str()) {
            out.push(format!(
                "ARCHITECTURE.md names {name}, not a workspace crate"
            ));
        }
    }
    out
}

fn cargo_metadata() -> Value {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(repo())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

fn architecture_doc() -> String {
    std::fs::read_to_string(repo().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md")
}

#[test]
fn the_workspace_keeps_the_dependency_plan() {
    let doc = architecture_doc();
    let found = violations(&plan(&doc), &packages(&cargo_metadata()), &doc);
    assert!(
        found.is_empty(),
        "the workspace departs from ARCHITECTURE.md (fix the edge, or change the plan and say why):\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn a_forbidden_edge_is_reported() {
    let doc = architecture_doc();
    let plan = plan(&doc);
    assert!(plan.allowed.len() >= 10, "the crate table was not read");
    assert!(
        plan.owners.contains_key("duckdb"),
        "the owners table was not read"
    );
    let mut packages = packages(&cargo_metadata());
    let decode = packages
        .iter_mut()
        .find(|p| p.name == "tapline-decode")
        .expect("tapline-decode is a workspace crate");
    decode.deps.push(("tapline-store".into(), "normal".into()));
    decode.deps.push(("duckdb".into(), "dev".into()));
    let found = violations(&plan, &packages, &doc);
    assert!(
        found
            .iter()
            .any(|v| v.starts_with("tapline-decode → tapline-store")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|v| v.starts_with("tapline-decode names duckdb")),
        "{found:?}"
    );
}
