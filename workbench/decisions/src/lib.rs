//! Decisions for enforcement agents, served over HTTPS with per-agent keys.
//!
//! - [`lapi`]: a CrowdSec Local-API-compatible surface (`/v1/decisions/stream`,
//!   `/v1/decisions`, `/v1/usage-metrics`, `X-Api-Key`), so stock bouncers enforce Tapline's
//!   address and network rules unchanged, each poll returning what changed for that agent.
//! - [`authz`]: `/v1/authz`, a per-request decision in the external-authorisation style
//!   (nginx `auth_request`, Envoy `ext_authz`, Traefik ForwardAuth, Caddy `forward_auth`) for
//!   the user, session, key, header and path rules address-only bouncers cannot express.
//!
//! Threads: a small tokio runtime serves connections from a [`state::Snapshot`] swapped in
//! whole; one case thread polls the case for changes (rules, allowlist, agents; a rule
//! expiring), rebuilds the snapshot, and writes the blocked-requests log and agents'
//! last-seen times. Requests never wait on the case: when it is slow or gone, agents are
//! answered from the last snapshot (and keep enforcing their last list if the hub is down).

pub mod authz;
pub mod lapi;
mod server;
pub mod state;

use server::Shared;
use state::Snapshot;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;
use tapline_store::agents::Hit;
use tapline_store::{CaseStore, StoreError};

pub use state::{key_hash, new_key};

/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 1024;
/// Blocked requests waiting to be written to the case; past this they are counted as lost.
const HITS_QUEUE: usize = 65_536;
/// A client that has not sent its headers by then is dropped.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a further connection to the case the server reads.
pub type Connect =
    Box<dyn Fn() -> Result<CaseStore, Box<dyn std::error::Error + Send + Sync>> + Send>;

/// How to serve.
#[derive(Clone)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The server certificate chain (PEM), leaf first.
    pub cert_pem: String,
    /// Its key (PEM).
    pub key_pem: String,
    /// How often the case is polled for changes.
    pub reload_every: Duration,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    /// The address is taken or not ours.
    #[error("cannot listen for agents on {addr}: {source}; pick another --agents-listen address")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate or key is unusable.
    #[error("the agents' HTTPS certificate or key is unusable: {0}")]
    Tls(String),
    /// The case could not be read.
    #[error("cannot read the rules from the case: {0}")]
    Store(#[from] StoreError),
    /// No connection to the case could be had.
    #[error("cannot open a connection to the case: {0}")]
    Connect(Box<dyn std::error::Error + Send + Sync>),
    /// The runtime or a thread could not start.
    #[error("cannot start the decision server: {0}")]
    Start(std::io::Error),
}

/// The running server; dropping it stops it.
pub struct DecisionServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    stop_case: Option<mpsc::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

fn tls(config: &Config) -> Result<tokio_rustls::TlsAcceptor, DecisionError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(config.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| DecisionError::Tls(format!("certificate: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(config.key_pem.as_bytes())
        .map_err(|e| DecisionError::Tls(format!("key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DecisionError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| DecisionError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

impl DecisionServer {
    /// Loads the rules from the case and starts serving on `config.listen`.
    pub fn start(config: Config, connect: Connect) -> Result<DecisionServer, DecisionError> {
        let acceptor = tls(&config)?;
        let case = connect().map_err(DecisionError::Connect)?;
        let snapshot = Snapshot::load(&case, server::now_ns())?;
        let (hits_tx, hits_rx) = mpsc::sync_channel(HITS_QUEUE);
        let shared = Arc::new(Shared {
            snapshot: RwLock::new(Arc::new(snapshot)),
            cursors: Mutex::new(HashMap::new()),
            ids: Mutex::new(lapi::Ids::default()),
            seen: Mutex::new(HashMap::new()),
            hits: hits_tx,
            hits_lost: std::sync::atomic::AtomicU64::new(0),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tapline-decisions")
            .enable_all()
            .build()
            .map_err(DecisionError::Start)?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(config.listen))
            .map_err(|source| DecisionError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(DecisionError::Start)?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let serve_shared = Arc::clone(&shared);
        let serve = std::thread::Builder::new()
            .name("tapline-decisions".into())
            .spawn(move || runtime.block_on(accept(listener, acceptor, serve_shared, stopped)))
            .map_err(DecisionError::Start)?;
        let (stop_case, case_stopped) = mpsc::channel();
        let every = config.reload_every;
        let case_thread = std::thread::Builder::new()
            .name("tapline-decisions-case".into())
            .spawn(move || case_loop(case, &shared, &hits_rx, &case_stopped, every))
            .map_err(DecisionError::Start)?;
        tracing::info!(%addr, "decision server listening");
        Ok(DecisionServer {
            addr,
            stop: Some(stop),
            stop_case: Some(stop_case),
            threads: vec![serve, case_thread],
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DecisionServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(s) = self.stop_case.take() {
            let _ = s.send(());
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

async fn accept(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (tcp, peer) = tokio::select! {
            _ = &mut stopped => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting an agent connection failed");
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, shared) = (acceptor.clone(), Arc::clone(&shared));
        tokio::spawn(async move {
            let _permit = permit;
            let tls = match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake with an agent failed");
                    return;
                }
                Err(_) => return,
            };
            let svc = hyper::service::service_fn(move |req| Arc::clone(&shared).handle(peer, req));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(64 * 1024)
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc);
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "agent connection ended");
            }
        });
    }
}

/// Polls the case for changes, rebuilds the snapshot, writes hits and last-seen times.
fn case_loop(
    mut case: CaseStore,
    shared: &Shared,
    hits: &mpsc::Receiver<Hit>,
    stopped: &mpsc::Receiver<()>,
    every: Duration,
) {
    let mut stamp = case.enforcement_stamp().unwrap_or_default();
    loop {
        match stopped.recv_timeout(every) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => {
                flush(&mut case, shared, hits);
                return;
            }
        }
        let now = server::now_ns();
        let expired = shared
            .snapshot
            .read()
            .ok()
            .and_then(|s| s.next_expiry_ns)
            .is_some_and(|e| e <= now);
        match case.enforcement_stamp() {
            Ok(s) if s != stamp || expired => match Snapshot::load(&case, now) {
                Ok(snap) => {
                    swap(shared, snap);
                    stamp = s;
                    // Say in the audit log when rules ran out (which changes the stamp: read
                    // it back, or the next round would reload for nothing).
                    if expired {
                        match case.audit_expiries(now) {
                            Ok(_) => stamp = case.enforcement_stamp().unwrap_or(stamp),
                            Err(e) => {
                                tracing::warn!(error = %e, "noting expired rules in the audit log failed")
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reloading the rules failed; serving the last ones")
                }
            },
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reading the case failed; serving the last rules"),
        }
        flush(&mut case, shared, hits);
    }
}

fn swap(shared: &Shared, snap: Snapshot) {
    tracing::info!(
        rules = snap.index.len(),
        decisions = snap.live.len(),
        "decisions reloaded"
    );
    if let Ok(mut cur) = shared.snapshot.write() {
        *cur = Arc::new(snap);
    }
}

fn flush(case: &mut CaseStore, shared: &Shared, hits: &mpsc::Receiver<Hit>) {
    let batch: Vec<Hit> = hits.try_iter().collect();
    let lost = shared
        .hits_lost
        .swap(0, std::sync::atomic::Ordering::Relaxed);
    if lost > 0 {
        tracing::warn!(
            lost,
            "blocked requests came faster than the case could log them; counted, not logged"
        );
    }
    if !batch.is_empty()
        && let Err(e) = case.add_block_hits(&batch)
    {
        tracing::warn!(error = %e, lost = batch.len(), "writing the blocked-requests log failed");
    }
    let seen: Vec<(i64, i64, String)> = shared
        .seen
        .lock()
        .map(|mut s| s.drain().map(|(id, (at, peer))| (id, at, peer)).collect())
        .unwrap_or_default();
    if !seen.is_empty()
        && let Err(e) = case.agents_seen(&seen)
    {
        tracing::debug!(error = %e, "noting agents' last contact failed");
    }
}
