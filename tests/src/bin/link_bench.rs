//! Link benchmark: records/s from a sensor to the hub over QUIC on loopback, with mutual TLS,
//! batches as the sensor's spool holds them (LZ4 + postcard, encoded beforehand, as the
//! spool does when a batch closes), a window of unacknowledged batches like the uplink's.
//!
//! Hubs in the same run: a bare one that decodes and acknowledges without storing — the
//! transport's own ceiling; the real one (`tapline_hub`, every batch committed to a DuckDB
//! case with its ledger row before the acknowledgement) storing only; the real one analysing
//! live as it stores (every detector on), until analysis has caught up; and, paced at
//! `--rate` records/s with capture times of "now", how long after its capture a record's
//! analysis is in the case (the latency of a finding becoming visible).
//!
//! ```text
//! cargo run --release -p tapline-tests --bin link_bench -- [--records 1000000] [--batch 2000] [--window 16] [--rate 10000] [--paced 150000] [--capture FILE] [--table]
//! ```
//!
//! `--table`: the hub stores into the case's table instead of live segments (what it does for
//! a case under a path DuckDB cannot name in a file pattern), for an A/B in one binary.

use anyhow::{Context, Result, bail};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tapline_hub::{Hub, HubEvent};
use tapline_link::stream::{MessageReader, send};
use tapline_link::{HubIdentity, SensorCredentials, transport};
use tapline_record::Transaction;
use tapline_record::wire::{Batch, HubMessage, SensorMessage};
use tapline_store::CaseStore;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A directory for a case: one whose path turns live segments off under `--table`.
fn case_dir() -> Result<tempfile::TempDir> {
    let table = std::env::args().any(|a| a == "--table");
    Ok(tempfile::Builder::new()
        .prefix(if table {
            "link_bench[table]"
        } else {
            "link_bench"
        })
        .tempdir()?)
}

fn arg(args: &[String], name: &str, default: usize) -> Result<usize> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("{name} needs a number")),
        None => Ok(default),
    }
}

/// A sensor's connection to the hub, welcomed.
struct Session {
    ep: quinn::Endpoint,
    conn: quinn::Connection,
    tx: quinn::SendStream,
    rx: MessageReader,
}

/// Connects as the sensor "bench" and says hello.
async fn session(creds: &SensorCredentials, hub: SocketAddr) -> Result<Session> {
    let ep = transport::client(creds, hub)?;
    let conn = transport::connect(&ep, hub).await?;
    let (mut tx, rx) = conn.open_bi().await?;
    send(&mut tx, &SensorMessage::hello("bench", "bench", 1)).await?;
    let mut rx = MessageReader::new(rx);
    match rx.recv::<HubMessage>().await? {
        Some(HubMessage::Welcome { .. }) => {}
        other => bail!("hub answered {other:?}"),
    }
    Ok(Session { ep, conn, tx, rx })
}

/// Sends every batch with at most `window` unacknowledged; returns when all are acknowledged.
async fn deliver(
    creds: &SensorCredentials,
    hub: SocketAddr,
    batches: &[Batch],
    window: usize,
) -> Result<()> {
    let Session {
        ep,
        conn,
        mut tx,
        mut rx,
    } = session(creds, hub).await?;
    let last = batches.last().map_or(0, |b| b.seq);
    let mut acked = 0u64;
    let mut next = 0usize;
    while acked < last {
        while next < batches.len() && (batches[next].seq - acked) as usize <= window {
            send(&mut tx, &SensorMessage::Batch(batches[next].clone())).await?;
            next += 1;
        }
        match rx.recv::<HubMessage>().await? {
            Some(HubMessage::Ack { through }) => acked = through,
            other => bail!("hub answered {other:?}"),
        }
    }
    tx.finish()?;
    conn.close(0u32.into(), b"done");
    ep.wait_idle().await;
    Ok(())
}

/// Sends `recs` in batches of `per` at `rate` records/s, each record's capture time set to
/// when its batch leaves; returns each batch's send instant.
async fn deliver_paced(
    creds: &SensorCredentials,
    hub: SocketAddr,
    recs: &[Transaction],
    per: usize,
    rate: usize,
) -> Result<Vec<Instant>> {
    let Session {
        ep,
        conn,
        mut tx,
        mut rx,
    } = session(creds, hub).await?;
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = std::sync::Arc::clone(&acked);
    let reader = tokio::spawn(async move {
        while let Ok(Some(HubMessage::Ack { through })) = rx.recv::<HubMessage>().await {
            seen.store(through, std::sync::atomic::Ordering::Release);
        }
    });
    let start = Instant::now();
    let mut sent = Vec::new();
    for (i, chunk) in recs.chunks(per).enumerate() {
        let due = start + Duration::from_secs_f64((i * per) as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos() as i64;
        let mut batch: Vec<Transaction> = chunk.to_vec();
        for t in &mut batch {
            t.request_ts_nanos = now_ns;
            t.response_ts_nanos = Some(now_ns);
        }
        sent.push(Instant::now());
        send(
            &mut tx,
            &SensorMessage::Batch(Batch::encode(i as u64 + 1, &batch)?),
        )
        .await?;
    }
    let last = sent.len() as u64;
    while acked.load(std::sync::atomic::Ordering::Acquire) < last {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tx.finish()?;
    conn.close(0u32.into(), b"done");
    reader.abort();
    ep.wait_idle().await;
    Ok(sent)
}

/// A hub that decodes and acknowledges without storing.
async fn bare_hub(ep: quinn::Endpoint) -> Result<()> {
    let conn = ep.accept().await.context("no connection")?.await?;
    let (mut tx, rx) = conn.accept_bi().await?;
    let mut rx = MessageReader::new(rx);
    while let Some(m) = rx.recv::<SensorMessage>().await? {
        match m {
            SensorMessage::Hello { .. } => {
                send(&mut tx, &HubMessage::Welcome { stored_through: 0 }).await?;
            }
            SensorMessage::Batch(b) => {
                let n = b.decode()?.len();
                std::hint::black_box(n);
                send(&mut tx, &HubMessage::Ack { through: b.seq }).await?;
            }
            SensorMessage::Stats(_) => {}
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    // RUST_LOG=tapline_hub=debug shows the hub's flushes (what each wrote, how long it took).
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = arg(&args, "--records", 1_000_000)?;
    let per = arg(&args, "--batch", 2000)?.max(1);
    let window = arg(&args, "--window", 16)?.max(1);
    let rate = arg(&args, "--rate", 10_000)?.max(1);
    let paced = arg(&args, "--paced", 150_000)?;
    // The sample captures' records unless a capture is named (the benchmark capture, say).
    let recs = match args.iter().position(|a| a == "--capture") {
        Some(i) => {
            let path = args.get(i + 1).context("--capture needs a file")?;
            tapline_tests::records_of(&[path.into()], n)?
        }
        None => tapline_tests::sample_records(n)?,
    };
    let t = Instant::now();
    let batches: Vec<Batch> = recs
        .chunks(per)
        .enumerate()
        .map(|(i, c)| Batch::encode(i as u64 + 1, c))
        .collect::<Result<_, _>>()?;
    let encode = t.elapsed();
    let wire: usize = batches.iter().map(|b| b.compressed.len()).sum();
    println!(
        "link_bench: {n} records in {} batches of {per}, {:.1} MB compressed ({:.0} B/record); window {window}",
        batches.len(),
        wire as f64 / 1e6,
        wire as f64 / n as f64
    );
    println!(
        "  encode (sensor side, when a batch closes): {:.0} records/s",
        n as f64 / encode.as_secs_f64()
    );

    let identity = HubIdentity::create()?;
    let creds = identity.enrol("bench")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    // The transport's ceiling: decode + acknowledge, no storage.
    let (hub_addr, bare) = {
        let _g = rt.enter();
        let ep = transport::server(&identity, "127.0.0.1:0".parse()?)?;
        (ep.local_addr()?, rt.spawn(bare_hub(ep)))
    };
    let t = Instant::now();
    rt.block_on(deliver(&creds, hub_addr, &batches, window))?;
    let bare_time = t.elapsed();
    // The client closes the connection once everything is acknowledged; how the bare hub
    // notices that does not matter here.
    let _ = rt.block_on(bare)?;
    println!(
        "  QUIC + TLS + decode, no storage: {:.0} records/s ({:.2} s, {:.0} MB/s on the wire)",
        n as f64 / bare_time.as_secs_f64(),
        bare_time.as_secs_f64(),
        wire as f64 / 1e6 / bare_time.as_secs_f64()
    );

    // The real hub, storing into a fresh case.
    let dir = case_dir()?;
    let mut store = CaseStore::open(&dir.path().join("bench.duckdb"))?;
    store.enrol_sensor("bench", &creds.fingerprint()?)?;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let last = batches.last().map_or(0, |b| b.seq);
    let hub = Hub::start(
        store,
        tapline_hub::Recovery::Reopen,
        &identity,
        "127.0.0.1:0".parse()?,
        tapline_hub::LiveAnalysis::Off,
        move |e| {
            if let HubEvent::Batch { seq, .. } = e
                && seq == last
            {
                let _ = done_tx.send(());
            }
        },
    )?;
    let (t, cpu) = (Instant::now(), tapline_tests::process_cpu_seconds());
    rt.block_on(deliver(&creds, hub.local_addr(), &batches, window))?;
    let stored_time = t.elapsed();
    done_rx.recv_timeout(Duration::from_secs(5))?;
    let cpu = tapline_tests::process_cpu_seconds() - cpu;
    hub.stop()?;
    let store = CaseStore::open(&dir.path().join("bench.duckdb"))?;
    let stored = store.count_transactions(&Default::default())?;
    if stored != n as u64 {
        bail!("the case holds {stored} transactions, expected {n}");
    }
    println!(
        "  QUIC + TLS + decode + DuckDB commit per batch (the hub): {:.0} records/s ({:.2} s, {:.1} µs CPU a record, both sides); {stored} stored",
        n as f64 / stored_time.as_secs_f64(),
        stored_time.as_secs_f64(),
        cpu * 1e6 / n as f64
    );
    let bench = LiveBench {
        rt: &rt,
        identity: &identity,
        creds: &creds,
    };
    bench.throughput(&batches, n, window)?;
    // `--paced 0` leaves the latency run out.
    if paced > 0 {
        bench.latency(&recs[..paced.min(n)], per.min(rate), rate)?;
    }
    Ok(())
}

/// A hub with live analysis, its events with when they came.
fn live_hub(
    identity: &HubIdentity,
    creds: &SensorCredentials,
    dir: &std::path::Path,
) -> Result<(Hub, std::sync::mpsc::Receiver<(Instant, HubEvent)>)> {
    let mut store = CaseStore::open(&dir.join("bench.duckdb"))?;
    store.enrol_sensor("bench", &creds.fingerprint()?)?;
    let (events_tx, events) = std::sync::mpsc::channel();
    let hub = Hub::start(
        store,
        tapline_hub::Recovery::Reopen,
        identity,
        "127.0.0.1:0".parse()?,
        tapline_hub::LiveAnalysis::ON,
        move |e| {
            let _ = events_tx.send((Instant::now(), e));
        },
    )?;
    Ok((hub, events))
}

/// Waits for the analysis write that covers record `n`; its instant.
fn analysed_through(
    events: &std::sync::mpsc::Receiver<(Instant, HubEvent)>,
    n: u64,
    mut on_write: impl FnMut(Instant, &tapline_hub::live::Analysed),
) -> Result<Instant> {
    loop {
        let (at, e) = events
            .recv_timeout(Duration::from_secs(600))
            .context("live analysis did not catch up in 10 minutes")?;
        if let HubEvent::Analysed(a) = e {
            on_write(at, &a);
            if a.records >= n && a.waiting == 0 {
                return Ok(at);
            }
        }
    }
}

/// What the live-analysis measurements share: the runtime the sensor side runs on, the hub's
/// identity and the sensor's credentials.
struct LiveBench<'a> {
    rt: &'a tokio::runtime::Runtime,
    identity: &'a HubIdentity,
    creds: &'a SensorCredentials,
}

impl LiveBench<'_> {
    /// Records stored and analysed per second, every detector on, delivered as fast as the hub
    /// acknowledges.
    fn throughput(&self, batches: &[Batch], n: usize, window: usize) -> Result<()> {
        let dir = case_dir()?;
        let (hub, events) = live_hub(self.identity, self.creds, dir.path())?;
        let (t, cpu) = (Instant::now(), tapline_tests::process_cpu_seconds());
        let threads = tapline_tests::threads_cpu_seconds();
        let addr = hub.local_addr();
        self.rt
            .block_on(deliver(self.creds, addr, batches, window))?;
        let stored = t.elapsed();
        let (mut flushes, mut read_back) = (0, 0);
        let done = analysed_through(&events, n as u64, |_, a| {
            flushes += 1;
            read_back = a.read_back;
        })?;
        let analysed = done - t;
        let cpu = tapline_tests::process_cpu_seconds() - cpu;
        let by_thread: Vec<String> = tapline_tests::threads_cpu_seconds()
            .into_iter()
            .map(|(name, s)| (name.clone(), s - threads.get(&name).copied().unwrap_or(0.0)))
            .filter(|(_, s)| *s >= 0.01)
            .map(|(name, s)| format!("{name} {:.1}", s * 1e6 / n as f64))
            .collect();
        hub.stop()?;
        println!(
            "  the hub analysing live (every detector): stored {:.0} records/s ({:.2} s); stored and analysed {:.0} records/s ({:.2} s, {:.1} µs CPU a record, both sides); {flushes} writes, {read_back} records read back from the case",
            n as f64 / stored.as_secs_f64(),
            stored.as_secs_f64(),
            n as f64 / analysed.as_secs_f64(),
            analysed.as_secs_f64(),
            cpu * 1e6 / n as f64
        );
        println!("    µs CPU a record by thread: {}", by_thread.join(", "));
        // What the hub put off: folding its live segments into the case's table, which it
        // does when quiet (what it had not folded by now, done here on this thread).
        let mut store = CaseStore::open(&dir.path().join("bench.duckdb"))?;
        let live = store.live_segments()?;
        let (t, cpu) = (Instant::now(), tapline_tests::process_cpu_seconds());
        let folded = store.compact_segments(u64::MAX)?;
        let (took, cpu) = (t.elapsed(), tapline_tests::process_cpu_seconds() - cpu);
        let stored = store.count_transactions(&Default::default())?;
        if stored != n as u64 {
            bail!("the case holds {stored} transactions, expected {n}");
        }
        println!(
            "    then folding the live segments left ({} files) into the table: {folded} records in {:.2} s, {:.1} µs CPU a record folded",
            live.files,
            took.as_secs_f64(),
            cpu * 1e6 / folded.max(1) as f64
        );
        Ok(())
    }

    /// At `rate` records/s: how long after a record's capture its analysis is in the case.
    fn latency(&self, recs: &[Transaction], per: usize, rate: usize) -> Result<()> {
        let dir = case_dir()?;
        let (hub, events) = live_hub(self.identity, self.creds, dir.path())?;
        let addr = hub.local_addr();
        let sent = self
            .rt
            .block_on(deliver_paced(self.creds, addr, recs, per, rate))?;
        let mut latencies: Vec<Duration> = Vec::with_capacity(recs.len());
        let mut covered = 0u64;
        analysed_through(&events, recs.len() as u64, |at, a| {
            let records = a.records;
            for i in covered..records.min(recs.len() as u64) {
                latencies.push(at - sent[i as usize / per]);
            }
            covered = covered.max(records);
        })?;
        hub.stop()?;
        latencies.sort();
        let q = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64();
        println!(
            "  capture → analysed in the case at {rate} records/s ({} records): p50 {:.2} s, p99 {:.2} s, max {:.2} s",
            recs.len(),
            q(0.5),
            q(0.99),
            q(1.0)
        );
        Ok(())
    }
}
