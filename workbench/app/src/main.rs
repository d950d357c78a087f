//! The `tapline` binary.

use anyhow::Result;
use clap::Parser;
use std::process::ExitCode;
use tapline::cli::{Cli, Command, OpenArgs, Verbosity};
use tapline::commands;
use tapline::commands::decode::DamagedCapture;
use tapline::terminal::Sanitized;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit statuses: 0 done, 1 failed (one line on stderr says why), 3 a capture was damaged part
/// way (`decode`: what came before the damage was printed). A reader that stops early (`| head`)
/// is not a failure.
fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tapline: {e:#}");
            match e.downcast_ref::<DamagedCapture>() {
                Some(_) => ExitCode::from(DamagedCapture::EXIT_CODE),
                None => ExitCode::FAILURE,
            }
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

fn run() -> Result<()> {
    let cli = Cli::parse();
    init_logging(cli.verbosity);
    let verbosity = cli.verbosity;
    // Whatever the traffic carried, the terminal gets no control characters.
    let stdout = || Sanitized::new(std::io::stdout().lock());
    match cli.command {
        Some(Command::Classify(args)) => commands::classify::run(&args),
        Some(Command::Decode(args)) => commands::decode::run(&args, &mut stdout()),
        Some(Command::Import(args)) => commands::import::run(&args, verbosity),
        Some(Command::Export(args)) => commands::export::run(&args),
        Some(Command::Endpoints(args)) => commands::list::endpoints(&args, &mut stdout()),
        Some(Command::Findings(args)) => commands::list::findings(&args, &mut stdout()),
        Some(Command::Diff(args)) => {
            if !commands::list::diff(&args, &mut stdout())? {
                std::process::exit(1);
            }
            Ok(())
        }
        Some(Command::Serve(args)) => commands::sensors::serve(&args, verbosity),
        Some(Command::Sensors(cmd)) => commands::sensors::run(&cmd, &mut stdout()),
        Some(Command::Open(args)) => open(args, false),
        None => open(OpenArgs::default(), true),
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
