//! The `tapline` binary.

use anyhow::Result;
use clap::Parser;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tapline::cli::{AlertsCommand, Cli, Command, OpenArgs, SensorsCommand, TestCommand, Verbosity};
use tapline::commands::{self, Cases, Ctx};
use tapline::control;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit statuses: 0 done, 1 failed (one line on stderr says why; `diff`: differences), 3 a
/// capture was damaged part way (`decode`: what came before the damage was printed), 130
/// cancelled. A reader that stops early (`| head`) is not a failure.
fn main() -> ExitCode {
    match run() {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tapline: {e:#}");
            ExitCode::from(commands::failure_code(&e))
        }
    }
}

/// The reader of standard output went away (`tapline decode … | head`).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    let pipe = Some(std::io::ErrorKind::BrokenPipe);
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().map(std::io::Error::kind) == pipe
            || c.downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == pipe
    })
}

fn run() -> Result<u8> {
    let cli = Cli::parse();
    init_logging(cli.verbosity);
    match cli.command {
        Some(Command::Serve(args)) => commands::sensors::serve(&args, cli.verbosity).map(|()| 0),
        Some(Command::Open(args)) => open(args, false).map(|()| 0),
        Some(Command::Test(cmd)) if !matches!(cmd, TestCommand::Generate(_)) => Ok(test(&cmd)),
        None => open(OpenArgs::default(), true).map(|()| 0),
        Some(command) => run_command(command, cli.verbosity),
    }
}

/// Runs a command here, or — when a hub or the app holds its case — there.
fn run_command(mut command: Command, verbosity: Verbosity) -> Result<u8> {
    if command.served_case().is_some() {
        command.anchor_paths(&std::env::current_dir()?);
        if let Command::Sensors(SensorsCommand::Add(a)) = &mut command {
            // The identity this process would use, not the holder's default.
            a.identity.identity = Some(commands::sensors::identity_dir(&a.identity)?);
            command.anchor_paths(&std::env::current_dir()?);
        }
        if let Command::Alerts(AlertsCommand::Add(a)) = &mut command {
            // This process's environment and files, not the holder's.
            a.secret = commands::alerts::read_secret(a)?;
        }
        if let Some(code) = control::forward(&command, verbosity)? {
            return Ok(code);
        }
    }
    let cancel = Arc::new(AtomicBool::new(false));
    if matches!(command, Command::Import(_)) {
        // The first Ctrl-C stops the import at its next batch and rolls the file back; a
        // second one does not wait.
        let flag = Arc::clone(&cancel);
        let _ = ctrlc::set_handler(move || {
            if flag.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
    }
    let mut ctx = Ctx {
        err: &mut std::io::stderr(),
        cases: &Cases::direct(),
        cancel: &cancel,
        verbosity,
        progress: true,
    };
    commands::dispatch(&command, &mut std::io::stdout().lock(), &mut ctx)
        .map(commands::Status::exit_code)
}

/// `tapline test …`: its own exit statuses (0 pass, 1 vulnerable, 2 the run failed), so a
/// failure to run is 2, never 1 — CI must not read "could not run" as "vulnerable".
fn test(cmd: &TestCommand) -> u8 {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
    let mut err = std::io::stderr();
    let cases = Cases::direct();
    match commands::test::run(
        cmd,
        &mut std::io::stdout().lock(),
        &mut err,
        &cancel,
        &cases,
    ) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            eprintln!("tapline: {e:#}");
            commands::test::RUN_FAILED
        }
    }
}

/// Logs go to stderr, at the level `-v`/`-q` choose unless `RUST_LOG` says otherwise.
fn init_logging(verbosity: Verbosity) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(verbosity.default_filter()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// The desktop app: `tapline open …`, or `tapline` alone (which reopens the last case).
fn open(args: OpenArgs, restore: bool) -> Result<()> {
    let data_dir = commands::sensors::data_dir()?;
    let launch = tapline::ui::Launch {
        open: args.files,
        case: args.db,
        identity_dir: commands::sensors::identity_dir(&args.identity)?,
        data_dir,
        listen: args.listen,
        screenshot: args.screenshot,
        restore,
        file_dialogs: tapline::ui::picker::Dialogs::from_env(),
    };
    for f in &launch.open {
        if !f.exists() && f.extension().is_none_or(|e| e != "duckdb") {
            anyhow::bail!("{}: no such file", f.display());
        }
    }
    tapline::ui::run(launch)
}
