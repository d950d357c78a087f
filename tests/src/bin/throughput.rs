//! Decoder throughput benchmark: Tapline's engine against Suricata and tshark on one capture,
//! in one run, printed as a table (figures, not assertions).
//!
//! ```text
//! cargo run --release -p tapline-tests --bin throughput -- BENCH.pcap [--threads 1,2] [--peers suricata,tshark] [--markdown]
//! ```
//!
//! Each configuration runs in a child process of this program so its peak memory is its own.
//! Tapline's figures are decode-only (packets → reassembled transactions, records dropped
//! after counting); the peers also write their logs, which is the work they cannot skip.

use anyhow::{Context, Result, bail};
use mimalloc::MiMalloc as Inner;
use std::alloc::{GlobalAlloc, Layout};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;
use tapline_decode::capture::CaptureReader;
use tapline_decode::{Engine, EngineConfig, EngineStats};
use tapline_ingest::capture_file::MappedFile;
use tapline_tests::PeakAnon;

/// Counts heap allocations so the benchmark can show the steady state allocates per
/// transaction, not per packet.
struct CountingAlloc;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

#[allow(unsafe_code)]
// SAFETY: every call forwards unchanged to mimalloc (the binaries' allocator); counting has no effect on the
// memory handed out.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { Inner.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { Inner.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { Inner.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

struct Args {
    pcap: PathBuf,
    threads: Vec<usize>,
    peers: Vec<String>,
    markdown: bool,
    child: Option<String>,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        pcap: PathBuf::new(),
        threads: vec![1, 2],
        peers: vec!["suricata".into(), "tshark".into()],
        markdown: false,
        child: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--threads" => {
                args.threads = it
                    .next()
                    .context("--threads needs a list such as 1,2")?
                    .split(',')
                    .map(|t| t.trim().parse::<usize>().context("--threads: not a number"))
                    .collect::<Result<_>>()?;
            }
            "--peers" => {
                args.peers = it
                    .next()
                    .context("--peers needs a list such as suricata,tshark (or none)")?
                    .split(',')
                    .filter(|p| !p.is_empty() && *p != "none")
                    .map(String::from)
                    .collect();
            }
            "--markdown" => args.markdown = true,
            "--child" => args.child = Some(it.next().context("--child needs a mode")?),
            "-h" | "--help" => {
                println!(
                    "usage: throughput PCAP [--threads 1,2] [--peers suricata,tshark|none] [--markdown]"
                );
                std::process::exit(0);
            }
            _ if a.starts_with('-') => bail!("unknown option {a}"),
            _ => args.pcap = PathBuf::from(a),
        }
    }
    if args.pcap.as_os_str().is_empty() {
        bail!(
            "give a capture to measure, e.g. one made by ../shared/tools/make-bench-pcap.sh bench.pcap"
        );
    }
    Ok(args)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    match args.child.as_deref() {
        Some("allocs") => child_allocs(&args.pcap),
        Some(mode) => {
            let n: usize = mode
                .strip_prefix("threads=")
                .and_then(|t| t.parse().ok())
                .context("child mode is threads=N or allocs")?;
            child_decode(&args.pcap, n)
        }
        None => drive(&args),
    }
}

// ---------------------------------------------------------------- children

/// Decodes the capture with `n` engines, each scanning every packet and keeping its shard.
fn child_decode(pcap: &Path, n: usize) -> Result<()> {
    let file = MappedFile::open(pcap)?;
    let bytes = file.bytes();
    CaptureReader::new(bytes).with_context(|| format!("{} is not a capture", pcap.display()))?;
    let peak = PeakAnon::start();
    let started = Instant::now();
    let stats: Vec<EngineStats> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                s.spawn(move || {
                    let cfg = EngineConfig {
                        shard: (n > 1).then_some((i as u64, n as u64)),
                        ..EngineConfig::default()
                    };
                    decode_all(bytes, cfg, u64::MAX).0
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let wall = started.elapsed().as_secs_f64();
    let tx: u64 = stats.iter().map(|s| s.transactions).sum();
    let segs: u64 = stats.iter().map(|s| s.tcp_segments).sum();
    println!(
        "{}",
        serde_json::json!({
            "wall_s": wall,
            "bytes": bytes.len(),
            "packets": stats.first().map_or(0, |s| s.packets),
            "tcp_segments": segs,
            "transactions": tx,
            "peak_anon_kib": peak.stop(),
        })
    );
    Ok(())
}

/// Runs one engine over the capture; stops counting allocations after `warmup` packets.
/// Returns the stats and the packets and transactions seen while counting.
fn decode_all(bytes: &[u8], cfg: EngineConfig, warmup: u64) -> (EngineStats, u64, u64) {
    let Ok(reader) = CaptureReader::new(bytes) else {
        return (EngineStats::default(), 0, 0);
    };
    let mut engine = Engine::new(cfg);
    let mut out = Vec::with_capacity(256);
    let (mut counted_pkts, mut counted_tx) = (0u64, 0u64);
    for (i, pkt) in reader.enumerate() {
        let Ok(pkt) = pkt else { break };
        if i as u64 == warmup {
            COUNTING.store(true, Ordering::Relaxed);
        }
        let before = out.len();
        engine.packet(&pkt, &mut out);
        if COUNTING.load(Ordering::Relaxed) {
            counted_pkts += 1;
            counted_tx += (out.len() - before) as u64;
        }
        // A pipeline hands records on in batches; dropping them here keeps the figure about
        // decoding alone.
        if out.len() >= 256 {
            out.clear();
        }
    }
    COUNTING.store(false, Ordering::Relaxed);
    engine.finish(&mut out);
    (engine.stats(), counted_pkts, counted_tx)
}

/// Counts heap allocations over the second half of the capture (the first half warms the flow
/// table and buffers up).
fn child_allocs(pcap: &Path) -> Result<()> {
    let file = MappedFile::open(pcap)?;
    let bytes = file.bytes();
    let total = CaptureReader::new(bytes)
        .with_context(|| format!("{} is not a capture", pcap.display()))?
        .count() as u64;
    let (_, pkts, tx) = decode_all(bytes, EngineConfig::default(), total / 2);
    let allocs = ALLOCATIONS.load(Ordering::Relaxed);
    println!(
        "{}",
        serde_json::json!({ "packets": pkts, "transactions": tx, "allocations": allocs })
    );
    Ok(())
}

// ---------------------------------------------------------------- driver

struct Row {
    name: String,
    wall_s: f64,
    peak_kib: u64,
    transactions: Option<u64>,
    note: String,
}

fn drive(args: &Args) -> Result<()> {
    let size = std::fs::metadata(&args.pcap)
        .with_context(|| format!("cannot stat {}", args.pcap.display()))?
        .len();
    // Warm the page cache so every contender reads from memory.
    std::fs::read(&args.pcap).with_context(|| format!("cannot read {}", args.pcap.display()))?;
    let me = std::env::current_exe().context("cannot find this program's path")?;
    let mut rows = Vec::new();
    let mut packets = 0;
    for &n in &args.threads {
        // Best of three: shared machines add noise that only ever slows a run down.
        let mut best: Option<serde_json::Value> = None;
        for _ in 0..3 {
            let out = Command::new(&me)
                .arg(&args.pcap)
                .args(["--child", &format!("threads={n}")])
                .output()
                .context("cannot run the benchmark child")?;
            if !out.status.success() {
                bail!(
                    "tapline with {n} threads failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
            let wall = |v: &serde_json::Value| v["wall_s"].as_f64().unwrap_or(f64::MAX);
            if best.as_ref().is_none_or(|b| wall(&v) < wall(b)) {
                best = Some(v);
            }
        }
        let v = best.unwrap_or_default();
        packets = v["packets"].as_u64().unwrap_or(0);
        rows.push(Row {
            name: format!("tapline, {n} thread{}", if n == 1 { "" } else { "s" }),
            wall_s: v["wall_s"].as_f64().unwrap_or(f64::NAN),
            peak_kib: v["peak_anon_kib"].as_u64().unwrap_or(0),
            transactions: v["transactions"].as_u64(),
            note: "best of 3; decode only, capture memory-mapped".into(),
        });
    }
    for peer in &args.peers {
        match run_peer(peer, &args.pcap) {
            Ok(row) => rows.push(row),
            Err(e) => eprintln!("{peer}: not measured: {e:#}"),
        }
    }
    let allocs = Command::new(&me)
        .arg(&args.pcap)
        .args(["--child", "allocs"])
        .output()
        .context("cannot run the allocation-count child")?;
    let allocs: serde_json::Value = serde_json::from_slice(&allocs.stdout).unwrap_or_default();

    let mb = size as f64 / 1e6;
    let base = rows.first().map_or(f64::NAN, |r| r.wall_s);
    println!(
        "capture: {} — {:.1} MB, {} packets",
        args.pcap.display(),
        mb,
        packets
    );
    if args.markdown {
        println!(
            "\n| decoder | wall s | MB/s | packets/s | transactions | tx/s | peak heap MiB | × slower than tapline 1 thread | note |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    } else {
        println!(
            "{:<28} {:>8} {:>9} {:>11} {:>12} {:>10} {:>9} {:>8}  note",
            "decoder", "wall s", "MB/s", "packets/s", "transactions", "tx/s", "peak MiB", "ratio"
        );
    }
    for r in &rows {
        let tx = r.transactions.map_or("-".into(), |t| t.to_string());
        let txs = r
            .transactions
            .map_or("-".into(), |t| format!("{:.0}", t as f64 / r.wall_s));
        let cells = (
            format!("{:.2}", r.wall_s),
            format!("{:.0}", mb / r.wall_s),
            format!("{:.0}", packets as f64 / r.wall_s),
            format!("{:.0}", r.peak_kib as f64 / 1024.0),
            format!("{:.1}", r.wall_s / base),
        );
        if args.markdown {
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.name, cells.0, cells.1, cells.2, tx, txs, cells.3, cells.4, r.note
            );
        } else {
            println!(
                "{:<28} {:>8} {:>9} {:>11} {:>12} {:>10} {:>9} {:>8}  {}",
                r.name, cells.0, cells.1, cells.2, tx, txs, cells.3, cells.4, r.note
            );
        }
    }
    if let (Some(a), Some(p), Some(t)) = (
        allocs["allocations"].as_u64(),
        allocs["packets"].as_u64(),
        allocs["transactions"].as_u64(),
    ) {
        println!(
            "\nsteady state (second half of the capture, 1 thread): {a} heap allocations over {p} packets and {t} transactions = {:.3} per packet, {:.2} per transaction",
            a as f64 / p.max(1) as f64,
            a as f64 / t.max(1) as f64
        );
    }
    Ok(())
}

/// Runs a peer decoder under `/usr/bin/time` for wall time and peak memory.
fn run_peer(peer: &str, pcap: &Path) -> Result<Row> {
    let tmp = std::env::temp_dir().join(format!("tapline-bench-{}-{peer}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let (program, args, note): (&str, Vec<String>, &str) = match peer {
        "suricata" => (
            "suricata",
            vec![
                "-r".into(),
                pcap.display().to_string(),
                "-k".into(),
                "none".into(),
                "-S".into(),
                "/dev/null".into(),
                "--runmode".into(),
                "single".into(),
                "-l".into(),
                tmp.display().to_string(),
            ],
            "--runmode single, no rules, eve.json http log",
        ),
        "tshark" => (
            "tshark",
            [
                "-n",
                "-r",
                &pcap.display().to_string(),
                "-o",
                "tcp.desegment_tcp_streams:TRUE",
                "-o",
                "http.desegment_body:TRUE",
                "-o",
                "http.dechunk_body:TRUE",
                "-o",
                "http.decompress_body:TRUE",
                "-d",
                "tcp.port==18080,http",
                "-Y",
                "http.request or http.response",
                "-T",
                "fields",
                "-e",
                "http.request.uri",
                "-e",
                "http.response.code",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            "desegmented HTTP fields, one thread",
        ),
        other => bail!("unknown peer {other} (suricata or tshark)"),
    };
    let time_out = tmp.join("time.txt");
    let started = Instant::now();
    let status = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&time_out)
        .arg(program)
        .args(&args)
        .stdout(std::fs::File::create(tmp.join("stdout"))?)
        .stderr(std::fs::File::create(tmp.join("stderr"))?)
        .status()
        .with_context(|| {
            format!("cannot run /usr/bin/time {program} (apt-get install time {program})")
        })?;
    let wall = started.elapsed().as_secs_f64();
    if !status.success() {
        bail!("{program} exited with {status}; see {}", tmp.display());
    }
    let peak: u64 = std::fs::read_to_string(&time_out)?
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    let transactions = match peer {
        "suricata" => count_lines(&tmp.join("eve.json"), |l| {
            l.contains("\"event_type\":\"http\"")
        }),
        // Response rows: no URI, a status code.
        _ => count_lines(&tmp.join("stdout"), |l| {
            l.split_once('\t')
                .is_some_and(|(uri, code)| uri.is_empty() && !code.is_empty())
        }),
    };
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(Row {
        name: peer.to_string(),
        wall_s: wall,
        peak_kib: peak,
        transactions,
        note: note.into(),
    })
}

fn count_lines(path: &Path, keep: impl Fn(&str) -> bool) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.lines().filter(|l| keep(l)).count() as u64)
}
