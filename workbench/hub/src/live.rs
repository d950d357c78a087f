//! Live analysis: what sensors stream is analysed as it is stored, by the engines an import
//! runs (discovery and profiles, sensitive data, payload attacks, behaviour).
//!
//! The store thread hands each committed batch (its ids and records) to the analysis thread
//! through a bounded queue and never waits on it: when the queue is full the batch is dropped
//! and a flag raised, and the analysis thread reads every sensor record it has not analysed
//! back from the case — so acknowledgements never wait on analysis, nothing stored goes
//! unanalysed, memory stays bounded by the queue, and records are analysed in id order.
//!
//! Every [`FLUSH_EVERY`] (or as the hub is told; or [`FLUSH_RECORDS`] records; or once the
//! stream is [`QUIET`]) the engines finish against the case's inventory and one transaction,
//! on a thread of its own while batches go on being dealt, writes their results, the behaviour
//! events new since the last flush and how far analysis got
//! ([`tapline_store::CaseStore::commit_live`]). Behaviour
//! is judged over a stream kept across flushes (time windows span batches, flushes and hub
//! restarts), bounded by a horizon behind the watermark of record time; its findings replace
//! their counts in the case, so judging again never double-counts. A hub that stops — even
//! killed — restores the stream from the case and re-reads what it stored but had not
//! analysed; a flush that fails to write does the same.

mod pool;

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tapline_analysis::behaviour::{Behaviour, HORIZON_NS};
use tapline_analysis::{Analyses, Judge};
use tapline_record::Transaction;
use tapline_store::CaseStore;
use tapline_store::live::{LiveProgress, StreamSave};
use tapline_store::query::TxFilter;

/// Batches waiting for analysis at most; beyond, they are read back from the case. Storing
/// into live segments outruns analysis by half again on two cores, and reading back costs the
/// dealing thread ~8 µs a record: at 64 a 600k-record burst read 80–116k back, at 128 none
/// (`link_bench`). Memory: up to twice this many batches (the queue and those held while
/// catching up) — 512k records in sensors' default batches of 2,000.
const QUEUE_BATCHES: usize = 128;
/// How often results reach the case while records arrive, unless the hub says otherwise.
pub const FLUSH_EVERY: Duration = Duration::from_secs(2);
/// Records analysed before results are written, however recent the last flush.
const FLUSH_RECORDS: u64 = 200_000;
/// How soon the thread notices the case failed under the hub.
const HEALTH_CHECK: Duration = Duration::from_millis(200);
/// The shortest wait for a batch while nothing is read back from the case.
const LEAST_WAIT: Duration = Duration::from_millis(1);
/// Records read back from the case per query.
const READ_BACK: i64 = 10_000;
/// Record times further than this ahead of the hub's clock come from a skewed sensor clock:
/// flagged, and kept from moving the watermark.
const MAX_SKEW_NS: i64 = 5 * 60 * 1_000_000_000;
/// Judging the stream runs at most this share of the time (long streams cost more to judge).
const JUDGE_SHARE: u32 = 4;
/// A stream is quiet once everything stored is observed and nothing came for this long: what
/// a burst left is written then, not up to a whole interval later.
const QUIET: Duration = Duration::from_millis(20);
/// Writes for a quiet stream come at most this often (a stream that pauses between every
/// batch would otherwise write after each).
const QUIET_GAP: Duration = Duration::from_millis(500);

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
    /// The analysis thread runs beside the store thread, writing results this often.
    On {
        /// Flush interval ([`FLUSH_EVERY`] unless the operator chose).
        every: Duration,
    },
}

impl LiveAnalysis {
    /// On, writing results every [`FLUSH_EVERY`].
    pub const ON: LiveAnalysis = LiveAnalysis::On { every: FLUSH_EVERY };
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
    /// Records whose time was ahead of the hub's clock by more than the allowed skew.
    pub skewed: u64,
    /// Records that arrived already behind the stream's horizon (judged once, then forgotten).
    pub late: u64,
    /// Records stored but not yet analysed (analysis is behind by this many).
    pub waiting: u64,
    /// Records read back from the case since the hub started: those analysis was too far
    /// behind to take from the store thread's queue, and those of a restart's backlog.
    pub read_back: u64,
}

/// The store thread's side: hands batches on without waiting.
#[derive(Clone)]
pub(crate) struct Feed {
    queue: SyncSender<Stored>,
    /// Raised when the full queue dropped a batch: the analysis thread reads back from the case.
    dropped: Arc<AtomicBool>,
    /// Every sensor record stored has an id below this.
    stored_below: Arc<AtomicI64>,
    /// Live analysis has written its results for every sensor record below this id.
    written_below: Arc<AtomicI64>,
}

impl Feed {
    /// Whether analysis has written its results for every record stored so far: the store
    /// thread leaves its housekeeping (folding segments) until then, not to take the cores
    /// (and the case) analysis needs.
    pub fn caught_up(&self) -> bool {
        self.written_below.load(Ordering::Acquire) >= self.stored_below.load(Ordering::Acquire)
    }

    /// Hands a committed batch to the analysis thread; never blocks.
    pub fn offer(&self, ids: Range<i64>, txs: Vec<Transaction>) {
        self.stored_below.fetch_max(ids.end, Ordering::AcqRel);
        match self.queue.try_send(Stored { ids, txs }) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(s)) => {
                tracing::debug!(ids = ?s.ids, "analysis behind: the batch will be read back");
                self.dropped.store(true, Ordering::Release);
            }
        }
    }
}

/// Gives the analysis thread a connection to the case (again after the case failed and was
/// reopened under the hub).
pub(crate) type Connect = Box<dyn Fn() -> anyhow::Result<CaseStore> + Send>;

/// The running analysis thread.
pub(crate) struct Thread {
    handle: std::thread::JoinHandle<()>,
    stopping: Arc<AtomicBool>,
}

impl Thread {
    /// Asks the thread to write what it has analysed and end, without reading further; waits.
    pub fn stop(self) {
        self.stopping.store(true, Ordering::Release);
        if self.handle.join().is_err() {
            tracing::error!("the hub's analysis thread panicked");
        }
    }
}

/// Starts the analysis thread; `on_flush` hears what each flush wrote. The thread ends, after
/// a last flush, when it is stopped or every [`Feed`] is dropped.
pub(crate) fn start(
    connect: Connect,
    case_failed: Arc<AtomicBool>,
    every: Duration,
    on_flush: impl Fn(Analysed) + Send + 'static,
) -> std::io::Result<(Feed, Thread)> {
    let (queue, rx) = std::sync::mpsc::sync_channel(QUEUE_BATCHES);
    let stopping = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&stopping);
    let dropped = Arc::new(AtomicBool::new(false));
    let stored_below = Arc::new(AtomicI64::new(0));
    let written_below = Arc::new(AtomicI64::new(0));
    let feed = Feed {
        queue,
        dropped: Arc::clone(&dropped),
        stored_below: Arc::clone(&stored_below),
        written_below: Arc::clone(&written_below),
    };
    let thread = std::thread::Builder::new()
        .name("hub-analysis".into())
        .spawn(move || {
            match Live::new(connect, case_failed, stored_below, written_below, every) {
                Ok(mut live) => live.run(&rx, &dropped, &stop, &on_flush),
                Err(e) => tracing::error!("live analysis cannot start its workers: {e}"),
            }
        })?;
    Ok((
        feed,
        Thread {
            handle: thread,
            stopping,
        },
    ))
}

struct Live {
    connect: Connect,
    /// Set while the case has failed under the hub: this thread lets go of its connection,
    /// which would otherwise keep the failed database open and its reopening impossible.
    case_failed: Arc<AtomicBool>,
    /// Dropped after a failure, so the next use connects afresh.
    case: Option<CaseStore>,
    /// Every sensor record stored has an id below this (the feed's, and the backlog's end).
    stored_below: Arc<AtomicI64>,
    /// [`Live::next`] as of the last write that succeeded, for the feed.
    written_below: Arc<AtomicI64>,
    /// Flush interval.
    every: Duration,
    /// This flush's engines, on threads of their own.
    engines: pool::Pool,
    /// Behaviour events kept across flushes.
    stream: Behaviour,
    /// Every sensor record below this id has been observed.
    next: i64,
    /// Latest record time seen from a clock not ahead of the hub's.
    watermark: i64,
    /// Memory no longer matches the case (start, or a flush that failed): restore the stream
    /// from the case and re-read what it has not analysed.
    resync: bool,
    /// Sensor records stored but not yet analysed, to read from the case in id order.
    backlog: std::collections::VecDeque<Range<i64>>,
    /// The queue dropped batches (or memory was rebuilt): list the backlog again once it is
    /// read, until nothing is left; until then the queue's batches are held, not taken.
    behind: bool,
    /// Batches from the queue while catching up (at most [`QUEUE_BATCHES`]), in id order:
    /// taken instead of read back once the backlog reaches them, so one stall does not send
    /// everything stored after it through the case.
    held: std::collections::VecDeque<Stored>,
    /// Records observed since the last flush.
    pending: u64,
    /// Nothing came at the last look, and everything stored was observed.
    quiet: bool,
    /// The stream changed since it was last judged.
    unjudged: bool,
    since: Instant,
    judged_at: Instant,
    judge_cost: Duration,
    done: Analysed,
}

/// Whether the queue can still deliver batches.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Queue {
    Open,
    Closed,
}

impl Live {
    fn new(
        connect: Connect,
        case_failed: Arc<AtomicBool>,
        stored_below: Arc<AtomicI64>,
        written_below: Arc<AtomicI64>,
        every: Duration,
    ) -> std::io::Result<Live> {
        Ok(Live {
            connect,
            case_failed,
            case: None,
            stored_below,
            written_below,
            every,
            engines: pool::Pool::per_core()?,
            stream: Behaviour::default(),
            next: 0,
            watermark: i64::MIN,
            resync: true,
            backlog: Default::default(),
            held: Default::default(),
            behind: false,
            pending: 0,
            quiet: false,
            unjudged: false,
            since: Instant::now(),
            judged_at: Instant::now(),
            judge_cost: Duration::ZERO,
            done: Analysed::default(),
        })
    }

    fn run(
        &mut self,
        rx: &Receiver<Stored>,
        dropped: &AtomicBool,
        stopping: &AtomicBool,
        on_flush: &dyn Fn(Analysed),
    ) {
        // Connected now, while the store thread serves: the last flush runs after it ended.
        if let Err(e) = self.case() {
            tracing::error!("live analysis has no connection to the case yet: {e:#}");
        }
        let inbox = Inbox {
            rx,
            dropped,
            stopping,
        };
        loop {
            if self.case_failed.load(Ordering::Acquire) {
                self.case = None;
            } else if self.resync {
                self.resync();
            } else if self.backlog.is_empty() && self.behind {
                self.list_backlog();
            }
            let wait = if self.catching_up() && self.case.is_some() {
                Duration::ZERO
            } else {
                self.patience()
            };
            let queue = if self.receive_one(&inbox, wait) {
                Queue::Open
            } else {
                Queue::Closed
            };
            if self.case_failed.load(Ordering::Acquire) {
                self.case = None;
                if queue == Queue::Open {
                    continue; // results wait in the engines until the case is back
                }
            }
            // Stopping leaves the backlog to the next start (the case knows where it was).
            if queue == Queue::Open && !self.resync {
                self.read_backlog();
            }
            let last = queue == Queue::Closed && (self.pending > 0 || self.unjudged);
            if !self.resync && (self.due() || last) {
                self.flush(&inbox, queue, on_flush);
            }
            if queue == Queue::Closed {
                return;
            }
        }
    }

    /// How long to wait for a batch before something falls due: results to write, the
    /// stream to judge, the case's health to look at. Never zero: a quiet hub (nothing
    /// pending, or the case failed under it) must sleep, not spin.
    fn patience(&self) -> Duration {
        let mut wait = HEALTH_CHECK;
        if self.pending > 0 {
            wait = wait.min(self.every.saturating_sub(self.since.elapsed()));
            if self.observed_all_stored() {
                wait = wait.min(QUIET);
            }
        }
        if self.unjudged {
            let judge_in = self.every.max(self.judge_cost * JUDGE_SHARE);
            wait = wait.min(judge_in.saturating_sub(self.judged_at.elapsed()));
        }
        wait.max(LEAST_WAIT)
    }

    /// Whether results should be written now.
    fn due(&self) -> bool {
        let interval = self.since.elapsed() >= self.every;
        (self.pending > 0 && (interval || (self.quiet && self.since.elapsed() >= QUIET_GAP)))
            || self.pending >= FLUSH_RECORDS
            || (self.unjudged && self.judge_due())
    }

    /// Judging the whole stream takes at most a share of the time.
    fn judge_due(&self) -> bool {
        self.judged_at.elapsed() >= self.every.max(self.judge_cost * JUDGE_SHARE)
    }

    /// A batch from the queue: what of it was not read back already.
    fn take(&mut self, batch: Stored) {
        if batch.ids.end <= self.next {
            return;
        }
        let skip = (self.next - batch.ids.start).max(0) as usize;
        let now = now_ns();
        for (id, tx) in batch.ids.clone().zip(&batch.txs).skip(skip) {
            self.note(id, tx, now);
        }
        if let Err(e) = self.engines.batch(batch.ids, batch.txs, skip) {
            self.lost(e);
        }
    }

    /// A worker is gone with what it observed: memory is rebuilt from the case.
    fn lost(&mut self, e: pool::WorkerLost) {
        tracing::error!("{e}: live analysis restarts its workers and reads the records again");
        match pool::Pool::per_core() {
            Ok(p) => self.engines = p,
            Err(e) => tracing::error!("live analysis cannot start its workers: {e}"),
        }
        self.resync = true;
    }

    /// Keeps the stream's account of a record the workers observe: position, counts, time
    /// (`now`, the hub's clock when its batch came, tells a skewed sensor clock).
    fn note(&mut self, id: i64, tx: &Transaction, now: i64) {
        self.next = self.next.max(id + 1);
        self.pending += 1;
        self.done.records += 1;
        let ts = tx.request_ts_nanos;
        self.done.latest_ns = Some(self.done.latest_ns.map_or(ts, |l| l.max(ts)));
        if ts > now.saturating_add(MAX_SKEW_NS) {
            if self.done.skewed == 0 {
                tracing::warn!(
                    sensor = tx.sensor_id.as_deref().unwrap_or("?"),
                    record = id,
                    "record time is ahead of this machine's clock: the sensor's clock is skewed (its records are judged but do not move the stream's watermark)"
                );
            }
            self.done.skewed += 1;
        } else {
            if ts < self.watermark.saturating_sub(HORIZON_NS) {
                self.done.late += 1;
            }
            self.watermark = self.watermark.max(ts);
        }
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

    /// Rebuilds memory from the case: the saved stream, then (through the backlog) every
    /// sensor record stored after the saved position.
    fn resync(&mut self) {
        let state = match self.case().and_then(|c| Ok(c.live_state()?)) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(
                    "live analysis cannot read its state from the case (retried): {e:#}"
                );
                self.case = None;
                return;
            }
        };
        self.stream = Behaviour::restore(&state.events, &state.creations);
        self.watermark = state
            .events
            .iter()
            .map(|e| e.ts_ns)
            .max()
            .unwrap_or(i64::MIN);
        // What the workers hold is either written already or read again from the case.
        if let Err(e) = self.engines.gather() {
            self.lost(e);
            return;
        }
        self.next = state.analysed_below;
        self.pending = 0;
        self.backlog.clear();
        self.held.clear();
        self.behind = true;
        self.resync = false;
    }

    /// Lists the sensor records stored from `next` on: what to read back before the queue's
    /// batches are taken again. Listed again once read, until nothing is left.
    fn list_backlog(&mut self) {
        let from = self.next;
        match self
            .case()
            .and_then(|c| Ok(c.unanalysed_sensor_records(from)?))
        {
            Ok(ranges) => {
                if let Some(last) = ranges.last() {
                    self.stored_below.fetch_max(last.end, Ordering::AcqRel);
                }
                self.behind = !ranges.is_empty();
                self.backlog = ranges.into();
                if !self.behind {
                    // Nothing unanalysed from `next` on: whatever is held was taken.
                    self.held.clear();
                }
            }
            Err(e) => {
                tracing::error!("live analysis cannot list unanalysed records: {e:#}");
                self.case = None;
            }
        }
    }

    /// Takes the held batches the backlog has reached, else reads its next chunk from the
    /// case, up to the first held batch.
    fn read_backlog(&mut self) {
        if self.take_held() {
            return;
        }
        let Some(range) = self.backlog.pop_front() else {
            return;
        };
        let start = range.start.max(self.next);
        if start >= range.end {
            return;
        }
        let held_from = self.held.front().map_or(i64::MAX, |b| b.ids.start);
        let end = (start + READ_BACK)
            .min(range.end)
            .min(held_from.max(start + 1));
        if end < range.end {
            self.backlog.push_front(end..range.end);
        }
        if let Err(e) = self.read_chunk(start..end) {
            tracing::error!("live analysis cannot read records {start}..{end} back: {e:#}");
            self.resync = true;
            self.case = None;
        }
    }

    /// Takes the held batches the reading has reached: starting at or below `next`, or below
    /// the backlog's next range (ids between are not sensor records). Ids run in order, so
    /// what is observed already is skipped. Whether any was taken.
    fn take_held(&mut self) -> bool {
        let mut took = false;
        loop {
            let reached = self
                .backlog
                .front()
                .map_or(self.next, |r| r.start.max(self.next));
            if self.held.front().is_none_or(|b| b.ids.start > reached) {
                break;
            }
            if let Some(b) = self.held.pop_front() {
                self.take(b);
                took = true;
            }
        }
        took
    }

    fn read_chunk(&mut self, ids: Range<i64>) -> anyhow::Result<()> {
        let filter = TxFilter {
            id_range: Some(ids),
            ..TxFilter::default()
        };
        let mut batch: Vec<(i64, Transaction)> = Vec::new();
        self.case()?.for_each_transaction(&filter, |id, tx| {
            batch.push((id, tx));
            Ok(())
        })?;
        let now = now_ns();
        for (id, tx) in &batch {
            self.note(*id, tx, now);
        }
        self.done.read_back += batch.len() as u64;
        if let Err(e) = self.engines.rows(batch) {
            self.lost(e);
        }
        Ok(())
    }

    /// Finishes the engines against the case's inventory and writes the results, the new
    /// behaviour events and the position in one transaction — on a thread of its own, while
    /// this one goes on dealing batches to the workers (a write takes 0.1–0.3 s; the workers
    /// would stand idle through it).
    fn flush(&mut self, inbox: &Inbox<'_>, queue: Queue, on_flush: &dyn Fn(Analysed)) {
        let judge = if queue == Queue::Closed || self.judge_due() {
            Judge::Now
        } else {
            Judge::Later
        };
        let engines = match self.engines.gather() {
            Ok(e) => e,
            Err(e) => return self.lost(e),
        };
        let had_events = self.pending > 0;
        self.pending = 0;
        self.since = Instant::now();
        let at = Position {
            analysed_below: self.next,
            watermark: self.watermark,
        };
        match self.write_beside(engines, judge, at, inbox, queue) {
            Ok(written) => {
                self.written_below
                    .store(at.analysed_below, Ordering::Release);
                let stored_below = self.stored_below.load(Ordering::Acquire);
                self.done.waiting = u64::try_from(stored_below - self.next).unwrap_or(0);
                self.done.new_findings = written.new;
                self.done.updated_findings = written.updated;
                if let Some(cost) = written.judge_cost {
                    self.judge_cost = cost;
                    self.judged_at = Instant::now();
                }
                self.unjudged = judge == Judge::Later && (had_events || self.unjudged);
                tracing::debug!(
                    records = self.done.records,
                    new = written.new,
                    updated = written.updated,
                    judged = judge == Judge::Now,
                    took = ?self.since.elapsed(),
                    "live analysis flushed"
                );
                on_flush(self.done);
            }
            Err(e) => {
                // The records are stored; memory is rebuilt from the case and they are read
                // again (the case may have been reopened under the hub).
                tracing::error!("live analysis could not write its results (retried): {e:#}");
                self.case = None;
                self.resync = true;
            }
        }
    }

    /// Writes on a `hub-flush` thread, which owns the connection and the stream meanwhile;
    /// this thread takes only what the queue brings (reading the case back waits for the
    /// write).
    fn write_beside(
        &mut self,
        engines: Analyses,
        judge: Judge,
        at: Position,
        inbox: &Inbox<'_>,
        queue: Queue,
    ) -> anyhow::Result<Written> {
        self.case()?;
        let mut case = self
            .case
            .take()
            .ok_or_else(|| anyhow::anyhow!("no connection to the case"))?;
        let mut stream = std::mem::take(&mut self.stream);
        let joined = std::thread::scope(|scope| {
            let writer = std::thread::Builder::new()
                .name("hub-flush".into())
                .spawn_scoped(scope, move || {
                    let written = write(&mut case, &mut stream, engines, judge, at);
                    (written, case, stream)
                })?;
            while queue == Queue::Open && !writer.is_finished() {
                if !self.receive_one(inbox, WHILE_WRITING) {
                    break;
                }
            }
            writer
                .join()
                .map_err(|_| anyhow::anyhow!("the thread writing live analysis panicked"))
        });
        let (written, case, stream) = joined?;
        self.case = Some(case);
        self.stream = stream;
        written
    }

    /// Waits up to `wait` for a batch from the queue and takes (or holds) it; false once the
    /// queue is closed or the thread is asked to stop.
    fn receive_one(&mut self, inbox: &Inbox<'_>, wait: Duration) -> bool {
        if inbox.stopping.load(Ordering::Acquire) {
            return false;
        }
        let open = match inbox.rx.recv_timeout(wait) {
            Ok(batch) => {
                self.quiet = false;
                self.receive(batch);
                true
            }
            Err(RecvTimeoutError::Timeout) => {
                self.quiet = self.observed_all_stored();
                true
            }
            Err(RecvTimeoutError::Disconnected) => false,
        };
        if inbox.dropped.swap(false, Ordering::AcqRel) {
            self.behind = true;
        }
        open
    }

    /// A batch from the queue: taken now, unless analysis is catching up — the case is then
    /// read in id order, and the batch is held until the reading reaches it.
    fn receive(&mut self, batch: Stored) {
        if !self.catching_up() {
            self.take(batch);
        } else if self.held.len() < QUEUE_BATCHES {
            self.held.push_back(batch);
        }
    }

    /// Every batch the store thread offered has been taken.
    fn observed_all_stored(&self) -> bool {
        self.next >= self.stored_below.load(Ordering::Acquire)
    }

    fn catching_up(&self) -> bool {
        !self.backlog.is_empty() || self.behind || self.resync
    }
}

/// The queue and the flags that come with it.
struct Inbox<'a> {
    rx: &'a Receiver<Stored>,
    /// Raised when the full queue dropped a batch.
    dropped: &'a AtomicBool,
    stopping: &'a AtomicBool,
}

/// How long the dealing thread waits for a batch while a write runs, before it looks whether
/// the write is done.
const WHILE_WRITING: Duration = Duration::from_millis(2);

/// How far a flush's results reach.
#[derive(Clone, Copy)]
struct Position {
    /// Every sensor record below this id is in the engines written.
    analysed_below: i64,
    /// The stream's watermark as those records left it.
    watermark: i64,
}

/// What a write did.
struct Written {
    new: usize,
    updated: usize,
    /// How long judging the stream took, when it was judged.
    judge_cost: Option<Duration>,
}

fn write(
    case: &mut CaseStore,
    stream: &mut Behaviour,
    engines: Analyses,
    judge: Judge,
    at: Position,
) -> anyhow::Result<Written> {
    let (from_events, from_creations) = (stream.events(), stream.creations());
    let existing = case.endpoints()?;
    let started = Instant::now();
    let derived = engines.finish_live(&existing, stream, judge)?;
    let judge_cost = (judge == Judge::Now).then(|| started.elapsed());
    let events = stream.saved_events(from_events);
    let creations = stream.saved_creations(from_creations);
    let forget_before_ns = stream.forget_beyond(at.watermark);
    let progress = LiveProgress {
        analysed_below: at.analysed_below,
        stream: StreamSave {
            events: &events,
            creations: &creations,
            forget_before_ns,
        },
    };
    let (new, updated) = case.commit_live(&derived, &progress)?;
    Ok(Written {
        new,
        updated,
        judge_cost,
    })
}

/// The hub's clock, ns since the epoch.
fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Live {
        live_on(Box::new(|| anyhow::bail!("no case in this test")))
    }

    fn live_on(connect: Connect) -> Live {
        let mut l = Live::new(
            connect,
            Arc::default(),
            Arc::default(),
            Arc::default(),
            Duration::from_secs(2),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        l.resync = false;
        l
    }

    fn record(ts: i64) -> Transaction {
        Transaction {
            request_ts_nanos: ts,
            method: "GET".into(),
            uri: "/".into(),
            ..Transaction::default()
        }
    }

    #[test]
    fn a_clock_ahead_of_the_hub_is_flagged_and_does_not_move_the_watermark() {
        let mut l = live();
        let now = now_ns();
        l.note(1, &record(now - 1_000_000_000), now);
        l.note(2, &record(now + 3_600 * 1_000_000_000), now);
        assert_eq!(l.done.skewed, 1);
        assert_eq!(l.watermark, now - 1_000_000_000);
        // Far behind the horizon: judged once, counted late.
        l.note(3, &record(now - 2 * HORIZON_NS), now);
        assert_eq!((l.done.late, l.done.records, l.next), (1, 3, 4));
    }

    #[test]
    fn a_quiet_stream_waits_for_batches_instead_of_spinning() {
        let mut l = live();
        l.since -= Duration::from_secs(60);
        l.judged_at -= Duration::from_secs(60);
        // Nothing pending long after the last flush: only the health check bounds the wait.
        assert_eq!(l.patience(), HEALTH_CHECK);
        // Records pending past the interval: due now, and the wait is the shortest.
        l.pending = 1;
        assert!(l.due());
        assert_eq!(l.patience(), LEAST_WAIT);
        // A stream left to judge later, judging being slow: wait until it is due.
        l.pending = 0;
        l.unjudged = true;
        l.judge_cost = Duration::from_secs(60);
        l.judged_at = Instant::now();
        assert!(!l.due());
        assert!(l.patience() > Duration::from_millis(100));
    }

    /// A write runs beside the dealing: what is taken meanwhile is not counted as written
    /// (the case's position is the one at the gathering), and the next write covers it.
    #[test]
    fn batches_taken_during_a_write_are_written_by_the_next() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("case.duckdb");
        drop(CaseStore::open(&path).unwrap_or_else(|e| panic!("{e}")));
        let mut l = live_on(Box::new(move || Ok(CaseStore::open(&path)?)));
        let now = now_ns();
        let batch = |ids: Range<i64>| Stored {
            txs: ids.clone().map(|i| record(now + i)).collect(),
            ids,
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let (dropped, stopping) = (AtomicBool::new(false), AtomicBool::new(false));
        let inbox = Inbox {
            rx: &rx,
            dropped: &dropped,
            stopping: &stopping,
        };
        l.stored_below.store(20, Ordering::Release);
        l.take(batch(0..10));
        tx.send(batch(10..20)).unwrap_or_else(|e| panic!("{e}"));
        l.flush(&inbox, Queue::Open, &|_| {});
        let analysed_below = |l: &mut Live| {
            l.case()
                .and_then(|c| Ok(c.live_state()?.analysed_below))
                .unwrap_or_else(|e| panic!("{e:#}"))
        };
        assert!(!l.resync, "the write succeeded");
        assert_eq!(analysed_below(&mut l), 10);
        assert_eq!(l.written_below.load(Ordering::Acquire), 10);
        // The second batch was taken while writing, or waits in the queue: either way it is
        // pending, not written.
        if l.next == 10 {
            assert!(l.receive_one(&inbox, Duration::from_secs(1)));
        }
        assert_eq!((l.next, l.pending), (20, 10));
        l.flush(&inbox, Queue::Open, &|_| {});
        assert_eq!(analysed_below(&mut l), 20);
        assert_eq!((l.done.records, l.pending), (20, 0));
    }

    #[test]
    fn what_a_burst_left_is_written_once_the_stream_is_quiet() {
        let mut l = live();
        l.take(Stored {
            ids: 0..10,
            txs: (0..10).map(|_| record(now_ns())).collect(),
        });
        l.stored_below.store(10, Ordering::Release);
        l.judged_at = Instant::now();
        // Just written: not due, but the thread looks again soon rather than in 2 s.
        l.since = Instant::now();
        l.quiet = true;
        assert!(!l.due());
        assert_eq!(l.patience(), QUIET);
        // Quiet for long enough after the last write: due before the interval.
        l.since -= QUIET_GAP;
        assert!(l.due());
        // More stored than observed: the stream is not quiet, the interval rules.
        l.stored_below.store(20, Ordering::Release);
        l.quiet = false;
        assert!(!l.due());
        assert!(l.patience() > QUIET);
    }

    #[test]
    fn batches_held_while_catching_up_are_taken_instead_of_read_back() {
        let mut l = live();
        let batch = |ids: Range<i64>| Stored {
            txs: ids.clone().map(|i| record(i * 1_000)).collect(),
            ids,
        };
        // Behind from record 50; records 50..100 are an import's, not the sensors'.
        l.next = 50;
        l.behind = true;
        l.backlog = [100..300, 400..500].into();
        l.held = [batch(100..200), batch(200..300), batch(400..500)].into();
        // Every held batch is reached in turn with nothing read from the case (this test has
        // none: a read would fail and ask for a resync).
        for _ in 0..6 {
            l.read_backlog();
        }
        assert!(!l.resync, "nothing was read back");
        assert_eq!((l.next, l.done.records, l.done.read_back), (500, 300, 0));
        assert!(l.held.is_empty() && l.backlog.is_empty());
    }

    #[test]
    fn a_batch_read_back_already_is_not_taken_twice() {
        let mut l = live();
        let batch = |ids: Range<i64>| Stored {
            txs: ids.clone().map(|_| record(now_ns())).collect(),
            ids,
        };
        l.take(batch(0..5));
        l.take(batch(3..8)); // overlaps what was taken: only 5..8 is new
        l.take(batch(2..4)); // wholly behind
        assert_eq!((l.done.records, l.next, l.pending), (8, 8, 8));
    }
}
