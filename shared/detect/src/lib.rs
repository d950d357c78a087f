//! `tapline-detect`: pure detectors over one record or one value — what the sensor may apply
//! at the edge and what the workbench's analysis builds on.
//!
//! - [`fields`] walks a transaction's values with their locations and field names;
//! - [`classify`] says which sensitive-data classes a value holds, [`sensitive`] scans a
//!   record with it and applies the redaction policy;
//! - [`attack`] says which attack payloads a request carries;
//! - [`edge`] is the sensor's header and body policy;
//! - [`jwt`] decodes tokens (unverified: evidence of a claim, not of identity).
//!
//! Depends on the record only: no decoding, no I/O, no database.

pub mod attack;
pub mod classify;
pub mod edge;
pub mod fields;
pub mod jwt;
pub mod sensitive;
