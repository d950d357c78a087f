//! `tapline-workbench`: the analyst's side of Tapline — import jobs, analysis engines, the
//! sensor hub, the headless CLI and the desktop app ([`ui`]).
//!
//! Data flows one way: capture files (or sensors) → [`tapline_core`] decoding → records →
//! the case store ([`tapline_store`]) → analysis → views and exports.

pub mod analysis;
pub mod capture_file;
pub mod cli;
pub mod commands;
pub mod ecs;
pub mod har;
pub mod hub;
pub mod import;
pub mod jsonl;
pub mod openapi;
pub mod spec_diff;
pub mod ui;
