//! The case's query worker: one thread with its own connection to the open case answers the
//! views' questions, so no frame ever waits on DuckDB.
//!
//! Requests are keyed by [`Slot`]; when several requests for one slot queue up while the
//! worker is busy (a filter typed quickly, a table scrolled fast), only the newest runs. Every
//! reply carries its request's serial; the UI drops replies it no longer wants.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tapline_analysis::profile::EndpointProfile;
use tapline_record::time::now_nanos as now_ns;
use tapline_store::CaseStore;
use tapline_store::alerts::{AlertSink, SinkKind};
use tapline_store::endpoints::Severity;
use tapline_store::endpoints::{Endpoint, Finding};
use tapline_store::query::{Page, TxFilter, TxRow};
use tapline_store::sensors::SensorRow;
use tapline_store::test_runs::{TestRun, TestVerdict};

/// Which answer a request fills; a newer request for the same slot supersedes an older one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    /// The overview's figures, with the inventory they summarise.
    Overview,
    /// Enrolled sensors.
    Sensors,
    /// The traffic table's row count.
    TxCount,
    /// One page of the traffic table (its index).
    TxPage(u64),
    /// The transaction shown in the detail pane.
    Transaction,
    /// A finding's evidence rows.
    Evidence,
    /// Example values of a data class.
    Examples,
    /// Security-test runs kept in the case.
    TestRuns,
    /// The Block rules view's data.
    Blocks,
    /// A draft rule's replayed effect.
    Preview,
    /// A one-off write (enrolment, revocation, export), by its serial: every action is its own
    /// slot, so none is ever superseded.
    Action(u64),
}

/// What to fetch or do.
#[derive(Clone, Debug)]
pub enum Query {
    /// [`Overview`] and the [`Inventory`] it is drawn from (read once for both).
    Overview,
    /// Every enrolled sensor.
    Sensors,
    /// How many transactions match.
    TxCount(TxFilter),
    /// One page of matching transactions.
    TxPage(TxFilter, Page),
    /// One whole transaction.
    Transaction(i64),
    /// List rows of these transactions (at most [`EVIDENCE_ROWS`]), in time order.
    Evidence(Vec<i64>),
    /// Values of `class` at `location` in the first transactions matching `filter` and in
    /// `ids`, for the sensitive-data view.
    Examples {
        /// Transactions to rescan (known carriers: each location's first transaction).
        ids: Vec<i64>,
        /// More transactions to rescan: the first [`EXAMPLE_SCAN`] that match.
        filter: TxFilter,
        /// Data class name.
        class: String,
        /// Location (`response.body.email`); `None` for any.
        location: Option<String>,
    },
    /// Enrol a sensor and write its configuration file.
    Enrol {
        /// Its name.
        name: String,
        /// The address sensors dial (`workbench.example:4433`).
        hub: String,
        /// The workbench identity directory.
        identity: std::path::PathBuf,
        /// Where its configuration goes.
        output: std::path::PathBuf,
    },
    /// Revoke a sensor by name.
    Revoke(String),
    /// Send findings of `min` severity and above to `target`.
    AddAlertSink {
        /// What kind of destination.
        kind: SinkKind,
        /// Where.
        target: String,
        /// The lowest severity sent.
        min: Severity,
    },
    /// Stop sending to a destination.
    RemoveAlertSink(i64),
    /// Write the inventory as OpenAPI 3 JSON.
    ExportOpenApi(std::path::PathBuf),
    /// The security-test runs, and the newest run's verdicts.
    TestRuns,
    /// Write tests built from the case's traffic into `dir`.
    GenerateTests {
        /// Only this endpoint (`GET /books/{id}`).
        endpoint: Option<String>,
        /// What this finding suggests, for its endpoint.
        finding: Option<i64>,
        /// Where the files go.
        dir: std::path::PathBuf,
    },
    /// Keep a test run in the case.
    RecordTestRun(Arc<tapline_sectest::run::RunReport>),
    /// Rules, their measured effect, the allowlist, agents, the audit log.
    Blocks,
    /// What a draft rule would have blocked in the recorded traffic.
    Preview(Box<tapline_store::blocks::NewRule>),
    /// Saves a rule (after its preview).
    AddRule(Box<tapline_store::blocks::NewRule>),
    /// Removes a rule.
    RemoveRule(i64),
    /// Allowlists a value.
    Allow(tapline_store::blocks::MatchKind, String),
}

/// What the Block rules view shows.
#[derive(Clone, Debug, Default)]
pub struct Blocks {
    /// Every rule, newest first.
    pub rules: Vec<tapline_store::blocks::Rule>,
    /// Replayed effect per rule id.
    pub effects: BTreeMap<i64, tapline_enforce::replay::Effect>,
    /// Requests agents refused per rule (block, monitor).
    pub hits: BTreeMap<i64, (u64, u64)>,
    /// The allowlist.
    pub allow: Vec<tapline_store::blocks::Allow>,
    /// The audit log, newest first.
    pub audit: Vec<tapline_store::blocks::AuditEntry>,
    /// Enforcement agents.
    pub agents: Vec<tapline_store::agents::Agent>,
    /// Automatic rules (id, name, spec).
    pub auto: Vec<(i64, String, String)>,
}

/// Security-test runs (newest first) and the newest run's verdicts.
pub type TestHistory = (Arc<Vec<TestRun>>, Arc<Vec<TestVerdict>>);

/// Transactions the examples query rescans beyond the known carriers.
pub const EXAMPLE_SCAN: u64 = 30;

/// The most evidence rows a finding's detail loads.
pub const EVIDENCE_ROWS: usize = 2_000;

/// The overview's figures.
#[derive(Clone, Debug, Default)]
pub struct Overview {
    /// Transactions in the case.
    pub transactions: u64,
    /// Earliest and latest request, ns.
    pub span_ns: Option<(i64, i64)>,
    /// Width of a histogram bucket, ns.
    pub bucket_ns: i64,
    /// (bucket start ns, transactions).
    pub histogram: Vec<(i64, u64)>,
    /// Transactions per status class: 1xx … 5xx, then "no response".
    pub status_classes: [u64; 6],
    /// Endpoints in the inventory.
    pub endpoints: usize,
    /// The busiest endpoints: (id, "GET host/path", transactions).
    pub top_endpoints: Vec<(i64, String, u64)>,
    /// Findings per severity, most severe first: (severity, count).
    pub severities: Vec<(Severity, u64)>,
    /// The most severe findings: (id, severity, title).
    pub top_findings: Vec<(i64, Severity, String)>,
    /// Data classes: (class, endpoints carrying it, transactions).
    pub data_classes: Vec<(String, usize, u64)>,
    /// Imported files and their transaction counts.
    pub sources: Vec<(String, u64)>,
}

/// An endpoint with its profile read.
#[derive(Clone, Debug)]
pub struct EndpointView {
    /// The row (its `detail` JSON dropped: `profile` holds it, typed).
    pub endpoint: Endpoint,
    /// `GET host/path/{id}`.
    pub label: String,
    /// Statistics, schemas and data classes (empty when the detail could not be read).
    pub profile: EndpointProfile,
    /// Findings about it: indexes into [`Inventory::findings`].
    pub findings: Vec<usize>,
}

impl EndpointView {
    /// Transactions that carried `class` here (the most at any one location).
    pub fn class_count(&self, class: &str) -> u64 {
        self.profile
            .data_classes
            .get(class)
            .map_or(0, |locs| locs.values().map(|d| d.count).max().unwrap_or(0))
    }
}

/// The inventory and the findings, read together: most views need both.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    /// Endpoints, busiest first.
    pub endpoints: Vec<EndpointView>,
    /// Findings, most severe first.
    pub findings: Vec<Finding>,
    /// Data classes seen anywhere, sorted.
    pub classes: Vec<String>,
}

impl Inventory {
    /// The endpoint with row id `id`.
    pub fn endpoint(&self, id: i64) -> Option<&EndpointView> {
        self.endpoints.iter().find(|e| e.endpoint.id == id)
    }

    /// The finding with row id `id`.
    pub fn finding(&self, id: i64) -> Option<&Finding> {
        self.findings.iter().find(|f| f.id == id)
    }
}

/// One example value of a data class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    /// The transaction it is in.
    pub tx: i64,
    /// Where.
    pub location: String,
    /// The whole value the hit is in.
    pub value: String,
    /// The hit's byte span in `value`.
    pub span: (usize, usize),
    /// low/medium/high.
    pub confidence: String,
}

/// An answer.
#[derive(Clone, Debug)]
pub enum Answer {
    /// For [`Query::Overview`].
    Overview(Arc<Overview>, Arc<Inventory>),
    /// For [`Query::Sensors`]: the sensors and where alerts go.
    Sensors(Arc<Vec<SensorRow>>, Arc<Vec<AlertSink>>),
    /// For [`Query::TxCount`].
    TxCount(u64),
    /// For [`Query::TxPage`].
    TxPage(Vec<TxRow>),
    /// For [`Query::Transaction`] (`None`: no such id).
    Transaction(Option<Arc<tapline_record::Transaction>>),
    /// For [`Query::Evidence`].
    Evidence(Arc<Vec<TxRow>>),
    /// For [`Query::Examples`].
    Examples(Arc<Vec<Example>>),
    /// For [`Query::TestRuns`]: runs newest first, the newest run's verdicts.
    TestRuns(TestHistory),
    /// For [`Query::Blocks`].
    Blocks(Arc<Blocks>),
    /// For [`Query::Preview`].
    Preview(Arc<tapline_enforce::replay::Effect>),
    /// For the actions: what happened, for people.
    Done(String),
}

/// A request as sent.
#[derive(Debug)]
struct Request {
    slot: Slot,
    serial: u64,
    query: Query,
}

/// A reply.
#[derive(Debug)]
pub struct Reply {
    /// Its request's slot.
    pub slot: Slot,
    /// Its request's serial.
    pub serial: u64,
    /// How long the query took.
    pub took: Duration,
    /// The answer, or why there is none.
    pub answer: Result<Answer, String>,
}

/// The UI's end of the query worker.
pub struct Backend {
    requests: Option<mpsc::Sender<Request>>,
    replies: mpsc::Receiver<Reply>,
    thread: Option<std::thread::JoinHandle<()>>,
    serial: u64,
}

impl Backend {
    /// Starts the worker on `store` (a connection of the UI's own); `notify` runs after each
    /// reply (the GUI passes `ctx.request_repaint`).
    pub fn start(store: CaseStore, notify: impl Fn() + Send + 'static) -> std::io::Result<Self> {
        let (requests, rx) = mpsc::channel::<Request>();
        let (tx, replies) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("case-queries".into())
            .spawn(move || worker(&store, &rx, &tx, &notify))?;
        Ok(Backend {
            requests: Some(requests),
            replies,
            thread: Some(thread),
            serial: 0,
        })
    }

    /// Queues `query` for `slot`; returns its serial.
    pub fn request(&mut self, slot: Slot, query: Query) -> u64 {
        self.serial += 1;
        if let Some(r) = &self.requests {
            // A send fails only once the worker has gone, which `poll` reports.
            let _ = r.send(Request {
                slot,
                serial: self.serial,
                query,
            });
        }
        self.serial
    }

    /// Queues a write the user asked for; it runs whatever else is queued. Returns its serial.
    pub fn act(&mut self, query: Query) -> u64 {
        self.request(Slot::Action(self.serial + 1), query)
    }

    /// Replies that have arrived, without waiting.
    pub fn poll(&self) -> impl Iterator<Item = Reply> + '_ {
        self.replies.try_iter()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.requests = None; // ends the worker's loop once it finishes the current query
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn worker(
    store: &CaseStore,
    rx: &mpsc::Receiver<Request>,
    tx: &mpsc::Sender<Reply>,
    notify: &dyn Fn(),
) {
    let mut scanner = tapline_detect::sensitive::scan::Scanner::default();
    while let Ok(first) = rx.recv() {
        // Everything queued meanwhile; the newest request per slot wins. Pages are kept
        // whole only from the newest scroll position (the last requested pages).
        let mut queued: BTreeMap<Slot, Request> = BTreeMap::new();
        let mut order: Vec<Slot> = Vec::new();
        for r in std::iter::once(first).chain(rx.try_iter()) {
            if !queued.contains_key(&r.slot) {
                order.push(r.slot);
            }
            queued.insert(r.slot, r);
        }
        // The last few page requests are what is on screen now.
        let keep_pages: Vec<Slot> = order
            .iter()
            .rev()
            .filter(|s| matches!(s, Slot::TxPage(_)))
            .take(4)
            .copied()
            .collect();
        for slot in order {
            if matches!(slot, Slot::TxPage(_)) && !keep_pages.contains(&slot) {
                // Scrolled past: tell the UI so it can ask again if it comes back.
                if let Some(r) = queued.remove(&slot) {
                    let _ = tx.send(Reply {
                        slot,
                        serial: r.serial,
                        took: Duration::ZERO,
                        answer: Err(SKIPPED.into()),
                    });
                }
                continue;
            }
            let Some(r) = queued.remove(&slot) else {
                continue;
            };
            let started = Instant::now();
            let answer = run(store, r.query, &mut scanner);
            let sent = tx.send(Reply {
                slot,
                serial: r.serial,
                took: started.elapsed(),
                answer,
            });
            notify();
            if sent.is_err() {
                return;
            }
        }
    }
}

/// The error text of a page request dropped because the table scrolled on.
pub const SKIPPED: &str = "skipped";

fn run(
    store: &CaseStore,
    query: Query,
    scanner: &mut tapline_detect::sensitive::scan::Scanner,
) -> Result<Answer, String> {
    let e = |e: tapline_store::StoreError| e.to_string();
    Ok(match query {
        Query::Overview => {
            let inv = inventory(store).map_err(|err| format!("{err:#}"))?;
            let o = overview(store, &inv).map_err(e)?;
            Answer::Overview(Arc::new(o), Arc::new(inv))
        }
        Query::Sensors => Answer::Sensors(
            Arc::new(store.sensors().map_err(e)?),
            Arc::new(store.alert_sinks().map_err(e)?),
        ),
        Query::TxCount(f) => Answer::TxCount(store.count_transactions(&f).map_err(e)?),
        Query::TxPage(f, page) => Answer::TxPage(store.query_transactions(&f, &page).map_err(e)?),
        Query::Transaction(id) => {
            Answer::Transaction(store.transaction(id).map_err(e)?.map(Arc::new))
        }
        Query::Evidence(mut ids) => {
            ids.truncate(EVIDENCE_ROWS);
            let filter = TxFilter {
                ids: Some(ids),
                ..TxFilter::default()
            };
            let page = Page {
                limit: EVIDENCE_ROWS as u64,
                ..Page::default()
            };
            Answer::Evidence(Arc::new(
                store.query_transactions(&filter, &page).map_err(e)?,
            ))
        }
        Query::Examples {
            mut ids,
            filter,
            class,
            location,
        } => {
            let page = Page {
                limit: EXAMPLE_SCAN,
                ..Page::default()
            };
            for row in store.query_transactions(&filter, &page).map_err(e)? {
                if !ids.contains(&row.id) {
                    ids.push(row.id);
                }
            }
            Answer::Examples(Arc::new(examples(
                store,
                &ids,
                &class,
                location.as_deref(),
                scanner,
            )?))
        }
        Query::Enrol {
            name,
            hub,
            identity,
            output,
        } => {
            let identity = tapline_link::HubIdentity::load_or_create(&identity).map_err(|err| {
                format!("cannot use the identity in {}: {err}", identity.display())
            })?;
            let mut store = store.try_clone().map_err(e)?;
            let done = tapline_hub::enrol::enrol(&mut store, &identity, &name, &hub, &output)
                .map_err(|err| format!("{err:#}"))?;
            Answer::Done(done)
        }
        Query::Revoke(name) => {
            let mut store = store.try_clone().map_err(e)?;
            if store.revoke_sensor(&name).map_err(e)? {
                Answer::Done(format!(
                    "revoked sensor {name:?}: the hub refuses it from now on"
                ))
            } else {
                return Err(format!("no enrolled sensor named {name:?}"));
            }
        }
        Query::AddAlertSink { kind, target, min } => {
            tapline_alerts::check_target(kind, &target)?;
            let mut store = store.try_clone().map_err(e)?;
            let id = store.add_alert_sink(kind, &target, min, None).map_err(e)?;
            Answer::Done(format!(
                "alert destination {id}: {} {target} gets findings of severity {min} and above",
                kind.name()
            ))
        }
        Query::RemoveAlertSink(id) => {
            let mut store = store.try_clone().map_err(e)?;
            if !store.remove_alert_sink(id).map_err(e)? {
                return Err(format!("no alert destination {id}"));
            }
            Answer::Done(format!("removed alert destination {id}"))
        }
        Query::TestRuns => {
            let runs = store.test_runs().map_err(e)?;
            let latest = match runs.first() {
                Some(r) => store.test_verdicts(r.id, false).map_err(e)?,
                None => Vec::new(),
            };
            Answer::TestRuns((Arc::new(runs), Arc::new(latest)))
        }
        Query::GenerateTests {
            endpoint,
            finding,
            dir,
        } => {
            let sel = tapline_sectest::generate::Selection {
                endpoint,
                finding,
                kinds: Vec::new(),
            };
            let g =
                tapline_sectest::generate::generate(store, &sel).map_err(|err| err.to_string())?;
            tapline_sectest::generate::write(&dir, &g, store.path())
                .map_err(|err| err.to_string())?;
            Answer::Done(format!(
                "wrote {} test(s) and identities.yaml to {} ({} kind(s) skipped); fill identities.env.example",
                g.tests.len(),
                dir.display(),
                g.skipped.len()
            ))
        }
        Query::RecordTestRun(report) => {
            let mut store = store.try_clone().map_err(e)?;
            Answer::Done(
                crate::commands::test::keep(&mut store, &report)
                    .map_err(|err| format!("{err:#}"))?,
            )
        }
        Query::Blocks => Answer::Blocks(Arc::new(blocks(store).map_err(|err| format!("{err:#}"))?)),
        Query::Preview(rule) => {
            let draft = rule.stored_as(0, now_ns());
            let allow = store.allowlist().map_err(e)?;
            let effect = tapline_enforce::replay::replay(store, &[draft], &allow, now_ns())
                .map_err(e)?
                .into_iter()
                .next()
                .unwrap_or_default();
            Answer::Preview(Arc::new(effect))
        }
        Query::AddRule(rule) => {
            let mut store = store.try_clone().map_err(e)?;
            let id = store.add_block_rule(&rule).map_err(e)?;
            Answer::Done(format!(
                "rule {id}: {} {} {}",
                rule.action.name(),
                rule.kind.name(),
                rule.value
            ))
        }
        Query::RemoveRule(id) => {
            let mut store = store.try_clone().map_err(e)?;
            if !store
                .remove_block_rule(id, &who(), "removed in the workbench")
                .map_err(e)?
            {
                return Err(format!("no rule {id} in force"));
            }
            Answer::Done(format!("removed rule {id}"))
        }
        Query::Allow(kind, value) => {
            let mut store = store.try_clone().map_err(e)?;
            let id = store
                .allow(kind, &value, "added in the workbench", &who())
                .map_err(e)?;
            Answer::Done(format!(
                "allowlist entry {id}: {} {value} is never blocked",
                kind.name()
            ))
        }
        Query::ExportOpenApi(path) => {
            let doc = tapline_export::openapi::document(store).map_err(|err| format!("{err:#}"))?;
            let text = serde_json::to_string_pretty(&doc).map_err(|err| err.to_string())?;
            std::fs::write(&path, text)
                .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
            Answer::Done(format!("wrote the OpenAPI document to {}", path.display()))
        }
    })
}

fn inventory(store: &CaseStore) -> anyhow::Result<Inventory> {
    let mut findings = store.findings()?;
    findings.sort_by_key(|f| {
        (
            std::cmp::Reverse(f.severity),
            std::cmp::Reverse(f.count),
            f.id,
        )
    });
    let mut classes = std::collections::BTreeSet::new();
    let mut endpoints: Vec<EndpointView> = store
        .endpoints()?
        .into_iter()
        .map(|endpoint| {
            let profile = EndpointProfile::of(&endpoint)?;
            classes.extend(profile.data_classes.keys().cloned());
            let findings = findings
                .iter()
                .enumerate()
                .filter(|(_, f)| f.endpoint_id == Some(endpoint.id))
                .map(|(i, _)| i)
                .collect();
            Ok(EndpointView {
                label: format!("{} {}{}", endpoint.method, endpoint.host, endpoint.template),
                endpoint,
                profile,
                findings,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    endpoints.sort_by_key(|e| (std::cmp::Reverse(e.endpoint.count), e.endpoint.id));
    Ok(Inventory {
        endpoints,
        findings,
        classes: classes.into_iter().collect(),
    })
}

fn overview(store: &CaseStore, inv: &Inventory) -> Result<Overview, tapline_store::StoreError> {
    let all = TxFilter::default();
    let mut o = Overview {
        transactions: store.count_transactions(&all)?,
        ..Overview::default()
    };
    o.span_ns = store.time_span()?;
    if let Some((lo, hi)) = o.span_ns {
        o.bucket_ns = bucket_for(hi - lo);
        o.histogram = store.time_histogram(&all, o.bucket_ns)?;
    }
    for (status, n) in store.status_mix(&all)? {
        let class = match status {
            Some(s @ 100..=599) => usize::from(s / 100 - 1),
            _ => 5,
        };
        o.status_classes[class] += n;
    }
    o.endpoints = inv.endpoints.len();
    o.top_endpoints = inv
        .endpoints
        .iter()
        .take(10)
        .map(|e| (e.endpoint.id, e.label.clone(), e.endpoint.count))
        .collect();
    let mut classes: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    for e in &inv.endpoints {
        for class in e.profile.data_classes.keys() {
            let c = classes.entry(class).or_default();
            c.0 += 1;
            c.1 += e.class_count(class);
        }
    }
    o.data_classes = classes
        .into_iter()
        .map(|(k, (e, n))| (k.to_owned(), e, n))
        .collect();
    o.data_classes.sort_by_key(|c| std::cmp::Reverse(c.2));
    let mut sev: BTreeMap<std::cmp::Reverse<Severity>, u64> = BTreeMap::new();
    for f in &inv.findings {
        *sev.entry(std::cmp::Reverse(f.severity)).or_default() += 1;
    }
    o.severities = sev.into_iter().map(|(s, n)| (s.0, n)).collect();
    o.top_findings = inv
        .findings
        .iter()
        .filter(|f| f.severity != Severity::Info)
        .take(8)
        .map(|f| (f.id, f.severity, f.title.clone()))
        .collect();
    o.sources = store
        .sources()?
        .into_iter()
        .map(|s| (s.name, s.transactions))
        .collect();
    Ok(o)
}

/// A histogram bucket width that gives about 100 buckets over `span_ns`, rounded to a
/// width people read easily.
pub fn bucket_for(span_ns: i64) -> i64 {
    const S: i64 = 1_000_000_000;
    const NICE: [i64; 16] = [
        1_000_000,
        10_000_000,
        100_000_000,
        S,
        5 * S,
        10 * S,
        30 * S,
        60 * S,
        5 * 60 * S,
        15 * 60 * S,
        3600 * S,
        3 * 3600 * S,
        6 * 3600 * S,
        86_400 * S,
        7 * 86_400 * S,
        30 * 86_400 * S,
    ];
    let want = span_ns.max(1) / 100;
    NICE.iter()
        .copied()
        .find(|&b| b >= want)
        .unwrap_or(30 * 86_400 * S)
}

fn examples(
    store: &CaseStore,
    ids: &[i64],
    class: &str,
    location: Option<&str>,
    scanner: &mut tapline_detect::sensitive::scan::Scanner,
) -> Result<Vec<Example>, String> {
    let mut out = Vec::new();
    for &id in ids.iter().take(EXAMPLE_SCAN as usize + 20) {
        let Some(tx) = store.transaction(id).map_err(|e| e.to_string())? else {
            continue;
        };
        scanner.scan(&tx, &mut |f| {
            if f.hit.class.name() == class
                && location.is_none_or(|l| l == f.location)
                && out.len() < 50
            {
                out.push(Example {
                    tx: id,
                    location: f.location.to_owned(),
                    value: f.value.to_owned(),
                    span: (f.hit.start, f.hit.end),
                    confidence: format!("{:?}", f.hit.confidence).to_lowercase(),
                });
            }
        });
    }
    Ok(out)
}

fn who() -> String {
    std::env::var("USER").unwrap_or_else(|_| "analyst".into())
}

fn blocks(store: &CaseStore) -> anyhow::Result<Blocks> {
    let now = now_ns();
    let mut rules = store.block_rules()?;
    let allow = store.allowlist()?;
    let active: Vec<_> = rules.iter().filter(|r| r.active_at(now)).cloned().collect();
    let effects = tapline_enforce::replay::replay(store, &active, &allow, now)?
        .into_iter()
        .map(|e| (e.rule_id, e))
        .collect();
    let mut hits: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    for h in store.block_hit_counts()? {
        let e = hits.entry(h.rule_id).or_default();
        if h.action == "monitor" {
            e.1 += h.count;
        } else {
            e.0 += h.count;
        }
    }
    rules.reverse();
    let mut audit = store.block_audit()?;
    audit.reverse();
    audit.truncate(200);
    Ok(Blocks {
        rules,
        effects,
        hits,
        allow,
        audit,
        agents: store.agents()?,
        auto: store.auto_rules()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_round_and_about_a_hundredth_of_the_span() {
        const S: i64 = 1_000_000_000;
        assert_eq!(bucket_for(0), 1_000_000);
        assert_eq!(bucket_for(60 * S), S);
        assert_eq!(bucket_for(3600 * S), 60 * S);
        assert_eq!(bucket_for(i64::MAX), 30 * 86_400 * S);
    }

    #[test]
    fn every_queued_action_runs() {
        // Two writes queued before the worker looks: neither may be dropped as superseded.
        let dir = tempfile::tempdir().unwrap();
        let store = CaseStore::open(&dir.path().join("case.duckdb")).unwrap();
        let (requests, rx) = mpsc::channel();
        let (tx, replies) = mpsc::channel();
        let mut backend = Backend {
            requests: Some(requests),
            replies,
            thread: None,
            serial: 0,
        };
        backend.act(Query::Revoke("a".into()));
        backend.act(Query::Revoke("b".into()));
        backend.requests = None;
        worker(&store, &rx, &tx, &|| {});
        let answers: Vec<String> = backend
            .poll()
            .map(|r| r.answer.expect_err("no such sensors"))
            .collect();
        assert_eq!(answers.len(), 2, "{answers:?}");
        assert!(answers[0].contains("\"a\"") && answers[1].contains("\"b\""));
    }
}
