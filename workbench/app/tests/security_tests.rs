//! `tapline test run` end to end against the sample shop API: its vulnerable build (as
//! recorded) and its fixed twin (`shop_server.py --fixed`), with the reports read by the
//! programs that consume them — junitparser for JUnit XML, Microsoft's SARIF Multitool (the
//! SARIF SDK's validator, with the official 2.1.0 schema) for SARIF — both installed by
//! `installers/setup.sh`.

#![allow(clippy::unwrap_used)]

mod common;

use common::{sample_captures, tapline};
use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    sample_captures().join("..")
}

fn shop_tests() -> PathBuf {
    repo().join("tests/data/sectest/shop")
}

/// The shop server, killed when the test ends.
struct Shop {
    child: Child,
    url: String,
}

impl Drop for Shop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn shop(fixed: bool) -> Shop {
    shop_on(free_port(), fixed)
}

fn shop_on(port: u16, fixed: bool) -> Shop {
    let mut cmd = Command::new("python3");
    cmd.arg(sample_captures().join("recorder/shop_server.py"))
        .args(["127.0.0.1", &port.to_string()]);
    if fixed {
        cmd.arg("--fixed");
    }
    let child = cmd.spawn().expect("python3 runs the shop server");
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the shop server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Shop {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

fn run_tests(target: &str, extra: &[&str]) -> Output {
    let tests = shop_tests();
    tapline()
        .args(["test", "run"])
        .arg(&tests)
        .args(["--target", target, "--env-file"])
        .arg(tests.join("shop.env"))
        .args(extra)
        .output()
        .unwrap()
}

/// Test id → verdict, from `--format json`.
fn verdicts(out: &Output) -> BTreeMap<String, String> {
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    report["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_owned(),
                t["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Every planted flaw of the shop, by the test that shows it.
const PLANTED: [&str; 10] = [
    "metlo-bola-order",
    "shop-bola-user-record",
    "shop-broken-auth-support-header",
    "shop-login-rate-limit",
    "shop-login-user-enumeration",
    "shop-malformed-order-500",
    "shop-order-mass-assignment",
    "shop-security-headers",
    "shop-user-data-exposure",
    "shop-xss-search-q",
];

#[test]
fn the_shop_tests_find_every_planted_flaw_and_nothing_on_the_fixed_twin() {
    let vulnerable = shop(false);
    let fixed = shop(true);
    let v = run_tests(&vulnerable.url, &["--format", "json"]);
    assert_eq!(
        v.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&v.stderr)
    );
    let got = verdicts(&v);
    let failed: Vec<&str> = got
        .iter()
        .filter(|(_, v)| *v == "fail")
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(failed, PLANTED, "{got:?}");
    assert_eq!(got.len(), 12);
    assert!(got.values().all(|v| v == "fail" || v == "pass"), "{got:?}");

    // The same tests against the same target give the same verdicts.
    let again = run_tests(&vulnerable.url, &["--format", "json"]);
    assert_eq!(verdicts(&again), got);

    let f = run_tests(&fixed.url, &["--format", "json"]);
    assert_eq!(
        f.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&f.stdout)
    );
    assert!(
        verdicts(&f).values().all(|v| v == "pass"),
        "{:?}",
        verdicts(&f)
    );

    // Below the threshold, failures do not fail the run.
    let lenient = run_tests(
        &vulnerable.url,
        &["--fail-on", "critical", "--format", "json"],
    );
    assert_eq!(
        lenient.status.code(),
        Some(1),
        "the critical support-header flaw still counts"
    );
}

#[test]
fn reports_load_in_junitparser_and_validate_against_the_sarif_schema() {
    let venv_python = repo().join(".tools/openapi-venv/bin/python");
    let multitool = repo().join(".tools/sarif-multitool/Sarif.Multitool");
    for tool in [&venv_python, &multitool] {
        assert!(
            tool.exists(),
            "{} is missing: run installers/setup.sh",
            tool.display()
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let (junit, sarif) = (dir.path().join("r.xml"), dir.path().join("r.sarif"));
    let vulnerable = shop(false);
    let out = run_tests(
        &vulnerable.url,
        &[
            "--junit",
            junit.to_str().unwrap(),
            "--sarif",
            sarif.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));

    // junitparser: 12 cases, 10 failures, each failure carrying its request and response.
    let script = r#"
import sys
from junitparser import JUnitXml, Failure
xml = JUnitXml.fromfile(sys.argv[1])
cases = [c for s in xml for c in s]
failures = [r for c in cases for r in c.result if isinstance(r, Failure)]
print(len(cases), len(failures))
for f in failures:
    assert f.message, "a failure without a message"
    assert ("GET " in f.text or "POST " in f.text) and "→" in f.text, f.text[:300]
"#;
    let py = Command::new(&venv_python)
        .args(["-c", script])
        .arg(&junit)
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&py.stdout).trim(), "12 10");

    // The SARIF Multitool validates against the official schema and its own rules.
    let checked = dir.path().join("validation.sarif");
    let v = Command::new(&multitool)
        .arg("validate")
        .arg("-j")
        .arg(multitool.with_file_name("sarif-2.1.0.json"))
        .arg("-o")
        .arg(&checked)
        .arg(&sarif)
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    let log: serde_json::Value = serde_json::from_slice(&std::fs::read(&checked).unwrap()).unwrap();
    let errors: Vec<&serde_json::Value> = log["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["level"] == "error")
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let ours: serde_json::Value = serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
    let results = ours["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 10);
    assert!(results.iter().all(
        |r| r["webRequest"]["method"].is_string() && r["webResponse"]["statusCode"].is_number()
    ));
}

#[test]
fn a_target_that_is_down_is_exit_2_and_a_clear_message_not_a_verdict() {
    let closed = format!("http://127.0.0.1:{}", free_port());
    let out = run_tests(&closed, &[]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("PASS") && !text.contains("FAIL"), "{text}");
    assert!(
        text.contains("did not answer") && text.to_lowercase().contains("refused"),
        "{text}"
    );
}

#[test]
fn a_dry_run_prints_the_requests_and_sends_nothing() {
    let closed = format!("http://127.0.0.1:{}", free_port());
    let out = run_tests(&closed, &["--dry-run"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("GET /api/v1/search?q=%3Cscript%3Ealert%287331%29%3C%2Fscript%3E"),
        "{text}"
    );
    assert!(text.contains("<bob's headers after login>"), "{text}");
    assert!(text.contains("NOT-RUN"), "{text}");
}

#[test]
fn broken_files_are_exit_2_naming_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(shop_tests().join("bfla-admin.yaml")).unwrap();
    let bad = good.replace("severity: high", "severity: severe");
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, bad).unwrap();
    let out = tapline()
        .args(["test", "run"])
        .arg(&file)
        .args(["--target", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:5:13: unknown variant `severe`",
            file.display()
        )),
        "{err}"
    );
    let js = good.replace("version: tapline-test/1\n", "");
    std::fs::write(&file, js).unwrap();
    let out = tapline()
        .args(["test", "validate"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a test file"));
}

/// Passwords of the shop's users (`pw-<name>-2024`), for the identities generation proposes.
fn shop_env(dir: &std::path::Path, identities: &std::path::Path) -> PathBuf {
    let yaml = std::fs::read_to_string(identities).unwrap();
    let mut env = String::new();
    for line in yaml.lines() {
        if let Some(var) = line
            .split("{{env.")
            .nth(1)
            .and_then(|r| r.split("}}").next())
        {
            let user = var.trim_end_matches("_PASSWORD").to_ascii_lowercase();
            env.push_str(&format!("{var}=pw-{user}-2024\n"));
        }
    }
    let f = dir.join("shop.env");
    std::fs::write(&f, env).unwrap();
    f
}

/// Kind (the file name's prefix) → (tests, failed), from a `--format json` run.
fn by_kind(out: &Output) -> BTreeMap<String, (usize, usize)> {
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut kinds = BTreeMap::new();
    for t in report["tests"].as_array().unwrap() {
        let file = t["file"].as_str().unwrap();
        let name = std::path::Path::new(file)
            .file_name()
            .unwrap()
            .to_string_lossy();
        let kind = name.split("--").next().unwrap().to_owned();
        let e = kinds.entry(kind).or_insert((0, 0));
        e.0 += 1;
        assert_ne!(t["verdict"], "error", "{t:#}");
        if t["verdict"] == "fail" {
            e.1 += 1;
        }
    }
    kinds
}

/// Imports `captures`, generates tests from them, and runs them against the vulnerable shop
/// and its fixed twin: (kind → (tests, failed)) for each.
type ByKind = BTreeMap<String, (usize, usize)>;

fn generate_and_run(captures: &[&str]) -> (ByKind, ByKind) {
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("shop.duckdb");
    for capture in captures {
        common::import_into(&case, &sample_captures().join(capture));
    }
    let tests = dir.path().join("generated");
    let generated = tapline()
        .args(["test", "generate", "--db"])
        .arg(&case)
        .arg("-o")
        .arg(&tests)
        .output()
        .unwrap();
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    // No secret of the traffic reaches a file: passwords and tokens are placeholders.
    for f in std::fs::read_dir(&tests).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        assert!(!text.contains("pw-") && !text.contains("eyJ"), "{text}");
    }
    let env = shop_env(dir.path(), &tests.join("identities.yaml"));
    let run = |url: &str, want: i32| {
        let out = tapline()
            .args(["test", "run"])
            .arg(&tests)
            .args(["--target", url, "--format", "json", "--env-file"])
            .arg(&env)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(want),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        by_kind(&out)
    };
    let vulnerable = shop(false);
    let fixed = shop(true);
    (run(&vulnerable.url, 1), run(&fixed.url, 0))
}

#[test]
fn tests_generated_from_the_shop_traffic_find_its_flaws_and_pass_on_the_fixed_twin() {
    let (found, clean) = generate_and_run(&["shop-api.pcap", "abuse-api.pcap"]);
    // Every kind this traffic shows a flaw of is found. BFLA is generated for /admin/stats,
    // which the shop protects in both builds: its test passes in both.
    for kind in [
        "auth",
        "bola",
        "data-exposure",
        "headers",
        "injection",
        "mass-assignment",
        "rate-limit",
        "user-enumeration",
    ] {
        assert!(
            found.get(kind).is_some_and(|(_, failed)| *failed > 0),
            "{kind}: {found:?}"
        );
    }
    assert_eq!(found.get("bola"), Some(&(3, 3)), "{found:?}");
    assert_eq!(found.get("bfla"), Some(&(1, 0)), "{found:?}");
    assert!(
        clean.values().all(|(_, failed)| *failed == 0),
        "false positives on the fixed twin: {clean:?}"
    );
    assert_eq!(
        clean,
        found
            .iter()
            .map(|(k, (n, _))| (k.clone(), (*n, 0)))
            .collect::<ByKind>()
    );
}

#[test]
fn tests_generated_from_a_held_out_capture_find_the_admin_flaw_too() {
    // Another cast, an administrator, no attacks in the traffic (recorded for this and never
    // tuned on): the tests find the flaws by themselves.
    let (found, clean) = generate_and_run(&["shop-holdout-api.pcap"]);
    for kind in [
        "bfla",
        "bola",
        "data-exposure",
        "headers",
        "injection",
        "mass-assignment",
        "rate-limit",
        "user-enumeration",
    ] {
        assert!(
            found.get(kind).is_some_and(|(_, failed)| *failed > 0),
            "{kind}: {found:?}"
        );
    }
    // /admin/users is open to customers; /admin/stats is not.
    assert_eq!(found.get("bfla"), Some(&(2, 1)), "{found:?}");
    assert!(
        clean.values().all(|(_, failed)| *failed == 0),
        "false positives on the fixed twin: {clean:?}"
    );
}

/// Validates each YAML file against the test format's JSON Schema (identities files against
/// its `identities_file` part) with Python's `jsonschema`; returns the files it rejected.
fn schema_rejects(files: &[PathBuf]) -> Vec<String> {
    let python = repo().join(".tools/openapi-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run installers/setup.sh",
        python.display()
    );
    let script = r##"
import json, sys, yaml
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1]))
ids = dict(schema, **{"$ref": "#/$defs/identities_file"})
for k in ("properties", "required", "additionalProperties", "type"):
    ids.pop(k, None)
for f in sys.argv[2:]:
    doc = yaml.safe_load(open(f))
    v = Draft202012Validator(ids if doc.get("version") == "tapline-identities/1" else schema)
    errors = list(v.iter_errors(doc))
    if errors:
        print(f, "|", errors[0].message[:200])
"##;
    let out = Command::new(&python)
        .args(["-c", script])
        .arg(repo().join("workbench/sectest/test-format.schema.json"))
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_json_schema_and_the_loader_agree() {
    let dir = tempfile::tempdir().unwrap();
    // Every hand-written test in our format and the identities file validate.
    let mut ours: Vec<PathBuf> = std::fs::read_dir(shop_tests())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml") && !p.ends_with("metlo-bola-order.yaml")
        })
        .collect();
    ours.sort();
    // And every generated file.
    let case = dir.path().join("shop.duckdb");
    common::import_into(&case, &sample_captures().join("shop-api.pcap"));
    let generated = dir.path().join("generated");
    let out = tapline()
        .args(["test", "generate", "--db"])
        .arg(&case)
        .arg("-o")
        .arg(&generated)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ours.extend(
        std::fs::read_dir(&generated)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml")),
    );
    assert!(ours.len() > 20, "{ours:?}");
    assert_eq!(schema_rejects(&ours), Vec::<String>::new());

    // Broken files: the schema and `tapline test validate` both refuse each.
    let good = std::fs::read_to_string(shop_tests().join("bola-user.yaml")).unwrap();
    let broken = [
        ("severity: high", "severity: severe"),
        ("    role: setup", "    role: warmup"),
        ("- status: {not: 2xx}", "- status: 2yy"),
        (
            "- status: {not: 2xx}",
            "- status: 200\n        body: {contains: x}",
        ),
        (
            "- status: {not: 2xx}",
            "- header: {name: X, present: true, equals: y}",
        ),
        (
            "    request: {method: GET, url: /api/v1/users/3}",
            "    request: {method: GET, url: users/3}",
        ),
        (
            "    request: {method: GET, url: /api/v1/users/3}",
            "    request: {method: GET, url: /x, body: a, json: {}}",
        ),
        (
            "    as: bob\n    request: {method: GET, url: /api/v1/users/3}",
            "    as: bob\n    repeat: 2\n    for_each: {p: xss}\n    request: {method: GET, url: /api/v1/users/3}",
        ),
        ("id: shop-bola-user-record\n", ""),
    ];
    let mut files = Vec::new();
    for (i, (from, to)) in broken.iter().enumerate() {
        assert!(good.contains(from), "{from}");
        let f = dir.path().join(format!("broken-{i}.yaml"));
        std::fs::write(&f, good.replacen(from, to, 1)).unwrap();
        let v = tapline()
            .args(["test", "validate"])
            .arg(&f)
            .output()
            .unwrap();
        assert_eq!(
            v.status.code(),
            Some(2),
            "the loader accepted {from:?} → {to:?}"
        );
        files.push(f);
    }
    assert_eq!(
        schema_rejects(&files).len(),
        broken.len(),
        "the schema accepted one of them"
    );
}
