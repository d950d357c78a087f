//! Tests built from a case: real captured requests replayed with mutations, one file per
//! endpoint × kind, each saying which transactions and findings it came from.
//!
//! Secrets never reach a file: credentials in captured requests are replaced by identities
//! (logged in at each run, passwords from the environment), and identities are proposed from
//! the principals the traffic shows ([`identities`]). What each kind sends and expects is in
//! [`kinds`]; a kind that cannot be built for an endpoint (no second identity for BOLA, no
//! JSON body for mass assignment) is skipped with a note saying why.

mod identities;
mod kinds;

use crate::spec::{self, IdentitiesFile, Severity, TestFile};
pub use identities::{Identities, LoginSeen};
use serde_json::Value;
use std::path::{Path, PathBuf};
use tapline_record::Transaction;
use tapline_store::CaseStore;
use tapline_store::endpoints::{Endpoint, Finding, FindingKind};
use tapline_store::query::{Page, SortKey, TxFilter};

/// What can be generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Identity B reads objects seen owned by identity A.
    Bola,
    /// A normal identity calls admin-only endpoints.
    Bfla,
    /// No credentials, forged and damaged tokens, weak signing keys.
    Auth,
    /// Payload lists into every parameter.
    Injection,
    /// Fields the responses show but requests never send.
    MassAssignment,
    /// Restricted data classes in responses.
    DataExposure,
    /// A bounded burst against login, expecting 429.
    RateLimit,
    /// Unknown user and wrong password answered alike.
    UserEnumeration,
    /// Security headers and CORS.
    Headers,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 9] = [
        Kind::Bola,
        Kind::Bfla,
        Kind::Auth,
        Kind::Injection,
        Kind::MassAssignment,
        Kind::DataExposure,
        Kind::RateLimit,
        Kind::UserEnumeration,
        Kind::Headers,
    ];

    /// The name on the command line and in file names.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bola => "bola",
            Kind::Bfla => "bfla",
            Kind::Auth => "auth",
            Kind::Injection => "injection",
            Kind::MassAssignment => "mass-assignment",
            Kind::DataExposure => "data-exposure",
            Kind::RateLimit => "rate-limit",
            Kind::UserEnumeration => "user-enumeration",
            Kind::Headers => "headers",
        }
    }

    /// How bad a failure of this kind is.
    pub fn severity(self) -> Severity {
        match self {
            Kind::Auth => Severity::Critical,
            Kind::Bola
            | Kind::Bfla
            | Kind::Injection
            | Kind::MassAssignment
            | Kind::DataExposure => Severity::High,
            Kind::RateLimit => Severity::Medium,
            Kind::UserEnumeration | Kind::Headers => Severity::Low,
        }
    }

    /// OWASP API Security Top 10 2023 and CWE ids.
    pub fn tags(self) -> &'static [&'static str] {
        match self {
            Kind::Bola => &["API1:2023", "CWE-639"],
            Kind::Bfla => &["API5:2023", "CWE-285"],
            Kind::Auth => &["API2:2023", "CWE-287", "CWE-347"],
            Kind::Injection => &["API8:2023", "CWE-74"],
            Kind::MassAssignment => &["API3:2023", "CWE-915"],
            Kind::DataExposure => &["API3:2023", "CWE-213"],
            Kind::RateLimit => &["API4:2023", "CWE-307"],
            Kind::UserEnumeration => &["API2:2023", "CWE-204"],
            Kind::Headers => &["API8:2023", "CWE-693", "CWE-942"],
        }
    }

    /// Reads a kind name.
    pub fn parse(s: &str) -> Option<Kind> {
        let s = s.trim().to_ascii_lowercase().replace('_', "-");
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The kinds a finding suggests testing.
    pub fn for_finding(kind: FindingKind) -> Vec<Kind> {
        match kind {
            FindingKind::Bola | FindingKind::Enumeration | FindingKind::Scraping => {
                vec![Kind::Bola]
            }
            FindingKind::BrokenAuthentication => vec![Kind::Auth],
            FindingKind::BruteForce | FindingKind::CredentialStuffing => {
                vec![Kind::RateLimit, Kind::UserEnumeration]
            }
            FindingKind::SensitiveDataExposed | FindingKind::ExcessiveDataExposure => {
                vec![Kind::DataExposure]
            }
            FindingKind::Attack(_) | FindingKind::ErrorSpike => vec![Kind::Injection],
            FindingKind::NewEndpoint | FindingKind::NewResponseField => Kind::ALL.to_vec(),
        }
    }
}

/// Which tests to build.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `GET /books/{id}` (method and template; any host). `None`: every endpoint.
    pub endpoint: Option<String>,
    /// Only these kinds; empty: all.
    pub kinds: Vec<Kind>,
    /// Build what this finding suggests, for its endpoint.
    pub finding: Option<i64>,
}

/// One generated test and its file name.
#[derive(Debug, Clone)]
pub struct GeneratedTest {
    /// `bola--get-api-v1-users-userid.yaml`.
    pub file_name: String,
    /// The test.
    pub test: TestFile,
}

/// What generation produced.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The tests.
    pub tests: Vec<GeneratedTest>,
    /// The identities they use, credentials as placeholders.
    pub identities: IdentitiesFile,
    /// The environment variables to fill (`ALICE_PASSWORD`), with what each is for.
    pub placeholders: Vec<(String, String)>,
    /// Kinds not built, and why.
    pub skipped: Vec<String>,
}

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The case could not be read.
    #[error(transparent)]
    Store(#[from] tapline_store::StoreError),
    /// The selection names nothing in the case.
    #[error("{0}")]
    Selection(String),
    /// The files could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Transactions of an endpoint read as samples.
const SAMPLES: u64 = 200;

/// An endpoint (merged across hosts) with its samples.
pub(crate) struct Target {
    pub method: String,
    pub template: String,
    pub details: Vec<Value>,
    pub samples: Vec<(i64, Transaction)>,
    pub findings: Vec<i64>,
}

impl Target {
    /// `get-api-v1-users-userid`.
    pub fn slug(&self) -> String {
        let mut s = self.method.to_ascii_lowercase();
        for c in self.template.chars() {
            if c.is_ascii_alphanumeric() {
                s.push(c.to_ascii_lowercase());
            } else if !s.ends_with('-') {
                s.push('-');
            }
        }
        s.trim_end_matches('-').to_owned()
    }

    /// `GET /api/v1/users/{userId}`.
    pub fn label(&self) -> String {
        format!("{} {}", self.method, self.template)
    }
}

/// Builds tests from `case` as `sel` asks.
pub fn generate(case: &CaseStore, sel: &Selection) -> Result<Generated, GenerateError> {
    let endpoints = case.endpoints()?;
    let findings = case.findings()?;
    let (wanted_endpoint, kinds) = resolve(sel, &endpoints, &findings)?;
    let targets = gather(case, &endpoints, &findings, wanted_endpoint.as_deref())?;
    if targets.is_empty() {
        return Err(GenerateError::Selection(match &wanted_endpoint {
            Some(e) => format!("no endpoint `{e}` in the case (see `tapline endpoints`)"),
            None => "the case has no endpoints yet: import traffic first".into(),
        }));
    }
    // Identities come from every login the case saw, not only the selected endpoints'.
    let all = if wanted_endpoint.is_some() {
        gather(case, &endpoints, &findings, None)?
    } else {
        Vec::new()
    };
    let ids = Identities::discover(if all.is_empty() { &targets } else { &all });
    let mut out = kinds::Builder::new(
        &ids,
        case.path(),
        if all.is_empty() { &targets } else { &all },
    );
    for t in &targets {
        for k in &kinds {
            out.build(*k, t);
        }
    }
    if kinds.contains(&Kind::Headers) {
        out.headers(&targets);
    }
    let (tests, skipped) = out.finish();
    let (identities, placeholders) = ids.file(&used_identities(&tests));
    Ok(Generated {
        tests,
        identities,
        placeholders,
        skipped,
    })
}

fn resolve(
    sel: &Selection,
    endpoints: &[Endpoint],
    findings: &[Finding],
) -> Result<(Option<String>, Vec<Kind>), GenerateError> {
    let mut kinds = sel.kinds.clone();
    let mut endpoint = sel.endpoint.clone();
    if let Some(id) = sel.finding {
        let f = findings.iter().find(|f| f.id == id).ok_or_else(|| {
            GenerateError::Selection(format!(
                "no finding {id} in the case (see `tapline findings`)"
            ))
        })?;
        if kinds.is_empty() {
            kinds = Kind::for_finding(f.kind);
        }
        if endpoint.is_none() {
            endpoint = f
                .endpoint_id
                .and_then(|e| endpoints.iter().find(|x| x.id == e))
                .map(|e| format!("{} {}", e.method, e.template));
        }
    }
    if kinds.is_empty() {
        kinds = Kind::ALL.to_vec();
    }
    Ok((endpoint.map(|e| normalise_endpoint(&e)), kinds))
}

/// `get  /books/{id}` → `GET /books/{id}`.
fn normalise_endpoint(e: &str) -> String {
    let mut parts = e.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(m), Some(t)) => format!("{} {t}", m.to_ascii_uppercase()),
        _ => e.trim().to_owned(),
    }
}

fn gather(
    case: &CaseStore,
    endpoints: &[Endpoint],
    findings: &[Finding],
    wanted: Option<&str>,
) -> Result<Vec<Target>, GenerateError> {
    let mut targets: Vec<Target> = Vec::new();
    for e in endpoints {
        let label = format!("{} {}", e.method, e.template);
        if wanted.is_some_and(|w| w != label) {
            continue;
        }
        // A template's literal siblings (`/users/me` beside `/users/{id}`) have their own
        // endpoints; a literal endpoint is its own path.
        let siblings: Vec<String> = endpoints
            .iter()
            .filter(|o| o.host == e.host && o.method == e.method && o.template != e.template)
            .filter(|o| e.template.contains('{') && !o.template.contains('{'))
            .map(|o| o.template.clone())
            .collect();
        let filter = TxFilter {
            host: Some(e.host.clone()),
            method: Some(e.method.clone()),
            template: Some(e.template.clone()),
            not_templates: siblings,
            ..TxFilter::default()
        };
        let page = Page {
            limit: SAMPLES,
            sort: SortKey::Time,
            descending: true,
            ..Page::default()
        };
        let mut samples = Vec::new();
        for row in case.query_transactions(&filter, &page)? {
            if let Some(tx) = case.transaction(row.id)? {
                samples.push((row.id, tx));
            }
        }
        samples.reverse();
        let detail = e
            .detail
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or(Value::Null);
        let found: Vec<i64> = findings
            .iter()
            .filter(|f| f.endpoint_id == Some(e.id))
            .map(|f| f.id)
            .collect();
        match targets
            .iter_mut()
            .find(|t| t.method == e.method && t.template == e.template)
        {
            Some(t) => {
                t.details.push(detail);
                t.samples.extend(samples);
                t.findings.extend(found);
            }
            None => targets.push(Target {
                method: e.method.clone(),
                template: e.template.clone(),
                details: vec![detail],
                samples,
                findings: found,
            }),
        }
    }
    Ok(targets)
}

fn used_identities(tests: &[GeneratedTest]) -> Vec<String> {
    let mut used: Vec<String> = tests
        .iter()
        .flat_map(|t| t.test.identities.clone())
        .collect();
    used.sort();
    used.dedup();
    used
}

/// Writes the tests, `identities.yaml` and `identities.env.example` into `dir`; returns the
/// files written.
pub fn write(dir: &Path, g: &Generated, case: &Path) -> Result<Vec<PathBuf>, GenerateError> {
    let err = |path: &Path| {
        let path = path.to_owned();
        move |source| GenerateError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    let mut written = Vec::new();
    for t in &g.tests {
        let path = dir.join(&t.file_name);
        let yaml = serde_saphyr::to_string(&t.test).map_err(|e| GenerateError::Write {
            path: path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let head = format!(
            "# Generated by `tapline test generate` from {}.\n# Edit freely: the runner reads what is here. Secrets stay in the environment.\n",
            case.display()
        );
        std::fs::write(&path, head + &yaml).map_err(err(&path))?;
        written.push(path);
    }
    let path = dir.join("identities.yaml");
    let yaml = serde_saphyr::to_string(&g.identities).map_err(|e| GenerateError::Write {
        path: path.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let head = "# Who the tests act as. Each run logs in afresh (captured tokens expire); fill the\n# variables in identities.env.example and pass it with --env-file.\n";
    std::fs::write(&path, format!("{head}{yaml}")).map_err(err(&path))?;
    written.push(path);
    let path = dir.join("identities.env.example");
    let mut env =
        String::from("# Fill these and pass the file with `tapline test run … --env-file`.\n");
    for (k, why) in &g.placeholders {
        env.push_str(&format!("# {why}\n{k}=\n"));
    }
    std::fs::write(&path, env).map_err(err(&path))?;
    written.push(path);
    Ok(written)
}

/// The test's provenance block.
pub(crate) fn provenance(case: &Path, t: &Target, txs: Vec<i64>) -> spec::Provenance {
    spec::Provenance {
        case: case.file_name().map(|n| n.to_string_lossy().into_owned()),
        endpoint: Some(t.label()),
        transactions: txs,
        findings: t.findings.clone(),
    }
}
