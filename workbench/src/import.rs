//! Import jobs: a pcap, pcapng or HAR file → decoded transactions → the case store.
//!
//! Capture files are memory-mapped and decoded by one engine per worker thread, each keeping
//! its shard of the connections; batches flow through a bounded channel to the caller's thread,
//! which appends them to DuckDB (one writer, as DuckDB wants). Progress is reported through a
//! callback (the CLI draws a bar, the GUI forwards it over a channel), and a shared flag
//! cancels.
//!
//! Guarantees:
//! - the same content (by blake3 hash) is imported once: a second import is refused;
//! - a damaged file is refused before anything is written (the error names file and offset);
//! - an import that is cancelled leaves the case as it was; one that is killed leaves a
//!   source marked `importing`, whose rows the next import of that file discards first.

use crate::capture_file::MappedFile;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tapline_core::capture::CaptureReader;
use tapline_core::{Engine, EngineConfig, Transaction};
use tapline_store::CaseStore;
use tapline_store::sources::{Derived, NewSource, SourceCounts};

/// How to import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Decoded body bytes kept per message.
    pub max_body: usize,
    /// Decoder threads (each scans the file and keeps its share of connections).
    pub threads: usize,
    /// Transactions per DuckDB append (and commit).
    pub batch: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            max_body: 64 * 1024,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            batch: 16 * 1024,
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
    /// Ids given to the stored transactions.
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
    let started = Instant::now();
    let file = MappedFile::open(path)?;
    let bytes = file.bytes();
    let kind = detect(path, bytes)?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );

    // Hash (for the duplicate check) while parsing or walking everything that can fail,
    // before the case is touched: two independent passes over the file, one per core.
    let (hash, har) = std::thread::scope(|s| {
        let hasher = s.spawn(|| blake3::hash(bytes).to_hex().to_string());
        let har = match kind {
            FileKind::Har => crate::har::parse(bytes, opts.max_body)
                .map(Some)
                .with_context(|| format!("{}: nothing was imported", path.display())),
            FileKind::Pcap | FileKind::PcapNg => check_capture(path, bytes).map(|_| None),
        };
        let hash = hasher
            .join()
            .map_err(|_| anyhow::anyhow!("the hashing thread panicked"));
        hash.and_then(|h| har.map(|har| (h, har)))
    })?;

    let mut resumed = false;
    let source_id = match store.source_by_hash(&hash)? {
        Some(s) if s.status == "complete" => {
            return Ok(ImportOutcome::AlreadyImported {
                source_id: s.id,
                name: s.name,
                transactions: s.transactions,
            });
        }
        Some(s) => {
            store.discard_partial_source(s.id)?;
            resumed = true;
            s.id
        }
        None => store.begin_source(&NewSource {
            kind: kind.name(),
            name: &name,
            path: Some(&path.display().to_string()),
            content_hash: Some(&hash),
            size_bytes: Some(bytes.len() as u64),
        })?,
    };

    let mut state = Writer {
        store,
        analyzers: crate::analysis::default_analyzers(),
        source_id,
        next_id: 0,
        first_id: 0,
        stored: 0,
        batches: 0,
        first_ts: None,
        last_ts: None,
    };
    state.next_id = state.store.next_transaction_id()?;
    // Compress once at the end instead of at every WAL checkpoint along the way, and let
    // DuckDB write row groups in any order (ids carry the order).
    state.store.execute_batch(
        "SET checkpoint_threshold = '512MB'; SET preserve_insertion_order = false;",
    )?;
    state.first_id = state.next_id;
    let mut report = ImportProgress {
        file: path.to_owned(),
        bytes_total: bytes.len() as u64,
        ..ImportProgress::default()
    };

    let packets = if let Some(txs) = har {
        let mut done = 0;
        let n = txs.len();
        for chunk in txs.chunks(opts.batch.max(1)) {
            if cancel.load(Ordering::Relaxed) {
                return state.cancel();
            }
            done += chunk.len();
            let last = done == n;
            state.write(chunk, last.then_some(0))?;
            report.bytes_done = (bytes.len() as u64 * done as u64) / n.max(1) as u64;
            report.transactions = state.stored;
            report.elapsed = started.elapsed();
            progress(&report);
        }
        if n == 0 {
            state.write(&[], Some(0))?;
        }
        0
    } else {
        match decode_into(
            &mut state,
            bytes,
            opts,
            cancel,
            started,
            &mut report,
            progress,
        )? {
            Some(packets) => packets,
            None => return state.cancel(),
        }
    };
    // Fold the WAL into the case now, so the import's cost is paid here, not at close.
    state.store.execute_batch("CHECKPOINT;")?;
    report.bytes_done = report.bytes_total;
    report.elapsed = started.elapsed();
    progress(&report);
    Ok(ImportOutcome::Imported(ImportSummary {
        source_id,
        ids: state.first_id..state.next_id,
        packets,
        transactions: state.stored,
        resumed,
    }))
}

/// The single DuckDB writer of an import; it also feeds the analysis engines.
struct Writer<'s> {
    store: &'s mut CaseStore,
    analyzers: Vec<Box<dyn crate::analysis::Analyzer>>,
    source_id: i64,
    first_id: i64,
    next_id: i64,
    stored: u64,
    batches: u64,
    first_ts: Option<i64>,
    last_ts: Option<i64>,
}

/// For the crash-consistency test: with `TAPLINE_TEST_PAUSE_AFTER_BATCHES=N` the import stops
/// after its N-th committed batch, says so on stderr and waits to be killed (`kill -9`).
fn test_pause_point(batches: u64) {
    let Some(n) = std::env::var("TAPLINE_TEST_PAUSE_AFTER_BATCHES")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    if batches == n {
        eprintln!("tapline-test: paused after {n} batches");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

impl Writer<'_> {
    /// Appends a batch; `done_packets` marks the last batch (and the source complete).
    fn write(&mut self, txs: &[Transaction], done_packets: Option<u64>) -> Result<()> {
        for (i, t) in txs.iter().enumerate() {
            for a in &mut self.analyzers {
                a.observe(self.next_id + i as i64, t);
            }
            let ts = t.request_ts_nanos;
            self.first_ts = Some(self.first_ts.map_or(ts, |f| f.min(ts)));
            self.last_ts = Some(self.last_ts.map_or(ts, |l| l.max(ts)));
        }
        let stored = self.stored + txs.len() as u64;
        let mut derived = Derived::default();
        let done = done_packets.map(|packets| {
            for a in &mut self.analyzers {
                a.finish(&mut derived);
            }
            SourceCounts {
                packets,
                transactions: stored,
                first_ts_ns: self.first_ts,
                last_ts_ns: self.last_ts,
            }
        });
        self.store.append_batch(
            self.source_id,
            self.next_id,
            txs,
            done.map(|c| (c, &derived)),
        )?;
        self.next_id += txs.len() as i64;
        self.stored = stored;
        self.batches += 1;
        test_pause_point(self.batches);
        Ok(())
    }

    fn cancel(self) -> Result<ImportOutcome> {
        self.store.forget_source(self.source_id)?;
        Ok(ImportOutcome::Cancelled)
    }
}

/// Decodes a mapped capture on worker threads into `w`. `None` when cancelled.
fn decode_into(
    w: &mut Writer<'_>,
    bytes: &[u8],
    opts: &ImportOptions,
    cancel: &AtomicBool,
    started: Instant,
    report: &mut ImportProgress,
    progress: &mut dyn FnMut(&ImportProgress),
) -> Result<Option<u64>> {
    let threads = opts.threads.max(1);
    let bytes_done = AtomicU64::new(0);
    let packets_seen = AtomicU64::new(0);
    let (send, recv) = mpsc::sync_channel::<Vec<Transaction>>(threads * 4);
    let batch = opts.batch.max(1);
    std::thread::scope(|s| -> Result<Option<u64>> {
        for shard in 0..threads {
            let send = send.clone();
            let (bytes_done, packets_seen) = (&bytes_done, &packets_seen);
            let cfg = EngineConfig {
                shard: (threads > 1).then_some((shard as u64, threads as u64)),
                http: tapline_core::http::HttpConfig {
                    max_body: opts.max_body,
                    ..Default::default()
                },
                ..EngineConfig::default()
            };
            s.spawn(move || {
                let Ok(mut reader) = CaptureReader::new(bytes) else {
                    return;
                };
                let mut engine = Engine::new(cfg);
                let mut out = Vec::with_capacity(batch);
                let mut n: u64 = 0;
                while let Some(Ok(pkt)) = reader.next() {
                    engine.packet(&pkt, &mut out);
                    n += 1;
                    if n.is_multiple_of(4096) {
                        if cancel.load(Ordering::Relaxed) {
                            return;
                        }
                        if shard == 0 {
                            bytes_done.store(reader.position(), Ordering::Relaxed);
                            packets_seen.store(n, Ordering::Relaxed);
                        }
                    }
                    if out.len() >= batch
                        && send
                            .send(std::mem::replace(&mut out, Vec::with_capacity(batch)))
                            .is_err()
                    {
                        return;
                    }
                }
                engine.finish(&mut out);
                if shard == 0 {
                    packets_seen.store(n, Ordering::Relaxed);
                }
                let _ = send.send(out);
            });
        }
        drop(send);
        // The writer holds the last batch back so the final append can complete the source.
        let mut pending: Option<Vec<Transaction>> = None;
        let mut last_report = Instant::now();
        for txs in recv.iter() {
            if cancel.load(Ordering::Relaxed) {
                return Ok(None);
            }
            if let Some(prev) = pending.replace(txs) {
                w.write(&prev, None)?;
            }
            if last_report.elapsed() >= Duration::from_millis(100) {
                last_report = Instant::now();
                report.bytes_done = bytes_done.load(Ordering::Relaxed);
                report.packets = packets_seen.load(Ordering::Relaxed);
                report.transactions = w.stored;
                report.elapsed = started.elapsed();
                progress(report);
            }
        }
        if cancel.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let packets = packets_seen.load(Ordering::Relaxed);
        w.write(&pending.unwrap_or_default(), Some(packets))?;
        report.packets = packets;
        report.transactions = w.stored;
        Ok(Some(packets))
    })
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
    /// Every file was handled; the case is closed again.
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

/// Imports `files` into the case at `db` on a worker thread, for callers that must not block
/// (the GUI): events arrive on a channel, and `notify` runs after each one (the GUI passes
/// `ctx.request_repaint`).
pub fn spawn_import(
    db: PathBuf,
    files: Vec<PathBuf>,
    opts: ImportOptions,
    notify: impl Fn() + Send + 'static,
) -> ImportHandle {
    let (send, events) = mpsc::channel();
    let cancel = std::sync::Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let thread = std::thread::spawn(move || {
        let emit = |e: ImportEvent| {
            let _ = send.send(e);
            notify();
        };
        match CaseStore::open(&db) {
            Ok(mut store) => {
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
                }
            }
            Err(e) => emit(ImportEvent::FileDone {
                file: db.clone(),
                outcome: Err(format!("cannot open case {}: {e}", db.display())),
            }),
        }
        emit(ImportEvent::Finished);
    });
    ImportHandle {
        events,
        cancel,
        thread,
    }
}
