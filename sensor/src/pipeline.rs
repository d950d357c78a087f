//! Frames → records across threads: the capture thread hands frames to worker threads sharded
//! by flow hash (both directions of a connection meet on one worker's engine), each worker
//! decodes and applies the edge policy (header lists, body caps, redaction), and one sink
//! thread batches the records into the spool and prints them.
//!
//! Every channel is bounded. When workers fall behind, the capture thread waits, the kernel's
//! ring buffer fills and the kernel drops — counted by pcap and reported — instead of the
//! sensor's memory growing.

use crate::counters::Counters;
use crate::sink::RecordSink;
use crate::source::FrameSink;
use anyhow::{Context, Result, anyhow};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tapline_decode::capture::LinkType;
use tapline_decode::engine::{FrameShard, frame_shard};
use tapline_decode::{Engine, EngineConfig, EngineStats};
use tapline_detect::edge::EdgePolicy;
use tapline_detect::sensitive::{Redactor, Scanner};
use tapline_record::Transaction;

/// Frames per chunk handed to a worker (amortises the channel).
const CHUNK_FRAMES: usize = 512;
/// Bytes per chunk at most.
const CHUNK_BYTES: usize = 1 << 20;
/// Chunks waiting per worker at most.
const WORKER_QUEUE: usize = 16;
/// A live chunk is handed over at least this soon after its first frame.
const CHUNK_MAX_AGE: Duration = Duration::from_millis(20);

/// Frames for one worker, packed in one buffer.
#[derive(Default)]
struct Chunk {
    data: Vec<u8>,
    /// (time, link, end offset in `data`).
    frames: Vec<(i64, LinkType, u32)>,
    started: Option<Instant>,
}

/// What each worker is given.
pub struct WorkerSetup {
    /// Engine settings (the shard is set per worker).
    pub engine: EngineConfig,
    /// Header lists and body caps.
    pub edge: EdgePolicy,
    /// Redaction (each worker has its own copy and scanner).
    pub redactor: Redactor,
}

/// What the pipeline did, once it has drained.
#[derive(Debug, Default)]
pub struct Report {
    /// Connections the workers' engines tracked, summed.
    pub connections: u64,
}

/// The running pipeline; feed it frames, then [`Pipeline::finish`].
pub struct Pipeline {
    senders: Vec<SyncSender<Chunk>>,
    chunks: Vec<Chunk>,
    workers: Vec<JoinHandle<Result<EngineStats>>>,
    sink: JoinHandle<Result<()>>,
    live: bool,
}

impl Pipeline {
    /// Starts `workers` worker threads and the sink thread. `live`: hand chunks over within
    /// [`CHUNK_MAX_AGE`] (replays fill them for throughput).
    pub fn start(
        workers: usize,
        setup: &WorkerSetup,
        sink: RecordSink,
        counters: Arc<Counters>,
        live: bool,
    ) -> Result<Pipeline> {
        let n = workers.max(1);
        let (out_tx, out_rx) = sync_channel::<Vec<Transaction>>(n * 4);
        let mut senders = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = sync_channel::<Chunk>(WORKER_QUEUE);
            let mut cfg = setup.engine.clone();
            cfg.shard = (n > 1).then_some((i as u64, n as u64));
            // One flow budget for the sensor, however many workers share it.
            cfg.flows = cfg.flows.shared_by(n);
            let edge = setup.edge.clone();
            let redactor = setup.redactor.clone();
            let out = out_tx.clone();
            let counters = Arc::clone(&counters);
            let h = std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || {
                    let _span = tracing::debug_span!("worker", i).entered();
                    work(rx, Engine::new(cfg), &edge, &redactor, &out, &counters)
                })
                .context("cannot start a worker thread")?;
            senders.push(tx);
            handles.push(h);
        }
        drop(out_tx);
        let sink = std::thread::Builder::new()
            .name("sink".into())
            .spawn(move || drain(out_rx, sink))
            .context("cannot start the sink thread")?;
        Ok(Pipeline {
            chunks: (0..n).map(|_| Chunk::default()).collect(),
            senders,
            workers: handles,
            sink,
            live,
        })
    }

    fn send(&mut self, i: usize) -> Result<()> {
        let chunk = std::mem::take(&mut self.chunks[i]);
        if chunk.frames.is_empty() {
            return Ok(());
        }
        self.senders[i]
            .send(chunk)
            .map_err(|_| anyhow!("worker {i} stopped"))
    }

    fn push(&mut self, i: usize, ts: i64, link: LinkType, data: &[u8]) -> Result<()> {
        let c = &mut self.chunks[i];
        if c.frames.is_empty() && self.live {
            c.started = Some(Instant::now());
        }
        c.data.extend_from_slice(data);
        c.frames.push((ts, link, c.data.len() as u32));
        if c.frames.len() >= CHUNK_FRAMES
            || c.data.len() >= CHUNK_BYTES
            || c.started.is_some_and(|t| t.elapsed() >= CHUNK_MAX_AGE)
        {
            self.send(i)?;
        }
        Ok(())
    }

    /// Drains: every frame decoded, every connection closed, every record in the spool.
    pub fn finish(mut self) -> Result<Report> {
        for i in 0..self.chunks.len() {
            self.send(i)?;
        }
        drop(std::mem::take(&mut self.senders));
        let mut report = Report::default();
        let mut first_err = None;
        for h in self.workers {
            match h.join() {
                Ok(Ok(s)) => report.connections += s.flows.created,
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(anyhow!("a worker thread panicked"));
                }
            }
        }
        match self.sink.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(_) => {
                first_err.get_or_insert(anyhow!("the sink thread panicked"));
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }
}

impl FrameSink for Pipeline {
    fn frame(&mut self, ts_nanos: i64, link: LinkType, data: &[u8]) -> Result<()> {
        let n = self.chunks.len();
        if n == 1 {
            return self.push(0, ts_nanos, link, data);
        }
        match frame_shard(link, data, n as u64) {
            FrameShard::One(i) => self.push(i as usize, ts_nanos, link, data),
            FrameShard::All => (0..n).try_for_each(|i| self.push(i, ts_nanos, link, data)),
        }
    }

    fn idle(&mut self) -> Result<()> {
        (0..self.chunks.len()).try_for_each(|i| self.send(i))
    }
}

/// One worker: decodes its shard, applies the edge policy, passes records on.
fn work(
    rx: Receiver<Chunk>,
    mut engine: Engine,
    edge: &EdgePolicy,
    redactor: &Redactor,
    out: &SyncSender<Vec<Transaction>>,
    counters: &Counters,
) -> Result<EngineStats> {
    let mut scanner = Scanner::default();
    let mut txs = Vec::new();
    let mut pass = |txs: &mut Vec<Transaction>| -> Result<()> {
        if txs.is_empty() {
            return Ok(());
        }
        let mut redacted = 0u64;
        for tx in txs.iter_mut() {
            if !edge.is_empty() {
                edge.apply(tx);
            }
            if !redactor.is_empty() {
                redacted += redactor.apply(tx, &mut scanner) as u64;
            }
        }
        counters
            .records
            .fetch_add(txs.len() as u64, Ordering::Relaxed);
        counters.redacted.fetch_add(redacted, Ordering::Relaxed);
        out.send(std::mem::take(txs))
            .map_err(|_| anyhow!("the sink stopped"))
    };
    while let Ok(chunk) = rx.recv() {
        let mut start = 0usize;
        for &(ts, link, end) in &chunk.frames {
            let end = end as usize;
            engine.frame(ts, link, &chunk.data[start..end], &mut txs);
            start = end;
        }
        pass(&mut txs)?;
    }
    engine.finish(&mut txs);
    pass(&mut txs)?;
    Ok(engine.stats())
}

/// The sink thread: records in, batches out, closing batches on time even when idle.
fn drain(rx: Receiver<Vec<Transaction>>, mut sink: RecordSink) -> Result<()> {
    loop {
        let wait = sink.due_in().unwrap_or(Duration::from_secs(3600));
        match rx.recv_timeout(wait) {
            Ok(txs) => sink.emit(txs)?,
            Err(RecvTimeoutError::Timeout) => sink.tick()?,
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    sink.flush()
}
