//! The hub's store thread: the one writer of the case. It serves the connection tasks' jobs in
//! arrival order, commits queued batches together, and survives the case failing under it —
//! a full disk, DuckDB giving up on the database — by refusing work (so nothing is
//! acknowledged and the sensors keep spooling) until the case can be opened again.

use anyhow::{Result, anyhow};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tapline_record::Transaction;
use tapline_store::sensors::{Delivery, SensorBatch};
use tapline_store::{CaseStore, StoreError, Workers};
use tokio::sync::{mpsc, oneshot};

use crate::live::Feed;

/// What the connection tasks ask of the store thread.
pub(crate) enum Job {
    Lookup(String, oneshot::Sender<Result<Option<(i64, String)>>>),
    Through(i64, u64, oneshot::Sender<Result<u64>>),
    Store(StoreJob),
    Heartbeat(i64, String, serde_json::Value),
    /// Another connection to the case, for a command served beside the hub.
    Connect(oneshot::Sender<Result<CaseStore>>),
    /// Time passes (sent every [`QUIET_TICK`]): a quiet hub folds its log into the case.
    Tick,
    /// The hub is stopping: serve nothing more.
    Stop,
}

/// How often the store thread hears [`Job::Tick`].
pub(crate) const QUIET_TICK: Duration = Duration::from_millis(250);
/// Nothing stored for this long is a quiet hub…
const QUIET: Duration = Duration::from_secs(1);
/// …which checkpoints once its write-ahead log holds this much. Under a steady stream the log
/// grows to the case's own threshold (256 MB, where commits stay cheapest); when the stream
/// pauses, or every batch fails (a full disk), the log is folded in now: a shorter replay if
/// the hub dies, less of the case held uncompressed in memory, and a disk that cannot take
/// the checkpoint found out now.
const FOLD_AT_BYTES: u64 = 4 << 20;
/// Records folded from live segments into the case's table per step: a quiet hub folds a step
/// a tick, so a stream that resumes waits for one step at most (~1–2 s of DuckDB's appends).
const COMPACT_STEP: u64 = 200_000;
/// Live segments at most before the hub folds some even while busy: every query of the case
/// reads each segment's footer, so their number is bounded; the stream then pays DuckDB's
/// price as it arrives.
const MAX_LIVE_SEGMENTS: u64 = 256;

/// One sensor batch to store, and where its outcome goes.
pub(crate) struct StoreJob {
    pub sensor: i64,
    pub spool: u64,
    pub seq: u64,
    pub txs: Vec<Transaction>,
    pub reply: oneshot::Sender<Result<Delivery>>,
    /// The connection the batch came on.
    pub line: Line,
}

/// One connection's batches, which are stored in arrival order and only as a prefix: once
/// one fails, none after it on the same connection is stored. The sensor resends from its
/// last acknowledgement, and the hub welcomes it with the highest batch in its ledger — so a
/// later batch stored past a failed one would make the sensor drop the failed one unsent
/// (issue 20: five whole batches lost when the case came back between two queued batches).
#[derive(Clone, Debug, Default)]
pub(crate) struct Line(Arc<AtomicBool>);

impl Line {
    fn broken(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn break_off(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// How the store thread gets a case back after DuckDB gave up on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// The hub is the case's only user (`tapline serve`): close it and open it again.
    Reopen,
    /// Others share the case's database (the desktop app): report, and leave reopening to
    /// its owner.
    Report,
}

/// Batches committed together at most (and records, roughly). Records stay below DuckDB's
/// row group (122,880), so a group's rows go through the write-ahead log with its ledger rows
/// instead of being written to the database file ahead of the commit.
const GROUP_BATCHES: usize = 256;
const GROUP_RECORDS: usize = 100_000;

/// Waits between attempts to reopen a failed case: short at first, then at most this.
const FIRST_RETRY: Duration = Duration::from_millis(500);
const LAST_RETRY: Duration = Duration::from_secs(10);

/// What the store thread tells the rest of the hub about the case's health.
pub(crate) type OnHealth = Box<dyn Fn(Option<String>) + Send>;

/// The case under the store thread: open, or failed and waiting to be opened again.
struct Case {
    store: Option<CaseStore>,
    path: PathBuf,
    recovery: Recovery,
    /// Why the case failed, and when to try again.
    failed: Option<(String, Instant, Duration)>,
    on_health: OnHealth,
    /// When a batch was last stored, if any was since the last checkpoint.
    logged: Option<Instant>,
    /// DuckDB's workers as set on the open store: none while batches stream in (the hub's
    /// own threads keep the cores busy), one per core once the hub is quiet.
    workers: Workers,
    /// Folding live segments into the table failed last time (said once, not every tick).
    fold_failing: bool,
}

impl Case {
    /// The open store; a failed one is reopened first when its time has come.
    fn get(&mut self) -> Result<&mut CaseStore> {
        if self.store.is_none() {
            self.reopen()?;
        }
        match (&mut self.store, &self.failed) {
            (Some(store), _) => Ok(store),
            (None, Some((why, ..))) => Err(unavailable(why)),
            (None, None) => Err(anyhow!("the hub's case is closed")),
        }
    }

    /// Notes a store error: a fatal one closes the store so it can be opened again. Returns
    /// the error for the job's reply.
    fn error(&mut self, e: StoreError) -> anyhow::Error {
        if e.is_fatal() && self.store.is_some() {
            let why = e.to_string();
            tracing::error!(
                "the case failed: {why}; nothing more is acknowledged until it is reopened (sensors keep their records)"
            );
            // Dropping the handle releases the database so it can be opened again.
            self.store = None;
            self.failed = Some((why.clone(), Instant::now() + FIRST_RETRY, FIRST_RETRY));
            (self.on_health)(Some(why));
        }
        e.into()
    }

    /// Sets DuckDB's workers for the case, unless they are set so already. A failure only
    /// costs speed: it is logged, and tried again at the next change of pace.
    fn set_workers(&mut self, w: Workers) {
        if self.workers == w {
            return;
        }
        if let Some(store) = &self.store {
            match store.set_workers(w) {
                Ok(()) => self.workers = w,
                Err(e) => tracing::debug!("DuckDB's workers stay as they were: {e}"),
            }
        }
    }

    fn reopen(&mut self) -> Result<()> {
        let Some((why, at, wait)) = self.failed.clone() else {
            return Ok(());
        };
        if self.recovery == Recovery::Report || Instant::now() < at {
            return Err(unavailable(&why));
        }
        match CaseStore::open(&self.path) {
            Ok(store) => {
                tracing::warn!(path = %self.path.display(), "the case is back: storing again");
                self.store = Some(store);
                self.workers = Workers::PerCore;
                self.failed = None;
                (self.on_health)(None);
                Ok(())
            }
            Err(e) => {
                let next = (wait * 2).min(LAST_RETRY);
                tracing::debug!("the case cannot be reopened yet: {e}");
                self.failed = Some((why.clone(), Instant::now() + next, next));
                Err(unavailable(&why))
            }
        }
    }
}

fn unavailable(why: &str) -> anyhow::Error {
    anyhow!(
        "the hub cannot use its case ({why}); sensors keep their records and deliver them once it recovers"
    )
}

/// The store thread: one writer, jobs in arrival order. Store jobs that queued up while the
/// last commit ran are committed together (group commit), each acknowledged after.
pub(crate) fn store_loop(
    store: CaseStore,
    recovery: Recovery,
    on_health: OnHealth,
    mut jobs: mpsc::Receiver<Job>,
    feed: Option<Feed>,
) -> Result<()> {
    let mut case = Case {
        path: store.path().to_owned(),
        store: Some(store),
        recovery,
        failed: None,
        on_health,
        // As if just stored: live segments an earlier run left are folded once it is quiet.
        logged: Some(Instant::now()),
        workers: Workers::PerCore,
        fold_failing: false,
    };
    let mut carry: Option<Job> = None;
    loop {
        let job = match carry.take() {
            Some(j) => j,
            None => match jobs.blocking_recv() {
                Some(j) => j,
                None => return Ok(()),
            },
        };
        match job {
            Job::Lookup(fp, reply) => {
                let r = case.get().map(|s| s.sensor_by_fingerprint(&fp));
                let _ = reply.send(settle(&mut case, r));
            }
            Job::Through(id, spool, reply) => {
                let r = case.get().map(|s| s.stored_through(id, spool));
                let _ = reply.send(settle(&mut case, r));
            }
            Job::Heartbeat(id, version, stats) => {
                let r = case.get().map(|s| s.sensor_heartbeat(id, &version, &stats));
                if let Err(e) = settle(&mut case, r) {
                    tracing::warn!(sensor = id, "cannot record a heartbeat: {e:#}");
                }
            }
            Job::Tick => fold_when_quiet(&mut case, feed.as_ref()),
            Job::Stop => return Ok(()),
            Job::Connect(reply) => {
                let r = case.get().map(|s| s.try_clone());
                let _ = reply.send(settle(&mut case, r));
            }
            Job::Store(first) => {
                let (group, next) = gather(first, &mut jobs);
                carry = next;
                store_group(&mut case, group, feed.as_ref());
            }
        }
    }
}

/// A case that has stored nothing for [`QUIET`], and whose live analysis has caught up, folds
/// its live segments into its table, a step a tick, then checkpoints once it has logged
/// [`FOLD_AT_BYTES`].
fn fold_when_quiet(case: &mut Case, feed: Option<&Feed>) {
    let Some(at) = case.logged else { return };
    if at.elapsed() < QUIET || case.store.is_none() || feed.is_some_and(|f| !f.caught_up()) {
        return;
    }
    // Queries, compaction and the checkpoint below may use every core again.
    case.set_workers(Workers::PerCore);
    // Segments left, or a fold that failed: the log waits for a later tick.
    if !matches!(compact_step(case), Ok(false)) {
        return;
    }
    let r = case.get().map(|s| {
        if s.wal_bytes() < FOLD_AT_BYTES {
            return Ok(false);
        }
        s.checkpoint().map(|()| true)
    });
    match settle(case, r) {
        Ok(folded) => {
            if folded {
                tracing::debug!("the hub is quiet: its write-ahead log is folded into the case");
            }
            case.logged = None;
        }
        // Fatal failures were noted by the case; others (a reader in the way) wait a tick.
        Err(e) => tracing::debug!("the quiet checkpoint did not run: {e:#}"),
    }
}

/// Folds one step of live segments into the case's table; true if some are left. A failure
/// (a full disk) leaves the segments as they are, readable and complete: it is reported once,
/// and the step is tried again at the next chance.
fn compact_step(case: &mut Case) -> Result<bool> {
    let r = fold_segments(case);
    match (&r, case.fold_failing) {
        (Err(e), false) => tracing::warn!(
            "live segments were not folded into the case (they stay readable; tried again when quiet): {e:#}"
        ),
        (Ok(_), true) => tracing::info!("live segments are folded into the case again"),
        _ => {}
    }
    case.fold_failing = r.is_err();
    r
}

fn fold_segments(case: &mut Case) -> Result<bool> {
    let r = case.get().map(|s| {
        let t = Instant::now();
        let folded = s.compact_segments(COMPACT_STEP)?;
        if folded == 0 {
            return Ok(false);
        }
        let left = s.live_segments()?;
        tracing::debug!(
            folded,
            left = left.records,
            ms = t.elapsed().as_millis() as u64,
            "live segments folded into the case"
        );
        Ok(left.files > 0)
    });
    settle(case, r)
}

/// The outcome of a job on the case: its value, or the error noted by the case.
fn settle<T>(case: &mut Case, r: Result<Result<T, StoreError>>) -> Result<T> {
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(case.error(e)),
        Err(e) => Err(e),
    }
}

/// The store jobs queued behind `first`, up to the group's size; a job of another kind
/// found on the way comes back to be served next.
fn gather(first: StoreJob, jobs: &mut mpsc::Receiver<Job>) -> (Vec<StoreJob>, Option<Job>) {
    let mut records = first.txs.len();
    let mut group = vec![first];
    while group.len() < GROUP_BATCHES && records < GROUP_RECORDS {
        match jobs.try_recv() {
            Ok(Job::Store(j)) => {
                records += j.txs.len();
                group.push(j);
            }
            // Busy is not quiet: the tick is not needed.
            Ok(Job::Tick) => {}
            Ok(other) => return (group, Some(other)),
            Err(_) => break,
        }
    }
    (group, None)
}

/// Commits a group in one transaction; each batch's reply says stored, duplicate, or why not.
/// Batches of a connection on which an earlier batch failed are refused unstored.
fn store_group(case: &mut Case, group: Vec<StoreJob>, feed: Option<&Feed>) {
    let (refused, group): (Vec<_>, Vec<_>) = group.into_iter().partition(|j| j.line.broken());
    for j in refused {
        let _ = j.reply.send(Err(anyhow!(
            "batch {} was not stored: an earlier batch on its connection failed, and the sensor resends both",
            j.seq
        )));
    }
    if group.is_empty() {
        return;
    }
    let items: Vec<SensorBatch<'_>> = group
        .iter()
        .map(|j| SensorBatch {
            sensor: j.sensor,
            spool: j.spool,
            seq: j.seq,
            txs: &j.txs,
        })
        .collect();
    let r = case.get().map(|s| s.store_sensor_batches(&items));
    drop(items);
    match settle(case, r) {
        Ok(ds) => {
            if ds.iter().any(|d| matches!(d, Delivery::Stored(_))) {
                case.logged = Some(Instant::now());
                case.set_workers(Workers::None);
                fold_when_many(case);
            }
            for (j, d) in group.into_iter().zip(ds) {
                if let (Some(feed), Delivery::Stored(ids)) = (feed, &d) {
                    feed.offer(ids.clone(), j.txs);
                }
                let _ = j.reply.send(Ok(d));
            }
        }
        Err(e) => {
            let msg = format!("{e:#}");
            for j in group {
                j.line.break_off();
                let _ = j
                    .reply
                    .send(Err(anyhow!("storing the batch failed: {msg}")));
            }
        }
    }
}

/// Folds a step of live segments while busy once there are [`MAX_LIVE_SEGMENTS`].
fn fold_when_many(case: &mut Case) {
    let r = case.get().map(|s| s.live_segments());
    match settle(case, r) {
        Ok(live) if live.files >= MAX_LIVE_SEGMENTS => {
            let _ = compact_step(case);
        }
        Ok(_) => {}
        Err(e) => tracing::debug!("live segments not counted: {e:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(sensor: i64, seq: u64, line: &Line) -> (StoreJob, oneshot::Receiver<Result<Delivery>>) {
        let (reply, outcome) = oneshot::channel();
        let txs = (0..3)
            .map(|i| Transaction {
                method: "GET".into(),
                uri: format!("/b/{seq}/{i}"),
                ..Transaction::default()
            })
            .collect();
        let job = StoreJob {
            sensor,
            spool: 7,
            seq,
            txs,
            reply,
            line: line.clone(),
        };
        (job, outcome)
    }

    #[test]
    fn a_quiet_hub_folds_a_long_log_into_the_case_and_a_busy_one_does_not() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut store =
            CaseStore::open(&dir.path().join("case.duckdb")).unwrap_or_else(|e| panic!("{e}"));
        let txs: Vec<Transaction> = (0..2_000)
            .map(|i| Transaction {
                uri: format!("/q/{i}"),
                request_body: tapline_record::Body {
                    data: format!("{i:01000}").into_bytes(),
                    len: 1000,
                    truncated: false,
                },
                ..Transaction::default()
            })
            .collect();
        for _ in 0..10 {
            store.append(&txs).unwrap_or_else(|e| panic!("{e}"));
        }
        let logged = store.wal_bytes();
        assert!(logged > FOLD_AT_BYTES, "{logged} bytes of log");
        store
            .set_workers(Workers::None)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut case = Case {
            store: Some(store),
            path: dir.path().join("case.duckdb"),
            recovery: Recovery::Reopen,
            failed: None,
            on_health: Box::new(|_| {}),
            logged: Some(Instant::now()),
            workers: Workers::None,
            fold_failing: false,
        };
        fold_when_quiet(&mut case, None);
        let wal = |case: &Case| case.store.as_ref().map_or(0, CaseStore::wal_bytes);
        let workers = |case: &Case| case.store.as_ref().map(|s| s.workers().ok());
        assert_eq!(wal(&case), logged, "stored just now: not quiet");
        assert_eq!(
            workers(&case),
            Some(Some(Workers::None)),
            "busy: no DuckDB workers"
        );
        case.logged = Instant::now().checked_sub(QUIET);
        fold_when_quiet(&mut case, None);
        assert!(wal(&case) < 1 << 20, "{} bytes left in the log", wal(&case));
        assert!(case.logged.is_none());
        assert_eq!(
            workers(&case),
            Some(Some(Workers::PerCore)),
            "quiet: DuckDB's workers back"
        );
    }

    /// The reproduction of issue 20's last loss: batch 5 fails while the case is down, the
    /// case comes back, and batch 6 — queued behind 5 on the same connection — must not be
    /// stored, or the next welcome ("stored through 6") makes the sensor drop batch 5.
    #[test]
    fn after_a_failed_batch_later_batches_of_its_connection_wait_for_the_resend() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("case.duckdb");
        let mut store = CaseStore::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let sensor = store
            .enrol_sensor("edge-1", "ab12")
            .unwrap_or_else(|e| panic!("{e}"));
        drop(store);
        let mut case = Case {
            store: None,
            path,
            recovery: Recovery::Reopen,
            // Down: the failed case is not due to reopen yet.
            failed: Some((
                "disk full".into(),
                Instant::now() + FIRST_RETRY,
                FIRST_RETRY,
            )),
            on_health: Box::new(|_| {}),
            logged: None,
            workers: Workers::PerCore,
            fold_failing: false,
        };
        let first = Line::default();
        let (five, five_out) = job(sensor, 5, &first);
        store_group(&mut case, vec![five], None);
        assert!(matches!(five_out.blocking_recv(), Ok(Err(_))));
        // Back: the next job reopens the case.
        if let Some(f) = &mut case.failed {
            f.1 = Instant::now();
        }
        let (six, six_out) = job(sensor, 6, &first);
        store_group(&mut case, vec![six], None);
        let six = six_out.blocking_recv().unwrap_or_else(|e| panic!("{e}"));
        let err = six.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("earlier batch"), "{err}");
        let through = |case: &mut Case| {
            case.get().ok().map(|s| {
                s.stored_through(sensor, 7)
                    .unwrap_or_else(|e| panic!("{e}"))
            })
        };
        assert_eq!(through(&mut case), Some(0), "nothing stored past the gap");
        // The sensor reconnects and resends both, in order.
        let second = Line::default();
        let (five, five_out) = job(sensor, 5, &second);
        let (six, six_out) = job(sensor, 6, &second);
        store_group(&mut case, vec![five, six], None);
        for out in [five_out, six_out] {
            let d = out.blocking_recv().unwrap_or_else(|e| panic!("{e}"));
            assert!(matches!(d, Ok(Delivery::Stored(_))), "{d:?}");
        }
        assert_eq!(through(&mut case), Some(6));
        let workers = case.get().ok().map(|s| s.workers().ok());
        assert_eq!(
            workers,
            Some(Some(Workers::None)),
            "streaming: no DuckDB workers"
        );
    }
}
