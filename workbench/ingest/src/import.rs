//! Import jobs: a pcap, pcapng or HAR file → decoded transactions → the case store.
//!
//! Capture files are memory-mapped and decoded by one engine per worker thread, each keeping
//! its shard of the connections. Each shard also stores what it decodes — numbering, analysis
//! and DuckDB appends on its own connection — so decoding, analysis and DuckDB's compression
//! run on every core; the work that completes the import (merged analysis results, the source
//! marked complete) is one final DuckDB transaction. Progress is reported through a callback
//! (the CLI draws a bar, the GUI forwards it over a channel), and a shared flag cancels.
//!
//! Guarantees:
//! - the same content (by blake3 hash) is imported once: a second import is refused;
//! - a damaged file is refused before anything is written (the error names file and offset);
//! - an import that is cancelled leaves the case as it was; one that is killed leaves a
//!   source marked `importing`, whose rows the next import of that file discards first.

use crate::capture_file::MappedFile;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tapline_analysis::Detectors;
use tapline_analysis::behaviour::{self, Behaviour, HORIZON_NS};
use tapline_decode::capture::CaptureReader;
use tapline_decode::{Engine, EngineConfig};
use tapline_formats::har;
use tapline_record::Transaction;
use tapline_store::CaseStore;
use tapline_store::live::StreamSave;
use tapline_store::sources::{NewSource, SourceCounts};
use tapline_store::transactions::BatchWriter;

/// How to import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Decoded body bytes kept per message.
    pub max_body: usize,
    /// Decoder threads (each scans the file and keeps its share of connections).
    pub threads: usize,
    /// Transactions each shard commits at once. From DuckDB's row group size (122,880) up,
    /// full row groups are compressed straight into the case file instead of going through
    /// the write-ahead log first.
    pub batch: usize,
    /// Which analysis engines run (all by default; off only to measure what one costs).
    pub detectors: Detectors,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            max_body: 64 * 1024,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            batch: 2 * 122_880,
            detectors: Detectors::ALL,
        }
    }
}

/// Where an import is.
#[derive(Clone, Debug, Default)]
pub struct ImportProgress {
    /// The file.
    pub file: PathBuf,
    /// Its size.
    pub bytes_total: u64,
    /// Bytes decoded so far.
    pub bytes_done: u64,
    /// Packets read so far.
    pub packets: u64,
    /// Transactions stored so far.
    pub transactions: u64,
    /// Time since the import started.
    pub elapsed: Duration,
}

impl ImportProgress {
    /// The final report: every byte read, the source's counts.
    fn finish(&mut self, counts: &SourceCounts, started: Instant) {
        self.bytes_done = self.bytes_total;
        self.packets = counts.packets;
        self.transactions = counts.transactions;
        self.elapsed = started.elapsed();
    }

    /// Bytes per second so far.
    pub fn rate(&self) -> f64 {
        self.bytes_done as f64 / self.elapsed.as_secs_f64().max(1e-3)
    }

    /// Estimated time left, once there is a rate to go by.
    pub fn eta(&self) -> Option<Duration> {
        let rate = self.rate();
        (self.bytes_done > 0 && rate > 0.0).then(|| {
            Duration::from_secs_f64(self.bytes_total.saturating_sub(self.bytes_done) as f64 / rate)
        })
    }
}

/// What an import did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Stored.
    Imported(ImportSummary),
    /// This content is already in the case (by hash); nothing was stored.
    AlreadyImported {
        /// The existing source.
        source_id: i64,
        /// Its file name when imported.
        name: String,
        /// Transactions it holds.
        transactions: u64,
    },
    /// Cancelled; the case is as it was.
    Cancelled,
}

/// Counts of a finished import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportSummary {
    /// The new source's id.
    pub source_id: i64,
    /// From the lowest to one past the highest id given to the stored transactions. Dense
    /// unless another writer of the process (the GUI's sensor hub) stored in between.
    pub ids: std::ops::Range<i64>,
    /// Packets read (0 for HAR).
    pub packets: u64,
    /// Transactions stored.
    pub transactions: u64,
    /// True when an interrupted earlier import of this file was discarded and redone.
    pub resumed: bool,
}

/// The formats an import understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// Classic pcap.
    Pcap,
    /// pcapng.
    PcapNg,
    /// HTTP Archive.
    Har,
}

impl FileKind {
    fn name(self) -> &'static str {
        match self {
            FileKind::Pcap => "pcap",
            FileKind::PcapNg => "pcapng",
            FileKind::Har => "har",
        }
    }
}

/// Tells the format from the first bytes.
pub fn detect(path: &Path, bytes: &[u8]) -> Result<FileKind> {
    if let Ok(reader) = CaptureReader::new(bytes) {
        return Ok(match reader {
            CaptureReader::Pcap(_) => FileKind::Pcap,
            CaptureReader::PcapNg(_) => FileKind::PcapNg,
        });
    }
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        return Ok(FileKind::Har);
    }
    let head: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
    bail!(
        "{}: not a pcap, pcapng or HAR file (it starts with bytes {}); export captures as pcap/pcapng and browser traffic as HAR",
        path.display(),
        if head.is_empty() {
            "(empty file)".into()
        } else {
            head.join(" ")
        }
    )
}

/// Walks every capture record without decoding, so a damaged file is refused before anything
/// is written.
fn check_capture(path: &Path, bytes: &[u8]) -> Result<u64> {
    let reader = CaptureReader::new(bytes)
        .with_context(|| format!("{} is not a capture Tapline can read", path.display()))?;
    let mut packets = 0;
    for item in reader {
        item.with_context(|| {
            format!(
                "{} is damaged; nothing was imported (repair it, e.g. with `pcapfix`, or cut it before the damage with `editcap`)",
                path.display()
            )
        })?;
        packets += 1;
    }
    Ok(packets)
}

/// Imports one file into `store`.
pub fn import_file(
    store: &mut CaseStore,
    path: &Path,
    opts: &ImportOptions,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(&ImportProgress),
) -> Result<ImportOutcome> {
    let span = tracing::info_span!("import", file = %path.display());
    let _entered = span.enter();
    let started = Instant::now();
    let file = MappedFile::open(path)?;
    let bytes = file.bytes();
    let kind = detect(path, bytes)?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );

    let (hash, har) = hash_and_check(path, bytes, kind, opts)?;
    file.check_intact()?;
    let new_source = NewSource {
        kind: kind.name(),
        name: &name,
        path: Some(&path.display().to_string()),
        content_hash: Some(&hash),
        size_bytes: Some(bytes.len() as u64),
    };
    let (source_id, resumed) = match claim_source(store, &new_source)? {
        Claim::Done(outcome) => return Ok(outcome),
        Claim::Source { id, resumed } => (id, resumed),
    };

    // Each shard appends on its own connection; a HAR file is one shard.
    let writers = if har.is_some() {
        1
    } else {
        opts.threads.max(1)
    };
    let bulk = store.prepare_bulk_import(writers)?;
    let shared = Shared::new(cancel, store.transaction_ids().clone());
    let mut report = ImportProgress {
        file: path.to_owned(),
        bytes_total: bytes.len() as u64,
        ..ImportProgress::default()
    };

    let job = Job {
        store,
        source: source_id,
        opts,
        shared: &shared,
        started,
    };
    let written = match har {
        Some(entries) => {
            store_har(job, bytes, entries, &mut report, progress).map(|shard| vec![shard])
        }
        None => decode_shards(job, bytes, &mut report, progress),
    };
    if let Err(e) = store.end_bulk_import(bulk) {
        tracing::warn!("DuckDB keeps the import's thread count until the case is reopened: {e}");
    }
    let shards = written
        .and_then(|shards| file.check_intact().map(|()| shards))
        .map_err(|e| roll_back(store, source_id, e))?;
    if shared.stopped() {
        store.forget_source(source_id)?;
        return Ok(ImportOutcome::Cancelled);
    }

    let counts =
        complete(store, source_id, shards, started).map_err(|e| roll_back(store, source_id, e))?;
    tracing::info!(
        transactions = counts.transactions,
        packets = counts.packets,
        elapsed = ?started.elapsed(),
        "imported"
    );
    report.finish(&counts, started);
    progress(&report);
    Ok(ImportOutcome::Imported(ImportSummary {
        source_id,
        ids: shared.id_range(),
        packets: counts.packets,
        transactions: counts.transactions,
        resumed,
    }))
}

/// A failed import takes its rows back out (readers never saw them: the source is not
/// complete). When even that fails — a full disk — the rows stay invisible and a re-run
/// replaces them.
fn roll_back(store: &mut CaseStore, source_id: i64, e: anyhow::Error) -> anyhow::Error {
    if let Err(undo) = store.forget_source(source_id) {
        tracing::warn!("the failed import's rows stay hidden until a re-run replaces them: {undo}");
    }
    e
}

/// Hashes the file (for the duplicate check) while parsing or walking everything that can
/// fail, before the case is touched: two independent passes over the file, one per core. A
/// HAR file is read through (entry by entry, nothing kept) and its entries counted.
fn hash_and_check(
    path: &Path,
    bytes: &[u8],
    kind: FileKind,
    opts: &ImportOptions,
) -> Result<(String, Option<usize>)> {
    std::thread::scope(|s| {
        let hasher = s.spawn(|| blake3::hash(bytes).to_hex().to_string());
        let har = match kind {
            FileKind::Har => {
                tapline_formats::har::stream(bytes, opts.max_body, &mut |_| har::Flow::Go)
                    .map(Some)
                    .with_context(|| format!("{}: nothing was imported", path.display()))
            }
            FileKind::Pcap | FileKind::PcapNg => check_capture(path, bytes).map(|_| None),
        };
        let hash = hasher
            .join()
            .map_err(|_| anyhow::anyhow!("the hashing thread panicked"));
        hash.and_then(|h| har.map(|har| (h, har)))
    })
}

/// What the case says of content about to be imported.
enum Claim {
    /// Nothing to do: the case holds it already.
    Done(ImportOutcome),
    /// Import into this source; `resumed` when an earlier import of it never completed.
    Source { id: i64, resumed: bool },
}

/// Registers the source as importing — or finds it complete already, or discards what an
/// interrupted import of the same content left.
fn claim_source(store: &mut CaseStore, new: &NewSource<'_>) -> Result<Claim> {
    let hash = new.content_hash.unwrap_or_default();
    Ok(match store.source_by_hash(hash)? {
        Some(s) if s.status == "complete" => {
            tracing::info!(source = s.id, "already in the case");
            Claim::Done(ImportOutcome::AlreadyImported {
                source_id: s.id,
                name: s.name,
                transactions: s.transactions,
            })
        }
        Some(s) => {
            tracing::info!(
                source = s.id,
                "an earlier import of this content did not complete: starting over"
            );
            store.discard_partial_source(s.id)?;
            Claim::Source {
                id: s.id,
                resumed: true,
            }
        }
        None => Claim::Source {
            id: store.begin_source(new)?,
            resumed: false,
        },
    })
}

/// Reads a HAR file (checked already, `entries` long) a second time, entry by entry, and
/// stores its transactions as one shard a chunk at a time: memory holds a chunk, not the file.
fn store_har(
    job: Job<'_>,
    bytes: &[u8],
    entries: usize,
    report: &mut ImportProgress,
    progress: &mut dyn FnMut(&ImportProgress),
) -> Result<ShardDone> {
    let Job {
        store,
        source: source_id,
        opts,
        shared,
        started,
    } = job;
    let mut shard = ShardWriter::new(store, source_id, opts, shared)?;
    let chunk = shard.chunk;
    let mut part = Vec::with_capacity(chunk);
    let mut failed = None;
    let mut store_part = |part: &mut Vec<Transaction>, shard: &mut ShardWriter<'_>| {
        let stored = shard.store(part);
        part.clear();
        report.bytes_done = report.bytes_total * shard.appended as u64 / entries.max(1) as u64;
        report.transactions = shared.appended.load(Ordering::Relaxed);
        report.elapsed = started.elapsed();
        progress(report);
        stored
    };
    har::stream(bytes, opts.max_body, &mut |tx| {
        part.push(tx);
        if part.len() >= chunk
            && let Err(e) = store_part(&mut part, &mut shard)
        {
            failed = Some(e);
            return har::Flow::Stop;
        }
        if shared.stopped() {
            har::Flow::Stop
        } else {
            har::Flow::Go
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    if !part.is_empty() && !shared.stopped() {
        store_part(&mut part, &mut shard)?;
    }
    shard.finish()
}

/// Behaviour events an import saves at most for the imports after it (its first and last
/// window's worth).
const JOIN_EVENTS: usize = 100_000;

/// The case's behaviour stream (sensors' and earlier imports' events) as far as it can share
/// a time window with records from `counts.first_ts_ns` to `counts.last_ts_ns`.
fn joined_stream(store: &CaseStore, counts: &SourceCounts) -> Result<Behaviour> {
    let (Some(first), Some(last)) = (counts.first_ts_ns, counts.last_ts_ns) else {
        return Ok(Behaviour::default());
    };
    let around = first.saturating_sub(HORIZON_NS)..last.saturating_add(HORIZON_NS);
    let (events, creations) = store
        .stream_events(around)
        .context("cannot read the case's behaviour stream; the import was not completed")?;
    Ok(Behaviour::restore(&events, &creations))
}

/// Merges the shards' analyses, consolidates them with the case and writes them with the
/// source's `complete` mark in one DuckDB transaction; returns the source's counts.
fn complete(
    store: &mut CaseStore,
    source_id: i64,
    shards: Vec<ShardDone>,
    started: Instant,
) -> Result<SourceCounts> {
    let mut analyses = tapline_analysis::Analyses::default();
    let mut counts = SourceCounts::default();
    for s in shards {
        analyses.absorb(s.analyses);
        counts.packets = counts.packets.max(s.packets);
        counts.transactions += s.stored;
        counts.first_ts_ns = min_some(counts.first_ts_ns, s.first_ts);
        counts.last_ts_ns = counts.last_ts_ns.max(s.last_ts);
    }
    let phase = Instant::now();
    let mut stream = joined_stream(store, &counts)?;
    let (from_events, from_creations) = (stream.events(), stream.creations());
    let derived = analyses
        .finish_joining(&store.endpoints()?, &mut stream)
        .context("analysis failed; the import was not completed")?;
    let reach = behaviour::Thresholds::default().window_ns;
    let events = stream.saved_edges(from_events, reach, JOIN_EVENTS);
    let creations = stream.saved_creations(from_creations);
    let forget_before_ns = stream.latest_ns().and_then(|w| stream.forget_beyond(w));
    let analysed = phase.elapsed();
    let save = StreamSave {
        events: &events,
        creations: &creations,
        forget_before_ns,
    };
    store.complete_source(source_id, counts, &derived, &save)?;
    // The import is complete and durable (in the write-ahead log); folding the log into the
    // file now is an optimisation, refused while another writer (a hub beside this import)
    // has a transaction open — DuckDB then checkpoints later by itself.
    if let Err(e) = store.checkpoint() {
        tracing::info!("checkpoint after the import deferred: {e}");
    }
    // For benchmarks (RUST_LOG=tapline_ingest=debug): where an import's serial tail goes.
    tracing::debug!(
        decode_store_observe = ?(started.elapsed() - phase.elapsed()),
        analysis_finish = ?analysed,
        write_checkpoint = ?(phase.elapsed() - analysed),
        "import phases"
    );
    Ok(counts)
}

fn min_some(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Transactions a shard converts and appends at a time: few enough that their memory is
/// reused chunk after chunk instead of growing with the commit size.
const APPEND_CHUNK: usize = 8192;

/// What the threads of one import share.
struct Shared<'a> {
    /// The caller's cancel switch.
    cancel: &'a AtomicBool,
    /// Set when the import must stop: cancelled, or a shard failed.
    stop: AtomicBool,
    /// The next unused transaction id; shards take ranges of it.
    /// The case's id allocator: shared with other writers of the process (the GUI's hub).
    ids: tapline_store::TransactionIds,
    /// The lowest and one past the highest id this import took.
    first_id: AtomicI64,
    end_id: AtomicI64,
    /// Transactions appended so far (committed or about to be), for progress.
    appended: AtomicU64,
    /// Commits made so far, over all shards.
    commits: AtomicU64,
    /// Capture bytes and packets read by the first shard, for progress.
    bytes_done: AtomicU64,
    packets: AtomicU64,
}

/// What every writer of one import shares: the case, the source, the options, the shared
/// counters and the start time.
#[derive(Clone, Copy)]
struct Job<'a> {
    store: &'a CaseStore,
    source: i64,
    opts: &'a ImportOptions,
    shared: &'a Shared<'a>,
    started: Instant,
}

impl<'a> Shared<'a> {
    fn new(cancel: &'a AtomicBool, ids: tapline_store::TransactionIds) -> Self {
        Shared {
            cancel,
            stop: AtomicBool::new(false),
            ids,
            first_id: AtomicI64::new(i64::MAX),
            end_id: AtomicI64::new(0),
            appended: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            bytes_done: AtomicU64::new(0),
            packets: AtomicU64::new(0),
        }
    }

    /// The transaction ids this import took (empty when it took none).
    fn id_range(&self) -> std::ops::Range<i64> {
        let first = self.first_id.load(Ordering::Relaxed);
        let end = self.end_id.load(Ordering::Relaxed);
        if first <= end { first..end } else { 0..0 }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.cancel.load(Ordering::Relaxed)
    }
}

/// One shard's writer: numbers its transactions, feeds them to its analysis engines and
/// appends them on its own DuckDB connection, committing every `opts.batch` transactions.
struct ShardWriter<'a> {
    writer: BatchWriter,
    analyses: tapline_analysis::Analyses,
    shared: &'a Shared<'a>,
    chunk: usize,
    batch: usize,
    appended: usize,
    uncommitted: u64,
    stored: u64,
    first_ts: Option<i64>,
    last_ts: Option<i64>,
}

/// What a shard did.
#[derive(Default)]
struct ShardDone {
    analyses: tapline_analysis::Analyses,
    packets: u64,
    stored: u64,
    first_ts: Option<i64>,
    last_ts: Option<i64>,
}

impl<'a> ShardWriter<'a> {
    fn new(
        store: &CaseStore,
        source: i64,
        opts: &ImportOptions,
        shared: &'a Shared<'a>,
    ) -> Result<Self> {
        let batch = opts.batch.max(1);
        Ok(ShardWriter {
            writer: store.batch_writer(Some(source))?,
            analyses: tapline_analysis::Analyses::new(opts.detectors),
            shared,
            chunk: batch.min(APPEND_CHUNK),
            batch,
            appended: 0,
            uncommitted: 0,
            stored: 0,
            first_ts: None,
            last_ts: None,
        })
    }

    fn store(&mut self, txs: &[Transaction]) -> Result<()> {
        if txs.is_empty() {
            return Ok(());
        }
        let ids = self.shared.ids.reserve(txs.len());
        self.shared.first_id.fetch_min(ids.start, Ordering::Relaxed);
        self.shared.end_id.fetch_max(ids.end, Ordering::Relaxed);
        let first = ids.start;
        for (i, t) in txs.iter().enumerate() {
            self.analyses.observe(first + i as i64, t);
            let ts = t.request_ts_nanos;
            self.first_ts = Some(self.first_ts.map_or(ts, |f| f.min(ts)));
            self.last_ts = Some(self.last_ts.map_or(ts, |l| l.max(ts)));
        }
        self.writer.append(first, txs)?;
        self.appended += txs.len();
        self.shared
            .appended
            .fetch_add(txs.len() as u64, Ordering::Relaxed);
        self.uncommitted += txs.len() as u64;
        if self.uncommitted >= self.batch as u64 {
            self.commit()?;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        if self.uncommitted == 0 {
            return Ok(());
        }
        self.writer.commit()?;
        self.stored += std::mem::take(&mut self.uncommitted);
        let commits = self.shared.commits.fetch_add(1, Ordering::Relaxed) + 1;
        test_pause_point(commits);
        Ok(())
    }

    fn finish(mut self) -> Result<ShardDone> {
        self.commit()?;
        Ok(ShardDone {
            analyses: std::mem::take(&mut self.analyses),
            packets: 0,
            stored: self.stored,
            first_ts: self.first_ts,
            last_ts: self.last_ts,
        })
    }
}

/// For the crash-consistency test: with `TAPLINE_TEST_PAUSE_AFTER_BATCHES=N` the import stops
/// after its N-th commit, says so on stderr and waits to be killed (`kill -9`). Compiled into
/// debug builds only (the tests'): a release build never reads the variable.
#[cfg(debug_assertions)]
fn test_pause_point(commits: u64) {
    let Some(n) = std::env::var("TAPLINE_TEST_PAUSE_AFTER_BATCHES")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    if commits == n {
        // Said on stderr whatever the log level: the crash test waits for this line.
        eprintln!("tapline-test: paused after {n} batches");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

#[cfg(not(debug_assertions))]
fn test_pause_point(_commits: u64) {}

/// Decodes a mapped capture with one engine per thread, each keeping its shard of the
/// connections and storing its own transactions through its own DuckDB connection: decoding,
/// analysis and DuckDB's compression all run on every core. The calling thread reports
/// progress until the shards are done.
fn decode_shards(
    job: Job<'_>,
    bytes: &[u8],
    report: &mut ImportProgress,
    progress: &mut dyn FnMut(&ImportProgress),
) -> Result<Vec<ShardDone>> {
    let Job {
        store,
        source,
        opts,
        shared,
        started,
    } = job;
    let threads = opts.threads.max(1);
    let writers = (0..threads)
        .map(|_| ShardWriter::new(store, source, opts, shared))
        .collect::<Result<Vec<_>>>()?;
    std::thread::scope(|s| {
        let handles: Vec<_> = writers
            .into_iter()
            .enumerate()
            .map(|(shard, writer)| {
                let cfg = EngineConfig {
                    shard: (threads > 1).then_some((shard as u64, threads as u64)),
                    // One flow budget for the import, however many shards share it.
                    flows: tapline_decode::flow::FlowLimits::default().shared_by(threads),
                    http: tapline_decode::http::HttpConfig {
                        max_body: opts.max_body,
                        ..Default::default()
                    },
                    ..EngineConfig::default()
                };
                let span = tracing::debug_span!("shard", shard);
                s.spawn(move || {
                    let _entered = span.enter();
                    let done = decode_shard(writer, cfg, bytes, shard == 0, shared);
                    if done.is_err() {
                        shared.stop.store(true, Ordering::Relaxed);
                    }
                    done
                })
            })
            .collect();
        while !handles.iter().all(|h| h.is_finished()) {
            std::thread::sleep(Duration::from_millis(50));
            report.bytes_done = shared.bytes_done.load(Ordering::Relaxed);
            report.packets = shared.packets.load(Ordering::Relaxed);
            report.transactions = shared.appended.load(Ordering::Relaxed);
            report.elapsed = started.elapsed();
            progress(report);
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a decoder thread panicked"))?
            })
            .collect()
    })
}

/// One shard: decode every packet, keep this shard's connections, store their transactions.
fn decode_shard(
    mut writer: ShardWriter<'_>,
    cfg: EngineConfig,
    bytes: &[u8],
    reports: bool,
    shared: &Shared<'_>,
) -> Result<ShardDone> {
    // The damage walk before the import proved the file readable to the end.
    let mut reader = CaptureReader::new(bytes)?;
    let mut engine = Engine::new(cfg);
    let mut out = Vec::with_capacity(writer.chunk);
    let mut n: u64 = 0;
    while let Some(Ok(pkt)) = reader.next() {
        engine.packet(&pkt, &mut out);
        n += 1;
        if n.is_multiple_of(4096) {
            if shared.stopped() {
                return Ok(ShardDone::default()); // dropping the writer rolls back
            }
            if reports {
                shared
                    .bytes_done
                    .store(reader.position(), Ordering::Relaxed);
                shared.packets.store(n, Ordering::Relaxed);
            }
        }
        if out.len() >= writer.chunk {
            writer.store(&out)?;
            out.clear();
        }
    }
    engine.finish(&mut out);
    writer.store(&out)?;
    if reports {
        shared.packets.store(n, Ordering::Relaxed);
    }
    let mut done = writer.finish()?;
    done.packets = n;
    Ok(done)
}

/// What a background import reports.
#[derive(Clone, Debug)]
pub enum ImportEvent {
    /// Progress of the current file.
    Progress(ImportProgress),
    /// One file finished (or was refused, or failed: the message says why).
    FileDone {
        /// The file.
        file: PathBuf,
        /// What happened.
        outcome: Result<ImportOutcome, String>,
    },
    /// Every file was handled (or the import was cancelled).
    Finished,
}

/// A running background import: its events and its cancel switch.
pub struct ImportHandle {
    /// Events in order; ends after [`ImportEvent::Finished`].
    pub events: mpsc::Receiver<ImportEvent>,
    /// Set to cancel (the current file is rolled back).
    pub cancel: std::sync::Arc<AtomicBool>,
    /// The worker thread.
    pub thread: std::thread::JoinHandle<()>,
}

/// Imports `files` into `store` on a worker thread, for callers that must not block (the
/// GUI, which passes a clone of its open case): events arrive on a channel, and `notify` runs
/// after each one (the GUI passes `ctx.request_repaint`).
pub fn spawn_import(
    mut store: CaseStore,
    files: Vec<PathBuf>,
    opts: ImportOptions,
    notify: impl Fn() + Send + 'static,
) -> std::io::Result<ImportHandle> {
    let (send, events) = mpsc::channel();
    let cancel = std::sync::Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let thread = std::thread::Builder::new()
        .name("import".into())
        .spawn(move || {
            let emit = |e: ImportEvent| {
                let _ = send.send(e);
                notify();
            };
            for file in files {
                let mut last = Instant::now();
                let outcome = import_file(&mut store, &file, &opts, &flag, &mut |p| {
                    if last.elapsed() >= Duration::from_millis(50) {
                        last = Instant::now();
                        emit(ImportEvent::Progress(p.clone()));
                    }
                })
                .map_err(|e| format!("{e:#}"));
                emit(ImportEvent::FileDone { file, outcome });
                if flag.load(Ordering::Relaxed) {
                    break;
                }
            }
            emit(ImportEvent::Finished);
        })?;
    Ok(ImportHandle {
        events,
        cancel,
        thread,
    })
}
