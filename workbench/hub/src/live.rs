//! Live analysis: what sensors stream is analysed as it is stored, by the engines an import
//! runs (discovery and profiles, sensitive data, payload attacks, behaviour).
//!
//! The store thread hands each committed batch (its ids and records) to the analysis thread
//! through a bounded queue and never waits on it: when the queue is full, only the batch's ids
//! are kept, and the analysis thread reads those records back from the case — so
//! acknowledgements never wait on analysis, nothing stored goes unanalysed, and memory stays
//! bounded by the queue. Every [`FLUSH_EVERY`] (or [`FLUSH_RECORDS`] records) the engines
//! finish against the case's inventory and their results are merged into the case in one
//! transaction: endpoints upserted, findings of an ongoing attack updated rather than
//! repeated ([`tapline_store::CaseStore::merge_live`]).

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tapline_analysis::Analyses;
use tapline_record::Transaction;
use tapline_store::CaseStore;
use tapline_store::query::TxFilter;

/// Batches waiting for analysis at most; beyond, only their ids wait.
const QUEUE_BATCHES: usize = 64;
/// How often results reach the case while records arrive.
pub const FLUSH_EVERY: Duration = Duration::from_secs(2);
/// Records analysed before results are written, however recent the last flush.
const FLUSH_RECORDS: u64 = 200_000;
/// How soon the thread notices the case failed under the hub.
const HEALTH_CHECK: Duration = Duration::from_millis(200);
/// Records read back from the case per query when the queue overflowed.
const READ_BACK_IDS: usize = 10_000;

/// One committed batch: the ids its records got and the records.
struct Stored {
    ids: Range<i64>,
    txs: Vec<Transaction>,
}

/// Whether the hub analyses what it stores as it arrives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LiveAnalysis {
    /// Records are stored only (analysed when the analyst asks).
    #[default]
    Off,
    /// The analysis thread runs beside the store thread.
    On,
}

/// What live analysis has done, for the hub's events and the sensors view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Analysed {
    /// Records analysed since the hub started.
    pub records: u64,
    /// Findings the last flush added.
    pub new_findings: usize,
    /// Findings the last flush updated (an ongoing attack judged again).
    pub updated_findings: usize,
    /// Capture time (ns) of the latest record analysed.
    pub latest_ns: Option<i64>,
}

/// The store thread's side: hands batches on without waiting.
#[derive(Clone)]
pub(crate) struct Feed {
    queue: SyncSender<Stored>,
    /// Ids of batches the full queue could not take, for the analysis thread to read back.
    missed: Arc<Mutex<Vec<Range<i64>>>>,
}

impl Feed {
    /// Hands a committed batch to the analysis thread; never blocks.
    pub fn offer(&self, ids: Range<i64>, txs: Vec<Transaction>) {
        match self.queue.try_send(Stored { ids, txs }) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(s)) => {
                tracing::debug!(ids = ?s.ids, "analysis behind: the batch will be read back");
                if let Ok(mut missed) = self.missed.lock() {
                    push_range(&mut missed, s.ids);
                }
            }
        }
    }
}

/// Adds `r` to `ranges`, joining it to the last one when they touch (a burst of overflows
/// stays one range).
fn push_range(ranges: &mut Vec<Range<i64>>, r: Range<i64>) {
    match ranges.last_mut() {
        Some(last) if last.end == r.start => last.end = r.end,
        _ => ranges.push(r),
    }
}

/// Gives the analysis thread a connection to the case (again after the case failed and was
/// reopened under the hub).
pub(crate) type Connect = Box<dyn Fn() -> anyhow::Result<CaseStore> + Send>;

/// Starts the analysis thread; `on_flush` hears what each flush wrote. The thread ends, after
/// a last flush, when every [`Feed`] is dropped.
pub(crate) fn start(
    connect: Connect,
    case_failed: Arc<AtomicBool>,
    on_flush: impl Fn(Analysed) + Send + 'static,
) -> std::io::Result<(Feed, std::thread::JoinHandle<()>)> {
    let (queue, rx) = std::sync::mpsc::sync_channel(QUEUE_BATCHES);
    let missed = Arc::new(Mutex::new(Vec::new()));
    let feed = Feed {
        queue,
        missed: Arc::clone(&missed),
    };
    let thread = std::thread::Builder::new()
        .name("hub-analysis".into())
        .spawn(move || {
            Live {
                connect,
                case_failed,
                case: None,
                engines: Analyses::default(),
                pending: 0,
                window: Vec::new(),
                since: Instant::now(),
                done: Analysed::default(),
            }
            .run(&rx, &missed, &on_flush)
        })?;
    Ok((feed, thread))
}

struct Live {
    connect: Connect,
    /// Set while the case has failed under the hub: this thread lets go of its connection,
    /// which would otherwise keep the failed database open and its reopening impossible.
    case_failed: Arc<AtomicBool>,
    /// Dropped after a failure, so the next use connects afresh.
    case: Option<CaseStore>,
    engines: Analyses,
    /// Records observed since the last flush, and their ids (read back again if the flush
    /// fails to write).
    pending: u64,
    window: Vec<Range<i64>>,
    since: Instant,
    done: Analysed,
}

impl Live {
    fn run(
        mut self,
        rx: &Receiver<Stored>,
        missed: &Mutex<Vec<Range<i64>>>,
        on_flush: &dyn Fn(Analysed),
    ) {
        // Connected now, while the store thread serves: the last flush runs after it ended.
        if let Err(e) = self.case() {
            tracing::error!("live analysis has no connection to the case yet: {e:#}");
        }
        loop {
            if self.case_failed.load(Ordering::Acquire) {
                self.case = None;
            }
            let wait = FLUSH_EVERY
                .saturating_sub(self.since.elapsed())
                .min(HEALTH_CHECK);
            let open = match rx.recv_timeout(wait) {
                Ok(batch) => {
                    self.observe(batch.ids, &batch.txs);
                    true
                }
                Err(RecvTimeoutError::Timeout) => true,
                Err(RecvTimeoutError::Disconnected) => false,
            };
            // Batches the full queue dropped, and those of a flush that failed to write.
            let behind = missed.lock().map(|mut m| std::mem::take(&mut *m));
            for ids in behind.unwrap_or_default() {
                self.read_back(ids);
            }
            if self.case_failed.load(Ordering::Acquire) {
                self.case = None;
                if open {
                    continue; // results wait in the engines until the case is back
                }
            }
            let due = self.since.elapsed() >= FLUSH_EVERY || self.pending >= FLUSH_RECORDS;
            if self.pending > 0 && (due || !open) {
                self.flush(missed, on_flush);
            } else if due {
                self.since = Instant::now();
            }
            if !open {
                return;
            }
        }
    }

    fn observe(&mut self, ids: Range<i64>, txs: &[Transaction]) {
        push_range(&mut self.window, ids.clone());
        for (id, tx) in ids.zip(txs) {
            self.engines.observe(id, tx);
            self.done.latest_ns = Some(
                self.done
                    .latest_ns
                    .map_or(tx.request_ts_nanos, |l| l.max(tx.request_ts_nanos)),
            );
        }
        let n = txs.len() as u64;
        self.pending += n;
        self.done.records += n;
    }

    fn case(&mut self) -> anyhow::Result<&mut CaseStore> {
        if self.case_failed.load(Ordering::Acquire) {
            anyhow::bail!("the case has failed under the hub");
        }
        if self.case.is_none() {
            self.case = Some((self.connect)()?);
        }
        self.case
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("no connection to the case"))
    }

    /// Reads records the full queue dropped back from the case, in chunks.
    fn read_back(&mut self, ids: Range<i64>) {
        let all: Vec<i64> = ids.collect();
        for chunk in all.chunks(READ_BACK_IDS) {
            let filter = TxFilter {
                ids: Some(chunk.to_vec()),
                ..TxFilter::default()
            };
            let mut batch: Vec<(i64, Transaction)> = Vec::with_capacity(chunk.len());
            let read = self.case().and_then(|case| {
                Ok(case.for_each_transaction(&filter, |id, tx| {
                    batch.push((id, tx));
                    Ok(())
                })?)
            });
            if let Err(e) = read {
                tracing::error!(
                    "live analysis cannot read records {}..={} back: {e:#}",
                    chunk[0],
                    chunk[chunk.len() - 1]
                );
                self.case = None;
                continue;
            }
            for (id, tx) in batch {
                self.observe(id..id + 1, std::slice::from_ref(&tx));
            }
        }
    }

    /// Finishes the engines against the case's inventory and merges the results into it.
    fn flush(&mut self, missed: &Mutex<Vec<Range<i64>>>, on_flush: &dyn Fn(Analysed)) {
        let engines = std::mem::take(&mut self.engines);
        let window = std::mem::take(&mut self.window);
        self.pending = 0;
        self.since = Instant::now();
        let written = self.case().and_then(|case| {
            let derived = engines.finish(&case.endpoints()?)?;
            Ok(case.merge_live(&derived)?)
        });
        match written {
            Ok((new, updated)) => {
                self.done.new_findings = new;
                self.done.updated_findings = updated;
                tracing::debug!(
                    records = self.done.records,
                    new,
                    updated,
                    "live analysis flushed"
                );
                on_flush(self.done);
            }
            Err(e) => {
                // The records are stored; analyse them again at the next flush, on a fresh
                // connection (the case may have been reopened under the hub).
                tracing::error!("live analysis could not write its results (retried): {e:#}");
                self.case = None;
                if let Ok(mut m) = missed.lock() {
                    m.extend(window);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflowed_batches_are_kept_as_joined_ranges() {
        let mut r = Vec::new();
        push_range(&mut r, 1..5);
        push_range(&mut r, 5..9);
        push_range(&mut r, 20..21);
        assert_eq!(r, vec![1..9, 20..21]);
    }
}
