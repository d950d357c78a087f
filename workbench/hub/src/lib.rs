//! The sensor hub: accepts sensors over QUIC (mutual TLS against the workbench CA), stores
//! their batches in the case exactly once, acknowledges them, and keeps their heartbeats.
//!
//! Threads: a tokio runtime runs one task per connection (TLS, framing, decompression); one
//! store thread owns the [`CaseStore`] and serves the tasks' requests in order, so DuckDB sees
//! a single writer however many sensors are connected. A batch is acknowledged only after its
//! transaction has committed (with its ledger row), so an acknowledged batch is on disk. When
//! the case fails under it (a full disk; DuckDB invalidating the database after a failed
//! checkpoint) the hub stops acknowledging — sensors keep spooling — and, when it is the
//! case's only user, reopens the case with backoff until it works again.
//!
//! Refused: a certificate not signed by this workbench's CA (in the handshake), a certificate
//! not enrolled in this case or revoked (after the handshake, with a reason), a protocol or
//! record version this build does not speak.
//!
//! With [`LiveAnalysis::On`] a third thread, [`live`], analyses what was stored as it arrives (discovery, sensitive
//! data, attacks, behaviour) and merges its results into the case every few seconds; it is
//! fed by the store thread without ever holding up an acknowledgement.
//!
//! A fourth thread sends the case's alerts (syslog, webhooks, ECS files; `tapline-alerts`)
//! after each analysis write that found something, and every 30 s for retries.
//!
//! [`enrol`] issues a sensor its credentials and configuration file.

mod alerting;
pub mod enrol;
pub mod live;
mod server;
mod store_thread;

pub use live::LiveAnalysis;
pub use server::{CaseConnections, Hub, HubEvent};
pub use store_thread::Recovery;
