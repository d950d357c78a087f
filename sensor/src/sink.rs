//! Where finished records go: JSON lines on stdout (`--stdout`) and batches into the spool,
//! each batch closed at a record count or an age, whichever comes first.

use crate::spool::SharedSpool;
use anyhow::Result;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tapline_record::Transaction;

/// Batches records into the spool and prints them.
pub struct RecordSink {
    stdout: bool,
    spool: Option<Arc<SharedSpool>>,
    batch: Vec<Transaction>,
    opened: Option<Instant>,
    max_records: usize,
    max_age: Duration,
}

impl RecordSink {
    /// A sink printing to stdout when `stdout`, batching into `spool` when given.
    pub fn new(
        stdout: bool,
        spool: Option<Arc<SharedSpool>>,
        max_records: usize,
        max_age: Duration,
    ) -> Self {
        RecordSink {
            stdout,
            spool,
            batch: Vec::new(),
            opened: None,
            max_records: max_records.max(1),
            max_age,
        }
    }

    /// How long until the open batch must close (`None`: no batch open).
    pub fn due_in(&self) -> Option<Duration> {
        self.opened
            .map(|t| self.max_age.saturating_sub(t.elapsed()))
    }

    /// Takes finished records.
    pub fn emit(&mut self, txs: Vec<Transaction>) -> Result<()> {
        if self.stdout && !txs.is_empty() {
            let mut out = std::io::stdout().lock();
            for tx in &txs {
                serde_json::to_writer(&mut out, tx)?;
                out.write_all(b"\n")?;
            }
        }
        if self.spool.is_none() {
            return Ok(());
        }
        // Moved, not copied: the batch owns the records until the spool has them on disk.
        for tx in txs {
            self.opened.get_or_insert_with(Instant::now);
            self.batch.push(tx);
            if self.batch.len() >= self.max_records {
                self.flush()?;
            }
        }
        self.tick()
    }

    /// Closes the open batch if it is old enough.
    pub fn tick(&mut self) -> Result<()> {
        if self.due_in().is_some_and(|d| d.is_zero()) {
            self.flush()?;
        }
        Ok(())
    }

    /// Closes the open batch into the spool now.
    pub fn flush(&mut self) -> Result<()> {
        self.opened = None;
        if self.batch.is_empty() {
            return Ok(());
        }
        if let Some(sp) = &self.spool {
            sp.push(&self.batch)?;
        }
        self.batch.clear();
        Ok(())
    }
}
