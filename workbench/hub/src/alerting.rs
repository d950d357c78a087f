//! The hub's alerts thread (which also applies automatic block rules, `tapline-enforce`'s
//! [`tapline_enforce::auto`], before each round): after each live-analysis write that added or updated findings
//! (and every [`ROUND_EVERY`] regardless, for retries and for findings an import or another
//! command added), every destination of the case is sent what it has not been sent yet
//! ([`tapline_alerts::dispatch`]). Network waits and webhook retries happen here, never on the
//! store or analysis threads.

use crate::live::Connect;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::Duration;
use tapline_store::CaseStore;

/// How often destinations are tried without a poke.
const ROUND_EVERY: Duration = Duration::from_secs(30);

/// The running alerts thread.
pub(crate) struct Alerter {
    poke: SyncSender<()>,
    handle: std::thread::JoinHandle<()>,
    stopping: Arc<AtomicBool>,
}

/// Wakes the alerts thread (never blocks: one wake-up is enough for any number of pokes).
#[derive(Clone)]
pub(crate) struct Poke(SyncSender<()>);

impl Poke {
    pub fn poke(&self) {
        let _ = self.0.try_send(());
    }
}

impl Alerter {
    /// A handle that wakes the thread.
    pub fn poker(&self) -> Poke {
        Poke(self.poke.clone())
    }

    /// Sends what a last poke asked for, then ends; waits.
    pub fn stop(self) {
        self.stopping.store(true, Ordering::Release);
        let _ = self.poke.try_send(());
        if self.handle.join().is_err() {
            tracing::error!("the hub's alerts thread panicked");
        }
    }
}

/// Starts the thread; `on_sent` hears every round that sent or failed something.
pub(crate) fn start(
    connect: Connect,
    case_failed: Arc<AtomicBool>,
    on_sent: impl Fn(tapline_alerts::Sent) + Send + 'static,
) -> std::io::Result<Alerter> {
    let (poke, rx) = std::sync::mpsc::sync_channel(1);
    let stopping = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&stopping);
    let handle = std::thread::Builder::new()
        .name("hub-alerts".into())
        .spawn(move || run(&connect, &case_failed, &rx, &stop, &on_sent))?;
    Ok(Alerter {
        poke,
        handle,
        stopping,
    })
}

fn run(
    connect: &Connect,
    case_failed: &AtomicBool,
    rx: &Receiver<()>,
    stopping: &AtomicBool,
    on_sent: &dyn Fn(tapline_alerts::Sent),
) {
    // Connected now: the last round runs after the store thread has ended.
    let mut case: Option<CaseStore> = connect().ok();
    loop {
        let woken = rx.recv_timeout(ROUND_EVERY);
        if case_failed.load(Ordering::Acquire) {
            case = None; // it would keep the failed database from being reopened
        } else {
            round(connect, &mut case, on_sent);
        }
        if stopping.load(Ordering::Acquire) || woken == Err(RecvTimeoutError::Disconnected) {
            return;
        }
    }
}

fn round(connect: &Connect, case: &mut Option<CaseStore>, on_sent: &dyn Fn(tapline_alerts::Sent)) {
    if case.is_none() {
        *case = connect().ok();
    }
    let Some(c) = case.as_mut() else {
        return;
    };
    // Automatic block rules first: the blocks they add are in force before anyone is alerted.
    let now = tapline_record::time::now_nanos();
    if let Err(e) = tapline_enforce::auto::apply(c, now) {
        tracing::error!("automatic block rules could not be applied (retried next round): {e}");
    }
    match tapline_alerts::dispatch(c) {
        Ok(sent) => {
            if sent.new + sent.updated > 0 || !sent.failed.is_empty() {
                on_sent(sent);
            }
        }
        Err(e) => {
            tracing::error!("alerts could not be read from the case (retried): {e:#}");
            *case = None;
        }
    }
}
