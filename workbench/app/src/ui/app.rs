//! The application: state that outlives views (settings, the open case, the import job, the
//! hub), the command queue every view writes to, and the frame: menu, navigation, status bar.
//!
//! Views never mutate application state directly; they push [`Command`]s, handled in one
//! place ([`Workbench::handle`]) at the end of the frame.

use super::case::Case;
use super::lifecycle;
use super::picker::{self, Dialogs, Picker};
use super::{attacks, format, inventory, overview, sensitive, sensors, tests, traffic, welcome};
use eframe::egui::{self, Key, KeyboardShortcut, Modifiers, RichText};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tapline_hub::{Hub, HubEvent};
use tapline_ingest::import::{
    ImportEvent, ImportHandle, ImportOptions, ImportOutcome, ImportProgress,
};
use tapline_store::query::TxFilter;

/// How the app was started.
#[derive(Clone, Debug, Default)]
pub struct Launch {
    /// A case file or captures to open (`tapline open FILE`).
    pub open: Vec<PathBuf>,
    /// The case captures go into (`--db`); default: a case named after the first capture in
    /// `data_dir/cases`.
    pub case: Option<PathBuf>,
    /// Where new cases go, and the default identity directory's parent.
    pub data_dir: PathBuf,
    /// The workbench identity (CA and hub certificate) for the sensor hub.
    pub identity_dir: PathBuf,
    /// Start the sensor hub at launch on this address.
    pub listen: Option<SocketAddr>,
    /// Save a PNG of the window once the case is loaded and idle, then quit (for CI and docs).
    pub screenshot: Option<PathBuf>,
    /// Reopen the last case when nothing else is to be opened.
    pub restore: bool,
    /// Which file dialogs to start with (the system's falls back to the built-in picker by
    /// itself when the desktop has none).
    pub file_dialogs: Dialogs,
}

/// What a file dialog was opened for: what happens with the chosen path.
#[derive(Clone, Debug, PartialEq)]
enum DialogPurpose {
    OpenCaptures,
    OpenCase,
    NewCase,
    ExportOpenApi,
    EnrolSensor(String),
}

/// The views, in navigation order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum View {
    /// Figures and charts.
    #[default]
    Overview,
    /// The endpoints.
    Inventory,
    /// Every transaction.
    Traffic,
    /// Data classes × endpoints.
    Sensitive,
    /// Findings by actor.
    Attacks,
    /// The hub and the sensors.
    Sensors,
    /// Security tests: generate, edit, run, history.
    Tests,
    /// Block rules, their effect, the allowlist, agents.
    Blocks,
}

impl View {
    /// All views, in navigation order.
    pub const ALL: [View; 8] = [
        View::Overview,
        View::Inventory,
        View::Traffic,
        View::Sensitive,
        View::Attacks,
        View::Sensors,
        View::Tests,
        View::Blocks,
    ];

    /// The navigation label.
    pub fn label(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Inventory => "Inventory",
            View::Traffic => "Traffic",
            View::Sensitive => "Sensitive data",
            View::Attacks => "Attacks",
            View::Sensors => "Sensors",
            View::Tests => "Tests",
            View::Blocks => "Block rules",
        }
    }

    fn key(self) -> Key {
        match self {
            View::Overview => Key::Num1,
            View::Inventory => Key::Num2,
            View::Traffic => Key::Num3,
            View::Sensitive => Key::Num4,
            View::Attacks => Key::Num5,
            View::Sensors => Key::Num6,
            View::Tests => Key::Num7,
            View::Blocks => Key::Num8,
        }
    }
}

/// Light, dark, or as the system says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ThemeChoice {
    /// Follow the desktop.
    #[default]
    System,
    /// Light.
    Light,
    /// Dark.
    Dark,
}

/// What is remembered between runs (eframe persistence).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The case open at exit.
    pub last_case: Option<PathBuf>,
    /// Recently opened cases, newest first.
    pub recent: Vec<PathBuf>,
    /// The view shown at exit.
    pub view: View,
    /// Theme.
    pub theme: ThemeChoice,
    /// Show sensitive values masked.
    pub mask_values: bool,
    /// Where the hub listens.
    pub listen: String,
    /// The address sensors are told to dial at enrolment.
    pub hub_address: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            last_case: None,
            recent: Vec::new(),
            view: View::Overview,
            theme: ThemeChoice::System,
            mask_values: true,
            listen: "0.0.0.0:4433".into(),
            hub_address: "workbench.example:4433".into(),
        }
    }
}

/// Everything a view can ask the app to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Pick capture files and import them (into the open case, else a new one).
    OpenCaptureDialog,
    /// Pick a case file.
    OpenCaseDialog,
    /// Choose where a new case goes.
    NewCaseDialog,
    /// Open a case, or import captures.
    Open(Vec<PathBuf>),
    /// Stop the running import (the current file rolls back).
    CancelImport,
    /// Close the case.
    CloseCase,
    /// Ask the worker for everything again.
    Refresh,
    /// Switch view.
    Show(View),
    /// The inventory, on this endpoint.
    ShowEndpoint(i64),
    /// The attacks view, on this finding.
    ShowFinding(i64),
    /// The attacks view, filtered to one severity.
    ShowSeverity(tapline_store::endpoints::Severity),
    /// The sensitive-data view, on this class (and endpoint).
    ShowDataClass(String, Option<i64>),
    /// The traffic view with this filter.
    ShowTraffic(Box<TxFilter>),
    /// The traffic view, this transaction in the detail pane.
    ShowTransaction(i64),
    /// Export the inventory as OpenAPI (asks where).
    ExportOpenApi,
    /// Start the sensor hub.
    StartHub,
    /// Stop the sensor hub.
    StopHub,
    /// Enrol a sensor (asks where its configuration goes).
    EnrolSensor(String),
    /// Revoke a sensor.
    RevokeSensor(String),
    /// Send findings to a destination (kind, target, lowest severity).
    AddAlertSink(
        tapline_store::alerts::SinkKind,
        String,
        tapline_store::endpoints::Severity,
    ),
    /// Stop sending to a destination.
    RemoveAlertSink(i64),
    /// Put text on the clipboard.
    Copy(String),
    /// Read the tests folder again.
    ReloadTests,
    /// Build tests from the case into the tests folder (for one endpoint, or what a finding
    /// suggests; all endpoints when neither) and show them.
    GenerateTests {
        /// `GET /books/{id}`.
        endpoint: Option<String>,
        /// A finding's id.
        finding: Option<i64>,
    },
    /// The Block rules view, a draft rule started (from an actor or a finding).
    BlockDraft(Box<super::blocks::Draft>),
}

/// A running import.
struct ImportJob {
    handle: ImportHandle,
    progress: Option<ImportProgress>,
    files: usize,
    finished_files: usize,
    cancelling: bool,
}

/// A running hub and what it has said.
pub struct HubState {
    hub: Hub,
    events: mpsc::Receiver<HubEvent>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Sensors connected now: name → (peer, batches, records this session).
    pub connected: BTreeMap<String, (SocketAddr, u64, u64)>,
    /// Records each sensor delivered lately, and how far behind capture they were stored.
    pub flow: BTreeMap<String, Flow>,
    /// What live analysis last reported, and when.
    pub analysis: Option<(Instant, tapline_hub::live::Analysed)>,
    /// Recent events, newest last.
    pub log: VecDeque<String>,
    /// The workbench CA fingerprint (what sensors pin).
    pub ca_fingerprint: String,
    new_data: bool,
}

/// A sensor's recent delivery, for its rate and lag.
#[derive(Debug, Default)]
pub struct Flow {
    /// (when, records) of the batches stored in the last [`Flow::WINDOW`].
    recent: VecDeque<(Instant, u64)>,
    /// Capture time of the newest record stored, ns, and when it was stored.
    pub latest: Option<(i64, std::time::SystemTime)>,
}

impl Flow {
    /// How far back the rate looks.
    const WINDOW: Duration = Duration::from_secs(10);

    fn stored(&mut self, records: u64, latest_ns: Option<i64>) {
        let now = Instant::now();
        self.recent.push_back((now, records));
        while self
            .recent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > Flow::WINDOW)
        {
            self.recent.pop_front();
        }
        if let Some(ns) = latest_ns {
            self.latest = Some((ns, std::time::SystemTime::now()));
        }
    }

    /// Records per second over the last [`Flow::WINDOW`].
    pub fn rate(&self) -> f64 {
        let now = Instant::now();
        let n: u64 = self
            .recent
            .iter()
            .filter(|(t, _)| now.duration_since(*t) <= Flow::WINDOW)
            .map(|(_, r)| r)
            .sum();
        n as f64 / Flow::WINDOW.as_secs_f64()
    }

    /// Capture → stored, for the newest record (negative clocks read as zero).
    pub fn stored_lag(&self) -> Option<Duration> {
        let (ns, at) = self.latest?;
        let at_ns = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos() as i64;
        Some(Duration::from_nanos(at_ns.saturating_sub(ns).max(0) as u64))
    }
}

/// A case being opened on a worker.
struct Opening {
    path: PathBuf,
    /// Captures to import once it is open.
    then_import: Vec<PathBuf>,
    pending: lifecycle::Pending<anyhow::Result<Case>>,
}

/// Stops a hub when dropped (on the retiring thread), logging an error.
struct StopOnDrop(Option<Hub>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(hub) = self.0.take()
            && let Err(e) = hub.stop()
        {
            tracing::warn!("the hub stopped with an error: {e:#}");
        }
    }
}

/// A message for the analyst.
#[derive(Clone, Debug)]
pub struct Notice {
    /// When.
    pub at: Instant,
    /// An error, not news.
    pub error: bool,
    /// What.
    pub text: String,
}

/// Frame-time figures for the status bar and the screenshot run.
#[derive(Clone, Debug, Default)]
pub struct FrameStats {
    /// Frames drawn.
    pub frames: u64,
    /// CPU time of the last frame's UI code.
    pub last: Duration,
    /// Worst so far.
    pub worst: Duration,
    /// Sum, for the mean.
    pub total: Duration,
}

/// Per-view state (selection, filters, scroll): plain data the view modules own.
#[derive(Default)]
pub struct ViewStates {
    /// Inventory.
    pub inventory: inventory::State,
    /// Traffic.
    pub traffic: traffic::State,
    /// Sensitive data.
    pub sensitive: sensitive::State,
    /// Attacks.
    pub attacks: attacks::State,
    /// Sensors.
    pub sensors: sensors::State,
    /// Tests.
    pub tests: tests::State,
    /// Block rules.
    pub blocks: super::blocks::State,
}

/// The desktop workbench.
pub struct Workbench {
    /// Remembered settings.
    pub settings: Settings,
    launch: Launch,
    /// The open case.
    pub case: Option<Case>,
    /// The case being opened.
    opening: Option<Opening>,
    import: Option<ImportJob>,
    /// The sensor hub, while it runs.
    pub hub: Option<HubState>,
    /// The hub being started, and where it will listen.
    starting_hub: Option<(SocketAddr, lifecycle::Pending<anyhow::Result<HubState>>)>,
    /// Messages, newest last.
    pub notices: Vec<Notice>,
    commands: Vec<Command>,
    /// Per-view state.
    pub views: ViewStates,
    /// The view drawn last frame (leaving the attacks view marks its findings seen).
    shown_view: Option<View>,
    /// Frame times.
    pub frame_stats: FrameStats,
    last_live_refresh: Instant,
    screenshot_requested: bool,
    idle_frames: u32,
    /// The theme the style was last built for.
    applied_theme: ThemeChoice,
    /// Which file dialogs to show.
    dialogs: Dialogs,
    /// The built-in picker, while open.
    picker: Option<(DialogPurpose, Picker)>,
    egui_ctx: egui::Context,
}

impl Workbench {
    /// Builds the app (restoring settings from eframe's storage) and opens what `launch` asks.
    pub fn new(cc: &eframe::CreationContext<'_>, launch: Launch) -> Self {
        let settings: Settings = cc
            .storage
            .and_then(|s| eframe::get_value(s, eframe::APP_KEY))
            .unwrap_or_default();
        let mut app = Workbench {
            settings,
            launch: launch.clone(),
            case: None,
            opening: None,
            import: None,
            hub: None,
            starting_hub: None,
            notices: Vec::new(),
            commands: Vec::new(),
            views: ViewStates::default(),
            shown_view: None,
            frame_stats: FrameStats::default(),
            last_live_refresh: Instant::now(),
            screenshot_requested: false,
            idle_frames: 0,
            applied_theme: ThemeChoice::System,
            dialogs: launch.file_dialogs,
            picker: None,
            egui_ctx: cc.egui_ctx.clone(),
        };
        apply_style(&cc.egui_ctx, app.settings.theme);
        app.applied_theme = app.settings.theme;
        if !launch.open.is_empty() {
            app.commands.push(Command::Open(launch.open.clone()));
        } else if launch.restore
            && let Some(last) = app.settings.last_case.clone()
            && last.exists()
        {
            app.commands.push(Command::Open(vec![last]));
        }
        if launch.listen.is_some() {
            app.commands.push(Command::StartHub);
        }
        app
    }

    /// Queues a command, as a view would.
    pub fn push(&mut self, c: Command) {
        self.commands.push(c);
    }

    /// True while an import runs.
    pub fn importing(&self) -> bool {
        self.import.is_some()
    }

    /// True while a case opens, an import runs, the hub starts or tests are listed or run.
    pub fn busy(&self) -> bool {
        self.import.is_some()
            || self.opening.is_some()
            || self.starting_hub.is_some()
            || self.views.tests.busy()
            || self.views.tests.reload_when_idle
    }

    fn notify(&mut self, error: bool, text: impl Into<String>) {
        let text = text.into();
        if error {
            eprintln!("tapline: {text}");
        }
        self.notices.push(Notice {
            at: Instant::now(),
            error,
            text,
        });
        if self.notices.len() > 200 {
            self.notices.remove(0);
        }
    }

    fn repaint_fn(&self) -> impl Fn() + Send + Sync + 'static {
        let ctx = self.egui_ctx.clone();
        move || ctx.request_repaint()
    }

    /// Drains the workers' channels: a case opened, a hub started, query answers, import
    /// progress, hub events.
    fn absorb(&mut self) {
        self.absorb_opening();
        self.absorb_hub_start();
        let mut done = Vec::new();
        let mut announce = Vec::new();
        if let Some(case) = &mut self.case {
            case.absorb_replies();
            done = std::mem::take(&mut case.done);
            announce = std::mem::take(&mut case.seen.announce);
            // Actions here, or commands of other processes on this case (an import, a revoke).
            if !done.is_empty() || case.take_outside_change() {
                case.refresh();
            }
        }
        for d in done {
            match d {
                Ok(msg) => self.notify(false, msg),
                Err(e) => self.notify(true, e),
            }
        }
        for a in announce {
            self.notify(false, a);
        }
        self.absorb_tests();
        self.absorb_import();
        self.absorb_hub();
    }

    /// A finished test run is kept in the case; generated tests are listed once written.
    fn absorb_tests(&mut self) {
        let Some(case) = &mut self.case else {
            return;
        };
        if let Some(report) = self.views.tests.poll() {
            case.act(super::backend::Query::RecordTestRun(report));
        }
        if self.views.tests.reload_when_idle && !case.busy() {
            self.views.tests.reload_when_idle = false;
            self.views.tests.reload(&case.path, &self.egui_ctx);
        }
    }

    fn absorb_import(&mut self) {
        let Some(job) = &mut self.import else {
            return;
        };
        let mut messages = Vec::new();
        let mut finished = false;
        for e in job.handle.events.try_iter() {
            match e {
                ImportEvent::Progress(p) => job.progress = Some(p),
                ImportEvent::FileDone { file, outcome } => {
                    job.finished_files += 1;
                    job.progress = None;
                    let name = file.display();
                    messages.push(match outcome {
                        Ok(ImportOutcome::Imported(s)) => (
                            false,
                            format!(
                                "{name}: imported {} transactions from {} packets",
                                format::count(s.transactions),
                                format::count(s.packets)
                            ),
                        ),
                        Ok(ImportOutcome::AlreadyImported {
                            name: n,
                            transactions,
                            ..
                        }) => (
                            false,
                            format!(
                                "{name}: already in this case (as {n}, {} transactions)",
                                format::count(transactions)
                            ),
                        ),
                        Ok(ImportOutcome::Cancelled) => {
                            (false, format!("{name}: import cancelled; nothing was kept"))
                        }
                        Err(e) => (true, format!("{name}: {e}")),
                    });
                }
                ImportEvent::Finished => finished = true,
            }
        }
        for (error, m) in messages {
            self.notify(error, m);
        }
        if finished {
            // The import's thread sent its last event and ends: dropping the handle detaches
            // it (no join on the UI thread).
            self.import = None;
            if let Some(case) = &mut self.case {
                case.refresh();
            }
        }
    }

    fn absorb_hub(&mut self) {
        let Some(h) = &mut self.hub else {
            return;
        };
        let mut alerts = Vec::new();
        for e in h.events.try_iter() {
            let line = match &e {
                HubEvent::Connected {
                    sensor,
                    peer,
                    stored_through,
                } => {
                    h.connected.insert(sensor.clone(), (*peer, 0, 0));
                    format!(
                        "{sensor} connected from {peer} (stored through batch {stored_through})"
                    )
                }
                HubEvent::Batch {
                    sensor,
                    seq,
                    records,
                    latest_ns,
                    new,
                } => {
                    if let Some(c) = h.connected.get_mut(sensor) {
                        c.1 += 1;
                        c.2 += *records as u64;
                    }
                    if *new {
                        let flow = h.flow.entry(sensor.clone()).or_default();
                        flow.stored(*records as u64, *latest_ns);
                    }
                    h.new_data |= *new;
                    if !*new {
                        format!("{sensor}: batch {seq} was already stored")
                    } else {
                        continue; // counted, not logged: there are many
                    }
                }
                HubEvent::Disconnected {
                    sensor,
                    peer,
                    error,
                } => {
                    if let Some(s) = sensor {
                        h.connected.remove(s);
                    }
                    format!(
                        "{} ({peer}) disconnected{}",
                        sensor.as_deref().unwrap_or("a sensor"),
                        error
                            .as_deref()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    )
                }
                HubEvent::Refused { peer, reason } => format!("refused {peer}: {reason}"),
                HubEvent::CaseFailed { reason } => {
                    let line = format!(
                        "the case failed: {reason}. Nothing more is acknowledged; sensors keep their records. Free space, then reopen the case"
                    );
                    alerts.push(line.clone());
                    line
                }
                HubEvent::CaseRecovered => "the case is back: storing again".to_owned(),
                HubEvent::Alerted {
                    new,
                    updated,
                    failed,
                } => {
                    for f in failed {
                        alerts.push(format!("alert not delivered (retried): {f}"));
                    }
                    if new + updated == 0 {
                        continue;
                    }
                    format!("alerts sent: {new} new, {updated} update(s)")
                }
                HubEvent::Analysed(a) => {
                    // Endpoints and findings changed in the case: views refresh with counts.
                    h.new_data = true;
                    h.analysis = Some((Instant::now(), *a));
                    if a.new_findings > 0
                        && let Some(case) = &mut self.case
                    {
                        case.seen.live_wrote();
                    }
                    if a.new_findings == 0 {
                        continue;
                    }
                    format!(
                        "live analysis: {} new finding(s), {} updated ({} records analysed)",
                        a.new_findings, a.updated_findings, a.records
                    )
                }
            };
            h.log.push_back(line);
            if h.log.len() > 500 {
                h.log.pop_front();
            }
        }
        // New sensor data: refresh counts at most every two seconds.
        if h.new_data && self.last_live_refresh.elapsed() >= Duration::from_secs(2) {
            h.new_data = false;
            self.last_live_refresh = Instant::now();
            if let Some(case) = &mut self.case {
                case.refresh();
            }
        }
        if h.new_data {
            self.egui_ctx.request_repaint_after(Duration::from_secs(2));
        }
        for alert in alerts {
            self.notify(true, alert);
        }
    }

    /// Handles every queued command.
    fn handle_commands(&mut self, ctx: &egui::Context) {
        for c in std::mem::take(&mut self.commands) {
            self.handle(c, ctx);
        }
    }

    /// Carries out one command.
    pub fn handle(&mut self, c: Command, ctx: &egui::Context) {
        match c {
            Command::OpenCaptureDialog => self.file_dialog(
                DialogPurpose::OpenCaptures,
                picker::Request {
                    title: "Open captures".into(),
                    extensions: vec!["pcap", "pcapng", "cap", "har"],
                    multiple: true,
                    save_as: None,
                },
            ),
            Command::OpenCaseDialog => self.file_dialog(
                DialogPurpose::OpenCase,
                picker::Request {
                    title: "Open case".into(),
                    extensions: vec!["duckdb"],
                    multiple: false,
                    save_as: None,
                },
            ),
            Command::NewCaseDialog => self.file_dialog(
                DialogPurpose::NewCase,
                picker::Request {
                    title: "New case".into(),
                    extensions: vec!["duckdb"],
                    multiple: false,
                    save_as: Some("case.duckdb".into()),
                },
            ),
            Command::Open(files) => self.open(files),
            Command::CancelImport => {
                if let Some(job) = &mut self.import {
                    job.handle
                        .cancel
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    job.cancelling = true;
                }
            }
            Command::CloseCase => {
                if self.import.is_some() {
                    self.notify(
                        true,
                        "an import is running: cancel it before closing the case",
                    );
                } else {
                    self.stop_hub();
                    self.case = None;
                    self.settings.last_case = None;
                    self.views = ViewStates::default();
                }
            }
            Command::Refresh => {
                if let Some(c) = &mut self.case {
                    c.refresh();
                }
            }
            Command::Show(v) => self.settings.view = v,
            Command::ShowEndpoint(id) => {
                self.settings.view = View::Inventory;
                self.views.inventory.selected = Some(id);
                self.views.inventory.scroll_to_selected = true;
            }
            Command::ShowFinding(id) => {
                self.settings.view = View::Attacks;
                self.views.attacks.select(id, self.case.as_mut());
            }
            Command::ShowSeverity(s) => {
                self.settings.view = View::Attacks;
                self.views.attacks.severity = Some(s);
            }
            Command::ShowDataClass(class, endpoint) => {
                self.settings.view = View::Sensitive;
                self.views.sensitive.focus(class, endpoint);
            }
            Command::ShowTraffic(filter) => {
                let filter = *filter;
                self.settings.view = View::Traffic;
                self.views.traffic.set_filter(&filter);
                if let Some(case) = &mut self.case {
                    let (sort, desc) = (case.tx.sort, case.tx.descending);
                    case.set_traffic(filter, sort, desc);
                }
            }
            Command::ShowTransaction(id) => {
                self.settings.view = View::Traffic;
                if let Some(case) = &mut self.case {
                    case.select_transaction(id);
                }
            }
            Command::ExportOpenApi => self.file_dialog(
                DialogPurpose::ExportOpenApi,
                picker::Request {
                    title: "Export OpenAPI".into(),
                    extensions: vec!["json"],
                    multiple: false,
                    save_as: Some("openapi.json".into()),
                },
            ),
            Command::StartHub => self.start_hub(),
            Command::StopHub => self.stop_hub(),
            Command::EnrolSensor(name) => self.file_dialog(
                DialogPurpose::EnrolSensor(name.clone()),
                picker::Request {
                    title: "Save the sensor's configuration".into(),
                    extensions: vec!["toml"],
                    multiple: false,
                    save_as: Some(format!("{name}.toml")),
                },
            ),
            Command::RevokeSensor(name) => {
                if let Some(case) = &mut self.case {
                    case.act(super::backend::Query::Revoke(name));
                }
            }
            Command::AddAlertSink(kind, target, min) => {
                if let Some(case) = &mut self.case {
                    case.act(super::backend::Query::AddAlertSink { kind, target, min });
                }
            }
            Command::RemoveAlertSink(id) => {
                if let Some(case) = &mut self.case {
                    case.act(super::backend::Query::RemoveAlertSink(id));
                }
            }
            Command::Copy(text) => ctx.copy_text(text),
            Command::ReloadTests => {
                if let Some(case) = &self.case {
                    self.views.tests.reload(&case.path, ctx);
                }
            }
            Command::BlockDraft(draft) => {
                self.views.blocks.start(*draft);
                self.settings.view = View::Blocks;
            }
            Command::GenerateTests { endpoint, finding } => {
                if let Some(case) = &mut self.case {
                    let dir = self.views.tests.folder(&case.path);
                    case.act(super::backend::Query::GenerateTests {
                        endpoint,
                        finding,
                        dir,
                    });
                    self.views.tests.reload_when_idle = true;
                    self.settings.view = View::Tests;
                }
            }
        }
    }

    /// Asks for a file: the system's dialog, or the built-in picker when the desktop has none
    /// (found out the first time, said once).
    fn file_dialog(&mut self, purpose: DialogPurpose, req: picker::Request) {
        if self.dialogs == Dialogs::System {
            match picker::system(&req) {
                Ok(paths) if paths.is_empty() => return,
                Ok(paths) => return self.chosen(purpose, paths),
                Err(picker::Unavailable) => {
                    self.dialogs = Dialogs::BuiltIn;
                    self.notify(
                        false,
                        "no desktop file dialog answered (is xdg-desktop-portal running?): using Tapline's own",
                    );
                }
            }
        }
        let start = std::env::current_dir()
            .ok()
            .or_else(|| std::env::var_os("HOME").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/"));
        self.picker = Some((purpose, Picker::new(req, start)));
    }

    /// Carries out what a file dialog was for.
    fn chosen(&mut self, purpose: DialogPurpose, mut paths: Vec<PathBuf>) {
        let Some(first) = paths.first().cloned() else {
            return;
        };
        match purpose {
            DialogPurpose::OpenCaptures | DialogPurpose::OpenCase => self.open(paths),
            DialogPurpose::NewCase => self.open_case(first, Vec::new()),
            DialogPurpose::ExportOpenApi => {
                if let Some(case) = &mut self.case {
                    case.act(super::backend::Query::ExportOpenApi(first));
                }
            }
            DialogPurpose::EnrolSensor(name) => {
                if let Some(case) = &mut self.case {
                    case.act(super::backend::Query::Enrol {
                        name,
                        hub: self.settings.hub_address.clone(),
                        identity: self.launch.identity_dir.clone(),
                        output: paths.swap_remove(0),
                    });
                }
            }
        }
    }

    /// The built-in picker, while it is open.
    fn picker_ui(&mut self, ctx: &egui::Context) {
        let Some((_, picker)) = &mut self.picker else {
            return;
        };
        match picker.ui(ctx) {
            picker::Outcome::Open => {}
            picker::Outcome::Cancelled => self.picker = None,
            picker::Outcome::Chosen(paths) => {
                if let Some((purpose, _)) = self.picker.take() {
                    self.chosen(purpose, paths);
                }
            }
        }
    }

    /// Opens a case file, or imports captures (into the open case, else a new one).
    fn open(&mut self, files: Vec<PathBuf>) {
        let (cases, captures): (Vec<PathBuf>, Vec<PathBuf>) =
            files.into_iter().partition(|f| is_case_file(f));
        if let Some(case) = cases.first() {
            if cases.len() > 1 {
                self.notify(true, "open one case at a time; opened the first");
            }
            self.open_case(case.clone(), captures);
            return;
        }
        if captures.is_empty() {
            return;
        }
        if self.case.is_some() {
            self.start_import(captures);
            return;
        }
        let target = self
            .launch
            .case
            .clone()
            .unwrap_or_else(|| case_for_capture(&self.launch.data_dir, &captures[0]));
        self.open_case(target, captures);
    }

    /// Opens the case at `path` on a worker (creating its folder, running migrations), then
    /// imports `then_import` into it.
    fn open_case(&mut self, path: PathBuf, then_import: Vec<PathBuf>) {
        if self.import.is_some() || self.opening.is_some() {
            self.notify(
                true,
                "a case is opening or an import is running: wait for it, or cancel the import",
            );
            return;
        }
        if self.case.as_ref().is_some_and(|c| c.path == path) {
            if !then_import.is_empty() {
                self.start_import(then_import);
            }
            return;
        }
        self.stop_hub();
        if let Some(old) = self.case.take() {
            lifecycle::retire("case", old);
        }
        let repaint = self.repaint_fn();
        let target = path.clone();
        let job = move || -> anyhow::Result<Case> {
            if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
            }
            Case::open(target, repaint)
        };
        match lifecycle::spawn("open-case", self.repaint_fn(), job) {
            Ok(pending) => {
                self.opening = Some(Opening {
                    path,
                    then_import,
                    pending,
                })
            }
            Err(e) => self.notify(true, format!("cannot start opening the case: {e}")),
        }
    }

    /// Takes in the case that finished opening, if one did.
    fn absorb_opening(&mut self) {
        let Some(result) = self.opening.as_ref().and_then(|o| o.pending.poll()) else {
            return;
        };
        let Some(Opening {
            path, then_import, ..
        }) = self.opening.take()
        else {
            return;
        };
        match result.map_err(anyhow::Error::from).and_then(|r| r) {
            Ok(case) => {
                self.case = Some(case);
                self.views = ViewStates::default();
                self.settings.last_case = Some(path.clone());
                self.settings.recent.retain(|p| p != &path);
                self.settings.recent.insert(0, path);
                self.settings.recent.truncate(10);
                if !then_import.is_empty() {
                    self.start_import(then_import);
                }
            }
            Err(e) => self.notify(true, format!("cannot open case {}: {e:#}", path.display())),
        }
    }

    fn start_import(&mut self, files: Vec<PathBuf>) {
        if self.import.is_some() {
            self.notify(
                true,
                "an import is already running; wait for it or cancel it",
            );
            return;
        }
        let Some(case) = &self.case else { return };
        let store = match case.store_clone() {
            Ok(s) => s,
            Err(e) => {
                self.notify(true, format!("cannot start the import: {e:#}"));
                return;
            }
        };
        let n = files.len();
        match tapline_ingest::import::spawn_import(
            store,
            files,
            ImportOptions::default(),
            self.repaint_fn(),
        ) {
            Ok(handle) => {
                self.import = Some(ImportJob {
                    handle,
                    progress: None,
                    files: n,
                    finished_files: 0,
                    cancelling: false,
                })
            }
            Err(e) => self.notify(true, format!("cannot start the import thread: {e}")),
        }
    }

    fn start_hub(&mut self) {
        if self.hub.is_some() || self.starting_hub.is_some() {
            return;
        }
        let Some(case) = &self.case else {
            self.notify(
                true,
                "open or create a case first: sensor records are stored in it",
            );
            return;
        };
        let listen = match self.launch.listen {
            Some(a) => a,
            None => match self.settings.listen.parse() {
                Ok(a) => a,
                Err(e) => {
                    self.notify(
                        true,
                        format!(
                            "listen address {:?}: {e} (e.g. 0.0.0.0:4433)",
                            self.settings.listen
                        ),
                    );
                    return;
                }
            },
        };
        let store = match case.store_clone() {
            Ok(s) => s,
            Err(e) => {
                self.notify(true, format!("cannot start the hub: {e:#}"));
                return;
            }
        };
        let identity_dir = self.launch.identity_dir.clone();
        let repaint = self.repaint_fn();
        // Loading (or creating) the identity writes files and the hub binds a socket: both on
        // a worker.
        let job = move || -> anyhow::Result<HubState> {
            let identity = tapline_link::HubIdentity::load_or_create(&identity_dir)?;
            let (tx, events) = mpsc::channel();
            let hub = Hub::start(
                store,
                tapline_hub::Recovery::Report,
                &identity,
                listen,
                tapline_hub::LiveAnalysis::ON,
                move |e| {
                    let _ = tx.send(e);
                    repaint();
                },
            )?;
            Ok(HubState {
                addr: hub.local_addr(),
                hub,
                events,
                connected: BTreeMap::new(),
                flow: BTreeMap::new(),
                analysis: None,
                log: VecDeque::new(),
                ca_fingerprint: identity.fingerprint()?,
                new_data: false,
            })
        };
        match lifecycle::spawn("start-hub", self.repaint_fn(), job) {
            Ok(pending) => self.starting_hub = Some((listen, pending)),
            Err(e) => self.notify(true, format!("cannot start the hub: {e}")),
        }
    }

    /// Takes in the hub that finished starting, if one did.
    fn absorb_hub_start(&mut self) {
        let Some(result) = self.starting_hub.as_ref().and_then(|(_, p)| p.poll()) else {
            return;
        };
        let Some((listen, _)) = self.starting_hub.take() else {
            return;
        };
        match result.map_err(anyhow::Error::from).and_then(|r| r) {
            Ok(h) => {
                let msg = format!("listening for sensors on {} (UDP)", h.addr);
                self.hub = Some(h);
                self.notify(false, msg);
            }
            Err(e) => self.notify(
                true,
                format!("cannot listen for sensors on {listen}: {e:#}"),
            ),
        }
    }

    /// Stops the hub on a worker (its runtime and store thread are joined there).
    fn stop_hub(&mut self) {
        if let Some(h) = self.hub.take() {
            lifecycle::retire("hub", StopOnDrop(Some(h.hub)));
        }
    }

    fn shortcuts(&mut self, ctx: &egui::Context) {
        let cmd = |k| KeyboardShortcut::new(Modifiers::COMMAND, k);
        let cmd_shift = |k| KeyboardShortcut::new(Modifiers::COMMAND | Modifiers::SHIFT, k);
        ctx.input_mut(|i| {
            for v in View::ALL {
                if i.consume_shortcut(&cmd(v.key())) {
                    self.commands.push(Command::Show(v));
                }
            }
            if i.consume_shortcut(&cmd_shift(Key::O)) {
                self.commands.push(Command::OpenCaseDialog);
            }
            if i.consume_shortcut(&cmd(Key::O)) {
                self.commands.push(Command::OpenCaptureDialog);
            }
            if i.consume_shortcut(&cmd(Key::N)) {
                self.commands.push(Command::NewCaseDialog);
            }
            if i.consume_shortcut(&cmd(Key::R)) || i.consume_key(Modifiers::NONE, Key::F5) {
                self.commands.push(Command::Refresh);
            }
            if i.consume_shortcut(&cmd(Key::D)) {
                self.settings.theme = match self.settings.theme {
                    ThemeChoice::Dark => ThemeChoice::Light,
                    _ => ThemeChoice::Dark,
                };
            }
            if i.consume_shortcut(&cmd(Key::M)) {
                self.settings.mask_values = !self.settings.mask_values;
            }
            if i.consume_shortcut(&cmd(Key::F)) {
                self.views.traffic.focus_filter = true;
                self.views.inventory.focus_filter = true;
            }
        });
    }

    fn menu_bar(&mut self, ui: &mut egui::Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("Open capture…  Ctrl+O").clicked() {
                    self.commands.push(Command::OpenCaptureDialog);
                }
                if ui.button("Open case…  Ctrl+Shift+O").clicked() {
                    self.commands.push(Command::OpenCaseDialog);
                }
                if ui.button("New case…  Ctrl+N").clicked() {
                    self.commands.push(Command::NewCaseDialog);
                }
                ui.separator();
                let has_case = self.case.is_some();
                if ui
                    .add_enabled(has_case, egui::Button::new("Export OpenAPI…"))
                    .clicked()
                {
                    self.commands.push(Command::ExportOpenApi);
                }
                if ui
                    .add_enabled(has_case, egui::Button::new("Close case"))
                    .clicked()
                {
                    self.commands.push(Command::CloseCase);
                }
                ui.separator();
                if ui.button("Quit").clicked() {
                    ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                }
            });
            ui.menu_button("View", |ui| {
                for v in View::ALL {
                    let n = View::ALL.iter().position(|x| *x == v).unwrap_or(0) + 1;
                    if ui.button(format!("{}  Ctrl+{n}", v.label())).clicked() {
                        self.commands.push(Command::Show(v));
                    }
                }
                ui.separator();
                ui.label("Theme (Ctrl+D)");
                ui.radio_value(&mut self.settings.theme, ThemeChoice::System, "System");
                ui.radio_value(&mut self.settings.theme, ThemeChoice::Light, "Light");
                ui.radio_value(&mut self.settings.theme, ThemeChoice::Dark, "Dark");
                ui.separator();
                ui.checkbox(
                    &mut self.settings.mask_values,
                    "Mask sensitive values (Ctrl+M)",
                );
                if ui.button("Refresh  Ctrl+R").clicked() {
                    self.commands.push(Command::Refresh);
                }
            });
            ui.menu_button("Help", |ui| {
                ui.label(RichText::new("Keyboard").strong());
                for (k, what) in SHORTCUTS {
                    ui.label(format!("{k:<16} {what}"));
                }
            });
        });
    }

    fn nav_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            for v in View::ALL {
                let badge = self.nav_badge(v);
                let text = match badge {
                    Some(b) => format!("{}  {b}", v.label()),
                    None => v.label().to_owned(),
                };
                if ui
                    .selectable_label(self.settings.view == v, RichText::new(text).size(15.0))
                    .clicked()
                {
                    self.commands.push(Command::Show(v));
                }
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if let Some(case) = &self.case {
                    ui.label(
                        RichText::new(case.path.file_name().map_or_else(
                            || case.path.display().to_string(),
                            |n| n.to_string_lossy().into_owned(),
                        ))
                        .weak(),
                    )
                    .on_hover_text(case.path.display().to_string());
                }
            });
        });
    }

    fn nav_badge(&self, v: View) -> Option<String> {
        let inv = self.case.as_ref()?.inventory.value.as_ref()?;
        match v {
            View::Inventory => Some(inv.endpoints.len().to_string()),
            View::Attacks => Some(
                inv.findings
                    .iter()
                    .filter(|f| f.severity != tapline_store::endpoints::Severity::Info)
                    .count()
                    .to_string(),
            ),
            View::Sensitive => Some(inv.classes.len().to_string()),
            View::Traffic => self
                .case
                .as_ref()?
                .overview
                .value
                .as_ref()
                .map(|o| format::count(o.transactions)),
            _ => None,
        }
    }

    fn import_bar(&mut self, ui: &mut egui::Ui) {
        let Some(job) = &self.import else { return };
        ui.horizontal(|ui| {
            let (fraction, text) = match &job.progress {
                Some(p) => {
                    let f = p.bytes_done as f32 / p.bytes_total.max(1) as f32;
                    let eta = p.eta().map(format::eta).unwrap_or_else(|| "…".into());
                    let name = p
                        .file
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    (
                        f,
                        format!(
                            "{name}: {} of {} · {} transactions · {}/s · {eta} left",
                            format::bytes(p.bytes_done),
                            format::bytes(p.bytes_total),
                            format::count(p.transactions),
                            format::bytes(p.rate() as u64),
                        ),
                    )
                }
                None => (0.0, "reading…".to_owned()),
            };
            let label = if job.files > 1 {
                format!("file {} of {} · {text}", job.finished_files + 1, job.files)
            } else {
                text
            };
            if job.cancelling {
                ui.spinner();
                ui.label("cancelling…");
            } else if ui.button("Cancel import").clicked() {
                self.commands.push(Command::CancelImport);
            }
            ui.add(
                egui::ProgressBar::new(fraction)
                    .text(label)
                    .animate(true)
                    .desired_width(ui.available_width()),
            );
        });
    }

    fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            if let Some(n) = self.notices.last() {
                let text = RichText::new(&n.text);
                let text = if n.error {
                    text.color(ui.visuals().error_fg_color)
                } else {
                    text
                };
                ui.label(text).on_hover_ui(|ui| {
                    for n in self.notices.iter().rev().take(20) {
                        ui.label(&n.text);
                    }
                });
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let fs = &self.frame_stats;
                ui.label(
                    RichText::new(format!("frame {:.1} ms", fs.last.as_secs_f64() * 1e3))
                        .weak()
                        .monospace(),
                )
                .on_hover_text(format!(
                    "CPU time of the UI per frame: last {:.2} ms, mean {:.2} ms, worst {:.2} ms over {} frames",
                    fs.last.as_secs_f64() * 1e3,
                    fs.total.as_secs_f64() * 1e3 / fs.frames.max(1) as f64,
                    fs.worst.as_secs_f64() * 1e3,
                    fs.frames
                ));
                if let Some(h) = &self.hub {
                    ui.label(format!(
                        "hub {} · {} sensor(s) connected",
                        h.addr,
                        h.connected.len()
                    ));
                }
                if let Some(case) = &self.case
                    && case.busy()
                {
                    ui.spinner();
                }
            });
        });
    }

    fn central(&mut self, ui: &mut egui::Ui) {
        let Some(case) = &mut self.case else {
            welcome::ui(ui, &self.settings, &mut self.commands);
            return;
        };
        let cmds = &mut self.commands;
        let mask = super::format::Masking::from_setting(self.settings.mask_values);
        // Leaving the attacks view is having looked at what it showed.
        if self.shown_view == Some(View::Attacks) && self.settings.view != View::Attacks {
            case.seen.looked();
        }
        self.shown_view = Some(self.settings.view);
        match self.settings.view {
            View::Overview => overview::ui(ui, case, cmds),
            View::Inventory => inventory::ui(ui, &mut self.views.inventory, case, cmds),
            View::Traffic => traffic::ui(ui, &mut self.views.traffic, case, mask, cmds),
            View::Sensitive => sensitive::ui(ui, &mut self.views.sensitive, case, mask, cmds),
            View::Attacks => attacks::ui(ui, &mut self.views.attacks, case, cmds),
            View::Sensors => sensors::ui(
                ui,
                &mut self.views.sensors,
                case,
                self.hub.as_ref(),
                &mut self.settings,
                cmds,
            ),
            View::Tests => tests::ui(ui, &mut self.views.tests, case, cmds),
            View::Blocks => super::blocks::ui(ui, &mut self.views.blocks, case, cmds),
        }
    }

    /// Screenshot mode: once the case is loaded, the import done and the worker idle for a
    /// few frames, save the window as PNG and close.
    fn maybe_screenshot(&mut self, ctx: &egui::Context) {
        let Some(path) = self.launch.screenshot.clone() else {
            return;
        };
        let idle = self.import.is_none()
            && self.commands.is_empty()
            && self
                .case
                .as_ref()
                .is_some_and(|c| !c.busy() && c.overview.value.is_some());
        self.idle_frames = if idle { self.idle_frames + 1 } else { 0 };
        if self.idle_frames < 5 {
            ctx.request_repaint();
            return;
        }
        if self.screenshot_requested {
            return;
        }
        self.screenshot_requested = true;
        let ctx2 = ctx.clone();
        let stats = self.frame_stats.clone();
        ctx.request_screenshot(move |image| {
            match save_png(&path, &image) {
                Ok(()) => eprintln!(
                    "tapline: screenshot {}x{} saved to {}; frames {}, UI CPU per frame mean {:.2} ms, worst {:.2} ms",
                    image.size[0],
                    image.size[1],
                    path.display(),
                    stats.frames,
                    stats.total.as_secs_f64() * 1e3 / stats.frames.max(1) as f64,
                    stats.worst.as_secs_f64() * 1e3
                ),
                Err(e) => eprintln!("tapline: cannot save the screenshot: {e:#}"),
            }
            ctx2.send_viewport_cmd(egui::ViewportCommand::Close);
        });
        ctx.request_repaint();
    }
}

/// The keyboard shortcuts, for the help menu.
pub const SHORTCUTS: &[(&str, &str)] = &[
    ("Ctrl+1 … Ctrl+6", "switch view"),
    ("Ctrl+O", "open capture"),
    ("Ctrl+Shift+O", "open case"),
    ("Ctrl+N", "new case"),
    ("Ctrl+F", "filter (inventory, traffic)"),
    ("Ctrl+R / F5", "refresh"),
    ("Ctrl+D", "dark / light theme"),
    ("Ctrl+M", "mask / reveal sensitive values"),
    ("Ctrl+Shift+C", "copy transaction as curl"),
    ("↑ ↓", "previous / next row"),
    ("Esc", "clear the selection"),
];

fn is_case_file(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "duckdb" || e == "db")
}

/// `data_dir/cases/<capture stem>.duckdb`.
fn case_for_capture(data_dir: &Path, capture: &Path) -> PathBuf {
    let stem = capture
        .file_stem()
        .map_or_else(|| "capture".into(), |s| s.to_string_lossy().into_owned());
    data_dir.join("cases").join(format!("{stem}.duckdb"))
}

fn save_png(path: &Path, image: &egui::ColorImage) -> anyhow::Result<()> {
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut enc = png::Encoder::new(file, image.size[0] as u32, image.size[1] as u32);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header()?;
    let bytes: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_array()).collect();
    w.write_image_data(&bytes)?;
    w.finish()?;
    Ok(())
}

/// Readable defaults: slightly larger text, roomier rows, the chosen theme.
fn apply_style(ctx: &egui::Context, theme: ThemeChoice) {
    ctx.set_theme(match theme {
        ThemeChoice::System => egui::ThemePreference::System,
        ThemeChoice::Light => egui::ThemePreference::Light,
        ThemeChoice::Dark => egui::ThemePreference::Dark,
    });
    ctx.global_style_mut(|s| {
        // Rows and links take the click; text meant for copying says so (bodies, values).
        s.interaction.selectable_labels = false;
        s.spacing.item_spacing = egui::vec2(8.0, 5.0);
        s.spacing.button_padding = egui::vec2(6.0, 3.0);
        if let Some(body) = s.text_styles.get_mut(&egui::TextStyle::Body) {
            body.size = 14.0;
        }
        if let Some(mono) = s.text_styles.get_mut(&egui::TextStyle::Monospace) {
            mono.size = 13.0;
        }
        if let Some(button) = s.text_styles.get_mut(&egui::TextStyle::Button) {
            button.size = 14.0;
        }
    });
}

impl eframe::App for Workbench {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        // Everything the workers sent since the last frame; each channel is drained fully
        // (messages are small and bounded by what was asked).
        self.absorb();
        self.shortcuts(ctx);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let started = Instant::now();
        let ctx = ui.ctx().clone();
        egui::Panel::top("menu").show(ui, |ui| {
            self.menu_bar(ui);
            if self.case.is_some() {
                self.nav_bar(ui);
            }
        });
        egui::Panel::bottom("status").show(ui, |ui| {
            self.import_bar(ui);
            self.status_bar(ui);
        });
        egui::CentralPanel::default().show(ui, |ui| self.central(ui));
        self.picker_ui(&ctx);
        self.handle_commands(&ctx);
        if self.applied_theme != self.settings.theme {
            apply_style(&ctx, self.settings.theme);
            self.applied_theme = self.settings.theme;
        }
        self.maybe_screenshot(&ctx);
        let took = started.elapsed();
        let fs = &mut self.frame_stats;
        fs.frames += 1;
        fs.last = took;
        fs.worst = fs.worst.max(took);
        fs.total += took;
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.settings);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        // At exit the app waits for the hub to stop and the import to roll back: nothing is
        // drawn any more.
        if let Some(h) = self.hub.take()
            && let Err(e) = h.hub.stop()
        {
            tracing::warn!("the hub stopped with an error: {e:#}");
        }
        if let Some(job) = self.import.take() {
            job.handle
                .cancel
                .store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = job.handle.thread.join();
        }
    }
}
