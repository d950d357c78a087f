//! Security tests built from traffic, kept as readable YAML, run against a target from the
//! desktop or CI with evidence for every verdict.
//!
//! - [`spec`]: the file format `tapline-test/1` as written (serde types; JSON Schema in
//!   `test-format.schema.json`), and the identities file.
//! - [`load`]: files (ours, and Metlo's through [`metlo`]) into checked [`plan`]s, with errors
//!   naming file, line and column, or step.
//! - [`run`]: the runner — identities logged in once per run, a request budget and rate limit,
//!   requests only to the target ([`exchange`]), declarative checks ([`judge`]).
//! - [`generate`]: tests from a case's traffic — replayed requests, identities proposed from
//!   the principals seen.
//! - [`report`]: JUnit XML and SARIF 2.1.0.

pub mod exchange;
pub mod filters;
#[cfg(feature = "generate")]
pub mod generate;
pub mod jsonpath;
pub mod judge;
pub mod load;
pub mod metlo;
pub mod payloads;
pub mod plan;
pub mod report;
pub mod run;
pub mod spec;
pub mod template;
