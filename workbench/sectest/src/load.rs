//! Reading test files (ours and Metlo's) and identities files, with errors that name the file,
//! the line and column (YAML) or the step (meaning), and say what to write instead.

use crate::jsonpath::JsonPath;
use crate::payloads::Family;
use crate::plan::{
    Attempts, Check, Dialect, Extraction, JsonCond, Source, StatusSet, Step, Test, TextCond,
};
use crate::spec::{self, Assertion, Identity, StatusMatch};
use indexmap::IndexMap;
use std::path::{Path, PathBuf};

/// Test files larger than this are refused (a test is a few requests, not a data set).
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// Why a file could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", file.display(), position(*line, *column))]
#[allow(missing_docs)] // the variants and fields say what they are; messages explain
pub struct LoadError {
    pub file: PathBuf,
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub message: String,
}

fn position(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

impl LoadError {
    fn new(file: &Path, message: impl Into<String>) -> LoadError {
        LoadError {
            file: file.to_owned(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    fn yaml(file: &Path, e: &serde_saphyr::Error) -> LoadError {
        let loc = e.location();
        // The error's own text repeats the position in its words; keep the first line only.
        let text = e.to_string();
        let first = text.lines().next().unwrap_or("invalid YAML");
        // "error: line 5 column 13: …": the position is given once, in front.
        let message = first.strip_prefix("error: ").unwrap_or(first);
        let message = match (loc, message.split_once(": ")) {
            (Some(_), Some((pos, rest))) if pos.starts_with("line ") => rest,
            _ => message,
        }
        .to_owned();
        LoadError {
            file: file.to_owned(),
            line: loc.map(|l| l.line()),
            column: loc.map(|l| l.column()),
            message,
        }
    }
}

/// Every error found, so an author fixes them in one go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} test file error(s):\n{}", .0.len(), list(.0))]
pub struct LoadErrors(pub Vec<LoadError>);

fn list(errors: &[LoadError]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Loads every test in `paths` (files, or directories searched for `*.yaml`/`*.yml`; identities
/// files among them are skipped), sorted by path.
pub fn load_paths(paths: &[PathBuf]) -> Result<Vec<Test>, LoadErrors> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        if p.is_dir() {
            if let Err(e) = yaml_files(p, &mut files) {
                errors.push(LoadError::new(p, format!("cannot list the directory: {e}")));
            }
        } else {
            files.push(p.clone());
        }
    }
    files.sort();
    files.dedup();
    let mut tests: Vec<Test> = Vec::new();
    for f in files {
        match read(&f).and_then(|text| parse_any(&f, &text)) {
            Ok(Some(t)) => tests.push(t),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    let mut seen = std::collections::HashMap::new();
    for t in &tests {
        if let Some(first) = seen.insert(t.id.clone(), t.file.clone()) {
            errors.push(LoadError::new(
                &t.file,
                format!(
                    "id `{}` is also the id of {}; ids must be unique",
                    t.id,
                    first.display()
                ),
            ));
        }
    }
    if errors.is_empty() {
        Ok(tests)
    } else {
        Err(LoadErrors(errors))
    }
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            yaml_files(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

fn read(file: &Path) -> Result<String, LoadError> {
    let meta =
        std::fs::metadata(file).map_err(|e| LoadError::new(file, format!("cannot read: {e}")))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(LoadError::new(
            file,
            format!(
                "{} bytes; test files are limited to {MAX_FILE_BYTES}",
                meta.len()
            ),
        ));
    }
    let bytes =
        std::fs::read(file).map_err(|e| LoadError::new(file, format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        LoadError::new(
            file,
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        )
    })
}

/// Only the keys that tell the formats apart.
#[derive(serde::Deserialize)]
struct Probe {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    test: Option<serde::de::IgnoredAny>,
}

/// A test from `text`; `None` for an identities file.
pub fn parse_any(file: &Path, text: &str) -> Result<Option<Test>, LoadError> {
    let probe: Probe = serde_saphyr::from_str(text).map_err(|e| LoadError::yaml(file, &e))?;
    match (probe.version.as_deref(), probe.test.is_some()) {
        (Some(spec::IDENTITIES_FORMAT), _) => Ok(None),
        (Some(spec::FORMAT), _) => parse(file, text).map(Some),
        (Some(v), _) => Err(LoadError::new(
            file,
            format!(
                "version `{v}` is not one this Tapline reads (it reads `{}`)",
                spec::FORMAT
            ),
        )),
        (None, true) => crate::metlo::parse(file, text).map(Some),
        (None, false) => Err(LoadError::new(
            file,
            format!(
                "no `version: {}` (nor Metlo's `test:` list): not a test file",
                spec::FORMAT
            ),
        )),
    }
}

/// A test in Tapline's format.
pub fn parse(file: &Path, text: &str) -> Result<Test, LoadError> {
    let f: spec::TestFile = serde_saphyr::from_str(text).map_err(|e| LoadError::yaml(file, &e))?;
    check_file(file, f, Dialect::Tapline)
}

/// Turns a parsed file into a test, checking what serde cannot.
pub(crate) fn check_file(
    file: &Path,
    f: spec::TestFile,
    dialect: Dialect,
) -> Result<Test, LoadError> {
    let err = |m: String| LoadError::new(file, m);
    if f.id.trim().is_empty() {
        return Err(err("`id` is empty".into()));
    }
    if f.steps.is_empty() {
        return Err(err(
            "`steps` is empty: a test sends at least one request".into()
        ));
    }
    for id in &f.identities {
        if id.trim().is_empty() {
            return Err(err("an identity name is empty".into()));
        }
    }
    let mut steps: Vec<Step> = Vec::with_capacity(f.steps.len());
    for (i, s) in f.steps.into_iter().enumerate() {
        let name = s.name.clone().unwrap_or_else(|| format!("step {}", i + 1));
        let step = check_step(s, name.clone(), &steps, &f.payloads, &f.identities)
            .map_err(|m| err(format!("step `{name}` (#{}): {m}", i + 1)))?;
        steps.push(step);
    }
    Ok(Test {
        file: file.to_owned(),
        dialect,
        id: f.id,
        meta: f.meta,
        env: f.env,
        identities: f.identities,
        options: f.options,
        steps,
    })
}

fn check_step(
    s: spec::Step,
    name: String,
    earlier: &[Step],
    lists: &std::collections::BTreeMap<String, Vec<String>>,
    identities: &[String],
) -> Result<Step, String> {
    if earlier.iter().any(|e| e.name == name) {
        return Err("another step has this name; names must be unique in a test".into());
    }
    check_request(&s.request)?;
    if let Some(id) = &s.identity
        && id != "anonymous"
        && !identities.contains(id)
    {
        return Err(format!(
            "`as: {id}` is not listed under `identities:` (listed: {})",
            if identities.is_empty() {
                "none".into()
            } else {
                identities.join(", ")
            }
        ));
    }
    let attempts = attempts(&s, lists)?;
    let extract = s
        .extract
        .into_iter()
        .map(extraction_of)
        .collect::<Result<_, _>>()?;
    let checks = s
        .asserts
        .into_iter()
        .map(|a| check(a, earlier))
        .collect::<Result<_, _>>()?;
    Ok(Step {
        name,
        role: s.role,
        identity: s.identity,
        attempts,
        pass_when: s.pass_when,
        request: s.request,
        extract,
        checks,
    })
}

fn check_request(r: &spec::Request) -> Result<(), String> {
    let method = r.method.trim();
    if method.is_empty()
        || !method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!("`method: {method}` is not an HTTP method token"));
    }
    let url = r.url.trim();
    if !(url.starts_with('/')
        || url.starts_with("{{")
        || url.starts_with("http://")
        || url.starts_with("https://"))
    {
        return Err(format!(
            "`url: {url}` must start with `/` (relative to --target), `{{{{target}}}}` or http(s)://"
        ));
    }
    let bodies = [r.body.is_some(), r.json.is_some(), !r.form.is_empty()];
    if bodies.iter().filter(|b| **b).count() > 1 {
        return Err("a request has one of `body`, `json` or `form`, not several".into());
    }
    for text in [&r.url]
        .into_iter()
        .chain(r.headers.values())
        .chain(r.query.values())
    {
        crate::template::references(text).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn attempts(
    s: &spec::Step,
    lists: &std::collections::BTreeMap<String, Vec<String>>,
) -> Result<Attempts, String> {
    match (&s.for_each, s.repeat) {
        (Some(_), Some(_)) => Err("a step has `for_each` or `repeat`, not both".into()),
        (None, Some(0)) => Err("`repeat: 0` sends nothing".into()),
        (None, Some(n)) if n > 10_000 => Err(format!("`repeat: {n}` is more than 10000")),
        (None, Some(n)) => Ok(Attempts::Repeat(n)),
        (None, None) => Ok(Attempts::Once),
        (Some(map), None) => {
            let mut it = map.iter();
            let (Some((var, list)), None) = (it.next(), it.next()) else {
                return Err("`for_each` binds exactly one variable: `for_each: {p: sqli}`".into());
            };
            let values = match lists.get(list) {
                Some(v) => v.clone(),
                None => Family::parse(list)
                    .map(|f| f.payloads().iter().map(|s| s.to_string()).collect())
                    .ok_or_else(|| {
                        format!(
                            "payload list `{list}` is neither under `payloads:` nor built in ({})",
                            Family::ALL.map(Family::name).join(", ")
                        )
                    })?,
            };
            if values.is_empty() {
                return Err(format!("payload list `{list}` is empty"));
            }
            Ok(Attempts::Payloads {
                var: var.clone(),
                values,
            })
        }
    }
}

pub(crate) fn extraction_of(e: spec::Extract) -> Result<Extraction, String> {
    let name = e.name.trim().to_owned();
    if name.is_empty() || name.contains(['{', '}', '|', ' ']) {
        return Err(format!("extract name `{}` must be a plain word", e.name));
    }
    let mut sources = Vec::new();
    if e.status == Some(true) {
        sources.push(Source::Status);
    }
    if let Some(h) = e.header {
        sources.push(Source::Header(h));
    }
    if let Some(p) = e.json {
        sources.push(Source::Json(
            JsonPath::parse(&p).map_err(|e| e.to_string())?,
        ));
    }
    if let Some(r) = e.regex {
        let re = regex::Regex::new(&r).map_err(|e| format!("extract `{name}`: {e}"))?;
        let group = e.group.unwrap_or(if re.captures_len() > 1 { 1 } else { 0 });
        if group >= re.captures_len() {
            return Err(format!(
                "extract `{name}`: the pattern has no group {group}"
            ));
        }
        sources.push(Source::Regex { pattern: r, group });
    }
    if e.body == Some(true) {
        sources.push(Source::Body);
    }
    match sources.len() {
        1 => Ok(Extraction {
            name,
            source: sources.remove(0),
        }),
        0 => Err(format!(
            "extract `{name}` names no source (status, header, json, regex or body)"
        )),
        _ => Err(format!("extract `{name}` names several sources; give one")),
    }
}

fn check(a: Assertion, earlier: &[Step]) -> Result<Check, String> {
    Ok(match a {
        Assertion::Status(s) => Check::Status(status_set(&s)?),
        Assertion::Header(h) => {
            let cond = one_condition(
                &format!("header `{}`", h.name),
                [
                    h.present.map(|p| {
                        if p {
                            TextCond::Present
                        } else {
                            TextCond::Absent
                        }
                    }),
                    h.equals.map(TextCond::Equals),
                    h.not_equals.map(TextCond::NotEquals),
                    h.matches.map(TextCond::Matches),
                    h.not_matches.map(TextCond::NotMatches),
                ],
            )?;
            Check::Header { name: h.name, cond }
        }
        Assertion::Body(b) => Check::Body(one_condition(
            "body",
            [
                b.contains.map(TextCond::Contains),
                b.not_contains.map(TextCond::NotContains),
                b.matches.map(TextCond::Matches),
                b.not_matches.map(TextCond::NotMatches),
            ],
        )?),
        Assertion::Json(j) => {
            let path = JsonPath::parse(&j.path).map_err(|e| e.to_string())?;
            let conds = [
                j.exists.map(|e| {
                    if e {
                        JsonCond::Exists
                    } else {
                        JsonCond::Missing
                    }
                }),
                j.equals.map(JsonCond::Equals),
                j.not_equals.map(JsonCond::NotEquals),
            ];
            let cond = exactly_one(&format!("json `{}`", j.path), conds)?;
            Check::Json { path, cond }
        }
        Assertion::DurationMs(b) => {
            if b.below.is_none() && b.above.is_none() {
                return Err("`duration_ms` needs `below` or `above`".into());
            }
            let than = match &b.than {
                None => None,
                Some(name) => Some((
                    earlier
                        .iter()
                        .position(|e| &e.name == name)
                        .ok_or_else(|| {
                            format!("`duration_ms: {{than: {name}}}` names no earlier step")
                        })?,
                    name.clone(),
                )),
            };
            Check::DurationMs {
                below: b.below,
                above: b.above,
                than,
            }
        }
        Assertion::Similar(s) => {
            let step = earlier
                .iter()
                .position(|e| e.name == s.to)
                .ok_or_else(|| format!("`similar: {{to: {}}}` names no earlier step", s.to))?;
            if s.at_least.is_none() && s.below.is_none() {
                return Err("`similar` needs `at_least` or `below` (0 to 1)".into());
            }
            for v in [s.at_least, s.below].into_iter().flatten() {
                if !(0.0..=1.0).contains(&v) {
                    return Err(format!("similarity {v} is outside 0 to 1"));
                }
            }
            Check::Similar {
                step,
                name: s.to,
                at_least: s.at_least,
                below: s.below,
            }
        }
        Assertion::NoSignsOf(f) => Check::NoSignsOf(f),
    })
}

fn one_condition<const N: usize>(
    what: &str,
    conds: [Option<TextCond>; N],
) -> Result<TextCond, String> {
    let c = exactly_one(what, conds)?;
    if let TextCond::Matches(p) | TextCond::NotMatches(p) = &c {
        // Compile with variables stood in for, so a broken pattern fails now, not mid-run.
        let probe = crate::template::render_with(p, &AnyValue, &|_| "x".into())
            .map_err(|e| format!("{what}: {e}"))?;
        regex::Regex::new(&probe).map_err(|e| format!("{what}: {e}"))?;
    }
    Ok(c)
}

/// A scope where every name is defined (for checking patterns before a run).
struct AnyValue;

impl crate::template::Scope for AnyValue {
    fn get(&self, _: &str) -> Option<std::borrow::Cow<'_, str>> {
        Some("x".into())
    }
}

fn exactly_one<T, const N: usize>(what: &str, conds: [Option<T>; N]) -> Result<T, String> {
    let mut given: Vec<T> = conds.into_iter().flatten().collect();
    match given.len() {
        1 => Ok(given.remove(0)),
        0 => Err(format!("{what} says nothing to check")),
        _ => Err(format!(
            "{what} gives several conditions; write one assertion each"
        )),
    }
}

/// Reads a status expectation.
pub fn status_set(s: &StatusMatch) -> Result<StatusSet, String> {
    Ok(match s {
        StatusMatch::Code(c) if (100..=599).contains(c) => StatusSet::Code(*c),
        StatusMatch::Code(c) => return Err(format!("status {c} is outside 100–599")),
        StatusMatch::Class(t) => {
            let t = t.trim();
            if let Ok(c) = t.parse::<u16>() {
                return status_set(&StatusMatch::Code(c));
            }
            let b = t.as_bytes();
            if b.len() == 3 && (b'1'..=b'5').contains(&b[0]) && b[1..].eq_ignore_ascii_case(b"xx") {
                StatusSet::Class(u16::from(b[0] - b'0'))
            } else {
                return Err(format!(
                    "status `{t}`: write a code (404), a class (4xx) or a list"
                ));
            }
        }
        StatusMatch::OneOf(all) if all.is_empty() => {
            return Err("an empty status list matches nothing".into());
        }
        StatusMatch::OneOf(all) => {
            StatusSet::OneOf(all.iter().map(status_set).collect::<Result<_, _>>()?)
        }
        StatusMatch::Not { not } => StatusSet::Not(Box::new(status_set(not)?)),
    })
}

/// Reads an identities file.
pub fn load_identities(file: &Path) -> Result<IndexMap<String, Identity>, LoadError> {
    let text = read(file)?;
    let f: spec::IdentitiesFile =
        serde_saphyr::from_str(&text).map_err(|e| LoadError::yaml(file, &e))?;
    if f.version != spec::IDENTITIES_FORMAT {
        return Err(LoadError::new(
            file,
            format!(
                "version `{}`: an identities file says `version: {}`",
                f.version,
                spec::IDENTITIES_FORMAT
            ),
        ));
    }
    for (name, id) in &f.identities {
        if let Some(login) = &id.login {
            check_request(&login.request)
                .map_err(|m| LoadError::new(file, format!("identity `{name}`'s login: {m}")))?;
            for e in login.extract.iter().cloned() {
                extraction_of(e)
                    .map_err(|m| LoadError::new(file, format!("identity `{name}`'s login: {m}")))?;
            }
        }
    }
    Ok(f.identities)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
version: tapline-test/1
id: bola-books
meta:
  name: "BOLA: GET /books/{id} as another user"
  severity: high
  tags: [API1:2023, CWE-639]
identities: [alice, bob]
steps:
  - name: owner reads
    role: setup
    as: alice
    request: {method: GET, url: "/books/{{book}}"}
    assert: [{status: 200}]
  - name: other reads
    as: bob
    request: {method: GET, url: "/books/{{book}}"}
    assert:
      - status: {not: 2xx}
      - similar: {to: owner reads, below: 0.9}
"#;

    fn p(text: &str) -> Result<Test, LoadError> {
        parse(Path::new("t.yaml"), text)
    }

    #[test]
    fn a_good_file_becomes_a_plan() {
        let t = p(GOOD).unwrap();
        assert_eq!(t.id, "bola-books");
        assert_eq!(t.steps.len(), 2);
        assert!(matches!(
            &t.steps[1].checks[0],
            Check::Status(StatusSet::Not(_))
        ));
        assert!(matches!(
            &t.steps[1].checks[1],
            Check::Similar { step: 0, .. }
        ));
    }

    #[test]
    fn yaml_mistakes_give_line_and_column() {
        let bad = GOOD.replace("severity: high", "severity: hihg");
        let e = p(&bad).unwrap_err();
        assert_eq!(e.line, Some(6), "{e}");
        assert!(e.column.is_some());
        assert!(e.to_string().starts_with("t.yaml:6:"), "{e}");
        let bad = GOOD.replace("    role: setup", "    rol: setup");
        let e = p(&bad).unwrap_err();
        assert!(e.line.is_some(), "{e}");
    }

    #[test]
    fn meaning_mistakes_name_the_step() {
        let cases = [
            ("as: bob", "as: carol", "`as: carol` is not listed"),
            ("to: owner reads", "to: nobody", "names no earlier step"),
            ("status: 200}]", "status: 2yy}]", "write a code"),
            (
                "url: \"/books/{{book}}\"}\n    assert: [{status: 200}]",
                "url: \"/books/{{book\"}\n    assert: [{status: 200}]",
                "never closed",
            ),
        ];
        for (from, to, want) in cases {
            let e = p(&GOOD.replacen(from, to, 1)).unwrap_err().to_string();
            assert!(e.contains(want), "{from} → {to}: {e}");
            assert!(e.contains("step `"), "{e}");
        }
    }

    #[test]
    fn conditions_are_one_per_assertion_and_patterns_compile() {
        let t = GOOD.replace(
            "- status: {not: 2xx}",
            "- body: {contains: a, not_contains: b}",
        );
        assert!(
            p(&t)
                .unwrap_err()
                .to_string()
                .contains("several conditions")
        );
        let t = GOOD.replace("- status: {not: 2xx}", "- body: {matches: \"(\"}");
        assert!(p(&t).unwrap_err().to_string().contains("body"));
        let t = GOOD.replace("- status: {not: 2xx}", "- body: {not_contains: \"{{p}}\"}");
        assert!(p(&t).is_ok());
    }

    #[test]
    fn builtin_and_named_payload_lists_expand() {
        let t = GOOD.replace("    as: bob\n", "    as: bob\n    for_each: {p: sqli}\n");
        let plan = p(&t).unwrap();
        assert!(
            matches!(&plan.steps[1].attempts, Attempts::Payloads { values, .. } if values.len() == Family::Sqli.payloads().len())
        );
        let t = GOOD.replace("    as: bob\n", "    as: bob\n    for_each: {p: mine}\n");
        assert!(
            p(&t)
                .unwrap_err()
                .to_string()
                .contains("payload list `mine`")
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn damaged_files_are_errors_not_panics(cut in 0usize..GOOD.len(), junk in ".{0,8}") {
            let mut s = GOOD.as_bytes()[..cut].to_vec();
            s.extend_from_slice(junk.as_bytes());
            s.extend_from_slice(&GOOD.as_bytes()[cut..]);
            if let Ok(text) = String::from_utf8(s) {
                let _ = parse_any(Path::new("t.yaml"), &text);
            }
        }
    }
}
