//! Tests: the security tests of a folder (by default beside the case), generated from the
//! inventory or a finding, edited with validation as you type, run against a target with live
//! progress, verdicts with the request and response side by side, and the case's run history.
//!
//! Files are read and runs made on worker threads that report through channels; the view
//! only draws what has arrived.

use super::app::Command;
use super::case::Case;
use super::format;
use eframe::egui::{self, Color32, RichText};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use tapline_sectest::run::{Mode, Progress, RunOptions, RunReport, TestResult, Verdict};

/// One test file as listed.
#[derive(Debug, Clone)]
pub struct Listed {
    path: PathBuf,
    /// `id · name · severity`, or why the file does not load.
    summary: Result<String, String>,
    id: Option<String>,
}

/// A file read or written off the UI thread.
enum FileDone {
    Opened(PathBuf, Result<String, String>),
    Saved(PathBuf, Result<(), String>),
}

/// What a run's worker says.
enum RunMsg {
    Started {
        index: usize,
        total: usize,
        id: String,
    },
    Finished(Box<RunReport>),
    Failed(String),
}

/// A run in progress.
struct RunJob {
    rx: mpsc::Receiver<RunMsg>,
    stop: Arc<AtomicBool>,
    index: usize,
    total: usize,
    current: String,
}

/// The view's state.
#[derive(Default)]
pub struct State {
    /// The tests folder; empty: beside the case.
    pub dir: String,
    /// Where requests go.
    pub target: String,
    /// KEY=VALUE secrets for `{{env.KEY}}`.
    pub env_file: String,
    files: Vec<Listed>,
    listing: Option<mpsc::Receiver<Vec<Listed>>>,
    file_io: Option<mpsc::Receiver<FileDone>>,
    /// The file open in the editor, its text, and whether it changed since it was read.
    editing: Option<(PathBuf, String, bool)>,
    /// The editor's text checked: `Ok(summary)` or the error with its line and column.
    validation: Option<Result<String, String>>,
    run: Option<RunJob>,
    /// The last run's report, and the result picked to show.
    report: Option<Arc<RunReport>>,
    picked: Option<usize>,
    /// Said after the last action (a save, a failed run).
    message: Option<Result<String, String>>,
    /// Read the folder once the case's pending actions (a generation) are done.
    pub reload_when_idle: bool,
}

impl State {
    /// The folder tests are read from and generated into.
    pub fn folder(&self, case: &Path) -> PathBuf {
        if self.dir.trim().is_empty() {
            let stem = case
                .file_stem()
                .map_or_else(|| "case".into(), |s| s.to_string_lossy().into_owned());
            case.with_file_name(format!("{stem}-tests"))
        } else {
            PathBuf::from(self.dir.trim())
        }
    }

    /// Reads the folder again (after generation, or when asked).
    pub fn reload(&mut self, case: &Path, ctx: &egui::Context) {
        let dir = self.folder(case);
        let (tx, rx) = mpsc::channel();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("tests-list".into())
            .spawn(move || {
                let _ = tx.send(list(&dir));
                ctx.request_repaint();
            });
        if spawned.is_ok() {
            self.listing = Some(rx);
        }
    }

    /// Whether a worker is busy.
    pub fn busy(&self) -> bool {
        self.listing.is_some() || self.run.is_some() || self.file_io.is_some()
    }

    /// Reads or writes a file on a thread of its own; the answer arrives through `poll`.
    fn file_job(&mut self, ctx: &egui::Context, job: impl FnOnce() -> FileDone + Send + 'static) {
        let (tx, rx) = mpsc::channel();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("tests-file".into())
            .spawn(move || {
                let _ = tx.send(job());
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => self.file_io = Some(rx),
            Err(e) => self.message = Some(Err(format!("cannot start a file job: {e}"))),
        }
    }

    fn absorb_file(&mut self, done: FileDone) {
        match done {
            FileDone::Opened(path, Ok(text)) => {
                self.validation = Some(validate(&path, &text));
                self.editing = Some((path, text, false));
            }
            FileDone::Opened(path, Err(e)) => {
                self.message = Some(Err(format!("cannot read {}: {e}", path.display())))
            }
            FileDone::Saved(path, Ok(())) => {
                if let Some((p, _, dirty)) = &mut self.editing
                    && *p == path
                {
                    *dirty = false;
                }
                self.message = Some(Ok(format!("saved {}", path.display())));
            }
            FileDone::Saved(path, Err(e)) => {
                self.message = Some(Err(format!("cannot save {}: {e}", path.display())))
            }
        }
    }

    /// Takes in what the workers said; returns a finished run for the case to keep.
    pub fn poll(&mut self) -> Option<Arc<RunReport>> {
        if let Some(rx) = &self.listing
            && let Ok(files) = rx.try_recv()
        {
            self.files = files;
            self.listing = None;
        }
        if let Some(rx) = &self.file_io
            && let Ok(done) = rx.try_recv()
        {
            self.file_io = None;
            self.absorb_file(done);
        }
        let job = self.run.as_mut()?;
        let mut finished = None;
        for msg in job.rx.try_iter() {
            match msg {
                RunMsg::Started { index, total, id } => {
                    job.index = index;
                    job.total = total;
                    job.current = id;
                }
                RunMsg::Finished(r) => finished = Some(Arc::new(*r)),
                RunMsg::Failed(e) => self.message = Some(Err(e)),
            }
        }
        let ended = finished.is_some()
            || matches!(self.message, Some(Err(_))) && job.rx.try_recv().is_err();
        if let Some(r) = &finished {
            self.report = Some(Arc::clone(r));
            self.picked = r.tests.iter().position(|t| t.verdict != Verdict::Pass);
        }
        if ended {
            self.run = None;
        }
        finished
    }
}

/// Lists the YAML files of `dir` with what each holds.
fn list(dir: &Path) -> Vec<Listed> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|e| e.to_string());
            let loaded = text.and_then(|t| {
                tapline_sectest::load::parse_any(&path, &t).map_err(|e| e.to_string())
            });
            match loaded {
                Ok(None) => None, // the identities file
                Ok(Some(t)) => Some(Listed {
                    summary: Ok(format!("{} · {}", t.meta.severity, t.meta.name)),
                    id: Some(t.id),
                    path,
                }),
                Err(e) => Some(Listed {
                    path,
                    summary: Err(e),
                    id: None,
                }),
            }
        })
        .collect()
}

/// Draws the tests view.
pub fn ui(ui: &mut egui::Ui, state: &mut State, case: &mut Case, cmds: &mut Vec<Command>) {
    let folder = state.folder(&case.path);
    controls(ui, state, &folder, cmds);
    if let Some(m) = &state.message {
        match m {
            Ok(t) => ui.label(t),
            Err(e) => ui.colored_label(ui.visuals().error_fg_color, e),
        };
    }
    ui.separator();
    egui::Panel::left("tests-files")
        .resizable(true)
        .default_size(380.0)
        .show(ui, |ui| {
            files(ui, state);
            ui.separator();
            history(ui, case);
        });
    egui::CentralPanel::default().show(ui, |ui| {
        egui::ScrollArea::vertical()
            .id_salt("tests-main")
            .show(ui, |ui| {
                editor(ui, state);
                results(ui, state);
            });
    });
}

fn controls(ui: &mut egui::Ui, state: &mut State, folder: &Path, cmds: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        let label = ui.label("Tests folder");
        ui.add(egui::TextEdit::singleline(&mut state.dir).hint_text(folder.display().to_string()).desired_width(380.0))
            .labelled_by(label.id);
        if ui.button("Reload").clicked() {
            cmds.push(Command::ReloadTests);
        }
        if ui
            .button("Generate for every endpoint")
            .on_hover_text("Build tests from the case's traffic into the folder: BOLA, BFLA, authentication, injection, mass assignment, data exposure, rate limits, user enumeration, headers")
            .clicked()
        {
            cmds.push(Command::GenerateTests { endpoint: None, finding: None });
        }
    });
    ui.horizontal(|ui| {
        let label = ui.label("Target");
        ui.add(
            egui::TextEdit::singleline(&mut state.target)
                .hint_text("http://staging.example:8080")
                .desired_width(260.0),
        )
        .labelled_by(label.id);
        let label = ui.label("Env file");
        ui.add(
            egui::TextEdit::singleline(&mut state.env_file)
                .hint_text("secrets.env (KEY=VALUE)")
                .desired_width(200.0),
        )
        .labelled_by(label.id);
        match &state.run {
            None => {
                let ready = !state.target.trim().is_empty();
                if ui
                    .add_enabled(ready, egui::Button::new("Run all"))
                    .clicked()
                {
                    start_run(state, folder, ui.ctx());
                }
            }
            Some(job) => {
                let frac = if job.total == 0 {
                    0.0
                } else {
                    job.index as f32 / job.total as f32
                };
                ui.add(
                    egui::ProgressBar::new(frac)
                        .desired_width(200.0)
                        .text(format!("{}/{} {}", job.index, job.total, job.current)),
                );
                if ui.button("Stop").clicked() {
                    job.stop.store(true, Ordering::Release);
                }
            }
        }
    });
}

fn files(ui: &mut egui::Ui, state: &mut State) {
    ui.heading("Files");
    if state.listing.is_some() {
        ui.spinner();
    }
    if state.files.is_empty() {
        ui.label("No tests here yet: generate them, or point the folder at yours.");
        return;
    }
    let verdict_of = |id: &Option<String>| {
        let r = state.report.as_ref()?;
        r.tests
            .iter()
            .find(|t| Some(&t.id) == id.as_ref())
            .map(|t| t.verdict)
    };
    let mut open = None;
    egui::ScrollArea::vertical()
        .id_salt("tests-list")
        .max_height(360.0)
        .show(ui, |ui| {
            for (i, f) in state.files.iter().enumerate() {
                let name = f
                    .path
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                ui.horizontal(|ui| {
                    match verdict_of(&f.id) {
                        Some(v) => verdict_badge(ui, v),
                        None => {
                            ui.label(RichText::new("·").weak());
                        }
                    }
                    let selected = state.editing.as_ref().is_some_and(|(p, _, _)| *p == f.path);
                    let label = ui.selectable_label(selected, &name);
                    let label = match &f.summary {
                        Ok(s) => label.on_hover_text(s),
                        Err(e) => label.on_hover_text(RichText::new(e).color(Color32::RED)),
                    };
                    if label.clicked() {
                        open = Some(i);
                    }
                });
            }
        });
    if let Some(i) = open {
        let path = state.files[i].path.clone();
        state.file_job(ui.ctx(), move || {
            let text = std::fs::read_to_string(&path).map_err(|e| e.to_string());
            FileDone::Opened(path, text)
        });
    }
}

fn validate(path: &Path, text: &str) -> Result<String, String> {
    match tapline_sectest::load::parse_any(path, text) {
        Ok(Some(t)) => {
            let requests: usize = t.steps.iter().map(|s| s.attempts.count()).sum();
            Ok(format!(
                "valid: {} step(s), at most {requests} request(s)",
                t.steps.len()
            ))
        }
        Ok(None) => Ok("valid identities file".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn editor(ui: &mut egui::Ui, state: &mut State) {
    let mut save = None;
    let Some((path, text, dirty)) = &mut state.editing else {
        ui.label(RichText::new("Pick a file to read or edit it.").weak());
        return;
    };
    ui.horizontal(|ui| {
        ui.heading(
            path.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        );
        if *dirty && ui.button("Save").clicked() {
            save = Some((path.clone(), text.clone()));
        }
    });
    match &state.validation {
        Some(Ok(s)) => {
            ui.colored_label(Color32::from_rgb(0x2e, 0x9e, 0x4f), s);
        }
        Some(Err(e)) => {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        None => {}
    }
    let label = ui.label(RichText::new("YAML").weak());
    let edit = egui::TextEdit::multiline(text)
        .code_editor()
        .desired_rows(18)
        .desired_width(f32::INFINITY);
    if ui.add(edit).labelled_by(label.id).changed() {
        *dirty = true;
        state.validation = Some(validate(path, text));
    }
    if let Some((path, text)) = save {
        state.file_job(ui.ctx(), move || {
            let written = std::fs::write(&path, text.as_bytes()).map_err(|e| e.to_string());
            FileDone::Saved(path, written)
        });
    }
}

fn results(ui: &mut egui::Ui, state: &mut State) {
    let Some(report) = state.report.clone() else {
        return;
    };
    ui.separator();
    ui.heading(format!(
        "Last run against {}: {}",
        report.target,
        report.summary()
    ));
    egui::Grid::new("test-results")
        .striped(true)
        .show(ui, |ui| {
            for h in ["verdict", "severity", "test", "why"] {
                ui.label(RichText::new(h).strong());
            }
            ui.end_row();
            for (i, t) in report.tests.iter().enumerate() {
                verdict_badge(ui, t.verdict);
                ui.label(t.severity.as_str());
                if ui
                    .selectable_label(state.picked == Some(i), &t.name)
                    .clicked()
                {
                    state.picked = Some(i);
                }
                ui.label(clip(t.reason.as_deref().unwrap_or(""), 120));
                ui.end_row();
            }
        });
    if let Some(t) = state.picked.and_then(|i| report.tests.get(i)) {
        ui.separator();
        evidence(ui, t);
    }
}

/// The test's failed attempts (or its first exchanges when it passed), request beside response.
fn evidence(ui: &mut egui::Ui, t: &TestResult) {
    ui.heading(format!("{} — {}", t.id, t.verdict.as_str()));
    let failed: Vec<_> = t.failed_attempts().collect();
    let shown: Vec<_> = if failed.is_empty() {
        t.steps
            .iter()
            .flat_map(|s| s.attempts.iter().take(1).map(move |a| (s, a)))
            .collect()
    } else {
        failed
    };
    for (step, a) in shown.into_iter().take(20) {
        ui.label(
            RichText::new(format!(
                "step `{}`{}",
                step.name,
                a.payload
                    .as_deref()
                    .map(|p| format!(" · payload {p}"))
                    .unwrap_or_default()
            ))
            .strong(),
        );
        for f in &a.failures {
            ui.colored_label(ui.visuals().error_fg_color, f.to_string());
        }
        if let Some(e) = &a.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        let Some(x) = &a.exchange else { continue };
        ui.columns(2, |cols| {
            let mut req = format!("{} {}\n", x.request.method, x.request.url);
            for (n, v) in &x.request.headers {
                req.push_str(&format!("{n}: {v}\n"));
            }
            if let Some(b) = &x.request.body {
                req.push_str(&format!("\n{b}"));
            }
            cols[0].label(RichText::new("request").weak());
            cols[0].label(RichText::new(clip(&req, 4000)).monospace());
            let resp = match &x.response {
                Some(r) => {
                    let mut s = format!("{} ({:.0} ms)\n", r.status, x.duration_ms);
                    for (n, v) in &r.headers {
                        s.push_str(&format!("{n}: {v}\n"));
                    }
                    s.push_str(&format!("\n{}", r.body));
                    s
                }
                None => "no response".into(),
            };
            cols[1].label(RichText::new("response").weak());
            cols[1].label(RichText::new(clip(&resp, 4000)).monospace());
        });
        ui.add_space(6.0);
    }
}

fn history(ui: &mut egui::Ui, case: &Case) {
    ui.heading("Runs kept in the case");
    let Some((runs, latest)) = &case.test_runs.value else {
        if let Some(e) = &case.test_runs.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        return;
    };
    if runs.is_empty() {
        ui.label("None yet.");
        return;
    }
    egui::Grid::new("test-runs").striped(true).show(ui, |ui| {
        for r in runs.iter().take(20) {
            ui.label(format!("#{}", r.id));
            ui.label(format::time(r.started_ms.saturating_mul(1_000_000)));
            ui.label(&r.target);
            ui.label(format!("{} req", r.requests));
            ui.end_row();
        }
    });
    let failing = latest.iter().filter(|v| v.verdict == "fail").count();
    ui.label(format!(
        "Newest run: {} test(s), {failing} failing.",
        latest.len()
    ));
}

fn verdict_badge(ui: &mut egui::Ui, v: Verdict) {
    let color = match v {
        Verdict::Pass => Color32::from_rgb(0x2e, 0x9e, 0x4f),
        Verdict::Fail => Color32::from_rgb(0xd0, 0x3b, 0x3b),
        Verdict::Error => Color32::from_rgb(0xc0, 0x7a, 0x10),
        Verdict::Inconclusive | Verdict::NotRun => Color32::GRAY,
    };
    ui.label(
        RichText::new(v.as_str().to_uppercase())
            .color(color)
            .strong()
            .monospace(),
    );
}

/// Starts a run of every test in `folder` on a worker thread.
fn start_run(state: &mut State, folder: &Path, ctx: &egui::Context) {
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let job_stop = Arc::clone(&stop);
    let folder = folder.to_owned();
    let target = state.target.trim().to_owned();
    let env_file = Some(state.env_file.trim())
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    let ctx = ctx.clone();
    let spawned = std::thread::Builder::new()
        .name("tests-run".into())
        .spawn(move || {
            let msg = match run_folder(&folder, &target, env_file.as_deref(), &job_stop, &tx, &ctx)
            {
                Ok(r) => RunMsg::Finished(Box::new(r)),
                Err(e) => RunMsg::Failed(format!("{e:#}")),
            };
            let _ = tx.send(msg);
            ctx.request_repaint();
        });
    match spawned {
        Ok(_) => {
            state.message = None;
            state.run = Some(RunJob {
                rx,
                stop,
                index: 0,
                total: 0,
                current: String::new(),
            });
        }
        Err(e) => state.message = Some(Err(format!("cannot start the run: {e}"))),
    }
}

fn run_folder(
    folder: &Path,
    target: &str,
    env_file: Option<&Path>,
    stop: &AtomicBool,
    tx: &mpsc::Sender<RunMsg>,
    ctx: &egui::Context,
) -> anyhow::Result<RunReport> {
    use anyhow::Context as _;
    let tests = tapline_sectest::load::load_paths(&[folder.to_owned()])?;
    anyhow::ensure!(!tests.is_empty(), "no tests in {}", folder.display());
    let ids = folder.join("identities.yaml");
    let identities = if ids.is_file() {
        tapline_sectest::load::load_identities(&ids)?
    } else {
        Default::default()
    };
    let mut env: std::collections::HashMap<String, String> = std::env::vars().collect();
    if let Some(f) = env_file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        let pairs = crate::commands::test::parse_env_file(&text)
            .map_err(|e| anyhow::anyhow!("{}:{e}", f.display()))?;
        env.extend(pairs);
    }
    let opts = RunOptions {
        target: url::Url::parse(target)
            .with_context(|| format!("the target {target:?} is not a URL"))?,
        env,
        identities,
        rate: None,
        max_requests: None,
        timeout: std::time::Duration::from_secs(10),
        mode: Mode::Send,
    };
    let report = tapline_sectest::run::run(&tests, &opts, stop, &mut |p| {
        if let Progress::Started { index, total, test } = p {
            let _ = tx.send(RunMsg::Started {
                index,
                total,
                id: test.id.clone(),
            });
            ctx.request_repaint();
        }
    })?;
    Ok(report)
}

fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}
