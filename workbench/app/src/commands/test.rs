//! `tapline test run|validate`: security tests from YAML files against a target.

use crate::cli::{ListFormat, SeverityArg, TestCommand, TestGenerateArgs, TestRunArgs};
use crate::commands::Cases;
use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tapline_sectest::run::{Mode, Progress, RunOptions, RunReport};
use tapline_sectest::spec::Severity;

/// Exit status: every test passed (or failed below `--fail-on`).
pub const PASSED: u8 = 0;
/// Exit status: the run itself failed (nothing to conclude from it).
pub const RUN_FAILED: u8 = 2;

/// Runs a `test` subcommand; returns its exit status.
pub fn run(
    cmd: &TestCommand,
    out: &mut dyn Write,
    err: &mut dyn Write,
    cancel: &AtomicBool,
    cases: &Cases,
) -> Result<u8> {
    match cmd {
        TestCommand::Generate(a) => generate(a, cases, out, err).map(|()| PASSED),
        TestCommand::Validate(a) => {
            let tests = tapline_sectest::load::load_paths(&a.paths)?;
            for t in &tests {
                let attempts: usize = t.steps.iter().map(|s| s.attempts.count()).sum();
                writeln!(
                    out,
                    "ok  {}  {} ({} step(s), {} request(s) at most)",
                    t.file.display(),
                    t.id,
                    t.steps.len(),
                    attempts
                )?;
            }
            writeln!(err, "{} test(s) valid", tests.len())?;
            Ok(PASSED)
        }
        TestCommand::Run(a) => run_tests(a, out, err, cancel, cases),
    }
}

fn run_tests(
    a: &TestRunArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
    cancel: &AtomicBool,
    cases: &Cases,
) -> Result<u8> {
    let tests = tapline_sectest::load::load_paths(&a.paths)?;
    if tests.is_empty() {
        bail!("no test files in {}", list(&a.paths));
    }
    let target = url::Url::parse(&a.target).with_context(|| {
        format!(
            "--target {:?} is not a URL (write http://host:port)",
            a.target
        )
    })?;
    let identities = match identities_file(a) {
        Some(f) => tapline_sectest::load::load_identities(&f)?,
        None => Default::default(),
    };
    let opts = RunOptions {
        target,
        env: environment(a.env_file.as_deref())?,
        identities,
        rate: a.rate,
        max_requests: a.max_requests,
        timeout: Duration::from_millis(a.timeout_ms.max(1)),
        mode: if a.dry_run { Mode::DryRun } else { Mode::Send },
    };
    let table = a.format == ListFormat::Table;
    let mut write_err = None;
    let report = tapline_sectest::run::run(&tests, &opts, cancel, &mut |p| {
        if let (true, Progress::Finished { result, .. }) = (table, p)
            && let Err(e) = print_result(out, result, a.dry_run)
        {
            write_err.get_or_insert(e);
        }
    })?;
    if let Some(e) = write_err {
        return Err(e.into());
    }
    if !table {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    }
    write_reports(a, &report)?;
    summary(err, &report)?;
    if let (Some(db), false) = (&a.db, a.dry_run) {
        keep_run(cases, db, &report, err)?;
    }
    if a.dry_run {
        return Ok(PASSED);
    }
    Ok(report.exit_code(severity(a.fail_on)) as u8)
}

fn generate(
    a: &TestGenerateArgs,
    cases: &Cases,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    use tapline_sectest::generate::{Kind, Selection};
    let kinds = a
        .kind
        .iter()
        .map(|k| {
            Kind::parse(k).with_context(|| {
                let known: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
                format!("--kind {k:?} is not one of {}", known.join(", "))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let case = cases.open_existing(&a.db)?;
    let sel = Selection {
        endpoint: a.endpoint.clone(),
        kinds,
        finding: a.finding,
    };
    let generated = tapline_sectest::generate::generate(&case, &sel)?;
    let files = tapline_sectest::generate::write(&a.output, &generated, &a.db)?;
    for t in &generated.tests {
        writeln!(
            out,
            "{}  {}",
            a.output.join(&t.file_name).display(),
            t.test.meta.name
        )?;
    }
    for s in &generated.skipped {
        writeln!(err, "skipped: {s}")?;
    }
    writeln!(
        err,
        "{} test(s) and the identities file in {} ({} file(s)); fill {} before running",
        generated.tests.len(),
        a.output.display(),
        files.len(),
        a.output.join("identities.env.example").display()
    )?;
    Ok(())
}

fn print_result(
    out: &mut dyn Write,
    t: &tapline_sectest::run::TestResult,
    dry: bool,
) -> std::io::Result<()> {
    let verdict = t.verdict.as_str().to_uppercase();
    writeln!(
        out,
        "{verdict:<12} {:<8} {}  {}",
        t.severity.as_str(),
        t.id,
        t.name
    )?;
    if let Some(r) = &t.reason {
        writeln!(out, "             {r}")?;
    }
    if dry {
        for s in &t.steps {
            for a in &s.attempts {
                if let Some(x) = &a.exchange {
                    writeln!(out, "             {} {}", x.request.method, x.request.url)?;
                    for (n, v) in &x.request.headers {
                        writeln!(out, "               {n}: {v}")?;
                    }
                    if let Some(b) = &x.request.body {
                        writeln!(out, "               {b}")?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Stores the run in the case and says how it differs from the previous one.
fn keep_run(cases: &Cases, db: &Path, r: &RunReport, err: &mut dyn Write) -> Result<()> {
    let mut case = cases.open(db)?;
    writeln!(err, "{}", keep(&mut case, r)?)?;
    Ok(())
}

/// Stores `r` in `case`; returns what changed since the previous run on its target, in words.
pub fn keep(case: &mut tapline_store::CaseStore, r: &RunReport) -> Result<String> {
    let verdicts: Vec<tapline_store::test_runs::TestVerdict> = r
        .tests
        .iter()
        .map(|t| tapline_store::test_runs::TestVerdict {
            test_id: t.id.clone(),
            name: t.name.clone(),
            file: t.file.clone(),
            severity: t.severity.as_str().into(),
            verdict: t.verdict.as_str().into(),
            reason: t.reason.clone(),
            evidence: serde_json::to_string(&t.steps).ok(),
        })
        .collect();
    let id = case.record_test_run(
        r.started_ms,
        &r.target,
        r.duration_ms,
        u64::from(r.requests),
        &verdicts,
    )?;
    let c = case.compare_test_run(id)?;
    let path = case.path().display().to_string();
    Ok(match c.previous {
        Some(prev) => format!(
            "run {id} kept in {path}; against run {prev}: {} newly failing{}, {} fixed{}, {} still failing",
            c.newly_failing.len(),
            listed(&c.newly_failing),
            c.fixed.len(),
            listed(&c.fixed),
            c.still_failing.len()
        ),
        None => format!("run {id} kept in {path} (the first against {})", r.target),
    })
}

fn listed(ids: &[String]) -> String {
    if ids.is_empty() {
        String::new()
    } else {
        format!(" ({})", ids.join(", "))
    }
}

fn summary(err: &mut dyn Write, r: &RunReport) -> std::io::Result<()> {
    writeln!(err, "{} test(s): {}", r.tests.len(), r.summary())
}

fn write_reports(a: &TestRunArgs, report: &RunReport) -> Result<()> {
    if let Some(f) = &a.junit {
        let xml =
            tapline_sectest::report::junit(report).context("cannot write the JUnit report")?;
        std::fs::write(f, xml).with_context(|| format!("cannot write {}", f.display()))?;
    }
    if let Some(f) = &a.sarif {
        let json = serde_json::to_string_pretty(&tapline_sectest::report::sarif(report))?;
        std::fs::write(f, json).with_context(|| format!("cannot write {}", f.display()))?;
    }
    Ok(())
}

/// `--identities`, else an `identities.yaml` beside the first test path.
fn identities_file(a: &TestRunArgs) -> Option<PathBuf> {
    if let Some(f) = &a.identities {
        return Some(f.clone());
    }
    a.paths.iter().find_map(|p| {
        let dir = if p.is_dir() { p.as_path() } else { p.parent()? };
        let f = dir.join("identities.yaml");
        f.is_file().then_some(f)
    })
}

/// The process environment, with the env file's entries over it.
fn environment(file: Option<&Path>) -> Result<HashMap<String, String>> {
    let mut env: HashMap<String, String> = std::env::vars().collect();
    if let Some(f) = file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the env file {}", f.display()))?;
        for (k, v) in parse_env_file(&text).map_err(|e| anyhow::anyhow!("{}:{e}", f.display()))? {
            env.insert(k, v);
        }
    }
    Ok(env)
}

/// `KEY=VALUE` lines; `#` comments, blank lines, `export ` and quotes around values allowed.
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("{}: `{line}` is not KEY=VALUE", i + 1));
        };
        let k = k.trim();
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!(
                "{}: `{k}` is not a variable name (letters, digits, _)",
                i + 1
            ));
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
            .unwrap_or(v);
        out.push((k.to_owned(), v.to_owned()));
    }
    Ok(out)
}

fn severity(s: SeverityArg) -> Severity {
    match s {
        SeverityArg::Info => Severity::Info,
        SeverityArg::Low => Severity::Low,
        SeverityArg::Medium => Severity::Medium,
        SeverityArg::High => Severity::High,
        SeverityArg::Critical => Severity::Critical,
    }
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_read_comments_exports_and_quotes_and_name_bad_lines() {
        let text = "# secrets\nexport A=1\nB = \"two words\"\n\nC='x=y'\n";
        let got = parse_env_file(text).unwrap();
        assert_eq!(
            got,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "x=y".into())
            ]
        );
        assert!(
            parse_env_file("A=1\nnot a line\n")
                .unwrap_err()
                .starts_with("2:")
        );
        assert!(parse_env_file("A-B=1").is_err());
    }
}
