//! The command line, per the contract in DESIGN.md. Subcommands appear as their features land.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Tapline: API security from your own traffic, on your own machine.
#[derive(Debug, Parser)]
#[command(name = "tapline", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the HTTP transactions in a capture, one JSON object a line; nothing is stored.
    Decode(DecodeArgs),
}

/// Output formats of `decode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DecodeFormat {
    /// One JSON object per transaction per line.
    Jsonl,
    /// One human-readable line per transaction.
    Table,
}

/// Arguments of `tapline decode`.
#[derive(Debug, clap::Args)]
pub struct DecodeArgs {
    /// A pcap or pcapng file.
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DecodeFormat::Jsonl)]
    pub format: DecodeFormat,
    /// Bytes of each decoded body to print (base64) and keep.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body: usize,
}
