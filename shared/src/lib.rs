//! `tapline-core`: what Tapline's sensor and workbench both speak.
//!
//! Packets go in, [`Transaction`] records come out:
//!
//! ```text
//! capture (pcap/pcapng bytes) → packet (link/IP/TCP) → reassembly (per direction)
//!     → http (heads, framing, decoding, pairing) → record::Transaction
//! ```
//!
//! The crate does no I/O of its own (readers work on byte slices the caller provides), keeps no
//! global state, and never panics on input: damage becomes an error naming the file offset or
//! an anomaly flag on the record. Every buffer is bounded by a limit in [`EngineConfig`].

pub mod attack;
pub mod capture;
pub mod classify;
pub mod defrag;
pub mod edge;
pub mod engine;
pub mod fields;
pub mod flow;
pub mod http;
pub mod packet;
pub mod reassembly;
pub mod record;
pub mod sensitive;
pub mod wire;

pub use engine::{DecodedCapture, Engine, EngineConfig, EngineStats, decode_capture};
pub use record::{Anomalies, Body, Headers, HttpVersion, Transaction};
