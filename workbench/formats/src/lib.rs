//! `tapline-formats`: the transaction record in the file formats other tools speak — pure
//! conversions, no case file, no I/O beyond the writer given.
//!
//! - [`har`] — HAR 1.2 in (browser, Burp, ZAP, mitmproxy exports) and out;
//! - [`jsonl`] — the `tapline decode --format jsonl` line;
//! - [`ecs`] — Elastic Common Schema documents for SIEMs.

pub mod ecs;
pub mod har;
pub mod jsonl;
