//! `tapline`: the analyst's program — the command line ([`cli`], [`commands`]), the desktop
//! app ([`ui`]), and the control socket ([`control`]) through which a process holding a case
//! runs the others' commands. The only crate that names clap, eframe, egui or rfd; everything it does with
//! data it asks of the library crates (ingest, store, analysis, export, hub).

pub mod cli;
pub mod commands;
pub mod control;
pub mod terminal;
pub mod ui;
