//! `tapline-sensor`: reads packets from an interface (or replays a file) through libpcap,
//! decodes them with `tapline-core`, and emits transaction records.
//!
//! Records go out as JSON lines (`--stdout`) and/or in batches into the on-disk spool
//! (`--spool DIR` or `[spool] dir`), where they wait for the workbench; the QUIC uplink that
//! drains the spool arrives with the rest of the sensor issue.

mod config;
mod counters;
mod pipeline;
mod privilege;
mod sink;
mod source;
mod spool;
mod uplink;

use anyhow::{Context, Result, bail};
use clap::Parser;
use counters::Counters;
use std::sync::Arc;
use tapline_decode::EngineConfig;
use tapline_detect::sensitive::Redactor;

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
    /// Do not put the interface in promiscuous mode (a host sensor sees only its own traffic).
    #[arg(long)]
    no_promisc: bool,
    /// Kernel capture buffer, MiB (bigger rides out bursts without drops).
    #[arg(long, default_value_t = 64)]
    buffer_mb: i32,
    /// Deliver each packet at once instead of in blocks of up to 100 ms (lower latency, more
    /// wake-ups).
    #[arg(long)]
    immediate: bool,
    /// Replay a file even though this spool already took a replay of it (same content, same
    /// filter); without it such a replay is refused, so its records are not delivered twice.
    #[arg(long, requires = "read")]
    replay_again: bool,
    /// Replay at the capture's recorded speed instead of as fast as possible.
    #[arg(long, requires = "read")]
    recorded_speed: bool,
    /// Decoding threads (1 to 64); connections are spread over them by flow hash. Default:
    /// the cores left after the capture thread (at least 1, at most 8).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    workers: Option<u16>,
    /// Sensor name stamped on every record (default: the configuration's `name`, else
    /// "sensor").
    #[arg(long)]
    name: Option<String>,
    /// Stream records to the workbench hub at HOST:PORT (overrides `[uplink] hub`; needs the
    /// credentials `tapline sensors add` writes into the configuration).
    #[arg(long)]
    workbench: Option<String>,
    /// Write records to stdout as JSON lines.
    #[arg(long)]
    stdout: bool,
    /// Sensor configuration (TOML): the edge policy (`[redact]`), batching, the spool.
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// At exit, keep delivering to the hub at most this many seconds (overrides
    /// `[uplink] linger_s`).
    #[arg(long)]
    linger: Option<u64>,
    /// Spool batches of records in this directory (overrides `[spool] dir`).
    #[arg(long)]
    spool: Option<std::path::PathBuf>,
    /// Log more: -v debug, -vv trace (default: info). `RUST_LOG` overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Log only warnings and errors.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
}

/// Logs go to stderr (the journal under systemd), at info unless `-v`/`-q` or `RUST_LOG` say
/// otherwise.
fn init_logging(args: &Args) {
    let level = match (args.quiet, args.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn main() -> Result<()> {
    let args = Args::parse();
    init_logging(&args);
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
    let name = args
        .name
        .clone()
        .or_else(|| config.name.clone())
        .unwrap_or_else(|| "sensor".to_owned());
    let hub = args.workbench.clone().or_else(|| config.uplink.hub.clone());
    let spool = open_spool(&args, &config, &name, hub.is_some())?;
    let replay = check_replay(&args, spool.as_deref())?;
    let counters = Arc::new(Counters::default());
    let setup = pipeline::WorkerSetup {
        engine: EngineConfig {
            sensor_id: Some(name.as_str().into()),
            ..EngineConfig::default()
        },
        edge: config.edge(),
        redactor,
    };
    let workers = args.workers.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get().saturating_sub(1))
            .clamp(1, 8)
    });
    let sink = sink::RecordSink::new(
        args.stdout,
        spool.clone(),
        config.batch.records,
        std::time::Duration::from_millis(config.batch.max_ms),
    );
    let live = open_capture(&args)?;
    // Ctrl-C / SIGTERM: finish the capture loop, drain the workers, flush into the spool, report.
    ctrlc::set_handler(|| source::STOP.store(true, std::sync::atomic::Ordering::Relaxed))
        .context("cannot install the signal handler")?;
    let uplink = match (&hub, &spool) {
        (Some(hub), Some(sp)) => Some(uplink::Uplink::start(
            &name,
            hub,
            &config.uplink,
            Arc::clone(sp),
            Arc::clone(&counters),
        )?),
        _ => None,
    };
    let mut pipe =
        pipeline::Pipeline::start(workers, &setup, sink, Arc::clone(&counters), live.is_some())?;
    feed(&args, live, &mut pipe, &counters)?;
    let report = pipe.finish()?;
    if let (Some(key), Some(sp)) = (&replay, &spool)
        && !source::stop_requested()
    {
        sp.with(|s| s.mark_replayed(key))?;
    }
    tracing::info!(
        "{} packets, {} connections, {} transactions, {} values redacted",
        Counters::get(&counters.packets),
        report.connections,
        Counters::get(&counters.records),
        Counters::get(&counters.redacted),
    );
    if let Some(up) = uplink {
        let linger = std::time::Duration::from_secs(args.linger.unwrap_or(config.uplink.linger_s));
        if !up.finish(linger) {
            tracing::warn!(
                "the hub did not take everything within {}s; the rest waits in the spool for the next run",
                linger.as_secs()
            );
        }
    }
    if let Some(sp) = &spool {
        let st = sp.with(|s| s.stats());
        tracing::info!(
            "spool: {} records in {} batches waiting ({} bytes), {} records lost to a full spool",
            st.records,
            st.batches,
            st.bytes,
            st.lost_records
        );
    }
    Ok(())
}

/// Opens the spool when one is configured or an uplink needs one (backpressure goes to disk,
/// not to memory), recovering what a crash left torn.
fn open_spool(
    args: &Args,
    config: &config::SensorConfig,
    name: &str,
    uplink: bool,
) -> Result<Option<Arc<spool::SharedSpool>>> {
    let dir = args
        .spool
        .clone()
        .or_else(|| config.spool.dir.clone())
        .or_else(|| uplink.then(|| default_spool_dir(name)));
    let Some(dir) = dir else {
        return Ok(None);
    };
    let sp = spool::Spool::open(&dir, config.spool.max_mb << 20, config.spool.full)
        .with_context(|| format!("cannot use the spool {}", dir.display()))?;
    let cut = sp.stats().recovered_cut_bytes;
    if cut > 0 {
        tracing::warn!("spool recovered: cut {cut} bytes of torn or corrupt entries");
    }
    Ok(Some(Arc::new(spool::SharedSpool::new(sp))))
}

/// A file replayed into a spool that already took it (same content and filter) is refused
/// unless `--replay-again`: its records are delivered or waiting already. Returns the replay's
/// key, noted once the replay has run to its end.
fn check_replay(args: &Args, spool: Option<&spool::SharedSpool>) -> Result<Option<String>> {
    let (Some(path), Some(sp)) = (&args.read, spool) else {
        return Ok(None);
    };
    let key = spool::replay_key(path, args.filter.as_deref())?;
    if !args.replay_again && sp.with(|s| s.replayed(&key)) {
        bail!(
            "{} was already replayed into this spool (same content and filter): its records were delivered or wait there; pass --replay-again to send them again",
            path.display()
        );
    }
    Ok(Some(key))
}

/// Opens the live capture (the privileged step) when an interface is named, then drops every
/// privilege: from here on nothing needs them. Called while this is the only thread, so no
/// thread keeps any.
fn open_capture(args: &Args) -> Result<Option<source::Live>> {
    let Some(iface) = &args.interface else {
        return Ok(None);
    };
    let live = source::Live::open(&source::LiveOptions {
        interface: iface.clone(),
        filter: args.filter.clone(),
        snaplen: args.snaplen,
        promisc: !args.no_promisc,
        buffer_bytes: args.buffer_mb.saturating_mul(1 << 20),
        immediate: args.immediate,
    })?;
    let dropped = privilege::drop_all()?;
    if !dropped.had.is_empty() {
        tracing::info!(
            "capture open; all {} capabilities dropped",
            dropped.had.bits().count_ones()
        );
    }
    Ok(Some(live))
}

/// Feeds the pipeline from the live capture or the file until it ends or is stopped.
fn feed(
    args: &Args,
    live: Option<source::Live>,
    pipe: &mut pipeline::Pipeline,
    counters: &Arc<Counters>,
) -> Result<()> {
    if let Some(mut live) = live {
        live.run(pipe, counters)?;
        // Drops are the figure a tap operator watches: say them even when zero.
        tracing::info!(
            "{}: {} packets received, {} dropped by the kernel, {} by the interface",
            live.name(),
            Counters::get(&counters.packets),
            Counters::get(&counters.kernel_drops),
            Counters::get(&counters.interface_drops),
        );
    } else if let Some(path) = &args.read {
        source::replay(
            path,
            args.filter.as_deref(),
            args.recorded_speed,
            pipe,
            counters,
        )?;
    } else {
        bail!("say where packets come from: --interface IF or --read FILE");
    }
    Ok(())
}

/// Where an uplink's spool lives when none is configured: systemd's `StateDirectory`, else the
/// user's state directory.
fn default_spool_dir(name: &str) -> std::path::PathBuf {
    if let Some(d) = std::env::var_os("STATE_DIRECTORY") {
        return std::path::PathBuf::from(d).join("spool");
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".local/state")))
        .unwrap_or_else(|| std::path::PathBuf::from("."));
    base.join("tapline-sensor").join(name).join("spool")
}
