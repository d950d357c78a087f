//! The QUIC server: connection tasks and the single store thread.

use crate::store_thread::{Job, Line, Recovery, StoreJob, store_loop};
use anyhow::{Context, Result, anyhow, bail};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tapline_link::stream::{MessageReader, send};
use tapline_link::{HubIdentity, transport};
use tapline_record::RECORD_VERSION;
use tapline_record::wire::{HubMessage, PROTOCOL_VERSION, SensorMessage};
use tapline_store::CaseStore;
use tapline_store::sensors::Delivery;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tracing::Instrument as _;

/// What the hub reports as it works (the CLI logs these; the GUI shows them).
#[derive(Clone, Debug, PartialEq)]
pub enum HubEvent {
    /// A sensor said hello and was welcomed.
    Connected {
        /// Its enrolled name.
        sensor: String,
        /// Its address.
        peer: SocketAddr,
        /// Batches of its spool already stored.
        stored_through: u64,
    },
    /// A batch was stored (or recognised as already stored).
    Batch {
        /// The sensor.
        sensor: String,
        /// Batch number.
        seq: u64,
        /// Records in it.
        records: usize,
        /// Capture time of its newest record, ns (the capture → stored lag).
        latest_ns: Option<i64>,
        /// False when it was a resend of a stored batch.
        new: bool,
    },
    /// A connection ended.
    Disconnected {
        /// The sensor (if it got as far as a hello).
        sensor: Option<String>,
        /// Its address.
        peer: SocketAddr,
        /// Why, when not a clean close.
        error: Option<String>,
    },
    /// The case failed under the hub (a full disk, DuckDB giving up on the database):
    /// nothing is acknowledged, sensors keep their records.
    CaseFailed {
        /// Why.
        reason: String,
    },
    /// The case is usable again after a failure.
    CaseRecovered,
    /// Live analysis wrote what it found in the records stored since its last flush
    /// (endpoints and findings are in the case: views refresh).
    Analysed(crate::live::Analysed),
    /// Alerts went out to the case's destinations (or some could not: they are retried).
    Alerted {
        /// Alerts about new findings delivered.
        new: usize,
        /// Updates delivered.
        updated: usize,
        /// Destinations that failed, with why.
        failed: Vec<String>,
    },
    /// A peer was refused.
    Refused {
        /// Its address.
        peer: SocketAddr,
        /// Why.
        reason: String,
    },
}

/// A running hub.
pub struct Hub {
    addr: SocketAddr,
    jobs: mpsc::Sender<Job>,
    endpoint: quinn::Endpoint,
    runtime: Option<tokio::runtime::Runtime>,
    store: Option<std::thread::JoinHandle<Result<()>>>,
    analysis: Option<crate::live::Thread>,
    alerter: Option<crate::alerting::Alerter>,
}

type OnEvent = Arc<dyn Fn(HubEvent) + Send + Sync>;

impl Hub {
    /// Listens on `listen` and serves sensors into `store` until [`Hub::stop`].
    pub fn start(
        store: CaseStore,
        recovery: Recovery,
        identity: &HubIdentity,
        listen: SocketAddr,
        live: crate::live::LiveAnalysis,
        on_event: impl Fn(HubEvent) + Send + Sync + 'static,
    ) -> Result<Hub> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hub")
            .enable_all()
            .build()
            .context("cannot start the hub's runtime")?;
        let endpoint = {
            let _guard = runtime.enter();
            transport::server(identity, listen)
                .with_context(|| format!("cannot listen for sensors on {listen}"))?
        };
        let addr = endpoint.local_addr()?;
        let (jobs, rx) = mpsc::channel::<Job>(64);
        let on_event: OnEvent = Arc::new(on_event);
        let case_failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let on_health = {
            let on_event = Arc::clone(&on_event);
            let case_failed = Arc::clone(&case_failed);
            Box::new(move |failure: Option<String>| {
                case_failed.store(failure.is_some(), std::sync::atomic::Ordering::Release);
                on_event(match failure {
                    Some(reason) => HubEvent::CaseFailed { reason },
                    None => HubEvent::CaseRecovered,
                })
            })
        };
        let alerter = {
            let on_event = Arc::clone(&on_event);
            let cases = CaseConnections(jobs.clone());
            let connect = Box::new(move || cases.connect());
            crate::alerting::start(connect, Arc::clone(&case_failed), move |sent| {
                on_event(HubEvent::Alerted {
                    new: sent.new,
                    updated: sent.updated,
                    failed: sent.failed,
                })
            })
            .context("cannot start the hub's alerts thread")?
        };
        let (feed, analysis) = if let crate::live::LiveAnalysis::On { every } = live {
            let on_event = Arc::clone(&on_event);
            let cases = CaseConnections(jobs.clone());
            let connect = Box::new(move || cases.connect());
            let poke = alerter.poker();
            let (feed, thread) = crate::live::start(connect, case_failed, every, move |a| {
                if a.new_findings + a.updated_findings > 0 {
                    poke.poke();
                }
                on_event(HubEvent::Analysed(a))
            })
            .context("cannot start the hub's analysis thread")?;
            (Some(feed), Some(thread))
        } else {
            (None, None)
        };
        let store = std::thread::Builder::new()
            .name("hub-store".into())
            .spawn(move || store_loop(store, recovery, on_health, rx, feed))
            .context("cannot start the hub's store thread")?;
        let ticks = jobs.clone();
        runtime.spawn(async move {
            let mut every = tokio::time::interval(crate::store_thread::QUIET_TICK);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                every.tick().await;
                // A full queue is a busy store thread: no tick is needed then.
                if let Err(mpsc::error::TrySendError::Closed(_)) = ticks.try_send(Job::Tick) {
                    return;
                }
            }
        });
        let ep = endpoint.clone();
        let accepted_jobs = jobs.clone();
        let hub_budget = Arc::new(Semaphore::new(kib(HUB_BYTES) as usize));
        runtime.spawn(async move {
            let jobs = accepted_jobs;
            while let Some(incoming) = ep.accept().await {
                let jobs = jobs.clone();
                let budget = Arc::clone(&hub_budget);
                let on_event = Arc::clone(&on_event);
                let peer = incoming.remote_address();
                let span = tracing::info_span!("sensor connection", %peer);
                tokio::spawn(
                    async move {
                        let mut sensor = None;
                        let result =
                            serve_connection(incoming, &jobs, &on_event, &budget, &mut sensor)
                                .await;
                        match result {
                            Err(Refusal(reason)) => {
                                tracing::warn!("refused: {reason}");
                                on_event(HubEvent::Refused { peer, reason });
                            }
                            Ok(error) => {
                                tracing::info!(?sensor, ?error, "disconnected");
                                on_event(HubEvent::Disconnected {
                                    sensor,
                                    peer,
                                    error,
                                });
                            }
                        }
                    }
                    .instrument(span),
                );
            }
        });
        Ok(Hub {
            addr,
            jobs,
            endpoint,
            runtime: Some(runtime),
            store: Some(store),
            analysis,
            alerter: Some(alerter),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle that gives other threads of this process connections to the hub's case
    /// (the control socket serves CLI commands through them while the hub holds the case).
    pub fn cases(&self) -> CaseConnections {
        CaseConnections(self.jobs.clone())
    }

    /// Stops accepting, closes connections (sensors keep their unacknowledged batches and
    /// send them again later), and waits for the store thread to finish its last write.
    pub fn stop(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        self.endpoint.close(0u32.into(), b"hub stopping");
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
        let Some(store) = self.store.take() else {
            return Ok(());
        };
        // Jobs queued before this one are served first; connections handed out by
        // [`Hub::cases`] keep the channel open, so the end is said, not inferred.
        let _ = self.jobs.blocking_send(Job::Stop);
        let stored = match store.join() {
            Ok(r) => r,
            Err(_) => Err(anyhow!("the hub's store thread panicked")),
        };
        // Analysis writes what it has and ends; what it had not reached waits in the case
        // for the next start.
        if let Some(analysis) = self.analysis.take() {
            analysis.stop();
        }
        // Then what analysis found last goes out.
        if let Some(alerter) = self.alerter.take() {
            alerter.stop();
        }
        stored
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Gives out connections to the hub's case, from any thread outside the hub's runtime.
#[derive(Clone, Debug)]
pub struct CaseConnections(mpsc::Sender<Job>);

impl CaseConnections {
    /// Another connection to the case, shared with the store thread's (the same database,
    /// the same transaction-id allocator). Hold it only while a command runs: after a
    /// failure the store thread can reopen the case only when every connection is gone.
    pub fn connect(&self) -> Result<CaseStore> {
        let (reply, answer) = oneshot::channel();
        self.0
            .blocking_send(Job::Connect(reply))
            .map_err(|_| anyhow!("the hub has stopped"))?;
        answer
            .blocking_recv()
            .map_err(|_| anyhow!("the hub has stopped"))?
    }
}

/// A peer that must be told no (and logged as refused, not as a failure).
struct Refusal(String);

/// Serves one connection; `Ok(Some(error))` when it ended badly after the hello.
async fn serve_connection(
    incoming: quinn::Incoming,
    jobs: &mpsc::Sender<Job>,
    on_event: &OnEvent,
    hub_budget: &Arc<Semaphore>,
    sensor_name: &mut Option<String>,
) -> Result<Option<String>, Refusal> {
    let admitted = admit(incoming, jobs).await?;
    *sensor_name = Some(admitted.name.clone());
    let outcome = stream_batches(admitted, jobs, on_event, hub_budget).await;
    Ok(outcome.err().map(|e| format!("{e:#}")))
}

/// A sensor that passed the handshake: an enrolled certificate and a hello we speak.
struct Admitted {
    /// Held so the connection stays open while its streams are served.
    _conn: quinn::Connection,
    peer: SocketAddr,
    tx: quinn::SendStream,
    rx: MessageReader,
    /// The sensor's row and enrolled name.
    id: i64,
    name: String,
    /// The sensor's spool generation.
    spool: u64,
}

/// The handshake: TLS with a client certificate, a stream, a hello in our protocol, and the
/// certificate enrolled in the case.
async fn admit(incoming: quinn::Incoming, jobs: &mpsc::Sender<Job>) -> Result<Admitted, Refusal> {
    let peer = incoming.remote_address();
    let conn = incoming
        .await
        .map_err(|e| Refusal(format!("TLS handshake failed: {e}")))?;
    let fingerprint = transport::peer_fingerprint(&conn)
        .ok_or_else(|| Refusal("presented no certificate".into()))?;
    let (mut tx, rx) = tokio::time::timeout(Duration::from_secs(10), conn.accept_bi())
        .await
        .map_err(|_| Refusal("opened no stream within 10 s".into()))?
        .map_err(|e| Refusal(format!("connection lost before the hello: {e}")))?;
    let mut rx = MessageReader::new(rx);
    let (spool, claimed) = hello(&conn, &mut tx, &mut rx).await?;
    let found = match ask(jobs, |r| Job::Lookup(fingerprint.clone(), r)).await {
        Ok(found) => found,
        Err(e) => return Err(refuse(&conn, &mut tx, format!("{e:#}")).await),
    };
    let Some((id, name)) = found else {
        return Err(refuse(
            &conn,
            &mut tx,
            format!(
                "the certificate of sensor {claimed:?} (sha256 {fingerprint}) is not enrolled in this case or was revoked"
            ),
        )
        .await);
    };
    Ok(Admitted {
        _conn: conn,
        peer,
        tx,
        rx,
        id,
        name,
        spool,
    })
}

/// Reads the sensor's hello: its spool generation and the name it claims.
async fn hello(
    conn: &quinn::Connection,
    tx: &mut quinn::SendStream,
    rx: &mut MessageReader,
) -> Result<(u64, String), Refusal> {
    let hello = tokio::time::timeout(Duration::from_secs(10), rx.recv::<SensorMessage>())
        .await
        .map_err(|_| Refusal("sent no hello within 10 s".into()))?;
    match hello {
        Ok(Some(SensorMessage::Hello {
            sensor,
            protocol,
            record_version,
            spool,
            ..
        })) => {
            if protocol != PROTOCOL_VERSION || record_version != RECORD_VERSION {
                return Err(refuse(
                    conn,
                    tx,
                    format!(
                        "speaks protocol {protocol} / records {record_version}; this workbench speaks {PROTOCOL_VERSION} / {RECORD_VERSION}: upgrade the older side"
                    ),
                )
                .await);
            }
            Ok((spool, sensor))
        }
        Ok(Some(other)) => Err(refuse(conn, tx, format!("sent {other:?} before its hello")).await),
        Ok(None) => Err(Refusal("closed the stream before its hello".into())),
        Err(e) => Err(Refusal(format!("sent a malformed hello: {e}"))),
    }
}

/// A batch handed to the store, waiting for its commit to be acknowledged.
/// A batch handed to the store, waiting for its commit to be acknowledged.
struct PendingAck {
    seq: u64,
    records: usize,
    /// Capture time of its newest record, ns.
    latest_ns: Option<i64>,
    commit: oneshot::Receiver<Result<Delivery>>,
    _in_flight: InFlight,
}

/// Decompressed batch bytes one connection may hold between reading and committing them, and
/// all connections together: past them the hub stops reading (QUIC flow control makes the
/// sensors wait, and they spool), so a fast or hostile sensor cannot fill the hub's memory.
pub const CONNECTION_BYTES: usize = 64 << 20;
/// See [`CONNECTION_BYTES`].
pub const HUB_BYTES: usize = 512 << 20;

/// A batch's share of both budgets, given back when its commit is acknowledged.
struct InFlight {
    _connection: OwnedSemaphorePermit,
    _hub: OwnedSemaphorePermit,
}

/// Budgets count KiB (a semaphore counts in `u32`); a batch takes at least one and at most
/// the whole budget, so one batch larger than the budget still goes through alone.
fn kib(bytes: usize) -> u32 {
    (bytes >> 10).clamp(1, u32::MAX as usize) as u32
}

/// Waits until both budgets have room for `bytes`.
async fn reserve(
    bytes: usize,
    connection: &Arc<Semaphore>,
    hub: &Arc<Semaphore>,
) -> Result<InFlight> {
    let closed = |_| anyhow!("the hub is stopping");
    let _hub = Arc::clone(hub)
        .acquire_many_owned(kib(bytes.min(HUB_BYTES)))
        .await
        .map_err(closed)?;
    let _connection = Arc::clone(connection)
        .acquire_many_owned(kib(bytes.min(CONNECTION_BYTES)))
        .await
        .map_err(closed)?;
    Ok(InFlight { _connection, _hub })
}

/// Welcomes an admitted sensor and stores its batches until it closes the stream.
async fn stream_batches(
    a: Admitted,
    jobs: &mpsc::Sender<Job>,
    on_event: &OnEvent,
    hub_budget: &Arc<Semaphore>,
) -> Result<()> {
    let Admitted {
        _conn,
        peer,
        mut tx,
        mut rx,
        id,
        name,
        spool,
    } = a;
    let stored_through = ask(jobs, |r| Job::Through(id, spool, r)).await?;
    send(&mut tx, &HubMessage::Welcome { stored_through }).await?;
    tracing::info!(sensor = %name, stored_through, "connected");
    on_event(HubEvent::Connected {
        sensor: name.clone(),
        peer,
        stored_through,
    });
    // Batches are handed to the store without waiting for the previous one to commit, so
    // the store can commit several together; an acker task sends the acknowledgements in
    // order as commits complete. The queue bounds what one sensor has in flight.
    let (pending, commits) = mpsc::channel::<PendingAck>(64);
    let acker = tokio::spawn(acknowledge(tx, commits, name.clone(), Arc::clone(on_event)));
    let session = Session {
        jobs,
        budget: Arc::new(Semaphore::new(kib(CONNECTION_BYTES) as usize)),
        hub_budget,
        id,
        spool,
        name: &name,
        line: Line::default(),
    };
    let reading = session.read(&mut rx, &pending).await;
    drop(pending);
    // The acker's error (a failed commit) explains a failed read better than the read.
    let mut tx = match acker.await {
        Ok(Ok(tx)) => tx,
        Ok(Err(e)) => return Err(e),
        Err(e) => return Err(anyhow!("the acknowledging task failed: {e}")),
    };
    reading?;
    let _ = tx.finish();
    Ok(())
}

/// Sends the acknowledgements in batch order as the store commits them; gives the stream
/// back when the reader is done.
async fn acknowledge(
    mut tx: quinn::SendStream,
    mut commits: mpsc::Receiver<PendingAck>,
    name: String,
    on_event: OnEvent,
) -> Result<quinn::SendStream> {
    while let Some(PendingAck {
        seq,
        records,
        latest_ns,
        commit,
        _in_flight,
    }) = commits.recv().await
    {
        let d = commit
            .await
            .map_err(|_| anyhow!("the hub's store stopped"))??;
        if d == Delivery::Revoked {
            let reason = format!("sensor {name:?} was revoked: batch {seq} and later are refused");
            let _ = send(
                &mut tx,
                &HubMessage::Refused {
                    reason: reason.clone(),
                },
            )
            .await;
            bail!(reason);
        }
        send(&mut tx, &HubMessage::Ack { through: seq }).await?;
        tracing::debug!(seq, records, "batch acknowledged");
        on_event(HubEvent::Batch {
            sensor: name.clone(),
            seq,
            records,
            latest_ns,
            new: matches!(d, Delivery::Stored(_)),
        });
    }
    Ok(tx)
}

/// One admitted sensor's stream of messages after the welcome.
struct Session<'a> {
    jobs: &'a mpsc::Sender<Job>,
    /// This connection's share of memory for batches in flight.
    budget: Arc<Semaphore>,
    hub_budget: &'a Arc<Semaphore>,
    id: i64,
    spool: u64,
    name: &'a str,
    /// This connection's batches, stored as a prefix.
    line: Line,
}

impl Session<'_> {
    /// Reads messages until the sensor closes the stream: batches go to the store (their
    /// commits to the acker), statistics to the sensor's heartbeat.
    async fn read(&self, rx: &mut MessageReader, pending: &mpsc::Sender<PendingAck>) -> Result<()> {
        let stamp: Arc<str> = self.name.into();
        while let Some(msg) = rx.recv::<SensorMessage>().await? {
            match msg {
                SensorMessage::Batch(batch) => {
                    let seq = batch.seq;
                    let in_flight =
                        reserve(batch.raw_size(), &self.budget, self.hub_budget).await?;
                    let mut txs = batch
                        .decode()
                        .with_context(|| format!("batch {seq} from {}", self.name))?;
                    // Records carry the enrolled name, whatever the sensor stamped.
                    for t in &mut txs {
                        t.sensor_id = Some(Arc::clone(&stamp));
                    }
                    let records = txs.len();
                    let latest_ns = txs.iter().map(|t| t.request_ts_nanos).max();
                    let (reply, commit) = oneshot::channel();
                    self.job(Job::Store(StoreJob {
                        sensor: self.id,
                        spool: self.spool,
                        seq,
                        txs,
                        reply,
                        line: self.line.clone(),
                    }))
                    .await?;
                    let ack = PendingAck {
                        seq,
                        records,
                        latest_ns,
                        commit,
                        _in_flight: in_flight,
                    };
                    pending
                        .send(ack)
                        .await
                        .map_err(|_| anyhow!("acknowledging failed"))?;
                }
                SensorMessage::Stats(stats) => {
                    let version = stats.version.clone();
                    let json = serde_json::to_value(&stats)?;
                    self.job(Job::Heartbeat(self.id, version, json)).await?;
                }
                SensorMessage::Hello { .. } => bail!("sent a second hello"),
            }
        }
        Ok(())
    }

    async fn job(&self, job: Job) -> Result<()> {
        self.jobs
            .send(job)
            .await
            .map_err(|_| anyhow!("the hub's store stopped"))
    }
}

/// Tells the peer why, closes the connection.
async fn refuse(conn: &quinn::Connection, tx: &mut quinn::SendStream, reason: String) -> Refusal {
    let _ = send(
        tx,
        &HubMessage::Refused {
            reason: reason.clone(),
        },
    )
    .await;
    let _ = tx.finish();
    let _ = tokio::time::timeout(Duration::from_secs(1), tx.stopped()).await;
    conn.close(1u32.into(), b"refused");
    Refusal(reason)
}

/// Sends a job to the store thread and waits for its answer.
async fn ask<T>(
    jobs: &mpsc::Sender<Job>,
    make: impl FnOnce(oneshot::Sender<Result<T>>) -> Job,
) -> Result<T> {
    let (tx, rx) = oneshot::channel();
    jobs.send(make(tx))
        .await
        .map_err(|_| anyhow!("the hub's store stopped"))?;
    rx.await.map_err(|_| anyhow!("the hub's store stopped"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets() -> (Arc<Semaphore>, Arc<Semaphore>) {
        (
            Arc::new(Semaphore::new(kib(CONNECTION_BYTES) as usize)),
            Arc::new(Semaphore::new(kib(HUB_BYTES) as usize)),
        )
    }

    #[tokio::test]
    async fn a_connection_past_its_memory_budget_waits_for_a_commit() {
        let (conn, hub) = budgets();
        let first = reserve(40 << 20, &conn, &hub).await;
        let _second = reserve(20 << 20, &conn, &hub).await;
        assert!(first.is_ok());
        let third = reserve(40 << 20, &conn, &hub);
        tokio::pin!(third);
        let wait = Duration::from_millis(50);
        assert!(
            tokio::time::timeout(wait, &mut third).await.is_err(),
            "100 MB in flight on one connection"
        );
        drop(first); // its commit was acknowledged
        let third = tokio::time::timeout(Duration::from_secs(1), third).await;
        assert!(third.is_ok_and(|r| r.is_ok()));
    }

    #[tokio::test]
    async fn the_hub_budget_bounds_all_connections_and_a_huge_batch_goes_alone() {
        let (_, hub) = budgets();
        let mut held = Vec::new();
        for _ in 0..8 {
            let (conn, _) = budgets();
            held.push(reserve(CONNECTION_BYTES, &conn, &hub).await);
        }
        let (conn, _) = budgets();
        let ninth = reserve(1 << 20, &conn, &hub);
        tokio::pin!(ninth);
        let wait = Duration::from_millis(50);
        assert!(
            tokio::time::timeout(wait, &mut ninth).await.is_err(),
            "512 MB held"
        );
        held.clear();
        assert!(tokio::time::timeout(wait, ninth).await.is_ok());
        // Larger than any budget (the wire allows 256 MB): it takes the whole of its
        // connection's budget and goes through.
        let (conn, _) = budgets();
        let huge = tokio::time::timeout(wait, reserve(200 << 20, &conn, &hub)).await;
        assert!(huge.as_ref().is_ok_and(Result::is_ok));
        assert_eq!(conn.available_permits(), 0);
        drop(huge);
        assert_eq!(conn.available_permits(), kib(CONNECTION_BYTES) as usize);
    }
}
