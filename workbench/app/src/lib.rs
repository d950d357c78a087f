//! `tapline`: the analyst's program — the command line ([`cli`], [`commands`]) and the desktop
//! app ([`ui`]). The only crate that names clap, eframe, egui or rfd; everything it does with
//! data it asks of the library crates (ingest, store, analysis, export, hub).

pub mod cli;
pub mod commands;
pub mod terminal;
pub mod ui;
