//! Work the UI asks for that touches the disk, the database or the network — opening a case
//! (its migrations included), starting the hub (identity files, binding a socket) — and
//! retiring what has to be joined (an old case's query worker, a finished import, a stopped
//! hub). Each runs on a short-lived thread of its own and answers through a channel that
//! `logic()` polls, so the UI thread never waits on any of it.

use std::sync::mpsc;

/// A job on its way; [`Pending::poll`] says when it is done.
pub struct Pending<T> {
    rx: mpsc::Receiver<T>,
}

impl<T> Pending<T> {
    /// The job's result once it is done; `Err` when its thread ended without one (it
    /// panicked: a bug, reported rather than waited on forever).
    pub fn poll(&self) -> Option<Result<T, Gone>> {
        match self.rx.try_recv() {
            Ok(v) => Some(Ok(v)),
            Err(mpsc::TryRecvError::Empty) => None,
            Err(mpsc::TryRecvError::Disconnected) => Some(Err(Gone)),
        }
    }
}

/// A job's thread ended without an answer.
#[derive(Debug, thiserror::Error)]
#[error("the worker thread stopped without an answer (a bug: see the log)")]
pub struct Gone;

/// Runs `job` on a thread named `name`; `repaint` wakes the UI when it is done.
pub fn spawn<T: Send + 'static>(
    name: &str,
    repaint: impl Fn() + Send + 'static,
    job: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<Pending<T>> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let _ = tx.send(job());
            repaint();
        })?;
    Ok(Pending { rx })
}

/// Drops `value` on a thread of its own: dropping a case joins its query worker, a finished
/// import's handle is joined, a hub is stopped — none of which the UI thread may wait for.
pub fn retire<T: Send + 'static>(what: &'static str, value: T) {
    let spawned = std::thread::Builder::new()
        .name(format!("retire-{what}"))
        .spawn(move || drop(value));
    if let Err(e) = spawned {
        // No thread to be had: the value was dropped with the closure, here after all.
        tracing::warn!("cannot retire the {what} on a thread ({e}); it was dropped here");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn wait<T>(p: &Pending<T>) -> Result<T, Gone> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(r) = p.poll() {
                return r;
            }
            assert!(Instant::now() < deadline, "the job did not finish");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_job_answers_and_a_panicking_one_is_reported() {
        let p = spawn("t", || {}, || 42).unwrap();
        assert_eq!(wait(&p).unwrap(), 42);
        let p = spawn("t", || {}, || -> u8 { panic!("boom") }).unwrap();
        assert!(wait(&p).is_err());
    }
}
