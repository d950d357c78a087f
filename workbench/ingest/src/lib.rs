//! `tapline-ingest`: capture files into a case. A pcap, pcapng or HAR file is mapped, checked,
//! decoded on every core, stored, and analysed, as one import that completes or leaves nothing
//! visible ([`import`]); [`capture_file`] maps files for the decoder with errors that name them.

pub mod capture_file;
pub mod import;
