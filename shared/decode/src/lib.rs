//! `tapline-decode`: packets in, transaction records ([`tapline_record::Transaction`]) out — the engine the sensor runs on
//! live interfaces and the workbench runs on files.
//!
//! ```text
//! capture (pcap/pcapng bytes) → packet (link/IP/TCP) → reassembly (per direction)
//!     → flow (connections, orientation) → a protocol decoder (http: heads, framing,
//!       decoding, pairing) → tapline_record::Transaction
//! ```
//!
//! The crate does no I/O of its own (readers work on byte slices the caller provides), keeps no
//! global state, and never panics on input: damage becomes an error naming the file offset or
//! an anomaly flag on the record. Every buffer is bounded by a limit in [`EngineConfig`].

pub mod capture;
pub mod defrag;
pub mod engine;
pub mod flow;
pub mod http;
pub mod packet;
pub mod reassembly;

pub use engine::{
    DecodedCapture, Engine, EngineConfig, EngineStats, StreamedCapture, decode_capture,
    stream_capture,
};
