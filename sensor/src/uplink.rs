//! The uplink: drains the spool to the workbench hub over QUIC and deletes what the hub
//! acknowledges — nothing else leaves the spool.
//!
//! One connection, one stream. The sensor says hello (its name, versions, and its spool's
//! identity); the hub answers with the highest batch it already stores from that spool, which
//! the sensor acknowledges locally and resumes after. Batches go out in order, at most
//! [`UplinkConfig::window`] unacknowledged; the hub stores each with its ledger row in one
//! transaction and acknowledges. A lost connection loses nothing: unacknowledged batches are
//! still in the spool and are sent again; the hub recognises the ones it already has.
//! Reconnection backs off exponentially (0.25 s … 30 s). Heartbeats carry the counters.

use crate::counters::Counters;
use crate::spool::SharedSpool;
use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tapline_link::SensorCredentials;
use tapline_link::stream::{MessageReader, send};
use tapline_record::wire::{HubMessage, SensorMessage, SensorStats};
use tokio::sync::mpsc;

/// `[uplink]` in the sensor configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UplinkConfig {
    /// The workbench hub, `HOST:PORT` (`--workbench` overrides).
    pub hub: Option<String>,
    /// Batches sent but not yet acknowledged, at most.
    pub window: usize,
    /// Seconds between heartbeats.
    pub heartbeat_s: u64,
    /// When the capture ends (end of a replayed file, a stop request), seconds to keep
    /// delivering what the spool holds before exiting; what is left waits for the next run.
    pub linger_s: u64,
    /// Written by `tapline sensors add`: the sensor's certificate and key, and the workbench's
    /// CA with its pinned fingerprint.
    pub credentials: Option<SensorCredentials>,
}

impl Default for UplinkConfig {
    fn default() -> Self {
        UplinkConfig {
            hub: None,
            window: 16,
            heartbeat_s: 5,
            linger_s: 30,
            credentials: None,
        }
    }
}

/// A running uplink.
pub struct Uplink {
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<String>>,
    thread: std::thread::JoinHandle<()>,
    spool: Arc<SharedSpool>,
}

/// Everything the uplink reads while it runs.
struct Shared {
    name: String,
    hub: String,
    creds: SensorCredentials,
    window: usize,
    heartbeat: Duration,
    spool: Arc<SharedSpool>,
    counters: Arc<Counters>,
    state: Arc<Mutex<String>>,
    /// Set when the capture has ended: deliver what is left, then stop.
    stop: Arc<AtomicBool>,
}

impl Uplink {
    /// Starts the uplink thread for sensor `name` to `hub`.
    pub fn start(
        name: &str,
        hub: &str,
        cfg: &UplinkConfig,
        spool: Arc<SharedSpool>,
        counters: Arc<Counters>,
    ) -> Result<Uplink> {
        let creds = cfg.credentials.clone().ok_or_else(|| {
            anyhow!(
                "no [uplink.credentials] in the configuration: enrol the sensor on the workbench \
                 (`tapline sensors add NAME --db CASE --hub HOST:PORT -o sensor.toml`) and pass that file with --config"
            )
        })?;
        // Check the pin and the PEM texts now, not at the first connection.
        creds
            .check()
            .context("the [uplink.credentials] are unusable")?;
        let state = Arc::new(Mutex::new(CONNECTING.to_owned()));
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Shared {
            name: name.to_owned(),
            hub: hub.to_owned(),
            creds,
            window: cfg.window.max(1),
            heartbeat: Duration::from_secs(cfg.heartbeat_s.max(1)),
            spool: Arc::clone(&spool),
            counters,
            state: Arc::clone(&state),
            stop: Arc::clone(&stop),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the uplink's runtime")?;
        let thread = std::thread::Builder::new()
            .name("uplink".into())
            .spawn(move || {
                let span = tracing::info_span!("uplink");
                let _entered = span.enter();
                rt.block_on(run(shared))
            })
            .context("cannot start the uplink thread")?;
        Ok(Uplink {
            stop,
            state,
            thread,
            spool,
        })
    }

    /// The uplink's state, as heartbeats report it.
    pub fn state(&self) -> String {
        lock(&self.state).clone()
    }

    /// The capture has ended: delivers what the spool holds for up to `linger`, then stops.
    /// Returns whether everything was delivered. A first connection still being set up is
    /// waited for too (within `linger`), so even a run that spooled nothing reports its final
    /// counters to the hub.
    pub fn finish(self, linger: Duration) -> bool {
        let deadline = Instant::now() + linger;
        let owes = || self.spool.with(|s| s.stats().batches) > 0 || self.state() == CONNECTING;
        while Instant::now() < deadline && owes() {
            // A refusal will not change by waiting (the sensor must be enrolled again).
            if self.thread.is_finished() || self.state().contains("refused by the hub") {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop.store(true, Ordering::Relaxed);
        self.spool.pushed.notify_one();
        let _ = self.thread.join();
        self.spool.with(|s| s.stats().batches) == 0
    }
}

fn lock(m: &Mutex<String>) -> std::sync::MutexGuard<'_, String> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn set_state(shared: &Shared, state: String) {
    let mut s = lock(&shared.state);
    if *s != state {
        tracing::info!("uplink to {}: {state}", shared.hub);
        *s = state;
    }
}

/// The uplink's state until its first try to connect ends, either way.
const CONNECTING: &str = "connecting";

/// The first wait before reconnecting, and the longest: a hub that restarts is found again
/// within seconds, and a hub that stays away costs a try every few seconds.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long a QUIC handshake may take before the try counts as failed (the link's idle
/// timeout would otherwise decide).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// `d` ± 25 %, so sensors that lost one hub do not all come back in the same instant.
fn jittered(d: Duration) -> Duration {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos())
        ^ std::process::id().rotate_left(16);
    let spread = f64::from(seed % 1000) / 1000.0 - 0.5; // -0.5 .. 0.5
    d.mul_f64(1.0 + spread / 2.0)
}

/// Connects, delivers, reconnects with jittered backoff, until stopped.
async fn run(shared: Shared) {
    let mut backoff = FIRST_BACKOFF;
    while !shared.stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let result = session(&shared).await;
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        match result {
            Ok(()) => set_state(&shared, "disconnected: the hub closed the link".into()),
            Err(e) => set_state(&shared, format!("disconnected: {e:#}")),
        }
        // A session that lasted resets the backoff; a failing one doubles it.
        if started.elapsed() > Duration::from_secs(10) {
            backoff = FIRST_BACKOFF;
        }
        let until = Instant::now() + jittered(backoff);
        while Instant::now() < until && !shared.stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn resolve(hub: &str) -> Result<SocketAddr> {
    tokio::net::lookup_host(hub)
        .await
        .with_context(|| format!("cannot resolve the hub address {hub:?} (HOST:PORT)"))?
        .next()
        .ok_or_else(|| anyhow!("the hub address {hub:?} resolves to nothing"))
}

fn stats(shared: &Shared) -> SensorStats {
    let sp = shared.spool.with(|s| s.stats());
    let c = &shared.counters;
    SensorStats {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        packets: Counters::get(&c.packets),
        bytes: Counters::get(&c.bytes),
        kernel_drops: Counters::get(&c.kernel_drops),
        interface_drops: Counters::get(&c.interface_drops),
        records: Counters::get(&c.records),
        spool_batches: sp.batches,
        spool_bytes: sp.bytes,
        lost_records: sp.lost_records,
        uplink: lock(&shared.state).clone(),
    }
}

/// One connection's life.
async fn session(shared: &Shared) -> Result<()> {
    let addr = resolve(&shared.hub).await?;
    let ep = tapline_link::transport::client(&shared.creds, addr)?;
    let conn = tokio::time::timeout(CONNECT_TIMEOUT, tapline_link::transport::connect(&ep, addr))
        .await
        .map_err(|_| anyhow!("no answer from the hub at {addr} within {CONNECT_TIMEOUT:?}"))?
        .with_context(|| format!("cannot reach the hub at {addr}"))?;
    let (mut tx, rx) = conn.open_bi().await?;
    let spool_id = shared.spool.with(|s| s.id());
    send(
        &mut tx,
        &SensorMessage::hello(&shared.name, env!("CARGO_PKG_VERSION"), spool_id),
    )
    .await?;
    let mut rx = MessageReader::new(rx);
    let stored_through = match rx.recv::<HubMessage>().await? {
        Some(HubMessage::Welcome { stored_through }) => stored_through,
        Some(HubMessage::Refused { reason }) => bail!("refused by the hub: {reason}"),
        Some(other) => bail!("the hub answered the hello with {other:?}"),
        None => bail!("the hub closed the stream before answering"),
    };
    // The hub may hold batches whose acknowledgement never arrived: forget them here.
    shared.spool.with(|s| s.ack(stored_through))?;
    let mut sent = shared.spool.with(|s| s.acked());
    set_state(shared, "connected".into());

    // Acknowledgements arrive on their own task so sending never waits on reading.
    let (ack_tx, mut acks) = mpsc::unbounded_channel::<Result<HubMessage>>();
    let reader = tokio::spawn(async move {
        loop {
            let m = rx.recv::<HubMessage>().await;
            let done = !matches!(m, Ok(Some(_)));
            let item = match m {
                Ok(Some(m)) => Ok(m),
                Ok(None) => Err(anyhow!("the hub closed the stream")),
                Err(e) => Err(e.into()),
            };
            if ack_tx.send(item).is_err() || done {
                return;
            }
        }
    });
    let result = async {
        let mut beat = tokio::time::interval(shared.heartbeat);
        loop {
            let acked = shared.spool.with(|s| s.acked());
            let in_flight = sent.saturating_sub(acked) as usize;
            if shared.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            if in_flight < shared.window {
                let batches = shared
                    .spool
                    .with(|s| s.pending(sent, shared.window - in_flight))?;
                if !batches.is_empty() {
                    for b in batches {
                        let seq = b.seq;
                        send(&mut tx, &SensorMessage::Batch(b)).await?;
                        sent = seq;
                    }
                    continue;
                }
            }
            tokio::select! {
                m = acks.recv() => match m {
                    Some(Ok(HubMessage::Ack { through })) => {
                        shared.spool.with(|s| s.ack(through))?;
                        // Sequence numbers can jump (a full spool dropped its oldest).
                        sent = sent.max(through);
                    }
                    Some(Ok(HubMessage::Refused { reason })) => bail!("refused by the hub: {reason}"),
                    Some(Ok(other)) => bail!("unexpected message from the hub: {other:?}"),
                    Some(Err(e)) => return Err(e),
                    None => bail!("the hub closed the stream"),
                },
                () = shared.spool.pushed.notified() => {}
                _ = beat.tick() => send(&mut tx, &SensorMessage::Stats(stats(shared))).await?,
            }
        }
    }
    .await;
    reader.abort();
    if result.is_ok() {
        // A last heartbeat with the final counters, then a clean close.
        let _ = send(&mut tx, &SensorMessage::Stats(stats(shared))).await;
        let _ = tx.finish();
        // The hub has read it all once the stream stops; a busy hub may take a while, and
        // closing first would drop the final counters.
        let _ = tokio::time::timeout(Duration::from_secs(5), tx.stopped()).await;
    }
    conn.close(0u32.into(), b"bye");
    ep.wait_idle().await;
    result
}
