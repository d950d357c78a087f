//! The analysis engines on threads of their own, one per core: the analysis thread deals whole
//! batches out in turn and, at a flush, gathers every thread's engines into one — they merge
//! as an import's shards do, so what a flush writes does not depend on who observed what.

use std::ops::Range;
use std::sync::mpsc::{Receiver, SyncSender};
use std::thread::JoinHandle;
use tapline_analysis::Analyses;
use tapline_record::Transaction;

/// Batches waiting for one worker at most: the dealer waits beyond (and the hub's queue in
/// front of it then fills, which sends analysis to read back from the case).
const WORKER_QUEUE: usize = 2;

/// What a worker is given.
enum Work {
    /// Records numbered from `ids.start`, the first `skip` already observed.
    Batch {
        ids: Range<i64>,
        txs: Vec<Transaction>,
        skip: usize,
    },
    /// Records read back from the case, with their ids.
    Rows(Vec<(i64, Transaction)>),
    /// Hand over the engines and start afresh.
    Gather(std::sync::mpsc::Sender<Analyses>),
}

struct Worker {
    work: SyncSender<Work>,
    handle: JoinHandle<()>,
}

/// A worker stopped (it panicked): the pool cannot say what its engines held.
#[derive(Debug)]
pub(crate) struct WorkerLost;

impl std::fmt::Display for WorkerLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an analysis worker stopped")
    }
}

impl std::error::Error for WorkerLost {}

/// The engines' threads.
pub(crate) struct Pool {
    workers: Vec<Worker>,
    /// Which worker gets the next batch.
    turn: usize,
}

impl Pool {
    /// A pool of `threads` workers (at least one).
    pub fn new(threads: usize) -> std::io::Result<Pool> {
        let workers = (0..threads.max(1))
            .map(|i| {
                let (work, rx) = std::sync::mpsc::sync_channel(WORKER_QUEUE);
                let handle = std::thread::Builder::new()
                    .name(format!("hub-analysis-{i}"))
                    .spawn(move || run(&rx))?;
                Ok(Worker { work, handle })
            })
            .collect::<std::io::Result<_>>()?;
        Ok(Pool { workers, turn: 0 })
    }

    /// One per core.
    pub fn per_core() -> std::io::Result<Pool> {
        Pool::new(std::thread::available_parallelism().map_or(1, |n| n.get().min(8)))
    }

    /// Has `txs` (ids from `ids.start`, the first `skip` left out) observed.
    pub fn batch(
        &mut self,
        ids: Range<i64>,
        txs: Vec<Transaction>,
        skip: usize,
    ) -> Result<(), WorkerLost> {
        self.deal(Work::Batch { ids, txs, skip })
    }

    /// Has records read back from the case observed.
    pub fn rows(&mut self, rows: Vec<(i64, Transaction)>) -> Result<(), WorkerLost> {
        self.deal(Work::Rows(rows))
    }

    fn deal(&mut self, work: Work) -> Result<(), WorkerLost> {
        let w = &self.workers[self.turn % self.workers.len()];
        self.turn = self.turn.wrapping_add(1);
        w.work.send(work).map_err(|_| WorkerLost)
    }

    /// Every worker's engines, merged, once each has observed all it was given; the workers
    /// start afresh.
    pub fn gather(&mut self) -> Result<Analyses, WorkerLost> {
        let replies: Vec<Receiver<Analyses>> = self
            .workers
            .iter()
            .map(|w| {
                let (tx, rx) = std::sync::mpsc::channel();
                w.work.send(Work::Gather(tx)).map_err(|_| WorkerLost)?;
                Ok(rx)
            })
            .collect::<Result<_, WorkerLost>>()?;
        let mut merged: Option<Analyses> = None;
        for rx in replies {
            let engines = rx.recv().map_err(|_| WorkerLost)?;
            match &mut merged {
                None => merged = Some(engines),
                Some(m) => m.absorb(engines),
            }
        }
        merged.ok_or(WorkerLost)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for w in std::mem::take(&mut self.workers) {
            drop(w.work);
            if w.handle.join().is_err() {
                tracing::error!("an analysis worker panicked");
            }
        }
    }
}

fn run(rx: &Receiver<Work>) {
    let mut engines = Analyses::default();
    for work in rx {
        match work {
            Work::Batch { ids, txs, skip } => {
                for (id, tx) in ids.zip(&txs).skip(skip) {
                    engines.observe(id, tx);
                }
            }
            Work::Rows(rows) => {
                for (id, tx) in &rows {
                    engines.observe(*id, tx);
                }
            }
            Work::Gather(reply) => {
                let _ = reply.send(std::mem::take(&mut engines));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(i: i64) -> Transaction {
        Transaction {
            request_ts_nanos: 1_700_000_000_000_000_000 + i,
            client: "10.0.0.1:40000".parse().ok(),
            method: "GET".into(),
            host: Some("api.test".into()),
            uri: format!("/users/{}?q=1'%20OR%20'1'='1", i % 7),
            status: Some(200),
            ..Transaction::default()
        }
    }

    fn summary(a: Analyses) -> (usize, Vec<(String, u64)>) {
        let d = a.finish(&[]).unwrap_or_else(|e| panic!("{e}"));
        let mut f: Vec<(String, u64)> = d
            .findings
            .iter()
            .map(|f| (format!("{:?}", f.kind), f.count))
            .collect();
        f.sort();
        (d.endpoints.len(), f)
    }

    /// Dealt out over three workers, in batches and read-back rows, the records give what
    /// one engine observing them in order gives.
    #[test]
    fn a_pool_finds_what_one_engine_finds() {
        let txs: Vec<Transaction> = (0..60).map(request).collect();
        let mut one = Analyses::default();
        for (i, tx) in txs.iter().enumerate() {
            one.observe(i as i64, tx);
        }
        let mut pool = Pool::new(3).unwrap_or_else(|e| panic!("{e}"));
        for start in (0..40).step_by(10) {
            let ids = start as i64..start as i64 + 10;
            let batch = txs[start..start + 10].to_vec();
            pool.batch(ids, batch, 0).unwrap_or_else(|e| panic!("{e}"));
        }
        // A batch of which the first half was observed already, then rows read back.
        pool.batch(35..45, txs[35..45].to_vec(), 5)
            .unwrap_or_else(|e| panic!("{e}"));
        let rows = (45..60).map(|i| (i as i64, txs[i].clone())).collect();
        pool.rows(rows).unwrap_or_else(|e| panic!("{e}"));
        let gathered = pool.gather().unwrap_or_else(|e| panic!("{e}"));
        let expected = summary(one);
        assert!(!expected.1.is_empty(), "the records hold attacks");
        assert_eq!(summary(gathered), expected);
        // Gathering leaves the workers empty.
        let again = pool.gather().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(summary(again), (0, Vec::new()));
    }
}
