//! Running tests against a target: identities logged in once per run, steps and their
//! attempts in order, a request budget and a rate limit, and evidence for every verdict.
//!
//! A verdict is about the target, never about the run: a test whose requests got no answer,
//! whose templates name nothing or whose budget ran out is an [`Verdict::Error`] (the CLI's
//! exit 2), a failed setup step makes it [`Verdict::Inconclusive`], and only a failed check
//! step is a [`Verdict::Fail`] — a vulnerability.

use crate::exchange::{Answer, Client, Exchange, SentRequest};
use crate::judge::{self, Failure};
use crate::plan::{Attempts, Step, Test};
use crate::spec::{Identity, PassWhen, Role, Severity};
use crate::template::{Scope, TemplateError, render};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use url::Url;

/// How a run is made.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where every request goes.
    pub target: Url,
    /// `{{env.NAME}}` (and bare names no test defines): the env file over the process's.
    pub env: HashMap<String, String>,
    /// The identities tests act as (`as:`).
    pub identities: IndexMap<String, Identity>,
    /// Requests a second across the run, at most.
    pub rate: Option<f64>,
    /// Requests in the whole run, at most.
    pub max_requests: Option<u32>,
    /// Each request's time limit (a test's `timeout_ms` can lower it).
    pub timeout: Duration,
    /// Send, or only show.
    pub mode: Mode,
}

/// Whether requests are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // the variants and fields say what they are; messages explain
pub enum Mode {
    Send,
    /// Render every request (variables not known yet shown as `<name>`) and send nothing.
    DryRun,
}

/// What a test showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)] // the variants and fields say what they are; messages explain
pub enum Verdict {
    Pass,
    /// A check failed: the target allows what it should not.
    Fail,
    /// A setup step did not go as expected; nothing was shown either way.
    Inconclusive,
    /// The test could not run (no answer, a template error, the budget spent).
    Error,
    /// A dry run: nothing was sent.
    NotRun,
}

impl Verdict {
    /// The word used in reports and the case.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Error => "error",
            Verdict::NotRun => "not-run",
        }
    }
}

/// One attempt of a step: the exchange and what failed in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The payload this attempt sent, if any.
    pub payload: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The request and response.
    pub exchange: Option<Exchange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    /// Checks that did not hold.
    pub failures: Vec<Failure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Why the attempt had no answer.
    pub error: Option<String>,
}

/// One step's outcome. Evidence is kept for every failed attempt and the step's first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// The step's name.
    pub name: String,
    /// Setup or check.
    pub role: Role,
    /// Whether the step held (by its `pass_when`).
    pub passed: bool,
    /// Attempts made (some may not be kept in `attempts`).
    pub attempts_made: u32,
    /// The kept attempts.
    pub attempts: Vec<AttemptResult>,
}

/// One test's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    /// The test's id.
    pub id: String,
    /// The test's name.
    pub name: String,
    /// The file it came from.
    pub file: String,
    /// How bad a failure is.
    pub severity: Severity,
    /// OWASP and CWE ids and words.
    pub tags: Vec<String>,
    /// The outcome.
    pub verdict: Verdict,
    /// Why, in one line (the first failure, the error, the failed setup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What each step did.
    pub steps: Vec<StepResult>,
    /// Wall time of the test.
    pub duration_ms: f64,
}

impl TestResult {
    /// The failed attempts with their step, in order.
    pub fn failed_attempts(&self) -> impl Iterator<Item = (&StepResult, &AttemptResult)> {
        self.steps.iter().filter(|s| !s.passed).flat_map(|s| {
            s.attempts
                .iter()
                .filter(|a| !a.failures.is_empty() || a.error.is_some())
                .map(move |a| (s, a))
        })
    }
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The target URL.
    pub target: String,
    /// Milliseconds since the epoch.
    pub started_ms: i64,
    /// Wall time of the run.
    pub duration_ms: f64,
    /// Requests sent (logins included).
    pub requests: u32,
    /// Every test's result, in run order.
    pub tests: Vec<TestResult>,
}

impl RunReport {
    /// How many tests ended with `v`.
    pub fn count(&self, v: Verdict) -> usize {
        self.tests.iter().filter(|t| t.verdict == v).count()
    }

    /// `3 passed, 1 failed, 0 inconclusive, 0 error(s); 12 request(s) in 0.4 s`.
    pub fn summary(&self) -> String {
        format!(
            "{} passed, {} failed, {} inconclusive, {} error(s); {} request(s) in {:.1} s",
            self.count(Verdict::Pass),
            self.count(Verdict::Fail),
            self.count(Verdict::Inconclusive),
            self.count(Verdict::Error),
            self.requests,
            self.duration_ms / 1000.0
        )
    }

    /// The CLI's exit code: 2 when a test could not run, 1 when a test at or above `fail_on`
    /// failed, else 0.
    pub fn exit_code(&self, fail_on: Severity) -> i32 {
        if self.count(Verdict::Error) > 0 {
            2
        } else if self
            .tests
            .iter()
            .any(|t| t.verdict == Verdict::Fail && t.severity >= fail_on)
        {
            1
        } else {
            0
        }
    }
}

/// What the runner is doing, for progress displays.
#[derive(Debug)]
#[allow(missing_docs)] // the variants and fields say what they are; messages explain
pub enum Progress<'a> {
    Started {
        index: usize,
        total: usize,
        test: &'a Test,
    },
    Finished {
        index: usize,
        total: usize,
        result: &'a TestResult,
    },
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // the variants and fields say what they are; messages explain
pub enum RunError {
    #[error("cannot set up the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("the target `{0}` must be an http:// or https:// URL")]
    Target(String),
}

/// Runs `tests` in order; `stop` ends the run early (the remaining tests are errors).
pub fn run(
    tests: &[Test],
    opts: &RunOptions,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<RunReport, RunError> {
    if !matches!(opts.target.scheme(), "http" | "https") || opts.target.host().is_none() {
        return Err(RunError::Target(opts.target.to_string()));
    }
    let started = Instant::now();
    let started_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut runner = Runner {
        client: Client::new(opts.target.clone(), opts.timeout)?,
        opts,
        sent: 0,
        last_sent: None,
        sessions: HashMap::new(),
        unique: unique_token(),
    };
    let total = tests.len();
    let mut results = Vec::with_capacity(total);
    for (index, test) in tests.iter().enumerate() {
        progress(Progress::Started { index, total, test });
        let result = if stop.load(Ordering::Acquire) {
            TestResult::error(
                test,
                "the run was stopped before this test".into(),
                Vec::new(),
                0.0,
            )
        } else {
            runner.test(test, stop)
        };
        progress(Progress::Finished {
            index,
            total,
            result: &result,
        });
        results.push(result);
    }
    Ok(RunReport {
        target: opts.target.to_string(),
        started_ms,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        requests: runner.sent,
        tests: results,
    })
}

impl TestResult {
    fn error(test: &Test, reason: String, steps: Vec<StepResult>, duration_ms: f64) -> TestResult {
        TestResult {
            id: test.id.clone(),
            name: test.meta.name.clone(),
            file: test.file.display().to_string(),
            severity: test.meta.severity,
            tags: test.meta.tags.clone(),
            verdict: Verdict::Error,
            reason: Some(reason),
            steps,
            duration_ms,
        }
    }
}

/// An identity after its login.
#[derive(Debug, Clone)]
struct Session {
    headers: Vec<(String, String)>,
    vars: HashMap<String, String>,
}

struct Runner<'a> {
    client: Client,
    opts: &'a RunOptions,
    sent: u32,
    last_sent: Option<Instant>,
    /// Logged in once per run; a failed login is remembered, not retried per test.
    sessions: HashMap<String, Result<Session, String>>,
    /// `{{unique}}`: the same all run long, different from any other run's (names of objects
    /// a test creates, so a rerun does not collide with the last run's).
    unique: String,
}

/// Why a test stopped before its verdict.
enum Halt {
    Error(String),
}

/// A test's own limits over the run's.
struct Limits {
    budget: Option<u32>,
    interval: Option<Duration>,
    /// The test's `timeout_ms`, when lower than the run's.
    timeout: Option<Duration>,
    used: u32,
}

impl Runner<'_> {
    fn test(&mut self, test: &Test, stop: &AtomicBool) -> TestResult {
        let started = Instant::now();
        let rate = match (self.opts.rate, test.options.rate) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut limits = Limits {
            budget: test.options.max_requests,
            interval: rate
                .filter(|r| *r > 0.0)
                .map(|r| Duration::from_secs_f64(1.0 / r)),
            timeout: test
                .options
                .timeout_ms
                .map(Duration::from_millis)
                .filter(|t| *t < self.opts.timeout),
            used: 0,
        };
        let mut locals: HashMap<String, String> = HashMap::new();
        let mut baselines: Vec<Option<judge::Baseline>> = Vec::with_capacity(test.steps.len());
        let mut steps = Vec::with_capacity(test.steps.len());
        let mut failed: Option<String> = None;
        let mut inconclusive: Option<String> = None;
        for step in &test.steps {
            if stop.load(Ordering::Acquire) {
                return self.finish(
                    test,
                    steps,
                    failed,
                    inconclusive,
                    Some("the run was stopped".into()),
                    started,
                );
            }
            let outcome = self.step(test, step, &mut locals, &baselines, &mut limits);
            let (result, baseline) = match outcome {
                Ok(r) => r,
                Err((Halt::Error(why), partial)) => {
                    steps.extend(partial);
                    let why = format!("step `{}`: {why}", step.name);
                    return self.finish(test, steps, failed, inconclusive, Some(why), started);
                }
            };
            baselines.push(baseline);
            let passed = result.passed;
            let first_failure = result
                .attempts
                .iter()
                .find_map(|a| a.failures.first())
                .map(|f| format!("step `{}`: {f}", step.name));
            steps.push(result);
            if passed || self.opts.mode == Mode::DryRun {
                continue;
            }
            match step.role {
                Role::Setup => {
                    inconclusive = first_failure
                        .or_else(|| Some(format!("setup step `{}` failed", step.name)));
                    break;
                }
                Role::Check => {
                    failed = failed.or(first_failure);
                    if test.options.stop_on_failure {
                        break;
                    }
                }
            }
        }
        self.finish(test, steps, failed, inconclusive, None, started)
    }

    fn finish(
        &self,
        test: &Test,
        steps: Vec<StepResult>,
        failed: Option<String>,
        inconclusive: Option<String>,
        error: Option<String>,
        started: Instant,
    ) -> TestResult {
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        // A shown vulnerability stands even if the test could not finish.
        let (verdict, reason) = match (failed, error, inconclusive) {
            (Some(f), _, _) => (Verdict::Fail, Some(f)),
            (None, Some(e), _) => return TestResult::error(test, e, steps, ms),
            (None, None, Some(i)) => (Verdict::Inconclusive, Some(i)),
            (None, None, None) if self.opts.mode == Mode::DryRun => (Verdict::NotRun, None),
            (None, None, None) => (Verdict::Pass, None),
        };
        TestResult {
            id: test.id.clone(),
            name: test.meta.name.clone(),
            file: test.file.display().to_string(),
            severity: test.meta.severity,
            tags: test.meta.tags.clone(),
            verdict,
            reason,
            steps,
            duration_ms: ms,
        }
    }

    /// Runs every attempt of a step; returns its result and its baseline body.
    #[allow(clippy::type_complexity)]
    fn step(
        &mut self,
        test: &Test,
        step: &Step,
        locals: &mut HashMap<String, String>,
        baselines: &[Option<judge::Baseline>],
        limits: &mut Limits,
    ) -> Result<(StepResult, Option<judge::Baseline>), (Halt, Option<StepResult>)> {
        let identity = match &step.identity {
            // A dry run logs nobody in: it sends nothing.
            Some(name) if name != "anonymous" && self.opts.mode == Mode::Send => {
                match self.session(name, limits) {
                    Ok(s) => Some(s),
                    Err(e) => return Err((Halt::Error(e), None)),
                }
            }
            _ => None,
        };
        let mut result = StepResult {
            name: step.name.clone(),
            role: step.role,
            passed: false,
            attempts_made: 0,
            attempts: Vec::new(),
        };
        let mut baseline = None;
        let mut any_passed = false;
        let mut all_passed = true;
        for i in 0..step.attempts.count() {
            let payload = match &step.attempts {
                Attempts::Payloads { var, values } => {
                    locals.insert(var.clone(), values[i].clone());
                    Some(values[i].clone())
                }
                _ => None,
            };
            let attempt = self.attempt(test, step, locals, identity.as_ref(), baselines, limits);
            result.attempts_made += 1;
            let (mut kept, answer) = match attempt {
                Ok(x) => x,
                Err(why) => {
                    result.attempts.push(AttemptResult {
                        payload,
                        exchange: None,
                        failures: Vec::new(),
                        error: Some(why.clone()),
                    });
                    return Err((Halt::Error(why), Some(result)));
                }
            };
            kept.payload = payload;
            let ok = kept.failures.is_empty();
            any_passed |= ok;
            all_passed &= ok;
            if baseline.is_none() {
                baseline = answer.map(|a| judge::Baseline {
                    duration_ms: a.duration.as_secs_f64() * 1000.0,
                    body: a.body,
                });
            }
            if !ok || i == 0 {
                result.attempts.push(kept);
            }
        }
        result.passed = match step.pass_when {
            PassWhen::EveryAttempt => all_passed,
            PassWhen::AnyAttempt => any_passed,
        };
        Ok((result, baseline))
    }

    /// One request of a step: render, send, extract, judge.
    fn attempt(
        &mut self,
        test: &Test,
        step: &Step,
        locals: &mut HashMap<String, String>,
        identity: Option<&Session>,
        baselines: &[Option<judge::Baseline>],
        limits: &mut Limits,
    ) -> Result<(AttemptResult, Option<Answer>), String> {
        let dry = self.opts.mode == Mode::DryRun;
        let scope = TestScope {
            unique: &self.unique,
            locals,
            test,
            run: self.opts,
            sessions: &self.sessions,
            dry,
        };
        let mut req = build_request(&step.request, &scope).map_err(|e| e.to_string())?;
        if let Some(s) = identity {
            apply_identity(&mut req, s);
        } else if dry && let Some(name) = step.identity.as_deref().filter(|n| *n != "anonymous") {
            req.headers.push((
                "(credentials)".into(),
                format!("<{name}'s headers after login>"),
            ));
        }
        let shown = mask(&req, identity);
        if dry {
            let exchange = Exchange {
                request: shown,
                response: None,
                duration_ms: 0.0,
            };
            return Ok((
                AttemptResult {
                    payload: None,
                    exchange: Some(exchange),
                    failures: Vec::new(),
                    error: None,
                },
                None,
            ));
        }
        self.admit(limits)?;
        let answer = self
            .client
            .send(&req, limits.timeout)
            .map_err(|e| e.to_string())?;
        let exchange = Exchange {
            request: shown,
            response: Some(answer.received()),
            duration_ms: answer.duration.as_secs_f64() * 1000.0,
        };
        let mut failures = Vec::new();
        for x in &step.extract {
            match judge::extract(&x.source, &answer) {
                Some(v) => {
                    locals.insert(x.name.clone(), v);
                }
                None => failures.push(Failure {
                    expected: format!("a value for `{}` ({:?})", x.name, x.source),
                    got: "nothing".into(),
                }),
            }
        }
        let payload = match &step.attempts {
            Attempts::Payloads { var, .. } => locals.get(var).cloned(),
            _ => None,
        };
        let cx = judge::Context {
            baselines,
            payload: payload.as_deref(),
        };
        let scope = TestScope {
            unique: &self.unique,
            locals,
            test,
            run: self.opts,
            sessions: &self.sessions,
            dry,
        };
        failures
            .extend(judge::judge(&step.checks, &answer, &scope, &cx).map_err(|e| e.to_string())?);
        Ok((
            AttemptResult {
                payload: None,
                exchange: Some(exchange),
                failures,
                error: None,
            },
            Some(answer),
        ))
    }

    /// Waits for the rate limit and takes a request from the budgets.
    fn admit(&mut self, limits: &mut Limits) -> Result<(), String> {
        if let Some(max) = self.opts.max_requests
            && self.sent >= max
        {
            return Err(format!("the run's request budget ({max}) is spent"));
        }
        if let Some(max) = limits.budget
            && limits.used >= max
        {
            return Err(format!("the test's request budget ({max}) is spent"));
        }
        if let (Some(every), Some(last)) = (limits.interval, self.last_sent) {
            let wait = every.saturating_sub(last.elapsed());
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
        }
        self.last_sent = Some(Instant::now());
        self.sent += 1;
        limits.used += 1;
        Ok(())
    }

    /// The identity's session, logging in the first time.
    fn session(&mut self, name: &str, limits: &mut Limits) -> Result<Session, String> {
        if let Some(s) = self.sessions.get(name) {
            return s.clone();
        }
        let s = self.login(name, limits);
        self.sessions.insert(name.to_owned(), s.clone());
        s
    }

    fn login(&mut self, name: &str, limits: &mut Limits) -> Result<Session, String> {
        let Some(def) = self.opts.identities.get(name).cloned() else {
            return Err(format!(
                "identity `{name}` is not in the identities file (--identities); defined: {}",
                self.opts
                    .identities
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        let mut vars = HashMap::new();
        if let Some(login) = &def.login {
            let scope = RunScope {
                unique: &self.unique,
                run: self.opts,
                vars: &vars,
            };
            let req = build_request(&login.request, &scope)
                .map_err(|e| format!("identity `{name}`'s login: {e}"))?;
            self.admit(limits)?;
            let answer = self
                .client
                .send(&req, limits.timeout)
                .map_err(|e| format!("identity `{name}`'s login: {e}"))?;
            if !(200..300).contains(&answer.status) {
                return Err(format!(
                    "identity `{name}`'s login answered {} (check its credentials)",
                    answer.status
                ));
            }
            for x in &login.extract {
                let source = crate::load::extraction_of(x.clone())?.source;
                let v = judge::extract(&source, &answer).ok_or_else(|| {
                    format!("identity `{name}`'s login answer has no `{}`", x.name)
                })?;
                vars.insert(x.name.clone(), v);
            }
        }
        let scope = RunScope {
            unique: &self.unique,
            run: self.opts,
            vars: &vars,
        };
        let headers = def
            .headers
            .iter()
            .map(|(n, v)| Ok((n.clone(), render(v, &scope)?)))
            .collect::<Result<_, TemplateError>>()
            .map_err(|e| format!("identity `{name}`'s headers: {e}"))?;
        Ok(Session { headers, vars })
    }
}

/// A run's `{{unique}}`: time and process, in base 36 (short, and valid in names and e-mails).
fn unique_token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut n = (nanos ^ (u128::from(std::process::id()) << 64)) % 36u128.pow(10);
    let mut out = String::from("t");
    for _ in 0..10 {
        let d = (n % 36) as u32;
        out.push(char::from_digit(d, 36).unwrap_or('0'));
        n /= 36;
    }
    out
}

/// Renders a request's templates into what is sent.
fn build_request(
    r: &crate::spec::Request,
    scope: &dyn Scope,
) -> Result<SentRequest, TemplateError> {
    let mut url = render(&r.url, scope)?;
    if !r.query.is_empty() {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &r.query {
            q.append_pair(&render(k, scope)?, &render(v, scope)?);
        }
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&q.finish());
    }
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        .map(|(n, v)| Ok((render(n, scope)?, render(v, scope)?)))
        .collect::<Result<_, TemplateError>>()?;
    let has = |h: &[(String, String)], n: &str| h.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    let body = if let Some(b) = &r.body {
        Some(render(b, scope)?)
    } else if let Some(j) = &r.json {
        if !has(&headers, "content-type") {
            headers.push(("Content-Type".into(), "application/json".into()));
        }
        let rendered = j.try_map_strings(&|s| render(s, scope))?;
        Some(serde_json::to_string(&rendered).unwrap_or_default())
    } else if !r.form.is_empty() {
        if !has(&headers, "content-type") {
            headers.push((
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            ));
        }
        let mut f = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &r.form {
            f.append_pair(&render(k, scope)?, &render(v, scope)?);
        }
        Some(f.finish())
    } else {
        None
    };
    Ok(SentRequest {
        method: r.method.trim().to_ascii_uppercase(),
        url,
        headers,
        body,
    })
}

/// The identity's headers replace the request's of the same name.
fn apply_identity(req: &mut SentRequest, s: &Session) {
    for (n, v) in &s.headers {
        req.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(n));
        req.headers.push((n.clone(), v.clone()));
    }
}

/// The request as kept in evidence: an identity's credentials shortened.
fn mask(req: &SentRequest, identity: Option<&Session>) -> SentRequest {
    let mut shown = req.clone();
    if let Some(s) = identity {
        for (n, v) in &mut shown.headers {
            if s.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n)) {
                let keep: String = v.chars().take(12).collect();
                *v = format!("{keep}…(masked)");
            }
        }
    }
    shown
}

/// Names in a test: its locals (payload, extracted), its env, identities' login variables,
/// the target and the run's environment.
struct TestScope<'a> {
    unique: &'a str,
    locals: &'a HashMap<String, String>,
    test: &'a Test,
    run: &'a RunOptions,
    sessions: &'a HashMap<String, Result<Session, String>>,
    dry: bool,
}

impl Scope for TestScope<'_> {
    fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        if let Some(v) = self.locals.get(name) {
            return Some(Cow::Borrowed(v));
        }
        if let Some(v) = self.test.env.get(name) {
            // Env values may refer to the run's environment.
            let run = RunScope {
                unique: self.unique,
                run: self.run,
                vars: self.locals,
            };
            return render(v, &run).ok().map(Cow::Owned);
        }
        if let Some(rest) = name.strip_prefix("identity.")
            && let Some((who, var)) = rest.split_once('.')
            && let Some(Ok(s)) = self.sessions.get(who)
            && let Some(v) = s.vars.get(var)
        {
            return Some(Cow::Owned(v.clone()));
        }
        let run = RunScope {
            unique: self.unique,
            run: self.run,
            vars: self.locals,
        };
        run.get(name)
            .map(|v| Cow::Owned(v.into_owned()))
            .or_else(|| self.dry.then(|| Cow::Owned(format!("<{name}>"))))
    }

    fn hint(&self) -> &'static str {
        " (not extracted by an earlier step, not under `env:`, not in the environment or --env-file)"
    }
}

/// Names outside a test: a login's variables, the target, the run's environment.
struct RunScope<'a> {
    unique: &'a str,
    run: &'a RunOptions,
    vars: &'a HashMap<String, String>,
}

impl Scope for RunScope<'_> {
    fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        if let Some(v) = self.vars.get(name) {
            return Some(Cow::Borrowed(v));
        }
        if name == "unique" {
            return Some(Cow::Borrowed(self.unique));
        }
        if name == "target" {
            return Some(Cow::Owned(
                self.run.target.as_str().trim_end_matches('/').to_owned(),
            ));
        }
        let key = name
            .strip_prefix("env.")
            .or_else(|| name.strip_prefix("global."))
            .unwrap_or(name);
        self.run.env.get(key).map(|v| Cow::Borrowed(v.as_str()))
    }

    fn hint(&self) -> &'static str {
        " (set it in the environment or the --env-file)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    /// A loopback HTTP/1.1 server: `/away` redirects to `elsewhere`, everything else is 200.
    /// Counts the requests it answered.
    fn server(elsewhere: String) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let count = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&count);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                seen.fetch_add(1, Ordering::SeqCst);
                if head.starts_with(b"GET /slow") {
                    std::thread::sleep(Duration::from_millis(1500));
                }
                let answer = if head.starts_with(b"GET /away") {
                    format!(
                        "HTTP/1.1 302 Found\r\nLocation: {elsewhere}/stolen\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                } else {
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_owned()
                };
                let _ = s.write_all(answer.as_bytes());
            }
        });
        (url, count)
    }

    fn test(steps: &str) -> Test {
        let text = format!(
            "version: tapline-test/1\nid: t\nmeta: {{name: t, severity: low}}\nsteps:\n{steps}"
        );
        crate::load::parse(std::path::Path::new("t.yaml"), &text).unwrap()
    }

    fn options(target: &str) -> RunOptions {
        RunOptions {
            target: Url::parse(target).unwrap(),
            env: HashMap::new(),
            identities: IndexMap::new(),
            rate: None,
            max_requests: None,
            timeout: Duration::from_secs(5),
            mode: Mode::Send,
        }
    }

    fn go(t: &Test, opts: &RunOptions) -> RunReport {
        run(
            std::slice::from_ref(t),
            opts,
            &AtomicBool::new(false),
            &mut |_| {},
        )
        .unwrap()
    }

    #[test]
    fn redirects_off_the_target_are_not_followed() {
        let (other, other_count) = server(String::new());
        let (target, _) = server(other);
        let t = test("  - request: {method: GET, url: /away}\n    assert: [{status: 302}]\n");
        let r = go(&t, &options(&target));
        assert_eq!(r.tests[0].verdict, Verdict::Pass, "{:?}", r.tests[0]);
        assert_eq!(
            other_count.load(Ordering::SeqCst),
            0,
            "the other origin was contacted"
        );
    }

    #[test]
    fn the_request_budget_ends_the_test_as_an_error_not_a_verdict() {
        let (target, count) = server(String::new());
        let t = test(
            "  - repeat: 5\n    request: {method: GET, url: /}\n    assert: [{status: 200}]\n",
        );
        let mut opts = options(&target);
        opts.max_requests = Some(3);
        let r = go(&t, &opts);
        assert_eq!(r.tests[0].verdict, Verdict::Error);
        assert!(
            r.tests[0].reason.as_deref().unwrap().contains("budget (3)"),
            "{:?}",
            r.tests[0].reason
        );
        assert_eq!(count.load(Ordering::SeqCst), 3);
        assert_eq!(r.exit_code(Severity::Low), 2);
    }

    #[test]
    fn a_test_s_own_timeout_bounds_its_requests() {
        let (target, _) = server(String::new());
        let text = "version: tapline-test/1\nid: t\nmeta: {name: t, severity: low}\noptions: {timeout_ms: 200}\nsteps:\n  - request: {method: GET, url: /slow}\n";
        let t = crate::load::parse(std::path::Path::new("t.yaml"), text).unwrap();
        let started = Instant::now();
        let r = go(&t, &options(&target));
        assert_eq!(r.tests[0].verdict, Verdict::Error);
        assert!(
            started.elapsed() < Duration::from_millis(1200),
            "{:?}",
            started.elapsed()
        );
        assert!(
            r.tests[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("did not answer"),
            "{:?}",
            r.tests[0].reason
        );
    }

    #[test]
    fn the_rate_limit_spaces_requests() {
        let (target, _) = server(String::new());
        let t = test(
            "  - repeat: 5\n    request: {method: GET, url: /}\n    assert: [{status: 200}]\n",
        );
        let mut opts = options(&target);
        opts.rate = Some(20.0);
        let started = Instant::now();
        let r = go(&t, &opts);
        assert_eq!(r.tests[0].verdict, Verdict::Pass);
        // Five requests at 20 a second: four gaps of 50 ms.
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_failed_setup_is_inconclusive_and_a_failed_check_a_failure() {
        let (target, _) = server(String::new());
        let setup = test(
            "  - role: setup\n    request: {method: GET, url: /}\n    assert: [{status: 404}]\n  - request: {method: GET, url: /}\n    assert: [{status: 200}]\n",
        );
        let r = go(&setup, &options(&target));
        assert_eq!(r.tests[0].verdict, Verdict::Inconclusive);
        assert_eq!(r.exit_code(Severity::Low), 0);
        let check = test("  - request: {method: GET, url: /}\n    assert: [{status: 4xx}]\n");
        let r = go(&check, &options(&target));
        assert_eq!(r.tests[0].verdict, Verdict::Fail);
        assert_eq!(r.exit_code(Severity::Low), 1);
        assert_eq!(r.exit_code(Severity::High), 0, "below --fail-on");
    }
}
