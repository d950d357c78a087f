//! Enforcement: block rules made effective and handed to the enforcement points operators
//! already run.
//!
//! - [`effective`]: the rules in force at a moment — removed and expired ones out, monitor
//!   rules apart, the allowlist subtracted (an allowed address is cut out of a blocked network).
//! - [`auto`]: automatic rules — findings over a threshold per actor become blocks (extended,
//!   not doubled; allowlist, exceptions, cooldown and a cap respected).
//! - [`decide`]: per-request decisions from an in-memory index (the decision endpoint, monitor
//!   counts on recorded traffic).
//! - [`replay`]: recorded traffic through the rules — would-block counts and false-positive
//!   candidates per rule (monitor mode that measures; a draft rule's preview).
//! - [`sign`]: Ed25519 signatures over exported bundles, checked by agents.
//! - [`export`]: block lists as JSON, an nginx include, an nftables table, a HAProxy ACL file.
//!
//! Rules live in the case (`tapline_store::blocks`); this crate reads them, and writes only
//! what automatic rules decide ([`auto::apply`]).

pub mod auto;
pub mod decide;
pub mod effective;
pub mod export;
pub mod replay;
pub mod sign;

pub use decide::{Index, Request, Verdict};
pub use effective::{Effective, effective};
pub use export::{Format, export};
