//! The `tapline` binary.

use anyhow::Result;
use clap::Parser;
use tapline::cli::{Cli, Command, OpenArgs};
use tapline::commands;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Classify(args)) => commands::classify::run(&args),
        Some(Command::Decode(args)) => commands::decode::run(&args, &mut std::io::stdout().lock()),
        Some(Command::Import(args)) => commands::import::run(&args),
        Some(Command::Export(args)) => commands::export::run(&args),
        Some(Command::Endpoints(args)) => {
            commands::list::endpoints(&args, &mut std::io::stdout().lock())
        }
        Some(Command::Findings(args)) => {
            commands::list::findings(&args, &mut std::io::stdout().lock())
        }
        Some(Command::Diff(args)) => {
            if !commands::list::diff(&args, &mut std::io::stdout().lock())? {
                std::process::exit(1);
            }
            Ok(())
        }
        Some(Command::Serve(args)) => commands::sensors::serve(&args),
        Some(Command::Sensors(cmd)) => commands::sensors::run(&cmd, &mut std::io::stdout().lock()),
        Some(Command::Open(args)) => open(args, false),
        None => open(OpenArgs::default(), true),
    }
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
    };
    for f in &launch.open {
        if !f.exists() && f.extension().is_none_or(|e| e != "duckdb") {
            anyhow::bail!("{}: no such file", f.display());
        }
    }
    tapline::ui::run(launch)
}
