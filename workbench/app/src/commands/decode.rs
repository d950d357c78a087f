//! `tapline decode FILE`: decode a capture and print its transactions.

use crate::cli::{DecodeArgs, DecodeFormat};
use anyhow::Result;
use std::io::{BufWriter, Write};
use tapline_decode::EngineConfig;
use tapline_formats::jsonl::JsonlRecord;
use tapline_ingest::capture_file::decode_file;

/// Runs the command, writing to `out`.
pub fn run(args: &DecodeArgs, out: &mut dyn Write) -> Result<()> {
    let mut cfg = EngineConfig::default();
    cfg.http.max_body = args.max_body;
    let decoded = decode_file(&args.file, cfg)?;
    let mut out = BufWriter::new(out);
    for tx in &decoded.transactions {
        match args.format {
            DecodeFormat::Jsonl => {
                serde_json::to_writer(&mut out, &JsonlRecord::new(tx, args.max_body))?;
                out.write_all(b"\n")?;
            }
            DecodeFormat::Table => {
                let status = tx.status.map_or("---".to_owned(), |s| s.to_string());
                let anomalies: Vec<_> = tx.anomalies.names().collect();
                writeln!(
                    out,
                    "{} {:<15} {:>4} {:<7} {}{} {}B{}",
                    tapline_record::time::rfc3339_nanos(tx.request_ts_nanos),
                    tx.client.map(|c| c.ip().to_string()).unwrap_or_default(),
                    status,
                    tx.method,
                    tx.host.as_deref().unwrap_or(""),
                    tx.uri,
                    tx.response_body.len,
                    if anomalies.is_empty() {
                        String::new()
                    } else {
                        format!(" [{}]", anomalies.join(","))
                    }
                )?;
            }
        }
    }
    out.flush()?;
    let s = decoded.stats;
    eprintln!(
        "{}: {} packets, {} TCP segments, {} connections, {} transactions",
        args.file.display(),
        s.packets,
        s.tcp_segments,
        s.flows.created,
        s.transactions
    );
    match decoded.error {
        Some(e) => Err(DamagedCapture(format!("{}: {e}", args.file.display())).into()),
        None => Ok(()),
    }
}

/// The capture was damaged part way: the transactions before the damage were printed. The
/// binary exits with [`DamagedCapture::EXIT_CODE`] so scripts can tell it from a failure.
#[derive(Debug, thiserror::Error)]
#[error("{0}; the transactions before the damage were printed")]
pub struct DamagedCapture(String);

impl DamagedCapture {
    /// The exit status of a decode that stopped at damage.
    pub const EXIT_CODE: u8 = 3;
}
