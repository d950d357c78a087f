//! Sensitive data in transactions: where each classified value was ([`scan`]) and the edge
//! policy that masks, hashes or drops configured values before a record leaves a sensor
//! ([`redact`]).

pub mod redact;
pub mod scan;
mod verdicts;

pub use redact::{Action, Policy, PolicyError, Redactor, Rule};
pub use scan::{Found, Scanner, percent_decode_into};
