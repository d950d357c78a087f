//! `tapline decode FILE`: decode a capture and print its transactions.

use crate::cli::{DecodeArgs, DecodeFormat};
use anyhow::Result;
use std::io::{BufWriter, Write};
use tapline_decode::EngineConfig;
use tapline_formats::jsonl::JsonlRecord;
use tapline_ingest::capture_file::stream_file;
use tapline_record::Transaction;

/// Runs the command, writing to `out` as transactions complete (memory stays flat however
/// large the capture).
pub fn run(args: &DecodeArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    let mut cfg = EngineConfig::default();
    cfg.http.max_body = args.max_body;
    let mut out = BufWriter::new(out);
    let streamed = stream_file(&args.file, cfg, |txs| {
        for tx in txs.drain(..) {
            print(args, &tx, &mut out)?;
        }
        Ok(())
    })?;
    out.flush()?;
    let s = streamed.stats;
    writeln!(
        err,
        "{}: {} packets, {} TCP segments, {} connections, {} transactions",
        args.file.display(),
        s.packets,
        s.tcp_segments,
        s.flows.created,
        s.transactions
    )?;
    let f = s.flows;
    if f.silent + f.probes + f.evicted > 0 {
        // Floods, scans and a full flow table are worth a line of their own.
        writeln!(
            err,
            "{}: {} connections without payload, {} probes of one byte, {} evicted from a full flow table",
            args.file.display(),
            f.silent,
            f.probes,
            f.evicted
        )?;
    }
    match streamed.damage {
        Some(e) => Err(DamagedCapture(e).into()),
        None => Ok(()),
    }
}

/// One transaction in the chosen format.
fn print(args: &DecodeArgs, tx: &Transaction, out: &mut impl Write) -> Result<()> {
    match args.format {
        DecodeFormat::Jsonl => {
            serde_json::to_writer(&mut *out, &JsonlRecord::new(tx, args.max_body))?;
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
    Ok(())
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
