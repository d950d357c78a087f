//! `tapline-sensor`: reads packets from an interface (or replays a file) through libpcap,
//! decodes them with `tapline-core`, and emits transaction records.
//!
//! Records go out as JSON lines (`--stdout`) and/or in batches into the on-disk spool
//! (`--spool DIR` or `[spool] dir`), where they wait for the workbench; the QUIC uplink that
//! drains the spool arrives with the rest of the sensor issue.

mod config;
mod spool;

use anyhow::{Context, Result, bail};
use clap::Parser;
use std::io::Write;
use tapline_core::capture::LinkType;
use tapline_core::sensitive::{Redactor, Scanner};
use tapline_core::{Engine, EngineConfig, Transaction};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Headless capture sensor.
#[derive(Debug, Parser)]
#[command(name = "tapline-sensor", version, about)]
struct Args {
    /// Capture live from this interface.
    #[arg(long, conflicts_with = "read")]
    interface: Option<String>,
    /// Replay this pcap/pcapng file instead of capturing live.
    #[arg(long)]
    read: Option<std::path::PathBuf>,
    /// BPF filter applied in the kernel (live) or by libpcap (replay).
    #[arg(long)]
    filter: Option<String>,
    /// Snap length for live capture.
    #[arg(long, default_value_t = 65_535)]
    snaplen: i32,
    /// Sensor name stamped on every record.
    #[arg(long, default_value = "sensor")]
    name: String,
    /// Write records to stdout as JSON lines.
    #[arg(long)]
    stdout: bool,
    /// Sensor configuration (TOML): the edge policy (`[redact]`), batching, the spool.
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// Spool batches of records in this directory (overrides `[spool] dir`).
    #[arg(long)]
    spool: Option<std::path::PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let cfg = EngineConfig {
        sensor_id: Some(args.name.as_str().into()),
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(cfg);
    let config = match &args.config {
        Some(path) => config::SensorConfig::load(path)?,
        None => config::SensorConfig::default(),
    };
    let redactor = Redactor::new(&config.redact).with_context(|| {
        format!(
            "in the [redact] policy of {}",
            args.config
                .as_deref()
                .map_or("the configuration".into(), |p| p.display().to_string())
        )
    })?;
    let spool = match args.spool.as_ref().or(config.spool.dir.as_ref()) {
        Some(dir) => Some(
            spool::Spool::open(dir, config.spool.max_mb << 20, config.spool.full)
                .with_context(|| format!("cannot use the spool {}", dir.display()))?,
        ),
        None => None,
    };
    if let Some(s) = &spool {
        let st = s.stats();
        if st.recovered_cut_bytes > 0 {
            eprintln!(
                "tapline-sensor: spool recovered: cut {} bytes of torn or corrupt entries",
                st.recovered_cut_bytes
            );
        }
    }
    let mut sink = RecordSink {
        edge: config.edge(),
        stdout: args.stdout,
        count: 0,
        redactor,
        scanner: Scanner::default(),
        redacted: 0,
        spool,
        batch: Vec::new(),
        batch_opened: None,
        batch_records: config.batch.records.max(1),
        batch_max: std::time::Duration::from_millis(config.batch.max_ms),
    };
    if let Some(path) = &args.read {
        let mut cap = pcap::Capture::from_file(path)
            .with_context(|| format!("cannot open {} with libpcap", path.display()))?;
        if let Some(f) = &args.filter {
            cap.filter(f, true)
                .with_context(|| format!("bad BPF filter {f:?}"))?;
        }
        run(&mut cap, &mut engine, &mut sink)?;
    } else if let Some(iface) = &args.interface {
        let mut cap = pcap::Capture::from_device(iface.as_str())
            .with_context(|| format!("no capture device {iface}"))?
            .snaplen(args.snaplen)
            .promisc(true)
            .immediate_mode(true)
            .open()
            .with_context(|| format!("cannot capture on {iface} (needs CAP_NET_RAW)"))?;
        if let Some(f) = &args.filter {
            cap.filter(f, true)
                .with_context(|| format!("bad BPF filter {f:?}"))?;
        }
        run(&mut cap, &mut engine, &mut sink)?;
    } else {
        bail!("say where packets come from: --interface IF or --read FILE");
    }
    let mut out = Vec::new();
    engine.finish(&mut out);
    sink.emit(&mut out)?;
    sink.flush()?;
    let s = engine.stats();
    eprintln!(
        "tapline-sensor: {} packets, {} connections, {} transactions, {} values redacted",
        s.packets, s.flows.created, sink.count, sink.redacted
    );
    if let Some(sp) = &sink.spool {
        let st = sp.stats();
        eprintln!(
            "tapline-sensor: spool: {} records in {} batches waiting ({} bytes), {} records lost to a full spool",
            st.records, st.batches, st.bytes, st.lost_records
        );
    }
    Ok(())
}

struct RecordSink {
    /// Header allow/deny lists and body caps: applied first, before redaction.
    edge: tapline_core::edge::EdgePolicy,
    stdout: bool,
    count: u64,
    /// The edge policy: applied to every record before it leaves the sensor.
    redactor: Redactor,
    scanner: Scanner,
    redacted: u64,
    spool: Option<spool::Spool>,
    /// The batch being filled for the spool.
    batch: Vec<Transaction>,
    batch_opened: Option<std::time::Instant>,
    batch_records: usize,
    batch_max: std::time::Duration,
}

impl RecordSink {
    /// Closes the open batch into the spool (if any records and a spool).
    fn flush(&mut self) -> Result<()> {
        self.batch_opened = None;
        if self.batch.is_empty() {
            return Ok(());
        }
        if let Some(sp) = &mut self.spool {
            sp.push(&self.batch)?;
        }
        self.batch.clear();
        Ok(())
    }

    /// Closes the open batch when it has been open too long (called while capture is idle).
    fn tick(&mut self) -> Result<()> {
        if self
            .batch_opened
            .is_some_and(|t| t.elapsed() >= self.batch_max)
        {
            self.flush()?;
        }
        Ok(())
    }

    fn emit(&mut self, txs: &mut [Transaction]) -> Result<()> {
        self.count += txs.len() as u64;
        if !self.edge.is_empty() {
            for tx in txs.iter_mut() {
                self.edge.apply(tx);
            }
        }
        if !self.redactor.is_empty() {
            for tx in txs.iter_mut() {
                self.redacted += self.redactor.apply(tx, &mut self.scanner) as u64;
            }
        }
        if self.stdout && !txs.is_empty() {
            let mut out = std::io::stdout().lock();
            for tx in txs.iter() {
                serde_json::to_writer(&mut out, tx)?;
                out.write_all(b"\n")?;
            }
        }
        if self.spool.is_some() {
            for tx in txs.iter() {
                self.batch_opened
                    .get_or_insert_with(std::time::Instant::now);
                self.batch.push(tx.clone());
                if self.batch.len() >= self.batch_records {
                    self.flush()?;
                }
            }
            self.tick()?;
        }
        Ok(())
    }
}

fn run<T: pcap::Activated + ?Sized>(
    cap: &mut pcap::Capture<T>,
    engine: &mut Engine,
    sink: &mut RecordSink,
) -> Result<()> {
    let link = LinkType(cap.get_datalink().0 as u16);
    let mut out = Vec::new();
    loop {
        match cap.next_packet() {
            Ok(p) => {
                let ts = p.header.ts;
                let ts_nanos = ts.tv_sec * 1_000_000_000 + ts.tv_usec * 1_000;
                engine.frame(ts_nanos, link, p.data, &mut out);
                if !out.is_empty() {
                    sink.emit(&mut out)?;
                    out.clear();
                }
            }
            Err(pcap::Error::NoMorePackets) => return Ok(()),
            Err(pcap::Error::TimeoutExpired) => sink.tick()?,
            Err(e) => return Err(e).context("capture failed"),
        }
    }
}
