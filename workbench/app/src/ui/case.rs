//! The open case as the UI sees it: what has been loaded, what is on its way, and the
//! traffic table's pages. Views read from here and ask for more; only the query worker
//! ([`super::backend`]) touches the database.

use super::backend::{
    Answer, Backend, EVIDENCE_ROWS, Example, Inventory, Overview, Query, Reply, SKIPPED, Slot,
};
use crate::commands::{Cases, Connect};
use crate::control::ControlServer;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tapline_record::Transaction;
use tapline_store::CaseStore;
use tapline_store::query::{Page, SortKey, TxFilter, TxRow};
use tapline_store::sensors::SensorRow;

/// Rows per traffic page request.
pub const PAGE_ROWS: u64 = 100;

/// A value that is loaded, loading, or failed to load.
#[derive(Debug)]
pub struct Loaded<T> {
    /// The last value that arrived.
    pub value: Option<T>,
    /// The serial of the request on its way, if any.
    pending: Option<u64>,
    /// Why the last request failed.
    pub error: Option<String>,
}

impl<T> Default for Loaded<T> {
    fn default() -> Self {
        Loaded {
            value: None,
            pending: None,
            error: None,
        }
    }
}

impl<T> Loaded<T> {
    /// True while a request is on its way.
    pub fn is_loading(&self) -> bool {
        self.pending.is_some()
    }
}

/// The traffic table: the applied filter and sort, the match count, cached pages.
#[derive(Debug, Default)]
pub struct TxTable {
    /// The filter the rows match.
    pub filter: TxFilter,
    /// Sort column.
    pub sort: SortKey,
    /// Largest first.
    pub descending: bool,
    /// Rows matching.
    pub count: Loaded<u64>,
    pages: HashMap<u64, Vec<TxRow>>,
    pending_pages: HashMap<u64, u64>,
    /// How long the last page took to arrive.
    pub last_page_took: Option<Duration>,
}

impl TxTable {
    fn page_of(row: u64) -> u64 {
        row / PAGE_ROWS
    }

    /// Row `row` of the current order, when its page has arrived.
    pub fn row(&self, row: u64) -> Option<&TxRow> {
        self.pages
            .get(&Self::page_of(row))?
            .get((row % PAGE_ROWS) as usize)
    }
}

/// Which findings the analyst has seen: findings get ids in the order they are found, so
/// one id per mark is enough.
#[derive(Debug, Default)]
pub struct Seen {
    /// Findings with this id or above are new since the analyst last left the attacks view.
    pub looked_below: Option<i64>,
    /// Findings with this id or above have not been announced.
    announced_below: Option<i64>,
    /// Live analysis wrote since the last load: what it found is announced (what the
    /// analyst's own import found is not: the import says so itself).
    live_wrote: bool,
    /// Announcements of new high and critical findings, for the app's notices.
    pub announce: Vec<String>,
    /// The ids below which everything is in the last inventory loaded.
    loaded_below: i64,
}

impl Seen {
    /// Live analysis wrote findings: the next load announces the severe ones.
    pub fn live_wrote(&mut self) {
        self.live_wrote = true;
    }

    /// Notes a freshly loaded inventory: what opened with the case counts as seen; high and
    /// critical findings live analysis added are announced once, in one notice.
    fn took_in(&mut self, inv: &super::backend::Inventory) {
        let below = inv.findings.iter().map(|f| f.id + 1).max().unwrap_or(1);
        self.loaded_below = below;
        let Some(from) = self.announced_below else {
            self.announced_below = Some(below);
            self.looked_below = Some(below);
            return;
        };
        let severe: Vec<&str> = inv
            .findings
            .iter()
            .filter(|f| f.id >= from && f.severity >= tapline_store::endpoints::Severity::High)
            .map(|f| f.title.as_str())
            .collect();
        if self.live_wrote && !severe.is_empty() {
            let more = match severe.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            self.announce.push(format!(
                "live traffic: new high/critical finding — {}{more}",
                severe[0]
            ));
        }
        self.live_wrote = false;
        self.announced_below = Some(below.max(from));
    }

    /// Whether finding `id` is new since the analyst last looked.
    pub fn is_new(&self, id: i64) -> bool {
        self.looked_below.is_some_and(|b| id >= b)
    }

    /// The analyst has looked at everything loaded.
    pub fn looked(&mut self) {
        self.looked_below = Some(self.loaded_below.max(self.looked_below.unwrap_or(0)));
    }
}

/// An open case.
pub struct Case {
    /// The case file.
    pub path: PathBuf,
    /// The UI's connection: only cloned for workers (the import, the hub), never queried.
    store: CaseStore,
    backend: Backend,
    /// Figures for the overview.
    pub overview: Loaded<Arc<Overview>>,
    /// Endpoints and findings.
    pub inventory: Loaded<Arc<Inventory>>,
    /// Enrolled sensors.
    pub sensors: Loaded<Arc<Vec<SensorRow>>>,
    /// Where alerts go (loaded with the sensors).
    pub alert_sinks: Arc<Vec<tapline_store::alerts::AlertSink>>,
    /// The traffic table.
    pub tx: TxTable,
    /// The transaction in the detail pane: (id, the record once loaded).
    pub transaction: Loaded<(i64, Option<Arc<Transaction>>)>,
    /// Evidence rows of the selected finding.
    pub evidence: Loaded<Arc<Vec<TxRow>>>,
    /// Example values for the sensitive-data view.
    pub examples: Loaded<Arc<Vec<Example>>>,
    /// Security-test runs (newest first) and the newest run's verdicts.
    pub test_runs: Loaded<super::backend::TestHistory>,
    /// The Block rules view's data.
    pub blocks: Loaded<Arc<super::backend::Blocks>>,
    /// A draft rule's replayed effect.
    pub preview: Loaded<Arc<tapline_enforce::replay::Effect>>,
    /// Actions asked for and not answered yet.
    actions: usize,
    /// Results of actions (enrolment, export), for the notices.
    pub done: Vec<Result<String, String>>,
    /// Slowest query so far (for the status bar).
    pub slowest_query: Duration,
    /// Serves other processes' commands on this case while it is open (None when the socket
    /// could not be set up: the app works, commands elsewhere get DuckDB's lock error).
    control: Option<ControlServer>,
    /// Which findings the analyst has seen, and which were announced.
    pub seen: Seen,
    /// Set when such a command ran: what is shown may have changed.
    changed_outside: Arc<AtomicBool>,
}

/// Starts the control socket of the case the app holds, so `tapline` commands elsewhere run
/// here on another connection; their changes set `changed` and repaint.
fn serve_commands(
    store: &CaseStore,
    path: &std::path::Path,
    changed: &Arc<AtomicBool>,
    repaint: Arc<impl Fn() + Send + Sync + 'static>,
) -> Option<ControlServer> {
    let spare = Mutex::new(store.try_clone().ok()?);
    let connect: Connect = Box::new(move || {
        let spare = spare
            .lock()
            .map_err(|_| anyhow::anyhow!("the case's connection broke"))?;
        Ok(spare.try_clone()?)
    });
    let changed = Arc::clone(changed);
    let after = move || {
        changed.store(true, Ordering::SeqCst);
        repaint();
    };
    let started =
        Cases::holding(path, connect).and_then(|cases| ControlServer::start(path, cases, after));
    match started {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!("commands from other processes cannot reach this case: {e:#}");
            None
        }
    }
}

impl Case {
    /// Opens the case at `path` and starts its query worker; `repaint` is called whenever an
    /// answer arrives.
    pub fn open(path: PathBuf, repaint: impl Fn() + Send + Sync + 'static) -> anyhow::Result<Case> {
        let store = CaseStore::open(&path).map_err(|e| {
            anyhow::anyhow!(
                "{e}\n(is the case open in another Tapline — the app, `tapline serve` or an import? \
                 DuckDB lets one process at a time use a case file)"
            )
        })?;
        let repaint = Arc::new(repaint);
        let backend = Backend::start(store.try_clone()?, {
            let repaint = Arc::clone(&repaint);
            move || repaint()
        })?;
        let changed_outside = Arc::new(AtomicBool::new(false));
        let control = serve_commands(&store, &path, &changed_outside, repaint);
        let mut case = Case {
            path,
            store,
            backend,
            overview: Loaded::default(),
            inventory: Loaded::default(),
            seen: Seen::default(),
            alert_sinks: Arc::default(),
            actions: 0,
            sensors: Loaded::default(),
            tx: TxTable::default(),
            transaction: Loaded::default(),
            evidence: Loaded::default(),
            examples: Loaded::default(),
            test_runs: Loaded::default(),
            blocks: Loaded::default(),
            preview: Loaded::default(),
            done: Vec::new(),
            slowest_query: Duration::ZERO,
            control,
            changed_outside,
        };
        case.refresh();
        Ok(case)
    }

    /// Whether a command from another process ran on the case since the last call (the views
    /// should be refreshed).
    pub fn take_outside_change(&self) -> bool {
        self.changed_outside.swap(false, Ordering::SeqCst)
    }

    /// Where other processes' commands reach this case, if they can.
    pub fn control_socket(&self) -> Option<&std::path::Path> {
        self.control.as_ref().map(ControlServer::path)
    }

    /// Another connection to the case, for a worker thread.
    pub fn store_clone(&self) -> anyhow::Result<CaseStore> {
        Ok(self.store.try_clone()?)
    }

    /// Asks again for everything shown (after an import, new sensor data or an action).
    /// Values stay on screen until their replacements arrive.
    pub fn refresh(&mut self) {
        // One answer fills both: the overview is drawn from the inventory.
        let serial = self.backend.request(Slot::Overview, Query::Overview);
        self.overview.pending = Some(serial);
        self.inventory.pending = Some(serial);
        self.sensors.pending = Some(self.backend.request(Slot::Sensors, Query::Sensors));
        self.test_runs.pending = Some(self.backend.request(Slot::TestRuns, Query::TestRuns));
        self.blocks.pending = Some(self.backend.request(Slot::Blocks, Query::Blocks));
        self.reload_traffic();
    }

    /// Applies a new filter or sort to the traffic table.
    pub fn set_traffic(&mut self, filter: TxFilter, sort: SortKey, descending: bool) {
        if filter != self.tx.filter || sort != self.tx.sort || descending != self.tx.descending {
            self.tx.filter = filter;
            self.tx.sort = sort;
            self.tx.descending = descending;
            self.reload_traffic();
        }
    }

    fn reload_traffic(&mut self) {
        self.tx.pages.clear();
        self.tx.pending_pages.clear();
        self.tx.count.pending = Some(
            self.backend
                .request(Slot::TxCount, Query::TxCount(self.tx.filter.clone())),
        );
    }

    /// Row `row` of the traffic table; asks for its page when it is not here yet.
    pub fn traffic_row(&mut self, row: u64) -> Option<&TxRow> {
        let page = TxTable::page_of(row);
        if !self.tx.pages.contains_key(&page) && !self.tx.pending_pages.contains_key(&page) {
            let serial = self.backend.request(
                Slot::TxPage(page),
                Query::TxPage(
                    self.tx.filter.clone(),
                    Page {
                        offset: page * PAGE_ROWS,
                        limit: PAGE_ROWS,
                        sort: self.tx.sort,
                        descending: self.tx.descending,
                    },
                ),
            );
            self.tx.pending_pages.insert(page, serial);
        }
        self.tx.row(row)
    }

    /// Drops cached pages far from `visible` rows, so scrolling through millions of rows
    /// keeps memory flat.
    pub fn trim_pages(&mut self, visible: std::ops::Range<u64>) {
        let lo = TxTable::page_of(visible.start).saturating_sub(20);
        let hi = TxTable::page_of(visible.end) + 20;
        self.tx.pages.retain(|p, _| (lo..=hi).contains(p));
    }

    /// Shows transaction `id` in the detail pane.
    pub fn select_transaction(&mut self, id: i64) {
        if self
            .transaction
            .value
            .as_ref()
            .is_some_and(|(i, _)| *i == id)
        {
            return;
        }
        self.transaction.value = Some((id, None));
        self.transaction.pending = Some(
            self.backend
                .request(Slot::Transaction, Query::Transaction(id)),
        );
    }

    /// Loads the evidence rows of a finding.
    pub fn load_evidence(&mut self, ids: &[i64]) {
        self.evidence.value = None;
        self.evidence.pending = Some(self.backend.request(
            Slot::Evidence,
            Query::Evidence(ids.iter().take(EVIDENCE_ROWS).copied().collect()),
        ));
    }

    /// Loads example values of `class` (at `location`) from transactions `ids` and the first
    /// ones matching `filter`.
    pub fn load_examples(
        &mut self,
        ids: Vec<i64>,
        filter: TxFilter,
        class: String,
        location: Option<String>,
    ) {
        self.examples.value = None;
        self.examples.pending = Some(self.backend.request(
            Slot::Examples,
            Query::Examples {
                ids,
                filter,
                class,
                location,
            },
        ));
    }

    /// Replays the recorded traffic through a draft rule (the answer lands in `preview`).
    pub fn preview_rule(&mut self, rule: tapline_store::blocks::NewRule) {
        self.preview.value = None;
        self.preview.pending = Some(
            self.backend
                .request(Slot::Preview, Query::Preview(Box::new(rule))),
        );
    }

    /// Runs a write (enrolment, revocation, export) on the worker; its result lands in
    /// [`Case::done`].
    pub fn act(&mut self, query: Query) {
        self.backend.act(query);
        self.actions += 1;
    }

    /// Takes in every reply that has arrived. Returns true when any did.
    pub fn absorb_replies(&mut self) -> bool {
        let replies: Vec<Reply> = self.backend.poll().collect();
        let any = !replies.is_empty();
        for r in replies {
            self.slowest_query = self.slowest_query.max(r.took);
            self.absorb(r);
        }
        any
    }

    fn absorb(&mut self, r: Reply) {
        fn fill<T>(l: &mut Loaded<T>, serial: u64, v: Result<T, String>) {
            if l.pending != Some(serial) {
                return; // superseded
            }
            l.pending = None;
            match v {
                Ok(v) => {
                    l.value = Some(v);
                    l.error = None;
                }
                Err(e) => l.error = Some(e),
            }
        }
        let s = r.serial;
        match (r.slot, r.answer) {
            (Slot::Overview, Ok(Answer::Overview(o, i))) => {
                self.seen.took_in(&i);
                fill(&mut self.overview, s, Ok(o));
                fill(&mut self.inventory, s, Ok(i));
            }
            (Slot::Overview, Err(e)) => {
                fill(&mut self.overview, s, Err(e.clone()));
                fill(&mut self.inventory, s, Err(e));
            }
            (Slot::Sensors, Ok(Answer::Sensors(v, sinks))) => {
                if self.sensors.pending == Some(s) {
                    self.alert_sinks = sinks;
                }
                fill(&mut self.sensors, s, Ok(v));
            }
            (Slot::Sensors, Err(e)) => fill(&mut self.sensors, s, Err(e)),
            (Slot::TxCount, Ok(Answer::TxCount(n))) => fill(&mut self.tx.count, s, Ok(n)),
            (Slot::TxCount, Err(e)) => fill(&mut self.tx.count, s, Err(e)),
            (Slot::TxPage(p), answer) => {
                if self.tx.pending_pages.get(&p) == Some(&s) {
                    self.tx.pending_pages.remove(&p);
                    match answer {
                        Ok(Answer::TxPage(rows)) => {
                            self.tx.last_page_took = Some(r.took);
                            self.tx.pages.insert(p, rows);
                        }
                        Err(e) if e == SKIPPED => {} // asked again if still visible
                        Err(e) => self.tx.count.error = Some(e),
                        Ok(_) => {}
                    }
                }
            }
            (Slot::Transaction, Ok(Answer::Transaction(t))) => {
                let id = self.transaction.value.as_ref().map_or(0, |(id, _)| *id);
                fill(&mut self.transaction, s, Ok((id, t)));
            }
            (Slot::Transaction, Err(e)) => fill(&mut self.transaction, s, Err(e)),
            (Slot::Evidence, Ok(Answer::Evidence(rows))) => fill(&mut self.evidence, s, Ok(rows)),
            (Slot::Evidence, Err(e)) => fill(&mut self.evidence, s, Err(e)),
            (Slot::Examples, Ok(Answer::Examples(v))) => fill(&mut self.examples, s, Ok(v)),
            (Slot::Examples, Err(e)) => fill(&mut self.examples, s, Err(e)),
            (Slot::TestRuns, Ok(Answer::TestRuns(h))) => fill(&mut self.test_runs, s, Ok(h)),
            (Slot::TestRuns, Err(e)) => fill(&mut self.test_runs, s, Err(e)),
            (Slot::Blocks, Ok(Answer::Blocks(b))) => fill(&mut self.blocks, s, Ok(b)),
            (Slot::Blocks, Err(e)) => fill(&mut self.blocks, s, Err(e)),
            (Slot::Preview, Ok(Answer::Preview(p))) => fill(&mut self.preview, s, Ok(p)),
            (Slot::Preview, Err(e)) => fill(&mut self.preview, s, Err(e)),
            (Slot::Action(_), Ok(Answer::Done(msg))) => {
                self.actions = self.actions.saturating_sub(1);
                self.done.push(Ok(msg));
            }
            (Slot::Action(_), Err(e)) => {
                self.actions = self.actions.saturating_sub(1);
                self.done.push(Err(e));
            }
            (slot, Ok(other)) => self.done.push(Err(format!(
                "internal: {slot:?} answered with {}",
                answer_name(&other)
            ))),
        }
    }

    /// True while any query of this case is on its way.
    pub fn busy(&self) -> bool {
        self.actions > 0
            || self.overview.is_loading()
            || self.inventory.is_loading()
            || self.sensors.is_loading()
            || self.tx.count.is_loading()
            || !self.tx.pending_pages.is_empty()
            || self.transaction.is_loading()
            || self.evidence.is_loading()
            || self.examples.is_loading()
            || self.blocks.is_loading()
            || self.preview.is_loading()
    }
}

fn answer_name(a: &Answer) -> &'static str {
    match a {
        Answer::Overview(..) => "overview",
        Answer::Sensors(..) => "sensors",
        Answer::TxCount(_) => "count",
        Answer::TxPage(_) => "page",
        Answer::Transaction(_) => "transaction",
        Answer::Evidence(_) => "evidence",
        Answer::Examples(_) => "examples",
        Answer::TestRuns(..) => "test runs",
        Answer::Blocks(_) => "block rules",
        Answer::Preview(_) => "rule preview",
        Answer::Done(_) => "done",
    }
}

#[cfg(test)]
mod tests {
    use super::Seen;
    use crate::ui::backend::Inventory;
    use tapline_store::endpoints::{Finding, FindingKind, Severity};

    fn inventory(findings: &[(i64, Severity)]) -> Inventory {
        Inventory {
            endpoints: Vec::new(),
            findings: findings
                .iter()
                .map(|&(id, severity)| Finding {
                    id,
                    kind: FindingKind::Bola,
                    severity,
                    confidence: 1.0,
                    endpoint_id: None,
                    actor_ip: None,
                    actor_user: None,
                    actor_key: None,
                    actor_session: None,
                    first_seen_ns: 0,
                    last_seen_ns: 0,
                    count: 1,
                    title: format!("finding {id}"),
                    evidence: Vec::new(),
                    detail: None,
                })
                .collect(),
            classes: Vec::new(),
        }
    }

    #[test]
    fn live_findings_are_new_until_looked_at_and_severe_ones_announced_once() {
        let mut seen = Seen::default();
        seen.took_in(&inventory(&[(1, Severity::High)]));
        assert!(!seen.is_new(1), "what the case opened with is seen");
        // An import's findings: new, not announced (the import says what it did).
        seen.took_in(&inventory(&[(1, Severity::High), (2, Severity::Critical)]));
        assert!(seen.is_new(2) && seen.announce.is_empty());
        // Live analysis wrote two findings, one of them severe: one notice.
        seen.live_wrote();
        let all = [
            (1, Severity::High),
            (2, Severity::Critical),
            (3, Severity::Low),
            (4, Severity::High),
        ];
        seen.took_in(&inventory(&all));
        assert_eq!(
            seen.announce,
            ["live traffic: new high/critical finding — finding 4"]
        );
        seen.took_in(&inventory(&all));
        assert_eq!(seen.announce.len(), 1, "announced once");
        seen.looked();
        assert!(!seen.is_new(4));
    }
}
