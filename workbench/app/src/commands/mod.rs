//! One module per subcommand, and what they share: where output goes, how a case is reached,
//! and how a command ends. A command runs the same in the `tapline` process that parsed it
//! and in a process that holds its case and runs it on the control socket's behalf
//! ([`crate::control`]).

pub mod agents;
pub mod alerts;
pub mod block;
pub mod classify;
pub mod decode;
pub mod export;
pub mod import;
pub mod list;
pub mod sensors;
pub mod test;

use crate::cli::{Command, Verbosity};
use crate::terminal::Sanitized;
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use tapline_store::CaseStore;

/// How a command that did not fail ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Did what was asked.
    Done,
    /// `diff`: the document and the inventory differ.
    Differs,
    /// Cancelled (Ctrl-C); nothing was changed.
    Cancelled,
}

impl Status {
    /// The process exit status that says so.
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Done => 0,
            Status::Differs => 1,
            Status::Cancelled => 130,
        }
    }
}

/// The exit status for a failed command: 3 for a capture damaged part way, else 1.
pub fn failure_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<decode::DamagedCapture>() {
        Some(_) => decode::DamagedCapture::EXIT_CODE,
        None => 1,
    }
}

/// Where a command runs (its results go to the `out` [`dispatch`] is given).
pub struct Ctx<'a> {
    /// Messages for the person (what was imported, where a file went).
    pub err: &'a mut dyn Write,
    /// How cases are opened.
    pub cases: &'a Cases,
    /// Set when the person gives up (Ctrl-C, or the client of the control socket left).
    pub cancel: &'a AtomicBool,
    /// `-v`/`-q`.
    pub verbosity: Verbosity,
    /// Whether progress bars may be drawn (on a terminal of this process).
    pub progress: bool,
}

/// Runs a command that works on files and cases (not `open` or `serve`, which hold a case
/// for as long as they run).
pub fn dispatch(command: &Command, out: &mut dyn Write, ctx: &mut Ctx<'_>) -> Result<Status> {
    // Whatever the traffic carried, the terminal gets no control characters.
    let mut out = Sanitized::new(out);
    let out: &mut dyn Write = &mut out;
    match command {
        Command::Classify(args) => classify::run(args, out).map(|()| Status::Done),
        Command::Decode(args) => decode::run(args, out, ctx.err).map(|()| Status::Done),
        Command::Import(args) => import::run(args, ctx),
        Command::Export(args) => export::run(args, out, ctx),
        Command::Endpoints(args) => list::endpoints(args, ctx.cases, out).map(|()| Status::Done),
        Command::Findings(args) => list::findings(args, ctx.cases, out).map(|()| Status::Done),
        Command::Diff(args) => list::diff(args, ctx.cases, out),
        Command::Sensors(cmd) => sensors::run(cmd, ctx.cases, out).map(|()| Status::Done),
        Command::Alerts(cmd) => alerts::run(cmd, ctx.cases, out).map(|()| Status::Done),
        Command::Block(cmd) => block::run(cmd, ctx.cases, out).map(|()| Status::Done),
        Command::Blocklist(cmd) => block::export(cmd, ctx.cases, out).map(|()| Status::Done),
        Command::Agents(cmd) => agents::run(cmd, ctx.cases, out).map(|()| Status::Done),
        Command::Test(cmd) => {
            test::run(cmd, out, ctx.err, ctx.cancel, ctx.cases).map(|_| Status::Done)
        }
        Command::Serve(_) | Command::Open(_) => {
            bail!("`serve` and `open` hold their case; they cannot run inside another command")
        }
    }
}

/// How commands reach cases: by opening the file, except the case this process already holds
/// (a hub or the desktop app), which is reached through another connection to it.
#[derive(Default)]
pub struct Cases {
    held: Option<Held>,
}

/// Gives out connections to a case this process holds.
pub type Connect = Box<dyn Fn() -> Result<CaseStore> + Send + Sync>;

struct Held {
    /// Canonical path of the held case.
    path: PathBuf,
    connect: Connect,
}

impl Cases {
    /// Every case by its file (the `tapline` command line).
    pub fn direct() -> Cases {
        Cases { held: None }
    }

    /// `path` through `connect`, every other case by its file.
    pub fn holding(path: &Path, connect: Connect) -> Result<Cases> {
        let path = path
            .canonicalize()
            .with_context(|| format!("cannot resolve the case path {}", path.display()))?;
        Ok(Cases {
            held: Some(Held { path, connect }),
        })
    }

    /// The case at `path`, created if missing (import, enrolment).
    pub fn open(&self, path: &Path) -> Result<CaseStore> {
        match self.held_by_us(path) {
            Some(h) => (h.connect)(),
            None => CaseStore::open(path).with_context(|| cannot_open(path)),
        }
    }

    /// The case at `path`, which must exist (listing, exporting, revoking).
    pub fn open_existing(&self, path: &Path) -> Result<CaseStore> {
        match self.held_by_us(path) {
            Some(h) => (h.connect)(),
            None => CaseStore::open_existing(path).with_context(|| cannot_open(path)),
        }
    }

    /// Whether this process holds the case at `path` (a hub or the app runs the command).
    pub fn is_held(&self, path: &Path) -> bool {
        self.held_by_us(path).is_some()
    }

    fn held_by_us(&self, path: &Path) -> Option<&Held> {
        let h = self.held.as_ref()?;
        (path.canonicalize().ok()? == h.path).then_some(h)
    }
}

fn cannot_open(path: &Path) -> String {
    format!("cannot open case {}", path.display())
}
