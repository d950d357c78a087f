//! The `tapline` binary.

use anyhow::Result;
use clap::{CommandFactory, Parser};
use tapline_workbench::cli::{Cli, Command};
use tapline_workbench::commands;

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
        None => {
            // The desktop workbench arrives with its own issue; until then, explain.
            Cli::command().print_help()?;
            Ok(())
        }
    }
}
